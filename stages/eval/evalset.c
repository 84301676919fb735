#include "evalset.h"

#include "ot_common.h"
#include "ot_manifest.h"
#include "ot_strmap.h"
#include "tagnorm.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct ot_evalset {
  ot_strmap tag_ix, item_ix;
  int32_t n_tags, tags_cap;
  char **tags;
  int64_t *train_count;
  int64_t n_items, items_cap, n_train_items;
  ot_evalset_item *items;
};

int ot_evalset_open(ot_evalset **out) {
  *out = ot_xcalloc(1, sizeof **out);
  return OT_OK;
}

void ot_evalset_close(ot_evalset *e) {
  if (!e) return;
  for (int32_t t = 0; t < e->n_tags; t++) free(e->tags[t]);
  for (int64_t i = 0; i < e->n_items; i++) {
    ot_evalset_item *it = &e->items[i];
    free(it->id);
    free(it->group);
    free(it->gt);
    free(it->pred);
    free(it->pred_gen);
  }
  free(e->tags);
  free(e->train_count);
  free(e->items);
  ot_strmap_free(&e->tag_ix);
  ot_strmap_free(&e->item_ix);
  free(e);
}

/* Id of the normalised text `norm` (taken over), interning it if new. */
static int32_t intern(ot_evalset *e, char *norm) {
  int64_t t = ot_strmap_get(&e->tag_ix, norm);
  if (t >= 0) {
    free(norm);
    return (int32_t)t;
  }
  OT_ASSERT(e->n_tags < INT32_MAX);
  if (e->n_tags == e->tags_cap) {
    e->tags_cap = e->tags_cap ? 2 * e->tags_cap : 256;
    e->tags = ot_xrealloc(e->tags, (size_t)e->tags_cap * sizeof *e->tags);
    e->train_count = ot_xrealloc(e->train_count, (size_t)e->tags_cap * sizeof *e->train_count);
  }
  e->tags[e->n_tags] = norm;
  e->train_count[e->n_tags] = 0;
  ot_strmap_put(&e->tag_ix, norm, e->n_tags);
  return e->n_tags++;
}

typedef struct {
  int32_t t;
  uint8_t gen;
} tag_ref;

static int cmp_ref(const void *a, const void *b) {
  const tag_ref *x = a, *y = b;
  return (x->t > y->t) - (x->t < y->t);
}

/* Normalise and intern `tags`, then sort and merge duplicates (a duplicate is
 * generated if any copy is). Empty results are dropped. *refs is malloc'd
 * (the caller frees it), *n_out its length. */
static int to_refs(ot_evalset *e, const char *const *tags, const uint8_t *gen, int n,
                   tag_ref **refs, int *n_out, const char *what) {
  tag_ref *r = ot_xmalloc((size_t)(n > 0 ? n : 1) * sizeof *r);
  int m = 0;
  for (int k = 0; k < n; k++) {
    char *norm;
    int st = ot_tagnorm_dup(tags[k], &norm);
    if (st) {
      free(r);
      return ot_fail_ctx(st, "%s, tag %d", what, k + 1);
    }
    if (!norm[0]) {
      free(norm);
      continue;
    }
    r[m].t = intern(e, norm);
    r[m++].gen = gen ? gen[k] : 1;
  }
  qsort(r, (size_t)m, sizeof *r, cmp_ref);
  int u = 0;
  for (int k = 0; k < m; k++) {
    if (u > 0 && r[u - 1].t == r[k].t) r[u - 1].gen |= r[k].gen;
    else r[u++] = r[k];
  }
  *refs = r;
  *n_out = u;
  return OT_OK;
}

int ot_evalset_add_train(ot_evalset *e, const char *const *tags, int n, const char *what) {
  tag_ref *r;
  int m;
  int st = to_refs(e, tags, NULL, n, &r, &m, what);
  if (st) return st;
  for (int k = 0; k < m; k++) e->train_count[r[k].t]++;
  e->n_train_items++;
  free(r);
  return OT_OK;
}

int ot_evalset_add_truth(ot_evalset *e, const char *id, const char *const *tags, int n) {
  if (ot_strmap_get(&e->item_ix, id) >= 0)
    return ot_fail(OT_EINVAL, "item id '%s' appears twice in the ground truth", id);
  char what[512];
  snprintf(what, sizeof what, "ground truth of item '%s'", id);
  tag_ref *r;
  int m;
  int st = to_refs(e, tags, NULL, n, &r, &m, what);
  if (st) return st;
  if (e->n_items == e->items_cap) {
    e->items_cap = e->items_cap ? 2 * e->items_cap : 256;
    e->items = ot_xrealloc(e->items, (size_t)e->items_cap * sizeof *e->items);
  }
  ot_evalset_item *it = &e->items[e->n_items];
  memset(it, 0, sizeof *it);
  it->id = ot_xstrdup(id);
  it->n_gt = m;
  it->gt = ot_xmalloc((size_t)(m > 0 ? m : 1) * sizeof *it->gt);
  for (int k = 0; k < m; k++) it->gt[k] = r[k].t;
  free(r);
  /* The map keeps pointers to ids; the items array may move, the ids do not. */
  ot_strmap_put(&e->item_ix, it->id, e->n_items++);
  return OT_OK;
}

int ot_evalset_add_pred(ot_evalset *e, const char *id, const char *const *tags,
                        const uint8_t *generated, int n, int64_t line) {
  int64_t i = ot_strmap_get(&e->item_ix, id);
  if (i < 0) return ot_fail(OT_EINVAL, "id '%s' is not in the ground truth", id);
  ot_evalset_item *it = &e->items[i];
  if (it->pred_line)
    return ot_fail(OT_EINVAL, "id '%s' already predicted at line %lld", id, (long long)it->pred_line);
  char what[512];
  snprintf(what, sizeof what, "prediction for '%s'", id);
  tag_ref *r;
  int m;
  int st = to_refs(e, tags, generated, n, &r, &m, what);
  if (st) return st;
  it->n_pred = m;
  it->pred = ot_xmalloc((size_t)(m > 0 ? m : 1) * sizeof *it->pred);
  it->pred_gen = ot_xmalloc((size_t)(m > 0 ? m : 1));
  for (int k = 0; k < m; k++) it->pred[k] = r[k].t, it->pred_gen[k] = r[k].gen;
  it->pred_line = line > 0 ? line : 1;
  free(r);
  return OT_OK;
}

int ot_evalset_load_train(ot_evalset *e, const ot_dataset *train, const char *split_dir) {
  for (int64_t i = 0; i < ot_dataset_count(train); i++) {
    int64_t local;
    ot_shard *s = ot_dataset_locate(train, i, &local);
    char *const *tags;
    int n = ot_shard_tags(s, local, &tags);
    char what[600];
    snprintf(what, sizeof what, "%s: item '%s'", split_dir, ot_shard_id(s, local));
    int st = ot_evalset_add_train(e, (const char *const *)tags, n, what);
    if (st) return st;
  }
  return OT_OK;
}

void ot_evalset_set_group(ot_evalset *e, const char *group) {
  OT_ASSERT(e->n_items > 0);
  ot_evalset_item *it = &e->items[e->n_items - 1];
  free(it->group);
  it->group = group && *group ? ot_xstrdup(group) : NULL;
}

int ot_evalset_load_truth(ot_evalset *e, const ot_dataset *truth, const char *split_dir) {
  for (int64_t i = 0; i < ot_dataset_count(truth); i++) {
    int64_t local;
    ot_shard *s = ot_dataset_locate(truth, i, &local);
    char *const *tags;
    int n = ot_shard_tags(s, local, &tags);
    int st = ot_evalset_add_truth(e, ot_shard_id(s, local), (const char *const *)tags, n);
    if (st) return ot_fail_ctx(st, "%s", split_dir);
    ot_evalset_set_group(e, ot_shard_group(s, local));
  }
  return OT_OK;
}

/* One predictions line: {"id": str, "tags": [{"tag": str, "score"?: number,
 * "source"?: "gen"|"ret"|"title"|"cls"}...]}: generated, retrieved, a piece
 * of the title (rag's title lexicon) or a closed-set classifier's. "gen",
 * "title" and a missing source count as generated — written by the tagger,
 * not taken from the training tags, so they may be novel. Other fields are
 * ignored. */
static int parse_pred_line(ot_evalset *e, const char *text, int64_t line) {
  json_error_t jerr;
  json_t *o = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
  if (!o) return ot_fail(OT_EINVAL, "bad JSON at column %d: %s", jerr.column, jerr.text);
  int st = OT_OK;
  const char **tags = NULL;
  uint8_t *gen = NULL;
  json_t *id = json_object_get(o, "id"), *arr = json_object_get(o, "tags");
  if (!json_is_object(o)) st = ot_fail(OT_EINVAL, "not a JSON object");
  else if (!json_is_string(id)) st = ot_fail(OT_EINVAL, "field 'id' missing or not a string");
  else if (!json_is_array(arr)) st = ot_fail(OT_EINVAL, "field 'tags' missing or not an array");
  size_t n = st ? 0 : json_array_size(arr);
  if (n > INT32_MAX) st = ot_fail(OT_EINVAL, "too many tags");
  tags = ot_xmalloc((n ? n : 1) * sizeof *tags);
  gen = ot_xmalloc(n ? n : 1);
  for (size_t k = 0; k < n && st == OT_OK; k++) {
    json_t *el = json_array_get(arr, k);
    json_t *tag = json_object_get(el, "tag"), *score = json_object_get(el, "score");
    json_t *src = json_object_get(el, "source");
    if (!json_is_object(el) || !json_is_string(tag))
      st = ot_fail(OT_EINVAL, "tags[%zu]: expected {\"tag\": \"...\", ...}", k);
    else if (score && !json_is_number(score))
      st = ot_fail(OT_EINVAL, "tags[%zu]: field 'score' is not a number", k);
    else if (src && !(json_is_string(src) && (!strcmp(json_string_value(src), "gen") ||
                                              !strcmp(json_string_value(src), "ret") ||
                                              !strcmp(json_string_value(src), "title") ||
                                              !strcmp(json_string_value(src), "cls"))))
      st = ot_fail(OT_EINVAL,
                   "tags[%zu]: field 'source' must be \"gen\", \"ret\", \"title\" or \"cls\"", k);
    else {
      tags[k] = json_string_value(tag);
      const char *from = src ? json_string_value(src) : "gen";
      gen[k] = !strcmp(from, "gen") || !strcmp(from, "title");
    }
  }
  if (st == OT_OK) st = ot_evalset_add_pred(e, json_string_value(id), tags, gen, (int)n, line);
  free(tags);
  free(gen);
  json_decref(o);
  return st;
}

int ot_evalset_load_pred(ot_evalset *e, const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return ot_fail(OT_EINVAL, "%s: cannot open predictions: %s", path, strerror(errno));
  /* a folder opens too (eval.pred=runs/x/tags-test instead of its
   * tags.jsonl): bad input, not a read failure */
  struct stat sb;
  if (fstat(fileno(f), &sb) == 0 && S_ISDIR(sb.st_mode)) {
    fclose(f);
    return ot_fail(OT_EINVAL, "%s: eval.pred is a folder, not a predictions file (its tags.jsonl?)", path);
  }
  char *buf = NULL;
  size_t cap = 0;
  ssize_t len;
  int64_t line = 0;
  int st = OT_OK;
  while (st == OT_OK && (len = getline(&buf, &cap, f)) >= 0) {
    line++;
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r')) buf[--len] = 0;
    const char *text = line == 1 ? ot_skip_utf8_bom(buf) : buf;
    if ((size_t)len != strlen(buf)) st = ot_fail(OT_EINVAL, "NUL byte in line");
    else if (text[strspn(text, " \t")] == 0) continue; /* blank line */
    else st = parse_pred_line(e, text, line);
    if (st) st = ot_fail_ctx(st, "%s:%lld", path, (long long)line);
  }
  if (st == OT_OK && ferror(f)) st = ot_fail(OT_EIO, "%s: read error: %s", path, strerror(errno));
  free(buf);
  fclose(f);
  return st;
}

int64_t ot_evalset_n_items(const ot_evalset *e) { return e->n_items; }
const ot_evalset_item *ot_evalset_item_at(const ot_evalset *e, int64_t i) {
  OT_ASSERT(i >= 0 && i < e->n_items);
  return &e->items[i];
}
int32_t ot_evalset_n_tags(const ot_evalset *e) { return e->n_tags; }
const char *ot_evalset_tag(const ot_evalset *e, int32_t t) {
  OT_ASSERT(t >= 0 && t < e->n_tags);
  return e->tags[t];
}
int64_t ot_evalset_train_count(const ot_evalset *e, int32_t t) {
  OT_ASSERT(t >= 0 && t < e->n_tags);
  return e->train_count[t];
}
int64_t ot_evalset_n_train_items(const ot_evalset *e) { return e->n_train_items; }
