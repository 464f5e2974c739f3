#include "fsm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "command.h"
#include "gcs.pb-c.h"
#include "log.h"

static int readClusterFormat(storage_txn *t, uint64_t *format)
{
    int rc = storage_meta_get(t, FSM_META_CLUSTER_FORMAT, format);
    if (rc == 0 && *format == 0) *format = 1; /* written before formats */
    return rc;
}

int fsm_open(fsm *f, const char *dir, uint64_t map_size, char *err,
             size_t errlen)
{
    memset(f, 0, sizeof *f);
    storage_options opts = {.map_size = (size_t)map_size};
    int rc = storage_open(dir, &opts, &f->store, err, errlen);
    if (rc != 0) return rc;
    storage_txn *t;
    rc = storage_begin(f->store, false, &t);
    if (rc == 0) {
        rc = storage_meta_get(t, STORAGE_META_APPLIED_INDEX,
                              &f->applied_index);
        if (rc == 0) rc = storage_meta_get(t, FSM_META_REVISION, &f->revision);
        if (rc == 0) rc = readClusterFormat(t, &f->cluster_format);
        storage_abort(t);
    }
    f->format_max = FSM_FORMAT_MAX;
    if (rc == 0) rc = storage_get_info(f->store, &f->space);
    if (rc != 0) {
        snprintf(err, errlen, "cannot read the applied index: %s",
                 storage_strerror(rc));
        storage_close(f->store);
        f->store = NULL;
    }
    return rc;
}

void fsm_close(fsm *f)
{
    fsm_end_reads(f);
    storage_close(f->store);
    f->store = NULL;
}

storage_txn *fsm_read_txn(fsm *f)
{
    if (f->read_txn == NULL) {
        int rc = storage_begin(f->store, false, &f->read_txn);
        if (rc != 0) {
            log_warn("cannot begin a read transaction: %s",
                     storage_strerror(rc));
            f->read_txn = NULL;
        }
    }
    return f->read_txn;
}

void fsm_end_reads(fsm *f)
{
    if (f->read_txn != NULL) {
        storage_abort(f->read_txn);
        f->read_txn = NULL;
    }
}

int fsm_encode_command(uint64_t request_id, size_t argc, const resp_arg *argv,
                       void **out, size_t *len)
{
    return fsm_encode_write(0, request_id, argc, argv, out, len);
}

int fsm_encode_write(uint64_t origin, uint64_t request_id, size_t argc,
                     const resp_arg *argv, void **out, size_t *len)
{
    Gcs__Command msg = GCS__COMMAND__INIT;
    ProtobufCBinaryData stackArgs[8];
    ProtobufCBinaryData *args = stackArgs;
    if (argc > 8) {
        args = malloc(argc * sizeof *args);
        if (args == NULL) return -1;
    }
    for (size_t i = 0; i < argc; i++) {
        args[i].data = (uint8_t *)argv[i].ptr;
        args[i].len = argv[i].len;
    }
    msg.request_id = request_id;
    msg.origin = origin;
    msg.n_argv = argc;
    msg.argv = args;
    size_t n = gcs__command__get_packed_size(&msg);
    uint8_t *buf = malloc(n > 0 ? n : 1);
    if (buf != NULL) gcs__command__pack(&msg, buf);
    if (args != stackArgs) free(args);
    if (buf == NULL) return -1;
    *out = buf;
    *len = n;
    return 0;
}

int apply_emit(apply_ctx *a, const char *table, storage_slice key,
               fsm_event_kind kind, storage_slice value)
{
    return apply_emit_field(a, table, key, (storage_slice){"", 0}, kind,
                            value);
}

int apply_emit_field(apply_ctx *a, const char *table, storage_slice key,
                     storage_slice field, fsm_event_kind kind,
                     storage_slice value)
{
    if (a->n_events == a->cap_events) {
        size_t cap = a->cap_events ? 2 * a->cap_events : 16;
        fsm_event *ev = realloc(a->events, cap * sizeof *ev);
        if (ev == NULL) return STORAGE_ENOMEM;
        a->events = ev;
        a->cap_events = cap;
    }
    /* Key, value and field share one allocation, freed after delivery. */
    uint8_t *copy = malloc(key.len + value.len + field.len + 1);
    if (copy == NULL) return STORAGE_ENOMEM;
    if (key.len > 0) memcpy(copy, key.data, key.len);
    if (value.len > 0) memcpy(copy + key.len, value.data, value.len);
    if (field.len > 0) {
        memcpy(copy + key.len + value.len, field.data, field.len);
    }
    a->events[a->n_events++] = (fsm_event){
        .revision = ++a->revision,
        .table = table,
        .key = copy,
        .key_len = key.len,
        .kind = kind,
        .value = copy + key.len,
        .value_len = value.len,
        .field = copy + key.len + value.len,
        .field_len = field.len,
    };
    return 0;
}

int apply_publish(apply_ctx *a, storage_slice channel, storage_slice message,
                  resp_buf *reply)
{
    int rc = apply_emit(a, "", channel, FSM_EVENT_MESSAGE, message);
    if (rc != 0) return rc;
    a->revision--; /* a message is not a change: it takes no revision */
    a->events[a->n_events - 1].revision = 0;
    size_t n = 0;
    if (a->fsm != NULL && a->fsm->count_receivers != NULL) {
        n = a->fsm->count_receivers(a->fsm->count_receivers_ctx, channel.data,
                                    channel.len);
    }
    resp_add_integer(reply, (long long)n);
    a->dedup_reply = ":0\r\n";
    return 0;
}

static void freeEvents(apply_ctx *a)
{
    for (size_t i = 0; i < a->n_events; i++) free((void *)a->events[i].key);
    free(a->events);
    a->events = NULL;
    a->n_events = a->cap_events = 0;
}

int fsm_event_encode(const fsm_event *ev, void **out, size_t *len)
{
    Gcs__ChangeEvent msg = GCS__CHANGE_EVENT__INIT;
    msg.revision = ev->revision;
    msg.table = (char *)ev->table;
    msg.key.data = (uint8_t *)ev->key;
    msg.key.len = ev->key_len;
    msg.kind = ev->kind == FSM_EVENT_DELETE ? GCS__CHANGE_EVENT__KIND__DELETE
                                            : GCS__CHANGE_EVENT__KIND__PUT;
    msg.value.data = (uint8_t *)ev->value;
    msg.value.len = ev->value_len;
    msg.field.data = (uint8_t *)ev->field;
    msg.field.len = ev->field_len;
    size_t n = gcs__change_event__get_packed_size(&msg);
    uint8_t *buf = malloc(n > 0 ? n : 1);
    if (buf == NULL) return -1;
    gcs__change_event__pack(&msg, buf);
    *out = buf;
    *len = n;
    return 0;
}

/* Decode into @c, drawing memory from @mem, or from malloc when it is NULL
 * (then fsm_command_free releases it). */
static int commandDecode(fsm_command *c, arena *mem, const void *data,
                         size_t len)
{
    memset(c, 0, sizeof *c);
    c->msg = gcs__command__unpack(mem ? &mem->pb : NULL, len, data);
    if (c->msg == NULL) return -1;
    c->argc = c->msg->n_argv;
    size_t bytes = c->argc * sizeof *c->argv;
    c->argv = c->argc <= 8 ? c->small
              : mem        ? arena_alloc(mem, bytes)
                           : malloc(bytes);
    if (c->argv == NULL) {
        if (mem == NULL) fsm_command_free(c);
        return -1;
    }
    for (size_t i = 0; i < c->argc; i++) {
        /* protobuf-c gives an empty bytes field a NULL pointer; handlers may
         * memcpy from any argument, and memcpy from NULL is undefined. */
        const ProtobufCBinaryData *arg = &c->msg->argv[i];
        c->argv[i].ptr = arg->data ? (const char *)arg->data : "";
        c->argv[i].len = arg->len;
    }
    return 0;
}

int fsm_command_decode(fsm_command *c, const void *data, size_t len)
{
    return commandDecode(c, NULL, data, len);
}

int fsm_command_decode_in(fsm_command *c, arena *mem, const void *data,
                          size_t len)
{
    return commandDecode(c, mem, data, len);
}

void fsm_command_free(fsm_command *c)
{
    if (c->argv != NULL && c->argv != c->small) free(c->argv);
    if (c->msg != NULL) gcs__command__free_unpacked(c->msg, NULL);
    memset(c, 0, sizeof *c);
}

/* Run one decoded command against the entry's transaction. Returns 0 (the
 * reply, possibly an error, is in @reply) or a storage error. */
/* Whether this binary can apply @fc at all: a command it does not know, or
 * a cluster format above its own, can only come from a member running newer
 * code, and skipping it (or answering an error) would make this member's
 * state differ from theirs. 0, or -1 with the reason in a->why. Checked
 * before the de-duplication table, which would otherwise answer a retry of
 * it as if it had been applied. */
static int checkApplicable(apply_ctx *a, const fsm_command *fc)
{
    if (fc->argc == 0) return 0; /* applyCommand answers it */
    const resp_arg *name = &fc->argv[0];
    const command *cmd = command_lookup(name->ptr, name->len);
    uint64_t n;
    if (cmd == NULL || (cmd->apply == NULL && cmd->read == NULL)) {
        snprintf(a->why, a->why_len, "entry %llu holds the command '%.*s', "
                 "which this gcsd cannot apply (it applies state-machine "
                 "formats %d to %llu; the cluster's is %llu): upgrade this "
                 "member", (unsigned long long)a->index,
                 (int)(name->len > 64 ? 64 : name->len), name->ptr,
                 FSM_FORMAT_MIN, (unsigned long long)a->fsm->format_max,
                 (unsigned long long)a->cluster_format);
        return -1;
    }
    if (strcmp(cmd->name, FSM_CMD_CLUSTER_FORMAT) == 0 && fc->argc == 2 &&
        parse_u64(fc->argv[1].ptr, fc->argv[1].len, &n) &&
        n > a->fsm->format_max) {
        snprintf(a->why, a->why_len, "entry %llu raises the cluster format "
                 "to %llu; this gcsd applies state-machine formats %d to "
                 "%llu: upgrade this member", (unsigned long long)a->index,
                 (unsigned long long)n, FSM_FORMAT_MIN,
                 (unsigned long long)a->fsm->format_max);
        return -1;
    }
    return 0;
}

static int applyCommand(apply_ctx *a, const fsm_command *fc, resp_buf *reply)
{
    const resp_arg *argv = fc->argv;
    size_t argc = fc->argc;
    if (argc == 0) {
        resp_add_error(reply, "ERR empty command");
        return 0;
    }
    int rc = 0;
    const command *cmd = command_lookup(argv[0].ptr, argv[0].len);
    if (cmd == NULL || (cmd->apply == NULL && cmd->read == NULL)) {
        return -1; /* checkApplicable refused it already */
    } else if (command_format(cmd) > a->cluster_format) {
        /* Refused before proposing; a proposal that raced a leader change
         * is refused here, the same way on every member. */
        resp_add_errorf(reply, "ERR %s needs cluster format %llu; the cluster "
                        "runs format %llu until every member is upgraded",
                        cmd->name,
                        (unsigned long long)command_format(cmd),
                        (unsigned long long)a->cluster_format);
    } else if ((cmd->arity > 0 && (size_t)cmd->arity != argc) ||
               (cmd->arity < 0 && argc < (size_t)-cmd->arity)) {
        reply_arity_error(reply, cmd->name);
    } else if (cmd->apply != NULL) {
        rc = cmd->apply(a, argc, argv, reply);
    } else {
        /* A read that travelled behind its client's writes. */
        cmd->read(a->txn, argc, argv, reply);
    }
    return rc;
}

/* ---- request de-duplication ---------------------------------------------
 *
 * Records of FSM_SYSTEM_TABLE, integers big-endian:
 *   'd' origin request_id  ->  time_ms, the command's reply
 *   'q' time_ms origin request_id  ->  (empty): the same, oldest first
 * A command carrying a request id already recorded gets the recorded reply
 * and changes nothing. Records older than DEDUP_WINDOW_MS of leader time, or
 * beyond DEDUP_MAX_RECORDS, are dropped: retries happen within seconds.
 * Both bounds are compiled in, never configured: apply must not depend on
 * local settings. */
#define DEDUP_WINDOW_MS (5 * 60 * 1000)
#define DEDUP_MAX_RECORDS 1000000
#define DEDUP_KEY_LEN 17
#define DEDUP_QKEY_LEN 25
#define META_DEDUP_COUNT "dedup_records"

static void putBe64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

static uint64_t getBe64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = v << 8 | p[i];
    return v;
}

static void dedupKey(uint8_t key[DEDUP_KEY_LEN], uint64_t origin,
                     uint64_t request_id)
{
    key[0] = 'd';
    putBe64(key + 1, origin);
    putBe64(key + 9, request_id);
}

/* Append the recorded reply of (origin, id) to @replies: 1 if there was
 * one, 0 if not, or a storage error. */
static int dedupLookup(storage_txn *t, const Gcs__Command *msg,
                       resp_buf *replies)
{
    uint8_t key[DEDUP_KEY_LEN];
    dedupKey(key, msg->origin, msg->request_id);
    storage_slice k = {key, sizeof key}, v;
    bool found;
    int rc = storage_table_get(t, FSM_SYSTEM_TABLE, k, &v, &found);
    if (rc != 0 || !found) return rc;
    if (v.len < 8) return STORAGE_ECORRUPT;
    resp_add_raw(replies, (const char *)v.data + 8, v.len - 8);
    return 1;
}

static int dedupRecord(storage_txn *t, const Gcs__Command *msg,
                       int64_t time_ms, const char *reply, size_t len)
{
    uint8_t key[DEDUP_KEY_LEN], qkey[DEDUP_QKEY_LEN];
    dedupKey(key, msg->origin, msg->request_id);
    qkey[0] = 'q';
    putBe64(qkey + 1, (uint64_t)time_ms);
    memcpy(qkey + 9, key + 1, 16);
    uint8_t stackVal[256];
    uint8_t *val = len + 8 <= sizeof stackVal ? stackVal : malloc(len + 8);
    if (val == NULL) return STORAGE_ENOMEM;
    putBe64(val, (uint64_t)time_ms);
    if (len > 0) memcpy(val + 8, reply, len);
    storage_slice k = {key, sizeof key}, v = {val, len + 8};
    storage_slice qk = {qkey, sizeof qkey}, empty = {"", 0};
    int rc = storage_table_put(t, FSM_SYSTEM_TABLE, k, v, NULL);
    if (val != stackVal) free(val);
    if (rc == 0) rc = storage_table_put(t, FSM_SYSTEM_TABLE, qk, empty, NULL);
    uint64_t count = 0;
    if (rc == 0) rc = storage_meta_get(t, META_DEDUP_COUNT, &count);
    if (rc == 0) rc = storage_meta_set(t, META_DEDUP_COUNT, count + 1);
    return rc;
}

typedef struct oldestRecord {
    uint8_t qkey[DEDUP_QKEY_LEN];
    bool found;
} oldestRecord;

static int takeOldest(void *arg, storage_slice key, storage_slice value)
{
    oldestRecord *o = arg;
    (void)value;
    if (key.len != DEDUP_QKEY_LEN) return STORAGE_ECORRUPT;
    memcpy(o->qkey, key.data, DEDUP_QKEY_LEN);
    o->found = true;
    return 1; /* the first one is all we want */
}

/* Drop records past the window or the count bound; at most @budget of them,
 * so one entry's apply stays short (each entry adds at most that many). */
static int dedupTrim(storage_txn *t, int64_t time_ms, size_t budget)
{
    uint64_t count;
    int rc = storage_meta_get(t, META_DEDUP_COUNT, &count);
    if (rc != 0 || count == 0) return rc;
    uint64_t dropped = 0;
    while (budget-- > 0 && count > dropped) {
        oldestRecord o = {.found = false};
        storage_slice prefix = {"q", 1}, from = {"", 0};
        rc = storage_table_scan(t, FSM_SYSTEM_TABLE, prefix, from, takeOldest,
                                &o);
        if (rc < 0) return rc;
        if (!o.found) break;
        int64_t at = (int64_t)getBe64(o.qkey + 1);
        if (count - dropped <= DEDUP_MAX_RECORDS &&
            at > time_ms - DEDUP_WINDOW_MS)
            break;
        uint8_t key[DEDUP_KEY_LEN];
        key[0] = 'd';
        memcpy(key + 1, o.qkey + 9, 16);
        storage_slice qk = {o.qkey, sizeof o.qkey}, k = {key, sizeof key};
        if ((rc = storage_table_delete(t, FSM_SYSTEM_TABLE, qk, NULL)) != 0 ||
            (rc = storage_table_delete(t, FSM_SYSTEM_TABLE, k, NULL)) != 0)
            return rc;
        dropped++;
    }
    if (dropped == 0) return 0;
    return storage_meta_set(t, META_DEDUP_COUNT, count - dropped);
}

/* ---- the member directory --------------------------------------------------
 *
 * 'm' member id  ->  the member's client address ("host:port"), announced by
 * each member when it becomes leader, so followers know where to forward. */

int fsm_member_address(fsm *f, uint64_t id, char *out, size_t outlen)
{
    out[0] = '\0';
    storage_txn *t = fsm_read_txn(f);
    if (t == NULL) return STORAGE_EIO;
    uint8_t key[9];
    key[0] = 'm';
    putBe64(key + 1, id);
    storage_slice k = {key, sizeof key}, v;
    bool found;
    int rc = storage_table_get(t, FSM_SYSTEM_TABLE, k, &v, &found);
    if (rc != 0 || !found) return rc;
    snprintf(out, outlen, "%.*s", (int)v.len, (const char *)v.data);
    return 0;
}

int fsm_set_member_address(storage_txn *t, uint64_t id, storage_slice addr)
{
    uint8_t key[9];
    key[0] = 'm';
    putBe64(key + 1, id);
    storage_slice k = {key, sizeof key};
    return storage_table_put(t, FSM_SYSTEM_TABLE, k, addr, NULL);
}

/* ---- the changelog (see fsm.h) ------------------------------------------- */

int fsm_changelog_info_get(storage_txn *t, fsm_changelog_info *out)
{
    memset(out, 0, sizeof *out);
    int rc = storage_meta_get(t, FSM_META_REVISION, &out->newest);
    if (rc == 0) rc = storage_meta_get(t, FSM_META_CHANGELOG_OLDEST,
                                       &out->oldest);
    if (rc == 0) rc = storage_meta_get(t, FSM_META_CHANGELOG_BYTES,
                                       &out->bytes);
    if (rc == 0) rc = storage_meta_get(t, FSM_META_CHANGELOG_MAX_EVENTS,
                                       &out->max_events);
    if (rc == 0) rc = storage_meta_get(t, FSM_META_CHANGELOG_MAX_BYTES,
                                       &out->max_bytes);
    if (out->oldest == 0) out->oldest = out->newest + 1; /* nothing kept */
    if (out->max_events == 0) out->max_events = FSM_CHANGELOG_MAX_EVENTS;
    if (out->max_bytes == 0) out->max_bytes = FSM_CHANGELOG_MAX_BYTES;
    return rc;
}

typedef struct firstChange {
    uint64_t revision;
    bool found;
} firstChange;

static int takeFirstChange(void *arg, storage_slice key, storage_slice value)
{
    firstChange *fc = arg;
    (void)value;
    if (key.len != 8) return 0; /* not a changelog key: skip it */
    fc->revision = getBe64(key.data);
    fc->found = true;
    return 1;
}

/* The revision of the first changelog record at or after @from, or
 * @newest + 1 when there is none up to @newest. */
static int changelogNext(storage_txn *t, uint64_t from, uint64_t newest,
                         uint64_t *next)
{
    uint8_t key[8];
    putBe64(key, from);
    storage_slice prefix = {"", 0}, start = {key, sizeof key};
    firstChange fc = {0, false};
    int rc = storage_table_scan(t, FSM_CHANGELOG_TABLE, prefix, start,
                                takeFirstChange, &fc);
    if (rc < 0) return rc;
    *next = fc.found && fc.revision <= newest ? fc.revision : newest + 1;
    return 0;
}

/* Drop the oldest records past the window. @newest is the last revision
 * written in this transaction. */
static int changelogTrim(storage_txn *t, uint64_t newest)
{
    fsm_changelog_info ci;
    int rc = storage_meta_get(t, FSM_META_CHANGELOG_OLDEST, &ci.oldest);
    if (rc != 0 || ci.oldest == 0) return rc;
    if ((rc = storage_meta_get(t, FSM_META_CHANGELOG_BYTES, &ci.bytes)) ||
        (rc = storage_meta_get(t, FSM_META_CHANGELOG_MAX_EVENTS,
                               &ci.max_events)) ||
        (rc = storage_meta_get(t, FSM_META_CHANGELOG_MAX_BYTES,
                               &ci.max_bytes))) {
        return rc;
    }
    if (ci.max_events == 0) ci.max_events = FSM_CHANGELOG_MAX_EVENTS;
    if (ci.max_bytes == 0) ci.max_bytes = FSM_CHANGELOG_MAX_BYTES;
    uint64_t oldest = ci.oldest, bytes = ci.bytes;
    while (oldest <= newest &&
           (newest - oldest + 1 > ci.max_events || bytes > ci.max_bytes)) {
        uint8_t key[8];
        putBe64(key, oldest);
        storage_slice k = {key, sizeof key}, v;
        bool found;
        rc = storage_table_get(t, FSM_CHANGELOG_TABLE, k, &v, &found);
        if (rc != 0) return rc;
        if (found) {
            bytes = v.len > bytes ? 0 : bytes - v.len;
            rc = storage_table_delete(t, FSM_CHANGELOG_TABLE, k, NULL);
            if (rc != 0) return rc;
            oldest++;
        } else {
            /* A gap: only a damaged state (a crafted snapshot) has one.
             * Jump to the next record kept rather than walk the gap one
             * revision at a time (it may span 2^64). */
            rc = changelogNext(t, oldest, newest, &oldest);
            if (rc != 0) return rc;
        }
    }
    if (oldest == ci.oldest) return 0;
    rc = storage_meta_set(t, FSM_META_CHANGELOG_OLDEST, oldest);
    if (rc == 0) rc = storage_meta_set(t, FSM_META_CHANGELOG_BYTES, bytes);
    return rc;
}

/* Append the entry's change events to the changelog, then trim. */
static int changelogAppend(apply_ctx *a)
{
    uint64_t added = 0, newest = 0;
    for (size_t i = 0; i < a->n_events; i++) {
        const fsm_event *ev = &a->events[i];
        if (ev->revision == 0) continue; /* a PUBLISHed message */
        void *buf;
        size_t len;
        if (fsm_event_encode(ev, &buf, &len) != 0) return STORAGE_ENOMEM;
        uint8_t key[8];
        putBe64(key, ev->revision);
        storage_slice k = {key, sizeof key}, v = {buf, len};
        int rc = storage_table_put(a->txn, FSM_CHANGELOG_TABLE, k, v, NULL);
        free(buf);
        if (rc != 0) return rc;
        if (newest == 0) {
            uint64_t oldest;
            rc = storage_meta_get(a->txn, FSM_META_CHANGELOG_OLDEST, &oldest);
            if (rc == 0 && oldest == 0) {
                rc = storage_meta_set(a->txn, FSM_META_CHANGELOG_OLDEST,
                                      ev->revision);
            }
            if (rc != 0) return rc;
        }
        added += len;
        newest = ev->revision;
    }
    if (newest == 0) return 0;
    uint64_t bytes;
    int rc = storage_meta_get(a->txn, FSM_META_CHANGELOG_BYTES, &bytes);
    if (rc == 0) rc = storage_meta_set(a->txn, FSM_META_CHANGELOG_BYTES,
                                       bytes + added);
    if (rc == 0) rc = changelogTrim(a->txn, newest);
    return rc;
}

int fsm_changelog_set_window(apply_ctx *a, uint64_t max_events,
                             uint64_t max_bytes)
{
    int rc = storage_meta_set(a->txn, FSM_META_CHANGELOG_MAX_EVENTS,
                              max_events);
    if (rc == 0) rc = storage_meta_set(a->txn, FSM_META_CHANGELOG_MAX_BYTES,
                                       max_bytes);
    if (rc == 0) rc = changelogTrim(a->txn, a->revision);
    return rc;
}

typedef struct changelogVisit {
    fsm_changelog_fn fn;
    void *arg;
} changelogVisit;

static int visitChange(void *arg, storage_slice key, storage_slice value)
{
    changelogVisit *cv = arg;
    if (key.len != 8) return STORAGE_ECORRUPT;
    return cv->fn(cv->arg, getBe64(key.data), value);
}

int fsm_changelog_scan(storage_txn *t, uint64_t from, fsm_changelog_fn fn,
                       void *arg)
{
    uint8_t key[8];
    putBe64(key, from);
    storage_slice prefix = {"", 0}, start = {key, sizeof key};
    changelogVisit cv = {fn, arg};
    return storage_table_scan(t, FSM_CHANGELOG_TABLE, prefix, start,
                              visitChange, &cv);
}

static int fsmApply(void *ctx, uint64_t index, int64_t time_ms,
                    const rglue_cmd *cmds, size_t n, rglue_reply_fn reply,
                    void *token)
{
    fsm *f = ctx;
    if (f->failed) return -1;
    if (index <= f->applied_index) return 0; /* already in storage */
    /* The leader's clock, as every member clamps it: within [0, the year
     * 2262], so handlers may turn it into nanoseconds (and subtract windows
     * from it) without overflowing, whatever the entry holds. */
    if (time_ms < 0) time_ms = 0;
    if (time_ms > FSM_MAX_TIME_MS) time_ms = FSM_MAX_TIME_MS;

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    char why[sizeof f->failure] = "";
    fsm_end_reads(f);
    /* Room on disk for what this entry may add: its bytes twice (values,
     * then the changelog's copy) and some B-tree pages per command. */
    uint64_t bytes = 0;
    for (size_t i = 0; i < n; i++) bytes += cmds[i].len;
    storage_txn *txn;
    int rc = storage_reserve(f->store, 2 * bytes + (uint64_t)n * 65536);
    if (rc == 0) rc = storage_begin(f->store, true, &txn);
    if (rc != 0) goto fail;

    apply_ctx a = {.txn = txn, .index = index, .time_ms = time_ms,
                   .fsm = f, .revision = f->revision,
                   .cluster_format = f->cluster_format, .why = why,
                   .why_len = sizeof why};
    resp_buf replies;
    resp_buf_init(&replies);
    arena mem; /* each command's decoded form, one at a time */
    arena_init(&mem);
    size_t stackEnds[64];
    size_t *ends = n <= 64 ? stackEnds : malloc(n * sizeof *ends);
    if (ends == NULL) {
        rc = STORAGE_ENOMEM;
        goto abort;
    }
    for (size_t i = 0; i < n; i++) {
        fsm_command fc;
        arena_reset(&mem); /* the last command's memory, kept for reuse */
        if (fsm_command_decode_in(&fc, &mem, cmds[i].data, cmds[i].len) !=
            0) {
            /* Only our own proposals reach the log, so this is protobuf-c
             * running out of memory, not bad input: skipping the command
             * would make this member differ from the others. */
            rc = STORAGE_ENOMEM;
            goto abort;
        } else {
            const Gcs__Command *msg = fc.msg;
            size_t start = replies.len;
            rc = checkApplicable(&a, &fc);
            if (rc == 0 && msg->request_id != 0) {
                rc = dedupLookup(txn, msg, &replies);
            }
            if (rc == 0) {
                a.dedup_reply = NULL;
                rc = applyCommand(&a, &fc, &replies);
                if (rc == 0 && msg->request_id != 0) {
                    /* What every member records must be the same. */
                    const char *rec = a.dedup_reply ? a.dedup_reply
                                                    : replies.data + start;
                    size_t len = a.dedup_reply ? strlen(a.dedup_reply)
                                               : replies.len - start;
                    rc = dedupRecord(txn, msg, time_ms, rec, len);
                }
            } else if (rc == 1) {
                rc = 0;
                f->duplicates++;
            }
            if (rc != 0) goto abort;
        }
        ends[i] = replies.len;
    }
    arena_free(&mem);
    rc = dedupTrim(txn, time_ms, n + 16);
    if (rc == 0) rc = changelogAppend(&a);
    if (rc != 0) goto abort;
    rc = storage_meta_set(txn, STORAGE_META_APPLIED_INDEX, index);
    if (rc == 0 && a.revision != f->revision) {
        rc = storage_meta_set(txn, FSM_META_REVISION, a.revision);
    }
    if (rc != 0) goto abort;
    rc = storage_commit(txn);
    txn = NULL;
    if (rc != 0) goto free_replies;

    f->applied_index = index;
    f->revision = a.revision;
    f->cluster_format = a.cluster_format;
    if (a.n_events > 0 && f->on_events != NULL) {
        f->on_events(f->on_events_ctx, a.events, a.n_events);
    }
    freeEvents(&a);
    f->entries_applied++;
    storage_get_info(f->store, &f->space); /* stale figures are harmless */
    f->commands_applied += n;
    /* Acknowledge only what is committed. */
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        reply(token, i, replies.data + start, ends[i] - start);
        start = ends[i];
    }
    if (ends != stackEnds) free(ends);
    resp_buf_free(&replies);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    f->last_apply_us = (uint64_t)((t1.tv_sec - t0.tv_sec) * 1000000 +
                                  (t1.tv_nsec - t0.tv_nsec) / 1000);
    rglue_histogram_add(&f->apply_us, f->last_apply_us);
    return 0;

abort:
    storage_abort(txn);
free_replies:
    if (ends != NULL && ends != stackEnds) free(ends);
    resp_buf_free(&replies);
    arena_free(&mem);
    freeEvents(&a);
fail:
    f->failed = true;
    if (why[0] != '\0') {
        snprintf(f->failure, sizeof f->failure, "%s", why);
    } else {
        snprintf(f->failure, sizeof f->failure,
                 "applying entry %llu failed: %s%s", (unsigned long long)index,
                 storage_strerror(rc),
                 rc == STORAGE_EMAPFULL ? " (restart with a larger --map-size)"
                                        : "");
    }
    log_warn("%s; this member stops applying", f->failure);
    return rc != 0 ? rc : -1;
}

bool fsm_has_room(fsm *f, uint64_t bytes)
{
    /* Keep 5% (at least 1 MiB) free for deletes and B-tree growth. */
    uint64_t reserve = f->space.map_size / 20;
    if (reserve < (1u << 20)) reserve = 1u << 20;
    uint64_t need = reserve + bytes;
    if (f->space.used_bytes + need <= f->space.map_size) return true;
    /* Past the high-water mark: count what deletes made reusable, at most
     * once per applied entry (the figure changes only when one applies). */
    if (f->free_bytes_index != f->applied_index) {
        if (storage_free_bytes(f->store, &f->free_bytes) != 0) {
            f->free_bytes = 0;
        }
        f->free_bytes_index = f->applied_index;
    }
    uint64_t used = f->space.used_bytes - f->free_bytes;
    return used + need <= f->space.map_size;
}

static uint64_t fsmAppliedIndex(void *ctx)
{
    fsm *f = ctx;
    return f->applied_index;
}

static int fsmSync(void *ctx)
{
    fsm *f = ctx;
    return storage_sync(f->store);
}

static int fsmDump(void *ctx, void **buf, size_t *len, uint64_t *index)
{
    fsm *f = ctx;
    storage_txn *t;
    int rc = storage_begin(f->store, false, &t);
    if (rc != 0) return rc;
    rc = storage_meta_get(t, STORAGE_META_APPLIED_INDEX, index);
    if (rc == 0) rc = storage_dump(t, buf, len);
    storage_abort(t);
    return rc;
}

static int fsmRestore(void *ctx, const void *buf, size_t len)
{
    fsm *f = ctx;
    uint64_t index;
    int rc = storage_dump_applied_index(buf, len, &index);
    if (rc != 0) {
        log_warn("snapshot rejected: %s", storage_strerror(rc));
        return rc;
    }
    if (index <= f->applied_index) return 0; /* we are already there */
    fsm_end_reads(f);
    rc = storage_load_dump(f->store, buf, len);
    if (rc != 0) {
        log_warn("snapshot restore failed: %s", storage_strerror(rc));
        return rc;
    }
    log_notice("state restored from a snapshot at index %llu",
               (unsigned long long)index);
    f->applied_index = index;
    storage_txn *t;
    rc = storage_begin(f->store, false, &t);
    if (rc == 0) {
        rc = storage_meta_get(t, FSM_META_REVISION, &f->revision);
        if (rc == 0) rc = readClusterFormat(t, &f->cluster_format);
        storage_abort(t);
    }
    if (rc != 0) {
        log_warn("cannot read the revision counter after a restore: %s",
                 storage_strerror(rc));
        return rc;
    }
    if (f->cluster_format > f->format_max) {
        /* Loaded, but nothing of it can be applied on: stop here. */
        f->failed = true;
        snprintf(f->failure, sizeof f->failure,
                 "the snapshot installed at index %llu is of cluster format "
                 "%llu; this gcsd applies formats %d to %llu: upgrade this "
                 "member", (unsigned long long)index,
                 (unsigned long long)f->cluster_format, FSM_FORMAT_MIN,
                 (unsigned long long)f->format_max);
        log_warn("%s", f->failure);
        return -1;
    }
    return 0;
}

void fsm_raft_hooks(fsm *f, rglue_fsm *hooks)
{
    memset(hooks, 0, sizeof *hooks);
    hooks->ctx = f;
    hooks->apply = fsmApply;
    hooks->applied_index = fsmAppliedIndex;
    hooks->sync = fsmSync;
    hooks->dump = fsmDump;
    hooks->restore = fsmRestore;
}
