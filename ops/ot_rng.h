/* Deterministic random numbers for initialisation, shuffling and dropout.
 *
 * xoshiro256** (Blackman & Vigna) seeded through splitmix64. The whole state
 * is four uint64s, copied in and out with ot_rng_get_state/ot_rng_set_state
 * so a checkpoint resumes the exact stream. No hidden caches: every call
 * draws a fixed number of u64s (ot_rng_normal draws two), so the stream
 * position is a function of the calls made. */
#ifndef OT_RNG_H
#define OT_RNG_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
  uint64_t s[4];
} ot_rng;

#define OT_RNG_STATE_WORDS 4

/* Seed from one 64-bit value (any value, including 0, is fine). */
void ot_rng_seed(ot_rng *r, uint64_t seed);
/* Save / restore the exact stream position. set_state rejects the all-zero
 * state (xoshiro's only invalid state) with OT_EINVAL. */
void ot_rng_get_state(const ot_rng *r, uint64_t out[OT_RNG_STATE_WORDS]);
int ot_rng_set_state(ot_rng *r, const uint64_t in[OT_RNG_STATE_WORDS]);

uint64_t ot_rng_u64(ot_rng *r);
/* Uniform integer in [0, n), n >= 1, without modulo bias (Lemire). */
uint32_t ot_rng_below(ot_rng *r, uint32_t n);
/* Uniform float in [0, 1) with 24 random bits. */
float ot_rng_uniform(ot_rng *r);
/* Standard normal (Box-Muller in double, one value per two u64 draws). */
float ot_rng_normal(ot_rng *r);
void ot_rng_fill_uniform(ot_rng *r, float *x, size_t n, float lo, float hi);
void ot_rng_fill_normal(ot_rng *r, float *x, size_t n, float mean, float std);
/* Fisher-Yates shuffle of an int32 array. */
void ot_rng_shuffle_i32(ot_rng *r, int32_t *a, size_t n);

/* Stateless mixing of a seed with a counter (splitmix64 finaliser): derives
 * independent per-site / per-step seeds, e.g. for dropout masks. */
uint64_t ot_rng_mix(uint64_t seed, uint64_t counter);

#endif
