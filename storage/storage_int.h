/* storage internals exposed to the unit tests only. Not part of the API:
 * nothing outside storage/ and tests/unit/test_storage.c includes this. */
#ifndef GCS_STORAGE_INT_H
#define GCS_STORAGE_INT_H

#include "storage.h"

/* The ordering hash: bytes -> 64-bit value stored in every key. */
typedef uint64_t (*storage_hash_fn)(const void *data, size_t len);

/* The fixed on-disk hash (FNV-1a 64 then murmur3's fmix64 finalizer). */
uint64_t storage__default_hash(const void *data, size_t len);

/* Make @s order its names by @fn instead (NULL restores the default), so tests
 * can force hash collisions. Call it right after storage_open on an empty
 * environment: data written under one hash is not found under another. */
void storage__set_hash_for_tests(storage *s, storage_hash_fn fn);

#endif /* GCS_STORAGE_INT_H */
