/* Index folders: meta.json, rows.h5 and the FAISS shard(s); search with the
 * shards' top-k lists merged. Layout in ot_index.h. */
#include "ot_index.h"

#include "ot_common.h"
#include "ot_fs.h"
#include "ot_h5.h"

#include <faiss/c_api/AutoTune_c.h>
#include <faiss/c_api/IndexIVF_c.h>
#include <faiss/c_api/Index_c.h>
#include <faiss/c_api/error_c.h>
#include <faiss/c_api/index_io_c.h>
#include <hdf5.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ROWS_CHUNK 65536 /* rows per HDF5 chunk and per read */

struct ot_index {
  char folder[4200];
  char *source, *factory, *query_vec, *key_vec, *embeddings;
  int dim, sharded, n_shards;
  int64_t ntotal;
  FaissIndex **shards;
  int64_t *base; /* [n_shards+1]: first global row of each shard */
  /* rows.h5, strings in one blob each, pointer arrays into them */
  char *id_blob, *group_blob, *tag_blob;
  char **ids, **groups, **tag_text;
  int64_t *tag_off; /* [ntotal+1] */
};

static const char *faiss_msg(void) {
  const char *m = faiss_get_last_error();
  return m ? m : "unknown FAISS error";
}

void ot_index_shard_path(char *buf, size_t cap, const char *folder, int sharded, int s) {
  if (sharded) snprintf(buf, cap, "%s/shard-%02d.faiss", folder, s);
  else snprintf(buf, cap, "%s/index.faiss", folder);
}

/* ------------------------------------------------------------ meta.json */

int ot_index_write_meta(const char *folder, const ot_index_meta *m) {
  json_t *sn = json_array();
  for (int s = 0; s < m->shards; s++) json_array_append_new(sn, json_integer(m->shard_ntotal[s]));
  json_t *o = json_pack("{s:s, s:s, s:s, s:i, s:I, s:b, s:i, s:o, s:s, s:s, s:i, s:s, s:s?, s:b}",
                        "source", m->source, "factory", m->factory, "metric", "ip", "dim", m->dim,
                        "ntotal", (json_int_t)m->ntotal, "sharded", m->sharded, "shards", m->shards,
                        "shard_ntotal", sn, "query", m->query_vec, "key", m->key_vec, "nprobe",
                        m->nprobe, "fingerprint", m->fingerprint, "embeddings", m->embeddings, "complete", 1);
  OT_ASSERT(o);
  char path[4300];
  snprintf(path, sizeof path, "%s/meta.json", folder);
  int st = ot_fs_write_json(path, o, JSON_INDENT(2));
  json_decref(o);
  return st;
}

static json_t *load_meta(const char *folder, char *path, size_t cap) {
  snprintf(path, cap, "%s/meta.json", folder);
  if (!ot_fs_exists(path)) return NULL;
  return json_load_file(path, 0, NULL);
}

int ot_index_is_complete(const char *folder, const char *fingerprint, int *nprobe) {
  char path[4300];
  json_t *o = load_meta(folder, path, sizeof path);
  if (!o) return 0;
  const char *fp = json_string_value(json_object_get(o, "fingerprint"));
  int ok = json_is_true(json_object_get(o, "complete")) && fp && !strcmp(fp, fingerprint);
  /* and its files are there: a folder copied in part, or a file removed, is
   * not complete (ot-retrieve says "run ot-index", which must then rebuild
   * rather than say "nothing to do") */
  const int sharded = json_is_true(json_object_get(o, "sharded"));
  const int shards = (int)json_integer_value(json_object_get(o, "shards"));
  snprintf(path, sizeof path, "%s/rows.h5", folder);
  ok = ok && shards >= 1 && ot_fs_exists(path);
  for (int s = 0; ok && s < shards; s++) {
    ot_index_shard_path(path, sizeof path, folder, sharded, s);
    ok = ot_fs_exists(path);
  }
  if (ok && nprobe) *nprobe = (int)json_integer_value(json_object_get(o, "nprobe"));
  json_decref(o);
  return ok;
}

int ot_index_update_nprobe(const char *folder, int nprobe) {
  char path[4300];
  json_t *o = load_meta(folder, path, sizeof path);
  if (!o) return ot_fail(OT_EIO, "%s: cannot read", path);
  json_object_set_new(o, "nprobe", json_integer(nprobe));
  /* "complete" stays the last key, as written */
  json_t *c = json_incref(json_object_get(o, "complete"));
  json_object_del(o, "complete");
  json_object_set_new(o, "complete", c ? c : json_true());
  int st = ot_fs_write_json(path, o, JSON_INDENT(2));
  json_decref(o);
  return st;
}

/* ------------------------------------------------------------ rows.h5 writer */

struct ot_index_rows_writer {
  char path[4200], tmp[4300];
  hid_t file, id, group, offsets, text, str;
  int64_t rows, tags;
};

static hid_t create_extendible(hid_t loc, const char *name, hid_t type) {
  hsize_t dims = 0, maxd = H5S_UNLIMITED, chunk = ROWS_CHUNK;
  hid_t space = H5Screate_simple(1, &dims, &maxd);
  hid_t dcpl = ot_h5_dataset_plist();
  H5Pset_chunk(dcpl, 1, &chunk);
  hid_t d = H5Dcreate2(loc, name, type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
  H5Pclose(dcpl);
  H5Sclose(space);
  return d;
}

/* Append n elements of `mem_type` to the 1-D dataset d of current length at. */
static int append(hid_t d, hid_t mem_type, int64_t at, int64_t n, const void *v) {
  if (n == 0) return 0;
  hsize_t size = (hsize_t)(at + n), start = (hsize_t)at, count = (hsize_t)n;
  if (H5Dset_extent(d, &size) < 0) return -1;
  hid_t fspace = H5Dget_space(d);
  H5Sselect_hyperslab(fspace, H5S_SELECT_SET, &start, NULL, &count, NULL);
  hid_t mspace = H5Screate_simple(1, &count, NULL);
  herr_t r = H5Dwrite(d, mem_type, mspace, fspace, H5P_DEFAULT, v);
  H5Sclose(mspace);
  H5Sclose(fspace);
  return r < 0 ? -1 : 0;
}

/* Closes every handle; 0, or -1 when a close failed. HDF5 writes cached
 * chunks and its metadata at close, so a full disk may first show here. */
static int rows_close_handles(ot_index_rows_writer *w) {
  int bad = 0;
  hid_t *ds[] = {&w->id, &w->group, &w->offsets, &w->text};
  for (size_t i = 0; i < sizeof ds / sizeof ds[0]; i++)
    if (*ds[i] >= 0) bad |= H5Dclose(*ds[i]) < 0, *ds[i] = -1;
  if (w->str >= 0) bad |= H5Tclose(w->str) < 0, w->str = -1;
  if (w->file >= 0) bad |= H5Fclose(w->file) < 0, w->file = -1;
  return bad ? -1 : 0;
}

int ot_index_rows_create(ot_index_rows_writer **out, const char *path) {
  ot_h5_quiet();
  ot_index_rows_writer *w = ot_xcalloc(1, sizeof *w);
  w->file = w->id = w->group = w->offsets = w->text = w->str = -1;
  snprintf(w->path, sizeof w->path, "%s", path);
  ot_fs_tmpname(w->tmp, sizeof w->tmp, path);
  w->file = H5Fcreate(w->tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  if (w->file < 0) {
    free(w);
    return ot_fail(OT_EIO, "%s: cannot create", path);
  }
  w->str = ot_h5_utf8_type();
  w->id = create_extendible(w->file, "id", w->str);
  w->group = create_extendible(w->file, "group", w->str);
  hid_t g = ot_h5_create_group(w->file, "tags");
  w->offsets = create_extendible(g, "offsets", H5T_STD_I64LE);
  w->text = create_extendible(g, "text", w->str);
  H5Gclose(g);
  const int64_t zero = 0;
  if (w->id < 0 || w->group < 0 || w->offsets < 0 || w->text < 0 ||
      append(w->offsets, H5T_NATIVE_INT64, 0, 1, &zero)) {
    ot_index_rows_abort(w);
    return ot_fail(OT_EIO, "%s: cannot create datasets", path);
  }
  *out = w;
  return OT_OK;
}

int ot_index_rows_append(ot_index_rows_writer *w, int64_t n, const char *const *ids,
                         const char *const *groups, const int64_t *tag_offsets,
                         const char *const *tag_text) {
  int64_t nt = tag_offsets[n] - tag_offsets[0];
  int64_t *off = ot_xmalloc((size_t)(n + 1) * sizeof *off);
  for (int64_t i = 0; i < n; i++) off[i] = w->tags + tag_offsets[i + 1] - tag_offsets[0];
  int bad = append(w->id, w->str, w->rows, n, ids) || append(w->group, w->str, w->rows, n, groups) ||
            append(w->offsets, H5T_NATIVE_INT64, w->rows + 1, n, off) ||
            append(w->text, w->str, w->tags, nt, tag_text + tag_offsets[0]);
  free(off);
  if (bad) return ot_fail(OT_EIO, "%s: cannot append %lld rows", w->tmp, (long long)n);
  w->rows += n;
  w->tags += nt;
  return OT_OK;
}

int ot_index_rows_commit(ot_index_rows_writer *w) {
  /* a file whose close failed is incomplete: publishing it would let
     meta.json call the index complete, and reruns skip it */
  int st = rows_close_handles(w) ? ot_fail(OT_EIO, "%s: cannot write (closing %s failed)", w->path, w->tmp)
                                 : ot_fs_commit(w->tmp, w->path);
  if (st) unlink(w->tmp);
  free(w);
  return st;
}

void ot_index_rows_abort(ot_index_rows_writer *w) {
  if (!w) return;
  (void)rows_close_handles(w);
  unlink(w->tmp);
  free(w);
}

/* ------------------------------------------------------------ rows.h5 reader */

static int read_rows(ot_index *ix, const char *path) {
  ot_h5_quiet();
  hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (f < 0) return ot_fail(OT_EINVAL, "%s: cannot open (run ot-index)", path);
  int64_t n, nt;
  int st = ot_h5_read_string_blob(f, path, "id", ix->ntotal, &ix->id_blob, &ix->ids, &n);
  if (!st) st = ot_h5_read_string_blob(f, path, "group", ix->ntotal, &ix->group_blob, &ix->groups, &n);
  if (!st) st = ot_h5_read_string_blob(f, path, "tags/text", -1, &ix->tag_blob, &ix->tag_text, &nt);
  if (!st) {
    hid_t d = H5Dopen2(f, "tags/offsets", H5P_DEFAULT);
    hid_t sp = d >= 0 ? H5Dget_space(d) : -1;
    hsize_t m = 0;
    if (sp >= 0) H5Sget_simple_extent_dims(sp, &m, NULL);
    if (d < 0 || (int64_t)m != ix->ntotal + 1) {
      st = ot_fail(OT_EINVAL, "%s: 'tags/offsets' missing or not [%lld]", path, (long long)ix->ntotal + 1);
    } else {
      ix->tag_off = ot_xmalloc((size_t)m * sizeof *ix->tag_off);
      if (H5Dread(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, ix->tag_off) < 0)
        st = ot_fail(OT_EIO, "%s: cannot read 'tags/offsets'", path);
      for (int64_t i = 0; st == OT_OK && i < ix->ntotal; i++)
        if (ix->tag_off[i] < 0 || ix->tag_off[i] > ix->tag_off[i + 1] || ix->tag_off[i + 1] > nt)
          st = ot_fail(OT_EINVAL, "%s: 'tags/offsets' not increasing within [0,%lld] at row %lld", path,
                       (long long)nt, (long long)i);
    }
    if (sp >= 0) H5Sclose(sp);
    if (d >= 0) H5Dclose(d);
  }
  H5Fclose(f);
  return st;
}

/* ------------------------------------------------------------ open / search */

static char *meta_str(json_t *o, const char *key, const char *path, int *st) {
  const char *v = json_string_value(json_object_get(o, key));
  if (!v && *st == OT_OK) *st = ot_fail(OT_EINVAL, "%s: missing string field '%s'", path, key);
  return ot_xstrdup(v ? v : "");
}

static int read_meta(ot_index *ix, const char *path) {
  json_error_t err;
  json_t *o = json_load_file(path, 0, &err);
  if (!o) return ot_fail(OT_EINVAL, "%s:%d: %s (run ot-index)", path, err.line, err.text);
  int st = OT_OK;
  if (!json_is_true(json_object_get(o, "complete")))
    st = ot_fail(OT_EINVAL, "%s: index not complete (rerun ot-index)", path);
  ix->source = meta_str(o, "source", path, &st);
  ix->factory = meta_str(o, "factory", path, &st);
  ix->query_vec = meta_str(o, "query", path, &st);
  ix->key_vec = meta_str(o, "key", path, &st);
  const char *emb = json_string_value(json_object_get(o, "embeddings"));
  ix->embeddings = emb ? ot_xstrdup(emb) : NULL;
  const char *metric = json_string_value(json_object_get(o, "metric"));
  if (!st && (!metric || strcmp(metric, "ip")))
    st = ot_fail(OT_EINVAL, "%s: metric '%s', expected \"ip\"", path, metric ? metric : "");
  ix->dim = (int)json_integer_value(json_object_get(o, "dim"));
  ix->ntotal = json_integer_value(json_object_get(o, "ntotal"));
  ix->sharded = json_is_true(json_object_get(o, "sharded"));
  ix->n_shards = (int)json_integer_value(json_object_get(o, "shards"));
  json_t *sn = json_object_get(o, "shard_ntotal");
  if (!st && (ix->dim < 1 || ix->ntotal < 0 || ix->n_shards < 1 || !json_is_array(sn) ||
              (int)json_array_size(sn) != ix->n_shards || (!ix->sharded && ix->n_shards != 1)))
    st = ot_fail(OT_EINVAL, "%s: bad dim/ntotal/shards/shard_ntotal", path);
  if (!st) {
    ix->base = ot_xcalloc((size_t)ix->n_shards + 1, sizeof *ix->base);
    for (int s = 0; s < ix->n_shards; s++)
      ix->base[s + 1] = ix->base[s] + json_integer_value(json_array_get(sn, (size_t)s));
    if (ix->base[ix->n_shards] != ix->ntotal)
      st = ot_fail(OT_EINVAL, "%s: shard_ntotal sums to %lld, ntotal is %lld", path,
                   (long long)ix->base[ix->n_shards], (long long)ix->ntotal);
  }
  if (!st) ix->shards = ot_xcalloc((size_t)ix->n_shards, sizeof *ix->shards);
  json_decref(o);
  return st;
}

int ot_index_open(ot_index **out, const char *dir, const char *source) {
  *out = NULL;
  ot_index *ix = ot_xcalloc(1, sizeof *ix);
  snprintf(ix->folder, sizeof ix->folder, "%s/%s", dir, source);
  char path[4400];
  snprintf(path, sizeof path, "%s/meta.json", ix->folder);
  int st = ot_fs_exists(path) ? read_meta(ix, path)
                              : ot_fail(OT_EINVAL, "%s: no index for source '%s' (run ot-index)", path, source);
  for (int s = 0; st == OT_OK && s < ix->n_shards; s++) {
    ot_index_shard_path(path, sizeof path, ix->folder, ix->sharded, s);
    if (faiss_read_index_fname(path, 0, &ix->shards[s])) {
      st = ot_fail(OT_EINVAL, "%s: FAISS cannot read it: %s", path, faiss_msg());
      break;
    }
    int64_t want = ix->base[s + 1] - ix->base[s];
    if (faiss_Index_d(ix->shards[s]) != ix->dim || faiss_Index_ntotal(ix->shards[s]) != want)
      st = ot_fail(OT_EINVAL, "%s: dim %d, %lld vectors; meta.json says dim %d, %lld", path,
                   faiss_Index_d(ix->shards[s]), (long long)faiss_Index_ntotal(ix->shards[s]), ix->dim,
                   (long long)want);
  }
  if (st == OT_OK) {
    snprintf(path, sizeof path, "%s/rows.h5", ix->folder);
    st = read_rows(ix, path);
  }
  if (st == OT_OK) {
    snprintf(path, sizeof path, "%s/meta.json", ix->folder);
    json_t *o = json_load_file(path, 0, NULL);
    int nprobe = o ? (int)json_integer_value(json_object_get(o, "nprobe")) : 0;
    json_decref(o);
    if (nprobe > 0) st = ot_index_set_nprobe(ix, nprobe);
  }
  if (st) {
    ot_index_close(ix);
    return st;
  }
  *out = ix;
  return OT_OK;
}

void ot_index_close(ot_index *ix) {
  if (!ix) return;
  for (int s = 0; ix->shards && s < ix->n_shards; s++)
    if (ix->shards[s]) faiss_Index_free(ix->shards[s]);
  free(ix->shards);
  free(ix->base);
  free(ix->source);
  free(ix->factory);
  free(ix->query_vec);
  free(ix->key_vec);
  free(ix->embeddings);
  free(ix->id_blob);
  free(ix->group_blob);
  free(ix->tag_blob);
  free(ix->ids);
  free(ix->groups);
  free(ix->tag_text);
  free(ix->tag_off);
  free(ix);
}

int ot_index_dim(const ot_index *ix) { return ix->dim; }
int64_t ot_index_ntotal(const ot_index *ix) { return ix->ntotal; }
const char *ot_index_query_vec(const ot_index *ix) { return ix->query_vec; }
const char *ot_index_key_vec(const ot_index *ix) { return ix->key_vec; }
const char *ot_index_embeddings(const ot_index *ix) { return ix->embeddings; }

int ot_index_set_nprobe(ot_index *ix, int nprobe) {
  if (nprobe < 1) return ot_fail(OT_EINVAL, "nprobe must be >= 1 (got %d)", nprobe);
  for (int s = 0; s < ix->n_shards; s++) {
    FaissIndexIVF *ivf = faiss_IndexIVF_cast(ix->shards[s]);
    if (ivf) {
      faiss_IndexIVF_set_nprobe(ivf, (size_t)nprobe);
      continue;
    }
    /* an IVF inside a wrapper (e.g. "PCA64,IVF1024,Flat"); other index kinds
     * have no nprobe, and FAISS's refusal there is the documented no-op */
    FaissParameterSpace *ps = NULL;
    if (faiss_ParameterSpace_new(&ps) == 0) {
      (void)faiss_ParameterSpace_set_index_parameter(ps, ix->shards[s], "nprobe", nprobe);
      faiss_ParameterSpace_free(ps);
    }
  }
  return OT_OK;
}

#define SEARCH_BLOCK 4096 /* queries per pass when merging shards (bounds scratch) */

int ot_index_search(ot_index *ix, const float *q, int64_t nq, int k, float *sims, int64_t *rows) {
  if (k < 1 || nq < 0) return ot_fail(OT_EINVAL, "ot_index_search: k=%d, nq=%lld", k, (long long)nq);
  const int S = ix->n_shards;
  if (S == 1) {
    if (nq && faiss_Index_search(ix->shards[0], nq, q, k, sims, rows))
      return ot_fail(OT_EIO, "%s: search: %s", ix->folder, faiss_msg());
    for (int64_t i = 0; i < nq * k; i++)
      if (rows[i] < 0) rows[i] = -1, sims[i] = -INFINITY;
    return OT_OK;
  }
  const int64_t B = nq < SEARCH_BLOCK ? nq : SEARCH_BLOCK;
  float *D = malloc((size_t)S * (size_t)B * (size_t)k * sizeof *D);
  int64_t *L = malloc((size_t)S * (size_t)B * (size_t)k * sizeof *L);
  int *pos = ot_xmalloc((size_t)S * sizeof *pos);
  int st = (D && L) || nq == 0 ? OT_OK : ot_fail(OT_ENOMEM, "ot_index_search: scratch for %lld queries", (long long)B);
  for (int64_t q0 = 0; st == OT_OK && q0 < nq; q0 += B) {
    const int64_t m = nq - q0 < B ? nq - q0 : B;
    for (int s = 0; s < S && st == OT_OK; s++)
      if (faiss_Index_search(ix->shards[s], m, q + q0 * ix->dim, k, D + (size_t)s * B * k,
                             L + (size_t)s * B * k))
        st = ot_fail(OT_EIO, "%s: search in shard %d: %s", ix->folder, s, faiss_msg());
    for (int64_t i = 0; st == OT_OK && i < m; i++) {
      memset(pos, 0, (size_t)S * sizeof *pos);
      float *os = sims + (q0 + i) * k;
      int64_t *orow = rows + (q0 + i) * k;
      for (int j = 0; j < k; j++) {
        int best = -1;
        float bd = 0;
        for (int s = 0; s < S; s++) {
          size_t at = ((size_t)s * B + (size_t)i) * k + (size_t)pos[s];
          if (pos[s] >= k || L[at] < 0) continue;
          if (best < 0 || D[at] > bd) best = s, bd = D[at]; /* strict: lower shard wins ties */
        }
        if (best < 0) {
          os[j] = -INFINITY;
          orow[j] = -1;
        } else {
          os[j] = bd;
          orow[j] = ix->base[best] + L[((size_t)best * B + (size_t)i) * k + (size_t)pos[best]];
          pos[best]++;
        }
      }
    }
  }
  free(pos);
  free(D);
  free(L);
  return st;
}

const char *ot_index_row_id(const ot_index *ix, int64_t row) {
  OT_ASSERT(row >= 0 && row < ix->ntotal);
  return ix->ids[row];
}

const char *ot_index_row_group(const ot_index *ix, int64_t row) {
  OT_ASSERT(row >= 0 && row < ix->ntotal);
  return ix->groups[row];
}

void ot_index_row_tags(const ot_index *ix, int64_t row, const char *const **tags, int *n) {
  OT_ASSERT(row >= 0 && row < ix->ntotal);
  *tags = (const char *const *)ix->tag_text + ix->tag_off[row];
  *n = (int)(ix->tag_off[row + 1] - ix->tag_off[row]);
}
