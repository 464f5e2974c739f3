#include "ctl_conn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool ctl_split_addr(const char *addr, char *host, size_t hostlen, int *port)
{
    const char *colon = strrchr(addr, ':');
    if (colon == NULL || colon == addr || (size_t)(colon - addr) >= hostlen) {
        return false;
    }
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (*end != '\0' || p <= 0 || p > 65535) return false;
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = '\0';
    *port = (int)p;
    return true;
}

static bool isNoAuth(const redisReply *r)
{
    return r->type == REDIS_REPLY_ERROR &&
           (strncmp(r->str, "NOAUTH", 6) == 0 ||
            strncmp(r->str, "WRONGPASS", 9) == 0);
}

bool ctl_conn_open(ctl_conn *conn, const char *host, int port,
                   const char *password, int timeout_ms)
{
    ctl_conn_close(conn);
    snprintf(conn->host, sizeof conn->host, "%s", host);
    conn->port = port;
    conn->password = password;
    conn->timeout_ms = timeout_ms;
    conn->err[0] = '\0';
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    conn->c = redisConnectWithTimeout(host, port, tv);
    if (conn->c == NULL || conn->c->err) {
        snprintf(conn->err, sizeof conn->err,
                 "cannot connect to gcsd at %s:%d: %s", host, port,
                 conn->c ? conn->c->errstr : "out of memory");
        ctl_conn_close(conn);
        return false;
    }
    redisSetTimeout(conn->c, tv);
    if (password != NULL && password[0] != '\0') {
        redisReply *r = redisCommand(conn->c, "AUTH %s", password);
        if (r == NULL) {
            snprintf(conn->err, sizeof conn->err,
                     "lost the connection to %s:%d during AUTH: %s", host,
                     port, conn->c->errstr);
            ctl_conn_close(conn);
            return false;
        }
        bool ok = r->type != REDIS_REPLY_ERROR;
        if (!ok) {
            snprintf(conn->err, sizeof conn->err,
                     "authentication failed at %s:%d: %s", host, port, r->str);
        }
        freeReplyObject(r);
        if (!ok) {
            ctl_conn_close(conn);
            return false;
        }
    }
    return true;
}

void ctl_conn_close(ctl_conn *conn)
{
    if (conn->c != NULL) redisFree(conn->c);
    conn->c = NULL;
}

redisReply *ctl_conn_cmd(ctl_conn *conn, int argc, const char **argv,
                         const size_t *lens)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        if (conn->c == NULL) {
            snprintf(conn->err, sizeof conn->err, "not connected");
            return NULL;
        }
        redisReply *r = redisCommandArgv(conn->c, argc, argv, lens);
        if (r == NULL) {
            snprintf(conn->err, sizeof conn->err,
                     "lost the connection to gcsd at %s:%d: %s", conn->host,
                     conn->port, conn->c->errstr);
            return NULL;
        }
        if (isNoAuth(r)) {
            snprintf(conn->err, sizeof conn->err,
                     "authentication required by %s:%d (%s): pass the "
                     "password with -a or GCSCTL_PASSWORD",
                     conn->host, conn->port, r->str);
            freeReplyObject(r);
            return NULL;
        }
        if (attempt == 0 && r->type == REDIS_REPLY_ERROR &&
            strncmp(r->str, "MOVED ", 6) == 0) {
            const char *addr = strchr(r->str + 6, ' ');
            char host[256];
            int port;
            if (addr != NULL &&
                ctl_split_addr(addr + 1, host, sizeof host, &port)) {
                freeReplyObject(r);
                if (!ctl_conn_open(conn, host, port, conn->password,
                                   conn->timeout_ms)) {
                    return NULL;
                }
                continue;
            }
        }
        return r;
    }
    return NULL; /* not reached */
}

redisReply *ctl_conn_cmdv(ctl_conn *conn, int argc, const char **argv)
{
    size_t lens[32];
    if (argc > 32) return NULL;
    for (int i = 0; i < argc; i++) lens[i] = strlen(argv[i]);
    return ctl_conn_cmd(conn, argc, argv, lens);
}
