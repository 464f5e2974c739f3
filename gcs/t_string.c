/* String commands: GET SET SETNX MGET MSET INCR INCRBY DECR DECRBY STRLEN
 * APPEND. Replies and errors as Redis 7 gives them. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "command.h"

/* Largest string APPEND may build: Redis's default proto-max-bulk-len. */
#define STRING_MAX_LEN (512u * 1024 * 1024)

/* ---- reads ------------------------------------------------------------- */

static void getRead(storage_txn *t, size_t argc, const resp_arg *argv,
                    resp_buf *out)
{
    storage_slice v;
    bool found;
    if (!lookup_or_reply(t, &argv[1], NULL, &v, &found, out)) return;
    if (found) resp_add_bulk(out, v.data, v.len);
    else resp_add_null(out);
}

static void mgetRead(storage_txn *t, size_t argc, const resp_arg *argv,
                     resp_buf *out)
{
    resp_add_array(out, argc - 1);
    for (size_t i = 1; i < argc; i++) {
        storage_slice v;
        bool found;
        /* A key of another type reads as nil, as in Redis. */
        if (storage_string_get(t, arg_slice(&argv[i]), &v, &found) == 0 &&
            found) {
            resp_add_bulk(out, v.data, v.len);
        } else {
            resp_add_null(out);
        }
    }
}

static void strlenRead(storage_txn *t, size_t argc, const resp_arg *argv,
                       resp_buf *out)
{
    storage_slice v;
    bool found;
    if (lookup_or_reply(t, &argv[1], NULL, &v, &found, out)) resp_add_integer(out, found ? (long long)v.len : 0);
}

/* ---- SET --------------------------------------------------------------- */

enum { SET_NX = 1, SET_XX = 2, SET_GET = 4, SET_IFEQ = 8 };

/* Parse SET's options; 0 with *flags (and with SET_IFEQ, *ifeq the value to
 * compare with, Valkey's compare-and-set), or -1 with an error in @err. */
static int parseSet(size_t argc, const resp_arg *argv, unsigned *flags,
                    const resp_arg **ifeq, resp_buf *err)
{
    *flags = 0;
    *ifeq = NULL;
    for (size_t i = 3; i < argc; i++) {
        const resp_arg *a = &argv[i];
        if (arg_equals(a, "nx") && !(*flags & (SET_XX | SET_IFEQ))) {
            *flags |= SET_NX;
        } else if (arg_equals(a, "xx") && !(*flags & (SET_NX | SET_IFEQ))) {
            *flags |= SET_XX;
        } else if (arg_equals(a, "ifeq") && i + 1 < argc &&
                   !(*flags & (SET_NX | SET_XX | SET_IFEQ))) {
            *flags |= SET_IFEQ;
            *ifeq = &argv[++i];
        } else if (arg_equals(a, "get")) {
            *flags |= SET_GET;
        } else if (arg_equals(a, "keepttl")) {
            /* Keys never expire here, so there is no TTL to keep. */
        } else if (arg_equals(a, "ex") || arg_equals(a, "px") ||
                   arg_equals(a, "exat") || arg_equals(a, "pxat")) {
            resp_add_error(err, "ERR expiry options are not supported: gcsd "
                                "keys do not expire");
            return -1;
        } else {
            resp_add_error(err, ERR_SYNTAX);
            return -1;
        }
    }
    return 0;
}

static int setCheck(size_t argc, const resp_arg *argv, resp_buf *err)
{
    unsigned flags;
    const resp_arg *ifeq;
    return parseSet(argc, argv, &flags, &ifeq, err);
}

static int setApply(apply_ctx *a, size_t argc, const resp_arg *argv,
                    resp_buf *reply)
{
    unsigned flags;
    const resp_arg *ifeq;
    if (parseSet(argc, argv, &flags, &ifeq, reply) != 0) return 0;
    storage_slice key = arg_slice(&argv[1]);
    /* A plain SET replaces whatever is there: no need to look first. */
    storage_type type = STORAGE_TYPE_NONE;
    int rc = flags != 0 ? storage_key_type(a->txn, key, &type) : 0;
    if (rc != 0) return rc;
    if ((flags & (SET_GET | SET_IFEQ)) && type == STORAGE_TYPE_HASH) {
        resp_add_error(reply, ERR_WRONGTYPE);
        return 0;
    }
    bool exists = type != STORAGE_TYPE_NONE;
    storage_slice old;
    bool found = false;
    if (exists && (flags & (SET_GET | SET_IFEQ))) {
        rc = storage_string_get(a->txn, key, &old, &found);
        if (rc != 0) return rc;
    }
    if (flags & SET_GET) {
        /* The old value goes out before the write replaces it. */
        if (found) resp_add_bulk(reply, old.data, old.len);
        else resp_add_null(reply);
    }
    /* IFEQ never creates the key. */
    bool unequal = (flags & SET_IFEQ) &&
                   (!found || old.len != ifeq->len ||
                    (old.len > 0 && memcmp(old.data, ifeq->ptr, old.len) != 0));
    if (((flags & SET_NX) && exists) || ((flags & SET_XX) && !exists) ||
        unequal) {
        if (!(flags & SET_GET)) resp_add_null(reply);
        return 0;
    }
    rc = storage_string_set(a->txn, key, arg_slice(&argv[2]));
    if (rc == 0) {
        rc = apply_emit(a, FSM_TABLE_KEYSPACE, key, FSM_EVENT_PUT,
                        arg_slice(&argv[2]));
    }
    if (rc != 0) return rc;
    if (!(flags & SET_GET)) resp_add_status(reply, "OK");
    return 0;
}

static int setnxApply(apply_ctx *a, size_t argc, const resp_arg *argv,
                      resp_buf *reply)
{
    storage_type type;
    int rc = storage_key_type(a->txn, arg_slice(&argv[1]), &type);
    if (rc != 0) return rc;
    if (type != STORAGE_TYPE_NONE) {
        resp_add_integer(reply, 0);
        return 0;
    }
    rc = storage_string_set(a->txn, arg_slice(&argv[1]), arg_slice(&argv[2]));
    if (rc == 0) {
        rc = apply_emit(a, FSM_TABLE_KEYSPACE, arg_slice(&argv[1]),
                        FSM_EVENT_PUT, arg_slice(&argv[2]));
    }
    if (rc != 0) return rc;
    resp_add_integer(reply, 1);
    return 0;
}

static int msetCheck(size_t argc, const resp_arg *argv, resp_buf *err)
{
    if (argc % 2 == 0) {
        reply_arity_error(err, "mset");
        return -1;
    }
    return 0;
}

static int msetApply(apply_ctx *a, size_t argc, const resp_arg *argv,
                     resp_buf *reply)
{
    if (msetCheck(argc, argv, reply) != 0) return 0;
    for (size_t i = 1; i + 1 < argc; i += 2) {
        int rc = storage_string_set(a->txn, arg_slice(&argv[i]),
                                    arg_slice(&argv[i + 1]));
        if (rc == 0) {
            rc = apply_emit(a, FSM_TABLE_KEYSPACE, arg_slice(&argv[i]),
                            FSM_EVENT_PUT, arg_slice(&argv[i + 1]));
        }
        if (rc != 0) return rc;
    }
    resp_add_status(reply, "OK");
    return 0;
}

/* ---- counters ---------------------------------------------------------- */

/* The increment a counter command applies, from its name and arguments.
 * Returns 0, or -1 with an error reply. */
static int counterDelta(size_t argc, const resp_arg *argv, long long *delta,
                        resp_buf *err)
{
    const resp_arg *name = &argv[0];
    if (arg_equals(name, "incr")) {
        *delta = 1;
    } else if (arg_equals(name, "decr")) {
        *delta = -1;
    } else {
        long long v;
        if (argc < 3 || !parse_ll(argv[2].ptr, argv[2].len, &v)) {
            resp_add_error(err, ERR_NOT_INTEGER);
            return -1;
        }
        if (arg_equals(name, "decrby")) {
            if (v == LLONG_MIN) {
                resp_add_error(err, "ERR decrement would overflow");
                return -1;
            }
            v = -v;
        }
        *delta = v;
    }
    return 0;
}

static int counterCheck(size_t argc, const resp_arg *argv, resp_buf *err)
{
    long long delta;
    return counterDelta(argc, argv, &delta, err);
}

static int counterApply(apply_ctx *a, size_t argc, const resp_arg *argv,
                        resp_buf *reply)
{
    long long delta;
    if (counterDelta(argc, argv, &delta, reply) != 0) return 0;
    storage_slice key = arg_slice(&argv[1]);
    storage_slice cur;
    bool found;
    int rc = storage_string_get(a->txn, key, &cur, &found);
    if (rc == STORAGE_EWRONGTYPE) {
        resp_add_error(reply, ERR_WRONGTYPE);
        return 0;
    }
    if (rc != 0) return rc;
    long long value;
    if (!add_or_reply(found, cur, delta, ERR_NOT_INTEGER, &value, reply)) {
        return 0;
    }
    char digits[24];
    int n = snprintf(digits, sizeof digits, "%lld", value);
    rc = storage_string_set(a->txn, key, (storage_slice){digits, (size_t)n});
    if (rc == 0) {
        rc = apply_emit(a, FSM_TABLE_KEYSPACE, key, FSM_EVENT_PUT,
                        (storage_slice){digits, (size_t)n});
    }
    if (rc == 0) resp_add_integer(reply, value);
    return rc;
}

static int appendApply(apply_ctx *a, size_t argc, const resp_arg *argv,
                       resp_buf *reply)
{
    storage_slice key = arg_slice(&argv[1]);
    storage_slice cur;
    bool found;
    int rc = storage_string_get(a->txn, key, &cur, &found);
    if (rc == STORAGE_EWRONGTYPE) {
        resp_add_error(reply, ERR_WRONGTYPE);
        return 0;
    }
    if (rc != 0) return rc;
    size_t oldLen = found ? cur.len : 0;
    size_t total = oldLen + argv[2].len;
    /* A fixed cap, the same on every member (unlike the local
     * --proto-max-bulk-len), keeps apply deterministic. */
    if (total > STRING_MAX_LEN) {
        resp_add_error(reply, "ERR string exceeds maximum allowed size "
                              "(proto-max-bulk-len)");
        return 0;
    }
    char *buf = malloc(total > 0 ? total : 1);
    if (buf == NULL) return STORAGE_ENOMEM;
    if (oldLen > 0) memcpy(buf, cur.data, oldLen);
    memcpy(buf + oldLen, argv[2].ptr, argv[2].len);
    storage_slice v = {buf, total};
    rc = storage_string_set(a->txn, key, v);
    if (rc == 0) rc = apply_emit(a, FSM_TABLE_KEYSPACE, key, FSM_EVENT_PUT, v);
    free(buf);
    if (rc != 0) return rc;
    resp_add_integer(reply, (long long)total);
    return 0;
}

const command string_commands[] = {
    {"get", 2, CMD_READ | CMD_FAST, NULL, NULL, NULL, 1, 1, 1,
     "string", "Returns the string value of a key.",
     .read = getRead},
    {"mget", -2, CMD_READ | CMD_FAST, NULL, NULL, NULL, 1, -1, 1,
     "string", "Atomically returns the string values of one or more keys.",
     .read = mgetRead},
    {"strlen", 2, CMD_READ | CMD_FAST, NULL, NULL, NULL, 1, 1, 1,
     "string", "Returns the length of a string value.",
     .read = strlenRead},
    {"set", -3, CMD_WRITE | CMD_DENYOOM, NULL, setCheck, setApply, 1, 1, 1, "string",
     "Sets the string value of a key (NX, XX, IFEQ, GET; no expiry)."},
    {"setnx", 3, CMD_WRITE | CMD_DENYOOM | CMD_FAST, NULL, NULL, setnxApply, 1, 1, 1,
     "string", "Set the string value of a key only when it does not exist."},
    {"mset", -3, CMD_WRITE | CMD_DENYOOM, NULL, msetCheck, msetApply, 1, -1, 2, "string",
     "Atomically creates or modifies the string values of keys."},
    {"incr", 2, CMD_WRITE | CMD_DENYOOM | CMD_FAST, NULL, counterCheck, counterApply, 1, 1,
     1, "string", "Increments the integer value of a key by one."},
    {"decr", 2, CMD_WRITE | CMD_DENYOOM | CMD_FAST, NULL, counterCheck, counterApply, 1, 1,
     1, "string", "Decrements the integer value of a key by one."},
    {"incrby", 3, CMD_WRITE | CMD_DENYOOM | CMD_FAST, NULL, counterCheck, counterApply, 1,
     1, 1, "string", "Increments the integer value of a key by a number."},
    {"decrby", 3, CMD_WRITE | CMD_DENYOOM | CMD_FAST, NULL, counterCheck, counterApply, 1,
     1, 1, "string", "Decrements a number from the integer value of a key."},
    {"append", 3, CMD_WRITE | CMD_DENYOOM | CMD_FAST, NULL, NULL, appendApply, 1, 1, 1,
     "string", "Appends a string to the value of a key."},
};
const size_t string_commands_count =
    sizeof string_commands / sizeof string_commands[0];
