/* resp: the Redis protocol (RESP2) for gcsd: an incremental request reader
 * that does not copy arguments, and a growable reply buffer with encoders.
 */
#ifndef GCS_RESP_H
#define GCS_RESP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One argument: points into the caller's input buffer (no copy). */
typedef struct resp_arg {
    const char *ptr;
    size_t len;
} resp_arg;

enum {
    RESP_OK = 0,      /* a request is complete */
    RESP_AGAIN = 1,   /* need more input */
    RESP_EPROTO = -1, /* protocol error: reply it, then close the connection */
};

#define RESP_UNAUTH_MAX_ARGS 10
#define RESP_UNAUTH_MAX_BULK 16384

/* Incremental reader state for one connection. Parsing resumes where it left
 * off, so a 512 MiB bulk or a request with a million arguments costs O(n)
 * however the bytes arrive. Fields are private. */
typedef struct resp_reader {
    size_t max_bulk;     /* largest accepted bulk string */
    size_t max_args;     /* largest accepted argument count */
    size_t max_inline;   /* largest accepted inline request line */
    /* Set by the caller while the client still owes AUTH: like Redis, accept
     * at most RESP_UNAUTH_MAX_ARGS arguments and RESP_UNAUTH_MAX_BULK bytes
     * per bulk, so an unauthenticated peer cannot make us buffer much. */
    bool unauthenticated;
    /* private */
    int state;
    long long mbulk_left;  /* multibulk: arguments still to read */
    long long bulk_len;    /* multibulk: length of the bulk being read, -1 */
    size_t pos;            /* bytes of the current request parsed so far */
    size_t argc;
    size_t cap;
    size_t *offs;          /* argument offsets from the request start */
    size_t *lens;
    resp_arg *argv;
    char *inline_buf;      /* unescaped inline arguments live here */
    size_t inline_cap;
    size_t scan;           /* where the search for the current line end
                              resumes (bytes from the request start) */
    size_t scanned;        /* bytes examined by line searches since init;
                              lets tests check that parsing is linear */
    char errbuf[48];       /* "Protocol error: expected '$', got 'X'" */
} resp_reader;

/* Limits: 0 picks the defaults: max_bulk 512 MiB (Redis's
 * proto-max-bulk-len), max_args 1024*1024 (Redis itself allows up to
 * INT_MAX), max_inline 64 KiB (Redis's PROTO_INLINE_MAX_SIZE; set the field
 * after init to change it). */
void resp_reader_init(resp_reader *r, size_t max_bulk, size_t max_args);
void resp_reader_free(resp_reader *r);

/* Parse the next request at the start of @buf[0..len). Call again with the
 * same start (plus any newly arrived bytes) after RESP_AGAIN.
 * - RESP_OK: *argc and *argv describe the request; *consumed is its size in
 *   bytes. *argv and the strings it points to stay valid until the next call
 *   or until the caller moves or frees @buf. An empty line (inline) or an
 *   empty multibulk ("*0") yields *argc == 0; skip it.
 * - RESP_AGAIN: nothing consumed yet; wait for more bytes.
 *   Multibulk arguments point into @buf; inline arguments are unescaped
 *   into the reader's own buffer and point there.
 * - RESP_EPROTO: *err is a Redis-worded message without "-" or CRLF,
 *   e.g. "Protocol error: invalid multibulk length". It is static, except
 *   "Protocol error: expected '$', got 'X'", which lives in the reader and
 *   stays valid until the next call or resp_reader_free(). The reader is
 *   reset; the caller should reply the error and close the connection.
 * Also reports, through *need (may be NULL), how many bytes in total the
 * current request needs when that is known (a hint to grow the buffer once):
 * on RESP_AGAIN while a bulk's data is awaited, the offset from @buf of the
 * end of that bulk and its CRLF; on RESP_OK, *consumed; otherwise 0.
 */
int resp_read(resp_reader *r, const char *buf, size_t len, size_t *consumed,
              size_t *argc, resp_arg **argv, const char **err, size_t *need);

/* A growable output buffer. Allocation failure aborts the process (like
 * Redis's zmalloc): a reply can't be half-written. */
typedef struct resp_buf {
    char *data;
    size_t len;
    size_t cap;
} resp_buf;

void resp_buf_init(resp_buf *b);
void resp_buf_free(resp_buf *b);
void resp_buf_reset(resp_buf *b);                 /* len = 0, keep memory */
void resp_buf_reserve(resp_buf *b, size_t extra); /* room for @extra more */
void resp_add_raw(resp_buf *b, const void *p, size_t n);
void resp_add_status(resp_buf *b, const char *s); /* "+s\r\n" */
/* "-<msg>\r\n"; @msg includes the error code ("ERR ...", "WRONGTYPE ...");
 * CR and LF in it are replaced by spaces, as Redis does. */
void resp_add_error(resp_buf *b, const char *msg);
void resp_add_errorf(resp_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Raw formatted text (INFO lines, HTTP bodies), cut at 511 bytes. */
void resp_add_printf(resp_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void resp_add_integer(resp_buf *b, long long v);       /* ":v\r\n" */
void resp_add_bulk(resp_buf *b, const void *p, size_t n);
void resp_add_bulk_str(resp_buf *b, const char *s);
void resp_add_bulk_u64(resp_buf *b, uint64_t v);       /* decimal, as bulk */
void resp_add_null(resp_buf *b);                       /* "$-1\r\n" */
void resp_add_null_array(resp_buf *b);                 /* "*-1\r\n" */
void resp_add_array(resp_buf *b, size_t n);            /* "*n\r\n" */

/* Split an inline command line like Redis's sdssplitargs ("quotes", 'single',
 * \xHH escapes). Exposed for tests and redis-cli compatibility. Returns the
 * argument count, or -1 on unbalanced quotes. Arguments are written to @out
 * (capacity @outcap bytes) and described by @argv (capacity @maxargs).
 * Returns -2 if @outcap or @maxargs is too small (outcap >= len and
 * maxargs >= len / 2 + 1 always suffice). Like sdssplitargs() on a C string,
 * the line ends at its first NUL byte, if any. */
long resp_split_inline(const char *line, size_t len, char *out, size_t outcap,
                       resp_arg *argv, size_t maxargs);

#endif /* GCS_RESP_H */
