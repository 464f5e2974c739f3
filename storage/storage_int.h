/* storage internals: shared by the C files of storage/ and exposed to
 * tests/unit/test_storage.c. Not part of the API: nothing else includes
 * this. */
#ifndef GCS_STORAGE_INT_H
#define GCS_STORAGE_INT_H

#include <lmdb.h>
#include <stdatomic.h>

#include "storage.h"

/* Named LMDB databases, in dump order (names in storage.c). */
enum { DB_META, DB_KEYS, DB_FIELDS, DB_TABLES, DB_COUNT };

/* The ordering hash: bytes -> 64-bit value stored in every key. */
typedef uint64_t (*storage_hash_fn)(const void *data, size_t len);

typedef struct storage_atomic_timing {
    atomic_uint_least64_t counts[STORAGE_TIMING_BUCKETS + 1];
    atomic_uint_least64_t sum_us, n;
} storage_atomic_timing;

struct storage {
    MDB_env *env;
    MDB_dbi dbi[DB_COUNT];
    storage_hash_fn hash;
    atomic_bool writing; /* a write transaction is open */
    char *dataPath;      /* <dir>/data.mdb, for storage_get_info */
    /* MDB_WRITEMAP: LMDB writes pages straight into its shared map of
     * data.mdb, which it sizes to the whole map, sparse. A page stored into
     * a hole when the disk is full would be SIGBUS, so storage_reserve keeps
     * the file allocated (fallocate) ahead of LMDB's last page; @allocated
     * bytes from the start are. Without fallocate support (probed at open)
     * LMDB writes with pwrite instead, which reports a full disk as an
     * error, and @writemap is false. */
    bool writemap;
    int fd;
    uint64_t allocated;
    uint64_t page_size;
    /* storage_get_timings: commits run on one thread, syncs on another,
     * metrics are read on a third, hence relaxed atomics. */
    storage_atomic_timing commit_timing, sync_timing;
};

struct storage_txn {
    storage *s;
    MDB_txn *txn;
    bool write;
    bool touched; /* the current operation has modified something */
    int failed;   /* error that left this write transaction half-done */
    /* Write transactions: a cursor per database, opened on first use and
     * closed by LMDB when the transaction ends (storage__cursor). */
    MDB_cursor *cursor[DB_COUNT];
};

/* A cursor on @db for one operation; hand it back with
 * storage__cursor_done. A write transaction keeps one per database, which
 * LMDB closes with it: no allocation per operation, and an operation near
 * the key of the one before (a put right after its lookup, the changelog's
 * appends and trims) starts from the page the cursor is on instead of
 * descending the tree again. Read transactions get a cursor of their own,
 * closed by storage__cursor_done. */
int storage__cursor(storage_txn *t, int db, MDB_cursor **out);
void storage__cursor_done(storage_txn *t, MDB_cursor *cur);

/* LMDB's return code as a STORAGE_* code. */
int storage__from_mdb(int rc);

/* Can @t run an operation (a modifying one if @write)? Starts the
 * operation's bookkeeping (t->touched): end it with storage__settle. */
int storage__usable(storage_txn *t, bool write);

/* End a modifying operation with result @rc: a failure after the operation
 * modified anything (t->touched) poisons @t. Returns @rc. */
int storage__settle(storage_txn *t, int rc);

/* The fixed on-disk hash (FNV-1a 64 then murmur3's fmix64 finalizer). */
uint64_t storage__default_hash(const void *data, size_t len);

/* Make @s order its names by @fn instead (NULL restores the default), so tests
 * can force hash collisions. Call it right after storage_open on an empty
 * environment: data written under one hash is not found under another. */
void storage__set_hash_for_tests(storage *s, storage_hash_fn fn);

#endif /* GCS_STORAGE_INT_H */
