/* Closed-set micro precision/recall/F1 with the decision threshold chosen on
 * validation data: the sigmoid scores of positive and negative (item, tag)
 * pairs are counted in OT_F1_BINS bins of [0,1]; the counts of several
 * ranks add up (MPI_SUM over the struct as int64), and the sweep evaluates
 * every threshold k/OT_F1_BINS exactly on the binned scores. The result
 * does not depend on how items were split across ranks. */
#ifndef OT_F1SWEEP_H
#define OT_F1SWEEP_H

#include <stdint.h>

#define OT_F1_BINS 1000

typedef struct {
  int64_t pos[OT_F1_BINS]; /* positive pairs whose score falls in bin b */
  int64_t neg[OT_F1_BINS];
  int64_t missed; /* positives with no score at all (never predicted:
                   * ground-truth tags a generative model did not emit) */
} ot_f1_hist;
#define OT_F1_HIST_WORDS (2 * OT_F1_BINS + 1) /* int64 words, for MPI sums */

typedef struct {
  double threshold;              /* predict a tag when sigmoid(logit) >= threshold */
  double precision, recall, f1;  /* micro-averaged over all (item, tag) pairs */
  int64_t tp, fp, fn;
} ot_f1_result;

/* Bin of a score: floor(p * OT_F1_BINS), p = sigmoid(logit), clamped. */
int ot_f1_bin(float logit);
/* Bin of a probability p in [0,1], clamped. */
int ot_f1_bin_prob(double p);
/* Count n items' logits [n,K] against targets [n,K] in {0,1}. */
void ot_f1_hist_add(ot_f1_hist *h, const float *logits, const float *targets, int n, int K);
/* Scores at threshold k / OT_F1_BINS (0 <= k < OT_F1_BINS). */
void ot_f1_at(const ot_f1_hist *h, int k, ot_f1_result *out);
/* The threshold of highest F1 (ties: the lowest threshold). With no
 * positive pair at all, F1 is 0 everywhere and the threshold is 0.5. */
void ot_f1_best(const ot_f1_hist *h, ot_f1_result *out);

#endif
