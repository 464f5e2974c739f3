/* resp: RESP2 request reader and reply encoders (see resp.h).
 *
 * The reader follows Redis 7's processMultibulkBuffer() and
 * processInlineBuffer() (networking.c), error texts included:
 *
 *  - A request starting with '*' is a multibulk: "*<n>\r\n" then n times
 *    "$<len>\r\n<len bytes>\r\n". Numbers are parsed as strictly as Redis's
 *    string2ll() ("-0", "+1", "01", " 1" are all invalid). A count <= 0 is
 *    an empty request. Like Redis, the byte after each '\r' and the two
 *    bytes after bulk data are skipped without being checked.
 *  - Anything else is an inline command: one line ending in "\n" (a "\r"
 *    before it is dropped) split like sdssplitargs().
 *  - Redis looks for line ends with strchr(), which stops at a NUL byte; a
 *    NUL before the end of a header or inline line therefore makes Redis
 *    wait for more data until the line exceeds 64 KiB, then fail with the
 *    "too big" error. This reader behaves the same.
 *  - Limits: 64 KiB (max_inline) for header and inline lines without their
 *    terminator; max_bulk for bulk lengths; max_args (and INT_MAX, as Redis)
 *    for argument counts.
 *
 * Resumption: all state is kept as offsets from the request start, since
 * the caller may move its buffer between calls. Complete arguments are
 * never parsed again, and the search for a line end resumes where the last
 * one stopped (r->scan), so a request costs O(size) however it is split.
 */
#include "resp.h"

#include <assert.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RESP_DEFAULT_MAX_BULK   ((size_t)512 * 1024 * 1024)
#define RESP_DEFAULT_MAX_ARGS   ((size_t)1024 * 1024)
#define RESP_DEFAULT_MAX_INLINE ((size_t)64 * 1024)
#define RESP_ARGV_INITIAL       1024 /* as Redis: grow beyond by doubling */

enum {
    ST_START = 0,  /* nothing of the request seen yet */
    ST_MB_COUNT,   /* reading "*<n>\r\n" */
    ST_MB_HDR,     /* reading "$<len>\r\n" */
    ST_MB_DATA,    /* waiting for <len> bytes + 2 */
    ST_INLINE,     /* waiting for the end of an inline line */
};

/* ---- memory ---------------------------------------------------------- */

static void oom(size_t n)
{
    fprintf(stderr, "gcsd: out of memory allocating %zu bytes\n", n);
    fflush(stderr);
    abort();
}

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (q == NULL)
        oom(n);
    return q;
}

/* n * size with overflow check (an overflow is treated as out of memory). */
static size_t xmul(size_t n, size_t size)
{
    if (size != 0 && n > SIZE_MAX / size)
        oom(SIZE_MAX);
    return n * size;
}

/* ---- integers ---------------------------------------------------------- */

static const char digit_pairs[201] =
    "0001020304050607080910111213141516171819"
    "2021222324252627282930313233343536373839"
    "4041424344454647484950515253545556575859"
    "6061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

/* Write @v in decimal ending just before @end; return the first byte. */
static char *u64_digits(char *end, uint64_t v)
{
    char *p = end;
    while (v >= 100) {
        unsigned i = (unsigned)(v % 100) * 2;
        v /= 100;
        *--p = digit_pairs[i + 1];
        *--p = digit_pairs[i];
    }
    if (v < 10) {
        *--p = (char)('0' + v);
    } else {
        unsigned i = (unsigned)v * 2;
        *--p = digit_pairs[i + 1];
        *--p = digit_pairs[i];
    }
    return p;
}

/* Redis's string2ll(): an optional '-', then "0" alone or [1-9][0-9]*, with
 * nothing else and no overflow. */
static bool parse_ll(const char *s, size_t n, long long *out)
{
    size_t i = 0;
    bool neg = false;
    unsigned long long v;

    if (n == 0)
        return false;
    if (n == 1 && s[0] == '0') {
        *out = 0;
        return true;
    }
    if (s[0] == '-') {
        neg = true;
        if (++i == n)
            return false;
    }
    if (s[i] < '1' || s[i] > '9')
        return false;
    v = (unsigned long long)(s[i++] - '0');
    for (; i < n; i++) {
        unsigned d;
        if (s[i] < '0' || s[i] > '9')
            return false;
        d = (unsigned)(s[i] - '0');
        if (v > (ULLONG_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    if (neg) {
        if (v > (unsigned long long)LLONG_MAX + 1)
            return false;
        *out = v == (unsigned long long)LLONG_MAX + 1 ? LLONG_MIN
                                                      : -(long long)v;
    } else {
        if (v > (unsigned long long)LLONG_MAX)
            return false;
        *out = (long long)v;
    }
    return true;
}

/* ---- inline splitting (sdssplitargs) ---------------------------------- */

/* isspace() in the "C" locale. */
static inline bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' ||
           c == '\r';
}

static inline bool is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
           (c >= 'A' && c <= 'F');
}

static inline int hex_val(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return c - 'A' + 10;
}

/* Split like sdssplitargs(). Returns the total argument count (only the
 * first @maxargs are stored in @argv), -1 on unbalanced quotes, -2 when
 * @out is too small. */
static long split_args(const char *line, size_t len, char *out, size_t outcap,
                       resp_arg *argv, size_t maxargs)
{
    const char *nul = len ? memchr(line, '\0', len) : NULL;
    size_t p = 0, o = 0;
    long argc = 0;

    if (nul != NULL)
        len = (size_t)(nul - line);
#define AT(i) ((i) < len ? line[i] : '\0')
#define EMIT(ch)                                                              \
    do {                                                                      \
        if (o >= outcap)                                                      \
            return -2;                                                        \
        out[o++] = (char)(ch);                                                \
    } while (0)

    for (;;) {
        size_t start;
        bool inq = false, insq = false, done = false;

        while (p < len && is_space(line[p]))
            p++;
        if (p >= len)
            return argc;
        start = o;
        while (!done) {
            char c = AT(p);
            if (inq) {
                if (c == '\\' && AT(p + 1) == 'x' && is_hex(AT(p + 2)) &&
                    is_hex(AT(p + 3))) {
                    EMIT(hex_val(AT(p + 2)) * 16 + hex_val(AT(p + 3)));
                    p += 3;
                } else if (c == '\\' && AT(p + 1) != '\0') {
                    char e;
                    p++;
                    switch (line[p]) {
                    case 'n': e = '\n'; break;
                    case 'r': e = '\r'; break;
                    case 't': e = '\t'; break;
                    case 'b': e = '\b'; break;
                    case 'a': e = '\a'; break;
                    default: e = line[p]; break;
                    }
                    EMIT(e);
                } else if (c == '"') {
                    /* The closing quote must be followed by a space or by
                     * the end of the line. */
                    if (AT(p + 1) != '\0' && !is_space(AT(p + 1)))
                        return -1;
                    done = true;
                } else if (c == '\0') {
                    return -1; /* unterminated quotes */
                } else {
                    EMIT(c);
                }
            } else if (insq) {
                if (c == '\\' && AT(p + 1) == '\'') {
                    p++;
                    EMIT('\'');
                } else if (c == '\'') {
                    if (AT(p + 1) != '\0' && !is_space(AT(p + 1)))
                        return -1;
                    done = true;
                } else if (c == '\0') {
                    return -1;
                } else {
                    EMIT(c);
                }
            } else {
                switch (c) {
                case ' ':
                case '\n':
                case '\r':
                case '\t':
                case '\0':
                    done = true;
                    break;
                case '"':
                    inq = true;
                    break;
                case '\'':
                    insq = true;
                    break;
                default:
                    EMIT(c);
                    break;
                }
            }
            if (AT(p) != '\0')
                p++;
        }
        if ((size_t)argc < maxargs) {
            argv[argc].ptr = out + start;
            argv[argc].len = o - start;
        }
        argc++;
    }
#undef AT
#undef EMIT
}

long resp_split_inline(const char *line, size_t len, char *out, size_t outcap,
                       resp_arg *argv, size_t maxargs)
{
    long n = split_args(line, len, out, outcap, argv, maxargs);
    if (n > 0 && (size_t)n > maxargs)
        return -2;
    return n;
}

/* ---- request reader ---------------------------------------------------- */

static void reader_reset(resp_reader *r)
{
    r->state = ST_START;
    r->mbulk_left = 0;
    r->bulk_len = -1;
    r->pos = 0;
    r->scan = 0;
    r->argc = 0;
}

void resp_reader_init(resp_reader *r, size_t max_bulk, size_t max_args)
{
    memset(r, 0, sizeof(*r));
    r->max_bulk = max_bulk ? max_bulk : RESP_DEFAULT_MAX_BULK;
    r->max_args = max_args ? max_args : RESP_DEFAULT_MAX_ARGS;
    r->max_inline = RESP_DEFAULT_MAX_INLINE;
    reader_reset(r);
}

void resp_reader_free(resp_reader *r)
{
    free(r->offs);
    free(r->lens);
    free(r->argv);
    free(r->inline_buf);
    r->offs = NULL;
    r->lens = NULL;
    r->argv = NULL;
    r->inline_buf = NULL;
    r->cap = 0;
    r->inline_cap = 0;
    reader_reset(r);
}

/* Make room for @n arguments. */
static void reader_grow(resp_reader *r, size_t n)
{
    if (n <= r->cap)
        return;
    r->offs = xrealloc(r->offs, xmul(n, sizeof(*r->offs)));
    r->lens = xrealloc(r->lens, xmul(n, sizeof(*r->lens)));
    r->argv = xrealloc(r->argv, xmul(n, sizeof(*r->argv)));
    r->cap = n;
}

/* Search buf[r->scan..len) for the end of the line starting at r->pos:
 * the first @term byte, stopping at a NUL byte as strchr() would. Returns
 * its index, or SIZE_MAX when not (yet) found. The search resumes at
 * r->scan next time and stays stuck on a NUL byte, as Redis does. */
static size_t find_line_end(resp_reader *r, const char *buf, size_t len,
                            char term)
{
    size_t i = r->scan;
    while (i < len && buf[i] != term && buf[i] != '\0')
        i++;
    r->scanned += i - r->scan;
    r->scan = i;
    return (i < len && buf[i] == term) ? i : SIZE_MAX;
}

static int proto_error(resp_reader *r, const char **err, const char *msg)
{
    *err = msg;
    reader_reset(r);
    return RESP_EPROTO;
}

/* A request is complete: publish its arguments. */
static int request_done(resp_reader *r, const char *buf, size_t consumed,
                        size_t *consumedp, size_t *argc, resp_arg **argv,
                        size_t *need)
{
    if (r->state != ST_INLINE)
        for (size_t i = 0; i < r->argc; i++) {
            r->argv[i].ptr = buf + r->offs[i];
            r->argv[i].len = r->lens[i];
        }
    *argc = r->argc;
    *argv = r->argv;
    *consumedp = consumed;
    if (need)
        *need = consumed;
    reader_reset(r);
    return RESP_OK;
}

static int read_inline(resp_reader *r, const char *buf, size_t len,
                       size_t *consumed, size_t *argc, resp_arg **argv,
                       const char **err, size_t *need)
{
    size_t nl = find_line_end(r, buf, len, '\n');
    size_t end;
    long n;

    if (nl == SIZE_MAX) {
        if (len > r->max_inline)
            return proto_error(r, err,
                               "Protocol error: too big inline request");
        return RESP_AGAIN;
    }
    end = nl;
    if (end > 0 && buf[end - 1] == '\r')
        end--;
    if (r->inline_cap < end) {
        r->inline_buf = xrealloc(r->inline_buf, end);
        r->inline_cap = end;
    }
    n = split_args(buf, end, r->inline_buf, r->inline_cap, r->argv, r->cap);
    if (n > 0 && (size_t)n > r->cap) {
        reader_grow(r, (size_t)n);
        n = split_args(buf, end, r->inline_buf, r->inline_cap, r->argv,
                       r->cap);
    }
    if (n < 0) /* -2 cannot happen: inline_cap >= end */
        return proto_error(r, err,
                           "Protocol error: unbalanced quotes in request");
    r->argc = (size_t)n;
    return request_done(r, buf, nl + 1, consumed, argc, argv, need);
}

int resp_read(resp_reader *r, const char *buf, size_t len, size_t *consumed,
              size_t *argc, resp_arg **argv, const char **err, size_t *need)
{
    long long ll;
    size_t cr;

    /* The caller must pass the same request start with at least as many
     * bytes as before. */
    assert(len >= r->pos && len >= r->scan);
    *consumed = 0;
    if (need)
        *need = 0;

    switch (r->state) {
    case ST_START:
        if (len == 0)
            return RESP_AGAIN;
        if (buf[0] != '*') {
            r->state = ST_INLINE;
            return read_inline(r, buf, len, consumed, argc, argv, err, need);
        }
        r->state = ST_MB_COUNT;
        /* fall through */
    case ST_MB_COUNT:
        cr = find_line_end(r, buf, len, '\r');
        if (cr == SIZE_MAX || cr + 1 >= len) {
            /* No "\r" yet, or nothing after it yet. */
            if (cr == SIZE_MAX && len > r->max_inline)
                return proto_error(
                    r, err, "Protocol error: too big mbulk count string");
            return RESP_AGAIN;
        }
        if (!parse_ll(buf + 1, cr - 1, &ll) || ll > INT_MAX ||
            (ll > 0 && (unsigned long long)ll > r->max_args))
            return proto_error(r, err,
                               "Protocol error: invalid multibulk length");
        if (r->unauthenticated && ll > RESP_UNAUTH_MAX_ARGS)
            return proto_error(
                r, err, "Protocol error: unauthenticated multibulk length");
        r->pos = cr + 2;
        if (ll <= 0) /* "*0" and "*-1" (any negative) are empty requests */
            return request_done(r, buf, r->pos, consumed, argc, argv, need);
        r->mbulk_left = ll;
        r->argc = 0;
        reader_grow(r, (size_t)ll < RESP_ARGV_INITIAL ? (size_t)ll
                                                      : RESP_ARGV_INITIAL);
        r->bulk_len = -1;
        r->scan = r->pos;
        r->state = ST_MB_HDR;
        /* fall through */
    case ST_MB_HDR:
    case ST_MB_DATA:
        while (r->mbulk_left > 0) {
            if (r->state == ST_MB_HDR) {
                cr = find_line_end(r, buf, len, '\r');
                if (cr == SIZE_MAX || cr + 1 >= len) {
                    if (cr == SIZE_MAX && len - r->pos > r->max_inline)
                        return proto_error(
                            r, err,
                            "Protocol error: too big bulk count string");
                    return RESP_AGAIN;
                }
                if (buf[r->pos] != '$') {
                    snprintf(r->errbuf, sizeof(r->errbuf),
                             "Protocol error: expected '$', got '%c'",
                             buf[r->pos]);
                    *err = r->errbuf;
                    reader_reset(r);
                    return RESP_EPROTO;
                }
                if (!parse_ll(buf + r->pos + 1, cr - r->pos - 1, &ll) ||
                    ll < 0 || (unsigned long long)ll > r->max_bulk)
                    return proto_error(r, err,
                                       "Protocol error: invalid bulk length");
                if (r->unauthenticated && ll > RESP_UNAUTH_MAX_BULK)
                    return proto_error(
                        r, err, "Protocol error: unauthenticated bulk length");
                r->bulk_len = ll;
                r->pos = cr + 2;
                r->state = ST_MB_DATA;
            }
            /* ST_MB_DATA: the bulk and the two bytes after it. */
            if (len - r->pos < (size_t)r->bulk_len + 2) {
                if (need)
                    *need = r->pos + (size_t)r->bulk_len + 2;
                return RESP_AGAIN;
            }
            if (r->argc == r->cap) {
                size_t want = r->cap * 2;
                size_t most = r->argc + (size_t)r->mbulk_left;
                reader_grow(r, want < most ? want : most);
            }
            r->offs[r->argc] = r->pos;
            r->lens[r->argc] = (size_t)r->bulk_len;
            r->argc++;
            r->pos += (size_t)r->bulk_len + 2;
            r->bulk_len = -1;
            r->mbulk_left--;
            r->scan = r->pos;
            r->state = ST_MB_HDR;
        }
        return request_done(r, buf, r->pos, consumed, argc, argv, need);
    case ST_INLINE:
        return read_inline(r, buf, len, consumed, argc, argv, err, need);
    default:
        abort();
    }
}

/* ---- reply buffer ------------------------------------------------------- */

void resp_buf_init(resp_buf *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void resp_buf_free(resp_buf *b)
{
    free(b->data);
    resp_buf_init(b);
}

void resp_buf_reset(resp_buf *b)
{
    b->len = 0;
}

void resp_buf_reserve(resp_buf *b, size_t extra)
{
    size_t want, cap;

    if (extra <= b->cap - b->len)
        return;
    if (extra > SIZE_MAX - b->len)
        oom(SIZE_MAX);
    want = b->len + extra;
    cap = b->cap < 64 ? 64 : b->cap;
    while (cap < want)
        cap = cap > SIZE_MAX / 2 ? want : cap * 2;
    b->data = xrealloc(b->data, cap);
    b->cap = cap;
}

void resp_add_raw(resp_buf *b, const void *p, size_t n)
{
    if (n == 0)
        return;
    resp_buf_reserve(b, n);
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

/* "<prefix>[-]<v>\r\n" */
static void add_num_line(resp_buf *b, char prefix, bool neg, uint64_t v)
{
    char tmp[24];
    char *end = tmp + sizeof(tmp);
    char *s;
    size_t n;

    end[-2] = '\r';
    end[-1] = '\n';
    s = u64_digits(end - 2, v);
    if (neg)
        *--s = '-';
    *--s = prefix;
    n = (size_t)(end - s);
    resp_buf_reserve(b, n);
    memcpy(b->data + b->len, s, n);
    b->len += n;
}

/* "<prefix><s with CR/LF mapped to spaces>\r\n" */
static void add_line(resp_buf *b, char prefix, const char *s, size_t n,
                     bool map_crlf)
{
    char *d;

    resp_buf_reserve(b, n + 3);
    d = b->data + b->len;
    *d++ = prefix;
    memcpy(d, s, n);
    if (map_crlf)
        for (size_t i = 0; i < n; i++)
            if (d[i] == '\r' || d[i] == '\n')
                d[i] = ' ';
    d[n] = '\r';
    d[n + 1] = '\n';
    b->len += n + 3;
}

void resp_add_status(resp_buf *b, const char *s)
{
    add_line(b, '+', s, strlen(s), false);
}

void resp_add_error(resp_buf *b, const char *msg)
{
    add_line(b, '-', msg, strlen(msg), true);
}

/* Like Redis's addReplyErrorFormat(): CR and LF are trimmed from both ends,
 * then the remaining ones are replaced by spaces. */
void resp_add_printf(resp_buf *b, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n >= sizeof line) n = sizeof line - 1;
    resp_add_raw(b, line, (size_t)n);
}

void resp_add_errorf(resp_buf *b, const char *fmt, ...)
{
    char small[256];
    char *s = small;
    va_list ap;
    int n;
    size_t start = 0, end;

    va_start(ap, fmt);
    n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0) {
        small[0] = '\0';
        n = 0;
    } else if ((size_t)n >= sizeof(small)) {
        s = xrealloc(NULL, (size_t)n + 1);
        va_start(ap, fmt);
        vsnprintf(s, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    /* Like sdscatvprintf(), the message ends at its first NUL (a "%c" of
     * '\0' truncates it). */
    end = strlen(s);
    while (start < end && (s[start] == '\r' || s[start] == '\n'))
        start++;
    while (end > start && (s[end - 1] == '\r' || s[end - 1] == '\n'))
        end--;
    add_line(b, '-', s + start, end - start, true);
    if (s != small)
        free(s);
}

void resp_add_integer(resp_buf *b, long long v)
{
    if (v < 0)
        add_num_line(b, ':', true, (uint64_t)0 - (uint64_t)v);
    else
        add_num_line(b, ':', false, (uint64_t)v);
}

void resp_add_bulk(resp_buf *b, const void *p, size_t n)
{
    add_num_line(b, '$', false, (uint64_t)n);
    resp_buf_reserve(b, n + 2);
    if (n)
        memcpy(b->data + b->len, p, n);
    b->data[b->len + n] = '\r';
    b->data[b->len + n + 1] = '\n';
    b->len += n + 2;
}

void resp_add_bulk_str(resp_buf *b, const char *s)
{
    resp_add_bulk(b, s, strlen(s));
}

void resp_add_bulk_u64(resp_buf *b, uint64_t v)
{
    char tmp[24];
    char *end = tmp + sizeof(tmp);
    char *s = u64_digits(end, v);
    resp_add_bulk(b, s, (size_t)(end - s));
}

void resp_add_null(resp_buf *b)
{
    resp_add_raw(b, "$-1\r\n", 5);
}

void resp_add_null_array(resp_buf *b)
{
    resp_add_raw(b, "*-1\r\n", 5);
}

void resp_add_array(resp_buf *b, size_t n)
{
    add_num_line(b, '*', false, (uint64_t)n);
}
