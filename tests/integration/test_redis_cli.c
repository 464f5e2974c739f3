/* redis-cli against gcsd: one-shot commands, interactive start (COMMAND DOCS),
 * --scan, and a large pipe of commands, with the output redis-cli prints. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

HARNESS_SERVER_SUITE(redis_cli, "", 120);

static void expectCli(const char *args, const char *want)
{
    char *out = harness_redis_cli(&srv, args);
    cr_assert_str_eq(out, want, "redis-cli %s", args);
    free(out);
}

Test(redis_cli, one_shot)
{
    expectCli("PING", "PONG\n");
    expectCli("SET greeting hello", "OK\n");
    expectCli("GET greeting", "hello\n");
    expectCli("GET nosuch", "\n");
    expectCli("INCRBY n 5", "5\n");
    expectCli("HSET h a 1 b 2", "2\n");
    expectCli("HMGET h b a x", "2\n1\n\n");
    expectCli("TYPE h", "hash\n");
    expectCli("HGET greeting x",
              "WRONGTYPE Operation against a key holding the wrong kind of "
              "value\n\n");
    expectCli("DBSIZE", "3\n");
    expectCli("INFO CLUSTER", "# Cluster\r\ncluster_enabled:0\r\n");
}

/* Interactive mode: redis-cli fetches COMMAND DOCS at start, then reads
 * commands from stdin; it must start without complaint. */
Test(redis_cli, interactive)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "printf 'SET k v\\nGET k\\nDEL k\\nEXISTS k\\n' | "
             "redis-cli -h 127.0.0.1 -p %d 2>&1", srv.port);
    FILE *f = popen(cmd, "r");
    char out[512] = {0};
    size_t n = fread(out, 1, sizeof out - 1, f);
    pclose(f);
    out[n] = '\0';
    cr_assert_str_eq(out, "OK\nv\n1\n0\n");
}

Test(redis_cli, scan_and_pipe)
{
    /* --pipe sends raw protocol; 2,000 SETs then --scan lists them. */
    char path[300];
    snprintf(path, sizeof path, "%s/pipe.txt", srv.dir);
    FILE *f = fopen(path, "w");
    for (int i = 0; i < 2000; i++) {
        fprintf(f, "*3\r\n$3\r\nSET\r\n$%d\r\nk%d\r\n$1\r\nv\r\n",
                (int)snprintf(NULL, 0, "k%d", i) , i);
    }
    fclose(f);
    char args[400];
    snprintf(args, sizeof args, "--pipe < %s", path);
    char *out = harness_redis_cli(&srv, args);
    cr_assert_not_null(strstr(out, "errors: 0, replies: 2000"), "%s", out);
    free(out);
    out = harness_redis_cli(&srv, "--scan --pattern 'k1*' | sort | wc -l");
    cr_assert_eq(atoi(out), 1111); /* k1, k10-k19, k100-k199, k1000-k1999 */
    free(out);
    expectCli("DBSIZE", "2000\n");
}
