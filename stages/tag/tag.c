/* ot-tag: tag every item of an extracted split with a trained checkpoint.
 *
 * Shards are the unit of work: ranks take them dynamically and write one
 * JSON Lines part per shard (<out>/part-NNNNNN.jsonl, atomically), recorded
 * in the ledger, so a killed job redoes only the shards in flight. Rank 0
 * finally joins the parts, in shard order, into <out>/tags.jsonl:
 *   {"id": "...", "tags": [{"tag": "...", "score": 0.93, "source": "cls"}, ...]}
 * Closed-set models (bin, asl) emit the vocabulary tags whose probability
 * passes the threshold tuned on val (or tag.threshold), best first, at most
 * tag.top_k. Generative models (baseline, opg) emit their generated tags
 * whose score passes the threshold ("source": "gen"), best first, at most
 * tag.top_k. */
#include "batcher.h"
#include "ot_cand.h"
#include "bpe.h"
#include "ckpt.h"
#include "ot_cli.h"
#include "ot_common.h"
#include "ot_dataset.h"
#include "ot_fs.h"
#include "ot_hash.h"
#include "ot_ledger.h"
#include "ot_log.h"
#include "ot_model.h"
#include "ot_mpi.h"

#include <cblas.h>
#include <jansson.h>
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  const ot_config *cfg;
  char split_dir[4200], out[4200], ckpt[4200];
  ot_dataset *data;
  ot_ckpt_meta meta;
  ot_bpe *bpe;
  ot_model *model;
  ot_batcher *batcher;
  ot_cand_set *cands; /* rag: the split's retrieved candidates */
  ot_ledger *ledger;
  double threshold;
} tagger;

typedef struct { int k; float p; } scored;

static int by_score(const void *a, const void *b) {
  const scored *x = a, *y = b;
  if (x->p != y->p) return x->p < y->p ? 1 : -1;
  return x->k - y->k; /* deterministic among ties */
}

/* One item's line: the vocabulary tags whose probability passes the
 * threshold, best first, at most top_k. `scratch` holds n_tags entries. */
static char *item_line(const tagger *t, const char *id, const float *logits, scored *scratch) {
  int n = 0;
  for (int k = 0; k < t->meta.tags.n; k++) {
    float p = 1.0f / (1.0f + expf(-logits[k]));
    if (p >= t->threshold) scratch[n++] = (scored){k, p};
  }
  qsort(scratch, (size_t)n, sizeof *scratch, by_score);
  if (n > t->cfg->tag.top_k) n = t->cfg->tag.top_k;
  json_t *tags = json_array();
  for (int i = 0; i < n; i++)
    json_array_append_new(tags, json_pack("{s:s, s:f, s:s}", "tag", t->meta.tags.tags[scratch[i].k],
                                          "score", (double)scratch[i].p, "source", "cls"));
  json_t *line = json_pack("{s:s, s:o}", "id", id, "tags", tags);
  char *txt = json_dumps(line, JSON_COMPACT);
  json_decref(line);
  return txt;
}

/* One item's line from its generated tags (already best first). */
static char *gen_line(const tagger *t, const char *id, const ot_gen_item *g) {
  json_t *tags = json_array();
  for (int i = 0, kept = 0; i < g->n && kept < t->cfg->tag.top_k; i++) {
    if (g->tags[i].score < t->threshold) continue;
    json_array_append_new(tags, json_pack("{s:s, s:f, s:s}", "tag", g->tags[i].tag, "score",
                                          (double)g->tags[i].score, "source", "gen"));
    kept++;
  }
  json_t *line = json_pack("{s:s, s:o}", "id", id, "tags", tags);
  char *txt = json_dumps(line, JSON_COMPACT);
  json_decref(line);
  return txt;
}

static int tag_shard(tagger *t, int s, ot_workq *q, ot_progress *prog) {
  int64_t first, count;
  ot_dataset_shard_range(t->data, s, &first, &count);
  const int B = t->cfg->tag.batch;
  int64_t *items = ot_xmalloc((size_t)B * sizeof *items);
  scored *scratch = ot_xmalloc(((size_t)t->meta.tags.n + 1) * sizeof *scratch);
  const int gen = ot_model_is_generative(t->model);
  ot_gen_item *g = gen ? ot_xcalloc((size_t)B, sizeof *g) : NULL;
  /* all prompts decode: the score threshold tuned on val was chosen so */
  const ot_gen_opts opts = {.bpe = t->bpe, .threshold = 0.0f, .no_cache = !t->cfg->tag.kv_cache};
  char *buf = NULL;
  size_t len = 0, cap = 0;
  int st = OT_OK;
  for (int64_t c = 0; c < count && st == OT_OK; c += B) {
    int n = (int)(count - c < B ? count - c : B);
    for (int i = 0; i < n; i++) items[i] = first + c + i;
    ot_batch batch;
    if ((st = ot_batcher_fill(t->batcher, items, n, &batch))) break;
    batch.targets = NULL;
    batch.item_tags = batch.tag_offsets = batch.tag_tokens = NULL;
    const float *logits = NULL;
    if (gen) {
      if ((st = ot_model_generate(t->model, &batch, &opts, g))) {
        ot_gen_items_free(g, n);
        break;
      }
    } else {
      if ((st = ot_model_forward(t->model, &batch, 0, 0, NULL))) break;
      logits = ot_model_logits(t->model);
    }
    for (int i = 0; i < n; i++) {
      int64_t local;
      ot_shard *sh = ot_dataset_locate(t->data, items[i], &local);
      const char *id = ot_shard_id(sh, local);
      char *line = gen ? gen_line(t, id, &g[i])
                       : item_line(t, id, logits + (size_t)i * t->meta.tags.n, scratch);
      size_t l = strlen(line);
      if (len + l + 2 > cap) buf = ot_xrealloc(buf, cap = 2 * (len + l + 2));
      memcpy(buf + len, line, l);
      buf[len + l] = '\n';
      len += l + 1;
      free(line);
    }
    if (gen) ot_gen_items_free(g, n);
    ot_workq_add_done(q, n);
    ot_progress_update(prog, ot_workq_done(q));
  }
  if (st == OT_OK) {
    char path[4400];
    snprintf(path, sizeof path, "%s/part-%06d.jsonl", t->out, s);
    st = ot_fs_write_atomic(path, buf ? buf : "", len);
  }
  if (st == OT_OK) {
    char rec[128];
    snprintf(rec, sizeof rec, "{\"shard\": %d, \"items\": %lld}", s, (long long)count);
    st = ot_ledger_mark_done(t->ledger, s, rec);
  }
  free(buf);
  free(g);
  free(scratch);
  free(items);
  return st;
}

/* Rank 0: the parts joined in shard order into <out>/tags.jsonl. */
static int join_parts(const tagger *t) {
  char *all = NULL;
  size_t len = 0;
  int st = OT_OK;
  for (int s = 0; s < ot_dataset_shard_count(t->data) && st == OT_OK; s++) {
    char path[4400], *part = NULL;
    size_t n = 0;
    snprintf(path, sizeof path, "%s/part-%06d.jsonl", t->out, s);
    if ((st = ot_fs_read_all(path, &part, &n))) break;
    all = ot_xrealloc(all, len + n + 1);
    memcpy(all + len, part, n);
    len += n;
    free(part);
  }
  if (st == OT_OK) {
    char path[4400];
    snprintf(path, sizeof path, "%s/tags.jsonl", t->out);
    st = ot_fs_write_atomic(path, all ? all : "", len);
    if (st == OT_OK) ot_log_info("wrote %s", path);
  }
  free(all);
  return st;
}

/* Checkpoint, tokenizer, model and dataset; every rank reads them itself. */
static int setup(tagger *t) {
  const ot_config *cfg = t->cfg;
  int st = ot_config_require(cfg, "data.dir");
  if (st) return st;
  snprintf(t->split_dir, sizeof t->split_dir, "%s/%s", cfg->data.dir, cfg->tag.split);
  if (cfg->tag.out[0]) snprintf(t->out, sizeof t->out, "%s", cfg->tag.out);
  else if ((st = ot_config_require(cfg, "train.dir"))) return st;
  else snprintf(t->out, sizeof t->out, "%s/tags-%s", cfg->train.dir, cfg->tag.split);
  if (cfg->tag.ckpt[0]) snprintf(t->ckpt, sizeof t->ckpt, "%s", cfg->tag.ckpt);
  else if ((st = ot_config_require(cfg, "train.dir"))) return st;
  else if ((st = ot_ckpt_find_latest(cfg->train.dir, t->ckpt, sizeof t->ckpt))) return st;
  else if (!t->ckpt[0])
    return ot_fail(OT_EINVAL, "%s: no checkpoint found (train first, or set tag.ckpt)", cfg->train.dir);
  if ((st = ot_ckpt_read_meta(t->ckpt, &t->meta))) return st;
  if ((st = ot_bpe_load_string(&t->bpe, t->meta.tokenizer)))
    return ot_fail_ctx(st, "%s: tokenizer", t->ckpt);
  if ((st = ot_dataset_open(&t->data, t->split_dir))) return st;
  int T, H, W;
  ot_dataset_dims(t->data, &T, &H, &W);
  if (T != t->meta.T || H != t->meta.H || W != t->meta.W)
    return ot_fail(OT_EINVAL, "%s: frames [%d,%d,%d] but %s was trained on [%d,%d,%d]", t->split_dir,
                   T, H, W, t->ckpt, t->meta.T, t->meta.H, t->meta.W);
  ot_model_dims dims = {.T = T, .H = H, .W = W, .n_tags = t->meta.tags.n,
                        .vocab = ot_bpe_vocab_size(t->bpe), .max_batch = cfg->tag.batch};
  if ((st = ot_model_open(&t->model, cfg, &dims, 0))) return st;
  if ((st = ot_ckpt_read_params(t->ckpt, ot_model_params(t->model)))) return st;
  if ((st = ot_batcher_open(&t->batcher, t->data, t->bpe, &t->meta.tags, cfg->model.title_len,
                            cfg->tag.batch)))
    return st;
  if (cfg->model.type == OT_MODEL_RAG) { /* the split's retrieved candidates */
    char dir[4200];
    if ((st = ot_config_dir(cfg, "retrieve.dir", "retrieve", dir, sizeof dir))) return st;
    if ((st = ot_cand_load_split(&t->cands, dir, cfg->tag.split))) return st;
    ot_batcher_enable_tags(t->batcher, cfg->model.tag_len);
    ot_batcher_enable_cands(t->batcher, ot_cand_find_ctx, t->cands, cfg->model.rag_m);
  }
  t->threshold = cfg->tag.threshold >= 0 ? cfg->tag.threshold : t->meta.threshold;
  if (t->meta.val_f1 < 0 && cfg->tag.threshold < 0)
    return ot_fail(OT_EINVAL, "%s has no threshold tuned on val yet; set tag.threshold", t->ckpt);
  return OT_OK;
}

static int run(const ot_config *cfg, int *exit_code) {
  (void)exit_code;
  openblas_set_num_threads(cfg->train.threads);
  tagger t;
  memset(&t, 0, sizeof t);
  t.cfg = cfg;
  int st = ot_mpi_agree(setup(&t));
  if (st == OT_OK) {
    /* what shapes the output: a rerun with another checkpoint or threshold
     * is refused rather than mixing parts */
    char fp[8800];
    snprintf(fp, sizeof fp, "%s|%s|%.9g|%d", t.ckpt, t.split_dir, t.threshold, cfg->tag.top_k);
    uint64_t h = ot_fnv1a64(fp, strlen(fp), OT_FNV64_INIT);
    int owner = ot_mpi_rank() == 0;
    st = ot_mpi_agree(owner ? ot_ledger_open(&t.ledger, t.out, "tag", h, 1) : OT_OK);
    if (st == OT_OK) st = ot_mpi_agree(owner ? OT_OK : ot_ledger_open(&t.ledger, t.out, "tag", h, 0));
  }
  ot_workq *q = NULL;
  if (st == OT_OK) st = ot_workq_open(&q, ot_dataset_shard_count(t.data));
  if (st == OT_OK) {
    ot_log_info0("tagging %lld items of %s with %s (threshold %.3f)",
                 (long long)ot_dataset_count(t.data), t.split_dir, t.ckpt, t.threshold);
    int64_t already = 0;
    for (int s = 0; s < ot_dataset_shard_count(t.data); s++)
      if (ot_ledger_is_done(t.ledger, s)) {
        int64_t first, count;
        ot_dataset_shard_range(t.data, s, &first, &count);
        already += count;
      }
    ot_progress prog;
    ot_progress_start(&prog, "items", ot_dataset_count(t.data), already);
    if (ot_mpi_rank() == 0) ot_workq_add_done(q, already);
    int local = OT_OK;
    int64_t s;
    while (local == OT_OK && (s = ot_workq_next(q)) >= 0)
      if (!ot_ledger_is_done(t.ledger, s)) local = tag_shard(&t, (int)s, q, &prog);
    if (local) ot_log_error("%s", ot_errmsg());
    MPI_Barrier(MPI_COMM_WORLD);
    ot_progress_finish(&prog, ot_workq_done(q));
    st = ot_mpi_agree(local);
    if (st == OT_OK) st = ot_mpi_agree(ot_mpi_rank() == 0 ? join_parts(&t) : OT_OK);
  }
  ot_workq_close(q);
  ot_batcher_close(t.batcher);
  ot_cand_close(t.cands);
  ot_model_close(t.model);
  ot_bpe_close(t.bpe);
  ot_ckpt_meta_free(&t.meta);
  ot_dataset_close(t.data);
  ot_ledger_close(t.ledger);
  return st;
}

int main(int argc, char **argv) {
  static const ot_cli_info info = {
      "ot-tag",
      "Tag every item of the extracted split data.dir/<tag.split>/ with a trained checkpoint\n"
      "(tag.ckpt, default the newest in train.dir) and write JSON Lines\n"
      "{\"id\", \"tags\": [{\"tag\", \"score\", \"source\"}...]} to <tag.out>/tags.jsonl. Shards are\n"
      "handed to ranks dynamically; rerunning after a crash tags only the missing shards.",
      "data model train tag"};
  return ot_cli_main(&info, argc, argv, run);
}
