/* Finite-difference gradient checking for the ops tests (header-only).
 *
 * A test wraps its forward in a function returning the scalar
 *   L = sum_i out_i * R_i      (R fixed random weights, sum in double)
 * so dL/dout = R, runs the backward with dout = R into zeroed gradient
 * buffers, and gc_check compares each analytic element with a fourth-order
 * central difference
 *   (8 (L(x+h) - L(x-h)) - (L(x+2h) - L(x-2h))) / (12 h)
 * (truncation O(h^4), so h = 2^-5 is large enough to keep the float
 * rounding of the forward, which scales as 1/h, at ~1e-3 and below for a
 * whole transformer block, while truncation stays ~1e-6). Element error:
 *   err = |a - n| / max(|a|, |n|, floor),  floor = 1e-2 * max_j |a_j| (>= 1e-6)
 * and the check fails if the largest err is >= tol (tests use 1e-2). The
 * floor keeps elements whose gradient is ~0 from failing on rounding noise
 * while any element carrying 1% of the tensor's largest gradient is held to
 * 1% relative accuracy. */
#ifndef OT_TEST_GRADCHECK_H
#define OT_TEST_GRADCHECK_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ot_rng.h"

typedef double (*gc_fn)(void *ctx);

#define GC_TOL 1e-2
#ifndef GC_H
#define GC_H 0.03125f /* 2^-5 */
#endif

static int gc_failures = 0;

static inline double gc_project(const float *out, const float *R, size_t n) {
  double s = 0.0;
  for (size_t i = 0; i < n; i++) s += (double)out[i] * (double)R[i];
  return s;
}

/* Fourth-order central difference of f with respect to x[i]. */
static inline double gc_numeric(float *x, size_t i, gc_fn f, void *ctx, float h) {
  float x0 = x[i];
  x[i] = x0 + h;
  double f1 = f(ctx);
  x[i] = x0 - h;
  double fm1 = f(ctx);
  x[i] = x0 + 2 * h;
  double f2 = f(ctx);
  x[i] = x0 - 2 * h;
  double fm2 = f(ctx);
  x[i] = x0;
  return (8.0 * (f1 - fm1) - (f2 - fm2)) / (12.0 * (double)h);
}

/* Check analytic gradient `a` of f with respect to x [n] at up to
 * max_checks elements (all of them if n <= max_checks, else a seeded random
 * sample). Returns the largest error; prints a line; counts a failure. */
static inline double gc_check_quiet(const char *what, float *x, const float *a, size_t n, gc_fn f,
                             void *ctx, float h, size_t max_checks, int verbose) {
  double amax = 0.0;
  for (size_t i = 0; i < n; i++) amax = fmax(amax, fabs((double)a[i]));
  double floor = fmax(1e-2 * amax, 1e-6);
  ot_rng rng;
  ot_rng_seed(&rng, 1234 + n);
  double worst = 0.0, wa = 0.0, wn = 0.0;
  size_t wi = 0, checks = n <= max_checks ? n : max_checks;
  for (size_t c = 0; c < checks; c++) {
    size_t i = n <= max_checks ? c : (size_t)ot_rng_below(&rng, (uint32_t)n);
    double num = gc_numeric(x, i, f, ctx, h);
    double err = fabs((double)a[i] - num) / fmax(fmax(fabs((double)a[i]), fabs(num)), floor);
    if (err > worst || c == 0) {
      worst = err;
      wi = i;
      wa = a[i];
      wn = num;
    }
  }
  if (verbose)
    printf("  %-34s n=%-6zu checked=%-5zu max|g|=%-9.3g max err %.2e at %zu (analytic %.6g, numeric %.6g)%s\n",
           what, n, checks, amax, worst, wi, wa, wn, worst < GC_TOL ? "" : "  <-- FAIL");
  return worst;
}

static inline int gc_check(const char *what, float *x, const float *a, size_t n, gc_fn f, void *ctx,
                    float h, size_t max_checks) {
  double worst = gc_check_quiet(what, x, a, n, f, ctx, h, max_checks, 1);
  if (!(worst < GC_TOL)) {
    gc_failures++;
    return 1;
  }
  return 0;
}

/* Plain assertion with a message; counts a failure. */
#define GC_EXPECT(cond, ...)                        \
  do {                                              \
    if (!(cond)) {                                  \
      printf("  FAIL %s:%d: ", __FILE__, __LINE__); \
      printf(__VA_ARGS__);                          \
      printf("\n");                                 \
      gc_failures++;                                \
    }                                               \
  } while (0)

/* Largest |a-b| / max(|b|, scale) between a float result and a double reference. */
static inline double gc_max_rel(const float *a, const double *ref, size_t n, double scale) {
  double worst = 0.0;
  for (size_t i = 0; i < n; i++)
    worst = fmax(worst, fabs((double)a[i] - ref[i]) / fmax(fabs(ref[i]), scale));
  return worst;
}

static inline float *gc_alloc(size_t n) {
  float *p = calloc(n ? n : 1, sizeof(float));
  if (!p) abort();
  return p;
}

static inline float *gc_randn(ot_rng *rng, size_t n, float std) {
  float *p = gc_alloc(n);
  ot_rng_fill_normal(rng, p, n, 0.0f, std);
  return p;
}

static inline int gc_finish(const char *name) {
  if (gc_failures) {
    printf("%s: %d FAILURE(S)\n", name, gc_failures);
    return 1;
  }
  printf("%s: all checks passed\n", name);
  return 0;
}

#endif
