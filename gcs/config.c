#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#ifndef GCSD_VERSION
#define GCSD_VERSION "0.1.0"
#endif

enum {
    OPT_DATA_DIR = 1000, OPT_BIND, OPT_PORT, OPT_RAFT_PORT, OPT_RAFT_ADVERTISE,
    OPT_ID, OPT_PEERS, OPT_REQUIREPASS, OPT_PROTECTED, OPT_LOG_LEVEL,
    OPT_MAXCLIENTS, OPT_MAX_BULK, OPT_MAX_ARGS, OPT_MAP_SIZE, OPT_ELECTION,
    OPT_HEARTBEAT, OPT_SNAPSHOT_THRESHOLD, OPT_JOIN, OPT_REDIRECT,
    OPT_LEADER_WAIT, OPT_ADVERTISE, OPT_HTTP_PORT, OPT_SNAPSHOT_TRAILING,
    OPT_HEALTH_PERIOD, OPT_HEALTH_THRESHOLD, OPT_TEST_COMMANDS,
    OPT_PUBSUB_LIMIT, OPT_WATCH_PROGRESS, OPT_TEST_FORMAT_MAX, OPT_DRAIN,
    OPT_HELP, OPT_VERSION,
};

/* One row per flag: the long name, its environment twin, and its help. */
typedef struct option_doc {
    int code;
    const char *name;
    const char *env;
    const char *arg;
    const char *help;
} option_doc;

static const option_doc docs[] = {
    {OPT_DATA_DIR, "data-dir", "GCSD_DATA_DIR", "DIR",
     "state and raft log directory (default ./data)"},
    {OPT_BIND, "bind", "GCSD_BIND", "ADDR",
     "client listen address (default 127.0.0.1)"},
    {OPT_PORT, "port", "GCSD_PORT", "N", "client port (default 6379)"},
    {OPT_RAFT_PORT, "raft-port", "GCSD_RAFT_PORT", "N",
     "raft port (default: client port + 10000)"},
    {OPT_RAFT_ADVERTISE, "raft-advertise", "GCSD_RAFT_ADVERTISE", "HOST",
     "host other members reach this one at (default: the bind address)"},
    {OPT_ID, "id", "GCSD_ID", "N", "raft member id, >= 1 (default 1)"},
    {OPT_PEERS, "peers", "GCSD_PEERS", "LIST",
     "initial members, \"1=host:raftport,2=...\" (default: this one alone)"},
    {OPT_REQUIREPASS, "requirepass", "GCSD_REQUIREPASS", "PW",
     "require AUTH with this password"},
    {OPT_PROTECTED, "protected-mode", "GCSD_PROTECTED_MODE", "yes|no",
     "without a password, accept only loopback clients (default yes)"},
    {OPT_LOG_LEVEL, "log-level", "GCSD_LOG_LEVEL", "LEVEL",
     "debug, info, notice or warning (default notice)"},
    {OPT_MAXCLIENTS, "maxclients", "GCSD_MAXCLIENTS", "N",
     "maximum connected clients (default 10000)"},
    {OPT_MAX_BULK, "proto-max-bulk-len", "GCSD_PROTO_MAX_BULK_LEN", "BYTES",
     "largest accepted bulk string (default 512mb)"},
    {OPT_MAX_ARGS, "max-args", "GCSD_MAX_ARGS", "N",
     "most arguments in one command (default 1048576)"},
    {OPT_MAP_SIZE, "map-size", "GCSD_MAP_SIZE", "BYTES",
     "maximum state size on disk (default 32gb)"},
    {OPT_ELECTION, "election-timeout", "GCSD_ELECTION_TIMEOUT", "MS",
     "raft election timeout (default 1000)"},
    {OPT_HEARTBEAT, "heartbeat-timeout", "GCSD_HEARTBEAT_TIMEOUT", "MS",
     "raft heartbeat interval (default 100)"},
    {OPT_SNAPSHOT_THRESHOLD, "snapshot-threshold", "GCSD_SNAPSHOT_THRESHOLD",
     "N", "log entries between snapshots (default 4096)"},
    {OPT_SNAPSHOT_TRAILING, "snapshot-trailing", "GCSD_SNAPSHOT_TRAILING",
     "N", "log entries kept behind a snapshot for lagging members "
     "(default 8192)"},
    {OPT_ADVERTISE, "advertise", "GCSD_ADVERTISE", "HOST",
     "host clients and members reach this one's client port at (default: "
     "--raft-advertise, else the bind address)"},
    {OPT_JOIN, "join", "GCSD_JOIN", "HOST:PORT",
     "join a running cluster through any member's client address (instead "
     "of --peers)"},
    {OPT_REDIRECT, "redirect", "GCSD_REDIRECT", NULL,
     "followers answer -MOVED to the leader instead of forwarding"},
    {OPT_DRAIN, "shutdown-drain-ms", "GCSD_SHUTDOWN_DRAIN_MS", "MS",
     "on SIGTERM, how long to keep answering what clients already sent "
     "before closing their connections (default 5000)"},
    {OPT_LEADER_WAIT, "leader-wait-ms", "GCSD_LEADER_WAIT_MS", "MS",
     "how long a command waits for a leader before -TRYAGAIN (default 60000; "
     "a write whose outcome is unknown waits up to 4 minutes)"},
    {OPT_HTTP_PORT, "http-port", "GCSD_HTTP_PORT", "N",
     "serve /livez, /readyz and /metrics over HTTP on the bind address "
     "(default 0: off)"},
    {OPT_HEALTH_PERIOD, "health-check-period-ms", "GCSD_HEALTH_CHECK_PERIOD_MS",
     "MS", "node heartbeat period the leader checks at (default 3000)"},
    {OPT_HEALTH_THRESHOLD, "health-check-failure-threshold",
     "GCSD_HEALTH_CHECK_FAILURE_THRESHOLD", "N",
     "periods without a heartbeat before a node is dead (default 5)"},
    {OPT_TEST_COMMANDS, "enable-test-commands", "GCSD_ENABLE_TEST_COMMANDS",
     NULL, "allow RAFT.CUT and RAFT.DELAY, which fake network partitions and slow links (tests only)"},
    {OPT_TEST_FORMAT_MAX, "test-format-max", "GCSD_TEST_FORMAT_MAX", "N",
     "play a binary that applies state-machine formats up to N (tests of "
     "upgrades only; needs --enable-test-commands)"},
    {OPT_PUBSUB_LIMIT, "pubsub-output-limit", "GCSD_PUBSUB_OUTPUT_LIMIT",
     "BYTES", "disconnect a subscriber or watcher whose unsent output "
     "passes this (default 32mb; 0: no limit)"},
    {OPT_WATCH_PROGRESS, "watch-progress-ms", "GCSD_WATCH_PROGRESS_MS", "MS",
     "period of GCS.WATCH progress notifications (default 1000)"},
    {OPT_HELP, "help", NULL, NULL, "show this help and exit"},
    {OPT_VERSION, "version", NULL, NULL, "show the version and exit"},
};
#define N_DOCS (sizeof docs / sizeof docs[0])

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: gcsd [OPTIONS]\n"
            "gcsd: a fault-tolerant control-plane store for Ray, speaking the "
            "Redis protocol.\n\nOptions (each also read from the environment "
            "variable shown):\n");
    for (size_t i = 0; i < N_DOCS; i++) {
        char left[64];
        snprintf(left, sizeof left, "--%s%s%s", docs[i].name,
                 docs[i].arg ? " " : "", docs[i].arg ? docs[i].arg : "");
        fprintf(out, "  %-30s %s%s%s%s\n", left, docs[i].help,
                docs[i].env ? " [" : "", docs[i].env ? docs[i].env : "",
                docs[i].env ? "]" : "");
    }
    fprintf(out, "\nA member started without --peers is a one-voter raft "
                 "group, bootstrapped on its first start.\n");
}

/* Parse an unsigned size with an optional k/kb/m/mb/g/gb suffix (Redis's
 * memtoll units: k=1000, kb=1024, ...). */
static int parseSize(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *s == '-') return -1;
    uint64_t mul = 1;
    if (*end != '\0') {
        static const struct { const char *u; uint64_t m; } units[] = {
            {"b", 1}, {"k", 1000}, {"kb", 1024}, {"m", 1000000},
            {"mb", 1024 * 1024}, {"g", 1000000000ULL},
            {"gb", 1024ULL * 1024 * 1024},
        };
        size_t i;
        for (i = 0; i < sizeof units / sizeof units[0]; i++) {
            if (strcasecmp(end, units[i].u) == 0) break;
        }
        if (i == sizeof units / sizeof units[0]) return -1;
        mul = units[i].m;
    }
    if (v != 0 && mul > UINT64_MAX / v) return -1;
    *out = v * mul;
    return 0;
}

static int parseUnsigned(const char *s, uint64_t max, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || *s == '-' || v > max) {
        return -1;
    }
    *out = v;
    return 0;
}

static int copyString(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    if (n >= cap) return -1;
    memcpy(dst, src, n + 1);
    return 0;
}

int config_parse_peers(config *cfg, const char *list, char *err, size_t errlen)
{
    cfg->n_peers = 0;
    const char *p = list;
    while (*p != '\0') {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char item[300];
        if (len == 0 || len >= sizeof item) {
            snprintf(err, errlen, "bad peer entry in '%s'", list);
            return -1;
        }
        memcpy(item, p, len);
        item[len] = '\0';
        char *eq = strchr(item, '=');
        uint64_t id;
        if (eq == NULL) {
            snprintf(err, errlen, "peer '%s' is not ID=HOST:PORT", item);
            return -1;
        }
        *eq = '\0';
        if (parseUnsigned(item, UINT32_MAX, &id) != 0 || id == 0) {
            snprintf(err, errlen, "peer id '%s' is not an integer >= 1", item);
            return -1;
        }
        const char *addr = eq + 1;
        const char *colon = strrchr(addr, ':');
        uint64_t port;
        if (colon == NULL || colon == addr ||
            parseUnsigned(colon + 1, 65535, &port) != 0 || port == 0) {
            snprintf(err, errlen, "peer address '%s' is not HOST:PORT", addr);
            return -1;
        }
        for (size_t i = 0; i < cfg->n_peers; i++) {
            if (cfg->peers[i].id == id) {
                snprintf(err, errlen, "peer id %" PRIu64 " appears twice", id);
                return -1;
            }
        }
        if (cfg->n_peers == CONFIG_MAX_PEERS) {
            snprintf(err, errlen, "at most %d peers", CONFIG_MAX_PEERS);
            return -1;
        }
        cfg->peers[cfg->n_peers].id = id;
        if (copyString(cfg->peers[cfg->n_peers].address,
                       sizeof cfg->peers[0].address, addr) != 0) {
            snprintf(err, errlen, "peer address '%s' too long", addr);
            return -1;
        }
        cfg->n_peers++;
        p += len;
        if (*p == ',') p++;
    }
    return 0;
}

/* Apply one setting; @origin names where it came from, for messages. */
static int applyOption(config *cfg, int code, const char *val,
                       const char *origin)
{
    uint64_t v;
    char err[256];
    switch (code) {
        case OPT_DATA_DIR:
            if (copyString(cfg->data_dir, sizeof cfg->data_dir, val) != 0 ||
                *val == '\0') goto bad;
            return 0;
        case OPT_BIND:
            if (copyString(cfg->bind, sizeof cfg->bind, val) != 0) goto bad;
            return 0;
        case OPT_PORT:
            if (parseUnsigned(val, 65535, &v) != 0 || v == 0) goto bad;
            cfg->port = (int)v;
            return 0;
        case OPT_RAFT_PORT:
            if (parseUnsigned(val, 65535, &v) != 0) goto bad;
            cfg->raft_port = (int)v;
            return 0;
        case OPT_RAFT_ADVERTISE:
            if (copyString(cfg->raft_advertise, sizeof cfg->raft_advertise,
                           val) != 0) goto bad;
            return 0;
        case OPT_ID:
            if (parseUnsigned(val, UINT32_MAX, &v) != 0 || v == 0) goto bad;
            cfg->id = v;
            return 0;
        case OPT_PEERS:
            if (config_parse_peers(cfg, val, err, sizeof err) != 0) {
                fprintf(stderr, "gcsd: %s: %s\n", origin, err);
                return -1;
            }
            return 0;
        case OPT_REQUIREPASS:
            if (copyString(cfg->requirepass, sizeof cfg->requirepass, val) !=
                0) goto bad;
            return 0;
        case OPT_PROTECTED:
            if (strcasecmp(val, "yes") == 0) cfg->protected_mode = true;
            else if (strcasecmp(val, "no") == 0) cfg->protected_mode = false;
            else goto bad;
            return 0;
        case OPT_LOG_LEVEL: {
            int l = log_level_parse(val);
            if (l < 0) goto bad;
            cfg->log_level = l;
            return 0;
        }
        case OPT_MAXCLIENTS:
            if (parseUnsigned(val, 1000000, &v) != 0 || v == 0) goto bad;
            cfg->maxclients = (unsigned)v;
            return 0;
        case OPT_MAX_BULK:
            if (parseSize(val, &v) != 0 || v < 1024) goto bad;
            cfg->proto_max_bulk_len = v;
            return 0;
        case OPT_MAX_ARGS:
            if (parseUnsigned(val, 1ULL << 31, &v) != 0 || v < 8) goto bad;
            cfg->max_args = v;
            return 0;
        case OPT_MAP_SIZE:
            if (parseSize(val, &v) != 0 || v < (1u << 20)) goto bad;
            cfg->map_size = v;
            return 0;
        case OPT_ELECTION:
            if (parseUnsigned(val, 600000, &v) != 0 || v < 50) goto bad;
            cfg->election_timeout_ms = (unsigned)v;
            return 0;
        case OPT_HEARTBEAT:
            if (parseUnsigned(val, 60000, &v) != 0 || v < 10) goto bad;
            cfg->heartbeat_timeout_ms = (unsigned)v;
            return 0;
        case OPT_SNAPSHOT_THRESHOLD:
            if (parseUnsigned(val, 1u << 30, &v) != 0 || v < 2) goto bad;
            cfg->snapshot_threshold = (unsigned)v;
            return 0;
        case OPT_ADVERTISE:
            if (copyString(cfg->advertise, sizeof cfg->advertise, val) != 0)
                goto bad;
            return 0;
        case OPT_JOIN:
            if (copyString(cfg->join, sizeof cfg->join, val) != 0 ||
                strchr(val, ':') == NULL) goto bad;
            return 0;
        case OPT_REDIRECT:
            /* A bare flag; its environment twin says yes or no. */
            if (val == NULL || strcasecmp(val, "yes") == 0 ||
                strcmp(val, "1") == 0) cfg->redirect = true;
            else if (strcasecmp(val, "no") == 0 || strcmp(val, "0") == 0)
                cfg->redirect = false;
            else goto bad;
            return 0;
        case OPT_SNAPSHOT_TRAILING:
            if (parseUnsigned(val, 1u << 30, &v) != 0 || v < 1) goto bad;
            cfg->snapshot_trailing = (unsigned)v;
            return 0;
        case OPT_TEST_COMMANDS:
            if (val == NULL || strcasecmp(val, "yes") == 0 ||
                strcmp(val, "1") == 0) cfg->test_commands = true;
            else if (strcasecmp(val, "no") == 0 || strcmp(val, "0") == 0)
                cfg->test_commands = false;
            else goto bad;
            return 0;
        case OPT_DRAIN:
            if (parseUnsigned(val, 600000, &v) != 0) goto bad;
            cfg->shutdown_drain_ms = (unsigned)v;
            return 0;
        case OPT_TEST_FORMAT_MAX:
            if (parseUnsigned(val, 64, &v) != 0 || v < 1) goto bad;
            cfg->test_format_max = (unsigned)v;
            return 0;
        case OPT_HTTP_PORT:
            if (parseUnsigned(val, 65535, &v) != 0) goto bad;
            cfg->http_port = (int)v;
            return 0;
        case OPT_LEADER_WAIT:
            if (parseUnsigned(val, 600000, &v) != 0) goto bad;
            cfg->leader_wait_ms = (unsigned)v;
            return 0;
        case OPT_HEALTH_PERIOD:
            if (parseUnsigned(val, 3600000, &v) != 0 || v < 10) goto bad;
            cfg->health_check_period_ms = v;
            return 0;
        case OPT_PUBSUB_LIMIT:
            if (parseSize(val, &v) != 0) goto bad;
            cfg->pubsub_output_limit = v;
            return 0;
        case OPT_WATCH_PROGRESS:
            if (parseUnsigned(val, 3600000, &v) != 0 || v < 10) goto bad;
            cfg->watch_progress_ms = (unsigned)v;
            return 0;
        case OPT_HEALTH_THRESHOLD:
            if (parseUnsigned(val, 1000, &v) != 0 || v < 1) goto bad;
            cfg->health_check_failure_threshold = (unsigned)v;
            return 0;
        default:
            return -1;
    }
bad:
    fprintf(stderr, "gcsd: invalid value '%s' for %s\n", val, origin);
    return -1;
}

static void setDefaults(config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    strcpy(cfg->data_dir, "./data");
    strcpy(cfg->bind, "127.0.0.1");
    cfg->port = 6379;
    cfg->id = 1;
    cfg->protected_mode = true;
    cfg->log_level = LOG_NOTICE;
    cfg->maxclients = 10000;
    cfg->proto_max_bulk_len = 512ULL * 1024 * 1024;
    cfg->max_args = 1024 * 1024;
    cfg->map_size = 32ULL * 1024 * 1024 * 1024;
    cfg->election_timeout_ms = 1000;
    cfg->heartbeat_timeout_ms = 100;
    cfg->snapshot_threshold = 4096;
    cfg->snapshot_trailing = 8192;
    cfg->leader_wait_ms = 60000;
    cfg->shutdown_drain_ms = 5000;
    /* Ray's health_check_period_ms and health_check_failure_threshold. */
    cfg->health_check_period_ms = 3000;
    cfg->health_check_failure_threshold = 5;
    cfg->pubsub_output_limit = 32ULL * 1024 * 1024;
    cfg->watch_progress_ms = 1000;
}

int config_load(config *cfg, int argc, char **argv)
{
    setDefaults(cfg);

    for (size_t i = 0; i < N_DOCS; i++) {
        const char *val = docs[i].env ? getenv(docs[i].env) : NULL;
        if (val != NULL && *val != '\0' &&
            applyOption(cfg, docs[i].code, val, docs[i].env) != 0) {
            return CONFIG_EUSAGE;
        }
    }

    struct option longopts[N_DOCS + 1];
    for (size_t i = 0; i < N_DOCS; i++) {
        longopts[i].name = docs[i].name;
        longopts[i].has_arg = docs[i].arg ? required_argument : no_argument;
        longopts[i].flag = NULL;
        longopts[i].val = docs[i].code;
    }
    memset(&longopts[N_DOCS], 0, sizeof longopts[N_DOCS]);

    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        if (c == 'h' || c == OPT_HELP) {
            usage(stdout);
            return CONFIG_EXIT_OK;
        }
        if (c == OPT_VERSION) {
            printf("gcsd %s\n", GCSD_VERSION);
            return CONFIG_EXIT_OK;
        }
        if (c == '?' || c == ':') {
            fprintf(stderr, "gcsd: unknown or incomplete option '%s'\n"
                            "Try 'gcsd --help'.\n", argv[optind - 1]);
            return CONFIG_EUSAGE;
        }
        char origin[80];
        for (size_t i = 0; i < N_DOCS; i++) {
            if (docs[i].code == c) snprintf(origin, sizeof origin, "--%s",
                                            docs[i].name);
        }
        if (applyOption(cfg, c, optarg, origin) != 0) return CONFIG_EUSAGE;
    }
    if (optind < argc) {
        fprintf(stderr, "gcsd: unexpected argument '%s'\nTry 'gcsd --help'.\n",
                argv[optind]);
        return CONFIG_EUSAGE;
    }
    if (cfg->raft_port == 0) {
        if (cfg->port + 10000 > 65535) {
            fprintf(stderr, "gcsd: set --raft-port (port + 10000 > 65535)\n");
            return CONFIG_EUSAGE;
        }
        cfg->raft_port = cfg->port + 10000;
    }
    if (cfg->join[0] != '\0' && cfg->n_peers > 0) {
        fprintf(stderr, "gcsd: --join and --peers exclude each other\n");
        return CONFIG_EUSAGE;
    }
    if (cfg->test_format_max != 0 && !cfg->test_commands) {
        fprintf(stderr, "gcsd: --test-format-max needs "
                        "--enable-test-commands\n");
        return CONFIG_EUSAGE;
    }
    if (cfg->n_peers > 0) {
        bool self = false;
        for (size_t i = 0; i < cfg->n_peers; i++) {
            if (cfg->peers[i].id == cfg->id) self = true;
        }
        if (!self) {
            fprintf(stderr, "gcsd: --peers does not list this member's id "
                            "%" PRIu64 "\n", cfg->id);
            return CONFIG_EUSAGE;
        }
    }
    return CONFIG_OK;
}
