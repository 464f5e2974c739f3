#include "harness.h"

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
    /* Ports below 30000 keep port+10000 (the default raft port) valid. */
    for (int attempt = 0; attempt < 200; attempt++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in sa = {0};
        sa.sin_family = AF_INET;
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        sa.sin_port = 0;
        socklen_t len = sizeof sa;
        int port = -1;
        if (bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
            getsockname(fd, (struct sockaddr *)&sa, &len) == 0) {
            port = ntohs(sa.sin_port);
        }
        close(fd);
        if (port > 0) return port;
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
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
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

redisReply *harness_cmd(redisContext *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    cr_assert_not_null(r, "command '%s' failed: %s", fmt, c->errstr);
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
