#include "report.h"

#include "bootstrap.h"
#include "ot_common.h"
#include "ot_fs.h"
#include "ot_log.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { REPORT_VERSION = 1 };
#define REPORT_FORMAT "open-tag-eval"

json_t *ot_eval_data_json(const ot_eval_result *r, const char *data_name, const char *split) {
  /* tag_norm names the comparison rule: rows compared under another rule
   * would not be comparable. */
  return json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "name", data_name,
                   "split", split, "tag_norm", "nfkc+casefold+space", "common_min", (json_int_t)r->common_min, "items",
                   (json_int_t)r->n_items, "items_without_gt", (json_int_t)r->n_no_gt,
                   "train_items", (json_int_t)r->n_train_items, "train_tags",
                   (json_int_t)r->n_train_tags, "gt_tags", (json_int_t)r->s[OT_EVAL_OVERALL].n_tags,
                   "shared_tags", (json_int_t)r->s[OT_EVAL_CLOSED].n_tags, "common_tags",
                   (json_int_t)r->s[OT_EVAL_COMMON].n_tags, "rare_tags",
                   (json_int_t)r->s[OT_EVAL_RARE].n_tags);
}

json_t *ot_eval_row_json(const ot_eval_result *r, const char *name, const char *pred_path,
                         const char *data_dir) {
  json_t *micro = json_object(), *per_item = json_object();
  for (int u = 0; u < OT_EVAL_N_SUBSETS; u++) {
    const ot_eval_scores *s = &r->s[u];
    json_object_set_new(micro, ot_eval_subset_names[u],
                        json_pack("{s:f, s:f, s:f, s:I, s:I, s:I, s:I}", "p", s->p, "r", s->r, "f1",
                                  s->f1, "tp", (json_int_t)s->tp, "pred", (json_int_t)s->n_pred,
                                  "gt", (json_int_t)s->n_gt, "tags", (json_int_t)s->n_tags));
    json_object_set_new(per_item, ot_eval_subset_names[u],
                        json_pack("{s:f, s:f, s:f, s:I}", "p", s->item_p, "r", s->item_r, "f1",
                                  s->item_f1, "items", (json_int_t)s->items));
  }
  return json_pack("{s:s, s:{s:s, s:s}, s:I, s:I, s:o, s:o, s:{s:I, s:I, s:I, s:f, s:I}}", "name",
                   name, "settings", "predictions", pred_path, "data_dir", data_dir,
                   "items_predicted", (json_int_t)r->n_predicted, "items_missing",
                   (json_int_t)r->n_missing, "micro", micro, "per_item", per_item, "novelty",
                   "generated", (json_int_t)r->n_gen, "retrieved", (json_int_t)r->n_ret, "novel",
                   (json_int_t)r->n_novel, "novel_share", r->novel_share, "novel_correct",
                   (json_int_t)r->n_novel_correct);
}

void ot_eval_row_add_taggain(json_t *row, const ot_taggain_result *tg, const char *embeddings) {
  json_object_set_new(
      row, "tag_gain",
      json_pack("{s:o, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:s, s:I, s:I, s:I, s:I, s:I, s:I, "
                "s:I, s:I, s:I, s:I, s:I}",
                "embeddings", embeddings ? json_string(embeddings) : json_null(), "tau_rel", tg->tau_rel, "tau_div", tg->tau_div,
                "T_known", tg->t_known, "delta_known", tg->delta_known,
                "delta_known_ratio_of_sums", tg->delta_known_ratio_of_sums, "T_novel",
                tg->t_novel, "delta_novel", tg->delta_novel, "delta_novel_ratio_of_sums",
                tg->delta_novel_ratio_of_sums, "delta_mean",
                "per item over the scored items with ground-truth tags",
                "items", (json_int_t)tg->items, "skipped_items", (json_int_t)tg->skipped_items,
                "items_with_gt", (json_int_t)tg->items_with_gt, "unjudged_tags",
                (json_int_t)tg->unjudged_tags, "predicted_tags", (json_int_t)tg->n_pred,
                "kept_tags", (json_int_t)tg->n_kept, "irrelevant_tags",
                (json_int_t)tg->n_irrelevant, "redundant_tags", (json_int_t)tg->n_redundant,
                "known", (json_int_t)tg->n_known, "novel", (json_int_t)tg->n_novel, "gt_tags",
                (json_int_t)tg->n_gt));
}

void ot_eval_row_add_judge(json_t *row, const char *judge, json_t *calibration) {
  json_t *tg = json_object_get(row, "tag_gain");
  OT_ASSERT(tg);
  json_object_set_new(tg, "judge", json_string(judge));
  json_object_set_new(tg, "judge_calibration", calibration);
}

/* json_equal that takes two absent values as equal */
static int same_json(const json_t *x, const json_t *y) {
  return x == y || (x && y && json_equal(x, y));
}

const char *ot_eval_scorer_difference(const json_t *row_a, const json_t *row_b) {
  const json_t *a = json_object_get(row_a, "tag_gain"), *b = json_object_get(row_b, "tag_gain");
  if (!a || !b) return NULL;
  /* a judge is its weights (the same file retrained is another judge; a copy
   * elsewhere is the same one); rows without the hash fall back to the path */
  const json_t *wa = json_object_get(json_object_get(a, "judge_calibration"), "judge_weights");
  const json_t *wb = json_object_get(json_object_get(b, "judge_calibration"), "judge_weights");
  if (wa && wb ? !json_equal(wa, wb)
              : !same_json(json_object_get(a, "judge"), json_object_get(b, "judge")))
    return "judge";
  if (!same_json(json_object_get(a, "embeddings"), json_object_get(b, "embeddings")))
    return "embeddings";
  /* a row read back from the report holds its taus to the 12 digits the
   * report is written with, a row just scored holds the double */
  static const char *const taus[] = {"tau_rel", "tau_div"};
  for (int k = 0; k < 2; k++) {
    const double x = json_number_value(json_object_get(a, taus[k]));
    const double y = json_number_value(json_object_get(b, taus[k]));
    if (fabs(x - y) > 1e-10 * fmax(fabs(x), fabs(y))) return taus[k];
  }
  return NULL;
}

/* Name of the first field of `want` that `have` lacks or holds differently. */
static const char *first_difference(const json_t *have, const json_t *want) {
  const char *key;
  json_t *v;
  json_object_foreach((json_t *)want, key, v) {
    if (!json_equal(json_object_get(have, key), v)) return key;
  }
  return NULL;
}

int ot_eval_report_merge(json_t **out, const char *json_path, int append, json_t *data, json_t *row) {
  *out = NULL;
  json_t *rep = NULL;
  if (append && ot_fs_exists(json_path)) {
    json_error_t jerr;
    rep = json_load_file(json_path, 0, &jerr);
    if (!rep)
      return ot_fail(OT_EINVAL, "%s:%d: cannot read the report to append to: %s", json_path,
                     jerr.line, jerr.text);
    const char *fmt = json_string_value(json_object_get(rep, "format"));
    json_t *rows = json_object_get(rep, "rows"), *old = json_object_get(rep, "data");
    if (!fmt || strcmp(fmt, REPORT_FORMAT) || !json_is_array(rows) || !json_is_object(old)) {
      json_decref(rep);
      return ot_fail(OT_EINVAL, "%s: not an ot-eval report (format, data, rows)", json_path);
    }
    const char *diff = first_difference(old, data);
    if (diff) {
      char *a = json_dumps(json_object_get(old, diff), JSON_ENCODE_ANY);
      char *b = json_dumps(json_object_get(data, diff), JSON_ENCODE_ANY);
      int st = ot_fail(OT_EINVAL,
                       "%s: the report was made on other data or settings (data.%s: %s there, %s "
                       "now); its rows would not be comparable: use another eval.out or the same "
                       "settings",
                       json_path, diff, a ? a : "absent", b ? b : "absent");
      free(a);
      free(b);
      json_decref(rep);
      return st;
    }
    const char *name = json_string_value(json_object_get(row, "name"));
    size_t i, n = json_array_size(rows);
    for (i = 0; i < n; i++) {
      const char *other = json_string_value(json_object_get(json_array_get(rows, i), "name"));
      if (other && !strcmp(other, name)) break;
    }
    if (i < n) json_array_set(rows, i, row);
    else json_array_append(rows, row);
  } else {
    rep = json_pack("{s:s, s:i, s:O, s:[O]}", "format", REPORT_FORMAT, "version", REPORT_VERSION,
                    "data", data, "rows", row);
  }
  *out = rep;
  return OT_OK;
}

void ot_eval_report_add_paired(json_t *rep, int rounds) {
  static const char *const keys[2] = {"paired_f1", "paired_gain"};
  json_object_del(rep, keys[0]);
  json_object_del(rep, keys[1]);
  if (rounds <= 0) return;
  const json_t *rows = json_object_get(rep, "rows");
  for (int s = OT_EVAL_STAT_F1; s <= OT_EVAL_STAT_GAIN; s++) {
    json_t *pairs = json_array();
    for (size_t i = 1; i < json_array_size(rows); i++)
      for (size_t j = 0; j < i; j++) {
        const json_t *a = json_array_get(rows, i), *b = json_array_get(rows, j);
        if (s == OT_EVAL_STAT_GAIN && ot_eval_scorer_difference(a, b)) continue;
        const json_t *ga = json_object_get(a, "groups"), *gb = json_object_get(b, "groups");
        ot_eval_pairs_append(pairs, json_string_value(json_object_get(a, "name")), &ga, 1,
                             json_string_value(json_object_get(b, "name")), &gb, 1, rounds,
                             (ot_eval_stat)s);
      }
    if (s == OT_EVAL_STAT_F1 || json_array_size(pairs)) json_object_set_new(rep, keys[s], pairs);
    else json_decref(pairs);
  }
}

/* Growable text. */
typedef struct {
  char *s;
  size_t n, cap;
} text;

static void put(text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(text *t, const char *fmt, ...) {
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(t->s ? t->s + t->n : NULL, t->s ? t->cap - t->n : 0, fmt, ap);
    va_end(ap);
    OT_ASSERT(k >= 0);
    if (t->s && t->n + (size_t)k < t->cap) {
      t->n += (size_t)k;
      return;
    }
    t->cap = 2 * (t->n + (size_t)k + 64);
    t->s = ot_xrealloc(t->s, t->cap);
  }
}

/* Field readers that tolerate a hand-edited report (missing fields read as
 * "?" or 0 instead of crashing the table). */
static const char *str(const json_t *o, const char *k) {
  const char *s = json_string_value(json_object_get(o, k));
  return s ? s : "?";
}
static double num(const json_t *o, const char *a, const char *b, const char *c) {
  return json_number_value(json_object_get(json_object_get(json_object_get(o, a), b), c));
}
static long long cnt(const json_t *o, const char *a, const char *b) {
  return (long long)json_integer_value(json_object_get(json_object_get(o, a), b));
}

/* Text in a table cell or list line: '|' would end the cell, a newline the
 * row. */
static void put_escaped(text *t, const char *s) {
  for (; s && *s; s++) {
    if (*s == '|') put(t, "\\|");
    else if (*s == '\n' || *s == '\r') put(t, " ");
    else put(t, "%c", *s);
  }
}

/* One predicted tag of an example, marked by its fate. */
static void put_example_tag(text *t, const json_t *tag) {
  const char *f = str(tag, "fate");
  const int novel = json_is_true(json_object_get(tag, "novel"));
  const int filtered = !strcmp(f, "irrelevant") || !strcmp(f, "redundant");
  put(t, filtered ? "~~" : "");
  put_escaped(t, str(tag, "tag"));
  put(t, filtered ? "~~" : "");
  if (!strcmp(f, "gt")) put(t, novel ? " ✓ (new)" : " ✓");
  else if (!strcmp(f, "known") || !strcmp(f, "novel")) put(t, " (%s)", f);
  else if (!strcmp(f, "wrong")) put(t, novel ? " ✗ (new)" : " ✗");
  else if (!strcmp(f, "unjudged")) put(t, " (?)");
}

/* The qualitative examples: the items of the first row that has them (the
 * same for every row, examples.h), each row's tags side by side. */
static const json_t *find_pair(const json_t *pairs, const char *row, const char *vs) {
  size_t i;
  const json_t *p;
  json_array_foreach(pairs, i, p) if (!strcmp(str(p, "row"), row) && !strcmp(str(p, "vs"), vs)) return p;
  return NULL;
}

/* After `intro` (which the draw's size ends), row minus column, lower
 * triangle: every entry of `arr` (named by its `key`) against the ones
 * above it, from `pairs` ({"row", "vs", "diff", "lo", "hi"}); nothing when
 * there is no pair. */
static void put_diff_section(text *t, const json_t *pairs, const json_t *arr, const char *key,
                             const char *label, const char *intro) {
  const json_t *first = json_array_get(pairs, 0);
  const size_t n = json_array_size(arr);
  if (!first || n < 2) return;
  put(t, "%s %lld groups, %lld rounds (eval.bootstrap).\n\n| %s |", intro,
      (long long)json_integer_value(json_object_get(first, "groups")),
      (long long)json_integer_value(json_object_get(first, "rounds")), label);
  for (size_t j = 0; j + 1 < n; j++) {
    put(t, " ");
    put_escaped(t, str(json_array_get(arr, j), key));
    put(t, " |");
  }
  put(t, "\n| --- |");
  for (size_t j = 0; j + 1 < n; j++) put(t, " ---: |");
  put(t, "\n");
  for (size_t i = 1; i < n; i++) {
    const char *row = str(json_array_get(arr, i), key);
    put(t, "| ");
    put_escaped(t, row);
    put(t, " |");
    for (size_t j = 0; j + 1 < n; j++) {
      const json_t *p = j < i ? find_pair(pairs, row, str(json_array_get(arr, j), key)) : NULL;
      if (p)
        put(t, " %+.1f [%+.1f, %+.1f] |", 100 * json_number_value(json_object_get(p, "diff")),
            100 * json_number_value(json_object_get(p, "lo")),
            100 * json_number_value(json_object_get(p, "hi")));
      else
        put(t, " |");
    }
    put(t, "\n");
  }
}

/* A note when rows' Tag Gain comes from different scorers: their Δ are
 * side by side in the table, but no difference pairs them. */
static void put_mixed_scorers(text *t, const json_t *rows) {
  for (size_t i = 1; i < json_array_size(rows); i++)
    for (size_t j = 0; j < i; j++) {
      const json_t *a = json_array_get(rows, j), *b = json_array_get(rows, i);
      const char *field = ot_eval_scorer_difference(a, b);
      if (!field) continue;
      put(t, "- Tag Gain from different scorers: ");
      put_escaped(t, str(a, "name"));
      put(t, " and ");
      put_escaped(t, str(b, "name"));
      const char *what = !strcmp(field, "judge")     ? "judge weights"
                         : !strcmp(field, "tau_rel") ? "τ_rel"
                         : !strcmp(field, "tau_div") ? "τ_div"
                                                     : field;
      put(t, " (other %s) — their Δ measure the scorers as much as the models, so no Tag Gain "
             "difference or seed mean pairs rows scored differently.\n", what);
      return;
    }
}

static void put_paired(text *t, const json_t *rep) {
  put_diff_section(t, json_object_get(rep, "paired_f1"), json_object_get(rep, "rows"), "name", "ΔF1",
                   "\n## F1 differences\n\nRow minus column, in F1 points (micro, overall), with "
                   "the 95 % interval of a paired bootstrap over the groups of the split: items of "
                   "one group are drawn together, both rows are scored on the same draw. An "
                   "interval that holds 0 is a difference this split cannot tell from chance.");
  put_diff_section(t, json_object_get(rep, "paired_gain"), json_object_get(rep, "rows"), "name",
                   "ΔTag Gain",
                   "\n## Tag Gain differences\n\nRow minus column, in points of Δ_known + "
                   "Δ_novel (per-item mean), rows with Tag Gain only, scored by the same judge "
                   "or embeddings at the same τ, the same bootstrap: each draw's Δ is the mean of "
                   "its items' (|T_known| + |T_novel|) / |T_gt|.");
}

/* The models' seed means, then their differences. */
static void put_means(text *t, const json_t *rep) {
  const json_t *means = json_object_get(rep, "seed_means"), *m;
  if (!json_array_size(means)) return;
  size_t i, j;
  int gain = 0; /* Tag Gain columns when any model has it */
  json_array_foreach(means, i, m) gain |= json_is_array(json_object_get(m, "gain_runs"));
  put(t, "\n## Seed means\n\nRows that are runs of one model (eval.model: other train.seed), "
         "averaged: F1 of each run, then the mean of each score over the runs (in %%)%s.\n\n"
         "| Model | Runs | F1 per run | P | R | F1 | F1 common | F1 rare | F1 closed |%s\n"
         "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |%s\n",
      gain ? "; Tag Gain: Δ_known + Δ_novel of each run, then their mean" : "",
      gain ? " Tag Gain per run | Tag Gain |" : "", gain ? " --- | ---: |" : "");
  json_array_foreach(means, i, m) {
    put(t, "| ");
    put_escaped(t, str(m, "model"));
    const json_t *runs = json_object_get(m, "f1_runs"), *f;
    put(t, " | %zu | ", json_array_size(runs));
    json_array_foreach(runs, j, f) put(t, "%s%.1f", j ? " / " : "", 100 * json_number_value(f));
    put(t, " |");
    static const char *const cols[] = {"p", "r", "f1", "f1_common", "f1_rare", "f1_closed"};
    for (int c = 0; c < 6; c++) put(t, " %.1f |", 100 * json_number_value(json_object_get(m, cols[c])));
    const json_t *gains = json_object_get(m, "gain_runs");
    if (gain && gains) {
      put(t, " ");
      json_array_foreach(gains, j, f) put(t, "%s%.1f", j ? " / " : "", 100 * json_number_value(f));
      put(t, " | %.1f |", 100 * json_number_value(json_object_get(m, "gain")));
    } else if (gain) {
      put(t, " – | – |");
    }
    put(t, "\n");
  }
  put_diff_section(t, json_object_get(rep, "paired_means"), means, "model", "ΔF1",
                   "\nDifferences of the models' mean F1 (row minus column, points), with the 95 % "
                   "interval of the paired bootstrap above, every run of both models scored on the "
                   "same draw:");
  put_diff_section(t, json_object_get(rep, "paired_means_gain"), means, "model", "ΔTag Gain",
                   "\nDifferences of the models' mean Tag Gain (Δ_known + Δ_novel, points), the "
                   "same bootstrap:");
}

static void put_examples(text *t, const json_t *rows) {
  const json_t *first = NULL, *row;
  size_t i, k, j;
  json_array_foreach(rows, i, row) if (!first && json_array_size(json_object_get(row, "examples")))
    first = json_object_get(row, "examples");
  if (!first) return;
  put(t, "\n## Examples\n\nThe same items for every row (lowest id hashes, not picked). "
         "✓ in the ground truth; (known) kept by Tag Gain, seen in training but not in the ground "
         "truth; (novel) kept, never seen in training; ~~struck~~ filtered out by Tag Gain "
         "(irrelevant or redundant); ✗ not in the ground truth (rows without Tag Gain); (new) "
         "never seen in training.\n");
  const json_t *ex;
  json_array_foreach(first, k, ex) {
    put(t, "\n**");
    put_escaped(t, str(ex, "id"));
    put(t, "** — “");
    put_escaped(t, str(ex, "title"));
    put(t, "”; ground truth: ");
    const json_t *g;
    json_array_foreach(json_object_get(ex, "gt"), j, g) {
      put(t, j ? ", " : "");
      put_escaped(t, json_string_value(g));
    }
    put(t, "\n\n| Method | Tags |\n| --- | --- |\n");
    json_array_foreach(rows, i, row) {
      const json_t *mine = NULL, *e2;
      size_t q;
      json_array_foreach(json_object_get(row, "examples"), q, e2)
        if (!mine && !strcmp(str(e2, "id"), str(ex, "id"))) mine = e2;
      if (!mine) continue;
      put(t, "| ");
      put_escaped(t, str(row, "name"));
      put(t, " | ");
      const json_t *tag, *tags = json_object_get(mine, "tags");
      if (!json_array_size(tags)) put(t, "—");
      json_array_foreach(tags, j, tag) {
        put(t, j ? ", " : "");
        put_example_tag(t, tag);
      }
      put(t, " |\n");
    }
  }
}

char *ot_eval_report_md(const json_t *rep) {
  const json_t *d = json_object_get(rep, "data"), *rows = json_object_get(rep, "rows");
  long long m = (long long)json_integer_value(json_object_get(d, "common_min"));
  text t = {0};
  size_t i;
  json_t *row;
  int tag_gain = 0; /* Tag Gain columns when any row has them */
  json_array_foreach(rows, i, row) tag_gain |= json_is_object(json_object_get(row, "tag_gain"));
  put(&t, "# %s: %s, split %s\n\n", tag_gain ? "Evaluation" : "Closed-set evaluation",
      str(d, "name"), str(d, "split"));
  put(&t, "| Method |%s P | R | F1 | P common | R common | F1 common | P rare | R rare | F1 rare "
          "| F1 closed | F1 per item | Novel | Novel ✓ |\n",
      tag_gain ? " T_known | Δ_known | T_novel | Δ_novel |" : "");
  put(&t, "| --- |");
  for (int k = 0; k < 13 + 4 * tag_gain; k++) put(&t, " ---: |");
  put(&t, "\n");
  json_array_foreach(rows, i, row) {
    put(&t, "| ");
    put_escaped(&t, str(row, "name"));
    put(&t, " ");
    const json_t *tg = json_object_get(row, "tag_gain");
    if (tag_gain && tg)
      put(&t, "| %.2f | %.1f%% | %.2f | %.1f%% ", json_number_value(json_object_get(tg, "T_known")),
          100 * json_number_value(json_object_get(tg, "delta_known")),
          json_number_value(json_object_get(tg, "T_novel")),
          100 * json_number_value(json_object_get(tg, "delta_novel")));
    else if (tag_gain)
      put(&t, "| – | – | – | – ");
    static const char *const cols[] = {"overall", "common", "rare"};
    for (int c = 0; c < 3; c++)
      put(&t, "| %.1f | %.1f | %.1f ", 100 * num(row, "micro", cols[c], "p"),
          100 * num(row, "micro", cols[c], "r"), 100 * num(row, "micro", cols[c], "f1"));
    put(&t, "| %.1f | %.1f | %.1f%% | %lld |\n", 100 * num(row, "micro", "closed", "f1"),
        100 * num(row, "per_item", "overall", "f1"),
        100 * json_number_value(json_object_get(json_object_get(row, "novelty"), "novel_share")),
        cnt(row, "novelty", "novel_correct"));
  }
  long long items = (long long)json_integer_value(json_object_get(d, "items"));
  put(&t, "\nP, R, F1 in %%, micro-averaged over tag occurrences after normalisation (NFKC, case "
          "folding, white space). %lld items (%lld without ground-truth tags), %lld training "
          "items.\n\n",
      items, (long long)json_integer_value(json_object_get(d, "items_without_gt")),
      (long long)json_integer_value(json_object_get(d, "train_items")));
  put(&t, "- common / rare: the %lld tags shared by train and %s, split at %lld training items "
          "(eval.common_min): %lld common, %lld rare; predictions and ground truth restricted to "
          "that subset.\n",
      (long long)json_integer_value(json_object_get(d, "shared_tags")),
      str(d, "split"), m,
      (long long)json_integer_value(json_object_get(d, "common_tags")),
      (long long)json_integer_value(json_object_get(d, "rare_tags")));
  put(&t, "- F1 closed: predictions and ground truth restricted to tags seen in training.\n"
          "- F1 per item: mean of per-item F1 over the items with ground-truth tags; an item "
          "without predictions scores 0.\n"
          "- Novel: share of generated tags (source \"gen\", or \"title\": rag's title lexicon) "
          "never seen in training; Novel ✓: how "
          "many of those are in the item's ground truth.\n");
  json_array_foreach(rows, i, row) {
    const json_t *tg = json_object_get(row, "tag_gain");
    if (!tg) continue;
    put(&t, "- ");
    put_escaped(&t, str(row, "name"));
    put(&t, ": Tag Gain with τ_rel %g, τ_div %g over %lld items (%lld skipped: no image vector; "
            "%lld predicted tags unjudged: no embedding). T_known, T_novel: mean tags per item; "
            "Δ: mean over the %lld items with ground-truth tags of |T|/|T_gt|; as a ratio of sums "
            "Σ|T|/Σ|T_gt|: Δ_known %.1f%%, Δ_novel %.1f%%.\n",
        json_number_value(json_object_get(tg, "tau_rel")),
        json_number_value(json_object_get(tg, "tau_div")),
        (long long)json_integer_value(json_object_get(tg, "items")),
        (long long)json_integer_value(json_object_get(tg, "skipped_items")),
        (long long)json_integer_value(json_object_get(tg, "unjudged_tags")),
        (long long)json_integer_value(json_object_get(tg, "items_with_gt")),
        100 * json_number_value(json_object_get(tg, "delta_known_ratio_of_sums")),
        100 * json_number_value(json_object_get(tg, "delta_novel_ratio_of_sums")));
    const json_t *jc = json_object_get(tg, "judge_calibration");
    if (!jc) continue;
    put(&t, "  Similarity: the judge ");
    put_escaped(&t, str(tg, "judge"));
    put(&t, "; τ_rel %g calibrated on val so that %lld of its %lld (item, ground-truth tag) pairs "
            "pass (eval.judge_gt_pass %g)",
        json_number_value(json_object_get(jc, "tau_rel")),
        (long long)json_integer_value(json_object_get(jc, "val_pairs_passing")),
        (long long)json_integer_value(json_object_get(jc, "val_pairs")),
        json_number_value(json_object_get(jc, "judge_gt_pass")));
    const json_int_t other = json_integer_value(json_object_get(jc, "val_other_pairs"));
    if (other > 0) /* calibrations cached before it was recorded lack it */
      put(&t, ", and %.1f%% of %lld pairs of an item with another item's tag (how selective the "
              "relevance test is)",
          100.0 * (double)json_integer_value(json_object_get(jc, "val_other_pairs_passing")) / (double)other,
          (long long)other);
    put(&t, "; τ_div %g ", json_number_value(json_object_get(jc, "tau_div")));
    if (!strcmp(str(jc, "tau_div_source"), "near_duplicates"))
      put(&t, "= median cosine of %lld near-duplicate training-tag pairs.",
          (long long)json_integer_value(json_object_get(jc, "near_duplicate_pairs")));
    else
      put(&t, "= fallback: only %lld near-duplicate training-tag pairs (fewer than 10).",
          (long long)json_integer_value(json_object_get(jc, "near_duplicate_pairs")));
    const json_int_t cut = json_integer_value(json_object_get(jc, "tags_cut"));
    if (cut > 0)
      put(&t, " %lld of the %lld tags scored are longer than the judge's %lld tokens "
              "(model.tag_len) and are judged by their first %lld: two of them that start alike "
              "look alike to it.",
          (long long)cut, (long long)json_integer_value(json_object_get(jc, "tags_with_vector")),
          (long long)json_integer_value(json_object_get(jc, "judge_tag_len")),
          (long long)json_integer_value(json_object_get(jc, "judge_tag_len")));
    put(&t, "\n");
  }
  put_mixed_scorers(&t, rows);
  json_array_foreach(rows, i, row) {
    long long miss = (long long)json_integer_value(json_object_get(row, "items_missing"));
    if (miss) {
      put(&t, "- ");
      put_escaped(&t, str(row, "name"));
      put(&t, ": %lld of %lld items have no prediction line (scored as predicting nothing).\n",
          miss, items);
    }
  }
  put_paired(&t, rep);
  put_means(&t, rep);
  put_examples(&t, rows);
  return t.s;
}

int ot_eval_report_lock(const char *prefix, int *fd_out) {
  char path[4200];
  snprintf(path, sizeof path, "%s.lock", prefix);
  int st = ot_fs_lock(path, 1, fd_out);
  if (st == OT_OK && *fd_out < 0)
    /* a file system without locks still gets its report; only runs
     * appending at the same moment can lose a row there */
    ot_log_warn("%s: cannot lock (%s): rows appended to %s.json at the same moment by another "
                "run may be lost", path, strerror(errno), prefix);
  return st;
}

void ot_eval_report_unlock(int fd) { ot_fs_unlock(fd); }

int ot_eval_report_write(const char *prefix, const json_t *report, char **md_out) {
  char path[4200], dir[4200];
  snprintf(path, sizeof path, "%s.json", prefix);
  ot_fs_dirname(dir, sizeof dir, path);
  int st = ot_fs_mkdirs(dir);
  if (st) return st;
  st = ot_fs_write_json(path, report, JSON_INDENT(1) | JSON_ENSURE_ASCII | JSON_REAL_PRECISION(12));
  char *md = ot_eval_report_md(report);
  if (st == OT_OK) {
    snprintf(path, sizeof path, "%s.md", prefix);
    st = ot_fs_write_atomic(path, md, strlen(md));
  }
  if (md_out && st == OT_OK) *md_out = md;
  else free(md);
  return st;
}
