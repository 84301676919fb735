/* The tagger's parameters: declaration, initialisation, sizes and FLOPs.
 * Forward and backward are in ot_model_pass.c. */
#include "ot_model_impl.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bpe.h"
#include "ot_common.h"
#include "ot_kernels.h"
#include "ot_rng.h"

#define INIT_STD 0.02f

static int add1(ot_params *p, const char *name, int n, int decay, size_t *off) {
  int shape[1] = {n};
  return ot_params_add(p, name, 1, shape, decay, off);
}

static int add2(ot_params *p, const char *name, int r, int c, int decay, size_t *off) {
  int shape[2] = {r, c};
  return ot_params_add(p, name, 2, shape, decay, off);
}

static int declare_stack(ot_params *p, const char *prefix, int n, const ot_block_config *cfg,
                         ot_block_layout *L) {
  char name[64];
  for (int l = 0; l < n; l++) {
    snprintf(name, sizeof name, "%s.block%d", prefix, l);
    int rc = ot_block_declare(p, name, cfg, &L[l]);
    if (rc) return rc;
  }
  return OT_OK;
}

/* Weight decay: matrices (patch projection, block matrices, token
 * embedding, head) decay; biases, LayerNorms and the position embeddings
 * (spatial, temporal, title) do not. */
static int declare_all(ot_model *m) {
  ot_params *p = m->params;
  const int C = m->C;
  int rc = OT_OK;
  if (!rc) rc = add2(p, "vis.patch.w", C, m->K, 1, &m->patch_w);
  if (!rc) rc = add1(p, "vis.patch.b", C, 0, &m->patch_b);
  if (!rc && !m->features) rc = add2(p, "vis.pos_space", m->Np, C, 0, &m->pos_space);
  if (!rc) rc = add2(p, "vis.pos_time", m->d.T, C, 0, &m->pos_time);
  if (!rc) rc = declare_stack(p, "vis", m->n_vis, &m->blk, m->vis_L);
  if (!rc) rc = add2(p, "txt.wte", m->d.vocab, C, 1, &m->wte);
  if (!rc) rc = add2(p, "txt.wpe", m->L, C, 0, &m->wpe);
  if (!rc && m->ngram_dim) rc = add2(p, "txt.ngram.w", C, m->ngram_dim, 1, &m->ngram_w);
  if (!rc) rc = declare_stack(p, "txt", m->n_txt, &m->blk, m->txt_L);
  if (m->type == OT_MODEL_JUDGE) { /* two towers, no fusion, no head */
    if (!rc) rc = add2(p, "judge.vproj.w", C, C, 1, &m->jvproj_w);
    if (!rc) rc = add1(p, "judge.vproj.b", C, 0, &m->jvproj_b);
    if (!rc) rc = add2(p, "judge.tproj.w", C, C, 1, &m->tproj_w);
    if (!rc) rc = add1(p, "judge.tproj.b", C, 0, &m->tproj_b);
    return rc;
  }
  if (!rc) rc = declare_stack(p, "fuse", m->n_fuse, &m->blk, m->fuse_L);
  if (!rc) rc = add1(p, "fuse.ln.w", C, 0, &m->lnf_w);
  if (!rc) rc = add1(p, "fuse.ln.b", C, 0, &m->lnf_b);
  if (!m->generative) {
    if (!rc) rc = add2(p, "head.w", m->d.n_tags, C, 1, &m->head_w);
    if (!rc) rc = add1(p, "head.b", m->d.n_tags, 0, &m->head_b);
    return rc;
  }
  /* the learnable prompts are like position embeddings: no decay */
  if (m->prompted) {
    if (!rc) rc = add2(p, "prompt.query", m->n_prompts, C, 0, &m->query);
    if (!rc) rc = declare_stack(p, "prompt", m->n_prompt_layers, &m->pblk, m->prompt_L);
    if (!rc) rc = add1(p, "prompt.ln.w", C, 0, &m->pln_w);
    if (!rc) rc = add1(p, "prompt.ln.b", C, 0, &m->pln_b);
    if (!rc) rc = add2(p, "prompt.proj.w", C, C, 1, &m->pproj_w);
    if (!rc) rc = add1(p, "prompt.proj.b", C, 0, &m->pproj_b);
    if (!rc) rc = add2(p, "prompt.has.w", 1, C, 1, &m->has_w);
    if (!rc) rc = add1(p, "prompt.has.b", 1, 0, &m->has_b);
    if (!rc) rc = add2(p, "tag.proj.w", C, C, 1, &m->tproj_w);
    if (!rc) rc = add1(p, "tag.proj.b", C, 0, &m->tproj_b);
    if (!rc) rc = add2(p, "dec.start.w", C, C, 1, &m->start_w);
    if (!rc) rc = add1(p, "dec.start.b", C, 0, &m->start_b);
  }
  if (!rc) rc = add2(p, "dec.wpe", m->dec_T, C, 0, &m->dwpe);
  if (!rc) rc = ot_decoder_declare(&m->dec, p, "dec", m->dec.n_layer, &m->blk);
  if (!rc) rc = add1(p, "dec.ln.w", C, 0, &m->dln_w);
  if (!rc) rc = add1(p, "dec.ln.b", C, 0, &m->dln_b);
  if (!rc) rc = add1(p, "dec.out.b", m->d.vocab, 0, &m->out_b);
  if (m->rag_m) {
    if (!rc) rc = add1(p, "rag.score.w", C, 0, &m->rag_score_w);
    if (!rc) rc = add1(p, "rag.kind.b", C, 0, &m->rag_kind_b);
  }
  if (m->n_title_slots && !rc) rc = add1(p, "rag.title.b", C, 0, &m->rag_title_b);
  if (m->rag_m || m->n_title_slots) {
    if (!rc) rc = add1(p, "rag.ln.w", C, 0, &m->rag_ln_w);
    if (!rc) rc = add1(p, "rag.ln.b", C, 0, &m->rag_ln_b);
  }
  return rc;
}

int ot_model_check_config(const ot_config *cfg) {
  const int type = cfg->model.type, C = cfg->model.dim;
  if ((type == OT_MODEL_OPG || type == OT_MODEL_RAG || type == OT_MODEL_JUDGE) &&
      cfg->model.tag_len > cfg->model.title_len)
    return ot_fail(OT_EINVAL, "model.tag_len (%d) must not exceed model.title_len (%d): opg "
                   "and judge embed tags with the title encoder", cfg->model.tag_len,
                   cfg->model.title_len);
  if (type == OT_MODEL_BASELINE && cfg->model.seq_len < cfg->model.tag_len + 1)
    return ot_fail(OT_EINVAL, "model.seq_len (%d) must hold one tag of model.tag_len (%d) "
                   "tokens and its end", cfg->model.seq_len, cfg->model.tag_len);
  if (cfg->model.heads < 1 || C % cfg->model.heads)
    return ot_fail(OT_EINVAL, "model.heads (%d) must divide model.dim (%d)", cfg->model.heads, C);
  if (cfg->model.title_len < 1) return ot_fail(OT_EINVAL, "model.title_len must be >= 1");
  if (cfg->model.dropout < 0 || cfg->model.dropout >= 1)
    return ot_fail(OT_EINVAL, "model.dropout (%g) must be in [0, 1)", cfg->model.dropout);
  return OT_OK;
}

static int check_sizes(const ot_config *cfg, const ot_model_dims *d) {
  const int P = cfg->model.patch;
  if (d->T < 1 || d->H < 0 || d->W < 0)
    return ot_fail(OT_EINVAL, "model: frames must be at least 1x1x1 (got T=%d H=%d W=%d)", d->T,
                   d->H, d->W);
  const int type = cfg->model.type;
  const int generative = type == OT_MODEL_BASELINE || type == OT_MODEL_OPG || type == OT_MODEL_RAG;
  const int judge = type == OT_MODEL_JUDGE;
  if (!generative && !judge && d->n_tags < 1) return ot_fail(OT_EINVAL, "model: the tag vocabulary is empty");
  if (d->vocab < 1) return ot_fail(OT_EINVAL, "model: the title vocabulary is empty");
  if ((generative || judge) && d->vocab <= OT_BPE_N_SPECIAL)
    return ot_fail(OT_EINVAL, "model: a generative model needs a BPE vocabulary beyond the %d "
                   "special tokens (got %d)", OT_BPE_N_SPECIAL, d->vocab);
  if (d->max_batch < 1) return ot_fail(OT_EINVAL, "model: max_batch must be >= 1");
  int rc = ot_model_check_config(cfg);
  if (rc) return rc;
  if (cfg->model.visual == OT_VISUAL_FEATURES) {
    if (d->D < 1)
      return ot_fail(OT_EINVAL, "model.visual is 'features' but the dataset has no per-frame "
                     "features (extract them with extract.features)");
  } else if (d->H < 1 || d->W < 1) {
    return ot_fail(OT_EINVAL, "model.visual is 'patches' but the dataset has no frames (extracted "
                   "with extract.store_frames false: use model.visual features)");
  } else if (P < 1 || d->H % P || d->W % P)
    return ot_fail(OT_EINVAL, "model.patch (%d) must divide the frame height (%d) and width (%d)",
                   P, d->H, d->W);
  return OT_OK;
}

int ot_model_open(ot_model **out, const ot_config *cfg, const ot_model_dims *dims, int training) {
  *out = NULL;
  int rc = check_sizes(cfg, dims);
  if (rc) return rc;
  ot_model *m = ot_xcalloc(1, sizeof *m);
  m->d = *dims;
  m->type = cfg->model.type;
  m->C = cfg->model.dim;
  m->P = cfg->model.patch;
  m->features = cfg->model.visual == OT_VISUAL_FEATURES;
  m->K = m->features ? dims->D : m->P * m->P * 3;
  m->Np = m->features ? 1 : (dims->H / m->P) * (dims->W / m->P);
  m->Nv = dims->T * m->Np;
  m->L = cfg->model.title_len;
  m->S = m->Nv + m->L;
  m->n_vis = cfg->model.vis_layers;
  m->n_txt = cfg->model.txt_layers;
  m->n_fuse = m->type == OT_MODEL_JUDGE ? 0 : cfg->model.fuse_layers;
  m->judge_tau = (float)cfg->model.judge_tau;
  m->dropout = (float)cfg->model.dropout;
  m->asl.gamma_pos = (float)cfg->model.asl_gamma_pos;
  m->asl.gamma_neg = (float)cfg->model.asl_gamma_neg;
  m->asl.margin = (float)cfg->model.asl_clip;
  m->blk = (ot_block_config){.C = m->C, .n_head = cfg->model.heads,
                             .hidden = cfg->model.mlp_ratio * m->C};
  m->training = training != 0;
  m->prompted = m->type == OT_MODEL_OPG || m->type == OT_MODEL_RAG;
  m->generative = m->type == OT_MODEL_BASELINE || m->prompted;
  m->rag_m = m->type == OT_MODEL_RAG ? cfg->model.rag_m : 0;
  m->ngram_dim = cfg->model.type == OT_MODEL_JUDGE ? 0 : cfg->model.title_ngram;
  m->n_title_slots = m->generative && cfg->model.title_slots ? cfg->model.title_len : 0;
  m->n_prompts = cfg->model.prompts;
  m->n_prompt_layers = m->prompted ? cfg->model.prompt_layers : 0;
  m->dec.n_layer = m->generative ? cfg->model.dec_layers : 0;
  m->tag_len = cfg->model.tag_len;
  m->dec_T = m->type == OT_MODEL_BASELINE ? cfg->model.seq_len : m->tag_len + 1;
  m->tau = (float)cfg->model.tau;
  m->w_match = (float)cfg->model.w_match;
  m->w_has = (float)cfg->model.w_has;
  m->w_gen = (float)cfg->model.w_gen;
  m->match_has = (float)cfg->model.match_has;
  m->match_gen = (float)cfg->model.match_gen;
  m->pblk = m->blk;
  m->pblk.cross = 1;
  m->pblk.C_mem = m->C;
  m->prompt_L = ot_xcalloc((size_t)m->n_prompt_layers + 1, sizeof *m->prompt_L);
  m->prompt_A = ot_xcalloc((size_t)m->n_prompt_layers + 1, sizeof *m->prompt_A);
  m->tagtxt_A = ot_xcalloc((size_t)m->n_txt + 1, sizeof *m->tagtxt_A);
  m->dec_A = ot_xcalloc((size_t)m->dec.n_layer + 1, sizeof *m->dec_A);
  /* +1: calloc(0) may return NULL, and a stack of 0 blocks is allowed */
  m->vis_L = ot_xcalloc((size_t)m->n_vis + 1, sizeof *m->vis_L);
  m->txt_L = ot_xcalloc((size_t)m->n_txt + 1, sizeof *m->txt_L);
  m->fuse_L = ot_xcalloc((size_t)m->n_fuse + 1, sizeof *m->fuse_L);
  m->vis_A = ot_xcalloc((size_t)m->n_vis + 1, sizeof *m->vis_A);
  m->txt_A = ot_xcalloc((size_t)m->n_txt + 1, sizeof *m->txt_A);
  m->fuse_A = ot_xcalloc((size_t)m->n_fuse + 1, sizeof *m->fuse_A);

  rc = ot_params_open(&m->params);
  if (!rc) rc = declare_all(m);
  if (!rc) rc = ot_params_alloc(m->params, m->training);
  if (!rc) rc = ot_arena_open(&m->arena, 0); /* sized by the first step */
  if (rc) {
    ot_model_close(m);
    return rc;
  }
  *out = m;
  return OT_OK;
}

void ot_model_close(ot_model *m) {
  if (!m) return;
  ot_params_close(m->params);
  ot_arena_close(m->arena);
  free(m->vis_L);
  free(m->txt_L);
  free(m->fuse_L);
  free(m->vis_A);
  free(m->txt_A);
  free(m->fuse_A);
  free(m->prompt_L);
  free(m->prompt_A);
  free(m->tagtxt_A);
  free(m->dec_A);
  free(m->fixed_match);
  ot_decoder_free(&m->dec);
  free(m);
}

ot_params *ot_model_params(ot_model *m) { return m->params; }
const ot_model_dims *ot_model_get_dims(const ot_model *m) { return &m->d; }
const float *ot_model_logits(const ot_model *m) { return m->logits; }
const float *ot_model_pooled(const ot_model *m) { return m->pooled; }
void ot_model_embed(const ot_model *m, float *vis, float *title, float *fused) {
  const int B = m->B_last, C = m->C, Nv = m->Nv, L = m->L;
  if (vis) {
    ot_meanpool_forward(vis, m->vis_out, NULL, B, Nv, C);
    ot_l2norm_forward(vis, vis, B, C);
  }
  if (m->type == OT_MODEL_JUDGE) { /* no title or fused tokens: zero rows */
    if (title) memset(title, 0, (size_t)B * C * sizeof *title);
    if (fused) memset(fused, 0, (size_t)B * C * sizeof *fused);
    return;
  }
  if (title) {
    ot_meanpool_forward(title, m->txt_out, m->txt_mask, B, L, C);
    ot_l2norm_forward(title, title, B, C);
  }
  if (fused) {
    memcpy(fused, m->pooled, (size_t)B * C * sizeof(float));
    ot_l2norm_forward(fused, fused, B, C);
  }
}

int ot_model_reads_features(const ot_model *m) { return m->features; }
int ot_model_title_ngram(const ot_model *m) { return m->ngram_dim; }

const float *ot_model_fused(const ot_model *m, int *S) {
  if (S) *S = m->S;
  return m->lnf;
}

static void fill(float *x, size_t n, float v) {
  for (size_t i = 0; i < n; i++) x[i] = v;
}

/* Each group of tensors draws from its own stream mix(seed, group), so the
 * values of one tensor do not depend on how many tensors come before it. */
enum { GROUP_VIS = 1, GROUP_TXT = 2, GROUP_HEAD = 3, GROUP_PROMPT = 4, GROUP_DEC = 5, GROUP_RAG = 6,
       GROUP_JUDGE = 7,
       GROUP_VIS_BLOCK = 1000, GROUP_TXT_BLOCK = 2000, GROUP_FUSE_BLOCK = 3000,
       GROUP_PROMPT_BLOCK = 4000, GROUP_DEC_BLOCK = 5000 };

static void init_stack(float *W, const ot_block_layout *L, int n, const ot_block_config *cfg,
                       uint64_t seed, int group, int depth) {
  /* GPT-2: projections into the residual stream scaled by 1/sqrt(2 depth),
   * depth = blocks a token's stream passes through */
  float proj_std = INIT_STD / sqrtf(2.0f * (float)(depth > 0 ? depth : 1));
  for (int l = 0; l < n; l++) {
    ot_rng r;
    ot_rng_seed(&r, ot_rng_mix(seed, (uint64_t)(group + l)));
    ot_block_init(W, &L[l], cfg, &r, INIT_STD, proj_std);
  }
}

void ot_model_init(ot_model *m, uint64_t seed) {
  float *W = ot_params_values(m->params);
  const size_t C = (size_t)m->C;
  ot_rng r;
  ot_rng_seed(&r, ot_rng_mix(seed, GROUP_VIS));
  ot_rng_fill_normal(&r, W + m->patch_w, C * m->K, 0.0f, INIT_STD);
  fill(W + m->patch_b, C, 0.0f);
  if (!m->features) ot_rng_fill_normal(&r, W + m->pos_space, (size_t)m->Np * C, 0.0f, INIT_STD);
  ot_rng_fill_normal(&r, W + m->pos_time, (size_t)m->d.T * C, 0.0f, INIT_STD);
  ot_rng_seed(&r, ot_rng_mix(seed, GROUP_TXT));
  ot_rng_fill_normal(&r, W + m->wte, (size_t)m->d.vocab * C, 0.0f, INIT_STD);
  ot_rng_fill_normal(&r, W + m->wpe, (size_t)m->L * C, 0.0f, INIT_STD);
  if (m->ngram_dim) ot_rng_fill_normal(&r, W + m->ngram_w, (size_t)C * m->ngram_dim, 0.0f, INIT_STD);
  const int depth_vis = m->n_vis + m->n_fuse, depth_txt = m->n_txt + m->n_fuse;
  const int depth_fuse = depth_vis > depth_txt ? depth_vis : depth_txt;
  init_stack(W, m->vis_L, m->n_vis, &m->blk, seed, GROUP_VIS_BLOCK, depth_vis);
  init_stack(W, m->txt_L, m->n_txt, &m->blk, seed, GROUP_TXT_BLOCK, depth_txt);
  init_stack(W, m->fuse_L, m->n_fuse, &m->blk, seed, GROUP_FUSE_BLOCK, depth_fuse);
  if (m->type == OT_MODEL_JUDGE) {
    ot_rng_seed(&r, ot_rng_mix(seed, GROUP_JUDGE));
    ot_rng_fill_normal(&r, W + m->jvproj_w, C * C, 0.0f, INIT_STD);
    fill(W + m->jvproj_b, C, 0.0f);
    ot_rng_fill_normal(&r, W + m->tproj_w, C * C, 0.0f, INIT_STD);
    fill(W + m->tproj_b, C, 0.0f);
    return;
  }
  fill(W + m->lnf_w, C, 1.0f);
  fill(W + m->lnf_b, C, 0.0f);
  if (!m->generative) {
    ot_rng_seed(&r, ot_rng_mix(seed, GROUP_HEAD));
    ot_rng_fill_normal(&r, W + m->head_w, (size_t)m->d.n_tags * C, 0.0f, INIT_STD);
    fill(W + m->head_b, (size_t)m->d.n_tags, 0.0f);
    return;
  }
  if (m->rag_m) {
    ot_rng_seed(&r, ot_rng_mix(seed, GROUP_RAG));
    ot_rng_fill_normal(&r, W + m->rag_score_w, C, 0.0f, INIT_STD);
    fill(W + m->rag_kind_b, C, 0.0f);
  }
  if (m->n_title_slots) fill(W + m->rag_title_b, C, 0.0f);
  if (m->rag_m || m->n_title_slots) {
    fill(W + m->rag_ln_w, C, 1.0f);
    fill(W + m->rag_ln_b, C, 0.0f);
  }
  if (m->prompted) {
    ot_rng_seed(&r, ot_rng_mix(seed, GROUP_PROMPT));
    ot_rng_fill_normal(&r, W + m->query, (size_t)m->n_prompts * C, 0.0f, INIT_STD);
    ot_rng_fill_normal(&r, W + m->pproj_w, C * C, 0.0f, INIT_STD);
    fill(W + m->pproj_b, C, 0.0f);
    ot_rng_fill_normal(&r, W + m->has_w, C, 0.0f, INIT_STD);
    fill(W + m->has_b, 1, 0.0f);
    ot_rng_fill_normal(&r, W + m->tproj_w, C * C, 0.0f, INIT_STD);
    fill(W + m->tproj_b, C, 0.0f);
    ot_rng_fill_normal(&r, W + m->start_w, C * C, 0.0f, INIT_STD);
    fill(W + m->start_b, C, 0.0f);
    fill(W + m->pln_w, C, 1.0f);
    fill(W + m->pln_b, C, 0.0f);
    init_stack(W, m->prompt_L, m->n_prompt_layers, &m->pblk, seed, GROUP_PROMPT_BLOCK,
               m->n_prompt_layers);
  }
  ot_rng_seed(&r, ot_rng_mix(seed, GROUP_DEC));
  ot_rng_fill_normal(&r, W + m->dwpe, (size_t)m->dec_T * C, 0.0f, INIT_STD);
  fill(W + m->dln_w, C, 1.0f);
  fill(W + m->dln_b, C, 0.0f);
  fill(W + m->out_b, (size_t)m->d.vocab, 0.0f);
  init_stack(W, m->dec.L, m->dec.n_layer, &m->dec.cfg, seed, GROUP_DEC_BLOCK, m->dec.n_layer);
}

/* Matrix-product FLOPs (2 per multiply-add, masks ignored). A GEMM's
 * backward is two GEMMs of the same size (input and weight gradients),
 * hence 3x the forward; the patch (or feature) projection has no input
 * gradient (frames and features are data), hence 2x. */
double ot_model_train_flops(const ot_model *m, int B) {
  const double C = m->C;
  double patch = 2.0 * B * m->Nv * (double)m->K * C;
  double fwd = 0.0;
  fwd += m->n_vis * ot_block_forward_flops(&m->blk, B, m->Nv, 0);
  if (m->type != OT_MODEL_JUDGE) fwd += m->n_txt * ot_block_forward_flops(&m->blk, B, m->L, 0);
  fwd += 2.0 * B * m->ngram_dim * m->C; /* txt.ngram.w */
  fwd += m->n_fuse * ot_block_forward_flops(&m->blk, B, m->S, 0);
  if (m->generative) fwd += ot_model_gen_forward_flops(m, B);
  else if (m->type == OT_MODEL_JUDGE) fwd += ot_model_judge_forward_flops(m, B);
  else fwd += 2.0 * B * C * m->d.n_tags;
  return 3.0 * fwd + 2.0 * patch;
}

#define OT_SHAPE_KEYS_COMMON                                                                      \
  "model.type", "model.visual", "model.dim", "model.heads", "model.mlp_ratio", "model.patch",      \
      "model.vis_layers",                                                                         \
      "model.txt_layers", "model.fuse_layers", "model.title_len", "model.title_ngram"
const char *const *ot_model_shape_keys(ot_cfg_model type) {
  static const char *const closed[] = {OT_SHAPE_KEYS_COMMON, NULL};
  static const char *const baseline[] = {OT_SHAPE_KEYS_COMMON, "model.dec_layers", "model.tag_len",
                                         "model.seq_len", "model.title_slots", NULL};
  static const char *const opg[] = {OT_SHAPE_KEYS_COMMON, "model.prompts", "model.prompt_layers",
                                    "model.dec_layers", "model.tag_len", "model.title_slots", NULL};
  static const char *const rag[] = {OT_SHAPE_KEYS_COMMON, "model.prompts", "model.prompt_layers",
                                    "model.dec_layers", "model.tag_len", "model.title_slots",
                                    "model.rag_m", NULL};
  static const char *const judge[] = {OT_SHAPE_KEYS_COMMON, "model.tag_len", NULL};
  switch (type) {
  case OT_MODEL_BASELINE: return baseline;
  case OT_MODEL_OPG: return opg;
  case OT_MODEL_RAG: return rag;
  case OT_MODEL_JUDGE: return judge;
  default: return closed; /* bin, asl */
  }
}
#undef OT_SHAPE_KEYS_COMMON
