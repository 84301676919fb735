#include "ot_h5.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ot_common.h"

void ot_h5_quiet(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

hid_t ot_h5_utf8_type(void) {
  hid_t t = H5Tcopy(H5T_C_S1);
  H5Tset_size(t, H5T_VARIABLE);
  H5Tset_cset(t, H5T_CSET_UTF8);
  return t;
}

hid_t ot_h5_dataset_plist(void) {
  hid_t p = H5Pcreate(H5P_DATASET_CREATE);
  H5Pset_obj_track_times(p, 0);
  return p;
}

hid_t ot_h5_create_group(hid_t loc, const char *name) {
  hid_t p = H5Pcreate(H5P_GROUP_CREATE);
  H5Pset_obj_track_times(p, 0);
  hid_t g = H5Gcreate2(loc, name, H5P_DEFAULT, p, H5P_DEFAULT);
  H5Pclose(p);
  return g;
}

hid_t ot_h5_create_array(hid_t loc, const char *name, hid_t file_type, hid_t mem_type, int rank,
                         const hsize_t *dims, const void *v) {
  hid_t space = rank ? H5Screate_simple(rank, dims, NULL) : H5Screate(H5S_SCALAR);
  hid_t dcpl = ot_h5_dataset_plist();
  hid_t d = H5Dcreate2(loc, name, file_type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
  H5Pclose(dcpl);
  hsize_t n = 1;
  for (int k = 0; k < rank; k++) n *= dims[k];
  herr_t r = d < 0 ? -1 : (n ? H5Dwrite(d, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) : 0);
  H5Sclose(space);
  if (r < 0 && d >= 0) H5Dclose(d);
  return r < 0 ? -1 : d;
}

int ot_h5_write_array(hid_t loc, const char *name, hid_t file_type, hid_t mem_type, int rank,
                      const hsize_t *dims, const void *v) {
  hid_t d = ot_h5_create_array(loc, name, file_type, mem_type, rank, dims, v);
  return d < 0 || H5Dclose(d) < 0 ? -1 : 0;
}

int ot_h5_write_strings(hid_t loc, const char *name, const char *const *v, int64_t count) {
  hsize_t n = (hsize_t)count;
  hid_t t = ot_h5_utf8_type();
  int r = ot_h5_write_array(loc, name, t, t, 1, &n, v);
  H5Tclose(t);
  return r;
}

int ot_h5_write_i64(hid_t loc, const char *name, const int64_t *v, int64_t count) {
  hsize_t n = (hsize_t)count;
  return ot_h5_write_array(loc, name, H5T_STD_I64LE, H5T_NATIVE_INT64, 1, &n, v);
}

/* Open `name` and check its size: the dataset id and its point count, or -1. */
static hid_t open_1d(hid_t loc, const char *name, int64_t expect, hssize_t *n) {
  hid_t d = H5Dopen2(loc, name, H5P_DEFAULT);
  if (d < 0) return -1;
  hid_t space = H5Dget_space(d);
  *n = H5Sget_simple_extent_npoints(space);
  H5Sclose(space);
  if (*n < 0 || (expect >= 0 && *n != expect)) {
    H5Dclose(d);
    return -1;
  }
  return d;
}

/* The strings in one blob, not one HDF5 allocation each: those cost about
 * 150-380 bytes a string (a shard's ids, titles, groups and tags 1.3 KB an
 * item, 1.3 GB per rank for a split of 1M items), the blob their bytes. */
int ot_h5_read_strings(hid_t loc, const char *name, int64_t expect, char ***out) {
  char *blob, **ptrs;
  int64_t n;
  if (ot_h5_read_string_blob(loc, name, name, expect, &blob, &ptrs, &n)) return -1;
  char **v = ot_xrealloc(ptrs, ((size_t)n + 2) * sizeof *v);
  v[n] = NULL, v[n + 1] = blob; /* the blob, for ot_h5_free_strings */
  *out = v;
  return 0;
}

int ot_h5_read_i64(hid_t loc, const char *name, int64_t expect, int64_t **out) {
  hssize_t n;
  hid_t d = open_1d(loc, name, expect, &n);
  if (d < 0) return -1;
  int64_t *v = ot_xcalloc((size_t)n + 1, sizeof *v);
  herr_t r = n ? H5Dread(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) : 0;
  H5Dclose(d);
  if (r < 0) {
    free(v);
    return -1;
  }
  *out = v;
  return 0;
}

int ot_h5_read_attr_i64(hid_t loc, const char *name, int64_t *value) {
  if (H5Aexists(loc, name) <= 0) return -1;
  hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
  herr_t r = a < 0 ? -1 : H5Aread(a, H5T_NATIVE_INT64, value);
  if (a >= 0) H5Aclose(a);
  return r < 0 ? -1 : 0;
}

void ot_h5_free_strings(char **v, int64_t n) {
  if (!v) return;
  free(v[n + 1]);
  free(v);
}

hid_t ot_h5_open_ranked(hid_t f, const char *path, const char *what, const char *name, int rank,
                        hsize_t *dims) {
  char group[256];
  snprintf(group, sizeof group, "%.*s", (int)strcspn(name, "/"), name);
  if (H5Lexists(f, group, H5P_DEFAULT) <= 0 || H5Lexists(f, name, H5P_DEFAULT) <= 0) {
    ot_fail(OT_EINVAL, "%s: %s: dataset '%s' is missing", path, what, name);
    return -1;
  }
  hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
  if (d < 0) {
    ot_fail(OT_EINVAL, "%s: %s: '%s' is not a dataset", path, what, name);
    return -1;
  }
  hid_t s = H5Dget_space(d);
  int have = H5Sget_simple_extent_ndims(s);
  if (have == rank) H5Sget_simple_extent_dims(s, dims, NULL);
  H5Sclose(s);
  if (have != rank) {
    H5Dclose(d);
    ot_fail(OT_EINVAL, "%s: %s: dataset '%s' has %d dimensions, expected %d", path, what, name,
            have, rank);
    return -1;
  }
  return d;
}

int ot_h5_read_names(hid_t f, const char *path, const char *what, const char *name, char ***v,
                     int64_t *n) {
  hsize_t dims[1];
  hid_t d = ot_h5_open_ranked(f, path, what, name, 1, dims);
  if (d < 0) return OT_EINVAL;
  hid_t t = H5Dget_type(d);
  int ok = H5Tget_class(t) == H5T_STRING && H5Tis_variable_str(t) > 0;
  H5Tclose(t);
  H5Dclose(d);
  if (!ok)
    return ot_fail(OT_EINVAL, "%s: %s: dataset '%s' must hold variable-length UTF-8 strings", path,
                   what, name);
  if (ot_h5_read_strings(f, name, (int64_t)dims[0], v) < 0)
    return ot_fail(OT_EIO, "%s: %s: cannot read dataset '%s'", path, what, name);
  *n = (int64_t)dims[0];
  return OT_OK;
}

/* Strings per read of ot_h5_read_string_blob. */
#define STRING_CHUNK 65536

int ot_h5_read_string_blob(hid_t file, const char *path, const char *name, int64_t expect,
                           char **blob_out, char ***ptrs_out, int64_t *n_out) {
  hid_t d = H5Dopen2(file, name, H5P_DEFAULT);
  if (d < 0) return ot_fail(OT_EINVAL, "%s: no dataset '%s'", path, name);
  hid_t fspace = H5Dget_space(d);
  hsize_t n = 0;
  if (H5Sget_simple_extent_ndims(fspace) == 1) H5Sget_simple_extent_dims(fspace, &n, NULL);
  if (expect >= 0 && (int64_t)n != expect) {
    H5Sclose(fspace);
    H5Dclose(d);
    return ot_fail(OT_EINVAL, "%s: '%s' has %llu entries, expected %lld", path, name,
                   (unsigned long long)n, (long long)expect);
  }
  hid_t t = ot_h5_utf8_type();
  int64_t *off = ot_xmalloc(((size_t)n + 1) * sizeof *off);
  char **chunk = ot_xmalloc(STRING_CHUNK * sizeof *chunk);
  char *blob = NULL;
  size_t len = 0, cap = 0;
  int st = OT_OK;
  for (hsize_t s = 0; s < n && st == OT_OK; s += STRING_CHUNK) {
    hsize_t m = n - s < STRING_CHUNK ? n - s : STRING_CHUNK;
    H5Sselect_hyperslab(fspace, H5S_SELECT_SET, &s, NULL, &m, NULL);
    hid_t mspace = H5Screate_simple(1, &m, NULL);
    if (H5Dread(d, t, mspace, fspace, H5P_DEFAULT, chunk) < 0) {
      st = ot_fail(OT_EIO, "%s: cannot read '%s'", path, name);
    } else {
      for (hsize_t i = 0; i < m; i++) {
        const char *v = chunk[i] ? chunk[i] : "";
        size_t l = strlen(v) + 1;
        if (len + l > cap) blob = ot_xrealloc(blob, cap = 2 * (len + l) + 4096);
        memcpy(blob + len, v, l);
        off[s + i] = (int64_t)len;
        len += l;
      }
      H5Dvlen_reclaim(t, mspace, H5P_DEFAULT, chunk);
    }
    H5Sclose(mspace);
  }
  free(chunk);
  H5Tclose(t);
  H5Sclose(fspace);
  H5Dclose(d);
  if (st) {
    free(off);
    free(blob);
    return st;
  }
  if (!blob) blob = ot_xcalloc(1, 1);
  char **ptrs = ot_xmalloc(((size_t)n + 1) * sizeof *ptrs);
  for (hsize_t i = 0; i < n; i++) ptrs[i] = blob + off[i];
  free(off);
  *blob_out = blob;
  *ptrs_out = ptrs;
  *n_out = (int64_t)n;
  return OT_OK;
}
