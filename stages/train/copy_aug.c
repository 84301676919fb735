#include "copy_aug.h"

#include "ot_common.h"
#include "ot_rng.h"
#include "tagnorm.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

static int all_letters(const char *s) {
  for (; *s; s++)
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z'))) return 0;
  return 1;
}

static int has_ascii(const char *s) {
  for (; *s; s++)
    if ((unsigned char)*s < 0x80) return 1;
  return 0;
}

static int utf8_chars(const char *s) {
  int n = 0;
  for (; *s; s++) n += ((unsigned char)*s & 0xC0) != 0x80;
  return n;
}

/* Where `word` occurs in `text` (ASCII words only between non-alphanumerics),
 * from `from` on; NULL if nowhere. */
static const char *find(const char *text, const char *from, const char *word, int whole_word) {
  const size_t n = strlen(word);
  for (const char *p = strstr(from, word); p; p = strstr(p + 1, word)) {
    if (!whole_word) return p;
    const int left = p == text || !isalnum((unsigned char)p[-1]);
    const int right = !isalnum((unsigned char)p[n]);
    if (left && right) return p;
  }
  return NULL;
}

/* text with every (whole-word) occurrence of `word` replaced by `by`; malloc'd. */
static char *replace_all(const char *text, const char *word, const char *by, int whole_word) {
  const size_t nw = strlen(word), nb = strlen(by);
  size_t cap = strlen(text) + 1, len = 0;
  for (const char *p = find(text, text, word, whole_word); p; p = find(text, p + nw, word, whole_word))
    cap += nb;
  char *out = ot_xmalloc(cap);
  const char *at = text;
  for (const char *p = find(text, text, word, whole_word); p; p = find(text, p + nw, word, whole_word)) {
    memcpy(out + len, at, (size_t)(p - at)), len += (size_t)(p - at);
    memcpy(out + len, by, nb), len += nb;
    at = p + nw;
  }
  strcpy(out + len, at);
  return out;
}

/* A random word shaped like `tag` (see the header); NULL when tag is neither kind. */
static char *random_word(const char *tag, ot_rng *r) {
  if (all_letters(tag)) {
    const size_t n = strlen(tag);
    char *w = ot_xmalloc(n + 1);
    for (size_t i = 0; i < n; i++) w[i] = (char)('a' + ot_rng_below(r, 26));
    w[n] = '\0';
    return w;
  }
  if (has_ascii(tag)) return NULL;
  const int n = utf8_chars(tag);
  char *w = ot_xmalloc((size_t)n * 3 + 1), *p = w;
  for (int i = 0; i < n; i++) { /* U+4E00..U+9FA5: three UTF-8 bytes each */
    const uint32_t c = 0x4E00 + ot_rng_below(r, 0x9FA5 - 0x4E00 + 1);
    *p++ = (char)(0xE0 | (c >> 12));
    *p++ = (char)(0x80 | ((c >> 6) & 0x3F));
    *p++ = (char)(0x80 | (c & 0x3F));
  }
  *p = '\0';
  return w;
}

int ot_copy_aug_apply(ot_copy_aug *out, const char *title, const char *const *tags, int n, float p,
                      uint64_t seed) {
  memset(out, 0, sizeof *out);
  out->n = n;
  out->tags = ot_xcalloc((size_t)(n > 0 ? n : 1), sizeof *out->tags);
  int st = ot_tagnorm_dup(title, &out->title);
  for (int k = 0; k < n; k++) out->tags[k] = ot_xstrdup(tags[k]);
  if (st) {
    out->title = ot_xstrdup(title);
    return st;
  }
  ot_rng r;
  ot_rng_seed(&r, seed);
  for (int k = 0; k < n && st == OT_OK; k++) {
    char *norm;
    if ((st = ot_tagnorm_dup(tags[k], &norm))) break;
    const int whole = has_ascii(norm);
    const int draw = ot_rng_uniform(&r) < p; /* one draw per tag, used or not */
    char *by = NULL;
    if (draw && strlen(norm) >= 2 && find(out->title, out->title, norm, whole) && (by = random_word(norm, &r))) {
      char *t = replace_all(out->title, norm, by, whole);
      free(out->title);
      out->title = t;
      free(out->tags[k]);
      out->tags[k] = by;
      out->replaced++;
    }
    free(norm);
  }
  return st;
}

void ot_copy_aug_free(ot_copy_aug *a) {
  if (!a->tags) {
    free(a->title);
    return;
  }
  for (int k = 0; k < a->n; k++) free(a->tags[k]);
  free(a->tags);
  free(a->title);
  memset(a, 0, sizeof *a);
}
