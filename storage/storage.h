/* storage: gcsd's state in one LMDB environment.
 *
 * Knows nothing of RESP or raft. Holds the Redis-compatible keyspace (strings
 * and hashes), numbered tables of opaque records (the typed tables above use
 * them), and a few named 64-bit counters ("meta"), among them the raft index
 * of the last applied entry, written in the same transaction as the data it
 * describes.
 *
 * Threads: the environment is opened with MDB_NOTLS, so read transactions may
 * be used from any thread (one thread at a time per transaction). Only one
 * write transaction exists at a time; gcsd opens them on its loop thread.
 *
 * Durability: the environment is opened with MDB_NOSYNC; the raft log carries
 * durability. storage_sync() flushes to disk and is meant for a worker thread.
 *
 * Memory: every storage_slice returned by a getter or passed to a scan callback
 * points into LMDB's map. It stays valid until the transaction ends or the next
 * write in the same transaction, whichever comes first. Copy what you keep.
 */
#ifndef GCS_STORAGE_H
#define GCS_STORAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifndef GCS_API
#define GCS_API __attribute__((visibility("default")))
#endif

/* Error codes: 0 is success; errors are negative and in their own range. */
#define STORAGE_ERRORS(X)                                                     \
    X(STORAGE_EWRONGTYPE, -30901, "operation against a key of another type") \
    X(STORAGE_EMAPFULL, -30902, "the database map is full")                  \
    X(STORAGE_EIO, -30903, "database I/O error")                             \
    X(STORAGE_ECORRUPT, -30904, "damaged database or dump")                  \
    X(STORAGE_ENOMEM, -30905, "out of memory")                               \
    X(STORAGE_EINVAL, -30906, "invalid argument")                            \
    X(STORAGE_EBUSY, -30907, "resource busy")                                \
    X(STORAGE_ENOSPC, -30908, "no space left on the device")

enum {
    STORAGE_OK = 0,
#define STORAGE_ERROR_ENUM(name, value, text) name = (value),
    STORAGE_ERRORS(STORAGE_ERROR_ENUM)
#undef STORAGE_ERROR_ENUM
};

/* Static string describing @code (never NULL). */
GCS_API const char *storage_strerror(int code);

typedef struct storage storage;          /* one open environment */
typedef struct storage_txn storage_txn;  /* a read or write transaction */

/* Bytes owned by someone else; see "Memory" above. */
typedef struct storage_slice {
    const void *data;
    size_t len;
} storage_slice;

typedef enum storage_type {
    STORAGE_TYPE_NONE = 0,
    STORAGE_TYPE_STRING = 1,
    STORAGE_TYPE_HASH = 2,
} storage_type;

typedef struct storage_options {
    size_t map_size; /* maximum database size in bytes; 0 means 32 GiB */
} storage_options;

/* Open (creating if needed) the environment in directory @dir, which must
 * exist. @opts may be NULL. On success *out owns the environment; free it with
 * storage_close(). On failure returns an error and, if @errbuf is not NULL,
 * writes a human-readable reason into it (NUL-terminated, truncated). */
GCS_API int storage_open(const char *dir, const storage_options *opts,
                         storage **out, char *errbuf, size_t errlen);

/* Make sure the next write transaction can grow the database by @bytes
 * (on top of a fixed margin every write transaction gets) without running
 * out of disk under LMDB: the file is allocated that far ahead of its last
 * page. Call it before a write transaction that may grow the database by
 * more than a few MiB. 0, STORAGE_ENOSPC (the disk is full: nothing may be
 * written), or STORAGE_EIO. Same thread as the write transactions. */
GCS_API int storage_reserve(storage *s, uint64_t bytes);

/* Close the environment. Every transaction must have ended. NULL is a no-op. */
GCS_API void storage_close(storage *s);

/* Flush everything committed so far to disk. Blocks: call it off the loop.
 * Safe to call concurrently with transactions in other threads. */
GCS_API int storage_sync(storage *s);

/* Size information for INFO and metrics. */
typedef struct storage_info {
    uint64_t map_size;     /* configured maximum, bytes */
    uint64_t used_bytes;   /* pages in use × page size */
    uint64_t file_bytes;   /* disk space data.mdb takes (its allocated
                              blocks; the file is sparse, sized to the map) */
} storage_info;
GCS_API int storage_get_info(storage *s, storage_info *info);

/* Cumulative durations, for metrics: counts per bucket with fixed upper
 * bounds (storage_timing_bounds_us; the last count is above every bound),
 * their sum and number. */
#define STORAGE_TIMING_BUCKETS 12
typedef struct storage_timing {
    uint64_t counts[STORAGE_TIMING_BUCKETS + 1];
    uint64_t sum_us;
    uint64_t n;
} storage_timing;
GCS_API extern const uint64_t storage_timing_bounds_us[STORAGE_TIMING_BUCKETS];

/* How long write-transaction commits (storage_commit of a write
 * transaction, successful or not) and storage_sync calls took so far. With
 * MDB_NOSYNC a commit writes pages but does not fsync; storage_sync is the
 * fsync. Either argument may be NULL. Safe from any thread. */
GCS_API void storage_get_timings(storage *s, storage_timing *commit,
                                 storage_timing *sync);

/* Bytes of pages freed by deletes and waiting for reuse (LMDB's freelist):
 * used_bytes above is a high-water mark, this is what of it is reusable.
 * Walks the freelist: call it when the figure matters, not per command. */
GCS_API int storage_free_bytes(storage *s, uint64_t *bytes);

/* Begin a transaction. A write transaction must be ended before the next one
 * begins. On success *out must be ended by storage_commit or storage_abort. */
GCS_API int storage_begin(storage *s, bool write, storage_txn **out);

/* Commit and free @t. On failure nothing of @t is kept; @t is freed anyway.
 * Committing a read transaction just ends it. */
GCS_API int storage_commit(storage_txn *t);

/* Discard and free @t. NULL is a no-op. */
GCS_API void storage_abort(storage_txn *t);

/* ---- meta: named unsigned 64-bit counters (absent reads as 0) ---------- */

GCS_API int storage_meta_get(storage_txn *t, const char *name, uint64_t *value);
GCS_API int storage_meta_set(storage_txn *t, const char *name, uint64_t value);

/* The meta name under which the last applied raft index is stored. */
#define STORAGE_META_APPLIED_INDEX "applied_index"

/* ---- keyspace ---------------------------------------------------------- */

/* Type of @key (STORAGE_TYPE_NONE when absent). */
GCS_API int storage_key_type(storage_txn *t, storage_slice key,
                             storage_type *type);

/* Delete @key of any type, with all its fields. *deleted tells whether it
 * existed (may be NULL). */
GCS_API int storage_key_delete(storage_txn *t, storage_slice key,
                               bool *deleted);

/* Number of keys in the keyspace. */
GCS_API int storage_key_count(storage_txn *t, uint64_t *count);

/* Remove every key (FLUSHALL). Meta counters are kept. */
GCS_API int storage_key_flush(storage_txn *t);

/* String value of @key. *found is false when the key is absent. A hash key
 * gives STORAGE_EWRONGTYPE. */
GCS_API int storage_string_get(storage_txn *t, storage_slice key,
                               storage_slice *value, bool *found);

/* Set @key to the string @value, replacing a key of any type (Redis SET). */
GCS_API int storage_string_set(storage_txn *t, storage_slice key,
                               storage_slice value);

/* Field @field of hash @key. *found is false when the key or field is absent.
 * A string key gives STORAGE_EWRONGTYPE. */
GCS_API int storage_hash_get(storage_txn *t, storage_slice key,
                             storage_slice field, storage_slice *value,
                             bool *found);

/* Set a field, creating the hash if needed. *created (may be NULL) tells
 * whether the field is new. A string key gives STORAGE_EWRONGTYPE. */
GCS_API int storage_hash_set(storage_txn *t, storage_slice key,
                             storage_slice field, storage_slice value,
                             bool *created);

/* Delete a field; the key goes away with its last field. *deleted (may be
 * NULL) tells whether the field existed. */
GCS_API int storage_hash_delete(storage_txn *t, storage_slice key,
                                storage_slice field, bool *deleted);

/* Number of fields (0 when the key is absent). */
GCS_API int storage_hash_len(storage_txn *t, storage_slice key, uint64_t *n);

/* ---- iteration ----------------------------------------------------------
 *
 * Keys (and a hash's fields) are kept in the order of a fixed 64-bit hash of
 * their bytes, and a scan cursor is the hash to resume at. So cursors are
 * plain unsigned integers, stay valid across writes, and a scan never misses
 * an element present from its start to its end (Redis SCAN's guarantee).
 * A call visits elements with hash >= @cursor until at least @count were
 * visited (0: no limit), finishing the group of elements sharing the last
 * hash, then stores in *next the cursor to resume at, or 0 when done.
 * A callback returning non-zero stops the scan; that value is returned and
 * *next is undefined. */

typedef int (*storage_key_fn)(void *arg, storage_slice key, storage_type type);
typedef int (*storage_field_fn)(void *arg, storage_slice field,
                                storage_slice value);

GCS_API int storage_key_scan(storage_txn *t, uint64_t cursor, size_t count,
                             storage_key_fn fn, void *arg, uint64_t *next);

/* Fields of hash @key; an absent key visits nothing and gives *next = 0.
 * A string key gives STORAGE_EWRONGTYPE. */
GCS_API int storage_hash_scan(storage_txn *t, storage_slice key,
                              uint64_t cursor, size_t count,
                              storage_field_fn fn, void *arg, uint64_t *next);

/* ---- record tables ------------------------------------------------------
 *
 * Numbered tables of records for the layers above (typed tables, their
 * secondary indexes): each record is a key and a value, both plain bytes this
 * library does not interpret. Tables are numbered 1..STORAGE_TABLE_MAX; keys
 * are 0..STORAGE_TABLE_MAX_KEY bytes and are kept in bytewise order within a
 * table (a shorter key before its extensions), so a scan visits them sorted
 * and a key prefix selects a contiguous range. Values are up to 4 GiB - 1.
 *
 * Slices follow "Memory" above. An argument of a write must not be a slice
 * this library returned in the same transaction (copy it first). */

#define STORAGE_TABLE_MAX 255
#define STORAGE_TABLE_MAX_KEY 510

/* The record of @table under @key. *found is false when there is none (then
 * *value is {NULL, 0}). */
GCS_API int storage_table_get(storage_txn *t, unsigned table, storage_slice key,
                              storage_slice *value, bool *found);

/* Insert or replace the record under @key. *created (may be NULL) tells
 * whether the key is new. */
GCS_API int storage_table_put(storage_txn *t, unsigned table, storage_slice key,
                              storage_slice value, bool *created);

/* Remove the record under @key. *deleted (may be NULL) tells whether there
 * was one. */
GCS_API int storage_table_delete(storage_txn *t, unsigned table,
                                 storage_slice key, bool *deleted);

/* Remove every record of tables @first..@last (FLUSHALL). */
GCS_API int storage_table_flush(storage_txn *t, unsigned first,
                                unsigned last);

/* Called for each record a scan visits. Return 0 to go on; anything else
 * stops the scan, which returns that value. It must not write to the
 * transaction. */
typedef int (*storage_record_fn)(void *arg, storage_slice key,
                                 storage_slice value);

/* Visit, in key order, the records of @table whose key begins with @prefix
 * and is not below @from (bytewise; an empty @from starts at @prefix). The
 * smallest key after a key K is K followed by one zero byte: pass that as
 * @from to resume after K. */
GCS_API int storage_table_scan(storage_txn *t, unsigned table,
                               storage_slice prefix, storage_slice from,
                               storage_record_fn fn, void *arg);

/* ---- dumps: whole-state copies for raft snapshots and backups ----------
 *
 * A dump is a self-describing, checksummed byte string holding every table
 * and meta counter as seen by the read (or write) transaction @t. */

/* Serialise into a malloc'd buffer; the caller frees *buf with free(). Works
 * in any thread with a read transaction. */
GCS_API int storage_dump(storage_txn *t, void **buf, size_t *len);

/* Validate a dump and read the applied index recorded in it. */
GCS_API int storage_dump_applied_index(const void *buf, size_t len,
                                       uint64_t *index);

/* Replace the whole state with the dump's, in one write transaction (no other
 * write transaction may be open). A damaged dump gives STORAGE_ECORRUPT and
 * leaves the state untouched. */
GCS_API int storage_load_dump(storage *s, const void *buf, size_t len);

#endif /* GCS_STORAGE_H */
