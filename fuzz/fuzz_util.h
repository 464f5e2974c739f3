/* fuzz_util.h: small helpers every fuzz target and the corpus generator
 * share. Header-only (static functions): each target is one translation
 * unit. */
#ifndef FUZZ_UTIL_H
#define FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Whether two byte strings are equal. An empty buffer may be a NULL
 * pointer, which memcmp must not be given even with a length of 0. */
static inline bool fz_same_bytes(const void *a, size_t alen, const void *b,
                                 size_t blen)
{
    return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

/* The checksum in a state dump's trailer (storage.h, "dumps"): FNV-1a 64
 * of every byte before it. Targets recompute it so that mutations get past
 * the check and reach the parser behind it. */
static inline uint64_t fz_dump_checksum(const uint8_t *p, size_t n)
{
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= UINT64_C(0x100000001b3);
    }
    return h;
}

/* Remove the LMDB environment directory @dir and its two files. An
 * environment still open keeps its files (open and mapped) until closed,
 * so a target may call this right after opening. */
static inline void fz_remove_store_dir(const char *dir)
{
    char path[600];
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/lock.mdb", dir);
    unlink(path);
    rmdir(dir);
}

#endif
