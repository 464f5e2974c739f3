/* t_pg: the placement-group table (PG.* commands), bundle placement against
 * node resources, and what other tables' changes do to groups. Every
 * function runs inside apply, on @op. */
#ifndef GCS_T_PG_H
#define GCS_T_PG_H

#include "table.h"

/* Node @node_id died (its record and committed resources are already gone):
 * its bundles are unplaced, CREATED groups become RESCHEDULING, and each is
 * placed again where it fits (CREATED) or queued. */
int pg_on_node_dead(table_op *op, storage_slice node_id);

/* The creator job / creator actor died: groups whose lifetime is over (not
 * detached, creator job and creator actor both dead) are removed. */
int pg_on_job_finished(table_op *op, storage_slice job_id);
int pg_on_actor_dead(table_op *op, storage_slice actor_id);

/* Free a view of the alive nodes (table_op.nodes). NULL is a no-op. */
void pg_nodes_free(struct pg_nodes *nodes);

/* Try to place every queued group, in queue order (table_op_finish calls
 * it when op->retry_pending is set). */
int pg_retry_pending(table_op *op);

#endif /* GCS_T_PG_H */
