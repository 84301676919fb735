#include "ot_simd.h" /* first: vectorisation settings for this file */

#include "ot_attention.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

#include "ot_common.h"

/* One past the last valid key of batch item b: keys beyond it are masked
 * anyway, so the products stop there. */
static int keys_end(const uint8_t *key_mask, int b, int Tk) {
  if (!key_mask) return Tk;
  const uint8_t *m = key_mask + (size_t)b * Tk;
  int end = Tk;
  while (end > 0 && !m[end - 1]) end--;
  return end;
}

/* Scores s [n] -> weights in place over the visible keys (km: mask of the
 * first n keys, or NULL); 0 where masked; an all-masked row becomes 0. */
static void masked_softmax_row(float *s, int n, const uint8_t *km) {
  float mx = -INFINITY;
  if (km) {
    for (int j = 0; j < n; j++) mx = (km[j] && s[j] > mx) ? s[j] : mx;
  } else {
    for (int j = 0; j < n; j++) mx = s[j] > mx ? s[j] : mx;
  }
  if (mx == -INFINITY) { /* no visible key */
    memset(s, 0, (size_t)n * sizeof(float));
    return;
  }
  if (km) {
    for (int j = 0; j < n; j++) {
      float e = ot_fast_expf(s[j] - mx);
      s[j] = km[j] ? e : 0.0f;
    }
  } else {
    for (int j = 0; j < n; j++) s[j] = ot_fast_expf(s[j] - mx);
  }
  float inv = 1.0f / ot_sum8(s, n);
  for (int j = 0; j < n; j++) s[j] *= inv;
}

/* q [B,Tq,ldq], k [B,Tk,ldk], v [B,Tk,ldv] -> out [B,Tq,C], att [B,NH,Tq,Tk] */
void ot_attention_forward(float *out, float *att, const float *q, int ldq, const float *k,
                          int ldk, const float *v, int ldv, const uint8_t *key_mask, int causal,
                          int B, int Tq, int Tk, int C, int NH) {
  OT_ASSERT(NH >= 1 && C % NH == 0);
  OT_ASSERT(!causal || Tq == Tk);
  const int hs = C / NH;
  const float scale = 1.0f / sqrtf((float)hs);
  for (int b = 0; b < B; b++) {
    const int kend = keys_end(key_mask, b, Tk);
    const uint8_t *km = key_mask ? key_mask + (size_t)b * Tk : NULL;
    for (int h = 0; h < NH; h++) {
      float *P = att + ((size_t)b * NH + h) * Tq * Tk;
      float *O = out + (size_t)b * Tq * C + (size_t)h * hs;
      const float *Q = q + (size_t)b * Tq * ldq + (size_t)h * hs;
      const float *K = k + (size_t)b * Tk * ldk + (size_t)h * hs;
      const float *V = v + (size_t)b * Tk * ldv + (size_t)h * hs;
      if (kend == 0) {
        memset(P, 0, (size_t)Tq * Tk * sizeof(float));
        for (int i = 0; i < Tq; i++) memset(O + (size_t)i * C, 0, (size_t)hs * sizeof(float));
        continue;
      }
      /* S = scale * Q K^T over the first kend keys */
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Tq, kend, hs, scale, Q, ldq, K, ldk,
                  0.0f, P, Tk);
      for (int i = 0; i < Tq; i++) {
        float *row = P + (size_t)i * Tk;
        int n = causal && i + 1 < kend ? i + 1 : kend;
        masked_softmax_row(row, n, km);
        if (n < Tk) memset(row + n, 0, (size_t)(Tk - n) * sizeof(float));
      }
      /* O = P V */
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Tq, hs, kend, 1.0f, P, Tk, V, ldv,
                  0.0f, O, C);
    }
  }
}

/* dout [B,Tq,C] -> dq [B,Tq,ldq], dk [B,Tk,ldk], dv [B,Tk,ldv] (+=) */
void ot_attention_backward(float *dq, float *dk, float *dv, float *scratch, const float *dout,
                           const float *att, const float *q, int ldq, const float *k, int ldk,
                           const float *v, int ldv, const uint8_t *key_mask, int causal, int B,
                           int Tq, int Tk, int C, int NH) {
  OT_ASSERT(NH >= 1 && C % NH == 0);
  OT_ASSERT(!causal || Tq == Tk);
  const int hs = C / NH;
  const float scale = 1.0f / sqrtf((float)hs);
  float *dS = scratch; /* [Tq, Tk] */
  for (int b = 0; b < B; b++) {
    const int kend = keys_end(key_mask, b, Tk);
    if (kend == 0) continue; /* zero weights: no gradient flows */
    for (int h = 0; h < NH; h++) {
      const float *P = att + ((size_t)b * NH + h) * Tq * Tk;
      const float *dO = dout + (size_t)b * Tq * C + (size_t)h * hs;
      const size_t qoff = (size_t)b * Tq * ldq + (size_t)h * hs;
      const size_t koff = (size_t)b * Tk * ldk + (size_t)h * hs;
      const size_t voff = (size_t)b * Tk * ldv + (size_t)h * hs;
      /* dP = dO V^T */
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Tq, kend, hs, 1.0f, dO, C, v + voff,
                  ldv, 0.0f, dS, Tk);
      /* dV += P^T dO */
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, kend, hs, Tq, 1.0f, P, Tk, dO, C, 1.0f,
                  dv + voff, ldv);
      /* dS = P * (dP - rowsum(P * dP)); zero wherever P is (masked keys) */
      for (int i = 0; i < Tq; i++) {
        float *d = dS + (size_t)i * Tk;
        const float *p = P + (size_t)i * Tk;
        float dot = ot_dot8(p, d, kend);
        for (int j = 0; j < kend; j++) d[j] = p[j] * (d[j] - dot);
      }
      /* dQ += scale dS K ; dK += scale dS^T Q */
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Tq, hs, kend, scale, dS, Tk, k + koff,
                  ldk, 1.0f, dq + qoff, ldq);
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, kend, hs, Tq, scale, dS, Tk, q + qoff,
                  ldq, 1.0f, dk + koff, ldk);
    }
  }
}
