/* proxy: runs the commands that need the leader, wherever they arrive.
 *
 * On the leader a write is proposed to the log and a read waits for a
 * barrier. On a follower the command is forwarded over a small pool of
 * internal connections to the leader's client port (as GCS.FWD carrying the
 * encoded Command) and the reply relayed into the client's reply slot. One
 * client's commands always use the same pooled connection, so the leader
 * executes them in the client's order.
 *
 * While no leader is known, commands wait in one FIFO, up to
 * --leader-wait-ms, then get -TRYAGAIN. A write whose outcome is unknown
 * (leadership lost, connection to the leader lost) is retried under its
 * request id, which the state machine de-duplicates; a read is simply
 * retried. With --redirect, followers answer -MOVED 0 <leader> instead.
 */
#ifndef GCS_PROXY_H
#define GCS_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server.h"

typedef struct proxy proxy;

enum {
    PROXY_WRITE = 1,  /* proposed on the leader */
    PROXY_READ = 2,   /* read on the leader after a barrier */
    PROXY_LEADER = 3, /* local command that must run on the leader */
};

enum {
    /* Forwarded to us by another member: run it here if we lead, else
     * answer -TRYAGAIN (the forwarding member retries). */
    PROXY_LOCAL_ONLY = 1 << 0,
    /* Safe to retry after an unknown outcome: a read, or a write with a
     * request id. */
    PROXY_RETRY_SAFE = 1 << 1,
    /* Answer -MOVED instead of forwarding (--redirect). */
    PROXY_REDIRECT = 1 << 2,
    /* Changes nothing (a read, even one that travels through the log):
     * an unknown outcome is just a failed attempt. */
    PROXY_IDEMPOTENT = 1 << 3,
};

/* Create the proxy on @srv's loop (srv->raft and srv->fsm are used once
 * commands arrive). *out is owned by the caller: proxy_close() it. */
int proxy_start(server *srv, proxy **out);

/* Fail every waiting command with -TRYAGAIN, close the pooled connections
 * and free @p once they are closed. */
void proxy_close(proxy *p);

/* @block_ms for a blocking command without a time limit. */
#define PROXY_BLOCK_FOREVER UINT64_MAX

/* Take over the command for @slot. @data (an encoded Command, malloc'd) is
 * owned by the proxy from now on. @pin keeps one client's commands on one
 * pooled connection. @block_ms > 0 marks a command that may block that
 * long on the leader (PG.WAIT), or PROXY_BLOCK_FOREVER: forwarded on a
 * connection of its own, so it holds up no other reply. The slot is
 * completed later, or inside this call. */
void proxy_submit(proxy *p, reply_slot *slot, int kind, unsigned flags,
                  uint64_t pin, uint64_t block_ms, void *data, size_t len);

/* The raft role changed: route waiting commands again. */
void proxy_kick(proxy *p);

/* Counters for INFO. */
typedef struct proxy_stats {
    uint64_t forwarded;  /* commands sent to the leader */
    uint64_t retried;    /* attempts repeated after an unknown outcome */
    uint64_t redirected; /* -MOVED replies */
    uint64_t timed_out;  /* -TRYAGAIN after waiting for a leader */
    size_t waiting;      /* commands waiting for a leader now */
} proxy_stats;
void proxy_get_stats(proxy *p, proxy_stats *st);

#endif /* GCS_PROXY_H */
