/* member_dial: see member_dial.h. */
#include "member_dial.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

redisContext *member_dial(const char *addr, const char *password,
                          int connect_ms, int command_ms, char *err,
                          size_t errlen)
{
    char host[256];
    const char *colon = strrchr(addr, ':');
    if (colon == NULL || (size_t)(colon - addr) >= sizeof host) {
        snprintf(err, errlen, "bad address '%s'", addr);
        return NULL;
    }
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = '\0';
    struct timeval tv = {connect_ms / 1000, (connect_ms % 1000) * 1000};
    redisContext *c = redisConnectWithTimeout(host, atoi(colon + 1), tv);
    if (c == NULL || c->err) {
        snprintf(err, errlen, "cannot connect to %s: %s", addr,
                 c != NULL ? c->errstr : "out of memory");
        if (c != NULL) redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, (struct timeval){command_ms / 1000,
                                        (command_ms % 1000) * 1000});
    if (password != NULL && password[0] != '\0') {
        redisReply *r = redisCommand(c, "AUTH %s", password);
        if (r != NULL) freeReplyObject(r);
    }
    return c;
}
