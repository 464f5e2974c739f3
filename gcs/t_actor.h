/* t_actor: the actor table (ACTOR.* commands) and what other tables'
 * changes do to actors. Every function runs inside apply, on @op. */
#ifndef GCS_T_ACTOR_H
#define GCS_T_ACTOR_H

#include "ray.pb-c.h"
#include "table.h"

/* Kill an actor queued by an owner's death (table_op_finish calls it). */
int actor_run_kill(table_op *op, const table_kill *k);

/* Node @node_id died with @info: actors placed there restart if they may,
 * else die (NODE_DIED); non-detached actors owned by workers there die
 * (OWNER_DIED). */
int actor_on_node_dead(table_op *op, storage_slice node_id,
                       const Ray__Rpc__NodeDeathInfo *info);

/* Job @job_id finished: its non-detached actors die (OWNER_DIED). */
int actor_on_job_finished(table_op *op, storage_slice job_id);

/* Node @node_id is drained for preemption: the actors placed there are
 * marked preempted, so their restart after the node dies is not counted. */
int actor_mark_preempted(table_op *op, storage_slice node_id);

/* Evict dead actor @id (table.c's dead FIFO): its record and index entries
 * go, with a DELETE event, as if it had never been registered. An actor
 * that is not DEAD is left alone. */
int actor_forget(table_op *op, storage_slice id);

#endif /* GCS_T_ACTOR_H */
