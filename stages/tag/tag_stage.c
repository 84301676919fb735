/* ot-tag: tag items with a trained checkpoint, either an extracted split
 * (tag_shards.c) or a raw manifest decoded on the fly (tag_raw.c). This
 * file loads what both need, picks the mode and prints the summary. */
#include "tag_stage.h"

#include "tagger.h"

#include "ot_common.h"
#include "ot_fs.h"

#include <cblas.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const ot_cli_info ot_tag_stage_info = {
    "ot-tag",
    "Tag items with a trained checkpoint (tag.ckpt, default the newest in train.dir) and write\n"
    "JSON Lines {\"id\", \"tags\": [{\"tag\", \"score\", \"source\"}...]} to <tag.out>/tags.jsonl.\n"
    "Two inputs:\n"
    "  - an extracted split, data.dir/<tag.split>/ (tag.manifest empty): shards are the unit of\n"
    "    work; every model type, rag included (it reads ot-retrieve's candidates);\n"
    "  - a raw manifest, tag.manifest=FILE.jsonl (ot-extract's format, tags optional; relative\n"
    "    paths from data.root, else the manifest's folder): every video/image is decoded,\n"
    "    encoded and tagged in one pass, no shards written. Frames are sampled as the\n"
    "    checkpoint's training data (its frame count and size, its extract.resize). Units are\n"
    "    chunks of tag.chunk lines; a file that cannot be decoded or is missing goes to\n"
    "    <tag.out>/errors.jsonl {\"line\", \"id\", \"path\", \"reason\"} and the job goes on.\n"
    "    Every model type: for rag each pass's candidates are retrieved on the spot as ot-embed +\n"
    "    ot-retrieve would (the encoder embed.ckpt, required; index.dir; retrieve.*; the n-gram\n"
    "    IDF from data.dir's train split), then fused with generation as over shards.\n"
    "Units are handed to ranks dynamically and written atomically with a ledger: rerunning the\n"
    "same command after a crash or kill tags only what is missing. Rank 0 prints progress\n"
    "(items, items/s, ETA) and a summary: tagged, failed, wall time, items/s per core\n"
    "(cores = ranks x train.threads OpenBLAS threads).",
    "data extract model train embed index retrieve tag",
    "tag.ckpt tag.manifest"};

double tag_cpu_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

const char *tag_decode_mark(const tagger *t) {
  static _Thread_local char mark[64];
  mark[0] = '\0';
  if (t->gen && t->cfg->tag.beam > 1) snprintf(mark, sizeof mark, "|beam%d", t->cfg->tag.beam);
  if (t->cfg->model.type == OT_MODEL_RAG && t->ret_weight > 0)
    snprintf(mark + strlen(mark), sizeof mark - strlen(mark), "|ret%.9g", t->ret_weight);
  if (t->cfg->model.type == OT_MODEL_RAG && t->inf.meta.lexicon.max_units && t->lex_weight > 0)
    snprintf(mark + strlen(mark), sizeof mark - strlen(mark), "|lex%.9g", t->lex_weight);
  if (t->cfg->model.type == OT_MODEL_RAG && t->inf.meta.lexicon.tag_groups && t->abs_weight > 0)
    snprintf(mark + strlen(mark), sizeof mark - strlen(mark), "|abs%.9g", t->abs_weight);
  return mark;
}

int tag_open_ledger(tagger *t, uint64_t fingerprint, int64_t n_units) {
  /* a start-over killed half-way must not leave the earlier run's joined
   * output beside parts of the new one */
  static const char *const published[] = {"tags.jsonl", "errors.jsonl", NULL};
  return ot_ledger_open_all(&t->ledger, t->out, "tag", fingerprint, n_units, published);
}

/* tag.out, unless set: <train.dir>/tags-<split>, or tags-<manifest name>. */
static int output_dir(tagger *t) {
  const ot_config *cfg = t->cfg;
  if (cfg->tag.out[0]) {
    snprintf(t->out, sizeof t->out, "%s", cfg->tag.out);
    return OT_OK;
  }
  int st = ot_config_require(cfg, "train.dir");
  if (st) return st;
  if (!cfg->tag.manifest[0]) {
    snprintf(t->out, sizeof t->out, "%s/tags-%s", cfg->train.dir, cfg->tag.split);
    return OT_OK;
  }
  const char *base = strrchr(cfg->tag.manifest, '/');
  base = base ? base + 1 : cfg->tag.manifest;
  int n = (int)strlen(base);
  if (n > 6 && !strcmp(base + n - 6, ".jsonl")) n -= 6;
  snprintf(t->out, sizeof t->out, "%s/tags-%.*s", cfg->train.dir, n, base);
  return OT_OK;
}

/* Checkpoint, tokenizer and model (ot_infer); every rank reads them itself. */
static int setup(tagger *t) {
  const ot_config *cfg = t->cfg;
  if (cfg->tag.manifest[0] && cfg->model.type == OT_MODEL_RAG && !cfg->embed.ckpt[0])
    return ot_fail(OT_EINVAL, "config: 'embed.ckpt' must be set for raw-manifest tagging with a rag "
                   "model (%s): the encoder checkpoint the indexes were built with (ot-embed's "
                   "embed.ckpt), so items are embedded as the indexed ones were",
                   ot_config_origin(cfg, "tag.manifest"));
  int st = output_dir(t);
  if (st) return st;
  if (cfg->model.type == OT_MODEL_JUDGE)
    return ot_fail(OT_EINVAL, "%s: model.type judge scores tags (ot-eval's eval.judge); it does not "
                   "write them", ot_config_origin(cfg, "model.type"));
  if ((st = ot_infer_open(&t->inf, cfg, cfg->tag.ckpt, cfg->tag.batch))) return st;
  t->threshold = cfg->tag.threshold >= 0 ? cfg->tag.threshold : t->inf.meta.threshold;
  if (t->inf.meta.val_f1 < 0 && cfg->tag.threshold < 0)
    return ot_fail(OT_EINVAL, "%s has no threshold tuned on val yet; set tag.threshold", t->inf.ckpt);
  t->ret_weight = cfg->tag.retrieval_weight >= 0 ? cfg->tag.retrieval_weight : t->inf.meta.ret_weight;
  t->lex_weight = cfg->tag.lexicon_weight >= 0 ? cfg->tag.lexicon_weight : t->inf.meta.lex_weight;
  t->abs_weight = cfg->tag.absence_weight >= 0 ? cfg->tag.absence_weight : t->inf.meta.abs_weight;
  if (cfg->tag.lexicon_weight >= 0 && !t->inf.meta.lexicon.max_units)
    return ot_fail(OT_EINVAL, "%s: %s has no title lexicon (a rag model trained with "
                   "model.lexicon > 0 has one), so tag.lexicon_weight cannot apply",
                   ot_config_origin(cfg, "tag.lexicon_weight"), t->inf.ckpt);
  if (cfg->tag.absence_weight >= 0 && !t->inf.meta.lexicon.tag_groups)
    return ot_fail(OT_EINVAL, "%s: %s has no title lexicon with absence counts (a rag model "
                   "trained with model.lexicon > 0 since 2026-11-27 has one), so "
                   "tag.absence_weight cannot apply",
                   ot_config_origin(cfg, "tag.absence_weight"), t->inf.ckpt);
  t->gen = ot_model_is_generative(t->inf.model);
  t->scratch = ot_xmalloc(((size_t)t->inf.meta.tags.n + 1) * sizeof *t->scratch);
  if (t->gen) t->g = ot_xcalloc((size_t)cfg->tag.batch, sizeof *t->g);
  return OT_OK;
}

/* Rank 0's last line: whole output and this run's rate per core, by wall
 * time (cores = ranks x threads) and by the CPU time the ranks used (the
 * same on a quiet machine; higher when the cores are shared). */
static void summary(tagger *t, double wall) {
  int64_t tagged = ot_mpi_sum_i64(t->tagged), failed = ot_mpi_sum_i64(t->failed);
  double cpu = 1e-6 * (double)ot_mpi_sum_i64((int64_t)(1e6 * (tag_cpu_now() - t->cpu_work)));
  const int cores = ot_mpi_size() * t->cfg->train.threads;
  if (tagged + failed == 0) { /* a rerun with nothing left: no rate of nothing */
    ot_log_info0("summary: %lld items tagged, %lld failed, all by an earlier run (this run: %.2fs wall)",
                 (long long)t->all_tagged, (long long)t->all_failed, wall);
    return;
  }
  ot_log_info0("summary: %lld items tagged, %lld failed (this run: %lld tagged, %lld failed) in "
               "%.2fs wall; %.1f items/s per core (%d rank(s) x %d thread(s)); %.1f items per "
               "CPU second (%.2f CPU s)",
               (long long)t->all_tagged, (long long)t->all_failed, (long long)tagged,
               (long long)failed, wall, wall > 0 ? (double)tagged / wall / cores : 0.0,
               ot_mpi_size(), t->cfg->train.threads, cpu > 0 ? (double)tagged / cpu : 0.0, cpu);
}

int ot_tag_stage_run(const ot_config *cfg, int *exit_code) {
  (void)exit_code;
  openblas_set_num_threads(cfg->train.threads);
  tagger t;
  memset(&t, 0, sizeof t);
  t.cfg = cfg;
  int st = ot_mpi_agree(setup(&t));
  if (st == OT_OK) st = cfg->tag.manifest[0] ? tag_raw_run(&t) : tag_shards_run(&t);
  if (st == OT_OK) summary(&t, ot_now() - t.t_work); /* wall includes the join */
  ot_workq_close(t.q);
  ot_infer_close(&t.inf);
  ot_ledger_close(t.ledger);
  free(t.scratch);
  free(t.g);
  return st;
}
