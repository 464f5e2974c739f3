#include "ctl_fields.h"

#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n);
    if (q == NULL) {
        fputs("gcsctl: out of memory\n", stderr);
        exit(1);
    }
    return q;
}

static char *xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *c = xrealloc(NULL, n);
    memcpy(c, s, n);
    return c;
}

void ctl_buf_add(ctl_buf *b, const char *s, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        b->cap = (b->n + n + 1) * 2;
        b->p = xrealloc(b->p, b->cap);
    }
    if (n > 0) memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

void ctl_buf_printf(ctl_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    char *tmp = xrealloc(NULL, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(tmp, (size_t)n + 1, fmt, ap);
    va_end(ap);
    ctl_buf_add(b, tmp, (size_t)n);
    free(tmp);
}

void ctl_buf_json_str(ctl_buf *b, const void *s, size_t n)
{
    const unsigned char *p = s;
    ctl_buf_add(b, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = p[i];
        if (c == '"') ctl_buf_add(b, "\\\"", 2);
        else if (c == '\\') ctl_buf_add(b, "\\\\", 2);
        else if (c == '\n') ctl_buf_add(b, "\\n", 2);
        else if (c == '\t') ctl_buf_add(b, "\\t", 2);
        else if (c < 0x20 || c >= 0x7f) ctl_buf_printf(b, "\\u%04x", c);
        else ctl_buf_add(b, (const char *)&c, 1);
    }
    ctl_buf_add(b, "\"", 1);
}

char *ctl_buf_take(ctl_buf *b)
{
    if (b->p == NULL) ctl_buf_add(b, "", 0);
    char *p = b->p;
    *b = (ctl_buf){0};
    return p;
}

void ctl_fields_free(ctl_fields *f)
{
    for (size_t i = 0; i < f->n; i++) {
        free(f->v[i].key);
        free(f->v[i].text);
        free(f->v[i].json);
    }
    free(f->v);
    *f = (ctl_fields){0};
}

void ctl_fields_add(ctl_fields *f, const char *key, const char *text,
                    const char *json)
{
    if (f->n == f->cap) {
        f->cap = f->cap ? 2 * f->cap : 16;
        f->v = xrealloc(f->v, f->cap * sizeof *f->v);
    }
    f->v[f->n++] = (ctl_field){xstrdup(key), xstrdup(text), xstrdup(json)};
}

char *ctl_printable(const void *s, size_t n)
{
    const unsigned char *p = s;
    ctl_buf b = {0};
    for (size_t i = 0; i < n; i++) {
        if (p[i] >= 0x20 && p[i] < 0x7f) ctl_buf_add(&b, (const char *)&p[i], 1);
        else ctl_buf_printf(&b, "\\x%02x", p[i]);
    }
    return ctl_buf_take(&b);
}

void ctl_fields_bytes(ctl_fields *f, const char *key, const void *s, size_t n)
{
    ctl_buf j = {0};
    ctl_buf_json_str(&j, s, n);
    char *text = ctl_printable(s, n), *json = ctl_buf_take(&j);
    ctl_fields_add(f, key, text, json);
    free(text);
    free(json);
}

void ctl_fields_str(ctl_fields *f, const char *key, const char *s)
{
    ctl_fields_bytes(f, key, s ? s : "", s ? strlen(s) : 0);
}

char *ctl_hex(const void *p, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    const unsigned char *b = p;
    char *h = xrealloc(NULL, 2 * n + 1);
    for (size_t i = 0; i < n; i++) {
        h[2 * i] = digits[b[i] >> 4];
        h[2 * i + 1] = digits[b[i] & 15];
    }
    h[2 * n] = '\0';
    return h;
}

long ctl_unhex(const char *s, uint8_t *out, size_t cap)
{
    size_t len = strlen(s);
    if (len % 2 != 0 || len / 2 > cap) return -1;
    for (size_t i = 0; i < len; i += 2) {
        int v = 0;
        for (int k = 0; k < 2; k++) {
            int c = tolower((unsigned char)s[i + k]);
            if (c >= '0' && c <= '9') v = v * 16 + (c - '0');
            else if (c >= 'a' && c <= 'f') v = v * 16 + (c - 'a' + 10);
            else return -1;
        }
        out[i / 2] = (uint8_t)v;
    }
    return (long)(len / 2);
}

void ctl_fields_hex(ctl_fields *f, const char *key, const void *s, size_t n)
{
    char *h = ctl_hex(s, n);
    ctl_buf j = {0};
    ctl_buf_json_str(&j, h, strlen(h));
    char *json = ctl_buf_take(&j);
    ctl_fields_add(f, key, n ? h : "-", json);
    free(h);
    free(json);
}

void ctl_fields_u64(ctl_fields *f, const char *key, uint64_t v)
{
    char s[32];
    snprintf(s, sizeof s, "%" PRIu64, v);
    ctl_fields_add(f, key, s, s);
}

void ctl_fields_i64(ctl_fields *f, const char *key, int64_t v)
{
    char s[32];
    snprintf(s, sizeof s, "%" PRId64, v);
    ctl_fields_add(f, key, s, s);
}

void ctl_json_double(char *out, size_t outlen, double v)
{
    /* JSON has no NaN or infinity ("%g" would print nan, inf). */
    if (!isfinite(v)) snprintf(out, outlen, "null");
    else snprintf(out, outlen, "%.15g", v);
}

void ctl_fields_double(ctl_fields *f, const char *key, double v)
{
    char s[64], j[64];
    snprintf(s, sizeof s, "%.15g", v);
    ctl_json_double(j, sizeof j, v);
    ctl_fields_add(f, key, s, j);
}

void ctl_fields_bool(ctl_fields *f, const char *key, bool v)
{
    ctl_fields_add(f, key, v ? "yes" : "no", v ? "true" : "false");
}

void ctl_fields_time_ms(ctl_fields *f, const char *key, uint64_t ms)
{
    if (ms == 0) {
        ctl_fields_add(f, key, "-", "null");
        return;
    }
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    char date[64], text[80], json[96];
    if (gmtime_r(&secs, &tm) == NULL ||
        strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm) == 0) {
        snprintf(text, sizeof text, "%" PRIu64, ms);
        ctl_fields_add(f, key, text, text);
        return;
    }
    snprintf(text, sizeof text, "%s.%03uZ", date, (unsigned)(ms % 1000));
    snprintf(json, sizeof json, "\"%s\"", text);
    ctl_fields_add(f, key, text, json);
}

const ctl_field *ctl_fields_get(const ctl_fields *f, const char *key)
{
    for (size_t i = 0; i < f->n; i++) {
        if (strcmp(f->v[i].key, key) == 0) return &f->v[i];
    }
    return NULL;
}

char *ctl_fields_json(const ctl_fields *f)
{
    ctl_buf b = {0};
    ctl_buf_add(&b, "{", 1);
    for (size_t i = 0; i < f->n; i++) {
        if (i > 0) ctl_buf_add(&b, ", ", 2);
        ctl_buf_json_str(&b, f->v[i].key, strlen(f->v[i].key));
        ctl_buf_add(&b, ": ", 2);
        ctl_buf_add(&b, f->v[i].json, strlen(f->v[i].json));
    }
    ctl_buf_add(&b, "}", 1);
    return ctl_buf_take(&b);
}

/* Display width of UTF-8 text: code points (the text we print is ASCII or
 * UTF-8 from records). */
static size_t width(const char *s)
{
    size_t w = 0;
    for (; *s; s++) {
        if (((unsigned char)*s & 0xc0) != 0x80) w++;
    }
    return w;
}

void ctl_print_table(FILE *out, const ctl_fields *rows, size_t n,
                     const char *const *cols, bool tty)
{
    size_t nc = 0;
    while (cols[nc] != NULL) nc++;
    size_t *w = calloc(nc ? nc : 1, sizeof *w);
    if (w == NULL) return;
    for (size_t c = 0; c < nc; c++) {
        w[c] = strlen(cols[c]);
        for (size_t r = 0; r < n; r++) {
            const ctl_field *fl = ctl_fields_get(&rows[r], cols[c]);
            if (fl != NULL && width(fl->text) > w[c]) w[c] = width(fl->text);
        }
    }
    if (tty) fputs("\033[1m", out);
    for (size_t c = 0; c < nc; c++) {
        for (const char *p = cols[c]; *p; p++) {
            fputc(*p == '_' ? ' ' : toupper((unsigned char)*p), out);
        }
        if (c + 1 < nc) fprintf(out, "%*s", (int)(w[c] - strlen(cols[c]) + 2), "");
    }
    if (tty) fputs("\033[0m", out);
    fputc('\n', out);
    for (size_t r = 0; r < n; r++) {
        for (size_t c = 0; c < nc; c++) {
            const ctl_field *fl = ctl_fields_get(&rows[r], cols[c]);
            const char *t = fl != NULL ? fl->text : "";
            fputs(t, out);
            if (c + 1 < nc) fprintf(out, "%*s", (int)(w[c] - width(t) + 2), "");
        }
        fputc('\n', out);
    }
    free(w);
}

void ctl_print_record(FILE *out, const ctl_fields *f)
{
    size_t w = 0;
    for (size_t i = 0; i < f->n; i++) {
        if (strlen(f->v[i].key) > w) w = strlen(f->v[i].key);
    }
    for (size_t i = 0; i < f->n; i++) {
        if (f->v[i].text[0] == '\0') continue;
        fprintf(out, "%-*s  %s\n", (int)w, f->v[i].key, f->v[i].text);
    }
}

void ctl_print_json_array(FILE *out, const ctl_fields *rows, size_t n)
{
    fputs("[", out);
    for (size_t r = 0; r < n; r++) {
        char *j = ctl_fields_json(&rows[r]);
        fprintf(out, "%s\n  %s", r ? "," : "", j);
        free(j);
    }
    fputs(n ? "\n]\n" : "]\n", out);
}
