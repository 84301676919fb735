/* The title lexicon (stages/train/lexicon.h): how titles are cut into
 * pieces (words, CJK characters, punctuation), the counts by group and the
 * held-out prior on a small written dataset, scores, and the round trip
 * through a checkpoint. Runs in the current directory. */
#include "ckpt.h"
#include "lexicon.h"
#include "ot_common.h"
#include "ot_dataset.h"
#include "ot_fs.h"
#include "ot_h5.h"
#include "ot_shard.h"
#include "ot_test.h"
#include "units_split.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The pieces of `title` are exactly `want` (NULL-terminated), in order. */
static int pieces_are(const char *title, int max_units, const char *const *want) {
  ot_lexicon_hits h;
  if (ot_lexicon_pieces(title, max_units, &h) != OT_OK) return 0;
  int ok = 1, n = 0;
  for (; want[n]; n++) ok &= n < h.n && !strcmp(h.text[n], want[n]);
  ok &= n == h.n;
  if (!ok)
    for (int i = 0; i < h.n; i++)
      fprintf(stderr, "  piece %d of '%s': '%s'\n", i, title, h.text[i]);
  ot_lexicon_hits_free(&h);
  return ok;
}

static void test_pieces(void) {
  CHECK(pieces_are("Flag: United States", 3,
                   (const char *const[]){"flag", "united", "united states", "states", NULL}));
  CHECK(pieces_are("thumbs up sign", 2,
                   (const char *const[]){"thumbs", "thumbs up", "up", "up sign", "sign", NULL}));
  /* dashes and apostrophes stay inside words; a repeated word is one piece */
  CHECK(pieces_are("Worker’s  T-Shirt worker’s", 1,
                   (const char *const[]){"worker’s", "t-shirt", NULL}));
  /* CJK: one unit per character, joined without spaces; punctuation cuts */
  CHECK(pieces_are("按键: *", 4, (const char *const[]){"按", "按键", "键", NULL}));
  CHECK(pieces_are("3.5英寸", 2, (const char *const[]){"3", "5", "5英", "英", "英寸", "寸", NULL}));
  CHECK(pieces_are(" :: ", 3, (const char *const[]){NULL}));
  /* shapes: WORD * word + LATER * (segment > 0) + whole / start / end /
   * middle; pieces of space-separated words are words */
  enum { W = OT_LEXICON_WORD, L = OT_LEXICON_LATER };
  ot_lexicon_hits h;
  CHECK(ot_lexicon_pieces("Flag: United States", 2, &h) == OT_OK && h.n == 4);
  /* flag, united, united states, states */
  static const int want_shape[4] = {W + OT_LEXICON_WHOLE, W + L + OT_LEXICON_START,
                                    W + L + OT_LEXICON_WHOLE, W + L + OT_LEXICON_END};
  for (int i = 0; i < 4 && h.n == 4; i++) CHECK(h.shape[i] == want_shape[i]);
  ot_lexicon_hits_free(&h);
  CHECK(ot_lexicon_pieces(":a b c", 1, &h) == OT_OK && h.n == 3); /* leading punctuation: first segment */
  CHECK(h.n == 3 && h.shape[0] == W + OT_LEXICON_START && h.shape[1] == W + OT_LEXICON_MIDDLE &&
        h.shape[2] == W + OT_LEXICON_END);
  ot_lexicon_hits_free(&h);
  /* CJK: a word where ICU's dictionary breaks 城市|黄昏; a character is one
   * only where it breaks on both sides (女|超级|大); a piece across a break
   * between two characters is none */
  CHECK(ot_lexicon_pieces("城市黄昏", 2, &h) == OT_OK && h.n == 7);
  static const char *const dusk[7] = {"城", "城市", "市", "市黄", "黄", "黄昏", "昏"};
  static const int dusk_shape[7] = {OT_LEXICON_START,  W + OT_LEXICON_START, OT_LEXICON_MIDDLE,
                                    OT_LEXICON_MIDDLE, OT_LEXICON_MIDDLE,    W + OT_LEXICON_END,
                                    OT_LEXICON_END};
  for (int i = 0; i < 7 && h.n == 7; i++)
    CHECK(!strcmp(h.text[i], dusk[i]) && h.shape[i] == dusk_shape[i]);
  ot_lexicon_hits_free(&h);
  CHECK(ot_lexicon_pieces("女超级大: 猫", 2, &h) == OT_OK && h.n == 8);
  static const char *const villain[8] = {"女", "女超", "超", "超级", "级", "级大", "大", "猫"};
  static const int villain_shape[8] = {W + OT_LEXICON_START, OT_LEXICON_START, OT_LEXICON_MIDDLE,
                                       W + OT_LEXICON_MIDDLE, OT_LEXICON_MIDDLE, OT_LEXICON_END,
                                       W + OT_LEXICON_END,   W + L + OT_LEXICON_WHOLE};
  for (int i = 0; i < 8 && h.n == 8; i++)
    CHECK(!strcmp(h.text[i], villain[i]) && h.shape[i] == villain_shape[i]);
  ot_lexicon_hits_free(&h);
  /* a break between a Latin word and a character, no space: b型 is none */
  CHECK(ot_lexicon_pieces("B型血", 2, &h) == OT_OK && h.n == 5);
  static const char *const blood[5] = {"b", "b型", "型", "型血", "血"};
  static const int blood_shape[5] = {W + OT_LEXICON_START, OT_LEXICON_START, W + OT_LEXICON_MIDDLE,
                                     OT_LEXICON_END, W + OT_LEXICON_END};
  for (int i = 0; i < 5 && h.n == 5; i++)
    CHECK(!strcmp(h.text[i], blood[i]) && h.shape[i] == blood_shape[i]);
  ot_lexicon_hits_free(&h);
  CHECK(ot_lexicon_pieces("bad \xff title", 2, &h) == OT_EINVAL && h.n == 0);
  ot_lexicon_hits_free(&h);
}

static void write_items(const char *dir) {
  ot_shard_writer *w = units_split_open(dir, 1, 2, 2);
  uint8_t frames[12] = {0};
  /* group A twice (two renditions of one emoji): it must count once */
  struct {
    const char *id, *group, *title;
    const char *tags[2];
    int n;
  } items[] = {
      {"a1", "A", "Red Apple", {"apple", NULL}, 1},
      {"a2", "A", "red apple", {"Apple", NULL}, 1},
      {"b", "B", "green apple", {"apple", "green"}, 2},
      {"c", "", "red car", {"car", NULL}, 1}, /* no group: its id is one */
  };
  for (int i = 0; i < 4; i++) {
    ot_item it = {.id = (char *)items[i].id,
                  .path = "p",
                  .title = (char *)items[i].title,
                  .group = (char *)items[i].group,
                  .tags = (char **)items[i].tags,
                  .n_tags = items[i].n,
                  .line = i + 1};
    CHECK(ot_shard_append(w, &it, frames, NULL) == OT_OK);
  }
  units_split_close(dir, w);
}

static int near(float a, double b) { return fabs((double)a - b) < 1e-6; }

static void test_counts_and_scores(void) {
  write_items("units_lexicon");
  ot_dataset *d = NULL;
  CHECK(ot_dataset_open(&d, "units_lexicon") == OT_OK);
  ot_lexicon lx;
  CHECK(ot_lexicon_build(&lx, d, 2) == OT_OK);
  /* pieces: apple (A, B: tagged in both), red (A, c: never), green (B:
   * tagged), car (c: tagged), red apple, green apple, red car (one group
   * each, never tagged) */
  CHECK(lx.n == 7 && lx.max_units == 2);
  for (int i = 1; i < lx.n; i++) CHECK(strcmp(lx.text[i - 1], lx.text[i]) < 0);
  /* prior: 1 unit, seen in one group: green and car, both tags: (2+.5)/(2+1);
   * 2 units: three pieces, none a tag: .5/4 */
  CHECK(near(lx.prior[0], 2.5 / 3.0) && near(lx.prior[1], 0.125));
  const double p1 = 2.5 / 3.0;
  /* by shape, shrunk toward those by BETA = 2: green starts its title, car
   * ends its own (1 of 1 a tag each): (1 + 2 p1) / 3; the three 2-unit
   * pieces are whole titles (none a tag): (0 + 2 * .125) / 5; shapes never
   * seen keep their length's prior */
  const double p_start = (1 + 2 * p1) / 3.0, p_whole2 = 0.25 / 5.0;
  enum { W = OT_LEXICON_WORD }; /* every piece here is a word */
  CHECK(lx.prior_shape && near(lx.prior_shape[W + OT_LEXICON_START], p_start) &&
        near(lx.prior_shape[W + OT_LEXICON_END], p_start) &&
        near(lx.prior_shape[W + OT_LEXICON_WHOLE], p1) &&
        near(lx.prior_shape[OT_LEXICON_START], p1) && /* not a word: never seen */
        near(lx.prior_shape[W + OT_LEXICON_LATER + OT_LEXICON_START], p1) &&
        near(lx.prior_shape[OT_LEXICON_SHAPES + W + OT_LEXICON_WHOLE], p_whole2) &&
        near(lx.prior_shape[OT_LEXICON_SHAPES + W + OT_LEXICON_START], 0.125));
  CHECK(near(ot_lexicon_score(&lx, "apple", 1, W + OT_LEXICON_END), (2 + p_start) / 3.0));
  CHECK(near(ot_lexicon_score(&lx, "red", 1, W + OT_LEXICON_START), p_start / 3.0));
  CHECK(near(ot_lexicon_score(&lx, "green", 1, W + OT_LEXICON_START), (1 + p_start) / 2.0));
  /* never seen: the prior */
  CHECK(near(ot_lexicon_score(&lx, "blue", 1, W + OT_LEXICON_WHOLE), p1));
  CHECK(near(ot_lexicon_score(&lx, "blue", 1, W + OT_LEXICON_START), p_start));
  CHECK(near(ot_lexicon_score(&lx, "blue", 1, OT_LEXICON_START), p1));
  CHECK(near(ot_lexicon_score(&lx, "blue car", 2, W + OT_LEXICON_WHOLE), p_whole2));
  ot_lexicon_hits h;
  CHECK(ot_lexicon_lookup(&lx, "Red Apple, blue", &h) == OT_OK && h.n == 4);
  CHECK(!strcmp(h.text[0], "apple") && !strcmp(h.text[1], "blue") && !strcmp(h.text[2], "red") &&
        !strcmp(h.text[3], "red apple"));
  for (int i = 1; i < h.n; i++) CHECK(h.score[i - 1] >= h.score[i]);
  ot_lexicon_hits_free(&h);

  /* groups tagged with each piece, in the title or not, out of 3 groups */
  CHECK(lx.n_groups == 3 && lx.tag_groups);
  const char *want_tagged[] = {"apple", "car", "green"};
  for (int i = 0; i < lx.n; i++) {
    int is = 0;
    for (int j = 0; j < 3; j++) is |= !strcmp(lx.text[i], want_tagged[j]);
    CHECK(lx.tag_groups[i] == (!strcmp(lx.text[i], "apple") ? 2 : is));
  }
  /* absence ratios for the title "red car" (pieces red, car, red car):
   * apple (t 2, n 2, k 2): ((0 + 2/3) / (3 - 2 + 1)) / (2/3) = 1/2; green
   * (1, 1, 1): ((0 + 1/3) / 3) / (1/3) = 1/3; car: in the title, 1; blue: no
   * training title holds it, 1; red: never a tag, 1 */
  ot_gen_tag answer_tags[] = {{.tag = "apple"}, {.tag = "car"}, {.tag = "green"}, {.tag = "blue"},
                              {.tag = "red"}};
  const ot_gen_item answer = {5, answer_tags};
  float ratio[5];
  CHECK(ot_lexicon_lookup(&lx, "Red car", &h) == OT_OK);
  ot_lexicon_absence(&lx, &h, &answer, ratio);
  CHECK(near(ratio[0], 0.5) && ratio[1] == 1.0f && near(ratio[2], 1.0 / 3.0) && ratio[3] == 1.0f &&
        ratio[4] == 1.0f);
  ot_lexicon_hits_free(&h);

  /* checkpoint round trip */
  ot_params *p = NULL;
  CHECK(ot_params_open(&p) == OT_OK);
  ot_params_add(p, "w", 1, (int[]){3}, 0, NULL);
  CHECK(ot_params_alloc(p, 0) == OT_OK);
  ot_ckpt_meta m;
  memset(&m, 0, sizeof m);
  m.config = "model:\n  lexicon: 2\n", m.tokenizer = "t";
  char *tags[1] = {"apple"};
  int64_t counts[1] = {3};
  m.tags.n = 1, m.tags.tags = tags, m.tags.counts = counts;
  m.lexicon = lx, m.lex_weight = 0.7, m.abs_weight = 0.2;
  CHECK(ot_ckpt_write("units_lexicon/ckpt.h5", p, &m) == OT_OK);
  ot_ckpt_meta b;
  CHECK(ot_ckpt_read_meta("units_lexicon/ckpt.h5", &b) == OT_OK);
  CHECK(b.lex_weight == 0.7 && b.lexicon.max_units == 2 && b.lexicon.n == lx.n);
  for (int i = 0; i < lx.n && b.lexicon.n == lx.n; i++)
    CHECK(!strcmp(b.lexicon.text[i], lx.text[i]) && b.lexicon.groups[i] == lx.groups[i] &&
          b.lexicon.tagged[i] == lx.tagged[i] && b.lexicon.tag_groups &&
          b.lexicon.tag_groups[i] == lx.tag_groups[i]);
  CHECK(b.lexicon.prior && b.lexicon.prior[0] == lx.prior[0] && b.lexicon.prior[1] == lx.prior[1]);
  CHECK(b.lexicon.n_groups == 3 && b.abs_weight == 0.2 && b.lexicon.prior_shape);
  for (int c = 0; c < 2 * OT_LEXICON_SHAPES && b.lexicon.prior_shape; c++)
    CHECK(b.lexicon.prior_shape[c] == lx.prior_shape[c]);
  ot_ckpt_meta_free(&b);
  /* written before the absence counts and the shapes: read, every ratio 1,
   * every shape its length's prior */
  int64_t *tag_groups = lx.tag_groups;
  float *prior_shape = lx.prior_shape;
  lx.tag_groups = NULL, lx.prior_shape = NULL;
  m.lexicon = lx;
  CHECK(ot_ckpt_write("units_lexicon/old.h5", p, &m) == OT_OK);
  lx.tag_groups = tag_groups, lx.prior_shape = prior_shape;
  CHECK(ot_ckpt_read_meta("units_lexicon/old.h5", &b) == OT_OK && b.lexicon.n == lx.n &&
        !b.lexicon.tag_groups && !b.lexicon.prior_shape);
  CHECK(near(ot_lexicon_score(&b.lexicon, "red", 1, W + OT_LEXICON_START), p1 / 3.0));
  CHECK(ot_lexicon_lookup(&b.lexicon, "Red car", &h) == OT_OK);
  ot_lexicon_absence(&b.lexicon, &h, &answer, ratio);
  for (int i = 0; i < 5; i++) CHECK(ratio[i] == 1.0f);
  ot_lexicon_hits_free(&h);
  ot_ckpt_meta_free(&b);
  /* written before the word bit: prior_shape [max_units, OT_LEXICON_PLACES],
   * read with the same prior for a word and not */
  m.lexicon = lx;
  CHECK(ot_ckpt_write("units_lexicon/places.h5", p, &m) == OT_OK);
  float places[2 * OT_LEXICON_PLACES];
  for (int c = 0; c < 2 * OT_LEXICON_PLACES; c++) places[c] = (float)c / 32.0f;
  hid_t f = H5Fopen("units_lexicon/places.h5", H5F_ACC_RDWR, H5P_DEFAULT);
  CHECK(f >= 0 && H5Ldelete(f, "lexicon/prior_shape", H5P_DEFAULT) >= 0 &&
        ot_h5_write_array(f, "lexicon/prior_shape", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 2,
                          (hsize_t[]){2, OT_LEXICON_PLACES}, places) == 0);
  if (f >= 0) H5Fclose(f);
  CHECK(ot_ckpt_read_meta("units_lexicon/places.h5", &b) == OT_OK && b.lexicon.prior_shape);
  for (int r = 0; r < 2 && b.lexicon.prior_shape; r++)
    for (int c = 0; c < OT_LEXICON_PLACES; c++)
      CHECK(b.lexicon.prior_shape[r * OT_LEXICON_SHAPES + c] == places[r * OT_LEXICON_PLACES + c] &&
            b.lexicon.prior_shape[r * OT_LEXICON_SHAPES + W + c] ==
                places[r * OT_LEXICON_PLACES + c]);
  ot_ckpt_meta_free(&b);
  /* a lexicon weight outside ot_gen_fuse_title's [0, 2] (a damaged or
   * hand-edited file) is refused naming the file, not asserted on later */
  m.lex_weight = 2.5;
  CHECK(ot_ckpt_write("units_lexicon/weight.h5", p, &m) == OT_OK);
  CHECK(ot_ckpt_read_meta("units_lexicon/weight.h5", &b) == OT_EINVAL &&
        strstr(ot_errmsg(), "units_lexicon/weight.h5") && strstr(ot_errmsg(), "lexicon_weight"));
  m.lex_weight = 0.7, m.abs_weight = -1.0;
  CHECK(ot_ckpt_write("units_lexicon/weight.h5", p, &m) == OT_OK);
  CHECK(ot_ckpt_read_meta("units_lexicon/weight.h5", &b) == OT_EINVAL &&
        strstr(ot_errmsg(), "absence_weight"));
  m.abs_weight = 0.2;
  /* without one: none, weight 0 */
  m.lexicon = (ot_lexicon){0}, m.lex_weight = 0.0;
  CHECK(ot_ckpt_write("units_lexicon/plain.h5", p, &m) == OT_OK);
  CHECK(ot_ckpt_read_meta("units_lexicon/plain.h5", &b) == OT_OK && b.lexicon.max_units == 0 &&
        b.lexicon.n == 0 && b.lex_weight == 0.0);
  ot_ckpt_meta_free(&b);
  /* a damaged one (counts out of order) is refused, naming the file */
  lx.tag_groups[0] = lx.tagged[0] - 1; /* fewer groups tagged than tagged with it in the title */
  m.lexicon = lx;
  CHECK(ot_ckpt_write("units_lexicon/bad.h5", p, &m) == OT_OK);
  CHECK(ot_ckpt_read_meta("units_lexicon/bad.h5", &b) == OT_EINVAL &&
        strstr(ot_errmsg(), "units_lexicon/bad.h5") && strstr(ot_errmsg(), "lexicon"));
  lx.tag_groups[0] = lx.tagged[0];
  lx.tagged[0] = lx.groups[0] + 1;
  m.lexicon = lx;
  CHECK(ot_ckpt_write("units_lexicon/bad.h5", p, &m) == OT_OK);
  CHECK(ot_ckpt_read_meta("units_lexicon/bad.h5", &b) == OT_EINVAL &&
        strstr(ot_errmsg(), "units_lexicon/bad.h5") && strstr(ot_errmsg(), "lexicon"));
  ot_params_close(p);
  ot_lexicon_free(&lx);
  ot_dataset_close(d);
}

int main(void) {
  test_pieces();
  test_counts_and_scores();
  return ot_test_report();
}
