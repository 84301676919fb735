/* Multi-head attention: forward against a naive double-precision
 * reference (masks, causal, empty key sets), backward against finite
 * differences, for self-attention on a packed qkv buffer and for
 * cross-attention with different query/key lengths. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"
#include "ot_attention.h"

static ot_rng rng;

typedef struct {
  int B, Tq, Tk, C, NH, causal;
  const uint8_t *mask;
  /* q, k, v point into `buf` with strides ldq, ldk, ldv */
  float *buf;
  size_t nbuf;
  float *q, *k, *v;
  int ldq, ldk, ldv;
  float *out, *att, *R;
} att_ctx;

static double att_f(void *p) {
  att_ctx *c = p;
  ot_attention_forward(c->out, c->att, c->q, c->ldq, c->k, c->ldk, c->v, c->ldv, c->mask, c->causal,
                       c->B, c->Tq, c->Tk, c->C, c->NH);
  return gc_project(c->out, c->R, (size_t)c->B * c->Tq * c->C);
}

/* Naive attention in double, straight from the definition. */
static double reference_error(const att_ctx *c) {
  const int hs = c->C / c->NH;
  double worst = 0;
  for (int b = 0; b < c->B; b++)
    for (int h = 0; h < c->NH; h++)
      for (int i = 0; i < c->Tq; i++) {
        double s[64], mx = -INFINITY, sum = 0;
        for (int j = 0; j < c->Tk; j++) {
          int visible = (!c->mask || c->mask[b * c->Tk + j]) && (!c->causal || j <= i);
          if (!visible) { s[j] = -INFINITY; continue; }
          double d = 0;
          for (int e = 0; e < hs; e++)
            d += (double)c->q[(size_t)(b * c->Tq + i) * c->ldq + h * hs + e] *
                 c->k[(size_t)(b * c->Tk + j) * c->ldk + h * hs + e];
          s[j] = d / sqrt(hs);
          mx = fmax(mx, s[j]);
        }
        for (int j = 0; j < c->Tk; j++) {
          s[j] = s[j] == -INFINITY ? 0.0 : exp(s[j] - mx);
          sum += s[j];
        }
        for (int j = 0; j < c->Tk; j++) {
          double w = sum > 0 ? s[j] / sum : 0.0;
          float got = c->att[(((size_t)b * c->NH + h) * c->Tq + i) * c->Tk + j];
          worst = fmax(worst, fabs(got - w));
        }
        for (int e = 0; e < hs; e++) {
          double o = 0;
          for (int j = 0; j < c->Tk; j++)
            if (sum > 0) o += s[j] / sum * c->v[(size_t)(b * c->Tk + j) * c->ldv + h * hs + e];
          float got = c->out[(size_t)(b * c->Tq + i) * c->C + h * hs + e];
          worst = fmax(worst, fabs(got - o) / fmax(fabs(o), 1.0));
        }
      }
  return worst;
}

static void run(const char *name, att_ctx *c, float *grad_buf) {
  att_f(c);
  double e = reference_error(c);
  printf("%s: B=%d Tq=%d Tk=%d C=%d NH=%d causal=%d mask=%s\n", name, c->B, c->Tq, c->Tk, c->C,
         c->NH, c->causal, c->mask ? "yes" : "no");
  printf("  forward vs naive double reference: %.2e\n", e);
  GC_EXPECT(e < 1e-5, "%s forward differs from the reference by %.2e", name, e);
  float *scratch = gc_alloc((size_t)c->Tq * c->Tk);
  float *dq = grad_buf + (c->q - c->buf), *dk = grad_buf + (c->k - c->buf),
        *dv = grad_buf + (c->v - c->buf);
  ot_attention_backward(dq, dk, dv, scratch, c->R, c->att, c->q, c->ldq, c->k, c->ldk, c->v,
                        c->ldv, c->mask, c->causal, c->B, c->Tq, c->Tk, c->C, c->NH);
  char what[96];
  snprintf(what, sizeof what, "%s d(q,k,v)", name);
  gc_check(what, c->buf, grad_buf, c->nbuf, att_f, c, GC_H, 600);
  free(scratch);
}

/* Self-attention on a packed [B,T,3C] buffer. */
static void test_self(int B, int T, int C, int NH, int causal, const uint8_t *mask) {
  att_ctx c = {.B = B, .Tq = T, .Tk = T, .C = C, .NH = NH, .causal = causal, .mask = mask};
  c.nbuf = (size_t)B * T * 3 * C;
  c.buf = gc_randn(&rng, c.nbuf, 1.0f);
  c.q = c.buf, c.k = c.buf + C, c.v = c.buf + 2 * C;
  c.ldq = c.ldk = c.ldv = 3 * C;
  c.out = gc_alloc((size_t)B * T * C);
  c.att = gc_alloc((size_t)B * NH * T * T);
  c.R = gc_randn(&rng, (size_t)B * T * C, 1.0f);
  float *g = gc_alloc(c.nbuf);
  run("self-attention", &c, g);
  if (mask) { /* masked keys get exactly zero gradient in k and v */
    double leak = 0;
    for (int b = 0; b < B; b++)
      for (int j = 0; j < T; j++)
        if (!mask[b * T + j])
          for (int e = C; e < 3 * C; e++) leak = fmax(leak, fabs(g[(size_t)(b * T + j) * 3 * C + e]));
    GC_EXPECT(leak == 0.0, "gradient leaks into masked keys: %.3g", leak);
  }
  free(c.buf), free(c.out), free(c.att), free(c.R), free(g);
}

/* Cross-attention: q [B,Tq,C] and a packed kv [B,Tk,2C] in one buffer. */
static void test_cross(int B, int Tq, int Tk, int C, int NH, const uint8_t *mask) {
  att_ctx c = {.B = B, .Tq = Tq, .Tk = Tk, .C = C, .NH = NH, .causal = 0, .mask = mask};
  size_t nq = (size_t)B * Tq * C, nkv = (size_t)B * Tk * 2 * C;
  c.nbuf = nq + nkv;
  c.buf = gc_randn(&rng, c.nbuf, 1.0f);
  c.q = c.buf, c.k = c.buf + nq, c.v = c.buf + nq + C;
  c.ldq = C, c.ldk = c.ldv = 2 * C;
  c.out = gc_alloc(nq);
  c.att = gc_alloc((size_t)B * NH * Tq * Tk);
  c.R = gc_randn(&rng, nq, 1.0f);
  float *g = gc_alloc(c.nbuf);
  run("cross-attention", &c, g);
  if (mask) /* a batch item without any valid key: zero output */
    for (int b = 0; b < B; b++) {
      int any = 0;
      for (int j = 0; j < Tk; j++) any |= mask[b * Tk + j];
      if (any) continue;
      double m = 0;
      for (size_t i = 0; i < (size_t)Tq * C; i++) m = fmax(m, fabs(c.out[(size_t)b * Tq * C + i]));
      GC_EXPECT(m == 0.0, "batch item %d has no valid key but a nonzero output", b);
    }
  free(c.buf), free(c.out), free(c.att), free(c.R), free(g);
}

int main(void) {
  ot_rng_seed(&rng, 777);
  /* padding at the end, in the middle, none */
  static const uint8_t mask7[3 * 7] = {1, 1, 1, 1, 1, 0, 0, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
  test_self(2, 7, 12, 3, 0, NULL);
  test_self(3, 7, 12, 3, 0, mask7);
  /* causal with the first key padded: query 0 sees no key at all */
  static const uint8_t mask7c[3 * 7] = {0, 1, 1, 1, 1, 1, 0, 1, 1, 0, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1, 1};
  test_self(3, 7, 12, 4, 1, mask7c);
  test_self(2, 7, 13, 1, 1, NULL); /* odd width, one head */
  /* cross: Tq != Tk, trailing + interior padding, and an item with no key */
  static const uint8_t mask9[3 * 9] = {1, 1, 1, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                       1, 1, 1, 1, 1, 1, 1, 1, 1};
  test_cross(3, 5, 9, 12, 2, mask9);
  test_cross(2, 11, 3, 10, 5, NULL);
  return gc_finish("test_ops_attention");
}
