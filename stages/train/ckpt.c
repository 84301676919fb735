#include "ckpt.h"

#include "ot_common.h"
#include "ot_fs.h"
#include "ot_h5.h"
#include "ot_log.h"

#include <dirent.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CKPT_FORMAT "open-tag-checkpoint"
#define CKPT_VERSION 1
/* What /lexicon/once holds (ot_lexicon_hash); a reader refuses another. */
#define LEXICON_HASH "FNV-1a 64 of the piece's UTF-8 text"

/* --- writing ----------------------------------------------------------- */

static int attr_write(hid_t loc, const char *name, hid_t file_type, hid_t mem_type, int n, const void *v) {
  hsize_t dim = (hsize_t)n;
  hid_t space = n ? H5Screate_simple(1, &dim, NULL) : H5Screate(H5S_SCALAR);
  hid_t a = H5Acreate2(loc, name, file_type, space, H5P_DEFAULT, H5P_DEFAULT);
  herr_t r = a < 0 ? -1 : H5Awrite(a, mem_type, v);
  if (a >= 0) H5Aclose(a);
  H5Sclose(space);
  return r < 0 ? -1 : 0;
}

static int attr_str(hid_t loc, const char *name, const char *value) {
  hid_t t = ot_h5_utf8_type();
  int r = attr_write(loc, name, t, t, 0, &value);
  H5Tclose(t);
  return r;
}

static int attr_i64(hid_t loc, const char *name, int64_t v) {
  return attr_write(loc, name, H5T_STD_I64LE, H5T_NATIVE_INT64, 0, &v);
}

static int attr_f64(hid_t loc, const char *name, double v) {
  return attr_write(loc, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 0, &v);
}

/* One group of tensors (params, adam_m or adam_v) from buffer `buf`. */
static int write_tensors(hid_t file, const char *group, ot_params *p, const float *buf) {
  hid_t g = ot_h5_create_group(file, group);
  if (g < 0) return -1;
  int bad = 0;
  for (int i = 0; i < ot_params_count(p) && !bad; i++) {
    const ot_param_view *v = ot_params_view(p, i);
    hsize_t dims[OT_PARAM_MAX_DIMS];
    for (int k = 0; k < v->ndim; k++) dims[k] = (hsize_t)v->shape[k];
    bad = ot_h5_write_array(g, v->name, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, v->ndim, dims, buf + v->offset);
  }
  H5Gclose(g);
  return bad;
}

static int write_lexicon(hid_t f, const ot_lexicon *lx) {
  if (lx->max_units == 0) return 0;
  hid_t g = ot_h5_create_group(f, "lexicon");
  if (g < 0) return -1;
  hsize_t u = (hsize_t)lx->max_units;
  int bad = ot_h5_write_strings(g, "text", (const char *const *)lx->text, lx->n) ||
            ot_h5_write_i64(g, "groups", lx->groups, lx->n) ||
            ot_h5_write_i64(g, "tagged", lx->tagged, lx->n) ||
            (lx->tag_groups && (ot_h5_write_i64(g, "tag_groups", lx->tag_groups, lx->n) ||
                                attr_i64(g, "n_groups", lx->n_groups))) ||
            ot_h5_write_array(g, "prior", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 1, &u, lx->prior) ||
            (lx->prior_shape && ot_h5_write_array(g, "prior_shape", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT,
                                                  2, (hsize_t[]){u, OT_LEXICON_SHAPES},
                                                  lx->prior_shape)) ||
            (lx->n_once && (ot_h5_write_array(g, "once", H5T_STD_U64LE, H5T_NATIVE_UINT64, 1,
                                              (hsize_t[]){(hsize_t)lx->n_once}, lx->once) ||
                            attr_str(g, "once_hash", LEXICON_HASH)));
  H5Gclose(g);
  return bad;
}

static int write_file(hid_t f, ot_params *p, const ot_ckpt_meta *m) {
  const ot_order_pos *pos = &m->pos;
  hsize_t k = (hsize_t)m->tags.n;
  hid_t t = ot_h5_utf8_type();
  int bad = attr_str(f, "format", CKPT_FORMAT) || attr_i64(f, "version", CKPT_VERSION) ||
            attr_i64(f, "step", m->step) || attr_i64(f, "epoch", pos->epoch) ||
            attr_i64(f, "offset", pos->offset) ||
            attr_write(f, "rng_state", H5T_STD_U64LE, H5T_NATIVE_UINT64, OT_RNG_STATE_WORDS, pos->rng) ||
            attr_f64(f, "threshold", m->threshold) || attr_f64(f, "val_f1", m->val_f1) ||
            attr_f64(f, "retrieval_weight", m->ret_weight) ||
            attr_f64(f, "lexicon_weight", m->lex_weight) ||
            attr_f64(f, "absence_weight", m->abs_weight) ||
            attr_i64(f, "T", m->T) || attr_i64(f, "H", m->H) || attr_i64(f, "W", m->W) ||
            attr_i64(f, "D", m->D) || attr_i64(f, "train_items", m->train_items) ||
            attr_write(f, "data_version", H5T_STD_U64LE, H5T_NATIVE_UINT64, 0, &m->data_version) ||
            attr_write(f, "cands_version", H5T_STD_U64LE, H5T_NATIVE_UINT64, 0, &m->cands_version) ||
            attr_str(f, "config", m->config) ||
            ot_h5_write_array(f, "tokenizer", t, t, 0, NULL, &m->tokenizer) ||
            ot_h5_write_array(f, "tags", t, t, 1, &k, m->tags.tags) ||
            ot_h5_write_array(f, "tag_counts", H5T_STD_I64LE, H5T_NATIVE_INT64, 1, &k, m->tags.counts) ||
            write_lexicon(f, &m->lexicon) ||
            write_tensors(f, "params", p, ot_params_values(p));
  H5Tclose(t);
  if (!bad && ot_params_adam_m(p))
    bad = write_tensors(f, "adam_m", p, ot_params_adam_m(p)) ||
          write_tensors(f, "adam_v", p, ot_params_adam_v(p));
  if (!bad && ot_params_ema(p)) bad = write_tensors(f, "ema", p, ot_params_ema(p));
  return bad;
}

int ot_ckpt_write(const char *path, ot_params *p, const ot_ckpt_meta *meta) {
  ot_h5_quiet();
  char tmp[4200];
  ot_fs_tmpname(tmp, sizeof tmp, path);
  hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  if (f < 0) return ot_fail(OT_EIO, "%s: cannot create checkpoint", tmp);
  int bad = write_file(f, p, meta);
  bad |= H5Fclose(f) < 0;
  if (bad) {
    unlink(tmp);
    return ot_fail(OT_EIO, "%s: writing the checkpoint failed (disk full?)", tmp);
  }
  return ot_fs_commit(tmp, path);
}

/* --- reading ----------------------------------------------------------- */

static int attr_read(hid_t loc, const char *name, hid_t mem_type, int n, void *v) {
  if (H5Aexists(loc, name) <= 0) return -1;
  hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
  hid_t space = H5Aget_space(a);
  hssize_t got = H5Sget_simple_extent_npoints(space);
  H5Sclose(space);
  herr_t r = got == (n ? n : 1) ? H5Aread(a, mem_type, v) : -1;
  H5Aclose(a);
  return r < 0 ? -1 : 0;
}

/* A scalar string attribute or dataset, malloc'd. */
static char *read_str(hid_t f, const char *name, int is_attr) {
  hid_t t = ot_h5_utf8_type();
  char *v = NULL;
  herr_t r = -1;
  if (is_attr) {
    r = attr_read(f, name, t, 0, &v);
  } else if (H5Lexists(f, name, H5P_DEFAULT) > 0) {
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    r = d < 0 ? -1 : H5Dread(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, &v);
    if (d >= 0) H5Dclose(d);
  }
  H5Tclose(t);
  if (r < 0 || !v) return NULL;
  char *out = ot_xstrdup(v);
  H5free_memory(v);
  return out;
}

static int read_tags(hid_t f, const char *path, ot_tagset *tags) {
  if (H5Lexists(f, "tags", H5P_DEFAULT) <= 0 || H5Lexists(f, "tag_counts", H5P_DEFAULT) <= 0)
    return ot_fail(OT_EINVAL, "%s: datasets 'tags'/'tag_counts' missing", path);
  hid_t d = H5Dopen2(f, "tags", H5P_DEFAULT), dc = H5Dopen2(f, "tag_counts", H5P_DEFAULT);
  hid_t space = H5Dget_space(d);
  hssize_t n = H5Sget_simple_extent_npoints(space);
  H5Sclose(space);
  space = H5Dget_space(dc);
  hssize_t nc = H5Sget_simple_extent_npoints(space);
  H5Sclose(space);
  char **raw = ot_xcalloc((size_t)n + 1, sizeof *raw);
  int64_t *counts = ot_xcalloc((size_t)n + 1, sizeof *counts);
  hid_t t = ot_h5_utf8_type();
  int bad = n < 1 || nc != n || H5Dread(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, raw) < 0 ||
            H5Dread(dc, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, counts) < 0;
  H5Tclose(t);
  H5Dclose(d);
  H5Dclose(dc);
  char **tags_own = ot_xcalloc((size_t)n + 1, sizeof *tags_own);
  for (hssize_t i = 0; i < n; i++) {
    tags_own[i] = ot_xstrdup(raw[i] ? raw[i] : "");
    if (raw[i]) H5free_memory(raw[i]);
  }
  free(raw);
  if (bad) {
    for (hssize_t i = 0; i < n; i++) free(tags_own[i]);
    free(tags_own);
    free(counts);
    return ot_fail(OT_EINVAL, "%s: cannot read the tag list", path);
  }
  return ot_tagset_adopt(tags, (int)n, tags_own, counts, path);
}

/* The /lexicon group, when the file has one (ot_lexicon_adopt checks it). */
static int read_lexicon(hid_t f, const char *path, ot_lexicon *lx) {
  if (H5Lexists(f, "lexicon", H5P_DEFAULT) <= 0) return OT_OK;
  char **raw = NULL;
  int64_t n = 0, *groups = NULL, *tagged = NULL, *tag_groups = NULL, n_groups = 0;
  int st = ot_h5_read_names(f, path, "checkpoint", "lexicon/text", &raw, &n);
  if (st) return st;
  hsize_t u = 0;
  hid_t d = ot_h5_open_ranked(f, path, "checkpoint", "lexicon/prior", 1, &u);
  float *prior = ot_xcalloc((u <= 64 ? (size_t)u : 0) + 1, sizeof *prior);
  int bad = d < 0 || u < 1 || u > 64 ||
            H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, prior) < 0 ||
            ot_h5_read_i64(f, "lexicon/groups", n, &groups) < 0 ||
            ot_h5_read_i64(f, "lexicon/tagged", n, &tagged) < 0;
  if (!bad && H5Lexists(f, "lexicon/tag_groups", H5P_DEFAULT) > 0) { /* since the absence ratio */
    hid_t g = H5Gopen2(f, "lexicon", H5P_DEFAULT);
    bad = g < 0 || attr_read(g, "n_groups", H5T_NATIVE_INT64, 0, &n_groups) ||
          ot_h5_read_i64(f, "lexicon/tag_groups", n, &tag_groups) < 0;
    if (g >= 0) H5Gclose(g);
  }
  float *prior_shape = NULL;
  if (!bad && H5Lexists(f, "lexicon/prior_shape", H5P_DEFAULT) > 0) { /* since the shapes */
    hsize_t dims[2] = {0, 0};
    hid_t ds = ot_h5_open_ranked(f, path, "checkpoint", "lexicon/prior_shape", 2, dims);
    prior_shape = ot_xcalloc((size_t)u * OT_LEXICON_SHAPES, sizeof *prior_shape);
    bad = ds < 0 || dims[0] != u ||
          (dims[1] != OT_LEXICON_SHAPES && dims[1] != OT_LEXICON_PLACES) ||
          H5Dread(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, prior_shape) < 0;
    if (ds >= 0) H5Dclose(ds);
    /* before the word bit: rows of OT_LEXICON_PLACES, one prior for word or not */
    for (hsize_t r = u; !bad && dims[1] == OT_LEXICON_PLACES && r-- > 0;)
      for (int c = 0; c < OT_LEXICON_PLACES; c++) {
        float *row = prior_shape + r * OT_LEXICON_SHAPES;
        row[c] = row[OT_LEXICON_WORD + c] = prior_shape[r * OT_LEXICON_PLACES + c];
      }
  }
  uint64_t *once = NULL;
  hsize_t n_once = 0;
  if (!bad && H5Lexists(f, "lexicon/once", H5P_DEFAULT) > 0) { /* since the hashed pieces */
    hid_t g = H5Gopen2(f, "lexicon", H5P_DEFAULT);
    char *hash = g < 0 ? NULL : read_str(g, "once_hash", 1);
    hid_t ds = ot_h5_open_ranked(f, path, "checkpoint", "lexicon/once", 1, &n_once);
    once = ot_xmalloc(((size_t)n_once + 1) * sizeof *once);
    bad = !hash || strcmp(hash, LEXICON_HASH) || ds < 0 ||
          H5Dread(ds, H5T_NATIVE_UINT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, once) < 0;
    if (ds >= 0) H5Dclose(ds);
    if (g >= 0) H5Gclose(g);
    free(hash);
  }
  if (d >= 0) H5Dclose(d);
  char **text = ot_xcalloc((size_t)n + 1, sizeof *text);
  for (int64_t i = 0; i < n; i++) text[i] = ot_xstrdup(raw[i] ? raw[i] : "");
  ot_h5_free_strings(raw, n);
  if (bad) {
    for (int64_t i = 0; i < n; i++) free(text[i]);
    free(text), free(groups), free(tagged), free(tag_groups), free(prior), free(prior_shape);
    free(once);
    return ot_fail(OT_EINVAL, "%s: cannot read the title lexicon (/lexicon)", path);
  }
  return ot_lexicon_adopt(lx, (int)u, (int)n, text, groups, tagged, tag_groups, n_groups, prior,
                          prior_shape, (int64_t)n_once, once, path);
}

int ot_ckpt_read_meta(const char *path, ot_ckpt_meta *m) {
  ot_h5_quiet();
  memset(m, 0, sizeof *m);
  hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (f < 0) return ot_fail(OT_EINVAL, "%s: cannot open as HDF5", path);
  char *format = read_str(f, "format", 1);
  int64_t version = 0, T = 0, H = 0, W = 0;
  int st = OT_OK;
  if (!format || strcmp(format, CKPT_FORMAT) || attr_read(f, "version", H5T_NATIVE_INT64, 0, &version) ||
      version != CKPT_VERSION) {
    st = ot_fail(OT_EINVAL, "%s: not an Open-Tag checkpoint (format %s, version %lld)", path,
                 format ? format : "missing", (long long)version);
  } else if (attr_read(f, "step", H5T_NATIVE_INT64, 0, &m->step) ||
             attr_read(f, "epoch", H5T_NATIVE_INT64, 0, &m->pos.epoch) ||
             attr_read(f, "offset", H5T_NATIVE_INT64, 0, &m->pos.offset) ||
             attr_read(f, "rng_state", H5T_NATIVE_UINT64, OT_RNG_STATE_WORDS, m->pos.rng) ||
             attr_read(f, "threshold", H5T_NATIVE_DOUBLE, 0, &m->threshold) ||
             attr_read(f, "val_f1", H5T_NATIVE_DOUBLE, 0, &m->val_f1) ||
             attr_read(f, "T", H5T_NATIVE_INT64, 0, &T) || attr_read(f, "H", H5T_NATIVE_INT64, 0, &H) ||
             attr_read(f, "W", H5T_NATIVE_INT64, 0, &W) || !(m->config = read_str(f, "config", 1)) ||
             !(m->tokenizer = read_str(f, "tokenizer", 0))) {
    st = ot_fail(OT_EINVAL, "%s: checkpoint metadata incomplete", path);
  } else {
    m->T = (int)T, m->H = (int)H, m->W = (int)W;
    int64_t D = 0; /* written since per-frame features: older checkpoints had none */
    if (attr_read(f, "D", H5T_NATIVE_INT64, 0, &D) == 0) m->D = (int)D;
    /* written since resumes check the training split: older ones are not checked */
    if (attr_read(f, "train_items", H5T_NATIVE_INT64, 0, &m->train_items)) m->train_items = 0;
    if (attr_read(f, "data_version", H5T_NATIVE_UINT64, 0, &m->data_version)) m->data_version = 0;
    if (attr_read(f, "cands_version", H5T_NATIVE_UINT64, 0, &m->cands_version)) m->cands_version = 0;
    /* written since rag's fused answer: older checkpoints answer with generation alone */
    if (attr_read(f, "retrieval_weight", H5T_NATIVE_DOUBLE, 0, &m->ret_weight)) m->ret_weight = 0.0;
    if (attr_read(f, "lexicon_weight", H5T_NATIVE_DOUBLE, 0, &m->lex_weight)) m->lex_weight = 0.0;
    if (attr_read(f, "absence_weight", H5T_NATIVE_DOUBLE, 0, &m->abs_weight)) m->abs_weight = 0.0;
    /* ot-tag hands them to ot_gen_fuse and ot_gen_fuse_title: their domains */
    if (!(m->ret_weight >= 0.0 && m->ret_weight <= 1.0) ||
        !(m->lex_weight >= 0.0 && m->lex_weight <= OT_GEN_TITLE_WEIGHT_MAX) ||
        !(m->abs_weight >= 0.0 && isfinite(m->abs_weight)))
      st = ot_fail(OT_EINVAL,
                   "%s: retrieval_weight %g, lexicon_weight %g or absence_weight %g out of range "
                   "([0, 1], [0, %g], finite >= 0)",
                   path, m->ret_weight, m->lex_weight, m->abs_weight,
                   (double)OT_GEN_TITLE_WEIGHT_MAX);
    if (st == OT_OK) st = read_tags(f, path, &m->tags);
    if (st == OT_OK) st = read_lexicon(f, path, &m->lexicon);
  }
  free(format);
  H5Fclose(f);
  if (st) ot_ckpt_meta_free(m);
  return st;
}

/* Whether `name` starts with one of the comma-separated `prefixes` (NULL:
 * every name). */
static int selected(const char *name, const char *prefixes) {
  if (!prefixes) return 1;
  for (const char *s = prefixes; *s;) {
    const size_t n = strcspn(s, ",");
    if (n && !strncmp(name, s, n)) return 1;
    s += n + (s[n] == ',');
  }
  return 0;
}

/* The tensors of `group` into buf, at the offsets of p's views; only the
 * views `prefixes` selects (NULL: all). *n_read (if not NULL): how many. */
static int read_tensors_of(hid_t f, const char *path, const char *group, ot_params *p, float *buf,
                           const char *prefixes, int *n_read) {
  if (n_read) *n_read = 0;
  for (int i = 0; i < ot_params_count(p); i++) {
    const ot_param_view *v = ot_params_view(p, i);
    if (!selected(v->name, prefixes)) continue;
    char name[OT_PARAM_NAME_MAX + 16];
    snprintf(name, sizeof name, "%s/%s", group, v->name);
    if (H5Lexists(f, group, H5P_DEFAULT) <= 0 || H5Lexists(f, name, H5P_DEFAULT) <= 0)
      return ot_fail(OT_EINVAL, "%s: tensor '%s' missing (model settings changed?)", path, name);
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    hid_t space = H5Dget_space(d);
    hsize_t dims[8];
    int nd = H5Sget_simple_extent_ndims(space);
    int same = nd == v->ndim && nd <= 8;
    if (same) H5Sget_simple_extent_dims(space, dims, NULL);
    for (int k = 0; same && k < nd; k++) same = dims[k] == (hsize_t)v->shape[k];
    H5Sclose(space);
    herr_t r = same ? H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf + v->offset) : -1;
    H5Dclose(d);
    if (!same) return ot_fail(OT_EINVAL, "%s: tensor '%s' has another shape than the model's", path, name);
    if (r < 0) return ot_fail(OT_EIO, "%s: cannot read tensor '%s'", path, name);
    /* ot-train never writes one (it stops at the first non-finite loss): a
     * damaged file or another program's, which would make every output NaN. */
    for (size_t k = 0; k < v->numel; k++)
      if (!isfinite(buf[v->offset + k]))
        return ot_fail(OT_EINVAL, "%s: tensor '%s' holds a value that is not a finite number (element %zu)",
                       path, name, k);
    if (n_read) ++*n_read;
  }
  return OT_OK;
}

static int read_tensors(hid_t f, const char *path, const char *group, ot_params *p, float *buf) {
  return read_tensors_of(f, path, group, p, buf, NULL, NULL);
}

int ot_ckpt_read_params(const char *path, ot_params *p) {
  ot_h5_quiet();
  hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (f < 0) return ot_fail(OT_EINVAL, "%s: cannot open as HDF5", path);
  const int training = ot_params_adam_m(p) != NULL, averaged = H5Lexists(f, "ema", H5P_DEFAULT) > 0;
  int st = read_tensors(f, path, training || !averaged ? "params" : "ema", p, ot_params_values(p));
  if (st == OT_OK && training && ot_params_ema(p)) {
    if (averaged) st = read_tensors(f, path, "ema", p, ot_params_ema(p));
    else memcpy(ot_params_ema(p), ot_params_values(p), ot_params_total(p) * sizeof(float));
  }
  if (st == OT_OK && ot_params_adam_m(p)) st = read_tensors(f, path, "adam_m", p, ot_params_adam_m(p));
  if (st == OT_OK && ot_params_adam_v(p)) st = read_tensors(f, path, "adam_v", p, ot_params_adam_v(p));
  H5Fclose(f);
  return st;
}

int ot_ckpt_init_params(const char *path, ot_params *p, const char *prefixes, int *n_tensors) {
  *n_tensors = 0;
  ot_h5_quiet();
  hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (f < 0) return ot_fail(OT_EINVAL, "%s: cannot open as HDF5", path);
  const int averaged = H5Lexists(f, "ema", H5P_DEFAULT) > 0;
  int st = read_tensors_of(f, path, averaged ? "ema" : "params", p, ot_params_values(p), prefixes,
                           n_tensors);
  H5Fclose(f);
  if (st == OT_OK && *n_tensors == 0)
    st = ot_fail(OT_EINVAL, "%s: train.init_params '%s' names none of this model's parameters",
                 path, prefixes);
  return st;
}

void ot_ckpt_meta_free(ot_ckpt_meta *m) {
  free(m->config);
  free(m->tokenizer);
  ot_tagset_free(&m->tags);
  ot_lexicon_free(&m->lexicon);
  memset(m, 0, sizeof *m);
}

/* --- finding and publishing ------------------------------------------- */

/* Step of a checkpoint file, or -1 if it does not open as one. */
static int64_t probe_step(const char *path) {
  ot_h5_quiet();
  hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (f < 0) return -1;
  char *format = read_str(f, "format", 1);
  int64_t step = -1;
  if (!format || strcmp(format, CKPT_FORMAT) || attr_read(f, "step", H5T_NATIVE_INT64, 0, &step)) step = -1;
  free(format);
  H5Fclose(f);
  return step;
}

/* Step number in a "ckpt-<step>.h5" name, or -1. */
static int64_t name_step(const char *name) {
  long long s;
  int used = 0;
  if (sscanf(name, "ckpt-%lld.h5%n", &s, &used) == 1 && used > 0 && name[used] == '\0' && s >= 0)
    return (int64_t)s;
  return -1;
}

int ot_ckpt_find_latest(const char *dir, char *path, size_t cap) {
  path[0] = '\0';
  char ptr[4200], *name = NULL;
  size_t n;
  snprintf(ptr, sizeof ptr, "%s/latest", dir);
  if (ot_fs_exists(ptr) && ot_fs_read_all(ptr, &name, &n) == OT_OK) {
    name[strcspn(name, "\r\n")] = '\0';
    char cand[4400];
    snprintf(cand, sizeof cand, "%s/%s", dir, name);
    int ok = !strchr(name, '/') && probe_step(cand) >= 0;
    free(name);
    if (ok) {
      snprintf(path, cap, "%s", cand);
      return OT_OK;
    }
  }
  /* No usable pointer (killed between rename and pointer update, or removed):
   * the complete file of highest step. */
  DIR *d = opendir(dir);
  if (!d) return OT_OK;
  int64_t best = -1;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (name_step(e->d_name) < 0 && strcmp(e->d_name, "final.h5")) continue;
    char cand[4400];
    snprintf(cand, sizeof cand, "%s/%s", dir, e->d_name);
    int64_t s = probe_step(cand);
    if (s > best) {
      best = s;
      snprintf(path, cap, "%s", cand);
    }
  }
  closedir(d);
  return OT_OK;
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}

int ot_ckpt_publish(const char *dir, const char *name, int keep) {
  char ptr[4200], line[512];
  snprintf(ptr, sizeof ptr, "%s/latest", dir);
  snprintf(line, sizeof line, "%s\n", name);
  int st = ot_fs_write_atomic(ptr, line, strlen(line));
  if (st || keep <= 0) return st;
  DIR *d = opendir(dir);
  if (!d) return OT_OK;
  int64_t *steps = NULL;
  size_t n = 0, cap = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    int64_t s = name_step(e->d_name);
    if (s < 0) continue;
    if (n == cap) steps = ot_xrealloc(steps, (cap = cap ? 2 * cap : 16) * sizeof *steps);
    steps[n++] = s;
  }
  closedir(d);
  if (n) qsort(steps, n, sizeof *steps, cmp_i64);
  for (size_t i = 0; i + (size_t)keep < n; i++) {
    char old[4400], oname[64];
    snprintf(oname, sizeof oname, "ckpt-%lld.h5", (long long)steps[i]);
    if (!strcmp(oname, name)) continue;
    snprintf(old, sizeof old, "%s/%s", dir, oname);
    unlink(old);
  }
  free(steps);
  return OT_OK;
}

void ot_ckpt_remove_all(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (name_step(e->d_name) < 0 && strcmp(e->d_name, "final.h5") && strcmp(e->d_name, "latest") &&
        strcmp(e->d_name, OT_CKPT_BEST))
      continue;
    char p[4400];
    snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
    unlink(p);
  }
  closedir(d);
}

/* The checkpoint's stored config into *saved (free with ot_config_free in
 * every case); 0 when there is none or this version cannot read it (keys
 * since removed): then nothing is compared. */
static int load_saved_config(const char *path, const ot_ckpt_meta *meta, ot_config *saved) {
  memset(saved, 0, sizeof *saved);
  char name[4300];
  snprintf(name, sizeof name, "%s (its stored config)", path);
  return meta->config && ot_config_load_string(saved, meta->config, name, NULL, 0) == OT_OK;
}

int ot_ckpt_config_changes(const char *path, const ot_ckpt_meta *meta, const ot_config *now, char *changes,
                           size_t cap) {
  /* where checkpoints go and how often, threads, logging: no effect on the weights */
  static const char *const inert[] = {"train.dir", "train.threads", "train.log_every",
                                      "train.ckpt_every", "train.keep_ckpt", NULL};
  if (cap) changes[0] = '\0';
  ot_config saved;
  if (!load_saved_config(path, meta, &saved)) {
    ot_config_free(&saved);
    return 0;
  }
  int n = 0;
  for (size_t i = 0; i < ot_cfg_schema_len; i++) {
    const char *key = ot_cfg_schema[i].key;
    if (strncmp(key, "model.", 6) && strncmp(key, "train.", 6)) continue;
    int skip = 0;
    for (const char *const *k = inert; *k && !skip; k++) skip = !strcmp(key, *k);
    char a[512], b[512];
    ot_config_value(&saved, key, a, sizeof a);
    ot_config_value(now, key, b, sizeof b);
    if (skip || !strcmp(a, b)) continue;
    const size_t at = cap ? strlen(changes) : 0;
    if (at < cap) snprintf(changes + at, cap - at, "%s%s %s -> %s", n ? ", " : "", key, a, b);
    n++;
  }
  ot_config_free(&saved);
  return n;
}

void ot_ckpt_warn_config_changes(const char *path, const ot_ckpt_meta *meta, const ot_config *now) {
  char changes[2048];
  const int n = ot_ckpt_config_changes(path, meta, now, changes, sizeof changes);
  if (n)
    ot_log_warn("resuming %s with %d setting(s) other than it was trained with: %s; the rest of "
                "the run uses the new values (a run neither setting alone gives: use another "
                "train.dir for a clean one)", path, n, changes);
}

int ot_ckpt_check_config(const char *path, const ot_ckpt_meta *meta, const ot_config *now,
                         const char *const *keys, const char *advice) {
  ot_config saved;
  if (!load_saved_config(path, meta, &saved)) {
    ot_config_free(&saved);
    return OT_OK;
  }
  int st = OT_OK;
  for (; *keys && st == OT_OK; keys++) {
    char a[512], b[512];
    ot_config_value(&saved, *keys, a, sizeof a);
    ot_config_value(now, *keys, b, sizeof b);
    if (strcmp(a, b))
      st = ot_fail(OT_EINVAL, "%s was trained with %s=%s but the config says %s: %s", path, *keys, a,
                   b, advice);
  }
  ot_config_free(&saved);
  return st;
}
