/* ot-train setup: data, closed-set vocabulary, tokenizer, model, and the
 * resume from the newest checkpoint in train.dir. */
#include "ckpt.h"
#include "ot_common.h"
#include "ot_fs.h"
#include "ot_ledger.h"
#include "ot_log.h"
#include "ot_mpi.h"
#include "trainer.h"

#include <errno.h>
#include <jansson.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ot_trainer_bcast_str(char **s) {
  long long n = ot_mpi_rank() == 0 && *s ? (long long)strlen(*s) : 0;
  MPI_Bcast(&n, 1, MPI_LONG_LONG, 0, MPI_COMM_WORLD);
  if (ot_mpi_rank() != 0) {
    free(*s);
    *s = ot_xmalloc((size_t)n + 1);
    (*s)[n] = '\0';
  }
  for (long long off = 0; off < n; off += 1 << 30) {
    long long c = n - off < (1 << 30) ? n - off : (1 << 30);
    MPI_Bcast(*s + off, (int)c, MPI_CHAR, 0, MPI_COMM_WORLD);
  }
}

static void bcast_floats(float *x, size_t n) {
  for (size_t off = 0; off < n; off += (size_t)1 << 28) {
    size_t c = n - off < ((size_t)1 << 28) ? n - off : ((size_t)1 << 28);
    MPI_Bcast(x + off, (int)c, MPI_FLOAT, 0, MPI_COMM_WORLD);
  }
}

/* What resuming must not change: the model's tensors and inputs, and the
 * data order (batch, seed) — other values would silently mix two runs. */
static int check_resume_config(const char *ckpt_path, const ot_ckpt_meta *meta,
                               const ot_config *now) {
  static const char *const run_keys[] = {"model.vocab", "model.min_tag_count", "train.batch",
                                         "train.seed", "train.ema", NULL};
  const char *advice = "resume with the same setting, or use another train.dir for a new run";
  int st = ot_ckpt_check_config(ckpt_path, meta, now, ot_model_shape_keys(now->model.type), advice);
  return st ? st : ot_ckpt_check_config(ckpt_path, meta, now, run_keys, advice);
}

/* Open data.dir/<split>; val may be absent (*out stays NULL). */
static int open_split(ot_dataset **out, const ot_config *cfg, const char *split, int optional) {
  char dir[4200], idx[4300];
  snprintf(dir, sizeof dir, "%s/%s", cfg->data.dir, split);
  snprintf(idx, sizeof idx, "%s/index.json", dir);
  *out = NULL;
  if (optional && !ot_fs_exists(idx)) return OT_OK;
  int st = ot_dataset_open(out, dir);
  if (st) return ot_fail_ctx(st, "data.dir (%s)", ot_config_origin(cfg, "data.dir"));
  return OT_OK;
}

static int check_data(ot_trainer *t) {
  const ot_config *cfg = t->cfg;
  ot_dataset_dims(t->train, &t->T, &t->H, &t->W);
  t->D = ot_dataset_feature_dim(t->train);
  if (ot_dataset_count(t->train) == 0)
    return ot_fail(OT_EINVAL, "%s/train: the training split has no items (see its errors.jsonl)",
                   cfg->data.dir);
  const int P = cfg->model.patch;
  if (cfg->model.visual == OT_VISUAL_FEATURES && t->D < 1)
    return ot_fail(OT_EINVAL,
                   "%s/train: model.visual is 'features' (%s) but the shards hold no per-frame "
                   "features: extract them with extract.features set",
                   cfg->data.dir, ot_config_origin(cfg, "model.visual"));
  if (cfg->model.visual == OT_VISUAL_PATCHES && t->H == 0)
    return ot_fail(OT_EINVAL,
                   "%s/train: model.visual is 'patches' (%s) but the shards hold no frames "
                   "(extracted with extract.store_frames false): use model.visual features",
                   cfg->data.dir, ot_config_origin(cfg, "model.visual"));
  if (cfg->model.visual == OT_VISUAL_PATCHES && (t->H % P || t->W % P))
    return ot_fail(OT_EINVAL,
                   "%s/train: frames are %dx%d (HxW) but model.patch=%d (%s) does not divide both: "
                   "choose a patch size dividing the extracted frame size",
                   cfg->data.dir, t->H, t->W, P, ot_config_origin(cfg, "model.patch"));
  if (t->val) {
    int T, H, W;
    ot_dataset_dims(t->val, &T, &H, &W);
    if (ot_dataset_count(t->val) > 0 && (T != t->T || H != t->H || W != t->W))
      return ot_fail(OT_EINVAL, "%s/val: frames [%d,%d,%d] differ from the training split's [%d,%d,%d]",
                     cfg->data.dir, T, H, W, t->T, t->H, t->W);
    const int D = ot_dataset_feature_dim(t->val);
    if (ot_dataset_count(t->val) > 0 && D != t->D)
      return ot_fail(OT_EINVAL, "%s/val: features of width %d differ from the training split's (%d; "
                     "0 = none)", cfg->data.dir, D, t->D);
    /* val picks the threshold and best.h5: scored on training items, it
     * would pick the model that memorises best. */
    char train_dir[4200], val_dir[4200];
    snprintf(train_dir, sizeof train_dir, "%s/train", cfg->data.dir);
    snprintf(val_dir, sizeof val_dir, "%s/val", cfg->data.dir);
    return ot_dataset_check_disjoint(t->train, train_dir, t->val, val_dir);
  }
  return OT_OK;
}

/* Rank 0: tags and tokenizer from the training split. */
static int build_vocab(ot_trainer *t, char **tags_json) {
  const ot_config *cfg = t->cfg;
  int st = ot_tagset_build(&t->tags, t->train, cfg->model.min_tag_count);
  if (st) return st;
  int64_t n = ot_dataset_count(t->train);
  size_t cap = (size_t)n * 2 + 16, nt = 0;
  const char **texts = ot_xmalloc(cap * sizeof *texts);
  for (int64_t i = 0; i < n; i++) {
    int64_t local;
    ot_shard *s = ot_dataset_locate(t->train, i, &local);
    const char *title = ot_shard_title(s, local);
    if (title && title[0]) texts[nt++] = title;
    char *const *tags;
    int k = ot_shard_tags(s, local, &tags);
    for (int j = 0; j < k; j++) {
      if (nt == cap) texts = ot_xrealloc(texts, (cap *= 2) * sizeof *texts);
      texts[nt++] = tags[j];
    }
    if (nt + 2 > cap) texts = ot_xrealloc(texts, (cap *= 2) * sizeof *texts);
  }
  double t0 = ot_now();
  st = ot_bpe_train(&t->bpe, texts, nt, cfg->model.vocab);
  free(texts);
  if (st) return ot_fail_ctx(st, "model.vocab");
  ot_log_info0("closed-set vocabulary: %d tags (min count %d); BPE: %d tokens from %zu texts in %.1fs",
               t->tags.n, cfg->model.min_tag_count, ot_bpe_vocab_size(t->bpe), nt, ot_now() - t0);
  if ((st = ot_bpe_save_string(t->bpe, &t->bpe_text))) return st;
  *tags_json = ot_tagset_to_json(&t->tags);
  return OT_OK;
}

/* Rank 0, once the model accepted them: train.dir/tokenizer.txt, tags.json. */
static int save_vocab(const ot_trainer *t) {
  char path[4200];
  snprintf(path, sizeof path, "%s/tokenizer.txt", t->cfg->train.dir);
  int st = ot_fs_write_atomic(path, t->bpe_text, strlen(t->bpe_text));
  snprintf(path, sizeof path, "%s/tags.json", t->cfg->train.dir);
  json_t *tags = ot_tagset_json(&t->tags);
  if (st == OT_OK) st = ot_fs_write_json(path, tags, JSON_INDENT(1));
  json_decref(tags);
  return st;
}

/* Rank 0: keep the metrics of steps <= step (a resumed run rewrites the rest). */
static int trim_metrics(const char *path, int64_t step) {
  if (!ot_fs_exists(path)) return OT_OK;
  char *text;
  size_t n;
  int st = ot_fs_read_all(path, &text, &n);
  if (st) return st;
  char *out = ot_xmalloc(n + 1);
  size_t len = 0;
  for (char *line = text; *line;) {
    char *end = strchr(line, '\n');
    size_t l = end ? (size_t)(end - line) : strlen(line);
    json_t *o = json_loadb(line, l, 0, NULL);
    /* A line cut by a kill has no closing brace: dropped with the rest. */
    if (o && json_integer_value(json_object_get(o, "step")) <= step) {
      memcpy(out + len, line, l);
      len += l;
      out[len++] = '\n';
    }
    json_decref(o);
    line += l + (end != NULL);
  }
  st = ot_fs_write_atomic(path, out, len);
  free(out);
  free(text);
  return st;
}

/* Rank 0, for ot-run resuming a step it started with this config: the
 * checkpoints of another config are those of the run before, whose
 * start-over a kill or an early error cut before it removed them (resumed,
 * they would pass for this config's training): removed. path: scratch. */
static int remove_other_settings(const ot_config *cfg, char *path, size_t cap) {
  int st = ot_ckpt_find_latest(cfg->train.dir, path, cap);
  if (st || !path[0]) return st;
  ot_ckpt_meta meta;
  memset(&meta, 0, sizeof meta);
  if ((st = ot_ckpt_read_meta(path, &meta))) return st;
  char changes[2048];
  if (ot_ckpt_config_changes(path, &meta, cfg, changes, sizeof changes)) {
    ot_log_info0("starting over: the checkpoints in %s were trained with other settings (%s): removing them",
                 cfg->train.dir, changes);
    ot_ckpt_remove_all(cfg->train.dir);
  }
  ot_ckpt_meta_free(&meta);
  return OT_OK;
}

/* Rank 0: the newest checkpoint's metadata and the data it implies. */
static int restore_meta(ot_trainer *t, const char *path, ot_ckpt_meta *meta, char **tags_json) {
  int st = ot_ckpt_read_meta(path, meta);
  if (st) return st;
  if ((st = check_resume_config(path, meta, t->cfg))) return st;
  ot_ckpt_warn_config_changes(path, meta, t->cfg);
  if (meta->T != t->T || meta->H != t->H || meta->W != t->W)
    return ot_fail(OT_EINVAL, "%s was trained on frames [%d,%d,%d] but %s/train has [%d,%d,%d]", path,
                   meta->T, meta->H, meta->W, t->cfg->data.dir, t->T, t->H, t->W);
  /* The data order goes on from the checkpoint's position in a permutation
   * of the training items: over another number of items it would be
   * another run's order. The same number of items in rewritten files is
   * likely a re-extraction of the same videos, or a copy: said, not refused. */
  const int64_t n = ot_dataset_count(t->train);
  if (meta->train_items > 0 && meta->train_items != n)
    return ot_fail(OT_EINVAL,
                   "%s was trained on %lld items of %s/train, which now has %lld (extracted "
                   "again?): its data order cannot go on over them; use another train.dir for a "
                   "new run",
                   path, (long long)meta->train_items, t->cfg->data.dir, (long long)n);
  if (meta->data_version && meta->data_version != ot_dataset_version(t->train))
    ot_log_warn("%s/train: its shard files changed since %s was written (same %lld items, "
                "written again or copied): resuming goes on over the new files",
                t->cfg->data.dir, path, (long long)n);
  t->resumed_cands_version = meta->cands_version; /* compared when open_cands reads them */
  t->bpe_text = meta->tokenizer;
  meta->tokenizer = NULL;
  t->tags = meta->tags;
  memset(&meta->tags, 0, sizeof meta->tags);
  *tags_json = ot_tagset_to_json(&t->tags);
  return OT_OK;
}

/* Collective. After it: tags, tokenizer (and the checkpoint's state when
 * resuming) on every rank. */
static int vocab_and_resume(ot_trainer *t, ot_ckpt_meta *meta) {
  const ot_config *cfg = t->cfg;
  char *tags_json = NULL, *ckpt = NULL;
  int st = OT_OK;
  if (t->rank == 0) {
    char path[4400];
    /* train.dir belongs to one run at a time: a second one (a requeued
     * attempt while the first still runs, a command typed twice) would
     * remove its temp files, checkpoints half-written, and mix metrics */
    snprintf(path, sizeof path, "%s/.lock", cfg->train.dir);
    st = ot_fs_lock(path, 0, &t->lock_fd);
    if (st == OT_EINVAL)
      st = ot_fail_ctx(st, "train.dir %s is in use by another ot-train run: wait for it to end, "
                       "or use another train.dir", cfg->train.dir);
    else if (st == OT_OK && t->lock_fd < 0)
      ot_log_warn("%s: cannot lock (%s): a second run in this train.dir at the same time would "
                  "not be stopped", path, strerror(errno));
    if (st == OT_OK) {
      ot_fs_remove_temp_files(cfg->train.dir);
      if (ot_ledger_start_over() == OT_START_OVER_IF_OTHER) st = remove_other_settings(cfg, path, sizeof path);
      else if (ot_ledger_start_over() == OT_START_OVER_ALL) {
        ot_log_info0("starting over: removing the checkpoints in %s", cfg->train.dir);
        ot_ckpt_remove_all(cfg->train.dir);
      }
      if (st == OT_OK) st = ot_ckpt_find_latest(cfg->train.dir, path, sizeof path);
    }
    if (st == OT_OK && path[0]) {
      snprintf(t->resumed_from, sizeof t->resumed_from, "%s", path);
      st = restore_meta(t, path, meta, &tags_json);
    } else if (st == OT_OK) {
      st = build_vocab(t, &tags_json);
    }
    if (st == OT_OK) {
      char mpath[4200];
      snprintf(mpath, sizeof mpath, "%s/metrics.jsonl", cfg->train.dir);
      st = trim_metrics(mpath, t->resumed_from[0] ? meta->step : 0);
    }
    ckpt = ot_xstrdup(t->resumed_from);
  }
  if ((st = ot_mpi_agree(st))) goto out;
  ot_trainer_bcast_str(&ckpt);
  ot_trainer_bcast_str(&tags_json);
  ot_trainer_bcast_str(&t->bpe_text);
  snprintf(t->resumed_from, sizeof t->resumed_from, "%s", ckpt);
  /* The step, position and threshold of the checkpoint, on every rank. */
  int64_t state[3] = {meta->step, meta->pos.epoch, meta->pos.offset};
  double dstate[5] = {meta->threshold, meta->val_f1, meta->ret_weight, meta->lex_weight,
                      meta->abs_weight};
  MPI_Bcast(state, 3, MPI_INT64_T, 0, MPI_COMM_WORLD);
  MPI_Bcast(meta->pos.rng, OT_RNG_STATE_WORDS, MPI_UINT64_T, 0, MPI_COMM_WORLD);
  MPI_Bcast(dstate, 5, MPI_DOUBLE, 0, MPI_COMM_WORLD);
  meta->step = state[0], meta->pos.epoch = state[1], meta->pos.offset = state[2];
  meta->threshold = dstate[0], meta->val_f1 = dstate[1], meta->ret_weight = dstate[2];
  meta->lex_weight = dstate[3];
  meta->abs_weight = dstate[4];
  if (t->rank != 0) st = ot_tagset_from_json(&t->tags, tags_json, "tag list from rank 0");
  if (st == OT_OK && !t->bpe) st = ot_bpe_load_string(&t->bpe, t->bpe_text);
  st = ot_mpi_agree(st);
out:
  free(tags_json);
  free(ckpt);
  return st;
}

/* A new run with train.init: the selected tensors of that checkpoint over
 * the random ones, on every rank. The tokenizer must be this run's: token
 * ids index the title encoder's table. */
static int init_from(ot_trainer *t) {
  const ot_config *cfg = t->cfg;
  int st = OT_OK, n = 0;
  if (t->rank == 0) {
    ot_ckpt_meta m;
    memset(&m, 0, sizeof m);
    st = ot_ckpt_read_meta(cfg->train.init, &m);
    if (st == OT_OK && strcmp(m.tokenizer, t->bpe_text))
      st = ot_fail(OT_EINVAL, "train.init: %s was trained with another tokenizer than this run's "
                   "(model.vocab and the training split must be the same)", cfg->train.init);
    ot_ckpt_meta_free(&m);
    if (st == OT_OK) st = ot_ckpt_init_params(cfg->train.init, t->params, cfg->train.init_params, &n);
    if (st == OT_OK)
      ot_log_info0("train.init: %d tensors (%s) from %s", n, cfg->train.init_params, cfg->train.init);
  }
  if ((st = ot_mpi_agree(st))) return st;
  bcast_floats(ot_params_values(t->params), ot_params_total(t->params));
  return OT_OK;
}

/* A resumed run goes on from the best val F1 of the run before it. */
static int read_best(ot_trainer *t) {
  double best[2] = {-1.0, 0.0};
  int st = OT_OK;
  if (t->rank == 0) {
    char path[4400];
    snprintf(path, sizeof path, "%s/%s", t->cfg->train.dir, OT_CKPT_BEST);
    ot_ckpt_meta m;
    memset(&m, 0, sizeof m);
    if (ot_fs_exists(path) && (st = ot_ckpt_read_meta(path, &m)) == OT_OK)
      best[0] = m.val_f1, best[1] = (double)m.step;
    ot_ckpt_meta_free(&m);
  }
  if ((st = ot_mpi_agree(st))) return st;
  MPI_Bcast(best, 2, MPI_DOUBLE, 0, MPI_COMM_WORLD);
  t->best_f1 = best[0], t->best_step = (int64_t)best[1];
  return OT_OK;
}

static int open_model(ot_trainer *t, const ot_ckpt_meta *meta) {
  const ot_config *cfg = t->cfg;
  ot_model_dims dims = {.T = t->T, .H = t->H, .W = t->W, .D = t->D, .n_tags = t->tags.n,
                        .vocab = ot_bpe_vocab_size(t->bpe), .max_batch = cfg->train.micro_batch};
  int st = ot_model_open(&t->model, cfg, &dims, 1);
  if ((st = ot_mpi_agree(st))) return st;
  t->params = ot_model_params(t->model);
  if (!t->resumed_from[0]) ot_model_init(t->model, (uint64_t)cfg->train.seed);
  if (!t->resumed_from[0] && cfg->train.init[0] && (st = init_from(t))) return st;
  /* the average starts as the initial weights; resuming reads it below */
  if (cfg->train.ema > 0 && (st = ot_mpi_agree(ot_params_alloc_ema(t->params)))) return st;
  if (!t->resumed_from[0]) return OT_OK;
  if (t->rank == 0) st = ot_ckpt_read_params(t->resumed_from, t->params);
  if ((st = ot_mpi_agree(st))) return st;
  size_t n = ot_params_total(t->params);
  bcast_floats(ot_params_values(t->params), n);
  bcast_floats(ot_params_adam_m(t->params), n);
  bcast_floats(ot_params_adam_v(t->params), n);
  if (ot_params_ema(t->params)) bcast_floats(ot_params_ema(t->params), n);
  t->step = t->start_step = meta->step;
  t->threshold = meta->threshold;
  t->val_f1 = meta->val_f1;
  t->ret_weight = meta->ret_weight;
  t->lex_weight = meta->lex_weight;
  t->abs_weight = meta->abs_weight;
  return read_best(t);
}

/* The batcher's candidate lookup: ot_cand_reader_get. */
static int read_cands(void *reader, int shard, int64_t row, const char *id, const char *const **tags,
                      const float **scores, int *n) {
  return ot_cand_reader_get(reader, shard, row, id, tags, scores, n);
}

/* rag: the retrieved candidates of train and val, read per item as the
 * batches need them (candidates file s holds data shard s's items). */
static int open_cands(ot_trainer *t) {
  const ot_config *cfg = t->cfg;
  char dir[4200];
  int st = ot_config_dir(cfg, "retrieve.dir", "retrieve", dir, sizeof dir);
  if (st == OT_OK) st = ot_cand_reader_open(&t->cands, dir, "train");
  if (st == OT_OK && t->val_batcher) st = ot_cand_reader_open(&t->val_cands, dir, "val");
  if (st == OT_OK)
    st = ot_cand_check_files(dir, "train", ot_dataset_shard_count(t->train), "the train split", "shards");
  if (st == OT_OK && t->val_batcher)
    st = ot_cand_check_files(dir, "val", ot_dataset_shard_count(t->val), "the val split", "shards");
  uint64_t train_v = 0, val_v = 0;
  if (st == OT_OK) st = ot_cand_split_version(dir, "train", &train_v);
  if (st == OT_OK && t->val_batcher) st = ot_cand_split_version(dir, "val", &val_v);
  if (st) return st;
  t->cands_version = (train_v ^ val_v * 0x9E3779B97F4A7C15ull) | 1; /* never 0: "not recorded" */
  /* As with rewritten shards: ot-retrieve run again under a training (other
   * indexes or weights) or a copy; the first changes what the rest of the run
   * learns from, so it is said, but a copy must not throw the run away. */
  if (t->rank == 0 && t->resumed_cands_version && t->resumed_cands_version != t->cands_version)
    ot_log_warn("%s: the retrieved candidates of train or val changed since %s was written (ot-retrieve "
                "ran again, or they were copied): resuming goes on over the new ones",
                dir, t->resumed_from);
  ot_batcher_enable_cands(t->batcher, read_cands, t->cands, cfg->model.rag_m);
  if (t->val_batcher) ot_batcher_enable_cands(t->val_batcher, read_cands, t->val_cands, cfg->model.rag_m);
  return OT_OK;
}

int ot_trainer_setup(ot_trainer *t, const ot_config *cfg) {
  memset(t, 0, sizeof *t);
  t->lock_fd = -1;
  t->cfg = cfg;
  t->rank = ot_mpi_rank();
  t->size = ot_mpi_size();
  t->threshold = 0.5;
  t->val_f1 = -1.0;
  t->best_f1 = -1.0;
  t->config_yaml = ot_config_dump(cfg);
  t->micro = cfg->train.micro_batch;
  int st = ot_config_require(cfg, "data.dir");
  if (st == OT_OK) st = ot_config_require(cfg, "train.dir");
  if (st == OT_OK) st = ot_model_check_config(cfg); /* before reading any data */
  if (st) return st; /* same config on every rank: no agreement needed */

  st = open_split(&t->train, cfg, "train", 0);
  if (st == OT_OK) st = open_split(&t->val, cfg, "val", 1);
  if (st == OT_OK) st = check_data(t);
  if ((st = ot_mpi_agree(st))) return st;
  if (t->val && ot_dataset_count(t->val) == 0) {
    ot_log_info0("warning: %s/val has no items: no validation", cfg->data.dir);
    ot_dataset_close(t->val);
    t->val = NULL;
  }

  ot_ckpt_meta meta;
  memset(&meta, 0, sizeof meta);
  st = vocab_and_resume(t, &meta);
  if (st == OT_OK) st = open_model(t, &meta);
  if (st == OT_OK && !t->resumed_from[0]) st = ot_mpi_agree(t->rank == 0 ? save_vocab(t) : OT_OK);
  if (st == OT_OK) {
    int64_t n = ot_dataset_count(t->train);
    st = t->resumed_from[0] ? ot_order_open_at(&t->order, n, &meta.pos)
                            : ot_order_open(&t->order, n, (uint64_t)cfg->train.seed);
  }
  ot_ckpt_meta_free(&meta);
  if (st == OT_OK)
    st = ot_batcher_open(&t->batcher, t->train, t->bpe, &t->tags, cfg->model.title_len,
                         cfg->train.micro_batch);
  if (st == OT_OK && t->val)
    st = ot_batcher_open(&t->val_batcher, t->val, t->bpe, &t->tags, cfg->model.title_len,
                         cfg->train.micro_batch);
  if (st == OT_OK) {
    ot_batcher_title_ngram(t->batcher, ot_model_title_ngram(t->model));
    if (t->val_batcher) ot_batcher_title_ngram(t->val_batcher, ot_model_title_ngram(t->model));
  }
  if (st == OT_OK && ot_model_needs_tags(t->model)) {
    ot_batcher_enable_tags(t->batcher, cfg->model.tag_len);
    if (t->val_batcher) ot_batcher_enable_tags(t->val_batcher, cfg->model.tag_len);
    if (cfg->model.type == OT_MODEL_BASELINE && cfg->model.baseline_order == OT_ORDER_FREQUENCY) {
      ot_batcher_order_tags(t->batcher);
      if (t->val_batcher) ot_batcher_order_tags(t->val_batcher);
    }
    if (cfg->model.type == OT_MODEL_JUDGE) {
      ot_batcher_normal_tags(t->batcher);
      if (t->val_batcher) ot_batcher_normal_tags(t->val_batcher);
    }
  }
  if (st == OT_OK && cfg->model.type == OT_MODEL_RAG) st = ot_mpi_agree(open_cands(t));
  /* the ranks count the training split together; each gets the whole lexicon, as it
   * validates a slice of val with it */
  if (st == OT_OK && cfg->model.type == OT_MODEL_RAG && cfg->model.lexicon > 0)
    st = ot_mpi_agree(ot_lexicon_build(&t->lexicon, t->train, cfg->model.lexicon));
  if (st == OT_OK && t->lexicon.max_units)
    ot_log_info0("title lexicon: %lld pieces of up to %d units from the training titles (%lld "
                 "seen in one group, never a tag: kept by hash); a piece unseen there is a tag with "
                 "p = %.3f (1 unit)", (long long)t->lexicon.n + t->lexicon.n_once, t->lexicon.max_units,
                 (long long)t->lexicon.n_once, (double)t->lexicon.prior[0]);
  if (st == OT_OK && t->rank == 0) {
    char path[4200];
    snprintf(path, sizeof path, "%s/metrics.jsonl", cfg->train.dir);
    t->metrics = fopen(path, "a");
    if (!t->metrics) st = ot_fail(OT_EIO, "cannot append to %s", path);
  }
  return ot_mpi_agree(st);
}

void ot_trainer_close(ot_trainer *t) {
  if (t->metrics) fclose(t->metrics);
  ot_fs_unlock(t->lock_fd);
  ot_batcher_close(t->batcher);
  ot_batcher_close(t->val_batcher);
  ot_cand_reader_close(t->cands);
  ot_cand_reader_close(t->val_cands);
  ot_order_close(t->order);
  ot_model_close(t->model);
  ot_bpe_close(t->bpe);
  free(t->bpe_text);
  ot_tagset_free(&t->tags);
  ot_lexicon_free(&t->lexicon);
  ot_dataset_close(t->train);
  ot_dataset_close(t->val);
  free(t->config_yaml);
  memset(t, 0, sizeof *t);
}
