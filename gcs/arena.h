/* arena: a bump allocator for the memory of one command: the protobuf
 * records it decodes, edits and encodes. Everything is freed at once (or
 * back to a saved mark), so records can point at each other's memory and at
 * static strings without per-field ownership rules.
 *
 * A failed allocation returns NULL and sets arena.failed; the caller turns it
 * into an error. Not thread-safe. */
#ifndef GCS_ARENA_H
#define GCS_ARENA_H

#include <stdbool.h>
#include <stddef.h>

#include <protobuf-c/protobuf-c.h>

typedef struct arena_block arena_block;

typedef struct arena {
    arena_block *head; /* newest block; allocations come from it */
    bool failed;       /* an allocation failed since arena_init */
    ProtobufCAllocator pb; /* protobuf-c allocator drawing from this arena */
} arena;

/* A point to roll back to with arena_restore. */
typedef struct arena_mark {
    arena_block *block;
    size_t used;
} arena_mark;

void arena_init(arena *a);

/* Free every block. The arena may be used again after arena_init. */
void arena_free(arena *a);

/* @n bytes aligned for any type, valid until arena_free or a restore to a
 * mark taken before this call. NULL when memory is short. */
void *arena_alloc(arena *a, size_t n);

/* Zeroed @n bytes. */
void *arena_calloc(arena *a, size_t n);

/* A copy of @n bytes at @p, plus a terminating NUL (so a copied string is a C
 * string). NULL when memory is short. */
void *arena_dup(arena *a, const void *p, size_t n);

/* Free everything, but keep the newest block, emptied, for what comes next:
 * a loop that allocates and resets reuses one block instead of calling
 * malloc each time. Clears arena.failed. */
void arena_reset(arena *a);

arena_mark arena_save(const arena *a);

/* Free everything allocated since @m was taken. */
void arena_restore(arena *a, arena_mark m);

#endif /* GCS_ARENA_H */
