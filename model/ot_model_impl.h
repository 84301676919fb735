/* Internal to model/: the tagger's state, shared by ot_model.c (parameters,
 * initialisation) and ot_model_pass.c (forward and backward). */
#ifndef OT_MODEL_IMPL_H
#define OT_MODEL_IMPL_H

#include "ot_arena.h"
#include "ot_block.h"
#include "ot_decoder.h"
#include "ot_loss.h"
#include "ot_model.h"

typedef struct ot_model_gen_state ot_model_gen_state;
typedef struct ot_model_judge_state ot_model_judge_state;

struct ot_model {
  ot_model_dims d;
  int type;            /* ot_cfg_model */
  int generative;      /* baseline, opg or rag: a tag decoder instead of the closed-set head */
  int prompted;        /* opg or rag: order prompts matched to tags */
  int C, P, K;         /* width, patch side, input row length (P*P*3, or D for features) */
  int features;        /* model.visual features: one token per frame from batch->features */
  int Np, Nv, L, S;    /* patches per frame, visual tokens T*Np, title tokens, Nv+L */
  int n_vis, n_txt, n_fuse;
  float dropout;
  ot_asl_config asl;
  ot_block_config blk; /* every block has the same shape */
  int training;        /* opened with gradients and Adam state */

  ot_params *params;
  ot_arena *arena;

  /* offsets of the non-block tensors */
  size_t patch_w, patch_b, pos_space, pos_time; /* [C,K] [C] [Np,C] (patches only) [T,C] */
  size_t wte, wpe;                              /* [vocab,C] [L,C] */
  int ngram_dim;                                /* model.title_ngram (0: off) */
  size_t ngram_w;                               /* [C,ngram_dim] */
  float *ngram_in;                              /* [B,ngram_dim] the batch's title vectors */
  size_t lnf_w, lnf_b;                          /* [C] [C] */
  size_t head_w, head_b;                        /* [n_tags,C] [n_tags] */
  ot_block_layout *vis_L, *txt_L, *fuse_L;

  /* generative models (ot_model_gen.h): order prompts (opg) and the decoder */
  int n_prompts, n_prompt_layers; /* K and its blocks (opg) */
  int tag_len;                    /* max tokens per tag */
  int dec_T;                      /* decoder positions: tag_len + 1 (opg), seq_len (baseline) */
  float tau, w_match, w_has, w_gen;
  float match_has;                /* matching cost weight of the has-tag probability */
  float match_gen;                /* ... and of the decoder's first-token log-likelihood */
  ot_block_config pblk;           /* prompt blocks: self + cross-attention to the fused tokens */
  ot_block_layout *prompt_L;
  ot_decoder dec;
  size_t query;                   /* [K,C] learnable order prompts */
  size_t pln_w, pln_b;            /* [C] [C] prompt.ln */
  size_t pproj_w, pproj_b;        /* [C,C] [C] prompt -> matching space */
  size_t has_w, has_b;            /* [1,C] [1] has-tag logit */
  size_t tproj_w, tproj_b;        /* [C,C] [C] pooled tag -> matching space */
  size_t start_w, start_b;        /* [C,C] [C] prompt -> decoder start input (opg) */
  size_t dwpe;                    /* [dec_T,C] decoder positions */
  size_t dln_w, dln_b;            /* [C] [C] decoder final LN */
  size_t out_b;                   /* [vocab] output bias (weights tied to txt.wte) */
  /* rag: retrieved candidates as extra memory tokens (ot_model_mem.c) */
  int rag_m;                      /* candidate slots per item (0: not rag) */
  int n_title_slots;              /* title-word slots per item (L, or 0 without model.title_slots) */
  size_t rag_score_w, rag_kind_b; /* [C] [C] score embedding, "retrieved" marker */
  size_t rag_title_b;             /* [C] "title token" marker */
  size_t rag_ln_w, rag_ln_b;      /* [C] [C] LayerNorm of the candidate tokens */
  /* judge (ot_model_judge.c): its tags use tproj_w/tproj_b (named judge.tproj.*) */
  size_t jvproj_w, jvproj_b;      /* [C,C] [C] judge.vproj: mean visual token -> joint space */
  float judge_tau;
  ot_model_judge_state *j;        /* the last forward's judge part (arena) */
  int32_t *fixed_match;           /* ot_model_set_matching (owned copy) or NULL */
  int n_fixed_match;
  ot_model_gen_state *g;          /* the last forward's generative part (arena) */

  /* the last forward (pointers into the arena) */
  ot_block_acts *vis_A, *txt_A, *fuse_A;
  ot_block_acts *prompt_A, *tagtxt_A, *dec_A;
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
  const float *vis_out, *txt_out; /* [B,Nv,C], [B,L,C]: the two encoders' outputs */
  int B_last;           /* items of the last forward */
  int64_t item0;        /* the last forward's ot_batch.item0 */
  float *lnf, *lnf_mean, *lnf_rstd; /* [B,S,C] [B*S] [B*S] */
  float *pooled;        /* [B,C] */
  float *logits;        /* [B,n_tags] */
  /* generative: the memory the prompts and the decoder read, [B,S+M+L',C]
   * = the fused tokens, M candidate slots, L' title-word slots (equal to
   * lnf / fuse_mask without slots) */
  const float *mem;
  const uint8_t *mem_mask;
  int Tm;
  float *cand_sum, *cand_x, *cand_mean, *cand_rstd; /* [B,M+L,C] [B,M+L,C] [B*(M+L)] x2 */
  int32_t *cand_tok;    /* [B,M,tag_len] tokens of each slot, OT_BPE_PAD after the end */
  int32_t *cand_ntok;   /* [B,M] tokens of each slot (0: empty slot) */
  float *cand_score;    /* [B,M] */
  ot_arena_mark after_forward;
};

/* The last forward's generative part (everything in the arena). Opg rows
 * b*K+k are item b's prompt k; decoder sequences are grouped by item. */
struct ot_model_gen_state {
  int with_loss;                 /* 1 once a forward with a loss has completed */
  /* opg: prompts */
  float *pr_in;                  /* [B,K,C] the queries, per item */
  const float *pr_out;           /* [B,K,C] the last prompt block's output */
  float *pr, *pr_mean, *pr_rstd; /* [B*K,C] after prompt.ln */
  float *has;                    /* [B*K] has-tag logits */
  float *p_proj, *p_hat;         /* [B*K,C] projected, normalised */
  /* the batch's tags, cut to tag_len */
  int n_tags;
  int32_t *item_tags;            /* [B+1] */
  int32_t *tag_off, *tag_tok;    /* [n_tags+1], tokens */
  /* opg: distinct tags (the InfoNCE columns) through the title encoder */
  int U, Lt;
  int32_t *tag_col;              /* [n_tags] column of each tag */
  int32_t *col_tok;              /* [U,Lt] tokens, OT_BPE_PAD after the end */
  uint8_t *col_mask;             /* [U,Lt] */
  float *t_emb;                  /* [U,Lt,C] */
  const float *t_out;            /* [U,Lt,C] */
  float *t_pool, *t_proj, *t_hat; /* [U,C] */
  /* opg: matching */
  int32_t *match;                /* [n_tags] prompt or -1 */
  float *has_y;                  /* [B*K] 1 = matched */
  int M;                         /* matched prompts (= decoder sequences) */
  int32_t *m_row, *m_col;        /* [M] prompt row b*K+k, its tag's column */
  float *m_hat, *m_pr;           /* [M,C] gathered p_hat and pr rows */
  float *nce;                    /* [2*M*U] InfoNCE scratch */
  /* decoder (teacher forcing) */
  int N, T;                      /* sequences and their padded length */
  int32_t *seq_start;            /* [B+1] */
  int32_t *seq_len;              /* [N] positions with a target */
  int32_t *in_tok;               /* [N,T] input tokens (opg position 0: the start vector) */
  int32_t *tgt;                  /* [N,T] target, -1 = none */
  float *start;                  /* [N,C] opg: dec.start(prompt) */
  float *dec_in;                 /* [N,T,C] */
  const float *dec_out;          /* [N,T,C] */
  int n_out;                     /* positions with a target */
  int32_t *out_row, *out_tgt;    /* [n_out] row n*T+i and its target */
  float *h, *h_ln, *h_mean, *h_rstd; /* [n_out,C] gathered rows before / after dec.ln */
  float *logits;                 /* [n_out,vocab] */
  ot_model_losses parts;
};

/* Batch token lists (ot_model_gen_loss.c): item [B+1] and off [n+1] start at 0
 * and never decrease, tokens lie in [OT_BPE_N_SPECIAL, vocab). names: the
 * three arrays and the unit, e.g. {"item_tags", "tag_offsets",
 * "tag_tokens", "tag"}; OT_EINVAL naming them. */
int ot_model_check_lists(const ot_model *m, int B, const int32_t *item, const int32_t *off,
                         const int32_t *tok, const char *const names[4]);

/* ot_model_mem.c: build m->mem / mem_mask / Tm from lnf, the batch's
 * candidates (rag) and title words (model.title_slots); without slots
 * point them at lnf. The backward (only with slots, Tm > S): dmem
 * [B,Tm,C] -> dlnf [B,S,C] (+=) and the slot parameters. */
int ot_model_mem_forward(ot_model *m, const ot_batch *b);
void ot_model_mem_backward(ot_model *m, const float *dmem, float *dlnf);

/* Allocate n elements of *ptr from m->arena or return OT_ENOMEM. */
#define OT_MODEL_ALLOC(m, ptr, n)                                                        \
  do {                                                                                   \
    if (!((ptr) = ot_arena_alloc((m)->arena, (size_t)(n) * sizeof *(ptr) + 1)))          \
      return ot_fail(OT_ENOMEM, "model: arena cannot grow by %zu bytes",                 \
                     (size_t)(n) * sizeof *(ptr));                                       \
  } while (0)

/* Blocks x [B,T,C] (+ mem, cross blocks only; else NULL) through n blocks
 * of config cfg -> *out (x itself when n == 0). Dropout sites site + l;
 * sequence b's masks keyed by row0 + b (see ot_block_forward). */
int ot_model_stack_forward(ot_model *m, ot_block_acts *A, const ot_block_layout *L, int n,
                           const ot_block_config *cfg, const float *x, const uint8_t *mask, int B,
                           int T, const ot_block_memory *mem, float p, uint64_t seed,
                           uint64_t row0, int site, const float **out);
/* dout [len] of the stack's output -> the gradient of its input, returned
 * (one of the two buffers dout and spare); dmem (+=, may be NULL). */
float *ot_model_stack_backward(ot_model *m, const ot_block_acts *A, const ot_block_layout *L,
                               int n, const ot_block_config *cfg, float *dout, float *spare,
                               size_t len, float *dmem);
/* Zeroed floats from the arena, or abort (backward passes have no status). */
float *ot_model_zeros(ot_model *m, size_t n);

/* ot_model_gen_loss.c: the generative forward after the encoders (prompts,
 * tags, matching, decoder, losses; with_loss 0: only the prompts and their
 * has-tag logits) and its backward into dfused [B,S,C] (+=). */
int ot_model_gen_forward(ot_model *m, const ot_batch *b, float p, uint64_t seed, int with_loss,
                         float *loss);
void ot_model_gen_backward(ot_model *m, float *dfused);
/* The memory the tag decoder and opg's prompt blocks cross-attend to, per
 * item: m->mem [B,Tm,C] and its key mask (ot_model_mem.c), read by the
 * sequences seq_start groups (NULL: sequence b reads item b). */
ot_block_memory ot_model_dec_memory(const ot_model *m, const int32_t *seq_start);
/* Forward FLOPs of the generative part for B items (see ot_model_train_flops). */
double ot_model_gen_forward_flops(const ot_model *m, int B);
/* Validate the generative fields of a batch (OT_EINVAL naming the field). */
int ot_model_check_tags(const ot_model *m, const ot_batch *b);

/* The batch's tags as vectors (ot_model_gen_loss.c, shared by opg and the
 * judge): copied and cut to tag_len, distinct token sequences as columns
 * (g->U, g->tag_col), through the title encoder (dropout p, masks from
 * seed), masked mean, tag.proj (judge.tproj), L2 norm -> g->t_hat [U,C]. The
 * backward takes dt [U,C], the gradient of t_hat, into the parameters. */
int ot_model_tags_forward(ot_model *m, ot_model_gen_state *g, const ot_batch *b, float p,
                          uint64_t seed);
void ot_model_tags_backward(ot_model *m, ot_model_gen_state *g, const float *dt);

/* ot_model_judge.c: after the visual encoder's tokens vis [B,Nv,C], the
 * judge's image vectors and (loss not NULL) its tags and InfoNCE; the
 * backward adds the gradient of vis into dvis [B,Nv,C] (+=). */
int ot_model_judge_forward(ot_model *m, const float *vis, const ot_batch *b, float p,
                           uint64_t seed, float *loss);
void ot_model_judge_backward(ot_model *m, float *dvis);
double ot_model_judge_forward_flops(const ot_model *m, int B);

/* qsort order of generated tags: score descending, ties by text. */
int ot_gen_tag_by_score(const void *a, const void *b);

#endif
