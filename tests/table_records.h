/* table_records: Ray-shaped ids and records for the typed-table tests,
 * built with protobuf-c. Memory handed out here lives until te_pool_free()
 * (call it from the suite's .fini). */
#ifndef GCS_TEST_TABLE_RECORDS_H
#define GCS_TEST_TABLE_RECORDS_H

#include <criterion/criterion.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ray.pb-c.h"

typedef struct blob {
    const uint8_t *p;
    size_t n;
} blob;

/* ---- memory --------------------------------------------------------------- */

static void **tePool;
static size_t teN, teCap;

static inline void *te_keep(void *p)
{
    cr_assert_not_null(p);
    if (teN == teCap) {
        teCap = teCap ? 2 * teCap : 256;
        tePool = realloc(tePool, teCap * sizeof *tePool);
        cr_assert_not_null(tePool);
    }
    tePool[teN++] = p;
    return p;
}

static inline void te_pool_free(void)
{
    for (size_t i = 0; i < teN; i++) free(tePool[i]);
    free(tePool);
    tePool = NULL;
    teN = teCap = 0;
}

static inline blob te_copy(const void *p, size_t n)
{
    uint8_t *c = te_keep(malloc(n + 1));
    if (n > 0) memcpy(c, p, n);
    c[n] = 0;
    return (blob){c, n};
}

static inline blob S(const char *s)
{
    return (blob){(const uint8_t *)s, strlen(s)};
}

static inline bool te_eq(blob a, blob b)
{
    return a.n == b.n && (a.n == 0 || memcmp(a.p, b.p, a.n) == 0);
}

/* ---- ids (Ray's sizes) ----------------------------------------------------- */

static inline blob te_job_id(uint32_t n)
{
    uint8_t b[4] = {(uint8_t)n, (uint8_t)(n >> 8), (uint8_t)(n >> 16),
                    (uint8_t)(n >> 24)};
    return te_copy(b, 4);
}

static inline blob te_node_id(unsigned k)
{
    uint8_t b[28];
    memset(b, 'N', sizeof b);
    b[26] = (uint8_t)(k >> 8);
    b[27] = (uint8_t)k;
    return te_copy(b, sizeof b);
}

static inline blob te_worker_id(unsigned k)
{
    uint8_t b[28];
    memset(b, 'W', sizeof b);
    b[26] = (uint8_t)(k >> 8);
    b[27] = (uint8_t)k;
    return te_copy(b, sizeof b);
}

/* 12 unique bytes + the job id, as ActorID::Of builds them. */
static inline blob te_actor_id(unsigned k, uint32_t job)
{
    uint8_t b[16];
    memset(b, 'A', 12);
    b[8] = (uint8_t)(k >> 24);
    b[9] = (uint8_t)(k >> 16);
    b[10] = (uint8_t)(k >> 8);
    b[11] = (uint8_t)k;
    memcpy(b + 12, te_job_id(job).p, 4);
    return te_copy(b, sizeof b);
}

static inline blob te_pg_id(unsigned k, uint32_t job)
{
    uint8_t b[18];
    memset(b, 'P', 14);
    b[12] = (uint8_t)(k >> 8);
    b[13] = (uint8_t)k;
    memcpy(b + 14, te_job_id(job).p, 4);
    return te_copy(b, sizeof b);
}

static inline ProtobufCBinaryData te_bin(blob b)
{
    return (ProtobufCBinaryData){b.n, (uint8_t *)b.p};
}

static inline blob te_pack(const ProtobufCMessage *m)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = te_keep(malloc(n + 1));
    protobuf_c_message_pack(m, buf);
    return (blob){buf, n};
}

/* ---- records ----------------------------------------------------------------- */

/* Parse "CPU=4,GPU=0.5" into map entries of protobuf-c's shape. */
typedef struct te_res {
    char names[8][16];
    double amounts[8];
    size_t n;
} te_res;

static inline te_res te_parse_res(const char *spec)
{
    te_res r = {.n = 0};
    const char *p = spec;
    while (p != NULL && *p != '\0') {
        cr_assert_lt(r.n, 8u);
        const char *eq = strchr(p, '=');
        cr_assert_not_null(eq);
        size_t len = (size_t)(eq - p);
        cr_assert_lt(len, 16u);
        memcpy(r.names[r.n], p, len);
        r.names[r.n][len] = '\0';
        r.amounts[r.n] = strtod(eq + 1, NULL);
        r.n++;
        p = strchr(eq, ',');
        if (p != NULL) p++;
    }
    return r;
}

static inline blob te_node(unsigned k, const char *resources)
{
    Ray__Rpc__GcsNodeInfo n;
    ray__rpc__gcs_node_info__init(&n);
    n.node_id = te_bin(te_node_id(k));
    n.node_manager_address = "10.0.0.1";
    n.node_manager_port = 7000 + (int)k;
    te_res r = te_parse_res(resources);
    Ray__Rpc__GcsNodeInfo__ResourcesTotalEntry e[8], *ep[8];
    for (size_t i = 0; i < r.n; i++) {
        ray__rpc__gcs_node_info__resources_total_entry__init(&e[i]);
        e[i].key = r.names[i];
        e[i].value = r.amounts[i];
        ep[i] = &e[i];
    }
    n.n_resources_total = r.n;
    n.resources_total = ep;
    return te_pack(&n.base);
}

typedef struct te_actor_spec {
    unsigned k;           /* actor number */
    uint32_t job;         /* job number (>= 1) */
    const char *name;     /* NULL: unnamed */
    const char *ns;       /* NULL: "" */
    bool detached;
    long long max_restarts;
    unsigned owner_worker; /* 0: none */
    unsigned owner_node;   /* 0: none */
} te_actor_spec;

static inline blob te_actor(te_actor_spec s)
{
    Ray__Rpc__ActorTableData a;
    ray__rpc__actor_table_data__init(&a);
    a.actor_id = te_bin(te_actor_id(s.k, s.job));
    a.job_id = te_bin(te_job_id(s.job));
    a.max_restarts = s.max_restarts;
    a.is_detached = s.detached;
    a.name = (char *)(s.name ? s.name : "");
    a.ray_namespace = (char *)(s.ns ? s.ns : "");
    a.class_name = "Counter";
    Ray__Rpc__Address owner;
    ray__rpc__address__init(&owner);
    if (s.owner_worker || s.owner_node) {
        if (s.owner_worker) owner.worker_id = te_bin(te_worker_id(s.owner_worker));
        if (s.owner_node) owner.node_id = te_bin(te_node_id(s.owner_node));
        owner.ip_address = "10.0.0.9";
        a.owner_address = &owner;
    }
    return te_pack(&a.base);
}

/* An ACTOR.UPDATE record: a state (0: none), and optionally the node and
 * worker it runs on now. */
static inline blob te_update(int state, unsigned node, unsigned worker)
{
    Ray__Rpc__ActorTableData a;
    ray__rpc__actor_table_data__init(&a);
    a.state = (Ray__Rpc__ActorTableData__ActorState)state;
    Ray__Rpc__Address addr;
    ray__rpc__address__init(&addr);
    if (node || worker) {
        if (node) addr.node_id = te_bin(te_node_id(node));
        if (worker) addr.worker_id = te_bin(te_worker_id(worker));
        addr.ip_address = "10.0.0.2";
        addr.port = 1234;
        a.address = &addr;
        a.pid = 4242;
    }
    return te_pack(&a.base);
}

static inline blob te_job(uint32_t num, unsigned driver_node)
{
    Ray__Rpc__JobTableData j;
    ray__rpc__job_table_data__init(&j);
    j.job_id = te_bin(te_job_id(num));
    j.driver_pid = 99;
    j.entrypoint = "python train.py";
    Ray__Rpc__Address d;
    ray__rpc__address__init(&d);
    if (driver_node) {
        d.node_id = te_bin(te_node_id(driver_node));
        j.driver_address = &d;
    }
    return te_pack(&j.base);
}

typedef struct te_pg_spec {
    unsigned k;
    uint32_t job;          /* creator job; 0: none */
    unsigned creator;      /* creator actor number (of @job); 0: none */
    int strategy;
    const char *bundles;   /* "CPU=1;CPU=2,GPU=1" */
    const char *name;
    const char *ns;
    bool detached;
} te_pg_spec;

static inline blob te_pg(te_pg_spec s)
{
    Ray__Rpc__PlacementGroupTableData g;
    ray__rpc__placement_group_table_data__init(&g);
    g.placement_group_id = te_bin(te_pg_id(s.k, s.job));
    if (s.job) g.creator_job_id = te_bin(te_job_id(s.job));
    if (s.creator) g.creator_actor_id = te_bin(te_actor_id(s.creator, s.job));
    g.strategy = (Ray__Rpc__PlacementStrategy)s.strategy;
    g.name = (char *)(s.name ? s.name : "");
    g.ray_namespace = (char *)(s.ns ? s.ns : "");
    g.is_detached = s.detached;
    Ray__Rpc__Bundle b[8], *bp[8];
    Ray__Rpc__Bundle__UnitResourcesEntry e[8][8], *ep[8][8];
    te_res r[8];
    size_t nb = 0;
    char spec[256];
    snprintf(spec, sizeof spec, "%s", s.bundles);
    for (char *save = NULL, *tok = strtok_r(spec, ";", &save); tok != NULL;
         tok = strtok_r(NULL, ";", &save)) {
        cr_assert_lt(nb, 8u);
        ray__rpc__bundle__init(&b[nb]);
        r[nb] = te_parse_res(tok);
        for (size_t i = 0; i < r[nb].n; i++) {
            ray__rpc__bundle__unit_resources_entry__init(&e[nb][i]);
            e[nb][i].key = r[nb].names[i];
            e[nb][i].value = r[nb].amounts[i];
            ep[nb][i] = &e[nb][i];
        }
        b[nb].n_unit_resources = r[nb].n;
        b[nb].unit_resources = ep[nb];
        bp[nb] = &b[nb];
        nb++;
    }
    g.n_bundles = nb;
    g.bundles = bp;
    return te_pack(&g.base);
}

#endif /* GCS_TEST_TABLE_RECORDS_H */
