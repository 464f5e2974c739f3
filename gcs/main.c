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

#include "config.h"
#include "fsm.h"
#include "log.h"
#include "node_health.h"
#include "pg_wait.h"
#include "rglue.h"
#include "server.h"

typedef struct app {
    uv_loop_t loop;
    config cfg;
    fsm state;
    rglue *raft;
    server srv;
    node_health *health;  /* the leader's heartbeat watch */
    pg_wait *waits;       /* clients blocked in PG.WAIT */
    uv_signal_t sigterm, sigint;
    bool stopping;
    int exit_code;
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
    uv_close((uv_handle_t *)&a->sigterm, NULL);
    uv_close((uv_handle_t *)&a->sigint, NULL);
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
    if (a->raft != NULL) rglue_stop(a->raft, onRaftStopped, a);
    else onRaftStopped(a);
}

static void shutdownApp(app *a)
{
    if (a->stopping) return;
    a->stopping = true;
    log_notice("shutting down");
    server_close(&a->srv, onServerClosed);
}

static void onSignal(uv_signal_t *h, int signum)
{
    app *a = h->data;
    log_notice("received %s", signum == SIGTERM ? "SIGTERM" : "SIGINT");
    shutdownApp(a);
}

static void onRole(void *ctx, int role)
{
    app *a = ctx;
    if (a->health != NULL) node_health_role_changed(a->health, role);
    log_notice("raft role is now %s",
               role == RGLUE_ROLE_LEADER      ? "leader"
               : role == RGLUE_ROLE_FOLLOWER  ? "follower"
               : role == RGLUE_ROLE_CANDIDATE ? "candidate"
                                              : "unavailable");
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
    uv_loop_init(&a.loop);
    if (pg_wait_create(&a.loop, &a.waits) != 0) {
        fprintf(stderr, "gcsd: out of memory\n");
        return 1;
    }
    a.state.on_events = pg_wait_on_events;
    a.state.on_events_ctx = a.waits;

    /* Raft addresses: what peers dial (advertise) and what we listen on. */
    char raftAddr[300], raftBind[300];
    const char *host = a.cfg.raft_advertise[0] ? a.cfg.raft_advertise
                       : isWildcard(a.cfg.bind) ? "127.0.0.1"
                                                : a.cfg.bind;
    snprintf(raftAddr, sizeof raftAddr, "%s:%d", host, a.cfg.raft_port);
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
        .election_timeout_ms = a.cfg.election_timeout_ms,
        .heartbeat_timeout_ms = a.cfg.heartbeat_timeout_ms,
        .snapshot_threshold = a.cfg.snapshot_threshold,
        /* A lone voter commits by its own disk write alone: one entry at a
         * time makes the batches fuller and measured faster (docs/
         * benchmarks.md). A cluster overlaps replication round trips. */
        .max_inflight = a.cfg.n_peers <= 1 ? 1 : 4,
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
    node_health_config hc = {
        .period_ms = a.cfg.health_check_period_ms,
        .failure_threshold = a.cfg.health_check_failure_threshold,
    };
    if (node_health_start(&a.loop, &a.state, a.raft, &hc, &a.health) != 0) {
        fprintf(stderr, "gcsd: out of memory\n");
        shutdownApp(&a);
        uv_run(&a.loop, UV_RUN_DEFAULT);
        fsm_close(&a.state);
        return 1;
    }
    a.srv.node_health = a.health;
    a.srv.pg_waits = a.waits;
    uv_signal_init(&a.loop, &a.sigterm);
    uv_signal_init(&a.loop, &a.sigint);
    a.sigterm.data = a.sigint.data = &a;
    uv_signal_start(&a.sigterm, onSignal, SIGTERM);
    uv_signal_start(&a.sigint, onSignal, SIGINT);

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
