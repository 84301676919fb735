/* The title lexicon's counts (ot_lexicon_build, lexicon.h) in memory that
 * grows with the distinct pieces, not with their sightings: a corpus of
 * millions of titles has hundreds of millions of (piece, item) sightings.
 *
 * Pass 1 counts by the 64-bit FNV-1a hash of a piece's text (ot_hash.h). Items go in
 * group order, so a group's sightings are counted together (a group counts
 * once however many of its items' titles hold a piece); they are collected
 * for a chunk of whole groups, sorted, and merged into the running counts
 * (sorted by hash). A chunk holds at least as many sightings as there are
 * running counts, so the merges cost O(sightings) in all.
 *
 * Pass 2 fetches the text of the pieces kept by name. A piece seen in one
 * group's titles and never a tag anywhere — most pieces of a large corpus,
 * and what a checkpoint would otherwise carry by the million — is kept as
 * its hash alone (ot_lexicon.once): it scores as a named piece of those
 * counts would, at 8 bytes. Two texts with one hash (for n distinct pieces
 * odds about n^2 / 2^65) would share their counts; pass 2 warns when it
 * meets such a pair among the named pieces.
 *
 * Under mpirun the ranks share both passes: rank r reads the items of the
 * r-th P-th of group order (moved to whole groups), and its counts go to
 * the rank that owns their hash's range (the r-th P-th of 2^64), which adds
 * them up in rank order, as one process adds its chunks; then every rank
 * gathers the ranges in order, and each named piece's text from the
 * lowest rank that read it. Every rank ends with the lexicon one process
 * builds, bit for bit, having read 2 / P of the titles. One process makes
 * no MPI call (unit tests run without MPI). */
#include "lexicon.h"

#include "ot_common.h"
#include "ot_hash.h"
#include "ot_log.h"
#include "ot_mpi.h"
#include "ot_strmap.h"
#include "tagnorm.h"

#include <mpi.h>
#include <stdlib.h>
#include <string.h>

/* Smoothing of a shape's held-out share toward its length's (lexicon.h). */
#define LEXICON_BETA 2.0
/* Sightings per chunk at least (24 bytes each): 24 MB. */
#define CHUNK_MIN ((size_t)1 << 20)

/* A piece of the title of the item at place `seq` in group order
 * (in_title; is_tag when the item also had it as a tag), or one of its tags
 * (in_title 0). */
typedef struct {
  uint64_t hash;
  uint32_t group, seq;
  uint8_t units, shape, in_title, is_tag;
} sighting;

/* One distinct text: groups with it in a title, of those the groups that
 * had it as a tag, groups that had it as a tag; units and shape where it
 * first stands in the first item (by index) of a group with it in a title
 * (what the priors need of a piece seen in one group). */
typedef struct {
  uint64_t hash;
  uint32_t groups, tagged, tag_groups;
  uint8_t units, shape;
} count;

typedef struct {
  sighting *sight;
  size_t n_sight, cap_sight;
  count *counts;
  size_t n_counts;
} counter;

uint64_t ot_lexicon_hash(const char *piece) { return ot_fnv1a64(piece, strlen(piece), OT_FNV64_INIT); }

static int by_hash_group_seq(const void *a, const void *b) {
  const sighting *x = a, *y = b;
  if (x->hash != y->hash) return x->hash < y->hash ? -1 : 1;
  if (x->group != y->group) return x->group < y->group ? -1 : 1;
  return (x->seq > y->seq) - (x->seq < y->seq);
}

static void sight(counter *c, uint64_t hash, uint32_t group, uint32_t seq, int units, int shape,
                  int in_title, int is_tag) {
  if (c->n_sight == c->cap_sight)
    c->sight = ot_xrealloc(c->sight, (c->cap_sight = c->cap_sight ? 2 * c->cap_sight : 1024) *
                                         sizeof *c->sight);
  c->sight[c->n_sight++] = (sighting){hash, group, seq, (uint8_t)units, (uint8_t)shape,
                                      (uint8_t)in_title, (uint8_t)is_tag};
}

/* a's and b's counts in one array (both sorted by hash, b's groups after
 * a's: groups never span the two, so the counts add). *n gets its length;
 * the caller owns it. */
static count *merge_counts(const count *a, size_t na, const count *b, size_t nb, size_t *n) {
  count *out = ot_xmalloc((na + nb + 1) * sizeof *out);
  size_t i = 0, j = 0, m = 0;
  while (i < na || j < nb) {
    if (j == nb || (i < na && a[i].hash < b[j].hash)) {
      out[m++] = a[i++];
    } else if (i == na || b[j].hash < a[i].hash) {
      out[m++] = b[j++];
    } else {
      count e = a[i++];
      const count *r = &b[j++];
      if (!e.groups) e.units = r->units, e.shape = r->shape;
      e.groups += r->groups, e.tagged += r->tagged, e.tag_groups += r->tag_groups;
      out[m++] = e;
    }
  }
  *n = m;
  return out;
}

/* Count the chunk's sightings (whole groups) and merge them into the
 * running counts. */
static void flush(counter *c) {
  const sighting *s = c->sight;
  const size_t n = c->n_sight;
  if (n) qsort(c->sight, n, sizeof *s, by_hash_group_seq);
  count *run = ot_xmalloc((n + 1) * sizeof *run);
  size_t nr = 0;
  for (size_t i = 0, j; i < n; i = j) {
    count e = {.hash = s[i].hash};
    for (j = i; j < n && s[j].hash == s[i].hash;) {
      int in_title = 0, is_tag = 0;
      for (size_t g = j; j < n && s[j].hash == s[i].hash && s[j].group == s[g].group; j++) {
        if (s[j].in_title && !in_title) e.units = s[j].units, e.shape = s[j].shape;
        in_title |= s[j].in_title, is_tag |= s[j].is_tag;
      }
      e.groups += (uint32_t)in_title, e.tagged += (uint32_t)(in_title && is_tag);
      e.tag_groups += (uint32_t)is_tag;
    }
    run[nr++] = e;
  }
  count *merged = merge_counts(c->counts, c->n_counts, run, nr, &c->n_counts);
  free(run);
  free(c->counts);
  c->counts = merged, c->n_sight = 0;
}

/* The items in group order (by the name of their group: the manifest's
 * group, else their id; then by index): order[r] for r in
 * [0, items), in the group numbered rank[r] (0, 1, ...). Returns the number
 * of groups. */
static int64_t group_order(const ot_dataset *train, int64_t items, int64_t *order, uint32_t *rank) {
  ot_named_row *by = ot_xmalloc(((size_t)items + 1) * sizeof *by);
  for (int64_t i = 0; i < items; i++) {
    int64_t local;
    ot_shard *s = ot_dataset_locate(train, i, &local);
    const char *g = ot_shard_group(s, local);
    by[i] = (ot_named_row){g && g[0] ? g : ot_shard_id(s, local), i};
  }
  qsort(by, (size_t)items, sizeof *by, ot_named_row_cmp);
  int64_t groups = 0;
  for (int64_t r = 0; r < items; r++) {
    groups += !r || strcmp(by[r - 1].name, by[r].name);
    order[r] = by[r].row, rank[r] = (uint32_t)(groups - 1);
  }
  free(by);
  return groups;
}

/* Pass 1: the counts of every distinct text of the titles and tags of the
 * items at places [lo, hi) of group order. */
static int count_pass(counter *c, const ot_dataset *train, int64_t lo, int64_t hi, const int64_t *order,
                      const uint32_t *rank, int max_units, size_t chunk_min, ot_progress *prog) {
  int st = OT_OK;
  for (int64_t r = lo; r < hi && st == OT_OK; r++) {
    ot_progress_update(prog, r - lo);
    /* a chunk ends at a group's end */
    if (r > lo && rank[r] != rank[r - 1] &&
        c->n_sight >= (c->n_counts > chunk_min ? c->n_counts : chunk_min))
      flush(c);
    int64_t local;
    ot_shard *s = ot_dataset_locate(train, order[r], &local);
    char *const *tags;
    const int nt = ot_shard_tags(s, local, &tags);
    char **norm = ot_xcalloc((size_t)nt + 1, sizeof *norm);
    const int nn = ot_tagnorm_unique((const char *const *)tags, nt, norm, NULL);
    ot_lexicon_hits h;
    if ((st = ot_lexicon_pieces(ot_shard_title(s, local), max_units, &h)))
      st = ot_fail_ctx(st, "title of item '%s'", ot_shard_id(s, local));
    const uint32_t seq = (uint32_t)r;
    for (int p = 0; p < h.n; p++) {
      int is_tag = 0;
      for (int j = 0; j < nn && !is_tag; j++) is_tag = !strcmp(norm[j], h.text[p]);
      sight(c, ot_lexicon_hash(h.text[p]), rank[r], seq, h.units[p], h.shape[p], 1, is_tag);
    }
    ot_lexicon_hits_free(&h);
    for (int j = 0; j < nn; j++) {
      sight(c, ot_lexicon_hash(norm[j]), rank[r], seq, 0, 0, 0, 1);
      free(norm[j]);
    }
    free(norm);
  }
  if (st == OT_OK) flush(c);
  return st;
}

/* The first place at or after `at` where a group starts (or items). */
static int64_t group_start(const uint32_t *rank, int64_t items, int64_t at) {
  while (at > 0 && at < items && rank[at] == rank[at - 1]) at++;
  return at;
}

/* MPI's int counts, checked. */
static int mpi_count(size_t n) {
  OT_ASSERT(n <= (size_t)INT32_MAX);
  return (int)n;
}

/* Collective: each rank's counts to the rank that owns their hash range;
 * c->counts becomes the sum of every rank's counts in this rank's range,
 * added in rank order (flush's order: rank r's groups follow rank r-1's). */
static void exchange_counts(counter *c, int ranks) {
  MPI_Datatype rec;
  MPI_Type_contiguous((int)sizeof(count), MPI_BYTE, &rec);
  MPI_Type_commit(&rec);
  const uint64_t width = UINT64_MAX / (uint64_t)ranks + 1;
  int *send = ot_xcalloc((size_t)ranks * 4, sizeof *send);
  int *send_at = send + ranks, *recv = send + 2 * ranks, *recv_at = send + 3 * ranks;
  for (size_t i = 0; i < c->n_counts; i++) send[c->counts[i].hash / width]++;
  MPI_Alltoall(send, 1, MPI_INT, recv, 1, MPI_INT, MPI_COMM_WORLD);
  size_t total = 0;
  for (int r = 0, at = 0; r < ranks; r++) send_at[r] = at, at += send[r];
  for (int r = 0; r < ranks; r++) recv_at[r] = mpi_count(total), total += (size_t)recv[r];
  count *got = ot_xmalloc((total + 1) * sizeof *got);
  MPI_Alltoallv(c->counts, send, send_at, rec, got, recv, recv_at, rec, MPI_COMM_WORLD);
  MPI_Type_free(&rec);
  free(c->counts);
  c->counts = NULL, c->n_counts = 0;
  for (int r = 0; r < ranks; r++) {
    size_t n;
    count *sum = merge_counts(c->counts, c->n_counts, got + recv_at[r], (size_t)recv[r], &n);
    free(c->counts);
    c->counts = sum, c->n_counts = n;
  }
  free(got);
  free(send);
}

/* Collective over `ranks` ranks: every rank's n elements of `size` bytes,
 * in rank order, in one array (*total elements); from[r] (if not NULL,
 * ranks + 1 entries) gets the element where rank r's start. Takes `mine`
 * (malloc'd; with one rank it is the answer); the caller owns the result. */
static void *gather_all(int ranks, void *mine, size_t n, size_t size, size_t *total, size_t *from) {
  *total = n;
  if (from) from[0] = 0, from[ranks] = n;
  if (ranks == 1) return mine;
  MPI_Datatype rec;
  MPI_Type_contiguous((int)size, MPI_BYTE, &rec);
  MPI_Type_commit(&rec);
  int *got = ot_xmalloc(2 * (size_t)ranks * sizeof *got), *at = got + ranks;
  const int n_mine = mpi_count(n);
  MPI_Allgather(&n_mine, 1, MPI_INT, got, 1, MPI_INT, MPI_COMM_WORLD);
  size_t sum = 0;
  for (int r = 0; r < ranks; r++) {
    if (from) from[r] = sum;
    at[r] = mpi_count(sum), sum += (size_t)got[r];
  }
  if (from) from[ranks] = sum;
  void *all = ot_xmalloc(sum * size + 1);
  MPI_Allgatherv(mine, n_mine, rec, all, got, at, rec, MPI_COMM_WORLD);
  MPI_Type_free(&rec);
  free(got);
  free(mine);
  *total = sum;
  return all;
}

/* A piece kept by its hash alone: seen in one group's titles, never a tag. */
static int hashed_only(const count *e) { return e->groups == 1 && !e->tagged && !e->tag_groups; }

/* Pass 2: text[k] for those of the named pieces' hashes hash[k] (sorted)
 * that the titles of the items at places [lo, hi) of group order hold (one
 * process: all of them; it stops when all are named). *clashes gets the
 * sightings whose text differs from the one kept for their hash. */
static int name_pass(const ot_dataset *train, int64_t lo, int64_t hi, const int64_t *order,
                     int max_units, const uint64_t *hash, size_t n, char **text, size_t *clashes,
                     ot_progress *prog) {
  size_t named = 0;
  int st = OT_OK;
  *clashes = 0;
  for (int64_t r = lo; r < hi && named < n && st == OT_OK; r++) {
    ot_progress_update(prog, (hi - lo) + (r - lo));
    int64_t local;
    ot_shard *s = ot_dataset_locate(train, order[r], &local);
    ot_lexicon_hits h;
    if ((st = ot_lexicon_pieces(ot_shard_title(s, local), max_units, &h))) {
      ot_lexicon_hits_free(&h);
      st = ot_fail_ctx(st, "title of item '%s'", ot_shard_id(s, local));
      break;
    }
    for (int p = 0; p < h.n; p++) {
      const uint64_t k = ot_lexicon_hash(h.text[p]);
      const uint64_t *at = bsearch(&k, hash, n, sizeof *hash, ot_lexicon_cmp_hash);
      if (!at) continue;
      char **t = &text[at - hash];
      if (!*t) *t = h.text[p], h.text[p] = NULL, named++;
      else *clashes += strcmp(*t, h.text[p]) != 0;
    }
    ot_lexicon_hits_free(&h);
  }
  return st;
}

/* Collective: text[k] of every named piece on every rank, each from the
 * lowest rank that read it (a rank's own, where it read another text with
 * that hash, adds to *clashes). */
static void share_names(int ranks, int me, char **text, size_t n, size_t *clashes) {
  int *owner = ot_xmalloc((n + 1) * sizeof *owner);
  for (size_t k = 0; k < n; k++) owner[k] = text[k] ? me : ranks;
  MPI_Allreduce(MPI_IN_PLACE, owner, mpi_count(n), MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  size_t bytes = 0;
  for (size_t k = 0; k < n; k++) {
    OT_ASSERT(owner[k] < ranks); /* pass 1 saw each of them in a title */
    if (owner[k] == me) bytes += strlen(text[k]) + 1;
  }
  char *mine = ot_xmalloc(bytes + 1), *p = mine;
  for (size_t k = 0; k < n; k++)
    if (owner[k] == me) p = stpcpy(p, text[k]) + 1;
  size_t all_bytes, *from = ot_xmalloc(((size_t)ranks + 1) * sizeof *from); /* rank r's texts at from[r] */
  char *all = gather_all(ranks, mine, bytes, 1, &all_bytes, from);
  for (size_t k = 0; k < n; k++) {
    const char *t = all + from[owner[k]];
    from[owner[k]] += strlen(t) + 1;
    if (text[k] && owner[k] != me) *clashes += strcmp(text[k], t) != 0;
    if (owner[k] != me) {
      free(text[k]);
      text[k] = ot_xstrdup(t);
    }
  }
  free(from);
  free(all);
  free(owner);
}

/* Sort the named pieces by text, carrying their counts. */
typedef struct {
  char *text;
  const count *e;
} entry;

static int by_text(const void *a, const void *b) {
  return strcmp(((const entry *)a)->text, ((const entry *)b)->text);
}

int ot_lexicon_build(ot_lexicon *out, const ot_dataset *train, int max_units) {
  return ot_lexicon_build_chunks(out, train, max_units, CHUNK_MIN, 1);
}

int ot_lexicon_build_chunks(ot_lexicon *out, const ot_dataset *train, int max_units, size_t chunk_min,
                            int shared) {
  OT_ASSERT(max_units >= 1 && max_units < 256 && chunk_min >= 1);
  memset(out, 0, sizeof *out);
  const int ranks = shared ? ot_mpi_size() : 1, me = shared ? ot_mpi_rank() : 0;
  const int64_t items = ot_dataset_count(train);
  OT_ASSERT(items < (int64_t)UINT32_MAX);
  int64_t *order = ot_xmalloc(((size_t)items + 1) * sizeof *order);
  uint32_t *rank = ot_xmalloc(((size_t)items + 1) * sizeof *rank);
  const int64_t n_groups = group_order(train, items, order, rank);
  const int64_t lo = group_start(rank, items, items * me / ranks);
  const int64_t hi = group_start(rank, items, items * (me + 1) / ranks);
  counter c = {0};
  /* both passes read every title of this rank's share (the second may stop early) */
  ot_progress prog;
  ot_progress_start(&prog, "lexicon title reads", /* with ranks, rank 0 reports its share */
                    2 * (hi - lo), 0);
  int st = count_pass(&c, train, lo, hi, order, rank, max_units, chunk_min, &prog);
  free(rank);
  free(c.sight);
  if (ranks > 1) st = ot_mpi_agree(st);
  if (st) {
    free(order);
    free(c.counts);
    return st;
  }
  if (ranks > 1) exchange_counts(&c, ranks);
  /* the priors, from the pieces seen in one group */
  const size_t n_shapes = (size_t)max_units * OT_LEXICON_SHAPES;
  double *once = ot_xcalloc(2 * n_shapes, sizeof *once), *once_tag = once + n_shapes;
  size_t n_named = 0, n_hashed = 0;
  for (size_t i = 0; i < c.n_counts; i++) {
    const count *e = &c.counts[i];
    if (!e->groups) continue; /* a tag no training title holds: not a piece */
    if (e->groups == 1) {
      const size_t cell = (size_t)(e->units - 1) * OT_LEXICON_SHAPES + e->shape;
      once[cell]++, once_tag[cell] += e->tagged;
    }
    if (hashed_only(e)) n_hashed++;
    else n_named++;
  }
  /* whole numbers below 2^53: the sum is exact in any order */
  if (ranks > 1) MPI_Allreduce(MPI_IN_PLACE, once, mpi_count(2 * n_shapes), MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
  out->max_units = max_units;
  out->n_groups = n_groups;
  out->prior = ot_xmalloc((size_t)max_units * sizeof *out->prior);
  out->prior_shape = ot_xmalloc(n_shapes * sizeof *out->prior_shape);
  for (int u = 0; u < max_units; u++) {
    double seen = 0, tags = 0;
    for (int s = 0; s < OT_LEXICON_SHAPES; s++)
      seen += once[u * OT_LEXICON_SHAPES + s], tags += once_tag[u * OT_LEXICON_SHAPES + s];
    const double p = (tags + 0.5) / (seen + 1.0);
    out->prior[u] = (float)p;
    for (int s = 0; s < OT_LEXICON_SHAPES; s++) {
      const size_t cell = (size_t)u * OT_LEXICON_SHAPES + (size_t)s;
      out->prior_shape[cell] = (float)((once_tag[cell] + LEXICON_BETA * p) / (once[cell] + LEXICON_BETA));
    }
  }
  free(once);
  /* the hashed pieces, in hash order (the ranks' ranges in rank order); the
   * named ones' counts, in hash order, for pass 2 */
  uint64_t *hashed = ot_xmalloc((n_hashed + 1) * sizeof *hashed);
  count *named_mine = ot_xmalloc((n_named + 1) * sizeof *named_mine);
  for (size_t i = 0, h = 0, k = 0; i < c.n_counts; i++) {
    const count *e = &c.counts[i];
    if (!e->groups) continue;
    if (hashed_only(e)) hashed[h++] = e->hash;
    else named_mine[k++] = *e;
  }
  free(c.counts);
  size_t n_once;
  out->once = gather_all(ranks, hashed, n_hashed, sizeof *hashed, &n_once, NULL);
  out->n_once = (int64_t)n_once;
  count *named = gather_all(ranks, named_mine, n_named, sizeof *named, &n_named, NULL);
  uint64_t *named_hash = ot_xmalloc((n_named + 1) * sizeof *named_hash);
  for (size_t k = 0; k < n_named; k++) named_hash[k] = named[k].hash;
  char **text = ot_xcalloc(n_named + 1, sizeof *text);
  size_t clashes = 0;
  st = name_pass(train, lo, hi, order, max_units, named_hash, n_named, text, &clashes, &prog);
  free(order);
  free(named_hash);
  if (ranks > 1) st = ot_mpi_agree(st);
  if (st == OT_OK) {
    if (ranks > 1) share_names(ranks, me, text, n_named, &clashes);
    if (ranks > 1) clashes = (size_t)ot_mpi_sum_i64((int64_t)clashes);
    for (size_t k = 0; k < n_named; k++) OT_ASSERT(text[k]); /* pass 1 saw each in a title */
    if (clashes && me == 0)
      ot_log_warn("title lexicon: %zu sightings of pieces whose 64-bit hash another piece has; "
                  "their counts are shared", clashes);
    ot_progress_finish(&prog, 2 * (hi - lo)); /* reads done, both passes */
    entry *by = ot_xmalloc((n_named + 1) * sizeof *by);
    for (size_t k = 0; k < n_named; k++) by[k] = (entry){text[k], &named[k]};
    qsort(by, n_named, sizeof *by, by_text);
    OT_ASSERT(n_named <= (size_t)INT32_MAX);
    out->n = (int)n_named;
    out->text = ot_xmalloc((n_named + 1) * sizeof *out->text);
    out->groups = ot_xmalloc((n_named + 1) * sizeof *out->groups);
    out->tagged = ot_xmalloc((n_named + 1) * sizeof *out->tagged);
    out->tag_groups = ot_xmalloc((n_named + 1) * sizeof *out->tag_groups);
    for (size_t k = 0; k < n_named; k++) {
      out->text[k] = by[k].text;
      out->groups[k] = by[k].e->groups, out->tagged[k] = by[k].e->tagged;
      out->tag_groups[k] = by[k].e->tag_groups;
    }
    free(by);
  } else {
    for (size_t k = 0; k < n_named; k++) free(text[k]);
  }
  free(text);
  free(named);
  if (st) ot_lexicon_free(out);
  return st;
}
