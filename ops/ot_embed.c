/* Input embeddings (tokens, frame patches) and masked mean pooling. */
#include "ot_simd.h" /* first: vectorisation settings for this file */

#include <cblas.h>
#include <string.h>

#include "ot_common.h"
#include "ot_kernels.h"

/* tokens [B,T], wte [V,C], wpe [T,C] -> out [B,T,C] */
void ot_embed_forward(float *out, const int32_t *tokens, const float *wte, const float *wpe,
                      int B, int T, int C) {
  for (size_t b = 0; b < (size_t)B; b++)
    for (size_t t = 0; t < (size_t)T; t++) {
      float *o = out + (b * T + t) * C;
      int32_t tok = tokens[b * T + t];
      OT_ASSERT(tok >= 0);
      const float *e = wte + (size_t)tok * C;
      if (wpe) {
        const float *p = wpe + t * C;
        for (int c = 0; c < C; c++) o[c] = e[c] + p[c];
      } else {
        memcpy(o, e, (size_t)C * sizeof(float));
      }
    }
}

/* dout [B,T,C] -> dwte [V,C], dwpe [T,C] (+=) */
void ot_embed_backward(float *dwte, float *dwpe, const float *dout, const int32_t *tokens,
                       int B, int T, int C) {
  for (size_t b = 0; b < (size_t)B; b++)
    for (size_t t = 0; t < (size_t)T; t++) {
      const float *d = dout + (b * T + t) * C;
      if (dwte) {
        float *e = dwte + (size_t)tokens[b * T + t] * C;
        for (int c = 0; c < C; c++) e[c] += d[c];
      }
      if (dwpe) {
        float *p = dwpe + t * C;
        for (int c = 0; c < C; c++) p[c] += d[c];
      }
    }
}

/* rows [B*T*Np,K] -> out [B,T*Np,C] = rows @ weight^T + bias + pos_space[n] + pos_time[t] */
static void project_rows(float *out, const float *rows, const float *weight, const float *bias,
                         const float *pos_space, const float *pos_time, int B, int T, int Np, int K,
                         int C) {
  ot_linear_forward(out, rows, weight, bias, B * T * Np, K, C);
  if (pos_space || pos_time)
    for (size_t f = 0; f < (size_t)B * T; f++) {
      size_t t = f % T;
      for (size_t n = 0; n < (size_t)Np; n++) {
        float *o = out + (f * Np + n) * C;
        if (pos_space)
          for (int c = 0; c < C; c++) o[c] += pos_space[n * C + c];
        if (pos_time)
          for (int c = 0; c < C; c++) o[c] += pos_time[t * C + c];
      }
    }
}

/* frames [B,T,H,W,3] -> patches [B*T*Np, P*P*3] -> out [B,T*Np,C] */
void ot_patch_embed_forward(float *out, float *patches, const uint8_t *frames,
                            const float *weight, const float *bias, const float *pos_space,
                            const float *pos_time, int B, int T, int H, int W, int P, int C) {
  OT_ASSERT(P >= 1 && H % P == 0 && W % P == 0);
  const int gh = H / P, gw = W / P, Np = gh * gw, K = P * P * 3;
  const float to_unit = 1.0f / 127.5f;
  /* im2col: one row of K floats per patch */
  for (size_t f = 0; f < (size_t)B * T; f++) {
    const uint8_t *img = frames + f * H * W * 3;
    for (int py = 0; py < gh; py++)
      for (int px = 0; px < gw; px++) {
        float *row = patches + (f * Np + (size_t)py * gw + px) * K;
        for (int y = 0; y < P; y++) {
          const uint8_t *src = img + ((size_t)(py * P + y) * W + (size_t)px * P) * 3;
          float *dst = row + (size_t)y * P * 3;
          for (int i = 0; i < P * 3; i++) dst[i] = (float)src[i] * to_unit - 1.0f;
        }
      }
  }
  project_rows(out, patches, weight, bias, pos_space, pos_time, B, T, Np, K, C);
}

/* features [B,T,D] -> rows [B*T,D] (a copy) -> out [B,T,C] */
void ot_feature_embed_forward(float *out, float *rows, const float *features, const float *weight,
                              const float *bias, const float *pos_time, int B, int T, int D, int C) {
  memcpy(rows, features, (size_t)B * T * D * sizeof *rows);
  project_rows(out, rows, weight, bias, NULL, pos_time, B, T, 1, D, C);
}

/* dout [B,T*Np,C] -> dweight [C,K], dbias [C], dpos_space [Np,C], dpos_time [T,C] (+=) */
void ot_patch_embed_backward(float *dweight, float *dbias, float *dpos_space, float *dpos_time,
                             const float *dout, const float *patches, int B, int T, int Np,
                             int K, int C) {
  ot_linear_backward(NULL, dweight, dbias, dout, patches, NULL, B * T * Np, K, C);
  if (dpos_space || dpos_time)
    for (size_t f = 0; f < (size_t)B * T; f++) {
      size_t t = f % T;
      for (size_t n = 0; n < (size_t)Np; n++) {
        const float *d = dout + (f * Np + n) * C;
        if (dpos_space)
          for (int c = 0; c < C; c++) dpos_space[n * C + c] += d[c];
        if (dpos_time)
          for (int c = 0; c < C; c++) dpos_time[t * C + c] += d[c];
      }
    }
}

/* inp [B,T,C], mask [B,T] -> out [B,C] */
void ot_meanpool_forward(float *out, const float *inp, const uint8_t *mask, int B, int T, int C) {
  for (size_t b = 0; b < (size_t)B; b++) {
    float *o = out + b * C;
    memset(o, 0, (size_t)C * sizeof(float));
    int count = 0;
    for (size_t t = 0; t < (size_t)T; t++) {
      if (mask && !mask[b * T + t]) continue;
      count++;
      const float *x = inp + (b * T + t) * C;
      for (int c = 0; c < C; c++) o[c] += x[c];
    }
    if (count > 0) {
      float inv = 1.0f / (float)count;
      for (int c = 0; c < C; c++) o[c] *= inv;
    }
  }
}

/* dout [B,C] -> dinp [B,T,C] (+=) */
void ot_meanpool_backward(float *dinp, const float *dout, const uint8_t *mask, int B, int T,
                          int C) {
  for (size_t b = 0; b < (size_t)B; b++) {
    int count = 0;
    for (size_t t = 0; t < (size_t)T; t++) count += !mask || mask[b * T + t];
    if (count == 0) continue;
    float inv = 1.0f / (float)count;
    const float *d = dout + b * C;
    for (size_t t = 0; t < (size_t)T; t++) {
      if (mask && !mask[b * T + t]) continue;
      float *di = dinp + (b * T + t) * C;
      for (int c = 0; c < C; c++) di[c] += d[c] * inv;
    }
  }
}
