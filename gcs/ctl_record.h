/* ctl_record: Ray's table records (proto/ray.proto) decoded into readable
 * ctl_fields: ids in hex, times as dates, states as words, resources as
 * "CPU=4, GPU=1". */
#ifndef GCS_CTL_RECORD_H
#define GCS_CTL_RECORD_H

#include <stdbool.h>
#include <stddef.h>

#include "ctl_fields.h"

typedef enum ctl_record_kind {
    CTL_RECORD_NODE,
    CTL_RECORD_ACTOR,
    CTL_RECORD_JOB,
    CTL_RECORD_PG,
} ctl_record_kind;

/* Decode @n bytes at @p as a record of @kind into @f; false when they do
 * not parse. */
bool ctl_record_decode(ctl_record_kind kind, const void *p, size_t n,
                       ctl_fields *f);

/* The id length of @kind in bytes (28, 16, 4, 18). */
size_t ctl_record_id_len(ctl_record_kind kind);

/* Columns of the list table of @kind (NULL-terminated). */
const char *const *ctl_record_columns(ctl_record_kind kind);

#endif
