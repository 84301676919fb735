#include "ot_dataset.h"

#include "ot_common.h"
#include "ot_fs.h"
#include "ot_hash.h"
#include "ot_strmap.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ot_dataset {
  int n_shards;
  ot_shard **shards;
  int64_t *first;  /* [n_shards+1] global index of each shard's first item */
  int T, H, W, D;
  uint64_t version; /* ot_dataset_version */
};

int ot_dataset_open(ot_dataset **out, const char *split_dir) {
  char path[4200];
  snprintf(path, sizeof path, "%s/index.json", split_dir);
  json_error_t jerr;
  json_t *idx = json_load_file(path, 0, &jerr);
  if (!idx)
    return ot_fail(OT_EINVAL, "%s: cannot read dataset index (%s); run ot-extract first", path, jerr.text);
  json_t *shards = json_object_get(idx, "shards");
  if (!json_is_array(shards)) {
    json_decref(idx);
    return ot_fail(OT_EINVAL, "%s: field 'shards' missing", path);
  }
  ot_dataset *d = ot_xcalloc(1, sizeof *d);
  d->version = OT_FNV64_INIT;
  size_t n = json_array_size(shards);
  d->shards = ot_xcalloc(n ? n : 1, sizeof *d->shards);
  d->first = ot_xcalloc(n + 1, sizeof *d->first);
  int st = OT_OK;
  for (size_t i = 0; i < n && st == OT_OK; i++) {
    const char *name = json_string_value(json_object_get(json_array_get(shards, i), "shard"));
    if (!name) { st = ot_fail(OT_EINVAL, "%s: shard %zu has no 'shard' name", path, i); break; }
    char sp[4400];
    snprintf(sp, sizeof sp, "%s/%s", split_dir, name);
    if ((st = ot_shard_open(&d->shards[i], sp))) break;
    d->version = ot_fs_version_hash(sp, d->version);
    d->n_shards++;
    int T, H, W;
    ot_shard_dims(d->shards[i], &T, &H, &W);
    const int D = ot_shard_feature_dim(d->shards[i]);
    if (i == 0) d->T = T, d->H = H, d->W = W, d->D = D;
    else if (T != d->T || H != d->H || W != d->W)
      st = ot_fail(OT_EINVAL, "%s: frames [%d,%d,%d] differ from the first shard's [%d,%d,%d]", sp, T, H,
                   W, d->T, d->H, d->W);
    else if (D != d->D)
      st = ot_fail(OT_EINVAL, "%s: features of width %d differ from the first shard's (%d; 0 = none)",
                   sp, D, d->D);
    d->first[i + 1] = d->first[i] + ot_shard_count(d->shards[i]);
  }
  json_decref(idx);
  if (st) { ot_dataset_close(d); return st; }
  *out = d;
  return OT_OK;
}

void ot_dataset_close(ot_dataset *d) {
  if (!d) return;
  for (int i = 0; i < d->n_shards; i++) ot_shard_close(d->shards[i]);
  free(d->shards);
  free(d->first);
  free(d);
}

int64_t ot_dataset_count(const ot_dataset *d) { return d->first[d->n_shards]; }
void ot_dataset_dims(const ot_dataset *d, int *T, int *H, int *W) { *T = d->T, *H = d->H, *W = d->W; }
int ot_dataset_feature_dim(const ot_dataset *d) { return d->D; }

int ot_dataset_shard_count(const ot_dataset *d) { return d->n_shards; }
uint64_t ot_dataset_version(const ot_dataset *d) { return d->version; }

int ot_dataset_check_disjoint(const ot_dataset *train, const char *train_dir,
                              const ot_dataset *other, const char *other_dir) {
  ot_strmap in_other = {0};
  for (int64_t i = 0; i < ot_dataset_count(other); i++) {
    int64_t local;
    const ot_shard *s = ot_dataset_locate(other, i, &local);
    ot_strmap_put(&in_other, ot_shard_id(s, local), i);
  }
  int64_t shared = 0;
  char ids[800] = "";
  for (int64_t i = 0; i < ot_dataset_count(train); i++) {
    int64_t local;
    const ot_shard *s = ot_dataset_locate(train, i, &local);
    const char *id = ot_shard_id(s, local);
    if (ot_strmap_get(&in_other, id) < 0) continue;
    if (shared++ < 3) {
      const size_t at = strlen(ids);
      snprintf(ids + at, sizeof ids - at, "%s'%.200s'", at ? ", " : "", id);
    }
  }
  ot_strmap_free(&in_other);
  if (!shared) return OT_OK;
  return ot_fail(OT_EINVAL,
                 "%s: %lld of its %lld items are also in %s (%s%s): scores on items the models "
                 "trained on do not measure tagging of unseen items; make the splits disjoint "
                 "(ids identify items)",
                 other_dir, (long long)shared, (long long)ot_dataset_count(other), train_dir, ids,
                 shared > 3 ? ", ..." : "");
}

void ot_dataset_shard_range(const ot_dataset *d, int s, int64_t *first, int64_t *count) {
  OT_ASSERT(s >= 0 && s < d->n_shards);
  *first = d->first[s];
  *count = d->first[s + 1] - d->first[s];
}

ot_shard *ot_dataset_locate(const ot_dataset *d, int64_t i, int64_t *local) {
  return d->shards[ot_dataset_locate_index(d, i, local)];
}

ot_shard *ot_dataset_shard(const ot_dataset *d, int s) {
  OT_ASSERT(s >= 0 && s < d->n_shards);
  return d->shards[s];
}

int ot_dataset_locate_index(const ot_dataset *d, int64_t i, int64_t *local) {
  OT_ASSERT(i >= 0 && i < ot_dataset_count(d));
  int lo = 0, hi = d->n_shards - 1; /* last shard whose first <= i */
  while (lo < hi) {
    int mid = (lo + hi + 1) / 2;
    if (d->first[mid] <= i) lo = mid; else hi = mid - 1;
  }
  *local = i - d->first[lo];
  return lo;
}
