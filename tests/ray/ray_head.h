/* ray_head: a client that behaves toward its Redis as a Ray head does, to
 * find every point where a real head would crash or mis-step against gcsd.
 *
 * Written from the facts in shared/reference/ray-gcs-contract.md §1 (Ray's
 * RedisContext, RedisStoreClient, RedisGetKeySync and `ray start`'s session
 * name check), not from Ray's code:
 *   - connect: TCP connect retried redis_db_connect_retries (120) times every
 *     redis_db_connect_wait_milliseconds (500) on a refused or failed
 *     connect; then, on the sync context, AUTH (when a password is set),
 *     INFO SENTINEL (must be an empty bulk string), INFO CLUSTER (k:v lines),
 *     DEL DUMMY (an integer, or -MOVED slot host:port, followed); any other
 *     error reply or a lost connection during the handshake is fatal; then
 *     the async context, which sends AUTH without reading its reply;
 *   - data commands: pipelined on the async connection, in order, each
 *     retried after an error reply with backoff 100, 200, 400, 800, 1000 ms,
 *     num_redis_request_retries (5) times, then fatal; a reply of the wrong
 *     type is fatal (RAY_CHECK); there is no per-request timeout;
 *   - a lost connection is fatal (Ray up to 2025), or, with `reconnect`
 *     (the in-place reconnect of newer Ray), the head connects again and
 *     re-sends what was pending as new requests;
 *   - RedisGetKeySync: the full handshake, unbounded, then HGET of the
 *     session name with 1 s to answer; no answer reads as "not stored", and
 *     `ray start` then picks a new session name, which a restarted head
 *     finds does not match the stored one: `ray start` fails.
 *
 * Every crash point is recorded (ray_head.fatal, with the first reason) and
 * the head stops there, as a real one would; mis-steps that are not crashes
 * (a job id skipped, a read that misses an acknowledged write, a session
 * name check that would fail) are recorded in ray_head.missteps. */
#ifndef GCS_TEST_RAY_HEAD_H
#define GCS_TEST_RAY_HEAD_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include <hiredis/hiredis.h>

#define RAY_HEAD_ACTORS 64  /* actor rows it keeps rewriting */
#define RAY_HEAD_NODES 8

typedef struct ray_head_opts {
    const char *host;      /* where the head's RAY_REDIS_ADDRESS points */
    int port;
    const char *password;  /* NULL or "": no AUTH */
    const char *ns;        /* external storage namespace */
    bool reconnect;        /* newer Ray: reconnect in place on a lost link */
} ray_head_opts;

typedef struct ray_head {
    ray_head_opts o;
    /* Owned by the head's thread while it runs; read them after
     * ray_head_stop(), except the atomics. */
    atomic_int fatal;          /* crash points (the head stops at the first) */
    char fatal_why[512];
    atomic_int missteps;
    char misstep_why[512];
    atomic_llong batches;      /* pipelined batches fully answered */
    atomic_int connected;      /* handshake done, data flowing */
    atomic_int stop;
    long long error_replies;   /* error replies retried */
    long long reconnects;
    long long resent;          /* requests re-sent after a reconnect */
    long long max_batch_ms;    /* the longest a batch was held */
    long long jobs;            /* job ids it got (INCRBY) */
    long long last_job;
    char session[64];          /* the session name `ray start` settled on */
    char actor_value[RAY_HEAD_ACTORS][32]; /* last acknowledged values */
    char node_value[RAY_HEAD_NODES][32];
    redisContext *async;       /* the data connection */
    pthread_t thread;
} ray_head;

/* Start a head on its own thread: `ray start`'s session-name check, the GCS's
 * connect and table load, then a steady pipelined load of Ray-shaped writes
 * and reads until ray_head_stop(). @h is zeroed here; @o's strings must
 * outlive the head. @session: the name this head would create when none is
 * stored. */
void ray_head_start(ray_head *h, const ray_head_opts *o, const char *session);

/* Stop the head's thread and close its connections. */
void ray_head_stop(ray_head *h);

/* Wait until @h has answered @more batches beyond @base or recorded a crash
 * point; false after @timeout_ms. */
bool ray_head_wait_batches(ray_head *h, long long base, long long more,
                           int timeout_ms);

/* Read back, with a fresh plain client to @o, everything @h had acknowledged:
 * each actor and node row holds its last acknowledged value, the job counter
 * equals the job ids handed out. Returns the number of differences and
 * describes the first in @why. */
int ray_head_verify(const ray_head *h, char *why, size_t len);

/* RedisGetKeySync as `ray start` runs it: handshake, then HGET of the
 * session name, 1 s to answer. Returns 1 with the value in @out, 0 when the
 * 1 s passed or nothing is stored (Ray cannot tell them apart), -1 when the
 * handshake hit a crash point (reason in @why). @took_ms: the HGET's wait. */
int ray_get_key_sync(const ray_head_opts *o, char *out, size_t len,
                     long long *took_ms, char *why, size_t why_len);

#endif
