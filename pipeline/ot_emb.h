/* Embedding files: <embed.dir>/<split>/emb-NNNNNN.h5, one per dataset shard,
 * same item order.
 * Datasets: id, group (vlen UTF-8) [N]; tags/offsets int64 [N+1], tags/text
 * vlen [n]; vec/<name> float32 [N,dim] (rows L2-normalised; different vectors
 * may have different dims). Root attributes: format "open-tag-emb", version 1,
 * n_items.
 * <embed.dir>/<split>/index.json lists the files in order:
 * {"split","vectors":["visual",...],"dims":{"visual":D,...},
 *  "files":[{"path":"emb-000000.h5","items":N},...],"complete":true}
 * (per-vector dims instead of one "dim": the n-gram vector is wider than the
 * model's). */
#ifndef OT_EMB_H
#define OT_EMB_H

#include <stdint.h>

/* ------------------------------------------------------------ a split */
typedef struct ot_emb_set ot_emb_set;
/* Read <embed_dir>/<split>/index.json. OT_EINVAL naming the file when it is
 * missing, malformed or not "complete". Caller owns *out (ot_emb_set_close). */
int ot_emb_set_open(ot_emb_set **out, const char *embed_dir, const char *split);
void ot_emb_set_close(ot_emb_set *s); /* accepts NULL */
int ot_emb_set_files(const ot_emb_set *s);
int64_t ot_emb_set_count(const ot_emb_set *s); /* items over all files */
int64_t ot_emb_set_file_items(const ot_emb_set *s, int f);
/* Full path of file f (<embed_dir>/<split>/<path>); owned by the set. */
const char *ot_emb_set_file_path(const ot_emb_set *s, int f);
/* Vectors listed in the index, and their dims (0 if not listed). */
int ot_emb_set_n_vecs(const ot_emb_set *s);
const char *ot_emb_set_vec_name(const ot_emb_set *s, int v);
int ot_emb_set_dim(const ot_emb_set *s, const char *vec);
/* The version of the split's embeddings: index.json's text and every file's
 * size and mtime (ot_fs_version_hash). ot-index records it in meta.json, so
 * ot-retrieve can tell that the training split was embedded again since. */
uint64_t ot_emb_set_version(const ot_emb_set *s);

/* ------------------------------------------------------------ one file */
typedef struct ot_emb ot_emb;
/* Open one embedding file; ids, groups and tags are read into memory, vectors
 * are read on demand (ot_emb_read). Caller owns *out (ot_emb_close). */
int ot_emb_open(ot_emb **out, const char *path);
void ot_emb_close(ot_emb *e); /* accepts NULL */
int64_t ot_emb_count(const ot_emb *e);
int ot_emb_n_vecs(const ot_emb *e);
const char *ot_emb_vec_name(const ot_emb *e, int v); /* owned by e */
int ot_emb_dim(const ot_emb *e, const char *vec);    /* 0 if the file has no such vector */
/* Strings owned by e, valid until ot_emb_close. */
const char *ot_emb_id(const ot_emb *e, int64_t i);
const char *ot_emb_group(const ot_emb *e, int64_t i);
void ot_emb_tags(const ot_emb *e, int64_t i, const char *const **tags, int *n);
/* Rows [first, first+n) of vector `vec` into out [n,dim]. OT_EINVAL if the
 * vector is missing or the range is out of bounds. */
int ot_emb_read(const ot_emb *e, const char *vec, int64_t first, int64_t n, float *out);

/* Write one embedding file atomically (temp name, then rename). ids/groups
 * [n]; tag_offsets [n+1] into tag_text; vecs[v] is [n, dims[v]] row-major.
 * Rows are stored as given (the caller normalises). */
int ot_emb_write(const char *path, int64_t n, const char *const *ids, const char *const *groups,
                 const int64_t *tag_offsets, const char *const *tag_text,
                 int n_vec, const char *const *vec_names, const int *dims, const float *const *vecs);
/* Write <embed_dir>/<split>/index.json atomically, "complete":true. paths are
 * relative to <embed_dir>/<split>/ (or absolute); vectors and dims are read
 * from the first file (none when n_files is 0). */
int ot_emb_set_write_index(const char *embed_dir, const char *split, int n_files,
                           const char *const *paths, const int64_t *items);

#endif
