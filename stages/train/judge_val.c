#include "judge_val.h"

#include "ot_common.h"
#include "ot_mpi.h"

#include <math.h>
#include <mpi.h>
#include <stdlib.h>
#include <string.h>

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The sorted distinct tag texts of d (borrowed from its shards). */
static const char **distinct_tags(const ot_dataset *d, int *n_out) {
  const int64_t n = ot_dataset_count(d);
  size_t cap = 256, len = 0;
  const char **all = ot_xmalloc(cap * sizeof *all);
  for (int64_t i = 0; i < n; i++) {
    int64_t li;
    ot_shard *s = ot_dataset_locate(d, i, &li);
    char *const *tags;
    int nt = ot_shard_tags(s, li, &tags);
    for (int k = 0; k < nt; k++) {
      if (len == cap) all = ot_xrealloc(all, (cap *= 2) * sizeof *all);
      all[len++] = tags[k];
    }
  }
  qsort(all, len, sizeof *all, cmp_str);
  size_t u = 0;
  for (size_t i = 0; i < len; i++)
    if (!u || strcmp(all[u - 1], all[i])) all[u++] = all[i];
  *n_out = (int)u;
  return all;
}

/* Tags -> BPE lists cut to tag_len; tags without tokens dropped from `tags`
 * (compacted in place, order kept). Caller frees *off and *tok. */
static void tokenize(const ot_bpe *bpe, int tag_len, const char **tags, int *n, int32_t **off,
                     int32_t **tok) {
  int cap = 64, kept = 0;
  int32_t *buf = ot_xmalloc((size_t)cap * sizeof *buf);
  *off = ot_xmalloc(((size_t)*n + 1) * sizeof **off);
  *tok = ot_xmalloc(((size_t)*n * tag_len + 1) * sizeof **tok);
  (*off)[0] = 0;
  for (int i = 0; i < *n; i++) {
    int len = 0;
    while (ot_bpe_encode(bpe, tags[i], buf, cap, &len) != OT_OK) {
      cap = len;
      buf = ot_xrealloc(buf, (size_t)cap * sizeof *buf);
    }
    if (len > tag_len) len = tag_len;
    if (!len) continue;
    memcpy(*tok + (*off)[kept], buf, (size_t)len * sizeof *buf);
    (*off)[kept + 1] = (*off)[kept] + len;
    tags[kept++] = tags[i];
  }
  *n = kept;
  free(buf);
}

/* This rank's items: hits summed into *sum, items with a tag into *count. */
static int local_recall(ot_trainer *t, int k, const char **tags, int U, const float *tv,
                        double *sum, int64_t *count) {
  const int mb = t->cfg->train.micro_batch, C = t->cfg->model.dim;
  int64_t lo, hi;
  ot_order_slice(ot_dataset_count(t->val), t->size, t->rank, &lo, &hi);
  int64_t *items = ot_xmalloc((size_t)mb * sizeof *items);
  float *iv = ot_xmalloc((size_t)mb * C * sizeof *iv), *score = ot_xmalloc(((size_t)U + 1) * sizeof *score);
  int st = OT_OK;
  for (int64_t c = lo; c < hi && st == OT_OK; c += mb) {
    const int n = (int)(hi - c < mb ? hi - c : mb);
    for (int i = 0; i < n; i++) items[i] = c + i;
    ot_batch batch;
    if ((st = ot_batcher_fill(t->val_batcher, items, n, &batch))) break;
    if ((st = ot_model_forward(t->model, &batch, 0, 0, NULL))) break;
    if ((st = ot_model_judge_image(t->model, iv))) break;
    for (int i = 0; i < n; i++) {
      int64_t li;
      ot_shard *s = ot_dataset_locate(t->val, items[i], &li);
      char *const *truth;
      const int nt = ot_shard_tags(s, li, &truth);
      int n_truth = 0; /* distinct truth tags that are candidates */
      for (int j = 0; j < nt; j++) {
        int dup = 0;
        for (int q = 0; q < j; q++) dup |= !strcmp(truth[q], truth[j]);
        n_truth += !dup && bsearch(&truth[j], tags, (size_t)U, sizeof *tags, cmp_str);
      }
      if (!n_truth) continue;
      for (int u = 0; u < U; u++) {
        float dot = 0.0f;
        for (int x = 0; x < C; x++) dot += iv[(size_t)i * C + x] * tv[(size_t)u * C + x];
        score[u] = dot;
      }
      int hits = 0;
      for (int r = 0; r < k && r < U; r++) { /* k passes of arg-max: k is small */
        int best = -1;
        for (int u = 0; u < U; u++)
          if (score[u] > -INFINITY && (best < 0 || score[u] > score[best])) best = u;
        if (best < 0) break;
        for (int j = 0; j < nt; j++)
          if (!strcmp(truth[j], tags[best])) {
            hits++;
            break;
          }
        score[best] = -INFINITY;
      }
      *sum += (double)hits / (n_truth < k ? n_truth : k);
      (*count)++;
    }
  }
  free(items);
  free(iv);
  free(score);
  return st;
}

int ot_judge_val_recall(ot_trainer *t, int k, double *recall, int64_t *n_tags) {
  int U = 0;
  const char **tags = distinct_tags(t->val, &U);
  int32_t *off, *tok;
  tokenize(t->bpe, t->cfg->model.tag_len, tags, &U, &off, &tok);
  float *tv = ot_xmalloc(((size_t)U + 1) * t->cfg->model.dim * sizeof *tv);
  double sum = 0.0, gsum = 0.0;
  int64_t count = 0, gcount = 0;
  int st = ot_model_judge_embed_text(t->model, off, tok, U, tv);
  if (st == OT_OK) st = local_recall(t, k, tags, U, tv, &sum, &count);
  if ((st = ot_mpi_agree(st)) == OT_OK) {
    MPI_Allreduce(&sum, &gsum, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    MPI_Allreduce(&count, &gcount, 1, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
    *recall = gcount ? gsum / (double)gcount : 0.0;
    *n_tags = U;
  }
  free(tv);
  free(off);
  free(tok);
  free(tags);
  return st;
}
