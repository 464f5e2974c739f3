/* config: gcsd's settings, from command-line flags and their environment
 * twins (GCSD_<FLAG>, e.g. --data-dir and GCSD_DATA_DIR). A flag wins over its
 * environment variable; both win over the default. */
#ifndef GCS_CONFIG_H
#define GCS_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "log.h"

#define CONFIG_MAX_PEERS 16

typedef struct config_peer {
    uint64_t id;
    char address[256]; /* host:port of the member's raft endpoint */
} config_peer;

typedef struct config {
    char data_dir[1024];
    char bind[256];          /* client listener address */
    int port;                /* client port */
    int raft_port;           /* raft port; 0: client port + 10000 */
    char raft_advertise[256];/* host peers reach this member at; "" = bind */
    uint64_t id;             /* member id, >= 1 */
    config_peer peers[CONFIG_MAX_PEERS];
    size_t n_peers;
    char requirepass[512];   /* "" = no password */
    bool protected_mode;
    int log_level;           /* LOG_* */
    unsigned maxclients;
    uint64_t proto_max_bulk_len;
    uint64_t max_args;
    uint64_t map_size;       /* LMDB map size, bytes */
    unsigned election_timeout_ms;
    unsigned heartbeat_timeout_ms;
    unsigned snapshot_threshold;
    unsigned snapshot_trailing;
    char advertise[256];     /* host clients reach us at; "" = derived */
    char join[256];          /* host:port of a member to join through */
    bool redirect;           /* followers reply -MOVED, not forward */
    unsigned leader_wait_ms; /* bound on waiting for a leader */
    unsigned shutdown_drain_ms; /* bound on answering clients at SIGTERM */
    int http_port;           /* health and metrics; 0 = off */
    bool test_commands;      /* RAFT.CUT and RAFT.DELAY allowed */
    unsigned test_format_max; /* 0, or the newest format it plays (tests) */
    uint64_t health_check_period_ms;      /* node heartbeat period */
    unsigned health_check_failure_threshold; /* periods missed: dead */
    uint64_t pubsub_output_limit; /* unsent bytes past which a subscriber
                                     is disconnected; 0: no limit */
    unsigned watch_progress_ms;   /* GCS.WATCH progress notification period */
} config;

enum { CONFIG_OK = 0, CONFIG_EXIT_OK = 1, CONFIG_EUSAGE = 2 };

/* Fill @cfg from defaults, the environment and @argv. Returns CONFIG_OK,
 * CONFIG_EXIT_OK after printing --help or --version, or CONFIG_EUSAGE after
 * printing a message to stderr. */
int config_load(config *cfg, int argc, char **argv);

/* Parse "1=host:port,2=host:port" into @cfg's peers. Returns 0 or -1 with a
 * message in @err. */
int config_parse_peers(config *cfg, const char *list, char *err, size_t errlen);

#endif /* GCS_CONFIG_H */
