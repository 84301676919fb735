/* Hungarian assignment against exhaustive search (small shapes), a
 * bitmask DP (12 x 32), ties, huge magnitudes, and the 32 x 20 timing. */
#include "hungarian.h"
#include "ot_common.h"

#include <float.h>
#include <math.h>
#include "ot_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


static uint64_t rng = 88172645463325252ULL;
static uint64_t next_u64(void) {
  rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
  return rng;
}
static double unif(void) { return (double)(next_u64() >> 11) / 9007199254740992.0; }

/* Exhaustive minimum over injective maps short side -> long side. */
static double brute_rec(const float *c, int nr, int nc, int tr, int i, int k, int m,
                        unsigned char *used) {
  if (i == k) return 0.0;
  double best = INFINITY;
  for (int j = 0; j < m; j++) {
    if (used[j]) continue;
    used[j] = 1;
    double e = tr ? c[(size_t)j * nc + i] : c[(size_t)i * nc + j];
    double v = e + brute_rec(c, nr, nc, tr, i + 1, k, m, used);
    if (v < best) best = v;
    used[j] = 0;
  }
  return best;
}

static double brute(const float *c, int nr, int nc) {
  unsigned char used[16] = {0};
  int tr = nr > nc;
  return brute_rec(c, nr, nc, tr, 0, tr ? nc : nr, tr ? nr : nc, used);
}

/* Minimum over assignments covering all rows (nr <= nc, nr small) by DP
 * over the set of used rows, column by column. */
static double dp_min(const float *c, int nr, int nc) {
  size_t S = (size_t)1 << nr;
  double *dp = malloc(S * sizeof *dp), *nx = malloc(S * sizeof *nx);
  for (size_t s = 0; s < S; s++) dp[s] = s ? INFINITY : 0.0;
  for (int j = 0; j < nc; j++) {
    for (size_t s = 0; s < S; s++) {
      double best = dp[s];
      for (int r = 0; r < nr; r++)
        if (s >> r & 1) {
          double v = dp[s & ~((size_t)1 << r)] + c[(size_t)r * nc + j];
          if (v < best) best = v;
        }
      nx[s] = best;
    }
    double *t = dp; dp = nx; nx = t;
  }
  double res = dp[S - 1];
  free(dp); free(nx);
  return res;
}

/* Checks a returned assignment: one-to-one, min(nr, nc) pairs, and that
 * total is the sum of the chosen costs. Returns that sum. */
static double check_assignment(const float *c, int nr, int nc, const int *rc, float total,
                               const char *what) {
  unsigned char col_used[64] = {0};
  int assigned = 0;
  double sum = 0.0;
  for (int r = 0; r < nr; r++) {
    if (rc[r] < 0) { CHECKF(rc[r] == -1, "%s: row %d -> %d", what, r, rc[r]); continue; }
    CHECKF(rc[r] < nc, "%s: row %d -> column %d of %d", what, r, rc[r], nc);
    if (rc[r] >= nc) continue;
    CHECKF(!col_used[rc[r]], "%s: column %d assigned twice", what, rc[r]);
    col_used[rc[r]] = 1;
    assigned++;
    sum += c[(size_t)r * nc + rc[r]];
  }
  int want = nr < nc ? nr : nc;
  CHECKF(assigned == want, "%s: %d pairs assigned, want %d", what, assigned, want);
  CHECKF(total == (float)sum, "%s: total %.9g != sum of chosen costs %.9g", what, (double)total,
        sum);
  return sum;
}

static void fill(float *c, int n, int kind) {
  static const float big[5] = {-1e30f, -1.0f, 0.0f, 1.0f, 1e30f};
  for (int e = 0; e < n; e++) {
    switch (kind) {
      case 0: c[e] = (float)(2.0 * unif() - 1.0); break;       /* continuous */
      case 1: c[e] = (float)(next_u64() % 2); break;            /* many ties */
      case 2: c[e] = big[next_u64() % 5]; break;                 /* mixed magnitudes */
      case 3: c[e] = (float)((2.0 * unif() - 1.0) * 3e38); break; /* near FLT_MAX */
      default: c[e] = (float)(next_u64() % 4); break;           /* small integers */
    }
  }
}

static double tolerance(const float *c, int n, int kind) {
  if (kind == 1 || kind == 4) return 0.0;  /* integer sums are exact */
  double mx = 0.0;
  for (int e = 0; e < n; e++) mx = fmax(mx, fabs((double)c[e]));
  return 1e-9 * mx * 8 + 1e-6;
}

static void test_against_brute_force(void) {
  float c[64];
  int rc[8], rc2[8];
  int checked = 0;
  for (int nr = 1; nr <= 7; nr++)
    for (int nc = 1; nc <= 7; nc++)
      for (int kind = 0; kind < 5; kind++)
        for (int trial = 0; trial < 12; trial++) {
          fill(c, nr * nc, kind);
          float total = NAN, total2 = NAN;
          int rcode = ot_hungarian(c, nr, nc, rc, &total);
          CHECKF(rcode == OT_OK, "%dx%d: %s", nr, nc, ot_errmsg());
          char what[64];
          snprintf(what, sizeof what, "%dx%d kind %d trial %d", nr, nc, kind, trial);
          double got = check_assignment(c, nr, nc, rc, total, what);
          double best = brute(c, nr, nc);
          CHECKF(fabs(got - best) <= tolerance(c, nr * nc, kind), "%s: total %.17g, optimum %.17g",
                what, got, best);
          /* Same input, same answer. */
          ot_hungarian(c, nr, nc, rc2, &total2);
          CHECKF(memcmp(rc, rc2, sizeof(int) * (size_t)nr) == 0 && total == total2,
                "%s: not deterministic", what);
          checked++;
        }
  printf("hungarian: %d matrices (1..7 x 1..7, 5 value kinds) match exhaustive search\n", checked);
}

static void test_named_shapes(void) {
  /* The shapes of the brief explicitly, plus 1 x n / n x 1 up to 7. */
  const int shapes[][2] = {{3, 6}, {6, 3}, {7, 7}, {1, 7}, {7, 1}, {1, 1}, {2, 7}, {7, 2}};
  float c[64];
  int rc[8];
  for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
    int nr = shapes[s][0], nc = shapes[s][1];
    for (int trial = 0; trial < 200; trial++) {
      fill(c, nr * nc, trial % 5);
      float total;
      CHECKF(ot_hungarian(c, nr, nc, rc, &total) == OT_OK, "%s", ot_errmsg());
      double got = check_assignment(c, nr, nc, rc, total, "named shape");
      double best = brute(c, nr, nc);
      CHECKF(fabs(got - best) <= tolerance(c, nr * nc, trial % 5), "%dx%d: %.17g vs %.17g", nr, nc,
            got, best);
    }
  }
  /* 1 x n picks the smallest entry, first one on ties. */
  float row[5] = {3, 1, 4, 1, 5};
  int r0;
  float t;
  CHECKF(ot_hungarian(row, 1, 5, &r0, &t) == OT_OK && r0 == 1 && t == 1.0f, "1x5 -> %d", r0);
  /* A known 3 x 3 answer. */
  float k3[9] = {4, 1, 3, 2, 0, 5, 3, 2, 2};
  int a3[3];
  CHECKF(ot_hungarian(k3, 3, 3, a3, &t) == OT_OK && t == 5.0f && a3[0] == 1 && a3[1] == 0 &&
            a3[2] == 2,
        "3x3 classic: total %g, %d %d %d", (double)t, a3[0], a3[1], a3[2]);
}

static void test_against_dp(void) {
  enum { R = 12, C = 32 };
  float c[R * C], ct[C * R];
  int rc[C];
  for (int trial = 0; trial < 20; trial++) {
    int kind = trial % 3 == 2 ? 1 : 0;
    fill(c, R * C, kind);
    for (int r = 0; r < R; r++)
      for (int j = 0; j < C; j++) ct[j * R + r] = c[r * C + j];
    double best = dp_min(c, R, C);
    float total;
    CHECKF(ot_hungarian(c, R, C, rc, &total) == OT_OK, "%s", ot_errmsg());
    double got = check_assignment(c, R, C, rc, total, "12x32");
    CHECKF(fabs(got - best) <= 1e-5, "12x32 trial %d: %.9g vs DP %.9g", trial, got, best);
    CHECKF(ot_hungarian(ct, C, R, rc, &total) == OT_OK, "%s", ot_errmsg());
    got = check_assignment(ct, C, R, rc, total, "32x12");
    CHECKF(fabs(got - best) <= 1e-5, "32x12 trial %d: %.9g vs DP %.9g", trial, got, best);
  }
  printf("hungarian: 12x32 and 32x12 match a subset DP on 20 matrices each\n");
}

static void test_errors(void) {
  float c[4] = {1, 2, NAN, 4};
  int rc[2] = {7, 7};
  float total = 5;
  CHECKF(ot_hungarian(c, 2, 2, rc, &total) == OT_EINVAL, "NaN accepted");
  CHECKF(strstr(ot_errmsg(), "cost[1][0]") != NULL, "message '%s'", ot_errmsg());
  c[2] = INFINITY;
  CHECKF(ot_hungarian(c, 2, 2, rc, &total) == OT_EINVAL, "inf accepted");
  CHECKF(ot_hungarian(c, -1, 2, rc, &total) == OT_EINVAL, "negative shape accepted");
  c[2] = 3;
  double work[4];
  CHECKF(ot_hungarian_ws(c, 2, 2, rc, &total, work, sizeof work) == OT_EINVAL,
        "too small workspace accepted (%zu needed)", ot_hungarian_work_bytes(2, 2));
  /* Empty shapes: nothing assigned, total 0. */
  int r3[3] = {5, 5, 5};
  CHECKF(ot_hungarian(c, 3, 0, r3, &total) == OT_OK && r3[0] == -1 && r3[2] == -1 && total == 0.0f,
        "3x0");
  CHECKF(ot_hungarian(c, 0, 3, NULL, NULL) == OT_OK, "0x3");
}

static void test_speed(void) {
  enum { R = 32, C = 20, N = 20000, SETS = 64 };
  float *c = malloc(sizeof(float) * R * C * SETS);
  fill(c, R * C * SETS, 0);
  size_t wb = ot_hungarian_work_bytes(R, C);
  double *work = malloc(wb);
  int rc[R], rc_ref[R];
  double check = 0.0;
  const int shapes[2][2] = {{R, C}, {C, R}};
  for (int s = 0; s < 2; s++) {
    int nr = shapes[s][0], nc = shapes[s][1];
    double t0 = ot_now();
    for (int it = 0; it < N; it++) {
      float total;
      int e = ot_hungarian_ws(c + (size_t)(it % SETS) * R * C, nr, nc, rc, &total, work, wb);
      if (e) { CHECKF(0, "%s", ot_errmsg()); break; }
      check += total;
    }
    double us = (ot_now() - t0) / N * 1e6;
    printf("hungarian: %dx%d: %.2f us/call (workspace variant, %zu bytes)\n", nr, nc, us, wb);
    CHECKF(us < 2000.0, "%dx%d takes %.1f us per call", nr, nc, us);
    /* The workspace variant agrees with the allocating one. */
    float t1, t2;
    ot_hungarian_ws(c, nr, nc, rc, &t1, work, wb);
    ot_hungarian(c, nr, nc, rc_ref, &t2);
    CHECKF(t1 == t2 && memcmp(rc, rc_ref, sizeof(int) * (size_t)nr) == 0, "ws variant differs");
  }
  CHECKF(isfinite(check), "sum of totals %g", check);
  free(work);
  free(c);
}

int main(void) {
  test_against_brute_force();
  test_named_shapes();
  test_against_dp();
  test_errors();
  test_speed();
  return ot_test_report();
}
