/* Protected mode: without a password only loopback clients are served. The
 * remote client lives in a network namespace this test creates (two
 * namespaces joined by a veth pair, documentation addresses 192.0.2.0/30),
 * so no traffic leaves the machine. Needs root and iproute2. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdarg.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

static char nsServer[32], nsClient[32];

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
    char cmd[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    return system(cmd);
}

static void netUp(void)
{
    if (geteuid() != 0 || sh("command -v ip >/dev/null 2>&1") != 0) {
        cr_skip_test("needs root and iproute2 for network namespaces");
    }
    snprintf(nsServer, sizeof nsServer, "gcsdt-s%d", (int)getpid());
    snprintf(nsClient, sizeof nsClient, "gcsdt-c%d", (int)getpid());
    cr_assert_eq(sh("ip netns add %s && ip netns add %s", nsServer, nsClient), 0);
    cr_assert_eq(sh("ip link add vs%d type veth peer name vc%d && "
                    "ip link set vs%d netns %s && ip link set vc%d netns %s && "
                    "ip -n %s addr add 192.0.2.1/30 dev vs%d && "
                    "ip -n %s addr add 192.0.2.2/30 dev vc%d && "
                    "ip -n %s link set vs%d up && ip -n %s link set vc%d up && "
                    "ip -n %s link set lo up && ip -n %s link set lo up",
                    (int)getpid(), (int)getpid(), (int)getpid(), nsServer,
                    (int)getpid(), nsClient, nsServer, (int)getpid(), nsClient,
                    (int)getpid(), nsServer, (int)getpid(), nsClient,
                    (int)getpid(), nsServer, nsClient), 0);
}

static void netDown(void)
{
    if (nsServer[0]) sh("ip netns del %s 2>/dev/null", nsServer);
    if (nsClient[0]) sh("ip netns del %s 2>/dev/null", nsClient);
}

/* Start gcsd inside the server namespace on all addresses. */
static pid_t startInNetns(const char *dir, const char *extra, const char *log)
{
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        freopen(log, "w", stderr);
        char cmd[1024];
        snprintf(cmd, sizeof cmd, "exec ip netns exec %s %s --data-dir %s "
                 "--bind 0.0.0.0 --port 6379 --raft-port 16379 %s",
                 nsServer, harness_gcsd_bin(), dir, extra);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* What redis-cli in the client namespace prints for @args. */
static char *remoteCli(const char *args)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "ip netns exec %s redis-cli -h 192.0.2.1 -p 6379 "
             "%s 2>&1", nsClient, args);
    FILE *f = popen(cmd, "r");
    char *out = calloc(1, 4096);
    size_t n = fread(out, 1, 4095, f);
    out[n] = '\0';
    pclose(f);
    return out;
}

/* Poll until the server answers something other than a refused connection. */
static char *waitRemote(const char *args)
{
    long long deadline = harness_now_ms() + 20000;
    while (harness_now_ms() < deadline) {
        char *out = remoteCli(args);
        if (strstr(out, "Connection refused") == NULL && out[0] != '\0') {
            return out;
        }
        free(out);
        struct timespec ts = {0, 20 * 1000000};
        nanosleep(&ts, NULL);
    }
    cr_assert_fail("gcsd in the namespace did not answer");
    return NULL;
}

static void stopProc(pid_t pid)
{
    kill(pid, SIGTERM);
    int status;
    waitpid(pid, &status, 0);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

TestSuite(protected_mode, .init = netUp, .fini = netDown, .timeout = 120);

Test(protected_mode, remote_refused_without_password)
{
    char dir[] = "/tmp/gcsd-test-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char log[64];
    snprintf(log, sizeof log, "%s.log", dir);
    pid_t pid = startInNetns(dir, "", log);
    char *out = waitRemote("PING");
    cr_assert_not_null(strstr(out, "DENIED gcsd is running in protected mode"),
                       "remote client got: %s", out);
    free(out);
    /* Loopback inside the server's namespace is still served. */
    char cmd[256];
    snprintf(cmd, sizeof cmd, "ip netns exec %s redis-cli -p 6379 PING",
             nsServer);
    FILE *f = popen(cmd, "r");
    char buf[64] = {0};
    cr_assert_gt(fread(buf, 1, sizeof buf - 1, f), 0);
    pclose(f);
    cr_assert_str_eq(buf, "PONG\n");
    stopProc(pid);
    sh("rm -rf %s %s", dir, log);
}

Test(protected_mode, remote_allowed_with_password_or_when_disabled)
{
    char dir[] = "/tmp/gcsd-test-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char log[64];
    snprintf(log, sizeof log, "%s.log", dir);
    pid_t pid = startInNetns(dir, "--requirepass pw", log);
    char *out = waitRemote("PING");
    cr_assert_not_null(strstr(out, "NOAUTH"), "got: %s", out);
    free(out);
    out = remoteCli("-a pw --no-auth-warning SET k v");
    cr_assert_str_eq(out, "OK\n");
    free(out);
    stopProc(pid);

    pid = startInNetns(dir, "--protected-mode no", log);
    out = waitRemote("GET k");
    cr_assert_str_eq(out, "v\n");
    free(out);
    stopProc(pid);
    sh("rm -rf %s %s", dir, log);
}
