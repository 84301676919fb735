/* Shard files (HDF5): the items of one block of a manifest, as extracted.
 *
 *   /frames        uint8 [N,T,H,W,3]  chunk [1,T,H,W,3], deflate; absent when
 *                                     H = W = 0 (extract.store_frames false:
 *                                     the shard holds features only)
 *   /features      float [N,T,D]      optional (D > 0): precomputed per-frame
 *                                     features (e.g. CLIP vectors computed
 *                                     elsewhere), chunk [1,T,D], deflate
 *   /id /title /group  UTF-8 strings [N]
 *   /line          int64 [N]          manifest line of each item
 *   /tags/offsets  int64 [N+1]        item i's tags are text[offsets[i]:offsets[i+1]]
 *   /tags/text     UTF-8 strings [M]
 *   attributes on /: format="open-tag-shard", version, T, H, W, D (0 or
 *   absent: no features), split,
 *   unit, first_line, n_lines, n_items, n_errors, manifest, config (YAML)
 *
 * Writers write to a temp name and rename on commit, so a shard file that
 * exists is complete. Frames are written item by item: memory stays at one
 * item whatever the shard size. */
#ifndef OT_SHARD_H
#define OT_SHARD_H

#include "ot_manifest.h"

#include <stdint.h>

typedef struct ot_shard_writer ot_shard_writer;
/* Create the temp file for `path`, with frames of H x W (0 x 0: none) and
 * per-frame features of width D (0: none; one of the two must be there). Caller owns *out: it ends with ot_shard_commit (publish) or
 * ot_shard_abort (remove). */
int ot_shard_create(ot_shard_writer **out, const char *path, int T, int H, int W, int D,
                    int deflate);
/* Append one item; `frames` is [T,H,W,3] (NULL iff H = 0), `features` [T,D]
 * (NULL iff D = 0). */
int ot_shard_append(ot_shard_writer *w, const ot_item *item, const uint8_t *frames,
                    const float *features);
/* String / integer attributes on the root group (before commit). */
int ot_shard_attr_str(ot_shard_writer *w, const char *name, const char *value);
int ot_shard_attr_i64(ot_shard_writer *w, const char *name, int64_t value);
/* Write the metadata datasets, close, rename to the final path; frees w
 * whatever the outcome. */
int ot_shard_commit(ot_shard_writer *w);
void ot_shard_abort(ot_shard_writer *w); /* accepts NULL */

typedef struct ot_shard ot_shard;
/* Open a shard for reading: metadata is loaded, frames are read on demand.
 * Caller owns *out (ot_shard_close). OT_EINVAL naming the file if it is not
 * a shard. */
int ot_shard_open(ot_shard **out, const char *path);
void ot_shard_close(ot_shard *s); /* accepts NULL */
int64_t ot_shard_count(const ot_shard *s);
void ot_shard_dims(const ot_shard *s, int *T, int *H, int *W);
int ot_shard_feature_dim(const ot_shard *s); /* D; 0: the shard has no features */
const char *ot_shard_id(const ot_shard *s, int64_t i);
const char *ot_shard_title(const ot_shard *s, int64_t i);
const char *ot_shard_group(const ot_shard *s, int64_t i);
int64_t ot_shard_line(const ot_shard *s, int64_t i);
/* Item i's tags: *tags points into the shard (valid until close). */
int ot_shard_tags(const ot_shard *s, int64_t i, char *const **tags);
/* Read item i's frames into out [T,H,W,3]; OT_EINVAL naming the file when
 * the shard has none (H = W = 0). */
int ot_shard_read_frames(ot_shard *s, int64_t i, uint8_t *out);
/* Read item i's features into out [T,D] (the shard must have them). */
int ot_shard_read_features(ot_shard *s, int64_t i, float *out);
/* A root string attribute, malloc'd (caller frees), or NULL if absent. */
char *ot_shard_attr_str_get(ot_shard *s, const char *name);
int ot_shard_attr_i64_get(ot_shard *s, const char *name, int64_t *value);

#endif
