/* Retrieved candidates (ot-retrieve's output, read by training and tagging of
 * the rag model): <retrieve.dir>/<split>/cand-NNNNNN.h5, one per embedding
 * file, same item order.
 *   id              vlen UTF-8 [N]
 *   cand/offsets    int64 [N+1]: item i's candidates are rows offsets[i]..offsets[i+1]-1
 *   cand/tag        vlen UTF-8 [n_cand], best first within an item
 *   cand/score      float32 [n_cand], the fused score (ot_fusion.h)
 *   cand/source_score float32 [n_cand, n_sources], per-source vote share;
 *                   attribute `sources` (vlen UTF-8 [n_sources]) names the columns
 *   root attributes format "open-tag-cand", version 1, n_items
 * <retrieve.dir>/<split>/index.json: {"split","sources":[...],
 *   "files":[{"path":"cand-000000.h5","items":N},...],"complete":true}.
 * File s holds exactly the items of data shard s (ot-embed writes one
 * embedding file per shard, ot-retrieve one candidates file per embedding
 * file): training reads them item by item (ot_cand_reader), ot-tag the file
 * of the shard it tags (ot_cand_load_split_part), so no rank holds a
 * split's candidates (README: 1M items' candidates cost a rank 429 MB
 * whole). */
#ifndef OT_CAND_H
#define OT_CAND_H

#include <stdint.h>

/* Write one candidates file atomically. ids [n]; offsets [n+1] (offsets[0] =
 * 0) into tags/scores [offsets[n]] and source_scores [offsets[n], n_sources]. */
int ot_cand_write(const char *path, int64_t n, const char *const *ids, const int64_t *offsets,
                  const char *const *tags, const float *scores, int n_sources,
                  const char *const *source_names, const float *source_scores);
/* Write <retrieve_dir>/<split>/index.json atomically ("complete": true);
 * paths relative to that folder. */
int ot_cand_write_index(const char *retrieve_dir, const char *split, int n_sources,
                        const char *const *source_names, int n_files, const char *const *paths,
                        const int64_t *items);

/* Candidates in memory (a split's, one file's), looked up by item id. */
typedef struct ot_cand_set ot_cand_set;
/* Read every file listed in <retrieve_dir>/<split>/index.json, but the
 * per-source scores, which training and tagging do not read (at top_m 32
 * and 4 sources, 512 bytes an item: ot_cand_item's source_scores is NULL).
 * Each distinct tag text is kept once; candidates point at it. For tools,
 * tests and benches: the stages read a file (ot_cand_load_split_part) or an
 * item (ot_cand_reader) at a time.
 * OT_EINVAL naming the file when the index is missing or incomplete (run
 * ot-retrieve), a file is unreadable, files disagree on the sources, or an
 * id repeats. Caller owns *out (ot_cand_close). */
int ot_cand_load_split(ot_cand_set **out, const char *retrieve_dir, const char *split);
/* File `part` (0-based, index order) of the split alone, as
 * ot_cand_load_split reads it (index checked the same way, no per-source
 * scores). OT_EINVAL as ot_cand_load_split, and naming index.json and its
 * number of files when part is out of range. Caller owns *out
 * (ot_cand_close). */
int ot_cand_load_split_part(ot_cand_set **out, const char *retrieve_dir, const char *split, int part);
/* How many files the split's index lists (index checked as
 * ot_cand_load_split checks it). */
int ot_cand_split_files(const char *retrieve_dir, const char *split, int *n_files);
/* OT_OK when the split's index lists `expect` files, one per data shard or
 * embedding file (`of` names them, e.g. "the train split", and `unit`:
 * "shards"); else OT_EINVAL: "<index.json> lists N candidate files, <of>
 * has M <unit>: run ot-retrieve again". */
int ot_cand_check_files(const char *retrieve_dir, const char *split, int expect, const char *of,
                        const char *unit);
/* Their paths, index order (*paths[n] NULL). Caller owns *paths: free each
 * and the array. */
int ot_cand_split_paths(const char *retrieve_dir, const char *split, char ***paths, int *n_files);
/* *version: hash of their versions (ot_fs_version_hash), which changes when
 * ot-retrieve writes the split again (for the fingerprints of its users). */
int ot_cand_split_version(const char *retrieve_dir, const char *split, uint64_t *version);
/* One file, per-source scores included (same lookups; for tools and
 * tests). Caller owns *out. */
int ot_cand_load_file(ot_cand_set **out, const char *path);
void ot_cand_close(ot_cand_set *s); /* accepts NULL */
int64_t ot_cand_count(const ot_cand_set *s); /* items */
int ot_cand_n_sources(const ot_cand_set *s);
const char *ot_cand_source_name(const ot_cand_set *s, int j);
/* Item i (0..count-1, file order): its id and candidates. Pointers owned by
 * the set, valid until ot_cand_close; source_scores is [n, n_sources], NULL
 * from a set of ot_cand_load_split or ot_cand_load_split_part. */
void ot_cand_item(const ot_cand_set *s, int64_t i, const char **id, const char *const **tags,
                  const float **scores, const float **source_scores, int *n);
/* The item with this id: its index, or -1 (hash lookup). */
int64_t ot_cand_lookup(const ot_cand_set *s, const char *id);
/* Candidates of item `id`: OT_OK, or OT_EINVAL when the set has no such
 * item. Pointers as for ot_cand_item. */
int ot_cand_find(const ot_cand_set *s, const char *id, const char *const **tags, const float **scores,
                 int *n);

/* A split's candidates read item by item, not loaded: what training reads,
 * items at random — a split of millions of items held whole costs about
 * 430 bytes an item on every rank. Row r of file s is item r of data shard
 * s (above). Each read opens its file if needed (at most 8 open, the least
 * recently read closed first; a file's offsets are kept once read, 8 bytes
 * an item) and keeps each distinct tag text once, so tag pointers stay
 * valid until ot_cand_reader_close. One thread. */
typedef struct ot_cand_reader ot_cand_reader;
/* The split's index checked as ot_cand_load_split checks it; no file read
 * yet. Caller owns *out (ot_cand_reader_close). */
int ot_cand_reader_open(ot_cand_reader **out, const char *retrieve_dir, const char *split);
void ot_cand_reader_close(ot_cand_reader *r); /* accepts NULL */
int ot_cand_reader_files(const ot_cand_reader *r);
/* The candidates of row `row` of file `file`, whose id must be `id`:
 * *tags [n] (valid until the reader closes; the array itself until the next
 * read) and *scores [n] (until the next read), best first. OT_EINVAL naming
 * the file when it is unreadable or inconsistent, has no such row, or the
 * row is another item's (the retrieval is of another extraction). */
int ot_cand_reader_get(ot_cand_reader *r, int file, int64_t row, const char *id,
                       const char *const **tags, const float **scores, int *n);

#endif
