/* The small hand-made evaluation set shared by the metric and CLI tests, and
 * the scores worked out by hand for it (derivation in test_eval_metrics.c).
 *
 * Training items (after normalisation, per item duplicates count once):
 *   cat 2, animal 3, cute 1, dog 1, sky 1      -> common_min 2: common cat, animal
 * Ground truth:  a {cat, animal}  b {dog, puppy}  c {cute, sky, cloud}  d {}  e {cat}
 * Predictions:   a {cat, dog, kitten}  b {puppy, dog(ret), wolf}
 *                c {sky, animal(ret)}  d {bird}  e: no line */
#ifndef EVAL_FIXTURE_H
#define EVAL_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
  const char *id;
  const char *tags[5];
} fx_item;

static const fx_item FX_TRAIN[] = {
    {"t1", {"Cat", "animal", "cute"}},
    {"t2", {"cat", "CAT ", "animal"}},
    {"t3", {"animal", "dog"}},
    {"t4", {"sky"}},
};
static const fx_item FX_TRUTH[] = {
    {"a", {"cat", "animal"}},
    {"b", {"dog", "ＰＵＰＰＹ"}},
    {"c", {"cute", "sky", "cloud"}},
    {"d", {NULL}},
    {"e", {"cat"}},
};
/* Predictions as JSON Lines (e has none). */
static const char *const FX_PRED[] = {
    "{\"id\": \"a\", \"tags\": [{\"tag\": \"Cat\", \"score\": 0.9, \"source\": \"gen\"}, "
    "{\"tag\": \"cat \", \"score\": 0.8, \"source\": \"ret\"}, {\"tag\": \"dog\", \"score\": 0.5}, "
    "{\"tag\": \"kitten\", \"source\": \"gen\"}]}",
    "{\"id\": \"b\", \"tags\": [{\"tag\": \"puppy\"}, {\"tag\": \"dog\", \"source\": \"ret\"}, "
    "{\"tag\": \"wolf\"}]}",
    "{\"id\": \"c\", \"tags\": [{\"tag\": \"sky\"}, {\"tag\": \"animal\", \"source\": \"ret\"}]}",
    "{\"id\": \"d\", \"tags\": [{\"tag\": \"bird\", \"score\": 0.1}]}",
};
enum { FX_N_TRAIN = 4, FX_N_TRUTH = 5, FX_N_PRED = 4, FX_COMMON_MIN = 2 };

static int fx_n_tags(const fx_item *it) {
  int n = 0;
  while (n < 5 && it->tags[n]) n++;
  return n;
}

/* Expected scores: {tp, n_pred, n_gt, P, R, F1, items, item P, item R, item F1, n_tags}
 * for overall, closed, common, rare. */
typedef struct {
  int64_t tp, n_pred, n_gt;
  double p, r, f1;
  int64_t items;
  double ip, ir, if1;
  int64_t n_tags;
} fx_scores;
static const fx_scores FX_WANT[4] = {
    {4, 9, 8, 4.0 / 9, 0.5, 8.0 / 17, 4, 0.375, 11.0 / 24, 0.4, 7},
    {3, 5, 6, 0.6, 0.5, 6.0 / 11, 4, 0.5, 0.5, 0.5, 5},
    {1, 2, 3, 0.5, 1.0 / 3, 0.4, 2, 0.5, 0.25, 1.0 / 3, 2},
    {2, 3, 3, 2.0 / 3, 2.0 / 3, 2.0 / 3, 2, 1.0, 0.75, 5.0 / 6, 3},
};
/* generated 7 (retrieved 2), novel 4 (kitten, puppy, wolf, bird), novel and correct 1 (puppy) */
enum { FX_GEN = 7, FX_RET = 2, FX_NOVEL = 4, FX_NOVEL_CORRECT = 1 };

#endif
