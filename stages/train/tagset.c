#include "tagset.h"

#include "ot_common.h"
#include "tagnorm.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static void free_strings(char **s, size_t n) {
  for (size_t i = 0; i < n; i++) free(s[i]);
  free(s);
}

int ot_tagset_build(ot_tagset *out, const ot_dataset *train, int min_count) {
  memset(out, 0, sizeof *out);
  /* Every item's distinct normal forms, sorted: runs of equal strings are
   * the counts. */
  size_t n = 0, cap = 1024;
  char **all = ot_xmalloc(cap * sizeof *all);
  for (int64_t i = 0; i < ot_dataset_count(train); i++) {
    int64_t local;
    ot_shard *s = ot_dataset_locate(train, i, &local);
    char *const *tags;
    int nt = ot_shard_tags(s, local, &tags);
    while (n + (size_t)nt > cap) all = ot_xrealloc(all, (cap *= 2) * sizeof *all);
    n += (size_t)ot_tagnorm_unique((const char *const *)tags, nt, all + n, NULL);
  }
  qsort(all, n, sizeof *all, cmp_str);
  int kept = 0;
  for (size_t i = 0, j; i < n; i = j) {
    for (j = i + 1; j < n && !strcmp(all[j], all[i]); j++) {}
    if ((int64_t)(j - i) >= min_count) kept++;
  }
  if (kept == 0) {
    free_strings(all, n);
    return ot_fail(OT_EINVAL,
                   "no tag occurs at least model.min_tag_count=%d times in the training split "
                   "(%zu tag occurrences): lower model.min_tag_count or check the manifest's tags",
                   min_count, n);
  }
  out->tags = ot_xmalloc((size_t)kept * sizeof *out->tags);
  out->counts = ot_xmalloc((size_t)kept * sizeof *out->counts);
  for (size_t i = 0, j; i < n; i = j) {
    for (j = i + 1; j < n && !strcmp(all[j], all[i]); j++) {}
    if ((int64_t)(j - i) < min_count) continue;
    out->tags[out->n] = ot_xstrdup(all[i]);
    out->counts[out->n++] = (int64_t)(j - i);
  }
  free_strings(all, n);
  return OT_OK;
}

int ot_tagset_index(const ot_tagset *t, const char *tag) {
  char buf[256], *key = buf, *heap = NULL;
  size_t len = 0;
  if (ot_tagnorm(tag, buf, sizeof buf, &len) != OT_OK) {
    if (len + 1 <= sizeof buf || ot_tagnorm_dup(tag, &heap) != OT_OK) return -1; /* not UTF-8 */
    key = heap;
  }
  int lo = 0, hi = t->n - 1, at = -1;
  while (lo <= hi && at < 0) {
    int mid = lo + (hi - lo) / 2, c = strcmp(t->tags[mid], key);
    if (c == 0) at = mid;
    else if (c < 0) lo = mid + 1;
    else hi = mid - 1;
  }
  free(heap);
  return at;
}

json_t *ot_tagset_json(const ot_tagset *t) {
  json_t *tags = json_array(), *counts = json_array();
  for (int i = 0; i < t->n; i++) {
    json_array_append_new(tags, json_string(t->tags[i]));
    json_array_append_new(counts, json_integer(t->counts[i]));
  }
  json_t *o = json_pack("{s:s, s:i, s:o, s:o}", "format", "open-tag-tags", "version", 1, "tags",
                        tags, "counts", counts);
  OT_ASSERT(o);
  return o;
}

char *ot_tagset_to_json(const ot_tagset *t) {
  json_t *o = ot_tagset_json(t);
  char *txt = json_dumps(o, JSON_INDENT(1));
  json_decref(o);
  OT_ASSERT(txt);
  return txt;
}

int ot_tagset_adopt(ot_tagset *out, int n, char **tags, int64_t *counts, const char *what) {
  memset(out, 0, sizeof *out);
  out->n = n;
  out->tags = tags;
  out->counts = counts;
  if (n == 0) {
    ot_tagset_free(out);
    return ot_fail(OT_EINVAL, "%s: empty tag list", what);
  }
  for (int i = 1; i < n; i++)
    if (strcmp(tags[i - 1], tags[i]) >= 0) {
      ot_tagset_free(out);
      return ot_fail(OT_EINVAL, "%s: tag list is not sorted and unique at entry %d", what, i);
    }
  return OT_OK;
}

int ot_tagset_from_json(ot_tagset *out, const char *json, const char *what) {
  memset(out, 0, sizeof *out);
  json_error_t jerr;
  json_t *o = json_loads(json, 0, &jerr);
  if (!o) return ot_fail(OT_EINVAL, "%s:%d: bad JSON in tag list: %s", what, jerr.line, jerr.text);
  json_t *tags = json_object_get(o, "tags"), *counts = json_object_get(o, "counts");
  if (!json_is_array(tags) || !json_is_array(counts) || json_array_size(tags) != json_array_size(counts)) {
    json_decref(o);
    return ot_fail(OT_EINVAL, "%s: tag list needs arrays 'tags' and 'counts' of equal length", what);
  }
  int n = (int)json_array_size(tags);
  char **t = ot_xcalloc((size_t)n + 1, sizeof *t);
  int64_t *c = ot_xcalloc((size_t)n + 1, sizeof *c);
  int st = OT_OK;
  for (int i = 0; i < n; i++) {
    const char *s = json_string_value(json_array_get(tags, (size_t)i));
    t[i] = ot_xstrdup(s ? s : "");
    c[i] = json_integer_value(json_array_get(counts, (size_t)i));
    if (!s) st = ot_fail(OT_EINVAL, "%s: tag %d is not a string", what, i);
  }
  json_decref(o);
  if (st) {
    ot_tagset tmp = {n, t, c};
    ot_tagset_free(&tmp);
    return st;
  }
  return ot_tagset_adopt(out, n, t, c, what);
}

void ot_tagset_free(ot_tagset *t) {
  for (int i = 0; i < t->n; i++) free(t->tags[i]);
  free(t->tags);
  free(t->counts);
  memset(t, 0, sizeof *t);
}
