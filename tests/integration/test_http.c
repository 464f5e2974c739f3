/* The HTTP health and metrics endpoint (--http-port): /livez, /readyz and
 * /metrics answers, and what it does with requests it does not serve. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

static gcsd_proc srv;
static int httpPort;

static void setup(void)
{
    harness_init(&srv);
    httpPort = harness_free_port();
    snprintf(srv.extra, sizeof srv.extra, "--http-port %d", httpPort);
    harness_start(&srv, 20000);
}

static void teardown(void)
{
    harness_stop(&srv, SIGTERM);
    harness_cleanup(&srv);
}

TestSuite(http, .init = setup, .fini = teardown, .timeout = 60);

/* Send @request raw and return the whole response (malloc'd). */
static char *exchange(const char *request, size_t len)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(fd, 0);
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)httpPort);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    size_t off = 0;
    while (off < len) {
        ssize_t n = send(fd, request + off, len - off, MSG_NOSIGNAL);
        if (n <= 0) break; /* the server may close early: fine */
        off += (size_t)n;
    }
    size_t cap = 1 << 16, used = 0;
    char *out = malloc(cap + 1);
    for (;;) {
        if (used == cap) {
            cap *= 2;
            out = realloc(out, cap + 1);
        }
        ssize_t n = recv(fd, out + used, cap - used, 0);
        if (n <= 0) break;
        used += (size_t)n;
    }
    out[used] = '\0';
    close(fd);
    return out;
}

static char *get(const char *path)
{
    char req[256];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n",
                     path);
    return exchange(req, (size_t)n);
}

Test(http, livez_and_readyz)
{
    char *r = get("/livez");
    cr_assert(strncmp(r, "HTTP/1.1 200 OK\r\n", 17) == 0, "%s", r);
    cr_assert(strstr(r, "\r\n\r\nok\n") != NULL, "%s", r);
    free(r);
    /* A lone voter is ready once it leads, which it does within moments. */
    long long deadline = harness_now_ms() + 10000;
    for (;;) {
        r = get("/readyz");
        if (strncmp(r, "HTTP/1.1 200", 12) == 0) break;
        cr_assert_lt(harness_now_ms(), deadline, "never ready: %s", r);
        free(r);
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    cr_assert(strstr(r, "Content-Length: 3\r\n") != NULL, "%s", r);
    free(r);
}

Test(http, metrics_reflect_the_member)
{
    redisContext *c = harness_connect(&srv);
    for (int i = 0; i < 5; i++) {
        freeReplyObject(harness_cmd(c, "SET k%d v", i));
    }
    freeReplyObject(harness_cmd(c, "GET k0"));
    redisFree(c);
    char *r = get("/metrics");
    cr_assert(strncmp(r, "HTTP/1.1 200 OK\r\n", 17) == 0, "%s", r);
    cr_assert(strstr(r, "text/plain; version=0.0.4") != NULL);
    cr_assert(strstr(r, "\ngcsd_raft_role{role=\"leader\"} 1\n") != NULL, "%s",
              r);
    cr_assert(strstr(r, "\ngcsd_raft_role{role=\"follower\"} 0\n") != NULL);
    cr_assert(strstr(r, "# TYPE gcsd_commands_processed_total counter\n") !=
              NULL);
    cr_assert(strstr(r, "\ngcsd_ready 1\n") != NULL, "%s", r);
    const char *p;
    /* Latency histograms: 5 SETs applied (plus the leader's announcement),
     * each counted once, buckets cumulative up to +Inf. */
    cr_assert(strstr(r, "# TYPE gcsd_apply_duration_seconds histogram\n") !=
              NULL);
    p = strstr(r, "\ngcsd_apply_duration_seconds_count ");
    cr_assert_not_null(p);
    long long applies = atoll(p + strlen("\ngcsd_apply_duration_seconds_count "));
    cr_assert_geq(applies, 1);
    char inf[128];
    snprintf(inf, sizeof inf, "\ngcsd_apply_duration_seconds_bucket{le=\"+Inf\"} "
             "%lld\n", applies);
    cr_assert(strstr(r, inf) != NULL, "%s", r);
    p = strstr(r, "\ngcsd_raft_commit_duration_seconds_count ");
    cr_assert_not_null(p);
    cr_assert_geq(atoll(p + strlen("\ngcsd_raft_commit_duration_seconds_count ")), 1);
    cr_assert(strstr(r, "\ngcsd_raft_leader_changes_total 1\n") != NULL, "%s", r);
    p = strstr(r, "\ngcsd_commands_processed_total ");
    cr_assert_not_null(p);
    long long processed = atoll(p + strlen("\ngcsd_commands_processed_total "));
    cr_assert_geq(processed, 6);
    p = strstr(r, "\ngcsd_raft_applied_index ");
    cr_assert_not_null(p);
    cr_assert_geq(atoll(p + strlen("\ngcsd_raft_applied_index ")), 2);
    /* Body length matches Content-Length. */
    const char *cl = strstr(r, "Content-Length: ");
    const char *body = strstr(r, "\r\n\r\n");
    cr_assert(cl != NULL && body != NULL);
    cr_assert_eq((size_t)atoll(cl + 16), strlen(body + 4));
    free(r);
}

Test(http, other_requests)
{
    char *r = get("/nope");
    cr_assert(strncmp(r, "HTTP/1.1 404", 12) == 0, "%s", r);
    free(r);
    const char post[] = "POST /livez HTTP/1.1\r\n\r\n";
    r = exchange(post, sizeof post - 1);
    cr_assert(strncmp(r, "HTTP/1.1 405", 12) == 0, "%s", r);
    free(r);
    const char head[] = "HEAD /livez HTTP/1.1\r\n\r\n";
    r = exchange(head, sizeof head - 1);
    cr_assert(strncmp(r, "HTTP/1.1 200", 12) == 0, "%s", r);
    cr_assert(strstr(r, "\r\n\r\n")[4] == '\0', "HEAD has no body: %s", r);
    free(r);
    const char junk[] = "\x01\x02\x03 garbage\r\n\r\n";
    r = exchange(junk, sizeof junk - 1);
    cr_assert(strncmp(r, "HTTP/1.1 4", 10) == 0, "%s", r);
    free(r);
    /* Oversized: the connection is dropped without an answer. */
    size_t big = 20000;
    char *huge = malloc(big);
    memset(huge, 'a', big);
    memcpy(huge, "GET /", 5);
    r = exchange(huge, big);
    cr_assert_eq(r[0], '\0');
    free(r);
    free(huge);
    /* The server still serves after all that, HTTP and RESP alike. */
    r = get("/livez");
    cr_assert(strncmp(r, "HTTP/1.1 200", 12) == 0);
    free(r);
    redisContext *c = harness_connect(&srv);
    redisReply *rep = harness_cmd(c, "PING");
    cr_assert_str_eq(rep->str, "PONG");
    freeReplyObject(rep);
    redisFree(c);
}

/* Pub/sub gauges and counters, as INFO stats has them. */
Test(http, metrics_count_pubsub)
{
    redisContext *sub = harness_connect(&srv);
    struct timeval tv = {10, 0};
    redisSetTimeout(sub, tv);
    freeReplyObject(harness_cmd(sub, "SUBSCRIBE ch1"));
    redisReply *r0 = NULL;
    redisAppendCommand(sub, "PSUBSCRIBE p*");
    cr_assert_eq(redisGetReply(sub, (void **)&r0), REDIS_OK);
    freeReplyObject(r0);
    redisContext *c = harness_connect(&srv);
    for (int i = 0; i < 3; i++) {
        redisReply *r = harness_cmd(c, "PUBLISH ch1 m%d", i);
        cr_assert_eq(r->integer, 1);
        freeReplyObject(r);
    }
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(redisGetReply(sub, (void **)&r0), REDIS_OK);
        freeReplyObject(r0);
    }
    char *r = get("/metrics");
    static const char *const want[] = {
        "# TYPE gcsd_pubsub_channels gauge\ngcsd_pubsub_channels 1\n",
        "# TYPE gcsd_pubsub_patterns gauge\ngcsd_pubsub_patterns 1\n",
        "\ngcsd_pubsub_subscribers 1\n",
        "\ngcsd_pubsub_watchers 0\n",
        "# TYPE gcsd_pubsub_messages_published_total counter\n"
        "gcsd_pubsub_messages_published_total 3\n",
        "# TYPE gcsd_pubsub_messages_delivered_total counter\n"
        "gcsd_pubsub_messages_delivered_total 3\n",
        "\ngcsd_pubsub_watch_events_delivered_total 0\n",
        "# TYPE gcsd_pubsub_output_limit_disconnections_total counter\n"
        "gcsd_pubsub_output_limit_disconnections_total 0\n",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        cr_assert(strstr(r, want[i]) != NULL, "missing %s in\n%s", want[i], r);
    }
    free(r);
    redisFree(sub);
    redisFree(c);
}

/* The value of the sample line starting with @series (name and labels) in
 * a /metrics body, -1 when absent. */
static long long sample(const char *body, const char *series)
{
    char pat[256];
    snprintf(pat, sizeof pat, "\n%s ", series);
    const char *p = strstr(body, pat);
    return p == NULL ? -1 : atoll(p + strlen(pat));
}

static long long metricNow(const char *series)
{
    char *r = get("/metrics");
    long long v = sample(r, series);
    free(r);
    return v;
}

#define SET_OK "gcsd_commands_total{command=\"set\",result=\"ok\"}"
#define SET_ERR "gcsd_commands_total{command=\"set\",result=\"error\"}"
#define INCR_OK "gcsd_commands_total{command=\"incr\",result=\"ok\"}"
#define INCR_ERR "gcsd_commands_total{command=\"incr\",result=\"error\"}"
#define GET_OK "gcsd_commands_total{command=\"get\",result=\"ok\"}"

static long long orZero(long long v)
{
    return v < 0 ? 0 : v;
}

Test(http, commands_by_name_and_result)
{
    char *r = get("/metrics");
    cr_assert(strstr(r, "# TYPE gcsd_commands_total counter\n") != NULL);
    long long setOk = orZero(sample(r, SET_OK));
    long long setErr = orZero(sample(r, SET_ERR));
    long long incrOk = orZero(sample(r, INCR_OK));
    long long incrErr = orZero(sample(r, INCR_ERR));
    long long getOk = orZero(sample(r, GET_OK));
    long long commits = sample(r, "gcsd_storage_commit_duration_seconds_count");
    cr_assert_geq(commits, 0, "no commit histogram: %s", r);
    free(r);

    redisContext *c = harness_connect(&srv);
    /* Replies straight to the output buffer (an arity error, a read) and
     * through reply slots (writes; a WRONGTYPE-like error from apply; a read
     * queued behind a write). */
    freeReplyObject(harness_cmd(c, "SET a 1"));
    freeReplyObject(harness_cmd(c, "SET b 2"));
    redisReply *rep = harness_cmd(c, "SET onlykey");
    cr_assert_eq(rep->type, REDIS_REPLY_ERROR);
    freeReplyObject(rep);
    freeReplyObject(harness_cmd(c, "SET s notanumber"));
    rep = harness_cmd(c, "INCR s");
    cr_assert_eq(rep->type, REDIS_REPLY_ERROR, "INCR of a string");
    freeReplyObject(rep);
    rep = harness_cmd(c, "INCR n");
    cr_assert_eq(rep->type, REDIS_REPLY_INTEGER);
    freeReplyObject(rep);
    redisAppendCommand(c, "SET p 1");
    redisAppendCommand(c, "GET p");
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(redisGetReply(c, (void **)&rep), REDIS_OK);
        cr_assert_neq(rep->type, REDIS_REPLY_ERROR);
        freeReplyObject(rep);
    }
    freeReplyObject(harness_cmd(c, "GET a"));
    redisFree(c);

    r = get("/metrics");
    cr_assert_eq(sample(r, SET_OK), setOk + 4, "%s", r);
    cr_assert_eq(sample(r, SET_ERR), setErr + 1, "%s", r);
    cr_assert_eq(sample(r, INCR_OK), incrOk + 1, "%s", r);
    cr_assert_eq(sample(r, INCR_ERR), incrErr + 1, "%s", r);
    cr_assert_eq(sample(r, GET_OK), getOk + 2, "%s", r);
    /* Never called: no series. */
    cr_assert_eq(sample(r, "gcsd_commands_total{command=\"hgetall\","
                           "result=\"ok\"}"), -1);
    /* Every applied write is one LMDB commit: 6 writes (the failed INCR
     * is applied too, as an error reply). */
    cr_assert_geq(sample(r, "gcsd_storage_commit_duration_seconds_count"),
                  commits + 6, "%s", r);
    cr_assert_eq(sample(r, "gcsd_storage_commit_duration_seconds_bucket"
                           "{le=\"+Inf\"}"),
                 sample(r, "gcsd_storage_commit_duration_seconds_count"));
    free(r);
}

/* Snapshots taken on a lone member: counted, timed, and each synced the
 * state store first. */
Test(http, snapshot_metrics)
{
    /* The fixture's member snapshots every 4096 entries: restart it with a
     * small threshold. */
    harness_stop(&srv, SIGTERM);
    snprintf(srv.extra, sizeof srv.extra, "--http-port %d "
             "--snapshot-threshold 64 --snapshot-trailing 32", httpPort);
    harness_start(&srv, 20000);
    long long snaps = metricNow("gcsd_raft_snapshots_total");
    cr_assert_geq(snaps, 0);
    redisContext *c = harness_connect(&srv);
    for (int i = 0; i < 200; i++) {
        redisReply *rep = harness_cmd(c, "INCR n");
        cr_assert_eq(rep->type, REDIS_REPLY_INTEGER);
        freeReplyObject(rep);
    }
    redisFree(c);
    /* A snapshot completes after the entry that triggered it: poll. */
    long long deadline = harness_now_ms() + 10000;
    char *r;
    for (;;) {
        r = get("/metrics");
        if (sample(r, "gcsd_raft_snapshots_total") >= snaps + 2) break;
        cr_assert_lt(harness_now_ms(), deadline, "no snapshots: %s", r);
        free(r);
        harness_poll_pause(20);
    }
    long long taken = sample(r, "gcsd_raft_snapshots_total");
    cr_assert_eq(sample(r, "gcsd_raft_snapshot_duration_seconds_count"),
                 taken, "%s", r);
    cr_assert_geq(sample(r, "gcsd_storage_sync_duration_seconds_count"),
                  taken, "%s", r);
    cr_assert_eq(sample(r, "gcsd_raft_snapshots_installed_total"), 0);
    cr_assert_eq(
        sample(r, "gcsd_raft_snapshot_install_duration_seconds_count"), 0);
    free(r);
}

/* A follower that was down while the leader compacted its log catches up
 * by installing a snapshot, and its /metrics says so. */
static gcsd_cluster cl;

static void clusterTeardown(void)
{
    cluster_cleanup(&cl);
}

TestSuite(http_cluster, .fini = clusterTeardown, .timeout = 90);

Test(http_cluster, snapshot_install_metrics)
{
    cluster_start(&cl, 3, "--snapshot-threshold 64 --snapshot-trailing 32");
    int leader = cluster_wait_leader(&cl, 10000);
    int down = (leader + 1) % 3;
    cluster_kill(&cl, down, SIGKILL);
    redisContext *c = cluster_connect(&cl, leader);
    for (int i = 0; i < 300; i++) {
        redisReply *rep = harness_cmd(c, "INCR n");
        cr_assert_eq(rep->type, REDIS_REPLY_INTEGER, "INCR %d", i);
        freeReplyObject(rep);
    }
    redisFree(c);
    long long target = cluster_status_int(&cl, leader, "applied_index");
    httpPort = harness_free_port();
    size_t len = strlen(cl.m[down].extra);
    snprintf(cl.m[down].extra + len, sizeof cl.m[down].extra - len,
             " --http-port %d", httpPort);
    cluster_restart(&cl, down);
    cluster_wait_applied(&cl, target, 30000);
    char *r = get("/metrics");
    long long installed = sample(r, "gcsd_raft_snapshots_installed_total");
    cr_assert_geq(installed, 1, "%s", r);
    cr_assert_eq(
        sample(r, "gcsd_raft_snapshot_install_duration_seconds_count"),
        installed, "%s", r);
    cr_assert_eq(sample(r, "gcsd_raft_snapshot_install_duration_seconds"
                           "_bucket{le=\"+Inf\"}"), installed);
    free(r);
    cluster_stop_all(&cl);
}
