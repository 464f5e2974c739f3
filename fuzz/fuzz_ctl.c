/* fuzz_ctl: gcsctl's decoding of what servers reply, under libFuzzer: a
 * typed-table record (NODE/ACTOR/JOB/PG .GET and .LIST replies, and the
 * records `gcsctl ray list` finds in a Ray head's hashes) through
 * ctl_record_decode, printed as gcsctl prints it (table, vertical record,
 * JSON), and ids through ctl_unhex.
 *
 * Input: byte 0 picks the record kind (mod 4), the rest is the record.
 * Checked: the JSON output (one object per record, and the array of them)
 * is valid JSON (RFC 8259, checked here by a strict parser); the text for
 * people holds no control bytes (a record must not move a terminal's
 * cursor or change its colours); ctl_unhex accepts exactly even-length hex
 * and round-trips through ctl_hex. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl_record.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define CHECK(cond)                                                          \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "fuzz_ctl: check failed at %s:%d: %s\n",         \
                    __FILE__, __LINE__, #cond);                              \
            abort();                                                         \
        }                                                                    \
    } while (0)

static FILE *devnull;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    devnull = fopen("/dev/null", "w");
    CHECK(devnull != NULL);
    return 0;
}

/* ---- a strict JSON parser (validation only) ----------------------------- */

static void ws(const char **p)
{
    while (**p == ' ' || **p == '\t' || **p == '\n' || **p == '\r') (*p)++;
}

static bool is_digit(char c) { return c >= '0' && c <= '9'; }

static bool is_hex(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static bool json_string(const char **p)
{
    if (**p != '"') return false;
    (*p)++;
    for (;;) {
        unsigned char c = (unsigned char)**p;
        if (c == '"') {
            (*p)++;
            return true;
        }
        if (c < 0x20) return false; /* includes the terminating NUL */
        if (c == '\\') {
            (*p)++;
            char e = **p;
            if (e == 'u') {
                for (int i = 1; i <= 4; i++) {
                    if (!is_hex((*p)[i])) return false;
                }
                *p += 5;
                continue;
            }
            if (strchr("\"\\/bfnrt", e) == NULL || e == '\0') return false;
        }
        (*p)++;
    }
}

static bool json_number(const char **p)
{
    if (**p == '-') (*p)++;
    if (**p == '0') {
        (*p)++;
    } else if (is_digit(**p)) {
        while (is_digit(**p)) (*p)++;
    } else {
        return false;
    }
    if (**p == '.') {
        (*p)++;
        if (!is_digit(**p)) return false;
        while (is_digit(**p)) (*p)++;
    }
    if (**p == 'e' || **p == 'E') {
        (*p)++;
        if (**p == '+' || **p == '-') (*p)++;
        if (!is_digit(**p)) return false;
        while (is_digit(**p)) (*p)++;
    }
    return true;
}

static bool json_value(const char **p, int depth)
{
    if (depth > 16) return false;
    ws(p);
    switch (**p) {
    case '{':
        (*p)++;
        ws(p);
        if (**p == '}') {
            (*p)++;
            return true;
        }
        for (;;) {
            ws(p);
            if (!json_string(p)) return false;
            ws(p);
            if (**p != ':') return false;
            (*p)++;
            if (!json_value(p, depth + 1)) return false;
            ws(p);
            if (**p == '}') {
                (*p)++;
                return true;
            }
            if (**p != ',') return false;
            (*p)++;
        }
    case '[':
        (*p)++;
        ws(p);
        if (**p == ']') {
            (*p)++;
            return true;
        }
        for (;;) {
            if (!json_value(p, depth + 1)) return false;
            ws(p);
            if (**p == ']') {
                (*p)++;
                return true;
            }
            if (**p != ',') return false;
            (*p)++;
        }
    case '"':
        return json_string(p);
    case 't':
        return strncmp(*p, "true", 4) == 0 && (*p += 4);
    case 'f':
        return strncmp(*p, "false", 5) == 0 && (*p += 5);
    case 'n':
        return strncmp(*p, "null", 4) == 0 && (*p += 4);
    default:
        return json_number(p);
    }
}

static void check_json(const char *s)
{
    const char *p = s;
    bool ok = json_value(&p, 0);
    ws(&p);
    if (!ok || *p != '\0') {
        fprintf(stderr, "fuzz_ctl: invalid JSON at offset %zu: %s\n",
                (size_t)(p - s), s);
        abort();
    }
}

static void check_text(const char *key, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p < 0x20 || *p == 0x7f) {
            fprintf(stderr, "fuzz_ctl: control byte 0x%02x in the text of "
                    "'%s'\n", *p, key);
            abort();
        }
    }
}

/* ---- the target --------------------------------------------------------- */

static void check_unhex(const uint8_t *data, size_t size)
{
    size_t n = size < 128 ? size : 128;
    char s[129];
    memcpy(s, data, n);
    s[n] = '\0';
    size_t len = strlen(s);
    uint8_t out[64];
    long got = ctl_unhex(s, out, sizeof out);
    bool hex = len % 2 == 0 && len / 2 <= sizeof out;
    for (size_t i = 0; hex && i < len; i++) hex = is_hex(s[i]);
    CHECK((got >= 0) == hex);
    if (got < 0) return;
    CHECK((size_t)got == len / 2);
    char *h = ctl_hex(out, (size_t)got);
    CHECK(strlen(h) == len);
    for (size_t i = 0; i < len; i++) {
        char c = s[i] >= 'A' && s[i] <= 'F' ? (char)(s[i] - 'A' + 'a') : s[i];
        CHECK(h[i] == c);
    }
    free(h);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    ctl_record_kind kind = (ctl_record_kind)(data[0] % 4);
    uint8_t *rec = calloc(1, size > 1 ? size - 1 : 1); /* gcc 12 */
    CHECK(rec != NULL);
    if (size > 1) memcpy(rec, data + 1, size - 1);

    ctl_fields f[2] = {{0}};
    if (ctl_record_decode(kind, rec, size - 1, &f[0])) {
        for (size_t i = 0; i < f[0].n; i++) {
            CHECK(f[0].v[i].key && f[0].v[i].text && f[0].v[i].json);
            check_text(f[0].v[i].key, f[0].v[i].text);
            check_json(f[0].v[i].json);
        }
        char *j = ctl_fields_json(&f[0]);
        check_json(j);
        free(j);
        /* The id column is what `get` and `list` print first. */
        CHECK(f[0].n > 0);
        ctl_fields_str(&f[1], "x", "y");
        ctl_print_table(devnull, f, 2, ctl_record_columns(kind), true);
        ctl_print_record(devnull, &f[0]);
        ctl_print_json_array(devnull, f, 2);
        CHECK(ctl_record_id_len(kind) > 0);
    }
    ctl_fields_free(&f[0]);
    ctl_fields_free(&f[1]);
    free(rec);

    check_unhex(data + 1, size - 1);
    return 0;
}
