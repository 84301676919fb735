/* Tag Gain (taggain.c) on a hand-worked set with 2-D unit vectors: one
 * space for relevance and diversity, cos = dot product.
 *
 * Tag vectors: cat (1,0)  kitten (.8,.6)  animal (.6,.8)  cats (.6,-.8)
 *   feline (.6,-.8)  car (0,1)  toy (.3,.9539)  dog (-.8,.6)  wolf (-1,0);
 *   dragon has none (unjudged).
 * Training tags: cat animal dog sky car toy.  tau_rel 0.3, tau_div 0.8.
 *
 * A image (1,0), gt {cat}, pred {Cat, kitten, animal, cats, feline, car, toy, dragon}
 *   by relevance: cat 1, kitten .8, then the tie at .6 by text: animal, cats,
 *   feline; toy .3, car 0.
 *   cat kept (gt) | kitten: cos(cat) = .8, not < .8: redundant | animal: cos
 *   .6 to cat: kept, known | cats: .6, -.28: kept, novel | feline: cos(cats)
 *   = 1: redundant | toy: .3 is not > .3: irrelevant | car irrelevant |
 *   dragon unjudged.                       known 1, novel 1, |gt| 1
 * B image (0,1), gt {dog, sky}, pred {car, toy, animal, dog, wolf}
 *   car 1 kept, known | toy .954: cos(car) .954: redundant | animal .8:
 *   cos(car) = .8: redundant | dog .6: cos(car) .6: kept (gt) | wolf 0.
 *                                          known 1, novel 0, |gt| 2
 * C image (1,0), gt {}, pred {cats}: kept, novel. known 0, novel 1, |gt| 0
 * D no image vector, gt {cat}, pred {cat, dragon}: skipped (its dragon is
 *   not counted as unjudged).
 * E image (0,1), gt {sky, cat}, no prediction. known 0, novel 0, |gt| 2
 *
 * Scored A B C E (4), skipped 1, with gt A B E (3).
 *   T_known = 2/4, T_novel = 2/4
 *   Δ_known per item = (1/1 + 1/2 + 0/2)/3 = 0.5, ratio of sums 2/5
 *   Δ_novel per item = (1/1 + 0 + 0)/3 = 1/3,     ratio of sums 1/5 (C's
 *   novel tag has no |gt| to weigh against: over A B E, as the mean)
 *   predicted 14 = kept 6 + irrelevant 3 + redundant 4 + unjudged 1 */
#include "evalset.h"
#include "ot_common.h"
#include "ot_test.h"
#include "taggain.h"

#include <math.h>
#include <string.h>

typedef struct {
  const char *name;
  double x, y;
} vec2;

static const vec2 IMAGES[] = {{"A", 1, 0}, {"B", 0, 1}, {"C", 1, 0}, {"E", 0, 1}};
static const vec2 TAGS[] = {
    {"cat", 1, 0},      {"kitten", .8, .6}, {"animal", .6, .8},         {"cats", .6, -.8},
    {"feline", .6, -.8}, {"car", 0, 1},     {"toy", .3, .9539392014169456}, {"dog", -.8, .6},
    {"wolf", -1, 0},
};

static const vec2 *find(const vec2 *v, int n, const char *name) {
  for (int k = 0; k < n; k++)
    if (!strcmp(v[k].name, name)) return &v[k];
  return NULL;
}

static int calls_rel, calls_div;

static int sim_rel(void *ctx, int64_t item, int32_t tag, double *sim) {
  const ot_evalset *e = ctx;
  calls_rel++;
  const vec2 *im = find(IMAGES, 4, ot_evalset_item_at(e, item)->id);
  if (!im) return OT_TG_SIM_NO_ITEM;
  const vec2 *t = find(TAGS, 9, ot_evalset_tag(e, tag));
  if (!t) return OT_TG_SIM_NO_TAG;
  *sim = im->x * t->x + im->y * t->y;
  return OT_TG_SIM_OK;
}

static int sim_div(void *ctx, int32_t a, int32_t b, double *sim) {
  const ot_evalset *e = ctx;
  calls_div++;
  const vec2 *x = find(TAGS, 9, ot_evalset_tag(e, a)), *y = find(TAGS, 9, ot_evalset_tag(e, b));
  if (!x || !y) return 0;
  *sim = x->x * y->x + x->y * y->y;
  return 1;
}

/* The fate of the predicted tag `text` of item i (-1 if not predicted). */
static int fate_of(const ot_evalset *e, int64_t i, const ot_taggain_fate *fate, const char *text) {
  const ot_evalset_item *it = ot_evalset_item_at(e, i);
  for (int k = 0; k < it->n_pred; k++)
    if (!strcmp(ot_evalset_tag(e, it->pred[k]), text)) return (int)fate[k];
  return -1;
}

static int near(double a, double b) { return fabs(a - b) < 1e-12; }

int main(void) {
  ot_evalset *e;
  CHECK(ot_evalset_open(&e) == OT_OK);
  const char *train[][3] = {{"cat", "animal", "dog"}, {"sky", "car", "toy"}};
  for (int k = 0; k < 2; k++) CHECK(ot_evalset_add_train(e, train[k], 3, "train") == OT_OK);
  const char *gt_a[] = {"cat"}, *gt_b[] = {"dog", "sky"}, *gt_d[] = {"cat"}, *gt_e[] = {"sky", "cat"};
  CHECK(ot_evalset_add_truth(e, "A", gt_a, 1) == OT_OK);
  CHECK(ot_evalset_add_truth(e, "B", gt_b, 2) == OT_OK);
  CHECK(ot_evalset_add_truth(e, "C", NULL, 0) == OT_OK);
  CHECK(ot_evalset_add_truth(e, "D", gt_d, 1) == OT_OK);
  CHECK(ot_evalset_add_truth(e, "E", gt_e, 2) == OT_OK);
  /* "Cat " normalises to "cat": tags meet the vectors after ot_tagnorm. */
  const char *p_a[] = {"Cat ", "kitten", "animal", "cats", "feline", "car", "toy", "dragon"};
  const char *p_b[] = {"car", "toy", "animal", "dog", "wolf"}, *p_c[] = {"cats"};
  const char *p_d[] = {"cat", "dragon"};
  CHECK(ot_evalset_add_pred(e, "A", p_a, NULL, 8, 1) == OT_OK);
  CHECK(ot_evalset_add_pred(e, "B", p_b, NULL, 5, 2) == OT_OK);
  CHECK(ot_evalset_add_pred(e, "C", p_c, NULL, 1, 3) == OT_OK);
  CHECK(ot_evalset_add_pred(e, "D", p_d, NULL, 2, 4) == OT_OK);
  ot_taggain_sim sim = {sim_rel, sim_div, e};

  /* Per-item fates. */
  ot_taggain_fate fate[8];
  CHECK(ot_taggain_item(e, 0, &sim, 0.3, 0.8, fate) == 1);
  CHECK(fate_of(e, 0, fate, "cat") == OT_TG_KEPT_GT);
  CHECK(fate_of(e, 0, fate, "kitten") == OT_TG_REDUNDANT);   /* cos exactly tau_div */
  CHECK(fate_of(e, 0, fate, "animal") == OT_TG_KNOWN);
  CHECK(fate_of(e, 0, fate, "cats") == OT_TG_NOVEL);         /* wins the tie by text */
  CHECK(fate_of(e, 0, fate, "feline") == OT_TG_REDUNDANT);
  CHECK(fate_of(e, 0, fate, "toy") == OT_TG_IRRELEVANT);     /* cos exactly tau_rel */
  CHECK(fate_of(e, 0, fate, "car") == OT_TG_IRRELEVANT);
  CHECK(fate_of(e, 0, fate, "dragon") == OT_TG_UNJUDGED);
  CHECK(ot_taggain_item(e, 1, &sim, 0.3, 0.8, fate) == 1);
  CHECK(fate_of(e, 1, fate, "car") == OT_TG_KNOWN);
  CHECK(fate_of(e, 1, fate, "toy") == OT_TG_REDUNDANT);
  CHECK(fate_of(e, 1, fate, "animal") == OT_TG_REDUNDANT);
  CHECK(fate_of(e, 1, fate, "dog") == OT_TG_KEPT_GT);
  CHECK(fate_of(e, 1, fate, "wolf") == OT_TG_IRRELEVANT);
  CHECK(ot_taggain_item(e, 3, &sim, 0.3, 0.8, fate) == 0);   /* D: no image vector */
  CHECK(ot_taggain_item(e, 4, &sim, 0.3, 0.8, NULL) == 1);   /* E: no prediction, scored */

  /* Looser diversity keeps kitten (novel) but still not feline (cos 1 to cats). */
  CHECK(ot_taggain_item(e, 0, &sim, 0.3, 0.81, fate) == 1);
  CHECK(fate_of(e, 0, fate, "kitten") == OT_TG_NOVEL && fate_of(e, 0, fate, "feline") == OT_TG_REDUNDANT);

  ot_taggain_result r;
  double gain[5];
  ot_taggain_compute(e, &sim, 0.3, 0.8, gain, &r);
  CHECK(r.items == 4 && r.skipped_items == 1 && r.items_with_gt == 3);
  CHECK(r.unjudged_tags == 1);
  CHECK(r.n_pred == 14 && r.n_kept == 6 && r.n_irrelevant == 3 && r.n_redundant == 4);
  CHECK(r.n_known == 2 && r.n_novel == 2 && r.n_gt == 5);
  CHECKF(near(r.t_known, 0.5) && near(r.t_novel, 0.5), "T %g %g", r.t_known, r.t_novel);
  CHECKF(near(r.delta_known, 0.5), "delta_known %g", r.delta_known);
  CHECKF(near(r.delta_novel, 1.0 / 3), "delta_novel %g", r.delta_novel);
  CHECKF(near(r.delta_known_ratio_of_sums, 0.4) && near(r.delta_novel_ratio_of_sums, 0.2),
         "ratio of sums %g %g", r.delta_known_ratio_of_sums, r.delta_novel_ratio_of_sums);
  CHECK(r.tau_rel == 0.3 && r.tau_div == 0.8);
  /* the per-item terms (the bootstrap's): D skipped, one more item without
   * ground truth; the others average to delta_known + delta_novel */
  double terms = 0.0;
  int n_terms = 0;
  for (int i = 0; i < 5; i++)
    if (!isnan(gain[i])) terms += gain[i], n_terms++;
  CHECK(isnan(gain[3]) && n_terms == 3 && near(terms / n_terms, r.delta_known + r.delta_novel));

  /* Everything relevant and nothing redundant: every judged tag is kept. */
  ot_taggain_compute(e, &sim, -2, 2, NULL, &r);
  CHECK(r.n_kept == 13 && r.n_irrelevant == 0 && r.n_redundant == 0 && r.unjudged_tags == 1);
  /* Nothing relevant: no gain, nothing divides by zero. */
  ot_taggain_compute(e, &sim, 1.5, 0.8, NULL, &r);
  CHECK(r.n_kept == 0 && r.t_known == 0 && r.delta_known == 0 && r.delta_novel_ratio_of_sums == 0);
  CHECK(calls_rel > 0 && calls_div > 0);

  ot_evalset_close(e);
  return ot_test_report();
}
