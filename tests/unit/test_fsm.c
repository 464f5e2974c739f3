/* The state machine alone: commands encoded as they travel in the log,
 * applied through the hooks rglue calls, replies checked byte for byte;
 * replays skipped; two stores fed the same log end up identical. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fsm.h"
#include "gcs.pb-c.h"

typedef struct replies {
    char text[64][256];
    size_t n;
} replies;

static void collect(void *token, size_t i, const void *reply, size_t len)
{
    replies *r = token;
    cr_assert_eq(i, r->n, "replies come in command order");
    cr_assert_lt(len, sizeof r->text[0]);
    memcpy(r->text[r->n], reply, len);
    r->text[r->n][len] = '\0';
    r->n++;
}

typedef struct env {
    char dir[64];
    fsm f;
    rglue_fsm hooks;
} env;

static void envOpen(env *e)
{
    snprintf(e->dir, sizeof e->dir, "/tmp/gcsd-fsm-XXXXXX");
    cr_assert_not_null(mkdtemp(e->dir));
    char err[256];
    cr_assert_eq(fsm_open(&e->f, e->dir, 64u << 20, err, sizeof err), 0, "%s",
                 err);
    fsm_raft_hooks(&e->f, &e->hooks);
}

static void envClose(env *e)
{
    fsm_close(&e->f);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", e->dir);
    cr_assert_eq(system(cmd), 0);
}

/* Encode "a b c" style commands (space separated) into log commands. */
static size_t encode(const char *const *lines, size_t n, rglue_cmd *cmds)
{
    for (size_t i = 0; i < n; i++) {
        char *copy = strdup(lines[i]);
        resp_arg argv[16];
        size_t argc = 0;
        for (char *t = strtok(copy, " "); t; t = strtok(NULL, " ")) {
            argv[argc].ptr = t;
            argv[argc].len = strlen(t);
            argc++;
        }
        void *data;
        size_t len;
        cr_assert_eq(fsm_encode_command(0, argc, argv, &data, &len), 0);
        cmds[i].data = data;
        cmds[i].len = len;
        free(copy);
    }
    return n;
}

static void freeCmds(rglue_cmd *cmds, size_t n)
{
    for (size_t i = 0; i < n; i++) free((void *)cmds[i].data);
}

static void applyLines(env *e, uint64_t index, const char *const *lines,
                       size_t n, replies *out)
{
    rglue_cmd cmds[64];
    encode(lines, n, cmds);
    memset(out, 0, sizeof *out);
    cr_assert_eq(e->hooks.apply(e->hooks.ctx, index, 1700000000000, cmds, n,
                                collect, out), 0);
    freeCmds(cmds, n);
}

Test(fsm, apply_replies_and_state)
{
    env e;
    envOpen(&e);
    const char *const batch[] = {
        "SET k v", "SET k w NX", "INCR n", "INCRBY n 41", "HSET h f 1 g 2",
        "HSET k f v", "HINCRBY h f 9", "INCR k", "DEL k nokey", "APPEND s ab",
    };
    replies r;
    applyLines(&e, 2, batch, sizeof batch / sizeof batch[0], &r);
    cr_assert_eq(r.n, 10);
    cr_assert_str_eq(r.text[0], "+OK\r\n");
    cr_assert_str_eq(r.text[1], "$-1\r\n");
    cr_assert_str_eq(r.text[2], ":1\r\n");
    cr_assert_str_eq(r.text[3], ":42\r\n");
    cr_assert_str_eq(r.text[4], ":2\r\n");
    cr_assert_str_eq(r.text[5], "-WRONGTYPE Operation against a key holding "
                                "the wrong kind of value\r\n");
    cr_assert_str_eq(r.text[6], ":10\r\n");
    cr_assert_str_eq(r.text[7], "-ERR value is not an integer or out of "
                                "range\r\n");
    cr_assert_str_eq(r.text[8], ":1\r\n");
    cr_assert_str_eq(r.text[9], ":2\r\n");
    cr_assert_eq(e.f.applied_index, 2);

    storage_txn *t = fsm_read_txn(&e.f);
    storage_slice v;
    bool found;
    cr_assert_eq(storage_string_get(t, (storage_slice){"n", 1}, &v, &found), 0);
    cr_assert(found && v.len == 2 && memcmp(v.data, "42", 2) == 0);
    uint64_t keys;
    cr_assert_eq(storage_key_count(t, &keys), 0);
    cr_assert_eq(keys, 3); /* n, h, s */
    fsm_end_reads(&e.f);
    envClose(&e);
}

/* Apply @lines as entry @index, expecting this binary to refuse it: the
 * member stops, names the formats, and nothing of the entry is applied. */
static void applyRefused(env *e, uint64_t index, const char *const *lines,
                         size_t n, const char *want)
{
    rglue_cmd cmds[64];
    encode(lines, n, cmds);
    replies r;
    memset(&r, 0, sizeof r);
    uint64_t applied = e->f.applied_index;
    cr_assert_neq(e->hooks.apply(e->hooks.ctx, index, 1700000000000, cmds, n,
                                 collect, &r), 0);
    freeCmds(cmds, n);
    cr_assert_eq(r.n, 0, "nothing of a refused entry is acknowledged");
    cr_assert(e->f.failed);
    cr_assert(strstr(e->f.failure, want) != NULL, "%s", e->f.failure);
    cr_assert_eq(e->f.applied_index, applied);
}

/* A command this binary does not know can only come from a member running
 * newer code: applying around it (or answering an error) would make this
 * member's state differ, so it stops, naming the formats. */
Test(fsm, unknown_command_stops_the_member)
{
    env e;
    envOpen(&e);
    const char *const batch[] = {"SET k v", "FROB x"};
    applyRefused(&e, 2, batch, 2,
                 "entry 2 holds the command 'FROB', which this gcsd cannot "
                 "apply (it applies state-machine formats 1 to 1; the "
                 "cluster's is 1): upgrade this member");
    storage_txn *t = fsm_read_txn(&e.f);
    uint64_t keys;
    cr_assert_eq(storage_key_count(t, &keys), 0);
    cr_assert_eq(keys, 0, "the SET before it in the entry is not applied");
    fsm_end_reads(&e.f);
    envClose(&e);
}

/* The de-duplication table must not answer for a command this binary
 * cannot apply: a retry under a request id already recorded (fuzz_entry,
 * CI, FUZZ_SEED=1) got the recorded reply, and the entry "applied". */
Test(fsm, unknown_command_is_refused_before_dedup)
{
    env e;
    envOpen(&e);
    rglue_cmd cmd;
    void *data;
    resp_arg set[3] = {{"SET", 3}, {"k", 1}, {"v", 1}};
    cr_assert_eq(fsm_encode_write(7, 42, 3, set, &data, &cmd.len), 0);
    cmd.data = data;
    replies r;
    memset(&r, 0, sizeof r);
    cr_assert_eq(e.hooks.apply(e.hooks.ctx, 2, 1700000000000, &cmd, 1,
                               collect, &r), 0);
    free(data);
    cr_assert_str_eq(r.text[0], "+OK\r\n");
    resp_arg frob[2] = {{"FROB", 4}, {"x", 1}};
    cr_assert_eq(fsm_encode_write(7, 42, 2, frob, &data, &cmd.len), 0);
    cmd.data = data;
    memset(&r, 0, sizeof r);
    cr_assert_neq(e.hooks.apply(e.hooks.ctx, 3, 1700000000001, &cmd, 1,
                                collect, &r), 0);
    free(data);
    cr_assert_eq(r.n, 0);
    cr_assert(strstr(e.f.failure, "'FROB'") != NULL, "%s", e.f.failure);
    envClose(&e);
}

/* The cluster format: raised through the log, never lowered, gating the
 * commands of a later format; above what the binary applies, the member
 * stops; the raise survives a reopen. */
Test(fsm, cluster_format_gates_commands)
{
    env e;
    envOpen(&e);
    cr_assert_eq(e.f.cluster_format, 1, "absent: format 1");
    e.f.format_max = 2; /* play a binary that applies format 2 */
    const char *const before[] = {"GCS.TEST.FORMAT2", "GCS.CLUSTER.FORMAT 1",
                                  "GCS.CLUSTER.FORMAT 0"};
    replies r;
    applyLines(&e, 2, before, 3, &r);
    cr_assert_str_eq(r.text[0], "-ERR gcs.test.format2 needs cluster format "
                                "2; the cluster runs format 1 until every "
                                "member is upgraded\r\n");
    cr_assert_str_eq(r.text[1], "+OK\r\n");
    cr_assert_str_eq(r.text[2], "-ERR invalid cluster format\r\n");
    /* Raised mid-entry: the command after it sees format 2. */
    const char *const raise[] = {"GCS.CLUSTER.FORMAT 2", "GCS.TEST.FORMAT2",
                                 "GCS.CLUSTER.FORMAT 1"};
    applyLines(&e, 3, raise, 3, &r);
    cr_assert_str_eq(r.text[0], "+OK\r\n");
    cr_assert_str_eq(r.text[1], "+OK\r\n");
    cr_assert_str_eq(r.text[2], "-ERR the cluster format is 2 already; it "
                                "never goes back\r\n");
    cr_assert_eq(e.f.cluster_format, 2);
    const char *const tooNew[] = {"GCS.CLUSTER.FORMAT 3"};
    applyRefused(&e, 4, tooNew, 1,
                 "entry 4 raises the cluster format to 3; this gcsd applies "
                 "state-machine formats 1 to 2: upgrade this member");
    fsm_close(&e.f);
    char err[256];
    cr_assert_eq(fsm_open(&e.f, e.dir, 64u << 20, err, sizeof err), 0);
    fsm_raft_hooks(&e.f, &e.hooks);
    cr_assert_eq(e.f.cluster_format, 2, "the raise is stored");
    cr_assert_eq(e.f.format_max, FSM_FORMAT_MAX);
    envClose(&e);
}

/* An entry at or below the stored applied index is a replay: no effect, no
 * replies, also after the store is reopened. */
Test(fsm, replay_is_skipped)
{
    env e;
    envOpen(&e);
    const char *const one[] = {"INCR n"};
    replies r;
    applyLines(&e, 5, one, 1, &r);
    cr_assert_eq(r.n, 1);
    applyLines(&e, 5, one, 1, &r);
    cr_assert_eq(r.n, 0);
    applyLines(&e, 3, one, 1, &r);
    cr_assert_eq(r.n, 0);
    fsm_close(&e.f);
    char err[256];
    cr_assert_eq(fsm_open(&e.f, e.dir, 64u << 20, err, sizeof err), 0);
    fsm_raft_hooks(&e.f, &e.hooks);
    cr_assert_eq(e.hooks.applied_index(e.hooks.ctx), 5);
    applyLines(&e, 5, one, 1, &r);
    cr_assert_eq(r.n, 0);
    applyLines(&e, 6, one, 1, &r);
    cr_assert_str_eq(r.text[0], ":2\r\n");
    envClose(&e);
}

/* The same log applied to two fresh stores gives byte-identical dumps, and a
 * dump restores into a third store only when it is newer. */
Test(fsm, deterministic_and_restorable)
{
    env a, b, c;
    envOpen(&a);
    envOpen(&b);
    envOpen(&c);
    unsigned seed = 7;
    for (uint64_t index = 2; index < 60; index++) {
        char lines[8][64];
        const char *ptrs[8];
        for (int i = 0; i < 8; i++) {
            unsigned x = (unsigned)rand_r(&seed);
            switch (x % 4) {
                case 0: snprintf(lines[i], 64, "SET k%u v%u", x % 50, x); break;
                case 1: snprintf(lines[i], 64, "HSET h%u f%u %u", x % 7, x % 30, x); break;
                case 2: snprintf(lines[i], 64, "INCRBY c%u %u", x % 5, x % 100); break;
                default: snprintf(lines[i], 64, "DEL k%u h%u", x % 50, x % 7);
            }
            ptrs[i] = lines[i];
        }
        replies ra, rb;
        applyLines(&a, index, ptrs, 8, &ra);
        applyLines(&b, index, ptrs, 8, &rb);
        cr_assert_eq(ra.n, rb.n);
        for (size_t i = 0; i < ra.n; i++) cr_assert_str_eq(ra.text[i], rb.text[i]);
    }
    void *da, *db;
    size_t la, lb;
    uint64_t ia, ib;
    cr_assert_eq(a.hooks.dump(a.hooks.ctx, &da, &la, &ia), 0);
    cr_assert_eq(b.hooks.dump(b.hooks.ctx, &db, &lb, &ib), 0);
    cr_assert_eq(ia, 59);
    cr_assert_eq(la, lb);
    cr_assert(memcmp(da, db, la) == 0, "replicas diverged");

    cr_assert_eq(c.hooks.restore(c.hooks.ctx, da, la), 0);
    cr_assert_eq(c.f.applied_index, 59);
    void *dc;
    size_t lc;
    uint64_t ic;
    cr_assert_eq(c.hooks.dump(c.hooks.ctx, &dc, &lc, &ic), 0);
    cr_assert(lc == la && memcmp(dc, da, la) == 0);
    /* An older dump changes nothing. */
    const char *const more[] = {"SET late x"};
    replies r;
    applyLines(&c, 60, more, 1, &r);
    cr_assert_eq(c.hooks.restore(c.hooks.ctx, da, la), 0);
    storage_slice v;
    bool found;
    cr_assert_eq(storage_string_get(fsm_read_txn(&c.f), (storage_slice){"late", 4},
                                    &v, &found), 0);
    cr_assert(found);
    fsm_end_reads(&c.f);
    free(da);
    free(db);
    free(dc);
    envClose(&a);
    envClose(&b);
    envClose(&c);
}

/* Empty arguments come back from the log as NULL pointers (protobuf-c);
 * handlers copying them must not see NULL (UBSan: memcpy from NULL). */
Test(fsm, empty_arguments)
{
    env e;
    envOpen(&e);
    resp_arg argv[3] = {{"APPEND", 6}, {"k", 1}, {"", 0}};
    void *data;
    size_t len;
    cr_assert_eq(fsm_encode_command(0, 3, argv, &data, &len), 0);
    rglue_cmd cmd = {data, len};
    replies r = {0};
    cr_assert_eq(e.hooks.apply(e.hooks.ctx, 2, 0, &cmd, 1, collect, &r), 0);
    cr_assert_str_eq(r.text[0], ":0\r\n");
    free(data);
    resp_arg scan[2] = {{"SET", 3}, {"", 0}};
    resp_arg setv[3] = {scan[0], scan[1], {"", 0}};
    cr_assert_eq(fsm_encode_command(0, 3, setv, &data, &len), 0);
    cmd = (rglue_cmd){data, len};
    memset(&r, 0, sizeof r);
    cr_assert_eq(e.hooks.apply(e.hooks.ctx, 3, 0, &cmd, 1, collect, &r), 0);
    cr_assert_str_eq(r.text[0], "+OK\r\n");
    free(data);
    envClose(&e);
}

/* Apply one command with a request id at @index and leader time @time_ms;
 * returns its reply. */
static void applyWithId(env *e, uint64_t index, int64_t time_ms,
                        uint64_t origin, uint64_t id, const char *line,
                        replies *out)
{
    char *copy = strdup(line);
    resp_arg argv[16];
    size_t argc = 0;
    for (char *t = strtok(copy, " "); t; t = strtok(NULL, " ")) {
        argv[argc].ptr = t;
        argv[argc].len = strlen(t);
        argc++;
    }
    rglue_cmd cmd;
    void *data;
    cr_assert_eq(fsm_encode_write(origin, id, argc, argv, &data, &cmd.len), 0);
    cmd.data = data;
    memset(out, 0, sizeof *out);
    cr_assert_eq(e->hooks.apply(e->hooks.ctx, index, time_ms, &cmd, 1,
                                collect, out), 0);
    free(data);
    free(copy);
}

static void assertString(env *e, const char *key, const char *want)
{
    storage_txn *t = fsm_read_txn(&e->f);
    storage_slice v;
    bool found;
    cr_assert_eq(storage_string_get(t, (storage_slice){key, strlen(key)}, &v,
                                    &found), 0);
    cr_assert(found, "%s missing", key);
    cr_assert(v.len == strlen(want) && memcmp(v.data, want, v.len) == 0,
              "%s = %.*s, want %s", key, (int)v.len, (const char *)v.data,
              want);
}

Test(fsm, retried_request_id_applies_once)
{
    env e;
    envOpen(&e);
    const int64_t t0 = 1700000000000;
    replies r;
    applyWithId(&e, 2, t0, 7, 1, "INCRBY n 5", &r);
    cr_assert_str_eq(r.text[0], ":5\r\n");
    /* The retry, in a later entry: the first reply again, nothing applied. */
    applyWithId(&e, 3, t0 + 10, 7, 1, "INCRBY n 5", &r);
    cr_assert_str_eq(r.text[0], ":5\r\n");
    assertString(&e, "n", "5");
    cr_assert_eq(e.f.duplicates, 1);
    /* Same id from another origin, and a new id: both apply. */
    applyWithId(&e, 4, t0 + 20, 8, 1, "INCRBY n 5", &r);
    cr_assert_str_eq(r.text[0], ":10\r\n");
    applyWithId(&e, 5, t0 + 30, 7, 2, "INCRBY n 5", &r);
    cr_assert_str_eq(r.text[0], ":15\r\n");
    /* An error reply is remembered too (and nothing changes). */
    applyWithId(&e, 6, t0 + 40, 7, 3, "HSET n f v", &r);
    cr_assert(strncmp(r.text[0], "-WRONGTYPE", 10) == 0);
    applyWithId(&e, 7, t0 + 50, 7, 3, "HSET n f v", &r);
    cr_assert(strncmp(r.text[0], "-WRONGTYPE", 10) == 0);
    /* Without an id there is no de-duplication. */
    const char *const incr[] = {"INCRBY n 5"};
    applyLines(&e, 8, incr, 1, &r);
    applyLines(&e, 9, incr, 1, &r);
    assertString(&e, "n", "25");
    envClose(&e);
}

Test(fsm, dedup_records_expire_by_leader_time)
{
    env e;
    envOpen(&e);
    const int64_t t0 = 1700000000000;
    replies r;
    applyWithId(&e, 2, t0, 7, 1, "INCR n", &r);
    applyWithId(&e, 3, t0 + 1000, 7, 2, "INCR n", &r);
    storage_txn *t = fsm_read_txn(&e.f);
    uint64_t count;
    cr_assert_eq(storage_meta_get(t, "dedup_records", &count), 0);
    cr_assert_eq(count, 2);
    /* Six minutes of leader time later, both records are past the window:
     * the entry's own command is recorded, the old ones dropped. */
    applyWithId(&e, 4, t0 + 6 * 60 * 1000, 7, 3, "INCR n", &r);
    t = fsm_read_txn(&e.f);
    cr_assert_eq(storage_meta_get(t, "dedup_records", &count), 0);
    cr_assert_eq(count, 1);
    /* So a (very late) retry of id 1 is applied again, as documented. */
    applyWithId(&e, 5, t0 + 6 * 60 * 1000 + 1, 7, 1, "INCR n", &r);
    cr_assert_str_eq(r.text[0], ":4\r\n");
    /* Id 3 is still remembered. */
    applyWithId(&e, 6, t0 + 6 * 60 * 1000 + 2, 7, 3, "INCR n", &r);
    cr_assert_str_eq(r.text[0], ":3\r\n");
    envClose(&e);
}

Test(fsm, member_directory)
{
    env e;
    envOpen(&e);
    const char *const lines[] = {"GCS.ANNOUNCE 2 10.0.0.2:6379",
                                 "GCS.ANNOUNCE 3 gcsd-2.gcsd:6379",
                                 "GCS.ANNOUNCE 2 10.0.0.9:6379",
                                 "GCS.ANNOUNCE 0 x:1"};
    replies r;
    applyLines(&e, 2, lines, 4, &r);
    cr_assert_str_eq(r.text[0], "+OK\r\n");
    cr_assert(r.text[3][0] == '-', "id 0 is refused");
    char addr[256];
    cr_assert_eq(fsm_member_address(&e.f, 2, addr, sizeof addr), 0);
    cr_assert_str_eq(addr, "10.0.0.9:6379");
    cr_assert_eq(fsm_member_address(&e.f, 3, addr, sizeof addr), 0);
    cr_assert_str_eq(addr, "gcsd-2.gcsd:6379");
    cr_assert_eq(fsm_member_address(&e.f, 4, addr, sizeof addr), 0);
    cr_assert_str_eq(addr, "");
    /* The directory travels in dumps (snapshots to new members). */
    storage_txn *t = fsm_read_txn(&e.f);
    void *dump;
    size_t len;
    cr_assert_eq(storage_dump(t, &dump, &len), 0);
    env other;
    envOpen(&other);
    cr_assert_eq(other.hooks.restore(other.hooks.ctx, dump, len), 0);
    cr_assert_eq(fsm_member_address(&other.f, 3, addr, sizeof addr), 0);
    cr_assert_str_eq(addr, "gcsd-2.gcsd:6379");
    free(dump);
    envClose(&other);
    envClose(&e);
}

/* apply_emit hands out consecutive revisions after the one the entry started
 * at and copies what it is given; fsm_event_encode gives a gcs.ChangeEvent. */
Test(fsm, emitted_events_get_revisions_and_encode)
{
    apply_ctx a = {.revision = 41};
    char key[3] = {'k', 0, 'y'}, value[4] = {'v', 'a', 'l', 0};
    cr_assert_eq(apply_emit(&a, "ACTOR", (storage_slice){key, 3},
                            FSM_EVENT_PUT, (storage_slice){value, 4}),
                 0);
    cr_assert_eq(apply_emit(&a, "NODE", (storage_slice){"n", 1},
                            FSM_EVENT_DELETE, (storage_slice){"", 0}),
                 0);
    memset(key, 'x', sizeof key); /* the event holds copies */
    memset(value, 'x', sizeof value);
    cr_assert_eq(a.n_events, 2);
    cr_assert_eq(a.revision, 43);
    cr_assert_eq(a.events[0].revision, 42);
    cr_assert_eq(a.events[1].revision, 43);
    cr_assert_str_eq(a.events[0].table, "ACTOR");
    cr_assert_eq(a.events[0].key_len, 3);
    cr_assert(memcmp(a.events[0].key, "k\0y", 3) == 0);
    cr_assert_eq(a.events[0].value_len, 4);
    cr_assert(memcmp(a.events[0].value, "val\0", 4) == 0);

    void *buf;
    size_t len;
    cr_assert_eq(fsm_event_encode(&a.events[0], &buf, &len), 0);
    Gcs__ChangeEvent *ev = gcs__change_event__unpack(NULL, len, buf);
    cr_assert_not_null(ev);
    cr_assert_eq(ev->revision, 42);
    cr_assert_str_eq(ev->table, "ACTOR");
    cr_assert_eq(ev->kind, GCS__CHANGE_EVENT__KIND__PUT);
    cr_assert(ev->key.len == 3 && memcmp(ev->key.data, "k\0y", 3) == 0);
    cr_assert(ev->value.len == 4 && memcmp(ev->value.data, "val\0", 4) == 0);
    gcs__change_event__free_unpacked(ev, NULL);
    free(buf);
    cr_assert_eq(fsm_event_encode(&a.events[1], &buf, &len), 0);
    ev = gcs__change_event__unpack(NULL, len, buf);
    cr_assert_not_null(ev);
    cr_assert_eq(ev->kind, GCS__CHANGE_EVENT__KIND__DELETE);
    cr_assert_eq(ev->value.len, 0);
    gcs__change_event__free_unpacked(ev, NULL);
    free(buf);
    for (size_t i = 0; i < a.n_events; i++) free((void *)a.events[i].key);
    free(a.events);
}

/* ---- the changelog -------------------------------------------------------- */

typedef struct seenLog {
    uint64_t revs[64];
    char keys[64][16];
    int kinds[64];
    size_t n;
} seenLog;

static int collectLog(void *arg, uint64_t revision, storage_slice event)
{
    seenLog *s = arg;
    cr_assert_lt(s->n, 64);
    Gcs__ChangeEvent *ev = gcs__change_event__unpack(NULL, event.len,
                                                     event.data);
    cr_assert_not_null(ev);
    cr_assert_eq(ev->revision, revision);
    s->revs[s->n] = revision;
    snprintf(s->keys[s->n], sizeof s->keys[0], "%.*s", (int)ev->key.len,
             (const char *)ev->key.data);
    s->kinds[s->n] = ev->kind;
    s->n++;
    gcs__change_event__free_unpacked(ev, NULL);
    return 0;
}

static void scanLog(env *e, uint64_t from, seenLog *s)
{
    memset(s, 0, sizeof *s);
    storage_txn *t = fsm_read_txn(&e->f);
    cr_assert_eq(fsm_changelog_scan(t, from, collectLog, s), 0);
    fsm_end_reads(&e->f);
}

static fsm_changelog_info logInfo(env *e)
{
    fsm_changelog_info ci;
    storage_txn *t = fsm_read_txn(&e->f);
    cr_assert_eq(fsm_changelog_info_get(t, &ci), 0);
    fsm_end_reads(&e->f);
    return ci;
}

/* Keyspace writes emit change events that land in the changelog, in the
 * entry's transaction, with contiguous revisions; PUBLISH takes none. */
Test(fsm, changelog_records_keyspace_changes)
{
    env e;
    envOpen(&e);
    fsm_changelog_info ci = logInfo(&e);
    cr_assert_eq(ci.newest, 0);
    cr_assert_eq(ci.oldest, 1, "empty: oldest is newest + 1");
    const char *const batch[] = {
        "SET a 1", "PUBLISH ch m", "HSET h f 1 g 2", "INCR a", "HDEL h f x",
        "DEL a nokey", "SET k v NX", "SET k w NX", "INCR k",
    };
    replies r;
    applyLines(&e, 2, batch, sizeof batch / sizeof batch[0], &r);
    cr_assert_str_eq(r.text[1], ":0\r\n");
    seenLog s;
    scanLog(&e, 1, &s);
    /* SET a, HSET f, HSET g, INCR a, HDEL f, DEL a, SET k (NX): 7; the
     * failed SET NX and INCR on "v" emit nothing. */
    cr_assert_eq(s.n, 7);
    for (size_t i = 0; i < s.n; i++) cr_assert_eq(s.revs[i], i + 1);
    cr_assert_str_eq(s.keys[0], "a");
    cr_assert_str_eq(s.keys[1], "h");
    cr_assert_eq(s.kinds[4], GCS__CHANGE_EVENT__KIND__DELETE);
    cr_assert_eq(s.kinds[5], GCS__CHANGE_EVENT__KIND__DELETE);
    cr_assert_str_eq(s.keys[6], "k");
    ci = logInfo(&e);
    cr_assert_eq(ci.oldest, 1);
    cr_assert_eq(ci.newest, 7);
    cr_assert_eq(e.f.revision, 7);
    /* FLUSHALL: a DELETE per key, and the changelog survives it. */
    const char *const flush[] = {"FLUSHALL"};
    applyLines(&e, 3, flush, 1, &r);
    scanLog(&e, 8, &s);
    cr_assert_eq(s.n, 2); /* h, k */
    cr_assert_eq(s.kinds[0], GCS__CHANGE_EVENT__KIND__DELETE);
    scanLog(&e, 1, &s);
    cr_assert_eq(s.n, 9);
    envClose(&e);
}

/* The window is replicated (GCS.CHANGELOG.WINDOW travels in the log) and
 * trimming is part of apply: the oldest records go first, by count and by
 * bytes, and two stores fed the same log keep the same records. */
Test(fsm, changelog_window_trims_deterministically)
{
    env e, e2;
    envOpen(&e);
    envOpen(&e2);
    const char *const win[] = {"GCS.CHANGELOG.WINDOW 5 0"};
    replies r;
    applyLines(&e, 2, win, 1, &r);
    cr_assert_str_eq(r.text[0], "+OK\r\n");
    applyLines(&e2, 2, win, 1, &r);
    char lines[12][32];
    const char *ptrs[12];
    for (int i = 0; i < 12; i++) {
        snprintf(lines[i], sizeof lines[i], "SET k%d v%d", i, i);
        ptrs[i] = lines[i];
    }
    applyLines(&e, 3, ptrs, 12, &r);
    applyLines(&e2, 3, ptrs, 12, &r);
    fsm_changelog_info ci = logInfo(&e);
    cr_assert_eq(ci.newest, 12);
    cr_assert_eq(ci.oldest, 8);
    cr_assert_eq(ci.max_events, 5);
    seenLog s, s2;
    scanLog(&e, 1, &s);
    scanLog(&e2, 1, &s2);
    cr_assert_eq(s.n, 5);
    cr_assert_eq(s.revs[0], 8);
    cr_assert_eq(s2.n, 5);
    cr_assert_eq(s2.revs[0], 8);
    /* A byte bound: each record here is about 16 bytes. */
    const char *const bytes[] = {"GCS.CHANGELOG.WINDOW 0 40"};
    applyLines(&e, 4, bytes, 1, &r);
    ci = logInfo(&e);
    cr_assert_leq(ci.bytes, 40);
    cr_assert_gt(ci.bytes, 0);
    scanLog(&e, 1, &s);
    cr_assert_eq(s.revs[0], ci.oldest);
    cr_assert_eq(s.revs[s.n - 1], 12);
    cr_assert_eq(ci.max_events, FSM_CHANGELOG_MAX_EVENTS, "0: the default");
    const char *const bad[] = {"GCS.CHANGELOG.WINDOW x 1"};
    applyLines(&e, 5, bad, 1, &r);
    cr_assert_str_eq(r.text[0], "-ERR value is not an integer or out of "
                                "range\r\n");
    envClose(&e);
    envClose(&e2);
}

/* Decoding into an arena: more arguments than the inline array holds, an
 * empty one (a non-NULL ""), and nothing to free but the arena. */
Test(fsm, decode_into_an_arena)
{
    resp_arg argv[10];
    char names[10][4];
    for (int i = 0; i < 10; i++) {
        snprintf(names[i], sizeof names[i], "a%d", i);
        argv[i] = (resp_arg){names[i], strlen(names[i])};
    }
    argv[7] = (resp_arg){"", 0};
    void *data;
    size_t len;
    cr_assert_eq(fsm_encode_write(5, 9, 10, argv, &data, &len), 0);
    arena mem;
    arena_init(&mem);
    fsm_command fc;
    cr_assert_eq(fsm_command_decode_in(&fc, &mem, data, len), 0);
    cr_assert_eq(fc.argc, 10);
    cr_assert_neq(fc.argv, fc.small);
    cr_assert_eq(fc.msg->request_id, 9);
    cr_assert_eq(fc.msg->origin, 5);
    for (int i = 0; i < 10; i++) {
        cr_assert_not_null(fc.argv[i].ptr);
        cr_assert_eq(fc.argv[i].len, argv[i].len);
        cr_assert(memcmp(fc.argv[i].ptr, argv[i].ptr, argv[i].len) == 0);
    }
    /* Not a Command: an error, and the arena stays usable. */
    cr_assert_eq(fsm_command_decode_in(&fc, &mem, "\xff\xff\xff", 3), -1);
    arena_reset(&mem);
    cr_assert_eq(fsm_command_decode_in(&fc, &mem, data, len), 0);
    cr_assert_eq(fc.argc, 10);
    arena_free(&mem);
    free(data);
}

/* One entry mixing many arguments, a value bigger than an arena block and
 * small commands after it: each command sees its own arguments. */
Test(fsm, entry_with_many_and_large_arguments)
{
    env e;
    envOpen(&e);
    size_t bigLen = 300 * 1024;
    char *big = malloc(bigLen);
    for (size_t i = 0; i < bigLen; i++) big[i] = (char)('a' + i % 23);
    resp_arg hset[11] = {{"HSET", 4}, {"h", 1}};
    char fv[9][3];
    for (int i = 0; i < 9; i++) {
        snprintf(fv[i], sizeof fv[i], "%c%d", i % 2 ? 'v' : 'f', i);
        hset[2 + i] = (resp_arg){fv[i], strlen(fv[i])};
    }
    resp_arg setBig[3] = {{"SET", 3}, {"big", 3}, {big, bigLen}};
    resp_arg setSmall[3] = {{"SET", 3}, {"small", 5}, {"s", 1}};
    rglue_cmd cmds[3];
    void *data;
    size_t len;
    /* HSET with an odd field count is an arity error: 11 arguments. */
    cr_assert_eq(fsm_encode_command(0, 10, hset, &data, &len), 0);
    cmds[0] = (rglue_cmd){data, len};
    cr_assert_eq(fsm_encode_command(0, 3, setBig, &data, &len), 0);
    cmds[1] = (rglue_cmd){data, len};
    cr_assert_eq(fsm_encode_command(0, 3, setSmall, &data, &len), 0);
    cmds[2] = (rglue_cmd){data, len};
    replies r = {0};
    cr_assert_eq(e.hooks.apply(e.hooks.ctx, 2, 0, cmds, 3, collect, &r), 0);
    cr_assert_eq(r.n, 3);
    cr_assert_str_eq(r.text[0], ":4\r\n");
    cr_assert_str_eq(r.text[1], "+OK\r\n");
    cr_assert_str_eq(r.text[2], "+OK\r\n");
    freeCmds(cmds, 3);

    storage_txn *t = fsm_read_txn(&e.f);
    storage_slice v;
    bool found;
    cr_assert_eq(storage_string_get(t, (storage_slice){"big", 3}, &v, &found),
                 0);
    cr_assert(found && v.len == bigLen && memcmp(v.data, big, bigLen) == 0);
    cr_assert_eq(
        storage_string_get(t, (storage_slice){"small", 5}, &v, &found), 0);
    cr_assert(found && v.len == 1 && memcmp(v.data, "s", 1) == 0);
    cr_assert_eq(storage_hash_get(t, (storage_slice){"h", 1},
                                  (storage_slice){"f6", 2}, &v, &found),
                 0);
    cr_assert(found && v.len == 2 && memcmp(v.data, "v7", 2) == 0);
    fsm_end_reads(&e.f);
    free(big);
    envClose(&e);
}
