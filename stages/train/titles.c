#include "titles.h"

#include "ot_common.h"
#include "tagnorm.h"

#include <stdlib.h>
#include <string.h>

struct ot_titles {
  const ot_bpe *bpe;
  int L;
  int32_t *tok; /* encode buffer */
  int cap;
};

void ot_titles_open(ot_titles **out, const ot_bpe *bpe, int L) {
  OT_ASSERT(L >= 1);
  ot_titles *t = ot_xcalloc(1, sizeof *t);
  t->bpe = bpe, t->L = L, t->cap = 256;
  t->tok = ot_xmalloc((size_t)t->cap * sizeof *t->tok);
  *out = t;
}

void ot_titles_close(ot_titles *t) {
  if (!t) return;
  free(t->tok);
  free(t);
}

int ot_titles_encode(ot_titles *t, const char *text, const int32_t **ids) {
  int n = 0;
  while (ot_bpe_encode(t->bpe, text, t->tok, t->cap, &n) != OT_OK) {
    OT_ASSERT(n > t->cap); /* encode only fails for lack of room */
    t->cap = n;
    t->tok = ot_xrealloc(t->tok, (size_t)n * sizeof *t->tok);
  }
  *ids = t->tok;
  return n;
}

static void pad(const ot_titles *t, int kept, int32_t *ids, uint8_t *mask) {
  for (int i = 0; i < t->L; i++) {
    if (i >= kept) ids[i] = OT_BPE_PAD;
    mask[i] = i < kept;
  }
}

int ot_titles_tokens(ot_titles *t, const char *title, int32_t *ids, uint8_t *mask) {
  const int32_t *tok;
  const int n = ot_titles_encode(t, title, &tok);
  const int kept = n < t->L ? n : t->L;
  memcpy(ids, tok, (size_t)kept * sizeof *ids);
  pad(t, kept, ids, mask);
  return kept;
}

int ot_titles_words(ot_titles *t, const char *title, int32_t *ids, uint8_t *mask) {
  char *norm = NULL;
  int kept = 0;
  if (ot_tagnorm_dup(title, &norm) == OT_OK) { /* invalid UTF-8: no words */
    for (char *w = norm, *end; *w && kept < t->L; w = *end ? end + 1 : end) {
      end = strchr(w, ' ');
      if (!end) end = w + strlen(w);
      const char save = *end;
      *end = '\0';
      const int32_t *tok;
      const int n = ot_titles_encode(t, w, &tok);
      *end = save;
      if (kept && n) ids[kept++] = OT_BPE_SEP;
      for (int i = 0; i < n && kept < t->L; i++) ids[kept++] = tok[i];
    }
  }
  free(norm);
  pad(t, kept, ids, mask);
  return kept;
}
