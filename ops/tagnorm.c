#include "tagnorm.h"

#include "ot_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

static int is_space(utf8proc_int32_t c) {
  if ((c >= 0x09 && c <= 0x0d) || c == 0x85) return 1;
  utf8proc_category_t k = utf8proc_category(c);
  return k == UTF8PROC_CATEGORY_ZS || k == UTF8PROC_CATEGORY_ZL || k == UTF8PROC_CATEGORY_ZP;
}

/* utf8proc only says "invalid"; find where, so the message points at it. */
static int fail_map(const char *in, utf8proc_ssize_t err) {
  const utf8proc_uint8_t *s = (const utf8proc_uint8_t *)in;
  utf8proc_ssize_t n = (utf8proc_ssize_t)strlen(in), at = 0;
  utf8proc_int32_t c;
  while (at < n) {
    utf8proc_ssize_t k = utf8proc_iterate(s + at, n - at, &c);
    if (k <= 0) break;
    at += k;
  }
  if (at == n) return ot_fail(OT_EINVAL, "cannot normalise tag '%s': %s", in, utf8proc_errmsg(err));
  return ot_fail(OT_EINVAL, "invalid UTF-8 at byte %ld of tag '%.*s'", (long)at, (int)at, in);
}

/* Normalised tag as a malloc'd string of *n bytes. */
static int normalise(const char *in, char **res, size_t *n) {
  utf8proc_uint8_t *m = NULL;
  utf8proc_ssize_t mn = utf8proc_map((const utf8proc_uint8_t *)in, 0, &m,
                                     UTF8PROC_NULLTERM | UTF8PROC_STABLE | UTF8PROC_COMPAT |
                                         UTF8PROC_COMPOSE | UTF8PROC_CASEFOLD);
  if (mn == UTF8PROC_ERROR_NOMEM) return ot_fail(OT_ENOMEM, "out of memory normalising a tag");
  if (mn < 0) return fail_map(in, mn);
  /* Collapse white space in place: the output never grows (a run of one or
   * more code points becomes one byte). */
  size_t w = 0;
  int pending = 0;
  for (utf8proc_ssize_t r = 0; r < mn;) {
    utf8proc_int32_t c;
    utf8proc_ssize_t k = utf8proc_iterate(m + r, mn - r, &c);
    OT_ASSERT(k > 0); /* utf8proc_map emits valid UTF-8 */
    if (is_space(c)) {
      pending = w > 0;
    } else {
      if (pending) m[w++] = ' ';
      pending = 0;
      memmove(m + w, m + r, (size_t)k);
      w += (size_t)k;
    }
    r += k;
  }
  m[w] = 0;
  *res = (char *)m;
  *n = w;
  return OT_OK;
}

int ot_tagnorm(const char *in, char *out, size_t cap, size_t *len) {
  char *res;
  size_t n;
  int st = normalise(in, &res, &n);
  if (st) return st;
  if (len) *len = n;
  if (n + 1 > cap) {
    int shown = n > 40 ? 40 : (int)n;
    while (shown > 0 && ((unsigned char)res[shown] & 0xc0) == 0x80) shown--; /* whole characters */
    st = ot_fail(OT_EINVAL, "tag '%.*s%s' is %zu bytes after normalisation (at most %zu)", shown, res,
                 (size_t)shown < n ? "..." : "", n, cap ? cap - 1 : 0);
  } else {
    memcpy(out, res, n + 1);
  }
  free(res);
  return st;
}

int ot_tagnorm_dup(const char *in, char **out) {
  size_t n;
  *out = NULL;
  return normalise(in, out, &n);
}

int ot_tagnorm_unique(const char *const *tags, int n, char **norm, int *first) {
  int m = 0;
  for (int k = 0; k < n; k++) {
    char *x = NULL;
    if (ot_tagnorm_dup(tags[k], &x) != OT_OK || !x[0]) {
      free(x);
      continue;
    }
    int j = 0;
    while (j < m && strcmp(norm[j], x)) j++;
    if (j < m) {
      free(x);
      continue;
    }
    if (first) first[m] = k;
    norm[m++] = x;
  }
  return m;
}
