/* cluster_format: see cluster_format.h. */
#include "cluster_format.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "config.h"
#include "fsm.h"
#include "log.h"
#include "member_dial.h"
#include "rglue.h"

#define RAISE_PERIOD_MS 2000
#define PROBE_TIMEOUT_MS 1000
#define MAX_PROBES 16

typedef struct probe {
    uint64_t id;
    char addr[256];     /* host:port of its client listener */
    uint64_t max;       /* the newest format it applies */
    bool answered;
    char why[128];      /* why it did not answer */
} probe;

struct format_raiser {
    server *srv;
    uv_timer_t timer;
    uv_work_t work;
    bool busy;          /* probes in the threadpool */
    bool closing;
    bool timer_closed;
    probe probes[MAX_PROBES];
    size_t n;
    char password[sizeof ((config *)0)->requirepass];
    uint64_t waiting_on; /* the member last logged as holding it back */
};

static void maybeFree(format_raiser *fr)
{
    if (fr->closing && fr->timer_closed && !fr->busy) free(fr);
}

/* Threadpool: ask one member for GCS.VERSION (blocking hiredis is fine
 * off the loop). */
static void probeOne(probe *p, const char *password)
{
    redisContext *c = member_dial(p->addr, password, PROBE_TIMEOUT_MS,
                                  PROBE_TIMEOUT_MS, p->why, sizeof p->why);
    if (c == NULL) return;
    redisReply *r = redisCommand(c, "GCS.VERSION");
    if (r == NULL) {
        snprintf(p->why, sizeof p->why, "%s", c->errstr);
    } else if (r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
               r->element[1]->type == REDIS_REPLY_INTEGER &&
               r->element[1]->integer > 0) {
        p->max = (uint64_t)r->element[1]->integer;
        p->answered = true;
    } else if (r->type == REDIS_REPLY_ERROR &&
               strstr(r->str, "unknown command") != NULL) {
        p->max = 1; /* a release from before formats */
        p->answered = true;
    } else {
        snprintf(p->why, sizeof p->why, "GCS.VERSION answered '%s'",
                 r->type == REDIS_REPLY_ERROR ? r->str : "(malformed)");
    }
    if (r != NULL) freeReplyObject(r);
    redisFree(c);
}

static void probeWork(uv_work_t *w)
{
    format_raiser *fr = w->data;
    for (size_t i = 0; i < fr->n; i++) probeOne(&fr->probes[i], fr->password);
}

static void onRaised(void *arg, int status, const void *reply, size_t len)
{
    (void)arg;
    if (status != 0) {
        log_info("raising the cluster format failed: %s",
                 rglue_strerror(status));
    } else if (len > 0 && *(const char *)reply == '-') {
        log_info("raising the cluster format was refused: %.*s",
                 (int)(len > 2 ? len - 2 : len), (const char *)reply);
    }
}

static void raiseTo(format_raiser *fr, uint64_t target)
{
    fsm *f = fr->srv->fsm;
    char n[24];
    snprintf(n, sizeof n, "%" PRIu64, target);
    resp_arg argv[2] = {{"GCS.CLUSTER.FORMAT", 18}, {n, strlen(n)}};
    void *data;
    size_t len;
    if (fsm_encode_command(0, 2, argv, &data, &len) != 0) return;
    int rc = rglue_propose(fr->srv->raft, data, len, onRaised, fr);
    free(data);
    if (rc != 0) {
        log_info("cannot raise the cluster format: %s", rglue_strerror(rc));
        return;
    }
    log_notice("raising the cluster format from %" PRIu64 " to %" PRIu64
               ": every member applies it", f->cluster_format, target);
}

static void probeDone(uv_work_t *w, int status)
{
    format_raiser *fr = w->data;
    fr->busy = false;
    if (fr->closing || status != 0) {
        maybeFree(fr);
        return;
    }
    fsm *f = fr->srv->fsm;
    if (rglue_role(fr->srv->raft, NULL) != RGLUE_ROLE_LEADER) return;
    uint64_t target = f->format_max;
    for (size_t i = 0; i < fr->n; i++) {
        const probe *p = &fr->probes[i];
        if (!p->answered) {
            if (fr->waiting_on != p->id) {
                log_info("cluster format stays %" PRIu64 ": member %" PRIu64
                         " at %s does not answer (%s)", f->cluster_format,
                         p->id, p->addr, p->why);
                fr->waiting_on = p->id;
            }
            return;
        }
        if (p->max < target) target = p->max;
    }
    if (target > f->cluster_format) raiseTo(fr, target);
}

static void onTick(uv_timer_t *t)
{
    format_raiser *fr = t->data;
    server *srv = fr->srv;
    fsm *f = srv->fsm;
    if (fr->closing || fr->busy || f->failed ||
        f->cluster_format >= f->format_max ||
        rglue_role(srv->raft, NULL) != RGLUE_ROLE_LEADER) {
        return;
    }
    rglue_status st;
    rglue_get_status(srv->raft, &st);
    fr->n = 0;
    for (size_t i = 0; i < st.n_members; i++) {
        const rglue_member *m = &st.members[i];
        if (m->id == srv->cfg->id) continue;
        if (fr->n == MAX_PROBES) return;
        probe *p = &fr->probes[fr->n++];
        memset(p, 0, sizeof *p);
        p->id = m->id;
        if (fsm_member_address(f, m->id, p->addr, sizeof p->addr) != 0 ||
            p->addr[0] == '\0') {
            return; /* not announced yet: ask again at the next tick */
        }
    }
    snprintf(fr->password, sizeof fr->password, "%s", srv->cfg->requirepass);
    if (fr->n == 0) {
        probeDone(&fr->work, 0); /* a lone member: itself is everyone */
        return;
    }
    fr->busy = true;
    if (uv_queue_work(t->loop, &fr->work, probeWork, probeDone) != 0) {
        fr->busy = false;
    }
}

static void onTimerClosed(uv_handle_t *h)
{
    format_raiser *fr = h->data;
    fr->timer_closed = true;
    maybeFree(fr);
}

int format_raiser_start(uv_loop_t *loop, server *srv, format_raiser **out)
{
    format_raiser *fr = calloc(1, sizeof *fr);
    if (fr == NULL) return -1;
    fr->srv = srv;
    fr->work.data = fr;
    uv_timer_init(loop, &fr->timer);
    fr->timer.data = fr;
    uv_timer_start(&fr->timer, onTick, RAISE_PERIOD_MS, RAISE_PERIOD_MS);
    /* A periodic check must not keep a stopping loop alive. */
    uv_unref((uv_handle_t *)&fr->timer);
    *out = fr;
    return 0;
}

void format_raiser_close(format_raiser *fr)
{
    if (fr == NULL || fr->closing) return;
    fr->closing = true;
    uv_close((uv_handle_t *)&fr->timer, onTimerClosed);
}
