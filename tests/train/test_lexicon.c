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

static int by_strcmp(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static int near(float a, double b) { return fabs((double)a - b) < 1e-6; }

static int write_str_attr(hid_t loc, const char *name, const char *value) {
  hid_t t = ot_h5_utf8_type(), space = H5Screate(H5S_SCALAR);
  hid_t a = H5Acreate2(loc, name, t, space, H5P_DEFAULT, H5P_DEFAULT);
  int ok = a >= 0 && H5Awrite(a, t, &value) >= 0;
  if (a >= 0) H5Aclose(a);
  H5Sclose(space);
  H5Tclose(t);
  return ok;
}

/* A checkpoint written before the hashed pieces names every piece: the
 * same counts, by name, read back score alike (here the 2-unit pieces
 * of write_items, one group each, never tagged). */
static void check_named_file(const ot_lexicon *lx, ot_params *p, ot_ckpt_meta *m, double p_whole2) {
  static const char *const all[7] = {"apple", "car", "green", "green apple", "red", "red apple", "red car"};
  char **text = ot_xmalloc(7 * sizeof *text);
  int64_t *groups = ot_xmalloc(7 * sizeof *groups), *tagged = ot_xmalloc(7 * sizeof *tagged),
          *tag_groups = ot_xmalloc(7 * sizeof *tag_groups);
  for (int i = 0, k = 0; i < 7; i++) {
    text[i] = ot_xstrdup(all[i]);
    const int named = k < lx->n && !strcmp(lx->text[k], all[i]);
    groups[i] = named ? lx->groups[k] : 1, tagged[i] = named ? lx->tagged[k] : 0;
    tag_groups[i] = named ? lx->tag_groups[k] : 0;
    k += named;
  }
  float *prior = ot_xmalloc(2 * sizeof *prior), *shape = ot_xmalloc(2 * OT_LEXICON_SHAPES * sizeof *shape);
  memcpy(prior, lx->prior, 2 * sizeof *prior);
  memcpy(shape, lx->prior_shape, 2 * OT_LEXICON_SHAPES * sizeof *shape);
  ot_lexicon old;
  CHECK(ot_lexicon_adopt(&old, 2, 7, text, groups, tagged, tag_groups, lx->n_groups, prior, shape, 0,
                         NULL, "old") == OT_OK);
  const ot_lexicon keep = m->lexicon;
  m->lexicon = old;
  CHECK(ot_ckpt_write("units_lexicon/named.h5", p, m) == OT_OK);
  m->lexicon = keep;
  ot_lexicon_free(&old);
  ot_ckpt_meta b;
  CHECK(ot_ckpt_read_meta("units_lexicon/named.h5", &b) == OT_OK && b.lexicon.n == 7 &&
        b.lexicon.n_once == 0);
  for (int i = 0; i < 7; i++)
    for (int sh = 0; sh < OT_LEXICON_SHAPES; sh++) {
      const int units = strchr(all[i], ' ') ? 2 : 1;
      CHECK(ot_lexicon_score(&b.lexicon, all[i], units, sh) == ot_lexicon_score(lx, all[i], units, sh));
    }
  CHECK(near(ot_lexicon_score(&b.lexicon, "red car", 2, OT_LEXICON_WORD + OT_LEXICON_WHOLE), p_whole2 / 2.0));
  ot_ckpt_meta_free(&b);
}

static void test_counts_and_scores(void) {
  write_items("units_lexicon");
  ot_dataset *d = NULL;
  CHECK(ot_dataset_open(&d, "units_lexicon") == OT_OK);
  ot_lexicon lx;
  CHECK(ot_lexicon_build(&lx, d, 2) == OT_OK);
  /* pieces: apple (A, B: tagged in both), red (A, c: never), green (B:
   * tagged), car (c: tagged) by name; red apple, green apple, red car (one
   * group each, never tagged) by hash */
  CHECK(lx.n == 4 && lx.n_once == 3 && lx.max_units == 2);
  for (int i = 1; i < lx.n; i++) CHECK(strcmp(lx.text[i - 1], lx.text[i]) < 0);
  for (int i = 1; i < lx.n_once; i++) CHECK(lx.once[i - 1] < lx.once[i]);
  const char *const hashed[3] = {"red apple", "green apple", "red car"};
  for (int i = 0; i < 3; i++) {
    int found = 0;
    for (int j = 0; j < lx.n_once; j++) found |= lx.once[j] == ot_lexicon_hash(hashed[i]);
    CHECK(found);
  }
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
  /* seen in one group, never a tag (kept by hash): (0 + ALPHA prior) / (1 + ALPHA) */
  CHECK(near(ot_lexicon_score(&lx, "red car", 2, W + OT_LEXICON_WHOLE), p_whole2 / 2.0));
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
  CHECK(b.lexicon.n_once == lx.n_once && !memcmp(b.lexicon.once, lx.once, 3 * sizeof *lx.once));
  ot_ckpt_meta_free(&b);
  check_named_file(&lx, p, &m, p_whole2);
  /* a hash other than the one this build computes, or hashes out of order,
   * are refused naming the file */
  CHECK(ot_ckpt_write("units_lexicon/hash.h5", p, &m) == OT_OK);
  hid_t fh = H5Fopen("units_lexicon/hash.h5", H5F_ACC_RDWR, H5P_DEFAULT);
  hid_t gh = fh >= 0 ? H5Gopen2(fh, "lexicon", H5P_DEFAULT) : -1;
  CHECK(gh >= 0 && H5Adelete(gh, "once_hash") >= 0 && write_str_attr(gh, "once_hash", "MurmurHash3"));
  if (gh >= 0) H5Gclose(gh);
  if (fh >= 0) H5Fclose(fh);
  CHECK(ot_ckpt_read_meta("units_lexicon/hash.h5", &b) == OT_EINVAL &&
        strstr(ot_errmsg(), "units_lexicon/hash.h5") && strstr(ot_errmsg(), "lexicon"));
  const uint64_t first = lx.once[0];
  lx.once[0] = lx.once[1], lx.once[1] = first;
  m.lexicon = lx;
  CHECK(ot_ckpt_write("units_lexicon/hash.h5", p, &m) == OT_OK);
  lx.once[1] = lx.once[0], lx.once[0] = first;
  m.lexicon = lx;
  CHECK(ot_ckpt_read_meta("units_lexicon/hash.h5", &b) == OT_EINVAL &&
        strstr(ot_errmsg(), "units_lexicon/hash.h5") && strstr(ot_errmsg(), "lexicon"));
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

/* Items of groups scattered through the split (item i in group i * 7 % 37),
 * titles and tags of words of a small vocabulary: the counts of a brute
 * force over (text, group) flags against the build, in chunks of at least
 * 1, 5 and 2^30 sightings (the same lexicon every time). */
enum { REF_ITEMS = 300, REF_GROUPS = 37, REF_TEXTS = 4096 };
typedef struct {
  char *text[REF_TEXTS];
  unsigned char in_title[REF_TEXTS][REF_GROUPS], is_tag[REF_TEXTS][REF_GROUPS];
  /* where it stands in the group's first item (by index) whose title holds it */
  unsigned char units[REF_TEXTS][REF_GROUPS], shape[REF_TEXTS][REF_GROUPS];
  int n;
} reference;

static int ref_find(reference *r, const char *t) {
  for (int i = 0; i < r->n; i++)
    if (!strcmp(r->text[i], t)) return i;
  OT_ASSERT(r->n < REF_TEXTS);
  r->text[r->n] = ot_xstrdup(t);
  return r->n++;
}

static int same_lexicon(const ot_lexicon *a, const ot_lexicon *b) {
  int same = a->n == b->n && a->n_once == b->n_once && a->n_groups == b->n_groups &&
             !memcmp(a->once, b->once, (size_t)a->n_once * sizeof *a->once) &&
             !memcmp(a->groups, b->groups, (size_t)a->n * sizeof *a->groups) &&
             !memcmp(a->tagged, b->tagged, (size_t)a->n * sizeof *a->tagged) &&
             !memcmp(a->tag_groups, b->tag_groups, (size_t)a->n * sizeof *a->tag_groups) &&
             !memcmp(a->prior, b->prior, (size_t)a->max_units * sizeof *a->prior) &&
             !memcmp(a->prior_shape, b->prior_shape,
                     (size_t)a->max_units * OT_LEXICON_SHAPES * sizeof *a->prior_shape);
  for (int i = 0; same && i < a->n; i++) same = !strcmp(a->text[i], b->text[i]);
  return same;
}

static void test_chunks_match_reference(void) {
  static const char *const vocab[] = {"red", "apple", "car", "green", "城市", "黄昏", "猫", "sun", "moon", "big"};
  const char *dir = "units_lexicon_chunks";
  ot_shard_writer *w = units_split_open(dir, 1, 2, 2);
  uint8_t frames[12] = {0};
  static reference ref;
  uint32_t x = 12345;
#define NEXT(n) ((x = x * 1103515245u + 12345u) >> 16) % (n)
  for (int i = 0; i < REF_ITEMS; i++) {
    char title[256] = "", id[16], group[16], tag[3][16];
    char *tags[3];
    const int words = 1 + (int)NEXT(4), nt = (int)NEXT(4);
    for (int k = 0; k < words; k++) {
      strcat(title, k && NEXT(3) ? " " : (k ? ", " : ""));
      strcat(title, vocab[NEXT(10)]);
    }
    for (int k = 0; k < nt; k++) snprintf(tag[k], sizeof tag[k], "%s", vocab[NEXT(10)]), tags[k] = tag[k];
    const int g = i * 7 % REF_GROUPS;
    snprintf(id, sizeof id, "i%d", i);
    snprintf(group, sizeof group, "g%02d", g);
    ot_item it = {.id = id, .path = "p", .title = title, .group = group, .tags = tags, .n_tags = nt,
                  .has_tags = 1, .line = i + 1};
    CHECK(ot_shard_append(w, &it, frames, NULL) == OT_OK);
    ot_lexicon_hits h;
    CHECK(ot_lexicon_pieces(title, 3, &h) == OT_OK);
    for (int k = 0; k < h.n; k++) {
      const int t = ref_find(&ref, h.text[k]);
      if (!ref.in_title[t][g]) ref.units[t][g] = (unsigned char)h.units[k], ref.shape[t][g] = (unsigned char)h.shape[k];
      ref.in_title[t][g] = 1;
      for (int j = 0; j < nt; j++) ref.is_tag[t][g] |= !strcmp(tags[j], h.text[k]);
    }
    ot_lexicon_hits_free(&h);
    for (int j = 0; j < nt; j++) ref.is_tag[ref_find(&ref, tags[j])][g] = 1;
  }
#undef NEXT
  units_split_close(dir, w);
  ot_dataset *d = NULL;
  CHECK(ot_dataset_open(&d, dir) == OT_OK);
  ot_lexicon lx[3];
  const size_t chunks[3] = {1, 5, (size_t)1 << 30};
  for (int c = 0; c < 3; c++) CHECK(ot_lexicon_build_chunks(&lx[c], d, 3, chunks[c], 0) == OT_OK);
  CHECK(same_lexicon(&lx[0], &lx[2]) && same_lexicon(&lx[1], &lx[2]));
  int pieces = 0, by_hash = 0;
  double once[3 * OT_LEXICON_SHAPES] = {0}, once_tag[3 * OT_LEXICON_SHAPES] = {0};
  for (int t = 0; t < ref.n; t++) {
    int64_t groups = 0, tagged = 0, tag_groups = 0;
    for (int g = 0; g < REF_GROUPS; g++)
      groups += ref.in_title[t][g], tagged += ref.in_title[t][g] && ref.is_tag[t][g],
          tag_groups += ref.is_tag[t][g];
    if (!groups) continue;
    pieces++;
    for (int g = 0; g < REF_GROUPS && groups == 1; g++)
      if (ref.in_title[t][g]) {
        const int cell = (ref.units[t][g] - 1) * OT_LEXICON_SHAPES + ref.shape[t][g];
        once[cell]++, once_tag[cell] += (double)tagged;
      }
    const char *key = ref.text[t];
    char **at = lx[0].n ? bsearch(&key, lx[0].text, (size_t)lx[0].n, sizeof *lx[0].text, by_strcmp) : NULL;
    if (groups == 1 && !tagged && !tag_groups) {
      const uint64_t k = ot_lexicon_hash(key);
      int found = 0;
      for (int64_t i = 0; i < lx[0].n_once; i++) found |= lx[0].once[i] == k;
      CHECK(found && !at);
      by_hash++;
    } else {
      const int64_t i = at ? at - lx[0].text : 0;
      CHECK(at && lx[0].groups[i] == groups && lx[0].tagged[i] == tagged && lx[0].tag_groups[i] == tag_groups);
    }
  }
  CHECK(lx[0].n + lx[0].n_once == pieces && lx[0].n_once == by_hash && by_hash > 0 && lx[0].n > 0);
  CHECK(lx[0].n_groups == REF_GROUPS);
  /* the priors of lexicon.h: by length (+0.5 / +1), by shape (BETA = 2) */
  for (int u = 0; u < 3; u++) {
    double seen = 0, tags = 0;
    for (int c = u * OT_LEXICON_SHAPES; c < (u + 1) * OT_LEXICON_SHAPES; c++) seen += once[c], tags += once_tag[c];
    const double p = (tags + 0.5) / (seen + 1.0);
    CHECK(near(lx[0].prior[u], p));
    for (int c = u * OT_LEXICON_SHAPES; c < (u + 1) * OT_LEXICON_SHAPES; c++)
      CHECK(near(lx[0].prior_shape[c], (once_tag[c] + 2.0 * p) / (once[c] + 2.0)));
  }
  for (int c = 0; c < 3; c++) ot_lexicon_free(&lx[c]);
  for (int t = 0; t < ref.n; t++) free(ref.text[t]);
  ot_dataset_close(d);
}

/* A title that is not UTF-8 stops the build naming its item, nothing kept. */
static void test_bad_title(void) {
  const char *dir = "units_lexicon_bad";
  ot_shard_writer *w = units_split_open(dir, 1, 2, 2);
  uint8_t frames[12] = {0};
  const char *titles[2] = {"red apple", "bad \xff title"}, *ids[2] = {"ok1", "bad2"};
  for (int i = 0; i < 2; i++) {
    ot_item it = {.id = (char *)ids[i], .path = "p", .title = (char *)titles[i], .group = "",
                  .tags = NULL, .n_tags = 0, .has_tags = 1, .line = i + 1};
    CHECK(ot_shard_append(w, &it, frames, NULL) == OT_OK);
  }
  units_split_close(dir, w);
  ot_dataset *d = NULL;
  CHECK(ot_dataset_open(&d, dir) == OT_OK);
  ot_lexicon lx;
  CHECK(ot_lexicon_build(&lx, d, 2) == OT_EINVAL && strstr(ot_errmsg(), "bad2") && lx.n == 0 &&
        lx.n_once == 0 && !lx.text && !lx.once);
  ot_dataset_close(d);
}

int main(void) {
  test_pieces();
  test_bad_title();
  test_counts_and_scores();
  test_chunks_match_reference();
  return ot_test_report();
}
