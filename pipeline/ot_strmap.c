#include "ot_strmap.h"

#include <stdlib.h>
#include <string.h>

#include "ot_common.h"
#include "ot_hash.h"

static size_t slot(const ot_strmap *m, const char *key) {
  size_t i = (size_t)ot_fnv1a64(key, strlen(key), OT_FNV64_INIT) & (m->cap - 1);
  while (m->keys[i] && strcmp(m->keys[i], key)) i = (i + 1) & (m->cap - 1);
  return i;
}

int64_t ot_strmap_get(const ot_strmap *m, const char *key) {
  if (!m->cap) return -1;
  size_t i = slot(m, key);
  return m->keys[i] ? m->vals[i] : -1;
}

void ot_strmap_put(ot_strmap *m, const char *key, int64_t val) {
  if (2 * (m->n + 1) > m->cap) {
    ot_strmap old = *m;
    m->cap = old.cap ? 2 * old.cap : 64;
    m->keys = ot_xcalloc(m->cap, sizeof *m->keys);
    m->vals = ot_xcalloc(m->cap, sizeof *m->vals);
    for (size_t i = 0; i < old.cap; i++)
      if (old.keys[i]) {
        size_t j = slot(m, old.keys[i]);
        m->keys[j] = old.keys[i], m->vals[j] = old.vals[i];
      }
    free(old.keys);
    free(old.vals);
  }
  size_t i = slot(m, key);
  if (!m->keys[i]) m->n++;
  m->keys[i] = key, m->vals[i] = val;
}

void ot_strmap_free(ot_strmap *m) {
  free(m->keys);
  free(m->vals);
  *m = (ot_strmap){0};
}

const char *ot_strpool_intern(ot_strpool *p, const char *text) {
  int64_t k = ot_strmap_get(&p->ix, text);
  if (k >= 0) return p->texts[k];
  if (p->n == p->cap) {
    p->cap = p->cap ? 2 * p->cap : 256;
    p->texts = ot_xrealloc(p->texts, (size_t)p->cap * sizeof *p->texts);
  }
  char *copy = ot_xstrdup(text);
  p->texts[p->n] = copy;
  ot_strmap_put(&p->ix, copy, p->n++);
  return copy;
}

void ot_strpool_free(ot_strpool *p) {
  for (int64_t k = 0; k < p->n; k++) free(p->texts[k]);
  free(p->texts);
  ot_strmap_free(&p->ix);
  *p = (ot_strpool){0};
}

int ot_named_row_cmp(const void *a, const void *b) {
  const ot_named_row *x = a, *y = b;
  int c = strcmp(x->name, y->name);
  return c ? c : (x->row > y->row) - (x->row < y->row);
}

size_t ot_named_row_lower(const ot_named_row *x, size_t n, const char *name) {
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (strcmp(x[mid].name, name) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
