/* ctl_fields: an ordered list of named values for gcsctl's output, each kept
 * twice: as text for people and as a JSON value for scripts. Records,
 * status lines and Ray rows are all built as ctl_fields, then printed as an
 * aligned table, a vertical record or JSON. */
#ifndef GCS_CTL_FIELDS_H
#define GCS_CTL_FIELDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct ctl_field {
    char *key;
    char *text; /* for people */
    char *json; /* a JSON value */
} ctl_field;

typedef struct ctl_fields {
    ctl_field *v;
    size_t n, cap;
} ctl_fields;

/* A growable string. */
typedef struct ctl_buf {
    char *p;
    size_t n, cap;
} ctl_buf;

void ctl_buf_add(ctl_buf *b, const char *s, size_t n);
void ctl_buf_printf(ctl_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Append @s (@n bytes, any bytes) as a JSON string literal: bytes outside
 * printable ASCII are written as \u00XX, so the output is always valid. */
void ctl_buf_json_str(ctl_buf *b, const void *s, size_t n);
/* The buffer's string (never NULL; the caller owns it). */
char *ctl_buf_take(ctl_buf *b);

void ctl_fields_free(ctl_fields *f);
/* Add a field owning copies of @text and @json. */
void ctl_fields_add(ctl_fields *f, const char *key, const char *text,
                    const char *json);
void ctl_fields_str(ctl_fields *f, const char *key, const char *s);
void ctl_fields_bytes(ctl_fields *f, const char *key, const void *s, size_t n);
void ctl_fields_hex(ctl_fields *f, const char *key, const void *s, size_t n);
void ctl_fields_u64(ctl_fields *f, const char *key, uint64_t v);
void ctl_fields_i64(ctl_fields *f, const char *key, int64_t v);
void ctl_fields_double(ctl_fields *f, const char *key, double v);
void ctl_fields_bool(ctl_fields *f, const char *key, bool v);
/* Milliseconds since the epoch as an ISO-8601 UTC date ("-" / null: 0). */
void ctl_fields_time_ms(ctl_fields *f, const char *key, uint64_t ms);
const ctl_field *ctl_fields_get(const ctl_fields *f, const char *key);

/* The fields as one JSON object (malloc'd). */
char *ctl_fields_json(const ctl_fields *f);

/* Text for people (malloc'd): printable ASCII as it is, any other byte as
 * \xNN, so no record can move a terminal's cursor or change its colours. */
char *ctl_printable(const void *s, size_t n);
/* @v as a JSON value into @out: the number, or null for NaN and infinity. */
void ctl_json_double(char *out, size_t outlen, double v);

/* Hex of @n bytes (malloc'd). */
char *ctl_hex(const void *p, size_t n);
/* Parse hex @s into @out (at most @cap bytes); the length, or -1. */
long ctl_unhex(const char *s, uint8_t *out, size_t cap);

/* Print @n rows as an aligned table with the columns @cols (keys; their
 * upper-cased names head the columns). Bold headers when @tty. */
void ctl_print_table(FILE *out, const ctl_fields *rows, size_t n,
                     const char *const *cols, bool tty);
/* Print one record as "key  value" lines (fields with empty text skipped). */
void ctl_print_record(FILE *out, const ctl_fields *f);
/* Print rows as a JSON array of objects, one per line. */
void ctl_print_json_array(FILE *out, const ctl_fields *rows, size_t n);

#endif
