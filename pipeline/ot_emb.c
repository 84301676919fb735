#include "ot_emb.h"

#include "ot_common.h"
#include "ot_fs.h"
#include "ot_h5.h"
#include "ot_hash.h"

#include <hdf5.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---------------------------------------------------------------- writer */

static int attr_str(hid_t loc, const char *name, const char *value) {
  hid_t t = ot_h5_utf8_type(), space = H5Screate(H5S_SCALAR);
  hid_t a = H5Acreate2(loc, name, t, space, H5P_DEFAULT, H5P_DEFAULT);
  herr_t r = a < 0 ? -1 : H5Awrite(a, t, &value);
  if (a >= 0) H5Aclose(a);
  H5Sclose(space);
  H5Tclose(t);
  return r < 0 ? -1 : 0;
}

static int attr_i64(hid_t loc, const char *name, int64_t value) {
  hid_t space = H5Screate(H5S_SCALAR);
  hid_t a = H5Acreate2(loc, name, H5T_STD_I64LE, space, H5P_DEFAULT, H5P_DEFAULT);
  herr_t r = a < 0 ? -1 : H5Awrite(a, H5T_NATIVE_INT64, &value);
  if (a >= 0) H5Aclose(a);
  H5Sclose(space);
  return r < 0 ? -1 : 0;
}

int ot_emb_write(const char *path, int64_t n, const char *const *ids, const char *const *groups,
                 const int64_t *tag_offsets, const char *const *tag_text,
                 int n_vec, const char *const *vec_names, const int *dims, const float *const *vecs) {
  ot_h5_quiet();
  if (n < 0 || n_vec < 0 || tag_offsets[0] != 0) return ot_fail(OT_EINVAL, "%s: bad embedding file arguments", path);
  for (int v = 0; v < n_vec; v++)
    if (dims[v] <= 0 || !vec_names[v][0] || strchr(vec_names[v], '/'))
      return ot_fail(OT_EINVAL, "%s: bad vector '%s' (dim %d)", path, vec_names[v], dims[v]);
  char tmp[4200];
  ot_fs_tmpname(tmp, sizeof tmp, path);
  hid_t file = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  if (file < 0) return ot_fail(OT_EIO, "%s: cannot create HDF5 file", path);
  int bad = 0;
  bad |= ot_h5_write_strings(file, "id", ids, n);
  bad |= ot_h5_write_strings(file, "group", groups, n);
  hid_t g = ot_h5_create_group(file, "tags");
  bad |= g < 0;
  if (g >= 0) {
    bad |= ot_h5_write_i64(g, "offsets", tag_offsets, n + 1);
    bad |= ot_h5_write_strings(g, "text", tag_text, tag_offsets[n]);
    H5Gclose(g);
  }
  hid_t gv = ot_h5_create_group(file, "vec");
  bad |= gv < 0;
  if (gv >= 0) {
    for (int v = 0; v < n_vec; v++) {
      const hsize_t shape[2] = {(hsize_t)n, (hsize_t)dims[v]};
      bad |= ot_h5_write_array(gv, vec_names[v], H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 2, shape, vecs[v]);
    }
    H5Gclose(gv);
  }
  bad |= attr_str(file, "format", "open-tag-emb");
  bad |= attr_i64(file, "version", 1);
  bad |= attr_i64(file, "n_items", n);
  bad |= H5Fclose(file) < 0;
  int st = bad ? ot_fail(OT_EIO, "%s: cannot write embedding file", path) : ot_fs_commit(tmp, path);
  if (st) unlink(tmp);
  return st;
}

/* ---------------------------------------------------------------- reader */

struct ot_emb {
  char path[4096];
  hid_t file;
  int64_t n, n_tags;
  char **ids, **groups, **tag_text;
  int64_t *tag_off;
  int n_vec;
  char **vec_names;
  int *dims;
};

static int format_ok(hid_t file) {
  if (H5Aexists(file, "format") <= 0) return 0;
  hid_t a = H5Aopen(file, "format", H5P_DEFAULT);
  hid_t t = ot_h5_utf8_type();
  char *v = NULL;
  herr_t r = H5Aread(a, t, &v);
  H5Tclose(t);
  H5Aclose(a);
  int ok = r >= 0 && v && !strcmp(v, "open-tag-emb");
  if (v) H5free_memory(v);
  return ok;
}

/* H5Literate callback: collect the names and dims of vec/<name>. */
static herr_t collect_vec(hid_t group, const char *name, const H5L_info_t *info, void *data) {
  (void)info;
  ot_emb *e = data;
  hid_t d = H5Dopen2(group, name, H5P_DEFAULT);
  if (d < 0) return -1;
  hid_t space = H5Dget_space(d);
  hsize_t dims[2] = {0, 0};
  int rank = H5Sget_simple_extent_ndims(space);
  if (rank == 2) H5Sget_simple_extent_dims(space, dims, NULL);
  H5Sclose(space);
  H5Dclose(d);
  if (rank != 2 || (int64_t)dims[0] != e->n || dims[1] == 0) return -1;
  e->vec_names = ot_xrealloc(e->vec_names, (size_t)(e->n_vec + 1) * sizeof *e->vec_names);
  e->dims = ot_xrealloc(e->dims, (size_t)(e->n_vec + 1) * sizeof *e->dims);
  e->vec_names[e->n_vec] = ot_xstrdup(name);
  e->dims[e->n_vec] = (int)dims[1];
  e->n_vec++;
  return 0;
}

int ot_emb_open(ot_emb **out, const char *path) {
  ot_h5_quiet();
  ot_emb *e = ot_xcalloc(1, sizeof *e);
  snprintf(e->path, sizeof e->path, "%s", path);
  e->file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (e->file < 0) {
    free(e);
    return ot_fail(OT_EINVAL, "%s: not an HDF5 file or unreadable", path);
  }
  if (!format_ok(e->file) || ot_h5_read_attr_i64(e->file, "n_items", &e->n) || e->n < 0) {
    ot_emb_close(e);
    return ot_fail(OT_EINVAL, "%s: not an Open-Tag embedding file (format/n_items attributes)", path);
  }
  int bad = ot_h5_read_strings(e->file, "id", e->n, &e->ids) || ot_h5_read_strings(e->file, "group", e->n, &e->groups) ||
            ot_h5_read_i64(e->file, "tags/offsets", e->n + 1, &e->tag_off);
  if (!bad) {
    e->n_tags = e->tag_off[e->n];
    for (int64_t i = 0; i < e->n; i++) bad |= e->tag_off[i] < 0 || e->tag_off[i] > e->tag_off[i + 1];
    bad = bad || e->tag_off[0] != 0 || ot_h5_read_strings(e->file, "tags/text", e->n_tags, &e->tag_text);
  }
  if (!bad) {
    hid_t g = H5Gopen2(e->file, "vec", H5P_DEFAULT);
    bad = g < 0 || H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, NULL, collect_vec, e) < 0;
    if (g >= 0) H5Gclose(g);
  }
  if (bad) {
    ot_emb_close(e);
    return ot_fail(OT_EINVAL, "%s: embedding file is missing or has inconsistent datasets", path);
  }
  *out = e;
  return OT_OK;
}

void ot_emb_close(ot_emb *e) {
  if (!e) return;
  ot_h5_free_strings(e->ids, e->n);
  ot_h5_free_strings(e->groups, e->n);
  ot_h5_free_strings(e->tag_text, e->n_tags);
  free(e->tag_off);
  for (int v = 0; v < e->n_vec; v++) free(e->vec_names[v]);
  free(e->vec_names);
  free(e->dims);
  H5Fclose(e->file);
  free(e);
}

int64_t ot_emb_count(const ot_emb *e) { return e->n; }
int ot_emb_n_vecs(const ot_emb *e) { return e->n_vec; }
const char *ot_emb_vec_name(const ot_emb *e, int v) { OT_ASSERT(v >= 0 && v < e->n_vec); return e->vec_names[v]; }

int ot_emb_dim(const ot_emb *e, const char *vec) {
  for (int v = 0; v < e->n_vec; v++)
    if (!strcmp(e->vec_names[v], vec)) return e->dims[v];
  return 0;
}

const char *ot_emb_id(const ot_emb *e, int64_t i) { OT_ASSERT(i >= 0 && i < e->n); return e->ids[i]; }
const char *ot_emb_group(const ot_emb *e, int64_t i) { OT_ASSERT(i >= 0 && i < e->n); return e->groups[i]; }

void ot_emb_tags(const ot_emb *e, int64_t i, const char *const **tags, int *n) {
  OT_ASSERT(i >= 0 && i < e->n);
  *tags = (const char *const *)(e->tag_text + e->tag_off[i]);
  *n = (int)(e->tag_off[i + 1] - e->tag_off[i]);
}

int ot_emb_read(const ot_emb *e, const char *vec, int64_t first, int64_t n, float *out) {
  int dim = ot_emb_dim(e, vec);
  if (!dim) return ot_fail(OT_EINVAL, "%s: no vector '%s'", e->path, vec);
  if (first < 0 || n < 0 || first + n > e->n)
    return ot_fail(OT_EINVAL, "%s: rows [%lld,+%lld) out of range (%lld items)", e->path, (long long)first,
                   (long long)n, (long long)e->n);
  if (n == 0) return OT_OK;
  char name[512];
  snprintf(name, sizeof name, "vec/%s", vec);
  hid_t d = H5Dopen2(e->file, name, H5P_DEFAULT);
  if (d < 0) return ot_fail(OT_EIO, "%s: cannot open '%s'", e->path, name);
  hid_t fspace = H5Dget_space(d);
  hsize_t start[2] = {(hsize_t)first, 0}, count[2] = {(hsize_t)n, (hsize_t)dim};
  H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start, NULL, count, NULL);
  hid_t mspace = H5Screate_simple(2, count, NULL);
  herr_t r = H5Dread(d, H5T_NATIVE_FLOAT, mspace, fspace, H5P_DEFAULT, out);
  H5Sclose(mspace);
  H5Sclose(fspace);
  H5Dclose(d);
  return r < 0 ? ot_fail(OT_EIO, "%s: cannot read '%s'", e->path, name) : OT_OK;
}

/* ---------------------------------------------------------------- index.json */

struct ot_emb_set {
  int n_files, n_vec;
  char *index_json;
  char **paths, **vec_names;
  int64_t *items, total;
  int *dims;
};

static void split_dir(char *buf, size_t cap, const char *embed_dir, const char *split) {
  ot_fs_join(buf, cap, embed_dir, split);
}

int ot_emb_set_write_index(const char *embed_dir, const char *split, int n_files,
                           const char *const *paths, const int64_t *items) {
  char dir[4096], path[4200], first[8400];
  split_dir(dir, sizeof dir, embed_dir, split);
  json_t *root = json_object(), *files = json_array(), *vecs = json_array(), *dims = json_object();
  json_object_set_new(root, "split", json_string(split));
  if (n_files > 0) {
    ot_fs_join(first, sizeof first, dir, paths[0]);
    ot_emb *e;
    int st = ot_emb_open(&e, first);
    if (st) {
      json_decref(root), json_decref(files), json_decref(vecs), json_decref(dims);
      return st;
    }
    for (int v = 0; v < e->n_vec; v++) {
      json_array_append_new(vecs, json_string(e->vec_names[v]));
      json_object_set_new(dims, e->vec_names[v], json_integer(e->dims[v]));
    }
    ot_emb_close(e);
  }
  for (int f = 0; f < n_files; f++) {
    json_t *o = json_object();
    json_object_set_new(o, "path", json_string(paths[f]));
    json_object_set_new(o, "items", json_integer(items[f]));
    json_array_append_new(files, o);
  }
  json_object_set_new(root, "vectors", vecs);
  json_object_set_new(root, "dims", dims);
  json_object_set_new(root, "files", files);
  json_object_set_new(root, "complete", json_true());
  int st = ot_fs_mkdirs(dir);
  snprintf(path, sizeof path, "%s/index.json", dir);
  if (!st) st = ot_fs_write_json(path, root, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
  json_decref(root);
  return st;
}

int ot_emb_set_open(ot_emb_set **out, const char *embed_dir, const char *split) {
  char dir[4096], path[4200];
  split_dir(dir, sizeof dir, embed_dir, split);
  snprintf(path, sizeof path, "%s/index.json", dir);
  json_error_t jerr;
  json_t *root = json_load_file(path, 0, &jerr);
  if (!root) return ot_fail(OT_EINVAL, "%s:%d: %s (run ot-embed first?)", path, jerr.line, jerr.text);
  json_t *files = json_object_get(root, "files"), *vecs = json_object_get(root, "vectors");
  json_t *dims = json_object_get(root, "dims");
  if (!json_is_true(json_object_get(root, "complete")) || !json_is_array(files) || !json_is_array(vecs) ||
      !json_is_object(dims)) {
    json_decref(root);
    return ot_fail(OT_EINVAL, "%s: not a complete embedding index (files/vectors/dims/complete)", path);
  }
  ot_emb_set *s = ot_xcalloc(1, sizeof *s);
  s->index_json = ot_xstrdup(path);
  s->n_files = (int)json_array_size(files);
  s->paths = ot_xcalloc((size_t)s->n_files + 1, sizeof *s->paths);
  s->items = ot_xcalloc((size_t)s->n_files + 1, sizeof *s->items);
  int bad = 0;
  for (int f = 0; f < s->n_files && !bad; f++) {
    json_t *o = json_array_get(files, (size_t)f);
    const char *p = json_string_value(json_object_get(o, "path"));
    json_t *it = json_object_get(o, "items");
    if (!p || !json_is_integer(it) || json_integer_value(it) < 0) { bad = 1; break; }
    char full[8400];
    ot_fs_join(full, sizeof full, dir, p);
    s->paths[f] = ot_xstrdup(full);
    s->items[f] = json_integer_value(it);
    s->total += s->items[f];
  }
  s->n_vec = (int)json_array_size(vecs);
  s->vec_names = ot_xcalloc((size_t)s->n_vec + 1, sizeof *s->vec_names);
  s->dims = ot_xcalloc((size_t)s->n_vec + 1, sizeof *s->dims);
  for (int v = 0; v < s->n_vec && !bad; v++) {
    const char *name = json_string_value(json_array_get(vecs, (size_t)v));
    json_t *d = name ? json_object_get(dims, name) : NULL;
    if (!name || !json_is_integer(d) || json_integer_value(d) <= 0) { bad = 1; break; }
    s->vec_names[v] = ot_xstrdup(name);
    s->dims[v] = (int)json_integer_value(d);
  }
  json_decref(root);
  if (bad) {
    ot_emb_set_close(s);
    return ot_fail(OT_EINVAL, "%s: malformed file or vector entry", path);
  }
  *out = s;
  return OT_OK;
}

void ot_emb_set_close(ot_emb_set *s) {
  if (!s) return;
  for (int f = 0; f < s->n_files; f++) free(s->paths[f]);
  for (int v = 0; v < s->n_vec; v++) free(s->vec_names[v]);
  free(s->index_json);
  free(s->paths);
  free(s->items);
  free(s->vec_names);
  free(s->dims);
  free(s);
}

int ot_emb_set_files(const ot_emb_set *s) { return s->n_files; }
int64_t ot_emb_set_count(const ot_emb_set *s) { return s->total; }
int64_t ot_emb_set_file_items(const ot_emb_set *s, int f) { OT_ASSERT(f >= 0 && f < s->n_files); return s->items[f]; }
const char *ot_emb_set_file_path(const ot_emb_set *s, int f) { OT_ASSERT(f >= 0 && f < s->n_files); return s->paths[f]; }
int ot_emb_set_n_vecs(const ot_emb_set *s) { return s->n_vec; }
const char *ot_emb_set_vec_name(const ot_emb_set *s, int v) { OT_ASSERT(v >= 0 && v < s->n_vec); return s->vec_names[v]; }

uint64_t ot_emb_set_version(const ot_emb_set *s) {
  char *txt = NULL;
  size_t n = 0;
  uint64_t h = OT_FNV64_INIT;
  if (ot_fs_read_all(s->index_json, &txt, &n) == OT_OK) h = ot_fnv1a64(txt, n, h);
  free(txt);
  for (int f = 0; f < s->n_files; f++) h = ot_fs_version_hash(s->paths[f], h);
  return h;
}

int ot_emb_set_dim(const ot_emb_set *s, const char *vec) {
  for (int v = 0; v < s->n_vec; v++)
    if (!strcmp(s->vec_names[v], vec)) return s->dims[v];
  return 0;
}
