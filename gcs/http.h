/* http: the health and metrics endpoint for orchestrators (Kubernetes
 * probes, Prometheus), on its own port, on the server's loop.
 *
 *   GET /livez    200 while the process and its loop run (never depends on
 *                 quorum: restarting a member does not bring quorum back)
 *   GET /readyz   200 when this member can serve: not fail-stopped, a leader
 *                 is known, it is in the configuration and has applied
 *                 nearly everything committed; else 503 with the reason
 *   GET /metrics  Prometheus text format
 *
 * One request per connection (the response closes it); requests larger than
 * 8 KiB or slower than 5 s are dropped.
 */
#ifndef GCS_HTTP_H
#define GCS_HTTP_H

#include <stdbool.h>

#include "server.h"

typedef struct http_server http_server;

/* Listen on @bind:@port. *out is freed by http_close(). 0, or -1 with a
 * message in @err. */
int http_start(server *srv, const char *bind, int port, http_server **out,
               char *err, size_t errlen);

/* Stop listening and close open connections; frees @h once closed. */
void http_close(http_server *h);

/* What a request asks for. */
typedef enum http_route {
    HTTP_BAD_REQUEST, /* no "METHOD PATH" line: 400 */
    HTTP_BAD_METHOD,  /* neither GET nor HEAD: 405 */
    HTTP_LIVEZ,       /* /livez or /healthz */
    HTTP_READYZ,
    HTTP_METRICS,
    HTTP_NOT_FOUND,   /* any other path: 404 */
} http_route;

/* Route the request head @req (NUL-terminated, any bytes before the NUL;
 * the query string is ignored). *head_only is set for HEAD (answer the
 * headers only), else cleared. Pure: the fuzzers and tests call it. */
http_route http_parse_request(const char *req, bool *head_only);

/* Why this member is not ready ("" when it is), into @out. Also used by
 * INFO. */
void http_readiness(server *srv, char *out, size_t outlen);

#endif /* GCS_HTTP_H */
