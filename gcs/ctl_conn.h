/* ctl_conn: gcsctl's blocking hiredis connection: AUTH, clear messages for
 * an unreachable server or a refused password, and one -MOVED followed. */
#ifndef GCS_CTL_CONN_H
#define GCS_CTL_CONN_H

#include <stdbool.h>
#include <stddef.h>

#include <hiredis/hiredis.h>

typedef struct ctl_conn {
    redisContext *c;
    char host[256];
    int port;
    const char *password; /* NULL: none */
    int timeout_ms;
    char err[512]; /* why the last call failed */
} ctl_conn;

/* Connect to @host:@port and AUTH with @password (NULL: none). False with
 * conn->err set ("cannot connect to ...", "authentication failed ..."). */
bool ctl_conn_open(ctl_conn *conn, const char *host, int port,
                   const char *password, int timeout_ms);
void ctl_conn_close(ctl_conn *conn);

/* Run a command of @argc binary arguments. The reply, or NULL with
 * conn->err set on a connection error. A "-MOVED 0 host:port" reply is
 * followed once (the connection moves there). NOAUTH errors become NULL
 * with a message naming -a. */
redisReply *ctl_conn_cmd(ctl_conn *conn, int argc, const char **argv,
                         const size_t *lens);
/* The same for NUL-terminated arguments. */
redisReply *ctl_conn_cmdv(ctl_conn *conn, int argc, const char **argv);

/* Split "host:port" (the last colon). */
bool ctl_split_addr(const char *addr, char *host, size_t hostlen, int *port);

#endif
