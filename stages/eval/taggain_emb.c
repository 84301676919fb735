#include "taggain_emb.h"

#include "ot_common.h"
#include "ot_h5.h"
#include "ot_strmap.h"
#include "tagnorm.h"

#include <hdf5.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* One table of unit rows [n, dim]; valid[r] = 0 for a row that was zero or
 * not finite. */
typedef struct {
  float *v;
  uint8_t *valid;
  int64_t n, dim;
} rows;

struct ot_taggain_emb {
  rows img, txt, div; /* div.v == NULL: diversity uses txt */
  int64_t *item_row;  /* [n_items] row of img, -1 = none */
  int64_t *rel_row, *div_row; /* [n_tags] rows of txt and of div (or txt), -1 = none */
  int64_t n_items, n_tags, duplicates;
};

static void rows_free(rows *r) {
  free(r->v);
  free(r->valid);
}

#define WHAT "Tag Gain embeddings"

/* A 2-D float dataset of `n` rows (and `dim` columns when dim > 0), read as
 * float and L2-normalised per row. */
static int read_vectors(hid_t f, const char *path, const char *name, const char *rows_from,
                        int64_t n, int64_t dim, const char *dim_from, rows *out) {
  hsize_t dims[2];
  hid_t d = ot_h5_open_ranked(f, path, WHAT, name, 2, dims);
  if (d < 0) return OT_EINVAL;
  hid_t t = H5Dget_type(d);
  int is_float = H5Tget_class(t) == H5T_FLOAT;
  H5Tclose(t);
  int st = OT_OK;
  if (!is_float)
    st = ot_fail(OT_EINVAL, "%s: Tag Gain embeddings: dataset '%s' must hold floating-point "
                 "numbers", path, name);
  else if ((int64_t)dims[0] != n)
    st = ot_fail(OT_EINVAL, "%s: Tag Gain embeddings: dataset '%s' has %llu rows but '%s' has "
                 "%lld entries", path, name, (unsigned long long)dims[0], rows_from, (long long)n);
  else if (dim > 0 && (int64_t)dims[1] != dim)
    st = ot_fail(OT_EINVAL, "%s: Tag Gain embeddings: dataset '%s' has %llu columns but '%s' "
                 "has %lld", path, name, (unsigned long long)dims[1], dim_from, (long long)dim);
  else if (dims[1] == 0)
    st = ot_fail(OT_EINVAL, "%s: Tag Gain embeddings: dataset '%s' has 0 columns", path, name);
  if (st) {
    H5Dclose(d);
    return st;
  }
  out->n = n, out->dim = (int64_t)dims[1];
  out->v = ot_xmalloc((size_t)(n > 0 ? n : 1) * (size_t)out->dim * sizeof *out->v);
  out->valid = ot_xcalloc((size_t)(n > 0 ? n : 1), 1);
  herr_t r = n ? H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, out->v) : 0;
  H5Dclose(d);
  if (r < 0) return ot_fail(OT_EIO, "%s: Tag Gain embeddings: cannot read dataset '%s'", path, name);
  for (int64_t i = 0; i < n; i++) {
    float *x = out->v + i * out->dim;
    double ss = 0;
    for (int64_t j = 0; j < out->dim; j++) ss += (double)x[j] * x[j];
    if (!(ss > 0) || !isfinite(ss)) continue;
    const float inv = (float)(1 / sqrt(ss));
    if (!isfinite(inv)) continue; /* a row of denormals: as good as zero */
    for (int64_t j = 0; j < out->dim; j++) x[j] *= inv;
    out->valid[i] = 1;
  }
  return OT_OK;
}

/* Index of names[0..n) (normalised with ot_tagnorm when `norm`), sorted;
 * *dups gets how many later rows repeat an earlier name. */
static int index_names(char **names, int64_t n, int norm, const char *path, const char *ds,
                       ot_named_row **out, int64_t *m_out, int64_t *dups) {
  ot_named_row *x = ot_xmalloc((size_t)(n > 0 ? n : 1) * sizeof *x);
  int64_t m = 0;
  for (int64_t r = 0; r < n; r++) {
    char *s;
    if (norm) {
      int st = ot_tagnorm_dup(names[r] ? names[r] : "", &s);
      if (st) {
        for (int64_t k = 0; k < m; k++) free((char *)x[k].name);
        free(x);
        return ot_fail_ctx(st, "%s: Tag Gain embeddings: dataset '%s', entry %lld", path, ds,
                           (long long)r);
      }
    } else {
      s = ot_xstrdup(names[r] ? names[r] : "");
    }
    if (!s[0]) {
      free(s);
      continue;
    }
    x[m].name = s, x[m++].row = r;
  }
  qsort(x, (size_t)m, sizeof *x, ot_named_row_cmp);
  for (int64_t k = 1; k < m; k++) *dups += !strcmp(x[k].name, x[k - 1].name);
  *out = x, *m_out = m;
  return OT_OK;
}

/* First row named `name` that holds a valid vector, else -1. */
static int64_t find_row(const ot_named_row *x, int64_t m, const char *name, const rows *vec) {
  for (int64_t k = (int64_t)ot_named_row_lower(x, (size_t)m, name); k < m && !strcmp(x[k].name, name); k++)
    if (vec->valid[x[k].row]) return x[k].row;
  return -1;
}

static void free_index(ot_named_row *x, int64_t m) {
  for (int64_t k = 0; k < m; k++) free((char *)x[k].name);
  free(x);
}

/* Map every evalset tag (norm) or item id to its row of `vec` in `out`. */
static int bind(ot_taggain_emb *m, hid_t f, const char *path, const char *names_ds,
                const char *vec_ds, int64_t dim, const char *dim_from, rows *vec, int tags,
                const ot_evalset *e, int64_t *out) {
  char **names = NULL;
  int64_t n = 0, k = 0;
  ot_named_row *x = NULL;
  int st = ot_h5_read_names(f, path, WHAT, names_ds, &names, &n);
  if (st == OT_OK) st = read_vectors(f, path, vec_ds, names_ds, n, dim, dim_from, vec);
  if (st == OT_OK) st = index_names(names, n, tags, path, names_ds, &x, &k, &m->duplicates);
  ot_h5_free_strings(names, n);
  if (st) return st;
  int64_t count = tags ? m->n_tags : m->n_items, bound = 0;
  for (int64_t i = 0; i < count; i++) {
    const char *key = tags ? ot_evalset_tag(e, (int32_t)i) : ot_evalset_item_at(e, i)->id;
    out[i] = find_row(x, k, key, vec);
    bound += out[i] >= 0;
  }
  /* A file made for another split or vocabulary binds nothing: every item
   * would be skipped (or every tag unjudged) and the row would report a Tag
   * Gain of 0 as if measured. Some names missing is normal (counted,
   * reported); none bound is the wrong file. */
  if (count > 0 && bound == 0)
    st = ot_fail(OT_EINVAL,
                 "%s: Tag Gain embeddings: no entry of dataset '%s' (%lld entries%s%s%s) with a usable "
                 "vector in '%s' names one of the %lld %s (e.g. '%s'): a file made for other data?",
                 path, names_ds, (long long)k, k ? ", e.g. '" : "", k ? x[0].name : "", k ? "'" : "",
                 vec_ds, (long long)count,
                 tags ? "tags of the predictions, ground truth and training split (after "
                        "normalisation)"
                      : "items of the evaluated split",
                 tags ? ot_evalset_tag(e, 0) : ot_evalset_item_at(e, 0)->id);
  free_index(x, k);
  return st;
}

int ot_taggain_emb_open(ot_taggain_emb **out, const char *path, const ot_evalset *e) {
  *out = NULL;
  ot_h5_quiet();
  hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  /* A wrong path or a file of another kind is bad input (exit 2), not a
   * runtime failure. */
  if (f < 0)
    return ot_fail(OT_EINVAL, "%s: eval.taggain_embeddings: cannot open it as an HDF5 file", path);
  ot_taggain_emb *m = ot_xcalloc(1, sizeof *m);
  m->n_items = ot_evalset_n_items(e), m->n_tags = ot_evalset_n_tags(e);
  m->item_row = ot_xmalloc((size_t)(m->n_items > 0 ? m->n_items : 1) * sizeof *m->item_row);
  m->rel_row = ot_xmalloc((size_t)(m->n_tags > 0 ? m->n_tags : 1) * sizeof *m->rel_row);
  m->div_row = ot_xmalloc((size_t)(m->n_tags > 0 ? m->n_tags : 1) * sizeof *m->div_row);
  int st = bind(m, f, path, "image/id", "image/vec", 0, NULL, &m->img, 0, e, m->item_row);
  if (st == OT_OK)
    st = bind(m, f, path, "text/tag", "text/vec", m->img.dim, "image/vec", &m->txt, 1, e, m->rel_row);
  if (st == OT_OK) {
    int has_group = H5Lexists(f, "div", H5P_DEFAULT) > 0;
    int has_tag = has_group && H5Lexists(f, "div/tag", H5P_DEFAULT) > 0;
    int has_vec = has_group && H5Lexists(f, "div/vec", H5P_DEFAULT) > 0;
    if (has_tag != has_vec)
      st = ot_fail(OT_EINVAL, "%s: Tag Gain embeddings: dataset '%s' is missing (div/tag and "
                   "div/vec go together)", path, has_tag ? "div/vec" : "div/tag");
    else if (has_tag)
      st = bind(m, f, path, "div/tag", "div/vec", 0, NULL, &m->div, 1, e, m->div_row);
    else
      memcpy(m->div_row, m->rel_row, (size_t)m->n_tags * sizeof *m->div_row);
  }
  H5Fclose(f);
  if (st) {
    ot_taggain_emb_close(m);
    return st;
  }
  *out = m;
  return OT_OK;
}

void ot_taggain_emb_close(ot_taggain_emb *m) {
  if (!m) return;
  rows_free(&m->img);
  rows_free(&m->txt);
  rows_free(&m->div);
  free(m->item_row);
  free(m->rel_row);
  free(m->div_row);
  free(m);
}

static double dot(const float *a, const float *b, int64_t n) {
  double s = 0;
  for (int64_t j = 0; j < n; j++) s += (double)a[j] * b[j];
  return s;
}

static int emb_sim_rel(void *ctx, int64_t item, int32_t tag, double *sim) {
  const ot_taggain_emb *m = ctx;
  OT_ASSERT(item >= 0 && item < m->n_items && tag >= 0 && tag < m->n_tags);
  int64_t i = m->item_row[item], t = m->rel_row[tag];
  if (i < 0) return OT_TG_SIM_NO_ITEM;
  if (t < 0) return OT_TG_SIM_NO_TAG;
  *sim = dot(m->img.v + i * m->img.dim, m->txt.v + t * m->txt.dim, m->img.dim);
  return OT_TG_SIM_OK;
}

static int emb_sim_div(void *ctx, int32_t a, int32_t b, double *sim) {
  const ot_taggain_emb *m = ctx;
  OT_ASSERT(a >= 0 && a < m->n_tags && b >= 0 && b < m->n_tags);
  int64_t x = m->div_row[a], y = m->div_row[b];
  if (x < 0 || y < 0) return 0;
  const rows *r = m->div.v ? &m->div : &m->txt;
  *sim = dot(r->v + x * r->dim, r->v + y * r->dim, r->dim);
  return 1;
}

ot_taggain_sim ot_taggain_emb_sim(ot_taggain_emb *m) {
  return (ot_taggain_sim){emb_sim_rel, emb_sim_div, m};
}

void ot_taggain_emb_counts(const ot_taggain_emb *m, int64_t *items, int64_t *rel_tags,
                           int64_t *div_tags, int64_t *duplicates) {
  *items = *rel_tags = *div_tags = 0;
  for (int64_t i = 0; i < m->n_items; i++) *items += m->item_row[i] >= 0;
  for (int64_t t = 0; t < m->n_tags; t++) {
    *rel_tags += m->rel_row[t] >= 0;
    *div_tags += m->div_row[t] >= 0;
  }
  *duplicates = m->duplicates;
}
