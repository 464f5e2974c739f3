/* Unit tests for gcs/placement.c: the four strategies, their feasibility
 * edges, partly placed groups, resource arithmetic, argument checks, and a
 * randomized comparison against exhaustive search.
 *
 * Nodes and bundles are written as specs like "CPU:4 GPU:1"; the resource
 * names point into the spec string and are not NUL-terminated at name_len,
 * as the API allows. Expected where[] values are derived by hand from the
 * rules in placement.c; the comment of each test says why. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "placement.h"

#define U PLACEMENT_UNPLACED
#define MAX_RES 256
#define MAX_NODES 16
#define MAX_BUNDLES 16

typedef struct fixture {
    placement_resource res[MAX_RES];
    size_t n_res;
    placement_node nodes[MAX_NODES];
    size_t n_nodes;
    placement_bundle bundles[MAX_BUNDLES];
    size_t n_bundles;
    size_t where[MAX_BUNDLES];
} fixture;

/* Append the resources of @spec ("NAME:AMOUNT ...") to f->res; returns the
 * index of the first. */
static size_t parseSpec(fixture *f, const char *spec)
{
    size_t first = f->n_res;
    const char *p = spec;
    for (;;) {
        while (*p == ' ') p++;
        if (*p == '\0') break;
        const char *colon = strchr(p, ':');
        cr_assert_not_null(colon, "bad spec '%s'", spec);
        char *end;
        double amount = strtod(colon + 1, &end);
        cr_assert_neq(end, colon + 1, "bad amount in '%s'", spec);
        cr_assert_lt(f->n_res, MAX_RES);
        f->res[f->n_res++] = (placement_resource){
            .name = p, .name_len = (size_t)(colon - p), .amount = amount};
        p = end;
    }
    return first;
}

static void addNode(fixture *f, const char *spec)
{
    cr_assert_lt(f->n_nodes, MAX_NODES);
    size_t first = parseSpec(f, spec);
    f->nodes[f->n_nodes++] = (placement_node){
        .available = &f->res[first], .n_available = f->n_res - first};
}

/* A bundle, unplaced. */
static void addBundle(fixture *f, const char *spec)
{
    cr_assert_lt(f->n_bundles, MAX_BUNDLES);
    size_t first = parseSpec(f, spec);
    f->bundles[f->n_bundles] = (placement_bundle){
        .demand = &f->res[first], .n_demand = f->n_res - first};
    f->where[f->n_bundles++] = U;
}

static int place(fixture *f, int strategy)
{
    return placement_place(strategy, f->nodes, f->n_nodes, f->bundles,
                           f->n_bundles, f->where);
}

static void assertWhere(const fixture *f, const size_t *want, size_t n)
{
    cr_assert_eq(f->n_bundles, n, "test bug: %zu bundles, %zu expected",
                 f->n_bundles, n);
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(f->where[i], want[i], "where[%zu] = %zu, want %zu", i,
                     f->where[i], want[i]);
    }
}

#define EXPECT_WHERE(f, ...)                                                   \
    do {                                                                       \
        const size_t want_[] = {__VA_ARGS__};                                  \
        assertWhere((f), want_, sizeof want_ / sizeof want_[0]);               \
    } while (0)

/* Run @strategy on a fresh copy of @f and expect @rc; the copy's where[]
 * is returned in @out (same as the input unless rc == 0). */
static void placeCopy(const fixture *f, int strategy, int rc, fixture *out)
{
    *out = *f;
    /* The copy's resource pointers must point into the copy. */
    for (size_t n = 0; n < out->n_nodes; n++) {
        out->nodes[n].available =
            out->res + (f->nodes[n].available - f->res);
    }
    for (size_t b = 0; b < out->n_bundles; b++) {
        out->bundles[b].demand = out->res + (f->bundles[b].demand - f->res);
    }
    cr_assert_eq(place(out, strategy), rc, "strategy %d", strategy);
}

static const int strategies[] = {PLACEMENT_PACK, PLACEMENT_SPREAD,
                                 PLACEMENT_STRICT_PACK,
                                 PLACEMENT_STRICT_SPREAD};

TestSuite(placement, .timeout = 60);

/* ---- arguments ---------------------------------------------------------- */

Test(placement, invalid_strategy_is_einval)
{
    fixture f = {0};
    addNode(&f, "CPU:4");
    addBundle(&f, "CPU:1");
    const int bad[] = {-1, 4, 100, INT32_MIN};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_assert_eq(place(&f, bad[i]), PLACEMENT_EINVAL);
        EXPECT_WHERE(&f, U);
    }
}

Test(placement, where_out_of_range_is_einval)
{
    fixture f = {0};
    addNode(&f, "CPU:4");
    addNode(&f, "CPU:4");
    addBundle(&f, "CPU:1");
    addBundle(&f, "CPU:1");
    f.where[0] = 2; /* one past the last node */
    for (size_t s = 0; s < 4; s++) {
        cr_assert_eq(place(&f, strategies[s]), PLACEMENT_EINVAL);
        EXPECT_WHERE(&f, 2, U);
    }
    /* Placed, but there are no nodes at all. */
    f.where[0] = 0;
    cr_assert_eq(placement_place(PLACEMENT_PACK, f.nodes, 0, f.bundles, 2,
                                 f.where),
                 PLACEMENT_EINVAL);
    EXPECT_WHERE(&f, 0, U);
}

Test(placement, null_pointers_are_einval)
{
    fixture f = {0};
    addNode(&f, "CPU:4");
    addBundle(&f, "CPU:1");
    cr_assert_eq(placement_place(PLACEMENT_PACK, f.nodes, 1, NULL, 1, f.where),
                 PLACEMENT_EINVAL);
    cr_assert_eq(placement_place(PLACEMENT_PACK, f.nodes, 1, f.bundles, 1,
                                 NULL),
                 PLACEMENT_EINVAL);
    cr_assert_eq(placement_place(PLACEMENT_PACK, NULL, 1, f.bundles, 1, f.where),
                 PLACEMENT_EINVAL);
    EXPECT_WHERE(&f, U);

    /* A demand list missing behind a non-zero count. */
    placement_bundle no_demand = {.demand = NULL, .n_demand = 1};
    size_t where = U;
    cr_assert_eq(placement_place(PLACEMENT_PACK, f.nodes, 1, &no_demand, 1,
                                 &where),
                 PLACEMENT_EINVAL);
    cr_assert_eq(where, U);

    /* An availability list missing behind a non-zero count. */
    placement_node no_avail = {.available = NULL, .n_available = 1};
    cr_assert_eq(placement_place(PLACEMENT_PACK, &no_avail, 1, f.bundles, 1,
                                 f.where),
                 PLACEMENT_EINVAL);
    EXPECT_WHERE(&f, U);

    /* A name missing behind a non-zero length, in a demand and in a node. */
    placement_resource nameless = {.name = NULL, .name_len = 3, .amount = 1};
    placement_bundle b = {.demand = &nameless, .n_demand = 1};
    cr_assert_eq(placement_place(PLACEMENT_PACK, f.nodes, 1, &b, 1, &where),
                 PLACEMENT_EINVAL);
    placement_node n = {.available = &nameless, .n_available = 1};
    cr_assert_eq(placement_place(PLACEMENT_PACK, &n, 1, f.bundles, 1, f.where),
                 PLACEMENT_EINVAL);
    cr_assert_eq(where, U);
    EXPECT_WHERE(&f, U);

    /* Nothing at all: a valid empty call. */
    cr_assert_eq(placement_place(PLACEMENT_PACK, NULL, 0, NULL, 0, NULL), 0);
}

Test(placement, non_finite_or_negative_amounts_are_einval)
{
    const double bad_demands[] = {NAN, INFINITY, -INFINITY, -1.0, -0.0001};
    for (size_t i = 0; i < sizeof bad_demands / sizeof bad_demands[0]; i++) {
        fixture f = {0};
        addNode(&f, "CPU:4");
        addBundle(&f, "CPU:1");
        f.res[1].amount = bad_demands[i];
        for (size_t s = 0; s < 4; s++) {
            cr_assert_eq(place(&f, strategies[s]), PLACEMENT_EINVAL,
                         "demand %g", bad_demands[i]);
            EXPECT_WHERE(&f, U);
        }
    }
    const double bad_available[] = {NAN, INFINITY, -INFINITY};
    for (size_t i = 0; i < 3; i++) {
        fixture f = {0};
        addNode(&f, "CPU:4 memory:1");
        addBundle(&f, "CPU:1");
        /* Even a resource nobody asks for must be a number. */
        f.res[1].amount = bad_available[i];
        cr_assert_eq(place(&f, PLACEMENT_PACK), PLACEMENT_EINVAL);
        EXPECT_WHERE(&f, U);
    }
    /* Below half a unit of 1/10000, a negative demand is 0, not an error. */
    fixture f = {0};
    addNode(&f, "CPU:4");
    addBundle(&f, "CPU:-0.00004");
    cr_assert_eq(place(&f, PLACEMENT_PACK), 0);
    EXPECT_WHERE(&f, 0);
}

Test(placement, placed_bundles_breaking_a_strict_strategy_are_einval)
{
    fixture f = {0};
    addNode(&f, "CPU:4");
    addNode(&f, "CPU:4");
    addBundle(&f, "CPU:1");
    addBundle(&f, "CPU:1");
    addBundle(&f, "CPU:1");
    f.where[0] = 0;
    f.where[1] = 1;
    cr_assert_eq(place(&f, PLACEMENT_STRICT_PACK), PLACEMENT_EINVAL);
    EXPECT_WHERE(&f, 0, 1, U);
    f.where[1] = 0;
    cr_assert_eq(place(&f, PLACEMENT_STRICT_SPREAD), PLACEMENT_EINVAL);
    EXPECT_WHERE(&f, 0, 0, U);
    /* The best-effort strategies accept either. */
    cr_assert_eq(place(&f, PLACEMENT_PACK), 0);
    EXPECT_WHERE(&f, 0, 0, 0);
}

Test(placement, nothing_to_place_is_success)
{
    fixture f = {0};
    addNode(&f, "CPU:1");
    addBundle(&f, "CPU:100"); /* placed; its demand is not looked at */
    f.where[0] = 0;
    for (size_t s = 0; s < 4; s++) {
        cr_assert_eq(place(&f, strategies[s]), 0);
        EXPECT_WHERE(&f, 0);
    }
    for (size_t s = 0; s < 4; s++) {
        cr_assert_eq(placement_place(strategies[s], f.nodes, 1, f.bundles, 0,
                                     f.where),
                     0);
    }
}

Test(placement, no_nodes_is_infeasible)
{
    fixture f = {0};
    addBundle(&f, "");
    for (size_t s = 0; s < 4; s++) {
        cr_assert_eq(place(&f, strategies[s]), PLACEMENT_EINFEASIBLE);
        EXPECT_WHERE(&f, U);
    }
}

Test(placement, too_many_nodes_for_memory_is_enomem)
{
    fixture f = {0};
    addNode(&f, "CPU:4");
    addBundle(&f, "CPU:1");
    addBundle(&f, "");
    /* The scratch block is sized by the node count before any node is
     * read, so the bogus count is never dereferenced. */
    const size_t huge = SIZE_MAX / 8;
    cr_assert_eq(placement_place(PLACEMENT_PACK, f.nodes, huge, f.bundles, 2,
                                 f.where),
                 PLACEMENT_ENOMEM);
    EXPECT_WHERE(&f, U, U);
    /* Without any demanded resource, the per-node counters alone. */
    cr_assert_eq(placement_place(PLACEMENT_SPREAD, f.nodes, huge,
                                 &f.bundles[1], 1, &f.where[1]),
                 PLACEMENT_ENOMEM);
    EXPECT_WHERE(&f, U, U);
}

Test(placement, too_many_demands_for_memory_is_enomem)
{
    fixture f = {0};
    addNode(&f, "CPU:4");
    addBundle(&f, "CPU:1");
    addBundle(&f, "CPU:1");
    /* The name table is sized by the demand counts before any is read. */
    f.bundles[0].n_demand = SIZE_MAX / 4;
    cr_assert_eq(place(&f, PLACEMENT_PACK), PLACEMENT_ENOMEM);
    EXPECT_WHERE(&f, U, U);
    /* Counts whose sum overflows size_t. */
    f.bundles[0].n_demand = SIZE_MAX;
    cr_assert_eq(place(&f, PLACEMENT_PACK), PLACEMENT_ENOMEM);
    EXPECT_WHERE(&f, U, U);
}

/* ---- feasibility edges shared by every strategy -------------------------- */

Test(placement, exact_fit_and_one_unit_short)
{
    /* Three bundles of 2 CPU on one node: 6 CPU is an exact fit for the
     * packing strategies; 5.9999 is one unit (1/10000) short. */
    for (size_t s = 0; s < 3; s++) {
        int strategy = strategies[s];
        fixture f = {0};
        addNode(&f, "CPU:6");
        addBundle(&f, "CPU:2");
        addBundle(&f, "CPU:2");
        addBundle(&f, "CPU:2");
        cr_assert_eq(place(&f, strategy), 0);
        EXPECT_WHERE(&f, 0, 0, 0);

        f.res[0].amount = 5.9999;
        for (size_t b = 0; b < 3; b++) f.where[b] = U;
        cr_assert_eq(place(&f, strategy), PLACEMENT_EINFEASIBLE);
        EXPECT_WHERE(&f, U, U, U);

        /* Less than half a unit short rounds away. */
        f.res[0].amount = 5.99996;
        cr_assert_eq(place(&f, strategy), 0);
        EXPECT_WHERE(&f, 0, 0, 0);
    }
    /* STRICT_SPREAD: one bundle per node, each exactly full. */
    fixture f = {0};
    addNode(&f, "CPU:2");
    addNode(&f, "CPU:2");
    addBundle(&f, "CPU:2");
    addBundle(&f, "CPU:2");
    cr_assert_eq(place(&f, PLACEMENT_STRICT_SPREAD), 0);
    EXPECT_WHERE(&f, 0, 1);
    f.res[1].amount = 1.9999;
    f.where[0] = f.where[1] = U;
    cr_assert_eq(place(&f, PLACEMENT_STRICT_SPREAD), PLACEMENT_EINFEASIBLE);
    EXPECT_WHERE(&f, U, U);
}

Test(placement, fragmentation_is_infeasible)
{
    /* 4 CPU free in total, but no node has 4. */
    fixture f = {0};
    addNode(&f, "CPU:2");
    addNode(&f, "CPU:2");
    addBundle(&f, "CPU:4");
    for (size_t s = 0; s < 4; s++) {
        cr_assert_eq(place(&f, strategies[s]), PLACEMENT_EINFEASIBLE);
        EXPECT_WHERE(&f, U);
    }
    /* Same with two resources split across nodes. */
    fixture g = {0};
    addNode(&g, "CPU:8");
    addNode(&g, "GPU:8");
    addBundle(&g, "CPU:1 GPU:1");
    for (size_t s = 0; s < 4; s++) {
        cr_assert_eq(place(&g, strategies[s]), PLACEMENT_EINFEASIBLE);
        EXPECT_WHERE(&g, U);
    }
    /* Every bundle fits some node, and the totals suffice, but not both
     * 3-CPU bundles together with the rest. */
    fixture h = {0};
    addNode(&h, "CPU:3");
    addNode(&h, "CPU:3");
    addBundle(&h, "CPU:2");
    addBundle(&h, "CPU:2");
    addBundle(&h, "CPU:2");
    for (size_t s = 0; s < 4; s++) {
        cr_assert_eq(place(&h, strategies[s]), PLACEMENT_EINFEASIBLE);
        EXPECT_WHERE(&h, U, U, U);
    }
}

Test(placement, resource_the_node_lacks_counts_as_zero)
{
    /* Only n1 lists GPU. */
    for (size_t s = 0; s < 4; s++) {
        fixture f = {0};
        addNode(&f, "CPU:8");
        addNode(&f, "CPU:1 GPU:1");
        addBundle(&f, "GPU:1");
        cr_assert_eq(place(&f, strategies[s]), 0);
        EXPECT_WHERE(&f, 1);
    }
    /* Nobody lists it. */
    for (size_t s = 0; s < 4; s++) {
        fixture f = {0};
        addNode(&f, "CPU:8");
        addNode(&f, "CPU:1 GPU:1");
        addBundle(&f, "CPU:1 accelerator_type_A100:0.001");
        cr_assert_eq(place(&f, strategies[s]), PLACEMENT_EINFEASIBLE);
        EXPECT_WHERE(&f, U);
    }
}

Test(placement, zero_demands_always_fit)
{
    /* A zero demand of a resource the node lacks, or is overcommitted on
     * (negative availability), does not stop the bundle. */
    for (size_t s = 0; s < 4; s++) {
        fixture f = {0};
        addNode(&f, "CPU:-2 memory:4");
        addBundle(&f, "GPU:0 CPU:0 memory:1");
        cr_assert_eq(place(&f, strategies[s]), 0);
        EXPECT_WHERE(&f, 0);
    }
    /* A non-zero demand still needs a positive amount. */
    fixture f = {0};
    addNode(&f, "CPU:-2");
    addNode(&f, "CPU:1");
    addBundle(&f, "CPU:1");
    cr_assert_eq(place(&f, PLACEMENT_PACK), 0);
    EXPECT_WHERE(&f, 1);

    /* Bundles that demand nothing: PACK puts them together on the lowest
     * node; SPREAD takes the unused node first, then reuses the least used
     * (a tie, so the lowest); STRICT_SPREAD still needs a node each. */
    fixture e = {0};
    addNode(&e, "CPU:1");
    addNode(&e, "CPU:1");
    addBundle(&e, "");
    addBundle(&e, "");
    addBundle(&e, "");
    fixture out;
    placeCopy(&e, PLACEMENT_PACK, 0, &out);
    EXPECT_WHERE(&out, 0, 0, 0);
    placeCopy(&e, PLACEMENT_SPREAD, 0, &out);
    EXPECT_WHERE(&out, 0, 1, 0);
    placeCopy(&e, PLACEMENT_STRICT_PACK, 0, &out);
    EXPECT_WHERE(&out, 0, 0, 0);
    placeCopy(&e, PLACEMENT_STRICT_SPREAD, PLACEMENT_EINFEASIBLE, &out);
    EXPECT_WHERE(&out, U, U, U);
    addNode(&e, "");
    placeCopy(&e, PLACEMENT_STRICT_SPREAD, 0, &out);
    EXPECT_WHERE(&out, 0, 1, 2);
}

Test(placement, fractional_amounts_use_fixed_point)
{
    /* 0.1 + 0.2 != 0.3 in doubles, but is in units of 1/10000. */
    volatile double a = 0.1;
    volatile double b = 0.2;
    double sum = a + b;
    cr_assert_neq(sum, 0.3, "the premise of this test");

    fixture f = {0};
    addNode(&f, "CPU:0.3");
    addBundle(&f, "CPU:0.1");
    addBundle(&f, "CPU:0.2");
    cr_assert_eq(place(&f, PLACEMENT_STRICT_PACK), 0);
    EXPECT_WHERE(&f, 0, 0);

    /* The other way round: 0.30000000000000004 available, 0.3 wanted. */
    fixture g = {0};
    addNode(&g, "CPU:0");
    g.res[0].amount = sum;
    addBundle(&g, "CPU:0.3");
    cr_assert_eq(place(&g, PLACEMENT_PACK), 0);
    EXPECT_WHERE(&g, 0);

    /* Ten times 0.1 is 0.9999999999999999 in doubles; it fits 1 exactly and
     * not 0.9999. */
    fixture h = {0};
    addNode(&h, "CPU:1");
    for (int i = 0; i < 10; i++) addBundle(&h, "CPU:0.1");
    cr_assert_eq(place(&h, PLACEMENT_STRICT_PACK), 0);
    EXPECT_WHERE(&h, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
    for (int i = 0; i < 10; i++) h.where[i] = U;
    h.res[0].amount = 0.9999;
    cr_assert_eq(place(&h, PLACEMENT_STRICT_PACK), PLACEMENT_EINFEASIBLE);
    EXPECT_WHERE(&h, U, U, U, U, U, U, U, U, U, U);
}

Test(placement, large_amounts_are_exact_to_the_byte)
{
    /* memory is in bytes: 64 GiB splits into two 32 GiB bundles, but not
     * when one of them wants one byte more. */
    fixture f = {0};
    addNode(&f, "memory:68719476736");
    addBundle(&f, "memory:34359738368");
    addBundle(&f, "memory:34359738368");
    cr_assert_eq(place(&f, PLACEMENT_STRICT_PACK), 0);
    EXPECT_WHERE(&f, 0, 0);
    f.res[2].amount = 34359738369.0;
    f.where[0] = f.where[1] = U;
    cr_assert_eq(place(&f, PLACEMENT_STRICT_PACK), PLACEMENT_EINFEASIBLE);
    EXPECT_WHERE(&f, U, U);

    /* Near the clamp (2^61 units), sums do not wrap around. */
    fixture g = {0};
    addNode(&g, "X:100000000000000");
    addBundle(&g, "X:60000000000000");
    addBundle(&g, "X:60000000000000");
    cr_assert_eq(place(&g, PLACEMENT_STRICT_PACK), PLACEMENT_EINFEASIBLE);
    addNode(&g, "X:100000000000000");
    cr_assert_eq(place(&g, PLACEMENT_PACK), 0);
    EXPECT_WHERE(&g, 0, 1);
}

Test(placement, names_are_bytes_and_duplicates_add_up)
{
    /* "CPUS" cut at 3 bytes is "CPU"; the node lists CPU twice (1 + 1). */
    fixture f = {0};
    addNode(&f, "CPU:1 GPU:1 CPU:1");
    addBundle(&f, "CPUS:2");
    f.res[3].name_len = 3;
    cr_assert_eq(place(&f, PLACEMENT_PACK), 0);
    EXPECT_WHERE(&f, 0);

    /* A demand listing CPU twice wants the sum, 3: too much. */
    fixture g = {0};
    addNode(&g, "CPU:2");
    addBundle(&g, "CPU:1 CPU:2");
    cr_assert_eq(place(&g, PLACEMENT_PACK), PLACEMENT_EINFEASIBLE);

    /* Names differ by case and by embedded bytes. */
    fixture h = {0};
    addNode(&h, "cpu:8");
    addBundle(&h, "CPU:1");
    cr_assert_eq(place(&h, PLACEMENT_PACK), PLACEMENT_EINFEASIBLE);
    /* The empty name is a name like any other. */
    fixture e = {0};
    addNode(&e, ":2");
    addBundle(&e, ":2");
    cr_assert_eq(place(&e, PLACEMENT_PACK), 0);
    EXPECT_WHERE(&e, 0);
}

/* ---- PACK --------------------------------------------------------------- */

Test(placement, pack_puts_everything_on_one_node)
{
    /* Opening: n1 and n2 hold all three, n0 one; n1 and n2 are equally
     * tight (2 of 8 left), so the lower index. */
    fixture f = {0};
    addNode(&f, "CPU:2");
    addNode(&f, "CPU:8");
    addNode(&f, "CPU:8");
    addBundle(&f, "CPU:2");
    addBundle(&f, "CPU:2");
    addBundle(&f, "CPU:2");
    cr_assert_eq(place(&f, PLACEMENT_PACK), 0);
    EXPECT_WHERE(&f, 1, 1, 1);
}

Test(placement, pack_prefers_the_exact_fit)
{
    /* Both n1 and n2 hold all three; n2 is an exact fit. */
    fixture f = {0};
    addNode(&f, "CPU:4");
    addNode(&f, "CPU:12");
    addNode(&f, "CPU:6");
    addBundle(&f, "CPU:2");
    addBundle(&f, "CPU:2");
    addBundle(&f, "CPU:2");
    cr_assert_eq(place(&f, PLACEMENT_PACK), 0);
    EXPECT_WHERE(&f, 2, 2, 2);
}

Test(placement, pack_spills_onto_more_nodes)
{
    /* Order 3,3,1,1. The first 3 opens n0 (a 3 and a 1 fit; all nodes
     * tie); the second 3 does not fit n0's 1 left and opens n1; each 1
     * then goes on a used node, the tightest first: n0 (1 left), then n1. */
    fixture f = {0};
    addNode(&f, "CPU:4");
    addNode(&f, "CPU:4");
    addNode(&f, "CPU:4");
    addBundle(&f, "CPU:3");
    addBundle(&f, "CPU:3");
    addBundle(&f, "CPU:1");
    addBundle(&f, "CPU:1");
    cr_assert_eq(place(&f, PLACEMENT_PACK), 0);
    EXPECT_WHERE(&f, 0, 1, 0, 1);
    /* STRICT_PACK cannot. */
    for (size_t b = 0; b < 4; b++) f.where[b] = U;
    cr_assert_eq(place(&f, PLACEMENT_STRICT_PACK), PLACEMENT_EINFEASIBLE);
    EXPECT_WHERE(&f, U, U, U, U);
}

Test(placement, pack_prefers_nodes_the_group_uses)
{
    /* b0 is on n1, which has 1 CPU left: b1 goes there, though n2 could
     * hold more. */
    fixture f = {0};
    addNode(&f, "CPU:4");
    addNode(&f, "CPU:1");
    addNode(&f, "CPU:8");
    addBundle(&f, "CPU:1");
    addBundle(&f, "CPU:1");
    f.where[0] = 1;
    cr_assert_eq(place(&f, PLACEMENT_PACK), 0);
    EXPECT_WHERE(&f, 1, 1);
}

Test(placement, pack_replaces_bundles_after_a_node_died)
{
    /* The group was {b0, b1, b2}; b1 and b2 lived on a node that died. b0's
     * node n1 has 1 CPU left, too little; n0 can hold both lost bundles,
     * n2 one, so n0 is opened and takes both. */
    fixture f = {0};
    addNode(&f, "CPU:8");
    addNode(&f, "CPU:1");
    addNode(&f, "CPU:2");
    addBundle(&f, "CPU:2");
    addBundle(&f, "CPU:2");
    addBundle(&f, "CPU:2");
    f.where[0] = 1;
    cr_assert_eq(place(&f, PLACEMENT_PACK), 0);
    EXPECT_WHERE(&f, 1, 0, 0);
}

Test(placement, pack_keeps_the_gpu_node_for_the_gpu_bundle)
{
    /* Order b0, b1 (4 CPU each), then b2 (its GPU share is small). n0 and
     * n1 could each hold b0 and b1 exactly, but n0 also has GPU, which b2
     * needs: b0 opens n1, b1 joins it, and b2 opens n0. Were GPU ignored,
     * the tie would go to n0 and strand b2. */
    fixture f = {0};
    addNode(&f, "CPU:8 GPU:16");
    addNode(&f, "CPU:8");
    addBundle(&f, "CPU:4");
    addBundle(&f, "CPU:4");
    addBundle(&f, "CPU:1 GPU:1");
    cr_assert_eq(place(&f, PLACEMENT_PACK), 0);
    EXPECT_WHERE(&f, 1, 1, 0);
}

Test(placement, most_constrained_bundle_first_when_stuck)
{
    /* b0 (4 GPU) is the largest and fits both nodes, which tie; placed
     * first it takes n0, the only node b1 fits. No pass in size order
     * places both; in fewest-fitting-nodes order b1 goes first. */
    for (size_t s = 0; s < 2; s++) {
        fixture f = {0};
        addNode(&f, "CPU:8 GPU:4");
        addNode(&f, "CPU:1 GPU:4");
        addBundle(&f, "GPU:4");
        addBundle(&f, "CPU:3 GPU:1");
        cr_assert_eq(place(&f, strategies[s]), 0);
        EXPECT_WHERE(&f, 1, 0);
    }
}

Test(placement, greedy_limit_is_documented)
{
    /* placement.c's example of a packing the greedy passes miss: {1},
     * {2,2}, {3,3} fit the nodes exactly, but every pass puts a 3 on the
     * 4-CPU node. If this starts to succeed, update the comments. */
    fixture f = {0};
    addNode(&f, "CPU:1");
    addNode(&f, "CPU:4");
    addNode(&f, "CPU:6");
    addBundle(&f, "CPU:3");
    addBundle(&f, "CPU:3");
    addBundle(&f, "CPU:2");
    addBundle(&f, "CPU:2");
    addBundle(&f, "CPU:1");
    fixture out;
    placeCopy(&f, PLACEMENT_PACK, PLACEMENT_EINFEASIBLE, &out);
    EXPECT_WHERE(&out, U, U, U, U, U);
    placeCopy(&f, PLACEMENT_SPREAD, PLACEMENT_EINFEASIBLE, &out);
    EXPECT_WHERE(&out, U, U, U, U, U);
}

/* ---- SPREAD ------------------------------------------------------------- */

Test(placement, spread_uses_distinct_nodes_least_loaded_first)
{
    /* Each 1-CPU bundle takes the unused node with the most room left:
     * n1 (7/8 left), then n2 (3/4), then n0 (1/2). */
    fixture f = {0};
    addNode(&f, "CPU:2");
    addNode(&f, "CPU:8");
    addNode(&f, "CPU:4");
    addBundle(&f, "CPU:1");
    addBundle(&f, "CPU:1");
    addBundle(&f, "CPU:1");
    cr_assert_eq(place(&f, PLACEMENT_SPREAD), 0);
    EXPECT_WHERE(&f, 1, 2, 0);
}

Test(placement, spread_reuses_nodes_evenly_when_out_of_nodes)
{
    /* n0 (4 CPU) and n1 (2 CPU), four 1-CPU bundles: n0, n1, then both
     * hold one; n0 has more room (2 of 3 left vs 0 of 1), then n1 holds
     * fewer. */
    fixture f = {0};
    addNode(&f, "CPU:4");
    addNode(&f, "CPU:2");
    for (int i = 0; i < 4; i++) addBundle(&f, "CPU:1");
    cr_assert_eq(place(&f, PLACEMENT_SPREAD), 0);
    EXPECT_WHERE(&f, 0, 1, 0, 1);
    /* STRICT_SPREAD cannot. */
    for (size_t b = 0; b < 4; b++) f.where[b] = U;
    cr_assert_eq(place(&f, PLACEMENT_STRICT_SPREAD), PLACEMENT_EINFEASIBLE);
    EXPECT_WHERE(&f, U, U, U, U);
}

Test(placement, spread_avoids_nodes_the_group_uses)
{
    /* b0 is on n0, which still has the most room; b1 goes to an unused
     * node (n1 and n2 tie; the lower index). */
    fixture f = {0};
    addNode(&f, "CPU:8");
    addNode(&f, "CPU:2");
    addNode(&f, "CPU:2");
    addBundle(&f, "CPU:1");
    addBundle(&f, "CPU:1");
    f.where[0] = 0;
    cr_assert_eq(place(&f, PLACEMENT_SPREAD), 0);
    EXPECT_WHERE(&f, 0, 1);
    /* With no unused node that fits, reuse. */
    f.res[1].amount = 0.5;
    f.res[2].amount = 0.5;
    f.where[1] = U;
    cr_assert_eq(place(&f, PLACEMENT_SPREAD), 0);
    EXPECT_WHERE(&f, 0, 0);
}

Test(placement, best_effort_falls_back_to_best_fit)
{
    /* SPREAD, order 5,4,4,2. Its own pass spreads 5, 4, 4 over the three
     * nodes (5 on the roomiest, n0) and leaves 1 CPU on each: the 2 is
     * stranded. Best fit puts 5 on n1 and 4 on n2 exactly, and 4 + 2 on
     * n0. */
    fixture f = {0};
    addNode(&f, "CPU:6");
    addNode(&f, "CPU:5");
    addNode(&f, "CPU:5");
    addBundle(&f, "CPU:4");
    addBundle(&f, "CPU:5");
    addBundle(&f, "CPU:2");
    addBundle(&f, "CPU:4");
    cr_assert_eq(place(&f, PLACEMENT_SPREAD), 0);
    EXPECT_WHERE(&f, 2, 1, 0, 0);

    /* PACK, order 5,4,2,2. Its own pass opens n0 for the 5 (it would hold
     * a 2 as well), then n1 for the 4, and strands the second 2. Best fit
     * puts the 5 on n1 exactly and the rest on n0. */
    fixture g = {0};
    addNode(&g, "CPU:8");
    addNode(&g, "CPU:5");
    addBundle(&g, "CPU:2");
    addBundle(&g, "CPU:2");
    addBundle(&g, "CPU:4");
    addBundle(&g, "CPU:5");
    cr_assert_eq(place(&g, PLACEMENT_PACK), 0);
    EXPECT_WHERE(&g, 0, 0, 0, 1);
}

/* ---- STRICT_PACK -------------------------------------------------------- */

Test(placement, strict_pack_needs_one_big_node)
{
    /* 8 CPU in one piece: n2 fits exactly, n3 too but looser. */
    fixture f = {0};
    addNode(&f, "CPU:4");
    addNode(&f, "CPU:4");
    addNode(&f, "CPU:16");
    addNode(&f, "CPU:8");
    addBundle(&f, "CPU:4");
    addBundle(&f, "CPU:4");
    fixture out;
    placeCopy(&f, PLACEMENT_STRICT_PACK, 0, &out);
    EXPECT_WHERE(&out, 3, 3);

    /* Without the big nodes: infeasible, where PACK uses two nodes. */
    f.n_nodes = 2;
    placeCopy(&f, PLACEMENT_STRICT_PACK, PLACEMENT_EINFEASIBLE, &out);
    EXPECT_WHERE(&out, U, U);
    placeCopy(&f, PLACEMENT_PACK, 0, &out);
    EXPECT_WHERE(&out, 0, 1);
}

Test(placement, strict_pack_follows_the_placed_bundles)
{
    /* b0 is on n1: b1 must go there too, though n0 is roomier. */
    fixture f = {0};
    addNode(&f, "CPU:8");
    addNode(&f, "CPU:2");
    addBundle(&f, "CPU:2");
    addBundle(&f, "CPU:2");
    addBundle(&f, "CPU:0");
    f.where[0] = 1;
    cr_assert_eq(place(&f, PLACEMENT_STRICT_PACK), 0);
    EXPECT_WHERE(&f, 1, 1, 1);

    /* n1 has one unit too little left: infeasible, not n0. */
    f.res[1].amount = 1.9999;
    f.where[1] = f.where[2] = U;
    cr_assert_eq(place(&f, PLACEMENT_STRICT_PACK), PLACEMENT_EINFEASIBLE);
    EXPECT_WHERE(&f, 1, U, U);
}

/* ---- STRICT_SPREAD ------------------------------------------------------ */

Test(placement, strict_spread_needs_a_node_per_bundle)
{
    fixture f = {0};
    addNode(&f, "CPU:8");
    addNode(&f, "CPU:8");
    addBundle(&f, "CPU:1");
    addBundle(&f, "CPU:1");
    addBundle(&f, "CPU:1");
    cr_assert_eq(place(&f, PLACEMENT_STRICT_SPREAD), PLACEMENT_EINFEASIBLE);
    EXPECT_WHERE(&f, U, U, U);
    /* A third node, but too small, changes nothing. */
    addNode(&f, "CPU:0.9999");
    cr_assert_eq(place(&f, PLACEMENT_STRICT_SPREAD), PLACEMENT_EINFEASIBLE);
    EXPECT_WHERE(&f, U, U, U);
    f.res[5].amount = 1;
    cr_assert_eq(place(&f, PLACEMENT_STRICT_SPREAD), 0);
    /* Greedy, tightest first: b0 takes n2 (exact), then n0 and n1. */
    EXPECT_WHERE(&f, 2, 0, 1);
}

Test(placement, strict_spread_keeps_gpu_nodes_for_gpu_bundles)
{
    /* b0 (2 CPU, the larger share) fits n0 and n1 exactly; n0 has a GPU,
     * so b0 takes n1. b1 then has n0 (tighter than n2). Both placements are
     * valid matchings; this one leaves the big GPU node n2 free. */
    fixture f = {0};
    addNode(&f, "CPU:2 GPU:1");
    addNode(&f, "CPU:2");
    addNode(&f, "CPU:4 GPU:8");
    addBundle(&f, "CPU:2");
    addBundle(&f, "CPU:1 GPU:1");
    cr_assert_eq(place(&f, PLACEMENT_STRICT_SPREAD), 0);
    EXPECT_WHERE(&f, 1, 0);
}

Test(placement, strict_spread_moves_a_bundle_to_free_a_node)
{
    /* b0 (2 CPU, largest) fits n0 and n1 and greedily takes n0, the
     * tighter; b1 fits only n0 (it needs 2 X). The augmenting path moves
     * b0 to n1 and gives n0 to b1. */
    fixture f = {0};
    addNode(&f, "CPU:2 X:100");
    addNode(&f, "CPU:4 X:1");
    addBundle(&f, "CPU:2");
    addBundle(&f, "CPU:1 X:2");
    cr_assert_eq(place(&f, PLACEMENT_STRICT_SPREAD), 0);
    EXPECT_WHERE(&f, 1, 0);
}

Test(placement, strict_spread_follows_a_longer_augmenting_path)
{
    /* Order b0, b2 (equal shares, bundle order), b1. Greedy: b0 takes n0
     * (ties with n1), b2 fits only n0 and waits, b1 takes n1 (tighter
     * than n2). Repair: b2 -> n0 (b0) -> b0 -> n1 (b1) -> b1 -> n2 free. */
    fixture f = {0};
    addNode(&f, "CPU:3 GPU:4");
    addNode(&f, "CPU:4 GPU:2");
    addNode(&f, "CPU:2 GPU:4");
    addBundle(&f, "CPU:3 GPU:1");
    addBundle(&f, "CPU:1 GPU:2");
    addBundle(&f, "CPU:3 GPU:3");
    cr_assert_eq(place(&f, PLACEMENT_STRICT_SPREAD), 0);
    EXPECT_WHERE(&f, 1, 2, 0);
}

Test(placement, strict_spread_avoids_nodes_of_placed_bundles)
{
    /* b0 is on n0: b1 goes elsewhere, the tightest of n1 and n2. */
    fixture f = {0};
    addNode(&f, "CPU:8");
    addNode(&f, "CPU:1");
    addNode(&f, "CPU:2");
    addBundle(&f, "CPU:1");
    addBundle(&f, "CPU:1");
    f.where[0] = 0;
    cr_assert_eq(place(&f, PLACEMENT_STRICT_SPREAD), 0);
    EXPECT_WHERE(&f, 0, 1);

    /* Only n0 has room: infeasible. */
    f.res[1].amount = 0.5;
    f.res[2].amount = 0.5;
    f.where[1] = U;
    cr_assert_eq(place(&f, PLACEMENT_STRICT_SPREAD), PLACEMENT_EINFEASIBLE);
    EXPECT_WHERE(&f, 0, U);
}

/* ---- determinism -------------------------------------------------------- */

/* A deterministic pseudo-random sequence (xorshift64). */
static uint64_t nextRandom(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    return x;
}

static unsigned randomBelow(uint64_t *state, unsigned bound)
{
    return (unsigned)(nextRandom(state) % bound);
}

static const char *const resourceNames[] = {"CPU", "GPU", "memory",
                                            "custom_a"};

/* A heap-allocated instance: every name in its own allocation, so that two
 * copies share no pointer. */
typedef struct instance {
    placement_node *nodes;
    placement_bundle *bundles;
    placement_resource *res;
    char **names;
    size_t n_nodes, n_bundles, n_res;
} instance;

static placement_resource makeResource(instance *in, const char *name,
                                       double amount)
{
    char *copy = strdup(name);
    cr_assert_not_null(copy);
    in->names[in->n_res] = copy;
    return (placement_resource){copy, strlen(copy), amount};
}

/* Nodes with 1-4 of the resources, bundles with 1-3; amounts in halves. */
static void makeInstance(instance *in, uint64_t seed, size_t n_nodes,
                         size_t n_bundles)
{
    size_t max_res = n_nodes * 4 + n_bundles * 4;
    in->nodes = calloc(n_nodes, sizeof *in->nodes);
    in->bundles = calloc(n_bundles, sizeof *in->bundles);
    in->res = calloc(max_res, sizeof *in->res);
    in->names = calloc(max_res, sizeof *in->names);
    cr_assert(in->nodes && in->bundles && in->res && in->names);
    in->n_nodes = n_nodes;
    in->n_bundles = n_bundles;
    in->n_res = 0;
    uint64_t state = seed;
    for (size_t n = 0; n < n_nodes; n++) {
        size_t first = in->n_res;
        for (size_t r = 0; r < 4; r++) {
            if (r > 0 && randomBelow(&state, 2) == 0) continue;
            double amount = (double)randomBelow(&state, 33) / 2.0;
            in->res[in->n_res] = makeResource(in, resourceNames[r], amount);
            in->n_res++;
        }
        in->nodes[n] = (placement_node){&in->res[first], in->n_res - first};
    }
    for (size_t b = 0; b < n_bundles; b++) {
        size_t first = in->n_res;
        for (size_t r = 0; r < 4; r++) {
            if (r > 0 && randomBelow(&state, 3) != 0) continue;
            double amount = (double)(1 + randomBelow(&state, 8)) / 2.0;
            in->res[in->n_res] = makeResource(in, resourceNames[r], amount);
            in->n_res++;
        }
        in->bundles[b] = (placement_bundle){&in->res[first],
                                            in->n_res - first};
    }
}

static void freeInstance(instance *in)
{
    for (size_t i = 0; i < in->n_res; i++) free(in->names[i]);
    free(in->names);
    free(in->res);
    free(in->bundles);
    free(in->nodes);
}

Test(placement, same_input_gives_same_output)
{
    for (uint64_t seed = 1; seed <= 20; seed++) {
        instance a, b;
        makeInstance(&a, seed * 7919, 200, 30);
        makeInstance(&b, seed * 7919, 200, 30);
        for (size_t s = 0; s < 4; s++) {
            size_t wa[30], wb[30], wa2[30];
            for (size_t i = 0; i < 30; i++) {
                /* Partly placed on a few nodes (none for the strict ones,
                 * which demand a consistent group). */
                wa[i] = strategies[s] < 2 && i % 7 == 0 ? i % 200 : U;
                wb[i] = wa2[i] = wa[i];
            }
            int ra = placement_place(strategies[s], a.nodes, 200, a.bundles,
                                     30, wa);
            int ra2 = placement_place(strategies[s], a.nodes, 200, a.bundles,
                                      30, wa2);
            int rb = placement_place(strategies[s], b.nodes, 200, b.bundles,
                                     30, wb);
            cr_assert_eq(ra, ra2);
            cr_assert_eq(ra, rb, "seed %llu strategy %d",
                         (unsigned long long)seed, strategies[s]);
            cr_assert_arr_eq(wa, wa2, sizeof wa);
            cr_assert_arr_eq(wa, wb, sizeof wa);
        }
        freeInstance(&a);
        freeInstance(&b);
    }
}

/* ---- against exhaustive search ----------------------------------------- */

#define SMALL_NODES 4
#define SMALL_BUNDLES 6
#define SMALL_DIMS 2

typedef struct small {
    int strategy;
    size_t n_nodes, n_bundles;
    long cap[SMALL_NODES][SMALL_DIMS];    /* available, in whole units */
    long dem[SMALL_BUNDLES][SMALL_DIMS];
    size_t fixed[SMALL_BUNDLES];          /* where[] before the call */
} small;

/* Whether the bundles from @b on can be placed given @used and @count. */
static bool searchPlacement(const small *p, size_t b,
                            long used[SMALL_NODES][SMALL_DIMS],
                            size_t count[SMALL_NODES])
{
    if (b == p->n_bundles) {
        size_t nodes_used = 0;
        for (size_t n = 0; n < p->n_nodes; n++) {
            if (count[n] > 0) nodes_used++;
            if (p->strategy == PLACEMENT_STRICT_SPREAD && count[n] > 1)
                return false;
        }
        return p->strategy != PLACEMENT_STRICT_PACK || nodes_used <= 1;
    }
    if (p->fixed[b] != U) return searchPlacement(p, b + 1, used, count);
    for (size_t n = 0; n < p->n_nodes; n++) {
        bool fits = true;
        for (size_t d = 0; d < SMALL_DIMS; d++) {
            if (p->dem[b][d] > 0 && used[n][d] + p->dem[b][d] > p->cap[n][d])
                fits = false;
        }
        if (!fits) continue;
        for (size_t d = 0; d < SMALL_DIMS; d++) used[n][d] += p->dem[b][d];
        count[n]++;
        bool ok = searchPlacement(p, b + 1, used, count);
        for (size_t d = 0; d < SMALL_DIMS; d++) used[n][d] -= p->dem[b][d];
        count[n]--;
        if (ok) return true;
    }
    return false;
}

/* A result must keep the placed bundles, fit every node, and obey a strict
 * strategy, counting the placed bundles too. */
static void checkResult(const small *p, const size_t *where)
{
    long used[SMALL_NODES][SMALL_DIMS] = {{0}};
    size_t count[SMALL_NODES] = {0};
    size_t pack_node = U;
    for (size_t b = 0; b < p->n_bundles; b++) {
        cr_assert_lt(where[b], p->n_nodes);
        if (p->fixed[b] != U) {
            cr_assert_eq(where[b], p->fixed[b], "a placed bundle moved");
        } else {
            for (size_t d = 0; d < SMALL_DIMS; d++)
                used[where[b]][d] += p->dem[b][d];
        }
        count[where[b]]++;
        if (p->strategy == PLACEMENT_STRICT_PACK) {
            cr_assert(pack_node == U || pack_node == where[b]);
            pack_node = where[b];
        }
    }
    for (size_t n = 0; n < p->n_nodes; n++) {
        for (size_t d = 0; d < SMALL_DIMS; d++) {
            if (used[n][d] > 0) cr_assert_leq(used[n][d], p->cap[n][d]);
        }
        if (p->strategy == PLACEMENT_STRICT_SPREAD)
            cr_assert_leq(count[n], 1);
    }
}

Test(placement, agrees_with_exhaustive_search)
{
    static const char *const names[SMALL_DIMS] = {"CPU", "GPU"};
    uint64_t state = 0x9e3779b97f4a7c15u;
    size_t feasible[4] = {0}, missed[4] = {0};
    for (int round = 0; round < 40000; round++) {
        small p = {.strategy = strategies[round % 4]};
        p.n_nodes = 1 + randomBelow(&state, SMALL_NODES);
        p.n_bundles = 1 + randomBelow(&state, SMALL_BUNDLES);
        size_t dims = 1 + randomBelow(&state, SMALL_DIMS);
        placement_resource res[SMALL_NODES + SMALL_BUNDLES][SMALL_DIMS];
        placement_node nodes[SMALL_NODES];
        placement_bundle bundles[SMALL_BUNDLES];
        size_t where[SMALL_BUNDLES];
        for (size_t n = 0; n < p.n_nodes; n++) {
            for (size_t d = 0; d < SMALL_DIMS; d++) {
                p.cap[n][d] = d < dims ? (long)randomBelow(&state, 9) : 0;
                res[n][d] = (placement_resource){names[d], 3,
                                                 (double)p.cap[n][d]};
            }
            nodes[n] = (placement_node){res[n], SMALL_DIMS};
        }
        /* Some bundles are already placed (consistently with a strict
         * strategy: all on one node, or each on its own). */
        size_t pack_node = randomBelow(&state, (unsigned)p.n_nodes);
        for (size_t b = 0; b < p.n_bundles; b++) {
            placement_resource *r = res[SMALL_NODES + b];
            for (size_t d = 0; d < SMALL_DIMS; d++) {
                p.dem[b][d] = d < dims ? (long)randomBelow(&state, 6) : 0;
                r[d] = (placement_resource){names[d], 3, (double)p.dem[b][d]};
            }
            bundles[b] = (placement_bundle){r, SMALL_DIMS};
            p.fixed[b] = U;
            if (randomBelow(&state, 4) == 0) {
                size_t n = p.strategy == PLACEMENT_STRICT_PACK
                    ? pack_node : randomBelow(&state, (unsigned)p.n_nodes);
                bool taken = false;
                for (size_t o = 0; o < b; o++) taken |= p.fixed[o] == n;
                if (p.strategy != PLACEMENT_STRICT_SPREAD || !taken)
                    p.fixed[b] = n;
            }
            where[b] = p.fixed[b];
        }
        long used[SMALL_NODES][SMALL_DIMS] = {{0}};
        size_t count[SMALL_NODES] = {0};
        for (size_t b = 0; b < p.n_bundles; b++) {
            if (p.fixed[b] != U) count[p.fixed[b]]++;
        }
        bool exists = searchPlacement(&p, 0, used, count);
        int rc = placement_place(p.strategy, nodes, p.n_nodes, bundles,
                                 p.n_bundles, where);
        if (rc == 0) {
            cr_assert(exists, "placed what cannot be placed (round %d)",
                      round);
            checkResult(&p, where);
        } else {
            cr_assert_eq(rc, PLACEMENT_EINFEASIBLE);
            for (size_t b = 0; b < p.n_bundles; b++)
                cr_assert_eq(where[b], p.fixed[b]);
        }
        size_t s = (size_t)(round % 4);
        feasible[s] += exists;
        missed[s] += exists && rc != 0;
    }
    for (size_t s = 0; s < 4; s++) {
        cr_log_info("strategy %zu: %zu feasible, %zu missed", s, feasible[s],
                    missed[s]);
    }
    /* The strict strategies are exact; the best-effort ones are greedy and
     * may miss a few tight packings (see placement.c). */
    cr_assert_eq(missed[2], 0, "STRICT_PACK missed %zu", missed[2]);
    cr_assert_eq(missed[3], 0, "STRICT_SPREAD missed %zu", missed[3]);
    for (size_t s = 0; s < 2; s++) {
        cr_assert_gt(feasible[s], 1000);
        cr_assert_leq(missed[s] * 1000, feasible[s],
                      "strategy %zu missed %zu of %zu feasible", s, missed[s],
                      feasible[s]);
    }
}

/* ---- scale -------------------------------------------------------------- */

Test(placement, thousands_of_nodes_are_fast, .timeout = 30)
{
    instance in;
    makeInstance(&in, 42, 5000, 64);
    size_t where[64];
    for (size_t s = 0; s < 4; s++) {
        for (size_t i = 0; i < 64; i++) where[i] = U;
        int rc = placement_place(strategies[s], in.nodes, in.n_nodes,
                                 in.bundles, in.n_bundles, where);
        cr_assert(rc == 0 || rc == PLACEMENT_EINFEASIBLE, "rc %d", rc);
    }
    freeInstance(&in);

    /* Infeasible although every bundle fits some node and the totals
     * suffice, so the passes run: two bundles need n0's GPU and all of its
     * CPU; 62 small ones fit anywhere. */
    enum { N = 5000, B = 64 };
    static placement_resource avail[N][2];
    static placement_node nodes[N];
    for (size_t n = 0; n < N; n++) {
        avail[n][0] = (placement_resource){"CPU", 3, 3.0};
        avail[n][1] = (placement_resource){"GPU", 3, n == 0 ? 2.0 : 0.0};
        nodes[n] = (placement_node){avail[n], 2};
    }
    const placement_resource big[2] = {{"CPU", 3, 3.0}, {"GPU", 3, 1.0}};
    const placement_resource one_cpu[1] = {{"CPU", 3, 1.0}};
    placement_bundle bundles[B];
    for (size_t b = 0; b < B; b++) {
        bundles[b] = b < 2 ? (placement_bundle){big, 2}
                           : (placement_bundle){one_cpu, 1};
    }
    for (size_t s = 0; s < 4; s++) {
        for (size_t i = 0; i < B; i++) where[i] = U;
        cr_assert_eq(placement_place(strategies[s], nodes, N, bundles, B,
                                     where),
                     PLACEMENT_EINFEASIBLE);
    }

    /* Without the second big bundle it fits: PACK fills n0 with the big
     * one, then packs the 1-CPU bundles three to a node in node order;
     * SPREAD and STRICT_SPREAD give each its own node, in node order. */
    for (size_t s = 0; s < 4; s++) {
        for (size_t i = 0; i < B; i++) where[i] = U;
        int rc = placement_place(strategies[s], nodes, N, bundles + 1, B - 1,
                                 where);
        if (strategies[s] == PLACEMENT_STRICT_PACK) {
            cr_assert_eq(rc, PLACEMENT_EINFEASIBLE);
            continue;
        }
        cr_assert_eq(rc, 0, "strategy %d", strategies[s]);
        cr_assert_eq(where[0], 0);
        if (strategies[s] == PLACEMENT_PACK) {
            for (size_t i = 1; i < B - 1; i++)
                cr_assert_eq(where[i], 1 + (i - 1) / 3, "where[%zu]", i);
        }
        if (strategies[s] != PLACEMENT_PACK) {
            for (size_t i = 1; i < B - 1; i++) cr_assert_eq(where[i], i);
        }
    }
}
