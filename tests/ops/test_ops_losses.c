/* Losses: values against double-precision implementations of the written
 * formulas, gradients against finite differences (with dloss != 1 to check
 * the scaling), edge cases (all ignored, saturated logits). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"
#include "ot_loss.h"

static ot_rng rng;
static const float DLOSS = 0.7f;

/* ---- cross-entropy ------------------------------------------------------------ */

typedef struct {
  int N, V, ignore;
  const int32_t *t;
  float *logits;
} ce_ctx;

static double ce_f(void *p) {
  ce_ctx *c = p;
  return DLOSS * ot_ce_forward(c->logits, c->t, c->N, c->V, c->ignore);
}

static void test_ce(void) {
  const int N = 9, V = 13, IGN = -100;
  printf("cross-entropy N=%d V=%d, 2 rows ignored\n", N, V);
  static const int32_t t[9] = {3, -100, 0, 12, 5, 5, -100, 7, 1};
  ce_ctx c = {N, V, IGN, t, gc_randn(&rng, (size_t)N * V, 2)};
  double ref = 0;
  for (int n = 0; n < N; n++) {
    if (t[n] == IGN) continue;
    double mx = -1e30, s = 0;
    for (int j = 0; j < V; j++) mx = fmax(mx, c.logits[n * V + j]);
    for (int j = 0; j < V; j++) s += exp(c.logits[n * V + j] - mx);
    ref += mx + log(s) - c.logits[n * V + t[n]];
  }
  ref /= 7;
  double got = ot_ce_forward(c.logits, t, N, V, IGN);
  GC_EXPECT(fabs(got - ref) < 1e-5 * fmax(1, fabs(ref)), "CE %.7f vs reference %.7f", got, ref);
  printf("  loss %.6f, reference %.6f\n", got, ref);
  float *d = gc_alloc((size_t)N * V);
  ot_ce_backward(d, DLOSS, c.logits, t, N, V, IGN);
  gc_check("cross-entropy dlogits", c.logits, d, (size_t)N * V, ce_f, &c, GC_H, 400);
  double ign = 0;
  for (int j = 0; j < V; j++) ign = fmax(ign, fabs(d[1 * V + j]));
  GC_EXPECT(ign == 0.0, "ignored row got a gradient");
  static const int32_t all_ignored[2] = {-100, -100};
  memset(d, 0, sizeof(float) * N * V);
  GC_EXPECT(ot_ce_forward(c.logits, all_ignored, 2, V, IGN) == 0.0f, "all ignored: loss != 0");
  ot_ce_backward(d, 1.0f, c.logits, all_ignored, 2, V, IGN);
  GC_EXPECT(d[0] == 0.0f, "all ignored: gradient != 0");
  free(c.logits), free(d);
}

/* ---- BCE and ASL --------------------------------------------------------------- */

typedef struct {
  int N, K, asl;
  ot_asl_config cfg;
  const float *y;
  float *x;
} ml_ctx;

static double ml_f(void *p) {
  ml_ctx *c = p;
  return DLOSS * (c->asl ? ot_asl_forward(c->x, c->y, c->N, c->K, &c->cfg)
                         : ot_bce_forward(c->x, c->y, c->N, c->K));
}

/* ASL straight from the paper, in double. */
static double asl_reference(const float *x, const float *y, int N, int K, ot_asl_config cfg) {
  double sum = 0;
  for (int i = 0; i < N * K; i++) {
    double p = 1 / (1 + exp(-(double)x[i]));
    double pm = fmax(p - cfg.margin, 0);
    double lpos = pow(1 - p, cfg.gamma_pos) * log(p);
    double lneg = pow(pm, cfg.gamma_neg) * log(1 - pm);
    sum += -y[i] * lpos - (1 - y[i]) * lneg;
  }
  return sum / N;
}

static void test_multilabel(void) {
  const int N = 5, K = 11;
  const size_t n = (size_t)N * K;
  float *y = gc_alloc(n), *x = gc_alloc(n), *d = gc_alloc(n), *d2 = gc_alloc(n);
  for (size_t i = 0; i < n; i++) y[i] = ot_rng_below(&rng, 3) == 0 ? 1.0f : 0.0f;
  y[7] = 0.3f; /* one soft target */
  /* logits away from the margin kinks p = m (x = logit(m)) of the configs below */
  const float kinks[2] = {-2.944439f, -1.386294f}; /* logit(0.05), logit(0.2) */
  for (size_t i = 0; i < n; i++) {
    float v;
    do v = 3.0f * ot_rng_normal(&rng);
    while (fabsf(v - kinks[0]) < 0.1f || fabsf(v - kinks[1]) < 0.1f);
    x[i] = v;
  }
  ml_ctx c = {N, K, 0, {0, 0, 0}, y, x};

  printf("BCE with logits N=%d K=%d\n", N, K);
  double ref = 0;
  for (size_t i = 0; i < n; i++) {
    double p = 1 / (1 + exp(-(double)x[i]));
    ref += -(y[i] * log(p) + (1 - y[i]) * log(1 - p));
  }
  ref /= N;
  double got = ot_bce_forward(x, y, N, K);
  GC_EXPECT(fabs(got - ref) < 1e-5 * fmax(1, fabs(ref)), "BCE %.7f vs reference %.7f", got, ref);
  printf("  loss %.6f, reference %.6f\n", got, ref);
  ot_bce_backward(d, DLOSS, x, y, N, K);
  gc_check("BCE dlogits", x, d, n, ml_f, &c, GC_H, 400);

  const ot_asl_config cfgs[3] = {{0, 4, 0.05f}, {1, 2, 0.2f}, {0.5f, 1.5f, 0}};
  for (int k = 0; k < 3; k++) {
    c.asl = 1;
    c.cfg = cfgs[k];
    printf("ASL gamma+=%.1f gamma-=%.1f m=%.2f\n", c.cfg.gamma_pos, c.cfg.gamma_neg, c.cfg.margin);
    ref = asl_reference(x, y, N, K, c.cfg);
    got = ot_asl_forward(x, y, N, K, &c.cfg);
    GC_EXPECT(fabs(got - ref) < 1e-5 * fmax(1, fabs(ref)), "ASL %.7f vs reference %.7f", got, ref);
    printf("  loss %.6f, reference %.6f\n", got, ref);
    memset(d, 0, n * sizeof(float));
    ot_asl_backward(d, DLOSS, x, y, N, K, &c.cfg);
    gc_check("ASL dlogits", x, d, n, ml_f, &c, GC_H, 400);
  }

  printf("ASL(0, 0, 0) == BCE\n");
  ot_asl_config zero = {0, 0, 0};
  double diff = fabs(ot_asl_forward(x, y, N, K, &zero) - ot_bce_forward(x, y, N, K));
  memset(d, 0, n * sizeof(float));
  memset(d2, 0, n * sizeof(float));
  ot_asl_backward(d, 1, x, y, N, K, &zero);
  ot_bce_backward(d2, 1, x, y, N, K);
  for (size_t i = 0; i < n; i++) diff = fmax(diff, fabs(d[i] - d2[i]));
  GC_EXPECT(diff < 1e-6, "ASL with zero focusing/margin differs from BCE by %.2e", diff);

  printf("saturated logits stay finite\n");
  float xs[4] = {-100, 100, -30, 30}, ys[4] = {1, 0, 0, 1}, ds[4] = {0};
  ot_asl_config def = {0, 4, 0.05f};
  double l1 = ot_bce_forward(xs, ys, 1, 4), l2 = ot_asl_forward(xs, ys, 1, 4, &def);
  ot_asl_backward(ds, 1, xs, ys, 1, 4, &def);
  ot_bce_backward(ds, 1, xs, ys, 1, 4);
  GC_EXPECT(isfinite(l1) && isfinite(l2) && isfinite(ds[0] + ds[1] + ds[2] + ds[3]),
            "non-finite: bce %g asl %g grads %g %g %g %g", l1, l2, ds[0], ds[1], ds[2], ds[3]);
  GC_EXPECT(fabs(l1 - 200.0) < 1e-3, "BCE of two 100-logit mistakes: %g, expected 200", l1);
  free(x), free(y), free(d), free(d2);
}

/* ---- InfoNCE ------------------------------------------------------------------ */

typedef struct {
  int N, M, D, sym;
  float tau;
  const int32_t *pos;
  float *a, *b, *scratch;
} nce_ctx;

static double nce_f(void *p) {
  nce_ctx *c = p;
  return DLOSS * ot_infonce_forward(c->scratch, c->a, c->b, c->pos, c->N, c->M, c->D, c->tau, c->sym);
}

static double nce_reference(const nce_ctx *c) {
  double L[16][16], rows = 0, cols = 0;
  int valid = 0;
  for (int i = 0; i < c->N; i++)
    for (int j = 0; j < c->M; j++) {
      double s = 0;
      for (int e = 0; e < c->D; e++) s += (double)c->a[i * c->D + e] * c->b[j * c->D + e];
      L[i][j] = s / c->tau;
    }
  for (int i = 0; i < c->N; i++) {
    int j = c->pos[i];
    if (j < 0) continue;
    valid++;
    double sr = 0, sc = 0;
    for (int k = 0; k < c->M; k++) sr += exp(L[i][k]);
    for (int r = 0; r < c->N; r++) sc += exp(L[r][j]);
    rows += log(sr) - L[i][j];
    cols += log(sc) - L[i][j];
  }
  return c->sym ? 0.5 * (rows + cols) / valid : rows / valid;
}

static void test_infonce(int sym) {
  const int N = 6, M = 8, D = 5;
  static const int32_t pos[6] = {3, -1, 0, 7, 3, 2}; /* a skipped row, a shared positive */
  printf("InfoNCE N=%d M=%d D=%d tau=0.3 symmetric=%d\n", N, M, D, sym);
  nce_ctx c = {N, M, D, sym, 0.3f, pos, gc_randn(&rng, (size_t)N * D, 0.5f),
               gc_randn(&rng, (size_t)M * D, 0.5f), gc_alloc(2 * (size_t)N * M)};
  double ref = nce_reference(&c);
  double got = ot_infonce_forward(c.scratch, c.a, c.b, pos, N, M, D, c.tau, sym);
  GC_EXPECT(fabs(got - ref) < 1e-5 * fmax(1, fabs(ref)), "InfoNCE %.7f vs reference %.7f", got, ref);
  printf("  loss %.6f, reference %.6f\n", got, ref);
  float *da = gc_alloc((size_t)N * D), *db = gc_alloc((size_t)M * D);
  ot_infonce_backward(da, db, c.scratch, DLOSS, c.a, c.b, pos, N, M, D, c.tau, sym);
  gc_check("InfoNCE da", c.a, da, (size_t)N * D, nce_f, &c, GC_H, 400);
  gc_check("InfoNCE db", c.b, db, (size_t)M * D, nce_f, &c, GC_H, 400);
  free(c.a), free(c.b), free(c.scratch), free(da), free(db);
}

int main(void) {
  ot_rng_seed(&rng, 4242);
  test_ce();
  test_multilabel();
  test_infonce(0);
  test_infonce(1);
  return gc_finish("test_ops_losses");
}
