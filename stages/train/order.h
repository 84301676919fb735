/* The order in which training items are seen: a fresh permutation of the
 * split every epoch, drawn from one seeded random stream, consumed in global
 * batches that run on into the next epoch (every batch has exactly
 * train.batch items; every epoch visits every item once, whatever the rank
 * count). Every rank computes the same order; a rank takes a contiguous
 * slice of each global batch (ot_order_slice).
 *
 * The data position (epoch, offset, and the stream state before the current
 * epoch's permutation was drawn) is what a checkpoint saves: restoring it
 * redraws the same permutation and continues the same stream. */
#ifndef OT_ORDER_H
#define OT_ORDER_H

#include "ot_rng.h"

#include <stdint.h>

typedef struct {
  int64_t epoch;   /* epochs completed before the current one */
  int64_t offset;  /* items of the current epoch already handed out */
  uint64_t rng[OT_RNG_STATE_WORDS]; /* stream state before this epoch's permutation */
} ot_order_pos;

typedef struct ot_order ot_order;

/* Order over n items (1 <= n < 2^31) starting at epoch 0, offset 0, stream
 * seeded from `seed`. Caller owns *out (ot_order_close). */
int ot_order_open(ot_order **out, int64_t n, uint64_t seed);
/* Order over n items resumed at `pos` (from ot_order_get_pos). OT_EINVAL
 * if the position does not fit n or the stream state is invalid. */
int ot_order_open_at(ot_order **out, int64_t n, const ot_order_pos *pos);
void ot_order_close(ot_order *o); /* accepts NULL */
/* The next `count` items (global dataset indices) into items[count]. */
void ot_order_next(ot_order *o, int64_t count, int64_t *items);
/* Position of the next item to be handed out. */
void ot_order_get_pos(const ot_order *o, ot_order_pos *pos);

/* Rank r of P's contiguous slice [*lo, *hi) of a global batch of B items:
 * slices cover the batch, in rank order, sizes differing by at most one. */
void ot_order_slice(int64_t B, int P, int r, int64_t *lo, int64_t *hi);

#endif
