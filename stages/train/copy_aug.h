/* Copy augmentation (model.copy_aug), for the generative models' training.
 *
 * Most tags a model can only copy — words of the title it never saw as tags
 * — are rare in training, where a title word that is a tag is nearly
 * always a tag seen many times: the decoder learns to write it from memory,
 * not to copy it. So, with probability p per (item, tag), a tag that occurs
 * in the item's normalised title (ot_tagnorm; ASCII tags as whole words,
 * others anywhere) is replaced, in the title words the decoder reads
 * (ot_batch.title_words) and in the tag itself, by the same random word: a
 * lowercase string of the same length for an all-letter ASCII tag, random
 * CJK ideographs (U+4E00..U+9FA5) of the same count for a tag without
 * ASCII; other tags are left alone. The encoder's title tokens keep the
 * original. The draws are a function of (seed, item), so a step gives the
 * same batches however it is cut into ranks and passes. */
#ifndef OT_COPY_AUG_H
#define OT_COPY_AUG_H

#include <stdint.h>

typedef struct {
  char *title;  /* the normalised title with the replacements */
  char **tags;  /* [n] the tags, replaced ones rewritten (all malloc'd) */
  int n;
  int replaced; /* how many tags were replaced */
} ot_copy_aug;

/* Fill *out from title and tags[n] (out owns its strings: ot_copy_aug_free).
 * OT_EINVAL when the title or a tag is not valid UTF-8 (nothing replaced
 * then: out holds copies of the inputs). */
int ot_copy_aug_apply(ot_copy_aug *out, const char *title, const char *const *tags, int n, float p,
                      uint64_t seed);
void ot_copy_aug_free(ot_copy_aug *a); /* accepts a zeroed struct */

#endif
