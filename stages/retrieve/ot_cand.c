#include "ot_cand.h"

#include "ot_common.h"
#include "ot_fs.h"
#include "ot_h5.h"
#include "ot_hash.h"
#include "ot_strmap.h"

#include <hdf5.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---------------------------------------------------------------- writing */

static int root_attrs(hid_t file, int64_t n) {
  const char *fmt = "open-tag-cand";
  int64_t vals[2] = {1, n};
  const char *names[2] = {"version", "n_items"};
  hid_t t = ot_h5_utf8_type(), space = H5Screate(H5S_SCALAR);
  hid_t a = H5Acreate2(file, "format", t, space, H5P_DEFAULT, H5P_DEFAULT);
  int bad = a < 0 || H5Awrite(a, t, &fmt) < 0;
  if (a >= 0) H5Aclose(a);
  H5Tclose(t);
  for (int i = 0; i < 2; i++) {
    a = H5Acreate2(file, names[i], H5T_STD_I64LE, space, H5P_DEFAULT, H5P_DEFAULT);
    bad |= a < 0 || H5Awrite(a, H5T_NATIVE_INT64, &vals[i]) < 0;
    if (a >= 0) H5Aclose(a);
  }
  H5Sclose(space);
  return bad ? -1 : 0;
}

int ot_cand_write(const char *path, int64_t n, const char *const *ids, const int64_t *offsets,
                  const char *const *tags, const float *scores, int n_sources,
                  const char *const *source_names, const float *source_scores) {
  ot_h5_quiet();
  OT_ASSERT(n >= 0 && offsets[0] == 0 && n_sources >= 1);
  const int64_t nc = offsets[n];
  char tmp[4200];
  ot_fs_tmpname(tmp, sizeof tmp, path);
  hid_t file = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  if (file < 0) return ot_fail(OT_EIO, "%s: cannot create HDF5 file", path);
  int bad = ot_h5_write_strings(file, "id", ids, n);
  hid_t g = ot_h5_create_group(file, "cand");
  bad |= g < 0;
  if (g >= 0) {
    const hsize_t n_off = (hsize_t)n + 1, n_cand = (hsize_t)nc;
    const hsize_t per_source[2] = {n_cand, (hsize_t)n_sources};
    bad |= ot_h5_write_array(g, "offsets", H5T_STD_I64LE, H5T_NATIVE_INT64, 1, &n_off, offsets);
    bad |= ot_h5_write_strings(g, "tag", tags, nc);
    bad |= ot_h5_write_array(g, "score", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 1, &n_cand, scores);
    hid_t d = ot_h5_create_array(g, "source_score", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 2, per_source,
                                 source_scores);
    bad |= d < 0;
    if (d >= 0) {
      hsize_t ns = (hsize_t)n_sources;
      hid_t t = ot_h5_utf8_type(), space = H5Screate_simple(1, &ns, NULL);
      hid_t a = H5Acreate2(d, "sources", t, space, H5P_DEFAULT, H5P_DEFAULT);
      bad |= a < 0 || H5Awrite(a, t, source_names) < 0;
      if (a >= 0) H5Aclose(a);
      H5Sclose(space);
      H5Tclose(t);
      H5Dclose(d);
    }
    H5Gclose(g);
  }
  bad |= root_attrs(file, n);
  bad |= H5Fclose(file) < 0;
  int st = bad ? ot_fail(OT_EIO, "%s: cannot write candidates file", path) : ot_fs_commit(tmp, path);
  if (st) unlink(tmp);
  return st;
}

int ot_cand_write_index(const char *retrieve_dir, const char *split, int n_sources,
                        const char *const *source_names, int n_files, const char *const *paths,
                        const int64_t *items) {
  char dir[4096], path[4200];
  ot_fs_join(dir, sizeof dir, retrieve_dir, split);
  json_t *root = json_object(), *src = json_array(), *files = json_array();
  json_object_set_new(root, "split", json_string(split));
  for (int j = 0; j < n_sources; j++) json_array_append_new(src, json_string(source_names[j]));
  for (int f = 0; f < n_files; f++)
    json_array_append_new(files, json_pack("{s:s, s:I}", "path", paths[f], "items", (json_int_t)items[f]));
  json_object_set_new(root, "sources", src);
  json_object_set_new(root, "files", files);
  json_object_set_new(root, "complete", json_true());
  int st = ot_fs_mkdirs(dir);
  snprintf(path, sizeof path, "%s/index.json", dir);
  if (!st) st = ot_fs_write_json(path, root, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
  json_decref(root);
  return st;
}

/* ---------------------------------------------------------------- reading */

struct ot_cand_set {
  int64_t n, nc;           /* items, candidates */
  char **ids;              /* into blobs: one per file */
  char **blobs;
  int n_blobs;
  const char **tags;       /* [nc] each into texts: a split repeats a few thousand
                            * tag texts millions of times, so each is kept once */
  ot_strpool texts;
  int64_t *off;            /* [n+1] */
  float *scores, *src;     /* [nc], [nc, n_sources] (src NULL: not loaded) */
  int n_sources;
  char **source_names;
  int64_t *slots, n_slots; /* id hash: item index or -1 */
};

/* A vlen string dataset of `expect` entries, each pointing at the set's one
 * copy of its text, at dst. */
static int read_texts(ot_cand_set *s, hid_t loc, const char *path, const char *name, int64_t expect,
                      const char **dst) {
  char *blob, **ptrs;
  int64_t n;
  if (ot_h5_read_string_blob(loc, path, name, expect, &blob, &ptrs, &n)) return -1;
  for (int64_t i = 0; i < n; i++) dst[i] = ot_strpool_intern(&s->texts, ptrs[i]);
  free(ptrs);
  free(blob);
  return 0;
}

/* A vlen string dataset of `expect` entries into a blob the set keeps and
 * pointers into it at dst. */
static int read_vlen(ot_cand_set *s, hid_t loc, const char *path, const char *name, int64_t expect,
                     char **dst) {
  char *blob, **ptrs;
  int64_t n;
  if (ot_h5_read_string_blob(loc, path, name, expect, &blob, &ptrs, &n)) return -1;
  memcpy(dst, ptrs, (size_t)n * sizeof *dst);
  free(ptrs);
  s->blobs = ot_xrealloc(s->blobs, (size_t)(s->n_blobs + 1) * sizeof *s->blobs);
  s->blobs[s->n_blobs++] = blob;
  return 0;
}

static int read_num(hid_t loc, const char *name, hid_t mem_type, int64_t expect_points, void *dst) {
  hid_t d = H5Dopen2(loc, name, H5P_DEFAULT);
  if (d < 0) return -1;
  hid_t space = H5Dget_space(d);
  hssize_t n = H5Sget_simple_extent_npoints(space);
  H5Sclose(space);
  int bad = n != expect_points || (n && H5Dread(d, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, dst) < 0);
  H5Dclose(d);
  return bad ? -1 : 0;
}

/* Source names of a file's cand/source_score (malloc'd array of malloc'd
 * strings, *n of them) or -1. */
static int read_sources(hid_t file, char ***names, int *n) {
  hid_t d = H5Dopen2(file, "cand/source_score", H5P_DEFAULT);
  if (d < 0) return -1;
  int bad = H5Aexists(d, "sources") <= 0;
  if (!bad) {
    hid_t a = H5Aopen(d, "sources", H5P_DEFAULT), space = H5Aget_space(a), t = ot_h5_utf8_type();
    hssize_t ns = H5Sget_simple_extent_npoints(space);
    char **v = ot_xcalloc((size_t)(ns > 0 ? ns : 1), sizeof *v);
    bad = ns < 1 || H5Aread(a, t, v) < 0;
    if (!bad) {
      *names = ot_xcalloc((size_t)ns, sizeof **names);
      for (int j = 0; j < ns; j++) (*names)[j] = ot_xstrdup(v[j] ? v[j] : "");
      *n = (int)ns;
    }
    for (int j = 0; j < ns; j++)
      if (v[j]) H5free_memory(v[j]);
    free(v);
    H5Tclose(t);
    H5Sclose(space);
    H5Aclose(a);
  }
  H5Dclose(d);
  return bad ? -1 : 0;
}

/* Append one file's items to s (s->n_sources = 0: take the file's sources);
 * the per-source scores too when with_src. */
static int append_file(ot_cand_set *s, const char *path, int with_src) {
  ot_h5_quiet();
  hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (file < 0) return ot_fail(OT_EINVAL, "%s: not an HDF5 file or unreadable", path);
  int64_t n = -1;
  int bad = ot_h5_read_attr_i64(file, "n_items", &n) || n < 0;
  char **names = NULL;
  int ns = 0;
  bad = bad || read_sources(file, &names, &ns);
  if (!bad && s->n_sources == 0) {
    s->n_sources = ns, s->source_names = names, names = NULL;
  } else if (!bad) {
    bad = ns != s->n_sources;
    for (int j = 0; j < ns && !bad; j++) bad = strcmp(names[j], s->source_names[j]) != 0;
    if (bad) {
      for (int j = 0; j < ns; j++) free(names[j]);
      free(names);
      H5Fclose(file);
      return ot_fail(OT_EINVAL, "%s: its sources differ from the split's other files", path);
    }
  }
  if (names) {
    for (int j = 0; j < ns; j++) free(names[j]);
    free(names);
  }
  int64_t *off = bad ? NULL : ot_xmalloc((size_t)(n + 1) * sizeof *off);
  bad = bad || read_num(file, "cand/offsets", H5T_NATIVE_INT64, n + 1, off) || off[0] != 0;
  for (int64_t i = 0; i < n && !bad; i++) bad = off[i + 1] < off[i];
  if (!bad) {
    int64_t nc = off[n];
    s->ids = ot_xrealloc(s->ids, (size_t)(s->n + n + 1) * sizeof *s->ids);
    s->off = ot_xrealloc(s->off, (size_t)(s->n + n + 1) * sizeof *s->off);
    s->tags = ot_xrealloc(s->tags, (size_t)(s->nc + nc + 1) * sizeof *s->tags);
    s->scores = ot_xrealloc(s->scores, (size_t)(s->nc + nc + 1) * sizeof *s->scores);
    if (with_src) s->src = ot_xrealloc(s->src, (size_t)(s->nc + nc + 1) * s->n_sources * sizeof *s->src);
    bad = read_vlen(s, file, path, "id", n, s->ids + s->n) ||
          read_texts(s, file, path, "cand/tag", nc, s->tags + s->nc) ||
          read_num(file, "cand/score", H5T_NATIVE_FLOAT, nc, s->scores + s->nc) ||
          (with_src && read_num(file, "cand/source_score", H5T_NATIVE_FLOAT, nc * s->n_sources,
                                s->src + (size_t)s->nc * s->n_sources));
    if (!bad) {
      if (s->n == 0) s->off[0] = 0;
      for (int64_t i = 1; i <= n; i++) s->off[s->n + i] = s->nc + off[i];
      s->n += n, s->nc += nc;
    }
  }
  free(off);
  H5Fclose(file);
  return bad ? ot_fail(OT_EINVAL, "%s: not an Open-Tag candidates file or inconsistent datasets", path) : OT_OK;
}

static uint64_t id_hash(const char *id) { return ot_fnv1a64(id, strlen(id), OT_FNV64_INIT); }

static int build_lookup(ot_cand_set *s, const char *what) {
  s->n_slots = 16;
  while (s->n_slots < 2 * s->n) s->n_slots *= 2;
  s->slots = ot_xmalloc((size_t)s->n_slots * sizeof *s->slots);
  memset(s->slots, 0xff, (size_t)s->n_slots * sizeof *s->slots);
  for (int64_t i = 0; i < s->n; i++) {
    uint64_t mask = (uint64_t)s->n_slots - 1, h = id_hash(s->ids[i]) & mask;
    for (; s->slots[h] >= 0; h = (h + 1) & mask)
      if (!strcmp(s->ids[s->slots[h]], s->ids[i])) return ot_fail(OT_EINVAL, "%s: id '%s' repeats", what, s->ids[i]);
    s->slots[h] = i;
  }
  return OT_OK;
}

static ot_cand_set *new_set(void) {
  ot_cand_set *s = ot_xcalloc(1, sizeof *s);
  s->off = ot_xcalloc(1, sizeof *s->off);
  return s;
}

int ot_cand_load_file(ot_cand_set **out, const char *path) {
  ot_cand_set *s = new_set();
  int st = append_file(s, path, 1);
  if (!st) st = build_lookup(s, path);
  if (st) {
    ot_cand_close(s);
    return st;
  }
  *out = s;
  return OT_OK;
}

/* A split's index.json, read and checked: complete, every file with a path. */
typedef struct {
  char dir[4096], path[4200]; /* <retrieve_dir>/<split>, its index.json */
  json_t *root, *files;
} cand_index;

static int index_open(cand_index *ix, const char *retrieve_dir, const char *split) {
  ot_fs_join(ix->dir, sizeof ix->dir, retrieve_dir, split);
  snprintf(ix->path, sizeof ix->path, "%s/index.json", ix->dir);
  json_error_t jerr;
  ix->root = json_load_file(ix->path, 0, &jerr);
  if (!ix->root)
    return ot_fail(OT_EINVAL, "%s:%d: %s (run ot-retrieve first?)", ix->path, jerr.line, jerr.text);
  ix->files = json_object_get(ix->root, "files");
  int st = OT_OK;
  if (!json_is_true(json_object_get(ix->root, "complete")) || !json_is_array(ix->files))
    st = ot_fail(OT_EINVAL, "%s: not a complete candidates index", ix->path);
  for (size_t f = 0; st == OT_OK && f < json_array_size(ix->files); f++)
    if (!json_string_value(json_object_get(json_array_get(ix->files, f), "path")))
      st = ot_fail(OT_EINVAL, "%s: file %zu has no path", ix->path, f);
  if (st) json_decref(ix->root);
  return st;
}

static int index_n_files(const cand_index *ix) { return (int)json_array_size(ix->files); }

/* Files first..first+count-1 of the index into a new set, without the
 * per-source scores; the index is closed. */
static int index_load(cand_index *ix, int first, int count, ot_cand_set **out) {
  ot_cand_set *s = new_set();
  int st = OT_OK;
  char full[8400];
  for (int f = first; f < first + count && st == OT_OK; f++) {
    const char *p = json_string_value(json_object_get(json_array_get(ix->files, f), "path"));
    ot_fs_join(full, sizeof full, ix->dir, p);
    st = append_file(s, full, 0);
  }
  json_decref(ix->root);
  /* a repeated id: named against the one file read, else the index */
  if (!st) st = build_lookup(s, count == 1 ? full : ix->path);
  if (st) {
    ot_cand_close(s);
    return st;
  }
  *out = s;
  return OT_OK;
}

int ot_cand_load_split(ot_cand_set **out, const char *retrieve_dir, const char *split) {
  cand_index ix;
  int st = index_open(&ix, retrieve_dir, split);
  return st ? st : index_load(&ix, 0, index_n_files(&ix), out);
}

int ot_cand_split_files(const char *retrieve_dir, const char *split, int *n_files) {
  cand_index ix;
  int st = index_open(&ix, retrieve_dir, split);
  if (st) return st;
  *n_files = index_n_files(&ix);
  json_decref(ix.root);
  return OT_OK;
}

int ot_cand_check_files(const char *retrieve_dir, const char *split, int expect, const char *of,
                        const char *unit) {
  int n = 0;
  int st = ot_cand_split_files(retrieve_dir, split, &n);
  if (st || n == expect) return st;
  char dir[4096];
  ot_fs_join(dir, sizeof dir, retrieve_dir, split);
  return ot_fail(OT_EINVAL, "%s/index.json lists %d candidate file%s, %s has %d %s: run ot-retrieve again", dir,
                 n, n == 1 ? "" : "s", of, expect, unit);
}

int ot_cand_split_paths(const char *retrieve_dir, const char *split, char ***paths, int *n_files) {
  cand_index ix;
  int st = index_open(&ix, retrieve_dir, split);
  if (st) return st;
  const int n = index_n_files(&ix);
  char **p = ot_xcalloc((size_t)n + 1, sizeof *p);
  for (int f = 0; f < n; f++) {
    char full[8400];
    ot_fs_join(full, sizeof full, ix.dir, json_string_value(json_object_get(json_array_get(ix.files, f), "path")));
    p[f] = ot_xstrdup(full);
  }
  json_decref(ix.root);
  *paths = p, *n_files = n;
  return OT_OK;
}

int ot_cand_split_version(const char *retrieve_dir, const char *split, uint64_t *version) {
  char **paths;
  int n, st = ot_cand_split_paths(retrieve_dir, split, &paths, &n);
  if (st) return st;
  uint64_t h = OT_FNV64_INIT;
  for (int f = 0; f < n; f++) {
    h = ot_fs_version_hash(paths[f], h);
    free(paths[f]);
  }
  free(paths);
  *version = h;
  return OT_OK;
}

int ot_cand_load_split_part(ot_cand_set **out, const char *retrieve_dir, const char *split, int part) {
  cand_index ix;
  int st = index_open(&ix, retrieve_dir, split);
  if (st) return st;
  const int n = index_n_files(&ix);
  if (part < 0 || part >= n) {
    st = ot_fail(OT_EINVAL, "%s lists %d candidate file%s, there is no file %d", ix.path, n,
                 n == 1 ? "" : "s", part);
    json_decref(ix.root);
    return st;
  }
  return index_load(&ix, part, 1, out);
}

void ot_cand_close(ot_cand_set *s) {
  if (!s) return;
  for (int b = 0; b < s->n_blobs; b++) free(s->blobs[b]);
  free(s->blobs);
  for (int j = 0; j < s->n_sources; j++) free(s->source_names[j]);
  free(s->ids);
  free(s->tags);
  ot_strpool_free(&s->texts);
  free(s->off);
  free(s->scores);
  free(s->src);
  free(s->source_names);
  free(s->slots);
  free(s);
}

int64_t ot_cand_count(const ot_cand_set *s) { return s->n; }
int ot_cand_n_sources(const ot_cand_set *s) { return s->n_sources; }
const char *ot_cand_source_name(const ot_cand_set *s, int j) {
  OT_ASSERT(j >= 0 && j < s->n_sources);
  return s->source_names[j];
}

void ot_cand_item(const ot_cand_set *s, int64_t i, const char **id, const char *const **tags,
                  const float **scores, const float **source_scores, int *n) {
  OT_ASSERT(i >= 0 && i < s->n);
  int64_t a = s->off[i];
  if (id) *id = s->ids[i];
  if (tags) *tags = (const char *const *)(s->tags + a);
  if (scores) *scores = s->scores + a;
  if (source_scores) *source_scores = s->src ? s->src + (size_t)a * s->n_sources : NULL;
  if (n) *n = (int)(s->off[i + 1] - a);
}

int64_t ot_cand_lookup(const ot_cand_set *s, const char *id) {
  if (!s->n) return -1;
  uint64_t mask = (uint64_t)s->n_slots - 1, h = id_hash(id) & mask;
  for (; s->slots[h] >= 0; h = (h + 1) & mask)
    if (!strcmp(s->ids[s->slots[h]], id)) return s->slots[h];
  return -1;
}

int ot_cand_find(const ot_cand_set *s, const char *id, const char *const **tags, const float **scores,
                 int *n) {
  int64_t i = ot_cand_lookup(s, id);
  if (i < 0) return ot_fail(OT_EINVAL, "no retrieved candidates for item '%s'", id);
  ot_cand_item(s, i, NULL, tags, scores, NULL, n);
  return OT_OK;
}
