/* All parameters of a model in ONE contiguous float buffer with named views.
 *
 * A model declares its tensors (name, shape, whether weight decay applies),
 * then allocates once. Every tensor lives at the same offset in four
 * buffers of identical layout: values, grads, Adam first and second
 * moments. So AdamW is one loop, a gradient allreduce is one buffer, a
 * checkpoint is the view table plus the buffers.
 *
 * Offsets are rounded up to 16 floats (64 bytes) so every tensor starts
 * cache-line aligned; the padding is zero in every buffer and stays zero
 * under AdamW (zero grad, zero moments, decay of zero). */
#ifndef OT_PARAMS_H
#define OT_PARAMS_H

#include <stddef.h>

#define OT_PARAM_MAX_DIMS 4
#define OT_PARAM_NAME_MAX 96

typedef struct {
  char name[OT_PARAM_NAME_MAX];
  int ndim;
  int shape[OT_PARAM_MAX_DIMS];
  size_t numel;
  size_t offset; /* in floats from the start of each buffer; multiple of 16 */
  int decay;     /* 1: AdamW weight decay applies (matrices); 0: biases, LN */
} ot_param_view;

typedef struct ot_params ot_params;

/* An empty table. The caller frees it with ot_params_close. */
int ot_params_open(ot_params **out);
/* Frees the table and all buffers. Accepts NULL. */
void ot_params_close(ot_params *p);

/* Declare a tensor before ot_params_alloc. Names must be unique and shorter
 * than OT_PARAM_NAME_MAX; 1 <= ndim <= 4, every dim >= 1. *offset (if not
 * NULL) receives the tensor's offset, valid in every buffer. */
int ot_params_add(ot_params *p, const char *name, int ndim, const int *shape, int decay,
                  size_t *offset);

/* Allocate the buffers (64-byte aligned, zero-filled): values always; grads
 * and the two Adam moments when with_training_state is nonzero. Owned by
 * the table. Returns OT_ENOMEM if an allocation fails. Call once. */
int ot_params_alloc(ot_params *p, int with_training_state);

int ot_params_count(const ot_params *p);
const ot_param_view *ot_params_view(const ot_params *p, int i);
/* Index of the tensor with that name, or -1. */
int ot_params_find(const ot_params *p, const char *name);
/* Floats in each buffer, padding included (the allreduce length). */
size_t ot_params_total(const ot_params *p);
/* Floats of real parameters (padding excluded). */
size_t ot_params_numel(const ot_params *p);

/* Buffers (NULL before ot_params_alloc, or for grads/m/v without training
 * state). Index with a view's offset. */
float *ot_params_values(ot_params *p);
float *ot_params_grads(ot_params *p);
float *ot_params_adam_m(ot_params *p);
float *ot_params_adam_v(ot_params *p);
const float *ot_params_values_const(const ot_params *p);

void ot_params_zero_grads(ot_params *p);

/* The weights' exponential moving average (train.ema): one more buffer of
 * the same layout, allocated after ot_params_alloc and starting as a copy
 * of the values. Owned by the table. OT_ENOMEM if it cannot be had. */
int ot_params_alloc_ema(ot_params *p);
/* The average (NULL when not allocated). */
float *ot_params_ema(ot_params *p);
/* Exchange the values and the average (two pointers): between two calls the
 * model computes with the averaged weights — validation does, so the
 * threshold it tunes belongs to the weights inference will read. */
void ot_params_swap_ema(ot_params *p);

#endif
