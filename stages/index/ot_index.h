/* Retrieval indexes on disk: one folder per source, built by ot-index and
 * searched by ot-retrieve.
 *
 * <dir>/<source>/
 *   index.faiss            the merged FAISS index (index.sharded=false), or
 *   shard-NN.faiss         one FAISS index per building rank (sharded=true);
 *                          FAISS labels are row numbers local to the shard
 *   rows.h5                row -> id, group (vlen UTF-8) [N]; tags/offsets
 *                          int64 [N+1] into tags/text (vlen UTF-8). Rows in
 *                          the order added; shards concatenated in order
 *   meta.json              {"source","factory","metric":"ip","dim","ntotal",
 *                          "sharded","shards","shard_ntotal":[..],"query","key",
 *                          "nprobe","fingerprint","embeddings","complete":true},
 *                          written
 *                          last (atomically): a folder without it is unfinished
 * Every file is written under a temp name and renamed into place. The .faiss
 * files are plain FAISS files (faiss.read_index opens them). */
#ifndef OT_INDEX_H
#define OT_INDEX_H

#include <stddef.h>
#include <stdint.h>

/* ------------------------------------------------------------ searching */
typedef struct ot_index ot_index; /* one retrieval source: its FAISS shard(s) + rows table */
/* Open <dir>/<source>/ (meta.json, every shard, rows.h5); applies the nprobe
 * recorded in meta.json. OT_EINVAL naming the file when the folder is missing,
 * unfinished or inconsistent. *out owned by the caller: ot_index_close. */
int ot_index_open(ot_index **out, const char *dir, const char *source);
void ot_index_close(ot_index *ix); /* NULL ok */
int ot_index_dim(const ot_index *ix);
int64_t ot_index_ntotal(const ot_index *ix);
const char *ot_index_query_vec(const ot_index *ix); /* embedding vector name queries use, e.g. "title" */
const char *ot_index_key_vec(const ot_index *ix);
/* The version of the training embeddings it was built from (meta.json
 * "embeddings", hex; NULL for an index from before it was recorded). */
const char *ot_index_embeddings(const ot_index *ix);
int ot_index_set_nprobe(ot_index *ix, int nprobe); /* no-op for non-IVF */
/* Inner-product top-k for nq queries [nq,dim]: sims/rows [nq,k] sorted by
 * decreasing sim, rows are global row numbers (shards merged), -1 / -INFINITY
 * padding when fewer than k exist. Ties between shards go to the lower row. */
int ot_index_search(ot_index *ix, const float *q, int64_t nq, int k, float *sims, int64_t *rows);
/* Strings owned by the index, valid until ot_index_close. */
const char *ot_index_row_id(const ot_index *ix, int64_t row);
const char *ot_index_row_group(const ot_index *ix, int64_t row);
/* Tags of a row: *tags points into the index (valid until close), *n of them. */
void ot_index_row_tags(const ot_index *ix, int64_t row, const char *const **tags, int *n);

/* ------------------------------------------------------------ building */
/* The FAISS file of shard `s` of a folder: "<folder>/index.faiss" when not
 * sharded, else "<folder>/shard-NN.faiss". */
void ot_index_shard_path(char *buf, size_t cap, const char *folder, int sharded, int s);

typedef struct {
  const char *source, *factory, *query_vec, *key_vec;
  const char *fingerprint; /* what the index was built from (see ot-index) */
  const char *embeddings;  /* ot_emb_set_version of the training embeddings, hex */
  int dim, sharded, shards, nprobe;
  int64_t ntotal;
  const int64_t *shard_ntotal; /* [shards] */
} ot_index_meta;
/* Write <folder>/meta.json atomically with "complete": true. */
int ot_index_write_meta(const char *folder, const ot_index_meta *m);
/* 1 if <folder>/meta.json exists, is complete and has this fingerprint, and
 * rows.h5 and the FAISS file(s) it lists exist; then
 * *nprobe (if not NULL) receives its nprobe. 0 otherwise (any error too). */
int ot_index_is_complete(const char *folder, const char *fingerprint, int *nprobe);
/* Set "nprobe" in a complete meta.json (rewritten atomically). */
int ot_index_update_nprobe(const char *folder, int nprobe);

/* rows.h5 written a batch of rows at a time (so a 3M-row table never has to
 * be in memory at once), under a temp name until committed. */
typedef struct ot_index_rows_writer ot_index_rows_writer;
/* Caller owns *out: ot_index_rows_commit or ot_index_rows_abort frees it. */
int ot_index_rows_create(ot_index_rows_writer **out, const char *path);
/* Append n rows. tag_offsets [n+1] index tag_text (tag_offsets[0] need not be
 * 0: the row's tags are tag_text[tag_offsets[i]..tag_offsets[i+1])). */
int ot_index_rows_append(ot_index_rows_writer *w, int64_t n, const char *const *ids,
                         const char *const *groups, const int64_t *tag_offsets,
                         const char *const *tag_text);
/* Close, rename into place, free w (also on failure). */
int ot_index_rows_commit(ot_index_rows_writer *w);
void ot_index_rows_abort(ot_index_rows_writer *w); /* removes the temp file; NULL ok */

#endif
