/* Retrieval alone as an answer (the "retrieval" row of the results table):
 * an item's predicted tags are its candidates whose fused score passes one
 * global threshold, chosen to maximise micro F1 on val with the same binned
 * sweep the trainer uses (f1sweep.h) over p = fused / max_fused, where
 * max_fused = 1 + consensus * (n_sources - 1) is the highest fused score
 * possible (ot_fusion.h), so p is in [0,1]. */
#ifndef OT_ANSWER_H
#define OT_ANSWER_H

#include "f1sweep.h"

/* Micro P/R/F1 sweep of one split's candidates against its ground truth
 * (tags of the embedding files; tags compared after ot_tagnorm), into *h
 * (zeroed first). OT_EINVAL when the files are missing or disagree on ids. */
int ot_answer_hist(ot_f1_hist *h, const char *retrieve_dir, const char *embed_dir, const char *split,
                   double max_fused);
/* Rank 0 after every split is retrieved: tune the threshold on val when
 * `splits` (comma-separated) has it (else keep every candidate, with a
 * warning), write <retrieve_dir>/<split>/tags.jsonl for every split, and
 * <retrieve_dir>/threshold.json {"threshold", "max_score", "val": {...}}. */
int ot_answer_write_all(const char *retrieve_dir, const char *embed_dir, const char *splits, double consensus,
                        int n_sources);

#endif
