#include "ctl_record.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ray.pb-c.h"

static void enumField(ctl_fields *f, const char *key,
                      const ProtobufCEnumDescriptor *d, int v)
{
    const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(d, v);
    if (ev != NULL) {
        ctl_fields_str(f, key, ev->name);
    } else {
        char s[32];
        snprintf(s, sizeof s, "%d", v);
        ctl_fields_str(f, key, s);
    }
}

typedef struct resEntry {
    const char *key;
    double value;
} resEntry;

/* Map entries of protobuf-c's shape: each a message with key and value. */
static void resourcesField(ctl_fields *f, const char *key, size_t n,
                           const resEntry *e)
{
    ctl_buf t = {0}, j = {0};
    ctl_buf_add(&j, "{", 1);
    for (size_t i = 0; i < n; i++) {
        char *k = ctl_printable(e[i].key, strlen(e[i].key)), num[64];
        ctl_buf_printf(&t, "%s%s=%g", i ? ", " : "", k, e[i].value);
        free(k);
        if (i) ctl_buf_add(&j, ", ", 2);
        ctl_buf_json_str(&j, e[i].key, strlen(e[i].key));
        ctl_json_double(num, sizeof num, e[i].value);
        ctl_buf_printf(&j, ": %s", num);
    }
    ctl_buf_add(&j, "}", 1);
    char *text = ctl_buf_take(&t), *json = ctl_buf_take(&j);
    ctl_fields_add(f, key, n ? text : "-", json);
    free(text);
    free(json);
}

#define RESOURCES(f_, key_, n, arr)                                            \
    do {                                                                     \
        resEntry *e_ = calloc((n) ? (n) : 1, sizeof *e_);                    \
        if (e_ == NULL) break;                                               \
        for (size_t i_ = 0; i_ < (n); i_++) {                                \
            e_[i_].key = (arr)[i_]->key;                                     \
            e_[i_].value = (arr)[i_]->value;                                 \
        }                                                                    \
        resourcesField((f_), (key_), (n), e_);                                 \
        free(e_);                                                            \
    } while (0)

static void binField(ctl_fields *f, const char *key, ProtobufCBinaryData b)
{
    ctl_fields_hex(f, key, b.data, b.len);
}

static void addressField(ctl_fields *f, const char *key,
                         const Ray__Rpc__Address *a)
{
    if (a == NULL || (a->ip_address[0] == '\0' && a->port == 0)) {
        ctl_fields_add(f, key, "-", "null");
        return;
    }
    char s[300];
    snprintf(s, sizeof s, "%s:%d", a->ip_address, (int)a->port);
    ctl_fields_str(f, key, s);
}

static void nodeDecode(const Ray__Rpc__GcsNodeInfo *n, ctl_fields *f)
{
    binField(f, "node_id", n->node_id);
    enumField(f, "state", &ray__rpc__gcs_node_info__gcs_node_state__descriptor,
              n->state);
    char addr[300];
    snprintf(addr, sizeof addr, "%s:%d", n->node_manager_address,
             (int)n->node_manager_port);
    ctl_fields_str(f, "address", addr);
    ctl_fields_str(f, "hostname", n->node_manager_hostname);
    ctl_fields_str(f, "node_name", n->node_name);
    ctl_fields_bool(f, "head", n->is_head_node);
    RESOURCES(f, "resources", n->n_resources_total, n->resources_total);
    ctl_fields_time_ms(f, "start_time", n->start_time_ms);
    ctl_fields_time_ms(f, "end_time", n->end_time_ms);
    if (n->state_snapshot != NULL) {
        enumField(f, "activity", &ray__rpc__node_snapshot__state__descriptor,
                  n->state_snapshot->state);
    }
    if (n->death_info != NULL) {
        enumField(f, "death_reason",
                  &ray__rpc__node_death_info__reason__descriptor,
                  n->death_info->reason);
        ctl_fields_str(f, "death_message", n->death_info->reason_message);
    }
}

static void actorDecode(const Ray__Rpc__ActorTableData *a, ctl_fields *f)
{
    binField(f, "actor_id", a->actor_id);
    enumField(f, "state",
              &ray__rpc__actor_table_data__actor_state__descriptor, a->state);
    binField(f, "job_id", a->job_id);
    ctl_fields_str(f, "name", a->name);
    ctl_fields_str(f, "namespace", a->ray_namespace);
    ctl_fields_str(f, "class_name", a->class_name);
    ProtobufCBinaryData none = {0, NULL};
    binField(f, "node_id",
             a->_node_id_case == RAY__RPC__ACTOR_TABLE_DATA___NODE_ID_NODE_ID
                 ? a->node_id
                 : (a->address ? a->address->node_id : none));
    addressField(f, "address", a->address);
    ctl_fields_u64(f, "pid", a->pid);
    ctl_fields_bool(f, "detached", a->is_detached);
    ctl_fields_i64(f, "max_restarts", a->max_restarts);
    ctl_fields_u64(f, "num_restarts", a->num_restarts);
    RESOURCES(f, "required_resources", a->n_required_resources,
              a->required_resources);
    ctl_fields_time_ms(f, "start_time", a->start_time);
    ctl_fields_time_ms(f, "end_time", a->end_time);
    if (a->death_cause != NULL &&
        a->death_cause->context_case ==
            RAY__RPC__ACTOR_DEATH_CAUSE__CONTEXT_ACTOR_DIED_ERROR_CONTEXT) {
        const Ray__Rpc__ActorDiedErrorContext *d =
            a->death_cause->actor_died_error_context;
        enumField(f, "death_reason",
                  &ray__rpc__actor_died_error_context__reason__descriptor,
                  d->reason);
        ctl_fields_str(f, "death_message", d->error_message);
    }
}

static void jobDecode(const Ray__Rpc__JobTableData *j, ctl_fields *f)
{
    binField(f, "job_id", j->job_id);
    ctl_fields_str(f, "state", j->is_dead ? "FINISHED" : "RUNNING");
    ctl_fields_str(f, "entrypoint", j->entrypoint);
    ctl_fields_str(f, "namespace",
                   j->config != NULL ? j->config->ray_namespace : "");
    ctl_fields_str(f, "driver_ip", j->driver_ip_address);
    ctl_fields_i64(f, "driver_pid", j->driver_pid);
    ProtobufCBinaryData none = {0, NULL};
    binField(f, "driver_node_id",
             j->driver_address ? j->driver_address->node_id : none);
    ctl_fields_time_ms(f, "start_time", j->start_time);
    ctl_fields_time_ms(f, "end_time", j->end_time);
}

static void pgDecode(const Ray__Rpc__PlacementGroupTableData *g,
                     ctl_fields *f)
{
    binField(f, "placement_group_id", g->placement_group_id);
    enumField(f, "state",
              &ray__rpc__placement_group_table_data__placement_group_state__descriptor,
              g->state);
    ctl_fields_str(f, "name", g->name);
    ctl_fields_str(f, "namespace", g->ray_namespace);
    enumField(f, "strategy", &ray__rpc__placement_strategy__descriptor,
              g->strategy);
    binField(f, "creator_job_id", g->creator_job_id);
    binField(f, "creator_actor_id", g->creator_actor_id);
    ctl_fields_bool(f, "detached", g->is_detached);
    /* Bundles: "{CPU=1}@<node hex prefix>; {CPU=2, GPU=1}" and, in JSON,
     * [{"resources": {...}, "node_id": "hex"|null}]. */
    ctl_buf t = {0}, j = {0};
    ctl_buf_add(&j, "[", 1);
    for (size_t i = 0; i < g->n_bundles; i++) {
        const Ray__Rpc__Bundle *b = g->bundles[i];
        ctl_fields tmp = {0};
        RESOURCES(&tmp, "r", b->n_unit_resources, b->unit_resources);
        char *node = ctl_hex(b->node_id.data, b->node_id.len);
        ctl_buf_printf(&t, "%s{%s}", i ? "; " : "", tmp.v[0].text);
        if (b->node_id.len) ctl_buf_printf(&t, "@%.8s", node);
        ctl_buf_printf(&j, "%s{\"resources\": %s, \"node_id\": ", i ? ", " : "",
                       tmp.v[0].json);
        if (b->node_id.len) ctl_buf_printf(&j, "\"%s\"}", node);
        else ctl_buf_add(&j, "null}", 5);
        free(node);
        ctl_fields_free(&tmp);
    }
    ctl_buf_add(&j, "]", 1);
    char *text = ctl_buf_take(&t), *json = ctl_buf_take(&j);
    ctl_fields_add(f, "bundles", g->n_bundles ? text : "-", json);
    free(text);
    free(json);
    ctl_fields_time_ms(f, "created",
                       (uint64_t)g->placement_group_creation_timestamp_ms);
}

bool ctl_record_decode(ctl_record_kind kind, const void *p, size_t n,
                       ctl_fields *f)
{
    const uint8_t *d = p;
    switch (kind) {
    case CTL_RECORD_NODE: {
        Ray__Rpc__GcsNodeInfo *m = ray__rpc__gcs_node_info__unpack(NULL, n, d);
        if (m == NULL) return false;
        nodeDecode(m, f);
        ray__rpc__gcs_node_info__free_unpacked(m, NULL);
        return true;
    }
    case CTL_RECORD_ACTOR: {
        Ray__Rpc__ActorTableData *m =
            ray__rpc__actor_table_data__unpack(NULL, n, d);
        if (m == NULL) return false;
        actorDecode(m, f);
        ray__rpc__actor_table_data__free_unpacked(m, NULL);
        return true;
    }
    case CTL_RECORD_JOB: {
        Ray__Rpc__JobTableData *m = ray__rpc__job_table_data__unpack(NULL, n, d);
        if (m == NULL) return false;
        jobDecode(m, f);
        ray__rpc__job_table_data__free_unpacked(m, NULL);
        return true;
    }
    case CTL_RECORD_PG: {
        Ray__Rpc__PlacementGroupTableData *m =
            ray__rpc__placement_group_table_data__unpack(NULL, n, d);
        if (m == NULL) return false;
        pgDecode(m, f);
        ray__rpc__placement_group_table_data__free_unpacked(m, NULL);
        return true;
    }
    }
    return false;
}

size_t ctl_record_id_len(ctl_record_kind kind)
{
    switch (kind) {
    case CTL_RECORD_NODE: return 28;
    case CTL_RECORD_ACTOR: return 16;
    case CTL_RECORD_JOB: return 4;
    case CTL_RECORD_PG: return 18;
    }
    return 0;
}

const char *const *ctl_record_columns(ctl_record_kind kind)
{
    static const char *const node[] = {"node_id", "state", "address",
                                       "resources", "start_time", NULL};
    static const char *const actor[] = {"actor_id", "state", "job_id", "name",
                                        "namespace", "class_name", "node_id",
                                        NULL};
    static const char *const job[] = {"job_id", "state", "entrypoint",
                                      "start_time", "end_time", NULL};
    static const char *const pg[] = {"placement_group_id", "state", "name",
                                     "namespace", "strategy", "bundles", NULL};
    switch (kind) {
    case CTL_RECORD_NODE: return node;
    case CTL_RECORD_ACTOR: return actor;
    case CTL_RECORD_JOB: return job;
    case CTL_RECORD_PG: return pg;
    }
    return node;
}
