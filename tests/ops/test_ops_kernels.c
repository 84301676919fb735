/* Kernels against double-precision references (forward) and finite
 * differences (backward): linear, layernorm, GELU, softmax, residual,
 * dropout, L2 norm, token/positional embedding, patch embedding, masked
 * mean pooling. Odd sizes on purpose. Also proves the checker can fail. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"
#include "ot_kernels.h"

static ot_rng rng;

/* ---- linear ---------------------------------------------------------------- */

typedef struct {
  int N, C, OC;
  float *inp, *w, *b, *out, *R;
} linear_ctx;

static double linear_f(void *p) {
  linear_ctx *c = p;
  ot_linear_forward(c->out, c->inp, c->w, c->b, c->N, c->C, c->OC);
  return gc_project(c->out, c->R, (size_t)c->N * c->OC);
}

static void test_linear(int N, int C, int OC) {
  printf("linear N=%d C=%d OC=%d\n", N, C, OC);
  linear_ctx c = {N, C, OC, gc_randn(&rng, (size_t)N * C, 1), gc_randn(&rng, (size_t)OC * C, 0.5f),
                  gc_randn(&rng, OC, 0.5f), gc_alloc((size_t)N * OC), gc_randn(&rng, (size_t)N * OC, 1)};
  linear_f(&c);
  double *ref = malloc(sizeof(double) * N * OC);
  for (int n = 0; n < N; n++)
    for (int o = 0; o < OC; o++) {
      double s = c.b[o];
      for (int i = 0; i < C; i++) s += (double)c.inp[n * C + i] * c.w[o * C + i];
      ref[n * OC + o] = s;
    }
  double e = gc_max_rel(c.out, ref, (size_t)N * OC, 1.0);
  GC_EXPECT(e < 1e-5, "linear forward vs reference: %.2e", e);
  float *dinp = gc_alloc((size_t)N * C), *dw = gc_alloc((size_t)OC * C), *db = gc_alloc(OC);
  ot_linear_backward(dinp, dw, db, c.R, c.inp, c.w, N, C, OC);
  gc_check("linear dinp", c.inp, dinp, (size_t)N * C, linear_f, &c, GC_H, 300);
  gc_check("linear dweight", c.w, dw, (size_t)OC * C, linear_f, &c, GC_H, 300);
  gc_check("linear dbias", c.b, db, OC, linear_f, &c, GC_H, 300);

  /* accumulation: a second backward doubles the gradients */
  float *dw2 = gc_alloc((size_t)OC * C);
  memcpy(dw2, dw, sizeof(float) * OC * C);
  ot_linear_backward(NULL, dw2, NULL, c.R, c.inp, c.w, N, C, OC);
  double acc = 0;
  for (int i = 0; i < OC * C; i++) acc = fmax(acc, fabs(dw2[i] - 2 * dw[i]) / fmax(fabs(dw[i]), 1e-3));
  GC_EXPECT(acc < 1e-5, "linear backward does not accumulate (+=): %.2e", acc);

  /* the overwriting variant: dinp = ..., weights still accumulate */
  float *dinp_set = gc_alloc((size_t)N * C), *dw_set = gc_alloc((size_t)OC * C);
  for (int i = 0; i < N * C; i++) dinp_set[i] = 123.0f; /* garbage to be overwritten */
  ot_linear_backward_set(dinp_set, dw_set, NULL, c.R, c.inp, c.w, N, C, OC);
  double sd = 0;
  for (int i = 0; i < N * C; i++) sd = fmax(sd, fabs(dinp_set[i] - dinp[i]));
  for (int i = 0; i < OC * C; i++) sd = fmax(sd, fabs(dw_set[i] - dw[i]));
  GC_EXPECT(sd < 1e-5, "ot_linear_backward_set differs from the accumulating backward: %.2e", sd);
  free(dinp_set), free(dw_set);

  /* the checker must be able to fail: a 3% error in one large element */
  size_t big = 0;
  for (int i = 0; i < OC * C; i++)
    if (fabs(dw[i]) > fabs(dw[big])) big = i;
  dw[big] *= 1.03f;
  double bad = gc_check_quiet("linear dweight (corrupted)", c.w, dw, (size_t)OC * C, linear_f, &c,
                              GC_H, (size_t)OC * C, 0);
  GC_EXPECT(bad >= GC_TOL, "gradient checker did not notice a 3%% error (err %.2e)", bad);
  printf("  corrupted gradient detected: err %.2e >= %.0e\n", bad, GC_TOL);
  free(c.inp), free(c.w), free(c.b), free(c.out), free(c.R), free(ref), free(dinp), free(dw),
      free(db), free(dw2);
}

/* ---- layernorm ---------------------------------------------------------------- */

typedef struct {
  int N, C;
  float *inp, *w, *b, *out, *mean, *rstd, *R;
} ln_ctx;

static double ln_f(void *p) {
  ln_ctx *c = p;
  ot_layernorm_forward(c->out, c->mean, c->rstd, c->inp, c->w, c->b, c->N, c->C);
  return gc_project(c->out, c->R, (size_t)c->N * c->C);
}

static void test_layernorm(int N, int C) {
  printf("layernorm N=%d C=%d\n", N, C);
  ln_ctx c = {N, C, gc_randn(&rng, (size_t)N * C, 1.5f), gc_randn(&rng, C, 1), gc_randn(&rng, C, 1),
              gc_alloc((size_t)N * C), gc_alloc(N), gc_alloc(N), gc_randn(&rng, (size_t)N * C, 1)};
  for (int i = 0; i < N * C; i++) c.inp[i] += 0.7f; /* nonzero mean */
  ln_f(&c);
  double *ref = malloc(sizeof(double) * N * C);
  for (int n = 0; n < N; n++) {
    double m = 0, v = 0;
    for (int i = 0; i < C; i++) m += c.inp[n * C + i];
    m /= C;
    for (int i = 0; i < C; i++) v += (c.inp[n * C + i] - m) * (c.inp[n * C + i] - m);
    v /= C;
    for (int i = 0; i < C; i++)
      ref[n * C + i] = (c.inp[n * C + i] - m) / sqrt(v + 1e-5) * c.w[i] + c.b[i];
  }
  double e = gc_max_rel(c.out, ref, (size_t)N * C, 1.0);
  GC_EXPECT(e < 1e-5, "layernorm forward vs reference: %.2e", e);
  float *dinp = gc_alloc((size_t)N * C), *dw = gc_alloc(C), *db = gc_alloc(C);
  ot_layernorm_backward(dinp, dw, db, c.R, c.inp, c.w, c.mean, c.rstd, N, C);
  gc_check("layernorm dinp", c.inp, dinp, (size_t)N * C, ln_f, &c, GC_H, 300);
  gc_check("layernorm dw", c.w, dw, C, ln_f, &c, GC_H, 300);
  gc_check("layernorm db", c.b, db, C, ln_f, &c, GC_H, 300);
  free(c.inp), free(c.w), free(c.b), free(c.out), free(c.mean), free(c.rstd), free(c.R), free(ref),
      free(dinp), free(dw), free(db);
}

/* ---- element-wise: GELU, softmax, residual, dropout, l2norm ------------------- */

typedef struct {
  int kind; /* 0 gelu, 1 softmax, 2 residual, 3 dropout, 4 l2norm */
  int N, C;
  float p;
  uint64_t seed;
  float *a, *b, *out, *R;
} ew_ctx;

static double ew_f(void *p) {
  ew_ctx *c = p;
  size_t n = (size_t)c->N * c->C;
  switch (c->kind) {
    case 0: ot_gelu_forward(c->out, c->a, n); break;
    case 1: ot_softmax_forward(c->out, c->a, c->N, c->C); break;
    case 2: ot_residual_forward(c->out, c->a, c->b, n); break;
    case 3: ot_dropout_forward(c->out, c->a, (size_t)c->N, (size_t)c->C, c->p, c->seed, 5); break;
    case 4: ot_l2norm_forward(c->out, c->a, c->N, c->C); break;
  }
  return gc_project(c->out, c->R, n);
}

static void test_elementwise(void) {
  const int N = 7, C = 13;
  const size_t n = (size_t)N * C;
  ew_ctx c = {0, N, C, 0.3f, 99, gc_randn(&rng, n, 2), gc_randn(&rng, n, 1), gc_alloc(n),
              gc_randn(&rng, n, 1)};
  float *da = gc_alloc(n), *db = gc_alloc(n);

  printf("gelu n=%zu\n", n);
  c.kind = 0;
  ew_f(&c);
  double worst = 0;
  for (size_t i = 0; i < n; i++) {
    double x = c.a[i];
    double ref = 0.5 * x * (1 + tanh(sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)));
    worst = fmax(worst, fabs(c.out[i] - ref));
  }
  GC_EXPECT(worst < 1e-6, "gelu forward vs tanh formula: %.2e", worst);
  ot_gelu_backward(da, c.a, c.R, n);
  gc_check("gelu dinp", c.a, da, n, ew_f, &c, GC_H, 300);
  { /* the forward that keeps gelu' (in place over its input, as the blocks
       call it): the same outputs, and a backward of one multiply equal, bit
       for bit, to ot_gelu_backward's into a zeroed buffer */
    float *y = gc_alloc(n), *g = gc_alloc(n), *ref = gc_alloc(n);
    ot_gelu_forward(ref, c.a, n);
    memcpy(g, c.a, n * sizeof(float));
    ot_gelu_forward_grad(y, g, g, n);
    memcpy(db, c.R, n * sizeof(float));
    ot_mul_inplace(db, g, n);
    size_t differ = 0;
    for (size_t i = 0; i < n; i++)
      differ += memcmp(&y[i], &ref[i], sizeof(float)) != 0 || memcmp(&db[i], &da[i], sizeof(float)) != 0;
    GC_EXPECT(differ == 0, "gelu forward with gelu': %zu of %zu values differ from "
              "forward/backward", differ, n);
    free(y);
    free(g);
    free(ref);
  }
  memset(db, 0, n * sizeof(float));

  printf("softmax N=%d C=%d\n", N, C);
  c.kind = 1;
  ew_f(&c);
  worst = 0;
  for (int r = 0; r < N; r++) {
    double mx = -1e30, s = 0;
    for (int i = 0; i < C; i++) mx = fmax(mx, c.a[r * C + i]);
    for (int i = 0; i < C; i++) s += exp(c.a[r * C + i] - mx);
    for (int i = 0; i < C; i++)
      worst = fmax(worst, fabs(c.out[r * C + i] - exp(c.a[r * C + i] - mx) / s));
  }
  GC_EXPECT(worst < 1e-6, "softmax forward vs reference: %.2e", worst);
  memset(da, 0, n * sizeof(float));
  ot_softmax_backward(da, c.R, c.out, N, C);
  gc_check("softmax dinp", c.a, da, n, ew_f, &c, GC_H, 300);

  printf("residual n=%zu\n", n);
  c.kind = 2;
  memset(da, 0, n * sizeof(float));
  ot_residual_backward(da, db, c.R, n);
  gc_check("residual da", c.a, da, n, ew_f, &c, GC_H, 100);
  gc_check("residual db", c.b, db, n, ew_f, &c, GC_H, 100);

  printf("dropout n=%zu p=%.2f\n", n, c.p);
  c.kind = 3;
  ew_f(&c);
  memset(da, 0, n * sizeof(float));
  ot_dropout_backward(da, c.R, (size_t)c.N, (size_t)c.C, c.p, c.seed, 5);
  gc_check("dropout dinp", c.a, da, n, ew_f, &c, GC_H, 300);

  printf("l2norm N=%d D=%d\n", N, C);
  c.kind = 4;
  ew_f(&c);
  worst = 0;
  for (int r = 0; r < N; r++) {
    double s = 0;
    for (int i = 0; i < C; i++) s += (double)c.out[r * C + i] * c.out[r * C + i];
    worst = fmax(worst, fabs(sqrt(s) - 1));
  }
  GC_EXPECT(worst < 1e-6, "l2norm rows not unit length: %.2e", worst);
  memset(da, 0, n * sizeof(float));
  ot_l2norm_backward(da, c.R, c.a, N, C);
  gc_check("l2norm dinp", c.a, da, n, ew_f, &c, GC_H, 300);
  free(c.a), free(c.b), free(c.out), free(c.R), free(da), free(db);
}

static void test_dropout_statistics(void) {
  printf("dropout mask statistics\n");
  const size_t n = 100000;
  float *x = gc_alloc(n), *y = gc_alloc(n), *y2 = gc_alloc(n);
  for (size_t i = 0; i < n; i++) x[i] = 1.0f + (float)(i % 7);
  ot_dropout_forward(y, x, 1, n, 0.25f, 7, 0);
  size_t zeros = 0, wrong = 0;
  for (size_t i = 0; i < n; i++) {
    if (y[i] == 0.0f) zeros++;
    else if (fabsf(y[i] - x[i] / 0.75f) > 1e-6f * y[i]) wrong++;
  }
  double frac = (double)zeros / n;
  GC_EXPECT(fabs(frac - 0.25) < 0.01, "dropout fraction %.4f, expected 0.25", frac);
  GC_EXPECT(wrong == 0, "%zu kept values not scaled by 1/(1-p)", wrong);
  ot_dropout_forward(y2, x, 1, n, 0.25f, 7, 0);
  GC_EXPECT(memcmp(y, y2, n * sizeof(float)) == 0, "same seed, different mask");
  ot_dropout_forward(y2, x, 1, n, 0.25f, 8, 0);
  size_t same = 0;
  for (size_t i = 0; i < n; i++) same += (y[i] == 0.0f) == (y2[i] == 0.0f);
  GC_EXPECT(same < n * 0.7, "masks of seeds 7 and 8 agree on %zu of %zu", same, n);
  ot_dropout_forward(x, x, 1, n, 0.25f, 7, 0); /* in place */
  GC_EXPECT(memcmp(x, y, n * sizeof(float)) == 0, "in-place dropout differs");
  printf("  dropped %.4f (p = 0.25)\n", frac);

  /* A row's mask depends on its global number only: 1000 rows of 100 in
   * one call equal the same rows cut into calls of 1, 299 and 700 rows. */
  const size_t rows = 1000, len = 100;
  ot_dropout_forward(y, y2, rows, len, 0.3f, 9, 40);
  ot_dropout_forward(x, y2, 1, len, 0.3f, 9, 40);
  ot_dropout_forward(x + len, y2 + len, 299, len, 0.3f, 9, 41);
  ot_dropout_forward(x + 300 * len, y2 + 300 * len, 700, len, 0.3f, 9, 340);
  GC_EXPECT(memcmp(x, y, n * sizeof(float)) == 0, "dropout of a row depends on how rows are split");
  ot_dropout_forward(x, y2, rows, len, 0.3f, 9, 41);
  GC_EXPECT(memcmp(x, y, n * sizeof(float)) != 0, "dropout ignores row0");
  free(x), free(y), free(y2);
}

/* ---- embeddings ---------------------------------------------------------------- */

typedef struct {
  int B, T, C;
  int32_t *tok;
  float *wte, *wpe, *out, *R;
} emb_ctx;

static double emb_f(void *p) {
  emb_ctx *c = p;
  ot_embed_forward(c->out, c->tok, c->wte, c->wpe, c->B, c->T, c->C);
  return gc_project(c->out, c->R, (size_t)c->B * c->T * c->C);
}

static void test_embed(void) {
  const int B = 3, T = 5, C = 7, V = 11;
  printf("embed B=%d T=%d C=%d V=%d\n", B, T, C, V);
  int32_t tok[15] = {1, 4, 4, 10, 0, 4, 2, 3, 1, 9, 9, 9, 0, 5, 6}; /* repeats accumulate */
  emb_ctx c = {B, T, C, tok, gc_randn(&rng, (size_t)V * C, 1), gc_randn(&rng, (size_t)T * C, 1),
               gc_alloc((size_t)B * T * C), gc_randn(&rng, (size_t)B * T * C, 1)};
  emb_f(&c);
  GC_EXPECT(c.out[(1 * T + 2) * C + 3] == c.wte[tok[1 * T + 2] * C + 3] + c.wpe[2 * C + 3],
            "embed forward");
  float *dwte = gc_alloc((size_t)V * C), *dwpe = gc_alloc((size_t)T * C);
  ot_embed_backward(dwte, dwpe, c.R, tok, B, T, C);
  gc_check("embed dwte", c.wte, dwte, (size_t)V * C, emb_f, &c, GC_H, 300);
  gc_check("embed dwpe", c.wpe, dwpe, (size_t)T * C, emb_f, &c, GC_H, 300);
  free(c.wte), free(c.wpe), free(c.out), free(c.R), free(dwte), free(dwpe);
}

typedef struct {
  int B, T, H, W, P, C;
  uint8_t *frames;
  float *w, *b, *ps, *pt, *patches, *out, *R;
} patch_ctx;

static double patch_f(void *p) {
  patch_ctx *c = p;
  ot_patch_embed_forward(c->out, c->patches, c->frames, c->w, c->b, c->ps, c->pt, c->B, c->T, c->H,
                         c->W, c->P, c->C);
  int Np = (c->H / c->P) * (c->W / c->P);
  return gc_project(c->out, c->R, (size_t)c->B * c->T * Np * c->C);
}

static void test_patch_embed(void) {
  const int B = 2, T = 3, H = 6, W = 9, P = 3, C = 5;
  const int Np = (H / P) * (W / P), K = P * P * 3;
  printf("patch embed B=%d T=%d H=%d W=%d P=%d C=%d (Np=%d)\n", B, T, H, W, P, C, Np);
  size_t nf = (size_t)B * T * H * W * 3, no = (size_t)B * T * Np * C;
  patch_ctx c = {B, T, H, W, P, C, malloc(nf), gc_randn(&rng, (size_t)C * K, 0.3f),
                 gc_randn(&rng, C, 1), gc_randn(&rng, (size_t)Np * C, 1), gc_randn(&rng, (size_t)T * C, 1),
                 gc_alloc((size_t)B * T * Np * K), gc_alloc(no), gc_randn(&rng, no, 1)};
  for (size_t i = 0; i < nf; i++) c.frames[i] = (uint8_t)ot_rng_below(&rng, 256);
  patch_f(&c);
  /* reference for every output element, straight from the definition */
  double worst = 0;
  for (int b = 0; b < B; b++)
    for (int t = 0; t < T; t++)
      for (int py = 0; py < H / P; py++)
        for (int px = 0; px < W / P; px++)
          for (int o = 0; o < C; o++) {
            int n = py * (W / P) + px;
            double s = c.b[o] + c.ps[n * C + o] + c.pt[t * C + o];
            for (int y = 0; y < P; y++)
              for (int x = 0; x < P; x++)
                for (int ch = 0; ch < 3; ch++) {
                  uint8_t v = c.frames[((((size_t)b * T + t) * H + py * P + y) * W + px * P + x) * 3 + ch];
                  s += (v / 127.5 - 1.0) * c.w[o * K + (y * P + x) * 3 + ch];
                }
            float got = c.out[(((size_t)b * T + t) * Np + n) * C + o];
            worst = fmax(worst, fabs(got - s) / fmax(fabs(s), 1.0));
          }
  GC_EXPECT(worst < 1e-5, "patch embed forward vs reference: %.2e", worst);
  float *dw = gc_alloc((size_t)C * K), *db = gc_alloc(C), *dps = gc_alloc((size_t)Np * C),
        *dpt = gc_alloc((size_t)T * C);
  ot_patch_embed_backward(dw, db, dps, dpt, c.R, c.patches, B, T, Np, K, C);
  gc_check("patch embed dweight", c.w, dw, (size_t)C * K, patch_f, &c, GC_H, 200);
  gc_check("patch embed dbias", c.b, db, C, patch_f, &c, GC_H, 200);
  gc_check("patch embed dpos_space", c.ps, dps, (size_t)Np * C, patch_f, &c, GC_H, 200);
  gc_check("patch embed dpos_time", c.pt, dpt, (size_t)T * C, patch_f, &c, GC_H, 200);
  free(c.frames), free(c.w), free(c.b), free(c.ps), free(c.pt), free(c.patches), free(c.out),
      free(c.R), free(dw), free(db), free(dps), free(dpt);
}

typedef struct {
  int B, T, D, C;
  float *feat, *w, *b, *pt, *rows, *out, *R;
} feat_ctx;

static double feat_f(void *p) {
  feat_ctx *c = p;
  ot_feature_embed_forward(c->out, c->rows, c->feat, c->w, c->b, c->pt, c->B, c->T, c->D, c->C);
  return gc_project(c->out, c->R, (size_t)c->B * c->T * c->C);
}

static void test_feature_embed(void) {
  const int B = 2, T = 3, D = 7, C = 5;
  printf("feature embed B=%d T=%d D=%d C=%d\n", B, T, D, C);
  const size_t no = (size_t)B * T * C;
  feat_ctx c = {B, T, D, C, gc_randn(&rng, (size_t)B * T * D, 1), gc_randn(&rng, (size_t)C * D, 0.3f),
                gc_randn(&rng, C, 1), gc_randn(&rng, (size_t)T * C, 1), gc_alloc((size_t)B * T * D),
                gc_alloc(no), gc_randn(&rng, no, 1)};
  feat_f(&c);
  double worst = 0;
  for (int b = 0; b < B; b++)
    for (int t = 0; t < T; t++)
      for (int o = 0; o < C; o++) {
        double s = c.b[o] + c.pt[t * C + o];
        for (int k = 0; k < D; k++) s += (double)c.feat[((size_t)b * T + t) * D + k] * c.w[o * D + k];
        worst = fmax(worst, fabs(c.out[((size_t)b * T + t) * C + o] - s) / fmax(fabs(s), 1.0));
      }
  GC_EXPECT(worst < 1e-5, "feature embed forward vs reference: %.2e", worst);
  float *dw = gc_alloc((size_t)C * D), *db = gc_alloc(C), *dpt = gc_alloc((size_t)T * C);
  ot_patch_embed_backward(dw, db, NULL, dpt, c.R, c.rows, B, T, 1, D, C);
  gc_check("feature embed dweight", c.w, dw, (size_t)C * D, feat_f, &c, GC_H, 200);
  gc_check("feature embed dbias", c.b, db, C, feat_f, &c, GC_H, 200);
  gc_check("feature embed dpos_time", c.pt, dpt, (size_t)T * C, feat_f, &c, GC_H, 200);
  free(c.feat), free(c.w), free(c.b), free(c.pt), free(c.rows), free(c.out), free(c.R), free(dw),
      free(db), free(dpt);
}

/* ---- masked mean pooling ------------------------------------------------------ */

typedef struct {
  int B, T, C;
  const uint8_t *mask;
  float *inp, *out, *R;
} pool_ctx;

static double pool_f(void *p) {
  pool_ctx *c = p;
  ot_meanpool_forward(c->out, c->inp, c->mask, c->B, c->T, c->C);
  return gc_project(c->out, c->R, (size_t)c->B * c->C);
}

static void test_meanpool(void) {
  const int B = 3, T = 7, C = 5;
  printf("meanpool B=%d T=%d C=%d (one row fully padded)\n", B, T, C);
  static const uint8_t mask[21] = {1, 1, 1, 0, 0, 0, 0, 1, 0, 1, 1, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0};
  pool_ctx c = {B, T, C, mask, gc_randn(&rng, (size_t)B * T * C, 1), gc_alloc((size_t)B * C),
                gc_randn(&rng, (size_t)B * C, 1)};
  pool_f(&c);
  double ref = (c.inp[(1 * T + 0) * C + 2] + c.inp[(1 * T + 2) * C + 2] + c.inp[(1 * T + 3) * C + 2] +
                c.inp[(1 * T + 5) * C + 2] + c.inp[(1 * T + 6) * C + 2]) / 5.0;
  GC_EXPECT(fabs(c.out[1 * C + 2] - ref) < 1e-6, "meanpool forward %.7f vs %.7f", c.out[C + 2], ref);
  GC_EXPECT(c.out[2 * C] == 0.0f, "fully padded row must pool to 0");
  float *dinp = gc_alloc((size_t)B * T * C);
  ot_meanpool_backward(dinp, c.R, mask, B, T, C);
  gc_check("meanpool dinp", c.inp, dinp, (size_t)B * T * C, pool_f, &c, GC_H, 300);
  free(c.inp), free(c.out), free(c.R), free(dinp);
}

int main(void) {
  ot_rng_seed(&rng, 20240611);
  test_linear(7, 13, 5);
  test_linear(33, 16, 19);
  test_layernorm(7, 13);
  test_layernorm(4, 32);
  test_elementwise();
  test_dropout_statistics();
  test_embed();
  test_patch_embed();
  test_feature_embed();
  test_meanpool();
  return gc_finish("test_ops_kernels");
}
