/* Flags, their environment twins, defaults and validation. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

static void clearEnv(void)
{
    const char *vars[] = {"GCSD_DATA_DIR", "GCSD_BIND", "GCSD_PORT",
                          "GCSD_RAFT_PORT", "GCSD_ID", "GCSD_PEERS",
                          "GCSD_REQUIREPASS", "GCSD_PROTECTED_MODE",
                          "GCSD_LOG_LEVEL", "GCSD_MAXCLIENTS",
                          "GCSD_PROTO_MAX_BULK_LEN", "GCSD_MAP_SIZE",
                          "GCSD_HEALTH_CHECK_PERIOD_MS",
                          "GCSD_HEALTH_CHECK_FAILURE_THRESHOLD"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        unsetenv(vars[i]);
    }
}

static int load(config *cfg, int argc, char **argv)
{
    return config_load(cfg, argc, argv);
}

TestSuite(config, .init = clearEnv);

Test(config, defaults)
{
    config cfg;
    char *argv[] = {"gcsd", NULL};
    cr_assert_eq(load(&cfg, 1, argv), CONFIG_OK);
    cr_assert_str_eq(cfg.data_dir, "./data");
    cr_assert_str_eq(cfg.bind, "127.0.0.1");
    cr_assert_eq(cfg.port, 6379);
    cr_assert_eq(cfg.raft_port, 16379);
    cr_assert_eq(cfg.id, 1);
    cr_assert_eq(cfg.n_peers, 0);
    cr_assert(cfg.protected_mode);
    cr_assert_eq(cfg.proto_max_bulk_len, 512ULL << 20);
    cr_assert_eq(cfg.log_level, LOG_NOTICE);
}

Test(config, flags_win_over_environment)
{
    setenv("GCSD_PORT", "7000", 1);
    setenv("GCSD_DATA_DIR", "/tmp/from-env", 1);
    setenv("GCSD_REQUIREPASS", "envpw", 1);
    setenv("GCSD_PROTO_MAX_BULK_LEN", "1mb", 1);
    config cfg;
    char *argv[] = {"gcsd", "--port", "7100", "--log-level", "debug", NULL};
    cr_assert_eq(load(&cfg, 5, argv), CONFIG_OK);
    cr_assert_eq(cfg.port, 7100);
    cr_assert_eq(cfg.raft_port, 17100);
    cr_assert_str_eq(cfg.data_dir, "/tmp/from-env");
    cr_assert_str_eq(cfg.requirepass, "envpw");
    cr_assert_eq(cfg.proto_max_bulk_len, 1024 * 1024);
    cr_assert_eq(cfg.log_level, LOG_DEBUG);
}

Test(config, peers)
{
    config cfg;
    char *argv[] = {"gcsd", "--id", "2", "--peers",
                    "1=gcsd-0.gcsd:16379,2=127.0.0.1:16380,3=[::1]:16381",
                    NULL};
    cr_assert_eq(load(&cfg, 5, argv), CONFIG_OK);
    cr_assert_eq(cfg.n_peers, 3);
    cr_assert_eq(cfg.peers[0].id, 1);
    cr_assert_str_eq(cfg.peers[0].address, "gcsd-0.gcsd:16379");
    cr_assert_str_eq(cfg.peers[2].address, "[::1]:16381");

    char err[256];
    const char *bad[] = {"1=a:1,1=b:2", "0=a:1", "x=a:1", "1=a", "1=a:0",
                         "1=a:70000", "1=", ",", "1=a:1,,2=b:2"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_assert_eq(config_parse_peers(&cfg, bad[i], err, sizeof err), -1,
                     "accepted '%s'", bad[i]);
        cr_assert_gt(strlen(err), 0);
    }
}

Test(config, rejects_bad_values)
{
    const char *cases[][3] = {
        {"--port", "0", NULL},        {"--port", "65536", NULL},
        {"--port", "12x", NULL},      {"--id", "0", NULL},
        {"--protected-mode", "maybe", NULL},
        {"--log-level", "loud", NULL}, {"--map-size", "10kb", NULL},
        {"--proto-max-bulk-len", "-5", NULL},
        {"--maxclients", "0", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        config cfg;
        char *argv[] = {"gcsd", (char *)cases[i][0], (char *)cases[i][1], NULL};
        cr_assert_eq(load(&cfg, 3, argv), CONFIG_EUSAGE, "%s %s accepted",
                     cases[i][0], cases[i][1]);
    }
    config cfg;
    char *unknown[] = {"gcsd", "--nope", NULL};
    cr_assert_eq(load(&cfg, 2, unknown), CONFIG_EUSAGE);
    char *stray[] = {"gcsd", "extra", NULL};
    cr_assert_eq(load(&cfg, 2, stray), CONFIG_EUSAGE);
    /* --peers must list this member's own id. */
    char *notSelf[] = {"gcsd", "--id", "4", "--peers", "1=a:1,2=b:2", NULL};
    cr_assert_eq(load(&cfg, 5, notSelf), CONFIG_EUSAGE);
    setenv("GCSD_PORT", "abc", 1);
    char *plain[] = {"gcsd", NULL};
    cr_assert_eq(load(&cfg, 1, plain), CONFIG_EUSAGE);
}

Test(config, help_and_version_exit_ok)
{
    config cfg;
    char *help[] = {"gcsd", "--help", NULL};
    cr_assert_eq(load(&cfg, 2, help), CONFIG_EXIT_OK);
    char *version[] = {"gcsd", "--version", NULL};
    cr_assert_eq(load(&cfg, 2, version), CONFIG_EXIT_OK);
}

/* Node health checking: Ray's defaults, flags, environment twins, limits. */
Test(config, health_check_settings)
{
    config cfg;
    char *none[] = {"gcsd", NULL};
    cr_assert_eq(load(&cfg, 1, none), CONFIG_OK);
    cr_assert_eq(cfg.health_check_period_ms, 3000);
    cr_assert_eq(cfg.health_check_failure_threshold, 5);
    cr_assert_eq(cfg.leader_wait_ms, 60000);
    cr_assert_eq(cfg.shutdown_drain_ms, 5000);

    setenv("GCSD_HEALTH_CHECK_PERIOD_MS", "250", 1);
    setenv("GCSD_HEALTH_CHECK_FAILURE_THRESHOLD", "7", 1);
    cr_assert_eq(load(&cfg, 1, none), CONFIG_OK);
    cr_assert_eq(cfg.health_check_period_ms, 250);
    cr_assert_eq(cfg.health_check_failure_threshold, 7);

    char *flags[] = {"gcsd", "--health-check-period-ms", "100",
                     "--health-check-failure-threshold", "2", NULL};
    cr_assert_eq(load(&cfg, 5, flags), CONFIG_OK);
    cr_assert_eq(cfg.health_check_period_ms, 100);
    cr_assert_eq(cfg.health_check_failure_threshold, 2);

    char *zero[] = {"gcsd", "--health-check-failure-threshold", "0", NULL};
    cr_assert_eq(load(&cfg, 3, zero), CONFIG_EUSAGE);
    char *fast[] = {"gcsd", "--health-check-period-ms", "5", NULL};
    cr_assert_eq(load(&cfg, 3, fast), CONFIG_EUSAGE);
}
