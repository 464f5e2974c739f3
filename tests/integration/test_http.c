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
