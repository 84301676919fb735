/* ot-tag's raw-manifest mode for a rag model: the retrieved candidates that
 * the shard path reads from ot-retrieve's files are computed per pass, the
 * way ot-embed + ot-retrieve compute them, with no file in between:
 *
 *   frames + title -> the encoder checkpoint embed.ckpt (built from its own
 *                     stored config: it is the bin/asl model the indexes were
 *                     made with, not the rag model being run) -> visual,
 *                     title, fused vectors (ot_model_embed)
 *   title          -> the n-gram TF-IDF vector (ngram.h; IDF from data.dir's
 *                     train split, as ot-embed computes it)
 *   vectors        -> every source's index, fused (ot_retriever.h; the
 *                     manifest is not the split the indexes hold, so only
 *                     the item itself, by id, is left out)
 *   candidates     -> the first model.rag_m into the batch (ot_cand_tokens)
 *
 * Same numbers as the shard path when the passes have the same sizes
 * (tag.batch = embed.batch, and FAISS query blocks on the same side of its
 * BLAS threshold): the model forward and the search are per item. */
#include "tagger.h"

#include "batcher.h"
#include "infer.h"
#include "ngram.h"
#include "ot_common.h"
#include "ot_dataset.h"
#include "ot_fs.h"
#include "ot_hash.h"
#include "ot_retriever.h"
#include "titles.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { VEC_VISUAL, VEC_TITLE, VEC_FUSED, VEC_NGRAM, N_VECS };
static const char *const vec_names[N_VECS] = {"visual", "title", "fused", "ngram"};

struct tag_rag_input {
  ot_config emb_cfg;       /* the encoder checkpoint's own config */
  ot_infer emb;            /* the encoder */
  ot_titles *emb_titles;   /* titles as the encoder reads them (its BPE, its title_len) */
  int L, C, G;             /* encoder title length and width; n-gram dimension (0: unused) */
  int32_t *title;          /* [B,L] */
  uint8_t *mask;           /* [B,L] */
  int D;                   /* the encoder's model.title_ngram, 0: none */
  float *title_ngram;      /* [B,D] its input (ot_batch.title_ngram) */
  float *vec[N_VECS];      /* [B,C] x 3, [B,G] */
  float *idf;              /* [G] */
  ot_retriever *ret;
  int src_vec[OT_RETRIEVER_MAX_SOURCES]; /* the vector each source queries */
  ot_titles *cand_titles;  /* candidates as the rag model reads them (its BPE) */
  ot_cand_tokens *cands;
  char what[9000];         /* what shapes the candidates (ledger fingerprint) */
};

/* Each source's query vector, checked against what can be computed. */
static int map_sources(tag_rag_input *r, const tagger *t, int *uses_ngram) {
  *uses_ngram = 0;
  for (int s = 0; s < ot_retriever_n_sources(r->ret); s++) {
    const char *qv = ot_retriever_query_vec(r->ret, s), *name = ot_retriever_source_name(r->ret, s);
    int v = 0;
    while (v < N_VECS && strcmp(vec_names[v], qv)) v++;
    if (v == N_VECS)
      return ot_fail(OT_EINVAL, "%s: index source '%s' queries vector '%s'; raw-manifest tagging computes "
                     "visual, title, fused and ngram", ot_retriever_index_dir(r->ret), name, qv);
    const int have = v == VEC_NGRAM ? t->cfg->embed.ngram_dim : r->C;
    if (ot_retriever_dim(r->ret, s) != have)
      return ot_fail(OT_EINVAL, "%s: index source '%s' has dim %d but its query vector '%s' is %d wide "
                     "here (%s)", ot_retriever_index_dir(r->ret), name, ot_retriever_dim(r->ret, s), qv, have,
                     v == VEC_NGRAM ? "embed.ngram_dim" : "the model.dim of embed.ckpt");
    r->src_vec[s] = v;
    if (v == VEC_NGRAM) *uses_ngram = 1;
  }
  return OT_OK;
}

/* IDF of the n-gram vector from the training split's titles (ot-embed's). */
static int ngram_idf(tag_rag_input *r, const ot_config *cfg) {
  int st = ot_config_require(cfg, "data.dir");
  if (st) return ot_fail_ctx(st, "IDF of the n-gram vector (the training split's titles)");
  char train_dir[4400];
  snprintf(train_dir, sizeof train_dir, "%s/train", cfg->data.dir);
  ot_dataset *train = NULL;
  if ((st = ot_dataset_open(&train, train_dir))) {
    ot_dataset_close(train);
    return ot_fail_ctx(st, "IDF of the n-gram vector");
  }
  r->idf = ot_xmalloc((size_t)r->G * sizeof *r->idf);
  ot_ngram_idf(train, r->G, r->idf);
  ot_dataset_close(train);
  return OT_OK;
}

int tag_rag_input_open(tag_rag_input **out, const tagger *t, int max_items) {
  const ot_config *cfg = t->cfg;
  tag_rag_input *r = ot_xcalloc(1, sizeof *r);
  *out = r;
  OT_ASSERT(cfg->embed.ckpt[0]); /* required by ot-tag's setup, with the message */
  int st = ot_infer_open_own(&r->emb, &r->emb_cfg, cfg->embed.ckpt, max_items);
  if (st) return ot_fail_ctx(st, "embed.ckpt");
  if ((st = tag_raw_check_model(&r->emb, "embed.ckpt"))) return st;
  const ot_ckpt_meta *e = &r->emb.meta, *m = &t->inf.meta;
  if (e->T != m->T || e->H != m->H || e->W != m->W)
    return ot_fail(OT_EINVAL, "embed.ckpt %s was trained on frames [%d,%d,%d] but %s on [%d,%d,%d]",
                   r->emb.ckpt, e->T, e->H, e->W, t->inf.ckpt, m->T, m->H, m->W);
  r->L = r->emb_cfg.model.title_len, r->C = r->emb_cfg.model.dim;
  ot_titles_open(&r->emb_titles, r->emb.bpe, r->L);
  if ((st = ot_retriever_open(&r->ret, cfg))) return st;
  int uses_ngram;
  if ((st = map_sources(r, t, &uses_ngram))) return st;
  r->G = uses_ngram ? cfg->embed.ngram_dim : 0;
  if (r->G && (st = ngram_idf(r, cfg))) return st;
  r->title = ot_xmalloc((size_t)max_items * r->L * sizeof *r->title);
  r->mask = ot_xmalloc((size_t)max_items * r->L);
  r->D = ot_model_title_ngram(r->emb.model);
  if (r->D) r->title_ngram = ot_xmalloc((size_t)max_items * r->D * sizeof *r->title_ngram);
  for (int v = 0; v < N_VECS; v++)
    r->vec[v] = ot_xmalloc((size_t)max_items * (v == VEC_NGRAM ? (r->G ? r->G : 1) : r->C) * sizeof(float));
  ot_titles_open(&r->cand_titles, t->inf.bpe, cfg->model.title_len);
  ot_cand_tokens_open(&r->cands, r->cand_titles, max_items, cfg->model.tag_len, cfg->model.rag_m);
  int len = snprintf(r->what, sizeof r->what, "|rag|%s|%s|%d|%d|%d|%.9g|%.9g|ng%d:%s", r->emb.ckpt,
                     ot_retriever_index_dir(r->ret), cfg->retrieve.k, cfg->retrieve.top_m, cfg->retrieve.norm,
                     cfg->retrieve.temperature, cfg->retrieve.consensus, r->G, r->G ? cfg->data.dir : "");
  for (int s = 0; s < ot_retriever_n_sources(r->ret) && len < (int)sizeof r->what - 200; s++)
    len += snprintf(r->what + len, sizeof r->what - (size_t)len, "|%s=%.9g:%lld",
                    ot_retriever_source_name(r->ret, s),
                    ot_retriever_weight(r->ret, s), (long long)ot_retriever_ntotal(r->ret, s));
  /* the encoder and the indexes by their files' versions too: a training
   * continued rewrites final.h5 under its name, a rebuild keeps the paths */
  if (len < (int)sizeof r->what - 40)
    snprintf(r->what + len, sizeof r->what - (size_t)len, "|v%016" PRIx64,
             ot_retriever_index_version(r->ret, ot_fs_version_hash(r->emb.ckpt, OT_FNV64_INIT)));
  return OT_OK;
}

void tag_rag_input_close(tag_rag_input *r) {
  if (!r) return;
  ot_cand_tokens_close(r->cands);
  ot_titles_close(r->cand_titles);
  ot_retriever_close(r->ret);
  for (int v = 0; v < N_VECS; v++) free(r->vec[v]);
  free(r->title);
  free(r->mask);
  free(r->title_ngram);
  free(r->idf);
  ot_titles_close(r->emb_titles);
  ot_infer_close(&r->emb);
  ot_config_free(&r->emb_cfg);
  free(r);
}

const char *tag_rag_input_describe(const tag_rag_input *r) { return r->what; }

const char *tag_rag_input_encoder(const tag_rag_input *r) { return r->emb.ckpt; }

void tag_rag_input_title(tag_rag_input *r, int i, const char *title) {
  const size_t at = (size_t)i * r->L;
  ot_titles_tokens(r->emb_titles, title ? title : "", r->title + at, r->mask + at);
  if (r->G) ot_ngram_vector(title, r->idf, r->G, r->vec[VEC_NGRAM] + (size_t)i * r->G);
  if (r->D) ot_ngram_vector(title, NULL, r->D, r->title_ngram + (size_t)i * r->D);
}

int tag_rag_input_fill(tag_rag_input *r, int n, const uint8_t *frames, const char *const *ids,
                       ot_batch *batch) {
  ot_batch eb;
  memset(&eb, 0, sizeof eb);
  eb.B = n, eb.frames = frames, eb.title = r->title, eb.title_mask = r->mask;
  eb.title_ngram = r->title_ngram;
  int st = ot_model_forward(r->emb.model, &eb, 0, 0, NULL);
  if (st) return st;
  ot_model_embed(r->emb.model, r->vec[VEC_VISUAL], r->vec[VEC_TITLE], r->vec[VEC_FUSED]);
  const float *queries[OT_RETRIEVER_MAX_SOURCES];
  for (int s = 0; s < ot_retriever_n_sources(r->ret); s++) queries[s] = r->vec[r->src_vec[s]];
  ot_retrieved got;
  if ((st = ot_retriever_query(r->ret, n, queries, ids, NULL, 0, &got))) return st;
  ot_cand_tokens_clear(r->cands);
  for (int i = 0; i < n; i++) {
    const int64_t at = got.off[i];
    ot_cand_tokens_add(r->cands, got.tags + at, got.scores + at, (int)(got.off[i + 1] - at));
  }
  ot_cand_tokens_to_batch(r->cands, batch);
  return OT_OK;
}
