/* gcsctl: the admin CLI of gcsd. Cluster status, the typed tables (nodes,
 * actors, jobs, placement groups), what a Ray head stored through the hash
 * commands, and membership changes. Blocking hiredis; exit codes 0 success,
 * 1 error, 2 usage. See README.md, "gcsctl". */
#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <errno.h>
#include <sys/stat.h>
#include <time.h>

#include "gcs.pb-c.h"
#include "storage.h"
#include "ctl_conn.h"
#include "ctl_fields.h"
#include "ctl_record.h"

#define EXIT_USAGE 2

static ctl_conn conn;
static bool jsonOut;
static bool tty;
static const char *password;
static const char *progCmd = ""; /* the subcommand, for messages */

/* ---- messages and exits --------------------------------------------------- */

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("gcsctl: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    ctl_conn_close(&conn);
    exit(1);
}

static void usageError(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));
static void usageError(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("gcsctl: ", stderr);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\nRun 'gcsctl %s%s--help' for usage.\n", progCmd,
            progCmd[0] ? " " : "");
    va_end(ap);
    ctl_conn_close(&conn);
    exit(EXIT_USAGE);
}

/* A reply to a command that must not fail: NULL dies with the connection's
 * message, an error reply dies naming @what. */
static redisReply *must(redisReply *r, const char *what)
{
    if (r == NULL) die("%s", conn.err);
    if (r->type == REDIS_REPLY_ERROR) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", r->str);
        freeReplyObject(r);
        die("%s failed: %s", what, msg);
    }
    return r;
}

static redisReply *cmd(int argc, const char **argv, const size_t *lens)
{
    return must(ctl_conn_cmd(&conn, argc, argv, lens), argv[0]);
}

static redisReply *cmds(int argc, const char **argv)
{
    return must(ctl_conn_cmdv(&conn, argc, argv), argv[0]);
}

static void connectOrDie(const char *host, int port)
{
    if (!ctl_conn_open(&conn, host, port, password, 5000)) die("%s", conn.err);
}

/* ---- option parsing for subcommands --------------------------------------- */

typedef struct opts {
    const char *state, *job, *ns, *node, *from;
    const char *pos[8];
    int npos;
} opts;

/* Parse @argv (after the subcommand words): --state --job --namespace
 * --node take values; @allowed lists the ones this subcommand accepts. */
static void parseOpts(int argc, char **argv, const char *allowed, opts *o)
{
    memset(o, 0, sizeof *o);
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char **slot = NULL;
        if (strcmp(a, "--state") == 0) slot = &o->state;
        else if (strcmp(a, "--job") == 0) slot = &o->job;
        else if (strcmp(a, "--namespace") == 0) slot = &o->ns;
        else if (strcmp(a, "--node") == 0) slot = &o->node;
        else if (strcmp(a, "--from") == 0) slot = &o->from;
        if (slot != NULL) {
            if (strstr(allowed, a) == NULL) usageError("unknown option %s", a);
            if (i + 1 >= argc) usageError("%s needs a value", a);
            *slot = argv[++i];
        } else if (a[0] == '-' && a[1] != '\0') {
            usageError("unknown option %s", a);
        } else {
            if (o->npos == 8) usageError("too many arguments");
            o->pos[o->npos++] = a;
        }
    }
}

/* ---- typed tables ----------------------------------------------------------- */

typedef struct tableDef {
    const char *word;   /* nodes, actors, jobs, pgs */
    const char *prefix; /* NODE, ACTOR, JOB, PG */
    const char *what;   /* node, actor, job, placement group */
    ctl_record_kind kind;
    bool named;         /* GETNAMED exists */
    const char *filters;
} tableDef;

static const tableDef tables[] = {
    {"nodes", "NODE", "node", CTL_RECORD_NODE, false, "--state"},
    {"actors", "ACTOR", "actor", CTL_RECORD_ACTOR, true,
     "--state --job --namespace --node"},
    {"jobs", "JOB", "job", CTL_RECORD_JOB, false, "--state"},
    {"pgs", "PG", "placement group", CTL_RECORD_PG, true,
     "--state --job --namespace"},
};

/* An id argument in hex of the kind's length; false when it is not. For
 * jobs a decimal job number is accepted too. */
static bool parseId(ctl_record_kind kind, const char *s, uint8_t *out)
{
    size_t want = ctl_record_id_len(kind);
    if (ctl_unhex(s, out, want) == (long)want) return true;
    if (kind == CTL_RECORD_JOB && s[0] != '\0' &&
        strspn(s, "0123456789") == strlen(s) && strlen(s) < 11) {
        unsigned long long n = strtoull(s, NULL, 10);
        if (n > UINT32_MAX) return false;
        for (int i = 0; i < 4; i++) out[i] = (uint8_t)(n >> (8 * i));
        return true;
    }
    return false;
}

static bool textMatches(const ctl_fields *f, const char *key, const char *want)
{
    const ctl_field *fl = ctl_fields_get(f, key);
    return fl != NULL && strcasecmp(fl->text, want) == 0;
}

typedef struct rows {
    ctl_fields *v;
    size_t n, cap;
} rows;

static ctl_fields *rowsAdd(rows *r)
{
    if (r->n == r->cap) {
        r->cap = r->cap ? 2 * r->cap : 64;
        r->v = realloc(r->v, r->cap * sizeof *r->v);
        if (r->v == NULL) die("out of memory");
    }
    r->v[r->n] = (ctl_fields){0};
    return &r->v[r->n++];
}

static void rowsFree(rows *r)
{
    for (size_t i = 0; i < r->n; i++) ctl_fields_free(&r->v[i]);
    free(r->v);
    *r = (rows){0};
}

static void printRows(const rows *r, const char *const *cols)
{
    if (jsonOut) ctl_print_json_array(stdout, r->v, r->n);
    else ctl_print_table(stdout, r->v, r->n, cols, tty);
}

static void tableList(const tableDef *t, int argc, char **argv)
{
    opts o;
    parseOpts(argc, argv, t->filters, &o);
    const char *av[16];
    size_t al[16];
    int n = 0;
    char listCmd[32];
    snprintf(listCmd, sizeof listCmd, "%s.LIST", t->prefix);
    av[n++] = listCmd;
    uint8_t job[4], node[28];
    bool clientState = true; /* filter on the decoded state here */
    if (t->kind == CTL_RECORD_NODE) {
        const char *s = o.state;
        if (o.npos > 1) usageError("too many arguments");
        if (o.npos == 1) s = o.pos[0];
        if (s != NULL) {
            if (strcasecmp(s, "alive") != 0 && strcasecmp(s, "dead") != 0) {
                usageError("node state must be ALIVE or DEAD, not '%s'", s);
            }
            av[n++] = strcasecmp(s, "alive") == 0 ? "ALIVE" : "DEAD";
            o.state = NULL;
        }
    } else if (o.npos > 0) {
        usageError("unexpected argument '%s'", o.pos[0]);
    }
    if (t->kind == CTL_RECORD_ACTOR) {
        if (o.state != NULL) {
            av[n++] = "STATE";
            av[n++] = o.state;
            clientState = false;
        }
        if (o.job != NULL) {
            if (!parseId(CTL_RECORD_JOB, o.job, job)) {
                usageError("invalid job id '%s': 8 hex digits or a number", o.job);
            }
            av[n++] = "JOB";
            al[n] = 4;
            av[n++] = (const char *)job;
        }
        if (o.ns != NULL) {
            av[n++] = "NAMESPACE";
            av[n++] = o.ns;
        }
        if (o.node != NULL) {
            if (!parseId(CTL_RECORD_NODE, o.node, node)) {
                usageError("invalid node id '%s': 56 hex digits", o.node);
            }
            av[n++] = "NODE";
            al[n] = 28;
            av[n++] = (const char *)node;
        }
    }
    char jobHex[9] = "";
    if (t->kind == CTL_RECORD_PG && o.job != NULL) {
        if (!parseId(CTL_RECORD_JOB, o.job, job)) {
            usageError("invalid job id '%s': 8 hex digits or a number", o.job);
        }
        char *h = ctl_hex(job, 4);
        snprintf(jobHex, sizeof jobHex, "%s", h);
        free(h);
    }
    int base = n;
    for (int i = 0; i < base; i++) {
        if (av[i] != (const char *)job && av[i] != (const char *)node) {
            al[i] = strlen(av[i]);
        }
    }
    rows out = {0};
    char cursor[1024] = "0";
    do {
        n = base;
        av[n] = "CURSOR";
        al[n] = 6;
        n++;
        av[n] = cursor;
        al[n] = strlen(cursor);
        n++;
        av[n] = "COUNT";
        al[n] = 5;
        n++;
        av[n] = "1000";
        al[n] = 4;
        n++;
        redisReply *r = cmd(n, av, al);
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
            r->element[0]->type != REDIS_REPLY_STRING ||
            r->element[1]->type != REDIS_REPLY_ARRAY ||
            r->element[0]->len >= sizeof cursor) {
            freeReplyObject(r);
            die("%s: unexpected reply shape", listCmd);
        }
        snprintf(cursor, sizeof cursor, "%s", r->element[0]->str);
        for (size_t i = 0; i < r->element[1]->elements; i++) {
            const redisReply *e = r->element[1]->element[i];
            ctl_fields f = {0};
            if (e->type != REDIS_REPLY_STRING ||
                !ctl_record_decode(t->kind, e->str, e->len, &f)) {
                ctl_fields_free(&f);
                fprintf(stderr, "gcsctl: warning: a %s record did not decode\n",
                        t->what);
                continue;
            }
            bool keep = (!clientState || o.state == NULL ||
                         textMatches(&f, "state", o.state)) &&
                        (t->kind != CTL_RECORD_PG ||
                         ((o.ns == NULL || textMatches(&f, "namespace", o.ns)) &&
                          (o.job == NULL ||
                           textMatches(&f, "creator_job_id", jobHex))));
            if (keep) *rowsAdd(&out) = f;
            else ctl_fields_free(&f);
        }
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    printRows(&out, ctl_record_columns(t->kind));
    rowsFree(&out);
}

static void tableGet(const tableDef *t, int argc, char **argv)
{
    opts o;
    parseOpts(argc, argv, t->named ? "--namespace" : "", &o);
    if (o.npos != 1) usageError("get needs one %s id%s", t->what,
                                t->named ? " or name" : "");
    uint8_t id[28];
    char c1[32];
    redisReply *r;
    bool byId = parseId(t->kind, o.pos[0], id);
    if (byId) {
        snprintf(c1, sizeof c1, "%s.GET", t->prefix);
        const char *av[2] = {c1, (const char *)id};
        size_t al[2] = {strlen(c1), ctl_record_id_len(t->kind)};
        r = cmd(2, av, al);
    } else if (t->named) {
        snprintf(c1, sizeof c1, "%s.GETNAMED", t->prefix);
        const char *av[3] = {c1, o.ns ? o.ns : "", o.pos[0]};
        r = cmds(3, av);
    } else {
        usageError("invalid %s id '%s': expected %zu hex digits%s", t->what,
                   o.pos[0], 2 * ctl_record_id_len(t->kind),
                   t->kind == CTL_RECORD_JOB ? " or a job number" : "");
    }
    if (r->type == REDIS_REPLY_NIL) {
        freeReplyObject(r);
        if (byId) die("no %s with id %s", t->what, o.pos[0]);
        die("no %s named '%s' in namespace '%s'", t->what, o.pos[0],
            o.ns ? o.ns : "");
    }
    ctl_fields f = {0};
    if (r->type != REDIS_REPLY_STRING ||
        !ctl_record_decode(t->kind, r->str, r->len, &f)) {
        freeReplyObject(r);
        ctl_fields_free(&f);
        die("the %s record did not decode", t->what);
    }
    freeReplyObject(r);
    if (jsonOut) {
        char *j = ctl_fields_json(&f);
        printf("%s\n", j);
        free(j);
    } else {
        ctl_print_record(stdout, &f);
    }
    ctl_fields_free(&f);
}

/* ---- status ---------------------------------------------------------------- */

static const redisReply *pairGet(const redisReply *r, const char *name)
{
    if (r == NULL || r->type != REDIS_REPLY_ARRAY) return NULL;
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        if (r->element[i]->type == REDIS_REPLY_STRING &&
            strcmp(r->element[i]->str, name) == 0) {
            return r->element[i + 1];
        }
    }
    return NULL;
}

static unsigned long long pairInt(const redisReply *r, const char *name)
{
    const redisReply *v = pairGet(r, name);
    if (v == NULL) return 0;
    if (v->type == REDIS_REPLY_INTEGER) return (unsigned long long)v->integer;
    if (v->type == REDIS_REPLY_STRING) return strtoull(v->str, NULL, 10);
    return 0;
}

static const char *pairStr(const redisReply *r, const char *name)
{
    const redisReply *v = pairGet(r, name);
    return v != NULL && v->type == REDIS_REPLY_STRING ? v->str : "";
}

/* Field @name of INFO text (NULL: absent), into @out. */
static bool infoField(const char *info, const char *name, char *out,
                      size_t len)
{
    size_t nl = strlen(name);
    for (const char *p = info; p != NULL && *p; ) {
        if (strncmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            size_t vl = strcspn(v, "\r\n");
            snprintf(out, len, "%.*s", (int)vl, v);
            return true;
        }
        p = strchr(p, '\n');
        if (p != NULL) p++;
    }
    return false;
}

static unsigned long long infoInt(const char *info, const char *name)
{
    char v[64];
    return info != NULL && infoField(info, name, v, sizeof v)
               ? strtoull(v, NULL, 10)
               : 0;
}

static void humanBytes(unsigned long long b, char *out, size_t len)
{
    const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)b;
    int u = 0;
    while (v >= 1024 && u < 4) {
        v /= 1024;
        u++;
    }
    if (u == 0) snprintf(out, len, "%llu B", b);
    else snprintf(out, len, "%.1f %s", v, units[u]);
}

typedef struct memberView {
    unsigned long long id;
    char membership[16]; /* voter, standby, spare */
    char client[256], raft[256];
    bool reachable;
    char err[512];
    redisReply *status; /* its own RAFT.STATUS */
    char *info;         /* its INFO all */
} memberView;

static void queryMember(memberView *m)
{
    char host[256];
    int port;
    if (m->client[0] == '\0') {
        snprintf(m->err, sizeof m->err, "client address unknown");
        return;
    }
    if (!ctl_split_addr(m->client, host, sizeof host, &port)) {
        snprintf(m->err, sizeof m->err, "bad client address");
        return;
    }
    ctl_conn c = {0};
    if (!ctl_conn_open(&c, host, port, password, 1500)) {
        snprintf(m->err, sizeof m->err, "%s", c.err);
        return;
    }
    const char *st[] = {"RAFT.STATUS"}, *in[] = {"INFO", "all"};
    redisReply *r = ctl_conn_cmdv(&c, 1, st);
    if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
        snprintf(m->err, sizeof m->err, "%s",
                 r == NULL ? c.err : r->type == REDIS_REPLY_ERROR ? r->str
                                                                  : "bad reply");
        if (r) freeReplyObject(r);
        ctl_conn_close(&c);
        return;
    }
    m->status = r;
    m->reachable = true;
    r = ctl_conn_cmdv(&c, 2, in);
    if (r != NULL && r->type == REDIS_REPLY_STRING) m->info = strdup(r->str);
    if (r) freeReplyObject(r);
    ctl_conn_close(&c);
}

static void statusCmd(int argc, char **argv)
{
    opts o;
    parseOpts(argc, argv, "", &o);
    if (o.npos) usageError("unexpected argument '%s'", o.pos[0]);
    const char *av[] = {"RAFT.STATUS"};
    redisReply *self = cmds(1, av);
    const redisReply *mem = pairGet(self, "members");
    size_t n = mem != NULL && mem->type == REDIS_REPLY_ARRAY ? mem->elements : 0;
    memberView *mv = calloc(n ? n : 1, sizeof *mv);
    if (mv == NULL) die("out of memory");
    for (size_t i = 0; i < n; i++) {
        const redisReply *e = mem->element[i];
        mv[i].id = pairInt(e, "id");
        snprintf(mv[i].membership, sizeof mv[i].membership, "%s",
                 pairStr(e, "role"));
        snprintf(mv[i].client, sizeof mv[i].client, "%s",
                 pairStr(e, "client_address"));
        snprintf(mv[i].raft, sizeof mv[i].raft, "%s", pairStr(e, "raft_address"));
        if (mv[i].client[0] == '\0' && mv[i].id == pairInt(self, "id")) {
            /* Not announced yet: it is the member we are talking to. */
            snprintf(mv[i].client, sizeof mv[i].client, "%.200s:%d", conn.host,
                     conn.port);
        }
        queryMember(&mv[i]);
    }
    /* The leader: a reachable member that says it leads (highest term),
     * else whom the member we asked names. */
    int leader = -1;
    unsigned long long bestTerm = 0;
    for (size_t i = 0; i < n; i++) {
        if (mv[i].reachable && strcmp(pairStr(mv[i].status, "role"), "leader") == 0 &&
            pairInt(mv[i].status, "failed") == 0 &&
            (leader < 0 || pairInt(mv[i].status, "term") > bestTerm)) {
            leader = (int)i;
            bestTerm = pairInt(mv[i].status, "term");
        }
    }
    unsigned long long leaderId = leader >= 0 ? mv[leader].id
                                              : pairInt(self, "leader_id");
    const redisReply *ref = leader >= 0 ? mv[leader].status : self;
    const char *refInfo = NULL;
    for (size_t i = 0; i < n; i++) {
        if (mv[i].id == pairInt(ref, "id") && mv[i].info) refInfo = mv[i].info;
    }
    const redisReply *leaderMembers =
        leader >= 0 ? pairGet(mv[leader].status, "members") : mem;
    unsigned long long commit = pairInt(ref, "commit_index");
    size_t voters = 0, votersUp = 0;
    rows out = {0};
    for (size_t i = 0; i < n; i++) {
        memberView *m = &mv[i];
        bool failed = m->reachable && pairInt(m->status, "failed") != 0;
        bool voter = strcmp(m->membership, "voter") == 0;
        voters += voter;
        votersUp += voter && m->reachable && !failed;
        ctl_fields *f = rowsAdd(&out);
        ctl_fields_u64(f, "id", m->id);
        ctl_fields_str(f, "role", m->reachable ? pairStr(m->status, "role")
                                               : "unreachable");
        ctl_fields_str(f, "membership", m->membership);
        ctl_fields_str(f, "client_address", m->client);
        ctl_fields_str(f, "raft_address", m->raft);
        char health[600];
        if (!m->reachable && m->client[0] == '\0')
            snprintf(health, sizeof health, "address unknown");
        else if (!m->reachable) snprintf(health, sizeof health, "unreachable");
        else if (failed)
            snprintf(health, sizeof health, "failed: %s",
                     pairStr(m->status, "failure"));
        else snprintf(health, sizeof health, "ok");
        ctl_fields_str(f, "health", health);
        ctl_fields_str(f, "error", m->reachable ? "" : m->err);
        unsigned long long match = 0;
        bool haveMatch = false;
        for (size_t k = 0; leaderMembers && k < leaderMembers->elements; k++) {
            if (pairInt(leaderMembers->element[k], "id") == m->id) {
                match = pairInt(leaderMembers->element[k], "match_index");
                haveMatch = true;
            }
        }
        if (haveMatch) ctl_fields_u64(f, "match_index", match);
        else ctl_fields_add(f, "match_index", "-", "null");
        if (m->reachable) {
            unsigned long long applied = pairInt(m->status, "applied_index");
            ctl_fields_u64(f, "term", pairInt(m->status, "term"));
            ctl_fields_u64(f, "commit_index", pairInt(m->status, "commit_index"));
            ctl_fields_u64(f, "applied_index", applied);
            ctl_fields_i64(f, "lag", (int64_t)commit - (int64_t)applied);
            ctl_fields_u64(f, "revision", infoInt(m->info, "revision"));
            ctl_fields_u64(f, "data_bytes", infoInt(m->info, "lmdb_used_bytes"));
            /* Absent: a release from before formats, which applies 1. */
            unsigned long long fmax = infoInt(m->info, "gcsd_format_max");
            ctl_fields_u64(f, "format_max", fmax ? fmax : 1);
        } else {
            const char *k[] = {"term", "commit_index", "applied_index", "lag",
                               "revision", "data_bytes", "format_max"};
            for (size_t j = 0; j < 7; j++) ctl_fields_add(f, k[j], "-", "null");
        }
    }
    bool quorum = leaderId != 0 && leader >= 0 && votersUp * 2 > voters;
    char why[256] = "";
    if (leaderId == 0 || leader < 0) {
        snprintf(why, sizeof why, "no leader known");
    }
    if (votersUp * 2 <= voters) {
        snprintf(why + strlen(why), sizeof why - strlen(why), "%s%zu of %zu "
                 "voters reachable, a majority needs %zu",
                 why[0] ? "; " : "", votersUp, voters, voters / 2 + 1);
    }
    char leaderAddr[256] = "";
    for (size_t i = 0; i < n; i++) {
        if (mv[i].id == leaderId) snprintf(leaderAddr, sizeof leaderAddr, "%s",
                                           mv[i].client);
    }
    unsigned long long dataBytes = infoInt(refInfo, "lmdb_used_bytes");
    unsigned long long clusterFormat = infoInt(refInfo, "cluster_format");
    if (clusterFormat == 0) clusterFormat = 1; /* from before formats */
    char keysLine[64] = "0";
    if (refInfo != NULL) {
        char ks[128];
        if (infoField(refInfo, "db0", ks, sizeof ks)) {
            snprintf(keysLine, sizeof keysLine, "%llu",
                     strtoull(ks + 5, NULL, 10)); /* keys=N,... */
        }
    }
    if (jsonOut) {
        ctl_fields top = {0};
        ctl_fields_u64(&top, "leader_id", leaderId);
        ctl_fields_str(&top, "leader_address", leaderAddr);
        ctl_fields_u64(&top, "term", pairInt(ref, "term"));
        ctl_fields_u64(&top, "commit_index", commit);
        ctl_fields_u64(&top, "applied_index", pairInt(ref, "applied_index"));
        ctl_fields_u64(&top, "revision", infoInt(refInfo, "revision"));
        ctl_fields_u64(&top, "cluster_format", clusterFormat);
        ctl_fields_u64(&top, "data_bytes", dataBytes);
        ctl_fields_add(&top, "keys", keysLine, keysLine);
        ctl_fields_bool(&top, "quorum", quorum);
        if (quorum) ctl_fields_add(&top, "quorum_problem", "", "null");
        else ctl_fields_str(&top, "quorum_problem", why);
        ctl_buf b = {0};
        ctl_buf_add(&b, "[", 1);
        for (size_t i = 0; i < out.n; i++) {
            char *j = ctl_fields_json(&out.v[i]);
            ctl_buf_printf(&b, "%s%s", i ? ", " : "", j);
            free(j);
        }
        ctl_buf_add(&b, "]", 1);
        char *arr = ctl_buf_take(&b);
        ctl_fields_add(&top, "members", "", arr);
        free(arr);
        char *j = ctl_fields_json(&top);
        printf("%s\n", j);
        free(j);
        ctl_fields_free(&top);
    } else {
        char db[64];
        humanBytes(dataBytes, db, sizeof db);
        if (leaderId != 0) {
            printf("leader    %llu (%s)%s\n", leaderId,
                   leaderAddr[0] ? leaderAddr : "address unknown",
                   leader < 0 ? ", not reachable" : "");
        } else {
            printf("leader    none\n");
        }
        printf("term      %llu\n", pairInt(ref, "term"));
        printf("commit    %llu\n", commit);
        printf("applied   %llu\n", pairInt(ref, "applied_index"));
        printf("revision  %llu\n", infoInt(refInfo, "revision"));
        printf("format    %llu (FORMAT MAX: the newest each member "
               "applies)\n", clusterFormat);
        printf("data      %s, %s keys\n", db, keysLine);
        if (quorum) {
            printf("quorum    yes (%zu of %zu voters reachable)\n", votersUp,
                   voters);
        } else {
            printf("%sNO QUORUM: %s%s\n", tty ? "\033[1;31m" : "", why,
                   tty ? "\033[0m" : "");
        }
        printf("\n");
        static const char *const cols[] = {
            "id", "role", "membership", "client_address", "raft_address",
            "health", "match_index", "applied_index", "lag", "format_max",
            NULL};
        ctl_print_table(stdout, out.v, out.n, cols, tty);
        for (size_t i = 0; i < n; i++) {
            if (!mv[i].reachable) {
                printf("member %llu: %s\n", mv[i].id, mv[i].err);
            }
        }
    }
    rowsFree(&out);
    for (size_t i = 0; i < n; i++) {
        if (mv[i].status) freeReplyObject(mv[i].status);
        free(mv[i].info);
    }
    free(mv);
    freeReplyObject(self);
}

/* ---- membership ------------------------------------------------------------ */

static void printOk(const char *msg)
{
    if (jsonOut) {
        ctl_buf b = {0};
        ctl_buf_json_str(&b, msg, strlen(msg));
        char *s = ctl_buf_take(&b);
        printf("{\"ok\": true, \"message\": %s}\n", s);
        free(s);
    } else {
        printf("%s\n", msg);
    }
}

static void checkMemberId(const char *s)
{
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v == 0 || v > UINT32_MAX) {
        usageError("invalid member id '%s': a number from 1", s);
    }
}

static void memberCmd(int argc, char **argv)
{
    opts o;
    parseOpts(argc, argv, "", &o);
    char msg[600];
    if (o.npos >= 1 && strcmp(o.pos[0], "add") == 0) {
        if (o.npos != 3) usageError("member add needs <id> <host:raftport>");
        checkMemberId(o.pos[1]);
        char host[256];
        int port;
        if (!ctl_split_addr(o.pos[2], host, sizeof host, &port)) {
            usageError("invalid raft address '%s': expected host:port", o.pos[2]);
        }
        const char *av[] = {"RAFT.ADD", o.pos[1], o.pos[2]};
        freeReplyObject(cmds(3, av));
        snprintf(msg, sizeof msg, "member %s added at %s (a non-voter until "
                 "it has caught up, then a voter)", o.pos[1], o.pos[2]);
    } else if (o.npos >= 1 && strcmp(o.pos[0], "remove") == 0) {
        if (o.npos != 2) usageError("member remove needs <id>");
        checkMemberId(o.pos[1]);
        const char *av[] = {"RAFT.REMOVE", o.pos[1]};
        freeReplyObject(cmds(2, av));
        snprintf(msg, sizeof msg, "member %s removed", o.pos[1]);
    } else if (o.npos >= 1 && strcmp(o.pos[0], "promote") == 0) {
        /* RAFT.ADD of a member already in the configuration at its own
         * address makes it a voter (once caught up). */
        if (o.npos != 2) usageError("member promote needs <id>");
        checkMemberId(o.pos[1]);
        const char *sv[] = {"RAFT.STATUS"};
        redisReply *st = cmds(1, sv);
        const redisReply *members = pairGet(st, "members");
        char addr[256] = "";
        for (size_t i = 0; members && i < members->elements; i++) {
            if (pairInt(members->element[i], "id") ==
                strtoull(o.pos[1], NULL, 10)) {
                snprintf(addr, sizeof addr, "%s",
                         pairStr(members->element[i], "raft_address"));
            }
        }
        freeReplyObject(st);
        if (addr[0] == '\0') die("no member %s in the configuration", o.pos[1]);
        const char *av[] = {"RAFT.ADD", o.pos[1], addr};
        freeReplyObject(cmds(3, av));
        snprintf(msg, sizeof msg, "member %s is a voter", o.pos[1]);
    } else {
        usageError("member needs add, remove or promote");
    }
    printOk(msg);
}

/* One event as a line (or a JSON object). */
static void printEvent(const Gcs__ChangeEvent *ev)
{
    ctl_fields f = {0};
    ctl_fields_u64(&f, "revision", ev->revision);
    ctl_fields_str(&f, "table", ev->table ? ev->table : "");
    ctl_fields_str(&f, "kind", ev->kind == GCS__CHANGE_EVENT__KIND__DELETE
                                   ? "DELETE"
                                   : "PUT");
    ctl_fields_bytes(&f, "key", ev->key.data, ev->key.len);
    ctl_fields_bytes(&f, "field", ev->field.data, ev->field.len);
    ctl_fields_bytes(&f, "value", ev->value.data, ev->value.len);
    if (jsonOut) {
        char *j = ctl_fields_json(&f);
        printf("%s\n", j);
        free(j);
    } else {
        /* revision table kind key [field] [value] */
        for (size_t i = 0; i < f.n; i++) {
            if ((i == 4 && ev->field.len == 0) ||
                (i == 5 && ev->value.len == 0))
                continue;
            printf("%s%s", i ? " " : "", f.v[i].text);
        }
        printf("\n");
    }
    fflush(stdout);
    ctl_fields_free(&f);
}

/* watch TABLE|all [--from REV] [--count N]: GCS.WATCH, one line per event;
 * when the member goes away, resume on another one (FROM last+1). */
static void watchCmd(int argc, char **argv, const char *host, int port)
{
    const char *table = NULL, *from = NULL;
    long long count = -1;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--from") == 0 && i + 1 < argc) from = argv[++i];
        else if (strcmp(argv[i], "--count") == 0 && i + 1 < argc)
            count = atoll(argv[++i]);
        else if (table == NULL) table = argv[i];
        else usageError("unexpected argument '%s'", argv[i]);
    }
    if (table == NULL) usageError("watch needs a table (or all)");
    if (strcmp(table, "all") == 0) table = "*";
    uint64_t next = from ? strtoull(from, NULL, 10) : 0;
    /* Every member's client address, to resume on when one goes away. */
    char addrs[16][256];
    int naddr = 0;
    snprintf(addrs[naddr++], sizeof addrs[0], "%s:%d", host, port);
    const char *sv[] = {"RAFT.STATUS"};
    redisReply *st = cmds(1, sv);
    const redisReply *members = pairGet(st, "members");
    for (size_t i = 0; members && i < members->elements && naddr < 16; i++) {
        const char *a = pairStr(members->element[i], "client_address");
        if (a != NULL && a[0] != '\0') snprintf(addrs[naddr++], 256, "%s", a);
    }
    freeReplyObject(st);
    long long seen = 0;
    int at = 0, failures = 0;
    for (;;) {
        char fromArg[32];
        snprintf(fromArg, sizeof fromArg, "%" PRIu64, next);
        const char *wv[] = {"GCS.WATCH", table, "FROM", fromArg};
        int wc = next > 0 ? 4 : 2;
        if (redisAppendCommandArgv(conn.c, wc, wv, NULL) != REDIS_OK) goto lost;
        for (;;) {
            redisReply *r = NULL;
            if (redisGetReply(conn.c, (void **)&r) != REDIS_OK || r == NULL)
                goto lost;
            failures = 0;
            if (r->type == REDIS_REPLY_ERROR) {
                char msg[512];
                snprintf(msg, sizeof msg, "%s", r->str);
                freeReplyObject(r);
                die("GCS.WATCH: %s", msg);
            }
            if (r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
                r->element[1]->type == REDIS_REPLY_STRING &&
                strcmp(r->element[1]->str, "__gcs__:watch") == 0 &&
                strcmp(r->element[0]->str, "message") == 0) {
                Gcs__ChangeEvent *ev = gcs__change_event__unpack(
                    NULL, r->element[2]->len,
                    (const uint8_t *)r->element[2]->str);
                if (ev != NULL) {
                    printEvent(ev);
                    next = ev->revision + 1;
                    gcs__change_event__free_unpacked(ev, NULL);
                    if (count >= 0 && ++seen >= count) {
                        freeReplyObject(r);
                        return;
                    }
                }
            }
            freeReplyObject(r);
        }
    lost:
        /* Resume on the next member, from the revision after the last one
         * printed: no event twice, none lost. */
        if (++failures > 50) die("lost the watch and no member answers");
        ctl_conn_close(&conn);
        for (int tries = 0; tries < naddr; tries++) {
            at = (at + 1) % naddr;
            char h[256];
            int p;
            if (ctl_split_addr(addrs[at], h, sizeof h, &p) &&
                ctl_conn_open(&conn, h, p, password, 2000)) {
                fprintf(stderr, "gcsctl: watch resumes on %s from revision "
                        "%" PRIu64 "\n", addrs[at], next);
                break;
            }
        }
        if (conn.c == NULL) {
            struct timespec ts = {0, 200 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
}

/* backup FILE: GCS.DUMP (linearizable, so it holds every acknowledged
 * write) written to FILE through a temporary file and a rename. */
static void backupCmd(int argc, char **argv)
{
    if (argc != 1) usageError("backup needs FILE");
    const char *file = argv[0];
    const char *dv[] = {"GCS.DUMP"};
    redisReply *r = cmds(1, dv);
    if (r->type != REDIS_REPLY_STRING) die("GCS.DUMP: unexpected reply");
    uint64_t index;
    if (storage_dump_applied_index(r->str, r->len, &index) != 0) {
        die("the server sent a damaged dump");
    }
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", file);
    FILE *f = fopen(tmp, "wb");
    if (f == NULL) die("cannot write %s: %s", tmp, strerror(errno));
    bool ok = fwrite(r->str, 1, r->len, f) == r->len;
    ok = fflush(f) == 0 && fsync(fileno(f)) == 0 && ok;
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, file) != 0) {
        unlink(tmp);
        die("cannot write %s: %s", file, strerror(errno));
    }
    if (jsonOut) {
        printf("{\"file\":\"%s\",\"bytes\":%zu,\"applied_index\":%" PRIu64
               "}\n", file, r->len, index);
    } else {
        printf("backup of %zu bytes (applied index %" PRIu64 ") written to %s\n",
               r->len, index, file);
    }
    freeReplyObject(r);
}

static bool dirHasFiles(const char *dir)
{
    char path[8300];
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    struct stat st;
    return stat(path, &st) == 0;
}

/* restore FILE --data-dir DIR: seed the state of a member of a NEW cluster.
 * The applied index is reset to 0, so the new group's log (which starts at
 * 1) applies on top of the restored state; seed every initial member with
 * the same file, or seed one and let the others join. Never restore into a
 * member of the cluster the backup came from: its log would apply twice. */
static void restoreCmd(int argc, char **argv)
{
    const char *file = NULL, *dir = NULL;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--data-dir") == 0 && i + 1 < argc) dir = argv[++i];
        else if (file == NULL) file = argv[i];
        else usageError("unexpected argument '%s'", argv[i]);
    }
    if (file == NULL || dir == NULL) usageError("restore needs FILE --data-dir DIR");
    FILE *f = fopen(file, "rb");
    if (f == NULL) die("cannot read %s: %s", file, strerror(errno));
    ctl_buf data = {0};
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) ctl_buf_add(&data, chunk, n);
    bool readErr = ferror(f);
    fclose(f);
    if (readErr) die("cannot read %s", file);
    uint64_t index;
    if (storage_dump_applied_index(data.p, data.n, &index) != 0) {
        die("%s is not a gcsd backup, or it is damaged", file);
    }
    char state[4200], raftDir[4200];
    snprintf(state, sizeof state, "%s/state", dir);
    snprintf(raftDir, sizeof raftDir, "%s/raft", dir);
    struct stat st;
    if (dirHasFiles(state) || stat(raftDir, &st) == 0) {
        die("%s already holds a member's data: restore only into a new, "
            "empty data dir", dir);
    }
    if ((mkdir(dir, 0755) != 0 && errno != EEXIST) ||
        (mkdir(state, 0755) != 0 && errno != EEXIST)) {
        die("cannot create %s: %s", state, strerror(errno));
    }
    storage *s;
    char err[512];
    if (storage_open(state, NULL, &s, err, sizeof err) != 0) {
        die("cannot open %s: %s", state, err);
    }
    int rc = storage_load_dump(s, data.p, data.n);
    storage_txn *t = NULL;
    if (rc == 0) rc = storage_begin(s, true, &t);
    if (rc == 0) rc = storage_meta_set(t, STORAGE_META_APPLIED_INDEX, 0);
    if (rc == 0) {
        rc = storage_commit(t);
    } else if (t != NULL) {
        storage_abort(t);
    }
    if (rc == 0) rc = storage_sync(s);
    storage_close(s);
    free(data.p);
    if (rc != 0) die("cannot restore into %s: %s", state, storage_strerror(rc));
    if (jsonOut) {
        printf("{\"data_dir\":\"%s\",\"backup_applied_index\":%" PRIu64 "}\n",
               dir, index);
    } else {
        printf("%s seeded from %s (taken at applied index %" PRIu64 "); start "
               "gcsd on it as a member of a new cluster\n", dir, file, index);
    }
}

static void leaderCmd(int argc, char **argv)
{
    opts o;
    parseOpts(argc, argv, "", &o);
    if (o.npos < 1 || strcmp(o.pos[0], "transfer") != 0 || o.npos > 2) {
        usageError("usage: leader transfer [id]");
    }
    const char *av[] = {"RAFT.TRANSFER", o.npos == 2 ? o.pos[1] : NULL};
    if (o.npos == 2) checkMemberId(o.pos[1]);
    freeReplyObject(cmds(o.npos == 2 ? 2 : 1, av));
    /* Who leads now, as the member we reach sees it. */
    const char *st[] = {"RAFT.STATUS"};
    redisReply *r = ctl_conn_cmdv(&conn, 1, st);
    char msg[128];
    if (r != NULL && r->type == REDIS_REPLY_ARRAY && pairInt(r, "leader_id")) {
        snprintf(msg, sizeof msg, "leadership transferred; leader is now %llu",
                 pairInt(r, "leader_id"));
    } else {
        snprintf(msg, sizeof msg, "leadership transferred");
    }
    if (r) freeReplyObject(r);
    printOk(msg);
}

/* ---- ray: what a Ray head stored through the hash commands ----------------- */

/* Append @s to @b with glob special characters escaped. */
static void globEscape(ctl_buf *b, const char *s)
{
    for (; *s; s++) {
        if (strchr("[]-?*^\\", *s) != NULL) ctl_buf_add(b, "\\", 1);
        ctl_buf_add(b, s, 1);
    }
}

typedef void (*keyFn)(void *arg, const char *key, size_t len);

static void scanKeys(const char *pattern, keyFn fn, void *arg)
{
    char cursor[64] = "0";
    do {
        const char *av[] = {"SCAN", cursor, "MATCH", pattern, "COUNT", "1000"};
        redisReply *r = cmds(6, av);
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
            r->element[0]->type != REDIS_REPLY_STRING ||
            r->element[1]->type != REDIS_REPLY_ARRAY) {
            freeReplyObject(r);
            die("SCAN: unexpected reply shape");
        }
        snprintf(cursor, sizeof cursor, "%s", r->element[0]->str);
        for (size_t i = 0; i < r->element[1]->elements; i++) {
            const redisReply *k = r->element[1]->element[i];
            if (k->type == REDIS_REPLY_STRING) fn(arg, k->str, k->len);
        }
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
}

typedef struct nsEntry {
    char *ns;
    ctl_buf tables_text, tables_json;
    size_t keys;
} nsEntry;

typedef struct nsList {
    nsEntry *v;
    size_t n;
} nsList;

static void onRayKey(void *arg, const char *key, size_t len)
{
    nsList *l = arg;
    if (len < 4 || memcmp(key, "RAY", 3) != 0 || memchr(key, '\0', len)) return;
    const char *at = memchr(key + 3, '@', len - 3);
    if (at == NULL) return;
    size_t nsLen = (size_t)(at - key - 3);
    nsEntry *e = NULL;
    for (size_t i = 0; i < l->n; i++) {
        if (strlen(l->v[i].ns) == nsLen && memcmp(l->v[i].ns, key + 3, nsLen) == 0)
            e = &l->v[i];
    }
    if (e == NULL) {
        l->v = realloc(l->v, (l->n + 1) * sizeof *l->v);
        if (l->v == NULL) die("out of memory");
        e = &l->v[l->n++];
        memset(e, 0, sizeof *e);
        e->ns = strndup(key + 3, nsLen);
    }
    const char *table = at + 1;
    const char *tv[] = {"TYPE", key};
    redisReply *t = cmds(2, tv);
    long long count = 1;
    if (t->type == REDIS_REPLY_STATUS && strcmp(t->str, "hash") == 0) {
        const char *hv[] = {"HLEN", key};
        redisReply *h = cmds(2, hv);
        count = h->type == REDIS_REPLY_INTEGER ? h->integer : 0;
        freeReplyObject(h);
    }
    freeReplyObject(t);
    ctl_buf_printf(&e->tables_text, "%s%s=%lld", e->keys ? " " : "", table,
                   count);
    ctl_buf_add(&e->tables_json, e->keys ? ", " : "", e->keys ? 2 : 0);
    ctl_buf_json_str(&e->tables_json, table, strlen(table));
    ctl_buf_printf(&e->tables_json, ": %lld", count);
    e->keys++;
}

static int nsCompare(const void *a, const void *b)
{
    return strcmp(((const nsEntry *)a)->ns, ((const nsEntry *)b)->ns);
}

static void rayNamespaces(void)
{
    nsList l = {0};
    scanKeys("RAY*@*", onRayKey, &l);
    if (l.n > 1) qsort(l.v, l.n, sizeof *l.v, nsCompare);
    rows out = {0};
    for (size_t i = 0; i < l.n; i++) {
        ctl_fields *f = rowsAdd(&out);
        ctl_fields_str(f, "namespace", l.v[i].ns);
        ctl_fields_u64(f, "keys", l.v[i].keys);
        char *tt = ctl_buf_take(&l.v[i].tables_text);
        char *tj = ctl_buf_take(&l.v[i].tables_json);
        char *json = malloc(strlen(tj) + 3);
        if (json == NULL) die("out of memory");
        sprintf(json, "{%s}", tj);
        ctl_fields_add(f, "tables", tt, json);
        free(tt);
        free(tj);
        free(json);
        free(l.v[i].ns);
    }
    free(l.v);
    static const char *const cols[] = {"namespace", "keys", "tables", NULL};
    printRows(&out, cols);
    rowsFree(&out);
}

static bool printableBytes(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if ((c < 0x20 && c != '\n' && c != '\t') || c >= 0x7f) return false;
    }
    return true;
}

static void rayList(const char *ns, const char *tableArg)
{
    char table[64];
    snprintf(table, sizeof table, "%s", tableArg);
    for (char *p = table; *p; p++) *p = (char)toupper((unsigned char)*p);
    static const char *const alias[][2] = {
        {"NODES", "NODE"}, {"ACTORS", "ACTOR"}, {"JOBS", "JOB"},
        {"PG", "PLACEMENT_GROUP"}, {"PGS", "PLACEMENT_GROUP"},
        {"PLACEMENT_GROUPS", "PLACEMENT_GROUP"}};
    for (size_t i = 0; i < sizeof alias / sizeof alias[0]; i++) {
        if (strcmp(table, alias[i][0]) == 0) snprintf(table, sizeof table, "%s", alias[i][1]);
    }
    if (strcmp(table, "JOBCOUNTER") == 0) snprintf(table, sizeof table, "JobCounter");
    int kind = strcmp(table, "NODE") == 0     ? CTL_RECORD_NODE
               : strcmp(table, "ACTOR") == 0 ? CTL_RECORD_ACTOR
               : strcmp(table, "JOB") == 0   ? CTL_RECORD_JOB
               : strcmp(table, "PLACEMENT_GROUP") == 0 ? CTL_RECORD_PG
                                                        : -1;
    bool kv = strcmp(table, "KV") == 0;
    ctl_buf kb = {0};
    ctl_buf_printf(&kb, "RAY%s@%s", ns, table);
    char *key = ctl_buf_take(&kb);
    const char *tv[] = {"TYPE", key};
    redisReply *t = cmds(2, tv);
    bool isString = t->type == REDIS_REPLY_STATUS && strcmp(t->str, "string") == 0;
    bool none = t->type == REDIS_REPLY_STATUS && strcmp(t->str, "none") == 0;
    freeReplyObject(t);
    if (none) {
        /* die() exits: the key need not be freed. */
        die("no table %s in Ray namespace '%s' (key %s does not exist)", table,
            ns, tableArg[0] ? key : "");
    }
    rows out = {0};
    if (isString) {
        const char *gv[] = {"GET", key};
        redisReply *r = cmds(2, gv);
        ctl_fields *f = rowsAdd(&out);
        ctl_fields_str(f, "key", key);
        if (r->type == REDIS_REPLY_STRING) ctl_fields_bytes(f, "value", r->str, r->len);
        freeReplyObject(r);
        static const char *const cols[] = {"key", "value", NULL};
        printRows(&out, cols);
        rowsFree(&out);
        free(key);
        return;
    }
    char cursor[64] = "0";
    do {
        const char *av[] = {"HSCAN", key, cursor, "COUNT", "1000"};
        redisReply *r = cmds(5, av);
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
            r->element[0]->type != REDIS_REPLY_STRING ||
            r->element[1]->type != REDIS_REPLY_ARRAY) {
            freeReplyObject(r);
            free(key);
            die("HSCAN: unexpected reply shape");
        }
        snprintf(cursor, sizeof cursor, "%s", r->element[0]->str);
        const redisReply *a = r->element[1];
        for (size_t i = 0; i + 1 < a->elements; i += 2) {
            const redisReply *fk = a->element[i], *fv = a->element[i + 1];
            ctl_fields *f = rowsAdd(&out);
            if (kind >= 0) {
                if (!ctl_record_decode((ctl_record_kind)kind, fv->str, fv->len, f)) {
                    ctl_fields_free(f);
                    ctl_fields_hex(f, "key", fk->str, fk->len);
                    ctl_fields_str(f, "error", "value does not decode");
                    ctl_fields_hex(f, "value_hex", fv->str, fv->len);
                }
            } else if (kv) {
                ctl_fields_bytes(f, "key", fk->str, fk->len);
                ctl_fields_u64(f, "size", fv->len);
                if (printableBytes(fv->str, fv->len)) {
                    ctl_fields_bytes(f, "value", fv->str, fv->len);
                } else {
                    ctl_fields_hex(f, "value_hex", fv->str, fv->len);
                    /* readable column text: hex, shortened */
                    char *h = ctl_hex(fv->str, fv->len > 32 ? 32 : fv->len);
                    char txt[80];
                    snprintf(txt, sizeof txt, "0x%s%s", h, fv->len > 32 ? "..." : "");
                    ctl_fields_add(f, "value", txt, "null");
                    free(h);
                }
            } else {
                ctl_fields_hex(f, "key", fk->str, fk->len);
                ctl_fields_u64(f, "size", fv->len);
                ctl_fields_hex(f, "value_hex", fv->str, fv->len);
            }
        }
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    static const char *const kvCols[] = {"key", "size", "value", NULL};
    static const char *const rawCols[] = {"key", "size", "value_hex", NULL};
    printRows(&out, kind >= 0 ? ctl_record_columns((ctl_record_kind)kind)
                    : kv      ? kvCols
                              : rawCols);
    rowsFree(&out);
    free(key);
}

typedef struct keyList {
    char **v;
    size_t *len;
    size_t n;
} keyList;

static void onDeleteKey(void *arg, const char *key, size_t len)
{
    keyList *l = arg;
    l->v = realloc(l->v, (l->n + 1) * sizeof *l->v);
    l->len = realloc(l->len, (l->n + 1) * sizeof *l->len);
    if (l->v == NULL || l->len == NULL) die("out of memory");
    l->v[l->n] = malloc(len + 1);
    if (l->v[l->n] == NULL) die("out of memory");
    memcpy(l->v[l->n], key, len);
    l->v[l->n][len] = '\0';
    l->len[l->n++] = len;
}

static void rayDelete(const char *ns)
{
    if (strchr(ns, '@') != NULL) usageError("a Ray namespace has no '@'");
    ctl_buf pb = {0};
    ctl_buf_add(&pb, "RAY", 3);
    globEscape(&pb, ns);
    ctl_buf_add(&pb, "@*", 2);
    char *pattern = ctl_buf_take(&pb);
    keyList l = {0};
    scanKeys(pattern, onDeleteKey, &l);
    free(pattern);
    long long deleted = 0;
    for (size_t i = 0; i < l.n; i += 100) {
        size_t m = l.n - i < 100 ? l.n - i : 100;
        const char *av[101];
        size_t al[101];
        av[0] = "UNLINK";
        al[0] = 6;
        for (size_t k = 0; k < m; k++) {
            av[k + 1] = l.v[i + k];
            al[k + 1] = l.len[i + k];
        }
        redisReply *r = cmd((int)m + 1, av, al);
        if (r->type == REDIS_REPLY_INTEGER) deleted += r->integer;
        freeReplyObject(r);
    }
    for (size_t i = 0; i < l.n; i++) free(l.v[i]);
    free(l.v);
    free(l.len);
    if (jsonOut) {
        ctl_buf b = {0};
        ctl_buf_json_str(&b, ns, strlen(ns));
        char *s = ctl_buf_take(&b);
        printf("{\"namespace\": %s, \"deleted_keys\": %lld}\n", s, deleted);
        free(s);
    } else {
        printf("deleted %lld keys of Ray namespace '%s'\n", deleted, ns);
    }
}

static void rayCmd(int argc, char **argv)
{
    opts o;
    parseOpts(argc, argv, "", &o);
    if (o.npos >= 1 && strcmp(o.pos[0], "namespaces") == 0) {
        if (o.npos != 1) usageError("ray namespaces takes no arguments");
        rayNamespaces();
    } else if (o.npos >= 1 && strcmp(o.pos[0], "list") == 0) {
        if (o.npos != 3) usageError("ray list needs <namespace> <table>");
        rayList(o.pos[1], o.pos[2]);
    } else if (o.npos >= 1 && strcmp(o.pos[0], "delete") == 0) {
        if (o.npos != 2) usageError("ray delete needs <namespace>");
        rayDelete(o.pos[1]);
    } else {
        usageError("ray needs namespaces, list or delete");
    }
}

/* ---- dispatch -------------------------------------------------------------- */

static const char mainUsage[] =
    "Usage: gcsctl [-h HOST] [-p PORT] [-a PASSWORD] [--json] COMMAND [ARGS]\n"
    "gcsctl: the admin CLI of gcsd.\n"
    "\n"
    "Connection (also from the environment):\n"
    "  -h HOST        server host (GCSCTL_HOST, default 127.0.0.1)\n"
    "  -p PORT        server client port (GCSCTL_PORT, default 6379)\n"
    "  -a PASSWORD    AUTH password (GCSCTL_PASSWORD)\n"
    "  --json         JSON output for scripts\n"
    "  --help         this help; 'gcsctl COMMAND --help' for a command\n"
    "\n"
    "Commands:\n"
    "  status                               the cluster at a glance\n"
    "  nodes  list [ALIVE|DEAD] | get ID    the node table\n"
    "  actors list [filters] | get ID|NAME  the actor table\n"
    "  jobs   list [--state S] | get ID     the job table\n"
    "  pgs    list [filters] | get ID|NAME  the placement group table\n"
    "  ray    namespaces | list NS TABLE | delete NS\n"
    "                                       what a Ray head stored in hashes\n"
    "  member add ID HOST:RAFTPORT | remove ID | promote ID\n"
    "  leader transfer [ID]\n"
    "  watch TABLE|all [--from REV] [--count N]\n"
    "                                       follow changes, resuming on\n"
    "                                       another member after a failure\n"
    "  backup FILE                          a consistent copy of the state\n"
    "  restore FILE --data-dir DIR          seed a new cluster's member\n"
    "\n"
    "Exit codes: 0 success, 1 error, 2 usage.\n";

typedef struct command {
    const char *name;
    const char *help;
} command;

static const command commands[] = {
    {"status",
     "Usage: gcsctl status\n"
     "Asks the member it connects to for RAFT.STATUS, then every member (at\n"
     "its client address) for RAFT.STATUS and INFO. Shows the leader, term,\n"
     "commit and applied index, revision (INFO tables), the cluster's\n"
     "state-machine format, data size, each member's role, addresses,\n"
     "health, match index, lag (the leader's commit index minus the\n"
     "member's applied index) and the newest format it applies, and NO\n"
     "QUORUM when no leader is known or a majority of voters is\n"
     "unreachable.\n"},
    {"nodes",
     "Usage: gcsctl nodes list [ALIVE|DEAD | --state ALIVE|DEAD]\n"
     "       gcsctl nodes get NODE_ID\n"
     "NODE_ID: 56 hex digits.\n"},
    {"actors",
     "Usage: gcsctl actors list [--state STATE] [--job JOB] [--namespace NS]\n"
     "                          [--node NODE_ID]\n"
     "       gcsctl actors get ACTOR_ID | NAME [--namespace NS]\n"
     "STATE: DEPENDENCIES_UNREADY, PENDING_CREATION, ALIVE, RESTARTING, DEAD.\n"
     "JOB: 8 hex digits or the job number. ACTOR_ID: 32 hex digits; anything\n"
     "else is looked up as a live actor's name in NS (default \"\").\n"},
    {"jobs",
     "Usage: gcsctl jobs list [--state RUNNING|FINISHED]\n"
     "       gcsctl jobs get JOB\n"
     "JOB: 8 hex digits or the job number.\n"},
    {"pgs",
     "Usage: gcsctl pgs list [--state STATE] [--job JOB] [--namespace NS]\n"
     "       gcsctl pgs get PG_ID | NAME [--namespace NS]\n"
     "STATE: PENDING, PREPARED, CREATED, REMOVED, RESCHEDULING. PG_ID: 36 hex\n"
     "digits; anything else is looked up as a name in NS (default \"\").\n"},
    {"ray",
     "Usage: gcsctl ray namespaces\n"
     "       gcsctl ray list NAMESPACE TABLE\n"
     "       gcsctl ray delete NAMESPACE\n"
     "What a Ray head stored through the hash commands: RAY<ns>@<TABLE>\n"
     "hashes (SCAN, HSCAN). NODE, ACTOR, JOB and PLACEMENT_GROUP values are\n"
     "decoded through proto/ray.proto; KV values are shown as text, or hex\n"
     "when binary; other tables as hex. 'delete' UNLINKs every key of the\n"
     "namespace (KubeRay's cleanup).\n"},
    {"member",
     "Usage: gcsctl member add ID HOST:RAFTPORT\n"
     "       gcsctl member remove ID\n"
     "       gcsctl member promote ID\n"
     "RAFT.ADD / RAFT.REMOVE through any member (forwarded to the leader).\n"
     "A new member joins as a non-voter and becomes a voter once caught up.\n"},
    {"watch",
     "Usage: gcsctl watch TABLE|all [--from REV] [--count N]\n"
     "GCS.WATCH: one line per change event (revision, table, PUT|DELETE, key,\n"
     "value), the backlog from REV first. When the member goes away, it\n"
     "resumes on another member from the revision after the last one shown.\n"
     "TABLE: NODE, ACTOR, JOB, PLACEMENT_GROUP, KEYSPACE. --count N: stop\n"
     "after N events.\n"},
    {"backup",
     "Usage: gcsctl backup FILE\n"
     "GCS.DUMP through any member (a linearizable read, so the copy holds\n"
     "every acknowledged write), written to FILE (via FILE.tmp, fsynced).\n"},
    {"restore",
     "Usage: gcsctl restore FILE --data-dir DIR\n"
     "Seeds DIR (new and empty) with the backup for a member of a NEW\n"
     "cluster: start every initial member from the same file (or one, and\n"
     "let the others --join). Runs offline; needs no server. Never restore\n"
     "into a member of the cluster the backup came from.\n"},
    {"leader",
     "Usage: gcsctl leader transfer [ID]\n"
     "RAFT.TRANSFER: hands leadership to member ID (default: the most\n"
     "up-to-date voter).\n"},
};

int main(int argc, char **argv)
{
    const char *host = getenv("GCSCTL_HOST");
    const char *portStr = getenv("GCSCTL_PORT");
    password = getenv("GCSCTL_PASSWORD");
    if (host == NULL || host[0] == '\0') host = "127.0.0.1";
    if (portStr == NULL || portStr[0] == '\0') portStr = "6379";
    bool help = false;
    char **rest = calloc((size_t)argc + 1, sizeof *rest);
    if (rest == NULL) return 1;
    int nrest = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "-p") == 0 || strcmp(a, "-a") == 0) {
            if (i + 1 >= argc) {
                free(rest);
                usageError("%s needs a value", a);
            }
            if (a[1] == 'h') host = argv[++i];
            else if (a[1] == 'p') portStr = argv[++i];
            else password = argv[++i];
        } else if (strcmp(a, "--json") == 0) {
            jsonOut = true;
        } else if (strcmp(a, "--help") == 0) {
            help = true;
        } else {
            rest[nrest++] = argv[i];
        }
    }
    tty = isatty(STDOUT_FILENO) && !jsonOut;
    if (nrest == 0) {
        free(rest);
        if (help) {
            fputs(mainUsage, stdout);
            return 0;
        }
        fputs(mainUsage, stderr);
        return EXIT_USAGE;
    }
    const command *c = NULL;
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (strcmp(commands[i].name, rest[0]) == 0) c = &commands[i];
    }
    if (c == NULL) {
        char name[128];
        snprintf(name, sizeof name, "%s", rest[0]);
        free(rest);
        usageError("unknown command '%s'", name);
    }
    progCmd = c->name;
    if (help) {
        fputs(c->help, stdout);
        free(rest);
        return 0;
    }
    char *end;
    long port = strtol(portStr, &end, 10);
    if (*end != '\0' || port <= 0 || port > 65535) {
        free(rest);
        usageError("invalid port '%s'", portStr);
    }
    int sargc = nrest - 1;
    char **sargv = rest + 1;
    const tableDef *t = NULL;
    for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++) {
        if (strcmp(tables[i].word, c->name) == 0) t = &tables[i];
    }
    if (t != NULL) {
        if (sargc < 1 || (strcmp(sargv[0], "list") != 0 &&
                          strcmp(sargv[0], "get") != 0)) {
            free(rest);
            usageError("%s needs list or get", c->name);
        }
    }
    if (strcmp(c->name, "restore") == 0) {
        restoreCmd(sargc, sargv);
        free(rest);
        return fflush(stdout) == 0 ? 0 : 1;
    }
    connectOrDie(host, (int)port);
    if (t != NULL) {
        if (strcmp(sargv[0], "list") == 0) tableList(t, sargc - 1, sargv + 1);
        else tableGet(t, sargc - 1, sargv + 1);
    } else if (strcmp(c->name, "status") == 0) {
        statusCmd(sargc, sargv);
    } else if (strcmp(c->name, "ray") == 0) {
        rayCmd(sargc, sargv);
    } else if (strcmp(c->name, "member") == 0) {
        memberCmd(sargc, sargv);
    } else if (strcmp(c->name, "leader") == 0) {
        leaderCmd(sargc, sargv);
    } else if (strcmp(c->name, "backup") == 0) {
        backupCmd(sargc, sargv);
    } else if (strcmp(c->name, "watch") == 0) {
        watchCmd(sargc, sargv, host, (int)port);
    }
    free(rest);
    ctl_conn_close(&conn);
    return fflush(stdout) == 0 ? 0 : 1;
}
