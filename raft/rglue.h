/* rglue: gcsd's replicated log, on top of the raft library (raft_uv).
 *
 * Knows nothing of RESP or LMDB. It starts a raft member (bootstrapping the
 * initial configuration on first start only), packs proposed commands into
 * log entries (group commit), hands committed entries to the application's
 * state machine (struct rglue_fsm), routes each command's reply back to its
 * proposer, serves linearizable-read barriers, and turns the library's
 * snapshots into something cheap for a state that already lives on disk.
 *
 * Threads: everything runs on the libuv loop given in the config, except the
 * rglue_fsm sync and dump hooks, which run in libuv's threadpool, possibly
 * while apply runs on the loop. The application must ignore SIGPIPE (raft's
 * connections may be reset by peers).
 */
#ifndef GCS_RGLUE_H
#define GCS_RGLUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#ifndef GCS_API
#define GCS_API __attribute__((visibility("default")))
#endif

#define RGLUE_ERRORS(X)                                                       \
    X(RGLUE_ENOTLEADER, -30801, "not the leader")                            \
    X(RGLUE_EUNKNOWN, -30802, "leadership lost, outcome unknown")            \
    X(RGLUE_ESHUTDOWN, -30803, "shutting down")                              \
    X(RGLUE_EFAILED, -30804, "member failed (disk or state machine error)")  \
    X(RGLUE_ENOMEM, -30805, "out of memory")                                 \
    X(RGLUE_EINVAL, -30806, "invalid argument")                              \
    X(RGLUE_ERAFT, -30807, "raft library error")                             \
    X(RGLUE_ETOOBIG, -30808, "command too large")                            \
    X(RGLUE_ENOSPACE, -30809, "no log space on a majority of members")     \
    X(RGLUE_EBUSY, -30810, "a membership change is already in progress")   \
    X(RGLUE_ENOTFOUND, -30811, "no such member")                           \
    X(RGLUE_ETRANSFER, -30812, "leadership did not move in time")           \
    X(RGLUE_ECATCHUP, -30813, "the new member did not catch up")

enum {
    RGLUE_OK = 0,
#define RGLUE_ERROR_ENUM(name, value, text) name = (value),
    RGLUE_ERRORS(RGLUE_ERROR_ENUM)
#undef RGLUE_ERROR_ENUM
};

GCS_API const char *rglue_strerror(int code);

typedef struct rglue rglue;

/* One command of a committed entry: bytes exactly as proposed. Valid only for
 * the duration of the apply call. */
typedef struct rglue_cmd {
    const void *data;
    size_t len;
} rglue_cmd;

/* Delivers the reply of command @i of the entry being applied to whoever
 * proposed it (a no-op on other members and on replay). @reply is copied or
 * consumed during the call. Call it only after the entry's state change is
 * committed to storage. */
typedef void (*rglue_reply_fn)(void *token, size_t i, const void *reply,
                               size_t len);

/* The application's state machine. All hooks receive @ctx. */
typedef struct rglue_fsm {
    void *ctx;

    /* Apply the @n commands of the committed entry at @index, in order, as one
     * atomic step that also records @index as applied. @time_ms is the
     * leader's wall clock when the entry was formed (Unix ms): the only time
     * apply may use. Must be deterministic. Entries at or below the applied
     * index already stored must be skipped without replies. Returns 0, or
     * non-zero on a local failure (disk full, I/O error): the member then
     * fail-stops (rglue_config.on_fatal). Loop thread. */
    int (*apply)(void *ctx, uint64_t index, int64_t time_ms,
                 const rglue_cmd *cmds, size_t n, rglue_reply_fn reply,
                 void *token);

    /* Index of the last applied entry in durable storage (used at start). */
    uint64_t (*applied_index)(void *ctx);

    /* Make every applied entry durable. Threadpool. */
    int (*sync)(void *ctx);

    /* Serialise the whole current state into a malloc'd buffer (the caller
     * frees it with free()), and report the applied index it reflects.
     * Threadpool. */
    int (*dump)(void *ctx, void **buf, size_t *len, uint64_t *index);

    /* Replace the whole state with a dump made by @dump on some member, unless
     * the local state is already at or past the dump's index. Loop thread. */
    int (*restore)(void *ctx, const void *buf, size_t len);
} rglue_fsm;

typedef struct rglue_peer {
    uint64_t id;         /* >= 1 */
    const char *address; /* "host:port"; host may be a DNS name */
} rglue_peer;

typedef struct rglue_config {
    uv_loop_t *loop;
    uint64_t id;              /* this member's id, >= 1 */
    const char *dir;          /* raft data directory; created if missing */
    const char *address;      /* "host:port" other members reach us at */
    const char *bind_address; /* "host:port" to listen on; NULL: @address */
    /* Initial configuration, bootstrapped on the very first start only (all
     * voters). Empty: a single-voter group of this member. */
    const rglue_peer *peers;
    size_t n_peers;
    /* Never bootstrap: this member waits to be added to a running cluster
     * (rglue_add on its leader). Ignored when the data dir has state. */
    bool join;

    unsigned election_timeout_ms;  /* 0: 1000 */
    unsigned heartbeat_timeout_ms; /* 0: 100 */
    unsigned snapshot_threshold;   /* entries between snapshots; 0: 4096 */
    unsigned snapshot_trailing;    /* entries kept behind one; 0: 8192 */
    size_t max_entry_bytes;        /* group-commit cap per entry; 0: 16 MiB */
    unsigned max_inflight;         /* raft_apply calls in flight; 0: 4 */

    /* Role changed (RGLUE_ROLE_*). Optional. */
    void (*on_role)(void *ctx, int role);
    /* The member stopped serving because of a local failure; @msg says why.
     * Optional. */
    void (*on_fatal)(void *ctx, int code, const char *msg);
    void *cb_ctx;
} rglue_config;

enum { RGLUE_ROLE_FOLLOWER = 1, RGLUE_ROLE_CANDIDATE = 2, RGLUE_ROLE_LEADER = 3,
       RGLUE_ROLE_UNAVAILABLE = 4 };

/* Start a member. The config's strings are copied; @fsm is copied. On success
 * *out is running on cfg->loop and must be stopped with rglue_stop(). On
 * failure @errbuf (if not NULL) says why; RGLUE_EFAILED means the state
 * store is behind what raft's snapshot says was made durable (it lost
 * updates) and the member must not serve. A failure found once raft was
 * initialised (e.g. the port is taken) leaves handles closing on the loop:
 * run the loop before uv_loop_close(). */
GCS_API int rglue_start(const rglue_config *cfg, const rglue_fsm *fsm,
                        rglue **out, char *errbuf, size_t errlen);

/* Stop: pending proposals and reads complete with RGLUE_ESHUTDOWN (or
 * RGLUE_EUNKNOWN for proposals that may already be in the log), raft is
 * closed, and @cb (optional) fires on the loop once every handle is closed and
 * @g is freed. The work starts on the next loop iteration, so this may be
 * called from any rglue callback; no callback fires inside this call. A second
 * call is ignored. */
GCS_API void rglue_stop(rglue *g, void (*cb)(void *arg), void *arg);

/* Called exactly once per accepted proposal: status 0 with the state machine's
 * reply (valid during the call only), or an error with reply NULL:
 * RGLUE_EUNKNOWN: the command was in the log when leadership was lost, the
 *   member stopped or fail-stopped: it may or may not be applied;
 * RGLUE_ENOTLEADER, RGLUE_ESHUTDOWN, RGLUE_EFAILED, RGLUE_ENOMEM,
 *   RGLUE_ENOSPACE: it never reached the log, so it was not applied.
 * A reply is delivered from inside the state machine's apply. */
typedef void (*rglue_done_cb)(void *arg, int status, const void *reply,
                              size_t len);

/* Queue a command for the log; @data is copied. Returns 0 (then @cb will fire,
 * never from inside this call) or an error, such as RGLUE_ENOTLEADER, with no
 * callback. */
GCS_API int rglue_propose(rglue *g, const void *data, size_t len,
                          rglue_done_cb cb, void *arg);

/* True when a read of the local state right now is linearizable without a
 * barrier: a single-voter group whose leader has applied its whole log. */
GCS_API bool rglue_can_read_now(rglue *g);

typedef void (*rglue_read_cb)(void *arg, int status);

/* Wait until a read of the local state is linearizable: on the leader, after a
 * barrier committed after this call (shared by every read queued meanwhile),
 * and after every command proposed before this call is in the log before that
 * barrier. Returns 0 (then @cb fires later, never from inside this call, with
 * 0 or an error: RGLUE_ENOTLEADER, RGLUE_ESHUTDOWN, RGLUE_EFAILED,
 * RGLUE_ENOSPACE) or an error such as RGLUE_ENOTLEADER with no callback. */
GCS_API int rglue_read(rglue *g, rglue_read_cb cb, void *arg);

/* The role (RGLUE_ROLE_*) and the leader's id (0 when unknown). Cheap. */
GCS_API int rglue_role(rglue *g, uint64_t *leader_id);

/* "leader", "follower", "candidate" or "unavailable" (static strings). */
GCS_API const char *rglue_role_name(int role);
/* "voter", "standby" or "spare" for an rglue_member role. */
GCS_API const char *rglue_member_role_name(int role);

/* Number of voters in the current configuration. Cheap. */
GCS_API unsigned rglue_voters(rglue *g);

/* Membership changes and leadership transfer, on the leader only. Each
 * returns 0 (then @cb fires later with 0 or an error) or an error with no
 * callback: RGLUE_ENOTLEADER, RGLUE_EBUSY (another change is in progress),
 * RGLUE_ENOTFOUND, RGLUE_EINVAL. */
typedef void (*rglue_change_cb)(void *arg, int status);

/* Add member @id at raft address @address as a non-voter, let it catch up,
 * then make it a voter. Adding a member that is already a voter at that
 * address succeeds at once (so a joining member may simply retry). */
GCS_API int rglue_add(rglue *g, uint64_t id, const char *address,
                      rglue_change_cb cb, void *arg);

/* Remove member @id from the configuration. */
GCS_API int rglue_remove(rglue *g, uint64_t id, rglue_change_cb cb,
                         void *arg);

/* Hand leadership to voter @id (0: the most up-to-date one). @cb gets 0
 * once another member leads, or RGLUE_ETRANSFER when that did not happen
 * within an election timeout, three times (a timed-out attempt is made
 * again while this member still leads; see rglue.c). */
GCS_API int rglue_transfer(rglue *g, uint64_t id, rglue_change_cb cb,
                           void *arg);

/* Directions of a test-only cut (rglue_cut). */
enum { RGLUE_CUT_SEND = 1, RGLUE_CUT_RECV = 2,
       RGLUE_CUT_BOTH = RGLUE_CUT_SEND | RGLUE_CUT_RECV };

/* Testing only: drop raft traffic to (RGLUE_CUT_SEND) and/or from
 * (RGLUE_CUT_RECV) members @ids, replacing any earlier list (n = 0 heals),
 * as a network partition, or a one-way one, would. */
GCS_API int rglue_cut(rglue *g, const uint64_t *ids, size_t n, unsigned dirs);

/* Testing only: hold every raft message to members @ids for @ms (at most
 * 60000) before sending it, replacing any earlier list; n = 0 or ms = 0
 * sends what waits and heals. */
GCS_API int rglue_delay(rglue *g, const uint64_t *ids, size_t n, unsigned ms);

/* A latency histogram with fixed bucket bounds (microseconds, see
 * rglue_histogram_bounds_us), in the shape Prometheus wants. */
#define RGLUE_HIST_BUCKETS 12
typedef struct rglue_histogram {
    uint64_t counts[RGLUE_HIST_BUCKETS + 1]; /* last: above every bound */
    uint64_t sum_us;
    uint64_t n;
} rglue_histogram;
GCS_API extern const uint64_t rglue_histogram_bounds_us[RGLUE_HIST_BUCKETS];
GCS_API void rglue_histogram_add(rglue_histogram *h, uint64_t us);

typedef struct rglue_member {
    uint64_t id;
    char address[256];
    int role; /* RAFT_VOTER, RAFT_STANDBY or RAFT_SPARE */
    uint64_t match_index; /* known on the leader only, else 0 */
} rglue_member;

typedef struct rglue_status {
    int role;               /* RGLUE_ROLE_* */
    uint64_t id;
    uint64_t term;
    uint64_t leader_id;     /* 0 when unknown */
    char leader_address[256];
    uint64_t commit_index;
    uint64_t applied_index;
    uint64_t last_index;
    uint64_t entries_proposed;  /* log entries formed by group commit */
    uint64_t commands_proposed;
    uint64_t snapshots_taken;
    uint64_t snapshots_installed; /* full dumps received from a leader */
    /* Taking a snapshot: syncing the state store, then raft's put. */
    rglue_histogram snapshot_take_us;
    /* Installing a leader's snapshot: the state machine's restore. */
    rglue_histogram snapshot_install_us;
    uint64_t barriers;
    uint64_t leader_changes;   /* times the known leader changed */
    /* times the connection to the leader was reset (its process died) and
     * this member forgot it at once (fast failover) */
    uint64_t leader_resets;
    rglue_histogram commit_us; /* leader: entry formed -> applied */
    bool failed;            /* fail-stopped */
    char failure[256];
    size_t n_members;
    rglue_member members[16];
} rglue_status;

GCS_API void rglue_get_status(rglue *g, rglue_status *st);

#endif /* GCS_RGLUE_H */
