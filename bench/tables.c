/* bench_tables: typed-table throughput against a running gcsd, with
 * concurrent clients each on its own connection, one request at a time (as
 * raylets and workers talk to the GCS):
 *
 *   actors  one lifecycle = ACTOR.REGISTER, ACTOR.UPDATE PENDING_CREATION,
 *           ACTOR.UPDATE ALIVE (on a registered node), ACTOR.UPDATE DEAD
 *   pgs     one cycle = PG.CREATE (one bundle, placed at once), PG.REMOVE
 *
 * Every reply is checked; a wrong one stops the run.
 *
 *   bench_tables [-h host] [-p port] [-c clients] [-d seconds] [actors|pgs]
 *
 * Defaults: 127.0.0.1:6379, 50 clients, 10 s, both workloads one after the
 * other. Prints operations per second. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "ray.pb-c.h"

#define NODE_ID_LEN 28

static const char *host = "127.0.0.1";
static int port = 6379;
static int clients = 50;
static int seconds = 10;
static atomic_bool failed;

static double nowSec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef struct buf {
    uint8_t *p;
    size_t n;
} buf;

static buf pack(const ProtobufCMessage *m)
{
    buf b = {NULL, protobuf_c_message_get_packed_size(m)};
    b.p = malloc(b.n + 1);
    if (b.p == NULL) {
        fprintf(stderr, "bench_tables: out of memory\n");
        exit(1);
    }
    protobuf_c_message_pack(m, b.p);
    return b;
}

static void nodeId(uint8_t id[NODE_ID_LEN])
{
    memset(id, 'B', NODE_ID_LEN);
}

/* Send a command; false (and the reason on stderr) unless the reply is of
 * type @want. */
static bool call(redisContext *c, int want, int argc, const char **argv,
                 const size_t *lens)
{
    redisReply *r = redisCommandArgv(c, argc, argv, lens);
    if (r == NULL) {
        fprintf(stderr, "bench_tables: %s: connection error: %s\n", argv[0],
                c->errstr);
        return false;
    }
    bool ok = r->type == want;
    if (!ok) {
        fprintf(stderr, "bench_tables: %s: unexpected reply (type %d) %s\n",
                argv[0], r->type, r->type == REDIS_REPLY_ERROR ? r->str : "");
    }
    freeReplyObject(r);
    return ok;
}

static redisContext *connectOrDie(void)
{
    redisContext *c = redisConnect(host, port);
    if (c == NULL || c->err) {
        fprintf(stderr, "bench_tables: cannot connect to %s:%d: %s\n", host,
                port, c ? c->errstr : "out of memory");
        exit(1);
    }
    return c;
}

/* One node with room for every bundle the run creates, and one job. */
static void prepare(void)
{
    redisContext *c = connectOrDie();
    Ray__Rpc__GcsNodeInfo n;
    ray__rpc__gcs_node_info__init(&n);
    uint8_t id[NODE_ID_LEN];
    nodeId(id);
    n.node_id = (ProtobufCBinaryData){NODE_ID_LEN, id};
    n.node_manager_address = "127.0.0.1";
    Ray__Rpc__GcsNodeInfo__ResourcesTotalEntry cpu;
    ray__rpc__gcs_node_info__resources_total_entry__init(&cpu);
    cpu.key = "CPU";
    cpu.value = 1e9;
    Ray__Rpc__GcsNodeInfo__ResourcesTotalEntry *res[] = {&cpu};
    n.n_resources_total = 1;
    n.resources_total = res;
    buf b = pack(&n.base);
    const char *argv[] = {"NODE.REGISTER", (const char *)b.p};
    size_t lens[] = {13, b.n};
    if (!call(c, REDIS_REPLY_STATUS, 2, argv, lens)) exit(1);
    free(b.p);
    redisFree(c);
}

typedef struct worker {
    pthread_t thread;
    int index;
    uint32_t job;   /* a job number of its own */
    double deadline;
    uint64_t done;
} worker;

static void actorId(uint8_t id[16], const worker *w, uint64_t i)
{
    memset(id, 0, 16);
    for (int k = 0; k < 8; k++) id[k] = (uint8_t)(i >> (8 * k));
    id[8] = (uint8_t)w->index;
    memcpy(id + 12, &w->job, 4);
}

static void *actorLoop(void *arg)
{
    worker *w = arg;
    redisContext *c = connectOrDie();
    uint8_t node[NODE_ID_LEN], workerId[NODE_ID_LEN];
    nodeId(node);
    memset(workerId, 'w', sizeof workerId);
    workerId[0] = (uint8_t)w->index;
    uint8_t job[4];
    memcpy(job, &w->job, 4);

    /* The update records do not depend on the actor: build them once. */
    Ray__Rpc__ActorTableData u;
    ray__rpc__actor_table_data__init(&u);
    u.state = RAY__RPC__ACTOR_TABLE_DATA__ACTOR_STATE__PENDING_CREATION;
    buf pending = pack(&u.base);
    Ray__Rpc__Address addr;
    ray__rpc__address__init(&addr);
    addr.node_id = (ProtobufCBinaryData){NODE_ID_LEN, node};
    addr.worker_id = (ProtobufCBinaryData){NODE_ID_LEN, workerId};
    addr.ip_address = "127.0.0.1";
    addr.port = 10000;
    u.state = RAY__RPC__ACTOR_TABLE_DATA__ACTOR_STATE__ALIVE;
    u.address = &addr;
    u.pid = 1234;
    buf alive = pack(&u.base);
    /* The actors' owner: a driver's worker on the same node. */
    uint8_t driver[NODE_ID_LEN];
    memset(driver, 'd', sizeof driver);
    driver[0] = (uint8_t)w->index;
    Ray__Rpc__Address owner = addr;
    owner.worker_id = (ProtobufCBinaryData){NODE_ID_LEN, driver};
    ray__rpc__actor_table_data__init(&u);
    u.state = RAY__RPC__ACTOR_TABLE_DATA__ACTOR_STATE__DEAD;
    buf dead = pack(&u.base);

    for (uint64_t i = 0; !failed && nowSec() < w->deadline; i++) {
        uint8_t id[16];
        actorId(id, w, i);
        Ray__Rpc__ActorTableData a;
        ray__rpc__actor_table_data__init(&a);
        a.actor_id = (ProtobufCBinaryData){16, id};
        a.job_id = (ProtobufCBinaryData){4, job};
        a.max_restarts = 0;
        a.class_name = "BenchActor";
        a.owner_address = &owner;
        buf reg = pack(&a.base);
        const char *r[] = {"ACTOR.REGISTER", (const char *)reg.p};
        size_t rl[] = {14, reg.n};
        const char *up[] = {"ACTOR.UPDATE", (const char *)id, NULL};
        size_t ul[] = {12, 16, 0};
        bool ok = call(c, REDIS_REPLY_STATUS, 2, r, rl);
        up[2] = (const char *)pending.p;
        ul[2] = pending.n;
        ok = ok && call(c, REDIS_REPLY_STRING, 3, up, ul);
        up[2] = (const char *)alive.p;
        ul[2] = alive.n;
        ok = ok && call(c, REDIS_REPLY_STRING, 3, up, ul);
        up[2] = (const char *)dead.p;
        ul[2] = dead.n;
        ok = ok && call(c, REDIS_REPLY_STRING, 3, up, ul);
        free(reg.p);
        if (!ok) {
            failed = true;
            break;
        }
        w->done++;
    }
    free(pending.p);
    free(alive.p);
    free(dead.p);
    redisFree(c);
    return NULL;
}

static void *pgLoop(void *arg)
{
    worker *w = arg;
    redisContext *c = connectOrDie();
    Ray__Rpc__Bundle__UnitResourcesEntry cpu;
    ray__rpc__bundle__unit_resources_entry__init(&cpu);
    cpu.key = "CPU";
    cpu.value = 1;
    Ray__Rpc__Bundle__UnitResourcesEntry *res[] = {&cpu};
    Ray__Rpc__Bundle bundle;
    ray__rpc__bundle__init(&bundle);
    bundle.n_unit_resources = 1;
    bundle.unit_resources = res;
    Ray__Rpc__Bundle *bundles[] = {&bundle};
    for (uint64_t i = 0; !failed && nowSec() < w->deadline; i++) {
        uint8_t id[18];
        memset(id, 0, sizeof id);
        for (int k = 0; k < 8; k++) id[k] = (uint8_t)(i >> (8 * k));
        id[8] = (uint8_t)w->index;
        memcpy(id + 14, &w->job, 4);
        Ray__Rpc__PlacementGroupTableData g;
        ray__rpc__placement_group_table_data__init(&g);
        g.placement_group_id = (ProtobufCBinaryData){18, id};
        g.strategy = RAY__RPC__PLACEMENT_STRATEGY__PACK;
        g.is_detached = 1;
        g.n_bundles = 1;
        g.bundles = bundles;
        buf rec = pack(&g.base);
        const char *cr[] = {"PG.CREATE", (const char *)rec.p};
        size_t cl[] = {9, rec.n};
        const char *rm[] = {"PG.REMOVE", (const char *)id};
        size_t rml[] = {9, 18};
        bool ok = call(c, REDIS_REPLY_STATUS, 2, cr, cl) &&
                  call(c, REDIS_REPLY_STATUS, 2, rm, rml);
        free(rec.p);
        if (!ok) {
            failed = true;
            break;
        }
        w->done++;
    }
    redisFree(c);
    return NULL;
}

/* Run @fn on every client for the set time; operations per second. */
static double run(void *(*fn)(void *), uint32_t firstJob)
{
    worker *w = calloc((size_t)clients, sizeof *w);
    if (w == NULL) exit(1);
    double start = nowSec();
    for (int i = 0; i < clients; i++) {
        w[i].index = i;
        w[i].job = firstJob + (uint32_t)i;
        w[i].deadline = start + seconds;
        if (pthread_create(&w[i].thread, NULL, fn, &w[i]) != 0) {
            fprintf(stderr, "bench_tables: pthread_create: %s\n",
                    strerror(errno));
            exit(1);
        }
    }
    uint64_t total = 0;
    for (int i = 0; i < clients; i++) {
        pthread_join(w[i].thread, NULL);
        total += w[i].done;
    }
    double elapsed = nowSec() - start;
    free(w);
    if (failed) exit(1);
    return (double)total / elapsed;
}

int main(int argc, char **argv)
{
    int opt;
    while ((opt = getopt(argc, argv, "h:p:c:d:")) != -1) {
        switch (opt) {
            case 'h': host = optarg; break;
            case 'p': port = atoi(optarg); break;
            case 'c': clients = atoi(optarg); break;
            case 'd': seconds = atoi(optarg); break;
            default:
                fprintf(stderr, "usage: bench_tables [-h host] [-p port] "
                                "[-c clients] [-d seconds] [actors|pgs]\n");
                return 2;
        }
    }
    if (clients < 1 || clients > 255 || seconds < 1) {
        fprintf(stderr, "bench_tables: 1 to 255 clients, at least 1 s\n");
        return 2;
    }
    const char *only = optind < argc ? argv[optind] : NULL;
    prepare();
    /* Each run gets its own job numbers, so ids never repeat across runs
     * against the same server. */
    uint32_t jobBase = (uint32_t)time(NULL) & 0x7fff0000u;
    printf("clients %d, %d s per workload, %s:%d\n", clients, seconds, host,
           port);
    if (only == NULL || strcmp(only, "actors") == 0) {
        double r = run(actorLoop, jobBase);
        printf("actor lifecycles/s   %10.0f   (%0.f commands/s: register, "
               "PENDING_CREATION, ALIVE, DEAD)\n", r, 4 * r);
    }
    if (only == NULL || strcmp(only, "pgs") == 0) {
        double r = run(pgLoop, jobBase + 256);
        printf("placement groups/s   %10.0f   (%0.f commands/s: PG.CREATE "
               "placed at once, PG.REMOVE)\n", r, 2 * r);
    }
    return 0;
}
