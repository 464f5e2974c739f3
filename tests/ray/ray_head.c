/* ray_head: see ray_head.h. The head's own pauses (connect retries, request
 * backoff) are Ray's behaviour being modelled, not test synchronisation. */
#include "ray_head.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CONNECT_RETRIES 120   /* redis_db_connect_retries */
#define CONNECT_WAIT_MS 500   /* redis_db_connect_wait_milliseconds */
#define REQUEST_RETRIES 5     /* num_redis_request_retries */
#define GET_KEY_SYNC_MS 1000  /* RedisGetKeySync's io_service.run_for */
/* Ray sets no timeout on its connections; this only ends a test that would
 * otherwise hang, and counts as a crash point if it ever fires. */
#define GUARD_TIMEOUT_S 300
#define MAX_ARGS 8

static long long nowMs(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void pauseMs(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Count one more of a kind of point; the first one's reason is kept. */
static void record(atomic_int *count, char *why, size_t len, const char *fmt,
                   va_list ap)
{
    if (atomic_fetch_add(count, 1) == 0) vsnprintf(why, len, fmt, ap);
}

/* A crash point: the head stops there. */
static void fatal(ray_head *h, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void fatal(ray_head *h, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    record(&h->fatal, h->fatal_why, sizeof h->fatal_why, fmt, ap);
    va_end(ap);
}

/* A mis-step: a wrong value or a skipped id, not a crash. */
static void misstep(ray_head *h, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void misstep(ray_head *h, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    record(&h->missteps, h->misstep_why, sizeof h->misstep_why, fmt, ap);
    va_end(ap);
}

static const char *replyText(const redisReply *r)
{
    if (r == NULL) return "(no reply)";
    if (r->str != NULL) return r->str;
    return "";
}

/* ---- the connect handshake (RedisContext::Connect) ----------------------- */

/* `-MOVED <slot> <host:port>`: exactly three tokens, as Ray parses it. */
static bool parseMoved(const redisReply *r, char *host, size_t hlen, int *port)
{
    if (r->type != REDIS_REPLY_ERROR || strncmp(r->str, "MOVED ", 6) != 0)
        return false;
    char slot[32], addr[300], extra[8];
    if (sscanf(r->str, "MOVED %31s %299s %7s", slot, addr, extra) != 2)
        return false;
    char *colon = strrchr(addr, ':');
    if (colon == NULL || (size_t)(colon - addr) >= hlen) return false;
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = '\0';
    *port = atoi(colon + 1);
    return *port > 0;
}

/* Ray's ValidateRedisDB on the INFO CLUSTER text. */
static bool clusterInfoOk(const char *text, char *why, size_t len)
{
    char *copy = strdup(text);
    bool ok = copy != NULL;
    char *save = NULL;
    for (char *line = copy ? strtok_r(copy, "\r\n", &save) : NULL;
         ok && line != NULL; line = strtok_r(NULL, "\r\n", &save)) {
        if (line[0] == '#') continue;
        char *colon = strchr(line, ':');
        if (colon == NULL || strchr(colon + 1, ':') != NULL) {
            snprintf(why, len, "INFO CLUSTER line '%s' is not key:value",
                     line);
            ok = false;
        } else if (strcmp(line, "cluster_state:fail") == 0) {
            snprintf(why, len, "INFO CLUSTER says cluster_state:fail");
            ok = false;
        }
    }
    free(copy);
    return ok;
}

static redisContext *tcpConnect(const char *host, int port)
{
    for (int attempt = 0; attempt < CONNECT_RETRIES; attempt++) {
        struct timeval tv = {2, 0};
        redisContext *c = redisConnectWithTimeout(host, port, tv);
        if (c != NULL && c->err == 0) {
            struct timeval guard = {GUARD_TIMEOUT_S, 0};
            redisSetTimeout(c, guard);
            return c;
        }
        if (c != NULL) redisFree(c);
        pauseMs(CONNECT_WAIT_MS);
    }
    return NULL;
}

/* The sync context's handshake. Returns the connected context (its address
 * in @host/@port, after any MOVED) or NULL with the crash reason in @why. */
static redisContext *handshake(const ray_head_opts *o, char *host,
                               size_t hlen, int *port, char *why, size_t len)
{
    snprintf(host, hlen, "%s", o->host);
    *port = o->port;
    for (int hop = 0; hop < 8; hop++) {
        redisContext *c = tcpConnect(host, *port);
        if (c == NULL) {
            snprintf(why, len, "could not connect to %s:%d in %d attempts",
                     host, *port, CONNECT_RETRIES);
            return NULL;
        }
        redisReply *r;
        if (o->password != NULL && o->password[0] != '\0') {
            r = redisCommand(c, "AUTH %s", o->password);
            if (r == NULL || r->type == REDIS_REPLY_ERROR) {
                snprintf(why, len, "AUTH at connect: %s",
                         r ? r->str : c->errstr);
                goto fail;
            }
            freeReplyObject(r);
        }
        r = redisCommand(c, "INFO SENTINEL");
        if (r == NULL || r->type != REDIS_REPLY_STRING || r->len != 0) {
            snprintf(why, len, "INFO SENTINEL at connect: %s",
                     r ? (r->type == REDIS_REPLY_STRING
                              ? "non-empty: Sentinel mode"
                              : replyText(r))
                       : c->errstr);
            goto fail;
        }
        freeReplyObject(r);
        r = redisCommand(c, "INFO CLUSTER");
        if (r == NULL || r->type != REDIS_REPLY_STRING) {
            snprintf(why, len, "INFO CLUSTER at connect: %s",
                     r ? replyText(r) : c->errstr);
            goto fail;
        }
        if (!clusterInfoOk(r->str, why, len)) goto fail;
        freeReplyObject(r);
        r = redisCommand(c, "DEL DUMMY");
        if (r == NULL) {
            snprintf(why, len, "DEL DUMMY at connect: connection lost (%s)",
                     c->errstr);
            goto fail;
        }
        if (r->type == REDIS_REPLY_INTEGER) {
            freeReplyObject(r);
            return c;
        }
        if (parseMoved(r, host, hlen, port)) {
            freeReplyObject(r);
            redisFree(c);
            continue;
        }
        snprintf(why, len, "DEL DUMMY at connect answered '%s'",
                 replyText(r));
    fail:
        if (r != NULL) freeReplyObject(r);
        redisFree(c);
        return NULL;
    }
    snprintf(why, len, "too many MOVED redirections at connect");
    return NULL;
}

/* RedisContext::Connect: the sync handshake, then the async context (here a
 * second connection) that sends AUTH without reading the reply. */
static bool headConnect(ray_head *h)
{
    char host[256], why[400];
    int port;
    redisContext *sync = handshake(&h->o, host, sizeof host, &port, why,
                                   sizeof why);
    if (sync == NULL) {
        fatal(h, "%s", why);
        return false;
    }
    redisFree(sync); /* the GCS keeps it; the data flows on the async one */
    redisContext *c = tcpConnect(host, port);
    if (c == NULL) {
        fatal(h, "async context: could not connect to %s:%d", host, port);
        return false;
    }
    if (h->o.password != NULL && h->o.password[0] != '\0') {
        /* Sent without a callback: its reply is read and dropped. */
        redisReply *r = redisCommand(c, "AUTH %s", h->o.password);
        if (r == NULL) {
            fatal(h, "async context: connection lost after AUTH");
            redisFree(c);
            return false;
        }
        freeReplyObject(r);
    }
    if (h->async != NULL) redisFree(h->async);
    h->async = c;
    return true;
}

/* ---- requests with Ray's retry policy ------------------------------------- */

enum {
    K_HSET_ACTOR, K_HSET_NODE, K_INCR, K_HGET_ACTOR, K_HMGET, K_HEXISTS,
    K_HSETNX, K_PING, K_HSET_WORKER, K_HDEL_WORKER, K_HSCAN, K_HGET
};

typedef struct req {
    int kind, idx;
    int argc;
    const char *argv[MAX_ARGS];
    size_t argvlen[MAX_ARGS];
    char buf[MAX_ARGS][96]; /* owned copies of the arguments */
    char expect[32];        /* HGET_ACTOR: the value it must read */
    redisReply *reply;      /* the final reply (checked by the caller) */
} req;

static void reqInit(req *q, int kind, int idx)
{
    memset(q, 0, sizeof *q);
    q->kind = kind;
    q->idx = idx;
}

static void reqArg(req *q, const void *p, size_t n)
{
    if (n > sizeof q->buf[0]) n = sizeof q->buf[0];
    memcpy(q->buf[q->argc], p, n);
    q->argv[q->argc] = q->buf[q->argc];
    q->argvlen[q->argc] = n;
    q->argc++;
}

static void reqStr(req *q, const char *s) { reqArg(q, s, strlen(s)); }

static void tableKey(const ray_head *h, const char *table, char *out,
                     size_t len)
{
    snprintf(out, len, "RAY%s@%s", h->o.ns, table);
}

/* Binary ids, as Ray's are (bytes 0, '\r', '\n' included). */
static void actorId(int i, unsigned char id[16])
{
    for (int k = 0; k < 16; k++) id[k] = (unsigned char)(i * 31 + k * 7);
    id[3] = 0;
    id[5] = '\r';
    id[6] = '\n';
}

static void nodeId(int i, unsigned char id[28])
{
    for (int k = 0; k < 28; k++) id[k] = (unsigned char)(i * 17 + k * 3 + 1);
    id[0] = 0;
}

/* Send @q..@q+n on the data connection, pipelined, and read their replies in
 * order into q[i].reply. On a lost connection: a crash point, or (reconnect)
 * a new connection on which what was not answered is sent again as new
 * requests. False once the head hit a crash point. */
static bool pipeline(ray_head *h, req *q, int n)
{
    int sent_from = 0;
    for (;;) {
        for (int i = sent_from; i < n; i++) {
            redisAppendCommandArgv(h->async, q[i].argc, q[i].argv,
                                   q[i].argvlen);
        }
        int i = sent_from;
        for (; i < n; i++) {
            void *rep = NULL;
            if (redisGetReply(h->async, &rep) != REDIS_OK) break;
            q[i].reply = rep;
        }
        if (i == n) return true;
        if (!h->o.reconnect) {
            fatal(h, "connection to Redis lost: %s", h->async->errstr);
            return false;
        }
        h->reconnects++;
        h->resent += n - i;
        if (!headConnect(h)) return false;
        sent_from = i;
    }
}

/* Ray's RedisRequestContext: an error reply is retried alone after a
 * backoff, REQUEST_RETRIES times, then the GCS aborts. */
static bool retryErrors(ray_head *h, req *q, int n)
{
    static const int backoff[] = {100, 200, 400, 800, 1000};
    for (int i = 0; i < n; i++) {
        int attempt = 0;
        while (q[i].reply->type == REDIS_REPLY_ERROR) {
            h->error_replies++;
            if (attempt == REQUEST_RETRIES) {
                fatal(h, "Failed to run redis cmds: '%.*s' answered '%s' %d "
                      "times", (int)q[i].argvlen[0], q[i].argv[0],
                      q[i].reply->str, REQUEST_RETRIES + 1);
                return false;
            }
            pauseMs(backoff[attempt++]);
            freeReplyObject(q[i].reply);
            q[i].reply = NULL;
            if (!pipeline(h, &q[i], 1)) return false;
        }
    }
    return true;
}

static void freeReplies(req *q, int n)
{
    for (int i = 0; i < n; i++) {
        if (q[i].reply != NULL) freeReplyObject(q[i].reply);
        q[i].reply = NULL;
    }
}

/* Run @q (n requests) as Ray would: false at a crash point. */
static bool run(ray_head *h, req *q, int n)
{
    if (!pipeline(h, q, n)) return false;
    return retryErrors(h, q, n);
}

/* ---- what Ray does with the replies --------------------------------------- */

static bool wantType(ray_head *h, const req *q, int type)
{
    if (q->reply->type == type) return true;
    fatal(h, "RAY_CHECK: '%.*s' answered type %d ('%s'), Ray needs type %d",
          (int)q->argvlen[0], q->argv[0], q->reply->type, replyText(q->reply),
          type);
    return false;
}

/* AsyncGetAll: HSCAN until the cursor is 0; the cursor must be a bulk string
 * and the elements field/value pairs. */
static bool scanTable(ray_head *h, const char *table)
{
    char key[160], cursor[32] = "0";
    tableKey(h, table, key, sizeof key);
    do {
        req q;
        reqInit(&q, K_HSCAN, 0);
        reqStr(&q, "HSCAN");
        reqStr(&q, key);
        reqStr(&q, cursor);
        reqStr(&q, "COUNT");
        reqStr(&q, "1000");
        if (!run(h, &q, 1)) return false;
        const redisReply *r = q.reply;
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
            r->element[0]->type != REDIS_REPLY_STRING ||
            r->element[1]->type != REDIS_REPLY_ARRAY ||
            r->element[1]->elements % 2 != 0) {
            fatal(h, "RAY_CHECK: HSCAN %s answered a malformed reply", key);
            freeReplies(&q, 1);
            return false;
        }
        snprintf(cursor, sizeof cursor, "%s", r->element[0]->str);
        freeReplies(&q, 1);
    } while (strcmp(cursor, "0") != 0);
    return true;
}

/* The startup sequence after `ray start`'s session check: the GCS connects,
 * loads its tables (GcsInitData) and stores the session name with HSETNX;
 * a stored name that differs fails `ray start`. */
static bool headBoot(ray_head *h)
{
    if (!headConnect(h)) return false;
    static const char *tables[] = {"JOB", "NODE", "ACTOR", "ACTOR_TASK_SPEC",
                                   "PLACEMENT_GROUP"};
    for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++) {
        if (!scanTable(h, tables[i])) return false;
    }
    char kv[160];
    tableKey(h, "KV", kv, sizeof kv);
    req q[2];
    reqInit(&q[0], K_HSETNX, 0);
    reqStr(&q[0], "HSETNX");
    reqStr(&q[0], kv);
    reqStr(&q[0], "@namespace_session:session_name");
    reqStr(&q[0], h->session);
    reqInit(&q[1], K_HGET, 0);
    reqStr(&q[1], "HGET");
    reqStr(&q[1], kv);
    reqStr(&q[1], "@namespace_session:session_name");
    if (!run(h, q, 2)) return false;
    bool ok = wantType(h, &q[0], REDIS_REPLY_INTEGER) &&
              wantType(h, &q[1], REDIS_REPLY_STRING);
    if (ok && strcmp(q[1].reply->str, h->session) != 0) {
        fatal(h, "ray start: Session name %s does not match persisted value "
              "%s", h->session, q[1].reply->str);
        ok = false;
    }
    freeReplies(q, 2);
    /* Where the previous head left the job counter: ids go on from there. */
    if (ok) {
        reqInit(&q[0], K_HGET, 0);
        reqStr(&q[0], "GET");
        char jc[160];
        tableKey(h, "JobCounter", jc, sizeof jc);
        reqStr(&q[0], jc);
        if (!run(h, q, 1)) return false;
        if (q[0].reply->type == REDIS_REPLY_STRING) {
            h->last_job = atoll(q[0].reply->str);
        }
        freeReplies(q, 1);
    }
    return ok;
}

/* @cmd @table @id [@val]: the shape of every hash command of a batch. */
static void reqField(req *q, int kind, int idx, const char *cmd,
                     const char *table, const unsigned char *id, size_t idlen,
                     const char *val)
{
    reqInit(q, kind, idx);
    reqStr(q, cmd);
    reqStr(q, table);
    reqArg(q, id, idlen);
    if (val != NULL) reqStr(q, val);
}

/* One pipelined batch of the writes and reads a busy head sends. */
static int buildBatch(ray_head *h, long long b, req *q)
{
    char actors[160], nodes[160], kv[160], workers[160], jc[160];
    tableKey(h, "ACTOR", actors, sizeof actors);
    tableKey(h, "NODE", nodes, sizeof nodes);
    tableKey(h, "KV", kv, sizeof kv);
    tableKey(h, "WORKERS", workers, sizeof workers);
    tableKey(h, "JobCounter", jc, sizeof jc);
    int a = (int)(b % RAY_HEAD_ACTORS), prev = (a + RAY_HEAD_ACTORS - 1) %
                                               RAY_HEAD_ACTORS;
    int nd = (int)(b % RAY_HEAD_NODES);
    unsigned char id[28];
    char val[32];
    int n = 0;

    actorId(a, id);
    snprintf(val, sizeof val, "actor-%d-%lld", a, b);
    reqField(&q[n++], K_HSET_ACTOR, a, "HSET", actors, id, 16, val);
    nodeId(nd, id);
    snprintf(val, sizeof val, "node-%d-%lld", nd, b);
    reqField(&q[n++], K_HSET_NODE, nd, "HSET", nodes, id, 28, val);

    reqInit(&q[n], K_INCR, 0);
    reqStr(&q[n], "INCRBY");
    reqStr(&q[n], jc);
    reqStr(&q[n], "1");
    n++;

    actorId(prev, id);
    reqField(&q[n], K_HGET_ACTOR, prev, "HGET", actors, id, 16, NULL);
    snprintf(q[n].expect, sizeof q[n].expect, "%s", h->actor_value[prev]);
    n++;

    reqInit(&q[n], K_HMGET, 0);
    reqStr(&q[n], "HMGET");
    reqStr(&q[n], nodes);
    for (int k = 0; k < 3; k++) {
        nodeId(k, id);
        reqArg(&q[n], id, 28);
    }
    n++;

    actorId(a, id);
    reqField(&q[n++], K_HEXISTS, a, "HEXISTS", actors, id, 16, NULL);

    reqInit(&q[n], K_HSETNX, 0);
    reqStr(&q[n], "HSETNX");
    reqStr(&q[n], kv);
    reqStr(&q[n], "@namespace_session:session_name");
    reqStr(&q[n], h->session);
    n++;

    reqInit(&q[n], K_PING, 0);
    reqStr(&q[n], "PING");
    n++;

    snprintf(val, sizeof val, "worker-%lld", b);
    reqField(&q[n++], K_HSET_WORKER, 0, "HSET", workers,
             (const unsigned char *)val, strlen(val), "w");
    reqField(&q[n++], K_HDEL_WORKER, 0, "HDEL", workers,
             (const unsigned char *)val, strlen(val), NULL);
    return n;
}

/* What Ray checks of each reply, and what the head learns from it. */
static bool checkBatch(ray_head *h, req *q, int n)
{
    for (int i = 0; i < n; i++) {
        const redisReply *r = q[i].reply;
        switch (q[i].kind) {
            case K_HSET_ACTOR:
            case K_HSET_NODE:
                if (!wantType(h, &q[i], REDIS_REPLY_INTEGER)) return false;
                snprintf(q[i].kind == K_HSET_ACTOR ? h->actor_value[q[i].idx]
                                                   : h->node_value[q[i].idx],
                         32, "%.*s", (int)q[i].argvlen[3], q[i].argv[3]);
                break;
            case K_INCR:
                if (!wantType(h, &q[i], REDIS_REPLY_INTEGER)) return false;
                if (r->integer != h->last_job + 1) {
                    misstep(h, "job id %lld after %lld: %s", r->integer,
                            h->last_job,
                            r->integer > h->last_job + 1 ? "ids skipped"
                                                         : "an id reused");
                }
                h->last_job = r->integer;
                h->jobs++;
                break;
            case K_HGET_ACTOR:
                if (r->type != REDIS_REPLY_NIL &&
                    !wantType(h, &q[i], REDIS_REPLY_STRING))
                    return false;
                /* A row this head has not written yet (an earlier head's). */
                if (q[i].expect[0] == '\0') break;
                if (r->type == REDIS_REPLY_NIL) {
                    misstep(h, "HGET of actor %d read nil, the last "
                            "acknowledged write was '%s'", q[i].idx,
                            q[i].expect);
                    break;
                }
                if (strcmp(r->str, q[i].expect) != 0) {
                    misstep(h, "HGET of actor %d read '%s', the last "
                            "acknowledged write was '%s'", q[i].idx, r->str,
                            q[i].expect);
                }
                break;
            case K_HMGET:
                if (!wantType(h, &q[i], REDIS_REPLY_ARRAY)) return false;
                if (r->elements != 3) {
                    fatal(h, "HMGET of 3 fields answered %zu", r->elements);
                    return false;
                }
                break;
            case K_HEXISTS:
                if (!wantType(h, &q[i], REDIS_REPLY_INTEGER)) return false;
                if (r->integer != 1) {
                    misstep(h, "HEXISTS of actor %d just written: %lld",
                            q[i].idx, r->integer);
                }
                break;
            case K_HSETNX:
            case K_HSET_WORKER:
                if (!wantType(h, &q[i], REDIS_REPLY_INTEGER)) return false;
                break;
            case K_HDEL_WORKER:
                if (!wantType(h, &q[i], REDIS_REPLY_INTEGER)) return false;
                if (r->integer != 1) {
                    misstep(h, "HDEL of a worker just written deleted %lld",
                            r->integer);
                }
                break;
            case K_PING:
                if (!wantType(h, &q[i], REDIS_REPLY_STATUS)) return false;
                break;
        }
    }
    return true;
}

static void *headMain(void *arg)
{
    ray_head *h = arg;
    char stored[64] = "", why[400];
    long long took = 0;
    int rc = ray_get_key_sync(&h->o, stored, sizeof stored, &took, why,
                              sizeof why);
    if (rc < 0) {
        fatal(h, "ray start: RedisGetKeySync: %s", why);
        return NULL;
    }
    if (rc == 1) snprintf(h->session, sizeof h->session, "%s", stored);
    if (!headBoot(h)) return NULL;
    atomic_store(&h->connected, 1);
    req q[16];
    for (long long b = 0; !atomic_load(&h->stop); b++) {
        int n = buildBatch(h, b, q);
        long long t0 = nowMs();
        bool ok = run(h, q, n) && checkBatch(h, q, n);
        freeReplies(q, n);
        if (!ok) return NULL;
        long long took_ms = nowMs() - t0;
        if (took_ms > h->max_batch_ms) h->max_batch_ms = took_ms;
        atomic_fetch_add(&h->batches, 1);
    }
    return NULL;
}

void ray_head_start(ray_head *h, const ray_head_opts *o, const char *session)
{
    memset(h, 0, sizeof *h);
    h->o = *o;
    snprintf(h->session, sizeof h->session, "%s", session);
    if (pthread_create(&h->thread, NULL, headMain, h) != 0) {
        fatal(h, "cannot start the head's thread");
    }
}

void ray_head_stop(ray_head *h)
{
    atomic_store(&h->stop, 1);
    pthread_join(h->thread, NULL);
    if (h->async != NULL) redisFree(h->async);
    h->async = NULL;
}

bool ray_head_wait_batches(ray_head *h, long long base, long long more,
                           int timeout_ms)
{
    long long deadline = nowMs() + timeout_ms;
    while (atomic_load(&h->batches) < base + more) {
        if (atomic_load(&h->fatal) != 0 || nowMs() >= deadline) return false;
        pauseMs(10);
    }
    return true;
}

int ray_get_key_sync(const ray_head_opts *o, char *out, size_t len,
                     long long *took_ms, char *why, size_t why_len)
{
    char host[256];
    int port;
    *took_ms = 0;
    redisContext *c = handshake(o, host, sizeof host, &port, why, why_len);
    if (c == NULL) return -1;
    char kv[160];
    snprintf(kv, sizeof kv, "RAY%s@KV", o->ns);
    struct timeval tv = {GET_KEY_SYNC_MS / 1000, 0};
    redisSetTimeout(c, tv);
    long long t0 = nowMs();
    redisReply *r = redisCommand(c, "HGET %s %s", kv,
                                 "@namespace_session:session_name");
    *took_ms = nowMs() - t0;
    int rc = 0;
    if (r != NULL && r->type == REDIS_REPLY_STRING) {
        snprintf(out, len, "%s", r->str);
        rc = 1;
    }
    if (r != NULL) freeReplyObject(r);
    redisFree(c);
    return rc;
}

int ray_head_verify(const ray_head *h, char *why, size_t len)
{
    int bad = 0;
    why[0] = '\0';
    redisContext *c = tcpConnect(h->o.host, h->o.port);
    if (c == NULL) {
        snprintf(why, len, "cannot connect to verify");
        return 1;
    }
    if (h->o.password != NULL && h->o.password[0] != '\0') {
        redisReply *r = redisCommand(c, "AUTH %s", h->o.password);
        if (r != NULL) freeReplyObject(r);
    }
    char actors[160], nodes[160], jc[160];
    tableKey(h, "ACTOR", actors, sizeof actors);
    tableKey(h, "NODE", nodes, sizeof nodes);
    tableKey(h, "JobCounter", jc, sizeof jc);
    for (int t = 0; t < 2; t++) {
        int rows = t == 0 ? RAY_HEAD_ACTORS : RAY_HEAD_NODES;
        for (int i = 0; i < rows; i++) {
            const char *want = t == 0 ? h->actor_value[i] : h->node_value[i];
            if (want[0] == '\0') continue;
            unsigned char id[28];
            size_t idlen = t == 0 ? 16 : 28;
            if (t == 0) actorId(i, id);
            else nodeId(i, id);
            redisReply *r = redisCommand(c, "HGET %s %b", t == 0 ? actors
                                                                : nodes,
                                         id, idlen);
            if (r == NULL || r->type != REDIS_REPLY_STRING ||
                strcmp(r->str, want) != 0) {
                if (bad++ == 0) {
                    snprintf(why, len, "%s row %d holds '%s', the last "
                             "acknowledged write was '%s'",
                             t == 0 ? "actor" : "node", i,
                             r ? replyText(r) : c->errstr, want);
                }
            }
            if (r != NULL) freeReplyObject(r);
        }
    }
    redisReply *r = redisCommand(c, "GET %s", jc);
    long long got = r != NULL && r->type == REDIS_REPLY_STRING
                        ? atoll(r->str)
                        : -1;
    if (got != h->last_job) {
        if (bad++ == 0) {
            snprintf(why, len, "job counter %lld, the head was handed %lld",
                     got, h->last_job);
        }
    }
    if (r != NULL) freeReplyObject(r);
    redisFree(c);
    return bad;
}
