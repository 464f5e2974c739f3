/* Durability: every acknowledged write survives kill -9 and restart. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "expect.h"
#include "harness.h"

TestSuite(durability, .timeout = 300);

/* Writers stream pipelined SETs and INCRs; the server is SIGKILLed mid-stream.
 * After restart every write whose reply was received is present, and the
 * counter is between the acknowledged and the attempted count. */
Test(durability, kill9_mid_stream)
{
    gcsd_proc p;
    harness_init(&p);
    harness_start(&p, 20000);
    enum { CLIENTS = 4, BATCH = 50 };
    redisContext *cs[CLIENTS];
    for (int i = 0; i < CLIENTS; i++) cs[i] = harness_connect(&p);
    long long acked[CLIENTS] = {0}, sent[CLIENTS] = {0};
    long long incrAcked = 0, incrSent = 0;
    bool killed = false;
    long long killAt = harness_now_ms() + 800;
    while (!killed || harness_now_ms() < killAt + 100) {
        for (int i = 0; i < CLIENTS; i++) {
            for (int b = 0; b < BATCH; b++) {
                redisAppendCommand(cs[i], "SET w:%d:%lld %lld", i, sent[i], sent[i]);
                redisAppendCommand(cs[i], "INCR total");
                sent[i]++;
                incrSent++;
            }
        }
        for (int i = 0; i < CLIENTS; i++) {
            for (int b = 0; b < 2 * BATCH; b++) {
                redisReply *r;
                if (redisGetReply(cs[i], (void **)&r) != REDIS_OK) break;
                if (r->type == REDIS_REPLY_STATUS) acked[i]++;
                else if (r->type == REDIS_REPLY_INTEGER) incrAcked++;
                freeReplyObject(r);
            }
        }
        if (!killed && harness_now_ms() >= killAt) {
            /* Kill while a fresh batch is in flight on every connection. */
            for (int i = 0; i < CLIENTS; i++) {
                for (int b = 0; b < BATCH; b++) {
                    redisAppendCommand(cs[i], "INCR total");
                    incrSent++;
                }
                redisBufferWrite(cs[i], &(int){0});
            }
            kill(p.pid, SIGKILL);
            waitpid(p.pid, NULL, 0);
            p.pid = 0;
            killed = true;
            break;
        }
    }
    for (int i = 0; i < CLIENTS; i++) redisFree(cs[i]);
    cr_assert_gt(acked[0], 100, "the stream ran before the kill");

    harness_start(&p, 20000);
    redisContext *c = harness_connect(&p);
    for (int i = 0; i < CLIENTS; i++) {
        for (long long k = 0; k < acked[i]; k++) {
            redisReply *r = harness_cmd(c, "GET w:%d:%lld", i, k);
            cr_assert_eq(r->type, REDIS_REPLY_STRING,
                         "acknowledged write w:%d:%lld lost", i, k);
            cr_assert_eq(atoll(r->str), k);
            freeReplyObject(r);
        }
    }
    redisReply *r = harness_cmd(c, "GET total");
    long long total = atoll(r->str);
    freeReplyObject(r);
    cr_assert_geq(total, incrAcked, "acknowledged increments lost");
    cr_assert_leq(total, incrSent, "more increments applied than sent");
    redisFree(c);
    harness_stop(&p, SIGTERM);
    harness_cleanup(&p);
}

/* A clean restart keeps everything, and replays nothing twice. */
Test(durability, restart_keeps_state)
{
    gcsd_proc p;
    harness_init(&p);
    snprintf(p.extra, sizeof p.extra, "--snapshot-threshold 64");
    harness_start(&p, 20000);
    redisContext *c = harness_connect(&p);
    for (int i = 0; i < 500; i++) EXPECT_INT(c, i + 1, "INCR n");
    EXPECT_INT(c, 1, "HSET h f v");
    redisFree(c);
    for (int round = 0; round < 3; round++) {
        harness_stop(&p, round == 1 ? SIGKILL : SIGTERM);
        harness_start(&p, 20000);
        c = harness_connect(&p);
        EXPECT_BULK(c, "500", "GET n");
        EXPECT_BULK(c, "v", "HGET h f");
        EXPECT_INT(c, 2, "DBSIZE");
        redisFree(c);
    }
    harness_stop(&p, SIGTERM);
    harness_cleanup(&p);
}

Test(durability, shutdown_command_stops_cleanly)
{
    gcsd_proc p;
    harness_init(&p);
    harness_start(&p, 20000);
    redisContext *c = harness_connect(&p);
    EXPECT_INT(c, 7, "INCRBY n 7");
    EXPECT_ERROR(c, "ERR syntax error", "SHUTDOWN LATER");
    /* As in Redis, no reply: the connection just closes. */
    redisReply *r = redisCommand(c, "SHUTDOWN NOSAVE");
    cr_assert_null(r, "SHUTDOWN replied");
    redisFree(c);
    int status;
    long long deadline = harness_now_ms() + 10000;
    pid_t w;
    while ((w = waitpid(p.pid, &status, WNOHANG)) == 0) {
        cr_assert_lt(harness_now_ms(), deadline, "still running");
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    cr_assert_eq(w, p.pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    harness_start(&p, 20000);
    c = harness_connect(&p);
    EXPECT_BULK(c, "7", "GET n");
    redisFree(c);
    harness_stop(&p, SIGTERM);
    harness_cleanup(&p);
}
