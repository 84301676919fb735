/* Training-step throughput of the tagger on the emoji configuration, one
 * thread, against a cblas_sgemm 1024^3 peak measured in the same run.
 *
 *   usage: bench_model [steps=20] [batch=64] [n_tags=3000]
 *
 * A step is what ot-train does per batch: zero grads, forward with loss,
 * backward, AdamW. Prints samples/s, the achieved GFLOP/s of the model's
 * matrix products (ot_model_train_flops) and the fraction of the SGEMM
 * peak, plus the forward / backward / optimizer split. Not a test. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>

#include "model_fixture.h"
#include "ot_optim.h"

static double sgemm_peak(void) {
  const int n = 1024;
  float *a = ot_xmalloc((size_t)n * n * sizeof(float)), *b = ot_xmalloc((size_t)n * n * sizeof(float));
  float *c = ot_xcalloc((size_t)n * n, sizeof(float));
  for (size_t i = 0; i < (size_t)n * n; i++) a[i] = b[i] = (float)(i % 7) * 0.01f;
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
  double best = 0.0;
  for (int rep = 0; rep < 5; rep++) {
    double t0 = ot_now();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
    double g = 2.0 * n * n * n / (ot_now() - t0) / 1e9;
    if (g > best) best = g;
  }
  free(a);
  free(b);
  free(c);
  return best;
}

int main(int argc, char **argv) {
  int steps = argc > 1 ? atoi(argv[1]) : 20, B = argc > 2 ? atoi(argv[2]) : 64;
  int n_tags = argc > 3 ? atoi(argv[3]) : 3000;
  if (steps < 1 || B < 1 || n_tags < 1) {
    fprintf(stderr, "usage: %s [steps>=1] [batch>=1] [n_tags>=1]\n", argv[0]);
    return 2;
  }
  openblas_set_num_threads(1);
  const char *sets[] = {"model.type=bin", "model.dim=128", "model.heads=4", "model.mlp_ratio=4",
                        "model.patch=8", "model.vis_layers=4", "model.txt_layers=2",
                        "model.fuse_layers=2", "model.title_len=16", "model.dropout=0.1"};
  ot_config cfg;
  fixture_config(&cfg, sets, (int)(sizeof sets / sizeof *sets));
  ot_model_dims d = {.T = 1, .H = 64, .W = 64, .n_tags = n_tags, .vocab = 2048, .max_batch = B};
  ot_model *m;
  if (ot_model_open(&m, &cfg, &d, 1)) {
    fprintf(stderr, "open: %s\n", ot_errmsg());
    return 1;
  }
  ot_model_init(m, 1);
  const int lens[] = {16, 9, 5, 12, 3, 7}; /* emoji titles are short: padding is typical */
  fixture_batch fb;
  fixture_batch_make(&fb, &d, 16, B, lens, 6, 2);
  ot_params *p = ot_model_params(m);
  ot_adamw_config opt = {0.9f, 0.95f, 1e-8f, 0.05f};

  double peak = sgemm_peak();
  double t_fwd = 0, t_bwd = 0, t_opt = 0, t_all = 0;
  float loss = 0;
  for (int s = -2; s < steps; s++) { /* two warm-up steps size the arena */
    double t0 = ot_now();
    ot_params_zero_grads(p);
    if (ot_model_forward(m, &fb.b, 1, (uint64_t)s, &loss)) {
      fprintf(stderr, "forward: %s\n", ot_errmsg());
      return 1;
    }
    double t1 = ot_now();
    ot_model_backward(m);
    double t2 = ot_now();
    ot_adamw_step(p, 1e-4f, &opt, s + 3);
    double t3 = ot_now();
    if (s >= 0) t_fwd += t1 - t0, t_bwd += t2 - t1, t_opt += t3 - t2, t_all += t3 - t0;
  }
  double flops = ot_model_train_flops(m, B);
  double sps = steps * (double)B / t_all, gflops = flops * steps / t_all / 1e9;
  printf("model: dim 128, 4+2+2 blocks, 64x64 patch 8, title 16, %d tags, %zu params, batch %d\n",
         n_tags, ot_params_numel(p), B);
  printf("step %.1f ms (forward %.1f, backward %.1f, adamw %.1f), loss %.3f\n",
         1e3 * t_all / steps, 1e3 * t_fwd / steps, 1e3 * t_bwd / steps, 1e3 * t_opt / steps, loss);
  printf("%.1f samples/s, %.2f GFLOP/step, %.1f GFLOP/s = %.0f%% of the sgemm 1024^3 peak "
         "(%.1f GFLOP/s, 1 thread)\n",
         sps, flops / 1e9, gflops, 100.0 * gflops / peak, peak);
  fixture_batch_free(&fb);
  ot_model_close(m);
  ot_config_free(&cfg);
  return 0;
}
