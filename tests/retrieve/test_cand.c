/* Candidates files (stages/retrieve/ot_cand.h): write two files of a split,
 * load the split, look items up by id (a tag text shared by items of both
 * files is kept once), and refuse inconsistent input. */
#include "ot_cand.h"
#include "ot_common.h"
#include "ot_fs.h"
#include "ot_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void) {
  char dir[] = "/tmp/ot-cand-test-XXXXXX";
  if (!mkdtemp(dir)) return 1;
  char sub[4096], p0[4200], p1[4200];
  snprintf(sub, sizeof sub, "%s/val", dir);
  CHECK(ot_fs_mkdirs(sub) == OT_OK);
  snprintf(p0, sizeof p0, "%s/cand-000000.h5", sub);
  snprintf(p1, sizeof p1, "%s/cand-000001.h5", sub);
  const char *src[] = {"video", "ngram"};
  /* file 0: items x (2 candidates) and y (none) */
  const char *ids0[] = {"x", "y"}, *tags0[] = {"红色", "warm"};
  const int64_t off0[] = {0, 2, 2};
  const float sc0[] = {0.9f, 0.25f}, ss0[] = {0.8f, 1.0f, 0.5f, 0.0f};
  CHECK(ot_cand_write(p0, 2, ids0, off0, tags0, sc0, 2, src, ss0) == OT_OK);
  /* file 1: item z (2 candidates, "warm" as x has it) */
  const char *ids1[] = {"z"}, *tags1[] = {"blue", "warm"};
  const int64_t off1[] = {0, 2};
  const float sc1[] = {0.5f, 0.125f}, ss1[] = {0.5f, 0.5f, 0.25f, 0.0f};
  CHECK(ot_cand_write(p1, 1, ids1, off1, tags1, sc1, 2, src, ss1) == OT_OK);
  const char *paths[] = {"cand-000000.h5", "cand-000001.h5"};
  const int64_t items[] = {2, 1};
  CHECK(ot_cand_write_index(dir, "val", 2, src, 2, paths, items) == OT_OK);

  ot_cand_set *s = NULL;
  CHECK(ot_cand_load_split(&s, dir, "val") == OT_OK);
  if (s) {
    CHECK(ot_cand_count(s) == 3 && ot_cand_n_sources(s) == 2 && !strcmp(ot_cand_source_name(s, 1), "ngram"));
    const char *const *tags;
    const float *scores, *per;
    int n;
    CHECK(ot_cand_find(s, "x", &tags, &scores, &n) == OT_OK && n == 2 && !strcmp(tags[0], "红色") &&
          scores[1] == 0.25f);
    const char *warm_x = n == 2 ? tags[1] : NULL;
    CHECK(ot_cand_find(s, "y", &tags, &scores, &n) == OT_OK && n == 0);
    CHECK(ot_cand_find(s, "z", &tags, &scores, &n) == OT_OK && n == 2 && !strcmp(tags[0], "blue") &&
          !strcmp(tags[1], "warm") && scores[1] == 0.125f);
    CHECK(tags[1] == warm_x); /* one copy of each text */
    CHECK(ot_cand_find_ctx(s, "z", &tags, &scores, &n) == OT_OK && n == 2 && scores[0] == 0.5f);
    CHECK(ot_cand_find(s, "w", &tags, &scores, &n) == OT_EINVAL);
    CHECK_MSG("'w'");
    const char *id;
    /* a split's set leaves the per-source scores on disk; one file has them */
    ot_cand_item(s, 0, &id, &tags, &scores, &per, &n);
    CHECK(!strcmp(id, "x") && n == 2 && !per);
    CHECK(ot_cand_lookup(s, "z") == 2 && ot_cand_lookup(s, "") == -1);
    ot_cand_close(s);
    s = NULL;
    CHECK(ot_cand_load_file(&s, p0) == OT_OK && s);
    if (s) {
      ot_cand_item(s, 0, &id, &tags, &scores, &per, &n);
      CHECK(!strcmp(id, "x") && per && per[0] == 0.8f && per[1] == 1.0f && per[2] == 0.5f && per[3] == 0.0f);
    }
  }
  ot_cand_close(s);

  /* a repeated id across files, and files with other sources, are refused */
  CHECK(ot_cand_write(p1, 1, ids0, off1, tags1, sc1, 2, src, ss1) == OT_OK);
  s = NULL;
  CHECK(ot_cand_load_split(&s, dir, "val") == OT_EINVAL && !s);
  CHECK_MSG("repeats");
  const char *other[] = {"video", "title"};
  CHECK(ot_cand_write(p1, 1, ids1, off1, tags1, sc1, 2, other, ss1) == OT_OK);
  CHECK(ot_cand_load_split(&s, dir, "val") == OT_EINVAL && !s);
  CHECK_MSG("sources differ");
  CHECK(ot_cand_load_split(&s, dir, "test") == OT_EINVAL && !s);
  CHECK_MSG("run ot-retrieve first");

  char cmd[256];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
  return ot_test_report();
}
