/* harness: start and stop real gcsd processes for integration tests, and
 * talk to them with hiredis. Every wait polls with a deadline; nothing
 * sleeps for synchronisation. */
#ifndef GCS_TEST_HARNESS_H
#define GCS_TEST_HARNESS_H

#include <stdbool.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

#include <hiredis/hiredis.h>

typedef struct gcsd_proc {
    pid_t pid;
    int port;
    int raft_port;
    char dir[256];      /* data dir (owned by the test; removed by cleanup) */
    char log[300];      /* the process's stderr */
    char extra[512];    /* extra flags, space separated */
} gcsd_proc;

/* A free TCP port on 127.0.0.1 (bound then released). */
int harness_free_port(void);

/* Prepare @p with fresh ports and a new temp data dir. */
void harness_init(gcsd_proc *p);

/* Spawn gcsd for @p (flags: --data-dir --port --raft-port plus p->extra) and
 * wait until it answers PING (or fail the test after @timeout_ms). */
void harness_start(gcsd_proc *p, int timeout_ms);

/* Send @sig and wait for the process to exit (fails the test after 10 s,
 * and, for SIGTERM, unless it exits with status 0).
 * Returns the exit status as from waitpid. */
int harness_stop(gcsd_proc *p, int sig);

/* Remove the data dir. */
void harness_cleanup(gcsd_proc *p);

/* Connect to @p (fails the test on error). */
redisContext *harness_connect(const gcsd_proc *p);

/* Run a command; fails the test on a connection error (not on -ERR). */
redisReply *harness_cmd(redisContext *c, const char *fmt, ...);

/* Run redis-cli with @args against @p; returns its stdout (malloc'd). */
char *harness_redis_cli(const gcsd_proc *p, const char *args);

/* Milliseconds on a monotonic clock. */
long long harness_now_ms(void);

/* Path of the gcsd binary (GCSD_BIN, set by meson). */
const char *harness_gcsd_bin(void);

/* Declare Criterion suite @name whose every test gets a fresh gcsd, started
 * with the extra flags @flags, as the file-static `srv`; it is stopped with
 * SIGTERM (and must exit cleanly) after the test. */
#define HARNESS_SERVER_SUITE(name, flags, timeout_s)                         \
    static gcsd_proc srv;                                                    \
    static void name##Setup(void)                                            \
    {                                                                        \
        harness_init(&srv);                                                  \
        snprintf(srv.extra, sizeof srv.extra, "%s", (flags));                \
        harness_start(&srv, 20000);                                          \
    }                                                                        \
    static void name##Teardown(void)                                         \
    {                                                                        \
        harness_stop(&srv, SIGTERM);                                         \
        harness_cleanup(&srv);                                               \
    }                                                                        \
    TestSuite(name, .init = name##Setup, .fini = name##Teardown,             \
              .timeout = (timeout_s))

#endif
