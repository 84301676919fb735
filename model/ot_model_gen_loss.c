/* The generative models' training pass after the encoders (see ot_model.h):
 *
 *   opg       queries [K,C] -> prompt blocks (cross to the fused tokens) -> LN
 *             -> prompts; has-tag logits; distinct batch tags -> title
 *             encoder -> masked mean -> tag.proj -> L2 norm; prompts ->
 *             prompt.proj -> L2 norm; Hungarian matching per item; InfoNCE
 *             and BCE; matched prompts decode their tags
 *   baseline  one sequence per item: BOS t1 SEP t2 ... -> t1 SEP t2 ... EOS
 *
 * then the decoder over the fused tokens, dec.ln on the positions that have
 * a target, logits = h txt.wte^T + dec.out.b, cross-entropy. Every loss is a
 * sum over items (and over an item's prompts / tokens), times loss_scale. */
#include "ot_model_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bpe.h"
#include "hungarian.h"
#include "ot_common.h"
#include "ot_kernels.h"
#include "ot_rng.h"

/* dropout streams, distinct from the encoders' (ot_model_pass.c) */
enum { SITE_PROMPT = 0x40000, SITE_TAGTXT = 0x50000, SITE_DEC = 0x60000 };

#define ALLOC(ptr, n) OT_MODEL_ALLOC(m, ptr, n)

int ot_model_check_lists(const ot_model *m, int B, const int32_t *item, const int32_t *off,
                         const int32_t *tok, const char *const names[4]) {
  if (item[0] != 0) return ot_fail(OT_EINVAL, "model: %s[0] must be 0", names[0]);
  for (int i = 0; i < B; i++)
    if (item[i + 1] < item[i])
      return ot_fail(OT_EINVAL, "model: %s decreases at item %d", names[0], i);
  const int n = item[B];
  if (off[0] != 0) return ot_fail(OT_EINVAL, "model: %s[0] must be 0", names[1]);
  for (int j = 0; j < n; j++)
    if (off[j + 1] < off[j])
      return ot_fail(OT_EINVAL, "model: %s decreases at %s %d", names[1], names[3], j);
  if (off[n] > 0 && !tok) return ot_fail(OT_EINVAL, "model: %s is NULL", names[2]);
  for (int32_t i = 0; i < off[n]; i++)
    if (tok[i] < OT_BPE_N_SPECIAL || tok[i] >= m->d.vocab)
      return ot_fail(OT_EINVAL, "model: %s token %d outside [%d, %d) (special or beyond the "
                     "vocabulary)", names[3], (int)tok[i], OT_BPE_N_SPECIAL, m->d.vocab);
  return OT_OK;
}

int ot_model_check_tags(const ot_model *m, const ot_batch *b) {
  if (!b->item_tags || !b->tag_offsets)
    return ot_fail(OT_EINVAL, "model: a generative loss needs the batch's tags (item_tags, "
                   "tag_offsets, tag_tokens)");
  static const char *const names[4] = {"item_tags", "tag_offsets", "tag_tokens", "tag"};
  return ot_model_check_lists(m, b->B, b->item_tags, b->tag_offsets, b->tag_tokens, names);
}

/* ---- the batch's tags ------------------------------------------------------------ */

/* Copy the batch's tags, each cut to tag_len tokens. */
static int copy_tags(ot_model *m, ot_model_gen_state *g, const ot_batch *b) {
  const int B = b->B, n = b->item_tags[B];
  g->n_tags = n;
  ALLOC(g->item_tags, B + 1);
  ALLOC(g->tag_off, n + 1);
  memcpy(g->item_tags, b->item_tags, (size_t)(B + 1) * sizeof(int32_t));
  size_t total = 0;
  for (int j = 0; j < n; j++) {
    int len = b->tag_offsets[j + 1] - b->tag_offsets[j];
    total += (size_t)(len < m->tag_len ? len : m->tag_len);
  }
  ALLOC(g->tag_tok, total);
  g->tag_off[0] = 0;
  for (int j = 0; j < n; j++) {
    int len = b->tag_offsets[j + 1] - b->tag_offsets[j];
    if (len > m->tag_len) len = m->tag_len;
    if (len)
      memcpy(g->tag_tok + g->tag_off[j], b->tag_tokens + b->tag_offsets[j],
             (size_t)len * sizeof(int32_t));
    g->tag_off[j + 1] = g->tag_off[j] + len;
  }
  return OT_OK;
}

static uint64_t hash_tokens(const int32_t *t, int n) {
  uint64_t h = 1469598103934665603ull ^ (uint64_t)n;
  for (int i = 0; i < n; i++) h = (h ^ (uint32_t)t[i]) * 1099511628211ull;
  return h;
}

/* Distinct tags of the batch (equal token sequences share a column, so the
 * same tag on two items is one InfoNCE class, not a false negative), in
 * order of first occurrence. O(n_tags * U) hash comparisons: ~1e5 for a
 * batch of 64 emoji. */
static int distinct_tags(ot_model *m, ot_model_gen_state *g) {
  const int n = g->n_tags;
  uint64_t *h;
  int32_t *first; /* [U] the first tag of each column */
  ALLOC(g->tag_col, n);
  ALLOC(h, n);
  ALLOC(first, n);
  int U = 0, Lt = 1;
  for (int j = 0; j < n; j++) {
    const int32_t *t = g->tag_tok + g->tag_off[j];
    const int len = g->tag_off[j + 1] - g->tag_off[j];
    h[j] = hash_tokens(t, len);
    int col = -1;
    for (int u = 0; u < U && col < 0; u++) {
      const int f = first[u];
      if (h[f] == h[j] && g->tag_off[f + 1] - g->tag_off[f] == len &&
          !memcmp(g->tag_tok + g->tag_off[f], t, (size_t)len * sizeof *t))
        col = u;
    }
    if (col < 0) {
      col = U;
      first[U++] = j;
      if (len > Lt) Lt = len;
    }
    g->tag_col[j] = col;
  }
  g->U = U, g->Lt = Lt;
  ALLOC(g->col_tok, (size_t)U * Lt);
  ALLOC(g->col_mask, (size_t)U * Lt);
  for (int u = 0; u < U; u++) {
    const int f = first[u], len = g->tag_off[f + 1] - g->tag_off[f];
    for (int i = 0; i < Lt; i++) {
      g->col_tok[(size_t)u * Lt + i] = i < len ? g->tag_tok[g->tag_off[f] + i] : OT_BPE_PAD;
      g->col_mask[(size_t)u * Lt + i] = i < len;
    }
  }
  return OT_OK;
}

/* ---- opg: prompts, tag embeddings, matching -------------------------------------- */

static int prompts_forward(ot_model *m, ot_model_gen_state *g, float p, uint64_t seed) {
  const int B = m->B, K = m->n_prompts, C = m->C;
  const size_t R = (size_t)B * K;
  const float *W = ot_params_values_const(m->params);
  ALLOC(g->pr_in, R * C);
  for (int b = 0; b < B; b++)
    memcpy(g->pr_in + (size_t)b * K * C, W + m->query, (size_t)K * C * sizeof(float));
  const ot_block_memory mem = ot_model_dec_memory(m, NULL); /* prompt b reads item b */
  int rc = ot_model_stack_forward(m, m->prompt_A, m->prompt_L, m->n_prompt_layers, &m->pblk,
                                  g->pr_in, NULL, B, K, &mem, p, seed, (uint64_t)m->item0,
                                  SITE_PROMPT, &g->pr_out);
  if (rc) return rc;
  ALLOC(g->pr, R * C);
  ALLOC(g->pr_mean, R);
  ALLOC(g->pr_rstd, R);
  ALLOC(g->has, R);
  ot_layernorm_forward(g->pr, g->pr_mean, g->pr_rstd, g->pr_out, W + m->pln_w, W + m->pln_b,
                       (int)R, C);
  ot_linear_forward(g->has, g->pr, W + m->has_w, W + m->has_b, (int)R, C, 1);
  return OT_OK;
}

static int tag_embed_forward(ot_model *m, ot_model_gen_state *g, float p, uint64_t seed) {
  const int U = g->U, Lt = g->Lt, C = m->C;
  const float *W = ot_params_values_const(m->params);
  ALLOC(g->t_emb, (size_t)U * Lt * C);
  ALLOC(g->t_pool, (size_t)U * C);
  ALLOC(g->t_proj, (size_t)U * C);
  ALLOC(g->t_hat, (size_t)U * C);
  if (U == 0) return OT_OK;
  ot_embed_forward(g->t_emb, g->col_tok, W + m->wte, W + m->wpe, U, Lt, C);
  int rc = ot_model_stack_forward(m, m->tagtxt_A, m->txt_L, m->n_txt, &m->blk, g->t_emb,
                                  g->col_mask, U, Lt, NULL, p, seed, 0, SITE_TAGTXT, &g->t_out);
  if (rc) return rc;
  ot_meanpool_forward(g->t_pool, g->t_out, g->col_mask, U, Lt, C);
  ot_linear_forward(g->t_proj, g->t_pool, W + m->tproj_w, W + m->tproj_b, U, C, C);
  ot_l2norm_forward(g->t_hat, g->t_proj, U, C);
  return OT_OK;
}

static int check_fixed_match(const ot_model *m, const ot_model_gen_state *g) {
  if (m->n_fixed_match != g->n_tags)
    return ot_fail(OT_EINVAL, "model: the fixed matching has %d tags, the batch %d",
                   m->n_fixed_match, g->n_tags);
  for (int b = 0; b < m->B; b++)
    for (int j = g->item_tags[b]; j < g->item_tags[b + 1]; j++) {
      const int k = m->fixed_match[j];
      if (k < -1 || k >= m->n_prompts)
        return ot_fail(OT_EINVAL, "model: fixed matching: prompt %d of tag %d out of range", k, j);
      for (int i = g->item_tags[b]; i < j && k >= 0; i++)
        if (m->fixed_match[i] == k)
          return ot_fail(OT_EINVAL, "model: fixed matching gives prompt %d two tags of item %d",
                         k, b);
    }
  return OT_OK;
}

/* The decoder's first step from every prompt of the pass, without dropout:
 * *logits [B*K,V] and *lse [B*K] (log-sum-exp of each row), so that
 * log p(token v | prompt r) = logits[r*V + v] - lse[r] is read only for the
 * few tokens the matching asks about. Only the matching reads them (no
 * gradient flows through a discrete assignment), so the decoder's
 * activations go back to the arena. */
static int first_token_logits(ot_model *m, const ot_model_gen_state *g, float **logits,
                              float **lse) {
  const int B = m->B, K = m->n_prompts, C = m->C, V = m->d.vocab;
  const size_t R = (size_t)B * K;
  const float *W = ot_params_values_const(m->params);
  int32_t *seq_start;
  ALLOC(*logits, R * V);
  ALLOC(*lse, R);
  ALLOC(seq_start, B + 1);
  for (int b = 0; b <= B; b++) seq_start[b] = b * K;
  const ot_arena_mark mark = ot_arena_save(m->arena);
  float *x, *hl;
  ALLOC(x, R * C);
  ALLOC(hl, R * C);
  ot_linear_forward(x, g->pr, W + m->start_w, W + m->start_b, (int)R, C, C);
  for (size_t r = 0; r < R; r++) ot_add_inplace(x + r * C, W + m->dwpe, (size_t)C);
  const ot_block_memory mem = ot_model_dec_memory(m, seq_start);
  const float *h;
  int rc = ot_decoder_forward(m->dec_A, &m->dec, W, x, (int)R, 1, &mem, 0.0f, 0, 0, m->training,
                              m->arena, &h);
  if (rc) return rc;
  ot_layernorm_forward(hl, NULL, NULL, h, W + m->dln_w, W + m->dln_b, (int)R, C);
  ot_linear_forward(*logits, hl, W + m->wte, W + m->out_b, (int)R, C, V);
  for (size_t r = 0; r < R; r++) {
    const float *z = *logits + r * V;
    float mx = z[0];
    for (int v = 1; v < V; v++) mx = z[v] > mx ? z[v] : mx;
    double sum = 0.0;
    for (int v = 0; v < V; v++) sum += exp((double)(z[v] - mx));
    (*lse)[r] = mx + (float)log(sum);
  }
  ot_arena_restore(m->arena, mark);
  return OT_OK;
}

/* Per item: cost[k][j] = -cos(prompt k, tag j) - match_has * sigmoid(has
 * logit k) - match_gen * log p(tag j's first token | prompt k) (EOS for an
 * empty tag), Hungarian (rows = prompts),
 * or the fixed matching. Fills match, has_y, and the matched rows in order
 * of (item, prompt) — independent of the order of an item's tags. */
static int match_forward(ot_model *m, ot_model_gen_state *g) {
  const int B = m->B, K = m->n_prompts, C = m->C, n = g->n_tags;
  int32_t *prompt_tag;
  ALLOC(g->match, n);
  ALLOC(g->has_y, (size_t)B * K);
  ALLOC(prompt_tag, (size_t)B * K);
  if (m->fixed_match) {
    int rc = check_fixed_match(m, g);
    if (rc) return rc;
    memcpy(g->match, m->fixed_match, (size_t)n * sizeof(int32_t));
  } else {
    int most = 0;
    for (int b = 0; b < B; b++)
      if (g->item_tags[b + 1] - g->item_tags[b] > most) most = g->item_tags[b + 1] - g->item_tags[b];
    const size_t wbytes = ot_hungarian_work_bytes(K, most > 0 ? most : 1);
    float *cost;
    int *row_to_col;
    void *work;
    ALLOC(cost, (size_t)K * (most > 0 ? most : 1));
    ALLOC(row_to_col, K);
    work = ot_arena_alloc(m->arena, wbytes);
    if (!work) return ot_fail(OT_ENOMEM, "model: arena cannot grow by %zu bytes", wbytes);
    float *logits = NULL, *lse = NULL;
    const int V = m->d.vocab;
    if (m->match_gen > 0.0f) {
      int rc = first_token_logits(m, g, &logits, &lse);
      if (rc) return rc;
    }
    for (int b = 0; b < B; b++) {
      const int j0 = g->item_tags[b], nb = g->item_tags[b + 1] - j0;
      if (!nb) continue;
      for (int k = 0; k < K; k++)
        for (int j = 0; j < nb; j++) {
          const size_t r = (size_t)b * K + k;
          const float *pk = g->p_hat + r * C;
          const float *tj = g->t_hat + (size_t)g->tag_col[j0 + j] * C;
          float dot = 0.0f;
          for (int c = 0; c < C; c++) dot += pk[c] * tj[c];
          float ckj = -dot - m->match_has * ot_sigmoid(g->has[r]);
          if (logits) {
            const int t0 = g->tag_off[j0 + j], t1 = g->tag_off[j0 + j + 1];
            const int32_t first = t1 > t0 ? g->tag_tok[t0] : OT_BPE_EOS;
            ckj -= m->match_gen * (logits[r * V + first] - lse[r]);
          }
          cost[(size_t)k * nb + j] = ckj;
        }
      int rc = ot_hungarian_ws(cost, K, nb, row_to_col, NULL, work, wbytes);
      if (rc) return rc;
      for (int j = 0; j < nb; j++) g->match[j0 + j] = -1;
      for (int k = 0; k < K; k++)
        if (row_to_col[k] >= 0) g->match[j0 + row_to_col[k]] = k;
    }
  }
  for (size_t r = 0; r < (size_t)B * K; r++) prompt_tag[r] = -1;
  for (int b = 0; b < B; b++)
    for (int j = g->item_tags[b]; j < g->item_tags[b + 1]; j++)
      if (g->match[j] >= 0) prompt_tag[(size_t)b * K + g->match[j]] = j;
  int M = 0;
  for (size_t r = 0; r < (size_t)B * K; r++) {
    g->has_y[r] = prompt_tag[r] >= 0 ? 1.0f : 0.0f;
    M += prompt_tag[r] >= 0;
  }
  g->M = M;
  ALLOC(g->m_row, M);
  ALLOC(g->m_col, M);
  ALLOC(g->m_hat, (size_t)M * C);
  ALLOC(g->m_pr, (size_t)M * C);
  ALLOC(g->nce, 2 * (size_t)M * g->U);
  /* decoder sequences = matched prompts, grouped by item */
  ALLOC(g->seq_start, B + 1);
  ALLOC(g->seq_len, M);
  int s = 0;
  for (int b = 0; b < B; b++) {
    g->seq_start[b] = s;
    for (int k = 0; k < K; k++) {
      const size_t r = (size_t)b * K + k;
      const int j = prompt_tag[r];
      if (j < 0) continue;
      g->m_row[s] = (int32_t)r;
      g->m_col[s] = g->tag_col[j];
      g->seq_len[s] = g->tag_off[j + 1] - g->tag_off[j] + 1; /* tokens + EOS */
      memcpy(g->m_hat + (size_t)s * C, g->p_hat + r * C, (size_t)C * sizeof(float));
      memcpy(g->m_pr + (size_t)s * C, g->pr + r * C, (size_t)C * sizeof(float));
      s++;
    }
  }
  g->seq_start[B] = s;
  g->N = M;
  /* the decoder's tokens: input i >= 1 is tag token i-1, target i is token i
   * (EOS after the last) */
  int T = 1;
  for (int i = 0; i < M; i++) T = g->seq_len[i] > T ? g->seq_len[i] : T;
  g->T = T;
  ALLOC(g->in_tok, (size_t)M * T);
  ALLOC(g->tgt, (size_t)M * T);
  for (int i = 0; i < M; i++) {
    const int j = prompt_tag[g->m_row[i]], len = g->seq_len[i] - 1;
    const int32_t *t = g->tag_tok + g->tag_off[j];
    int32_t *in = g->in_tok + (size_t)i * T, *y = g->tgt + (size_t)i * T;
    for (int p = 0; p < T; p++) {
      in[p] = p >= 1 && p <= len ? t[p - 1] : OT_BPE_PAD;
      y[p] = p < len ? t[p] : p == len ? OT_BPE_EOS : -1;
    }
  }
  return OT_OK;
}

/* ---- baseline: one sequence per item ----------------------------------------------- */

static int baseline_sequences(ot_model *m, ot_model_gen_state *g) {
  const int B = m->B, Tmax = m->dec_T;
  ALLOC(g->seq_start, B + 1);
  ALLOC(g->seq_len, B);
  for (int b = 0; b <= B; b++) g->seq_start[b] = b;
  g->N = B;
  /* targets t1 SEP t2 ... EOS: tags are taken in order while they fit */
  int T = 1;
  for (int b = 0; b < B; b++) {
    int len = 0;
    for (int j = g->item_tags[b]; j < g->item_tags[b + 1]; j++) {
      const int n = g->tag_off[j + 1] - g->tag_off[j];
      if (len + n + 1 > Tmax) break;
      len += n + 1;
    }
    g->seq_len[b] = len ? len : 1;
    if (g->seq_len[b] > T) T = g->seq_len[b];
  }
  g->T = T;
  ALLOC(g->in_tok, (size_t)B * T);
  ALLOC(g->tgt, (size_t)B * T);
  for (int b = 0; b < B; b++) {
    int32_t *in = g->in_tok + (size_t)b * T, *y = g->tgt + (size_t)b * T;
    const int len = g->seq_len[b];
    int p = 0;
    for (int j = g->item_tags[b]; j < g->item_tags[b + 1] && p < len; j++) {
      for (int i = g->tag_off[j]; i < g->tag_off[j + 1]; i++) y[p++] = g->tag_tok[i];
      y[p++] = OT_BPE_SEP;
    }
    if (p == 0) p = 1;
    y[p - 1] = OT_BPE_EOS; /* the last separator ends the list */
    OT_ASSERT(p == len);
    for (; p < T; p++) y[p] = -1;
    in[0] = OT_BPE_BOS;
    for (p = 1; p < T; p++) in[p] = p < len ? y[p - 1] : OT_BPE_PAD;
  }
  return OT_OK;
}

/* ---- decoder with teacher forcing ------------------------------------------------------ */

ot_block_memory ot_model_dec_memory(const ot_model *m, const int32_t *seq_start) {
  return (ot_block_memory){
      .mem = m->mem, .mem_mask = m->mem_mask, .seq_start = seq_start, .B = m->B, .Tm = m->Tm};
}

static int decoder_forward(ot_model *m, ot_model_gen_state *g, float p, uint64_t seed,
                           double *ce_sum) {
  const int N = g->N, T = g->T, C = m->C, V = m->d.vocab;
  const float *W = ot_params_values_const(m->params);
  const ot_block_memory mem = ot_model_dec_memory(m, g->seq_start);
  ALLOC(g->dec_in, (size_t)N * T * C);
  ot_embed_forward(g->dec_in, g->in_tok, W + m->wte, W + m->dwpe, N, T, C);
  if (m->prompted) { /* position 0: the prompt, not a token */
    ALLOC(g->start, (size_t)N * C);
    ot_linear_forward(g->start, g->m_pr, W + m->start_w, W + m->start_b, N, C, C);
    for (int i = 0; i < N; i++) {
      float *x = g->dec_in + (size_t)i * T * C;
      for (int c = 0; c < C; c++) x[c] = g->start[(size_t)i * C + c] + W[m->dwpe + c];
    }
  }
  /* baseline: sequence i is item i, keyed by its global position; opg: the
   * matched prompts of the pass, keyed by the pass (see ot_batch.item0) */
  const int opg = m->prompted;
  int rc = ot_decoder_forward(m->dec_A, &m->dec, W, g->dec_in, N, T, &mem, p,
                              ot_rng_mix(opg ? ot_rng_mix(seed, (uint64_t)m->item0) : seed, SITE_DEC),
                              opg ? 0 : (uint64_t)m->item0, m->training, m->arena, &g->dec_out);
  if (rc) return rc;
  int n_out = 0;
  for (size_t r = 0; r < (size_t)N * T; r++) n_out += g->tgt[r] >= 0;
  g->n_out = n_out;
  ALLOC(g->out_row, n_out);
  ALLOC(g->out_tgt, n_out);
  ALLOC(g->h, (size_t)n_out * C);
  ALLOC(g->h_ln, (size_t)n_out * C);
  ALLOC(g->h_mean, n_out);
  ALLOC(g->h_rstd, n_out);
  ALLOC(g->logits, (size_t)n_out * V);
  int o = 0;
  for (size_t r = 0; r < (size_t)N * T; r++) {
    if (g->tgt[r] < 0) continue;
    g->out_row[o] = (int32_t)r;
    g->out_tgt[o] = g->tgt[r];
    memcpy(g->h + (size_t)o * C, g->dec_out + r * C, (size_t)C * sizeof(float));
    o++;
  }
  ot_layernorm_forward(g->h_ln, g->h_mean, g->h_rstd, g->h, W + m->dln_w, W + m->dln_b, n_out, C);
  ot_linear_forward(g->logits, g->h_ln, W + m->wte, W + m->out_b, n_out, C, V);
  *ce_sum = n_out ? ot_ce_forward(g->logits, g->out_tgt, n_out, V, -1) * n_out : 0.0;
  return OT_OK;
}

int ot_model_gen_forward(ot_model *m, const ot_batch *b, float p, uint64_t seed, int with_loss,
                         float *loss) {
  ot_model_gen_state *g;
  ALLOC(g, 1);
  memset(g, 0, sizeof *g); /* with_loss stays 0 until the loss is complete */
  m->g = g;
  const int B = m->B, K = m->n_prompts, C = m->C;
  const int opg = m->prompted;
  const float *W = ot_params_values_const(m->params);
  int rc;
  if ((rc = ot_model_mem_forward(m, b))) return rc;
  if (opg && (rc = prompts_forward(m, g, p, seed))) return rc;
  if (!with_loss) return OT_OK;

  if ((rc = copy_tags(m, g, b))) return rc;
  double l_match = 0.0, l_has = 0.0, l_gen = 0.0;
  if (opg) {
    if ((rc = distinct_tags(m, g))) return rc;
    /* the pass's distinct tags: masks keyed by the pass */
    if ((rc = tag_embed_forward(m, g, p, ot_rng_mix(seed, (uint64_t)m->item0)))) return rc;
    const size_t R = (size_t)B * K;
    ALLOC(g->p_proj, R * C);
    ALLOC(g->p_hat, R * C);
    ot_linear_forward(g->p_proj, g->pr, W + m->pproj_w, W + m->pproj_b, (int)R, C, C);
    ot_l2norm_forward(g->p_hat, g->p_proj, (int)R, C);
    if ((rc = match_forward(m, g))) return rc;
    if (g->M)
      l_match = ot_infonce_forward(g->nce, g->m_hat, g->t_hat, g->m_col, g->M, g->U, C, m->tau, 0) *
                g->M;
    l_has = ot_bce_forward(g->has, g->has_y, B, K) * B;
  } else {
    if ((rc = baseline_sequences(m, g))) return rc;
  }
  if (g->N && (rc = decoder_forward(m, g, p, seed, &l_gen))) return rc;
  const double ls = m->loss_scale;
  g->parts = (ot_model_losses){.match = ls * l_match, .has = ls * l_has, .gen = ls * l_gen};
  g->with_loss = 1;
  if (loss)
    *loss = (float)(m->w_match * g->parts.match + m->w_has * g->parts.has +
                    m->w_gen * g->parts.gen);
  return OT_OK;
}

/* ---- backward ------------------------------------------------------------------------ */

/* decoder: dlogits -> ... -> dfused (+=); opg: dpr (+=) through dec.start */
static void decoder_backward(ot_model *m, ot_model_gen_state *g, float *dfused, float *dpr) {
  const int N = g->N, T = g->T, C = m->C, V = m->d.vocab, n_out = g->n_out;
  const float *W = ot_params_values_const(m->params);
  float *G = ot_params_grads(m->params);
  float *dlogits = ot_model_zeros(m, (size_t)n_out * V);
  float *dh_ln = ot_model_zeros(m, (size_t)n_out * C), *dh = ot_model_zeros(m, (size_t)n_out * C);
  ot_ce_backward(dlogits, (float)(m->loss_scale * m->w_gen * n_out), g->logits, g->out_tgt, n_out,
                 V, -1);
  ot_linear_backward(dh_ln, G + m->wte, G + m->out_b, dlogits, g->h_ln, W + m->wte, n_out, C, V);
  ot_layernorm_backward(dh, G + m->dln_w, G + m->dln_b, dh_ln, g->h, W + m->dln_w, g->h_mean,
                        g->h_rstd, n_out, C);
  float *dout = ot_model_zeros(m, (size_t)N * T * C), *din = ot_model_zeros(m, (size_t)N * T * C);
  for (int o = 0; o < n_out; o++)
    memcpy(dout + (size_t)g->out_row[o] * C, dh + (size_t)o * C, (size_t)C * sizeof(float));
  int rc = ot_decoder_backward(din, dfused, G, dout, m->dec_A, &m->dec, W, m->arena);
  if (rc) ot_assert_fail(ot_errmsg(), __FILE__, __LINE__);
  /* inputs: token + position embeddings of the positions in use (the
   * padded tail has exactly zero gradient under causal attention) */
  const int opg = m->prompted;
  for (int i = 0; i < N; i++)
    for (int p = 0; p < g->seq_len[i]; p++) {
      const float *d = din + ((size_t)i * T + p) * C;
      float *gp = G + m->dwpe + (size_t)p * C;
      for (int c = 0; c < C; c++) gp[c] += d[c];
      if (opg && p == 0) continue;
      float *gw = G + m->wte + (size_t)g->in_tok[(size_t)i * T + p] * C;
      for (int c = 0; c < C; c++) gw[c] += d[c];
    }
  if (!opg) return;
  float *dstart = ot_model_zeros(m, (size_t)N * C), *dmpr = ot_model_zeros(m, (size_t)N * C);
  for (int i = 0; i < N; i++)
    memcpy(dstart + (size_t)i * C, din + (size_t)i * T * C, (size_t)C * sizeof(float));
  ot_linear_backward(dmpr, G + m->start_w, G + m->start_b, dstart, g->m_pr, W + m->start_w, N, C,
                     C);
  for (int i = 0; i < N; i++) ot_add_inplace(dpr + (size_t)g->m_row[i] * C, dmpr + (size_t)i * C, C);
}

/* InfoNCE -> prompts (dpr +=) and the distinct tags through the title encoder */
static void match_backward(ot_model *m, ot_model_gen_state *g, float *dpr) {
  const int B = m->B, K = m->n_prompts, C = m->C, M = g->M, U = g->U;
  const size_t R = (size_t)B * K;
  const float *W = ot_params_values_const(m->params);
  float *G = ot_params_grads(m->params);
  float *dm = ot_model_zeros(m, (size_t)M * C), *dt = ot_model_zeros(m, (size_t)U * C);
  ot_infonce_backward(dm, dt, g->nce, (float)(m->loss_scale * m->w_match * M), g->m_hat, g->t_hat,
                      g->m_col, M, U, C, m->tau, 0);
  float *dphat = ot_model_zeros(m, R * C), *dpproj = ot_model_zeros(m, R * C);
  for (int i = 0; i < M; i++) ot_add_inplace(dphat + (size_t)g->m_row[i] * C, dm + (size_t)i * C, C);
  ot_l2norm_backward(dpproj, dphat, g->p_proj, (int)R, C);
  ot_linear_backward(dpr, G + m->pproj_w, G + m->pproj_b, dpproj, g->pr, W + m->pproj_w, (int)R, C,
                     C);

  ot_model_tags_backward(m, g, dt);
}

/* ---- the batch's tags as vectors, shared with the judge (ot_model_judge.c) ---------- */

int ot_model_tags_forward(ot_model *m, ot_model_gen_state *g, const ot_batch *b, float p,
                          uint64_t seed) {
  int rc = copy_tags(m, g, b);
  if (!rc) rc = distinct_tags(m, g);
  if (!rc) rc = tag_embed_forward(m, g, p, seed);
  return rc;
}

void ot_model_tags_backward(ot_model *m, ot_model_gen_state *g, const float *dt) {
  const int C = m->C, U = g->U, Lt = g->Lt;
  const float *W = ot_params_values_const(m->params);
  float *G = ot_params_grads(m->params);
  float *dtproj = ot_model_zeros(m, (size_t)U * C), *dtpool = ot_model_zeros(m, (size_t)U * C);
  ot_l2norm_backward(dtproj, dt, g->t_proj, U, C);
  ot_linear_backward(dtpool, G + m->tproj_w, G + m->tproj_b, dtproj, g->t_pool, W + m->tproj_w, U,
                     C, C);
  const size_t len = (size_t)U * Lt * C;
  float *d0 = ot_model_zeros(m, len), *d1 = ot_model_zeros(m, len);
  ot_meanpool_backward(d0, dtpool, g->col_mask, U, Lt, C);
  float *demb = ot_model_stack_backward(m, m->tagtxt_A, m->txt_L, m->n_txt, &m->blk, d0, d1, len,
                                        NULL);
  ot_embed_backward(G + m->wte, G + m->wpe, demb, g->col_tok, U, Lt, C);
}

void ot_model_gen_backward(ot_model *m, float *dfused) {
  ot_model_gen_state *g = m->g;
  OT_ASSERT(g && g->with_loss);
  const int B = m->B, K = m->n_prompts, C = m->C;
  const size_t R = (size_t)B * K;
  const int opg = m->prompted;
  const float *W = ot_params_values_const(m->params);
  float *G = ot_params_grads(m->params);
  float *dpr = opg ? ot_model_zeros(m, R * C) : NULL;
  /* the memory's gradient: the fused tokens' own, or (slots) a longer buffer */
  const int slots = m->Tm > m->S;
  float *dmem = slots ? ot_model_zeros(m, (size_t)B * m->Tm * C) : dfused;
  if (g->N) decoder_backward(m, g, dmem, dpr);
  if (!opg) {
    if (slots) ot_model_mem_backward(m, dmem, dfused);
    return;
  }
  if (g->M) match_backward(m, g, dpr);
  float *dhas = ot_model_zeros(m, R);
  ot_bce_backward(dhas, (float)(m->loss_scale * m->w_has * B), g->has, g->has_y, B, K);
  ot_linear_backward(dpr, G + m->has_w, G + m->has_b, dhas, g->pr, W + m->has_w, (int)R, C, 1);
  /* prompt.ln and the prompt blocks; the queries' gradient sums over items */
  float *d0 = ot_model_zeros(m, R * C), *d1 = ot_model_zeros(m, R * C);
  ot_layernorm_backward(d0, G + m->pln_w, G + m->pln_b, dpr, g->pr_out, W + m->pln_w, g->pr_mean,
                        g->pr_rstd, (int)R, C);
  float *dq = ot_model_stack_backward(m, m->prompt_A, m->prompt_L, m->n_prompt_layers, &m->pblk,
                                      d0, d1, R * C, dmem);
  for (int b = 0; b < B; b++) ot_add_inplace(G + m->query, dq + (size_t)b * K * C, (size_t)K * C);
  if (slots) ot_model_mem_backward(m, dmem, dfused);
}
