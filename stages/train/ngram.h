/* A title as hashed character n-grams: with TF-IDF weights the "ngram"
 * retrieval vector — a retrieval source that needs no training (the TF-IDF
 * kNN reference) — and with counts alone the taggers' model.title_ngram
 * input. Works for any script since n-grams are counted in Unicode code
 * points, not bytes or words.
 *
 *   text    the title after ot_tagnorm (NFKC + case folding + white space)
 *   grams   every run of 1, 2 and 3 consecutive code points, white space
 *           included (it marks word boundaries) except the lone " "
 *   bucket  FNV-1a 64 of the gram's UTF-8 bytes mod dim
 *   tf      occurrences per bucket
 *   idf     ln((1 + N) / (1 + df)) + 1 over the N titles of the training
 *           split, df = titles with at least one gram in the bucket
 *   vector  tf * idf (tf alone without an idf), L2-normalised (all zero for
 *           a title without grams)
 */
#ifndef OT_NGRAM_H
#define OT_NGRAM_H

#include "ot_dataset.h"

#include <stdint.h>

/* Bucket counts of `title` (NULL = "") into tf[dim] (overwritten). Returns
 * the number of grams. Invalid UTF-8 gives no grams: one odd title is no
 * reason to stop a job. */
int ot_ngram_counts(const char *title, int dim, float *tf);
/* idf[dim] from every title of `train`. */
void ot_ngram_idf(const ot_dataset *train, int dim, float *idf);
/* The L2-normalised TF-IDF vector of `title` into out[dim]; idf NULL: of
 * the counts alone. */
void ot_ngram_vector(const char *title, const float *idf, int dim, float *out);

#endif
