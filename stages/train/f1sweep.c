#include "f1sweep.h"

#include <math.h>

int ot_f1_bin(float logit) { return ot_f1_bin_prob(1.0 / (1.0 + exp(-(double)logit))); }

int ot_f1_bin_prob(double p) {
  int b = (int)(p * OT_F1_BINS);
  return b < 0 ? 0 : b >= OT_F1_BINS ? OT_F1_BINS - 1 : b;
}

void ot_f1_hist_add(ot_f1_hist *h, const float *logits, const float *targets, int n, int K) {
  for (long i = 0; i < (long)n * K; i++) {
    int b = ot_f1_bin(logits[i]);
    if (targets[i] > 0.5f) h->pos[b]++;
    else h->neg[b]++;
  }
}

static void score(int64_t tp, int64_t fp, int64_t fn, int k, ot_f1_result *out) {
  out->threshold = (double)k / OT_F1_BINS;
  out->tp = tp, out->fp = fp, out->fn = fn;
  out->precision = tp + fp ? (double)tp / (double)(tp + fp) : 0.0;
  out->recall = tp + fn ? (double)tp / (double)(tp + fn) : 0.0;
  out->f1 = tp ? 2.0 * (double)tp / (double)(2 * tp + fp + fn) : 0.0;
}

void ot_f1_at(const ot_f1_hist *h, int k, ot_f1_result *out) {
  int64_t tp = 0, fp = 0, fn = h->missed;
  for (int b = 0; b < OT_F1_BINS; b++) {
    if (b >= k) tp += h->pos[b], fp += h->neg[b];
    else fn += h->pos[b];
  }
  score(tp, fp, fn, k, out);
}

void ot_f1_best(const ot_f1_hist *h, ot_f1_result *out) {
  /* Walk thresholds from high to low: each step moves one bin to "predicted". */
  int64_t n_pos = h->missed;
  for (int b = 0; b < OT_F1_BINS; b++) n_pos += h->pos[b];
  if (n_pos == 0) {
    ot_f1_at(h, OT_F1_BINS / 2, out);
    return;
  }
  int64_t tp = 0, fp = 0;
  ot_f1_result cur;
  out->f1 = -1.0;
  for (int k = OT_F1_BINS - 1; k >= 0; k--) {
    tp += h->pos[k], fp += h->neg[k];
    score(tp, fp, n_pos - tp, k, &cur);
    if (cur.f1 >= out->f1) *out = cur; /* >=: ties go to the lower threshold */
  }
}
