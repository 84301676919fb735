#include "infer.h"

#include "ot_common.h"

#include <stdio.h>
#include <string.h>

/* Tokenizer and model of the checkpoint whose metadata inf holds, the model
 * shaped by cfg. */
static int build(ot_infer *inf, const ot_config *cfg, int max_batch) {
  int st;
  if ((st = ot_bpe_load_string(&inf->bpe, inf->meta.tokenizer))) return ot_fail_ctx(st, "%s: tokenizer", inf->ckpt);
  ot_model_dims dims = {.T = inf->meta.T, .H = inf->meta.H, .W = inf->meta.W, .D = inf->meta.D,
                        .n_tags = inf->meta.tags.n,
                        .vocab = ot_bpe_vocab_size(inf->bpe), .max_batch = max_batch};
  if ((st = ot_model_open(&inf->model, cfg, &dims, 0))) return st;
  return ot_ckpt_read_params(inf->ckpt, ot_model_params(inf->model));
}

int ot_infer_open(ot_infer *inf, const ot_config *cfg, const char *ckpt, int max_batch) {
  int st;
  if (ckpt[0]) snprintf(inf->ckpt, sizeof inf->ckpt, "%s", ckpt);
  else if ((st = ot_config_require(cfg, "train.dir"))) return st;
  else if ((st = ot_ckpt_find_latest(cfg->train.dir, inf->ckpt, sizeof inf->ckpt))) return st;
  else if (!inf->ckpt[0])
    return ot_fail(OT_EINVAL, "%s: no checkpoint found (train first, or name one)", cfg->train.dir);
  if ((st = ot_ckpt_read_meta(inf->ckpt, &inf->meta))) return st;
  /* before the model is built: a wrong setting is then named, not met as
   * a tensor of another shape */
  if ((st = ot_ckpt_check_config(inf->ckpt, &inf->meta, cfg, ot_model_shape_keys(cfg->model.type),
                                 "run it with the model settings it was trained with (the same "
                                 "config and --set model.* as ot-train)")))
    return st;
  return build(inf, cfg, max_batch);
}

int ot_infer_open_own(ot_infer *inf, ot_config *cfg, const char *ckpt, int max_batch) {
  memset(cfg, 0, sizeof *cfg);
  snprintf(inf->ckpt, sizeof inf->ckpt, "%s", ckpt);
  int st = ot_ckpt_read_meta(inf->ckpt, &inf->meta);
  if (st) return st;
  char name[4300];
  snprintf(name, sizeof name, "%s (its stored config)", inf->ckpt);
  if ((st = ot_config_load_string(cfg, inf->meta.config, name, NULL, 0))) return st;
  return build(inf, cfg, max_batch);
}

void ot_infer_close(ot_infer *inf) {
  ot_model_close(inf->model);
  ot_bpe_close(inf->bpe);
  ot_ckpt_meta_free(&inf->meta);
  memset(inf, 0, sizeof *inf);
}

int ot_infer_check_dataset(const ot_infer *inf, const ot_dataset *d, const char *what) {
  int T, H, W;
  ot_dataset_dims(d, &T, &H, &W);
  const int pixels = !ot_model_reads_features(inf->model); /* a features model never reads frames */
  if (T != inf->meta.T || (pixels && (H != inf->meta.H || W != inf->meta.W)))
    return ot_fail(OT_EINVAL, "%s: frames [%d,%d,%d] but %s was trained on [%d,%d,%d]", what, T, H, W,
                   inf->ckpt, inf->meta.T, inf->meta.H, inf->meta.W);
  const int D = ot_dataset_feature_dim(d);
  if (ot_model_reads_features(inf->model) && D != inf->meta.D)
    return ot_fail(OT_EINVAL, "%s: per-frame features of width %d but %s was trained on width %d",
                   what, D, inf->ckpt, inf->meta.D);
  return OT_OK;
}
