#include "batcher.h"

#include "ot_common.h"

#include <stdlib.h>
#include <string.h>

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
  int32_t *tag_off;   /* [tag_cap+1] */
  int32_t *tag_tok;   /* [tok_cap] */
  int tag_cap, tok_cap;
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
  free(b->tag_off);
  free(b->tag_tok);
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

void ot_batcher_enable_tags(ot_batcher *b, int tag_len) {
  OT_ASSERT(tag_len >= 1 && !b->item_tags);
  b->tag_len = tag_len;
  b->item_tags = ot_xmalloc(((size_t)b->max_items + 1) * sizeof *b->item_tags);
  b->tag_cap = 16, b->tok_cap = 16 * tag_len;
  b->tag_off = ot_xmalloc(((size_t)b->tag_cap + 1) * sizeof *b->tag_off);
  b->tag_tok = ot_xmalloc((size_t)b->tok_cap * sizeof *b->tag_tok);
}

/* Append one tag's tokens (cut to tag_len) as tag number j; 0 for a tag
 * without tokens (skipped). */
static int append_tag(ot_batcher *b, int j, const char *tag) {
  int n = 0;
  while (ot_bpe_encode(b->bpe, tag, b->scratch, b->scratch_cap, &n) != OT_OK) {
    OT_ASSERT(n > b->scratch_cap);
    b->scratch_cap = n;
    b->scratch = ot_xrealloc(b->scratch, (size_t)n * sizeof *b->scratch);
  }
  if (n > b->tag_len) n = b->tag_len;
  if (n == 0) return 0;
  if (j + 1 > b->tag_cap) {
    b->tag_cap = 2 * (j + 1);
    b->tag_off = ot_xrealloc(b->tag_off, ((size_t)b->tag_cap + 1) * sizeof *b->tag_off);
  }
  int at = b->tag_off[j];
  if (at + n > b->tok_cap) {
    b->tok_cap = 2 * (at + n);
    b->tag_tok = ot_xrealloc(b->tag_tok, (size_t)b->tok_cap * sizeof *b->tag_tok);
  }
  memcpy(b->tag_tok + at, b->scratch, (size_t)n * sizeof *b->scratch);
  b->tag_off[j + 1] = at + n;
  return 1;
}

int ot_batcher_fill(ot_batcher *b, const int64_t *items, int n, ot_batch *batch) {
  OT_ASSERT(n >= 0 && n <= b->max_items);
  const int K = b->tags->n;
  memset(b->targets, 0, (size_t)n * K * sizeof *b->targets);
  int n_tags = 0;
  if (b->tag_len) b->item_tags[0] = 0, b->tag_off[0] = 0;
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
      if (b->tag_len) n_tags += append_tag(b, n_tags, tags[k]);
    }
    if (b->tag_len) b->item_tags[i + 1] = n_tags;
  }
  batch->B = n;
  batch->frames = b->frames;
  batch->title = b->title;
  batch->title_mask = b->mask;
  batch->targets = b->targets;
  batch->loss_scale = 0.0f;
  batch->item0 = 0;
  batch->item_tags = b->tag_len ? b->item_tags : NULL;
  batch->tag_offsets = b->tag_len ? b->tag_off : NULL;
  batch->tag_tokens = b->tag_len ? b->tag_tok : NULL;
  return OT_OK;
}
