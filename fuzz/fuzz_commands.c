/* fuzz_commands: every command handler through the state machine, under
 * libFuzzer.
 *
 * The input is a sequence of commands. Each is encoded for the log with
 * fsm_encode_command and applied through the hooks rglue calls
 * (fsm_raft_hooks: apply), on an fsm opened once per process in a temp dir
 * (removed right after opening; the open files live on), with increasing
 * indexes and leader times, several commands per entry as group commit
 * makes them. Read commands also run on fsm_read_txn, as a read served from
 * the local state does; write commands' check functions run too.
 *
 * Input: byte 0 flags, then commands.
 *   flags bit 0  log every command, even those command_dispatch would refuse
 *                (unknown, wrong arity, failing check): the state machine
 *                must cope with anything a member running other code logs
 *         bit 1  also apply every entry on a second fsm (a replica) and
 *                compare both states' dumps at the end
 *   command  [u8 h][arg]...: h & 0x3f arguments; h & 0x80 ends the log
 *            entry after this command
 *   arg      [u8 n][n bytes], or n == 0xff: [u16 little-endian n][n bytes];
 *            for the first argument n == 0 means: [u8 i], the name of the
 *            i-th command of the table (modulo its size)
 * A truncated input ends the last argument early.
 *
 * Checked: apply never fails, except on an entry holding a command this
 * binary does not know or a cluster format above its own, which it must
 * refuse naming both formats (the store is kept small: FLUSHALL every
 * FUZZ_FLUSH_EVERY inputs, default 16; run with 1 to reproduce a finding
 * from one input alone); replies come in command order, one per command,
 * each a single well-formed RESP2 value; a read's reply through the log
 * equals the same read on the local state once the entry is applied, when
 * no write follows it in the entry; afterwards the state is consistent
 * (DBSIZE equals the keys a full scan finds, every hash has as many fields
 * as HLEN says and at least one); with flag bit 1, the replica ends
 * byte-identical. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "command.h"
#include "fsm.h"
#include "log.h"
#include "storage.h"

#define FUZZ_NAME "fuzz_commands"
#include "fuzz_fsm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define MAX_ARGS 63
#define MAX_ENTRY 64 /* commands per log entry */

typedef fz_member member;

static member primary, replica;
static uint64_t next_index = 1;
static unsigned long inputs;
static unsigned long flush_every = 16;
/* Request ids are unique in the process: the de-duplication table outlives
 * FLUSHALL, and an id reused by a later input would get an earlier input's
 * reply (fuzz_entry covers retries on purpose). */
static uint64_t next_request_id = 1;

static void open_member(member *m, const char *what)
{
    fz_open(m, what, 64u << 20);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *e = getenv("FUZZ_FLUSH_EVERY");
    if (e != NULL && atol(e) > 0)
        flush_every = (unsigned long)atol(e);
    log_set_level(LOG_WARNING);
    open_member(&primary, "primary");
    open_member(&replica, "replica");
    return 0;
}

/* ---- RESP2 reply validation --------------------------------------------- */

/* Parse one RESP2 value at @p[*pos..len); false if malformed. */
static bool resp_value(const char *p, size_t len, size_t *pos, int depth)
{
    if (depth > 8 || *pos >= len)
        return false;
    char type = p[*pos];
    size_t i = *pos + 1;
    size_t line = i;
    while (i < len && p[i] != '\r' && p[i] != '\n')
        i++;
    if (i + 1 >= len || p[i] != '\r' || p[i + 1] != '\n')
        return false;
    size_t n = i - line; /* the line without its type byte and CRLF */
    *pos = i + 2;
    if (type == '+' || type == '-')
        return true;
    /* A number: optional '-', digits, no leading zero (but "0"). */
    uint64_t u = 0;
    bool neg = n > 0 && p[line] == '-';
    size_t d = line + (neg ? 1 : 0);
    if (d >= i || (p[d] == '0' && i - d > 1) || i - d > 19)
        return false;
    for (size_t k = d; k < i; k++) {
        if (p[k] < '0' || p[k] > '9')
            return false;
        u = u * 10 + (uint64_t)(p[k] - '0'); /* 19 digits fit */
    }
    if (u > (neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX))
        return false;
    /* Only -1 and non-negative sizes matter below. */
    long long v = neg ? (u == 1 ? -1 : -2) : (long long)u;
    if (type == ':')
        return true;
    if (type == '$') {
        if (v == -1)
            return true;
        if (v < 0 || (size_t)v > len - *pos || len - *pos - (size_t)v < 2)
            return false;
        *pos += (size_t)v;
        if (p[*pos] != '\r' || p[*pos + 1] != '\n')
            return false;
        *pos += 2;
        return true;
    }
    if (type == '*') {
        if (v == -1)
            return true;
        if (v < 0)
            return false;
        for (long long k = 0; k < v; k++)
            if (!resp_value(p, len, pos, depth + 1))
                return false;
        return true;
    }
    return false;
}

static void check_reply(const void *reply, size_t len)
{
    size_t pos = 0;
    if (!resp_value(reply, len, &pos, 0) || pos != len) {
        fprintf(stderr, "fuzz_commands: malformed reply (%zu bytes): ", len);
        fwrite(reply, 1, len < 512 ? len : 512, stderr);
        fputc('\n', stderr);
        abort();
    }
}

/* ---- applying entries --------------------------------------------------- */

typedef struct pending {
    const command *cmd; /* NULL if unknown */
    size_t argc;
    resp_arg *argv;     /* each argument in its own exact-size allocation */
    void *enc;
    size_t enc_len;
    bool local_read;    /* run it on the local state too */
    resp_buf reply;     /* its reply through the log */
    bool replied;
} pending;

typedef struct collector {
    pending *cmds;
    size_t n;
    size_t next; /* index of the reply expected next */
} collector;

static void on_reply(void *token, size_t i, const void *reply, size_t len)
{
    collector *c = token;
    CHECK(i == c->next && i < c->n);
    c->next++;
    check_reply(reply, len);
    resp_add_raw(&c->cmds[i].reply, reply, len);
    c->cmds[i].replied = true;
}

static void on_replica_reply(void *token, size_t i, const void *reply,
                             size_t len)
{
    collector *c = token;
    CHECK(i == c->next && i < c->n);
    c->next++;
    /* A replica decides the same outcome. */
    CHECK(len == c->cmds[i].reply.len &&
          (len == 0 || memcmp(reply, c->cmds[i].reply.data, len) == 0));
}

static bool arity_ok(const command *cmd, size_t argc)
{
    return (cmd->arity > 0 && (size_t)cmd->arity == argc) ||
           (cmd->arity < 0 && argc >= (size_t)-cmd->arity);
}

static void apply_entry(pending *cmds, size_t n, bool with_replica)
{
    if (n == 0)
        return;
    rglue_cmd rc[MAX_ENTRY];
    for (size_t i = 0; i < n; i++) {
        rc[i].data = cmds[i].enc;
        rc[i].len = cmds[i].enc_len;
    }
    uint64_t index = next_index++;
    int64_t time_ms = INT64_C(1700000000000) + (int64_t)index;
    if (fz_entry_beyond_format(&primary.f, rc, n)) {
        /* Logged by a member running newer code: every member of this
         * binary stops on it, the same way. */
        fz_apply_beyond_format(&primary, index, time_ms, rc, n);
        if (with_replica) fz_apply_beyond_format(&replica, index, time_ms, rc, n);
        return;
    }
    collector col = {cmds, n, 0};
    int r = primary.hooks.apply(primary.hooks.ctx, index, time_ms, rc, n,
                                on_reply, &col);
    if (r != 0) {
        fprintf(stderr, "fuzz_commands: apply failed: %d (%s)\n", r,
                primary.f.failure);
        abort();
    }
    CHECK(col.next == n);
    CHECK(primary.f.applied_index == index);

    if (with_replica) {
        collector rcol = {cmds, n, 0};
        r = replica.hooks.apply(replica.hooks.ctx, index, time_ms, rc, n,
                                on_replica_reply, &rcol);
        CHECK(r == 0);
        CHECK(rcol.next == n);
    }

    /* Reads with no write after them in the entry: the local state must
     * answer them as the log did. */
    bool write_after = false;
    for (size_t i = n; i-- > 0;) {
        const command *cmd = cmds[i].cmd;
        if (cmds[i].local_read) {
            storage_txn *t = fsm_read_txn(&primary.f);
            CHECK(t != NULL);
            resp_buf out;
            resp_buf_init(&out);
            cmd->read(t, cmds[i].argc, cmds[i].argv, &out);
            check_reply(out.data, out.len);
            if (!write_after) {
                if (!fz_same_bytes(out.data, out.len, cmds[i].reply.data,
                                   cmds[i].reply.len)) {
                    fprintf(stderr, "fuzz_commands: '%s' through the log "
                            "and on the local state differ:\n  log:   %.*s\n"
                            "  local: %.*s\n", cmd->name,
                            (int)cmds[i].reply.len, cmds[i].reply.data,
                            (int)out.len, out.data);
                    abort();
                }
            }
            resp_buf_free(&out);
        }
        if (cmd == NULL || !(cmd->flags & CMD_READ))
            write_after = true; /* conservatively, anything else writes */
    }
}

static void free_pending(pending *p)
{
    for (size_t i = 0; i < p->argc; i++)
        free((void *)p->argv[i].ptr);
    free(p->argv);
    free(p->enc);
    resp_buf_free(&p->reply);
    memset(p, 0, sizeof *p);
}

/* ---- state consistency -------------------------------------------------- */

typedef struct key_list {
    char **names;
    size_t *lens;
    storage_type *types;
    size_t n, cap;
} key_list;

static int collect_key(void *arg, storage_slice key, storage_type type)
{
    key_list *kl = arg;
    if (kl->n == kl->cap) {
        kl->cap = kl->cap ? kl->cap * 2 : 64;
        kl->names = realloc(kl->names, kl->cap * sizeof *kl->names);
        kl->lens = realloc(kl->lens, kl->cap * sizeof *kl->lens);
        kl->types = realloc(kl->types, kl->cap * sizeof *kl->types);
        CHECK(kl->names && kl->lens && kl->types);
    }
    kl->names[kl->n] = malloc(key.len ? key.len : 1);
    CHECK(kl->names[kl->n] != NULL);
    if (key.len)
        memcpy(kl->names[kl->n], key.data, key.len);
    kl->lens[kl->n] = key.len;
    kl->types[kl->n] = type;
    kl->n++;
    return 0;
}

static int count_field(void *arg, storage_slice field, storage_slice value)
{
    (void)field;
    (void)value;
    (*(uint64_t *)arg)++;
    return 0;
}

static void check_state(void)
{
    storage_txn *t = fsm_read_txn(&primary.f);
    CHECK(t != NULL);
    key_list kl = {0};
    uint64_t next;
    CHECK(storage_key_scan(t, 0, 0, collect_key, &kl, &next) == 0);
    CHECK(next == 0);
    uint64_t count;
    CHECK(storage_key_count(t, &count) == 0);
    if (count != kl.n) {
        fprintf(stderr, "fuzz_commands: DBSIZE %llu but a scan finds %zu "
                "keys\n", (unsigned long long)count, kl.n);
        abort();
    }
    for (size_t i = 0; i < kl.n; i++) {
        storage_slice key = {kl.names[i], kl.lens[i]};
        storage_type type;
        CHECK(storage_key_type(t, key, &type) == 0 && type == kl.types[i]);
        if (type == STORAGE_TYPE_HASH) {
            uint64_t len, fields = 0;
            CHECK(storage_hash_len(t, key, &len) == 0);
            CHECK(storage_hash_scan(t, key, 0, 0, count_field, &fields,
                                    &next) == 0);
            if (len != fields || len == 0) {
                fprintf(stderr, "fuzz_commands: hash '%.*s': HLEN %llu, "
                        "%llu fields found\n", (int)key.len,
                        (const char *)key.data, (unsigned long long)len,
                        (unsigned long long)fields);
                abort();
            }
        }
        free(kl.names[i]);
    }
    free(kl.names);
    free(kl.lens);
    free(kl.types);
}

static void compare_replica(void)
{
    void *a, *b;
    size_t alen, blen;
    uint64_t ai, bi;
    CHECK(primary.hooks.dump(primary.hooks.ctx, &a, &alen, &ai) == 0);
    CHECK(replica.hooks.dump(replica.hooks.ctx, &b, &blen, &bi) == 0);
    CHECK(ai == bi);
    if (alen != blen || memcmp(a, b, alen) != 0) {
        fprintf(stderr, "fuzz_commands: replica differs (%zu vs %zu bytes)\n",
                alen, blen);
        abort();
    }
    free(a);
    free(b);
}

/* Bring the replica level with the primary (after inputs without it). */
static void sync_replica(void)
{
    if (replica.f.applied_index == primary.f.applied_index)
        return;
    void *buf;
    size_t len;
    uint64_t index;
    CHECK(primary.hooks.dump(primary.hooks.ctx, &buf, &len, &index) == 0);
    fsm_end_reads(&primary.f);
    CHECK(replica.hooks.restore(replica.hooks.ctx, buf, len) == 0);
    CHECK(replica.f.applied_index == primary.f.applied_index);
    free(buf);
}

/* ---- input decoding ----------------------------------------------------- */

typedef struct cursor {
    const uint8_t *p;
    size_t left;
} cursor;

static bool take_u8(cursor *c, uint8_t *v)
{
    if (c->left == 0)
        return false;
    *v = *c->p++;
    c->left--;
    return true;
}

/* Decode one argument into its own allocation. False at the end. */
static bool take_arg(cursor *c, bool first, resp_arg *out)
{
    uint8_t b;
    if (!take_u8(c, &b))
        return false;
    size_t n = b;
    if (first && n == 0) {
        uint8_t i;
        if (!take_u8(c, &i))
            return false;
        const command *cmd = command_at(i % command_count());
        n = strlen(cmd->name);
        char *s = malloc(n);
        CHECK(s != NULL);
        memcpy(s, cmd->name, n);
        out->ptr = s;
        out->len = n;
        return true;
    }
    if (n == 0xff) {
        uint8_t lo = 0, hi = 0;
        take_u8(c, &lo);
        take_u8(c, &hi);
        n = (size_t)lo | (size_t)hi << 8;
    }
    if (n > c->left)
        n = c->left;
    char *s = malloc(n ? n : 1);
    CHECK(s != NULL);
    if (n)
        memcpy(s, c->p, n);
    c->p += n;
    c->left -= n;
    out->ptr = s;
    out->len = n;
    return true;
}

static void apply_flushall(bool with_replica)
{
    pending p = {0};
    resp_arg a = {"FLUSHALL", 8};
    CHECK(fsm_encode_command(0, 1, &a, &p.enc, &p.enc_len) == 0);
    p.cmd = command_lookup("flushall", 8);
    resp_buf_init(&p.reply);
    apply_entry(&p, 1, with_replica);
    free(p.enc);
    resp_buf_free(&p.reply);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t flags = data[0];
    bool log_all = flags & 1;
    bool with_replica = flags & 2;
    cursor c = {data + 1, size - 1};

    if (with_replica)
        sync_replica();
    if (inputs++ % flush_every == 0)
        apply_flushall(with_replica);

    pending entry[MAX_ENTRY];
    size_t n = 0;
    uint8_t h;
    while (take_u8(&c, &h)) {
        pending p = {0};
        resp_buf_init(&p.reply);
        size_t want = h & 0x3f;
        p.argv = calloc(want ? want : 1, sizeof *p.argv);
        CHECK(p.argv != NULL);
        while (p.argc < want && take_arg(&c, p.argc == 0, &p.argv[p.argc]))
            p.argc++;
        if (p.argc > 0)
            p.cmd = command_lookup(p.argv[0].ptr, p.argv[0].len);

        /* What command_dispatch would do with it. */
        bool loggable = false;
        const command *cmd = p.cmd;
        if (cmd != NULL && arity_ok(cmd, p.argc)) {
            if (cmd->flags & CMD_WRITE) {
                loggable = true;
                if (cmd->check != NULL) {
                    resp_buf err;
                    resp_buf_init(&err);
                    if (cmd->check(p.argc, p.argv, &err) != 0) {
                        check_reply(err.data, err.len);
                        CHECK(err.len > 0 && err.data[0] == '-');
                        loggable = false;
                    } else {
                        CHECK(err.len == 0);
                    }
                    resp_buf_free(&err);
                }
            } else if ((cmd->flags & CMD_READ) && cmd->read != NULL) {
                loggable = true;
                p.local_read = true;
            }
        }
        if (!loggable && !log_all) {
            free_pending(&p);
            if ((h & 0x80) && n > 0) {
                apply_entry(entry, n, with_replica);
                for (size_t i = 0; i < n; i++)
                    free_pending(&entry[i]);
                n = 0;
            }
            continue;
        }
        CHECK(fsm_encode_command(next_request_id++, p.argc, p.argv, &p.enc,
                                 &p.enc_len) == 0);
        entry[n++] = p;
        if ((h & 0x80) || n == MAX_ENTRY) {
            apply_entry(entry, n, with_replica);
            for (size_t i = 0; i < n; i++)
                free_pending(&entry[i]);
            n = 0;
        }
    }
    apply_entry(entry, n, with_replica);
    for (size_t i = 0; i < n; i++)
        free_pending(&entry[i]);

    check_state();
    if (with_replica)
        compare_replica();
    fsm_end_reads(&primary.f);
    return 0;
}
