/* Job table: JOB.NEXTID JOB.ADD JOB.FINISH JOB.GET JOB.LIST.
 *
 * Job ids come from a replicated counter starting at 1, as Ray's
 * GetNextJobID (INCRBY JobCounter) does, and are replied as Ray's 4-byte
 * JobID (JobID::FromInt: the number, little-endian). A finished job stays in
 * the table, dead, with its end time; finishing it kills its non-detached
 * actors and ends the lifetime of the placement groups it created. */
#include <string.h>

#include "command.h"
#include "ray.pb-c.h"
#include "t_actor.h"
#include "t_job.h"
#include "t_pg.h"
#include "table.h"

#define JOB_ID_NIL UINT32_MAX /* JobID::Nil(): all bytes 0xff */

static storage_slice jobKey(const Ray__Rpc__JobTableData *job)
{
    return (storage_slice){job->job_id.data, job->job_id.len};
}

/* The index entries a job record has. */
static int jobIndexes(table_op *op, const Ray__Rpc__JobTableData *job,
                      table_index_set *s)
{
    const Ray__Rpc__Address *d = job->driver_address;
    if (job->is_dead || d == NULL || d->node_id.len == 0) return 0;
    storage_slice key =
        table_ref_key(&op->mem, (storage_slice){d->node_id.data,
                                                d->node_id.len},
                      jobKey(job));
    return table_index_add(&op->mem, s, INDEX_JOB_BY_DRIVER_NODE, key,
                           (storage_slice){"", 0});
}

/* Mark @job dead and run the cascade. */
static int jobFinish(table_op *op, Ray__Rpc__JobTableData *job)
{
    table_index_set before = {0}, after = {0};
    int rc = jobIndexes(op, job, &before);
    if (rc != 0) return rc;
    job->is_dead = 1;
    job->end_time = op->now_ms;
    job->timestamp = (int64_t)op->now_ms;
    if ((rc = jobIndexes(op, job, &after)) != 0 ||
        (rc = table_index_update(op, &before, &after)) != 0 ||
        (rc = table_save(op, TABLE_JOB, jobKey(job), &job->base)) != 0) {
        return rc;
    }
    if ((rc = actor_on_job_finished(op, jobKey(job))) != 0) return rc;
    return pg_on_job_finished(op, jobKey(job));
}

int job_on_node_dead(table_op *op, storage_slice node_id)
{
    storage_slice *ids;
    size_t n;
    int rc = table_collect_refs(op->txn, &op->mem, INDEX_JOB_BY_DRIVER_NODE,
                                node_id, &ids, &n);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        Ray__Rpc__JobTableData *job;
        rc = table_load(op->txn, &op->mem, TABLE_JOB, ids[i],
                        &ray__rpc__job_table_data__descriptor, (void **)&job);
        if (rc == 0 && job != NULL && !job->is_dead) rc = jobFinish(op, job);
    }
    return rc;
}

/* ---- writes ------------------------------------------------------------ */

static int nextIdApply(apply_ctx *a, size_t argc, const resp_arg *argv,
                       resp_buf *reply)
{
    uint64_t last;
    int rc = storage_meta_get(a->txn, TABLE_META_JOB_COUNTER, &last);
    if (rc != 0) return rc;
    if (last + 1 >= JOB_ID_NIL) {
        resp_add_error(reply, "ERR job ids are exhausted");
        return 0;
    }
    rc = storage_meta_set(a->txn, TABLE_META_JOB_COUNTER, last + 1);
    if (rc != 0) return rc;
    uint32_t id = (uint32_t)(last + 1);
    uint8_t le[JOB_ID_LEN] = {(uint8_t)id, (uint8_t)(id >> 8),
                              (uint8_t)(id >> 16), (uint8_t)(id >> 24)};
    resp_add_bulk(reply, le, sizeof le);
    return 0;
}

/* Decode and validate JOB.ADD's record. NULL after replying the error. */
static Ray__Rpc__JobTableData *jobArg(arena *mem, const resp_arg *arg,
                                      resp_buf *out)
{
    Ray__Rpc__JobTableData *job =
        table_decode_arg(mem, &ray__rpc__job_table_data__descriptor, arg);
    if (job == NULL) {
        resp_add_error(out, "ERR invalid JobTableData record");
        return NULL;
    }
    if (job->job_id.len != JOB_ID_LEN) {
        resp_add_errorf(out, "ERR invalid job id: expected %d bytes, got %zu",
                        JOB_ID_LEN, job->job_id.len);
        return NULL;
    }
    if (job->driver_address != NULL &&
        !table_opt_id_ok(job->driver_address->node_id, NODE_ID_LEN)) {
        resp_add_errorf(out, "ERR invalid driver node id: expected %d bytes",
                        NODE_ID_LEN);
        return NULL;
    }
    return job;
}

static int addCheck(size_t argc, const resp_arg *argv, resp_buf *err)
{
    arena mem;
    arena_init(&mem);
    int rc = jobArg(&mem, &argv[1], err) != NULL ? 0 : -1;
    arena_free(&mem);
    return rc;
}

static int jobAdd(table_op *op, size_t argc, const resp_arg *argv,
                  resp_buf *reply)
{
    Ray__Rpc__JobTableData *job = jobArg(&op->mem, &argv[1], reply);
    if (job == NULL) return 0;
    Ray__Rpc__JobTableData *cur;
    int rc = table_load(op->txn, &op->mem, TABLE_JOB, jobKey(job),
                        &ray__rpc__job_table_data__descriptor, (void **)&cur);
    if (rc != 0) return rc;
    if (cur != NULL) {
        /* A retried add is a no-op; a finished job does not come back. */
        if (cur->is_dead) resp_add_error(reply, "ERR job already finished");
        else resp_add_status(reply, "OK");
        return 0;
    }
    job->is_dead = 0;
    job->end_time = 0;
    if (job->start_time == 0) job->start_time = op->now_ms;
    job->timestamp = (int64_t)op->now_ms;
    table_index_set idx = {0};
    if ((rc = jobIndexes(op, job, &idx)) != 0 ||
        (rc = table_index_update(op, NULL, &idx)) != 0 ||
        (rc = table_save(op, TABLE_JOB, jobKey(job), &job->base)) != 0) {
        return rc;
    }
    resp_add_status(reply, "OK");
    return 0;
}

static int addApply(apply_ctx *a, size_t argc, const resp_arg *argv,
                    resp_buf *reply)
{
    return table_run(a, argc, argv, reply, jobAdd);
}

static int finishCheck(size_t argc, const resp_arg *argv, resp_buf *err)
{
    return table_id_arg_or_reply(&argv[1], JOB_ID_LEN, "job", err) ? 0 : -1;
}

static int jobFinishCmd(table_op *op, size_t argc, const resp_arg *argv,
                        resp_buf *reply)
{
    if (!table_id_arg_or_reply(&argv[1], JOB_ID_LEN, "job", reply)) return 0;
    Ray__Rpc__JobTableData *job;
    int rc = table_load(op->txn, &op->mem, TABLE_JOB, arg_slice(&argv[1]),
                        &ray__rpc__job_table_data__descriptor, (void **)&job);
    if (rc != 0) return rc;
    if (job == NULL) {
        resp_add_error(reply, "ERR no such job");
        return 0;
    }
    if (job->is_dead) {
        resp_add_error(reply, "ERR job already finished");
        return 0;
    }
    if ((rc = jobFinish(op, job)) != 0) return rc;
    resp_add_status(reply, "OK");
    return 0;
}

static int finishApply(apply_ctx *a, size_t argc, const resp_arg *argv,
                       resp_buf *reply)
{
    return table_run(a, argc, argv, reply, jobFinishCmd);
}

/* ---- reads ------------------------------------------------------------- */

static void getRead(storage_txn *t, size_t argc, const resp_arg *argv,
                    resp_buf *out)
{
    table_reply_record(t, TABLE_JOB, arg_slice(&argv[1]), out);
}

static void listRead(storage_txn *t, size_t argc, const resp_arg *argv,
                     resp_buf *out)
{
    table_reply_list(t, TABLE_JOB, argc, argv, out);
}

const command job_commands[] = {
    {"job.nextid", 1, CMD_WRITE | CMD_FAST, NULL, NULL, nextIdApply, 0, 0, 0,
     "job", "Allocates the next job id (4 bytes, little-endian)."},
    {"job.add", 2, CMD_WRITE | CMD_DENYOOM | CMD_FAST, NULL, addCheck,
     addApply, 0, 0, 0, "job",
     "Adds a job from a serialized JobTableData record."},
    {"job.finish", 2, CMD_WRITE | CMD_FAST, NULL, finishCheck, finishApply,
     0, 0, 0, "job",
     "Marks a job finished; its non-detached actors die."},
    {"job.get", 2, CMD_READ | CMD_FAST, NULL, NULL, NULL, 0, 0, 0, "job",
     "Returns a job's JobTableData record.", .read = getRead},
    {"job.list", -1, CMD_READ, NULL, NULL, NULL, 0, 0, 0, "job",
     "Lists jobs a page at a time: [CURSOR c] [COUNT n].",
     .read = listRead},
};
const size_t job_commands_count = sizeof job_commands / sizeof job_commands[0];
