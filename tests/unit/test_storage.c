/* Unit tests for storage/: the LMDB-backed keyspace, meta and dumps. */
#include <criterion/criterion.h>

#include <ftw.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <inttypes.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage.h"
#include "storage_int.h"

/* ---- fixtures: every test gets fresh temporary directories -------------- */

#define MAX_DIRS 4
static char dirs[MAX_DIRS][64];
static int dirCount;

static const char *newDir(void)
{
    cr_assert_lt(dirCount, MAX_DIRS);
    char *d = dirs[dirCount];
    snprintf(d, sizeof dirs[0], "/tmp/gcsd-storage-XXXXXX");
    cr_assert_not_null(mkdtemp(d), "mkdtemp failed");
    dirCount++;
    return d;
}

static int removeEntry(const char *path, const struct stat *st, int flag,
                       struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void cleanup(void)
{
    for (int i = 0; i < dirCount; i++) {
        umount2(dirs[i], MNT_DETACH); /* a test's tmpfs, if it left one */
        nftw(dirs[i], removeEntry, 8, FTW_DEPTH | FTW_PHYS);
    }
    dirCount = 0;
}

TestSuite(storage, .fini = cleanup, .timeout = 240);

/* ---- helpers ------------------------------------------------------------ */

static storage_slice sl(const char *s)
{
    return (storage_slice){s, strlen(s)};
}

static storage_slice bin(const void *p, size_t n)
{
    return (storage_slice){p, n};
}

static bool sliceIs(storage_slice a, storage_slice b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.data, b.data, a.len) == 0);
}

#define OK(expr)                                                           \
    do {                                                                   \
        int rc_ = (expr);                                                  \
        cr_assert_eq(rc_, STORAGE_OK, "%s failed: %s", #expr,              \
                     storage_strerror(rc_));                               \
    } while (0)

static storage *openStore(const char *dir, size_t mapSize)
{
    storage_options o = {.map_size = mapSize};
    storage *s = NULL;
    char err[256] = "";
    int rc = storage_open(dir, &o, &s, err, sizeof err);
    cr_assert_eq(rc, STORAGE_OK, "storage_open: %s", err);
    cr_assert_not_null(s);
    return s;
}

static storage_txn *beginW(storage *s)
{
    storage_txn *t = NULL;
    OK(storage_begin(s, true, &t));
    return t;
}

static storage_txn *beginR(storage *s)
{
    storage_txn *t = NULL;
    OK(storage_begin(s, false, &t));
    return t;
}

static void setStr(storage *s, storage_slice k, storage_slice v)
{
    storage_txn *t = beginW(s);
    OK(storage_string_set(t, k, v));
    OK(storage_commit(t));
}

static void expectStrIn(storage_txn *t, storage_slice k, storage_slice v)
{
    storage_slice got;
    bool found = false;
    OK(storage_string_get(t, k, &got, &found));
    cr_assert(found, "key of %zu bytes missing", k.len);
    cr_assert(sliceIs(got, v), "wrong value for key of %zu bytes", k.len);
}

static void expectStr(storage *s, storage_slice k, storage_slice v)
{
    storage_txn *t = beginR(s);
    expectStrIn(t, k, v);
    storage_abort(t);
}

static void expectAbsentIn(storage_txn *t, storage_slice k)
{
    storage_type type = STORAGE_TYPE_STRING;
    OK(storage_key_type(t, k, &type));
    cr_assert_eq(type, STORAGE_TYPE_NONE);
}

static uint64_t keyCount(storage *s)
{
    storage_txn *t = beginR(s);
    uint64_t n = 99999;
    OK(storage_key_count(t, &n));
    storage_abort(t);
    return n;
}

static void hset(storage_txn *t, const char *k, const char *f, const char *v,
                 bool expectCreated)
{
    bool created = !expectCreated;
    OK(storage_hash_set(t, sl(k), sl(f), sl(v), &created));
    cr_assert_eq(created, expectCreated, "HSET %s %s created", k, f);
}

static void expectField(storage_txn *t, const char *k, const char *f,
                        const char *v)
{
    storage_slice got;
    bool found = false;
    OK(storage_hash_get(t, sl(k), sl(f), &got, &found));
    if (v == NULL) {
        cr_assert(!found, "field %s.%s should be absent", k, f);
        return;
    }
    cr_assert(found, "field %s.%s missing", k, f);
    cr_assert(sliceIs(got, sl(v)), "field %s.%s wrong value", k, f);
}

static uint64_t hashLen(storage_txn *t, const char *k)
{
    uint64_t n = 99999;
    OK(storage_hash_len(t, sl(k), &n));
    return n;
}

static uint64_t metaGet(storage *s, const char *name)
{
    storage_txn *t = beginR(s);
    uint64_t v = 99999;
    OK(storage_meta_get(t, name, &v));
    storage_abort(t);
    return v;
}

static void dumpOf(storage *s, void **buf, size_t *len)
{
    storage_txn *t = beginR(s);
    OK(storage_dump(t, buf, len));
    storage_abort(t);
    cr_assert_not_null(*buf);
}

static uint64_t be(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

/* Entry count of table @name in a dump, read by an independent parser. */
static uint64_t dumpTableEntries(const void *buf, size_t len, const char *name)
{
    const uint8_t *p = buf;
    size_t off = 24;
    while (off < len - 8) {
        size_t nl = p[off];
        bool match = nl == strlen(name) && memcmp(p + off + 1, name, nl) == 0;
        off += 1 + nl;
        uint64_t count = be(p + off, 8);
        off += 8;
        if (match)
            return count;
        for (uint64_t i = 0; i < count; i++) {
            off += 4 + be(p + off, 4);
            off += 8 + be(p + off, 8);
        }
    }
    cr_assert_fail("table %s not in dump", name);
    return 0;
}

static uint64_t fieldEntries(storage *s)
{
    void *buf;
    size_t len;
    dumpOf(s, &buf, &len);
    uint64_t n = dumpTableEntries(buf, len, "fields");
    free(buf);
    return n;
}

/* Keys named "k<number>": a scan counts how often each was seen. */
typedef struct seen {
    unsigned *counts;
    size_t n;
    size_t visits;
} seen;

static void seenInit(seen *sn, size_t n)
{
    sn->counts = calloc(n, sizeof *sn->counts);
    cr_assert_not_null(sn->counts);
    sn->n = n;
    sn->visits = 0;
}

static size_t parseIndex(storage_slice name)
{
    char buf[32];
    cr_assert(name.len > 1 && name.len < sizeof buf, "unexpected name");
    memcpy(buf, name.data, name.len);
    buf[name.len] = 0;
    cr_assert_eq(buf[0], 'k', "unexpected name %s", buf);
    return (size_t)strtoul(buf + 1, NULL, 10);
}

static int countKey(void *arg, storage_slice key, storage_type type)
{
    seen *sn = arg;
    size_t i = parseIndex(key);
    cr_assert_lt(i, sn->n);
    cr_assert_neq(type, STORAGE_TYPE_NONE);
    sn->counts[i]++;
    sn->visits++;
    return 0;
}

static int countField(void *arg, storage_slice field, storage_slice value)
{
    seen *sn = arg;
    size_t i = parseIndex(field);
    cr_assert_lt(i, sn->n);
    cr_assert(sliceIs(value, field), "field value should equal its name");
    sn->counts[i]++;
    sn->visits++;
    return 0;
}

static void keyName(char *buf, size_t size, size_t i)
{
    snprintf(buf, size, "k%zu", i);
}

/* SET k<i> = k<i> for i in [from, to), in one transaction. */
static void setRange(storage *s, size_t from, size_t to)
{
    storage_txn *t = beginW(s);
    char name[32];
    for (size_t i = from; i < to; i++) {
        keyName(name, sizeof name, i);
        OK(storage_string_set(t, sl(name), sl(name)));
    }
    OK(storage_commit(t));
}

/* A whole SCAN, one read transaction per call; returns the number of calls. */
static size_t fullKeyScan(storage *s, size_t count, seen *sn)
{
    uint64_t cursor = 0;
    size_t calls = 0;
    do {
        storage_txn *t = beginR(s);
        uint64_t next = 12345;
        OK(storage_key_scan(t, cursor, count, countKey, sn, &next));
        storage_abort(t);
        cr_assert(next == 0 || next > cursor, "cursor must advance");
        cursor = next;
        cr_assert_lt(++calls, 1000000u, "scan does not end");
    } while (cursor != 0);
    return calls;
}

/* ---- basics ------------------------------------------------------------- */

Test(storage, strerror_covers_every_code)
{
    cr_assert_str_eq(storage_strerror(0), "ok");
    cr_assert_str_eq(storage_strerror(STORAGE_EWRONGTYPE),
                     "operation against a key of another type");
    cr_assert_str_eq(storage_strerror(STORAGE_EMAPFULL),
                     "the database map is full");
    cr_assert_str_eq(storage_strerror(STORAGE_EBUSY), "resource busy");
    cr_assert_str_eq(storage_strerror(12345), "unknown error");
    cr_assert_str_eq(storage_strerror(-30900), "unknown error");
}

Test(storage, hash_is_a_fixed_format)
{
    /* Golden values, computed independently: FNV-1a 64 then fmix64. */
    cr_assert_eq(storage__default_hash("", 0), UINT64_C(0xefd01f60ba992926));
    cr_assert_eq(storage__default_hash("a", 1), UINT64_C(0x82a2a958a9bece5b));
    cr_assert_eq(storage__default_hash("foobar", 6),
                 UINT64_C(0x2c22194922d1672b));
    cr_assert_eq(storage__default_hash("gcsd", 4),
                 UINT64_C(0xbee42140e2dc5558));
    uint8_t all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (uint8_t)i;
    cr_assert_eq(storage__default_hash(all, sizeof all),
                 UINT64_C(0x2067db6dbd4efa06));
}

Test(storage, reopen_keeps_data)
{
    const char *dir = newDir();
    storage *s = openStore(dir, 0);
    storage_txn *t = beginW(s);
    OK(storage_string_set(t, sl("name"), sl("value")));
    hset(t, "h", "f1", "v1", true);
    hset(t, "h", "f2", "v2", true);
    OK(storage_meta_set(t, STORAGE_META_APPLIED_INDEX, 42));
    OK(storage_commit(t));
    OK(storage_sync(s));
    storage_close(s);

    s = openStore(dir, 0);
    expectStr(s, sl("name"), sl("value"));
    t = beginR(s);
    expectField(t, "h", "f1", "v1");
    expectField(t, "h", "f2", "v2");
    cr_assert_eq(hashLen(t, "h"), 2);
    storage_abort(t);
    cr_assert_eq(metaGet(s, STORAGE_META_APPLIED_INDEX), 42);
    cr_assert_eq(keyCount(s), 2);

    /* Still writable after reopening, and new hashes get fresh ids. */
    t = beginW(s);
    hset(t, "h2", "f", "x", true);
    OK(storage_commit(t));
    t = beginR(s);
    expectField(t, "h2", "f", "x");
    expectField(t, "h", "f", NULL);
    cr_assert_eq(hashLen(t, "h"), 2);
    storage_abort(t);
    storage_close(s);
    storage_close(NULL);
}

Test(storage, open_reports_missing_directory)
{
    storage *s = (storage *)1;
    char err[256] = "";
    int rc = storage_open("/nonexistent/gcsd/dir", NULL, &s, err, sizeof err);
    cr_assert_neq(rc, STORAGE_OK);
    cr_assert_null(s);
    cr_assert(strstr(err, "/nonexistent/gcsd/dir") != NULL, "message: %s", err);
    cr_assert_eq(storage_open(NULL, NULL, &s, NULL, 0), STORAGE_EINVAL);
}

Test(storage, info_and_sync)
{
    const char *dir = newDir();
    storage *s = openStore(dir, 64u << 20);
    setRange(s, 0, 1000);
    storage_info info;
    OK(storage_get_info(s, &info));
    cr_assert_eq(info.map_size, 64u << 20);
    cr_assert_gt(info.used_bytes, 4096u);
    cr_assert_eq(info.used_bytes % 4096, 0);
    cr_assert_geq(info.file_bytes, info.used_bytes);
    cr_assert_leq(info.used_bytes, info.map_size);
    OK(storage_sync(s));
    storage_close(s);
}

/* With MDB_WRITEMAP LMDB stores pages through its map of a sparse file: on
 * a full disk, a page landing in a hole would be SIGBUS. The file is
 * allocated ahead (storage_reserve, and a margin at each write transaction),
 * so a full disk is STORAGE_ENOSPC before the transaction starts, and what
 * was committed stays. Needs a tmpfs (root); skipped otherwise. */
Test(storage, full_disk_is_an_error_not_a_crash)
{
    const char *dir = newDir();
    if (mount("tmpfs", dir, "tmpfs", 0, "size=24m") != 0)
        cr_skip_test("cannot mount a tmpfs here (needs CAP_SYS_ADMIN)");
    storage *s = openStore(dir, 1u << 30);
    cr_assert(s->writemap, "tmpfs allocates ahead: MDB_WRITEMAP expected");
    size_t len = 1u << 20;
    char *val = malloc(len);
    cr_assert_not_null(val);
    int rc = 0, i;
    char key[32];
    for (i = 0; i < 100; i++) {
        memset(val, 'a' + i % 26, len);
        snprintf(key, sizeof key, "v%d", i);
        storage_txn *t;
        rc = storage_reserve(s, 2 * len);
        if (rc == 0)
            rc = storage_begin(s, true, &t);
        if (rc != 0)
            break;
        rc = storage_string_set(t, sl(key), bin(val, len));
        if (rc != 0) {
            storage_abort(t);
            break;
        }
        if ((rc = storage_commit(t)) != 0)
            break;
    }
    cr_assert_eq(rc, STORAGE_ENOSPC, "rc %d (%s) after %d values", rc,
                 storage_strerror(rc), i);
    cr_assert_gt(i, 2, "the disk filled after %d values", i);

    /* Everything committed is there, after a reopen too (on a disk still
     * full: opening does not need space). */
    storage_close(s);
    s = openStore(dir, 1u << 30);
    for (int k = 0; k < i; k++) {
        memset(val, 'a' + k % 26, len);
        snprintf(key, sizeof key, "v%d", k);
        expectStr(s, sl(key), bin(val, len));
    }
    cr_assert_eq(storage_reserve(s, 2 * len), STORAGE_ENOSPC,
                 "the disk is still full");
    storage_close(s);
    free(val);
}

/* Write commits and syncs are timed; read transactions are not. */
Test(storage, timings_count_commits_and_syncs)
{
    const char *dir = newDir();
    storage *s = openStore(dir, 64u << 20);
    storage_timing commit0, sync0, commit, sync;
    storage_get_timings(s, &commit0, &sync0);
    storage_txn *t;
    for (int i = 0; i < 3; i++) {
        OK(storage_begin(s, true, &t));
        OK(storage_meta_set(t, "n", (uint64_t)i));
        OK(storage_commit(t));
    }
    OK(storage_begin(s, false, &t));
    OK(storage_commit(t));
    OK(storage_sync(s));
    storage_get_timings(s, &commit, NULL);
    storage_get_timings(s, NULL, &sync);
    cr_assert_eq(commit.n, commit0.n + 3);
    cr_assert_eq(sync.n, sync0.n + 1);
    uint64_t total = 0;
    for (size_t i = 0; i <= STORAGE_TIMING_BUCKETS; i++) {
        total += commit.counts[i];
    }
    cr_assert_eq(total, commit.n);
    storage_close(s);
}

Test(storage, meta_get_set)
{
    storage *s = openStore(newDir(), 0);
    cr_assert_eq(metaGet(s, "absent"), 0);
    storage_txn *t = beginW(s);
    OK(storage_meta_set(t, "a", 1));
    OK(storage_meta_set(t, "b", UINT64_MAX));
    OK(storage_meta_set(t, "a", 7));
    uint64_t v = 0;
    OK(storage_meta_get(t, "a", &v));
    cr_assert_eq(v, 7);
    cr_assert_eq(storage_meta_set(t, "", 1), STORAGE_EINVAL);
    cr_assert_eq(storage_meta_set(t, NULL, 1), STORAGE_EINVAL);
    char longName[600];
    memset(longName, 'x', sizeof longName - 1);
    longName[sizeof longName - 1] = 0;
    cr_assert_eq(storage_meta_set(t, longName, 1), STORAGE_EINVAL);
    OK(storage_commit(t)); /* argument errors leave the transaction usable */
    cr_assert_eq(metaGet(s, "a"), 7);
    cr_assert_eq(metaGet(s, "b"), UINT64_MAX);

    t = beginR(s);
    cr_assert_eq(storage_meta_set(t, "a", 8), STORAGE_EINVAL);
    cr_assert_eq(storage_string_set(t, sl("k"), sl("v")), STORAGE_EINVAL);
    OK(storage_commit(t)); /* committing a read transaction ends it */
    cr_assert_eq(metaGet(s, "a"), 7);
    storage_close(s);
}

/* ---- strings ------------------------------------------------------------ */

Test(storage, string_set_get_overwrite_delete)
{
    storage *s = openStore(newDir(), 0);
    storage_txn *t = beginW(s);
    storage_slice v;
    bool found = true;
    OK(storage_string_get(t, sl("k"), &v, &found));
    cr_assert(!found);
    OK(storage_string_set(t, sl("k"), sl("one")));
    expectStrIn(t, sl("k"), sl("one"));
    OK(storage_string_set(t, sl("k"), sl("a much longer second value")));
    expectStrIn(t, sl("k"), sl("a much longer second value"));
    OK(storage_string_set(t, sl("k"), sl("3")));
    OK(storage_commit(t));
    expectStr(s, sl("k"), sl("3"));
    cr_assert_eq(keyCount(s), 1);

    t = beginR(s);
    storage_type type;
    OK(storage_key_type(t, sl("k"), &type));
    cr_assert_eq(type, STORAGE_TYPE_STRING);
    storage_abort(t);

    t = beginW(s);
    bool deleted = false;
    OK(storage_key_delete(t, sl("k"), &deleted));
    cr_assert(deleted);
    OK(storage_key_delete(t, sl("k"), &deleted));
    cr_assert(!deleted);
    OK(storage_key_delete(t, sl("never"), NULL));
    OK(storage_commit(t));
    t = beginR(s);
    expectAbsentIn(t, sl("k"));
    storage_abort(t);
    cr_assert_eq(keyCount(s), 0);
    storage_close(s);
}

Test(storage, binary_keys_and_values)
{
    storage *s = openStore(newDir(), 0);
    storage_txn *t = beginW(s);
    OK(storage_string_set(t, bin("a\0b", 3), bin("x\0y\0", 4)));
    OK(storage_string_set(t, bin("a\0c", 3), bin("\0", 1)));
    OK(storage_string_set(t, bin("a", 1), bin("plain", 5)));
    OK(storage_string_set(t, bin(NULL, 0), bin("empty key", 9)));
    OK(storage_string_set(t, bin("empty value", 11), bin(NULL, 0)));
    OK(storage_hash_set(t, bin("h\0", 2), bin("\0f\0", 3), bin("\0\0", 2),
                        NULL));
    OK(storage_hash_set(t, bin("h\0", 2), bin("", 0), bin("e", 1), NULL));
    OK(storage_commit(t));

    expectStr(s, bin("a\0b", 3), bin("x\0y\0", 4));
    expectStr(s, bin("a\0c", 3), bin("\0", 1));
    expectStr(s, bin("a", 1), bin("plain", 5));
    expectStr(s, bin("", 0), bin("empty key", 9));
    expectStr(s, bin("empty value", 11), bin("", 0));
    t = beginR(s);
    expectAbsentIn(t, bin("a\0", 2));
    storage_slice v;
    bool found = false;
    OK(storage_hash_get(t, bin("h\0", 2), bin("\0f\0", 3), &v, &found));
    cr_assert(found && sliceIs(v, bin("\0\0", 2)));
    OK(storage_hash_get(t, bin("h\0", 2), bin("", 0), &v, &found));
    cr_assert(found && sliceIs(v, bin("e", 1)));
    OK(storage_hash_get(t, bin("h", 1), bin("", 0), &v, &found));
    cr_assert(!found);
    storage_abort(t);
    cr_assert_eq(keyCount(s), 6);

    /* Invalid slices are refused without harming the transaction. */
    t = beginW(s);
    cr_assert_eq(storage_string_set(t, bin(NULL, 3), sl("v")), STORAGE_EINVAL);
    OK(storage_string_set(t, sl("after"), sl("ok")));
    OK(storage_commit(t));
    expectStr(s, sl("after"), sl("ok"));
    storage_close(s);
}

typedef struct findName {
    storage_slice want;
    int hits;
} findName;

static int findKeyCb(void *arg, storage_slice key, storage_type type)
{
    findName *fn = arg;
    if (sliceIs(key, fn->want)) {
        cr_assert_eq(type, STORAGE_TYPE_HASH);
        fn->hits++;
    }
    return 0;
}

static int findFieldCb(void *arg, storage_slice field, storage_slice value)
{
    findName *fn = arg;
    if (sliceIs(field, fn->want)) {
        cr_assert(sliceIs(value, sl("fv")));
        fn->hits++;
    }
    return 0;
}

Test(storage, names_longer_than_lmdb_key_limit)
{
    storage *s = openStore(newDir(), 0);
    char *longKey = malloc(2000), *longKey2 = malloc(2000);
    char *field = malloc(600);
    cr_assert(longKey && longKey2 && field);
    for (int i = 0; i < 2000; i++)
        longKey[i] = longKey2[i] = (char)('a' + i % 26);
    longKey2[1999] = '!'; /* same 1999-byte prefix */
    for (int i = 0; i < 600; i++)
        field[i] = (char)(i % 251);

    storage_txn *t = beginW(s);
    OK(storage_string_set(t, bin(longKey, 2000), sl("first")));
    OK(storage_string_set(t, bin(longKey2, 2000), sl("second")));
    OK(storage_hash_set(t, bin(longKey, 1000), bin(field, 600), sl("fv"),
                        NULL));
    OK(storage_commit(t));

    expectStr(s, bin(longKey, 2000), sl("first"));
    expectStr(s, bin(longKey2, 2000), sl("second"));
    t = beginR(s);
    storage_slice v;
    bool found = false;
    OK(storage_hash_get(t, bin(longKey, 1000), bin(field, 600), &v, &found));
    cr_assert(found && sliceIs(v, sl("fv")));
    OK(storage_hash_get(t, bin(longKey, 1000), bin(field, 599), &v, &found));
    cr_assert(!found);

    findName fk = {bin(longKey, 1000), 0};
    uint64_t next = 1;
    OK(storage_key_scan(t, 0, 0, findKeyCb, &fk, &next));
    cr_assert_eq(fk.hits, 1);
    cr_assert_eq(next, 0);
    findName ff = {bin(field, 600), 0};
    OK(storage_hash_scan(t, bin(longKey, 1000), 0, 0, findFieldCb, &ff,
                         &next));
    cr_assert_eq(ff.hits, 1);
    storage_abort(t);
    cr_assert_eq(keyCount(s), 3);
    free(longKey);
    free(longKey2);
    free(field);
    storage_close(s);
}

Test(storage, big_value_round_trip)
{
    const char *dir = newDir();
    storage *s = openStore(dir, 0);
    size_t n = 8u << 20;
    uint8_t *big = malloc(n);
    cr_assert_not_null(big);
    uint32_t x = 12345;
    for (size_t i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        big[i] = (uint8_t)(x >> 16);
    }
    setStr(s, sl("big"), bin(big, n));
    expectStr(s, sl("big"), bin(big, n));
    storage_txn *t = beginW(s);
    OK(storage_hash_set(t, sl("bighash"), sl("f"), bin(big, n), NULL));
    OK(storage_commit(t));
    storage_close(s);

    s = openStore(dir, 0);
    expectStr(s, sl("big"), bin(big, n));
    t = beginR(s);
    storage_slice v;
    bool found = false;
    OK(storage_hash_get(t, sl("bighash"), sl("f"), &v, &found));
    cr_assert(found && sliceIs(v, bin(big, n)));
    storage_abort(t);
    setStr(s, sl("big"), sl("small now"));
    expectStr(s, sl("big"), sl("small now"));
    free(big);
    storage_close(s);
}

Test(storage, many_keys)
{
    enum { N = 20000 };
    storage *s = openStore(newDir(), 0);
    setRange(s, 0, N);
    cr_assert_eq(keyCount(s), N);

    storage_txn *t = beginW(s);
    char name[32];
    for (size_t i = 0; i < N; i++) {
        keyName(name, sizeof name, i);
        expectStrIn(t, sl(name), sl(name));
    }
    for (size_t i = 0; i < N; i += 2) {
        keyName(name, sizeof name, i);
        bool deleted = false;
        OK(storage_key_delete(t, sl(name), &deleted));
        cr_assert(deleted);
    }
    OK(storage_commit(t));
    cr_assert_eq(keyCount(s), N / 2);

    t = beginR(s);
    for (size_t i = 0; i < N; i++) {
        keyName(name, sizeof name, i);
        if (i % 2)
            expectStrIn(t, sl(name), sl(name));
        else
            expectAbsentIn(t, sl(name));
    }
    storage_abort(t);

    seen sn;
    seenInit(&sn, N);
    fullKeyScan(s, 100, &sn);
    for (size_t i = 0; i < N; i++)
        cr_assert_eq(sn.counts[i], i % 2, "key %zu seen %u times", i,
                     sn.counts[i]);
    free(sn.counts);
    storage_close(s);
}

/* ---- hash collisions, forced through the test hook ---------------------- */

static uint64_t sevenHash(const void *data, size_t len)
{
    return 7;
}

/* Groups by byte sum into 4 hashes, 0 among them. */
static uint64_t sumHash(const void *data, size_t len)
{
    const uint8_t *p = data;
    uint64_t sum = 0;
    for (size_t i = 0; i < len; i++)
        sum += p[i];
    return sum % 4;
}

Test(storage, colliding_keys_and_fields)
{
    enum { N = 300 };
    storage *s = openStore(newDir(), 0);
    storage__set_hash_for_tests(s, sevenHash);
    setRange(s, 0, N);
    char name[32], val[40];

    storage_txn *t = beginW(s);
    for (size_t i = 0; i < N; i++) {
        keyName(name, sizeof name, i);
        expectStrIn(t, sl(name), sl(name));
    }
    /* Overwrite some, delete some, then insert again: seqs must not clash. */
    for (size_t i = 0; i < N; i += 3) {
        keyName(name, sizeof name, i);
        snprintf(val, sizeof val, "new%zu", i);
        OK(storage_string_set(t, sl(name), sl(val)));
    }
    for (size_t i = 1; i < N; i += 3)
        OK(storage_key_delete(t, sl((keyName(name, sizeof name, i), name)),
                              NULL));
    OK(storage_commit(t));
    cr_assert_eq(keyCount(s), N - N / 3);
    setRange(s, N, N + 50);          /* new names after the gaps */
    setRange(s, N - 3, N + 3);       /* mixes overwrites and inserts */

    t = beginW(s);
    for (size_t i = 0; i < N + 50; i++) {
        keyName(name, sizeof name, i);
        if (i >= N - 3)
            expectStrIn(t, sl(name), sl(name));
        else if (i % 3 == 0) {
            snprintf(val, sizeof val, "new%zu", i);
            expectStrIn(t, sl(name), sl(val));
        } else if (i % 3 == 1)
            expectAbsentIn(t, sl(name));
        else
            expectStrIn(t, sl(name), sl(name));
    }

    /* Fields collide too (within one hash, and with other hashes' ids). */
    for (size_t i = 0; i < 100; i++) {
        keyName(name, sizeof name, i);
        OK(storage_hash_set(t, sl("k998"), sl(name), sl(name), NULL));
        if (i % 2)
            OK(storage_hash_set(t, sl("k999"), sl(name), sl("b"), NULL));
    }
    cr_assert_eq(hashLen(t, "k998"), 100);
    cr_assert_eq(hashLen(t, "k999"), 50);
    for (size_t i = 0; i < 100; i += 4) {
        keyName(name, sizeof name, i);
        bool deleted = false;
        OK(storage_hash_delete(t, sl("k998"), sl(name), &deleted));
        cr_assert(deleted);
    }
    for (size_t i = 0; i < 100; i++) {
        keyName(name, sizeof name, i);
        expectField(t, "k998", name, i % 4 ? name : NULL);
        expectField(t, "k999", name, i % 2 ? "b" : NULL);
    }
    OK(storage_commit(t));

    /* One group: a scan with count 1 must return all of it in one call. */
    seen sn;
    seenInit(&sn, 1000);
    cr_assert_eq(fullKeyScan(s, 1, &sn), 1);
    size_t expected = 0;
    for (size_t i = 0; i < N + 50; i++) {
        bool present = i >= N - 3 || i % 3 != 1;
        expected += present;
        cr_assert_eq(sn.counts[i], present, "key %zu", i);
    }
    cr_assert_eq(sn.counts[998], 1);
    cr_assert_eq(sn.counts[999], 1);
    cr_assert_eq(keyCount(s), expected + 2);
    free(sn.counts);
    storage_close(s);
}

typedef struct groupCheck {
    uint64_t hashes[64];
    size_t n;
} groupCheck;

static int recordGroup(void *arg, storage_slice key, storage_type type)
{
    groupCheck *g = arg;
    cr_assert_lt(g->n, 64u);
    g->hashes[g->n++] = sumHash(key.data, key.len);
    return 0;
}

Test(storage, scan_finishes_hash_groups)
{
    enum { N = 40 };
    storage *s = openStore(newDir(), 0);
    storage__set_hash_for_tests(s, sumHash);
    setRange(s, 0, N);
    size_t perGroup[4] = {0};
    char name[32];
    for (size_t i = 0; i < N; i++) {
        keyName(name, sizeof name, i);
        perGroup[sumHash(name, strlen(name))]++;
    }
    for (int g = 0; g < 4; g++)
        cr_assert_gt(perGroup[g], 0u, "test needs all four groups");

    /* count 1: each call returns exactly one whole group, in hash order,
     * starting with the group whose hash is 0. */
    uint64_t cursor = 0;
    for (uint64_t g = 0; g < 4; g++) {
        groupCheck gc = {.n = 0};
        storage_txn *t = beginR(s);
        uint64_t next = 99;
        OK(storage_key_scan(t, cursor, 1, recordGroup, &gc, &next));
        storage_abort(t);
        cr_assert_eq(gc.n, perGroup[g], "group %lu", (unsigned long)g);
        for (size_t i = 0; i < gc.n; i++)
            cr_assert_eq(gc.hashes[i], g);
        cr_assert_eq(next, g == 3 ? 0 : g + 1);
        cursor = next;
    }
    /* Resuming inside the range works at any cursor. */
    groupCheck gc = {.n = 0};
    storage_txn *t = beginR(s);
    uint64_t next = 99;
    OK(storage_key_scan(t, 2, 0, recordGroup, &gc, &next));
    cr_assert_eq(gc.n, perGroup[2] + perGroup[3]);
    cr_assert_eq(next, 0);
    gc.n = 0;
    OK(storage_key_scan(t, 4, 0, recordGroup, &gc, &next));
    cr_assert_eq(gc.n, 0);
    cr_assert_eq(next, 0);
    storage_abort(t);
    storage_close(s);
}

/* ---- types -------------------------------------------------------------- */

static int failIfCalled(void *arg, storage_slice field, storage_slice value)
{
    cr_assert_fail("callback must not run");
    return 0;
}

Test(storage, wrongtype_both_ways)
{
    storage *s = openStore(newDir(), 0);
    storage_txn *t = beginW(s);
    OK(storage_string_set(t, sl("str"), sl("v")));
    hset(t, "hash", "f", "v", true);

    storage_slice v;
    bool found = true, flag = true;
    uint64_t n = 5, next = 5;
    cr_assert_eq(storage_string_get(t, sl("hash"), &v, &found),
                 STORAGE_EWRONGTYPE);
    cr_assert_eq(storage_hash_get(t, sl("str"), sl("f"), &v, &found),
                 STORAGE_EWRONGTYPE);
    cr_assert_eq(storage_hash_set(t, sl("str"), sl("f"), sl("v"), &flag),
                 STORAGE_EWRONGTYPE);
    cr_assert(!flag);
    cr_assert_eq(storage_hash_delete(t, sl("str"), sl("f"), &flag),
                 STORAGE_EWRONGTYPE);
    cr_assert_eq(storage_hash_len(t, sl("str"), &n), STORAGE_EWRONGTYPE);
    cr_assert_eq(storage_hash_scan(t, sl("str"), 0, 0, failIfCalled, NULL,
                                   &next),
                 STORAGE_EWRONGTYPE);

    /* A type error changes nothing and the transaction stays usable. */
    OK(storage_string_set(t, sl("after"), sl("x")));
    OK(storage_commit(t));
    expectStr(s, sl("str"), sl("v"));
    expectStr(s, sl("after"), sl("x"));
    t = beginR(s);
    expectField(t, "hash", "f", "v");
    storage_type type;
    OK(storage_key_type(t, sl("hash"), &type));
    cr_assert_eq(type, STORAGE_TYPE_HASH);
    storage_abort(t);
    cr_assert_eq(keyCount(s), 3);
    storage_close(s);
}

Test(storage, set_over_hash_drops_its_fields)
{
    storage *s = openStore(newDir(), 0);
    storage_txn *t = beginW(s);
    char name[32];
    for (size_t i = 0; i < 50; i++) {
        keyName(name, sizeof name, i);
        OK(storage_hash_set(t, sl("h"), sl(name), sl(name), NULL));
        OK(storage_hash_set(t, sl("other"), sl(name), sl(name), NULL));
    }
    OK(storage_commit(t));
    cr_assert_eq(fieldEntries(s), 100);

    setStr(s, sl("h"), sl("now a string"));
    expectStr(s, sl("h"), sl("now a string"));
    cr_assert_eq(fieldEntries(s), 50);
    cr_assert_eq(keyCount(s), 2);

    /* Back to a hash: it starts empty, nothing left over. */
    t = beginW(s);
    OK(storage_key_delete(t, sl("h"), NULL));
    hset(t, "h", "k1", "fresh", true);
    cr_assert_eq(hashLen(t, "h"), 1);
    expectField(t, "h", "k2", NULL);
    OK(storage_commit(t));

    /* DEL of a hash removes its fields. */
    t = beginW(s);
    bool deleted = false;
    OK(storage_key_delete(t, sl("other"), &deleted));
    cr_assert(deleted);
    OK(storage_commit(t));
    cr_assert_eq(fieldEntries(s), 1);
    cr_assert_eq(keyCount(s), 1);
    storage_close(s);
}

/* ---- hashes ------------------------------------------------------------- */

Test(storage, hash_set_get_delete_len)
{
    storage *s = openStore(newDir(), 0);
    storage_txn *t = beginW(s);
    cr_assert_eq(hashLen(t, "h"), 0);
    expectField(t, "h", "a", NULL);
    hset(t, "h", "a", "1", true);
    hset(t, "h", "b", "2", true);
    hset(t, "h", "a", "one", false);
    cr_assert_eq(hashLen(t, "h"), 2);
    expectField(t, "h", "a", "one");
    expectField(t, "h", "b", "2");
    expectField(t, "h", "c", NULL);
    OK(storage_commit(t));
    cr_assert_eq(keyCount(s), 1);

    t = beginW(s);
    bool deleted = true;
    OK(storage_hash_delete(t, sl("h"), sl("zzz"), &deleted));
    cr_assert(!deleted);
    OK(storage_hash_delete(t, sl("nokey"), sl("a"), &deleted));
    cr_assert(!deleted);
    OK(storage_hash_delete(t, sl("h"), sl("a"), &deleted));
    cr_assert(deleted);
    cr_assert_eq(hashLen(t, "h"), 1);
    expectField(t, "h", "a", NULL);
    OK(storage_commit(t));
    cr_assert_eq(keyCount(s), 1);

    t = beginW(s);
    OK(storage_hash_delete(t, sl("h"), sl("b"), &deleted));
    cr_assert(deleted);
    expectAbsentIn(t, sl("h"));
    cr_assert_eq(hashLen(t, "h"), 0);
    OK(storage_commit(t));
    cr_assert_eq(keyCount(s), 0);
    cr_assert_eq(fieldEntries(s), 0);
    storage_close(s);
}

Test(storage, key_count_tracks_everything)
{
    storage *s = openStore(newDir(), 0);
    storage_txn *t = beginW(s);
    uint64_t n = 1;
    OK(storage_key_count(t, &n));
    cr_assert_eq(n, 0);
    struct {
        int op; /* 0 set, 1 del, 2 hset, 3 hdel */
        const char *k, *f;
        uint64_t expect;
    } steps[] = {
        {0, "a", NULL, 1}, {0, "a", NULL, 1}, {0, "b", NULL, 2},
        {2, "h", "x", 3},  {2, "h", "y", 3},  {0, "h", NULL, 3},
        {2, "g", "x", 4},  {3, "g", "x", 3},  {3, "g", "x", 3},
        {1, "zz", NULL, 3}, {1, "a", NULL, 2}, {1, "h", NULL, 1},
        {2, "g", "x", 2},
    };
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        switch (steps[i].op) {
        case 0:
            OK(storage_string_set(t, sl(steps[i].k), sl("v")));
            break;
        case 1:
            OK(storage_key_delete(t, sl(steps[i].k), NULL));
            break;
        case 2:
            OK(storage_hash_set(t, sl(steps[i].k), sl(steps[i].f), sl("v"),
                                NULL));
            break;
        default:
            OK(storage_hash_delete(t, sl(steps[i].k), sl(steps[i].f), NULL));
        }
        OK(storage_key_count(t, &n));
        cr_assert_eq(n, steps[i].expect, "step %zu", i);
    }
    OK(storage_meta_set(t, STORAGE_META_APPLIED_INDEX, 9));
    OK(storage_commit(t));
    cr_assert_eq(keyCount(s), 2);

    t = beginW(s);
    OK(storage_key_flush(t));
    OK(storage_key_count(t, &n));
    cr_assert_eq(n, 0);
    expectAbsentIn(t, sl("b"));
    expectAbsentIn(t, sl("g"));
    OK(storage_commit(t));
    cr_assert_eq(keyCount(s), 0);
    cr_assert_eq(fieldEntries(s), 0);
    cr_assert_eq(metaGet(s, STORAGE_META_APPLIED_INDEX), 9);
    seen sn;
    seenInit(&sn, 1);
    fullKeyScan(s, 0, &sn);
    cr_assert_eq(sn.visits, 0);
    free(sn.counts);

    /* Works as new after a flush. */
    t = beginW(s);
    hset(t, "g", "x", "v", true);
    OK(storage_string_set(t, sl("b"), sl("v")));
    OK(storage_commit(t));
    cr_assert_eq(keyCount(s), 2);
    storage_close(s);
}

/* ---- scans -------------------------------------------------------------- */

Test(storage, key_scan_visits_each_key_once)
{
    enum { N = 2000 };
    storage *s = openStore(newDir(), 0);
    /* An empty keyspace is done at once. */
    seen sn;
    seenInit(&sn, N);
    cr_assert_eq(fullKeyScan(s, 10, &sn), 1);
    cr_assert_eq(sn.visits, 0);
    free(sn.counts);

    setRange(s, 0, N);
    size_t counts[] = {1, 10, 0, 5000};
    size_t expectCalls[] = {N, N / 10, 1, 1};
    for (size_t c = 0; c < 4; c++) {
        seenInit(&sn, N);
        size_t calls = fullKeyScan(s, counts[c], &sn);
        /* Distinct 64-bit hashes of 2000 names: no groups to finish. */
        cr_assert_eq(calls, expectCalls[c], "count %zu", counts[c]);
        for (size_t i = 0; i < N; i++)
            cr_assert_eq(sn.counts[i], 1, "count %zu: key %zu seen %u times",
                         counts[c], i, sn.counts[i]);
        free(sn.counts);
    }
    storage_close(s);
}

Test(storage, key_scan_survives_writes_between_calls)
{
    enum { N = 2000, EXTRA = 4000 };
    storage *s = openStore(newDir(), 0);
    setRange(s, 0, N);
    seen sn;
    seenInit(&sn, N + EXTRA);
    uint64_t cursor = 0;
    size_t added = N, calls = 0;
    char name[32];
    do {
        storage_txn *t = beginR(s);
        uint64_t next;
        OK(storage_key_scan(t, cursor, 10, countKey, &sn, &next));
        storage_abort(t);
        cursor = next;
        /* Between calls: add 3 keys and delete one added earlier. */
        t = beginW(s);
        for (int j = 0; j < 3 && added < N + EXTRA; j++, added++) {
            keyName(name, sizeof name, added);
            OK(storage_string_set(t, sl(name), sl("new")));
        }
        keyName(name, sizeof name, N + calls);
        OK(storage_key_delete(t, sl(name), NULL));
        OK(storage_commit(t));
        cr_assert_lt(++calls, 10000u);
    } while (cursor != 0);
    for (size_t i = 0; i < N + EXTRA; i++) {
        if (i < N)
            cr_assert_eq(sn.counts[i], 1, "key %zu seen %u times", i,
                         sn.counts[i]);
        else
            cr_assert_leq(sn.counts[i], 1, "key %zu seen twice", i);
    }
    free(sn.counts);
    storage_close(s);
}

static size_t fullHashScan(storage *s, const char *key, size_t count,
                           seen *sn)
{
    uint64_t cursor = 0;
    size_t calls = 0;
    do {
        storage_txn *t = beginR(s);
        uint64_t next;
        OK(storage_hash_scan(t, sl(key), cursor, count, countField, sn,
                             &next));
        storage_abort(t);
        cr_assert(next == 0 || next > cursor);
        cursor = next;
        cr_assert_lt(++calls, 100000u);
    } while (cursor != 0);
    return calls;
}

static int stopAtThird(void *arg, storage_slice field, storage_slice value)
{
    int *n = arg;
    return ++*n == 3 ? 77 : 0;
}

static int stopKeys(void *arg, storage_slice key, storage_type type)
{
    int *n = arg;
    return ++*n == 2 ? -5 : 0;
}

Test(storage, hash_scan_visits_each_field_once)
{
    enum { N = 500 };
    storage *s = openStore(newDir(), 0);
    storage_txn *t = beginW(s);
    char name[32];
    for (size_t i = 0; i < N; i++) {
        keyName(name, sizeof name, i);
        OK(storage_hash_set(t, sl("h"), sl(name), sl(name), NULL));
        OK(storage_hash_set(t, sl("before"), sl(name), sl(name), NULL));
        if (i < 10)
            OK(storage_hash_set(t, sl("after"), sl(name), sl(name), NULL));
    }
    OK(storage_commit(t));

    size_t counts[] = {1, 10, 0};
    size_t expectCalls[] = {N, N / 10, 1};
    seen sn;
    for (size_t c = 0; c < 3; c++) {
        seenInit(&sn, N);
        cr_assert_eq(fullHashScan(s, "h", counts[c], &sn), expectCalls[c]);
        cr_assert_eq(sn.visits, N);
        for (size_t i = 0; i < N; i++)
            cr_assert_eq(sn.counts[i], 1, "field %zu", i);
        free(sn.counts);
    }
    seenInit(&sn, N);
    cr_assert_eq(fullHashScan(s, "after", 3, &sn), 4);
    cr_assert_eq(sn.visits, 10);
    free(sn.counts);

    /* Absent key: nothing visited, done. */
    t = beginR(s);
    uint64_t next = 5;
    OK(storage_hash_scan(t, sl("absent"), 0, 0, failIfCalled, NULL, &next));
    cr_assert_eq(next, 0);
    /* A callback's nonzero return stops the scan and comes back. */
    int visits = 0;
    cr_assert_eq(storage_hash_scan(t, sl("h"), 0, 0, stopAtThird, &visits,
                                   &next),
                 77);
    cr_assert_eq(visits, 3);
    visits = 0;
    cr_assert_eq(storage_key_scan(t, 0, 0, stopKeys, &visits, &next), -5);
    cr_assert_eq(visits, 2);
    storage_abort(t);

    /* Fields added between calls: those present throughout are seen. */
    seenInit(&sn, N + 3000);
    uint64_t cursor = 0;
    size_t added = N;
    do {
        t = beginR(s);
        OK(storage_hash_scan(t, sl("h"), cursor, 7, countField, &sn, &next));
        storage_abort(t);
        cursor = next;
        t = beginW(s);
        for (int j = 0; j < 5 && added < N + 3000; j++, added++) {
            keyName(name, sizeof name, added);
            OK(storage_hash_set(t, sl("h"), sl(name), sl(name), NULL));
        }
        OK(storage_commit(t));
    } while (cursor != 0);
    for (size_t i = 0; i < N + 3000; i++) {
        if (i < N)
            cr_assert_eq(sn.counts[i], 1, "field %zu", i);
        else
            cr_assert_leq(sn.counts[i], 1, "field %zu", i);
    }
    free(sn.counts);
    storage_close(s);
}

/* ---- transactions ------------------------------------------------------- */

Test(storage, abort_rolls_back)
{
    storage *s = openStore(newDir(), 0);
    setStr(s, sl("keep"), sl("old"));
    storage_txn *t = beginW(s);
    OK(storage_string_set(t, sl("keep"), sl("changed")));
    OK(storage_string_set(t, sl("new"), sl("x")));
    hset(t, "h", "f", "v", true);
    OK(storage_meta_set(t, "m", 5));
    OK(storage_key_delete(t, sl("keep"), NULL));
    storage_abort(t);
    storage_abort(NULL);

    expectStr(s, sl("keep"), sl("old"));
    t = beginR(s);
    expectAbsentIn(t, sl("new"));
    expectAbsentIn(t, sl("h"));
    storage_abort(t);
    cr_assert_eq(metaGet(s, "m"), 0);
    cr_assert_eq(keyCount(s), 1);
    cr_assert_eq(fieldEntries(s), 0);
    storage_close(s);
}

Test(storage, one_writer_at_a_time)
{
    storage *s = openStore(newDir(), 0);
    storage_txn *w = beginW(s), *w2 = (storage_txn *)1;
    cr_assert_eq(storage_begin(s, true, &w2), STORAGE_EBUSY);
    cr_assert_null(w2);
    /* Readers are fine meanwhile, several in one thread (MDB_NOTLS). */
    storage_txn *r1 = beginR(s), *r2 = beginR(s);
    OK(storage_string_set(w, sl("k"), sl("v")));
    void *buf;
    size_t len;
    dumpOf(s, &buf, &len);
    cr_assert_eq(storage_load_dump(s, buf, len), STORAGE_EBUSY);
    OK(storage_commit(w));
    storage_abort(r1);
    storage_abort(r2);
    w = beginW(s);
    storage_abort(w);
    OK(storage_load_dump(s, buf, len)); /* the empty state, from before */
    cr_assert_eq(keyCount(s), 0);
    free(buf);
    storage_close(s);
}

typedef struct threadRead {
    storage_txn *t;
    int rc;
    bool ok;
} threadRead;

static void *readInThread(void *arg)
{
    threadRead *tr = arg;
    storage_slice v;
    bool found = false;
    tr->rc = storage_string_get(tr->t, sl("k"), &v, &found);
    tr->ok = found && sliceIs(v, sl("v1"));
    return NULL;
}

Test(storage, read_txn_moves_between_threads)
{
    storage *s = openStore(newDir(), 0);
    setStr(s, sl("k"), sl("v1"));
    threadRead tr = {.t = beginR(s)};
    setStr(s, sl("k"), sl("v2")); /* the reader keeps its snapshot */
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, readInThread, &tr), 0);
    cr_assert_eq(pthread_join(th, NULL), 0);
    cr_assert_eq(tr.rc, STORAGE_OK);
    cr_assert(tr.ok);
    OK(storage_commit(tr.t));
    expectStr(s, sl("k"), sl("v2"));
    storage_close(s);
}

/* ---- dumps -------------------------------------------------------------- */

static void fillSample(storage *s)
{
    storage_txn *t = beginW(s);
    char name[32];
    for (size_t i = 0; i < 300; i++) {
        keyName(name, sizeof name, i);
        if (i % 5 == 0) {
            OK(storage_hash_set(t, sl(name), sl("f1"), sl(name), NULL));
            OK(storage_hash_set(t, sl(name), sl("f2"), bin("\0\1", 2), NULL));
        } else {
            OK(storage_string_set(t, sl(name), sl(name)));
        }
    }
    OK(storage_meta_set(t, STORAGE_META_APPLIED_INDEX, 1234));
    OK(storage_meta_set(t, "term", 7));
    OK(storage_commit(t));
}

typedef struct keyList {
    char names[400][32];
    storage_type types[400];
    size_t n;
} keyList;

static int listKey(void *arg, storage_slice key, storage_type type)
{
    keyList *kl = arg;
    cr_assert_lt(kl->n, 400u);
    cr_assert_lt(key.len, 32u);
    memcpy(kl->names[kl->n], key.data, key.len);
    kl->names[kl->n][key.len] = 0;
    kl->types[kl->n++] = type;
    return 0;
}

static void listKeys(storage *s, keyList *kl)
{
    kl->n = 0;
    storage_txn *t = beginR(s);
    uint64_t next;
    OK(storage_key_scan(t, 0, 0, listKey, kl, &next));
    cr_assert_eq(next, 0);
    storage_abort(t);
}

Test(storage, dump_and_load_reproduce_state)
{
    storage *src = openStore(newDir(), 0);
    fillSample(src);
    void *buf;
    size_t len;
    dumpOf(src, &buf, &len);
    cr_assert_eq(memcmp(buf, "GCSDUMP1", 8), 0);
    uint64_t index = 0;
    OK(storage_dump_applied_index(buf, len, &index));
    cr_assert_eq(index, 1234);

    storage *dst = openStore(newDir(), 0);
    setStr(dst, sl("stale"), sl("goes away"));
    OK(storage_load_dump(dst, buf, len));

    keyList *a = malloc(sizeof *a), *b = malloc(sizeof *b);
    cr_assert(a && b);
    listKeys(src, a);
    listKeys(dst, b);
    cr_assert_eq(a->n, 300);
    cr_assert_eq(b->n, a->n);
    for (size_t i = 0; i < a->n; i++) {
        cr_assert_str_eq(a->names[i], b->names[i]);
        cr_assert_eq(a->types[i], b->types[i]);
    }
    storage_txn *t = beginR(dst);
    expectAbsentIn(t, sl("stale"));
    char name[32];
    for (size_t i = 0; i < 300; i++) {
        keyName(name, sizeof name, i);
        if (i % 5 == 0) {
            expectField(t, name, "f1", name);
            cr_assert_eq(hashLen(t, name), 2);
        } else {
            expectStrIn(t, sl(name), sl(name));
        }
    }
    storage_abort(t);
    cr_assert_eq(metaGet(dst, STORAGE_META_APPLIED_INDEX), 1234);
    cr_assert_eq(metaGet(dst, "term"), 7);
    cr_assert_eq(keyCount(dst), 300);

    /* Byte-identical state: its dump equals the source's. */
    void *buf2;
    size_t len2;
    dumpOf(dst, &buf2, &len2);
    cr_assert_eq(len2, len);
    cr_assert_eq(memcmp(buf, buf2, len), 0);

    /* The loaded store keeps working: new hashes do not reuse ids. */
    t = beginW(dst);
    hset(t, "fresh", "f", "v", true);
    OK(storage_commit(t));
    t = beginR(dst);
    expectField(t, "k0", "f1", "k0");
    expectField(t, "k0", "f", NULL);
    cr_assert_eq(hashLen(t, "fresh"), 1);
    storage_abort(t);

    free(a);
    free(b);
    free(buf);
    free(buf2);
    storage_close(src);
    storage_close(dst);
}

Test(storage, damaged_dumps_are_rejected)
{
    storage *src = openStore(newDir(), 0);
    storage_txn *t = beginW(src);
    OK(storage_string_set(t, sl("a"), sl("1")));
    hset(t, "h", "f", "v", true);
    OK(storage_meta_set(t, STORAGE_META_APPLIED_INDEX, 3));
    OK(storage_commit(t));
    void *buf;
    size_t len;
    dumpOf(src, &buf, &len);

    storage *dst = openStore(newDir(), 0);
    fillSample(dst);
    void *before;
    size_t beforeLen;
    dumpOf(dst, &before, &beforeLen);

    uint8_t *bad = malloc(len);
    cr_assert_not_null(bad);
    uint64_t index;
    for (size_t i = 0; i < len; i++) {
        memcpy(bad, buf, len);
        bad[i] ^= 0x10;
        cr_assert_eq(storage_load_dump(dst, bad, len), STORAGE_ECORRUPT,
                     "flip at %zu of %zu", i, len);
        cr_assert_eq(storage_dump_applied_index(bad, len, &index),
                     STORAGE_ECORRUPT);
    }
    for (size_t l = 0; l < len; l++)
        cr_assert_eq(storage_load_dump(dst, buf, l), STORAGE_ECORRUPT,
                     "truncated to %zu", l);
    cr_assert_eq(storage_load_dump(dst, NULL, 0), STORAGE_ECORRUPT);

    void *after;
    size_t afterLen;
    dumpOf(dst, &after, &afterLen);
    cr_assert_eq(afterLen, beforeLen);
    cr_assert_eq(memcmp(before, after, beforeLen), 0, "target changed");

    /* The intact dump still loads. */
    OK(storage_load_dump(dst, buf, len));
    expectStr(dst, sl("a"), sl("1"));
    cr_assert_eq(keyCount(dst), 2);
    free(bad);
    free(buf);
    free(before);
    free(after);
    storage_close(src);
    storage_close(dst);
}

Test(storage, dump_of_empty_store)
{
    storage *src = openStore(newDir(), 0);
    void *buf;
    size_t len;
    dumpOf(src, &buf, &len);
    /* header + four empty table records + trailer */
    cr_assert_eq(len, 24 + (1 + 4 + 8) + (1 + 4 + 8) + (1 + 6 + 8) +
                          (1 + 6 + 8) + 8);
    uint64_t index = 9;
    OK(storage_dump_applied_index(buf, len, &index));
    cr_assert_eq(index, 0);
    cr_assert_eq(dumpTableEntries(buf, len, "meta"), 0);
    cr_assert_eq(dumpTableEntries(buf, len, "keys"), 0);
    cr_assert_eq(dumpTableEntries(buf, len, "tables"), 0);

    storage *dst = openStore(newDir(), 0);
    fillSample(dst);
    OK(storage_load_dump(dst, buf, len));
    cr_assert_eq(keyCount(dst), 0);
    cr_assert_eq(metaGet(dst, STORAGE_META_APPLIED_INDEX), 0);
    cr_assert_eq(fieldEntries(dst), 0);
    free(buf);
    storage_close(src);
    storage_close(dst);
}

Test(storage, dump_in_write_txn_sees_its_changes)
{
    storage *s = openStore(newDir(), 0);
    storage_txn *t = beginW(s);
    OK(storage_string_set(t, sl("k"), sl("v")));
    OK(storage_meta_set(t, STORAGE_META_APPLIED_INDEX, 77));
    void *buf;
    size_t len;
    OK(storage_dump(t, &buf, &len));
    storage_abort(t);
    uint64_t index = 0;
    OK(storage_dump_applied_index(buf, len, &index));
    cr_assert_eq(index, 77);
    cr_assert_eq(dumpTableEntries(buf, len, "keys"), 1);
    OK(storage_load_dump(s, buf, len));
    expectStr(s, sl("k"), sl("v"));
    cr_assert_eq(keyCount(s), 1);
    free(buf);
    storage_close(s);
}

/* ---- damaged or foreign files ------------------------------------------- */

static void writeFile(const char *dir, const char *name, const void *data,
                      size_t len)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(data, 1, len, f), len);
    cr_assert_eq(fclose(f), 0);
}

Test(storage, open_rejects_garbage_file)
{
    const char *dir = newDir();
    size_t n = 64 * 1024;
    uint8_t *junk = malloc(n);
    cr_assert_not_null(junk);
    uint32_t x = 99;
    for (size_t i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        junk[i] = (uint8_t)(x >> 16);
    }
    writeFile(dir, "data.mdb", junk, n);
    storage *s = (storage *)1;
    char err[256] = "";
    int rc = storage_open(dir, NULL, &s, err, sizeof err);
    cr_assert_eq(rc, STORAGE_ECORRUPT, "rc %d (%s)", rc, storage_strerror(rc));
    cr_assert_null(s);
    cr_assert(strstr(err, "not an LMDB file") != NULL, "message: %s", err);

    /* A short file too. */
    writeFile(dir, "data.mdb", "hello", 5);
    rc = storage_open(dir, NULL, &s, err, sizeof err);
    cr_assert_neq(rc, STORAGE_OK);
    cr_assert_null(s);
    cr_assert_neq(err[0], 0);
    free(junk);
}

Test(storage, open_rejects_foreign_lmdb)
{
    const char *dir = newDir();
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    cr_assert_eq(mdb_env_create(&env), 0);
    cr_assert_eq(mdb_env_open(env, dir, 0, 0644), 0);
    cr_assert_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
    cr_assert_eq(mdb_dbi_open(txn, NULL, 0, &dbi), 0);
    MDB_val k = {5, "hello"}, v = {5, "world"};
    cr_assert_eq(mdb_put(txn, dbi, &k, &v, 0), 0);
    cr_assert_eq(mdb_txn_commit(txn), 0);
    mdb_env_close(env);

    storage *s = (storage *)1;
    char err[256] = "";
    int rc = storage_open(dir, NULL, &s, err, sizeof err);
    cr_assert_eq(rc, STORAGE_ECORRUPT);
    cr_assert_null(s);
    cr_assert(strstr(err, "not a gcsd database") != NULL, "message: %s", err);
}

/* ---- a full map --------------------------------------------------------- */

Test(storage, map_full_is_reported_and_recoverable)
{
    const char *dir = newDir();
    storage *s = openStore(dir, 1u << 20);
    setStr(s, sl("keep"), sl("safe"));
    storage_txn *t = beginW(s);
    hset(t, "hkeep", "f", "safe", true);
    OK(storage_commit(t));

    char val[4000], name[32];
    memset(val, 'v', sizeof val);
    t = beginW(s);
    int rc = STORAGE_OK;
    size_t i;
    for (i = 0; i < 10000 && rc == STORAGE_OK; i++) {
        keyName(name, sizeof name, i);
        rc = storage_string_set(t, sl(name), bin(val, sizeof val));
    }
    cr_assert_eq(rc, STORAGE_EMAPFULL, "after %zu writes: %s", i,
                 storage_strerror(rc));
    /* The transaction is spoiled: later calls fail, commit keeps nothing. */
    cr_assert_neq(storage_string_set(t, sl("x"), sl("y")), STORAGE_OK);
    cr_assert_neq(storage_commit(t), STORAGE_OK);

    expectStr(s, sl("keep"), sl("safe"));
    cr_assert_eq(keyCount(s), 2);
    t = beginW(s);
    expectField(t, "hkeep", "f", "safe");
    expectAbsentIn(t, sl("k0"));
    OK(storage_string_set(t, sl("after"), sl("works")));
    OK(storage_commit(t));
    expectStr(s, sl("after"), sl("works"));

    /* One commit per key: everything committed before the failure stays. */
    size_t committed = 0;
    for (i = 0; i < 10000; i++) {
        keyName(name, sizeof name, i);
        t = beginW(s);
        rc = storage_string_set(t, sl(name), bin(val, sizeof val));
        if (rc != STORAGE_OK) {
            storage_abort(t);
            break;
        }
        rc = storage_commit(t);
        if (rc != STORAGE_OK)
            break;
        committed++;
    }
    cr_assert_eq(rc, STORAGE_EMAPFULL);
    cr_assert_gt(committed, 10u);
    cr_assert_eq(keyCount(s), 3 + committed);
    storage_close(s);

    s = openStore(dir, 1u << 20);
    t = beginR(s);
    for (i = 0; i < committed; i++) {
        keyName(name, sizeof name, i);
        expectStrIn(t, sl(name), bin(val, sizeof val));
    }
    expectStrIn(t, sl("keep"), sl("safe"));
    storage_abort(t);
    storage_info info;
    OK(storage_get_info(s, &info));
    cr_assert_eq(info.map_size, 1u << 20);
    storage_close(s);
}

/* Deleted data shows up as reusable bytes below the high-water mark. */
Test(storage, free_bytes_after_deletes)
{
    storage *s = openStore(newDir(), 0);
    uint64_t before;
    cr_assert_eq(storage_free_bytes(s, &before), STORAGE_OK);
    static char big[200000];
    memset(big, 'z', sizeof big);
    for (int i = 0; i < 20; i++) {
        char k[16];
        snprintf(k, sizeof k, "big%d", i);
        setStr(s, sl(k), bin(big, sizeof big));
    }
    storage_info full;
    cr_assert_eq(storage_get_info(s, &full), STORAGE_OK);
    for (int i = 0; i < 20; i++) {
        char k[16];
        snprintf(k, sizeof k, "big%d", i);
        storage_txn *t = beginW(s);
        bool gone;
        cr_assert_eq(storage_key_delete(t, sl(k), &gone), STORAGE_OK);
        cr_assert(gone);
        cr_assert_eq(storage_commit(t), STORAGE_OK);
    }
    uint64_t after;
    cr_assert_eq(storage_free_bytes(s, &after), STORAGE_OK);
    /* 20 values of 200 KB were freed; their overflow pages are reusable. */
    cr_assert_geq(after, before + 20 * sizeof big * 9 / 10);
    storage_info later;
    cr_assert_eq(storage_get_info(s, &later), STORAGE_OK);
    cr_assert_leq(after, later.used_bytes);
    storage_close(s);
}

/* ---- record tables ------------------------------------------------------ */

static void tput(storage_txn *t, unsigned table, storage_slice k,
                 storage_slice v, bool wantCreated)
{
    bool created = !wantCreated;
    OK(storage_table_put(t, table, k, v, &created));
    cr_assert_eq(created, wantCreated);
}

static void expectRecord(storage_txn *t, unsigned table, storage_slice k,
                         storage_slice want)
{
    storage_slice v;
    bool found = false;
    OK(storage_table_get(t, table, k, &v, &found));
    cr_assert(found);
    cr_assert(sliceIs(v, want));
}

static void expectNoRecord(storage_txn *t, unsigned table, storage_slice k)
{
    storage_slice v = sl("x");
    bool found = true;
    OK(storage_table_get(t, table, k, &v, &found));
    cr_assert(!found);
    cr_assert_null(v.data);
    cr_assert_eq(v.len, 0);
}

Test(storage, table_put_get_delete)
{
    storage *s = openStore(newDir(), 0);
    storage_txn *t = beginW(s);
    tput(t, 1, sl("a"), sl("one"), true);
    tput(t, 1, sl("a"), sl("uno"), false);
    tput(t, 2, sl("a"), bin("\0\1\2", 3), true); /* same key, other table */
    tput(t, 1, sl(""), sl("empty key"), true);
    tput(t, 255, bin("\0", 1), sl(""), true);
    OK(storage_commit(t));

    t = beginR(s);
    expectRecord(t, 1, sl("a"), sl("uno"));
    expectRecord(t, 2, sl("a"), bin("\0\1\2", 3));
    expectRecord(t, 1, sl(""), sl("empty key"));
    expectRecord(t, 255, bin("\0", 1), sl(""));
    expectNoRecord(t, 3, sl("a"));
    expectNoRecord(t, 1, sl("b"));
    /* Records are not keys of the Redis keyspace. */
    cr_assert_eq(keyCount(s), 0);
    storage_abort(t);

    t = beginW(s);
    bool gone = false;
    OK(storage_table_delete(t, 1, sl("a"), &gone));
    cr_assert(gone);
    OK(storage_table_delete(t, 1, sl("a"), &gone));
    cr_assert(!gone);
    /* A miss leaves the transaction usable. */
    tput(t, 1, sl("c"), sl("3"), true);
    OK(storage_commit(t));
    t = beginR(s);
    expectNoRecord(t, 1, sl("a"));
    expectRecord(t, 2, sl("a"), bin("\0\1\2", 3));
    expectRecord(t, 1, sl("c"), sl("3"));
    storage_abort(t);
    storage_close(s);
}

Test(storage, table_arguments_are_checked)
{
    storage *s = openStore(newDir(), 0);
    storage_txn *t = beginW(s);
    static char longKey[STORAGE_TABLE_MAX_KEY + 1];
    memset(longKey, 'k', sizeof longKey);
    storage_slice v;
    bool found, created;
    cr_assert_eq(storage_table_put(t, 0, sl("a"), sl("v"), &created),
                 STORAGE_EINVAL);
    cr_assert_eq(storage_table_put(t, 256, sl("a"), sl("v"), &created),
                 STORAGE_EINVAL);
    cr_assert_eq(storage_table_put(t, 1, bin(longKey, sizeof longKey),
                                   sl("v"), &created),
                 STORAGE_EINVAL);
    cr_assert_eq(storage_table_get(t, 1, bin(longKey, sizeof longKey), &v,
                                   &found),
                 STORAGE_EINVAL);
    cr_assert_eq(storage_table_put(t, 1, bin(NULL, 3), sl("v"), &created),
                 STORAGE_EINVAL);
    /* The longest key is fine, and the failures above poisoned nothing. */
    tput(t, 1, bin(longKey, STORAGE_TABLE_MAX_KEY), sl("v"), true);
    OK(storage_commit(t));
    /* Writes need a write transaction. */
    t = beginR(s);
    cr_assert_eq(storage_table_put(t, 1, sl("a"), sl("v"), NULL),
                 STORAGE_EINVAL);
    cr_assert_eq(storage_table_delete(t, 1, sl("a"), NULL), STORAGE_EINVAL);
    expectRecord(t, 1, bin(longKey, STORAGE_TABLE_MAX_KEY), sl("v"));
    storage_abort(t);
    storage_close(s);
}

typedef struct recordList {
    char keys[64][16];
    size_t n;
    size_t stopAfter; /* 0: never */
} recordList;

static int listRecord(void *arg, storage_slice key, storage_slice value)
{
    recordList *rl = arg;
    cr_assert_lt(rl->n, 64u);
    cr_assert_lt(key.len, 16u);
    memcpy(rl->keys[rl->n], key.data, key.len);
    rl->keys[rl->n][key.len] = '\0';
    /* Each test record's value is its key reversed... or just "v". */
    cr_assert(sliceIs(value, sl("v")));
    rl->n++;
    return rl->stopAfter != 0 && rl->n == rl->stopAfter ? 77 : 0;
}

static void scanList(storage_txn *t, unsigned table, const char *prefix,
                     storage_slice from, recordList *rl, int wantRc)
{
    rl->n = 0;
    cr_assert_eq(storage_table_scan(t, table, sl(prefix), from, listRecord,
                                    rl),
                 wantRc);
}

Test(storage, table_scan_orders_and_selects_prefixes)
{
    storage *s = openStore(newDir(), 0);
    storage_txn *t = beginW(s);
    const char *keys[] = {"b", "ab", "a", "abc", "ac", "b0", "", "zz"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        tput(t, 7, sl(keys[i]), sl("v"), true);
    tput(t, 6, sl("a"), sl("v"), true); /* neighbours must not leak in */
    tput(t, 8, sl("a"), sl("v"), true);
    OK(storage_commit(t));

    t = beginR(s);
    recordList rl = {.stopAfter = 0};
    scanList(t, 7, "", sl(""), &rl, 0);
    const char *all[] = {"", "a", "ab", "abc", "ac", "b", "b0", "zz"};
    cr_assert_eq(rl.n, 8);
    for (size_t i = 0; i < 8; i++)
        cr_assert_str_eq(rl.keys[i], all[i]);

    scanList(t, 7, "a", sl(""), &rl, 0);
    cr_assert_eq(rl.n, 4);
    cr_assert_str_eq(rl.keys[0], "a");
    cr_assert_str_eq(rl.keys[3], "ac");

    /* Resume after "ab": from = "ab\0". */
    scanList(t, 7, "a", bin("ab\0", 3), &rl, 0);
    cr_assert_eq(rl.n, 2);
    cr_assert_str_eq(rl.keys[0], "abc");
    cr_assert_str_eq(rl.keys[1], "ac");

    /* @from below the prefix starts at the prefix; above it past the end
     * visits nothing. */
    scanList(t, 7, "b", sl("a"), &rl, 0);
    cr_assert_eq(rl.n, 2);
    cr_assert_str_eq(rl.keys[0], "b");
    scanList(t, 7, "a", sl("b"), &rl, 0);
    cr_assert_eq(rl.n, 0);
    scanList(t, 9, "", sl(""), &rl, 0);
    cr_assert_eq(rl.n, 0);

    /* A callback's non-zero return stops the scan and is returned. */
    rl.stopAfter = 3;
    scanList(t, 7, "", sl(""), &rl, 77);
    cr_assert_eq(rl.n, 3);
    storage_abort(t);
    storage_close(s);
}

Test(storage, table_flush_removes_every_record)
{
    storage *s = openStore(newDir(), 0);
    storage_txn *t = beginW(s);
    tput(t, 1, sl("a"), sl("v"), true);
    tput(t, 200, sl("b"), sl("v"), true);
    OK(storage_string_set(t, sl("key"), sl("kept")));
    OK(storage_meta_set(t, "counter", 5));
    OK(storage_table_flush(t, 1, STORAGE_TABLE_MAX));
    OK(storage_commit(t));
    t = beginR(s);
    expectNoRecord(t, 1, sl("a"));
    expectNoRecord(t, 200, sl("b"));
    expectStrIn(t, sl("key"), sl("kept")); /* the keyspace is not a table */
    storage_abort(t);
    cr_assert_eq(metaGet(s, "counter"), 5);
    storage_close(s);
}

static uint64_t fnv1a64(const uint8_t *p, size_t n)
{
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= UINT64_C(0x100000001b3);
    }
    return h;
}

static void putBe64(uint8_t *p, uint64_t v, size_t n)
{
    for (size_t i = n; i-- > 0; v >>= 8)
        p[i] = (uint8_t)v;
}

/* Rewrite @buf (a dump) as a version-1 dump: without its "tables" section
 * (which must be last) unless @keepTables, version 1, checksum redone. */
static size_t toVersion1(uint8_t *buf, size_t len, bool keepTables)
{
    size_t off = 24, tablesAt = 0;
    while (off < len - 8) {
        size_t nl = buf[off];
        if (nl == 6 && memcmp(buf + off + 1, "tables", 6) == 0)
            tablesAt = off;
        off += 1 + nl;
        uint64_t count = be(buf + off, 8);
        off += 8;
        for (uint64_t i = 0; i < count; i++) {
            off += 4 + be(buf + off, 4);
            off += 8 + be(buf + off, 8);
        }
    }
    cr_assert_neq(tablesAt, 0, "no tables section");
    size_t body = keepTables ? len - 8 : tablesAt;
    putBe64(buf + 8, 1, 4);
    putBe64(buf + body, fnv1a64(buf, body), 8);
    return body + 8;
}

Test(storage, dumps_carry_record_tables)
{
    storage *src = openStore(newDir(), 0);
    fillSample(src);
    storage_txn *t = beginW(src);
    for (int i = 0; i < 50; i++) {
        char k[16];
        snprintf(k, sizeof k, "rec%02d", i);
        tput(t, 1 + (unsigned)(i % 3), sl(k), bin(k, strlen(k) + 1), true);
    }
    OK(storage_commit(t));
    void *buf;
    size_t len;
    dumpOf(src, &buf, &len);
    cr_assert_eq(dumpTableEntries(buf, len, "tables"), 50);
    cr_assert_eq(be((const uint8_t *)buf + 8, 4), 2, "dump format version");

    /* Loading replaces the records too: a stale one disappears. */
    storage *dst = openStore(newDir(), 0);
    t = beginW(dst);
    tput(t, 1, sl("stale"), sl("x"), true);
    OK(storage_commit(t));
    OK(storage_load_dump(dst, buf, len));
    t = beginR(dst);
    expectNoRecord(t, 1, sl("stale"));
    expectRecord(t, 2, sl("rec01"), bin("rec01", 6));
    expectRecord(t, 1, sl("rec48"), bin("rec48", 6));
    storage_abort(t);
    void *again;
    size_t againLen;
    dumpOf(dst, &again, &againLen);
    cr_assert_eq(againLen, len);
    cr_assert(memcmp(again, buf, len) == 0);
    free(again);
    free(buf);
    storage_close(src);
    storage_close(dst);
}

/* Dumps made before record tables existed (version 1) still load and leave
 * the tables empty; a version-1 dump claiming to hold them is damaged. */
Test(storage, version_1_dumps_load)
{
    storage *src = openStore(newDir(), 0);
    fillSample(src);
    void *buf;
    size_t len;
    dumpOf(src, &buf, &len);
    uint8_t *v1 = malloc(len);
    cr_assert_not_null(v1);
    memcpy(v1, buf, len);
    size_t v1Len = toVersion1(v1, len, false);
    cr_assert_lt(v1Len, len);

    storage *dst = openStore(newDir(), 0);
    storage_txn *t = beginW(dst);
    tput(t, 4, sl("old"), sl("x"), true);
    OK(storage_commit(t));
    uint64_t index;
    OK(storage_dump_applied_index(v1, v1Len, &index));
    cr_assert_eq(index, 1234);
    OK(storage_load_dump(dst, v1, v1Len));
    t = beginR(dst);
    expectNoRecord(t, 4, sl("old"));
    storage_abort(t);
    /* Same state as the source: the dumps (now version 2) are equal. */
    void *after;
    size_t afterLen;
    dumpOf(dst, &after, &afterLen);
    cr_assert_eq(afterLen, len);
    cr_assert(memcmp(after, buf, len) == 0);

    memcpy(v1, buf, len);
    size_t badLen = toVersion1(v1, len, true);
    cr_assert_eq(storage_load_dump(dst, v1, badLen), STORAGE_ECORRUPT);
    free(after);
    free(v1);
    free(buf);
    storage_close(src);
    storage_close(dst);
}

Test(storage, table_flush_range, .fini = cleanup)
{
    storage *s = openStore(newDir(), 0);
    storage_txn *t = beginW(s);
    for (unsigned table = 1; table <= 4; table++) {
        for (int i = 0; i < 50; i++) {
            char k[16];
            snprintf(k, sizeof k, "k%02d", i);
            OK(storage_table_put(t, table, sl(k), sl("v"), NULL));
        }
    }
    OK(storage_table_put(t, STORAGE_TABLE_MAX, sl("keep"), sl("me"), NULL));
    OK(storage_commit(t));
    t = beginW(s);
    cr_assert_eq(storage_table_flush(t, 3, 2), STORAGE_EINVAL);
    cr_assert_eq(storage_table_flush(t, 0, 2), STORAGE_EINVAL);
    /* Tables 2..3 go; 1, 4 and the last one stay. */
    OK(storage_table_flush(t, 2, 3));
    OK(storage_commit(t));
    t = beginR(s);
    storage_slice v;
    bool found;
    for (unsigned table = 1; table <= 4; table++) {
        OK(storage_table_get(t, table, sl("k00"), &v, &found));
        cr_assert_eq(found, table == 1 || table == 4, "table %u", table);
        OK(storage_table_get(t, table, sl("k49"), &v, &found));
        cr_assert_eq(found, table == 1 || table == 4, "table %u", table);
    }
    storage_abort(t);
    /* Everything but the last table (FLUSHALL keeps gcsd's own records). */
    t = beginW(s);
    OK(storage_table_flush(t, 1, STORAGE_TABLE_MAX - 1));
    OK(storage_commit(t));
    t = beginR(s);
    OK(storage_table_get(t, 4, sl("k10"), &v, &found));
    cr_assert(!found);
    OK(storage_table_get(t, STORAGE_TABLE_MAX, sl("keep"), &v, &found));
    cr_assert(found && sliceIs(v, sl("me")));
    storage_abort(t);
    storage_close(s);
}

/* One record-table name per revision, big-endian so that they sort. */
static storage_slice revKey(uint8_t buf[8], uint64_t rev)
{
    putBe64(buf, rev, 8);
    return bin(buf, 8);
}

static int countRecord(void *arg, storage_slice key, storage_slice value)
{
    (void)key;
    (void)value;
    (*(size_t *)arg)++;
    return 0;
}

/* The changelog's pattern in one write transaction: appends at one end of a
 * table, trims at the other, lookups of both, with neighbours in the tables
 * around it. A write transaction runs them on one kept cursor, which must
 * follow page splits, merges and flushes. */
Test(storage, table_appends_and_trims_in_one_write_txn, .fini = cleanup)
{
    storage *s = openStore(newDir(), 0);
    storage_txn *t = beginW(s);
    uint8_t kb[8];
    char val[64];
    memset(val, 'v', sizeof val);
    OK(storage_table_put(t, 9, sl("after"), sl("A"), NULL));
    OK(storage_table_put(t, 7, sl("before"), sl("B"), NULL));
    uint64_t oldest = 1, next = 1;
    for (int round = 0; round < 40; round++) {
        /* 100 appends, then trim back to a window of 500. */
        for (int i = 0; i < 100; i++, next++) {
            val[0] = (char)('a' + next % 26);
            tput(t, 8, revKey(kb, next), bin(val, sizeof val), true);
        }
        while (next - oldest > 500) {
            storage_slice v;
            bool found = false, gone = false;
            OK(storage_table_get(t, 8, revKey(kb, oldest), &v, &found));
            cr_assert(found, "revision %" PRIu64, oldest);
            cr_assert_eq(v.len, sizeof val);
            cr_assert_eq(((const char *)v.data)[0],
                         (char)('a' + oldest % 26));
            OK(storage_table_delete(t, 8, revKey(kb, oldest), &gone));
            cr_assert(gone);
            oldest++;
        }
        /* Deleting what is gone changes nothing and poisons nothing. */
        bool gone = true;
        OK(storage_table_delete(t, 8, revKey(kb, oldest - 1), &gone));
        cr_assert(!gone);
        /* A scan with a cursor of its own, between the kept cursor's uses. */
        size_t n = 0;
        OK(storage_table_scan(t, 8, sl(""), sl(""), countRecord, &n));
        cr_assert_eq(n, next - oldest);
        if (round == 19) {
            /* Flush the changelog's neighbours, then all but the last
             * table, mid-transaction: what follows starts afresh. */
            OK(storage_table_flush(t, 9, 9));
            expectRecord(t, 8, revKey(kb, next - 1), bin(val, sizeof val));
            OK(storage_table_flush(t, 1, STORAGE_TABLE_MAX));
            expectNoRecord(t, 8, revKey(kb, next - 1));
            expectNoRecord(t, 7, sl("before"));
            oldest = next;
        }
    }
    expectRecord(t, 8, revKey(kb, next - 1), bin(val, sizeof val));
    expectNoRecord(t, 8, revKey(kb, oldest - 1));
    OK(storage_commit(t));

    t = beginR(s);
    size_t n = 0;
    OK(storage_table_scan(t, 8, sl(""), sl(""), countRecord, &n));
    cr_assert_eq(n, 500);
    for (uint64_t rev = oldest; rev < next; rev++) {
        storage_slice v;
        bool found = false;
        OK(storage_table_get(t, 8, revKey(kb, rev), &v, &found));
        cr_assert(found, "revision %" PRIu64, rev);
        cr_assert_eq(((const char *)v.data)[0], (char)('a' + rev % 26));
    }
    expectNoRecord(t, 9, sl("after"));
    storage_abort(t);
    storage_close(s);
}
