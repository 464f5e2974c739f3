#include "arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define BLOCK_MIN (64 * 1024)
#define ALIGN 16

struct arena_block {
    arena_block *next; /* older block */
    size_t size;       /* usable bytes after the header */
    size_t used;
    _Alignas(ALIGN) unsigned char data[];
};

static void *pbAlloc(void *data, size_t size)
{
    return arena_alloc(data, size);
}

static void pbFree(void *data, void *p)
{
    /* Freed with the arena. */
    (void)data;
    (void)p;
}

void arena_init(arena *a)
{
    a->head = NULL;
    a->failed = false;
    a->pb.alloc = pbAlloc;
    a->pb.free = pbFree;
    a->pb.allocator_data = a;
}

void arena_free(arena *a)
{
    arena_block *b = a->head;
    while (b != NULL) {
        arena_block *next = b->next;
        free(b);
        b = next;
    }
    a->head = NULL;
}

void *arena_alloc(arena *a, size_t n)
{
    size_t need = (n + ALIGN - 1) & ~(size_t)(ALIGN - 1);
    if (need < n) {
        a->failed = true;
        return NULL;
    }
    arena_block *b = a->head;
    if (b == NULL || b->size - b->used < need) {
        size_t size = need > BLOCK_MIN ? need : BLOCK_MIN;
        if (size > SIZE_MAX - sizeof *b) {
            a->failed = true;
            return NULL;
        }
        b = malloc(sizeof *b + size);
        if (b == NULL) {
            a->failed = true;
            return NULL;
        }
        b->size = size;
        b->used = 0;
        b->next = a->head;
        a->head = b;
    }
    void *p = b->data + b->used;
    b->used += need;
    return p;
}

void *arena_calloc(arena *a, size_t n)
{
    void *p = arena_alloc(a, n);
    if (p != NULL) memset(p, 0, n);
    return p;
}

void *arena_dup(arena *a, const void *p, size_t n)
{
    if (n == SIZE_MAX) {
        a->failed = true;
        return NULL;
    }
    unsigned char *copy = arena_alloc(a, n + 1);
    if (copy == NULL) return NULL;
    if (n > 0) memcpy(copy, p, n);
    copy[n] = '\0';
    return copy;
}

void arena_reset(arena *a)
{
    a->failed = false;
    if (a->head == NULL) return;
    arena_block *b = a->head->next;
    while (b != NULL) {
        arena_block *next = b->next;
        free(b);
        b = next;
    }
    a->head->next = NULL;
    a->head->used = 0;
}

arena_mark arena_save(const arena *a)
{
    arena_mark m = {a->head, a->head != NULL ? a->head->used : 0};
    return m;
}

void arena_restore(arena *a, arena_mark m)
{
    while (a->head != NULL && a->head != m.block) {
        arena_block *next = a->head->next;
        free(a->head);
        a->head = next;
    }
    if (a->head != NULL) a->head->used = m.used;
}
