/* State-machine formats (fsm.h): each member reports what it applies, the
 * leader raises the cluster format only once every member applies the new
 * one, commands of a later format are refused until then, and a binary
 * older than its data refuses to start. Newer binaries are played with
 * --test-format-max. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "expect.h"
#include "harness.h"

static gcsd_cluster cl;

static void teardown(void)
{
    cluster_cleanup(&cl);
}

TestSuite(format, .fini = teardown, .timeout = 120);

static long long clusterFormat(int i)
{
    return cluster_status_int(&cl, i, "cluster_format");
}

/* "Upgrade" member @i: restart it as a binary that applies format 2. */
static void upgrade(int i)
{
    cluster_kill(&cl, i, SIGTERM);
    size_t len = strlen(cl.m[i].extra);
    snprintf(cl.m[i].extra + len, sizeof cl.m[i].extra - len,
             " --test-format-max 2");
    cluster_restart(&cl, i);
    cluster_wait_leader(&cl, 20000);
}

Test(format, reported_and_gated_on_one_member)
{
    cluster_start(&cl, 1, "");
    cluster_wait_leader(&cl, 10000);
    redisContext *c = cluster_connect(&cl, 0);
    redisReply *r = harness_cmd(c, "GCS.VERSION");
    cr_assert_eq(r->type, REDIS_REPLY_ARRAY);
    cr_assert_eq(r->elements, 3);
    cr_assert_eq(r->element[0]->integer, 1);
    cr_assert_eq(r->element[1]->integer, 1);
    cr_assert_eq(r->element[2]->integer, 1);
    freeReplyObject(r);
    char v[32];
    cr_assert(cluster_info_field(&cl, 0, "server", "cluster_format", v,
                                 sizeof v));
    cr_assert_str_eq(v, "1");
    cr_assert(cluster_info_field(&cl, 0, "server", "gcsd_format_max", v,
                                 sizeof v));
    cr_assert_str_eq(v, "1");
    cr_assert_eq(clusterFormat(0), 1);
    cr_assert_eq(cluster_status_int(&cl, 0, "format_max"), 1);
    r = harness_cmd(c, "GCS.CLUSTER.FORMAT 2");
    cr_assert_eq(r->type, REDIS_REPLY_ERROR);
    cr_assert(strstr(r->str, "raised by the leader") != NULL, "%s", r->str);
    freeReplyObject(r);
    r = harness_cmd(c, "GCS.TEST.FORMAT2");
    cr_assert_eq(r->type, REDIS_REPLY_ERROR);
    cr_assert_str_eq(r->str, "ERR gcs.test.format2 is for tests only; start "
                             "gcsd with --enable-test-commands");
    freeReplyObject(r);
    EXPECT_STATUS(c, "OK", "SET still works");
    redisFree(c);
    cluster_stop_all(&cl);
}

/* A rolling upgrade: the format stays 1 while any member applies only 1,
 * and is raised by the leader once the last one is upgraded; a format-2
 * command is refused until then, anywhere, and works after, anywhere. */
Test(format, raised_once_every_member_applies_it)
{
    cluster_start(&cl, 3, "--enable-test-commands");
    cluster_wait_leader(&cl, 10000);
    upgrade(2);
    upgrade(1);
    /* The leader asks every 2 s: give it several chances to get it wrong. */
    long long until = harness_now_ms() + 6000;
    while (harness_now_ms() < until) {
        for (int i = 0; i < 3; i++) {
            cr_assert_eq(clusterFormat(i), 1, "member %d: format raised while "
                         "member 1 applies only format 1", i);
        }
        harness_poll_pause(100);
    }
    for (int i = 0; i < 3; i++) {
        redisContext *c = cluster_connect(&cl, i);
        redisReply *r = harness_cmd(c, "GCS.TEST.FORMAT2");
        cr_assert_eq(r->type, REDIS_REPLY_ERROR, "member %d", i);
        cr_assert(strstr(r->str, "needs cluster format 2; the cluster runs "
                                 "format 1") != NULL, "%s", r->str);
        freeReplyObject(r);
        redisFree(c);
    }
    upgrade(0);
    long long deadline = harness_now_ms() + 30000;
    for (int i = 0; i < 3; i++) {
        while (clusterFormat(i) != 2) {
            cr_assert_lt(harness_now_ms(), deadline, "member %d: cluster "
                         "format %lld, not raised to 2", i, clusterFormat(i));
            harness_poll_pause(50);
        }
    }
    for (int i = 0; i < 3; i++) {
        redisContext *c = cluster_connect(&cl, i);
        EXPECT_STATUS(c, "OK", "GCS.TEST.FORMAT2");
        redisFree(c);
    }
    /* A binary that applies only format 1 now refuses this data. */
    cluster_kill(&cl, 0, SIGTERM);
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "%s --data-dir %s --port %d --raft-port %d "
             ">/dev/null 2>%s/refused.log", harness_gcsd_bin(), cl.m[0].dir,
             cl.m[0].port, cl.m[0].raft_port, cl.m[0].dir);
    int st = system(cmd);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 1, "status %d", st);
    char path[300], text[512] = "";
    snprintf(path, sizeof path, "%s/refused.log", cl.m[0].dir);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f);
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = '\0';
    fclose(f);
    cr_assert(strstr(text, "is of cluster format 2; this gcsd applies "
                           "state-machine formats 1 to 1: run a gcsd that "
                           "applies format 2") != NULL, "%s", text);
    cluster_restart(&cl, 0); /* the newer binary starts on it */
    cluster_wait_leader(&cl, 20000);
    cr_assert_eq(clusterFormat(0), 2);
    cluster_stop_all(&cl);
}
