#include "ot_retriever.h"

#include "ot_common.h"
#include "ot_fs.h"
#include "ot_fusion.h"
#include "ot_index.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Static_assert((int)OT_FUSION_MINMAX == (int)OT_NORM_MINMAX && (int)OT_FUSION_ZSCORE == (int)OT_NORM_ZSCORE &&
                   (int)OT_FUSION_SOFTMAX == (int)OT_NORM_SOFTMAX && (int)OT_FUSION_RANK == (int)OT_NORM_RANK,
               "ot_fusion normalisations follow the config enum");

#define MAX_SOURCES OT_RETRIEVER_MAX_SOURCES

struct ot_retriever {
  const ot_config *cfg;
  char index_dir[4200];
  int n_src;
  char *names[MAX_SOURCES];
  float weights[MAX_SOURCES];
  ot_index *ix[MAX_SOURCES];
  ot_fusion *fusion;
  /* neighbours of the current query per source: sims/rows [cap, k], count [cap] */
  int64_t nb_cap;
  float *nb_sims[MAX_SOURCES];
  int64_t *nb_rows[MAX_SOURCES];
  int *nb_n[MAX_SOURCES];
  /* FAISS results [n, kq] of one source */
  float *sims;
  int64_t *rows;
  size_t res_cap;
  /* the fused candidates */
  int64_t *off;
  int64_t c_n, c_cap;
  const char **tags;
  float *scores, *src;
  ot_fusion_cand *top;          /* [top_m] */
  const char *const **nb_tags;  /* [k] */
  int *nb_ntags;                /* [k] */
};

/* Sources from index.sources ("name=query:key,..."), their weights from
 * retrieve.weights ("name=w,..."; unlisted: 1; 0 leaves a source out). */
static int parse_sources(ot_retriever *r) {
  const ot_config *cfg = r->cfg;
  char *list = ot_xstrdup(cfg->index.sources), *save = NULL;
  int st = OT_OK;
  for (char *tok = strtok_r(list, ",", &save); tok && st == OT_OK; tok = strtok_r(NULL, ",", &save)) {
    while (*tok == ' ') tok++;
    char *eq = strchr(tok, '=');
    if (eq) *eq = '\0';
    int seen = 0; /* a source named twice would be searched twice and earn itself the consensus bonus */
    for (int s = 0; s < r->n_src && !seen; s++) seen = !strcmp(r->names[s], tok);
    if (!tok[0]) st = ot_fail(OT_EINVAL, "index.sources: empty source name in '%s'", cfg->index.sources);
    else if (seen) st = ot_fail(OT_EINVAL, "index.sources: source '%s' twice", tok);
    else if (r->n_src == MAX_SOURCES) st = ot_fail(OT_EINVAL, "index.sources: more than %d sources", MAX_SOURCES);
    else r->names[r->n_src] = ot_xstrdup(tok), r->weights[r->n_src++] = 1.0f;
  }
  free(list);
  list = ot_xstrdup(cfg->retrieve.weights);
  for (char *tok = strtok_r(list, ",", &save); tok && st == OT_OK; tok = strtok_r(NULL, ",", &save)) {
    while (*tok == ' ') tok++;
    char *eq = strchr(tok, '='), *end = NULL;
    double w = eq ? strtod(eq + 1, &end) : -1.0;
    if (eq) *eq = '\0';
    int s = 0;
    while (s < r->n_src && strcmp(r->names[s], tok)) s++;
    if (!eq || end == eq + 1 || *end || !(w >= 0.0) || !isfinite(w))
      st = ot_fail(OT_EINVAL, "retrieve.weights: '%s' is not name=weight (weight >= 0)", tok);
    else if (s == r->n_src)
      st = ot_fail(OT_EINVAL, "retrieve.weights: '%s' is not a source of index.sources ('%s')", tok,
                   cfg->index.sources);
    else r->weights[s] = (float)w;
  }
  free(list);
  /* drop the sources weighted 0 */
  int kept = 0;
  for (int s = 0; s < r->n_src; s++) {
    if (r->weights[s] > 0.0f) r->names[kept] = r->names[s], r->weights[kept++] = r->weights[s];
    else free(r->names[s]);
  }
  r->n_src = kept;
  if (st == OT_OK && !kept) st = ot_fail(OT_EINVAL, "retrieve.weights: every source has weight 0");
  return st;
}

int ot_retriever_open(ot_retriever **out, const ot_config *cfg) {
  ot_retriever *r = ot_xcalloc(1, sizeof *r);
  *out = r;
  r->cfg = cfg;
  int st;
  if ((st = ot_config_dir(cfg, "index.dir", "index", r->index_dir, sizeof r->index_dir))) return st;
  if ((st = parse_sources(r))) return st;
  const int set_nprobe = strcmp(ot_config_origin(cfg, "index.nprobe"), "default") != 0;
  for (int s = 0; s < r->n_src; s++) {
    if ((st = ot_index_open(&r->ix[s], r->index_dir, r->names[s]))) return st;
    if (set_nprobe && (st = ot_index_set_nprobe(r->ix[s], cfg->index.nprobe))) return st;
  }
  const int k = cfg->retrieve.k;
  r->top = ot_xmalloc((size_t)cfg->retrieve.top_m * sizeof *r->top);
  r->nb_tags = ot_xmalloc((size_t)k * sizeof *r->nb_tags);
  r->nb_ntags = ot_xmalloc((size_t)k * sizeof *r->nb_ntags);
  return ot_fusion_open(&r->fusion, r->n_src);
}

void ot_retriever_close(ot_retriever *r) {
  if (!r) return;
  for (int s = 0; s < r->n_src; s++) {
    ot_index_close(r->ix[s]);
    free(r->names[s]);
    free(r->nb_sims[s]), free(r->nb_rows[s]), free(r->nb_n[s]);
  }
  ot_fusion_close(r->fusion);
  free(r->sims), free(r->rows);
  free(r->off), free(r->tags), free(r->scores), free(r->src);
  free(r->top), free(r->nb_tags), free(r->nb_ntags);
  free(r);
}

int ot_retriever_n_sources(const ot_retriever *r) { return r->n_src; }
const char *ot_retriever_source_name(const ot_retriever *r, int s) { return r->names[s]; }
const char *const *ot_retriever_source_names(const ot_retriever *r) { return (const char *const *)r->names; }
float ot_retriever_weight(const ot_retriever *r, int s) { return r->weights[s]; }
const char *ot_retriever_query_vec(const ot_retriever *r, int s) { return ot_index_query_vec(r->ix[s]); }
int ot_retriever_dim(const ot_retriever *r, int s) { return ot_index_dim(r->ix[s]); }
int64_t ot_retriever_ntotal(const ot_retriever *r, int s) { return ot_index_ntotal(r->ix[s]); }
const char *ot_retriever_index_dir(const ot_retriever *r) { return r->index_dir; }
const char *ot_retriever_index_embeddings(const ot_retriever *r, int s) { return ot_index_embeddings(r->ix[s]); }

uint64_t ot_retriever_index_version(const ot_retriever *r, uint64_t h) {
  char meta[8400];
  for (int s = 0; s < r->n_src; s++) {
    snprintf(meta, sizeof meta, "%s/%s/meta.json", r->index_dir, r->names[s]);
    h = ot_fs_version_hash(meta, h);
  }
  return h;
}

/* One item's neighbours from source s, self and (same_split) its group left
 * out: the first k valid of the rows/sims returned for it. */
static int keep_valid(const ot_index *ix, const char *id, const char *group, int same_split,
                      const float *sims, const int64_t *rows, int kq, int k, float *out_sims,
                      int64_t *out_rows, int *exhausted) {
  int n = 0, seen = 0;
  for (int j = 0; j < kq && n < k; j++) {
    if (rows[j] < 0) break;
    seen++;
    if (!strcmp(ot_index_row_id(ix, rows[j]), id)) continue;
    if (same_split && group && group[0] && !strcmp(ot_index_row_group(ix, rows[j]), group)) continue;
    out_sims[n] = sims[j], out_rows[n] = rows[j], n++;
  }
  /* all kq were real rows and still fewer than k survived: ask for more */
  *exhausted = seen < kq;
  return n;
}

/* The first k valid neighbours in source s of every item into nb_*[s]. */
static int search_source(ot_retriever *r, int s, int64_t n, const float *q, const char *const *ids,
                         const char *const *groups, int same_split) {
  const int k = r->cfg->retrieve.k, dim = ot_index_dim(r->ix[s]);
  ot_index *ix = r->ix[s];
  /* room for the excluded self/group rows; items whose group is larger
   * than that are asked again below with a larger k */
  const int64_t ntotal = ot_index_ntotal(ix);
  const int kq = (int)(2 * k < ntotal ? 2 * k : ntotal > 0 ? ntotal : 1);
  if ((size_t)(n * kq) > r->res_cap) {
    r->res_cap = (size_t)(n * kq);
    r->sims = ot_xrealloc(r->sims, r->res_cap * sizeof *r->sims);
    r->rows = ot_xrealloc(r->rows, r->res_cap * sizeof *r->rows);
  }
  int st = n ? ot_index_search(ix, q, n, kq, r->sims, r->rows) : OT_OK;
  for (int64_t i = 0; i < n && st == OT_OK; i++) {
    r->nb_n[s][i] = 0;
    const float *qi = q + (size_t)i * dim;
    double norm = 0.0;
    for (int d = 0; d < dim; d++) norm += (double)qi[d] * qi[d];
    if (norm == 0.0) continue; /* no title (say): this source has nothing to say */
    const char *group = groups ? groups[i] : NULL;
    float *os = r->nb_sims[s] + (size_t)i * k;
    int64_t *orow = r->nb_rows[s] + (size_t)i * k;
    int exhausted, got = keep_valid(ix, ids[i], group, same_split, r->sims + (size_t)i * kq,
                                    r->rows + (size_t)i * kq, kq, k, os, orow, &exhausted);
    for (int64_t kk = 4 * (int64_t)k; got < k && !exhausted && kq < ntotal; kk *= 2) {
      int kb = (int)(kk < ntotal ? kk : ntotal);
      float *s2 = ot_xmalloc((size_t)kb * sizeof *s2);
      int64_t *r2 = ot_xmalloc((size_t)kb * sizeof *r2);
      st = ot_index_search(ix, qi, 1, kb, s2, r2);
      if (st == OT_OK) got = keep_valid(ix, ids[i], group, same_split, s2, r2, kb, k, os, orow, &exhausted);
      free(s2);
      free(r2);
      if (st || kb >= ntotal) break;
    }
    r->nb_n[s][i] = got;
  }
  return st;
}

static void cand_push(ot_retriever *r, const ot_fusion_cand *c) {
  if (r->c_n == r->c_cap) {
    r->c_cap = r->c_cap ? 2 * r->c_cap : 4096;
    r->tags = ot_xrealloc(r->tags, (size_t)r->c_cap * sizeof *r->tags);
    r->scores = ot_xrealloc(r->scores, (size_t)r->c_cap * sizeof *r->scores);
    r->src = ot_xrealloc(r->src, (size_t)r->c_cap * r->n_src * sizeof *r->src);
  }
  r->tags[r->c_n] = c->tag;
  r->scores[r->c_n] = c->score;
  memcpy(r->src + (size_t)r->c_n * r->n_src, c->source_scores, (size_t)r->n_src * sizeof *r->src);
  r->c_n++;
}

int ot_retriever_query(ot_retriever *r, int64_t n, const float *const *queries, const char *const *ids,
                       const char *const *groups, int same_split, ot_retrieved *out) {
  const ot_config *cfg = r->cfg;
  const int k = cfg->retrieve.k;
  if (n > r->nb_cap) {
    r->nb_cap = n;
    for (int s = 0; s < r->n_src; s++) {
      r->nb_sims[s] = ot_xrealloc(r->nb_sims[s], (size_t)n * k * sizeof(float));
      r->nb_rows[s] = ot_xrealloc(r->nb_rows[s], (size_t)n * k * sizeof(int64_t));
      r->nb_n[s] = ot_xrealloc(r->nb_n[s], (size_t)n * sizeof(int));
    }
    r->off = ot_xrealloc(r->off, (size_t)(n + 1) * sizeof *r->off);
  }
  if (!r->off) r->off = ot_xmalloc(sizeof *r->off);
  int st = OT_OK;
  for (int s = 0; s < r->n_src && st == OT_OK; s++)
    st = search_source(r, s, n, queries[s], ids, groups, same_split);
  r->c_n = 0;
  r->off[0] = 0;
  for (int64_t i = 0; i < n && st == OT_OK; i++) {
    ot_fusion_reset(r->fusion);
    for (int s = 0; s < r->n_src; s++) {
      int m = r->nb_n[s][i];
      for (int j = 0; j < m; j++)
        ot_index_row_tags(r->ix[s], r->nb_rows[s][(size_t)i * k + j], &r->nb_tags[j], &r->nb_ntags[j]);
      ot_fusion_add_source(r->fusion, s, r->nb_sims[s] + (size_t)i * k, m, r->nb_tags, r->nb_ntags,
                           cfg->retrieve.norm, (float)cfg->retrieve.temperature);
    }
    int nt = ot_fusion_top(r->fusion, r->weights, (float)cfg->retrieve.consensus, cfg->retrieve.top_m, r->top);
    for (int c = 0; c < nt; c++) cand_push(r, &r->top[c]);
    r->off[i + 1] = r->c_n;
  }
  out->n = st == OT_OK ? n : 0;
  out->off = r->off;
  out->tags = r->tags;
  out->scores = r->scores;
  out->source_scores = r->src;
  return st;
}
