#include "ot_rng.h"

#include <math.h>

#include "ot_common.h"

static uint64_t splitmix64(uint64_t *x) {
  uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void ot_rng_seed(ot_rng *r, uint64_t seed) {
  uint64_t x = seed;
  for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
  /* splitmix64 is a bijection of its counter; four consecutive outputs are
   * never all zero, so the state is valid. */
}

void ot_rng_get_state(const ot_rng *r, uint64_t out[OT_RNG_STATE_WORDS]) {
  for (int i = 0; i < 4; i++) out[i] = r->s[i];
}

int ot_rng_set_state(ot_rng *r, const uint64_t in[OT_RNG_STATE_WORDS]) {
  if ((in[0] | in[1] | in[2] | in[3]) == 0)
    return ot_fail(OT_EINVAL, "rng state is all zeros (not a valid xoshiro256** state)");
  for (int i = 0; i < 4; i++) r->s[i] = in[i];
  return OT_OK;
}

uint64_t ot_rng_u64(ot_rng *r) {
  uint64_t *s = r->s;
  uint64_t result = rotl(s[1] * 5, 7) * 9;
  uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return result;
}

uint32_t ot_rng_below(ot_rng *r, uint32_t n) {
  OT_ASSERT(n >= 1);
  uint64_t m = (ot_rng_u64(r) >> 32) * (uint64_t)n;
  uint32_t low = (uint32_t)m;
  if (low < n) {
    uint32_t threshold = (uint32_t)(-n) % n;
    while (low < threshold) {
      m = (ot_rng_u64(r) >> 32) * (uint64_t)n;
      low = (uint32_t)m;
    }
  }
  return (uint32_t)(m >> 32);
}

float ot_rng_uniform(ot_rng *r) { return (float)(ot_rng_u64(r) >> 40) * 0x1.0p-24f; }

float ot_rng_normal(ot_rng *r) {
  /* u1 in (0, 1] so the log is finite; 53-bit uniforms in double. */
  double u1 = ((double)(ot_rng_u64(r) >> 11) + 1.0) * 0x1.0p-53;
  double u2 = (double)(ot_rng_u64(r) >> 11) * 0x1.0p-53;
  return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

void ot_rng_fill_uniform(ot_rng *r, float *x, size_t n, float lo, float hi) {
  for (size_t i = 0; i < n; i++) x[i] = lo + (hi - lo) * ot_rng_uniform(r);
}

void ot_rng_fill_normal(ot_rng *r, float *x, size_t n, float mean, float std) {
  for (size_t i = 0; i < n; i++) x[i] = mean + std * ot_rng_normal(r);
}

void ot_rng_shuffle_i32(ot_rng *r, int32_t *a, size_t n) {
  OT_ASSERT(n <= UINT32_MAX);
  for (size_t i = n; i > 1; i--) {
    size_t j = ot_rng_below(r, (uint32_t)i);
    int32_t t = a[i - 1];
    a[i - 1] = a[j];
    a[j] = t;
  }
}

uint64_t ot_rng_mix(uint64_t seed, uint64_t counter) {
  uint64_t x = seed ^ (counter * 0xD1B54A32D192ED03ull);
  return splitmix64(&x);
}
