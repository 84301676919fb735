#include "examples.h"

#include "ot_common.h"
#include "ot_hash.h"
#include "ot_shard.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
  uint64_t h;
  int64_t i;
} keyed;

static int by_hash(const void *a, const void *b) {
  const keyed *x = a, *y = b;
  if (x->h != y->h) return x->h < y->h ? -1 : 1;
  return x->i < y->i ? -1 : x->i > y->i;
}

static const char *title_of(const ot_dataset *d, const char *id) {
  for (int64_t k = 0, n = ot_dataset_count(d); k < n; k++) {
    int64_t local;
    const ot_shard *s = ot_dataset_locate(d, k, &local);
    if (!strcmp(ot_shard_id(s, local), id)) {
      const char *t = ot_shard_title(s, local);
      return t ? t : "";
    }
  }
  return "";
}

static int in_gt(const ot_evalset_item *it, int32_t tag) {
  for (int k = 0; k < it->n_gt; k++)
    if (it->gt[k] == tag) return 1;
  return 0;
}

static const char *fate_name(ot_taggain_fate f) {
  switch (f) {
  case OT_TG_KEPT_GT: return "gt";
  case OT_TG_KNOWN: return "known";
  case OT_TG_NOVEL: return "novel";
  case OT_TG_IRRELEVANT: return "irrelevant";
  case OT_TG_REDUNDANT: return "redundant";
  default: return "unjudged";
  }
}

json_t *ot_eval_examples_json(const ot_evalset *e, const ot_dataset *truth,
                              const ot_taggain_sim *sim, double tau_rel, double tau_div, int n) {
  const int64_t N = ot_evalset_n_items(e);
  keyed *order = ot_xmalloc((size_t)(N > 0 ? N : 1) * sizeof *order);
  for (int64_t i = 0; i < N; i++) {
    const char *id = ot_evalset_item_at(e, i)->id;
    order[i] = (keyed){ot_fnv1a64(id, strlen(id), OT_FNV64_INIT), i};
  }
  qsort(order, (size_t)N, sizeof *order, by_hash);
  json_t *out = json_array();
  for (int64_t k = 0; k < N && k < n; k++) {
    const int64_t i = order[k].i;
    const ot_evalset_item *it = ot_evalset_item_at(e, i);
    ot_taggain_fate *fate = ot_xcalloc((size_t)(it->n_pred > 0 ? it->n_pred : 1), sizeof *fate);
    const int judged = sim && ot_taggain_item(e, i, sim, tau_rel, tau_div, fate);
    json_t *gt = json_array(), *tags = json_array();
    for (int g = 0; g < it->n_gt; g++) json_array_append_new(gt, json_string(ot_evalset_tag(e, it->gt[g])));
    for (int p = 0; p < it->n_pred; p++) {
      const int32_t t = it->pred[p];
      const char *f = judged ? fate_name(fate[p]) : in_gt(it, t) ? "gt" : "wrong";
      json_array_append_new(tags, json_pack("{s:s, s:s, s:b}", "tag", ot_evalset_tag(e, t), "fate", f,
                                            "novel", ot_evalset_train_count(e, t) == 0));
    }
    json_array_append_new(out, json_pack("{s:s, s:s, s:o, s:o}", "id", it->id, "title",
                                         title_of(truth, it->id), "gt", gt, "tags", tags));
    free(fate);
  }
  free(order);
  return out;
}
