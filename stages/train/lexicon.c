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
/* Smoothing of a shape's held-out share toward its length's. */
#define LEXICON_BETA 2.0

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

/* --- counting ------------------------------------------------------------ */

/* One (text, group) sighting in training item `item`: a piece of the
 * group's title (in_title; is_tag when the item also had it as a tag), or
 * one of its tags (units 0). */
typedef struct {
  char *text;
  const char *group;
  int64_t item;
  int units, shape, in_title, is_tag;
} record;

static record *records_push(record *r, size_t *n, size_t *cap, record x) {
  if (*n == *cap) r = ot_xrealloc(r, (*cap *= 2) * sizeof *r);
  r[(*n)++] = x;
  return r;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* By text, group, then item: a group's first item comes first. */
static int by_text_group(const void *a, const void *b) {
  const record *x = a, *y = b;
  int c = strcmp(x->text, y->text);
  if (!c) c = strcmp(x->group, y->group);
  return c ? c : (x->item > y->item) - (x->item < y->item);
}

int ot_lexicon_build(ot_lexicon *out, const ot_dataset *train, int max_units) {
  OT_ASSERT(max_units >= 1);
  memset(out, 0, sizeof *out);
  size_t n = 0, cap = 1024;
  record *r = ot_xmalloc(cap * sizeof *r);
  const int64_t items = ot_dataset_count(train);
  const char **item_group = ot_xcalloc((size_t)items + 1, sizeof *item_group);
  int st = OT_OK;
  for (int64_t i = 0; i < items && st == OT_OK; i++) {
    int64_t local;
    ot_shard *s = ot_dataset_locate(train, i, &local);
    const char *group = ot_shard_group(s, local);
    if (!group || !group[0]) group = ot_shard_id(s, local);
    item_group[i] = group;
    char *const *tags;
    int nt = ot_shard_tags(s, local, &tags);
    char **norm = ot_xcalloc((size_t)nt + 1, sizeof *norm);
    int nn = ot_tagnorm_unique((const char *const *)tags, nt, norm, NULL);
    ot_lexicon_hits h;
    if ((st = ot_lexicon_pieces(ot_shard_title(s, local), max_units, &h)))
      st = ot_fail_ctx(st, "title of item '%s'", ot_shard_id(s, local));
    for (int p = 0; p < h.n; p++) {
      int is_tag = 0;
      for (int j = 0; j < nn && !is_tag; j++) is_tag = !strcmp(norm[j], h.text[p]);
      r = records_push(r, &n, &cap, (record){h.text[p], group, i, h.units[p], h.shape[p], 1, is_tag});
      h.text[p] = NULL; /* the record owns it */
    }
    ot_lexicon_hits_free(&h);
    for (int j = 0; j < nn; j++) r = records_push(r, &n, &cap, (record){norm[j], group, i, 0, 0, 0, 1});
    free(norm); /* its strings now belong to the records */
  }
  if (st) {
    for (size_t i = 0; i < n; i++) free(r[i].text);
    free(r);
    free(item_group);
    return st;
  }
  qsort(item_group, (size_t)items, sizeof *item_group, cmp_str);
  for (int64_t i = 0; i < items; i++)
    out->n_groups += !i || strcmp(item_group[i - 1], item_group[i]);
  free(item_group);
  qsort(r, n, sizeof *r, by_text_group);
  out->max_units = max_units;
  out->text = ot_xmalloc((n + 1) * sizeof *out->text);
  out->groups = ot_xmalloc((n + 1) * sizeof *out->groups);
  out->tagged = ot_xmalloc((n + 1) * sizeof *out->tagged);
  out->tag_groups = ot_xmalloc((n + 1) * sizeof *out->tag_groups);
  const size_t n_shapes = (size_t)max_units * OT_LEXICON_SHAPES;
  double *once = ot_xcalloc(n_shapes, sizeof *once), *once_tag = ot_xcalloc(n_shapes, sizeof *once_tag);
  for (size_t i = 0, j; i < n; i = j) {
    int64_t groups = 0, tagged = 0, tag_groups = 0;
    int units = 0, shape = 0;
    for (j = i; j < n && !strcmp(r[j].text, r[i].text);) {
      size_t g = j;
      int in_title = 0, is_tag = 0;
      for (; j < n && !strcmp(r[j].text, r[i].text) && !strcmp(r[j].group, r[g].group); j++) {
        if (r[j].in_title && !in_title) units = r[j].units, shape = r[j].shape; /* first item's */
        in_title |= r[j].in_title, is_tag |= r[j].is_tag;
      }
      groups += in_title, tagged += in_title && is_tag, tag_groups += is_tag;
    }
    if (!groups) { /* a tag no training title holds: not a piece */
      for (size_t k = i; k < j; k++) free(r[k].text);
      continue;
    }
    const size_t cell = (size_t)(units - 1) * OT_LEXICON_SHAPES + (size_t)shape;
    if (groups == 1) once[cell]++, once_tag[cell] += tagged;
    out->text[out->n] = r[i].text, out->groups[out->n] = groups, out->tagged[out->n] = tagged;
    out->tag_groups[out->n] = tag_groups;
    out->n++;
    for (size_t k = i + 1; k < j; k++) free(r[k].text);
  }
  free(r);
  out->prior = ot_xmalloc((size_t)max_units * sizeof *out->prior);
  out->prior_shape = ot_xmalloc(n_shapes * sizeof *out->prior_shape);
  for (int u = 0; u < max_units; u++) {
    double seen = 0, tags = 0;
    for (int s = 0; s < OT_LEXICON_SHAPES; s++)
      seen += once[u * OT_LEXICON_SHAPES + s], tags += once_tag[u * OT_LEXICON_SHAPES + s];
    const double p = (tags + 0.5) / (seen + 1.0);
    out->prior[u] = (float)p;
    for (int s = 0; s < OT_LEXICON_SHAPES; s++) {
      const size_t c = (size_t)u * OT_LEXICON_SHAPES + (size_t)s;
      out->prior_shape[c] = (float)((once_tag[c] + LEXICON_BETA * p) / (once[c] + LEXICON_BETA));
    }
  }
  free(once);
  free(once_tag);
  return OT_OK;
}

float ot_lexicon_score(const ot_lexicon *lx, const char *piece, int units, int shape) {
  OT_ASSERT(units >= 1 && units <= lx->max_units && shape >= 0 && shape < OT_LEXICON_SHAPES);
  const float prior = lx->prior_shape ? lx->prior_shape[(units - 1) * OT_LEXICON_SHAPES + shape]
                                      : lx->prior[units - 1];
  char *const *at =
      lx->n ? bsearch(&piece, lx->text, (size_t)lx->n, sizeof *lx->text, cmp_str) : NULL;
  const float k = at ? (float)lx->tagged[at - lx->text] : 0.0f;
  const float n = at ? (float)lx->groups[at - lx->text] : 0.0f;
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
                     float *prior_shape, const char *what) {
  *out = (ot_lexicon){max_units, n, text, groups, tagged, tag_groups, tag_groups ? n_groups : 0,
                      prior, prior_shape};
  int bad = max_units < 1 || n < 0;
  for (int i = 0; i < n && !bad; i++)
    bad = groups[i] < 1 || tagged[i] < 0 || tagged[i] > groups[i] ||
          (tag_groups && (tag_groups[i] < tagged[i] || groups[i] > n_groups ||
                          tag_groups[i] - tagged[i] > n_groups - groups[i])) ||
          (i && strcmp(text[i - 1], text[i]) >= 0);
  for (int u = 0; u < max_units && !bad; u++) bad = !(prior[u] >= 0.0f && prior[u] <= 1.0f);
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
  memset(lx, 0, sizeof *lx);
}
