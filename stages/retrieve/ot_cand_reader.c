/* ot_cand_reader (ot_cand.h): a split's candidates read item by item. */
#include "ot_cand.h"

#include "ot_common.h"
#include "ot_h5.h"
#include "ot_strmap.h"

#include <hdf5.h>
#include <stdlib.h>
#include <string.h>

#define OPEN_MAX 8

typedef struct {
  char *path;
  int64_t n, *off;             /* items and cand/offsets [n+1]: read at the first open */
  hid_t file, id, tag, score;  /* -1 while closed */
  uint64_t last_read;
} cand_file;

struct ot_cand_reader {
  int n_files, n_open;
  cand_file *files;
  uint64_t clock;
  ot_strpool texts;
  const char **tags;           /* the last read's */
  float *scores;
  int cap;
};

static void file_close(ot_cand_reader *r, cand_file *f) {
  if (f->file < 0) return;
  if (f->id >= 0) H5Dclose(f->id);
  if (f->tag >= 0) H5Dclose(f->tag);
  if (f->score >= 0) H5Dclose(f->score);
  H5Fclose(f->file);
  f->file = f->id = f->tag = f->score = -1;
  r->n_open--;
}

static int file_open(ot_cand_reader *r, cand_file *f) {
  f->last_read = ++r->clock;
  if (f->file >= 0) return OT_OK;
  if (r->n_open == OPEN_MAX) {
    cand_file *lru = NULL;
    for (int k = 0; k < r->n_files; k++)
      if (r->files[k].file >= 0 && (!lru || r->files[k].last_read < lru->last_read)) lru = &r->files[k];
    file_close(r, lru);
  }
  ot_h5_quiet();
  f->file = H5Fopen(f->path, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (f->file < 0) return ot_fail(OT_EINVAL, "%s: not an HDF5 file or unreadable", f->path);
  r->n_open++;
  f->id = H5Dopen2(f->file, "id", H5P_DEFAULT);
  f->tag = H5Dopen2(f->file, "cand/tag", H5P_DEFAULT);
  f->score = H5Dopen2(f->file, "cand/score", H5P_DEFAULT);
  int bad = f->id < 0 || f->tag < 0 || f->score < 0;
  if (!bad && !f->off) {
    bad = ot_h5_read_attr_i64(f->file, "n_items", &f->n) || f->n < 0 ||
          ot_h5_read_i64(f->file, "cand/offsets", f->n + 1, &f->off) || f->off[0] != 0;
    for (int64_t i = 0; i < f->n && !bad; i++) bad = f->off[i + 1] < f->off[i];
    if (bad) free(f->off), f->off = NULL;
  }
  if (bad) {
    file_close(r, f);
    return ot_fail(OT_EINVAL, "%s: not an Open-Tag candidates file or inconsistent datasets", f->path);
  }
  return OT_OK;
}

/* Strings first..first+n-1 of a vlen string dataset into out[n] (HDF5's;
 * H5Dvlen_reclaim with the same type and space). */
static int read_rows(hid_t d, hsize_t first, hsize_t n, hid_t t, hid_t *mspace, char **out) {
  hid_t fspace = H5Dget_space(d);
  H5Sselect_hyperslab(fspace, H5S_SELECT_SET, &first, NULL, &n, NULL);
  *mspace = H5Screate_simple(1, &n, NULL);
  herr_t rc = H5Dread(d, t, *mspace, fspace, H5P_DEFAULT, out);
  H5Sclose(fspace);
  return rc < 0 ? -1 : 0;
}

int ot_cand_reader_open(ot_cand_reader **out, const char *retrieve_dir, const char *split) {
  char **paths;
  int n;
  int st = ot_cand_split_paths(retrieve_dir, split, &paths, &n);
  if (st) return st;
  ot_cand_reader *r = ot_xcalloc(1, sizeof *r);
  r->n_files = n;
  r->files = ot_xcalloc((size_t)(n ? n : 1), sizeof *r->files);
  for (int f = 0; f < n; f++)
    r->files[f] = (cand_file){.path = paths[f], .file = -1, .id = -1, .tag = -1, .score = -1};
  free(paths);
  *out = r;
  return OT_OK;
}

void ot_cand_reader_close(ot_cand_reader *r) {
  if (!r) return;
  for (int f = 0; f < r->n_files; f++) {
    file_close(r, &r->files[f]);
    free(r->files[f].path);
    free(r->files[f].off);
  }
  free(r->files);
  ot_strpool_free(&r->texts);
  free(r->tags);
  free(r->scores);
  free(r);
}

int ot_cand_reader_files(const ot_cand_reader *r) { return r->n_files; }

int ot_cand_reader_get(ot_cand_reader *r, int file, int64_t row, const char *id,
                       const char *const **tags, const float **scores, int *n) {
  if (file < 0 || file >= r->n_files)
    return ot_fail(OT_EINVAL, "candidates: no file %d (the split's index lists %d)", file, r->n_files);
  cand_file *f = &r->files[file];
  int st = file_open(r, f);
  if (st) return st;
  if (row < 0 || row >= f->n)
    return ot_fail(OT_EINVAL, "%s: no row %lld (%lld items): the retrieval is of another extraction; "
                   "run ot-retrieve again", f->path, (long long)row, (long long)f->n);
  const hsize_t first = (hsize_t)f->off[row], m = (hsize_t)(f->off[row + 1] - f->off[row]);
  if ((int64_t)m > r->cap) {
    r->cap = (int)m;
    r->tags = ot_xrealloc(r->tags, (size_t)m * sizeof *r->tags);
    r->scores = ot_xrealloc(r->scores, (size_t)m * sizeof *r->scores);
  }
  hid_t t = ot_h5_utf8_type(), mspace = -1;
  char *got = NULL, **text = m ? ot_xcalloc(m, sizeof *text) : NULL;
  int bad = read_rows(f->id, (hsize_t)row, 1, t, &mspace, &got);
  const int other = !bad && strcmp(got ? got : "", id);
  if (!bad) H5Dvlen_reclaim(t, mspace, H5P_DEFAULT, &got);
  if (mspace >= 0) H5Sclose(mspace), mspace = -1;
  if (!bad && !other && m) {
    bad = read_rows(f->tag, first, m, t, &mspace, text);
    for (hsize_t k = 0; k < m && !bad; k++) r->tags[k] = ot_strpool_intern(&r->texts, text[k] ? text[k] : "");
    if (!bad) H5Dvlen_reclaim(t, mspace, H5P_DEFAULT, text);
    if (mspace >= 0) H5Sclose(mspace), mspace = -1;
    hid_t fspace = H5Dget_space(f->score);
    hid_t ms = H5Screate_simple(1, &m, NULL);
    H5Sselect_hyperslab(fspace, H5S_SELECT_SET, &first, NULL, &m, NULL);
    bad = bad || H5Dread(f->score, H5T_NATIVE_FLOAT, ms, fspace, H5P_DEFAULT, r->scores) < 0;
    H5Sclose(ms);
    H5Sclose(fspace);
  }
  H5Tclose(t);
  free(text);
  if (bad) return ot_fail(OT_EINVAL, "%s: cannot read the candidates of row %lld", f->path, (long long)row);
  if (other)
    return ot_fail(OT_EINVAL, "%s: row %lld is another item's, not '%s': the retrieval is of another "
                   "extraction; run ot-retrieve again", f->path, (long long)row, id);
  *tags = r->tags, *scores = r->scores, *n = (int)m;
  return OT_OK;
}
