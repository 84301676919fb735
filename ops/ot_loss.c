#include "ot_simd.h" /* first: vectorisation settings for this file */

#include "ot_loss.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

#include "ot_common.h"

/* log sum_j exp(x_j) of a row, and its max (for reuse by the caller). */
static float row_logsumexp(const float *x, int n, float *max_out) {
  float mx = ot_max8(x, n);
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; j++) acc[j] += ot_fast_expf(x[i + j] - mx);
  float s = ot_sum8(acc, 8);
  for (; i < n; i++) s += ot_fast_expf(x[i] - mx);
  if (max_out) *max_out = mx;
  return mx + logf(s);
}

/* ---- softmax cross-entropy ------------------------------------------------- */

/* logits [N,V], targets [N] -> mean loss */
double ot_ce_forward(const float *logits, const int32_t *targets, int N, int V, int ignore_index) {
  double sum = 0.0;
  int valid = 0;
  for (size_t n = 0; n < (size_t)N; n++) {
    int t = targets[n];
    if (t == ignore_index) continue;
    OT_ASSERT(t >= 0 && t < V);
    const float *x = logits + n * V;
    sum += (double)row_logsumexp(x, V, NULL) - (double)x[t];
    valid++;
  }
  return valid ? sum / valid : 0.0;
}

/* -> dlogits [N,V] (+=) */
void ot_ce_backward(float *dlogits, float dloss, const float *logits, const int32_t *targets,
                    int N, int V, int ignore_index) {
  int valid = 0;
  for (int n = 0; n < N; n++) valid += targets[n] != ignore_index;
  if (!valid) return;
  const float w = dloss / (float)valid;
  for (size_t n = 0; n < (size_t)N; n++) {
    int t = targets[n];
    if (t == ignore_index) continue;
    OT_ASSERT(t >= 0 && t < V);
    const float *x = logits + n * V;
    float *d = dlogits + n * V;
    float lse = row_logsumexp(x, V, NULL);
    for (int j = 0; j < V; j++) d[j] += w * ot_fast_expf(x[j] - lse);
    d[t] -= w;
  }
}

/* ---- binary cross-entropy with logits -------------------------------------- */

/* log(1 + e^x) without overflow */
static inline float softplus(float x) { return fmaxf(x, 0.0f) + log1pf(expf(-fabsf(x))); }


/* logits [N,K], targets [N,K] -> loss summed over K, mean over N */
double ot_bce_forward(const float *logits, const float *targets, int N, int K) {
  double sum = 0.0;
  const size_t n = (size_t)N * K;
  for (size_t i = 0; i < n; i++) {
    float x = logits[i], y = targets[i];
    sum += (double)(fmaxf(x, 0.0f) - x * y + log1pf(expf(-fabsf(x))));
  }
  return N ? sum / N : 0.0;
}

/* -> dlogits [N,K] (+=) */
void ot_bce_backward(float *dlogits, float dloss, const float *logits, const float *targets,
                     int N, int K) {
  if (!N) return;
  const float w = dloss / (float)N;
  const size_t n = (size_t)N * K;
  for (size_t i = 0; i < n; i++) dlogits[i] += w * (ot_sigmoid(logits[i]) - targets[i]);
}

/* ---- asymmetric loss (ASL) -------------------------------------------------- */

/* (base)^g with 0^0 = 1 and a fast path for the common g = 0 */
static inline float powg(float base, float g) { return g == 0.0f ? 1.0f : powf(base, g); }

/* logits [N,K], targets [N,K] -> loss summed over K, mean over N */
double ot_asl_forward(const float *logits, const float *targets, int N, int K,
                      const ot_asl_config *cfg) {
  const float gp = cfg->gamma_pos, gn = cfg->gamma_neg, m = cfg->margin;
  double sum = 0.0;
  const size_t n = (size_t)N * K;
  for (size_t i = 0; i < n; i++) {
    float x = logits[i], y = targets[i];
    float p = ot_sigmoid(x), q = ot_sigmoid(-x); /* q = 1 - p without cancellation */
    float log_p = -softplus(-x);
    float pm = p > m ? p - m : 0.0f;
    /* log(1 - p_m): 1 - p_m = q + m above the margin, 1 below it */
    float log_1mpm = m > 0.0f ? (p > m ? logf(q + m) : 0.0f) : -softplus(x);
    float lpos = powg(q, gp) * log_p;
    float lneg = powg(pm, gn) * log_1mpm;
    sum += (double)(-y * lpos - (1.0f - y) * lneg);
  }
  return N ? sum / N : 0.0;
}

/* -> dlogits [N,K] (+=) */
void ot_asl_backward(float *dlogits, float dloss, const float *logits, const float *targets,
                     int N, int K, const ot_asl_config *cfg) {
  if (!N) return;
  const float gp = cfg->gamma_pos, gn = cfg->gamma_neg, m = cfg->margin;
  const float w = dloss / (float)N;
  const size_t n = (size_t)N * K;
  for (size_t i = 0; i < n; i++) {
    float x = logits[i], y = targets[i];
    float p = ot_sigmoid(x), q = ot_sigmoid(-x);
    float log_p = -softplus(-x);
    float gpos = powg(q, gp) * (gp * p * log_p - q);
    float gneg = 0.0f;
    if (p > m) {
      float pm = p - m;
      /* p(1-p) p_m^g / (1-p_m); with m = 0, 1 - p_m = q and the q cancels */
      float first = m > 0.0f ? p * q / (q + m) : p;
      gneg = first * powg(pm, gn);
      if (gn != 0.0f) {
        float log_1mpm = m > 0.0f ? logf(q + m) : -softplus(x);
        gneg -= p * q * gn * powf(pm, gn - 1.0f) * log_1mpm;
      }
    }
    dlogits[i] += w * (y * gpos + (1.0f - y) * gneg);
  }
}

/* ---- InfoNCE ------------------------------------------------------------------ */

/* logsumexp over rows r of column j of S [N,M] */
static float column_logsumexp(const float *S, int N, int M, int j) {
  float mx = -INFINITY;
  for (int r = 0; r < N; r++) mx = fmaxf(mx, S[(size_t)r * M + j]);
  float s = 0.0f;
  for (int r = 0; r < N; r++) s += ot_fast_expf(S[(size_t)r * M + j] - mx);
  return mx + logf(s);
}

static int count_positives(const int32_t *pos, int N, int M) {
  int valid = 0;
  for (int i = 0; i < N; i++) {
    OT_ASSERT(pos[i] < M);
    valid += pos[i] >= 0;
  }
  return valid;
}

/* a [N,D], b [M,D], pos [N] -> mean loss; scratch [2*N*M] */
double ot_infonce_forward(float *scratch, const float *a, const float *b, const int32_t *pos,
                          int N, int M, int D, float tau, int symmetric) {
  int valid = count_positives(pos, N, M);
  if (!valid) return 0.0;
  float *S = scratch;
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, M, D, 1.0f / tau, a, D, b, D, 0.0f, S,
              M);
  double rows = 0.0, cols = 0.0;
  for (int i = 0; i < N; i++) {
    if (pos[i] < 0) continue;
    const float *s = S + (size_t)i * M;
    rows += (double)row_logsumexp(s, M, NULL) - (double)s[pos[i]];
    if (symmetric) cols += (double)column_logsumexp(S, N, M, pos[i]) - (double)s[pos[i]];
  }
  double loss = rows / valid;
  if (symmetric) loss = 0.5 * (loss + cols / valid);
  return loss;
}

/* -> da [N,D], db [M,D] (+=); scratch [2*N*M] */
void ot_infonce_backward(float *da, float *db, float *scratch, float dloss, const float *a,
                         const float *b, const int32_t *pos, int N, int M, int D, float tau,
                         int symmetric) {
  int valid = count_positives(pos, N, M);
  if (!valid) return;
  float *S = scratch, *G = scratch + (size_t)N * M;
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, M, D, 1.0f / tau, a, D, b, D, 0.0f, S,
              M);
  memset(G, 0, (size_t)N * M * sizeof(float));
  const float w = dloss * (symmetric ? 0.5f : 1.0f) / (float)valid;
  for (int i = 0; i < N; i++) {
    if (pos[i] < 0) continue;
    const float *s = S + (size_t)i * M;
    float *g = G + (size_t)i * M;
    float lse = row_logsumexp(s, M, NULL);
    for (int j = 0; j < M; j++) g[j] += w * ot_fast_expf(s[j] - lse);
    g[pos[i]] -= w;
    if (symmetric) {
      int j = pos[i];
      float clse = column_logsumexp(S, N, M, j);
      for (int r = 0; r < N; r++) G[(size_t)r * M + j] += w * ot_fast_expf(S[(size_t)r * M + j] - clse);
      G[(size_t)i * M + j] -= w;
    }
  }
  /* logits = a b^T / tau: da += G b / tau, db += G^T a / tau */
  if (da)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, D, M, 1.0f / tau, G, M, b, D, 1.0f,
                da, D);
  if (db)
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, M, D, N, 1.0f / tau, G, M, a, D, 1.0f,
                db, D);
}
