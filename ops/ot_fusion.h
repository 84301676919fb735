/* Multi-source tag recommendation (seed §1): the k neighbours one query got
 * from each retrieval source become tag scores, fused across sources.
 *
 * 1. Per source, the neighbours' similarities s_0 >= ... >= s_{n-1} become
 *    non-negative weights w_j (ot_fusion_normalize):
 *      minmax   w = (s - min) / (max - min); all equal: w = 1
 *      zscore   w = max(0, (s - mean) / std) (population std); std = 0: w = 1
 *      softmax  w = exp((s - max) / T)
 *      rank     w = (n - r) / n for the neighbour of rank r = 0..n-1 (linear:
 *               the best gets 1, the last 1/n; ties in s share nothing, the
 *               order given is the rank)
 * 2. A tag's score in source s is its weighted vote share
 *      t_s(tag) = sum of w_j over the neighbours j carrying the tag / sum of w_j
 *    in [0,1]. Sum, not max: kNN tagging lives on agreement — a tag carried by
 *    10 of 32 neighbours must beat one carried by a single neighbour of about
 *    the same similarity, which max cannot see. Dividing by sum w makes every
 *    normalisation produce scores on the same [0,1] scale, so weights and the
 *    consensus term mean the same thing whatever the normalisation.
 * 3. Across sources, with weights W_s > 0 (sources never added count as
 *    t_s = 0):
 *      fused(tag) = sum_s W_s t_s(tag) / sum_s W_s + consensus * (m(tag) - 1)
 *    where m(tag) = number of sources with t_s(tag) > 0 (sources that
 *    proposed it). Without consensus fused is in [0,1]; the maximum is
 *    1 + consensus * (n_sources - 1).
 * 4. Top-M by fused score descending, ties broken by tag text (strcmp
 *    ascending), so the result never depends on hash or insertion order.
 *
 * Pure numerics: tag strings are borrowed from the caller (they must outlive
 * the ot_fusion_top call of the same query). */
#ifndef OT_FUSION_H
#define OT_FUSION_H

/* Same values as ot_cfg_norm (config retrieve.norm: "minmax|zscore|softmax|rank"). */
enum { OT_FUSION_MINMAX = 0, OT_FUSION_ZSCORE = 1, OT_FUSION_SOFTMAX = 2, OT_FUSION_RANK = 3 };

/* w[n] from sims[n] (neighbours best first) with normalisation `norm`;
 * temperature is used by softmax only (> 0). n = 0 does nothing. */
void ot_fusion_normalize(float *w, const float *sims, int n, int norm, float temperature);

typedef struct ot_fusion ot_fusion;

typedef struct {
  const char *tag;            /* borrowed from the caller's neighbour tags */
  float score;                /* fused */
  const float *source_scores; /* [n_sources] t_s(tag); valid until the next reset */
  int n_sources_proposing;    /* m(tag) */
} ot_fusion_cand;

/* An accumulator for one query at a time over n_sources sources. Caller owns
 * *out (ot_fusion_close). */
int ot_fusion_open(ot_fusion **out, int n_sources);
void ot_fusion_close(ot_fusion *f); /* accepts NULL */
/* Forget the previous query. */
void ot_fusion_reset(ot_fusion *f);
/* Source s's n neighbours (best first): sims[n]; neighbour j carries
 * n_tags[j] tags tags[j][0..n_tags[j]-1] (a tag repeated within one
 * neighbour counts once). Each source is added at most once per query. */
void ot_fusion_add_source(ot_fusion *f, int s, const float *sims, int n, const char *const *const *tags,
                          const int *n_tags, int norm, float temperature);
/* The top_m tags of the query (see the header comment for the formula) into
 * out[0..returned-1]; weights[n_sources] (> 0). Returns how many (<= top_m). */
int ot_fusion_top(ot_fusion *f, const float *weights, float consensus, int top_m, ot_fusion_cand *out);

#endif
