/* What the C benchmarks share: the memory of the running process (Linux
 * /proc) and synthetic data (a seeded generator, Zipf draws). */
#ifndef OT_BENCH_UTIL_H
#define OT_BENCH_UTIL_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* VmRSS or VmHWM (the peak) of this process in kB; -1 when unreadable. */
static inline long bench_status_kb(const char *field) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long kb = -1;
  size_t n = strlen(field);
  while (f && fgets(line, sizeof line, f))
    if (!strncmp(line, field, n) && line[n] == ':') kb = atol(line + n + 1);
  if (f) fclose(f);
  return kb;
}

/* Reset VmHWM to the current RSS (Linux >= 4.0), so a later VmHWM is the
 * peak of what follows. */
static inline void bench_reset_peak(void) {
  FILE *f = fopen("/proc/self/clear_refs", "w");
  if (f) fputs("5", f), fclose(f);
}

/* Uniform in [0, 1): splitmix64, the same sequence on every run. */
static uint64_t bench_rng_state = 0x9E3779B97F4A7C15ull;
static inline double bench_uniform(void) {
  uint64_t z = (bench_rng_state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return (double)((z ^ (z >> 31)) >> 11) / 9007199254740992.0;
}

/* cdf[v] of a Zipf law with exponent s over ranks 0..v-1 (unnormalised);
 * the caller frees it. */
static inline double *bench_zipf_cdf(int v, double s) {
  double *cdf = malloc((size_t)v * sizeof *cdf);
  if (!cdf) abort();
  for (int i = 0; i < v; i++) cdf[i] = (i ? cdf[i - 1] : 0.0) + pow(i + 1.0, -s);
  return cdf;
}

/* A rank drawn from the law of bench_zipf_cdf. */
static inline int bench_zipf(const double *cdf, int v) {
  double u = bench_uniform() * cdf[v - 1];
  int lo = 0, hi = v - 1;
  while (lo < hi) {
    int mid = (lo + hi) / 2;
    if (cdf[mid] < u) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

#endif
