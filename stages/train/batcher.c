#include "batcher.h"

#include "ot_common.h"
#include "copy_aug.h"
#include "ngram.h"
#include "ot_rng.h"
#include "tagnorm.h"
#include "titles.h"

#include <stdlib.h>
#include <string.h>

/* Token sequences j = 0.. of a batch: sequence j is tok[off[j] .. off[j+1]-1]. */
typedef struct {
  int32_t *off; /* [cap+1] */
  int32_t *tok; /* [tok_cap] */
  int cap, tok_cap;
} tok_list;

struct ot_batcher {
  const ot_dataset *d;
  const ot_bpe *bpe;
  const ot_tagset *tags;
  int L, max_items, T, H, W;
  size_t frame_bytes;
  uint8_t *frames;    /* [max,T,H,W,3] */
  int D;              /* per-frame feature width of the dataset; 0: none */
  float *features;    /* [max,T,D] when D > 0 */
  int32_t *title;     /* [max,L] */
  uint8_t *mask;      /* [max,L] */
  float *targets;     /* [max,n_tags] */
  ot_titles *titles;  /* title tokens and words; the encode buffer for tags */
  int tag_len;        /* > 0: generative model, tags as token sequences */
  int by_count;       /* list an item's tags most frequent first */
  int ngram_dim;      /* title n-gram vectors (model.title_ngram), 0 = none */
  float *ngram;       /* [max,ngram_dim] */
  int normal_text;    /* sequences of the tags' normal forms, not their first spellings */
  float aug_p;        /* copy augmentation (copy_aug.h): probability, 0 = off */
  uint64_t aug_seed;
  int shift_px;       /* shift augmentation: largest offset, 0 = off */
  uint64_t shift_seed;
  int32_t *item_tags; /* [max+1] */
  int32_t *words;     /* [max,L] the titles' words, tokenized as tags (generative) */
  uint8_t *words_mask; /* [max,L] */
  tok_list tags_tok;  /* the batch's tags */
  ot_batcher_cand_fn cand_fn; /* rag: candidates */
  void *cand_ctx;
  ot_cand_tokens *cands;
};

struct ot_cand_tokens {
  ot_titles *titles;  /* borrowed: the encoder */
  int tag_len, max_m, max_items;
  int items, n;       /* of the batch so far: items, candidates */
  int32_t *item;      /* [max_items+1] */
  tok_list tok;
  float *score;       /* [tok.cap] */
  const char **text;  /* [tok.cap], borrowed from the candidate source */
};

int ot_batcher_open(ot_batcher **out, const ot_dataset *d, const ot_bpe *bpe, const ot_tagset *tags,
                    int title_len, int max_items) {
  OT_ASSERT(title_len >= 1 && max_items >= 1);
  ot_batcher *b = ot_xcalloc(1, sizeof *b);
  b->d = d, b->bpe = bpe, b->tags = tags, b->L = title_len, b->max_items = max_items;
  ot_dataset_dims(d, &b->T, &b->H, &b->W);
  b->frame_bytes = (size_t)b->T * b->H * b->W * 3; /* 0: features-only shards */
  if (b->frame_bytes) b->frames = malloc((size_t)max_items * b->frame_bytes);
  b->D = ot_dataset_feature_dim(d);
  if (b->D > 0) b->features = malloc((size_t)max_items * b->T * b->D * sizeof *b->features);
  b->title = malloc((size_t)max_items * title_len * sizeof *b->title);
  b->mask = malloc((size_t)max_items * title_len);
  b->targets = malloc((size_t)max_items * tags->n * sizeof *b->targets);
  ot_titles_open(&b->titles, bpe, title_len);
  if ((b->frame_bytes && !b->frames) || !b->title || !b->mask || !b->targets ||
      (b->D > 0 && !b->features)) {
    ot_batcher_close(b);
    return ot_fail(OT_ENOMEM, "cannot allocate input buffers for %d items", max_items);
  }
  *out = b;
  return OT_OK;
}

void ot_batcher_close(ot_batcher *b) {
  if (!b) return;
  free(b->frames);
  free(b->features);
  free(b->title);
  free(b->ngram);
  free(b->mask);
  free(b->targets);
  ot_titles_close(b->titles);
  free(b->item_tags);
  free(b->words);
  free(b->words_mask);
  free(b->tags_tok.off);
  free(b->tags_tok.tok);
  ot_cand_tokens_close(b->cands);
  free(b);
}

static void tok_list_init(tok_list *l, int cap, int tok_cap) {
  l->cap = cap, l->tok_cap = tok_cap;
  l->off = ot_xmalloc(((size_t)cap + 1) * sizeof *l->off);
  l->tok = ot_xmalloc((size_t)tok_cap * sizeof *l->tok);
  l->off[0] = 0;
}

void ot_batcher_enable_tags(ot_batcher *b, int tag_len) {
  OT_ASSERT(tag_len >= 1 && !b->item_tags);
  b->tag_len = tag_len;
  b->item_tags = ot_xmalloc(((size_t)b->max_items + 1) * sizeof *b->item_tags);
  b->words = ot_xmalloc((size_t)b->max_items * b->L * sizeof *b->words);
  b->words_mask = ot_xmalloc((size_t)b->max_items * b->L);
  tok_list_init(&b->tags_tok, 16, 16 * tag_len);
}

void ot_batcher_copy_aug(ot_batcher *b, float p, uint64_t seed) {
  OT_ASSERT((b->tag_len >= 1 && !b->normal_text) || p == 0.0f);
  b->aug_p = p, b->aug_seed = seed;
}

void ot_batcher_shift_aug(ot_batcher *b, int max_px, uint64_t seed) {
  OT_ASSERT(max_px >= 0);
  b->shift_px = max_px, b->shift_seed = seed;
}

void ot_batcher_shift_frames(uint8_t *frames, int T, int H, int W, int dx, int dy) {
  if (!dx && !dy) return;
  const size_t row = (size_t)W * 3, plane = (size_t)H * row;
  uint8_t *src = ot_xmalloc(plane);
  for (int t = 0; t < T; t++) {
    uint8_t *f = frames + (size_t)t * plane;
    memcpy(src, f, plane);
    for (int y = 0; y < H; y++) {
      const int sy = y - dy < 0 ? 0 : y - dy >= H ? H - 1 : y - dy;
      const uint8_t *in = src + (size_t)sy * row;
      uint8_t *out = f + (size_t)y * row;
      for (int x = 0; x < W; x++) {
        const int sx = x - dx < 0 ? 0 : x - dx >= W ? W - 1 : x - dx;
        memcpy(out + 3 * x, in + 3 * sx, 3);
      }
    }
  }
  free(src);
}

void ot_batcher_order_tags(ot_batcher *b) {
  OT_ASSERT(b->tag_len >= 1);
  b->by_count = 1;
}

void ot_batcher_title_ngram(ot_batcher *b, int dim) {
  OT_ASSERT(dim >= 0 && !b->ngram);
  if (!dim) return;
  b->ngram_dim = dim;
  b->ngram = ot_xmalloc((size_t)b->max_items * dim * sizeof *b->ngram);
}

void ot_batcher_normal_tags(ot_batcher *b) {
  OT_ASSERT(b->tag_len >= 1 && b->aug_p == 0.0f);
  b->normal_text = 1;
}

typedef struct {
  int64_t count;
  int k; /* place in the item's own list */
} tag_rank;

static int by_count_desc(const void *a, const void *b) {
  const tag_rank *x = a, *y = b;
  if (x->count != y->count) return x->count > y->count ? -1 : 1;
  return x->k - y->k;
}

/* The order in which an item's distinct tags norm[0..n) are listed:
 * by_count or as given. */
static void tag_order(const ot_batcher *b, char *const *norm, int n, tag_rank *r) {
  for (int k = 0; k < n; k++) {
    const int col = b->by_count ? ot_tagset_index(b->tags, norm[k]) : -1;
    r[k] = (tag_rank){col >= 0 ? b->tags->counts[col] : 0, k};
  }
  if (b->by_count) qsort(r, (size_t)n, sizeof *r, by_count_desc);
}

/* Append one text's tokens (cut to tag_len) as sequence j of l; 0 for a
 * text without tokens (skipped). */
static int append_tokens(ot_titles *titles, int tag_len, tok_list *l, int j, const char *text) {
  const int32_t *tok;
  int n = ot_titles_encode(titles, text, &tok);
  if (n > tag_len) n = tag_len;
  if (n == 0) return 0;
  if (j + 1 > l->cap) {
    l->cap = 2 * (j + 1);
    l->off = ot_xrealloc(l->off, ((size_t)l->cap + 1) * sizeof *l->off);
  }
  int at = l->off[j];
  if (at + n > l->tok_cap) {
    l->tok_cap = 2 * (at + n);
    l->tok = ot_xrealloc(l->tok, (size_t)l->tok_cap * sizeof *l->tok);
  }
  memcpy(l->tok + at, tok, (size_t)n * sizeof *tok);
  l->off[j + 1] = at + n;
  return 1;
}

void ot_cand_tokens_open(ot_cand_tokens **out, ot_titles *titles, int max_items, int tag_len, int max_m) {
  OT_ASSERT(max_items >= 1 && tag_len >= 1 && max_m >= 1);
  ot_cand_tokens *c = ot_xcalloc(1, sizeof *c);
  c->titles = titles, c->tag_len = tag_len, c->max_m = max_m, c->max_items = max_items;
  c->item = ot_xmalloc(((size_t)max_items + 1) * sizeof *c->item);
  c->item[0] = 0;
  tok_list_init(&c->tok, 16, 16 * tag_len);
  c->score = ot_xmalloc((size_t)c->tok.cap * sizeof *c->score);
  c->text = ot_xmalloc((size_t)c->tok.cap * sizeof *c->text);
  *out = c;
}

void ot_cand_tokens_close(ot_cand_tokens *c) {
  if (!c) return;
  free(c->item);
  free(c->tok.off);
  free(c->tok.tok);
  free(c->score);
  free(c->text);
  free(c);
}

void ot_cand_tokens_clear(ot_cand_tokens *c) { c->items = 0, c->n = 0; }

void ot_cand_tokens_add(ot_cand_tokens *c, const char *const *tags, const float *scores, int n) {
  OT_ASSERT(c->items < c->max_items && n >= 0);
  if (n > c->max_m) n = c->max_m;
  for (int k = 0; k < n; k++) {
    const int cap = c->tok.cap;
    if (!append_tokens(c->titles, c->tag_len, &c->tok, c->n, tags[k])) continue;
    if (c->tok.cap != cap) { /* the offsets grew: so do the scores and texts */
      c->score = ot_xrealloc(c->score, (size_t)c->tok.cap * sizeof *c->score);
      c->text = ot_xrealloc(c->text, (size_t)c->tok.cap * sizeof *c->text);
    }
    c->text[c->n] = tags[k];
    c->score[c->n++] = scores[k];
  }
  c->item[++c->items] = c->n;
}

void ot_cand_tokens_to_batch(const ot_cand_tokens *c, ot_batch *batch) {
  batch->cand_item = c->item;
  batch->cand_offsets = c->tok.off;
  batch->cand_tokens = c->tok.tok;
  batch->cand_score = c->score;
  batch->cand_text = (const char *const *)c->text;
}

void ot_batcher_enable_cands(ot_batcher *b, ot_batcher_cand_fn fn, void *ctx, int max_m) {
  OT_ASSERT(b->tag_len >= 1 && !b->cands && fn && max_m >= 1);
  b->cand_fn = fn, b->cand_ctx = ctx;
  ot_cand_tokens_open(&b->cands, b->titles, b->max_items, b->tag_len, max_m);
}

/* An item's candidates appended after those of the items before it. */
static int append_cands(ot_batcher *b, int shard, int64_t row, const char *id) {
  const char *const *tags;
  const float *scores;
  int n;
  int st = b->cand_fn(b->cand_ctx, shard, row, id, &tags, &scores, &n);
  if (st) return st;
  ot_cand_tokens_add(b->cands, tags, scores, n);
  return OT_OK;
}

int ot_batcher_fill(ot_batcher *b, const int64_t *items, int n, ot_batch *batch) {
  OT_ASSERT(n >= 0 && n <= b->max_items);
  const int K = b->tags->n;
  memset(b->targets, 0, (size_t)n * K * sizeof *b->targets);
  int n_tags = 0;
  if (b->tag_len) b->item_tags[0] = 0;
  if (b->cand_fn) ot_cand_tokens_clear(b->cands);
  for (int i = 0; i < n; i++) {
    int64_t local;
    const int shard = ot_dataset_locate_index(b->d, items[i], &local);
    ot_shard *s = ot_dataset_shard(b->d, shard);
    int st = OT_OK;
    if (b->frame_bytes) st = ot_shard_read_frames(s, local, b->frames + (size_t)i * b->frame_bytes);
    if (!st && b->D > 0) st = ot_shard_read_features(s, local, b->features + (size_t)i * b->T * b->D);
    if (st) return st;
    if (b->shift_px > 0 && b->frame_bytes) {
      ot_rng r;
      ot_rng_seed(&r, ot_rng_mix(b->shift_seed, (uint64_t)items[i]));
      const uint32_t span = 2u * (uint32_t)b->shift_px + 1u;
      const int dx = (int)ot_rng_below(&r, span) - b->shift_px, dy = (int)ot_rng_below(&r, span) - b->shift_px;
      ot_batcher_shift_frames(b->frames + (size_t)i * b->frame_bytes, b->T, b->H, b->W, dx, dy);
    }
    const char *title = ot_shard_title(s, local);
    ot_titles_tokens(b->titles, title ? title : "", b->title + (size_t)i * b->L,
                     b->mask + (size_t)i * b->L);
    if (b->ngram_dim) ot_ngram_vector(title, NULL, b->ngram_dim, b->ngram + (size_t)i * b->ngram_dim);
    char *const *tags;
    int nt = ot_shard_tags(s, local, &tags);
    ot_copy_aug aug = {0};
    const char *words = title ? title : "";
    const char *const *tag_text = (const char *const *)tags;
    if (b->tag_len && b->aug_p > 0.0f) { /* invalid UTF-8: unchanged copies */
      ot_copy_aug_apply(&aug, words, tag_text, nt, b->aug_p, ot_rng_mix(b->aug_seed, (uint64_t)items[i]));
      words = aug.title, tag_text = (const char *const *)aug.tags;
    }
    if (b->tag_len)
      ot_titles_words(b->titles, words, b->words + (size_t)i * b->L, b->words_mask + (size_t)i * b->L);
    /* one target per tag as ot-eval counts them: two spellings of one
     * normal form are one column, and one sequence (the first spelling's) */
    char **norm = ot_xmalloc((size_t)(nt > 0 ? nt : 1) * sizeof *norm);
    int *first = ot_xmalloc((size_t)(nt > 0 ? nt : 1) * sizeof *first);
    const int nn = ot_tagnorm_unique((const char *const *)tags, nt, norm, first);
    for (int j = 0; j < nn; j++) {
      int col = ot_tagset_index(b->tags, norm[j]);
      if (col >= 0) b->targets[(size_t)i * K + col] = 1.0f;
    }
    if (b->tag_len) {
      tag_rank *order = ot_xmalloc((size_t)(nn > 0 ? nn : 1) * sizeof *order);
      tag_order(b, norm, nn, order);
      for (int j = 0; j < nn; j++) {
        const int k = order[j].k;
        n_tags += append_tokens(b->titles, b->tag_len, &b->tags_tok, n_tags,
                                b->normal_text ? norm[k] : tag_text[first[k]]);
      }
      free(order);
    }
    for (int j = 0; j < nn; j++) free(norm[j]);
    free(norm);
    free(first);
    ot_copy_aug_free(&aug);
    if (b->tag_len) b->item_tags[i + 1] = n_tags;
    if (b->cand_fn && (st = append_cands(b, shard, local, ot_shard_id(s, local)))) return st;
  }
  batch->B = n;
  batch->frames = b->frames;
  batch->features = b->features;
  batch->title = b->title;
  batch->title_mask = b->mask;
  batch->title_ngram = b->ngram;
  batch->targets = b->targets;
  batch->loss_scale = 0.0f;
  batch->item0 = 0;
  batch->item_tags = b->tag_len ? b->item_tags : NULL;
  batch->tag_offsets = b->tag_len ? b->tags_tok.off : NULL;
  batch->tag_tokens = b->tag_len ? b->tags_tok.tok : NULL;
  batch->title_words = b->tag_len ? b->words : NULL;
  batch->title_words_mask = b->tag_len ? b->words_mask : NULL;
  batch->cand_item = NULL, batch->cand_offsets = NULL, batch->cand_tokens = NULL;
  batch->cand_score = NULL, batch->cand_text = NULL;
  if (b->cand_fn) ot_cand_tokens_to_batch(b->cands, batch);
  return OT_OK;
}
