/* Multi-source tag candidates for a batch of queries, the part of
 * ot-retrieve that does not touch its files: shared by ot-retrieve (queries
 * read from ot-embed's files) and by ot-tag's raw-manifest rag mode
 * (queries computed on the fly), so both give the same candidates.
 *
 * Sources are those of index.sources whose retrieve.weights entry is > 0
 * (unlisted: 1), each a FAISS index of index.dir (ot_index.h). Per item and
 * source: the first retrieve.k neighbours left after dropping the item
 * itself (by id) and, when same_split (the queries come from the split the
 * indexes were built from), every row of its group; a zero query vector
 * (no title, say) has no neighbours in that source. Then the neighbours'
 * tags are fused across sources (ops/ot_fusion.h: retrieve.norm,
 * temperature, weights, consensus) into the top retrieve.top_m. */
#ifndef OT_RETRIEVER_H
#define OT_RETRIEVER_H

#define OT_RETRIEVER_MAX_SOURCES 16 /* of index.sources */

#include "ot_config.h"

#include <stddef.h>
#include <stdint.h>

typedef struct ot_retriever ot_retriever;

/* Parse the sources and weights, open their indexes (index.dir, default
 * <train.dir>/index; index.nprobe applied when set) and the fusion. cfg is
 * borrowed and must outlive the handle. OT_EINVAL naming the key for bad
 * settings, the folder for a missing or unfinished index. Caller owns *out
 * (ot_retriever_close), also on error. */
int ot_retriever_open(ot_retriever **out, const ot_config *cfg);
void ot_retriever_close(ot_retriever *r); /* accepts NULL */

int ot_retriever_n_sources(const ot_retriever *r);
/* Source s (0 .. n_sources-1): its name, weight, query vector name (an
 * ot-embed vector: "visual", "title", "fused", "ngram"), dimension and
 * indexed rows. Strings owned by the retriever. */
const char *ot_retriever_source_name(const ot_retriever *r, int s);
const char *const *ot_retriever_source_names(const ot_retriever *r); /* [n_sources] */
float ot_retriever_weight(const ot_retriever *r, int s);
const char *ot_retriever_query_vec(const ot_retriever *r, int s);
int ot_retriever_dim(const ot_retriever *r, int s);
int64_t ot_retriever_ntotal(const ot_retriever *r, int s);
const char *ot_retriever_index_dir(const ot_retriever *r);
/* Source s's index: the version of the training embeddings it was built
 * from (ot_index_embeddings; NULL if not recorded). */
const char *ot_retriever_index_embeddings(const ot_retriever *r, int s);
/* h extended with the version of every source's index (its meta.json, which
 * every build and nprobe update rewrites last): for the fingerprints of
 * outputs made from its answers, whose paths and sizes stay when the
 * indexes are rebuilt. */
uint64_t ot_retriever_index_version(const ot_retriever *r, uint64_t h);

/* The candidates of one query call: item i's are rows off[i] .. off[i+1]-1
 * of tags / scores (fused, best first) / source_scores [rows, n_sources]
 * (per-source vote share, ot_fusion.h). The arrays belong to the retriever
 * and stay valid until its next query; the tag strings are the index rows'
 * and stay valid until ot_retriever_close. */
typedef struct {
  int64_t n;
  const int64_t *off;          /* [n+1], off[0] = 0 */
  const char *const *tags;
  const float *scores;
  const float *source_scores;
} ot_retrieved;

/* Candidates of n items. queries[s] holds the items' query vectors for
 * source s, [n, ot_retriever_dim(r, s)]; ids[n] name the items; groups[n]
 * (read only when same_split; NULL or "" entries: no group). OT_EIO when a
 * search fails. */
int ot_retriever_query(ot_retriever *r, int64_t n, const float *const *queries, const char *const *ids,
                       const char *const *groups, int same_split, ot_retrieved *out);

#endif
