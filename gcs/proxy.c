#include "proxy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/read.h>
#include <hiredis/hiredis.h>
#include <uv.h>

#include "command.h"
#include "config.h"
#include "fsm.h"
#include "gcs.pb-c.h"
#include "log.h"
#include "rglue.h"

#define POOL_SIZE 4
#define TICK_MS 10
#define RECONNECT_MS 50
/* A write whose outcome is unknown keeps being retried under its request id
 * for this long, whatever --leader-wait-ms says: giving up leaves the client
 * not knowing whether it was applied (its connection is closed), so it waits
 * as long as is safe. The bound stays below the state machine's 5-minute
 * de-duplication window (fsm.c), past which a retry could no longer be
 * recognised as one and would apply twice; the minute in between absorbs
 * wall-clock skew between the old and the new leader. */
#define UNKNOWN_WAIT_MS (4 * 60 * 1000)

typedef struct fwd_req fwd_req;
struct fwd_req {
    fwd_req *next;
    proxy *p;
    reply_slot *slot;
    int kind;
    unsigned flags;
    uint64_t pin;
    int64_t deadline;
    bool unknown; /* an earlier attempt's outcome is unknown */
    uint64_t block_ms; /* may block that long on the leader (PG.WAIT) */
    void *data;   /* encoded Command */
    size_t len;
};

typedef struct fwd_list {
    fwd_req *head, *tail;
} fwd_list;

enum { UP_IDLE, UP_RESOLVING, UP_CONNECTING, UP_READY, UP_CLOSING };

typedef struct upstream upstream;
struct upstream {
    proxy *p;
    int state;
    /* A connection for one blocking command, closed after its reply, so it
     * holds up no other reply (the leader answers a connection in order). */
    bool ephemeral;
    upstream *next;        /* ephemeral ones, on p->ephemeral */
    fwd_req *pending;      /* to send once connected (ephemeral) */
    char addr[256];        /* host:port it connects or is connected to */
    uv_getaddrinfo_t gai;
    uv_connect_t creq;
    uv_tcp_t tcp;
    uv_write_t wreq;
    bool writing;
    resp_buf out, sending;
    redisReader *reader;
    fwd_list sent;         /* awaiting replies, in order */
    int64_t retry_at;      /* no reconnect before this (ms) */
};

struct proxy {
    server *srv;
    uv_timer_t timer;
    fwd_list waiting;
    fwd_list retry;        /* to go back in front of waiting, in order */
    upstream ups[POOL_SIZE];
    upstream *ephemeral;
    uint64_t leader_id;    /* cached directory lookup */
    uint64_t leader_applied;
    char leader_addr[256];
    bool closing;
    int open_handles;
    proxy_stats stats;
};

static int64_t nowMs(const proxy *p)
{
    return server_clock_ms(p->srv);
}

static void listPush(fwd_list *l, fwd_req *r)
{
    r->next = NULL;
    if (l->tail != NULL) l->tail->next = r;
    else l->head = r;
    l->tail = r;
}

static fwd_req *listPop(fwd_list *l)
{
    fwd_req *r = l->head;
    if (r != NULL) {
        l->head = r->next;
        if (l->head == NULL) l->tail = NULL;
        r->next = NULL;
    }
    return r;
}

/* Put @l in front of @into, keeping both orders. */
static void listPrepend(fwd_list *into, fwd_list *l)
{
    if (l->head == NULL) return;
    l->tail->next = into->head;
    if (into->tail == NULL) into->tail = l->tail;
    into->head = l->head;
    l->head = l->tail = NULL;
}

static void reqFinish(fwd_req *r)
{
    client_slot_done(r->slot);
    free(r->data);
    free(r);
}

static void reqFail(fwd_req *r, const char *msg)
{
    resp_add_error(&r->slot->reply, msg);
    r->p->srv->stats.commands_failed++;
    reqFinish(r);
}

/* The outcome is unknown and will not be learnt: close the client's
 * connection instead of replying. An error would claim "not applied". */
static void reqAbort(fwd_req *r, const char *why)
{
    client *c = r->slot->client;
    log_warn("closing the connection of client %s: %s",
             c != NULL ? c->addr : "(gone)", why);
    r->p->srv->stats.commands_failed++;
    client_slot_abort(r->slot);
    free(r->data);
    free(r);
}

/* An attempt of @r may have reached the log: from now on it waits for a
 * leader to tell the outcome, up to UNKNOWN_WAIT_MS from the first time. */
static void markUnknown(fwd_req *r)
{
    if (r->unknown) return;
    r->unknown = true;
    r->deadline = nowMs(r->p) + UNKNOWN_WAIT_MS;
}

/* Another attempt later, in order, ahead of everything waiting. */
static void reqRetry(fwd_req *r, bool unknown)
{
    proxy *p = r->p;
    if (unknown && !(r->flags & PROXY_RETRY_SAFE)) {
        reqAbort(r, "leadership changed while a write without a request id "
                    "was in flight; its outcome is unknown");
        return;
    }
    if (unknown) markUnknown(r);
    p->stats.retried++;
    listPush(&p->retry, r);
}

/* Answer raft's refusal @rc. A retry of a write whose first attempt may
 * have reached the log learns nothing from it (this member fail-stopped or
 * shuts down): the outcome stays unknown, so the connection is closed. */
static void reqFailRaft(fwd_req *r, int rc)
{
    if (r->unknown && !(r->flags & PROXY_IDEMPOTENT)) {
        char why[160];
        snprintf(why, sizeof why, "a write whose outcome is unknown cannot "
                                  "be retried here: %s", rglue_strerror(rc));
        reqAbort(r, why);
        return;
    }
    command_reply_raft_error(&r->slot->reply, rc);
    r->p->srv->stats.commands_failed++;
    reqFinish(r);
}

static void schedule(proxy *p);
static void drain(proxy *p);

/* ---- running on the leader ---------------------------------------------- */

static void onLocalWrite(void *arg, int status, const void *reply, size_t len)
{
    fwd_req *r = arg;
    if (status == 0) {
        if (len > 0 && *(const char *)reply == '-') {
            r->p->srv->stats.commands_failed++;
        }
        resp_add_raw(&r->slot->reply, reply, len);
        reqFinish(r);
        return;
    }
    if (status == RGLUE_ENOTLEADER || status == RGLUE_EUNKNOWN) {
        if (r->flags & PROXY_LOCAL_ONLY) {
            /* The member that forwarded it retries. */
            reqFail(r, status == RGLUE_EUNKNOWN
                           ? "TRYAGAIN leadership changed while the command "
                             "was in flight; its outcome is unknown"
                           : "TRYAGAIN this member is not the leader");
            return;
        }
        reqRetry(r, status == RGLUE_EUNKNOWN);
        schedule(r->p);
        return;
    }
    reqFailRaft(r, status);
}

/* Run the read in @r against the local state, now linearizable. */
static void runLocalRead(fwd_req *r)
{
    fsm_command fc;
    if (fsm_command_decode(&fc, r->data, r->len) != 0 || fc.argc == 0) {
        if (fc.msg != NULL) fsm_command_free(&fc);
        reqFail(r, "ERR out of memory");
        return;
    }
    const command *cmd = command_lookup(fc.argv[0].ptr, fc.argv[0].len);
    storage_txn *t = fsm_read_txn(r->p->srv->fsm);
    if (cmd == NULL || cmd->read == NULL) {
        resp_add_error(&r->slot->reply, "ERR not a read command");
    } else if (t == NULL) {
        resp_add_error(&r->slot->reply,
                       "ERR cannot read the state (see the server log)");
    } else {
        cmd->read(t, fc.argc, fc.argv, &r->slot->reply);
    }
    fsm_command_free(&fc);
    reqFinish(r);
}

static void onLocalRead(void *arg, int status)
{
    fwd_req *r = arg;
    if (status == 0) {
        runLocalRead(r);
        return;
    }
    if (status == RGLUE_ENOTLEADER && !(r->flags & PROXY_LOCAL_ONLY)) {
        reqRetry(r, false);
        schedule(r->p);
        return;
    }
    command_reply_raft_error(&r->slot->reply, status);
    r->p->srv->stats.commands_failed++;
    reqFinish(r);
}

/* ---- pooled connections to the leader ------------------------------------ */

static void upFree(upstream *u)
{
    proxy *p = u->p;
    for (upstream **pp = &p->ephemeral; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == u) {
            *pp = u->next;
            break;
        }
    }
    resp_buf_free(&u->out);
    resp_buf_free(&u->sending);
    free(u);
}

static void upClosed(uv_handle_t *h)
{
    upstream *u = h->data;
    proxy *p = u->p;
    u->state = UP_IDLE;
    if (u->ephemeral) upFree(u);
    p->open_handles--;
    if (p->closing) {
        if (p->open_handles == 0) free(p);
        return;
    }
    schedule(p);
}

/* Drop the connection; what was sent on it is tried again, in order. */
static void upReset(upstream *u, const char *why)
{
    proxy *p = u->p;
    if (u->state == UP_IDLE || u->state == UP_CLOSING ||
        u->state == UP_RESOLVING) {
        return;
    }
    if (why != NULL) log_info("connection to leader %s lost: %s", u->addr, why);
    fwd_list again = {NULL, NULL};
    fwd_req *r;
    while ((r = listPop(&u->sent)) != NULL) {
        if (r->slot == NULL) { /* the AUTH placeholder */
            free(r);
            continue;
        }
        /* It may have run: a write's outcome is now unknown. */
        bool unknown = !(r->flags & PROXY_IDEMPOTENT);
        if (p->closing) {
            /* An error would claim "not applied". */
            if (unknown) reqAbort(r, "shutting down while a forwarded "
                                     "write's outcome is unknown");
            else reqFail(r, "TRYAGAIN server is shutting down");
            continue;
        }
        if (unknown && !(r->flags & PROXY_RETRY_SAFE)) {
            reqRetry(r, true); /* fails it */
            continue;
        }
        if (unknown) markUnknown(r);
        p->stats.retried++;
        listPush(&again, r);
    }
    if (u->pending != NULL) {
        listPush(&again, u->pending);
        u->pending = NULL;
    }
    /* These were sent before anything now in the retry list was. */
    listPrepend(&p->retry, &again);
    if (u->reader != NULL) {
        redisReaderFree(u->reader);
        u->reader = NULL;
    }
    resp_buf_reset(&u->out);
    u->state = UP_CLOSING;
    u->retry_at = nowMs(p) + RECONNECT_MS;
    uv_close((uv_handle_t *)&u->tcp, upClosed);
}

static void upFlush(upstream *u);
static void upSend(upstream *u, fwd_req *r);

static void onUpWrite(uv_write_t *w, int status)
{
    upstream *u = w->data;
    u->writing = false;
    if (u->p->closing) {
        resp_buf_free(&u->sending);
        return;
    }
    resp_buf_reset(&u->sending);
    if (status != 0) {
        upReset(u, uv_strerror(status));
        return;
    }
    upFlush(u);
}

static void upFlush(upstream *u)
{
    if (u->state != UP_READY || u->writing || u->out.len == 0) return;
    resp_buf tmp = u->sending;
    u->sending = u->out;
    u->out = tmp;
    uv_buf_t b = uv_buf_init(u->sending.data, (unsigned)u->sending.len);
    u->wreq.data = u;
    int rc = uv_write(&u->wreq, (uv_stream_t *)&u->tcp, &b, 1, onUpWrite);
    if (rc != 0) {
        upReset(u, uv_strerror(rc));
        return;
    }
    u->writing = true;
}

/* Re-encode a reply from the leader as RESP for our client. */
static void encodeReply(resp_buf *b, const redisReply *r)
{
    switch (r->type) {
        case REDIS_REPLY_STRING:
            resp_add_bulk(b, r->str, r->len);
            break;
        case REDIS_REPLY_STATUS:
            resp_add_raw(b, "+", 1);
            resp_add_raw(b, r->str, r->len);
            resp_add_raw(b, "\r\n", 2);
            break;
        case REDIS_REPLY_ERROR:
            resp_add_raw(b, "-", 1);
            resp_add_raw(b, r->str, r->len);
            resp_add_raw(b, "\r\n", 2);
            break;
        case REDIS_REPLY_INTEGER:
            resp_add_integer(b, r->integer);
            break;
        case REDIS_REPLY_ARRAY:
            resp_add_array(b, r->elements);
            for (size_t i = 0; i < r->elements; i++) {
                encodeReply(b, r->element[i]);
            }
            break;
        default:
            resp_add_null(b);
    }
}

static bool isTryAgain(const redisReply *r)
{
    return r->type == REDIS_REPLY_ERROR && r->len >= 8 &&
           memcmp(r->str, "TRYAGAIN", 8) == 0;
}

/* An error the leader answers without proposing the command. */
static bool isRefusal(const redisReply *r)
{
    return isTryAgain(r) ||
           (r->type == REDIS_REPLY_ERROR && r->len >= 7 &&
            memcmp(r->str, "MISCONF", 7) == 0) ||
           (r->type == REDIS_REPLY_ERROR && r->len >= 11 &&
            memcmp(r->str, "CLUSTERDOWN", 11) == 0);
}

static void upAlloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    static char chunk[64 * 1024]; /* fed to the reader, which copies */
    (void)h;
    (void)suggested;
    *buf = uv_buf_init(chunk, sizeof chunk);
}

static void onUpRead(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    upstream *u = s->data;
    proxy *p = u->p;
    if (n < 0) {
        upReset(u, n == UV_EOF ? "closed by the leader" : uv_strerror((int)n));
        schedule(p);
        return;
    }
    if (n == 0) return;
    if (redisReaderFeed(u->reader, buf->base, (size_t)n) != REDIS_OK) {
        upReset(u, "out of memory");
        schedule(p);
        return;
    }
    fwd_list again = {NULL, NULL};
    for (;;) {
        void *reply = NULL;
        if (redisReaderGetReply(u->reader, &reply) != REDIS_OK) {
            upReset(u, "protocol error from the leader");
            break;
        }
        if (reply == NULL) break;
        fwd_req *r = listPop(&u->sent);
        if (r == NULL) {
            freeReplyObject(reply);
            upReset(u, "unexpected reply from the leader");
            break;
        }
        const redisReply *rep = reply;
        if (r->slot == NULL) { /* our AUTH */
            if (rep->type == REDIS_REPLY_ERROR) {
                log_warn("the leader at %s refused our AUTH: %.*s", u->addr,
                         (int)rep->len, rep->str);
            }
            free(r);
            freeReplyObject(reply);
            continue;
        }
        if (isTryAgain(rep)) {
            /* Not the leader any more, or the outcome is unknown there:
             * both are safe to retry under the same request id. */
            bool unknown = strstr(rep->str, "unknown") != NULL;
            if (!unknown || (r->flags & PROXY_RETRY_SAFE)) {
                if (unknown) markUnknown(r);
                p->stats.retried++;
                listPush(&again, r);
                freeReplyObject(reply);
                continue;
            }
        }
        if (r->unknown && isRefusal(rep)) {
            /* The leader refused this retry without proposing it (it
             * failed, or stops): says nothing of the first attempt. */
            p->stats.retried++;
            listPush(&again, r);
            freeReplyObject(reply);
            continue;
        }
        if (isTryAgain(rep) && strstr(rep->str, "unknown") != NULL) {
            freeReplyObject(reply);
            reqAbort(r, "the leader lost track of a write without a request "
                        "id; its outcome is unknown");
            continue;
        }
        if (rep->type == REDIS_REPLY_ERROR) p->srv->stats.commands_failed++;
        encodeReply(&r->slot->reply, rep);
        freeReplyObject(reply);
        reqFinish(r);
    }
    if (u->ephemeral && u->state == UP_READY && u->sent.head == NULL) {
        /* Its one command is answered (or goes back to the queue). */
        if (u->reader != NULL) {
            redisReaderFree(u->reader);
            u->reader = NULL;
        }
        u->state = UP_CLOSING;
        uv_close((uv_handle_t *)&u->tcp, upClosed);
    }
    if (again.head != NULL) {
        fwd_list tmp = again;
        /* Behind retries collected earlier, ahead of the waiting ones. */
        if (p->retry.tail != NULL) {
            p->retry.tail->next = tmp.head;
            p->retry.tail = tmp.tail;
        } else {
            p->retry = tmp;
        }
        /* The leader said it cannot serve: look it up again shortly. */
        p->leader_id = 0;
    }
    schedule(p);
}

static void onUpConnect(uv_connect_t *req, int status)
{
    upstream *u = req->data;
    /* Closed while connecting (upReset, proxy_close): the close callback
     * cleans up; closing it again would abort in libuv. */
    if (uv_is_closing((uv_handle_t *)&u->tcp)) return;
    if (status != 0) {
        if (status != UV_ECANCELED) {
            log_info("cannot connect to leader %s: %s", u->addr,
                     uv_strerror(status));
        }
        u->state = UP_CONNECTING; /* so that upReset closes the handle */
        upReset(u, NULL);
        return;
    }
    uv_tcp_nodelay(&u->tcp, 1);
    u->reader = redisReaderCreate();
    if (u->reader == NULL) {
        upReset(u, "out of memory");
        return;
    }
    u->state = UP_READY;
    const config *cfg = u->p->srv->cfg;
    if (cfg->requirepass[0] != '\0') {
        /* Pipelined ahead of everything; its reply is consumed by a
         * placeholder request below. */
        size_t n = strlen(cfg->requirepass);
        resp_add_array(&u->out, 2);
        resp_add_bulk(&u->out, "AUTH", 4);
        resp_add_bulk(&u->out, cfg->requirepass, n);
        fwd_req *auth = calloc(1, sizeof *auth);
        if (auth == NULL) {
            upReset(u, "out of memory");
            return;
        }
        auth->p = u->p;
        auth->kind = 0; /* marks the AUTH placeholder */
        listPush(&u->sent, auth);
    }
    int rc = uv_read_start((uv_stream_t *)&u->tcp, upAlloc, onUpRead);
    if (rc != 0) {
        upReset(u, uv_strerror(rc));
        return;
    }
    if (u->pending != NULL) {
        fwd_req *r = u->pending;
        u->pending = NULL;
        upSend(u, r);
    }
    schedule(u->p);
}

static void onResolved(uv_getaddrinfo_t *req, int status, struct addrinfo *ai)
{
    upstream *u = req->data;
    proxy *p = u->p;
    p->open_handles--;
    if (p->closing || status != 0 || ai == NULL) {
        if (!p->closing) {
            log_info("cannot resolve leader %s: %s", u->addr,
                     uv_strerror(status));
        }
        if (ai != NULL) uv_freeaddrinfo(ai);
        u->state = UP_IDLE;
        u->retry_at = nowMs(p) + RECONNECT_MS;
        if (u->pending != NULL) {
            fwd_req *r = u->pending;
            u->pending = NULL;
            if (p->closing) reqFail(r, "TRYAGAIN server is shutting down");
            else listPush(&p->retry, r);
        }
        if (u->ephemeral) upFree(u);
        if (p->closing) {
            if (p->open_handles == 0) free(p);
            return;
        }
        schedule(p);
        return;
    }
    uv_tcp_init(p->srv->loop, &u->tcp);
    u->tcp.data = u;
    p->open_handles++;
    u->state = UP_CONNECTING;
    u->creq.data = u;
    int rc = uv_tcp_connect(&u->creq, &u->tcp, ai->ai_addr, onUpConnect);
    uv_freeaddrinfo(ai);
    if (rc != 0) {
        log_info("cannot connect to leader %s: %s", u->addr, uv_strerror(rc));
        upReset(u, NULL);
    }
}

/* Start connecting @u to @addr ("host:port"); DNS is resolved off the loop,
 * so a pod name that now points elsewhere is followed. */
static void upConnect(upstream *u, const char *addr)
{
    proxy *p = u->p;
    snprintf(u->addr, sizeof u->addr, "%s", addr);
    char host[256];
    const char *colon = strrchr(addr, ':');
    if (colon == NULL || (size_t)(colon - addr) >= sizeof host) return;
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = '\0';
    /* [v6]:port */
    char *h = host;
    size_t hl = strlen(h);
    if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
        h[hl - 1] = '\0';
        h++;
    }
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    u->gai.data = u;
    u->state = UP_RESOLVING;
    p->open_handles++;
    int rc = uv_getaddrinfo(p->srv->loop, &u->gai, onResolved, h, colon + 1,
                            &hints);
    if (rc != 0) {
        p->open_handles--;
        u->state = UP_IDLE;
        u->retry_at = nowMs(p) + RECONNECT_MS;
    }
}

static void upSend(upstream *u, fwd_req *r)
{
    if (r->block_ms > 0) {
        int64_t now = nowMs(u->p);
        int64_t wait = (int64_t)r->p->srv->cfg->leader_wait_ms;
        /* Beyond any real time: no deadline (nor an overflow). */
        int64_t until = r->block_ms >= (uint64_t)(INT64_MAX - now - wait)
                            ? INT64_MAX
                            : now + (int64_t)r->block_ms + wait;
        if (until > r->deadline) r->deadline = until;
    }
    resp_add_array(&u->out, 2);
    resp_add_bulk(&u->out, "GCS.FWD", 7);
    resp_add_bulk(&u->out, r->data, r->len);
    listPush(&u->sent, r);
    r->p->stats.forwarded++;
    upFlush(u);
    schedule(r->p); /* watches for replies that never come */
}

/* ---- routing -------------------------------------------------------------- */

enum { ROUTED, WAIT };

/* The leader's client address, from the member directory; "" if unknown. */
static const char *leaderAddress(proxy *p, uint64_t leader)
{
    /* Looked up again whenever something was applied: a leader that
     * restarted elsewhere announces its new address through the log. */
    uint64_t applied = p->srv->fsm->applied_index;
    if (leader != p->leader_id || applied != p->leader_applied) {
        p->leader_id = leader;
        p->leader_applied = applied;
        if (fsm_member_address(p->srv->fsm, leader, p->leader_addr,
                               sizeof p->leader_addr) != 0) {
            p->leader_addr[0] = '\0';
        }
    }
    return p->leader_addr;
}

/* @r waited past its deadline: refuse it, or close its client's connection
 * when an earlier attempt's outcome is still unknown. */
static void reqExpire(fwd_req *r)
{
    r->p->stats.timed_out++;
    if (r->unknown && !(r->flags & PROXY_IDEMPOTENT)) {
        reqAbort(r, "no leader confirmed the outcome of a write in time; "
                    "it may or may not be applied");
    } else {
        reqFail(r, "TRYAGAIN no raft leader is available right now; "
                   "retry shortly");
    }
}

static int routeOne(proxy *p, fwd_req *r)
{
    server *srv = p->srv;
    if (nowMs(p) >= r->deadline) {
        reqExpire(r);
        return ROUTED;
    }
    uint64_t leader = 0;
    int role = rglue_role(srv->raft, &leader);
    if (role == RGLUE_ROLE_LEADER) {
        int rc;
        if (r->kind == PROXY_WRITE) {
            rc = rglue_propose(srv->raft, r->data, r->len, onLocalWrite, r);
        } else if (r->kind == PROXY_READ) {
            rc = rglue_read(srv->raft, onLocalRead, r);
        } else {
            reqFail(r, "TRYAGAIN leadership moved to this member; retry");
            return ROUTED;
        }
        if (rc == RGLUE_ENOTLEADER) return WAIT;
        if (rc != 0) reqFailRaft(r, rc);
        return ROUTED;
    }
    if (srv->fsm->failed && r->unknown && !(r->flags & PROXY_IDEMPOTENT)) {
        reqAbort(r, "this member stopped after a local failure while a "
                    "write's outcome was unknown");
        return ROUTED;
    }
    if (srv->fsm->failed || (r->flags & PROXY_LOCAL_ONLY)) {
        reqFail(r, srv->fsm->failed
                       ? "MISCONF this member stopped after a local failure "
                         "(see INFO raft); use another member"
                       : "TRYAGAIN this member is not the leader");
        return ROUTED;
    }
    if (leader == 0 || leader == srv->cfg->id) return WAIT;
    const char *addr = leaderAddress(p, leader);
    if (addr[0] == '\0') return WAIT; /* it has not announced itself yet */
    if (r->flags & PROXY_REDIRECT) {
        p->stats.redirected++;
        char msg[300];
        snprintf(msg, sizeof msg, "MOVED 0 %s", addr);
        reqFail(r, msg);
        return ROUTED;
    }
    if (r->block_ms > 0) {
        upstream *e = calloc(1, sizeof *e);
        if (e == NULL) return WAIT;
        e->p = p;
        e->ephemeral = true;
        e->state = UP_IDLE;
        resp_buf_init(&e->out);
        resp_buf_init(&e->sending);
        e->next = p->ephemeral;
        p->ephemeral = e;
        e->pending = r;
        upConnect(e, addr);
        if (e->state == UP_IDLE) { /* could not even start */
            e->pending = NULL;
            upFree(e);
            return WAIT;
        }
        return ROUTED;
    }
    upstream *u = &p->ups[r->pin % POOL_SIZE];
    if (u->state != UP_IDLE && strcmp(u->addr, addr) != 0) {
        upReset(u, "the leader changed");
        return WAIT;
    }
    if (u->state == UP_IDLE) {
        if (nowMs(p) >= u->retry_at) upConnect(u, addr);
        return WAIT;
    }
    if (u->state != UP_READY) return WAIT;
    upSend(u, r);
    return ROUTED;
}

/* Refuse what waits behind the head of the queue past its own deadline: a
 * write held for its unknown outcome (which may wait minutes) must not hold
 * other requests beyond theirs. Their replies still leave in each client's
 * order (reply slots), and a refused request was never sent anywhere. */
static void expireBehind(proxy *p)
{
    int64_t now = nowMs(p);
    fwd_req *prev = p->waiting.head;
    if (prev == NULL) return;
    for (fwd_req *r = prev->next, *next; r != NULL; r = next) {
        next = r->next;
        if (now < r->deadline) {
            prev = r;
            continue;
        }
        prev->next = next;
        if (p->waiting.tail == r) p->waiting.tail = prev;
        r->next = NULL;
        reqExpire(r);
    }
}

static void drain(proxy *p)
{
    listPrepend(&p->waiting, &p->retry);
    fwd_req *r;
    while ((r = p->waiting.head) != NULL) {
        listPop(&p->waiting);
        if (routeOne(p, r) == WAIT) {
            /* Keep the order: whatever comes later waits behind it. */
            r->next = p->waiting.head;
            p->waiting.head = r;
            if (p->waiting.tail == NULL) p->waiting.tail = r;
            expireBehind(p);
            break;
        }
        /* Routing may have queued retries (a reset connection). */
        listPrepend(&p->waiting, &p->retry);
    }
}

/* Whether a request sent on @u is past its deadline. Any, not just the
 * oldest: a retried write may wait longer (UNKNOWN_WAIT_MS) than a read
 * sent behind it, and the leader answers in order. */
static bool overdue(const upstream *u, int64_t now)
{
    for (const fwd_req *r = u->sent.head; r != NULL; r = r->next) {
        if (r->slot != NULL && now >= r->deadline) return true;
    }
    return false;
}

/* Reset @u if it can no longer deliver. */
static void checkUpstream(upstream *u, const char *addr, int64_t now)
{
    if (u->state != UP_READY && u->state != UP_CONNECTING) return;
    if (strcmp(u->addr, addr) != 0) {
        upReset(u, "it is not the leader any more");
    } else if (overdue(u, now)) {
        upReset(u, "no reply in time");
    }
}

/* Connections that can no longer deliver: to a member that is not the
 * leader any more, or silent past a request's deadline (a leader
 * that hangs keeps its connections open). What they carried is retried. */
static void checkUpstreams(proxy *p)
{
    uint64_t leader = 0;
    int role = rglue_role(p->srv->raft, &leader);
    const char *addr = "";
    if (role != RGLUE_ROLE_LEADER && leader != 0 && leader != p->srv->cfg->id)
        addr = leaderAddress(p, leader);
    int64_t now = nowMs(p);
    for (int i = 0; i < POOL_SIZE; i++) checkUpstream(&p->ups[i], addr, now);
    for (upstream *u = p->ephemeral, *next; u != NULL; u = next) {
        next = u->next; /* a reset may free it once closed, not now */
        checkUpstream(u, addr, now);
    }
}

/* Anything the timer must still watch: requests to route, or sent and not
 * yet answered (their deadlines), or a blocking command's connection. */
static bool hasWork(const proxy *p)
{
    if (p->waiting.head != NULL || p->retry.head != NULL) return true;
    if (p->ephemeral != NULL) return true;
    for (int i = 0; i < POOL_SIZE; i++) {
        if (p->ups[i].sent.head != NULL) return true;
    }
    return false;
}

static void onTick(uv_timer_t *t)
{
    proxy *p = t->data;
    checkUpstreams(p);
    drain(p);
    /* Decided after drain, which may just have sent a request that waited
     * for its connection: stopping then would leave nothing to notice a
     * leader that never answers it. */
    if (!hasWork(p)) uv_timer_stop(t);
}

/* Route soon: from the timer, never re-entering the caller. */
static void schedule(proxy *p)
{
    if (p->closing) return;
    if (!uv_is_active((uv_handle_t *)&p->timer)) {
        uv_timer_start(&p->timer, onTick, 0, TICK_MS);
    }
}

void proxy_kick(proxy *p)
{
    if (p == NULL) return;
    p->leader_id = 0; /* look the leader up again */
    if (p->waiting.head != NULL || p->retry.head != NULL) schedule(p);
}

void proxy_submit(proxy *p, reply_slot *slot, int kind, unsigned flags,
                  uint64_t pin, uint64_t block_ms, void *data, size_t len)
{
    fwd_req *r = calloc(1, sizeof *r);
    if (r == NULL) {
        free(data);
        resp_add_error(&slot->reply, "ERR out of memory");
        client_slot_done(slot);
        return;
    }
    r->p = p;
    r->slot = slot;
    r->kind = kind;
    r->flags = flags;
    r->pin = pin;
    r->block_ms = block_ms;
    r->data = data;
    r->len = len;
    r->deadline = nowMs(p) + (int64_t)p->srv->cfg->leader_wait_ms;
    if (p->closing) {
        reqFail(r, "TRYAGAIN server is shutting down");
        return;
    }
    listPush(&p->waiting, r);
    /* The common case, nothing waiting: route it now, in this call. */
    if (p->waiting.head == r && p->retry.head == NULL) {
        listPop(&p->waiting);
        if (routeOne(p, r) == ROUTED) {
            if (p->retry.head != NULL) schedule(p);
            return;
        }
        listPush(&p->waiting, r);
    }
    schedule(p);
}

int proxy_start(server *srv, proxy **out)
{
    proxy *p = calloc(1, sizeof *p);
    if (p == NULL) return -1;
    p->srv = srv;
    uv_timer_init(srv->loop, &p->timer);
    p->timer.data = p;
    p->open_handles = 1;
    for (int i = 0; i < POOL_SIZE; i++) {
        p->ups[i].p = p;
        p->ups[i].state = UP_IDLE;
        resp_buf_init(&p->ups[i].out);
        resp_buf_init(&p->ups[i].sending);
    }
    *out = p;
    return 0;
}

static void timerClosed(uv_handle_t *h)
{
    proxy *p = h->data;
    if (--p->open_handles == 0) free(p);
}

void proxy_close(proxy *p)
{
    if (p == NULL || p->closing) return;
    p->closing = true;
    listPrepend(&p->waiting, &p->retry);
    fwd_req *r;
    while ((r = listPop(&p->waiting)) != NULL) {
        reqFail(r, "TRYAGAIN server is shutting down");
    }
    for (int i = 0; i < POOL_SIZE; i++) {
        upstream *u = &p->ups[i];
        if (u->state == UP_CONNECTING || u->state == UP_READY) {
            upReset(u, NULL);
        }
        /* upReset queued the sent ones on p->retry when not closing;
         * closing fails them instead. */
        resp_buf_free(&u->out);
        if (!u->writing) resp_buf_free(&u->sending);
        if (u->state == UP_RESOLVING) uv_cancel((uv_req_t *)&u->gai);
    }
    for (upstream *u = p->ephemeral, *next; u != NULL; u = next) {
        next = u->next;
        if (u->state == UP_CONNECTING || u->state == UP_READY) {
            upReset(u, NULL);
        } else if (u->state == UP_RESOLVING) {
            uv_cancel((uv_req_t *)&u->gai);
        }
    }
    uv_close((uv_handle_t *)&p->timer, timerClosed);
}

void proxy_get_stats(proxy *p, proxy_stats *st)
{
    memset(st, 0, sizeof *st);
    if (p == NULL) return;
    *st = p->stats;
    size_t n = 0;
    for (fwd_req *r = p->waiting.head; r != NULL; r = r->next) n++;
    for (fwd_req *r = p->retry.head; r != NULL; r = r->next) n++;
    st->waiting = n;
}
