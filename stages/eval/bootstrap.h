/* How sure a difference between two report rows is: a paired bootstrap of
 * the micro F1 (overall) difference — and of the Tag Gain Δ_known +
 * Δ_novel difference when both rows have one — resampling groups.
 *
 * Items of one group (the dataset's "group": an emoji's vendor images and
 * skin tones, a video's clips) are not independent, so the unit drawn is
 * the group. Each row keeps, in report.json, its per-group counts — TP_g =
 * Σ_{i∈g} |G_i ∩ P_i|, NP_g = Σ|P_i|, NG_g = Σ|G_i| — in the order of the
 * sorted group names, with a hash of those names. A round draws n_groups
 * groups with replacement and computes both rows' F1 = 2ΣTP / (ΣNP + ΣNG)
 * on that same draw; the interval is the 2.5 and 97.5 percentiles of the
 * differences over the rounds. Tag Gain the same way: per group the sum of
 * its items' (|T_known| + |T_novel|) / |G_i| and how many items have a
 * term (scored, G_i ≠ {}), the statistic Σ sums / Σ items — the per-item
 * mean Δ_known + Δ_novel on the draw. The draws come from a fixed seed, so
 * a report always shows the same interval. */
#ifndef OT_EVAL_BOOTSTRAP_H
#define OT_EVAL_BOOTSTRAP_H

#include "evalset.h"

#include <jansson.h>

/* The per-group counts of e as a row's "groups" object:
 * {"n": G, "names_hash": "<hex>", "tp": [G], "n_pred": [G], "n_gt": [G]},
 * with item_gain (ot_taggain_compute's, NULL: none) also "gain_sum": [G]
 * and "gain_items": [G]. New reference. */
json_t *ot_eval_groups_json(const ot_evalset *e, const double *item_gain);

/* What a pair compares: micro F1, or Tag Gain's Δ_known + Δ_novel. */
typedef enum { OT_EVAL_STAT_F1, OT_EVAL_STAT_GAIN } ot_eval_stat;

typedef struct {
  double diff;   /* mean statistic of a's runs - that of b's runs, on all the groups */
  double lo, hi; /* its 95 % interval over the rounds */
  int groups, rounds;
} ot_eval_paired;

/* Two models' rows -> *out. Each side is one row, or several runs of one
 * model (other train.seed): a[0..na), b[0..nb) are their "groups" objects.
 * A side's statistic (`stat`) is its runs' mean, computed on each round's
 * one draw of groups for all runs of both sides (for one run per side: the
 * rows' difference). OT_EINVAL when one is missing or malformed (for
 * OT_EVAL_STAT_GAIN: has no Tag Gain) or they are over other groups (then
 * the rows were not scored on the same items). rounds >= 1. */
int ot_eval_paired_diff(const json_t *const *a, int na, const json_t *const *b, int nb, int rounds,
                        ot_eval_stat stat, ot_eval_paired *out);

/* Pair `row` (its runs' groups a[0..na)) with `vs` (b[0..nb)) on `stat`
 * and append {"row", "vs", "diff", "lo", "hi", "groups", "rounds"} to the
 * array `pairs`; nothing when they cannot be paired (a row from before
 * per-group counts or without Tag Gain, or over other groups). */
void ot_eval_pairs_append(json_t *pairs, const char *row, const json_t *const *a, int na,
                          const char *vs, const json_t *const *b, int nb, int rounds,
                          ot_eval_stat stat);

#endif
