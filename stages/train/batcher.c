#include "batcher.h"

#include "ot_common.h"

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
  int32_t *title;     /* [max,L] */
  uint8_t *mask;      /* [max,L] */
  float *targets;     /* [max,n_tags] */
  int32_t *scratch;   /* encode buffer for whole titles */
  int scratch_cap;
  int tag_len;        /* > 0: generative model, tags as token sequences */
  int32_t *item_tags; /* [max+1] */
  tok_list tags_tok;  /* the batch's tags */
  ot_batcher_cand_fn cand_fn; /* rag: candidates */
  void *cand_ctx;
  int cand_m;
  int32_t *cand_item; /* [max+1] */
  tok_list cands_tok;
  float *cand_score;  /* [cands_tok.cap] */
};

int ot_batcher_open(ot_batcher **out, const ot_dataset *d, const ot_bpe *bpe, const ot_tagset *tags,
                    int title_len, int max_items) {
  OT_ASSERT(title_len >= 1 && max_items >= 1);
  ot_batcher *b = ot_xcalloc(1, sizeof *b);
  b->d = d, b->bpe = bpe, b->tags = tags, b->L = title_len, b->max_items = max_items;
  ot_dataset_dims(d, &b->T, &b->H, &b->W);
  b->frame_bytes = (size_t)b->T * b->H * b->W * 3;
  b->frames = malloc((size_t)max_items * b->frame_bytes);
  b->title = malloc((size_t)max_items * title_len * sizeof *b->title);
  b->mask = malloc((size_t)max_items * title_len);
  b->targets = malloc((size_t)max_items * tags->n * sizeof *b->targets);
  b->scratch_cap = 256;
  b->scratch = malloc((size_t)b->scratch_cap * sizeof *b->scratch);
  if (!b->frames || !b->title || !b->mask || !b->targets || !b->scratch) {
    ot_batcher_close(b);
    return ot_fail(OT_ENOMEM, "cannot allocate input buffers for %d items", max_items);
  }
  *out = b;
  return OT_OK;
}

void ot_batcher_close(ot_batcher *b) {
  if (!b) return;
  free(b->frames);
  free(b->title);
  free(b->mask);
  free(b->targets);
  free(b->scratch);
  free(b->item_tags);
  free(b->tags_tok.off);
  free(b->tags_tok.tok);
  free(b->cand_item);
  free(b->cands_tok.off);
  free(b->cands_tok.tok);
  free(b->cand_score);
  free(b);
}

int ot_batcher_title(ot_batcher *b, const char *title, int32_t *ids, uint8_t *mask) {
  int n = 0;
  while (ot_bpe_encode(b->bpe, title, b->scratch, b->scratch_cap, &n) != OT_OK) {
    OT_ASSERT(n > b->scratch_cap); /* encode only fails for lack of room */
    b->scratch_cap = n;
    b->scratch = ot_xrealloc(b->scratch, (size_t)n * sizeof *b->scratch);
  }
  int kept = n < b->L ? n : b->L;
  for (int i = 0; i < b->L; i++) {
    ids[i] = i < kept ? b->scratch[i] : OT_BPE_PAD;
    mask[i] = i < kept;
  }
  return kept;
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
  tok_list_init(&b->tags_tok, 16, 16 * tag_len);
}

void ot_batcher_enable_cands(ot_batcher *b, ot_batcher_cand_fn fn, void *ctx, int max_m) {
  OT_ASSERT(b->tag_len >= 1 && !b->cand_item && fn && max_m >= 1);
  b->cand_fn = fn, b->cand_ctx = ctx, b->cand_m = max_m;
  b->cand_item = ot_xmalloc(((size_t)b->max_items + 1) * sizeof *b->cand_item);
  tok_list_init(&b->cands_tok, 16, 16 * b->tag_len);
  b->cand_score = ot_xmalloc((size_t)b->cands_tok.cap * sizeof *b->cand_score);
}

/* Append one text's tokens (cut to tag_len) as sequence j of l; 0 for a
 * text without tokens (skipped). */
static int append_tokens(ot_batcher *b, tok_list *l, int j, const char *text) {
  int n = 0;
  while (ot_bpe_encode(b->bpe, text, b->scratch, b->scratch_cap, &n) != OT_OK) {
    OT_ASSERT(n > b->scratch_cap);
    b->scratch_cap = n;
    b->scratch = ot_xrealloc(b->scratch, (size_t)n * sizeof *b->scratch);
  }
  if (n > b->tag_len) n = b->tag_len;
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
  memcpy(l->tok + at, b->scratch, (size_t)n * sizeof *b->scratch);
  l->off[j + 1] = at + n;
  return 1;
}

/* Item i's candidates appended after the n_cand ones before it. */
static int append_cands(ot_batcher *b, int i, const char *id, int *n_cand) {
  const char *const *tags;
  const float *scores;
  int n;
  int st = b->cand_fn(b->cand_ctx, id, &tags, &scores, &n);
  if (st) return st;
  if (n > b->cand_m) n = b->cand_m;
  for (int k = 0; k < n; k++) {
    const int cap = b->cands_tok.cap;
    if (!append_tokens(b, &b->cands_tok, *n_cand, tags[k])) continue;
    if (b->cands_tok.cap != cap) /* the offsets grew: so do the scores */
      b->cand_score = ot_xrealloc(b->cand_score, (size_t)b->cands_tok.cap * sizeof *b->cand_score);
    b->cand_score[(*n_cand)++] = scores[k];
  }
  b->cand_item[i + 1] = *n_cand;
  return OT_OK;
}

int ot_batcher_fill(ot_batcher *b, const int64_t *items, int n, ot_batch *batch) {
  OT_ASSERT(n >= 0 && n <= b->max_items);
  const int K = b->tags->n;
  memset(b->targets, 0, (size_t)n * K * sizeof *b->targets);
  int n_tags = 0, n_cand = 0;
  if (b->tag_len) b->item_tags[0] = 0;
  if (b->cand_fn) b->cand_item[0] = 0;
  for (int i = 0; i < n; i++) {
    int64_t local;
    ot_shard *s = ot_dataset_locate(b->d, items[i], &local);
    int st = ot_shard_read_frames(s, local, b->frames + (size_t)i * b->frame_bytes);
    if (st) return st;
    const char *title = ot_shard_title(s, local);
    ot_batcher_title(b, title ? title : "", b->title + (size_t)i * b->L, b->mask + (size_t)i * b->L);
    char *const *tags;
    int nt = ot_shard_tags(s, local, &tags);
    for (int k = 0; k < nt; k++) {
      int col = ot_tagset_index(b->tags, tags[k]);
      if (col >= 0) b->targets[(size_t)i * K + col] = 1.0f;
      if (b->tag_len) n_tags += append_tokens(b, &b->tags_tok, n_tags, tags[k]);
    }
    if (b->tag_len) b->item_tags[i + 1] = n_tags;
    if (b->cand_fn && (st = append_cands(b, i, ot_shard_id(s, local), &n_cand))) return st;
  }
  batch->B = n;
  batch->frames = b->frames;
  batch->title = b->title;
  batch->title_mask = b->mask;
  batch->targets = b->targets;
  batch->loss_scale = 0.0f;
  batch->item0 = 0;
  batch->item_tags = b->tag_len ? b->item_tags : NULL;
  batch->tag_offsets = b->tag_len ? b->tags_tok.off : NULL;
  batch->tag_tokens = b->tag_len ? b->tags_tok.tok : NULL;
  batch->cand_item = b->cand_fn ? b->cand_item : NULL;
  batch->cand_offsets = b->cand_fn ? b->cands_tok.off : NULL;
  batch->cand_tokens = b->cand_fn ? b->cands_tok.tok : NULL;
  batch->cand_score = b->cand_fn ? b->cand_score : NULL;
  return OT_OK;
}
