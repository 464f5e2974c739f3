/* Every command of the single-node keyspace against a real gcsd, with the
 * replies and errors Redis 7 gives. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "expect.h"
#include "harness.h"

static gcsd_proc srv;
static redisContext *c;

static void setup(void)
{
    harness_init(&srv);
    harness_start(&srv, 20000);
    c = harness_connect(&srv);
}

static void teardown(void)
{
    if (c) redisFree(c);
    harness_stop(&srv, SIGTERM);
    harness_cleanup(&srv);
}

TestSuite(commands, .init = setup, .fini = teardown, .timeout = 60);

#define WRONGTYPE "WRONGTYPE Operation against a key holding the wrong kind of value"
#define NOTINT "ERR value is not an integer or out of range"

Test(commands, connection)
{
    EXPECT_STATUS(c, "PONG", "PING");
    EXPECT_BULK(c, "hi there", "PING %s", "hi there");
    EXPECT_ERROR(c, "ERR wrong number of arguments for 'ping' command",
                 "PING a b");
    EXPECT_BULK(c, "echo\r\n", "ECHO %s", "echo\r\n");
    EXPECT_ERROR(c, "ERR wrong number of arguments for 'echo' command", "ECHO");
    EXPECT_STATUS(c, "OK", "SELECT 0");
    EXPECT_ERROR(c, "ERR DB index is out of range", "SELECT 1");
    EXPECT_ERROR(c, NOTINT, "SELECT x");
    EXPECT_ERROR(c, "NOPROTO unsupported protocol version", "HELLO 3");
    EXPECT_ARRAY_LEN(c, 14, "HELLO 2");
    EXPECT_ARRAY_LEN(c, 14, "HELLO");
    EXPECT_ERROR(c, "ERR unknown command 'NOSUCH', with args beginning with: "
                    "'a' 'b' ", "NOSUCH a b");
    EXPECT_ERROR(c, "ERR AUTH <password> called without any password "
                    "configured for the default user. Are you sure your "
                    "configuration is correct?", "AUTH pw");
    EXPECT_STATUS(c, "OK", "AUTH default anything");
    /* The connection is still usable after every error above. */
    EXPECT_STATUS(c, "PONG", "PING");
}

Test(commands, client)
{
    redisReply *r = harness_cmd(c, "CLIENT ID");
    cr_assert_eq(r->type, REDIS_REPLY_INTEGER);
    long long id = r->integer;
    cr_assert_gt(id, 0);
    freeReplyObject(r);
    EXPECT_NIL(c, "CLIENT GETNAME");
    EXPECT_STATUS(c, "OK", "CLIENT SETNAME %s", "ray-gcs");
    EXPECT_BULK(c, "ray-gcs", "CLIENT GETNAME");
    EXPECT_ERROR(c, "ERR Client names cannot contain spaces, newlines or "
                    "special characters.", "CLIENT SETNAME %s", "a b");
    r = harness_cmd(c, "CLIENT LIST");
    cr_assert_eq(r->type, REDIS_REPLY_STRING);
    char want[64];
    snprintf(want, sizeof want, "id=%lld ", id);
    cr_assert_not_null(strstr(r->str, want));
    cr_assert_not_null(strstr(r->str, "name=ray-gcs "));
    freeReplyObject(r);
    EXPECT_ERROR(c, "ERR unknown subcommand 'FOO'. Try CLIENT HELP.",
                 "CLIENT FOO");
    EXPECT_ERROR(c, "ERR wrong number of arguments for 'client|id' command",
                 "CLIENT ID x");
    EXPECT_ERROR(c, "ERR Unknown client type 'foo'", "CLIENT LIST TYPE foo");
    EXPECT_ERROR(c, "ERR Invalid client ID", "CLIENT LIST ID abc");
    r = harness_cmd(c, "CLIENT INFO");
    cr_assert_eq(r->type, REDIS_REPLY_STRING);
    cr_assert(strncmp(r->str, want, strlen(want)) == 0);
    freeReplyObject(r);
}

Test(commands, info_and_config)
{
    EXPECT_BULK(c, "", "INFO SENTINEL");
    EXPECT_BULK(c, "# Cluster\r\ncluster_enabled:0\r\n", "INFO CLUSTER");
    redisReply *r = harness_cmd(c, "INFO");
    cr_assert_eq(r->type, REDIS_REPLY_STRING);
    cr_assert_not_null(strstr(r->str, "# Server\r\n"));
    cr_assert_not_null(strstr(r->str, "redis_version:"));
    cr_assert_not_null(strstr(r->str, "# Raft\r\n"));
    cr_assert_not_null(strstr(r->str, "raft_role:leader\r\n"));
    cr_assert_null(strstr(r->str, "# Cluster"));
    freeReplyObject(r);
    r = harness_cmd(c, "INFO raft");
    cr_assert_not_null(strstr(r->str, "raft_members:1\r\n"));
    freeReplyObject(r);
    r = harness_cmd(c, "CONFIG GET %s", "appendonly");
    cr_assert_eq(r->type, REDIS_REPLY_ARRAY);
    cr_assert_eq(r->elements, 2);
    cr_assert_str_eq(r->element[0]->str, "appendonly");
    cr_assert_str_eq(r->element[1]->str, "yes");
    freeReplyObject(r);
    EXPECT_ARRAY_LEN(c, 4, "CONFIG GET save port");
    EXPECT_ARRAY_LEN(c, 0, "CONFIG GET nosuchparam");
    r = harness_cmd(c, "COMMAND COUNT");
    cr_assert_eq(r->type, REDIS_REPLY_INTEGER);
    cr_assert_gt(r->integer, 40);
    freeReplyObject(r);
    r = harness_cmd(c, "COMMAND INFO nosuch");
    cr_assert_eq(r->elements, 1);
    cr_assert_eq(r->element[0]->type, REDIS_REPLY_NIL);
    freeReplyObject(r);
    EXPECT_ERROR(c, "ERR wrong number of arguments for 'config|get' command",
                 "CONFIG GET");
    r = harness_cmd(c, "COMMAND INFO get hset");
    cr_assert_eq(r->elements, 2);
    cr_assert_str_eq(r->element[0]->element[0]->str, "get");
    cr_assert_eq(r->element[0]->element[1]->integer, 2);
    cr_assert_str_eq(r->element[1]->element[0]->str, "hset");
    cr_assert_eq(r->element[1]->element[1]->integer, -4);
    freeReplyObject(r);
}

Test(commands, strings)
{
    EXPECT_NIL(c, "GET k");
    EXPECT_STATUS(c, "OK", "SET k v1");
    EXPECT_BULK(c, "v1", "GET k");
    EXPECT_NIL(c, "SET k v2 NX");
    EXPECT_BULK(c, "v1", "GET k");
    EXPECT_STATUS(c, "OK", "SET k v2 XX");
    EXPECT_NIL(c, "SET nokey v XX");
    EXPECT_BULK(c, "v2", "SET k v3 GET");
    EXPECT_NIL(c, "SET fresh v GET");
    EXPECT_BULK(c, "v3", "GET k");
    EXPECT_ERROR(c, "ERR syntax error", "SET k v NX XX");
    EXPECT_ERROR(c, "ERR syntax error", "SET k v BOGUS");
    EXPECT_ERROR(c, "ERR expiry options are not supported: gcsd keys do not "
                    "expire", "SET k v EX 10");
    EXPECT_STATUS(c, "OK", "SET k v4 KEEPTTL");
    EXPECT_ERROR(c, "ERR wrong number of arguments for 'set' command", "SET k");
    EXPECT_INT(c, 1, "SETNX n1 a");
    EXPECT_INT(c, 0, "SETNX n1 b");
    EXPECT_BULK(c, "a", "GET n1");
    EXPECT_STATUS(c, "OK", "MSET a 1 b 2 c 3");
    EXPECT_ERROR(c, "ERR wrong number of arguments for 'mset' command",
                 "MSET a 1 b");
    redisReply *r = harness_cmd(c, "MGET a b nosuch c");
    cr_assert_eq(r->elements, 4);
    cr_assert_str_eq(r->element[0]->str, "1");
    cr_assert_str_eq(r->element[1]->str, "2");
    cr_assert_eq(r->element[2]->type, REDIS_REPLY_NIL);
    cr_assert_str_eq(r->element[3]->str, "3");
    freeReplyObject(r);
    EXPECT_INT(c, 2, "STRLEN k");
    EXPECT_INT(c, 0, "STRLEN nosuch");
    EXPECT_INT(c, 5, "APPEND k xyz");
    EXPECT_BULK(c, "v4xyz", "GET k");
    EXPECT_INT(c, 3, "APPEND newk abc");
}

/* SET ... IFEQ old: Valkey's compare-and-set (the fault tests' register
 * workload uses it). It never creates a key. */
Test(commands, set_ifeq)
{
    EXPECT_NIL(c, "SET cas v1 IFEQ v0");
    EXPECT_NIL(c, "GET cas");
    EXPECT_STATUS(c, "OK", "SET cas v1");
    EXPECT_NIL(c, "SET cas v2 IFEQ v0");
    EXPECT_BULK(c, "v1", "GET cas");
    EXPECT_STATUS(c, "OK", "SET cas v2 IFEQ v1");
    EXPECT_BULK(c, "v2", "GET cas");
    EXPECT_BULK(c, "v2", "SET cas v3 IFEQ v2 GET");
    EXPECT_BULK(c, "v3", "SET cas v4 IFEQ nope GET");
    EXPECT_BULK(c, "v3", "GET cas");
    EXPECT_STATUS(c, "OK", "SET cas %b IFEQ v3", "", (size_t)0);
    EXPECT_STATUS(c, "OK", "SET cas x IFEQ %b", "", (size_t)0);
    EXPECT_ERROR(c, "ERR syntax error", "SET cas v IFEQ x NX");
    EXPECT_ERROR(c, "ERR syntax error", "SET cas v XX IFEQ x");
    EXPECT_ERROR(c, "ERR syntax error", "SET cas v IFEQ");
    EXPECT_INT(c, 1, "HSET h f v");
    EXPECT_ERROR(c, "WRONGTYPE Operation against a key holding the wrong "
                    "kind of value", "SET h v IFEQ x");
}

Test(commands, counters)
{
    EXPECT_INT(c, 1, "INCR ctr");
    EXPECT_INT(c, 11, "INCRBY ctr 10");
    EXPECT_INT(c, 10, "DECR ctr");
    EXPECT_INT(c, -5, "DECRBY ctr 15");
    EXPECT_BULK(c, "-5", "GET ctr");
    EXPECT_ERROR(c, NOTINT, "INCRBY ctr abc");
    EXPECT_ERROR(c, NOTINT, "INCRBY ctr 1.5");
    EXPECT_ERROR(c, NOTINT, "INCRBY ctr 99999999999999999999");
    EXPECT_STATUS(c, "OK", "SET big 9223372036854775807");
    EXPECT_ERROR(c, "ERR increment or decrement would overflow", "INCR big");
    EXPECT_BULK(c, "9223372036854775807", "GET big");
    EXPECT_STATUS(c, "OK", "SET small -9223372036854775808");
    EXPECT_ERROR(c, "ERR increment or decrement would overflow", "DECR small");
    EXPECT_ERROR(c, "ERR decrement would overflow",
                 "DECRBY small -9223372036854775808");
    EXPECT_STATUS(c, "OK", "SET word hello");
    EXPECT_ERROR(c, NOTINT, "INCR word");
    EXPECT_STATUS(c, "OK", "SET lead 007");
    EXPECT_ERROR(c, NOTINT, "INCR lead");
    EXPECT_INT(c, 1, "HSET h f v");
    EXPECT_ERROR(c, WRONGTYPE, "INCR h");
    EXPECT_ERROR(c, "ERR wrong number of arguments for 'incrby' command",
                 "INCRBY ctr");
    /* Every error above counts, those decided at apply included. */
    redisReply *r = harness_cmd(c, "INFO stats");
    const char *line = strstr(r->str, "total_error_replies:");
    cr_assert_not_null(line);
    cr_assert_eq(atoi(line + strlen("total_error_replies:")), 10, "%s", line);
    freeReplyObject(r);
}

Test(commands, hashes)
{
    EXPECT_INT(c, 2, "HSET h f1 v1 f2 v2");
    EXPECT_INT(c, 1, "HSET h f1 x f3 v3");
    EXPECT_ERROR(c, "ERR wrong number of arguments for 'hset' command",
                 "HSET h f1");
    EXPECT_ERROR(c, "ERR wrong number of arguments for 'hset' command",
                 "HSET h f1 v1 f2");
    EXPECT_STATUS(c, "OK", "HMSET h f4 v4");
    EXPECT_BULK(c, "x", "HGET h f1");
    EXPECT_NIL(c, "HGET h nosuch");
    EXPECT_NIL(c, "HGET nokey f");
    EXPECT_INT(c, 0, "HSETNX h f1 y");
    EXPECT_INT(c, 1, "HSETNX h f5 v5");
    EXPECT_INT(c, 5, "HLEN h");
    EXPECT_INT(c, 0, "HLEN nokey");
    EXPECT_INT(c, 1, "HEXISTS h f2");
    EXPECT_INT(c, 0, "HEXISTS h nope");
    EXPECT_INT(c, 2, "HSTRLEN h f2");
    redisReply *r = harness_cmd(c, "HMGET h f1 nope f2");
    cr_assert_eq(r->elements, 3);
    cr_assert_str_eq(r->element[0]->str, "x");
    cr_assert_eq(r->element[1]->type, REDIS_REPLY_NIL);
    cr_assert_str_eq(r->element[2]->str, "v2");
    freeReplyObject(r);
    EXPECT_ARRAY_LEN(c, 5, "HKEYS h");
    EXPECT_ARRAY_LEN(c, 5, "HVALS h");
    EXPECT_ARRAY_LEN(c, 10, "HGETALL h");
    EXPECT_ARRAY_LEN(c, 0, "HGETALL nokey");
    EXPECT_INT(c, 2, "HDEL h f4 f5 nope");
    EXPECT_INT(c, 3, "HLEN h");
    EXPECT_INT(c, 5, "HINCRBY h n 5");
    EXPECT_INT(c, -1, "HINCRBY h n -6");
    EXPECT_ERROR(c, "ERR hash value is not an integer", "HINCRBY h f1 1");
    EXPECT_ERROR(c, NOTINT, "HINCRBY h n x");
    EXPECT_INT(c, 1, "HSET h max 9223372036854775807");
    EXPECT_ERROR(c, "ERR increment or decrement would overflow",
                 "HINCRBY h max 1");
    /* The key disappears with its last field. */
    EXPECT_INT(c, 1, "HSET solo f v");
    EXPECT_INT(c, 1, "HDEL solo f");
    EXPECT_INT(c, 0, "EXISTS solo");
    EXPECT_STATUS(c, "OK", "SET s v");
    EXPECT_ERROR(c, WRONGTYPE, "HSET s f v");
    EXPECT_ERROR(c, WRONGTYPE, "HGET s f");
    EXPECT_ERROR(c, WRONGTYPE, "HMGET s f");
    EXPECT_ERROR(c, WRONGTYPE, "HGETALL s");
    EXPECT_ERROR(c, WRONGTYPE, "HDEL s f");
    EXPECT_ERROR(c, WRONGTYPE, "HLEN s");
    EXPECT_ERROR(c, WRONGTYPE, "HSCAN s 0");
    EXPECT_ERROR(c, WRONGTYPE, "GET h");
    EXPECT_ERROR(c, WRONGTYPE, "APPEND h x");
    EXPECT_ERROR(c, WRONGTYPE, "SET h x GET");
    /* SET replaces a hash entirely. */
    EXPECT_STATUS(c, "OK", "SET h plain");
    EXPECT_BULK(c, "plain", "GET h");
    EXPECT_STATUS(c, "string", "TYPE h");
}

Test(commands, keyspace)
{
    EXPECT_INT(c, 0, "DBSIZE");
    EXPECT_STATUS(c, "OK", "MSET k1 a k2 b k3 c");
    EXPECT_INT(c, 1, "HSET hk f v");
    EXPECT_INT(c, 4, "DBSIZE");
    EXPECT_INT(c, 3, "EXISTS k1 k1 k2 nope");
    EXPECT_STATUS(c, "string", "TYPE k1");
    EXPECT_STATUS(c, "hash", "TYPE hk");
    EXPECT_STATUS(c, "none", "TYPE nope");
    EXPECT_ARRAY_LEN(c, 3, "KEYS k?");
    EXPECT_ARRAY_LEN(c, 4, "KEYS *");
    EXPECT_ARRAY_LEN(c, 1, "KEYS h*");
    EXPECT_INT(c, 2, "DEL k1 k2 nope");
    EXPECT_INT(c, 1, "UNLINK hk");
    EXPECT_INT(c, 1, "DBSIZE");
    EXPECT_STATUS(c, "OK", "FLUSHALL");
    EXPECT_INT(c, 0, "DBSIZE");
    EXPECT_ERROR(c, "ERR syntax error", "FLUSHALL bogus");
    EXPECT_STATUS(c, "OK", "FLUSHALL SYNC");
}

/* SCAN over many keys, resumed by cursor, sees each key once. */
Test(commands, scan)
{
    const int n = 1000;
    for (int i = 0; i < n; i++) {
        redisAppendCommand(c, "SET key:%d v", i);
    }
    redisAppendCommand(c, "HSET hashkey f v");
    for (int i = 0; i <= n; i++) {
        redisReply *r;
        cr_assert_eq(redisGetReply(c, (void **)&r), REDIS_OK);
        freeReplyObject(r);
    }
    char *seen = calloc((size_t)n, 1);
    char cursor[32] = "0";
    int total = 0, calls = 0;
    do {
        redisReply *r = harness_cmd(c, "SCAN %s MATCH key:* COUNT 50", cursor);
        cr_assert_eq(r->type, REDIS_REPLY_ARRAY);
        cr_assert_eq(r->elements, 2);
        cr_assert_eq(r->element[0]->type, REDIS_REPLY_STRING,
                     "cursor must be a bulk string");
        snprintf(cursor, sizeof cursor, "%s", r->element[0]->str);
        for (size_t i = 0; i < r->element[1]->elements; i++) {
            int k = atoi(r->element[1]->element[i]->str + 4);
            cr_assert(k >= 0 && k < n);
            cr_assert_eq(seen[k], 0, "key:%d returned twice", k);
            seen[k] = 1;
            total++;
        }
        freeReplyObject(r);
        calls++;
    } while (strcmp(cursor, "0") != 0);
    cr_assert_eq(total, n);
    cr_assert_gt(calls, 5, "COUNT must page the scan");
    free(seen);
    EXPECT_ERROR(c, "ERR invalid cursor", "SCAN abc");
    EXPECT_ERROR(c, "ERR syntax error", "SCAN 0 COUNT 0");
    EXPECT_ERROR(c, NOTINT, "SCAN 0 COUNT x");
    EXPECT_ERROR(c, "ERR syntax error", "SCAN 0 BOGUS");
    redisReply *r = harness_cmd(c, "SCAN 0 TYPE hash COUNT 100000");
    cr_assert_eq(r->element[1]->elements, 1);
    cr_assert_str_eq(r->element[1]->element[0]->str, "hashkey");
    cr_assert_str_eq(r->element[0]->str, "0");
    freeReplyObject(r);
}

Test(commands, hscan)
{
    const int n = 300;
    for (int i = 0; i < n; i++) redisAppendCommand(c, "HSET hh f%d v%d", i, i);
    for (int i = 0; i < n; i++) {
        redisReply *r;
        cr_assert_eq(redisGetReply(c, (void **)&r), REDIS_OK);
        freeReplyObject(r);
    }
    char cursor[32] = "0";
    int total = 0;
    do {
        redisReply *r = harness_cmd(c, "HSCAN hh %s COUNT 20", cursor);
        cr_assert_eq(r->element[0]->type, REDIS_REPLY_STRING);
        snprintf(cursor, sizeof cursor, "%s", r->element[0]->str);
        cr_assert_eq(r->element[1]->elements % 2, 0);
        for (size_t i = 0; i < r->element[1]->elements; i += 2) {
            /* Pairs: field then its value. */
            cr_assert_str_eq(r->element[1]->element[i]->str + 1,
                             r->element[1]->element[i + 1]->str + 1);
            total++;
        }
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    cr_assert_eq(total, n);
    redisReply *r = harness_cmd(c, "HSCAN hh 0 MATCH f1? COUNT 1000");
    cr_assert_eq(r->element[1]->elements, 20); /* f10..f19, with values */
    freeReplyObject(r);
    r = harness_cmd(c, "HSCAN hh 0 MATCH f1? COUNT 1000 NOVALUES");
    cr_assert_eq(r->element[1]->elements, 10);
    freeReplyObject(r);
    r = harness_cmd(c, "HSCAN nokey 0");
    cr_assert_str_eq(r->element[0]->str, "0");
    cr_assert_eq(r->element[1]->elements, 0);
    freeReplyObject(r);
}

/* NOAUTH until AUTH, WRONGPASS on a bad password, both AUTH forms. */
Test(auth, requirepass, .timeout = 60)
{
    gcsd_proc p;
    harness_init(&p);
    snprintf(p.extra, sizeof p.extra, "--requirepass s3cret");
    harness_start(&p, 20000);
    redisContext *a = harness_connect(&p);
    EXPECT_ERROR(a, "NOAUTH Authentication required.", "GET k");
    EXPECT_ERROR(a, "NOAUTH Authentication required.", "SET k v");
    EXPECT_ERROR(a, "WRONGPASS invalid username-password pair or user is "
                    "disabled.", "AUTH wrong");
    EXPECT_ERROR(a, "WRONGPASS invalid username-password pair or user is "
                    "disabled.", "AUTH someone s3cret");
    /* Before AUTH, requests are kept small, with Redis's errors. */
    const char *args[11] = {"MSET", "a", "1", "b", "2", "c", "3", "d", "4",
                            "e", "5"};
    redisReply *r = redisCommandArgv(a, 11, args, NULL);
    cr_assert_not_null(r);
    cr_assert_str_eq(r->str, "ERR Protocol error: unauthenticated multibulk "
                             "length");
    freeReplyObject(r);
    redisFree(a);
    a = harness_connect(&p);
    static char big[16385];
    memset(big, 'b', sizeof big);
    r = redisCommand(a, "AUTH %b", big, sizeof big);
    cr_assert_not_null(r);
    cr_assert_str_eq(r->str, "ERR Protocol error: unauthenticated bulk length");
    freeReplyObject(r);
    redisFree(a);
    a = harness_connect(&p);
    EXPECT_STATUS(a, "OK", "AUTH s3cret");
    EXPECT_STATUS(a, "OK", "MSET a 1 b 2 c 3 d 4 e 5");
    EXPECT_STATUS(a, "OK", "SET k v");
    redisFree(a);
    a = harness_connect(&p);
    EXPECT_STATUS(a, "OK", "AUTH default s3cret");
    EXPECT_BULK(a, "v", "GET k");
    redisFree(a);
    a = harness_connect(&p);
    EXPECT_ARRAY_LEN(a, 14, "HELLO 2 AUTH default s3cret");
    EXPECT_BULK(a, "v", "GET k");
    redisFree(a);
    harness_stop(&p, SIGTERM);
    harness_cleanup(&p);
}

/* Connections past --maxclients are told so and closed; the others work. */
Test(limits, maxclients, .timeout = 60)
{
    gcsd_proc p;
    harness_init(&p);
    snprintf(p.extra, sizeof p.extra, "--maxclients 3");
    harness_start(&p, 20000);
    redisContext *cs[3];
    for (int i = 0; i < 3; i++) {
        cs[i] = harness_connect(&p);
        EXPECT_STATUS(cs[i], "PONG", "PING");
    }
    redisContext *extra = harness_connect(&p);
    redisReply *r = redisCommand(extra, "PING");
    cr_assert_not_null(r);
    cr_assert_eq(r->type, REDIS_REPLY_ERROR);
    cr_assert_str_eq(r->str, "ERR max number of clients reached");
    freeReplyObject(r);
    redisFree(extra);
    /* Once one leaves, a new client gets in (poll: the close is async). */
    redisFree(cs[0]);
    long long deadline = harness_now_ms() + 5000;
    bool in = false;
    while (!in && harness_now_ms() < deadline) {
        redisContext *n = harness_connect(&p);
        r = redisCommand(n, "PING");
        in = r != NULL && r->type == REDIS_REPLY_STATUS;
        if (r) freeReplyObject(r);
        redisFree(n);
    }
    cr_assert(in);
    EXPECT_STATUS(cs[1], "PONG", "PING");
    redisFree(cs[1]);
    redisFree(cs[2]);
    harness_stop(&p, SIGTERM);
    harness_cleanup(&p);
}

/* Bulk strings over --proto-max-bulk-len are a protocol error. */
Test(limits, max_bulk_len, .timeout = 60)
{
    gcsd_proc p;
    harness_init(&p);
    snprintf(p.extra, sizeof p.extra, "--proto-max-bulk-len 4kb");
    harness_start(&p, 20000);
    redisContext *a = harness_connect(&p);
    char big[4097];
    memset(big, 'x', sizeof big);
    EXPECT_STATUS(a, "OK", "SET k %b", big, (size_t)4096);
    redisReply *r = redisCommand(a, "SET k %b", big, sizeof big);
    cr_assert_not_null(r);
    cr_assert_str_eq(r->str, "ERR Protocol error: invalid bulk length");
    freeReplyObject(r);
    redisFree(a);
    a = harness_connect(&p);
    r = harness_cmd(a, "STRLEN k");
    cr_assert_eq(r->integer, 4096);
    freeReplyObject(r);
    redisFree(a);
    harness_stop(&p, SIGTERM);
    harness_cleanup(&p);
}

/* Near a full map, growing commands get Redis's -OOM before reaching the
 * log (so the member never fail-stops), reads and deletes still work, and
 * space freed by deletes is used again. */
Test(limits, map_nearly_full, .timeout = 60)
{
    gcsd_proc p;
    harness_init(&p);
    snprintf(p.extra, sizeof p.extra, "--map-size 4mb");
    harness_start(&p, 20000);
    redisContext *a = harness_connect(&p);
    /* One value bigger than the whole map: refused up front, nothing
     * reaches the log (it would fail-stop the member at apply). */
    static char huge[5 << 20];
    memset(huge, 'h', sizeof huge);
    EXPECT_ERROR(a, "OOM command not allowed when used memory > 'maxmemory'.",
                 "SET huge %b", huge, sizeof huge);
    static char value[100000];
    memset(value, 'v', sizeof value);
    int stored = 0;
    bool oom = false;
    for (int i = 0; i < 100 && !oom; i++) {
        redisReply *r = harness_cmd(a, "SET k%d %b", i, value, sizeof value);
        if (r->type == REDIS_REPLY_ERROR) {
            cr_assert_str_eq(r->str, "OOM command not allowed when used memory "
                                     "> 'maxmemory'.");
            oom = true;
        } else {
            cr_assert_str_eq(r->str, "OK");
            stored++;
        }
        freeReplyObject(r);
    }
    cr_assert(oom, "a 4 MiB map must fill up");
    cr_assert_gt(stored, 5);
    EXPECT_ERROR(a, "OOM command not allowed when used memory > 'maxmemory'.",
                 "HSET h f %b", value, sizeof value);
    redisReply *r = harness_cmd(a, "STRLEN k0");
    cr_assert_eq(r->integer, (long long)sizeof value);
    freeReplyObject(r);
    EXPECT_INT(a, 5, "DEL k0 k1 k2 k3 k4");
    EXPECT_STATUS(a, "OK", "SET again %b", value, sizeof value);
    r = harness_cmd(a, "INFO raft");
    cr_assert_not_null(strstr(r->str, "raft_failed:0\r\n"));
    freeReplyObject(r);
    redisFree(a);
    harness_stop(&p, SIGTERM);
    harness_cleanup(&p);
}
