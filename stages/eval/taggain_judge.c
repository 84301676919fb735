#include "taggain_judge.h"

#include "batcher.h"
#include "infer.h"
#include "ot_common.h"
#include "ot_fs.h"
#include "ot_h5.h"
#include "ot_hash.h"
#include "ot_log.h"
#include "ot_strmap.h"
#include "tagnorm.h"

#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CALIB_FORMAT "open-tag-judge-calibration"
#define CALIB_VERSION 3 /* 2: val_other_pairs[_passing]; 3: judge_weights; older caches are recomputed */
#define TAU_DIV_FALLBACK 0.8
#define MIN_NEAR_DUP_PAIRS 10

struct ot_taggain_judge {
  const ot_evalset *e;
  ot_config jcfg;      /* the judge's own config (from its checkpoint) */
  ot_infer inf;
  int C, batch;
  float *img;          /* [n_items,C] */
  uint8_t *has_img;    /* [n_items] */
  float *txt;          /* [n_tags,C] */
  uint8_t *has_txt;    /* [n_tags] */
  double tau_rel, tau_div;
  json_t *calib;       /* the calibration record */
  int64_t n_img, n_txt, n_txt_cut; /* n_txt_cut: tags longer than tag_len tokens */
};

/* ---- the judge and its vectors -------------------------------------------------------- */

/* A judge with non-finite vectors would make every threshold and comparison
 * below meaningless (NaN sorts nowhere): refuse it, named. */
static int check_finite(const ot_taggain_judge *j, const float *v, size_t n, const char *what) {
  for (size_t i = 0; i < n; i++)
    if (!isfinite(v[i]))
      return ot_fail(OT_EINVAL, "the judge %s gives non-finite %s vectors (diverged weights?)",
                     j->inf.ckpt, what);
  return OT_OK;
}

/* Judge image vectors of every item of the split at `dir` -> vec [n,C]. */
static int embed_split(ot_taggain_judge *j, const char *dir, ot_dataset **d_out, float **vec_out) {
  *vec_out = NULL;
  int st = ot_dataset_open(d_out, dir);
  if (st) return st;
  const ot_dataset *d = *d_out;
  if ((st = ot_infer_check_dataset(&j->inf, d, dir))) return st;
  ot_batcher *bt = NULL;
  st = ot_batcher_open(&bt, d, j->inf.bpe, &j->inf.meta.tags, j->jcfg.model.title_len, j->batch);
  if (st) return st;
  const int64_t n = ot_dataset_count(d);
  float *vec = ot_xmalloc(((size_t)n + 1) * j->C * sizeof *vec);
  int64_t *items = ot_xmalloc((size_t)j->batch * sizeof *items);
  for (int64_t c = 0; c < n && st == OT_OK; c += j->batch) {
    const int k = (int)(n - c < j->batch ? n - c : j->batch);
    for (int i = 0; i < k; i++) items[i] = c + i;
    ot_batch b;
    if ((st = ot_batcher_fill(bt, items, k, &b))) break;
    b.targets = NULL, b.item_tags = b.tag_offsets = b.tag_tokens = NULL;
    if ((st = ot_model_forward(j->inf.model, &b, 0, 0, NULL))) break;
    st = ot_model_judge_image(j->inf.model, vec + (size_t)c * j->C);
  }
  if (st == OT_OK) st = check_finite(j, vec, (size_t)n * j->C, "image");
  free(items);
  ot_batcher_close(bt);
  if (st) free(vec);
  else *vec_out = vec;
  return st;
}

/* Text vectors of texts[n] -> vec [n,C]; ok[k] = 0 for a text without
 * tokens (its row zero). The judge reads a tag's first tag_len tokens, as it
 * was trained: *cut (if not NULL) gets how many texts are longer. */
static int embed_texts(ot_taggain_judge *j, const char *const *texts, int64_t n, float *vec,
                       uint8_t *ok, int64_t *cut) {
  const int L = j->jcfg.model.tag_len;
  int cap = 64, m = 0;
  int32_t *buf = ot_xmalloc((size_t)cap * sizeof *buf);
  int32_t *off = ot_xmalloc(((size_t)n + 1) * sizeof *off), *tok = ot_xmalloc(((size_t)n * L + 1) * sizeof *tok);
  int64_t *row = ot_xmalloc(((size_t)n + 1) * sizeof *row);
  off[0] = 0;
  for (int64_t k = 0; k < n; k++) {
    int len = 0;
    while (ot_bpe_encode(j->inf.bpe, texts[k], buf, cap, &len) != OT_OK) {
      cap = len;
      buf = ot_xrealloc(buf, (size_t)cap * sizeof *buf);
    }
    if (len > L) {
      len = L;
      if (cut) ++*cut;
    }
    ok[k] = len > 0;
    if (!len) continue;
    memcpy(tok + off[m], buf, (size_t)len * sizeof *buf);
    off[m + 1] = off[m] + len;
    row[m++] = k;
  }
  float *packed = ot_xmalloc(((size_t)m + 1) * j->C * sizeof *packed);
  int st = ot_model_judge_embed_text(j->inf.model, off, tok, m, packed);
  if (st == OT_OK) st = check_finite(j, packed, (size_t)m * j->C, "text");
  memset(vec, 0, (size_t)n * j->C * sizeof *vec);
  for (int i = 0; i < m && st == OT_OK; i++)
    memcpy(vec + (size_t)row[i] * j->C, packed + (size_t)i * j->C, (size_t)j->C * sizeof *vec);
  free(packed);
  free(buf);
  free(off);
  free(tok);
  free(row);
  return st;
}

static double dot(const float *a, const float *b, int C) {
  double s = 0.0;
  for (int c = 0; c < C; c++) s += (double)a[c] * b[c];
  return s;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int cmp_double(const void *a, const void *b) {
  const double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* The evalset's items bound to the split's rows by id. */
static void bind_items(ot_taggain_judge *j, const ot_dataset *d, const float *vec) {
  const int64_t n = ot_dataset_count(d), n_items = ot_evalset_n_items(j->e);
  typedef struct {
    const char *id;
    int64_t row;
  } id_row;
  id_row *ids = ot_xmalloc(((size_t)n + 1) * sizeof *ids);
  for (int64_t i = 0; i < n; i++) {
    int64_t li;
    ot_shard *s = ot_dataset_locate(d, i, &li);
    ids[i] = (id_row){ot_shard_id(s, li), i};
  }
  qsort(ids, (size_t)n, sizeof *ids, cmp_str); /* id is the first member */
  for (int64_t i = 0; i < n_items; i++) {
    const char *id = ot_evalset_item_at(j->e, i)->id;
    const id_row *hit = bsearch(&id, ids, (size_t)n, sizeof *ids, cmp_str);
    j->has_img[i] = hit != NULL;
    j->n_img += hit != NULL;
    if (hit) memcpy(j->img + (size_t)i * j->C, vec + (size_t)hit->row * j->C, (size_t)j->C * sizeof(float));
  }
  free(ids);
}

/* ---- calibration ------------------------------------------------------------------ */

/* tau_rel on the val split: the (1-p) quantile of sim_rel over its distinct
 * (item, normalised ground-truth tag) pairs. How selective that is: the
 * share of pairs of an item with a ground-truth tag of another item (item
 * i + n/2, tags it does not have) that pass too. */
static int calibrate_rel(ot_taggain_judge *j, const ot_config *cfg, json_t *rec) {
  char dir[4200];
  snprintf(dir, sizeof dir, "%s/val", cfg->data.dir);
  ot_dataset *d = NULL;
  float *iv = NULL;
  int st = embed_split(j, dir, &d, &iv);
  if (st) {
    ot_dataset_close(d);
    return ot_fail_ctx(st, "judge calibration needs the val split");
  }
  const int64_t n = ot_dataset_count(d);
  size_t n_pairs = 0, cap = 64;
  char **tag = ot_xmalloc(cap * sizeof *tag);
  int64_t *item = ot_xmalloc(cap * sizeof *item);
  size_t *first_pair = ot_xcalloc((size_t)n + 1, sizeof *first_pair); /* item i: pairs [first_pair[i], first_pair[i+1]) */
  for (int64_t i = 0; i < n && st == OT_OK; i++) {
    int64_t li;
    ot_shard *s = ot_dataset_locate(d, i, &li);
    char *const *tags;
    const int nt = ot_shard_tags(s, li, &tags);
    const size_t first = n_pairs;
    for (int k = 0; k < nt && st == OT_OK; k++) {
      char *x = NULL;
      if ((st = ot_tagnorm_dup(tags[k], &x))) break;
      int dup = !x[0];
      for (size_t q = first; q < n_pairs && !dup; q++) dup = !strcmp(tag[q], x);
      if (dup) {
        free(x);
        continue;
      }
      if (n_pairs == cap) {
        cap *= 2;
        tag = ot_xrealloc(tag, cap * sizeof *tag);
        item = ot_xrealloc(item, cap * sizeof *item);
      }
      tag[n_pairs] = x, item[n_pairs++] = i;
    }
    first_pair[i + 1] = n_pairs;
  }
  float *tv = ot_xmalloc((n_pairs + 1) * j->C * sizeof *tv);
  uint8_t *ok = ot_xmalloc(n_pairs + 1);
  double *sim = ot_xmalloc((n_pairs + 1) * sizeof *sim);
  if (st == OT_OK) st = embed_texts(j, (const char *const *)tag, (int64_t)n_pairs, tv, ok, NULL);
  size_t m = 0;
  for (size_t k = 0; k < n_pairs && st == OT_OK; k++)
    if (ok[k]) sim[m++] = dot(iv + (size_t)item[k] * j->C, tv + k * j->C, j->C);
  if (st == OT_OK && m == 0)
    st = ot_fail(OT_EINVAL, "%s: no (item, ground-truth tag) pair to calibrate the judge's tau_rel "
                 "on", dir);
  if (st == OT_OK) {
    const double p = cfg->eval.judge_gt_pass;
    qsort(sim, m, sizeof *sim, cmp_double);
    const double h = (double)(m - 1) * (1.0 - p);
    const size_t lo = (size_t)floor(h), hi = lo + 1 < m ? lo + 1 : lo;
    j->tau_rel = sim[lo] + (h - (double)lo) * (sim[hi] - sim[lo]);
    size_t pass = 0, other = 0, other_pass = 0;
    for (size_t k = 0; k < m; k++) pass += sim[k] > j->tau_rel;
    for (size_t k = 0; k < n_pairs && n > 1; k++) {
      const int64_t i2 = (item[k] + n / 2) % n;
      int has = !ok[k];
      for (size_t q = first_pair[i2]; q < first_pair[i2 + 1] && !has; q++) has = !strcmp(tag[q], tag[k]);
      if (has) continue;
      other++;
      other_pass += dot(iv + (size_t)i2 * j->C, tv + k * j->C, j->C) > j->tau_rel;
    }
    json_object_set_new(rec, "tau_rel", json_real(j->tau_rel));
    json_object_set_new(rec, "val_items", json_integer((json_int_t)n));
    json_object_set_new(rec, "val_pairs", json_integer((json_int_t)m));
    json_object_set_new(rec, "val_pairs_without_tokens", json_integer((json_int_t)(n_pairs - m)));
    json_object_set_new(rec, "val_pairs_passing", json_integer((json_int_t)pass));
    json_object_set_new(rec, "val_other_pairs", json_integer((json_int_t)other));
    json_object_set_new(rec, "val_other_pairs_passing", json_integer((json_int_t)other_pass));
  }
  for (size_t k = 0; k < n_pairs; k++) free(tag[k]);
  free(tag);
  free(item);
  free(first_pair);
  free(tv);
  free(ok);
  free(sim);
  free(iv);
  ot_dataset_close(d);
  return st;
}

/* The near-duplicate key: ASCII letters and digits kept, other ASCII dropped,
 * non-ASCII bytes kept. */
static char *dup_key(const char *s) {
  char *k = ot_xmalloc(strlen(s) + 3), *o = k;
  for (const unsigned char *p = (const unsigned char *)s; *p; p++)
    if (*p >= 0x80 || (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z'))
      *o++ = (char)*p;
  *o = '\0';
  return k;
}

/* tau_div: the median sim_div over the near-duplicate pairs of the training
 * tags (those with a text vector). */
static void calibrate_div(ot_taggain_judge *j, json_t *rec) {
  const int32_t T = ot_evalset_n_tags(j->e);
  ot_named_row *ks = ot_xmalloc(((size_t)T + 1) * sizeof *ks); /* (key, tag) */
  size_t n = 0, cap = 64, m = 0;
  int64_t n_train = 0;
  for (int32_t t = 0; t < T; t++) {
    if (ot_evalset_train_count(j->e, t) <= 0) continue;
    n_train++;
    if (!j->has_txt[t]) continue;
    ks[n++] = (ot_named_row){dup_key(ot_evalset_tag(j->e, t)), t};
  }
  qsort(ks, n, sizeof *ks, ot_named_row_cmp);
  double *sim = ot_xmalloc(cap * sizeof *sim);
  char *want = NULL;
  for (size_t i = 0; i < n; i++) {
    const float *a = j->txt + (size_t)ks[i].row * j->C;
    /* same key: the later entries of its run; key + "s" / "es": their runs */
    for (int v = 0; v < 3; v++) {
      free(want);
      want = ot_xmalloc(strlen(ks[i].name) + 3);
      sprintf(want, "%s%s", ks[i].name, v == 0 ? "" : v == 1 ? "s" : "es");
      for (size_t q = v == 0 ? i + 1 : ot_named_row_lower(ks, n, want); q < n && !strcmp(ks[q].name, want); q++) {
        if (m == cap) sim = ot_xrealloc(sim, (cap *= 2) * sizeof *sim);
        sim[m++] = dot(a, j->txt + (size_t)ks[q].row * j->C, j->C);
      }
    }
  }
  free(want);
  const int fallback = m < MIN_NEAR_DUP_PAIRS;
  if (!fallback) {
    qsort(sim, m, sizeof *sim, cmp_double);
    j->tau_div = m % 2 ? sim[m / 2] : 0.5 * (sim[m / 2 - 1] + sim[m / 2]);
  } else {
    j->tau_div = TAU_DIV_FALLBACK;
  }
  json_object_set_new(rec, "tau_div", json_real(j->tau_div));
  json_object_set_new(rec, "tau_div_source", json_string(fallback ? "fallback" : "near_duplicates"));
  json_object_set_new(rec, "near_duplicate_pairs", json_integer((json_int_t)m));
  json_object_set_new(rec, "train_tags", json_integer((json_int_t)n_train));
  json_object_set_new(
      rec, "near_duplicate_rule",
      json_string("distinct training tags equal after removing ASCII non-alphanumerics, up to a "
                  "trailing \"s\" or \"es\" on one of them; median cosine; fewer than 10 pairs: 0.8"));
  for (size_t i = 0; i < n; i++) free((char *)ks[i].name);
  free(ks);
  free(sim);
}

/* The cached record when it was made for this checkpoint step, p and data. */
static json_t *read_cache(const char *path, json_t *want) {
  if (!ot_fs_exists(path)) return NULL;
  json_t *c = json_load_file(path, 0, NULL);
  const char *key;
  json_t *v;
  const char *format = json_string_value(json_object_get(c, "format"));
  int same = c && format && !strcmp(format, CALIB_FORMAT) &&
             json_integer_value(json_object_get(c, "version")) == CALIB_VERSION;
  json_object_foreach(want, key, v) same = same && json_equal(json_object_get(c, key), v);
  same = same && json_is_number(json_object_get(c, "tau_rel")) &&
         json_is_number(json_object_get(c, "tau_div"));
  if (!same) {
    json_decref(c);
    return NULL;
  }
  return c;
}

/* The versions of data.dir's train and val splits (ot_dataset_version; 0
 * for a split that does not open, which calibrate_rel then reports). */
static uint64_t data_version(const ot_config *cfg) {
  static const char *const splits[] = {"train", "val"};
  uint64_t h = OT_FNV64_INIT;
  for (int s = 0; s < 2; s++) {
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/%s", cfg->data.dir, splits[s]);
    ot_dataset *d = NULL;
    const uint64_t v = ot_dataset_open(&d, dir) == OT_OK ? ot_dataset_version(d) : 0;
    ot_dataset_close(d);
    h = ot_fnv1a64(&v, sizeof v, h);
  }
  return h;
}

static int calibrate(ot_taggain_judge *j, const ot_config *cfg) {
  char dir[4200], path[4300];
  ot_fs_dirname(dir, sizeof dir, cfg->eval.judge);
  snprintf(path, sizeof path, "%s/calibration.json", dir);
  /* The weights themselves, not only path and step: a judge retrained in
   * place has both unchanged, and its calibration must not be reused. */
  const ot_params *p = ot_model_params(j->inf.model);
  char weights[17];
  snprintf(weights, sizeof weights, "%016llx",
           (unsigned long long)ot_fnv1a64(ot_params_values_const(p), ot_params_total(p) * sizeof(float),
                                          OT_FNV64_INIT));
  /* and the data, not only its folder: tau_rel comes from the val split,
   * tau_div from the training tags, and a split extracted again in place
   * (other items or tags) must not keep the old thresholds */
  char data[17];
  snprintf(data, sizeof data, "%016llx", (unsigned long long)data_version(cfg));
  json_t *key = json_pack("{s:s, s:I, s:s, s:f, s:s, s:s}", "judge", cfg->eval.judge, "judge_step",
                          (json_int_t)j->inf.meta.step, "judge_weights", weights, "judge_gt_pass",
                          cfg->eval.judge_gt_pass, "data_dir", cfg->data.dir, "data_version", data);
  json_t *c = read_cache(path, key);
  if (c) {
    json_decref(key);
    j->calib = c;
    j->tau_rel = json_number_value(json_object_get(c, "tau_rel"));
    j->tau_div = json_number_value(json_object_get(c, "tau_div"));
    ot_log_info("judge calibration from %s: tau_rel %g, tau_div %g", path, j->tau_rel, j->tau_div);
    return OT_OK;
  }
  json_t *rec = json_pack("{s:s, s:i}", "format", CALIB_FORMAT, "version", CALIB_VERSION);
  json_object_update(rec, key);
  json_decref(key);
  int st = calibrate_rel(j, cfg, rec);
  if (st) {
    json_decref(rec);
    return st;
  }
  calibrate_div(j, rec);
  j->calib = rec;
  /* the file is a cache: a judge folder that cannot be written (shared,
   * read-only) costs a recalibration next time, not this evaluation */
  if (ot_fs_write_json(path, rec, JSON_INDENT(1) | JSON_ENSURE_ASCII | JSON_REAL_PRECISION(17)))
    ot_log_warn("judge calibration not cached (%s): tau_rel %g, tau_div %g", ot_errmsg(),
                j->tau_rel, j->tau_div);
  else
    ot_log_info("judge calibration written to %s: tau_rel %g, tau_div %g", path, j->tau_rel,
                j->tau_div);
  return OT_OK;
}

/* ---- the vectors as an HDF5 file (eval.taggain_embeddings' layout) ------------------- */

/* group g ("image" or "text") of `file`: names [n] as `key`, vectors [n,C] as vec */
static int write_group(hid_t g, const char *group, const char *key, const char *const *names,
                       const float *v, int64_t n, int C, const char *file) {
  const hsize_t dims[2] = {(hsize_t)n, (hsize_t)C};
  if (ot_h5_write_strings(g, key, names, n) < 0)
    return ot_fail(OT_EIO, "eval.judge_vectors: cannot write %s/%s in %s", group, key, file);
  if (ot_h5_write_array(g, "vec", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 2, dims, v))
    return ot_fail(OT_EIO, "eval.judge_vectors: cannot write %s/vec in %s", group, file);
  return OT_OK;
}

static int dump_vectors(const ot_taggain_judge *j, const char *path) {
  char tmp[4400];
  snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
  const int64_t n_items = ot_evalset_n_items(j->e);
  const int32_t T = ot_evalset_n_tags(j->e);
  const char **ids = ot_xmalloc(((size_t)n_items + 1) * sizeof *ids);
  const char **tags = ot_xmalloc(((size_t)T + 1) * sizeof *tags);
  float *iv = ot_xmalloc(((size_t)n_items + 1) * j->C * sizeof *iv);
  float *tv = ot_xmalloc(((size_t)T + 1) * j->C * sizeof *tv);
  int64_t ni = 0, nt = 0;
  for (int64_t i = 0; i < n_items; i++)
    if (j->has_img[i]) {
      ids[ni] = ot_evalset_item_at(j->e, i)->id;
      memcpy(iv + (size_t)ni++ * j->C, j->img + (size_t)i * j->C, (size_t)j->C * sizeof *iv);
    }
  for (int32_t t = 0; t < T; t++)
    if (j->has_txt[t]) {
      tags[nt] = ot_evalset_tag(j->e, t);
      memcpy(tv + (size_t)nt++ * j->C, j->txt + (size_t)t * j->C, (size_t)j->C * sizeof *tv);
    }
  ot_h5_quiet();
  hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  int st = f < 0 ? ot_fail(OT_EIO, "eval.judge_vectors: cannot create %s", tmp) : OT_OK;
  hid_t gi = -1, gt = -1;
  if (!st && ((gi = ot_h5_create_group(f, "image")) < 0 ||
              (gt = ot_h5_create_group(f, "text")) < 0))
    st = ot_fail(OT_EIO, "eval.judge_vectors: cannot create groups in %s", tmp);
  if (!st) st = write_group(gi, "image", "id", ids, iv, ni, j->C, tmp);
  if (!st) st = write_group(gt, "text", "tag", tags, tv, nt, j->C, tmp);
  if (gi >= 0) H5Gclose(gi);
  if (gt >= 0) H5Gclose(gt);
  if (f >= 0 && H5Fclose(f) < 0 && !st) st = ot_fail(OT_EIO, "cannot close %s", tmp);
  if (!st && rename(tmp, path)) st = ot_fail(OT_EIO, "cannot rename %s to %s", tmp, path);
  if (st) remove(tmp);
  free(ids);
  free(tags);
  free(iv);
  free(tv);
  return st;
}

/* ---- the handle ---------------------------------------------------------------------- */

int ot_taggain_judge_open(ot_taggain_judge **out, const ot_config *cfg, const ot_evalset *e) {
  *out = NULL;
  ot_taggain_judge *j = ot_xcalloc(1, sizeof *j);
  j->e = e;
  j->batch = cfg->embed.batch;
  const int64_t n_items = ot_evalset_n_items(e);
  const int32_t T = ot_evalset_n_tags(e);
  ot_dataset *d = NULL;
  float *vec = NULL;
  char dir[4200];
  snprintf(dir, sizeof dir, "%s/%s", cfg->data.dir, cfg->eval.split);
  int st = ot_infer_open_own(&j->inf, &j->jcfg, cfg->eval.judge, j->batch);
  if (st) st = ot_fail_ctx(st, "eval.judge");
  else if (j->jcfg.model.type != OT_MODEL_JUDGE)
    st = ot_fail(OT_EINVAL, "eval.judge: %s is not a judge checkpoint (model.type is not judge)",
                 cfg->eval.judge);
  if (!st) {
    j->C = j->jcfg.model.dim;
    j->img = ot_xcalloc((size_t)n_items + 1, (size_t)j->C * sizeof *j->img);
    j->has_img = ot_xcalloc((size_t)n_items + 1, 1);
    j->txt = ot_xcalloc((size_t)T + 1, (size_t)j->C * sizeof *j->txt);
    j->has_txt = ot_xcalloc((size_t)T + 1, 1);
    st = embed_split(j, dir, &d, &vec);
  }
  if (!st) bind_items(j, d, vec);
  if (!st) {
    const char **texts = ot_xmalloc(((size_t)T + 1) * sizeof *texts);
    for (int32_t t = 0; t < T; t++) texts[t] = ot_evalset_tag(e, t);
    st = embed_texts(j, texts, T, j->txt, j->has_txt, &j->n_txt_cut);
    for (int32_t t = 0; t < T; t++) j->n_txt += j->has_txt[t];
    free(texts);
  }
  free(vec);
  ot_dataset_close(d);
  if (!st) st = calibrate(j, cfg);
  if (!st && cfg->eval.judge_vectors[0]) st = dump_vectors(j, cfg->eval.judge_vectors);
  if (st) {
    ot_taggain_judge_close(j);
    return st;
  }
  *out = j;
  return OT_OK;
}

void ot_taggain_judge_close(ot_taggain_judge *j) {
  if (!j) return;
  ot_infer_close(&j->inf);
  ot_config_free(&j->jcfg);
  free(j->img);
  free(j->has_img);
  free(j->txt);
  free(j->has_txt);
  json_decref(j->calib);
  free(j);
}

static int sim_rel(void *ctx, int64_t item, int32_t tag, double *sim) {
  const ot_taggain_judge *j = ctx;
  if (!j->has_img[item]) return OT_TG_SIM_NO_ITEM;
  if (!j->has_txt[tag]) return OT_TG_SIM_NO_TAG;
  *sim = dot(j->img + (size_t)item * j->C, j->txt + (size_t)tag * j->C, j->C);
  return OT_TG_SIM_OK;
}

static int sim_div(void *ctx, int32_t a, int32_t b, double *sim) {
  const ot_taggain_judge *j = ctx;
  if (!j->has_txt[a] || !j->has_txt[b]) return 0;
  *sim = dot(j->txt + (size_t)a * j->C, j->txt + (size_t)b * j->C, j->C);
  return 1;
}

ot_taggain_sim ot_taggain_judge_sim(ot_taggain_judge *j) {
  return (ot_taggain_sim){sim_rel, sim_div, j};
}

void ot_taggain_judge_taus(const ot_taggain_judge *j, double *tau_rel, double *tau_div) {
  *tau_rel = j->tau_rel;
  *tau_div = j->tau_div;
}

json_t *ot_taggain_judge_json(const ot_taggain_judge *j) {
  json_t *r = json_deep_copy(j->calib);
  json_object_del(r, "format");
  json_object_del(r, "version");
  json_object_set_new(r, "items_with_vector", json_integer((json_int_t)j->n_img));
  json_object_set_new(r, "tags_with_vector", json_integer((json_int_t)j->n_txt));
  json_object_set_new(r, "judge_tag_len", json_integer(j->jcfg.model.tag_len));
  json_object_set_new(r, "tags_cut", json_integer((json_int_t)j->n_txt_cut));
  return r;
}
