/* A Ray head against a 3-member gcsd through the faults a Ray cluster has
 * (issue 14, part 5). Each scenario asserts that the simulated head
 * (ray_head.h) met no point where a real Ray head would have crashed or
 * mis-stepped, and that no acknowledged write was lost.
 *
 * Outage lengths (30 s of lost quorum) are the scenario, not
 * synchronisation: every wait for an outcome polls with a deadline. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "ray_head.h"

#define NS "4d0c51a7-8f7e-4c5e-9d1e-2f3a4b5c6d7e"
#define OUTAGE_MS 30000

static gcsd_cluster cl;
static ray_head head, head2;

static void teardown(void)
{
    cluster_cleanup(&cl);
}

TestSuite(ray_head, .fini = teardown);

static ray_head_opts optsFor(int member, bool reconnect)
{
    ray_head_opts o = {"127.0.0.1", cl.m[member].port, NULL, NS, reconnect};
    return o;
}

/* Stop @h and check everything it recorded, then read its writes back. */
static void finishHead(ray_head *h, const char *scenario)
{
    ray_head_stop(h);
    cr_log_info("%s: %lld batches, %lld job ids, %lld error replies retried, "
                "%lld reconnects (%lld re-sent), longest batch %lld ms",
                scenario, (long long)atomic_load(&h->batches), h->jobs,
                h->error_replies, h->reconnects, h->resent, h->max_batch_ms);
    cr_expect_eq(atomic_load(&h->fatal), 0,
                 "%s: a Ray head would have crashed: %s", scenario,
                 h->fatal_why);
    cr_expect_eq(atomic_load(&h->missteps), 0, "%s: a Ray head mis-stepped: "
                 "%s", scenario, h->misstep_why);
    char why[600];
    int bad = ray_head_verify(h, why, sizeof why);
    cr_expect_eq(bad, 0, "%s: %d acknowledged writes lost or wrong: %s",
                 scenario, bad, why);
}

static void waitBatches(ray_head *h, long long more, int timeout_ms,
                        const char *when)
{
    long long base = atomic_load(&h->batches);
    bool ok = ray_head_wait_batches(h, base, more, timeout_ms);
    cr_assert(ok, "the head made no progress %s (%lld batches): %s", when,
              (long long)atomic_load(&h->batches),
              atomic_load(&h->fatal) ? h->fatal_why : "no crash, no reply");
}

/* Poll through an outage of @ms: the head must not crash meanwhile. */
static void outage(ray_head *h, int ms, const char *what)
{
    long long end = harness_now_ms() + ms;
    while (harness_now_ms() < end) {
        cr_assert_eq(atomic_load(&h->fatal), 0, "%s: the head crashed: %s",
                     what, h->fatal_why);
        harness_poll_pause(50);
    }
}

/* Move leadership off member @i (the head's own: its connection would die
 * with it, as with any server). */
static int leaderOtherThan(int i)
{
    int leader = cluster_wait_leader(&cl, 20000);
    if (leader != i) return leader;
    redisContext *c = cluster_connect(&cl, i);
    int to = (i + 1) % cl.n;
    redisReply *r = harness_cmd(c, "RAFT.TRANSFER %u", cluster_id(&cl, to));
    freeReplyObject(r);
    redisFree(c);
    long long deadline = harness_now_ms() + 20000;
    while ((leader = cluster_find_leader(&cl, 2000)) == i || leader < 0) {
        cr_assert_lt(harness_now_ms(), deadline, "leadership stays on %d", i);
        harness_poll_pause(20);
    }
    return leader;
}

/* (a) Steady load while the leader is killed (kill -9) ten times. */
Test(ray_head, leader_killed_ten_times, .timeout = 300)
{
    cluster_start(&cl, 3, "");
    int home = (cluster_wait_leader(&cl, 10000) + 1) % 3;
    ray_head_opts o = optsFor(home, false);
    ray_head_start(&head, &o, "session_a");
    waitBatches(&head, 50, 30000, "at start");
    for (int round = 0; round < 10; round++) {
        int leader = leaderOtherThan(home);
        cluster_kill(&cl, leader, SIGKILL);
        waitBatches(&head, 20, 30000, "after the leader was killed");
        cluster_restart(&cl, leader);
        cluster_wait_leader(&cl, 20000);
    }
    finishHead(&head, "leader killed 10 times");
    cluster_stop_all(&cl);
}

/* (b) The head starts while the cluster has no quorum, for 30 s. */
Test(ray_head, starts_without_quorum, .timeout = 180)
{
    cluster_start(&cl, 3, "");
    cluster_wait_leader(&cl, 10000);
    int home = 0;
    cluster_kill(&cl, 1, SIGKILL);
    cluster_kill(&cl, 2, SIGKILL);
    ray_head_opts o = optsFor(home, false);
    ray_head_start(&head, &o, "session_b");
    outage(&head, OUTAGE_MS, "no quorum at the head's start");
    cr_assert_eq(atomic_load(&head.connected), 0,
                 "the head's handshake completed without a quorum");
    cluster_restart(&cl, 1);
    cluster_restart(&cl, 2);
    waitBatches(&head, 50, 30000, "once quorum returned");
    finishHead(&head, "start without quorum");
    cluster_stop_all(&cl);
}

/* (c) Quorum lost for 30 s mid-run; the head talks to the leader, which
 * is left alone with writes in flight. */
Test(ray_head, quorum_lost_mid_run, .timeout = 180)
{
    cluster_start(&cl, 3, "");
    int home = cluster_wait_leader(&cl, 10000);
    ray_head_opts o = optsFor(home, false);
    ray_head_start(&head, &o, "session_c");
    waitBatches(&head, 50, 30000, "at start");
    for (int i = 0; i < 3; i++) {
        if (i != home) cluster_kill(&cl, i, SIGKILL);
    }
    long long before = atomic_load(&head.batches);
    outage(&head, OUTAGE_MS, "quorum lost");
    cr_assert_leq(atomic_load(&head.batches), before + 1,
                  "writes were acknowledged without a quorum");
    for (int i = 0; i < 3; i++) {
        if (i != home) cluster_restart(&cl, i);
    }
    waitBatches(&head, 50, 30000, "once quorum returned");
    finishHead(&head, "quorum lost mid-run");
    cluster_stop_all(&cl);
}

/* (d) A rolling restart of every member, highest ordinal first, as a
 * StatefulSet update does. The head's own member restarts too, so its
 * connection closes, as any server's would: this head is the newer Ray that
 * reconnects in place. */
Test(ray_head, rolling_restart, .timeout = 240)
{
    cluster_start(&cl, 3, "");
    cluster_wait_leader(&cl, 10000);
    ray_head_opts o = optsFor(0, true);
    ray_head_start(&head, &o, "session_d");
    waitBatches(&head, 50, 30000, "at start");
    for (int i = 2; i >= 0; i--) {
        cluster_kill(&cl, i, SIGTERM);
        cluster_restart(&cl, i);
        cluster_wait_leader(&cl, 20000);
        waitBatches(&head, 30, 30000, "after a member restarted");
    }
    finishHead(&head, "rolling restart");
    cr_expect_geq(head.reconnects, 1, "its member restarted: the head "
                  "reconnected");
    cluster_stop_all(&cl);
}

/* (f) The head restarts during a failover: `ray start`'s session-name check
 * must find the stored name (RedisGetKeySync has 1 s for its HGET). */
Test(ray_head, restarts_during_failover, .timeout = 240)
{
    cluster_start(&cl, 3, "");
    int home = (cluster_wait_leader(&cl, 10000) + 1) % 3;
    ray_head_opts o = optsFor(home, false);
    for (int round = 0; round < 3; round++) {
        ray_head_start(&head, &o, "session_f");
        waitBatches(&head, 30, 30000, "before the failover");
        finishHead(&head, "first head");
        int leader = leaderOtherThan(home);
        cluster_kill(&cl, leader, SIGKILL);
        /* The head pod comes back at once, in the middle of the election. */
        ray_head_start(&head2, &o, "session_new");
        waitBatches(&head2, 30, 30000, "after the restart in a failover");
        cr_assert_str_eq(head2.session, "session_f",
                         "ray start settled on another session name");
        finishHead(&head2, "head restarted in a failover");
        cluster_restart(&cl, leader);
        cluster_wait_leader(&cl, 20000);
    }
    cluster_stop_all(&cl);
}
