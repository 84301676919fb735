/* Loading a split's retrieved candidates (ot_cand_load_split, what every
 * rank of a rag training does; with -p, ot_cand_load_split_part, what
 * ot-tag does per shard) on synthetic candidate files: wall time and
 * memory. One line:
 *   items <n> candidates <c> load_s <s> load_peak_mb <MB> kept_mb <MB>
 * load_peak_mb: peak RSS (VmHWM) during the load minus the RSS before;
 * kept_mb: RSS after it minus before (the set as it stays in memory).
 *
 * The split is written to DIR/train once (files of 100k items, tags drawn
 * from a Zipf law over a 50k-tag vocabulary, 4 sources) and reused when
 * its index.json exists, so two builds of the program can be measured on
 * the same files.
 *
 * Usage: bench_cand [-n items] [-m candidates_per_item] [-p part] [-r reads] DIR */
#include "../bench_util.h"
#include "ot_cand.h"
#include "ot_common.h"
#include "ot_fs.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FILE_ITEMS 100000

static int write_split(const char *dir, int64_t items, int m) {
  char split[1024], path[1100];
  snprintf(split, sizeof split, "%s/train", dir);
  ot_fs_mkdirs(split);
  const int vocab = 50000, n_src = 4;
  double *cdf = bench_zipf_cdf(vocab, 1.0);
  const char *src_names[4] = {"video", "title", "fused", "ngram"};
  const int n_files = (int)((items + FILE_ITEMS - 1) / FILE_ITEMS);
  char **paths = ot_xcalloc((size_t)n_files, sizeof *paths);
  int64_t *counts = ot_xcalloc((size_t)n_files, sizeof *counts);
  int st = OT_OK;
  for (int f = 0; f < n_files && st == OT_OK; f++) {
    const int64_t n = items - (int64_t)f * FILE_ITEMS < FILE_ITEMS ? items - (int64_t)f * FILE_ITEMS : FILE_ITEMS;
    char **ids = ot_xmalloc((size_t)n * sizeof *ids), **tags = ot_xmalloc((size_t)n * m * sizeof *tags);
    int64_t *off = ot_xmalloc((size_t)(n + 1) * sizeof *off);
    float *score = ot_xmalloc((size_t)n * m * sizeof *score), *src = ot_xmalloc((size_t)n * m * n_src * sizeof *src);
    for (int64_t i = 0; i < n; i++) {
      char buf[32];
      snprintf(buf, sizeof buf, "item-%lld", (long long)(f * (int64_t)FILE_ITEMS + i));
      ids[i] = ot_xstrdup(buf);
      off[i] = i * m;
      for (int k = 0; k < m; k++) {
        snprintf(buf, sizeof buf, "tag%d", bench_zipf(cdf, vocab));
        tags[i * m + k] = ot_xstrdup(buf);
        score[i * m + k] = 1.0f - (float)k / (float)m;
        for (int j = 0; j < n_src; j++) src[(i * m + k) * n_src + j] = (float)bench_uniform();
      }
    }
    off[n] = n * m;
    snprintf(path, sizeof path, "cand-%06d.h5", f);
    paths[f] = ot_xstrdup(path), counts[f] = n;
    snprintf(path, sizeof path, "%s/cand-%06d.h5", split, f);
    st = ot_cand_write(path, n, (const char *const *)ids, off, (const char *const *)tags, score, n_src,
                       src_names, src);
    for (int64_t i = 0; i < n; i++) free(ids[i]);
    for (int64_t i = 0; i < n * m; i++) free(tags[i]);
    free(ids), free(tags), free(off), free(score), free(src);
  }
  if (st == OT_OK)
    st = ot_cand_write_index(dir, "train", n_src, src_names, n_files, (const char *const *)paths, counts);
  for (int f = 0; f < n_files; f++) free(paths[f]);
  free(paths), free(counts), free(cdf);
  return st;
}

/* -r: `reads` items at random through ot_cand_reader (what training does):
 * time per read and memory. One line:
 *   reads <n> files <f> us_per_read <us> kept_mb <MB> */
static int read_random(const char *dir, int64_t items, int reads) {
  const long rss0 = bench_status_kb("VmRSS");
  ot_cand_reader *r = NULL;
  int st = ot_cand_reader_open(&r, dir, "train");
  uint64_t x = 0x9E3779B97F4A7C15ull;
  const double t0 = ot_now();
  for (int k = 0; k < reads && st == OT_OK; k++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    const int64_t item = (int64_t)(x % (uint64_t)items);
    char id[32];
    snprintf(id, sizeof id, "item-%lld", (long long)item);
    const char *const *tags;
    const float *scores;
    int n;
    st = ot_cand_reader_get(r, (int)(item / FILE_ITEMS), item % FILE_ITEMS, id, &tags, &scores, &n);
  }
  const double dt = ot_now() - t0;
  if (st) {
    fprintf(stderr, "bench_cand: %s\n", ot_errmsg());
    return 1;
  }
  printf("reads %d files %d us_per_read %.1f kept_mb %.1f\n", reads, ot_cand_reader_files(r),
         dt / reads * 1e6, (double)(bench_status_kb("VmRSS") - rss0) / 1024.0);
  ot_cand_reader_close(r);
  return 0;
}

int main(int argc, char **argv) {
  int64_t items = 1000000;
  int m = 32, part = -1, reads = 0, c;
  while ((c = getopt(argc, argv, "n:m:p:r:")) != -1) {
    switch (c) {
      case 'n': items = atoll(optarg); break;
      case 'm': m = atoi(optarg); break;
      case 'p': part = atoi(optarg); break;
      case 'r': reads = atoi(optarg); break;
      default: optind = argc + 1;
    }
  }
  if (optind != argc - 1 || items < 1 || m < 1) {
    fprintf(stderr, "usage: %s [-n items] [-m candidates_per_item] [-p part] [-r reads] DIR\n", argv[0]);
    return 2;
  }
  const char *dir = argv[optind];
  char index[1024];
  snprintf(index, sizeof index, "%s/train/index.json", dir);
  int st = access(index, F_OK) ? write_split(dir, items, m) : OT_OK;
  if (st == OT_OK && reads > 0) return read_random(dir, items, reads);
  ot_cand_set *set = NULL;
  const long rss0 = bench_status_kb("VmRSS");
  bench_reset_peak();
  const double t0 = ot_now();
  if (st == OT_OK)
    st = part < 0 ? ot_cand_load_split(&set, dir, "train")
                  : ot_cand_load_split_part(&set, dir, "train", part);
  const double dt = ot_now() - t0;
  const long peak = bench_status_kb("VmHWM"), rss1 = bench_status_kb("VmRSS");
  if (st) {
    fprintf(stderr, "bench_cand: %s\n", ot_errmsg());
    return 1;
  }
  int64_t cands = 0;
  for (int64_t i = 0; i < ot_cand_count(set); i++) {
    int n;
    ot_cand_item(set, i, NULL, NULL, NULL, NULL, &n);
    cands += n;
  }
  printf("items %lld candidates %lld load_s %.2f load_peak_mb %.1f kept_mb %.1f\n",
         (long long)ot_cand_count(set), (long long)cands, dt, (double)(peak - rss0) / 1024.0,
         (double)(rss1 - rss0) / 1024.0);
  ot_cand_close(set);
  return 0;
}
