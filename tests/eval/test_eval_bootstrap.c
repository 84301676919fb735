/* The paired bootstrap of F1 differences (stages/eval/bootstrap.h) on hand
 * sets: per-group counts, the difference on all groups, intervals that
 * must or must not hold 0, determinism, the refusal to pair rows over
 * other groups, and models of several runs (seed means) paired by their
 * runs' mean F1; the report's seed-mean section built from rows.
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
#include "report.h"
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

/* One run per side. */
static int pair1(const json_t *a, const json_t *b, int rounds, ot_eval_paired *out) {
  return ot_eval_paired_diff(&a, 1, &b, 1, rounds, OT_EVAL_STAT_F1, out);
}

/* A minimal report row: its name, model, overall micro F1 and groups. */
static json_t *row(const char *name, const char *model, double f1, const json_t *groups) {
  return json_pack("{s:s, s:s, s:{s:{s:f}}, s:O}", "name", name, "model", model, "micro", "overall",
                   "f1", f1, "groups", groups);
}

static void test_seed_means(const json_t *ga, const json_t *gb, const json_t *gc) {
  ot_eval_paired p, q;
  CHECK(pair1(ga, gb, 1000, &p) == OT_OK);
  /* two runs of A against B: the mean of the runs; A, A is A on the same draws */
  const json_t *aa[2] = {ga, ga}, *ab[2] = {ga, gb}, *bs[1] = {gb}, *ac[2] = {ga, gc};
  CHECK(ot_eval_paired_diff(aa, 2, bs, 1, 1000, OT_EVAL_STAT_F1, &q) == OT_OK);
  CHECK(q.diff == p.diff && q.lo == p.lo && q.hi == p.hi);
  /* runs {A, B} against B: (1 + 0.4) / 2 - 0.4 = 0.3, half of A - B on every draw */
  CHECK(ot_eval_paired_diff(ab, 2, bs, 1, 1000, OT_EVAL_STAT_F1, &q) == OT_OK);
  printf("mean of A, B - B: %+.4f [%+.4f, %+.4f]\n", q.diff, q.lo, q.hi);
  CHECK(fabs(q.diff - 0.3) < 1e-12 && fabs(q.lo - p.lo / 2) < 1e-12 && fabs(q.hi - p.hi / 2) < 1e-12);
  /* runs of one model over other groups: refused */
  CHECK(ot_eval_paired_diff(ac, 2, bs, 1, 100, OT_EVAL_STAT_F1, &q) == OT_EINVAL);
  CHECK(strstr(ot_errmsg(), "other groups") != NULL);

  /* the report: rows a1, a2 of model "A", b1 of "B", and a row of no model */
  json_t *rep = json_pack("{s:[o, o, o, {s:s}]}", "rows", row("a1", "A", 1.0, ga),
                          row("a2", "A", 0.4, gb), row("b1", "B", 0.4, gb), "name", "alone");
  ot_eval_report_add_means(rep, 1000);
  const json_t *means = json_object_get(rep, "seed_means"), *pairs = json_object_get(rep, "paired_means");
  CHECK(json_array_size(means) == 2 && json_array_size(pairs) == 1);
  const json_t *ma = json_array_get(means, 0), *pair = json_array_get(pairs, 0);
  CHECK(!strcmp(json_string_value(json_object_get(ma, "model")), "A"));
  CHECK(json_array_size(json_object_get(ma, "rows")) == 2 &&
        fabs(json_number_value(json_object_get(ma, "f1")) - 0.7) < 1e-12);
  CHECK(!strcmp(json_string_value(json_object_get(pair, "row")), "B") &&
        fabs(json_number_value(json_object_get(pair, "diff")) + 0.3) < 1e-12 &&
        fabs(json_number_value(json_object_get(pair, "hi")) + p.lo / 2) < 1e-12);
  char *md = ot_eval_report_md(rep);
  CHECK(strstr(md, "## Seed means") && strstr(md, "| A | 2 | 100.0 / 40.0 |") &&
        strstr(md, "| B | -30.0 ["));
  free(md);
  /* no row of a model any more: the section goes */
  json_array_clear(json_object_get(rep, "rows"));
  ot_eval_report_add_means(rep, 1000);
  CHECK(!json_object_get(rep, "seed_means") && !json_object_get(rep, "paired_means"));
  json_decref(rep);
}

/* Tag Gain: per-item terms summed per group, the per-item mean compared.
 * A: x1 0.5, x2 none, y1 1, z1 0, z2 0.5 -> sums (x, y, z1, z2) 0.5 1 0 0.5
 * over 1 1 1 1 items, mean 0.5; B: y1 0.2 only -> 0.2. */
static void test_gain(const ot_evalset *ea, const ot_evalset *eb, const json_t *ga_plain) {
  const double gain_a[5] = {0.5, NAN, 1.0, 0.0, 0.5}, gain_b[5] = {NAN, NAN, 0.2, NAN, NAN};
  json_t *ga = ot_eval_groups_json(ea, gain_a), *gb = ot_eval_groups_json(eb, gain_b);
  static const int items_a[] = {1, 1, 1, 1}, items_b[] = {0, 1, 0, 0};
  const json_t *sa = json_object_get(ga, "gain_sum");
  CHECK(counts_are(ga, "gain_items", items_a) && counts_are(gb, "gain_items", items_b));
  CHECK(json_array_size(sa) == 4 && json_real_value(json_array_get(sa, 0)) == 0.5 &&
        json_real_value(json_array_get(sa, 1)) == 1.0 && json_real_value(json_array_get(sa, 3)) == 0.5);
  CHECK(!json_object_get(ga_plain, "gain_sum")); /* without Tag Gain: F1's counts only */
  ot_eval_paired p;
  CHECK(ot_eval_paired_diff((const json_t *const *)&ga, 1, (const json_t *const *)&gb, 1, 2000,
                            OT_EVAL_STAT_GAIN, &p) == OT_OK);
  printf("Tag Gain A - B: %+.4f [%+.4f, %+.4f]\n", p.diff, p.lo, p.hi);
  CHECK(fabs(p.diff - 0.3) < 1e-12 && p.lo <= p.diff && p.diff <= p.hi);
  /* the F1 pair is unchanged by the gain arrays */
  ot_eval_paired f, f_plain;
  CHECK(pair1(ga, gb, 500, &f) == OT_OK && pair1(ga_plain, gb, 500, &f_plain) == OT_OK);
  CHECK(f.diff == f_plain.diff && f.lo == f_plain.lo && f.hi == f_plain.hi);
  /* a row without Tag Gain cannot be paired on it */
  CHECK(ot_eval_paired_diff((const json_t *const *)&ga, 1, &ga_plain, 1, 100, OT_EVAL_STAT_GAIN,
                            &p) == OT_EINVAL &&
        strstr(ot_errmsg(), "Tag Gain"));
  /* the report: "paired_gain" between the rows that have it, a section of its own */
  json_t *rep = json_pack("{s:[o, o, o]}", "rows", row("a", "", 1.0, ga), row("b", "", 0.4, gb),
                          row("plain", "", 1.0, ga_plain));
  ot_eval_report_add_paired(rep, 1000);
  const json_t *pg = json_object_get(rep, "paired_gain");
  CHECK(json_array_size(json_object_get(rep, "paired_f1")) == 3 && json_array_size(pg) == 1);
  CHECK(!strcmp(json_string_value(json_object_get(json_array_get(pg, 0), "row")), "b") &&
        fabs(json_number_value(json_object_get(json_array_get(pg, 0), "diff")) + 0.3) < 1e-12);
  char *md = ot_eval_report_md(rep);
  CHECK(strstr(md, "## Tag Gain differences") && strstr(md, "| ΔTag Gain |") && strstr(md, "| b | -30.0 ["));
  free(md);
  json_array_remove(json_object_get(rep, "rows"), 1); /* b gone: no pair has Tag Gain */
  ot_eval_report_add_paired(rep, 1000);
  CHECK(!json_object_get(rep, "paired_gain"));
  json_decref(rep);
  /* seed means: runs a1, a2 of A (gain 0.5, 0.5) against b1 of B (0.2);
   * the model "P" (plain rows, no Tag Gain) gets no gain and no gain pair */
  json_t *tg_a = json_pack("{s:f, s:f}", "delta_known", 0.3, "delta_novel", 0.2),
         *tg_b = json_pack("{s:f, s:f}", "delta_known", 0.2, "delta_novel", 0.0);
  json_t *a1 = row("a1", "A", 1.0, ga), *a2 = row("a2", "A", 1.0, ga), *b1 = row("b1", "B", 0.4, gb);
  json_object_set(a1, "tag_gain", tg_a), json_object_set(a2, "tag_gain", tg_a);
  json_object_set(b1, "tag_gain", tg_b);
  rep = json_pack("{s:[o, o, o, o]}", "rows", a1, a2, b1, row("p1", "P", 1.0, ga_plain));
  ot_eval_report_add_means(rep, 1000);
  const json_t *means = json_object_get(rep, "seed_means"), *pm = json_object_get(rep, "paired_means_gain");
  CHECK(json_array_size(means) == 3 &&
        fabs(json_number_value(json_object_get(json_array_get(means, 0), "gain")) - 0.5) < 1e-12 &&
        !json_object_get(json_array_get(means, 2), "gain"));
  CHECK(json_array_size(pm) == 1 &&
        fabs(json_number_value(json_object_get(json_array_get(pm, 0), "diff")) + 0.3) < 1e-12);
  md = ot_eval_report_md(rep);
  CHECK(strstr(md, "| A | 2 | 100.0 / 100.0 |") && strstr(md, "| 50.0 / 50.0 | 50.0 |") &&
        strstr(md, "| – | – |") && strstr(md, "| ΔTag Gain |"));
  free(md);
  json_decref(rep);
  /* Runs scored by other judges (other weights, the same path): A's runs
   * have no common Tag Gain mean, and B is compared with A on F1 only; a
   * path alone cannot tell two judges apart when both have the hash. */
  json_t *judge1 = json_pack("{s:f, s:f, s:s, s:{s:s}}", "delta_known", 0.3, "delta_novel", 0.2, "judge",
                             "j.h5", "judge_calibration", "judge_weights", "aaaa"),
         *judge2 = json_pack("{s:f, s:f, s:s, s:{s:s}}", "delta_known", 0.3, "delta_novel", 0.2, "judge",
                             "j.h5", "judge_calibration", "judge_weights", "bbbb");
  a1 = row("a1", "A", 1.0, ga), a2 = row("a2", "A", 1.0, ga), b1 = row("b1", "B", 0.4, gb);
  json_object_set(a1, "tag_gain", judge1), json_object_set(a2, "tag_gain", judge2);
  json_object_set(b1, "tag_gain", judge1);
  CHECK(ot_eval_scorer_difference(a1, a2) && !strcmp(ot_eval_scorer_difference(a1, a2), "judge") &&
        !ot_eval_scorer_difference(a1, b1));
  rep = json_pack("{s:[o, o, o]}", "rows", a1, a2, b1);
  ot_eval_report_add_means(rep, 1000);
  means = json_object_get(rep, "seed_means");
  CHECK(!json_object_get(json_array_get(means, 0), "gain") &&
        json_object_get(json_array_get(means, 1), "gain") && !json_object_get(rep, "paired_means_gain") &&
        json_array_size(json_object_get(rep, "paired_means")) == 1);
  /* rows: a1 - b1 share the judge and are paired, a2 with neither */
  ot_eval_report_add_paired(rep, 1000);
  pm = json_object_get(rep, "paired_gain");
  CHECK(json_array_size(pm) == 1 &&
        !strcmp(json_string_value(json_object_get(json_array_get(pm, 0), "row")), "b1") &&
        !strcmp(json_string_value(json_object_get(json_array_get(pm, 0), "vs")), "a1"));
  md = ot_eval_report_md(rep);
  CHECK(strstr(md, "- Tag Gain from different scorers: a1 and a2 (other judge weights)"));
  free(md);
  /* a tau read back from the report (12 digits) is the tau just computed */
  json_object_set_new(judge1, "tau_rel", json_real(0.0934851460518));
  json_object_set_new(judge2, "tau_rel", json_real(0.093485146051826));
  json_object_set_new(json_object_get(judge2, "judge_calibration"), "judge_weights", json_string("aaaa"));
  CHECK(!ot_eval_scorer_difference(a1, a2));
  json_object_set_new(judge2, "tau_rel", json_real(0.0934852));
  CHECK(ot_eval_scorer_difference(a1, a2) && !strcmp(ot_eval_scorer_difference(a1, a2), "tau_rel"));
  json_object_set_new(judge2, "tau_rel", json_real(0.0934851460518));
  /* without the hashes (reports of older judges) the path decides */
  json_object_del(json_object_get(judge2, "judge_calibration"), "judge_weights");
  CHECK(!ot_eval_scorer_difference(a1, a2));
  json_object_set_new(judge2, "judge", json_string("other.h5"));
  CHECK(ot_eval_scorer_difference(a1, a2));
  json_decref(rep);
  json_decref(judge1);
  json_decref(judge2);
  json_decref(tg_a);
  json_decref(tg_b);
  json_decref(ga);
  json_decref(gb);
}

int main(void) {
  ot_evalset *ea = make(0, 0), *eb = make(1, 0), *ec = make(1, 1);
  json_t *ga = ot_eval_groups_json(ea, NULL), *gb = ot_eval_groups_json(eb, NULL),
         *gc = ot_eval_groups_json(ec, NULL);
  CHECK(json_integer_value(json_object_get(ga, "n")) == 4);
  static const int a_tp[] = {4, 2, 2, 2}, b_tp[] = {2, 1, 0, 0}, b_np[] = {2, 1, 1, 1},
                   ng[] = {4, 2, 2, 2};
  CHECK(counts_are(ga, "tp", a_tp) && counts_are(ga, "n_pred", a_tp) && counts_are(ga, "n_gt", ng));
  CHECK(counts_are(gb, "tp", b_tp) && counts_are(gb, "n_pred", b_np) && counts_are(gb, "n_gt", ng));
  CHECK(!strcmp(json_string_value(json_object_get(ga, "names_hash")),
                json_string_value(json_object_get(gb, "names_hash"))));

  ot_eval_paired p, q;
  CHECK(pair1(ga, gb, 2000, &p) == OT_OK);
  printf("A - B: %+.4f [%+.4f, %+.4f] over %d groups\n", p.diff, p.lo, p.hi, p.groups);
  CHECK(fabs(p.diff - 0.6) < 1e-12 && p.groups == 4 && p.rounds == 2000);
  /* A is ahead on every group: no draw can reverse it */
  CHECK(p.lo > 0.0 && p.hi <= 1.0 && p.lo <= p.diff && p.diff <= p.hi);
  CHECK(pair1(ga, gb, 2000, &q) == OT_OK);
  CHECK(q.lo == p.lo && q.hi == p.hi); /* a fixed seed: the same interval every time */
  CHECK(pair1(gb, ga, 2000, &q) == OT_OK);
  CHECK(fabs(q.diff + p.diff) < 1e-12 && fabs(q.lo + p.hi) < 1e-12 && fabs(q.hi + p.lo) < 1e-12);
  /* a row against itself: 0, every draw */
  CHECK(pair1(gb, gb, 500, &q) == OT_OK);
  CHECK(q.diff == 0.0 && q.lo == 0.0 && q.hi == 0.0);

  /* other groups (y1 moved to "y2"): the rows were not scored on the same
   * units, so they are not paired */
  CHECK(json_integer_value(json_object_get(gc, "n")) == 4);
  CHECK(strcmp(json_string_value(json_object_get(ga, "names_hash")),
               json_string_value(json_object_get(gc, "names_hash"))));
  CHECK(pair1(ga, gc, 100, &q) == OT_EINVAL);
  CHECK(strstr(ot_errmsg(), "other groups") != NULL);
  CHECK(pair1(ga, NULL, 100, &q) == OT_EINVAL);
  json_t *broken = json_deep_copy(ga);
  json_array_remove(json_object_get(broken, "tp"), 0);
  CHECK(pair1(broken, ga, 100, &q) == OT_EINVAL);

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
  CHECK(pair1(mix, mix2, 2000, &q) == OT_OK);
  printf("mixed: %+.4f [%+.4f, %+.4f]\n", q.diff, q.lo, q.hi);
  CHECK(q.diff > 0.0 && q.lo < 0.0 && q.hi > 0.0);

  test_seed_means(ga, gb, gc);
  test_gain(ea, eb, ga);

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
