#include "ot_params.h"

#include <stdlib.h>
#include <string.h>

#include "ot_common.h"

struct ot_params {
  ot_param_view *views;
  int count, cap;
  size_t total; /* floats, a multiple of 16 */
  size_t numel;
  float *values, *grads, *m, *v;
  float *ema; /* NULL unless ot_params_alloc_ema */
};

#define OT_PARAM_ALIGN_FLOATS 16

int ot_params_open(ot_params **out) {
  *out = ot_xcalloc(1, sizeof **out);
  return OT_OK;
}

void ot_params_close(ot_params *p) {
  if (!p) return;
  free(p->views);
  free(p->values);
  free(p->grads);
  free(p->m);
  free(p->v);
  free(p->ema);
  free(p);
}

int ot_params_add(ot_params *p, const char *name, int ndim, const int *shape, int decay,
                  size_t *offset) {
  if (p->values) return ot_fail(OT_EINVAL, "parameter '%s' declared after allocation", name);
  if (!name || !*name || strlen(name) >= OT_PARAM_NAME_MAX)
    return ot_fail(OT_EINVAL, "parameter name empty or longer than %d characters",
                   OT_PARAM_NAME_MAX - 1);
  if (ndim < 1 || ndim > OT_PARAM_MAX_DIMS)
    return ot_fail(OT_EINVAL, "parameter '%s': %d dimensions (1..%d allowed)", name, ndim,
                   OT_PARAM_MAX_DIMS);
  if (ot_params_find(p, name) >= 0)
    return ot_fail(OT_EINVAL, "parameter '%s' declared twice", name);
  size_t numel = 1;
  for (int d = 0; d < ndim; d++) {
    if (shape[d] < 1) return ot_fail(OT_EINVAL, "parameter '%s': dimension %d is %d", name, d, shape[d]);
    numel *= (size_t)shape[d];
  }
  if (p->count == p->cap) {
    p->cap = p->cap ? 2 * p->cap : 32;
    p->views = ot_xrealloc(p->views, (size_t)p->cap * sizeof *p->views);
  }
  ot_param_view *v = &p->views[p->count++];
  memset(v, 0, sizeof *v);
  strcpy(v->name, name);
  v->ndim = ndim;
  for (int d = 0; d < ndim; d++) v->shape[d] = shape[d];
  v->numel = numel;
  v->offset = p->total;
  v->decay = decay ? 1 : 0;
  p->total += (numel + OT_PARAM_ALIGN_FLOATS - 1) / OT_PARAM_ALIGN_FLOATS * OT_PARAM_ALIGN_FLOATS;
  p->numel += numel;
  if (offset) *offset = v->offset;
  return OT_OK;
}

static float *alloc_zeroed(size_t nfloats) {
  size_t bytes = (nfloats ? nfloats : OT_PARAM_ALIGN_FLOATS) * sizeof(float);
  float *b = aligned_alloc(64, bytes); /* bytes is a multiple of 64 */
  if (b) memset(b, 0, bytes);
  return b;
}

int ot_params_alloc(ot_params *p, int with_training_state) {
  if (p->values) return ot_fail(OT_EINVAL, "parameters allocated twice");
  p->values = alloc_zeroed(p->total);
  if (!p->values) return ot_fail(OT_ENOMEM, "cannot allocate %zu parameter floats", p->total);
  if (with_training_state) {
    p->grads = alloc_zeroed(p->total);
    p->m = alloc_zeroed(p->total);
    p->v = alloc_zeroed(p->total);
    if (!p->grads || !p->m || !p->v) {
      free(p->grads);
      free(p->m);
      free(p->v);
      p->grads = p->m = p->v = NULL;
      return ot_fail(OT_ENOMEM, "cannot allocate 3 x %zu floats of optimizer state", p->total);
    }
  }
  return OT_OK;
}

int ot_params_count(const ot_params *p) { return p->count; }

const ot_param_view *ot_params_view(const ot_params *p, int i) {
  OT_ASSERT(i >= 0 && i < p->count);
  return &p->views[i];
}

int ot_params_find(const ot_params *p, const char *name) {
  for (int i = 0; i < p->count; i++)
    if (strcmp(p->views[i].name, name) == 0) return i;
  return -1;
}

size_t ot_params_total(const ot_params *p) { return p->total; }
size_t ot_params_numel(const ot_params *p) { return p->numel; }
float *ot_params_values(ot_params *p) { return p->values; }
const float *ot_params_values_const(const ot_params *p) { return p->values; }
float *ot_params_grads(ot_params *p) { return p->grads; }
float *ot_params_adam_m(ot_params *p) { return p->m; }
float *ot_params_adam_v(ot_params *p) { return p->v; }

void ot_params_zero_grads(ot_params *p) {
  if (p->grads) memset(p->grads, 0, p->total * sizeof(float));
}

int ot_params_alloc_ema(ot_params *p) {
  OT_ASSERT(p->values && !p->ema);
  p->ema = alloc_zeroed(p->total);
  if (!p->ema) return ot_fail(OT_ENOMEM, "cannot allocate %zu floats of weight average", p->total);
  memcpy(p->ema, p->values, p->total * sizeof(float));
  return OT_OK;
}

float *ot_params_ema(ot_params *p) { return p->ema; }

void ot_params_swap_ema(ot_params *p) {
  OT_ASSERT(p->ema);
  float *x = p->values;
  p->values = p->ema;
  p->ema = x;
}
