/* table_env: a state machine on a temp dir for the typed-table tests, fed
 * one command per log entry through the hooks rglue calls, with replies
 * parsed back and the change events it emits recorded. */
#ifndef GCS_TEST_TABLE_ENV_H
#define GCS_TEST_TABLE_ENV_H

#include <unistd.h>

#include "fsm.h"
#include "table_records.h"

/* ---- the state machine ------------------------------------------------------ */

typedef struct te_event {
    uint64_t revision;
    char table[32];
    blob key;
    int kind;
    blob value;
} te_event;

typedef struct te_env {
    char dir[64];
    fsm f;
    rglue_fsm hooks;
    uint64_t index;   /* of the last entry applied */
    int64_t time_ms;  /* leader time of the next entry */
    te_event *ev;
    size_t n_ev, cap_ev;
    blob reply;       /* of the last command */
} te_env;

static inline void te_on_events(void *ctx, const fsm_event *ev, size_t n)
{
    te_env *e = ctx;
    for (size_t i = 0; i < n; i++) {
        if (e->n_ev == e->cap_ev) {
            e->cap_ev = e->cap_ev ? 2 * e->cap_ev : 256;
            e->ev = realloc(e->ev, e->cap_ev * sizeof *e->ev);
            cr_assert_not_null(e->ev);
        }
        te_event *x = &e->ev[e->n_ev++];
        x->revision = ev[i].revision;
        snprintf(x->table, sizeof x->table, "%s", ev[i].table);
        x->key = te_copy(ev[i].key, ev[i].key_len);
        x->kind = ev[i].kind;
        x->value = te_copy(ev[i].value, ev[i].value_len);
    }
}

static inline void te_open(te_env *e)
{
    memset(e, 0, sizeof *e);
    snprintf(e->dir, sizeof e->dir, "/tmp/gcsd-tables-XXXXXX");
    cr_assert_not_null(mkdtemp(e->dir));
    char err[256];
    cr_assert_eq(fsm_open(&e->f, e->dir, 256u << 20, err, sizeof err), 0,
                 "%s", err);
    fsm_raft_hooks(&e->f, &e->hooks);
    e->f.on_events = te_on_events;
    e->f.on_events_ctx = e;
    e->index = 1;
    e->time_ms = 1700000000000;
}

static inline void te_close(te_env *e)
{
    fsm_close(&e->f);
    free(e->ev);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", e->dir);
    cr_assert_eq(system(cmd), 0);
}

static inline void te_collect(void *token, size_t i, const void *reply,
                              size_t len)
{
    te_env *e = token;
    cr_assert_eq(i, 0);
    e->reply = te_copy(reply, len);
}

/* Encode @argc arguments as one log command, as dispatch does. */
static inline rglue_cmd te_encode(size_t argc, const blob *argv)
{
    resp_arg a[16];
    cr_assert_leq(argc, 16u);
    for (size_t i = 0; i < argc; i++) {
        a[i].ptr = (const char *)argv[i].p;
        a[i].len = argv[i].n;
    }
    void *data;
    size_t len;
    cr_assert_eq(fsm_encode_command(0, argc, a, &data, &len), 0);
    te_keep(data);
    return (rglue_cmd){data, len};
}

/* Apply one command as its own log entry; returns the raw RESP reply. */
static inline blob te_run(te_env *e, size_t argc, const blob *argv)
{
    rglue_cmd c = te_encode(argc, argv);
    e->reply = (blob){NULL, 0};
    e->index++;
    e->time_ms += 10;
    cr_assert_eq(e->hooks.apply(e->hooks.ctx, e->index, e->time_ms, &c, 1,
                                te_collect, e),
                 0);
    cr_assert_not_null(e->reply.p, "no reply");
    return e->reply;
}

#define TE_ARGS(...) ((blob[]){__VA_ARGS__})
#define TE_N(...) (sizeof(TE_ARGS(__VA_ARGS__)) / sizeof(blob))
#define RUN(e, ...) te_run((e), TE_N(__VA_ARGS__), TE_ARGS(__VA_ARGS__))

static inline void te_expect(blob reply, const char *want)
{
    cr_assert(te_eq(reply, S(want)), "reply %.*s, want %s", (int)reply.n,
              (const char *)reply.p, want);
}

/* "-<msg>\r\n" */
static inline void te_expect_error(blob reply, const char *msg)
{
    char want[512];
    snprintf(want, sizeof want, "-%s\r\n", msg);
    te_expect(reply, want);
}

/* The payload of a bulk reply; fails the test for anything else. */
static inline blob te_bulk(blob reply)
{
    cr_assert(reply.n > 0 && reply.p[0] == '$', "not a bulk: %.*s",
              (int)reply.n, (const char *)reply.p);
    const char *p = (const char *)reply.p + 1;
    char *end;
    long len = strtol(p, &end, 10);
    cr_assert(len >= 0 && end[0] == '\r' && end[1] == '\n');
    return (blob){(const uint8_t *)end + 2, (size_t)len};
}

static inline bool te_is_nil(blob reply)
{
    return te_eq(reply, S("$-1\r\n"));
}

static inline Ray__Rpc__ActorTableData *te_actor_rec(blob payload)
{
    Ray__Rpc__ActorTableData *a =
        ray__rpc__actor_table_data__unpack(NULL, payload.n, payload.p);
    cr_assert_not_null(a);
    return a;
}

/* The stored record of actor / node / job / group, or NULL. Free with
 * protobuf_c_message_free_unpacked(&x->base, NULL). */
static inline Ray__Rpc__ActorTableData *te_get_actor(te_env *e, blob id)
{
    blob r = RUN(e, S("ACTOR.GET"), id);
    if (te_is_nil(r)) return NULL;
    return te_actor_rec(te_bulk(r));
}

static inline Ray__Rpc__GcsNodeInfo *te_get_node(te_env *e, blob id)
{
    blob r = RUN(e, S("NODE.GET"), id);
    if (te_is_nil(r)) return NULL;
    blob b = te_bulk(r);
    Ray__Rpc__GcsNodeInfo *n = ray__rpc__gcs_node_info__unpack(NULL, b.n, b.p);
    cr_assert_not_null(n);
    return n;
}

static inline Ray__Rpc__JobTableData *te_get_job(te_env *e, blob id)
{
    blob r = RUN(e, S("JOB.GET"), id);
    if (te_is_nil(r)) return NULL;
    blob b = te_bulk(r);
    Ray__Rpc__JobTableData *j = ray__rpc__job_table_data__unpack(NULL, b.n, b.p);
    cr_assert_not_null(j);
    return j;
}

static inline Ray__Rpc__PlacementGroupTableData *te_get_pg(te_env *e, blob id)
{
    blob r = RUN(e, S("PG.GET"), id);
    if (te_is_nil(r)) return NULL;
    blob b = te_bulk(r);
    Ray__Rpc__PlacementGroupTableData *g =
        ray__rpc__placement_group_table_data__unpack(NULL, b.n, b.p);
    cr_assert_not_null(g);
    return g;
}

static inline int te_actor_state(te_env *e, blob id)
{
    Ray__Rpc__ActorTableData *a = te_get_actor(e, id);
    cr_assert_not_null(a);
    int s = a->state;
    protobuf_c_message_free_unpacked(&a->base, NULL);
    return s;
}

static inline int te_pg_state(te_env *e, blob id)
{
    Ray__Rpc__PlacementGroupTableData *g = te_get_pg(e, id);
    cr_assert_not_null(g);
    int s = g->state;
    protobuf_c_message_free_unpacked(&g->base, NULL);
    return s;
}

/* The whole state, as a raft snapshot would carry it. Free with free(). */
static inline blob te_dump(te_env *e, uint64_t *index)
{
    void *buf;
    size_t len;
    uint64_t i;
    cr_assert_eq(e->hooks.dump(e->hooks.ctx, &buf, &len, &i), 0);
    if (index) *index = i;
    te_keep(buf);
    return (blob){buf, len};
}

#endif /* GCS_TEST_TABLE_ENV_H */
