/* storage: gcsd's state in one LMDB environment (see storage.h).
 *
 * On-disk format, version 2. Every replica must lay out its data identically
 * (dumps copy raw LMDB entries between replicas), so everything below is a
 * format fact: change it only together with a format version bump.
 *
 * Integers are big-endian, so LMDB's default memcmp ordering sorts them
 * numerically.
 *
 * Ordering hash h(bytes): FNV-1a 64 (offset basis 0xcbf29ce484222325, prime
 * 0x100000001b3) followed by murmur3's fmix64 finalizer. No seed, so it is the
 * same on every replica and every version.
 *
 * Tables (named LMDB databases):
 *   meta    name bytes (no NUL) -> u64
 *           internal names: "key_count" (keys in the keyspace, so counting
 *           is O(1)), "next_hash_id" (next hash id to hand out; absent = 1),
 *           and STORAGE_META_APPLIED_INDEX, written by the caller.
 *   keys    [u64 namespace = 0][u64 h(name)][u16 seq]
 *             -> [u8 type][u32 name length][name][payload]
 *           type 's': payload = the string value
 *           type 'h': payload = [u64 hash id][u64 field count]
 *   fields  [u64 hash id][u64 h(field)][u16 seq]
 *             -> [u32 field length][field][value]
 *   tables  [u8 table, 1..255][key bytes] -> record bytes
 *           the record tables of storage_table.c, ordered bytewise.
 *           Added in version 2: a version-1 environment gets it, empty, at
 *           open; a version-1 binary refuses a version-2 environment (an
 *           unknown database).
 *
 * The 18-byte keys keep names of any length within LMDB's 511-byte key limit.
 * Names whose hashes collide share [namespace][h] and differ in seq: a lookup
 * walks that group comparing the stored names, an insert takes the seq after
 * the group's largest (or, when that is 0xffff, the first gap).
 *
 * Failed writes: an operation that fails after it has modified anything
 * marks its write transaction failed; every later call on it returns that
 * error and storage_commit aborts it. Failures detected before any
 * modification (STORAGE_EWRONGTYPE, invalid arguments) leave the transaction
 * usable, as a Redis command failing with WRONGTYPE changes nothing.
 *
 * Writes copy their arguments into space LMDB reserves, after LMDB may have
 * moved entries of the same transaction's dirty pages; so an argument must
 * not be a slice this library returned (copy it first).
 */
#include "storage.h"
#include "storage_int.h"

#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Tables in dump order (DB_* in storage_int.h). New tables go at the end. */
static const char *const dbNames[DB_COUNT] = {"meta", "keys", "fields",
                                              "tables"};

#define MAX_DBS 16
#define MAX_VALUE_SIZE 0xffffffffu /* LMDB's limit for one value */

#define SLOT_LEN 18  /* [ns][h][seq] */
#define GROUP_LEN 16 /* [ns][h]: what colliding names share */
#define KEYSPACE_NS 0
#define TYPE_STRING 's'
#define TYPE_HASH 'h'
#define HASH_PAYLOAD_LEN 16

#define META_KEY_COUNT "key_count"
#define META_NEXT_HASH_ID "next_hash_id"

/* Dump: header, one record per table, trailer. Version 2 added the
 * "tables" database; a version-1 dump (which cannot hold it) still loads. */
#define DUMP_MAGIC "GCSDUMP1"
#define DUMP_MAGIC_LEN 8
#define DUMP_VERSION 2u
#define DUMP_VERSION_NO_TABLES 1u
#define DUMP_HEADER_LEN 24 /* magic, u32 version, u32 reserved, u64 index */
#define DUMP_TRAILER_LEN 8 /* u64 FNV-1a-64 of everything before it */

#define FNV_OFFSET UINT64_C(0xcbf29ce484222325)
#define FNV_PRIME UINT64_C(0x100000001b3)

/* ---- small helpers ------------------------------------------------------ */

static void putBe(uint8_t *p, uint64_t v, size_t n)
{
    for (size_t i = n; i-- > 0;) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

static uint64_t getBe(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

/* memcpy that tolerates an empty source given as NULL. */
static void copyBytes(uint8_t *dst, storage_slice src)
{
    if (src.len > 0)
        memcpy(dst, src.data, src.len);
}

static bool sliceValid(storage_slice sl)
{
    return sl.data != NULL || sl.len == 0;
}

static bool sliceEq(storage_slice sl, const uint8_t *p, size_t len)
{
    return sl.len == len && (len == 0 || memcmp(sl.data, p, len) == 0);
}

static uint64_t fnv1a(uint64_t h, const void *data, size_t len)
{
    const uint8_t *p = data;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= FNV_PRIME;
    }
    return h;
}

uint64_t storage__default_hash(const void *data, size_t len)
{
    uint64_t h = fnv1a(FNV_OFFSET, data, len);
    /* FNV alone mixes its last bytes poorly into the high bits, which decide
     * the order; fmix64 spreads them. */
    h ^= h >> 33;
    h *= UINT64_C(0xff51afd7ed558ccd);
    h ^= h >> 33;
    h *= UINT64_C(0xc4ceb9fe1a85ec53);
    h ^= h >> 33;
    return h;
}

void storage__set_hash_for_tests(storage *s, storage_hash_fn fn)
{
    s->hash = fn ? fn : storage__default_hash;
}

static int fromMdb(int rc)
{
    switch (rc) {
    case MDB_SUCCESS:
        return STORAGE_OK;
    case MDB_MAP_FULL:
        return STORAGE_EMAPFULL;
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_INVALID:
    case MDB_VERSION_MISMATCH:
    case MDB_INCOMPATIBLE:
        return STORAGE_ECORRUPT;
    case ENOMEM:
        return STORAGE_ENOMEM;
    case ENOSPC:
    case EDQUOT:
        return STORAGE_ENOSPC;
    case MDB_READERS_FULL:
        return STORAGE_EBUSY;
    case EINVAL:
    case MDB_BAD_TXN:
    case MDB_BAD_VALSIZE:
        return STORAGE_EINVAL;
    default:
        return STORAGE_EIO;
    }
}

const char *storage_strerror(int code)
{
    switch (code) {
    case STORAGE_OK:
        return "ok";
#define STORAGE_ERROR_CASE(name, value, text) \
    case name:                                \
        return text;
        STORAGE_ERRORS(STORAGE_ERROR_CASE)
#undef STORAGE_ERROR_CASE
    default:
        return "unknown error";
    }
}

__attribute__((format(printf, 3, 4))) static void
setError(char *buf, size_t len, const char *fmt, ...)
{
    if (buf == NULL || len == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, len, fmt, ap);
    va_end(ap);
}

/* Can @t run an operation (a modifying one if @write)? */
static int usable(storage_txn *t, bool write)
{
    if (t == NULL)
        return STORAGE_EINVAL;
    if (t->failed)
        return t->failed;
    if (write && !t->write)
        return STORAGE_EINVAL;
    t->touched = false;
    return STORAGE_OK;
}

/* End a modifying operation: a failure after a modification poisons @t. */
static int settle(storage_txn *t, int rc)
{
    if (rc != STORAGE_OK && t->touched)
        t->failed = rc;
    t->touched = false;
    return rc;
}

int storage__from_mdb(int rc)
{
    return fromMdb(rc);
}

int storage__usable(storage_txn *t, bool write)
{
    return usable(t, write);
}

int storage__settle(storage_txn *t, int rc)
{
    return settle(t, rc);
}

/* ---- meta --------------------------------------------------------------- */

static int metaGet(storage_txn *t, const char *name, uint64_t *value)
{
    MDB_val k = {strlen(name), (void *)name}, v;
    int rc = mdb_get(t->txn, t->s->dbi[DB_META], &k, &v);
    if (rc == MDB_NOTFOUND) {
        *value = 0;
        return STORAGE_OK;
    }
    if (rc)
        return fromMdb(rc);
    if (v.mv_size != 8)
        return STORAGE_ECORRUPT;
    *value = getBe(v.mv_data, 8);
    return STORAGE_OK;
}

static int metaPut(storage_txn *t, const char *name, uint64_t value)
{
    uint8_t buf[8];
    putBe(buf, value, 8);
    MDB_val k = {strlen(name), (void *)name}, v = {8, buf};
    t->touched = true;
    return fromMdb(mdb_put(t->txn, t->s->dbi[DB_META], &k, &v, 0));
}

static int metaAdd(storage_txn *t, const char *name, int delta)
{
    uint64_t v;
    int rc = metaGet(t, name, &v);
    if (rc)
        return rc;
    return metaPut(t, name, v + (uint64_t)(int64_t)delta);
}

static bool metaNameValid(const storage *s, const char *name)
{
    if (name == NULL)
        return false;
    size_t len = strlen(name);
    return len > 0 && len <= (size_t)mdb_env_get_maxkeysize(s->env);
}

/* ---- slots: one name in one namespace of keys or fields ----------------- */

typedef struct slot {
    uint8_t key[SLOT_LEN]; /* LMDB key: the entry's, or where a new one goes */
    bool found;
    const uint8_t *val; /* stored value (in the map) when found */
    size_t valLen;
    const uint8_t *payload; /* after the name */
    size_t payloadLen;
} slot;

int storage__cursor(storage_txn *t, int db, MDB_cursor **out)
{
    if (t->write && t->cursor[db] != NULL) {
        *out = t->cursor[db];
        return STORAGE_OK;
    }
    int rc = mdb_cursor_open(t->txn, t->s->dbi[db], out);
    if (rc)
        return fromMdb(rc);
    if (t->write)
        t->cursor[db] = *out;
    return STORAGE_OK;
}

void storage__cursor_done(storage_txn *t, MDB_cursor *cur)
{
    if (!t->write)
        mdb_cursor_close(cur);
}

/* Find @name in namespace @ns of table @db, whose values start with
 * @typeLen type bytes then [u32 length][name]. When absent, out->key is the
 * free slot an insert would use. Never modifies anything. */
static int findSlot(storage_txn *t, int db, uint64_t ns, storage_slice name,
                    size_t typeLen, slot *out)
{
    uint8_t prefix[SLOT_LEN];
    putBe(prefix, ns, 8);
    putBe(prefix + 8, t->s->hash(name.data, name.len), 8);
    putBe(prefix + GROUP_LEN, 0, 2);
    memset(out, 0, sizeof *out);

    MDB_cursor *cur;
    int rc = storage__cursor(t, db, &cur);
    if (rc)
        return rc;

    long maxSeq = -1;   /* largest seq in the group */
    uint32_t next = 0;  /* seq expected if there were no gap */
    long gap = -1;      /* first unused seq below maxSeq */
    MDB_val k = {SLOT_LEN, prefix}, v;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size != SLOT_LEN) {
            rc = MDB_CORRUPTED;
            break;
        }
        if (memcmp(k.mv_data, prefix, GROUP_LEN) != 0)
            break;
        const uint8_t *val = v.mv_data;
        if (v.mv_size < typeLen + 4 ||
            getBe(val + typeLen, 4) > v.mv_size - typeLen - 4) {
            rc = MDB_CORRUPTED;
            break;
        }
        size_t nameLen = (size_t)getBe(val + typeLen, 4);
        if (sliceEq(name, val + typeLen + 4, nameLen)) {
            memcpy(out->key, k.mv_data, SLOT_LEN);
            out->found = true;
            out->val = val;
            out->valLen = v.mv_size;
            out->payload = val + typeLen + 4 + nameLen;
            out->payloadLen = v.mv_size - typeLen - 4 - nameLen;
            storage__cursor_done(t, cur);
            return STORAGE_OK;
        }
        const uint8_t *key = k.mv_data;
        uint32_t seq = (uint32_t)getBe(key + GROUP_LEN, 2);
        if (gap < 0 && seq != next)
            gap = next;
        next = seq + 1;
        maxSeq = seq;
    }
    storage__cursor_done(t, cur);
    if (rc != 0 && rc != MDB_NOTFOUND)
        return fromMdb(rc);

    memcpy(out->key, prefix, SLOT_LEN);
    if (maxSeq < 0xffff)
        putBe(out->key + GROUP_LEN, (uint64_t)(maxSeq + 1), 2);
    else if (gap >= 0)
        putBe(out->key + GROUP_LEN, (uint64_t)gap, 2);
    else
        return STORAGE_EINVAL; /* 65536 names share one hash */
    return STORAGE_OK;
}

/* Write an entry: [type if nonzero][u32 name length][name][payload]. */
static int putSlot(storage_txn *t, int db, const uint8_t key[SLOT_LEN],
                   uint8_t type, storage_slice name, storage_slice payload)
{
    uint8_t keyCopy[SLOT_LEN];
    memcpy(keyCopy, key, SLOT_LEN);
    size_t typeLen = type ? 1 : 0;
    MDB_val k = {SLOT_LEN, keyCopy};
    MDB_val v = {typeLen + 4 + name.len + payload.len, NULL};
    t->touched = true;
    MDB_cursor *cur;
    int rc = storage__cursor(t, db, &cur);
    if (rc)
        return rc;
    /* Reserve, then fill in place: saves assembling the value elsewhere. */
    rc = mdb_cursor_put(cur, &k, &v, MDB_RESERVE);
    if (rc)
        return fromMdb(rc);
    uint8_t *p = v.mv_data;
    if (type)
        *p++ = type;
    putBe(p, name.len, 4);
    p += 4;
    copyBytes(p, name);
    copyBytes(p + name.len, payload);
    return STORAGE_OK;
}

static int delSlot(storage_txn *t, int db, const uint8_t key[SLOT_LEN])
{
    uint8_t keyCopy[SLOT_LEN];
    memcpy(keyCopy, key, SLOT_LEN);
    MDB_val k = {SLOT_LEN, keyCopy};
    t->touched = true;
    return fromMdb(mdb_del(t->txn, t->s->dbi[db], &k, NULL));
}

/* Total size of an entry, checked against LMDB's value limit. */
static bool entryFits(size_t typeLen, storage_slice name, storage_slice payload)
{
    return name.len <= MAX_VALUE_SIZE &&
           payload.len <= MAX_VALUE_SIZE - typeLen - 4 - name.len;
}

/* ---- keys --------------------------------------------------------------- */

typedef struct keyEntry {
    slot sl;
    uint8_t type; /* TYPE_STRING or TYPE_HASH when found */
    uint64_t hashId;
    uint64_t fieldCount;
} keyEntry;

static int parseKeyValue(uint8_t type, size_t payloadLen)
{
    if (type == TYPE_STRING)
        return STORAGE_OK;
    if (type == TYPE_HASH && payloadLen == HASH_PAYLOAD_LEN)
        return STORAGE_OK;
    return STORAGE_ECORRUPT;
}

static int findKey(storage_txn *t, storage_slice name, keyEntry *e)
{
    memset(e, 0, sizeof *e);
    int rc = findSlot(t, DB_KEYS, KEYSPACE_NS, name, 1, &e->sl);
    if (rc || !e->sl.found)
        return rc;
    e->type = e->sl.val[0];
    rc = parseKeyValue(e->type, e->sl.payloadLen);
    if (rc)
        return rc;
    if (e->type == TYPE_HASH) {
        e->hashId = getBe(e->sl.payload, 8);
        e->fieldCount = getBe(e->sl.payload + 8, 8);
    }
    return STORAGE_OK;
}

static int putHashKey(storage_txn *t, const uint8_t key[SLOT_LEN],
                      storage_slice name, uint64_t id, uint64_t count)
{
    uint8_t payload[HASH_PAYLOAD_LEN];
    putBe(payload, id, 8);
    putBe(payload + 8, count, 8);
    return putSlot(t, DB_KEYS, key, TYPE_HASH, name,
                   (storage_slice){payload, sizeof payload});
}

/* Delete every field of hash @id. */
static int deleteFields(storage_txn *t, uint64_t id)
{
    MDB_cursor *cur;
    int rc = storage__cursor(t, DB_FIELDS, &cur);
    if (rc)
        return rc;
    uint8_t start[SLOT_LEN] = {0};
    putBe(start, id, 8);
    for (;;) {
        /* Seek afresh after each delete rather than rely on where LMDB
         * leaves a cursor after mdb_cursor_del. */
        MDB_val k = {SLOT_LEN, start}, v;
        rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
        if (rc == MDB_NOTFOUND) {
            rc = 0;
            break;
        }
        if (rc)
            break;
        if (k.mv_size < 8 || memcmp(k.mv_data, start, 8) != 0)
            break;
        t->touched = true;
        rc = mdb_cursor_del(cur, 0);
        if (rc)
            break;
    }
    storage__cursor_done(t, cur);
    return fromMdb(rc);
}

static storage_type typeOf(uint8_t type)
{
    return type == TYPE_HASH ? STORAGE_TYPE_HASH : STORAGE_TYPE_STRING;
}

/* ---- open, close, info -------------------------------------------------- */

/* Refuse an LMDB environment that holds tables we do not know. */
static int checkForeign(MDB_txn *txn, char *errbuf, size_t errlen)
{
    MDB_dbi mainDbi;
    int rc = mdb_dbi_open(txn, NULL, 0, &mainDbi);
    if (rc) {
        setError(errbuf, errlen, "cannot open main table: %s",
                 mdb_strerror(rc));
        return fromMdb(rc);
    }
    MDB_cursor *cur;
    rc = mdb_cursor_open(txn, mainDbi, &cur);
    if (rc) {
        setError(errbuf, errlen, "cannot read main table: %s",
                 mdb_strerror(rc));
        return fromMdb(rc);
    }
    MDB_val k, v;
    int ret = STORAGE_OK;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        bool known = false;
        for (int i = 0; i < DB_COUNT && !known; i++)
            known = k.mv_size == strlen(dbNames[i]) &&
                    memcmp(k.mv_data, dbNames[i], k.mv_size) == 0;
        if (!known) {
            setError(errbuf, errlen,
                     "not a gcsd database: unknown table (%zu-byte name)",
                     k.mv_size);
            ret = STORAGE_ECORRUPT;
            break;
        }
    }
    if (ret == STORAGE_OK && rc != MDB_NOTFOUND) {
        setError(errbuf, errlen, "cannot read main table: %s",
                 mdb_strerror(rc));
        ret = fromMdb(rc);
    }
    mdb_cursor_close(cur);
    return ret;
}

static int openTables(storage *s, char *errbuf, size_t errlen)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(s->env, NULL, 0, &txn);
    if (rc) {
        setError(errbuf, errlen, "cannot begin transaction: %s",
                 mdb_strerror(rc));
        return fromMdb(rc);
    }
    int ret = checkForeign(txn, errbuf, errlen);
    for (int i = 0; i < DB_COUNT && ret == STORAGE_OK; i++) {
        rc = mdb_dbi_open(txn, dbNames[i], MDB_CREATE, &s->dbi[i]);
        if (rc) {
            setError(errbuf, errlen, "cannot open table \"%s\": %s",
                     dbNames[i], mdb_strerror(rc));
            ret = fromMdb(rc);
        }
    }
    if (ret) {
        mdb_txn_abort(txn);
        return ret;
    }
    rc = mdb_txn_commit(txn);
    if (rc) {
        setError(errbuf, errlen, "cannot create tables: %s",
                 mdb_strerror(rc));
        return fromMdb(rc);
    }
    return STORAGE_OK;
}

/* ---- allocation ahead of LMDB (MDB_WRITEMAP) ----------------------------- */

/* Every write transaction may grow the database by this much without a
 * storage_reserve; the file grows in steps of it. */
#define RESERVE_MARGIN ((uint64_t)8 << 20)

/* Can @dir's filesystem allocate file space ahead (fallocate)? Probed with
 * a scratch file, before LMDB makes data.mdb sparse. */
static bool canPreallocate(const char *dir)
{
    char path[4096];
    if (snprintf(path, sizeof path, "%s/.fallocate-probe", dir) >=
        (int)sizeof path)
        return false;
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return false;
    /* ENOSPC counts as support: the disk is full, not the feature absent. */
    bool ok = fallocate(fd, 0, 0, 4096) == 0 || errno == ENOSPC;
    close(fd);
    unlink(path);
    return ok;
}

static int reserve(storage *s, uint64_t bytes)
{
    if (!s->writemap)
        return STORAGE_OK;
    MDB_envinfo ei;
    int rc = mdb_env_info(s->env, &ei);
    if (rc)
        return fromMdb(rc);
    uint64_t used = ((uint64_t)ei.me_last_pgno + 1) * s->page_size;
    uint64_t want = used + bytes + RESERVE_MARGIN;
    if (want < used || want > ei.me_mapsize) /* overflow, or past the map */
        want = ei.me_mapsize;
    if (want <= s->allocated)
        return STORAGE_OK;
    /* Whole steps, so that fallocate runs once per RESERVE_MARGIN of growth;
     * mode 0 only fills holes, so re-covering allocated ranges is cheap. */
    uint64_t to = (want + RESERVE_MARGIN - 1) / RESERVE_MARGIN * RESERVE_MARGIN;
    if (to > ei.me_mapsize)
        to = ei.me_mapsize;
    if (fallocate(s->fd, 0, (off_t)s->allocated,
                  (off_t)(to - s->allocated)) != 0)
        return errno == ENOSPC || errno == EDQUOT ? STORAGE_ENOSPC
                                                  : STORAGE_EIO;
    s->allocated = to;
    return STORAGE_OK;
}

int storage_reserve(storage *s, uint64_t bytes)
{
    if (s == NULL)
        return STORAGE_EINVAL;
    return reserve(s, bytes);
}

int storage_open(const char *dir, const storage_options *opts, storage **out,
                 char *errbuf, size_t errlen)
{
    if (out)
        *out = NULL;
    if (dir == NULL || out == NULL) {
        setError(errbuf, errlen, "storage_open: missing argument");
        return STORAGE_EINVAL;
    }
    size_t mapSize = opts && opts->map_size ? opts->map_size
                                            : (size_t)32 * 1024 * 1024 * 1024;

    int ret = STORAGE_ENOMEM;
    storage *s = calloc(1, sizeof *s);
    if (s == NULL)
        goto fail_msg;
    s->hash = storage__default_hash;
    atomic_init(&s->writing, false);
    size_t dirLen = strlen(dir);
    s->dataPath = malloc(dirLen + sizeof "/data.mdb");
    if (s->dataPath == NULL)
        goto fail_msg;
    memcpy(s->dataPath, dir, dirLen);
    memcpy(s->dataPath + dirLen, "/data.mdb", sizeof "/data.mdb");

    int rc = mdb_env_create(&s->env);
    if (rc) {
        setError(errbuf, errlen, "mdb_env_create: %s", mdb_strerror(rc));
        ret = fromMdb(rc);
        goto fail_free;
    }
    if ((rc = mdb_env_set_mapsize(s->env, mapSize)) != 0 ||
        (rc = mdb_env_set_maxdbs(s->env, MAX_DBS)) != 0) {
        setError(errbuf, errlen, "cannot configure LMDB: %s",
                 mdb_strerror(rc));
        ret = fromMdb(rc);
        goto fail_env;
    }
    /* MDB_WRITEMAP saves copying every dirty page through pwrite at
     * commit (measured: +20-35% writes, +45-60% pipelined writes; docs/
     * benchmarks.md), safely only where the file can be allocated ahead. */
    s->writemap = canPreallocate(dir);
    rc = mdb_env_open(s->env, dir,
                      MDB_NOSYNC | MDB_NOTLS |
                          (s->writemap ? MDB_WRITEMAP : 0),
                      0644);
    if (rc) {
        setError(errbuf, errlen, "cannot open database in %s: %s", dir,
                 mdb_strerror(rc));
        ret = fromMdb(rc);
        goto fail_env;
    }
    MDB_stat st;
    if ((rc = mdb_env_get_fd(s->env, &s->fd)) != 0 ||
        (rc = mdb_env_stat(s->env, &st)) != 0) {
        setError(errbuf, errlen, "cannot read database in %s: %s", dir,
                 mdb_strerror(rc));
        ret = fromMdb(rc);
        goto fail_env;
    }
    s->page_size = st.ms_psize;
    /* A full disk must not stop the member from starting (it serves reads
     * and reports the failure); the first write transaction tries again. */
    (void)reserve(s, 0);
    ret = openTables(s, errbuf, errlen);
    if (ret)
        goto fail_env;
    *out = s;
    return STORAGE_OK;

fail_env:
    mdb_env_close(s->env);
    goto fail_free;
fail_msg:
    setError(errbuf, errlen, "storage_open: out of memory");
fail_free:
    if (s)
        free(s->dataPath);
    free(s);
    return ret;
}

void storage_close(storage *s)
{
    if (s == NULL)
        return;
    mdb_env_close(s->env);
    free(s->dataPath);
    free(s);
}

/* ---- timings ------------------------------------------------------------ */

const uint64_t storage_timing_bounds_us[STORAGE_TIMING_BUCKETS] = {
    100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000,
    1000000};

static uint64_t nowUs(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void timingAdd(storage_atomic_timing *t, uint64_t us)
{
    size_t i = 0;
    while (i < STORAGE_TIMING_BUCKETS && us > storage_timing_bounds_us[i])
        i++;
    atomic_fetch_add_explicit(&t->counts[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&t->sum_us, us, memory_order_relaxed);
    atomic_fetch_add_explicit(&t->n, 1, memory_order_relaxed);
}

static void timingRead(storage_atomic_timing *t, storage_timing *out)
{
    if (out == NULL)
        return;
    for (size_t i = 0; i <= STORAGE_TIMING_BUCKETS; i++)
        out->counts[i] =
            atomic_load_explicit(&t->counts[i], memory_order_relaxed);
    out->sum_us = atomic_load_explicit(&t->sum_us, memory_order_relaxed);
    out->n = atomic_load_explicit(&t->n, memory_order_relaxed);
}

void storage_get_timings(storage *s, storage_timing *commit,
                         storage_timing *sync)
{
    if (s == NULL)
        return;
    timingRead(&s->commit_timing, commit);
    timingRead(&s->sync_timing, sync);
}

int storage_sync(storage *s)
{
    if (s == NULL)
        return STORAGE_EINVAL;
    uint64_t t0 = nowUs();
    int rc = fromMdb(mdb_env_sync(s->env, 1));
    timingAdd(&s->sync_timing, nowUs() - t0);
    return rc;
}

int storage_get_info(storage *s, storage_info *info)
{
    if (s == NULL || info == NULL)
        return STORAGE_EINVAL;
    MDB_envinfo ei;
    MDB_stat st;
    int rc = mdb_env_info(s->env, &ei);
    if (rc == 0)
        rc = mdb_env_stat(s->env, &st);
    if (rc)
        return fromMdb(rc);
    struct stat fs;
    if (stat(s->dataPath, &fs) != 0)
        return STORAGE_EIO;
    info->map_size = ei.me_mapsize;
    info->used_bytes = ((uint64_t)ei.me_last_pgno + 1) * st.ms_psize;
    info->file_bytes = (uint64_t)fs.st_blocks * 512;
    return STORAGE_OK;
}

int storage_free_bytes(storage *s, uint64_t *bytes)
{
    if (s == NULL || bytes == NULL)
        return STORAGE_EINVAL;
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_stat st;
    int rc = mdb_env_stat(s->env, &st);
    if (rc == 0)
        rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
    if (rc)
        return fromMdb(rc);
    /* The freelist is LMDB's database 0; each record is an ID list whose
     * first word is its length (as mdb_stat -f reads it). */
    uint64_t pages = 0;
    rc = mdb_cursor_open(txn, 0, &cur);
    if (rc == 0) {
        MDB_val k, v;
        while ((rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0) {
            if (v.mv_size >= sizeof(size_t))
                pages += *(const size_t *)v.mv_data;
        }
        mdb_cursor_close(cur);
        if (rc == MDB_NOTFOUND)
            rc = 0;
    }
    mdb_txn_abort(txn);
    if (rc)
        return fromMdb(rc);
    *bytes = pages * st.ms_psize;
    return STORAGE_OK;
}

/* ---- transactions ------------------------------------------------------- */

int storage_begin(storage *s, bool write, storage_txn **out)
{
    if (out)
        *out = NULL;
    if (s == NULL || out == NULL)
        return STORAGE_EINVAL;
    /* A second write transaction in the same thread would deadlock on
     * LMDB's writer mutex; refuse it instead. */
    if (write && atomic_exchange(&s->writing, true))
        return STORAGE_EBUSY;
    storage_txn *t = calloc(1, sizeof *t);
    if (t == NULL) {
        if (write)
            atomic_store(&s->writing, false);
        return STORAGE_ENOMEM;
    }
    int rc = write ? reserve(s, 0) : STORAGE_OK;
    if (rc == STORAGE_OK)
        rc = fromMdb(
            mdb_txn_begin(s->env, NULL, write ? 0 : MDB_RDONLY, &t->txn));
    if (rc) {
        if (write)
            atomic_store(&s->writing, false);
        free(t);
        return rc;
    }
    t->s = s;
    t->write = write;
    *out = t;
    return STORAGE_OK;
}

static void freeTxn(storage_txn *t)
{
    if (t->write)
        atomic_store(&t->s->writing, false);
    free(t);
}

int storage_commit(storage_txn *t)
{
    if (t == NULL)
        return STORAGE_EINVAL;
    int ret;
    if (t->failed) {
        mdb_txn_abort(t->txn);
        ret = t->failed;
    } else if (t->write) {
        uint64_t t0 = nowUs();
        ret = fromMdb(mdb_txn_commit(t->txn));
        timingAdd(&t->s->commit_timing, nowUs() - t0);
    } else {
        ret = fromMdb(mdb_txn_commit(t->txn));
    }
    freeTxn(t);
    return ret;
}

void storage_abort(storage_txn *t)
{
    if (t == NULL)
        return;
    mdb_txn_abort(t->txn);
    freeTxn(t);
}

/* ---- meta API ----------------------------------------------------------- */

int storage_meta_get(storage_txn *t, const char *name, uint64_t *value)
{
    int rc = usable(t, false);
    if (rc)
        return rc;
    if (!metaNameValid(t->s, name) || value == NULL)
        return STORAGE_EINVAL;
    return metaGet(t, name, value);
}

int storage_meta_set(storage_txn *t, const char *name, uint64_t value)
{
    int rc = usable(t, true);
    if (rc)
        return rc;
    if (!metaNameValid(t->s, name))
        return STORAGE_EINVAL;
    return settle(t, metaPut(t, name, value));
}

/* ---- keyspace API ------------------------------------------------------- */

int storage_key_type(storage_txn *t, storage_slice key, storage_type *type)
{
    int rc = usable(t, false);
    if (rc)
        return rc;
    if (!sliceValid(key) || type == NULL)
        return STORAGE_EINVAL;
    keyEntry e;
    rc = findKey(t, key, &e);
    if (rc)
        return rc;
    *type = e.sl.found ? typeOf(e.type) : STORAGE_TYPE_NONE;
    return STORAGE_OK;
}

static int keyDelete(storage_txn *t, storage_slice key, bool *deleted)
{
    keyEntry e;
    int rc = findKey(t, key, &e);
    if (rc || !e.sl.found)
        return rc;
    if (e.type == TYPE_HASH && (rc = deleteFields(t, e.hashId)) != 0)
        return rc;
    if ((rc = delSlot(t, DB_KEYS, e.sl.key)) != 0)
        return rc;
    *deleted = true;
    return metaAdd(t, META_KEY_COUNT, -1);
}

int storage_key_delete(storage_txn *t, storage_slice key, bool *deleted)
{
    bool del = false;
    int rc = usable(t, true);
    if (rc == STORAGE_OK && !sliceValid(key))
        rc = STORAGE_EINVAL;
    if (rc == STORAGE_OK)
        rc = settle(t, keyDelete(t, key, &del));
    if (deleted)
        *deleted = rc == STORAGE_OK && del;
    return rc;
}

int storage_key_count(storage_txn *t, uint64_t *count)
{
    int rc = usable(t, false);
    if (rc)
        return rc;
    if (count == NULL)
        return STORAGE_EINVAL;
    return metaGet(t, META_KEY_COUNT, count);
}

int storage_key_flush(storage_txn *t)
{
    int rc = usable(t, true);
    if (rc)
        return rc;
    t->touched = true;
    rc = fromMdb(mdb_drop(t->txn, t->s->dbi[DB_KEYS], 0));
    if (rc == STORAGE_OK)
        rc = fromMdb(mdb_drop(t->txn, t->s->dbi[DB_FIELDS], 0));
    if (rc == STORAGE_OK)
        rc = metaPut(t, META_KEY_COUNT, 0);
    return settle(t, rc);
}

int storage_string_get(storage_txn *t, storage_slice key, storage_slice *value,
                       bool *found)
{
    int rc = usable(t, false);
    if (rc)
        return rc;
    if (!sliceValid(key) || value == NULL || found == NULL)
        return STORAGE_EINVAL;
    *found = false;
    *value = (storage_slice){NULL, 0};
    keyEntry e;
    rc = findKey(t, key, &e);
    if (rc || !e.sl.found)
        return rc;
    if (e.type != TYPE_STRING)
        return STORAGE_EWRONGTYPE;
    *value = (storage_slice){e.sl.payload, e.sl.payloadLen};
    *found = true;
    return STORAGE_OK;
}

static int stringSet(storage_txn *t, storage_slice key, storage_slice value)
{
    keyEntry e;
    int rc = findKey(t, key, &e);
    if (rc)
        return rc;
    if (e.sl.found && e.type == TYPE_HASH &&
        (rc = deleteFields(t, e.hashId)) != 0)
        return rc;
    if ((rc = putSlot(t, DB_KEYS, e.sl.key, TYPE_STRING, key, value)) != 0)
        return rc;
    return e.sl.found ? STORAGE_OK : metaAdd(t, META_KEY_COUNT, 1);
}

int storage_string_set(storage_txn *t, storage_slice key, storage_slice value)
{
    int rc = usable(t, true);
    if (rc)
        return rc;
    if (!sliceValid(key) || !sliceValid(value) || !entryFits(1, key, value))
        return STORAGE_EINVAL;
    return settle(t, stringSet(t, key, value));
}

/* The hash under @key: STORAGE_EWRONGTYPE for a string, e->sl.found false
 * when absent. */
static int findHash(storage_txn *t, storage_slice key, keyEntry *e)
{
    int rc = findKey(t, key, e);
    if (rc == STORAGE_OK && e->sl.found && e->type != TYPE_HASH)
        rc = STORAGE_EWRONGTYPE;
    return rc;
}

int storage_hash_get(storage_txn *t, storage_slice key, storage_slice field,
                     storage_slice *value, bool *found)
{
    int rc = usable(t, false);
    if (rc)
        return rc;
    if (!sliceValid(key) || !sliceValid(field) || value == NULL ||
        found == NULL)
        return STORAGE_EINVAL;
    *found = false;
    *value = (storage_slice){NULL, 0};
    keyEntry e;
    rc = findHash(t, key, &e);
    if (rc || !e.sl.found)
        return rc;
    slot f;
    rc = findSlot(t, DB_FIELDS, e.hashId, field, 0, &f);
    if (rc || !f.found)
        return rc;
    *value = (storage_slice){f.payload, f.payloadLen};
    *found = true;
    return STORAGE_OK;
}

static int hashSet(storage_txn *t, storage_slice key, storage_slice field,
                   storage_slice value, bool *created)
{
    keyEntry e;
    int rc = findHash(t, key, &e);
    if (rc)
        return rc;
    uint64_t id = e.hashId, count = e.fieldCount;
    slot f;
    if (e.sl.found) {
        /* Find the field before writing, so a failure leaves no trace. */
        if ((rc = findSlot(t, DB_FIELDS, id, field, 0, &f)) != 0)
            return rc;
    } else {
        if ((rc = metaGet(t, META_NEXT_HASH_ID, &id)) != 0)
            return rc;
        if (id == 0)
            id = 1;
        if ((rc = metaPut(t, META_NEXT_HASH_ID, id + 1)) != 0)
            return rc;
        if ((rc = findSlot(t, DB_FIELDS, id, field, 0, &f)) != 0)
            return rc;
    }
    if ((rc = putSlot(t, DB_FIELDS, f.key, 0, field, value)) != 0)
        return rc;
    *created = !f.found;
    if (f.found)
        return STORAGE_OK;
    if ((rc = putHashKey(t, e.sl.key, key, id, count + 1)) != 0)
        return rc;
    return e.sl.found ? STORAGE_OK : metaAdd(t, META_KEY_COUNT, 1);
}

int storage_hash_set(storage_txn *t, storage_slice key, storage_slice field,
                     storage_slice value, bool *created)
{
    bool made = false;
    int rc = usable(t, true);
    if (rc == STORAGE_OK &&
        (!sliceValid(key) || !sliceValid(field) || !sliceValid(value) ||
         !entryFits(0, field, value) ||
         !entryFits(1, key, (storage_slice){NULL, HASH_PAYLOAD_LEN})))
        rc = STORAGE_EINVAL;
    if (rc == STORAGE_OK)
        rc = settle(t, hashSet(t, key, field, value, &made));
    if (created)
        *created = rc == STORAGE_OK && made;
    return rc;
}

static int hashDelete(storage_txn *t, storage_slice key, storage_slice field,
                      bool *deleted)
{
    keyEntry e;
    int rc = findHash(t, key, &e);
    if (rc || !e.sl.found)
        return rc;
    slot f;
    rc = findSlot(t, DB_FIELDS, e.hashId, field, 0, &f);
    if (rc || !f.found)
        return rc;
    if ((rc = delSlot(t, DB_FIELDS, f.key)) != 0)
        return rc;
    *deleted = true;
    if (e.fieldCount > 1)
        return putHashKey(t, e.sl.key, key, e.hashId, e.fieldCount - 1);
    if ((rc = delSlot(t, DB_KEYS, e.sl.key)) != 0)
        return rc;
    return metaAdd(t, META_KEY_COUNT, -1);
}

int storage_hash_delete(storage_txn *t, storage_slice key, storage_slice field,
                        bool *deleted)
{
    bool del = false;
    int rc = usable(t, true);
    if (rc == STORAGE_OK && (!sliceValid(key) || !sliceValid(field)))
        rc = STORAGE_EINVAL;
    if (rc == STORAGE_OK)
        rc = settle(t, hashDelete(t, key, field, &del));
    if (deleted)
        *deleted = rc == STORAGE_OK && del;
    return rc;
}

int storage_hash_len(storage_txn *t, storage_slice key, uint64_t *n)
{
    int rc = usable(t, false);
    if (rc)
        return rc;
    if (!sliceValid(key) || n == NULL)
        return STORAGE_EINVAL;
    keyEntry e;
    rc = findHash(t, key, &e);
    if (rc)
        return rc;
    *n = e.sl.found ? e.fieldCount : 0;
    return STORAGE_OK;
}

/* ---- iteration ---------------------------------------------------------- */

typedef int (*visitFn)(void *ctx, const MDB_val *k, const MDB_val *v);

/* Visit namespace @ns of table @db from hash @cursor on, as storage.h's
 * iteration contract says. */
static int scanRange(storage_txn *t, int db, uint64_t ns, uint64_t cursor,
                     size_t count, visitFn visit, void *ctx, uint64_t *next)
{
    uint8_t start[SLOT_LEN];
    putBe(start, ns, 8);
    putBe(start + 8, cursor, 8);
    putBe(start + GROUP_LEN, 0, 2);

    MDB_cursor *cur;
    int rc = mdb_cursor_open(t->txn, t->s->dbi[db], &cur);
    if (rc)
        return fromMdb(rc);
    size_t visited = 0;
    uint64_t lastHash = 0, resume = 0;
    int ret = STORAGE_OK;
    MDB_val k = {SLOT_LEN, start}, v;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size != SLOT_LEN) {
            ret = STORAGE_ECORRUPT;
            break;
        }
        if (memcmp(k.mv_data, start, 8) != 0)
            break; /* past the namespace */
        uint64_t h = getBe((const uint8_t *)k.mv_data + 8, 8);
        /* Stop only between groups: a cursor cannot point inside one. Here
         * h > lastHash >= 0, so a nonzero cursor never reads as "done". */
        if (count > 0 && visited >= count && h != lastHash) {
            resume = h;
            break;
        }
        if ((ret = visit(ctx, &k, &v)) != 0)
            break;
        visited++;
        lastHash = h;
    }
    if (ret == STORAGE_OK && rc != 0 && rc != MDB_NOTFOUND)
        ret = fromMdb(rc);
    mdb_cursor_close(cur);
    if (ret == STORAGE_OK)
        *next = resume;
    return ret;
}

typedef struct keyVisit {
    storage_key_fn fn;
    void *arg;
} keyVisit;

static int visitKey(void *ctx, const MDB_val *k, const MDB_val *v)
{
    (void)k;
    const keyVisit *kv = ctx;
    const uint8_t *val = v->mv_data;
    if (v->mv_size < 5 || getBe(val + 1, 4) > v->mv_size - 5)
        return STORAGE_ECORRUPT;
    size_t nameLen = (size_t)getBe(val + 1, 4);
    if (parseKeyValue(val[0], v->mv_size - 5 - nameLen) != STORAGE_OK)
        return STORAGE_ECORRUPT;
    return kv->fn(kv->arg, (storage_slice){val + 5, nameLen},
                  typeOf(val[0]));
}

int storage_key_scan(storage_txn *t, uint64_t cursor, size_t count,
                     storage_key_fn fn, void *arg, uint64_t *next)
{
    int rc = usable(t, false);
    if (rc)
        return rc;
    if (fn == NULL || next == NULL)
        return STORAGE_EINVAL;
    keyVisit kv = {fn, arg};
    return scanRange(t, DB_KEYS, KEYSPACE_NS, cursor, count, visitKey, &kv,
                     next);
}

typedef struct fieldVisit {
    storage_field_fn fn;
    void *arg;
} fieldVisit;

static int visitField(void *ctx, const MDB_val *k, const MDB_val *v)
{
    (void)k;
    const fieldVisit *fv = ctx;
    const uint8_t *val = v->mv_data;
    if (v->mv_size < 4 || getBe(val, 4) > v->mv_size - 4)
        return STORAGE_ECORRUPT;
    size_t nameLen = (size_t)getBe(val, 4);
    return fv->fn(fv->arg, (storage_slice){val + 4, nameLen},
                  (storage_slice){val + 4 + nameLen, v->mv_size - 4 - nameLen});
}

int storage_hash_scan(storage_txn *t, storage_slice key, uint64_t cursor,
                      size_t count, storage_field_fn fn, void *arg,
                      uint64_t *next)
{
    int rc = usable(t, false);
    if (rc)
        return rc;
    if (!sliceValid(key) || fn == NULL || next == NULL)
        return STORAGE_EINVAL;
    keyEntry e;
    rc = findHash(t, key, &e);
    if (rc)
        return rc;
    if (!e.sl.found) {
        *next = 0;
        return STORAGE_OK;
    }
    fieldVisit fv = {fn, arg};
    return scanRange(t, DB_FIELDS, e.hashId, cursor, count, visitField, &fv,
                     next);
}

/* ---- dumps ----------------------------------------------------------------
 *
 * Layout, integers big-endian:
 *   "GCSDUMP1", u32 version (2; 1 is accepted and cannot hold "tables"),
 *   u32 reserved (0), u64 applied index
 *   per table, in dbNames order:
 *     u8 name length, name, u64 entry count,
 *     entries in LMDB key order: u32 key length, key, u64 value length, value
 *   u64 FNV-1a-64 of everything above
 * A loader that meets a table name it does not know rejects the dump. */

static bool addSize(size_t *acc, size_t n)
{
    if (n > SIZE_MAX - *acc)
        return false;
    *acc += n;
    return true;
}

/* Walk table @db calling @fn on every entry. */
static int forEachEntry(storage_txn *t, int db,
                        int (*fn)(void *ctx, const MDB_val *k,
                                  const MDB_val *v),
                        void *ctx)
{
    MDB_cursor *cur;
    int rc = mdb_cursor_open(t->txn, t->s->dbi[db], &cur);
    if (rc)
        return fromMdb(rc);
    int ret = STORAGE_OK;
    MDB_val k, v;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0 && ret == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
        ret = fn(ctx, &k, &v);
    if (ret == STORAGE_OK && rc != MDB_NOTFOUND)
        ret = fromMdb(rc);
    mdb_cursor_close(cur);
    return ret;
}

typedef struct dumpSize {
    size_t bytes;
    uint64_t entries;
} dumpSize;

static int sizeEntry(void *ctx, const MDB_val *k, const MDB_val *v)
{
    dumpSize *ds = ctx;
    ds->entries++;
    if (!addSize(&ds->bytes, 4 + 8) || !addSize(&ds->bytes, k->mv_size) ||
        !addSize(&ds->bytes, v->mv_size))
        return STORAGE_ENOMEM;
    return STORAGE_OK;
}

static int writeEntry(void *ctx, const MDB_val *k, const MDB_val *v)
{
    uint8_t **p = ctx;
    putBe(*p, k->mv_size, 4);
    memcpy(*p + 4, k->mv_data, k->mv_size);
    *p += 4 + k->mv_size;
    putBe(*p, v->mv_size, 8);
    if (v->mv_size > 0)
        memcpy(*p + 8, v->mv_data, v->mv_size);
    *p += 8 + v->mv_size;
    return STORAGE_OK;
}

int storage_dump(storage_txn *t, void **buf, size_t *len)
{
    if (buf)
        *buf = NULL;
    if (len)
        *len = 0;
    int rc = usable(t, false);
    if (rc)
        return rc;
    if (buf == NULL || len == NULL)
        return STORAGE_EINVAL;

    uint64_t applied;
    if ((rc = metaGet(t, STORAGE_META_APPLIED_INDEX, &applied)) != 0)
        return rc;

    /* Size first, so a big state is allocated once rather than regrown. */
    dumpSize sizes[DB_COUNT];
    size_t total = DUMP_HEADER_LEN + DUMP_TRAILER_LEN;
    for (int i = 0; i < DB_COUNT; i++) {
        sizes[i] = (dumpSize){0, 0};
        if ((rc = forEachEntry(t, i, sizeEntry, &sizes[i])) != 0)
            return rc;
        if (!addSize(&total, 1 + strlen(dbNames[i]) + 8) ||
            !addSize(&total, sizes[i].bytes))
            return STORAGE_ENOMEM;
    }
    uint8_t *out = malloc(total);
    if (out == NULL)
        return STORAGE_ENOMEM;

    uint8_t *p = out;
    memcpy(p, DUMP_MAGIC, DUMP_MAGIC_LEN);
    putBe(p + 8, DUMP_VERSION, 4);
    putBe(p + 12, 0, 4);
    putBe(p + 16, applied, 8);
    p += DUMP_HEADER_LEN;
    for (int i = 0; i < DB_COUNT; i++) {
        size_t nameLen = strlen(dbNames[i]);
        *p++ = (uint8_t)nameLen;
        memcpy(p, dbNames[i], nameLen);
        p += nameLen;
        putBe(p, sizes[i].entries, 8);
        p += 8;
        uint8_t *before = p;
        if ((rc = forEachEntry(t, i, writeEntry, &p)) != 0)
            goto fail;
        /* The same transaction cannot change between the passes. */
        if ((size_t)(p - before) != sizes[i].bytes) {
            rc = STORAGE_EIO;
            goto fail;
        }
    }
    putBe(p, fnv1a(FNV_OFFSET, out, total - DUMP_TRAILER_LEN), 8);
    *buf = out;
    *len = total;
    return STORAGE_OK;

fail:
    free(out);
    return rc;
}

/* Check magic, version, length and checksum; give the applied index. */
static int checkDumpFrame(const uint8_t *p, size_t len, uint64_t *applied)
{
    if (p == NULL || len < DUMP_HEADER_LEN + DUMP_TRAILER_LEN)
        return STORAGE_ECORRUPT;
    uint64_t version = getBe(p + 8, 4);
    if (memcmp(p, DUMP_MAGIC, DUMP_MAGIC_LEN) != 0 ||
        (version != DUMP_VERSION && version != DUMP_VERSION_NO_TABLES))
        return STORAGE_ECORRUPT;
    size_t body = len - DUMP_TRAILER_LEN;
    if (fnv1a(FNV_OFFSET, p, body) != getBe(p + body, 8))
        return STORAGE_ECORRUPT;
    *applied = getBe(p + 16, 8);
    return STORAGE_OK;
}

int storage_dump_applied_index(const void *buf, size_t len, uint64_t *index)
{
    if (index == NULL)
        return STORAGE_EINVAL;
    return checkDumpFrame(buf, len, index);
}

typedef struct reader {
    const uint8_t *p;
    size_t left;
} reader;

static const uint8_t *take(reader *r, size_t n)
{
    if (n > r->left)
        return NULL;
    const uint8_t *p = r->p;
    r->p += n;
    r->left -= n;
    return p;
}

static bool takeBe(reader *r, size_t n, uint64_t *v)
{
    const uint8_t *p = take(r, n);
    if (p)
        *v = getBe(p, n);
    return p != NULL;
}

typedef struct dumpEntry {
    MDB_val k, v;
} dumpEntry;

static bool nextEntry(reader *r, dumpEntry *e)
{
    uint64_t klen, vlen;
    if (!takeBe(r, 4, &klen) || (e->k.mv_data = (void *)take(r, klen)) == NULL)
        return false;
    if (!takeBe(r, 8, &vlen) || vlen > r->left)
        return false;
    e->k.mv_size = klen;
    e->v.mv_size = vlen;
    e->v.mv_data = (void *)take(r, vlen);
    return true;
}

/* LMDB's default key order: bytewise, a prefix first. */
static int keyCmp(const MDB_val *a, const MDB_val *b)
{
    size_t n = a->mv_size < b->mv_size ? a->mv_size : b->mv_size;
    int c = memcmp(a->mv_data, b->mv_data, n);
    if (c)
        return c;
    return a->mv_size < b->mv_size ? -1 : a->mv_size > b->mv_size;
}

/* The shape every entry of database @db has. */
static bool dumpEntryValid(int db, const dumpEntry *e)
{
    switch (db) {
    case DB_META:
        return e->v.mv_size == 8;
    case DB_TABLES: /* [u8 table >= 1][key] */
        return ((const uint8_t *)e->k.mv_data)[0] != 0;
    default:
        return e->k.mv_size == SLOT_LEN;
    }
}

typedef struct dumpTable {
    bool present;
    reader entries; /* the table's entries, validated */
    uint64_t count;
} dumpTable;

/* Validate everything in a dump and locate each table's entries. */
static int parseDump(const uint8_t *p, size_t len, size_t maxKey,
                     dumpTable tables[DB_COUNT])
{
    uint64_t applied;
    int rc = checkDumpFrame(p, len, &applied);
    if (rc)
        return rc;
    memset(tables, 0, sizeof(dumpTable) * DB_COUNT);
    reader r = {p + DUMP_HEADER_LEN,
                len - DUMP_HEADER_LEN - DUMP_TRAILER_LEN};
    while (r.left > 0) {
        uint64_t nameLen, count;
        const uint8_t *name;
        if (!takeBe(&r, 1, &nameLen) || (name = take(&r, nameLen)) == NULL ||
            !takeBe(&r, 8, &count))
            return STORAGE_ECORRUPT;
        int db = -1;
        for (int i = 0; i < DB_COUNT && db < 0; i++)
            if (nameLen == strlen(dbNames[i]) &&
                memcmp(name, dbNames[i], nameLen) == 0)
                db = i;
        if (db < 0 || tables[db].present ||
            (db == DB_TABLES &&
             getBe(p + 8, 4) == DUMP_VERSION_NO_TABLES))
            return STORAGE_ECORRUPT;
        dumpTable *tb = &tables[db];
        tb->present = true;
        tb->count = count;
        tb->entries = r;
        dumpEntry prev = {{0, NULL}, {0, NULL}}, e;
        for (uint64_t i = 0; i < count; i++) {
            if (!nextEntry(&r, &e) || e.k.mv_size == 0 ||
                e.k.mv_size > maxKey || e.v.mv_size > MAX_VALUE_SIZE)
                return STORAGE_ECORRUPT;
            /* Strictly ascending, so MDB_APPEND can load it. */
            if (i > 0 && keyCmp(&prev.k, &e.k) >= 0)
                return STORAGE_ECORRUPT;
            if (!dumpEntryValid(db, &e))
                return STORAGE_ECORRUPT;
            prev = e;
        }
        tb->entries.left -= r.left; /* now spans exactly this table */
    }
    return STORAGE_OK;
}

int storage_load_dump(storage *s, const void *buf, size_t len)
{
    if (s == NULL)
        return STORAGE_EINVAL;
    dumpTable tables[DB_COUNT];
    int rc = parseDump(buf, len, (size_t)mdb_env_get_maxkeysize(s->env),
                       tables);
    if (rc)
        return rc;

    /* The new state, its B-tree pages and the old state's pages, which
     * stay in use until the commit. */
    storage_txn *t;
    if ((rc = storage_reserve(s, 2 * (uint64_t)len)) != 0 ||
        (rc = storage_begin(s, true, &t)) != 0)
        return rc;
    for (int i = 0; i < DB_COUNT; i++) {
        MDB_dbi dbi = s->dbi[i];
        if ((rc = fromMdb(mdb_drop(t->txn, dbi, 0))) != 0)
            goto fail;
        reader r = tables[i].entries;
        dumpEntry e;
        for (uint64_t n = 0; n < tables[i].count; n++) {
            nextEntry(&r, &e); /* validated above */
            rc = fromMdb(mdb_put(t->txn, dbi, &e.k, &e.v, MDB_APPEND));
            if (rc)
                goto fail;
        }
    }
    return storage_commit(t);

fail:
    storage_abort(t);
    return rc;
}
