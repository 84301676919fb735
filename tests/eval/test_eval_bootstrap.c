/* The paired bootstrap of F1 differences (stages/eval/bootstrap.h) on hand
 * sets: per-group counts, the difference on all groups, intervals that
 * must or must not hold 0, determinism, and the refusal to pair rows over
 * other groups.
 *
 * Items and groups: x1, x2 in group "x"; y1 in "y"; z1, z2 without a group
 * (each its own). Every item's ground truth is {a, b}.
 *   system A predicts {a, b} everywhere      -> TP 2, NP 2, NG 2 per item
 *   system B predicts {a} on x1, x2, y1 and {c} on z1, z2
 * Per group (sorted: x, y, then the ids z1, z2): A tp 4 2 2 2, np 4 2 2 2,
 * ng 4 2 2 2; B tp 2 1 0 0, np 2 1 1 1, ng 4 2 2 2.
 * F1(A) = 1; F1(B) = 2*3 / (5 + 10) = 0.4. */
#include "bootstrap.h"
#include "evalset.h"
#include "ot_common.h"
#include "ot_test.h"

#include <math.h>
#include <string.h>

static const char *const GT[] = {"a", "b"};
static const char *const IDS[] = {"x1", "x2", "y1", "z1", "z2"};
static const char *const GROUPS[] = {"x", "x", "y", NULL, ""};

/* B's prediction of item i; A predicts the ground truth. */
static ot_evalset *make(int system_b, int split_y) {
  ot_evalset *e;
  OT_ASSERT(ot_evalset_open(&e) == OT_OK);
  for (int i = 0; i < 5; i++) {
    OT_ASSERT(ot_evalset_add_truth(e, IDS[i], GT, 2) == OT_OK);
    ot_evalset_set_group(e, split_y && i == 2 ? "y2" : GROUPS[i]);
  }
  static const char *const A1[] = {"a"}, *const C1[] = {"c"};
  for (int i = 0; i < 5; i++) {
    const char *const *p = !system_b ? GT : i < 3 ? A1 : C1;
    OT_ASSERT(ot_evalset_add_pred(e, IDS[i], p, NULL, system_b ? 1 : 2, i + 1) == OT_OK);
  }
  return e;
}

static int counts_are(const json_t *g, const char *key, const int *want) {
  const json_t *a = json_object_get(g, key);
  if (json_array_size(a) != 4) return 0;
  for (size_t i = 0; i < 4; i++)
    if (json_integer_value(json_array_get(a, i)) != want[i]) return 0;
  return 1;
}

int main(void) {
  ot_evalset *ea = make(0, 0), *eb = make(1, 0), *ec = make(1, 1);
  json_t *ga = ot_eval_groups_json(ea), *gb = ot_eval_groups_json(eb), *gc = ot_eval_groups_json(ec);
  CHECK(json_integer_value(json_object_get(ga, "n")) == 4);
  static const int a_tp[] = {4, 2, 2, 2}, b_tp[] = {2, 1, 0, 0}, b_np[] = {2, 1, 1, 1},
                   ng[] = {4, 2, 2, 2};
  CHECK(counts_are(ga, "tp", a_tp) && counts_are(ga, "n_pred", a_tp) && counts_are(ga, "n_gt", ng));
  CHECK(counts_are(gb, "tp", b_tp) && counts_are(gb, "n_pred", b_np) && counts_are(gb, "n_gt", ng));
  CHECK(!strcmp(json_string_value(json_object_get(ga, "names_hash")),
                json_string_value(json_object_get(gb, "names_hash"))));

  ot_eval_paired p, q;
  CHECK(ot_eval_paired_f1(ga, gb, 2000, &p) == OT_OK);
  printf("A - B: %+.4f [%+.4f, %+.4f] over %d groups\n", p.diff, p.lo, p.hi, p.groups);
  CHECK(fabs(p.diff - 0.6) < 1e-12 && p.groups == 4 && p.rounds == 2000);
  /* A is ahead on every group: no draw can reverse it */
  CHECK(p.lo > 0.0 && p.hi <= 1.0 && p.lo <= p.diff && p.diff <= p.hi);
  CHECK(ot_eval_paired_f1(ga, gb, 2000, &q) == OT_OK);
  CHECK(q.lo == p.lo && q.hi == p.hi); /* a fixed seed: the same interval every time */
  CHECK(ot_eval_paired_f1(gb, ga, 2000, &q) == OT_OK);
  CHECK(fabs(q.diff + p.diff) < 1e-12 && fabs(q.lo + p.hi) < 1e-12 && fabs(q.hi + p.lo) < 1e-12);
  /* a row against itself: 0, every draw */
  CHECK(ot_eval_paired_f1(gb, gb, 500, &q) == OT_OK);
  CHECK(q.diff == 0.0 && q.lo == 0.0 && q.hi == 0.0);

  /* other groups (y1 moved to "y2"): the rows were not scored on the same
   * units, so they are not paired */
  CHECK(json_integer_value(json_object_get(gc, "n")) == 4);
  CHECK(strcmp(json_string_value(json_object_get(ga, "names_hash")),
               json_string_value(json_object_get(gc, "names_hash"))));
  CHECK(ot_eval_paired_f1(ga, gc, 100, &q) == OT_EINVAL);
  CHECK(strstr(ot_errmsg(), "other groups") != NULL);
  CHECK(ot_eval_paired_f1(ga, NULL, 100, &q) == OT_EINVAL);
  json_t *broken = json_deep_copy(ga);
  json_array_remove(json_object_get(broken, "tp"), 0);
  CHECK(ot_eval_paired_f1(broken, ga, 100, &q) == OT_EINVAL);

  /* mixed evidence: B better on one group, worse on another -> the
   * interval holds 0 */
  json_t *mix = json_deep_copy(gb);
  static const int m_tp[] = {4, 2, 0, 0}, m_np[] = {4, 2, 2, 2};
  for (size_t i = 0; i < 4; i++) {
    json_array_set_new(json_object_get(mix, "tp"), i, json_integer(m_tp[i]));
    json_array_set_new(json_object_get(mix, "n_pred"), i, json_integer(m_np[i]));
  }
  json_t *mix2 = json_deep_copy(mix); /* the mirror image: 0 on x, y and perfect on z1, z2 */
  static const int r_tp[] = {0, 0, 2, 2};
  for (size_t i = 0; i < 4; i++) json_array_set_new(json_object_get(mix2, "tp"), i, json_integer(r_tp[i]));
  CHECK(ot_eval_paired_f1(mix, mix2, 2000, &q) == OT_OK);
  printf("mixed: %+.4f [%+.4f, %+.4f]\n", q.diff, q.lo, q.hi);
  CHECK(q.diff > 0.0 && q.lo < 0.0 && q.hi > 0.0);

  json_decref(mix);
  json_decref(mix2);
  json_decref(broken);
  json_decref(ga);
  json_decref(gb);
  json_decref(gc);
  ot_evalset_close(ea);
  ot_evalset_close(eb);
  ot_evalset_close(ec);
  return ot_test_report();
}
