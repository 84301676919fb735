/* Training checkpoints (HDF5), written by rank 0 after a step's update:
 *
 *   /params/<name>   float32 [shape]  every parameter, named as its ot_params view
 *   /adam_m/<name>   float32 [shape]  AdamW first moments
 *   /adam_v/<name>   float32 [shape]  AdamW second moments
 *   /ema/<name>      float32 [shape]  the weights' moving average (train.ema > 0)
 *   /tokenizer       string           ot_bpe_save_string text
 *   /tags            string [K]       closed-set vocabulary (head column order)
 *   /tag_counts      int64 [K]        occurrences in the training split
 *   /lexicon/        rag with model.lexicon: the title lexicon (lexicon.h):
 *     text string [n], groups int64 [n], tagged int64 [n], tag_groups
 *     int64 [n] and attribute n_groups (since the absence ratio; absent:
 *     ratio 1), prior float32 [max_units], prior_shape float32
 *     [max_units, 16] (since the pieces' shapes; absent: prior per shape;
 *     [max_units, 8] before the word bit: one prior for word or not),
 *     once uint64 [n_once] with attribute once_hash (since the hashed
 *     pieces; absent: text names every piece): ot_lexicon_hash of the
 *     pieces seen in one group and never a tag, ascending
 *   attributes on /: format="open-tag-checkpoint", version, step, epoch,
 *   offset (data position), rng_state uint64[4] (order stream before the
 *   current epoch's permutation), threshold and val_f1 (chosen on the last
 *   validation; val_f1 < 0: none yet), retrieval_weight (rag: chosen with
 *   the threshold, ot_gen_fuse; absent in older files: 0), lexicon_weight
 *   and absence_weight (rag with a lexicon: ot_gen_fuse_title; absent: 0),
 *   T, H, W, D, config (YAML), train_items and data_version uint64 (the
 *   training split's item count and ot_dataset_version, checked on resume;
 *   absent in older files: not checked), cands_version uint64 (rag: its
 *   retrieved candidates' version, checked on resume; 0 or absent: not).
 *
 * A file is written under a temp name and renamed into place, so every
 * ckpt-<step>.h5 that exists is complete; train.dir/latest (written
 * atomically) names the newest. */
#ifndef OT_CKPT_H
#define OT_CKPT_H

#include "order.h"
#include "ot_config.h"
#include "lexicon.h"
#include "ot_params.h"
#include "tagset.h"

#include <stddef.h>
#include <stdint.h>

typedef struct {
  int64_t step;        /* optimizer updates done */
  ot_order_pos pos;    /* data position of the next step */
  double threshold;    /* decision threshold chosen on validation */
  double val_f1;       /* F1 at that threshold; < 0 before any validation */
  double ret_weight;   /* rag: retrieval's weight in the fused answer (ot_gen_fuse) */
  double lex_weight;   /* rag: the title lexicon's weight (ot_gen_fuse_title) */
  double abs_weight;   /* rag: the exponent of its absence ratio (ot_gen_fuse_title) */
  int T, H, W;         /* frame shape the model was built for */
  int D;               /* per-frame feature width of its data (0: none; absent in older files) */
  int64_t train_items;   /* items of the training split (0: absent in older files) */
  uint64_t data_version; /* its ot_dataset_version (0: absent in older files) */
  uint64_t cands_version; /* rag: its candidates' ot_cand_split_version, train and val
                           * (0: another model, or absent in older files) */
  char *config;        /* effective config, YAML (owned) */
  char *tokenizer;     /* serialised BPE (owned) */
  ot_tagset tags;      /* owned */
  ot_lexicon lexicon;  /* owned; max_units 0: none */
} ot_ckpt_meta;

/* Write `path` atomically: values, and the Adam moments when p has training
 * state. Borrows everything. */
int ot_ckpt_write(const char *path, ot_params *p, const ot_ckpt_meta *meta);
/* Read the metadata; *meta owns its strings (ot_ckpt_meta_free). OT_EINVAL
 * naming the file if it is not a checkpoint. */
int ot_ckpt_read_meta(const char *path, ot_ckpt_meta *meta);
/* Read a checkpoint into p's buffers. With training state (resuming): the
 * values, the Adam moments and, when p has an average buffer, /ema (a copy
 * of the values if the file has none). Without (inference): /ema in place
 * of the values when the file has it — the weights validation tuned the
 * threshold on — else /params. OT_EINVAL naming the tensor when one is
 * missing or its shape differs from p's. */
int ot_ckpt_read_params(const char *path, ot_params *p);
void ot_ckpt_meta_free(ot_ckpt_meta *meta); /* accepts a zeroed struct */
/* Fine-tuning (train.init): copy into p's values the checkpoint's tensors
 * of every parameter whose name starts with one of the comma-separated
 * `prefixes` — its averaged weights (/ema) when it has them, the weights
 * inference would use, else /params. Each selected tensor must be in the
 * file with p's shape; OT_EINVAL naming it otherwise, or when the prefixes
 * select nothing. *n_tensors: how many were copied. */
int ot_ckpt_init_params(const char *path, ot_params *p, const char *prefixes, int *n_tensors);

/* How many model./train. keys have another value in `now` than in the
 * checkpoint's stored config, but for those that do not touch the weights
 * (train.dir, threads, logging, checkpoint cadence); `changes` (cap bytes)
 * lists them as "key old -> new, ...". 0 when the stored config cannot be
 * read. */
int ot_ckpt_config_changes(const char *path, const ot_ckpt_meta *meta, const ot_config *now, char *changes,
                           size_t cap);
/* Warn (one log line) naming every model./train. key whose value in `now`
 * differs from the checkpoint's stored config, but for those that do not
 * touch the weights (train.dir, threads, logging, checkpoint cadence):
 * resuming with another train.steps, lr or dropout is allowed (to extend a
 * run), and should not pass unsaid. */
void ot_ckpt_warn_config_changes(const char *path, const ot_ckpt_meta *meta, const ot_config *now);
/* OT_EINVAL "PATH was trained with KEY=V but the config says W: ADVICE" for
 * the first of `keys` (e.g. ot_model_shape_keys) whose value in `now` differs from the config the
 * checkpoint was trained with (meta->config). A stored config this version
 * cannot read (written by a version with keys since removed) is not
 * compared; the tensors' shapes still are, when they are read. */
int ot_ckpt_check_config(const char *path, const ot_ckpt_meta *meta, const ot_config *now,
                         const char *const *keys, const char *advice);

/* The newest complete checkpoint in `dir`: the file `latest` names when it
 * opens as a checkpoint, else the ckpt-<step>.h5 / final.h5 of highest step
 * that does. path[0] = '\0' when there is none. */
int ot_ckpt_find_latest(const char *dir, char *path, size_t cap);
/* The checkpoint of highest val F1 (a file in train.dir, written when a
 * validation beats the ones before; never `latest`: training resumes from
 * the newest, and tagging runs the newest unless told otherwise). */
#define OT_CKPT_BEST "best.h5"
/* Point dir/latest at `name` (a file in dir), then delete all but the
 * newest `keep` ckpt-<step>.h5 files (keep 0: delete none; the file
 * `latest` names is always kept). */
int ot_ckpt_publish(const char *dir, const char *name, int keep);
/* Training starting over: remove dir's checkpoints (ckpt-<step>.h5,
 * final.h5, best.h5) and `latest`. */
void ot_ckpt_remove_all(const char *dir);

#endif
