/* A one-shard split written by the unit tests of tests/train: open its
 * shard, append items, then close it with its index.json — what ot-extract
 * writes, so ot_dataset_open reads it. */
#ifndef OT_UNITS_SPLIT_H
#define OT_UNITS_SPLIT_H

#include "ot_common.h"
#include "ot_fs.h"
#include "ot_shard.h"
#include "ot_test.h"

#include <stdio.h>
#include <string.h>

/* <dir>/shard-000000.h5, created anew, frames of T x H x W. */
static ot_shard_writer *units_split_open(const char *dir, int T, int H, int W) {
  ot_fs_mkdirs(dir);
  char path[512];
  snprintf(path, sizeof path, "%s/shard-000000.h5", dir);
  remove(path);
  ot_shard_writer *w = NULL;
  CHECK(ot_shard_create(&w, path, T, H, W, 0, 1) == OT_OK);
  return w;
}

/* Commit the shard and write <dir>/index.json naming it. */
static void units_split_close(const char *dir, ot_shard_writer *w) {
  CHECK(ot_shard_commit(w) == OT_OK);
  char path[512];
  snprintf(path, sizeof path, "%s/index.json", dir);
  const char *idx = "{\"shards\": [{\"shard\": \"shard-000000.h5\"}]}";
  CHECK(ot_fs_write_atomic(path, idx, strlen(idx)) == OT_OK);
}

#endif
