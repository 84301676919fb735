/* Dense and element-wise kernels: linear, layernorm, GELU, softmax,
 * residual, dropout, L2 normalisation. See ot_kernels.h for the contracts. */
#include "ot_simd.h" /* first: vectorisation settings for this file */

#include "ot_kernels.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

#include "ot_common.h"
#include "ot_rng.h"

/* ---- linear --------------------------------------------------------------- */

/* inp [N,C], weight [OC,C], bias [OC] -> out [N,OC] */
void ot_linear_forward(float *out, const float *inp, const float *weight, const float *bias,
                       int N, int C, int OC) {
  float beta = 0.0f;
  if (bias) {
    for (size_t n = 0; n < (size_t)N; n++) memcpy(out + n * OC, bias, (size_t)OC * sizeof(float));
    beta = 1.0f;
  }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, OC, C, 1.0f, inp, C, weight, C, beta,
              out, OC);
}

/* dout [N,OC] -> dinp [N,C], dweight [OC,C], dbias [OC] (all +=) */
void ot_linear_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                        const float *inp, const float *weight, int N, int C, int OC) {
  if (dinp)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, C, OC, 1.0f, dout, OC, weight, C,
                1.0f, dinp, C);
  if (dweight)
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OC, C, N, 1.0f, dout, OC, inp, C, 1.0f,
                dweight, C);
  if (dbias)
    for (size_t n = 0; n < (size_t)N; n++) {
      const float *d = dout + n * OC;
      for (int o = 0; o < OC; o++) dbias[o] += d[o];
    }
}

/* dout [N,OC] -> dinp [N,C] (=), dweight [OC,C], dbias [OC] (+=) */
void ot_linear_backward_set(float *dinp, float *dweight, float *dbias, const float *dout,
                            const float *inp, const float *weight, int N, int C, int OC) {
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, C, OC, 1.0f, dout, OC, weight, C,
              0.0f, dinp, C);
  ot_linear_backward(NULL, dweight, dbias, dout, inp, weight, N, C, OC);
}

/* ---- layernorm ------------------------------------------------------------ */

/* inp [N,C], w [C], b [C] -> out [N,C], mean [N], rstd [N] */
void ot_layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                          const float *w, const float *b, int N, int C) {
  for (size_t n = 0; n < (size_t)N; n++) {
    const float *x = inp + n * C;
    float m = ot_sum8(x, C) / (float)C;
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int i = 0;
    for (; i + 8 <= C; i += 8)
      for (int j = 0; j < 8; j++) acc[j] += (x[i + j] - m) * (x[i + j] - m);
    float v = ot_sum8(acc, 8);
    for (; i < C; i++) v += (x[i] - m) * (x[i] - m);
    float s = 1.0f / sqrtf(v / (float)C + OT_LAYERNORM_EPS);
    float *o = out + n * C;
    for (i = 0; i < C; i++) o[i] = (x[i] - m) * s * w[i] + b[i];
    if (mean) mean[n] = m;
    if (rstd) rstd[n] = s;
  }
}

/* dout [N,C] -> dinp [N,C], dw [C], db [C] (all +=) */
void ot_layernorm_backward(float *dinp, float *dw, float *db, const float *dout,
                           const float *inp, const float *w, const float *mean,
                           const float *rstd, int N, int C) {
  for (size_t n = 0; n < (size_t)N; n++) {
    const float *x = inp + n * C, *d = dout + n * C;
    float m = mean[n], s = rstd[n];
    /* mean of dnorm and of dnorm * norm over the row */
    float a1[8] = {0, 0, 0, 0, 0, 0, 0, 0}, a2[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int i = 0;
    for (; i + 8 <= C; i += 8)
      for (int j = 0; j < 8; j++) {
        float dn = w[i + j] * d[i + j];
        a1[j] += dn;
        a2[j] += dn * (x[i + j] - m) * s;
      }
    float dnorm_mean = ot_sum8(a1, 8), dnorm_norm_mean = ot_sum8(a2, 8);
    for (; i < C; i++) {
      float dn = w[i] * d[i];
      dnorm_mean += dn;
      dnorm_norm_mean += dn * (x[i] - m) * s;
    }
    dnorm_mean /= (float)C;
    dnorm_norm_mean /= (float)C;
    if (dw)
      for (i = 0; i < C; i++) dw[i] += (x[i] - m) * s * d[i];
    if (db)
      for (i = 0; i < C; i++) db[i] += d[i];
    if (dinp) {
      float *di = dinp + n * C;
      for (i = 0; i < C; i++) {
        float norm = (x[i] - m) * s;
        di[i] += (w[i] * d[i] - dnorm_mean - norm * dnorm_norm_mean) * s;
      }
    }
  }
}

/* ---- GELU (tanh approximation) -------------------------------------------- */

#define GELU_K 0.7978845608028654f /* sqrt(2/pi) */
#define GELU_A 0.044715f

/* gelu'(x), given t = tanh(GELU_K (x + GELU_A x^3)) */
static inline float gelu_grad(float x, float t) {
  float dt = (1.0f - t * t) * GELU_K * (1.0f + 3.0f * GELU_A * x * x);
  return 0.5f * (1.0f + t) + 0.5f * x * dt;
}

static inline float gelu_tanh(float x) {
  return ot_fast_tanhf(GELU_K * (x + GELU_A * x * x * x));
}

/* inp [n] -> out [n] */
void ot_gelu_forward(float *out, const float *inp, size_t n) {
  for (size_t i = 0; i < n; i++) {
    float x = inp[i];
    out[i] = 0.5f * x * (1.0f + gelu_tanh(x));
  }
}

/* inp [n] -> out [n], grad [n] = gelu'(inp) */
void ot_gelu_forward_grad(float *out, float *grad, const float *inp, size_t n) {
  for (size_t i = 0; i < n; i++) {
    float x = inp[i], t = gelu_tanh(x);
    out[i] = 0.5f * x * (1.0f + t);
    grad[i] = gelu_grad(x, t);
  }
}

/* dout [n] -> dinp [n] (+=) */
void ot_gelu_backward(float *dinp, const float *inp, const float *dout, size_t n) {
  for (size_t i = 0; i < n; i++) {
    float x = inp[i];
    dinp[i] += gelu_grad(x, gelu_tanh(x)) * dout[i];
  }
}

/* ---- softmax ------------------------------------------------------------------ */

/* inp [N,C] -> out [N,C], rows sum to 1 */
void ot_softmax_forward(float *out, const float *inp, int N, int C) {
  for (size_t n = 0; n < (size_t)N; n++) {
    const float *x = inp + n * C;
    float *o = out + n * C;
    float mx = ot_max8(x, C);
    for (int i = 0; i < C; i++) o[i] = ot_fast_expf(x[i] - mx);
    float inv = 1.0f / ot_sum8(o, C);
    for (int i = 0; i < C; i++) o[i] *= inv;
  }
}

/* dout [N,C], out [N,C] -> dinp [N,C] (+=) */
void ot_softmax_backward(float *dinp, const float *dout, const float *out, int N, int C) {
  for (size_t n = 0; n < (size_t)N; n++) {
    const float *d = dout + n * C, *y = out + n * C;
    float *di = dinp + n * C;
    float dot = ot_dot8(d, y, C);
    for (int i = 0; i < C; i++) di[i] += y[i] * (d[i] - dot);
  }
}

/* ---- residual ------------------------------------------------------------- */

void ot_residual_forward(float *out, const float *a, const float *b, size_t n) {
  for (size_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

void ot_residual_backward(float *da, float *db, const float *dout, size_t n) {
  if (da) ot_add_inplace(da, dout, n);
  if (db) ot_add_inplace(db, dout, n);
}

void ot_add_inplace(float *y, const float *x, size_t n) {
  for (size_t i = 0; i < n; i++) y[i] += x[i];
}

void ot_mul_inplace(float *y, const float *x, size_t n) {
  for (size_t i = 0; i < n; i++) y[i] *= x[i];
}

/* ---- dropout -------------------------------------------------------------- */

/* 32-bit integer hash (lowbias32, C. Wellons): vectorises with AVX2. */
static inline uint32_t lowbias32(uint32_t x) {
  x ^= x >> 16;
  x *= 0x7feb352dU;
  x ^= x >> 15;
  x *= 0x846ca68bU;
  x ^= x >> 16;
  return x;
}

typedef struct {
  uint32_t k0, k1, threshold;
  float scale;
} dropout_key;

static dropout_key dropout_setup(float p, uint64_t seed) {
  OT_ASSERT(p >= 0.0f && p < 1.0f);
  uint64_t k = ot_rng_mix(seed, 0x64726f70ull);
  dropout_key key = {(uint32_t)k, (uint32_t)(k >> 32), (uint32_t)((double)p * 4294967296.0),
                     1.0f / (1.0f - p)};
  return key;
}

/* inp [rows,row_len] -> out [rows,row_len] */
void ot_dropout_forward(float *out, const float *inp, size_t rows, size_t row_len, float p,
                        uint64_t seed, uint64_t row0) {
  if (p == 0.0f) {
    if (out != inp) memmove(out, inp, rows * row_len * sizeof(float));
    return;
  }
  OT_ASSERT(row_len < ((size_t)1 << 32));
  for (size_t r = 0; r < rows; r++) {
    dropout_key k = dropout_setup(p, ot_rng_mix(seed, row0 + r));
    const float *x = inp + r * row_len;
    float *y = out + r * row_len;
    for (size_t i = 0; i < row_len; i++) {
      uint32_t h = lowbias32(lowbias32((uint32_t)i ^ k.k0) + k.k1);
      y[i] = h >= k.threshold ? x[i] * k.scale : 0.0f;
    }
  }
}

/* dout [rows,row_len] -> dinp (+=) */
void ot_dropout_backward(float *dinp, const float *dout, size_t rows, size_t row_len, float p,
                         uint64_t seed, uint64_t row0) {
  if (p == 0.0f) {
    ot_add_inplace(dinp, dout, rows * row_len);
    return;
  }
  OT_ASSERT(row_len < ((size_t)1 << 32));
  for (size_t r = 0; r < rows; r++) {
    dropout_key k = dropout_setup(p, ot_rng_mix(seed, row0 + r));
    const float *g = dout + r * row_len;
    float *d = dinp + r * row_len;
    for (size_t i = 0; i < row_len; i++) {
      uint32_t h = lowbias32(lowbias32((uint32_t)i ^ k.k0) + k.k1);
      d[i] += h >= k.threshold ? g[i] * k.scale : 0.0f;
    }
  }
}

/* ---- L2 normalisation ----------------------------------------------------- */

#define L2NORM_EPS 1e-12f

/* inp [N,D] -> out [N,D] */
void ot_l2norm_forward(float *out, const float *inp, int N, int D) {
  for (size_t n = 0; n < (size_t)N; n++) {
    const float *x = inp + n * D;
    float r = 1.0f / sqrtf(ot_dot8(x, x, D) + L2NORM_EPS);
    for (int i = 0; i < D; i++) out[n * D + i] = x[i] * r;
  }
}

/* dout [N,D] -> dinp [N,D] (+=) */
void ot_l2norm_backward(float *dinp, const float *dout, const float *inp, int N, int D) {
  for (size_t n = 0; n < (size_t)N; n++) {
    const float *x = inp + n * D, *d = dout + n * D;
    float r = 1.0f / sqrtf(ot_dot8(x, x, D) + L2NORM_EPS);
    float dy = ot_dot8(d, x, D) * r; /* <dout, y> */
    for (int i = 0; i < D; i++) dinp[n * D + i] += r * (d[i] - x[i] * r * dy);
  }
}
