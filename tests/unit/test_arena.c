/* Unit tests for gcs/arena: the bump allocator behind decoded records. */
#include <criterion/criterion.h>

#include <stdint.h>
#include <string.h>

#include "arena.h"

Test(arena, allocations_are_aligned_and_distinct)
{
    arena a;
    arena_init(&a);
    unsigned char *p = arena_alloc(&a, 3);
    unsigned char *q = arena_alloc(&a, 5);
    cr_assert_not_null(p);
    cr_assert_not_null(q);
    cr_assert_eq((uintptr_t)p % 16, 0);
    cr_assert_eq((uintptr_t)q % 16, 0);
    cr_assert_geq(q - p, 16);
    memset(p, 0xaa, 3);
    memset(q, 0x55, 5);
    cr_assert_eq(p[2], 0xaa);
    char *s = arena_dup(&a, "abc", 3);
    cr_assert_str_eq(s, "abc");
    /* Bigger than a block: a block of its own. */
    unsigned char *big = arena_alloc(&a, 1 << 20);
    cr_assert_not_null(big);
    memset(big, 1, 1 << 20);
    cr_assert(!a.failed);
    arena_free(&a);
    cr_assert_null(a.head);
}

Test(arena, reset_keeps_the_newest_block_for_reuse)
{
    arena a;
    arena_init(&a);
    arena_reset(&a); /* nothing yet: a no-op */
    cr_assert_null(a.head);
    void *first = arena_alloc(&a, 100);
    (void)arena_alloc(&a, 200 * 1024); /* a second, newer block */
    arena_block *newest = a.head;
    arena_reset(&a);
    cr_assert_eq(a.head, newest);
    /* The kept block is empty: the next allocation starts at its front. */
    void *again = arena_alloc(&a, 100);
    cr_assert_not_null(again);
    cr_assert_eq(a.head, newest);
    arena_reset(&a);
    cr_assert_eq(arena_alloc(&a, 100), again);
    (void)first;
    arena_free(&a);
}

Test(arena, reset_clears_a_failure)
{
    arena a;
    arena_init(&a);
    cr_assert_null(arena_alloc(&a, SIZE_MAX - 4));
    cr_assert(a.failed);
    arena_reset(&a);
    cr_assert(!a.failed);
    cr_assert_not_null(arena_alloc(&a, 8));
    arena_free(&a);
}

Test(arena, restore_frees_back_to_a_mark)
{
    arena a;
    arena_init(&a);
    (void)arena_alloc(&a, 10);
    arena_mark m = arena_save(&a);
    void *p = arena_alloc(&a, 10);
    (void)arena_alloc(&a, 300 * 1024);
    arena_restore(&a, m);
    cr_assert_eq(arena_alloc(&a, 10), p);
    arena_free(&a);
}
