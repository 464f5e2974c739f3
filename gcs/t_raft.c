/* Cluster commands: RAFT.STATUS, RAFT.ADD, RAFT.REMOVE, RAFT.TRANSFER,
 * READONLY / READWRITE, GCS.VERSION, and the internal ones: GCS.FWD (a
 * forwarded command), GCS.ANNOUNCE (a new leader's client address, recorded
 * in the member directory) and GCS.CLUSTER.FORMAT (the leader raising the
 * cluster's state-machine format). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <raft.h>

#include "command.h"
#include "fsm.h"
#include "rglue.h"
#include "server.h"

static void addField(resp_buf *b, const char *name, const char *value)
{
    resp_add_bulk_str(b, name);
    resp_add_bulk_str(b, value);
}

static void addFieldU64(resp_buf *b, const char *name, uint64_t v)
{
    resp_add_bulk_str(b, name);
    resp_add_integer(b, (long long)v);
}

/* RAFT.STATUS: this member's view of the group, as field/value pairs. */
static void statusCommand(client *c, size_t argc, const resp_arg *argv)
{
    server *srv = c->srv;
    rglue_status st;
    rglue_get_status(srv->raft, &st);
    char leaderAddr[256] = "";
    if (st.leader_id != 0) {
        fsm_member_address(srv->fsm, st.leader_id, leaderAddr,
                           sizeof leaderAddr);
    }
    resp_buf *b = client_reply(c);
    resp_add_array(b, 32);
    addFieldU64(b, "id", st.id);
    addField(b, "role", rglue_role_name(st.role));
    addFieldU64(b, "term", st.term);
    addFieldU64(b, "leader_id", st.leader_id);
    addField(b, "leader_address", leaderAddr);
    addField(b, "leader_raft_address", st.leader_address);
    addFieldU64(b, "commit_index", st.commit_index);
    addFieldU64(b, "applied_index", st.applied_index);
    addFieldU64(b, "last_index", st.last_index);
    addFieldU64(b, "snapshots", st.snapshots_taken);
    addFieldU64(b, "failed", st.failed || srv->fsm->failed);
    addField(b, "failure", srv->fsm->failed ? srv->fsm->failure : st.failure);
    addFieldU64(b, "format_min", FSM_FORMAT_MIN);
    addFieldU64(b, "format_max", srv->fsm->format_max);
    addFieldU64(b, "cluster_format", srv->fsm->cluster_format);
    resp_add_bulk_str(b, "members");
    resp_add_array(b, st.n_members);
    for (size_t i = 0; i < st.n_members; i++) {
        const rglue_member *m = &st.members[i];
        char addr[256] = "";
        fsm_member_address(srv->fsm, m->id, addr, sizeof addr);
        resp_add_array(b, 10);
        addFieldU64(b, "id", m->id);
        addField(b, "raft_address", m->address);
        addField(b, "client_address", addr);
        addField(b, "role", rglue_member_role_name(m->role));
        addFieldU64(b, "match_index", m->match_index);
    }
}

static bool parseId(const resp_arg *a, uint64_t *id)
{
    return parse_u64(a->ptr, a->len, id) && *id > 0 && *id <= UINT32_MAX;
}

/* A membership change or transfer in progress for one client. raft allows
 * one change at a time, and none before a new leader has committed in its
 * term: "busy" is retried for up to --leader-wait-ms before it is reported. */
typedef struct change {
    reply_slot *slot;
    server *srv;
    int kind; /* 'a'dd, 'r'emove, 't'ransfer */
    uint64_t id;
    char addr[256];
    int64_t deadline;
    uv_timer_t timer;
} change;

static void changeFree(uv_handle_t *h)
{
    free(h->data);
}

static void changeFinish(change *ch, int status)
{
    resp_buf *b = &ch->slot->reply;
    if (status == 0) resp_add_status(b, "OK");
    else if (status == RGLUE_ETRANSFER)
        resp_add_error(b, "ERR leadership did not move in three attempts "
                          "of an election timeout each");
    else if (status == RGLUE_EBUSY)
        resp_add_error(b, "ERR a membership change is already in progress; "
                          "retry when it is done");
    else if (status == RGLUE_ENOTFOUND)
        resp_add_error(b, "ERR no such member");
    else if (status == RGLUE_EINVAL)
        resp_add_error(b, "ERR invalid member id or address (an id already "
                          "in use at another address?)");
    else if (status == RGLUE_ECATCHUP)
        resp_add_errorf(b, "ERR member %llu at %s did not catch up with the "
                           "log (not running or unreachable there?); it stays "
                           "a non-voting spare: start it and run RAFT.ADD "
                           "again, or RAFT.REMOVE it",
                        (unsigned long long)ch->id, ch->addr);
    else command_reply_raft_error(b, status);
    client_slot_done(ch->slot);
    uv_close((uv_handle_t *)&ch->timer, changeFree);
}

static void onChangeDone(void *arg, int status)
{
    changeFinish(arg, status);
}

static void changeTry(uv_timer_t *t)
{
    change *ch = t->data;
    rglue *g = ch->srv->raft;
    int rc = ch->kind == 'a'   ? rglue_add(g, ch->id, ch->addr, onChangeDone, ch)
             : ch->kind == 'r' ? rglue_remove(g, ch->id, onChangeDone, ch)
                               : rglue_transfer(g, ch->id, onChangeDone, ch);
    if (rc == RGLUE_EBUSY && server_clock_ms(ch->srv) < ch->deadline) {
        uv_timer_start(&ch->timer, changeTry, 20, 0);
        return;
    }
    if (rc != 0) changeFinish(ch, rc);
}

static void startChange(client *c, int kind, uint64_t id, const char *addr)
{
    change *ch = calloc(1, sizeof *ch);
    if (ch == NULL) {
        resp_add_error(client_reply(c), "ERR out of memory");
        return;
    }
    ch->slot = client_slot_new(c);
    ch->srv = c->srv;
    ch->kind = kind;
    ch->id = id;
    if (addr != NULL) snprintf(ch->addr, sizeof ch->addr, "%s", addr);
    ch->deadline =
        server_clock_ms(c->srv) + (int64_t)c->srv->cfg->leader_wait_ms;
    uv_timer_init(c->srv->loop, &ch->timer);
    ch->timer.data = ch;
    changeTry(&ch->timer);
}

static void addCommand(client *c, size_t argc, const resp_arg *argv)
{
    uint64_t id;
    if (!parseId(&argv[1], &id)) {
        resp_add_error(client_reply(c), "ERR invalid member id");
        return;
    }
    char addr[256];
    if (argv[2].len == 0 || argv[2].len >= sizeof addr ||
        memchr(argv[2].ptr, ':', argv[2].len) == NULL) {
        resp_add_error(client_reply(c), "ERR invalid raft address, expected "
                                        "host:port");
        return;
    }
    memcpy(addr, argv[2].ptr, argv[2].len);
    addr[argv[2].len] = '\0';
    startChange(c, 'a', id, addr);
}

static void removeCommand(client *c, size_t argc, const resp_arg *argv)
{
    uint64_t id;
    if (!parseId(&argv[1], &id)) {
        resp_add_error(client_reply(c), "ERR invalid member id");
        return;
    }
    if (id == c->srv->cfg->id) {
        resp_add_error(client_reply(c), "ERR cannot remove the leader: "
                                        "RAFT.TRANSFER first");
        return;
    }
    startChange(c, 'r', id, NULL);
}

static void transferCommand(client *c, size_t argc, const resp_arg *argv)
{
    uint64_t id = 0;
    if (argc > 2) {
        resp_add_error(client_reply(c), ERR_SYNTAX);
        return;
    }
    if (argc == 2 && !parseId(&argv[1], &id)) {
        resp_add_error(client_reply(c), "ERR invalid member id");
        return;
    }
    if (id != 0 && id == c->srv->cfg->id) {
        /* It leads already (this runs on the leader). Also what a follower
         * that forwarded the transfer sees when it retries at the new
         * leader, having noticed the move before the old leader's +OK. */
        resp_add_status(client_reply(c), "OK");
        return;
    }
    startChange(c, 't', id, NULL);
}

/* RAFT.CUT [SEND|RECV] [id ...]: testing only (--enable-test-commands):
 * drop raft traffic to and from these members (or only to them, or only from
 * them: a one-way partition), as a partition would; no ids heals. */
static void cutCommand(client *c, size_t argc, const resp_arg *argv)
{
    if (!c->srv->cfg->test_commands) {
        resp_add_error(client_reply(c), "ERR RAFT.CUT is disabled; start "
                                        "gcsd with --enable-test-commands");
        return;
    }
    unsigned dirs = RGLUE_CUT_BOTH;
    size_t first = 1;
    if (argc > 1 && arg_equals(&argv[1], "send")) {
        dirs = RGLUE_CUT_SEND;
        first = 2;
    } else if (argc > 1 && arg_equals(&argv[1], "recv")) {
        dirs = RGLUE_CUT_RECV;
        first = 2;
    }
    uint64_t ids[16];
    if (argc - first > sizeof ids / sizeof ids[0]) {
        resp_add_error(client_reply(c), "ERR too many member ids");
        return;
    }
    for (size_t i = first; i < argc; i++) {
        if (!parseId(&argv[i], &ids[i - first])) {
            resp_add_error(client_reply(c), "ERR invalid member id");
            return;
        }
    }
    int rc = rglue_cut(c->srv->raft, ids, argc - first, dirs);
    if (rc != 0) command_reply_raft_error(client_reply(c), rc);
    else resp_add_status(client_reply(c), "OK");
}

/* RAFT.DELAY ms [id ...]: testing only (--enable-test-commands): hold this
 * member's raft messages to these members for ms milliseconds, a slow
 * link; no ids (or 0 ms) heals. */
static void delayCommand(client *c, size_t argc, const resp_arg *argv)
{
    if (!c->srv->cfg->test_commands) {
        resp_add_error(client_reply(c), "ERR RAFT.DELAY is disabled; start "
                                        "gcsd with --enable-test-commands");
        return;
    }
    uint64_t ms;
    if (!parse_u64(argv[1].ptr, argv[1].len, &ms) || ms > 60000) {
        resp_add_error(client_reply(c), "ERR invalid delay: milliseconds "
                                        "from 0 to 60000");
        return;
    }
    uint64_t ids[16];
    if (argc - 2 > sizeof ids / sizeof ids[0]) {
        resp_add_error(client_reply(c), "ERR too many member ids");
        return;
    }
    for (size_t i = 2; i < argc; i++) {
        if (!parseId(&argv[i], &ids[i - 2])) {
            resp_add_error(client_reply(c), "ERR invalid member id");
            return;
        }
    }
    int rc = rglue_delay(c->srv->raft, ids, argc - 2, (unsigned)ms);
    if (rc != 0) command_reply_raft_error(client_reply(c), rc);
    else resp_add_status(client_reply(c), "OK");
}

/* GCS.DUMP: the whole state as one consistent dump (storage_dump's format,
 * checksummed), for backups. A read: linearizable like any other. */
static void dumpRead(storage_txn *t, size_t argc, const resp_arg *argv,
                     resp_buf *out)
{
    void *buf;
    size_t len;
    int rc = storage_dump(t, &buf, &len);
    if (rc != 0) {
        reply_storage_error(out, rc);
        return;
    }
    resp_add_bulk(out, buf, len);
    free(buf);
}

static void readonlyCommand(client *c, size_t argc, const resp_arg *argv)
{
    c->flags |= CLIENT_READONLY;
    resp_add_status(client_reply(c), "OK");
}

static void readwriteCommand(client *c, size_t argc, const resp_arg *argv)
{
    c->flags &= ~(unsigned)CLIENT_READONLY;
    resp_add_status(client_reply(c), "OK");
}

static int announceCheck(size_t argc, const resp_arg *argv, resp_buf *err)
{
    uint64_t id;
    if (!parseId(&argv[1], &id)) {
        resp_add_error(err, "ERR invalid member id");
        return -1;
    }
    if (argv[2].len == 0 || argv[2].len > 255) {
        resp_add_error(err, "ERR invalid address");
        return -1;
    }
    return 0;
}

static int announceApply(apply_ctx *a, size_t argc, const resp_arg *argv,
                         resp_buf *reply)
{
    uint64_t id;
    if (!parseId(&argv[1], &id) || argv[2].len == 0 || argv[2].len > 255) {
        resp_add_error(reply, "ERR invalid announcement");
        return 0;
    }
    int rc = fsm_set_member_address(a->txn, id, arg_slice(&argv[2]));
    if (rc != 0) return rc;
    resp_add_status(reply, "OK");
    return 0;
}

/* GCS.VERSION: the state-machine formats this member applies, and the
 * cluster's (fsm.h). The leader asks every member before it raises the
 * cluster format. */
static void versionCommand(client *c, size_t argc, const resp_arg *argv)
{
    resp_buf *b = client_reply(c);
    resp_add_array(b, 3);
    resp_add_integer(b, FSM_FORMAT_MIN);
    resp_add_integer(b, (long long)c->srv->fsm->format_max);
    resp_add_integer(b, (long long)c->srv->fsm->cluster_format);
}

/* GCS.CLUSTER.FORMAT n: proposed by the leader itself (cluster_format.c),
 * never by a client: only the leader has asked every member. */
static void clusterFormatCommand(client *c, size_t argc, const resp_arg *argv)
{
    resp_add_error(client_reply(c), "ERR the cluster format is raised by the "
                                    "leader once every member applies it "
                                    "(GCS.VERSION on a member shows what it "
                                    "applies)");
}

static int clusterFormatApply(apply_ctx *a, size_t argc, const resp_arg *argv,
                              resp_buf *reply)
{
    uint64_t n;
    if (!parse_u64(argv[1].ptr, argv[1].len, &n) || n == 0) {
        resp_add_error(reply, "ERR invalid cluster format");
        return 0;
    }
    /* Above what this binary applies: refused before (fsm.c). */
    if (n < a->cluster_format) {
        resp_add_errorf(reply, "ERR the cluster format is %llu already; it "
                        "never goes back",
                        (unsigned long long)a->cluster_format);
        return 0;
    }
    if (n > a->cluster_format) {
        int rc = storage_meta_set(a->txn, FSM_META_CLUSTER_FORMAT, n);
        if (rc != 0) return rc;
        a->cluster_format = n;
    }
    resp_add_status(reply, "OK");
    return 0;
}

/* GCS.TEST.FORMAT2: testing only, a no-op write of format 2, to show the
 * gate (refused until the cluster format reaches 2). */
static int format2Apply(apply_ctx *a, size_t argc, const resp_arg *argv,
                        resp_buf *reply)
{
    resp_add_status(reply, "OK");
    return 0;
}

static void fwdCommand(client *c, size_t argc, const resp_arg *argv)
{
    /* command_dispatch handles envelopes itself (CMD_ENVELOPE). */
    resp_add_error(client_reply(c), "ERR GCS.FWD is internal");
}

const command raft_commands[] = {
    {"raft.status", 1, CMD_ADMIN, statusCommand, NULL, NULL, 0, 0, 0,
     "cluster", "Shows this member's view of the raft group."},
    {"raft.add", 3, CMD_ADMIN | CMD_LEADER, addCommand, NULL, NULL, 0, 0, 0,
     "cluster", "Adds a member: non-voter first, voter once caught up."},
    {"raft.remove", 2, CMD_ADMIN | CMD_LEADER, removeCommand, NULL, NULL, 0,
     0, 0, "cluster", "Removes a member from the raft group."},
    {"raft.transfer", -1, CMD_ADMIN | CMD_LEADER, transferCommand, NULL,
     NULL, 0, 0, 0, "cluster", "Hands leadership to another voter."},
    {"raft.cut", -1, CMD_ADMIN, cutCommand, NULL, NULL, 0, 0, 0, "cluster",
     "Testing only: fakes a partition from the given members."},
    {"raft.delay", -2, CMD_ADMIN, delayCommand, NULL, NULL, 0, 0, 0,
     "cluster", "Testing only: delays raft messages to the given members."},
    {"gcs.dump", 1, CMD_READ | CMD_ADMIN, NULL, NULL, NULL, 0, 0, 0,
     "server", "A consistent copy of the whole state, for backups.",
     dumpRead},
    {"readonly", 1, CMD_FAST, readonlyCommand, NULL, NULL, 0, 0, 0,
     "cluster", "Serves this connection's reads from the local replica, "
     "possibly stale."},
    {"readwrite", 1, CMD_FAST, readwriteCommand, NULL, NULL, 0, 0, 0,
     "cluster", "Makes this connection's reads linearizable again."},
    {"gcs.announce", 3, CMD_WRITE | CMD_ADMIN, NULL, announceCheck,
     announceApply, 0, 0, 0, "cluster",
     "Internal: records a member's client address."},
    {"gcs.fwd", 2, CMD_ENVELOPE | CMD_ADMIN, fwdCommand, NULL, NULL, 0, 0, 0,
     "cluster", "Internal: a command forwarded by another member."},
    {"gcs.version", 1, CMD_FAST, versionCommand, NULL, NULL, 0, 0, 0,
     "cluster", "The state-machine formats this member applies, and the "
     "cluster's."},
    {FSM_CMD_CLUSTER_FORMAT, 2, CMD_ADMIN, clusterFormatCommand, NULL,
     clusterFormatApply, 0, 0, 0, "cluster",
     "Internal: raises the cluster format (the leader proposes it)."},
    {"gcs.test.format2", 1, CMD_WRITE | CMD_ADMIN | CMD_TEST, NULL, NULL,
     format2Apply, 0, 0, 0, "cluster",
     "Testing only: a no-op write that needs cluster format 2.", .format = 2},
};
const size_t raft_commands_count =
    sizeof raft_commands / sizeof raft_commands[0];
