/* The tag decoder's blocks (see ot_decoder.h): ot_block's math with the
 * cross-attention memory indexed by item, plus a KV-cached single-position
 * step for generation. */
#include "ot_decoder.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ot_attention.h"
#include "ot_common.h"
#include "ot_kernels.h"

/* dropout sites of a block: the same streams as ot_block's */
enum { SITE_ATTN = 1, SITE_XATTN = 2, SITE_MLP = 3 };

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

#define ALLOC(ptr, n)                                                                    \
  do {                                                                                   \
    if (!((ptr) = ot_arena_floats(arena, (n))))                                          \
      return ot_fail(OT_ENOMEM, "tag decoder: arena cannot grow by %zu floats", (size_t)(n)); \
  } while (0)

/* Cross-attention of every item's sequences (rows [s0*T, s1*T) of q) to the
 * item's memory keys/values (rows [b*Tm, (b+1)*Tm) of kv [B*Tm, 2C]):
 * one attention call per item with all its query rows. att: [N*T*NH*Tm],
 * item b's block at s0*T*NH*Tm. */
static void cross_forward(float *out, float *att, const float *q, const float *kv,
                          const ot_decoder_memory *mm, int T, int C, int NH) {
  for (int b = 0; b < mm->B; b++) {
    const size_t s0 = (size_t)mm->seq_start[b], rows = (size_t)(mm->seq_start[b + 1] - s0) * T;
    if (!rows) continue;
    const float *K = kv + (size_t)b * mm->Tm * 2 * C;
    ot_attention_forward(out + s0 * T * C, att + s0 * T * NH * mm->Tm, q + s0 * T * C, C, K,
                         2 * C, K + C, 2 * C, mm->mem_mask ? mm->mem_mask + (size_t)b * mm->Tm : NULL,
                         0, 1, (int)rows, mm->Tm, C, NH);
  }
}

static int block_forward(ot_block_acts *a, const ot_block_config *cfg, const ot_block_layout *L,
                         const float *P, const float *x, int N, int T,
                         const ot_decoder_memory *mm, float dropout, uint64_t seed,
                         uint64_t row0, int backward, ot_arena *arena) {
  const int C = cfg->C, H = cfg->hidden, NH = cfg->n_head, Tm = mm->Tm;
  const size_t R = (size_t)N * T, RC = R * C, Nm = (size_t)mm->B * Tm;
  memset(a, 0, sizeof *a);
  a->B = N, a->T = T, a->Tm = Tm;
  a->dropout = dropout, a->seed = seed, a->row0 = row0, a->backward = backward;
  a->x = x, a->mem = mm->mem, a->mem_mask = mm->mem_mask;

  /* causal self-attention; positions after a sequence's end only see
   * earlier ones, so no key mask is needed */
  ALLOC(a->ln1, RC);
  ALLOC(a->ln1_mean, R);
  ALLOC(a->ln1_rstd, R);
  ALLOC(a->qkv, 3 * RC);
  ALLOC(a->att, (size_t)N * NH * T * T);
  ALLOC(a->atty, RC);
  ALLOC(a->res1, RC);
  ot_layernorm_forward(a->ln1, a->ln1_mean, a->ln1_rstd, x, P + L->ln1_w, P + L->ln1_b, (int)R, C);
  ot_linear_forward(a->qkv, a->ln1, P + L->qkv_w, P + L->qkv_b, (int)R, C, 3 * C);
  ot_attention_forward(a->atty, a->att, a->qkv, 3 * C, a->qkv + C, 3 * C, a->qkv + 2 * C, 3 * C,
                       NULL, 1, N, T, T, C, NH);
  ot_linear_forward(a->res1, a->atty, P + L->proj_w, P + L->proj_b, (int)R, C, C);
  ot_block_dropout(a->res1, a, C, SITE_ATTN);
  ot_add_inplace(a->res1, x, RC);

  /* cross-attention to the item's memory */
  ALLOC(a->lnx, RC);
  ALLOC(a->lnx_mean, R);
  ALLOC(a->lnx_rstd, R);
  ALLOC(a->xq, RC);
  ALLOC(a->xkv, Nm * 2 * C);
  ALLOC(a->xatt, R * NH * Tm);
  ALLOC(a->xatty, RC);
  ALLOC(a->res2, RC);
  ot_layernorm_forward(a->lnx, a->lnx_mean, a->lnx_rstd, a->res1, P + L->lnx_w, P + L->lnx_b,
                       (int)R, C);
  ot_linear_forward(a->xq, a->lnx, P + L->xq_w, P + L->xq_b, (int)R, C, C);
  ot_linear_forward(a->xkv, mm->mem, P + L->xkv_w, P + L->xkv_b, (int)Nm, C, 2 * C);
  cross_forward(a->xatty, a->xatt, a->xq, a->xkv, mm, T, C, NH);
  ot_linear_forward(a->res2, a->xatty, P + L->xproj_w, P + L->xproj_b, (int)R, C, C);
  ot_block_dropout(a->res2, a, C, SITE_XATTN);
  ot_add_inplace(a->res2, a->res1, RC);

  /* MLP */
  ALLOC(a->ln2, RC);
  ALLOC(a->ln2_mean, R);
  ALLOC(a->ln2_rstd, R);
  ALLOC(a->fch, R * H);
  ALLOC(a->fch_gelu, R * H);
  ALLOC(a->out, RC);
  ot_layernorm_forward(a->ln2, a->ln2_mean, a->ln2_rstd, a->res2, P + L->ln2_w, P + L->ln2_b,
                       (int)R, C);
  ot_linear_forward(a->fch, a->ln2, P + L->fc_w, P + L->fc_b, (int)R, C, H);
  ot_block_gelu(a, R * H);
  ot_linear_forward(a->out, a->fch_gelu, P + L->fc2_w, P + L->fc2_b, (int)R, H, C);
  ot_block_dropout(a->out, a, C, SITE_MLP);
  ot_add_inplace(a->out, a->res2, RC);
  return OT_OK;
}

int ot_decoder_forward(ot_block_acts *acts, const ot_decoder *d, const float *params,
                       const float *x, int N, int T, const ot_decoder_memory *mem, float dropout,
                       uint64_t seed, uint64_t row0, int backward, ot_arena *arena,
                       const float **out) {
  OT_ASSERT(mem->seq_start[0] == 0 && mem->seq_start[mem->B] == N && mem->Tm >= 1);
  for (int l = 0; l < d->n_layer; l++) {
    int rc = block_forward(&acts[l], &d->cfg, &d->L[l], params, x, N, T, mem, dropout,
                           ot_rng_mix(seed, (uint64_t)l), row0, backward, arena);
    if (rc) return rc;
    x = acts[l].out;
  }
  *out = x;
  return OT_OK;
}

/* ---- backward ---------------------------------------------------------------- */

#define BALLOC(ptr, n, zero)                                                             \
  do {                                                                                   \
    if (!((ptr) = (zero) ? ot_arena_zeros(arena, (n)) : ot_arena_floats(arena, (n)))) {  \
      ot_arena_restore(arena, mark);                                                     \
      return ot_fail(OT_ENOMEM, "tag decoder: arena cannot grow by %zu floats", (size_t)(n)); \
    }                                                                                    \
  } while (0)


/* dout [N,T,C] -> dx (+=), dmem (+=), dparams (+=) */
static int block_backward(float *dx, float *dmem, float *G, const float *dout,
                          const ot_block_acts *a, const ot_block_config *cfg,
                          const ot_block_layout *L, const float *P,
                          const ot_decoder_memory *mm, ot_arena *arena) {
  const int C = cfg->C, H = cfg->hidden, NH = cfg->n_head, N = a->B, T = a->T, Tm = a->Tm;
  const size_t R = (size_t)N * T, RC = R * C, Nm = (size_t)mm->B * Tm;
  OT_ASSERT(a->backward);
  ot_arena_mark mark = ot_arena_save(arena);
  int max_rows = T; /* the cross-attention's largest query block */
  for (int b = 0; b < mm->B; b++) {
    int rows = (mm->seq_start[b + 1] - mm->seq_start[b]) * T;
    if (rows > max_rows) max_rows = rows;
  }
  float *dres, *dres1, *dproj = NULL, *dfch, *dln, *dqkv, *datty, *dxq, *dxkv, *scratch;
  BALLOC(dres, RC, 0);
  BALLOC(dres1, RC, 0);
  if (a->dropout > 0.0f) BALLOC(dproj, RC, 0);
  BALLOC(dfch, R * H, 0);
  BALLOC(dln, RC, 0);
  BALLOC(datty, RC, 0);
  BALLOC(dxq, RC, 1);
  BALLOC(dxkv, Nm * 2 * C, 1);
  BALLOC(dqkv, 3 * RC, 1);
  BALLOC(scratch, (size_t)max_rows * (Tm > T ? Tm : T), 0);

  /* MLP: out = res2 + Drop(fc2(gelu(fc(ln2(res2))))) */
  memcpy(dres, dout, RC * sizeof(float));
  const float *d = ot_block_dropout_grad(dproj, dout, a, C, SITE_MLP);
  ot_linear_backward_set(dfch, G + L->fc2_w, G + L->fc2_b, d, a->fch_gelu, P + L->fc2_w, (int)R,
                         H, C);
  ot_mul_inplace(dfch, a->fch, R * H); /* gelu', kept by the forward */
  ot_linear_backward_set(dln, G + L->fc_w, G + L->fc_b, dfch, a->ln2, P + L->fc_w, (int)R, C, H);
  ot_layernorm_backward(dres, G + L->ln2_w, G + L->ln2_b, dln, a->res2, P + L->ln2_w,
                        a->ln2_mean, a->ln2_rstd, (int)R, C);

  /* cross-attention: res2 = res1 + Drop(xproj(xattn(xq(lnx(res1)), kv(mem)))) */
  memcpy(dres1, dres, RC * sizeof(float));
  d = ot_block_dropout_grad(dproj, dres, a, C, SITE_XATTN);
  ot_linear_backward_set(datty, G + L->xproj_w, G + L->xproj_b, d, a->xatty, P + L->xproj_w,
                         (int)R, C, C);
  for (int b = 0; b < mm->B; b++) {
    const size_t s0 = (size_t)mm->seq_start[b], rows = (size_t)(mm->seq_start[b + 1] - s0) * T;
    if (!rows) continue;
    const size_t ko = (size_t)b * Tm * 2 * C;
    ot_attention_backward(dxq + s0 * T * C, dxkv + ko, dxkv + ko + C, scratch, datty + s0 * T * C,
                          a->xatt + s0 * T * NH * Tm, a->xq + s0 * T * C, C, a->xkv + ko, 2 * C,
                          a->xkv + ko + C, 2 * C,
                          mm->mem_mask ? mm->mem_mask + (size_t)b * Tm : NULL, 0, 1, (int)rows,
                          Tm, C, NH);
  }
  ot_linear_backward(dmem, G + L->xkv_w, G + L->xkv_b, dxkv, mm->mem, P + L->xkv_w, (int)Nm, C,
                     2 * C);
  ot_linear_backward_set(dln, G + L->xq_w, G + L->xq_b, dxq, a->lnx, P + L->xq_w, (int)R, C, C);
  ot_layernorm_backward(dres1, G + L->lnx_w, G + L->lnx_b, dln, a->res1, P + L->lnx_w,
                        a->lnx_mean, a->lnx_rstd, (int)R, C);

  /* causal self-attention: res1 = x + Drop(proj(attn(qkv(ln1(x))))) */
  ot_add_inplace(dx, dres1, RC);
  d = ot_block_dropout_grad(dproj, dres1, a, C, SITE_ATTN);
  ot_linear_backward_set(datty, G + L->proj_w, G + L->proj_b, d, a->atty, P + L->proj_w, (int)R,
                         C, C);
  ot_attention_backward(dqkv, dqkv + C, dqkv + 2 * C, scratch, datty, a->att, a->qkv, 3 * C,
                        a->qkv + C, 3 * C, a->qkv + 2 * C, 3 * C, NULL, 1, N, T, T, C, NH);
  ot_linear_backward_set(dln, G + L->qkv_w, G + L->qkv_b, dqkv, a->ln1, P + L->qkv_w, (int)R, C,
                         3 * C);
  ot_layernorm_backward(dx, G + L->ln1_w, G + L->ln1_b, dln, a->x, P + L->ln1_w, a->ln1_mean,
                        a->ln1_rstd, (int)R, C);
  ot_arena_restore(arena, mark);
  return OT_OK;
}

int ot_decoder_backward(float *dx, float *dmem, float *dparams, float *dout,
                        const ot_block_acts *acts, const ot_decoder *d, const float *params,
                        const ot_decoder_memory *mem, ot_arena *arena) {
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
    int rc = block_backward(target, dmem, dparams, dout, &acts[l], &d->cfg, &d->L[l], params, mem,
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
