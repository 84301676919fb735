/* Small HDF5 helpers shared by every file format of the project (shards,
 * checkpoints, embeddings). */
#ifndef OT_H5_H
#define OT_H5_H

#include <hdf5.h>

/* Our messages name the file and the operation; HDF5's own error stack
 * printing is turned off (process-wide). */
void ot_h5_quiet(void);
/* A variable-length UTF-8 string type; the caller closes it (H5Tclose). */
hid_t ot_h5_utf8_type(void);

/* Every dataset and group we create goes through these: HDF5 stores a
 * creation time in each object unless told not to, and then a file written
 * twice from the same data differs in those bytes; without them equal
 * outputs are equal files (checksums compare runs).
 * A dataset creation property list with timestamps off, to add chunking or
 * filters to; the caller closes it (H5Pclose). */
hid_t ot_h5_dataset_plist(void);
/* A new group `name` in loc; the caller closes it (H5Gclose); -1 on failure. */
hid_t ot_h5_create_group(hid_t loc, const char *name);
/* A whole dataset of `rank` dims (0: scalar) in file_type, written from v
 * in mem_type (nothing written when it has no elements). create returns the
 * open dataset (the caller closes it: H5Dclose) or -1; write closes it and
 * returns 0 or -1. */
hid_t ot_h5_create_array(hid_t loc, const char *name, hid_t file_type, hid_t mem_type, int rank,
                         const hsize_t *dims, const void *v);
int ot_h5_write_array(hid_t loc, const char *name, hid_t file_type, hid_t mem_type, int rank,
                      const hsize_t *dims, const void *v);

/* Whole 1-D datasets: vlen UTF-8 strings and int64 (written little-endian).
 * -1 on any failure: the caller's message names the file. */
int ot_h5_write_strings(hid_t loc, const char *name, const char *const *v, int64_t n);
int ot_h5_write_i64(hid_t loc, const char *name, const int64_t *v, int64_t n);
/* Read a 1-D dataset holding `expect` entries (expect < 0: any number).
 * Strings: *out[0..n) point into one blob (ot_h5_read_string_blob: a NULL
 * entry reads as ""), *out[n] is NULL; free with ot_h5_free_strings(*out,
 * n), with the same n, and do not reorder *out. The int64 array: free(). */
int ot_h5_read_strings(hid_t loc, const char *name, int64_t expect, char ***out);
int ot_h5_read_i64(hid_t loc, const char *name, int64_t expect, int64_t **out);
/* An int64 attribute of loc: 0, or -1 when it is missing or unreadable. */
int ot_h5_read_attr_i64(hid_t loc, const char *name, int64_t *value);
void ot_h5_free_strings(char **v, int64_t n); /* accepts NULL */

/* For files written elsewhere (external embeddings, features): messages
 * start with the file `path` and `what` it is. The dataset `name` (a path
 * such as "image/id") opened with its rank checked and its extent in
 * dims[rank]; -1 with the error set (ot_errmsg) when it is missing or of
 * another rank. The caller closes it (H5Dclose). */
hid_t ot_h5_open_ranked(hid_t f, const char *path, const char *what, const char *name, int rank,
                        hsize_t *dims);
/* A 1-D variable-length UTF-8 string dataset: *v (ot_h5_free_strings), *n
 * entries. OT_EINVAL when missing or of another type, OT_EIO when unreadable. */
int ot_h5_read_names(hid_t f, const char *path, const char *what, const char *name, char ***v,
                     int64_t *n);
/* A 1-D variable-length UTF-8 string dataset of `expect` entries (< 0: any
 * number) into one malloc'd blob of NUL-terminated strings (a NULL entry
 * reads as "") and *ptrs[n] pointing into it, *n entries; read a chunk of
 * strings at a time, so HDF5's allocation of every string costs one chunk,
 * not the dataset (tables of millions of rows). OT_EINVAL naming `path` when
 * missing or of another length, OT_EIO when unreadable. The caller frees
 * *blob and *ptrs. */
int ot_h5_read_string_blob(hid_t f, const char *path, const char *name, int64_t expect, char **blob,
                           char ***ptrs, int64_t *n);

#endif
