/* rglue against the real raft 0.22.1 + raft_uv: temp data dirs under /tmp,
 * members on 127.0.0.1 ports derived from getpid() (Criterion runs each test
 * in its own process), one uv loop per test, waits bounded by deadlines. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <uv.h>

#include "rglue.h"
#include "rglue_int.h"
#include "test_ports.h"

/* ---- a tiny in-memory state machine ---------------------------------------
 * It outlives rglue instances, standing in for a durable store: restarting a
 * member with the same tfsm is a restart with intact storage. */

typedef struct tcmd {
    unsigned char *data;
    size_t len;
    uint64_t index;
    int64_t time_ms;
} tcmd;

typedef struct tfsm {
    pthread_mutex_t mu;
    tcmd *cmds;
    size_t n, cap;
    uint64_t applied_index;
    uint64_t fail_at; /* apply fails from this index on (0: never) */
    rglue *probe; /* when set: its entries_proposed at each apply ... */
    uint64_t proposed_at_apply[256]; /* ... by applied_entries before it */
    /* counters */
    unsigned apply_calls, applied_entries, skipped_entries;
    unsigned restore_full, restore_noop, dumps, syncs;
    bool order_ok;
} tfsm;

static void tfsmInit(tfsm *f)
{
    memset(f, 0, sizeof *f);
    pthread_mutex_init(&f->mu, NULL);
    f->order_ok = true;
}

static void tfsmClear(tfsm *f)
{
    for (size_t i = 0; i < f->n; i++) free(f->cmds[i].data);
    free(f->cmds);
    f->cmds = NULL;
    f->n = f->cap = 0;
}

static void tfsmFree(tfsm *f)
{
    tfsmClear(f);
    pthread_mutex_destroy(&f->mu);
}

static void tfsmPush(tfsm *f, const void *data, size_t len, uint64_t index,
                     int64_t time_ms)
{
    if (f->n == f->cap) {
        f->cap = f->cap ? 2 * f->cap : 64;
        f->cmds = realloc(f->cmds, f->cap * sizeof *f->cmds);
        cr_assert(f->cmds != NULL);
    }
    tcmd *c = &f->cmds[f->n++];
    c->data = malloc(len ? len : 1);
    cr_assert(c->data != NULL);
    if (len) memcpy(c->data, data, len);
    c->len = len;
    c->index = index;
    c->time_ms = time_ms;
}

static int tApply(void *ctx, uint64_t index, int64_t time_ms,
                  const rglue_cmd *cmds, size_t n, rglue_reply_fn reply,
                  void *token)
{
    tfsm *f = ctx;
    pthread_mutex_lock(&f->mu);
    f->apply_calls++;
    if (index <= f->applied_index) {
        f->skipped_entries++;
        pthread_mutex_unlock(&f->mu);
        return 0;
    }
    if (f->fail_at != 0 && index >= f->fail_at) {
        pthread_mutex_unlock(&f->mu);
        return -5;
    }
    for (size_t i = 0; i < n; i++) {
        tfsmPush(f, cmds[i].data, cmds[i].len, index, time_ms);
    }
    if (f->probe != NULL && f->applied_entries < 256) {
        rglue_status st;
        rglue_get_status(f->probe, &st);
        f->proposed_at_apply[f->applied_entries] = st.entries_proposed;
    }
    f->applied_index = index;
    f->applied_entries++;
    pthread_mutex_unlock(&f->mu);
    /* Replies only once the state change is "stored". */
    for (size_t i = 0; i < n; i++) {
        char buf[128];
        size_t len = (size_t)snprintf(buf, sizeof buf, "OK:");
        size_t take = cmds[i].len < sizeof buf - len ? cmds[i].len
                                                     : sizeof buf - len;
        memcpy(buf + len, cmds[i].data, take);
        reply(token, i, buf, len + take);
    }
    return 0;
}

static uint64_t tAppliedIndex(void *ctx)
{
    tfsm *f = ctx;
    pthread_mutex_lock(&f->mu);
    uint64_t i = f->applied_index;
    pthread_mutex_unlock(&f->mu);
    return i;
}

static int tSync(void *ctx)
{
    tfsm *f = ctx;
    pthread_mutex_lock(&f->mu);
    f->syncs++;
    pthread_mutex_unlock(&f->mu);
    return 0;
}

/* Dump: "TFS1", u64 applied, u64 n, then n x (u64 index, i64 time, u32 len,
 * bytes), host byte order (tests only). */
static int tDump(void *ctx, void **buf, size_t *len, uint64_t *index)
{
    tfsm *f = ctx;
    pthread_mutex_lock(&f->mu);
    size_t size = 4 + 8 + 8;
    for (size_t i = 0; i < f->n; i++) size += 8 + 8 + 4 + f->cmds[i].len;
    unsigned char *p = malloc(size), *q = p;
    if (p == NULL) {
        pthread_mutex_unlock(&f->mu);
        return -1;
    }
    memcpy(q, "TFS1", 4);
    q += 4;
    memcpy(q, &f->applied_index, 8);
    q += 8;
    uint64_t n = f->n;
    memcpy(q, &n, 8);
    q += 8;
    for (size_t i = 0; i < f->n; i++) {
        uint32_t l = (uint32_t)f->cmds[i].len;
        memcpy(q, &f->cmds[i].index, 8);
        memcpy(q + 8, &f->cmds[i].time_ms, 8);
        memcpy(q + 16, &l, 4);
        memcpy(q + 20, f->cmds[i].data, l);
        q += 20 + l;
    }
    *buf = p;
    *len = size;
    *index = f->applied_index;
    f->dumps++;
    pthread_mutex_unlock(&f->mu);
    return 0;
}

static int tRestore(void *ctx, const void *buf, size_t len)
{
    tfsm *f = ctx;
    const unsigned char *p = buf;
    if (len < 20 || memcmp(p, "TFS1", 4) != 0) return -1;
    uint64_t applied, n;
    memcpy(&applied, p + 4, 8);
    memcpy(&n, p + 12, 8);
    pthread_mutex_lock(&f->mu);
    if (applied <= f->applied_index) {
        f->restore_noop++;
        pthread_mutex_unlock(&f->mu);
        return 0;
    }
    tfsmClear(f);
    size_t off = 20;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t index;
        int64_t t;
        uint32_t l;
        cr_assert(off + 20 <= len);
        memcpy(&index, p + off, 8);
        memcpy(&t, p + off + 8, 8);
        memcpy(&l, p + off + 16, 4);
        cr_assert(off + 20 + l <= len);
        tfsmPush(f, p + off + 20, l, index, t);
        off += 20 + l;
    }
    f->applied_index = applied;
    f->restore_full++;
    pthread_mutex_unlock(&f->mu);
    return 0;
}

static rglue_fsm hooksOf(tfsm *f)
{
    rglue_fsm h = {.ctx = f,
                   .apply = tApply,
                   .applied_index = tAppliedIndex,
                   .sync = tSync,
                   .dump = tDump,
                   .restore = tRestore};
    return h;
}

static bool tfsmEqual(tfsm *a, tfsm *b)
{
    if (a == b) return true;
    pthread_mutex_lock(&a->mu);
    pthread_mutex_lock(&b->mu);
    bool eq = a->n == b->n;
    for (size_t i = 0; eq && i < a->n; i++) {
        eq = a->cmds[i].len == b->cmds[i].len &&
             memcmp(a->cmds[i].data, b->cmds[i].data, a->cmds[i].len) == 0 &&
             a->cmds[i].index == b->cmds[i].index &&
             a->cmds[i].time_ms == b->cmds[i].time_ms;
    }
    pthread_mutex_unlock(&b->mu);
    pthread_mutex_unlock(&a->mu);
    return eq;
}

static size_t tfsmCount(tfsm *f)
{
    pthread_mutex_lock(&f->mu);
    size_t n = f->n;
    pthread_mutex_unlock(&f->mu);
    return n;
}

/* ---- harness ------------------------------------------------------------ */

#define MAX_NODES 5

typedef struct node {
    rglue *g;
    tfsm fsm;
    uint64_t id;
    char dir[512];
    char addr[64];
    bool stopped; /* the stop callback fired */
    int role;
    unsigned role_changes;
    unsigned fatal_count;
    char fatal_msg[256];
} node;

static struct {
    uv_loop_t loop;
    uv_timer_t tick;
    char root[256];
    int base_port;
    node nodes[MAX_NODES];
    int n_nodes;
    bool in_api; /* inside rglue_propose / rglue_read */
} W;

static void onRole(void *ctx, int role)
{
    node *n = ctx;
    n->role = role;
    n->role_changes++;
}

static void onFatal(void *ctx, int code, const char *msg)
{
    node *n = ctx;
    cr_expect_eq(code, RGLUE_EFAILED);
    n->fatal_count++;
    snprintf(n->fatal_msg, sizeof n->fatal_msg, "%s", msg);
}

static void tickCb(uv_timer_t *t)
{
    (void)t; /* only wakes uv_run(UV_RUN_ONCE) up */
}

static void rmTree(const char *path)
{
    DIR *d = opendir(path);
    if (d != NULL) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
                continue;
            }
            char sub[1024];
            snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
            struct stat st;
            if (lstat(sub, &st) == 0 && S_ISDIR(st.st_mode)) rmTree(sub);
            else unlink(sub);
        }
        closedir(d);
    }
    rmdir(path);
}

static void setup(void)
{
    signal(SIGPIPE, SIG_IGN);
    memset(&W, 0, sizeof W);
    cr_assert_eq(uv_loop_init(&W.loop), 0);
    cr_assert_eq(uv_timer_init(&W.loop, &W.tick), 0);
    cr_assert_eq(uv_timer_start(&W.tick, tickCb, 5, 5), 0);
    snprintf(W.root, sizeof W.root, "/tmp/rglue-test-XXXXXX");
    cr_assert(mkdtemp(W.root) != NULL);
    /* A block of ports reserved for this test's process (test_ports.h):
     * no other test binds them, and no outgoing connection does. */
    W.base_port = test_port_block();
    cr_assert(W.base_port > 0, "no test port block free");
}

static void initNodes(int n)
{
    W.n_nodes = n;
    for (int i = 0; i < n; i++) {
        node *x = &W.nodes[i];
        tfsmInit(&x->fsm);
        x->id = (uint64_t)i + 1;
        snprintf(x->dir, sizeof x->dir, "%s/n%d/raft", W.root, i + 1);
        snprintf(x->addr, sizeof x->addr, "127.0.0.1:%d", W.base_port + i);
        x->stopped = true;
    }
}

typedef bool (*pred_fn)(void *arg);

/* Run the loop until @pred holds or @ms elapse. */
static bool runUntil(pred_fn pred, void *arg, unsigned ms)
{
    uv_update_time(&W.loop);
    uint64_t deadline = uv_now(&W.loop) + ms;
    while (!pred(arg)) {
        if (uv_now(&W.loop) > deadline) return false;
        uv_run(&W.loop, UV_RUN_ONCE);
    }
    return true;
}

static void runFor(unsigned ms)
{
    uv_update_time(&W.loop);
    uint64_t deadline = uv_now(&W.loop) + ms;
    while (uv_now(&W.loop) <= deadline) uv_run(&W.loop, UV_RUN_ONCE);
}

typedef struct startOpts {
    unsigned threshold, trailing;
    size_t max_entry_bytes;
    unsigned max_inflight;
    bool join;
} startOpts;

static rglue_config configOf(node *x, int cluster, const startOpts *o,
                             rglue_peer *peers)
{
    rglue_config c = {0};
    c.loop = &W.loop;
    c.id = x->id;
    c.dir = x->dir;
    c.address = x->addr;
    if (cluster > 1) {
        for (int i = 0; i < cluster; i++) {
            peers[i].id = W.nodes[i].id;
            peers[i].address = W.nodes[i].addr;
        }
        c.peers = peers;
        c.n_peers = (size_t)cluster;
    }
    c.election_timeout_ms = 400;
    c.heartbeat_timeout_ms = 40;
    if (o != NULL) {
        c.snapshot_threshold = o->threshold;
        c.snapshot_trailing = o->trailing;
        c.max_entry_bytes = o->max_entry_bytes;
        c.max_inflight = o->max_inflight;
        c.join = o->join;
    }
    c.on_role = onRole;
    c.on_fatal = onFatal;
    c.cb_ctx = x;
    return c;
}

static int startNode(int i, int cluster, const startOpts *o, char *err,
                     size_t errlen)
{
    node *x = &W.nodes[i];
    rglue_peer peers[MAX_NODES];
    rglue_config c = configOf(x, cluster, o, peers);
    rglue_fsm h = hooksOf(&x->fsm);
    x->role = 0;
    int rc = rglue_start(&c, &h, &x->g, err, errlen);
    if (rc == 0) x->stopped = false;
    return rc;
}

static void mustStart(int i, int cluster, const startOpts *o)
{
    char err[512];
    int rc = startNode(i, cluster, o, err, sizeof err);
    cr_assert_eq(rc, 0, "start node %d: %s (%s)", i + 1, rglue_strerror(rc),
                 err);
}

static void stopCb(void *arg)
{
    node *x = arg;
    x->stopped = true;
    x->g = NULL;
}

static bool nodeStopped(void *arg)
{
    return ((node *)arg)->stopped;
}

static void stopNode(int i)
{
    node *x = &W.nodes[i];
    if (x->stopped) return;
    rglue_stop(x->g, stopCb, x);
    cr_assert(runUntil(nodeStopped, x, 10000), "node %d did not stop", i + 1);
}

static void walkClose(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h)) uv_close(h, NULL);
}

static void teardown(void)
{
    for (int i = 0; i < W.n_nodes; i++) {
        node *x = &W.nodes[i];
        if (!x->stopped) {
            rglue_stop(x->g, stopCb, x);
            runUntil(nodeStopped, x, 10000);
        }
    }
    uv_timer_stop(&W.tick);
    uv_close((uv_handle_t *)&W.tick, NULL);
    uv_run(&W.loop, UV_RUN_DEFAULT);
    int rc = uv_loop_close(&W.loop);
    if (rc != 0) {
        /* Report, then release whatever is left so the process exits. */
        uv_walk(&W.loop, walkClose, NULL);
        uv_run(&W.loop, UV_RUN_DEFAULT);
        uv_loop_close(&W.loop);
    }
    for (int i = 0; i < W.n_nodes; i++) tfsmFree(&W.nodes[i].fsm);
    rmTree(W.root);
    cr_assert_eq(rc, 0, "uv_loop_close: %s (handles left open)",
                 uv_strerror(rc));
}

static bool isRole(void *arg)
{
    node *x = arg;
    return x->g != NULL && x->role == RGLUE_ROLE_LEADER;
}

/* Index of the single leader among running nodes, or -1. */
static int leaderIndex(void)
{
    int found = -1;
    for (int i = 0; i < W.n_nodes; i++) {
        node *x = &W.nodes[i];
        if (x->stopped) continue;
        rglue_status st;
        rglue_get_status(x->g, &st);
        if (st.role == RGLUE_ROLE_LEADER) {
            if (found >= 0) return -1;
            found = i;
        }
    }
    return found;
}

static bool haveLeader(void *arg)
{
    (void)arg;
    int l = leaderIndex();
    return l >= 0 && W.nodes[l].role == RGLUE_ROLE_LEADER;
}

static int waitLeader(void)
{
    cr_assert(runUntil(haveLeader, NULL, 15000), "no leader elected");
    return leaderIndex();
}

/* ---- proposal bookkeeping ----------------------------------------------- */

#define MAX_PROPS 4000

typedef struct prop {
    int idx;
    int calls;
    int status;
    char reply[160];
    size_t reply_len;
    int order; /* position among completions */
} prop;

static prop P[MAX_PROPS];
static int n_props, n_done;

static void doneCb(void *arg, int status, const void *reply, size_t len)
{
    prop *p = arg;
    cr_expect(!W.in_api, "callback fired from inside the API call");
    p->calls++;
    p->status = status;
    p->order = n_done++;
    if (status == 0) {
        cr_expect(reply != NULL || len == 0);
        p->reply_len = len < sizeof p->reply ? len : sizeof p->reply;
        memcpy(p->reply, reply, p->reply_len);
    } else {
        cr_expect(reply == NULL && len == 0);
    }
}

static int propose(rglue *g, const void *data, size_t len)
{
    cr_assert(n_props < MAX_PROPS);
    prop *p = &P[n_props];
    memset(p, 0, sizeof *p);
    p->idx = n_props;
    W.in_api = true;
    int rc = rglue_propose(g, data, len, doneCb, p);
    W.in_api = false;
    if (rc == 0) n_props++;
    return rc;
}

static int proposeStr(rglue *g, const char *fmt, int i)
{
    char buf[64];
    int len = snprintf(buf, sizeof buf, fmt, i);
    return propose(g, buf, (size_t)len);
}

static bool allDone(void *arg)
{
    (void)arg;
    return n_done == n_props;
}

typedef struct readReq {
    int calls;
    int status;
} readReq;

static void readCb(void *arg, int status)
{
    readReq *r = arg;
    cr_expect(!W.in_api, "read callback fired from inside the API call");
    r->calls++;
    r->status = status;
}

static int readOn(rglue *g, readReq *r)
{
    memset(r, 0, sizeof *r);
    W.in_api = true;
    int rc = rglue_read(g, readCb, r);
    W.in_api = false;
    return rc;
}

static bool readDone(void *arg)
{
    return ((readReq *)arg)->calls > 0;
}

typedef struct countWait {
    tfsm *f;
    size_t n;
} countWait;

static bool fsmHas(void *arg)
{
    countWait *c = arg;
    return tfsmCount(c->f) >= c->n;
}

static void waitCount(int i, size_t n)
{
    countWait c = {&W.nodes[i].fsm, n};
    cr_assert(runUntil(fsmHas, &c, 15000), "node %d has %zu of %zu commands",
              i + 1, tfsmCount(&W.nodes[i].fsm), n);
}

static int64_t nowMs(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- codec -------------------------------------------------------------- */

Test(rglue_codec, entry_roundtrip_and_padding)
{
    for (size_t ncmd = 0; ncmd < 5; ncmd++) {
        for (size_t clen = 0; clen < 20; clen++) {
            size_t cmd_bytes = ncmd * (RG_CMD_HEADER_LEN + clen);
            size_t size = rg_entry_size(cmd_bytes);
            cr_assert_eq(size % 8, 0);
            cr_assert(size >= RG_ENTRY_HEADER_LEN + cmd_bytes);
            cr_assert(size < RG_ENTRY_HEADER_LEN + cmd_bytes + 8);
            unsigned char *buf = malloc(size);
            memset(buf, 0xAA, size);
            rg_entry_header h = {.count = (uint32_t)ncmd,
                                 .token = 0x1122334455667788ull,
                                 .seq = 42,
                                 .time_ms = -7};
            unsigned char *p = rg_entry_put_header(buf, &h);
            for (size_t k = 0; k < ncmd; k++) {
                unsigned char c[32];
                memset(c, (int)('a' + k), clen);
                p = rg_entry_put_cmd(p, c, (uint32_t)clen);
            }
            rg_entry_put_padding(buf, p, size);
            rg_entry_header d;
            cr_assert_eq(rg_entry_decode_header(buf, size, &d), 0);
            cr_assert_eq(d.count, ncmd);
            cr_assert_eq(d.token, h.token);
            cr_assert_eq(d.seq, 42);
            cr_assert_eq(d.time_ms, -7);
            rglue_cmd cmds[8];
            cr_assert_eq(rg_entry_decode_cmds(buf, size, &d, cmds), 0);
            for (size_t k = 0; k < ncmd; k++) {
                cr_assert_eq(cmds[k].len, clen);
                for (size_t b = 0; b < clen; b++) {
                    cr_assert_eq(((const unsigned char *)cmds[k].data)[b],
                                 'a' + k);
                }
            }
            /* The magic is the bytes "RGL1". */
            cr_assert_eq(memcmp(buf, "RGL1", 4), 0);
            free(buf);
        }
    }
}

Test(rglue_codec, malformed_entries_rejected)
{
    unsigned char buf[64];
    rg_entry_header h = {.count = 1, .token = 1, .seq = 1, .time_ms = 1};
    unsigned char *p = rg_entry_put_header(buf, &h);
    p = rg_entry_put_cmd(p, "abc", 3);
    size_t size = rg_entry_size(RG_CMD_HEADER_LEN + 3);
    rg_entry_put_padding(buf, p, size);
    rg_entry_header d;
    rglue_cmd cmds[4];
    cr_assert_eq(rg_entry_decode_header(buf, size, &d), 0);
    cr_assert_eq(rg_entry_decode_cmds(buf, size, &d, cmds), 0);

    /* Not a multiple of 8, too short, wrong magic. */
    cr_assert_eq(rg_entry_decode_header(buf, size - 1, &d), -1);
    cr_assert_eq(rg_entry_decode_header(buf, 24, &d), -1);
    cr_assert_eq(rg_entry_decode_header(NULL, 0, &d), -1);
    buf[0] ^= 1;
    cr_assert_eq(rg_entry_decode_header(buf, size, &d), -1);
    buf[0] ^= 1;
    /* Non-zero padding. */
    buf[size - 1] = 1;
    cr_assert_eq(rg_entry_decode_header(buf, size, &d), 0);
    cr_assert_eq(rg_entry_decode_cmds(buf, size, &d, cmds), -1);
    buf[size - 1] = 0;
    /* A length running past the end. */
    buf[RG_ENTRY_HEADER_LEN] = 200;
    cr_assert_eq(rg_entry_decode_cmds(buf, size, &d, cmds), -1);
    buf[RG_ENTRY_HEADER_LEN] = 3;
    /* A count larger than the bytes can hold. */
    buf[4] = 200;
    cr_assert_eq(rg_entry_decode_header(buf, size, &d), -1);
    /* Fewer commands than bytes: 8+ trailing bytes are not padding. */
    memset(buf, 0, sizeof buf);
    h.count = 0;
    rg_entry_put_header(buf, &h);
    cr_assert_eq(rg_entry_decode_header(buf, 48, &d), 0);
    cr_assert_eq(rg_entry_decode_cmds(buf, 48, &d, cmds), -1);
    cr_assert_eq(rg_entry_decode_cmds(buf, 40, &d, cmds), -1);
    cr_assert_eq(rg_entry_decode_cmds(buf, 32, &d, cmds), 0);
}

Test(rglue_codec, marker)
{
    unsigned char m[RG_MARKER_LEN];
    rg_marker_encode(m, 0x0102030405060708ull);
    cr_assert_eq(memcmp(m, "RGLMARK1", 8), 0);
    cr_assert_eq(m[8], 0x08); /* little-endian */
    uint64_t idx = 0;
    cr_assert(rg_marker_decode(m, sizeof m, &idx));
    cr_assert_eq(idx, 0x0102030405060708ull);
    cr_assert(!rg_marker_decode(m, sizeof m - 1, &idx));
    cr_assert(!rg_marker_decode(NULL, 16, &idx));
    m[0] = 'X';
    cr_assert(!rg_marker_decode(m, sizeof m, &idx));
}

Test(rglue_codec, strerror_covers_codes)
{
#define CHECK(name, value, text) \
    cr_assert_str_eq(rglue_strerror(name), text);
    RGLUE_ERRORS(CHECK)
#undef CHECK
    cr_assert_str_eq(rglue_strerror(0), "success");
    cr_assert_str_eq(rglue_strerror(12345), "unknown rglue error");
}

/* ---- start -------------------------------------------------------------- */

Test(rglue, invalid_config_rejected,
     .init = setup, .fini = teardown, .timeout = 90)
{
    initNodes(1);
    node *x = &W.nodes[0];
    rglue_peer peers[MAX_NODES];
    rglue_config c = configOf(x, 1, NULL, peers);
    rglue_fsm h = hooksOf(&x->fsm);
    char err[256];
    rglue *g = NULL;

    rglue_config bad = c;
    bad.id = 0;
    cr_assert_eq(rglue_start(&bad, &h, &g, err, sizeof err), RGLUE_EINVAL);
    cr_assert(strstr(err, "id") != NULL, "%s", err);
    cr_assert_null(g);

    bad = c;
    bad.heartbeat_timeout_ms = 500;
    bad.election_timeout_ms = 400;
    cr_assert_eq(rglue_start(&bad, &h, &g, err, sizeof err), RGLUE_EINVAL);
    cr_assert(strstr(err, "heartbeat") != NULL, "%s", err);

    rglue_peer others[1] = {{.id = 7, .address = "127.0.0.1:1"}};
    bad = c;
    bad.peers = others;
    bad.n_peers = 1;
    cr_assert_eq(rglue_start(&bad, &h, &g, err, sizeof err), RGLUE_EINVAL);
    cr_assert(strstr(err, "include this member") != NULL, "%s", err);

    rglue_fsm hb = h;
    hb.dump = NULL;
    cr_assert_eq(rglue_start(&c, &hb, &g, err, sizeof err), RGLUE_EINVAL);

    bad = c;
    bad.dir = "/proc/rglue-cannot-exist/raft";
    cr_assert_neq(rglue_start(&bad, &h, &g, err, sizeof err), 0);
    cr_assert(strstr(err, "data directory") != NULL, "%s", err);
    cr_assert_null(g);
}

Test(rglue, start_fails_cleanly_when_port_taken,
     .init = setup, .fini = teardown, .timeout = 90)
{
    initNodes(1);
    static uv_tcp_t blocker; /* closed by teardown's loop run */
    struct sockaddr_in sa;
    uv_ip4_addr("127.0.0.1", W.base_port, &sa);
    cr_assert_eq(uv_tcp_init(&W.loop, &blocker), 0);
    cr_assert_eq(uv_tcp_bind(&blocker, (const struct sockaddr *)&sa, 0), 0);
    cr_assert_eq(uv_listen((uv_stream_t *)&blocker, 8, NULL), 0);

    char err[512];
    int rc = startNode(0, 1, NULL, err, sizeof err);
    cr_assert_eq(rc, RGLUE_ERAFT);
    cr_assert(strstr(err, "cannot listen on") != NULL, "%s", err);
    cr_assert_null(W.nodes[0].g);
    uv_close((uv_handle_t *)&blocker, NULL);
    /* teardown checks that everything raft opened got closed */
}

/* ---- single voter ------------------------------------------------------- */

Test(rglue, single_voter_group_commit,
     .init = setup, .fini = teardown, .timeout = 90)
{
    initNodes(1);
    mustStart(0, 1, NULL);
    node *x = &W.nodes[0];
    cr_assert(runUntil(isRole, x, 5000), "single voter did not lead");
    cr_assert_geq(x->role_changes, 1);

    int64_t t0 = nowMs();
    /* 1,000 commands over 10 loop iterations. */
    for (int round = 0; round < 10; round++) {
        for (int i = 0; i < 100; i++) {
            cr_assert_eq(proposeStr(x->g, "cmd-%d", round * 100 + i), 0);
        }
        uv_run(&W.loop, UV_RUN_NOWAIT);
    }
    cr_assert(runUntil(allDone, NULL, 15000), "%d of %d done", n_done,
              n_props);
    int64_t t1 = nowMs();

    for (int i = 0; i < n_props; i++) {
        char want[64];
        int len = snprintf(want, sizeof want, "OK:cmd-%d", i);
        cr_assert_eq(P[i].calls, 1);
        cr_assert_eq(P[i].status, 0, "cmd %d: %s", i,
                     rglue_strerror(P[i].status));
        cr_assert_eq(P[i].order, i, "replies out of order");
        cr_assert_eq(P[i].reply_len, (size_t)len);
        cr_assert_eq(memcmp(P[i].reply, want, (size_t)len), 0);
    }
    rglue_status st;
    rglue_get_status(x->g, &st);
    cr_assert_eq(st.commands_proposed, 1000);
    cr_assert(st.entries_proposed >= 1 && st.entries_proposed <= 40,
              "entries_proposed %llu", (unsigned long long)st.entries_proposed);
    cr_assert_eq(st.role, RGLUE_ROLE_LEADER);
    cr_assert_eq(st.leader_id, 1);
    cr_assert_str_eq(st.leader_address, x->addr);
    cr_assert_eq(st.n_members, 1);
    cr_assert_eq(st.members[0].id, 1);
    cr_assert_eq(st.members[0].role, 1 /* RAFT_VOTER */);
    cr_assert(!st.failed);

    /* The state machine saw every command once, in order, at increasing
     * indexes, stamped with the leader's clock. */
    tfsm *f = &x->fsm;
    cr_assert_eq(f->n, 1000);
    uint64_t prev = 0;
    for (size_t i = 0; i < f->n; i++) {
        char want[64];
        int len = snprintf(want, sizeof want, "cmd-%zu", i);
        cr_assert_eq(f->cmds[i].len, (size_t)len);
        cr_assert_eq(memcmp(f->cmds[i].data, want, (size_t)len), 0);
        cr_assert(f->cmds[i].index >= prev);
        prev = f->cmds[i].index;
        cr_assert(f->cmds[i].time_ms >= t0 && f->cmds[i].time_ms <= t1,
                  "time %lld outside [%lld, %lld]",
                  (long long)f->cmds[i].time_ms, (long long)t0, (long long)t1);
    }
    cr_assert_eq(f->applied_entries, st.entries_proposed);
    cr_assert_eq(st.applied_index, f->applied_index);
    cr_assert_eq(st.applied_index, st.last_index);

    /* Caught up: a sole voter reads without a barrier. */
    cr_assert(rglue_can_read_now(x->g));
    readReq r;
    cr_assert_eq(readOn(x->g, &r), 0);
    cr_assert_eq(r.calls, 0);
    cr_assert(runUntil(readDone, &r, 5000));
    cr_assert_eq(r.calls, 1);
    cr_assert_eq(r.status, 0);
    rglue_get_status(x->g, &st);
    cr_assert_geq(st.barriers, 1);

    /* A queued write makes the next read wait for it. */
    cr_assert_eq(proposeStr(x->g, "late-%d", 0), 0);
    cr_assert(!rglue_can_read_now(x->g));
    cr_assert(runUntil(allDone, NULL, 5000));
}

/* A sole voter forms an entry only when its log is not being written: what
 * queues meanwhile, over any number of loop turns, leaves as one entry the
 * moment the write completes, before the written entry applies (so the next
 * write overlaps that apply). */
Test(rglue, single_voter_forms_next_entry_when_its_write_completes,
     .init = setup, .fini = teardown, .timeout = 90)
{
    initNodes(1);
    startOpts o = {.max_inflight = 2};
    mustStart(0, 1, &o);
    node *x = &W.nodes[0];
    cr_assert(runUntil(isRole, x, 5000), "single voter did not lead");
    tfsm *f = &x->fsm;
    f->probe = x->g;

    /* Whether a write completes within one loop turn is the disk's choice:
     * try until two turns pass with the first entry still on disk. */
    bool seen = false;
    for (int attempt = 0; attempt < 50 && !seen; attempt++) {
        unsigned applied = f->applied_entries;
        rglue_status st;
        rglue_get_status(x->g, &st);
        uint64_t proposed = st.entries_proposed;
        cr_assert_eq(proposeStr(x->g, "first-%d", attempt), 0);
        uv_run(&W.loop, UV_RUN_NOWAIT); /* forms it, starts its write */
        bool pending = f->applied_entries == applied;
        for (int i = 0; i < 20; i++) {
            cr_assert_eq(proposeStr(x->g, "a-%d", i), 0);
        }
        uv_run(&W.loop, UV_RUN_NOWAIT); /* holds these */
        pending = pending && f->applied_entries == applied;
        for (int i = 0; i < 20; i++) {
            cr_assert_eq(proposeStr(x->g, "b-%d", i), 0);
        }
        cr_assert(runUntil(allDone, NULL, 10000));
        rglue_get_status(x->g, &st);
        if (!pending) continue;
        seen = true;
        /* The first entry alone, then all forty in one. */
        cr_assert_eq(st.entries_proposed, proposed + 2);
        cr_assert_eq(f->applied_entries, applied + 2);
        /* The second was proposed before the first applied. */
        cr_assert_eq(f->proposed_at_apply[applied], proposed + 2);
    }
    cr_assert(seen, "every write completed within a loop turn");
    for (int i = 0; i < n_props; i++) cr_assert_eq(P[i].status, 0);
}

/* A read issued after writes is served only once they are applied, even when
 * they trickle into the log (one command per entry, one entry in flight). */
Test(rglue, read_waits_for_earlier_writes,
     .init = setup, .fini = teardown, .timeout = 90)
{
    initNodes(1);
    node *x = &W.nodes[0];
    startOpts o = {.max_entry_bytes = 1, .max_inflight = 1};
    mustStart(0, 1, &o);
    cr_assert(runUntil(isRole, x, 5000));
    for (int i = 0; i < 50; i++) cr_assert_eq(proposeStr(x->g, "w-%d", i), 0);
    cr_assert(!rglue_can_read_now(x->g));
    readReq r;
    cr_assert_eq(readOn(x->g, &r), 0);
    while (r.calls == 0) {
        uv_run(&W.loop, UV_RUN_ONCE);
        cr_assert(r.calls == 0 || n_done == 50,
                  "read done after %d of 50 writes", n_done);
    }
    cr_assert_eq(r.status, 0);
    cr_assert_eq(x->fsm.n, 50);
}

Test(rglue, restart_reapplies_nothing,
     .init = setup, .fini = teardown, .timeout = 90)
{
    initNodes(1);
    node *x = &W.nodes[0];
    mustStart(0, 1, NULL);
    cr_assert(runUntil(isRole, x, 5000));
    for (int i = 0; i < 50; i++) {
        cr_assert_eq(proposeStr(x->g, "a-%d", i), 0);
        if (i % 7 == 0) uv_run(&W.loop, UV_RUN_NOWAIT);
    }
    cr_assert(runUntil(allDone, NULL, 10000));
    unsigned applied = x->fsm.applied_entries;
    uint64_t index = x->fsm.applied_index;
    stopNode(0);

    mustStart(0, 1, NULL);
    cr_assert(runUntil(isRole, x, 5000));
    /* raft replayed its log into the state machine, which skipped it all. */
    cr_assert_eq(x->fsm.applied_entries, applied);
    cr_assert_geq(x->fsm.skipped_entries, applied);
    cr_assert_eq(x->fsm.applied_index, index);
    cr_assert_eq(x->fsm.n, 50);

    for (int i = 50; i < 60; i++) cr_assert_eq(proposeStr(x->g, "a-%d", i), 0);
    cr_assert(runUntil(allDone, NULL, 10000));
    cr_assert_eq(x->fsm.n, 60);
    for (int i = 0; i < 60; i++) {
        char want[32];
        int len = snprintf(want, sizeof want, "a-%d", i);
        cr_assert_eq(memcmp(x->fsm.cmds[i].data, want, (size_t)len), 0);
        cr_assert_eq(P[i].status, 0);
    }
    cr_assert_gt(x->fsm.applied_index, index);
}

/* Commands of 1..17 bytes survive the raft log: a fresh state machine rebuilt
 * from the log alone (no snapshot yet) gets them byte for byte. With auto
 * recovery off, an unreadable segment would fail the restart. */
Test(rglue, odd_sizes_roundtrip_through_the_log,
     .init = setup, .fini = teardown, .timeout = 90)
{
    initNodes(1);
    node *x = &W.nodes[0];
    startOpts one = {.max_entry_bytes = 1}; /* one command per entry */
    mustStart(0, 1, &one);
    cr_assert(runUntil(isRole, x, 5000));
    unsigned char data[17];
    for (size_t len = 1; len <= 17; len++) {
        for (size_t b = 0; b < len; b++) {
            data[b] = (unsigned char)(len * 31 + b);
        }
        cr_assert_eq(propose(x->g, data, len), 0);
    }
    cr_assert_eq(propose(x->g, NULL, 0), 0); /* empty command */
    cr_assert(runUntil(allDone, NULL, 10000));
    for (int i = 0; i < n_props; i++) cr_assert_eq(P[i].status, 0);
    rglue_status st;
    rglue_get_status(x->g, &st);
    cr_assert_eq(st.entries_proposed, 18);
    stopNode(0);

    tfsm saved = x->fsm; /* keep the original; replay into a fresh one */
    tfsmInit(&x->fsm);
    mustStart(0, 1, &one);
    cr_assert(runUntil(isRole, x, 5000));
    countWait c = {&x->fsm, 18};
    cr_assert(runUntil(fsmHas, &c, 5000));
    cr_assert(tfsmEqual(&saved, &x->fsm));
    for (size_t len = 1; len <= 17; len++) {
        cr_assert_eq(x->fsm.cmds[len - 1].len, len);
    }
    cr_assert_eq(x->fsm.cmds[17].len, 0);
    tfsmFree(&saved);
}

Test(rglue, marker_snapshot_restart_and_lost_state_refused,
     .init = setup, .fini = teardown, .timeout = 90)
{
    initNodes(1);
    node *x = &W.nodes[0];
    startOpts o = {.threshold = 16, .trailing = 8, .max_entry_bytes = 1};
    mustStart(0, 1, &o);
    cr_assert(runUntil(isRole, x, 5000));
    for (int i = 0; i < 100; i++) cr_assert_eq(proposeStr(x->g, "m-%d", i), 0);
    cr_assert(runUntil(allDone, NULL, 10000));
    rglue_status st;
    rglue_get_status(x->g, &st);
    cr_assert_geq(st.snapshots_taken, 1);
    cr_assert_geq(x->fsm.syncs, st.snapshots_taken);
    uint64_t index = x->fsm.applied_index;
    stopNode(0);

    /* Intact state: the marker is at or below it. */
    mustStart(0, 1, &o);
    cr_assert(runUntil(isRole, x, 5000));
    cr_assert_eq(x->fsm.applied_index, index);
    cr_assert_eq(x->fsm.restore_full, 0);
    cr_assert_eq(x->fsm.n, 100);
    stopNode(0);

    /* The state store "lost" updates past the last marker: refuse to start
     * rather than serve a state with a hole. */
    pthread_mutex_lock(&x->fsm.mu);
    for (size_t i = 5; i < x->fsm.n; i++) free(x->fsm.cmds[i].data);
    x->fsm.n = 5;
    x->fsm.applied_index = 5;
    pthread_mutex_unlock(&x->fsm.mu);
    char err[512];
    int rc = startNode(0, 1, &o, err, sizeof err);
    cr_assert_eq(rc, RGLUE_EFAILED, "%s", rglue_strerror(rc));
    cr_assert(strstr(err, "lost updates") != NULL, "%s", err);
    cr_assert_null(x->g);
}

Test(rglue, stop_with_pending_work_fires_each_callback_once,
     .init = setup, .fini = teardown, .timeout = 90)
{
    initNodes(1);
    node *x = &W.nodes[0];
    startOpts o = {.max_entry_bytes = 64, .max_inflight = 2};
    mustStart(0, 1, &o);
    cr_assert(runUntil(isRole, x, 5000));
    for (int i = 0; i < 300; i++) cr_assert_eq(proposeStr(x->g, "s-%d", i), 0);
    uv_run(&W.loop, UV_RUN_NOWAIT); /* some in flight, most queued */
    for (int i = 300; i < 600; i++) {
        cr_assert_eq(proposeStr(x->g, "s-%d", i), 0);
    }
    readReq r;
    cr_assert_eq(readOn(x->g, &r), 0);
    /* The loop iteration above may already have completed a few (a fast
     * disk): what matters is that none completes inside rglue_stop. */
    int doneBefore = n_done;
    W.in_api = true;
    rglue_stop(x->g, stopCb, x);
    W.in_api = false;
    cr_assert_eq(n_done, doneBefore, "callbacks fired inside rglue_stop");
    cr_assert_eq(rglue_propose(x->g, "x", 1, doneCb, &P[0]), RGLUE_ESHUTDOWN);
    cr_assert(runUntil(nodeStopped, x, 10000));
    cr_assert_eq(n_done, n_props);
    int ok = 0, unknown = 0, shutdown = 0;
    for (int i = 0; i < n_props; i++) {
        cr_assert_eq(P[i].calls, 1, "cmd %d fired %d times", i, P[i].calls);
        if (P[i].status == 0) ok++;
        else if (P[i].status == RGLUE_EUNKNOWN) unknown++;
        else if (P[i].status == RGLUE_ESHUTDOWN) shutdown++;
        else cr_assert_fail("unexpected status %d", P[i].status);
    }
    cr_assert_gt(shutdown, 0);
    cr_assert_eq(r.calls, 1);
    cr_assert(r.status == 0 || r.status == RGLUE_ESHUTDOWN);
    /* Everything applied got its reply. */
    cr_assert_eq((size_t)ok, x->fsm.n, "ok %d applied %zu unknown %d", ok,
                 x->fsm.n, unknown);
}

Test(rglue, state_machine_failure_fail_stops,
     .init = setup, .fini = teardown, .timeout = 90)
{
    initNodes(1);
    node *x = &W.nodes[0];
    startOpts o = {.max_entry_bytes = 1, .max_inflight = 1};
    mustStart(0, 1, &o);
    cr_assert(runUntil(isRole, x, 5000));
    cr_assert_eq(proposeStr(x->g, "f-%d", 0), 0);
    cr_assert(runUntil(allDone, NULL, 5000));
    /* Entries are one command each: the third from now fails. */
    x->fsm.fail_at = x->fsm.applied_index + 3;
    for (int i = 1; i < 10; i++) cr_assert_eq(proposeStr(x->g, "f-%d", i), 0);
    cr_assert(runUntil(allDone, NULL, 5000), "%d of %d", n_done, n_props);
    int ok = 0;
    for (int i = 0; i < n_props; i++) {
        cr_assert_eq(P[i].calls, 1);
        if (P[i].status == 0) {
            ok++;
            cr_assert_eq(ok - 1, i, "a success after a failure");
        } else {
            cr_assert(P[i].status == RGLUE_EUNKNOWN ||
                          P[i].status == RGLUE_EFAILED,
                      "cmd %d: %s", i, rglue_strerror(P[i].status));
        }
    }
    cr_assert_eq(ok, 3);
    cr_assert_eq(x->fsm.n, 3);
    cr_assert_eq(x->fatal_count, 1);
    cr_assert(strstr(x->fatal_msg, "failed to apply") != NULL, "%s",
              x->fatal_msg);
    rglue_status st;
    rglue_get_status(x->g, &st);
    cr_assert(st.failed);
    cr_assert_str_eq(st.failure, x->fatal_msg);
    cr_assert_eq(rglue_propose(x->g, "y", 1, doneCb, &P[0]), RGLUE_EFAILED);
    readReq r;
    cr_assert_eq(readOn(x->g, &r), RGLUE_EFAILED);
    cr_assert(!rglue_can_read_now(x->g));
    /* The state machine is frozen: nothing past the failure is applied. */
    runFor(200);
    cr_assert_eq(x->fsm.n, 3);
    cr_assert_eq(x->fatal_count, 1);
}

/* ---- three members in one loop ------------------------------------------ */

/* Every established TCP connection between our raft ports has TCP_NODELAY. */
static int checkNodelay(void)
{
    DIR *d = opendir("/proc/self/fd");
    cr_assert(d != NULL);
    int checked = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        int fd = atoi(e->d_name);
        if (e->d_name[0] == '.' || fd == dirfd(d)) continue;
        int type = 0, listening = 0;
        socklen_t sl = sizeof type;
        if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &sl) != 0) continue;
        if (type != SOCK_STREAM) continue;
        sl = sizeof listening;
        if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &sl) != 0 ||
            listening) {
            continue;
        }
        struct sockaddr_in a, b;
        socklen_t al = sizeof a, bl = sizeof b;
        if (getsockname(fd, (struct sockaddr *)&a, &al) != 0 ||
            getpeername(fd, (struct sockaddr *)&b, &bl) != 0 ||
            a.sin_family != AF_INET) {
            continue;
        }
        int pa = ntohs(a.sin_port), pb = ntohs(b.sin_port);
        bool ours = (pa >= W.base_port && pa < W.base_port + W.n_nodes) ||
                    (pb >= W.base_port && pb < W.base_port + W.n_nodes);
        if (!ours) continue;
        int nd = 0;
        sl = sizeof nd;
        cr_assert_eq(getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &nd, &sl), 0);
        cr_assert(nd != 0, "raft connection %d<->%d without TCP_NODELAY", pa,
                  pb);
        checked++;
    }
    closedir(d);
    return checked;
}

static void startCluster(const startOpts *o)
{
    initNodes(3);
    for (int i = 0; i < 3; i++) mustStart(i, 3, o);
}

Test(rglue, three_members_replicate,
     .init = setup, .fini = teardown, .timeout = 90)
{
    startCluster(NULL);
    int l = waitLeader();
    cr_assert_geq(l, 0);
    node *leader = &W.nodes[l];
    node *follower = &W.nodes[(l + 1) % 3];

    cr_assert_eq(rglue_propose(follower->g, "x", 1, doneCb, &P[0]),
                 RGLUE_ENOTLEADER);
    readReq r;
    cr_assert_eq(readOn(follower->g, &r), RGLUE_ENOTLEADER);
    cr_assert(!rglue_can_read_now(follower->g));
    cr_assert_eq(n_done, 0);

    for (int round = 0; round < 4; round++) {
        for (int i = 0; i < 50; i++) {
            cr_assert_eq(proposeStr(leader->g, "c-%d", round * 50 + i), 0);
        }
        uv_run(&W.loop, UV_RUN_NOWAIT);
    }
    cr_assert(runUntil(allDone, NULL, 15000), "%d of %d", n_done, n_props);
    for (int i = 0; i < n_props; i++) {
        char want[32];
        int len = snprintf(want, sizeof want, "OK:c-%d", i);
        cr_assert_eq(P[i].status, 0, "cmd %d: %s", i,
                     rglue_strerror(P[i].status));
        cr_assert_eq(P[i].order, i);
        cr_assert_eq(memcmp(P[i].reply, want, (size_t)len), 0);
    }
    for (int i = 0; i < 3; i++) waitCount(i, 200);
    cr_assert(tfsmEqual(&W.nodes[0].fsm, &W.nodes[1].fsm));
    cr_assert(tfsmEqual(&W.nodes[0].fsm, &W.nodes[2].fsm));

    /* Not a sole voter: every read takes a barrier. Reads queued together
     * share one; a read arriving while it is in flight waits for the next. */
    cr_assert(!rglue_can_read_now(leader->g));
    rglue_status st;
    rglue_get_status(leader->g, &st);
    uint64_t barriers0 = st.barriers;
    readReq r1, r2, r3;
    cr_assert_eq(readOn(leader->g, &r1), 0);
    cr_assert_eq(readOn(leader->g, &r2), 0);
    uv_run(&W.loop, UV_RUN_NOWAIT); /* the barrier is issued, not committed */
    rglue_get_status(leader->g, &st);
    cr_assert_eq(st.barriers, barriers0 + 1);
    cr_assert_eq(readOn(leader->g, &r3), 0);
    cr_assert(runUntil(readDone, &r3, 5000));
    cr_assert_eq(r1.calls, 1);
    cr_assert_eq(r2.calls, 1);
    cr_assert_eq(r1.status, 0);
    cr_assert_eq(r2.status, 0);
    cr_assert_eq(r3.status, 0);
    rglue_get_status(leader->g, &st);
    cr_assert_eq(st.barriers, barriers0 + 2);
    cr_assert_eq(st.n_members, 3);
    cr_assert_eq(st.leader_id, leader->id);
    for (size_t i = 0; i < st.n_members; i++) {
        cr_assert_gt(st.members[i].match_index, 0, "member %llu",
                     (unsigned long long)st.members[i].id);
    }
    rglue_status fst;
    rglue_get_status(follower->g, &fst);
    cr_assert_eq(fst.role, RGLUE_ROLE_FOLLOWER);
    cr_assert_eq(fst.leader_id, leader->id);
    cr_assert_str_eq(fst.leader_address, leader->addr);
    cr_assert_eq(fst.term, st.term);

    cr_assert_geq(checkNodelay(), 2, "no raft connection found to check");
}

Test(rglue, lagging_member_catches_up_through_a_full_dump,
     .init = setup, .fini = teardown, .timeout = 90)
{
    startOpts o = {.threshold = 16, .trailing = 8, .max_entry_bytes = 1};
    startCluster(&o);
    int l = waitLeader();
    node *leader = &W.nodes[l];
    int lag = (l + 1) % 3;
    for (int i = 0; i < 40; i++) {
        cr_assert_eq(proposeStr(leader->g, "d-%d", i), 0);
    }
    cr_assert(runUntil(allDone, NULL, 15000));
    for (int i = 0; i < 3; i++) waitCount(i, 40);
    stopNode(lag);

    for (int i = 40; i < 140; i++) {
        cr_assert_eq(proposeStr(leader->g, "d-%d", i), 0);
    }
    cr_assert(runUntil(allDone, NULL, 15000), "%d of %d", n_done, n_props);
    for (int i = 0; i < n_props; i++) cr_assert_eq(P[i].status, 0);
    rglue_status st;
    rglue_get_status(leader->g, &st);
    cr_assert_geq(st.snapshots_taken, 2);

    /* Back with its data dir and its (durable) state at 40 commands. */
    cr_assert_eq(W.nodes[lag].fsm.n, 40);
    mustStart(lag, 3, &o);
    waitCount(lag, 140);
    cr_assert_geq(W.nodes[lag].fsm.restore_full, 1,
                  "the follower was not sent a full dump");
    cr_assert_geq(leader->fsm.dumps, 1);
    for (int i = 0; i < 3; i++) waitCount(i, 140);
    cr_assert(tfsmEqual(&W.nodes[0].fsm, &W.nodes[1].fsm));
    cr_assert(tfsmEqual(&W.nodes[0].fsm, &W.nodes[2].fsm));

    /* And it keeps up afterwards. */
    for (int i = 140; i < 150; i++) {
        cr_assert_eq(proposeStr(W.nodes[leaderIndex()].g, "d-%d", i), 0);
    }
    cr_assert(runUntil(allDone, NULL, 15000));
    for (int i = 0; i < 3; i++) waitCount(i, 150);
    cr_assert(tfsmEqual(&W.nodes[0].fsm, &W.nodes[lag].fsm));
    cr_assert(tfsmEqual(&W.nodes[0].fsm, &W.nodes[(lag + 1) % 3].fsm));
}

static bool notLeader(void *arg)
{
    node *x = arg;
    return x->role != RGLUE_ROLE_LEADER;
}

Test(rglue, leader_losing_quorum_fails_pending_work_once,
     .init = setup, .fini = teardown, .timeout = 90)
{
    startCluster(NULL);
    int l = waitLeader();
    node *leader = &W.nodes[l];
    stopNode((l + 1) % 3);
    stopNode((l + 2) % 3);
    /* Stopping took a few loop turns: the leader hasn't noticed yet. */
    cr_assert_eq(leader->role, RGLUE_ROLE_LEADER);
    for (int i = 0; i < 20; i++) {
        int rc = proposeStr(leader->g, "q-%d", i);
        if (rc != 0) {
            cr_assert_eq(rc, RGLUE_ENOTLEADER);
            break;
        }
        if (i == 9) uv_run(&W.loop, UV_RUN_NOWAIT);
    }
    readReq r;
    int rrc = readOn(leader->g, &r);
    cr_assert(runUntil(notLeader, leader, 10000), "leader kept leading");
    cr_assert(runUntil(allDone, NULL, 5000));
    for (int i = 0; i < n_props; i++) {
        cr_assert_eq(P[i].calls, 1);
        cr_assert(P[i].status == RGLUE_EUNKNOWN ||
                      P[i].status == RGLUE_ENOTLEADER,
                  "cmd %d: %s", i, rglue_strerror(P[i].status));
    }
    if (rrc == 0) {
        cr_assert(runUntil(readDone, &r, 5000));
        cr_assert_eq(r.calls, 1);
        cr_assert_eq(r.status, RGLUE_ENOTLEADER);
    }
    cr_assert_eq(rglue_propose(leader->g, "z", 1, doneCb, &P[0]),
                 RGLUE_ENOTLEADER);
}

/* ---- membership and leadership ------------------------------------------ */

typedef struct changeReq {
    int calls;
    int status;
} changeReq;

static void changeCb(void *arg, int status)
{
    changeReq *c = arg;
    cr_expect(!W.in_api, "change callback fired from inside the API call");
    c->calls++;
    c->status = status;
}

static bool changeDone(void *arg)
{
    return ((changeReq *)arg)->calls > 0;
}

static int memberRole(rglue *g, uint64_t id)
{
    rglue_status st;
    rglue_get_status(g, &st);
    for (size_t i = 0; i < st.n_members; i++) {
        if (st.members[i].id == id) return st.members[i].role;
    }
    return -1;
}

typedef struct leaderOther {
    int not; /* index that must not lead */
} leaderOther;

static bool otherLeads(void *arg)
{
    leaderOther *o = arg;
    int l = leaderIndex();
    return l >= 0 && l != o->not && W.nodes[l].role == RGLUE_ROLE_LEADER;
}

Test(rglue, add_transfer_remove,
     .init = setup, .fini = teardown, .timeout = 120)
{
    initNodes(4);
    for (int i = 0; i < 3; i++) mustStart(i, 3, NULL);
    int l = waitLeader();
    node *leader = &W.nodes[l];
    for (int i = 0; i < 30; i++) cr_assert_eq(proposeStr(leader->g, "a-%d", i), 0);
    cr_assert(runUntil(allDone, NULL, 10000));

    /* A joining member starts without bootstrapping and is added. */
    startOpts join = {.join = true};
    mustStart(3, 1, &join);
    cr_assert_eq(rglue_voters(W.nodes[3].g), 0, "a joiner has no config");
    changeReq add = {0};
    W.in_api = true;
    int rc = rglue_add(leader->g, 4, W.nodes[3].addr, changeCb, &add);
    W.in_api = false;
    cr_assert_eq(rc, 0, "%s", rglue_strerror(rc));
    /* One change at a time. */
    changeReq busy = {0};
    cr_assert_eq(rglue_add(leader->g, 5, "127.0.0.1:1", changeCb, &busy),
                 RGLUE_EBUSY);
    cr_assert(runUntil(changeDone, &add, 20000));
    cr_assert_eq(add.status, 0, "%s", rglue_strerror(add.status));
    cr_assert_eq(memberRole(leader->g, 4), RAFT_VOTER);
    cr_assert_eq(rglue_voters(leader->g), 4);
    waitCount(3, 30); /* it caught up */
    cr_assert(tfsmEqual(&W.nodes[0].fsm, &W.nodes[3].fsm));
    /* Adding it again is a no-op success (a joiner's retry); the same id
     * at another address is refused. */
    changeReq again = {0};
    W.in_api = true;
    cr_assert_eq(rglue_add(leader->g, 4, W.nodes[3].addr, changeCb, &again),
                 0);
    W.in_api = false;
    cr_assert(runUntil(changeDone, &again, 5000));
    cr_assert_eq(again.status, 0);
    cr_assert_eq(rglue_add(leader->g, 4, "127.0.0.1:1", changeCb, &again),
                 RGLUE_EINVAL);
    /* Followers refuse. */
    node *follower = &W.nodes[(l + 1) % 3];
    cr_assert_eq(rglue_add(follower->g, 6, "127.0.0.1:1", changeCb, &again),
                 RGLUE_ENOTLEADER);

    /* Hand leadership to member 4. */
    changeReq tr = {0};
    W.in_api = true;
    cr_assert_eq(rglue_transfer(leader->g, 4, changeCb, &tr), 0);
    W.in_api = false;
    cr_assert(runUntil(changeDone, &tr, 10000));
    cr_assert_eq(tr.status, 0, "%s", rglue_strerror(tr.status));
    leaderOther lo = {l};
    cr_assert(runUntil(otherLeads, &lo, 10000));
    cr_assert_eq(leaderIndex(), 3);
    node *newLeader = &W.nodes[3];

    /* Remove the old leader; the rest keep committing. */
    /* A new leader changes nothing before it commits in its term. */
    changeReq rm = {0};
    uv_update_time(&W.loop);
    uint64_t deadline = uv_now(&W.loop) + 5000;
    while ((rc = rglue_remove(newLeader->g, W.nodes[l].id, changeCb, &rm)) ==
               RGLUE_EBUSY &&
           uv_now(&W.loop) < deadline) {
        uv_run(&W.loop, UV_RUN_ONCE);
    }
    cr_assert_eq(rc, 0, "%s", rglue_strerror(rc));
    cr_assert(runUntil(changeDone, &rm, 10000));
    cr_assert_eq(rm.status, 0, "%s", rglue_strerror(rm.status));
    cr_assert_eq(memberRole(newLeader->g, W.nodes[l].id), -1);
    cr_assert_eq(rglue_voters(newLeader->g), 3);
    cr_assert_eq(rglue_remove(newLeader->g, 99, changeCb, &rm),
                 RGLUE_ENOTFOUND);
    int before = n_props;
    cr_assert_eq(proposeStr(newLeader->g, "b-%d", 0), 0);
    cr_assert(runUntil(allDone, NULL, 10000));
    cr_assert_eq(P[before].status, 0);
}

Test(rglue, marker_after_trailing_barriers_restarts,
     .init = setup, .fini = teardown, .timeout = 90)
{
    /* Barriers advance raft's applied index but never reach the state
     * machine: a snapshot taken right after them must still let the member
     * restart (its marker holds the store's index, not raft's). */
    initNodes(3);
    startOpts o = {.threshold = 8, .trailing = 4};
    for (int i = 0; i < 3; i++) mustStart(i, 3, &o);
    int l = waitLeader();
    node *leader = &W.nodes[l];
    for (int i = 0; i < 5; i++) cr_assert_eq(proposeStr(leader->g, "w-%d", i), 0);
    cr_assert(runUntil(allDone, NULL, 10000));
    for (int i = 0; i < 40; i++) {
        readReq r;
        cr_assert_eq(readOn(leader->g, &r), 0);
        cr_assert(runUntil(readDone, &r, 5000));
        cr_assert_eq(r.status, 0);
    }
    rglue_status st;
    rglue_get_status(leader->g, &st);
    cr_assert_geq(st.snapshots_taken, 1);
    cr_assert_gt(st.applied_index, leader->fsm.applied_index + 8);
    for (int i = 0; i < 3; i++) stopNode(i);
    for (int i = 0; i < 3; i++) mustStart(i, 3, &o);
    waitLeader();
    for (int i = 0; i < 3; i++) cr_assert_eq(W.nodes[i].fsm.n, 5);
}
