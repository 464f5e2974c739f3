/* fuzz_http: the health endpoint's request routing (http_parse_request,
 * gcs/http.c) under libFuzzer, against a reference reading of the rule.
 *
 * Input: the bytes a client sends, cut as the server's 8 KiB request buffer
 * cuts them (at most 8191 bytes, then a NUL; the server routes the request
 * once it holds a blank line, so anything before the first NUL counts).
 *
 * The rule, as the reference here reads it: skip whitespace; the method is
 * the next run of non-whitespace bytes (the first 7 of a longer run; the
 * rest of it starts the path); skip whitespace; the path is the next run
 * (its first 255 bytes), cut at the first '?'. No path: 400. A method
 * other than GET or HEAD: 405. /livez and /healthz, /readyz, /metrics;
 * else 404. head_only for HEAD. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                          \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "fuzz_http: check failed at %s:%d: %s\n",        \
                    __FILE__, __LINE__, #cond);                              \
            abort();                                                         \
        }                                                                    \
    } while (0)

#define MAX_REQUEST 8192

/* scanf's whitespace: the C locale's isspace. */
static bool space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' ||
           c == '\r';
}

/* Take the next token of at most @max bytes from @s into @out. */
static bool token(const char **s, char *out, size_t max)
{
    while (space(**s)) (*s)++;
    if (**s == '\0') return false;
    size_t n = 0;
    while (**s != '\0' && !space(**s) && n < max) out[n++] = *(*s)++;
    out[n] = '\0';
    return true;
}

static http_route reference(const char *req, bool *head_only)
{
    char method[8], path[256];
    *head_only = false;
    const char *s = req;
    if (!token(&s, method, 7) || !token(&s, path, 255)) {
        return HTTP_BAD_REQUEST;
    }
    if (strcmp(method, "HEAD") == 0) *head_only = true;
    else if (strcmp(method, "GET") != 0) return HTTP_BAD_METHOD;
    char *q = strchr(path, '?');
    if (q != NULL) *q = '\0';
    if (strcmp(path, "/livez") == 0 || strcmp(path, "/healthz") == 0) {
        return HTTP_LIVEZ;
    }
    if (strcmp(path, "/readyz") == 0) return HTTP_READYZ;
    if (strcmp(path, "/metrics") == 0) return HTTP_METRICS;
    return HTTP_NOT_FOUND;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t n = size < MAX_REQUEST - 1 ? size : MAX_REQUEST - 1;
    char *req = malloc(n + 1);
    CHECK(req != NULL);
    if (n) memcpy(req, data, n);
    req[n] = '\0';
    bool head = true, want_head = false;
    http_route got = http_parse_request(req, &head);
    http_route want = reference(req, &want_head);
    if (got != want || head != want_head) {
        fprintf(stderr, "fuzz_http: route %d head %d, expected %d head %d "
                "for: %s\n", (int)got, (int)head, (int)want, (int)want_head,
                req);
        abort();
    }
    free(req);
    return 0;
}
