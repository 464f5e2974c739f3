/* member_dial: a blocking hiredis connection to another member's client
 * port, authenticated, for the few exchanges members make from the
 * threadpool (--join's RAFT.ADD, the leader's GCS.VERSION probes). Never call
 * it on the loop thread. */
#ifndef GCS_MEMBER_DIAL_H
#define GCS_MEMBER_DIAL_H

#include <stddef.h>

#include <hiredis/hiredis.h>

/* Connect to @addr ("host:port") within @connect_ms, bound every command
 * after by @command_ms, and send AUTH @password when it is not empty (its reply is
 * not checked: a refusal shows in the next command's reply). Returns the
 * context, owned by the caller (redisFree), or NULL with the reason in
 * @err. */
redisContext *member_dial(const char *addr, const char *password,
                          int connect_ms, int command_ms, char *err,
                          size_t errlen);

#endif
