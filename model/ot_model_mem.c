/* The memory the prompts and the decoder read: the fused tokens, then
 * extra slots — rag's retrieved candidate tags and, with model.title_slots,
 * the title's words as its tags would be written.
 *
 * Memory [B, S+M+L', C] = the S fused tokens after the final LN, then M
 * candidate slots (rag: model.rag_m, else 0), then L' title slots (L =
 * model.title_len, or 0). Candidate slot j of item b holds its j-th
 * candidate (best first), title slot i the i-th token of its title words
 * (ot_batch.title_words; the title tokens when those are not given):
 *   x = LN(mean_t txt.wte[tok_t] + score_j * rag.score.w + rag.kind.b)
 *   x = LN(txt.wte[word_i] + txt.wpe[i] + rag.title.b)
 * The token embeddings are the decoder's tied output layer, so a prompt
 * that attends to a slot sees the very vectors whose dot products make the
 * slot's tokens likely: copying a suggested tag — or a word of the title,
 * the way to tags never seen in training — is easy to learn, and the score
 * tells how much retrieval believes in a candidate. The title words are
 * tokenized as tags are (no leading space, case folded) so a title word
 * and the same tag are the same tokens. The LN puts the slots on the fused
 * tokens' scale. Slots past an item's candidates and title padding are
 * masked. */
#include "ot_model_impl.h"

#include <string.h>

#include "bpe.h"
#include "ot_common.h"
#include "ot_kernels.h"

#define ALLOC(ptr, n) OT_MODEL_ALLOC(m, ptr, n)

static int check_cands(const ot_model *m, const ot_batch *b) {
  if (!b->cand_item || !b->cand_offsets || !b->cand_score)
    return ot_fail(OT_EINVAL, "model: rag needs each item's retrieved candidates (cand_item, "
                   "cand_offsets, cand_score: run ot-retrieve and set retrieve.dir)");
  static const char *const names[4] = {"cand_item", "cand_offsets", "cand_tokens", "candidate"};
  return ot_model_check_lists(m, b->B, b->cand_item, b->cand_offsets, b->cand_tokens, names);
}

/* lnf + candidates + title words -> m->mem [B,S+M+L',C], m->mem_mask */
int ot_model_mem_forward(ot_model *m, const ot_batch *b) {
  const int M = m->rag_m, L = m->n_title_slots, Q = M + L; /* slots per item */
  if (!Q) {
    m->mem = m->lnf, m->mem_mask = m->fuse_mask, m->Tm = m->S;
    return OT_OK;
  }
  int rc = M ? check_cands(m, b) : OT_OK;
  if (rc) return rc;
  const int32_t *words = b->title_words ? b->title_words : m->title;
  const uint8_t *words_mask = b->title_words ? b->title_words_mask : m->txt_mask;
  if (b->title_words && !words_mask)
    return ot_fail(OT_EINVAL, "model: title_words given without title_words_mask");
  const int B = m->B, S = m->S, C = m->C, Lt = m->tag_len, Tm = S + Q;
  const float *W = ot_params_values_const(m->params);
  const size_t R = (size_t)B * Q;
  ALLOC(m->cand_tok, R * Lt);
  ALLOC(m->cand_ntok, R);
  ALLOC(m->cand_score, R);
  ALLOC(m->cand_sum, R * C);
  ALLOC(m->cand_x, R * C);
  ALLOC(m->cand_mean, R);
  ALLOC(m->cand_rstd, R);
  for (int i = 0; i < B; i++) {
    const int first = M ? b->cand_item[i] : 0, n = M ? b->cand_item[i + 1] - first : 0;
    for (int j = 0; j < L; j++) { /* title slots */
      const size_t r = (size_t)i * Q + M + j;
      const int32_t tok = words[(size_t)i * L + j];
      const float *e = W + m->wte + (size_t)tok * C, *q = W + m->wpe + (size_t)j * C;
      for (int k = 0; k < C; k++) m->cand_sum[r * C + k] = e[k] + q[k] + W[m->rag_title_b + k];
      for (int t = 0; t < Lt; t++) m->cand_tok[r * Lt + t] = OT_BPE_PAD;
      m->cand_tok[r * Lt] = tok;
      m->cand_ntok[r] = words_mask[(size_t)i * L + j] != 0;
      m->cand_score[r] = 0.0f;
    }
    for (int j = 0; j < M; j++) {
      const size_t r = (size_t)i * Q + j;
      int32_t *tok = m->cand_tok + r * Lt;
      float *x = m->cand_sum + r * C;
      int nt = 0;
      float score = 0.0f;
      if (j < n) {
        const int c = first + j;
        nt = b->cand_offsets[c + 1] - b->cand_offsets[c];
        if (nt > Lt) nt = Lt;
        memcpy(tok, b->cand_tokens + b->cand_offsets[c], (size_t)nt * sizeof *tok);
        score = b->cand_score[c];
      }
      for (int t = nt; t < Lt; t++) tok[t] = OT_BPE_PAD;
      m->cand_ntok[r] = nt, m->cand_score[r] = score;
      for (int k = 0; k < C; k++) x[k] = score * W[m->rag_score_w + k] + W[m->rag_kind_b + k];
      for (int t = 0; t < nt; t++) {
        const float *e = W + m->wte + (size_t)tok[t] * C;
        for (int k = 0; k < C; k++) x[k] += e[k] / (float)nt;
      }
    }
  }
  ot_layernorm_forward(m->cand_x, m->cand_mean, m->cand_rstd, m->cand_sum, W + m->rag_ln_w,
                       W + m->rag_ln_b, (int)R, C);
  float *mem;
  uint8_t *mask;
  ALLOC(mem, (size_t)B * Tm * C);
  ALLOC(mask, (size_t)B * Tm);
  for (int i = 0; i < B; i++) {
    memcpy(mem + (size_t)i * Tm * C, m->lnf + (size_t)i * S * C, (size_t)S * C * sizeof *mem);
    memcpy(mem + ((size_t)i * Tm + S) * C, m->cand_x + (size_t)i * Q * C,
           (size_t)Q * C * sizeof *mem);
    memcpy(mask + (size_t)i * Tm, m->fuse_mask + (size_t)i * S, (size_t)S);
    for (int j = 0; j < Q; j++) mask[(size_t)i * Tm + S + j] = m->cand_ntok[(size_t)i * Q + j] > 0;
  }
  m->mem = mem, m->mem_mask = mask, m->Tm = Tm;
  return OT_OK;
}

/* dmem [B,S+M+L',C] -> dlnf [B,S,C] (+=), rag.*, txt.wte and txt.wpe
 * gradients (+=). Needs slots (M + L' > 0). */
void ot_model_mem_backward(ot_model *m, const float *dmem, float *dlnf) {
  const int M = m->rag_m, L = m->n_title_slots, Q = M + L;
  OT_ASSERT(Q > 0);
  const int B = m->B, S = m->S, C = m->C, Lt = m->tag_len, Tm = m->Tm;
  const float *W = ot_params_values_const(m->params);
  float *G = ot_params_grads(m->params);
  const size_t R = (size_t)B * Q;
  float *dx = ot_model_zeros(m, R * C), *dsum = ot_model_zeros(m, R * C);
  for (int i = 0; i < B; i++) {
    ot_add_inplace(dlnf + (size_t)i * S * C, dmem + (size_t)i * Tm * C, (size_t)S * C);
    memcpy(dx + (size_t)i * Q * C, dmem + ((size_t)i * Tm + S) * C, (size_t)Q * C * sizeof *dx);
  }
  ot_layernorm_backward(dsum, G + m->rag_ln_w, G + m->rag_ln_b, dx, m->cand_sum, W + m->rag_ln_w,
                        m->cand_mean, m->cand_rstd, (int)R, C);
  for (size_t r = 0; r < R; r++) {
    const float *d = dsum + r * C;
    const int nt = m->cand_ntok[r];
    const int j = (int)(r % Q);
    if (j >= M) { /* a title slot (its token masked out when padding) */
      float *ge = G + m->wte + (size_t)m->cand_tok[r * Lt] * C, *gq = G + m->wpe + (size_t)(j - M) * C;
      for (int k = 0; k < C; k++) ge[k] += d[k], gq[k] += d[k], G[m->rag_title_b + k] += d[k];
      continue;
    }
    const float score = m->cand_score[r];
    for (int k = 0; k < C; k++) {
      G[m->rag_score_w + k] += score * d[k];
      G[m->rag_kind_b + k] += d[k];
    }
    for (int t = 0; t < nt; t++) {
      float *ge = G + m->wte + (size_t)m->cand_tok[r * Lt + t] * C;
      for (int k = 0; k < C; k++) ge[k] += d[k] / (float)nt;
    }
  }
}
