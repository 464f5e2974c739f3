/* placement: where the bundles of a placement group go. A pure function of
 * its inputs, with no I/O and no global state, so that the state machine can
 * run it during apply and every replica computes the same answer.
 *
 * Strategies (Ray's PlacementStrategy, common.proto):
 *   PACK           as few nodes as possible; best effort: when the bundles do
 *                  not fit on one node they go on more.
 *   SPREAD         distinct nodes as far as possible; best effort: when there
 *                  are too few nodes that fit, nodes are reused.
 *   STRICT_PACK    every bundle on one node, or infeasible.
 *   STRICT_SPREAD  every bundle on its own node, or infeasible.
 *
 * Resources. Amounts are compared in Ray's fixed point: each double is
 * rounded to an integer number of 1/10000 units before any arithmetic, so
 * 0.1 + 0.2 of demand fits in 0.3 available. A bundle fits a node when every
 * resource it demands is available there in at least that amount. A demand
 * that rounds to 0 always fits; a resource the node does not list counts as 0
 * available. A name listed twice in one demand or one node counts as the sum
 * of its amounts. Names are byte strings compared by length and bytes.
 * Amounts beyond 2^61 units (about 2.3e14) are clamped to that bound.
 *
 * Ownership: placement_place() reads @nodes and @bundles (and the names and
 * amounts they point to) only during the call, retains nothing after it, and
 * writes nothing but where[]. Its scratch memory is its own and is freed
 * before it returns.
 *
 * Determinism: the result depends only on the values passed (node and bundle
 * order, names, amounts), never on pointer values or allocation; ties are
 * broken by the lower node index, then the lower bundle index. The caller
 * orders nodes deterministically (by node id) so that replicas agree.
 *
 * Algorithms (see placement.c for the details and their reasons):
 *   STRICT_PACK and STRICT_SPREAD are exact: they succeed whenever some
 *   placement exists (STRICT_SPREAD by bipartite matching).
 *   PACK and SPREAD are greedy, largest bundle first; when the strategy's
 *   own pass strands a bundle, a few other greedy passes (best fit, the other
 *   rule, other bundle orders) are tried before giving up, since placing
 *   the group matters more than its shape. Multi-resource bin packing is
 *   NP-hard, and these passes never undo a choice, so they can report
 *   PLACEMENT_EINFEASIBLE although a packing exists, when the free capacity
 *   would have to be split exactly (nodes of 1, 4 and 6 CPU and bundles of
 *   3,3,2,2,1 CPU: {1}, {2,2}, {3,3} fit, but every pass puts a 3 on the
 *   4-CPU node and strands a 2) or when different resources are tight on
 *   different nodes. Time is O(bundles^2 * nodes * resources) at worst,
 *   with no search; memory O(nodes * resources).
 */
#ifndef GCS_PLACEMENT_H
#define GCS_PLACEMENT_H

#include <stddef.h>

/* Ray's PlacementStrategy values. */
enum {
    PLACEMENT_PACK = 0,
    PLACEMENT_SPREAD = 1,
    PLACEMENT_STRICT_PACK = 2,
    PLACEMENT_STRICT_SPREAD = 3
};

/* where[i] of a bundle that has no node (yet, or any more). */
#define PLACEMENT_UNPLACED ((size_t)-1)

enum {
    PLACEMENT_EINFEASIBLE = -31001, /* the unplaced bundles cannot all go */
    PLACEMENT_ENOMEM = -31002,      /* scratch memory could not be had */
    PLACEMENT_EINVAL = -31003       /* the arguments contradict this API */
};

/* One named amount. @name is @name_len bytes, not necessarily terminated. */
typedef struct placement_resource {
    const char *name;
    size_t name_len;
    double amount;
} placement_resource;

/* What a node can still give: its total minus what is committed, including
 * the bundles of this group that are already placed on it. */
typedef struct placement_node {
    const placement_resource *available;
    size_t n_available;
} placement_node;

/* What one bundle needs. */
typedef struct placement_bundle {
    const placement_resource *demand;
    size_t n_demand;
} placement_bundle;

/* Place every bundle whose where[i] == PLACEMENT_UNPLACED onto an index into
 * @nodes, honouring @strategy against the bundles already placed (where[i] !=
 * PLACEMENT_UNPLACED; those stay where they are, and their demand is assumed
 * already deducted from @nodes). Bundles placed in the same call deduct from
 * each other.
 *
 * With a partly placed group (re-placement after a node died):
 *   STRICT_PACK    the unplaced bundles go on the node of the placed ones;
 *   STRICT_SPREAD  they avoid every node that holds a placed bundle;
 *   PACK           nodes the group already uses are preferred;
 *   SPREAD         nodes the group does not use yet are preferred.
 *
 * Returns 0 with where[] filled; PLACEMENT_EINFEASIBLE with where[] unchanged
 * when the unplaced bundles cannot all be placed (always so when @n_nodes is
 * 0 and a bundle is unplaced); PLACEMENT_ENOMEM with where[] unchanged; or
 * PLACEMENT_EINVAL with where[] unchanged when @strategy is unknown, a
 * where[i] is neither PLACEMENT_UNPLACED nor below @n_nodes, a pointer is
 * NULL with a non-zero count, an amount of a node or of an unplaced bundle
 * is NaN or infinite, a demand of an unplaced bundle is
 * negative (below -0.00005), or the placed bundles already break a strict
 * strategy (STRICT_PACK bundles on two nodes, two STRICT_SPREAD bundles on
 * one node). Nothing to place (no unplaced bundle) returns 0 after these
 * checks. */
int placement_place(int strategy, const placement_node *nodes, size_t n_nodes,
                    const placement_bundle *bundles, size_t n_bundles,
                    size_t *where);

#endif /* GCS_PLACEMENT_H */
