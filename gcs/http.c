#include "http.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <raft.h>
#include <uv.h>

#include "command.h"
#include "fsm.h"
#include "proxy.h"
#include "pubsub.h"
#include "resp.h"
#include "rglue.h"

#define MAX_REQUEST 8192
#define REQUEST_TIMEOUT_MS 5000
/* A member further behind than this many entries is not ready. */
#define READY_MAX_LAG 10000

typedef struct http_conn http_conn;

struct http_server {
    server *srv;
    uv_tcp_t listener;
    http_conn *conns;
    bool closing;
    int open_handles;
};

struct http_conn {
    http_server *h;
    http_conn *prev, *next;
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_write_t wreq;
    char req[MAX_REQUEST];
    size_t len;
    resp_buf out;
    bool responded;
    int open_handles;
};

static void maybeFree(http_server *h)
{
    if (h->closing && h->open_handles == 0) free(h);
}

static void connHandleClosed(uv_handle_t *handle)
{
    http_conn *c = handle->data;
    if (--c->open_handles > 0) return;
    http_server *h = c->h;
    if (c->prev != NULL) c->prev->next = c->next;
    else h->conns = c->next;
    if (c->next != NULL) c->next->prev = c->prev;
    resp_buf_free(&c->out);
    free(c);
    h->open_handles--;
    maybeFree(h);
}

static void connClose(http_conn *c)
{
    if (uv_is_closing((uv_handle_t *)&c->tcp)) return;
    uv_close((uv_handle_t *)&c->tcp, connHandleClosed);
    uv_close((uv_handle_t *)&c->timer, connHandleClosed);
}

void http_readiness(server *srv, char *out, size_t outlen)
{
    rglue_status st;
    rglue_get_status(srv->raft, &st);
    bool member = false;
    for (size_t i = 0; i < st.n_members; i++) {
        if (st.members[i].id == st.id) {
            member = st.members[i].role != RAFT_SPARE;
        }
    }
    if (srv->raft == NULL) snprintf(out, outlen, "starting");
    else if (st.failed || srv->fsm->failed)
        snprintf(out, outlen, "fail-stopped: %s",
                 srv->fsm->failed ? srv->fsm->failure : st.failure);
    else if (!member)
        snprintf(out, outlen, "not a voter or standby in the configuration "
                              "(joining?)");
    else if (st.leader_id == 0)
        snprintf(out, outlen, "no leader known");
    else if (st.commit_index > srv->fsm->applied_index + READY_MAX_LAG &&
             st.commit_index > st.applied_index + READY_MAX_LAG)
        snprintf(out, outlen, "catching up: applied %" PRIu64
                 " of %" PRIu64, st.applied_index, st.commit_index);
    else out[0] = '\0';
}

/* One gauge or counter with its HELP and TYPE lines. */
static void metric(resp_buf *b, const char *name, const char *type,
                   const char *help, uint64_t value)
{
    resp_add_printf(b, "# HELP %s %s\n# TYPE %s %s\n%s %" PRIu64 "\n", name, help, name,
        type, name, value);
}

/* A latency histogram in seconds from per-bucket counts (the last one above
 * every bound) and bounds in microseconds; Prometheus wants the buckets
 * cumulative. */
static void histogramOf(resp_buf *b, const char *name, const char *help,
                        const uint64_t *counts, const uint64_t *bounds_us,
                        size_t n_bounds, uint64_t n, uint64_t sum_us)
{
    resp_add_printf(b, "# HELP %s %s\n# TYPE %s histogram\n", name, help,
                    name);
    uint64_t cum = 0;
    for (size_t i = 0; i < n_bounds; i++) {
        cum += counts[i];
        resp_add_printf(b, "%s_bucket{le=\"%g\"} %" PRIu64 "\n", name,
                        (double)bounds_us[i] / 1e6, cum);
    }
    resp_add_printf(b, "%s_bucket{le=\"+Inf\"} %" PRIu64 "\n", name, n);
    resp_add_printf(b, "%s_sum %.6f\n%s_count %" PRIu64 "\n", name,
                    (double)sum_us / 1e6, name, n);
}

static void histogram(resp_buf *b, const char *name, const char *help,
                      const rglue_histogram *h)
{
    histogramOf(b, name, help, h->counts, rglue_histogram_bounds_us,
                RGLUE_HIST_BUCKETS, h->n, h->sum_us);
}

static void storageHistogram(resp_buf *b, const char *name, const char *help,
                             const storage_timing *t)
{
    histogramOf(b, name, help, t->counts, storage_timing_bounds_us,
                STORAGE_TIMING_BUCKETS, t->n, t->sum_us);
}

/* gcsd_commands_total for every command called at least once. */
static void commandCounters(server *srv, resp_buf *b)
{
    resp_add_printf(b, "# HELP gcsd_commands_total Commands answered, by "
                       "command name and result (error: an error reply, or "
                       "the connection closed on an unknown outcome).\n"
                       "# TYPE gcsd_commands_total counter\n");
    size_t n = command_count();
    for (size_t i = 0; i < n && i < SERVER_MAX_COMMANDS; i++) {
        const uint64_t *r = srv->command_results[i];
        if (r[0] == 0 && r[1] == 0) continue;
        const char *name = command_at(i)->name;
        resp_add_printf(b, "gcsd_commands_total{command=\"%s\",result=\"ok\"}"
                        " %" PRIu64 "\n", name, r[0]);
        resp_add_printf(b, "gcsd_commands_total{command=\"%s\",result="
                        "\"error\"} %" PRIu64 "\n", name, r[1]);
    }
}

static void metrics(server *srv, resp_buf *b)
{
    rglue_status st;
    rglue_get_status(srv->raft, &st);
    proxy_stats ps;
    proxy_get_stats(srv->proxy, &ps);
    static const char *const roles[] = {"follower", "candidate", "leader",
                                        "unavailable"};
    resp_add_printf(b, "# HELP gcsd_raft_role 1 for this member's current raft role.\n"
           "# TYPE gcsd_raft_role gauge\n");
    for (int r = 0; r < 4; r++) {
        resp_add_printf(b, "gcsd_raft_role{role=\"%s\"} %d\n", roles[r],
            st.role == r + 1);
    }
    metric(b, "gcsd_raft_term", "gauge", "Current raft term.", st.term);
    metric(b, "gcsd_format_max", "gauge",
           "Newest state-machine format this member applies.",
           srv->fsm->format_max);
    metric(b, "gcsd_cluster_format", "gauge",
           "The cluster's state-machine format (replicated).",
           srv->fsm->cluster_format);
    metric(b, "gcsd_raft_leader_id", "gauge",
           "Id of the known leader, 0 when none.", st.leader_id);
    metric(b, "gcsd_raft_commit_index", "gauge", "Raft commit index.",
           st.commit_index);
    metric(b, "gcsd_raft_applied_index", "gauge",
           "Raft index applied to the state.", st.applied_index);
    metric(b, "gcsd_raft_last_index", "gauge", "Last raft log index.",
           st.last_index);
    metric(b, "gcsd_raft_members", "gauge", "Members in the configuration.",
           st.n_members);
    metric(b, "gcsd_raft_failed", "gauge",
           "1 when this member fail-stopped after a local failure.",
           st.failed || srv->fsm->failed);
    metric(b, "gcsd_raft_snapshots_total", "counter", "Snapshots taken.",
           st.snapshots_taken);
    histogram(b, "gcsd_raft_snapshot_duration_seconds",
              "Taking a snapshot: syncing the state store to disk, then "
              "raft writing its snapshot record.", &st.snapshot_take_us);
    metric(b, "gcsd_raft_snapshots_installed_total", "counter",
           "Snapshots received from a leader and installed.",
           st.snapshots_installed);
    histogram(b, "gcsd_raft_snapshot_install_duration_seconds",
              "Installing a leader's snapshot: restoring the state store "
              "from it.", &st.snapshot_install_us);
    metric(b, "gcsd_raft_entries_proposed_total", "counter",
           "Log entries formed by group commit.", st.entries_proposed);
    metric(b, "gcsd_raft_commands_proposed_total", "counter",
           "Commands proposed to the log.", st.commands_proposed);
    metric(b, "gcsd_raft_barriers_total", "counter",
           "Read barriers issued.", st.barriers);
    metric(b, "gcsd_raft_leader_changes_total", "counter",
           "Times this member saw the leader change.", st.leader_changes);
    metric(b, "gcsd_raft_leader_resets_total", "counter",
           "Times this member's connection to the leader was reset and it "
           "stood for election at once.", st.leader_resets);
    histogram(b, "gcsd_raft_commit_duration_seconds",
              "On the leader: log entry formed until applied.", &st.commit_us);
    histogram(b, "gcsd_apply_duration_seconds",
              "Applying one log entry to the state (one LMDB transaction).",
              &srv->fsm->apply_us);
    storage_timing commit_t, sync_t;
    storage_get_timings(srv->fsm->store, &commit_t, &sync_t);
    storageHistogram(b, "gcsd_storage_commit_duration_seconds",
                     "LMDB write-transaction commits (no fsync: raft's "
                     "log carries durability).", &commit_t);
    storageHistogram(b, "gcsd_storage_sync_duration_seconds",
                     "fsyncs of the state store (before each snapshot).",
                     &sync_t);
    metric(b, "gcsd_forwarded_total", "counter",
           "Commands forwarded to the leader.", ps.forwarded);
    metric(b, "gcsd_retried_total", "counter",
           "Attempts repeated after an unknown outcome or no leader.",
           ps.retried);
    metric(b, "gcsd_leader_wait_timeouts_total", "counter",
           "Commands that got -TRYAGAIN after waiting for a leader.",
           ps.timed_out);
    metric(b, "gcsd_waiting_for_leader", "gauge",
           "Commands waiting for a leader now.", ps.waiting);
    metric(b, "gcsd_duplicates_answered_total", "counter",
           "Retried writes answered from the de-duplication table.",
           srv->fsm->duplicates);
    metric(b, "gcsd_commands_processed_total", "counter",
           "Commands received from clients.", srv->stats.commands_processed);
    metric(b, "gcsd_commands_failed_total", "counter",
           "Commands answered with an error.", srv->stats.commands_failed);
    commandCounters(srv, b);
    metric(b, "gcsd_connected_clients", "gauge", "Connected clients.",
           srv->n_clients);
    metric(b, "gcsd_connections_received_total", "counter",
           "Client connections accepted.", srv->stats.connections_received);
    metric(b, "gcsd_net_input_bytes_total", "counter",
           "Bytes read from clients.", srv->stats.net_input_bytes);
    metric(b, "gcsd_net_output_bytes_total", "counter",
           "Bytes written to clients.", srv->stats.net_output_bytes);
    pubsub_stats pst;
    pubsub_get_stats(srv->pubsub, &pst);
    metric(b, "gcsd_pubsub_channels", "gauge",
           "Channels with a subscriber on this member.", pst.channels);
    metric(b, "gcsd_pubsub_patterns", "gauge",
           "Patterns with a subscriber on this member.", pst.patterns);
    metric(b, "gcsd_pubsub_subscribers", "gauge",
           "Clients subscribed to a channel or pattern.", pst.subscribers);
    metric(b, "gcsd_pubsub_watchers", "gauge",
           "GCS.WATCH connections.", pst.watchers);
    metric(b, "gcsd_pubsub_messages_published_total", "counter",
           "PUBLISHed messages applied on this member.",
           pst.messages_published);
    metric(b, "gcsd_pubsub_messages_delivered_total", "counter",
           "Messages queued to subscribers (one per subscriber reached).",
           pst.messages_delivered);
    metric(b, "gcsd_pubsub_watch_events_delivered_total", "counter",
           "Change events queued to GCS.WATCH connections.",
           pst.watch_events_delivered);
    metric(b, "gcsd_pubsub_output_limit_disconnections_total", "counter",
           "Subscribers and watchers disconnected for "
           "--pubsub-output-limit.", pst.output_limit_disconnections);
    metric(b, "gcsd_state_used_bytes", "gauge",
           "Bytes of the state store in use (high-water mark).",
           srv->fsm->space.used_bytes);
    metric(b, "gcsd_state_map_bytes", "gauge",
           "Largest state size (--map-size).", srv->fsm->space.map_size);
    char why[512];
    http_readiness(srv, why, sizeof why);
    metric(b, "gcsd_ready", "gauge", "1 when /readyz answers 200.",
           why[0] == '\0');
}

static void respond(http_conn *c, int status, const char *reason,
                    const char *ctype, const char *body, size_t len)
{
    resp_add_printf(&c->out, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n"
                 "Content-Length: %zu\r\nConnection: close\r\n\r\n",
        status, reason, ctype, len);
    resp_add_raw(&c->out, body, len);
}

static void onWritten(uv_write_t *w, int status)
{
    (void)status;
    connClose(w->data);
}

http_route http_parse_request(const char *req, bool *head_only)
{
    char method[8], path[256];
    *head_only = false;
    /* Both or nothing: on a request line sscanf cannot split, method is
     * never read (it may hold nothing). */
    if (sscanf(req, "%7s %255s", method, path) != 2) return HTTP_BAD_REQUEST;
    if (strcmp(method, "HEAD") == 0) {
        *head_only = true;
    } else if (strcmp(method, "GET") != 0) {
        return HTTP_BAD_METHOD;
    }
    char *q = strchr(path, '?'); /* ?verbose and friends: ignored */
    if (q != NULL) *q = '\0';
    if (strcmp(path, "/livez") == 0 || strcmp(path, "/healthz") == 0) {
        return HTTP_LIVEZ;
    }
    if (strcmp(path, "/readyz") == 0) return HTTP_READYZ;
    if (strcmp(path, "/metrics") == 0) return HTTP_METRICS;
    return HTTP_NOT_FOUND;
}

static void handle(http_conn *c)
{
    server *srv = c->h->srv;
    c->responded = true;
    uv_read_stop((uv_stream_t *)&c->tcp);
    bool head_only;
    switch (http_parse_request(c->req, &head_only)) {
    case HTTP_BAD_REQUEST:
        respond(c, 400, "Bad Request", "text/plain", "bad request\n", 12);
        break;
    case HTTP_BAD_METHOD:
        respond(c, 405, "Method Not Allowed", "text/plain", "GET only\n", 9);
        break;
    case HTTP_LIVEZ:
        respond(c, 200, "OK", "text/plain", "ok\n", 3);
        break;
    case HTTP_READYZ: {
        char why[512], body[600];
        http_readiness(srv, why, sizeof why);
        if (why[0] == '\0') {
            respond(c, 200, "OK", "text/plain", "ok\n", 3);
        } else {
            int n = snprintf(body, sizeof body, "not ready: %s\n", why);
            respond(c, 503, "Service Unavailable", "text/plain", body,
                    (size_t)n < sizeof body ? (size_t)n : sizeof body - 1);
        }
        break;
    }
    case HTTP_METRICS: {
        resp_buf m;
        resp_buf_init(&m);
        metrics(srv, &m);
        respond(c, 200, "OK", "text/plain; version=0.0.4", m.data, m.len);
        resp_buf_free(&m);
        break;
    }
    case HTTP_NOT_FOUND:
        respond(c, 404, "Not Found", "text/plain", "not found\n", 10);
        break;
    }
    if (head_only) {
        /* Headers only. */
        char *end = strstr(c->out.data, "\r\n\r\n");
        if (end != NULL) c->out.len = (size_t)(end + 4 - c->out.data);
    }
    uv_buf_t b = uv_buf_init(c->out.data, (unsigned)c->out.len);
    c->wreq.data = c;
    if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, onWritten) != 0) {
        connClose(c);
    }
}

static void onAlloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    http_conn *c = handle->data;
    (void)suggested;
    size_t room = sizeof c->req - 1 - c->len;
    *buf = uv_buf_init(c->req + c->len, (unsigned)room);
}

static void onRead(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    http_conn *c = s->data;
    (void)buf;
    if (c->responded) return;
    if (n < 0) {
        connClose(c);
        return;
    }
    c->len += (size_t)n;
    c->req[c->len] = '\0';
    if (strstr(c->req, "\r\n\r\n") != NULL || strstr(c->req, "\n\n") != NULL) {
        handle(c);
    } else if (c->len >= sizeof c->req - 1) {
        connClose(c); /* too large */
    }
}

static void onTimeout(uv_timer_t *t)
{
    connClose(t->data);
}

static void onConnection(uv_stream_t *l, int status)
{
    http_server *h = l->data;
    if (status != 0 || h->closing) return;
    http_conn *c = calloc(1, sizeof *c);
    if (c == NULL) return;
    c->h = h;
    resp_buf_init(&c->out);
    uv_tcp_init(l->loop, &c->tcp);
    uv_timer_init(l->loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    c->open_handles = 2;
    h->open_handles++;
    c->next = h->conns;
    if (h->conns != NULL) h->conns->prev = c;
    h->conns = c;
    if (uv_accept(l, (uv_stream_t *)&c->tcp) != 0 ||
        uv_read_start((uv_stream_t *)&c->tcp, onAlloc, onRead) != 0) {
        connClose(c);
        return;
    }
    uv_timer_start(&c->timer, onTimeout, REQUEST_TIMEOUT_MS, 0);
}

static void listenerClosed(uv_handle_t *handle)
{
    http_server *h = handle->data;
    h->open_handles--;
    maybeFree(h);
}

int http_start(server *srv, const char *bind, int port, http_server **out,
               char *err, size_t errlen)
{
    struct sockaddr_storage addr;
    if (uv_ip4_addr(bind, port, (struct sockaddr_in *)&addr) != 0 &&
        uv_ip6_addr(bind, port, (struct sockaddr_in6 *)&addr) != 0) {
        snprintf(err, errlen, "invalid HTTP bind address %s", bind);
        return -1;
    }
    http_server *h = calloc(1, sizeof *h);
    if (h == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    h->srv = srv;
    uv_tcp_init(srv->loop, &h->listener);
    h->listener.data = h;
    h->open_handles = 1;
    int rc = uv_tcp_bind(&h->listener, (const struct sockaddr *)&addr, 0);
    if (rc == 0) {
        rc = uv_listen((uv_stream_t *)&h->listener, 64, onConnection);
    }
    if (rc != 0) {
        snprintf(err, errlen, "cannot listen on %s:%d for HTTP: %s", bind,
                 port, uv_strerror(rc));
        h->closing = true;
        uv_close((uv_handle_t *)&h->listener, listenerClosed);
        return -1;
    }
    *out = h;
    return 0;
}

void http_close(http_server *h)
{
    if (h == NULL || h->closing) return;
    h->closing = true;
    for (http_conn *c = h->conns; c != NULL; c = c->next) connClose(c);
    uv_close((uv_handle_t *)&h->listener, listenerClosed);
}
