/* fsm: gcsd's replicated state machine. Applies committed log entries (each a
 * batch of protobuf Commands) to storage in one LMDB transaction per entry,
 * decides every command's outcome there, and produces its RESP reply.
 *
 * Apply is deterministic: it reads only the entry (its commands, index and
 * leader timestamp) and the stored state. */
#ifndef GCS_FSM_H
#define GCS_FSM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "resp.h"
#include "rglue.h"
#include "storage.h"

/* One change an applied entry made to a typed table (see apply_emit). */
typedef enum fsm_event_kind {
    FSM_EVENT_PUT = 0,    /* the record was created or replaced */
    FSM_EVENT_DELETE = 1, /* the record was removed */
    FSM_EVENT_MESSAGE = 2,/* PUBLISH: key is the channel, value the message;
                             table "", revision 0 (a message changes no
                             state and is not kept in the changelog) */
} fsm_event_kind;

typedef struct fsm_event {
    uint64_t revision;   /* +1 per event, identical on every replica */
    const char *table;   /* static name: "NODE", "ACTOR", "JOB", ...;
                            "" for FSM_EVENT_MESSAGE */
    const void *key;     /* the record's id */
    size_t key_len;
    fsm_event_kind kind;
    const void *value;   /* the record after the change; empty for DELETE */
    size_t value_len;
    const void *field;   /* KEYSPACE hash field changes: the field */
    size_t field_len;    /* 0: the change is of the whole key */
} fsm_event;

/* Receives the events of one applied entry, in revision order, after its
 * transaction committed (never for an entry that failed or was skipped as a
 * replay). @ev and what it points to are valid during the call only. Runs
 * inside apply on the loop thread: it must not apply or propose anything
 * synchronously. */
typedef void (*fsm_events_fn)(void *ctx, const fsm_event *ev, size_t n);

typedef struct fsm {
    storage *store;
    fsm_events_fn on_events; /* optional; set after fsm_open */
    void *on_events_ctx;
    /* Optional: how many local subscribers PUBLISH on @channel reaches
     * right now (pub/sub sets it). Only PUBLISH's reply depends on it. */
    size_t (*count_receivers)(void *ctx, const void *channel, size_t len);
    void *count_receivers_ctx;
    uint64_t revision;      /* mirrors the stored revision counter */
    storage_txn *read_txn;  /* cached between writes; see fsm_read_txn */
    uint64_t applied_index; /* mirrors the stored value */
    uint64_t entries_applied;
    uint64_t commands_applied;
    uint64_t duplicates;    /* retried writes answered from the dedup table */
    uint64_t last_apply_us; /* duration of the last apply */
    rglue_histogram apply_us; /* every apply's duration */
    storage_info space;     /* map and use, refreshed after each apply */
    uint64_t free_bytes;    /* reusable part of space.used_bytes, refreshed
                               only when the high-water mark is near full */
    uint64_t free_bytes_index; /* applied index free_bytes was taken at */
    bool failed;
    char failure[256];
    uint64_t cluster_format; /* mirrors the stored value (absent: 1) */
    /* The newest format this member applies: FSM_FORMAT_MAX, or what a test
     * playing another binary sets (--test-format-max). */
    uint64_t format_max;
} fsm;

/* What a command's apply function sees. */
typedef struct apply_ctx {
    storage_txn *txn;   /* the entry's write transaction */
    uint64_t index;     /* raft index of the entry */
    int64_t time_ms;    /* leader's clock when the entry was formed */
    uint64_t cluster_format; /* as of this command (GCS.CLUSTER.FORMAT) */
    /* Why the entry cannot be applied by this binary (a command it does not
     * know, a format above its own): set with a non-zero return, the member
     * stops with this message. */
    char *why;
    size_t why_len;
    /* private to fsm.c, apply_emit and apply_publish */
    const struct fsm *fsm;
    const char *dedup_reply; /* set by a command whose reply is local */
    uint64_t revision;  /* the last revision handed out */
    fsm_event *events;  /* this entry's events so far (owned by fsm.c) */
    size_t n_events, cap_events;
} apply_ctx;

/* The largest leader time apply uses (ms; ~ the year 2262): larger (and
 * negative) entry times are clamped, so that every time in nanoseconds
 * fits an int64. */
#define FSM_MAX_TIME_MS (INT64_MAX / 1000000)

/* Table name of change events of the Redis keyspace (strings, hashes). */
#define FSM_TABLE_KEYSPACE "KEYSPACE"

/* The meta counter holding the last revision handed out. */
#define FSM_META_REVISION "revision"

/* ---- state-machine formats ----------------------------------------------
 *
 * A state-machine format numbers everything the members of a cluster must
 * agree on to apply the same log the same way: the commands a log entry may
 * carry and their encodings (proto/gcs.proto's Command, raft/rglue_int.h's
 * entry layout), the snapshot and backup dump (storage_dump's format) and
 * the LMDB layout (docs/architecture.md, "On-disk formats"). Format 1 is
 * everything up to and including the release that introduced formats (entry
 * magic RGL1, dump version 2, LMDB layout version 2).
 *
 * The cluster format is replicated state (meta counter "cluster_format";
 * absent: 1). The leader raises it through the log (GCS.CLUSTER.FORMAT)
 * once every member of the configuration reports that it applies the new
 * format (GCS.VERSION); a command whose first format (command.format) is
 * above the cluster format is refused before it is proposed, and again,
 * deterministically, at apply. A member that meets an entry it cannot apply,
 * or data of a format above its own, stops and names both formats. */
#define FSM_FORMAT_MIN 1 /* the oldest format this binary applies */
#define FSM_FORMAT_MAX 1 /* the newest */
#define FSM_META_CLUSTER_FORMAT "cluster_format"
/* The command that raises it (its handler: t_raft.c). */
#define FSM_CMD_CLUSTER_FORMAT "gcs.cluster.format"

/* Record a change to a typed table made by the command being applied: it
 * gets the next revision, and is delivered to fsm.on_events once the entry
 * commits. @table must be a static string; @key and @value are copied (they
 * may be LMDB slices). Returns 0 or STORAGE_ENOMEM. Only changes that are
 * part of the entry's outcome may be emitted: a command that fails with an
 * error reply must have emitted nothing. */
int apply_emit(apply_ctx *a, const char *table, storage_slice key,
               fsm_event_kind kind, storage_slice value);

/* PUBLISH inside apply: queue @message for @channel's subscribers (each
 * member delivers it to its own, in log order, once the entry commits) and
 * reply the number of subscribers on this member. That number is local, so
 * the de-duplication table records ":0" instead: a retried PUBLISH answered
 * from it says 0 (its message was delivered by the first attempt). */
int apply_publish(apply_ctx *a, storage_slice channel, storage_slice message,
                  resp_buf *reply);

/* The same for one field of a keyspace hash (@field non-empty). */
int apply_emit_field(apply_ctx *a, const char *table, storage_slice key,
                     storage_slice field, fsm_event_kind kind,
                     storage_slice value);

/* Serialise @ev as a protobuf gcs.ChangeEvent into a malloc'd buffer (the
 * caller frees *out with free()). Returns 0 or -1 (out of memory). */
int fsm_event_encode(const fsm_event *ev, void **out, size_t *len);

/* Open the state in @dir (created by the caller). */
int fsm_open(fsm *f, const char *dir, uint64_t map_size, char *err,
             size_t errlen);
void fsm_close(fsm *f);

/* The hooks rglue calls; ctx is the fsm. */
void fsm_raft_hooks(fsm *f, rglue_fsm *hooks);

/* A read transaction on the latest applied state, shared by the reads of one
 * loop iteration: valid until the next apply or fsm_end_reads(). Do not
 * commit or abort it. NULL (with the reason logged) on failure. */
storage_txn *fsm_read_txn(fsm *f);

/* End the shared read transaction (once per loop iteration, so no read
 * transaction outlives an iteration and LMDB can reuse pages). */
void fsm_end_reads(fsm *f);

/* True when @bytes more (an estimate for commands admitted but not yet
 * applied) still fit in the map with a reserve to spare. Commands that grow
 * the state are refused (-OOM) before they reach the log when this is false:
 * an entry that overflows the map inside apply fail-stops the member. */
bool fsm_has_room(fsm *f, uint64_t bytes);

/* Encode a command for the log: protobuf Command, caller frees *out with
 * free(). Returns 0 or -1 (out of memory). */
int fsm_encode_command(uint64_t request_id, size_t argc, const resp_arg *argv,
                       void **out, size_t *len);

/* ---- the changelog ---------------------------------------------------------
 *
 * Every change event (revision > 0) is kept in record table
 * FSM_CHANGELOG_TABLE, written in the transaction of the entry that made it:
 * key = the revision, 8 bytes big-endian; value = the gcs.ChangeEvent bytes
 * (fsm_event_encode). Revisions are contiguous, so the kept records are
 * exactly oldest..revision. The window (FSM_CHANGELOG_MAX_EVENTS events and
 * FSM_CHANGELOG_MAX_BYTES bytes of values by default) is a replicated
 * setting: GCS.CHANGELOG.WINDOW changes it through the log, and apply trims
 * the oldest records past it, so every member keeps the same records.
 * FLUSHALL keeps the changelog (its deletions are in it). */
#define FSM_CHANGELOG_TABLE (STORAGE_TABLE_MAX - 1)
#define FSM_CHANGELOG_MAX_EVENTS 100000
#define FSM_CHANGELOG_MAX_BYTES (64ULL * 1024 * 1024)
#define FSM_META_CHANGELOG_OLDEST "changelog_oldest"
#define FSM_META_CHANGELOG_BYTES "changelog_bytes"
#define FSM_META_CHANGELOG_MAX_EVENTS "changelog_max_events"
#define FSM_META_CHANGELOG_MAX_BYTES "changelog_max_bytes"

typedef struct fsm_changelog_info {
    uint64_t oldest;     /* oldest revision kept; newest + 1 when empty */
    uint64_t newest;     /* the last revision handed out */
    uint64_t bytes;      /* bytes of kept values */
    uint64_t max_events; /* the window */
    uint64_t max_bytes;
} fsm_changelog_info;

/* The changelog's bounds as seen by @t. 0 or a storage error. */
int fsm_changelog_info_get(storage_txn *t, fsm_changelog_info *out);

/* Inside an apply: set the window (0: the compiled-in default) and trim. */
int fsm_changelog_set_window(apply_ctx *a, uint64_t max_events,
                             uint64_t max_bytes);

/* Visit the kept ChangeEvents from revision @from on, in order, as
 * @fn(arg, revision, bytes); @fn returns 0 to go on, anything else stops
 * (and is returned). Slices as in storage.h. */
typedef int (*fsm_changelog_fn)(void *arg, uint64_t revision,
                                storage_slice event);
int fsm_changelog_scan(storage_txn *t, uint64_t from, fsm_changelog_fn fn,
                       void *arg);

/* The record table (storage.h) holding the state machine's own replicated
 * bookkeeping: request de-duplication and the member directory. */
#define FSM_SYSTEM_TABLE STORAGE_TABLE_MAX

/* The same for a write that may be retried: (@origin, @request_id) names it
 * across retries, and the state machine applies it at most once. */
int fsm_encode_write(uint64_t origin, uint64_t request_id, size_t argc,
                     const resp_arg *argv, void **out, size_t *len);

/* A Command decoded from the log or from a forwarding member: the
 * protobuf message and its arguments as resp_args (pointing into it). */
struct Gcs__Command;
typedef struct fsm_command {
    struct Gcs__Command *msg;
    size_t argc;
    resp_arg *argv;   /* never NULL when argc > 0; "" for empty arguments */
    resp_arg small[8];
} fsm_command;

/* Decode @len bytes at @data into @c; 0, or -1 when they are not a Command
 * (or memory ran out). A Command may have no arguments (argc 0). Free with
 * fsm_command_free() after a 0. */
int fsm_command_decode(fsm_command *c, const void *data, size_t len);
void fsm_command_free(fsm_command *c);

/* The same, with every allocation drawn from @mem: nothing to free but
 * @mem, and @c is valid until @mem is reset, restored or freed. */
int fsm_command_decode_in(fsm_command *c, arena *mem, const void *data,
                          size_t len);

/* The client address member @id announced (see GCS.ANNOUNCE) into @out, or
 * "" when it never did. 0 or a storage error. Loop thread. */
int fsm_member_address(fsm *f, uint64_t id, char *out, size_t outlen);

/* Record @addr as member @id's client address, inside an apply. */
int fsm_set_member_address(storage_txn *t, uint64_t id, storage_slice addr);

#endif /* GCS_FSM_H */
