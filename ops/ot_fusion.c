#include "ot_fusion.h"

#include "ot_common.h"
#include "ot_hash.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void ot_fusion_normalize(float *w, const float *sims, int n, int norm, float temperature) {
  if (n <= 0) return;
  double lo = sims[0], hi = sims[0], mean = 0.0;
  for (int j = 0; j < n; j++) {
    lo = sims[j] < lo ? sims[j] : lo;
    hi = sims[j] > hi ? sims[j] : hi;
    mean += sims[j];
  }
  mean /= n;
  switch (norm) {
  case OT_FUSION_MINMAX:
    for (int j = 0; j < n; j++) w[j] = hi > lo ? (float)((sims[j] - lo) / (hi - lo)) : 1.0f;
    break;
  case OT_FUSION_ZSCORE: {
    double var = 0.0;
    for (int j = 0; j < n; j++) var += (sims[j] - mean) * (sims[j] - mean);
    double sd = sqrt(var / n);
    for (int j = 0; j < n; j++) {
      double z = sd > 0.0 ? (sims[j] - mean) / sd : 1.0;
      w[j] = z > 0.0 ? (float)z : 0.0f;
    }
    break;
  }
  case OT_FUSION_SOFTMAX:
    OT_ASSERT(temperature > 0.0f);
    for (int j = 0; j < n; j++) w[j] = (float)exp((sims[j] - hi) / temperature);
    break;
  case OT_FUSION_RANK:
    for (int j = 0; j < n; j++) w[j] = (float)(n - j) / (float)n;
    break;
  default:
    OT_ASSERT(!"unknown normalisation");
  }
}

typedef struct {
  const char *tag;
  int64_t mark; /* the last neighbour that voted for it (dedupes repeats) */
  int proposing;
  float fused;
} entry;

struct ot_fusion {
  int n_sources;
  int n, cap;        /* entries */
  entry *e;
  float *scores;     /* [cap, n_sources] */
  int32_t *slots;    /* open addressing, -1 = empty; n_slots a power of 2 */
  int n_slots;
  int64_t stamp;     /* neighbours seen so far (marks) */
  float *w;          /* neighbour weights scratch */
  int w_cap;
  entry **order;     /* ot_fusion_top scratch */
};

int ot_fusion_open(ot_fusion **out, int n_sources) {
  OT_ASSERT(n_sources > 0);
  ot_fusion *f = ot_xcalloc(1, sizeof *f);
  f->n_sources = n_sources;
  f->n_slots = 1024;
  f->slots = ot_xmalloc((size_t)f->n_slots * sizeof *f->slots);
  memset(f->slots, 0xff, (size_t)f->n_slots * sizeof *f->slots);
  *out = f;
  return OT_OK;
}

void ot_fusion_close(ot_fusion *f) {
  if (!f) return;
  free(f->e);
  free(f->scores);
  free(f->slots);
  free(f->w);
  free(f->order);
  free(f);
}

void ot_fusion_reset(ot_fusion *f) {
  f->n = 0;
  memset(f->slots, 0xff, (size_t)f->n_slots * sizeof *f->slots);
}

static uint64_t tag_hash(const char *tag) { return ot_fnv1a64(tag, strlen(tag), OT_FNV64_INIT); }

static void rehash(ot_fusion *f) {
  memset(f->slots, 0xff, (size_t)f->n_slots * sizeof *f->slots);
  for (int i = 0; i < f->n; i++) {
    size_t mask = (size_t)f->n_slots - 1, h = (size_t)tag_hash(f->e[i].tag) & mask;
    while (f->slots[h] >= 0) h = (h + 1) & mask;
    f->slots[h] = i;
  }
}

/* The entry of `tag`, created with zero scores when new. */
static int find_or_add(ot_fusion *f, const char *tag) {
  size_t mask = (size_t)f->n_slots - 1, h = (size_t)tag_hash(tag) & mask;
  for (; f->slots[h] >= 0; h = (h + 1) & mask)
    if (!strcmp(f->e[f->slots[h]].tag, tag)) return f->slots[h];
  if (f->n == f->cap) {
    f->cap = f->cap ? 2 * f->cap : 256;
    f->e = ot_xrealloc(f->e, (size_t)f->cap * sizeof *f->e);
    f->scores = ot_xrealloc(f->scores, (size_t)f->cap * (size_t)f->n_sources * sizeof *f->scores);
    f->order = ot_xrealloc(f->order, (size_t)f->cap * sizeof *f->order);
  }
  int i = f->n++;
  f->e[i] = (entry){tag, -1, 0, 0.0f};
  memset(f->scores + (size_t)i * f->n_sources, 0, (size_t)f->n_sources * sizeof *f->scores);
  f->slots[h] = i;
  if (2 * f->n > f->n_slots) { /* keep the load under 1/2 */
    f->n_slots *= 2;
    f->slots = ot_xrealloc(f->slots, (size_t)f->n_slots * sizeof *f->slots);
    rehash(f);
  }
  return i;
}

void ot_fusion_add_source(ot_fusion *f, int s, const float *sims, int n, const char *const *const *tags,
                          const int *n_tags, int norm, float temperature) {
  OT_ASSERT(s >= 0 && s < f->n_sources);
  if (n <= 0) return;
  if (n > f->w_cap) f->w = ot_xrealloc(f->w, (size_t)(f->w_cap = n) * sizeof *f->w);
  ot_fusion_normalize(f->w, sims, n, norm, temperature);
  double total = 0.0;
  for (int j = 0; j < n; j++) total += f->w[j];
  if (total <= 0.0) return;
  for (int j = 0; j < n; j++) {
    int64_t mark = f->stamp++;
    float share = (float)(f->w[j] / total);
    for (int t = 0; t < n_tags[j]; t++) {
      int i = find_or_add(f, tags[j][t]);
      if (f->e[i].mark == mark) continue;
      f->e[i].mark = mark;
      f->scores[(size_t)i * f->n_sources + s] += share;
    }
  }
}

static int by_fused(const void *a, const void *b) {
  const entry *x = *(const entry *const *)a, *y = *(const entry *const *)b;
  if (x->fused != y->fused) return x->fused < y->fused ? 1 : -1;
  return strcmp(x->tag, y->tag);
}

int ot_fusion_top(ot_fusion *f, const float *weights, float consensus, int top_m, ot_fusion_cand *out) {
  double wsum = 0.0;
  for (int s = 0; s < f->n_sources; s++) {
    OT_ASSERT(weights[s] > 0.0f);
    wsum += weights[s];
  }
  for (int i = 0; i < f->n; i++) {
    const float *t = f->scores + (size_t)i * f->n_sources;
    double acc = 0.0;
    int m = 0;
    for (int s = 0; s < f->n_sources; s++) {
      acc += (double)weights[s] * t[s];
      m += t[s] > 0.0f;
    }
    f->e[i].proposing = m;
    f->e[i].fused = (float)(acc / wsum + (double)consensus * (m > 0 ? m - 1 : 0));
    f->order[i] = &f->e[i];
  }
  qsort(f->order, (size_t)f->n, sizeof *f->order, by_fused);
  int n = f->n < top_m ? f->n : top_m;
  for (int r = 0; r < n; r++) {
    const entry *e = f->order[r];
    out[r] = (ot_fusion_cand){e->tag, e->fused, f->scores + (size_t)(e - f->e) * f->n_sources, e->proposing};
  }
  return n;
}
