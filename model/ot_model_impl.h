/* Internal to model/: the tagger's state, shared by ot_model.c (parameters,
 * initialisation) and ot_model_pass.c (forward and backward). */
#ifndef OT_MODEL_IMPL_H
#define OT_MODEL_IMPL_H

#include "ot_arena.h"
#include "ot_block.h"
#include "ot_loss.h"
#include "ot_model.h"

struct ot_model {
  ot_model_dims d;
  int type;            /* OT_MODEL_BIN / OT_MODEL_ASL */
  int C, P, K;         /* width, patch side, patch length P*P*3 */
  int Np, Nv, L, S;    /* patches per frame, visual tokens T*Np, title tokens, Nv+L */
  int n_vis, n_txt, n_fuse;
  float dropout;
  ot_asl_config asl;
  ot_block_config blk; /* every block has the same shape */
  int training;        /* opened with gradients and Adam state */

  ot_params *params;
  ot_arena *arena;

  /* offsets of the non-block tensors */
  size_t patch_w, patch_b, pos_space, pos_time; /* [C,K] [C] [Np,C] [T,C] */
  size_t wte, wpe;                              /* [vocab,C] [L,C] */
  size_t lnf_w, lnf_b;                          /* [C] [C] */
  size_t head_w, head_b;                        /* [n_tags,C] [n_tags] */
  ot_block_layout *vis_L, *txt_L, *fuse_L;

  /* the last forward (pointers into the arena) */
  ot_block_acts *vis_A, *txt_A, *fuse_A;
  int B, have_targets;
  float loss_scale;
  int32_t *title;       /* [B,L] */
  uint8_t *txt_mask;    /* [B,L] 1 token, 0 padding */
  uint8_t *fuse_mask;   /* [B,S]: visual tokens 1, then the title mask */
  float *targets;       /* [B,n_tags] */
  float *patches;       /* [B*Nv,K] */
  float *vis_emb;       /* [B,Nv,C] */
  float *txt_emb;       /* [B,L,C] */
  float *fused_in;      /* [B,S,C] */
  float *fused_out;     /* [B,S,C] (last fuse block's output, or fused_in) */
  float *lnf, *lnf_mean, *lnf_rstd; /* [B,S,C] [B*S] [B*S] */
  float *pooled;        /* [B,C] */
  float *logits;        /* [B,n_tags] */
  ot_arena_mark after_forward;
};

#endif
