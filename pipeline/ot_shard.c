#include "ot_shard.h"

#include "ot_common.h"
#include "ot_fs.h"

#include "ot_h5.h"

#include <hdf5.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A growable list of owned strings. */
typedef struct { char **v; int64_t n, cap; } strlist;
static void strlist_push(strlist *l, const char *s) {
  if (l->n == l->cap) l->v = ot_xrealloc(l->v, (size_t)(l->cap = l->cap ? 2 * l->cap : 256) * sizeof *l->v);
  l->v[l->n++] = ot_xstrdup(s);
}
static int strlist_write(hid_t loc, const char *name, const strlist *l) {
  return ot_h5_write_strings(loc, name, (const char *const *)l->v, l->n);
}
static void strlist_free(strlist *l) {
  for (int64_t i = 0; i < l->n; i++) free(l->v[i]);
  free(l->v);
  memset(l, 0, sizeof *l);
}

/* Item i's slab of a dataset [N, dims...] (rank 1 + r): read or write one
 * item, as frames and features are stored (chunked one item a chunk). */
static herr_t item_io(hid_t dset, hid_t mem_type, int r, const hsize_t *dims, int64_t i, void *buf,
                      int write) {
  hsize_t start[5] = {(hsize_t)i, 0, 0, 0, 0}, count[5] = {1};
  OT_ASSERT(r >= 1 && r <= 4);
  for (int k = 0; k < r; k++) count[k + 1] = dims[k];
  hid_t fspace = H5Dget_space(dset);
  H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start, NULL, count, NULL);
  hid_t mspace = H5Screate_simple(r + 1, count, NULL);
  herr_t e = write ? H5Dwrite(dset, mem_type, mspace, fspace, H5P_DEFAULT, buf)
                   : H5Dread(dset, mem_type, mspace, fspace, H5P_DEFAULT, buf);
  H5Sclose(mspace);
  H5Sclose(fspace);
  return e;
}

/* An extensible dataset [0, dims...] (rank 1 + r) chunked one item a chunk. */
static hid_t item_dataset(hid_t file, const char *name, hid_t type, int r, const hsize_t *dims,
                          int deflate) {
  hsize_t cur[5] = {0}, maxd[5] = {H5S_UNLIMITED}, chunk[5] = {1};
  for (int k = 0; k < r; k++) cur[k + 1] = maxd[k + 1] = chunk[k + 1] = dims[k];
  hid_t space = H5Screate_simple(r + 1, cur, maxd);
  hid_t dcpl = ot_h5_dataset_plist();
  H5Pset_chunk(dcpl, r + 1, chunk);
  if (deflate > 0) H5Pset_deflate(dcpl, (unsigned)deflate);
  hid_t d = H5Dcreate2(file, name, type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
  H5Pclose(dcpl);
  H5Sclose(space);
  return d;
}

struct ot_shard_writer {
  char path[4096], tmp[4200];
  hid_t file, frames, features; /* features: -1 when D = 0 */
  int T, H, W, D;
  int64_t n;
  strlist ids, titles, groups, tag_text;
  int64_t *lines, *tag_off; /* tag_off has n+1 entries */
  int64_t cap;
};

int ot_shard_create(ot_shard_writer **out, const char *path, int T, int H, int W, int D,
                    int deflate) {
  OT_ASSERT(T >= 1 && H >= 0 && W >= 0 && (H == 0) == (W == 0) && D >= 0 && (H > 0 || D > 0));
  ot_h5_quiet();
  ot_shard_writer *w = ot_xcalloc(1, sizeof *w);
  snprintf(w->path, sizeof w->path, "%s", path);
  ot_fs_tmpname(w->tmp, sizeof w->tmp, path);
  w->T = T, w->H = H, w->W = W, w->D = D;
  w->frames = w->features = -1;
  w->file = H5Fcreate(w->tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  if (w->file < 0) {
    free(w);
    return ot_fail(OT_EIO, "%s: cannot create HDF5 file", path);
  }
  w->tag_off = ot_xcalloc(1, sizeof(int64_t));
  const hsize_t frame_dims[4] = {(hsize_t)T, (hsize_t)H, (hsize_t)W, 3};
  if (H > 0) w->frames = item_dataset(w->file, "frames", H5T_STD_U8LE, 4, frame_dims, deflate);
  if (H > 0 && w->frames < 0) {
    ot_shard_abort(w);
    return ot_fail(OT_EIO, "%s: cannot create dataset 'frames'", path);
  }
  if (D > 0) {
    const hsize_t feat_dims[2] = {(hsize_t)T, (hsize_t)D};
    w->features = item_dataset(w->file, "features", H5T_IEEE_F32LE, 2, feat_dims, deflate);
    if (w->features < 0) {
      ot_shard_abort(w);
      return ot_fail(OT_EIO, "%s: cannot create dataset 'features'", path);
    }
  }
  *out = w;
  return OT_OK;
}

int ot_shard_append(ot_shard_writer *w, const ot_item *item, const uint8_t *frames,
                    const float *features) {
  OT_ASSERT((w->D > 0) == (features != NULL) && (w->H > 0) == (frames != NULL));
  const hsize_t frame_dims[4] = {(hsize_t)w->T, (hsize_t)w->H, (hsize_t)w->W, 3};
  const hsize_t frames_ext[5] = {(hsize_t)w->n + 1, frame_dims[0], frame_dims[1], frame_dims[2], 3};
  if (w->H > 0 && (H5Dset_extent(w->frames, frames_ext) < 0 ||
                   item_io(w->frames, H5T_NATIVE_UINT8, 4, frame_dims, w->n, (void *)frames, 1) < 0))
    return ot_fail(OT_EIO, "%s: cannot write frames of item %s", w->path, item->id);
  if (w->D > 0) {
    const hsize_t feat_dims[2] = {(hsize_t)w->T, (hsize_t)w->D};
    const hsize_t feat_ext[3] = {(hsize_t)w->n + 1, feat_dims[0], feat_dims[1]};
    if (H5Dset_extent(w->features, feat_ext) < 0 ||
        item_io(w->features, H5T_NATIVE_FLOAT, 2, feat_dims, w->n, (void *)features, 1) < 0)
      return ot_fail(OT_EIO, "%s: cannot write features of item %s", w->path, item->id);
  }
  if (w->n + 2 > w->cap) {
    w->cap = w->cap ? 2 * w->cap : 256;
    w->lines = ot_xrealloc(w->lines, (size_t)w->cap * sizeof(int64_t));
    w->tag_off = ot_xrealloc(w->tag_off, (size_t)(w->cap + 1) * sizeof(int64_t));
  }
  strlist_push(&w->ids, item->id);
  strlist_push(&w->titles, item->title);
  strlist_push(&w->groups, item->group);
  for (int i = 0; i < item->n_tags; i++) strlist_push(&w->tag_text, item->tags[i]);
  w->lines[w->n] = item->line;
  w->n++;
  w->tag_off[w->n] = w->tag_text.n;
  return OT_OK;
}

int ot_shard_attr_str(ot_shard_writer *w, const char *name, const char *value) {
  hid_t t = ot_h5_utf8_type(), space = H5Screate(H5S_SCALAR);
  hid_t a = H5Acreate2(w->file, name, t, space, H5P_DEFAULT, H5P_DEFAULT);
  herr_t r = a < 0 ? -1 : H5Awrite(a, t, &value);
  if (a >= 0) H5Aclose(a);
  H5Sclose(space);
  H5Tclose(t);
  return r < 0 ? ot_fail(OT_EIO, "%s: cannot write attribute '%s'", w->path, name) : OT_OK;
}

int ot_shard_attr_i64(ot_shard_writer *w, const char *name, int64_t value) {
  hid_t space = H5Screate(H5S_SCALAR);
  hid_t a = H5Acreate2(w->file, name, H5T_STD_I64LE, space, H5P_DEFAULT, H5P_DEFAULT);
  herr_t r = a < 0 ? -1 : H5Awrite(a, H5T_NATIVE_INT64, &value);
  if (a >= 0) H5Aclose(a);
  H5Sclose(space);
  return r < 0 ? ot_fail(OT_EIO, "%s: cannot write attribute '%s'", w->path, name) : OT_OK;
}

static void writer_free(ot_shard_writer *w) {
  strlist_free(&w->ids);
  strlist_free(&w->titles);
  strlist_free(&w->groups);
  strlist_free(&w->tag_text);
  free(w->lines);
  free(w->tag_off);
  free(w);
}

int ot_shard_commit(ot_shard_writer *w) {
  int bad = 0;
  bad |= strlist_write(w->file, "id", &w->ids);
  bad |= strlist_write(w->file, "title", &w->titles);
  bad |= strlist_write(w->file, "group", &w->groups);
  bad |= ot_h5_write_i64(w->file, "line", w->lines, w->n);
  hid_t g = ot_h5_create_group(w->file, "tags");
  bad |= g < 0;
  if (g >= 0) {
    bad |= ot_h5_write_i64(g, "offsets", w->tag_off, w->n + 1);
    bad |= strlist_write(g, "text", &w->tag_text);
    H5Gclose(g);
  }
  bad |= ot_shard_attr_str(w, "format", "open-tag-shard") != OT_OK;
  bad |= ot_shard_attr_i64(w, "version", 1) != OT_OK;
  bad |= ot_shard_attr_i64(w, "T", w->T) != OT_OK;
  bad |= ot_shard_attr_i64(w, "H", w->H) != OT_OK;
  bad |= ot_shard_attr_i64(w, "W", w->W) != OT_OK;
  bad |= ot_shard_attr_i64(w, "D", w->D) != OT_OK;
  bad |= ot_shard_attr_i64(w, "n_items", w->n) != OT_OK;
  bad |= w->frames >= 0 && H5Dclose(w->frames) < 0;
  bad |= w->features >= 0 && H5Dclose(w->features) < 0;
  bad |= H5Fclose(w->file) < 0;
  int st = bad ? ot_fail(OT_EIO, "%s: cannot write shard metadata", w->path)
               : ot_fs_commit(w->tmp, w->path);
  if (st) unlink(w->tmp);
  writer_free(w);
  return st;
}

void ot_shard_abort(ot_shard_writer *w) {
  if (!w) return;
  if (w->frames >= 0) H5Dclose(w->frames);
  if (w->features >= 0) H5Dclose(w->features);
  H5Fclose(w->file);
  unlink(w->tmp);
  writer_free(w);
}

/* ---------------------------------------------------------------- reader */

struct ot_shard {
  char path[4096];
  hid_t file, frames, features; /* -1 while closed; features also when D = 0 */
  uint64_t last_read;           /* when its file was last used (open_files) */
  int T, H, W, D;
  int64_t n;
  char **ids, **titles, **groups, **tag_text;
  int64_t n_tags, *lines, *tag_off;
};

/* The shards whose files are open. HDF5 holds about 0.5 MB per open file
 * (its metadata cache), and the cache keeps what it read — the strings'
 * global heap, 1 KB an item — until the file closes: a split of 1M items
 * in 250 files held 1.3 GB open. So ot_shard_open reads the metadata and
 * closes the file, and a process keeps at most OPEN_MAX files open for the
 * frames and features, closing the least recently read first (a read that
 * must reopen its file costs about 45 us; training reads items at random,
 * tagging and embedding shard after shard). One thread. */
#define OPEN_MAX 128
static ot_shard *open_files[OPEN_MAX];
static int n_open_files;
static uint64_t read_clock;

static void file_close(ot_shard *s) {
  if (s->file < 0) return;
  if (s->frames >= 0) H5Dclose(s->frames);
  if (s->features >= 0) H5Dclose(s->features);
  H5Fclose(s->file);
  s->file = s->frames = s->features = -1;
  for (int k = 0; k < n_open_files; k++)
    if (open_files[k] == s) {
      open_files[k] = open_files[--n_open_files];
      break;
    }
}

/* The frames and features datasets of s's open file, as s->H / s->D say
 * it has them; the file is closed when one is missing. */
static int open_datasets(ot_shard *s) {
  if (s->H > 0 && s->frames < 0) s->frames = H5Dopen2(s->file, "frames", H5P_DEFAULT);
  if (s->D > 0 && s->features < 0) s->features = H5Dopen2(s->file, "features", H5P_DEFAULT);
  if ((s->H > 0 && s->frames < 0) || (s->D > 0 && s->features < 0)) {
    file_close(s);
    return ot_fail(OT_EINVAL, "%s: shard is missing its %s", s->path, s->H > 0 ? "frames" : "features");
  }
  return OT_OK;
}

/* s's file (and its datasets, once s->H / s->D are known) open. */
static int file_open(ot_shard *s) {
  s->last_read = ++read_clock;
  if (s->file >= 0) return OT_OK;
  if (n_open_files == OPEN_MAX) {
    int lru = 0;
    for (int k = 1; k < n_open_files; k++)
      if (open_files[k]->last_read < open_files[lru]->last_read) lru = k;
    file_close(open_files[lru]);
  }
  s->file = H5Fopen(s->path, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (s->file < 0) return ot_fail(OT_EINVAL, "%s: not an HDF5 file or unreadable", s->path);
  open_files[n_open_files++] = s;
  return open_datasets(s);
}

int ot_shard_attr_i64_get(ot_shard *s, const char *name, int64_t *value) {
  int st = file_open(s);
  if (st) return st;
  return ot_h5_read_attr_i64(s->file, name, value)
             ? ot_fail(OT_EINVAL, "%s: attribute '%s' missing or unreadable", s->path, name)
             : OT_OK;
}

char *ot_shard_attr_str_get(ot_shard *s, const char *name) {
  if (file_open(s)) return NULL;
  if (H5Aexists(s->file, name) <= 0) return NULL;
  hid_t a = H5Aopen(s->file, name, H5P_DEFAULT);
  hid_t t = ot_h5_utf8_type();
  char *v = NULL;
  herr_t r = H5Aread(a, t, &v);
  H5Tclose(t);
  H5Aclose(a);
  if (r < 0 || !v) return NULL;
  char *copy = ot_xstrdup(v);
  H5free_memory(v);
  return copy;
}

int ot_shard_open(ot_shard **out, const char *path) {
  ot_h5_quiet();
  ot_shard *s = ot_xcalloc(1, sizeof *s);
  snprintf(s->path, sizeof s->path, "%s", path);
  s->file = s->frames = s->features = -1;
  int st = file_open(s);
  if (st) {
    free(s);
    return st;
  }
  char *fmt = ot_shard_attr_str_get(s, "format");
  int ok = fmt && !strcmp(fmt, "open-tag-shard");
  free(fmt);
  int64_t T = 0, H = 0, W = 0;
  if (!ok || ot_shard_attr_i64_get(s, "T", &T) || ot_shard_attr_i64_get(s, "H", &H) ||
      ot_shard_attr_i64_get(s, "W", &W) || ot_shard_attr_i64_get(s, "n_items", &s->n)) {
    ot_shard_close(s);
    return ot_fail(OT_EINVAL, "%s: not an Open-Tag shard (format/T/H/W/n_items attributes)", path);
  }
  s->T = (int)T, s->H = (int)H, s->W = (int)W;
  /* D: shards written before features existed have none */
  int64_t D = 0;
  if (H5Aexists(s->file, "D") > 0 && (ot_shard_attr_i64_get(s, "D", &D) || D < 0 || D > 1 << 20)) {
    ot_shard_close(s);
    return ot_fail(OT_EINVAL, "%s: attribute 'D' (feature width) is not a valid size", path);
  }
  s->D = (int)D;
  if (T < 1 || H < 0 || W < 0 || (H == 0) != (W == 0) || (H == 0 && D == 0)) {
    ot_shard_close(s);
    return ot_fail(OT_EINVAL, "%s: shard sizes T=%lld H=%lld W=%lld D=%lld hold neither frames nor "
                   "features", path, (long long)T, (long long)H, (long long)W, (long long)D);
  }
  if ((st = open_datasets(s))) {
    ot_shard_close(s);
    return st;
  }
  if (ot_h5_read_strings(s->file, "id", s->n, &s->ids) ||
      ot_h5_read_strings(s->file, "title", s->n, &s->titles) ||
      ot_h5_read_strings(s->file, "group", s->n, &s->groups) ||
      ot_h5_read_i64(s->file, "line", s->n, &s->lines) ||
      ot_h5_read_i64(s->file, "tags/offsets", s->n + 1, &s->tag_off) ||
      (s->n_tags = s->tag_off[s->n]) < 0 ||
      ot_h5_read_strings(s->file, "tags/text", s->n_tags, &s->tag_text)) {
    ot_shard_close(s);
    return ot_fail(OT_EINVAL, "%s: shard is missing or has inconsistent datasets", path);
  }
  file_close(s); /* reopened when an item's frames or features are read */
  *out = s;
  return OT_OK;
}

void ot_shard_close(ot_shard *s) {
  if (!s) return;
  ot_h5_free_strings(s->ids, s->n);
  ot_h5_free_strings(s->titles, s->n);
  ot_h5_free_strings(s->groups, s->n);
  ot_h5_free_strings(s->tag_text, s->n_tags);
  free(s->lines);
  free(s->tag_off);
  file_close(s);
  free(s);
}

int64_t ot_shard_count(const ot_shard *s) { return s->n; }
void ot_shard_dims(const ot_shard *s, int *T, int *H, int *W) { *T = s->T, *H = s->H, *W = s->W; }
int ot_shard_feature_dim(const ot_shard *s) { return s->D; }
const char *ot_shard_id(const ot_shard *s, int64_t i) { OT_ASSERT(i >= 0 && i < s->n); return s->ids[i]; }
const char *ot_shard_title(const ot_shard *s, int64_t i) { OT_ASSERT(i >= 0 && i < s->n); return s->titles[i]; }
const char *ot_shard_group(const ot_shard *s, int64_t i) { OT_ASSERT(i >= 0 && i < s->n); return s->groups[i]; }
int64_t ot_shard_line(const ot_shard *s, int64_t i) { OT_ASSERT(i >= 0 && i < s->n); return s->lines[i]; }

int ot_shard_tags(const ot_shard *s, int64_t i, char *const **tags) {
  OT_ASSERT(i >= 0 && i < s->n);
  *tags = s->tag_text + s->tag_off[i];
  return (int)(s->tag_off[i + 1] - s->tag_off[i]);
}

int ot_shard_read_frames(ot_shard *s, int64_t i, uint8_t *out) {
  OT_ASSERT(i >= 0 && i < s->n);
  if (s->H == 0)
    return ot_fail(OT_EINVAL, "%s: the shard has no frames (extracted with extract.store_frames "
                   "false: features only)", s->path);
  int st = file_open(s);
  if (st) return st;
  const hsize_t dims[4] = {(hsize_t)s->T, (hsize_t)s->H, (hsize_t)s->W, 3};
  herr_t r = item_io(s->frames, H5T_NATIVE_UINT8, 4, dims, i, out, 0);
  return r < 0 ? ot_fail(OT_EIO, "%s: cannot read frames of item %lld", s->path, (long long)i) : OT_OK;
}

int ot_shard_read_features(ot_shard *s, int64_t i, float *out) {
  OT_ASSERT(i >= 0 && i < s->n && s->D > 0);
  int st = file_open(s);
  if (st) return st;
  const hsize_t dims[2] = {(hsize_t)s->T, (hsize_t)s->D};
  herr_t r = item_io(s->features, H5T_NATIVE_FLOAT, 2, dims, i, out, 0);
  return r < 0 ? ot_fail(OT_EIO, "%s: cannot read features of item %lld", s->path, (long long)i) : OT_OK;
}
