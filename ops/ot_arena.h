/* Bump allocator for the activations of one step.
 *
 * A step allocates its activations and scratch from the arena, and the
 * next step starts with ot_arena_reset. Allocation is a pointer bump; the
 * first step may grow the arena (a new block when the current one is
 * full); reset then merges the blocks into one of the high-water size, so
 * from the second step on no memory is requested from the system at all
 * (no malloc per tensor, no page re-zeroing).
 *
 * Save/restore release everything allocated after a mark (backward passes
 * free their transient gradient buffers that way). Pointers are 64-byte
 * aligned and valid until reset, or a restore to an earlier mark. */
#ifndef OT_ARENA_H
#define OT_ARENA_H

#include <stddef.h>

typedef struct ot_arena ot_arena;

typedef struct {
  int block;
  size_t used;
} ot_arena_mark;

/* An arena with an initial block of `bytes` (0: allocated on first use).
 * The caller frees it with ot_arena_close. OT_ENOMEM if the block cannot be
 * allocated. */
int ot_arena_open(ot_arena **out, size_t bytes);
/* Frees every block. Accepts NULL. */
void ot_arena_close(ot_arena *a);

/* `bytes` of uninitialised memory; NULL only if the system is out of
 * memory (the caller returns OT_ENOMEM). */
void *ot_arena_alloc(ot_arena *a, size_t bytes);
/* n floats, uninitialised / zero-filled. */
float *ot_arena_floats(ot_arena *a, size_t n);
float *ot_arena_zeros(ot_arena *a, size_t n);

ot_arena_mark ot_arena_save(const ot_arena *a);
void ot_arena_restore(ot_arena *a, ot_arena_mark m);
/* Release everything (start of a step). */
void ot_arena_reset(ot_arena *a);

/* Bytes in use now, the most ever in use, and the bytes held in blocks. */
size_t ot_arena_used(const ot_arena *a);
size_t ot_arena_high_water(const ot_arena *a);
size_t ot_arena_capacity(const ot_arena *a);

#endif
