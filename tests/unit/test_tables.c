/* The typed tables through the state machine: every command encoded as it
 * travels in the log and applied as its own entry through the hooks rglue
 * calls, on a temp-dir store. Ray's rules (contract §4) are checked by
 * reading the records back and by the change events the entries emit. */
#include "table_env.h"

#include "storage.h"
#include "table.h"

enum { DU = 0, PC = 1, ALIVE = 2, RESTARTING = 3, DEAD = 4 };
enum { PG_PENDING = 0, PG_CREATED = 2, PG_REMOVED = 3, PG_RESCHEDULING = 4 };
enum { PACK = 0, SPREAD = 1, STRICT_PACK = 2, STRICT_SPREAD = 3 };

static const char *const stateNames[] = {
    "DEPENDENCIES_UNREADY", "PENDING_CREATION", "ALIVE", "RESTARTING", "DEAD",
};

TestSuite(tables, .fini = te_pool_free, .timeout = 120);

#define OKR "+OK\r\n"

static void registerNode(te_env *e, unsigned k, const char *res)
{
    te_expect(RUN(e, S("NODE.REGISTER"), te_node(k, res)), OKR);
}

static void update(te_env *e, blob id, int state, unsigned node,
                   unsigned worker)
{
    blob r = RUN(e, S("ACTOR.UPDATE"), id, te_update(state, node, worker));
    Ray__Rpc__ActorTableData *a = te_actor_rec(te_bulk(r));
    protobuf_c_message_free_unpacked(&a->base, NULL);
}

/* Actor @k of job 1, moved along legal transitions to @state (ALIVE on node
 * 1, worker @k). */
static blob actorIn(te_env *e, unsigned k, int state, long long maxRestarts)
{
    blob id = te_actor_id(k, 1);
    te_expect(RUN(e, S("ACTOR.REGISTER"),
                  te_actor((te_actor_spec){.k = k, .job = 1,
                                           .max_restarts = maxRestarts})),
              OKR);
    if (state == DEAD) {
        update(e, id, DEAD, 0, 0);
        return id;
    }
    if (state >= PC) update(e, id, PC, 0, 0);
    if (state >= ALIVE) update(e, id, ALIVE, 1, k);
    if (state == RESTARTING) update(e, id, RESTARTING, 0, 0);
    cr_assert_eq(te_actor_state(e, id), state);
    return id;
}

/* ---- actor states -------------------------------------------------------- */

/* Every (from, to) pair: the legal ones move the actor and emit one ACTOR
 * event with the new record; the others answer Ray-worded errors and change
 * nothing (same stored bytes, no event, same revision). */
Test(tables, actor_transitions)
{
    static const bool legal[5][5] = {
        {false, true, false, false, true},
        {false, false, true, true, true},
        {false, false, false, true, true},
        {false, false, true, true, true},
        {false, false, false, false, false},
    };
    te_env e;
    te_open(&e);
    registerNode(&e, 1, "CPU=8");
    unsigned k = 1;
    size_t legalSeen = 0, illegalSeen = 0;
    for (int from = DU; from <= DEAD; from++) {
        for (int to = PC; to <= DEAD; to++, k++) {
            blob id = actorIn(&e, k, from, -1);
            blob before = te_bulk(RUN(&e, S("ACTOR.GET"), id));
            size_t events = e.n_ev;
            uint64_t revision = e.f.revision;
            unsigned node = to == ALIVE || to == PC ? 1 : 0;
            blob r = RUN(&e, S("ACTOR.UPDATE"), id,
                         te_update(to, node, 1000 + k));
            if (legal[from][to]) {
                legalSeen++;
                Ray__Rpc__ActorTableData *a = te_actor_rec(te_bulk(r));
                cr_assert_eq((int)a->state, to, "%s -> %s gave %s",
                             stateNames[from], stateNames[to],
                             stateNames[a->state]);
                protobuf_c_message_free_unpacked(&a->base, NULL);
                cr_assert_eq(te_actor_state(&e, id), to);
                cr_assert_geq(e.n_ev, events + 1);
                te_event *ev = &e.ev[events];
                cr_assert_str_eq(ev->table, "ACTOR");
                cr_assert(te_eq(ev->key, id));
                cr_assert_eq(ev->revision, revision + 1);
                a = te_actor_rec(ev->value);
                cr_assert_eq((int)a->state, to);
                protobuf_c_message_free_unpacked(&a->base, NULL);
            } else {
                illegalSeen++;
                char want[128];
                snprintf(want, sizeof want,
                         "ERR invalid actor state transition from %s to %s",
                         stateNames[from], stateNames[to]);
                te_expect_error(r, want);
                cr_assert_eq(e.n_ev, events, "%s -> %s emitted",
                             stateNames[from], stateNames[to]);
                cr_assert_eq(e.f.revision, revision);
                cr_assert(te_eq(te_bulk(RUN(&e, S("ACTOR.GET"), id)), before));
            }
        }
    }
    cr_assert_eq(legalSeen, 10);
    cr_assert_eq(illegalSeen, 10);
    /* A field-only update (no state) of a dead actor is refused too. */
    blob dead = actorIn(&e, 900, DEAD, 0);
    te_expect_error(RUN(&e, S("ACTOR.UPDATE"), dead, te_update(DU, 0, 0)),
                    "ERR actor is dead");
    te_close(&e);
}

Test(tables, actor_errors_change_nothing)
{
    te_env e;
    te_open(&e);
    registerNode(&e, 1, "CPU=1");
    blob id = actorIn(&e, 1, PC, 0);
    size_t events = e.n_ev;
    uint64_t revision = e.f.revision;
    te_expect_error(RUN(&e, S("ACTOR.UPDATE"), te_actor_id(77, 1),
                        te_update(PC, 0, 0)),
                    "ERR no such actor");
    te_expect_error(RUN(&e, S("ACTOR.KILL"), te_actor_id(77, 1)),
                    "ERR no such actor");
    te_expect_error(RUN(&e, S("ACTOR.UPDATE"), S("short"), te_update(PC, 0, 0)),
                    "ERR invalid actor id: expected 16 bytes, got 5");
    te_expect_error(RUN(&e, S("ACTOR.UPDATE"), id, S("\xff\xff")),
                    "ERR invalid ActorTableData record");
    /* ALIVE needs a live node. */
    te_expect_error(RUN(&e, S("ACTOR.UPDATE"), id, te_update(ALIVE, 0, 5)),
                    "ERR an ALIVE actor needs node_id or address.node_id");
    te_expect_error(RUN(&e, S("ACTOR.UPDATE"), id, te_update(ALIVE, 9, 5)),
                    "ERR no such node");
    registerNode(&e, 2, "CPU=1");
    te_expect(RUN(&e, S("NODE.DEAD"), te_node_id(2), S("gone")), OKR);
    events = e.n_ev;
    revision = e.f.revision;
    te_expect_error(RUN(&e, S("ACTOR.UPDATE"), id, te_update(ALIVE, 2, 5)),
                    "ERR node is not alive");
    /* A record for another actor. */
    Ray__Rpc__ActorTableData u;
    ray__rpc__actor_table_data__init(&u);
    u.actor_id = te_bin(te_actor_id(2, 1));
    u.state = RAY__RPC__ACTOR_TABLE_DATA__ACTOR_STATE__ALIVE;
    te_expect_error(RUN(&e, S("ACTOR.UPDATE"), id, te_pack(&u.base)),
                    "ERR the record's actor_id is not the actor updated");
    /* Registration checks. */
    te_expect_error(RUN(&e, S("ACTOR.REGISTER"),
                        te_actor((te_actor_spec){.k = 3, .job = 1,
                                                 .max_restarts = -2})),
                    "ERR max_restarts must be -1 (unlimited) or more");
    cr_assert_eq(e.n_ev, events);
    cr_assert_eq(e.f.revision, revision);
    cr_assert_eq(te_actor_state(&e, id), PC);
    te_close(&e);
}

/* max_restarts counts failures (RESTARTING requests); -1 never runs out;
 * restarts caused by a preempted node are not counted. */
Test(tables, restart_accounting)
{
    te_env e;
    te_open(&e);
    registerNode(&e, 1, "CPU=8");
    registerNode(&e, 2, "CPU=8");

    blob two = actorIn(&e, 1, ALIVE, 2);
    for (int i = 1; i <= 2; i++) {
        update(&e, two, RESTARTING, 0, 0);
        Ray__Rpc__ActorTableData *a = te_get_actor(&e, two);
        cr_assert_eq(a->state, RESTARTING);
        cr_assert_eq(a->num_restarts, (uint64_t)i);
        cr_assert_null(a->address, "a restarting actor has no address");
        protobuf_c_message_free_unpacked(&a->base, NULL);
        update(&e, two, ALIVE, 1, 10 + (unsigned)i);
    }
    blob r = RUN(&e, S("ACTOR.UPDATE"), two, te_update(RESTARTING, 0, 0));
    Ray__Rpc__ActorTableData *a = te_actor_rec(te_bulk(r));
    cr_assert_eq(a->state, DEAD, "out of restarts: the failure is final");
    cr_assert_eq(a->num_restarts, 2);
    cr_assert_eq(a->end_time, (uint64_t)e.time_ms);
    cr_assert_not_null(a->death_cause);
    cr_assert_eq(a->death_cause->context_case,
                 RAY__RPC__ACTOR_DEATH_CAUSE__CONTEXT_ACTOR_DIED_ERROR_CONTEXT);
    cr_assert_eq(a->death_cause->actor_died_error_context->reason,
                 RAY__RPC__ACTOR_DIED_ERROR_CONTEXT__REASON__WORKER_DIED);
    protobuf_c_message_free_unpacked(&a->base, NULL);

    blob none = actorIn(&e, 2, ALIVE, 0);
    update(&e, none, RESTARTING, 0, 0);
    cr_assert_eq(te_actor_state(&e, none), DEAD);

    blob forever = actorIn(&e, 3, ALIVE, -1);
    for (int i = 0; i < 25; i++) {
        update(&e, forever, RESTARTING, 0, 0);
        update(&e, forever, ALIVE, 1, 100 + (unsigned)i);
    }
    a = te_get_actor(&e, forever);
    cr_assert_eq(a->state, ALIVE);
    cr_assert_eq(a->num_restarts, 25);
    protobuf_c_message_free_unpacked(&a->base, NULL);

    /* Preemption: drained for PREEMPTION, the node dies; the restart is
     * free, even with max_restarts 0... */
    blob pre = actorIn(&e, 4, ALIVE, 1);
    te_expect(RUN(&e, S("NODE.DRAIN"), te_node_id(1), S("PREEMPTION"),
                  S("spot reclaimed")),
              OKR);
    a = te_get_actor(&e, pre);
    cr_assert(a->preempted);
    protobuf_c_message_free_unpacked(&a->base, NULL);
    te_expect(RUN(&e, S("NODE.DEAD"), te_node_id(1), S("ignored: drained")),
              OKR);
    a = te_get_actor(&e, pre);
    cr_assert_eq(a->state, RESTARTING);
    cr_assert_eq(a->num_restarts, 1);
    cr_assert_eq(a->num_restarts_due_to_node_preemption, 1);
    cr_assert(!a->preempted);
    protobuf_c_message_free_unpacked(&a->base, NULL);
    /* ...so its one counted restart is still there... */
    update(&e, pre, ALIVE, 2, 50);
    update(&e, pre, RESTARTING, 0, 0);
    a = te_get_actor(&e, pre);
    cr_assert_eq(a->state, RESTARTING);
    cr_assert_eq(a->num_restarts, 2);
    cr_assert_eq(a->num_restarts_due_to_node_preemption, 1);
    protobuf_c_message_free_unpacked(&a->base, NULL);
    /* ...and then none. */
    update(&e, pre, ALIVE, 2, 51);
    update(&e, pre, RESTARTING, 0, 0);
    cr_assert_eq(te_actor_state(&e, pre), DEAD);

    /* The node's death info is the drain's. */
    Ray__Rpc__GcsNodeInfo *n = te_get_node(&e, te_node_id(1));
    cr_assert_eq(n->state, RAY__RPC__GCS_NODE_INFO__GCS_NODE_STATE__DEAD);
    cr_assert_eq(n->death_info->reason,
                 RAY__RPC__NODE_DEATH_INFO__REASON__AUTOSCALER_DRAIN_PREEMPTED);
    cr_assert_str_eq(n->death_info->reason_message, "spot reclaimed");
    protobuf_c_message_free_unpacked(&n->base, NULL);
    te_close(&e);
}

/* Names are unique per namespace while the actor lives, survive restarts,
 * and are freed at death. */
Test(tables, named_actors)
{
    te_env e;
    te_open(&e);
    registerNode(&e, 1, "CPU=8");
    blob a1 = te_actor_id(1, 1);
    te_expect(RUN(&e, S("ACTOR.REGISTER"),
                  te_actor((te_actor_spec){.k = 1, .job = 1, .name = "counter",
                                           .ns = "prod", .max_restarts = 3})),
              OKR);
    te_expect_error(RUN(&e, S("ACTOR.REGISTER"),
                        te_actor((te_actor_spec){.k = 2, .job = 1,
                                                 .name = "counter",
                                                 .ns = "prod"})),
                    "ERR actor with name 'counter' already exists in "
                    "namespace 'prod'");
    cr_assert_null(te_get_actor(&e, te_actor_id(2, 1)));
    /* Another namespace is another name. */
    te_expect(RUN(&e, S("ACTOR.REGISTER"),
                  te_actor((te_actor_spec){.k = 3, .job = 1, .name = "counter",
                                           .ns = "dev"})),
              OKR);
    /* Registering the same actor again is a no-op, as in Ray. */
    te_expect(RUN(&e, S("ACTOR.REGISTER"),
                  te_actor((te_actor_spec){.k = 1, .job = 1, .name = "counter",
                                           .ns = "prod", .max_restarts = 3})),
              OKR);
    cr_assert(te_eq(te_bulk(RUN(&e, S("ACTOR.GETNAMED"), S("prod"),
                                S("counter"))),
                    te_bulk(RUN(&e, S("ACTOR.GET"), a1))));
    cr_assert(te_is_nil(RUN(&e, S("ACTOR.GETNAMED"), S("prod"), S("other"))));
    cr_assert(te_is_nil(RUN(&e, S("ACTOR.GETNAMED"), S("nope"), S("counter"))));

    update(&e, a1, PC, 0, 0);
    update(&e, a1, ALIVE, 1, 7);
    update(&e, a1, RESTARTING, 0, 0);
    cr_assert(!te_is_nil(RUN(&e, S("ACTOR.GETNAMED"), S("prod"),
                             S("counter"))),
              "a restarting actor keeps its name");
    te_expect(RUN(&e, S("ACTOR.KILL"), a1), OKR);
    te_expect_error(RUN(&e, S("ACTOR.KILL"), a1), "ERR actor is already dead");
    Ray__Rpc__ActorTableData *a = te_get_actor(&e, a1);
    cr_assert_eq(a->state, DEAD);
    cr_assert_eq(a->death_cause->actor_died_error_context->reason,
                 RAY__RPC__ACTOR_DIED_ERROR_CONTEXT__REASON__RAY_KILL);
    cr_assert_str_eq(a->death_cause->actor_died_error_context->name,
                     "counter");
    protobuf_c_message_free_unpacked(&a->base, NULL);
    cr_assert(te_is_nil(RUN(&e, S("ACTOR.GETNAMED"), S("prod"),
                            S("counter"))));
    /* The name is free again. */
    te_expect(RUN(&e, S("ACTOR.REGISTER"),
                  te_actor((te_actor_spec){.k = 2, .job = 1, .name = "counter",
                                           .ns = "prod"})),
              OKR);
    cr_assert(te_eq(te_bulk(RUN(&e, S("ACTOR.GETNAMED"), S("prod"),
                                S("counter"))),
                    te_bulk(RUN(&e, S("ACTOR.GET"), te_actor_id(2, 1)))));
    te_close(&e);
}

/* ---- nodes ----------------------------------------------------------------- */

static int diedReason(te_env *e, blob id)
{
    Ray__Rpc__ActorTableData *a = te_get_actor(e, id);
    cr_assert_eq(a->state, DEAD);
    cr_assert_not_null(a->death_cause);
    int reason = a->death_cause->actor_died_error_context->reason;
    protobuf_c_message_free_unpacked(&a->base, NULL);
    return reason;
}

Test(tables, node_death_cascades_to_actors_and_jobs)
{
    te_env e;
    te_open(&e);
    registerNode(&e, 1, "CPU=8");
    registerNode(&e, 2, "CPU=8");
    te_expect(RUN(&e, S("NODE.REGISTER"), te_node(1, "CPU=8")), OKR);
    te_expect(RUN(&e, S("JOB.ADD"), te_job(1, 2)), OKR);
    te_expect(RUN(&e, S("JOB.ADD"), te_job(2, 1)), OKR); /* driver on 1 */

    blob restarts = actorIn(&e, 1, ALIVE, 5);  /* on node 1 */
    blob final = actorIn(&e, 2, ALIVE, 0);     /* on node 1 */
    blob elsewhere = te_actor_id(3, 1);
    te_expect(RUN(&e, S("ACTOR.REGISTER"),
                  te_actor((te_actor_spec){.k = 3, .job = 1})),
              OKR);
    update(&e, elsewhere, PC, 0, 0);
    update(&e, elsewhere, ALIVE, 2, 3);
    /* Owned by a worker on node 1, running on node 2. */
    blob owned = te_actor_id(4, 1);
    te_expect(RUN(&e, S("ACTOR.REGISTER"),
                  te_actor((te_actor_spec){.k = 4, .job = 1,
                                           .owner_worker = 900,
                                           .owner_node = 1, .max_restarts = -1})),
              OKR);
    update(&e, owned, PC, 0, 0);
    update(&e, owned, ALIVE, 2, 4);
    blob detached = te_actor_id(5, 1);
    te_expect(RUN(&e, S("ACTOR.REGISTER"),
                  te_actor((te_actor_spec){.k = 5, .job = 1, .detached = true,
                                           .owner_worker = 900,
                                           .owner_node = 1})),
              OKR);

    int64_t deathTime = e.time_ms + 10;
    te_expect(RUN(&e, S("NODE.DEAD"), te_node_id(1), S("raylet crashed")), OKR);
    Ray__Rpc__GcsNodeInfo *n = te_get_node(&e, te_node_id(1));
    cr_assert_eq(n->state, RAY__RPC__GCS_NODE_INFO__GCS_NODE_STATE__DEAD);
    cr_assert_eq(n->end_time_ms, (uint64_t)deathTime);
    cr_assert_eq(n->death_info->reason,
                 RAY__RPC__NODE_DEATH_INFO__REASON__UNEXPECTED_TERMINATION);
    cr_assert_str_eq(n->death_info->reason_message, "raylet crashed");
    protobuf_c_message_free_unpacked(&n->base, NULL);

    cr_assert_eq(te_actor_state(&e, restarts), RESTARTING);
    Ray__Rpc__ActorTableData *a = te_get_actor(&e, final);
    cr_assert_eq(a->state, DEAD);
    cr_assert_eq(a->end_time, (uint64_t)deathTime);
    Ray__Rpc__ActorDiedErrorContext *x = a->death_cause->actor_died_error_context;
    cr_assert_eq(x->reason, RAY__RPC__ACTOR_DIED_ERROR_CONTEXT__REASON__NODE_DIED);
    cr_assert_not_null(x->node_death_info);
    cr_assert_str_eq(x->node_death_info->reason_message, "raylet crashed");
    protobuf_c_message_free_unpacked(&a->base, NULL);
    cr_assert_eq(te_actor_state(&e, elsewhere), ALIVE);
    cr_assert_eq(diedReason(&e, owned),
                 RAY__RPC__ACTOR_DIED_ERROR_CONTEXT__REASON__OWNER_DIED);
    cr_assert_eq(te_actor_state(&e, detached), DU);
    /* Job 2's driver ran there: it finished; job 1's did not. */
    Ray__Rpc__JobTableData *j = te_get_job(&e, te_job_id(2));
    cr_assert(j->is_dead);
    cr_assert_eq(j->end_time, (uint64_t)deathTime);
    protobuf_c_message_free_unpacked(&j->base, NULL);
    j = te_get_job(&e, te_job_id(1));
    cr_assert(!j->is_dead);
    protobuf_c_message_free_unpacked(&j->base, NULL);

    /* Dead is final. */
    te_expect_error(RUN(&e, S("NODE.DEAD"), te_node_id(1), S("again")),
                    "ERR node is already dead");
    te_expect_error(RUN(&e, S("NODE.REGISTER"), te_node(1, "CPU=8")),
                    "ERR node is dead and cannot register again");
    te_expect_error(RUN(&e, S("NODE.DRAIN"), te_node_id(1), S("IDLE")),
                    "ERR node is dead");
    te_expect_error(RUN(&e, S("NODE.DEAD"), te_node_id(3), S("x")),
                    "ERR no such node");
    te_expect_error(RUN(&e, S("NODE.DRAIN"), te_node_id(2), S("BORED")),
                    "ERR drain reason must be PREEMPTION or IDLE");
    /* Non-detached actors cannot be owned from a dead node. */
    te_expect_error(RUN(&e, S("ACTOR.REGISTER"),
                        te_actor((te_actor_spec){.k = 6, .job = 1,
                                                 .owner_node = 1})),
                    "ERR the actor's owner is on a dead node");
    te_close(&e);
}

/* An actor's worker dying (the actor failing, restarting or killed) kills
 * the non-detached actors it owns, transitively. */
Test(tables, owner_death_cascades)
{
    te_env e;
    te_open(&e);
    registerNode(&e, 1, "CPU=8");
    blob parent = actorIn(&e, 1, ALIVE, 3); /* runs as worker 1 */
    blob child = te_actor_id(2, 1), grandchild = te_actor_id(3, 1),
         keeper = te_actor_id(4, 1);
    te_expect(RUN(&e, S("ACTOR.REGISTER"),
                  te_actor((te_actor_spec){.k = 2, .job = 1,
                                           .owner_worker = 1})),
              OKR);
    update(&e, child, PC, 0, 0);
    update(&e, child, ALIVE, 1, 2);
    te_expect(RUN(&e, S("ACTOR.REGISTER"),
                  te_actor((te_actor_spec){.k = 3, .job = 1,
                                           .owner_worker = 2})),
              OKR);
    te_expect(RUN(&e, S("ACTOR.REGISTER"),
                  te_actor((te_actor_spec){.k = 4, .job = 1, .detached = true,
                                           .owner_worker = 1})),
              OKR);
    /* The parent restarts: its worker died, and with it what it owned. */
    update(&e, parent, RESTARTING, 0, 0);
    cr_assert_eq(te_actor_state(&e, parent), RESTARTING);
    cr_assert_eq(diedReason(&e, child),
                 RAY__RPC__ACTOR_DIED_ERROR_CONTEXT__REASON__OWNER_DIED);
    cr_assert_eq(diedReason(&e, grandchild),
                 RAY__RPC__ACTOR_DIED_ERROR_CONTEXT__REASON__OWNER_DIED);
    cr_assert_eq(te_actor_state(&e, keeper), DU, "detached: no fate-sharing");
    te_close(&e);
}

/* ---- jobs -------------------------------------------------------------------- */

Test(tables, job_ids_and_finish_cascade)
{
    te_env e;
    te_open(&e);
    for (uint32_t i = 1; i <= 3; i++) {
        blob id = te_bulk(RUN(&e, S("JOB.NEXTID")));
        cr_assert(te_eq(id, te_job_id(i)), "job id %u", i);
    }
    registerNode(&e, 1, "CPU=8");
    te_expect(RUN(&e, S("JOB.ADD"), te_job(1, 1)), OKR);
    te_expect(RUN(&e, S("JOB.ADD"), te_job(1, 1)), OKR); /* retried: no-op */
    Ray__Rpc__JobTableData *j = te_get_job(&e, te_job_id(1));
    cr_assert(!j->is_dead);
    cr_assert_eq(j->start_time, (uint64_t)e.time_ms - 20);
    protobuf_c_message_free_unpacked(&j->base, NULL);

    blob alive = actorIn(&e, 1, ALIVE, -1);
    blob waiting = actorIn(&e, 2, DU, 0);
    blob detached = te_actor_id(3, 1);
    te_expect(RUN(&e, S("ACTOR.REGISTER"),
                  te_actor((te_actor_spec){.k = 3, .job = 1, .detached = true})),
              OKR);
    /* Groups: the driver's (no creator actor), a detached one, and one
     * created by the detached actor. */
    blob byDriver = te_pg_id(1, 1), kept = te_pg_id(2, 1),
         byActor = te_pg_id(3, 1);
    te_expect(RUN(&e, S("PG.CREATE"),
                  te_pg((te_pg_spec){.k = 1, .job = 1, .bundles = "CPU=1"})),
              OKR);
    te_expect(RUN(&e, S("PG.CREATE"),
                  te_pg((te_pg_spec){.k = 2, .job = 1, .bundles = "CPU=1",
                                     .detached = true})),
              OKR);
    te_expect(RUN(&e, S("PG.CREATE"),
                  te_pg((te_pg_spec){.k = 3, .job = 1, .creator = 3,
                                     .bundles = "CPU=1"})),
              OKR);

    int64_t finishTime = e.time_ms + 10;
    te_expect(RUN(&e, S("JOB.FINISH"), te_job_id(1)), OKR);
    j = te_get_job(&e, te_job_id(1));
    cr_assert(j->is_dead);
    cr_assert_eq(j->end_time, (uint64_t)finishTime);
    protobuf_c_message_free_unpacked(&j->base, NULL);
    cr_assert_eq(diedReason(&e, alive),
                 RAY__RPC__ACTOR_DIED_ERROR_CONTEXT__REASON__OWNER_DIED);
    cr_assert_eq(diedReason(&e, waiting),
                 RAY__RPC__ACTOR_DIED_ERROR_CONTEXT__REASON__OWNER_DIED);
    cr_assert_eq(te_actor_state(&e, detached), DU);
    cr_assert_eq(te_pg_state(&e, byDriver), PG_REMOVED);
    cr_assert_eq(te_pg_state(&e, kept), PG_CREATED);
    Ray__Rpc__PlacementGroupTableData *g = te_get_pg(&e, byActor);
    cr_assert_eq(g->state, PG_CREATED);
    cr_assert(g->creator_job_dead);
    cr_assert(!g->creator_actor_dead);
    protobuf_c_message_free_unpacked(&g->base, NULL);
    /* Its creator actor dies too: its lifetime is over. */
    te_expect(RUN(&e, S("ACTOR.KILL"), detached), OKR);
    cr_assert_eq(te_pg_state(&e, byActor), PG_REMOVED);

    te_expect_error(RUN(&e, S("JOB.FINISH"), te_job_id(1)),
                    "ERR job already finished");
    te_expect_error(RUN(&e, S("JOB.ADD"), te_job(1, 1)),
                    "ERR job already finished");
    te_expect_error(RUN(&e, S("JOB.FINISH"), te_job_id(9)), "ERR no such job");
    te_expect_error(RUN(&e, S("JOB.FINISH"), S("12345")),
                    "ERR invalid job id: expected 4 bytes, got 5");
    /* Ids inside records are checked too (they become index keys). */
    Ray__Rpc__JobTableData bad;
    ray__rpc__job_table_data__init(&bad);
    bad.job_id = te_bin(te_job_id(5));
    Ray__Rpc__Address driver;
    ray__rpc__address__init(&driver);
    uint8_t longId[300];
    memset(longId, 'x', sizeof longId);
    driver.node_id = (ProtobufCBinaryData){sizeof longId, longId};
    bad.driver_address = &driver;
    te_expect_error(RUN(&e, S("JOB.ADD"), te_pack(&bad.base)),
                    "ERR invalid driver node id: expected 28 bytes");
    te_expect_error(RUN(&e, S("ACTOR.REGISTER"),
                        te_actor((te_actor_spec){.k = 9, .job = 1})),
                    "ERR the actor's job already finished");
    te_expect(RUN(&e, S("ACTOR.REGISTER"),
                  te_actor((te_actor_spec){.k = 9, .job = 1, .detached = true})),
              OKR);
    te_close(&e);
}

/* ---- placement groups --------------------------------------------------------- */

/* Which node (number) bundle @i of group @id is on; 0 when unplaced. */
static unsigned bundleNode(te_env *e, blob id, size_t i)
{
    Ray__Rpc__PlacementGroupTableData *g = te_get_pg(e, id);
    cr_assert_lt(i, g->n_bundles);
    unsigned k = 0;
    if (g->bundles[i]->node_id.len == 28) {
        k = (unsigned)g->bundles[i]->node_id.data[26] << 8 |
            g->bundles[i]->node_id.data[27];
    } else {
        cr_assert_eq(g->bundles[i]->node_id.len, 0);
    }
    protobuf_c_message_free_unpacked(&g->base, NULL);
    return k;
}

Test(tables, pg_pending_until_a_node_fits)
{
    te_env e;
    te_open(&e);
    blob g1 = te_pg_id(1, 0);
    te_expect(RUN(&e, S("PG.CREATE"),
                  te_pg((te_pg_spec){.k = 1, .strategy = PACK, .name = "g",
                                     .bundles = "CPU=2;CPU=2"})),
              OKR);
    cr_assert_eq(te_pg_state(&e, g1), PG_PENDING);
    cr_assert_eq(bundleNode(&e, g1, 0), 0);
    registerNode(&e, 1, "CPU=3"); /* too small for both */
    cr_assert_eq(te_pg_state(&e, g1), PG_PENDING);
    size_t events = e.n_ev;
    registerNode(&e, 2, "CPU=4,GPU=1");
    /* The registration's entry placed it: NODE event, then the group's. */
    cr_assert_eq(e.n_ev, events + 2);
    cr_assert_str_eq(e.ev[events].table, "NODE");
    cr_assert_str_eq(e.ev[events + 1].table, "PLACEMENT_GROUP");
    cr_assert_eq(e.ev[events + 1].revision, e.ev[events].revision + 1);
    Ray__Rpc__PlacementGroupTableData *g = te_get_pg(&e, g1);
    cr_assert_eq(g->state, PG_CREATED);
    cr_assert_eq(g->bundles[1]->bundle_id->bundle_index, 1);
    cr_assert(te_eq((blob){g->bundles[1]->bundle_id->placement_group_id.data,
                           g->bundles[1]->bundle_id->placement_group_id.len},
                    g1));
    cr_assert_eq(g->placement_group_final_bundle_placement_timestamp_ms,
                 e.time_ms - 10);
    protobuf_c_message_free_unpacked(&g->base, NULL);
    cr_assert_eq(bundleNode(&e, g1, 0), 2);
    cr_assert_eq(bundleNode(&e, g1, 1), 2);

    /* Node 2's CPU is committed: the next group waits for it. */
    blob g2 = te_pg_id(2, 0);
    te_expect(RUN(&e, S("PG.CREATE"),
                  te_pg((te_pg_spec){.k = 2, .strategy = STRICT_PACK,
                                     .bundles = "CPU=1;CPU=3"})),
              OKR);
    cr_assert_eq(te_pg_state(&e, g2), PG_PENDING);
    /* Names are unique per namespace until removal. */
    te_expect_error(RUN(&e, S("PG.CREATE"),
                        te_pg((te_pg_spec){.k = 3, .name = "g",
                                           .bundles = "CPU=1"})),
                    "ERR placement group with name 'g' already exists in "
                    "namespace ''");
    te_expect(RUN(&e, S("PG.REMOVE"), g1), OKR);
    /* Removing freed node 2: the queued group got it. */
    cr_assert_eq(te_pg_state(&e, g1), PG_REMOVED);
    cr_assert_eq(bundleNode(&e, g1, 0), 0);
    cr_assert_eq(te_pg_state(&e, g2), PG_CREATED);
    cr_assert_eq(bundleNode(&e, g2, 0), 2);
    cr_assert_eq(bundleNode(&e, g2, 1), 2);
    te_expect(RUN(&e, S("PG.CREATE"),
                  te_pg((te_pg_spec){.k = 3, .name = "g", .bundles = "CPU=1"})),
              OKR);
    cr_assert(te_eq(te_bulk(RUN(&e, S("PG.GETNAMED"), S(""), S("g"))),
                    te_bulk(RUN(&e, S("PG.GET"), te_pg_id(3, 0)))));
    te_expect_error(RUN(&e, S("PG.REMOVE"), g1),
                    "ERR placement group already removed");
    te_expect_error(RUN(&e, S("PG.REMOVE"), te_pg_id(9, 9)),
                    "ERR no such placement group");
    te_expect_error(RUN(&e, S("PG.CREATE"),
                        te_pg((te_pg_spec){.k = 4, .bundles = "CPU=0"})),
                    "ERR bundle 0 requests no resources");
    te_close(&e);
}

Test(tables, pg_strategies)
{
    te_env e;
    te_open(&e);
    registerNode(&e, 1, "CPU=4");
    registerNode(&e, 2, "CPU=4");
    registerNode(&e, 3, "CPU=4");
    blob spread = te_pg_id(1, 0);
    te_expect(RUN(&e, S("PG.CREATE"),
                  te_pg((te_pg_spec){.k = 1, .strategy = STRICT_SPREAD,
                                     .bundles = "CPU=1;CPU=1;CPU=1"})),
              OKR);
    cr_assert_eq(te_pg_state(&e, spread), PG_CREATED);
    unsigned a = bundleNode(&e, spread, 0), b = bundleNode(&e, spread, 1),
             c = bundleNode(&e, spread, 2);
    cr_assert(a != b && b != c && a != c && a && b && c);
    /* Four bundles on three nodes cannot be strictly spread. */
    blob four = te_pg_id(2, 0);
    te_expect(RUN(&e, S("PG.CREATE"),
                  te_pg((te_pg_spec){.k = 2, .strategy = STRICT_SPREAD,
                                     .bundles = "CPU=1;CPU=1;CPU=1;CPU=1"})),
              OKR);
    cr_assert_eq(te_pg_state(&e, four), PG_PENDING);
    blob pack = te_pg_id(3, 0);
    te_expect(RUN(&e, S("PG.CREATE"),
                  te_pg((te_pg_spec){.k = 3, .strategy = STRICT_PACK,
                                     .bundles = "CPU=1;CPU=0.5"})),
              OKR);
    cr_assert_eq(te_pg_state(&e, pack), PG_CREATED);
    cr_assert_eq(bundleNode(&e, pack, 0), bundleNode(&e, pack, 1));
    /* A fourth node lets the strict spread through. */
    registerNode(&e, 4, "CPU=1");
    cr_assert_eq(te_pg_state(&e, four), PG_CREATED);
    te_close(&e);
}

/* A node dies under a group: RESCHEDULING (visible to watchers), its
 * bundles there unplaced and placed again where they fit; when nothing
 * fits it waits, RESCHEDULING, until a node that fits registers. */
Test(tables, pg_node_death_reschedules)
{
    te_env e;
    te_open(&e);
    registerNode(&e, 1, "CPU=2");
    registerNode(&e, 2, "CPU=2");
    blob g = te_pg_id(1, 0);
    te_expect(RUN(&e, S("PG.CREATE"),
                  te_pg((te_pg_spec){.k = 1, .strategy = SPREAD,
                                     .bundles = "CPU=1;CPU=1"})),
              OKR);
    cr_assert_eq(te_pg_state(&e, g), PG_CREATED);
    unsigned lost = bundleNode(&e, g, 0);
    unsigned kept = bundleNode(&e, g, 1);
    cr_assert_neq(lost, kept);
    size_t events = e.n_ev;
    te_expect(RUN(&e, S("NODE.DEAD"), te_node_id(lost), S("gone")), OKR);
    /* NODE dead, group RESCHEDULING, group CREATED again. */
    cr_assert_eq(e.n_ev, events + 3);
    Ray__Rpc__PlacementGroupTableData *x =
        ray__rpc__placement_group_table_data__unpack(
            NULL, e.ev[events + 1].value.n, e.ev[events + 1].value.p);
    cr_assert_eq(x->state, PG_RESCHEDULING);
    cr_assert_eq(x->bundles[0]->node_id.len, 0);
    protobuf_c_message_free_unpacked(&x->base, NULL);
    cr_assert_eq(te_pg_state(&e, g), PG_CREATED);
    cr_assert_eq(bundleNode(&e, g, 0), kept);
    cr_assert_eq(bundleNode(&e, g, 1), kept);

    /* Now node @kept holds both; a second group fills nothing else, and
     * when @kept dies nothing fits: it waits. */
    te_expect(RUN(&e, S("NODE.DEAD"), te_node_id(kept), S("gone too")), OKR);
    cr_assert_eq(te_pg_state(&e, g), PG_RESCHEDULING);
    cr_assert_eq(bundleNode(&e, g, 0), 0);
    cr_assert_eq(bundleNode(&e, g, 1), 0);
    registerNode(&e, 3, "CPU=1"); /* too small for both */
    /* SPREAD is best effort: one node of CPU=1 holds one bundle only. */
    cr_assert_eq(te_pg_state(&e, g), PG_RESCHEDULING);
    registerNode(&e, 4, "CPU=1");
    cr_assert_eq(te_pg_state(&e, g), PG_CREATED);
    unsigned n0 = bundleNode(&e, g, 0), n1 = bundleNode(&e, g, 1);
    cr_assert(n0 != n1 && (n0 == 3 || n0 == 4) && (n1 == 3 || n1 == 4));
    te_close(&e);
}

/* Draining nodes take no new bundles. */
Test(tables, pg_skips_draining_nodes)
{
    te_env e;
    te_open(&e);
    registerNode(&e, 1, "CPU=4");
    te_expect(RUN(&e, S("NODE.DRAIN"), te_node_id(1), S("IDLE")), OKR);
    blob g = te_pg_id(1, 0);
    te_expect(RUN(&e, S("PG.CREATE"),
                  te_pg((te_pg_spec){.k = 1, .bundles = "CPU=1"})),
              OKR);
    cr_assert_eq(te_pg_state(&e, g), PG_PENDING);
    registerNode(&e, 2, "CPU=1");
    cr_assert_eq(bundleNode(&e, g, 0), 2);
    te_close(&e);
}

/* ---- revisions, events, listings ----------------------------------------------- */

Test(tables, revisions_are_consecutive_and_survive_restart)
{
    te_env e;
    te_open(&e);
    registerNode(&e, 1, "CPU=4");
    te_expect(RUN(&e, S("JOB.ADD"), te_job(1, 1)), OKR);
    actorIn(&e, 1, ALIVE, 0);
    te_expect(RUN(&e, S("JOB.FINISH"), te_job_id(1)), OKR);
    cr_assert_gt(e.n_ev, 5);
    for (size_t i = 0; i < e.n_ev; i++) {
        cr_assert_eq(e.ev[i].revision, i + 1);
        cr_assert_eq(e.ev[i].kind, FSM_EVENT_PUT);
    }
    uint64_t rev = e.f.revision;
    cr_assert_eq(rev, e.n_ev);
    fsm_close(&e.f);
    char err[256];
    cr_assert_eq(fsm_open(&e.f, e.dir, 256u << 20, err, sizeof err), 0);
    fsm_raft_hooks(&e.f, &e.hooks);
    e.f.on_events = te_on_events;
    e.f.on_events_ctx = &e;
    cr_assert_eq(e.f.revision, rev);
    registerNode(&e, 2, "CPU=4");
    cr_assert_eq(e.ev[e.n_ev - 1].revision, rev + 1);
    te_close(&e);
}

/* FLUSHALL empties the typed tables too: every record gets a DELETE event,
 * indexes go with them, and the counters (revision, job ids) go on. */
Test(tables, flushall_deletes_records_with_events)
{
    te_env e;
    te_open(&e);
    registerNode(&e, 1, "CPU=4");
    te_expect(RUN(&e, S("JOB.ADD"), te_job(1, 1)), OKR);
    te_expect(RUN(&e, S("ACTOR.REGISTER"),
                  te_actor((te_actor_spec){.k = 1, .job = 1, .name = "a"})),
              OKR);
    te_expect(RUN(&e, S("PG.CREATE"),
                  te_pg((te_pg_spec){.k = 1, .bundles = "CPU=1"})),
              OKR);
    te_expect(RUN(&e, S("SET"), S("plain"), S("key")), OKR);
    cr_assert(te_eq(te_bulk(RUN(&e, S("JOB.NEXTID"))), te_job_id(1)));
    uint64_t rev = e.f.revision;
    size_t events = e.n_ev;
    te_expect(RUN(&e, S("FLUSHALL")), OKR);
    /* The keyspace's one key first, then the typed tables' records. */
    cr_assert_eq(e.n_ev, events + 5);
    cr_assert_str_eq(e.ev[events].table, "KEYSPACE");
    cr_assert(te_eq(e.ev[events].key, S("plain")));
    cr_assert_eq(e.ev[events].kind, FSM_EVENT_DELETE);
    events++;
    rev++;
    const char *tables[] = {"NODE", "ACTOR", "JOB", "PLACEMENT_GROUP"};
    blob keys[] = {te_node_id(1), te_actor_id(1, 1), te_job_id(1),
                   te_pg_id(1, 0)};
    for (size_t i = 0; i < 4; i++) {
        te_event *ev = &e.ev[events + i];
        cr_assert_eq(ev->revision, rev + 1 + i);
        cr_assert_eq(ev->kind, FSM_EVENT_DELETE);
        cr_assert_str_eq(ev->table, tables[i]);
        cr_assert(te_eq(ev->key, keys[i]));
        cr_assert_eq(ev->value.n, 0);
    }
    cr_assert_null(te_get_node(&e, te_node_id(1)));
    cr_assert_null(te_get_actor(&e, te_actor_id(1, 1)));
    cr_assert(te_is_nil(RUN(&e, S("ACTOR.GETNAMED"), S(""), S("a"))));
    cr_assert(te_eq(RUN(&e, S("ACTOR.LIST")), S("*2\r\n$1\r\n0\r\n*0\r\n")));
    cr_assert(te_eq(te_bulk(RUN(&e, S("JOB.NEXTID"))), te_job_id(2)));
    /* Nothing is left behind in storage: a new registration of the same
     * name and the same node starts clean. */
    te_expect(RUN(&e, S("ACTOR.REGISTER"),
                  te_actor((te_actor_spec){.k = 2, .job = 1, .name = "a"})),
              OKR);
    registerNode(&e, 1, "CPU=4");
    te_close(&e);
}

/* Parse [cursor, [records...]]: returns the cursor, counts the records. */
static blob listPage(blob reply, size_t *n)
{
    const char *p = (const char *)reply.p;
    cr_assert(strncmp(p, "*2\r\n$", 5) == 0, "%.*s", (int)reply.n, p);
    blob cur = te_bulk((blob){(const uint8_t *)p + 4, reply.n - 4});
    const char *q = (const char *)cur.p + cur.n + 2;
    cr_assert_eq(*q, '*');
    *n = (size_t)strtoul(q + 1, NULL, 10);
    return te_copy(cur.p, cur.n);
}

Test(tables, lists_page_with_cursors_and_filters)
{
    te_env e;
    te_open(&e);
    registerNode(&e, 1, "CPU=4");
    registerNode(&e, 2, "CPU=4");
    te_expect(RUN(&e, S("NODE.DEAD"), te_node_id(2), S("x")), OKR);
    for (unsigned k = 1; k <= 2500; k++) {
        uint32_t job = 1 + k % 2;
        blob rec = te_actor((te_actor_spec){.k = k, .job = job,
                                            .ns = k % 5 == 0 ? "five" : ""});
        te_expect(RUN(&e, S("ACTOR.REGISTER"), rec), OKR);
        if (k % 10 == 0) {
            blob id = te_actor_id(k, job);
            update(&e, id, PC, 0, 0);
            update(&e, id, ALIVE, 1, k);
        }
    }
    /* Everything, 1000 at a time, each exactly once. */
    size_t total = 0, pages = 0;
    blob cursor = S("0");
    do {
        size_t n;
        cursor = listPage(RUN(&e, S("ACTOR.LIST"), S("CURSOR"), cursor), &n);
        total += n;
        pages++;
        cr_assert_leq(n, 1000);
    } while (!te_eq(cursor, S("0")));
    cr_assert_eq(total, 2500);
    cr_assert_eq(pages, 3);

    struct {
        blob args[4];
        size_t nargs;
        size_t want;
    } cases[] = {
        {{S("JOB"), te_job_id(1)}, 2, 1250},
        {{S("STATE"), S("alive")}, 2, 250},
        {{S("NAMESPACE"), S("five")}, 2, 500},
        {{S("NODE"), te_node_id(1)}, 2, 250},
        {{S("JOB"), te_job_id(2), S("STATE"), S("ALIVE")}, 4, 0},
        {{S("JOB"), te_job_id(1), S("NAMESPACE"), S("five")}, 4, 250},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        total = 0;
        cursor = S("0");
        do {
            blob argv[10] = {S("ACTOR.LIST")};
            size_t argc = 1;
            for (size_t i = 0; i < cases[c].nargs; i++) {
                argv[argc++] = cases[c].args[i];
            }
            argv[argc++] = S("COUNT");
            argv[argc++] = S("100");
            argv[argc++] = S("CURSOR");
            argv[argc++] = cursor;
            size_t n;
            cursor = listPage(te_run(&e, argc, argv), &n);
            cr_assert_leq(n, 100);
            total += n;
        } while (!te_eq(cursor, S("0")));
        cr_assert_eq(total, cases[c].want, "case %zu: %zu", c, total);
    }
    size_t n;
    cr_assert(te_eq(listPage(RUN(&e, S("NODE.LIST"), S("ALIVE")), &n), S("0")));
    cr_assert_eq(n, 1);
    listPage(RUN(&e, S("NODE.LIST"), S("DEAD")), &n);
    cr_assert_eq(n, 1);
    listPage(RUN(&e, S("NODE.LIST")), &n);
    cr_assert_eq(n, 2);
    te_expect_error(RUN(&e, S("ACTOR.LIST"), S("CURSOR"), S("zz")),
                    "ERR invalid cursor");
    te_expect_error(RUN(&e, S("ACTOR.LIST"), S("STATE"), S("SLEEPING")),
                    "ERR unknown actor state");
    te_expect_error(RUN(&e, S("JOB.LIST"), S("COUNT"), S("0")),
                    "ERR syntax error");
    te_expect_error(RUN(&e, S("PG.LIST"), S("BOGUS")), "ERR syntax error");
    te_close(&e);
}

/* ---- dead rows ---------------------------------------------------------- */

static int countOne(void *arg, storage_slice k, storage_slice v)
{
    (void)k;
    (void)v;
    (*(size_t *)arg)++;
    return 0;
}

/* Entries of storage table @table (an index) under @prefix. */
static size_t countEntries(te_env *e, unsigned table, blob prefix)
{
    storage_txn *t = fsm_read_txn(&e->f);
    cr_assert_not_null(t);
    size_t n = 0;
    cr_assert_eq(storage_table_scan(t, table,
                                    (storage_slice){prefix.p, prefix.n},
                                    (storage_slice){"", 0}, countOne, &n),
                 0);
    return n;
}

static uint64_t deadKept(te_env *e, unsigned table, uint64_t *cap)
{
    table_dead_info di;
    cr_assert_eq(table_dead_info_get(fsm_read_txn(&e->f), table, &di), 0);
    if (cap != NULL) *cap = di.cap;
    return di.kept;
}

/* The DELETE events of @table since event @from, as a bitmask over keys
 * @keys[0..n). Fails on a DELETE of another key. */
static unsigned deletedKeys(te_env *e, size_t from, const char *table,
                            const blob *keys, size_t n)
{
    unsigned mask = 0;
    for (size_t i = from; i < e->n_ev; i++) {
        if (e->ev[i].kind != FSM_EVENT_DELETE) continue;
        cr_assert_str_eq(e->ev[i].table, table);
        size_t k = 0;
        while (k < n && !te_eq(e->ev[i].key, keys[k])) k++;
        cr_assert_lt(k, n, "DELETE of an unexpected key");
        cr_assert_eq(e->ev[i].value.n, 0);
        mask |= 1u << k;
    }
    return mask;
}

/* Past a table's cap the oldest dead rows go, record, indexes and all, each
 * with a DELETE event; the newest stay. A lowered cap converges. */
Test(tables, dead_rows_are_capped)
{
    te_env e;
    te_open(&e);
    uint64_t cap;
    cr_assert_eq(deadKept(&e, TABLE_ACTOR, &cap), 0);
    cr_assert_eq(cap, TABLE_DEAD_ACTORS_DEFAULT);
    cr_assert_eq(deadKept(&e, TABLE_NODE, &cap), 0);
    cr_assert_eq(cap, TABLE_DEAD_NODES_DEFAULT);
    te_expect_error(RUN(&e, S("GCS.TABLES.CAPS"), S("3"), S("x"), S("1")),
                    "ERR value is not an integer or out of range");
    te_expect(RUN(&e, S("GCS.TABLES.CAPS"), S("3"), S("2"), S("2")), OKR);
    cr_assert_eq(deadKept(&e, TABLE_ACTOR, &cap), 0);
    cr_assert_eq(cap, 3);
    registerNode(&e, 1, "CPU=8");

    /* Actors 1..6 of job 1 die in order (1 is named); 1..3 are evicted. */
    blob ids[6];
    for (unsigned k = 1; k <= 6; k++) {
        te_expect(RUN(&e, S("ACTOR.REGISTER"),
                      te_actor((te_actor_spec){.k = k, .job = 1,
                                               .name = k == 1 ? "a" : NULL})),
                  OKR);
        ids[k - 1] = te_actor_id(k, 1);
    }
    size_t from = e.n_ev;
    for (unsigned k = 1; k <= 6; k++) {
        te_expect(RUN(&e, S("ACTOR.KILL"), ids[k - 1]), OKR);
    }
    cr_assert_eq(deletedKeys(&e, from, "ACTOR", ids, 6), 0x7);
    for (unsigned k = 1; k <= 6; k++) {
        Ray__Rpc__ActorTableData *a = te_get_actor(&e, ids[k - 1]);
        if (k <= 3) {
            cr_assert_null(a, "actor %u kept", k);
        } else {
            cr_assert_not_null(a, "actor %u evicted", k);
            cr_assert_eq(a->state, DEAD);
            protobuf_c_message_free_unpacked(&a->base, NULL);
        }
    }
    cr_assert_eq(deadKept(&e, TABLE_ACTOR, NULL), 3);
    /* An evicted actor is unknown: no index entry, no listing, no name. */
    te_expect_error(RUN(&e, S("ACTOR.KILL"), ids[0]), "ERR no such actor");
    cr_assert(te_is_nil(RUN(&e, S("ACTOR.GETNAMED"), S(""), S("a"))));
    cr_assert_eq(countEntries(&e, INDEX_ACTOR_BY_JOB, (blob){NULL, 0}), 3);
    cr_assert_eq(countEntries(&e, INDEX_ACTOR_NAME, (blob){NULL, 0}), 0);
    cr_assert_eq(countEntries(&e, INDEX_DEAD, S("\x02")), 3);
    size_t n;
    listPage(RUN(&e, S("ACTOR.LIST"), S("JOB"), te_job_id(1)), &n);
    cr_assert_eq(n, 3);
    listPage(RUN(&e, S("ACTOR.LIST")), &n);
    cr_assert_eq(n, 3);

    /* Nodes 2..5 die; 2 and 3 go. Node 1 stays ALIVE. */
    blob nodes[4];
    for (unsigned k = 2; k <= 5; k++) {
        registerNode(&e, k, "CPU=1");
        nodes[k - 2] = te_node_id(k);
    }
    from = e.n_ev;
    for (unsigned k = 2; k <= 5; k++) {
        te_expect(RUN(&e, S("NODE.DEAD"), nodes[k - 2], S("gone")), OKR);
    }
    cr_assert_eq(deletedKeys(&e, from, "NODE", nodes, 4), 0x3);
    cr_assert_null(te_get_node(&e, nodes[0]));
    cr_assert_null(te_get_node(&e, nodes[1]));
    for (unsigned k = 4; k <= 5; k++) {
        Ray__Rpc__GcsNodeInfo *nd = te_get_node(&e, nodes[k - 2]);
        cr_assert_not_null(nd);
        cr_assert_eq(nd->state, RAY__RPC__GCS_NODE_INFO__GCS_NODE_STATE__DEAD);
        protobuf_c_message_free_unpacked(&nd->base, NULL);
    }
    listPage(RUN(&e, S("NODE.LIST"), S("DEAD")), &n);
    cr_assert_eq(n, 2);
    listPage(RUN(&e, S("NODE.LIST")), &n);
    cr_assert_eq(n, 3);
    cr_assert_eq(deadKept(&e, TABLE_NODE, NULL), 2);

    /* Groups 1..4 are removed; 1 and 2 go. */
    blob pgs[4];
    for (unsigned k = 1; k <= 4; k++) {
        te_expect(RUN(&e, S("PG.CREATE"),
                      te_pg((te_pg_spec){.k = k, .bundles = "CPU=1",
                                         .name = k == 1 ? "g" : NULL})),
                  OKR);
        pgs[k - 1] = te_pg_id(k, 0);
    }
    from = e.n_ev;
    for (unsigned k = 1; k <= 4; k++) {
        te_expect(RUN(&e, S("PG.REMOVE"), pgs[k - 1]), OKR);
    }
    cr_assert_eq(deletedKeys(&e, from, "PLACEMENT_GROUP", pgs, 4), 0x3);
    cr_assert_null(te_get_pg(&e, pgs[0]));
    cr_assert_null(te_get_pg(&e, pgs[1]));
    cr_assert_eq(te_pg_state(&e, pgs[2]), PG_REMOVED);
    cr_assert_eq(te_pg_state(&e, pgs[3]), PG_REMOVED);
    listPage(RUN(&e, S("PG.LIST")), &n);
    cr_assert_eq(n, 2);
    te_expect_error(RUN(&e, S("PG.REMOVE"), pgs[0]),
                    "ERR no such placement group");

    /* Lowering a cap evicts at once (a bounded batch); 0 is the default. */
    from = e.n_ev;
    te_expect(RUN(&e, S("GCS.TABLES.CAPS"), S("1"), S("0"), S("2")), OKR);
    cr_assert_eq(deletedKeys(&e, from, "ACTOR", ids, 6), 0x18);
    cr_assert_eq(deadKept(&e, TABLE_ACTOR, NULL), 1);
    cr_assert_eq(te_actor_state(&e, ids[5]), DEAD);
    cr_assert_eq(deadKept(&e, TABLE_NODE, &cap), 2);
    cr_assert_eq(cap, TABLE_DEAD_NODES_DEFAULT);
    cr_assert_eq(deadKept(&e, TABLE_PG, NULL), 2);

    /* An evicted id may register again, as a new actor. */
    te_expect(RUN(&e, S("ACTOR.REGISTER"),
                  te_actor((te_actor_spec){.k = 1, .job = 1, .name = "a"})),
              OKR);
    cr_assert_eq(te_actor_state(&e, ids[0]), DU);

    /* FLUSHALL empties the FIFOs with the records. */
    te_expect(RUN(&e, S("FLUSHALL")), OKR);
    cr_assert_eq(deadKept(&e, TABLE_ACTOR, NULL), 0);
    cr_assert_eq(deadKept(&e, TABLE_NODE, NULL), 0);
    cr_assert_eq(countEntries(&e, INDEX_DEAD, (blob){NULL, 0}), 0);
    te_close(&e);
}

/* A cascade that kills many rows at once stays within its eviction budget
 * and still ends at the cap. */
Test(tables, dead_rows_cascade)
{
    te_env e;
    te_open(&e);
    te_expect(RUN(&e, S("GCS.TABLES.CAPS"), S("2"), S("0"), S("0")), OKR);
    te_expect(RUN(&e, S("JOB.ADD"), te_job(1, 0)), OKR);
    for (unsigned k = 1; k <= 10; k++) {
        te_expect(RUN(&e, S("ACTOR.REGISTER"),
                      te_actor((te_actor_spec){.k = k, .job = 1})),
                  OKR);
    }
    size_t from = e.n_ev;
    te_expect(RUN(&e, S("JOB.FINISH"), te_job_id(1)), OKR);
    size_t deletes = 0;
    for (size_t i = from; i < e.n_ev; i++) {
        deletes += e.ev[i].kind == FSM_EVENT_DELETE;
    }
    cr_assert_eq(deletes, 8);
    cr_assert_eq(deadKept(&e, TABLE_ACTOR, NULL), 2);
    size_t n;
    listPage(RUN(&e, S("ACTOR.LIST"), S("JOB"), te_job_id(1)), &n);
    cr_assert_eq(n, 2);
    te_close(&e);
}

/* ---- determinism --------------------------------------------------------------- */

/* A pseudo-random log over every write command, ids drawn from small
 * ranges so that commands collide, fail and cascade. */
static size_t randomCommand(unsigned *seed, blob *argv)
{
    unsigned x = (unsigned)rand_r(seed);
    unsigned k = 1 + (unsigned)rand_r(seed) % 150;
    /* An actor's or group's job follows from its number, so that updates
     * find what was registered. */
    uint32_t job = 1 + k % 20;
    unsigned node = 1 + (unsigned)rand_r(seed) % 40;
    unsigned pick = x % 100;
    if (pick < 10) {
        argv[0] = S("NODE.REGISTER");
        argv[1] = te_node(node, x % 2 ? "CPU=4,GPU=1" : "CPU=2");
        return 2;
    }
    if (pick < 12) {
        argv[0] = S("NODE.DEAD");
        argv[1] = te_node_id(node);
        argv[2] = S("random");
        return 3;
    }
    if (pick < 14) {
        argv[0] = S("NODE.DRAIN");
        argv[1] = te_node_id(node);
        argv[2] = x % 4 < 2 ? S("PREEMPTION") : S("IDLE");
        return 3;
    }
    if (pick < 34) {
        char buf[8];
        snprintf(buf, sizeof buf, "n%u", k % 16);
        const char *name =
            x % 3 ? NULL : (const char *)te_copy(buf, strlen(buf)).p;
        argv[0] = S("ACTOR.REGISTER");
        argv[1] = te_actor((te_actor_spec){
            .k = k, .job = job, .name = name, .detached = x % 5 == 0,
            .max_restarts = (long long)(x % 4) - 1,
            .owner_worker = x % 7 == 0 ? k + 1 : 0,
            .owner_node = x % 6 == 0 ? node : 0});
        return 2;
    }
    if (pick < 66) {
        static const int states[10] = {1, 1, 1, 1, 2, 2, 2, 2, 3, 4};
        argv[0] = S("ACTOR.UPDATE");
        argv[1] = te_actor_id(k, job);
        argv[2] = te_update(states[(x / 100) % 10], node, k);
        return 3;
    }
    if (pick < 68) {
        argv[0] = S("ACTOR.KILL");
        argv[1] = te_actor_id(k, job);
        return 2;
    }
    if (pick < 76) {
        argv[0] = S("JOB.ADD");
        argv[1] = te_job(job, node);
        return 2;
    }
    if (pick < 78) {
        argv[0] = S("JOB.FINISH");
        argv[1] = te_job_id(1 + (x / 100) % 20);
        return 2;
    }
    if (pick < 80) {
        argv[0] = S("JOB.NEXTID");
        return 1;
    }
    if (pick < 92) {
        argv[0] = S("PG.CREATE");
        argv[1] = te_pg((te_pg_spec){
            .k = k, .job = job, .creator = x % 2 ? k : 0,
            .strategy = (int)((x / 100) % 4),
            .bundles = x % 3 ? "CPU=1;CPU=1" : "CPU=2;GPU=1;CPU=1",
            .name = x % 5 ? NULL : "pg", .detached = x % 9 == 0});
        return 2;
    }
    argv[0] = S("PG.REMOVE");
    argv[1] = te_pg_id(k, job);
    return 2;
}

/* Apply the same pseudo-random log to two fresh stores (after @caps, a
 * GCS.TABLES.CAPS command, when given): same replies, same events, byte-
 * identical dumps. Returns the number of DELETE events. */
static size_t sameLog(const char *const *caps, unsigned seed)
{
    te_env a, b;
    te_open(&a);
    te_open(&b);
    if (caps != NULL) {
        te_expect(RUN(&a, S("GCS.TABLES.CAPS"), S(caps[0]), S(caps[1]),
                      S(caps[2])), OKR);
        te_expect(RUN(&b, S("GCS.TABLES.CAPS"), S(caps[0]), S(caps[1]),
                      S(caps[2])), OKR);
    }
    size_t errors = 0, deletes = 0;
    for (int i = 0; i < 3000; i++) {
        blob argv[4];
        size_t argc = randomCommand(&seed, argv);
        blob ra = te_run(&a, argc, argv);
        blob rb = te_run(&b, argc, argv);
        cr_assert(te_eq(ra, rb), "replies differ at command %d", i);
        errors += ra.p[0] == '-';
    }
    /* The log exercised both outcomes, and cascades. */
    cr_assert_gt(errors, 300);
    cr_assert_lt(errors, 2700);
    cr_assert_eq(a.n_ev, b.n_ev);
    cr_assert_gt(a.n_ev, 500);
    for (size_t i = 0; i < a.n_ev; i++) {
        cr_assert_eq(a.ev[i].revision, b.ev[i].revision);
        cr_assert_eq(a.ev[i].kind, b.ev[i].kind);
        cr_assert(te_eq(a.ev[i].key, b.ev[i].key));
        cr_assert(te_eq(a.ev[i].value, b.ev[i].value));
        deletes += a.ev[i].kind == FSM_EVENT_DELETE;
    }
    uint64_t ia, ib;
    blob da = te_dump(&a, &ia), db = te_dump(&b, &ib);
    cr_assert_eq(ia, ib);
    cr_assert_eq(da.n, db.n);
    cr_assert(memcmp(da.p, db.p, da.n) == 0, "replicas diverged");
    te_close(&a);
    te_close(&b);
    return deletes;
}

Test(tables, same_log_same_state)
{
    /* Nothing reaches the default caps: nothing is deleted. */
    cr_assert_eq(sameLog(NULL, 20261125), 0);
}

/* Small caps: dead rows are evicted all along, the same way on both. */
Test(tables, same_log_same_state_with_caps)
{
    static const char *const caps[] = {"5", "2", "3"};
    cr_assert_gt(sameLog(caps, 20261126), 20);
}
