/* Assembly of model inputs from dataset items: frames (and per-frame
 * features, when the dataset has them) read from the shards,
 * titles tokenized with the run's BPE and padded/cut to model.title_len
 * (titles.h), multi-hot targets over the closed-set tag vocabulary. Buffers
 * are allocated once for the largest batch and reused. */
#ifndef OT_BATCHER_H
#define OT_BATCHER_H

#include "bpe.h"
#include "ot_dataset.h"
#include "ot_model.h"
#include "tagset.h"
#include "titles.h"

typedef struct ot_batcher ot_batcher;

/* Inputs of up to max_items items of `d`. d, bpe and tags are borrowed and
 * must outlive the batcher. Caller owns *out (ot_batcher_close). */
int ot_batcher_open(ot_batcher **out, const ot_dataset *d, const ot_bpe *bpe, const ot_tagset *tags,
                    int title_len, int max_items);
void ot_batcher_close(ot_batcher *b); /* accepts NULL */
/* Generative models: from now on every fill also sets the batch's
 * item_tags / tag_offsets / tag_tokens from the items' tags (BPE, no
 * BOS/EOS, each cut to tag_len tokens; spellings of one ot_tagnorm form
 * once, as first written — the closed-set targets merge them the same
 * way) and title_words /
 * title_words_mask (titles.h). Call once, after open. */
void ot_batcher_enable_tags(ot_batcher *b, int tag_len);
/* From now on every fill lists an item's tags most frequent in training
 * first (the tagset's counts; tags outside it count 0; ties keep the
 * item's order): the fixed order the baseline learns (model.baseline_order
 * frequency, as sequence-generation taggers do). Call after
 * ot_batcher_enable_tags. */
void ot_batcher_order_tags(ot_batcher *b);
/* From now on every fill writes each tag's sequence from its ot_tagnorm
 * form ("AT" as "at") instead of its first spelling: the judge, which
 * ot-eval asks about normal forms only. Not with copy augmentation (its
 * replaced spellings are what the decoder must write). Call after
 * ot_batcher_enable_tags. */
void ot_batcher_normal_tags(ot_batcher *b);
/* From now on every fill sets batch->title_ngram [n,dim]: each title's
 * hashed character n-gram counts (ngram.h), L2-normalised. dim 0 (a model
 * without model.title_ngram, ot_model_title_ngram): nothing changes. */
void ot_batcher_title_ngram(ot_batcher *b, int dim);
/* Copy augmentation (copy_aug.h) of the following fills with probability
 * p (0: off), item i's draws keyed by ot_rng_mix(seed, i) (i its global
 * index in the dataset). Generative models only (after
 * ot_batcher_enable_tags). */
void ot_batcher_copy_aug(ot_batcher *b, float p, uint64_t seed);
/* Shift augmentation (train.shift_aug) of the following fills: item i's
 * frames move by (dx, dy), each uniform in [-max_px, max_px] and drawn
 * from ot_rng_mix(seed, i), the border repeating the edge (0: off). */
void ot_batcher_shift_aug(ot_batcher *b, int max_px, uint64_t seed);
/* The shift itself, in place on one item's frames [T,H,W,3]: out(y, x) =
 * in(clamp(y - dy), clamp(x - dx)). */
void ot_batcher_shift_frames(uint8_t *frames, int T, int H, int W, int dx, int dy);
/* Where an item's retrieved candidates come from (rag): the candidates of
 * item `row` of data shard `shard`, whose id is `id` — its candidate tags,
 * best first (the texts valid while the source lives, the arrays until the
 * next call), and their fused scores; OT_EINVAL (with a message) when the
 * item has none on record. */
typedef int (*ot_batcher_cand_fn)(void *ctx, int shard, int64_t row, const char *id,
                                  const char *const **tags, const float **scores, int *n);
/* rag: from now on every fill also sets cand_item / cand_offsets /
 * cand_tokens / cand_score from the first max_m candidates of each item
 * (BPE, each cut to tag_len tokens; candidates without tokens skipped).
 * ctx is borrowed. Call once, after ot_batcher_enable_tags. */
void ot_batcher_enable_cands(ot_batcher *b, ot_batcher_cand_fn fn, void *ctx, int max_m);
/* Retrieved candidates of a batch as the rag model reads them (ot_batch's
 * cand_item / cand_offsets / cand_tokens / cand_score / cand_text): the
 * first max_m of each item, best first, each BPE-encoded with `titles`
 * (ot_titles_encode) and cut to tag_len tokens; candidates without tokens
 * are skipped. One rule for the batcher (rag training, tagging shards) and
 * ot-tag's raw-manifest rag mode, so the two read the same inputs. */
typedef struct ot_cand_tokens ot_cand_tokens;
/* For batches of up to max_items items; titles is borrowed and must outlive
 * the handle. Caller owns *out (ot_cand_tokens_close). Aborts when out of
 * memory (small bookkeeping). */
void ot_cand_tokens_open(ot_cand_tokens **out, ot_titles *titles, int max_items, int tag_len, int max_m);
void ot_cand_tokens_close(ot_cand_tokens *c); /* accepts NULL */
/* Start a new batch (no items). */
void ot_cand_tokens_clear(ot_cand_tokens *c);
/* Append the next item's candidates tags[n] / scores[n] (best first). The
 * tag strings are borrowed: batch->cand_text points at them, so they must
 * live while the batch is used. */
void ot_cand_tokens_add(ot_cand_tokens *c, const char *const *tags, const float *scores, int n);
/* Point batch->cand_* at the items added since the last clear (valid until
 * the next add or clear). */
void ot_cand_tokens_to_batch(const ot_cand_tokens *c, ot_batch *batch);

/* Fill the inputs of items[n] (global indices of d, n <= max_items) and
 * point *batch at them (valid until the next fill); batch->loss_scale is
 * set to 0 for the caller to choose. OT_EIO if a shard read fails. */
int ot_batcher_fill(ot_batcher *b, const int64_t *items, int n, ot_batch *batch);
#endif
