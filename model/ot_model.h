/* The taggers, built from ops/: the shared encoders and the closed-set heads.
 *
 *   visual encoder   frames [B,T,H,W,3] -> patch embedding (spatial + temporal
 *                    positions) -> vis_layers pre-LN blocks -> [B, T*Np, C];
 *                    or (model.visual features) features [B,T,D] -> linear
 *                    projection + temporal positions, one token per frame
 *                    (Np = 1) -> the same blocks
 *   title encoder    tokens [B,L] -> token + position embedding ->
 *                    txt_layers pre-LN blocks -> [B, L, C] (padding masked)
 *   hybrid encoder   fuse_layers blocks over the concatenated sequence
 *                    [visual ; title] (self-attention across both modalities,
 *                    with a key padding mask), final LN -> fused tokens
 *                    [B, T*Np+L, C]; pooled vector [B, C] = mean of the
 *                    visual tokens + mean of the valid title tokens
 *   head (bin, asl)  final LN, linear over the closed-set tag vocabulary
 *                    -> logits [B, n_tags]; loss BCE (bin) or ASL (asl)
 *
 * Generative models (seed §1) replace the head by a tag decoder that writes
 * free-form tags as BPE tokens, cross-attending to the fused tokens:
 *
 *   opg       K learnable order prompts [K,C] made sample-specific by
 *             prompt_layers blocks (self-attention among the prompts +
 *             cross-attention to the fused tokens), LN -> prompts [B,K,C].
 *             Tag embeddings: each ground-truth tag's tokens through the
 *             shared title encoder (txt.wte/wpe + txt blocks), masked mean,
 *             projection, L2 norm; prompts: projection, L2 norm. Per item,
 *             Hungarian matching of prompts to tags on cost -cos (no
 *             gradient through it). Losses per item b (sums, not means):
 *               match_b = sum over b's matched prompts of InfoNCE(prompt,
 *                         all distinct tags of the batch / tau; positive =
 *                         its matched tag)
 *               has_b   = sum over b's K prompts of BCE(has logit, matched)
 *               gen_b   = sum over b's matched prompts of the token
 *                         cross-entropy of [start(prompt), tag tokens] ->
 *                         [tag tokens, EOS]
 *             The decoder's target order comes from the matching, so the
 *             loss does not depend on the order of an item's tags.
 *   rag       opg whose prompts and decoder also read the item's retrieved
 *             candidate tags (seed §1, multi-source tag recommendation):
 *             model.rag_m memory tokens after the fused ones, slot j =
 *             LN(mean of its tokens' txt.wte rows + score_j rag.score.w +
 *             rag.kind.b); empty slots masked (ot_model_mem.c).
 *   baseline  no prompts: one sequence per item, [BOS t1 SEP t2 ... ] ->
 *             [t1 SEP t2 ... EOS] in the item's own tag order (tags that do
 *             not fit in seq_len are dropped); gen_b = its cross-entropy.
 *   loss = loss_scale * sum_b (w_match match_b + w_has has_b + w_gen gen_b)
 *
 * judge (ot_model_judge.c, the similarity of ot-eval's Tag Gain): a CLIP-
 * style dual encoder from the same parts, without fusion or head: image
 * vector = L2norm(judge.vproj(mean of the visual encoder's tokens)), tag
 * vector = opg's tag embedding with judge.tproj; loss = the multi-positive
 * InfoNCE between the pass's images and its distinct tags, both directions,
 * temperature model.judge_tau (formula in ot_model_judge.c). Titles are
 * not read. It needs the batch's tags like the generative models.
 *
 * Decoder: dec_layers blocks (causal self-attention, cross-attention to
 * the item's fused tokens, see ot_decoder.h); input position 0 is the
 * projected prompt (opg) or BOS, later positions txt.wte + dec.wpe; final
 * LN; output logits = h txt.wte^T + dec.out.b (tied embedding). Tags longer
 * than model.tag_len tokens are cut to it.
 *
 * Data parallelism: every item's loss is weighted by batch->loss_scale (the
 * caller passes 1/global batch), so the gradients summed over ranks are the
 * gradient of the global-batch mean loss whatever the rank count.
 *
 * Parameter names (checkpoint datasets, PyTorch mirror) are
 * "vis.patch.w", "vis.block0.attn.qkv.w", "txt.wte", "fuse.block1.mlp.fc.b",
 * "head.w" (bin, asl), "prompt.query", "prompt.block0.xattn.kv.w",
 * "tag.proj.w", "dec.block0.attn.qkv.w", "dec.out.b", ... — see
 * declare_all in ot_model.c for the full list. */
#ifndef OT_MODEL_H
#define OT_MODEL_H

#include "bpe.h"
#include "ot_config.h"
#include "ot_params.h"

#include <stdint.h>

typedef struct {
  int T, H, W;   /* frames per item and their size (from the dataset) */
  int D;         /* per-frame feature width (from the dataset; 0: none); model.visual features */
  int n_tags;    /* closed-set tag vocabulary (bin, asl; unused by the generative models) */
  int vocab;     /* BPE vocabulary size (title and tag tokens) */
  int max_batch; /* largest B passed to forward (sizes the arena) */
} ot_model_dims;

typedef struct {
  int B;
  const uint8_t *frames;     /* [B,T,H,W,3] */
  const float *features;     /* [B,T,D] precomputed per-frame features; NULL when the data has
                              * none (read by model.visual: features only) */
  const int32_t *title;      /* [B,L] token ids, L = model.title_len, OT_BPE_PAD after the end */
  const uint8_t *title_mask; /* [B,L] 1 = token, 0 = padding */
  /* model.title_ngram > 0: each title's hashed character n-gram counts,
   * L2-normalised (ot_ngram_vector with no idf, stages/train/ngram.h);
   * projected by txt.ngram.w and added to every title token's embedding —
   * a bag of n-grams beside the title encoder, which a few thousand titles
   * train poorly. NULL otherwise. */
  const float *title_ngram;  /* [B,model.title_ngram] */
  /* Generative models with model.title_slots: the title as its tags would
   * be written — the words of its normalised text (ot_tagnorm: NFKC, case
   * folded), each tokenized alone, OT_BPE_SEP between words — padded with
   * OT_BPE_PAD / cut to L (ot_batcher_title_words). NULL: the slots read
   * title and title_mask. */
  const int32_t *title_words;       /* [B,L] */
  const uint8_t *title_words_mask;  /* [B,L] */
  const float *targets;      /* [B,n_tags] in {0,1}; NULL in inference */
  float loss_scale;          /* weight of each item's loss (1/global batch) */
  /* Position of item 0 in the step's global batch. Dropout masks are a
   * function of (dropout_seed, item0 + b), so a step gives the same result
   * however its items are cut into passes and ranks — except opg's tag
   * encoder and decoder, whose inputs (the pass's distinct tags, its
   * matched prompts) depend on the pass anyway, as do its InfoNCE
   * negatives. */
  int64_t item0;
  /* Generative models (opentag, baseline): the ground-truth tags of the
   * batch as BPE token sequences (no BOS/EOS), in the item's own order.
   * Item b's tags are tags item_tags[b] .. item_tags[b+1]-1; tag j's tokens
   * are tag_tokens[tag_offsets[j] .. tag_offsets[j+1]-1]. NULL in inference
   * and for the closed-set models. */
  const int32_t *item_tags;   /* [B+1] */
  const int32_t *tag_offsets; /* [n_batch_tags+1] */
  const int32_t *tag_tokens;
  /* rag: each item's retrieved candidate tags, best first: item b's are
   * cand_item[b] .. cand_item[b+1]-1 (the first model.rag_m are read);
   * candidate j's tokens are cand_tokens[cand_offsets[j] ..
   * cand_offsets[j+1]-1] (no BOS/EOS), its fused score cand_score[j], its
   * text cand_text[j] (read by ot_gen_fuse only). Needed in training and
   * inference; NULL for the other models. */
  const int32_t *cand_item;   /* [B+1] */
  const int32_t *cand_offsets; /* [n_cand+1] */
  const int32_t *cand_tokens;
  const float *cand_score;    /* [n_cand] */
  const char *const *cand_text; /* [n_cand] */
} ot_batch;

typedef struct ot_model ot_model;

/* The config keys that shape a model of `type` (its tensors, its inputs,
 * its decoding lengths), model.type first: what a checkpoint must be
 * reopened with. NULL-terminated, static. A key another type reads
 * (model.prompts for bin) is not listed, so a checkpoint stays usable when
 * only such a key changed in the config. */
const char *const *ot_model_shape_keys(ot_cfg_model type);

/* The model settings that must agree with each other and need no data
 * (model.tag_len within model.title_len for opg, rag and judge; the
 * baseline's seq_len; heads dividing dim): OT_EINVAL naming the keys.
 * ot_model_open checks them too; ot-train and ot-run check them before any
 * work, so a job does not stop on them after hours of earlier steps. */
int ot_model_check_config(const ot_config *cfg);

/* Declare every parameter from cfg->model and dims, allocate the parameter
 * buffers (with gradients and Adam moments when `training`) and the arena.
 * OT_EINVAL naming the config key when the sizes do not fit (heads not
 * dividing dim, patch not dividing H or W). Caller owns *out (ot_model_close). */
int ot_model_open(ot_model **out, const ot_config *cfg, const ot_model_dims *dims, int training);
void ot_model_close(ot_model *m); /* accepts NULL */
ot_params *ot_model_params(ot_model *m);
const ot_model_dims *ot_model_get_dims(const ot_model *m);
/* 1 when the visual tokens come from batch->features (model.visual features). */
int ot_model_reads_features(const ot_model *m);
/* The width of batch->title_ngram the model reads (model.title_ngram), 0
 * when it reads none (off, or a judge). */
int ot_model_title_ngram(const ot_model *m);
/* Deterministic initialisation from `seed` (same weights on every rank). */
void ot_model_init(ot_model *m, uint64_t seed);

/* Forward pass; with a loss, *loss = loss_scale * sum over items of the
 * item's loss (NULL loss: not computed); the loss needs targets (bin, asl)
 * or the batch's tags (baseline, opg: OT_EINVAL naming the field when they
 * are missing or malformed, or hold a special token). `training` enables
 * dropout, with masks derived from dropout_seed. Activations stay in the
 * model's arena for ot_model_backward. */
int ot_model_forward(ot_model *m, const ot_batch *b, int training, uint64_t dropout_seed,
                     float *loss);
/* [B, n_tags] logits of the last forward (valid until the next forward);
 * NULL for the generative models (see ot_model_generate). */
const float *ot_model_logits(const ot_model *m);
/* The last forward's hybrid-encoder outputs (valid until the next forward):
 * fused tokens after the final LayerNorm [B, S, C] with S = T*Np + L
 * (*S receives S; title padding rows are present but meaningless), and the
 * pooled vector [B, C] the head reads (visual mean + title mean). */
const float *ot_model_fused(const ot_model *m, int *S);
const float *ot_model_pooled(const ot_model *m);
/* Retrieval vectors of the last forward's B items, each row L2-normalised,
 * written to caller-owned buffers (NULL skips one): vis [B,C] = mean of the
 * visual encoder's tokens, title [B,C] = masked mean of the title encoder's
 * tokens (both before fusion, so each depends on one modality only), fused
 * [B,C] = the pooled vector. An item with an empty title gets a zero title
 * row. */
void ot_model_embed(const ot_model *m, float *vis, float *title, float *fused);
/* Gradients of the last forward's loss, accumulated (+=) into the parameter
 * gradient buffer. Needs a forward with targets (bin, asl) or with a loss
 * (baseline, opg). */
void ot_model_backward(ot_model *m);
/* FLOPs of one forward+backward on B items (for GFLOP/s reports). The
 * generative models' cost depends on the tags: it is taken from the last
 * forward with a loss (tags per item, tokens per tag), scaled to B items;
 * before one, K/2 tags of tag_len/2 tokens per item are assumed. */
double ot_model_train_flops(const ot_model *m, int B);

/* ---- judge ------------------------------------------------------------------------------ */

/* 1 when a loss needs the batch's tags as tokens (item_tags, tag_offsets,
 * tag_tokens): the generative models and the judge. */
int ot_model_needs_tags(const ot_model *m);
/* judge: the image vectors [B,C] (L2-normalised, B of the last forward) into
 * caller-owned out. OT_EINVAL for another type or before a forward. (For a
 * judge, ot_model_embed's vis is the unprojected mean of the visual tokens,
 * its title and fused rows zero.) */
int ot_model_judge_image(const ot_model *m, float *out);
/* judge: the tag vectors [n,C] (L2-normalised) of n texts given as BPE token
 * lists (text k = tokens[offsets[k] .. offsets[k+1]-1], no BOS/EOS, cut to
 * model.tag_len) into caller-owned out, in inference mode (no dropout).
 * Uses the model's arena: the last forward's activations are gone after it
 * (read ot_model_judge_image first). OT_EINVAL for another type, a text
 * without tokens or a token outside [OT_BPE_N_SPECIAL, vocab). */
int ot_model_judge_embed_text(ot_model *m, const int32_t *offsets, const int32_t *tokens, int n,
                              float *out);

/* ---- generative models (baseline, opg) ---------------------------------------- */

/* 1 for baseline and opg. */
int ot_model_is_generative(const ot_model *m);

/* opg: the has-tag logits [B,K] of the last forward (*K receives K), valid
 * until the next forward; NULL for the other types. */
const float *ot_model_prompt_logits(const ot_model *m, int *K);

/* opg: the matching of the last forward with a loss: [n_batch_tags], the
 * prompt (0..K-1) matched to each ground-truth tag of the batch (in batch
 * order), or -1 for a tag left without a prompt (an item with more than K
 * tags). *n receives n_batch_tags. NULL before such a forward. */
const int32_t *ot_model_matching(const ot_model *m, int *n);

/* opg: use this matching instead of solving one (same layout as
 * ot_model_matching) in the following forwards; NULL clears it. For tests
 * (finite differences hold the discrete matching fixed) and mirrors. The
 * array is copied. A forward with a batch of a different tag count, or a
 * matching that gives one prompt two tags of an item, fails with
 * OT_EINVAL. */
int ot_model_set_matching(ot_model *m, const int32_t *match, int n);

/* The parts of the last forward's loss, each loss_scale * sum over items
 * (before the w_* weights): loss = w_match match + w_has has + w_gen gen.
 * Zero for parts a type does not have. */
typedef struct {
  double match, has, gen;
} ot_model_losses;
ot_model_losses ot_model_loss_parts(const ot_model *m);

typedef struct {
  char *tag;         /* normalised (ot_tagnorm), owned by the result */
  float score;       /* prompt_prob * token_prob */
  float prompt_prob; /* opg: the prompt's has-tag probability; baseline: 1 */
  float token_prob;  /* geometric mean of the probabilities of the tag's tokens
                      * and of the token that ends it (EOS, or SEP in baseline) */
  float ret_score;   /* after ot_gen_fuse: the tag's retrieval score (0: not
                      * among the item's candidates) */
  int ret_only;      /* after ot_gen_fuse: 1 when the decoder did not write it */
  int title_only;    /* after ot_gen_fuse_title: 1 when only the title lexicon
                      * proposed it */
} ot_gen_tag;

typedef struct {
  int n;
  ot_gen_tag *tags; /* [n], by score descending (ties: by text) */
} ot_gen_item;

typedef struct {
  const ot_bpe *bpe; /* the tokenizer the model was trained with */
  float threshold;   /* opg: prompts with has-tag probability >= threshold decode
                      * (0: all K; then tune a score threshold on val) */
  int beam;          /* beam width (<= 1: greedy) */
  int no_cache;      /* 1: recompute the whole prefix at every position instead
                      * of the KV cache (the reference, for tests and benches) */
} ot_gen_opts;

/* Generate tags for a batch (frames and titles; the tag fields are
 * ignored): opg decodes every prompt whose has-tag probability passes the
 * threshold, all in parallel; baseline decodes one sequence per item and
 * splits it at SEP. Beam search over the tokens allowed at each position
 * (EOS, SEP for baseline, the non-special tokens; none that would leave the
 * text invalid UTF-8 or end a tag inside a character, ot_bpe_utf8_next, and
 * for baseline no tag longer than tag_len tokens, as training cut them; the
 * probabilities renormalised over the rest) with opts->beam beams
 * ranked by total log-probability, at most tag_len tokens per tag (seq_len
 * per baseline sequence); each sequence's answer is its ended hypothesis
 * with the best mean log-probability per token. Beam 1 is greedy decoding:
 * the most probable allowed token at each position. The text is
 * decoded (ot_bpe_decode), normalised (ot_tagnorm); empty tags (and one cut
 * inside a character at the length limit) are dropped and duplicates of an item merged (keeping the highest score).
 * out: [b->B] items, filled; the caller frees them with ot_gen_items_free
 * (also after an error). OT_EINVAL for a closed-set model. */
int ot_model_generate(ot_model *m, const ot_batch *b, const ot_gen_opts *opts, ot_gen_item *out);
void ot_gen_items_free(ot_gen_item *items, int n); /* frees the tags; accepts NULL */

/* rag: item `b` of a batch, its generated tags `gen` fused with its
 * retrieved candidates (batch->cand_text / cand_score of the item,
 * normalised with ot_tagnorm, the best score kept among duplicates):
 *   score = (1 - w) * generated score + w * retrieval score,
 * each 0 when the tag is not there, w in [0,1]. The decoder reads the
 * candidates but may leave out one that the retrieval systems agree on;
 * the fused list keeps such a tag (ret_only = 1) unless its fused score is
 * 0, so w = 0 gives `gen` unchanged (ret_score filled in) and w = 1 ranks
 * the candidates alone. Best first (ties: by text). *out is overwritten;
 * the caller frees it (ot_gen_items_free). OT_EINVAL when the batch has no
 * candidate texts or a candidate is not valid UTF-8. */
int ot_gen_fuse(const ot_gen_item *gen, const ot_batch *batch, int b, float w, ot_gen_item *out);

/* rag with a title lexicon (stages/train/lexicon.h): `in` (ot_gen_fuse's
 * answer) joined with the pieces of the item's title, text[i] (normalised,
 * distinct) scored score[i] in [0,1]:
 *   score = max(score in `in` * absent^a, min(1, w * piece score)),
 * each 0 when the tag is not there, w in [0,2] (above 1: the piece scores
 * are held-out shares, the answer's are not calibrated to them, and on
 * emoji-zh val wanted a new word's 0.45-0.56 above a threshold of 0.4-0.47),
 * a >= 0; absent[i] in (0,1]
 * is in->tags[i]'s absence ratio (ot_lexicon_absence: below 1 for a tag
 * usually written in its item's title that this title lacks; NULL: all 1).
 * A piece `in` lacks is added (title_only = 1) when w * its score > 0, so
 * w = 0 and a = 0 give `in` unchanged. The maximum, not a sum: the lexicon
 * and the model are two opinions of the same title, and a tag either
 * proposes well should pass. Best first (ties: by text). *out is
 * overwritten; the caller frees it (ot_gen_items_free). */
#define OT_GEN_TITLE_WEIGHT_MAX 2.0f /* w's upper end in ot_gen_fuse_title */
void ot_gen_fuse_title(const ot_gen_item *in, const float *absent, float a,
                       const char *const *text, const float *score, int n, float w,
                       ot_gen_item *out);

#endif
