/* ot-synth-emb: a synthetic embedding corpus in ot-embed's layout (ot_emb.h),
 * for index tests and the 3M-vector benchmark.
 *
 *   ot-synth-emb OUT_DIR [--train N] [--query N] [--dim D] [--clusters K]
 *                [--subspace R] [--file-items F] [--vectors visual,title] [--seed S]
 *
 * writes OUT_DIR/train/emb-NNNNNN.h5 (N items, F per file) and OUT_DIR/val/
 * (the query items, same clusters), each with index.json.
 *
 * Model (chosen to look like learned embeddings, whose neighbourhoods have a
 * low intrinsic dimension, not like isotropic noise): cluster c has a unit
 * centre m_c and R random directions B_c; an item is
 *   normalise(m_c + 0.5 * B_c z + 0.1 * e),  z ~ N(0, I_R), e ~ N(0, I_D / D).
 * A second vector ("title") reuses the item's z with noise added, so the two
 * live in one space and cross-modal queries make sense. Tags: the cluster's
 * own tag, a topic shared by every 10th cluster, and one of three keywords of
 * the cluster. Everything follows from --seed. */
#include "ot_common.h"
#include "ot_emb.h"
#include "ot_fs.h"
#include "ot_rng.h"

#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  int dim, clusters, subspace;
  float *centre; /* [K, D] */
  float *basis;  /* [K, R, D] */
} model;

static void normalise(float *x, int d) {
  double s = 0;
  for (int i = 0; i < d; i++) s += (double)x[i] * x[i];
  float inv = s > 0 ? (float)(1.0 / sqrt(s)) : 0.f;
  for (int i = 0; i < d; i++) x[i] *= inv;
}

static void model_init(model *m, uint64_t seed) {
  ot_rng r;
  ot_rng_seed(&r, seed);
  const size_t D = (size_t)m->dim, K = (size_t)m->clusters, R = (size_t)m->subspace;
  m->centre = ot_xmalloc(K * D * sizeof *m->centre);
  m->basis = ot_xmalloc(K * R * D * sizeof *m->basis + 1);
  ot_rng_fill_normal(&r, m->centre, K * D, 0.f, 1.f);
  for (size_t c = 0; c < K; c++) normalise(m->centre + c * D, m->dim);
  ot_rng_fill_normal(&r, m->basis, K * R * D, 0.f, (float)(1.0 / sqrt((double)D)));
}

/* One item of cluster c from latent z [R] into out [D]. */
static void item_vector(const model *m, ot_rng *r, int c, const float *z, float *out) {
  const int D = m->dim, R = m->subspace;
  const float noise = 0.1f / sqrtf((float)D);
  for (int i = 0; i < D; i++) out[i] = m->centre[(size_t)c * D + i] + noise * ot_rng_normal(r);
  for (int j = 0; j < R; j++) {
    const float *b = m->basis + ((size_t)c * R + j) * D;
    for (int i = 0; i < D; i++) out[i] += 0.5f * z[j] * b[i];
  }
  normalise(out, D);
}

/* One file of n items starting at item `first` of the split. */
static int write_file(const model *m, const char *path, const char *split, int64_t first, int64_t n, int n_vec,
                      const char *const *vec_names, uint64_t seed) {
  const int D = m->dim, R = m->subspace;
  ot_rng r;
  ot_rng_seed(&r, ot_rng_mix(seed, (uint64_t)first));
  char **ids = ot_xmalloc((size_t)n * sizeof *ids), **tag_text = ot_xmalloc((size_t)n * 3 * sizeof *tag_text);
  int64_t *off = ot_xmalloc((size_t)(n + 1) * sizeof *off);
  float *vec[2] = {NULL, NULL};
  for (int v = 0; v < n_vec; v++) vec[v] = malloc((size_t)n * D * sizeof(float));
  if (!vec[0] || (n_vec > 1 && !vec[1])) {
    free(vec[0]), free(vec[1]), free(ids), free(tag_text), free(off);
    return ot_fail(OT_ENOMEM, "%s: %lld vectors", path, (long long)n);
  }
  float *z = ot_xmalloc((size_t)R * sizeof *z + 1), *z2 = ot_xmalloc((size_t)R * sizeof *z2 + 1);
  char buf[96];
  off[0] = 0;
  for (int64_t i = 0; i < n; i++) {
    int c = (int)ot_rng_below(&r, (uint32_t)m->clusters);
    snprintf(buf, sizeof buf, "syn-%s-%09lld", split, (long long)(first + i));
    ids[i] = ot_xstrdup(buf);
    snprintf(buf, sizeof buf, "cluster-%d", c);
    tag_text[3 * i] = ot_xstrdup(buf);
    snprintf(buf, sizeof buf, "topic-%d", c / 10);
    tag_text[3 * i + 1] = ot_xstrdup(buf);
    snprintf(buf, sizeof buf, "kw-%d-%u", c, ot_rng_below(&r, 3));
    tag_text[3 * i + 2] = ot_xstrdup(buf);
    off[i + 1] = 3 * (i + 1);
    for (int j = 0; j < R; j++) z[j] = ot_rng_normal(&r);
    item_vector(m, &r, c, z, vec[0] + (size_t)i * D);
    if (n_vec > 1) {
      for (int j = 0; j < R; j++) z2[j] = z[j] + 0.3f * ot_rng_normal(&r);
      item_vector(m, &r, c, z2, vec[1] + (size_t)i * D);
    }
  }
  const int dims[2] = {D, D};
  const float *const vecs[2] = {vec[0], vec[1]};
  int st = ot_emb_write(path, n, (const char *const *)ids, (const char *const *)ids, off,
                        (const char *const *)tag_text, n_vec, vec_names, dims, vecs);
  for (int64_t i = 0; i < n; i++) free(ids[i]);
  for (int64_t i = 0; i < 3 * n; i++) free(tag_text[i]);
  free(ids), free(tag_text), free(off), free(z), free(z2), free(vec[0]), free(vec[1]);
  return st;
}

static int write_split(const model *m, const char *dir, const char *split, int64_t n, int64_t per_file, int n_vec,
                       const char *const *vec_names, uint64_t seed) {
  char folder[4200];
  snprintf(folder, sizeof folder, "%s/%s", dir, split);
  int st = ot_fs_mkdirs(folder);
  const int files = (int)((n + per_file - 1) / per_file);
  char **paths = ot_xcalloc((size_t)files + 1, sizeof *paths);
  int64_t *items = ot_xcalloc((size_t)files + 1, sizeof *items);
  for (int f = 0; f < files && st == OT_OK; f++) {
    char name[64], path[4300];
    snprintf(name, sizeof name, "emb-%06d.h5", f);
    snprintf(path, sizeof path, "%s/%s", folder, name);
    paths[f] = ot_xstrdup(name);
    items[f] = n - f * per_file < per_file ? n - f * per_file : per_file;
    st = write_file(m, path, split, f * per_file, items[f], n_vec, vec_names, seed);
    if (files > 4) fprintf(stderr, "ot-synth-emb: %s %d/%d\n", split, f + 1, files);
  }
  if (st == OT_OK) st = ot_emb_set_write_index(dir, split, files, (const char *const *)paths, items);
  for (int f = 0; f < files; f++) free(paths[f]);
  free(paths);
  free(items);
  return st;
}

int main(int argc, char **argv) {
  int64_t n_train = 10000, n_query = 1000, per_file = 100000;
  int dim = 128, clusters = 1000, subspace = 8;
  uint64_t seed = 1;
  char vectors[256] = "visual";
  static const struct option opts[] = {
      {"train", 1, 0, 't'}, {"query", 1, 0, 'q'},    {"dim", 1, 0, 'd'},     {"clusters", 1, 0, 'k'},
      {"subspace", 1, 0, 'r'}, {"file-items", 1, 0, 'f'}, {"vectors", 1, 0, 'v'}, {"seed", 1, 0, 's'},
      {"help", 0, 0, 'h'},  {0, 0, 0, 0}};
  int o;
  while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (o) {
    case 't': n_train = atoll(optarg); break;
    case 'q': n_query = atoll(optarg); break;
    case 'd': dim = atoi(optarg); break;
    case 'k': clusters = atoi(optarg); break;
    case 'r': subspace = atoi(optarg); break;
    case 'f': per_file = atoll(optarg); break;
    case 'v': snprintf(vectors, sizeof vectors, "%s", optarg); break;
    case 's': seed = strtoull(optarg, NULL, 10); break;
    default:
      fprintf(o == 'h' ? stdout : stderr,
              "usage: ot-synth-emb OUT_DIR [--train N] [--query N] [--dim D] [--clusters K] [--subspace R]\n"
              "                    [--file-items F] [--vectors visual[,title]] [--seed S]\n"
              "Clustered unit vectors with per-cluster tags in ot-embed's layout: OUT_DIR/train/, OUT_DIR/val/.\n");
      return o == 'h' ? 0 : 2;
    }
  }
  char *comma = strchr(vectors, ',');
  const char *names[2] = {vectors, comma ? comma + 1 : NULL};
  if (comma) *comma = 0;
  if (optind != argc - 1 || n_train < 1 || n_query < 0 || dim < 1 || clusters < 1 || subspace < 0 ||
      per_file < 1 || !names[0][0] || (comma && (!names[1][0] || strchr(names[1], ',')))) {
    fprintf(stderr, "ot-synth-emb: bad arguments (see --help)\n");
    return 2;
  }
  model m = {.dim = dim, .clusters = clusters, .subspace = subspace};
  model_init(&m, seed);
  int st = write_split(&m, argv[optind], "train", n_train, per_file, comma ? 2 : 1, names, seed * 2 + 1);
  if (st == OT_OK && n_query > 0)
    st = write_split(&m, argv[optind], "val", n_query, per_file, comma ? 2 : 1, names, seed * 2 + 2);
  free(m.centre);
  free(m.basis);
  if (st) fprintf(stderr, "ot-synth-emb: %s\n", ot_errmsg());
  return ot_exit_code(st);
}
