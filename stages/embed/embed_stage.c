/* ot-embed: retrieval vectors for every item of the splits in embed.splits.
 *
 * Per item (ot_emb.h layout, one file per dataset shard, same order):
 *   visual, title, fused  ot_model_embed of an inference forward of the
 *                         checkpoint (embed.ckpt, default the newest)
 *   ngram                 hashed character n-gram TF-IDF of the title
 *                         (ngram.h), IDF from the training split's titles;
 *                         left out when embed.ngram_dim is 0
 * Shards are the unit of work: ranks take them dynamically, each output is
 * written atomically and recorded in the split's ledger, so a rerun after a
 * crash embeds only the missing shards. Rank 0 then writes the split's
 * index.json. */
#include "embed_stage.h"
#include "infer.h"
#include "ngram.h"
#include "ot_common.h"
#include "ot_emb.h"
#include "ot_fs.h"
#include "ot_hash.h"
#include "ot_ledger.h"
#include "ot_log.h"
#include "ot_mpi.h"
#include "batcher.h"

#include <cblas.h>
#include <inttypes.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { N_MODEL_VECS = 3 };

typedef struct {
  const ot_config *cfg;
  char dir[4200];   /* embed root */
  ot_infer inf;
  float *idf;       /* [ngram_dim], NULL when ngram_dim = 0 */
  uint64_t idf_version; /* ot_dataset_version of the training split it came from (0: none) */
  int dim;          /* model width C */
} embedder;

/* Embed shard s of `d` into <out>/emb-<s>.h5. */
static int embed_shard(embedder *e, const ot_dataset *d, ot_batcher *batcher, ot_ledger *ledger,
                       const char *out, int s, ot_workq *q, ot_progress *prog) {
  int64_t first, count;
  ot_dataset_shard_range(d, s, &first, &count);
  const int B = e->cfg->embed.batch, C = e->dim, G = e->cfg->embed.ngram_dim;
  float *vecs[N_MODEL_VECS + 1];
  for (int v = 0; v < N_MODEL_VECS; v++) vecs[v] = malloc((size_t)(count ? count : 1) * C * sizeof(float));
  vecs[N_MODEL_VECS] = G ? malloc((size_t)(count ? count : 1) * G * sizeof(float)) : NULL;
  const char **ids = ot_xmalloc((size_t)(count + 1) * sizeof *ids);
  const char **groups = ot_xmalloc((size_t)(count + 1) * sizeof *groups);
  int64_t *tag_off = ot_xmalloc((size_t)(count + 1) * sizeof *tag_off);
  const char **tag_text = NULL;
  int64_t *items = ot_xmalloc((size_t)B * sizeof *items);
  int st = OT_OK;
  for (int v = 0; v < N_MODEL_VECS; v++)
    if (!vecs[v]) st = ot_fail(OT_ENOMEM, "cannot allocate vectors of %lld items", (long long)count);
  if (G && !vecs[N_MODEL_VECS]) st = ot_fail(OT_ENOMEM, "cannot allocate n-gram vectors");
  for (int64_t c = 0; c < count && st == OT_OK; c += B) {
    int n = (int)(count - c < B ? count - c : B);
    for (int i = 0; i < n; i++) items[i] = first + c + i;
    ot_batch batch;
    if ((st = ot_batcher_fill(batcher, items, n, &batch))) break;
    batch.targets = NULL;
    batch.item_tags = batch.tag_offsets = batch.tag_tokens = NULL;
    if ((st = ot_model_forward(e->inf.model, &batch, 0, 0, NULL))) break;
    ot_model_embed(e->inf.model, vecs[0] + (size_t)c * C, vecs[1] + (size_t)c * C, vecs[2] + (size_t)c * C);
    ot_workq_add_done(q, n);
    ot_progress_update(prog, ot_workq_done(q));
  }
  tag_off[0] = 0;
  for (int64_t i = 0; i < count && st == OT_OK; i++) {
    int64_t local;
    ot_shard *sh = ot_dataset_locate(d, first + i, &local);
    ids[i] = ot_shard_id(sh, local);
    groups[i] = ot_shard_group(sh, local);
    char *const *tags;
    int nt = ot_shard_tags(sh, local, &tags);
    tag_text = ot_xrealloc(tag_text, (size_t)(tag_off[i] + nt + 1) * sizeof *tag_text);
    for (int k = 0; k < nt; k++) tag_text[tag_off[i] + k] = tags[k];
    tag_off[i + 1] = tag_off[i] + nt;
    if (G) ot_ngram_vector(ot_shard_title(sh, local), e->idf, G, vecs[N_MODEL_VECS] + (size_t)i * G);
  }
  char path[4500];
  snprintf(path, sizeof path, "%s/emb-%06d.h5", out, s);
  if (st == OT_OK) {
    const char *names[] = {"visual", "title", "fused", "ngram"};
    const int dims[] = {C, C, C, G};
    const float *const cv[] = {vecs[0], vecs[1], vecs[2], vecs[3]};
    st = ot_emb_write(path, count, ids, groups, tag_off, tag_text ? tag_text : ids, G ? 4 : 3, names, dims, cv);
  }
  if (st == OT_OK) {
    char rec[128];
    snprintf(rec, sizeof rec, "{\"shard\": %d, \"items\": %lld}", s, (long long)count);
    st = ot_ledger_mark_done(ledger, s, rec);
  }
  for (int v = 0; v <= N_MODEL_VECS; v++) free(vecs[v]);
  free(ids);
  free(groups);
  free(tag_off);
  free(tag_text);
  free(items);
  return st;
}

/* Rank 0, after every shard of the split is done: index.json. */
static int write_index(const char *dir, const char *split, const ot_dataset *d) {
  int n = ot_dataset_shard_count(d);
  char **paths = ot_xcalloc((size_t)n + 1, sizeof *paths);
  int64_t *items = ot_xcalloc((size_t)n + 1, sizeof *items);
  for (int s = 0; s < n; s++) {
    int64_t first;
    paths[s] = ot_xmalloc(32);
    snprintf(paths[s], 32, "emb-%06d.h5", s);
    ot_dataset_shard_range(d, s, &first, &items[s]);
  }
  int st = ot_emb_set_write_index(dir, split, n, (const char *const *)paths, items);
  for (int s = 0; s < n; s++) free(paths[s]);
  free(paths);
  free(items);
  return st;
}

/* Collective: embed one split. */
static int embed_split(embedder *e, const char *split) {
  const ot_config *cfg = e->cfg;
  char split_dir[4400], out[4400];
  snprintf(split_dir, sizeof split_dir, "%s/%s", cfg->data.dir, split);
  ot_fs_join(out, sizeof out, e->dir, split);
  ot_dataset *d = NULL;
  ot_batcher *batcher = NULL;
  ot_ledger *ledger = NULL;
  ot_workq *q = NULL;
  int st = ot_dataset_open(&d, split_dir);
  if (st == OT_OK) st = ot_infer_check_dataset(&e->inf, d, split_dir);
  if (st == OT_OK)
    st = ot_batcher_open(&batcher, d, e->inf.bpe, &e->inf.meta.tags, cfg->model.title_len, cfg->embed.batch);
  if (st == OT_OK) ot_batcher_title_ngram(batcher, ot_model_title_ngram(e->inf.model));
  st = ot_mpi_agree(st);
  if (st == OT_OK) {
    /* what shapes the output: a rerun with another checkpoint, or on a split
     * extracted again, is refused rather than mixing files of two encoders.
     * The checkpoint by its file's version, not only its name: the newest
     * one is final.h5 whatever the training, and a training continued or
     * redone rewrites it under the same name; the n-gram IDF by the
     * training split's version */
    char fp[9000];
    snprintf(fp, sizeof fp, "%s|%s|%d|%d|data %016" PRIx64 "|ckpt %016" PRIx64 "|idf %016" PRIx64, e->inf.ckpt,
             split_dir, cfg->embed.ngram_dim, cfg->model.title_len, ot_dataset_version(d),
             ot_fs_version_hash(e->inf.ckpt, OT_FNV64_INIT), e->idf_version);
    uint64_t h = ot_fnv1a64(fp, strlen(fp), OT_FNV64_INIT);
    /* an earlier run's index.json would vouch for the files this one rewrites */
    static const char *const published[] = {"index.json", NULL};
    st = ot_ledger_open_all(&ledger, out, "embed", h, ot_dataset_shard_count(d), published);
  }
  if (st == OT_OK) st = ot_workq_open(&q, ot_dataset_shard_count(d));
  if (st == OT_OK) {
    int64_t already = 0;
    for (int s = 0; s < ot_dataset_shard_count(d); s++)
      if (ot_ledger_is_done(ledger, s)) {
        int64_t first, count;
        ot_dataset_shard_range(d, s, &first, &count);
        already += count;
      }
    ot_log_info0("embedding %lld items of %s into %s", (long long)ot_dataset_count(d), split_dir, out);
    ot_progress prog;
    ot_progress_start(&prog, "items", ot_dataset_count(d), already);
    if (ot_mpi_rank() == 0) ot_workq_add_done(q, already);
    int local = OT_OK;
    int64_t s;
    while (local == OT_OK && (s = ot_workq_next(q)) >= 0)
      if (!ot_ledger_is_done(ledger, s)) local = embed_shard(e, d, batcher, ledger, out, (int)s, q, &prog);
    if (local) ot_log_error("%s", ot_errmsg());
    MPI_Barrier(MPI_COMM_WORLD);
    ot_progress_finish(&prog, ot_workq_done(q));
    st = ot_mpi_agree(local);
    if (st == OT_OK) st = ot_mpi_agree(ot_mpi_rank() == 0 ? write_index(e->dir, split, d) : OT_OK);
  }
  ot_workq_close(q);
  ot_ledger_close(ledger);
  ot_batcher_close(batcher);
  ot_dataset_close(d);
  return st;
}

/* Checkpoint and, for the n-gram vector, the IDF of the training titles:
 * every rank computes it itself from the same files, so all agree. */
static int setup(embedder *e) {
  const ot_config *cfg = e->cfg;
  int st = ot_config_require(cfg, "data.dir");
  if (st) return st;
  if ((st = ot_config_dir(cfg, "embed.dir", "embed", e->dir, sizeof e->dir))) return st;
  if ((st = ot_infer_open(&e->inf, cfg, cfg->embed.ckpt, cfg->embed.batch))) return st;
  e->dim = cfg->model.dim;
  if (cfg->embed.ngram_dim > 0) {
    char train_dir[4400];
    snprintf(train_dir, sizeof train_dir, "%s/train", cfg->data.dir);
    ot_dataset *train = NULL;
    if ((st = ot_dataset_open(&train, train_dir))) return ot_fail_ctx(st, "IDF of the n-gram vector");
    e->idf = ot_xmalloc((size_t)cfg->embed.ngram_dim * sizeof *e->idf);
    ot_ngram_idf(train, cfg->embed.ngram_dim, e->idf);
    e->idf_version = ot_dataset_version(train);
    ot_dataset_close(train);
  }
  return OT_OK;
}

int ot_embed_stage_run(const ot_config *cfg, int *exit_code) {
  (void)exit_code;
  openblas_set_num_threads(cfg->train.threads);
  embedder e;
  memset(&e, 0, sizeof e);
  e.cfg = cfg;
  int st = ot_mpi_agree(setup(&e));
  char *splits = ot_xstrdup(cfg->embed.splits), *save = NULL;
  for (char *sp = strtok_r(splits, ", ", &save); sp && st == OT_OK; sp = strtok_r(NULL, ", ", &save))
    st = embed_split(&e, sp);
  free(splits);
  free(e.idf);
  ot_infer_close(&e.inf);
  return st;
}

const ot_cli_info ot_embed_stage_info = {
    "ot-embed",
    "Write retrieval vectors for every item of the splits embed.splits of data.dir:\n"
    "visual, title and fused vectors of a trained checkpoint (embed.ckpt, default the newest\n"
    "in train.dir) and a hashed character n-gram TF-IDF vector of the title (embed.ngram_dim),\n"
    "into <embed.dir>/<split>/emb-NNNNNN.h5 (one per shard) and index.json. Shards are handed\n"
    "to ranks dynamically; rerunning after a crash embeds only the missing shards. A rerun with\n"
    "another checkpoint (also one rewritten under the same name, as final.h5 is by a training\n"
    "continued) or over a split extracted again is refused (exit 2) rather than mixed.",
    "data model train embed",
    "embed.ckpt"};
