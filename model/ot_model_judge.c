/* judge: a CLIP-style image-tag dual encoder, the similarity of ot-eval's
 * open-set Tag Gain (eval.judge). It reuses the tagger's towers and opg's
 * tag embedding and adds two projections:
 *
 *   image  v_i = L2norm(judge.vproj(mean of the visual encoder's Nv tokens))
 *          (visual tower only: no title, no fusion — it must judge the image)
 *   tag    t_u = L2norm(judge.tproj(masked mean of the title encoder over the
 *          tag's tokens)) (ot_model_tags_forward, shared with opg)
 *
 * Loss of a pass of B items. The columns u = 1..U are the pass's distinct
 * tags (equal token sequences share one); (i, u) is positive when item i
 * carries tag u. P(i) = {u : (i,u) positive}, Q(u) = {i : (i,u) positive},
 * I = {i : P(i) non-empty}, s_iu = <v_i, t_u> / judge_tau:
 *
 *   L_i2t = 1/|I| sum_{i in I} 1/|P(i)| sum_{u in P(i)} -log( e^{s_iu} / sum_{u'} e^{s_iu'} )
 *   L_t2i = 1/U   sum_u        1/|Q(u)| sum_{i in Q(u)} -log( e^{s_iu} / sum_{i'} e^{s_i'u} )
 *   loss  = loss_scale * B * (L_i2t + L_t2i) / 2        (0 when U = 0)
 *
 * With loss_scale = 1/global batch, a single pass over the global batch gives
 * the symmetric CLIP loss (L_i2t + L_t2i)/2, and passes (micro-batches, ranks)
 * each weigh by their item count. The negatives are the pass's own, as for
 * opg's InfoNCE: the same passes give the same gradients on 1 or N ranks, so
 * a judge trains with train.micro_batch = train.batch / ranks. */
#include "ot_model_impl.h"

#include <math.h>
#include <string.h>

#include "bpe.h"
#include "ot_common.h"
#include "ot_kernels.h"
#include "ot_rng.h"

#define ALLOC(ptr, n) OT_MODEL_ALLOC(m, ptr, n)

/* Texts per tag-encoder pass in ot_model_judge_embed_text (bounds the arena). */
#define EMBED_CHUNK 256

struct ot_model_judge_state {
  float *v_pool, *v_proj, *v_hat; /* [B,C] */
  float *pr, *pc;                 /* [B,U] softmax of s over each row (tags), each column (items) */
  uint8_t *pos;                   /* [B,U] 1 = positive */
  int32_t *n_row, *n_col;         /* [B] |P(i)|, [U] |Q(u)| */
  int n_rows;                     /* |I| */
  double l_i2t, l_t2i;
};

/* s [B,U] = v t^T / tau -> pr, pc and the two mean losses */
static void nce_forward(ot_model_judge_state *j, const float *v, const float *t, int B, int U,
                        int C, float tau, float *s) {
  for (int i = 0; i < B; i++)
    for (int u = 0; u < U; u++) {
      float dot = 0.0f;
      for (int c = 0; c < C; c++) dot += v[(size_t)i * C + c] * t[(size_t)u * C + c];
      s[(size_t)i * U + u] = dot / tau;
    }
  double l_i2t = 0.0, l_t2i = 0.0;
  for (int i = 0; i < B; i++) { /* rows: each image against the pass's tags */
    const float *si = s + (size_t)i * U;
    float mx = si[0];
    for (int u = 1; u < U; u++) mx = si[u] > mx ? si[u] : mx;
    double z = 0.0;
    for (int u = 0; u < U; u++) z += exp((double)si[u] - mx);
    const double lse = mx + log(z);
    double sum = 0.0;
    for (int u = 0; u < U; u++) {
      j->pr[(size_t)i * U + u] = (float)exp((double)si[u] - lse);
      if (j->pos[(size_t)i * U + u]) sum += lse - si[u];
    }
    if (j->n_row[i]) l_i2t += sum / j->n_row[i];
  }
  for (int u = 0; u < U; u++) { /* columns: each tag against the pass's images */
    float mx = s[u];
    for (int i = 1; i < B; i++) mx = s[(size_t)i * U + u] > mx ? s[(size_t)i * U + u] : mx;
    double z = 0.0;
    for (int i = 0; i < B; i++) z += exp((double)s[(size_t)i * U + u] - mx);
    const double lse = mx + log(z);
    double sum = 0.0;
    for (int i = 0; i < B; i++) {
      const float x = s[(size_t)i * U + u];
      j->pc[(size_t)i * U + u] = (float)exp((double)x - lse);
      if (j->pos[(size_t)i * U + u]) sum += lse - x;
    }
    l_t2i += sum / j->n_col[u]; /* every column has an item */
  }
  j->l_i2t = j->n_rows ? l_i2t / j->n_rows : 0.0;
  j->l_t2i = U ? l_t2i / U : 0.0;
}

/* dloss (the weight of (L_i2t + L_t2i)/2) -> dv [B,C] +=, dt [U,C] += */
static void nce_backward(const ot_model_judge_state *j, float dloss, const float *v,
                         const float *t, int B, int U, int C, float tau, float *ds, float *dv,
                         float *dt) {
  const float wr = j->n_rows ? 0.5f * dloss / (float)j->n_rows : 0.0f;
  const float wc = 0.5f * dloss / (float)U;
  for (int i = 0; i < B; i++)
    for (int u = 0; u < U; u++) {
      const size_t k = (size_t)i * U + u;
      float d = wc * (j->pc[k] - (j->pos[k] ? 1.0f / (float)j->n_col[u] : 0.0f));
      if (j->n_row[i]) d += wr * (j->pr[k] - (j->pos[k] ? 1.0f / (float)j->n_row[i] : 0.0f));
      ds[k] = d / tau;
    }
  for (int i = 0; i < B; i++)
    for (int u = 0; u < U; u++) {
      const float d = ds[(size_t)i * U + u];
      if (d == 0.0f) continue;
      for (int c = 0; c < C; c++) {
        dv[(size_t)i * C + c] += d * t[(size_t)u * C + c];
        dt[(size_t)u * C + c] += d * v[(size_t)i * C + c];
      }
    }
}

/* the pass's images [B,Nv,C] -> v_hat [B,C] */
static int image_forward(ot_model *m, ot_model_judge_state *j, const float *vis, int B) {
  const int C = m->C;
  const float *W = ot_params_values_const(m->params);
  ALLOC(j->v_pool, (size_t)B * C);
  ALLOC(j->v_proj, (size_t)B * C);
  ALLOC(j->v_hat, (size_t)B * C);
  ot_meanpool_forward(j->v_pool, vis, NULL, B, m->Nv, C);
  ot_linear_forward(j->v_proj, j->v_pool, W + m->jvproj_w, W + m->jvproj_b, B, C, C);
  ot_l2norm_forward(j->v_hat, j->v_proj, B, C);
  return OT_OK;
}

int ot_model_judge_forward(ot_model *m, const float *vis, const ot_batch *b, float p,
                           uint64_t seed, float *loss) {
  const int B = m->B, C = m->C;
  ot_model_judge_state *j;
  ALLOC(j, 1);
  memset(j, 0, sizeof *j);
  m->j = j;
  int rc = image_forward(m, j, vis, B);
  if (rc || !loss) return rc;

  ot_model_gen_state *g;
  ALLOC(g, 1);
  memset(g, 0, sizeof *g);
  m->g = g;
  /* the pass's distinct tags: dropout masks keyed by the pass, as opg's */
  if ((rc = ot_model_tags_forward(m, g, b, p, ot_rng_mix(seed, (uint64_t)m->item0)))) return rc;
  const int U = g->U;
  ALLOC(j->pos, (size_t)B * U + 1);
  ALLOC(j->n_row, B);
  ALLOC(j->n_col, U + 1);
  ALLOC(j->pr, (size_t)B * U + 1);
  ALLOC(j->pc, (size_t)B * U + 1);
  memset(j->pos, 0, (size_t)B * U);
  memset(j->n_col, 0, (size_t)U * sizeof *j->n_col);
  j->n_rows = 0;
  for (int i = 0; i < B; i++) {
    j->n_row[i] = 0;
    for (int k = g->item_tags[i]; k < g->item_tags[i + 1]; k++) {
      const int u = g->tag_col[k];
      if (j->pos[(size_t)i * U + u]) continue; /* a tag given twice to one item */
      j->pos[(size_t)i * U + u] = 1;
      j->n_row[i]++, j->n_col[u]++;
    }
    j->n_rows += j->n_row[i] > 0;
  }
  float *s;
  ALLOC(s, (size_t)B * U + 1);
  if (U) nce_forward(j, j->v_hat, g->t_hat, B, U, C, m->judge_tau, s);
  g->with_loss = 1;
  *loss = (float)(m->loss_scale * B * 0.5 * (j->l_i2t + j->l_t2i));
  return OT_OK;
}

void ot_model_judge_backward(ot_model *m, float *dvis) {
  const ot_model_judge_state *j = m->j;
  ot_model_gen_state *g = m->g;
  OT_ASSERT(j && g && g->with_loss);
  const int B = m->B, C = m->C, U = g->U;
  if (!U) return;
  const float *W = ot_params_values_const(m->params);
  float *G = ot_params_grads(m->params);
  float *ds = ot_model_zeros(m, (size_t)B * U), *dv = ot_model_zeros(m, (size_t)B * C);
  float *dt = ot_model_zeros(m, (size_t)U * C);
  nce_backward(j, m->loss_scale * (float)B, j->v_hat, g->t_hat, B, U, C, m->judge_tau, ds, dv, dt);
  float *dproj = ot_model_zeros(m, (size_t)B * C), *dpool = ot_model_zeros(m, (size_t)B * C);
  ot_l2norm_backward(dproj, dv, j->v_proj, B, C);
  ot_linear_backward(dpool, G + m->jvproj_w, G + m->jvproj_b, dproj, j->v_pool, W + m->jvproj_w,
                     B, C, C);
  ot_meanpool_backward(dvis, dpool, NULL, B, m->Nv, C);
  ot_model_tags_backward(m, g, dt);
}

double ot_model_judge_forward_flops(const ot_model *m, int B) {
  const double C = m->C;
  const ot_model_gen_state *g = m->g;
  const int have = m->type == OT_MODEL_JUDGE && g && g->with_loss && m->B > 0;
  /* before a forward with a loss: 4 distinct tags per item of tag_len/2 tokens */
  const double U = have ? g->U * (double)B / m->B : 4.0 * B;
  const double Lt = have ? g->Lt : m->tag_len / 2.0;
  double f = 2.0 * B * C * C + 2.0 * U * C * C + 2.0 * B * U * C;
  f += m->n_txt * ot_block_forward_flops(&m->blk, (int)(U + 0.5), (int)(Lt + 0.5), 0);
  return f;
}

/* ---- public accessors ------------------------------------------------------------------ */

int ot_model_judge_image(const ot_model *m, float *out) {
  if (m->type != OT_MODEL_JUDGE || !m->j || !m->j->v_hat)
    return ot_fail(OT_EINVAL, "model: no judge forward to read image vectors from");
  memcpy(out, m->j->v_hat, (size_t)m->B_last * m->C * sizeof *out);
  return OT_OK;
}

int ot_model_judge_embed_text(ot_model *m, const int32_t *offsets, const int32_t *tokens, int n,
                              float *out) {
  if (m->type != OT_MODEL_JUDGE)
    return ot_fail(OT_EINVAL, "model: only model.type judge embeds tag texts");
  if (n < 0) return ot_fail(OT_EINVAL, "model: %d texts", n);
  for (int k = 0; k < n; k++)
    if (offsets[k + 1] <= offsets[k])
      return ot_fail(OT_EINVAL, "model: text %d has no tokens", k);
  const int C = m->C;
  for (int k0 = 0; k0 < n; k0 += EMBED_CHUNK) {
    const int k1 = n - k0 < EMBED_CHUNK ? n : k0 + EMBED_CHUNK;
    /* one pseudo-item holding the chunk's texts, offsets rebased to 0 */
    int32_t item[2] = {0, k1 - k0}, off[EMBED_CHUNK + 1];
    for (int k = k0; k <= k1; k++) off[k - k0] = offsets[k] - offsets[k0];
    static const char *const names[4] = {"item", "offsets", "tokens", "text"};
    int rc = ot_model_check_lists(m, 1, item, off, tokens + offsets[k0], names);
    if (rc) return rc;
    const ot_batch b = {.B = 1, .item_tags = item, .tag_offsets = off,
                        .tag_tokens = tokens + offsets[k0]};
    ot_arena_reset(m->arena);
    m->j = NULL, m->g = NULL, m->have_targets = 0, m->B_last = 0;
    ot_model_gen_state *g;
    ALLOC(g, 1);
    memset(g, 0, sizeof *g);
    if ((rc = ot_model_tags_forward(m, g, &b, 0.0f, 0))) return rc;
    for (int k = k0; k < k1; k++)
      memcpy(out + (size_t)k * C, g->t_hat + (size_t)g->tag_col[k - k0] * C, (size_t)C * sizeof *out);
  }
  return OT_OK;
}

int ot_model_needs_tags(const ot_model *m) { return m->generative || m->type == OT_MODEL_JUDGE; }
