/* What closed-set evaluation compares: every tag text interned once (after
 * ot_tagnorm), how many training items carry it, and per evaluated item its
 * ground-truth and predicted tag sets (sorted, duplicate-free tag ids).
 *
 * Filled either from files (ot_evalset_load_*: the extracted dataset splits
 * and a predictions JSON Lines file) or directly (ot_evalset_add_*), which is
 * what the loaders call and what unit tests use. */
#ifndef OT_EVALSET_H
#define OT_EVALSET_H

#include "ot_dataset.h"

#include <stdint.h>

typedef struct {
  char *id;
  int n_gt, n_pred;
  int32_t *gt;        /* [n_gt] sorted tag ids */
  int32_t *pred;      /* [n_pred] sorted tag ids */
  uint8_t *pred_gen;  /* [n_pred] 1 = written by the tagger (source "gen", "title" or none),
                       * 0 = copied from retrieval ("ret") or a closed set ("cls") */
  int64_t pred_line;  /* line of its prediction in the predictions file; 0 = none */
  char *group;        /* items that are not independent share one (the dataset's "group");
                       * NULL: its own */
} ot_evalset_item;

typedef struct ot_evalset ot_evalset;

/* Caller owns *out (ot_evalset_close). */
int ot_evalset_open(ot_evalset **out);
void ot_evalset_close(ot_evalset *e); /* accepts NULL */

/* One training item's tags (raw text): each distinct normalised tag adds 1 to
 * its training count. `what` names the item in errors. */
int ot_evalset_add_train(ot_evalset *e, const char *const *tags, int n, const char *what);
/* One evaluated item and its ground truth (raw text). OT_EINVAL on a repeated
 * id or a tag that is not valid UTF-8. */
int ot_evalset_add_truth(ot_evalset *e, const char *id, const char *const *tags, int n);
/* The group of the item added last by ot_evalset_add_truth ("" or NULL:
 * none, the item is its own group). */
void ot_evalset_set_group(ot_evalset *e, const char *group);
/* The prediction for item `id` (raw text; sources[k] 1 = generated, NULL =
 * all generated), read from line `line`. Duplicates after normalisation count
 * once (generated if any copy is); tags that normalise to "" are dropped.
 * OT_EINVAL if the id is unknown or already predicted. */
int ot_evalset_add_pred(ot_evalset *e, const char *id, const char *const *tags,
                        const uint8_t *generated, int n, int64_t line);

/* Training counts from every item of `train`; ground truth from `truth`. */
int ot_evalset_load_train(ot_evalset *e, const ot_dataset *train, const char *split_dir);
int ot_evalset_load_truth(ot_evalset *e, const ot_dataset *truth, const char *split_dir);
/* Predictions file: OT_EINVAL naming FILE:LINE for bad JSON, a missing or
 * mistyped field, an unknown "source", or an id not in the ground truth. */
int ot_evalset_load_pred(ot_evalset *e, const char *path);

int64_t ot_evalset_n_items(const ot_evalset *e);
const ot_evalset_item *ot_evalset_item_at(const ot_evalset *e, int64_t i);
int32_t ot_evalset_n_tags(const ot_evalset *e);
const char *ot_evalset_tag(const ot_evalset *e, int32_t t);
/* Training items carrying tag t (0: never seen in training). */
int64_t ot_evalset_train_count(const ot_evalset *e, int32_t t);
int64_t ot_evalset_n_train_items(const ot_evalset *e);

#endif
