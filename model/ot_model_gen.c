/* The generative models' accessors and tag generation (ot_model_generate):
 * greedy decoding of the selected prompts (opg) or of one tag-list sequence
 * per item (baseline), with the decoder's KV cache or, as the reference, by
 * recomputing the prefix. */
#include "ot_model_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bpe.h"
#include "ot_common.h"
#include "ot_kernels.h"
#include "tagnorm.h"

#define ALLOC(ptr, n) OT_MODEL_ALLOC(m, ptr, n)

/* ---- accessors --------------------------------------------------------------------------- */

int ot_model_is_generative(const ot_model *m) { return m->generative; }

const float *ot_model_prompt_logits(const ot_model *m, int *K) {
  if (K) *K = m->n_prompts;
  return m->prompted && m->g ? m->g->has : NULL;
}

const int32_t *ot_model_matching(const ot_model *m, int *n) {
  const ot_model_gen_state *g = m->g;
  int ok = m->prompted && g && g->with_loss;
  if (n) *n = ok ? g->n_tags : 0;
  return ok ? g->match : NULL;
}

int ot_model_set_matching(ot_model *m, const int32_t *match, int n) {
  free(m->fixed_match);
  m->fixed_match = NULL;
  m->n_fixed_match = 0;
  if (!match) return OT_OK;
  if (!m->prompted) return ot_fail(OT_EINVAL, "model: only opg and rag have a matching");
  if (n < 0) return ot_fail(OT_EINVAL, "model: matching of %d tags", n);
  m->fixed_match = ot_xmalloc((size_t)(n > 0 ? n : 1) * sizeof(int32_t));
  if (n) memcpy(m->fixed_match, match, (size_t)n * sizeof(int32_t));
  m->n_fixed_match = n;
  return OT_OK;
}

ot_model_losses ot_model_loss_parts(const ot_model *m) {
  ot_model_losses z = {0, 0, 0};
  if (m->generative && m->g && m->g->with_loss) return m->g->parts;
  return z;
}

/* Counts of the last forward with a loss scaled to B items; before one,
 * K/2 tags of tag_len/2 tokens per item, all distinct. */
double ot_model_gen_forward_flops(const ot_model *m, int B) {
  const double C = m->C, V = m->d.vocab, K = m->n_prompts;
  const ot_model_gen_state *g = m->g;
  const int have = g && g->with_loss && m->B > 0;
  const double s = have ? (double)B / m->B : 1.0;
  const double toks = m->tag_len / 2.0, tags = B * K / 2.0;
  const double U = have ? g->U * s : tags, Lt = have ? g->Lt : toks;
  double f = 0.0, N, T;
  if (m->prompted) {
    const double M = have ? g->M * s : tags;
    f += m->n_prompt_layers *
         ot_block_forward_flops(&m->pblk, B, m->n_prompts, m->S + m->rag_m + m->n_title_slots);
    f += 2.0 * B * K * C * (C + 1.0);                               /* prompt.proj, has */
    f += m->n_txt * ot_block_forward_flops(&m->blk, (int)(U + 0.5), (int)(Lt + 0.5), 0);
    f += 2.0 * U * C * C + 2.0 * M * U * C;                         /* tag.proj, InfoNCE */
    f += 2.0 * M * C * C;                                           /* dec.start */
    N = M, T = have ? g->T : toks + 1;
  } else {
    N = B, T = have ? g->T : (tags / B) * (toks + 1);
  }
  f += ot_decoder_forward_flops(&m->dec, (int)(N + 0.5), (int)(T + 0.5), B,
                                m->S + m->rag_m + m->n_title_slots);
  const double outputs = have ? g->n_out * s : N * (toks + 1);
  return f + 2.0 * outputs * C * V;                                 /* tied output layer */
}

/* ---- generation ----------------------------------------------------------------------- */

typedef struct {
  int N, Tmax;
  int32_t *item_of;  /* [N] */
  int32_t *src;      /* [N] opg: prompt row b*K+k */
  float *prompt_p;   /* [N] */
  float *x0;         /* [N,C] input at position 0 (with its position embedding) */
  int32_t *tok;      /* [N,Tmax] */
  float *logp;       /* [N,Tmax] log-probability of each token */
  int32_t *len;      /* [N] tokens generated */
} gen_seqs;


/* The sequences to decode and their first input. */
static int select_sequences(ot_model *m, const ot_gen_opts *o, gen_seqs *s) {
  const int B = m->B, K = m->n_prompts, C = m->C;
  const float *W = ot_params_values_const(m->params);
  ot_model_gen_state *g = m->g;
  int N = 0;
  if (m->prompted) {
    for (size_t r = 0; r < (size_t)B * K; r++) N += ot_sigmoid(g->has[r]) >= o->threshold;
  } else {
    N = B;
  }
  s->N = N, s->Tmax = m->dec_T;
  ALLOC(s->item_of, N);
  ALLOC(s->src, N);
  ALLOC(s->prompt_p, N);
  ALLOC(s->x0, (size_t)N * C);
  ALLOC(s->tok, (size_t)N * s->Tmax);
  ALLOC(s->logp, (size_t)N * s->Tmax);
  ALLOC(s->len, N);
  memset(s->len, 0, (size_t)N * sizeof(int32_t));
  if (m->prompted) {
    float *rows;
    ALLOC(rows, (size_t)N * C);
    int n = 0;
    for (size_t r = 0; r < (size_t)B * K; r++) {
      const float p = ot_sigmoid(g->has[r]);
      if (p < o->threshold) continue;
      s->item_of[n] = (int32_t)(r / K), s->src[n] = (int32_t)r, s->prompt_p[n] = p;
      memcpy(rows + (size_t)n * C, g->pr + r * C, (size_t)C * sizeof(float));
      n++;
    }
    ot_linear_forward(s->x0, rows, W + m->start_w, W + m->start_b, N, C, C);
  } else {
    for (int i = 0; i < N; i++) {
      s->item_of[i] = i, s->src[i] = i, s->prompt_p[i] = 1.0f;
      memcpy(s->x0 + (size_t)i * C, W + m->wte + (size_t)OT_BPE_BOS * C, (size_t)C * sizeof(float));
    }
  }
  for (int i = 0; i < N; i++) ot_add_inplace(s->x0 + (size_t)i * C, W + m->dwpe, (size_t)C);
  return OT_OK;
}

/* Reference path: the whole prefix 0..t of the active rows through the
 * decoder again -> h [Na,C] (position t). */
static int step_uncached(ot_model *m, const gen_seqs *s, const int32_t *rows, int Na, int t,
                         float *h) {
  const int C = m->C, B = m->B, T = t + 1;
  const float *W = ot_params_values_const(m->params);
  float *x;
  int32_t *seq_start;
  ALLOC(x, (size_t)Na * T * C);
  ALLOC(seq_start, B + 1);
  memset(seq_start, 0, (size_t)(B + 1) * sizeof(int32_t));
  for (int i = 0; i < Na; i++) {
    const int r = rows[i];
    seq_start[s->item_of[r] + 1]++;
    float *xi = x + (size_t)i * T * C;
    memcpy(xi, s->x0 + (size_t)r * C, (size_t)C * sizeof(float));
    for (int p = 1; p < T; p++) {
      const float *e = W + m->wte + (size_t)s->tok[(size_t)r * s->Tmax + p - 1] * C;
      const float *q = W + m->dwpe + (size_t)p * C;
      for (int c = 0; c < C; c++) xi[(size_t)p * C + c] = e[c] + q[c];
    }
  }
  for (int b = 0; b < B; b++) seq_start[b + 1] += seq_start[b];
  const ot_block_memory mem = ot_model_dec_memory(m, seq_start);
  const float *out;
  int rc = ot_decoder_forward(m->dec_A, &m->dec, W, x, Na, T, &mem, 0.0f, 0, 0, 0, m->arena, &out);
  if (rc) return rc;
  for (int i = 0; i < Na; i++)
    memcpy(h + (size_t)i * C, out + ((size_t)i * T + t) * C, (size_t)C * sizeof(float));
  return OT_OK;
}

/* One continuation of a beam: its row, the token and the beam's new total
 * log-probability. */
typedef struct {
  int32_t row, tok;
  float lp, total;
} beam_cand;

static int by_total(const void *a, const void *b) {
  const beam_cand *x = a, *y = b;
  if (x->total != y->total) return x->total > y->total ? -1 : 1;
  if (x->row != y->row) return x->row - y->row; /* deterministic among ties */
  return x->tok - y->tok;
}

/* The nb most probable allowed tokens of one row's logits z (EOS, SEP for
 * baseline, the non-special tokens), into out[] as (row, tok, lp); returns
 * how many (<= nb). Greedy is nb = 1. */
static int top_tokens(const float *z, const float *prob, int V, int baseline, int nb, int32_t row,
                      float base, beam_cand *out) {
  int n = 0;
  for (int v = OT_BPE_EOS; v < V; v++) {
    if (v > OT_BPE_EOS && v < OT_BPE_N_SPECIAL && !(baseline && v == OT_BPE_SEP)) continue;
    if (z[v] == -INFINITY) continue; /* mask_tokens */
    if (n == nb && z[v] <= z[out[n - 1].tok]) continue;
    int at = n < nb ? n++ : nb - 1; /* insertion into the sorted top list */
    while (at > 0 && z[v] > z[out[at - 1].tok]) out[at] = out[at - 1], at--;
    out[at].row = row, out[at].tok = v;
  }
  for (int i = 0; i < n; i++) {
    const float p = prob[out[i].tok];
    out[i].lp = logf(p > 1e-30f ? p : 1e-30f);
    out[i].total = base + out[i].lp;
  }
  return n;
}

/* What a decoder may write next; the rest gets probability 0 and the model's
 * mass goes to what is left:
 *   - never broken text: no token that would leave the tag's bytes invalid
 *     UTF-8, no tag ending (EOS, SEP, or Tmax reached: `last`) in the middle
 *     of a character (a partly learnt rare character was otherwise cut off
 *     and written as U+FFFD);
 *   - baseline: no tag longer than the tag_len tokens every training tag
 *     was cut to — at that length, once a character is finished, only SEP
 *     or EOS (a looping decoder otherwise wrote one character 60 times).
 * tok[0..t) is the row's prefix; at a character boundary the precomputed
 * from0/whole0 (allowed; allowed and ending on a boundary) answer. Should
 * no token finish a character begun at the last position, validity alone
 * is kept (collect drops the tag). */
static void mask_tokens(const ot_bpe *bpe, const int32_t *tok, int t, int last, int tag_len,
                        const uint8_t *from0, const uint8_t *whole0, float *z, int V) {
  ot_bpe_utf8 st = {0};
  int in_tag = 0; /* tokens of the tag being written */
  for (int p = 0; p < t; p++) {
    ot_bpe_utf8_next(bpe, &st, tok[p]);
    in_tag = tok[p] < OT_BPE_N_SPECIAL ? 0 : in_tag + 1;
  }
  if (!st.need) {
    const uint8_t *ok = last ? whole0 : from0;
    const int full = tag_len > 0 && in_tag >= tag_len;
    for (int v = 0; v < V; v++)
      if (!ok[v] || (full && v >= OT_BPE_N_SPECIAL)) z[v] = -INFINITY;
    return;
  }
  int finishing = 0;
  for (int v = 0; v < V; v++) {
    ot_bpe_utf8 next = st;
    const int ok = ot_bpe_utf8_next(bpe, &next, v);
    if (!ok) z[v] = -INFINITY;
    else finishing += next.need == 0;
  }
  if (!last || !finishing) return;
  for (int v = 0; v < V; v++) {
    ot_bpe_utf8 next = st;
    if (z[v] > -INFINITY && ot_bpe_utf8_next(bpe, &next, v) && next.need) z[v] = -INFINITY;
  }
}

/* Beam search of every sequence with beam width nb (1: greedy). Beam j of
 * sequence i is row i*nb + j of the decoding state (KV cache, tokens);
 * beams are ranked by their total log-probability; a hypothesis ends at EOS
 * or at Tmax tokens, and a sequence stops once nb hypotheses ended. Its
 * answer is the ended hypothesis with the highest mean log-probability per
 * token (the token_prob of ot_gen_tag), written to s->tok/logp/len. */
static int decode(ot_model *m, const ot_gen_opts *o, gen_seqs *s) {
  const int N = s->N, C = m->C, V = m->d.vocab, Tmax = s->Tmax;
  const int nb = o->beam > 1 ? o->beam : 1, R = N * nb;
  const int baseline = m->type == OT_MODEL_BASELINE;
  const float *W = ot_params_values_const(m->params);
  gen_seqs b = {.N = R, .Tmax = Tmax}; /* the beams */
  int32_t *rows, *src, *dst, *n_ended, *tok_tmp;
  float *x, *h, *hl, *logits, *probs, *total, *best, *lp_tmp;
  uint8_t *alive, *from0, *whole0;
  beam_cand *cand;
  ALLOC(b.item_of, R);
  ALLOC(b.x0, (size_t)R * C);
  ALLOC(b.tok, (size_t)R * Tmax);
  ALLOC(b.logp, (size_t)R * Tmax);
  ALLOC(rows, R);
  ALLOC(src, R);
  ALLOC(dst, R);
  ALLOC(n_ended, N);
  ALLOC(x, (size_t)R * C);
  ALLOC(h, (size_t)R * C);
  ALLOC(hl, (size_t)R * C);
  ALLOC(logits, (size_t)R * V);
  ALLOC(probs, (size_t)R * V);
  ALLOC(total, R);
  ALLOC(best, N);
  ALLOC(alive, R);
  ALLOC(from0, V);
  ALLOC(whole0, V);
  for (int v = 0; v < V; v++) {
    ot_bpe_utf8 st = {0};
    from0[v] = (uint8_t)ot_bpe_utf8_next(o->bpe, &st, v);
    whole0[v] = from0[v] && !st.need;
  }
  ALLOC(cand, (size_t)nb * nb);
  ALLOC(tok_tmp, (size_t)nb * Tmax);
  ALLOC(lp_tmp, (size_t)nb * Tmax);
  for (int r = 0; r < R; r++) {
    b.item_of[r] = s->item_of[r / nb];
    memcpy(b.x0 + (size_t)r * C, s->x0 + (size_t)(r / nb) * C, (size_t)C * sizeof(float));
    alive[r] = r % nb == 0, total[r] = 0.0f; /* one beam to start with */
  }
  for (int i = 0; i < N; i++) n_ended[i] = 0, best[i] = -INFINITY, s->len[i] = 0;
  ot_decoder_cache cache = {0};
  if (!o->no_cache) {
    const ot_block_memory mem = ot_model_dec_memory(m, NULL);
    int rc = ot_decoder_cache_init(&cache, &m->dec, W, mem.mem, mem.mem_mask, mem.B, mem.Tm, b.item_of,
                                   R, Tmax, m->arena);
    if (rc) return rc;
  }
  for (int t = 0; t < Tmax; t++) {
    int Na = 0;
    for (int r = 0; r < R; r++) {
      if (!alive[r]) continue;
      float *xr = x + (size_t)Na * C;
      if (t == 0) {
        memcpy(xr, b.x0 + (size_t)r * C, (size_t)C * sizeof(float));
      } else { /* its next input is the token it wrote last */
        const float *e = W + m->wte + (size_t)b.tok[(size_t)r * Tmax + t - 1] * C;
        const float *q = W + m->dwpe + (size_t)t * C;
        for (int c = 0; c < C; c++) xr[c] = e[c] + q[c];
      }
      rows[Na++] = r;
    }
    if (!Na) break;
    ot_arena_mark mark = ot_arena_save(m->arena);
    int rc = o->no_cache ? step_uncached(m, &b, rows, Na, t, h)
                         : ot_decoder_step(h, &cache, &m->dec, W, x, rows, Na, t, m->arena);
    ot_arena_restore(m->arena, mark);
    if (rc) return rc;
    ot_layernorm_forward(hl, NULL, NULL, h, W + m->dln_w, W + m->dln_b, Na, C);
    ot_linear_forward(logits, hl, W + m->wte, W + m->out_b, Na, C, V);
    for (int a = 0; a < Na; a++)
      mask_tokens(o->bpe, b.tok + (size_t)rows[a] * Tmax, t, t + 1 == Tmax,
                  baseline ? m->tag_len : 0, from0, whole0, logits + (size_t)a * V, V);
    ot_softmax_forward(probs, logits, Na, V);
    /* per sequence: the nb best continuations of its live beams */
    int n_moves = 0;
    for (int a = 0; a < Na;) {
      const int i = rows[a] / nb;
      int nc = 0;
      for (; a < Na && rows[a] / nb == i; a++)
        nc += top_tokens(logits + (size_t)a * V, probs + (size_t)a * V, V, baseline, nb, rows[a],
                         total[rows[a]], cand + nc);
      qsort(cand, (size_t)nc, sizeof *cand, by_total);
      int kept = 0;
      for (int c = 0; c < nc && kept < nb && n_ended[i] < nb; c++) {
        const beam_cand k = cand[c];
        if (k.tok == OT_BPE_EOS || t + 1 == Tmax) { /* a hypothesis ends */
          const float mean = k.total / (float)(t + 1);
          n_ended[i]++;
          if (mean > best[i]) {
            best[i] = mean, s->len[i] = t + 1;
            int32_t *st = s->tok + (size_t)i * Tmax;
            float *sl = s->logp + (size_t)i * Tmax;
            memcpy(st, b.tok + (size_t)k.row * Tmax, (size_t)t * sizeof *st);
            memcpy(sl, b.logp + (size_t)k.row * Tmax, (size_t)t * sizeof *sl);
            st[t] = k.tok, sl[t] = k.lp;
          }
          continue;
        }
        cand[kept++] = k; /* c >= kept: compacting in place is safe */
      }
      if (n_ended[i] >= nb) kept = 0; /* done: its live beams stop */
      /* the kept beams take rows i*nb + 0..kept-1: prefixes via scratch,
       * since a parent may be another kept beam's destination */
      for (int j = 0; j < kept; j++) {
        memcpy(tok_tmp + (size_t)j * Tmax, b.tok + (size_t)cand[j].row * Tmax, (size_t)t * sizeof(int32_t));
        memcpy(lp_tmp + (size_t)j * Tmax, b.logp + (size_t)cand[j].row * Tmax, (size_t)t * sizeof(float));
      }
      for (int j = 0; j < nb; j++) alive[i * nb + j] = j < kept;
      for (int j = 0; j < kept; j++) {
        const int r = i * nb + j;
        memcpy(b.tok + (size_t)r * Tmax, tok_tmp + (size_t)j * Tmax, (size_t)t * sizeof(int32_t));
        memcpy(b.logp + (size_t)r * Tmax, lp_tmp + (size_t)j * Tmax, (size_t)t * sizeof(float));
        b.tok[(size_t)r * Tmax + t] = cand[j].tok, b.logp[(size_t)r * Tmax + t] = cand[j].lp;
        total[r] = cand[j].total;
        src[n_moves] = cand[j].row, dst[n_moves++] = r;
      }
    }
    if (!o->no_cache && t + 1 < Tmax) {
      int rc2 = ot_decoder_cache_move(&cache, &m->dec, src, dst, n_moves, t, m->arena);
      if (rc2) return rc2;
    }
  }
  return OT_OK;
}

/* ---- text ---------------------------------------------------------------------------- */

typedef struct {
  char *buf;
  size_t cap;
} text_buf;

/* ids -> normalised text (*out malloc'd, NULL if it normalises to "") */
static int tag_text(const ot_bpe *bpe, const int32_t *ids, int n, text_buf *tb, char **out) {
  *out = NULL;
  size_t len = 0;
  int rc = ot_bpe_decode(bpe, ids, n, tb->buf, tb->cap, &len);
  if (rc && len + 1 > tb->cap) {
    tb->cap = 2 * (len + 1);
    tb->buf = ot_xrealloc(tb->buf, tb->cap);
    rc = ot_bpe_decode(bpe, ids, n, tb->buf, tb->cap, &len);
  }
  if (rc) return rc;
  char *norm;
  if ((rc = ot_tagnorm_dup(tb->buf, &norm))) return rc;
  if (!*norm) {
    free(norm);
    return OT_OK;
  }
  *out = norm;
  return OT_OK;
}

/* Add a tag to an item, or raise the score of the same text already there;
 * takes ownership of text. */
static void add_tag(ot_gen_item *it, int *cap, char *text, float prompt_p, float token_p) {
  const float score = prompt_p * token_p;
  for (int i = 0; i < it->n; i++)
    if (!strcmp(it->tags[i].tag, text)) {
      if (score > it->tags[i].score)
        it->tags[i] = (ot_gen_tag){.tag = it->tags[i].tag, .score = score, .prompt_prob = prompt_p,
                                   .token_prob = token_p};
      free(text);
      return;
    }
  if (it->n == *cap) {
    *cap = *cap ? 2 * *cap : 8;
    it->tags = ot_xrealloc(it->tags, (size_t)*cap * sizeof *it->tags);
  }
  it->tags[it->n++] = (ot_gen_tag){.tag = text, .score = score, .prompt_prob = prompt_p, .token_prob = token_p};
}

int ot_gen_tag_by_score(const void *a, const void *b) {
  const ot_gen_tag *x = a, *y = b;
  if (x->score != y->score) return x->score > y->score ? -1 : 1;
  return strcmp(x->tag, y->tag);
}

/* Split each sequence into tags (opg: the whole sequence up to EOS;
 * baseline: the pieces between SEPs); each tag's token probability is the
 * geometric mean over its tokens and the SEP/EOS that closes it. */
static int collect(const ot_gen_opts *o, const gen_seqs *s, int B, ot_gen_item *out) {
  int *cap = ot_xcalloc((size_t)B, sizeof *cap);
  text_buf tb = {ot_xmalloc(256), 256};
  int rc = OT_OK;
  for (int i = 0; i < s->N && !rc; i++) {
    const int32_t *tok = s->tok + (size_t)i * s->Tmax;
    const float *lp = s->logp + (size_t)i * s->Tmax;
    int start = 0;
    for (int p = 0; p < s->len[i] && !rc; p++) {
      const int end_here = tok[p] == OT_BPE_EOS || tok[p] == OT_BPE_SEP;
      const int last = p + 1 == s->len[i];
      if (!end_here && !last) continue;
      const int n_text = end_here ? p - start : p + 1 - start; /* tokens of the text */
      double sum = 0.0;
      for (int q = start; q <= p; q++) sum += lp[q];
      ot_bpe_utf8 st = {0}; /* cut at Tmax inside a character: no tag */
      int whole = 1;
      for (int q = start; q < start + n_text && whole; q++) whole = ot_bpe_utf8_next(o->bpe, &st, tok[q]);
      char *text = NULL;
      if (whole && !st.need) rc = tag_text(o->bpe, tok + start, n_text, &tb, &text);
      if (!rc && text) {
        const int b = s->item_of[i];
        add_tag(&out[b], &cap[b], text, s->prompt_p[i], (float)exp(sum / (p + 1 - start)));
      }
      start = p + 1;
    }
  }
  for (int b = 0; b < B; b++)
    if (out[b].n > 1) qsort(out[b].tags, (size_t)out[b].n, sizeof *out[b].tags, ot_gen_tag_by_score);
  free(tb.buf);
  free(cap);
  return rc;
}

int ot_model_generate(ot_model *m, const ot_batch *b, const ot_gen_opts *o, ot_gen_item *out) {
  for (int i = 0; i < b->B; i++) out[i] = (ot_gen_item){0, NULL};
  if (!m->generative)
    return ot_fail(OT_EINVAL, "model: only baseline, opg and rag generate tags");
  if (!o->bpe) return ot_fail(OT_EINVAL, "model: generation needs the tokenizer");
  if (ot_bpe_vocab_size(o->bpe) != m->d.vocab)
    return ot_fail(OT_EINVAL, "model: the tokenizer has %d tokens, the model %d",
                   ot_bpe_vocab_size(o->bpe), m->d.vocab);
  ot_batch in = *b;
  in.targets = NULL, in.item_tags = in.tag_offsets = in.tag_tokens = NULL;
  int rc = ot_model_forward(m, &in, 0, 0, NULL);
  if (rc) return rc;
  gen_seqs s = {0};
  if ((rc = select_sequences(m, o, &s))) return rc;
  if ((rc = decode(m, o, &s))) return rc;
  return collect(o, &s, b->B, out);
}

void ot_gen_items_free(ot_gen_item *items, int n) {
  if (!items) return;
  for (int i = 0; i < n; i++) {
    for (int j = 0; j < items[i].n; j++) free(items[i].tags[j].tag);
    free(items[i].tags);
    items[i] = (ot_gen_item){0, NULL};
  }
}
