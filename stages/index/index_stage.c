/* ot-index: one FAISS index per retrieval source over the training split's
 * embeddings (<embed.dir>/train/, written by ot-embed), layout in ot_index.h.
 *
 * With N ranks, per source:
 *  1. rank 0 builds the index from index.factory (inner product) and, when it
 *     needs training (IVF, PQ, ...), trains it on a seeded uniform sample of
 *     index.train_sample key vectors (selection sampling in file order, so the
 *     sample depends only on the seed and the corpus, not on N);
 *  2. the trained, empty index is broadcast (serialized in memory);
 *  3. each rank adds the key vectors of a contiguous slice of the embedding
 *     files (slices balanced by item count, in file order);
 *  4. index.sharded=true: each rank writes its slice as shard-RR.faiss.
 *     index.sharded=false: IVF indexes are sent to rank 0 and appended in rank
 *     order with IndexIVF::merge_from (row numbers stay file order); indexes
 *     that cannot be merged (Flat, HNSW, ...) are filled by rank 0 alone from
 *     all files, the others only write the rows table. Either way the merged
 *     index is the same for any N.
 *  5. the last rank writes rows.h5 (row -> id, group, tags) meanwhile, and
 *     rank 0 writes meta.json last.
 * A source whose meta.json is complete with the same fingerprint (factory,
 * vectors, sample, seed, sharding, the embedding files' sizes and times) is
 * skipped, so a rerun after success returns at once; anything else is
 * rebuilt from scratch. */
#include "index_stage.h"
#include "ot_common.h"
#include "ot_emb.h"
#include "ot_fs.h"
#include "ot_ledger.h"
#include "ot_hash.h"
#include "ot_index.h"
#include "ot_log.h"
#include "ot_mpi.h"
#include "ot_rng.h"

#include <cblas.h>
#include <errno.h>
#include <math.h>
#include <faiss/c_api/IndexIVF_c.h>
#include <faiss/c_api/Index_c.h>
#include <faiss/c_api/error_c.h>
#include <faiss/c_api/index_factory_c.h>
#include <faiss/c_api/index_io_c.h>
#include <mpi.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define READ_BLOCK 65536 /* vectors read and added per call */
#define MSG_CHUNK (1 << 30) /* bytes per MPI message (counts are int) */

typedef struct {
  char name[128], query[128], key[128];
} source_spec;

typedef struct {
  const ot_config *cfg;
  char embed_dir[4200], index_dir[4200];
  ot_emb_set *set;
  int rank, size;
  int slice_first, slice_end; /* this rank's files [first, end) */
  uint64_t set_hash;          /* index.json + every file's size and mtime */
} builder;

static const char *faiss_msg(void) {
  const char *m = faiss_get_last_error();
  return m ? m : "unknown FAISS error";
}

/* "name=query:key,..." -> specs; *out malloc'd, caller frees. */
static int parse_sources(const char *txt, source_spec **out, int *n) {
  *out = NULL;
  *n = 0;
  char *copy = ot_xstrdup(txt), *save = NULL;
  int st = OT_OK;
  for (char *tok = strtok_r(copy, ",", &save); tok && st == OT_OK; tok = strtok_r(NULL, ",", &save)) {
    while (*tok == ' ') tok++;
    source_spec s;
    char *eq = strchr(tok, '='), *colon = eq ? strchr(eq, ':') : NULL;
    if (!eq || !colon || eq == tok || colon == eq + 1 || !colon[1] || strchr(colon + 1, ':') ||
        eq - tok >= (int)sizeof s.name || colon - eq > (int)sizeof s.query ||
        strlen(colon + 1) >= sizeof s.key || memchr(tok, '/', (size_t)(eq - tok)) || tok[0] == '.') {
      st = ot_fail(OT_EINVAL, "index.sources: '%s' is not name=query:key (a folder name, two vector names)", tok);
      break;
    }
    snprintf(s.name, sizeof s.name, "%.*s", (int)(eq - tok), tok);
    snprintf(s.query, sizeof s.query, "%.*s", (int)(colon - eq - 1), eq + 1);
    snprintf(s.key, sizeof s.key, "%s", colon + 1);
    for (int i = 0; i < *n; i++)
      if (!strcmp((*out)[i].name, s.name)) st = ot_fail(OT_EINVAL, "index.sources: source '%s' twice", s.name);
    *out = ot_xrealloc(*out, (size_t)(*n + 1) * sizeof **out);
    (*out)[(*n)++] = s;
  }
  free(copy);
  if (st == OT_OK && *n == 0) st = ot_fail(OT_EINVAL, "index.sources: no source given");
  return st;
}

/* ------------------------------------------------------------ serialization */

/* The index as FAISS file bytes in memory (malloc'd, caller frees). */
static int index_to_bytes(const FaissIndex *idx, char **buf, size_t *len) {
  *buf = NULL;
  *len = 0;
  FILE *f = open_memstream(buf, len);
  if (!f) return ot_fail(OT_ENOMEM, "cannot serialize the index");
  int r = faiss_write_index(idx, f);
  fclose(f);
  if (r) {
    free(*buf);
    *buf = NULL;
    return ot_fail(OT_EIO, "serializing the index: %s", faiss_msg());
  }
  return OT_OK;
}

static int index_from_bytes(char *buf, size_t len, FaissIndex **out) {
  FILE *f = fmemopen(buf, len, "rb");
  if (!f) return ot_fail(OT_ENOMEM, "cannot read a serialized index");
  int r = faiss_read_index(f, 0, out);
  fclose(f);
  return r ? ot_fail(OT_EIO, "deserializing the index: %s", faiss_msg()) : OT_OK;
}

static void send_bytes(const char *buf, size_t len, int dest) {
  int64_t n = (int64_t)len;
  MPI_Send(&n, 1, MPI_INT64_T, dest, 0, MPI_COMM_WORLD);
  for (size_t at = 0; at < len; at += MSG_CHUNK)
    MPI_Send(buf + at, (int)(len - at < MSG_CHUNK ? len - at : MSG_CHUNK), MPI_BYTE, dest, 1, MPI_COMM_WORLD);
}

static char *recv_bytes(size_t *len, int src) {
  int64_t n = 0;
  MPI_Recv(&n, 1, MPI_INT64_T, src, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
  char *buf = ot_xmalloc((size_t)n + 1);
  for (size_t at = 0; at < (size_t)n; at += MSG_CHUNK)
    MPI_Recv(buf + at, (int)((size_t)n - at < MSG_CHUNK ? (size_t)n - at : MSG_CHUNK), MPI_BYTE, src, 1,
             MPI_COMM_WORLD, MPI_STATUS_IGNORE);
  *len = (size_t)n;
  return buf;
}

/* Barrier that sleeps instead of spinning: ranks waiting for rank 0 to train
 * (minutes) or merge leave their core to it and to whatever else runs. */
static void idle_barrier(void) {
  MPI_Request req;
  int done = 0;
  MPI_Ibarrier(MPI_COMM_WORLD, &req);
  for (MPI_Test(&req, &done, MPI_STATUS_IGNORE); !done; MPI_Test(&req, &done, MPI_STATUS_IGNORE))
    usleep(2000);
}

/* Rank 0's trained index on every rank (collective). */
static int bcast_index(FaissIndex **idx, int rank) {
  char *buf = NULL;
  size_t len = 0;
  int st = rank == 0 ? index_to_bytes(*idx, &buf, &len) : OT_OK;
  if ((st = ot_mpi_agree(st))) return st;
  int64_t n = (int64_t)len;
  MPI_Bcast(&n, 1, MPI_INT64_T, 0, MPI_COMM_WORLD);
  if (rank) buf = ot_xmalloc((size_t)n + 1);
  for (int64_t at = 0; at < n; at += MSG_CHUNK)
    MPI_Bcast(buf + at, (int)(n - at < MSG_CHUNK ? n - at : MSG_CHUNK), MPI_BYTE, 0, MPI_COMM_WORLD);
  if (rank) st = index_from_bytes(buf, (size_t)n, idx);
  free(buf);
  return ot_mpi_agree(st);
}

/* ------------------------------------------------------------ reading vectors */

/* Open file f of the set and check its key vector against the set's dim. */
static int open_file(const builder *b, int f, const char *key, int dim, ot_emb **e) {
  const char *path = ot_emb_set_file_path(b->set, f);
  int st = ot_emb_open(e, path);
  if (st) return st;
  if (ot_emb_count(*e) != ot_emb_set_file_items(b->set, f))
    st = ot_fail(OT_EINVAL, "%s: %lld items, %s/train/index.json says %lld", path, (long long)ot_emb_count(*e),
                 b->embed_dir, (long long)ot_emb_set_file_items(b->set, f));
  else if (ot_emb_dim(*e, key) != dim)
    st = ot_fail(OT_EINVAL, "%s: vector '%s' has dim %d, %s/train/index.json says %d", path, key,
                 ot_emb_dim(*e, key), b->embed_dir, dim);
  if (st) {
    ot_emb_close(*e);
    *e = NULL;
  }
  return st;
}

/* Rows [first, first+m) of file e's vector `key`, read into x [m,dim]: the
 * index is inner product over unit rows (cosine, ot_emb.h), so a row longer
 * than 1 outranks the true neighbours of every query and a non-finite one
 * poisons training and search, both silently. ot-embed writes norm 1, or
 * less for a row that was (nearly) zero, such as an empty title's n-grams:
 * only longer rows and non-finite values are refused (OT_EINVAL, named). */
static int check_rows(const ot_emb *e, const char *path, const char *key, int64_t first, const float *x,
                      int64_t m, int dim) {
  for (int64_t i = 0; i < m; i++) {
    double ss = 0;
    for (int j = 0; j < dim; j++) ss += (double)x[i * dim + j] * x[i * dim + j];
    if (isfinite(ss) && ss <= 1.001) continue;
    return ot_fail(OT_EINVAL,
                   "%s: vector '%s' of row %lld (item '%s') %s: embeddings must be L2-normalised "
                   "(as ot-embed writes them): embed again or normalise the file's rows",
                   path, key, (long long)(first + i), ot_emb_id(e, first + i),
                   isfinite(ss) ? "has norm > 1" : "is not finite");
  }
  return OT_OK;
}

/* Rank 0: index.train_sample key vectors chosen uniformly without replacement
 * (Knuth's selection sampling, seeded), in corpus order. *out [n,dim]. */
static int sample_vectors(const builder *b, const char *key, int dim, float **out, int64_t *n_out) {
  const int64_t total = ot_emb_set_count(b->set);
  int64_t need = b->cfg->index.train_sample < total ? b->cfg->index.train_sample : total;
  float *x = malloc((size_t)need * (size_t)dim * sizeof *x);
  float *block = malloc((size_t)READ_BLOCK * (size_t)dim * sizeof *block);
  int64_t *picks = ot_xmalloc(READ_BLOCK * sizeof *picks);
  if (!x || !block) {
    free(x);
    free(block);
    free(picks);
    return ot_fail(OT_ENOMEM, "training sample of %lld x %d floats", (long long)need, dim);
  }
  ot_rng rng;
  ot_rng_seed(&rng, (uint64_t)b->cfg->train.seed ^ 0x1d3a5f7bULL);
  int64_t remaining = total, got = 0;
  int st = OT_OK;
  for (int f = 0; f < ot_emb_set_files(b->set) && need > 0 && st == OT_OK; f++) {
    ot_emb *e = NULL;
    if ((st = open_file(b, f, key, dim, &e))) break;
    const int64_t items = ot_emb_count(e);
    for (int64_t at = 0; at < items && need > 0 && st == OT_OK; at += READ_BLOCK) {
      const int64_t m = items - at < READ_BLOCK ? items - at : READ_BLOCK;
      /* pick first, read only if the block holds a sampled row */
      int64_t n_picks = 0;
      for (int64_t i = 0; i < m && need > 0; i++, remaining--) {
        double u = (double)(ot_rng_u64(&rng) >> 11) * (1.0 / 9007199254740992.0);
        if (u * (double)remaining < (double)need) picks[n_picks++] = i, need--;
      }
      if (n_picks && !(st = ot_emb_read(e, key, at, m, block)))
        for (int64_t j = 0; j < n_picks && st == OT_OK; j++) {
          st = check_rows(e, ot_emb_set_file_path(b->set, f), key, at + picks[j],
                          block + (size_t)picks[j] * dim, 1, dim);
          memcpy(x + (size_t)(got++) * dim, block + (size_t)picks[j] * dim, (size_t)dim * sizeof *x);
        }
    }
    ot_emb_close(e);
  }
  free(block);
  free(picks);
  if (st) {
    free(x);
    return st;
  }
  *out = x;
  *n_out = got;
  return OT_OK;
}

/* Add the key vectors of files [first, end) to idx, block by block. */
static int add_files(const builder *b, FaissIndex *idx, const char *key, int dim, int first, int end,
                     ot_workq *q, ot_progress *prog) {
  float *block = malloc((size_t)READ_BLOCK * (size_t)dim * sizeof *block);
  if (!block && first < end) return ot_fail(OT_ENOMEM, "read buffer of %d x %d floats", READ_BLOCK, dim);
  int st = OT_OK;
  for (int f = first; f < end && st == OT_OK; f++) {
    ot_emb *e = NULL;
    if ((st = open_file(b, f, key, dim, &e))) break;
    for (int64_t at = 0; at < ot_emb_count(e) && st == OT_OK; at += READ_BLOCK) {
      const int64_t m = ot_emb_count(e) - at < READ_BLOCK ? ot_emb_count(e) - at : READ_BLOCK;
      if ((st = ot_emb_read(e, key, at, m, block)) ||
          (st = check_rows(e, ot_emb_set_file_path(b->set, f), key, at, block, m, dim)))
        break;
      if (faiss_Index_add(idx, m, block))
        st = ot_fail(OT_EIO, "adding %s to the index: %s", ot_emb_set_file_path(b->set, f), faiss_msg());
      ot_workq_add_done(q, m);
      ot_progress_update(prog, ot_workq_done(q));
    }
    ot_emb_close(e);
  }
  free(block);
  return st;
}

/* rows.h5 from every file, in file order. */
static int write_rows(const builder *b, const char *folder) {
  char path[4600];
  snprintf(path, sizeof path, "%s/rows.h5", folder);
  ot_index_rows_writer *w = NULL;
  int st = ot_index_rows_create(&w, path);
  for (int f = 0; f < ot_emb_set_files(b->set) && st == OT_OK; f++) {
    ot_emb *e = NULL;
    if ((st = ot_emb_open(&e, ot_emb_set_file_path(b->set, f)))) break;
    const int64_t n = ot_emb_count(e);
    const char **ids = ot_xmalloc((size_t)n * sizeof *ids + 1), **groups = ot_xmalloc((size_t)n * sizeof *groups + 1);
    int64_t *off = ot_xmalloc((size_t)(n + 1) * sizeof *off), cap = 1024;
    const char **text = ot_xmalloc((size_t)cap * sizeof *text);
    off[0] = 0;
    for (int64_t i = 0; i < n; i++) {
      const char *const *tags;
      int nt;
      ids[i] = ot_emb_id(e, i);
      groups[i] = ot_emb_group(e, i);
      ot_emb_tags(e, i, &tags, &nt);
      if (off[i] + nt > cap) text = ot_xrealloc(text, (size_t)(cap = 2 * (off[i] + nt)) * sizeof *text);
      for (int t = 0; t < nt; t++) text[off[i] + t] = tags[t];
      off[i + 1] = off[i] + nt;
    }
    st = ot_index_rows_append(w, n, ids, groups, off, text);
    free(ids);
    free(groups);
    free(off);
    free(text);
    ot_emb_close(e);
  }
  if (st) ot_index_rows_abort(w);
  else st = ot_index_rows_commit(w);
  return st;
}

static int write_index_file(const FaissIndex *idx, const char *path) {
  char tmp[4500];
  ot_fs_tmpname(tmp, sizeof tmp, path);
  /* our own FILE, not faiss_write_index_fname: FAISS closes its file in a
     destructor that only prints a failed close, so the last buffer lost to
     a full disk went unnoticed and a truncated index became "complete" */
  FILE *f = fopen(tmp, "wb");
  if (!f) return ot_fail(OT_EIO, "%s: cannot create %s: %s", path, tmp, strerror(errno));
  int st = faiss_write_index(idx, f) ? ot_fail(OT_EIO, "%s: FAISS cannot write it: %s", path, faiss_msg())
                                     : OT_OK;
  if (fclose(f) != 0 && st == OT_OK) st = ot_fail(OT_EIO, "%s: cannot write %s: %s", path, tmp, strerror(errno));
  if (st == OT_OK) st = ot_fs_commit(tmp, path);
  if (st) unlink(tmp);
  return st;
}

/* Rank 0 before a rebuild: no meta.json (the folder reads as unfinished
 * until the end), no FAISS files of an earlier build. */
static int clear_folder(const char *folder) {
  int st = ot_fs_mkdirs(folder);
  char path[4600];
  snprintf(path, sizeof path, "%s/meta.json", folder);
  if (!st && unlink(path) && ot_fs_exists(path)) st = ot_fail(OT_EIO, "%s: cannot remove", path);
  ot_index_shard_path(path, sizeof path, folder, 0, 0);
  unlink(path);
  for (int s = 0; !st; s++) {
    ot_index_shard_path(path, sizeof path, folder, 1, s);
    if (unlink(path)) break;
  }
  return st;
}

/* ------------------------------------------------------------ one source */

static void fingerprint(const builder *b, const source_spec *src, char out[17]) {
  const ot_config *c = b->cfg;
  char txt[1200];
  snprintf(txt, sizeof txt, "%s|%s|%s|%d|%d|%d|%d|%016llx", c->index.factory, src->query, src->key,
           c->index.train_sample, c->train.seed, c->index.sharded, c->index.sharded ? b->size : 0,
           (unsigned long long)b->set_hash);
  snprintf(out, 17, "%016llx", (unsigned long long)ot_fnv1a64(txt, strlen(txt), OT_FNV64_INIT));
}

static int check_vectors(const builder *b, const source_spec *src, int *dim) {
  const char *vecs[2] = {src->key, src->query};
  char have[1024] = "";
  for (int v = 0; v < ot_emb_set_n_vecs(b->set); v++)
    snprintf(have + strlen(have), sizeof have - strlen(have), "%s%s", v ? ", " : "", ot_emb_set_vec_name(b->set, v));
  for (int i = 0; i < 2; i++)
    if (ot_emb_set_dim(b->set, vecs[i]) <= 0)
      return ot_fail(OT_EINVAL, "index.sources: source '%s' uses vector '%s', but %s/train/index.json has only: %s",
                     src->name, vecs[i], b->embed_dir, have);
  *dim = ot_emb_set_dim(b->set, src->key);
  if (ot_emb_set_dim(b->set, src->query) != *dim)
    return ot_fail(OT_EINVAL,
                   "index.sources: source '%s' queries with '%s' (dim %d) an index of '%s' (dim %d): "
                   "a query must live in the key's space",
                   src->name, src->query, ot_emb_set_dim(b->set, src->query), src->key, *dim);
  return OT_OK;
}

static int build_source(builder *b, const source_spec *src) {
  const ot_config *cfg = b->cfg;
  const int rank = b->rank, size = b->size;
  char folder[4400], fp[17];
  snprintf(folder, sizeof folder, "%s/%s", b->index_dir, src->name);
  fingerprint(b, src, fp);
  int dim = 0, st = check_vectors(b, src, &dim);
  if (st) return st;

  int skip = 0;
  if (rank == 0) {
    int nprobe = 0;
    if (ot_ledger_start_over() != OT_START_OVER_ALL && ot_index_is_complete(folder, fp, &nprobe)) {
      skip = 1;
      if (nprobe != cfg->index.nprobe) st = ot_index_update_nprobe(folder, cfg->index.nprobe);
    } else {
      st = clear_folder(folder);
    }
  }
  MPI_Bcast(&skip, 1, MPI_INT, 0, MPI_COMM_WORLD);
  if ((st = ot_mpi_agree(st)) || skip) {
    if (!st) ot_log_info0("source %s: %s is complete, nothing to do", src->name, folder);
    return st;
  }
  const double t0 = ot_now();

  /* 1-2: build (and train) on rank 0, then every rank holds it */
  FaissIndex *idx = NULL;
  if (rank == 0 && faiss_index_factory(&idx, dim, cfg->index.factory, METRIC_INNER_PRODUCT))
    st = ot_fail(OT_EINVAL, "index.factory: FAISS cannot build '%s' (dim %d): %s", cfg->index.factory, dim,
                 faiss_msg());
  if (rank == 0 && !st && !faiss_Index_is_trained(idx)) {
    float *x = NULL;
    int64_t n = 0;
    double ts = ot_now();
    st = sample_vectors(b, src->key, dim, &x, &n);
    if (!st) {
      ot_log_info("source %s: training '%s' on %lld vectors (read in %.1f s)", src->name, cfg->index.factory,
                  (long long)n, ot_now() - ts);
      ts = ot_now();
      if (faiss_Index_train(idx, n, x))
        st = ot_fail(OT_EINVAL, "index.factory '%s': training on %lld vectors failed: %s", cfg->index.factory,
                     (long long)n, faiss_msg());
      else
        ot_log_info("source %s: trained in %.1f s", src->name, ot_now() - ts);
    }
    free(x);
  }
  idle_barrier();
  if ((st = ot_mpi_agree(st)) || (st = bcast_index(&idx, rank))) {
    if (idx) faiss_Index_free(idx);
    return st;
  }
  const double t_trained = ot_now();

  /* 3: add */
  const int mergeable = faiss_IndexIVF_cast(idx) != NULL;
  const int rank0_alone = !cfg->index.sharded && !mergeable;
  int first = b->slice_first, end = b->slice_end;
  if (rank0_alone) first = 0, end = rank == 0 ? ot_emb_set_files(b->set) : 0;
  ot_workq *q = NULL;
  if ((st = ot_workq_open(&q, 1))) {
    faiss_Index_free(idx);
    return st;
  }
  ot_progress prog;
  ot_progress_start(&prog, "vectors", ot_emb_set_count(b->set), 0);
  st = add_files(b, idx, src->key, dim, first, end, q, &prog);
  if (st) ot_log_error("%s", ot_errmsg());
  idle_barrier();
  ot_progress_finish(&prog, ot_workq_done(q));
  ot_workq_close(q);
  const double t_added = ot_now();

  /* 4-5: merge or shard, rows table, meta */
  int rows_st = OT_OK;
  int64_t mine = faiss_Index_ntotal(idx);
  int64_t *shard_n = ot_xcalloc((size_t)size, sizeof *shard_n);
  if ((st = ot_mpi_agree(st)) == OT_OK) {
    char path[4600];
    if (cfg->index.sharded) {
      ot_index_shard_path(path, sizeof path, folder, 1, rank);
      st = write_index_file(idx, path);
    } else if (mergeable && rank > 0) {
      char *buf = NULL;
      size_t len = 0;
      st = index_to_bytes(idx, &buf, &len);
      faiss_Index_free(idx);
      idx = NULL;
      send_bytes(st ? "" : buf, st ? 0 : len, 0);
      free(buf);
    } else if (mergeable) {
      for (int r = 1; r < size; r++) {
        size_t len = 0;
        char *buf = recv_bytes(&len, r);
        FaissIndex *other = NULL;
        int rs = len ? index_from_bytes(buf, len, &other) : ot_fail(OT_EIO, "rank %d sent no index", r);
        free(buf);
        if (!rs && !st &&
            faiss_IndexIVF_merge_from(faiss_IndexIVF_cast(idx), faiss_IndexIVF_cast(other), faiss_Index_ntotal(idx)))
          rs = ot_fail(OT_EIO, "merging rank %d's index: %s", r, faiss_msg());
        if (other) faiss_Index_free(other);
        if (!st) st = rs;
      }
    }
    if (!cfg->index.sharded && rank == 0 && !st) {
      ot_index_shard_path(path, sizeof path, folder, 0, 0);
      st = write_index_file(idx, path);
      mine = faiss_Index_ntotal(idx);
    }
    if (rank == size - 1) rows_st = write_rows(b, folder);
    if (!st) st = rows_st;
  }
  idle_barrier();
  MPI_Gather(&mine, 1, MPI_INT64_T, shard_n, 1, MPI_INT64_T, 0, MPI_COMM_WORLD);
  if (idx) faiss_Index_free(idx);
  if ((st = ot_mpi_agree(st)) == OT_OK && rank == 0) {
    const int shards = cfg->index.sharded ? size : 1;
    int64_t ntotal = 0;
    for (int s = 0; s < shards; s++) ntotal += shard_n[s];
    if (ntotal != ot_emb_set_count(b->set))
      st = ot_fail(OT_EIO, "%s: index holds %lld vectors, the embeddings %lld", folder, (long long)ntotal,
                   (long long)ot_emb_set_count(b->set));
    char embeddings[17];
    snprintf(embeddings, sizeof embeddings, "%016llx", (unsigned long long)b->set_hash);
    ot_index_meta m = {.source = src->name, .factory = cfg->index.factory, .query_vec = src->query,
                       .key_vec = src->key, .fingerprint = fp, .embeddings = embeddings, .dim = dim,
                       .sharded = cfg->index.sharded, .shards = shards, .nprobe = cfg->index.nprobe,
                       .ntotal = ntotal, .shard_ntotal = shard_n};
    if (!st) st = ot_index_write_meta(folder, &m);
    if (!st)
      ot_log_info("source %s: %lld vectors of '%s' in %s (%s, %d shard%s): train %.1f s, add %.1f s, "
                  "write %.1f s, total %.1f s",
                  src->name, (long long)ntotal, src->key, folder, cfg->index.factory, shards, shards > 1 ? "s" : "",
                  t_trained - t0, t_added - t_trained, ot_now() - t_added, ot_now() - t0);
  }
  free(shard_n);
  return ot_mpi_agree(st);
}

/* ------------------------------------------------------------ program */

/* Contiguous slices of files balanced by item count: file f goes to the rank
 * its first item falls in when the items are cut into `size` equal parts. */
static void slice(builder *b) {
  const int64_t total = ot_emb_set_count(b->set);
  int64_t start = 0;
  b->slice_first = b->slice_end = -1;
  for (int f = 0; f < ot_emb_set_files(b->set); f++) {
    int r = total ? (int)(start * b->size / total) : 0;
    if (r == b->rank && b->slice_first < 0) b->slice_first = f;
    if (r > b->rank && b->slice_end < 0) b->slice_end = f;
    start += ot_emb_set_file_items(b->set, f);
  }
  if (b->slice_first < 0) b->slice_first = b->slice_end = 0;
  if (b->slice_end < 0) b->slice_end = ot_emb_set_files(b->set);
}

static int setup(builder *b) {
  const ot_config *cfg = b->cfg;
  int st;
  if ((st = ot_config_dir(cfg, "embed.dir", "embed", b->embed_dir, sizeof b->embed_dir)) ||
      (st = ot_config_dir(cfg, "index.dir", "index", b->index_dir, sizeof b->index_dir)))
    return st;
  if ((st = ot_emb_set_open(&b->set, b->embed_dir, "train"))) return st;
  if (ot_emb_set_count(b->set) == 0)
    return ot_fail(OT_EINVAL, "%s/train/index.json: no embeddings to index (run ot-embed)", b->embed_dir);
  slice(b);
  b->set_hash = ot_emb_set_version(b->set);
  return OT_OK;
}

int ot_index_stage_run(const ot_config *cfg, int *exit_code) {
  (void)exit_code;
  /* FAISS parallelises with OpenMP and calls BLAS: ranks x threads <= cores */
  omp_set_num_threads(cfg->train.threads);
  openblas_set_num_threads(cfg->train.threads);
  builder b = {.cfg = cfg, .rank = ot_mpi_rank(), .size = ot_mpi_size()};
  source_spec *src = NULL;
  int n_src = 0;
  int st = parse_sources(cfg->index.sources, &src, &n_src);
  if (!st) st = setup(&b);
  if ((st = ot_mpi_agree(st)) == OT_OK) {
    ot_log_info0("indexing %lld training vectors of %s in %d file(s) into %s: %d source(s), '%s'%s",
                 (long long)ot_emb_set_count(b.set), b.embed_dir, ot_emb_set_files(b.set), b.index_dir, n_src,
                 cfg->index.factory, cfg->index.sharded ? ", one shard per rank" : "");
    for (int i = 0; i < n_src && st == OT_OK; i++) st = build_source(&b, &src[i]);
  }
  free(src);
  ot_emb_set_close(b.set);
  return st;
}

const ot_cli_info ot_index_stage_info = {
    "ot-index",
    "Build one FAISS index (inner product) per retrieval source of index.sources\n"
    "(name=query:key, embedding vector names) over the training split's embeddings\n"
    "<embed.dir>/train/, into <index.dir>/<name>/: index.faiss (or shard-NN.faiss, one per\n"
    "rank, with index.sharded), rows.h5 (row -> id, group, tags) and meta.json. The index\n"
    "type is the FAISS factory string index.factory (Flat, IVF4096,PQ64np, HNSW32, ...;\n"
    "write PQ<m>np: plain PQ<m> makes FAISS run polysemous training, minutes of work\n"
    "that plain search never uses);\n"
    "rank 0 trains it on index.train_sample vectors (seed train.seed), every rank adds a\n"
    "slice of the files. Sources already built from the same inputs are skipped.\n"
    "Threads per rank: train.threads.",
    "embed index train", NULL};
