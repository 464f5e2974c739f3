#include "node_health.h"

#include <stdlib.h>
#include <string.h>

#include "fsm.h"
#include "log.h"
#include "resp.h"
#include "rglue.h"
#include "table.h"

#define DEATH_REASON "health check failed"

/* One node's last heartbeat, in an open-addressing table keyed by id. */
typedef struct beat {
    bool used;
    uint8_t id[NODE_ID_LEN];
    uint64_t last_ms;     /* loop time of the last heartbeat (or grace start) */
    uint64_t proposed_ms; /* when NODE.DEAD was last proposed; 0: never */
} beat;

typedef struct beats {
    beat *v;
    size_t cap; /* a power of two, or 0 */
    size_t n;
} beats;

struct node_health {
    uv_loop_t *loop;
    struct fsm *fsm;
    rglue *raft;
    node_health_config cfg;
    uv_timer_t timer;
    bool leader;
    beats table;
    uint64_t declared;
    bool closing;
};

/* ---- the table ------------------------------------------------------------ */

static size_t slotOf(const beats *b, const uint8_t *id)
{
    uint64_t h = 1469598103934665603u;
    for (size_t i = 0; i < NODE_ID_LEN; i++) h = (h ^ id[i]) * 1099511628211u;
    size_t i = (size_t)h & (b->cap - 1);
    while (b->v[i].used && memcmp(b->v[i].id, id, NODE_ID_LEN) != 0) {
        i = (i + 1) & (b->cap - 1);
    }
    return i;
}

static beat *lookup(beats *b, const uint8_t *id)
{
    if (b->cap == 0) return NULL;
    beat *e = &b->v[slotOf(b, id)];
    return e->used ? e : NULL;
}

static void freeBeats(beats *b)
{
    free(b->v);
    memset(b, 0, sizeof *b);
}

/* Insert (or find) @id; NULL when memory is short. Keeps the load at most
 * one half. */
static beat *insert(beats *b, const uint8_t *id, uint64_t now)
{
    if (2 * (b->n + 1) > b->cap) {
        beats bigger = {NULL, b->cap ? 2 * b->cap : 64, 0};
        bigger.v = calloc(bigger.cap, sizeof *bigger.v);
        if (bigger.v == NULL) return NULL;
        for (size_t i = 0; i < b->cap; i++) {
            if (!b->v[i].used) continue;
            bigger.v[slotOf(&bigger, b->v[i].id)] = b->v[i];
            bigger.n++;
        }
        freeBeats(b);
        *b = bigger;
    }
    beat *e = &b->v[slotOf(b, id)];
    if (!e->used) {
        memset(e, 0, sizeof *e);
        e->used = true;
        memcpy(e->id, id, NODE_ID_LEN);
        e->last_ms = now;
        b->n++;
    }
    return e;
}

/* ---- leadership ------------------------------------------------------------ */

static void setLeader(node_health *h, bool leader)
{
    if (leader == h->leader) return;
    /* Either way, heartbeats known so far are not to be trusted: a new
     * leader starts everyone's grace period now, a follower keeps none. */
    freeBeats(&h->table);
    h->leader = leader;
}

bool node_health_is_leader(node_health *h)
{
    rglue_status st;
    rglue_get_status(h->raft, &st);
    setLeader(h, st.role == RGLUE_ROLE_LEADER);
    return h->leader;
}

void node_health_role_changed(node_health *h, int role)
{
    setLeader(h, role == RGLUE_ROLE_LEADER);
}

int node_health_beat(node_health *h, const void *id, size_t len)
{
    if (len != NODE_ID_LEN) return -1;
    beat *e = insert(&h->table, id, uv_now(h->loop));
    if (e == NULL) return -1;
    e->last_ms = uv_now(h->loop);
    return 0;
}

/* ---- the check -------------------------------------------------------------- */

typedef struct proposal {
    uint8_t id[NODE_ID_LEN];
} proposal;

static void onProposed(void *arg, int status, const void *reply, size_t len)
{
    proposal *p = arg;
    if (status != 0) {
        log_warn("health check: NODE.DEAD for a node was not applied (%s); "
                 "it is proposed again after another grace period",
                 rglue_strerror(status));
    } else if (len > 0 && *(const char *)reply == '-') {
        log_info("health check: NODE.DEAD answered %.*s",
                 (int)(len > 2 ? len - 2 : len), (const char *)reply);
    }
    free(p);
}

static void proposeDeath(node_health *h, const uint8_t *id)
{
    resp_arg argv[3] = {{"NODE.DEAD", 9},
                        {(const char *)id, NODE_ID_LEN},
                        {DEATH_REASON, sizeof DEATH_REASON - 1}};
    void *data;
    size_t len;
    proposal *p = malloc(sizeof *p);
    if (p == NULL || fsm_encode_command(0, 3, argv, &data, &len) != 0) {
        free(p);
        log_warn("health check: out of memory proposing NODE.DEAD");
        return;
    }
    memcpy(p->id, id, NODE_ID_LEN);
    int rc = rglue_propose(h->raft, data, len, onProposed, p);
    free(data);
    if (rc != 0) {
        log_warn("health check: cannot propose NODE.DEAD: %s",
                 rglue_strerror(rc));
        free(p);
        return;
    }
    h->declared++;
    log_notice("health check: no heartbeat from a node for %llu ms; "
               "declaring it dead",
               (unsigned long long)(h->cfg.period_ms *
                                    h->cfg.failure_threshold));
}

typedef struct checkScan {
    node_health *h;
    beats next;     /* the table for the nodes ALIVE now */
    uint64_t now;
    uint8_t (*dead)[NODE_ID_LEN];
    size_t n_dead, cap_dead;
    bool failed;
} checkScan;

static int checkNode(void *arg, storage_slice key, storage_slice value)
{
    (void)value;
    checkScan *cs = arg;
    if (key.len != NODE_ID_LEN) return 0;
    const beat *old = lookup(&cs->h->table, key.data);
    beat *e = insert(&cs->next, key.data, cs->now);
    if (e == NULL) {
        cs->failed = true;
        return 1;
    }
    if (old != NULL) *e = *old; /* else: first seen, grace starts now */
    uint64_t limit = cs->h->cfg.period_ms * cs->h->cfg.failure_threshold;
    bool silent = cs->now - e->last_ms >= limit;
    bool due = e->proposed_ms == 0 || cs->now - e->proposed_ms >= limit;
    if (silent && due) {
        if (cs->n_dead == cs->cap_dead) {
            size_t cap = cs->cap_dead ? 2 * cs->cap_dead : 8;
            void *d = realloc(cs->dead, cap * sizeof *cs->dead);
            if (d == NULL) {
                cs->failed = true;
                return 1;
            }
            cs->dead = d;
            cs->cap_dead = cap;
        }
        memcpy(cs->dead[cs->n_dead++], key.data, NODE_ID_LEN);
        e->proposed_ms = cs->now;
    }
    return 0;
}

void node_health_check(node_health *h)
{
    if (h->closing || !node_health_is_leader(h)) return;
    storage_txn *t = fsm_read_txn(h->fsm);
    if (t == NULL) return; /* logged; try again next period */
    checkScan cs = {.h = h, .now = uv_now(h->loop)};
    int rc = storage_table_scan(t, INDEX_NODE_ALIVE, (storage_slice){"", 0},
                                (storage_slice){"", 0}, checkNode, &cs);
    if (rc != 0 || cs.failed) {
        log_warn("health check skipped: %s",
                 cs.failed ? "out of memory" : storage_strerror(rc));
        freeBeats(&cs.next);
        free(cs.dead);
        return;
    }
    /* Nodes no longer ALIVE drop out with the old table. */
    freeBeats(&h->table);
    h->table = cs.next;
    for (size_t i = 0; i < cs.n_dead; i++) proposeDeath(h, cs.dead[i]);
    free(cs.dead);
}

static void onTimer(uv_timer_t *t)
{
    node_health_check(t->data);
}

static void onClosed(uv_handle_t *handle)
{
    node_health *h = handle->data;
    freeBeats(&h->table);
    free(h);
}

int node_health_start(uv_loop_t *loop, struct fsm *f, struct rglue *raft,
                      const node_health_config *cfg, node_health **out)
{
    node_health *h = calloc(1, sizeof *h);
    if (h == NULL) return UV_ENOMEM;
    h->loop = loop;
    h->fsm = f;
    h->raft = raft;
    h->cfg = *cfg;
    int rc = uv_timer_init(loop, &h->timer);
    if (rc != 0) {
        free(h);
        return rc;
    }
    h->timer.data = h;
    rc = uv_timer_start(&h->timer, onTimer, cfg->period_ms, cfg->period_ms);
    if (rc != 0) {
        h->closing = true;
        uv_close((uv_handle_t *)&h->timer, onClosed); /* frees @h */
        return rc;
    }
    /* A periodic check must not keep a stopping loop alive. */
    uv_unref((uv_handle_t *)&h->timer);
    *out = h;
    return 0;
}

size_t node_health_tracked(const node_health *h)
{
    return h->table.n;
}

uint64_t node_health_declared(const node_health *h)
{
    return h->declared;
}

void node_health_close(node_health *h)
{
    if (h == NULL || h->closing) return;
    h->closing = true;
    uv_timer_stop(&h->timer);
    uv_close((uv_handle_t *)&h->timer, onClosed);
}
