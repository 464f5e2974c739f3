/* fuzz_snapshot: raft snapshot restore as rglue sees it, under libFuzzer,
 * and the typed-table handlers running on whatever state it restored.
 *
 * rglue's restore callback tells a local snapshot marker (rg_marker_decode:
 * "RGLMARK1" + index) from a full state dump, which goes to the fsm's
 * restore hook (storage_dump_applied_index, storage_load_dump, the fsm's
 * mirrors of the applied index and revision). fuzz_dump covers the dump
 * parser on its own; this target goes on from a successful restore: the
 * typed tables may now hold records of any bytes (a checksum-valid dump
 * need not hold what apply would write), and every handler that loads them
 * must cope: reply (possibly an error) or fail-stop the member with a
 * storage error, never crash, never read out of bounds, never reply
 * malformed RESP.
 *
 * Input: byte 0 flags, then the snapshot's bytes.
 *   flags bit 0  restore on a replica too, run the same workload there, and
 *                compare replies and final dumps (apply is deterministic)
 *         bit 1  leave the checksum as it is (else it is recomputed, so
 *                mutations get past it)
 * The workload, after a restore: for up to four ids of each typed table
 * (NODE, ACTOR, JOB, PG) its GET, the lists (with filters), and writes on
 * the ids (ACTOR.UPDATE with the stored record, ACTOR.KILL, NODE.DRAIN,
 * NODE.DEAD, JOB.FINISH, PG.REMOVE), a NODE.REGISTER (which places waiting
 * groups), JOB.NEXTID, keyspace scans, and the changelog read by
 * GCS.WATCH's backlog; each command is its own log entry. A command whose
 * apply fails leaves the member failed: the failure is checked to be a
 * storage error, then the member is revived for the next input. */
#define FUZZ_NAME "fuzz_snapshot"
#include <stdarg.h>

#include "fuzz_fsm.h"
#include "ray.pb-c.h"
#include "rglue_int.h"
#include "table.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define HEADER_LEN 24
#define TRAILER_LEN 8
#define IDS_PER_TABLE 4

static fz_member primary, replica;
static uint8_t *node_record; /* a NODE.REGISTER argument */
static size_t node_record_len;
static uint8_t node_id[NODE_ID_LEN]; /* its id */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    /* Quiet: a fail-stop on a crafted state logs a warning per input. */
    log_set_level(LOG_WARNING + 1);
    fz_open(&primary, "primary", 64u << 20);
    fz_open(&replica, "replica", 64u << 20);

    memset(node_id, 0x4e, sizeof node_id);
    Ray__Rpc__GcsNodeInfo n;
    ray__rpc__gcs_node_info__init(&n);
    n.node_id = (ProtobufCBinaryData){sizeof node_id, node_id};
    Ray__Rpc__GcsNodeInfo__ResourcesTotalEntry cpu, gpu;
    ray__rpc__gcs_node_info__resources_total_entry__init(&cpu);
    ray__rpc__gcs_node_info__resources_total_entry__init(&gpu);
    cpu.key = "CPU";
    cpu.value = 64;
    gpu.key = "GPU";
    gpu.value = 8;
    Ray__Rpc__GcsNodeInfo__ResourcesTotalEntry *res[] = {&cpu, &gpu};
    n.n_resources_total = 2;
    n.resources_total = res;
    node_record_len = ray__rpc__gcs_node_info__get_packed_size(&n);
    node_record = malloc(node_record_len);
    CHECK(node_record != NULL);
    ray__rpc__gcs_node_info__pack(&n, node_record);
    return 0;
}

/* ---- the workload ------------------------------------------------------ */

typedef struct blob {
    uint8_t *p;
    size_t n;
} blob;

typedef struct found {
    blob id[IDS_PER_TABLE], rec[IDS_PER_TABLE];
    size_t n;
} found;

static blob copy_slice(storage_slice s)
{
    blob b = {malloc(s.len ? s.len : 1), s.len};
    CHECK(b.p != NULL);
    if (s.len) memcpy(b.p, s.data, s.len);
    return b;
}

static int on_record(void *arg, storage_slice key, storage_slice value)
{
    found *f = arg;
    f->id[f->n] = copy_slice(key);
    f->rec[f->n] = copy_slice(value);
    return ++f->n == IDS_PER_TABLE;
}

typedef struct workload {
    /* Commands as argument lists, each argument its own allocation. */
    resp_arg *argv[256];
    size_t argc[256];
    size_t n;
} workload;

static void add(workload *w, size_t argc, ...)
{
    if (w->n == sizeof w->argc / sizeof w->argc[0]) return;
    va_list ap;
    va_start(ap, argc);
    resp_arg *v = calloc(argc, sizeof *v);
    CHECK(v != NULL);
    for (size_t i = 0; i < argc; i++) {
        const void *p = va_arg(ap, const void *);
        size_t n = va_arg(ap, size_t);
        char *c = malloc(n ? n : 1);
        CHECK(c != NULL);
        if (n) memcpy(c, p, n);
        v[i] = (resp_arg){c, n};
    }
    va_end(ap);
    w->argv[w->n] = v;
    w->argc[w->n] = argc;
    w->n++;
}

#define S(lit) (const void *)(lit), (size_t)(sizeof(lit) - 1)
#define B(b) (const void *)(b).p, (b).n

static void build_workload(workload *w)
{
    storage_txn *t = fsm_read_txn(&primary.f);
    CHECK(t != NULL);
    found tables[4] = {{{{0}}}};
    for (unsigned k = 0; k < 4; k++) {
        int rc = storage_table_scan(t, TABLE_NODE + k, (storage_slice){"", 0},
                                    (storage_slice){"", 0}, on_record,
                                    &tables[k]);
        CHECK(rc == 0 || rc == 1 || rc == STORAGE_ECORRUPT);
    }
    fsm_end_reads(&primary.f);
    found *nodes = &tables[0], *actors = &tables[1], *jobs = &tables[2],
          *pgs = &tables[3];

    add(w, 1, S("NODE.LIST"));
    add(w, 2, S("NODE.LIST"), S("DEAD"));
    add(w, 1, S("ACTOR.LIST"));
    add(w, 3, S("ACTOR.LIST"), S("STATE"), S("ALIVE"));
    add(w, 1, S("JOB.LIST"));
    add(w, 1, S("PG.LIST"));
    for (size_t i = 0; i < nodes->n; i++) {
        add(w, 2, S("NODE.GET"), B(nodes->id[i]));
        add(w, 3, S("ACTOR.LIST"), S("NODE"), B(nodes->id[i]));
    }
    for (size_t i = 0; i < actors->n; i++) {
        add(w, 2, S("ACTOR.GET"), B(actors->id[i]));
        add(w, 3, S("ACTOR.UPDATE"), B(actors->id[i]), B(actors->rec[i]));
    }
    for (size_t i = 0; i < jobs->n; i++) {
        add(w, 2, S("JOB.GET"), B(jobs->id[i]));
        add(w, 3, S("ACTOR.LIST"), S("JOB"), B(jobs->id[i]));
    }
    for (size_t i = 0; i < pgs->n; i++) add(w, 2, S("PG.GET"), B(pgs->id[i]));
    /* Writes that walk the tables' cross references. */
    add(w, 2, S("NODE.REGISTER"), node_record, node_record_len);
    add(w, 1, S("JOB.NEXTID"));
    for (size_t i = 0; i < nodes->n; i++) {
        add(w, 3, S("NODE.DRAIN"), B(nodes->id[i]), S("IDLE"));
    }
    for (size_t i = 0; i < actors->n; i++) {
        add(w, 2, S("ACTOR.KILL"), B(actors->id[i]));
    }
    for (size_t i = 0; i < pgs->n; i++) {
        add(w, 2, S("PG.REMOVE"), B(pgs->id[i]));
    }
    for (size_t i = 0; i < jobs->n; i++) {
        add(w, 2, S("JOB.FINISH"), B(jobs->id[i]));
    }
    for (size_t i = 0; i < nodes->n; i++) {
        add(w, 3, S("NODE.DEAD"), B(nodes->id[i]), S("fuzz"));
    }
    add(w, 3, S("NODE.DEAD"), node_id, sizeof node_id, S("x"));
    /* The keyspace. */
    add(w, 1, S("DBSIZE"));
    add(w, 4, S("SCAN"), S("0"), S("COUNT"), S("1000"));
    add(w, 2, S("KEYS"), S("*"));
    add(w, 1, S("FLUSHALL"));
    for (unsigned k = 0; k < 4; k++) {
        for (size_t i = 0; i < tables[k].n; i++) {
            free(tables[k].id[i].p);
            free(tables[k].rec[i].p);
        }
    }
}

static void free_workload(workload *w)
{
    for (size_t i = 0; i < w->n; i++) {
        for (size_t k = 0; k < w->argc[i]; k++) {
            free((void *)w->argv[i][k].ptr);
        }
        free(w->argv[i]);
    }
}

/* Run the workload on @m, one entry per command; the replies (an empty
 * string for a command whose apply failed) into @out. */
static void run_workload(fz_member *m, const workload *w, resp_buf *out)
{
    for (size_t i = 0; i < w->n; i++) {
        if (m->f.applied_index >= UINT64_MAX - 1) return;
        void *enc;
        rglue_cmd cmd;
        CHECK(fsm_encode_command(0, w->argc[i], w->argv[i], &enc,
                                 &cmd.len) == 0);
        cmd.data = enc;
        uint64_t index = m->f.applied_index + 1;
        fz_replies r;
        int rc = fz_apply(m, index, INT64_C(1700000000000) + (int64_t)i, &cmd,
                          1, &r);
        if (rc == 0) {
            CHECK(m->f.applied_index == index);
            resp_add_raw(out, r.all.data, r.all.len);
        } else {
            /* A state that breaks the tables' invariants may stop the
             * member (fail-stop), with a storage error; revive it. */
            CHECK(m->f.failed);
            CHECK(m->f.applied_index == index - 1);
            if (rc != STORAGE_ECORRUPT && rc != STORAGE_EMAPFULL) {
                fprintf(stderr, FUZZ_NAME ": '%.*s' failed: %d (%s)\n",
                        (int)w->argv[i][0].len, w->argv[i][0].ptr, rc,
                        m->f.failure);
                abort();
            }
            m->f.failed = false;
            m->f.failure[0] = '\0';
            resp_add_raw(out, "!", 1);
        }
        fz_replies_free(&r);
        free(enc);
        fsm_end_reads(&m->f);
    }
}

static int count_event(void *arg, uint64_t revision, storage_slice event)
{
    (void)revision;
    volatile uint8_t sink = 0;
    if (event.len) sink ^= ((const uint8_t *)event.data)[event.len - 1];
    (void)sink;
    return ++*(size_t *)arg >= 4096;
}

/* Restore @p on @m as a member that is behind: 0 or the hook's error. */
static int restore(fz_member *m, const uint8_t *p, size_t len)
{
    m->f.failed = false;
    m->f.applied_index = 0;
    return m->hooks.restore(m->hooks.ctx, p, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    uint8_t flags = data[0];
    size_t len = size - 1;
    uint8_t *snap = calloc(1, len ? len : 1); /* gcc 12: see fuzz_dump */
    CHECK(snap != NULL);
    if (len) memcpy(snap, data + 1, len);

    /* rglue's first question: a marker? */
    uint64_t marker;
    if (rg_marker_decode(snap, len, &marker)) {
        CHECK(len == RG_MARKER_LEN && memcmp(snap, "RGLMARK1", 8) == 0);
        unsigned char again[RG_MARKER_LEN];
        rg_marker_encode(again, marker);
        CHECK(memcmp(again, snap, RG_MARKER_LEN) == 0);
        free(snap);
        return 0;
    }
    if (!(flags & 2) && len >= HEADER_LEN + TRAILER_LEN) {
        uint64_t h = fz_dump_checksum(snap, len - TRAILER_LEN);
        for (int i = 7; i >= 0; i--, h >>= 8) {
            snap[len - TRAILER_LEN + (size_t)i] = (uint8_t)h;
        }
    }
    uint64_t index = 0;
    int rc = restore(&primary, snap, len);
    if (rc != 0 || storage_dump_applied_index(snap, len, &index) != 0 ||
        index == 0) {
        /* Rejected, or nothing to do ("already there"). */
        free(snap);
        return 0;
    }
    CHECK(primary.f.applied_index == index);
    {
        storage_txn *t = fsm_read_txn(&primary.f);
        CHECK(t != NULL);
        uint64_t rev = 0;
        CHECK(storage_meta_get(t, FSM_META_REVISION, &rev) == 0);
        CHECK(rev == primary.f.revision);
        /* GCS.WATCH's backlog: the changelog's bounds and events. */
        fsm_changelog_info ci;
        size_t events = 0;
        if (fsm_changelog_info_get(t, &ci) == 0) {
            (void)fsm_changelog_scan(t, ci.oldest, count_event, &events);
        }
        fsm_end_reads(&primary.f);
    }

    bool with_replica = flags & 1;
    if (with_replica) CHECK(restore(&replica, snap, len) == 0);

    workload w = {0};
    build_workload(&w);
    resp_buf a, b;
    resp_buf_init(&a);
    resp_buf_init(&b);
    run_workload(&primary, &w, &a);
    if (with_replica) {
        run_workload(&replica, &w, &b);
        CHECK(fz_same_bytes(a.data, a.len, b.data, b.len));
        fz_compare(&primary, &replica);
    }
    resp_buf_free(&a);
    resp_buf_free(&b);
    free_workload(&w);
    free(snap);
    return 0;
}
