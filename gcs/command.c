#include "command.h"

#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gcs.pb-c.h"
#include "log.h"
#include "proxy.h"
#include "pubsub.h"
#include "rglue.h"

/* ---- the table --------------------------------------------------------- */

/* Every command, sorted by name at first use for binary search. */
static const command **table;
static size_t tableLen;

static int compareCommands(const void *a, const void *b)
{
    const command *x = *(const command *const *)a;
    const command *y = *(const command *const *)b;
    return strcmp(x->name, y->name);
}

static void tableInit(void)
{
    if (table != NULL) return;
    const struct { const command *cmds; size_t n; } groups[] = {
        {string_commands, string_commands_count},
        {hash_commands, hash_commands_count},
        {keys_commands, keys_commands_count},
        {server_commands, server_commands_count},
        {raft_commands, raft_commands_count},
        {node_commands, node_commands_count},
        {actor_commands, actor_commands_count},
        {job_commands, job_commands_count},
        {pg_commands, pg_commands_count},
        {pubsub_commands, pubsub_commands_count},
        {table_commands, table_commands_count},
    };
    size_t total = 0;
    for (size_t g = 0; g < sizeof groups / sizeof groups[0]; g++) {
        total += groups[g].n;
    }
    const command **t = calloc(total, sizeof *t);
    if (t == NULL) abort();
    size_t k = 0;
    for (size_t g = 0; g < sizeof groups / sizeof groups[0]; g++) {
        for (size_t i = 0; i < groups[g].n; i++) t[k++] = &groups[g].cmds[i];
    }
    /* The per-command counters in server.h are sized at compile time. */
    if (total > SERVER_MAX_COMMANDS) abort();
    qsort(t, total, sizeof *t, compareCommands);
    table = t;
    tableLen = total;
}

/* The table index of @name, or tableLen when unknown. */
static size_t lookupIndex(const char *name, size_t len)
{
    char lower[32];
    tableInit();
    if (len == 0 || len >= sizeof lower) return tableLen;
    for (size_t i = 0; i < len; i++) {
        lower[i] = (char)tolower((unsigned char)name[i]);
    }
    lower[len] = '\0';
    size_t lo = 0, hi = tableLen;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int cmp = strcmp(lower, table[mid]->name);
        if (cmp == 0) return mid;
        if (cmp < 0) hi = mid;
        else lo = mid + 1;
    }
    return tableLen;
}

const command *command_lookup(const char *name, size_t len)
{
    size_t i = lookupIndex(name, len);
    return i < tableLen ? table[i] : NULL;
}

void command_count_reply(server *srv, size_t index, bool error)
{
    if (index < SERVER_MAX_COMMANDS) srv->command_results[index][error]++;
}

size_t command_count(void)
{
    tableInit();
    return tableLen;
}

const command *command_at(size_t i)
{
    tableInit();
    return i < tableLen ? table[i] : NULL;
}

/* ---- helpers ----------------------------------------------------------- */

void reply_arity_error(resp_buf *b, const char *name)
{
    resp_add_errorf(b, "ERR wrong number of arguments for '%s' command", name);
}

void reply_storage_error(resp_buf *b, int rc)
{
    if (rc == STORAGE_EWRONGTYPE) {
        resp_add_error(b, ERR_WRONGTYPE);
        return;
    }
    resp_add_errorf(b, "ERR storage error: %s", storage_strerror(rc));
}

bool arg_equals(const resp_arg *a, const char *s)
{
    size_t n = strlen(s);
    return a->len == n && strncasecmp(a->ptr, s, n) == 0;
}

storage_slice arg_slice(const resp_arg *a)
{
    storage_slice s = {a->ptr, a->len};
    return s;
}

bool parse_ll(const char *s, size_t len, long long *out)
{
    if (len == 0 || len > 20) return false;
    size_t i = 0;
    bool neg = false;
    if (s[0] == '-') {
        neg = true;
        i = 1;
        if (len == 1) return false;
    }
    /* Redis rejects leading zeros ("01", "-0") except the number 0 itself. */
    if (s[i] == '0') {
        if (len == 1) {
            *out = 0;
            return true;
        }
        return false;
    }
    unsigned long long v = 0;
    for (; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (ULLONG_MAX - d) / 10) return false;
        v = v * 10 + d;
    }
    if (neg) {
        if (v > (unsigned long long)LLONG_MAX + 1) return false;
        *out = v == (unsigned long long)LLONG_MAX + 1 ? LLONG_MIN
                                                      : -(long long)v;
    } else {
        if (v > (unsigned long long)LLONG_MAX) return false;
        *out = (long long)v;
    }
    return true;
}

bool parse_u64(const char *s, size_t len, uint64_t *out)
{
    if (len == 0 || len > 20) return false;
    if (s[0] == '0' && len > 1) return false;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10) return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

/* Run a read command on the shared read transaction. */
static void execRead(client *c, const command *cmd, size_t argc,
                     const resp_arg *argv)
{
    storage_txn *t = fsm_read_txn(c->srv->fsm);
    resp_buf *out = client_reply(c);
    if (t == NULL) {
        resp_add_error(out, "ERR cannot read the state (see the server log)");
        return;
    }
    cmd->read(t, argc, argv, out);
}

bool add_or_reply(bool found, storage_slice cur, long long delta,
                  const char *not_int_err, long long *sum, resp_buf *reply)
{
    long long value = 0;
    if (found && !parse_ll(cur.data, cur.len, &value)) {
        resp_add_error(reply, not_int_err);
        return false;
    }
    if ((delta < 0 && value < 0 && delta < LLONG_MIN - value) ||
        (delta > 0 && value > 0 && delta > LLONG_MAX - value)) {
        resp_add_error(reply, ERR_OVERFLOW);
        return false;
    }
    *sum = value + delta;
    return true;
}

bool lookup_or_reply(storage_txn *t, const resp_arg *key,
                     const resp_arg *field, storage_slice *value, bool *found,
                     resp_buf *out)
{
    int rc = field == NULL
                 ? storage_string_get(t, arg_slice(key), value, found)
                 : storage_hash_get(t, arg_slice(key), arg_slice(field), value,
                                    found);
    if (rc != 0) {
        reply_storage_error(out, rc);
        return false;
    }
    return true;
}

void reply_listing(resp_buf *out, int rc, const resp_buf *items, size_t n,
                   bool cursor, uint64_t next)
{
    if (rc != 0) {
        reply_storage_error(out, rc);
        return;
    }
    if (cursor) {
        resp_add_array(out, 2);
        resp_add_bulk_u64(out, next);
    }
    resp_add_array(out, n);
    resp_add_raw(out, items->data, items->len);
}

/* ---- dispatch ---------------------------------------------------------- */

static void replyUnknownCommand(resp_buf *b, size_t argc, const resp_arg *argv)
{
    /* Redis: "ERR unknown command 'x', with args beginning with: 'a' 'b' ",
     * the name cut at 128 bytes and the arguments part at about 128. */
    char args[160];
    size_t len = 0;
    for (size_t i = 1; i < argc && len < 128; i++) {
        size_t room = 128 - len;
        int n = snprintf(args + len, sizeof args - len, "'%.*s' ",
                         (int)(argv[i].len < room ? argv[i].len : room),
                         argv[i].ptr);
        if (n < 0) break;
        len += (size_t)n < sizeof args - len ? (size_t)n : sizeof args - len - 1;
    }
    args[len] = '\0';
    resp_add_errorf(b, "ERR unknown command '%.*s', with args beginning with: "
                    "%s", (int)(argv[0].len > 128 ? 128 : argv[0].len),
                    argv[0].ptr, args);
}

/* Map a raft-side failure to the client-visible error. */
void command_reply_raft_error(resp_buf *b, int rc)
{
    switch (rc) {
        case RGLUE_ENOTLEADER:
            resp_add_error(b, "TRYAGAIN no raft leader is available on this "
                              "member right now; retry shortly");
            break;
        case RGLUE_EUNKNOWN:
            resp_add_error(b, "TRYAGAIN leadership changed while the command "
                              "was in flight; its outcome is unknown");
            break;
        case RGLUE_EFAILED:
            resp_add_error(b, "MISCONF this member stopped accepting writes "
                              "after a local failure (see INFO raft)");
            break;
        case RGLUE_ESHUTDOWN:
            resp_add_error(b, "TRYAGAIN server is shutting down");
            break;
        case RGLUE_ENOSPACE:
            resp_add_error(b, "MISCONF the raft log has no disk space for "
                              "the command; it was not applied");
            break;
        case RGLUE_ETOOBIG:
            resp_add_error(b, "ERR command too large for the log");
            break;
        default:
            resp_add_errorf(b, "ERR %s", rglue_strerror(rc));
    }
}

/* A lone voter that stopped applying still holds the newest state there
 * is: it keeps serving reads, as Redis does under MISCONF. */
static bool failedLoneVoter(server *srv)
{
    if (!srv->fsm->failed) return false;
    rglue_status st;
    rglue_get_status(srv->raft, &st);
    return st.n_members == 1;
}

/* A command another member forwarded to us (GCS.FWD): its encoded form,
 * proposed as is so that its request id stays the one its origin retries
 * under. */
typedef struct forwarded {
    const void *data;
    size_t len;
    bool has_id;
} forwarded;

/* Request ids matter once a write can be retried: in a group of more than
 * one member. A lone voter never forwards, so its writes skip the
 * de-duplication table. */
static void requestId(server *srv, uint64_t *origin, uint64_t *id)
{
    *origin = 0;
    *id = 0;
    if (rglue_voters(srv->raft) > 1 ||
        rglue_role(srv->raft, NULL) != RGLUE_ROLE_LEADER) {
        *origin = srv->origin;
        *id = ++srv->next_request_id;
    }
}

static void submit(client *c, const command *cmd, int kind, unsigned flags,
                   size_t argc, const resp_arg *argv, const forwarded *fwd,
                   uint64_t footprint)
{
    server *srv = c->srv;
    void *data;
    size_t len;
    if (fwd != NULL) {
        data = malloc(fwd->len ? fwd->len : 1);
        if (data != NULL && fwd->len) memcpy(data, fwd->data, fwd->len);
        len = fwd->len;
        flags |= PROXY_LOCAL_ONLY;
        if (!(cmd->flags & CMD_WRITE)) flags |= PROXY_IDEMPOTENT;
        if (fwd->has_id || !(cmd->flags & CMD_WRITE)) {
            flags |= PROXY_RETRY_SAFE;
        }
    } else {
        /* Only writes change state: anything else may simply run again. */
        uint64_t origin = 0, id = 0;
        bool write = (cmd->flags & CMD_WRITE) != 0;
        if (write) requestId(srv, &origin, &id);
        if (fsm_encode_write(origin, id, argc, argv, &data, &len) != 0) {
            data = NULL;
        }
        if (id != 0 || !write) flags |= PROXY_RETRY_SAFE;
        if (!write) flags |= PROXY_IDEMPOTENT;
        if (srv->cfg->redirect) flags |= PROXY_REDIRECT;
    }
    if (data == NULL) {
        resp_add_error(client_reply(c), "ERR out of memory");
        return;
    }
    uint64_t block_ms = 0;
    long long ms;
    if (cmd->block_arg > 0 && (size_t)cmd->block_arg < argc &&
        parse_ll(argv[cmd->block_arg].ptr, argv[cmd->block_arg].len, &ms) &&
        ms >= 0) {
        /* 0: no time limit */
        block_ms = ms > 0 ? (uint64_t)ms : PROXY_BLOCK_FOREVER;
    }
    reply_slot *slot = client_slot_new(c);
    slot->blocking = block_ms > 0;
    slot->admitted = footprint;
    srv->admitted_bytes += footprint;
    proxy_submit(srv->proxy, slot, kind, flags, c->id, block_ms, data, len);
}

static void dispatchWrite(client *c, const command *cmd, size_t argc,
                          const resp_arg *argv, const forwarded *fwd)
{
    server *srv = c->srv;
    if (command_format(cmd) > srv->fsm->cluster_format) {
        /* A member that cannot apply it may remain: never propose it. */
        resp_add_errorf(client_reply(c), "ERR %s needs cluster format %llu; "
                        "the cluster runs format %llu until every member is "
                        "upgraded (see GCS.VERSION)", cmd->name,
                        (unsigned long long)command_format(cmd),
                        (unsigned long long)srv->fsm->cluster_format);
        srv->stats.commands_failed++;
        return;
    }
    if (cmd->check != NULL) {
        resp_buf err;
        resp_buf_init(&err);
        if (cmd->check(argc, argv, &err) != 0) {
            resp_add_raw(client_reply(c), err.data, err.len);
            srv->stats.commands_failed++;
            resp_buf_free(&err);
            return;
        }
        resp_buf_free(&err);
    }
    /* What the command may add to the state: its bytes twice (LMDB's
     * copy-on-write keeps the old page until commit) plus a page. */
    uint64_t footprint = 4096;
    for (size_t i = 1; i < argc; i++) footprint += 2 * (uint64_t)argv[i].len;
    if ((cmd->flags & CMD_DENYOOM) &&
        !fsm_has_room(srv->fsm, srv->admitted_bytes + footprint)) {
        resp_add_error(client_reply(c), "OOM command not allowed when used "
                                        "memory > 'maxmemory'.");
        srv->stats.commands_failed++;
        return;
    }
    submit(c, cmd, PROXY_WRITE, 0, argc, argv, fwd, footprint);
}

static void dispatchCommand(client *c, const command *cmd, size_t argc,
                            const resp_arg *argv, const forwarded *fwd)
{
    server *srv = c->srv;
    bool readonly = (c->flags & CLIENT_READONLY) && fwd == NULL;
    bool leader = rglue_role(srv->raft, NULL) == RGLUE_ROLE_LEADER;
    bool read = (cmd->flags & CMD_READ) != 0;
    if ((cmd->flags & CMD_WRITE) ||
        (read && !readonly && leader && fwd == NULL && c->slots_head != NULL)) {
        /* A read proposed behind the client's own writes sees them when
         * applied, in log order, without waiting a commit before it is
         * even proposed. */
        dispatchWrite(c, cmd, argc, argv, fwd);
        return;
    }
    if (read && !readonly && !rglue_can_read_now(srv->raft) &&
        !failedLoneVoter(srv)) {
        /* Through the proxy, which copies the command: the connection keeps
         * flowing (a pipeline of reads shares one barrier), and the barrier
         * orders the read after the connection's earlier writes. On a
         * follower the proxy forwards it to the leader. */
        submit(c, cmd, PROXY_READ, 0, argc, argv, fwd, 0);
        return;
    }
    if (read) {
        execRead(c, cmd, argc, argv);
    } else if ((cmd->flags & CMD_LEADER) && !leader) {
        submit(c, cmd, PROXY_LEADER, 0, argc, argv, fwd, 0);
    } else {
        cmd->exec(c, argc, argv);
    }
}

/* GCS.FWD <Command>: run a command another member forwarded, as if its
 * client had sent it here, but never forward it further. */
static void dispatchEnvelope(client *c, const resp_arg *payload)
{
    server *srv = c->srv;
    fsm_command fc;
    if (fsm_command_decode(&fc, payload->ptr, payload->len) != 0 ||
        fc.argc == 0) {
        if (fc.msg != NULL) fsm_command_free(&fc);
        resp_add_error(client_reply(c), "ERR malformed forwarded command");
        srv->stats.commands_failed++;
        return;
    }
    size_t argc = fc.argc;
    const resp_arg *argv = fc.argv;
    const command *cmd = command_lookup(argv[0].ptr, argv[0].len);
    if (cmd == NULL || (cmd->flags & CMD_ENVELOPE)) {
        replyUnknownCommand(client_reply(c), argc, argv);
        srv->stats.commands_failed++;
    } else if ((cmd->arity > 0 && (size_t)cmd->arity != argc) ||
               (cmd->arity < 0 && argc < (size_t)-cmd->arity)) {
        reply_arity_error(client_reply(c), cmd->name);
        srv->stats.commands_failed++;
    } else if (!(cmd->flags & (CMD_WRITE | CMD_READ | CMD_LEADER))) {
        resp_add_error(client_reply(c), "ERR only commands that need the "
                                        "leader can be forwarded");
        srv->stats.commands_failed++;
    } else if (rglue_role(srv->raft, NULL) != RGLUE_ROLE_LEADER) {
        resp_add_error(client_reply(c),
                       "TRYAGAIN this member is not the leader");
    } else {
        forwarded fwd = {payload->ptr, payload->len, fc.msg->request_id != 0};
        dispatchCommand(c, cmd, argc, argv, &fwd);
    }
    fsm_command_free(&fc);
}

static void dispatchTop(client *c, const command *cmd, size_t argc,
                        const resp_arg *argv);

/* Every command is counted by name and result here. A reply that goes
 * straight to the output buffer is looked at when dispatch returns; one
 * that needs a reply slot (a write, a read behind writes, anything queued
 * behind outstanding replies) is counted by server.c when the slot's reply
 * leaves or is dropped. */
void command_dispatch(client *c, size_t argc, const resp_arg *argv)
{
    size_t idx = lookupIndex(argv[0].ptr, argv[0].len);
    if (idx >= tableLen) {
        dispatchTop(c, NULL, argc, argv);
        return;
    }
    bool direct = c->slots_head == NULL;
    size_t before = c->out.len;
    c->stat_cmd = (unsigned)idx + 1;
    dispatchTop(c, table[idx], argc, argv);
    if (c->stat_cmd != 0) {
        /* No slot took it: the reply, if any, was appended to c->out. */
        c->stat_cmd = 0;
        if (direct && c->out.len > before) {
            command_count_reply(c->srv, idx, c->out.data[before] == '-');
        }
    }
}

static void dispatchTop(client *c, const command *cmd, size_t argc,
                        const resp_arg *argv)
{
    server *srv = c->srv;

    srv->stats.commands_processed++;
    c->last_cmd_ms = server_clock_ms(srv);
    if (cmd == NULL) {
        replyUnknownCommand(client_reply(c), argc, argv);
        srv->stats.commands_failed++;
        return;
    }
    c->last_cmd = cmd->name;
    if ((cmd->arity > 0 && (size_t)cmd->arity != argc) ||
        (cmd->arity < 0 && argc < (size_t)-cmd->arity)) {
        reply_arity_error(client_reply(c), cmd->name);
        srv->stats.commands_failed++;
        return;
    }
    if (!(c->flags & CLIENT_AUTHENTICATED) && !(cmd->flags & CMD_NOAUTH)) {
        resp_add_error(client_reply(c), "NOAUTH Authentication required.");
        srv->stats.commands_failed++;
        return;
    }
    if ((cmd->flags & CMD_TEST) && !srv->cfg->test_commands) {
        resp_add_errorf(client_reply(c), "ERR %s is for tests only; start "
                        "gcsd with --enable-test-commands", cmd->name);
        srv->stats.commands_failed++;
        return;
    }
    if (!(cmd->flags & CMD_SUBSCRIBED_OK) && pubsub_client_subscribed(c)) {
        resp_add_errorf(client_reply(c), "ERR Can't execute '%s': only "
                        "(P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / "
                        "RESET are allowed in this context", cmd->name);
        srv->stats.commands_failed++;
        return;
    }
    if (cmd->flags & CMD_ENVELOPE) dispatchEnvelope(c, &argv[1]);
    else dispatchCommand(c, cmd, argc, argv, NULL);
}
