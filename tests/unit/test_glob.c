/* Unit tests for gcs/glob.c: Redis 7 stringmatchlen() semantics.
 *
 * Every expectation in the tables below is what Redis 7.2's stringmatchlen()
 * returns for the same input on x86-64 Linux. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "glob.h"

typedef struct glob_case {
    const char *pat;
    size_t plen; /* 0: strlen(pat) */
    const char *str;
    size_t slen; /* 0: strlen(str) */
    bool nocase;
    bool want;
} glob_case;

#define C(p, s, w) { p, 0, s, 0, false, w }
#define CI(p, s, w) { p, 0, s, 0, true, w }
/* binary: explicit lengths */
#define CB(p, s, w) { p, sizeof(p) - 1, s, sizeof(s) - 1, false, w }

static const glob_case cases[] = {
    /* empty pattern / empty string (Redis: only "" matches "") */
    C("", "", true),
    C("", "a", false),
    C("*", "", false),
    C("**", "", false),
    C("?", "", false),
    C("a", "", false),
    /* literals */
    C("hello", "hello", true),
    C("hello", "hell", false),
    C("hell", "hello", false),
    C("hello", "Hello", false),
    /* stars */
    C("*", "anything", true),
    C("**", "x", true),
    C("***a", "bba", true),
    C("foo*", "foobar", true),
    C("foo*", "foo", true),
    C("foo**", "foo", true),
    C("foo*", "fo", false),
    C("*bar", "foobar", true),
    C("*bar", "foobarx", false),
    C("*o*", "foo", true),
    C("*o*", "bar", false),
    C("a*b", "ab", true),
    C("a*b", "axxxb", true),
    C("a*b", "axxxbx", false),
    C("a*b*c", "abxbxc", true),
    C("a*b*c", "acb", false),
    C("*a*b", "aaab", true),
    C("a*?", "a", false),
    C("a*?", "ab", true),
    C("*?*?*", "a", false),
    C("*?*?*", "ab", true),
    /* Redis keyspace.tcl examples */
    C("foo*", "foo_a", true),
    C("foo*", "key_x", false),
    C("{a}*", "{a}x", true),
    C("*{b}*", "{b}a", true),
    C("*{b}*", "{a}x", false),
    /* ? */
    C("h?llo", "hello", true),
    C("h?llo", "hallo", true),
    C("h?llo", "hllo", false),
    C("h*llo", "hllo", true),
    C("h*llo", "heeeello", true),
    C("??", "ab", true),
    C("??", "abc", false),
    /* classes */
    C("h[ae]llo", "hello", true),
    C("h[ae]llo", "hallo", true),
    C("h[ae]llo", "hillo", false),
    C("h[^e]llo", "hallo", true),
    C("h[^e]llo", "hbllo", true),
    C("h[^e]llo", "hello", false),
    C("h[a-b]llo", "hallo", true),
    C("h[a-b]llo", "hbllo", true),
    C("h[a-b]llo", "hcllo", false),
    C("[a-z]", "m", true),
    C("[a-z]", "M", false),
    C("[z-a]", "m", true), /* reversed range is swapped */
    C("[z-a]", "A", false),
    C("[^a-z]", "m", false),
    C("[^a-z]", "5", true),
    C("[a-cx-z]", "y", true),
    C("[a-cx-z]", "d", false),
    C("[abc]*", "cat", true),
    C("[[]", "[", true),
    C("[*]", "*", true),
    C("[*]", "a", false),
    C("[?]", "?", true),
    C("[?]", "a", false),
    C("[^^]", "^", false),
    C("[^^]", "a", true),
    C("[a^]", "^", true),
    C("[-a]", "-", true),
    C("[]", "a", false),       /* empty class matches nothing */
    C("[]]", "]", false),      /* "[]" then a literal ']' */
    C("[]]", "a]", false),
    C("[^]", "x", true),       /* negated empty class: any byte */
    C("[^]]", "x]", true),
    C("[^]]", "x", false),
    C("[a-]", "_", true),      /* range 'a'..']' (swapped: ']'..'a') */
    C("[a-]", "a", true),
    C("[a-]", "-", false),
    C("[a-]", "]", true),
    C("[a-]x", "]", true),     /* unterminated: "x" is a member too */
    C("[a-]x", "x", true),
    C("[a-]x", "]x", false),
    /* unterminated classes take the rest of the pattern */
    C("[abc", "b", true),
    C("[abc", "d", false),
    C("[abc", "bc", false),
    C("[", "[", false),
    C("[", "", false),
    C("[^", "x", true),
    C("[^", "xy", false),
    C("a[", "a", false),
    C("a[", "a[", false),
    C("[a-", "-", true),
    C("[a-", "a", true),
    C("[a-", "b", false),
    C("[a*", "*", true),
    C("[a*", "ab", false),
    C("x[ab\\", "x\\", true),   /* trailing backslash in a class is literal */
    /* escapes outside classes */
    C("\\*", "*", true),
    C("\\*", "a", false),
    C("\\*", "", false),
    C("\\?", "?", true),
    C("\\?", "x", false),
    C("\\[x\\]", "[x]", true),
    C("\\[x\\]", "x", false),
    C("\\a", "a", true),
    C("\\\\", "\\", true),
    C("a\\", "a\\", true),      /* trailing backslash is a literal backslash */
    C("a\\", "a", false),
    C("\\", "\\", true),
    C("\\^", "^", true),
    C("\\-", "-", true),
    C("*\\*", "abc*", true),
    C("*\\*", "abc", false),
    /* escapes inside classes */
    C("[\\]]", "]", true),
    C("[\\]]", "\\", false),
    C("[\\-]", "-", true),
    C("[\\-]", "a", false),
    C("[a\\-z]", "-", true),
    C("[a\\-z]", "b", false),
    C("[a\\-z]", "z", true),
    C("[\\^a]", "^", true),
    C("[\\\\]", "\\", true),
    C("[\\*]", "*", true),
    C("[^\\]]", "]", false),
    C("[^\\]]", "a", true),
    /* Ray: patterns with escaped specials must match literally */
    C("RAY864b004c\\-6305\\-42e3\\-ac46\\-adfa8eb6f752@*",
      "RAY864b004c-6305-42e3-ac46-adfa8eb6f752@ACTOR:1", true),
    C("RAY864b004c\\-6305\\-42e3\\-ac46\\-adfa8eb6f752@*",
      "RAY864b004c-6305-42e3-ac46-adfa8eb6f752@", true),
    C("RAY864b004c\\-6305\\-42e3\\-ac46\\-adfa8eb6f752@*",
      "RAY864b004c-6305-42e3-ac46-adfa8eb6f752", false),
    C("RAY864b004c\\-6305\\-42e3\\-ac46\\-adfa8eb6f752@*",
      "RAY864b004c-6305-42e3-ac46-adfa8eb6f753@x", false),
    C("RAY864b004c\\-6305\\-42e3\\-ac46\\-adfa8eb6f752@*",
      "RAYa64b004c-6305-42e3-ac46-adfa8eb6f752@x", false),
    C("prefix\\[x\\]\\*", "prefix[x]*", true),
    C("prefix\\[x\\]\\*", "prefix[x]y", false),
    C("prefix\\[x\\]\\*", "prefixx", false),
    C("prefix\\[x\\]\\*", "prefix[x]", false),
    C("a\\?b\\^c\\\\d", "a?b^c\\d", true),
    C("a\\?b\\^c\\\\d", "axb^c\\d", false),
    /* nocase */
    CI("HELLO", "hello", true),
    C("HELLO", "hello", false),
    CI("h*O", "HellO", true),
    CI("[A-C]x", "bX", true),
    CI("[a-c]", "B", true),
    C("[a-c]", "B", false),
    CI("[^a-c]", "B", false),
    CI("[XYZ]", "y", true),
    CI("\\A", "a", true),        /* escape outside a class folds case */
    CI("[\\A]", "a", false),     /* ...but not inside one (Redis) */
    CI("[\\A]", "A", true),
    CI("[Z-a]", "b", false),     /* 'Z'..'a' folds to 'z'..'a': empty */
    C("[Z-a]", "_", true),
    /* stars and the end of the string */
    C("a*", "a", true),
    C("a**", "a", true),
    C("a*b*", "ab", true),
    C("a*b*c", "ab", false),
    /* long runs */
    C("a*a*a*a*a*a*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false),
    C("*a*a*a*a*a*a*a*a*a*a", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", true),
    C("a*a*a*a*a*a*a*a*a*a*", "aaaaaaaaa", false),
    C("a*a*a*a*a*a*a*a*a*a*", "aaaaaaaaaa", true),
    /* binary: NUL bytes are ordinary bytes */
    CB("a\0*", "a\0bc", true),
    CB("a?c", "a\0c", true),
    CB("[\0]", "\0", true),
    CB("[^\0]", "\0", false),
    CB("a*", "a\0", true),
    CB("a", "a\0", false),
    CB("a\0", "a", false),
    CB("*\0", "xyz\0", true),
    CB("*\0", "xyz", false),
    CB("\\\0", "\0", true),
    /* bytes >= 0x80 compare as signed chars (x86-64 Redis) */
    C("\x80*", "\x80\xff", true),
    C("[\x80-\xff]", "\x90", true),
    C("[\x80-\xff]", "a", false),
    C("[a-\xc8]", "\xd0", true),  /* swapped: range -56..'a' */
    C("[a-\xc8]", "\x90", false), /* -112 */
    C("[a-\xc8]", "b", false),
    C("\xc3\xa9*", "\xc3\xa9t\xc3\xa9", true),
    /* nocase with high bytes: glibc tolower() maps -128..-2 to 128..254 */
    C("[\x01-\xc8]", "\xd0", true),   /* -56..1 holds -48 */
    CI("[\x01-\xc8]", "\xd0", false), /* folds to 200..1: empty */
    CI("[\xc8-\xd0]", "\xc9", true),
    CI("[\x80-\xff]", "\x90", false),
    CI("\xc8", "\xc8", true),
};

Test(glob, table)
{
    size_t n = sizeof(cases) / sizeof(cases[0]);
    size_t failed = 0;

    for (size_t i = 0; i < n; i++) {
        const glob_case *c = &cases[i];
        size_t plen = c->plen ? c->plen : strlen(c->pat);
        size_t slen = c->slen ? c->slen : strlen(c->str);
        bool got = glob_match(c->pat, plen, c->str, slen, c->nocase);
        if (got != c->want) {
            failed++;
            cr_log_error("case %zu: pattern \"%s\" string \"%s\" nocase %d: "
                         "got %d want %d", i, c->pat, c->str, c->nocase, got,
                         c->want);
        }
    }
    cr_assert_eq(failed, 0, "%zu of %zu cases failed", failed, n);
}

/* Lengths are honoured: bytes past plen/slen are never looked at. */
Test(glob, lengths_not_terminators)
{
    cr_assert(glob_match("abcdef", 3, "abcxyz", 3, false));
    cr_assert(glob_match("a*zzz", 2, "abc", 3, false));
    cr_assert(!glob_match("abc", 3, "abcd", 3 + 1, false));
    cr_assert(glob_match("[ab]", 4, "b", 1, false));
    cr_assert(glob_match("[ab]", 3, "b", 1, false)); /* unterminated "[ab" */
    cr_assert(!glob_match("[ab]", 3, "]", 1, false));
    cr_assert(glob_match("a\\", 2, "a\\", 2, false));
    /* Pattern and string without any terminator, in exact-size buffers. */
    char *p = malloc(3), *s = malloc(3);
    memcpy(p, "a*\\", 3);
    memcpy(s, "ab\\", 3);
    cr_assert(glob_match(p, 3, s, 3, false));
    memcpy(p, "[^", 2);
    cr_assert(glob_match(p, 2, s, 1, false));
    free(p);
    free(s);
}

/* Exponential in Redis 6 (CVE-2022-36021); linear-ish here. */
Test(glob, pathological_patterns, .timeout = 20)
{
    char s[41];
    memset(s, 'a', 40);
    s[40] = '\0';
    for (int i = 0; i < 1000; i++) {
        cr_assert(!glob_match("a*a*a*a*a*a*a*a*a*a*b", 21, s, 40, false));
        cr_assert(!glob_match("*a*a*a*a*a*a*a*a*a*a*b", 22, s, 40, true));
    }

    /* 500 stars against 1 MiB: no recursion, no blow-up. */
    size_t slen = 1 << 20, plen = 0;
    char *big = malloc(slen);
    char *pat = malloc(12000);
    memset(big, 'a', slen);
    for (int i = 0; i < 500; i++) {
        pat[plen++] = 'a';
        pat[plen++] = '*';
    }
    pat[plen++] = 'b';
    cr_assert(!glob_match(pat, plen, big, slen, false));
    big[slen - 1] = 'b';
    cr_assert(glob_match(pat, plen, big, slen, false));
    free(pat);
    free(big);
}

/* Redis stops at a star nesting depth of 1000: a pattern with more than
 * 1000 star groups that are followed by something never matches. */
static char *star_pattern(int groups, const char *tail, size_t *plen)
{
    size_t tl = strlen(tail), n = 0;
    char *p = malloc((size_t)groups * 3 + tl + 1);
    for (int i = 0; i < groups; i++) {
        p[n++] = '*';
        if (i % 2)
            p[n++] = '*'; /* runs of stars count once */
        p[n++] = 'a';
    }
    memcpy(p + n, tail, tl);
    n += tl;
    p[n] = '\0';
    *plen = n;
    return p;
}

Test(glob, redis_nesting_limit)
{
    size_t slen = 1200, plen;
    char *s = malloc(slen);
    char *p;
    memset(s, 'a', slen);

    p = star_pattern(1000, "", &plen);
    cr_assert(glob_match(p, plen, s, slen, false));
    free(p);
    p = star_pattern(1000, "*", &plen);
    cr_assert(glob_match(p, plen, s, slen, false));
    free(p);
    p = star_pattern(1001, "", &plen);
    cr_assert(!glob_match(p, plen, s, slen, false));
    free(p);
    p = star_pattern(1001, "**", &plen);
    cr_assert(!glob_match(p, plen, s, slen, false));
    free(p);
    /* 1000 "*a" then a trailing star: fine. */
    p = star_pattern(1000, "**", &plen);
    cr_assert(glob_match(p, plen, s, slen, false));
    free(p);
    free(s);
}

Test(glob, matches_all)
{
    cr_assert(glob_matches_all("*", 1));
    cr_assert(glob_matches_all("**", 2));
    cr_assert(glob_matches_all("*****", 5));
    cr_assert(!glob_matches_all("", 0));
    cr_assert(!glob_matches_all("a*", 2));
    cr_assert(!glob_matches_all("*a", 2));
    cr_assert(!glob_matches_all("\\*", 2));
    cr_assert(!glob_matches_all("*?", 2));
    cr_assert(!glob_matches_all("*[*]", 4));
    cr_assert(glob_matches_all("**x", 2)); /* only plen bytes count */
}

/* Cross-check against a tiny brute-force reference matcher that explores
 * every way to split the string (exponential, so small inputs only). It
 * covers the alphabet without classes and escapes, where the semantics are
 * plain: '*' any run, '?' one byte, other bytes literal; and Redis's rule
 * that only the empty pattern matches the empty string. */
static bool ref_match(const char *p, size_t pl, const char *s, size_t sl)
{
    if (pl == 0)
        return sl == 0;
    if (p[0] == '*') {
        for (size_t k = 0; k <= sl; k++)
            if (ref_match(p + 1, pl - 1, s + k, sl - k))
                return true;
        return false;
    }
    if (sl == 0)
        return false;
    if (p[0] == '?' || p[0] == s[0])
        return ref_match(p + 1, pl - 1, s + 1, sl - 1);
    return false;
}

Test(glob, random_against_reference)
{
    unsigned seed = 12345;
    char p[10], s[12];
    for (int it = 0; it < 200000; it++) {
        seed = seed * 1103515245u + 12345u;
        size_t pl = (seed >> 16) % 9;
        seed = seed * 1103515245u + 12345u;
        size_t sl = 1 + (seed >> 16) % 10;
        for (size_t i = 0; i < pl; i++) {
            seed = seed * 1103515245u + 12345u;
            p[i] = "ab*?"[(seed >> 16) % 4];
        }
        for (size_t i = 0; i < sl; i++) {
            seed = seed * 1103515245u + 12345u;
            s[i] = "ab"[(seed >> 16) % 2];
        }
        bool want = ref_match(p, pl, s, sl);
        bool got = glob_match(p, pl, s, sl, false);
        cr_assert_eq(got, want, "pattern %.*s string %.*s: got %d want %d",
                     (int)pl, p, (int)sl, s, got, want);
    }
}
