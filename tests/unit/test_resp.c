/* Unit tests for gcs/resp.c: the RESP2 request reader and reply encoders.
 * Expected bytes and error texts are Redis 7's. */
#include <criterion/criterion.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resp.h"

/* ======================================================================
 * Reply encoders
 * ====================================================================== */

static resp_buf ob;

static void ob_setup(void)
{
    resp_buf_init(&ob);
}

static void ob_teardown(void)
{
    resp_buf_free(&ob);
}

/* Assert the buffer holds exactly @n bytes @want, then empty it. */
static void expect_bytes(const char *want, size_t n)
{
    cr_assert_eq(ob.len, n, "length %zu, want %zu (\"%.*s\")", ob.len, n,
                 (int)ob.len, ob.data ? ob.data : "");
    cr_assert(n == 0 || memcmp(ob.data, want, n) == 0,
              "got \"%.*s\" want \"%.*s\"", (int)ob.len, ob.data, (int)n,
              want);
    resp_buf_reset(&ob);
}
#define EXPECT(lit) expect_bytes(lit, sizeof(lit) - 1)

TestSuite(encode, .init = ob_setup, .fini = ob_teardown);

Test(encode, status)
{
    resp_add_status(&ob, "OK");
    EXPECT("+OK\r\n");
    resp_add_status(&ob, "");
    EXPECT("+\r\n");
    resp_add_status(&ob, "QUEUED");
    EXPECT("+QUEUED\r\n");
}

Test(encode, error)
{
    resp_add_error(&ob, "ERR unknown command");
    EXPECT("-ERR unknown command\r\n");
    resp_add_error(&ob, "WRONGTYPE Operation against a key holding the wrong "
                        "kind of value");
    EXPECT("-WRONGTYPE Operation against a key holding the wrong kind of "
           "value\r\n");
    resp_add_error(&ob, "ERR a\r\nb\nc\rd\r\n");
    EXPECT("-ERR a  b c d  \r\n");
    resp_add_error(&ob, "");
    EXPECT("-\r\n");
}

Test(encode, errorf)
{
    resp_add_errorf(&ob, "ERR %s %d", "bad", 42);
    EXPECT("-ERR bad 42\r\n");
    /* Like addReplyErrorFormat: CR/LF trimmed at both ends, mapped inside. */
    resp_add_errorf(&ob, "\r\nERR x\r\ny\n%s", "\r\n");
    EXPECT("-ERR x  y\r\n");
    resp_add_errorf(&ob, "ERR got '%c'", '\r');
    EXPECT("-ERR got ' '\r\n");
    /* A %c of NUL ends the message (sdscatvprintf uses strlen). */
    resp_add_errorf(&ob, "ERR got '%c' tail", '\0');
    EXPECT("-ERR got '\r\n");

    /* Longer than the internal stack buffer. */
    char big[1001];
    memset(big, 'x', 1000);
    big[1000] = '\0';
    resp_add_errorf(&ob, "ERR %s!", big);
    cr_assert_eq(ob.len, 1 + 4 + 1000 + 1 + 2);
    cr_assert(memcmp(ob.data, "-ERR xxx", 8) == 0);
    cr_assert(memcmp(ob.data + ob.len - 4, "x!\r\n", 4) == 0);
}

Test(encode, integer)
{
    resp_add_integer(&ob, 0);
    EXPECT(":0\r\n");
    resp_add_integer(&ob, 1);
    EXPECT(":1\r\n");
    resp_add_integer(&ob, -1);
    EXPECT(":-1\r\n");
    resp_add_integer(&ob, 9);
    EXPECT(":9\r\n");
    resp_add_integer(&ob, 10);
    EXPECT(":10\r\n");
    resp_add_integer(&ob, 99);
    EXPECT(":99\r\n");
    resp_add_integer(&ob, 100);
    EXPECT(":100\r\n");
    resp_add_integer(&ob, -100);
    EXPECT(":-100\r\n");
    resp_add_integer(&ob, 12345);
    EXPECT(":12345\r\n");
    resp_add_integer(&ob, 1000000007);
    EXPECT(":1000000007\r\n");
    resp_add_integer(&ob, LLONG_MAX);
    EXPECT(":9223372036854775807\r\n");
    resp_add_integer(&ob, LLONG_MIN);
    EXPECT(":-9223372036854775808\r\n");
    resp_add_integer(&ob, LLONG_MIN + 1);
    EXPECT(":-9223372036854775807\r\n");
}

/* The fast conversion agrees with printf for many values. */
Test(encode, integer_against_printf)
{
    char want[64];
    unsigned long long x = 88172645463325252ULL;
    for (int i = 0; i < 200000; i++) {
        long long v;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        /* Mix magnitudes: shift by 1..64 bits; negate half of them. */
        v = (long long)((x >> (x % 64)) >> 1);
        if (x & 1)
            v = -v - 1;
        int n = snprintf(want, sizeof(want), ":%lld\r\n", v);
        resp_add_integer(&ob, v);
        expect_bytes(want, (size_t)n);
    }
    for (long long v = -1000; v <= 1000; v++) {
        int n = snprintf(want, sizeof(want), ":%lld\r\n", v);
        resp_add_integer(&ob, v);
        expect_bytes(want, (size_t)n);
    }
    long long p = 1;
    for (int e = 0; e <= 18; e++, p = e <= 18 ? p * 10 : p) {
        long long vs[] = {p - 1, p, p + 1, -(p - 1), -p, -(p + 1)};
        for (size_t j = 0; j < 6; j++) {
            int n = snprintf(want, sizeof(want), ":%lld\r\n", vs[j]);
            resp_add_integer(&ob, vs[j]);
            expect_bytes(want, (size_t)n);
        }
    }
}

Test(encode, bulk)
{
    resp_add_bulk(&ob, "foo", 3);
    EXPECT("$3\r\nfoo\r\n");
    resp_add_bulk(&ob, "", 0);
    EXPECT("$0\r\n\r\n");
    resp_add_bulk(&ob, NULL, 0);
    EXPECT("$0\r\n\r\n");
    resp_add_bulk(&ob, "a\0b\r\nc", 6);
    EXPECT("$6\r\na\0b\r\nc\r\n");
    resp_add_bulk_str(&ob, "hello world");
    EXPECT("$11\r\nhello world\r\n");
    resp_add_bulk_str(&ob, "");
    EXPECT("$0\r\n\r\n");

    /* A big one, with the header length right. */
    size_t n = 1000000;
    char *v = malloc(n);
    memset(v, 'v', n);
    resp_add_bulk(&ob, v, n);
    cr_assert_eq(ob.len, 10 + n + 2);
    cr_assert(memcmp(ob.data, "$1000000\r\n", 10) == 0);
    cr_assert(memcmp(ob.data + 10, v, n) == 0);
    cr_assert(memcmp(ob.data + 10 + n, "\r\n", 2) == 0);
    free(v);
}

Test(encode, bulk_u64)
{
    resp_add_bulk_u64(&ob, 0);
    EXPECT("$1\r\n0\r\n");
    resp_add_bulk_u64(&ob, 7);
    EXPECT("$1\r\n7\r\n");
    resp_add_bulk_u64(&ob, 42);
    EXPECT("$2\r\n42\r\n");
    resp_add_bulk_u64(&ob, 1234567890123ULL);
    EXPECT("$13\r\n1234567890123\r\n");
    resp_add_bulk_u64(&ob, UINT64_MAX);
    EXPECT("$20\r\n18446744073709551615\r\n");
    resp_add_bulk_u64(&ob, (uint64_t)LLONG_MAX + 1);
    EXPECT("$19\r\n9223372036854775808\r\n");
}

Test(encode, nulls_and_arrays)
{
    resp_add_null(&ob);
    EXPECT("$-1\r\n");
    resp_add_null_array(&ob);
    EXPECT("*-1\r\n");
    resp_add_array(&ob, 0);
    EXPECT("*0\r\n");
    resp_add_array(&ob, 3);
    EXPECT("*3\r\n");
    resp_add_array(&ob, 1000000);
    EXPECT("*1000000\r\n");
}

Test(encode, raw_and_sequences)
{
    resp_add_raw(&ob, "", 0);
    EXPECT("");
    resp_add_raw(&ob, "+PONG\r\n", 7);
    EXPECT("+PONG\r\n");

    resp_add_array(&ob, 3);
    resp_add_bulk_str(&ob, "message");
    resp_add_bulk_str(&ob, "ch");
    resp_add_integer(&ob, -5);
    resp_add_null(&ob);
    resp_add_status(&ob, "OK");
    resp_add_error(&ob, "ERR x");
    EXPECT("*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n:-5\r\n$-1\r\n+OK\r\n"
           "-ERR x\r\n");
}

Test(encode, buffer_management)
{
    resp_buf b;
    resp_buf_init(&b);
    cr_assert_null(b.data);
    cr_assert_eq(b.len, 0);
    cr_assert_eq(b.cap, 0);

    resp_buf_reserve(&b, 100);
    cr_assert_geq(b.cap, 100);
    cr_assert_eq(b.len, 0);
    size_t cap = b.cap;
    char *data = b.data;
    resp_buf_reserve(&b, 10); /* already room: no change */
    cr_assert_eq(b.cap, cap);
    cr_assert_eq(b.data, data);

    /* Grow through many appends; contents stay intact. */
    for (int i = 0; i < 100000; i++)
        resp_add_integer(&b, i);
    size_t len = b.len;
    cr_assert_geq(b.cap, len);
    cr_assert(memcmp(b.data, ":0\r\n:1\r\n:2\r\n", 12) == 0);
    cr_assert(memcmp(b.data + len - 8, ":99999\r\n", 8) == 0);

    /* Reset keeps memory. */
    cap = b.cap;
    data = b.data;
    resp_buf_reset(&b);
    cr_assert_eq(b.len, 0);
    cr_assert_eq(b.cap, cap);
    cr_assert_eq(b.data, data);
    resp_add_status(&b, "OK");
    cr_assert_eq(b.len, 5);
    cr_assert_eq(b.data, data);

    resp_buf_free(&b);
    cr_assert_null(b.data);
    cr_assert_eq(b.len, 0);
    cr_assert_eq(b.cap, 0);
    resp_buf_free(&b); /* twice is harmless */
}

/* Allocation failure prints to stderr and aborts. (A size that cannot be
 * represented is refused before malloc is asked, so this also holds under
 * AddressSanitizer.) */
Test(encode, oom_aborts, .signal = SIGABRT)
{
    resp_buf b;
    resp_buf_init(&b);
    resp_add_raw(&b, "x", 1);
    resp_buf_reserve(&b, SIZE_MAX);
}

/* ======================================================================
 * Request reader: a simulated connection
 * ====================================================================== */

/* One parsed request (arguments copied out), or a protocol error. */
typedef struct req {
    int rc; /* RESP_OK or RESP_EPROTO */
    size_t argc;
    char **argv;
    size_t *lens;
    size_t consumed;
    char err[64];
} req;

typedef struct conn {
    resp_reader r;
    char *buf;     /* received, not yet consumed bytes */
    size_t len;
    size_t cap;
    bool move;     /* move the buffer to a fresh allocation on every read */
    req *reqs;
    size_t nreqs;
    size_t reqcap;
    size_t calls;  /* resp_read() calls */
    size_t last_need;
    bool failed;
} conn;

static void conn_init(conn *c, size_t max_bulk, size_t max_args, bool move)
{
    memset(c, 0, sizeof(*c));
    resp_reader_init(&c->r, max_bulk, max_args);
    c->move = move;
}

static void conn_free(conn *c)
{
    for (size_t i = 0; i < c->nreqs; i++) {
        for (size_t j = 0; j < c->reqs[i].argc; j++)
            free(c->reqs[i].argv[j]);
        free(c->reqs[i].argv);
        free(c->reqs[i].lens);
    }
    free(c->reqs);
    free(c->buf);
    resp_reader_free(&c->r);
}

static req *conn_push(conn *c)
{
    if (c->nreqs == c->reqcap) {
        c->reqcap = c->reqcap ? c->reqcap * 2 : 16;
        c->reqs = realloc(c->reqs, c->reqcap * sizeof(*c->reqs));
        cr_assert_not_null(c->reqs);
    }
    memset(&c->reqs[c->nreqs], 0, sizeof(req));
    return &c->reqs[c->nreqs++];
}

/* Parse every complete request in the buffer. */
static void conn_parse(conn *c)
{
    size_t off = 0;
    while (!c->failed) {
        size_t consumed = 12345, argc = 0, need = 999;
        resp_arg *argv = NULL;
        const char *err = NULL;
        int rc = resp_read(&c->r, c->buf + off, c->len - off, &consumed,
                           &argc, &argv, &err, &need);
        c->calls++;
        if (rc == RESP_AGAIN) {
            cr_assert_eq(consumed, 0);
            c->last_need = need;
            break;
        }
        req *q = conn_push(c);
        q->rc = rc;
        if (rc == RESP_EPROTO) {
            cr_assert_not_null(err);
            snprintf(q->err, sizeof(q->err), "%s", err);
            c->failed = true;
            break;
        }
        cr_assert_eq(rc, RESP_OK);
        cr_assert_geq(consumed, 1);
        cr_assert_leq(consumed, c->len - off);
        cr_assert_eq(need, consumed);
        q->consumed = consumed;
        q->argc = argc;
        q->argv = calloc(argc ? argc : 1, sizeof(char *));
        q->lens = calloc(argc ? argc : 1, sizeof(size_t));
        for (size_t i = 0; i < argc; i++) {
            q->lens[i] = argv[i].len;
            q->argv[i] = malloc(argv[i].len + 1);
            memcpy(q->argv[i], argv[i].ptr, argv[i].len);
            q->argv[i][argv[i].len] = '\0';
        }
        off += consumed;
    }
    /* Drop consumed bytes, as a server would. */
    memmove(c->buf, c->buf + off, c->len - off);
    c->len -= off;
}

/* Bytes arrive. */
static void conn_recv(conn *c, const char *data, size_t n)
{
    if (c->move) {
        /* A fresh allocation every time: the reader must not keep
         * pointers into the buffer between calls. */
        char *nb = malloc(c->len + n + 1);
        cr_assert_not_null(nb);
        if (c->len)
            memcpy(nb, c->buf, c->len);
        if (c->buf)
            memset(c->buf, 0xEE, c->len); /* poison the old copy */
        free(c->buf);
        c->buf = nb;
        c->cap = c->len + n + 1;
    } else if (c->len + n > c->cap) {
        size_t cap = c->cap ? c->cap : 64;
        while (cap < c->len + n)
            cap *= 2;
        c->buf = realloc(c->buf, cap);
        cr_assert_not_null(c->buf);
        c->cap = cap;
    }
    memcpy(c->buf + c->len, data, n);
    c->len += n;
    conn_parse(c);
}

/* Feed @data in chunks: 0 = all at once, 1 = byte by byte, -1 = random
 * chunk sizes from @seed, otherwise chunks of that size. */
static void conn_feed(conn *c, const char *data, size_t n, long chunk,
                      unsigned seed)
{
    size_t off = 0;
    while (off < n && !c->failed) {
        size_t k;
        if (chunk == 0) {
            k = n;
        } else if (chunk < 0) {
            seed = seed * 1103515245u + 12345u;
            k = 1 + (seed >> 16) % 23;
        } else {
            k = (size_t)chunk;
        }
        if (k > n - off)
            k = n - off;
        conn_recv(c, data + off, k);
        off += k;
    }
}

static void assert_same_reqs(const conn *a, const conn *b)
{
    cr_assert_eq(a->nreqs, b->nreqs);
    for (size_t i = 0; i < a->nreqs; i++) {
        cr_assert_eq(a->reqs[i].rc, b->reqs[i].rc, "request %zu", i);
        cr_assert_str_eq(a->reqs[i].err, b->reqs[i].err);
        cr_assert_eq(a->reqs[i].argc, b->reqs[i].argc, "request %zu", i);
        cr_assert_eq(a->reqs[i].consumed, b->reqs[i].consumed);
        for (size_t j = 0; j < a->reqs[i].argc; j++) {
            cr_assert_eq(a->reqs[i].lens[j], b->reqs[i].lens[j]);
            cr_assert(memcmp(a->reqs[i].argv[j], b->reqs[i].argv[j],
                             a->reqs[i].lens[j]) == 0);
        }
    }
}

/* Assert request @i has exactly the given arguments (NULL-terminated list
 * of C strings). */
static void assert_req(const conn *c, size_t i, const char *const *want)
{
    size_t n = 0;
    cr_assert_lt(i, c->nreqs, "only %zu requests", c->nreqs);
    cr_assert_eq(c->reqs[i].rc, RESP_OK, "request %zu: %s", i,
                 c->reqs[i].err);
    while (want[n])
        n++;
    cr_assert_eq(c->reqs[i].argc, n, "request %zu: argc %zu want %zu", i,
                 c->reqs[i].argc, n);
    for (size_t j = 0; j < n; j++) {
        cr_assert_eq(c->reqs[i].lens[j], strlen(want[j]),
                     "request %zu arg %zu", i, j);
        cr_assert_str_eq(c->reqs[i].argv[j], want[j]);
    }
}
#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})
#define NOARGS ((const char *const[]){NULL})

/* Parse @data fed all at once; expect exactly one protocol error @msg,
 * after @ok_before successful requests. */
static void expect_error(const char *data, size_t n, size_t max_bulk,
                         size_t max_args, size_t ok_before, const char *msg)
{
    conn c;
    long modes[] = {0, 1, -1, 7};
    for (size_t m = 0; m < sizeof(modes) / sizeof(modes[0]); m++) {
        conn_init(&c, max_bulk, max_args, m == 2);
        conn_feed(&c, data, n, modes[m], 99);
        cr_assert_eq(c.nreqs, ok_before + 1, "mode %ld: %zu requests", modes[m],
                     c.nreqs);
        cr_assert_eq(c.reqs[ok_before].rc, RESP_EPROTO);
        cr_assert_str_eq(c.reqs[ok_before].err, msg, "mode %ld", modes[m]);
        conn_free(&c);
    }
}
#define EXPECT_ERR(lit, msg) expect_error(lit, sizeof(lit) - 1, 0, 0, 0, msg)

/* Feed and expect no error, nothing pending. */
static void feed_ok(conn *c, const char *data, size_t n, long chunk)
{
    conn_feed(c, data, n, chunk, 7);
    cr_assert(!c->failed, "error: %s", c->nreqs ? c->reqs[c->nreqs - 1].err
                                                 : "");
}
#define FEED(c, lit, chunk) feed_ok(c, lit, sizeof(lit) - 1, chunk)

/* ======================================================================
 * Request reader tests
 * ====================================================================== */

Test(reader, defaults)
{
    resp_reader r;
    resp_reader_init(&r, 0, 0);
    cr_assert_eq(r.max_bulk, (size_t)512 * 1024 * 1024);
    cr_assert_eq(r.max_args, (size_t)1024 * 1024);
    cr_assert_eq(r.max_inline, (size_t)64 * 1024);
    resp_reader_free(&r);
    resp_reader_init(&r, 100, 5);
    cr_assert_eq(r.max_bulk, 100);
    cr_assert_eq(r.max_args, 5);
    resp_reader_free(&r);
    resp_reader_free(&r); /* twice is harmless */
}

Test(reader, simple_multibulk_zero_copy)
{
    resp_reader r;
    const char *buf = "*2\r\n$3\r\nGET\r\n$3\r\nkey\r\nEXTRA";
    size_t consumed, argc, need;
    resp_arg *argv;
    const char *err = NULL;

    resp_reader_init(&r, 0, 0);
    int rc = resp_read(&r, buf, strlen(buf), &consumed, &argc, &argv, &err,
                       &need);
    cr_assert_eq(rc, RESP_OK);
    cr_assert_eq(consumed, 22);
    cr_assert_eq(need, 22);
    cr_assert_eq(argc, 2);
    /* Zero copy: the arguments point into the input. */
    cr_assert_eq(argv[0].ptr, buf + 8);
    cr_assert_eq(argv[0].len, 3);
    cr_assert_eq(argv[1].ptr, buf + 17);
    cr_assert_eq(argv[1].len, 3);
    cr_assert(memcmp(argv[0].ptr, "GET", 3) == 0);
    cr_assert(memcmp(argv[1].ptr, "key", 3) == 0);

    /* The rest is an incomplete inline request; need is optional. */
    rc = resp_read(&r, buf + consumed, strlen(buf) - consumed, &consumed,
                   &argc, &argv, &err, NULL);
    cr_assert_eq(rc, RESP_AGAIN);
    cr_assert_eq(consumed, 0);
    resp_reader_free(&r);
}

static const char pipeline[] =
    "*3\r\n$3\r\nSET\r\n$3\r\nfoo\r\n$3\r\nbar\r\n"
    "*0\r\n"
    "*2\r\n$3\r\nGET\r\n$3\r\nfoo\r\n"
    "*-1\r\n"
    "PING\r\n"
    "\r\n"
    "set a \"b c\"\n"
    "*1\r\n$0\r\n\r\n"
    "*4\r\n$4\r\nHSET\r\n$1\r\nh\r\n$5\r\nfield\r\n$12\r\nhello\r\nworld\r\n"
    "\n"
    "*3\r\n$3\r\nDEL\r\n$1\r\na\r\n$2\r\nbb\r\n"
    "*-7\r\n"
    "   \t \r\n"
    "*1\r\n$4\r\nPING\r\n";

static void check_pipeline(const conn *c)
{
    cr_assert_eq(c->nreqs, 14);
    assert_req(c, 0, ARGS("SET", "foo", "bar"));
    assert_req(c, 1, NOARGS);
    assert_req(c, 2, ARGS("GET", "foo"));
    assert_req(c, 3, NOARGS);
    assert_req(c, 4, ARGS("PING"));
    assert_req(c, 5, NOARGS);
    assert_req(c, 6, ARGS("set", "a", "b c"));
    assert_req(c, 7, ARGS(""));
    assert_req(c, 8, ARGS("HSET", "h", "field", "hello\r\nworld"));
    assert_req(c, 9, NOARGS);
    assert_req(c, 10, ARGS("DEL", "a", "bb"));
    assert_req(c, 11, NOARGS);
    assert_req(c, 12, NOARGS);
    assert_req(c, 13, ARGS("PING"));
    cr_assert_eq(c->reqs[0].consumed, 31);
    cr_assert_eq(c->reqs[1].consumed, 4);
    cr_assert_eq(c->reqs[3].consumed, 5);
    cr_assert_eq(c->reqs[4].consumed, 6);
    cr_assert_eq(c->reqs[5].consumed, 2);
    cr_assert_eq(c->reqs[6].consumed, 12);
    cr_assert_eq(c->reqs[9].consumed, 1);
    cr_assert_eq(c->len, 0);
}

Test(reader, pipelined_one_piece)
{
    conn c;
    conn_init(&c, 0, 0, false);
    FEED(&c, pipeline, 0);
    check_pipeline(&c);
    /* All at once: one call per request plus the final RESP_AGAIN. */
    cr_assert_eq(c.calls, 15);
    conn_free(&c);
}

Test(reader, pipelined_byte_by_byte_and_random_splits)
{
    conn whole, bytes, rnd, moving;
    conn_init(&whole, 0, 0, false);
    conn_init(&bytes, 0, 0, false);
    conn_init(&moving, 0, 0, true);
    FEED(&whole, pipeline, 0);
    FEED(&bytes, pipeline, 1);
    FEED(&moving, pipeline, 1);
    check_pipeline(&bytes);
    check_pipeline(&moving);
    assert_same_reqs(&whole, &bytes);
    assert_same_reqs(&whole, &moving);
    conn_free(&bytes);
    conn_free(&moving);

    for (unsigned seed = 1; seed <= 200; seed++) {
        conn_init(&rnd, 0, 0, seed % 2 == 0);
        conn_feed(&rnd, pipeline, sizeof(pipeline) - 1, -1, seed);
        cr_assert(!rnd.failed);
        assert_same_reqs(&whole, &rnd);
        conn_free(&rnd);
    }
    conn_free(&whole);
}

Test(reader, binary_arguments)
{
    static const char data[] = "*3\r\n$5\r\na\0b\r\n\r\n$2\r\n\r\n\r\n$4\r\n\0\0\0\0\r\n";
    conn c[3];
    for (int m = 0; m < 3; m++) {
        conn_init(&c[m], 0, 0, m == 2);
        feed_ok(&c[m], data, sizeof(data) - 1, m == 0 ? 0 : m == 1 ? 1 : -1);
        cr_assert_eq(c[m].nreqs, 1);
        const req *q = &c[m].reqs[0];
        cr_assert_eq(q->argc, 3);
        cr_assert_eq(q->lens[0], 5);
        cr_assert(memcmp(q->argv[0], "a\0b\r\n", 5) == 0);
        cr_assert_eq(q->lens[1], 2);
        cr_assert(memcmp(q->argv[1], "\r\n", 2) == 0);
        cr_assert_eq(q->lens[2], 4);
        cr_assert(memcmp(q->argv[2], "\0\0\0\0", 4) == 0);
        cr_assert_eq(q->consumed, sizeof(data) - 1);
    }
    assert_same_reqs(&c[0], &c[1]);
    assert_same_reqs(&c[0], &c[2]);
    for (int m = 0; m < 3; m++)
        conn_free(&c[m]);
}

/* Redis does not check the two bytes after bulk data, nor the byte after a
 * header's '\r'. */
Test(reader, crlf_bytes_not_checked)
{
    conn c;
    conn_init(&c, 0, 0, false);
    FEED(&c, "*1\r\n$3\r\nfooXY*1\rX$3\rYbarZW", 1);
    cr_assert_eq(c.nreqs, 2);
    assert_req(&c, 0, ARGS("foo"));
    assert_req(&c, 1, ARGS("bar"));
    cr_assert_eq(c.reqs[0].consumed, 13);
    cr_assert_eq(c.reqs[1].consumed, 13);
    conn_free(&c);
}

Test(reader, big_bulk_in_chunks)
{
    const size_t vlen = 8u << 20; /* 8 MiB */
    const char head[] = "*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$8388608\r\n";
    const size_t hlen = sizeof(head) - 1;
    const size_t total = hlen + vlen + 2;
    char *data = malloc(total);
    memcpy(data, head, hlen);
    for (size_t i = 0; i < vlen; i++)
        data[hlen + i] = (char)(i * 131 + (i >> 9));
    memcpy(data + hlen + vlen, "\r\n", 2);

    conn c;
    conn_init(&c, 0, 0, false);
    size_t off = 0, chunk = 64 * 1024;
    bool need_seen = false;
    while (off < total) {
        size_t k = total - off < chunk ? total - off : chunk;
        conn_recv(&c, data + off, k);
        off += k;
        cr_assert(!c.failed);
        if (off < total) {
            /* Once the bulk header is in, the full size is known. */
            cr_assert_eq(c.nreqs, 0);
            cr_assert_eq(c.last_need, total);
            need_seen = true;
        }
    }
    cr_assert(need_seen);
    cr_assert_eq(c.nreqs, 1);
    const req *q = &c.reqs[0];
    cr_assert_eq(q->argc, 3);
    cr_assert_str_eq(q->argv[0], "SET");
    cr_assert_str_eq(q->argv[1], "key");
    cr_assert_eq(q->lens[2], vlen);
    cr_assert(memcmp(q->argv[2], data + hlen, vlen) == 0);
    cr_assert_eq(q->consumed, total);
    /* 129 reads: 128 returned RESP_AGAIN cheaply, the last one parsed. */
    cr_assert_eq(c.calls, 128 + 2);
    /* Only header bytes were ever scanned. */
    cr_assert_leq(c.r.scanned, hlen);
    conn_free(&c);
    free(data);
}

Test(reader, need_hint)
{
    resp_reader r;
    size_t consumed, argc, need;
    resp_arg *argv;
    const char *err;
    resp_reader_init(&r, 0, 0);

    const char *buf = "*2\r\n$3\r\nGET\r\n$10\r\n0123";
    /* Header incomplete: unknown. */
    cr_assert_eq(resp_read(&r, buf, 3, &consumed, &argc, &argv, &err, &need),
                 RESP_AGAIN);
    cr_assert_eq(need, 0);
    /* Inside the first bulk: through its CRLF. */
    cr_assert_eq(resp_read(&r, buf, 10, &consumed, &argc, &argv, &err, &need),
                 RESP_AGAIN);
    cr_assert_eq(need, 13);
    /* Second bulk header read: 18 + 10 + 2. */
    cr_assert_eq(resp_read(&r, buf, strlen(buf), &consumed, &argc, &argv,
                           &err, &need),
                 RESP_AGAIN);
    cr_assert_eq(need, 30);
    resp_reader_free(&r);
}

/* 100,000 arguments arriving in small pieces: parsing must be linear. */
Test(reader, many_args_in_pieces_linear)
{
    const size_t nargs = 100000;
    size_t cap = 32 + nargs * 24, n = 0;
    char *data = malloc(cap);
    n += (size_t)sprintf(data + n, "*%zu\r\n", nargs);
    for (size_t i = 0; i < nargs; i++) {
        char arg[16];
        int al = sprintf(arg, "a%zu", i);
        n += (size_t)sprintf(data + n, "$%d\r\n%s\r\n", al, arg);
    }
    /* Then a second, small request in the same stream. */
    n += (size_t)sprintf(data + n, "*1\r\n$4\r\nPING\r\n");

    long modes[] = {1, -1, 1000};
    for (size_t m = 0; m < sizeof(modes) / sizeof(modes[0]); m++) {
        conn c;
        conn_init(&c, 0, 0, false);
        size_t off = 0, prev_argc = 0, calls = 0;
        unsigned seed = 3;
        while (off < n) {
            size_t k;
            if (modes[m] < 0) {
                seed = seed * 1103515245u + 12345u;
                k = 1 + (seed >> 16) % 23;
            } else {
                k = (size_t)modes[m];
            }
            if (k > n - off)
                k = n - off;
            conn_recv(&c, data + off, k);
            off += k;
            calls++;
            cr_assert(!c.failed);
            /* Arguments parsed so far are kept, never reparsed. */
            if (c.nreqs == 0) {
                cr_assert_geq(c.r.argc, prev_argc);
                prev_argc = c.r.argc;
            }
        }
        cr_assert_eq(c.nreqs, 2);
        const req *q = &c.reqs[0];
        cr_assert_eq(q->argc, nargs);
        for (size_t i = 0; i < nargs; i += 997) {
            char arg[16];
            sprintf(arg, "a%zu", i);
            cr_assert_str_eq(q->argv[i], arg);
        }
        cr_assert_str_eq(q->argv[nargs - 1], "a99999");
        assert_req(&c, 1, ARGS("PING"));
        /* Linear: each byte is examined by a line search at most once, and
         * each read costs O(1) calls. */
        cr_assert_leq(c.r.scanned, n, "scanned %zu of %zu bytes", c.r.scanned,
                      n);
        cr_assert_leq(c.calls, calls + 2);
        conn_free(&c);
    }
    free(data);
}

/* A long header line arriving byte by byte is scanned once. */
Test(reader, long_lines_scanned_once)
{
    conn c;
    size_t n = 60000;
    char *line = malloc(n + 2);
    memset(line, 'x', n);
    line[0] = 'G';
    memcpy(line + n, "\r\n", 2);
    conn_init(&c, 0, 0, false);
    feed_ok(&c, line, n + 2, 1);
    cr_assert_eq(c.nreqs, 1);
    cr_assert_eq(c.reqs[0].argc, 1);
    cr_assert_eq(c.reqs[0].lens[0], n);
    cr_assert_leq(c.r.scanned, n + 2);
    conn_free(&c);

    /* A 60000-byte bulk header line, byte by byte: scanned once, then
     * refused as an invalid length. */
    char *hdr = malloc(n + 8);
    size_t hl = (size_t)sprintf(hdr, "*1\r\n$");
    memset(hdr + hl, '1', n - hl);
    memcpy(hdr + n, "\r\n", 2);
    conn_init(&c, 0, 0, false);
    conn_feed(&c, hdr, n + 2, 1, 0);
    cr_assert(c.failed);
    cr_assert_str_eq(c.reqs[0].err, "Protocol error: invalid bulk length");
    cr_assert_leq(c.r.scanned, n + 2);
    conn_free(&c);
    free(hdr);
    free(line);
}

Test(reader, empty_requests)
{
    conn c;
    conn_init(&c, 0, 0, false);
    FEED(&c, "*0\r\n*-1\r\n*-100\r\n\r\n\n \n*0\rX", 1);
    cr_assert_eq(c.nreqs, 7);
    cr_assert_eq(c.reqs[0].consumed, 4);
    cr_assert_eq(c.reqs[1].consumed, 5);
    cr_assert_eq(c.reqs[2].consumed, 7);
    cr_assert_eq(c.reqs[3].consumed, 2);
    cr_assert_eq(c.reqs[4].consumed, 1);
    cr_assert_eq(c.reqs[5].consumed, 2);
    cr_assert_eq(c.reqs[6].consumed, 4);
    for (size_t i = 0; i < 7; i++)
        assert_req(&c, i, NOARGS);
    conn_free(&c);
}

Test(reader, inline_line_endings)
{
    conn a, b;
    conn_init(&a, 0, 0, false);
    conn_init(&b, 0, 0, false);
    FEED(&a, "SET key value\r\nGET key\r\n", 1);
    FEED(&b, "SET key value\nGET key\n", 0);
    assert_req(&a, 0, ARGS("SET", "key", "value"));
    assert_req(&a, 1, ARGS("GET", "key"));
    assert_req(&b, 0, ARGS("SET", "key", "value"));
    assert_req(&b, 1, ARGS("GET", "key"));
    cr_assert_eq(a.reqs[0].consumed, 15);
    cr_assert_eq(b.reqs[0].consumed, 14);
    conn_free(&a);
    conn_free(&b);

    /* A lone '\r' inside the line separates arguments (sdssplitargs). */
    conn_init(&a, 0, 0, false);
    FEED(&a, "a\rb\r\r\n", 0);
    assert_req(&a, 0, ARGS("a", "b"));
    conn_free(&a);
}

Test(reader, inline_args_in_reader_buffer)
{
    resp_reader r;
    size_t consumed, argc;
    resp_arg *argv;
    const char *err;
    const char *buf = "set k \"a\\x41\"\r\n";
    resp_reader_init(&r, 0, 0);
    cr_assert_eq(resp_read(&r, buf, strlen(buf), &consumed, &argc, &argv, &err,
                           NULL),
                 RESP_OK);
    cr_assert_eq(argc, 3);
    cr_assert_eq(consumed, strlen(buf));
    for (size_t i = 0; i < argc; i++) {
        cr_assert_geq(argv[i].ptr, r.inline_buf);
        cr_assert_leq(argv[i].ptr + argv[i].len, r.inline_buf + r.inline_cap);
    }
    cr_assert_eq(argv[2].len, 2);
    cr_assert(memcmp(argv[2].ptr, "aA", 2) == 0);
    resp_reader_free(&r);
}

Test(reader, inline_many_args)
{
    /* More arguments than the reader's initial arrays hold. */
    size_t n = 0;
    char *line = malloc(5000 * 3 + 2);
    for (int i = 0; i < 5000; i++) {
        line[n++] = (char)('a' + i % 26);
        line[n++] = ' ';
    }
    line[n++] = '\n';
    conn c;
    conn_init(&c, 0, 0, false);
    feed_ok(&c, line, n, 0);
    cr_assert_eq(c.nreqs, 1);
    cr_assert_eq(c.reqs[0].argc, 5000);
    cr_assert_str_eq(c.reqs[0].argv[0], "a");
    cr_assert_str_eq(c.reqs[0].argv[4999], "h"); /* 4999 % 26 == 7 */
    conn_free(&c);
    free(line);
}

Test(reader, reset_keeps_arrays)
{
    conn c;
    conn_init(&c, 0, 0, false);
    FEED(&c, "*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n", 0);
    resp_arg *argv = c.r.argv;
    size_t cap = c.r.cap;
    cr_assert_not_null(argv);
    FEED(&c, "*2\r\n$1\r\nx\r\n$1\r\ny\r\n", 0);
    cr_assert_eq(c.r.argv, argv);
    cr_assert_eq(c.r.cap, cap);
    assert_req(&c, 1, ARGS("x", "y"));
    conn_free(&c);
}

/* ---- protocol errors ---- */

static char *repeat(char ch, size_t n, const char *prefix, const char *suffix)
{
    size_t pl = strlen(prefix), sl = strlen(suffix);
    char *s = malloc(pl + n + sl + 1);
    memcpy(s, prefix, pl);
    memset(s + pl, ch, n);
    memcpy(s + pl + n, suffix, sl + 1);
    return s;
}

Test(reader_errors, too_big_mbulk_count_string)
{
    /* 65536 bytes without '\r' wait; 65537 fail. */
    char *s = repeat('1', 65535, "*", "");
    conn c;
    conn_init(&c, 0, 0, false);
    feed_ok(&c, s, 65536, 4096);
    cr_assert_eq(c.nreqs, 0);
    conn_recv(&c, "1", 1);
    cr_assert(c.failed);
    cr_assert_str_eq(c.reqs[0].err,
                     "Protocol error: too big mbulk count string");
    conn_free(&c);
    free(s);

    s = repeat('9', 70000, "*", "");
    expect_error(s, strlen(s), 0, 0, 0,
                 "Protocol error: too big mbulk count string");
    free(s);
}

Test(reader_errors, invalid_multibulk_length)
{
    const char *bad[] = {
        "*abc\r\n", "*\r\n", "*1x\r\n", "*+1\r\n", "*01\r\n", "*-0\r\n",
        "* 1\r\n", "*1 \r\n", "*-\r\n", "*2147483648\r\n",
        "*99999999999999999999\r\n", "*1048577\r\n", "*1\n\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_error(bad[i], strlen(bad[i]), 0, 0, 0,
                     "Protocol error: invalid multibulk length");
    /* After a good request. */
    expect_error("*1\r\n$1\r\na\r\n*x\r\n", 15, 0, 0, 1,
                 "Protocol error: invalid multibulk length");
}

Test(reader_errors, max_args)
{
    conn c;
    conn_init(&c, 0, 3, false);
    FEED(&c, "*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n", 1);
    assert_req(&c, 0, ARGS("a", "b", "c"));
    conn_free(&c);
    expect_error("*4\r\n", 4, 0, 3, 0,
                 "Protocol error: invalid multibulk length");

    /* The default: 1024*1024 accepted (as a header), one more refused. */
    conn_init(&c, 0, 0, false);
    FEED(&c, "*1048576\r\n", 0);
    cr_assert_eq(c.nreqs, 0);
    conn_free(&c);
    expect_error("*1048577\r\n", 10, 0, 0, 0,
                 "Protocol error: invalid multibulk length");

    /* Even with a larger max_args, Redis's INT_MAX limit holds; a huge
     * announced count does not allocate for all of it up front. */
    conn_init(&c, 0, SIZE_MAX, false);
    FEED(&c, "*2147483647\r\n$1\r\na\r\n", 0);
    cr_assert_eq(c.nreqs, 0);
    cr_assert_leq(c.r.cap, 1024);
    conn_free(&c);
    expect_error("*2147483648\r\n", 13, 0, SIZE_MAX, 0,
                 "Protocol error: invalid multibulk length");
}

Test(reader_errors, expected_dollar)
{
    EXPECT_ERR("*1\r\nfoo\r\n", "Protocol error: expected '$', got 'f'");
    EXPECT_ERR("*2\r\n$1\r\na\r\n:1\r\n", "Protocol error: expected '$', got ':'");
    /* An empty line: the character is '\r' (the reply maps it to a space). */
    EXPECT_ERR("*1\r\n\r\n", "Protocol error: expected '$', got '\r'");

    /* The message lives in the reader; the reply maps CR to a space. */
    resp_reader r;
    size_t consumed, argc;
    resp_arg *argv;
    const char *err = NULL;
    resp_reader_init(&r, 0, 0);
    cr_assert_eq(resp_read(&r, "*1\r\n\r\n", 6, &consumed, &argc, &argv, &err,
                           NULL),
                 RESP_EPROTO);
    cr_assert_eq(err, r.errbuf);
    resp_buf b;
    resp_buf_init(&b);
    resp_add_errorf(&b, "ERR %s", err);
    cr_assert_eq(b.len, strlen("-ERR Protocol error: expected '$', got ' '\r\n"));
    cr_assert(memcmp(b.data, "-ERR Protocol error: expected '$', got ' '\r\n",
                     b.len) == 0);
    resp_buf_free(&b);
    resp_reader_free(&r);
}

Test(reader_errors, too_big_bulk_count_string)
{
    char *s = repeat('1', 70000, "*1\r\n$", "");
    expect_error(s, strlen(s), 0, 0, 0,
                 "Protocol error: too big bulk count string");
    free(s);
    /* Counted from the start of the bulk header: 65536 bytes wait. */
    s = repeat('1', 65535, "*2\r\n$1\r\na\r\n$", "");
    conn c;
    conn_init(&c, 0, 0, false);
    feed_ok(&c, s, strlen(s), 0);
    cr_assert_eq(c.nreqs, 0);
    conn_recv(&c, "1", 1);
    cr_assert(c.failed);
    cr_assert_str_eq(c.reqs[0].err, "Protocol error: too big bulk count string");
    conn_free(&c);
    free(s);
}

Test(reader_errors, invalid_bulk_length)
{
    const char *bad[] = {
        "*1\r\n$abc\r\n", "*1\r\n$-1\r\n", "*1\r\n$-5\r\n", "*1\r\n$01\r\n",
        "*1\r\n$\r\n", "*1\r\n$+3\r\n", "*1\r\n$3 \r\n",
        "*1\r\n$536870913\r\n", "*1\r\n$99999999999999999999\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_error(bad[i], strlen(bad[i]), 0, 0, 0,
                     "Protocol error: invalid bulk length");
}

Test(reader_errors, max_bulk)
{
    conn c;
    conn_init(&c, 10, 0, false);
    FEED(&c, "*1\r\n$10\r\n0123456789\r\n", 1);
    assert_req(&c, 0, ARGS("0123456789"));
    conn_free(&c);
    expect_error("*1\r\n$11\r\n", 9, 10, 0, 0,
                 "Protocol error: invalid bulk length");

    /* Default 512 MiB: exactly that is accepted (as a header). */
    conn_init(&c, 0, 0, false);
    FEED(&c, "*1\r\n$536870912\r\n", 0);
    cr_assert_eq(c.nreqs, 0);
    cr_assert_eq(c.last_need, 16 + 536870912 + 2);
    conn_free(&c);
}

Test(reader_errors, too_big_inline_request)
{
    char *s = repeat('x', 65536, "", "");
    conn c;
    conn_init(&c, 0, 0, false);
    feed_ok(&c, s, 65536, 1000);
    cr_assert_eq(c.nreqs, 0);
    conn_recv(&c, "x", 1);
    cr_assert(c.failed);
    cr_assert_str_eq(c.reqs[0].err, "Protocol error: too big inline request");
    conn_free(&c);
    free(s);

    /* A long line that arrives with its newline is accepted, as in Redis. */
    s = repeat('x', 100000, "", "\n");
    conn_init(&c, 0, 0, false);
    feed_ok(&c, s, strlen(s), 0);
    cr_assert_eq(c.nreqs, 1);
    cr_assert_eq(c.reqs[0].lens[0], 100000);
    conn_free(&c);
    free(s);

    /* max_inline can be changed after init. */
    conn_init(&c, 0, 0, false);
    c.r.max_inline = 10;
    conn_feed(&c, "0123456789A", 11, 1, 0);
    cr_assert(c.failed);
    cr_assert_str_eq(c.reqs[0].err, "Protocol error: too big inline request");
    conn_free(&c);
}

Test(reader_errors, unbalanced_quotes)
{
    const char *bad[] = {
        "SET \"foo\n", "GET 'a\n", "\"foo\"bar\n", "'foo'bar\r\n",
        "a \"b\\\"\n", "x \"\\\"\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_error(bad[i], strlen(bad[i]), 0, 0, 0,
                     "Protocol error: unbalanced quotes in request");
    expect_error("PING\r\nGET \"x\r\n", 14, 0, 0, 1,
                 "Protocol error: unbalanced quotes in request");
}

/* Redis finds line ends with strchr(): a NUL in a header or inline line
 * makes it wait until the 64 KiB limit. */
Test(reader_errors, nul_in_lines_like_redis)
{
    conn c;
    conn_init(&c, 0, 0, false);
    FEED(&c, "*1\0\r\n$1\r\na\r\n", 0);
    cr_assert_eq(c.nreqs, 0);
    char *pad = repeat('z', 65536, "", "");
    conn_recv(&c, pad, 65536);
    cr_assert(c.failed);
    cr_assert_str_eq(c.reqs[0].err,
                     "Protocol error: too big mbulk count string");
    conn_free(&c);

    conn_init(&c, 0, 0, false);
    FEED(&c, "GET a\0b\nPING\n", 0);
    cr_assert_eq(c.nreqs, 0);
    conn_recv(&c, pad, 65536);
    cr_assert(c.failed);
    cr_assert_str_eq(c.reqs[0].err, "Protocol error: too big inline request");
    conn_free(&c);

    conn_init(&c, 0, 0, false);
    FEED(&c, "*1\r\n$1\0\r\na\r\n", 0);
    cr_assert_eq(c.nreqs, 0);
    conn_recv(&c, pad, 65536);
    cr_assert(c.failed);
    cr_assert_str_eq(c.reqs[0].err, "Protocol error: too big bulk count string");
    conn_free(&c);
    free(pad);
}

Test(reader_errors, reader_reset_after_error)
{
    resp_reader r;
    size_t consumed, argc;
    resp_arg *argv;
    const char *err = NULL;
    resp_reader_init(&r, 0, 0);
    cr_assert_eq(resp_read(&r, "*x\r\n", 4, &consumed, &argc, &argv, &err,
                           NULL),
                 RESP_EPROTO);
    cr_assert_eq(consumed, 0);
    cr_assert_str_eq(err, "Protocol error: invalid multibulk length");
    cr_assert_eq(resp_read(&r, "*1\r\n$1\r\nz\r\n", 11, &consumed, &argc, &argv,
                           &err, NULL),
                 RESP_OK);
    cr_assert_eq(argc, 1);
    resp_reader_free(&r);
}

/* ======================================================================
 * Inline splitting (sdssplitargs)
 * ====================================================================== */

typedef struct split_case {
    const char *line;
    long argc;           /* -1: unbalanced */
    const char *args[6]; /* expected, as C strings */
} split_case;

static const split_case split_cases[] = {
    {"set foo bar", 3, {"set", "foo", "bar"}},
    {"  set   foo\tbar  ", 3, {"set", "foo", "bar"}},
    {"\t\tget\tk\t", 2, {"get", "k"}},
    {"", 0, {NULL}},
    {"   \t  ", 0, {NULL}},
    {"\"hello world\"", 1, {"hello world"}},
    {"set k \"a b\" c", 4, {"set", "k", "a b", "c"}},
    {"\"a\\nb\"", 1, {"a\nb"}},
    {"\"\\r\\t\\b\\a\\\\\\\"\"", 1, {"\r\t\b\a\\\""}},
    {"\"\\x41\\x4a\\x7a\"", 1, {"AJz"}},
    {"\"\\x4A\\x4a\"", 1, {"JJ"}},
    {"\"\\xZZ\"", 1, {"xZZ"}},       /* not hex: backslash dropped */
    {"\"\\x4\"", 1, {"x4"}},
    {"\"\\q\"", 1, {"q"}},
    {"'it\\'s'", 1, {"it's"}},
    {"'a\\nb'", 1, {"a\\nb"}},       /* no escapes in single quotes */
    {"'a\"b'", 1, {"a\"b"}},
    {"\"a'b\"", 1, {"a'b"}},
    {"\"\"", 1, {""}},
    {"\"\" ''", 2, {"", ""}},
    {"foo\"bar baz\"", 1, {"foobar baz"}}, /* quote inside a token */
    {"a'b c'", 1, {"ab c"}},
    {"\"a\"\tb", 2, {"a", "b"}},
    {"\"a\" ", 1, {"a"}},
    {"a\\b", 1, {"a\\b"}},           /* backslash outside quotes is literal */
    {"a\vb", 1, {"a\vb"}},           /* \v and \f end no token... */
    {"\v\fa", 1, {"a"}},             /* ...but are skipped between tokens */
    {"\"a\"\vb", 2, {"a", "b"}},     /* and may follow a closing quote */
    {"a\rb\nc", 3, {"a", "b", "c"}},
    {"\"foo\"bar", -1, {NULL}},
    {"'foo'bar", -1, {NULL}},
    {"\"unterminated", -1, {NULL}},
    {"'unterminated", -1, {NULL}},
    {"\"ends with backslash\\", -1, {NULL}},
    {"ok \"bad", -1, {NULL}},
    {"\"\\\"", -1, {NULL}},
};

Test(split, cases)
{
    char out[256];
    resp_arg argv[8];
    for (size_t i = 0; i < sizeof(split_cases) / sizeof(split_cases[0]); i++) {
        const split_case *c = &split_cases[i];
        long n = resp_split_inline(c->line, strlen(c->line), out, sizeof(out),
                                   argv, 8);
        cr_assert_eq(n, c->argc, "case %zu \"%s\": got %ld want %ld", i,
                     c->line, n, c->argc);
        for (long j = 0; j < n; j++) {
            cr_assert_eq(argv[j].len, strlen(c->args[j]), "case %zu arg %ld",
                         i, j);
            cr_assert(memcmp(argv[j].ptr, c->args[j], argv[j].len) == 0,
                      "case %zu arg %ld: \"%.*s\"", i, j, (int)argv[j].len,
                      argv[j].ptr);
            cr_assert_geq(argv[j].ptr, out);
            cr_assert_leq(argv[j].ptr + argv[j].len, out + sizeof(out));
        }
    }
}

Test(split, binary_and_nul)
{
    char out[32];
    resp_arg argv[4];
    /* \x00 in quotes produces a NUL byte. */
    long n = resp_split_inline("\"a\\x00b\" c", 10, out, sizeof(out), argv, 4);
    cr_assert_eq(n, 2);
    cr_assert_eq(argv[0].len, 3);
    cr_assert(memcmp(argv[0].ptr, "a\0b", 3) == 0);
    cr_assert_eq(argv[1].len, 1);
    cr_assert(memcmp(argv[1].ptr, "c", 1) == 0);
    /* \xff */
    n = resp_split_inline("\"\\xff\\xFE\"", 10, out, sizeof(out), argv, 4);
    cr_assert_eq(n, 1);
    cr_assert_eq(argv[0].len, 2);
    cr_assert(memcmp(argv[0].ptr, "\xff\xfe", 2) == 0);
    /* A raw NUL ends the line, as sdssplitargs() on a C string. */
    n = resp_split_inline("a b\0c d", 7, out, sizeof(out), argv, 4);
    cr_assert_eq(n, 2);
    cr_assert_eq(argv[1].len, 1);
    cr_assert(memcmp(argv[1].ptr, "b", 1) == 0);
    n = resp_split_inline("\"a\0\"", 4, out, sizeof(out), argv, 4);
    cr_assert_eq(n, -1);
    /* Only len bytes are read. */
    n = resp_split_inline("abc def", 3, out, sizeof(out), argv, 4);
    cr_assert_eq(n, 1);
    cr_assert_eq(argv[0].len, 3);
}

Test(split, capacity)
{
    char out[8];
    resp_arg argv[2];
    /* Enough: outcap == len, maxargs == len / 2 + 1. */
    cr_assert_eq(resp_split_inline("a b c", 5, out, 5, (resp_arg[3]){0}, 3), 3);
    /* Too few argument slots. */
    cr_assert_eq(resp_split_inline("a b c", 5, out, sizeof(out), argv, 2), -2);
    /* Too little output room. */
    cr_assert_eq(resp_split_inline("abcdefghij", 10, out, sizeof(out), argv, 2),
                 -2);
    /* Unbalanced still wins when detected first... */
    cr_assert_eq(resp_split_inline("\"abc", 4, out, sizeof(out), argv, 2), -1);
    /* ...and nothing is needed for an empty line. */
    cr_assert_eq(resp_split_inline("", 0, NULL, 0, NULL, 0), 0);
}
