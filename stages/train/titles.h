/* Titles as the models read them, one rule for training (the batcher) and
 * for tagging raw media (ot-tag's manifest mode), so the two cannot drift:
 *
 *   tokens  the title's BPE tokens, cut to L, padded with OT_BPE_PAD
 *   words   the title as its tags would be written: the words of
 *           ot_tagnorm(title) (NFKC, case folded, white space collapsed),
 *           each encoded alone, OT_BPE_SEP between them, cut / padded to L
 *           (ot_batch.title_words: a title word and the same tag are the
 *           same tokens)
 *
 * The handle owns a growable encode buffer; one handle per thread. */
#ifndef OT_TITLES_H
#define OT_TITLES_H

#include "bpe.h"

#include <stdint.h>

typedef struct ot_titles ot_titles;

/* bpe is borrowed and must outlive the handle. Caller owns *out
 * (ot_titles_close). Aborts when out of memory (small bookkeeping). */
void ot_titles_open(ot_titles **out, const ot_bpe *bpe, int L);
void ot_titles_close(ot_titles *t); /* accepts NULL */

/* ids[L], mask[L] (1 = token); returns the number of ids kept. */
int ot_titles_tokens(ot_titles *t, const char *title, int32_t *ids, uint8_t *mask);
/* ids[L], mask[L]; returns the number of ids kept (0 for a title that is
 * not valid UTF-8). */
int ot_titles_words(ot_titles *t, const char *title, int32_t *ids, uint8_t *mask);
/* Every token of `text`; *ids points into the handle's buffer, valid until
 * the next call. Returns the count. */
int ot_titles_encode(ot_titles *t, const char *text, const int32_t **ids);

#endif
