/* The title lexicon's build (stages/train/lexicon.c) on a synthetic split of
 * many titles: wall time, peak memory during the build and what the lexicon
 * keeps. Under mpirun the ranks count together (ot_lexicon_build is
 * collective); rank 0 prints one line, with the largest of each figure over
 * the ranks:
 *   ranks <P> items <n> groups <g> pieces <text> once <hashed> build_s <s>
 *   build_peak_mb <MB> kept_mb <MB>
 * build_peak_mb: the process's peak RSS (VmHWM) during the build minus its
 * RSS before; kept_mb: RSS after the build minus before (the lexicon as it
 * stays in memory, allocator overhead included).
 *
 * The split is written to DIR once (a one-shard split, frames 1 x 2 x 2)
 * and reused when DIR/index.json exists, so two builds of the program (two
 * versions of lexicon.c) can be measured on the same titles. Titles are
 * words drawn from a Zipf law (exponent 1.1) over a vocabulary; with -z
 * every word is 1-3 CJK characters and a title has no spaces. Each item's
 * tags are half words of its title, half words of the vocabulary.
 *
 * Usage: [mpirun -np P] bench_lexicon [-n items] [-g items_per_group] [-l words_per_title]
 *                      [-v vocab] [-t tags] [-u max_units] [-z] DIR */
#include "../bench_util.h"
#include "lexicon.h"
#include "ot_common.h"
#include "ot_dataset.h"
#include "ot_fs.h"
#include "ot_mpi.h"
#include "ot_shard.h"

#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Word w of the vocabulary: latin letters, or 1-3 CJK characters. */
static void word(char *out, int w, int cjk) {
  if (!cjk) {
    int n = 0;
    do out[n++] = (char)('a' + w % 26), w /= 26;
    while (w);
    out[n] = 0;
    return;
  }
  int chars = 1 + w % 3, n = 0;
  for (int c = 0; c < chars; c++, w /= 3500) {
    uint32_t cp = 0x4E00 + (uint32_t)(w % 3500) * 5;
    out[n++] = (char)(0xE0 | (cp >> 12));
    out[n++] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[n++] = (char)(0x80 | (cp & 0x3F));
  }
  out[n] = 0;
}

static int write_split(const char *dir, int64_t items, int per_group, int words, int vocab,
                       int tags, int cjk) {
  double *cdf = bench_zipf_cdf(vocab, 1.1);
  ot_fs_mkdirs(dir);
  char path[1024];
  snprintf(path, sizeof path, "%s/shard-000000.h5", dir);
  ot_shard_writer *w = NULL;
  int st = ot_shard_create(&w, path, 1, 2, 2, 0, 1);
  uint8_t frames[12] = {0};
  char title[4096], id[32], group[32], tagbuf[16][64];
  char *tagp[16];
  int title_words[64];
  for (int64_t i = 0; i < items && st == OT_OK; i++) {
    size_t n = 0;
    for (int k = 0; k < words; k++) {
      char wd[16];
      word(wd, title_words[k] = bench_zipf(cdf, vocab), cjk);
      n += (size_t)snprintf(title + n, sizeof title - n, "%s%s", k && !cjk ? " " : "", wd);
    }
    for (int k = 0; k < tags; k++) {
      int from_title = bench_uniform() < 0.5;
      word(tagbuf[k], from_title ? title_words[(int)(bench_uniform() * words)] : bench_zipf(cdf, vocab), cjk);
      tagp[k] = tagbuf[k];
    }
    snprintf(id, sizeof id, "i%lld", (long long)i);
    snprintf(group, sizeof group, "g%lld", (long long)(i / per_group));
    ot_item it = {.id = id, .path = "p", .title = title, .group = group, .tags = tagp,
                  .n_tags = tags, .has_tags = 1, .line = i + 1};
    st = ot_shard_append(w, &it, frames, NULL);
  }
  free(cdf);
  if (st) {
    ot_shard_abort(w);
    return st;
  }
  if ((st = ot_shard_commit(w))) return st;
  snprintf(path, sizeof path, "%s/index.json", dir);
  const char *idx = "{\"shards\": [{\"shard\": \"shard-000000.h5\"}]}";
  return ot_fs_write_atomic(path, idx, strlen(idx));
}

int main(int argc, char **argv) {
  if (ot_mpi_init(&argc, &argv) != OT_OK) return 1;
  int64_t items = 100000;
  int per_group = 1, words = 10, vocab = 50000, tags = 8, max_units = 3, cjk = 0, c;
  while ((c = getopt(argc, argv, "n:g:l:v:t:u:z")) != -1) {
    switch (c) {
      case 'n': items = atoll(optarg); break;
      case 'g': per_group = atoi(optarg); break;
      case 'l': words = atoi(optarg); break;
      case 'v': vocab = atoi(optarg); break;
      case 't': tags = atoi(optarg); break;
      case 'u': max_units = atoi(optarg); break;
      case 'z': cjk = 1; break;
      default: optind = argc + 1;
    }
  }
  if (optind != argc - 1 || items < 1 || per_group < 1 || words < 1 || words > 64 || vocab < 1 ||
      tags < 0 || tags > 16 || max_units < 1) {
    fprintf(stderr, "usage: %s [-n items] [-g items_per_group] [-l words_per_title (1-64)] "
                    "[-v vocab] [-t tags (0-16)] [-u max_units] [-z] DIR\n", argv[0]);
    ot_mpi_finalize();
    return 2;
  }
  const char *dir = argv[optind];
  char index[1024];
  snprintf(index, sizeof index, "%s/index.json", dir);
  int st = ot_mpi_rank() == 0 && access(index, F_OK) ? write_split(dir, items, per_group, words, vocab, tags, cjk)
                                                     : OT_OK;
  st = ot_mpi_agree(st);
  ot_dataset *d = NULL;
  if (st == OT_OK) st = ot_mpi_agree(ot_dataset_open(&d, dir));
  ot_lexicon lx;
  memset(&lx, 0, sizeof lx);
  const long rss0 = bench_status_kb("VmRSS");
  bench_reset_peak();
  MPI_Barrier(MPI_COMM_WORLD);
  const double t0 = ot_now();
  if (st == OT_OK) st = ot_lexicon_build(&lx, d, max_units);
  double fig[3] = {ot_now() - t0, 0, 0};
  fig[1] = (double)(bench_status_kb("VmHWM") - rss0) / 1024.0;
  fig[2] = (double)(bench_status_kb("VmRSS") - rss0) / 1024.0;
  MPI_Allreduce(MPI_IN_PLACE, fig, 3, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  if (st) {
    if (ot_mpi_rank() == 0) fprintf(stderr, "bench_lexicon: %s\n", ot_errmsg());
    ot_dataset_close(d);
    ot_mpi_finalize();
    return 1;
  }
  if (ot_mpi_rank() == 0)
    printf("ranks %d items %lld groups %lld pieces %d once %lld build_s %.2f build_peak_mb %.1f kept_mb %.1f\n",
           ot_mpi_size(), (long long)ot_dataset_count(d), (long long)lx.n_groups, lx.n, (long long)lx.n_once,
           fig[0], fig[1], fig[2]);
  ot_lexicon_free(&lx);
  ot_dataset_close(d);
  ot_mpi_finalize();
  return 0;
}
