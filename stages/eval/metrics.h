/* Closed-set tagging metrics over an ot_evalset.
 *
 * Notation: item i has ground truth G_i and prediction P_i (normalised,
 * duplicate-free tag sets; P_i = {} when it has no prediction line). A
 * subset U of tags restricts both: G_i^U = G_i ∩ U, P_i^U = P_i ∩ U,
 * TP_i = |G_i^U ∩ P_i^U|.
 *
 *   micro:    P = ΣTP_i / Σ|P_i^U|,  R = ΣTP_i / Σ|G_i^U|,  F1 = 2PR/(P+R)
 *   per item: over the items with G_i^U ≠ {} only;
 *             p_i = TP_i/|P_i^U| (0 if P_i^U = {}), r_i = TP_i/|G_i^U|,
 *             f_i = 2 p_i r_i/(p_i+r_i) (0 if both 0); P, R, F1 = means of
 *             p_i, r_i, f_i. Items with G_i^U = {} are left out (recall is
 *             undefined for them); their predictions still count in micro P.
 *   A ratio whose denominator is 0 is reported as 0.
 *
 * Subsets (train count c(t) = training items carrying t, m = common_min,
 * S = tags with c(t) > 0 that occur in some G_i: "shared"):
 *   overall  U = all tags
 *   closed   U = {t : c(t) > 0}             (the "closed-set F1")
 *   common   U = {t ∈ S : c(t) >= m}
 *   rare     U = {t ∈ S : c(t) <  m}
 *
 * Novelty, over the generated predictions (source "gen" or absent; tags
 * copied from retrieval, "ret", are not generated):
 *   novel_share   = |{(i,t): t ∈ P_i generated, c(t) = 0}| / |{(i,t): t ∈ P_i generated}|
 *   novel_correct = |{(i,t): t ∈ P_i generated, c(t) = 0, t ∈ G_i}| */
#ifndef OT_EVAL_METRICS_H
#define OT_EVAL_METRICS_H

#include "evalset.h"

#include <stdint.h>

typedef struct {
  int64_t n_tags;           /* |U ∩ (tags in some G_i)|: evaluated tags */
  int64_t tp, n_pred, n_gt; /* ΣTP_i, Σ|P_i^U|, Σ|G_i^U| */
  double p, r, f1;          /* micro */
  int64_t items;            /* items with G_i^U ≠ {} */
  double item_p, item_r, item_f1;
} ot_eval_scores;

enum { OT_EVAL_OVERALL, OT_EVAL_CLOSED, OT_EVAL_COMMON, OT_EVAL_RARE, OT_EVAL_N_SUBSETS };
extern const char *const ot_eval_subset_names[OT_EVAL_N_SUBSETS]; /* "overall", ... */

typedef struct {
  ot_eval_scores s[OT_EVAL_N_SUBSETS];
  int64_t common_min;
  int64_t n_items;          /* evaluated items (ground truth) */
  int64_t n_no_gt;          /* items whose ground truth is empty */
  int64_t n_predicted;      /* items with a prediction line */
  int64_t n_missing;        /* items without one (they predict nothing) */
  int64_t n_train_items;
  int64_t n_train_tags;     /* distinct tags in training */
  int64_t n_gen, n_ret;     /* predicted tags generated / copied from retrieval */
  int64_t n_novel, n_novel_correct;
  double novel_share;
} ot_eval_result;

/* Fill *out from e. */
void ot_eval_compute(const ot_evalset *e, int64_t common_min, ot_eval_result *out);

#endif
