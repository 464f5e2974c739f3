/* fuzz_resp: the incremental RESP request reader (resp_read) and the inline
 * splitter (resp_split_inline), under libFuzzer.
 *
 * Input: 4 control bytes, then the byte stream a client sends.
 *   byte 0  flags: bit 0  start unauthenticated
 *                  bit 1  small limits (max_bulk, max_args, max_inline)
 *                  bit 2  flip "unauthenticated" after every request (as AUTH
 *                         does between requests)
 *                  bit 3  flip it before every call, even inside a request
 *                         (not something the server does; robustness only)
 *                  bits 4-5  largest piece: 4, 64, 1024 bytes, everything
 *   bytes 1-3  seed of the generator deriving the piece sizes
 *
 * The stream arrives in pieces; after each piece the reader is called until
 * it wants more, every call on a fresh heap buffer of exactly the bytes
 * available (the server may move its buffer between calls, and ASan then
 * sees any read past the end). Checked on every call:
 *  - consumed <= len; RESP_OK consumes at least one byte; *need agrees;
 *  - every argument lies inside the request (multibulk) or inside the
 *    reader's inline buffer (inline), and is read in full;
 *  - argument count and sizes respect the limits, the unauthenticated ones
 *    included (also for a bulk still awaited, through *need);
 *  - errors are Redis-worded ("Protocol error: ...");
 *  - the line search is linear (r.scanned never exceeds the bytes seen).
 * Then the same stream is parsed in one go with a fresh reader: the two must
 * give the same requests and the same end (unless a "too big" error, whose
 * outcome depends on how the bytes arrive, or flag bit 3 is involved).
 * Finally resp_split_inline runs on the whole stream with ample and with
 * small output capacities, and resp_add_error/errorf on it. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                          \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "fuzz_resp: check failed at %s:%d: %s\n",        \
                    __FILE__, __LINE__, #cond);                              \
            abort();                                                         \
        }                                                                    \
    } while (0)

/* One parsed request or the end of the stream, for the comparison. */
typedef struct outcome {
    int rc;            /* RESP_OK, RESP_EPROTO, or RESP_AGAIN at the end */
    size_t start;      /* stream offset of the request */
    size_t consumed;
    size_t argc;
    uint64_t digest;   /* of the arguments */
    char err[64];      /* RESP_EPROTO: the error text */
} outcome;

typedef struct run {
    outcome *v;
    size_t n, cap;
    bool too_big; /* a "too big" error happened */
} run;

static void push(run *r, const outcome *o)
{
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 16;
        r->v = realloc(r->v, r->cap * sizeof *r->v);
        CHECK(r->v != NULL);
    }
    r->v[r->n++] = *o;
}

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= UINT64_C(0x100000001b3);
    }
    return h;
}

static uint32_t rng_next(uint32_t *s)
{
    /* xorshift32; a zero state stays zero, so avoid it. */
    uint32_t x = *s ? *s : 0x9e3779b9u;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *s = x;
    return x;
}

typedef struct limits {
    size_t max_bulk, max_args, max_inline; /* effective values */
    size_t init_bulk, init_args;           /* passed to resp_reader_init */
} limits;

static void reader_setup(resp_reader *r, const limits *l)
{
    resp_reader_init(r, l->init_bulk, l->init_args);
    if (l->max_inline != 0)
        r->max_inline = l->max_inline;
}

/* Check a RESP_OK result and fold it into an outcome. */
static void check_request(const resp_reader *r, const char *buf, size_t len,
                          size_t consumed, size_t argc, const resp_arg *argv,
                          bool unauth_strict, const limits *l, outcome *o)
{
    bool multibulk = buf[0] == '*';
    CHECK(consumed >= 1 && consumed <= len);
    CHECK(argc == 0 || argv != NULL);
    o->argc = argc;
    o->digest = fnv(UINT64_C(0xcbf29ce484222325), &argc, sizeof argc);
    if (multibulk) {
        CHECK(argc <= l->max_args);
        if (unauth_strict)
            CHECK(argc <= RESP_UNAUTH_MAX_ARGS);
    }
    for (size_t i = 0; i < argc; i++) {
        const char *p = argv[i].ptr;
        size_t n = argv[i].len;
        if (multibulk) {
            CHECK(p >= buf && n <= consumed && p - buf <= (ptrdiff_t)(consumed - n));
            CHECK(n <= l->max_bulk);
            if (unauth_strict)
                CHECK(n <= RESP_UNAUTH_MAX_BULK);
            /* "$<n>\r\n" right before the data, "\r\n" (unchecked, as in
             * Redis) after it. */
            CHECK(p - buf >= 4 && p[-2] == '\r');
        } else {
            CHECK(n <= consumed); /* unescaping never grows an argument */
            if (n > 0) {
                CHECK(r->inline_buf != NULL);
                CHECK(p >= r->inline_buf &&
                      (size_t)(p - r->inline_buf) + n <= r->inline_cap);
            }
        }
        o->digest = fnv(o->digest, &n, sizeof n);
        if (n > 0)
            o->digest = fnv(o->digest, p, n); /* touches every byte */
    }
}

static bool is_too_big(const char *err)
{
    return strstr(err, "too big") != NULL;
}

static void check_error(const char *err)
{
    CHECK(err != NULL);
    CHECK(strncmp(err, "Protocol error: ", 16) == 0);
    CHECK(strchr(err, '\r') == NULL || strncmp(err, "Protocol error: expected '$'", 28) == 0);
}

/* Parse @stream arriving in pieces. */
static void parse_split(const uint8_t *stream, size_t total, const limits *l,
                        uint8_t flags, uint32_t seed, run *out)
{
    static const size_t max_piece[4] = {4, 64, 1024, SIZE_MAX};
    size_t piece_cap = max_piece[(flags >> 4) & 3];
    bool unauth = flags & 1;
    bool flip_per_request = flags & 4;
    bool flip_per_call = flags & 8;
    resp_reader r;
    reader_setup(&r, l);

    size_t start = 0, avail = 0, seen_before = 0;
    for (;;) {
        if (avail < total) {
            size_t piece = piece_cap == SIZE_MAX
                               ? total - avail
                               : 1 + rng_next(&seed) % piece_cap;
            avail += piece < total - avail ? piece : total - avail;
        }
        bool again = false;
        while (!again) {
            size_t len = avail - start;
            char *buf = malloc(len ? len : 1);
            CHECK(buf != NULL);
            if (len)
                memcpy(buf, stream + start, len);
            if (flip_per_call)
                unauth = !unauth;
            r.unauthenticated = unauth;
            size_t consumed = 12345, argc = 0, need = 777;
            resp_arg *argv = NULL;
            const char *err = NULL;
            int rc = resp_read(&r, buf, len, &consumed, &argc, &argv, &err,
                               &need);
            /* Line searches are linear in the bytes seen. */
            CHECK(r.scanned <= seen_before + len);
            outcome o = {.rc = rc, .start = start};
            if (rc == RESP_OK) {
                check_request(&r, buf, len, consumed, argc, argv,
                              unauth && !flip_per_call, l, &o);
                CHECK(need == consumed);
                o.consumed = consumed;
                push(out, &o);
                start += consumed;
                seen_before += consumed;
                if (flip_per_request)
                    unauth = !unauth;
            } else if (rc == RESP_AGAIN) {
                CHECK(consumed == 0);
                CHECK(need == 0 || need > len);
                /* A bulk being awaited was accepted within the limits: what
                 * is missing is at most the bulk and its CRLF. */
                if (need > 0) {
                    CHECK(need - len <= l->max_bulk + 2);
                    if (unauth && !flip_per_call)
                        CHECK(need - len <= RESP_UNAUTH_MAX_BULK + 2);
                }
                again = true;
                if (avail == total) {
                    push(out, &o);
                    free(buf);
                    resp_reader_free(&r);
                    return;
                }
            } else {
                CHECK(rc == RESP_EPROTO);
                CHECK(consumed == 0);
                check_error(err);
                snprintf(o.err, sizeof o.err, "%s", err);
                if (is_too_big(err))
                    out->too_big = true;
                push(out, &o);
                free(buf);
                resp_reader_free(&r);
                return;
            }
            free(buf);
        }
    }
}

/* Parse @stream available all at once. */
static void parse_whole(const uint8_t *stream, size_t total, const limits *l,
                        uint8_t flags, run *out)
{
    bool unauth = flags & 1;
    resp_reader r;
    reader_setup(&r, l);
    char *buf = malloc(total ? total : 1);
    CHECK(buf != NULL);
    if (total)
        memcpy(buf, stream, total);
    size_t start = 0;
    for (;;) {
        size_t consumed, argc = 0, need;
        resp_arg *argv = NULL;
        const char *err = NULL;
        r.unauthenticated = unauth;
        int rc = resp_read(&r, buf + start, total - start, &consumed, &argc,
                           &argv, &err, &need);
        outcome o = {.rc = rc, .start = start};
        if (rc == RESP_OK) {
            check_request(&r, buf + start, total - start, consumed, argc,
                          argv, unauth, l, &o);
            o.consumed = consumed;
            push(out, &o);
            start += consumed;
            if (flags & 4)
                unauth = !unauth;
            continue;
        }
        if (rc == RESP_EPROTO) {
            check_error(err);
            snprintf(o.err, sizeof o.err, "%s", err);
            if (is_too_big(err))
                out->too_big = true;
        }
        push(out, &o);
        break;
    }
    free(buf);
    resp_reader_free(&r);
}

static void compare(const run *a, const run *b)
{
    size_t n = a->n < b->n ? a->n : b->n;
    for (size_t i = 0; i < n; i++) {
        const outcome *x = &a->v[i], *y = &b->v[i];
        if ((x->rc == RESP_EPROTO && is_too_big(x->err)) ||
            (y->rc == RESP_EPROTO && is_too_big(y->err)))
            return; /* depends on how the bytes arrived */
        CHECK(x->rc == y->rc);
        CHECK(x->start == y->start);
        if (x->rc == RESP_OK) {
            CHECK(x->consumed == y->consumed);
            CHECK(x->argc == y->argc);
            CHECK(x->digest == y->digest);
        } else if (x->rc == RESP_EPROTO) {
            CHECK(strcmp(x->err, y->err) == 0);
        }
    }
    if (!a->too_big && !b->too_big)
        CHECK(a->n == b->n);
}

static void fuzz_split_inline(const uint8_t *p, size_t len)
{
    char *line = malloc(len ? len : 1);
    CHECK(line != NULL);
    if (len)
        memcpy(line, p, len);
    /* Ample room: outcap >= len, maxargs >= len / 2 + 1 always suffice. */
    size_t outcap = len ? len : 1, maxargs = len / 2 + 1;
    char *out = malloc(outcap);
    resp_arg *argv = malloc(maxargs * sizeof *argv);
    CHECK(out != NULL && argv != NULL);
    long n = resp_split_inline(line, len, out, outcap, argv, maxargs);
    CHECK(n >= -1);
    CHECK(n == -1 || (size_t)n <= maxargs);
    size_t used = 0;
    for (long i = 0; i < n; i++) {
        CHECK(argv[i].ptr >= out && argv[i].ptr + argv[i].len <= out + outcap);
        CHECK(argv[i].ptr >= out + used); /* in order, not overlapping */
        used = (size_t)(argv[i].ptr - out) + argv[i].len;
    }
    /* Small capacities: may give -2, never write out of bounds. */
    size_t small_out = len / 3 + 1, small_args = 1 + len % 3;
    char *out2 = malloc(small_out);
    resp_arg *argv2 = malloc(small_args * sizeof *argv2);
    CHECK(out2 != NULL && argv2 != NULL);
    long n2 = resp_split_inline(line, len, out2, small_out, argv2, small_args);
    CHECK(n2 >= -2);
    if (n2 >= 0) {
        /* Fitting in less room, it must agree with the ample run. */
        CHECK(n2 == n);
        for (long i = 0; i < n2; i++) {
            CHECK(argv2[i].len == argv[i].len);
            CHECK(argv[i].len == 0 ||
                  memcmp(argv2[i].ptr, argv[i].ptr, argv[i].len) == 0);
        }
    } else if (n2 == -1) {
        CHECK(n == -1);
    }
    free(out2);
    free(argv2);
    free(out);
    free(argv);
    free(line);
}

static void fuzz_error_reply(const uint8_t *p, size_t len)
{
    size_t n = len < 300 ? len : 300;
    char *msg = malloc(n + 1);
    CHECK(msg != NULL);
    if (n)
        memcpy(msg, p, n);
    msg[n] = '\0';
    resp_buf b;
    resp_buf_init(&b);
    resp_add_error(&b, msg);
    resp_add_errorf(&b, "ERR %s", msg);
    /* Two lines, each "-" + text without CR or LF + CRLF. */
    size_t pos = 0;
    for (int line = 0; line < 2; line++) {
        CHECK(pos < b.len && b.data[pos] == '-');
        size_t i = pos + 1;
        while (i < b.len && b.data[i] != '\r' && b.data[i] != '\n')
            i++;
        CHECK(i + 1 < b.len && b.data[i] == '\r' && b.data[i + 1] == '\n');
        pos = i + 2;
    }
    CHECK(pos == b.len);
    resp_buf_free(&b);
    free(msg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4)
        return 0;
    uint8_t flags = data[0];
    uint32_t seed = (uint32_t)data[1] | (uint32_t)data[2] << 8 |
                    (uint32_t)data[3] << 16;
    const uint8_t *stream = data + 4;
    size_t total = size - 4;

    limits l = {0};
    if (flags & 2) {
        /* Small limits, derived from the seed so they vary. */
        l.init_bulk = l.max_bulk = 1 + (seed & 0x3f);
        l.init_args = l.max_args = 1 + ((seed >> 6) & 0xf);
        l.max_inline = 1 + ((seed >> 10) & 0x3f);
    } else {
        l.max_bulk = (size_t)512 * 1024 * 1024;
        l.max_args = (size_t)1024 * 1024;
    }

    run split = {0}, whole = {0};
    parse_split(stream, total, &l, flags, seed, &split);
    if (!(flags & 8)) {
        parse_whole(stream, total, &l, flags, &whole);
        compare(&split, &whole);
    }
    free(split.v);
    free(whole.v);

    fuzz_split_inline(stream, total);
    fuzz_error_reply(stream, total);
    return 0;
}
