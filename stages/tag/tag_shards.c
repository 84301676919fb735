/* ot-tag over an extracted split (data.dir/<tag.split>/): shards are the
 * unit of work. Ranks take them dynamically and write one part per shard
 * (<out>/part-NNNNNN.jsonl, atomically), recorded in the ledger, so a killed
 * job redoes only the shards in flight; rank 0 finally joins the parts, in
 * shard order, into <out>/tags.jsonl. A rag model's candidates are read a
 * shard at a time: candidates file s of the split holds exactly shard s's
 * items (ot_cand.h), loaded before the shard's batches and freed after. */
#include "tagger.h"

#include "batcher.h"
#include "ot_cand.h"
#include "ot_common.h"
#include "ot_dataset.h"
#include "ot_fs.h"
#include "ot_hash.h"

#include <inttypes.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  char split_dir[4200];
  ot_dataset *data;
  ot_batcher *batcher;
  char retrieve_dir[4200]; /* rag: retrieve.dir, of split tag.split */
  const char *split;
  ot_cand_set *cands;      /* rag: the candidates of the shard being tagged, */
  int cand_part;           /* its candidates file (= shard) */
} shard_input;

/* rag: the batcher's candidate lookup (ctx: the shard_input), in the set of
 * the shard being tagged. */
static int shard_cand_find(void *ctx, int shard, int64_t row, const char *id, const char *const **tags,
                           const float **scores, int *n) {
  const shard_input *in = ctx;
  OT_ASSERT(shard == in->cand_part);
  (void)row;
  int st = ot_cand_find(in->cands, id, tags, scores, n);
  if (st == OT_OK) return OT_OK;
  return ot_fail_ctx(st, "file %d of %s/%s/index.json, the candidates of shard %d (run ot-retrieve again?)",
                     in->cand_part, in->retrieve_dir, in->split, in->cand_part);
}

static int tag_shard(tagger *t, shard_input *in, int s) {
  int64_t first, count;
  ot_dataset_shard_range(in->data, s, &first, &count);
  const int B = t->cfg->tag.batch;
  int64_t *items = ot_xmalloc((size_t)B * sizeof *items);
  const char **ids = ot_xmalloc((size_t)B * sizeof *ids);
  const char **titles = ot_xmalloc((size_t)B * sizeof *titles);
  ot_lines part = {0};
  int st = OT_OK;
  if (in->split) {
    in->cand_part = s;
    st = ot_cand_load_split_part(&in->cands, in->retrieve_dir, in->split, s);
  }
  for (int64_t c = 0; c < count && st == OT_OK; c += B) {
    int n = (int)(count - c < B ? count - c : B);
    for (int i = 0; i < n; i++) {
      items[i] = first + c + i;
      int64_t local;
      ot_shard *sh = ot_dataset_locate(in->data, items[i], &local);
      ids[i] = ot_shard_id(sh, local);
      titles[i] = ot_shard_title(sh, local);
    }
    ot_batch batch;
    if ((st = ot_batcher_fill(in->batcher, items, n, &batch))) break;
    batch.targets = NULL;
    batch.item_tags = batch.tag_offsets = batch.tag_tokens = NULL;
    if ((st = tag_emit_batch(t, &batch, ids, titles, &part))) break;
    t->tagged += n;
    ot_workq_add_done(t->q, n);
    ot_progress_update(&t->prog, ot_workq_done(t->q));
  }
  if (st == OT_OK) {
    char path[4400];
    tag_part_path(path, sizeof path, t->out, "part", s);
    st = ot_fs_write_atomic(path, part.p ? part.p : "", part.len);
  }
  if (st == OT_OK) {
    char rec[128];
    snprintf(rec, sizeof rec, "{\"shard\": %d, \"items\": %lld}", s, (long long)count);
    st = ot_ledger_mark_done(t->ledger, s, rec);
  }
  ot_cand_close(in->cands);
  in->cands = NULL;
  ot_lines_free(&part);
  free(ids);
  free(titles);
  free(items);
  return st;
}

/* The split, its batch assembly and (rag) its candidates. */
static int open_input(tagger *t, shard_input *in) {
  const ot_config *cfg = t->cfg;
  int st = ot_config_require(cfg, "data.dir");
  if (st) return st;
  snprintf(in->split_dir, sizeof in->split_dir, "%s/%s", cfg->data.dir, cfg->tag.split);
  if ((st = ot_dataset_open(&in->data, in->split_dir))) return st;
  if ((st = ot_infer_check_dataset(&t->inf, in->data, in->split_dir))) return st;
  if ((st = ot_batcher_open(&in->batcher, in->data, t->inf.bpe, &t->inf.meta.tags, cfg->model.title_len,
                            cfg->tag.batch)))
    return st;
  /* generative models read the titles' words (ot_batch.title_words), which
   * the batcher fills with the tags; the tags themselves are dropped */
  if (t->gen) ot_batcher_enable_tags(in->batcher, cfg->model.tag_len);
  ot_batcher_title_ngram(in->batcher, ot_model_title_ngram(t->inf.model));
  if (cfg->model.type == OT_MODEL_RAG) {
    /* the candidates are loaded a shard at a time (tag_shard): here only
     * the index, which must list one file per shard */
    if ((st = ot_config_dir(cfg, "retrieve.dir", "retrieve", in->retrieve_dir, sizeof in->retrieve_dir)))
      return st;
    char of[4300];
    snprintf(of, sizeof of, "the split %s", in->split_dir);
    if ((st = ot_cand_check_files(in->retrieve_dir, cfg->tag.split, ot_dataset_shard_count(in->data), of,
                                  "shards")))
      return st;
    in->split = cfg->tag.split;
    ot_batcher_enable_cands(in->batcher, shard_cand_find, in, cfg->model.rag_m);
  }
  return OT_OK;
}

int tag_shards_run(tagger *t) {
  shard_input in;
  memset(&in, 0, sizeof in);
  int st = ot_mpi_agree(open_input(t, &in));
  const int n_shards = in.data ? ot_dataset_shard_count(in.data) : 0;
  if (st == OT_OK) {
    /* what shapes the output: a rerun with another checkpoint or threshold,
     * or on a split extracted (or, for rag, retrieved) again, is refused
     * rather than mixing parts. The checkpoint by its file's version too: a
     * training continued or redone rewrites final.h5 under its name */
    uint64_t cands = 0;
    if (in.split) st = ot_mpi_agree(ot_cand_split_version(in.retrieve_dir, in.split, &cands));
    char fp[8800];
    snprintf(fp, sizeof fp, "%s|%s|%.9g|%d%s|data %016" PRIx64 "|cands %016" PRIx64 "|ckpt %016" PRIx64,
             t->inf.ckpt, in.split_dir, t->threshold, t->cfg->tag.top_k, tag_decode_mark(t),
             ot_dataset_version(in.data), cands, ot_fs_version_hash(t->inf.ckpt, OT_FNV64_INIT));
    if (st == OT_OK) st = tag_open_ledger(t, ot_fnv1a64(fp, strlen(fp), OT_FNV64_INIT), n_shards);
  }
  if (st == OT_OK) st = ot_workq_open(&t->q, n_shards);
  if (st == OT_OK) {
    t->total = ot_dataset_count(in.data);
    ot_log_info0("tagging %lld items of %s with %s (threshold %.3f)", (long long)t->total,
                 in.split_dir, t->inf.ckpt, t->threshold);
    int64_t already = 0;
    for (int s = 0; s < n_shards; s++)
      if (ot_ledger_is_done(t->ledger, s)) {
        int64_t first, count;
        ot_dataset_shard_range(in.data, s, &first, &count);
        already += count;
      }
    ot_progress_start(&t->prog, "items", t->total, already);
    if (ot_mpi_rank() == 0) ot_workq_add_done(t->q, already);
    t->t_work = ot_now();
    t->cpu_work = tag_cpu_now();
    int local = OT_OK;
    int64_t s;
    while (local == OT_OK && (s = ot_workq_next(t->q)) >= 0)
      if (!ot_ledger_is_done(t->ledger, s)) local = tag_shard(t, &in, (int)s);
    if (local) ot_log_error("%s", ot_errmsg());
    MPI_Barrier(MPI_COMM_WORLD);
    ot_progress_finish(&t->prog, ot_workq_done(t->q));
    st = ot_mpi_agree(local);
    if (st == OT_OK)
      st = ot_mpi_agree(ot_mpi_rank() == 0 ? tag_join_parts(t->out, "part", n_shards, "tags.jsonl", 0)
                                           : OT_OK);
    t->all_tagged = t->total;
  }
  ot_batcher_close(in.batcher);
  ot_dataset_close(in.data);
  return st;
}
