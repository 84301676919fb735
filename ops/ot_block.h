/* Pre-LN transformer block built from the kernels:
 *
 *   x1  = x  + Drop(Wo  SelfAttn(LN1(x)))                 (key mask x_mask, optional causal)
 *   x2  = x1 + Drop(Wxo CrossAttn(LNx(x1), mem))          (cross variant only; ot_block_memory)
 *   out = x2 + Drop(W2 GELU(W1 LN2(x2)))
 *
 * Parameters live in an ot_params table: ot_block_declare registers them
 * under a name prefix and fills a layout of offsets, valid in the values,
 * grads and Adam buffers alike. Forward allocates its activations from the
 * step's arena and keeps them in an ot_block_acts the backward reads;
 * backward takes its transient gradient buffers from the arena and gives
 * them back before returning. Encoders and decoders stack blocks:
 * acts[l+1] takes acts[l].out as x. */
#ifndef OT_BLOCK_H
#define OT_BLOCK_H

#include <stdint.h>

#include "ot_arena.h"
#include "ot_params.h"
#include "ot_rng.h"

typedef struct {
  int C;      /* model width */
  int n_head; /* divides C */
  int hidden; /* MLP width, usually 4C */
  int causal; /* causal self-attention (decoders) */
  int cross;  /* add the cross-attention sublayer */
  int C_mem;  /* width of the cross-attention memory (cross only) */
} ot_block_config;

/* Offsets (floats) of the block's tensors in the parameter buffers. The
 * x* fields are unused (0) without cross-attention. Shapes: ln*_w/_b [C];
 * qkv_w [3C,C], qkv_b [3C]; proj_w [C,C]; xq_w [C,C]; xkv_w [2C,C_mem],
 * xkv_b [2C]; xproj_w [C,C]; fc_w [hidden,C], fc_b [hidden];
 * fc2_w [C,hidden], fc2_b [C]. */
typedef struct {
  size_t ln1_w, ln1_b, qkv_w, qkv_b, proj_w, proj_b;
  size_t lnx_w, lnx_b, xq_w, xq_b, xkv_w, xkv_b, xproj_w, xproj_b;
  size_t ln2_w, ln2_b, fc_w, fc_b, fc2_w, fc2_b;
} ot_block_layout;

/* The cross-attention's memory: the key/value tokens of B items, and which
 * sequences read which item. Item b owns sequences seq_start[b] ..
 * seq_start[b+1]-1 (it may own none), so its keys and values are projected
 * once for all of them and their cross-attention is one product: the tag
 * decoder's K prompts of an item decode K sequences over the item's fused
 * tokens. seq_start NULL: sequence b reads item b. */
typedef struct {
  const float *mem;         /* [B,Tm,C_mem] */
  const uint8_t *mem_mask;  /* [B,Tm] 1 valid key, 0 padding (NULL: all valid) */
  const int32_t *seq_start; /* [B+1], seq_start[0] = 0, nondecreasing; or NULL */
  int B, Tm;
} ot_block_memory;

/* Activations of one forward (pointers into the arena, plus what the
 * backward needs to know about the call). */
typedef struct {
  int B, T;
  float dropout;
  uint64_t seed, row0; /* dropout masks: see ot_block_forward */
  const float *x;
  const uint8_t *x_mask;
  ot_block_memory mem; /* the call's (cross only; else zeroed) */
  float *ln1, *ln1_mean, *ln1_rstd, *qkv, *att, *atty, *res1;
  float *lnx, *lnx_mean, *lnx_rstd, *xq, *xkv, *xatt, *xatty, *res2;
  int backward; /* the forward kept what ot_block_backward needs */
  float *ln2, *ln2_mean, *ln2_rstd, *fch_gelu;
  float *fch; /* the fc output; with `backward`, gelu' of it (in place) */
  float *out; /* [B,T,C] */
} ot_block_acts;

/* Validates cfg (OT_EINVAL) and declares the block's tensors as
 * "<prefix>.ln1.w", "<prefix>.attn.qkv.w", ...; matrices decay, biases and
 * LayerNorm parameters do not. */
int ot_block_declare(ot_params *p, const char *prefix, const ot_block_config *cfg,
                     ot_block_layout *L);

/* Initialise the block's values: LayerNorm w = 1, b = 0; biases 0; matrices
 * N(0, std^2), except the three projections into the residual stream
 * (proj, xproj, fc2) with N(0, proj_std^2) (GPT-2 uses
 * proj_std = std / sqrt(2 * n_layers)). */
void ot_block_init(float *values, const ot_block_layout *L, const ot_block_config *cfg,
                   ot_rng *rng, float std, float proj_std);

/* x [B,T,C] (B sequences), x_mask [B,T] (1 valid; NULL all valid), mem:
 * the cross variant's memory (else NULL; its seq_start, if any, must end
 * at B); params: the values buffer. dropout: residual dropout probability (0 in evaluation);
 * sequence b's masks are a function of (seed, row0 + b) only, so a caller
 * that passes the global position of its first sequence gets the same masks
 * however the sequences are split into passes. backward: 1 when
 * ot_block_backward may follow (the forward then also keeps gelu', which
 * inference does not pay for). Result in acts->out. x, the masks and what
 * mem points to must stay alive until the backward (acts copies *mem).
 * OT_ENOMEM if the arena cannot grow. */
int ot_block_forward(ot_block_acts *acts, const ot_block_config *cfg, const ot_block_layout *L,
                     const float *params, const float *x, const uint8_t *x_mask, int B, int T,
                     const ot_block_memory *mem, float dropout, uint64_t seed, uint64_t row0,
                     int backward, ot_arena *arena);

/* Residual dropout of a sublayer's output x [B,T,C] in place, with the
 * masks of acts' call and one stream per sublayer `site`; the backward
 * version writes the gradient of the dropout's input into `scratch` (or
 * returns dres itself when there is no dropout). Shared by every block
 * flavour (ot_block, the tag decoder). */
void ot_block_dropout(float *x, const ot_block_acts *acts, int C, uint64_t site);
/* GELU of the MLP: fch [n] -> fch_gelu [n], and with acts->backward gelu'
 * into fch (in place) for the backward, a multiply there. */
void ot_block_gelu(ot_block_acts *acts, size_t n);
const float *ot_block_dropout_grad(float *scratch, const float *dres, const ot_block_acts *acts,
                                   int C, uint64_t site);

/* dout [B,T,C] -> dx [B,T,C] (+=), dmem [mem.B,Tm,C_mem] (+=, cross only;
 * NULL to skip), dparams: the grads buffer (+=, same layout). */
int ot_block_backward(float *dx, float *dmem, float *dparams, const float *dout,
                      const ot_block_acts *acts, const ot_block_config *cfg,
                      const ot_block_layout *L, const float *params, ot_arena *arena);

/* Floating-point operations of the matrix products of one forward (2 per
 * multiply-add; masks ignored), for throughput reports. The backward does
 * twice as many. */
double ot_block_forward_flops(const ot_block_config *cfg, int B, int T, int Tm);

#endif
