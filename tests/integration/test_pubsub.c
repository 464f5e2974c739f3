/* Pub/sub against real gcsd processes: Redis 7's reply shapes byte for byte,
 * redis-cli and hiredis subscribers, delivery from every member of a cluster
 * in one order, 1,000 subscribers, and a slow subscriber cut off while a
 * fast one keeps up. */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "expect.h"
#include "gcs.pb-c.h"
#include "harness.h"

static int rawConnect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    return fd;
}

static void rawSend(int fd, const char *s)
{
    cr_assert_eq(write(fd, s, strlen(s)), (ssize_t)strlen(s));
}

/* Read until @want arrived (or more), the peer closes or 5 s pass, then
 * compare. */
static void rawExpect(int fd, const char *want)
{
    char buf[8192];
    size_t len = 0, n = strlen(want);
    cr_assert_lt(n, sizeof buf);
    long long deadline = harness_now_ms() + 5000;
    while (len < n) {
        long long left = deadline - harness_now_ms();
        if (left <= 0) break;
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, (int)left) <= 0) break;
        ssize_t r = read(fd, buf + len, n - len);
        if (r <= 0) break;
        len += (size_t)r;
    }
    buf[len] = '\0';
    cr_assert_str_eq(buf, want);
}

/* ---- single member -------------------------------------------------------- */

HARNESS_SERVER_SUITE(pubsub, "--pubsub-output-limit 1mb --watch-progress-ms 200",
                     120);

/* The exchange below was recorded from redis-server 7.0.15. */
Test(pubsub, reply_shapes_match_redis)
{
    int s = rawConnect(srv.port);
    redisContext *p = harness_connect(&srv);
    rawSend(s, "*1\r\n$11\r\nunsubscribe\r\n*1\r\n$12\r\npunsubscribe\r\n");
    rawExpect(s, "*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:0\r\n"
                 "*3\r\n$12\r\npunsubscribe\r\n$-1\r\n:0\r\n");
    rawSend(s, "*4\r\n$9\r\nsubscribe\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\na\r\n"
               "*3\r\n$10\r\npsubscribe\r\n$2\r\nh*\r\n$1\r\na\r\n"
               "*1\r\n$4\r\nping\r\n*2\r\n$4\r\nping\r\n$1\r\nx\r\n"
               "*2\r\n$3\r\nget\r\n$1\r\nk\r\n");
    rawExpect(s, "*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n"
                 "*3\r\n$9\r\nsubscribe\r\n$1\r\nb\r\n:2\r\n"
                 "*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:2\r\n"
                 "*3\r\n$10\r\npsubscribe\r\n$2\r\nh*\r\n:3\r\n"
                 "*3\r\n$10\r\npsubscribe\r\n$1\r\na\r\n:4\r\n"
                 "*2\r\n$4\r\npong\r\n$0\r\n\r\n"
                 "*2\r\n$4\r\npong\r\n$1\r\nx\r\n"
                 "-ERR Can't execute 'get': only (P|S)SUBSCRIBE / "
                 "(P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this "
                 "context\r\n");
    EXPECT_INT(p, 2, "PUBLISH a hello");
    EXPECT_INT(p, 1, "PUBLISH hx w");
    EXPECT_INT(p, 0, "PUBLISH nobody x");
    rawExpect(s, "*3\r\n$7\r\nmessage\r\n$1\r\na\r\n$5\r\nhello\r\n"
                 "*4\r\n$8\r\npmessage\r\n$1\r\na\r\n$1\r\na\r\n$5\r\nhello\r\n"
                 "*4\r\n$8\r\npmessage\r\n$2\r\nh*\r\n$2\r\nhx\r\n$1\r\nw\r\n");
    redisReply *r = harness_cmd(p, "PUBSUB NUMSUB a b c");
    cr_assert_eq(r->type, REDIS_REPLY_ARRAY);
    cr_assert_eq(r->elements, 6);
    cr_assert_eq(r->element[1]->integer, 1);
    cr_assert_eq(r->element[3]->integer, 1);
    cr_assert_eq(r->element[5]->integer, 0);
    freeReplyObject(r);
    EXPECT_INT(p, 2, "PUBSUB NUMPAT");
    r = harness_cmd(p, "PUBSUB CHANNELS");
    cr_assert_eq(r->elements, 2);
    freeReplyObject(r);
    r = harness_cmd(p, "PUBSUB CHANNELS b*");
    cr_assert_eq(r->elements, 1);
    cr_assert_str_eq(r->element[0]->str, "b");
    freeReplyObject(r);
    EXPECT_ERROR(p, "ERR unknown subcommand 'foo'. Try PUBSUB HELP.",
                 "PUBSUB foo");
    rawSend(s, "*3\r\n$11\r\nunsubscribe\r\n$1\r\nb\r\n$2\r\nzz\r\n"
               "*1\r\n$12\r\npunsubscribe\r\n*1\r\n$11\r\nunsubscribe\r\n"
               "*1\r\n$4\r\nping\r\n"
               "*2\r\n$9\r\nsubscribe\r\n$1\r\nq\r\n*1\r\n$5\r\nreset\r\n"
               "*1\r\n$4\r\nping\r\n");
    rawExpect(s, "*3\r\n$11\r\nunsubscribe\r\n$1\r\nb\r\n:3\r\n"
                 "*3\r\n$11\r\nunsubscribe\r\n$2\r\nzz\r\n:3\r\n"
                 "*3\r\n$12\r\npunsubscribe\r\n$2\r\nh*\r\n:2\r\n"
                 "*3\r\n$12\r\npunsubscribe\r\n$1\r\na\r\n:1\r\n"
                 "*3\r\n$11\r\nunsubscribe\r\n$1\r\na\r\n:0\r\n"
                 "+PONG\r\n"
                 "*3\r\n$9\r\nsubscribe\r\n$1\r\nq\r\n:1\r\n"
                 "+RESET\r\n+PONG\r\n");
    EXPECT_INT(p, 0, "PUBSUB NUMPAT");
    close(s);
    redisFree(p);
}

static void expectMessage(redisContext *c, const char *channel,
                          const char *msg)
{
    redisReply *r = NULL;
    cr_assert_eq(redisGetReply(c, (void **)&r), REDIS_OK, "%s", c->errstr);
    cr_assert_eq(r->type, REDIS_REPLY_ARRAY);
    cr_assert_eq(r->elements, 3);
    cr_assert_str_eq(r->element[0]->str, "message");
    cr_assert_str_eq(r->element[1]->str, channel);
    cr_assert_str_eq(r->element[2]->str, msg);
    freeReplyObject(r);
}

static redisContext *subscriber(const gcsd_proc *p, const char *channel)
{
    redisContext *c = harness_connect(p);
    struct timeval tv = {10, 0};
    redisSetTimeout(c, tv);
    redisReply *r = redisCommand(c, "SUBSCRIBE %s", channel);
    cr_assert_not_null(r, "%s", c->errstr);
    cr_assert_eq(r->type, REDIS_REPLY_ARRAY);
    cr_assert_str_eq(r->element[0]->str, "subscribe");
    freeReplyObject(r);
    return c;
}

/* Field @field of INFO @section as a number (fails when absent). */
static long long infoNumber(redisContext *c, const char *section,
                            const char *field)
{
    redisReply *r = harness_cmd(c, "INFO %s", section);
    cr_assert_eq(r->type, REDIS_REPLY_STRING);
    char want[128];
    snprintf(want, sizeof want, "\r\n%s:", field);
    const char *at = strstr(r->str, want);
    cr_assert_not_null(at, "INFO %s lacks %s", section, field);
    long long v = atoll(at + strlen(want));
    freeReplyObject(r);
    return v;
}

/* redis-cli and redis-py (/usr/bin/python3: the python3 first on PATH may
 * lack the redis module) subscribed to one channel print the same
 * messages, in the same order. */
/* Poll PUBSUB NUMSUB @channel until it is @want (10 s at most). */
static void waitNumsub(redisContext *c, const char *channel, long long want,
                       const char *what)
{
    long long deadline = harness_now_ms() + 10000;
    for (;;) {
        redisReply *r = harness_cmd(c, "PUBSUB NUMSUB %s", channel);
        long long n = r->element[1]->integer;
        freeReplyObject(r);
        if (n == want) return;
        cr_assert_lt(harness_now_ms(), deadline, "%s", what);
        harness_poll_pause(10);
    }
}

Test(pubsub, redis_cli_and_redis_py_agree)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "timeout 10 redis-cli -p %d SUBSCRIBE news",
             srv.port);
    FILE *cli = popen(cmd, "r");
    cr_assert_not_null(cli);
    snprintf(cmd, sizeof cmd,
             "timeout 10 /usr/bin/python3 -c '\n"
             "import redis\n"
             "p = redis.Redis(port=%d).pubsub()\n"
             "p.subscribe(\"news\")\n"
             "n = 0\n"
             "for m in p.listen():\n"
             "    if m[\"type\"] == \"message\":\n"
             "        print(m[\"channel\"].decode())\n"
             "        print(m[\"data\"].decode(), flush=True)\n"
             "        n += 1\n"
             "        if n == 3: break\n"
             "' 2>&1",
             srv.port);
    FILE *py = popen(cmd, "r");
    cr_assert_not_null(py);
    redisContext *p = harness_connect(&srv);
    waitNumsub(p, "news", 2, "the two never subscribed");
    static const char *const msgs[] = {"hello world", "second", "a\tb c"};
    for (int i = 0; i < 3; i++) EXPECT_INT(p, 2, "PUBLISH news %s", msgs[i]);
    char line[256];
    /* redis-cli: the confirmation, then channel-kind, channel, payload. */
    static const char *const confirm[] = {"subscribe", "news", "1"};
    for (int i = 0; i < 3; i++) {
        cr_assert_not_null(fgets(line, sizeof line, cli));
        line[strcspn(line, "\n")] = '\0';
        cr_assert_str_eq(line, confirm[i]);
    }
    for (int i = 0; i < 3; i++) {
        char kind[64], ch[64], msg[64], pch[64], pmsg[64];
        cr_assert_not_null(fgets(kind, sizeof kind, cli));
        cr_assert_not_null(fgets(ch, sizeof ch, cli));
        cr_assert_not_null(fgets(msg, sizeof msg, cli));
        cr_assert_not_null(fgets(pch, sizeof pch, py), "redis-py said nothing");
        cr_assert_not_null(fgets(pmsg, sizeof pmsg, py));
        cr_assert_str_eq(kind, "message\n");
        cr_assert_str_eq(ch, "news\n");
        cr_assert_str_eq(pch, ch);
        snprintf(line, sizeof line, "%s\n", msgs[i]);
        cr_assert_str_eq(msg, line);
        cr_assert_str_eq(pmsg, line, "redis-py got '%s'", pmsg);
    }
    cr_assert_eq(pclose(py), 0, "redis-py's subscriber failed");
    pclose(cli); /* ended by its timeout */
    redisFree(p);
}

Test(pubsub, redis_cli_subscriber)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "timeout 3 redis-cli -p %d SUBSCRIBE news",
             srv.port);
    FILE *f = popen(cmd, "r");
    cr_assert_not_null(f);
    redisContext *p = harness_connect(&srv);
    /* Wait until the subscription is in place, then publish. */
    waitNumsub(p, "news", 1, "redis-cli never subscribed");
    EXPECT_INT(p, 1, "PUBLISH news %s", "hello world");
    char lines[6][128];
    for (int i = 0; i < 6; i++) {
        cr_assert_not_null(fgets(lines[i], sizeof lines[i], f));
        lines[i][strcspn(lines[i], "\n")] = '\0';
    }
    cr_assert_str_eq(lines[0], "subscribe");
    cr_assert_str_eq(lines[1], "news");
    cr_assert_str_eq(lines[2], "1");
    cr_assert_str_eq(lines[3], "message");
    cr_assert_str_eq(lines[4], "news");
    cr_assert_str_eq(lines[5], "hello world");
    /* Unsubscribing does not end redis-cli: time does (timeout 3). */
    pclose(f);
    redisFree(p);
}

Test(pubsub, thousand_subscribers)
{
    enum { N = 1000, MSGS = 5 };
    redisContext **subs = calloc(N, sizeof *subs);
    for (int i = 0; i < N; i++) subs[i] = subscriber(&srv, "fan");
    redisContext *p = harness_connect(&srv);
    for (int m = 0; m < MSGS; m++) {
        EXPECT_INT(p, N, "PUBLISH fan m%d", m);
    }
    for (int i = 0; i < N; i++) {
        for (int m = 0; m < MSGS; m++) {
            char want[16];
            snprintf(want, sizeof want, "m%d", m);
            expectMessage(subs[i], "fan", want);
        }
        redisFree(subs[i]);
    }
    free(subs);
    redisFree(p);
}

/* PUBLISHes pipelined on one connection share log entries, and gcsd fans
 * a run of them out as one batch; the order a client sees stays Redis's:
 * one subscribed to the channel and to a matching pattern gets message,
 * pmessage, message, pmessage... */
Test(pubsub, pipelined_publishes_keep_redis_order)
{
    enum { N = 50 };
    redisContext *both = subscriber(&srv, "q");
    freeReplyObject(harness_cmd(both, "PSUBSCRIBE q*"));
    redisContext *plain = subscriber(&srv, "q");
    redisContext *p = harness_connect(&srv);
    for (int i = 0; i < N; i++) redisAppendCommand(p, "PUBLISH q m%d", i);
    for (int i = 0; i < N; i++) {
        redisReply *r = NULL;
        cr_assert_eq(redisGetReply(p, (void **)&r), REDIS_OK);
        cr_assert_eq(r->type, REDIS_REPLY_INTEGER);
        cr_assert_eq(r->integer, 3);
        freeReplyObject(r);
    }
    for (int i = 0; i < N; i++) {
        char want[16];
        snprintf(want, sizeof want, "m%d", i);
        expectMessage(plain, "q", want);
        expectMessage(both, "q", want);
        redisReply *r = NULL;
        cr_assert_eq(redisGetReply(both, (void **)&r), REDIS_OK);
        cr_assert_eq(r->elements, 4);
        cr_assert_str_eq(r->element[0]->str, "pmessage");
        cr_assert_str_eq(r->element[1]->str, "q*");
        cr_assert_str_eq(r->element[3]->str, want);
        freeReplyObject(r);
    }
    redisFree(both);
    redisFree(plain);
    redisFree(p);
}

/* A subscriber that never reads is disconnected once its unsent output
 * passes --pubsub-output-limit (1 MiB here); a fast one, read by its own
 * thread, gets everything meanwhile. */
enum { SLOW_MSGS = 2000, SLOW_SIZE = 8192 };

typedef struct fastReader {
    redisContext *c;
    int received;
    bool ok;
} fastReader;

static void *readFast(void *arg)
{
    fastReader *f = arg;
    for (f->received = 0; f->received < SLOW_MSGS; f->received++) {
        redisReply *r = NULL;
        if (redisGetReply(f->c, (void **)&r) != REDIS_OK) return NULL;
        bool good = r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
                    r->element[2]->len == SLOW_SIZE;
        freeReplyObject(r);
        if (!good) return NULL;
    }
    f->ok = true;
    return NULL;
}

Test(pubsub, slow_subscriber_is_disconnected)
{
    int slow = rawConnect(srv.port);
    int small = 4096;
    setsockopt(slow, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    rawSend(slow, "*2\r\n$9\r\nsubscribe\r\n$4\r\nfire\r\n");
    rawExpect(slow, "*3\r\n$9\r\nsubscribe\r\n$4\r\nfire\r\n:1\r\n");
    fastReader fast = {.c = subscriber(&srv, "fire")};
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, readFast, &fast), 0);
    redisContext *p = harness_connect(&srv);
    char *payload = malloc(SLOW_SIZE + 1);
    memset(payload, 'x', SLOW_SIZE);
    payload[SLOW_SIZE] = '\0';
    long long t0 = harness_now_ms();
    for (int m = 0; m < SLOW_MSGS; m++) {
        redisReply *r = harness_cmd(p, "PUBLISH fire %s", payload);
        cr_assert_eq(r->type, REDIS_REPLY_INTEGER);
        freeReplyObject(r);
    }
    cr_log_info("published %d x %d bytes in %lld ms", SLOW_MSGS, SLOW_SIZE,
                harness_now_ms() - t0);
    pthread_join(th, NULL);
    cr_assert(fast.ok, "the fast subscriber got %d of %d", fast.received,
              SLOW_MSGS);
    /* The slow one is gone: only the fast one is subscribed. */
    waitNumsub(p, "fire", 1, "slow subscriber kept");
    EXPECT_INT(p, 1, "PUBLISH fire last");
    expectMessage(fast.c, "fire", "last");
    char cmd[512];
    snprintf(cmd, sizeof cmd, "grep -q 'over the limit' %s", srv.log);
    cr_assert_eq(system(cmd), 0, "the disconnection is logged");
    cr_assert_eq(infoNumber(p, "stats", "pubsub_output_limit_disconnections"),
                 1);
    free(payload);
    close(slow);
    redisFree(fast.c);
    redisFree(p);
}

/* ---- GCS.WATCH -------------------------------------------------------------- */

/* One item of a watch stream: a change event, or a progress notification
 * (revision only), or an error. */
typedef struct watchItem {
    bool progress;
    bool error;
    char err[256];
    uint64_t revision;
    char table[32];
    char key[64];
    int kind;
} watchItem;

static redisContext *watchStart(const gcsd_proc *p, const char *args,
                                char *err, size_t errlen)
{
    redisContext *c = harness_connect(p);
    struct timeval tv = {10, 0};
    redisSetTimeout(c, tv);
    /* Arguments split at spaces (hiredis does that to its format). */
    char cmd[256];
    snprintf(cmd, sizeof cmd, "GCS.WATCH %s", args);
    redisReply *r = redisCommand(c, cmd);
    cr_assert_not_null(r, "%s", c->errstr);
    if (r->type == REDIS_REPLY_ERROR) {
        snprintf(err, errlen, "%s", r->str);
        freeReplyObject(r);
        redisFree(c);
        return NULL;
    }
    cr_assert_eq(r->type, REDIS_REPLY_ARRAY);
    cr_assert_str_eq(r->element[0]->str, "subscribe");
    cr_assert_str_eq(r->element[1]->str, "__gcs__:watch");
    freeReplyObject(r);
    return c;
}

/* Next item; false when the connection failed (err says why). */
static bool watchNext(redisContext *c, watchItem *it)
{
    memset(it, 0, sizeof *it);
    redisReply *r = NULL;
    if (redisGetReply(c, (void **)&r) != REDIS_OK) {
        snprintf(it->err, sizeof it->err, "%s", c->errstr);
        return false;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        it->error = true;
        snprintf(it->err, sizeof it->err, "%s", r->str);
        freeReplyObject(r);
        return true;
    }
    cr_assert_eq(r->type, REDIS_REPLY_ARRAY);
    cr_assert_eq(r->elements, 3);
    cr_assert_str_eq(r->element[0]->str, "message");
    if (strcmp(r->element[1]->str, "__gcs__:progress") == 0) {
        it->progress = true;
        it->revision = strtoull(r->element[2]->str, NULL, 10);
    } else {
        cr_assert_str_eq(r->element[1]->str, "__gcs__:watch");
        Gcs__ChangeEvent *ev = gcs__change_event__unpack(
            NULL, r->element[2]->len, (const uint8_t *)r->element[2]->str);
        cr_assert_not_null(ev);
        it->revision = ev->revision;
        snprintf(it->table, sizeof it->table, "%s", ev->table);
        snprintf(it->key, sizeof it->key, "%.*s", (int)ev->key.len,
                 (const char *)ev->key.data);
        it->kind = ev->kind;
        gcs__change_event__free_unpacked(ev, NULL);
    }
    freeReplyObject(r);
    return true;
}

/* The next change event, skipping progress notifications. */
static void watchExpect(redisContext *c, uint64_t rev, const char *key)
{
    watchItem it;
    do {
        cr_assert(watchNext(c, &it), "%s", it.err);
        cr_assert(!it.error, "%s", it.err);
    } while (it.progress);
    cr_assert_eq(it.revision, rev);
    cr_assert_str_eq(it.key, key);
}

Test(pubsub, watch_backlog_live_progress_and_compaction)
{
    redisContext *c = harness_connect(&srv);
    for (int i = 1; i <= 5; i++) EXPECT_STATUS(c, "OK", "SET k%d v", i);
    char err[256];
    redisContext *w = watchStart(&srv, "* FROM 2", err, sizeof err);
    cr_assert_not_null(w, "%s", err);
    redisContext *users = watchStart(&srv, "KEYSPACE FROM 1 PREFIX user:",
                                     err, sizeof err);
    cr_assert_not_null(users, "%s", err);
    for (int i = 2; i <= 5; i++) {
        char key[8];
        snprintf(key, sizeof key, "k%d", i);
        watchExpect(w, (uint64_t)i, key);
    }
    /* Nothing changes: progress says 5 was the last, all delivered. */
    watchItem it;
    cr_assert(watchNext(w, &it));
    cr_assert(it.progress);
    cr_assert_eq(it.revision, 5);
    EXPECT_STATUS(c, "OK", "SET user:1 ada");
    EXPECT_INT(c, 1, "HSET user:2 name bob");
    EXPECT_INT(c, 1, "DEL k1");
    watchExpect(w, 6, "user:1");
    watchExpect(w, 7, "user:2");
    watchExpect(w, 8, "k1");
    watchExpect(users, 6, "user:1");
    watchExpect(users, 7, "user:2");
    do {
        cr_assert(watchNext(users, &it));
    } while (!it.progress || it.revision < 8);
    cr_assert_eq(it.revision, 8, "progress covers filtered-out revisions");
    /* Subscribed mode: other commands are refused. */
    redisAppendCommand(w, "GET k2");
    do {
        cr_assert(watchNext(w, &it), "%s", it.err);
    } while (it.progress);
    cr_assert(it.error);
    cr_assert(strstr(it.err, "Can't execute 'get'") != NULL, "%s", it.err);
    /* Compaction: keep 3 events; 1..5 are gone. */
    EXPECT_STATUS(c, "OK", "GCS.CHANGELOG.WINDOW 3 0");
    cr_assert_null(watchStart(&srv, "* FROM 1", err, sizeof err));
    cr_assert_str_eq(err, "ERR revision 1 is compacted; the oldest revision "
                          "kept is 6");
    redisContext *again = watchStart(&srv, "* FROM 6", err, sizeof err);
    cr_assert_not_null(again, "%s", err);
    watchExpect(again, 6, "user:1");
    cr_assert_null(watchStart(&srv, "* FROM x", err, sizeof err));
    cr_assert_str_eq(err, "ERR FROM needs a revision >= 1");
    redisFree(again);
    redisFree(users);
    redisFree(w);
    redisFree(c);
}

/* INFO stats: Redis's pubsub_channels and pubsub_patterns, and gcsd's own
 * subscriber, watcher and delivery counters. */
Test(pubsub, info_counts)
{
    redisContext *c = harness_connect(&srv);
    cr_assert_eq(infoNumber(c, "stats", "pubsub_channels"), 0);
    cr_assert_eq(infoNumber(c, "stats", "pubsub_subscribers"), 0);
    redisContext *a = subscriber(&srv, "a");
    redisReply *r = NULL;
    redisAppendCommand(a, "SUBSCRIBE b");
    cr_assert_eq(redisGetReply(a, (void **)&r), REDIS_OK);
    freeReplyObject(r);
    redisContext *pat = harness_connect(&srv);
    freeReplyObject(harness_cmd(pat, "PSUBSCRIBE h*"));
    char err[256];
    redisContext *w = watchStart(&srv, "*", err, sizeof err);
    cr_assert_not_null(w, "%s", err);
    cr_assert_eq(infoNumber(c, "stats", "pubsub_channels"), 2);
    cr_assert_eq(infoNumber(c, "stats", "pubsub_patterns"), 1);
    cr_assert_eq(infoNumber(c, "stats", "pubsub_subscribers"), 2);
    cr_assert_eq(infoNumber(c, "stats", "pubsub_watchers"), 1);
    EXPECT_INT(c, 1, "PUBLISH a x");
    EXPECT_INT(c, 1, "PUBLISH hx y");
    EXPECT_INT(c, 0, "PUBLISH nobody z");
    EXPECT_STATUS(c, "OK", "SET k v");
    expectMessage(a, "a", "x");
    cr_assert_eq(redisGetReply(pat, (void **)&r), REDIS_OK);
    cr_assert_str_eq(r->element[0]->str, "pmessage");
    freeReplyObject(r);
    watchItem it;
    do {
        cr_assert(watchNext(w, &it), "%s", it.err);
    } while (it.progress);
    cr_assert_str_eq(it.key, "k");
    cr_assert_eq(infoNumber(c, "stats", "pubsub_messages_published"), 3);
    cr_assert_eq(infoNumber(c, "stats", "pubsub_messages_delivered"), 2);
    cr_assert_eq(infoNumber(c, "stats", "pubsub_watch_events_delivered"), 1);
    cr_assert_eq(infoNumber(c, "stats", "pubsub_output_limit_disconnections"),
                 0);
    /* Gone subscribers leave the gauges; CONFIG RESETSTAT the counters. */
    redisFree(a);
    redisFree(pat);
    redisFree(w);
    long long deadline = harness_now_ms() + 10000;
    while (infoNumber(c, "stats", "pubsub_subscribers") != 0 ||
           infoNumber(c, "stats", "pubsub_watchers") != 0) {
        cr_assert_lt(harness_now_ms(), deadline, "closed subscribers kept");
        harness_poll_pause(10);
    }
    cr_assert_eq(infoNumber(c, "stats", "pubsub_channels"), 0);
    cr_assert_eq(infoNumber(c, "stats", "pubsub_patterns"), 0);
    EXPECT_STATUS(c, "OK", "CONFIG RESETSTAT");
    cr_assert_eq(infoNumber(c, "stats", "pubsub_messages_published"), 0);
    cr_assert_eq(infoNumber(c, "stats", "pubsub_messages_delivered"), 0);
    redisFree(c);
}

/* ---- a cluster -------------------------------------------------------------- */

static gcsd_cluster cl;

static void clusterFini(void) { cluster_cleanup(&cl); }

TestSuite(pubsub_cluster, .fini = clusterFini, .timeout = 120);

/* Subscribers on every member get every message, in the same order, while
 * publishers on every member publish concurrently. */
Test(pubsub_cluster, same_order_on_every_member)
{
    cluster_start(&cl, 3, "");
    cluster_wait_leader(&cl, 20000);
    redisContext *sub[3], *pub[3];
    for (int i = 0; i < 3; i++) sub[i] = subscriber(&cl.m[i], "ord");
    for (int i = 0; i < 3; i++) pub[i] = cluster_connect(&cl, i);
    enum { PER = 100 };
    for (int k = 0; k < PER; k++) {
        for (int i = 0; i < 3; i++) {
            redisAppendCommand(pub[i], "PUBLISH ord m%d-%d", i, k);
        }
    }
    for (int i = 0; i < 3; i++) {
        for (int k = 0; k < PER; k++) {
            redisReply *r;
            cr_assert_eq(redisGetReply(pub[i], (void **)&r), REDIS_OK);
            cr_assert_eq(r->type, REDIS_REPLY_INTEGER, "%s",
                         r->type == REDIS_REPLY_ERROR ? r->str : "");
            freeReplyObject(r);
        }
    }
    static char seen[3][3 * PER][16];
    for (int i = 0; i < 3; i++) {
        int next[3] = {0, 0, 0};
        for (int n = 0; n < 3 * PER; n++) {
            redisReply *r;
            cr_assert_eq(redisGetReply(sub[i], (void **)&r), REDIS_OK, "%s",
                         sub[i]->errstr);
            cr_assert_eq(r->elements, 3);
            snprintf(seen[i][n], sizeof seen[i][n], "%s", r->element[2]->str);
            int from, k;
            cr_assert_eq(sscanf(seen[i][n], "m%d-%d", &from, &k), 2);
            /* Each publisher's own messages keep their order. */
            cr_assert_eq(k, next[from]++);
            freeReplyObject(r);
        }
    }
    for (int n = 0; n < 3 * PER; n++) {
        cr_assert_str_eq(seen[0][n], seen[1][n], "at %d", n);
        cr_assert_str_eq(seen[0][n], seen[2][n], "at %d", n);
    }
    for (int i = 0; i < 3; i++) {
        redisFree(sub[i]);
        redisFree(pub[i]);
    }
    cluster_stop_all(&cl);
}

/* GCS.WATCH across a leader failover: a writer runs, the watcher reads from
 * a follower, the leader is killed, and the watcher resumes on the other
 * survivor with FROM last+1. A "*" watcher owes every revision, so the
 * checker demands exactly last+1 each time: ordered, no gap, no duplicate. */
typedef struct writer {
    int port;
    volatile bool stop;
    int done;
} writer;

static void *runWriter(void *arg)
{
    writer *w = arg;
    redisContext *c = NULL;
    for (int i = 0; !w->stop && i < 100000; i++) {
        if (c == NULL || c->err) {
            if (c) redisFree(c);
            struct timeval tv = {2, 0};
            c = redisConnectWithTimeout("127.0.0.1", w->port, tv);
            if (c == NULL || c->err) continue;
            redisSetTimeout(c, tv);
        }
        redisReply *r = redisCommand(c, "SET w%d %d", i % 50, i);
        if (r != NULL && r->type == REDIS_REPLY_STATUS) w->done++;
        if (r != NULL) freeReplyObject(r);
    }
    if (c) redisFree(c);
    return NULL;
}

/* Read change events until revision @until, checking contiguity; returns
 * false when the connection broke (the last revision is in *last). */
static bool checkStream(redisContext *c, uint64_t *last, uint64_t until)
{
    watchItem it;
    while (*last < until) {
        if (!watchNext(c, &it)) return false;
        cr_assert(!it.error, "%s", it.err);
        if (it.progress) {
            cr_assert_eq(it.revision, *last, "progress %llu after %llu",
                         (unsigned long long)it.revision,
                         (unsigned long long)*last);
            continue;
        }
        cr_assert_eq(it.revision, *last + 1, "got %llu after %llu",
                     (unsigned long long)it.revision,
                     (unsigned long long)*last);
        *last = it.revision;
    }
    return true;
}

Test(pubsub_cluster, watch_resumes_after_leader_failover)
{
    cluster_start(&cl, 3, "--watch-progress-ms 100");
    int leader = cluster_wait_leader(&cl, 20000);
    int a = (leader + 1) % 3, b = (leader + 2) % 3;
    writer wr = {.port = cl.m[b].port};
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, runWriter, &wr), 0);
    char err[256];
    redisContext *w = watchStart(&cl.m[a], "* FROM 1", err, sizeof err);
    cr_assert_not_null(w, "%s", err);
    uint64_t last = 0;
    cr_assert(checkStream(w, &last, 200));
    cluster_kill(&cl, leader, SIGKILL);
    /* Keep reading from a while the others elect, then move to b. */
    checkStream(w, &last, last + 20);
    redisFree(w);
    char args[64];
    snprintf(args, sizeof args, "* FROM %llu", (unsigned long long)last + 1);
    w = watchStart(&cl.m[b], args, err, sizeof err);
    cr_assert_not_null(w, "%s", err);
    cr_assert(checkStream(w, &last, last + 300));
    wr.stop = true;
    pthread_join(th, NULL);
    cr_log_info("writer applied %d writes; watcher checked through "
                "revision %llu", wr.done, (unsigned long long)last);
    redisFree(w);
    cluster_stop_all(&cl);
}

/* A watch that spans a snapshot install: a follower is killed, the leader
 * writes far past its snapshot's trailing log, and the follower, restarted,
 * can only catch up by installing a snapshot. A watch FROM 1 started on it
 * at once (so it usually begins on the old state and sees the install
 * happen under it) gets every revision, in order, with no gap (the part it
 * missed comes from the changelog that came with the snapshot), then live
 * ones and a progress notification; so does one started after the
 * install; and once the window is shrunk, FROM 1 gets the compaction error
 * naming the oldest revision that member keeps.
 * (Restarted, not SIGSTOPped: a follower stopped while the leader sends it
 * a snapshot waits out raft's install-snapshot timeout, 30 s, for the
 * next one.) */
Test(pubsub_cluster, watch_spans_snapshot_install)
{
    cluster_start(&cl, 3, "--snapshot-threshold 64 --snapshot-trailing 32 "
                          "--watch-progress-ms 100");
    int leader = cluster_wait_leader(&cl, 20000);
    int f = (leader + 1) % 3;
    redisContext *c = cluster_connect(&cl, leader);
    for (int i = 1; i <= 20; i++) EXPECT_STATUS(c, "OK", "SET a%d v", i);
    cluster_wait_applied(&cl, cluster_status_int(&cl, leader, "applied_index"),
                         30000);
    cluster_kill(&cl, f, SIGKILL);
    enum { BEHIND = 300 };
    for (int i = 1; i <= BEHIND; i++) EXPECT_INT(c, i, "INCR seq");
    uint64_t top = 20 + BEHIND;
    char snaps[32];
    cr_assert(cluster_info_field(&cl, leader, "raft", "raft_snapshots", snaps,
                                 sizeof snaps));
    cr_assert_gt(atoll(snaps), 0, "the leader took no snapshot");

    cluster_restart(&cl, f);
    char err[256];
    redisContext *w = watchStart(&cl.m[f], "* FROM 1", err, sizeof err);
    cr_assert_not_null(w, "%s", err);
    uint64_t last = 0;
    cr_assert(checkStream(w, &last, top), "the watcher's connection broke at "
              "%llu", (unsigned long long)last);
    cluster_wait_applied(&cl, cluster_status_int(&cl, leader, "applied_index"),
                         30000);
    char installed[32];
    cr_assert(cluster_info_field(&cl, f, "raft", "raft_snapshots_installed",
                                 installed, sizeof installed));
    cr_assert_gt(atoll(installed), 0, "the follower caught up without a "
                 "snapshot install");
    redisContext *again = watchStart(&cl.m[f], "* FROM 1", err, sizeof err);
    cr_assert_not_null(again, "%s", err);
    uint64_t last2 = 0;
    cr_assert(checkStream(again, &last2, top));
    /* Live events after the install reach both. */
    for (int i = 1; i <= 5; i++) EXPECT_STATUS(c, "OK", "SET b%d v", i);
    cr_assert(checkStream(w, &last, top + 5));
    cr_assert(checkStream(again, &last2, top + 5));
    /* Then progress: everything up to the last revision was delivered. */
    watchItem it;
    cr_assert(watchNext(w, &it), "%s", it.err);
    cr_assert(it.progress);
    cr_assert_eq(it.revision, top + 5);

    EXPECT_STATUS(c, "OK", "GCS.CHANGELOG.WINDOW 100 0");
    cluster_wait_applied(&cl, cluster_status_int(&cl, leader, "applied_index"),
                         30000);
    cr_assert_null(watchStart(&cl.m[f], "* FROM 1", err, sizeof err));
    char want[128];
    snprintf(want, sizeof want, "ERR revision 1 is compacted; the oldest "
             "revision kept is %llu", (unsigned long long)(top + 5 - 99));
    cr_assert_str_eq(err, want);
    redisFree(again);
    redisFree(w);
    redisFree(c);
    cluster_stop_all(&cl);
}
