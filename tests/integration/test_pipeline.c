/* Pipelining, reply order and binary payloads. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "expect.h"
#include "harness.h"

HARNESS_SERVER_SUITE(pipeline, "", 120);

/* 10,000 pipelined commands of mixed kinds: every reply, in order. */
Test(pipeline, ten_thousand_in_order)
{
    redisContext *c = harness_connect(&srv);
    const int n = 10000;
    for (int i = 0; i < n; i++) {
        switch (i % 4) {
            case 0: redisAppendCommand(c, "SET k%d v%d", i, i); break;
            case 1: redisAppendCommand(c, "GET k%d", i - 1); break;
            case 2: redisAppendCommand(c, "INCR counter"); break;
            default: redisAppendCommand(c, "PING"); break;
        }
    }
    long long counter = 0;
    for (int i = 0; i < n; i++) {
        redisReply *r;
        cr_assert_eq(redisGetReply(c, (void **)&r), REDIS_OK);
        switch (i % 4) {
            case 0:
                cr_assert_str_eq(r->str, "OK");
                break;
            case 1: {
                char want[32];
                snprintf(want, sizeof want, "v%d", i - 1);
                cr_assert_eq(r->type, REDIS_REPLY_STRING, "reply %d", i);
                cr_assert_str_eq(r->str, want, "read-your-writes at %d", i);
                break;
            }
            case 2:
                cr_assert_eq(r->integer, ++counter);
                break;
            default:
                cr_assert_str_eq(r->str, "PONG");
        }
        freeReplyObject(r);
    }
    EXPECT_BULK(c, "2500", "GET counter");
    redisFree(c);
}

/* Keys and values with NUL bytes, sizes from 0 to 8 MiB, round trip. */
Test(pipeline, binary_up_to_8mib)
{
    redisContext *c = harness_connect(&srv);
    size_t sizes[] = {0, 1, 100, 65536, 1 << 20, 8 << 20};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        size_t len = sizes[s];
        unsigned char *v = malloc(len + 1);
        for (size_t i = 0; i < len; i++) v[i] = (unsigned char)(i * 131 + s);
        unsigned char key[6] = {'k', 0, '\r', '\n', (unsigned char)s, 0xff};
        EXPECT_STATUS(c, "OK", "SET %b %b", key, sizeof key, v, len);
        redisReply *r = harness_cmd(c, "GET %b", key, sizeof key);
        cr_assert_eq(r->type, REDIS_REPLY_STRING);
        cr_assert_eq(r->len, len);
        cr_assert(memcmp(r->str, v, len) == 0, "value of %zu bytes", len);
        freeReplyObject(r);
        EXPECT_INT(c, 1, "HSET bin %b %b", key, sizeof key, v, len);
        r = harness_cmd(c, "HGET bin %b", key, sizeof key);
        cr_assert_eq(r->len, len);
        cr_assert(memcmp(r->str, v, len) == 0);
        freeReplyObject(r);
        free(v);
    }
    redisFree(c);
}

/* Many clients writing at once each get their own replies. */
Test(pipeline, concurrent_clients)
{
    enum { CLIENTS = 20, PER = 200 };
    redisContext *cs[CLIENTS];
    for (int i = 0; i < CLIENTS; i++) cs[i] = harness_connect(&srv);
    for (int j = 0; j < PER; j++) {
        for (int i = 0; i < CLIENTS; i++) {
            redisAppendCommand(cs[i], "INCRBY c%d %d", i, i + 1);
        }
    }
    for (int i = 0; i < CLIENTS; i++) {
        for (int j = 0; j < PER; j++) {
            redisReply *r;
            cr_assert_eq(redisGetReply(cs[i], (void **)&r), REDIS_OK);
            cr_assert_eq(r->integer, (long long)(j + 1) * (i + 1));
            freeReplyObject(r);
        }
    }
    for (int i = 0; i < CLIENTS; i++) redisFree(cs[i]);
}
