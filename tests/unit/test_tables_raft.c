/* The typed tables replicated by real raft (0.22.1's in-memory fixture):
 * three replicas, each running gcsd's state machine on its own LMDB store,
 * through elections, a partitioned replica that misses entries (and, the
 * log being compacted meanwhile, catches up from a snapshot: a dump of a
 * peer's state) and a killed leader. At the end the three stores must be
 * byte-identical.
 *
 * The fixture's raft_fsm adapter is this file's: rglue is tied to raft_uv.
 * Each fixture entry carries what rglue would put in one: the leader's time
 * and a command, applied as a one-command batch through fsm's apply hook. */
#include <raft.h>
#include <raft/fixture.h>

#include "table.h"
#include "table_env.h"

#define N 3

typedef struct replica {
    char dir[64];
    fsm f;
    rglue_fsm hooks;
    struct raft_fsm rf;
    struct raft_fixture *fx;
    unsigned i;
    blob last_reply; /* of the last entry applied */
    uint64_t applied;
} replica;

static replica reps[N];
static struct raft_fixture fx;

static void collectReply(void *token, size_t i, const void *reply, size_t len)
{
    replica *r = token;
    cr_assert_eq(i, 0);
    r->last_reply = te_copy(reply, len);
}

/* Entry: u64 leader time (little-endian), then the Command bytes. */
static int fxApply(struct raft_fsm *rf, const struct raft_buffer *buf,
                   void **result)
{
    replica *r = rf->data;
    *result = NULL;
    struct raft *raft = raft_fixture_get(r->fx, r->i);
    uint64_t index = raft_last_applied(raft) + 1;
    cr_assert_geq(buf->len, 8);
    const uint8_t *p = buf->base;
    int64_t t = 0;
    for (int k = 7; k >= 0; k--) t = t << 8 | p[k];
    rglue_cmd cmd = {p + 8, buf->len - 8};
    int rc = r->hooks.apply(r->hooks.ctx, index, t, &cmd, 1, collectReply, r);
    cr_assert_eq(rc, 0, "replica %u failed to apply %llu", r->i,
                 (unsigned long long)index);
    r->applied++;
    return 0;
}

static int fxSnapshot(struct raft_fsm *rf, struct raft_buffer *bufs[],
                      unsigned *n_bufs)
{
    replica *r = rf->data;
    void *dump;
    size_t len;
    uint64_t index;
    cr_assert_eq(r->hooks.dump(r->hooks.ctx, &dump, &len, &index), 0);
    struct raft_buffer *b = raft_malloc(sizeof *b);
    cr_assert_not_null(b);
    b->base = raft_malloc(len);
    cr_assert_not_null(b->base);
    memcpy(b->base, dump, len);
    b->len = len;
    free(dump);
    *bufs = b;
    *n_bufs = 1;
    return 0;
}

static int fxSnapshotFinalize(struct raft_fsm *rf, struct raft_buffer *bufs[],
                              unsigned *n_bufs)
{
    (void)rf;
    for (unsigned k = 0; k < *n_bufs; k++) raft_free((*bufs)[k].base);
    raft_free(*bufs);
    *bufs = NULL;
    *n_bufs = 0;
    return 0;
}

static unsigned restores;

static int fxRestore(struct raft_fsm *rf, struct raft_buffer *buf)
{
    replica *r = rf->data;
    int rc = r->hooks.restore(r->hooks.ctx, buf->base, buf->len);
    cr_assert_eq(rc, 0, "replica %u could not restore a snapshot", r->i);
    raft_free(buf->base);
    restores++;
    return 0;
}

/* raft's diagnostics would bury the test's own output. */
static void quietEmit(struct raft_tracer *t, int type, const void *info)
{
    (void)t;
    (void)type;
    (void)info;
}
static struct raft_tracer quiet = {NULL, 2, quietEmit};

static void setup(void)
{
    cr_assert_eq(raft_fixture_initialize(&fx), 0);
    for (unsigned i = 0; i < N; i++) {
        replica *r = &reps[i];
        memset(r, 0, sizeof *r);
        snprintf(r->dir, sizeof r->dir, "/tmp/gcsd-raft-XXXXXX");
        cr_assert_not_null(mkdtemp(r->dir));
        char err[256];
        cr_assert_eq(fsm_open(&r->f, r->dir, 256u << 20, err, sizeof err), 0);
        fsm_raft_hooks(&r->f, &r->hooks);
        r->fx = &fx;
        r->i = i;
        r->rf.version = 2;
        r->rf.data = r;
        r->rf.apply = fxApply;
        r->rf.snapshot = fxSnapshot;
        r->rf.snapshot_finalize = fxSnapshotFinalize;
        r->rf.restore = fxRestore;
        cr_assert_eq(raft_fixture_grow(&fx, &r->rf), 0);
        raft_fixture_get(&fx, i)->tracer = &quiet;
        /* Compact often, so that a replica left behind needs a snapshot. */
        raft_set_snapshot_threshold(raft_fixture_get(&fx, i), 16);
        raft_set_snapshot_trailing(raft_fixture_get(&fx, i), 4);
    }
    struct raft_configuration conf;
    cr_assert_eq(raft_fixture_configuration(&fx, N, &conf), 0);
    cr_assert_eq(raft_fixture_bootstrap(&fx, &conf), 0);
    raft_configuration_close(&conf);
    cr_assert_eq(raft_fixture_start(&fx), 0);
}

static void teardown(void)
{
    raft_fixture_close(&fx);
    for (unsigned i = 0; i < N; i++) {
        fsm_close(&reps[i].f);
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf %.63s", reps[i].dir);
        cr_assert_eq(system(cmd), 0);
    }
    te_pool_free();
}

TestSuite(tables_raft, .init = setup, .fini = teardown, .timeout = 120);

static void applied(struct raft_apply *req, int status, void *result)
{
    (void)result;
    cr_assert_eq(status, 0, "raft_apply failed: %d", status);
    free(req);
}

/* Propose one command on the current leader; its log index. */
static raft_index propose(size_t argc, const blob *argv)
{
    unsigned l = raft_fixture_leader_index(&fx);
    cr_assert_lt(l, N, "no leader");
    struct raft *r = raft_fixture_get(&fx, l);
    rglue_cmd c = te_encode(argc, argv);
    struct raft_buffer buf = {.len = 8 + c.len};
    buf.base = raft_malloc(buf.len);
    cr_assert_not_null(buf.base);
    uint64_t t = 1700000000000ull + raft_fixture_time(&fx);
    for (int k = 0; k < 8; k++) ((uint8_t *)buf.base)[k] = (uint8_t)(t >> (8 * k));
    memcpy((uint8_t *)buf.base + 8, c.data, c.len);
    struct raft_apply *req = malloc(sizeof *req);
    cr_assert_not_null(req);
    cr_assert_eq(raft_apply(r, req, &buf, 1, applied), 0);
    return raft_last_index(r);
}

#define PROPOSE(...) propose(TE_N(__VA_ARGS__), TE_ARGS(__VA_ARGS__))

/* Run @argv on the leader and wait until replica @i (N: all) applied it;
 * the leader's reply. */
static blob run(unsigned i, size_t argc, const blob *argv)
{
    unsigned l = raft_fixture_leader_index(&fx);
    raft_index idx = propose(argc, argv);
    cr_assert(raft_fixture_step_until_applied(&fx, i, idx, 10000),
              "entry %llu not applied", (unsigned long long)idx);
    if (i != N && i != l) {
        cr_assert(raft_fixture_step_until_applied(&fx, l, idx, 10000));
    }
    return reps[l].last_reply;
}

#define RUN_ON(i, ...) run((i), TE_N(__VA_ARGS__), TE_ARGS(__VA_ARGS__))

static void registerActors(unsigned from, unsigned to, unsigned i)
{
    for (unsigned k = from; k <= to; k++) {
        te_expect(RUN_ON(i, S("ACTOR.REGISTER"),
                         te_actor((te_actor_spec){.k = k, .job = 1,
                                                  .max_restarts = 1})),
                  "+OK\r\n");
    }
}

static void expectIdentical(void)
{
    void *d[N];
    size_t len[N];
    uint64_t index[N];
    for (unsigned i = 0; i < N; i++) {
        cr_assert_eq(reps[i].hooks.dump(reps[i].hooks.ctx, &d[i], &len[i],
                                        &index[i]),
                     0);
    }
    for (unsigned i = 1; i < N; i++) {
        cr_assert_eq(index[i], index[0], "replica %u at %llu, not %llu", i,
                     (unsigned long long)index[i],
                     (unsigned long long)index[0]);
        cr_assert_eq(len[i], len[0]);
        cr_assert(memcmp(d[i], d[0], len[0]) == 0, "replica %u diverged", i);
        cr_assert_eq(reps[i].f.revision, reps[0].f.revision);
    }
    for (unsigned i = 0; i < N; i++) free(d[i]);
}

static bool otherLeader(struct raft_fixture *f, void *arg)
{
    unsigned l = raft_fixture_leader_index(f);
    return l < N && l != *(unsigned *)arg;
}

Test(tables_raft, replicas_agree_through_partition_and_failover)
{
    cr_assert(raft_fixture_step_until_has_leader(&fx, 10000));
    unsigned leader = raft_fixture_leader_index(&fx);

    te_expect(RUN_ON(N, S("NODE.REGISTER"), te_node(1, "CPU=4")), "+OK\r\n");
    te_expect(RUN_ON(N, S("NODE.REGISTER"), te_node(2, "CPU=4")), "+OK\r\n");
    te_expect(RUN_ON(N, S("JOB.ADD"), te_job(1, 2)), "+OK\r\n");
    registerActors(1, 5, N);

    /* Cut one follower off; the other two go on without it. */
    unsigned cut = (leader + 1) % N, other = (leader + 2) % N;
    for (unsigned j = 0; j < N; j++) {
        if (j == cut) continue;
        raft_fixture_saturate(&fx, cut, j);
        raft_fixture_saturate(&fx, j, cut);
    }
    uint64_t before = reps[cut].applied;
    registerActors(6, 60, other);
    for (unsigned k = 1; k <= 5; k++) {
        blob id = te_actor_id(k, 1);
        RUN_ON(other, S("ACTOR.UPDATE"), id, te_update(1, 0, 0));
        RUN_ON(other, S("ACTOR.UPDATE"), id, te_update(2, 1, k));
    }
    te_expect(RUN_ON(other, S("PG.CREATE"),
                     te_pg((te_pg_spec){.k = 1, .strategy = 3,
                                        .bundles = "CPU=2;CPU=2"})),
              "+OK\r\n");
    /* An illegal transition is refused on every replica alike. */
    te_expect_error(RUN_ON(other, S("ACTOR.UPDATE"), te_actor_id(1, 1),
                           te_update(1, 0, 0)),
                    "ERR invalid actor state transition from ALIVE to "
                    "PENDING_CREATION");
    cr_assert_eq(reps[cut].applied, before, "the cut replica applied "
                                            "entries");

    /* Heal: the cut replica catches up (from a snapshot: the leader's log
     * was compacted while it was away). */
    for (unsigned j = 0; j < N; j++) {
        if (j == cut) continue;
        raft_fixture_desaturate(&fx, cut, j);
        raft_fixture_desaturate(&fx, j, cut);
    }
    raft_index last = raft_last_index(raft_fixture_get(&fx, leader));
    cr_assert(raft_fixture_step_until_applied(&fx, N, last, 20000));
    cr_assert_gt(restores, 0, "no snapshot was installed");
    expectIdentical();

    /* The leader dies; a new one is elected and the node death cascades
     * through the new leader's log. */
    raft_fixture_kill(&fx, leader);
    cr_assert(raft_fixture_step_until(&fx, otherLeader, &leader, 20000),
              "no new leader was elected");
    unsigned next = raft_fixture_leader_index(&fx);
    cr_assert_neq(next, leader);
    te_expect(RUN_ON(next, S("NODE.DEAD"), te_node_id(1), S("lost")),
              "+OK\r\n");
    te_expect(RUN_ON(next, S("JOB.FINISH"), te_job_id(1)), "+OK\r\n");
    raft_fixture_revive(&fx, leader);
    last = raft_last_index(raft_fixture_get(&fx, next));
    cr_assert(raft_fixture_step_until_applied(&fx, N, last, 20000));
    expectIdentical();

    /* And the state is what the rules say, on every replica. */
    for (unsigned i = 0; i < N; i++) {
        storage_txn *t = fsm_read_txn(&reps[i].f);
        cr_assert_not_null(t);
        storage_slice v;
        bool found;
        blob id = te_actor_id(3, 1);
        cr_assert_eq(storage_table_get(t, TABLE_ACTOR,
                                       (storage_slice){id.p, id.n}, &v,
                                       &found),
                     0);
        cr_assert(found);
        Ray__Rpc__ActorTableData *a =
            ray__rpc__actor_table_data__unpack(NULL, v.len, v.data);
        cr_assert_eq(a->state, RAY__RPC__ACTOR_TABLE_DATA__ACTOR_STATE__DEAD);
        ray__rpc__actor_table_data__free_unpacked(a, NULL);
        fsm_end_reads(&reps[i].f);
    }
}
