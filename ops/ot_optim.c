#include "ot_simd.h" /* first: vectorisation settings for this file */

#include "ot_optim.h"

#include <math.h>

#include "ot_common.h"

/* param, grad, m, v [n] */
void ot_adamw_update(float *param, const float *grad, float *m, float *v, size_t n, float lr,
                     float beta1, float beta2, float eps, float weight_decay, long t) {
  OT_ASSERT(t >= 1);
  /* bias corrections folded into two scalars */
  const float c1 = (float)(1.0 / (1.0 - pow((double)beta1, (double)t)));
  const float c2 = (float)(1.0 / (1.0 - pow((double)beta2, (double)t)));
  for (size_t i = 0; i < n; i++) {
    float g = grad[i];
    float mi = beta1 * m[i] + (1.0f - beta1) * g;
    float vi = beta2 * v[i] + (1.0f - beta2) * g * g;
    m[i] = mi;
    v[i] = vi;
    param[i] -= lr * (mi * c1 / (sqrtf(vi * c2) + eps) + weight_decay * param[i]);
  }
}

void ot_adamw_step(ot_params *p, float lr, const ot_adamw_config *cfg, long t) {
  float *values = ot_params_values(p), *grads = ot_params_grads(p);
  float *m = ot_params_adam_m(p), *v = ot_params_adam_v(p);
  OT_ASSERT(values && grads && m && v);
  for (int i = 0; i < ot_params_count(p); i++) {
    const ot_param_view *pv = ot_params_view(p, i);
    size_t o = pv->offset;
    ot_adamw_update(values + o, grads + o, m + o, v + o, pv->numel, lr, cfg->beta1, cfg->beta2,
                    cfg->eps, pv->decay ? cfg->weight_decay : 0.0f, t);
  }
}

/* avg, x [n] */
void ot_ema_update(float *avg, const float *x, size_t n, float decay, long t) {
  OT_ASSERT(t >= 1);
  const float ramp = (float)(1.0 + (double)t) / (float)(10.0 + (double)t);
  const float k = 1.0f - (decay < ramp ? decay : ramp);
  for (size_t i = 0; i < n; i++) avg[i] += k * (x[i] - avg[i]);
}

double ot_grad_norm(const float *grad, size_t n) {
  double s = 0.0;
  for (size_t i = 0; i < n; i++) s += (double)grad[i] * (double)grad[i];
  return sqrt(s);
}

float ot_grad_clip(float *grad, size_t n, float max_norm) {
  double norm = ot_grad_norm(grad, n);
  if (max_norm > 0.0f && norm > (double)max_norm) {
    float s = (float)((double)max_norm / norm);
    for (size_t i = 0; i < n; i++) grad[i] *= s;
  }
  return (float)norm;
}

float ot_lr_schedule(long step, long warmup, long total, float lr_max, float lr_min) {
  if (step < warmup) return lr_max * (float)(step + 1) / (float)warmup;
  if (step >= total) return lr_min;
  double s = (double)(step - warmup) / (double)(total - warmup);
  return (float)(lr_min + (lr_max - lr_min) * 0.5 * (1.0 + cos(3.14159265358979323846 * s)));
}
