/* Qualitative examples for the report, like the paper's figure: a few items
 * with their title, ground truth and the row's predicted tags, each marked
 * with what became of it.
 *
 * The items are the same for every row whatever its predictions — the n
 * items whose ids have the lowest FNV-1a hash — so rows scored by separate
 * ot-eval runs show the same items side by side, and nothing is picked for
 * looking good. */
#ifndef OT_EVAL_EXAMPLES_H
#define OT_EVAL_EXAMPLES_H

#include "evalset.h"
#include "ot_dataset.h"
#include "taggain.h"

#include <jansson.h>

/* [{"id", "title", "gt": [...], "tags": [{"tag", "fate", "novel"}]}] for n
 * items of e (fewer if e has fewer); titles from `truth` (the split e's
 * ground truth came from). fate: with sim (Tag Gain on) "gt", "known",
 * "novel", "irrelevant", "redundant" or "unjudged" (ot_taggain_fate);
 * without, "gt" or "wrong". novel: never seen in training. New reference. */
json_t *ot_eval_examples_json(const ot_evalset *e, const ot_dataset *truth,
                              const ot_taggain_sim *sim, double tau_rel, double tau_div, int n);

#endif
