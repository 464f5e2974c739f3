/* blob_cmd: send commands whose arguments are binary blobs (the encoded
 * records of table_records.h) with hiredis. CMD() returns the reply (never
 * NULL; the caller frees it); APPEND() only buffers the command. */
#ifndef GCS_TEST_BLOB_CMD_H
#define GCS_TEST_BLOB_CMD_H

#include <criterion/criterion.h>
#include <hiredis/hiredis.h>

#include "table_records.h"

#define BLOB_CMD_MAX_ARGS 16

/* @argv as hiredis's pointer and length arrays. */
static inline void blobArgs(size_t argc, const blob *argv, const char **a,
                            size_t *l)
{
    cr_assert_leq(argc, BLOB_CMD_MAX_ARGS);
    for (size_t i = 0; i < argc; i++) {
        a[i] = (const char *)argv[i].p;
        l[i] = argv[i].n;
    }
}

static inline redisReply *cmdv(redisContext *c, size_t argc, const blob *argv)
{
    const char *a[BLOB_CMD_MAX_ARGS];
    size_t l[BLOB_CMD_MAX_ARGS];
    blobArgs(argc, argv, a, l);
    redisReply *r = redisCommandArgv(c, (int)argc, a, l);
    cr_assert_not_null(r, "connection error: %s", c->errstr);
    return r;
}

static inline void appendv(redisContext *c, size_t argc, const blob *argv)
{
    const char *a[BLOB_CMD_MAX_ARGS];
    size_t l[BLOB_CMD_MAX_ARGS];
    blobArgs(argc, argv, a, l);
    cr_assert_eq(redisAppendCommandArgv(c, (int)argc, a, l), REDIS_OK);
}

#define ARGS(...) ((blob[]){__VA_ARGS__})
#define NARGS(...) (sizeof(ARGS(__VA_ARGS__)) / sizeof(blob))
#define CMD(c, ...) cmdv((c), NARGS(__VA_ARGS__), ARGS(__VA_ARGS__))
#define APPEND(c, ...) appendv((c), NARGS(__VA_ARGS__), ARGS(__VA_ARGS__))

#endif
