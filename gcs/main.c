/* gcsd: process entry point. Wires config, state machine, raft member and
 * client server onto one libuv loop, and shuts them down in order. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <uv.h>

#include <hiredis/hiredis.h>
#include <raft.h>

#include "cluster_format.h"
#include "config.h"
#include "fsm.h"
#include "http.h"
#include "log.h"
#include "member_dial.h"
#include "proxy.h"
#include "node_health.h"
#include "pg_wait.h"
#include "pubsub.h"
#include "rglue.h"
#include "server.h"

typedef struct app {
    uv_loop_t loop;
    config cfg;
    fsm state;
    rglue *raft;
    server srv;
    proxy *proxy;
    http_server *http;
    node_health *health;  /* the leader's heartbeat watch */
    format_raiser *raiser; /* the leader raising the cluster format */
    pg_wait *waits;       /* clients blocked in PG.WAIT */
    uv_signal_t sigterm, sigint;
    bool stopping;  /* draining clients (shutdownApp) */
    bool closed;    /* closing the server (closeApp) */
    bool transferring;   /* SIGTERM on a leader: handing leadership over */
    uv_timer_t transfer_timer; /* bounds that wait */
    uv_timer_t announce_timer; /* keeps our entry in the member directory */
    int64_t announced_ms;      /* last announcement sent */
    int exit_code;
    char client_addr[300]; /* what we announce: host:port of our clients */
    char raft_addr[300];
    /* --join: ask a member to add us, from the threadpool, until done. */
    uv_work_t join_work;
    uv_timer_t join_timer;
    bool join_busy, join_done;
    char join_err[1024];
} app;

static int makeDir(const char *path)
{
    if (mkdir(path, 0755) == 0 || errno == EEXIST) return 0;
    fprintf(stderr, "gcsd: cannot create %s: %s\n", path, strerror(errno));
    return -1;
}

static void onRaftStopped(void *arg)
{
    app *a = arg;
    a->raft = NULL;
    /* After raft: its last callbacks hand commands back to the proxy. */
    proxy_close(a->proxy);
    a->proxy = NULL;
    uv_close((uv_handle_t *)&a->sigterm, NULL);
    uv_close((uv_handle_t *)&a->sigint, NULL);
    uv_close((uv_handle_t *)&a->transfer_timer, NULL);
    uv_close((uv_handle_t *)&a->announce_timer, NULL);
    uv_close((uv_handle_t *)&a->join_timer, NULL);
}

/* fsm.on_events is one callback: hand each applied entry's events to every
 * module that wants them. */
static void onEvents(void *ctx, const fsm_event *ev, size_t n)
{
    app *a = ctx;
    if (a->waits != NULL) pg_wait_on_events(a->waits, ev, n);
    if (a->srv.pubsub != NULL) pubsub_on_events(a->srv.pubsub, ev, n);
}

static void onServerClosed(server *srv)
{
    app *a = (app *)((char *)srv - offsetof(app, srv));
    /* Clients are gone: blocked waits only free their slots now. */
    a->state.on_events = NULL;
    pg_wait_close(a->waits);
    a->waits = NULL;
    node_health_close(a->health);
    a->health = NULL;
    format_raiser_close(a->raiser);
    a->raiser = NULL;
    if (a->raft != NULL) rglue_stop(a->raft, onRaftStopped, a);
    else onRaftStopped(a);
}

static void closeApp(app *a)
{
    if (a->closed) return;
    a->closed = true;
    log_notice("shutting down");
    http_close(a->http);
    a->http = NULL;
    server_close(&a->srv, onServerClosed);
}

static void onDrained(server *srv)
{
    closeApp((app *)((char *)srv - offsetof(app, srv)));
}

/* Stop taking requests, answer those already taken, then close. A second
 * signal while draining closes at once. */
static void shutdownApp(app *a)
{
    if (a->closed) return;
    if (a->stopping) {
        closeApp(a);
        return;
    }
    a->stopping = true;
    log_notice("answering what clients already sent, then shutting down");
    /* --shutdown-drain-ms: well within Kubernetes' 30 s grace period by
     * default. */
    server_drain(&a->srv, a->cfg.shutdown_drain_ms, onDrained);
}

static void onTransferTimeout(uv_timer_t *t)
{
    app *a = t->data;
    log_warn("leadership was not handed over in time (no other member "
             "could take it); exiting anyway");
    shutdownApp(a);
}

static void onTransferred(void *arg, int status)
{
    app *a = arg;
    if (a->stopping) return; /* fired by raft's close after the timeout */
    if (status == 0) log_notice("leadership handed over; exiting");
    else log_warn("leadership transfer failed (%s); exiting anyway",
                  rglue_strerror(status));
    shutdownApp(a);
}

static void stopGracefully(app *a);

static void onSignal(uv_signal_t *h, int signum)
{
    app *a = h->data;
    log_notice("received %s", signum == SIGTERM ? "SIGTERM" : "SIGINT");
    stopGracefully(a);
}

static void onShutdownCommand(server *srv)
{
    stopGracefully((app *)((char *)srv - offsetof(app, srv)));
}

static void stopGracefully(app *a)
{
    /* A second signal waits for nothing (transfer, drain). */
    if (a->stopping || a->transferring) {
        closeApp(a);
        return;
    }
    /* A leader hands over first, so the others need not wait an election
     * timeout. */
    if (a->raft != NULL &&
        rglue_role(a->raft, NULL) == RGLUE_ROLE_LEADER &&
        rglue_voters(a->raft) > 1) {
        int rc = rglue_transfer(a->raft, 0, onTransferred, a);
        if (rc == 0) {
            a->transferring = true;
            log_notice("transferring leadership before exit");
            /* raft reports a transfer only once some member leads: with no
             * one able to, exit after two election timeouts. */
            uv_timer_start(&a->transfer_timer, onTransferTimeout,
                           2 * (uint64_t)a->cfg.election_timeout_ms + 500, 0);
            return;
        }
        log_warn("cannot transfer leadership: %s", rglue_strerror(rc));
    }
    shutdownApp(a);
}

static void onAnnounced(void *arg, int status, const void *reply, size_t len)
{
    (void)arg;
    (void)reply;
    (void)len;
    if (status != 0) {
        log_info("announcing this leader's address failed: %s",
                 rglue_strerror(status));
    }
}

/* A new leader records its client address in the replicated member
 * directory, where followers look up where to forward. Followers record
 * theirs too (through the leader), for RAFT.STATUS and gcsctl. */
static void announce(app *a)
{
    a->announced_ms = server_now_ms();
    char id[24];
    snprintf(id, sizeof id, "%" PRIu64, a->cfg.id);
    resp_arg argv[3] = {{"GCS.ANNOUNCE", 12}, {id, strlen(id)},
                        {a->client_addr, strlen(a->client_addr)}};
    void *data;
    size_t len;
    if (fsm_encode_command(0, 3, argv, &data, &len) != 0) return;
    int rc = rglue_propose(a->raft, data, len, onAnnounced, a);
    free(data);
    if (rc != 0) {
        log_info("cannot announce this leader: %s", rglue_strerror(rc));
    }
}

static void onAnnounceTimer(uv_timer_t *t)
{
    app *a = t->data;
    if (a->stopping || a->raft == NULL) return;
    uint64_t leader = 0;
    int role = rglue_role(a->raft, &leader);
    if (leader == 0 || server_now_ms() - a->announced_ms < 5000) return;
    char have[256];
    if (fsm_member_address(&a->state, a->cfg.id, have, sizeof have) != 0 ||
        strcmp(have, a->client_addr) == 0) {
        return;
    }
    if (role == RGLUE_ROLE_LEADER) {
        announce(a);
        return;
    }
    char id[24];
    snprintf(id, sizeof id, "%" PRIu64, a->cfg.id);
    resp_arg argv[3] = {{"GCS.ANNOUNCE", 12}, {id, strlen(id)},
                        {a->client_addr, strlen(a->client_addr)}};
    void *data;
    size_t len;
    a->announced_ms = server_now_ms();
    if (fsm_encode_write(a->srv.origin, ++a->srv.next_request_id, 3, argv,
                         &data, &len) != 0) {
        return;
    }
    proxy_submit(a->proxy, server_slot_detached(&a->srv), PROXY_WRITE,
                 PROXY_RETRY_SAFE, 0, 0, data, len);
}

static void onRole(void *ctx, int role)
{
    app *a = ctx;
    if (a->health != NULL) node_health_role_changed(a->health, role);
    log_notice("raft role is now %s", rglue_role_name(role));
    if (a->raft == NULL) return; /* the first report, inside rglue_start */
    if (role == RGLUE_ROLE_LEADER) announce(a);
    proxy_kick(a->proxy);
}

/* ---- --join: ask a running member to add us ------------------------------ */

/* Threadpool: a blocking hiredis exchange is fine off the loop. */
static void joinWork(uv_work_t *w)
{
    app *a = w->data;
    a->join_err[0] = '\0';
    redisContext *c = member_dial(a->cfg.join, a->cfg.requirepass, 2000,
                                  10000, a->join_err, sizeof a->join_err);
    if (c == NULL) return;
    redisReply *r = redisCommand(c, "RAFT.ADD %" PRIu64 " %s", a->cfg.id, a->raft_addr);
    if (r == NULL) {
        snprintf(a->join_err, sizeof a->join_err, "%s: %s", a->cfg.join,
                 c->errstr);
    } else if (r->type == REDIS_REPLY_ERROR) {
        snprintf(a->join_err, sizeof a->join_err, "%s", r->str);
    }
    if (r != NULL) freeReplyObject(r);
    redisFree(c);
}

static void onJoinTimer(uv_timer_t *t);

static void joinAfter(uv_work_t *w, int status)
{
    app *a = w->data;
    a->join_busy = false;
    if (a->stopping) return;
    if (status == 0 && a->join_err[0] == '\0') {
        a->join_done = true;
        log_notice("joined the cluster through %s", a->cfg.join);
        return;
    }
    log_notice("joining through %s: %s; retrying", a->cfg.join,
               a->join_err[0] ? a->join_err : "cancelled");
    uv_timer_start(&a->join_timer, onJoinTimer, 1000, 0);
}

static void onJoinTimer(uv_timer_t *t)
{
    app *a = t->data;
    if (a->stopping || a->join_busy || a->join_done) return;
    rglue_status st;
    rglue_get_status(a->raft, &st);
    for (size_t i = 0; i < st.n_members; i++) {
        if (st.members[i].id == a->cfg.id && st.members[i].role == RAFT_VOTER) {
            a->join_done = true; /* already a voter (a restart) */
            return;
        }
    }
    a->join_busy = true;
    a->join_work.data = a;
    if (uv_queue_work(&a->loop, &a->join_work, joinWork, joinAfter) != 0) {
        a->join_busy = false;
        uv_timer_start(&a->join_timer, onJoinTimer, 1000, 0);
    }
}

static void onFatal(void *ctx, int code, const char *msg)
{
    (void)ctx;
    log_warn("raft member failed (%s): %s; writes are refused until restart",
             rglue_strerror(code), msg);
}

static bool isWildcard(const char *host)
{
    return strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0 ||
           host[0] == '\0';
}

int main(int argc, char **argv)
{
    static app a; /* large; lives for the whole process */
    int rc = config_load(&a.cfg, argc, argv);
    if (rc == CONFIG_EXIT_OK) return 0;
    if (rc != CONFIG_OK) return 2;
    log_set_level(a.cfg.log_level);
    signal(SIGPIPE, SIG_IGN);

    char stateDir[1100], raftDir[1100], err[512];
    snprintf(stateDir, sizeof stateDir, "%s/state", a.cfg.data_dir);
    snprintf(raftDir, sizeof raftDir, "%s/raft", a.cfg.data_dir);
    if (makeDir(a.cfg.data_dir) != 0 || makeDir(stateDir) != 0 ||
        makeDir(raftDir) != 0) {
        return 1;
    }
    if (fsm_open(&a.state, stateDir, a.cfg.map_size, err, sizeof err) != 0) {
        fprintf(stderr, "gcsd: cannot open the state in %s: %s\n", stateDir,
                err);
        return 1;
    }
    if (a.cfg.test_format_max != 0) a.state.format_max = a.cfg.test_format_max;
    if (a.state.cluster_format > a.state.format_max) {
        /* Its log may hold entries this binary cannot apply. */
        fprintf(stderr, "gcsd: the data in %s is of cluster format %llu; "
                        "this gcsd applies state-machine formats %d to %llu: "
                        "run a gcsd that applies format %llu\n",
                a.cfg.data_dir, (unsigned long long)a.state.cluster_format,
                FSM_FORMAT_MIN, (unsigned long long)a.state.format_max,
                (unsigned long long)a.state.cluster_format);
        fsm_close(&a.state);
        return 1;
    }
    uv_loop_init(&a.loop);
    if (pg_wait_create(&a.loop, &a.waits) != 0) {
        fprintf(stderr, "gcsd: out of memory\n");
        return 1;
    }
    a.state.on_events = onEvents;
    a.state.on_events_ctx = &a;

    /* Raft addresses: what peers dial (advertise) and what we listen on. */
    char raftAddr[300], raftBind[300];
    const char *host = a.cfg.raft_advertise[0] ? a.cfg.raft_advertise
                       : isWildcard(a.cfg.bind) ? "127.0.0.1"
                                                : a.cfg.bind;
    snprintf(raftAddr, sizeof raftAddr, "%s:%d", host, a.cfg.raft_port);
    snprintf(a.client_addr, sizeof a.client_addr, "%s:%d",
             a.cfg.advertise[0] ? a.cfg.advertise : host, a.cfg.port);
    snprintf(raftBind, sizeof raftBind, "%s:%d",
             isWildcard(a.cfg.bind) ? "0.0.0.0" : a.cfg.bind,
             a.cfg.raft_port);
    rglue_peer peers[CONFIG_MAX_PEERS];
    for (size_t i = 0; i < a.cfg.n_peers; i++) {
        peers[i].id = a.cfg.peers[i].id;
        peers[i].address = a.cfg.peers[i].address;
        if (a.cfg.peers[i].id == a.cfg.id) {
            snprintf(raftAddr, sizeof raftAddr, "%s", a.cfg.peers[i].address);
        }
    }
    rglue_config rc_cfg = {
        .loop = &a.loop,
        .id = a.cfg.id,
        .dir = raftDir,
        .address = raftAddr,
        .bind_address = raftBind,
        .peers = peers,
        .n_peers = a.cfg.n_peers,
        .join = a.cfg.join[0] != '\0',
        .election_timeout_ms = a.cfg.election_timeout_ms,
        .heartbeat_timeout_ms = a.cfg.heartbeat_timeout_ms,
        .snapshot_threshold = a.cfg.snapshot_threshold,
        .snapshot_trailing = a.cfg.snapshot_trailing,
        /* A lone voter commits by its own disk write alone: one entry
         * applying while the next is written (rglue forms entries only when
         * the log is not being written, so batches stay full; docs/
         * benchmarks.md). A cluster overlaps replication round trips. */
        .max_inflight = a.cfg.n_peers <= 1 && !a.cfg.join[0] ? 2 : 4,
        .on_role = onRole,
        .on_fatal = onFatal,
        .cb_ctx = &a,
    };
    rglue_fsm hooks;
    fsm_raft_hooks(&a.state, &hooks);
    /* The server's loop hooks start before rglue's, so that libuv (which
     * runs prepare handles newest first) flushes replies after rglue's
     * pump has produced them in the same iteration. Nothing runs before
     * uv_run, so the server never sees a NULL raft. */
    if (server_start(&a.srv, &a.loop, &a.cfg, &a.state, NULL, err,
                     sizeof err) != 0) {
        fprintf(stderr, "gcsd: %s\n", err);
        pg_wait_close(a.waits);
        uv_run(&a.loop, UV_RUN_DEFAULT);
        fsm_close(&a.state);
        return 1;
    }
    a.state.count_receivers = pubsub_count_receivers;
    a.state.count_receivers_ctx = a.srv.pubsub;
    rc = rglue_start(&rc_cfg, &hooks, &a.raft, err, sizeof err);
    if (rc != 0) {
        fprintf(stderr, "gcsd: cannot start the raft member: %s\n", err);
        server_close(&a.srv, NULL);
        pg_wait_close(a.waits);
        uv_run(&a.loop, UV_RUN_DEFAULT);
        fsm_close(&a.state);
        return 1;
    }
    a.srv.raft = a.raft;
    /* Handles that shutdown closes come first, so that any failure below
     * can shut down the normal way. */
    uv_signal_init(&a.loop, &a.sigterm);
    uv_signal_init(&a.loop, &a.sigint);
    a.sigterm.data = a.sigint.data = &a;
    uv_signal_start(&a.sigterm, onSignal, SIGTERM);
    uv_signal_start(&a.sigint, onSignal, SIGINT);
    uv_timer_init(&a.loop, &a.transfer_timer);
    a.transfer_timer.data = &a;
    uv_timer_init(&a.loop, &a.announce_timer);
    a.announce_timer.data = &a;
    uv_timer_init(&a.loop, &a.join_timer);
    a.join_timer.data = &a;
    snprintf(a.raft_addr, sizeof a.raft_addr, "%s", raftAddr);
    if (proxy_start(&a.srv, &a.proxy) != 0) {
        fprintf(stderr, "gcsd: out of memory\n");
        a.exit_code = 1;
        shutdownApp(&a);
    }
    a.srv.proxy = a.proxy;
    a.srv.shutdown_cb = onShutdownCommand;
    /* Request ids: member id on top, a per-start nonce below, so ids
     * never repeat across restarts. */
    uint64_t nonce = ((uint64_t)server_now_ms() << 8) ^ uv_hrtime();
    a.srv.origin = (a.cfg.id << 48) | (nonce & UINT64_C(0xffffffffffff));
    if (rglue_role(a.raft, NULL) == RGLUE_ROLE_LEADER) announce(&a);
    if (a.cfg.http_port != 0 &&
        http_start(&a.srv, isWildcard(a.cfg.bind) ? "0.0.0.0" : a.cfg.bind,
                   a.cfg.http_port, &a.http, err, sizeof err) != 0) {
        /* Probes would fail anyway: better to say so and stop. */
        fprintf(stderr, "gcsd: %s\n", err);
        a.exit_code = 1;
        shutdownApp(&a);
    }
    if (a.cfg.join[0] != '\0') {
        uv_timer_start(&a.join_timer, onJoinTimer, 0, 0);
    }
    uv_timer_start(&a.announce_timer, onAnnounceTimer, 1000, 1000);
    node_health_config hc = {
        .period_ms = a.cfg.health_check_period_ms,
        .failure_threshold = a.cfg.health_check_failure_threshold,
    };
    if (node_health_start(&a.loop, &a.state, a.raft, &hc, &a.health) != 0 ||
        format_raiser_start(&a.loop, &a.srv, &a.raiser) != 0) {
        fprintf(stderr, "gcsd: out of memory\n");
        shutdownApp(&a);
        uv_run(&a.loop, UV_RUN_DEFAULT);
        fsm_close(&a.state);
        return 1;
    }
    a.srv.node_health = a.health;
    a.srv.pg_waits = a.waits;

    log_notice("gcsd ready: clients on %s:%d, raft member %" PRIu64
               " at %s, data in %s", a.cfg.bind, a.cfg.port, a.cfg.id,
               raftAddr, a.cfg.data_dir);
    uv_run(&a.loop, UV_RUN_DEFAULT);

    fsm_close(&a.state);
    rc = uv_loop_close(&a.loop);
    if (rc != 0) log_warn("event loop closed with handles open");
    log_notice("bye");
    return a.exit_code;
}
