/* ops/ot_fusion: each normalisation, vote shares, weights, consensus and
 * tie-breaking on examples worked out by hand (numbers in the comments). */
#include "ot_common.h"
#include "ot_fusion.h"
#include "ot_test.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static int near(double a, double b) { return fabs(a - b) < 1e-5; }

static void test_normalisations(void) {
  float w[4];
  const float s3[3] = {0.9f, 0.5f, 0.1f};
  ot_fusion_normalize(w, s3, 3, OT_FUSION_MINMAX, 1.0f); /* (s-0.1)/0.8 */
  CHECK(near(w[0], 1.0) && near(w[1], 0.5) && near(w[2], 0.0));

  const float z[3] = {3.0f, 2.0f, 1.0f}; /* mean 2, std sqrt(2/3) = 0.816497 */
  ot_fusion_normalize(w, z, 3, OT_FUSION_ZSCORE, 1.0f);
  CHECKF(near(w[0], 1.224745) && near(w[1], 0.0) && near(w[2], 0.0), "%g %g %g", w[0], w[1], w[2]);

  const float sm[2] = {1.0f, 0.0f}; /* exp(0), exp(-1/T) */
  ot_fusion_normalize(w, sm, 2, OT_FUSION_SOFTMAX, 1.0f);
  CHECK(near(w[0], 1.0) && near(w[1], exp(-1.0)));
  ot_fusion_normalize(w, sm, 2, OT_FUSION_SOFTMAX, 0.5f);
  CHECK(near(w[1], exp(-2.0)));

  const float r4[4] = {0.3f, 0.3f, 0.2f, -1.0f}; /* (n - r)/n whatever the sims */
  ot_fusion_normalize(w, r4, 4, OT_FUSION_RANK, 1.0f);
  CHECK(near(w[0], 1.0) && near(w[1], 0.75) && near(w[2], 0.5) && near(w[3], 0.25));

  const float flat[3] = {0.4f, 0.4f, 0.4f}; /* no spread: every neighbour counts fully */
  ot_fusion_normalize(w, flat, 3, OT_FUSION_MINMAX, 1.0f);
  CHECK(near(w[0], 1.0) && near(w[2], 1.0));
  ot_fusion_normalize(w, flat, 3, OT_FUSION_ZSCORE, 1.0f);
  CHECK(near(w[0], 1.0) && near(w[2], 1.0));
}

/* Source 0 (rank, n=3): weights 1, 2/3, 1/3, total 2 -> shares 1/2, 1/3, 1/6;
 *   neighbours {a,b} {a} {c}: t0(a) = 5/6, t0(b) = 1/2, t0(c) = 1/6.
 * Source 1 (minmax, sims .8 .4 0): weights 1, .5, 0, total 1.5 -> 2/3, 1/3, 0;
 *   neighbours {b,b} {d} {a}: t1(b) = 2/3 (repeat counted once), t1(d) = 1/3,
 *   t1(a) = 0 (weight 0: not proposed by source 1). */
static ot_fusion *two_sources(void) {
  ot_fusion *f;
  CHECK(ot_fusion_open(&f, 2) == OT_OK);
  const char *n0[] = {"a", "b"}, *n1[] = {"a"}, *n2[] = {"c"};
  const char *const *t0[] = {n0, n1, n2};
  const int c0[] = {2, 1, 1};
  const float s0[] = {0.9f, 0.8f, 0.7f};
  const char *m0[] = {"b", "b"}, *m1[] = {"d"}, *m2[] = {"a"};
  const char *const *t1[] = {m0, m1, m2};
  const int c1[] = {2, 1, 1};
  const float s1[] = {0.8f, 0.4f, 0.0f};
  ot_fusion_add_source(f, 0, s0, 3, t0, c0, OT_FUSION_RANK, 1.0f);
  ot_fusion_add_source(f, 1, s1, 3, t1, c1, OT_FUSION_MINMAX, 1.0f);
  return f;
}

static void test_fusion_consensus(void) {
  ot_fusion *f = two_sources();
  ot_fusion_cand c[8];
  /* weights 1,1, consensus .1: a = 5/12 = .416667; b = (1/2 + 2/3)/2 + .1 =
   * .683333; c = 1/12; d = 1/6 -> b, a, d, c */
  const float w11[] = {1.0f, 1.0f};
  int n = ot_fusion_top(f, w11, 0.1f, 8, c);
  CHECK(n == 4);
  CHECK(!strcmp(c[0].tag, "b") && near(c[0].score, 0.683333) && c[0].n_sources_proposing == 2);
  CHECK(!strcmp(c[1].tag, "a") && near(c[1].score, 0.416667) && c[1].n_sources_proposing == 1);
  CHECK(!strcmp(c[2].tag, "d") && near(c[2].score, 1.0 / 6));
  CHECK(!strcmp(c[3].tag, "c") && near(c[3].score, 1.0 / 12));
  CHECK(near(c[0].source_scores[0], 0.5) && near(c[0].source_scores[1], 2.0 / 3));
  CHECK(near(c[1].source_scores[0], 5.0 / 6) && c[1].source_scores[1] == 0.0f);
  /* weights 1,3: a = (5/6)/4 = .208333, b = (1/2 + 2)/4 + .1 = .725,
   * c = 1/24, d = 1/4 -> b, d, a, c; top 2 only */
  const float w13[] = {1.0f, 3.0f};
  n = ot_fusion_top(f, w13, 0.1f, 2, c);
  CHECK(n == 2 && !strcmp(c[0].tag, "b") && near(c[0].score, 0.725) && !strcmp(c[1].tag, "d") &&
        near(c[1].score, 0.25));
  /* a large consensus lifts the only tag both sources proposed further */
  n = ot_fusion_top(f, w11, 2.0f, 8, c);
  CHECK(!strcmp(c[0].tag, "b") && near(c[0].score, 0.583333 + 2.0));
  ot_fusion_reset(f);
  CHECK(ot_fusion_top(f, w11, 0.1f, 8, c) == 0);
  ot_fusion_close(f);
}

static void test_ties_and_growth(void) {
  ot_fusion *f;
  CHECK(ot_fusion_open(&f, 1) == OT_OK);
  /* one neighbour: every tag gets share 1 -> order by text */
  const char *tags[] = {"zeta", "alpha", "mid"};
  const char *const *t[] = {tags};
  const int cnt[] = {3};
  const float s[] = {0.5f};
  ot_fusion_add_source(f, 0, s, 1, t, cnt, OT_FUSION_SOFTMAX, 0.05f);
  ot_fusion_cand c[3];
  const float w[] = {1.0f};
  CHECK(ot_fusion_top(f, w, 0.1f, 2, c) == 2);
  CHECK(!strcmp(c[0].tag, "alpha") && !strcmp(c[1].tag, "mid") && near(c[0].score, 1.0));
  /* many tags (the table grows and rehashes): scores and order still exact */
  ot_fusion_reset(f);
  enum { N = 3000 };
  char **names = malloc(N * sizeof *names);
  const char **row = malloc(N * sizeof *row);
  for (int i = 0; i < N; i++) {
    names[i] = malloc(16);
    snprintf(names[i], 16, "t%05d", N - 1 - i);
    row[i] = names[i];
  }
  const char *const *t2[] = {row, row + N / 2}; /* second neighbour: the second half again */
  const int cnt2[] = {N, N - N / 2};
  const float s2[] = {0.6f, 0.6f}; /* softmax of equal sims: shares 1/2, 1/2 */
  ot_fusion_add_source(f, 0, s2, 2, t2, cnt2, OT_FUSION_SOFTMAX, 0.05f);
  ot_fusion_cand top[4];
  CHECK(ot_fusion_top(f, w, 0.0f, 4, top) == 4);
  /* the second half (t00000..t01499) has 1, the first half 1/2 */
  CHECK(!strcmp(top[0].tag, "t00000") && !strcmp(top[3].tag, "t00003") && near(top[0].score, 1.0));
  ot_fusion_cand *all = malloc(N * sizeof *all);
  CHECK(ot_fusion_top(f, w, 0.0f, N, all) == N);
  CHECK(!strcmp(all[N / 2].tag, "t01500") && near(all[N / 2].score, 0.5));
  free(all);
  for (int i = 0; i < N; i++) free(names[i]);
  free(names);
  free(row);
  ot_fusion_close(f);
}

int main(void) {
  test_normalisations();
  test_fusion_consensus();
  test_ties_and_growth();
  return ot_test_report();
}
