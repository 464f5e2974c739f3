/* glob: Redis's glob-style pattern matching (KEYS, SCAN/HSCAN MATCH, PSUBSCRIBE).
 *
 * Supports * ? [abc] [^a] [a-z] and backslash escapes, with Redis's exact
 * semantics (including its handling of unterminated classes), on binary
 * strings. */
#ifndef GCS_GLOB_H
#define GCS_GLOB_H

#include <stdbool.h>
#include <stddef.h>

bool glob_match(const char *pattern, size_t plen, const char *str, size_t slen,
                bool nocase);

/* True when @pattern matches every string ("*" or runs of '*'). */
bool glob_matches_all(const char *pattern, size_t plen);

#endif /* GCS_GLOB_H */
