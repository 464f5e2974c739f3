/* Node table: NODE.REGISTER NODE.HEARTBEAT NODE.DRAIN NODE.DEAD NODE.GET
 * NODE.LIST.
 *
 * A node registers ALIVE and stays so until NODE.DEAD (sent by its raylet,
 * an operator, or the leader's health check: node_health.c), which records
 * its end time and death info and cascades: placement groups with bundles
 * there are re-placed, actors there restart or die, actors owned by workers
 * there die, jobs whose driver ran there finish. A dead node never comes
 * back (node ids are not reused). NODE.DRAIN marks a node that is going away:
 * nothing new is placed on it, and the drain's reason becomes its death
 * info. Heartbeats are not replicated: only the leader's memory keeps them. */
#include <math.h>
#include <string.h>

#include "command.h"
#include "fsm.h"
#include "node_health.h"
#include "ray.pb-c.h"
#include "server.h"
#include "t_actor.h"
#include "t_job.h"
#include "t_pg.h"
#include "table.h"

#define NODE_STATE(s) RAY__RPC__GCS_NODE_INFO__GCS_NODE_STATE__##s
#define DEATH_REASON(s) RAY__RPC__NODE_DEATH_INFO__REASON__##s

/* Largest resource amount accepted: Ray's fixed point (1/10000) of it still
 * fits comfortably in 63 bits. */
#define RESOURCE_MAX 1e14

static storage_slice nodeKey(const Ray__Rpc__GcsNodeInfo *n)
{
    return (storage_slice){n->node_id.data, n->node_id.len};
}

static int nodeIndexes(table_op *op, const Ray__Rpc__GcsNodeInfo *n,
                       table_index_set *s)
{
    if (n->state != NODE_STATE(ALIVE)) return 0;
    return table_index_add(&op->mem, s, INDEX_NODE_ALIVE, nodeKey(n),
                           (storage_slice){"", 0});
}

/* Save @n, moving its index entries from what @before had. */
static int nodeSave(table_op *op, const Ray__Rpc__GcsNodeInfo *before,
                    const Ray__Rpc__GcsNodeInfo *n)
{
    table_index_set was = {0}, now = {0};
    int rc = 0;
    if (before != NULL) rc = nodeIndexes(op, before, &was);
    if (rc == 0) rc = nodeIndexes(op, n, &now);
    if (rc == 0) rc = table_index_update(op, before ? &was : NULL, &now);
    if (rc == 0) rc = table_save(op, TABLE_NODE, nodeKey(n), &n->base);
    table_nodes_changed(op);
    return rc;
}

static int loadNode(table_op *op, storage_slice id,
                    Ray__Rpc__GcsNodeInfo **out)
{
    return table_load(op->txn, &op->mem, TABLE_NODE, id,
                      &ray__rpc__gcs_node_info__descriptor, (void **)out);
}

/* ---- NODE.REGISTER ------------------------------------------------------ */

static Ray__Rpc__GcsNodeInfo *nodeArg(arena *mem, const resp_arg *arg,
                                      resp_buf *out)
{
    Ray__Rpc__GcsNodeInfo *n =
        table_decode_arg(mem, &ray__rpc__gcs_node_info__descriptor, arg);
    if (n == NULL) {
        resp_add_error(out, "ERR invalid GcsNodeInfo record");
        return NULL;
    }
    if (n->node_id.len != NODE_ID_LEN) {
        resp_add_errorf(out, "ERR invalid node id: expected %d bytes, got %zu",
                        NODE_ID_LEN, n->node_id.len);
        return NULL;
    }
    for (size_t i = 0; i < n->n_resources_total; i++) {
        double v = n->resources_total[i]->value;
        if (!isfinite(v) || v < 0 || v > RESOURCE_MAX) {
            resp_add_errorf(out, "ERR invalid amount of resource '%s': "
                            "expected 0 to 1e14",
                            n->resources_total[i]->key);
            return NULL;
        }
    }
    return n;
}

static int registerCheck(size_t argc, const resp_arg *argv, resp_buf *err)
{
    arena mem;
    arena_init(&mem);
    int rc = nodeArg(&mem, &argv[1], err) != NULL ? 0 : -1;
    arena_free(&mem);
    return rc;
}

static int nodeRegister(table_op *op, size_t argc, const resp_arg *argv,
                        resp_buf *reply)
{
    Ray__Rpc__GcsNodeInfo *n = nodeArg(&op->mem, &argv[1], reply);
    if (n == NULL) return 0;
    Ray__Rpc__GcsNodeInfo *cur;
    int rc = loadNode(op, nodeKey(n), &cur);
    if (rc != 0) return rc;
    if (cur != NULL) {
        /* A retried registration is a no-op; node ids are not reused. */
        if (cur->state == NODE_STATE(DEAD)) {
            resp_add_error(reply, "ERR node is dead and cannot register "
                                  "again");
        } else {
            resp_add_status(reply, "OK");
        }
        return 0;
    }
    n->state = NODE_STATE(ALIVE);
    n->end_time_ms = 0;
    n->death_info = NULL;
    if (n->start_time_ms == 0) n->start_time_ms = op->now_ms;
    /* Only NODE.DRAIN makes a node draining. */
    if (n->state_snapshot != NULL &&
        n->state_snapshot->state == RAY__RPC__NODE_SNAPSHOT__STATE__DRAINING) {
        n->state_snapshot->state = RAY__RPC__NODE_SNAPSHOT__STATE__UNDEFINED;
    }
    if ((rc = nodeSave(op, NULL, n)) != 0) return rc;
    op->retry_pending = true; /* queued groups may fit now */
    resp_add_status(reply, "OK");
    return 0;
}

static int registerApply(apply_ctx *a, size_t argc, const resp_arg *argv,
                         resp_buf *reply)
{
    return table_run(a, argc, argv, reply, nodeRegister);
}

/* ---- NODE.DRAIN --------------------------------------------------------- */

/* NODE.DRAIN id PREEMPTION|IDLE [message] */
static int drainReason(size_t argc, const resp_arg *argv, resp_buf *out)
{
    if (argc > 4) {
        resp_add_error(out, ERR_SYNTAX);
        return -1;
    }
    if (arg_equals(&argv[2], "preemption")) return DEATH_REASON(AUTOSCALER_DRAIN_PREEMPTED);
    if (arg_equals(&argv[2], "idle")) return DEATH_REASON(AUTOSCALER_DRAIN_IDLE);
    resp_add_error(out, "ERR drain reason must be PREEMPTION or IDLE");
    return -1;
}

static int drainCheck(size_t argc, const resp_arg *argv, resp_buf *err)
{
    if (!table_id_arg_or_reply(&argv[1], NODE_ID_LEN, "node", err)) return -1;
    return drainReason(argc, argv, err) < 0 ? -1 : 0;
}

static int nodeDrain(table_op *op, size_t argc, const resp_arg *argv,
                     resp_buf *reply)
{
    if (drainCheck(argc, argv, reply) != 0) return 0;
    int reason = drainReason(argc, argv, reply);
    Ray__Rpc__GcsNodeInfo *n;
    int rc = loadNode(op, arg_slice(&argv[1]), &n);
    if (rc != 0) return rc;
    if (n == NULL) {
        resp_add_error(reply, "ERR no such node");
        return 0;
    }
    if (n->state == NODE_STATE(DEAD)) {
        resp_add_error(reply, "ERR node is dead");
        return 0;
    }
    if (n->state_snapshot == NULL) {
        n->state_snapshot = arena_alloc(&op->mem, sizeof *n->state_snapshot);
        if (n->state_snapshot == NULL) return STORAGE_ENOMEM;
        ray__rpc__node_snapshot__init(n->state_snapshot);
    }
    n->state_snapshot->state = RAY__RPC__NODE_SNAPSHOT__STATE__DRAINING;
    /* Kept until the node dies: then it is the death info. */
    Ray__Rpc__NodeDeathInfo *info = arena_alloc(&op->mem, sizeof *info);
    char *msg = argc > 3 ? arena_dup(&op->mem, argv[3].ptr, argv[3].len)
                         : arena_dup(&op->mem, "", 0);
    if (info == NULL || msg == NULL) return STORAGE_ENOMEM;
    ray__rpc__node_death_info__init(info);
    info->reason = (Ray__Rpc__NodeDeathInfo__Reason)reason;
    info->reason_message = msg;
    n->death_info = info;
    if ((rc = nodeSave(op, n, n)) != 0) return rc;
    if (reason == DEATH_REASON(AUTOSCALER_DRAIN_PREEMPTED) &&
        (rc = actor_mark_preempted(op, nodeKey(n))) != 0) {
        return rc;
    }
    resp_add_status(reply, "OK");
    return 0;
}

static int drainApply(apply_ctx *a, size_t argc, const resp_arg *argv,
                      resp_buf *reply)
{
    return table_run(a, argc, argv, reply, nodeDrain);
}

/* ---- NODE.DEAD ----------------------------------------------------------- */

static int deadCheck(size_t argc, const resp_arg *argv, resp_buf *err)
{
    return table_id_arg_or_reply(&argv[1], NODE_ID_LEN, "node", err) ? 0 : -1;
}

static bool isDraining(const Ray__Rpc__GcsNodeInfo *n)
{
    return n->state_snapshot != NULL &&
           n->state_snapshot->state == RAY__RPC__NODE_SNAPSHOT__STATE__DRAINING &&
           n->death_info != NULL;
}

static int nodeDead(table_op *op, size_t argc, const resp_arg *argv,
                    resp_buf *reply)
{
    if (deadCheck(argc, argv, reply) != 0) return 0;
    Ray__Rpc__GcsNodeInfo *n;
    int rc = loadNode(op, arg_slice(&argv[1]), &n);
    if (rc != 0) return rc;
    if (n == NULL) {
        resp_add_error(reply, "ERR no such node");
        return 0;
    }
    if (n->state == NODE_STATE(DEAD)) {
        resp_add_error(reply, "ERR node is already dead");
        return 0;
    }
    table_index_set was = {0};
    if ((rc = nodeIndexes(op, n, &was)) != 0) return rc;
    if (!isDraining(n)) {
        /* Not announced: an unexpected death, for the reason given. */
        Ray__Rpc__NodeDeathInfo *info = arena_alloc(&op->mem, sizeof *info);
        char *msg = arena_dup(&op->mem, argv[2].ptr, argv[2].len);
        if (info == NULL || msg == NULL) return STORAGE_ENOMEM;
        ray__rpc__node_death_info__init(info);
        info->reason = DEATH_REASON(UNEXPECTED_TERMINATION);
        info->reason_message = msg;
        n->death_info = info;
    }
    n->state = NODE_STATE(DEAD);
    n->end_time_ms = op->now_ms;
    table_index_set now = {0};
    if ((rc = table_index_update(op, &was, &now)) != 0 ||
        (rc = table_save(op, TABLE_NODE, nodeKey(n), &n->base)) != 0 ||
        (rc = storage_table_delete(op->txn, TABLE_NODE_RESOURCES, nodeKey(n),
                                   NULL)) != 0 ||
        (rc = table_dead_add(op, TABLE_NODE, nodeKey(n))) != 0) {
        return rc;
    }
    table_nodes_changed(op);
    /* Ray's order: resources and placement groups, actors, then jobs. */
    if ((rc = pg_on_node_dead(op, nodeKey(n))) != 0 ||
        (rc = actor_on_node_dead(op, nodeKey(n), n->death_info)) != 0 ||
        (rc = job_on_node_dead(op, nodeKey(n))) != 0) {
        return rc;
    }
    resp_add_status(reply, "OK");
    return 0;
}

static int deadApply(apply_ctx *a, size_t argc, const resp_arg *argv,
                     resp_buf *reply)
{
    return table_run(a, argc, argv, reply, nodeDead);
}

/* ---- NODE.HEARTBEAT (leader only, not replicated) ---------------------- */

static void heartbeatExec(client *c, size_t argc, const resp_arg *argv)
{
    resp_buf *out = client_reply(c);
    server *srv = c->srv;
    if (!table_id_arg_or_reply(&argv[1], NODE_ID_LEN, "node", out)) return;
    if (srv->node_health == NULL || !node_health_is_leader(srv->node_health)) {
        /* The follower proxy forwards this command to the leader; without
         * it the client must. */
        resp_add_error(out, "TRYAGAIN NODE.HEARTBEAT must reach the raft "
                            "leader; this member is not it");
        return;
    }
    storage_txn *t = fsm_read_txn(srv->fsm);
    if (t == NULL) {
        resp_add_error(out, "ERR cannot read the state (see the server log)");
        return;
    }
    arena mem;
    arena_init(&mem);
    Ray__Rpc__GcsNodeInfo *n;
    int rc = table_load(t, &mem, TABLE_NODE, arg_slice(&argv[1]),
                        &ray__rpc__gcs_node_info__descriptor, (void **)&n);
    if (rc != 0) reply_storage_error(out, rc);
    else if (n == NULL) resp_add_error(out, "ERR no such node");
    else if (n->state == NODE_STATE(DEAD)) resp_add_error(out, "ERR node is dead");
    else if (node_health_beat(srv->node_health, argv[1].ptr, argv[1].len) != 0)
        resp_add_error(out, "ERR out of memory");
    else resp_add_status(out, "OK");
    arena_free(&mem);
}

/* ---- reads ------------------------------------------------------------- */

static void getRead(storage_txn *t, size_t argc, const resp_arg *argv,
                    resp_buf *out)
{
    table_reply_record(t, TABLE_NODE, arg_slice(&argv[1]), out);
}

typedef struct nodeList {
    table_list l;
    int state; /* -1: any */
    arena mem;
} nodeList;

static int listNode(void *arg, storage_slice key, storage_slice value)
{
    nodeList *nl = arg;
    if (table_list_full(&nl->l, key)) return TABLE_LIST_STOP;
    if (nl->state >= 0) {
        arena_mark m = arena_save(&nl->mem);
        Ray__Rpc__GcsNodeInfo *n = (Ray__Rpc__GcsNodeInfo *)
            protobuf_c_message_unpack(&ray__rpc__gcs_node_info__descriptor,
                                      &nl->mem.pb, value.len, value.data);
        if (n == NULL) return table_decode_error(&nl->mem);
        bool match = (int)n->state == nl->state;
        arena_restore(&nl->mem, m);
        if (!match) return 0;
    }
    table_list_add(&nl->l, value);
    return 0;
}

/* NODE.LIST [ALIVE|DEAD] [CURSOR c] [COUNT n] */
static void listRead(storage_txn *t, size_t argc, const resp_arg *argv,
                     resp_buf *out)
{
    nodeList nl = {.state = -1};
    table_list_init(&nl.l);
    arena_init(&nl.mem);
    for (size_t i = 1; i < argc;) {
        int r = table_list_option(&nl.l, argc, argv, &i, out);
        if (r < 0) goto done;
        if (r > 0) continue;
        if (arg_equals(&argv[i], "alive")) nl.state = NODE_STATE(ALIVE);
        else if (arg_equals(&argv[i], "dead")) nl.state = NODE_STATE(DEAD);
        else {
            resp_add_error(out, ERR_SYNTAX);
            goto done;
        }
        i++;
    }
    int rc = storage_table_scan(t, TABLE_NODE, (storage_slice){"", 0},
                                table_list_from(&nl.l), listNode, &nl);
    table_list_reply(&nl.l, rc, out);
done:
    arena_free(&nl.mem);
    table_list_free(&nl.l);
}

const command node_commands[] = {
    {"node.register", 2, CMD_WRITE | CMD_DENYOOM | CMD_FAST, NULL,
     registerCheck, registerApply, 0, 0, 0, "node",
     "Registers an ALIVE node from a serialized GcsNodeInfo record."},
    {"node.heartbeat", 2, CMD_LEADER | CMD_FAST, heartbeatExec, NULL, NULL,
     0, 0, 0, "node",
     "Records that a node is alive (leader memory only, not replicated)."},
    {"node.drain", -3, CMD_WRITE | CMD_FAST, NULL, drainCheck, drainApply, 0,
     0, 0, "node",
     "Marks a node draining: PREEMPTION|IDLE [message]."},
    {"node.dead", 3, CMD_WRITE | CMD_FAST, NULL, deadCheck, deadApply, 0, 0,
     0, "node",
     "Marks a node dead with a reason; its actors and groups move on."},
    {"node.get", 2, CMD_READ | CMD_FAST, NULL, NULL, NULL, 0, 0, 0, "node",
     "Returns a node's GcsNodeInfo record.", .read = getRead},
    {"node.list", -1, CMD_READ, NULL, NULL, NULL, 0, 0, 0, "node",
     "Lists nodes a page at a time: [ALIVE|DEAD] [CURSOR c] [COUNT n].",
     .read = listRead},
};
const size_t node_commands_count =
    sizeof node_commands / sizeof node_commands[0];
