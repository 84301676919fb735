/* Candidates files (stages/retrieve/ot_cand.h): write two files of a split,
 * load the split, look items up by id (a tag text shared by items of both
 * files is kept once); load each file of it alone (ot-tag's per-shard
 * load): exactly that file's items, with the candidates the whole split
 * gives them; read it item by item (training's reader): the same
 * candidates, a row that is not the item's refused; and refuse inconsistent
 * input (out-of-range part, an index entry without a path, repeated ids,
 * other sources, no index). */
#include "ot_cand.h"
#include "ot_common.h"
#include "ot_fs.h"
#include "ot_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* More files than the reader keeps open (8), read round-robin twice: each
 * item its own candidate, at most 8 files open, none once closed. */
static void reader_many_files(const char *dir) {
  enum { N_FILES = 11 };
  char sub[4000], path[4200], names[N_FILES][32], *paths[N_FILES];
  int64_t items[N_FILES];
  snprintf(sub, sizeof sub, "%s/many", dir);
  CHECK(ot_fs_mkdirs(sub) == OT_OK);
  const char *src[] = {"video"};
  for (int f = 0; f < N_FILES; f++) {
    char id[16], tag[16];
    snprintf(id, sizeof id, "item%d", f);
    snprintf(tag, sizeof tag, "tag%d", f);
    const char *ids[] = {id}, *tags[] = {tag};
    const int64_t off[] = {0, 1};
    const float sc[] = {(float)f}, ss[] = {1.0f};
    snprintf(names[f], sizeof names[f], "cand-many-%02d.h5", f);
    snprintf(path, sizeof path, "%s/cand-many-%02d.h5", sub, f);
    CHECK(ot_cand_write(path, 1, ids, off, tags, sc, 1, src, ss) == OT_OK);
    paths[f] = names[f], items[f] = 1;
  }
  CHECK(ot_cand_write_index(dir, "many", 1, src, N_FILES, (const char *const *)paths, items) == OT_OK);
  ot_cand_reader *r = NULL;
  CHECK(ot_cand_reader_open(&r, dir, "many") == OT_OK && r);
  int right = 1, most = 0;
  for (int pass = 0; pass < 2 && r; pass++)
    for (int f = 0; f < N_FILES; f++) {
      char id[16], tag[16];
      snprintf(id, sizeof id, "item%d", f);
      snprintf(tag, sizeof tag, "tag%d", f);
      const char *const *tags;
      const float *scores;
      int n;
      right &= ot_cand_reader_get(r, f, 0, id, &tags, &scores, &n) == OT_OK && n == 1 &&
               !strcmp(tags[0], tag) && scores[0] == (float)f;
      const int now = ot_test_open_files("cand-many-");
      most = now > most ? now : most;
    }
  CHECK(right);
  CHECKF(most == 8, "%d candidates files open at most", most);
  ot_cand_reader_close(r);
  CHECK(ot_test_open_files("cand-many-") == 0);
}

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
  s = NULL;

  /* each file alone: its items in file order, each with the candidates the
   * whole split gives it */
  ot_cand_set *whole = NULL;
  CHECK(ot_cand_load_split(&whole, dir, "val") == OT_OK);
  const char *const *file_ids[] = {ids0, ids1};
  for (int f = 0; f < 2 && whole; f++) {
    CHECK(ot_cand_load_split_part(&s, dir, "val", f) == OT_OK && s);
    if (!s) continue;
    CHECKF(ot_cand_count(s) == items[f], "file %d: %lld items", f, (long long)ot_cand_count(s));
    CHECK(ot_cand_n_sources(s) == 2 && !strcmp(ot_cand_source_name(s, 0), "video"));
    for (int64_t i = 0; i < ot_cand_count(s) && i < items[f]; i++) {
      const char *id, *const *pt, *const *wt;
      const float *ps, *ws, *per;
      int pn, wn;
      ot_cand_item(s, i, &id, &pt, &ps, &per, &pn);
      CHECKF(!strcmp(id, file_ids[f][i]) && !per, "file %d item %lld: '%s'", f, (long long)i, id);
      CHECK(ot_cand_find(whole, id, &wt, &ws, &wn) == OT_OK && wn == pn);
      for (int k = 0; k < pn && k < wn; k++)
        CHECKF(!strcmp(pt[k], wt[k]) && ps[k] == ws[k], "'%s' candidate %d", id, k);
    }
    /* the other file's items are not in it */
    CHECK(ot_cand_lookup(s, f == 0 ? "z" : "x") == -1);
    ot_cand_close(s);
    s = NULL;
  }
  /* read item by item (training): the whole load's candidates, a text
   * shared by items of two files one pointer, and the row must be the
   * item's */
  ot_cand_reader *r = NULL;
  CHECK(ot_cand_reader_open(&r, dir, "val") == OT_OK && r && ot_cand_reader_files(r) == 2);
  const char *warm[2] = {NULL, NULL};
  for (int pass = 0; pass < 2 && r && whole; pass++)
    for (int f = 1; f >= 0; f--) /* the second file first: files are opened as asked */
      for (int64_t i = 0; i < items[f]; i++) {
        const char *id = file_ids[f][i], *const *rt, *const *wt;
        const float *rs, *ws;
        int rn, wn;
        CHECKF(ot_cand_reader_get(r, f, i, id, &rt, &rs, &rn) == OT_OK, "%s: %s", id, ot_errmsg());
        CHECK(ot_cand_find(whole, id, &wt, &ws, &wn) == OT_OK && wn == rn);
        for (int k = 0; k < rn && k < wn; k++) {
          CHECKF(!strcmp(rt[k], wt[k]) && rs[k] == ws[k], "'%s' candidate %d", id, k);
          if (!strcmp(rt[k], "warm")) warm[f] = rt[k];
        }
      }
  CHECK(warm[0] && warm[0] == warm[1]);
  if (r) {
    const char *const *rt;
    const float *rs;
    int rn;
    CHECK(ot_cand_reader_get(r, 0, 1, "x", &rt, &rs, &rn) == OT_EINVAL);
    CHECK_MSG("cand-000000.h5: row 1 is another item's, not 'x'");
    CHECK(ot_cand_reader_get(r, 1, 1, "q", &rt, &rs, &rn) == OT_EINVAL);
    CHECK_MSG("cand-000001.h5: no row 1 (1 items)");
    CHECK(ot_cand_reader_get(r, 2, 0, "x", &rt, &rs, &rn) == OT_EINVAL);
    CHECK_MSG("no file 2 (the split's index lists 2)");
    CHECK(ot_cand_reader_get(r, 0, 0, "x", &rt, &rs, &rn) == OT_OK && rn == 2); /* still reads */
  }
  ot_cand_reader_close(r);
  r = NULL;
  CHECK(ot_cand_reader_open(&r, dir, "test") == OT_EINVAL && !r);
  CHECK_MSG("run ot-retrieve first");
  ot_cand_close(whole);
  int n_files = -1;
  CHECK(ot_cand_split_files(dir, "val", &n_files) == OT_OK && n_files == 2);
  CHECK(ot_cand_check_files(dir, "val", 2, "the val split", "shards") == OT_OK);
  CHECK(ot_cand_check_files(dir, "val", 3, "the val split", "shards") == OT_EINVAL);
  CHECK_MSG("val/index.json lists 2 candidate files, the val split has 3 shards: run ot-retrieve again");
  CHECK(ot_cand_load_split_part(&s, dir, "val", 2) == OT_EINVAL && !s);
  CHECK_MSG("index.json lists 2 candidate files, there is no file 2");
  CHECK(ot_cand_load_split_part(&s, dir, "val", -1) == OT_EINVAL && !s);
  CHECK_MSG("no file -1");
  CHECK(ot_cand_load_split_part(&s, dir, "test", 0) == OT_EINVAL && !s);
  CHECK_MSG("run ot-retrieve first");
  CHECK(ot_cand_split_files(dir, "test", &n_files) == OT_EINVAL);
  CHECK_MSG("run ot-retrieve first");
  /* an index entry without a path is refused by both loads, whichever
   * file is asked for */
  char index[4300];
  snprintf(index, sizeof index, "%s/index.json", sub);
  const char *no_path = "{\"split\": \"val\", \"sources\": [\"video\", \"ngram\"], \"files\": "
                        "[{\"path\": \"cand-000000.h5\", \"items\": 2}, {\"items\": 1}], \"complete\": true}";
  CHECK(ot_fs_write_atomic(index, no_path, strlen(no_path)) == OT_OK);
  CHECK(ot_cand_load_split_part(&s, dir, "val", 0) == OT_EINVAL && !s);
  CHECK_MSG("file 1 has no path");
  CHECK(ot_cand_split_files(dir, "val", &n_files) == OT_EINVAL);
  CHECK_MSG("file 1 has no path");
  CHECK(ot_cand_load_split(&s, dir, "val") == OT_EINVAL && !s);
  CHECK_MSG("file 1 has no path");
  CHECK(ot_cand_write_index(dir, "val", 2, src, 2, paths, items) == OT_OK);

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

  reader_many_files(dir);
  char cmd[256];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
  return ot_test_report();
}
