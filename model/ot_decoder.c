/* The tag decoder (see ot_decoder.h): a stack of ot_blocks over whole
 * sequences, and a KV-cached single-position step for generation. */
#include "ot_decoder.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ot_attention.h"
#include "ot_common.h"
#include "ot_kernels.h"

int ot_decoder_declare(ot_decoder *d, ot_params *p, const char *prefix, int n_layer,
                       const ot_block_config *cfg) {
  memset(d, 0, sizeof *d);
  d->n_layer = n_layer;
  d->cfg = *cfg;
  d->cfg.causal = 1;
  d->cfg.cross = 1;
  d->cfg.C_mem = cfg->C;
  d->L = ot_xcalloc((size_t)n_layer + 1, sizeof *d->L);
  char name[64];
  for (int l = 0; l < n_layer; l++) {
    snprintf(name, sizeof name, "%s.block%d", prefix, l);
    int rc = ot_block_declare(p, name, &d->cfg, &d->L[l]);
    if (rc) return rc;
  }
  return OT_OK;
}

void ot_decoder_free(ot_decoder *d) {
  free(d->L);
  d->L = NULL;
}

int ot_decoder_forward(ot_block_acts *acts, const ot_decoder *d, const float *params,
                       const float *x, int N, int T, const ot_block_memory *mem, float dropout,
                       uint64_t seed, uint64_t row0, int backward, ot_arena *arena,
                       const float **out) {
  OT_ASSERT(mem->seq_start && mem->seq_start[0] == 0 && mem->seq_start[mem->B] == N && mem->Tm >= 1);
  for (int l = 0; l < d->n_layer; l++) {
    int rc = ot_block_forward(&acts[l], &d->cfg, &d->L[l], params, x, NULL, N, T, mem, dropout,
                              ot_rng_mix(seed, (uint64_t)l), row0, backward, arena);
    if (rc) return rc;
    x = acts[l].out;
  }
  *out = x;
  return OT_OK;
}

/* ---- backward ---------------------------------------------------------------- */

int ot_decoder_backward(float *dx, float *dmem, float *dparams, float *dout,
                        const ot_block_acts *acts, const ot_decoder *d, const float *params,
                        ot_arena *arena) {
  OT_ASSERT(d->n_layer >= 1);
  const size_t n = (size_t)acts[0].B * acts[0].T * d->cfg.C;
  ot_arena_mark mark = ot_arena_save(arena);
  float *spare = ot_arena_floats(arena, n);
  if (!spare) return ot_fail(OT_ENOMEM, "tag decoder: arena cannot grow by %zu floats", n);
  for (int l = d->n_layer - 1; l >= 0; l--) {
    /* the first block's input gradient goes to dx (+=), the others to a
     * fresh buffer that becomes the next dout */
    float *target = l == 0 ? dx : spare;
    if (l > 0) memset(spare, 0, n * sizeof(float));
    int rc = ot_block_backward(target, dmem, dparams, dout, &acts[l], &d->cfg, &d->L[l], params,
                               arena);
    if (rc) {
      ot_arena_restore(arena, mark);
      return rc;
    }
    if (l > 0) {
      float *t = dout;
      dout = spare;
      spare = t;
    }
  }
  ot_arena_restore(arena, mark);
  return OT_OK;
}

/* ---- KV-cached generation ------------------------------------------------------- */

#define ALLOC(ptr, n)                                                                    \
  do {                                                                                   \
    if (!((ptr) = ot_arena_floats(arena, (n))))                                          \
      return ot_fail(OT_ENOMEM, "tag decoder: arena cannot grow by %zu floats", (size_t)(n)); \
  } while (0)

int ot_decoder_cache_init(ot_decoder_cache *c, const ot_decoder *d, const float *params,
                          const float *mem, const uint8_t *mem_mask, int B, int Tm,
                          const int32_t *item_of, int N, int Tmax, ot_arena *arena) {
  const int C = d->cfg.C, nl = d->n_layer;
  memset(c, 0, sizeof *c);
  c->N = N, c->Tmax = Tmax, c->B = B, c->Tm = Tm;
  c->mem_mask = mem_mask, c->item_of = item_of;
  const size_t per = (size_t)nl * (N > 0 ? N : 1) * Tmax * C;
  ALLOC(c->k, per);
  ALLOC(c->v, per);
  ALLOC(c->xkv, (size_t)nl * B * Tm * 2 * C + 1);
  for (int l = 0; l < nl; l++)
    ot_linear_forward(c->xkv + (size_t)l * B * Tm * 2 * C, mem, params + d->L[l].xkv_w,
                      params + d->L[l].xkv_b, B * Tm, C, 2 * C);
  return OT_OK;
}

int ot_decoder_cache_move(ot_decoder_cache *c, const ot_decoder *d, const int32_t *src,
                          const int32_t *dst, int n, int t, ot_arena *arena) {
  const int C = d->cfg.C, nl = d->n_layer;
  const size_t row = (size_t)(t + 1) * C; /* positions 0..t of one row */
  int moves = 0;
  for (int i = 0; i < n; i++) moves += src[i] != dst[i];
  if (!moves) return OT_OK;
  ot_arena_mark mark = ot_arena_save(arena);
  float *tmp = ot_arena_alloc(arena, (size_t)moves * 2 * row * sizeof(float));
  if (!tmp) return ot_fail(OT_ENOMEM, "decoder: no memory for the beam cache moves");
  for (int l = 0; l < nl; l++) {
    float *K = c->k + (size_t)l * c->N * c->Tmax * C, *V = c->v + (size_t)l * c->N * c->Tmax * C;
    float *p = tmp;
    for (int i = 0; i < n; i++) {
      if (src[i] == dst[i]) continue;
      memcpy(p, K + (size_t)src[i] * c->Tmax * C, row * sizeof(float)), p += row;
      memcpy(p, V + (size_t)src[i] * c->Tmax * C, row * sizeof(float)), p += row;
    }
    p = tmp;
    for (int i = 0; i < n; i++) {
      if (src[i] == dst[i]) continue;
      memcpy(K + (size_t)dst[i] * c->Tmax * C, p, row * sizeof(float)), p += row;
      memcpy(V + (size_t)dst[i] * c->Tmax * C, p, row * sizeof(float)), p += row;
    }
  }
  ot_arena_restore(arena, mark);
  return OT_OK;
}

/* One query row q [C] over the n cached keys/values K, V [n,C] of its
 * sequence -> out [C]; w: n floats of scratch. Direct loops: at one query
 * the products are too small for a BLAS call to pay off. */
static void attend_row(float *out, const float *q, const float *K, const float *V, int n, int C,
                       int NH, float *w) {
  const int hs = C / NH;
  const float scale = 1.0f / sqrtf((float)hs);
  for (int h = 0; h < NH; h++) {
    const float *qh = q + h * hs;
    float mx = -INFINITY, sum = 0.0f;
    for (int j = 0; j < n; j++) {
      const float *k = K + (size_t)j * C + h * hs;
      float s = 0.0f;
      for (int d = 0; d < hs; d++) s += qh[d] * k[d];
      w[j] = s * scale;
      mx = w[j] > mx ? w[j] : mx;
    }
    for (int j = 0; j < n; j++) sum += w[j] = expf(w[j] - mx);
    float *o = out + h * hs;
    for (int d = 0; d < hs; d++) o[d] = 0.0f;
    for (int j = 0; j < n; j++) {
      const float p = w[j] / sum, *v = V + (size_t)j * C + h * hs;
      for (int d = 0; d < hs; d++) o[d] += p * v[d];
    }
  }
}

/* Step scratch: on failure, give back what this call took. */
#define BALLOC(ptr, n, zero)                                                             \
  do {                                                                                   \
    if (!((ptr) = (zero) ? ot_arena_zeros(arena, (n)) : ot_arena_floats(arena, (n)))) {  \
      ot_arena_restore(arena, mark);                                                     \
      return ot_fail(OT_ENOMEM, "tag decoder: arena cannot grow by %zu floats", (size_t)(n)); \
    }                                                                                    \
  } while (0)

/* x [Na,C] at position t of sequences rows[] -> out [Na,C]. Rows of one
 * item are consecutive (rows ascend and sequences are grouped by item), so
 * the cross-attention is one product per item. */
int ot_decoder_step(float *out, ot_decoder_cache *c, const ot_decoder *d, const float *params,
                    const float *x, const int32_t *rows, int Na, int t, ot_arena *arena) {
  const int C = d->cfg.C, H = d->cfg.hidden, NH = d->cfg.n_head, Tm = c->Tm;
  const float *P = params;
  OT_ASSERT(t >= 0 && t < c->Tmax);
  if (Na == 0) return OT_OK;
  ot_arena_mark mark = ot_arena_save(arena);
  const size_t RC = (size_t)Na * C;
  float *h, *ln, *qkv, *y, *tmp, *fch, *att;
  BALLOC(h, RC, 0);
  BALLOC(ln, RC, 0);
  BALLOC(qkv, 3 * RC, 0);
  BALLOC(y, RC, 0);
  BALLOC(tmp, RC, 0);
  BALLOC(fch, (size_t)Na * H, 0);
  BALLOC(att, (size_t)NH * Na * (c->Tmax > Tm ? c->Tmax : Tm), 0);
  memcpy(h, x, RC * sizeof(float));
  for (int l = 0; l < d->n_layer; l++) {
    const ot_block_layout *L = &d->L[l];
    float *K = c->k + (size_t)l * c->N * c->Tmax * C, *V = c->v + (size_t)l * c->N * c->Tmax * C;
    const float *xkv = c->xkv + (size_t)l * c->B * Tm * 2 * C;
    /* self-attention over positions 0..t of each sequence, t from the cache */
    ot_layernorm_forward(ln, NULL, NULL, h, P + L->ln1_w, P + L->ln1_b, Na, C);
    ot_linear_forward(qkv, ln, P + L->qkv_w, P + L->qkv_b, Na, C, 3 * C);
    for (int i = 0; i < Na; i++) {
      const size_t base = (size_t)rows[i] * c->Tmax * C;
      memcpy(K + base + (size_t)t * C, qkv + (size_t)i * 3 * C + C, (size_t)C * sizeof(float));
      memcpy(V + base + (size_t)t * C, qkv + (size_t)i * 3 * C + 2 * C, (size_t)C * sizeof(float));
      attend_row(y + (size_t)i * C, qkv + (size_t)i * 3 * C, K + base, V + base, t + 1, C, NH, att);
    }
    ot_linear_forward(tmp, y, P + L->proj_w, P + L->proj_b, Na, C, C);
    ot_add_inplace(h, tmp, RC);
    /* cross-attention to the item's projected memory */
    ot_layernorm_forward(ln, NULL, NULL, h, P + L->lnx_w, P + L->lnx_b, Na, C);
    ot_linear_forward(qkv, ln, P + L->xq_w, P + L->xq_b, Na, C, C);
    for (int i0 = 0, i1; i0 < Na; i0 = i1) {
      const int b = c->item_of[rows[i0]];
      for (i1 = i0 + 1; i1 < Na && c->item_of[rows[i1]] == b; i1++) continue;
      OT_ASSERT(i1 == Na || c->item_of[rows[i1]] > b);
      const float *Kb = xkv + (size_t)b * Tm * 2 * C;
      ot_attention_forward(y + (size_t)i0 * C, att, qkv + (size_t)i0 * C, C, Kb, 2 * C, Kb + C,
                           2 * C, c->mem_mask ? c->mem_mask + (size_t)b * Tm : NULL, 0, 1, i1 - i0,
                           Tm, C, NH);
    }
    ot_linear_forward(tmp, y, P + L->xproj_w, P + L->xproj_b, Na, C, C);
    ot_add_inplace(h, tmp, RC);
    /* MLP */
    ot_layernorm_forward(ln, NULL, NULL, h, P + L->ln2_w, P + L->ln2_b, Na, C);
    ot_linear_forward(fch, ln, P + L->fc_w, P + L->fc_b, Na, C, H);
    ot_gelu_forward(fch, fch, (size_t)Na * H);
    ot_linear_forward(tmp, fch, P + L->fc2_w, P + L->fc2_b, Na, H, C);
    ot_add_inplace(h, tmp, RC);
  }
  memcpy(out, h, RC * sizeof(float));
  ot_arena_restore(arena, mark);
  return OT_OK;
}

double ot_decoder_forward_flops(const ot_decoder *d, int N, int T, int B, int Tm) {
  ot_block_config self = d->cfg;
  self.cross = 0;
  const double C = d->cfg.C, R = (double)N * T;
  double per = ot_block_forward_flops(&self, N, T, 0);
  per += 2.0 * R * C * C * 2.0;                 /* xq, xproj */
  per += 2.0 * (double)B * Tm * C * 2.0 * C;    /* memory keys/values, once per item */
  per += 4.0 * R * Tm * C;                      /* scores and weighted sum */
  return d->n_layer * per;
}
