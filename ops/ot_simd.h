/* Internal to ops/: loop-vectorisation settings and branch-free math helpers
 * shared by the kernel files. Include it FIRST in a .c file (the pragma
 * applies to the functions defined after it).
 *
 * Why the pragma: the project builds at -O2, where GCC 12 only vectorises
 * loops whose trip count is a known multiple of the vector width, and the
 * default -ftrapping-math stops if-conversion of the clamps below. The
 * element-wise kernels (exp in softmax/attention, tanh in GELU) would then
 * run scalar and cost as much as the matrix products around them. Neither
 * option changes results beyond float rounding of the vector code; we never
 * rely on floating-point exceptions. */
#ifndef OT_SIMD_H
#define OT_SIMD_H

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("O3", "no-trapping-math")
#endif

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* exp(x) within ~2 ulp for x in [-87, 88] (inputs are clamped to it), written
 * without branches or libm calls so that loops over it vectorise. Cephes
 * expf: x = n ln2 + r, |r| <= ln2/2, degree-6 polynomial for e^r, 2^n
 * assembled in the exponent bits. Rounding to n uses the 1.5*2^23 trick, so
 * n's integer value is read straight from the low mantissa bits of t. */
static inline float ot_fast_expf(float x) {
  x = x < -87.0f ? -87.0f : x;
  x = x > 88.0f ? 88.0f : x;
  float t = x * 1.44269504088896341f + 12582912.0f;
  float n = t - 12582912.0f;
  float r = x - n * 0.693359375f - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  float y = p * r * r + r + 1.0f;
  uint32_t tb; /* unsigned: a NaN x (whose result is NaN through y) must not overflow here */
  memcpy(&tb, &t, sizeof tb);
  uint32_t bits = (tb - 0x4B400000u + 127u) << 23;
  float scale;
  memcpy(&scale, &bits, sizeof scale);
  return y * scale;
}

/* tanh(u) = 1 - 2 / (e^{2u} + 1); absolute error ~1e-7, exact +-1 in the
 * saturated tails (the exp clamp keeps the division finite). */
static inline float ot_fast_tanhf(float u) {
  return 1.0f - 2.0f / (ot_fast_expf(2.0f * u) + 1.0f);
}

/* Sum with 8 independent partial sums: vectorises (fixed association order,
 * so the result is deterministic), and is more accurate than a serial sum. */
static inline float ot_sum8(const float *x, int n) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; j++) acc[j] += x[i + j];
  float s = 0.0f;
  for (; i < n; i++) s += x[i];
  return s + ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

/* Dot product with the same 8-way structure. */
static inline float ot_dot8(const float *x, const float *y, int n) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; j++) acc[j] += x[i + j] * y[i + j];
  float s = 0.0f;
  for (; i < n; i++) s += x[i] * y[i];
  return s + ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

/* Maximum of n >= 1 floats (no NaN handling: NaNs propagate or not). */
static inline float ot_max8(const float *x, int n) {
  float m = x[0];
  for (int i = 1; i < n; i++) m = x[i] > m ? x[i] : m;
  return m;
}

#endif
