/* fuzz_fsm.h: helpers shared by the targets that drive the state machine
 * through the hooks rglue calls (fuzz_entry, fuzz_snapshot): an fsm per
 * process in a removed temp dir, applying entries with their replies
 * checked as RESP2, and comparing two members' states. Header-only (static
 * functions): each target is one translation unit. Define FUZZ_NAME before
 * including it. */
#ifndef FUZZ_FSM_H
#define FUZZ_FSM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "command.h"
#include "fsm.h"
#include "fuzz_util.h"
#include "log.h"
#include "resp.h"
#include "rglue.h"
#include "storage.h"

#define CHECK(cond)                                                          \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, FUZZ_NAME ": check failed at %s:%d: %s\n",       \
                    __FILE__, __LINE__, #cond);                              \
            abort();                                                         \
        }                                                                    \
    } while (0)

typedef struct fz_member {
    fsm f;
    rglue_fsm hooks;
} fz_member;

/* Open @m's fsm in a fresh temp dir, removed at once (LMDB keeps its files
 * open: nothing is left behind, even after a crash). */
static inline void fz_open(fz_member *m, const char *what, uint64_t map_size)
{
    const char *tmp = getenv("TMPDIR");
    char dir[512];
    snprintf(dir, sizeof dir, "%s/gcsd-%s-%s-XXXXXX",
             tmp && *tmp ? tmp : "/tmp", FUZZ_NAME, what);
    CHECK(mkdtemp(dir) != NULL);
    char err[256] = "";
    if (fsm_open(&m->f, dir, map_size, err, sizeof err) != 0) {
        fprintf(stderr, FUZZ_NAME ": fsm_open %s: %s\n", dir, err);
        abort();
    }
    fsm_raft_hooks(&m->f, &m->hooks);
    fz_remove_store_dir(dir);
}

/* Parse one RESP2 value at @p[*pos..len); false if malformed. */
static inline bool fz_resp_value(const char *p, size_t len, size_t *pos,
                                 int depth)
{
    if (depth > 8 || *pos >= len) return false;
    char type = p[*pos];
    size_t i = *pos + 1, line = i;
    while (i < len && p[i] != '\r' && p[i] != '\n') i++;
    if (i + 1 >= len || p[i] != '\r' || p[i + 1] != '\n') return false;
    size_t n = i - line;
    *pos = i + 2;
    if (type == '+' || type == '-') return true;
    uint64_t u = 0;
    bool neg = n > 0 && p[line] == '-';
    size_t d = line + (neg ? 1 : 0);
    if (d >= i || (p[d] == '0' && i - d > 1) || i - d > 19) return false;
    for (size_t k = d; k < i; k++) {
        if (p[k] < '0' || p[k] > '9') return false;
        u = u * 10 + (uint64_t)(p[k] - '0');
    }
    if (u > (neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX)) {
        return false;
    }
    long long v = neg ? (u == 1 ? -1 : -2) : (long long)u;
    if (type == ':') return true;
    if (type == '$') {
        if (v == -1) return true;
        if (v < 0 || (size_t)v > len - *pos || len - *pos - (size_t)v < 2) {
            return false;
        }
        *pos += (size_t)v;
        if (p[*pos] != '\r' || p[*pos + 1] != '\n') return false;
        *pos += 2;
        return true;
    }
    if (type == '*') {
        if (v == -1) return true;
        if (v < 0) return false;
        for (long long k = 0; k < v; k++) {
            if (!fz_resp_value(p, len, pos, depth + 1)) return false;
        }
        return true;
    }
    return false;
}

/* Abort unless @reply is exactly one well-formed RESP2 value. */
static inline void fz_check_reply(const void *reply, size_t len)
{
    size_t pos = 0;
    if (!fz_resp_value(reply, len, &pos, 0) || pos != len) {
        fprintf(stderr, FUZZ_NAME ": malformed reply (%zu bytes): ", len);
        fwrite(reply, 1, len < 512 ? len : 512, stderr);
        fputc('\n', stderr);
        abort();
    }
}

/* Replies of one applied entry, in order, concatenated. */
typedef struct fz_replies {
    size_t n, next;
    resp_buf all;
    size_t *ends;
} fz_replies;

static inline void fz_on_reply(void *token, size_t i, const void *reply,
                               size_t len)
{
    fz_replies *r = token;
    CHECK(i == r->next && i < r->n);
    r->next++;
    fz_check_reply(reply, len);
    resp_add_raw(&r->all, reply, len);
    r->ends[i] = r->all.len;
}

/* Apply @n commands as the entry at @index; the apply hook's result. The
 * replies (when it succeeded: one per command, in order) land in @out,
 * which the caller frees with fz_replies_free. */
static inline int fz_apply(fz_member *m, uint64_t index, int64_t time_ms,
                           const rglue_cmd *cmds, size_t n, fz_replies *out)
{
    memset(out, 0, sizeof *out);
    resp_buf_init(&out->all);
    out->n = n;
    out->ends = calloc(n ? n : 1, sizeof *out->ends);
    CHECK(out->ends != NULL);
    int rc = m->hooks.apply(m->hooks.ctx, index, time_ms, cmds, n,
                            fz_on_reply, out);
    if (rc == 0) CHECK(out->next == n);
    else CHECK(out->next == 0); /* nothing acknowledged of a failed entry */
    return rc;
}

static inline void fz_replies_free(fz_replies *r)
{
    resp_buf_free(&r->all);
    free(r->ends);
}

/* Whether this binary must refuse the entry @cmds (n commands, each
 * decodable): a command it does not know (only a member running newer code
 * logs one), or GCS.CLUSTER.FORMAT above what @f applies. Applying such an
 * entry fails and stops the member, naming both formats (fsm.h). */
static inline bool fz_entry_beyond_format(const fsm *f, const rglue_cmd *cmds,
                                          size_t n)
{
    bool beyond = false;
    for (size_t i = 0; i < n && !beyond; i++) {
        fsm_command fc;
        if (fsm_command_decode(&fc, cmds[i].data, cmds[i].len) != 0) continue;
        const command *cmd = fc.argc > 0 ? command_lookup(fc.argv[0].ptr,
                                                          fc.argv[0].len)
                                         : NULL;
        uint64_t v;
        if (fc.argc > 0 &&
            (cmd == NULL || (cmd->apply == NULL && cmd->read == NULL))) {
            beyond = true;
        } else if (cmd != NULL && strcmp(cmd->name, FSM_CMD_CLUSTER_FORMAT) == 0 &&
                   fc.argc == 2 && parse_u64(fc.argv[1].ptr, fc.argv[1].len, &v) &&
                   v > f->format_max) {
            beyond = true;
        }
        fsm_command_free(&fc);
    }
    return beyond;
}

/* Apply an entry fz_entry_beyond_format refuses: it must fail with the
 * message that names the formats and acknowledge nothing; then the member
 * is made to carry on (a test harness, not a member: the next input is a
 * new entry). */
static inline void fz_apply_beyond_format(fz_member *m, uint64_t index,
                                          int64_t time_ms,
                                          const rglue_cmd *cmds, size_t n)
{
    uint64_t applied = m->f.applied_index;
    fz_replies r;
    int rc = fz_apply(m, index, time_ms, cmds, n, &r);
    fz_replies_free(&r);
    CHECK(rc != 0);
    CHECK(strstr(m->f.failure, "upgrade this member") != NULL);
    CHECK(m->f.applied_index == applied);
    m->f.failed = false;
    m->f.failure[0] = '\0';
}

/* Reply @i of @r. */
static inline void fz_reply(const fz_replies *r, size_t i, const char **p,
                            size_t *len)
{
    size_t start = i == 0 ? 0 : r->ends[i - 1];
    *p = r->all.data + start;
    *len = r->ends[i] - start;
}

/* Abort unless both members' dumps are byte-identical. */
static inline void fz_compare(fz_member *a, fz_member *b)
{
    void *da, *db;
    size_t la, lb;
    uint64_t ia, ib;
    CHECK(a->hooks.dump(a->hooks.ctx, &da, &la, &ia) == 0);
    CHECK(b->hooks.dump(b->hooks.ctx, &db, &lb, &ib) == 0);
    CHECK(ia == ib);
    if (la != lb || memcmp(da, db, la) != 0) {
        fprintf(stderr, FUZZ_NAME ": the replica differs (%zu vs %zu bytes)\n",
                la, lb);
        abort();
    }
    free(da);
    free(db);
}

#endif /* FUZZ_FSM_H */
