/* table: what the typed tables (t_node.c, t_actor.c, t_job.c, t_pg.c) share:
 * their storage table numbers, protobuf records read from and written to
 * storage, secondary indexes kept in step with the records, change events,
 * the work one command leaves for after its own change (cascades), and
 * paged listings.
 *
 * Records are Ray's messages (ray.pb-c.h) stored under their binary ids.
 * Every write goes through a table_op, which owns the memory of the records
 * the command decodes and edits (an arena: nothing is freed field by field)
 * and runs the cascades the command triggers before the entry commits. */
#ifndef GCS_TABLE_H
#define GCS_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "arena.h"
#include "fsm.h"
#include "resp.h"
#include "storage.h"

/* Storage table numbers (storage.h "record tables"). Never renumber: they
 * are on disk. Record tables hold one record per id; the others are
 * secondary indexes, rebuilt by no one: every write keeps them in step. */
enum {
    TABLE_NODE = 1,           /* node id -> GcsNodeInfo */
    TABLE_ACTOR = 2,          /* actor id -> ActorTableData */
    TABLE_JOB = 3,            /* job id -> JobTableData */
    TABLE_PG = 4,             /* placement group id -> PlacementGroupTableData */
    TABLE_NODE_RESOURCES = 5, /* node id -> gcs.ResourceUnits committed to
                                 bundles there (absent: nothing) */

    INDEX_NODE_ALIVE = 16,        /* [node id] -> "" while ALIVE */
    INDEX_ACTOR_NAME = 17,        /* name key -> actor id, until DEAD */
    INDEX_ACTOR_BY_JOB = 18,      /* ref(job id, actor id) -> "" */
    INDEX_ACTOR_BY_NODE = 19,     /* ref(node id, actor id), while
                                     PENDING_CREATION or ALIVE there */
    INDEX_ACTOR_BY_OWNER = 20,    /* ref(owner worker id, actor id), for
                                     non-detached actors not DEAD */
    INDEX_ACTOR_BY_OWNER_NODE = 21, /* ref(owner's node id, actor id), same */
    INDEX_PG_NAME = 22,           /* name key -> group id, until REMOVED */
    INDEX_PG_BY_JOB = 23,         /* ref(creator job, group), until REMOVED */
    INDEX_PG_BY_ACTOR = 24,       /* ref(creator actor, group), until the
                                     actor is dead or the group REMOVED */
    INDEX_PG_BY_NODE = 25,        /* ref(node, group) per node with bundles */
    INDEX_PG_QUEUE = 26,          /* [u8 class][u64 seq][group id] -> "":
                                     groups waiting for resources, in order */
    INDEX_PG_QUEUE_SLOT = 27,     /* [group id] -> its INDEX_PG_QUEUE key */
    INDEX_JOB_BY_DRIVER_NODE = 28,/* ref(driver's node id, job id), while the
                                     job is not dead */
    INDEX_DEAD = 29,              /* [u8 record table][u64 seq] -> id: dead
                                     actors and nodes, removed groups, oldest
                                     first, until evicted (table_dead_add) */
    /* 255 (FSM_SYSTEM_TABLE, fsm.h) holds gcsd's own records and 254
     * (FSM_CHANGELOG_TABLE) the changelog: not tables of the GCS, kept by
     * FLUSHALL. */
};

/* Names of the record tables in change events (Ray's TablePrefix names). */
#define TABLE_NAME_NODE "NODE"
#define TABLE_NAME_ACTOR "ACTOR"
#define TABLE_NAME_JOB "JOB"
#define TABLE_NAME_PG "PLACEMENT_GROUP"

/* Ray's id sizes (common/id.h). */
#define NODE_ID_LEN 28
#define WORKER_ID_LEN 28
#define ACTOR_ID_LEN 16
#define JOB_ID_LEN 4
#define PG_ID_LEN 18

/* Namespace plus name of a named actor or group, so that the name key fits
 * in a storage key. */
#define TABLE_NAME_MAX 500

/* Meta counters kept by the tables. */
#define TABLE_META_JOB_COUNTER "job_counter"
#define TABLE_META_PG_QUEUE_SEQ "pg_queue_seq"

/* ---- dead rows: a bounded FIFO per table --------------------------------
 *
 * Like Ray's GCS (maximum_gcs_destroyed_actor_cached_count,
 * maximum_gcs_dead_node_cached_count), only so many dead rows are kept: an
 * actor that became DEAD, a node DEAD, a group REMOVED enters INDEX_DEAD
 * under the next meta "dead_seq"; when a table has more such rows than its
 * cap, the oldest are deleted (record and index entries, with a DELETE
 * event), as if never known. Caps are replicated: meta "dead_cap_*" set by
 * GCS.TABLES.CAPS through the log, 0 meaning the compiled-in default. The
 * work is bounded per command: each row entering allows TABLE_DEAD_EVICT
 * evictions of its table, GCS.TABLES.CAPS itself TABLE_DEAD_CAPS_BATCH per
 * table; so a lowered cap converges over the following commands. */
#define TABLE_DEAD_ACTORS_DEFAULT 100000 /* Ray's destroyed-actor cache */
#define TABLE_DEAD_NODES_DEFAULT 1000    /* Ray's dead-node cache */
#define TABLE_DEAD_PGS_DEFAULT 100000    /* Ray keeps removed groups without
                                            a cap; the actors' bound keeps
                                            the store bounded the same way */
#define TABLE_DEAD_EVICT 2
#define TABLE_DEAD_CAPS_BATCH 256
#define TABLE_META_DEAD_SEQ "dead_seq"
#define TABLE_META_DEAD_ACTORS "dead_actors" /* rows in the FIFO */
#define TABLE_META_DEAD_NODES "dead_nodes"
#define TABLE_META_DEAD_PGS "dead_pgs"
#define TABLE_META_DEAD_CAP_ACTORS "dead_cap_actors" /* 0: the default */
#define TABLE_META_DEAD_CAP_NODES "dead_cap_nodes"
#define TABLE_META_DEAD_CAP_PGS "dead_cap_pgs"

/* The FIFO's state for one table, as @t sees it. */
typedef struct table_dead_info {
    uint64_t kept;  /* dead rows kept */
    uint64_t cap;   /* the cap in force (the default when unset) */
} table_dead_info;

/* @table is TABLE_ACTOR, TABLE_NODE or TABLE_PG. 0 or a storage error. */
int table_dead_info_get(storage_txn *t, unsigned table, table_dead_info *out);

/* ---- one write command's work ---------------------------------------- */

/* An actor to kill once the command's own change is made (owner death). */
typedef struct table_kill {
    uint8_t actor_id[ACTOR_ID_LEN];
    int reason;             /* ActorDiedErrorContext reason */
    const char *message;    /* static */
} table_kill;

struct pg_nodes;

typedef struct table_op {
    apply_ctx *a;
    storage_txn *txn;
    uint64_t now_ms;        /* the entry's time (never negative) */
    arena mem;              /* records of this command; do not copy the op */
    table_kill *kills;      /* queued by t_actor.c, run by table_op_finish */
    size_t n_kills, cap_kills;
    bool retry_pending;     /* resources were freed or a node came: place
                               the queued placement groups again */
    struct pg_nodes *nodes; /* t_pg.c's view of the alive nodes (malloc'd,
                               so it outlives scopes); NULL until needed */
    uint64_t evict[3];      /* dead rows table_op_finish may still evict:
                               actors, nodes, groups */
} table_op;

void table_op_init(table_op *op, apply_ctx *a);

/* Run the cascades queued by the command (owner deaths, placement of queued
 * groups) until none is left. Returns 0 or a storage error. */
int table_op_finish(table_op *op);

void table_op_free(table_op *op);

/* A write command's body: decide, change, reply; 0 or a storage error. */
typedef int (*table_write_fn)(table_op *op, size_t argc, const resp_arg *argv,
                              resp_buf *reply);

/* A cmd_apply_fn around @fn: a table_op for it, then its cascades. */
int table_run(apply_ctx *a, size_t argc, const resp_arg *argv,
              resp_buf *reply, table_write_fn fn);

/* A stretch of work whose memory is released at its end (one record of a
 * long cascade), so a cascade over many records runs in bounded memory.
 * Nothing allocated inside may be kept after table_scope_leave. */
typedef struct table_scope {
    arena_mark mark;
} table_scope;

table_scope table_scope_enter(table_op *op);
void table_scope_leave(table_op *op, table_scope s);

/* Nodes or committed resources changed: drop t_pg.c's view of them. */
void table_nodes_changed(table_op *op);

/* Row @id of @table (TABLE_ACTOR, TABLE_NODE, TABLE_PG) just died for
 * good: it enters the table's dead FIFO, and table_op_finish may evict
 * TABLE_DEAD_EVICT more of the oldest. Returns 0 or a storage error. */
int table_dead_add(table_op *op, unsigned table, storage_slice id);

/* Delete the record under @key of @table and, for a record table, emit its
 * DELETE event (none when there was no record). The caller deletes its
 * index entries. Returns 0 or a storage error. */
int table_delete_record(table_op *op, unsigned table, storage_slice key);

/* Queue a kill for table_op_finish. Returns 0 or STORAGE_ENOMEM. */
int table_queue_kill(table_op *op, storage_slice actor_id, int reason,
                     const char *message);

/* The storage error for a failed decode: out of memory when the arena ran
 * out, else damaged data. */
int table_decode_error(const arena *mem);

/* FLUSHALL's part in the typed tables: every record and index goes, each
 * record with a DELETE event. Meta counters (revision, job ids) go on. */
int table_flush(apply_ctx *a);

/* ---- records ---------------------------------------------------------- */

/* Decode the record under @key of @table as @desc into *out (memory from
 * @mem); *out is NULL when there is none. Returns 0 or a storage error. */
int table_load(storage_txn *t, arena *mem, unsigned table, storage_slice key,
               const ProtobufCMessageDescriptor *desc, void **out);

/* Encode @msg and store it under @key; for a record table (TABLE_NODE ..
 * TABLE_PG) also emit the change event. Returns 0 or a storage error. */
int table_save(table_op *op, unsigned table, storage_slice key,
               const ProtobufCMessage *msg);

/* Decode a record given by a client into @mem. NULL when it is not a valid
 * message of @desc, or when protobuf-c could not decode its own encoding of
 * it (what a command stores must load again). */
void *table_decode_arg(arena *mem, const ProtobufCMessageDescriptor *desc,
                       const resp_arg *arg);

/* ---- secondary indexes ------------------------------------------------ */

typedef struct table_index_entry {
    unsigned index;      /* INDEX_* */
    storage_slice key;
    storage_slice value;
} table_index_entry;

/* The index entries one record should have. */
typedef struct table_index_set {
    table_index_entry *e; /* in the op's arena */
    size_t n, cap;
} table_index_set;

/* Add an entry to @s. Returns 0 or STORAGE_ENOMEM. */
int table_index_add(arena *mem, table_index_set *s, unsigned index,
                    storage_slice key, storage_slice value);

/* Move the indexes of one record from @old (what it had; may be NULL for a
 * new record) to @now: delete what is gone, write what is new or changed. */
int table_index_update(table_op *op, const table_index_set *old,
                       const table_index_set *now);

/* Index key ref(@owner, @id): [u8 owner length][owner][id], so that every
 * id under one owner shares the prefix ref(@owner, ""). A slice of @mem;
 * .data is NULL when memory is short or @owner is longer than 255 bytes. */
storage_slice table_ref_key(arena *mem, storage_slice owner, storage_slice id);

/* The id part of a ref key (what follows the owner). */
storage_slice table_ref_id(storage_slice key);

/* Name key [u32 namespace length][namespace][name] (together at most
 * TABLE_NAME_MAX bytes, checked by the caller). .data NULL when memory is
 * short. */
storage_slice table_name_key(arena *mem, storage_slice ns, storage_slice name);

/* A C string as a slice. */
storage_slice table_str(const char *s);

/* True when @id is empty or exactly @len bytes (an optional id field). */
bool table_opt_id_ok(ProtobufCBinaryData id, size_t len);

/* Ids listed under @owner in index @index (their ref keys' id parts), in
 * order, copied into @mem. Returns 0 or a storage error. */
int table_collect_refs(storage_txn *t, arena *mem, unsigned index,
                       storage_slice owner, storage_slice **ids, size_t *n);

/* Every key of @table, in order, copied into @mem. Returns 0 or a storage
 * error. */
int table_collect_keys(storage_txn *t, arena *mem, unsigned table,
                       storage_slice **keys, size_t *n);

/* ---- replies ----------------------------------------------------------- */

/* Reply the stored record under @key as a bulk string, or nil. */
void table_reply_record(storage_txn *t, unsigned table, storage_slice key,
                        resp_buf *out);

/* A LIST command without filters (JOB.LIST, PG.LIST): argv[1..] are only
 * CURSOR/COUNT options; reply one page of @table's records. */
void table_reply_list(storage_txn *t, unsigned table, size_t argc,
                      const resp_arg *argv, resp_buf *out);

/* Reply the record of @table whose id the name index @index holds for
 * (@ns, @name) (ACTOR.GETNAMED, PG.GETNAMED), or nil. */
void table_reply_named(storage_txn *t, unsigned index, unsigned table,
                       const resp_arg *ns, const resp_arg *name,
                       resp_buf *out);

/* Reply the record @msg as a bulk string (encoded into @mem). Returns 0 or
 * STORAGE_ENOMEM. */
int table_reply_message(arena *mem, const ProtobufCMessage *msg,
                        resp_buf *out);

/* ---- paged listings -----------------------------------------------------
 *
 * LIST commands take [CURSOR c] [COUNT n] and reply like SCAN:
 * [next-cursor, [record, ...]]. The cursor is opaque (the hex of the storage
 * key to resume at); "0" starts a listing and a reply cursor of "0" ends it.
 * A page holds at most COUNT records (default 1000) and examines at most
 * 10 x COUNT entries, so a filter that matches little may give short or
 * even empty pages before the end. Records changed during a listing appear
 * in their state when their page is read; records present throughout appear
 * exactly once. */

#define TABLE_LIST_DEFAULT_COUNT 1000
#define TABLE_LIST_STOP 1 /* scan callback return value: page is full */

typedef struct table_list {
    uint8_t from[STORAGE_TABLE_MAX_KEY]; /* where this page starts */
    size_t from_len;
    size_t count;     /* records per page at most */
    size_t visited;
    size_t n;         /* records in items */
    resp_buf items;
    bool more;        /* the page stopped before the end */
    uint8_t next[STORAGE_TABLE_MAX_KEY];
    size_t next_len;
} table_list;

void table_list_init(table_list *l);
void table_list_free(table_list *l);

/* If argv[*i] is CURSOR or COUNT, consume it and its value (advancing *i)
 * and return 1; return 0 when it is neither; -1 after replying an error. */
int table_list_option(table_list *l, size_t argc, const resp_arg *argv,
                      size_t *i, resp_buf *out);

/* The start key for the scan: the cursor's key. */
storage_slice table_list_from(const table_list *l);

/* Call first for each entry a scan visits: true when the page is full, then
 * @key is where the next page starts and the callback must return
 * TABLE_LIST_STOP. */
bool table_list_full(table_list *l, storage_slice key);

/* Add a record to the page. */
void table_list_add(table_list *l, storage_slice record);

/* Reply [cursor, [records]] or, when @rc is a storage error, the error. */
void table_list_reply(table_list *l, int rc, resp_buf *out);

/* ---- argument helpers -------------------------------------------------- */

/* True when @arg is exactly @len bytes; otherwise reply
 * "-ERR invalid <what> id: expected <len> bytes, got <n>" and false. */
bool table_id_arg_or_reply(const resp_arg *arg, size_t len, const char *what,
                           resp_buf *out);

#endif /* GCS_TABLE_H */
