#include "bootstrap.h"

#include "ot_common.h"
#include "ot_rng.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The draws are the same for every report (see bootstrap.h). */
#define BOOTSTRAP_SEED 0x0b0075ad5eedull

/* An item's group key: its group, or its id when it has none (marked so
 * that an id never equals a group name). */
typedef struct {
  const char *key;
  int own; /* 1: the key is the item's id */
  int64_t tp, n_pred, n_gt;
  double gain; /* NAN: no Tag Gain term */
} item_key;

static int by_key(const void *a, const void *b) {
  const item_key *x = a, *y = b;
  if (x->own != y->own) return x->own - y->own;
  return strcmp(x->key, y->key);
}

static int64_t overlap(const int32_t *a, int na, const int32_t *b, int nb) {
  int64_t n = 0;
  for (int i = 0, j = 0; i < na && j < nb;) {
    if (a[i] == b[j]) n++, i++, j++;
    else if (a[i] < b[j]) i++;
    else j++;
  }
  return n;
}

json_t *ot_eval_groups_json(const ot_evalset *e, const double *item_gain) {
  const int64_t n = ot_evalset_n_items(e);
  item_key *k = ot_xmalloc((size_t)(n ? n : 1) * sizeof *k);
  for (int64_t i = 0; i < n; i++) {
    const ot_evalset_item *it = ot_evalset_item_at(e, i);
    k[i] = (item_key){.key = it->group ? it->group : it->id, .own = !it->group,
                      .tp = overlap(it->gt, it->n_gt, it->pred, it->n_pred),
                      .n_pred = it->n_pred, .n_gt = it->n_gt,
                      .gain = item_gain ? item_gain[i] : NAN};
  }
  qsort(k, (size_t)n, sizeof *k, by_key);
  json_t *tp = json_array(), *np = json_array(), *ng = json_array();
  json_t *gs = item_gain ? json_array() : NULL, *gi = item_gain ? json_array() : NULL;
  uint64_t h = 1469598103934665603ull; /* FNV-1a over (own, key, NUL) of each group */
  int64_t groups = 0;
  for (int64_t i = 0; i < n;) {
    int64_t j = i, t = 0, p = 0, g = 0, terms = 0;
    double gain = 0.0;
    for (; j < n && !by_key(&k[i], &k[j]); j++) {
      t += k[j].tp, p += k[j].n_pred, g += k[j].n_gt;
      if (!isnan(k[j].gain)) gain += k[j].gain, terms++;
    }
    json_array_append_new(tp, json_integer(t));
    json_array_append_new(np, json_integer(p));
    json_array_append_new(ng, json_integer(g));
    if (gs) json_array_append_new(gs, json_real(gain)), json_array_append_new(gi, json_integer(terms));
    h = (h ^ (uint64_t)k[i].own) * 1099511628211ull;
    for (const char *c = k[i].key;; c++) {
      h = (h ^ (uint8_t)*c) * 1099511628211ull;
      if (!*c) break;
    }
    groups++;
    i = j;
  }
  free(k);
  char hex[17];
  snprintf(hex, sizeof hex, "%016" PRIx64, h);
  json_t *out = json_pack("{s:I, s:s, s:o, s:o, s:o}", "n", (json_int_t)groups, "names_hash", hex,
                          "tp", tp, "n_pred", np, "n_gt", ng);
  if (gs) json_object_set_new(out, "gain_sum", gs), json_object_set_new(out, "gain_items", gi);
  return out;
}

/* The per-group arrays a statistic sums: F1's (tp, n_pred, n_gt), Tag
 * Gain's (gain_sum, gain_items). */
static const char *const STAT_KEYS[2][3] = {{"tp", "n_pred", "n_gt"}, {"gain_sum", "gain_items", NULL}};
static int stat_arrays(ot_eval_stat stat) { return stat == OT_EVAL_STAT_F1 ? 3 : 2; }

/* values[k][n] of stat's arrays of a "groups" object; NULL if malformed or
 * absent. */
static double *read_counts(const json_t *g, ot_eval_stat stat, int64_t *n) {
  *n = json_integer_value(json_object_get(g, "n"));
  if (!json_is_object(g) || *n <= 0) return NULL;
  const int m = stat_arrays(stat);
  double *c = ot_xmalloc((size_t)m * (size_t)*n * sizeof *c);
  for (int k = 0; k < m; k++) {
    const json_t *a = json_object_get(g, STAT_KEYS[stat][k]);
    if (!json_is_array(a) || (int64_t)json_array_size(a) != *n) {
      free(c);
      return NULL;
    }
    for (int64_t i = 0; i < *n; i++) c[k * *n + i] = json_number_value(json_array_get(a, (size_t)i));
  }
  return c;
}

static double stat_of(ot_eval_stat stat, const double *s) {
  if (stat == OT_EVAL_STAT_GAIN) return s[1] > 0 ? s[0] / s[1] : 0.0;
  return s[1] + s[2] > 0 ? 2.0 * s[0] / (s[1] + s[2]) : 0.0;
}

static int by_value(const void *a, const void *b) {
  const double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* The runs' mean statistic over the groups idx[0..n) (idx NULL: every
 * group once). */
static double mean_stat(ot_eval_stat stat, double *const *c, int runs, int64_t n,
                        const int64_t *idx) {
  const int m = stat_arrays(stat);
  double sum = 0.0;
  for (int r = 0; r < runs; r++) {
    double s[3] = {0};
    for (int64_t i = 0; i < n; i++) {
      const int64_t g = idx ? idx[i] : i;
      for (int k = 0; k < m; k++) s[k] += c[r][k * n + g];
    }
    sum += stat_of(stat, s);
  }
  return sum / runs;
}

int ot_eval_paired_diff(const json_t *const *a, int na, const json_t *const *b, int nb, int rounds,
                        ot_eval_stat stat, ot_eval_paired *out) {
  OT_ASSERT(rounds >= 1 && na >= 1 && nb >= 1);
  const int runs = na + nb;
  double **c = ot_xcalloc((size_t)runs, sizeof *c);
  int64_t n = -1;
  const char *hash = NULL;
  int st = OT_OK;
  for (int r = 0; r < runs && st == OT_OK; r++) {
    const json_t *g = r < na ? a[r] : b[r - na];
    const char *h = json_string_value(json_object_get(g, "names_hash"));
    int64_t m;
    c[r] = read_counts(g, stat, &m);
    if (!c[r] || !h)
      st = ot_fail(OT_EINVAL, "report row without valid per-group counts (\"groups\"%s)",
                   stat == OT_EVAL_STAT_GAIN ? " with Tag Gain" : "");
    else if (r > 0 && (m != n || strcmp(h, hash)))
      st = ot_fail(OT_EINVAL, "report rows over other groups (%lld vs %lld groups, names %s vs %s)",
                   (long long)n, (long long)m, hash, h);
    n = m, hash = h;
  }
  if (st == OT_OK) {
    out->diff = mean_stat(stat, c, na, n, NULL) - mean_stat(stat, c + na, nb, n, NULL);
    out->groups = (int)n, out->rounds = rounds;
    double *d = ot_xmalloc((size_t)rounds * sizeof *d);
    int64_t *idx = ot_xmalloc((size_t)n * sizeof *idx);
    ot_rng rng;
    ot_rng_seed(&rng, BOOTSTRAP_SEED);
    for (int round = 0; round < rounds; round++) {
      for (int64_t i = 0; i < n; i++) idx[i] = ot_rng_below(&rng, (uint32_t)n);
      d[round] = mean_stat(stat, c, na, n, idx) - mean_stat(stat, c + na, nb, n, idx);
    }
    qsort(d, (size_t)rounds, sizeof *d, by_value);
    out->lo = d[(size_t)(0.025 * (rounds - 1) + 0.5)];
    out->hi = d[(size_t)(0.975 * (rounds - 1) + 0.5)];
    free(idx);
    free(d);
  }
  for (int r = 0; r < runs; r++) free(c[r]);
  free(c);
  return st;
}

void ot_eval_pairs_append(json_t *pairs, const char *row, const json_t *const *a, int na,
                          const char *vs, const json_t *const *b, int nb, int rounds,
                          ot_eval_stat stat) {
  ot_eval_paired p;
  if (ot_eval_paired_diff(a, na, b, nb, rounds, stat, &p)) return;
  json_array_append_new(pairs, json_pack("{s:s, s:s, s:f, s:f, s:f, s:i, s:i}", "row", row, "vs", vs,
                                         "diff", p.diff, "lo", p.lo, "hi", p.hi, "groups", p.groups,
                                         "rounds", p.rounds));
}
