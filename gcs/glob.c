/* glob: Redis-compatible glob-style matching (see glob.h).
 *
 * Semantics follow Redis 7's stringmatchlen() (util.c) exactly, as it behaves
 * on x86-64 Linux with glibc (plain `char` is signed there, and Redis runs
 * with the "C" LC_CTYPE, so case folding is ASCII only; see fold()):
 *
 *   *       any run of bytes; consecutive stars are one star
 *   ?       any one byte
 *   [abc]   one byte of the set; [^abc] one byte not in it; [a-z] a range
 *           (reversed ranges are swapped; with nocase both ends and the byte
 *           are lowered after the swap); \x inside a class is the literal x
 *           and is compared case-sensitively even with nocase; []] and [] are
 *           empty classes; an unterminated class ("[abc" at the end of the
 *           pattern) takes the rest of the pattern as its members and then
 *           matches one byte, so "[^" matches any one byte and "[" nothing.
 *   \x      the literal x; a trailing lone backslash is a literal backslash
 *
 * Redis-specific corner cases kept on purpose:
 *   - An empty string is matched only by an empty pattern: "*" does not
 *     match "" (Redis's KEYS/SCAN special-case the exact pattern "*" before
 *     calling the matcher; callers do that with glob_matches_all()).
 *   - Redis stops recursing at a nesting depth of 1000 stars; as a result a
 *     pattern with more than 1000 star groups followed by something other
 *     than stars never matches. This is reproduced.
 *
 * Unlike Redis's recursive matcher, this one is iterative and keeps a single
 * backtracking point (the last star seen): every token other than a star
 * consumes exactly one byte, so when the pattern after the last star fails
 * at some position, retrying earlier stars cannot help, and the leftmost
 * placement of each star-free segment is always the best one. Time is
 * O(plen * slen) in the worst case, memory O(1), no recursion.
 */
#include "glob.h"

#include <stdint.h>

/* The maximum star nesting Redis's stringmatchlen() accepts. */
#define GLOB_MAX_STAR_NESTING 1000

/* tolower() as Redis gets it: LC_CTYPE "C" (ASCII folding only), called on
 * a signed char converted to int. glibc's table maps -128..-2 to 128..254
 * (the unsigned byte) and leaves -1 (EOF) alone; that only matters for the
 * bounds of nocase ranges containing bytes >= 0x80, and is reproduced. */
static inline int fold(int c)
{
    if (c >= 'A' && c <= 'Z')
        return c + ('a' - 'A');
    if (c < -1)
        return c + 256;
    return c;
}

/* Token kinds. */
enum { TOK_STAR, TOK_ANY, TOK_LIT, TOK_CLASS };

/* Classify the token at @i (< @plen) and return the index just past it.
 * For TOK_LIT, *lit is the literal byte. */
static size_t next_token(const char *p, size_t plen, size_t i, int *kind,
                         char *lit)
{
    switch (p[i]) {
    case '*':
        while (i + 1 < plen && p[i + 1] == '*')
            i++;
        *kind = TOK_STAR;
        return i + 1;
    case '?':
        *kind = TOK_ANY;
        return i + 1;
    case '[': {
        /* Walk the class the way Redis does; where it ends does not depend
         * on the string. */
        size_t n;
        i++;
        n = plen - i;
        if (n > 0 && p[i] == '^') {
            i++;
            n--;
        }
        for (;;) {
            if (n >= 2 && p[i] == '\\') {
                i++;
                n--;
            } else if (n == 0) {
                /* Unterminated: the class ends at the last pattern byte. */
                i--;
                break;
            } else if (p[i] == ']') {
                break;
            } else if (n >= 3 && p[i + 1] == '-') {
                i += 2;
                n -= 2;
            }
            i++;
            n--;
        }
        *kind = TOK_CLASS;
        return i + 1;
    }
    case '\\':
        if (i + 1 < plen) {
            *kind = TOK_LIT;
            *lit = p[i + 1];
            return i + 2;
        }
        /* A trailing backslash is a literal backslash. */
        *kind = TOK_LIT;
        *lit = '\\';
        return i + 1;
    default:
        *kind = TOK_LIT;
        *lit = p[i];
        return i + 1;
    }
}

/* Does the class starting at p[i] == '[' match byte @ch? The class is known
 * to end before @plen (see next_token). Comparisons use signed char values,
 * as Redis does on x86-64. */
static bool class_match(const char *p, size_t plen, size_t i, char ch,
                        bool nocase)
{
    bool neg, match = false;
    size_t n;

    i++;
    n = plen - i;
    neg = n > 0 && p[i] == '^';
    if (neg) {
        i++;
        n--;
    }
    for (;;) {
        if (n >= 2 && p[i] == '\\') {
            i++;
            n--;
            if (p[i] == ch) /* case-sensitive even with nocase (Redis) */
                match = true;
        } else if (n == 0) {
            break;
        } else if (p[i] == ']') {
            break;
        } else if (n >= 3 && p[i + 1] == '-') {
            int start = (signed char)p[i];
            int end = (signed char)p[i + 2];
            int c = (signed char)ch;
            if (start > end) {
                int t = start;
                start = end;
                end = t;
            }
            if (nocase) {
                start = fold(start);
                end = fold(end);
                c = fold(c);
            }
            i += 2;
            n -= 2;
            if (c >= start && c <= end)
                match = true;
        } else if (nocase ? fold((signed char)p[i]) == fold((signed char)ch)
                          : p[i] == ch) {
            match = true;
        }
        i++;
        n--;
    }
    return neg ? !match : match;
}

/* True when a pattern has more star groups followed by a non-star token than
 * Redis's nesting limit allows (such a pattern never matches in Redis). */
static bool too_many_stars(const char *p, size_t plen)
{
    size_t i = 0, groups = 0;
    bool pending = false; /* a star group not yet followed by a token */
    int kind;
    char lit;

    /* Fewer than 1001 "*x" pairs cannot exceed the limit. */
    if (plen <= 2 * GLOB_MAX_STAR_NESTING)
        return false;
    while (i < plen) {
        i = next_token(p, plen, i, &kind, &lit);
        if (kind == TOK_STAR) {
            pending = true;
        } else if (pending) {
            pending = false;
            if (++groups > GLOB_MAX_STAR_NESTING)
                return true;
        }
    }
    return false;
}

bool glob_match(const char *pattern, size_t plen, const char *str, size_t slen,
                bool nocase)
{
    size_t pi = 0, si = 0;
    size_t star_pi = SIZE_MAX, star_si = 0; /* backtracking point */
    int kind;
    char lit;

    /* Redis: the match loop does not run for an empty string, so only the
     * empty pattern matches it. */
    if (slen == 0)
        return plen == 0;
    if (too_many_stars(pattern, plen))
        return false;

    while (si < slen) {
        if (pi < plen) {
            size_t next = next_token(pattern, plen, pi, &kind, &lit);
            bool ok;

            if (kind == TOK_STAR) {
                if (next == plen)
                    return true; /* trailing star eats the rest */
                star_pi = next;
                star_si = si;
                pi = next;
                continue;
            }
            switch (kind) {
            case TOK_ANY:
                ok = true;
                break;
            case TOK_LIT:
                ok = nocase ? fold((signed char)lit) ==
                                  fold((signed char)str[si])
                            : lit == str[si];
                break;
            default:
                ok = class_match(pattern, plen, pi, str[si], nocase);
                break;
            }
            if (ok) {
                pi = next;
                si++;
                continue;
            }
        }
        /* Mismatch, or pattern exhausted with string left: let the last
         * star eat one more byte and retry the rest after it. */
        if (star_pi == SIZE_MAX)
            return false;
        pi = star_pi;
        si = ++star_si;
    }
    /* String exhausted: only stars may remain. */
    while (pi < plen && pattern[pi] == '*')
        pi++;
    return pi == plen;
}

bool glob_matches_all(const char *pattern, size_t plen)
{
    if (plen == 0)
        return false;
    for (size_t i = 0; i < plen; i++)
        if (pattern[i] != '*')
            return false;
    return true;
}
