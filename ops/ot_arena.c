#include "ot_arena.h"

#include <stdlib.h>
#include <string.h>

#include "ot_common.h"

#define ARENA_ALIGN 64
#define ARENA_MIN_BLOCK ((size_t)1 << 20)
#define ARENA_MAX_BLOCKS 64

typedef struct {
  char *mem;
  size_t cap, used;
} arena_block;

struct ot_arena {
  arena_block blocks[ARENA_MAX_BLOCKS];
  int nblocks, cur;
  size_t before_cur; /* capacity of blocks[0..cur-1] */
  size_t high;
};

static size_t round_up(size_t n) { return (n + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN; }

static int add_block(ot_arena *a, size_t bytes) {
  if (a->nblocks == ARENA_MAX_BLOCKS) return 0;
  bytes = round_up(bytes);
  char *mem = aligned_alloc(ARENA_ALIGN, bytes);
  if (!mem) return 0;
  a->blocks[a->nblocks++] = (arena_block){mem, bytes, 0};
  return 1;
}

int ot_arena_open(ot_arena **out, size_t bytes) {
  ot_arena *a = ot_xcalloc(1, sizeof *a);
  if (bytes && !add_block(a, bytes)) {
    free(a);
    *out = NULL;
    return ot_fail(OT_ENOMEM, "cannot allocate an arena of %zu bytes", bytes);
  }
  *out = a;
  return OT_OK;
}

void ot_arena_close(ot_arena *a) {
  if (!a) return;
  for (int i = 0; i < a->nblocks; i++) free(a->blocks[i].mem);
  free(a);
}

void *ot_arena_alloc(ot_arena *a, size_t bytes) {
  bytes = round_up(bytes ? bytes : 1);
  for (;;) {
    if (a->cur < a->nblocks) {
      arena_block *b = &a->blocks[a->cur];
      if (b->cap - b->used >= bytes) {
        void *p = b->mem + b->used;
        b->used += bytes;
        size_t in_use = a->before_cur + b->used;
        if (in_use > a->high) a->high = in_use;
        return p;
      }
      if (a->cur + 1 < a->nblocks) { /* move on to a (free) later block */
        a->before_cur += b->cap;
        a->cur++;
        a->blocks[a->cur].used = 0;
        continue;
      }
      if (b->used == 0 && a->nblocks == 1) { /* nothing in it: replace */
        free(b->mem);
        a->nblocks = 0;
      } else {
        a->before_cur += b->cap;
        a->cur++;
      }
    }
    size_t grow = a->before_cur > ARENA_MIN_BLOCK ? a->before_cur : ARENA_MIN_BLOCK;
    if (!add_block(a, bytes > grow ? bytes : grow)) return NULL;
    a->cur = a->nblocks - 1;
  }
}

float *ot_arena_floats(ot_arena *a, size_t n) { return ot_arena_alloc(a, n * sizeof(float)); }

float *ot_arena_zeros(ot_arena *a, size_t n) {
  float *p = ot_arena_floats(a, n);
  if (p) memset(p, 0, n * sizeof(float));
  return p;
}

ot_arena_mark ot_arena_save(const ot_arena *a) {
  ot_arena_mark m = {a->cur, a->cur < a->nblocks ? a->blocks[a->cur].used : 0};
  return m;
}

void ot_arena_restore(ot_arena *a, ot_arena_mark m) {
  OT_ASSERT(m.block <= a->cur);
  while (a->cur > m.block) {
    if (a->cur < a->nblocks) a->blocks[a->cur].used = 0;
    a->cur--;
    a->before_cur -= a->blocks[a->cur].cap;
  }
  if (a->cur < a->nblocks) {
    OT_ASSERT(m.used <= a->blocks[a->cur].used);
    a->blocks[a->cur].used = m.used;
  }
}

void ot_arena_reset(ot_arena *a) {
  if (a->nblocks > 1) {
    /* The last step needed more than one block: replace them by one block
     * holding the high-water mark, so later steps never grow again. */
    size_t want = a->high;
    for (int i = 0; i < a->nblocks; i++) free(a->blocks[i].mem);
    a->nblocks = 0;
    if (!add_block(a, want)) { /* keep working: later allocations grow again */
      a->cur = 0;
      a->before_cur = 0;
      return;
    }
  }
  a->cur = 0;
  a->before_cur = 0;
  if (a->nblocks) a->blocks[0].used = 0;
}

size_t ot_arena_used(const ot_arena *a) {
  return a->before_cur + (a->cur < a->nblocks ? a->blocks[a->cur].used : 0);
}

size_t ot_arena_high_water(const ot_arena *a) { return a->high; }

size_t ot_arena_capacity(const ot_arena *a) {
  size_t c = 0;
  for (int i = 0; i < a->nblocks; i++) c += a->blocks[i].cap;
  return c;
}
