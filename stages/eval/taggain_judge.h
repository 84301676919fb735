/* Tag Gain similarities from a judge checkpoint (model.type judge, trained by
 * ot-train; eval.judge = its final.h5):
 *
 *   sim_rel(i, t) = cos(judge image vector of item i, judge text vector of t)
 *   sim_div(a, b) = cos(judge text vector of a, judge text vector of b)
 *
 * Image vectors: every item of data.dir/<eval.split> through the judge's
 * visual tower (ot_model_judge_image), embed.batch items per pass; text
 * vectors: every tag of the evalset (ground truth, predictions, training
 * tags), as normalised text, BPE-encoded with the judge's tokenizer and cut
 * to its model.tag_len (ot_model_judge_embed_text). A tag without tokens is
 * unjudged; an evalset item absent from the split's shards has no vector.
 *
 * Calibration on the val split (data.dir/val), cached in
 * <folder of eval.judge>/calibration.json (written atomically; recomputed
 * when missing or made for other judge weights or step, eval.judge_gt_pass,
 * data.dir, or train and val splits extracted again there):
 *   tau_rel  the (1 - p) quantile, linear interpolation between order
 *            statistics (numpy.quantile's default), of sim_rel over the
 *            distinct (val item, normalised ground-truth tag) pairs, p =
 *            eval.judge_gt_pass: a share p of those pairs has sim_rel > tau_rel
 *            (up to ties and 1/pairs)
 *   tau_div  the median sim_div over the near-duplicate pairs of the training
 *            tag set (tags with a training count > 0): two distinct tags a, b
 *            are near-duplicates when, after removing every ASCII character
 *            that is not a letter or digit (non-ASCII bytes are kept), a == b,
 *            a == b + "s" or a == b + "es" (or the other way round). With
 *            fewer than 10 such pairs, tau_div = 0.8 (reported as a fallback). */
#ifndef OT_EVAL_TAGGAIN_JUDGE_H
#define OT_EVAL_TAGGAIN_JUDGE_H

#include "evalset.h"
#include "ot_config.h"
#include "taggain.h"

#include <jansson.h>

typedef struct ot_taggain_judge ot_taggain_judge;

/* Load the judge named by cfg->eval.judge (its own model settings come from
 * the checkpoint's config), embed the items of data.dir/<eval.split> and the
 * tags of e, calibrate (or read the cache), and write cfg->eval.judge_vectors
 * when set. e must outlive the handle and gain no tags or items afterwards.
 * OT_EINVAL naming eval.judge when the file is not a judge checkpoint, or the
 * split's frames differ from the judge's. Caller owns *out
 * (ot_taggain_judge_close). */
int ot_taggain_judge_open(ot_taggain_judge **out, const ot_config *cfg, const ot_evalset *e);
void ot_taggain_judge_close(ot_taggain_judge *j); /* accepts NULL */

/* The similarity callbacks over j (valid while j is open). */
ot_taggain_sim ot_taggain_judge_sim(ot_taggain_judge *j);
/* The calibrated thresholds. */
void ot_taggain_judge_taus(const ot_taggain_judge *j, double *tau_rel, double *tau_div);
/* The calibration record (what calibration.json holds, plus the item and tag
 * counts of this evaluation). New reference. */
json_t *ot_taggain_judge_json(const ot_taggain_judge *j);

#endif
