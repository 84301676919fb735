#include "ngram.h"

#include "ot_common.h"
#include "ot_hash.h"
#include "ot_kernels.h"
#include "tagnorm.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Bytes in the UTF-8 sequence a lead byte starts (the text is valid UTF-8
 * after ot_tagnorm). */
static int utf8_len(unsigned char c) { return c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4; }

int ot_ngram_counts(const char *title, int dim, float *tf) {
  memset(tf, 0, (size_t)dim * sizeof *tf);
  char *text = NULL;
  if (ot_tagnorm_dup(title ? title : "", &text) != OT_OK) return 0;
  size_t len = strlen(text);
  int *start = ot_xmalloc((len + 2) * sizeof *start), n_cp = 0; /* byte offset of each code point */
  for (size_t i = 0; i < len; i += (size_t)utf8_len((unsigned char)text[i])) start[n_cp++] = (int)i;
  start[n_cp] = (int)len;
  int grams = 0;
  for (int n = 1; n <= 3; n++)
    for (int i = 0; i + n <= n_cp; i++) {
      const char *g = text + start[i];
      size_t bytes = (size_t)(start[i + n] - start[i]);
      if (n == 1 && bytes == 1 && g[0] == ' ') continue;
      tf[ot_fnv1a64(g, bytes, OT_FNV64_INIT) % (uint64_t)dim] += 1.0f;
      grams++;
    }
  free(start);
  free(text);
  return grams;
}

void ot_ngram_idf(const ot_dataset *train, int dim, float *idf) {
  int64_t *df = ot_xcalloc((size_t)dim, sizeof *df), N = ot_dataset_count(train);
  float *tf = ot_xmalloc((size_t)dim * sizeof *tf);
  for (int64_t i = 0; i < N; i++) {
    int64_t local;
    ot_shard *s = ot_dataset_locate(train, i, &local);
    ot_ngram_counts(ot_shard_title(s, local), dim, tf);
    for (int b = 0; b < dim; b++) df[b] += tf[b] > 0.0f;
  }
  for (int b = 0; b < dim; b++) idf[b] = (float)(log((1.0 + (double)N) / (1.0 + (double)df[b])) + 1.0);
  free(tf);
  free(df);
}

void ot_ngram_vector(const char *title, const float *idf, int dim, float *out) {
  ot_ngram_counts(title, dim, out);
  if (idf)
    for (int b = 0; b < dim; b++) out[b] *= idf[b];
  ot_l2norm_forward(out, out, 1, dim); /* an empty title stays a zero row */
}
