/* server: the client side of gcsd: the listener, connections, the per-client
 * input and reply buffers, and the order in which replies leave.
 *
 * Replies: a command's reply goes straight into the client's output buffer
 * when nothing is outstanding before it; otherwise it is parked in a reply
 * slot queued behind the outstanding ones, so replies leave in request order
 * even though writes complete later, when their log entry is applied.
 * Output is flushed once per loop iteration, before the loop blocks.
 */
#ifndef GCS_SERVER_H
#define GCS_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "config.h"
#include "resp.h"

typedef struct server server;
typedef struct client client;
typedef struct reply_slot reply_slot;
struct fsm;
struct rglue;
struct proxy;
struct node_health;
struct pg_wait;
struct pubsub;
typedef struct ps_client ps_client; /* pubsub.c's per-client record */

/* A reply that is not ready yet, in a client's queue of outstanding replies.
 * Owned by the queue; when the client goes away first, its slots are
 * detached (client == NULL) and freed by whoever completes them. */
struct reply_slot {
    client *client;    /* NULL once the client is gone */
    reply_slot *next;
    bool done;
    bool abort;        /* no reply: close the connection when it is due */
    bool blocking;     /* a blocking command (PG.WAIT): INFO blocked_clients */
    server *srv;
    uint64_t admitted; /* bytes counted in srv->admitted_bytes */
    /* 1 + the command_at() index whose reply this is, counted in
     * srv->command_results when the reply leaves or is dropped; 0: none. */
    unsigned stat_cmd;
    resp_buf reply;
};

enum {
    CLIENT_AUTHENTICATED = 1 << 0,
    CLIENT_CLOSE_AFTER_REPLY = 1 << 1,
    CLIENT_CLOSING = 1 << 2,
    CLIENT_READING = 1 << 5,      /* uv_read_start is active */
    CLIENT_WRITING = 1 << 6,      /* a uv_write is in flight */
    CLIENT_PENDING_FLUSH = 1 << 7,/* on the server's flush list */
    CLIENT_EOF = 1 << 9,          /* the peer sent all it will send */
    CLIENT_STOP_INPUT = 1 << 10,  /* QUIT or a protocol error: parse no more */
    CLIENT_READONLY = 1 << 12,    /* READONLY: stale reads from this member */
};

struct client {
    server *srv;
    uv_tcp_t tcp;
    uint64_t id;
    unsigned flags;
    char addr[64];          /* ip:port of the peer */
    char laddr[64];         /* ip:port of our side */
    char *name;             /* CLIENT SETNAME; NULL when unset */
    int64_t ctime_ms;       /* connected at (server_clock_ms) */
    int64_t last_cmd_ms;    /* server_clock_ms */
    const char *last_cmd;   /* static command name; NULL before the first */
    /* 1 + the command_at() index being dispatched until a reply slot takes
     * it over (see stat_cmd); 0 otherwise. */
    unsigned stat_cmd;

    /* Input. Requests are parsed in place and run as soon as parsed. */
    char *inbuf;
    size_t inlen, incap, inpos;
    resp_reader reader;

    /* Output. */
    resp_buf out;           /* replies ready to send */
    resp_buf sending;       /* bytes handed to uv_write */
    uv_write_t wreq;
    reply_slot *slots_head, *slots_tail;
    size_t n_slots;

    ps_client *ps;          /* subscriptions (pubsub.c); NULL: none */

    client *prev, *next;    /* all clients */
    client *flush_next;     /* clients with output to flush */
};

typedef struct server_stats {
    uint64_t connections_received;
    uint64_t connections_rejected;
    uint64_t commands_processed;
    uint64_t commands_failed;     /* replies that were errors */
    uint64_t net_input_bytes;
    uint64_t net_output_bytes;
    uint64_t protocol_errors;
} server_stats;

/* Room for per-command counters, indexed like command_at(). */
#define SERVER_MAX_COMMANDS 256

struct server {
    uv_loop_t *loop;
    const config *cfg;
    struct fsm *fsm;
    struct rglue *raft;
    struct proxy *proxy;     /* runs commands that need the leader */
    uint64_t origin;         /* request-id origin of this process */
    uint64_t next_request_id;
    struct node_health *node_health; /* NODE.HEARTBEAT's memory; NULL: none */
    struct pg_wait *pg_waits;        /* clients blocked in PG.WAIT; NULL: none */
    struct pubsub *pubsub;           /* subscribers (owned; server_start) */
    uv_tcp_t listener;
    uv_prepare_t before_sleep;
    uint64_t next_client_id;
    client *clients;
    size_t n_clients;
    client *flush_list;
    uint64_t admitted_bytes; /* estimated growth of writes not yet applied */
    server_stats stats;
    /* Replies per command: [i][0] ok, [i][1] error (command.c counts). */
    uint64_t command_results[SERVER_MAX_COMMANDS][2];
    int64_t start_ms;
    char run_id[41];
    bool stopping;
    bool draining;           /* server_drain: no input taken any more */
    bool listener_closing;   /* draining or closing: no new connections */
    uv_timer_t drain_timer;
    int64_t drain_until;     /* server_clock_ms */
    void (*drain_cb)(server *srv);
    int closing_handles;
    void (*close_cb)(server *srv);
    /* SHUTDOWN: stop the process as on SIGTERM (set by main). */
    void (*shutdown_cb)(server *srv);
};

/* Before server_close on a graceful stop: the listener is closed (new
 * connections are refused by the kernel) and no client is read any more, while the replies to what clients already
 * sent still come (a forwarded write is answered by the leader, a write in
 * the log is applied). @cb runs once no client waits for a reply and all
 * output is written, or after @max_ms; then call server_close. A client cut
 * off mid-request would otherwise not know whether its write was applied
 * (and a Ray head re-sending it would apply an INCRBY twice). */
void server_drain(server *srv, uint64_t max_ms, void (*cb)(server *srv));

/* Start listening on cfg->bind:cfg->port. @srv is caller-owned and must stay
 * valid until server_close's callback. */
int server_start(server *srv, uv_loop_t *loop, const config *cfg,
                 struct fsm *fsm, struct rglue *raft, char *err, size_t errlen);

/* Stop accepting, close every client; @cb fires once all handles are closed. */
void server_close(server *srv, void (*cb)(server *srv));

/* ---- for command handlers ---------------------------------------------- */

/* The buffer the reply to the command being executed goes into: the output
 * buffer when nothing is outstanding, else a completed slot at the tail. */
resp_buf *client_reply(client *c);

/* Park a slot for a reply that will come later (a write in flight); complete
 * it with client_slot_done(). */
reply_slot *client_slot_new(client *c);

/* A slot that belongs to no client, for commands the server issues itself
 * (its reply is discarded when completed). */
reply_slot *server_slot_detached(server *srv);

/* The slot's reply is in slot->reply: deliver it in order, or free the slot
 * if its client is gone. */
void client_slot_done(reply_slot *slot);

/* Complete @slot without a reply: once the replies before it are written,
 * the connection is closed and later replies are dropped. For an outcome
 * that cannot be told truthfully: to a Redis client a closed connection
 * means "unknown", an error reply means "not applied". */
void client_slot_abort(reply_slot *slot);

/* Close after the pending replies are written (QUIT, protocol errors). */
void client_close_after_reply(client *c);

/* Close @c now (pending output is dropped): a subscriber over its output
 * limit. Its memory is freed once libuv closed the handle. */
void client_kill(client *c);

/* Wall clock in Unix milliseconds. */
int64_t server_now_ms(void);

/* Monotonic milliseconds: the loop's time, read once per loop iteration, so
 * it costs no system call. For ages and deadlines, which a step of the wall
 * clock must not stretch or cut short. */
int64_t server_clock_ms(const server *srv);

#endif /* GCS_SERVER_H */
