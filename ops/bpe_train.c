/* Training of the byte-level BPE (ot_bpe_train, bpe.h): merges learnt from
 * pre-token run frequencies, the most frequent allowed pair first. */
#include "bpe.h"
#include "bpe_impl.h"

#include "ot_common.h"

#include <stdlib.h>
#include <string.h>

/* Word-frequency table over pre-token runs, symbol sequences per distinct
 * word, and incremental pair counts with, per pair, the words that (may)
 * contain it. A max-heap with lazy deletion picks the next pair. */
typedef struct { int64_t count; uint64_t key; } heap_ent;

typedef struct {
  size_t n_words, cap_words;
  size_t *w_off;        /* word w's symbols: sym[w_off[w] .. + w_len[w]] */
  int32_t *w_len;
  int64_t *w_freq;
  int32_t *w_mark;      /* last merge that rewrote the word */
  uint8_t *wbytes;      /* bytes of the words, parallel to sym during counting */
  int32_t *sym;
  size_t n_bytes, cap_bytes;
  int32_t *wtab;        /* word hash table: index + 1, 0 empty */
  uint64_t *wtab_hash;
  uint64_t wtab_mask;

  size_t n_pairs, cap_pairs;
  uint64_t *p_key;
  int64_t *p_count;
  int32_t **p_words;
  int32_t *p_nw, *p_cw;
  int32_t *ptab;        /* pair hash table: index + 1, 0 empty */
  uint64_t ptab_mask;

  heap_ent *heap;
  size_t heap_n, heap_cap;
} trainer;

static uint64_t hash_bytes(const uint8_t *s, size_t n) {
  uint64_t h = 0xCBF29CE484222325ULL;
  for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 0x100000001B3ULL;
  return ot_bpe_mix64(h ^ n);
}

static void word_table_grow(trainer *t) {
  uint64_t cap = 2 * (t->wtab_mask + 1);
  int32_t *tab = ot_xcalloc(cap, sizeof *tab);
  uint64_t *hs = ot_xmalloc(cap * sizeof *hs);
  for (uint64_t h = 0; h <= t->wtab_mask; h++) {
    if (!t->wtab[h]) continue;
    uint64_t g = t->wtab_hash[h] & (cap - 1);
    while (tab[g]) g = (g + 1) & (cap - 1);
    tab[g] = t->wtab[h];
    hs[g] = t->wtab_hash[h];
  }
  free(t->wtab);
  free(t->wtab_hash);
  t->wtab = tab;
  t->wtab_hash = hs;
  t->wtab_mask = cap - 1;
}

static void count_word(trainer *t, const uint8_t *s, size_t n) {
  uint64_t hv = hash_bytes(s, n), h = hv & t->wtab_mask;
  for (; t->wtab[h]; h = (h + 1) & t->wtab_mask) {
    int32_t w = t->wtab[h] - 1;
    if (t->wtab_hash[h] == hv && (size_t)t->w_len[w] == n &&
        memcmp(t->wbytes + t->w_off[w], s, n) == 0) {
      t->w_freq[w]++;
      return;
    }
  }
  OT_ASSERT(t->n_words < INT32_MAX - 1);
  if (t->n_words == t->cap_words) {
    t->cap_words *= 2;
    t->w_off = ot_xrealloc(t->w_off, t->cap_words * sizeof *t->w_off);
    t->w_len = ot_xrealloc(t->w_len, t->cap_words * sizeof *t->w_len);
    t->w_freq = ot_xrealloc(t->w_freq, t->cap_words * sizeof *t->w_freq);
  }
  while (t->n_bytes + n > t->cap_bytes) {
    t->cap_bytes *= 2;
    t->wbytes = ot_xrealloc(t->wbytes, t->cap_bytes);
  }
  size_t w = t->n_words++;
  memcpy(t->wbytes + t->n_bytes, s, n);
  t->w_off[w] = t->n_bytes;
  t->w_len[w] = (int32_t)n;
  t->w_freq[w] = 1;
  t->n_bytes += n;
  t->wtab[h] = (int32_t)w + 1;
  t->wtab_hash[h] = hv;
  if (t->n_words * 2 > t->wtab_mask + 1) word_table_grow(t);
}

static void pair_table_grow(trainer *t) {
  uint64_t cap = 2 * (t->ptab_mask + 1);
  int32_t *tab = ot_xcalloc(cap, sizeof *tab);
  for (size_t p = 0; p < t->n_pairs; p++) {
    uint64_t g = ot_bpe_mix64(t->p_key[p]) & (cap - 1);
    while (tab[g]) g = (g + 1) & (cap - 1);
    tab[g] = (int32_t)p + 1;
  }
  free(t->ptab);
  t->ptab = tab;
  t->ptab_mask = cap - 1;
}

/* Index of the pair `key`, created with count 0 if absent and create. */
static int32_t pair_get(trainer *t, uint64_t key, int create) {
  uint64_t h = ot_bpe_mix64(key) & t->ptab_mask;
  for (; t->ptab[h]; h = (h + 1) & t->ptab_mask)
    if (t->p_key[t->ptab[h] - 1] == key) return t->ptab[h] - 1;
  if (!create) return -1;
  OT_ASSERT(t->n_pairs < INT32_MAX - 1);
  if (t->n_pairs == t->cap_pairs) {
    t->cap_pairs *= 2;
    t->p_key = ot_xrealloc(t->p_key, t->cap_pairs * sizeof *t->p_key);
    t->p_count = ot_xrealloc(t->p_count, t->cap_pairs * sizeof *t->p_count);
    t->p_words = ot_xrealloc(t->p_words, t->cap_pairs * sizeof *t->p_words);
    t->p_nw = ot_xrealloc(t->p_nw, t->cap_pairs * sizeof *t->p_nw);
    t->p_cw = ot_xrealloc(t->p_cw, t->cap_pairs * sizeof *t->p_cw);
  }
  int32_t p = (int32_t)t->n_pairs++;
  t->p_key[p] = key;
  t->p_count[p] = 0;
  t->p_words[p] = NULL;
  t->p_nw[p] = t->p_cw[p] = 0;
  t->ptab[h] = p + 1;
  if (t->n_pairs * 2 > t->ptab_mask + 1) pair_table_grow(t);
  return p;
}

static void pair_add_word(trainer *t, int32_t p, int32_t w) {
  if (t->p_nw[p] > 0 && t->p_words[p][t->p_nw[p] - 1] == w) return;
  if (t->p_nw[p] == t->p_cw[p]) {
    t->p_cw[p] = t->p_cw[p] ? 2 * t->p_cw[p] : 4;
    t->p_words[p] = ot_xrealloc(t->p_words[p], (size_t)t->p_cw[p] * sizeof **t->p_words);
  }
  t->p_words[p][t->p_nw[p]++] = w;
}

/* Heap order: higher count first, then smaller (left, right). */
static int heap_before(heap_ent a, heap_ent b) {
  return a.count > b.count || (a.count == b.count && a.key < b.key);
}

static void heap_push(trainer *t, int64_t count, uint64_t key) {
  if (t->heap_n == t->heap_cap) {
    t->heap_cap = t->heap_cap ? 2 * t->heap_cap : 1024;
    t->heap = ot_xrealloc(t->heap, t->heap_cap * sizeof *t->heap);
  }
  size_t i = t->heap_n++;
  heap_ent e = {count, key};
  while (i > 0 && heap_before(e, t->heap[(i - 1) / 2])) {
    t->heap[i] = t->heap[(i - 1) / 2];
    i = (i - 1) / 2;
  }
  t->heap[i] = e;
}

static heap_ent heap_pop(trainer *t) {
  heap_ent top = t->heap[0], last = t->heap[--t->heap_n];
  size_t i = 0;
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= t->heap_n) break;
    if (c + 1 < t->heap_n && heap_before(t->heap[c + 1], t->heap[c])) c++;
    if (!heap_before(t->heap[c], last)) break;
    t->heap[i] = t->heap[c];
    i = c;
  }
  if (t->heap_n > 0) t->heap[i] = last;
  return top;
}

typedef struct { uint64_t key; int64_t delta; } pair_delta;

static int delta_cmp(const void *a, const void *b) {
  uint64_t x = ((const pair_delta *)a)->key, y = ((const pair_delta *)b)->key;
  return (x > y) - (x < y);
}

/* Collect the allowed adjacent pairs of a symbol sequence with weight d. */
static int add_pairs(const ot_bpe *b, const int32_t *s, int n, int64_t d, pair_delta *out) {
  int k = 0;
  for (int i = 0; i + 1 < n; i++)
    if (ot_bpe_merge_allowed(b, s[i], s[i + 1])) out[k++] = (pair_delta){ot_bpe_pair_key(s[i], s[i + 1]), d};
  return k;
}

/* Rewrite word w with the merge (l, r) -> z and apply the net change of
 * its pair counts. */
static void merge_word(trainer *t, const ot_bpe *b, int32_t w, int32_t l, int32_t r, int32_t z) {
  int32_t *s = t->sym + t->w_off[w];
  int n = t->w_len[w];
  int i = 0;
  while (i + 1 < n && !(s[i] == l && s[i + 1] == r)) i++;
  if (i + 1 >= n) return;  /* stale entry: the word no longer has the pair */
  pair_delta d[2 * OT_BPE_MAX_RUN];
  int nd = add_pairs(b, s, n, -t->w_freq[w], d);
  int m = 0;
  for (i = 0; i < n; m++) {
    if (i + 1 < n && s[i] == l && s[i + 1] == r) { s[m] = z; i += 2; }
    else s[m] = s[i++];
  }
  t->w_len[w] = m;
  nd += add_pairs(b, s, m, t->w_freq[w], d + nd);
  qsort(d, (size_t)nd, sizeof *d, delta_cmp);
  for (int a = 0; a < nd;) {
    int64_t sum = 0;
    int e = a;
    for (; e < nd && d[e].key == d[a].key; e++) sum += d[e].delta;
    if (sum != 0) {
      int32_t p = pair_get(t, d[a].key, sum > 0);
      OT_ASSERT(p >= 0);
      t->p_count[p] += sum;
      OT_ASSERT(t->p_count[p] >= 0);
      /* Only pairs with z can gain: push them and note the word. */
      if (sum > 0) { heap_push(t, t->p_count[p], d[a].key); pair_add_word(t, p, w); }
    }
    a = e;
  }
}

static void trainer_free(trainer *t) {
  free(t->w_off); free(t->w_len); free(t->w_freq); free(t->w_mark);
  free(t->wbytes); free(t->sym); free(t->wtab); free(t->wtab_hash);
  for (size_t p = 0; p < t->n_pairs; p++) free(t->p_words[p]);
  free(t->p_key); free(t->p_count); free(t->p_words); free(t->p_nw); free(t->p_cw);
  free(t->ptab); free(t->heap);
}

int ot_bpe_train(ot_bpe **out, const char *const *texts, size_t n, int vocab_size) {
  *out = NULL;
  if (vocab_size < OT_BPE_MIN_VOCAB || vocab_size > OT_BPE_MAX_VOCAB)
    return ot_fail(OT_EINVAL, "bpe train: vocab_size %d outside [%d, %d]", vocab_size,
                   OT_BPE_MIN_VOCAB, OT_BPE_MAX_VOCAB);
  for (size_t k = 0; k < n; k++)
    if (!texts[k]) return ot_fail(OT_EINVAL, "bpe train: texts[%zu] is NULL", k);
  trainer t = {0};
  t.cap_words = 1024;
  t.w_off = ot_xmalloc(t.cap_words * sizeof *t.w_off);
  t.w_len = ot_xmalloc(t.cap_words * sizeof *t.w_len);
  t.w_freq = ot_xmalloc(t.cap_words * sizeof *t.w_freq);
  t.cap_bytes = 1 << 16;
  t.wbytes = ot_xmalloc(t.cap_bytes);
  t.wtab_mask = 4095;
  t.wtab = ot_xcalloc(t.wtab_mask + 1, sizeof *t.wtab);
  t.wtab_hash = ot_xmalloc((t.wtab_mask + 1) * sizeof *t.wtab_hash);
  for (size_t k = 0; k < n; k++) {
    const uint8_t *s = (const uint8_t *)texts[k];
    size_t len = strlen(texts[k]);
    for (size_t i = 0; i < len;) {
      size_t j = ot_bpe_next_run(s, len, i);
      count_word(&t, s + i, j - i);
      i = j;
    }
  }
  free(t.wtab); t.wtab = NULL;
  free(t.wtab_hash); t.wtab_hash = NULL;

  ot_bpe *b = ot_bpe_new_bytes();
  t.sym = ot_xmalloc((t.n_bytes ? t.n_bytes : 1) * sizeof *t.sym);
  for (size_t i = 0; i < t.n_bytes; i++) t.sym[i] = OT_BPE_BYTE0 + t.wbytes[i];
  free(t.wbytes); t.wbytes = NULL;
  t.w_mark = ot_xmalloc((t.n_words ? t.n_words : 1) * sizeof *t.w_mark);
  t.cap_pairs = 1024;
  t.p_key = ot_xmalloc(t.cap_pairs * sizeof *t.p_key);
  t.p_count = ot_xmalloc(t.cap_pairs * sizeof *t.p_count);
  t.p_words = ot_xmalloc(t.cap_pairs * sizeof *t.p_words);
  t.p_nw = ot_xmalloc(t.cap_pairs * sizeof *t.p_nw);
  t.p_cw = ot_xmalloc(t.cap_pairs * sizeof *t.p_cw);
  t.ptab_mask = 4095;
  t.ptab = ot_xcalloc(t.ptab_mask + 1, sizeof *t.ptab);
  for (size_t w = 0; w < t.n_words; w++) {
    const int32_t *s = t.sym + t.w_off[w];
    t.w_mark[w] = -1;
    for (int i = 0; i + 1 < t.w_len[w]; i++) {
      if (!ot_bpe_merge_allowed(b, s[i], s[i + 1])) continue;
      int32_t p = pair_get(&t, ot_bpe_pair_key(s[i], s[i + 1]), 1);
      t.p_count[p] += t.w_freq[w];
      pair_add_word(&t, p, (int32_t)w);
    }
  }
  for (size_t p = 0; p < t.n_pairs; p++) heap_push(&t, t.p_count[p], t.p_key[p]);

  while (ot_bpe_vocab_size(b) < vocab_size && t.heap_n > 0) {
    heap_ent e = heap_pop(&t);
    int32_t p = pair_get(&t, e.key, 0);
    int64_t cur = t.p_count[p];
    if (cur != e.count) {
      /* Stale entry: a lower current count needs a fresh entry; a higher
       * one already has its own. */
      if (cur > 0 && cur < e.count) heap_push(&t, cur, e.key);
      continue;
    }
    if (cur < 2) break;
    int32_t l = (int32_t)(e.key >> 32), r = (int32_t)(e.key & 0xFFFFFFFFu);
    int32_t z = ot_bpe_add_merge(b, l, r);
    int32_t *words = t.p_words[p], nw = t.p_nw[p];
    t.p_words[p] = NULL;
    t.p_nw[p] = t.p_cw[p] = 0;
    for (int32_t k = 0; k < nw; k++) {
      int32_t w = words[k];
      if (t.w_mark[w] == z) continue;
      t.w_mark[w] = z;
      merge_word(&t, b, w, l, r, z);
    }
    free(words);
    OT_ASSERT(t.p_count[p] == 0);
  }
  trainer_free(&t);
  *out = b;
  return OT_OK;
}
