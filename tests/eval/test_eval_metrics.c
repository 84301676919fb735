/* ot-eval's core on the hand-made set of eval_fixture.h: every score against
 * its value worked out by hand, and the predictions reader's errors.
 *
 * Worked out (G = ground truth, P = prediction, after normalisation; "CAT "
 * and "Cat" are "cat", "ＰＵＰＰＹ" is "puppy"; a's "cat" twice counts once):
 *   overall   a: TP1 |P|3 |G|2 -> p 1/3 r 1/2 f .4   b: TP2 |P|3 |G|2 -> 2/3, 1, .8
 *             c: TP1 |P|2 |G|3 -> 1/2 1/3 .4         d: |P|1 |G|0 (not per item)
 *             e: |P|0 |G|1 -> 0 0 0
 *             micro 4/9, 4/8, F1 8/17; per item (a,b,c,e) P 1.5/4, R (11/6)/4, F1 1.6/4
 *   closed    U = {cat, animal, cute, dog, sky}: a {cat,dog} vs {cat,animal} .5 .5 .5;
 *             b {dog} vs {dog} 1 1 1; c {sky,animal} vs {cute,sky} .5 .5 .5; e 0
 *             micro 3/5, 3/6, F1 6/11; per item .5 .5 .5
 *   common    U = {cat, animal}: a {cat} vs {cat,animal} 1 .5 2/3; c {animal} vs {} (micro
 *             only); e 0 -> micro 1/2, 1/3, .4; per item (a,e) .5 .25 1/3
 *   rare      U = {dog, cute, sky}: a {dog} vs {} (micro only); b 1 1 1; c {sky} vs {cute,sky}
 *             1 .5 2/3 -> micro 2/3 2/3 2/3; per item (b,c) 1 .75 5/6 */
#include "eval_fixture.h"
#include "evalset.h"
#include "metrics.h"
#include "ot_common.h"
#include "ot_fs.h"
#include "ot_test.h"

#include <math.h>
#include <stdlib.h>

#define NEAR(a, b) (fabs((a) - (b)) < 1e-12)

static int write_lines(const char *path, const char *const *lines, int n) {
  char buf[8192] = "";
  for (int i = 0; i < n; i++) {
    strcat(buf, lines[i]);
    strcat(buf, "\n");
  }
  return ot_fs_write_atomic(path, buf, strlen(buf));
}

static ot_evalset *fixture(void) {
  ot_evalset *e;
  OT_ASSERT(ot_evalset_open(&e) == OT_OK);
  for (int i = 0; i < FX_N_TRAIN; i++)
    OT_ASSERT(ot_evalset_add_train(e, FX_TRAIN[i].tags, fx_n_tags(&FX_TRAIN[i]), "train") == OT_OK);
  for (int i = 0; i < FX_N_TRUTH; i++)
    OT_ASSERT(ot_evalset_add_truth(e, FX_TRUTH[i].id, FX_TRUTH[i].tags, fx_n_tags(&FX_TRUTH[i])) ==
              OT_OK);
  return e;
}

static void check_scores(const ot_eval_scores *s, const fx_scores *w, const char *what) {
  int ok = s->tp == w->tp && s->n_pred == w->n_pred && s->n_gt == w->n_gt && NEAR(s->p, w->p) &&
           NEAR(s->r, w->r) && NEAR(s->f1, w->f1) && s->items == w->items && NEAR(s->item_p, w->ip) &&
           NEAR(s->item_r, w->ir) && NEAR(s->item_f1, w->if1) && s->n_tags == w->n_tags;
  if (!ok)
    fprintf(stderr,
            "%s: tp %lld pred %lld gt %lld P %.6f R %.6f F1 %.6f items %lld iP %.6f iR %.6f iF1 %.6f "
            "tags %lld\n",
            what, (long long)s->tp, (long long)s->n_pred, (long long)s->n_gt, s->p, s->r, s->f1,
            (long long)s->items, s->item_p, s->item_r, s->item_f1, (long long)s->n_tags);
  CHECK(ok);
}

int main(void) {
  /* The fixture, predictions through the file reader. */
  ot_evalset *e = fixture();
  CHECK(write_lines("metrics_pred.jsonl", FX_PRED, FX_N_PRED) == OT_OK);
  CHECK(ot_evalset_load_pred(e, "metrics_pred.jsonl") == OT_OK);
  CHECK(ot_evalset_n_items(e) == 5 && ot_evalset_n_train_items(e) == 4);
  const ot_evalset_item *a = ot_evalset_item_at(e, 0);
  CHECK(a->n_pred == 3 && a->pred_line == 1); /* "Cat" and "cat " merged */
  ot_eval_result r;
  ot_eval_compute(e, FX_COMMON_MIN, &r);
  for (int u = 0; u < OT_EVAL_N_SUBSETS; u++) check_scores(&r.s[u], &FX_WANT[u], ot_eval_subset_names[u]);
  CHECK(r.n_items == 5 && r.n_no_gt == 1 && r.n_predicted == 4 && r.n_missing == 1);
  CHECK(r.n_train_items == 4 && r.n_train_tags == 5);
  CHECK(r.n_gen == FX_GEN && r.n_ret == FX_RET && r.n_novel == FX_NOVEL &&
        r.n_novel_correct == FX_NOVEL_CORRECT && NEAR(r.novel_share, 4.0 / 7));

  /* common_min moves tags between common and rare only. */
  ot_eval_result r3;
  ot_eval_compute(e, 3, &r3); /* only animal (3) is common now */
  CHECK(r3.s[OT_EVAL_COMMON].n_tags == 1 && r3.s[OT_EVAL_RARE].n_tags == 4);
  CHECK(r3.s[OT_EVAL_COMMON].tp == 0 && r3.s[OT_EVAL_COMMON].n_pred == 1 && r3.s[OT_EVAL_COMMON].n_gt == 1);
  CHECK(r3.s[OT_EVAL_RARE].tp == 3 && r3.s[OT_EVAL_RARE].n_pred == 4 && r3.s[OT_EVAL_RARE].n_gt == 5);
  CHECK(r3.s[OT_EVAL_OVERALL].tp == r.s[OT_EVAL_OVERALL].tp && NEAR(r3.s[OT_EVAL_CLOSED].f1, 6.0 / 11));

  /* Reader errors name file:line and what is wrong. */
  static const char *const bad_json[] = {FX_PRED[0], "{\"id\": \"b\", \"tags\": [}"};
  CHECK(write_lines("metrics_bad.jsonl", bad_json, 2) == OT_OK);
  ot_evalset *e2 = fixture();
  CHECK(ot_evalset_load_pred(e2, "metrics_bad.jsonl") == OT_EINVAL);
  CHECK_MSG("metrics_bad.jsonl:2: bad JSON");
  ot_evalset_close(e2);

  static const char *const unknown[] = {"", FX_PRED[1], "{\"id\": \"zz\", \"tags\": []}"};
  CHECK(write_lines("metrics_unknown.jsonl", unknown, 3) == OT_OK);
  e2 = fixture();
  CHECK(ot_evalset_load_pred(e2, "metrics_unknown.jsonl") == OT_EINVAL);
  CHECK_MSG("metrics_unknown.jsonl:3: id 'zz' is not in the ground truth");
  ot_evalset_close(e2);

  /* A byte order mark leads the file (written on Windows): not part of
   * line 1; further down it is bad JSON, as in the manifest reader. */
  char bom_first[256], bom_later[256];
  snprintf(bom_first, sizeof bom_first, "\xEF\xBB\xBF%s", FX_PRED[1]);
  snprintf(bom_later, sizeof bom_later, "\xEF\xBB\xBF%s", FX_PRED[0]);
  const char *const bom[] = {bom_first, bom_later};
  CHECK(write_lines("metrics_bom.jsonl", bom, 1) == OT_OK);
  e2 = fixture();
  CHECK(ot_evalset_load_pred(e2, "metrics_bom.jsonl") == OT_OK);
  CHECK(ot_evalset_item_at(e2, 1)->pred_line == 1);
  ot_evalset_close(e2);
  CHECK(write_lines("metrics_bom.jsonl", bom, 2) == OT_OK);
  e2 = fixture();
  CHECK(ot_evalset_load_pred(e2, "metrics_bom.jsonl") == OT_EINVAL);
  CHECK_MSG("metrics_bom.jsonl:2: bad JSON");
  ot_evalset_close(e2);

  static const char *const twice[] = {FX_PRED[1], FX_PRED[1]};
  CHECK(write_lines("metrics_twice.jsonl", twice, 2) == OT_OK);
  e2 = fixture();
  CHECK(ot_evalset_load_pred(e2, "metrics_twice.jsonl") == OT_EINVAL);
  CHECK_MSG("metrics_twice.jsonl:2: id 'b' already predicted at line 1");
  ot_evalset_close(e2);

  static const char *const fields[] = {
      "{\"id\": \"a\", \"tags\": [{\"tag\": \"x\", \"source\": \"web\"}]}",
      "{\"id\": \"a\", \"tags\": [\"x\"]}",
      "{\"id\": \"a\", \"tags\": [{\"tag\": \"x\", \"score\": \"high\"}]}",
      "{\"id\": 7, \"tags\": []}",
      "{\"id\": \"a\"}",
      "[1, 2]",
  };
  static const char *const field_msgs[] = {"tags[0]: field 'source' must be", "tags[0]: expected",
                                           "field 'score' is not a number", "field 'id'",
                                           "field 'tags'", "not a JSON object"};
  for (int k = 0; k < 6; k++) {
    CHECK(write_lines("metrics_field.jsonl", &fields[k], 1) == OT_OK);
    e2 = fixture();
    CHECK(ot_evalset_load_pred(e2, "metrics_field.jsonl") == OT_EINVAL);
    CHECK_MSG("metrics_field.jsonl:1: ");
    CHECK_MSG(field_msgs[k]);
    ot_evalset_close(e2);
  }
  /* rag's title-lexicon pieces ("title") count as written by the tagger,
   * as generated ones do; retrieved and closed-set ones do not */
  static const char *const sources[] = {
      "{\"id\": \"d\", \"tags\": [{\"tag\": \"bird\", \"source\": \"title\"}, "
      "{\"tag\": \"wing\", \"source\": \"ret\"}, {\"tag\": \"nest\", \"source\": \"gen\"}, "
      "{\"tag\": \"egg\", \"source\": \"cls\"}]}"};
  CHECK(write_lines("metrics_sources.jsonl", sources, 1) == OT_OK);
  e2 = fixture();
  CHECK(ot_evalset_load_pred(e2, "metrics_sources.jsonl") == OT_OK);
  const ot_evalset_item *id = ot_evalset_item_at(e2, 3);
  CHECK(id->n_pred == 4);
  for (int k = 0; k < id->n_pred && id->n_pred == 4; k++)
    CHECKF(id->pred_gen[k] == (k == 0 || k == 2), "tag %d", k);
  ot_evalset_close(e2);

  e2 = fixture();
  CHECK(ot_evalset_load_pred(e2, "metrics_does_not_exist.jsonl") == OT_EINVAL);
  CHECK_MSG("metrics_does_not_exist.jsonl: cannot open");
  ot_evalset_close(e2);

  /* Truth: repeated ids and invalid UTF-8 are input errors. */
  e2 = fixture();
  const char *cat[] = {"cat"}, *bad[] = {"ok", "b\xffx"};
  CHECK(ot_evalset_add_truth(e2, "a", cat, 1) == OT_EINVAL);
  CHECK_MSG("'a' appears twice");
  CHECK(ot_evalset_add_truth(e2, "f", bad, 2) == OT_EINVAL);
  CHECK_MSG("ground truth of item 'f', tag 2: invalid UTF-8 at byte 1");

  /* Tags that normalise to "" are dropped; all-retrieved duplicates stay retrieved. */
  const char *p[] = {"  ", "Cat", "cat", "\t"};
  const uint8_t gen[] = {1, 0, 0, 1};
  CHECK(ot_evalset_add_pred(e2, "e", p, gen, 4, 9) == OT_OK);
  const ot_evalset_item *ie = ot_evalset_item_at(e2, 4);
  CHECK(ie->n_pred == 1 && ie->pred_gen[0] == 0 && ie->pred_line == 9);
  CHECK(!strcmp(ot_evalset_tag(e2, ie->pred[0]), "cat") && ot_evalset_train_count(e2, ie->pred[0]) == 2);
  ot_evalset_close(e2);

  /* Nothing to score: all zeros, no division by zero. */
  ot_evalset *empty;
  CHECK(ot_evalset_open(&empty) == OT_OK);
  ot_eval_result z;
  ot_eval_compute(empty, 2, &z);
  CHECK(z.n_items == 0 && z.s[OT_EVAL_OVERALL].f1 == 0 && z.s[OT_EVAL_OVERALL].item_f1 == 0 &&
        z.novel_share == 0);
  ot_evalset_close(empty);
  ot_evalset_close(e);
  return ot_test_report();
}
