/* fuzz_gen_corpus: writes the seed corpora of the fuzz targets.
 *
 *   build-fuzz/fuzz/fuzz_gen_corpus fuzz/corpus
 *
 * creates <dir>/fuzz_resp, fuzz_glob, fuzz_dump and fuzz_commands and fills
 * them with small inputs in each target's format (see the top of each
 * fuzz_*.c). Dumps come from storage_dump of small real stores, plus a few
 * hand-assembled variants. Deterministic: same program, same files. */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "command.h"
#include "fsm.h"
#include "fuzz_util.h"
#include "rglue_int.h"
#include "ray.pb-c.h"
#include "storage.h"

static const char *root;

__attribute__((noreturn)) static void die(const char *what)
{
    fprintf(stderr, "fuzz_gen_corpus: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void write_file(const char *target, const char *name, const void *p,
                       size_t n)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", root, target);
    if (mkdir(path, 0755) != 0 && errno != EEXIST)
        die(path);
    snprintf(path, sizeof path, "%s/%s/%s", root, target, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        die(path);
    if (n > 0 && fwrite(p, 1, n, f) != n)
        die(path);
    if (fclose(f) != 0)
        die(path);
}

/* ---- a byte builder ----------------------------------------------------- */

typedef struct bytes {
    uint8_t *p;
    size_t n, cap;
} bytes;

static void put(bytes *b, const void *p, size_t n)
{
    if (b->cap - b->n < n) {
        size_t cap = b->cap ? b->cap * 2 : 256;
        while (cap - b->n < n)
            cap *= 2;
        b->p = realloc(b->p, cap);
        if (b->p == NULL)
            die("realloc");
        b->cap = cap;
    }
    if (n)
        memcpy(b->p + b->n, p, n);
    b->n += n;
}

static void put_u8(bytes *b, uint8_t v)
{
    put(b, &v, 1);
}

static void put_be(bytes *b, uint64_t v, size_t n)
{
    uint8_t tmp[8];
    for (size_t i = n; i-- > 0;) {
        tmp[i] = (uint8_t)v;
        v >>= 8;
    }
    put(b, tmp, n);
}

/* ---- fuzz_resp: 4 control bytes, then the stream ------------------------- */

static void resp_seed(const char *name, uint8_t flags, uint32_t seed,
                      const char *stream, size_t len)
{
    bytes b = {0};
    put_u8(&b, flags);
    put_u8(&b, (uint8_t)seed);
    put_u8(&b, (uint8_t)(seed >> 8));
    put_u8(&b, (uint8_t)(seed >> 16));
    put(&b, stream, len);
    write_file("fuzz_resp", name, b.p, b.n);
    free(b.p);
}

#define RESP(name, flags, seed, lit) \
    resp_seed(name, flags, seed, lit, sizeof(lit) - 1)

static void gen_resp(void)
{
    /* flags: 1 unauthenticated, 2 small limits, 4 flip per request,
     * 8 flip per call, 0x00/0x10/0x20/0x30 pieces of <= 4/64/1024/all */
    RESP("set_get", 0x30, 1,
         "*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n"
         "*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n");
    RESP("set_get_bytewise", 0x00, 7,
         "*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n"
         "*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n");
    RESP("pipeline", 0x10, 99,
         "*1\r\n$4\r\nPING\r\n*2\r\n$4\r\nECHO\r\n$0\r\n\r\n"
         "*3\r\n$6\r\nINCRBY\r\n$1\r\nn\r\n$2\r\n-5\r\n"
         "*4\r\n$4\r\nHSET\r\n$1\r\nh\r\n$1\r\nf\r\n$1\r\nv\r\n");
    RESP("inline_ping", 0x30, 0, "PING\r\n");
    RESP("inline_lf_only", 0x00, 3, "PING\nECHO hi\n");
    RESP("inline_quotes", 0x10, 5,
         "SET \"a b\" 'c\\'d' \"\\x41\\n\\t\\r\\\\\"\r\n");
    RESP("inline_unbalanced", 0x30, 0, "SET \"abc\r\n");
    RESP("inline_quote_then_char", 0x30, 0, "SET \"a\"b c\r\n");
    RESP("inline_empty_lines", 0x00, 11, "\r\n\n  \r\nPING\r\n");
    RESP("inline_nul", 0x30, 0, "PI\0NG\r\n");
    RESP("empty_multibulk", 0x30, 0, "*0\r\n*-1\r\n*-5\r\n*1\r\n$0\r\n\r\n");
    RESP("bad_count", 0x30, 0, "*abc\r\n");
    RESP("bad_count_plus", 0x30, 0, "*+1\r\n$1\r\na\r\n");
    RESP("bad_count_zero_lead", 0x30, 0, "*01\r\n$1\r\na\r\n");
    RESP("count_too_big", 0x30, 0, "*2147483648\r\n");
    RESP("expected_dollar", 0x30, 0, "*1\r\n+foo\r\n");
    RESP("bad_bulk_len", 0x30, 0, "*1\r\n$-1\r\n");
    RESP("bulk_too_big", 0x30, 0, "*1\r\n$536870913\r\n");
    RESP("bulk_huge", 0x30, 0, "*1\r\n$99999999999999999999\r\n");
    RESP("bulk_pending", 0x10, 17, "*1\r\n$100\r\nabc");
    RESP("bulk_crlf_unchecked", 0x30, 0, "*2\r\n$1\r\naXY$1\r\nbZZ");
    RESP("unauth_args", 0x31, 0,
         "*11\r\n$1\r\na\r\n$1\r\na\r\n$1\r\na\r\n$1\r\na\r\n$1\r\na\r\n"
         "$1\r\na\r\n$1\r\na\r\n$1\r\na\r\n$1\r\na\r\n$1\r\na\r\n$1\r\na\r\n");
    RESP("unauth_bulk", 0x31, 0, "*2\r\n$4\r\nAUTH\r\n$16385\r\n");
    RESP("unauth_then_auth", 0x35, 0,
         "*2\r\n$4\r\nAUTH\r\n$2\r\npw\r\n*11\r\n$1\r\na\r\n");
    RESP("small_limits", 0x12, 0x1234,
         "*3\r\n$3\r\nSET\r\n$10\r\n0123456789\r\n$1\r\nv\r\n");
    RESP("small_limits_inline", 0x22, 0x0400,
         "SET aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa b\r\n");
    RESP("flip_per_call", 0x08, 3,
         "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n");
    RESP("cr_at_end", 0x00, 2, "*1\r");
    RESP("ray_hset", 0x20, 77,
         "*4\r\n$4\r\nHSET\r\n$16\r\nRAY_NS@ACTOR_TBL\r\n$4\r\n\x01\x02\x00\xff"
         "\r\n$6\r\n\x0a\x04\x08\x01\x10\x02\r\n"
         "*7\r\n$5\r\nHSCAN\r\n$16\r\nRAY_NS@ACTOR_TBL\r\n$1\r\n0\r\n"
         "$5\r\nMATCH\r\n$2\r\n\x01*\r\n$5\r\nCOUNT\r\n$3\r\n100\r\n");
    RESP("mixed_inline_multibulk", 0x10, 5,
         "PING\r\n*1\r\n$4\r\nPING\r\nECHO x\r\n");

    /* A request with many arguments, over RESP_ARGV_INITIAL growth. */
    bytes b = {0};
    char tmp[32];
    int n = snprintf(tmp, sizeof tmp, "*%d\r\n", 1100);
    put(&b, tmp, (size_t)n);
    for (int i = 0; i < 1100; i++)
        put(&b, "$1\r\nx\r\n", 7);
    resp_seed("many_args", 0x30, 0, (const char *)b.p, b.n);
    free(b.p);
}

/* ---- fuzz_glob: [u16 le pattern length][mode][count][pattern][string] --- */

static void glob_seed_rep(const char *name, const char *pat, size_t plen,
                          const char *str, size_t slen, int count)
{
    bytes b = {0};
    put_u8(&b, (uint8_t)plen);
    put_u8(&b, (uint8_t)(plen >> 8));
    put_u8(&b, count > 0 ? 0xff : 0); /* 0xff: repeat count + 1 times */
    put_u8(&b, (uint8_t)(count > 0 ? count - 1 : 0));
    put(&b, pat, plen);
    put(&b, str, slen);
    write_file("fuzz_glob", name, b.p, b.n);
    free(b.p);
}

static void glob_seed(const char *name, const char *pat, size_t plen,
                      const char *str, size_t slen)
{
    glob_seed_rep(name, pat, plen, str, slen, 0);
}

#define GLOB(name, pat, str) \
    glob_seed(name, pat, sizeof(pat) - 1, str, sizeof(str) - 1)

static void gen_glob(void)
{
    GLOB("star", "*", "anything");
    GLOB("star_empty", "*", "");
    GLOB("empty_empty", "", "");
    GLOB("question", "h?llo", "hello");
    GLOB("class", "h[ae]llo", "hallo");
    GLOB("class_neg", "h[^e]llo", "hbllo");
    GLOB("range", "h[a-b]llo", "hbllo");
    GLOB("range_reversed", "[z-a]", "m");
    GLOB("range_nocase", "[A-Z]x", "qX");
    GLOB("range_odd_nocase", "[Z-a]", "_");
    GLOB("escaped_star", "a\\*b", "a*b");
    GLOB("escape_in_class", "[\\]]", "]");
    GLOB("escape_in_class_case", "[\\A]", "a");
    GLOB("empty_class", "[]]", "]");
    GLOB("unterminated_class", "[abc", "c");
    GLOB("unterminated_neg", "[^", "x");
    GLOB("lone_bracket", "[", "[");
    GLOB("trailing_backslash", "ab\\", "ab\\");
    GLOB("range_to_bracket", "[a-]", "]");
    GLOB("many_stars", "*a*b*c*d*", "xxaxxbxxcxxdxx");
    GLOB("star_backtrack", "*ab", "aaaaaaaaaaaaaaaaaaaaaab");
    GLOB("stars_run", "a***b", "ab");
    GLOB("star_question_end", "a*?", "a");
    GLOB("high_bytes", "[\x80-\xff]", "\xc3");
    GLOB("high_bytes_nocase", "\xc3*", "\xc3\xa9t\xc3\xa9");
    GLOB("nul_bytes", "a\0*", "a\0b");
    GLOB("ray_prefix", "RAY_NS@ACTOR*", "RAY_NS@ACTOR:0a1b");
    GLOB("ray_binary", "\x01\x02*", "\x01\x02\x03\x04");
    GLOB("keys_colon", "*:job:*", "ns:job:0001");
    GLOB("mixed", "?[a-c]*\\?[^x-z]", "za-long-string?q");

    /* Around Redis's recursion limit of 1000 star groups: "*a*a*a*a"
     * repeated 250 times (1000 groups: matches 1000 a's) and 251 times (1004
     * groups: never matches), "*[a]*?" 252 times (504 groups, matches),
     * "*?" 252 times with a trailing star (matches), then 1001 "*a" written
     * out. */
    glob_seed_rep("nesting_1000", "*a*a*a*a", 8, "aaaa", 4, 250);
    glob_seed_rep("nesting_1004", "*a*a*a*a", 8, "aaaa", 4, 251);
    glob_seed_rep("nesting_504_class", "*[a]*?", 6, "ab", 2, 252);
    glob_seed_rep("nesting_trailing", "*?*?*", 5, "xy", 2, 256);
    bytes p = {0}, s = {0};
    for (int i = 0; i < 1001; i++)
        put(&p, "*a", 2);
    for (int i = 0; i < 1100; i++)
        put(&s, "a", 1);
    glob_seed("nesting_1001_plain", (const char *)p.p, p.n,
              (const char *)s.p, s.n);
    free(p.p);
    free(s.p);
}

/* ---- fuzz_dump ----------------------------------------------------------- */

static storage *open_store(char *dir, size_t dirlen)
{
    snprintf(dir, dirlen, "/tmp/gcsd-gen-corpus-XXXXXX");
    if (mkdtemp(dir) == NULL)
        die("mkdtemp");
    storage_options opts = {.map_size = 16u << 20};
    storage *s;
    char err[256];
    if (storage_open(dir, &opts, &s, err, sizeof err) != 0) {
        fprintf(stderr, "fuzz_gen_corpus: storage_open: %s\n", err);
        exit(1);
    }
    return s;
}

static void close_store(storage *s, const char *dir)
{
    storage_close(s);
    fz_remove_store_dir(dir);
}

static storage_slice sl(const char *s)
{
    return (storage_slice){s, strlen(s)};
}

static void dump_to(storage *s, const char *name, bytes *keep)
{
    storage_txn *t;
    void *buf;
    size_t len;
    if (storage_begin(s, false, &t) != 0 || storage_dump(t, &buf, &len) != 0)
        die("dump");
    storage_abort(t);
    write_file("fuzz_dump", name, buf, len);
    if (keep != NULL) {
        keep->n = 0;
        put(keep, buf, len);
    }
    free(buf);
}

static void must(int rc)
{
    if (rc != 0) {
        fprintf(stderr, "fuzz_gen_corpus: storage: %s\n",
                storage_strerror(rc));
        exit(1);
    }
}

/* A dump assembled by hand: @ntables tables from @names, each with the
 * given entries, checksummed. */
typedef struct entry {
    const void *k;
    size_t klen;
    const void *v;
    size_t vlen;
} entry;

static void put_table(bytes *b, const char *name, const entry *e, size_t n)
{
    put_u8(b, (uint8_t)strlen(name));
    put(b, name, strlen(name));
    put_be(b, n, 8);
    for (size_t i = 0; i < n; i++) {
        put_be(b, e[i].klen, 4);
        put(b, e[i].k, e[i].klen);
        put_be(b, e[i].vlen, 8);
        put(b, e[i].v, e[i].vlen);
    }
}

static void put_header(bytes *b, uint64_t index)
{
    put(b, "GCSDUMP1", 8);
    put_be(b, 1, 4);
    put_be(b, 0, 4);
    put_be(b, index, 8);
}

static void put_trailer(bytes *b)
{
    put_be(b, fz_dump_checksum(b->p, b->n), 8);
}

static void gen_dump(void)
{
    char dir[64];
    storage *s = open_store(dir, sizeof dir);
    storage_txn *t;
    bytes real = {0};

    dump_to(s, "empty", NULL);

    must(storage_begin(s, true, &t));
    must(storage_meta_set(t, STORAGE_META_APPLIED_INDEX, 7));
    must(storage_string_set(t, sl("greeting"), sl("hello")));
    must(storage_string_set(t, sl("n"), sl("42")));
    must(storage_string_set(t, sl(""), sl("empty name")));
    must(storage_hash_set(t, sl("h"), sl("f1"), sl("v1"), NULL));
    must(storage_hash_set(t, sl("h"), sl("f2"), sl(""), NULL));
    must(storage_commit(t));
    dump_to(s, "small", &real);

    must(storage_begin(s, true, &t));
    must(storage_meta_set(t, STORAGE_META_APPLIED_INDEX, 1234));
    /* Ray-style tables: binary ids as fields. */
    for (int i = 0; i < 6; i++) {
        char field[8] = {(char)0x01, (char)i, 0, (char)0xff, 'i', 'd',
                         (char)(0x80 + i), 0};
        char value[5] = {0x0a, 0x03, 'a', 'b', (char)i};
        must(storage_hash_set(t, sl("RAY_NS@ACTOR_TBL"),
                              (storage_slice){field, sizeof field},
                              (storage_slice){value, sizeof value}, NULL));
    }
    must(storage_hash_set(t, sl("RAY_NS@JOB_TBL"), sl("job1"), sl("x"),
                          NULL));
    must(storage_hash_delete(t, sl("h"), sl("f2"), NULL));
    /* A name over LMDB's 511-byte key limit. */
    char longname[600];
    memset(longname, 'L', sizeof longname);
    must(storage_string_set(t, (storage_slice){longname, sizeof longname},
                            sl("long")));
    must(storage_commit(t));
    dump_to(s, "ray", NULL);

    must(storage_begin(s, true, &t));
    must(storage_meta_set(t, STORAGE_META_APPLIED_INDEX, 99));
    for (int i = 0; i < 40; i++) {
        char k[16], f[16];
        snprintf(k, sizeof k, "key:%d", i);
        must(storage_string_set(t, sl(k), sl(k + 4)));
        snprintf(f, sizeof f, "field:%d", i);
        must(storage_hash_set(t, sl("big"), sl(f), sl(f + 6), NULL));
    }
    must(storage_commit(t));
    dump_to(s, "many", NULL);

    /* Record tables (the typed tables' storage): records and an index. */
    must(storage_begin(s, true, &t));
    must(storage_meta_set(t, STORAGE_META_APPLIED_INDEX, 1300));
    for (int i = 0; i < 4; i++) {
        char id[16] = {'A', 'A', 'A', (char)i, 0, 0, 0, 0,
                       0, 0, 0, 0, 1, 0, 0, 0};
        char rec[6] = {0x0a, 0x02, 'i', 'd', 0x30, (char)i};
        must(storage_table_put(t, 2, (storage_slice){id, sizeof id},
                               (storage_slice){rec, sizeof rec}, NULL));
        char ref[21] = {4, 1, 0, 0, 0};
        memcpy(ref + 5, id, sizeof id);
        must(storage_table_put(t, 18, (storage_slice){ref, sizeof ref},
                               sl(""), NULL));
    }
    must(storage_commit(t));
    dump_to(s, "tables", NULL);

    must(storage_begin(s, true, &t));
    must(storage_key_flush(t));
    must(storage_table_flush(t, 1, STORAGE_TABLE_MAX));
    must(storage_commit(t));
    dump_to(s, "flushed", NULL);
    close_store(s, dir);

    /* Damaged variants of the small dump. */
    bytes v = {0};
    put(&v, real.p, real.n);
    v.p[v.n - 1] ^= 1;
    write_file("fuzz_dump", "bad_checksum", v.p, v.n);
    write_file("fuzz_dump", "truncated", real.p, real.n / 2);
    v.n = 0;
    put(&v, real.p, real.n);
    v.p[8 + 3] = 3; /* version 3: newer than any loader */
    write_file("fuzz_dump", "bad_version", v.p, v.n);

    /* Hand-assembled: tables out of order, one missing, unknown, twice. */
    static const uint8_t k1[18] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6,
                                   7, 8, 0, 0};
    static const uint8_t k2[18] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6,
                                   7, 8, 0, 1};
    static const uint8_t f1[18] = {0, 0, 0, 0, 0, 0, 0, 1, 9, 9, 9, 9, 9, 9,
                                   9, 9, 0, 0};
    static const uint8_t sval[] = {'s', 0, 0, 0, 1, 'a', 'v', 'a', 'l'};
    static const uint8_t hval[] = {'h', 0, 0, 0, 1, 'b', 0, 0, 0, 0, 0, 0,
                                   0, 1, 0, 0, 0, 0, 0, 0, 0, 1};
    static const uint8_t fval[] = {0, 0, 0, 1, 'f', 'v'};
    static const uint8_t eight[8] = {0, 0, 0, 0, 0, 0, 0, 3};
    entry meta[] = {{"applied_index", 13, eight, 8},
                    {"key_count", 9, eight, 8}};
    entry keys[] = {{k1, 18, sval, sizeof sval}, {k2, 18, hval, sizeof hval}};
    entry fields[] = {{f1, 18, fval, sizeof fval}};

    /* Two names sharing one hash group (seq 0 and 1). */
    bytes d = {0};
    put_header(&d, 3);
    put_table(&d, "meta", meta, 2);
    put_table(&d, "keys", keys, 2);
    put_table(&d, "fields", fields, 1);
    put_trailer(&d);
    write_file("fuzz_dump", "crafted_group", d.p, d.n);

    d.n = 0;
    put_header(&d, 5);
    put_table(&d, "fields", fields, 1);
    put_table(&d, "meta", meta, 1);
    put_trailer(&d);
    write_file("fuzz_dump", "crafted_reordered", d.p, d.n);

    d.n = 0;
    put_header(&d, 5);
    put_table(&d, "meta", meta, 1);
    put_table(&d, "meta", meta, 1);
    put_trailer(&d);
    write_file("fuzz_dump", "crafted_twice", d.p, d.n);

    d.n = 0;
    put_header(&d, 5);
    put_table(&d, "other", meta, 1);
    put_trailer(&d);
    write_file("fuzz_dump", "crafted_unknown", d.p, d.n);

    d.n = 0;
    put_header(&d, 5);
    put_trailer(&d);
    write_file("fuzz_dump", "crafted_no_tables", d.p, d.n);

    free(d.p);
    free(v.p);
    free(real.p);
}

/* ---- fuzz_commands ------------------------------------------------------- */

/* Commands separated by NULL; "|" as a word ends the log entry. */
static void cmd_seed(const char *name, int flags, ...)
{
    bytes b = {0};
    put_u8(&b, (uint8_t)flags);
    va_list ap;
    va_start(ap, flags);
    const char *words[64];
    size_t lens[64];
    size_t n = 0;
    for (;;) {
        const char *w = va_arg(ap, const char *);
        if (w == NULL || strcmp(w, "|") == 0 || strcmp(w, ";") == 0) {
            if (n > 0) {
                put_u8(&b, (uint8_t)(n | (w != NULL && w[0] == '|' ? 0x80
                                                                   : 0)));
                for (size_t i = 0; i < n; i++) {
                    if (lens[i] >= 0xff) {
                        put_u8(&b, 0xff);
                        put_u8(&b, (uint8_t)lens[i]);
                        put_u8(&b, (uint8_t)(lens[i] >> 8));
                    } else {
                        put_u8(&b, (uint8_t)lens[i]);
                    }
                    put(&b, words[i], lens[i]);
                }
            }
            n = 0;
            if (w == NULL)
                break;
            continue;
        }
        words[n] = w;
        /* "\\xNN..." words may hold NULs: length prefix "#<len>:" */
        if (w[0] == '#') {
            char *end;
            lens[n] = strtoul(w + 1, &end, 10);
            words[n] = end + 1;
        } else {
            lens[n] = strlen(w);
        }
        n++;
    }
    va_end(ap);
    write_file("fuzz_commands", name, b.p, b.n);
    free(b.p);
}

/* Binary words for cmd_seed ("#<len>:" + bytes), freed by freeWords. */
static char *words[16];
static size_t nWords;

static char *newWord(size_t n)
{
    if (nWords == sizeof words / sizeof words[0])
        die("too many words");
    char *w = malloc(n + 32);
    if (w == NULL)
        die("malloc");
    words[nWords++] = w;
    return w;
}

static void freeWords(void)
{
    while (nWords > 0)
        free(words[--nWords]);
}

static const char *packed(const ProtobufCMessage *m)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    char *w = newWord(n);
    int h = snprintf(w, 32, "#%zu:", n);
    protobuf_c_message_pack(m, (uint8_t *)w + h);
    return w;
}

static const char *binword(const void *p, size_t n)
{
    char *w = newWord(n);
    int h = snprintf(w, 32, "#%zu:", n);
    memcpy(w + h, p, n);
    return w;
}

/* Typed-table commands: Ray-shaped records and ids. */
static void gen_typed(void)
{
    static uint8_t node[28], actor[16], pg[18], worker[28];
    memset(node, 'N', sizeof node);
    memset(actor, 'A', sizeof actor);
    memset(pg, 'P', sizeof pg);
    memset(worker, 'W', sizeof worker);
    memcpy(actor + 12, "\1\0\0\0", 4);
    const char *nodeId = binword(node, sizeof node);
    const char *actorId = binword(actor, sizeof actor);
    const char *pgId = binword(pg, sizeof pg);

    Ray__Rpc__GcsNodeInfo n;
    ray__rpc__gcs_node_info__init(&n);
    n.node_id = (ProtobufCBinaryData){sizeof node, node};
    Ray__Rpc__GcsNodeInfo__ResourcesTotalEntry cpu;
    ray__rpc__gcs_node_info__resources_total_entry__init(&cpu);
    cpu.key = "CPU";
    cpu.value = 4;
    Ray__Rpc__GcsNodeInfo__ResourcesTotalEntry *res[] = {&cpu};
    n.n_resources_total = 1;
    n.resources_total = res;
    const char *nodeRec = packed(&n.base);

    Ray__Rpc__JobTableData j;
    ray__rpc__job_table_data__init(&j);
    j.job_id = (ProtobufCBinaryData){4, (uint8_t *)"\1\0\0\0"};
    const char *jobRec = packed(&j.base);

    Ray__Rpc__Address owner;
    ray__rpc__address__init(&owner);
    owner.worker_id = (ProtobufCBinaryData){sizeof worker, worker};
    Ray__Rpc__ActorTableData a;
    ray__rpc__actor_table_data__init(&a);
    a.actor_id = (ProtobufCBinaryData){sizeof actor, actor};
    a.job_id = j.job_id;
    a.name = "counter";
    a.max_restarts = 1;
    a.owner_address = &owner;
    const char *actorRec = packed(&a.base);
    Ray__Rpc__ActorTableData u;
    ray__rpc__actor_table_data__init(&u);
    u.state = RAY__RPC__ACTOR_TABLE_DATA__ACTOR_STATE__PENDING_CREATION;
    const char *toPending = packed(&u.base);
    Ray__Rpc__Address addr;
    ray__rpc__address__init(&addr);
    addr.node_id = n.node_id;
    u.state = RAY__RPC__ACTOR_TABLE_DATA__ACTOR_STATE__ALIVE;
    u.address = &addr;
    const char *toAlive = packed(&u.base);
    u.address = NULL;
    u.state = RAY__RPC__ACTOR_TABLE_DATA__ACTOR_STATE__RESTARTING;
    const char *toRestarting = packed(&u.base);

    Ray__Rpc__PlacementGroupTableData g;
    ray__rpc__placement_group_table_data__init(&g);
    g.placement_group_id = (ProtobufCBinaryData){sizeof pg, pg};
    g.strategy = RAY__RPC__PLACEMENT_STRATEGY__STRICT_SPREAD;
    g.name = "pg";
    Ray__Rpc__Bundle__UnitResourcesEntry one;
    ray__rpc__bundle__unit_resources_entry__init(&one);
    one.key = "CPU";
    one.value = 1;
    Ray__Rpc__Bundle__UnitResourcesEntry *ones[] = {&one};
    Ray__Rpc__Bundle b1, b2;
    ray__rpc__bundle__init(&b1);
    b1.n_unit_resources = 1;
    b1.unit_resources = ones;
    b2 = b1;
    Ray__Rpc__Bundle *bundles[] = {&b1, &b2};
    g.n_bundles = 2;
    g.bundles = bundles;
    const char *pgRec = packed(&g.base);

    cmd_seed("typed_lifecycle", 2, "PG.CREATE", pgRec, ";", "NODE.REGISTER",
             nodeRec, ";", "JOB.ADD", jobRec, ";", "JOB.NEXTID", "|",
             "ACTOR.REGISTER", actorRec, ";", "ACTOR.UPDATE", actorId,
             toPending, ";", "ACTOR.UPDATE", actorId, toAlive, "|",
             "ACTOR.GETNAMED", "", "counter", ";", "ACTOR.LIST", "JOB",
             "#4:\1\0\0\0", "STATE", "ALIVE", ";", "NODE.DRAIN", nodeId,
             "PREEMPTION", "|", "NODE.DEAD", nodeId, "gone", ";",
             "ACTOR.UPDATE", actorId, toRestarting, ";", "PG.GET", pgId, ";",
             "JOB.FINISH", "#4:\1\0\0\0", "|", "NODE.LIST", "DEAD", ";",
             "PG.LIST", "COUNT", "1", ";", "ACTOR.KILL", actorId, ";",
             "PG.REMOVE", pgId, ";", "FLUSHALL", NULL);
    /* Caps of one dead row each: every death evicts the oldest. */
    cmd_seed("typed_dead_caps", 2, "GCS.TABLES.CAPS", "1", "1", "1", "|",
             "NODE.REGISTER", nodeRec, ";", "ACTOR.REGISTER", actorRec, ";",
             "ACTOR.UPDATE", actorId, toPending, ";", "ACTOR.UPDATE", actorId,
             toAlive, "|", "PG.CREATE", pgRec, ";", "ACTOR.KILL", actorId,
             ";", "PG.REMOVE", pgId, "|", "NODE.DEAD", nodeId, "gone", ";",
             "GCS.TABLES.CAPS", "0", "0", "0", ";", "GCS.TABLES.CAPS", "-1",
             "x", "99999999999999999999", ";", "ACTOR.LIST", ";", "NODE.LIST",
             "DEAD", ";", "PG.LIST", NULL);
    cmd_seed("typed_errors", 1, "ACTOR.UPDATE", actorId, "#2:\xff\xff", ";",
             "NODE.REGISTER", "x", ";", "NODE.DEAD", "short", "r", ";",
             "ACTOR.UPDATE", actorId, toAlive, ";", "PG.CREATE",
             "#0:", ";", "JOB.FINISH", "#4:\11\0\0\0", ";", "ACTOR.LIST",
             "CURSOR", "zz", ";", "NODE.DRAIN", nodeId, "BORED", ";",
             "PG.WAIT", pgId, "10", ";", "NODE.HEARTBEAT", nodeId, NULL);
    freeWords();
}

/* ";" separates commands in one entry, "|" ends an entry. */
static void gen_commands(void)
{
    cmd_seed("set_get", 0, "SET", "k", "v", "|", "GET", "k", "|", "STRLEN",
             "k", NULL);
    cmd_seed("set_options", 0, "SET", "k", "v", "NX", ";", "SET", "k", "w",
             "XX", "GET", ";", "SET", "k", "x", "NX", "GET", ";", "SET", "k",
             "y", "KEEPTTL", ";", "SET", "k", "z", "EX", "10", ";", "SET",
             "k", "z", "BOGUS", ";", "GET", "k", NULL);
    cmd_seed("setnx_mset_mget", 0, "SETNX", "a", "1", ";", "SETNX", "a", "2",
             ";", "MSET", "b", "2", "c", "3", ";", "MSET", "b", ";", "MGET",
             "a", "b", "c", "d", NULL);
    cmd_seed("counters", 0, "INCR", "n", ";", "INCRBY", "n", "-7", ";",
             "DECR", "n", ";", "DECRBY", "n", "-9223372036854775808", ";",
             "INCRBY", "n", "9223372036854775807", ";", "INCRBY", "n", "1",
             ";", "SET", "s", "abc", ";", "INCR", "s", ";", "INCRBY", "n",
             "01", "|", "GET", "n", NULL);
    cmd_seed("append", 0, "APPEND", "a", "hello", ";", "APPEND", "a", " world",
             ";", "HSET", "h", "f", "v", ";", "APPEND", "h", "x", "|",
             "STRLEN", "a", NULL);
    cmd_seed("hash_basic", 0, "HSET", "h", "f1", "v1", "f2", "v2", ";",
             "HSETNX", "h", "f1", "x", ";", "HMSET", "h", "f3", "v3", ";",
             "HGET", "h", "f1", ";", "HMGET", "h", "f1", "nope", "f3", ";",
             "HEXISTS", "h", "f2", ";", "HSTRLEN", "h", "f3", ";", "HLEN",
             "h", "|", "HKEYS", "h", ";", "HVALS", "h", ";", "HGETALL", "h",
             NULL);
    cmd_seed("hash_incr_del", 0, "HINCRBY", "h", "c", "5", ";", "HINCRBY",
             "h", "c", "-9223372036854775808", ";", "HINCRBY", "h", "c", "x",
             ";", "HSET", "h", "s", "abc", ";", "HINCRBY", "h", "s", "1", ";",
             "HDEL", "h", "c", "s", "missing", ";", "HLEN", "h", ";",
             "EXISTS", "h", NULL);
    cmd_seed("wrongtype", 0, "SET", "s", "v", ";", "HSET", "s", "f", "v", ";",
             "HGET", "s", "f", ";", "HGETALL", "s", ";", "HSCAN", "s", "0",
             ";", "HSET", "h", "f", "v", ";", "GET", "h", ";", "SET", "h",
             "v", "GET", ";", "TYPE", "h", ";", "TYPE", "s", NULL);
    cmd_seed("ray_tables", 0, "HSET", "RAY_NS@ACTOR_TBL",
             "#8:\x01\x02\x00\xff\x10\x20\x30\x40", "#4:\x0a\x02\x08\x01",
             ";", "HSET", "RAY_NS@ACTOR_TBL",
             "#8:\x01\x02\x00\xff\x10\x20\x30\x41", "#3:\x0a\x00\x00", "|",
             "HSCAN", "RAY_NS@ACTOR_TBL", "0", "MATCH", "#3:\x01\x02*",
             "COUNT", "100", "|", "HMGET", "RAY_NS@ACTOR_TBL",
             "#8:\x01\x02\x00\xff\x10\x20\x30\x40", ";", "HDEL",
             "RAY_NS@ACTOR_TBL", "#8:\x01\x02\x00\xff\x10\x20\x30\x41", ";",
             "HKEYS", "RAY_NS@ACTOR_TBL", NULL);
    cmd_seed("ray_kv", 0, "HSET", "RAY_NS@KV", "@namespace_:key1", "val",
             ";", "HSET", "RAY_NS@KV", "@namespace_:key2", "val2", ";",
             "HSCAN", "RAY_NS@KV", "0", "MATCH", "@namespace_:*", "COUNT",
             "1", ";", "HSCAN", "RAY_NS@KV", "0", "NOVALUES", ";", "HEXISTS",
             "RAY_NS@KV", "@namespace_:key1", NULL);
    cmd_seed("scan_keys", 0, "MSET", "a1", "x", "a2", "y", "b1", "z", ";",
             "HSET", "ha", "f", "v", "|", "KEYS", "a*", ";", "KEYS", "*",
             ";", "SCAN", "0", "MATCH", "?1", "COUNT", "2", ";", "SCAN", "0",
             "TYPE", "hash", ";", "SCAN", "0", "TYPE", "zset", ";", "DBSIZE",
             NULL);
    cmd_seed("scan_errors", 0, "SCAN", "abc", ";", "SCAN", "-1", ";", "SCAN",
             "18446744073709551616", ";", "SCAN", "0", "COUNT", "0", ";",
             "SCAN", "0", "COUNT", "x", ";", "SCAN", "0", "NOVALUES", ";",
             "HSCAN", "h", "0", "TYPE", "string", ";", "HSCAN", "h", "+5",
             ";", "SCAN", "0", "MATCH", NULL);
    cmd_seed("del_flush", 0, "SET", "a", "1", ";", "HSET", "h", "f", "v",
             ";", "DEL", "a", "h", "nope", ";", "UNLINK", "x", ";", "SET",
             "b", "2", "|", "FLUSHALL", "ASYNC", ";", "FLUSHDB", "SYNC", ";",
             "FLUSHALL", "bogus", ";", "DBSIZE", NULL);
    cmd_seed("arity_unknown", 1, "GET", ";", "GET", "a", "b", ";", "HSET",
             "h", "f", ";", "NOSUCHCMD", "x", ";", "PING", ";", "INFO", ";",
             "MSET", "a", ";", "HINCRBY", "h", "f", "zz", NULL);
    /* The first argument as an index into the command table. */
    static const uint8_t by_index[] = {2, 0x83, 0, 17, 1, 'k', 1, 'v',
                                       0x82, 0, 5, 1, 'k'};
    write_file("fuzz_commands", "by_index", by_index, sizeof by_index);
    cmd_seed("replica_mix", 2, "HSET", "h", "a", "1", "b", "2", ";", "SET",
             "s", "x", "|", "HDEL", "h", "a", ";", "APPEND", "s", "y", "|",
             "HGETALL", "h", NULL);
    cmd_seed("long_value", 0, "SET", "k",
             "0123456789012345678901234567890123456789012345678901234567890"
             "1234567890123456789012345678901234567890123456789012345678901"
             "2345678901234567890123456789012345678901234567890123456789012"
             "3456789012345678901234567890123456789012345678901234567890123"
             "4567890123456789", ";", "APPEND", "k", "tail", ";", "GET", "k",
             NULL);
    cmd_seed("hash_to_empty", 0, "HSET", "h", "a", "1", "b", "2", "|",
             "HDEL", "h", "a", ";", "HDEL", "h", "b", ";", "EXISTS", "h", ";",
             "HLEN", "h", ";", "HSET", "h", "c", "3", ";", "TYPE", "h", NULL);
    cmd_seed("hash_overwrite", 0, "HSET", "h", "f", "1", "f", "2", ";",
             "HSET", "h", "f", "3", ";", "HMSET", "h", "g", "4", "f", "5",
             ";", "HGETALL", "h", ";", "SET", "h", "now a string", ";", "GET",
             "h", ";", "HSET", "s", "f", "v", ";", "DEL", "s", ";", "HSET",
             "s", "f", "v", NULL);
    cmd_seed("scan_paging", 0, "MSET", "k0", "0", "k1", "1", "k2", "2", "k3",
             "3", "k4", "4", "k5", "5", "k6", "6", "k7", "7", "|", "SCAN",
             "0", "COUNT", "3", ";", "SCAN", "9223372036854775808", "COUNT",
             "3", ";", "SCAN", "18446744073709551615", ";", "SCAN",
             "1311768467463790320", "COUNT", "1", ";", "KEYS", "k[0-3]",
             NULL);
    cmd_seed("hscan_paging", 0, "HSET", "h", "f0", "0", "f1", "1", "f2", "2",
             "f3", "3", "f4", "4", "f5", "5", "|", "HSCAN", "h", "0", "COUNT",
             "2", ";", "HSCAN", "h", "4611686018427387904", "COUNT", "2",
             "NOVALUES", ";", "HSCAN", "h", "0", "MATCH", "f[1-3]", ";",
             "HSCAN", "h", "0", "MATCH", "*", "COUNT", "1000", NULL);
    cmd_seed("read_behind_write", 0, "SET", "k", "1", ";", "GET", "k", ";",
             "INCR", "k", ";", "GET", "k", ";", "MGET", "k", "x", ";", "DEL",
             "k", ";", "GET", "k", ";", "DBSIZE", NULL);
    cmd_seed("counters_edge", 0, "SET", "n", "9223372036854775806", ";",
             "INCR", "n", ";", "INCR", "n", ";", "SET", "m",
             "-9223372036854775808", ";", "DECR", "m", ";", "INCRBY", "m",
             "-1", ";", "SET", "z", "-0", ";", "INCR", "z", ";", "SET", "w",
             " 1", ";", "INCR", "w", ";", "HINCRBY", "h", "f",
             "9223372036854775807", ";", "HINCRBY", "h", "f", "1", NULL);
    cmd_seed("binary_keys", 0, "SET", "#3:\0\0\0", "#2:\r\n", ";", "GET",
             "#3:\0\0\0", ";", "HSET", "#1:\xff", "#0:", "#0:", ";",
             "HGET", "#1:\xff", "#0:", ";", "KEYS", "#2:\0*", ";", "EXISTS",
             "#0:", NULL);
    cmd_seed("set_get_flags", 0, "SET", "k", "v", "GET", ";", "SET", "k",
             "w", "NX", "GET", ";", "SET", "k", "x", "XX", "NX", ";", "SET",
             "k", "y", "NX", "XX", ";", "SET", "k", "z", "GET", "GET", ";",
             "SET", "new", "v", "XX", "GET", ";", "SET", "k", "v", "PXAT",
             "1", NULL);
    cmd_seed("flush_variants", 1, "FLUSHALL", "SYNC", "EXTRA", ";",
             "FLUSHDB", "ASYNC", ";", "FLUSHALL", "|", "DBSIZE", ";", "KEYS",
             "*", NULL);
    cmd_seed("ray_job_table", 2, "HSET", "RAY_NS@JOB", "#4:\x01\0\0\0",
             "#12:\x0a\x04\x01\0\0\0\x12\x04ray\0", ";", "HGETALL",
             "RAY_NS@JOB", ";", "HKEYS", "RAY_NS@JOB", ";", "HVALS",
             "RAY_NS@JOB", ";", "HSTRLEN", "RAY_NS@JOB", "#4:\x01\0\0\0",
             ";", "HEXISTS", "RAY_NS@JOB", "#4:\x01\0\0\1", NULL);
    /* Empty arguments: the log hands them over as NULL data (fsm.c maps
     * them to ""); APPEND and the SCAN cursor parser memcpy from them. */
    cmd_seed("empty_args", 0, "APPEND", "k", "#0:", ";", "SET", "#0:", "#0:",
             ";", "HSET", "h", "#0:", "#0:", ";", "HSCAN", "h", "#0:", ";",
             "SCAN", "#0:", ";", "GET", "#0:", ";", "INCRBY", "n", "#0:",
             NULL);
    cmd_seed("reads_only", 0, "GET", "missing", ";", "HGETALL", "missing",
             ";", "HLEN", "missing", ";", "EXISTS", "a", "b", "c", ";", "TYPE",
             "missing", ";", "KEYS", "[a-", ";", "HSCAN", "missing", "0",
             "MATCH", "*", NULL);
}


/* ---- fuzz_entry, fuzz_snapshot, fuzz_ctl: a Ray-shaped scenario --------------
 *
 * Typed-table commands applied to a real fsm, entry by entry: each entry is
 * a fuzz_entry seed (rglue's log format), the state after some of them a
 * fuzz_snapshot seed (the fsm's dump), and every record in the final tables
 * a fuzz_ctl seed. */

typedef struct scmd {
    size_t argc;
    resp_arg argv[8];
    uint64_t origin, request_id; /* 0: no de-duplication */
} scmd;

static fsm scen;
static rglue_fsm scen_hooks;
static uint64_t scen_index;

static void scen_reply(void *token, size_t i, const void *reply, size_t len)
{
    (void)token;
    (void)i;
    (void)reply;
    (void)len;
}

static resp_arg arg_bin(const void *p, size_t n)
{
    return (resp_arg){p, n};
}

static resp_arg arg_str(const char *s)
{
    return (resp_arg){s, strlen(s)};
}

static resp_arg arg_msg(const ProtobufCMessage *m)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = (uint8_t *)newWord(n);
    protobuf_c_message_pack(m, buf);
    return (resp_arg){(const char *)buf, n};
}

/* Apply @cmds as one entry and write it as fuzz_entry seed @name. */
static void scen_entry(const char *name, const scmd *cmds, size_t n,
                       uint64_t token)
{
    void *enc[16];
    rglue_cmd rc[16];
    size_t bytes_total = 0;
    for (size_t i = 0; i < n; i++) {
        if (fsm_encode_write(cmds[i].origin, cmds[i].request_id,
                             cmds[i].argc, cmds[i].argv, &enc[i],
                             &rc[i].len) != 0)
            die("encode");
        rc[i].data = enc[i];
        bytes_total += RG_CMD_HEADER_LEN + rc[i].len;
    }
    rg_entry_header h = {(uint32_t)n, token, scen_index + 1,
                         INT64_C(1700000000000) + (int64_t)scen_index * 1000};
    size_t size = rg_entry_size(bytes_total);
    unsigned char *buf = malloc(size);
    if (buf == NULL)
        die("malloc");
    unsigned char *q = rg_entry_put_header(buf, &h);
    for (size_t i = 0; i < n; i++)
        q = rg_entry_put_cmd(q, rc[i].data, (uint32_t)rc[i].len);
    rg_entry_put_padding(buf, q, size);
    write_file("fuzz_entry", name, buf, size);
    free(buf);
    if (scen_hooks.apply(scen_hooks.ctx, ++scen_index, h.time_ms, rc, n,
                         scen_reply, NULL) != 0)
        die("apply");
    for (size_t i = 0; i < n; i++)
        free(enc[i]);
}

static void scen_snapshot(const char *name, uint8_t flags)
{
    void *buf;
    size_t len;
    uint64_t index;
    if (scen_hooks.dump(scen_hooks.ctx, &buf, &len, &index) != 0)
        die("dump");
    bytes b = {0};
    put_u8(&b, flags);
    put(&b, buf, len);
    write_file("fuzz_snapshot", name, b.p, b.n);
    free(b.p);
    free(buf);
}

typedef struct ctl_seen {
    uint8_t kind;
    int n;
} ctl_seen;

static int scen_record(void *arg, storage_slice key, storage_slice value)
{
    ctl_seen *c = arg;
    (void)key;
    static const char *const kinds[] = {"node", "actor", "job", "pg"};
    char name[64];
    snprintf(name, sizeof name, "%s_%d", kinds[c->kind], c->n++);
    bytes b = {0};
    put_u8(&b, c->kind);
    put(&b, value.data, value.len);
    write_file("fuzz_ctl", name, b.p, b.n);
    free(b.p);
    return 0;
}

#define CMD(...)                                                             \
    {                                                                        \
        sizeof((resp_arg[]){__VA_ARGS__}) / sizeof(resp_arg), {__VA_ARGS__}, \
            0, 0                                                             \
    }

static void gen_scenario(void)
{
    char dir[] = "/tmp/gcsd-gen-scenario-XXXXXX";
    if (mkdtemp(dir) == NULL)
        die("mkdtemp");
    char err[256];
    if (fsm_open(&scen, dir, 64u << 20, err, sizeof err) != 0) {
        fprintf(stderr, "fuzz_gen_corpus: fsm_open: %s\n", err);
        exit(1);
    }
    fsm_raft_hooks(&scen, &scen_hooks);

    static uint8_t n1[28], n2[28], a1[16], a2[16], g1[18], g2[18], w1[28];
    memset(n1, 0x11, sizeof n1);
    memset(n2, 0x22, sizeof n2);
    memset(a1, 0xa1, sizeof a1);
    memset(a2, 0xa2, sizeof a2);
    memset(g1, 0x61, sizeof g1);
    memset(g2, 0x62, sizeof g2);
    memset(w1, 0x77, sizeof w1);
    /* Actor and group ids end with their job id (Ray's layout). */
    memcpy(a1 + 12, "\1\0\0\0", 4);
    memcpy(a2 + 12, "\1\0\0\0", 4);
    memcpy(g1 + 14, "\1\0\0\0", 4);
    memcpy(g2 + 14, "\1\0\0\0", 4);

    /* Nodes: 4 CPUs; 8 CPUs and a GPU, with a label. */
    Ray__Rpc__GcsNodeInfo__ResourcesTotalEntry cpu4, cpu8, gpu1;
    ray__rpc__gcs_node_info__resources_total_entry__init(&cpu4);
    cpu4.key = "CPU";
    cpu4.value = 4;
    cpu8 = cpu4;
    cpu8.value = 8;
    gpu1 = cpu4;
    gpu1.key = "GPU";
    gpu1.value = 1;
    Ray__Rpc__GcsNodeInfo__ResourcesTotalEntry *r1[] = {&cpu4},
                                               *r2[] = {&cpu8, &gpu1};
    Ray__Rpc__GcsNodeInfo node1, node2;
    ray__rpc__gcs_node_info__init(&node1);
    node1.node_id = (ProtobufCBinaryData){sizeof n1, n1};
    node1.node_manager_address = "10.0.0.1";
    node1.node_manager_port = 7001;
    node1.node_manager_hostname = "head";
    node1.is_head_node = true;
    node1.start_time_ms = 1700000000000;
    node1.n_resources_total = 1;
    node1.resources_total = r1;
    node2 = node1;
    node2.node_id = (ProtobufCBinaryData){sizeof n2, n2};
    node2.node_manager_address = "10.0.0.2";
    node2.node_manager_hostname = "worker";
    node2.is_head_node = false;
    node2.n_resources_total = 2;
    node2.resources_total = r2;
    Ray__Rpc__GcsNodeInfo__LabelsEntry zone;
    ray__rpc__gcs_node_info__labels_entry__init(&zone);
    zone.key = "zone";
    zone.value = "a";
    Ray__Rpc__GcsNodeInfo__LabelsEntry *labels[] = {&zone};
    node2.n_labels = 1;
    node2.labels = labels;

    /* A job with a namespace. */
    Ray__Rpc__JobConfig jc;
    ray__rpc__job_config__init(&jc);
    jc.ray_namespace = "ns";
    Ray__Rpc__JobTableData job;
    ray__rpc__job_table_data__init(&job);
    job.job_id = (ProtobufCBinaryData){4, (uint8_t *)"\1\0\0\0"};
    job.entrypoint = "python train.py";
    job.driver_ip_address = "10.0.0.1";
    job.driver_pid = 4242;
    job.start_time = 1700000000000;
    job.config = &jc;

    /* Actors: a named detached one needing a GPU, and a plain one. */
    Ray__Rpc__Address owner;
    ray__rpc__address__init(&owner);
    owner.worker_id = (ProtobufCBinaryData){sizeof w1, w1};
    owner.ip_address = "10.0.0.1";
    owner.port = 10001;
    Ray__Rpc__ActorTableData__RequiredResourcesEntry need_gpu;
    ray__rpc__actor_table_data__required_resources_entry__init(&need_gpu);
    need_gpu.key = "GPU";
    need_gpu.value = 1;
    Ray__Rpc__ActorTableData__RequiredResourcesEntry *needs[] = {&need_gpu};
    Ray__Rpc__ActorTableData actor1, actor2;
    ray__rpc__actor_table_data__init(&actor1);
    actor1.actor_id = (ProtobufCBinaryData){sizeof a1, a1};
    actor1.job_id = job.job_id;
    actor1.name = "trainer";
    actor1.ray_namespace = "ns";
    actor1.class_name = "Trainer";
    actor1.is_detached = true;
    actor1.max_restarts = 2;
    actor1.owner_address = &owner;
    actor1.n_required_resources = 1;
    actor1.required_resources = needs;
    actor2 = actor1;
    actor2.actor_id = (ProtobufCBinaryData){sizeof a2, a2};
    actor2.name = "";
    actor2.is_detached = false;
    actor2.max_restarts = 0;
    actor2.n_required_resources = 0;
    actor2.required_resources = NULL;

    Ray__Rpc__Address at2;
    ray__rpc__address__init(&at2);
    at2.node_id = node2.node_id;
    at2.ip_address = "10.0.0.2";
    at2.port = 20002;
    at2.worker_id = owner.worker_id;
    Ray__Rpc__ActorTableData up;
    ray__rpc__actor_table_data__init(&up);
    up.state = RAY__RPC__ACTOR_TABLE_DATA__ACTOR_STATE__PENDING_CREATION;
    resp_arg toPending = arg_msg(&up.base);
    up.state = RAY__RPC__ACTOR_TABLE_DATA__ACTOR_STATE__ALIVE;
    up.address = &at2;
    up.pid = 777;
    resp_arg toAlive = arg_msg(&up.base);

    /* Groups: PACK of two 1-CPU bundles (fits at once), STRICT_SPREAD of
     * three (waits for a third node). */
    Ray__Rpc__Bundle__UnitResourcesEntry one;
    ray__rpc__bundle__unit_resources_entry__init(&one);
    one.key = "CPU";
    one.value = 1;
    Ray__Rpc__Bundle__UnitResourcesEntry *ones[] = {&one};
    Ray__Rpc__Bundle b[3];
    Ray__Rpc__Bundle *bp[3];
    for (int i = 0; i < 3; i++) {
        ray__rpc__bundle__init(&b[i]);
        b[i].n_unit_resources = 1;
        b[i].unit_resources = ones;
        bp[i] = &b[i];
    }
    Ray__Rpc__PlacementGroupTableData pg1, pg2;
    ray__rpc__placement_group_table_data__init(&pg1);
    pg1.placement_group_id = (ProtobufCBinaryData){sizeof g1, g1};
    pg1.name = "packed";
    pg1.ray_namespace = "ns";
    pg1.strategy = RAY__RPC__PLACEMENT_STRATEGY__PACK;
    pg1.creator_job_id = job.job_id;
    pg1.n_bundles = 2;
    pg1.bundles = bp;
    pg2 = pg1;
    pg2.placement_group_id = (ProtobufCBinaryData){sizeof g2, g2};
    pg2.name = "spread";
    pg2.strategy = RAY__RPC__PLACEMENT_STRATEGY__STRICT_SPREAD;
    pg2.n_bundles = 3;

    resp_arg N1 = arg_bin(n1, sizeof n1), N2 = arg_bin(n2, sizeof n2),
             A1 = arg_bin(a1, sizeof a1), A2 = arg_bin(a2, sizeof a2),
             G1 = arg_bin(g1, sizeof g1), G2 = arg_bin(g2, sizeof g2),
             J1 = arg_bin("\1\0\0\0", 4);

    scmd e1[] = {CMD(arg_str("NODE.REGISTER"), arg_msg(&node1.base)),
                 CMD(arg_str("JOB.ADD"), arg_msg(&job.base)),
                 CMD(arg_str("JOB.NEXTID"))};
    scen_entry("register", e1, 3, 2);
    scen_snapshot("one_node_one_job", 0);
    scmd e2[] = {CMD(arg_str("PG.CREATE"), arg_msg(&pg1.base)),
                 CMD(arg_str("PG.CREATE"), arg_msg(&pg2.base)),
                 CMD(arg_str("ACTOR.REGISTER"), arg_msg(&actor1.base)),
                 CMD(arg_str("ACTOR.REGISTER"), arg_msg(&actor2.base))};
    /* Retry-safe writes, as a follower forwards them. */
    for (int i = 0; i < 4; i++) {
        e2[i].origin = UINT64_C(2) << 48 | 0xbeef;
        e2[i].request_id = (uint64_t)i + 1;
    }
    scen_entry("create_with_request_ids", e2, 4, 1);
    scmd e3[] = {CMD(arg_str("NODE.REGISTER"), arg_msg(&node2.base)),
                 CMD(arg_str("ACTOR.UPDATE"), A1, toPending),
                 CMD(arg_str("ACTOR.UPDATE"), A1, toAlive),
                 CMD(arg_str("ACTOR.UPDATE"), A2, toPending)};
    scen_entry("second_node_actor_alive", e3, 4, 3);
    scen_snapshot("two_nodes_groups_actors", 1);
    scen_snapshot("two_nodes_groups_actors_raw_checksum", 2);
    scmd e4[] = {CMD(arg_str("ACTOR.GET"), A1),
                 CMD(arg_str("ACTOR.GETNAMED"), arg_str("ns"),
                     arg_str("trainer")),
                 CMD(arg_str("PG.GETNAMED"), arg_str("ns"), arg_str("packed")),
                 CMD(arg_str("ACTOR.LIST"), arg_str("NAMESPACE"),
                     arg_str("ns"), arg_str("COUNT"), arg_str("1")),
                 CMD(arg_str("NODE.LIST"), arg_str("ALIVE")),
                 CMD(arg_str("PG.LIST")), CMD(arg_str("JOB.GET"), J1)};
    scen_entry("reads", e4, 7, 0);
    /* A retry of the first PG.CREATE: answered from the dedup table. */
    scen_entry("retry_answered_from_dedup", e2, 1, 4);
    scmd e5[] = {CMD(arg_str("NODE.DRAIN"), N2, arg_str("PREEMPTION"),
                     arg_str("spot")),
                 CMD(arg_str("NODE.DEAD"), N2, arg_str("lost"))};
    scen_entry("drain_and_death", e5, 2, 5);
    scen_snapshot("after_node_death", 1);
    scmd e6[] = {CMD(arg_str("PG.REMOVE"), G1),
                 CMD(arg_str("ACTOR.KILL"), A2),
                 CMD(arg_str("JOB.FINISH"), J1),
                 CMD(arg_str("HSET"), arg_str("RAYns@KV"), arg_str("k"),
                     arg_str("v")),
                 CMD(arg_str("PUBLISH"), arg_str("ch"), arg_str("m")),
                 CMD(arg_str("GCS.CHANGELOG.WINDOW"), arg_str("4"),
                     arg_str("100000"))};
    scen_entry("teardown", e6, 6, 7);
    scen_snapshot("after_teardown", 0);
    (void)G2;
    (void)N1;

    /* Every record of the final tables, for gcsctl. */
    storage_txn *t = fsm_read_txn(&scen);
    if (t == NULL)
        die("read");
    for (uint8_t k = 0; k < 4; k++) {
        ctl_seen c = {k, 0};
        if (storage_table_scan(t, 1 + k, (storage_slice){"", 0},
                               (storage_slice){"", 0}, scen_record, &c) != 0)
            die("scan");
    }
    fsm_end_reads(&scen);

    /* A snapshot marker (rglue's local snapshot). */
    unsigned char m[RG_MARKER_LEN];
    rg_marker_encode(m, 12345);
    bytes mb = {0};
    put_u8(&mb, 0);
    put(&mb, m, sizeof m);
    write_file("fuzz_snapshot", "marker", mb.p, mb.n);
    free(mb.p);

    fsm_close(&scen);
    fz_remove_store_dir(dir);
    freeWords();
}

/* ---- fuzz_http ------------------------------------------------------------ */

static void gen_http(void)
{
    static const struct {
        const char *name, *req;
    } seeds[] = {
        {"livez", "GET /livez HTTP/1.1\r\nHost: x\r\n\r\n"},
        {"healthz_query", "GET /healthz?verbose HTTP/1.0\r\n\r\n"},
        {"readyz_head", "HEAD /readyz HTTP/1.1\r\n\r\n"},
        {"metrics_lf", "GET /metrics HTTP/1.1\n\n"},
        {"post", "POST /livez HTTP/1.1\r\n\r\n"},
        {"not_found", "GET /nope HTTP/1.1\r\n\r\n"},
        {"blank", "\r\n\r\n"},
        {"method_only", "GET\r\n\r\n"},
        {"long_method", "GETTINGX/livez HTTP/1.1\r\n\r\n"},
    };
    for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++)
        write_file("fuzz_http", seeds[i].name, seeds[i].req,
                   strlen(seeds[i].req));
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s <corpus-dir>\n", argv[0]);
        return 2;
    }
    root = argv[1];
    if (mkdir(root, 0755) != 0 && errno != EEXIST)
        die(root);
    gen_resp();
    gen_glob();
    gen_dump();
    gen_commands();
    gen_typed();
    gen_scenario();
    gen_http();
    return 0;
}
