#include "pg_wait.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "ray.pb-c.h"
#include "table.h"

#define BUCKETS 256
#define SWEEP_MS 5000
#define ID_MAX 64

typedef struct waiter waiter;
struct waiter {
    uv_timer_t timer; /* started only with a timeout; closed on completion */
    pg_wait *w;
    reply_slot *slot;
    waiter *prev, *next; /* in its bucket */
    size_t bucket;
    uint8_t id[ID_MAX];
    size_t len;
};

struct pg_wait {
    uv_loop_t *loop;
    uv_timer_t sweep; /* drops waiters whose client went away */
    waiter *buckets[BUCKETS];
    size_t count;
    size_t open_handles; /* handles not yet through their close callback */
    bool closing;
};

static size_t bucketOf(const void *id, size_t len)
{
    const uint8_t *p = id;
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++) h = (h ^ p[i]) * 16777619u;
    return h % BUCKETS;
}

static void maybeFree(pg_wait *w)
{
    if (w->closing && w->open_handles == 0) free(w);
}

static void onWaiterClosed(uv_handle_t *h)
{
    waiter *x = h->data;
    pg_wait *w = x->w;
    free(x);
    w->open_handles--;
    maybeFree(w);
}

enum { DONE_OK, DONE_REMOVED, DONE_TIMEOUT, DONE_SHUTDOWN };

/* Reply to @x's client (if still there), unlink and free @x. */
static void complete(waiter *x, int how)
{
    pg_wait *w = x->w;
    if (x->prev != NULL) x->prev->next = x->next;
    else w->buckets[x->bucket] = x->next;
    if (x->next != NULL) x->next->prev = x->prev;
    w->count--;
    resp_buf *out = &x->slot->reply;
    switch (how) {
        case DONE_OK: resp_add_status(out, "OK"); break;
        case DONE_REMOVED: resp_add_error(out, PG_WAIT_ERR_REMOVED); break;
        case DONE_TIMEOUT: resp_add_null(out); break;
        default: resp_add_error(out, "TRYAGAIN server is shutting down");
    }
    client_slot_done(x->slot); /* frees it when the client is gone */
    x->slot = NULL;
    uv_timer_stop(&x->timer);
    uv_close((uv_handle_t *)&x->timer, onWaiterClosed);
}

static void onTimeout(uv_timer_t *t)
{
    complete(t->data, DONE_TIMEOUT);
}

static void onSweep(uv_timer_t *t)
{
    pg_wait *w = t->data;
    for (size_t b = 0; b < BUCKETS; b++) {
        waiter *x = w->buckets[b];
        while (x != NULL) {
            waiter *next = x->next;
            if (x->slot->client == NULL) complete(x, DONE_SHUTDOWN);
            x = next;
        }
    }
}

static void onSweepClosed(uv_handle_t *h)
{
    pg_wait *w = h->data;
    w->open_handles--;
    maybeFree(w);
}

int pg_wait_create(uv_loop_t *loop, pg_wait **out)
{
    pg_wait *w = calloc(1, sizeof *w);
    if (w == NULL) return UV_ENOMEM;
    w->loop = loop;
    int rc = uv_timer_init(loop, &w->sweep);
    if (rc != 0) {
        free(w);
        return rc;
    }
    w->sweep.data = w;
    w->open_handles = 1;
    rc = uv_timer_start(&w->sweep, onSweep, SWEEP_MS, SWEEP_MS);
    if (rc != 0) {
        w->closing = true; /* freed by the close callback */
        uv_close((uv_handle_t *)&w->sweep, onSweepClosed);
        return rc;
    }
    uv_unref((uv_handle_t *)&w->sweep); /* never keeps the loop running */
    *out = w;
    return 0;
}

int pg_wait_add(pg_wait *w, reply_slot *slot, const void *id, size_t len,
                uint64_t timeout_ms)
{
    if (len > ID_MAX || w->closing) return -1;
    waiter *x = calloc(1, sizeof *x);
    if (x == NULL) return -1;
    x->w = w;
    memcpy(x->id, id, len);
    x->len = len;
    x->bucket = bucketOf(id, len);
    if (uv_timer_init(w->loop, &x->timer) != 0) {
        free(x);
        return -1;
    }
    x->timer.data = x;
    w->open_handles++;
    if (timeout_ms > 0 &&
        uv_timer_start(&x->timer, onTimeout, timeout_ms, 0) != 0) {
        uv_close((uv_handle_t *)&x->timer, onWaiterClosed);
        return -1;
    }
    x->slot = slot;
    x->next = w->buckets[x->bucket];
    if (x->next != NULL) x->next->prev = x;
    w->buckets[x->bucket] = x;
    w->count++;
    return 0;
}

void pg_wait_on_events(void *ctx, const fsm_event *ev, size_t n)
{
    pg_wait *w = ctx;
    for (size_t i = 0; i < n && w->count > 0; i++) {
        if (ev[i].key_len > ID_MAX || strcmp(ev[i].table, TABLE_NAME_PG) != 0) {
            continue;
        }
        size_t b = bucketOf(ev[i].key, ev[i].key_len);
        /* Deleted (FLUSHALL): as good as removed. */
        int how = ev[i].kind == FSM_EVENT_DELETE ? DONE_REMOVED : -1;
        for (waiter *x = w->buckets[b], *next; x != NULL; x = next) {
            next = x->next;
            if (x->len != ev[i].key_len ||
                memcmp(x->id, ev[i].key, x->len) != 0) {
                continue;
            }
            if (how < 0) {
                Ray__Rpc__PlacementGroupTableData *g =
                    ray__rpc__placement_group_table_data__unpack(
                        NULL, ev[i].value_len, ev[i].value);
                if (g == NULL) break; /* out of memory: the timeout answers */
                how = g->state ==
                              RAY__RPC__PLACEMENT_GROUP_TABLE_DATA__PLACEMENT_GROUP_STATE__CREATED
                          ? DONE_OK
                      : g->state ==
                              RAY__RPC__PLACEMENT_GROUP_TABLE_DATA__PLACEMENT_GROUP_STATE__REMOVED
                          ? DONE_REMOVED
                          : INT32_MAX; /* still waiting */
                ray__rpc__placement_group_table_data__free_unpacked(g, NULL);
            }
            if (how == INT32_MAX) break;
            complete(x, how);
        }
    }
}

size_t pg_wait_count(const pg_wait *w)
{
    return w->count;
}

void pg_wait_close(pg_wait *w)
{
    if (w == NULL || w->closing) return;
    w->closing = true;
    for (size_t b = 0; b < BUCKETS; b++) {
        while (w->buckets[b] != NULL) complete(w->buckets[b], DONE_SHUTDOWN);
    }
    uv_timer_stop(&w->sweep);
    uv_close((uv_handle_t *)&w->sweep, onSweepClosed);
}
