/* ot-train's validation metric of a judge (model.type judge): image→tag
 * recall@k over the val split, next to the val loss. */
#ifndef OT_JUDGE_VAL_H
#define OT_JUDGE_VAL_H

#include "trainer.h"

#include <stdint.h>

/* Collective. Every distinct tag text of the val split (raw, as stored; tags
 * without BPE tokens left out) is embedded with the judge's text tower; each
 * val item ranks them all by cos(image, tag), and
 *   recall@k = mean over val items with a tag of |top k ∩ its tags| / min(k, |its tags|).
 * *n_tags receives the number of candidate tags. Runs the model in inference
 * mode (its arena's last forward is lost). */
int ot_judge_val_recall(ot_trainer *t, int k, double *recall, int64_t *n_tags);

#endif
