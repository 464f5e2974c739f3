/* expect: one-line assertions on hiredis replies, exact values. */
#ifndef GCS_TEST_EXPECT_H
#define GCS_TEST_EXPECT_H

#include <criterion/criterion.h>
#include <string.h>

#include "harness.h"

#define EXPECT_STATUS(c, want, ...)                                          \
    do {                                                                     \
        redisReply *r_ = harness_cmd((c), __VA_ARGS__);                      \
        cr_assert_eq(r_->type, REDIS_REPLY_STATUS, "%s: type %d (%s)",       \
                     #__VA_ARGS__, r_->type, r_->str ? r_->str : "");        \
        cr_assert_str_eq(r_->str, (want), "%s", #__VA_ARGS__);               \
        freeReplyObject(r_);                                                 \
    } while (0)

#define EXPECT_INT(c, want, ...)                                             \
    do {                                                                     \
        redisReply *r_ = harness_cmd((c), __VA_ARGS__);                      \
        cr_assert_eq(r_->type, REDIS_REPLY_INTEGER, "%s: type %d (%s)",      \
                     #__VA_ARGS__, r_->type, r_->str ? r_->str : "");        \
        cr_assert_eq(r_->integer, (long long)(want), "%s: got %lld",         \
                     #__VA_ARGS__, r_->integer);                             \
        freeReplyObject(r_);                                                 \
    } while (0)

#define EXPECT_BULK(c, want, ...)                                            \
    do {                                                                     \
        redisReply *r_ = harness_cmd((c), __VA_ARGS__);                      \
        cr_assert_eq(r_->type, REDIS_REPLY_STRING, "%s: type %d (%s)",       \
                     #__VA_ARGS__, r_->type, r_->str ? r_->str : "");        \
        cr_assert_eq(r_->len, strlen(want), "%s", #__VA_ARGS__);             \
        cr_assert(memcmp(r_->str, (want), r_->len) == 0, "%s: got '%s'",    \
                  #__VA_ARGS__, r_->str);                                    \
        freeReplyObject(r_);                                                 \
    } while (0)

#define EXPECT_NIL(c, ...)                                                   \
    do {                                                                     \
        redisReply *r_ = harness_cmd((c), __VA_ARGS__);                      \
        cr_assert_eq(r_->type, REDIS_REPLY_NIL, "%s: type %d (%s)",          \
                     #__VA_ARGS__, r_->type, r_->str ? r_->str : "");        \
        freeReplyObject(r_);                                                 \
    } while (0)

#define EXPECT_ERROR(c, want, ...)                                           \
    do {                                                                     \
        redisReply *r_ = harness_cmd((c), __VA_ARGS__);                      \
        cr_assert_eq(r_->type, REDIS_REPLY_ERROR, "%s: type %d",             \
                     #__VA_ARGS__, r_->type);                                \
        cr_assert_str_eq(r_->str, (want), "%s", #__VA_ARGS__);               \
        freeReplyObject(r_);                                                 \
    } while (0)

#define EXPECT_ARRAY_LEN(c, want, ...)                                       \
    do {                                                                     \
        redisReply *r_ = harness_cmd((c), __VA_ARGS__);                      \
        cr_assert_eq(r_->type, REDIS_REPLY_ARRAY, "%s: type %d (%s)",        \
                     #__VA_ARGS__, r_->type, r_->str ? r_->str : "");        \
        cr_assert_eq(r_->elements, (size_t)(want), "%s: %zu elements",       \
                     #__VA_ARGS__, r_->elements);                            \
        freeReplyObject(r_);                                                 \
    } while (0)

#endif
