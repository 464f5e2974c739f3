/* Connection and server commands: PING ECHO AUTH HELLO SELECT QUIT CLIENT
 * COMMAND INFO CONFIG TIME. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "command.h"
#include "pubsub.h"
#include "glob.h"
#include "log.h"
#include "proxy.h"
#include "node_health.h"
#include "pg_wait.h"
#include "rglue.h"
#include "table.h"

#define GCSD_VERSION_STR "0.1.0"
/* What we tell tools that check the Redis version: the command set and
 * replies follow Redis 7.0. */
#define REDIS_COMPAT_VERSION "7.0.15"

static void pingCommand(client *c, size_t argc, const resp_arg *argv)
{
    resp_buf *out = client_reply(c);
    if (argc > 2) reply_arity_error(out, "ping");
    else if (pubsub_client_subscribed(c)) {
        /* Redis's shape in subscribed mode (RESP2). */
        resp_add_array(out, 2);
        resp_add_bulk(out, "pong", 4);
        if (argc == 2) resp_add_bulk(out, argv[1].ptr, argv[1].len);
        else resp_add_bulk(out, "", 0);
    } else if (argc == 2) resp_add_bulk(out, argv[1].ptr, argv[1].len);
    else resp_add_status(out, "PONG");
}

static void echoCommand(client *c, size_t argc, const resp_arg *argv)
{
    resp_add_bulk(client_reply(c), argv[1].ptr, argv[1].len);
}

static void timeCommand(client *c, size_t argc, const resp_arg *argv)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    resp_buf *out = client_reply(c);
    resp_add_array(out, 2);
    resp_add_bulk_u64(out, (uint64_t)ts.tv_sec);
    resp_add_bulk_u64(out, (uint64_t)(ts.tv_nsec / 1000));
}

/* Compare without leaking the length of the common prefix through timing. */
static bool secretEquals(const resp_arg *a, const char *secret)
{
    size_t n = strlen(secret);
    unsigned char diff = (unsigned char)(a->len != n);
    for (size_t i = 0; i < a->len; i++) {
        diff |= (unsigned char)(a->ptr[i] ^ secret[n > 0 ? i % n : 0]);
    }
    return diff == 0;
}

/* Check a user and password against the single "default" user. Returns 0,
 * or -1 after replying the error. */
static int authenticate(client *c, const resp_arg *user, const resp_arg *pass,
                        resp_buf *out)
{
    const char *pw = c->srv->cfg->requirepass;
    bool userOk = user == NULL || arg_equals(user, "default");
    bool ok;
    if (pw[0] == '\0') {
        /* The default user has no password: any password works for it. */
        ok = userOk;
    } else {
        ok = userOk && secretEquals(pass, pw);
    }
    if (!ok) {
        resp_add_error(out, "WRONGPASS invalid username-password pair or "
                            "user is disabled.");
        return -1;
    }
    c->flags |= CLIENT_AUTHENTICATED;
    return 0;
}

static void authCommand(client *c, size_t argc, const resp_arg *argv)
{
    resp_buf *out = client_reply(c);
    if (argc > 3) {
        resp_add_error(out, ERR_SYNTAX);
        return;
    }
    if (argc == 2 && c->srv->cfg->requirepass[0] == '\0') {
        resp_add_error(out, "ERR AUTH <password> called without any password "
                            "configured for the default user. Are you sure "
                            "your configuration is correct?");
        return;
    }
    const resp_arg *user = argc == 3 ? &argv[1] : NULL;
    const resp_arg *pass = argc == 3 ? &argv[2] : &argv[1];
    if (authenticate(c, user, pass, out) == 0) resp_add_status(out, "OK");
}

static bool validClientName(const resp_arg *a)
{
    for (size_t i = 0; i < a->len; i++) {
        if (a->ptr[i] < '!' || a->ptr[i] > '~') return false;
    }
    return true;
}

static void setClientName(client *c, const resp_arg *name)
{
    free(c->name);
    c->name = NULL;
    if (name->len > 0) {
        c->name = malloc(name->len + 1);
        if (c->name == NULL) abort();
        memcpy(c->name, name->ptr, name->len);
        c->name[name->len] = '\0';
    }
}

static void helloCommand(client *c, size_t argc, const resp_arg *argv)
{
    resp_buf *out = client_reply(c);
    size_t i = 1;
    if (argc >= 2) {
        long long ver;
        if (!parse_ll(argv[1].ptr, argv[1].len, &ver)) {
            resp_add_error(out, "ERR Protocol version is not an integer or "
                                "out of range");
            return;
        }
        if (ver != 2) {
            resp_add_error(out, "NOPROTO unsupported protocol version");
            return;
        }
        i = 2;
    }
    const resp_arg *user = NULL, *pass = NULL, *name = NULL;
    for (; i < argc; i++) {
        if (arg_equals(&argv[i], "auth") && i + 2 < argc) {
            user = &argv[i + 1];
            pass = &argv[i + 2];
            i += 2;
        } else if (arg_equals(&argv[i], "setname") && i + 1 < argc) {
            name = &argv[i + 1];
            i++;
        } else {
            resp_add_errorf(out, "ERR Syntax error in HELLO option '%.*s'",
                            (int)(argv[i].len > 64 ? 64 : argv[i].len),
                            argv[i].ptr);
            return;
        }
    }
    if (user != NULL && authenticate(c, user, pass, out) != 0) return;
    if (!(c->flags & CLIENT_AUTHENTICATED)) {
        resp_add_error(out, "NOAUTH HELLO must be called with the client "
                            "already authenticated, otherwise the HELLO "
                            "AUTH <user> <pass> option can be used to "
                            "authenticate the client and select the RESP "
                            "protocol version at the same time");
        return;
    }
    if (name != NULL) {
        if (!validClientName(name)) {
            resp_add_error(out, "ERR Client names cannot contain spaces, "
                                "newlines or special characters.");
            return;
        }
        setClientName(c, name);
    }
    resp_add_array(out, 14);
    resp_add_bulk_str(out, "server");
    resp_add_bulk_str(out, "redis");
    resp_add_bulk_str(out, "version");
    resp_add_bulk_str(out, REDIS_COMPAT_VERSION);
    resp_add_bulk_str(out, "proto");
    resp_add_integer(out, 2);
    resp_add_bulk_str(out, "id");
    resp_add_integer(out, (long long)c->id);
    resp_add_bulk_str(out, "mode");
    resp_add_bulk_str(out, "standalone");
    resp_add_bulk_str(out, "role");
    resp_add_bulk_str(out, "master");
    resp_add_bulk_str(out, "modules");
    resp_add_array(out, 0);
}

static void selectCommand(client *c, size_t argc, const resp_arg *argv)
{
    resp_buf *out = client_reply(c);
    long long db;
    if (!parse_ll(argv[1].ptr, argv[1].len, &db)) {
        resp_add_error(out, ERR_NOT_INTEGER);
    } else if (db != 0) {
        resp_add_error(out, "ERR DB index is out of range");
    } else {
        resp_add_status(out, "OK");
    }
}

static void quitCommand(client *c, size_t argc, const resp_arg *argv)
{
    resp_add_status(client_reply(c), "OK");
    client_close_after_reply(c);
}

/* SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE]: everything is already durable, so
 * the options change nothing; the process stops as on SIGTERM (a leader
 * hands leadership over first). Like Redis, no reply on success. */
static void shutdownCommand(client *c, size_t argc, const resp_arg *argv)
{
    for (size_t i = 1; i < argc; i++) {
        if (!arg_equals(&argv[i], "nosave") && !arg_equals(&argv[i], "save") &&
            !arg_equals(&argv[i], "now") && !arg_equals(&argv[i], "force")) {
            resp_add_error(client_reply(c), ERR_SYNTAX);
            return;
        }
    }
    if (c->srv->shutdown_cb == NULL) {
        resp_add_error(client_reply(c), "ERR Errors trying to SHUTDOWN. "
                                        "Check logs.");
        return;
    }
    log_notice("SHUTDOWN requested by client %s", c->addr);
    c->srv->shutdown_cb(c->srv);
}

/* Redis 7's reply for a bad subcommand of @cmd: a wrong argument count for
 * one it knows (listed in @known, NULL-terminated), else an unknown one. */
static void replySubcommandError(resp_buf *out, const char *cmd,
                                 const resp_arg *sub, const char *const *known)
{
    int n = (int)(sub->len > 64 ? 64 : sub->len);
    for (size_t i = 0; known[i] != NULL; i++) {
        if (arg_equals(sub, known[i])) {
            resp_add_errorf(out, "ERR wrong number of arguments for '%s|%s' "
                            "command", cmd, known[i]);
            return;
        }
    }
    char upper[16];
    size_t k = 0;
    for (; cmd[k] != '\0' && k < sizeof upper - 1; k++) {
        upper[k] = (char)(cmd[k] >= 'a' && cmd[k] <= 'z' ? cmd[k] - 32 : cmd[k]);
    }
    upper[k] = '\0';
    resp_add_errorf(out, "ERR unknown subcommand '%.*s'. Try %s HELP.", n,
                    sub->ptr, upper);
}

/* ---- CLIENT ------------------------------------------------------------ */

static void clientDescribe(client *c, resp_buf *b)
{
    int64_t now = server_clock_ms(c->srv);
    char line[1024];
    int n = snprintf(line, sizeof line,
                     "id=%" PRIu64 " addr=%s laddr=%s fd=%d name=%s age=%"
                     PRId64 " idle=%" PRId64 " flags=N db=0 sub=0 psub=0 "
                     "ssub=0 multi=-1 qbuf=%zu qbuf-free=%zu argv-mem=0 "
                     "multi-mem=0 rbs=%zu rbp=0 obl=%zu oll=%zu omem=%zu "
                     "tot-mem=%zu events=r cmd=%s user=default redir=-1 "
                     "resp=2\n",
                     c->id, c->addr, c->laddr, (int)c->tcp.io_watcher.fd,
                     c->name ? c->name : "", (now - c->ctime_ms) / 1000,
                     (now - c->last_cmd_ms) / 1000, c->inlen - c->inpos,
                     c->incap - c->inlen, c->incap, c->out.len, c->n_slots,
                     c->out.cap + c->sending.cap,
                     sizeof *c + c->incap + c->out.cap + c->sending.cap,
                     c->last_cmd ? c->last_cmd : "NULL");
    resp_add_raw(b, line, n < (int)sizeof line ? (size_t)n : sizeof line - 1);
}

static void clientCommand(client *c, size_t argc, const resp_arg *argv)
{
    resp_buf *out = client_reply(c);
    const resp_arg *sub = &argv[1];
    if (arg_equals(sub, "id") && argc == 2) {
        resp_add_integer(out, (long long)c->id);
    } else if (arg_equals(sub, "getname") && argc == 2) {
        if (c->name) resp_add_bulk_str(out, c->name);
        else resp_add_null(out);
    } else if (arg_equals(sub, "setname") && argc == 3) {
        if (!validClientName(&argv[2])) {
            resp_add_error(out, "ERR Client names cannot contain spaces, "
                                "newlines or special characters.");
            return;
        }
        setClientName(c, &argv[2]);
        resp_add_status(out, "OK");
    } else if (arg_equals(sub, "info") && argc == 2) {
        resp_buf line;
        resp_buf_init(&line);
        clientDescribe(c, &line);
        resp_add_bulk(out, line.data, line.len);
        resp_buf_free(&line);
    } else if (arg_equals(sub, "list")) {
        /* CLIENT LIST [TYPE normal|...] [ID id ...] */
        resp_buf lines;
        resp_buf_init(&lines);
        size_t firstId = 0;
        bool onlyNone = false;
        if (argc >= 4 && arg_equals(&argv[2], "type")) {
            if (arg_equals(&argv[3], "replica") || arg_equals(&argv[3], "master") ||
                arg_equals(&argv[3], "pubsub") || arg_equals(&argv[3], "slave")) {
                onlyNone = true; /* gcsd has no such connections */
            } else if (!arg_equals(&argv[3], "normal")) {
                resp_add_errorf(out, "ERR Unknown client type '%.*s'",
                                (int)(argv[3].len > 64 ? 64 : argv[3].len),
                                argv[3].ptr);
                resp_buf_free(&lines);
                return;
            }
            if (argc > 4) {
                resp_add_error(out, ERR_SYNTAX);
                resp_buf_free(&lines);
                return;
            }
        } else if (argc >= 4 && arg_equals(&argv[2], "id")) {
            firstId = 3;
        } else if (argc != 2) {
            resp_add_error(out, ERR_SYNTAX);
            resp_buf_free(&lines);
            return;
        }
        /* Parse the ids once: the list may be long. */
        size_t nIds = firstId ? argc - firstId : 0;
        uint64_t *ids = nIds ? calloc(nIds, sizeof *ids) : NULL;
        for (size_t i = 0; i < nIds; i++) {
            if (!parse_u64(argv[firstId + i].ptr, argv[firstId + i].len,
                           &ids[i]) || ids[i] == 0) {
                resp_add_error(out, "ERR Invalid client ID");
                free(ids);
                resp_buf_free(&lines);
                return;
            }
        }
        for (client *o = c->srv->clients; o != NULL && !onlyNone;
             o = o->next) {
            bool want = nIds == 0;
            for (size_t i = 0; i < nIds && !want; i++) want = ids[i] == o->id;
            if (want && !(o->flags & CLIENT_CLOSING)) clientDescribe(o, &lines);
        }
        free(ids);
        resp_add_bulk(out, lines.data, lines.len);
        resp_buf_free(&lines);
    } else if ((arg_equals(sub, "setinfo") && argc == 4) ||
               (arg_equals(sub, "no-evict") && argc == 3) ||
               (arg_equals(sub, "no-touch") && argc == 3)) {
        /* Accepted for client libraries that send them; nothing to do. */
        resp_add_status(out, "OK");
    } else if (arg_equals(sub, "help")) {
        static const char *lines[] = {
            "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "GETNAME", "    Return the name of the current connection.",
            "ID", "    Return the ID of the current connection.",
            "INFO", "    Return information about the current client connection.",
            "LIST [TYPE <type>] [ID <id> [<id> ...]]",
            "    Return information about client connections.",
            "SETNAME <name>", "    Assign the name <name> to the current connection.",
            "HELP", "    Print this help.",
        };
        resp_add_array(out, sizeof lines / sizeof lines[0]);
        for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
            resp_add_status(out, lines[i]);
        }
    } else {
        static const char *const known[] = {"id", "getname", "setname",
                                            "info", "list", "setinfo",
                                            "no-evict", "no-touch", NULL};
        replySubcommandError(out, "client", sub, known);
    }
}

/* ---- COMMAND ----------------------------------------------------------- */

static void describeFlags(const command *cmd, resp_buf *out)
{
    const char *flags[6];
    size_t n = 0;
    if (cmd->flags & CMD_WRITE) flags[n++] = "write";
    if (cmd->flags & CMD_READ) flags[n++] = "readonly";
    if (cmd->flags & CMD_ADMIN) flags[n++] = "admin";
    if (cmd->flags & CMD_NOAUTH) flags[n++] = "no_auth";
    if (cmd->flags & CMD_FAST) flags[n++] = "fast";
    if (cmd->flags & CMD_PUBSUB) flags[n++] = "pubsub";
    resp_add_array(out, n);
    for (size_t i = 0; i < n; i++) resp_add_status(out, flags[i]);
}

static void commandInfo(const command *cmd, resp_buf *out)
{
    resp_add_array(out, 10);
    resp_add_bulk_str(out, cmd->name);
    resp_add_integer(out, cmd->arity);
    describeFlags(cmd, out);
    resp_add_integer(out, cmd->first_key);
    resp_add_integer(out, cmd->last_key);
    resp_add_integer(out, cmd->key_step);
    resp_add_array(out, 0); /* ACL categories */
    resp_add_array(out, 0); /* tips */
    resp_add_array(out, 0); /* key specs */
    resp_add_array(out, 0); /* subcommands */
}

static void commandDocs(const command *cmd, resp_buf *out)
{
    resp_add_bulk_str(out, cmd->name);
    resp_add_array(out, 6);
    resp_add_bulk_str(out, "summary");
    resp_add_bulk_str(out, cmd->summary ? cmd->summary : "");
    resp_add_bulk_str(out, "since");
    resp_add_bulk_str(out, "1.0.0");
    resp_add_bulk_str(out, "group");
    resp_add_bulk_str(out, cmd->group ? cmd->group : "server");
}

static void commandCommand(client *c, size_t argc, const resp_arg *argv)
{
    resp_buf *out = client_reply(c);
    size_t n = command_count();
    if (argc == 1) {
        resp_add_array(out, n);
        for (size_t i = 0; i < n; i++) commandInfo(command_at(i), out);
        return;
    }
    const resp_arg *sub = &argv[1];
    if (arg_equals(sub, "count") && argc == 2) {
        resp_add_integer(out, (long long)n);
    } else if (arg_equals(sub, "info")) {
        if (argc == 2) {
            resp_add_array(out, n);
            for (size_t i = 0; i < n; i++) commandInfo(command_at(i), out);
            return;
        }
        resp_add_array(out, argc - 2);
        for (size_t i = 2; i < argc; i++) {
            const command *cmd = command_lookup(argv[i].ptr, argv[i].len);
            if (cmd) commandInfo(cmd, out);
            else resp_add_null(out);
        }
    } else if (arg_equals(sub, "docs")) {
        /* A flat name/doc map, as RESP2 carries maps. */
        resp_buf docs;
        resp_buf_init(&docs);
        size_t found = 0;
        if (argc == 2) {
            for (size_t i = 0; i < n; i++) commandDocs(command_at(i), &docs);
            found = n;
        }
        for (size_t i = 2; i < argc; i++) {
            const command *cmd = command_lookup(argv[i].ptr, argv[i].len);
            if (cmd) {
                commandDocs(cmd, &docs);
                found++;
            }
        }
        resp_add_array(out, found * 2);
        resp_add_raw(out, docs.data, docs.len);
        resp_buf_free(&docs);
    } else if (arg_equals(sub, "list") && argc == 2) {
        resp_add_array(out, n);
        for (size_t i = 0; i < n; i++) {
            resp_add_bulk_str(out, command_at(i)->name);
        }
    } else {
        static const char *const known[] = {"count", "info", "docs", "list",
                                            NULL};
        replySubcommandError(out, "command", sub, known);
    }
}

/* ---- INFO -------------------------------------------------------------- */

/* One "key:value" line of INFO. */
#define infoLine(b, ...)                                                     \
    do {                                                                     \
        resp_add_printf((b), __VA_ARGS__);                                   \
        resp_add_raw((b), "\r\n", 2);                                         \
    } while (0)

static uint64_t rssBytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long size = 0, rss = 0;
    if (f != NULL) {
        if (fscanf(f, "%lu %lu", &size, &rss) != 2) rss = 0;
        fclose(f);
    }
    return (uint64_t)rss * (uint64_t)sysconf(_SC_PAGESIZE);
}


static void infoSection(client *c, const char *name, resp_buf *b)
{
    server *srv = c->srv;
    int64_t now = server_now_ms();
    if (strcmp(name, "server") == 0) {
        struct utsname u;
        uname(&u);
        infoLine(b, "# Server");
        infoLine(b, "redis_version:%s", REDIS_COMPAT_VERSION);
        infoLine(b, "gcsd_version:%s", GCSD_VERSION_STR);
        infoLine(b, "gcsd_format_min:%d", FSM_FORMAT_MIN);
        infoLine(b, "gcsd_format_max:%" PRIu64, srv->fsm->format_max);
        infoLine(b, "cluster_format:%" PRIu64, srv->fsm->cluster_format);
        infoLine(b, "redis_mode:standalone");
        infoLine(b, "os:%s %s %s", u.sysname, u.release, u.machine);
        infoLine(b, "arch_bits:%d", (int)(sizeof(void *) * 8));
        infoLine(b, "process_id:%d", (int)getpid());
        infoLine(b, "run_id:%s", srv->run_id);
        infoLine(b, "tcp_port:%d", srv->cfg->port);
        infoLine(b, "raft_port:%d", srv->cfg->raft_port);
        infoLine(b, "uptime_in_seconds:%" PRId64, (now - srv->start_ms) / 1000);
        infoLine(b, "uptime_in_days:%" PRId64,
                 (now - srv->start_ms) / 86400000);
    } else if (strcmp(name, "clients") == 0) {
        infoLine(b, "# Clients");
        infoLine(b, "connected_clients:%zu", srv->n_clients);
        infoLine(b, "maxclients:%u", srv->cfg->maxclients);
        size_t blocked = 0; /* waiting in a blocking command, as Redis */
        for (client *o = srv->clients; o; o = o->next) {
            for (reply_slot *s = o->slots_head; s != NULL; s = s->next) {
                if (s->blocking && !s->done) {
                    blocked++;
                    break;
                }
            }
        }
        infoLine(b, "blocked_clients:%zu", blocked);
    } else if (strcmp(name, "memory") == 0) {
        storage_info si = {0};
        storage_get_info(srv->fsm->store, &si);
        uint64_t rss = rssBytes();
        infoLine(b, "# Memory");
        infoLine(b, "used_memory:%" PRIu64, rss);
        infoLine(b, "used_memory_human:%.2fM", (double)rss / 1048576.0);
        infoLine(b, "used_memory_rss:%" PRIu64, rss);
        infoLine(b, "maxmemory:%" PRIu64, si.map_size);
        infoLine(b, "maxmemory_policy:noeviction");
        infoLine(b, "lmdb_map_size:%" PRIu64, si.map_size);
        infoLine(b, "lmdb_used_bytes:%" PRIu64, si.used_bytes);
        infoLine(b, "lmdb_file_bytes:%" PRIu64, si.file_bytes);
    } else if (strcmp(name, "persistence") == 0) {
        rglue_status st;
        rglue_get_status(srv->raft, &st);
        infoLine(b, "# Persistence");
        infoLine(b, "loading:0");
        infoLine(b, "persistence:raft-log+lmdb");
        infoLine(b, "applied_index:%" PRIu64, srv->fsm->applied_index);
        infoLine(b, "snapshots_taken:%" PRIu64, st.snapshots_taken);
        infoLine(b, "write_failed:%d", srv->fsm->failed || st.failed);
    } else if (strcmp(name, "stats") == 0) {
        infoLine(b, "# Stats");
        infoLine(b, "total_connections_received:%" PRIu64,
                 srv->stats.connections_received);
        infoLine(b, "total_commands_processed:%" PRIu64,
                 srv->stats.commands_processed);
        infoLine(b, "total_net_input_bytes:%" PRIu64,
                 srv->stats.net_input_bytes);
        infoLine(b, "total_net_output_bytes:%" PRIu64,
                 srv->stats.net_output_bytes);
        infoLine(b, "rejected_connections:%" PRIu64,
                 srv->stats.connections_rejected);
        infoLine(b, "total_error_replies:%" PRIu64,
                 srv->stats.commands_failed);
        infoLine(b, "total_protocol_errors:%" PRIu64,
                 srv->stats.protocol_errors);
        pubsub_stats pst;
        pubsub_get_stats(srv->pubsub, &pst);
        infoLine(b, "pubsub_channels:%zu", pst.channels);
        infoLine(b, "pubsub_patterns:%zu", pst.patterns);
        infoLine(b, "pubsub_subscribers:%zu", pst.subscribers);
        infoLine(b, "pubsub_watchers:%zu", pst.watchers);
        infoLine(b, "pubsub_messages_published:%" PRIu64,
                 pst.messages_published);
        infoLine(b, "pubsub_messages_delivered:%" PRIu64,
                 pst.messages_delivered);
        infoLine(b, "pubsub_watch_events_delivered:%" PRIu64,
                 pst.watch_events_delivered);
        infoLine(b, "pubsub_output_limit_disconnections:%" PRIu64,
                 pst.output_limit_disconnections);
        infoLine(b, "entries_applied:%" PRIu64, srv->fsm->entries_applied);
        infoLine(b, "commands_applied:%" PRIu64, srv->fsm->commands_applied);
    } else if (strcmp(name, "replication") == 0) {
        infoLine(b, "# Replication");
        infoLine(b, "role:master");
        infoLine(b, "connected_slaves:0");
    } else if (strcmp(name, "keyspace") == 0) {
        infoLine(b, "# Keyspace");
        storage_txn *t = fsm_read_txn(srv->fsm);
        uint64_t keys = 0;
        if (t != NULL && storage_key_count(t, &keys) == 0 && keys > 0) {
            infoLine(b, "db0:keys=%" PRIu64 ",expires=0,avg_ttl=0", keys);
        }
    } else if (strcmp(name, "cluster") == 0) {
        infoLine(b, "# Cluster");
        infoLine(b, "cluster_enabled:0");
    } else if (strcmp(name, "tables") == 0) {
        infoLine(b, "# Tables");
        infoLine(b, "revision:%" PRIu64, srv->fsm->revision);
        infoLine(b, "pg_waiters:%zu",
                 srv->pg_waits ? pg_wait_count(srv->pg_waits) : 0);
        infoLine(b, "health_tracked_nodes:%zu",
                 srv->node_health ? node_health_tracked(srv->node_health) : 0);
        infoLine(b, "health_nodes_declared_dead:%" PRIu64,
                 srv->node_health ? node_health_declared(srv->node_health)
                                  : 0);
        /* Dead rows kept and their caps (GCS.TABLES.CAPS). */
        static const struct { unsigned table; const char *name; } dead[] = {
            {TABLE_ACTOR, "actors"}, {TABLE_NODE, "nodes"}, {TABLE_PG, "pgs"},
        };
        storage_txn *t = fsm_read_txn(srv->fsm);
        for (size_t i = 0; t != NULL && i < 3; i++) {
            table_dead_info di;
            if (table_dead_info_get(t, dead[i].table, &di) != 0) continue;
            infoLine(b, "dead_%s_kept:%" PRIu64, dead[i].name, di.kept);
            infoLine(b, "dead_%s_cap:%" PRIu64, dead[i].name, di.cap);
        }
    } else if (strcmp(name, "raft") == 0) {
        rglue_status st;
        rglue_get_status(srv->raft, &st);
        infoLine(b, "# Raft");
        infoLine(b, "raft_id:%" PRIu64, st.id);
        infoLine(b, "raft_role:%s", rglue_role_name(st.role));
        infoLine(b, "raft_term:%" PRIu64, st.term);
        infoLine(b, "raft_leader_id:%" PRIu64, st.leader_id);
        infoLine(b, "raft_leader_address:%s", st.leader_address);
        char leaderClient[256] = "";
        if (st.leader_id != 0) {
            fsm_member_address(srv->fsm, st.leader_id, leaderClient,
                               sizeof leaderClient);
        }
        infoLine(b, "raft_leader_client_address:%s", leaderClient);
        infoLine(b, "raft_commit_index:%" PRIu64, st.commit_index);
        infoLine(b, "raft_applied_index:%" PRIu64, st.applied_index);
        infoLine(b, "raft_last_index:%" PRIu64, st.last_index);
        infoLine(b, "raft_entries_proposed:%" PRIu64, st.entries_proposed);
        infoLine(b, "raft_commands_proposed:%" PRIu64, st.commands_proposed);
        infoLine(b, "raft_barriers:%" PRIu64, st.barriers);
        infoLine(b, "raft_leader_changes:%" PRIu64, st.leader_changes);
        infoLine(b, "raft_leader_resets:%" PRIu64, st.leader_resets);
        infoLine(b, "raft_snapshots:%" PRIu64, st.snapshots_taken);
        infoLine(b, "raft_snapshots_installed:%" PRIu64,
                 st.snapshots_installed);
        infoLine(b, "raft_failed:%d", st.failed || srv->fsm->failed);
        infoLine(b, "raft_failure:%s",
                 srv->fsm->failed ? srv->fsm->failure : st.failure);
        proxy_stats ps;
        proxy_get_stats(srv->proxy, &ps);
        infoLine(b, "raft_forwarded:%" PRIu64, ps.forwarded);
        infoLine(b, "raft_retried:%" PRIu64, ps.retried);
        infoLine(b, "raft_redirected:%" PRIu64, ps.redirected);
        infoLine(b, "raft_leader_wait_timeouts:%" PRIu64, ps.timed_out);
        infoLine(b, "raft_waiting_for_leader:%zu", ps.waiting);
        infoLine(b, "raft_duplicates_answered:%" PRIu64,
                 srv->fsm->duplicates);
        infoLine(b, "raft_members:%zu", st.n_members);
        for (size_t i = 0; i < st.n_members; i++) {
            const rglue_member *m = &st.members[i];
            infoLine(b, "raft_member%zu:id=%" PRIu64 ",address=%s,role=%s,"
                     "match_index=%" PRIu64, i, m->id, m->address,
                     rglue_member_role_name(m->role),
                     m->match_index);
        }
    }
}

static void infoCommand(client *c, size_t argc, const resp_arg *argv)
{
    static const char *defaults[] = {"server", "clients", "memory",
                                     "persistence", "stats", "replication",
                                     "keyspace", "raft"};
    static const char *all[] = {"server", "clients", "memory", "persistence",
                                "stats", "replication", "cluster", "keyspace",
                                "raft", "tables"};
    bool want[sizeof all / sizeof all[0]] = {false};
    size_t nAll = sizeof all / sizeof all[0];
    if (argc == 1) {
        for (size_t i = 0; i < nAll; i++) {
            for (size_t k = 0; k < sizeof defaults / sizeof defaults[0]; k++) {
                if (strcmp(all[i], defaults[k]) == 0) want[i] = true;
            }
        }
    }
    for (size_t a = 1; a < argc; a++) {
        if (arg_equals(&argv[a], "all") || arg_equals(&argv[a], "everything")) {
            for (size_t i = 0; i < nAll; i++) want[i] = true;
        } else if (arg_equals(&argv[a], "default")) {
            for (size_t i = 0; i < nAll; i++) {
                if (strcmp(all[i], "cluster") != 0) want[i] = true;
            }
        }
        for (size_t i = 0; i < nAll; i++) {
            if (arg_equals(&argv[a], all[i])) want[i] = true;
        }
        /* Unknown sections (SENTINEL, for one) add nothing, as in Redis. */
    }
    resp_buf text;
    resp_buf_init(&text);
    for (size_t i = 0; i < nAll; i++) {
        if (!want[i]) continue;
        if (text.len > 0) resp_add_raw(&text, "\r\n", 2);
        infoSection(c, all[i], &text);
    }
    resp_add_bulk(client_reply(c), text.data, text.len);
    resp_buf_free(&text);
}

/* ---- CONFIG ------------------------------------------------------------ */

static void configCommand(client *c, size_t argc, const resp_arg *argv)
{
    resp_buf *out = client_reply(c);
    const config *cfg = c->srv->cfg;
    if (arg_equals(&argv[1], "get") && argc >= 3) {
        char port[16], maxclients[16], bulk[32], maxmem[32];
        snprintf(port, sizeof port, "%d", cfg->port);
        snprintf(maxclients, sizeof maxclients, "%u", cfg->maxclients);
        snprintf(bulk, sizeof bulk, "%" PRIu64, cfg->proto_max_bulk_len);
        snprintf(maxmem, sizeof maxmem, "%" PRIu64, cfg->map_size);
        const struct { const char *name, *value; } params[] = {
            {"appendonly", "yes"},
            {"appendfsync", "always"},
            {"bind", cfg->bind},
            {"cluster-enabled", "no"},
            {"databases", "1"},
            {"dir", cfg->data_dir},
            {"loglevel", log_get_level() == LOG_DEBUG ? "debug"
                         : log_get_level() == LOG_INFO ? "verbose"
                         : log_get_level() == LOG_NOTICE ? "notice"
                                                         : "warning"},
            {"maxclients", maxclients},
            {"maxmemory", maxmem},
            {"maxmemory-policy", "noeviction"},
            {"port", port},
            {"protected-mode", cfg->protected_mode ? "yes" : "no"},
            {"proto-max-bulk-len", bulk},
            {"requirepass", cfg->requirepass},
            {"save", ""},
            {"timeout", "0"},
        };
        size_t np = sizeof params / sizeof params[0];
        bool hit[sizeof params / sizeof params[0]] = {false};
        size_t n = 0;
        for (size_t a = 2; a < argc; a++) {
            for (size_t i = 0; i < np; i++) {
                if (!hit[i] && glob_match(argv[a].ptr, argv[a].len,
                                          params[i].name,
                                          strlen(params[i].name), true)) {
                    hit[i] = true;
                    n++;
                }
            }
        }
        resp_add_array(out, n * 2);
        for (size_t i = 0; i < np; i++) {
            if (!hit[i]) continue;
            resp_add_bulk_str(out, params[i].name);
            resp_add_bulk_str(out, params[i].value);
        }
    } else if (arg_equals(&argv[1], "set") && argc >= 4) {
        resp_add_errorf(out, "ERR Unknown option or number of arguments for "
                        "CONFIG SET - '%.*s' (gcsd is configured by flags)",
                        (int)(argv[2].len > 64 ? 64 : argv[2].len),
                        argv[2].ptr);
    } else if (arg_equals(&argv[1], "resetstat") && argc == 2) {
        memset(&c->srv->stats, 0, sizeof c->srv->stats);
        pubsub_reset_stats(c->srv->pubsub);
        resp_add_status(out, "OK");
    } else {
        static const char *const known[] = {"get", "set", "resetstat", NULL};
        replySubcommandError(out, "config", &argv[1], known);
    }
}

const command server_commands[] = {
    {"ping", -1, CMD_FAST | CMD_SUBSCRIBED_OK, pingCommand, NULL, NULL, 0, 0, 0, "connection",
     "Returns the server's liveliness response."},
    {"echo", 2, CMD_FAST, echoCommand, NULL, NULL, 0, 0, 0, "connection",
     "Returns the given string."},
    {"time", 1, CMD_FAST, timeCommand, NULL, NULL, 0, 0, 0, "server",
     "Returns the server time."},
    {"auth", -2, CMD_NOAUTH | CMD_FAST, authCommand, NULL, NULL, 0, 0, 0,
     "connection", "Authenticates the connection."},
    {"hello", -1, CMD_NOAUTH | CMD_FAST, helloCommand, NULL, NULL, 0, 0, 0,
     "connection", "Handshakes with the server (protocol 2 only)."},
    {"select", 2, CMD_FAST, selectCommand, NULL, NULL, 0, 0, 0, "connection",
     "Changes the selected database (only 0 exists)."},
    {"quit", -1, CMD_NOAUTH | CMD_FAST | CMD_SUBSCRIBED_OK, quitCommand, NULL, NULL, 0, 0, 0,
     "connection", "Closes the connection."},
    {"client", -2, 0, clientCommand, NULL, NULL, 0, 0, 0, "connection",
     "Inspects and names client connections."},
    {"command", -1, 0, commandCommand, NULL, NULL, 0, 0, 0, "server",
     "Returns detailed information about all commands."},
    {"shutdown", -1, CMD_ADMIN, shutdownCommand, NULL, NULL, 0, 0, 0,
     "server", "Stops the server (a leader hands leadership over first)."},
    {"info", -1, 0, infoCommand, NULL, NULL, 0, 0, 0, "server",
     "Returns information and statistics about the server."},
    {"config", -2, CMD_ADMIN, configCommand, NULL, NULL, 0, 0, 0, "server",
     "Reads the effective configuration."},
};
const size_t server_commands_count =
    sizeof server_commands / sizeof server_commands[0];
