/* Open-set Tag Gain (seed §2, "Open-set Metric (Tag Gain)") over an
 * ot_evalset, behind a pluggable similarity so external embeddings
 * (taggain_emb.h) or a judge model can supply it.
 *
 * Per item i with predicted tags P_i (all of them: generated and copied from
 * retrieval, they are the model's output), ground truth G_i and the training
 * tag set T_train = {t : train count > 0}:
 *   1. a tag is judged when sim_rel(i, t) and sim_div(t, t) are both known;
 *      the others are "unjudged": never kept, counted. An item whose visual
 *      input has no vector is skipped (counted) and enters no mean.
 *   2. judged tags are walked by sim_rel descending (ties: tag text
 *      ascending); t is kept iff sim_rel(i, t) > tau_rel and
 *      sim_div(t, t') < tau_div for every t' kept before it (greedy).
 *   3. T_known = kept \ G_i ∩ T_train, T_novel = kept \ T_train.
 * Reported over the scored (not skipped) items:
 *   t_known, t_novel         mean |T_known|, |T_novel| per scored item
 *   delta_*                  per-item mean of |T_*| / |G_i| over the scored
 *                            items with G_i ≠ {} (the paper's Δ, averaged)
 *   delta_*_ratio_of_sums    Σ|T_*| / Σ|G_i| over the items with ground truth
 *                            (as the per-item mean: an item without any adds
 *                            kept tags but no |G_i|)
 *                            (0 when Σ|G_i| = 0) */
#ifndef OT_EVAL_TAGGAIN_H
#define OT_EVAL_TAGGAIN_H

#include "evalset.h"

#include <stdint.h>

/* What a sim_rel call found. */
enum { OT_TG_SIM_OK = 0, OT_TG_SIM_NO_TAG = 1, OT_TG_SIM_NO_ITEM = 2 };

/* The two similarities; tags are ot_evalset tag ids, items indexes into the
 * evalset (ot_evalset_item_at). */
typedef struct {
  /* Relevance of tag `tag` to the visual input of item `item` (CLIP-like):
   * OT_TG_SIM_OK and *sim set, OT_TG_SIM_NO_TAG when the tag cannot be
   * judged, OT_TG_SIM_NO_ITEM when the item has no visual vector (whatever
   * the tag: items without predictions are probed with tag 0). */
  int (*sim_rel)(void *ctx, int64_t item, int32_t tag, double *sim);
  /* Tag-tag similarity (BGE-like): 1 and *sim set, or 0 when unknown. */
  int (*sim_div)(void *ctx, int32_t a, int32_t b, double *sim);
  void *ctx;
} ot_taggain_sim;

/* The fate of one predicted tag. */
typedef enum {
  OT_TG_KEPT_GT,     /* kept; in ground truth and in training: neither known nor novel */
  OT_TG_KNOWN,       /* kept; in training, not in ground truth */
  OT_TG_NOVEL,       /* kept; never in training */
  OT_TG_IRRELEVANT,  /* sim_rel <= tau_rel */
  OT_TG_REDUNDANT,   /* relevant, but sim_div >= tau_div to a tag kept before it */
  OT_TG_UNJUDGED     /* no similarity for it */
} ot_taggain_fate;

/* Filter item i: fate[k] for its k-th predicted tag (item->pred[k]); fate
 * is caller-provided, [n_pred] (may be NULL when n_pred is 0). Returns 1 if
 * scored, 0 if skipped (no visual vector; fate then untouched). */
int ot_taggain_item(const ot_evalset *e, int64_t i, const ot_taggain_sim *sim, double tau_rel,
                    double tau_div, ot_taggain_fate *fate);

typedef struct {
  double tau_rel, tau_div;
  int64_t items;          /* scored */
  int64_t skipped_items;  /* no visual vector */
  int64_t items_with_gt;  /* scored, G_i ≠ {} */
  int64_t unjudged_tags;  /* predicted tags of scored items without a similarity */
  int64_t n_pred, n_kept, n_irrelevant, n_redundant; /* over scored items */
  int64_t n_known, n_novel, n_gt;                    /* Σ|T_known|, Σ|T_novel|, Σ|G_i| */
  double t_known, t_novel;
  double delta_known, delta_novel;
  double delta_known_ratio_of_sums, delta_novel_ratio_of_sums;
} ot_taggain_result;

/* Tag Gain over every item of e. item_gain (NULL: not wanted), [n_items]:
 * each item's (|T_known| + |T_novel|) / |G_i|, NAN when it was skipped or
 * G_i = {} (the terms of delta_known + delta_novel, for the bootstrap). */
void ot_taggain_compute(const ot_evalset *e, const ot_taggain_sim *sim, double tau_rel,
                        double tau_div, double *item_gain, ot_taggain_result *out);

#endif
