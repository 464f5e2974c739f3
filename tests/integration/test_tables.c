/* The typed tables against a real gcsd, through hiredis: records in and
 * out, PG.WAIT blocking until a registration makes its group fit, a 100,000
 * row listing paged through cursors, the leader's health check
 * declaring a silent node dead, and the dead-row caps applied alike on
 * every member of a cluster. */
#include <criterion/criterion.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "blob_cmd.h"
#include "expect.h"
#include "harness.h"
#include "table_records.h"

HARNESS_SERVER_SUITE(tables, "", 180);

static void expectStatus(redisReply *r, const char *want)
{
    cr_assert_eq(r->type, REDIS_REPLY_STATUS, "type %d: %s", r->type,
                 r->str ? r->str : "");
    cr_assert_str_eq(r->str, want);
    freeReplyObject(r);
}

static void expectError(redisReply *r, const char *want)
{
    cr_assert_eq(r->type, REDIS_REPLY_ERROR, "type %d", r->type);
    cr_assert_str_eq(r->str, want);
    freeReplyObject(r);
}

static int actorState(redisContext *c, blob id)
{
    redisReply *r = CMD(c, S("ACTOR.GET"), id);
    cr_assert_eq(r->type, REDIS_REPLY_STRING);
    Ray__Rpc__ActorTableData *a =
        ray__rpc__actor_table_data__unpack(NULL, r->len, (uint8_t *)r->str);
    cr_assert_not_null(a);
    int s = a->state;
    ray__rpc__actor_table_data__free_unpacked(a, NULL);
    freeReplyObject(r);
    return s;
}

static int pgState(redisContext *c, blob id)
{
    redisReply *r = CMD(c, S("PG.GET"), id);
    cr_assert_eq(r->type, REDIS_REPLY_STRING);
    Ray__Rpc__PlacementGroupTableData *g =
        ray__rpc__placement_group_table_data__unpack(NULL, r->len,
                                                     (uint8_t *)r->str);
    cr_assert_not_null(g);
    int s = g->state;
    ray__rpc__placement_group_table_data__free_unpacked(g, NULL);
    freeReplyObject(r);
    return s;
}

Test(tables, records_round_trip)
{
    redisContext *c = harness_connect(&srv);
    blob node = te_node_id(1);
    expectStatus(CMD(c, S("NODE.REGISTER"), te_node(1, "CPU=4")), "OK");
    redisReply *r = CMD(c, S("NODE.GET"), node);
    cr_assert_eq(r->type, REDIS_REPLY_STRING);
    Ray__Rpc__GcsNodeInfo *n =
        ray__rpc__gcs_node_info__unpack(NULL, r->len, (uint8_t *)r->str);
    cr_assert_not_null(n);
    cr_assert_eq(n->state, RAY__RPC__GCS_NODE_INFO__GCS_NODE_STATE__ALIVE);
    cr_assert_eq(n->n_resources_total, 1);
    cr_assert_str_eq(n->resources_total[0]->key, "CPU");
    cr_assert_gt(n->start_time_ms, 1600000000000ull);
    ray__rpc__gcs_node_info__free_unpacked(n, NULL);
    freeReplyObject(r);
    expectStatus(CMD(c, S("NODE.HEARTBEAT"), node), "OK");
    expectError(CMD(c, S("NODE.HEARTBEAT"), te_node_id(2)), "ERR no such node");
    expectError(CMD(c, S("NODE.HEARTBEAT"), S("x")),
                "ERR invalid node id: expected 28 bytes, got 1");

    r = CMD(c, S("JOB.NEXTID"));
    cr_assert_eq(r->type, REDIS_REPLY_STRING);
    cr_assert_eq(r->len, 4);
    cr_assert(memcmp(r->str, "\1\0\0\0", 4) == 0);
    freeReplyObject(r);
    expectStatus(CMD(c, S("JOB.ADD"), te_job(1, 1)), "OK");

    blob actor = te_actor_id(1, 1);
    expectStatus(CMD(c, S("ACTOR.REGISTER"),
                     te_actor((te_actor_spec){.k = 1, .job = 1,
                                              .name = "svc", .ns = "ns"})),
                 "OK");
    r = CMD(c, S("ACTOR.UPDATE"), actor, te_update(1, 0, 0));
    cr_assert_eq(r->type, REDIS_REPLY_STRING);
    freeReplyObject(r);
    r = CMD(c, S("ACTOR.UPDATE"), actor, te_update(2, 1, 5));
    Ray__Rpc__ActorTableData *a =
        ray__rpc__actor_table_data__unpack(NULL, r->len, (uint8_t *)r->str);
    cr_assert_not_null(a);
    cr_assert_eq(a->state, RAY__RPC__ACTOR_TABLE_DATA__ACTOR_STATE__ALIVE);
    cr_assert_eq(a->pid, 4242);
    cr_assert_gt(a->start_time, 1600000000000ull);
    ray__rpc__actor_table_data__free_unpacked(a, NULL);
    freeReplyObject(r);
    r = CMD(c, S("ACTOR.GETNAMED"), S("ns"), S("svc"));
    cr_assert_eq(r->type, REDIS_REPLY_STRING);
    freeReplyObject(r);
    expectError(CMD(c, S("ACTOR.UPDATE"), actor, te_update(1, 0, 0)),
                "ERR invalid actor state transition from ALIVE to "
                "PENDING_CREATION");
    r = CMD(c, S("ACTOR.LIST"), S("JOB"), te_job_id(1), S("STATE"),
            S("ALIVE"));
    cr_assert_eq(r->type, REDIS_REPLY_ARRAY);
    cr_assert_eq(r->elements, 2);
    cr_assert_str_eq(r->element[0]->str, "0");
    cr_assert_eq(r->element[1]->elements, 1);
    freeReplyObject(r);
    expectStatus(CMD(c, S("ACTOR.KILL"), actor), "OK");
    cr_assert_eq(actorState(c, actor), 4);
    r = CMD(c, S("ACTOR.GETNAMED"), S("ns"), S("svc"));
    cr_assert_eq(r->type, REDIS_REPLY_NIL);
    freeReplyObject(r);
    expectStatus(CMD(c, S("JOB.FINISH"), te_job_id(1)), "OK");
    r = CMD(c, S("JOB.LIST"));
    cr_assert_eq(r->element[1]->elements, 1);
    freeReplyObject(r);
    /* Arity and unknown ids, as for any command. */
    EXPECT_ERROR(c, "ERR wrong number of arguments for 'node.get' command",
                 "NODE.GET");
    redisFree(c);
    te_pool_free();
}

/* Milliseconds until @c has a reply to read (or @ms pass: -1). */
static long long waitReadable(redisContext *c, int ms)
{
    long long t0 = harness_now_ms();
    struct pollfd p = {.fd = c->fd, .events = POLLIN};
    int rc = poll(&p, 1, ms);
    cr_assert_geq(rc, 0);
    return rc == 0 ? -1 : harness_now_ms() - t0;
}

/* INFO clients' blocked_clients, read on @c. */
static long long blockedClients(redisContext *c)
{
    redisReply *r = harness_cmd(c, "INFO clients");
    const char *at = r->str != NULL ? strstr(r->str, "blocked_clients:") : NULL;
    cr_assert_not_null(at, "INFO clients lacks blocked_clients");
    long long n = atoll(at + strlen("blocked_clients:"));
    freeReplyObject(r);
    return n;
}

static void flush(redisContext *c)
{
    int done = 0;
    while (!done) cr_assert_eq(redisBufferWrite(c, &done), REDIS_OK);
}

Test(tables, pg_wait_blocks_until_a_node_fits)
{
    redisContext *waiter = harness_connect(&srv);
    redisContext *other = harness_connect(&srv);
    blob g = te_pg_id(1, 0);
    expectStatus(CMD(waiter, S("PG.CREATE"),
                     te_pg((te_pg_spec){.k = 1, .strategy = 2,
                                        .bundles = "CPU=2;CPU=2"})),
                 "OK");
    cr_assert_eq(pgState(waiter, g), 0, "PENDING: no node yet");
    APPEND(waiter, S("PG.WAIT"), g, S("30000"));
    flush(waiter);
    /* Blocked: nothing to read while the group cannot be placed. */
    cr_assert_eq(waitReadable(waiter, 300), -1);
    cr_assert_eq(blockedClients(other), 1, "INFO blocked_clients");
    expectStatus(CMD(other, S("NODE.REGISTER"), te_node(1, "CPU=2")), "OK");
    cr_assert_eq(waitReadable(waiter, 300), -1, "still does not fit");
    /* Other clients are served meanwhile. */
    expectStatus(CMD(other, S("NODE.REGISTER"), te_node(2, "CPU=4")), "OK");
    cr_assert_geq(waitReadable(waiter, 10000), 0, "PG.WAIT did not return");
    redisReply *r;
    cr_assert_eq(redisGetReply(waiter, (void **)&r), REDIS_OK);
    expectStatus(r, "OK");
    cr_assert_eq(pgState(waiter, g), 2);
    cr_assert_eq(blockedClients(other), 0, "INFO blocked_clients");
    redisFree(waiter);
    redisFree(other);
    te_pool_free();
}

Test(tables, pg_wait_answers)
{
    redisContext *c = harness_connect(&srv);
    redisContext *other = harness_connect(&srv);
    expectStatus(CMD(c, S("NODE.REGISTER"), te_node(1, "CPU=1")), "OK");
    /* Created by the same pipeline: the wait sees the client's own write. */
    blob fits = te_pg_id(1, 0);
    APPEND(c, S("PG.CREATE"), te_pg((te_pg_spec){.k = 1, .bundles = "CPU=1"}));
    APPEND(c, S("PG.WAIT"), fits, S("5000"));
    redisReply *r;
    cr_assert_eq(redisGetReply(c, (void **)&r), REDIS_OK);
    expectStatus(r, "OK");
    cr_assert_eq(redisGetReply(c, (void **)&r), REDIS_OK);
    expectStatus(r, "OK");
    /* Already CREATED: at once. */
    expectStatus(CMD(c, S("PG.WAIT"), fits, S("0")), "OK");

    blob never = te_pg_id(2, 0);
    expectStatus(CMD(c, S("PG.CREATE"),
                     te_pg((te_pg_spec){.k = 2, .bundles = "CPU=8"})),
                 "OK");
    long long t0 = harness_now_ms();
    r = CMD(c, S("PG.WAIT"), never, S("300"));
    cr_assert_eq(r->type, REDIS_REPLY_NIL, "a timeout answers nil");
    freeReplyObject(r);
    cr_assert_geq(harness_now_ms() - t0, 290);

    /* Removed while waited on. */
    APPEND(c, S("PG.WAIT"), never, S("0"));
    flush(c);
    cr_assert_eq(waitReadable(c, 200), -1);
    expectStatus(CMD(other, S("PG.REMOVE"), never), "OK");
    cr_assert_eq(redisGetReply(c, (void **)&r), REDIS_OK);
    expectError(r, "ERR placement group was removed");
    expectError(CMD(c, S("PG.WAIT"), never, S("10")),
                "ERR placement group was removed");
    expectError(CMD(c, S("PG.WAIT"), te_pg_id(3, 0), S("10")),
                "ERR no such placement group");
    expectError(CMD(c, S("PG.WAIT"), fits, S("-1")),
                "ERR timeout is not a non-negative integer");
    /* A waiter that disconnects is dropped (and freed: the teardown's
     * clean exit and the sanitizer run check that). */
    expectStatus(CMD(c, S("PG.CREATE"),
                     te_pg((te_pg_spec){.k = 4, .bundles = "CPU=8"})),
                 "OK");
    redisContext *gone = harness_connect(&srv);
    APPEND(gone, S("PG.WAIT"), te_pg_id(4, 0), S("0"));
    flush(gone);
    cr_assert_eq(waitReadable(gone, 100), -1);
    redisFree(gone);
    expectStatus(CMD(c, S("PING")), "PONG");
    /* FLUSHALL deletes the group from under a waiter. */
    APPEND(c, S("PG.WAIT"), te_pg_id(4, 0), S("0"));
    flush(c);
    cr_assert_eq(waitReadable(c, 100), -1);
    expectStatus(CMD(other, S("FLUSHALL")), "OK");
    cr_assert_eq(redisGetReply(c, (void **)&r), REDIS_OK);
    expectError(r, "ERR placement group was removed");
    redisFree(c);
    redisFree(other);
    te_pool_free();
}

/* 100,000 actors, listed 1,000 at a time: every one exactly once. */
Test(tables, list_of_100000_rows_is_paged)
{
    redisContext *c = harness_connect(&srv);
    const unsigned total = 100000, chunk = 5000;
    for (unsigned base = 0; base < total; base += chunk) {
        for (unsigned k = base + 1; k <= base + chunk; k++) {
            APPEND(c, S("ACTOR.REGISTER"),
                   te_actor((te_actor_spec){.k = k, .job = 7}));
        }
        for (unsigned k = 0; k < chunk; k++) {
            redisReply *r;
            cr_assert_eq(redisGetReply(c, (void **)&r), REDIS_OK);
            cr_assert_eq(r->type, REDIS_REPLY_STATUS, "%s",
                         r->str ? r->str : "");
            freeReplyObject(r);
        }
        te_pool_free();
    }
    unsigned char *seen = calloc(total + 1, 1);
    cr_assert_not_null(seen);
    char cursor[1100] = "0";
    size_t pages = 0, rows = 0, biggest = 0;
    do {
        redisReply *r = redisCommand(c, "ACTOR.LIST CURSOR %s", cursor);
        cr_assert_not_null(r);
        cr_assert_eq(r->type, REDIS_REPLY_ARRAY, "%s", r->str ? r->str : "");
        cr_assert_eq(r->elements, 2);
        cr_assert_eq(r->element[0]->type, REDIS_REPLY_STRING);
        cr_assert_lt(r->element[0]->len, sizeof cursor);
        memcpy(cursor, r->element[0]->str, r->element[0]->len + 1);
        redisReply *recs = r->element[1];
        cr_assert_leq(recs->elements, 1000);
        if (recs->elements > biggest) biggest = recs->elements;
        for (size_t i = 0; i < recs->elements; i++) {
            Ray__Rpc__ActorTableData *a = ray__rpc__actor_table_data__unpack(
                NULL, recs->element[i]->len,
                (uint8_t *)recs->element[i]->str);
            cr_assert_not_null(a);
            const uint8_t *id = a->actor_id.data;
            unsigned k = (unsigned)id[8] << 24 | (unsigned)id[9] << 16 |
                         (unsigned)id[10] << 8 | id[11];
            cr_assert(k >= 1 && k <= total);
            cr_assert_eq(seen[k], 0, "actor %u listed twice", k);
            seen[k] = 1;
            ray__rpc__actor_table_data__free_unpacked(a, NULL);
        }
        rows += recs->elements;
        pages++;
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    cr_assert_eq(rows, total);
    cr_assert_eq(pages, total / 1000);
    cr_assert_eq(biggest, 1000);
    /* A bigger COUNT, and a filter through the job index. */
    redisReply *r = redisCommand(c, "ACTOR.LIST COUNT 60000");
    cr_assert_eq(r->element[1]->elements, 60000);
    cr_assert_neq(strcmp(r->element[0]->str, "0"), 0);
    freeReplyObject(r);
    free(seen);
    redisFree(c);
    te_pool_free();
}

/* ---- node health: a suite of its own, with fast checks ------------------ */

static gcsd_proc fast;

static void fastSetup(void)
{
    harness_init(&fast);
    snprintf(fast.extra, sizeof fast.extra,
             "--health-check-period-ms 100 --health-check-failure-threshold 3");
    harness_start(&fast, 20000);
}

static void fastTeardown(void)
{
    harness_stop(&fast, SIGTERM);
    harness_cleanup(&fast);
    te_pool_free();
}

TestSuite(health, .init = fastSetup, .fini = fastTeardown, .timeout = 60);

static bool nodeAlive(redisContext *c, blob id, char *why, size_t whyLen)
{
    redisReply *r = CMD(c, S("NODE.GET"), id);
    cr_assert_eq(r->type, REDIS_REPLY_STRING);
    Ray__Rpc__GcsNodeInfo *n =
        ray__rpc__gcs_node_info__unpack(NULL, r->len, (uint8_t *)r->str);
    cr_assert_not_null(n);
    bool alive = n->state == RAY__RPC__GCS_NODE_INFO__GCS_NODE_STATE__ALIVE;
    if (!alive && why != NULL) {
        cr_assert_not_null(n->death_info);
        cr_assert_eq(n->death_info->reason,
                     RAY__RPC__NODE_DEATH_INFO__REASON__UNEXPECTED_TERMINATION);
        snprintf(why, whyLen, "%s", n->death_info->reason_message);
    }
    ray__rpc__gcs_node_info__free_unpacked(n, NULL);
    freeReplyObject(r);
    return alive;
}

/* A node that stops heartbeating is declared dead by the leader after
 * threshold x period; one that keeps beating stays ALIVE. */
Test(health, silent_node_is_declared_dead)
{
    redisContext *c = harness_connect(&fast);
    blob silent = te_node_id(1), beating = te_node_id(2);
    expectStatus(CMD(c, S("NODE.REGISTER"), te_node(1, "CPU=1")), "OK");
    expectStatus(CMD(c, S("NODE.REGISTER"), te_node(2, "CPU=1")), "OK");
    long long t0 = harness_now_ms(), deadAt = 0;
    char why[64] = "";
    while (harness_now_ms() - t0 < 10000) {
        expectStatus(CMD(c, S("NODE.HEARTBEAT"), beating), "OK");
        if (deadAt == 0 && !nodeAlive(c, silent, why, sizeof why)) {
            deadAt = harness_now_ms();
        }
        if (deadAt != 0 && harness_now_ms() - deadAt > 1000) break;
        struct timespec ts = {0, 30 * 1000 * 1000};
        nanosleep(&ts, NULL); /* the heartbeat period of a raylet */
    }
    cr_assert_neq(deadAt, 0, "the silent node was never declared dead");
    /* Not before its grace period (3 x 100 ms) was over. */
    cr_assert_geq(deadAt - t0, 250);
    cr_assert_str_eq(why, "health check failed");
    cr_assert(nodeAlive(c, beating, NULL, 0), "a beating node died");
    expectError(CMD(c, S("NODE.HEARTBEAT"), silent), "ERR node is dead");
    redisReply *r = CMD(c, S("INFO"), S("tables"));
    cr_assert_eq(r->type, REDIS_REPLY_STRING);
    cr_assert_not_null(strstr(r->str, "health_nodes_declared_dead:1\r\n"),
                       "%s", r->str);
    cr_assert_not_null(strstr(r->str, "health_tracked_nodes:1\r\n"), "%s",
                       r->str);
    freeReplyObject(r);
    redisFree(c);
}

/* A member that becomes leader has heard no heartbeats yet: every ALIVE
 * node gets a full grace period (threshold x period) from then, however
 * long ago it last beat. */
Test(health, new_leader_gives_a_grace_period)
{
    redisContext *c = harness_connect(&fast);
    blob node = te_node_id(7);
    expectStatus(CMD(c, S("NODE.REGISTER"), te_node(7, "CPU=1")), "OK");
    redisFree(c);
    harness_stop(&fast, SIGTERM);
    /* Restart with a longer grace (5 x 200 ms), well after the node's last
     * sign of life. */
    snprintf(fast.extra, sizeof fast.extra,
             "--health-check-period-ms 200 --health-check-failure-threshold 5");
    struct timespec ts = {1, 0};
    nanosleep(&ts, NULL);
    harness_start(&fast, 20000);
    long long t0 = harness_now_ms();
    c = harness_connect(&fast);
    /* Well inside the grace period it is alive... */
    while (harness_now_ms() - t0 < 500) {
        cr_assert(nodeAlive(c, node, NULL, 0), "declared dead after %lld ms",
                  harness_now_ms() - t0);
        struct timespec step = {0, 50 * 1000 * 1000};
        nanosleep(&step, NULL);
    }
    /* ...and without heartbeats it dies after it. */
    char why[64] = "";
    long long deadAt = 0;
    while (deadAt == 0 && harness_now_ms() - t0 < 10000) {
        if (!nodeAlive(c, node, why, sizeof why)) deadAt = harness_now_ms();
        struct timespec step = {0, 20 * 1000 * 1000};
        nanosleep(&step, NULL);
    }
    cr_assert_neq(deadAt, 0);
    /* Without the grace period the first check (200 ms) would kill it; the
     * margin below 1000 ms covers the time start-up took before t0. */
    cr_assert_geq(deadAt - t0, 700);
    cr_assert_str_eq(why, "health check failed");
    redisFree(c);
}

/* ---- through followers ---------------------------------------------------- */

static gcsd_cluster tcl;

static void clusterTeardown(void)
{
    cluster_cleanup(&tcl);
    te_pool_free();
}

TestSuite(tables_cluster, .fini = clusterTeardown, .timeout = 90);

/* PG.WAIT sent to a follower blocks on the leader; the follower forwards it
 * on a connection of its own, so every other client of that follower keeps
 * being answered meanwhile. NODE.HEARTBEAT, which only the leader can take,
 * works through a follower too. */
Test(tables_cluster, pg_wait_through_a_follower_blocks_nobody)
{
    cluster_start(&tcl, 3, "");
    int leader = cluster_wait_leader(&tcl, 10000);
    int f1 = (leader + 1) % 3, f2 = (leader + 2) % 3;
    redisContext *waiter = cluster_connect(&tcl, f1);
    redisContext *other = cluster_connect(&tcl, f2);
    blob g = te_pg_id(1, 0);
    expectStatus(CMD(waiter, S("PG.CREATE"),
                     te_pg((te_pg_spec){.k = 1, .strategy = 2,
                                        .bundles = "CPU=2;CPU=2"})),
                 "OK");
    APPEND(waiter, S("PG.WAIT"), g, S("30000"));
    flush(waiter);
    cr_assert_eq(waitReadable(waiter, 300), -1, "PG.WAIT returned early");
    /* Clients of the same follower: all answered while PG.WAIT blocks. */
    redisContext *peers[8];
    for (int i = 0; i < 8; i++) {
        peers[i] = cluster_connect(&tcl, f1);
        struct timeval tv = {5, 0};
        redisSetTimeout(peers[i], tv);
    }
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 8; i++) {
            long long t0 = harness_now_ms();
            redisReply *r = redisCommand(peers[i], "INCR blocked:%d", i);
            cr_assert_not_null(r, "client %d of the follower got no reply "
                               "while PG.WAIT was blocked: %s", i,
                               peers[i]->errstr);
            cr_assert_eq(r->type, REDIS_REPLY_INTEGER);
            cr_assert_eq(r->integer, round + 1);
            cr_assert_lt(harness_now_ms() - t0, 4000);
            freeReplyObject(r);
        }
    }
    expectStatus(CMD(other, S("NODE.REGISTER"), te_node(1, "CPU=4")), "OK");
    expectStatus(CMD(other, S("NODE.HEARTBEAT"), te_node_id(1)), "OK");
    cr_assert_geq(waitReadable(waiter, 10000), 0, "PG.WAIT did not return");
    redisReply *r;
    cr_assert_eq(redisGetReply(waiter, (void **)&r), REDIS_OK);
    expectStatus(r, "OK");
    for (int i = 0; i < 8; i++) redisFree(peers[i]);
    redisFree(waiter);
    redisFree(other);
    cluster_stop_all(&tcl);
}

/* The dead-row caps travel in the log: set through a follower, every member
 * evicts the same oldest actors and reports the same figures. */
Test(tables_cluster, dead_row_caps_are_replicated)
{
    cluster_start(&tcl, 3, "");
    int leader = cluster_wait_leader(&tcl, 10000);
    redisContext *c = cluster_connect(&tcl, (leader + 1) % 3);
    expectStatus(CMD(c, S("GCS.TABLES.CAPS"), S("2"), S("0"), S("0")), "OK");
    for (unsigned k = 1; k <= 5; k++) {
        expectStatus(CMD(c, S("ACTOR.REGISTER"),
                         te_actor((te_actor_spec){.k = k, .job = 1})),
                     "OK");
        expectStatus(CMD(c, S("ACTOR.KILL"), te_actor_id(k, 1)), "OK");
    }
    for (int m = 0; m < 3; m++) {
        redisContext *x = cluster_connect(&tcl, m);
        /* A member applies in its own time: poll until it has the last
         * kill, then everything else must already hold. */
        long long deadline = harness_now_ms() + 10000;
        for (;;) {
            redisReply *r = CMD(x, S("ACTOR.GET"), te_actor_id(5, 1));
            bool have = r->type == REDIS_REPLY_STRING;
            freeReplyObject(r);
            if (have && actorState(x, te_actor_id(5, 1)) == 4) break;
            cr_assert_lt(harness_now_ms(), deadline,
                         "member %d never applied the kills", m);
            poll(NULL, 0, 20);
        }
        for (unsigned k = 1; k <= 3; k++) {
            redisReply *r = CMD(x, S("ACTOR.GET"), te_actor_id(k, 1));
            cr_assert_eq(r->type, REDIS_REPLY_NIL, "member %d kept actor %u",
                         m, k);
            freeReplyObject(r);
        }
        cr_assert_eq(actorState(x, te_actor_id(4, 1)), 4);
        redisReply *r = CMD(x, S("INFO"), S("tables"));
        cr_assert_eq(r->type, REDIS_REPLY_STRING);
        cr_assert_not_null(strstr(r->str, "dead_actors_kept:2\r\n"), "%s",
                           r->str);
        cr_assert_not_null(strstr(r->str, "dead_actors_cap:2\r\n"), "%s",
                           r->str);
        cr_assert_not_null(strstr(r->str, "dead_nodes_cap:1000\r\n"), "%s",
                           r->str);
        freeReplyObject(r);
        redisFree(x);
    }
    redisFree(c);
    cluster_stop_all(&tcl);
}
