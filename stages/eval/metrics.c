#include "metrics.h"

#include "ot_common.h"

#include <stdlib.h>
#include <string.h>

const char *const ot_eval_subset_names[OT_EVAL_N_SUBSETS] = {"overall", "closed", "common", "rare"};

static double ratio(double a, double b) { return b > 0 ? a / b : 0.0; }
static double f1(double p, double r) { return p + r > 0 ? 2 * p * r / (p + r) : 0.0; }

/* Bit mask of the subsets tag t belongs to. */
static unsigned subsets_of(int64_t train_count, int in_gt, int64_t common_min) {
  unsigned m = 1u << OT_EVAL_OVERALL;
  if (train_count > 0) {
    m |= 1u << OT_EVAL_CLOSED;
    if (in_gt) m |= 1u << (train_count >= common_min ? OT_EVAL_COMMON : OT_EVAL_RARE);
  }
  return m;
}

void ot_eval_compute(const ot_evalset *e, int64_t common_min, ot_eval_result *out) {
  memset(out, 0, sizeof *out);
  out->common_min = common_min;
  const int32_t n_tags = ot_evalset_n_tags(e);
  const int64_t n_items = ot_evalset_n_items(e);
  uint8_t *in_gt = ot_xcalloc((size_t)(n_tags > 0 ? n_tags : 1), 1);
  for (int64_t i = 0; i < n_items; i++) {
    const ot_evalset_item *it = ot_evalset_item_at(e, i);
    for (int k = 0; k < it->n_gt; k++) in_gt[it->gt[k]] = 1;
  }
  uint8_t *mask = ot_xmalloc((size_t)(n_tags > 0 ? n_tags : 1));
  for (int32_t t = 0; t < n_tags; t++) {
    int64_t c = ot_evalset_train_count(e, t);
    mask[t] = (uint8_t)subsets_of(c, in_gt[t], common_min);
    out->n_train_tags += c > 0;
    for (int u = 0; u < OT_EVAL_N_SUBSETS; u++)
      out->s[u].n_tags += in_gt[t] && (mask[t] >> u & 1);
  }

  double sum_p[OT_EVAL_N_SUBSETS] = {0}, sum_r[OT_EVAL_N_SUBSETS] = {0}, sum_f[OT_EVAL_N_SUBSETS] = {0};
  for (int64_t i = 0; i < n_items; i++) {
    const ot_evalset_item *it = ot_evalset_item_at(e, i);
    int64_t tp[OT_EVAL_N_SUBSETS] = {0}, np[OT_EVAL_N_SUBSETS] = {0}, ng[OT_EVAL_N_SUBSETS] = {0};
    for (int k = 0; k < it->n_gt; k++)
      for (int u = 0; u < OT_EVAL_N_SUBSETS; u++) ng[u] += mask[it->gt[k]] >> u & 1;
    /* Both lists are sorted: one merge pass finds the hits. */
    for (int a = 0, b = 0; a < it->n_pred; a++) {
      int32_t t = it->pred[a];
      while (b < it->n_gt && it->gt[b] < t) b++;
      int hit = b < it->n_gt && it->gt[b] == t;
      for (int u = 0; u < OT_EVAL_N_SUBSETS; u++)
        if (mask[t] >> u & 1) np[u]++, tp[u] += hit;
      if (it->pred_gen[a]) {
        out->n_gen++;
        if (ot_evalset_train_count(e, t) == 0) out->n_novel++, out->n_novel_correct += hit;
      } else {
        out->n_ret++;
      }
    }
    for (int u = 0; u < OT_EVAL_N_SUBSETS; u++) {
      ot_eval_scores *s = &out->s[u];
      s->tp += tp[u], s->n_pred += np[u], s->n_gt += ng[u];
      if (ng[u] == 0) continue;
      double p = ratio((double)tp[u], (double)np[u]), r = ratio((double)tp[u], (double)ng[u]);
      s->items++;
      sum_p[u] += p, sum_r[u] += r, sum_f[u] += f1(p, r);
    }
    out->n_no_gt += it->n_gt == 0;
    out->n_predicted += it->pred_line > 0;
  }
  for (int u = 0; u < OT_EVAL_N_SUBSETS; u++) {
    ot_eval_scores *s = &out->s[u];
    s->p = ratio((double)s->tp, (double)s->n_pred);
    s->r = ratio((double)s->tp, (double)s->n_gt);
    s->f1 = f1(s->p, s->r);
    s->item_p = ratio(sum_p[u], (double)s->items);
    s->item_r = ratio(sum_r[u], (double)s->items);
    s->item_f1 = ratio(sum_f[u], (double)s->items);
  }
  out->n_items = n_items;
  out->n_missing = n_items - out->n_predicted;
  out->n_train_items = ot_evalset_n_train_items(e);
  out->novel_share = ratio((double)out->n_novel, (double)out->n_gen);
  free(mask);
  free(in_gt);
}
