/* command: the declarative command table and the one place where arity,
 * authentication and flags are checked before a handler runs.
 *
 * A command is one of:
 *  - local (exec): answered on this member, e.g. PING, CLIENT, INFO;
 *  - read (read + CMD_READ): answered from the local state once a read of it
 *    is linearizable (rglue_can_read_now, or after a barrier), or, when the
 *    client still waits for its own writes, through the log right behind
 *    them (so it sees them without waiting for them);
 *  - write (check + apply + CMD_WRITE): check validates the arguments on the
 *    member that receives it (no state is looked at: entries ahead in the log
 *    may change it), then the command goes through the raft log and apply
 *    decides its outcome and reply on every member.
 */
#ifndef GCS_COMMAND_H
#define GCS_COMMAND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fsm.h"
#include "resp.h"
#include "server.h"

enum {
    CMD_WRITE = 1 << 0,    /* changes state: goes through the log */
    CMD_READ = 1 << 1,     /* reads state: needs a linearizable read */
    CMD_ADMIN = 1 << 2,
    CMD_NOAUTH = 1 << 3,   /* allowed before AUTH */
    CMD_FAST = 1 << 4,     /* O(1) or O(log n) (COMMAND INFO flag) */
    CMD_PUBSUB = 1 << 5,
    CMD_DENYOOM = 1 << 6,  /* may grow the state: refused when nearly full */
    CMD_ENVELOPE = 1 << 8, /* GCS.FWD: a command forwarded by a member */
    CMD_LEADER = 1 << 7,   /* local command that must run on the leader (a
                              follower forwards it), e.g. NODE.HEARTBEAT */
    CMD_SUBSCRIBED_OK = 1 << 9, /* allowed in subscribed mode */
    CMD_TEST = 1 << 10,    /* only with --enable-test-commands */
};

typedef struct command command;

/* Local command: reply with client_reply(c). */
typedef void (*cmd_exec_fn)(client *c, size_t argc, const resp_arg *argv);

/* Read command: a pure function of the state seen by @t and the arguments,
 * replying into @out. It runs on a read transaction when a read of the local
 * state is linearizable, or inside the state machine (on the entry's write
 * transaction) when it travels through the log behind the client's own
 * writes. */
typedef void (*cmd_read_fn)(storage_txn *t, size_t argc, const resp_arg *argv,
                            resp_buf *out);

/* Write command, before proposing: 0 to go ahead, or -1 with an error reply
 * written to @err. Must not look at the state. */
typedef int (*cmd_check_fn)(size_t argc, const resp_arg *argv, resp_buf *err);

/* Write command, in the state machine: write the reply into @reply and
 * return 0 (command errors such as WRONGTYPE are replies too), or return a
 * storage error code when the transaction failed (the member fail-stops). */
typedef int (*cmd_apply_fn)(apply_ctx *a, size_t argc, const resp_arg *argv,
                            resp_buf *reply);

struct command {
    const char *name;   /* lower case */
    int arity;          /* Redis convention: -N means at least N */
    unsigned flags;
    cmd_exec_fn exec;
    cmd_check_fn check;
    cmd_apply_fn apply;
    int first_key, last_key, key_step; /* for COMMAND INFO */
    const char *group;  /* for COMMAND DOCS */
    const char *summary;
    cmd_read_fn read;   /* CMD_READ commands */
    /* Blocking commands (PG.WAIT): index of the argument holding how long
     * the command may block, in ms; 0 for the others. A follower forwards
     * such a command on a connection of its own and waits that much
     * longer for the reply. */
    int block_arg;
    /* The first state-machine format whose log may carry this command
     * (fsm.h, "state-machine formats"); 0 means 1. A command added to the
     * log by a later release names that release's format, so that it is
     * never proposed while a member that cannot apply it remains. */
    int format;
};

static inline uint64_t command_format(const command *cmd)
{
    return cmd->format > 0 ? (uint64_t)cmd->format : 1;
}

/* Look @name up, case-insensitively. NULL when unknown. */
const command *command_lookup(const char *name, size_t len);
size_t command_count(void);
const command *command_at(size_t i);

/* Count a reply to command_at(@index) in srv->command_results. */
void command_count_reply(server *srv, size_t index, bool error);

/* Run one request of @c: reply now, or through a reply slot once the
 * leader or the log answers. @argv is only borrowed for the call. */
void command_dispatch(client *c, size_t argc, const resp_arg *argv);

/* ---- handler helpers shared by the t_*.c files ------------------------ */

/* Redis's canonical replies. */
#define ERR_WRONGTYPE "WRONGTYPE Operation against a key holding the wrong kind of value"
#define ERR_NOT_INTEGER "ERR value is not an integer or out of range"
#define ERR_OVERFLOW "ERR increment or decrement would overflow"
#define ERR_SYNTAX "ERR syntax error"

void reply_arity_error(resp_buf *b, const char *name);
/* The client-visible error for an rglue failure code. */
void command_reply_raft_error(resp_buf *b, int rc);
/* A storage error during a read: reply an error naming it. */
void reply_storage_error(resp_buf *b, int rc);

bool arg_equals(const resp_arg *a, const char *s); /* case-insensitive */
storage_slice arg_slice(const resp_arg *a);

/* Strict integer parsing with Redis's rules (no spaces, no '+', no leading
 * zeros, in range). */
bool parse_ll(const char *s, size_t len, long long *out);
bool parse_u64(const char *s, size_t len, uint64_t *out);

/* SCAN / HSCAN arguments: cursor [MATCH pattern] [COUNT n] [TYPE t]
 * [NOVALUES]. @first is the index of the cursor argument; @hash selects
 * HSCAN's options. */
typedef struct scan_args {
    uint64_t cursor;
    const resp_arg *match; /* NULL: everything */
    size_t count;          /* default 10 */
    const resp_arg *type;  /* SCAN TYPE; NULL: any */
    bool novalues;         /* HSCAN NOVALUES */
} scan_args;
/* Parse SCAN-style arguments: 0, or -1 after replying Redis's error into
 * @reply. */
int scan_args_or_reply(size_t argc, const resp_arg *argv, size_t first,
                       bool hash, scan_args *out, resp_buf *reply);

/* Reply to a listing: the storage error @rc, or @n elements already encoded
 * in @items, as a plain array or (when @cursor) as SCAN's [cursor, array]. */
void reply_listing(resp_buf *out, int rc, const resp_buf *items, size_t n,
                   bool cursor, uint64_t next);

/* INCRBY / HINCRBY arithmetic: the integer in @cur (0 when !@found) plus
 * @delta into *sum. Returns true, or false after replying @not_int_err (the
 * stored value is not an integer) or Redis's overflow error into @reply. */
bool add_or_reply(bool found, storage_slice cur, long long delta,
                  const char *not_int_err, long long *sum, resp_buf *reply);

/* Read the string @key (when @field is NULL) or the field @field of hash
 * @key. Returns true, or false after replying the error (WRONGTYPE, storage
 * failure) into @out. */
bool lookup_or_reply(storage_txn *t, const resp_arg *key,
                     const resp_arg *field, storage_slice *value, bool *found,
                     resp_buf *out);

/* Handler tables of each t_*.c file, concatenated by command.c. */
extern const command string_commands[];
extern const size_t string_commands_count;
extern const command hash_commands[];
extern const size_t hash_commands_count;
extern const command keys_commands[];
extern const size_t keys_commands_count;
extern const command server_commands[];
extern const size_t server_commands_count;
extern const command raft_commands[];
extern const size_t raft_commands_count;
extern const command node_commands[];
extern const size_t node_commands_count;
extern const command actor_commands[];
extern const size_t actor_commands_count;
extern const command job_commands[];
extern const size_t job_commands_count;
extern const command pg_commands[];
extern const size_t pg_commands_count;
extern const command table_commands[];
extern const size_t table_commands_count;
extern const command pubsub_commands[];
extern const size_t pubsub_commands_count;

#endif /* GCS_COMMAND_H */
