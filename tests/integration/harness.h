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

/* The same, naming @file:@line (the caller) and the time it waited in the
 * failure message. harness_cmd() calls written in a test use it. */
redisReply *harness_cmd_at(const char *file, int line, redisContext *c,
                           const char *fmt, ...);
#define harness_cmd(c, ...)                                                  \
    harness_cmd_at(__FILE__, __LINE__, (c), __VA_ARGS__)

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

/* ---- clusters: several gcsd members forming one raft group ------------- */

#define CLUSTER_MAX 7

/* A raft group of gcsd processes on 127.0.0.1. Member i has raft id i + 1.
 * Only the test's main thread may call cluster_* functions (they use
 * cached connections and may fail the test). */
typedef struct gcsd_cluster {
    int n;                        /* members prepared (started or not) */
    gcsd_proc m[CLUSTER_MAX];
    bool stopped[CLUSTER_MAX];    /* SIGSTOPped (not answering) */
    char peers[512];              /* the --peers list of the initial members */
    char flags[256];              /* extra flags of every member */
    redisContext *ctl[CLUSTER_MAX]; /* cached status connections */
    bool clean;                   /* cluster_stop_all succeeded */
    char last_err[256];           /* why the last status query failed */
} gcsd_cluster;

/* Start @n members (fresh ports and dirs; --id, --peers from their raft ports,
 * --election-timeout 1000 --heartbeat-timeout 100, then @flags) and wait
 * until each answers PING. Does not wait for a leader. */
void cluster_start(gcsd_cluster *cl, int n, const char *flags);

/* Prepare (not start) one more member, with id cl->n + 1, and extra flags
 * @flags appended to the cluster's flags (e.g. "--join 127.0.0.1:PORT"; no
 * --peers). Returns its index; start it with cluster_restart(). */
int cluster_add_member(gcsd_cluster *cl, const char *flags);

/* Member i is running and not SIGSTOPped. */
bool cluster_running(const gcsd_cluster *cl, int i);

/* Raft id of member i (i + 1), and the index of raft id @id (-1: none). */
unsigned cluster_id(const gcsd_cluster *cl, int i);
int cluster_index_of(const gcsd_cluster *cl, unsigned long long id);

/* Index of the leader that every running member agrees on: its RAFT.STATUS
 * role is "leader" and every running member's leader_id names it. Polls
 * until @timeout_ms, then fails the test (with each member's view). */
int cluster_wait_leader(gcsd_cluster *cl, int timeout_ms);

/* Like cluster_wait_leader, but returns -1 instead of failing. */
int cluster_find_leader(gcsd_cluster *cl, int timeout_ms);

/* Send @sig to member i. SIGKILL, SIGTERM, SIGINT: wait for the exit (see
 * harness_stop; SIGTERM must exit 0). SIGSTOP/SIGCONT: mark the member
 * (un)stopped. Returns the exit status (or 0). */
int cluster_kill(gcsd_cluster *cl, int i, int sig);

/* Start member i again with the same flags, data dir and ports. */
void cluster_restart(gcsd_cluster *cl, int i);

/* SIGCONT stopped members, then SIGTERM them one at a time, followers first
 * and the leader last, each after the one before exited; each must exit 0
 * within 20 s. Marks the cluster clean. */
void cluster_stop_all(gcsd_cluster *cl);

/* The same, but SIGTERM goes to every member at once (a whole-cluster
 * shutdown), then each must exit 0 within 20 s. */
void cluster_stop_all_at_once(gcsd_cluster *cl);

/* Kill what is left, print the tail of every member's log when the cluster
 * was not stopped cleanly (the test failed), and remove the data dirs (kept
 * when GCSD_KEEP_DIRS is set). Safe to call twice and on a zeroed cluster. */
void cluster_cleanup(gcsd_cluster *cl);

/* Print the last @lines lines of every member's log to stderr. */
void cluster_dump_logs(const gcsd_cluster *cl, int lines);

/* Connect to member i (fails the test on error). */
redisContext *cluster_connect(const gcsd_cluster *cl, int i);

/* RAFT.STATUS of member i as hiredis returned it (a flat field/value
 * array), or NULL (reason in cl->last_err) when it does not answer within
 * 2 s or replies an error. Free with freeReplyObject. */
redisReply *cluster_status(gcsd_cluster *cl, int i);

/* Field @name of a flat field/value array reply (NULL: absent). */
const redisReply *harness_pair_get(const redisReply *pairs, const char *name);

/* Field @field of member i's RAFT.STATUS as a string (integers printed) into
 * @out. False when the member does not answer or has no such field. */
bool cluster_status_field(gcsd_cluster *cl, int i, const char *field,
                          char *out, size_t len);

/* Integer field of RAFT.STATUS; -1 when unavailable. */
long long cluster_status_int(gcsd_cluster *cl, int i, const char *field);

/* Wait until every running member's applied_index is >= @index (fails the
 * test after @timeout_ms, listing each member's applied index). */
void cluster_wait_applied(gcsd_cluster *cl, long long index, int timeout_ms);

/* Wait until member i's RAFT.STATUS role is @role; fails after @timeout_ms. */
void cluster_wait_role(gcsd_cluster *cl, int i, const char *role,
                       int timeout_ms);

/* Field @field of `INFO @section` on member i into @out (false: absent or no
 * answer). */
bool cluster_info_field(gcsd_cluster *cl, int i, const char *section,
                        const char *field, char *out, size_t len);

/* A reply is the "no leader now, try again" refusal: an error starting with
 * TRYAGAIN or CLUSTERDOWN. */
bool harness_is_retry_error(const redisReply *r);

/* `gcsd --help` mentions @flag (e.g. "--leader-wait-ms"). */
bool harness_gcsd_has_flag(const char *flag);

/* Sleep @ms between two polls (never as synchronisation). */
void harness_poll_pause(int ms);

#endif
