/* ot-retrieve: multi-source tag candidates for every item of retrieve.splits.
 *
 * For each embedding file of a split (the unit of work, handed out
 * dynamically, recorded in the split's ledger), every item queries each
 * source of index.sources whose weight is > 0 with its query vector; the
 * item itself (by id) is never a neighbour, nor, when the split is the one
 * the indexes were built from (train), any item of its group. The first
 * retrieve.k remaining neighbours of each source are fused into the top
 * retrieve.top_m tags (ops/ot_fusion.h) and written to
 * <retrieve.dir>/<split>/cand-NNNNNN.h5 (ot_cand.h).
 *
 * Then rank 0 answers with retrieval alone: the decision threshold on the
 * fused score that maximises micro F1 on val (when val was retrieved) is
 * applied to every split, written to <retrieve.dir>/<split>/tags.jsonl as
 * {"id", "tags": [{"tag", "score": fused, "source": "ret"}]}, and recorded in
 * <retrieve.dir>/threshold.json. */
#include "retrieve_stage.h"
#include "answer.h"
#include "ot_cand.h"
#include "ot_common.h"
#include "ot_emb.h"
#include "ot_fs.h"
#include "ot_fusion.h"
#include "ot_hash.h"
#include "ot_index.h"
#include "ot_ledger.h"
#include "ot_log.h"
#include "ot_mpi.h"

#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Static_assert((int)OT_FUSION_MINMAX == (int)OT_NORM_MINMAX && (int)OT_FUSION_ZSCORE == (int)OT_NORM_ZSCORE &&
                   (int)OT_FUSION_SOFTMAX == (int)OT_NORM_SOFTMAX && (int)OT_FUSION_RANK == (int)OT_NORM_RANK,
               "ot_fusion normalisations follow the config enum");

#define MAX_SOURCES 16
#define QUERY_BLOCK 256 /* queries per FAISS call */

typedef struct {
  const ot_config *cfg;
  char embed_dir[4200], index_dir[4200], out_dir[4200];
  int n_src;
  char *names[MAX_SOURCES];
  float weights[MAX_SOURCES];
  ot_index *ix[MAX_SOURCES];
  ot_fusion *fusion;
} retriever;

/* One item's neighbours from source s, self and (same_split) its group left
 * out: the first k valid of the rows/sims returned for it. */
static int keep_valid(const ot_index *ix, const char *id, const char *group, int same_split,
                      const float *sims, const int64_t *rows, int kq, int k, float *out_sims,
                      int64_t *out_rows, int *exhausted) {
  int n = 0, seen = 0;
  for (int j = 0; j < kq && n < k; j++) {
    if (rows[j] < 0) break;
    seen++;
    if (!strcmp(ot_index_row_id(ix, rows[j]), id)) continue;
    if (same_split && group[0] && !strcmp(ot_index_row_group(ix, rows[j]), group)) continue;
    out_sims[n] = sims[j], out_rows[n] = rows[j], n++;
  }
  /* all kq were real rows and still fewer than k survived: ask for more */
  *exhausted = seen < kq;
  return n;
}

typedef struct {
  int64_t n, cap;  /* candidates */
  const char **tags;
  float *scores, *src;
} cand_buf;

static void cand_push(cand_buf *b, int n_src, const ot_fusion_cand *c) {
  if (b->n == b->cap) {
    b->cap = b->cap ? 2 * b->cap : 4096;
    b->tags = ot_xrealloc(b->tags, (size_t)b->cap * sizeof *b->tags);
    b->scores = ot_xrealloc(b->scores, (size_t)b->cap * sizeof *b->scores);
    b->src = ot_xrealloc(b->src, (size_t)b->cap * n_src * sizeof *b->src);
  }
  b->tags[b->n] = c->tag;
  b->scores[b->n] = c->score;
  memcpy(b->src + (size_t)b->n * n_src, c->source_scores, (size_t)n_src * sizeof *b->src);
  b->n++;
}

/* Candidates of every item of embedding file f of `set` into cand-<f>.h5. */
static int retrieve_file(retriever *r, const ot_emb_set *set, int f, int same_split, const char *out,
                         ot_ledger *ledger, ot_workq *q, ot_progress *prog) {
  const ot_config *cfg = r->cfg;
  const int k = cfg->retrieve.k, M = cfg->retrieve.top_m;
  ot_emb *e = NULL;
  int st = ot_emb_open(&e, ot_emb_set_file_path(set, f));
  if (st) return st;
  const int64_t n = ot_emb_count(e);
  /* sims/rows of every source for every item: [src][n, k] */
  float *nb_sims[MAX_SOURCES] = {0};
  int64_t *nb_rows[MAX_SOURCES] = {0};
  int *nb_n[MAX_SOURCES] = {0};
  for (int s = 0; s < r->n_src && st == OT_OK; s++) {
    const ot_index *ix = r->ix[s];
    const char *qv = ot_index_query_vec(ix);
    const int dim = ot_index_dim(ix);
    if (ot_emb_dim(e, qv) != dim) {
      st = ot_fail(OT_EINVAL, "%s: vector '%s' has dim %d, index '%s' expects %d", ot_emb_set_file_path(set, f),
                   qv, ot_emb_dim(e, qv), r->names[s], dim);
      break;
    }
    nb_sims[s] = ot_xmalloc((size_t)(n + 1) * k * sizeof(float));
    nb_rows[s] = ot_xmalloc((size_t)(n + 1) * k * sizeof(int64_t));
    nb_n[s] = ot_xcalloc((size_t)n + 1, sizeof(int));
    /* room for the excluded self/group rows; items whose group is larger
     * than that are asked again below with a larger k */
    const int64_t ntotal = ot_index_ntotal(ix);
    int kq = (int)(2 * k < ntotal ? 2 * k : ntotal > 0 ? ntotal : 1);
    float *qbuf = ot_xmalloc((size_t)QUERY_BLOCK * dim * sizeof(float));
    float *sims = ot_xmalloc((size_t)QUERY_BLOCK * kq * sizeof(float));
    int64_t *rows = ot_xmalloc((size_t)QUERY_BLOCK * kq * sizeof(int64_t));
    for (int64_t b0 = 0; b0 < n && st == OT_OK; b0 += QUERY_BLOCK) {
      int64_t nb = n - b0 < QUERY_BLOCK ? n - b0 : QUERY_BLOCK;
      if ((st = ot_emb_read(e, qv, b0, nb, qbuf))) break;
      if ((st = ot_index_search(r->ix[s], qbuf, nb, kq, sims, rows))) break;
      for (int64_t i = 0; i < nb && st == OT_OK; i++) {
        const int64_t item = b0 + i;
        const float *qi = qbuf + (size_t)i * dim;
        double norm = 0.0;
        for (int d = 0; d < dim; d++) norm += (double)qi[d] * qi[d];
        if (norm == 0.0) continue; /* no title (say): this source has nothing to say */
        const char *id = ot_emb_id(e, item), *group = ot_emb_group(e, item);
        float *os = nb_sims[s] + (size_t)item * k;
        int64_t *orow = nb_rows[s] + (size_t)item * k;
        int exhausted, got = keep_valid(ix, id, group, same_split, sims + (size_t)i * kq, rows + (size_t)i * kq,
                                        kq, k, os, orow, &exhausted);
        for (int64_t kk = 4 * (int64_t)k; got < k && !exhausted && kq < ntotal; kk *= 2) {
          int kb = (int)(kk < ntotal ? kk : ntotal);
          float *s2 = ot_xmalloc((size_t)kb * sizeof *s2);
          int64_t *r2 = ot_xmalloc((size_t)kb * sizeof *r2);
          st = ot_index_search(r->ix[s], qi, 1, kb, s2, r2);
          if (st == OT_OK) got = keep_valid(ix, id, group, same_split, s2, r2, kb, k, os, orow, &exhausted);
          free(s2);
          free(r2);
          if (st || kb >= ntotal) break;
        }
        nb_n[s][item] = got;
      }
    }
    free(qbuf);
    free(sims);
    free(rows);
  }
  cand_buf cb = {0};
  int64_t *off = ot_xmalloc((size_t)(n + 1) * sizeof *off);
  const char **ids = ot_xmalloc((size_t)(n + 1) * sizeof *ids);
  ot_fusion_cand *top = ot_xmalloc((size_t)M * sizeof *top);
  const char *const **nb_tags = ot_xmalloc((size_t)k * sizeof *nb_tags);
  int *nb_ntags = ot_xmalloc((size_t)k * sizeof *nb_ntags);
  off[0] = 0;
  for (int64_t i = 0; i < n && st == OT_OK; i++) {
    ids[i] = ot_emb_id(e, i);
    ot_fusion_reset(r->fusion);
    for (int s = 0; s < r->n_src; s++) {
      int m = nb_n[s][i];
      for (int j = 0; j < m; j++) ot_index_row_tags(r->ix[s], nb_rows[s][(size_t)i * k + j], &nb_tags[j], &nb_ntags[j]);
      ot_fusion_add_source(r->fusion, s, nb_sims[s] + (size_t)i * k, m, nb_tags, nb_ntags, cfg->retrieve.norm,
                           (float)cfg->retrieve.temperature);
    }
    int nt = ot_fusion_top(r->fusion, r->weights, (float)cfg->retrieve.consensus, M, top);
    for (int c = 0; c < nt; c++) cand_push(&cb, r->n_src, &top[c]);
    off[i + 1] = cb.n;
  }
  if (st == OT_OK) {
    char path[4500];
    snprintf(path, sizeof path, "%s/cand-%06d.h5", out, f);
    st = ot_cand_write(path, n, ids, off, cb.tags ? cb.tags : ids, cb.scores ? cb.scores : (float[]){0}, r->n_src,
                       (const char *const *)r->names, cb.src ? cb.src : (float[]){0});
  }
  if (st == OT_OK) {
    char rec[128];
    snprintf(rec, sizeof rec, "{\"file\": %d, \"items\": %lld}", f, (long long)n);
    st = ot_ledger_mark_done(ledger, f, rec);
  }
  ot_workq_add_done(q, n);
  ot_progress_update(prog, ot_workq_done(q));
  for (int s = 0; s < r->n_src; s++) free(nb_sims[s]), free(nb_rows[s]), free(nb_n[s]);
  free(cb.tags), free(cb.scores), free(cb.src);
  free(off), free(ids), free(top), free(nb_tags), free(nb_ntags);
  ot_emb_close(e);
  return st;
}

/* Collective: candidates for one split. */
static int retrieve_split(retriever *r, const char *split) {
  const ot_config *cfg = r->cfg;
  char out[4400];
  ot_fs_join(out, sizeof out, r->out_dir, split);
  ot_emb_set *set = NULL;
  ot_ledger *ledger = NULL;
  ot_workq *q = NULL;
  int st = ot_mpi_agree(ot_emb_set_open(&set, r->embed_dir, split));
  if (st == OT_OK) {
    /* everything that shapes the candidates: a rerun with other settings is
     * refused instead of mixing files */
    char fp[16384];
    int len = snprintf(fp, sizeof fp, "%s|%s|%s|%d|%d|%d|%.9g|%.9g", r->embed_dir, r->index_dir, split,
                       cfg->retrieve.k, cfg->retrieve.top_m, cfg->retrieve.norm, cfg->retrieve.temperature,
                       cfg->retrieve.consensus);
    for (int s = 0; s < r->n_src && len < (int)sizeof fp - 200; s++)
      len += snprintf(fp + len, sizeof fp - (size_t)len, "|%s=%.9g:%lld", r->names[s], r->weights[s],
                      (long long)ot_index_ntotal(r->ix[s]));
    uint64_t h = ot_fnv1a64(fp, strlen(fp), OT_FNV64_INIT);
    int owner = ot_mpi_rank() == 0;
    st = ot_mpi_agree(owner ? ot_ledger_open(&ledger, out, "retrieve", h, 1) : OT_OK);
    if (st == OT_OK) st = ot_mpi_agree(owner ? OT_OK : ot_ledger_open(&ledger, out, "retrieve", h, 0));
  }
  if (st == OT_OK) st = ot_workq_open(&q, ot_emb_set_files(set));
  if (st == OT_OK) {
    const int same_split = !strcmp(split, "train");
    int64_t already = 0;
    for (int f = 0; f < ot_emb_set_files(set); f++)
      if (ot_ledger_is_done(ledger, f)) already += ot_emb_set_file_items(set, f);
    ot_log_info0("retrieving candidates for %lld items of %s into %s%s", (long long)ot_emb_set_count(set), split,
                 out, same_split ? " (own group excluded)" : "");
    ot_progress prog;
    ot_progress_start(&prog, "items", ot_emb_set_count(set), already);
    if (ot_mpi_rank() == 0) ot_workq_add_done(q, already);
    int local = OT_OK;
    int64_t f;
    while (local == OT_OK && (f = ot_workq_next(q)) >= 0)
      if (!ot_ledger_is_done(ledger, f)) local = retrieve_file(r, set, (int)f, same_split, out, ledger, q, &prog);
    if (local) ot_log_error("%s", ot_errmsg());
    MPI_Barrier(MPI_COMM_WORLD);
    ot_progress_finish(&prog, ot_workq_done(q));
    st = ot_mpi_agree(local);
    if (st == OT_OK && ot_mpi_rank() == 0) {
      int nf = ot_emb_set_files(set);
      char **paths = ot_xcalloc((size_t)nf + 1, sizeof *paths);
      int64_t *items = ot_xcalloc((size_t)nf + 1, sizeof *items);
      for (int i = 0; i < nf; i++) {
        paths[i] = ot_xmalloc(32);
        snprintf(paths[i], 32, "cand-%06d.h5", i);
        items[i] = ot_emb_set_file_items(set, i);
      }
      st = ot_cand_write_index(r->out_dir, split, r->n_src, (const char *const *)r->names, nf,
                               (const char *const *)paths, items);
      for (int i = 0; i < nf; i++) free(paths[i]);
      free(paths);
      free(items);
    }
    st = ot_mpi_agree(st);
  }
  ot_workq_close(q);
  ot_ledger_close(ledger);
  ot_emb_set_close(set);
  return st;
}

/* Sources from index.sources ("name=query:key,..."), their weights from
 * retrieve.weights ("name=w,..."; unlisted: 1; 0 leaves a source out). */
static int parse_sources(retriever *r) {
  const ot_config *cfg = r->cfg;
  char *list = ot_xstrdup(cfg->index.sources), *save = NULL;
  int st = OT_OK;
  for (char *tok = strtok_r(list, ",", &save); tok && st == OT_OK; tok = strtok_r(NULL, ",", &save)) {
    while (*tok == ' ') tok++;
    char *eq = strchr(tok, '=');
    if (eq) *eq = '\0';
    if (!tok[0]) st = ot_fail(OT_EINVAL, "index.sources: empty source name in '%s'", cfg->index.sources);
    else if (r->n_src == MAX_SOURCES) st = ot_fail(OT_EINVAL, "index.sources: more than %d sources", MAX_SOURCES);
    else r->names[r->n_src] = ot_xstrdup(tok), r->weights[r->n_src++] = 1.0f;
  }
  free(list);
  list = ot_xstrdup(cfg->retrieve.weights);
  for (char *tok = strtok_r(list, ",", &save); tok && st == OT_OK; tok = strtok_r(NULL, ",", &save)) {
    while (*tok == ' ') tok++;
    char *eq = strchr(tok, '='), *end = NULL;
    double w = eq ? strtod(eq + 1, &end) : -1.0;
    if (eq) *eq = '\0';
    int s = 0;
    while (s < r->n_src && strcmp(r->names[s], tok)) s++;
    if (!eq || end == eq + 1 || *end || !(w >= 0.0) || !isfinite(w))
      st = ot_fail(OT_EINVAL, "retrieve.weights: '%s' is not name=weight (weight >= 0)", tok);
    else if (s == r->n_src)
      st = ot_fail(OT_EINVAL, "retrieve.weights: '%s' is not a source of index.sources ('%s')", tok,
                   cfg->index.sources);
    else r->weights[s] = (float)w;
  }
  free(list);
  /* drop the sources weighted 0 */
  int kept = 0;
  for (int s = 0; s < r->n_src; s++) {
    if (r->weights[s] > 0.0f) r->names[kept] = r->names[s], r->weights[kept++] = r->weights[s];
    else free(r->names[s]);
  }
  r->n_src = kept;
  if (st == OT_OK && !kept) st = ot_fail(OT_EINVAL, "retrieve.weights: every source has weight 0");
  return st;
}

static int setup(retriever *r) {
  const ot_config *cfg = r->cfg;
  int st;
  if ((st = ot_config_dir(cfg, "embed.dir", "embed", r->embed_dir, sizeof r->embed_dir)) ||
      (st = ot_config_dir(cfg, "index.dir", "index", r->index_dir, sizeof r->index_dir)) ||
      (st = ot_config_dir(cfg, "retrieve.dir", "retrieve", r->out_dir, sizeof r->out_dir)))
    return st;
  if ((st = parse_sources(r))) return st;
  const int set_nprobe = strcmp(ot_config_origin(cfg, "index.nprobe"), "default") != 0;
  for (int s = 0; s < r->n_src; s++) {
    if ((st = ot_index_open(&r->ix[s], r->index_dir, r->names[s]))) return st;
    if (set_nprobe && (st = ot_index_set_nprobe(r->ix[s], cfg->index.nprobe))) return st;
  }
  return ot_fusion_open(&r->fusion, r->n_src);
}

int ot_retrieve_stage_run(const ot_config *cfg, int *exit_code) {
  (void)exit_code;
  retriever r;
  memset(&r, 0, sizeof r);
  r.cfg = cfg;
  int st = ot_mpi_agree(setup(&r));
  if (st == OT_OK) {
    ot_log_info0("%d source(s); k %d, norm %s, top_m %d, consensus %g", r.n_src, cfg->retrieve.k,
                 (const char *[]){"minmax", "zscore", "softmax", "rank"}[cfg->retrieve.norm], cfg->retrieve.top_m,
                 cfg->retrieve.consensus);
  }
  char *splits = ot_xstrdup(cfg->retrieve.splits), *save = NULL;
  for (char *sp = strtok_r(splits, ", ", &save); sp && st == OT_OK; sp = strtok_r(NULL, ", ", &save))
    st = retrieve_split(&r, sp);
  if (st == OT_OK) {
    st = ot_mpi_agree(ot_mpi_rank() == 0 ? ot_answer_write_all(r.out_dir, r.embed_dir, cfg->retrieve.splits,
                                                                cfg->retrieve.consensus, r.n_src)
                                         : OT_OK);
  }
  free(splits);
  for (int s = 0; s < r.n_src; s++) {
    ot_index_close(r.ix[s]);
    free(r.names[s]);
  }
  ot_fusion_close(r.fusion);
  return st;
}

const ot_cli_info ot_retrieve_stage_info = {
    "ot-retrieve",
    "Retrieve tag candidates for every item of the splits retrieve.splits: query each source of\n"
    "index.sources (built by ot-index from the training split) with the item's embedding\n"
    "(embed.dir), leaving out the item itself and, for the training split, its group; fuse the\n"
    "neighbours' tags across sources (retrieve.norm, weights, consensus) and keep the top_m per\n"
    "item in <retrieve.dir>/<split>/cand-NNNNNN.h5. Then answer with retrieval alone: a threshold\n"
    "on the fused score tuned for F1 on val, <retrieve.dir>/<split>/tags.jsonl (source \"ret\").",
    "embed index retrieve"};
