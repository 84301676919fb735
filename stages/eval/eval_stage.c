/* ot-eval: closed-set scores of a predictions file against the ground truth
 * of an extracted split, and optionally the open-set Tag Gain from external
 * embeddings, written as a report row (JSON + Markdown table) with its
 * per-group counts, from which the report pairs it with every other row
 * (bootstrap.h).
 *
 * The work is small (sets of strings), so rank 0 does all of it; under
 * mpirun the other ranks only wait and agree on the exit status. */
#include "eval_stage.h"
#include "bootstrap.h"
#include "evalset.h"
#include "examples.h"
#include "metrics.h"
#include "ot_common.h"
#include "ot_config.h"
#include "ot_dataset.h"
#include "ot_log.h"
#include "ot_mpi.h"
#include "report.h"
#include "taggain.h"
#include "taggain_emb.h"
#include "taggain_judge.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The row name: eval.name, else the model type's name from the schema. */
static void row_name(const ot_config *cfg, char *buf, size_t cap) {
  if (cfg->eval.name[0]) {
    snprintf(buf, cap, "%s", cfg->eval.name);
    return;
  }
  snprintf(buf, cap, "model");
  for (size_t i = 0; i < ot_cfg_schema_len; i++) {
    if (strcmp(ot_cfg_schema[i].key, "model.type")) continue;
    const char *c = ot_cfg_schema[i].choices;
    for (int k = 0; k < cfg->model.type && c; k++) c = strchr(c, '|') ? strchr(c, '|') + 1 : NULL;
    if (c) snprintf(buf, cap, "%.*s", (int)strcspn(c, "|"), c);
  }
}

static int open_split(ot_dataset **d, const char *dir, const char *split, char *path, size_t cap) {
  snprintf(path, cap, "%s/%s", dir, split);
  return ot_dataset_open(d, path);
}

/* An appended row scored by another judge or τ than a row already there
 * still shares the table, but is left out of the Tag Gain differences: say so
 * where the user runs the command. */
static void warn_mixed_scorers(const json_t *rep, const json_t *row, const char *path) {
  size_t i;
  const json_t *other;
  json_array_foreach(json_object_get(rep, "rows"), i, other) {
    const char *field = other == row ? NULL : ot_eval_scorer_difference(other, row);
    if (field)
      ot_log_warn("%s: row '%s' has Tag Gain from another %s than row '%s': the table shows both, "
                  "no Tag Gain difference pairs them",
                  path, json_string_value(json_object_get(row, "name")), field,
                  json_string_value(json_object_get(other, "name")));
  }
}

static int evaluate(const ot_config *cfg) {
  int st;
  if ((st = ot_config_require(cfg, "data.dir")) || (st = ot_config_require(cfg, "eval.pred")) ||
      (st = ot_config_require(cfg, "eval.out")) || (st = ot_config_require(cfg, "eval.split")))
    return st;
  if (strchr(cfg->eval.split, '/'))
    return ot_fail(OT_EINVAL, "%s: eval.split: '%s' is a split name (train, val, test), not a path",
                   ot_config_origin(cfg, "eval.split"), cfg->eval.split);
  /* eval.out names files by prefix: "runs/x/" would write the hidden
   * runs/x/.json and .md, which the user then does not find */
  const size_t out_len = strlen(cfg->eval.out);
  if (cfg->eval.out[out_len - 1] == '/')
    return ot_fail(OT_EINVAL, "%s: eval.out: '%s' ends in '/': it is a prefix, <eval.out>.json and "
                   "<eval.out>.md are written (e.g. %sreport)",
                   ot_config_origin(cfg, "eval.out"), cfg->eval.out, cfg->eval.out);
  if (cfg->eval.taggain_embeddings[0] && cfg->eval.judge[0])
    return ot_fail(OT_EINVAL, "eval.taggain_embeddings (%s) and eval.judge (%s) are both set: Tag Gain "
                   "takes its similarity from one of them, unset the other",
                   ot_config_origin(cfg, "eval.taggain_embeddings"), ot_config_origin(cfg, "eval.judge"));
  double t0 = ot_now();
  char train_dir[4200], truth_dir[4200];
  ot_dataset *train = NULL, *truth = NULL;
  ot_evalset *e = NULL;
  ot_taggain_emb *emb = NULL;
  ot_taggain_judge *judge = NULL;
  ot_taggain_result tg = {0};
  ot_taggain_sim sim = {0}; /* Tag Gain's similarity, when on */
  double *item_gain = NULL;  /* [items] its per-item terms (the row's "groups"), when on */
  json_t *data = NULL, *row = NULL, *rep = NULL;
  char *md = NULL;
  int lock = -1; /* the report's lock, held from reading it to writing it */
  if ((st = open_split(&train, cfg->data.dir, "train", train_dir, sizeof train_dir)) ||
      (st = open_split(&truth, cfg->data.dir, cfg->eval.split, truth_dir, sizeof truth_dir)) ||
      (st = ot_evalset_open(&e)) || (st = ot_evalset_load_train(e, train, train_dir)) ||
      (strcmp(cfg->eval.split, "train") &&
       (st = ot_dataset_check_disjoint(train, train_dir, truth, truth_dir))) ||
      (st = ot_evalset_load_truth(e, truth, truth_dir)) ||
      (st = ot_evalset_load_pred(e, cfg->eval.pred)))
    goto out;

  ot_eval_result r;
  ot_eval_compute(e, cfg->eval.common_min, &r);
  char name[256], path[4200];
  row_name(cfg, name, sizeof name);
  data = ot_eval_data_json(&r, cfg->data.name, cfg->eval.split);
  row = ot_eval_row_json(&r, name, cfg->eval.pred, cfg->data.dir);
  if (cfg->eval.taggain_embeddings[0] || cfg->eval.judge[0])
    item_gain = ot_xmalloc(((size_t)ot_evalset_n_items(e) + 1) * sizeof *item_gain);
  if (cfg->eval.model[0]) json_object_set_new(row, "model", json_string(cfg->eval.model));
  if (cfg->eval.taggain_embeddings[0]) {
    if ((st = ot_taggain_emb_open(&emb, cfg->eval.taggain_embeddings, e))) goto out;
    int64_t n_img, n_rel, n_div, dups;
    ot_taggain_emb_counts(emb, &n_img, &n_rel, &n_div, &dups);
    ot_log_info("Tag Gain embeddings %s: vectors for %lld of %lld items, %lld (diversity %lld) of "
                "%lld tags; %lld repeated names ignored",
                cfg->eval.taggain_embeddings, (long long)n_img, (long long)r.n_items,
                (long long)n_rel, (long long)n_div, (long long)ot_evalset_n_tags(e), (long long)dups);
    sim = ot_taggain_emb_sim(emb);
    ot_taggain_compute(e, &sim, cfg->eval.tau_rel, cfg->eval.tau_div, item_gain, &tg);
    ot_eval_row_add_taggain(row, &tg, cfg->eval.taggain_embeddings);
    if (tg.skipped_items || tg.unjudged_tags)
      ot_log_warn("Tag Gain: %lld items skipped (no image vector), %lld predicted tags unjudged "
                  "(no embedding) in %s",
                  (long long)tg.skipped_items, (long long)tg.unjudged_tags,
                  cfg->eval.taggain_embeddings);
  }
  if (cfg->eval.judge[0]) {
    if ((st = ot_taggain_judge_open(&judge, cfg, e))) goto out;
    double tau_rel, tau_div;
    ot_taggain_judge_taus(judge, &tau_rel, &tau_div);
    sim = ot_taggain_judge_sim(judge);
    ot_taggain_compute(e, &sim, tau_rel, tau_div, item_gain, &tg);
    ot_eval_row_add_taggain(row, &tg, NULL);
    ot_eval_row_add_judge(row, cfg->eval.judge, ot_taggain_judge_json(judge));
    if (tg.skipped_items || tg.unjudged_tags)
      ot_log_warn("Tag Gain: %lld items skipped (not in %s), %lld predicted tags unjudged (no "
                  "BPE tokens)", (long long)tg.skipped_items, truth_dir, (long long)tg.unjudged_tags);
  }
  json_object_set_new(row, "groups", ot_eval_groups_json(e, item_gain));
  if (cfg->eval.examples > 0)
    json_object_set_new(row, "examples",
                        ot_eval_examples_json(e, truth, sim.sim_rel ? &sim : NULL, tg.tau_rel,
                                              tg.tau_div, cfg->eval.examples));
  snprintf(path, sizeof path, "%s.json", cfg->eval.out);
  if ((st = ot_eval_report_lock(cfg->eval.out, &lock)) ||
      (st = ot_eval_report_merge(&rep, path, cfg->eval.append, data, row)))
    goto out;
  warn_mixed_scorers(rep, row, path);
  ot_eval_report_add_paired(rep, cfg->eval.bootstrap);
  ot_eval_report_add_means(rep, cfg->eval.bootstrap);
  if ((st = ot_eval_report_write(cfg->eval.out, rep, &md))) goto out;
  ot_eval_report_unlock(lock);
  lock = -1;
  fputs(md, stdout);
  fflush(stdout);
  if (r.n_missing)
    ot_log_warn("%lld of %lld items have no prediction in %s: scored as predicting nothing",
                (long long)r.n_missing, (long long)r.n_items, cfg->eval.pred);
  ot_log_info("%s: F1 %.4f (common %.4f, rare %.4f) over %lld items; wrote %s.json and %s.md in %.2fs",
              name, r.s[OT_EVAL_OVERALL].f1, r.s[OT_EVAL_COMMON].f1, r.s[OT_EVAL_RARE].f1,
              (long long)r.n_items, cfg->eval.out, cfg->eval.out, ot_now() - t0);
  if (emb || judge)
    ot_log_info("%s: Tag Gain (tau_rel %g, tau_div %g) T_known %.2f, delta_known %.4f, T_novel "
                "%.2f, delta_novel %.4f over %lld items",
                name, tg.tau_rel, tg.tau_div, tg.t_known, tg.delta_known, tg.t_novel,
                tg.delta_novel, (long long)tg.items);
out:
  ot_eval_report_unlock(lock);
  ot_taggain_emb_close(emb);
  ot_taggain_judge_close(judge);
  free(item_gain);
  free(md);
  json_decref(rep);
  json_decref(row);
  json_decref(data);
  ot_evalset_close(e);
  ot_dataset_close(truth);
  ot_dataset_close(train);
  return st;
}

/* Rank 0 evaluates; every rank exits with its status. */
int ot_eval_stage_run(const ot_config *cfg, int *exit_code) {
  (void)exit_code;
  return ot_mpi_agree(ot_mpi_rank() == 0 ? evaluate(cfg) : OT_OK);
}

const ot_cli_info ot_eval_stage_info = {
    "ot-eval",
    "Score predicted tags (eval.pred, JSON Lines) against the ground truth of the extracted split\n"
    "data.dir/<eval.split>/, with the training tags of data.dir/train/: precision, recall and F1\n"
    "(micro and per item) overall, on tags seen in training, and on common/rare shared tags, plus\n"
    "the share of generated tags never seen in training. Tags are compared after NFKC, case folding\n"
    "and white-space collapsing. Writes <eval.out>.json and <eval.out>.md (a table with one row per\n"
    "model; eval.append=true keeps the other rows) and prints the table. Rows that name the model\n"
    "they are a run of (eval.model: the same config with another train.seed) are also averaged per\n"
    "model, with each pair of models' mean-F1 difference and its paired-bootstrap interval.\n"
    "With eval.taggain_embeddings (HDF5: image/id, image/vec, text/tag, text/vec, optional\n"
    "div/tag, div/vec) also the open-set Tag Gain: per item, the predicted tags sorted by\n"
    "cos(image, tag) are kept if that is > eval.tau_rel and their cos to every tag kept before\n"
    "is < eval.tau_div; T_known = kept tags seen in training but not in the ground truth,\n"
    "T_novel = kept tags never seen in training, Δ = |T|/|ground truth|.\n"
    "With eval.judge (a model.type=judge checkpoint, instead of eval.taggain_embeddings) the same\n"
    "with the judge's image and tag vectors; tau_rel and tau_div are then calibrated on the val\n"
    "split (eval.judge_gt_pass of its ground-truth pairs pass tau_rel; tau_div = median cosine of\n"
    "near-duplicate training tags), cached in the judge's folder as calibration.json.\n"
    "The report ends with eval.examples qualitative examples: the same items for every row,\n"
    "each predicted tag marked in the ground truth, known, novel or filtered out by Tag Gain.",
    "data model train embed eval",
    "eval.pred eval.judge eval.taggain_embeddings"};
