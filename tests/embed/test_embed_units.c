/* pipeline/ot_emb (write, read back, index.json, bad input) and the n-gram
 * title vector of ot-embed (stages/train/ngram.h).
 * usage: test_embed_units [KEEP.h5] — with a path, the round-trip file is
 * also left there for the h5py check (test_emb_h5py.py). */
#include "ngram.h"
#include "ot_common.h"
#include "ot_emb.h"
#include "ot_fs.h"
#include "ot_test.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void test_roundtrip(const char *dir, const char *keep) {
  const char *ids[] = {"a", "b", "c"}, *groups[] = {"g1", "g1", ""};
  const int64_t off[] = {0, 2, 2, 5}; /* b has no tags */
  const char *text[] = {"red", "紅色", "x", "y", "z"};
  float vis[3 * 2] = {1, 0, 0, 1, 0.6f, 0.8f};
  float ng[3 * 5] = {0};
  for (int i = 0; i < 15; i++) ng[i] = (float)i;
  const char *names[] = {"visual", "ngram"};
  const int dims[] = {2, 5};
  const float *vecs[] = {vis, ng};
  char path[4200], sub[4096];
  snprintf(sub, sizeof sub, "%s/split", dir);
  snprintf(path, sizeof path, "%s/emb-000000.h5", sub);
  CHECK(ot_fs_mkdirs(sub) == OT_OK);
  CHECK(ot_emb_write(path, 3, ids, groups, off, text, 2, names, dims, vecs) == OT_OK);
  if (keep) CHECK(ot_emb_write(keep, 3, ids, groups, off, text, 2, names, dims, vecs) == OT_OK);

  ot_emb *e = NULL;
  CHECK(ot_emb_open(&e, path) == OT_OK);
  if (!e) return;
  CHECK(ot_emb_count(e) == 3 && ot_emb_n_vecs(e) == 2);
  CHECK(ot_emb_dim(e, "visual") == 2 && ot_emb_dim(e, "ngram") == 5 && ot_emb_dim(e, "title") == 0);
  CHECK(!strcmp(ot_emb_id(e, 1), "b") && !strcmp(ot_emb_group(e, 0), "g1") && !strcmp(ot_emb_group(e, 2), ""));
  const char *const *tags;
  int n;
  ot_emb_tags(e, 0, &tags, &n);
  CHECK(n == 2 && !strcmp(tags[1], "紅色"));
  ot_emb_tags(e, 1, &tags, &n);
  CHECK(n == 0);
  ot_emb_tags(e, 2, &tags, &n);
  CHECK(n == 3 && !strcmp(tags[0], "x") && !strcmp(tags[2], "z"));
  float got[10];
  CHECK(ot_emb_read(e, "ngram", 1, 2, got) == OT_OK);
  CHECK(got[0] == 5.0f && got[9] == 14.0f);
  CHECK(ot_emb_read(e, "visual", 2, 1, got) == OT_OK && got[0] == 0.6f && got[1] == 0.8f);
  CHECK(ot_emb_read(e, "visual", 2, 2, got) == OT_EINVAL);
  CHECK_MSG("out of range");
  CHECK(ot_emb_read(e, "title", 0, 1, got) == OT_EINVAL);
  CHECK_MSG("no vector 'title'");
  ot_emb_close(e);

  const char *paths[] = {"emb-000000.h5"};
  const int64_t items[] = {3};
  CHECK(ot_emb_set_write_index(dir, "split", 1, paths, items) == OT_OK);
  ot_emb_set *s = NULL;
  CHECK(ot_emb_set_open(&s, dir, "split") == OT_OK);
  if (s) {
    CHECK(ot_emb_set_files(s) == 1 && ot_emb_set_count(s) == 3 && ot_emb_set_file_items(s, 0) == 3);
    CHECK(!strcmp(ot_emb_set_file_path(s, 0), path));
    CHECK(ot_emb_set_dim(s, "ngram") == 5 && ot_emb_set_dim(s, "visual") == 2 && ot_emb_set_dim(s, "x") == 0);
    CHECK(ot_emb_set_n_vecs(s) == 2);
  }
  ot_emb_set_close(s);
  s = NULL;
  CHECK(ot_emb_set_open(&s, dir, "nosuch") == OT_EINVAL && !s);
  CHECK_MSG("run ot-embed first");

  /* not an embedding file; bad vector names */
  char bad[4200];
  snprintf(bad, sizeof bad, "%s/not.h5", dir);
  CHECK(ot_fs_write_atomic(bad, "hello", 5) == OT_OK);
  e = NULL;
  CHECK(ot_emb_open(&e, bad) == OT_EINVAL && !e);
  const char *slash[] = {"a/b"};
  CHECK(ot_emb_write(path, 3, ids, groups, off, text, 1, slash, dims, vecs) == OT_EINVAL);
}

static float dot(const float *a, const float *b, int n) {
  double s = 0;
  for (int i = 0; i < n; i++) s += (double)a[i] * b[i];
  return (float)s;
}

static void test_ngram(void) {
  enum { D = 4096 };
  static float tf[D], a[D], b[D], idf[D];
  for (int i = 0; i < D; i++) idf[i] = 1.0f;
  /* "ab c": code points a b ' ' c -> 1-grams a b c (the lone space is not a
   * gram), 2-grams "ab" "b " " c", 3-grams "ab " "b c" = 8 */
  CHECK(ot_ngram_counts("ab c", D, tf) == 8);
  /* Chinese counts code points, not bytes: 3 + 2 + 1 grams of "紅蘋果" */
  CHECK(ot_ngram_counts("紅蘋果", D, tf) == 6);
  CHECK(ot_ngram_counts("", D, tf) == 0 && ot_ngram_counts(NULL, D, tf) == 0);
  CHECK(ot_ngram_counts("\xff\xfe", D, tf) == 0); /* invalid UTF-8: no grams, no failure */
  /* normalised before counting: case, width and white space do not matter */
  ot_ngram_vector("Red  Apple", idf, D, a);
  ot_ngram_vector("ｒｅｄ apple", idf, D, b);
  CHECK(fabsf(dot(a, a, D) - 1.0f) < 1e-5f);
  CHECK(fabsf(dot(a, b, D) - 1.0f) < 1e-5f);
  /* similar titles are closer than unrelated ones */
  ot_ngram_vector("red apples", idf, D, b);
  float close = dot(a, b, D);
  ot_ngram_vector("green banana", idf, D, b);
  CHECKF(close > 0.7f && dot(a, b, D) < close, "%g vs %g", close, dot(a, b, D));
  ot_ngram_vector("紅蘋果", idf, D, a);
  ot_ngram_vector("青蘋果", idf, D, b);
  float zh = dot(a, b, D);
  CHECKF(zh > 0.2f && zh < 0.9f, "shared 蘋果: %g", zh);
  ot_ngram_vector("", idf, D, a);
  CHECK(dot(a, a, D) == 0.0f);
  /* idf weighs: a gram made rare counts for more */
  ot_ngram_counts("b", D, tf);
  for (int i = 0; i < D; i++)
    if (tf[i] > 0) idf[i] = 5.0f;
  ot_ngram_vector("a b", idf, D, a);
  ot_ngram_counts("a", D, tf);
  float wa = 0, wb = 0;
  ot_ngram_counts("b", D, b);
  for (int i = 0; i < D; i++) {
    if (tf[i] > 0) wa = a[i];
    if (b[i] > 0) wb = a[i];
  }
  CHECKF(fabsf(wb - 5.0f * wa) < 1e-5f, "b weighs 5x a: %g vs %g", wb, wa);
}

int main(int argc, char **argv) {
  char dir[] = "/tmp/ot-emb-test-XXXXXX";
  if (!mkdtemp(dir)) return 1;
  test_roundtrip(dir, argc > 1 ? argv[1] : NULL);
  test_ngram();
  char cmd[256];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
  return ot_test_report();
}
