/* The taggers, built from ops/: the shared encoders and the closed-set heads.
 *
 *   visual encoder   frames [B,T,H,W,3] -> patch embedding (spatial + temporal
 *                    positions) -> vis_layers pre-LN blocks -> [B, T*Np, C]
 *   title encoder    tokens [B,L] -> token + position embedding ->
 *                    txt_layers pre-LN blocks -> [B, L, C] (padding masked)
 *   hybrid encoder   fuse_layers blocks over the concatenated sequence
 *                    [visual ; title] (self-attention across both modalities,
 *                    with a key padding mask), final LN -> fused tokens
 *                    [B, T*Np+L, C]; pooled vector [B, C] = mean of the
 *                    visual tokens + mean of the valid title tokens
 *   head (bin, asl)  final LN, linear over the closed-set tag vocabulary
 *                    -> logits [B, n_tags]; loss BCE (bin) or ASL (asl)
 *
 * Data parallelism: every item's loss is weighted by batch->loss_scale (the
 * caller passes 1/global batch), so the gradients summed over ranks are the
 * gradient of the global-batch mean loss whatever the rank count.
 *
 * Parameter names (checkpoint datasets, PyTorch mirror) are
 * "vis.patch.w", "vis.block0.attn.qkv.w", "txt.wte", "fuse.block1.mlp.fc.b",
 * "head.w", ... — see ot_model_open for the full list. */
#ifndef OT_MODEL_H
#define OT_MODEL_H

#include "ot_config.h"
#include "ot_params.h"

#include <stdint.h>

typedef struct {
  int T, H, W;   /* frames per item and their size (from the dataset) */
  int n_tags;    /* closed-set tag vocabulary */
  int vocab;     /* BPE vocabulary size (title tokens) */
  int max_batch; /* largest B passed to forward (sizes the arena) */
} ot_model_dims;

typedef struct {
  int B;
  const uint8_t *frames;     /* [B,T,H,W,3] */
  const int32_t *title;      /* [B,L] token ids, L = model.title_len, OT_BPE_PAD after the end */
  const uint8_t *title_mask; /* [B,L] 1 = token, 0 = padding */
  const float *targets;      /* [B,n_tags] in {0,1}; NULL in inference */
  float loss_scale;          /* weight of each item's loss (1/global batch) */
  /* Generative models (opentag, baseline): the ground-truth tags of the
   * batch as BPE token sequences (no BOS/EOS), in the item's own order.
   * Item b's tags are tags item_tags[b] .. item_tags[b+1]-1; tag j's tokens
   * are tag_tokens[tag_offsets[j] .. tag_offsets[j+1]-1]. NULL in inference
   * and for the closed-set models. */
  const int32_t *item_tags;   /* [B+1] */
  const int32_t *tag_offsets; /* [n_batch_tags+1] */
  const int32_t *tag_tokens;
} ot_batch;

typedef struct ot_model ot_model;

/* Declare every parameter from cfg->model and dims, allocate the parameter
 * buffers (with gradients and Adam moments when `training`) and the arena.
 * OT_EINVAL naming the config key when the sizes do not fit (heads not
 * dividing dim, patch not dividing H or W). Caller owns *out (ot_model_close). */
int ot_model_open(ot_model **out, const ot_config *cfg, const ot_model_dims *dims, int training);
void ot_model_close(ot_model *m); /* accepts NULL */
ot_params *ot_model_params(ot_model *m);
const ot_model_dims *ot_model_get_dims(const ot_model *m);
/* Deterministic initialisation from `seed` (same weights on every rank). */
void ot_model_init(ot_model *m, uint64_t seed);

/* Forward pass; with targets, *loss = loss_scale * sum over items of the
 * item's loss (NULL loss: not computed). `training` enables dropout, with
 * masks derived from dropout_seed. Activations stay in the model's arena
 * for ot_model_backward. */
int ot_model_forward(ot_model *m, const ot_batch *b, int training, uint64_t dropout_seed,
                     float *loss);
/* [B, n_tags] logits of the last forward (valid until the next forward). */
const float *ot_model_logits(const ot_model *m);
/* The last forward's hybrid-encoder outputs (valid until the next forward):
 * fused tokens after the final LayerNorm [B, S, C] with S = T*Np + L
 * (*S receives S; title padding rows are present but meaningless), and the
 * pooled vector [B, C] the head reads (visual mean + title mean). */
const float *ot_model_fused(const ot_model *m, int *S);
const float *ot_model_pooled(const ot_model *m);
/* Gradients of the last forward's loss, accumulated (+=) into the parameter
 * gradient buffer. Needs a forward with targets. */
void ot_model_backward(ot_model *m);
/* FLOPs of one forward+backward on B items (for GFLOP/s reports). */
double ot_model_train_flops(const ot_model *m, int B);

#endif
