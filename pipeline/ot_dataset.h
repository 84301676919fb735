/* A split of an extracted dataset (data.dir/<split>/): the shards listed in
 * its index.json, opened together, items addressed by one global index in
 * manifest order. */
#ifndef OT_DATASET_H
#define OT_DATASET_H

#include "ot_shard.h"

#include <stdint.h>

typedef struct ot_dataset ot_dataset;
/* Open every shard of `split_dir`. OT_EINVAL naming the file when the index is
 * missing or unreadable, a listed shard is missing, or shards disagree on
 * T/H/W or on the feature width D. Caller owns *out (ot_dataset_close). */
int ot_dataset_open(ot_dataset **out, const char *split_dir);
void ot_dataset_close(ot_dataset *d); /* accepts NULL */
int64_t ot_dataset_count(const ot_dataset *d);
void ot_dataset_dims(const ot_dataset *d, int *T, int *H, int *W);
int ot_dataset_feature_dim(const ot_dataset *d); /* D of its shards' features; 0: none */
int ot_dataset_shard_count(const ot_dataset *d);
/* Hash of its shard files' versions (ot_fs_version_hash): changes when the
 * split is extracted again, for the fingerprints of what is made from it. */
uint64_t ot_dataset_version(const ot_dataset *d);
/* OT_EINVAL when an item of `other` (the split at other_dir: val, test) has
 * the id of an item of `train`, naming both folders, the count and up to
 * three ids: a split that holds training items scores memory, not the
 * tagging of unseen items (ids identify items). */
int ot_dataset_check_disjoint(const ot_dataset *train, const char *train_dir,
                              const ot_dataset *other, const char *other_dir);
/* Global index of shard s's first item, and its item count. */
void ot_dataset_shard_range(const ot_dataset *d, int s, int64_t *first, int64_t *count);
/* The shard holding global item i, and i's index inside it. */
ot_shard *ot_dataset_locate(const ot_dataset *d, int64_t i, int64_t *local);
/* The same shard's index (0..shard_count-1), and shard s itself. */
int ot_dataset_locate_index(const ot_dataset *d, int64_t i, int64_t *local);
ot_shard *ot_dataset_shard(const ot_dataset *d, int s);

#endif
