#include "taggain.h"

#include "ot_common.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* A judged candidate: position in item->pred and its relevance. */
typedef struct {
  int k;
  double rel;
  const char *text;
} candidate;

static int by_relevance(const void *a, const void *b) {
  const candidate *x = a, *y = b;
  if (x->rel != y->rel) return x->rel < y->rel ? 1 : -1;
  return strcmp(x->text, y->text);
}

static int cmp_i32(const void *a, const void *b) {
  int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
  return (x > y) - (x < y);
}

static int in_sorted(const int32_t *v, int n, int32_t t) {
  return n > 0 && bsearch(&t, v, (size_t)n, sizeof *v, cmp_i32) != NULL;
}

int ot_taggain_item(const ot_evalset *e, int64_t i, const ot_taggain_sim *sim, double tau_rel,
                    double tau_div, ot_taggain_fate *fate) {
  const ot_evalset_item *it = ot_evalset_item_at(e, i);
  candidate *c = ot_xmalloc((size_t)(it->n_pred > 0 ? it->n_pred : 1) * sizeof *c);
  int n = 0;
  for (int k = 0; k < it->n_pred; k++) {
    double rel, self;
    int st = sim->sim_rel(sim->ctx, i, it->pred[k], &rel);
    if (st == OT_TG_SIM_NO_ITEM) {
      free(c);
      return 0;
    }
    if (st != OT_TG_SIM_OK || !sim->sim_div(sim->ctx, it->pred[k], it->pred[k], &self)) {
      fate[k] = OT_TG_UNJUDGED;
      continue;
    }
    c[n].k = k, c[n].rel = rel, c[n++].text = ot_evalset_tag(e, it->pred[k]);
  }
  /* An item with no prediction still needs its visual vector to be scored:
   * ask once with any tag so it is skipped exactly when the vector is absent. */
  if (it->n_pred == 0 && ot_evalset_n_tags(e) > 0) {
    double rel;
    if (sim->sim_rel(sim->ctx, i, 0, &rel) == OT_TG_SIM_NO_ITEM) {
      free(c);
      return 0;
    }
  }
  qsort(c, (size_t)n, sizeof *c, by_relevance);
  int32_t *kept = ot_xmalloc((size_t)(n > 0 ? n : 1) * sizeof *kept);
  int n_kept = 0;
  for (int j = 0; j < n; j++) {
    int32_t t = it->pred[c[j].k];
    ot_taggain_fate f;
    if (!(c[j].rel > tau_rel)) {
      f = OT_TG_IRRELEVANT;
    } else {
      f = OT_TG_KEPT_GT;
      for (int q = 0; q < n_kept && f == OT_TG_KEPT_GT; q++) {
        double d;
        /* Both tags passed the sim_div(t, t) check, so the pair is known for
         * any sane plug-in; an unknown pair keeps nothing out. */
        if (sim->sim_div(sim->ctx, t, kept[q], &d) && !(d < tau_div)) f = OT_TG_REDUNDANT;
      }
      if (f == OT_TG_KEPT_GT) {
        kept[n_kept++] = t;
        if (ot_evalset_train_count(e, t) == 0) f = OT_TG_NOVEL;
        else if (!in_sorted(it->gt, it->n_gt, t)) f = OT_TG_KNOWN;
      }
    }
    fate[c[j].k] = f;
  }
  free(kept);
  free(c);
  return 1;
}

void ot_taggain_compute(const ot_evalset *e, const ot_taggain_sim *sim, double tau_rel,
                        double tau_div, double *item_gain, ot_taggain_result *out) {
  memset(out, 0, sizeof *out);
  out->tau_rel = tau_rel, out->tau_div = tau_div;
  int64_t n_items = ot_evalset_n_items(e);
  ot_taggain_fate *fate = NULL;
  int cap = 0;
  double sum_dk = 0, sum_dn = 0;
  int64_t gt_known = 0, gt_novel = 0; /* over the items with ground truth */
  for (int64_t i = 0; i < n_items; i++) {
    const ot_evalset_item *it = ot_evalset_item_at(e, i);
    if (item_gain) item_gain[i] = NAN;
    if (it->n_pred > cap) {
      cap = it->n_pred;
      fate = ot_xrealloc(fate, (size_t)cap * sizeof *fate);
    }
    if (!ot_taggain_item(e, i, sim, tau_rel, tau_div, fate)) {
      out->skipped_items++;
      continue;
    }
    int64_t known = 0, novel = 0;
    for (int k = 0; k < it->n_pred; k++) {
      switch (fate[k]) {
      case OT_TG_KNOWN: known++, out->n_kept++; break;
      case OT_TG_NOVEL: novel++, out->n_kept++; break;
      case OT_TG_KEPT_GT: out->n_kept++; break;
      case OT_TG_IRRELEVANT: out->n_irrelevant++; break;
      case OT_TG_REDUNDANT: out->n_redundant++; break;
      case OT_TG_UNJUDGED: out->unjudged_tags++; break;
      }
    }
    out->items++;
    out->n_pred += it->n_pred;
    out->n_known += known, out->n_novel += novel, out->n_gt += it->n_gt;
    if (it->n_gt > 0) {
      out->items_with_gt++;
      sum_dk += (double)known / it->n_gt;
      sum_dn += (double)novel / it->n_gt;
      gt_known += known, gt_novel += novel;
      if (item_gain) item_gain[i] = (double)(known + novel) / it->n_gt;
    }
  }
  free(fate);
  if (out->items) {
    out->t_known = (double)out->n_known / (double)out->items;
    out->t_novel = (double)out->n_novel / (double)out->items;
  }
  if (out->items_with_gt) {
    out->delta_known = sum_dk / (double)out->items_with_gt;
    out->delta_novel = sum_dn / (double)out->items_with_gt;
  }
  if (out->n_gt) {
    out->delta_known_ratio_of_sums = (double)gt_known / (double)out->n_gt;
    out->delta_novel_ratio_of_sums = (double)gt_novel / (double)out->n_gt;
  }
}
