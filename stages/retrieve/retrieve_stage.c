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
#include "ot_hash.h"
#include "ot_ledger.h"
#include "ot_log.h"
#include "ot_mpi.h"
#include "ot_retriever.h"

#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define QUERY_BLOCK 256 /* queries per FAISS call */

typedef struct {
  const ot_config *cfg;
  char embed_dir[4200], out_dir[4200];
  ot_retriever *ret;
} retriever;

typedef struct {
  int64_t n, cap;  /* candidates */
  const char **tags;
  float *scores, *src;
} cand_buf;

/* Append the candidates of one query block. */
static void cand_append(cand_buf *b, int n_src, const ot_retrieved *got) {
  const int64_t m = got->off[got->n];
  if (b->n + m > b->cap) {
    b->cap = b->n + m > 2 * b->cap ? b->n + m : 2 * b->cap;
    b->tags = ot_xrealloc(b->tags, (size_t)b->cap * sizeof *b->tags);
    b->scores = ot_xrealloc(b->scores, (size_t)b->cap * sizeof *b->scores);
    b->src = ot_xrealloc(b->src, (size_t)b->cap * n_src * sizeof *b->src);
  }
  if (m) {
    memcpy(b->tags + b->n, got->tags, (size_t)m * sizeof *b->tags);
    memcpy(b->scores + b->n, got->scores, (size_t)m * sizeof *b->scores);
    memcpy(b->src + (size_t)b->n * n_src, got->source_scores, (size_t)m * n_src * sizeof *b->src);
  }
  b->n += m;
}

/* Candidates of every item of embedding file f of `set` into cand-<f>.h5. */
static int retrieve_file(retriever *r, const ot_emb_set *set, int f, int same_split, const char *out,
                         ot_ledger *ledger, ot_workq *q, ot_progress *prog) {
  const int n_src = ot_retriever_n_sources(r->ret);
  ot_emb *e = NULL;
  int st = ot_emb_open(&e, ot_emb_set_file_path(set, f));
  if (st) return st;
  const int64_t n = ot_emb_count(e);
  float *qbuf[OT_RETRIEVER_MAX_SOURCES] = {0};
  for (int s = 0; s < n_src && st == OT_OK; s++) {
    const char *qv = ot_retriever_query_vec(r->ret, s);
    const int dim = ot_retriever_dim(r->ret, s);
    if (ot_emb_dim(e, qv) != dim)
      st = ot_fail(OT_EINVAL, "%s: vector '%s' has dim %d, index '%s' expects %d", ot_emb_set_file_path(set, f),
                   qv, ot_emb_dim(e, qv), ot_retriever_source_name(r->ret, s), dim);
    else qbuf[s] = ot_xmalloc((size_t)QUERY_BLOCK * dim * sizeof(float));
  }
  cand_buf cb = {0};
  int64_t *off = ot_xmalloc((size_t)(n + 1) * sizeof *off);
  const char **ids = ot_xmalloc((size_t)(n + 1) * sizeof *ids);
  const char **groups = ot_xmalloc((size_t)(n + 1) * sizeof *groups);
  for (int64_t i = 0; i < n; i++) ids[i] = ot_emb_id(e, i), groups[i] = ot_emb_group(e, i);
  off[0] = 0;
  for (int64_t b0 = 0; b0 < n && st == OT_OK; b0 += QUERY_BLOCK) {
    const int64_t nb = n - b0 < QUERY_BLOCK ? n - b0 : QUERY_BLOCK;
    for (int s = 0; s < n_src && st == OT_OK; s++)
      st = ot_emb_read(e, ot_retriever_query_vec(r->ret, s), b0, nb, qbuf[s]);
    ot_retrieved got;
    if (st == OT_OK)
      st = ot_retriever_query(r->ret, nb, (const float *const *)qbuf, ids + b0, groups + b0, same_split, &got);
    if (st) break;
    for (int64_t i = 0; i < nb; i++) off[b0 + i + 1] = cb.n + got.off[i + 1];
    cand_append(&cb, n_src, &got);
  }
  if (st == OT_OK) {
    char path[4500];
    snprintf(path, sizeof path, "%s/cand-%06d.h5", out, f);
    st = ot_cand_write(path, n, ids, off, cb.tags ? cb.tags : ids, cb.scores ? cb.scores : (float[]){0}, n_src,
                       ot_retriever_source_names(r->ret), cb.src ? cb.src : (float[]){0});
  }
  if (st == OT_OK) {
    char rec[128];
    snprintf(rec, sizeof rec, "{\"file\": %d, \"items\": %lld}", f, (long long)n);
    st = ot_ledger_mark_done(ledger, f, rec);
  }
  ot_workq_add_done(q, n);
  ot_progress_update(prog, ot_workq_done(q));
  for (int s = 0; s < n_src; s++) free(qbuf[s]);
  free(cb.tags), free(cb.scores), free(cb.src);
  free(off), free(ids), free(groups);
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
    int len = snprintf(fp, sizeof fp, "%s|%s|%s|%d|%d|%d|%.9g|%.9g", r->embed_dir,
                       ot_retriever_index_dir(r->ret), split,
                       cfg->retrieve.k, cfg->retrieve.top_m, cfg->retrieve.norm, cfg->retrieve.temperature,
                       cfg->retrieve.consensus);
    for (int s = 0; s < ot_retriever_n_sources(r->ret) && len < (int)sizeof fp - 200; s++)
      len += snprintf(fp + len, sizeof fp - (size_t)len, "|%s=%.9g:%lld", ot_retriever_source_name(r->ret, s),
                      ot_retriever_weight(r->ret, s), (long long)ot_retriever_ntotal(r->ret, s));
    uint64_t h = ot_fnv1a64(fp, strlen(fp), OT_FNV64_INIT);
    /* and the inputs by their files' versions, as ot-index fingerprints its
     * own: paths and sizes stay when the indexes are rebuilt (another
     * checkpoint, ot-embed run again) or the split is embedded again, and
     * the files done before would silently be kept beside new ones */
    h = ot_retriever_index_version(r->ret, h);
    if (strcmp(ot_config_origin(cfg, "index.nprobe"), "default") != 0)
      h = ot_fnv1a64(&cfg->index.nprobe, sizeof cfg->index.nprobe, h);
    const uint64_t queries = ot_emb_set_version(set);
    h = ot_fnv1a64(&queries, sizeof queries, h);
    /* an earlier run's index.json and tags.jsonl would vouch for the files this one rewrites */
    static const char *const published[] = {"index.json", "tags.jsonl", NULL};
    st = ot_ledger_open_all(&ledger, out, "retrieve", h, ot_emb_set_files(set), published);
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
      st = ot_cand_write_index(r->out_dir, split, ot_retriever_n_sources(r->ret),
                               ot_retriever_source_names(r->ret), nf,
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

/* The queries must live in the space of the vectors the indexes hold: an
 * index built before the training split was embedded again (another
 * encoder, often) would answer with the old encoder's neighbours. */
static int check_index_embeddings(retriever *r) {
  ot_emb_set *train = NULL;
  int st = ot_emb_set_open(&train, r->embed_dir, "train");
  if (st) return st;
  char now[17];
  snprintf(now, sizeof now, "%016llx", (unsigned long long)ot_emb_set_version(train));
  ot_emb_set_close(train);
  for (int s = 0; s < ot_retriever_n_sources(r->ret); s++) {
    const char *built = ot_retriever_index_embeddings(r->ret, s);
    if (built && strcmp(built, now) != 0)
      return ot_fail(OT_EINVAL,
                     "%s/%s was built from other embeddings of the training split than %s/train holds now "
                     "(embedded again since?): run ot-index again, or set embed.dir to the embeddings it was "
                     "built from",
                     ot_retriever_index_dir(r->ret), ot_retriever_source_name(r->ret, s), r->embed_dir);
  }
  return OT_OK;
}

static int setup(retriever *r) {
  const ot_config *cfg = r->cfg;
  int st;
  if ((st = ot_config_dir(cfg, "embed.dir", "embed", r->embed_dir, sizeof r->embed_dir)) ||
      (st = ot_config_dir(cfg, "retrieve.dir", "retrieve", r->out_dir, sizeof r->out_dir)))
    return st;
  if ((st = ot_retriever_open(&r->ret, cfg))) return st;
  return check_index_embeddings(r);
}

int ot_retrieve_stage_run(const ot_config *cfg, int *exit_code) {
  (void)exit_code;
  retriever r;
  memset(&r, 0, sizeof r);
  r.cfg = cfg;
  int st = ot_mpi_agree(setup(&r));
  if (st == OT_OK) {
    ot_log_info0("%d source(s); k %d, norm %s, top_m %d, consensus %g", ot_retriever_n_sources(r.ret), cfg->retrieve.k,
                 (const char *[]){"minmax", "zscore", "softmax", "rank"}[cfg->retrieve.norm], cfg->retrieve.top_m,
                 cfg->retrieve.consensus);
  }
  char *splits = ot_xstrdup(cfg->retrieve.splits), *save = NULL;
  for (char *sp = strtok_r(splits, ", ", &save); sp && st == OT_OK; sp = strtok_r(NULL, ", ", &save))
    st = retrieve_split(&r, sp);
  if (st == OT_OK) {
    st = ot_mpi_agree(ot_mpi_rank() == 0 ? ot_answer_write_all(r.out_dir, r.embed_dir, cfg->retrieve.splits,
                                                                cfg->retrieve.consensus,
                                                                ot_retriever_n_sources(r.ret))
                                         : OT_OK);
  }
  free(splits);
  ot_retriever_close(r.ret);
  return st;
}

const ot_cli_info ot_retrieve_stage_info = {
    "ot-retrieve",
    "Retrieve tag candidates for every item of the splits retrieve.splits: query each source of\n"
    "index.sources (built by ot-index from the training split) with the item's embedding\n"
    "(embed.dir), leaving out the item itself and, for the training split, its group; fuse the\n"
    "neighbours' tags across sources (retrieve.norm, weights, consensus) and keep the top_m per\n"
    "item in <retrieve.dir>/<split>/cand-NNNNNN.h5. Then answer with retrieval alone: a threshold\n"
    "on the fused score tuned for F1 on val, <retrieve.dir>/<split>/tags.jsonl (source \"ret\").\n"
    "A rerun writes only the missing files; one whose inputs changed since (indexes rebuilt, a split\n"
    "embedded again) is refused (exit 2) rather than mixed.",
    "train embed index retrieve", NULL};
