/* The title lexicon (lexicon.h). */
#include "lexicon.h"

#include "ot_common.h"
#include "tagnorm.h"

#include <stdlib.h>
#include <string.h>
#include <unicode/ubrk.h>
#include <unicode/utext.h>
#include <utf8proc.h>

/* Smoothing of a piece's own counts toward the prior of its shape. */
#define LEXICON_ALPHA 1.0f

/* Scripts written without spaces between words: one unit per character. */
static int is_cjk(int32_t c) {
  return (c >= 0x3040 && c <= 0x30FF) || (c >= 0x3400 && c <= 0x4DBF) ||
         (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0xF900 && c <= 0xFAFF) ||
         (c >= 0x20000 && c <= 0x2FA1F);
}

/* Punctuation that separates pieces; dashes and apostrophes occur inside
 * tags and do not. */
static int separates(int32_t c) {
  if (c == '\'' || c == 0x2019) return 0;
  switch (utf8proc_category(c)) {
  case UTF8PROC_CATEGORY_PS:
  case UTF8PROC_CATEGORY_PE:
  case UTF8PROC_CATEGORY_PI:
  case UTF8PROC_CATEGORY_PF:
  case UTF8PROC_CATEGORY_PO:
    return 1;
  default:
    return 0;
  }
}

typedef struct {
  int start, end; /* bytes of the normalised title */
  int gap;        /* a space before it */
  int seg;        /* run of units between separating punctuation */
} unit;

/* brk[b] = 1 where ICU's word breaking (dictionary-based for CJK) puts a
 * boundary before byte b of s[0..len), len included. */
static int word_breaks(const char *s, int64_t len, unsigned char *brk) {
  UErrorCode e = U_ZERO_ERROR;
  UText *text = utext_openUTF8(NULL, s, len, &e);
  UBreakIterator *it = ubrk_open(UBRK_WORD, "", NULL, 0, &e);
  ubrk_setUText(it, text, &e);
  for (int32_t b = U_SUCCESS(e) ? ubrk_first(it) : UBRK_DONE; b != UBRK_DONE; b = ubrk_next(it))
    if (b >= 0 && b <= len) brk[b] = 1;
  ubrk_close(it);
  utext_close(text);
  /* the text is valid UTF-8: a failure is ICU's (its data, memory), not the input's */
  return U_SUCCESS(e) ? OT_OK
                      : ot_fail(e == U_MEMORY_ALLOCATION_ERROR ? OT_ENOMEM : OT_EIO,
                                "ICU word breaking failed (%s): is ICU's data (libicu72) installed?",
                                u_errorName(e));
}

/* Units [a, a + n) are a word or words (lexicon.h). */
static int is_word(const unit *u, int a, int n, const unsigned char *brk) {
  if (!brk[u[a].start] || !brk[u[a + n - 1].end]) return 0;
  for (int i = a + 1; i < a + n; i++)
    if (!u[i].gap && brk[u[i].start]) return 0;
  return 1;
}

static void hits_push(ot_lexicon_hits *h, int *cap, char *text, int units, int shape) {
  for (int i = 0; i < h->n; i++)
    if (!strcmp(h->text[i], text)) {
      free(text);
      return;
    }
  if (h->n == *cap) {
    *cap = *cap ? 2 * *cap : 16;
    h->text = ot_xrealloc(h->text, (size_t)*cap * sizeof *h->text);
    h->units = ot_xrealloc(h->units, (size_t)*cap * sizeof *h->units);
    h->shape = ot_xrealloc(h->shape, (size_t)*cap * sizeof *h->shape);
    h->score = ot_xrealloc(h->score, (size_t)*cap * sizeof *h->score);
  }
  h->text[h->n] = text, h->units[h->n] = units, h->shape[h->n] = shape, h->score[h->n] = 0.0f;
  h->n++;
}

int ot_lexicon_pieces(const char *title, int max_units, ot_lexicon_hits *out) {
  OT_ASSERT(max_units >= 1);
  memset(out, 0, sizeof *out);
  char *s = NULL;
  int st = ot_tagnorm_dup(title, &s);
  if (st) return st;
  const utf8proc_ssize_t len = (utf8proc_ssize_t)strlen(s);
  unit *u = ot_xmalloc(((size_t)len + 1) * sizeof *u);
  int nu = 0, seg = 0, gap = 0, open = -1;
  for (utf8proc_ssize_t at = 0; at < len;) {
    utf8proc_int32_t c;
    utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)s + at, len - at, &c);
    OT_ASSERT(k > 0); /* ot_tagnorm's output is valid UTF-8 */
    if (c == ' ') {
      gap = 1, open = -1;
    } else if (separates(c)) {
      seg++, gap = 0, open = -1;
    } else if (open >= 0 && !is_cjk(c)) {
      u[open].end = (int)(at + k);
    } else {
      u[nu] = (unit){(int)at, (int)(at + k), gap, seg};
      open = is_cjk(c) ? -1 : nu;
      nu++, gap = 0;
    }
    at += k;
  }
  unsigned char *brk = ot_xcalloc((size_t)len + 1, 1);
  st = word_breaks(s, len, brk);
  int cap = 0;
  for (int a = 0, s0 = 0, s1 = 0; a < nu && st == OT_OK; a++) {
    if (a == s1) /* a new segment: units [s0, s1) */
      for (s0 = a, s1 = a + 1; s1 < nu && u[s1].seg == u[a].seg;) s1++;
    for (int n = 1; n <= max_units && a + n <= nu && u[a + n - 1].seg == u[a].seg; n++) {
      const int place = a == s0 && a + n == s1 ? OT_LEXICON_WHOLE
                        : a == s0              ? OT_LEXICON_START
                        : a + n == s1          ? OT_LEXICON_END
                                               : OT_LEXICON_MIDDLE;
      char *p = ot_xmalloc((size_t)(u[a + n - 1].end - u[a].start) + 1), *w = p;
      for (int i = a; i < a + n; i++) {
        if (i > a && u[i].gap) *w++ = ' ';
        memcpy(w, s + u[i].start, (size_t)(u[i].end - u[i].start));
        w += u[i].end - u[i].start;
      }
      *w = '\0';
      hits_push(out, &cap, p, n,
                OT_LEXICON_WORD * is_word(u, a, n, brk) +
                    OT_LEXICON_LATER * (u[a].seg > u[0].seg) + place);
    }
  }
  free(brk);
  free(u);
  free(s);
  return st;
}

void ot_lexicon_hits_free(ot_lexicon_hits *h) {
  for (int i = 0; i < h->n; i++) free(h->text[i]);
  free(h->text);
  free(h->units);
  free(h->shape);
  free(h->score);
  memset(h, 0, sizeof *h);
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

int ot_lexicon_cmp_hash(const void *a, const void *b) {
  const uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return (x > y) - (x < y);
}

float ot_lexicon_score(const ot_lexicon *lx, const char *piece, int units, int shape) {
  OT_ASSERT(units >= 1 && units <= lx->max_units && shape >= 0 && shape < OT_LEXICON_SHAPES);
  const float prior = lx->prior_shape ? lx->prior_shape[(units - 1) * OT_LEXICON_SHAPES + shape]
                                      : lx->prior[units - 1];
  char *const *at =
      lx->n ? bsearch(&piece, lx->text, (size_t)lx->n, sizeof *lx->text, cmp_str) : NULL;
  float k = at ? (float)lx->tagged[at - lx->text] : 0.0f;
  float n = at ? (float)lx->groups[at - lx->text] : 0.0f;
  if (!at && lx->n_once) { /* kept by its hash: seen in one group, never a tag */
    const uint64_t h = ot_lexicon_hash(piece);
    if (bsearch(&h, lx->once, (size_t)lx->n_once, sizeof *lx->once, ot_lexicon_cmp_hash)) n = 1.0f;
  }
  return (k + LEXICON_ALPHA * prior) / (n + LEXICON_ALPHA);
}

/* Higher score first; among equal scores, by text. */
static int ranks_before(float s, const char *t, float s2, const char *t2) {
  return s > s2 || (s == s2 && strcmp(t, t2) < 0);
}

int ot_lexicon_lookup(const ot_lexicon *lx, const char *title, ot_lexicon_hits *out) {
  int st = ot_lexicon_pieces(title, lx->max_units, out);
  if (st) return st;
  for (int i = 0; i < out->n; i++)
    out->score[i] = ot_lexicon_score(lx, out->text[i], out->units[i], out->shape[i]);
  /* insertion sort, best first, ties by text: a title has tens of pieces */
  for (int i = 1; i < out->n; i++) {
    char *t = out->text[i];
    int u = out->units[i], sh = out->shape[i];
    float s = out->score[i];
    int j = i;
    for (; j > 0 && ranks_before(s, t, out->score[j - 1], out->text[j - 1]); j--) {
      out->text[j] = out->text[j - 1];
      out->units[j] = out->units[j - 1];
      out->shape[j] = out->shape[j - 1];
      out->score[j] = out->score[j - 1];
    }
    out->text[j] = t, out->units[j] = u, out->shape[j] = sh, out->score[j] = s;
  }
  return OT_OK;
}

void ot_lexicon_absence(const ot_lexicon *lx, const ot_lexicon_hits *title,
                        const ot_gen_item *tags, float *ratio) {
  for (int i = 0; i < tags->n; i++) {
    const char *tag = tags->tags[i].tag;
    ratio[i] = 1.0f;
    char *const *at = lx->n && lx->tag_groups
                          ? bsearch(&tag, lx->text, (size_t)lx->n, sizeof *lx->text, cmp_str)
                          : NULL;
    if (!at) continue;
    const size_t p = (size_t)(at - lx->text);
    if (!lx->tag_groups[p]) continue;
    int in_title = 0;
    for (int h = 0; h < title->n && !in_title; h++) in_title = !strcmp(title->text[h], tag);
    if (in_title) continue;
    const double g = (double)lx->n_groups, t = (double)lx->tag_groups[p], base = t / g;
    const double absent = (t - (double)lx->tagged[p] + LEXICON_ALPHA * base) /
                          (g - (double)lx->groups[p] + LEXICON_ALPHA);
    if (absent < base) ratio[i] = (float)(absent / base);
  }
}

int ot_lexicon_adopt(ot_lexicon *out, int max_units, int n, char **text, int64_t *groups,
                     int64_t *tagged, int64_t *tag_groups, int64_t n_groups, float *prior,
                     float *prior_shape, int64_t n_once, uint64_t *once, const char *what) {
  *out = (ot_lexicon){max_units, n, text, groups, tagged, tag_groups, tag_groups ? n_groups : 0,
                      prior, prior_shape, n_once, once};
  int bad = max_units < 1 || n < 0;
  for (int i = 0; i < n && !bad; i++)
    bad = groups[i] < 1 || tagged[i] < 0 || tagged[i] > groups[i] ||
          (tag_groups && (tag_groups[i] < tagged[i] || groups[i] > n_groups ||
                          tag_groups[i] - tagged[i] > n_groups - groups[i])) ||
          (i && strcmp(text[i - 1], text[i]) >= 0);
  for (int u = 0; u < max_units && !bad; u++) bad = !(prior[u] >= 0.0f && prior[u] <= 1.0f);
  for (int64_t i = 1; i < n_once && !bad; i++) bad = once[i - 1] >= once[i];
  bad |= n_once < 0 || (n_once && !once);
  for (int c = 0; prior_shape && c < max_units * OT_LEXICON_SHAPES && !bad; c++)
    bad = !(prior_shape[c] >= 0.0f && prior_shape[c] <= 1.0f);
  if (!bad) return OT_OK;
  ot_lexicon_free(out);
  return ot_fail(OT_EINVAL, "%s: the title lexicon is malformed (unsorted, or counts out of range)",
                 what);
}

void ot_lexicon_free(ot_lexicon *lx) {
  for (int i = 0; i < lx->n; i++) free(lx->text[i]);
  free(lx->text);
  free(lx->groups);
  free(lx->tagged);
  free(lx->tag_groups);
  free(lx->prior);
  free(lx->prior_shape);
  free(lx->once);
  memset(lx, 0, sizeof *lx);
}
