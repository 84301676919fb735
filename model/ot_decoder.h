/* The tag decoder: a stack of pre-LN blocks with causal self-attention and
 * cross-attention to a memory that groups of sequences share.
 *
 *   x1  = x  + Drop(Wo  CausalSelfAttn(LN1(x)))
 *   x2  = x1 + Drop(Wxo CrossAttn(LNx(x1), mem[item of the sequence]))
 *   out = x2 + Drop(W2 GELU(W1 LN2(x2)))
 *
 * ot_blocks (causal = cross = 1) whose memory is indexed by item, not by
 * sequence (ot_block_memory with seq_start): an item's K prompts decode K
 * sequences that all read the item's fused tokens, so the memory's keys and
 * values are projected once per item (B*Tm rows) instead of once per
 * sequence (N*Tm rows), and the cross-attention of all of an item's
 * sequences is one product. The memory is whatever the caller passes: the
 * fused tokens, and for rag its retrieved tags and title words as extra
 * memory tokens (with their mask).
 *
 * Two ways to run it: the whole sequences at once (training, and the
 * uncached reference decoding), and one position at a time with a KV cache
 * (generation: position t costs O(t) attention instead of recomputing the
 * prefix). Activations, scratch and caches come from the caller's arena. */
#ifndef OT_DECODER_H
#define OT_DECODER_H

#include <stdint.h>

#include "ot_arena.h"
#include "ot_block.h"
#include "ot_params.h"

typedef struct {
  int n_layer;
  ot_block_config cfg; /* causal = 1, cross = 1, C_mem = cfg.C */
  ot_block_layout *L;  /* [n_layer], owned (ot_decoder_free) */
} ot_decoder;

/* Declare n_layer blocks "<prefix>.block<l>" (cfg: C, n_head, hidden; causal,
 * cross and C_mem are set here). d->L is allocated: free it with
 * ot_decoder_free. */
int ot_decoder_declare(ot_decoder *d, ot_params *p, const char *prefix, int n_layer,
                       const ot_block_config *cfg);
void ot_decoder_free(ot_decoder *d); /* accepts a zeroed decoder */

/* x [N,T,C] -> *out [N,T,C] (the last block's output, in the arena). mem:
 * seq_start required, ending at N. acts: [n_layer], kept for the backward
 * with x and what mem points to alive. dropout 0 in
 * evaluation; sequence n's masks depend on (seed, row0 + n) as in
 * ot_block_forward, and `backward` says, as there, whether
 * ot_decoder_backward may follow. OT_ENOMEM if the arena cannot grow. */
int ot_decoder_forward(ot_block_acts *acts, const ot_decoder *d, const float *params,
                       const float *x, int N, int T, const ot_block_memory *mem, float dropout,
                       uint64_t seed, uint64_t row0, int backward, ot_arena *arena,
                       const float **out);

/* dout [N,T,C] (overwritten: used as scratch) -> dx [N,T,C] (+=), dmem
 * [B,Tm,C] (+=; NULL to skip), dparams (+=). The memory is the forward's
 * (acts hold it). */
int ot_decoder_backward(float *dx, float *dmem, float *dparams, float *dout,
                        const ot_block_acts *acts, const ot_decoder *d, const float *params,
                        ot_arena *arena);

/* KV cache for generating N sequences of at most Tmax positions; sequence n
 * reads memory item item_of[n]. Holds every layer's keys and values of the
 * positions decoded so far, and the memory's projected keys and values. */
typedef struct {
  int N, Tmax, B, Tm;
  float *k, *v;            /* [n_layer, N, Tmax, C] */
  float *xkv;              /* [n_layer, B, Tm, 2C] */
  const uint8_t *mem_mask; /* [B,Tm] or NULL */
  const int32_t *item_of;  /* [N] */
} ot_decoder_cache;

/* Allocate the cache in the arena and project the memory [B,Tm,C] once per
 * layer. mem_mask and item_of must stay alive while the cache is used. */
int ot_decoder_cache_init(ot_decoder_cache *c, const ot_decoder *d, const float *params,
                          const float *mem, const uint8_t *mem_mask, int B, int Tm,
                          const int32_t *item_of, int N, int Tmax, ot_arena *arena);

/* Beam search: row dst[i] of the cache takes over row src[i]'s keys and
 * values of positions 0..t, for i < n (every source is read before any
 * destination is written, so the moves may overlap; src[i] == dst[i] is
 * free). OT_ENOMEM if the arena cannot hold the copies. */
int ot_decoder_cache_move(ot_decoder_cache *c, const ot_decoder *d, const int32_t *src,
                          const int32_t *dst, int n, int t, ot_arena *arena);

/* One position t (0 <= t < Tmax; positions 0..t-1 of these sequences done)
 * of the sequences rows[0..Na), ascending by item (item_of[rows[i]]
 * nondecreasing: an item's rows then share one cross-attention product):
 * x [Na,C] their inputs at t -> out [Na,C] the last block's output.
 * Evaluation mode (no dropout). Scratch is given back to the arena before
 * returning. */
int ot_decoder_step(float *out, ot_decoder_cache *c, const ot_decoder *d, const float *params,
                    const float *x, const int32_t *rows, int Na, int t, ot_arena *arena);

/* Matrix-product FLOPs of one forward over N sequences of T positions with
 * memory [B,Tm] (the memory projected once per item). */
double ot_decoder_forward_flops(const ot_decoder *d, int N, int T, int B, int Tm);

#endif
