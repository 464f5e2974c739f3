/* Actor table: ACTOR.REGISTER ACTOR.UPDATE ACTOR.GET ACTOR.GETNAMED
 * ACTOR.LIST ACTOR.KILL, and Ray's actor rules (gcs_actor_manager.cc):
 *
 *   DEPENDENCIES_UNREADY -> PENDING_CREATION -> ALIVE <-> RESTARTING
 *            \                    \              \         /
 *             `--------------------`--------------`-> DEAD (final)
 *
 * (PENDING_CREATION may also go to RESTARTING, and RESTARTING to itself: a
 * creation attempt that fails is a restart.) An update asking for
 * RESTARTING reports a failure: the actor restarts while restarts remain
 * (max_restarts - (num_restarts - num_restarts_due_to_node_preemption) > 0,
 * or max_restarts == -1), or when it was preempted, and otherwise dies.
 * Restarts after preemption do not count. Names are unique per namespace
 * and freed when the actor dies. Non-detached actors die with their job or
 * their owner (the owner's worker dying: its node dying, or, when the owner
 * is an actor, that actor failing); detached ones only when killed or out of
 * restarts. */
#include <stdio.h>
#include <string.h>

#include "command.h"
#include "ray.pb-c.h"
#include "t_actor.h"
#include "t_pg.h"
#include "table.h"

#define STATE(s) RAY__RPC__ACTOR_TABLE_DATA__ACTOR_STATE__##s
#define DIED(s) RAY__RPC__ACTOR_DIED_ERROR_CONTEXT__REASON__##s
#define NODE_ID_SET RAY__RPC__ACTOR_TABLE_DATA___NODE_ID_NODE_ID

typedef Ray__Rpc__ActorTableData actor;

static const char *const stateNames[] = {
    "DEPENDENCIES_UNREADY", "PENDING_CREATION", "ALIVE", "RESTARTING", "DEAD",
};
#define N_STATES 5

/* legal[from][to]. DEPENDENCIES_UNREADY is only ever the first state, and
 * DEAD the last. */
static const bool legal[N_STATES][N_STATES] = {
    /* to:   UNREADY PENDING ALIVE  RESTART DEAD */
    /* UNREADY */ {false, true, false, false, true},
    /* PENDING */ {false, false, true, true, true},
    /* ALIVE   */ {false, false, false, true, true},
    /* RESTART */ {false, false, true, true, true},
    /* DEAD    */ {false, false, false, false, false},
};

static storage_slice actorKey(const actor *r)
{
    return (storage_slice){r->actor_id.data, r->actor_id.len};
}

static storage_slice bin(ProtobufCBinaryData b)
{
    return (storage_slice){b.data, b.len};
}

static bool hasNode(const actor *r)
{
    return r->_node_id_case == NODE_ID_SET && r->node_id.len > 0;
}

/* The index entries an actor record has (table.h). */
static int actorIndexes(table_op *op, const actor *r, table_index_set *s)
{
    arena *m = &op->mem;
    storage_slice id = actorKey(r), none = {"", 0};
    int rc = table_index_add(m, s, INDEX_ACTOR_BY_JOB,
                             table_ref_key(m, bin(r->job_id), id), none);
    if (rc == 0 && r->name[0] != '\0' && r->state != STATE(DEAD)) {
        rc = table_index_add(m, s, INDEX_ACTOR_NAME,
                             table_name_key(m, table_str(r->ray_namespace),
                                            table_str(r->name)),
                             id);
    }
    if (rc == 0 && hasNode(r) &&
        (r->state == STATE(PENDING_CREATION) || r->state == STATE(ALIVE))) {
        rc = table_index_add(m, s, INDEX_ACTOR_BY_NODE,
                             table_ref_key(m, bin(r->node_id), id), none);
    }
    const Ray__Rpc__Address *o = r->owner_address;
    if (rc == 0 && !r->is_detached && r->state != STATE(DEAD) && o != NULL) {
        if (o->worker_id.len > 0) {
            rc = table_index_add(m, s, INDEX_ACTOR_BY_OWNER,
                                 table_ref_key(m, bin(o->worker_id), id),
                                 none);
        }
        if (rc == 0 && o->node_id.len > 0) {
            rc = table_index_add(m, s, INDEX_ACTOR_BY_OWNER_NODE,
                                 table_ref_key(m, bin(o->node_id), id), none);
        }
    }
    return rc;
}

/* Save @r, moving its index entries from @was (NULL: a new actor). */
static int actorSave(table_op *op, const table_index_set *was, actor *r)
{
    table_index_set now = {0};
    r->timestamp = (double)op->now_ms;
    int rc = actorIndexes(op, r, &now);
    if (rc == 0) rc = table_index_update(op, was, &now);
    if (rc == 0) rc = table_save(op, TABLE_ACTOR, actorKey(r), &r->base);
    return rc;
}

static int loadActor(table_op *op, storage_slice id, actor **out)
{
    return table_load(op->txn, &op->mem, TABLE_ACTOR, id,
                      &ray__rpc__actor_table_data__descriptor, (void **)out);
}

/* A death cause of kind ActorDiedErrorContext. NULL when memory is short. */
static Ray__Rpc__ActorDeathCause *diedCause(table_op *op, const actor *r,
                                            int reason, const char *message,
                                            Ray__Rpc__NodeDeathInfo *node)
{
    Ray__Rpc__ActorDeathCause *c = arena_alloc(&op->mem, sizeof *c);
    Ray__Rpc__ActorDiedErrorContext *x = arena_alloc(&op->mem, sizeof *x);
    if (c == NULL || x == NULL) return NULL;
    ray__rpc__actor_death_cause__init(c);
    ray__rpc__actor_died_error_context__init(x);
    /* Packing only reads the strings: static ones are fine in the arena's
     * records. */
    x->error_message = (char *)message;
    x->actor_id = r->actor_id;
    x->name = r->name;
    x->ray_namespace = r->ray_namespace;
    x->class_name = r->class_name;
    x->pid = r->pid;
    x->never_started = r->start_time == 0;
    if (r->owner_address != NULL) {
        x->owner_id = r->owner_address->worker_id;
        x->owner_ip_address = r->owner_address->ip_address;
    }
    if (r->address != NULL) x->node_ip_address = r->address->ip_address;
    x->node_death_info = node;
    x->reason = (Ray__Rpc__ActorDiedErrorContext__Reason)reason;
    c->context_case = RAY__RPC__ACTOR_DEATH_CAUSE__CONTEXT_ACTOR_DIED_ERROR_CONTEXT;
    c->actor_died_error_context = x;
    return c;
}

/* The worker that ran @r died: queue its owned actors' deaths. */
static int ownerWorkerDied(table_op *op, const actor *r)
{
    if (r->address == NULL || r->address->worker_id.len == 0) return 0;
    storage_slice *ids;
    size_t n;
    int rc = table_collect_refs(op->txn, &op->mem, INDEX_ACTOR_BY_OWNER,
                                bin(r->address->worker_id), &ids, &n);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        rc = table_queue_kill(op, ids[i], DIED(OWNER_DIED),
                              "the actor's owner died");
    }
    return rc;
}

/* @r dies for good with @cause. */
static int actorDie(table_op *op, actor *r, Ray__Rpc__ActorDeathCause *cause)
{
    if (cause == NULL) return STORAGE_ENOMEM;
    table_index_set was = {0};
    int rc = actorIndexes(op, r, &was);
    if (rc != 0) return rc;
    r->state = STATE(DEAD);
    r->end_time = op->now_ms;
    r->death_cause = cause;
    if ((rc = actorSave(op, &was, r)) != 0 ||
        (rc = table_dead_add(op, TABLE_ACTOR, actorKey(r))) != 0 ||
        (rc = ownerWorkerDied(op, r)) != 0) {
        return rc;
    }
    return pg_on_actor_dead(op, actorKey(r));
}

/* @r failed: restart it if it may, else it dies with @cause. */
static int actorRestartOrDie(table_op *op, actor *r,
                             Ray__Rpc__ActorDeathCause *cause)
{
    bool preempted = r->preempted;
    uint64_t counted = r->num_restarts - r->num_restarts_due_to_node_preemption;
    bool left = r->max_restarts == -1 ||
                (r->max_restarts > 0 && counted < (uint64_t)r->max_restarts);
    if (!left && !preempted) return actorDie(op, r, cause);
    table_index_set was = {0};
    int rc = actorIndexes(op, r, &was);
    if (rc != 0) return rc;
    if (preempted) r->num_restarts_due_to_node_preemption++;
    r->num_restarts++;
    r->preempted = 0;
    r->state = STATE(RESTARTING);
    /* The worker is gone; the restarted actor reports its new address. */
    const actor before = *r;
    r->address = NULL;
    if ((rc = actorSave(op, &was, r)) != 0) return rc;
    return ownerWorkerDied(op, &before);
}

/* ---- what other tables do to actors ------------------------------------ */

int actor_forget(table_op *op, storage_slice id)
{
    actor *r;
    int rc = loadActor(op, id, &r);
    if (rc != 0 || r == NULL || r->state != STATE(DEAD)) return rc;
    table_index_set was = {0}, none = {0};
    if ((rc = actorIndexes(op, r, &was)) != 0 ||
        (rc = table_index_update(op, &was, &none)) != 0) {
        return rc;
    }
    return table_delete_record(op, TABLE_ACTOR, id);
}

int actor_run_kill(table_op *op, const table_kill *k)
{
    actor *r;
    int rc = loadActor(op, (storage_slice){k->actor_id, ACTOR_ID_LEN}, &r);
    if (rc != 0 || r == NULL || r->state == STATE(DEAD)) return rc;
    return actorDie(op, r, diedCause(op, r, k->reason, k->message, NULL));
}

int actor_on_node_dead(table_op *op, storage_slice node_id,
                       const Ray__Rpc__NodeDeathInfo *info)
{
    bool preempted =
        info != NULL &&
        info->reason == RAY__RPC__NODE_DEATH_INFO__REASON__AUTOSCALER_DRAIN_PREEMPTED;
    storage_slice *ids;
    size_t n;
    int rc = table_collect_refs(op->txn, &op->mem, INDEX_ACTOR_BY_NODE,
                                node_id, &ids, &n);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        table_scope s = table_scope_enter(op);
        actor *r;
        rc = loadActor(op, ids[i], &r);
        if (rc == 0 && r != NULL && r->state != STATE(DEAD)) {
            if (preempted) r->preempted = 1;
            /* A copy: the cause lives in this scope's arena. */
            Ray__Rpc__NodeDeathInfo *copy = NULL;
            if (info != NULL) {
                copy = arena_alloc(&op->mem, sizeof *copy);
                if (copy != NULL) *copy = *info;
            }
            Ray__Rpc__ActorDeathCause *cause =
                diedCause(op, r, DIED(NODE_DIED), "the actor's node died",
                          copy);
            rc = cause == NULL || (info != NULL && copy == NULL)
                     ? STORAGE_ENOMEM
                     : actorRestartOrDie(op, r, cause);
        }
        table_scope_leave(op, s);
    }
    if (rc != 0) return rc;
    rc = table_collect_refs(op->txn, &op->mem, INDEX_ACTOR_BY_OWNER_NODE,
                            node_id, &ids, &n);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        rc = table_queue_kill(op, ids[i], DIED(OWNER_DIED),
                              "the node of the actor's owner died");
    }
    return rc;
}

int actor_on_job_finished(table_op *op, storage_slice job_id)
{
    storage_slice *ids;
    size_t n;
    int rc = table_collect_refs(op->txn, &op->mem, INDEX_ACTOR_BY_JOB, job_id,
                                &ids, &n);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        table_scope s = table_scope_enter(op);
        actor *r;
        rc = loadActor(op, ids[i], &r);
        if (rc == 0 && r != NULL && !r->is_detached &&
            r->state != STATE(DEAD)) {
            rc = actorDie(op, r, diedCause(op, r, DIED(OWNER_DIED),
                                           "the actor's job finished", NULL));
        }
        table_scope_leave(op, s);
    }
    return rc;
}

int actor_mark_preempted(table_op *op, storage_slice node_id)
{
    storage_slice *ids;
    size_t n;
    int rc = table_collect_refs(op->txn, &op->mem, INDEX_ACTOR_BY_NODE,
                                node_id, &ids, &n);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        table_scope s = table_scope_enter(op);
        actor *r;
        rc = loadActor(op, ids[i], &r);
        if (rc == 0 && r != NULL && !r->preempted) {
            table_index_set was = {0};
            rc = actorIndexes(op, r, &was);
            r->preempted = 1;
            if (rc == 0) rc = actorSave(op, &was, r);
        }
        table_scope_leave(op, s);
    }
    return rc;
}

/* ---- validation ---------------------------------------------------------- */

static bool addressOk(const Ray__Rpc__Address *a)
{
    return a == NULL || (table_opt_id_ok(a->node_id, NODE_ID_LEN) &&
                         table_opt_id_ok(a->worker_id, WORKER_ID_LEN));
}

/* Checks shared by a registered record and an update. */
static bool fieldsOk(const actor *r, resp_buf *out)
{
    if (!addressOk(r->address) || !addressOk(r->owner_address) ||
        (r->_node_id_case == NODE_ID_SET &&
         !table_opt_id_ok(r->node_id, NODE_ID_LEN))) {
        resp_add_errorf(out, "ERR invalid node or worker id: expected %d "
                        "bytes", NODE_ID_LEN);
        return false;
    }
    if ((unsigned)r->state >= N_STATES) {
        resp_add_error(out, "ERR invalid actor state");
        return false;
    }
    if (strlen(r->ray_namespace) + strlen(r->name) > TABLE_NAME_MAX) {
        resp_add_errorf(out, "ERR actor name and namespace are longer than "
                        "%d bytes together", TABLE_NAME_MAX);
        return false;
    }
    return true;
}

/* Decode and validate ACTOR.REGISTER's record; NULL after replying. */
static actor *registerArg(arena *mem, const resp_arg *arg, resp_buf *out)
{
    actor *r = table_decode_arg(mem, &ray__rpc__actor_table_data__descriptor,
                                arg);
    if (r == NULL) {
        resp_add_error(out, "ERR invalid ActorTableData record");
        return NULL;
    }
    if (r->actor_id.len != ACTOR_ID_LEN || r->job_id.len != JOB_ID_LEN) {
        resp_add_errorf(out, "ERR invalid actor or job id: expected %d and "
                        "%d bytes", ACTOR_ID_LEN, JOB_ID_LEN);
        return NULL;
    }
    if (!fieldsOk(r, out)) return NULL;
    if (r->state != STATE(DEPENDENCIES_UNREADY)) {
        resp_add_error(out, "ERR a new actor starts in DEPENDENCIES_UNREADY");
        return NULL;
    }
    if (r->max_restarts < -1) {
        resp_add_error(out, "ERR max_restarts must be -1 (unlimited) or more");
        return NULL;
    }
    return r;
}

/* Decode and validate ACTOR.UPDATE's arguments; NULL after replying. */
static actor *updateArg(arena *mem, const resp_arg *argv, resp_buf *out)
{
    if (!table_id_arg_or_reply(&argv[1], ACTOR_ID_LEN, "actor", out)) {
        return NULL;
    }
    actor *u = table_decode_arg(mem, &ray__rpc__actor_table_data__descriptor,
                                &argv[2]);
    if (u == NULL) {
        resp_add_error(out, "ERR invalid ActorTableData record");
        return NULL;
    }
    if (u->actor_id.len != 0 &&
        (u->actor_id.len != argv[1].len ||
         memcmp(u->actor_id.data, argv[1].ptr, argv[1].len) != 0)) {
        resp_add_error(out, "ERR the record's actor_id is not the actor "
                            "updated");
        return NULL;
    }
    return fieldsOk(u, out) ? u : NULL;
}

/* ---- ACTOR.REGISTER ------------------------------------------------------ */

static int registerCheck(size_t argc, const resp_arg *argv, resp_buf *err)
{
    arena mem;
    arena_init(&mem);
    int rc = registerArg(&mem, &argv[1], err) != NULL ? 0 : -1;
    arena_free(&mem);
    return rc;
}

/* The node @id as recorded; *alive tells whether it is ALIVE. */
static int nodeState(table_op *op, storage_slice id, bool *known, bool *alive)
{
    Ray__Rpc__GcsNodeInfo *n;
    int rc = table_load(op->txn, &op->mem, TABLE_NODE, id,
                        &ray__rpc__gcs_node_info__descriptor, (void **)&n);
    *known = n != NULL;
    *alive = n != NULL &&
             n->state == RAY__RPC__GCS_NODE_INFO__GCS_NODE_STATE__ALIVE;
    return rc;
}

static void replyNameTaken(resp_buf *out, const actor *r)
{
    resp_add_errorf(out, "ERR actor with name '%s' already exists in "
                    "namespace '%s'", r->name, r->ray_namespace);
}

static int actorRegister(table_op *op, size_t argc, const resp_arg *argv,
                         resp_buf *reply)
{
    actor *r = registerArg(&op->mem, &argv[1], reply);
    if (r == NULL) return 0;
    actor *cur;
    int rc = loadActor(op, actorKey(r), &cur);
    if (rc != 0) return rc;
    if (cur != NULL) {
        /* Ray: registering again is a no-op. */
        resp_add_status(reply, "OK");
        return 0;
    }
    if (!r->is_detached) {
        Ray__Rpc__JobTableData *job;
        rc = table_load(op->txn, &op->mem, TABLE_JOB, bin(r->job_id),
                        &ray__rpc__job_table_data__descriptor, (void **)&job);
        if (rc != 0) return rc;
        if (job != NULL && job->is_dead) {
            resp_add_error(reply, "ERR the actor's job already finished");
            return 0;
        }
        if (r->owner_address != NULL && r->owner_address->node_id.len > 0) {
            bool known, alive;
            rc = nodeState(op, bin(r->owner_address->node_id), &known,
                           &alive);
            if (rc != 0) return rc;
            if (known && !alive) {
                resp_add_error(reply, "ERR the actor's owner is on a dead "
                                      "node");
                return 0;
            }
        }
    }
    if (r->name[0] != '\0') {
        storage_slice key = table_name_key(&op->mem,
                                           table_str(r->ray_namespace),
                                           table_str(r->name)),
                      v;
        bool taken;
        if (key.data == NULL) return STORAGE_ENOMEM;
        rc = storage_table_get(op->txn, INDEX_ACTOR_NAME, key, &v, &taken);
        if (rc != 0) return rc;
        if (taken) {
            replyNameTaken(reply, r);
            return 0;
        }
    }
    r->num_restarts = 0;
    r->num_restarts_due_to_node_preemption = 0;
    r->num_restarts_due_to_lineage_reconstruction = 0;
    r->preempted = 0;
    r->start_time = 0;
    r->end_time = 0;
    r->death_cause = NULL;
    if ((rc = actorSave(op, NULL, r)) != 0) return rc;
    resp_add_status(reply, "OK");
    return 0;
}

static int registerApply(apply_ctx *a, size_t argc, const resp_arg *argv,
                         resp_buf *reply)
{
    return table_run(a, argc, argv, reply, actorRegister);
}

/* ---- ACTOR.UPDATE ---------------------------------------------------------- */

static int updateCheck(size_t argc, const resp_arg *argv, resp_buf *err)
{
    arena mem;
    arena_init(&mem);
    int rc = updateArg(&mem, argv, err) != NULL ? 0 : -1;
    arena_free(&mem);
    return rc;
}

/* Copy the fields a client reports (where it runs, what it is) from @u.
 * Fields the state machine owns (state, restart counts, times, preempted)
 * and identity (ids, job, name, namespace, owner, detached, max_restarts)
 * are not taken from updates. */
static void mergeReported(actor *r, const actor *u)
{
    if (u->address != NULL) r->address = u->address;
    if (u->_node_id_case == NODE_ID_SET) {
        r->_node_id_case = NODE_ID_SET;
        r->node_id = u->node_id;
    }
    if (u->pid != 0) r->pid = u->pid;
    if (u->repr_name[0] != '\0') r->repr_name = u->repr_name;
    if (u->class_name[0] != '\0') r->class_name = u->class_name;
    if (u->serialized_runtime_env[0] != '\0') {
        r->serialized_runtime_env = u->serialized_runtime_env;
    }
    if (u->n_required_resources > 0) {
        r->n_required_resources = u->n_required_resources;
        r->required_resources = u->required_resources;
    }
    if (u->n_label_selector > 0) {
        r->n_label_selector = u->n_label_selector;
        r->label_selector = u->label_selector;
    }
    if (u->_placement_group_id_case != 0) {
        r->_placement_group_id_case = u->_placement_group_id_case;
        r->placement_group_id = u->placement_group_id;
    }
    if (u->_call_site_case != 0) {
        r->_call_site_case = u->_call_site_case;
        r->call_site = u->call_site;
    }
}

/* The node an update places the actor on: its node_id, else its address's
 * node. Empty when it names none. */
static storage_slice updateNode(const actor *u)
{
    if (u->_node_id_case == NODE_ID_SET && u->node_id.len > 0) {
        return bin(u->node_id);
    }
    if (u->address != NULL && u->address->node_id.len > 0) {
        return bin(u->address->node_id);
    }
    return (storage_slice){"", 0};
}

static int actorUpdate(table_op *op, size_t argc, const resp_arg *argv,
                       resp_buf *reply)
{
    actor *u = updateArg(&op->mem, argv, reply);
    if (u == NULL) return 0;
    actor *r;
    int rc = loadActor(op, arg_slice(&argv[1]), &r);
    if (rc != 0) return rc;
    if (r == NULL) {
        resp_add_error(reply, "ERR no such actor");
        return 0;
    }
    int from = r->state, to = u->state;
    if (to == STATE(DEPENDENCIES_UNREADY) && from == STATE(DEAD)) {
        resp_add_error(reply, "ERR actor is dead");
        return 0;
    }
    if (to != STATE(DEPENDENCIES_UNREADY) && !legal[from][to]) {
        resp_add_errorf(reply, "ERR invalid actor state transition from %s "
                        "to %s", stateNames[from], stateNames[to]);
        return 0;
    }
    int next = to == STATE(DEPENDENCIES_UNREADY) ? from : to;
    storage_slice node = updateNode(u);
    /* An ALIVE actor runs on a live node: the one the update names, else
     * the one it had. */
    storage_slice check = node;
    if (next == STATE(ALIVE) && check.len == 0 && hasNode(r)) {
        check = bin(r->node_id);
    }
    if (next == STATE(ALIVE) && check.len == 0) {
        resp_add_error(reply, "ERR an ALIVE actor needs node_id or "
                              "address.node_id");
        return 0;
    }
    if ((next == STATE(ALIVE) || next == STATE(PENDING_CREATION)) &&
        check.len > 0) {
        bool known, alive;
        if ((rc = nodeState(op, check, &known, &alive)) != 0) return rc;
        if (!alive) {
            resp_add_error(reply, known ? "ERR node is not alive"
                                        : "ERR no such node");
            return 0;
        }
    }

    Ray__Rpc__ActorDeathCause *cause = u->death_cause;
    if (to == STATE(RESTARTING) || to == STATE(DEAD)) {
        mergeReported(r, u);
        if (cause == NULL) {
            cause = diedCause(op, r, DIED(WORKER_DIED),
                              "the actor's worker died", NULL);
        }
        rc = to == STATE(DEAD) ? actorDie(op, r, cause)
                               : actorRestartOrDie(op, r, cause);
    } else {
        table_index_set was = {0};
        if ((rc = actorIndexes(op, r, &was)) != 0) return rc;
        mergeReported(r, u);
        if (node.len > 0) {
            r->_node_id_case = NODE_ID_SET;
            r->node_id.data = (uint8_t *)node.data;
            r->node_id.len = node.len;
        }
        r->state = (Ray__Rpc__ActorTableData__ActorState)next;
        if (to == STATE(ALIVE)) r->start_time = op->now_ms;
        rc = actorSave(op, &was, r);
    }
    if (rc != 0) return rc;
    return table_reply_message(&op->mem, &r->base, reply);
}

static int updateApply(apply_ctx *a, size_t argc, const resp_arg *argv,
                       resp_buf *reply)
{
    return table_run(a, argc, argv, reply, actorUpdate);
}

/* ---- ACTOR.KILL -------------------------------------------------------- */

static int killCheck(size_t argc, const resp_arg *argv, resp_buf *err)
{
    return table_id_arg_or_reply(&argv[1], ACTOR_ID_LEN, "actor", err) ? 0
                                                                        : -1;
}

static int actorKill(table_op *op, size_t argc, const resp_arg *argv,
                     resp_buf *reply)
{
    if (killCheck(argc, argv, reply) != 0) return 0;
    actor *r;
    int rc = loadActor(op, arg_slice(&argv[1]), &r);
    if (rc != 0) return rc;
    if (r == NULL) {
        resp_add_error(reply, "ERR no such actor");
        return 0;
    }
    if (r->state == STATE(DEAD)) {
        resp_add_error(reply, "ERR actor is already dead");
        return 0;
    }
    rc = actorDie(op, r, diedCause(op, r, DIED(RAY_KILL),
                                   "killed by ACTOR.KILL", NULL));
    if (rc == 0) resp_add_status(reply, "OK");
    return rc;
}

static int killApply(apply_ctx *a, size_t argc, const resp_arg *argv,
                     resp_buf *reply)
{
    return table_run(a, argc, argv, reply, actorKill);
}

/* ---- reads ------------------------------------------------------------- */

static void getRead(storage_txn *t, size_t argc, const resp_arg *argv,
                    resp_buf *out)
{
    table_reply_record(t, TABLE_ACTOR, arg_slice(&argv[1]), out);
}

/* ACTOR.GETNAMED namespace name: the live actor holding the name, or nil. */
static void getNamedRead(storage_txn *t, size_t argc, const resp_arg *argv,
                         resp_buf *out)
{
    table_reply_named(t, INDEX_ACTOR_NAME, TABLE_ACTOR, &argv[1], &argv[2], out);
}

typedef struct actorList {
    table_list l;
    storage_txn *t;
    arena mem;
    bool byIndex;          /* scanning an index: fetch each record */
    int state;             /* -1: any */
    const resp_arg *ns;    /* NULL: any */
    const resp_arg *node;  /* NULL: any */
} actorList;

static bool actorMatches(actorList *al, storage_slice value, int *err)
{
    if (al->state < 0 && al->ns == NULL && al->node == NULL) return true;
    arena_mark m = arena_save(&al->mem);
    actor *r = (actor *)protobuf_c_message_unpack(
        &ray__rpc__actor_table_data__descriptor, &al->mem.pb, value.len,
        value.data);
    bool match = false;
    if (r == NULL) {
        *err = table_decode_error(&al->mem);
    } else {
        match = (al->state < 0 || (int)r->state == al->state) &&
                (al->ns == NULL ||
                 (strlen(r->ray_namespace) == al->ns->len &&
                  memcmp(r->ray_namespace, al->ns->ptr, al->ns->len) == 0)) &&
                (al->node == NULL ||
                 ((r->state == STATE(PENDING_CREATION) ||
                   r->state == STATE(ALIVE)) &&
                  hasNode(r) && r->node_id.len == al->node->len &&
                  memcmp(r->node_id.data, al->node->ptr, al->node->len) == 0));
    }
    arena_restore(&al->mem, m);
    return match;
}

static int listActor(void *arg, storage_slice key, storage_slice value)
{
    actorList *al = arg;
    if (table_list_full(&al->l, key)) return TABLE_LIST_STOP;
    storage_slice record = value;
    if (al->byIndex) {
        bool found;
        int rc = storage_table_get(al->t, TABLE_ACTOR, table_ref_id(key),
                                   &record, &found);
        if (rc != 0) return rc;
        if (!found) return 0;
    }
    int err = 0;
    bool match = actorMatches(al, record, &err);
    if (err != 0) return err;
    if (match) table_list_add(&al->l, record);
    return 0;
}

static int parseState(const resp_arg *a)
{
    for (int s = 0; s < N_STATES; s++) {
        if (arg_equals(a, stateNames[s])) return s;
    }
    return -1;
}

/* ACTOR.LIST [JOB id] [STATE s] [NAMESPACE ns] [NODE id] [CURSOR c]
 * [COUNT n]. JOB and NODE (actors PENDING_CREATION or ALIVE on the node)
 * are answered from an index; the other filters examine each record. */
static void listRead(storage_txn *t, size_t argc, const resp_arg *argv,
                     resp_buf *out)
{
    actorList al = {.t = t, .state = -1};
    const resp_arg *job = NULL;
    table_list_init(&al.l);
    arena_init(&al.mem);
    for (size_t i = 1; i < argc;) {
        int r = table_list_option(&al.l, argc, argv, &i, out);
        if (r < 0) goto done;
        if (r > 0) continue;
        if (i + 1 >= argc) {
            resp_add_error(out, ERR_SYNTAX);
            goto done;
        }
        const resp_arg *v = &argv[i + 1];
        if (arg_equals(&argv[i], "job")) {
            job = v;
        } else if (arg_equals(&argv[i], "namespace")) {
            al.ns = v;
        } else if (arg_equals(&argv[i], "node")) {
            al.node = v;
        } else if (arg_equals(&argv[i], "state")) {
            if ((al.state = parseState(v)) < 0) {
                resp_add_error(out, "ERR unknown actor state");
                goto done;
            }
        } else {
            resp_add_error(out, ERR_SYNTAX);
            goto done;
        }
        i += 2;
    }
    unsigned table = TABLE_ACTOR;
    storage_slice prefix = {"", 0};
    const resp_arg *owner = job != NULL ? job : al.node;
    if (owner != NULL) {
        if (owner->len > 255) { /* no such id: nothing listed */
            table_list_reply(&al.l, 0, out);
            goto done;
        }
        table = job != NULL ? INDEX_ACTOR_BY_JOB : INDEX_ACTOR_BY_NODE;
        prefix = table_ref_key(&al.mem, arg_slice(owner),
                               (storage_slice){"", 0});
        if (prefix.data == NULL) {
            reply_storage_error(out, STORAGE_ENOMEM);
            goto done;
        }
        al.byIndex = true;
        if (job == NULL) al.node = NULL; /* the index is the filter */
    }
    int rc = storage_table_scan(t, table, prefix, table_list_from(&al.l),
                                listActor, &al);
    table_list_reply(&al.l, rc, out);
done:
    arena_free(&al.mem);
    table_list_free(&al.l);
}

const command actor_commands[] = {
    {"actor.register", 2, CMD_WRITE | CMD_DENYOOM | CMD_FAST, NULL,
     registerCheck, registerApply, 0, 0, 0, "actor",
     "Registers an actor (DEPENDENCIES_UNREADY) from a serialized "
     "ActorTableData record."},
    {"actor.update", 3, CMD_WRITE | CMD_DENYOOM | CMD_FAST, NULL,
     updateCheck, updateApply, 0, 0, 0, "actor",
     "Moves an actor to a new state and/or records reported fields; "
     "replies the new record."},
    {"actor.get", 2, CMD_READ | CMD_FAST, NULL, NULL, NULL, 0, 0, 0, "actor",
     "Returns an actor's ActorTableData record.", .read = getRead},
    {"actor.getnamed", 3, CMD_READ | CMD_FAST, NULL, NULL, NULL, 0, 0, 0,
     "actor", "Returns the live actor with a name in a namespace.",
     .read = getNamedRead},
    {"actor.list", -1, CMD_READ, NULL, NULL, NULL, 0, 0, 0, "actor",
     "Lists actors a page at a time: [JOB id] [STATE s] [NAMESPACE ns] "
     "[NODE id] [CURSOR c] [COUNT n].",
     .read = listRead},
    {"actor.kill", 2, CMD_WRITE | CMD_FAST, NULL, killCheck, killApply, 0, 0,
     0, "actor", "Kills an actor for good (RAY_KILL); its name is freed."},
};
const size_t actor_commands_count =
    sizeof actor_commands / sizeof actor_commands[0];
