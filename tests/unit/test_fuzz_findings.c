/* Regression tests for what fuzzing found (fuzz/, docs/architecture.md
 * "Fuzzing"); each input that found it is also in fuzz/corpus/<target>/,
 * which the replay_* tests run. */
#include <math.h>

#include "ctl_record.h"
#include "http.h"
#include "storage.h"
#include "table.h"
#include "table_env.h"

TestSuite(fuzz_findings, .fini = te_pool_free, .timeout = 120);

#define OKR "+OK\r\n"
enum { PG_PENDING = 0 };

/* fuzz_entry (crash_time_ms_overflow_pg_create): a log entry's leader time
 * near INT64_MAX overflowed PG.CREATE's conversion to nanoseconds. Apply
 * now clamps the time to [0, FSM_MAX_TIME_MS]. */
Test(fuzz_findings, entry_time_is_clamped)
{
    te_env e;
    te_open(&e);
    e.time_ms = INT64_MAX - 10; /* te_run adds 10 */
    te_expect(RUN(&e, S("PG.CREATE"),
                  te_pg((te_pg_spec){.k = 1, .name = "late",
                                     .bundles = "CPU=1"})),
              OKR);
    e.time_ms = INT64_MIN;
    te_expect(RUN(&e, S("PG.CREATE"),
                  te_pg((te_pg_spec){.k = 2, .name = "early",
                                     .bundles = "CPU=1"})),
              OKR);
    e.time_ms = 0;
    Ray__Rpc__PlacementGroupTableData *g = te_get_pg(&e, te_pg_id(1, 0));
    cr_assert_eq(g->placement_group_creation_timestamp_ms, FSM_MAX_TIME_MS);
    cr_assert_eq(g->stats->creation_request_received_ns,
                 FSM_MAX_TIME_MS * 1000000);
    protobuf_c_message_free_unpacked(&g->base, NULL);
    g = te_get_pg(&e, te_pg_id(2, 0));
    cr_assert_eq(g->placement_group_creation_timestamp_ms, 0);
    cr_assert_eq(g->stats->creation_request_received_ns, 0);
    protobuf_c_message_free_unpacked(&g->base, NULL);
    te_close(&e);
}

static int countEvent(void *arg, uint64_t revision, storage_slice event)
{
    (void)revision;
    (void)event;
    ++*(size_t *)arg;
    return 0;
}

/* fuzz_snapshot (timeout_changelog_gap): a restored state whose changelog
 * bounds leave a gap of 2^62 revisions made the next apply's trim walk it
 * one revision at a time. The trim now jumps to the next record kept. */
Test(fuzz_findings, changelog_trim_jumps_a_gap)
{
    te_env e;
    te_open(&e);
    te_expect(RUN(&e, S("SET"), S("a"), S("1")), OKR);
    te_expect(RUN(&e, S("SET"), S("b"), S("2")), OKR);
    /* Damage the state as a crafted snapshot could: the revision counter
     * far past the changelog's oldest record. */
    uint64_t far = UINT64_C(1) << 62;
    storage_txn *t;
    cr_assert_eq(storage_begin(e.f.store, true, &t), 0);
    cr_assert_eq(storage_meta_set(t, FSM_META_REVISION, far), 0);
    cr_assert_eq(storage_commit(t), 0);
    e.f.revision = far; /* what a restore reads back */

    /* Finishes (the suite's timeout would stop the old loop), and keeps
     * only what the window allows: the new event. */
    te_expect(RUN(&e, S("SET"), S("c"), S("3")), OKR);
    t = fsm_read_txn(&e.f);
    cr_assert_not_null(t);
    fsm_changelog_info ci;
    cr_assert_eq(fsm_changelog_info_get(t, &ci), 0);
    cr_assert_eq(ci.newest, far + 1);
    cr_assert_eq(ci.oldest, far + 1);
    size_t n = 0;
    cr_assert_eq(fsm_changelog_scan(t, 0, countEvent, &n), 0);
    cr_assert_eq(n, 1);
    fsm_end_reads(&e.f);
    te_close(&e);
}

/* Store @rec as group @id's record directly, as a damaged or crafted
 * snapshot could have it: no check runs. */
static void storePg(te_env *e, blob id, blob rec)
{
    storage_txn *t;
    cr_assert_eq(storage_begin(e->f.store, true, &t), 0);
    cr_assert_eq(storage_table_put(t, TABLE_PG, (storage_slice){id.p, id.n},
                                   (storage_slice){rec.p, rec.n}, NULL),
                 0);
    cr_assert_eq(storage_commit(t), 0);
}

/* fuzz_snapshot (crash_pg_resource_amount_out_of_range): a pending group
 * restored with a bundle amount of 1e300 (never accepted by PG.CREATE)
 * overflowed the conversion to fixed point when a node registered and
 * placement retried it. Such amounts are now clamped to the largest. */
Test(fuzz_findings, damaged_bundle_amount_is_clamped)
{
    te_env e;
    te_open(&e);
    blob id = te_pg_id(1, 0);
    te_expect(RUN(&e, S("PG.CREATE"),
                  te_pg((te_pg_spec){.k = 1, .name = "g",
                                     .bundles = "CPU=100"})),
              OKR);
    cr_assert_eq(te_pg_state(&e, id), PG_PENDING);
    /* Rewrite the stored record with an amount no check would pass. */
    Ray__Rpc__PlacementGroupTableData *g = te_get_pg(&e, id);
    g->bundles[0]->unit_resources[0]->value = 1e300;
    blob rec = te_pack(&g->base);
    protobuf_c_message_free_unpacked(&g->base, NULL);
    storePg(&e, id, rec);

    /* Placement retries the group: it does not fit, and stays pending. */
    te_expect(RUN(&e, S("NODE.REGISTER"), te_node(1, "CPU=1e13")), OKR);
    cr_assert_eq(te_pg_state(&e, id), PG_PENDING);
    te_close(&e);
}

/* fuzz_snapshot (crash_pg_id_not_its_key): a restored group record whose
 * placement_group_id was empty, under a valid key and on a node's index,
 * sent NODE.DEAD's rescheduling to copy a 0-byte id as an 18-byte one (a
 * null source under UBSan, an out-of-bounds read otherwise). A record whose
 * id is not its key is now damage: the apply fails with STORAGE_ECORRUPT and
 * the member fail-stops, as for any other corrupt row. (Found by a CI fuzz
 * run whose input was not kept; this test builds the same state.) */
Test(fuzz_findings, record_id_must_be_its_key)
{
    te_env e;
    te_open(&e);
    blob id = te_pg_id(1, 0);
    te_expect(RUN(&e, S("NODE.REGISTER"), te_node(1, "CPU=4")), OKR);
    te_expect(RUN(&e, S("PG.CREATE"),
                  te_pg((te_pg_spec){.k = 1, .name = "g",
                                     .bundles = "CPU=1"})),
              OKR);
    cr_assert_eq(te_pg_state(&e, id), 2 /* CREATED */);
    Ray__Rpc__PlacementGroupTableData *g = te_get_pg(&e, id);
    ProtobufCBinaryData was = g->placement_group_id;
    g->placement_group_id = (ProtobufCBinaryData){0, NULL};
    blob rec = te_pack(&g->base);
    g->placement_group_id = was; /* so that it is freed with the rest */
    protobuf_c_message_free_unpacked(&g->base, NULL);
    storePg(&e, id, rec);

    blob argv[] = {S("NODE.DEAD"), te_node_id(1), S("gone")};
    rglue_cmd c = te_encode(3, argv);
    e.reply = (blob){NULL, 0};
    int rc = e.hooks.apply(e.hooks.ctx, e.index + 1, e.time_ms + 10, &c, 1,
                           te_collect, &e);
    cr_assert_eq(rc, STORAGE_ECORRUPT, "apply: %d", rc);
    cr_assert_null(e.reply.p, "no reply for a failed entry");
    cr_assert(e.f.failed, "the member fail-stops");
    cr_assert_eq(e.f.applied_index, e.index);
    te_close(&e);
}

/* fuzz_entry (crash_record_not_readable_after_reencoding): protobuf-c
 * accepted a record holding field number 0 written with a redundant varint
 * byte (kept as an unknown field) and wrote it back as a plain 0, which it
 * then refuses to decode: NODE.REGISTER stored it, and the next command that
 * loaded the node failed the apply (the member fail-stops). A record is now
 * taken only if it survives being encoded again. */
Test(fuzz_findings, record_must_survive_reencoding)
{
    te_env e;
    te_open(&e);
    blob good = te_node(1, "CPU=4");
    size_t n = good.n + 3;
    uint8_t *bad = malloc(n);
    cr_assert_not_null(bad);
    memcpy(bad, good.p, good.n);
    memcpy(bad + good.n, "\x80\x00\x00", 3); /* field 0, varint 0 */
    blob rec = {bad, n};
    te_expect_error(RUN(&e, S("NODE.REGISTER"), rec),
                    "ERR invalid GcsNodeInfo record");
    /* Refused again, and nothing was stored. */
    te_expect_error(RUN(&e, S("NODE.REGISTER"), rec),
                    "ERR invalid GcsNodeInfo record");
    te_expect(RUN(&e, S("NODE.GET"), te_node_id(1)), "$-1\r\n");
    /* The same record without the stray field is fine. */
    te_expect(RUN(&e, S("NODE.REGISTER"), good), OKR);
    te_expect(RUN(&e, S("NODE.REGISTER"), good), OKR);
    free(bad);
    te_close(&e);
}

/* fuzz_ctl (crash_resource_key_control_byte): gcsctl printed a resource
 * name's control bytes raw (an escape sequence in a record reached the
 * terminal) and NaN or infinite amounts as "nan"/"inf" in --json output,
 * which is not JSON. */
Test(fuzz_findings, gcsctl_resources_escaped_and_json_numbers)
{
    Ray__Rpc__GcsNodeInfo n;
    ray__rpc__gcs_node_info__init(&n);
    uint8_t nid[28] = {0};
    n.node_id = (ProtobufCBinaryData){sizeof nid, nid};
    Ray__Rpc__GcsNodeInfo__ResourcesTotalEntry a, b;
    ray__rpc__gcs_node_info__resources_total_entry__init(&a);
    ray__rpc__gcs_node_info__resources_total_entry__init(&b);
    a.key = "\033[2J";
    a.value = NAN;
    b.key = "GPU";
    b.value = INFINITY;
    Ray__Rpc__GcsNodeInfo__ResourcesTotalEntry *res[] = {&a, &b};
    n.n_resources_total = 2;
    n.resources_total = res;
    blob rec = te_pack(&n.base);

    ctl_fields f = {0};
    cr_assert(ctl_record_decode(CTL_RECORD_NODE, rec.p, rec.n, &f));
    const ctl_field *r = ctl_fields_get(&f, "resources");
    cr_assert_not_null(r);
    cr_assert_str_eq(r->text, "\\x1b[2J=nan, GPU=inf");
    cr_assert_str_eq(r->json, "{\"\\u001b[2J\": null, \"GPU\": null}");
    ctl_fields_free(&f);
}

/* fuzz_http (found while writing it): a request line sscanf could not
 * split ("\r\n\r\n") left the method unset, and the HEAD test then read
 * it. Routing is now a pure function that reads the method only once
 * parsed. */
Test(fuzz_findings, http_routing)
{
    bool head = true;
    cr_assert_eq(http_parse_request("\r\n\r\n", &head), HTTP_BAD_REQUEST);
    cr_assert_not(head);
    cr_assert_eq(http_parse_request("HEAD\r\n\r\n", &head), HTTP_BAD_REQUEST);
    cr_assert_not(head);
    cr_assert_eq(http_parse_request("HEAD /livez?x HTTP/1.1\r\n\r\n", &head),
                 HTTP_LIVEZ);
    cr_assert(head);
    cr_assert_eq(http_parse_request("GET /metrics\n\n", &head), HTTP_METRICS);
    cr_assert_not(head);
    cr_assert_eq(http_parse_request("PUT /readyz\r\n\r\n", &head),
                 HTTP_BAD_METHOD);
    cr_assert_eq(http_parse_request("GET /x\r\n\r\n", &head), HTTP_NOT_FOUND);
}
