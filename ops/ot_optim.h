/* AdamW, global gradient-norm clipping and the learning-rate schedule. */
#ifndef OT_OPTIM_H
#define OT_OPTIM_H

#include <stddef.h>

#include "ot_params.h"

typedef struct {
  float beta1, beta2, eps, weight_decay;
} ot_adamw_config;

/* One AdamW step (Loshchilov & Hutter, decoupled decay, as PyTorch's AdamW)
 * on n elements at step t (1-based):
 *   m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2
 *   mhat = m / (1 - b1^t);  vhat = v / (1 - b2^t)
 *   param -= lr * (mhat / (sqrt(vhat) + eps) + weight_decay * param)
 * The decay uses the parameter before this step's update. */
void ot_adamw_update(float *param, const float *grad, float *m, float *v, size_t n, float lr,
                     float beta1, float beta2, float eps, float weight_decay, long t);
/* The same over every tensor of a parameter table (which must have training
 * state): cfg->weight_decay on tensors declared with decay, 0 on the rest. */
void ot_adamw_step(ot_params *p, float lr, const ot_adamw_config *cfg, long t);

/* The weight average after update t (1-based), in place over n floats:
 *   avg += (1 - d) (x - avg),  d = min(decay, (1 + t) / (10 + t))
 * The ramp (TensorFlow's ExponentialMovingAverage with num_updates) keeps
 * the first steps' random initialisation from dominating a short run. */
void ot_ema_update(float *avg, const float *x, size_t n, float decay, long t);

/* L2 norm of a gradient buffer (accumulated in double). */
double ot_grad_norm(const float *grad, size_t n);
/* Global norm clipping: if the norm exceeds max_norm (> 0), scale the whole
 * buffer by max_norm / norm. Returns the norm before clipping. */
float ot_grad_clip(float *grad, size_t n, float max_norm);

/* Linear warmup then cosine decay, for 0-based `step`:
 *   step < warmup:          lr_max * (step + 1) / warmup
 *   warmup <= step < total: lr_min + (lr_max - lr_min) (1 + cos(pi s)) / 2,
 *                           s = (step - warmup) / (total - warmup)
 *   step >= total:          lr_min */
float ot_lr_schedule(long step, long warmup, long total, float lr_max, float lr_min);

#endif
