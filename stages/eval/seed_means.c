/* The report's seed means: rows that are runs of one model (eval.model,
 * e.g. the same config trained with other train.seed) averaged, and every
 * pair of models compared by their mean F1 — and, when all their runs have
 * Tag Gain from the same scorer, by their mean Δ_known + Δ_novel — on the
 * same bootstrap draws. */
#include "bootstrap.h"
#include "ot_common.h"
#include "report.h"

#include <stdlib.h>
#include <string.h>

static double micro(const json_t *row, const char *subset, const char *what) {
  return json_number_value(json_object_get(json_object_get(json_object_get(row, "micro"), subset), what));
}

/* {"model", "rows": [names], "f1_runs": [...], and the runs' means of the
 * micro scores; "gain" and "gain_runs" (Δ_known + Δ_novel) when every run
 * has Tag Gain from one scorer} for the rows of `model`; *groups gets their
 * "groups", *first the model's first row. */
static json_t *model_entry(const json_t *rows, const char *model, const json_t ***groups, int *n,
                           const json_t **first) {
  static const char *const cols[][3] = {{"p", "overall", "p"},         {"r", "overall", "r"},
                                        {"f1", "overall", "f1"},       {"f1_common", "common", "f1"},
                                        {"f1_rare", "rare", "f1"},     {"f1_closed", "closed", "f1"}};
  enum { N_COLS = sizeof cols / sizeof cols[0] };
  double sum[N_COLS] = {0};
  json_t *names = json_array(), *f1s = json_array(), *gains = json_array();
  int all_gain = 1;
  double gain_sum = 0.0;
  *n = 0;
  *first = NULL;
  *groups = ot_xmalloc(json_array_size(rows) * sizeof **groups);
  size_t i;
  const json_t *row;
  json_array_foreach(rows, i, row) {
    const char *m = json_string_value(json_object_get(row, "model"));
    if (!m || strcmp(m, model)) continue;
    if (!*first) *first = row;
    json_array_append(names, json_object_get(row, "name"));
    json_array_append_new(f1s, json_real(micro(row, "overall", "f1")));
    for (int c = 0; c < N_COLS; c++) sum[c] += micro(row, cols[c][1], cols[c][2]);
    const json_t *tg = json_object_get(row, "tag_gain");
    const double g = json_number_value(json_object_get(tg, "delta_known")) +
                     json_number_value(json_object_get(tg, "delta_novel"));
    all_gain &= json_is_object(tg) && !ot_eval_scorer_difference(*first, row);
    json_array_append_new(gains, json_real(g));
    gain_sum += g;
    (*groups)[(*n)++] = json_object_get(row, "groups");
  }
  json_t *e = json_pack("{s:s, s:o, s:o}", "model", model, "rows", names, "f1_runs", f1s);
  for (int c = 0; c < N_COLS; c++) json_object_set_new(e, cols[c][0], json_real(sum[c] / *n));
  if (all_gain)
    json_object_set_new(e, "gain_runs", gains), json_object_set_new(e, "gain", json_real(gain_sum / *n));
  else
    json_decref(gains);
  return e;
}

void ot_eval_report_add_means(json_t *rep, int rounds) {
  json_object_del(rep, "seed_means");
  json_object_del(rep, "paired_means");
  json_object_del(rep, "paired_means_gain");
  const json_t *rows = json_object_get(rep, "rows");
  const size_t n_rows = json_array_size(rows);
  /* models in the order of their first row */
  const char **models = ot_xmalloc((n_rows ? n_rows : 1) * sizeof *models);
  size_t n_models = 0, i;
  const json_t *row;
  json_array_foreach(rows, i, row) {
    const char *m = json_string_value(json_object_get(row, "model"));
    size_t k = 0;
    while (m && m[0] && k < n_models && strcmp(models[k], m)) k++;
    if (m && m[0] && k == n_models) models[n_models++] = m;
  }
  if (n_models == 0) {
    free(models);
    return;
  }
  json_t *means = json_array(), *pairs = json_array(), *gain_pairs = json_array();
  const json_t ***groups = ot_xmalloc(n_models * sizeof *groups);
  int *runs = ot_xmalloc(n_models * sizeof *runs);
  const json_t **first = ot_xmalloc(n_models * sizeof *first);
  for (size_t k = 0; k < n_models; k++)
    json_array_append_new(means, model_entry(rows, models[k], &groups[k], &runs[k], &first[k]));
  for (size_t a = 1; a < n_models && rounds > 0; a++)
    for (size_t b = 0; b < a; b++) {
      ot_eval_pairs_append(pairs, models[a], groups[a], runs[a], models[b], groups[b], runs[b], rounds,
                           OT_EVAL_STAT_F1);
      const json_t *ma = json_array_get(means, a), *mb = json_array_get(means, b);
      if (json_object_get(ma, "gain") && json_object_get(mb, "gain") &&
          !ot_eval_scorer_difference(first[a], first[b]))
        ot_eval_pairs_append(gain_pairs, models[a], groups[a], runs[a], models[b], groups[b],
                             runs[b], rounds, OT_EVAL_STAT_GAIN);
    }
  json_object_set_new(rep, "seed_means", means);
  json_object_set_new(rep, "paired_means", pairs);
  if (json_array_size(gain_pairs)) json_object_set_new(rep, "paired_means_gain", gain_pairs);
  else json_decref(gain_pairs);
  for (size_t k = 0; k < n_models; k++) free(groups[k]);
  free(groups);
  free(first);
  free(runs);
  free(models);
}
