/* A trained checkpoint ready for inference, shared by the stages that run a
 * model over a dataset (ot-embed; ot-tag, and in its raw rag mode the encoder; ot-eval's
 * judge): the checkpoint
 * resolved ("" = the newest complete one in train.dir), its metadata and
 * tokenizer, the model built for the checkpoint's frame shape and loaded. */
#ifndef OT_INFER_H
#define OT_INFER_H

#include "bpe.h"
#include "ckpt.h"
#include "ot_config.h"
#include "ot_dataset.h"
#include "ot_model.h"

typedef struct {
  char ckpt[4200];
  ot_ckpt_meta meta;
  ot_bpe *bpe;
  ot_model *model;
} ot_infer;

/* Fill *inf (zeroed by the caller) for batches of up to max_batch items.
 * `ckpt` "" = the newest in cfg->train.dir. OT_EINVAL naming the key or the
 * file when there is no checkpoint or when cfg's model settings
 * (ot_model_shape_keys) differ from the ones it was trained with. On error
 * call ot_infer_close all the same. */
int ot_infer_open(ot_infer *inf, const ot_config *cfg, const char *ckpt, int max_batch);
/* The same for the checkpoint file `ckpt`, its model shaped by the config
 * stored in it (meta.config) rather than the run's: a model other than the
 * one the run is about (ot-tag's raw rag mode embeds with the encoder the
 * indexes were built from). *cfg receives that config; the caller frees it
 * (ot_config_free), also on error, and keeps it alive while inf is open. */
int ot_infer_open_own(ot_infer *inf, ot_config *cfg, const char *ckpt, int max_batch);
void ot_infer_close(ot_infer *inf); /* accepts a zeroed struct */
/* OT_EINVAL when the frames of `d` (read from `what`) differ from the
 * checkpoint's, or, for a model reading per-frame features, their width. */
int ot_infer_check_dataset(const ot_infer *inf, const ot_dataset *d, const char *what);

#endif
