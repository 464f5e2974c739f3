/* fuzz_dump: state dumps (raft snapshots) under libFuzzer:
 * storage_dump_applied_index and storage_load_dump on arbitrary bytes, into
 * one LMDB environment per process (16 MiB map, in a temp dir removed right
 * after opening: the open files live on, nothing is left behind even on a
 * crash).
 *
 * Each input is tried twice: as it is, and with its trailing FNV-1a-64
 * checksum recomputed, so the fuzzer gets past the checksum into the table
 * and entry parser. Checked:
 *  - storage_dump_applied_index accepts exactly the frames with the right
 *    magic, version and checksum, and reports the header's index;
 *  - a rejected dump gives STORAGE_ECORRUPT and leaves the state untouched
 *    (the state is dumped before and after and compared);
 *  - after a successful load: dumping gives a valid dump; loading that and
 *    dumping again gives the same bytes (round trip); when the input holds
 *    the four tables in order, the new dump has exactly its tables;
 *  - the loaded state, however odd (a checksum-valid dump may hold
 *    inconsistent tables), can be read and written without crashing: every
 *    key is scanned, typed, read (string value or every hash field), every
 *    record table scanned, and then a write transaction sets, deletes and
 *    flushes, and is aborted. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz_util.h"
#include "storage.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define CHECK(cond)                                                          \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "fuzz_dump: check failed at %s:%d: %s\n",        \
                    __FILE__, __LINE__, #cond);                              \
            abort();                                                         \
        }                                                                    \
    } while (0)

#define CHECK_RC(expr)                                                       \
    do {                                                                     \
        int rc_ = (expr);                                                    \
        if (rc_ != 0) {                                                      \
            fprintf(stderr, "fuzz_dump: %s:%d: %s: %s\n", __FILE__,          \
                    __LINE__, #expr, storage_strerror(rc_));                 \
            abort();                                                         \
        }                                                                    \
    } while (0)

#define HEADER_LEN 24
#define TRAILER_LEN 8

static storage *store;

static uint64_t get_be(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

static void put_be(uint8_t *p, uint64_t v, size_t n)
{
    for (size_t i = n; i-- > 0;) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *tmp = getenv("TMPDIR");
    char dir[512];
    snprintf(dir, sizeof dir, "%s/gcsd-fuzz-dump-XXXXXX",
             tmp && *tmp ? tmp : "/tmp");
    CHECK(mkdtemp(dir) != NULL);
    storage_options opts = {.map_size = 16u << 20};
    char err[256] = "";
    int rc = storage_open(dir, &opts, &store, err, sizeof err);
    if (rc != 0) {
        fprintf(stderr, "fuzz_dump: storage_open %s: %s\n", dir, err);
        abort();
    }
    /* LMDB keeps its files open and mapped: remove them now. */
    fz_remove_store_dir(dir);
    return 0;
}

/* Dump the current state (caller frees). */
static void *dump_state(size_t *len)
{
    storage_txn *t;
    void *buf;
    CHECK_RC(storage_begin(store, false, &t));
    CHECK_RC(storage_dump(t, &buf, len));
    storage_abort(t);
    CHECK(buf != NULL && *len >= HEADER_LEN + TRAILER_LEN);
    return buf;
}

/* Do the magic, version and checksum of @p look right? */
static bool frame_ok(const uint8_t *p, size_t len)
{
    if (len < HEADER_LEN + TRAILER_LEN)
        return false;
    uint64_t version = get_be(p + 8, 4);
    if (memcmp(p, "GCSDUMP1", 8) != 0 || (version != 1 && version != 2))
        return false;
    return fz_dump_checksum(p, len - TRAILER_LEN) ==
           get_be(p + len - TRAILER_LEN, 8);
}

/* Is a (successfully loaded) dump of the current version, holding "meta",
 * "keys", "fields", "tables" once each and in this order (as a dump of the
 * loaded state will)? */
static bool canonical(const uint8_t *p, size_t len)
{
    static const char *const names[] = {"meta", "keys", "fields", "tables"};
    size_t pos = HEADER_LEN, end = len - TRAILER_LEN;
    if (get_be(p + 8, 4) != 2)
        return false;
    for (int i = 0; i < 4; i++) {
        size_t nlen = strlen(names[i]);
        if (pos >= end || p[pos] != nlen || end - pos < 1 + nlen + 8 ||
            memcmp(p + pos + 1, names[i], nlen) != 0)
            return false;
        pos += 1 + nlen;
        uint64_t count = get_be(p + pos, 8);
        pos += 8;
        for (uint64_t k = 0; k < count; k++) {
            /* Validated by the loader: no bounds trouble here. */
            pos += 4 + get_be(p + pos, 4);
            pos += 8 + get_be(p + pos, 8);
        }
    }
    return pos == end;
}

typedef struct names {
    uint8_t *buf;
    size_t len, cap;
    size_t n;
    size_t hashes;
} names;

/* Copy a slice into a names list as [u32 length][bytes][u8 type]. */
static void names_add(names *nm, const void *p, size_t n, uint8_t type)
{
    size_t need = 4 + n + 1;
    if (nm->cap - nm->len < need) {
        size_t cap = nm->cap ? nm->cap * 2 : 256;
        while (cap - nm->len < need)
            cap *= 2;
        nm->buf = realloc(nm->buf, cap);
        CHECK(nm->buf != NULL);
        nm->cap = cap;
    }
    put_be(nm->buf + nm->len, n, 4);
    if (n)
        memcpy(nm->buf + nm->len + 4, p, n);
    nm->buf[nm->len + 4 + n] = type;
    nm->len += need;
    nm->n++;
}

static int on_key(void *arg, storage_slice key, storage_type type)
{
    names *nm = arg;
    CHECK(type == STORAGE_TYPE_STRING || type == STORAGE_TYPE_HASH);
    if (nm->n < 512)
        names_add(nm, key.data, key.len, (uint8_t)type);
    return 0;
}

static int on_field(void *arg, storage_slice field, storage_slice value)
{
    names *nm = arg;
    /* Touch both (they live in the map). */
    volatile uint8_t sink = 0;
    if (field.len)
        sink ^= ((const uint8_t *)field.data)[field.len - 1];
    if (value.len)
        sink ^= ((const uint8_t *)value.data)[value.len - 1];
    (void)sink;
    if (nm->n < 512)
        names_add(nm, field.data, field.len, 0);
    return 0;
}

/* Read and write a freshly loaded (possibly inconsistent) state. Storage
 * errors are fine (it may well be corrupt); crashes are not. */
static int on_record(void *arg, storage_slice key, storage_slice value)
{
    size_t *n = arg;
    volatile uint8_t sink = 0;
    if (key.len)
        sink ^= ((const uint8_t *)key.data)[key.len - 1];
    if (value.len)
        sink ^= ((const uint8_t *)value.data)[value.len - 1];
    (void)sink;
    return ++*n >= 4096;
}

static void exercise_state(void)
{
    storage_txn *t;
    CHECK_RC(storage_begin(store, false, &t));
    for (unsigned table = 1; table <= STORAGE_TABLE_MAX; table++) {
        size_t n = 0;
        int rc = storage_table_scan(t, table, (storage_slice){"", 0},
                                    (storage_slice){"", 0}, on_record, &n);
        CHECK(rc == 0 || rc == 1);
    }
    uint64_t count, applied;
    (void)storage_key_count(t, &count);
    (void)storage_meta_get(t, STORAGE_META_APPLIED_INDEX, &applied);
    names keys = {0};
    uint64_t cursor = 0, next = 0;
    int rounds = 0;
    do {
        if (storage_key_scan(t, cursor, 7, on_key, &keys, &next) != 0)
            break;
        cursor = next;
    } while (cursor != 0 && ++rounds < 1000);

    /* Each key: type, and its value or fields. */
    size_t pos = 0;
    for (size_t k = 0; k < keys.n; k++) {
        size_t n = (size_t)get_be(keys.buf + pos, 4);
        storage_slice key = {keys.buf + pos + 4, n};
        uint8_t type = keys.buf[pos + 4 + n];
        pos += 4 + n + 1;
        /* A crafted dump may file a name under another name's hash, where
         * a lookup does not find it: no checks on what these return. */
        storage_type got;
        (void)storage_key_type(t, key, &got);
        if (type == STORAGE_TYPE_STRING) {
            storage_slice v;
            bool found;
            (void)storage_string_get(t, key, &v, &found);
            continue;
        }
        uint64_t len;
        (void)storage_hash_len(t, key, &len);
        names fields = {0};
        cursor = 0;
        rounds = 0;
        do {
            if (storage_hash_scan(t, key, cursor, 5, on_field, &fields,
                                  &next) != 0)
                break;
            cursor = next;
        } while (cursor != 0 && ++rounds < 1000);
        size_t fpos = 0;
        for (size_t f = 0; f < fields.n; f++) {
            size_t fn = (size_t)get_be(fields.buf + fpos, 4);
            storage_slice field = {fields.buf + fpos + 4, fn};
            fpos += 4 + fn + 1;
            storage_slice v;
            bool found;
            (void)storage_hash_get(t, key, field, &v, &found);
        }
        free(fields.buf);
    }
    storage_abort(t);

    /* Writes on the same keys, then abort: the state stays as loaded. */
    CHECK_RC(storage_begin(store, true, &t));
    pos = 0;
    for (size_t k = 0; k < keys.n && k < 64; k++) {
        size_t n = (size_t)get_be(keys.buf + pos, 4);
        storage_slice key = {keys.buf + pos + 4, n};
        uint8_t type = keys.buf[pos + 4 + n];
        pos += 4 + n + 1;
        storage_slice f = {"f", 1}, v = {"v", 1};
        bool b;
        switch (k % 4) {
        case 0:
            (void)storage_string_set(t, key, v);
            break;
        case 1:
            if (type == STORAGE_TYPE_HASH) {
                (void)storage_hash_set(t, key, f, v, &b);
                (void)storage_hash_delete(t, key, f, &b);
            }
            break;
        default:
            (void)storage_key_delete(t, key, &b);
            break;
        }
    }
    (void)storage_hash_set(t, (storage_slice){"fuzz", 4},
                           (storage_slice){"f", 1}, (storage_slice){"v", 1},
                           NULL);
    (void)storage_key_flush(t);
    (void)storage_table_put(t, 2, (storage_slice){"id", 2},
                            (storage_slice){"v", 1}, NULL);
    (void)storage_table_delete(t, 2, (storage_slice){"id", 2}, NULL);
    (void)storage_table_flush(t, 1, STORAGE_TABLE_MAX);
    storage_abort(t);
    free(keys.buf);
}

/* Try loading @p; on success run the round-trip checks. */
static void try_load(const uint8_t *p, size_t len)
{
    uint64_t index = 0;
    int rc = storage_dump_applied_index(p, len, &index);
    bool framed = frame_ok(p, len);
    CHECK((rc == 0) == framed);
    if (rc == 0)
        CHECK(index == get_be(p + 16, 8));
    else
        CHECK(rc == STORAGE_ECORRUPT);

    size_t before_len;
    void *before = dump_state(&before_len);
    rc = storage_load_dump(store, p, len);
    if (rc != 0) {
        CHECK(rc == STORAGE_ECORRUPT);
        size_t after_len;
        void *after = dump_state(&after_len);
        CHECK(after_len == before_len &&
              memcmp(after, before, after_len) == 0);
        free(after);
        free(before);
        return;
    }
    free(before);
    CHECK(framed);

    size_t d1_len, d2_len;
    uint8_t *d1 = dump_state(&d1_len);
    uint64_t d1_index;
    CHECK_RC(storage_dump_applied_index(d1, d1_len, &d1_index));
    if (canonical(p, len)) {
        /* The same tables, byte for byte; the header's index is the stored
         * applied index, which a crafted dump need not agree with. */
        CHECK(d1_len == len);
        CHECK(memcmp(d1 + HEADER_LEN, p + HEADER_LEN,
                     len - HEADER_LEN - TRAILER_LEN) == 0);
    }
    CHECK_RC(storage_load_dump(store, d1, d1_len));
    uint8_t *d2 = dump_state(&d2_len);
    CHECK(d2_len == d1_len && memcmp(d1, d2, d1_len) == 0);
    free(d2);
    free(d1);

    exercise_state();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* As given (exact-size copy, so ASan sees overreads). */
    uint8_t *copy = calloc(1, size ? size : 1); /* calloc: gcc 12 warns
                                                     of an empty malloc'd
                                                     input otherwise */
    CHECK(copy != NULL);
    if (size)
        memcpy(copy, data, size);
    try_load(copy, size);

    /* With the checksum made right. */
    if (size >= HEADER_LEN + TRAILER_LEN) {
        put_be(copy + size - TRAILER_LEN,
               fz_dump_checksum(copy, size - TRAILER_LEN), TRAILER_LEN);
        if (memcmp(copy, data, size) != 0)
            try_load(copy, size);
    }
    free(copy);
    return 0;
}
