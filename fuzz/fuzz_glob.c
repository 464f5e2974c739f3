/* fuzz_glob: glob_match and glob_matches_all under libFuzzer, checked
 * against a reference matcher.
 *
 * Input: a 2-byte little-endian pattern length (taken modulo what is left),
 * a mode byte and a count byte, the pattern, then the string. Mode 0xff
 * repeats the pattern and the string count + 1 times each (capped at 2200
 * and 1200 bytes), so short inputs reach Redis's 1000-star limit; other
 * modes use them as they are. Both case modes run (repeated inputs: one).
 *
 * The reference below is written from the semantics Redis 7's
 * stringmatchlen() has (see the top of gcs/glob.c): an automaton run over
 * the pattern's tokens, independent of glob.c's single-backtrack-point
 * matcher. Classes compare bytes as signed chars and
 * fold case with the C library's tolower() on the signed value, exactly as
 * Redis does on x86-64 glibc in the "C" locale. Beyond 1000 star groups that
 * must still match something, Redis's recursion limit makes the match fail;
 * the reference models that too.
 *
 * Every call must also be quick: more than 5 s for one call (patterns and
 * strings are at most a few KiB) aborts. A call is O(pattern * string):
 * well under that even with the fuzzer's comparison tracing on a loaded
 * machine (1.2 s was seen there, for 1.5 KiB of classes against 1.2 KiB),
 * while an exponential matcher takes far longer. */
#include <ctype.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "glob.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                          \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "fuzz_glob: check failed at %s:%d: %s\n",        \
                    __FILE__, __LINE__, #cond);                              \
            abort();                                                         \
        }                                                                    \
    } while (0)

/* The reference is not what is being fuzzed: keep the fuzzer's comparison
 * tracing (costly in its loops) out of it. */
#if defined(__clang__)
#define REFERENCE __attribute__((no_sanitize("coverage"), noinline))
#else
#define REFERENCE __attribute__((noinline))
#endif

#define MAX_NESTING 1000
/* Caps after repeats: enough for 1000+ star groups and a string they match,
 * small enough to keep a call (O(pattern * string)) fast. */
#define MAX_EXPANDED_PAT 2200
#define MAX_EXPANDED_STR 1200

enum { T_STAR, T_ANY, T_LIT, T_CLASS };

typedef struct token {
    int kind;
    char lit;      /* T_LIT */
    bool negate;   /* T_CLASS: "[^" */
    size_t mstart; /* T_CLASS: members are pattern[mstart..mend) */
    size_t mend;   /* the closing ']' or the end of the pattern */
} token;

/* One step through a class's members at @j: returns the next position.
 * The same walk delimits a class (tokenize) and matches it (class_has). */
REFERENCE static size_t member_next(const char *p, size_t plen, size_t j)
{
    if (p[j] == '\\' && j + 1 < plen)
        return j + 2; /* escaped member */
    if (j + 2 < plen && p[j + 1] == '-')
        return j + 3; /* range, whatever its end byte (even ']') */
    return j + 1;
}

/* Split @p into tokens the way Redis walks a pattern. */
REFERENCE static size_t tokenize(const char *p, size_t plen, token *out)
{
    size_t n = 0, i = 0;
    while (i < plen) {
        token t = {0};
        if (p[i] == '*') {
            while (i < plen && p[i] == '*')
                i++;
            t.kind = T_STAR;
        } else if (p[i] == '?') {
            t.kind = T_ANY;
            i++;
        } else if (p[i] == '\\') {
            t.kind = T_LIT;
            if (i + 1 < plen) {
                t.lit = p[i + 1];
                i += 2;
            } else {
                t.lit = '\\'; /* a trailing backslash is itself */
                i++;
            }
        } else if (p[i] == '[') {
            /* Members run to the first ']' met at a member boundary;
             * without one, to the end of the pattern. */
            size_t j = i + 1;
            t.kind = T_CLASS;
            if (j < plen && p[j] == '^') {
                t.negate = true;
                j++;
            }
            t.mstart = j;
            while (j < plen && p[j] != ']')
                j = member_next(p, plen, j);
            t.mend = j;
            i = j < plen ? j + 1 : plen;
        } else {
            t.kind = T_LIT;
            t.lit = p[i];
            i++;
        }
        out[n++] = t;
    }
    return n;
}

REFERENCE static int lower(int c)
{
    return tolower(c); /* glibc accepts -128..255, as Redis relies on */
}

REFERENCE static bool class_has(const char *p, size_t plen, const token *t, char ch,
                      bool nocase)
{
    bool hit = false;
    int c = (signed char)ch;
    for (size_t j = t->mstart; j < t->mend; j = member_next(p, plen, j)) {
        if (p[j] == '\\' && j + 1 < plen) {
            if (p[j + 1] == ch) /* case-sensitive even with nocase */
                hit = true;
        } else if (j + 2 < plen && p[j + 1] == '-') {
            int lo = (signed char)p[j], hi = (signed char)p[j + 2], x = c;
            if (lo > hi) {
                int tmp = lo;
                lo = hi;
                hi = tmp;
            }
            if (nocase) {
                lo = lower(lo);
                hi = lower(hi);
                x = lower(x);
            }
            if (x >= lo && x <= hi)
                hit = true;
        } else if (nocase ? lower((signed char)p[j]) == lower(c)
                          : p[j] == ch) {
            hit = true;
        }
    }
    return t->negate ? !hit : hit;
}

/* Does consuming token @t accept byte @ch? Class members are decided once
 * per (class, byte) and cached in @cache (3 = unknown). */
REFERENCE static bool token_accepts(const char *pat, size_t plen,
                                    const token *t, uint8_t *cache, char ch,
                                    bool nocase)
{
    switch (t->kind) {
    case T_ANY:
        return true;
    case T_LIT:
        return nocase ? lower((signed char)t->lit) == lower((signed char)ch)
                      : t->lit == ch;
    default:
        if (cache[(uint8_t)ch] == 3)
            cache[(uint8_t)ch] = class_has(pat, plen, t, ch, nocase);
        return cache[(uint8_t)ch];
    }
}

/* Reference: does @pat match @str?
 *
 * Simulates the pattern as an automaton over its tokens, the string one
 * byte at a time, keeping the set of tokens the rest of the pattern may
 * start at. What Redis's recursion does, in these terms:
 *  - a star group that is not last lets the rest start at the current or
 *    any later byte (the rest must then match at least one byte: the star
 *    loop never calls itself on an empty string); deeper than 1000 star
 *    groups, it lets nothing through;
 *  - a star group that is last matches whatever is left (even past the
 *    limit: Redis returns before recursing);
 *  - once the last byte is consumed, only star groups may remain;
 *  - the empty string is matched by the empty pattern only. */
REFERENCE static int ref_match(const char *pat, size_t plen, const char *str,
                               size_t slen, bool nocase)
{
    if (slen == 0)
        return plen == 0;
    token *tok = malloc((plen + 1) * sizeof *tok);
    CHECK(tok != NULL);
    size_t nt = tokenize(pat, plen, tok);
    if (nt == 0) {
        free(tok);
        return 0; /* string left, no pattern */
    }
    size_t *depth = malloc(nt * sizeof *depth);
    bool *stars_only = malloc((nt + 1) * sizeof *stars_only);
    uint8_t **cache = calloc(nt, sizeof *cache);
    /* Active sets as lists, deduplicated with a per-step stamp. */
    size_t *cur = malloc((nt + 1) * sizeof *cur);
    size_t *next = malloc((nt + 1) * sizeof *next);
    size_t *stamp = calloc(nt + 1, sizeof *stamp);
    CHECK(depth && stars_only && cache && cur && next && stamp);
    size_t d = 0;
    for (size_t i = 0; i < nt; i++) {
        if (tok[i].kind == T_STAR)
            d++;
        depth[i] = d;
        if (tok[i].kind == T_CLASS) {
            cache[i] = malloc(256);
            CHECK(cache[i] != NULL);
            memset(cache[i], 3, 256);
        }
    }
    stars_only[nt] = true;
    for (size_t i = nt; i-- > 0;)
        stars_only[i] = stars_only[i + 1] && tok[i].kind == T_STAR;

    int result = 0;
    size_t ncur = 1, gen = 1;
    cur[0] = 0;
    stamp[0] = gen;
    for (size_t s = 0; s < slen && ncur > 0 && !result; s++) {
        /* Close the set under "a star lets the rest start here". The list
         * grows while it is walked; a star's successor is appended once. */
        for (size_t k = 0; k < ncur; k++) {
            size_t i = cur[k];
            if (i < nt && tok[i].kind == T_STAR && i + 1 < nt &&
                depth[i] <= MAX_NESTING && stamp[i + 1] != gen) {
                stamp[i + 1] = gen;
                cur[ncur++] = i + 1;
            }
        }
        /* Consume str[s]. */
        size_t nnext = 0;
        gen++;
        for (size_t k = 0; k < ncur && !result; k++) {
            size_t i = cur[k];
            size_t to;
            if (i == nt)
                continue; /* pattern done, string left: dead */
            if (tok[i].kind == T_STAR) {
                if (i + 1 == nt) {
                    result = 1; /* a last star takes the rest */
                    break;
                }
                if (depth[i] > MAX_NESTING)
                    continue;
                to = i; /* the star takes this byte too */
            } else if (token_accepts(pat, plen, &tok[i], cache[i], str[s],
                                     nocase)) {
                to = i + 1;
            } else {
                continue;
            }
            if (stamp[to] != gen) {
                stamp[to] = gen;
                next[nnext++] = to;
            }
        }
        if (result)
            break;
        if (s + 1 == slen) {
            /* The string is consumed: only star groups may remain. (A star
             * that took the last byte is not last, else it matched above, so
             * a non-star token follows it and stars_only is false there.) */
            for (size_t k = 0; k < nnext; k++)
                if (stars_only[next[k]])
                    result = 1;
        }
        size_t *t = cur;
        cur = next;
        next = t;
        ncur = nnext;
    }
    for (size_t i = 0; i < nt; i++)
        free(cache[i]);
    free(cache);
    free(cur);
    free(next);
    free(stamp);
    free(depth);
    free(stars_only);
    free(tok);
    return result;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4)
        return 0;
    size_t rest = size - 4;
    size_t plen0 = ((size_t)data[0] | (size_t)data[1] << 8) % (rest + 1);
    size_t slen0 = rest - plen0;
    size_t reps = data[2] == 0xff ? (size_t)data[3] + 1 : 1;
    const uint8_t *p0 = data + 4, *s0 = data + 4 + plen0;
    size_t plen = plen0, slen = slen0;
    if (reps > 1) {
        plen = plen0 * reps < MAX_EXPANDED_PAT ? plen0 * reps
                                               : MAX_EXPANDED_PAT;
        slen = slen0 * reps < MAX_EXPANDED_STR ? slen0 * reps
                                               : MAX_EXPANDED_STR;
    }
    /* Exact-size copies, so ASan sees any read past either end. */
    char *pat = malloc(plen ? plen : 1);
    char *str = malloc(slen ? slen : 1);
    CHECK(pat != NULL && str != NULL);
    for (size_t i = 0; i < plen; i++)
        pat[i] = (char)p0[i % plen0];
    for (size_t i = 0; i < slen; i++)
        str[i] = (char)s0[i % slen0];

    /* Repeated inputs are slow (matching is O(pattern * string)): they run
     * in one case mode only, picked by the count's low bit. */
    int first = reps > 1 ? data[3] & 1 : 0, last = reps > 1 ? first : 1;
    for (int nocase = first; nocase <= last; nocase++) {
        double t0 = now_s();
        bool got = glob_match(plen ? pat : NULL, plen, slen ? str : NULL,
                              slen, nocase);
        double took = now_s() - t0;
        if (took > 5.0) {
            fprintf(stderr, "fuzz_glob: glob_match took %.3f s "
                    "(pattern %zu bytes, string %zu bytes)\n",
                    took, plen, slen);
            abort();
        }
        int want = ref_match(pat, plen, str, slen, nocase);
        if ((int)got != want) {
            fprintf(stderr, "fuzz_glob: glob_match says %d, reference %d "
                    "(nocase %d)\n", got, want, nocase);
            abort();
        }
    }
    if (glob_matches_all(plen ? pat : NULL, plen)) {
        CHECK(plen > 0);
        if (slen > 0) {
            CHECK(glob_match(pat, plen, str, slen, false));
            CHECK(glob_match(pat, plen, str, slen, true));
        }
    }
    free(pat);
    free(str);
    return 0;
}
