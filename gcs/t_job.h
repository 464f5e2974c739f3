/* t_job: the job table (JOB.* commands) and what other tables' changes do to
 * jobs. Runs inside apply, on @op. */
#ifndef GCS_T_JOB_H
#define GCS_T_JOB_H

#include "table.h"

/* Node @node_id died: jobs whose driver ran there finish, with the same
 * cascade as JOB.FINISH. */
int job_on_node_dead(table_op *op, storage_slice node_id);

#endif /* GCS_T_JOB_H */
