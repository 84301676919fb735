/* Forward and backward of the tagger (see ot_model.h for the network).
 *
 *   frames [B,T,H,W,3] -> patch embed -> vis blocks        -> V [B,Nv,C]
 *   title  [B,L]       -> token + pos (+ txt.ngram.w @ title_ngram [B,D],
 *                         model.title_ngram) -> txt blocks (mask) -> X [B,L,C]
 *   [V ; X] [B,S,C] -> fuse blocks (key mask: visual 1, title mask)
 *   -> LN (fuse.ln) -> visual mean + title masked mean [B,C] -> head linear [B,n_tags]
 *
 * Every activation comes from the model's arena, reset at each forward;
 * the backward's gradient buffers come from the same arena and are given
 * back when it returns. */
#include "ot_model_impl.h"

#include <string.h>

#include "ot_common.h"
#include "ot_kernels.h"
#include "ot_rng.h"

/* dropout streams: one per block, distinct across the three stacks */
enum { SITE_VIS = 0x10000, SITE_TXT = 0x20000, SITE_FUSE = 0x30000 };

#define ALLOC(ptr, n) OT_MODEL_ALLOC(m, ptr, n)

int ot_model_stack_forward(ot_model *m, ot_block_acts *A, const ot_block_layout *L, int n,
                           const ot_block_config *cfg, const float *x, const uint8_t *mask, int B,
                           int T, const ot_block_memory *mem, float p, uint64_t seed,
                           uint64_t row0, int site, const float **out) {
  const float *W = ot_params_values_const(m->params);
  for (int l = 0; l < n; l++) {
    int rc = ot_block_forward(&A[l], cfg, &L[l], W, x, mask, B, T, mem, p,
                              ot_rng_mix(seed, (uint64_t)(site + l)), row0, m->training,
                              m->arena);
    if (rc) return rc;
    x = A[l].out;
  }
  *out = x;
  return OT_OK;
}

static int stack_forward(ot_model *m, ot_block_acts *A, const ot_block_layout *L, int n,
                         const float *x, const uint8_t *mask, int B, int T, float p,
                         uint64_t seed, int site, const float **out) {
  return ot_model_stack_forward(m, A, L, n, &m->blk, x, mask, B, T, NULL, p, seed,
                                (uint64_t)m->item0, site, out);
}

static int check_batch(const ot_model *m, const ot_batch *b, int with_loss) {
  if (b->B < 1 || b->B > m->d.max_batch)
    return ot_fail(OT_EINVAL, "model: batch of %d items (max_batch %d)", b->B, m->d.max_batch);
  if (m->features && !b->features)
    return ot_fail(OT_EINVAL, "model: model.visual is 'features' but the batch has none");
  if (m->ngram_dim && !b->title_ngram)
    return ot_fail(OT_EINVAL, "model: model.title_ngram is %d but the batch has no title n-gram "
                   "vectors", m->ngram_dim);
  const int judge = m->type == OT_MODEL_JUDGE; /* reads no title */
  const size_t n = judge ? 0 : (size_t)b->B * m->L;
  for (size_t i = 0; i < n; i++)
    if (b->title[i] < 0 || b->title[i] >= m->d.vocab)
      return ot_fail(OT_EINVAL, "model: title token %d out of the vocabulary [0, %d)",
                     (int)b->title[i], m->d.vocab);
  if (!with_loss) return OT_OK;
  if (m->generative || judge) return ot_model_check_tags(m, b);
  if (!b->targets) return ot_fail(OT_EINVAL, "model: a loss needs targets");
  return OT_OK;
}

/* visual encoder: frames -> patches (or features) -> vis blocks -> *vis [B,Nv,C] */
static int vis_forward(ot_model *m, const ot_batch *b, float p, uint64_t seed, const float **vis) {
  const int B = b->B, C = m->C, Nv = m->Nv;
  const float *W = ot_params_values_const(m->params);
  ALLOC(m->patches, (size_t)B * Nv * m->K);
  ALLOC(m->vis_emb, (size_t)B * Nv * C);
  if (m->features)
    ot_feature_embed_forward(m->vis_emb, m->patches, b->features, W + m->patch_w, W + m->patch_b,
                             W + m->pos_time, B, m->d.T, m->K, C);
  else
    ot_patch_embed_forward(m->vis_emb, m->patches, b->frames, W + m->patch_w, W + m->patch_b,
                           W + m->pos_space, W + m->pos_time, B, m->d.T, m->d.H, m->d.W, m->P, C);
  return stack_forward(m, m->vis_A, m->vis_L, m->n_vis, m->vis_emb, NULL, B, Nv, p, seed,
                       SITE_VIS, vis);
}

/* judge: the visual tower and the judge's part (ot_model_judge.c) */
static int judge_forward(ot_model *m, const ot_batch *b, float p, uint64_t seed, float *loss) {
  const float *vis;
  int rc = vis_forward(m, b, p, seed, &vis);
  if (rc) return rc;
  m->vis_out = vis, m->txt_out = NULL, m->B_last = b->B;
  if ((rc = ot_model_judge_forward(m, vis, b, p, seed, loss))) return rc;
  m->have_targets = loss != NULL;
  m->after_forward = ot_arena_save(m->arena);
  return OT_OK;
}

/* batch -> logits [B,n_tags] (and the loss) */
int ot_model_forward(ot_model *m, const ot_batch *b, int training, uint64_t dropout_seed,
                     float *loss) {
  int rc = check_batch(m, b, loss != NULL);
  if (rc) return rc;
  ot_arena_reset(m->arena);
  m->logits = NULL; /* set again only by a forward that completes */
  m->have_targets = 0;
  m->g = NULL;
  m->j = NULL;
  const int B = b->B, C = m->C, L = m->L, Nv = m->Nv, S = m->S, NT = m->d.n_tags;
  const float p = training ? m->dropout : 0.0f;
  const float *W = ot_params_values_const(m->params);
  m->B = B;
  m->item0 = b->item0;
  m->loss_scale = b->loss_scale;
  if (m->type == OT_MODEL_JUDGE) return judge_forward(m, b, p, dropout_seed, loss);

  /* inputs copied: the caller may reuse its batch before the backward */
  ALLOC(m->title, (size_t)B * L);
  ALLOC(m->txt_mask, (size_t)B * L);
  ALLOC(m->fuse_mask, (size_t)B * S);
  memcpy(m->title, b->title, (size_t)B * L * sizeof *m->title);
  for (size_t i = 0; i < (size_t)B * L; i++) m->txt_mask[i] = b->title_mask[i] != 0;
  for (size_t i = 0; i < (size_t)B; i++) {
    memset(m->fuse_mask + i * S, 1, (size_t)Nv);
    memcpy(m->fuse_mask + i * S + Nv, m->txt_mask + i * L, (size_t)L);
  }
  m->targets = NULL;
  if (b->targets && !m->generative) {
    ALLOC(m->targets, (size_t)B * NT);
    memcpy(m->targets, b->targets, (size_t)B * NT * sizeof(float));
  }

  /* visual encoder: frames -> [B,Nv,C] */
  const float *vis, *txt, *fused;
  if ((rc = vis_forward(m, b, p, dropout_seed, &vis))) return rc;

  /* title encoder: tokens -> [B,L,C] */
  ALLOC(m->txt_emb, (size_t)B * L * C);
  ot_embed_forward(m->txt_emb, m->title, W + m->wte, W + m->wpe, B, L, C);
  if (m->ngram_dim) { /* the title's n-gram vector, projected, joins every token */
    const int D = m->ngram_dim;
    float *proj;
    ALLOC(m->ngram_in, (size_t)B * D);
    ALLOC(proj, (size_t)B * C);
    memcpy(m->ngram_in, b->title_ngram, (size_t)B * D * sizeof(float));
    ot_linear_forward(proj, m->ngram_in, W + m->ngram_w, NULL, B, D, C);
    for (size_t i = 0; i < (size_t)B; i++)
      for (int l = 0; l < L; l++)
        ot_add_inplace(m->txt_emb + (i * L + l) * C, proj + i * C, (size_t)C);
  }
  rc = stack_forward(m, m->txt_A, m->txt_L, m->n_txt, m->txt_emb, m->txt_mask, B, L, p,
                     dropout_seed, SITE_TXT, &txt);
  if (rc) return rc;

  /* hybrid encoder over [visual ; title] -> [B,S,C] */
  ALLOC(m->fused_in, (size_t)B * S * C);
  for (size_t i = 0; i < (size_t)B; i++) {
    memcpy(m->fused_in + i * S * C, vis + i * Nv * C, (size_t)Nv * C * sizeof(float));
    memcpy(m->fused_in + (i * S + Nv) * C, txt + i * L * C, (size_t)L * C * sizeof(float));
  }
  rc = stack_forward(m, m->fuse_A, m->fuse_L, m->n_fuse, m->fused_in, m->fuse_mask, B, S, p,
                     dropout_seed, SITE_FUSE, &fused);
  if (rc) return rc;
  m->fused_out = (float *)fused;
  m->vis_out = vis, m->txt_out = txt, m->B_last = B;

  /* final LN per token, masked mean pool, head */
  const size_t N = (size_t)B * S;
  ALLOC(m->lnf, N * C);
  ALLOC(m->lnf_mean, N);
  ALLOC(m->lnf_rstd, N);
  ALLOC(m->pooled, (size_t)B * C);
  float *logits = NULL;
  if (!m->generative) ALLOC(logits, (size_t)B * NT);
  ot_layernorm_forward(m->lnf, m->lnf_mean, m->lnf_rstd, fused, W + m->lnf_w, W + m->lnf_b,
                       (int)N, C);
  /* pooled = mean of the visual tokens + mean of the valid title tokens:
   * each modality weighs the same whatever its token count (64 patches in
   * one mean would drown a 4-token title, and the head would learn to
   * recognise training pictures rather than read titles) */
  float *title_mean;
  ALLOC(title_mean, (size_t)B * C);
  for (size_t i = 0; i < (size_t)B; i++) {
    ot_meanpool_forward(m->pooled + i * C, m->lnf + i * S * C, NULL, 1, Nv, C);
    ot_meanpool_forward(title_mean + i * C, m->lnf + (i * S + Nv) * C, m->txt_mask + i * L, 1, L, C);
  }
  ot_add_inplace(m->pooled, title_mean, (size_t)B * C);
  if (m->generative) {
    rc = ot_model_gen_forward(m, b, p, dropout_seed, loss != NULL, loss);
    if (rc) return rc;
    m->have_targets = loss != NULL;
    m->after_forward = ot_arena_save(m->arena);
    return OT_OK;
  }
  ot_linear_forward(logits, m->pooled, W + m->head_w, W + m->head_b, B, C, NT);
  m->logits = logits;
  m->have_targets = b->targets != NULL;

  if (loss) {
    /* the loss kernels average over items; the contract weights each item
     * by loss_scale, so scale the mean by loss_scale * B */
    double mean = m->type == OT_MODEL_ASL ? ot_asl_forward(m->logits, m->targets, B, NT, &m->asl)
                                         : ot_bce_forward(m->logits, m->targets, B, NT);
    *loss = (float)(mean * m->loss_scale * B);
  }
  m->after_forward = ot_arena_save(m->arena);
  return OT_OK;
}

float *ot_model_stack_backward(ot_model *m, const ot_block_acts *A, const ot_block_layout *L,
                               int n, const ot_block_config *cfg, float *dout, float *spare,
                               size_t len, float *dmem) {
  const float *W = ot_params_values_const(m->params);
  float *G = ot_params_grads(m->params);
  for (int l = n - 1; l >= 0; l--) {
    memset(spare, 0, len * sizeof(float));
    int rc = ot_block_backward(spare, dmem, G, dout, &A[l], cfg, &L[l], W, m->arena);
    /* the signature has no status: an arena that cannot grow here is fatal */
    if (rc) ot_assert_fail(ot_errmsg(), __FILE__, __LINE__);
    float *t = dout;
    dout = spare;
    spare = t;
  }
  return dout;
}

static float *stack_backward(ot_model *m, const ot_block_acts *A, const ot_block_layout *L, int n,
                             float *dout, float *spare, size_t len) {
  return ot_model_stack_backward(m, A, L, n, &m->blk, dout, spare, len, NULL);
}

float *ot_model_zeros(ot_model *m, size_t n) {
  float *p = ot_arena_zeros(m->arena, n);
  if (!p) ot_assert_fail("model backward: arena cannot grow (out of memory)", __FILE__, __LINE__);
  return p;
}

static float *zeros_or_die(ot_arena *a, size_t n) {
  float *p = ot_arena_zeros(a, n);
  if (!p) ot_assert_fail("model backward: arena cannot grow (out of memory)", __FILE__, __LINE__);
  return p;
}

/* dvis [B,Nv,C] (clobbered, with the spare dvis2) -> the visual encoder's parameters */
static void vis_backward(ot_model *m, float *dvis, float *dvis2) {
  float *G = ot_params_grads(m->params);
  const int B = m->B, C = m->C, Nv = m->Nv;
  dvis = stack_backward(m, m->vis_A, m->vis_L, m->n_vis, dvis, dvis2, (size_t)B * Nv * C);
  ot_patch_embed_backward(G + m->patch_w, G + m->patch_b, m->features ? NULL : G + m->pos_space,
                          G + m->pos_time, dvis, m->patches, B, m->d.T, m->Np, m->K, C);
}

void ot_model_backward(ot_model *m) {
  if (m->type == OT_MODEL_JUDGE) {
    OT_ASSERT(m->training && m->have_targets && m->j);
    ot_arena_restore(m->arena, m->after_forward);
    const size_t n = (size_t)m->B * m->Nv * m->C;
    float *dvis = zeros_or_die(m->arena, n), *dvis2 = zeros_or_die(m->arena, n);
    ot_model_judge_backward(m, dvis);
    vis_backward(m, dvis, dvis2);
    ot_arena_restore(m->arena, m->after_forward);
    return;
  }
  OT_ASSERT(m->training && m->have_targets && (m->logits || m->g));
  const int B = m->B, C = m->C, L = m->L, Nv = m->Nv, S = m->S, NT = m->d.n_tags;
  const float *W = ot_params_values_const(m->params);
  float *G = ot_params_grads(m->params);
  ot_arena *a = m->arena;
  ot_arena_restore(a, m->after_forward);

  /* d1: the gradient of the fused tokens after the final LN [B,S,C] */
  const size_t N = (size_t)B * S;
  float *d0 = zeros_or_die(a, N * C), *d1 = zeros_or_die(a, N * C);
  if (m->generative) {
    ot_model_gen_backward(m, d1);
  } else {
    /* head: logits [B,NT] -> pooled [B,C] -> the tokens it averages */
    float *dlogits = zeros_or_die(a, (size_t)B * NT);
    const float dloss = m->loss_scale * (float)B;
    if (m->type == OT_MODEL_ASL)
      ot_asl_backward(dlogits, dloss, m->logits, m->targets, B, NT, &m->asl);
    else
      ot_bce_backward(dlogits, dloss, m->logits, m->targets, B, NT);
    float *dpooled = zeros_or_die(a, (size_t)B * C);
    ot_linear_backward(dpooled, G + m->head_w, G + m->head_b, dlogits, m->pooled, W + m->head_w,
                       B, C, NT);
    for (size_t i = 0; i < (size_t)B; i++) {
      ot_meanpool_backward(d1 + i * S * C, dpooled + i * C, NULL, 1, Nv, C);
      ot_meanpool_backward(d1 + (i * S + Nv) * C, dpooled + i * C, m->txt_mask + i * L, 1, L, C);
    }
  }

  /* final LN: fused tokens -> fused_out [B,S,C] */
  ot_layernorm_backward(d0, G + m->lnf_w, G + m->lnf_b, d1, m->fused_out, W + m->lnf_w,
                        m->lnf_mean, m->lnf_rstd, (int)N, C);

  /* hybrid encoder, then split [B,S,C] into visual [B,Nv,C] and title [B,L,C] */
  float *dfused = stack_backward(m, m->fuse_A, m->fuse_L, m->n_fuse, d0, d1, N * C);
  float *dvis = zeros_or_die(a, (size_t)B * Nv * C), *dvis2 = zeros_or_die(a, (size_t)B * Nv * C);
  float *dtxt = zeros_or_die(a, (size_t)B * L * C), *dtxt2 = zeros_or_die(a, (size_t)B * L * C);
  for (size_t i = 0; i < (size_t)B; i++) {
    memcpy(dvis + i * Nv * C, dfused + i * S * C, (size_t)Nv * C * sizeof(float));
    memcpy(dtxt + i * L * C, dfused + (i * S + Nv) * C, (size_t)L * C * sizeof(float));
  }

  /* encoders and their embeddings */
  vis_backward(m, dvis, dvis2);
  dtxt = stack_backward(m, m->txt_A, m->txt_L, m->n_txt, dtxt, dtxt2, (size_t)B * L * C);
  ot_embed_backward(G + m->wte, G + m->wpe, dtxt, m->title, B, L, C);
  if (m->ngram_dim) {
    float *dproj = zeros_or_die(a, (size_t)B * C);
    for (size_t i = 0; i < (size_t)B; i++)
      for (int l = 0; l < L; l++) ot_add_inplace(dproj + i * C, dtxt + (i * L + l) * C, (size_t)C);
    ot_linear_backward(NULL, G + m->ngram_w, NULL, dproj, m->ngram_in, W + m->ngram_w, B,
                       m->ngram_dim, C);
  }

  ot_arena_restore(a, m->after_forward);
}
