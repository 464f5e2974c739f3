/* node_health: the leader's watch over node heartbeats.
 *
 * NODE.HEARTBEAT records, in the leader's memory only, when each node was
 * last heard from. Every period the leader looks at the ALIVE nodes in the
 * state: a node not heard from for failure_threshold periods is declared
 * dead by proposing NODE.DEAD <id> "health check failed" through the log
 * (the only part of this that is replicated). A member that becomes leader
 * knows no heartbeats yet, so it gives every ALIVE node a full grace period
 * (threshold x period) from that moment; so does a node newly seen ALIVE.
 * Followers keep nothing and declare nothing. Loop thread only. */
#ifndef GCS_NODE_HEALTH_H
#define GCS_NODE_HEALTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

struct fsm;
struct rglue;

typedef struct node_health node_health;

typedef struct node_health_config {
    uint64_t period_ms;         /* how often to look, and a heartbeat's unit */
    unsigned failure_threshold; /* periods without a heartbeat before death */
} node_health_config;

/* Start watching on @loop with the state @f and the member @raft (both must
 * outlive the watcher). Returns 0 or a libuv error (then run the loop once
 * more: a handle may be closing). */
int node_health_start(uv_loop_t *loop, struct fsm *f, struct rglue *raft,
                      const node_health_config *cfg, node_health **out);

/* Whether this member is the leader now (the only one that may take
 * heartbeats). */
bool node_health_is_leader(node_health *h);

/* This member's raft role changed (RGLUE_ROLE_*): gaining leadership starts
 * every node's grace period afresh; losing it forgets all heartbeats. */
void node_health_role_changed(node_health *h, int role);

/* Node @id (@len bytes, copied) was heard from now. Returns 0, or -1 when
 * memory is short. */
int node_health_beat(node_health *h, const void *id, size_t len);

/* Run one check now, as the timer does (for tests). */
void node_health_check(node_health *h);

/* Nodes tracked, and NODE.DEAD proposals made, so far. */
size_t node_health_tracked(const node_health *h);
uint64_t node_health_declared(const node_health *h);

/* Stop; memory is freed once the loop has run the timer's close callback. */
void node_health_close(node_health *h);

#endif /* GCS_NODE_HEALTH_H */
