/* gcsctl against live gcsd processes: every subcommand, human output
 * against stable expectations, --json parsed by python3 and checked field
 * by field, a Ray-shaped dataset written with HSET decoding, and the errors
 * (unreachable server, wrong password, unknown id) with their exit codes. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "blob_cmd.h"
#include "harness.h"
#include "table_records.h"

/* ---- running gcsctl ---------------------------------------------------- */

typedef struct run_result {
    int code;
    char *out, *err;
} run_result;

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "open %s", path);
    char *buf = NULL;
    size_t n = 0, cap = 0;
    char chunk[4096];
    size_t k;
    while ((k = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (n + k + 1 > cap) {
            cap = (n + k + 1) * 2;
            buf = realloc(buf, cap);
            cr_assert_not_null(buf);
        }
        memcpy(buf + n, chunk, k);
        n += k;
    }
    fclose(f);
    if (buf == NULL) buf = calloc(1, 1);
    else buf[n] = '\0';
    return buf;
}

static run_result lastRun;

static void runFree(void)
{
    free(lastRun.out);
    free(lastRun.err);
    lastRun = (run_result){0};
}

/* Run `gcsctl ARGS` (a shell word list); stdout and stderr in lastRun. */
static run_result *gcsctl(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
static run_result *gcsctl(const char *fmt, ...)
{
    runFree();
    const char *bin = getenv("GCSCTL_BIN");
    cr_assert_not_null(bin, "GCSCTL_BIN is not set");
    char args[2048], line[4096], outp[64], errp[64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(outp, sizeof outp, "/tmp/gcsctl_test_%d.out", (int)getpid());
    snprintf(errp, sizeof errp, "/tmp/gcsctl_test_%d.err", (int)getpid());
    snprintf(line, sizeof line, "'%s' %s >%s 2>%s </dev/null", bin, args, outp,
             errp);
    int st = system(line);
    cr_assert(st != -1 && WIFEXITED(st), "gcsctl did not exit: %s", line);
    lastRun.code = WEXITSTATUS(st);
    lastRun.out = slurp(outp);
    lastRun.err = slurp(errp);
    unlink(outp);
    unlink(errp);
    return &lastRun;
}

#define EXPECT_RUN(code_, ...)                                               \
    do {                                                                     \
        run_result *r_ = gcsctl(__VA_ARGS__);                                \
        cr_assert_eq(r_->code, (code_),                                      \
                     "exit %d, want %d\nstdout:\n%s\nstderr:\n%s", r_->code, \
                     (code_), r_->out, r_->err);                            \
    } while (0)

#define EXPECT_OUT_HAS(s)                                                    \
    cr_assert(strstr(lastRun.out, (s)) != NULL, "stdout lacks [%s]:\n%s",   \
              (s), lastRun.out)
#define EXPECT_ERR_HAS(s)                                                    \
    cr_assert(strstr(lastRun.err, (s)) != NULL, "stderr lacks [%s]:\n%s",   \
              (s), lastRun.err)

/* Evaluate the Python expression @expr with `d` bound to lastRun.out parsed
 * as JSON; its str() (malloc'd, trailing newline removed). */
static char *py(const char *expr)
{
    char jp[64], sp[64], line[256];
    snprintf(jp, sizeof jp, "/tmp/gcsctl_test_%d.json", (int)getpid());
    snprintf(sp, sizeof sp, "/tmp/gcsctl_test_%d.py", (int)getpid());
    FILE *f = fopen(jp, "w");
    cr_assert_not_null(f);
    fputs(lastRun.out, f);
    fclose(f);
    f = fopen(sp, "w");
    cr_assert_not_null(f);
    fprintf(f, "import json, sys\nd = json.load(open(sys.argv[1]))\n"
               "v = (%s)\nprint(v)\n", expr);
    fclose(f);
    snprintf(line, sizeof line, "/usr/bin/python3 %s %s 2>&1", sp, jp);
    FILE *p = popen(line, "r");
    cr_assert_not_null(p);
    char buf[4096];
    size_t n = fread(buf, 1, sizeof buf - 1, p);
    buf[n] = '\0';
    int st = pclose(p);
    unlink(jp);
    unlink(sp);
    cr_assert_eq(st, 0, "python failed on %s:\n%s\njson:\n%s", expr, buf,
                 lastRun.out);
    while (n > 0 && buf[n - 1] == '\n') buf[--n] = '\0';
    return strdup(buf);
}

#define EXPECT_PY(expr, want)                                                \
    do {                                                                     \
        char *v_ = py(expr);                                                 \
        cr_expect_str_eq(v_, (want), "%s\n  got:  %s\n  want: %s\n  json: %s", (expr), v_, (want), lastRun.out);                          \
        free(v_);                                                            \
    } while (0)

/* ---- sending binary commands ------------------------------------------- */

#define OK(c, ...)                                                           \
    do {                                                                     \
        redisReply *r_ = CMD(c, __VA_ARGS__);                                \
        cr_assert(r_->type != REDIS_REPLY_ERROR, "%s", r_->str);             \
        freeReplyObject(r_);                                                 \
    } while (0)

static void hexOf(blob b, char *out)
{
    for (size_t i = 0; i < b.n; i++) sprintf(out + 2 * i, "%02x", b.p[i]);
    out[2 * b.n] = '\0';
}

/* ---- single member --------------------------------------------------------- */

static void envClear(void)
{
    unsetenv("GCSCTL_HOST");
    unsetenv("GCSCTL_PORT");
    unsetenv("GCSCTL_PASSWORD");
}

static gcsd_proc srv;

static void soloSetup(void)
{
    envClear();
    harness_init(&srv);
    harness_start(&srv, 20000);
}

static void soloTeardown(void)
{
    runFree();
    te_pool_free();
    harness_stop(&srv, SIGTERM);
    harness_cleanup(&srv);
}

TestSuite(gcsctl, .init = soloSetup, .fini = soloTeardown, .timeout = 120);

Test(gcsctl, help_and_usage)
{
    EXPECT_RUN(0, "--help");
    EXPECT_OUT_HAS("Usage: gcsctl [-h HOST] [-p PORT] [-a PASSWORD] [--json]");
    const char *cmds[] = {"status", "nodes", "actors", "jobs", "pgs",
                          "ray", "member", "leader", "backup", "restore",
                          "watch"};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        EXPECT_RUN(0, "%s --help", cmds[i]);
        char want[64];
        snprintf(want, sizeof want, "Usage: gcsctl %s", cmds[i]);
        EXPECT_OUT_HAS(want);
    }
    EXPECT_RUN(2, "%s", "");
    EXPECT_ERR_HAS("Usage: gcsctl");
    EXPECT_RUN(2, "frobnicate");
    EXPECT_ERR_HAS("gcsctl: unknown command 'frobnicate'");
    EXPECT_RUN(2, "-p %d watch", srv.port);
    EXPECT_ERR_HAS("watch needs a table");
    EXPECT_RUN(2, "restore /tmp/x");
    EXPECT_ERR_HAS("restore needs FILE --data-dir DIR");
    EXPECT_RUN(2, "-p %d nodes", srv.port);
    EXPECT_ERR_HAS("nodes needs list or get");
    EXPECT_RUN(2, "-p %d nodes get zz", srv.port);
    EXPECT_ERR_HAS("invalid node id 'zz': expected 56 hex digits");
    EXPECT_RUN(2, "-p %d actors list --bogus 1", srv.port);
    EXPECT_RUN(2, "-p %d nodes list --job 1", srv.port);
    EXPECT_RUN(2, "-p notaport status");
    EXPECT_RUN(2, "-p %d member add 0 127.0.0.1:1", srv.port);
    EXPECT_RUN(2, "-p %d member add 4 nocolon", srv.port);
}

Test(gcsctl, status_single_member)
{
    EXPECT_RUN(0, "-p %d status", srv.port);
    char want[256];
    snprintf(want, sizeof want, "leader    1 (127.0.0.1:%d)\n", srv.port);
    EXPECT_OUT_HAS(want);
    EXPECT_OUT_HAS("quorum    yes (1 of 1 voters reachable)\n");
    EXPECT_OUT_HAS("ID  ROLE    MEMBERSHIP  CLIENT ADDRESS");
    snprintf(want, sizeof want, "1   leader  voter       127.0.0.1:%d  "
             "127.0.0.1:%d  ok  ", srv.port, srv.raft_port);
    EXPECT_OUT_HAS(want);
    cr_assert(strstr(lastRun.out, "\033[") == NULL, "colours in a pipe");
    /* The environment names the server too. */
    char port[16];
    snprintf(port, sizeof port, "%d", srv.port);
    setenv("GCSCTL_PORT", port, 1);
    EXPECT_RUN(0, "--json status");
    unsetenv("GCSCTL_PORT");
    EXPECT_PY("d['leader_id']", "1");
    EXPECT_PY("d['quorum']", "True");
    EXPECT_PY("d['quorum_problem']", "None");
    EXPECT_PY("d['commit_index'] >= 1 and d['applied_index'] == d['commit_index']", "True");
    EXPECT_PY("d['data_bytes'] > 0", "True");
    EXPECT_PY("len(d['members'])", "1");
    EXPECT_PY("d['members'][0]['role']", "leader");
    EXPECT_PY("d['members'][0]['membership']", "voter");
    EXPECT_PY("d['members'][0]['health']", "ok");
    EXPECT_PY("d['members'][0]['lag']", "0");
    EXPECT_PY("d['members'][0]['match_index'] == d['commit_index']", "True");
}

/* A small Ray-shaped cluster state through the typed commands. */
static void typedDataset(redisContext *c)
{
    OK(c, S("NODE.REGISTER"), te_node(1, "CPU=4,GPU=1"));
    OK(c, S("NODE.REGISTER"), te_node(2, "CPU=8"));
    OK(c, S("NODE.DEAD"), te_node_id(2), S("raylet crashed"));
    OK(c, S("JOB.ADD"), te_job(1, 1));
    OK(c, S("JOB.ADD"), te_job(2, 1));
    OK(c, S("JOB.FINISH"), te_job_id(2));
    OK(c, S("ACTOR.REGISTER"),
       te_actor((te_actor_spec){.k = 1, .job = 1, .name = "svc", .ns = "ns"}));
    OK(c, S("ACTOR.UPDATE"), te_actor_id(1, 1), te_update(1, 0, 0));
    OK(c, S("ACTOR.UPDATE"), te_actor_id(1, 1), te_update(2, 1, 5));
    OK(c, S("ACTOR.REGISTER"),
       te_actor((te_actor_spec){.k = 2, .job = 1, .ns = "other"}));
    OK(c, S("PG.CREATE"),
       te_pg((te_pg_spec){.k = 1, .job = 1, .strategy = 2,
                          .bundles = "CPU=1;CPU=2,GPU=1", .name = "grp",
                          .ns = "ns"}));
}

Test(gcsctl, typed_tables)
{
    redisContext *c = harness_connect(&srv);
    typedDataset(c);
    char n1[64], n2[64], a1[40], a2[40], p1[40];
    hexOf(te_node_id(1), n1);
    hexOf(te_node_id(2), n2);
    hexOf(te_actor_id(1, 1), a1);
    hexOf(te_actor_id(2, 1), a2);
    hexOf(te_pg_id(1, 1), p1);

    /* nodes */
    EXPECT_RUN(0, "-p %d nodes list", srv.port);
    EXPECT_OUT_HAS("NODE ID");
    char want[512];
    snprintf(want, sizeof want, "%s  ALIVE  10.0.0.1:7001  CPU=4, GPU=1  20",
             n1);
    EXPECT_OUT_HAS(want);
    snprintf(want, sizeof want, "%s  DEAD   10.0.0.1:7002  CPU=8         20",
             n2);
    EXPECT_OUT_HAS(want);
    EXPECT_RUN(0, "-p %d --json nodes list DEAD", srv.port);
    EXPECT_PY("len(d)", "1");
    snprintf(want, sizeof want, "d[0]['node_id'] == '%s'", n2);
    EXPECT_PY(want, "True");
    EXPECT_PY("d[0]['state']", "DEAD");
    EXPECT_PY("d[0]['resources']", "{'CPU': 8}");
    EXPECT_PY("d[0]['death_reason']", "UNEXPECTED_TERMINATION");
    EXPECT_PY("d[0]['death_message']", "raylet crashed");
    EXPECT_PY("d[0]['end_time'][:2] + d[0]['end_time'][-1]", "20Z");
    EXPECT_RUN(0, "-p %d --json nodes list --state alive", srv.port);
    EXPECT_PY("[n['state'] for n in d]", "['ALIVE']");
    EXPECT_PY("d[0]['resources']", "{'CPU': 4, 'GPU': 1}");
    EXPECT_RUN(0, "-p %d nodes get %s", srv.port, n1);
    snprintf(want, sizeof want, "node_id     %s\nstate       ALIVE\n"
             "address     10.0.0.1:7001\n", n1);
    EXPECT_OUT_HAS(want);
    EXPECT_OUT_HAS("resources   CPU=4, GPU=1\n");

    /* actors */
    EXPECT_RUN(0, "-p %d actors list", srv.port);
    snprintf(want, sizeof want, "%s  ALIVE                 01000000  svc   "
             "ns         Counter     %s", a1, n1);
    EXPECT_OUT_HAS(want);
    snprintf(want, sizeof want, "%s  DEPENDENCIES_UNREADY  01000000        "
             "other      Counter     -", a2);
    EXPECT_OUT_HAS(want);
    EXPECT_RUN(0, "-p %d --json actors list --state ALIVE --job 1", srv.port);
    EXPECT_PY("len(d)", "1");
    EXPECT_PY("d[0]['name'], d[0]['namespace'], d[0]['pid']",
              "('svc', 'ns', 4242)");
    EXPECT_PY("d[0]['address']", "10.0.0.2:1234");
    EXPECT_PY("d[0]['detached'], d[0]['max_restarts']", "(False, 0)");
    EXPECT_RUN(0, "-p %d --json actors list --namespace other", srv.port);
    snprintf(want, sizeof want, "[a['actor_id'] for a in d] == ['%s']", a2);
    EXPECT_PY(want, "True");
    EXPECT_RUN(0, "-p %d --json actors list --node %s", srv.port, n1);
    EXPECT_PY("[a['name'] for a in d]", "['svc']");
    EXPECT_RUN(0, "-p %d --json actors list --job 00000000", srv.port);
    EXPECT_PY("d", "[]");
    EXPECT_RUN(0, "-p %d --json actors get svc --namespace ns", srv.port);
    snprintf(want, sizeof want, "d['actor_id'] == '%s'", a1);
    EXPECT_PY(want, "True");
    EXPECT_PY("d['start_time'].endswith('Z')", "True");
    EXPECT_RUN(0, "-p %d actors get %s", srv.port, a2);
    EXPECT_OUT_HAS("state               DEPENDENCIES_UNREADY\n");
    EXPECT_RUN(1, "-p %d actors get svc", srv.port);
    EXPECT_ERR_HAS("gcsctl: no actor named 'svc' in namespace ''");
    EXPECT_RUN(1, "-p %d actors get %.16s00000009%s", srv.port, a1, a1 + 24);
    EXPECT_ERR_HAS("gcsctl: no actor with id");

    /* jobs */
    EXPECT_RUN(0, "-p %d jobs list", srv.port);
    EXPECT_OUT_HAS("JOB ID    STATE     ENTRYPOINT       START TIME");
    EXPECT_OUT_HAS("01000000  RUNNING   python train.py  20");
    EXPECT_OUT_HAS("02000000  FINISHED  python train.py  20");
    EXPECT_RUN(0, "-p %d --json jobs list --state finished", srv.port);
    EXPECT_PY("[(j['job_id'], j['state']) for j in d]",
              "[('02000000', 'FINISHED')]");
    EXPECT_RUN(0, "-p %d --json jobs get 1", srv.port);
    EXPECT_PY("d['job_id'], d['driver_pid'], d['end_time']",
              "('01000000', 99, None)");
    snprintf(want, sizeof want, "d['driver_node_id'] == '%s'", n1);
    EXPECT_PY(want, "True");
    EXPECT_RUN(1, "-p %d jobs get 7", srv.port);
    EXPECT_ERR_HAS("gcsctl: no job with id 7");

    /* placement groups */
    EXPECT_RUN(0, "-p %d pgs list", srv.port);
    EXPECT_OUT_HAS("PLACEMENT GROUP ID");
    snprintf(want, sizeof want, "%s  CREATED  grp   ns         STRICT_PACK",
             p1);
    EXPECT_OUT_HAS(want);
    EXPECT_OUT_HAS("{CPU=1}@4e4e4e4e; {CPU=2, GPU=1}@4e4e4e4e");
    EXPECT_RUN(0, "-p %d --json pgs get grp --namespace ns", srv.port);
    EXPECT_PY("d['state'], d['strategy'], d['creator_job_id']",
              "('CREATED', 'STRICT_PACK', '01000000')");
    EXPECT_PY("[b['resources'] for b in d['bundles']]",
              "[{'CPU': 1}, {'CPU': 2, 'GPU': 1}]");
    snprintf(want, sizeof want, "d['bundles'][1]['node_id'] == '%s'", n1);
    EXPECT_PY(want, "True");
    EXPECT_RUN(0, "-p %d --json pgs list --namespace nope", srv.port);
    EXPECT_PY("d", "[]");
    EXPECT_RUN(0, "-p %d --json pgs list --job 1 --state created", srv.port);
    EXPECT_PY("len(d)", "1");
    EXPECT_RUN(1, "-p %d pgs get missing", srv.port);
    EXPECT_ERR_HAS("no placement group named 'missing' in namespace ''");
    redisFree(c);
}

/* What a Ray head writes through the hash commands (contract 1.3). */
static void rayDataset(redisContext *c, const char *ns)
{
    char k[5][128];
    const char *t[] = {"NODE", "ACTOR", "JOB", "PLACEMENT_GROUP", "KV"};
    for (int i = 0; i < 5; i++) snprintf(k[i], sizeof k[i], "RAY%s@%s", ns, t[i]);
    OK(c, S("HSET"), S(k[0]), te_node_id(3), te_node(3, "CPU=16"));
    OK(c, S("HSET"), S(k[1]), te_actor_id(7, 1),
       te_actor((te_actor_spec){.k = 7, .job = 1, .name = "Ray\"Actor\"",
                                .ns = "ray-ns", .detached = true,
                                .max_restarts = -1}));
    OK(c, S("HSET"), S(k[2]), te_job_id(1), te_job(1, 3));
    OK(c, S("HSET"), S(k[3]), te_pg_id(5, 1),
       te_pg((te_pg_spec){.k = 5, .job = 1, .strategy = 1,
                          .bundles = "CPU=1;CPU=1", .name = "pg5"}));
    uint8_t cid[28];
    for (int i = 0; i < 28; i++) cid[i] = (uint8_t)(0xf0 + i % 16);
    OK(c, S("HSET"), S(k[4]), S("@namespace_cluster:ray_cluster_id"),
       te_copy(cid, 28));
    OK(c, S("HSET"), S(k[4]), S("@namespace_session:session_name"),
       S("session_2024"));
    char jc[128];
    snprintf(jc, sizeof jc, "RAY%s@JobCounter", ns);
    OK(c, S("SET"), S(jc), S("1"));
}

Test(gcsctl, ray_hash_tables)
{
    redisContext *c = harness_connect(&srv);
    rayDataset(c, "864b004c-6305-42e3-ac46-adfa8eb6f752");
    rayDataset(c, "other");
    OK(c, S("SET"), S("unrelated"), S("x"));

    EXPECT_RUN(0, "-p %d ray namespaces", srv.port);
    EXPECT_OUT_HAS("NAMESPACE                             KEYS  TABLES\n");
    EXPECT_OUT_HAS("864b004c-6305-42e3-ac46-adfa8eb6f752  6     ");
    EXPECT_OUT_HAS("other                                 6     ");
    EXPECT_RUN(0, "-p %d --json ray namespaces", srv.port);
    EXPECT_PY("[n['namespace'] for n in d]",
              "['864b004c-6305-42e3-ac46-adfa8eb6f752', 'other']");
    EXPECT_PY("sorted(d[1]['tables'].items())",
              "[('ACTOR', 1), ('JOB', 1), ('JobCounter', 1), ('KV', 2), "
              "('NODE', 1), ('PLACEMENT_GROUP', 1)]");

    const char *ns = "864b004c-6305-42e3-ac46-adfa8eb6f752";
    char want[512], id[64];
    EXPECT_RUN(0, "-p %d --json ray list %s NODE", srv.port, ns);
    hexOf(te_node_id(3), id);
    snprintf(want, sizeof want, "d[0]['node_id'] == '%s'", id);
    EXPECT_PY(want, "True");
    EXPECT_PY("d[0]['resources'], d[0]['address']",
              "({'CPU': 16}, '10.0.0.1:7003')");
    EXPECT_RUN(0, "-p %d --json ray list %s actor", srv.port, ns);
    hexOf(te_actor_id(7, 1), id);
    snprintf(want, sizeof want, "d[0]['actor_id'] == '%s'", id);
    EXPECT_PY(want, "True");
    EXPECT_PY("d[0]['name'], d[0]['namespace'], d[0]['detached'], "
              "d[0]['max_restarts'], d[0]['job_id']",
              "('Ray\"Actor\"', 'ray-ns', True, -1, '01000000')");
    EXPECT_RUN(0, "-p %d ray list %s ACTOR", srv.port, ns);
    EXPECT_OUT_HAS("DEPENDENCIES_UNREADY  01000000  Ray\"Actor\"  ray-ns");
    EXPECT_RUN(0, "-p %d --json ray list %s JOB", srv.port, ns);
    EXPECT_PY("d[0]['job_id'], d[0]['state'], d[0]['entrypoint']",
              "('01000000', 'RUNNING', 'python train.py')");
    EXPECT_RUN(0, "-p %d --json ray list %s pg", srv.port, ns);
    EXPECT_PY("d[0]['name'], d[0]['strategy'], d[0]['state'], len(d[0]['bundles'])",
              "('pg5', 'SPREAD', 'PENDING', 2)");
    EXPECT_RUN(0, "-p %d --json ray list %s KV", srv.port, ns);
    EXPECT_PY("sorted((r['key'], r['size']) for r in d)",
              "[('@namespace_cluster:ray_cluster_id', 28), "
              "('@namespace_session:session_name', 12)]");
    EXPECT_PY("[r['value'] for r in d if 'session' in r['key']]",
              "['session_2024']");
    EXPECT_PY("[r['value_hex'] for r in d if 'cluster' in r['key']]",
              "['f0f1f2f3f4f5f6f7f8f9fafbfcfdfefff0f1f2f3f4f5f6f7f8f9fafb']");
    EXPECT_RUN(0, "-p %d ray list %s KV", srv.port, ns);
    EXPECT_OUT_HAS("@namespace_session:session_name    12    session_2024\n");
    EXPECT_OUT_HAS("@namespace_cluster:ray_cluster_id  28    0xf0f1f2");
    EXPECT_RUN(0, "-p %d ray list %s JobCounter", srv.port, ns);
    EXPECT_OUT_HAS("RAY864b004c-6305-42e3-ac46-adfa8eb6f752@JobCounter  1\n");
    EXPECT_RUN(1, "-p %d ray list %s WORKERS", srv.port, ns);
    EXPECT_ERR_HAS("no table WORKERS in Ray namespace");
    /* A value that is not the record it should be. */
    OK(c, S("HSET"), S("RAYother@NODE"), S("k"), S("\xff\xff"));
    EXPECT_RUN(0, "-p %d --json ray list other NODE", srv.port);
    EXPECT_PY("sorted(r.get('error', '-') for r in d)",
              "['-', 'value does not decode']");

    EXPECT_RUN(0, "-p %d ray delete %s", srv.port, ns);
    snprintf(want, sizeof want, "deleted 6 keys of Ray namespace '%s'\n", ns);
    EXPECT_OUT_HAS(want);
    EXPECT_RUN(0, "-p %d --json ray namespaces", srv.port);
    EXPECT_PY("[n['namespace'] for n in d]", "['other']");
    EXPECT_RUN(0, "-p %d --json ray delete other", srv.port);
    EXPECT_PY("d['deleted_keys']", "6");
    redisReply *r = CMD(c, S("EXISTS"), S("unrelated"));
    cr_assert_eq(r->integer, 1);
    freeReplyObject(r);
    redisFree(c);
}

Test(gcsctl, unreachable_server)
{
    int port = harness_free_port();
    EXPECT_RUN(1, "-p %d status", port);
    char want[128];
    snprintf(want, sizeof want, "gcsctl: cannot connect to gcsd at "
             "127.0.0.1:%d: Connection refused", port);
    EXPECT_ERR_HAS(want);
    EXPECT_RUN(1, "-h 127.0.0.1 -p %d --json nodes list", port);
    cr_assert_str_eq(lastRun.out, "");
}

/* ---- a password ---------------------------------------------------------------- */

static void authSetup(void)
{
    envClear();
    harness_init(&srv);
    snprintf(srv.extra, sizeof srv.extra, "--requirepass s3cret");
    harness_start(&srv, 20000);
}

TestSuite(gcsctl_auth, .init = authSetup, .fini = soloTeardown,
          .timeout = 60);

Test(gcsctl_auth, password)
{
    EXPECT_RUN(1, "-p %d status", srv.port);
    EXPECT_ERR_HAS("authentication required by 127.0.0.1");
    EXPECT_ERR_HAS("pass the password with -a or GCSCTL_PASSWORD");
    EXPECT_RUN(1, "-p %d -a wrong status", srv.port);
    EXPECT_ERR_HAS("gcsctl: authentication failed at 127.0.0.1");
    EXPECT_RUN(0, "-p %d -a s3cret --json status", srv.port);
    EXPECT_PY("d['members'][0]['health']", "ok");
    setenv("GCSCTL_PASSWORD", "s3cret", 1);
    EXPECT_RUN(0, "-p %d --json jobs list", srv.port);
    EXPECT_PY("d", "[]");
    unsetenv("GCSCTL_PASSWORD");
}

/* ---- a 3-member cluster ------------------------------------------------------- */

static gcsd_cluster cl;

static void clusterFini(void)
{
    runFree();
    te_pool_free();
    cluster_cleanup(&cl);
}

TestSuite(gcsctl_cluster, .init = envClear, .fini = clusterFini,
          .timeout = 120);

Test(gcsctl_cluster, status_membership_transfer)
{
    cluster_start(&cl, 3, "");
    int leader = cluster_wait_leader(&cl, 20000);
    int follower = (leader + 1) % 3;
    redisContext *c = cluster_connect(&cl, leader);
    OK(c, S("SET"), S("k"), S("v"));
    redisFree(c);

    /* Members announce their client addresses once they are up. */
    long long deadline = harness_now_ms() + 15000;
    for (;;) {
        EXPECT_RUN(0, "-p %d --json status", cl.m[follower].port);
        char *v = py("all(m['health'] == 'ok' for m in d['members'])");
        bool done = strcmp(v, "True") == 0;
        free(v);
        if (done || harness_now_ms() > deadline) break;
        harness_poll_pause(200);
    }
    char want[256];
    snprintf(want, sizeof want, "d['leader_id'] == %u", cluster_id(&cl, leader));
    EXPECT_PY(want, "True");
    EXPECT_PY("d['quorum']", "True");
    EXPECT_PY("len(d['members'])", "3");
    EXPECT_PY("sorted(m['role'] for m in d['members'])",
              "['follower', 'follower', 'leader']");
    EXPECT_PY("all(m['health'] == 'ok' and m['membership'] == 'voter' "
              "for m in d['members'])", "True");
    EXPECT_PY("all(m['match_index'] is not None and m['lag'] >= 0 "
              "for m in d['members'])", "True");
    EXPECT_RUN(0, "-p %d status", cl.m[follower].port);
    EXPECT_OUT_HAS("quorum    yes (3 of 3 voters reachable)\n");

    /* leader transfer, through a follower */
    unsigned target = cluster_id(&cl, follower);
    EXPECT_RUN(0, "-p %d leader transfer %u", cl.m[follower].port, target);
    EXPECT_OUT_HAS("leadership transferred");
    cr_assert_eq(cluster_wait_leader(&cl, 20000), follower);

    /* member remove, then add it back (its process still runs) */
    int other = 3 - leader - follower;
    unsigned oid = cluster_id(&cl, other);
    EXPECT_RUN(0, "-p %d --json member remove %u", cl.m[leader].port, oid);
    EXPECT_PY("d['ok']", "True");
    EXPECT_RUN(0, "-p %d --json status", cl.m[leader].port);
    EXPECT_PY("len(d['members'])", "2");
    EXPECT_RUN(1, "-p %d member remove %u", cl.m[leader].port, oid);
    EXPECT_ERR_HAS("RAFT.REMOVE failed: ERR no such member");
    EXPECT_RUN(0, "-p %d member add %u 127.0.0.1:%d", cl.m[leader].port, oid,
               cl.m[other].raft_port);
    snprintf(want, sizeof want, "member %u added at 127.0.0.1:%d", oid,
             cl.m[other].raft_port);
    EXPECT_OUT_HAS(want);
    EXPECT_RUN(0, "-p %d --json status", cl.m[leader].port);
    EXPECT_PY("len(d['members'])", "3");
    EXPECT_RUN(1, "-p %d member add 9 127.0.0.1:%d", cl.m[leader].port,
               cl.m[other].raft_port);
    EXPECT_ERR_HAS("RAFT.ADD failed: ERR");
    /* promote: a voter stays one; an unknown id is an error */
    EXPECT_RUN(0, "-p %d member promote %u", cl.m[leader].port, oid);
    snprintf(want, sizeof want, "member %u is a voter", oid);
    EXPECT_OUT_HAS(want);
    EXPECT_RUN(1, "-p %d member promote 9", cl.m[leader].port);
    EXPECT_ERR_HAS("no member 9 in the configuration");

    /* two of three down: no quorum */
    int alive = follower; /* the leader now */
    for (int i = 0; i < 3; i++) {
        if (i != alive) cluster_kill(&cl, i, SIGKILL);
    }
    EXPECT_RUN(0, "-p %d status", cl.m[alive].port);
    EXPECT_OUT_HAS("NO QUORUM: ");
    EXPECT_OUT_HAS("1 of 3 voters reachable, a majority needs 2");
    EXPECT_OUT_HAS("unreachable");
    EXPECT_RUN(0, "-p %d --json status", cl.m[alive].port);
    EXPECT_PY("d['quorum']", "False");
    EXPECT_PY("'1 of 3 voters reachable' in d['quorum_problem']", "True");
    EXPECT_PY("sorted(m['health'] for m in d['members'])",
              "['ok', 'unreachable', 'unreachable']");
    cluster_stop_all(&cl);
}

Test(gcsctl_cluster, follows_moved)
{
    cluster_start(&cl, 3, "--redirect");
    int leader = cluster_wait_leader(&cl, 20000);
    int follower = (leader + 1) % 3;
    redisContext *c = cluster_connect(&cl, leader);
    OK(c, S("JOB.ADD"), te_job(1, 1));
    OK(c, S("HSET"), S("RAYx@KV"), S("a"), S("b"));
    redisFree(c);
    EXPECT_RUN(0, "-p %d --json jobs list", cl.m[follower].port);
    EXPECT_PY("[j['job_id'] for j in d]", "['01000000']");
    EXPECT_RUN(0, "-p %d --json ray list x KV", cl.m[follower].port);
    EXPECT_PY("d[0]['value']", "b");
    cluster_stop_all(&cl);
}

/* backup through the running member, restore into a new data dir, start a
 * new member there: identical keyspace and tables, and it takes writes on
 * top. A data dir that holds a member is refused; so is a damaged file. */
Test(gcsctl, backup_then_restore)
{
    redisContext *c = harness_connect(&srv);
    for (int i = 0; i < 200; i++) {
        freeReplyObject(harness_cmd(c, "SET k%d v%d", i, i));
    }
    freeReplyObject(harness_cmd(c, "HSET h f1 a f2 b"));
    freeReplyObject(harness_cmd(c, "INCRBY n 41"));
    typedDataset(c);
    redisReply *before = harness_cmd(c, "NODE.LIST");
    redisFree(c);

    char file[128];
    snprintf(file, sizeof file, "/tmp/gcsctl-backup-%d.bin", (int)getpid());
    EXPECT_RUN(0, "-p %d backup %s", srv.port, file);
    EXPECT_OUT_HAS("written to");

    gcsd_proc fresh;
    harness_init(&fresh);
    /* harness_init made an empty data dir: restore fills it. */
    EXPECT_RUN(0, "restore %s --data-dir %s", file, fresh.dir);
    EXPECT_OUT_HAS("seeded from");
    EXPECT_RUN(1, "restore %s --data-dir %s", file, fresh.dir);
    EXPECT_ERR_HAS("already holds a member's data");
    EXPECT_RUN(1, "restore %s --data-dir %s", "/etc/hostname", "/tmp/nowhere");
    EXPECT_ERR_HAS("is not a gcsd backup");

    harness_start(&fresh, 20000);
    c = harness_connect(&fresh);
    redisReply *r = harness_cmd(c, "DBSIZE");
    cr_assert_eq(r->integer, 202);
    freeReplyObject(r);
    r = harness_cmd(c, "GET k123");
    cr_assert_str_eq(r->str, "v123");
    freeReplyObject(r);
    r = harness_cmd(c, "HGET h f2");
    cr_assert_str_eq(r->str, "b");
    freeReplyObject(r);
    r = harness_cmd(c, "INCR n");
    cr_assert_eq(r->integer, 42, "writes go on top of the restored state");
    freeReplyObject(r);
    redisReply *after = harness_cmd(c, "NODE.LIST");
    cr_assert_eq(after->type, before->type);
    cr_assert_eq(after->elements, before->elements);
    cr_assert_eq(after->element[1]->elements, before->element[1]->elements);
    for (size_t i = 0; i < after->element[1]->elements; i++) {
        const redisReply *a = after->element[1]->element[i];
        const redisReply *b = before->element[1]->element[i];
        cr_assert(a->len == b->len && memcmp(a->str, b->str, a->len) == 0,
                  "node record %zu differs after restore", i);
    }
    freeReplyObject(after);
    freeReplyObject(before);
    redisFree(c);
    harness_stop(&fresh, SIGTERM);
    /* Restarting it replays nothing twice. */
    harness_start(&fresh, 20000);
    c = harness_connect(&fresh);
    r = harness_cmd(c, "GET n");
    cr_assert_str_eq(r->str, "42");
    freeReplyObject(r);
    redisFree(c);
    harness_stop(&fresh, SIGTERM);
    harness_cleanup(&fresh);
    unlink(file);
}

/* gcsctl watch follows a follower; when that member is killed it resumes on
 * another one from the revision after the last it showed: every change
 * once, in order, none missing. */
Test(gcsctl_cluster, watch_resumes_after_a_member_dies, .timeout = 120)
{
    cluster_start(&cl, 3, "");
    int leader = cluster_wait_leader(&cl, 10000);
    int f = (leader + 1) % 3;
    redisContext *c = cluster_connect(&cl, leader);
    for (int i = 1; i <= 5; i++) freeReplyObject(harness_cmd(c, "SET x%d %d", i, i));
    /* Followers announce their addresses a moment after start. */
    long long deadline = harness_now_ms() + 15000;
    for (;;) {
        redisReply *st = harness_cmd(c, "RAFT.STATUS");
        const redisReply *m = harness_pair_get(st, "members");
        size_t known = 0;
        for (size_t i = 0; m && i < m->elements; i++) {
            const redisReply *a = harness_pair_get(m->element[i],
                                                   "client_address");
            if (a && a->type == REDIS_REPLY_STRING && a->len > 0) known++;
        }
        freeReplyObject(st);
        if (known == 3) break;
        cr_assert_lt(harness_now_ms(), deadline, "addresses not announced");
        harness_poll_pause(50);
    }
    char out[128], cmdline[512];
    snprintf(out, sizeof out, "/tmp/gcsctl-watch-%d.out", (int)getpid());
    snprintf(cmdline, sizeof cmdline, "'%s' -p %d watch KEYSPACE --from 1 "
             "--count 10 >%s 2>/dev/null & echo $!", getenv("GCSCTL_BIN"),
             cl.m[f].port, out);
    FILE *p = popen(cmdline, "r");
    int pid = 0;
    cr_assert(p != NULL && fscanf(p, "%d", &pid) == 1);
    pclose(p);
    /* Wait for the 5 backlog events, then kill the member it watches. */
    deadline = harness_now_ms() + 15000;
    for (;;) {
        if (access(out, F_OK) != 0) { /* the shell has not opened it yet */
            cr_assert_lt(harness_now_ms(), deadline, "gcsctl did not start");
            harness_poll_pause(20);
            continue;
        }
        char *text = slurp(out);
        int lines = 0;
        for (char *q = text; *q; q++) lines += *q == '\n';
        free(text);
        if (lines >= 5) break;
        cr_assert_lt(harness_now_ms(), deadline, "no backlog from gcsctl");
        harness_poll_pause(20);
    }
    cluster_kill(&cl, f, SIGKILL);
    for (int i = 6; i <= 10; i++) freeReplyObject(harness_cmd(c, "SET x%d %d", i, i));
    redisFree(c);
    /* It is the shell's child, not ours: wait for it to go away (it stops
     * by itself after --count events). */
    deadline = harness_now_ms() + 30000;
    while (kill(pid, 0) == 0) {
        cr_assert_lt(harness_now_ms(), deadline, "gcsctl watch did not finish");
        harness_poll_pause(50);
    }
    char *text = slurp(out);
    unlink(out);
    /* Lines "REV KEYSPACE PUT xI I", revisions consecutive. */
    char *save = NULL;
    long long prev = 0;
    int i = 0;
    for (char *line = strtok_r(text, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        long long rev;
        char key[32], val[32];
        cr_assert_eq(sscanf(line, "%lld KEYSPACE PUT %31s %31s", &rev, key,
                            val), 3, "line: %s", line);
        i++;
        char want[32];
        snprintf(want, sizeof want, "x%d", i);
        cr_assert_str_eq(key, want, "event %d: %s", i, line);
        if (prev) cr_assert_eq(rev, prev + 1, "gap or repeat at %s", line);
        prev = rev;
    }
    cr_assert_eq(i, 10);
    free(text);
    cluster_stop_all(&cl);
}
