/* ot-index-query: search an index built by ot-index with a split's query
 * vectors; report queries/s and recall against exact search.
 *
 *   ot-index-query INDEX_DIR SOURCE EMBED_DIR SPLIT [--k K] [--nprobe 1,8,32]
 *                  [--max-queries N] [--threads T] [--truth FILE] [--out FILE]
 *
 * Queries are the first N items of EMBED_DIR/SPLIT/, vector ot_index_query_vec.
 * --truth FILE: exact inner-product top-k over EMBED_DIR/train/ (the index's
 * key vectors, brute force with a FAISS Flat index); computed once and kept in
 * FILE (int64 [N,K] rows, raw), then recall is reported per nprobe:
 *   recall@K   = mean |approx top-K ∩ exact top-K| / K
 *   1-recall@K = fraction of queries whose exact nearest row is in the top-K
 * --out FILE: rows (int64 [N,K]) then sims (float32 [N,K]) of the last nprobe,
 * raw, for comparison with another searcher.
 * One JSON line per nprobe on stdout. */
#include "ot_common.h"
#include "ot_emb.h"
#include "ot_fs.h"
#include "ot_index.h"

#include <cblas.h>
#include <faiss/c_api/Index_c.h>
#include <faiss/c_api/error_c.h>
#include <faiss/c_api/index_factory_c.h>
#include <getopt.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The first n rows of vector `vec` over a split's files into out [n, dim]. */
static int read_split(const ot_emb_set *set, const char *vec, int dim, int64_t n, float *out,
                      void (*sink)(void *ctx, const float *x, int64_t m), void *ctx) {
  int64_t got = 0;
  int st = OT_OK;
  for (int f = 0; f < ot_emb_set_files(set) && got < n && st == OT_OK; f++) {
    ot_emb *e = NULL;
    if ((st = ot_emb_open(&e, ot_emb_set_file_path(set, f)))) break;
    if (ot_emb_dim(e, vec) != dim)
      st = ot_fail(OT_EINVAL, "%s: vector '%s' has dim %d, the index %d", ot_emb_set_file_path(set, f), vec,
                   ot_emb_dim(e, vec), dim);
    for (int64_t at = 0; st == OT_OK && at < ot_emb_count(e) && got < n; at += 65536) {
      int64_t m = ot_emb_count(e) - at < 65536 ? ot_emb_count(e) - at : 65536;
      if (m > n - got) m = n - got;
      float *dst = sink ? out : out + (size_t)got * dim;
      if ((st = ot_emb_read(e, vec, at, m, dst))) break;
      if (sink) sink(ctx, dst, m);
      got += m;
    }
    ot_emb_close(e);
  }
  return st;
}

static void add_to_flat(void *ctx, const float *x, int64_t m) {
  if (faiss_Index_add((FaissIndex *)ctx, m, x)) {
    fprintf(stderr, "ot-index-query: exact index: %s\n", faiss_get_last_error());
    exit(1);
  }
}

/* Exact top-k rows of the queries over EMBED_DIR/train/<key>, cached in path. */
static int exact_truth(const char *path, const char *embed_dir, const char *key, int dim, const float *q,
                       int64_t nq, int k, int64_t *truth) {
  char *data = NULL;
  size_t len = 0;
  if (ot_fs_exists(path) && ot_fs_read_all(path, &data, &len) == OT_OK && len == (size_t)(nq * k) * sizeof *truth) {
    memcpy(truth, data, len);
    free(data);
    fprintf(stderr, "ot-index-query: exact top-%d from %s\n", k, path);
    return OT_OK;
  }
  free(data);
  ot_emb_set *train = NULL;
  int st = ot_emb_set_open(&train, embed_dir, "train");
  if (st) return st;
  FaissIndex *flat = NULL;
  if (faiss_index_factory(&flat, dim, "Flat", METRIC_INNER_PRODUCT)) {
    ot_emb_set_close(train);
    return ot_fail(OT_EIO, "Flat index: %s", faiss_get_last_error());
  }
  double t = ot_now();
  float *block = malloc((size_t)65536 * dim * sizeof *block);
  st = read_split(train, key, dim, ot_emb_set_count(train), block, add_to_flat, flat);
  free(block);
  float *sims = malloc((size_t)(nq * k) * sizeof *sims);
  if (!st && faiss_Index_search(flat, nq, q, k, sims, truth))
    st = ot_fail(OT_EIO, "exact search: %s", faiss_get_last_error());
  if (!st) {
    fprintf(stderr, "ot-index-query: exact top-%d of %lld queries over %lld vectors in %.1f s\n", k, (long long)nq,
            (long long)faiss_Index_ntotal(flat), ot_now() - t);
    st = ot_fs_write_atomic(path, truth, (size_t)(nq * k) * sizeof *truth);
  }
  free(sims);
  faiss_Index_free(flat);
  ot_emb_set_close(train);
  return st;
}

int main(int argc, char **argv) {
  int k = 10, threads = 1;
  int64_t max_q = 10000;
  char nprobes[256] = "", truth_path[4096] = "", out_path[4096] = "";
  static const struct option opts[] = {{"k", 1, 0, 'k'},       {"nprobe", 1, 0, 'p'}, {"max-queries", 1, 0, 'n'},
                                       {"threads", 1, 0, 't'}, {"truth", 1, 0, 'g'},  {"out", 1, 0, 'o'},
                                       {"help", 0, 0, 'h'},    {0, 0, 0, 0}};
  int o;
  while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (o) {
    case 'k': k = atoi(optarg); break;
    case 'p': snprintf(nprobes, sizeof nprobes, "%s", optarg); break;
    case 'n': max_q = atoll(optarg); break;
    case 't': threads = atoi(optarg); break;
    case 'g': snprintf(truth_path, sizeof truth_path, "%s", optarg); break;
    case 'o': snprintf(out_path, sizeof out_path, "%s", optarg); break;
    default:
      fprintf(o == 'h' ? stdout : stderr,
              "usage: ot-index-query INDEX_DIR SOURCE EMBED_DIR SPLIT [--k K] [--nprobe 1,8,32]\n"
              "                      [--max-queries N] [--threads T] [--truth FILE] [--out FILE]\n\n"
              "Search ot-index's index of SOURCE in INDEX_DIR with the first N items of\n"
              "EMBED_DIR/SPLIT/ as queries; one JSON line per nprobe on stdout (queries/s, and\n"
              "recall@K and 1-recall@K against exact search when --truth is given).\n\n"
              "  --k K            neighbours per query (10)\n"
              "  --nprobe LIST    IVF cells to visit, comma-separated, each measured (the index's own)\n"
              "  --max-queries N  at most N queries (10000)\n"
              "  --threads T      FAISS / OpenBLAS threads (1)\n"
              "  --truth FILE     exact top-K over EMBED_DIR/train/, computed once and kept in FILE\n"
              "  --out FILE       the last nprobe's rows then scores, raw int64 / float32 [N,K]\n");
      return o == 'h' ? 0 : 2;
    }
  }
  if (optind != argc - 4 || k < 1 || threads < 1 || max_q < 1) {
    fprintf(stderr, "ot-index-query: bad arguments (see --help)\n");
    return 2;
  }
  const char *dir = argv[optind], *source = argv[optind + 1], *embed_dir = argv[optind + 2], *split = argv[optind + 3];
  omp_set_num_threads(threads);
  openblas_set_num_threads(threads);

  double t = ot_now();
  ot_index *ix = NULL;
  ot_emb_set *qs = NULL;
  int st = ot_index_open(&ix, dir, source);
  if (!st) st = ot_emb_set_open(&qs, embed_dir, split);
  int64_t nq = 0;
  float *q = NULL;
  if (!st) {
    nq = ot_emb_set_count(qs) < max_q ? ot_emb_set_count(qs) : max_q;
    q = ot_xmalloc((size_t)nq * ot_index_dim(ix) * sizeof *q + 1);
    st = read_split(qs, ot_index_query_vec(ix), ot_index_dim(ix), nq, q, NULL, NULL);
  }
  if (!st)
    fprintf(stderr, "ot-index-query: %s/%s (%lld vectors) and %lld queries loaded in %.1f s\n", dir, source,
            (long long)ot_index_ntotal(ix), (long long)nq, ot_now() - t);
  int64_t *truth = NULL;
  if (!st && truth_path[0]) {
    truth = ot_xmalloc((size_t)(nq * k) * sizeof *truth + 1);
    st = exact_truth(truth_path, embed_dir, ot_index_key_vec(ix), ot_index_dim(ix), q, nq, k, truth);
  }
  float *sims = st ? NULL : ot_xmalloc((size_t)(nq * k) * sizeof *sims + 1);
  int64_t *rows = st ? NULL : ot_xmalloc((size_t)(nq * k) * sizeof *rows + 1);
  char *save = NULL, *list = ot_xstrdup(nprobes[0] ? nprobes : "0");
  for (char *tok = strtok_r(list, ",", &save); tok && !st; tok = strtok_r(NULL, ",", &save)) {
    int np = atoi(tok);
    if (np > 0 && (st = ot_index_set_nprobe(ix, np))) break;
    t = ot_now();
    if ((st = ot_index_search(ix, q, nq, k, sims, rows))) break;
    double secs = ot_now() - t;
    printf("{\"source\": \"%s\", \"nprobe\": %d, \"queries\": %lld, \"k\": %d, \"seconds\": %.4f, \"qps\": %.1f", source,
           np, (long long)nq, k, secs, (double)nq / secs);
    if (truth) {
      int64_t hit = 0, top1 = 0;
      for (int64_t i = 0; i < nq; i++)
        for (int a = 0; a < k; a++) {
          for (int b = 0; b < k; b++)
            if (rows[i * k + a] >= 0 && rows[i * k + a] == truth[i * k + b]) hit++;
          if (rows[i * k + a] == truth[i * k]) top1++;
        }
      printf(", \"recall_at_k\": %.4f, \"one_recall_at_k\": %.4f", (double)hit / (double)(nq * k),
             (double)top1 / (double)nq);
    }
    printf("}\n");
    fflush(stdout);
  }
  free(list);
  if (!st && out_path[0]) {
    size_t nr = (size_t)(nq * k) * sizeof *rows, ns = (size_t)(nq * k) * sizeof *sims;
    char *buf = ot_xmalloc(nr + ns + 1);
    memcpy(buf, rows, nr);
    memcpy(buf + nr, sims, ns);
    st = ot_fs_write_atomic(out_path, buf, nr + ns);
    free(buf);
  }
  if (st) fprintf(stderr, "ot-index-query: %s\n", ot_errmsg());
  free(q), free(truth), free(sims), free(rows);
  ot_emb_set_close(qs);
  ot_index_close(ix);
  return ot_exit_code(st);
}
