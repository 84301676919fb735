#include "order.h"

#include "ot_common.h"

#include <stdlib.h>
#include <string.h>

struct ot_order {
  int64_t n;
  ot_order_pos pos;
  ot_rng rng;     /* the stream after drawing the current epoch's permutation */
  int32_t *perm;  /* [n] the current epoch's permutation */
};

/* Draw the permutation of the epoch whose pre-draw stream state is pos.rng. */
static void draw_epoch(ot_order *o) {
  ot_rng_set_state(&o->rng, o->pos.rng);
  for (int64_t i = 0; i < o->n; i++) o->perm[i] = (int32_t)i;
  ot_rng_shuffle_i32(&o->rng, o->perm, (size_t)o->n);
}

int ot_order_open_at(ot_order **out, int64_t n, const ot_order_pos *pos) {
  if (n < 1 || n > INT32_MAX) return ot_fail(OT_EINVAL, "training split of %lld items: need 1..2^31-1", (long long)n);
  if (pos->epoch < 0 || pos->offset < 0 || pos->offset >= n)
    return ot_fail(OT_EINVAL, "data position epoch %lld offset %lld does not fit a split of %lld items",
                   (long long)pos->epoch, (long long)pos->offset, (long long)n);
  ot_rng probe;
  if (ot_rng_set_state(&probe, pos->rng)) return ot_fail(OT_EINVAL, "data position: invalid random state");
  ot_order *o = ot_xcalloc(1, sizeof *o);
  o->perm = malloc((size_t)n * sizeof *o->perm);
  if (!o->perm) {
    free(o);
    return ot_fail(OT_ENOMEM, "cannot allocate the order of %lld items", (long long)n);
  }
  o->n = n;
  o->pos = *pos;
  draw_epoch(o);
  *out = o;
  return OT_OK;
}

int ot_order_open(ot_order **out, int64_t n, uint64_t seed) {
  ot_order_pos pos = {0, 0, {0}};
  ot_rng r;
  /* A stream of its own: the model's initialisation uses `seed` directly. */
  ot_rng_seed(&r, ot_rng_mix(seed, 0x6f726465722d3031ULL));
  ot_rng_get_state(&r, pos.rng);
  return ot_order_open_at(out, n, &pos);
}

void ot_order_close(ot_order *o) {
  if (!o) return;
  free(o->perm);
  free(o);
}

void ot_order_next(ot_order *o, int64_t count, int64_t *items) {
  for (int64_t k = 0; k < count; k++) {
    items[k] = o->perm[o->pos.offset++];
    if (o->pos.offset == o->n) { /* next epoch continues the stream */
      o->pos.epoch++;
      o->pos.offset = 0;
      ot_rng_get_state(&o->rng, o->pos.rng);
      draw_epoch(o);
    }
  }
}

void ot_order_get_pos(const ot_order *o, ot_order_pos *pos) { *pos = o->pos; }

void ot_order_slice(int64_t B, int P, int r, int64_t *lo, int64_t *hi) {
  OT_ASSERT(P >= 1 && r >= 0 && r < P && B >= 0);
  *lo = B * r / P;
  *hi = B * (r + 1) / P;
}
