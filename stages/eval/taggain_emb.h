/* Tag Gain similarities from external embeddings in one HDF5 file (e.g. real
 * CLIP and BGE vectors computed elsewhere):
 *
 *   image/id  vlen UTF-8 [N]    item ids (exact match with the evalset's)
 *   image/vec float     [N, D]  visual vector per item (CLIP image tower)
 *   text/tag  vlen UTF-8 [M]    tag texts (compared after ot_tagnorm)
 *   text/vec  float     [M, D]  CLIP text tower: sim_rel = cos(image, text)
 *   div/tag   vlen UTF-8 [K]    optional, with div/vec: tag texts
 *   div/vec   float     [K, D2] BGE-like: sim_div = cos; without div/tag,
 *                               sim_div uses text/vec
 *
 * Rows are L2-normalised on load; a row of norm 0 or with a non-finite value
 * counts as absent. When two rows name the same item or normalised tag, the
 * first one is used. Items and tags the file lacks are skipped / unjudged and
 * counted; a file that holds none of them is refused. */
#ifndef OT_EVAL_TAGGAIN_EMB_H
#define OT_EVAL_TAGGAIN_EMB_H

#include "evalset.h"
#include "taggain.h"

typedef struct ot_taggain_emb ot_taggain_emb;

/* Load `path` and bind its rows to e's items and tags (e must outlive the
 * handle and gain no tags or items afterwards). OT_EINVAL naming the file and
 * the dataset when one is missing, mis-typed or mis-shaped, when the file
 * is not an HDF5 file, and when a names dataset binds nothing (no item id of
 * e in image/id, or no tag of e in text/tag or div/tag, with a usable
 * vector: the file was made for other data); OT_EIO when a read fails. Caller owns *out
 * (ot_taggain_emb_close). */
int ot_taggain_emb_open(ot_taggain_emb **out, const char *path, const ot_evalset *e);
void ot_taggain_emb_close(ot_taggain_emb *m); /* accepts NULL */

/* The similarity callbacks over m (valid while m is open). */
ot_taggain_sim ot_taggain_emb_sim(ot_taggain_emb *m);

/* Bound counts: evalset items with a vector, evalset tags with a text vector
 * and with a diversity vector, duplicate names ignored in the file. */
void ot_taggain_emb_counts(const ot_taggain_emb *m, int64_t *items, int64_t *rel_tags,
                           int64_t *div_tags, int64_t *duplicates);

#endif
