/* The evaluation report: <prefix>.json (every number, the settings, counts;
 * Tag Gain when on)
 * and <prefix>.md (a table shaped like the paper's, one row per model).
 *
 * Rows are keyed by name: with append, the rows already in <prefix>.json are
 * kept and a row of the same name is replaced in place, so several models
 * (Bin, ASL, Baseline, +OPG, +RAG) share one table and rerunning one of them
 * updates its row. Rows only share a table when they were scored on the same
 * data with the same settings (the report's "data" block). The Markdown is
 * always regenerated from the JSON. */
#ifndef OT_EVAL_REPORT_H
#define OT_EVAL_REPORT_H

#include "metrics.h"
#include "taggain.h"

#include <jansson.h>

/* The "data" block: what makes rows comparable (dataset name, split,
 * common_min, item and tag counts). New reference, caller decrefs. */
json_t *ot_eval_data_json(const ot_eval_result *r, const char *data_name, const char *split);
/* One row: name, the settings used, every score and count. New reference. */
json_t *ot_eval_row_json(const ot_eval_result *r, const char *name, const char *pred_path,
                         const char *data_dir);
/* Add the "tag_gain" object (taus, mean counts, both Δ variants, item and
 * tag counts, the embeddings file; null with a judge) to `row`. */
void ot_eval_row_add_taggain(json_t *row, const ot_taggain_result *tg, const char *embeddings);
/* Add "judge" (the checkpoint path) and "judge_calibration" (stolen: how
 * tau_rel and tau_div were calibrated, see taggain_judge.h) to the row's
 * "tag_gain" object (added before). */
void ot_eval_row_add_judge(json_t *row, const char *judge, json_t *calibration);
/* The field in which two rows' Tag Gain scorers differ — "judge" (other
 * weights), "embeddings", "tau_rel" or "tau_div" — or NULL when they are the
 * same or a row has no Tag Gain. A Δ difference between rows scored by two
 * judges, or at two thresholds, measures the scorers as much as the models:
 * such rows are never paired (paired_gain, seed means). Returns a static
 * string. */
const char *ot_eval_scorer_difference(const json_t *row_a, const json_t *row_b);
/* The report to write: a new one holding `row`, or, when `append` and
 * `json_path` exists, that report with `row` added or replacing the row of
 * the same name. OT_EINVAL naming the file if it is not a report or its data
 * block differs from `data`. *out is a new reference. */
int ot_eval_report_merge(json_t **out, const char *json_path, int append, json_t *data, json_t *row);
/* Set the report's "paired_f1": for every row and every row above it that
 * both have per-group counts (bootstrap.h), {"row", "vs", "diff", "lo",
 * "hi", "groups", "rounds"} — recomputed from all rows, so a replaced row
 * never leaves stale differences — and "paired_gain", the same for Tag
 * Gain's Δ_known + Δ_novel between rows that both have it, scored the same
 * way (ot_eval_scorer_difference; absent when no pair is). rounds 0 removes both. */
void ot_eval_report_add_paired(json_t *report, int rounds);
/* Set the report's "seed_means" and "paired_means" (seed_means.c) when
 * rows name the model they are a run of ("model", from eval.model):
 * per model its rows, their F1s and the mean of each micro score (and of
 * Δ_known + Δ_novel when every run has Tag Gain, all scored the same
 * way); per pair of models the
 * difference of mean F1s with its interval (bootstrap.h, the same draw for
 * every run), and in "paired_means_gain" of mean Tag Gains when both have
 * it from the same scorer; rounds 0: none. Recomputed from all rows; removed when no row names
 * a model. */
void ot_eval_report_add_means(json_t *report, int rounds);
/* Markdown for a report; malloc'd, the caller frees it. */
char *ot_eval_report_md(const json_t *report);
/* Hold <prefix>.lock (created with its folder) from before
 * ot_eval_report_merge reads the report until ot_eval_report_write has
 * replaced it: two runs appending to one report at the same moment (jobs of
 * several models finishing together) would otherwise each write the report
 * read before the other's row, and one row would be lost. Blocks while
 * another run holds it. *fd gets the lock (ot_eval_report_unlock), -1 when
 * the file system has no locks (warned, not an error); OT_EIO when the lock
 * file cannot be created. */
int ot_eval_report_lock(const char *prefix, int *fd);
void ot_eval_report_unlock(int fd); /* accepts -1 */
/* Write <prefix>.json and <prefix>.md atomically (folders created). If md is
 * not NULL, *md gets the Markdown (caller frees). */
int ot_eval_report_write(const char *prefix, const json_t *report, char **md);

#endif
