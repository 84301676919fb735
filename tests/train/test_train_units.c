/* ot-train's parts without a model: data order and rank slices, the F1
 * threshold sweep, the tag vocabulary and batch inputs on a small written
 * dataset, and checkpoints (exact round trip, shape checks, latest pointer,
 * pruning, temp files). Runs in the current directory. */
#include "batcher.h"
#include "copy_aug.h"
#include "titles.h"
#include "units_split.h"
#include "ckpt.h"
#include "f1sweep.h"
#include "ngram.h"
#include "order.h"
#include "ot_common.h"
#include "ot_fs.h"
#include "ot_shard.h"
#include "ot_test.h"
#include "tagnorm.h"
#include "tagset.h"

#include <hdf5.h>
#include <math.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

static void test_order(void) {
  const int64_t n = 10, B = 4;
  ot_order *o;
  CHECK(ot_order_open(&o, n, 42) == OT_OK);
  int64_t items[120];
  ot_order_pos saved[30];
  for (int b = 0; b < 30; b++) {
    ot_order_get_pos(o, &saved[b]);
    ot_order_next(o, B, items + b * B);
  }
  /* Every epoch (n consecutive items) is a permutation; epochs differ. */
  int perms = 1, differ = 0;
  for (int e = 0; e < 12; e++) {
    int seen[10] = {0};
    for (int k = 0; k < n; k++) seen[items[e * n + k]]++;
    for (int k = 0; k < n; k++) perms &= seen[k] == 1;
    if (e && memcmp(items + e * n, items + (e - 1) * n, n * sizeof *items)) differ = 1;
  }
  CHECK(perms && differ);
  /* Restoring any saved position continues the same stream. */
  int same = 1;
  for (int b = 0; b < 30; b += 7) {
    ot_order *r;
    CHECK(ot_order_open_at(&r, n, &saved[b]) == OT_OK);
    int64_t again[120];
    ot_order_next(r, (30 - b) * B, again);
    same &= !memcmp(again, items + b * B, (size_t)(30 - b) * B * sizeof *again);
    ot_order_close(r);
  }
  CHECK(same);
  /* The same seed gives the same order; another seed another one. */
  ot_order *o2, *o3;
  int64_t a[40], c[40];
  CHECK(ot_order_open(&o2, n, 42) == OT_OK && ot_order_open(&o3, n, 43) == OT_OK);
  ot_order_next(o2, 40, a);
  ot_order_next(o3, 40, c);
  CHECK(!memcmp(a, items, sizeof a) && memcmp(a, c, sizeof a));
  ot_order_close(o2);
  ot_order_close(o3);
  ot_order_pos bad = saved[3];
  bad.offset = n;
  CHECK(ot_order_open_at(&o2, n, &bad) == OT_EINVAL);
  ot_order_close(o);

  /* Rank slices tile the batch in order, sizes within one. */
  int ok = 1;
  for (int64_t Bt = 0; Bt <= 13; Bt++)
    for (int P = 1; P <= 5; P++) {
      int64_t next = 0, mn = Bt, mx = 0;
      for (int r = 0; r < P; r++) {
        int64_t lo, hi;
        ot_order_slice(Bt, P, r, &lo, &hi);
        ok &= lo == next && hi >= lo;
        next = hi;
        mn = hi - lo < mn ? hi - lo : mn;
        mx = hi - lo > mx ? hi - lo : mx;
      }
      ok &= next == Bt && mx - mn <= 1;
    }
  CHECK(ok);
}

static float logit_of(double p) { return (float)log(p / (1.0 - p)); }

static void test_f1(void) {
  /* 3 items x 4 tags with known scores; brute force over the same grid. */
  const double probs[12] = {0.95, 0.80, 0.30, 0.10, 0.65, 0.40, 0.90, 0.05, 0.55, 0.20, 0.70, 0.35};
  const float y[12] = {1, 1, 0, 0, 1, 0, 1, 1, 0, 0, 1, 0};
  float x[12];
  /* Scores off the bin edges (k/1000), where float rounding decides the bin. */
  for (int i = 0; i < 12; i++) x[i] = logit_of(probs[i] + 4e-4);
  ot_f1_hist *h = calloc(1, sizeof *h), *h1 = calloc(1, sizeof *h1), *h2 = calloc(1, sizeof *h2);
  ot_f1_hist_add(h, x, y, 3, 4);
  ot_f1_hist_add(h1, x, y, 1, 4); /* the same items split over two "ranks" */
  ot_f1_hist_add(h2, x + 4, y + 4, 2, 4);
  for (int b = 0; b < OT_F1_BINS; b++) h1->pos[b] += h2->pos[b], h1->neg[b] += h2->neg[b];
  CHECK(!memcmp(h, h1, sizeof *h));
  double best = -1, best_t = 0;
  for (int k = 0; k < OT_F1_BINS; k++) {
    double t = (double)k / OT_F1_BINS;
    int tp = 0, fp = 0, fn = 0;
    for (int i = 0; i < 12; i++) {
      int pred = probs[i] + 4e-4 >= t;
      tp += pred && y[i] > 0, fp += pred && y[i] == 0, fn += !pred && y[i] > 0;
    }
    double f1 = tp ? 2.0 * tp / (2.0 * tp + fp + fn) : 0;
    if (f1 > best + 1e-12) best = f1, best_t = t;
  }
  ot_f1_result r;
  ot_f1_best(h, &r);
  CHECK(fabs(r.f1 - best) < 1e-12);
  /* Ties resolve to the lowest threshold: the best one found scanning up. */
  CHECK(fabs(r.threshold - best_t) < 1e-9);
  /* Here: predict {0.95,0.80,0.65,0.90,0.70,(0.55)} -> best is t in (0.40, 0.55]
   * with tp 5, fp 1 (0.55), fn 1 (0.05): F1 = 10/12 — or t in (0.55,0.65]:
   * tp 5, fp 0, fn 1: F1 = 10/11. */
  CHECK(r.tp == 5 && r.fp == 0 && r.fn == 1 && fabs(r.f1 - 10.0 / 11.0) < 1e-12);
  CHECK(r.threshold > 0.55 && r.threshold <= 0.65);
  /* positives never scored (tags a generative model did not emit) count
   * as false negatives at every threshold */
  ot_f1_hist *g = calloc(1, sizeof *g);
  g->pos[900] = 1, g->neg[100] = 1, g->missed = 2;
  ot_f1_result gr;
  ot_f1_best(g, &gr); /* 0.1 < t <= 0.9: 1 tp, 2 fn -> 0.5 (lowest wins ties); t <= 0.1: + 1 fp -> 0.4 */
  CHECK(gr.tp == 1 && gr.fp == 0 && gr.fn == 2 && fabs(gr.f1 - 0.5) < 1e-12 &&
        fabs(gr.threshold - 0.101) < 1e-12);
  free(g);
  CHECK(ot_f1_bin_prob(1.0) == OT_F1_BINS - 1 && ot_f1_bin_prob(-0.5) == 0 && ot_f1_bin_prob(0.4321) == 432);
  ot_f1_result at;
  ot_f1_at(h, 500, &at); /* t = 0.5 */
  CHECK(at.tp == 5 && at.fp == 1 && at.fn == 1);
  memset(h, 0, sizeof *h);
  ot_f1_best(h, &r);
  CHECK(r.f1 == 0.0 && r.threshold == 0.5);
  free(h), free(h1), free(h2);
}

/* A one-shard dataset: item i has title "item i", tags from a small set. */
static void write_dataset(const char *dir, int n, int T, int H, int W) {
  ot_shard_writer *w = units_split_open(dir, T, H, W);
  uint8_t *frames = malloc((size_t)T * H * W * 3);
  for (int i = 0; i < n; i++) {
    for (int k = 0; k < T * H * W * 3; k++) frames[k] = (uint8_t)(i + k);
    char id[32], title[64];
    snprintf(id, sizeof id, "id%d", i);
    snprintf(title, sizeof title, "item %d of the set", i);
    char *all[4] = {"zebra", "cat", "dog", "emu"};
    char *tags[3] = {all[i % 4], all[(i + 1) % 4], i == 0 ? "rare" : all[(i + 2) % 4]};
    ot_item it = {.id = id, .path = "p", .title = title, .group = "", .tags = tags,
                  .n_tags = 1 + i % 3, .line = i + 1};
    if (i == 0) it.n_tags = 3;
    CHECK(ot_shard_append(w, &it, frames, NULL) == OT_OK);
  }
  free(frames);
  units_split_close(dir, w);
}

/* Spellings of one tag: one vocabulary column with the items holding any of
 * them, one target per item, one target sequence (its first spelling; the
 * judge's: its normal form). */
static void test_tag_spellings(void) {
  const char *dir = "units_spell";
  ot_shard_writer *w = units_split_open(dir, 1, 2, 2);
  uint8_t frames[12] = {0};
  char *tags[3][3] = {{"Cat", "cat ", "Dog"}, {"\xef\xbc\xa3\xef\xbc\xa1\xef\xbc\xb4", "dog", NULL},
                      {"cat", " \t", "emu"}}; /* item 1: fullwidth "CAT" */
  const int n_tags[3] = {3, 2, 3};
  for (int i = 0; i < 3; i++) {
    char id[8];
    snprintf(id, sizeof id, "s%d", i);
    ot_item it = {.id = id, .path = "p", .title = "a title", .group = "", .tags = tags[i],
                  .n_tags = n_tags[i], .line = i + 1};
    CHECK(ot_shard_append(w, &it, frames, NULL) == OT_OK);
  }
  units_split_close(dir, w);

  char *norm[3];
  int first[3];
  CHECK(ot_tagnorm_unique((const char *const *)tags[0], 3, norm, first) == 2 && !strcmp(norm[0], "cat") && !strcmp(norm[1], "dog") &&
        first[0] == 0 && first[1] == 2);
  free(norm[0]), free(norm[1]);
  CHECK(ot_tagnorm_unique((const char *const *)tags[2], 3, norm, NULL) == 2 && !strcmp(norm[1], "emu")); /* " \t" is no tag */
  free(norm[0]), free(norm[1]);

  ot_dataset *d;
  CHECK(ot_dataset_open(&d, dir) == OT_OK);
  ot_tagset ts;
  CHECK(ot_tagset_build(&ts, d, 1) == OT_OK);
  CHECK(ts.n == 3 && !strcmp(ts.tags[0], "cat") && !strcmp(ts.tags[1], "dog") && !strcmp(ts.tags[2], "emu"));
  CHECK(ts.counts[0] == 3 && ts.counts[1] == 2 && ts.counts[2] == 1); /* items, not spellings */
  CHECK(ot_tagset_index(&ts, "CAT") == 0 && ot_tagset_index(&ts, " Dog ") == 1 && ot_tagset_index(&ts, "cow") == -1);
  CHECK(ot_tagset_index(&ts, "\xff") == -1);

  const char *texts[] = {"a title", "cat", "dog", "Cat"};
  ot_bpe *bpe;
  CHECK(ot_bpe_train(&bpe, texts, 4, 300) == OT_OK);
  ot_batcher *b;
  CHECK(ot_batcher_open(&b, d, bpe, &ts, 4, 3) == OT_OK);
  ot_batcher_enable_tags(b, 8);
  int64_t items[3] = {0, 1, 2};
  ot_batch batch;
  CHECK(ot_batcher_fill(b, items, 3, &batch) == OT_OK);
  const float want[9] = {1, 1, 0, 1, 1, 0, 1, 0, 1};
  CHECK(!memcmp(batch.targets, want, sizeof want));
  CHECK(batch.item_tags[1] == 2 && batch.item_tags[2] == 4 && batch.item_tags[3] == 6);
  int32_t ids[8];
  int n_ids = 0;
  CHECK(ot_bpe_encode(bpe, "Cat", ids, 8, &n_ids) == OT_OK); /* item 0's first spelling */
  CHECK(batch.tag_offsets[1] - batch.tag_offsets[0] == n_ids &&
        !memcmp(batch.tag_tokens + batch.tag_offsets[0], ids, (size_t)n_ids * sizeof *ids));
  /* the judge's sequences: the normal form, whichever spelling came first */
  ot_batcher_normal_tags(b);
  CHECK(ot_batcher_fill(b, items, 3, &batch) == OT_OK);
  CHECK(batch.item_tags[1] == 2);
  int32_t cat[8];
  int n_cat = 0;
  CHECK(ot_bpe_encode(bpe, "cat", cat, 8, &n_cat) == OT_OK);
  CHECK(n_cat != n_ids || memcmp(cat, ids, (size_t)n_ids * sizeof *ids)); /* "Cat" and "cat" differ in tokens */
  CHECK(batch.tag_offsets[1] - batch.tag_offsets[0] == n_cat &&
        !memcmp(batch.tag_tokens + batch.tag_offsets[0], cat, (size_t)n_cat * sizeof *cat));
  ot_batcher_close(b);
  ot_bpe_close(bpe);
  ot_tagset_free(&ts);
  ot_dataset_close(d);
}

static void test_tags_and_batches(void) {
  const int T = 2, H = 4, W = 4, n = 9;
  write_dataset("units_data", n, T, H, W);
  ot_dataset *d;
  CHECK(ot_dataset_open(&d, "units_data") == OT_OK);
  ot_tagset ts, back;
  CHECK(ot_tagset_build(&ts, d, 2) == OT_OK);
  /* "rare" occurs once: out at min count 2; the rest sorted. */
  CHECK(ts.n == 4 && !strcmp(ts.tags[0], "cat") && !strcmp(ts.tags[3], "zebra"));
  CHECK(ot_tagset_index(&ts, "rare") == -1 && ot_tagset_index(&ts, "dog") == 1);
  int64_t total = 0;
  for (int i = 0; i < ts.n; i++) total += ts.counts[i];
  CHECK(total == 3 + 2 + 3 + 1 + 2 + 3 + 1 + 2 + 3 - 1); /* all occurrences but "rare" */
  char *json = ot_tagset_to_json(&ts);
  CHECK(ot_tagset_from_json(&back, json, "test") == OT_OK);
  CHECK(back.n == ts.n && !strcmp(back.tags[2], ts.tags[2]) && back.counts[3] == ts.counts[3]);
  free(json);
  ot_tagset_free(&back);
  ot_tagset none;
  CHECK(ot_tagset_build(&none, d, 100) == OT_EINVAL);
  CHECK_MSG("model.min_tag_count=100");
  CHECK(ot_tagset_from_json(&none, "{\"tags\": [\"b\", \"a\"], \"counts\": [1, 1]}", "x") == OT_EINVAL);

  const char *texts[] = {"item 1 of the set", "item 2 of the set", "cat", "dog"};
  ot_bpe *bpe;
  CHECK(ot_bpe_train(&bpe, texts, 4, 300) == OT_OK);
  ot_batcher *b;
  const int L = 3;
  CHECK(ot_batcher_open(&b, d, bpe, &ts, L, 4) == OT_OK);
  int64_t items[3] = {5, 0, 8};
  ot_batch batch;
  CHECK(ot_batcher_fill(b, items, 3, &batch) == OT_OK);
  CHECK(batch.B == 3 && batch.loss_scale == 0.0f);
  CHECK(batch.title_ngram == NULL);
  { /* model.title_ngram: each item's title as unit n-gram counts, its own row */
    const int D = 16;
    ot_batcher_title_ngram(b, D);
    CHECK(ot_batcher_fill(b, items, 3, &batch) == OT_OK && batch.title_ngram);
    for (int i = 0; i < 3; i++) {
      int64_t local;
      ot_shard *sh = ot_dataset_locate(d, items[i], &local);
      float want[16], norm = 0.0f;
      ot_ngram_vector(ot_shard_title(sh, local), NULL, D, want);
      for (int k = 0; k < D; k++) norm += batch.title_ngram[i * D + k] * batch.title_ngram[i * D + k];
      CHECK(!memcmp(batch.title_ngram + i * D, want, sizeof want) && fabsf(norm - 1.0f) < 1e-5f);
    }
    CHECK(memcmp(batch.title_ngram, batch.title_ngram + D, D * sizeof(float))); /* items differ */
  }
  /* frames of item 5 in slot 0, of item 8 in slot 2 */
  CHECK(batch.frames[0] == 5 && batch.frames[2 * T * H * W * 3 + 1] == (uint8_t)(8 + 1));
  { /* shift augmentation: each item's frames are its plain frames moved by
     * one offset in [-1, 1]^2, the same on a refill, not all zero */
    const size_t fb = (size_t)T * H * W * 3;
    uint8_t *plain = ot_xmalloc(3 * fb), *moved = ot_xmalloc(fb), *again = ot_xmalloc(3 * fb);
    memcpy(plain, batch.frames, 3 * fb);
    int any = 0;
    for (uint64_t seed = 1; seed <= 4; seed++) {
      ot_batcher_shift_aug(b, 1, seed);
      CHECK(ot_batcher_fill(b, items, 3, &batch) == OT_OK);
      memcpy(again, batch.frames, 3 * fb);
      CHECK(ot_batcher_fill(b, items, 3, &batch) == OT_OK);
      CHECK(!memcmp(again, batch.frames, 3 * fb));
      for (int i = 0; i < 3; i++) {
        int found = 0;
        for (int dy = -1; dy <= 1 && !found; dy++)
          for (int dx = -1; dx <= 1 && !found; dx++) {
            memcpy(moved, plain + i * fb, fb);
            ot_batcher_shift_frames(moved, T, H, W, dx, dy);
            if (!memcmp(moved, batch.frames + i * fb, fb)) found = 1 + (dx || dy);
          }
        CHECK(found);
        any |= found == 2;
      }
    }
    CHECK(any);
    ot_batcher_shift_aug(b, 0, 0);
    CHECK(ot_batcher_fill(b, items, 3, &batch) == OT_OK && !memcmp(plain, batch.frames, 3 * fb));
    free(plain), free(moved), free(again);
  }
  /* targets: item 0 has zebra, cat, rare -> columns of cat and zebra only */
  const float *t1 = batch.targets + 1 * ts.n;
  CHECK(t1[0] == 1 && t1[1] == 0 && t1[2] == 0 && t1[3] == 1);
  /* item 5 (1 + 5 % 3 = 3 tags): cat, dog, emu */
  CHECK(batch.targets[0] == 1 && batch.targets[1] == 1 && batch.targets[2] == 1 && batch.targets[3] == 0);
  /* titles are cut to L tokens, all real */
  CHECK(batch.title_mask[0] && batch.title_mask[L - 1]);
  int32_t ids[3];
  uint8_t mask[3];
  ot_titles *ti;
  ot_titles_open(&ti, bpe, L);
  CHECK(ot_titles_tokens(ti, "", ids, mask) == 0 && ids[0] == OT_BPE_PAD && mask[2] == 0);
  CHECK(ot_titles_tokens(ti, "cat", ids, mask) >= 1 && mask[0] == 1 && ids[0] != OT_BPE_PAD);
  /* a very long title (longer than the encode scratch) still works */
  char longt[4000];
  memset(longt, 'x', sizeof longt - 1);
  for (size_t k = 0; k < sizeof longt - 1; k += 2) longt[k] = ' ';
  longt[sizeof longt - 1] = '\0';
  CHECK(ot_titles_tokens(ti, longt, ids, mask) == L);
  CHECK(batch.item_tags == NULL && batch.tag_offsets == NULL && batch.tag_tokens == NULL);
  CHECK(batch.title_words == NULL);
  /* title words: case-folded words tokenized as tags are (no leading
   * space), SEP between them, cut to L */
  {
    int32_t want[16], tok[8], spaced[16];
    int n_want = 0, n, n_sp;
    CHECK(ot_bpe_encode(bpe, "c", tok, 8, &n) == OT_OK && n == 1);
    want[n_want++] = tok[0];
    want[n_want++] = OT_BPE_SEP;
    CHECK(ot_bpe_encode(bpe, "do", tok, 8, &n) == OT_OK);
    for (int k = 0; k < n; k++) want[n_want++] = tok[k];
    CHECK(n_want >= L); /* the cut is exercised too */
    /* unlike the title itself, whose second word carries its space */
    CHECK(ot_bpe_encode(bpe, "C Do", spaced, 16, &n_sp) == OT_OK && spaced[2] != want[2]);
    CHECK(ot_titles_words(ti, "  C\tDo ", ids, mask) == L);
    for (int k = 0; k < L; k++) CHECK(ids[k] == want[k] && mask[k] == 1);
    CHECK(ot_titles_words(ti, "c", ids, mask) == 1 && ids[0] == want[0]);
    CHECK(ids[1] == OT_BPE_PAD && !mask[1]);
    CHECK(ot_titles_words(ti, "\xff bad", ids, mask) == 0 && !mask[0]);
  }
  ot_titles_close(ti);
  /* generative models: every tag of the item (also "rare", outside the
   * closed-set vocabulary) as its BPE tokens cut to tag_len */
  const int tag_len = 2;
  ot_batcher_enable_tags(b, tag_len);
  CHECK(ot_batcher_fill(b, items, 3, &batch) == OT_OK);
  CHECK(batch.item_tags && batch.item_tags[0] == 0);
  CHECK(batch.title_words && batch.title_words_mask && batch.title_words_mask[0]);
  for (int i = 0; i < 3; i++) {
    int64_t local;
    ot_shard *sh = ot_dataset_locate(d, items[i], &local);
    char *const *tags;
    int nt = ot_shard_tags(sh, local, &tags);
    CHECK(batch.item_tags[i + 1] - batch.item_tags[i] == nt);
    for (int k = 0; k < nt; k++) {
      int j = batch.item_tags[i] + k, want[16], nw = 0;
      CHECK(ot_bpe_encode(bpe, tags[k], want, 16, &nw) == OT_OK);
      int len = nw < tag_len ? nw : tag_len;
      CHECK(batch.tag_offsets[j + 1] - batch.tag_offsets[j] == len);
      CHECK(!memcmp(batch.tag_tokens + batch.tag_offsets[j], want, (size_t)len * sizeof *want));
    }
  }
  /* the baseline's fixed order: most frequent in training first, ties
   * (and tags outside the vocabulary, count 0) as the item lists them */
  ot_batcher_order_tags(b);
  items[0] = 2, items[1] = 7; /* dog emu zebra, emu zebra: emu (4) after zebra (5) */
  CHECK(ot_batcher_fill(b, items, 3, &batch) == OT_OK);
  int reordered = 0;
  for (int i = 0; i < 3; i++) {
    int64_t local;
    ot_shard *sh = ot_dataset_locate(d, items[i], &local);
    char *const *tags;
    int nt = ot_shard_tags(sh, local, &tags), used[16] = {0};
    OT_ASSERT(nt <= 16);
    int64_t prev = INT64_MAX;
    for (int k = 0; k < nt; k++) { /* which of the item's tags is listed k-th */
      int j = batch.item_tags[i] + k, found = -1;
      for (int q = 0; q < nt && found < 0; q++) {
        int want[16], nw = 0;
        CHECK(ot_bpe_encode(bpe, tags[q], want, 16, &nw) == OT_OK);
        int len = nw < tag_len ? nw : tag_len;
        if (!used[q] && batch.tag_offsets[j + 1] - batch.tag_offsets[j] == len &&
            !memcmp(batch.tag_tokens + batch.tag_offsets[j], want, (size_t)len * sizeof *want))
          found = q;
      }
      CHECK(found >= 0);
      if (found < 0) break;
      used[found] = 1;
      reordered |= found != k;
      const int col = ot_tagset_index(&ts, tags[found]);
      const int64_t count = col >= 0 ? ts.counts[col] : 0;
      CHECK(count <= prev);
      prev = count;
    }
  }
  CHECK(reordered); /* the fixture's own order is not by count */
  /* rag candidates (ot_cand_tokens, the batcher's rule and raw tagging's):
   * the first max_m of each item, each cut to tag_len tokens, a candidate
   * without tokens skipped, texts and scores kept beside them */
  {
    ot_titles *tc;
    ot_titles_open(&tc, bpe, L);
    ot_cand_tokens *ct;
    ot_cand_tokens_open(&ct, tc, 2, tag_len, 3);
    const char *c0[] = {"cat", "", "item 1 of the set", "dog"}; /* "dog" is the 4th: beyond max_m */
    const float s0[] = {0.9f, 0.8f, 0.7f, 0.6f};
    for (int round = 0; round < 2; round++) { /* reused after a clear */
      ot_cand_tokens_clear(ct);
      ot_cand_tokens_add(ct, c0, s0, 4);
      ot_cand_tokens_add(ct, c0 + 3, s0 + 3, 0); /* an item without candidates */
      ot_batch cb;
      memset(&cb, 0, sizeof cb);
      ot_cand_tokens_to_batch(ct, &cb);
      CHECK(cb.cand_item[0] == 0 && cb.cand_item[1] == 2 && cb.cand_item[2] == 2);
      CHECK(!strcmp(cb.cand_text[0], "cat") && !strcmp(cb.cand_text[1], "item 1 of the set"));
      CHECK(cb.cand_score[0] == 0.9f && cb.cand_score[1] == 0.7f);
      int want[16], nw = 0;
      CHECK(ot_bpe_encode(bpe, "item 1 of the set", want, 16, &nw) == OT_OK && nw > tag_len);
      CHECK(cb.cand_offsets[2] - cb.cand_offsets[1] == tag_len);
      CHECK(!memcmp(cb.cand_tokens + cb.cand_offsets[1], want, (size_t)tag_len * sizeof *want));
    }
    ot_cand_tokens_close(ct);
    ot_titles_close(tc);
  }
  ot_batcher_close(b);
  ot_bpe_close(bpe);
  ot_tagset_free(&ts);
  ot_dataset_close(d);
}

static ot_params *make_params(int dim, int training) {
  ot_params *p;
  CHECK(ot_params_open(&p) == OT_OK);
  int s1[2] = {dim, 3}, s2[1] = {5}, s3[3] = {2, 2, 2};
  ot_params_add(p, "a.w", 2, s1, 1, NULL);
  ot_params_add(p, "a.b", 1, s2, 0, NULL);
  ot_params_add(p, "block0.attn.qkv.w", 3, s3, 1, NULL);
  CHECK(ot_params_alloc(p, training) == OT_OK);
  return p;
}

static int same_floats(const float *a, const float *b, size_t n) { return !memcmp(a, b, n * sizeof *a); }

static void test_ckpt(void) {
  system("rm -rf units_ckpt");
  ot_fs_mkdirs("units_ckpt");
  ot_params *p = make_params(4, 1);
  size_t n = ot_params_total(p);
  ot_rng r;
  ot_rng_seed(&r, 7);
  float *bufs[3] = {ot_params_values(p), ot_params_adam_m(p), ot_params_adam_v(p)};
  for (int k = 0; k < 3; k++)
    for (int i = 0; i < ot_params_count(p); i++) {
      const ot_param_view *v = ot_params_view(p, i);
      ot_rng_fill_normal(&r, bufs[k] + v->offset, v->numel, 0, 1);
    }
  ot_ckpt_meta m;
  memset(&m, 0, sizeof m);
  m.step = 20, m.pos.epoch = 3, m.pos.offset = 7;
  m.pos.rng[0] = 1, m.pos.rng[1] = 2, m.pos.rng[2] = 0xffffffffffffffffULL, m.pos.rng[3] = 4;
  m.threshold = 0.37, m.val_f1 = 0.81, m.ret_weight = 0.3, m.T = 2, m.H = 8, m.W = 16;
  m.config = "model:\n  dim: 4\n";
  m.tokenizer = "open-tag-bpe 1\nline two\n";
  char *tags[2] = {"a tag", "猫"};
  int64_t counts[2] = {5, 1};
  m.tags.n = 2, m.tags.tags = tags, m.tags.counts = counts;
  CHECK(ot_ckpt_write("units_ckpt/ckpt-20.h5", p, &m) == OT_OK);

  ot_ckpt_meta b;
  CHECK(ot_ckpt_read_meta("units_ckpt/ckpt-20.h5", &b) == OT_OK);
  CHECK(b.step == 20 && b.pos.epoch == 3 && b.pos.offset == 7 && !memcmp(b.pos.rng, m.pos.rng, sizeof b.pos.rng));
  CHECK(b.threshold == 0.37 && b.val_f1 == 0.81 && b.T == 2 && b.H == 8 && b.W == 16);
  CHECK(b.ret_weight == 0.3);
  CHECK(!strcmp(b.config, m.config) && !strcmp(b.tokenizer, m.tokenizer));
  CHECK(b.tags.n == 2 && !strcmp(b.tags.tags[1], "猫") && b.tags.counts[0] == 5);
  ot_ckpt_meta_free(&b);
  /* a checkpoint from before rag's fused answer: generation alone */
  CHECK(ot_ckpt_write("units_ckpt/old.h5", p, &m) == OT_OK);
  hid_t old = H5Fopen("units_ckpt/old.h5", H5F_ACC_RDWR, H5P_DEFAULT);
  CHECK(old >= 0 && H5Adelete(old, "retrieval_weight") >= 0);
  H5Fclose(old);
  CHECK(ot_ckpt_read_meta("units_ckpt/old.h5", &b) == OT_OK && b.ret_weight == 0.0 && b.threshold == 0.37);
  ot_ckpt_meta_free(&b);
  remove("units_ckpt/old.h5");

  ot_params *q = make_params(4, 1);
  CHECK(ot_ckpt_read_params("units_ckpt/ckpt-20.h5", q) == OT_OK);
  CHECK(same_floats(ot_params_values(q), ot_params_values(p), n));
  CHECK(same_floats(ot_params_adam_m(q), ot_params_adam_m(p), n));
  CHECK(same_floats(ot_params_adam_v(q), ot_params_adam_v(p), n));
  ot_params_close(q);
  /* inference tables read the values only */
  q = make_params(4, 0);
  CHECK(ot_ckpt_read_params("units_ckpt/ckpt-20.h5", q) == OT_OK);
  CHECK(same_floats(ot_params_values(q), ot_params_values(p), n));
  ot_params_close(q);
  /* a run with train.ema: resuming reads both, inference the average; a
   * file without one gives an average equal to the values */
  q = make_params(4, 1);
  CHECK(ot_params_alloc_ema(q) == OT_OK);
  CHECK(ot_ckpt_read_params("units_ckpt/ckpt-20.h5", q) == OT_OK);
  CHECK(same_floats(ot_params_ema(q), ot_params_values(p), n));
  CHECK(ot_params_alloc_ema(p) == OT_OK);
  for (int i = 0; i < ot_params_count(p); i++) { /* the padding stays 0, as files do not hold it */
    const ot_param_view *v = ot_params_view(p, i);
    for (size_t j = v->offset; j < v->offset + v->numel; j++) ot_params_ema(p)[j] = -ot_params_values(p)[j];
  }
  CHECK(ot_ckpt_write("units_ckpt/avg.h5", p, &m) == OT_OK);
  CHECK(ot_ckpt_read_params("units_ckpt/avg.h5", q) == OT_OK);
  CHECK(same_floats(ot_params_values(q), ot_params_values(p), n));
  CHECK(same_floats(ot_params_ema(q), ot_params_ema(p), n));
  CHECK(same_floats(ot_params_adam_v(q), ot_params_adam_v(p), n));
  ot_params_close(q);
  q = make_params(4, 0);
  CHECK(ot_ckpt_read_params("units_ckpt/avg.h5", q) == OT_OK);
  CHECK(same_floats(ot_params_values(q), ot_params_ema(p), n));
  ot_params_close(q);
  /* train.init: the selected tensors only, from the average when the file
   * has one; empty prefixes select nothing */
  q = make_params(4, 1);
  memset(ot_params_values(q), 0, n * sizeof(float));
  int copied = -1;
  CHECK(ot_ckpt_init_params("units_ckpt/avg.h5", q, "block0.,,a.b", &copied) == OT_OK && copied == 2);
  for (int i = 0; i < ot_params_count(q); i++) {
    const ot_param_view *v = ot_params_view(q, i);
    const int chosen = strcmp(v->name, "a.w") != 0;
    float zero[16] = {0};
    CHECK(v->numel <= 16 && same_floats(ot_params_values(q) + v->offset,
                                        chosen ? ot_params_ema(p) + v->offset : zero, v->numel));
  }
  CHECK(ot_ckpt_init_params("units_ckpt/ckpt-20.h5", q, "a.", &copied) == OT_OK && copied == 2);
  for (int i = 0; i < 2; i++) { /* a.w and a.b: the file's values (it has no average) */
    const ot_param_view *v = ot_params_view(q, i);
    CHECK(v->name[0] == 'a' && same_floats(ot_params_values(q) + v->offset, ot_params_values(p) + v->offset, v->numel));
  }
  CHECK(ot_ckpt_init_params("units_ckpt/ckpt-20.h5", q, "nope.,", &copied) == OT_EINVAL && copied == 0);
  CHECK_MSG("names none");
  ot_params_close(q);
  q = make_params(6, 1); /* a.w is [6,3] here, [4,3] in the file */
  CHECK(ot_ckpt_init_params("units_ckpt/ckpt-20.h5", q, "block0.", &copied) == OT_OK && copied == 1);
  CHECK(ot_ckpt_init_params("units_ckpt/ckpt-20.h5", q, "a.", &copied) == OT_EINVAL);
  CHECK_MSG("params/a.w");
  ot_params_close(q);
  remove("units_ckpt/avg.h5");
  q = make_params(6, 1);
  CHECK(ot_ckpt_read_params("units_ckpt/ckpt-20.h5", q) == OT_EINVAL);
  CHECK_MSG("params/a.w");
  ot_params_close(q);
  CHECK(ot_fs_write_atomic("units_ckpt/junk.h5", "junk", 4) == OT_OK);
  CHECK(ot_ckpt_read_meta("units_ckpt/junk.h5", &b) == OT_EINVAL);

  /* latest: pointer, then fallback to the highest complete step. */
  char path[512];
  CHECK(ot_ckpt_find_latest("units_ckpt", path, sizeof path) == OT_OK && !strcmp(path, "units_ckpt/ckpt-20.h5"));
  m.step = 30;
  CHECK(ot_ckpt_write("units_ckpt/ckpt-30.h5", p, &m) == OT_OK);
  CHECK(ot_ckpt_publish("units_ckpt", "ckpt-20.h5", 0) == OT_OK);
  CHECK(ot_ckpt_find_latest("units_ckpt", path, sizeof path) == OT_OK && !strcmp(path, "units_ckpt/ckpt-20.h5"));
  CHECK(ot_fs_write_atomic("units_ckpt/latest", "ckpt-99.h5\n", 11) == OT_OK);
  CHECK(ot_fs_write_atomic("units_ckpt/ckpt-40.h5", "half", 4) == OT_OK); /* not a checkpoint */
  CHECK(ot_fs_write_atomic("units_ckpt/ckpt-50.h5.tmp.123", "half", 4) == OT_OK);
  CHECK(ot_ckpt_find_latest("units_ckpt", path, sizeof path) == OT_OK && !strcmp(path, "units_ckpt/ckpt-30.h5"));
  ot_fs_remove_temp_files("units_ckpt");
  CHECK(!ot_fs_exists("units_ckpt/ckpt-50.h5.tmp.123") && ot_fs_exists("units_ckpt/ckpt-30.h5"));
  /* pruning keeps the newest `keep` ckpt-<step> files */
  for (int s = 50; s <= 70; s += 10) {
    snprintf(path, sizeof path, "units_ckpt/ckpt-%d.h5", s);
    m.step = s;
    CHECK(ot_ckpt_write(path, p, &m) == OT_OK);
  }
  CHECK(ot_ckpt_publish("units_ckpt", "ckpt-70.h5", 2) == OT_OK);
  CHECK(!ot_fs_exists("units_ckpt/ckpt-20.h5") && !ot_fs_exists("units_ckpt/ckpt-50.h5"));
  CHECK(ot_fs_exists("units_ckpt/ckpt-60.h5") && ot_fs_exists("units_ckpt/ckpt-70.h5"));
  CHECK(ot_ckpt_find_latest("units_ckpt", path, sizeof path) == OT_OK && !strcmp(path, "units_ckpt/ckpt-70.h5"));
  CHECK(ot_ckpt_find_latest("units_nothing", path, sizeof path) == OT_OK && path[0] == '\0');
  /* starting over: every checkpoint and `latest` go, nothing else */
  CHECK(ot_ckpt_write("units_ckpt/final.h5", p, &m) == OT_OK);
  CHECK(ot_fs_write_atomic("units_ckpt/metrics.jsonl", "{}\n", 3) == OT_OK);
  ot_ckpt_remove_all("units_ckpt");
  CHECK(ot_ckpt_find_latest("units_ckpt", path, sizeof path) == OT_OK && path[0] == '\0');
  CHECK(!ot_fs_exists("units_ckpt/latest") && !ot_fs_exists("units_ckpt/ckpt-70.h5"));
  CHECK(ot_fs_exists("units_ckpt/metrics.jsonl"));
  ot_params_close(p);
}

static int lowercase_word(const char *w, size_t n) {
  if (strlen(w) != n) return 0;
  for (; *w; w++)
    if (*w < 'a' || *w > 'z') return 0;
  return 1;
}

/* out(y, x) = in(clamp(y - dy), clamp(x - dx)) on every frame and channel. */
static void test_shift_frames(void) {
  enum { T = 2, H = 3, W = 4 };
  uint8_t f[T * H * W * 3], g[T * H * W * 3];
  for (int t = 0; t < T; t++)
    for (int y = 0; y < H; y++)
      for (int x = 0; x < W; x++)
        for (int c = 0; c < 3; c++) f[((t * H + y) * W + x) * 3 + c] = (uint8_t)(100 * t + 10 * y + x + c);
  const int moves[][2] = {{1, 0}, {-2, 1}, {0, -1}, {3, 2}, {0, 0}};
  for (int m = 0; m < 5; m++) {
    const int dx = moves[m][0], dy = moves[m][1];
    memcpy(g, f, sizeof f);
    ot_batcher_shift_frames(g, T, H, W, dx, dy);
    int ok = 1;
    for (int t = 0; t < T; t++)
      for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
          int sy = y - dy < 0 ? 0 : y - dy > H - 1 ? H - 1 : y - dy;
          int sx = x - dx < 0 ? 0 : x - dx > W - 1 ? W - 1 : x - dx;
          for (int c = 0; c < 3; c++)
            ok &= g[((t * H + y) * W + x) * 3 + c] == f[((t * H + sy) * W + sx) * 3 + c];
        }
    CHECK(ok);
  }
  /* a hand-checked pixel: dx 1 moves content right, column 0 repeats */
  memcpy(g, f, sizeof f);
  ot_batcher_shift_frames(g, T, H, W, 1, 0);
  CHECK(g[(1 * W + 0) * 3] == 10 && g[(1 * W + 1) * 3] == 10 && g[(1 * W + 3) * 3] == 12);
}

static void test_copy_aug(void) {
  const char *tags[] = {"Globe", "europe", "africa", "world", "europe-africa", "a"};
  ot_copy_aug a, b;
  /* p = 1: every all-letter tag found as a whole word of the title */
  CHECK(ot_copy_aug_apply(&a, "Globe showing Europe-Africa", tags, 6, 1.0f, 42) == OT_OK);
  CHECK(a.replaced == 3);
  CHECK(lowercase_word(a.tags[0], 5) && strstr(a.title, a.tags[0]) == a.title);
  CHECK(lowercase_word(a.tags[1], 6) && lowercase_word(a.tags[2], 6));
  char want[64];
  snprintf(want, sizeof want, "%s showing %s-%s", a.tags[0], a.tags[1], a.tags[2]);
  CHECKF(!strcmp(a.title, want), "title '%s', want '%s'", a.title, want);
  CHECK(!strcmp(a.tags[3], "world") && !strcmp(a.tags[4], "europe-africa") && !strcmp(a.tags[5], "a"));
  /* the same seed gives the same words; another seed others */
  CHECK(ot_copy_aug_apply(&b, "Globe showing Europe-Africa", tags, 6, 1.0f, 42) == OT_OK);
  CHECK(!strcmp(a.title, b.title) && !strcmp(a.tags[1], b.tags[1]));
  ot_copy_aug_free(&b);
  CHECK(ot_copy_aug_apply(&b, "Globe showing Europe-Africa", tags, 6, 1.0f, 43) == OT_OK);
  CHECK(strcmp(a.tags[1], b.tags[1]));
  ot_copy_aug_free(&b);
  ot_copy_aug_free(&a);
  /* p = 0: nothing; a word inside another word is not a whole word */
  CHECK(ot_copy_aug_apply(&a, "Globe showing Europe-Africa", tags, 6, 0.0f, 42) == OT_OK);
  CHECK(a.replaced == 0 && !strcmp(a.title, "globe showing europe-africa") && !strcmp(a.tags[0], "Globe"));
  ot_copy_aug_free(&a);
  const char *sub[] = {"show"};
  CHECK(ot_copy_aug_apply(&a, "showing", sub, 1, 1.0f, 1) == OT_OK && a.replaced == 0);
  ot_copy_aug_free(&a);
  /* Chinese: anywhere in the title, by as many ideographs */
  const char *zh[] = {"欧洲", "世界"};
  CHECK(ot_copy_aug_apply(&a, "地球上的欧洲非洲", zh, 2, 1.0f, 7) == OT_OK && a.replaced == 1);
  CHECK(strlen(a.tags[0]) == 6 && strcmp(a.tags[0], "欧洲") && !strcmp(a.tags[1], "世界"));
  snprintf(want, sizeof want, "地球上的%s非洲", a.tags[0]);
  CHECK(!strcmp(a.title, want));
  ot_copy_aug_free(&a);
  /* invalid UTF-8: copies, an error */
  CHECK(ot_copy_aug_apply(&a, "\xff", tags, 1, 1.0f, 7) == OT_EINVAL && a.replaced == 0 &&
        !strcmp(a.tags[0], "Globe"));
  ot_copy_aug_free(&a);
}

int main(void) {
  test_shift_frames();
  test_copy_aug();
  test_order();
  test_f1();
  test_tags_and_batches();
  test_tag_spellings();
  test_ckpt();
  return ot_test_report();
}
