/* Hash commands: HSET HSETNX HMSET HGET HMGET HDEL HEXISTS HLEN HKEYS HVALS
 * HGETALL HINCRBY HSTRLEN HSCAN, as Redis 7 answers them. */
#include <stdio.h>
#include <string.h>

#include "command.h"
#include "glob.h"

/* ---- reads ------------------------------------------------------------- */

static void hgetRead(storage_txn *t, size_t argc, const resp_arg *argv,
                     resp_buf *out)
{
    storage_slice v;
    bool found;
    if (!lookup_or_reply(t, &argv[1], &argv[2], &v, &found, out)) return;
    if (found) resp_add_bulk(out, v.data, v.len);
    else resp_add_null(out);
}

static void hmgetRead(storage_txn *t, size_t argc, const resp_arg *argv,
                      resp_buf *out)
{
    storage_type type;
    int rc = storage_key_type(t, arg_slice(&argv[1]), &type);
    if (rc == 0 && type == STORAGE_TYPE_STRING) rc = STORAGE_EWRONGTYPE;
    if (rc != 0) {
        reply_storage_error(out, rc);
        return;
    }
    resp_add_array(out, argc - 2);
    for (size_t i = 2; i < argc; i++) {
        storage_slice v;
        bool found = false;
        if (type == STORAGE_TYPE_HASH) {
            rc = storage_hash_get(t, arg_slice(&argv[1]), arg_slice(&argv[i]),
                                  &v, &found);
            if (rc != 0) found = false;
        }
        if (found) resp_add_bulk(out, v.data, v.len);
        else resp_add_null(out);
    }
}

static void hexistsRead(storage_txn *t, size_t argc, const resp_arg *argv,
                        resp_buf *out)
{
    storage_slice v;
    bool found;
    if (lookup_or_reply(t, &argv[1], &argv[2], &v, &found, out)) resp_add_integer(out, found ? 1 : 0);
}

static void hstrlenRead(storage_txn *t, size_t argc, const resp_arg *argv,
                        resp_buf *out)
{
    storage_slice v;
    bool found;
    if (lookup_or_reply(t, &argv[1], &argv[2], &v, &found, out)) resp_add_integer(out, found ? (long long)v.len : 0);
}

static void hlenRead(storage_txn *t, size_t argc, const resp_arg *argv,
                     resp_buf *out)
{
    uint64_t n;
    int rc = storage_hash_len(t, arg_slice(&argv[1]), &n);
    if (rc != 0) reply_storage_error(out, rc);
    else resp_add_integer(out, (long long)n);
}

/* Collects fields and/or values into a buffer, counting elements. */
typedef struct hash_collect {
    resp_buf items;
    size_t n;
    bool fields, values;
    const resp_arg *match;
} hash_collect;

static int collectField(void *arg, storage_slice field, storage_slice value)
{
    hash_collect *hc = arg;
    if (hc->match != NULL &&
        !glob_match(hc->match->ptr, hc->match->len, field.data, field.len,
                    false)) {
        return 0;
    }
    if (hc->fields) {
        resp_add_bulk(&hc->items, field.data, field.len);
        hc->n++;
    }
    if (hc->values) {
        resp_add_bulk(&hc->items, value.data, value.len);
        hc->n++;
    }
    return 0;
}

static void hashListing(storage_txn *t, resp_buf *out, const resp_arg *key,
                        bool fields, bool values)
{
    hash_collect hc = {.fields = fields, .values = values};
    resp_buf_init(&hc.items);
    uint64_t next;
    int rc = storage_hash_scan(t, arg_slice(key), 0, 0, collectField, &hc,
                               &next);
    reply_listing(out, rc, &hc.items, hc.n, false, 0);
    resp_buf_free(&hc.items);
}

static void hkeysRead(storage_txn *t, size_t argc, const resp_arg *argv,
                      resp_buf *out)
{
    hashListing(t, out, &argv[1], true, false);
}

static void hvalsRead(storage_txn *t, size_t argc, const resp_arg *argv,
                      resp_buf *out)
{
    hashListing(t, out, &argv[1], false, true);
}

static void hgetallRead(storage_txn *t, size_t argc, const resp_arg *argv,
                        resp_buf *out)
{
    hashListing(t, out, &argv[1], true, true);
}

static void hscanRead(storage_txn *t, size_t argc, const resp_arg *argv,
                      resp_buf *out)
{
    scan_args sa;
    if (scan_args_or_reply(argc, argv, 2, true, &sa, out) != 0) return;
    hash_collect hc = {.fields = true, .values = !sa.novalues,
                       .match = sa.match};
    resp_buf_init(&hc.items);
    uint64_t next = 0;
    int rc = storage_hash_scan(t, arg_slice(&argv[1]), sa.cursor, sa.count,
                               collectField, &hc, &next);
    reply_listing(out, rc, &hc.items, hc.n, true, next);
    resp_buf_free(&hc.items);
}

/* ---- writes ------------------------------------------------------------ */

static int hsetCheck(size_t argc, const resp_arg *argv, resp_buf *err)
{
    if (argc % 2 != 0) {
        char name[16];
        size_t n = argv[0].len < sizeof name - 1 ? argv[0].len
                                                 : sizeof name - 1;
        for (size_t i = 0; i < n; i++) {
            char ch = argv[0].ptr[i];
            name[i] = (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
        }
        name[n] = '\0';
        reply_arity_error(err, name);
        return -1;
    }
    return 0;
}

/* HSET and HMSET: set every pair; HSET counts new fields, HMSET says OK. */
static int hsetApply(apply_ctx *a, size_t argc, const resp_arg *argv,
                     resp_buf *reply)
{
    if (hsetCheck(argc, argv, reply) != 0) return 0;
    storage_slice key = arg_slice(&argv[1]);
    storage_type type;
    int rc = storage_key_type(a->txn, key, &type);
    if (rc != 0) return rc;
    if (type == STORAGE_TYPE_STRING) {
        resp_add_error(reply, ERR_WRONGTYPE);
        return 0;
    }
    long long created = 0;
    for (size_t i = 2; i + 1 < argc; i += 2) {
        bool isNew;
        rc = storage_hash_set(a->txn, key, arg_slice(&argv[i]),
                              arg_slice(&argv[i + 1]), &isNew);
        if (rc == 0) {
            rc = apply_emit_field(a, FSM_TABLE_KEYSPACE, key,
                                  arg_slice(&argv[i]), FSM_EVENT_PUT,
                                  arg_slice(&argv[i + 1]));
        }
        if (rc != 0) return rc;
        created += isNew;
    }
    if (arg_equals(&argv[0], "hmset")) resp_add_status(reply, "OK");
    else resp_add_integer(reply, created);
    return 0;
}

static int hsetnxApply(apply_ctx *a, size_t argc, const resp_arg *argv,
                       resp_buf *reply)
{
    storage_slice v;
    bool found;
    int rc = storage_hash_get(a->txn, arg_slice(&argv[1]), arg_slice(&argv[2]),
                              &v, &found);
    if (rc == STORAGE_EWRONGTYPE) {
        resp_add_error(reply, ERR_WRONGTYPE);
        return 0;
    }
    if (rc != 0) return rc;
    if (found) {
        resp_add_integer(reply, 0);
        return 0;
    }
    rc = storage_hash_set(a->txn, arg_slice(&argv[1]), arg_slice(&argv[2]),
                          arg_slice(&argv[3]), NULL);
    if (rc == 0) {
        rc = apply_emit_field(a, FSM_TABLE_KEYSPACE, arg_slice(&argv[1]),
                              arg_slice(&argv[2]), FSM_EVENT_PUT,
                              arg_slice(&argv[3]));
    }
    if (rc != 0) return rc;
    resp_add_integer(reply, 1);
    return 0;
}

static int hdelApply(apply_ctx *a, size_t argc, const resp_arg *argv,
                     resp_buf *reply)
{
    storage_slice key = arg_slice(&argv[1]);
    storage_type type;
    int rc = storage_key_type(a->txn, key, &type);
    if (rc != 0) return rc;
    if (type == STORAGE_TYPE_STRING) {
        resp_add_error(reply, ERR_WRONGTYPE);
        return 0;
    }
    long long deleted = 0;
    for (size_t i = 2; i < argc && type == STORAGE_TYPE_HASH; i++) {
        bool gone;
        rc = storage_hash_delete(a->txn, key, arg_slice(&argv[i]), &gone);
        if (rc == 0 && gone) {
            rc = apply_emit_field(a, FSM_TABLE_KEYSPACE, key,
                                  arg_slice(&argv[i]), FSM_EVENT_DELETE,
                                  (storage_slice){"", 0});
        }
        if (rc != 0) return rc;
        deleted += gone;
    }
    resp_add_integer(reply, deleted);
    return 0;
}

static int hincrbyCheck(size_t argc, const resp_arg *argv, resp_buf *err)
{
    long long v;
    if (!parse_ll(argv[3].ptr, argv[3].len, &v)) {
        resp_add_error(err, ERR_NOT_INTEGER);
        return -1;
    }
    return 0;
}

static int hincrbyApply(apply_ctx *a, size_t argc, const resp_arg *argv,
                        resp_buf *reply)
{
    long long delta;
    if (!parse_ll(argv[3].ptr, argv[3].len, &delta)) {
        resp_add_error(reply, ERR_NOT_INTEGER);
        return 0;
    }
    storage_slice cur;
    bool found;
    int rc = storage_hash_get(a->txn, arg_slice(&argv[1]), arg_slice(&argv[2]),
                              &cur, &found);
    if (rc == STORAGE_EWRONGTYPE) {
        resp_add_error(reply, ERR_WRONGTYPE);
        return 0;
    }
    if (rc != 0) return rc;
    long long value;
    if (!add_or_reply(found, cur, delta, "ERR hash value is not an integer",
                      &value, reply)) {
        return 0;
    }
    char digits[24];
    int n = snprintf(digits, sizeof digits, "%lld", value);
    rc = storage_hash_set(a->txn, arg_slice(&argv[1]), arg_slice(&argv[2]),
                          (storage_slice){digits, (size_t)n}, NULL);
    if (rc == 0) {
        rc = apply_emit_field(a, FSM_TABLE_KEYSPACE, arg_slice(&argv[1]),
                              arg_slice(&argv[2]), FSM_EVENT_PUT,
                              (storage_slice){digits, (size_t)n});
    }
    if (rc == 0) resp_add_integer(reply, value);
    return rc;
}

const command hash_commands[] = {
    {"hget", 3, CMD_READ | CMD_FAST, NULL, NULL, NULL, 1, 1, 1, "hash",
     "Returns the value of a field in a hash.",
     .read = hgetRead},
    {"hmget", -3, CMD_READ | CMD_FAST, NULL, NULL, NULL, 1, 1, 1,
     "hash", "Returns the values of all fields in a hash.",
     .read = hmgetRead},
    {"hexists", 3, CMD_READ | CMD_FAST, NULL, NULL, NULL, 1, 1, 1,
     "hash", "Determines whether a field exists in a hash.",
     .read = hexistsRead},
    {"hstrlen", 3, CMD_READ | CMD_FAST, NULL, NULL, NULL, 1, 1, 1,
     "hash", "Returns the length of the value of a field.",
     .read = hstrlenRead},
    {"hlen", 2, CMD_READ | CMD_FAST, NULL, NULL, NULL, 1, 1, 1, "hash",
     "Returns the number of fields in a hash.",
     .read = hlenRead},
    {"hkeys", 2, CMD_READ, NULL, NULL, NULL, 1, 1, 1, "hash",
     "Returns all fields in a hash.",
     .read = hkeysRead},
    {"hvals", 2, CMD_READ, NULL, NULL, NULL, 1, 1, 1, "hash",
     "Returns all values in a hash.",
     .read = hvalsRead},
    {"hgetall", 2, CMD_READ, NULL, NULL, NULL, 1, 1, 1, "hash",
     "Returns all fields and values in a hash.",
     .read = hgetallRead},
    {"hscan", -3, CMD_READ, NULL, NULL, NULL, 1, 1, 1, "hash",
     "Iterates over fields and values of a hash.",
     .read = hscanRead},
    {"hset", -4, CMD_WRITE | CMD_DENYOOM | CMD_FAST, NULL, hsetCheck, hsetApply, 1, 1, 1,
     "hash", "Creates or modifies the value of a field in a hash."},
    {"hmset", -4, CMD_WRITE | CMD_DENYOOM | CMD_FAST, NULL, hsetCheck, hsetApply, 1, 1, 1,
     "hash", "Sets the values of multiple fields."},
    {"hsetnx", 4, CMD_WRITE | CMD_DENYOOM | CMD_FAST, NULL, NULL, hsetnxApply, 1, 1, 1,
     "hash", "Sets the value of a field only when the field doesn't exist."},
    {"hdel", -3, CMD_WRITE | CMD_FAST, NULL, NULL, hdelApply, 1, 1, 1, "hash",
     "Deletes one or more fields and their values from a hash."},
    {"hincrby", 4, CMD_WRITE | CMD_DENYOOM | CMD_FAST, NULL, hincrbyCheck, hincrbyApply, 1,
     1, 1, "hash", "Increments the integer value of a field in a hash."},
};
const size_t hash_commands_count =
    sizeof hash_commands / sizeof hash_commands[0];
