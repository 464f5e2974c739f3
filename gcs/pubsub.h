/* pubsub: Redis pub/sub (SUBSCRIBE, PSUBSCRIBE, PUBLISH, PUBSUB, ...) and
 * the change channels, on the member the subscriber is connected to.
 *
 * PUBLISH goes through the raft log like a write: every member applies it
 * and delivers the message to its own subscribers, in log order, from
 * fsm.on_events (pubsub_on_events). Change events of the state machine are
 * published the same way on these channels (payload: gcs.ChangeEvent):
 *   __gcs__:table:<TABLE>   every change of a table (NODE, ACTOR, JOB,
 *                           PLACEMENT_GROUP, KEYSPACE)
 *   __keyspace@0__:<key>    every change of keyspace key <key>
 *
 * Ownership: the registry is owned by the server (server_start creates it,
 * server_close frees it after closing every client). Each subscribed client
 * has a private record (client.ps) freed when it unsubscribes from
 * everything or closes. Channel names and patterns are copied.
 *
 * Slow consumers: a subscriber whose unsent output passes
 * --pubsub-output-limit is disconnected (logged), like Redis's
 * client-output-buffer-limit for pub/sub clients; nobody else waits for it.
 *
 * Loop thread only. */
#ifndef GCS_PUBSUB_H
#define GCS_PUBSUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "fsm.h"
#include "server.h"

typedef struct pubsub pubsub;

/* Channel prefixes of the change channels. */
#define PUBSUB_TABLE_PREFIX "__gcs__:table:"
#define PUBSUB_KEYSPACE_PREFIX "__keyspace@0__:"

/* Create the registry for @srv (which must outlive it). Returns 0 or -1. */
int pubsub_create(server *srv, pubsub **out);

/* Free the registry; every client must be gone (server_close). */
void pubsub_close(pubsub *ps);

/* fsm.on_events target (ctx: the registry): deliver PUBLISHed messages and
 * change events to local subscribers. */
void pubsub_on_events(void *ctx, const fsm_event *ev, size_t n);

/* fsm.count_receivers target: local subscribers a PUBLISH on @channel
 * reaches (channel subscribers plus matching patterns). */
size_t pubsub_count_receivers(void *ctx, const void *channel, size_t len);

/* @c is in subscribed mode: only (P)SUBSCRIBE, (P)UNSUBSCRIBE, PING, QUIT
 * and RESET are allowed. */
bool pubsub_client_subscribed(const client *c);

/* @c is closing: forget its subscriptions (server.c calls this). */
void pubsub_client_gone(pubsub *ps, client *c);

/* RESET: leave subscribed mode. */
void pubsub_client_reset(pubsub *ps, client *c);

/* Hooks of the server's before-sleep handler: work owed to subscribers
 * before output is flushed, and after. */
void pubsub_before_flush(pubsub *ps);
void pubsub_after_flush(pubsub *ps);

/* Numbers for INFO and /metrics: gauges of this moment, and counters
 * since the start (or CONFIG RESETSTAT). */
typedef struct pubsub_stats {
    size_t channels;      /* channels with a subscriber */
    size_t patterns;      /* patterns with a subscriber */
    size_t subscribers;   /* clients subscribed to a channel or pattern */
    size_t watchers;      /* GCS.WATCH connections */
    uint64_t messages_published;  /* PUBLISHed messages applied here */
    uint64_t messages_delivered;  /* message/pmessage pushes queued */
    uint64_t watch_events_delivered; /* change events queued to watchers */
    uint64_t output_limit_disconnections; /* --pubsub-output-limit */
} pubsub_stats;

void pubsub_get_stats(const pubsub *ps, pubsub_stats *out);
void pubsub_reset_stats(pubsub *ps);

#endif /* GCS_PUBSUB_H */
