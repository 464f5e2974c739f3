/* cluster_format: the leader raises the cluster's state-machine format
 * (fsm.h, "state-machine formats") once every member of the raft
 * configuration applies it.
 *
 * While it leads and the cluster format is below what this binary applies,
 * the leader asks every other member of the configuration (voters and
 * non-voters, at the client address each announced) for GCS.VERSION, every
 * RAISE_PERIOD_MS, from the threadpool. A member that does not answer keeps
 * the format where it is; one that does not know GCS.VERSION (a release from
 * before formats) applies format 1. When all answer, the leader proposes
 * GCS.CLUSTER.FORMAT with the lowest of their newest formats, if that is
 * above the current one. Like etcd's cluster version, the raise is
 * automatic: once every member runs the new release, rolling back below it
 * is no longer possible (docs/kubernetes.md, "Rolling upgrades"). */
#ifndef GCS_CLUSTER_FORMAT_H
#define GCS_CLUSTER_FORMAT_H

#include <uv.h>

#include "server.h"

typedef struct format_raiser format_raiser;

/* Start the periodic check on @loop for the member served by @srv (its
 * raft, fsm and config must outlive the raiser). 0, or -1 out of memory. */
int format_raiser_start(uv_loop_t *loop, server *srv, format_raiser **out);

/* Stop it. The memory is freed once its timer is closed and a probe in the
 * threadpool, if any, has come back: keep running the loop. */
void format_raiser_close(format_raiser *fr);

#endif
