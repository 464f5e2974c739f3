/* Keyspace commands: DEL UNLINK EXISTS TYPE KEYS SCAN DBSIZE FLUSHALL
 * FLUSHDB. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "command.h"
#include "glob.h"
#include "table.h"

/* Redis's cursor parsing: strtoul semantics ("+5", "-1" wrapping, "" as 0),
 * no leading space, nothing after the digits, no overflow. */
static bool parseCursor(const resp_arg *a, uint64_t *out)
{
    char buf[32];
    if (a->len >= sizeof buf) return false;
    memcpy(buf, a->ptr, a->len);
    buf[a->len] = '\0';
    if (strlen(buf) != a->len || isspace((unsigned char)buf[0])) return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(buf, &end, 10);
    if (*end != '\0' || errno == ERANGE) return false;
    *out = v;
    return true;
}

int scan_args_or_reply(size_t argc, const resp_arg *argv, size_t first,
                       bool hash, scan_args *out, resp_buf *reply)
{
    memset(out, 0, sizeof *out);
    out->count = 10;
    if (!parseCursor(&argv[first], &out->cursor)) {
        resp_add_error(reply, "ERR invalid cursor");
        return -1;
    }
    for (size_t i = first + 1; i < argc; i++) {
        bool more = i + 1 < argc;
        if (arg_equals(&argv[i], "count") && more) {
            long long n;
            if (!parse_ll(argv[i + 1].ptr, argv[i + 1].len, &n)) {
                resp_add_error(reply, ERR_NOT_INTEGER);
                return -1;
            }
            if (n < 1) {
                resp_add_error(reply, ERR_SYNTAX);
                return -1;
            }
            out->count = (size_t)n;
            i++;
        } else if (arg_equals(&argv[i], "match") && more) {
            /* Only the exact pattern "*" skips matching, as in Redis. */
            out->match = arg_equals(&argv[i + 1], "*") ? NULL : &argv[i + 1];
            i++;
        } else if (!hash && arg_equals(&argv[i], "type") && more) {
            /* Redis 7.0: a type no key has simply matches nothing. */
            out->type = &argv[i + 1];
            i++;
        } else if (hash && arg_equals(&argv[i], "novalues")) {
            out->novalues = true;
        } else {
            resp_add_error(reply, ERR_SYNTAX);
            return -1;
        }
    }
    return 0;
}

static const char *typeName(storage_type t)
{
    switch (t) {
        case STORAGE_TYPE_STRING: return "string";
        case STORAGE_TYPE_HASH: return "hash";
        default: return "none";
    }
}

/* ---- reads ------------------------------------------------------------- */

static void existsRead(storage_txn *t, size_t argc, const resp_arg *argv,
                       resp_buf *out)
{
    long long n = 0;
    for (size_t i = 1; i < argc; i++) {
        storage_type type;
        if (storage_key_type(t, arg_slice(&argv[i]), &type) == 0 &&
            type != STORAGE_TYPE_NONE) {
            n++;
        }
    }
    resp_add_integer(out, n);
}

static void typeRead(storage_txn *t, size_t argc, const resp_arg *argv,
                     resp_buf *out)
{
    storage_type type;
    int rc = storage_key_type(t, arg_slice(&argv[1]), &type);
    if (rc != 0) reply_storage_error(out, rc);
    else resp_add_status(out, typeName(type));
}

static void dbsizeRead(storage_txn *t, size_t argc, const resp_arg *argv,
                       resp_buf *out)
{
    uint64_t n;
    int rc = storage_key_count(t, &n);
    if (rc != 0) reply_storage_error(out, rc);
    else resp_add_integer(out, (long long)n);
}

typedef struct key_collect {
    resp_buf items;
    size_t n;
    const resp_arg *match;
    const resp_arg *type;
} key_collect;

static int collectKey(void *arg, storage_slice key, storage_type type)
{
    key_collect *kc = arg;
    if (kc->type != NULL && !arg_equals(kc->type, typeName(type))) return 0;
    if (kc->match != NULL &&
        !glob_match(kc->match->ptr, kc->match->len, key.data, key.len,
                    false)) {
        return 0;
    }
    resp_add_bulk(&kc->items, key.data, key.len);
    kc->n++;
    return 0;
}

static void keysRead(storage_txn *t, size_t argc, const resp_arg *argv,
                     resp_buf *out)
{
    key_collect kc = {0};
    resp_buf_init(&kc.items);
    if (!arg_equals(&argv[1], "*")) kc.match = &argv[1];
    uint64_t next;
    int rc = storage_key_scan(t, 0, 0, collectKey, &kc, &next);
    reply_listing(out, rc, &kc.items, kc.n, false, 0);
    resp_buf_free(&kc.items);
}

static void scanRead(storage_txn *t, size_t argc, const resp_arg *argv,
                     resp_buf *out)
{
    scan_args sa;
    if (scan_args_or_reply(argc, argv, 1, false, &sa, out) != 0) return;
    key_collect kc = {.match = sa.match, .type = sa.type};
    resp_buf_init(&kc.items);
    uint64_t next = 0;
    int rc = storage_key_scan(t, sa.cursor, sa.count, collectKey, &kc, &next);
    reply_listing(out, rc, &kc.items, kc.n, true, next);
    resp_buf_free(&kc.items);
}

/* ---- writes ------------------------------------------------------------ */

static int delApply(apply_ctx *a, size_t argc, const resp_arg *argv,
                    resp_buf *reply)
{
    long long n = 0;
    for (size_t i = 1; i < argc; i++) {
        bool gone;
        int rc = storage_key_delete(a->txn, arg_slice(&argv[i]), &gone);
        if (rc == 0 && gone) {
            rc = apply_emit(a, FSM_TABLE_KEYSPACE, arg_slice(&argv[i]),
                            FSM_EVENT_DELETE, (storage_slice){"", 0});
        }
        if (rc != 0) return rc;
        n += gone;
    }
    resp_add_integer(reply, n);
    return 0;
}

static int flushCheck(size_t argc, const resp_arg *argv, resp_buf *err)
{
    if (argc > 2 || (argc == 2 && !arg_equals(&argv[1], "async") &&
                     !arg_equals(&argv[1], "sync"))) {
        resp_add_error(err, ERR_SYNTAX);
        return -1;
    }
    return 0;
}

/* FLUSHALL's change events: a DELETE per key, collected before the flush
 * (the scan's slices are not valid across writes). */
static int collectFlushed(void *arg, storage_slice key, storage_type type)
{
    (void)type;
    resp_buf *keys = arg;
    uint32_t len = (uint32_t)key.len;
    resp_add_raw(keys, &len, sizeof len);
    resp_add_raw(keys, key.data, key.len);
    return 0;
}

static int flushApply(apply_ctx *a, size_t argc, const resp_arg *argv,
                      resp_buf *reply)
{
    if (flushCheck(argc, argv, reply) != 0) return 0;
    resp_buf keys;
    resp_buf_init(&keys);
    uint64_t next;
    int rc = storage_key_scan(a->txn, 0, 0, collectFlushed, &keys, &next);
    for (size_t off = 0; rc == 0 && off < keys.len;) {
        uint32_t len;
        memcpy(&len, keys.data + off, sizeof len);
        off += sizeof len;
        rc = apply_emit(a, FSM_TABLE_KEYSPACE,
                        (storage_slice){keys.data + off, len},
                        FSM_EVENT_DELETE, (storage_slice){"", 0});
        off += len;
    }
    resp_buf_free(&keys);
    if (rc == 0) rc = storage_key_flush(a->txn);
    if (rc == 0) rc = table_flush(a);
    if (rc != 0) return rc;
    resp_add_status(reply, "OK");
    return 0;
}

const command keys_commands[] = {
    {"exists", -2, CMD_READ | CMD_FAST, NULL, NULL, NULL, 1, -1, 1,
     "generic", "Determines whether one or more keys exist.",
     .read = existsRead},
    {"type", 2, CMD_READ | CMD_FAST, NULL, NULL, NULL, 1, 1, 1,
     "generic", "Determines the type of value stored at a key.",
     .read = typeRead},
    {"dbsize", 1, CMD_READ | CMD_FAST, NULL, NULL, NULL, 0, 0, 0,
     "server", "Returns the number of keys in the database.",
     .read = dbsizeRead},
    {"keys", 2, CMD_READ, NULL, NULL, NULL, 0, 0, 0, "generic",
     "Returns all key names that match a pattern.",
     .read = keysRead},
    {"scan", -2, CMD_READ, NULL, NULL, NULL, 0, 0, 0, "generic",
     "Iterates over the key names in the database.",
     .read = scanRead},
    {"del", -2, CMD_WRITE, NULL, NULL, delApply, 1, -1, 1, "generic",
     "Deletes one or more keys."},
    {"unlink", -2, CMD_WRITE | CMD_FAST, NULL, NULL, delApply, 1, -1, 1,
     "generic", "Deletes one or more keys."},
    {"flushall", -1, CMD_WRITE, NULL, flushCheck, flushApply, 0, 0, 0,
     "server", "Removes all keys from all databases."},
    {"flushdb", -1, CMD_WRITE, NULL, flushCheck, flushApply, 0, 0, 0,
     "server", "Remove all keys from the current database."},
};
const size_t keys_commands_count =
    sizeof keys_commands / sizeof keys_commands[0];
