/* pg_wait: clients blocked in PG.WAIT, each parked in a reply slot until its
 * placement group becomes CREATED (+OK) or REMOVED (an error), or its
 * timeout passes (nil). Completed from the state machine's change events
 * (fsm.on_events: the applied change, on whichever member the client is
 * on) or from a timer. Loop thread only. */
#ifndef GCS_PG_WAIT_H
#define GCS_PG_WAIT_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "fsm.h"
#include "server.h"

#define PG_WAIT_ERR_REMOVED "ERR placement group was removed"

typedef struct pg_wait pg_wait;

/* Create the registry on @loop. Returns 0 or a libuv error. */
int pg_wait_create(uv_loop_t *loop, pg_wait **out);

/* Park reply slot @slot (a blocking one of the waiting client's) until group
 * @id (@len bytes, copied) is CREATED or REMOVED, or @timeout_ms pass (0: no
 * limit); the registry then answers it and calls client_slot_done. Returns
 * 0, or -1 (out of memory, or closing) with nothing parked: the caller still
 * answers @slot. */
int pg_wait_add(pg_wait *w, reply_slot *slot, const void *id, size_t len,
                uint64_t timeout_ms);

/* The fsm_events_fn to install as fsm.on_events, with the registry as ctx. */
void pg_wait_on_events(void *ctx, const fsm_event *ev, size_t n);

/* Clients waiting right now. */
size_t pg_wait_count(const pg_wait *w);

/* Close: every waiter gets an error; memory is freed once the loop has run
 * the handles' close callbacks. Call after the server closed its clients
 * and after removing pg_wait_on_events from the fsm. */
void pg_wait_close(pg_wait *w);

#endif /* GCS_PG_WAIT_H */
