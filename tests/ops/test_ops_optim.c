/* AdamW against hand-computed values, per-tensor decay mask, gradient
 * clipping, the weight average, the warmup+cosine schedule at known steps, the RNG (reference
 * values, determinism, state save/restore, distributions), the parameter
 * table layout and the arena. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"
#include "ot_arena.h"
#include "ot_common.h"
#include "ot_optim.h"
#include "ot_params.h"
#include "ot_rng.h"

static void test_adamw(void) {
  printf("AdamW (lr 0.1, betas 0.9/0.999, eps 1e-8, decay 0.01), two steps\n");
  /* Hand-computed (python, float64) from
   * m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
   * p -= lr (m/(1-b1^t) / (sqrt(v/(1-b2^t)) + eps) + wd p):
   * p=1,  g=0.5 then -0.25 -> 0.899000002, 0.8714672987058464
   * p=-2, g=0   then  3    -> -1.998 (decay only), -2.0704156820059962 */
  float p[2] = {1.0f, -2.0f}, m[2] = {0}, v[2] = {0};
  const float g1[2] = {0.5f, 0.0f}, g2[2] = {-0.25f, 3.0f};
  ot_adamw_update(p, g1, m, v, 2, 0.1f, 0.9f, 0.999f, 1e-8f, 0.01f, 1);
  GC_EXPECT(fabs(p[0] - 0.899000002) < 1e-6 && fabs(p[1] + 1.998) < 1e-6, "step 1: %.9f %.9f", p[0], p[1]);
  /* (1 - beta) is rounded to float (0.100000024, 0.00099998713) */
  GC_EXPECT(fabs(m[0] - 0.05) < 1e-6 && fabs(v[0] - 0.00025) < 1e-4 * 0.00025, "step 1 moments %g %g",
            m[0], v[0]);
  ot_adamw_update(p, g2, m, v, 2, 0.1f, 0.9f, 0.999f, 1e-8f, 0.01f, 2);
  GC_EXPECT(fabs(p[0] - 0.8714672987) < 1e-6 && fabs(p[1] + 2.0704156820) < 1e-6, "step 2: %.9f %.9f",
            p[0], p[1]);
  printf("  after 2 steps: %.7f %.7f (hand: 0.8714673 -2.0704157)\n", p[0], p[1]);

  printf("AdamW over a parameter table: decay mask and padding\n");
  ot_params *t;
  ot_params_open(&t);
  size_t ow, ob;
  int sw[2] = {3, 5}, sb[1] = {5};
  OT_ASSERT(ot_params_add(t, "w", 2, sw, 1, &ow) == OT_OK);
  OT_ASSERT(ot_params_add(t, "b", 1, sb, 0, &ob) == OT_OK);
  OT_ASSERT(ot_params_alloc(t, 1) == OT_OK);
  float *val = ot_params_values(t);
  for (int i = 0; i < 15; i++) val[ow + i] = 2.0f;
  for (int i = 0; i < 5; i++) val[ob + i] = 2.0f;
  ot_adamw_config cfg = {0.9f, 0.999f, 1e-8f, 0.1f};
  ot_adamw_step(t, 0.5f, &cfg, 1); /* zero gradients: only decay moves values */
  GC_EXPECT(fabsf(val[ow] - 1.9f) < 1e-6f, "decayed tensor: %g, expected 2 - 0.5*0.1*2 = 1.9", val[ow]);
  GC_EXPECT(val[ob] == 2.0f, "no-decay tensor moved to %g", val[ob]);
  float pad_max = 0;
  for (size_t i = ow + 15; i < ob; i++) pad_max = fmaxf(pad_max, fabsf(val[i]));
  GC_EXPECT(pad_max == 0.0f && ob == 16, "padding between tensors: offset %zu, max %g", ob, pad_max);
  ot_params_close(t);
}

static void test_clip(void) {
  printf("gradient clipping\n");
  float g[4] = {3, 0, 4, 0};
  float n = ot_grad_clip(g, 4, 1.0f);
  GC_EXPECT(fabsf(n - 5) < 1e-6f && fabsf(g[0] - 0.6f) < 1e-6f && fabsf(g[2] - 0.8f) < 1e-6f,
            "clip to 1: norm %g, g %g %g", n, g[0], g[2]);
  n = ot_grad_clip(g, 4, 2.0f);
  GC_EXPECT(fabsf(n - 1) < 1e-6f && fabsf(g[0] - 0.6f) < 1e-6f, "below the limit must not scale");
}

static void test_ema(void) {
  printf("weight average: ramped decay, then the configured one\n");
  /* Hand: decay 0.5, ramp (1+t)/(10+t): 2/11 at t=1 (it rules), 9/18 = 0.5
   * at t=8. avg 0 -> x=1 at t=1 gives 1 - 2/11 = 9/11; then x=3 at t=8:
   * 9/11 + 0.5 (3 - 9/11). */
  float avg[1] = {0.0f};
  const float one[1] = {1.0f}, three[1] = {3.0f};
  ot_ema_update(avg, one, 1, 0.5f, 1);
  GC_EXPECT(fabsf(avg[0] - 9.0f / 11.0f) < 1e-6f, "t=1: %.7f, expected 9/11", avg[0]);
  ot_ema_update(avg, three, 1, 0.5f, 8);
  GC_EXPECT(fabsf(avg[0] - (9.0f / 11.0f + 0.5f * (3.0f - 9.0f / 11.0f))) < 1e-6f, "t=8: %.7f", avg[0]);
  /* a constant sequence is a fixed point; the average follows it */
  float a2[3] = {2, 2, 2};
  const float c[3] = {2, 2, 2};
  for (long t = 1; t <= 50; t++) ot_ema_update(a2, c, 3, 0.99f, t);
  GC_EXPECT(a2[0] == 2.0f && a2[2] == 2.0f, "constant input moved the average to %g", a2[0]);

  printf("weight average buffer: a copy of the values, swapped in and out\n");
  ot_params *p;
  ot_params_open(&p);
  int s1[1] = {5};
  OT_ASSERT(ot_params_add(p, "w", 1, s1, 1, NULL) == OT_OK);
  OT_ASSERT(ot_params_alloc(p, 1) == OT_OK);
  GC_EXPECT(ot_params_ema(p) == NULL, "average before it is asked for");
  float *val = ot_params_values(p);
  for (int i = 0; i < 5; i++) val[i] = (float)i;
  OT_ASSERT(ot_params_alloc_ema(p) == OT_OK);
  float *avg5 = ot_params_ema(p);
  GC_EXPECT(avg5 != val && avg5[4] == 4.0f, "the average starts as the values");
  avg5[0] = 42.0f;
  ot_params_swap_ema(p);
  GC_EXPECT(ot_params_values(p) == avg5 && ot_params_values(p)[0] == 42.0f && ot_params_ema(p) == val,
            "swap exchanges the buffers");
  ot_params_swap_ema(p);
  GC_EXPECT(ot_params_values(p) == val && val[0] == 0.0f, "swapping back restores the values");
  ot_params_close(p);
}

static void test_schedule(void) {
  printf("learning-rate schedule (warmup 10, total 110, 1e-3 -> 1e-5)\n");
  const long W = 10, T = 110;
  const float hi = 1e-3f, lo = 1e-5f;
  struct { long step; double want; } known[] = {
      {0, 1e-4}, {4, 5e-4}, {9, 1e-3}, {10, 1e-3}, {60, 0.5 * (1e-3 + 1e-5)},
      {35, 1e-5 + (1e-3 - 1e-5) * 0.5 * (1 + cos(M_PI * 0.25))}, {109, 1e-5 + (1e-3 - 1e-5) * 0.5 * (1 + cos(M_PI * 0.99))},
      {110, 1e-5}, {1000, 1e-5}};
  for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
    float got = ot_lr_schedule(known[i].step, W, T, hi, lo);
    GC_EXPECT(fabs(got - known[i].want) < 1e-6 * known[i].want, "step %ld: %.9g, expected %.9g",
              known[i].step, got, known[i].want);
  }
  float prev = 1;
  int monotone = 1;
  for (long s = W; s <= T; s++) {
    float lr = ot_lr_schedule(s, W, T, hi, lo);
    monotone &= lr <= prev;
    prev = lr;
  }
  GC_EXPECT(monotone, "cosine phase is not non-increasing");
}

static void test_rng(void) {
  printf("rng\n");
  ot_rng r, r2;
  ot_rng_seed(&r, 42);
  /* xoshiro256** seeded by splitmix64(42), computed independently (python) */
  const uint64_t want[3] = {0x15780b2e0c2ec716ull, 0x6104d9866d113a7eull, 0xae17533239e499a1ull};
  for (int i = 0; i < 3; i++) {
    uint64_t got = ot_rng_u64(&r);
    GC_EXPECT(got == want[i], "draw %d: %016llx, expected %016llx", i, (unsigned long long)got,
              (unsigned long long)want[i]);
  }
  /* save mid-stream, continue, restore, replay */
  uint64_t st[OT_RNG_STATE_WORDS];
  ot_rng_get_state(&r, st);
  float a[100], b[100];
  for (int i = 0; i < 100; i++) a[i] = i % 2 ? ot_rng_normal(&r) : ot_rng_uniform(&r);
  OT_ASSERT(ot_rng_set_state(&r2, st) == OT_OK);
  for (int i = 0; i < 100; i++) b[i] = i % 2 ? ot_rng_normal(&r2) : ot_rng_uniform(&r2);
  GC_EXPECT(memcmp(a, b, sizeof a) == 0, "restored state does not replay the stream");
  uint64_t zero[4] = {0};
  GC_EXPECT(ot_rng_set_state(&r2, zero) == OT_EINVAL, "all-zero state accepted");
  ot_rng_seed(&r2, 43);
  ot_rng_seed(&r, 42);
  GC_EXPECT(ot_rng_u64(&r) != ot_rng_u64(&r2), "seeds 42 and 43 start alike");

  /* distributions */
  const int n = 200000;
  double su = 0, sn = 0, sn2 = 0, umin = 1, umax = 0;
  int counts[7] = {0};
  for (int i = 0; i < n; i++) {
    double u = ot_rng_uniform(&r);
    umin = fmin(umin, u), umax = fmax(umax, u), su += u;
    double z = ot_rng_normal(&r);
    sn += z, sn2 += z * z;
    counts[ot_rng_below(&r, 7)]++;
  }
  double mean = sn / n, var = sn2 / n - mean * mean;
  printf("  uniform mean %.4f in [%.2g, %.6f]; normal mean %.4f var %.4f\n", su / n, umin, umax, mean, var);
  GC_EXPECT(umin >= 0 && umax < 1 && fabs(su / n - 0.5) < 0.005, "uniform out of range or biased");
  GC_EXPECT(fabs(mean) < 0.01 && fabs(var - 1) < 0.02, "normal: mean %g var %g", mean, var);
  for (int k = 0; k < 7; k++)
    GC_EXPECT(fabs(counts[k] - n / 7.0) < 5 * sqrt(n / 7.0), "below(7): bucket %d has %d", k, counts[k]);

  int32_t perm[50], seen[50] = {0};
  for (int i = 0; i < 50; i++) perm[i] = i;
  ot_rng_shuffle_i32(&r, perm, 50);
  int moved = 0;
  for (int i = 0; i < 50; i++) seen[perm[i]]++, moved += perm[i] != i;
  int ok = 1;
  for (int i = 0; i < 50; i++) ok &= seen[i] == 1;
  GC_EXPECT(ok && moved > 25, "shuffle is not a permutation or barely moves (%d moved)", moved);
  GC_EXPECT(ot_rng_mix(1, 2) != ot_rng_mix(1, 3) && ot_rng_mix(1, 2) == ot_rng_mix(1, 2),
            "ot_rng_mix");
}

static void test_params(void) {
  printf("parameter table\n");
  ot_params *p;
  ot_params_open(&p);
  int s1[2] = {7, 3}, s2[1] = {1}, s3[3] = {2, 2, 5}, bad[1] = {0};
  size_t o1, o2, o3;
  OT_ASSERT(ot_params_add(p, "a.w", 2, s1, 1, &o1) == OT_OK);
  OT_ASSERT(ot_params_add(p, "a.b", 1, s2, 0, &o2) == OT_OK);
  OT_ASSERT(ot_params_add(p, "c", 3, s3, 1, &o3) == OT_OK);
  GC_EXPECT(ot_params_add(p, "a.w", 1, s2, 0, NULL) == OT_EINVAL, "duplicate name accepted");
  GC_EXPECT(ot_params_add(p, "z", 1, bad, 0, NULL) == OT_EINVAL, "zero dimension accepted");
  GC_EXPECT(o1 == 0 && o2 == 32 && o3 == 48, "offsets %zu %zu %zu, expected 0 32 48", o1, o2, o3);
  GC_EXPECT(ot_params_total(p) == 80 && ot_params_numel(p) == 42, "total %zu numel %zu",
            ot_params_total(p), ot_params_numel(p));
  GC_EXPECT(ot_params_find(p, "c") == 2 && ot_params_find(p, "nope") == -1, "find");
  GC_EXPECT(ot_params_values(p) == NULL, "values before alloc");
  OT_ASSERT(ot_params_alloc(p, 0) == OT_OK);
  GC_EXPECT(ot_params_grads(p) == NULL && ((uintptr_t)ot_params_values(p) & 63) == 0,
            "inference table has grads or unaligned values");
  GC_EXPECT(ot_params_add(p, "late", 1, s2, 0, NULL) == OT_EINVAL, "declared after alloc");
  const ot_param_view *v = ot_params_view(p, 2);
  GC_EXPECT(v->ndim == 3 && v->shape[2] == 5 && v->numel == 20 && v->decay == 1, "view of c");
  ot_params_close(p);
  ot_params_close(NULL);
}

static void test_arena(void) {
  printf("arena\n");
  ot_arena *a;
  OT_ASSERT(ot_arena_open(&a, 4096) == OT_OK);
  float *x = ot_arena_floats(a, 10);
  float *y = ot_arena_zeros(a, 3);
  GC_EXPECT(((uintptr_t)x & 63) == 0 && ((uintptr_t)y & 63) == 0 && y[2] == 0.0f, "alignment/zeros");
  GC_EXPECT((char *)y - (char *)x == 64, "bump: %td bytes apart", (char *)y - (char *)x);
  ot_arena_mark m = ot_arena_save(a);
  float *big = ot_arena_floats(a, 100000); /* forces a second block */
  OT_ASSERT(big != NULL);
  big[99999] = 1.0f;
  size_t high = ot_arena_high_water(a);
  GC_EXPECT(high >= 128 + 400000, "high water %zu", high);
  ot_arena_restore(a, m);
  GC_EXPECT(ot_arena_used(a) == 128, "restore: %zu bytes in use", ot_arena_used(a));
  GC_EXPECT(ot_arena_floats(a, 1) == y + 16, "allocation after restore does not reuse the space");
  ot_arena_reset(a);
  size_t cap = ot_arena_capacity(a);
  GC_EXPECT(cap >= high, "after reset one block of at least the high water: %zu < %zu", cap, high);
  x = ot_arena_floats(a, 10);
  big = ot_arena_floats(a, 100000);
  GC_EXPECT(big != NULL && ot_arena_capacity(a) == cap, "second step grew the arena");
  ot_arena_close(a);
  ot_arena_close(NULL);
}

int main(void) {
  test_adamw();
  test_clip();
  test_ema();
  test_schedule();
  test_rng();
  test_params();
  test_arena();
  return gc_finish("test_ops_optim");
}
