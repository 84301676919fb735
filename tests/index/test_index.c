/* ot_index: folders written with the building functions read back by
 * ot_index_open; sharded search equals unsharded and brute force (Flat);
 * padding when k > ntotal; IVF with nprobe = nlist is exact; rows table;
 * errors naming the file; the FAISS C API shim's error codes. */
#include "ot_common.h"
#include "ot_fs.h"
#include "ot_index.h"
#include "ot_test.h"

#include <faiss/c_api/IndexIVF_c.h>
#include <faiss/c_api/Index_c.h>
#include <faiss/c_api/error_c.h>
#include <faiss/c_api/index_factory_c.h>
#include <faiss/c_api/index_io_c.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

enum { N = 2000, D = 24, NQ = 40, K = 7 };

static float X[N * D], Q[NQ * D];
static char dir[4096];

static uint64_t rng = 88172645463325252ULL;
static float frand(void) {
  rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
  return (float)((rng >> 11) * (1.0 / 9007199254740992.0)) - 0.5f;
}
static void unit_rows(float *x, int n) {
  for (int i = 0; i < n; i++) {
    double s = 0;
    for (int j = 0; j < D; j++) x[i * D + j] = frand(), s += (double)x[i * D + j] * x[i * D + j];
    for (int j = 0; j < D; j++) x[i * D + j] /= (float)sqrt(s);
  }
}

/* rows.h5 for rows [0, n): id "item-i", group "g-(i/3)", i%4 tags "t<i>-<j>". */
static void write_rows(const char *folder, int n, int batch) {
  char path[4300];
  snprintf(path, sizeof path, "%s/rows.h5", folder);
  ot_index_rows_writer *w = NULL;
  CHECK(ot_index_rows_create(&w, path) == OT_OK);
  static char idb[N][24], grb[N][24], tgb[N * 3][24];
  static const char *ids[N], *groups[N], *tags[N * 3];
  static int64_t off[N + 1];
  int nt = 0;
  for (int i = 0; i < n; i++) {
    snprintf(idb[i], sizeof idb[i], "item-%d", i), ids[i] = idb[i];
    snprintf(grb[i], sizeof grb[i], "g-%d", i / 3), groups[i] = grb[i];
    off[i] = nt;
    for (int j = 0; j < i % 4; j++) snprintf(tgb[nt], sizeof tgb[nt], "t%d-%d", i, j), tags[nt] = tgb[nt], nt++;
  }
  off[n] = nt;
  for (int at = 0; at < n; at += batch) {
    int m = n - at < batch ? n - at : batch;
    CHECK(ot_index_rows_append(w, m, ids + at, groups + at, off + at, tags) == OT_OK);
  }
  CHECK(ot_index_rows_commit(w) == OT_OK);
}

/* A folder of `shards` Flat (or `factory`) shards over X[0..n) cut at `cuts`. */
static void build(const char *source, const char *factory, int n, int sharded, int shards, const int *cuts) {
  char folder[4200], path[4300];
  snprintf(folder, sizeof folder, "%s/%s", dir, source);
  CHECK(ot_fs_mkdirs(folder) == OT_OK);
  int64_t shard_n[8];
  FaissIndex *trained = NULL;
  CHECK(faiss_index_factory(&trained, D, factory, METRIC_INNER_PRODUCT) == 0);
  if (!faiss_Index_is_trained(trained)) CHECK(faiss_Index_train(trained, n, X) == 0);
  for (int s = 0; s < shards; s++) {
    int lo = s ? cuts[s - 1] : 0, hi = s < shards - 1 ? cuts[s] : n;
    FaissIndex *ix = NULL;
    /* every shard starts from the same trained index, as ot-index broadcasts it */
    char tmp[4300];
    snprintf(tmp, sizeof tmp, "%s/trained.tmp", folder);
    CHECK(faiss_write_index_fname(trained, tmp) == 0);
    CHECK(faiss_read_index_fname(tmp, 0, &ix) == 0);
    unlink(tmp);
    CHECK(faiss_Index_add(ix, hi - lo, X + (size_t)lo * D) == 0);
    shard_n[s] = faiss_Index_ntotal(ix);
    ot_index_shard_path(path, sizeof path, folder, sharded, s);
    CHECK(faiss_write_index_fname(ix, path) == 0);
    faiss_Index_free(ix);
  }
  faiss_Index_free(trained);
  write_rows(folder, n, 777);
  ot_index_meta m = {.source = source, .factory = factory, .query_vec = "title", .key_vec = "visual",
                     .fingerprint = "fp1", .dim = D, .sharded = sharded, .shards = shards, .nprobe = 1,
                     .ntotal = n, .shard_ntotal = shard_n};
  CHECK(ot_index_write_meta(folder, &m) == OT_OK);
}

/* Brute-force top-k of query qi over X[0..n). */
static void exact(int qi, int n, int k, int64_t *rows) {
  for (int j = 0; j < k; j++) rows[j] = -1;
  float best[64];
  for (int i = 0; i < n; i++) {
    float s = 0;
    for (int d = 0; d < D; d++) s += Q[qi * D + d] * X[i * D + d];
    int p = k;
    while (p > 0 && (rows[p - 1] < 0 || best[p - 1] < s)) p--;
    if (p >= k) continue;
    for (int j = k - 1; j > p; j--) best[j] = best[j - 1], rows[j] = rows[j - 1];
    best[p] = s, rows[p] = i;
  }
}

static void test_sharded_equals_merged(void) {
  const int cuts[2] = {700, 1500};
  build("merged", "Flat", N, 0, 1, NULL);
  build("sharded", "Flat", N, 1, 3, cuts);
  ot_index *a = NULL, *b = NULL;
  CHECK(ot_index_open(&a, dir, "merged") == OT_OK);
  CHECK(ot_index_open(&b, dir, "sharded") == OT_OK);
  if (!a || !b) return;
  CHECK(ot_index_ntotal(a) == N && ot_index_ntotal(b) == N);
  CHECK(ot_index_dim(b) == D);
  CHECK(!strcmp(ot_index_query_vec(b), "title") && !strcmp(ot_index_key_vec(b), "visual"));
  static float sa[NQ * K], sb[NQ * K];
  static int64_t ra[NQ * K], rb[NQ * K], re[K];
  CHECK(ot_index_search(a, Q, NQ, K, sa, ra) == OT_OK);
  CHECK(ot_index_search(b, Q, NQ, K, sb, rb) == OT_OK);
  int same = 1, exact_ok = 1, sorted = 1;
  for (int i = 0; i < NQ; i++) {
    exact(i, N, K, re);
    for (int j = 0; j < K; j++) {
      same &= ra[i * K + j] == rb[i * K + j] && fabsf(sa[i * K + j] - sb[i * K + j]) < 1e-6f;
      exact_ok &= ra[i * K + j] == re[j];
      if (j) sorted &= sb[i * K + j - 1] >= sb[i * K + j];
    }
  }
  CHECKF(same, "sharded Flat top-%d differs from merged Flat", K);
  CHECKF(exact_ok, "Flat top-%d differs from brute force", K);
  CHECK(sorted);
  /* some of the winners come from the later shards: the merge is exercised */
  int from_last = 0;
  for (int i = 0; i < NQ * K; i++) from_last += rb[i] >= 1500;
  CHECK(from_last > 0);

  /* rows table: the row numbers of search results index it */
  const char *const *tags;
  int nt;
  CHECK(!strcmp(ot_index_row_id(b, 1234), "item-1234"));
  CHECK(!strcmp(ot_index_row_group(b, 1234), "g-411"));
  ot_index_row_tags(b, 1235, &tags, &nt);
  CHECK(nt == 3 && !strcmp(tags[0], "t1235-0") && !strcmp(tags[2], "t1235-2"));
  ot_index_row_tags(b, 1236, &tags, &nt);
  CHECK(nt == 0);
  ot_index_row_tags(b, N - 1, &tags, &nt);
  CHECK(nt == (N - 1) % 4 && !strcmp(tags[0], "t1999-0"));
  CHECK(ot_index_set_nprobe(b, 4) == OT_OK); /* Flat: no-op, still succeeds */
  CHECK(ot_index_search(b, Q, NQ, K, sb, rb) == OT_OK && rb[0] == ra[0]);
  ot_index_close(a);
  ot_index_close(b);
}

static void test_padding(void) {
  const int cuts[1] = {2};
  build("tiny", "Flat", 5, 1, 2, cuts);
  ot_index *ix = NULL;
  CHECK(ot_index_open(&ix, dir, "tiny") == OT_OK);
  if (!ix) return;
  float s[2 * 8];
  int64_t r[2 * 8];
  CHECK(ot_index_search(ix, Q, 2, 8, s, r) == OT_OK);
  int seen = 0;
  for (int j = 0; j < 5; j++) seen |= 1 << r[j];
  CHECK(seen == 31);
  CHECK(r[5] == -1 && r[7] == -1 && isinf(s[5]) && s[5] < 0 && r[15] == -1);
  CHECK(ot_index_search(ix, Q, 2, 0, s, r) == OT_EINVAL);
  ot_index_close(ix);
}

static void test_ivf_nprobe(void) {
  build("ivf", "IVF8,Flat", N, 0, 1, NULL);
  ot_index *ix = NULL;
  CHECK(ot_index_open(&ix, dir, "ivf") == OT_OK);
  if (!ix) return;
  static float s[NQ * K];
  static int64_t r[NQ * K], re[K];
  CHECK(ot_index_set_nprobe(ix, 8) == OT_OK); /* every list: exact */
  CHECK(ot_index_search(ix, Q, NQ, K, s, r) == OT_OK);
  int ok = 1;
  for (int i = 0; i < NQ; i++) {
    exact(i, N, K, re);
    for (int j = 0; j < K; j++) ok &= r[i * K + j] == re[j];
  }
  CHECKF(ok, "IVF8 with nprobe 8 is not exact");
  /* nprobe 1 (what meta.json says) visits fewer lists: some result differs */
  CHECK(ot_index_set_nprobe(ix, 1) == OT_OK);
  CHECK(ot_index_search(ix, Q, NQ, K, s, r) == OT_OK);
  int differs = 0;
  for (int i = 0; i < NQ; i++) {
    exact(i, N, K, re);
    for (int j = 0; j < K; j++) differs |= r[i * K + j] != re[j];
  }
  CHECK(differs);
  CHECK(ot_index_set_nprobe(ix, 0) == OT_EINVAL);
  ot_index_close(ix);
}

static void test_meta_helpers(void) {
  char folder[4200];
  snprintf(folder, sizeof folder, "%s/merged", dir);
  int np = 0;
  CHECK(ot_index_is_complete(folder, "fp1", &np) == 1 && np == 1);
  CHECK(ot_index_is_complete(folder, "other", NULL) == 0);
  CHECK(ot_index_update_nprobe(folder, 12) == OT_OK);
  CHECK(ot_index_is_complete(folder, "fp1", &np) == 1 && np == 12);
  snprintf(folder, sizeof folder, "%s/nowhere", dir);
  CHECK(ot_index_is_complete(folder, "fp1", NULL) == 0);
}

static void test_errors(void) {
  ot_index *ix = NULL;
  char path[4300], folder[4200];
  CHECK(ot_index_open(&ix, dir, "absent") == OT_EINVAL && !ix);
  CHECK_MSG("run ot-index");
  CHECK_MSG("absent/meta.json");

  /* a shard missing */
  snprintf(folder, sizeof folder, "%s/sharded", dir);
  ot_index_shard_path(path, sizeof path, folder, 1, 2);
  char moved[4400];
  snprintf(moved, sizeof moved, "%s.away", path);
  CHECK(rename(path, moved) == 0);
  CHECK(ot_index_open(&ix, dir, "sharded") == OT_EINVAL && !ix);
  CHECK_MSG("shard-02.faiss");
  CHECK(rename(moved, path) == 0);

  /* meta.json not complete */
  snprintf(path, sizeof path, "%s/merged/meta.json", dir);
  char *txt = NULL;
  size_t n = 0;
  CHECK(ot_fs_read_all(path, &txt, &n) == OT_OK);
  char *c = txt ? strstr(txt, "\"complete\": true") : NULL;
  CHECK(c != NULL);
  if (c) {
    memcpy(c, "\"complete\":false", 16);
    CHECK(ot_fs_write_atomic(path, txt, n) == OT_OK);
    CHECK(ot_index_open(&ix, dir, "merged") == OT_EINVAL);
    CHECK_MSG("not complete");
  }
  free(txt);

  /* rows.h5 of another size than the index */
  snprintf(folder, sizeof folder, "%s/tiny", dir);
  write_rows(folder, 4, 3);
  CHECK(ot_index_open(&ix, dir, "tiny") == OT_EINVAL);
  CHECK_MSG("rows.h5");
}


/* The file system fills up while rows.h5 is closed (HDF5 writes its cached
 * chunks and metadata then): the commit fails and publishes nothing. A
 * rows.h5 renamed into place half written would let meta.json call the
 * index complete, and a rerun would skip it for good. RLIMIT_FSIZE at the
 * temp file's size stands in for the full disk. In a child process: HDF5
 * keeps the file whose close failed and crashes closing it again at exit. */
static void test_rows_commit_disk_full(void) {
  char folder[4200], path[4300];
  snprintf(folder, sizeof folder, "%s/full", dir);
  CHECK(ot_fs_mkdirs(folder) == OT_OK);
  snprintf(path, sizeof path, "%s/rows.h5", folder);
  unlink(path);
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) {
    ot_index_rows_writer *w = NULL;
    if (ot_index_rows_create(&w, path) != OT_OK) _exit(10);
    static char idb[N][24];
    static const char *ids[N];
    static int64_t off[N + 1];
    for (int i = 0; i < N; i++) snprintf(idb[i], sizeof idb[i], "item-%d", i), ids[i] = idb[i];
    if (ot_index_rows_append(w, N, ids, ids, off, NULL) != OT_OK) _exit(11);
    char tmp[4400];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    struct stat sb;
    if (stat(tmp, &sb) != 0) _exit(12);
    struct rlimit lim;
    getrlimit(RLIMIT_FSIZE, &lim);
    lim.rlim_cur = (rlim_t)sb.st_size;
    signal(SIGXFSZ, SIG_IGN);
    if (setrlimit(RLIMIT_FSIZE, &lim) != 0) _exit(13);
    ot_fail(OT_OK, "%s", "");
    int st = ot_index_rows_commit(w);
    fprintf(stderr, "commit on a full disk: status %d, '%s'\n", st, ot_errmsg());
    _exit(st != OT_EIO ? 1 : !strstr(ot_errmsg(), "rows.h5") ? 2 : ot_fs_exists(tmp) ? 3 : 0);
  }
  int status = -1;
  CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
  CHECKF(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
  CHECKF(!ot_fs_exists(path), "a half-written %s was published", path);
}

static void test_shim_errors(void) {
  FaissIndex *ix = NULL;
  int r = faiss_index_factory(&ix, D, "NoSuchIndex", METRIC_INNER_PRODUCT);
  CHECK(r < 0 && faiss_get_last_error() && strlen(faiss_get_last_error()) > 0);
  CHECK(faiss_read_index_fname("/nonexistent/x.faiss", 0, &ix) < 0);
  CHECK(faiss_get_last_error() && strstr(faiss_get_last_error(), "nonexistent"));
  CHECK(faiss_index_factory(&ix, D, "IVF4,Flat", METRIC_INNER_PRODUCT) == 0);
  CHECK(faiss_IndexIVF_cast(ix) != NULL && faiss_IndexIVF_nlist(faiss_IndexIVF_cast(ix)) == 4);
  CHECK(faiss_Index_is_trained(ix) == 0);
  CHECK(faiss_Index_add(ix, 1, X) < 0); /* untrained IVF refuses */
  faiss_Index_free(ix);
  CHECK(faiss_index_factory(&ix, D, "Flat", METRIC_INNER_PRODUCT) == 0);
  CHECK(faiss_IndexIVF_cast(ix) == NULL && faiss_Index_d(ix) == D);
  faiss_Index_free(ix);
}

int main(int argc, char **argv) {
  snprintf(dir, sizeof dir, "%s", argc > 1 ? argv[1] : "test-index-work");
  CHECK(ot_fs_mkdirs(dir) == OT_OK);
  unit_rows(X, N);
  unit_rows(Q, NQ);
  test_sharded_equals_merged();
  test_padding();
  test_ivf_nprobe();
  test_meta_helpers();
  test_errors();
  test_rows_commit_disk_full();
  test_shim_errors();
  return ot_test_report();
}
