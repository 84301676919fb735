#include "features_in.h"

#include "ot_common.h"
#include "ot_h5.h"

#include <hdf5.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define WHAT "extract.features"

typedef struct {
  const char *id; /* into ids */
  int64_t row;
} id_row;

struct ot_features_in {
  char path[4096];
  hid_t file, dset;
  int T, D;
  char **ids;     /* [n] as read (ot_h5_free_strings) */
  id_row *sorted; /* [n] by id */
  int64_t n;
};

static int by_id(const void *a, const void *b) {
  return strcmp(((const id_row *)a)->id, ((const id_row *)b)->id);
}

int ot_features_in_open(ot_features_in **out, const char *path, int T) {
  ot_h5_quiet();
  ot_features_in *f = ot_xcalloc(1, sizeof *f);
  snprintf(f->path, sizeof f->path, "%s", path);
  f->dset = -1;
  f->file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (f->file < 0) {
    free(f);
    return ot_fail(OT_EINVAL, "%s: %s: not an HDF5 file or unreadable", path, WHAT);
  }
  int st = ot_h5_read_names(f->file, path, WHAT, "id", &f->ids, &f->n);
  hsize_t dims[3] = {0, 0, 0};
  if (st == OT_OK && (f->dset = ot_h5_open_ranked(f->file, path, WHAT, "features", 3, dims)) < 0)
    st = OT_EINVAL;
  if (st == OT_OK) {
    hid_t t = H5Dget_type(f->dset);
    int is_float = H5Tget_class(t) == H5T_FLOAT;
    H5Tclose(t);
    if (!is_float)
      st = ot_fail(OT_EINVAL, "%s: %s: dataset 'features' must hold floating-point numbers", path,
                   WHAT);
    else if ((int64_t)dims[0] != f->n)
      st = ot_fail(OT_EINVAL, "%s: %s: dataset 'features' has %llu rows but 'id' has %lld entries",
                   path, WHAT, (unsigned long long)dims[0], (long long)f->n);
    else if ((int)dims[1] != T)
      st = ot_fail(OT_EINVAL, "%s: %s: dataset 'features' holds %llu frames per item but "
                   "extract.frames is %d", path, WHAT, (unsigned long long)dims[1], T);
    else if (dims[2] < 1 || dims[2] > 1 << 20)
      st = ot_fail(OT_EINVAL, "%s: %s: dataset 'features' has %llu columns (D must be 1 to %d)",
                   path, WHAT, (unsigned long long)dims[2], 1 << 20);
  }
  if (st == OT_OK) {
    f->T = T, f->D = (int)dims[2];
    f->sorted = ot_xmalloc((size_t)(f->n > 0 ? f->n : 1) * sizeof *f->sorted);
    for (int64_t r = 0; r < f->n; r++) f->sorted[r] = (id_row){f->ids[r] ? f->ids[r] : "", r};
    qsort(f->sorted, (size_t)f->n, sizeof *f->sorted, by_id);
    for (int64_t r = 1; r < f->n && st == OT_OK; r++)
      if (!strcmp(f->sorted[r - 1].id, f->sorted[r].id))
        st = ot_fail(OT_EINVAL, "%s: %s: id '%s' appears twice in dataset 'id'", path, WHAT,
                     f->sorted[r].id);
  }
  if (st) {
    ot_features_in_close(f);
    return st;
  }
  *out = f;
  return OT_OK;
}

void ot_features_in_close(ot_features_in *f) {
  if (!f) return;
  ot_h5_free_strings(f->ids, f->n);
  free(f->sorted);
  if (f->dset >= 0) H5Dclose(f->dset);
  H5Fclose(f->file);
  free(f);
}

int ot_features_in_dim(const ot_features_in *f) { return f->D; }

int ot_features_in_read(ot_features_in *f, const char *id, float *out) {
  const id_row key = {id, 0};
  const id_row *hit = bsearch(&key, f->sorted, (size_t)f->n, sizeof *f->sorted, by_id);
  if (!hit) return ot_fail(OT_EINVAL, "%s: no features for this item (id not in dataset 'id')", f->path);
  hsize_t start[3] = {(hsize_t)hit->row, 0, 0}, count[3] = {1, (hsize_t)f->T, (hsize_t)f->D};
  hid_t fspace = H5Dget_space(f->dset);
  H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start, NULL, count, NULL);
  hid_t mspace = H5Screate_simple(3, count, NULL);
  herr_t r = H5Dread(f->dset, H5T_NATIVE_FLOAT, mspace, fspace, H5P_DEFAULT, out);
  H5Sclose(mspace);
  H5Sclose(fspace);
  if (r < 0)
    return ot_fail(OT_EIO, "%s: cannot read row %lld of dataset 'features'", f->path, (long long)hit->row);
  for (size_t i = 0; i < (size_t)f->T * f->D; i++)
    if (!isfinite(out[i]))
      return ot_fail(OT_EINVAL, "%s: row %lld of dataset 'features' holds a non-finite value",
                     f->path, (long long)hit->row);
  return OT_OK;
}
