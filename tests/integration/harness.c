#include "harness.h"
#include "test_ports.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

long long harness_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *harness_gcsd_bin(void)
{
    const char *bin = getenv("GCSD_BIN");
    return bin ? bin : "build/gcs/gcsd";
}

int harness_free_port(void)
{
    /* From this process's reserved blocks (test_ports.h: Criterion runs
     * each test in a process of its own), so no other test binds them and
     * a server restarted on its port finds it free. The bind probe skips a
     * port something outside the tests holds. */
    static int next = 0, end = 0;
    for (int attempt = 0; attempt < 20000; attempt++) {
        if (next == end) {
            next = test_port_block();
            cr_assert(next > 0, "no test port block free in "
                                TEST_PORT_LOCK_DIR);
            end = next + TEST_PORT_BLOCK;
        }
        int port = next++;
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0) continue;
        struct sockaddr_in sa = {0};
        sa.sin_family = AF_INET;
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        sa.sin_port = htons((uint16_t)port);
        int ok = bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
        close(fd);
        if (ok) return port;
    }
    cr_assert_fail("no free port");
    return -1;
}

void harness_init(gcsd_proc *p)
{
    memset(p, 0, sizeof *p);
    p->port = harness_free_port();
    do {
        p->raft_port = harness_free_port();
    } while (p->raft_port == p->port);
    snprintf(p->dir, sizeof p->dir, "/tmp/gcsd-test-XXXXXX");
    cr_assert_not_null(mkdtemp(p->dir));
    snprintf(p->log, sizeof p->log, "%s.log", p->dir);
}

static bool pingOk(const gcsd_proc *p)
{
    struct timeval tv = {0, 200000};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", p->port, tv);
    if (c == NULL || c->err) {
        if (c) redisFree(c);
        return false;
    }
    redisSetTimeout(c, tv);
    redisReply *r = redisCommand(c, "PING");
    /* -NOAUTH also proves the server is up. */
    bool ok = r != NULL && (r->type == REDIS_REPLY_STATUS ||
                            r->type == REDIS_REPLY_ERROR);
    if (r) freeReplyObject(r);
    redisFree(c);
    return ok;
}

void harness_start(gcsd_proc *p, int timeout_ms)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "--data-dir %s --port %d --raft-port %d "
             "--log-level notice %s", p->dir, p->port, p->raft_port, p->extra);
    char *argv[64];
    int argc = 0;
    argv[argc++] = (char *)harness_gcsd_bin();
    for (char *tok = strtok(cmd, " "); tok && argc < 62;
         tok = strtok(NULL, " ")) {
        argv[argc++] = tok;
    }
    argv[argc] = NULL;
    pid_t parent = getpid();
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        /* Die with the test process, even when Criterion kills it on a
         * timeout (SIGSTOPped members too). */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(127);
        int fd = open(p->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 2);
            dup2(fd, 1);
            close(fd);
        }
        execv(argv[0], argv);
        _exit(127);
    }
    p->pid = pid;
    long long deadline = harness_now_ms() + timeout_ms;
    while (harness_now_ms() < deadline) {
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            p->pid = 0;
            cr_assert_fail("gcsd exited during start (status %d); see %s",
                           status, p->log);
        }
        if (pingOk(p)) return;
        struct timespec ts = {0, 10 * 1000000}; /* poll interval */
        nanosleep(&ts, NULL);
    }
    cr_assert_fail("gcsd did not answer within %d ms; see %s", timeout_ms,
                   p->log);
}

int harness_stop(gcsd_proc *p, int sig)
{
    if (p->pid <= 0) return -1;
    kill(p->pid, sig);
    long long deadline = harness_now_ms() + 10000;
    int status = -1;
    while (harness_now_ms() < deadline) {
        pid_t r = waitpid(p->pid, &status, WNOHANG);
        if (r == p->pid) {
            p->pid = 0;
            /* A clean shutdown exits 0 (also: no sanitizer or leak report). */
            if (sig == SIGTERM) {
                cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                          "gcsd did not exit cleanly on SIGTERM (status %d); "
                          "see %s", status, p->log);
            }
            return status;
        }
        struct timespec ts = {0, 5 * 1000000};
        nanosleep(&ts, NULL);
    }
    kill(p->pid, SIGKILL);
    waitpid(p->pid, &status, 0);
    p->pid = 0;
    cr_assert_fail("gcsd did not exit within 10 s of signal %d", sig);
    return status;
}

void harness_cleanup(gcsd_proc *p)
{
    if (p->pid > 0) {
        kill(p->pid, SIGKILL);
        waitpid(p->pid, NULL, 0);
        p->pid = 0;
    }
    if (p->dir[0]) {
        char cmd[600];
        snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s'", p->dir, p->log);
        if (system(cmd) != 0) fprintf(stderr, "cleanup of %s failed\n", p->dir);
    }
}

redisContext *harness_connect(const gcsd_proc *p)
{
    redisContext *c = redisConnect("127.0.0.1", p->port);
    cr_assert(c != NULL && c->err == 0, "connect to %d: %s", p->port,
              c ? c->errstr : "oom");
    struct timeval tv = {30, 0};
    redisSetTimeout(c, tv);
    return c;
}

redisReply *(harness_cmd)(redisContext *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    cr_assert_not_null(r, "command '%s' failed: %s", fmt, c->errstr);
    return r;
}

redisReply *harness_cmd_at(const char *file, int line, redisContext *c,
                           const char *fmt, ...)
{
    long long t0 = harness_now_ms();
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    cr_assert_not_null(r, "%s:%d: command '%s' failed after %lld ms: %s",
                       file, line, fmt, harness_now_ms() - t0, c->errstr);
    return r;
}

char *harness_redis_cli(const gcsd_proc *p, const char *args)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "redis-cli -h 127.0.0.1 -p %d %s 2>&1", p->port,
             args);
    FILE *f = popen(cmd, "r");
    cr_assert_not_null(f);
    size_t cap = 4096, len = 0;
    char *out = malloc(cap);
    size_t n;
    while ((n = fread(out + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (cap - len < 2) {
            cap *= 2;
            out = realloc(out, cap);
        }
    }
    out[len] = '\0';
    pclose(f);
    return out;
}

/* ---- clusters ----------------------------------------------------------- */

void harness_poll_pause(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

bool harness_is_retry_error(const redisReply *r)
{
    return r != NULL && r->type == REDIS_REPLY_ERROR && r->str != NULL &&
           (strncmp(r->str, "TRYAGAIN", 8) == 0 ||
            strncmp(r->str, "CLUSTERDOWN", 11) == 0);
}

bool harness_gcsd_has_flag(const char *flag)
{
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "'%s' --help 2>&1", harness_gcsd_bin());
    FILE *f = popen(cmd, "r");
    if (f == NULL) return false;
    char line[512];
    bool found = false;
    size_t n = strlen(flag);
    while (fgets(line, sizeof line, f) != NULL) {
        const char *at = strstr(line, flag);
        /* Whole flag only: "--join" must not match "--join-timeout". */
        if (at != NULL && (at[n] == ' ' || at[n] == '\n' || at[n] == '\0' ||
                           at[n] == '=')) {
            found = true;
        }
    }
    pclose(f);
    return found;
}

unsigned cluster_id(const gcsd_cluster *cl, int i)
{
    (void)cl;
    return (unsigned)i + 1;
}

int cluster_index_of(const gcsd_cluster *cl, unsigned long long id)
{
    if (id == 0 || id > (unsigned long long)cl->n) return -1;
    return (int)id - 1;
}

bool cluster_running(const gcsd_cluster *cl, int i)
{
    return i >= 0 && i < cl->n && cl->m[i].pid > 0 && !cl->stopped[i];
}

static bool portTaken(const gcsd_cluster *cl, int upto, int port)
{
    for (int k = 0; k < upto; k++) {
        if (cl->m[k].port == port || cl->m[k].raft_port == port) return true;
    }
    return false;
}

/* Fresh ports (distinct from every other member's) and a fresh dir. */
static void clusterInitMember(gcsd_cluster *cl, int i)
{
    gcsd_proc *p = &cl->m[i];
    harness_init(p);
    while (portTaken(cl, i, p->port)) p->port = harness_free_port();
    while (portTaken(cl, i, p->raft_port) || p->raft_port == p->port) {
        p->raft_port = harness_free_port();
    }
}

static void dropCtl(gcsd_cluster *cl, int i)
{
    if (cl->ctl[i] != NULL) redisFree(cl->ctl[i]);
    cl->ctl[i] = NULL;
}

void cluster_start(gcsd_cluster *cl, int n, const char *flags)
{
    cr_assert(n >= 1 && n <= CLUSTER_MAX, "cluster of %d members", n);
    memset(cl, 0, sizeof *cl);
    snprintf(cl->flags, sizeof cl->flags, "%s", flags ? flags : "");
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        clusterInitMember(cl, i);
        cl->n = i + 1; /* from here on, cleanup removes its dir */
        off += (size_t)snprintf(cl->peers + off, sizeof cl->peers - off,
                                "%s%u=127.0.0.1:%d", i ? "," : "",
                                cluster_id(cl, i), cl->m[i].raft_port);
        cr_assert_lt(off, sizeof cl->peers);
    }
    for (int i = 0; i < n; i++) {
        int w = snprintf(cl->m[i].extra, sizeof cl->m[i].extra,
                         "--id %u --peers %s --election-timeout 1000 "
                         "--heartbeat-timeout 100 %s",
                         cluster_id(cl, i), cl->peers, cl->flags);
        cr_assert_lt((size_t)w, sizeof cl->m[i].extra);
    }
    for (int i = 0; i < n; i++) harness_start(&cl->m[i], 20000);
}

int cluster_add_member(gcsd_cluster *cl, const char *flags)
{
    cr_assert_lt(cl->n, CLUSTER_MAX, "cluster is full");
    int i = cl->n;
    clusterInitMember(cl, i);
    cl->n = i + 1;
    int w = snprintf(cl->m[i].extra, sizeof cl->m[i].extra,
                     "--id %u --election-timeout 1000 --heartbeat-timeout 100 "
                     "%s %s", cluster_id(cl, i), cl->flags, flags ? flags : "");
    cr_assert_lt((size_t)w, sizeof cl->m[i].extra);
    return i;
}

redisContext *cluster_connect(const gcsd_cluster *cl, int i)
{
    cr_assert(i >= 0 && i < cl->n, "no member %d", i);
    return harness_connect(&cl->m[i]);
}

/* The cached status connection of member i, or NULL (why in last_err). */
static redisContext *ctlConn(gcsd_cluster *cl, int i)
{
    if (!cluster_running(cl, i)) {
        snprintf(cl->last_err, sizeof cl->last_err, "member %d not running",
                 i);
        return NULL;
    }
    if (cl->ctl[i] != NULL && cl->ctl[i]->err == 0) return cl->ctl[i];
    dropCtl(cl, i);
    struct timeval ctv = {1, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", cl->m[i].port, ctv);
    if (c == NULL || c->err) {
        snprintf(cl->last_err, sizeof cl->last_err, "member %d: connect: %s",
                 i, c ? c->errstr : "oom");
        if (c) redisFree(c);
        return NULL;
    }
    struct timeval tv = {2, 0};
    redisSetTimeout(c, tv);
    cl->ctl[i] = c;
    return c;
}

/* Run one command on the status connection; NULL on a connection error (the
 * connection is dropped: a late reply must not be read as the next one). */
static redisReply *ctlCommand(gcsd_cluster *cl, int i, const char *cmd)
{
    redisContext *c = ctlConn(cl, i);
    if (c == NULL) return NULL;
    redisReply *r = redisCommand(c, cmd);
    if (r == NULL) {
        snprintf(cl->last_err, sizeof cl->last_err, "member %d: %s: %s", i,
                 cmd, c->errstr);
        dropCtl(cl, i);
    }
    return r;
}

redisReply *cluster_status(gcsd_cluster *cl, int i)
{
    redisReply *r = ctlCommand(cl, i, "RAFT.STATUS");
    if (r == NULL) return NULL;
    if (r->type != REDIS_REPLY_ARRAY) {
        snprintf(cl->last_err, sizeof cl->last_err,
                 "member %d: RAFT.STATUS: type %d (%s)", i, r->type,
                 r->str ? r->str : "");
        freeReplyObject(r);
        return NULL;
    }
    return r;
}

const redisReply *harness_pair_get(const redisReply *pairs, const char *name)
{
    if (pairs == NULL || pairs->type != REDIS_REPLY_ARRAY) return NULL;
    for (size_t k = 0; k + 1 < pairs->elements; k += 2) {
        const redisReply *f = pairs->element[k];
        if ((f->type == REDIS_REPLY_STRING || f->type == REDIS_REPLY_STATUS) &&
            strcmp(f->str, name) == 0) {
            return pairs->element[k + 1];
        }
    }
    return NULL;
}

/* A scalar reply as text; false for arrays and absent values. */
static bool replyText(const redisReply *v, char *out, size_t len)
{
    if (v == NULL) return false;
    switch (v->type) {
        case REDIS_REPLY_INTEGER:
            snprintf(out, len, "%lld", v->integer);
            return true;
        case REDIS_REPLY_STRING:
        case REDIS_REPLY_STATUS:
            snprintf(out, len, "%s", v->str);
            return true;
        case REDIS_REPLY_NIL:
            snprintf(out, len, "%s", "");
            return true;
        default:
            return false;
    }
}

bool cluster_status_field(gcsd_cluster *cl, int i, const char *field,
                          char *out, size_t len)
{
    redisReply *r = cluster_status(cl, i);
    if (r == NULL) return false;
    bool ok = replyText(harness_pair_get(r, field), out, len);
    if (!ok) {
        snprintf(cl->last_err, sizeof cl->last_err,
                 "member %d: RAFT.STATUS has no field '%s'", i, field);
    }
    freeReplyObject(r);
    return ok;
}

long long cluster_status_int(gcsd_cluster *cl, int i, const char *field)
{
    char v[64];
    if (!cluster_status_field(cl, i, field, v, sizeof v) || v[0] == '\0') {
        return -1;
    }
    return strtoll(v, NULL, 10);
}

int cluster_find_leader(gcsd_cluster *cl, int timeout_ms)
{
    long long deadline = harness_now_ms() + timeout_ms;
    for (;;) {
        char view[sizeof cl->last_err] = "";
        size_t off = 0;
        int leader = -1, nRunning = 0;
        bool agree = true;
        long long ids[CLUSTER_MAX];
        for (int i = 0; i < cl->n; i++) {
            ids[i] = -1;
            if (!cluster_running(cl, i)) continue;
            nRunning++;
            char role[32] = "?";
            redisReply *r = cluster_status(cl, i);
            if (r == NULL) {
                agree = false;
                off += (size_t)snprintf(view + off, sizeof view - off,
                                        "[%s] ", cl->last_err);
                if (off >= sizeof view) off = sizeof view - 1;
                continue;
            }
            char lid[32] = "";
            replyText(harness_pair_get(r, "role"), role, sizeof role);
            replyText(harness_pair_get(r, "leader_id"), lid, sizeof lid);
            freeReplyObject(r);
            ids[i] = lid[0] ? strtoll(lid, NULL, 10) : -1;
            off += (size_t)snprintf(view + off, sizeof view - off,
                                    "[member %d: %s, leader_id %s] ", i, role,
                                    lid[0] ? lid : "?");
            if (off >= sizeof view) off = sizeof view - 1;
            if (strcmp(role, "leader") == 0) {
                if (leader >= 0) agree = false; /* two (old and new) leaders */
                leader = i;
            }
        }
        cr_assert_gt(nRunning, 0, "no running member to elect a leader");
        if (leader >= 0 && agree) {
            for (int i = 0; i < cl->n; i++) {
                if (cluster_running(cl, i) &&
                    ids[i] != (long long)cluster_id(cl, leader)) {
                    agree = false;
                }
            }
            if (agree) return leader;
        }
        snprintf(cl->last_err, sizeof cl->last_err, "%s", view);
        if (harness_now_ms() >= deadline) return -1;
        harness_poll_pause(20);
    }
}

int cluster_wait_leader(gcsd_cluster *cl, int timeout_ms)
{
    int leader = cluster_find_leader(cl, timeout_ms);
    cr_assert_geq(leader, 0, "no leader all running members agree on within "
                  "%d ms; last view: %s", timeout_ms, cl->last_err);
    return leader;
}

void cluster_wait_applied(gcsd_cluster *cl, long long index, int timeout_ms)
{
    long long deadline = harness_now_ms() + timeout_ms;
    for (;;) {
        char view[sizeof cl->last_err] = "";
        size_t off = 0;
        bool all = true;
        for (int i = 0; i < cl->n; i++) {
            if (!cluster_running(cl, i)) continue;
            long long a = cluster_status_int(cl, i, "applied_index");
            if (a < index) all = false;
            off += (size_t)snprintf(view + off, sizeof view - off,
                                    "[member %d: %lld] ", i, a);
            if (off >= sizeof view) off = sizeof view - 1;
        }
        if (all) return;
        cr_assert_lt(harness_now_ms(), deadline,
                     "members did not apply index %lld within %d ms: "
                     "applied %s", index, timeout_ms, view);
        harness_poll_pause(20);
    }
}

void cluster_wait_role(gcsd_cluster *cl, int i, const char *role,
                       int timeout_ms)
{
    long long deadline = harness_now_ms() + timeout_ms;
    char got[32] = "?";
    for (;;) {
        if (cluster_status_field(cl, i, "role", got, sizeof got) &&
            strcmp(got, role) == 0) {
            return;
        }
        cr_assert_lt(harness_now_ms(), deadline,
                     "member %d is not %s within %d ms (role %s; %s)", i, role,
                     timeout_ms, got, cl->last_err);
        harness_poll_pause(20);
    }
}

bool cluster_info_field(gcsd_cluster *cl, int i, const char *section,
                        const char *field, char *out, size_t len)
{
    char cmd[64];
    snprintf(cmd, sizeof cmd, "INFO %s", section);
    redisReply *r = ctlCommand(cl, i, cmd);
    if (r == NULL) return false;
    bool found = false;
    if (r->type == REDIS_REPLY_STRING) {
        size_t n = strlen(field);
        for (const char *line = r->str; line && *line;) {
            if (strncmp(line, field, n) == 0 && line[n] == ':') {
                const char *v = line + n + 1;
                size_t vl = strcspn(v, "\r\n");
                snprintf(out, len, "%.*s", (int)vl, v);
                found = true;
                break;
            }
            line = strchr(line, '\n');
            if (line) line++;
        }
    }
    freeReplyObject(r);
    return found;
}

int cluster_kill(gcsd_cluster *cl, int i, int sig)
{
    cr_assert(i >= 0 && i < cl->n && cl->m[i].pid > 0,
              "member %d is not running", i);
    if (sig == SIGSTOP || sig == SIGCONT) {
        kill(cl->m[i].pid, sig);
        cl->stopped[i] = sig == SIGSTOP;
        return 0;
    }
    /* A stopped process would hold a SIGTERM pending forever. */
    if (cl->stopped[i]) kill(cl->m[i].pid, SIGCONT);
    cl->stopped[i] = false;
    dropCtl(cl, i);
    return harness_stop(&cl->m[i], sig);
}

void cluster_restart(gcsd_cluster *cl, int i)
{
    cr_assert(i >= 0 && i < cl->n && cl->m[i].pid <= 0,
              "member %d is still running", i);
    dropCtl(cl, i);
    cl->stopped[i] = false;
    harness_start(&cl->m[i], 20000);
}

/* SIGTERM the members in @order (@count of them): all at once, or each
 * after the one before exited. Every one must exit 0 within 20 s of its
 * signal. Marks the cluster clean when they all did. */
static void termMembers(gcsd_cluster *cl, const int *order, int count,
                        bool atOnce)
{
    int status[CLUSTER_MAX] = {0};
    bool exited[CLUSTER_MAX] = {false};
    long long deadline = 0;
    for (int k = 0; k < count; k++) {
        int i = order[k];
        dropCtl(cl, i);
        if (cl->stopped[i]) kill(cl->m[i].pid, SIGCONT);
        cl->stopped[i] = false;
    }
    for (int k = 0; k < count; k++) {
        /* Send to one (or, at once, to all) and wait for those sent to. */
        int upto = atOnce ? count : k + 1;
        for (int j = atOnce ? 0 : k; j < upto; j++) {
            kill(cl->m[order[j]].pid, SIGTERM);
        }
        deadline = harness_now_ms() + 20000;
        for (;;) {
            bool all = true;
            for (int j = 0; j < upto; j++) {
                int i = order[j];
                if (exited[i]) continue;
                if (waitpid(cl->m[i].pid, &status[i], WNOHANG) ==
                    cl->m[i].pid) {
                    cl->m[i].pid = 0;
                    exited[i] = true;
                    continue;
                }
                all = false;
            }
            if (all || harness_now_ms() >= deadline) break;
            harness_poll_pause(5);
        }
        if (atOnce) break;
        if (!exited[order[k]]) break; /* do not pile up signals */
    }
    char bad[512] = "";
    size_t off = 0;
    for (int k = 0; k < count; k++) {
        int i = order[k];
        if (!exited[i]) {
            off += (size_t)snprintf(bad + off, sizeof bad - off,
                                    "member %d did not exit within 20 s of "
                                    "SIGTERM; ", i);
        } else if (!(WIFEXITED(status[i]) && WEXITSTATUS(status[i]) == 0)) {
            off += (size_t)snprintf(bad + off, sizeof bad - off,
                                    "member %d exited with status 0x%x; ", i,
                                    status[i]);
        }
        if (off >= sizeof bad) off = sizeof bad - 1;
    }
    cr_assert(bad[0] == '\0', "stopping the cluster (%s): %s",
              atOnce ? "SIGTERM to all at once" : "SIGTERM one at a time, "
              "leader last", bad);
    cl->clean = true;
}

void cluster_stop_all(gcsd_cluster *cl)
{
    int order[CLUSTER_MAX], count = 0, leaders[CLUSTER_MAX], nLeaders = 0;
    for (int i = 0; i < cl->n; i++) {
        if (cl->m[i].pid <= 0) continue;
        if (cl->stopped[i]) {
            kill(cl->m[i].pid, SIGCONT);
            cl->stopped[i] = false;
        }
        char role[32] = "";
        cluster_status_field(cl, i, "role", role, sizeof role);
        if (strcmp(role, "leader") == 0) leaders[nLeaders++] = i;
        else order[count++] = i;
    }
    for (int k = 0; k < nLeaders; k++) order[count++] = leaders[k];
    termMembers(cl, order, count, false);
}

void cluster_stop_all_at_once(gcsd_cluster *cl)
{
    int order[CLUSTER_MAX], count = 0;
    for (int i = 0; i < cl->n; i++) {
        if (cl->m[i].pid > 0) order[count++] = i;
    }
    termMembers(cl, order, count, true);
}

/* Print the last @lines lines of @path. */
static void tailFile(const char *path, int lines)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "  (no log %s)\n", path);
        return;
    }
    enum { CHUNK = 32768 };
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    long from = size > CHUNK ? size - CHUNK : 0;
    fseek(f, from, SEEK_SET);
    char *buf = malloc(CHUNK + 1);
    size_t n = buf ? fread(buf, 1, CHUNK, f) : 0;
    fclose(f);
    if (buf == NULL) return;
    buf[n] = '\0';
    size_t start = n;
    int seen = 0;
    while (start > 0) {
        if (buf[start - 1] == '\n' && start != n && ++seen >= lines) break;
        start--;
    }
    fputs(buf + start, stderr);
    if (n > 0 && buf[n - 1] != '\n') fputc('\n', stderr);
    free(buf);
}

void cluster_dump_logs(const gcsd_cluster *cl, int lines)
{
    for (int i = 0; i < cl->n; i++) {
        fprintf(stderr, "---- member %d (id %u, client port %d, raft port %d): "
                "last %d lines of %s ----\n", i, cluster_id(cl, i),
                cl->m[i].port, cl->m[i].raft_port, lines, cl->m[i].log);
        tailFile(cl->m[i].log, lines);
    }
    fflush(stderr);
}

void cluster_cleanup(gcsd_cluster *cl)
{
    for (int i = 0; i < cl->n; i++) {
        dropCtl(cl, i);
        if (cl->m[i].pid > 0) {
            kill(cl->m[i].pid, SIGKILL);
            waitpid(cl->m[i].pid, NULL, 0);
            cl->m[i].pid = 0;
        }
    }
    if (cl->n > 0 && !cl->clean) cluster_dump_logs(cl, 40);
    bool keep = getenv("GCSD_KEEP_DIRS") != NULL;
    for (int i = 0; i < cl->n; i++) {
        if (keep) {
            fprintf(stderr, "kept member %d: %s and %s\n", i, cl->m[i].dir,
                    cl->m[i].log);
        } else {
            harness_cleanup(&cl->m[i]);
        }
    }
    cl->n = 0;
}
