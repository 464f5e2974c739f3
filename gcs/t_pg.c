/* Placement-group table: PG.CREATE PG.REMOVE PG.GET PG.GETNAMED PG.LIST
 * PG.WAIT, and bundle placement (gcs_placement_group_manager.cc's rules,
 * with placement.c choosing the nodes).
 *
 * A group is placed when it is created: each bundle onto an ALIVE node that
 * is not draining, against the node's total resources minus what bundles
 * already placed there hold (committed, kept per node in Ray's fixed point).
 * All bundles placed: CREATED (gcsd has no raylets to prepare and commit
 * with, so PREPARED is never used). Otherwise the group waits, PENDING, in a
 * queue, and is placed again whenever a node registers or resources are
 * freed, in queue order. A node that dies takes its bundles with it: the
 * group becomes RESCHEDULING (ahead of PENDING groups in the queue) and
 * those bundles are placed again, the others staying where they are.
 * REMOVED is final and frees the group's resources and name. A group's
 * lifetime ends (it is removed) when it is not detached and both its
 * creator job and its creator actor are dead (a group created by a driver
 * has no creator actor: that one counts as dead). */
#include <stdlib.h>
#include <string.h>

#include "command.h"
#include "fsm.h"
#include "gcs.pb-c.h"
#include "pg_wait.h"
#include "placement.h"
#include "ray.pb-c.h"
#include "server.h"
#include "t_pg.h"
#include "table.h"

#define STATE(s) RAY__RPC__PLACEMENT_GROUP_TABLE_DATA__PLACEMENT_GROUP_STATE__##s
#define SCHED(s) RAY__RPC__PLACEMENT_GROUP_STATS__SCHEDULING_STATE__##s

/* Most bundles in one group: placement is quadratic in them. */
#define PG_MAX_BUNDLES 1000
#define RESOURCE_MAX 1e14
#define UNITS_PER_ONE 10000.0 /* Ray's fixed point */

/* Queue classes: groups that lost a node go first, as in Ray. */
enum { QUEUE_RESCHEDULING = 0, QUEUE_PENDING = 1 };
#define QUEUE_KEY_LEN (1 + 8 + PG_ID_LEN)

typedef Ray__Rpc__PlacementGroupTableData pgroup;

static storage_slice bin(ProtobufCBinaryData b)
{
    return (storage_slice){b.data, b.len};
}

static storage_slice pgKey(const pgroup *g)
{
    return bin(g->placement_group_id);
}

static int64_t toUnits(double amount)
{
    /* PG.CREATE and NODE.REGISTER check amounts to be in [0, 1e14]; a
     * record that skipped the checks (restored from a damaged snapshot) is
     * clamped there too (NaN: 0), rather than overflowing the conversion.
     * The multiply and the add stay separate statements: no FMA, so every
     * replica gets the same units. */
    if (!(amount >= 0)) return 0;
    if (amount > RESOURCE_MAX) amount = RESOURCE_MAX;
    double scaled = amount * UNITS_PER_ONE;
    return (int64_t)(scaled + 0.5);
}

/* ---- the alive nodes, as placement sees them ------------------------------
 *
 * Built once per command when first needed (malloc'd, so it survives the
 * command's table scopes) and dropped when nodes change. */

typedef struct pgResource {
    char *name;
    size_t len;
    int64_t total, committed;
} pgResource;

typedef struct pgNode {
    uint8_t id[NODE_ID_LEN];
    bool draining;
    pgResource *res; /* sorted by name */
    size_t n, cap;
} pgNode;

struct pg_nodes {
    pgNode *v;
    size_t n;
};

void pg_nodes_free(struct pg_nodes *nodes)
{
    if (nodes == NULL) return;
    for (size_t i = 0; i < nodes->n; i++) {
        for (size_t k = 0; k < nodes->v[i].n; k++) free(nodes->v[i].res[k].name);
        free(nodes->v[i].res);
    }
    free(nodes->v);
    free(nodes);
}

static int nameCmp(const char *a, size_t alen, const char *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen;
    int c = n > 0 ? memcmp(a, b, n) : 0;
    if (c != 0) return c;
    return alen < blen ? -1 : alen > blen;
}

/* The resource @name of @node, added (zero) when absent. NULL when memory
 * is short. */
static pgResource *nodeResource(pgNode *node, const char *name, size_t len)
{
    size_t i = 0;
    while (i < node->n && nameCmp(node->res[i].name, node->res[i].len, name,
                                  len) < 0) {
        i++;
    }
    if (i < node->n &&
        nameCmp(node->res[i].name, node->res[i].len, name, len) == 0) {
        return &node->res[i];
    }
    if (node->n == node->cap) {
        size_t cap = node->cap ? 2 * node->cap : 4;
        pgResource *r = realloc(node->res, cap * sizeof *r);
        if (r == NULL) return NULL;
        node->res = r;
        node->cap = cap;
    }
    char *copy = malloc(len + 1);
    if (copy == NULL) return NULL;
    memcpy(copy, name, len);
    copy[len] = '\0';
    memmove(&node->res[i + 1], &node->res[i], (node->n - i) * sizeof *node->res);
    node->res[i] = (pgResource){copy, len, 0, 0};
    node->n++;
    return &node->res[i];
}

static int loadNodeView(table_op *op, pgNode *node, storage_slice id)
{
    Ray__Rpc__GcsNodeInfo *n;
    int rc = table_load(op->txn, &op->mem, TABLE_NODE, id,
                        &ray__rpc__gcs_node_info__descriptor, (void **)&n);
    if (rc != 0) return rc;
    if (n == NULL) return STORAGE_ECORRUPT; /* indexed but absent */
    memcpy(node->id, id.data, NODE_ID_LEN);
    node->draining = n->state_snapshot != NULL &&
                     n->state_snapshot->state ==
                         RAY__RPC__NODE_SNAPSHOT__STATE__DRAINING;
    for (size_t i = 0; i < n->n_resources_total; i++) {
        const char *name = n->resources_total[i]->key;
        pgResource *r = nodeResource(node, name, strlen(name));
        if (r == NULL) return STORAGE_ENOMEM;
        r->total += toUnits(n->resources_total[i]->value);
    }
    Gcs__ResourceUnits *c;
    rc = table_load(op->txn, &op->mem, TABLE_NODE_RESOURCES, id,
                    &gcs__resource_units__descriptor, (void **)&c);
    for (size_t i = 0; rc == 0 && c != NULL && i < c->n_entries; i++) {
        const char *name = c->entries[i]->name;
        pgResource *r = nodeResource(node, name, strlen(name));
        if (r == NULL) return STORAGE_ENOMEM;
        r->committed += c->entries[i]->units;
    }
    return rc;
}

/* op->nodes, built if needed. */
static int pgNodes(table_op *op, struct pg_nodes **out)
{
    if (op->nodes != NULL) {
        *out = op->nodes;
        return 0;
    }
    table_scope s = table_scope_enter(op);
    storage_slice *ids;
    size_t n;
    int rc = table_collect_keys(op->txn, &op->mem, INDEX_NODE_ALIVE, &ids, &n);
    struct pg_nodes *nodes = calloc(1, sizeof *nodes);
    if (rc == 0 && nodes == NULL) rc = STORAGE_ENOMEM;
    if (rc == 0 && n > 0) {
        nodes->v = calloc(n, sizeof *nodes->v);
        if (nodes->v == NULL) rc = STORAGE_ENOMEM;
    }
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (ids[i].len != NODE_ID_LEN) {
            rc = STORAGE_ECORRUPT;
            break;
        }
        nodes->n++;
        rc = loadNodeView(op, &nodes->v[i], ids[i]);
    }
    table_scope_leave(op, s);
    if (rc != 0) {
        pg_nodes_free(nodes);
        return rc;
    }
    op->nodes = nodes;
    *out = nodes;
    return 0;
}

static size_t findNode(const struct pg_nodes *nodes, storage_slice id)
{
    for (size_t i = 0; i < nodes->n; i++) {
        if (id.len == NODE_ID_LEN &&
            memcmp(nodes->v[i].id, id.data, NODE_ID_LEN) == 0) {
            return i;
        }
    }
    return PLACEMENT_UNPLACED;
}

/* ---- committed resources ------------------------------------------------- */

/* Add @sign times @b's demand to what is committed on node @node in
 * storage (load, change, store; the record goes when nothing is left). */
static int commitBundle(table_op *op, storage_slice node,
                        const Ray__Rpc__Bundle *b, int sign)
{
    table_scope s = table_scope_enter(op);
    pgNode view = {.res = NULL};
    Gcs__ResourceUnits *c;
    int rc = table_load(op->txn, &op->mem, TABLE_NODE_RESOURCES, node,
                        &gcs__resource_units__descriptor, (void **)&c);
    for (size_t i = 0; rc == 0 && c != NULL && i < c->n_entries; i++) {
        const char *name = c->entries[i]->name;
        pgResource *r = nodeResource(&view, name, strlen(name));
        if (r == NULL) rc = STORAGE_ENOMEM;
        else r->committed += c->entries[i]->units;
    }
    for (size_t i = 0; rc == 0 && i < b->n_unit_resources; i++) {
        const char *name = b->unit_resources[i]->key;
        pgResource *r = nodeResource(&view, name, strlen(name));
        if (r == NULL) rc = STORAGE_ENOMEM;
        else r->committed += sign * toUnits(b->unit_resources[i]->value);
    }
    /* Sorted by name, zeros dropped: the same bytes on every replica. */
    Gcs__ResourceUnits out;
    gcs__resource_units__init(&out);
    Gcs__ResourceUnits__Entry *entries = NULL, **ptrs = NULL;
    if (rc == 0 && view.n > 0) {
        entries = arena_alloc(&op->mem, view.n * sizeof *entries);
        ptrs = arena_alloc(&op->mem, view.n * sizeof *ptrs);
        if (entries == NULL || ptrs == NULL) rc = STORAGE_ENOMEM;
    }
    for (size_t i = 0; rc == 0 && i < view.n; i++) {
        if (view.res[i].committed == 0) continue;
        gcs__resource_units__entry__init(&entries[out.n_entries]);
        entries[out.n_entries].name = view.res[i].name;
        entries[out.n_entries].units = view.res[i].committed;
        ptrs[out.n_entries] = &entries[out.n_entries];
        out.n_entries++;
    }
    out.entries = ptrs;
    if (rc == 0) {
        rc = out.n_entries == 0
                 ? storage_table_delete(op->txn, TABLE_NODE_RESOURCES, node,
                                        NULL)
                 : table_save(op, TABLE_NODE_RESOURCES, node, &out.base);
    }
    for (size_t i = 0; i < view.n; i++) free(view.res[i].name);
    free(view.res);
    table_scope_leave(op, s);
    return rc;
}

/* ---- placing a group ----------------------------------------------------- */

static bool isPlaced(const Ray__Rpc__Bundle *b)
{
    return b->node_id.len > 0;
}

/* Place @g's unplaced bundles. *placed tells whether all now are; when not,
 * nothing changed. */
static int pgPlace(table_op *op, pgroup *g, bool *placed)
{
    *placed = false;
    struct pg_nodes *nodes;
    int rc = pgNodes(op, &nodes);
    if (rc != 0) return rc;
    size_t nb = g->n_bundles;
    size_t *where = arena_alloc(&op->mem, nb * sizeof *where);
    placement_bundle *bundles = arena_alloc(&op->mem, nb * sizeof *bundles);
    placement_node *pnodes =
        nodes->n ? arena_alloc(&op->mem, nodes->n * sizeof *pnodes) : NULL;
    if (where == NULL || bundles == NULL || (nodes->n && pnodes == NULL)) {
        return STORAGE_ENOMEM;
    }
    for (size_t i = 0; i < nb; i++) {
        const Ray__Rpc__Bundle *b = g->bundles[i];
        placement_resource *d = NULL;
        if (b->n_unit_resources > 0) {
            d = arena_alloc(&op->mem, b->n_unit_resources * sizeof *d);
            if (d == NULL) return STORAGE_ENOMEM;
        }
        for (size_t k = 0; k < b->n_unit_resources; k++) {
            d[k].name = b->unit_resources[k]->key;
            d[k].name_len = strlen(d[k].name);
            d[k].amount = b->unit_resources[k]->value;
        }
        bundles[i] = (placement_bundle){d, b->n_unit_resources};
        where[i] = isPlaced(b) ? findNode(nodes, bin(b->node_id))
                               : PLACEMENT_UNPLACED;
    }
    for (size_t i = 0; i < nodes->n; i++) {
        const pgNode *nd = &nodes->v[i];
        placement_resource *avail = NULL;
        if (!nd->draining && nd->n > 0) {
            avail = arena_alloc(&op->mem, nd->n * sizeof *avail);
            if (avail == NULL) return STORAGE_ENOMEM;
            for (size_t k = 0; k < nd->n; k++) {
                avail[k].name = nd->res[k].name;
                avail[k].name_len = nd->res[k].len;
                avail[k].amount =
                    (double)(nd->res[k].total - nd->res[k].committed) /
                    UNITS_PER_ONE;
            }
        }
        /* A draining node offers nothing new. */
        pnodes[i] = (placement_node){avail, nd->draining ? 0 : nd->n};
    }
    size_t *before = arena_dup(&op->mem, where, nb * sizeof *where);
    if (before == NULL) return STORAGE_ENOMEM;
    int prc = placement_place((int)g->strategy, pnodes, nodes->n, bundles, nb,
                              where);
    if (prc == PLACEMENT_ENOMEM) return STORAGE_ENOMEM;
    /* Infeasible, or arguments placement refuses (which validation keeps
     * from happening): the group waits; every replica decides the same. */
    if (prc != 0) return 0;
    for (size_t i = 0; i < nb; i++) {
        if (before[i] != PLACEMENT_UNPLACED) continue;
        Ray__Rpc__Bundle *b = g->bundles[i];
        pgNode *nd = &nodes->v[where[i]];
        b->node_id.data = arena_dup(&op->mem, nd->id, NODE_ID_LEN);
        if (b->node_id.data == NULL) return STORAGE_ENOMEM;
        b->node_id.len = NODE_ID_LEN;
        for (size_t k = 0; k < b->n_unit_resources; k++) {
            const char *name = b->unit_resources[k]->key;
            pgResource *r = nodeResource(nd, name, strlen(name));
            if (r == NULL) return STORAGE_ENOMEM;
            r->committed += toUnits(b->unit_resources[k]->value);
        }
        rc = commitBundle(op, (storage_slice){nd->id, NODE_ID_LEN}, b, 1);
        if (rc != 0) return rc;
    }
    *placed = true;
    return 0;
}

/* ---- the queue of groups waiting for resources ---------------------------- */

static int queueRemove(table_op *op, storage_slice id)
{
    storage_slice slot;
    bool found;
    int rc = storage_table_get(op->txn, INDEX_PG_QUEUE_SLOT, id, &slot,
                               &found);
    if (rc != 0 || !found) return rc;
    uint8_t key[QUEUE_KEY_LEN];
    if (slot.len != QUEUE_KEY_LEN) return STORAGE_ECORRUPT;
    memcpy(key, slot.data, QUEUE_KEY_LEN); /* the slice dies at the write */
    rc = storage_table_delete(op->txn, INDEX_PG_QUEUE,
                              (storage_slice){key, QUEUE_KEY_LEN}, NULL);
    if (rc == 0) rc = storage_table_delete(op->txn, INDEX_PG_QUEUE_SLOT, id,
                                           NULL);
    return rc;
}

static int queueAdd(table_op *op, storage_slice id, int cls)
{
    if (id.len != PG_ID_LEN) return STORAGE_ECORRUPT; /* it goes in the key */
    storage_slice slot;
    bool found;
    int rc = storage_table_get(op->txn, INDEX_PG_QUEUE_SLOT, id, &slot,
                               &found);
    if (rc != 0) return rc;
    if (found) {
        if (slot.len != QUEUE_KEY_LEN) return STORAGE_ECORRUPT;
        if (((const uint8_t *)slot.data)[0] <= cls) return 0; /* in place */
        if ((rc = queueRemove(op, id)) != 0) return rc;
    }
    uint64_t seq;
    if ((rc = storage_meta_get(op->txn, TABLE_META_PG_QUEUE_SEQ, &seq)) != 0 ||
        (rc = storage_meta_set(op->txn, TABLE_META_PG_QUEUE_SEQ, seq + 1)) != 0) {
        return rc;
    }
    seq++;
    uint8_t key[QUEUE_KEY_LEN];
    key[0] = (uint8_t)cls;
    for (int i = 0; i < 8; i++) key[1 + i] = (uint8_t)(seq >> (56 - 8 * i));
    memcpy(key + 9, id.data, PG_ID_LEN);
    storage_slice k = {key, QUEUE_KEY_LEN};
    rc = storage_table_put(op->txn, INDEX_PG_QUEUE, k, (storage_slice){"", 0},
                           NULL);
    if (rc == 0) rc = storage_table_put(op->txn, INDEX_PG_QUEUE_SLOT, id, k,
                                        NULL);
    return rc;
}

/* ---- records ------------------------------------------------------------ */

static bool hasRef(const table_index_set *s, unsigned index, storage_slice key)
{
    for (size_t i = 0; i < s->n; i++) {
        if (s->e[i].index == index && s->e[i].key.len == key.len &&
            memcmp(s->e[i].key.data, key.data, key.len) == 0) {
            return true;
        }
    }
    return false;
}

static int pgIndexes(table_op *op, const pgroup *g, table_index_set *s)
{
    if (g->state == STATE(REMOVED)) return 0;
    arena *m = &op->mem;
    storage_slice id = pgKey(g), none = {"", 0};
    int rc = 0;
    if (g->name[0] != '\0') {
        rc = table_index_add(m, s, INDEX_PG_NAME,
                             table_name_key(m, table_str(g->ray_namespace),
                                            table_str(g->name)),
                             id);
    }
    if (rc == 0 && g->creator_job_id.len > 0) {
        rc = table_index_add(m, s, INDEX_PG_BY_JOB,
                             table_ref_key(m, bin(g->creator_job_id), id),
                             none);
    }
    if (rc == 0 && g->creator_actor_id.len > 0 && !g->creator_actor_dead) {
        rc = table_index_add(m, s, INDEX_PG_BY_ACTOR,
                             table_ref_key(m, bin(g->creator_actor_id), id),
                             none);
    }
    for (size_t i = 0; rc == 0 && i < g->n_bundles; i++) {
        if (!isPlaced(g->bundles[i])) continue;
        storage_slice key = table_ref_key(m, bin(g->bundles[i]->node_id), id);
        if (key.data == NULL) return STORAGE_ENOMEM;
        if (!hasRef(s, INDEX_PG_BY_NODE, key)) {
            rc = table_index_add(m, s, INDEX_PG_BY_NODE, key, none);
        }
    }
    return rc;
}

static int pgSave(table_op *op, const table_index_set *was, pgroup *g)
{
    table_index_set now = {0};
    int rc = pgIndexes(op, g, &now);
    if (rc == 0) rc = table_index_update(op, was, &now);
    if (rc == 0) rc = table_save(op, TABLE_PG, pgKey(g), &g->base);
    return rc;
}

static int loadGroup(table_op *op, storage_slice id, pgroup **out)
{
    return table_load(op->txn, &op->mem, TABLE_PG, id,
                      &ray__rpc__placement_group_table_data__descriptor,
                      (void **)out);
}

static void setSchedulingState(pgroup *g, int state)
{
    if (g->stats != NULL) {
        g->stats->scheduling_state =
            (Ray__Rpc__PlacementGroupStats__SchedulingState)state;
    }
}

static void markCreated(table_op *op, pgroup *g)
{
    g->state = STATE(CREATED);
    g->placement_group_final_bundle_placement_timestamp_ms =
        (int64_t)op->now_ms;
    setSchedulingState(g, SCHED(FINISHED));
}

/* REMOVED: resources, name and queue place freed. */
static int pgRemove(table_op *op, pgroup *g)
{
    table_index_set was = {0};
    int rc = pgIndexes(op, g, &was);
    for (size_t i = 0; rc == 0 && i < g->n_bundles; i++) {
        Ray__Rpc__Bundle *b = g->bundles[i];
        if (!isPlaced(b)) continue;
        rc = commitBundle(op, bin(b->node_id), b, -1);
        b->node_id.data = NULL;
        b->node_id.len = 0;
    }
    if (rc != 0) return rc;
    g->state = STATE(REMOVED);
    setSchedulingState(g, SCHED(REMOVED));
    if ((rc = queueRemove(op, pgKey(g))) != 0 ||
        (rc = pgSave(op, &was, g)) != 0 ||
        (rc = table_dead_add(op, TABLE_PG, pgKey(g))) != 0) {
        return rc;
    }
    table_nodes_changed(op); /* committed resources changed */
    op->retry_pending = true;
    return 0;
}

static bool lifetimeDone(const pgroup *g)
{
    return !g->is_detached && g->creator_job_dead && g->creator_actor_dead;
}

/* ---- what other tables do to groups -------------------------------------- */

int pg_on_node_dead(table_op *op, storage_slice node_id)
{
    storage_slice *ids;
    size_t n;
    int rc = table_collect_refs(op->txn, &op->mem, INDEX_PG_BY_NODE, node_id,
                                &ids, &n);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        table_scope s = table_scope_enter(op);
        pgroup *g;
        rc = loadGroup(op, ids[i], &g);
        if (rc == 0 && g != NULL && g->state != STATE(REMOVED)) {
            table_index_set was = {0};
            rc = pgIndexes(op, g, &was);
            for (size_t k = 0; k < g->n_bundles; k++) {
                ProtobufCBinaryData *nid = &g->bundles[k]->node_id;
                if (nid->len == node_id.len &&
                    memcmp(nid->data, node_id.data, node_id.len) == 0) {
                    nid->data = NULL;
                    nid->len = 0;
                }
            }
            g->state = STATE(RESCHEDULING);
            setSchedulingState(g, SCHED(QUEUED));
            /* Watchers see the group lose the node, then (if it fits
             * elsewhere) come back, as Ray publishes both. */
            if (rc == 0) rc = pgSave(op, &was, g);
            table_index_set unplaced = {0};
            if (rc == 0) rc = pgIndexes(op, g, &unplaced);
            bool placed = false;
            if (rc == 0) rc = pgPlace(op, g, &placed);
            if (rc == 0 && placed) {
                markCreated(op, g);
                rc = queueRemove(op, pgKey(g));
                if (rc == 0) rc = pgSave(op, &unplaced, g);
            } else if (rc == 0) {
                rc = queueAdd(op, pgKey(g), QUEUE_RESCHEDULING);
            }
        }
        table_scope_leave(op, s);
    }
    return rc;
}

/* A creator died: set the flag; remove the group when its lifetime ends. */
static int creatorDied(table_op *op, unsigned index, storage_slice creator,
                       bool job)
{
    storage_slice *ids;
    size_t n;
    int rc = table_collect_refs(op->txn, &op->mem, index, creator, &ids, &n);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        table_scope s = table_scope_enter(op);
        pgroup *g;
        rc = loadGroup(op, ids[i], &g);
        if (rc == 0 && g != NULL && g->state != STATE(REMOVED)) {
            table_index_set was = {0};
            rc = pgIndexes(op, g, &was);
            if (job) g->creator_job_dead = 1;
            else g->creator_actor_dead = 1;
            if (rc == 0) {
                rc = lifetimeDone(g) ? pgRemove(op, g) : pgSave(op, &was, g);
            }
        }
        table_scope_leave(op, s);
    }
    return rc;
}

int pg_on_job_finished(table_op *op, storage_slice job_id)
{
    return creatorDied(op, INDEX_PG_BY_JOB, job_id, true);
}

int pg_on_actor_dead(table_op *op, storage_slice actor_id)
{
    return creatorDied(op, INDEX_PG_BY_ACTOR, actor_id, false);
}

int pg_retry_pending(table_op *op)
{
    storage_slice *keys;
    size_t n;
    int rc = table_collect_keys(op->txn, &op->mem, INDEX_PG_QUEUE, &keys, &n);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (keys[i].len != QUEUE_KEY_LEN) return STORAGE_ECORRUPT;
        storage_slice id = {(const uint8_t *)keys[i].data + 9, PG_ID_LEN};
        table_scope s = table_scope_enter(op);
        pgroup *g;
        rc = loadGroup(op, id, &g);
        if (rc == 0 && (g == NULL || (g->state != STATE(PENDING) &&
                                      g->state != STATE(RESCHEDULING)))) {
            rc = queueRemove(op, id); /* stale entry */
        } else if (rc == 0) {
            table_index_set was = {0};
            bool placed = false;
            rc = pgIndexes(op, g, &was);
            if (rc == 0) rc = pgPlace(op, g, &placed);
            if (rc == 0 && placed) {
                markCreated(op, g);
                rc = queueRemove(op, id);
                if (rc == 0) rc = pgSave(op, &was, g);
            }
        }
        table_scope_leave(op, s);
    }
    return rc;
}

/* ---- PG.CREATE --------------------------------------------------------- */

static pgroup *createArg(arena *mem, const resp_arg *arg, resp_buf *out)
{
    pgroup *g = table_decode_arg(
        mem, &ray__rpc__placement_group_table_data__descriptor, arg);
    if (g == NULL) {
        resp_add_error(out, "ERR invalid PlacementGroupTableData record");
        return NULL;
    }
    if (g->placement_group_id.len != PG_ID_LEN ||
        !table_opt_id_ok(g->creator_job_id, JOB_ID_LEN) ||
        !table_opt_id_ok(g->creator_actor_id, ACTOR_ID_LEN)) {
        resp_add_errorf(out, "ERR invalid placement group, job or actor id: "
                        "expected %d, %d and %d bytes", PG_ID_LEN, JOB_ID_LEN,
                        ACTOR_ID_LEN);
        return NULL;
    }
    if ((unsigned)g->strategy > PLACEMENT_STRICT_SPREAD) {
        resp_add_error(out, "ERR unknown placement strategy");
        return NULL;
    }
    if (g->n_bundles == 0 || g->n_bundles > PG_MAX_BUNDLES) {
        resp_add_errorf(out, "ERR a placement group needs 1 to %d bundles",
                        PG_MAX_BUNDLES);
        return NULL;
    }
    if (strlen(g->ray_namespace) + strlen(g->name) > TABLE_NAME_MAX) {
        resp_add_errorf(out, "ERR placement group name and namespace are "
                        "longer than %d bytes together", TABLE_NAME_MAX);
        return NULL;
    }
    for (size_t i = 0; i < g->n_bundles; i++) {
        const Ray__Rpc__Bundle *b = g->bundles[i];
        bool some = false;
        for (size_t k = 0; k < b->n_unit_resources; k++) {
            double v = b->unit_resources[k]->value;
            if (!(v >= 0 && v <= RESOURCE_MAX)) { /* also NaN */
                resp_add_errorf(out, "ERR bundle %zu: invalid amount of "
                                "resource '%s'", i,
                                b->unit_resources[k]->key);
                return NULL;
            }
            some = some || toUnits(v) > 0;
        }
        if (!some) {
            resp_add_errorf(out, "ERR bundle %zu requests no resources", i);
            return NULL;
        }
    }
    return g;
}

static int createCheck(size_t argc, const resp_arg *argv, resp_buf *err)
{
    arena mem;
    arena_init(&mem);
    int rc = createArg(&mem, &argv[1], err) != NULL ? 0 : -1;
    arena_free(&mem);
    return rc;
}

static int pgCreate(table_op *op, size_t argc, const resp_arg *argv,
                    resp_buf *reply)
{
    pgroup *g = createArg(&op->mem, &argv[1], reply);
    if (g == NULL) return 0;
    pgroup *cur;
    int rc = loadGroup(op, pgKey(g), &cur);
    if (rc != 0) return rc;
    if (cur != NULL) {
        resp_add_status(reply, "OK"); /* a retried create is a no-op */
        return 0;
    }
    if (g->name[0] != '\0') {
        storage_slice key = table_name_key(&op->mem,
                                           table_str(g->ray_namespace),
                                           table_str(g->name)),
                      v;
        bool taken;
        if (key.data == NULL) return STORAGE_ENOMEM;
        rc = storage_table_get(op->txn, INDEX_PG_NAME, key, &v, &taken);
        if (rc != 0) return rc;
        if (taken) {
            resp_add_errorf(reply, "ERR placement group with name '%s' "
                            "already exists in namespace '%s'", g->name,
                            g->ray_namespace);
            return 0;
        }
    }
    /* Lifetime: a creator that is already dead counts from the start. */
    g->creator_actor_dead = g->creator_actor_id.len == 0;
    if (!g->creator_actor_dead) {
        Ray__Rpc__ActorTableData *a;
        rc = table_load(op->txn, &op->mem, TABLE_ACTOR,
                        bin(g->creator_actor_id),
                        &ray__rpc__actor_table_data__descriptor, (void **)&a);
        if (rc != 0) return rc;
        g->creator_actor_dead =
            a != NULL && a->state == RAY__RPC__ACTOR_TABLE_DATA__ACTOR_STATE__DEAD;
    }
    g->creator_job_dead = 0;
    if (g->creator_job_id.len > 0) {
        Ray__Rpc__JobTableData *j;
        rc = table_load(op->txn, &op->mem, TABLE_JOB, bin(g->creator_job_id),
                        &ray__rpc__job_table_data__descriptor, (void **)&j);
        if (rc != 0) return rc;
        g->creator_job_dead = j != NULL && j->is_dead;
    }
    if (lifetimeDone(g)) {
        resp_add_error(reply, "ERR the placement group's creator job and "
                              "actor are dead");
        return 0;
    }
    for (size_t i = 0; i < g->n_bundles; i++) {
        Ray__Rpc__Bundle *b = g->bundles[i];
        if (b->bundle_id == NULL) {
            b->bundle_id = arena_alloc(&op->mem, sizeof *b->bundle_id);
            if (b->bundle_id == NULL) return STORAGE_ENOMEM;
            ray__rpc__bundle_identifier__init(b->bundle_id);
        }
        b->bundle_id->placement_group_id = g->placement_group_id;
        b->bundle_id->bundle_index = (int32_t)i;
        b->node_id.data = NULL; /* gcsd decides placement */
        b->node_id.len = 0;
    }
    if (g->stats == NULL) {
        g->stats = arena_alloc(&op->mem, sizeof *g->stats);
        if (g->stats == NULL) return STORAGE_ENOMEM;
        ray__rpc__placement_group_stats__init(g->stats);
    }
    g->stats->creation_request_received_ns = (int64_t)op->now_ms * 1000000;
    g->placement_group_creation_timestamp_ms = (int64_t)op->now_ms;
    g->placement_group_final_bundle_placement_timestamp_ms = 0;
    g->state = STATE(PENDING);
    setSchedulingState(g, SCHED(QUEUED));
    bool placed;
    if ((rc = pgPlace(op, g, &placed)) != 0) return rc;
    if (placed) markCreated(op, g);
    else if ((rc = queueAdd(op, pgKey(g), QUEUE_PENDING)) != 0) return rc;
    if ((rc = pgSave(op, NULL, g)) != 0) return rc;
    resp_add_status(reply, "OK");
    return 0;
}

static int createApply(apply_ctx *a, size_t argc, const resp_arg *argv,
                       resp_buf *reply)
{
    return table_run(a, argc, argv, reply, pgCreate);
}

/* ---- PG.REMOVE ---------------------------------------------------------- */

static int removeCheck(size_t argc, const resp_arg *argv, resp_buf *err)
{
    return table_id_arg_or_reply(&argv[1], PG_ID_LEN, "placement group", err)
               ? 0
               : -1;
}

static int pgRemoveCmd(table_op *op, size_t argc, const resp_arg *argv,
                       resp_buf *reply)
{
    if (removeCheck(argc, argv, reply) != 0) return 0;
    pgroup *g;
    int rc = loadGroup(op, arg_slice(&argv[1]), &g);
    if (rc != 0) return rc;
    if (g == NULL) {
        resp_add_error(reply, "ERR no such placement group");
        return 0;
    }
    if (g->state == STATE(REMOVED)) {
        resp_add_error(reply, "ERR placement group already removed");
        return 0;
    }
    if ((rc = pgRemove(op, g)) != 0) return rc;
    resp_add_status(reply, "OK");
    return 0;
}

static int removeApply(apply_ctx *a, size_t argc, const resp_arg *argv,
                       resp_buf *reply)
{
    return table_run(a, argc, argv, reply, pgRemoveCmd);
}

/* ---- PG.WAIT (blocking, answered on this member) ------------------------ */

/* What group @id's state, as this member has applied it, tells a PG.WAIT. */
enum { WAIT_CREATED, WAIT_REMOVED, WAIT_PENDING, WAIT_MISSING, WAIT_ERROR };

static int waitState(server *srv, storage_slice id, int *err)
{
    storage_txn *t = fsm_read_txn(srv->fsm);
    if (t == NULL) {
        *err = STORAGE_EIO;
        return WAIT_ERROR;
    }
    arena mem;
    arena_init(&mem);
    pgroup *g;
    int rc = table_load(t, &mem, TABLE_PG, id,
                        &ray__rpc__placement_group_table_data__descriptor,
                        (void **)&g);
    int st = rc != 0                        ? WAIT_ERROR
             : g == NULL                    ? WAIT_MISSING
             : g->state == STATE(CREATED)   ? WAIT_CREATED
             : g->state == STATE(REMOVED)   ? WAIT_REMOVED
                                            : WAIT_PENDING;
    *err = rc;
    arena_free(&mem);
    return st;
}

/* Answer a PG.WAIT whose group is not pending (@st not WAIT_PENDING). */
static void waitAnswer(resp_buf *out, int st, int err)
{
    switch (st) {
        case WAIT_CREATED: resp_add_status(out, "OK"); break;
        case WAIT_REMOVED: resp_add_error(out, PG_WAIT_ERR_REMOVED); break;
        case WAIT_MISSING:
            resp_add_error(out, "ERR no such placement group");
            break;
        default: reply_storage_error(out, err);
    }
}

/* Park @slot in the registry; on failure answer it instead. */
static void waitPark(server *srv, reply_slot *slot, const void *id,
                     size_t len, uint64_t timeout_ms)
{
    if (srv->pg_waits == NULL ||
        pg_wait_add(srv->pg_waits, slot, id, len, timeout_ms) != 0) {
        resp_add_error(&slot->reply, "ERR out of memory");
        client_slot_done(slot);
    }
}

/* A PG.WAIT that found no group on a leader that may not have applied all
 * its predecessor committed (a leader elected a moment ago applies those
 * entries only once an entry of its own term commits): looked at again
 * after a barrier, before "no such placement group" is final. */
typedef struct waitRecheck {
    server *srv;
    reply_slot *slot;
    uint64_t timeout_ms; /* 0: no limit */
    int64_t started_ms;  /* server_clock_ms */
    uint8_t id[PG_ID_LEN];
} waitRecheck;

static void onWaitBarrier(void *arg, int status)
{
    waitRecheck *w = arg;
    server *srv = w->srv;
    reply_slot *slot = w->slot;
    int err = 0;
    int st = status != 0 ? WAIT_ERROR
                         : waitState(srv, (storage_slice){w->id, PG_ID_LEN},
                                     &err);
    int64_t spent = server_clock_ms(srv) - w->started_ms;
    if (spent < 0) spent = 0;
    if (status != 0) {
        command_reply_raft_error(&slot->reply, status);
    } else if (st != WAIT_PENDING) {
        waitAnswer(&slot->reply, st, err);
    } else if (w->timeout_ms > 0 && (uint64_t)spent >= w->timeout_ms) {
        resp_add_null(&slot->reply); /* its time ran out meanwhile */
    } else {
        uint64_t left = w->timeout_ms > 0 ? w->timeout_ms - (uint64_t)spent
                                          : 0;
        waitPark(srv, slot, w->id, PG_ID_LEN, left);
        free(w);
        return;
    }
    client_slot_done(slot);
    free(w);
}

/* PG.WAIT id timeout-ms: +OK once the group is CREATED (at once if it is),
 * an error if it is or gets REMOVED, nil after timeout-ms (0: no limit). */
static void waitExec(client *c, size_t argc, const resp_arg *argv)
{
    server *srv = c->srv;
    long long timeout;
    if (!parse_ll(argv[2].ptr, argv[2].len, &timeout) || timeout < 0) {
        resp_add_error(client_reply(c), "ERR timeout is not a non-negative "
                                        "integer");
        return;
    }
    if (!table_id_arg_or_reply(&argv[1], PG_ID_LEN, "placement group",
                               client_reply(c))) {
        return;
    }
    int err;
    int st = waitState(srv, arg_slice(&argv[1]), &err);
    /* A missing group is final when nothing of this client's is still on
     * its way to the log that could create it and this member has applied
     * all there is. */
    if ((st != WAIT_MISSING && st != WAIT_PENDING) ||
        (st == WAIT_MISSING && c->slots_head == NULL &&
         rglue_can_read_now(srv->raft))) {
        waitAnswer(client_reply(c), st, err);
        return;
    }
    reply_slot *slot = client_slot_new(c);
    slot->blocking = true;
    if (st == WAIT_PENDING || c->slots_head != slot) {
        /* Pending, or one of this client's writes ahead of it may create
         * it: wait for the change. */
        waitPark(srv, slot, argv[1].ptr, argv[1].len, (uint64_t)timeout);
        return;
    }
    waitRecheck *w = malloc(sizeof *w);
    int rc = w == NULL ? RGLUE_ENOMEM : 0;
    if (w != NULL) {
        *w = (waitRecheck){.srv = srv,
                           .slot = slot,
                           .timeout_ms = (uint64_t)timeout,
                           .started_ms = server_clock_ms(srv)};
        memcpy(w->id, argv[1].ptr, PG_ID_LEN);
        rc = rglue_read(srv->raft, onWaitBarrier, w);
    }
    if (rc != 0) {
        free(w);
        command_reply_raft_error(&slot->reply, rc);
        client_slot_done(slot);
    }
}

/* ---- reads ---------------------------------------------------------------- */

static void getRead(storage_txn *t, size_t argc, const resp_arg *argv,
                    resp_buf *out)
{
    table_reply_record(t, TABLE_PG, arg_slice(&argv[1]), out);
}

static void getNamedRead(storage_txn *t, size_t argc, const resp_arg *argv,
                         resp_buf *out)
{
    table_reply_named(t, INDEX_PG_NAME, TABLE_PG, &argv[1], &argv[2], out);
}

static void listRead(storage_txn *t, size_t argc, const resp_arg *argv,
                     resp_buf *out)
{
    table_reply_list(t, TABLE_PG, argc, argv, out);
}

const command pg_commands[] = {
    {"pg.create", 2, CMD_WRITE | CMD_DENYOOM, NULL, createCheck, createApply,
     0, 0, 0, "placement_group",
     "Creates a placement group from a serialized PlacementGroupTableData "
     "record and places its bundles."},
    {"pg.remove", 2, CMD_WRITE, NULL, removeCheck, removeApply, 0, 0, 0,
     "placement_group",
     "Removes a placement group and frees its resources."},
    {"pg.get", 2, CMD_READ | CMD_FAST, NULL, NULL, NULL, 0, 0, 0,
     "placement_group", "Returns a placement group's record.",
     .read = getRead},
    {"pg.getnamed", 3, CMD_READ | CMD_FAST, NULL, NULL, NULL, 0, 0, 0,
     "placement_group",
     "Returns the placement group with a name in a namespace.",
     .read = getNamedRead},
    {"pg.list", -1, CMD_READ, NULL, NULL, NULL, 0, 0, 0, "placement_group",
     "Lists placement groups a page at a time: [CURSOR c] [COUNT n].",
     .read = listRead},
    {"pg.wait", 3, CMD_LEADER, waitExec, NULL, NULL, 0, 0, 0,
     "placement_group",
     "Blocks until a placement group is CREATED, or timeout-ms pass (nil).",
     NULL, 2},
};
const size_t pg_commands_count = sizeof pg_commands / sizeof pg_commands[0];
