/* Losses: forward returns the mean loss (double: the sum is accumulated in
 * double, and rounding it to float would cost the precision of a scalar
 * that is logged and compared), backward ADDS dloss * dL/dlogits
 * (dloss: the loss's weight / upstream gradient, usually 1). Both take the
 * same inputs; the backward recomputes what it needs (no saved state), so
 * a loss is two calls with identical arguments. Loss sums accumulate in
 * double. */
#ifndef OT_LOSS_H
#define OT_LOSS_H

#include <math.h>
#include <stdint.h>

/* 1 / (1 + e^-x) without overflow for either sign of x */
static inline float ot_sigmoid(float x) {
  if (x >= 0.0f) return 1.0f / (1.0f + expf(-x));
  const float e = expf(x);
  return e / (1.0f + e);
}

/* Softmax cross-entropy with an ignore index.
 * logits [N,V], targets [N] in [0,V) or == ignore_index.
 * L = (1/n_valid) sum_{i valid} -log softmax(logits_i)[t_i]; 0 if none valid. */
double ot_ce_forward(const float *logits, const int32_t *targets, int N, int V, int ignore_index);
/* dlogits [N,V] += dloss/n_valid * (softmax(logits_i) - onehot(t_i)); ignored rows get 0. */
void ot_ce_backward(float *dlogits, float dloss, const float *logits, const int32_t *targets,
                    int N, int V, int ignore_index);

/* Binary cross-entropy with logits (multi-label).
 * logits [N,K], targets [N,K] in [0,1]. Summed over the K labels, averaged
 * over the N samples:
 * L = (1/N) sum_{n,k} [ max(x,0) - x y + log(1 + e^{-|x|}) ]. */
double ot_bce_forward(const float *logits, const float *targets, int N, int K);
/* dlogits [N,K] += dloss/N * (sigmoid(x) - y). */
void ot_bce_backward(float *dlogits, float dloss, const float *logits, const float *targets,
                     int N, int K);

/* Asymmetric loss (Ridnik et al., "Asymmetric Loss For Multi-Label
 * Classification", ICCV 2021, eqs. 1-4 and 8 with the paper's gradients):
 *   p = sigmoid(x),  p_m = max(p - m, 0)            (probability margin m)
 *   L+ = (1 - p)^{gamma_pos} log(p)
 *   L- = (p_m)^{gamma_neg} log(1 - p_m)
 *   L  = -y L+ - (1 - y) L-
 * summed over labels and averaged over samples as for BCE. The focusing
 * weights are differentiated like everything else (the paper's formula;
 * the reference code's optional detach of them is not used).
 * Paper defaults: gamma_pos 0, gamma_neg 4, margin 0.05. gamma_pos =
 * gamma_neg = margin = 0 gives exactly ot_bce_*. */
typedef struct {
  float gamma_pos, gamma_neg, margin;
} ot_asl_config;
double ot_asl_forward(const float *logits, const float *targets, int N, int K,
                      const ot_asl_config *cfg);
/* dlogits [N,K] += dloss/N * dL/dx with
 *   dL+/dx term: y (1-p)^{g+} (g+ p log p - (1 - p))
 *   dL-/dx term: (1-y) p(1-p) [ p_m^{g-}/(1-p_m) - g- p_m^{g- - 1} log(1-p_m) ]  if p > m, else 0. */
void ot_asl_backward(float *dlogits, float dloss, const float *logits, const float *targets,
                     int N, int K, const ot_asl_config *cfg);

/* InfoNCE over a similarity matrix.
 * a [N,D], b [M,D]; logits[i,j] = <a_i, b_j> / tau; pos [N]: the positive
 * column of row i (< 0: row i has no positive and is skipped).
 *   row term:    l_i = -log softmax_j(logits[i,:])[pos_i]
 *   column term: c_i = -log softmax_r(logits[:,pos_i])[i]   (symmetric only)
 * L = mean_i l_i, or 0.5 (mean_i l_i + mean_i c_i) when symmetric, over the
 * rows with a positive (CLIP's loss when N == M and pos_i = i). Inputs are
 * used as given: L2-normalise them first (ot_l2norm_forward) for cosine
 * similarity. scratch: 2*N*M floats (the same buffer in both calls). */
double ot_infonce_forward(float *scratch, const float *a, const float *b, const int32_t *pos,
                          int N, int M, int D, float tau, int symmetric);
/* da [N,D] += dloss * dL/da; db [M,D] += dloss * dL/db (either may be NULL). */
void ot_infonce_backward(float *da, float *db, float *scratch, float dloss, const float *a,
                         const float *b, const int32_t *pos, int N, int M, int D, float tau,
                         int symmetric);

#endif
