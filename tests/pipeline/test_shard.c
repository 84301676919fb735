/* Shard files: write, read back, atomic publish; h5py reads them too
 * (checked by check_shard.py from the CMake test). */
#include "ot_common.h"
#include "ot_fs.h"
#include "ot_shard.h"
#include "ot_test.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { T = 2, H = 3, W = 5, D = 3, N_ITEMS = 4 };

/* The test's shard at `path`: N_ITEMS items whose frames and features are
 * functions of their index; nothing is visible before the commit. */
static void write_items(const char *path) {
  uint8_t frames[T * H * W * 3];
  float feats[T * D];
  ot_shard_writer *w;
  remove(path);
  CHECK(ot_shard_create(&w, path, T, H, W, D, 4) == OT_OK);
  for (int i = 0; i < N_ITEMS; i++) {
    for (size_t k = 0; k < sizeof frames; k++) frames[k] = (uint8_t)(i * 31 + k);
    for (int k = 0; k < T * D; k++) feats[k] = (float)i * 100.0f + (float)k * 0.5f - 1.0f;
    char id[32], *tags[3] = {"猫", "cat", "animal"};
    snprintf(id, sizeof id, "item-%d", i);
    ot_item it = {.id = id, .path = "p", .title = i == 1 ? "标题 ✓" : "t", .group = "g",
                  .tags = tags, .n_tags = i % 4, .line = 10 + i};
    CHECK(ot_shard_append(w, &it, frames, feats) == OT_OK);
  }
  CHECK(ot_shard_attr_str(w, "split", "train") == OT_OK);
  CHECK(!ot_fs_exists(path));
  CHECK(ot_shard_commit(w) == OT_OK);
  CHECK(ot_fs_exists(path));
}

/* Many shards (more than a process keeps open): none stays open after
 * ot_shard_open, at most 128 while their frames are read in turn, each read
 * gives its own shard's bytes, and a shard whose file is gone by then says
 * which. */
static void many_shards(void) {
  enum { N_SHARDS = 140 };
  ot_shard *s[N_SHARDS];
  uint8_t frames[T * H * W * 3], back[sizeof frames];
  for (int f = 0; f < N_SHARDS; f++) {
    char path[64];
    snprintf(path, sizeof path, "test_shard_many_%02d.h5", f);
    ot_shard_writer *w;
    CHECK(ot_shard_create(&w, path, T, H, W, 0, 0) == OT_OK);
    for (int i = 0; i < 2; i++) {
      for (size_t k = 0; k < sizeof frames; k++) frames[k] = (uint8_t)(f * 7 + i * 3 + k);
      char id[32];
      snprintf(id, sizeof id, "s%d-%d", f, i);
      ot_item it = {.id = id, .path = "p", .title = "t", .group = "g", .line = 1 + i};
      CHECK(ot_shard_append(w, &it, frames, NULL) == OT_OK);
    }
    CHECK(ot_shard_commit(w) == OT_OK);
    CHECK(ot_shard_open(&s[f], path) == OT_OK);
  }
  CHECKF(ot_test_open_files("test_shard_many_") == 0, "%d shard files open after opening",
         ot_test_open_files("test_shard_many_"));
  int right = 1, most = 0;
  for (int round = 0; round < 2; round++)
    for (int f = 0; f < N_SHARDS; f++) {
      const int i = (f + round) % 2;
      CHECK(ot_shard_read_frames(s[f], i, back) == OT_OK);
      for (size_t k = 0; k < sizeof back; k++) right &= back[k] == (uint8_t)(f * 7 + i * 3 + k);
      const int now = ot_test_open_files("test_shard_many_");
      most = now > most ? now : most;
    }
  CHECK(right);
  CHECKF(most == 128, "%d shard files open at most", most);
  /* shard 0 was read longest ago: its file is closed, and now gone */
  remove("test_shard_many_00.h5");
  CHECK(ot_shard_read_frames(s[0], 0, back) == OT_EINVAL);
  CHECK_MSG("test_shard_many_00.h5: not an HDF5 file or unreadable");
  CHECK(!strcmp(ot_shard_id(s[0], 1), "s0-1")); /* the metadata stays */
  for (int f = 0; f < N_SHARDS; f++) {
    ot_shard_close(s[f]);
    char path[64];
    snprintf(path, sizeof path, "test_shard_many_%02d.h5", f);
    remove(path);
  }
  CHECK(ot_test_open_files("test_shard_many_") == 0);
}

int main(int argc, char **argv) {
  const char *path = argc > 1 ? argv[1] : "test_shard.h5";
  const int n = N_ITEMS;
  uint8_t frames[T * H * W * 3], back[sizeof frames];
  float feats[T * D], feats_back[T * D];
  ot_shard_writer *w;
  for (size_t k = 0; k < sizeof frames; k++) frames[k] = (uint8_t)(7 * k); /* for the shards below */
  for (int k = 0; k < T * D; k++) feats[k] = 0.25f * (float)k - 3.0f;
  write_items(path);

  ot_shard *s;
  CHECK(ot_shard_open(&s, path) == OT_OK);
  int t, h, ww;
  ot_shard_dims(s, &t, &h, &ww);
  CHECK(ot_shard_count(s) == n && t == T && h == H && ww == W && ot_shard_feature_dim(s) == D);
  CHECK(!strcmp(ot_shard_id(s, 2), "item-2") && !strcmp(ot_shard_title(s, 1), "标题 ✓"));
  CHECK(ot_shard_line(s, 3) == 13);
  char *const *tags;
  CHECK(ot_shard_tags(s, 0, &tags) == 0);
  CHECK(ot_shard_tags(s, 3, &tags) == 3 && !strcmp(tags[0], "猫") && !strcmp(tags[2], "animal"));
  CHECK(ot_shard_read_frames(s, 3, back) == OT_OK);
  int same = 1;
  for (size_t k = 0; k < sizeof back; k++) same &= back[k] == (uint8_t)(3 * 31 + k);
  CHECK(same);
  CHECK(ot_shard_read_features(s, 2, feats_back) == OT_OK);
  for (int k = 0; k < T * D; k++) same &= feats_back[k] == 200.0f + (float)k * 0.5f - 1.0f;
  CHECK(same);
  char *split = ot_shard_attr_str_get(s, "split");
  CHECK(split && !strcmp(split, "train"));
  free(split);
  ot_shard_close(s);

  /* the same items written again, a second later: the same bytes (HDF5's
   * object timestamps, in seconds, are off) */
  {
    nanosleep(&(struct timespec){1, 100 * 1000 * 1000}, NULL);
    char again[4200];
    snprintf(again, sizeof again, "%s.again.h5", path);
    write_items(again);
    char *a = NULL, *b = NULL;
    size_t na = 0, nb = 0;
    CHECK(ot_fs_read_all(path, &a, &na) == OT_OK && ot_fs_read_all(again, &b, &nb) == OT_OK);
    CHECK(na > 0 && na == nb && !memcmp(a, b, na));
    free(a);
    free(b);
    remove(again);
  }

  /* a shard without features says so */
  CHECK(ot_shard_create(&w, "test_shard_nofeat.h5", T, H, W, 0, 0) == OT_OK);
  ot_item plain = {.id = "x", .path = "p", .title = "t", .group = "g", .line = 1};
  CHECK(ot_shard_append(w, &plain, frames, NULL) == OT_OK);
  CHECK(ot_shard_commit(w) == OT_OK);
  CHECK(ot_shard_open(&s, "test_shard_nofeat.h5") == OT_OK);
  CHECK(ot_shard_feature_dim(s) == 0 && ot_shard_count(s) == 1);
  ot_shard_close(s);
  remove("test_shard_nofeat.h5");

  /* features only (extract.store_frames false): no frames dataset, and
   * reading frames is an error naming the file, not a crash */
  CHECK(ot_shard_create(&w, "test_shard_featonly.h5", T, 0, 0, D, 0) == OT_OK);
  CHECK(ot_shard_append(w, &plain, NULL, feats) == OT_OK);
  CHECK(ot_shard_commit(w) == OT_OK);
  CHECK(ot_shard_open(&s, "test_shard_featonly.h5") == OT_OK);
  ot_shard_dims(s, &t, &h, &ww);
  CHECK(t == T && h == 0 && ww == 0 && ot_shard_feature_dim(s) == D);
  CHECK(ot_shard_read_features(s, 0, feats_back) == OT_OK);
  for (int k = 0; k < T * D; k++) same &= feats_back[k] == feats[k];
  CHECK(same);
  CHECK(ot_shard_read_frames(s, 0, back) == OT_EINVAL);
  CHECK_MSG("test_shard_featonly.h5: the shard has no frames");
  ot_shard_close(s);
  remove("test_shard_featonly.h5");

  /* abort leaves nothing behind */
  CHECK(ot_shard_create(&w, "test_shard_aborted.h5", T, H, W, 0, 0) == OT_OK);
  ot_shard_abort(w);
  CHECK(!ot_fs_exists("test_shard_aborted.h5"));

  /* not a shard */
  CHECK(ot_fs_write_atomic("test_not_shard.h5", "hello", 5) == OT_OK);
  CHECK(ot_shard_open(&s, "test_not_shard.h5") == OT_EINVAL);
  CHECK_MSG("test_not_shard.h5: not an HDF5 file");
  remove("test_not_shard.h5");
  many_shards();
  return ot_test_report();
}
