/* What a Ray head's GCS sends to its Redis (reference contract §1, §7):
 * the connect handshake, hash tables keyed by binary ids, the job counter,
 * HSCAN with Ray's escaped MATCH patterns, and the cleanup job's SCAN + DEL. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "expect.h"
#include "harness.h"

HARNESS_SERVER_SUITE(ray, "--requirepass raypw", 60);

#define NS "864b004c-6305-42e3-ac46-adfa8eb6f752"

/* Ray's EscapeMatchPattern: backslash before [ ] - ? * ^ \ */
static void escapePattern(const char *in, char *out)
{
    for (; *in; in++) {
        if (strchr("[]-?*^\\", *in)) *out++ = '\\';
        *out++ = *in;
    }
    *out = '\0';
}

Test(ray, handshake)
{
    redisContext *c = harness_connect(&srv);
    /* Sync context: AUTH, INFO SENTINEL, INFO CLUSTER, DEL DUMMY. */
    EXPECT_STATUS(c, "OK", "AUTH raypw");
    redisReply *r = harness_cmd(c, "INFO SENTINEL");
    cr_assert_eq(r->type, REDIS_REPLY_STRING);
    cr_assert_eq(r->len, 0, "a non-empty reply means Sentinel mode to Ray");
    freeReplyObject(r);
    r = harness_cmd(c, "INFO CLUSTER");
    cr_assert_eq(r->type, REDIS_REPLY_STRING);
    /* Ray's parser: skip empty and '#' lines, others split into k:v. */
    char *text = strdup(r->str);
    int kv = 0;
    for (char *line = strtok(text, "\r\n"); line; line = strtok(NULL, "\r\n")) {
        if (line[0] == '#') continue;
        char *colon = strchr(line, ':');
        cr_assert_not_null(colon, "line '%s' is not key:value", line);
        cr_assert_null(strchr(colon + 1, ':'));
        cr_assert_str_eq(line, "cluster_enabled:0");
        kv++;
    }
    cr_assert_eq(kv, 1);
    free(text);
    freeReplyObject(r);
    EXPECT_INT(c, 0, "DEL DUMMY");
    /* The async context sends AUTH without reading the reply, then data. */
    redisAppendCommand(c, "AUTH raypw");
    redisAppendCommand(c, "PING");
    redisReply *a, *p;
    cr_assert_eq(redisGetReply(c, (void **)&a), REDIS_OK);
    cr_assert_eq(redisGetReply(c, (void **)&p), REDIS_OK);
    cr_assert_str_eq(a->str, "OK");
    cr_assert_str_eq(p->str, "PONG");
    freeReplyObject(a);
    freeReplyObject(p);
    redisFree(c);
}

Test(ray, tables)
{
    redisContext *c = harness_connect(&srv);
    EXPECT_STATUS(c, "OK", "AUTH default raypw");
    const char *nodeTable = "RAY" NS "@NODE";
    /* 28-byte binary node ids with NUL and CR/LF bytes inside. */
    unsigned char ids[3][28];
    for (int i = 0; i < 3; i++) {
        for (int b = 0; b < 28; b++) ids[i][b] = (unsigned char)(i * 37 + b * 11);
        ids[i][3] = 0;
        ids[i][7] = '\r';
        ids[i][8] = '\n';
    }
    for (int i = 0; i < 3; i++) {
        char value[16];
        snprintf(value, sizeof value, "\x0a\x1c%c", 'A' + i);
        EXPECT_INT(c, 1, "HSET %s %b %b", nodeTable, ids[i], (size_t)28, value,
                   (size_t)3);
    }
    EXPECT_INT(c, 0, "HSET %s %b %s", nodeTable, ids[0], (size_t)28, "new");
    EXPECT_INT(c, 1, "HEXISTS %s %b", nodeTable, ids[1], (size_t)28);
    redisReply *r = harness_cmd(c, "HGET %s %b", nodeTable, ids[2], (size_t)28);
    cr_assert_eq(r->type, REDIS_REPLY_STRING);
    cr_assert_eq(r->len, 3);
    cr_assert_eq(r->str[2], 'C');
    freeReplyObject(r);
    r = harness_cmd(c, "HMGET %s %b %s %b", nodeTable, ids[0], (size_t)28,
                    "missing", ids[1], (size_t)28);
    cr_assert_eq(r->elements, 3);
    cr_assert_str_eq(r->element[0]->str, "new");
    cr_assert_eq(r->element[1]->type, REDIS_REPLY_NIL);
    freeReplyObject(r);

    /* AsyncGetAll: HSCAN without MATCH, COUNT 1000, until the cursor is 0. */
    r = harness_cmd(c, "HSCAN %s 0 COUNT 1000", nodeTable);
    cr_assert_eq(r->element[0]->type, REDIS_REPLY_STRING);
    cr_assert_str_eq(r->element[0]->str, "0");
    cr_assert_eq(r->element[1]->elements, 6);
    freeReplyObject(r);

    /* KV table, AsyncGetKeys(prefix) with an escaped MATCH. */
    const char *kv = "RAY" NS "@KV";
    EXPECT_INT(c, 1, "HSETNX %s %s %s", kv, "@namespace_session:session_name",
               "session_2026");
    EXPECT_INT(c, 0, "HSETNX %s %s %s", kv, "@namespace_session:session_name",
               "other");
    EXPECT_INT(c, 1, "HSET %s %s %s", kv, "@namespace_fun:a-b[1]?", "x");
    EXPECT_INT(c, 1, "HSET %s %s %s", kv, "@namespace_fun:a-c", "y");
    char pat[600], esc[256];
    escapePattern("@namespace_fun:a-b[1]?", esc);
    snprintf(pat, sizeof pat, "%s*", esc);
    r = harness_cmd(c, "HSCAN %s 0 MATCH %s COUNT 1000", kv, pat);
    cr_assert_eq(r->element[1]->elements, 2);
    cr_assert_str_eq(r->element[1]->element[0]->str, "@namespace_fun:a-b[1]?");
    freeReplyObject(r);
    EXPECT_BULK(c, "session_2026", "HGET %s %s", kv,
                "@namespace_session:session_name");
    EXPECT_INT(c, 2, "HDEL %s %s %s %s", kv, "@namespace_fun:a-b[1]?",
               "@namespace_fun:a-c", "nope");

    /* Job counter: INCRBY on a plain string key, starting at 1. */
    EXPECT_INT(c, 1, "INCRBY RAY" NS "@JobCounter 1");
    EXPECT_INT(c, 2, "INCRBY RAY" NS "@JobCounter 1");

    /* KubeRay's cleanup job: SCAN MATCH RAY<escaped ns>@* then DEL each. */
    EXPECT_STATUS(c, "OK", "SET unrelated keep");
    char nsPat[600];
    escapePattern("RAY" NS "@", esc);
    snprintf(nsPat, sizeof nsPat, "%s*", esc);
    char cursor[32] = "0";
    int deleted = 0;
    do {
        r = harness_cmd(c, "SCAN %s MATCH %s", cursor, nsPat);
        snprintf(cursor, sizeof cursor, "%s", r->element[0]->str);
        for (size_t i = 0; i < r->element[1]->elements; i++) {
            redisReply *d = harness_cmd(c, "DEL %b", r->element[1]->element[i]->str,
                                        r->element[1]->element[i]->len);
            cr_assert_eq(d->integer, 1);
            deleted++;
            freeReplyObject(d);
        }
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    cr_assert_eq(deleted, 3); /* @NODE, @KV, @JobCounter */
    EXPECT_INT(c, 1, "DBSIZE");
    EXPECT_BULK(c, "keep", "GET unrelated");
    redisFree(c);
}
