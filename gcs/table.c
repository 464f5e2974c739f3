#include "table.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "command.h"
#include "ray.pb-c.h"
#include "t_actor.h"
#include "t_pg.h"

static const char *eventTable(unsigned table);

/* ---- dead rows ----------------------------------------------------------- */

static const struct deadTable {
    unsigned table;
    const char *count, *cap;
    uint64_t def;
} deadTables[3] = {
    {TABLE_ACTOR, TABLE_META_DEAD_ACTORS, TABLE_META_DEAD_CAP_ACTORS,
     TABLE_DEAD_ACTORS_DEFAULT},
    {TABLE_NODE, TABLE_META_DEAD_NODES, TABLE_META_DEAD_CAP_NODES,
     TABLE_DEAD_NODES_DEFAULT},
    {TABLE_PG, TABLE_META_DEAD_PGS, TABLE_META_DEAD_CAP_PGS,
     TABLE_DEAD_PGS_DEFAULT},
};

static int deadSlot(unsigned table)
{
    for (int i = 0; i < 3; i++) {
        if (deadTables[i].table == table) return i;
    }
    return -1;
}

int table_dead_info_get(storage_txn *t, unsigned table, table_dead_info *out)
{
    int i = deadSlot(table);
    if (i < 0) return STORAGE_EINVAL;
    int rc = storage_meta_get(t, deadTables[i].count, &out->kept);
    if (rc == 0) rc = storage_meta_get(t, deadTables[i].cap, &out->cap);
    if (rc == 0 && out->cap == 0) out->cap = deadTables[i].def;
    return rc;
}

int table_dead_add(table_op *op, unsigned table, storage_slice id)
{
    int i = deadSlot(table);
    if (i < 0) return STORAGE_EINVAL;
    uint64_t seq, kept;
    int rc = storage_meta_get(op->txn, TABLE_META_DEAD_SEQ, &seq);
    if (rc == 0) rc = storage_meta_get(op->txn, deadTables[i].count, &kept);
    if (rc == 0) rc = storage_meta_set(op->txn, TABLE_META_DEAD_SEQ, seq + 1);
    if (rc == 0) {
        rc = storage_meta_set(op->txn, deadTables[i].count, kept + 1);
    }
    if (rc != 0) return rc;
    uint8_t key[9];
    key[0] = (uint8_t)table;
    for (int b = 0; b < 8; b++) key[1 + b] = (uint8_t)(seq >> (56 - 8 * b));
    rc = storage_table_put(op->txn, INDEX_DEAD, (storage_slice){key, 9}, id,
                           NULL);
    if (rc == 0) op->evict[i] += TABLE_DEAD_EVICT;
    return rc;
}

int table_delete_record(table_op *op, unsigned table, storage_slice key)
{
    bool deleted;
    int rc = storage_table_delete(op->txn, table, key, &deleted);
    const char *name = eventTable(table);
    if (rc == 0 && deleted && name != NULL) {
        rc = apply_emit(op->a, name, key, FSM_EVENT_DELETE,
                        (storage_slice){"", 0});
    }
    return rc;
}

typedef struct deadFirst {
    uint8_t key[9];
    uint8_t id[64];
    size_t id_len;
    bool found;
} deadFirst;

static int firstDead(void *arg, storage_slice key, storage_slice value)
{
    deadFirst *f = arg;
    if (key.len != sizeof f->key || value.len > sizeof f->id) {
        return STORAGE_ECORRUPT;
    }
    memcpy(f->key, key.data, key.len);
    if (value.len > 0) memcpy(f->id, value.data, value.len);
    f->id_len = value.len;
    f->found = true;
    return 1; /* the oldest is enough */
}

/* Delete a node's or group's record if it is still DEAD / REMOVED (it
 * always is: both are final; the check keeps a damaged FIFO from deleting
 * a live row). Neither has index entries then. */
static int forgetRow(table_op *op, unsigned table, storage_slice id)
{
    const ProtobufCMessageDescriptor *d =
        table == TABLE_NODE ? &ray__rpc__gcs_node_info__descriptor
                            : &ray__rpc__placement_group_table_data__descriptor;
    void *rec;
    int rc = table_load(op->txn, &op->mem, table, id, d, &rec);
    if (rc != 0 || rec == NULL) return rc;
    bool dead = table == TABLE_NODE
                    ? ((Ray__Rpc__GcsNodeInfo *)rec)->state ==
                          RAY__RPC__GCS_NODE_INFO__GCS_NODE_STATE__DEAD
                    : ((Ray__Rpc__PlacementGroupTableData *)rec)->state ==
                          RAY__RPC__PLACEMENT_GROUP_TABLE_DATA__PLACEMENT_GROUP_STATE__REMOVED;
    return dead ? table_delete_record(op, table, id) : 0;
}

/* Evict the oldest dead rows of each table past its cap, at most op->evict
 * of them. */
static int deadEvict(table_op *op)
{
    for (int i = 0; i < 3; i++) {
        if (op->evict[i] == 0) continue;
        table_dead_info di;
        int rc = table_dead_info_get(op->txn, deadTables[i].table, &di);
        if (rc != 0) return rc;
        uint64_t n = 0;
        bool repaired = false;
        while (rc == 0 && di.kept > di.cap && n < op->evict[i]) {
            deadFirst f = {.found = false};
            uint8_t prefix = (uint8_t)deadTables[i].table;
            rc = storage_table_scan(op->txn, INDEX_DEAD,
                                    (storage_slice){&prefix, 1},
                                    (storage_slice){"", 0}, firstDead, &f);
            if (rc == 1) rc = 0;
            if (rc != 0) return rc;
            if (!f.found) {
                di.kept = 0; /* the count ran ahead of the FIFO: repair */
                repaired = true;
                break;
            }
            rc = storage_table_delete(op->txn, INDEX_DEAD,
                                      (storage_slice){f.key, sizeof f.key},
                                      NULL);
            if (rc != 0) return rc;
            table_scope s = table_scope_enter(op);
            storage_slice id = {f.id, f.id_len};
            rc = deadTables[i].table == TABLE_ACTOR
                     ? actor_forget(op, id)
                     : forgetRow(op, deadTables[i].table, id);
            table_scope_leave(op, s);
            di.kept--;
            n++;
        }
        op->evict[i] = 0;
        if (rc == 0 && (n > 0 || repaired)) {
            rc = storage_meta_set(op->txn, deadTables[i].count, di.kept);
        }
        if (rc != 0) return rc;
    }
    return 0;
}

/* GCS.TABLES.CAPS actors nodes pgs (0: the default) */
static int capsCheck(size_t argc, const resp_arg *argv, resp_buf *err)
{
    for (size_t i = 1; i < argc; i++) {
        uint64_t v;
        if (!parse_u64(argv[i].ptr, argv[i].len, &v)) {
            resp_add_error(err, ERR_NOT_INTEGER);
            return -1;
        }
    }
    return 0;
}

static int capsBody(table_op *op, size_t argc, const resp_arg *argv,
                    resp_buf *reply)
{
    if (capsCheck(argc, argv, reply) != 0) return 0;
    for (int i = 0; i < 3; i++) {
        uint64_t v = 0;
        parse_u64(argv[1 + i].ptr, argv[1 + i].len, &v);
        int rc = storage_meta_set(op->txn, deadTables[i].cap, v);
        if (rc != 0) return rc;
        op->evict[i] = TABLE_DEAD_CAPS_BATCH;
    }
    resp_add_status(reply, "OK");
    return 0;
}

static int capsApply(apply_ctx *a, size_t argc, const resp_arg *argv,
                     resp_buf *reply)
{
    return table_run(a, argc, argv, reply, capsBody);
}

const command table_commands[] = {
    {"gcs.tables.caps", 4, CMD_WRITE | CMD_ADMIN, NULL, capsCheck, capsApply,
     0, 0, 0, "server",
     "Sets how many dead actors, dead nodes and removed placement groups "
     "are kept (0: the default)."},
};
const size_t table_commands_count =
    sizeof table_commands / sizeof table_commands[0];

/* ---- one write command's work ---------------------------------------- */

void table_op_init(table_op *op, apply_ctx *a)
{
    memset(op, 0, sizeof *op);
    op->a = a;
    op->txn = a->txn;
    op->now_ms = a->time_ms > 0 ? (uint64_t)a->time_ms : 0;
    arena_init(&op->mem);
}

int table_op_finish(table_op *op)
{
    /* Kills first: an actor's death may free placement-group resources,
     * and placing groups never kills anything. */
    for (;;) {
        if (op->n_kills > 0) {
            table_kill k = op->kills[--op->n_kills];
            table_scope s = table_scope_enter(op);
            int rc = actor_run_kill(op, &k);
            table_scope_leave(op, s);
            if (rc != 0) return rc;
        } else if (op->retry_pending) {
            op->retry_pending = false;
            int rc = pg_retry_pending(op);
            if (rc != 0) return rc;
        } else {
            /* Last: an eviction triggers nothing, and rows killed by this
             * very command are no longer referenced once it is done. */
            return deadEvict(op);
        }
    }
}

void table_op_free(table_op *op)
{
    table_nodes_changed(op);
    free(op->kills);
    op->kills = NULL;
    op->n_kills = op->cap_kills = 0;
    arena_free(&op->mem);
}

int table_run(apply_ctx *a, size_t argc, const resp_arg *argv,
              resp_buf *reply, table_write_fn fn)
{
    table_op op;
    table_op_init(&op, a);
    int rc = fn(&op, argc, argv, reply);
    if (rc == 0) rc = table_op_finish(&op);
    table_op_free(&op);
    return rc;
}

table_scope table_scope_enter(table_op *op)
{
    table_scope s = {arena_save(&op->mem)};
    return s;
}

void table_scope_leave(table_op *op, table_scope s)
{
    arena_restore(&op->mem, s.mark);
}

void table_nodes_changed(table_op *op)
{
    pg_nodes_free(op->nodes);
    op->nodes = NULL;
}

int table_queue_kill(table_op *op, storage_slice actor_id, int reason,
                     const char *message)
{
    if (actor_id.len != ACTOR_ID_LEN) return 0; /* not an actor id */
    if (op->n_kills == op->cap_kills) {
        size_t cap = op->cap_kills ? 2 * op->cap_kills : 16;
        table_kill *k = realloc(op->kills, cap * sizeof *k);
        if (k == NULL) return STORAGE_ENOMEM;
        op->kills = k;
        op->cap_kills = cap;
    }
    table_kill *k = &op->kills[op->n_kills++];
    memcpy(k->actor_id, actor_id.data, ACTOR_ID_LEN);
    k->reason = reason;
    k->message = message;
    return 0;
}

int table_decode_error(const arena *mem)
{
    return mem->failed ? STORAGE_ENOMEM : STORAGE_ECORRUPT;
}

/* ---- records ---------------------------------------------------------- */

/* A record table's row is keyed by its id (field 1 of each of its
 * messages); handlers build keys from the loaded record, so a row whose id
 * is not its key (possible only in a damaged or crafted snapshot) must stop
 * here rather than send them off with an id of any length. */
static bool idMatchesKey(unsigned table, const ProtobufCMessage *m,
                         storage_slice key)
{
    const ProtobufCBinaryData *id;
    switch (table) {
        case TABLE_NODE:
            id = &((const Ray__Rpc__GcsNodeInfo *)m)->node_id;
            break;
        case TABLE_ACTOR:
            id = &((const Ray__Rpc__ActorTableData *)m)->actor_id;
            break;
        case TABLE_JOB:
            id = &((const Ray__Rpc__JobTableData *)m)->job_id;
            break;
        case TABLE_PG:
            id = &((const Ray__Rpc__PlacementGroupTableData *)m)
                      ->placement_group_id;
            break;
        default: return true;
    }
    return id->len == key.len &&
           (key.len == 0 || memcmp(id->data, key.data, key.len) == 0);
}

int table_load(storage_txn *t, arena *mem, unsigned table, storage_slice key,
               const ProtobufCMessageDescriptor *desc, void **out)
{
    *out = NULL;
    storage_slice v;
    bool found;
    int rc = storage_table_get(t, table, key, &v, &found);
    if (rc != 0 || !found) return rc;
    /* protobuf-c points bytes fields into its own copies, so the record
     * outlives the LMDB slice. */
    ProtobufCMessage *m = protobuf_c_message_unpack(desc, &mem->pb, v.len,
                                                    v.data);
    if (m == NULL) return table_decode_error(mem);
    if (!idMatchesKey(table, m, key)) return STORAGE_ECORRUPT;
    *out = m;
    return 0;
}

static const char *eventTable(unsigned table)
{
    switch (table) {
        case TABLE_NODE: return TABLE_NAME_NODE;
        case TABLE_ACTOR: return TABLE_NAME_ACTOR;
        case TABLE_JOB: return TABLE_NAME_JOB;
        case TABLE_PG: return TABLE_NAME_PG;
        default: return NULL;
    }
}

/* @msg encoded into @mem; *@len its length. NULL when memory is short. */
static uint8_t *packIn(arena *mem, const ProtobufCMessage *msg, size_t *len)
{
    size_t n = protobuf_c_message_get_packed_size(msg);
    uint8_t *buf = arena_alloc(mem, n > 0 ? n : 1);
    if (buf != NULL) protobuf_c_message_pack(msg, buf);
    *len = n;
    return buf;
}

int table_save(table_op *op, unsigned table, storage_slice key,
               const ProtobufCMessage *msg)
{
    size_t n;
    uint8_t *buf = packIn(&op->mem, msg, &n);
    if (buf == NULL) return STORAGE_ENOMEM;
    storage_slice v = {buf, n};
    int rc = storage_table_put(op->txn, table, key, v, NULL);
    const char *name = eventTable(table);
    if (rc == 0 && name != NULL) {
        rc = apply_emit(op->a, name, key, FSM_EVENT_PUT, v);
    }
    return rc;
}

int table_flush(apply_ctx *a)
{
    static const unsigned records[] = {TABLE_NODE, TABLE_ACTOR, TABLE_JOB,
                                       TABLE_PG};
    arena mem;
    arena_init(&mem);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < sizeof records / sizeof records[0]; i++) {
        storage_slice *keys;
        size_t n;
        arena_mark m = arena_save(&mem);
        rc = table_collect_keys(a->txn, &mem, records[i], &keys, &n);
        for (size_t k = 0; rc == 0 && k < n; k++) {
            rc = apply_emit(a, eventTable(records[i]), keys[k],
                            FSM_EVENT_DELETE, (storage_slice){"", 0});
        }
        arena_restore(&mem, m);
    }
    arena_free(&mem);
    /* The dead FIFOs go with the records (their sequence and caps stay). */
    for (size_t i = 0; rc == 0 && i < 3; i++) {
        rc = storage_meta_set(a->txn, deadTables[i].count, 0);
    }
    return rc != 0 ? rc
                   : storage_table_flush(a->txn, 1, FSM_CHANGELOG_TABLE - 1);
}

void *table_decode_arg(arena *mem, const ProtobufCMessageDescriptor *desc,
                       const resp_arg *arg)
{
    ProtobufCMessage *m = protobuf_c_message_unpack(desc, &mem->pb, arg->len,
                                                    (const uint8_t *)arg->ptr);
    if (m == NULL) return NULL;
    /* What is stored must load again, and protobuf-c accepts some input it
     * cannot read back once it has encoded it itself (field number 0 written
     * with a redundant varint byte, kept as an unknown field, comes out as a
     * plain 0): a record must survive the round trip to be taken. */
    arena_mark mark = arena_save(mem);
    size_t n;
    uint8_t *buf = packIn(mem, m, &n);
    bool ok = buf != NULL &&
              protobuf_c_message_unpack(desc, &mem->pb, n, buf) != NULL;
    arena_restore(mem, mark);
    return ok ? m : NULL;
}

/* ---- secondary indexes ------------------------------------------------ */

int table_index_add(arena *mem, table_index_set *s, unsigned index,
                    storage_slice key, storage_slice value)
{
    if (key.data == NULL && key.len > 0) return STORAGE_ENOMEM;
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 8;
        table_index_entry *e = arena_alloc(mem, cap * sizeof *e);
        if (e == NULL) return STORAGE_ENOMEM;
        if (s->n > 0) memcpy(e, s->e, s->n * sizeof *e);
        s->e = e;
        s->cap = cap;
    }
    s->e[s->n++] = (table_index_entry){index, key, value};
    return 0;
}

static bool sliceEq(storage_slice a, storage_slice b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.data, b.data, a.len) == 0);
}

static const table_index_entry *findEntry(const table_index_set *s,
                                          const table_index_entry *e)
{
    for (size_t i = 0; s != NULL && i < s->n; i++) {
        if (s->e[i].index == e->index && sliceEq(s->e[i].key, e->key)) {
            return &s->e[i];
        }
    }
    return NULL;
}

int table_index_update(table_op *op, const table_index_set *old,
                       const table_index_set *now)
{
    for (size_t i = 0; old != NULL && i < old->n; i++) {
        if (findEntry(now, &old->e[i]) != NULL) continue;
        int rc = storage_table_delete(op->txn, old->e[i].index, old->e[i].key,
                                      NULL);
        if (rc != 0) return rc;
    }
    for (size_t i = 0; i < now->n; i++) {
        const table_index_entry *was = findEntry(old, &now->e[i]);
        if (was != NULL && sliceEq(was->value, now->e[i].value)) continue;
        int rc = storage_table_put(op->txn, now->e[i].index, now->e[i].key,
                                   now->e[i].value, NULL);
        if (rc != 0) return rc;
    }
    return 0;
}

storage_slice table_ref_key(arena *mem, storage_slice owner, storage_slice id)
{
    storage_slice out = {NULL, 1 + owner.len + id.len};
    if (owner.len > 255) return out;
    uint8_t *p = arena_alloc(mem, out.len);
    if (p == NULL) return out;
    p[0] = (uint8_t)owner.len;
    if (owner.len > 0) memcpy(p + 1, owner.data, owner.len);
    if (id.len > 0) memcpy(p + 1 + owner.len, id.data, id.len);
    out.data = p;
    return out;
}

storage_slice table_ref_id(storage_slice key)
{
    const uint8_t *p = key.data;
    if (key.len == 0 || (size_t)p[0] + 1 > key.len) {
        return (storage_slice){"", 0};
    }
    return (storage_slice){p + 1 + p[0], key.len - 1 - p[0]};
}

storage_slice table_str(const char *s)
{
    return (storage_slice){s, strlen(s)};
}

bool table_opt_id_ok(ProtobufCBinaryData id, size_t len)
{
    return id.len == 0 || id.len == len;
}

storage_slice table_name_key(arena *mem, storage_slice ns, storage_slice name)
{
    size_t nsLen = ns.len, nameLen = name.len;
    storage_slice out = {NULL, 4 + nsLen + nameLen};
    uint8_t *p = arena_alloc(mem, out.len);
    if (p == NULL) return out;
    p[0] = (uint8_t)(nsLen >> 24);
    p[1] = (uint8_t)(nsLen >> 16);
    p[2] = (uint8_t)(nsLen >> 8);
    p[3] = (uint8_t)nsLen;
    if (nsLen > 0) memcpy(p + 4, ns.data, nsLen);
    if (nameLen > 0) memcpy(p + 4 + nsLen, name.data, nameLen);
    out.data = p;
    return out;
}

typedef struct refCollector {
    arena *mem;
    storage_slice *ids;
    size_t n, cap;
} refCollector;

static int collectRef(void *arg, storage_slice key, storage_slice value)
{
    (void)value;
    refCollector *rc = arg;
    if (rc->n == rc->cap) {
        size_t cap = rc->cap ? 2 * rc->cap : 16;
        storage_slice *ids = arena_alloc(rc->mem, cap * sizeof *ids);
        if (ids == NULL) return STORAGE_ENOMEM;
        if (rc->n > 0) memcpy(ids, rc->ids, rc->n * sizeof *ids);
        rc->ids = ids;
        rc->cap = cap;
    }
    storage_slice id = table_ref_id(key);
    void *copy = arena_dup(rc->mem, id.data, id.len);
    if (copy == NULL) return STORAGE_ENOMEM;
    rc->ids[rc->n++] = (storage_slice){copy, id.len};
    return 0;
}

int table_collect_refs(storage_txn *t, arena *mem, unsigned index,
                       storage_slice owner, storage_slice **ids, size_t *n)
{
    *ids = NULL;
    *n = 0;
    storage_slice prefix = table_ref_key(mem, owner, (storage_slice){"", 0});
    if (prefix.data == NULL) return STORAGE_ENOMEM;
    refCollector c = {mem, NULL, 0, 0};
    int rc = storage_table_scan(t, index, prefix, (storage_slice){"", 0},
                                collectRef, &c);
    if (rc != 0) return rc;
    *ids = c.ids;
    *n = c.n;
    return 0;
}

static int collectKey(void *arg, storage_slice key, storage_slice value)
{
    (void)value;
    refCollector *rc = arg;
    if (rc->n == rc->cap) {
        size_t cap = rc->cap ? 2 * rc->cap : 16;
        storage_slice *ids = arena_alloc(rc->mem, cap * sizeof *ids);
        if (ids == NULL) return STORAGE_ENOMEM;
        if (rc->n > 0) memcpy(ids, rc->ids, rc->n * sizeof *ids);
        rc->ids = ids;
        rc->cap = cap;
    }
    void *copy = arena_dup(rc->mem, key.data, key.len);
    if (copy == NULL) return STORAGE_ENOMEM;
    rc->ids[rc->n++] = (storage_slice){copy, key.len};
    return 0;
}

int table_collect_keys(storage_txn *t, arena *mem, unsigned table,
                       storage_slice **keys, size_t *n)
{
    refCollector c = {mem, NULL, 0, 0};
    int rc = storage_table_scan(t, table, (storage_slice){"", 0},
                                (storage_slice){"", 0}, collectKey, &c);
    *keys = c.ids;
    *n = c.n;
    return rc;
}

/* ---- replies ----------------------------------------------------------- */

void table_reply_record(storage_txn *t, unsigned table, storage_slice key,
                        resp_buf *out)
{
    storage_slice v;
    bool found;
    int rc = storage_table_get(t, table, key, &v, &found);
    if (rc != 0) reply_storage_error(out, rc);
    else if (found) resp_add_bulk(out, v.data, v.len);
    else resp_add_null(out);
}

int table_reply_message(arena *mem, const ProtobufCMessage *msg,
                        resp_buf *out)
{
    size_t n;
    uint8_t *buf = packIn(mem, msg, &n);
    if (buf == NULL) return STORAGE_ENOMEM;
    resp_add_bulk(out, buf, n);
    return 0;
}

/* ---- paged listings ----------------------------------------------------- */

void table_list_init(table_list *l)
{
    memset(l, 0, sizeof *l);
    l->count = TABLE_LIST_DEFAULT_COUNT;
    resp_buf_init(&l->items);
}

void table_list_free(table_list *l)
{
    resp_buf_free(&l->items);
}

static int hexDigit(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int table_list_option(table_list *l, size_t argc, const resp_arg *argv,
                      size_t *i, resp_buf *out)
{
    bool cursor = arg_equals(&argv[*i], "cursor");
    if (!cursor && !arg_equals(&argv[*i], "count")) return 0;
    if (*i + 1 >= argc) {
        resp_add_error(out, ERR_SYNTAX);
        return -1;
    }
    const resp_arg *v = &argv[*i + 1];
    *i += 2;
    if (!cursor) {
        long long n;
        if (!parse_ll(v->ptr, v->len, &n)) {
            resp_add_error(out, ERR_NOT_INTEGER);
            return -1;
        }
        if (n < 1) {
            resp_add_error(out, ERR_SYNTAX);
            return -1;
        }
        l->count = (size_t)n;
        return 1;
    }
    if (v->len == 1 && v->ptr[0] == '0') {
        l->from_len = 0;
        return 1;
    }
    if (v->len == 0 || v->len % 2 != 0 ||
        v->len / 2 > sizeof l->from) {
        resp_add_error(out, "ERR invalid cursor");
        return -1;
    }
    for (size_t k = 0; k < v->len / 2; k++) {
        int hi = hexDigit(v->ptr[2 * k]), lo = hexDigit(v->ptr[2 * k + 1]);
        if (hi < 0 || lo < 0) {
            resp_add_error(out, "ERR invalid cursor");
            return -1;
        }
        l->from[k] = (uint8_t)(hi << 4 | lo);
    }
    l->from_len = v->len / 2;
    return 1;
}

storage_slice table_list_from(const table_list *l)
{
    return (storage_slice){l->from, l->from_len};
}

bool table_list_full(table_list *l, storage_slice key)
{
    /* Bound the work of a page as well as its size: a filter matching few
     * entries must not read the whole table in one call. */
    size_t budget = l->count > SIZE_MAX / 10 ? SIZE_MAX : l->count * 10;
    if (l->n < l->count && l->visited < budget) {
        l->visited++;
        return false;
    }
    l->more = true;
    l->next_len = key.len < sizeof l->next ? key.len : sizeof l->next;
    if (l->next_len > 0) memcpy(l->next, key.data, l->next_len);
    return true;
}

void table_list_add(table_list *l, storage_slice record)
{
    resp_add_bulk(&l->items, record.data, record.len);
    l->n++;
}

void table_list_reply(table_list *l, int rc, resp_buf *out)
{
    if (rc != 0 && rc != TABLE_LIST_STOP) {
        reply_storage_error(out, rc);
        return;
    }
    resp_add_array(out, 2);
    if (!l->more) {
        resp_add_bulk(out, "0", 1);
    } else {
        /* next is never empty: a page stops after visiting an entry, and
         * only the first key of a table can be empty. */
        char hex[2 * STORAGE_TABLE_MAX_KEY];
        static const char digits[] = "0123456789abcdef";
        for (size_t k = 0; k < l->next_len; k++) {
            hex[2 * k] = digits[l->next[k] >> 4];
            hex[2 * k + 1] = digits[l->next[k] & 15];
        }
        resp_add_bulk(out, hex, 2 * l->next_len);
    }
    resp_add_array(out, l->n);
    resp_add_raw(out, l->items.data, l->items.len);
}

/* ---- argument helpers -------------------------------------------------- */

bool table_id_arg_or_reply(const resp_arg *arg, size_t len, const char *what,
                           resp_buf *out)
{
    if (arg->len == len) return true;
    resp_add_errorf(out, "ERR invalid %s id: expected %zu bytes, got %zu",
                    what, len, arg->len);
    return false;
}

void table_reply_named(storage_txn *t, unsigned index, unsigned table,
                       const resp_arg *ns, const resp_arg *name,
                       resp_buf *out)
{
    if (ns->len + name->len > TABLE_NAME_MAX) {
        resp_add_null(out);
        return;
    }
    arena mem;
    arena_init(&mem);
    storage_slice key = table_name_key(&mem, arg_slice(ns), arg_slice(name)),
                  id;
    bool found = false;
    int rc = key.data == NULL ? STORAGE_ENOMEM
                              : storage_table_get(t, index, key, &id, &found);
    if (rc != 0) reply_storage_error(out, rc);
    else if (!found) resp_add_null(out);
    else table_reply_record(t, table, id, out);
    arena_free(&mem);
}

static int listAll(void *arg, storage_slice key, storage_slice value)
{
    table_list *l = arg;
    if (table_list_full(l, key)) return TABLE_LIST_STOP;
    table_list_add(l, value);
    return 0;
}

void table_reply_list(storage_txn *t, unsigned table, size_t argc,
                      const resp_arg *argv, resp_buf *out)
{
    table_list l;
    table_list_init(&l);
    for (size_t i = 1; i < argc;) {
        int r = table_list_option(&l, argc, argv, &i, out);
        if (r < 0) goto done;
        if (r == 0) {
            resp_add_error(out, ERR_SYNTAX);
            goto done;
        }
    }
    int rc = storage_table_scan(t, table, (storage_slice){"", 0},
                                table_list_from(&l), listAll, &l);
    table_list_reply(&l, rc, out);
done:
    table_list_free(&l);
}
