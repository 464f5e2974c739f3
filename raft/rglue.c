/* rglue: gcsd's replicated log on raft 0.22.1 (legacy raft_io API over
 * raft_uv). See rglue.h for the contract and rglue_int.h for the on-disk
 * formats.
 *
 * Facts of raft 0.22.1 this file relies on (checked in its source):
 * - raft_apply accepts exactly one buffer; its callback fires later, from
 *   raft_uv's prepare/check handles, with 0 or RAFT_LEADERSHIPLOST only
 *   (failed disk writes are retried by raft_uv, never reported).
 * - Inside fsm->apply, raft_last_applied() is the previous index: entries are
 *   applied in order and last_applied is set after apply returns.
 * - A non-zero fsm->apply return leaves last_applied unchanged and raft tries
 *   the same entry again on its next event; so once failed we refuse every
 *   entry, which freezes the state machine (fail-stop).
 * - fsm->snapshot_async (FSM v3) is called synchronously on the loop right
 *   after fsm->snapshot, not in the threadpool. The state-store sync that a
 *   marker snapshot needs is therefore done by wrapping io->snapshot_put
 *   (threadpool) instead, and the FSM is version 2.
 * - fsm->restore owns buf->base on success; on failure during raft_start raft
 *   frees it itself, on failure during InstallSnapshot nobody does.
 * - The snapshot_get callback owns the snapshot, its bufs array, bufs[0].base
 *   (all raft_free) and its configuration. Calling it with an error status
 *   makes raft free uninitialised message fields, so we never do that.
 * - After raft_close, raft_state() may still say leader while the leader state
 *   is freed: nothing here queries raft once it is closing.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "rglue_int.h"

#define DEFAULT_ELECTION_MS 1000u
#define DEFAULT_HEARTBEAT_MS 100u
#define DEFAULT_SNAPSHOT_THRESHOLD 4096u
#define DEFAULT_SNAPSHOT_TRAILING 8192u
#define DEFAULT_MAX_ENTRY_BYTES ((size_t)16 * 1024 * 1024)
#define DEFAULT_MAX_INFLIGHT 4u
/* raft_uv's default segment size, set explicitly so the capacity rule below
 * keeps holding if the library default ever changes. */
#define SEGMENT_SIZE ((size_t)8 * 1024 * 1024)
/* Largest command: its length is a u32 in the entry, and an entry has to fit
 * in memory several times over. */
#define MAX_COMMAND_BYTES ((size_t)1 << 30)

const char *rglue_strerror(int code)
{
    switch (code) {
        case RGLUE_OK:
            return "success";
#define RGLUE_ERROR_CASE(name, value, text) \
    case name:                              \
        return text;
            RGLUE_ERRORS(RGLUE_ERROR_CASE)
#undef RGLUE_ERROR_CASE
        default:
            return "unknown rglue error";
    }
}

/* A command accepted by rglue_propose, waiting for the next flush. */
typedef struct rg_cmd {
    struct rg_cmd *next;
    rglue_done_cb cb;
    void *arg;
    size_t len;
    unsigned char data[];
} rg_cmd;

typedef struct rg_slot {
    rglue_done_cb cb;
    void *arg;
    bool done; /* its callback fired */
} rg_slot;

/* One entry handed to raft_apply, until raft's callback. */
typedef struct rg_batch {
    struct raft_apply req;
    struct rglue *g;
    struct rg_batch *prev, *next; /* in-flight list, in log order */
    uint64_t seq;
    uint64_t formed_ns; /* uv_hrtime when the entry was formed */
    size_t n;
    rg_slot slots[];
} rg_batch;

typedef struct rg_read {
    struct rg_read *next;
    rglue_read_cb cb;
    void *arg;
    uint64_t mark; /* commands accepted before this read */
} rg_read;

/* A local (marker) snapshot waiting for the state store to be synced before
 * raft_uv writes it and may drop log segments. */
typedef struct rg_put {
    uv_work_t work;
    struct rglue *g;
    struct raft_io_snapshot_put inner;
    struct raft_io_snapshot_put *req;
    raft_io_snapshot_put_cb cb;
    const struct raft_snapshot *snapshot;
    unsigned trailing;
    int rc;
    uint64_t start_ns; /* uv_hrtime when raft asked for the put */
} rg_put;

/* An InstallSnapshot held back while a local snapshot is being taken. */
typedef struct rg_parked {
    struct rg_parked *next;
    struct raft_message msg;
    char address[];
} rg_parked;

/* A snapshot loaded for a lagging follower, whose marker payload is being
 * replaced by a full dump. */
typedef struct rg_get {
    struct rg_get *next; /* waiters of one dump */
    struct rglue *g;
    struct raft_io_snapshot_get inner;
    struct raft_io_snapshot_get *req;
    raft_io_snapshot_get_cb cb;
    struct raft_snapshot *snapshot;
} rg_get;

/* One full dump in the threadpool, shared by every snapshot load of the same
 * marker that arrives meanwhile (raft 0.22.1 re-sends InstallSnapshot in
 * bursts, e.g. when a follower reconnects). */
typedef struct rg_dump {
    uv_work_t work;
    struct rglue *g;
    struct rg_dump *next; /* in-flight dumps */
    uint64_t marker_index;
    struct raft_buffer payload; /* raft_malloc'ed, or {NULL, 0} on failure */
    rg_get *waiters;
} rg_dump;

typedef struct rg_change {
    struct raft_change req;
    struct rglue *g;
    uint64_t id;
    bool promote; /* an add whose second step (assign voter) is pending */
    rglue_change_cb cb;
    void *arg;
    int status;             /* for deferred completions */
    struct rg_change *next; /* on g->deferred */
} rg_change;

typedef struct rg_drop {
    struct raft_io_send *req;
    raft_io_send_cb cb;
    struct rg_drop *next;
} rg_drop;

/* A send held back by rglue_delay. raft keeps the message's entries and
 * snapshot data alive until the send's callback; the message itself and the
 * address are copied, since a configuration change may free raft's. */
typedef struct rg_delayed {
    struct raft_io_send *req;
    raft_io_send_cb cb;
    struct raft_message msg;
    uint64_t due_ms;
    struct rg_delayed *next;
    char address[];
} rg_delayed;

struct rglue {
    uv_loop_t *loop;
    struct raft raft;
    struct raft_io io;
    struct raft_fsm rfsm;
    struct rg_transport transport;
    /* raft_uv's methods we wrap, and raft's receive callback. */
    int (*io_start)(struct raft_io *, unsigned, raft_io_tick_cb,
                    raft_io_recv_cb);
    raft_io_recv_cb recv_cb;
    int (*io_send)(struct raft_io *, struct raft_io_send *,
                   const struct raft_message *, raft_io_send_cb);
    int (*io_snapshot_put)(struct raft_io *, unsigned,
                           struct raft_io_snapshot_put *,
                           const struct raft_snapshot *,
                           raft_io_snapshot_put_cb);
    int (*io_snapshot_get)(struct raft_io *, struct raft_io_snapshot_get *,
                           raft_io_snapshot_get_cb);
    int (*io_append)(struct raft_io *, struct raft_io_append *,
                     const struct raft_entry[], unsigned, raft_io_append_cb);
    unsigned appends_writing; /* io->append requests not yet completed */

    uv_prepare_t prepare; /* the pump: runs right before the loop blocks */
    uv_idle_t idle;       /* active only to keep the loop from blocking */
    bool handles_ready;
    bool idle_active;
    int handles_open;

    rglue_fsm fsm;
    void (*on_role)(void *ctx, int role);
    void (*on_fatal)(void *ctx, int code, const char *msg);
    void *cb_ctx;
    size_t max_entry_bytes;
    unsigned max_inflight;

    uint64_t token;
    uint64_t next_seq;

    rg_cmd *q_head, *q_tail;
    uint64_t cmds_accepted; /* ever queued */
    uint64_t cmds_dequeued; /* ever left the queue (proposed or failed) */

    rg_batch *inflight_head, *inflight_tail;
    unsigned n_inflight;

    rg_read *reads_head, *reads_tail; /* waiting for a barrier */
    rg_read *reads_barrier;           /* riding on the barrier in flight */
    struct raft_barrier barrier;
    bool barrier_inflight;

    rglue_cmd *cmdv; /* decode scratch for apply */
    size_t cmdv_cap;

    int role; /* last reported RGLUE_ROLE_*, 0 before the first report */

    bool failed;
    bool fatal_reported;
    char failure[256];

    bool in_start;        /* inside raft_start */
    char start_err[256];  /* why raft_start failed, if we know better */

    bool stop_requested;
    bool raft_closing; /* raft_close called: raft must not be used */
    bool raft_closed;  /* its close callback fired */
    void (*stop_cb)(void *arg);
    void *stop_arg;

    unsigned n_works;   /* our threadpool requests in flight */
    unsigned n_presync; /* of which state-store syncs before a snapshot put */
    rg_put *parked_put; /* a put whose sync failed, completed at close */
    bool local_snapshot_active; /* a marker snapshot put is in progress */
    rg_dump *dumps;             /* full dumps in flight */
    rg_parked *parked_head, *parked_tail;

    uint64_t entries_proposed;
    uint64_t commands_proposed;
    uint64_t snapshots_taken;
    uint64_t snapshots_installed;
    rglue_histogram snapshot_take_us;    /* state sync + raft's put */
    rglue_histogram snapshot_install_us; /* state machine restore */
    uint64_t barriers;
    uint64_t leader_changes;
    uint64_t last_leader;
    rglue_histogram commit_us;
    rg_change *deferred; /* membership requests completed by the pump */
    bool failed_transfer;   /* a failed leader handed leadership over */
    uint64_t cut[16];       /* rglue_cut: members we pretend not to reach */
    struct rg_drop *drops;  /* sends to them, failed by the pump */
    uint64_t delay[16];     /* rglue_delay: members whose sends wait */
    size_t n_delay;
    unsigned delay_ms;
    rg_delayed *delayed_head, *delayed_tail; /* in send order */
    uv_timer_t delay_timer;
    size_t n_cut;
    unsigned cut_dirs;      /* RGLUE_CUT_* of that list */
    /* Fast failover: a reset connection to the leader (its process died)
     * makes this follower forget it and campaign (onPeerLost). */
    uv_timer_t campaign_timer;
    raft_id lost_leader;      /* whose connection was reset */
    unsigned campaign_tries;  /* left before the election timer takes over */
    uint64_t campaign_at;     /* loop time to campaign at (by rank) */
    uint64_t leader_resets;   /* times that happened */
    struct raft_transfer fail_transfer; /* lives as long as raft */
    struct rg_transfer_req *transfer_retry; /* timed out; asked again by the pump */
};

static void pump(rglue *g);
static void retryTransfer(rglue *g);
static void deliverParked(rglue *g);
static void freeParked(rglue *g);

/* ---- small helpers ------------------------------------------------------ */

static void idleCb(uv_idle_t *h)
{
    (void)h; /* exists only so that the loop polls without blocking */
}

/* Make sure the pump runs before the loop next blocks, whatever phase of the
 * loop we are called from. */
static void kick(rglue *g)
{
    if (g->handles_ready && !g->idle_active && !g->raft_closing) {
        g->idle_active = true;
        uv_idle_start(&g->idle, idleCb);
    }
}

static void failStop(rglue *g, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Record a local failure: from now on the member accepts nothing and applies
 * nothing; the pump reports it (on_fatal) and fails pending work. */
static void failStop(rglue *g, const char *fmt, ...)
{
    if (g->failed) return;
    g->failed = true;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g->failure, sizeof g->failure, fmt, ap);
    va_end(ap);
    kick(g);
}

static int roleOf(int state)
{
    switch (state) {
        case RAFT_FOLLOWER:
            return RGLUE_ROLE_FOLLOWER;
        case RAFT_CANDIDATE:
            return RGLUE_ROLE_CANDIDATE;
        case RAFT_LEADER:
            return RGLUE_ROLE_LEADER;
        default:
            return RGLUE_ROLE_UNAVAILABLE;
    }
}

static bool isLeader(rglue *g)
{
    return !g->raft_closing && raft_state(&g->raft) == RAFT_LEADER &&
           raft_transferee(&g->raft) == 0;
}

static int64_t wallClockMs(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t randomToken(void)
{
    uint64_t t = 0;
    if (getrandom(&t, sizeof t, 0) != (ssize_t)sizeof t) {
        int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            if (read(fd, &t, sizeof t) != (ssize_t)sizeof t) t = 0;
            close(fd);
        }
    }
    if (t == 0) {
        /* Last resort; uniqueness only matters across incarnations. */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        t = ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)ts.tv_nsec ^
            ((uint64_t)getpid() << 16);
    }
    return t | 1; /* never 0 */
}

static int mkdirP(const char *dir, char *errbuf, size_t errlen)
{
    size_t len = strlen(dir);
    char *p = malloc(len + 1);
    if (p == NULL) {
        snprintf(errbuf, errlen, "out of memory");
        return RGLUE_ENOMEM;
    }
    memcpy(p, dir, len + 1);
    for (size_t i = 1; i <= len; i++) {
        if (p[i] != '/' && p[i] != '\0') continue;
        char c = p[i];
        p[i] = '\0';
        if (mkdir(p, 0700) != 0 && errno != EEXIST) {
            snprintf(errbuf, errlen, "cannot create data directory %s: %s",
                     p, strerror(errno));
            free(p);
            return RGLUE_EINVAL;
        }
        p[i] = c;
    }
    free(p);
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(errbuf, errlen, "data directory %s is not a directory", dir);
        return RGLUE_EINVAL;
    }
    return 0;
}

/* Complete a detached list of queued commands with @status. */
static void failCmds(rg_cmd *c, int status)
{
    while (c != NULL) {
        rg_cmd *next = c->next;
        if (c->cb != NULL) c->cb(c->arg, status, NULL, 0);
        free(c);
        c = next;
    }
}

static void failQueue(rglue *g, int status)
{
    rg_cmd *c = g->q_head;
    if (c == NULL) return;
    for (rg_cmd *x = c; x != NULL; x = x->next) g->cmds_dequeued++;
    g->q_head = g->q_tail = NULL;
    failCmds(c, status);
}

static void failReads(rg_read *r, int status)
{
    while (r != NULL) {
        rg_read *next = r->next;
        r->cb(r->arg, status);
        free(r);
        r = next;
    }
}

static void failWaitingReads(rglue *g, int status)
{
    rg_read *r = g->reads_head;
    g->reads_head = g->reads_tail = NULL;
    failReads(r, status);
}

/* ---- group commit ------------------------------------------------------- */

static void applyCb(struct raft_apply *req, int status, void *result);
static void maybeBarrier(rglue *g);

/* Complete the callbacks of @b that have not fired yet. */
static void finishSlots(rg_batch *b, int status)
{
    for (size_t i = 0; i < b->n; i++) {
        rg_slot *s = &b->slots[i];
        if (s->done) continue;
        s->done = true;
        if (s->cb != NULL) s->cb(s->arg, status, NULL, 0);
    }
}

static void inflightLink(rglue *g, rg_batch *b)
{
    b->next = NULL;
    b->prev = g->inflight_tail;
    if (g->inflight_tail != NULL) g->inflight_tail->next = b;
    else g->inflight_head = b;
    g->inflight_tail = b;
    g->n_inflight++;
}

static void inflightUnlink(rglue *g, rg_batch *b)
{
    if (b->prev != NULL) b->prev->next = b->next;
    else g->inflight_head = b->next;
    if (b->next != NULL) b->next->prev = b->prev;
    else g->inflight_tail = b->prev;
    g->n_inflight--;
}

/* A sole voter commits an entry by its own log write alone, so it forms
 * entries only while that log is not being written: what queues while one
 * write is on disk goes out as the next entry the moment it completes
 * (ioAppendCb), so that entry's write overlaps the apply of the one before
 * it, and no entry leaves with only the first command that came in after a
 * write started. A leader with followers sends each entry on at once
 * instead: holding it for the local disk would delay their writes. */
static bool holdForLocalWrite(rglue *g)
{
    return g->appends_writing > 0 && rglue_voters(g) == 1;
}

/* Pack queued commands into entries while raft_apply slots are free. */
static void flush(rglue *g)
{
    while (g->q_head != NULL && g->n_inflight < g->max_inflight &&
           !g->stop_requested && !g->failed && isLeader(g) &&
           !holdForLocalWrite(g)) {
        /* As many commands as fit in max_entry_bytes, at least one. */
        size_t n = 0, cmd_bytes = 0;
        for (rg_cmd *c = g->q_head; c != NULL && n < UINT32_MAX; c = c->next) {
            size_t add = RG_CMD_HEADER_LEN + c->len;
            if (n > 0 && RG_ENTRY_HEADER_LEN + cmd_bytes + add >
                             g->max_entry_bytes) {
                break;
            }
            cmd_bytes += add;
            n++;
        }
        size_t size = rg_entry_size(cmd_bytes);
        rg_batch *b = malloc(sizeof *b + n * sizeof b->slots[0]);
        struct raft_buffer buf = {.base = raft_malloc(size), .len = size};
        rg_cmd *take = g->q_head, *c = take;
        for (size_t i = 1; i < n; i++) c = c->next;
        g->q_head = c->next;
        if (g->q_head == NULL) g->q_tail = NULL;
        c->next = NULL;
        g->cmds_dequeued += n;
        if (b == NULL || buf.base == NULL) {
            free(b);
            raft_free(buf.base);
            failCmds(take, RGLUE_ENOMEM);
            continue;
        }
        b->g = g;
        b->seq = g->next_seq++;
        b->formed_ns = uv_hrtime();
        b->n = n;
        rg_entry_header h = {.count = (uint32_t)n,
                             .token = g->token,
                             .seq = b->seq,
                             .time_ms = wallClockMs()};
        unsigned char *p = rg_entry_put_header(buf.base, &h);
        size_t i = 0;
        for (c = take; c != NULL; i++) {
            rg_cmd *next = c->next;
            p = rg_entry_put_cmd(p, c->data, (uint32_t)c->len);
            b->slots[i] = (rg_slot){.cb = c->cb, .arg = c->arg, .done = false};
            free(c);
            c = next;
        }
        rg_entry_put_padding(buf.base, p, size);
        b->req.data = b;
        /* Linked first, so that its replies find it whenever it applies. */
        inflightLink(g, b);
        int rv = raft_apply(&g->raft, &b->req, &buf, 1, applyCb);
        if (rv == 0) {
            g->entries_proposed++;
            g->commands_proposed += n;
            continue;
        }
        inflightUnlink(g, b);
        if (rv == RAFT_NOTLEADER || rv == RAFT_NOSPACE) {
            /* Refused before reaching the log: definitely not applied.
             * NOSPACE: a majority of voters report too little prepared log
             * space (raft_uv's sign of a full disk); later writes may pass. */
            raft_free(buf.base);
            finishSlots(b, rv == RAFT_NOTLEADER ? RGLUE_ENOTLEADER
                                                : RGLUE_ENOSPACE);
        } else {
            /* raft 0.22.1 may have consumed the buffer and started the
             * append before failing (an I/O error): leak it rather than
             * risk a double free, and stop: the log state is unknown. */
            if (rv == RAFT_NOMEM) raft_free(buf.base);
            failStop(g, "raft_apply failed: %s (%s)", raft_strerror(rv),
                     raft_errmsg(&g->raft));
            finishSlots(b, RGLUE_EUNKNOWN);
        }
        free(b);
    }
}

static void applyCb(struct raft_apply *req, int status, void *result)
{
    (void)result;
    rg_batch *b = req->data;
    rglue *g = b->g;
    inflightUnlink(g, b);
    if (status == 0) {
        rglue_histogram_add(&g->commit_us,
                            (uv_hrtime() - b->formed_ns) / 1000);
    }
    if (status == RAFT_IOERR || status == RAFT_NOSPACE) {
        /* The leader's own disk write failed (older libraries report it
         * here): the local log can't be trusted any more. */
        failStop(g, "log write failed: %s", raft_strerror(status));
    }
    /* Status 0: the replies were delivered while the entry was applied; a
     * command still without one was skipped by the state machine, so its
     * outcome is not known here. Otherwise (leadership lost, raft closed) the
     * entry may still commit under another leader. */
    finishSlots(b, RGLUE_EUNKNOWN);
    free(b);
    if (!g->raft_closing) {
        flush(g);
        maybeBarrier(g);
    }
}

/* ---- reads -------------------------------------------------------------- */

static void barrierCb(struct raft_barrier *req, int status)
{
    rglue *g = RG_CONTAINER_OF(req, rglue, barrier);
    g->barrier_inflight = false;
    rg_read *r = g->reads_barrier;
    g->reads_barrier = NULL;
    int st = 0;
    if (status != 0) {
        /* Nothing was applied for a read: retrying elsewhere is safe. */
        st = g->stop_requested ? RGLUE_ESHUTDOWN : RGLUE_ENOTLEADER;
    }
    failReads(r, st);
    if (!g->raft_closing) maybeBarrier(g);
}

/* Issue a barrier for the waiting reads whose earlier writes (accepted before
 * them) are all in the log, if no barrier is in flight. */
static void maybeBarrier(rglue *g)
{
    if (g->barrier_inflight || g->reads_head == NULL || g->failed ||
        g->stop_requested || !isLeader(g)) {
        return;
    }
    if (g->reads_head->mark > g->cmds_dequeued) return;
    rg_read *first = g->reads_head, *last = first;
    while (last->next != NULL && last->next->mark <= g->cmds_dequeued) {
        last = last->next;
    }
    g->reads_head = last->next;
    if (g->reads_head == NULL) g->reads_tail = NULL;
    last->next = NULL;
    int rv = raft_barrier(&g->raft, &g->barrier, barrierCb);
    if (rv == 0) {
        g->barrier_inflight = true;
        g->reads_barrier = first;
        g->barriers++;
        return;
    }
    int st = RGLUE_ENOTLEADER;
    if (rv == RAFT_NOSPACE) {
        st = RGLUE_ENOSPACE;
    } else if (rv != RAFT_NOTLEADER) {
        failStop(g, "raft_barrier failed: %s (%s)", raft_strerror(rv),
                 raft_errmsg(&g->raft));
        st = RGLUE_EFAILED;
    }
    failReads(first, st);
}

/* ---- the pump (uv_prepare) ---------------------------------------------- */

static void raftCloseCb(struct raft *r);
static void completeDeferred(rglue *g);
static void delayFlush(rglue *g, bool all);
static void handleClosed(uv_handle_t *h);

static void maybeFinish(rglue *g)
{
    if (!g->raft_closed || g->handles_open > 0 || g->n_works > 0) return;
    completeDeferred(g);
    void (*cb)(void *) = g->stop_cb;
    void *arg = g->stop_arg;
    free(g->cmdv);
    free(g);
    if (cb != NULL) cb(arg);
}

static void beginClose(rglue *g)
{
    failQueue(g, RGLUE_ESHUTDOWN);
    failWaitingReads(g, RGLUE_ESHUTDOWN);
    /* Let a state-store sync finish its snapshot put on a live raft_uv. */
    if (g->n_presync > 0) return;
    /* Held sends go out (or fail) while raft_uv still takes them. */
    delayFlush(g, true);
    g->raft_closing = true;
    /* Fires the callbacks of in-flight applies and barriers, synchronously. */
    raft_close(&g->raft, raftCloseCb);
    if (g->parked_put != NULL) {
        rg_put *p = g->parked_put;
        g->parked_put = NULL;
        raft_io_snapshot_put_cb cb = p->cb;
        struct raft_io_snapshot_put *req = p->req;
        free(p);
        cb(req, RAFT_CANCELED);
    }
    if (g->handles_ready) {
        g->handles_ready = false;
        uv_idle_stop(&g->idle);
        uv_close((uv_handle_t *)&g->idle, handleClosed);
        uv_close((uv_handle_t *)&g->prepare, handleClosed);
        uv_close((uv_handle_t *)&g->delay_timer, handleClosed);
        uv_close((uv_handle_t *)&g->campaign_timer, handleClosed);
        g->handles_open = 4;
    }
}

static void handleFailure(rglue *g)
{
    if (!g->fatal_reported) {
        g->fatal_reported = true;
        if (g->on_fatal != NULL) {
            g->on_fatal(g->cb_ctx, RGLUE_EFAILED, g->failure);
        }
    }
    failQueue(g, RGLUE_EFAILED);
    failWaitingReads(g, RGLUE_EFAILED);
    /* A failed leader would keep the others from electing one (its
     * heartbeats still go out): hand leadership over, once. */
    if (!g->failed_transfer && isLeader(g) && rglue_voters(g) > 1) {
        g->failed_transfer = true;
        int rv = raft_transfer(&g->raft, &g->fail_transfer, 0, NULL);
        if (rv != 0) {
            g->failed_transfer = false;
        }
    }
    rg_read *r = g->reads_barrier;
    g->reads_barrier = NULL;
    failReads(r, RGLUE_EFAILED);
    /* In-flight entries may still commit on the other members. Their raft
     * requests stay pending until leadership is lost or raft is closed. */
    for (rg_batch *b = g->inflight_head; b != NULL; b = b->next) {
        finishSlots(b, RGLUE_EUNKNOWN);
    }
}

static void completeDeferred(rglue *g)
{
    while (g->drops != NULL && !g->raft_closing) {
        rg_drop *d = g->drops;
        g->drops = d->next;
        d->cb(d->req, RAFT_NOCONNECTION);
        free(d);
    }
    while (g->deferred != NULL) {
        rg_change *ch = g->deferred;
        g->deferred = ch->next;
        ch->cb(ch->arg, ch->status);
        free(ch);
    }
}

static void pump(rglue *g)
{
    completeDeferred(g);
    /* Before flush: a new entry would put the target behind again. */
    retryTransfer(g);
    if (g->raft_closing) return;
    if (g->idle_active) {
        g->idle_active = false;
        uv_idle_stop(&g->idle);
    }
    if (g->stop_requested) {
        beginClose(g);
        return;
    }
    deliverParked(g);
    raft_id leaderId = 0;
    const char *leaderAddr = NULL;
    raft_leader(&g->raft, &leaderId, &leaderAddr);
    if (leaderId != 0 && leaderId != g->last_leader) {
        g->last_leader = leaderId;
        g->leader_changes++;
    }
    int role = roleOf(raft_state(&g->raft));
    if (role != g->role) {
        g->role = role;
        if (g->on_role != NULL) g->on_role(g->cb_ctx, role);
        if (g->raft_closing || g->stop_requested) return;
    }
    if (g->failed) {
        handleFailure(g);
        return;
    }
    if (!isLeader(g)) {
        /* Accepted while leader but never proposed: not applied. */
        failQueue(g, RGLUE_ENOTLEADER);
        failWaitingReads(g, RGLUE_ENOTLEADER);
        return;
    }
    flush(g);
    maybeBarrier(g);
}

/* ---- fast failover ---------------------------------------------------------
 *
 * A leader killed outright leaves its followers' connections to it reset at
 * once, while raft 0.22.1 lets each follower believe in it (and refuse every
 * vote) until its own randomized election timer fires, 1 to 2 election
 * timeouts later. raft_leader_lost() (gcsd's patch to raft) makes a follower
 * forget that leader; the survivors then campaign one after the other, by
 * rank among the voters, CAMPAIGN_STAGGER_MS apart, so that they do not split
 * their votes, the first after CAMPAIGN_BASE_MS, by when the others have
 * seen the reset too and forgotten the leader (else they refuse its vote):
 * the first usually wins within a round trip, and if its log is behind, the
 * next one, which has voted for nobody, wins shortly after.
 * Pre-vote stays on, so a connection reset while the leader is alive deposes
 * nobody: the other voters still follow it and refuse, and its next
 * heartbeat restores our view. */
#define CAMPAIGN_BASE_MS 15 /* for the other survivors to see the reset */
#define CAMPAIGN_STAGGER_MS 60
#define CAMPAIGN_RETRY_MS 20
#define CAMPAIGN_TRIES 10

/* How many voters other than @lost campaign before this member does. */
static unsigned campaignRank(const rglue *g, raft_id lost)
{
    const struct raft_configuration *c = &g->raft.configuration;
    unsigned rank = 0;
    for (unsigned i = 0; i < c->n; i++) {
        const struct raft_server *s = &c->servers[i];
        if (s->role == RAFT_VOTER && s->id != lost && s->id < g->raft.id)
            rank++;
    }
    return rank;
}

/* Runs from the campaign timer, never inside raft_uv's stream callbacks:
 * first forgets the lost leader (so that this member grants votes at once),
 * then, at campaign_at, starts an election. */
static void campaignCb(uv_timer_t *t)
{
    rglue *g = t->data;
    if (g->raft_closing || g->stop_requested) return;
    raft_id leader = 0;
    const char *address = NULL;
    raft_leader(&g->raft, &leader, &address);
    if (raft_state(&g->raft) != RAFT_FOLLOWER) return; /* campaigning */
    if (leader != 0 && leader == g->lost_leader) {
        if (raft_leader_lost(&g->raft, g->lost_leader, false) != 0) return;
        leader = 0;
        kick(g);
    }
    /* A leader is known again: the lost one was alive, or another won. */
    if (leader != 0) return;
    uint64_t now = uv_now(g->loop);
    if (now < g->campaign_at) {
        uv_timer_start(&g->campaign_timer, campaignCb, g->campaign_at - now,
                       0);
        return;
    }
    if (raft_leader_lost(&g->raft, g->lost_leader, true) != 0) return;
    kick(g);
    /* Still a follower: raft held the election back (entries still being
     * persisted, a snapshot being installed); ask again shortly. */
    if (raft_state(&g->raft) == RAFT_FOLLOWER && --g->campaign_tries > 0) {
        uv_timer_start(&g->campaign_timer, campaignCb, CAMPAIGN_RETRY_MS, 0);
    }
}

/* raft_uv saw member @id close or reset our connection to it. */
static void onPeerLost(struct raft_io *io, raft_id id)
{
    rglue *g = RG_CONTAINER_OF(io, rglue, io);
    if (!g->handles_ready || g->raft_closing || g->stop_requested) return;
    raft_id leader = 0;
    const char *address = NULL;
    raft_leader(&g->raft, &leader, &address);
    if (raft_state(&g->raft) != RAFT_FOLLOWER || leader != id) return;
    g->leader_resets++;
    g->lost_leader = id;
    g->campaign_tries = CAMPAIGN_TRIES;
    g->campaign_at = uv_now(g->loop) + CAMPAIGN_BASE_MS +
                     (uint64_t)campaignRank(g, id) * CAMPAIGN_STAGGER_MS;
    uv_timer_start(&g->campaign_timer, campaignCb, 0, 0);
}

static void prepareCb(uv_prepare_t *h)
{
    pump(RG_CONTAINER_OF(h, rglue, prepare));
}

static void handleClosed(uv_handle_t *h)
{
    rglue *g = h->data;
    g->handles_open--;
    maybeFinish(g);
}

static void raftCloseCb(struct raft *r)
{
    rglue *g = RG_CONTAINER_OF(r, rglue, raft);
    g->raft_closed = true;
    freeParked(g);
    raft_uv_close(&g->io);
    rg_transport_release(&g->transport);
    maybeFinish(g);
}

/* ---- FSM adapter -------------------------------------------------------- */

static void replyFn(void *token, size_t i, const void *reply, size_t len)
{
    rg_batch *b = token;
    if (b == NULL || i >= b->n || b->slots[i].done) return;
    rg_slot *s = &b->slots[i];
    s->done = true;
    if (s->cb != NULL) s->cb(s->arg, 0, reply, len);
}

static int fsmApply(struct raft_fsm *rf, const struct raft_buffer *buf,
                    void **result)
{
    rglue *g = rf->data;
    *result = NULL;
    /* A failed member applies nothing more, but tells raft all is well: an
     * error here makes 0.22.1 free the AppendEntries that carried the entry
     * twice. Nothing is lost: the entries stay in the log (no snapshot is
     * taken once failed) and apply after a restart. */
    if (g->failed) return 0;
    /* raft 0.22.1 sets last_applied only after apply returns. */
    uint64_t index = raft_last_applied(&g->raft) + 1;
    rg_entry_header h;
    if (rg_entry_decode_header(buf->base, buf->len, &h) != 0) {
        failStop(g, "log entry %llu was not written by rglue (%zu bytes)",
                 (unsigned long long)index, buf->len);
        return RAFT_MALFORMED;
    }
    if (h.count > g->cmdv_cap) {
        rglue_cmd *v = realloc(g->cmdv, h.count * sizeof *v);
        if (v == NULL) {
            failStop(g, "out of memory applying log entry %llu",
                     (unsigned long long)index);
            return RAFT_NOMEM;
        }
        g->cmdv = v;
        g->cmdv_cap = h.count;
    }
    if (rg_entry_decode_cmds(buf->base, buf->len, &h, g->cmdv) != 0) {
        failStop(g, "log entry %llu is malformed", (unsigned long long)index);
        return RAFT_MALFORMED;
    }
    /* Route replies only to the process that proposed this very batch. */
    rg_batch *b = NULL;
    if (h.token == g->token) {
        for (rg_batch *x = g->inflight_head; x != NULL; x = x->next) {
            if (x->seq == h.seq) {
                b = x;
                break;
            }
        }
    }
    int rc = g->fsm.apply(g->fsm.ctx, index, h.time_ms, g->cmdv, h.count,
                          replyFn, b);
    if (rc != 0) {
        failStop(g, "the state machine failed to apply log entry %llu "
                    "(error %d)",
                 (unsigned long long)index, rc);
    }
    return 0;
}

static int fsmSnapshot(struct raft_fsm *rf, struct raft_buffer *bufs[],
                       unsigned *n_bufs)
{
    rglue *g = rf->data;
    if (g->failed) return RAFT_BUSY;
    struct raft_buffer *b = raft_malloc(sizeof *b);
    if (b == NULL) return RAFT_NOMEM;
    b->base = raft_malloc(RG_MARKER_LEN);
    if (b->base == NULL) {
        raft_free(b);
        return RAFT_NOMEM;
    }
    b->len = RG_MARKER_LEN;
    /* The marker holds the state store's own applied index (the put
     * wrapper syncs the store before writing it), not raft's: entries that
     * never reach the state machine (barriers, configurations) advance
     * raft's index past the store's, and that loses nothing. */
    rg_marker_encode(b->base, g->fsm.applied_index(g->fsm.ctx));
    *bufs = b;
    *n_bufs = 1;
    return 0;
}

static int fsmSnapshotFinalize(struct raft_fsm *rf, struct raft_buffer *bufs[],
                               unsigned *n_bufs)
{
    (void)rf;
    for (unsigned i = 0; i < *n_bufs; i++) raft_free((*bufs)[i].base);
    raft_free(*bufs);
    *bufs = NULL;
    *n_bufs = 0;
    return 0;
}

static int fsmRestore(struct raft_fsm *rf, struct raft_buffer *buf)
{
    rglue *g = rf->data;
    uint64_t marker;
    int rv;
    if (g->failed) {
        /* A fail-stopped member changes nothing any more. */
        if (!g->in_start) raft_free(buf->base);
        return RAFT_IOERR;
    }
    if (rg_marker_decode(buf->base, buf->len, &marker)) {
        uint64_t have = g->fsm.applied_index(g->fsm.ctx);
        if (have >= marker) {
            raft_free(buf->base);
            return 0;
        }
        snprintf(g->start_err, sizeof g->start_err,
                 "the state store is at index %llu but raft's snapshot says "
                 "it was made durable up to %llu: the state store lost "
                 "updates; restore this member's data from a peer",
                 (unsigned long long)have, (unsigned long long)marker);
        rv = RAFT_CORRUPT;
    } else {
        uint64_t t0 = uv_hrtime();
        int rc = g->fsm.restore(g->fsm.ctx, buf->base, buf->len);
        if (rc == 0) {
            raft_free(buf->base);
            if (!g->in_start) {
                g->snapshots_installed++;
                rglue_histogram_add(&g->snapshot_install_us,
                                    (uv_hrtime() - t0) / 1000);
            }
            return 0;
        }
        snprintf(g->start_err, sizeof g->start_err,
                 "the state machine could not restore a %zu-byte snapshot "
                 "(error %d)",
                 buf->len, rc);
        rv = RAFT_IOERR;
    }
    if (!g->in_start) {
        /* InstallSnapshot: nobody else frees the buffer. */
        raft_free(buf->base);
        failStop(g, "%s", g->start_err);
    }
    return rv;
}

/* ---- raft_io wrappers --------------------------------------------------- */

/* Test-only partitions (rglue_cut): traffic to and/or from these members is
 * dropped, as a network partition would. */
static bool isCutOff(rglue *g, uint64_t id, unsigned dir)
{
    if (!(g->cut_dirs & dir)) return false;
    for (size_t i = 0; i < g->n_cut; i++) {
        if (g->cut[i] == id) return true;
    }
    return false;
}

static bool isDelayed(rglue *g, uint64_t id)
{
    for (size_t i = 0; i < g->n_delay; i++) {
        if (g->delay[i] == id) return true;
    }
    return false;
}

static void delayTimerCb(uv_timer_t *t);

/* Hold a send for delay_ms (rglue_delay). Sends keep their order: every one
 * waits the same time. */
static int delaySend(rglue *g, struct raft_io_send *req,
                     const struct raft_message *m, raft_io_send_cb cb)
{
    const char *addr = m->server_address != NULL ? m->server_address : "";
    size_t alen = strlen(addr) + 1;
    rg_delayed *d = malloc(sizeof *d + alen);
    if (d == NULL) return RAFT_NOMEM;
    d->req = req;
    d->cb = cb;
    d->msg = *m;
    memcpy(d->address, addr, alen);
    d->msg.server_address = d->address;
    d->due_ms = uv_now(g->loop) + g->delay_ms;
    d->next = NULL;
    if (g->delayed_tail != NULL) g->delayed_tail->next = d;
    else g->delayed_head = d;
    g->delayed_tail = d;
    if (!uv_is_active((uv_handle_t *)&g->delay_timer)) {
        uv_timer_start(&g->delay_timer, delayTimerCb, g->delay_ms, 0);
    }
    return 0;
}

/* Send the held messages that are due (all of them if @all). */
static void delayFlush(rglue *g, bool all)
{
    uint64_t now = uv_now(g->loop);
    while (g->delayed_head != NULL &&
           (all || g->delayed_head->due_ms <= now)) {
        rg_delayed *d = g->delayed_head;
        g->delayed_head = d->next;
        if (g->delayed_head == NULL) g->delayed_tail = NULL;
        int rv = RAFT_NOCONNECTION;
        if (!g->raft_closing && !isCutOff(g, d->msg.server_id, RGLUE_CUT_SEND)) {
            rv = g->io_send(&g->io, d->req, &d->msg, d->cb);
        }
        if (rv != 0) d->cb(d->req, rv);
        free(d);
    }
    if (g->delayed_head != NULL && !g->raft_closing) {
        uv_timer_start(&g->delay_timer, delayTimerCb,
                       g->delayed_head->due_ms - now, 0);
    }
}

static void delayTimerCb(uv_timer_t *t)
{
    delayFlush(t->data, false);
}

static int ioSend(struct raft_io *io, struct raft_io_send *req,
                  const struct raft_message *m, raft_io_send_cb cb)
{
    rglue *g = RG_CONTAINER_OF(io, rglue, io);
    /* The only sender left once raft is closing is a snapshot load that
     * completed late: make it release its message instead of touching a
     * closing raft_uv. */
    if (g->raft_closing) return RAFT_CANCELED;
    if (isCutOff(g, m->server_id, RGLUE_CUT_SEND)) {
        /* Fail it the way an unreachable peer does: later, through the
         * callback (an error returned here aborts an election in 0.22.1). */
        rg_drop *d = malloc(sizeof *d);
        if (d == NULL) return RAFT_NOMEM;
        d->req = req;
        d->cb = cb;
        d->next = g->drops;
        g->drops = d;
        kick(g);
        return 0;
    }
    /* A marker means nothing to another member: never ship one (a dump that
     * failed leaves it in place; raft retries after its snapshot timeout). */
    if (m->type == RAFT_INSTALL_SNAPSHOT &&
        rg_marker_decode(m->install_snapshot.data.base,
                         m->install_snapshot.data.len, NULL)) {
        return RAFT_IOERR;
    }
    if (isDelayed(g, m->server_id)) return delaySend(g, req, m, cb);
    return g->io_send(io, req, m, cb);
}

/* raft 0.22.1 dereferences NULL when an InstallSnapshot arrives while a
 * local snapshot is being written (legacy.c takeSnapshotCb clears
 * snapshot_pending before reading it). So InstallSnapshot messages are held
 * while our marker put is in progress and delivered by the pump after it. */
static void dropInstall(struct raft_message *m)
{
    raft_configuration_close(&m->install_snapshot.conf);
    raft_free(m->install_snapshot.data.base);
}

/* Hand an InstallSnapshot to raft, unless raft is already installing one from
 * the same leader: 0.22.1 then ignores it without freeing it (a leak of a
 * whole state dump per duplicate). */
static void recvInstall(rglue *g, struct raft_message *m)
{
    if (g->raft.snapshot.installing &&
        m->install_snapshot.term == raft_current_term(&g->raft)) {
        dropInstall(m);
        return;
    }
    g->recv_cb(&g->io, m);
}

/* raft 0.22.1 records a configuration entry received from the leader as
 * uncommitted at the index of the first new entry of its AppendEntries, not
 * at its own (replication.c replicationAppend: membershipUncommittedChange(r,
 * index, entry) inside a loop over the entries). When the entry is applied,
 * replicationApplyConfigurationChange sees another index and drops it: the
 * committed configuration stays the old one, so do the member's later
 * snapshots and the InstallSnapshots it sends as leader, and a member that
 * restarts from them or installs one loses the change (a divergent
 * membership; found by tests/fault). So a configuration entry is only ever
 * accepted as the first entry of a message: the entries from the second
 * configuration entry on are dropped here, the reply acknowledges the rest,
 * and the leader sends the dropped ones again starting with that entry (a
 * pipelined leader finds out through a rejection, one round trip later).
 * The entries share one batch, which raft frees through entries[0]. */
static void trimAtConfiguration(struct raft_message *m)
{
    struct raft_append_entries *a = &m->append_entries;
    for (unsigned k = 1; k < a->n_entries; k++) {
        if (a->entries[k].type == RAFT_CHANGE) {
            a->n_entries = k;
            return;
        }
    }
}

static void ioRecv(struct raft_io *io, struct raft_message *m)
{
    rglue *g = RG_CONTAINER_OF(io, rglue, io);
    if ((g->failed || isCutOff(g, m->server_id, RGLUE_CUT_RECV)) &&
        !g->raft_closing) {
        /* A fail-stopped member takes part in nothing, and 0.22.1 frees an
         * AppendEntries batch twice when a member whose state machine
         * failed (RAFT_UNAVAILABLE) receives one. */
        if (m->type == RAFT_APPEND_ENTRIES) {
            if (m->append_entries.n_entries > 0) {
                raft_free(m->append_entries.entries[0].batch);
                raft_free(m->append_entries.entries);
            }
        } else if (m->type == RAFT_INSTALL_SNAPSHOT) {
            dropInstall(m);
        }
        return;
    }
    if (m->type == RAFT_APPEND_ENTRIES && !g->raft_closing) {
        trimAtConfiguration(m);
    }
    if (m->type != RAFT_INSTALL_SNAPSHOT || g->raft_closing) {
        g->recv_cb(io, m);
        return;
    }
    if (!g->local_snapshot_active) {
        recvInstall(g, m);
        return;
    }
    const char *addr = m->server_address != NULL ? m->server_address : "";
    size_t alen = strlen(addr) + 1;
    rg_parked *p = malloc(sizeof *p + alen);
    if (p == NULL) {
        dropInstall(m); /* the leader resends after its snapshot timeout */
        return;
    }
    p->next = NULL;
    p->msg = *m; /* takes the conf and the payload */
    memcpy(p->address, addr, alen);
    p->msg.server_address = p->address;
    if (g->parked_tail != NULL) g->parked_tail->next = p;
    else g->parked_head = p;
    g->parked_tail = p;
}

static void deliverParked(rglue *g)
{
    while (g->parked_head != NULL && !g->local_snapshot_active &&
           !g->raft_closing && !g->stop_requested) {
        rg_parked *p = g->parked_head;
        g->parked_head = p->next;
        if (g->parked_head == NULL) g->parked_tail = NULL;
        recvInstall(g, &p->msg);
        free(p);
    }
}

static void freeParked(rglue *g)
{
    while (g->parked_head != NULL) {
        rg_parked *p = g->parked_head;
        g->parked_head = p->next;
        dropInstall(&p->msg);
        free(p);
    }
    g->parked_tail = NULL;
}

static int ioStart(struct raft_io *io, unsigned msecs, raft_io_tick_cb tick,
                   raft_io_recv_cb recv)
{
    rglue *g = RG_CONTAINER_OF(io, rglue, io);
    g->recv_cb = recv;
    return g->io_start(io, msecs, tick, ioRecv);
}

static void putDone(rg_put *p, int status)
{
    rglue *g = p->g;
    raft_io_snapshot_put_cb cb = p->cb;
    struct raft_io_snapshot_put *req = p->req;
    free(p);
    g->local_snapshot_active = false;
    cb(req, status);
    if (g->parked_head != NULL) kick(g); /* deliver held InstallSnapshots */
}

static void putCb(struct raft_io_snapshot_put *inner, int status)
{
    rg_put *p = inner->data;
    if (status == 0) {
        p->g->snapshots_taken++;
        rglue_histogram_add(&p->g->snapshot_take_us,
                            (uv_hrtime() - p->start_ns) / 1000);
    }
    putDone(p, status);
}

static void presyncWork(uv_work_t *w)
{
    rg_put *p = RG_CONTAINER_OF(w, rg_put, work);
    p->rc = p->g->fsm.sync(p->g->fsm.ctx);
}

static void presyncAfter(uv_work_t *w, int status)
{
    rg_put *p = RG_CONTAINER_OF(w, rg_put, work);
    rglue *g = p->g;
    g->n_works--;
    g->n_presync--;
    if (status != 0 && p->rc == 0) p->rc = status;
    if (g->raft_closing) {
        /* Only on a failed start: rglue_stop waits for syncs. */
        putDone(p, RAFT_CANCELED);
        maybeFinish(g);
        return;
    }
    if (p->rc != 0) {
        /* The state is not durable up to the snapshot: never let raft record
         * it. The put stays pending (no further snapshots) until close. */
        failStop(g, "syncing the state store before a snapshot failed "
                    "(error %d)",
                 p->rc);
        g->parked_put = p;
    } else {
        int rv = g->io_snapshot_put(&g->io, p->trailing, &p->inner,
                                    p->snapshot, putCb);
        if (rv != 0) putDone(p, rv);
    }
    if (g->stop_requested) kick(g);
}

static bool isMarkerSnapshot(const struct raft_snapshot *s)
{
    return s->n_bufs == 1 &&
           rg_marker_decode(s->bufs[0].base, s->bufs[0].len, NULL);
}

static int ioSnapshotPut(struct raft_io *io, unsigned trailing,
                         struct raft_io_snapshot_put *req,
                         const struct raft_snapshot *snapshot,
                         raft_io_snapshot_put_cb cb)
{
    rglue *g = RG_CONTAINER_OF(io, rglue, io);
    /* Installed snapshots (full dumps) go straight to disk. */
    if (!isMarkerSnapshot(snapshot)) {
        return g->io_snapshot_put(io, trailing, req, snapshot, cb);
    }
    rg_put *p = calloc(1, sizeof *p);
    if (p == NULL) return RAFT_NOMEM;
    p->g = g;
    p->inner.data = p;
    p->req = req;
    p->cb = cb;
    p->snapshot = snapshot;
    p->trailing = trailing;
    p->start_ns = uv_hrtime();
    req->cb = cb;
    if (uv_queue_work(g->loop, &p->work, presyncWork, presyncAfter) != 0) {
        free(p);
        return RAFT_IOERR;
    }
    g->n_works++;
    g->n_presync++;
    g->local_snapshot_active = true;
    return 0;
}

static void getDeliver(rg_get *w, struct raft_snapshot *s)
{
    raft_io_snapshot_get_cb cb = w->cb;
    struct raft_io_snapshot_get *req = w->req;
    free(w);
    cb(req, s, 0);
}

static void dumpWork(uv_work_t *work)
{
    rg_dump *d = RG_CONTAINER_OF(work, rg_dump, work);
    rglue *g = d->g;
    void *data = NULL;
    size_t len = 0;
    uint64_t index = 0;
    int rc = g->fsm.dump(g->fsm.ctx, &data, &len, &index);
    /* A dump older than the snapshot's index would make the follower skip
     * entries it lacks. */
    if (rc == 0 && index >= d->marker_index &&
        !rg_marker_decode(data, len, NULL)) {
        d->payload.base = raft_malloc(len > 0 ? len : 1);
        if (d->payload.base != NULL) {
            if (len > 0) memcpy(d->payload.base, data, len);
            d->payload.len = len;
        }
    }
    free(data);
}

static void dumpAfter(uv_work_t *work, int status)
{
    rg_dump *d = RG_CONTAINER_OF(work, rg_dump, work);
    rglue *g = d->g;
    g->n_works--;
    for (rg_dump **pp = &g->dumps; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == d) {
            *pp = d->next;
            break;
        }
    }
    struct raft_buffer dump = d->payload;
    bool ok = status == 0 && dump.base != NULL && !g->raft_closing;
    rg_get *w = d->waiters;
    free(d);
    bool taken = false;
    while (w != NULL) {
        rg_get *next = w->next;
        struct raft_snapshot *s = w->snapshot;
        struct raft_buffer mine = {NULL, 0};
        if (ok && !taken) {
            mine = dump; /* the first waiter takes the dump itself */
            taken = true;
        } else if (ok) {
            mine.base = raft_malloc(dump.len > 0 ? dump.len : 1);
            if (mine.base != NULL) {
                memcpy(mine.base, dump.base, dump.len);
                mine.len = dump.len;
            }
        }
        if (mine.base != NULL) {
            raft_free(s->bufs[0].base);
            s->bufs[0] = mine; /* the metadata stays the marker's */
        }
        /* Without a dump the marker stays, and ioSend refuses to ship it:
         * raft retries after its install-snapshot timeout. */
        getDeliver(w, s);
        w = next;
    }
    if (!taken) raft_free(dump.base);
    maybeFinish(g);
}

static void snapshotGetCb(struct raft_io_snapshot_get *inner,
                          struct raft_snapshot *s, int status)
{
    rg_get *w = inner->data;
    rglue *g = w->g;
    if (status != 0) {
        /* raft 0.22.1 would free uninitialised fields of its message on an
         * error status: drop the request (a small leak) and let raft retry
         * after its install-snapshot timeout. */
        free(w);
        return;
    }
    if (g->raft_closing || !isMarkerSnapshot(s)) {
        getDeliver(w, s);
        return;
    }
    w->snapshot = s;
    uint64_t marker = 0;
    rg_marker_decode(s->bufs[0].base, s->bufs[0].len, &marker);
    for (rg_dump *d = g->dumps; d != NULL; d = d->next) {
        if (d->marker_index == marker) {
            w->next = d->waiters;
            d->waiters = w;
            return;
        }
    }
    rg_dump *d = calloc(1, sizeof *d);
    if (d == NULL) {
        getDeliver(w, s);
        return;
    }
    d->g = g;
    d->marker_index = marker;
    d->waiters = w;
    w->next = NULL;
    if (uv_queue_work(g->loop, &d->work, dumpWork, dumpAfter) != 0) {
        free(d);
        getDeliver(w, s);
        return;
    }
    d->next = g->dumps;
    g->dumps = d;
    g->n_works++;
}

static int ioSnapshotGet(struct raft_io *io, struct raft_io_snapshot_get *req,
                         raft_io_snapshot_get_cb cb)
{
    rglue *g = RG_CONTAINER_OF(io, rglue, io);
    rg_get *w = calloc(1, sizeof *w);
    if (w == NULL) return RAFT_NOMEM;
    w->g = g;
    w->inner.data = w;
    w->req = req;
    w->cb = cb;
    req->cb = cb;
    int rv = g->io_snapshot_get(io, &w->inner, snapshotGetCb);
    if (rv != 0) free(w);
    return rv;
}

/* An io->append of raft's, with the callback raft gave. */
typedef struct rg_append {
    struct raft_io_append inner;
    rglue *g;
    struct raft_io_append *req;
    raft_io_append_cb cb;
} rg_append;

/* raft_uv calls this as soon as the write is on disk, before raft counts
 * it: the next entry is formed first, so raft_uv starts writing it (it
 * starts queued appends right after these callbacks) while raft applies
 * this one. raft_apply from here is the same re-entry as from applyCb,
 * which raft_uv also runs inside this callback. */
static void ioAppendCb(struct raft_io_append *inner, int status)
{
    rg_append *w = inner->data;
    rglue *g = w->g;
    struct raft_io_append *req = w->req;
    raft_io_append_cb cb = w->cb;
    free(w);
    g->appends_writing--;
    if (status == 0 && !g->raft_closing) flush(g);
    cb(req, status);
}

static int ioAppend(struct raft_io *io, struct raft_io_append *req,
                    const struct raft_entry entries[], unsigned n,
                    raft_io_append_cb cb)
{
    rglue *g = RG_CONTAINER_OF(io, rglue, io);
    rg_append *w = malloc(sizeof *w);
    if (w == NULL) return RAFT_NOMEM;
    w->inner.data = w;
    w->g = g;
    w->req = req;
    w->cb = cb;
    req->cb = cb;
    g->appends_writing++; /* before: the count must hold in the callback */
    int rv = g->io_append(io, &w->inner, entries, n, ioAppendCb);
    if (rv != 0) {
        g->appends_writing--;
        free(w);
    }
    return rv;
}

/* ---- public API --------------------------------------------------------- */

static int checkConfig(const rglue_config *cfg, const rglue_fsm *fsm,
                       char *errbuf, size_t errlen)
{
    if (cfg == NULL || fsm == NULL) {
        snprintf(errbuf, errlen, "missing configuration");
        return RGLUE_EINVAL;
    }
    if (cfg->loop == NULL || cfg->dir == NULL || cfg->dir[0] == '\0' ||
        cfg->address == NULL || cfg->address[0] == '\0') {
        snprintf(errbuf, errlen, "loop, dir and address are required");
        return RGLUE_EINVAL;
    }
    if (cfg->id == 0) {
        snprintf(errbuf, errlen, "member id must be >= 1");
        return RGLUE_EINVAL;
    }
    if (fsm->apply == NULL || fsm->applied_index == NULL ||
        fsm->sync == NULL || fsm->dump == NULL || fsm->restore == NULL) {
        snprintf(errbuf, errlen, "every state machine hook is required");
        return RGLUE_EINVAL;
    }
    unsigned election = cfg->election_timeout_ms ? cfg->election_timeout_ms
                                                 : DEFAULT_ELECTION_MS;
    unsigned heartbeat = cfg->heartbeat_timeout_ms ? cfg->heartbeat_timeout_ms
                                                   : DEFAULT_HEARTBEAT_MS;
    if (heartbeat >= election) {
        snprintf(errbuf, errlen,
                 "heartbeat timeout (%u ms) must be below the election "
                 "timeout (%u ms)",
                 heartbeat, election);
        return RGLUE_EINVAL;
    }
    if (cfg->n_peers > 0) {
        bool self = false;
        if (cfg->peers == NULL) {
            snprintf(errbuf, errlen, "n_peers is set but peers is NULL");
            return RGLUE_EINVAL;
        }
        for (size_t i = 0; i < cfg->n_peers; i++) {
            if (cfg->peers[i].id == 0 || cfg->peers[i].address == NULL) {
                snprintf(errbuf, errlen, "peer %zu has no id or address", i);
                return RGLUE_EINVAL;
            }
            if (cfg->peers[i].id == cfg->id) self = true;
        }
        if (!self) {
            snprintf(errbuf, errlen,
                     "the initial configuration must include this member "
                     "(id %llu)",
                     (unsigned long long)cfg->id);
            return RGLUE_EINVAL;
        }
    }
    return 0;
}

static int bootstrap(rglue *g, const rglue_config *cfg, char *errbuf,
                     size_t errlen)
{
    struct raft_configuration conf;
    raft_configuration_init(&conf);
    int rv = 0;
    if (cfg->n_peers == 0) {
        rv = raft_configuration_add(&conf, cfg->id, cfg->address, RAFT_VOTER);
    }
    for (size_t i = 0; rv == 0 && i < cfg->n_peers; i++) {
        rv = raft_configuration_add(&conf, cfg->peers[i].id,
                                    cfg->peers[i].address, RAFT_VOTER);
    }
    if (rv != 0) {
        snprintf(errbuf, errlen, "invalid initial configuration: %s",
                 raft_strerror(rv));
        raft_configuration_close(&conf);
        return RGLUE_EINVAL;
    }
    rv = raft_bootstrap(&g->raft, &conf);
    raft_configuration_close(&conf);
    /* RAFT_CANTBOOTSTRAP: the data dir is not pristine, i.e. every start
     * after the first one. */
    if (rv != 0 && rv != RAFT_CANTBOOTSTRAP) {
        snprintf(errbuf, errlen, "bootstrap in %s failed: %s (%s)", cfg->dir,
                 raft_strerror(rv), g->io.errmsg);
        return RGLUE_ERAFT;
    }
    return 0;
}

int rglue_start(const rglue_config *cfg, const rglue_fsm *fsm, rglue **out,
                char *errbuf, size_t errlen)
{
    char scratch[1];
    if (errbuf == NULL || errlen == 0) {
        errbuf = scratch;
        errlen = sizeof scratch;
    }
    errbuf[0] = '\0';
    if (out != NULL) *out = NULL;
    int rc = checkConfig(cfg, fsm, errbuf, errlen);
    if (rc != 0) return rc;
    if (out == NULL) {
        snprintf(errbuf, errlen, "out is NULL");
        return RGLUE_EINVAL;
    }

    rglue *g = calloc(1, sizeof *g);
    if (g == NULL) {
        snprintf(errbuf, errlen, "out of memory");
        return RGLUE_ENOMEM;
    }
    g->loop = cfg->loop;
    g->fsm = *fsm;
    g->on_role = cfg->on_role;
    g->on_fatal = cfg->on_fatal;
    g->cb_ctx = cfg->cb_ctx;
    g->max_entry_bytes =
        cfg->max_entry_bytes ? cfg->max_entry_bytes : DEFAULT_MAX_ENTRY_BYTES;
    g->max_inflight = cfg->max_inflight ? cfg->max_inflight
                                        : DEFAULT_MAX_INFLIGHT;
    g->token = randomToken();
    g->next_seq = 1;

    rc = mkdirP(cfg->dir, errbuf, errlen);
    if (rc != 0) goto err_free;

    int rv = rg_transport_init(&g->transport, g->loop, cfg->bind_address,
                               errbuf, errlen);
    if (rv != 0) {
        rc = rv == RAFT_NOMEM ? RGLUE_ENOMEM : RGLUE_EINVAL;
        goto err_free;
    }
    rv = raft_uv_init(&g->io, g->loop, cfg->dir, &g->transport.outer);
    if (rv != 0) {
        snprintf(errbuf, errlen, "raft storage in %s: %s", cfg->dir,
                 g->io.errmsg);
        rc = RGLUE_ERAFT;
        goto err_transport;
    }
    g->io_start = g->io.start;
    g->io_send = g->io.send;
    g->io_snapshot_put = g->io.snapshot_put;
    g->io_snapshot_get = g->io.snapshot_get;
    g->io_append = g->io.append;
    g->io.start = ioStart;
    g->io.append = ioAppend;
    g->io.send = ioSend;
    g->io.snapshot_put = ioSnapshotPut;
    g->io.snapshot_get = ioSnapshotGet;
    raft_uv_set_segment_size(&g->io, SEGMENT_SIZE);
    /* A damaged segment must stop the member, not silently lose entries. */
    raft_uv_set_auto_recovery(&g->io, false);

    g->rfsm.version = 2; /* v3's snapshot_async runs on the loop in 0.22.1 */
    g->rfsm.data = g;
    g->rfsm.apply = fsmApply;
    g->rfsm.snapshot = fsmSnapshot;
    g->rfsm.restore = fsmRestore;
    g->rfsm.snapshot_finalize = fsmSnapshotFinalize;
    g->rfsm.snapshot_async = NULL;

    rv = raft_init(&g->raft, &g->io, &g->rfsm, cfg->id, cfg->address);
    if (rv != 0) {
        snprintf(errbuf, errlen, "raft init in %s: %s", cfg->dir,
                 raft_errmsg(&g->raft));
        rc = rv == RAFT_NOMEM ? RGLUE_ENOMEM : RGLUE_ERAFT;
        goto err_io;
    }
    g->raft.data = g;
    raft_set_election_timeout(&g->raft, cfg->election_timeout_ms
                                            ? cfg->election_timeout_ms
                                            : DEFAULT_ELECTION_MS);
    raft_set_heartbeat_timeout(&g->raft, cfg->heartbeat_timeout_ms
                                             ? cfg->heartbeat_timeout_ms
                                             : DEFAULT_HEARTBEAT_MS);
    raft_set_pre_vote(&g->raft, true);
    raft_set_snapshot_threshold(&g->raft, cfg->snapshot_threshold
                                              ? cfg->snapshot_threshold
                                              : DEFAULT_SNAPSHOT_THRESHOLD);
    raft_set_snapshot_trailing(&g->raft, cfg->snapshot_trailing
                                             ? cfg->snapshot_trailing
                                             : DEFAULT_SNAPSHOT_TRAILING);
    /* The capacity check keeps KiB in an unsigned short that wraps with
     * segments of 32 MiB or more (every apply then fails RAFT_NOSPACE). */
    if (SEGMENT_SIZE >= (size_t)32 * 1024 * 1024) {
        raft_set_capacity_threshold(&g->raft, 0);
    }

    if (!cfg->join) {
        rc = bootstrap(g, cfg, errbuf, errlen);
        if (rc != 0) goto err_raft;
    }

    g->in_start = true;
    rv = raft_start(&g->raft);
    g->in_start = false;
    if (rv != 0) {
        if (g->start_err[0] != '\0') {
            snprintf(errbuf, errlen, "raft start in %s: %s", cfg->dir,
                     g->start_err);
            rc = RGLUE_EFAILED;
        } else {
            /* raft_start doesn't pass on the I/O layer's message when
             * starting it (listening) fails. */
            const char *why = raft_errmsg(&g->raft);
            if (why[0] == '\0') why = g->transport.outer.errmsg;
            if (why[0] == '\0') why = g->io.errmsg;
            snprintf(errbuf, errlen, "raft start in %s: %s (%s)", cfg->dir,
                     raft_strerror(rv), why);
            rc = RGLUE_ERAFT;
        }
        goto err_raft;
    }

    uv_prepare_init(g->loop, &g->prepare);
    uv_idle_init(g->loop, &g->idle);
    uv_timer_init(g->loop, &g->delay_timer);
    uv_timer_init(g->loop, &g->campaign_timer);
    g->prepare.data = g;
    g->idle.data = g;
    g->delay_timer.data = g;
    g->campaign_timer.data = g;
    raft_uv_set_peer_lost_cb(&g->io, onPeerLost);
    uv_prepare_start(&g->prepare, prepareCb);
    g->handles_ready = true;
    kick(g); /* first pump: report the role, fail-stop found in start */
    *out = g;
    return 0;

err_raft:
    /* raft_init created raft_uv's handles: closing is asynchronous and
     * frees @g once done (the caller's loop must run). */
    g->raft_closing = true;
    raft_close(&g->raft, raftCloseCb);
    return rc;
err_io:
    raft_uv_close(&g->io);
err_transport:
    rg_transport_release(&g->transport);
err_free:
    free(g);
    return rc;
}

void rglue_stop(rglue *g, void (*cb)(void *arg), void *arg)
{
    if (g == NULL || g->stop_requested) return;
    g->stop_requested = true;
    g->stop_cb = cb;
    g->stop_arg = arg;
    /* The work happens in the pump, never inside a raft callback. */
    kick(g);
}

int rglue_propose(rglue *g, const void *data, size_t len, rglue_done_cb cb,
                  void *arg)
{
    if (g == NULL || (data == NULL && len > 0)) return RGLUE_EINVAL;
    if (g->stop_requested || g->raft_closing) return RGLUE_ESHUTDOWN;
    if (g->failed) return RGLUE_EFAILED;
    if (!isLeader(g)) return RGLUE_ENOTLEADER;
    if (len > MAX_COMMAND_BYTES) return RGLUE_ETOOBIG;
    rg_cmd *c = malloc(sizeof *c + len);
    if (c == NULL) return RGLUE_ENOMEM;
    c->next = NULL;
    c->cb = cb;
    c->arg = arg;
    c->len = len;
    if (len > 0) memcpy(c->data, data, len);
    if (g->q_tail != NULL) g->q_tail->next = c;
    else g->q_head = c;
    g->q_tail = c;
    g->cmds_accepted++;
    kick(g);
    return 0;
}

bool rglue_can_read_now(rglue *g)
{
    if (g == NULL || g->failed || g->stop_requested || g->raft_closing) {
        return false;
    }
    struct raft *r = &g->raft;
    /* Accepted writes not yet in the log come before any later read. */
    if (g->q_head != NULL || !isLeader(g)) return false;
    unsigned voters = 0;
    bool self = false;
    for (unsigned i = 0; i < r->configuration.n; i++) {
        const struct raft_server *s = &r->configuration.servers[i];
        if (s->role != RAFT_VOTER) continue;
        voters++;
        if (s->id == r->id) self = true;
    }
    /* A sole voter can't be deposed; having applied its whole log (config
     * changes included) it has nothing left to learn. */
    return voters == 1 && self && raft_last_applied(r) == raft_last_index(r);
}

int rglue_read(rglue *g, rglue_read_cb cb, void *arg)
{
    if (g == NULL || cb == NULL) return RGLUE_EINVAL;
    if (g->stop_requested || g->raft_closing) return RGLUE_ESHUTDOWN;
    if (g->failed) return RGLUE_EFAILED;
    if (!isLeader(g)) return RGLUE_ENOTLEADER;
    rg_read *r = malloc(sizeof *r);
    if (r == NULL) return RGLUE_ENOMEM;
    r->next = NULL;
    r->cb = cb;
    r->arg = arg;
    r->mark = g->cmds_accepted;
    if (g->reads_tail != NULL) g->reads_tail->next = r;
    else g->reads_head = r;
    g->reads_tail = r;
    kick(g);
    return 0;
}

void rglue_get_status(rglue *g, rglue_status *st)
{
    if (st == NULL) return;
    memset(st, 0, sizeof *st);
    if (g == NULL) return;
    st->entries_proposed = g->entries_proposed;
    st->commands_proposed = g->commands_proposed;
    st->snapshots_taken = g->snapshots_taken;
    st->snapshots_installed = g->snapshots_installed;
    st->snapshot_take_us = g->snapshot_take_us;
    st->snapshot_install_us = g->snapshot_install_us;
    st->barriers = g->barriers;
    st->leader_changes = g->leader_changes;
    st->leader_resets = g->leader_resets;
    st->commit_us = g->commit_us;
    st->failed = g->failed;
    snprintf(st->failure, sizeof st->failure, "%s", g->failure);
    if (g->raft_closing) {
        st->role = RGLUE_ROLE_UNAVAILABLE;
        return;
    }
    struct raft *r = &g->raft;
    st->role = roleOf(raft_state(r));
    st->id = r->id;
    st->term = raft_current_term(r);
    raft_id leader = 0;
    const char *address = NULL;
    raft_leader(r, &leader, &address);
    st->leader_id = leader;
    if (address != NULL) {
        snprintf(st->leader_address, sizeof st->leader_address, "%s", address);
    }
    st->commit_index = raft_commit_index(r);
    st->applied_index = raft_last_applied(r);
    st->last_index = raft_last_index(r);
    bool leading = raft_state(r) == RAFT_LEADER;
    size_t cap = sizeof st->members / sizeof st->members[0];
    for (unsigned i = 0; i < r->configuration.n && st->n_members < cap; i++) {
        const struct raft_server *s = &r->configuration.servers[i];
        rglue_member *m = &st->members[st->n_members++];
        m->id = s->id;
        snprintf(m->address, sizeof m->address, "%s",
                 s->address != NULL ? s->address : "");
        m->role = s->role;
        raft_index match = 0;
        if (leading && raft_match_index(r, s->id, &match) == 0) {
            m->match_index = match;
        }
    }
}

/* ---- membership and leadership ------------------------------------------ */

int rglue_role(rglue *g, uint64_t *leader_id)
{
    if (leader_id != NULL) *leader_id = 0;
    if (g == NULL || g->raft_closing) return RGLUE_ROLE_UNAVAILABLE;
    raft_id leader = 0;
    const char *address = NULL;
    raft_leader(&g->raft, &leader, &address);
    if (leader_id != NULL) *leader_id = leader;
    return roleOf(raft_state(&g->raft));
}


static int fromRaftChange(int rv)
{
    switch (rv) {
        case 0: return 0;
        case RAFT_NOTLEADER:
        case RAFT_LEADERSHIPLOST: return RGLUE_ENOTLEADER;
        case RAFT_CANTCHANGE: return RGLUE_EBUSY;
        case RAFT_BADID:
        case RAFT_NOTFOUND: return RGLUE_ENOTFOUND;
        case RAFT_NOMEM: return RGLUE_ENOMEM;
        case RAFT_DUPLICATEID:
        case RAFT_DUPLICATEADDRESS:
        case RAFT_BADROLE: return RGLUE_EINVAL;
        case RAFT_SHUTDOWN: return RGLUE_ESHUTDOWN;
        /* Raft's only use of it in a change: the promotion's catch-up was
         * aborted (the new member unresponsive, or rounds too slow). */
        case RAFT_NOCONNECTION: return RGLUE_ECATCHUP;
        default: return RGLUE_ERAFT;
    }
}

static int changeable(rglue *g)
{
    if (g == NULL) return RGLUE_EINVAL;
    if (g->stop_requested || g->raft_closing) return RGLUE_ESHUTDOWN;
    if (g->failed) return RGLUE_EFAILED;
    if (!isLeader(g)) return RGLUE_ENOTLEADER;
    return 0;
}

static const struct raft_server *findServer(rglue *g, uint64_t id)
{
    const struct raft_configuration *c = &g->raft.configuration;
    for (unsigned i = 0; i < c->n; i++) {
        if (c->servers[i].id == id) return &c->servers[i];
    }
    return NULL;
}

/* Complete @ch from the pump, not from inside the caller's call. */
static void deferDone(rg_change *ch, int status)
{
    ch->status = status;
    ch->next = ch->g->deferred;
    ch->g->deferred = ch;
    kick(ch->g);
}

static rg_change *newChange(rglue *g, uint64_t id, rglue_change_cb cb,
                            void *arg)
{
    rg_change *ch = calloc(1, sizeof *ch);
    if (ch != NULL) {
        ch->g = g;
        ch->id = id;
        ch->cb = cb;
        ch->arg = arg;
    }
    return ch;
}

static void changeCb(struct raft_change *req, int status)
{
    rg_change *ch = RG_CONTAINER_OF(req, rg_change, req);
    rglue *g = ch->g;
    if (status == 0 && ch->promote) {
        /* Added as a spare: now promote. raft makes a voter only after it
         * has caught up (its catch-up rounds), so it never stalls commits. */
        ch->promote = false;
        int rv = raft_assign(&g->raft, &ch->req, ch->id, RAFT_VOTER,
                             changeCb);
        if (rv == 0) return;
        status = rv;
    }
    int rc = fromRaftChange(status);
    ch->cb(ch->arg, rc);
    free(ch);
}

int rglue_add(rglue *g, uint64_t id, const char *address, rglue_change_cb cb,
              void *arg)
{
    int rc = changeable(g);
    if (rc != 0) return rc;
    if (id == 0 || address == NULL || address[0] == '\0' || cb == NULL) {
        return RGLUE_EINVAL;
    }
    const struct raft_server *s = findServer(g, id);
    if (s != NULL && strcmp(s->address, address) != 0) return RGLUE_EINVAL;
    rg_change *ch = newChange(g, id, cb, arg);
    if (ch == NULL) return RGLUE_ENOMEM;
    int rv;
    if (s == NULL) {
        ch->promote = true;
        rv = raft_add(&g->raft, &ch->req, id, address, changeCb);
    } else if (s->role != RAFT_VOTER) {
        rv = raft_assign(&g->raft, &ch->req, id, RAFT_VOTER, changeCb);
    } else {
        /* Already a voter there: done (a joining member retries). The
         * callback must not fire inside this call. */
        deferDone(ch, 0);
        return 0;
    }
    if (rv != 0) {
        free(ch);
        return fromRaftChange(rv);
    }
    return 0;
}

int rglue_remove(rglue *g, uint64_t id, rglue_change_cb cb, void *arg)
{
    int rc = changeable(g);
    if (rc != 0) return rc;
    if (id == 0 || cb == NULL) return RGLUE_EINVAL;
    if (findServer(g, id) == NULL) return RGLUE_ENOTFOUND;
    rg_change *ch = newChange(g, id, cb, arg);
    if (ch == NULL) return RGLUE_ENOMEM;
    int rv = raft_remove(&g->raft, &ch->req, id, changeCb);
    if (rv != 0) {
        free(ch);
        return fromRaftChange(rv);
    }
    return 0;
}

const char *rglue_role_name(int role)
{
    switch (role) {
        case RGLUE_ROLE_LEADER: return "leader";
        case RGLUE_ROLE_FOLLOWER: return "follower";
        case RGLUE_ROLE_CANDIDATE: return "candidate";
        default: return "unavailable";
    }
}

const char *rglue_member_role_name(int role)
{
    switch (role) {
        case RAFT_VOTER: return "voter";
        case RAFT_STANDBY: return "standby";
        default: return "spare";
    }
}

unsigned rglue_voters(rglue *g)
{
    if (g == NULL || g->raft_closing) return 0;
    const struct raft_configuration *c = &g->raft.configuration;
    unsigned n = 0;
    for (unsigned i = 0; i < c->n; i++) {
        if (c->servers[i].role == RAFT_VOTER) n++;
    }
    return n;
}

/* Attempts at one transfer, each up to an election timeout. raft 0.22.1
 * sends TimeoutNow on the first append result that raises the target's
 * match index, whether or not it reached the leader's last index
 * (replicationUpdate compares the match index with the index the target
 * itself reported); a target still behind, or still persisting, ignores it
 * (recvTimeoutNow), and it is never sent again: under write load the
 * transfer times out with the leader unchanged. The leader appends nothing
 * while a transfer is pending, so by then the target has caught up and a
 * second attempt, made before new entries are proposed, moves leadership. */
#define RG_TRANSFER_ATTEMPTS 3

typedef struct rg_transfer_req {
    struct raft_transfer req;
    rglue *g;
    uint64_t id; /* as asked: 0 lets raft choose */
    unsigned attempts;
    rglue_change_cb cb;
    void *arg;
} rg_transfer_req;

static void transferCb(struct raft_transfer *req)
{
    rg_transfer_req *t = RG_CONTAINER_OF(req, rg_transfer_req, req);
    rglue *g = t->g;
    uint64_t leader = 0;
    int role = rglue_role(g, &leader);
    bool moved = role != RGLUE_ROLE_LEADER && leader != 0 &&
                 leader != g->raft.id;
    if (!moved && role == RGLUE_ROLE_LEADER &&
        t->attempts < RG_TRANSFER_ATTEMPTS && !g->raft_closing &&
        !g->stop_requested && !g->failed && g->transfer_retry == NULL) {
        /* Not from inside raft's callback: the pump asks again. */
        g->transfer_retry = t;
        kick(g);
        return;
    }
    t->cb(t->arg, moved ? 0 : RGLUE_ETRANSFER);
    free(t);
}

/* Ask again for a transfer that timed out (transferCb), or answer it when
 * this member can no longer hand over. */
static void retryTransfer(rglue *g)
{
    rg_transfer_req *t = g->transfer_retry;
    if (t == NULL) return;
    g->transfer_retry = NULL;
    int rc = RGLUE_ETRANSFER;
    if (!g->raft_closing && !g->stop_requested && !g->failed && isLeader(g)) {
        t->attempts++;
        int rv = raft_transfer(&g->raft, &t->req, t->id, transferCb);
        if (rv == 0) return;
        rc = fromRaftChange(rv);
    }
    t->cb(t->arg, rc);
    free(t);
}

int rglue_transfer(rglue *g, uint64_t id, rglue_change_cb cb, void *arg)
{
    int rc = changeable(g);
    if (rc != 0) return rc;
    if (cb == NULL) return RGLUE_EINVAL;
    rg_transfer_req *t = calloc(1, sizeof *t);
    if (t == NULL) return RGLUE_ENOMEM;
    t->g = g;
    t->id = id;
    t->attempts = 1;
    t->cb = cb;
    t->arg = arg;
    int rv = raft_transfer(&g->raft, &t->req, id, transferCb);
    if (rv != 0) {
        free(t);
        return fromRaftChange(rv);
    }
    return 0;
}

int rglue_cut(rglue *g, const uint64_t *ids, size_t n, unsigned dirs)
{
    if (g == NULL || n > sizeof g->cut / sizeof g->cut[0] ||
        (n > 0 && ids == NULL) || (dirs & ~(unsigned)RGLUE_CUT_BOTH) != 0) {
        return RGLUE_EINVAL;
    }
    for (size_t i = 0; i < n; i++) g->cut[i] = ids[i];
    g->n_cut = n;
    g->cut_dirs = dirs;
    return 0;
}

int rglue_delay(rglue *g, const uint64_t *ids, size_t n, unsigned ms)
{
    if (g == NULL || n > sizeof g->delay / sizeof g->delay[0] ||
        (n > 0 && ids == NULL) || ms > 60000) {
        return RGLUE_EINVAL;
    }
    for (size_t i = 0; i < n; i++) g->delay[i] = ids[i];
    g->n_delay = ms > 0 ? n : 0;
    g->delay_ms = ms;
    /* What waits under the old setting goes now: a later send must not
     * overtake it. */
    if (g->n_delay == 0) delayFlush(g, true);
    return 0;
}

const uint64_t rglue_histogram_bounds_us[RGLUE_HIST_BUCKETS] = {
    100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000,
    1000000};

void rglue_histogram_add(rglue_histogram *h, uint64_t us)
{
    size_t i = 0;
    while (i < RGLUE_HIST_BUCKETS && us > rglue_histogram_bounds_us[i]) i++;
    h->counts[i]++;
    h->sum_us += us;
    h->n++;
}
