#include "ot_block.h"

#include <stdio.h>
#include <string.h>

#include "ot_attention.h"
#include "ot_common.h"
#include "ot_kernels.h"

/* ---- parameters ------------------------------------------------------------ */

static int declare(ot_params *p, const char *prefix, const char *name, int rows, int cols,
                   int decay, size_t *offset) {
  char full[OT_PARAM_NAME_MAX + 32];
  snprintf(full, sizeof full, "%s.%s", prefix, name);
  int shape[2] = {rows, cols};
  return ot_params_add(p, full, cols ? 2 : 1, shape, decay, offset);
}

int ot_block_declare(ot_params *p, const char *prefix, const ot_block_config *cfg,
                     ot_block_layout *L) {
  const int C = cfg->C, H = cfg->hidden;
  if (C < 1 || cfg->n_head < 1 || C % cfg->n_head || H < 1 || (cfg->cross && cfg->C_mem < 1))
    return ot_fail(OT_EINVAL,
                   "block '%s': need C >= 1 divisible by n_head >= 1, hidden >= 1 and "
                   "C_mem >= 1 with cross-attention (got C=%d n_head=%d hidden=%d C_mem=%d)",
                   prefix, C, cfg->n_head, H, cfg->C_mem);
  memset(L, 0, sizeof *L);
  int rc = OT_OK;
#define DECL(name, r, c, decay, field) \
  if (rc == OT_OK) rc = declare(p, prefix, name, r, c, decay, &L->field)
  DECL("ln1.w", C, 0, 0, ln1_w);
  DECL("ln1.b", C, 0, 0, ln1_b);
  DECL("attn.qkv.w", 3 * C, C, 1, qkv_w);
  DECL("attn.qkv.b", 3 * C, 0, 0, qkv_b);
  DECL("attn.proj.w", C, C, 1, proj_w);
  DECL("attn.proj.b", C, 0, 0, proj_b);
  if (cfg->cross) {
    DECL("lnx.w", C, 0, 0, lnx_w);
    DECL("lnx.b", C, 0, 0, lnx_b);
    DECL("xattn.q.w", C, C, 1, xq_w);
    DECL("xattn.q.b", C, 0, 0, xq_b);
    DECL("xattn.kv.w", 2 * C, cfg->C_mem, 1, xkv_w);
    DECL("xattn.kv.b", 2 * C, 0, 0, xkv_b);
    DECL("xattn.proj.w", C, C, 1, xproj_w);
    DECL("xattn.proj.b", C, 0, 0, xproj_b);
  }
  DECL("ln2.w", C, 0, 0, ln2_w);
  DECL("ln2.b", C, 0, 0, ln2_b);
  DECL("mlp.fc.w", H, C, 1, fc_w);
  DECL("mlp.fc.b", H, 0, 0, fc_b);
  DECL("mlp.proj.w", C, H, 1, fc2_w);
  DECL("mlp.proj.b", C, 0, 0, fc2_b);
#undef DECL
  return rc;
}

static void fill(float *x, size_t n, float v) {
  for (size_t i = 0; i < n; i++) x[i] = v;
}

void ot_block_init(float *values, const ot_block_layout *L, const ot_block_config *cfg,
                   ot_rng *rng, float std, float proj_std) {
  const size_t C = (size_t)cfg->C, H = (size_t)cfg->hidden, Cm = (size_t)cfg->C_mem;
  fill(values + L->ln1_w, C, 1.0f);
  fill(values + L->ln1_b, C, 0.0f);
  ot_rng_fill_normal(rng, values + L->qkv_w, 3 * C * C, 0.0f, std);
  fill(values + L->qkv_b, 3 * C, 0.0f);
  ot_rng_fill_normal(rng, values + L->proj_w, C * C, 0.0f, proj_std);
  fill(values + L->proj_b, C, 0.0f);
  if (cfg->cross) {
    fill(values + L->lnx_w, C, 1.0f);
    fill(values + L->lnx_b, C, 0.0f);
    ot_rng_fill_normal(rng, values + L->xq_w, C * C, 0.0f, std);
    fill(values + L->xq_b, C, 0.0f);
    ot_rng_fill_normal(rng, values + L->xkv_w, 2 * C * Cm, 0.0f, std);
    fill(values + L->xkv_b, 2 * C, 0.0f);
    ot_rng_fill_normal(rng, values + L->xproj_w, C * C, 0.0f, proj_std);
    fill(values + L->xproj_b, C, 0.0f);
  }
  fill(values + L->ln2_w, C, 1.0f);
  fill(values + L->ln2_b, C, 0.0f);
  ot_rng_fill_normal(rng, values + L->fc_w, H * C, 0.0f, std);
  fill(values + L->fc_b, H, 0.0f);
  ot_rng_fill_normal(rng, values + L->fc2_w, C * H, 0.0f, proj_std);
  fill(values + L->fc2_b, C, 0.0f);
}

/* ---- forward ---------------------------------------------------------------- */

/* dropout sites of a block, each with its own mask stream */
enum { SITE_ATTN = 1, SITE_XATTN = 2, SITE_MLP = 3 };

#define ALLOC(ptr, n)                                                                    \
  do {                                                                                   \
    if (!((ptr) = ot_arena_floats(arena, (n))))                                          \
      return ot_fail(OT_ENOMEM, "transformer block: arena cannot grow by %zu floats",    \
                     (size_t)(n));                                                       \
  } while (0)

/* The query rows of item b's sequences: [*r0, *r0 + *rows) of [B*T]. */
static void item_rows(const ot_block_memory *m, int b, int T, size_t *r0, size_t *rows) {
  const size_t s0 = m->seq_start ? (size_t)m->seq_start[b] : (size_t)b;
  const size_t s1 = m->seq_start ? (size_t)m->seq_start[b + 1] : (size_t)b + 1;
  *r0 = s0 * T, *rows = (s1 - s0) * T;
}

/* x [B,T,C] (+ mem [mem.B,Tm,Cm]) -> acts->out [B,T,C] */
int ot_block_forward(ot_block_acts *a, const ot_block_config *cfg, const ot_block_layout *L,
                     const float *params, const float *x, const uint8_t *x_mask, int B, int T,
                     const ot_block_memory *mem, float dropout, uint64_t seed, uint64_t row0,
                     int backward, ot_arena *arena) {
  const int C = cfg->C, H = cfg->hidden, NH = cfg->n_head, Cm = cfg->C_mem;
  const size_t N = (size_t)B * T, NC = N * C;
  const float *P = params;
  OT_ASSERT(!cfg->cross == !mem);
  OT_ASSERT(!mem || (mem->mem && mem->Tm >= 1 &&
                     (mem->seq_start ? mem->seq_start[0] == 0 && mem->seq_start[mem->B] == B
                                     : mem->B == B)));
  memset(a, 0, sizeof *a);
  a->B = B, a->T = T;
  a->dropout = dropout, a->seed = seed, a->row0 = row0, a->backward = backward;
  a->x = x, a->x_mask = x_mask;
  if (mem) a->mem = *mem;

  /* self-attention sublayer */
  ALLOC(a->ln1, NC);
  ALLOC(a->ln1_mean, N);
  ALLOC(a->ln1_rstd, N);
  ALLOC(a->qkv, 3 * NC);
  ALLOC(a->att, (size_t)B * NH * T * T);
  ALLOC(a->atty, NC);
  ALLOC(a->res1, NC);
  ot_layernorm_forward(a->ln1, a->ln1_mean, a->ln1_rstd, x, P + L->ln1_w, P + L->ln1_b, (int)N, C);
  ot_linear_forward(a->qkv, a->ln1, P + L->qkv_w, P + L->qkv_b, (int)N, C, 3 * C);
  ot_attention_forward(a->atty, a->att, a->qkv, 3 * C, a->qkv + C, 3 * C, a->qkv + 2 * C, 3 * C,
                       x_mask, cfg->causal, B, T, T, C, NH);
  ot_linear_forward(a->res1, a->atty, P + L->proj_w, P + L->proj_b, (int)N, C, C);
  ot_block_dropout(a->res1, a, C, SITE_ATTN);
  ot_add_inplace(a->res1, x, NC);
  const float *res = a->res1;

  /* cross-attention sublayer: each item's sequences to the item's memory */
  if (cfg->cross) {
    const ot_block_memory *m = &a->mem;
    const int Tm = m->Tm;
    const size_t Nm = (size_t)m->B * Tm;
    ALLOC(a->lnx, NC);
    ALLOC(a->lnx_mean, N);
    ALLOC(a->lnx_rstd, N);
    ALLOC(a->xq, NC);
    ALLOC(a->xkv, Nm * 2 * C);
    ALLOC(a->xatt, N * NH * Tm);
    ALLOC(a->xatty, NC);
    ALLOC(a->res2, NC);
    ot_layernorm_forward(a->lnx, a->lnx_mean, a->lnx_rstd, res, P + L->lnx_w, P + L->lnx_b,
                         (int)N, C);
    ot_linear_forward(a->xq, a->lnx, P + L->xq_w, P + L->xq_b, (int)N, C, C);
    ot_linear_forward(a->xkv, m->mem, P + L->xkv_w, P + L->xkv_b, (int)Nm, Cm, 2 * C);
    for (int b = 0; b < m->B; b++) {
      size_t r0, rows;
      item_rows(m, b, T, &r0, &rows);
      if (!rows) continue;
      const float *K = a->xkv + (size_t)b * Tm * 2 * C;
      ot_attention_forward(a->xatty + r0 * C, a->xatt + r0 * NH * Tm, a->xq + r0 * C, C, K, 2 * C,
                           K + C, 2 * C, m->mem_mask ? m->mem_mask + (size_t)b * Tm : NULL, 0, 1,
                           (int)rows, Tm, C, NH);
    }
    ot_linear_forward(a->res2, a->xatty, P + L->xproj_w, P + L->xproj_b, (int)N, C, C);
    ot_block_dropout(a->res2, a, C, SITE_XATTN);
    ot_add_inplace(a->res2, res, NC);
    res = a->res2;
  }

  /* MLP sublayer */
  ALLOC(a->ln2, NC);
  ALLOC(a->ln2_mean, N);
  ALLOC(a->ln2_rstd, N);
  ALLOC(a->fch, N * H);
  ALLOC(a->fch_gelu, N * H);
  ALLOC(a->out, NC);
  ot_layernorm_forward(a->ln2, a->ln2_mean, a->ln2_rstd, res, P + L->ln2_w, P + L->ln2_b, (int)N, C);
  ot_linear_forward(a->fch, a->ln2, P + L->fc_w, P + L->fc_b, (int)N, C, H);
  ot_block_gelu(a, N * H);
  ot_linear_forward(a->out, a->fch_gelu, P + L->fc2_w, P + L->fc2_b, (int)N, H, C);
  ot_block_dropout(a->out, a, C, SITE_MLP);
  ot_add_inplace(a->out, res, NC);
  return OT_OK;
}

/* ---- backward ------------------------------------------------------------- */

/* Backward scratch: on failure, give back what this call took. */
#define BALLOC(ptr, n, zero)                                                             \
  do {                                                                                   \
    if (!((ptr) = (zero) ? ot_arena_zeros(arena, (n)) : ot_arena_floats(arena, (n)))) {  \
      ot_arena_restore(arena, mark);                                                     \
      return ot_fail(OT_ENOMEM, "transformer block: arena cannot grow by %zu floats",    \
                     (size_t)(n));                                                       \
    }                                                                                    \
  } while (0)

/* Gradient through "res_out = res_in + Drop(proj(y))": dres_in += dres_out
 * (done by the caller) and returns the gradient of the projection's output
 * in `scratch` (or dres_out itself when there is no dropout). */
const float *ot_block_dropout_grad(float *scratch, const float *dres, const ot_block_acts *a,
                                   int C, uint64_t site) {
  if (a->dropout == 0.0f) return dres;
  /* the backward into a zeroed buffer = the forward of dres */
  ot_dropout_forward(scratch, dres, (size_t)a->B, (size_t)a->T * C, a->dropout,
                     ot_rng_mix(a->seed, site), a->row0);
  return scratch;
}

void ot_block_gelu(ot_block_acts *a, size_t n) {
  if (a->backward) ot_gelu_forward_grad(a->fch_gelu, a->fch, a->fch, n);
  else ot_gelu_forward(a->fch_gelu, a->fch, n);
}

void ot_block_dropout(float *x, const ot_block_acts *a, int C, uint64_t site) {
  ot_dropout_forward(x, x, (size_t)a->B, (size_t)a->T * C, a->dropout, ot_rng_mix(a->seed, site),
                     a->row0);
}

/* dout [B,T,C] -> dx [B,T,C], dmem [B,Tm,Cm], dparams (all +=).
 * Buffers that a kernel overwrites completely (the *_set variants) are not
 * zeroed; only those that attention accumulates into per head are. */
int ot_block_backward(float *dx, float *dmem, float *dparams, const float *dout,
                      const ot_block_acts *a, const ot_block_config *cfg,
                      const ot_block_layout *L, const float *params, ot_arena *arena) {
  const int C = cfg->C, H = cfg->hidden, NH = cfg->n_head, Cm = cfg->C_mem;
  const int B = a->B, T = a->T;
  const ot_block_memory *m = &a->mem;
  const int Tm = cfg->cross ? m->Tm : 0;
  const size_t N = (size_t)B * T, NC = N * C;
  const float *P = params;
  float *G = dparams;
  OT_ASSERT(a->backward);
  ot_arena_mark mark = ot_arena_save(arena);
  size_t max_rows = T; /* the largest query block of an attention call */
  for (int b = 0; b < (cfg->cross ? m->B : 0); b++) {
    size_t r0, rows;
    item_rows(m, b, T, &r0, &rows);
    if (rows > max_rows) max_rows = rows;
  }

  float *dres, *dproj = NULL, *dfch, *dln, *dqkv, *datty, *scratch;
  BALLOC(dres, NC, 0); /* gradient of the residual stream entering the MLP */
  if (a->dropout > 0.0f) BALLOC(dproj, NC, 0);
  BALLOC(dfch, N * H, 0);
  BALLOC(dln, NC, 0);
  BALLOC(scratch, max_rows * (size_t)(Tm > T ? Tm : T), 0);

  /* MLP: out = res + Drop(fc2(gelu(fc(ln2(res))))) */
  memcpy(dres, dout, NC * sizeof(float));
  const float *d = ot_block_dropout_grad(dproj, dout, a, C, SITE_MLP);
  ot_linear_backward_set(dfch, G + L->fc2_w, G + L->fc2_b, d, a->fch_gelu, P + L->fc2_w, (int)N,
                         H, C);
  ot_mul_inplace(dfch, a->fch, N * H); /* gelu', kept by the forward */
  ot_linear_backward_set(dln, G + L->fc_w, G + L->fc_b, dfch, a->ln2, P + L->fc_w, (int)N, C, H);
  const float *res = cfg->cross ? a->res2 : a->res1;
  ot_layernorm_backward(dres, G + L->ln2_w, G + L->ln2_b, dln, res, P + L->ln2_w, a->ln2_mean,
                        a->ln2_rstd, (int)N, C);

  /* cross-attention: res2 = res1 + Drop(xproj(xattn(xq(lnx(res1)), xkv(mem)))) */
  if (cfg->cross) {
    const size_t Nm = (size_t)m->B * Tm;
    float *dres1, *dxq, *dxkv, *dxatty;
    BALLOC(dres1, NC, 0);
    BALLOC(dxq, NC, 1);
    BALLOC(dxkv, Nm * 2 * C, 1);
    BALLOC(dxatty, NC, 0);
    memcpy(dres1, dres, NC * sizeof(float));
    d = ot_block_dropout_grad(dproj, dres, a, C, SITE_XATTN);
    ot_linear_backward_set(dxatty, G + L->xproj_w, G + L->xproj_b, d, a->xatty, P + L->xproj_w,
                           (int)N, C, C);
    for (int b = 0; b < m->B; b++) {
      size_t r0, rows;
      item_rows(m, b, T, &r0, &rows);
      if (!rows) continue;
      const size_t ko = (size_t)b * Tm * 2 * C;
      ot_attention_backward(dxq + r0 * C, dxkv + ko, dxkv + ko + C, scratch, dxatty + r0 * C,
                            a->xatt + r0 * NH * Tm, a->xq + r0 * C, C, a->xkv + ko, 2 * C,
                            a->xkv + ko + C, 2 * C, m->mem_mask ? m->mem_mask + (size_t)b * Tm : NULL,
                            0, 1, (int)rows, Tm, C, NH);
    }
    ot_linear_backward(dmem, G + L->xkv_w, G + L->xkv_b, dxkv, m->mem, P + L->xkv_w, (int)Nm, Cm,
                       2 * C);
    ot_linear_backward_set(dln, G + L->xq_w, G + L->xq_b, dxq, a->lnx, P + L->xq_w, (int)N, C, C);
    ot_layernorm_backward(dres1, G + L->lnx_w, G + L->lnx_b, dln, a->res1, P + L->lnx_w,
                          a->lnx_mean, a->lnx_rstd, (int)N, C);
    dres = dres1;
  }

  /* self-attention: res1 = x + Drop(proj(attn(qkv(ln1(x))))) */
  BALLOC(dqkv, 3 * NC, 1);
  BALLOC(datty, NC, 0);
  ot_add_inplace(dx, dres, NC);
  d = ot_block_dropout_grad(dproj, dres, a, C, SITE_ATTN);
  ot_linear_backward_set(datty, G + L->proj_w, G + L->proj_b, d, a->atty, P + L->proj_w, (int)N, C,
                         C);
  ot_attention_backward(dqkv, dqkv + C, dqkv + 2 * C, scratch, datty, a->att, a->qkv, 3 * C,
                        a->qkv + C, 3 * C, a->qkv + 2 * C, 3 * C, a->x_mask, cfg->causal, B, T, T,
                        C, NH);
  ot_linear_backward_set(dln, G + L->qkv_w, G + L->qkv_b, dqkv, a->ln1, P + L->qkv_w, (int)N, C,
                         3 * C);
  ot_layernorm_backward(dx, G + L->ln1_w, G + L->ln1_b, dln, a->x, P + L->ln1_w, a->ln1_mean,
                        a->ln1_rstd, (int)N, C);

  ot_arena_restore(arena, mark);
  return OT_OK;
}

double ot_block_forward_flops(const ot_block_config *cfg, int B, int T, int Tm) {
  const double C = cfg->C, H = cfg->hidden, N = (double)B * T;
  double f = 2.0 * N * C * (3.0 * C) + 4.0 * B * (double)T * T * C + 2.0 * N * C * C;
  if (cfg->cross) {
    const double Nm = (double)B * Tm;
    f += 2.0 * N * C * C + 2.0 * Nm * cfg->C_mem * (2.0 * C) + 4.0 * B * (double)T * Tm * C +
         2.0 * N * C * C;
  }
  f += 2.0 * 2.0 * N * C * H;
  return f;
}
