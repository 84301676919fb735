/* The title lexicon counted by the ranks together (ot_lexicon_build under
 * mpirun: each rank reads its share of the titles, the counts meet by hash
 * range) against the one each rank counts alone: every field equal, for
 * chunks from a handful of sightings up, on a split whose groups are
 * scattered over the file and of uneven sizes, so the ranks' shares end
 * inside what would be a group. Then a title that is not UTF-8, in the last
 * rank's share: every rank fails with the message naming that item. And a
 * split of two items, so that some ranks' shares are empty.
 *
 * Usage: mpirun -np N test_lexicon_mpi DIR (rank 0 writes the splits in
 * DIR; N = 1 checks the lone path). */
#include "lexicon.h"
#include "ot_common.h"
#include "ot_dataset.h"
#include "ot_mpi.h"
#include "ot_test.h"
#include "units_split.h"

#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ITEMS 900
#define GROUPS 260

static uint32_t rng = 2024;
static uint32_t next(uint32_t n) { return ((rng = rng * 1103515245u + 12345u) >> 16) % n; }

/* Titles of 1-5 words (latin, CJK, a "flag:" prefix now and then), tags
 * from the title, from the vocabulary (some spelled in capitals) or never
 * in any title; a group drawn at random per item, a tenth with none (the id
 * is its group). `bad`: one more item, 'zz-bad' (last in group order), with
 * a title that is not UTF-8. */
static void write_split(const char *dir, int items, int bad) {
  static const char *const vocab[] = {"red",  "apple", "car",  "green", "城市", "黄昏", "猫",   "sun",
                                      "moon", "big",   "坏蛋", "超级",  "man",  "woman", "cook", "flag"};
  ot_shard_writer *w = units_split_open(dir, 1, 2, 2);
  uint8_t frames[12] = {0}; /* 1 frame of 2 x 2 RGB */
  for (int i = 0; i < items + bad; i++) {
    char title[256] = "", id[16], group[16], tag[4][32];
    char *tags[4];
    if (next(8) == 0) strcat(title, "flag: ");
    const int words = 1 + (int)next(5), nt = (int)next(4);
    const char *used[5];
    for (int k = 0; k < words; k++) {
      used[k] = vocab[next(16)];
      if (k) strcat(title, next(4) ? " " : "");
      strcat(title, used[k]);
    }
    for (int k = 0; k < nt; k++) {
      const uint32_t from = next(3);
      if (from == 0) snprintf(tag[k], sizeof tag[k], "%s", used[next((uint32_t)words)]);
      else if (from == 1) snprintf(tag[k], sizeof tag[k], "%s", next(2) ? "Apple" : vocab[next(16)]);
      else snprintf(tag[k], sizeof tag[k], "only-tag-%u", next(40));
      tags[k] = tag[k];
    }
    snprintf(id, sizeof id, "i%04d", i);
    if (next(10)) snprintf(group, sizeof group, "g%03u", next(GROUPS));
    else group[0] = '\0';
    ot_item it = {.id = id, .path = "p", .title = title, .group = group, .tags = tags, .n_tags = nt,
                  .has_tags = 1, .line = i + 1};
    if (i == items) it.id = "zz-bad", it.group = "", it.title = "bad \xff title";
    CHECK(ot_shard_append(w, &it, frames, NULL) == OT_OK);
  }
  units_split_close(dir, w);
}

static int same_lexicon(const ot_lexicon *a, const ot_lexicon *b) {
  if (a->max_units != b->max_units || a->n != b->n || a->n_groups != b->n_groups || a->n_once != b->n_once)
    return 0;
  const size_t shapes = (size_t)a->max_units * OT_LEXICON_SHAPES;
  int same = !memcmp(a->prior, b->prior, (size_t)a->max_units * sizeof *a->prior) &&
             !memcmp(a->prior_shape, b->prior_shape, shapes * sizeof *a->prior_shape) &&
             !memcmp(a->once, b->once, (size_t)a->n_once * sizeof *a->once);
  for (int k = 0; k < a->n && same; k++)
    same = !strcmp(a->text[k], b->text[k]) && a->groups[k] == b->groups[k] && a->tagged[k] == b->tagged[k] &&
           a->tag_groups[k] == b->tag_groups[k];
  return same;
}

int main(int argc, char **argv) {
  if (ot_mpi_init(&argc, &argv) != OT_OK || argc != 2) {
    fprintf(stderr, "usage: mpirun -np N %s DIR\n", argv[0]);
    return 2;
  }
  const int me = ot_mpi_rank();
  char good[512], few[512], bad[512];
  snprintf(good, sizeof good, "%s/good", argv[1]);
  snprintf(few, sizeof few, "%s/few", argv[1]);
  snprintf(bad, sizeof bad, "%s/bad", argv[1]);
  if (me == 0) write_split(good, ITEMS, 0), write_split(few, 2, 0), write_split(bad, ITEMS, 1);
  MPI_Barrier(MPI_COMM_WORLD);

  for (int split = 0; split < 2; split++) {
    ot_dataset *d = NULL;
    CHECK(ot_dataset_open(&d, split ? few : good) == OT_OK);
    ot_lexicon alone;
    CHECK(ot_lexicon_build_chunks(&alone, d, 3, 1 << 20, 0) == OT_OK);
    /* the big split has what the sharing must get right: pieces named and
     * kept by hash, tags no title holds */
    CHECK(split || (alone.n > 20 && alone.n_once > 20 && alone.n_groups > GROUPS));
    static const size_t chunks[] = {1, 7, 100, 1 << 20};
    for (size_t c = 0; c < sizeof chunks / sizeof *chunks; c++) {
      ot_lexicon shared;
      CHECK(ot_lexicon_build_chunks(&shared, d, 3, chunks[c], 1) == OT_OK);
      CHECKF(same_lexicon(&alone, &shared), "rank %d, split %s, chunks of %zu: shared lexicon differs", me,
             split ? "few" : "good", chunks[c]);
      ot_lexicon_free(&shared);
    }
    ot_lexicon_free(&alone);
    ot_dataset_close(d);
  }

  ot_dataset *d = NULL;
  CHECK(ot_dataset_open(&d, bad) == OT_OK);
  ot_lexicon lx;
  CHECK(ot_lexicon_build(&lx, d, 3) == OT_EINVAL && lx.n == 0 && !lx.text && !lx.once);
  CHECK_MSG("zz-bad");
  ot_dataset_close(d);

  /* every rank's verdict */
  const int failed = (int)ot_mpi_sum_i64(ot_test_fail);
  if (me == 0) printf("%d ranks: %s\n", ot_mpi_size(), failed ? "FAILED" : "ok");
  const int rc = ot_test_report();
  ot_mpi_finalize();
  return rc ? rc : failed != 0;
}
