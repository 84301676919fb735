/* Training-step throughput of the tagger on the emoji configuration, one
 * thread, against a cblas_sgemm 1024^3 peak measured in the same run.
 *
 *   usage: bench_model [steps=20] [batch=64] [n_tags=3000] [type=bin] [tokenizer]
 *
 * type opg or baseline: the generative models on synthetic tags shaped like
 * emoji-en's (7 tags per item on average, with emoji-en's BPE token counts,
 * tags shared across items; K = 16 prompts, 2 prompt and 2 decoder
 * blocks, vocabulary 2048). With a tokenizer file of 2048 tokens (e.g.
 * runs/emoji-en/bin/tokenizer.txt), also the generation throughput with the
 * KV cache and with the prefix recomputed at every position, in the same
 * run: every prompt decoded (threshold 0) by the just-initialised model,
 * which rarely writes EOS, so sequences run to tag_len tokens (the worst
 * case; trained models stop after ~3).
 *
 * A step is what ot-train does per batch: zero grads, forward with loss,
 * backward, AdamW. Prints samples/s, the achieved GFLOP/s of the model's
 * matrix products (ot_model_train_flops) and the fraction of the SGEMM
 * peak, plus the forward / backward / optimizer split. Not a test. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
  const char *type = argc > 4 ? argv[4] : "bin";
  if (steps < 1 || B < 1 || n_tags < 1) {
    fprintf(stderr, "usage: %s [steps>=1] [batch>=1] [n_tags>=1] [bin|asl|opg|baseline]\n",
            argv[0]);
    return 2;
  }
  openblas_set_num_threads(1);
  char type_set[64];
  snprintf(type_set, sizeof type_set, "model.type=%s", type);
  const char *sets[] = {type_set, "model.dim=128", "model.heads=4", "model.mlp_ratio=4",
                        "model.patch=8", "model.vis_layers=4", "model.txt_layers=2",
                        "model.fuse_layers=2", "model.title_len=16", "model.dropout=0.1",
                        "model.prompts=16", "model.prompt_layers=2", "model.dec_layers=2",
                        "model.tag_len=12", "model.seq_len=64"};
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
  if (ot_model_is_generative(m)) {
    /* a pool of 3B/2 tags whose token counts follow emoji-en's distinct
     * tags under its 2048-token BPE (per 3192: 1 814, 2 1153, 3 812, 4 305,
     * 5 91, 6 13, 7+ 4); item b draws 3..11 of them */
    static const int hist[] = {814, 1153, 812, 305, 91, 13, 4};
    ot_rng r;
    ot_rng_seed(&r, 4);
    const int pool = 3 * B / 2 + 1;
    int32_t(*tok)[9] = ot_xcalloc((size_t)pool, sizeof *tok);
    for (int j = 0; j < pool; j++) {
      int u = (int)ot_rng_below(&r, 3192), len = 1;
      while (len < 7 && u >= hist[len - 1]) u -= hist[len++ - 1];
      for (int k = 0; k < len; k++) tok[j][k] = OT_BPE_N_SPECIAL + (int32_t)ot_rng_below(&r, 2000);
    }
    int *counts = ot_xmalloc((size_t)B * sizeof *counts), total = 0;
    for (int b = 0; b < B; b++) total += counts[b] = 3 + (int)ot_rng_below(&r, 9);
    const int32_t **tags = ot_xmalloc((size_t)total * sizeof *tags);
    for (int j = 0; j < total; j++) tags[j] = tok[ot_rng_below(&r, (uint32_t)pool)];
    fixture_tags_set(&fb, B, counts, tags);
    free(tags);
    free(counts);
    free(tok);
  }
  ot_params *p = ot_model_params(m);
  ot_adamw_config opt = {0.9f, 0.95f, 1e-8f, 0.05f};

  if (argc > 5 && ot_model_is_generative(m)) {
    ot_bpe *bpe;
    if (ot_bpe_load(&bpe, argv[5])) {
      fprintf(stderr, "tokenizer: %s\n", ot_errmsg());
      return 1;
    }
    ot_gen_item *out = ot_xcalloc((size_t)B, sizeof *out);
    double secs[2];
    int n_tags_gen[2] = {0, 0};
    for (int no_cache = 0; no_cache < 2; no_cache++) {
      ot_gen_opts o = {.bpe = bpe, .threshold = 0.0f, .no_cache = no_cache};
      double t0 = 0.0;
      for (int rep = -1; rep < 3; rep++) { /* one warm-up call sizes the arena */
        if (rep == 0) t0 = ot_now();
        if (ot_model_generate(m, &fb.b, &o, out)) {
          fprintf(stderr, "generate: %s\n", ot_errmsg());
          return 1;
        }
        if (rep == 0)
          for (int i = 0; i < B; i++) n_tags_gen[no_cache] += out[i].n;
        ot_gen_items_free(out, B);
      }
      secs[no_cache] = (ot_now() - t0) / 3;
    }
    const int opg = !strcmp(type, "opg");
    printf("generation (%s), %d sequence(s) of up to %d tokens per item, 1 thread: %.1f items/s "
           "with the KV cache, %.1f items/s recomputing the prefix (%.2fx); %d and %d tags\n",
           type, opg ? 16 : 1, opg ? 13 : 64, B / secs[0], B / secs[1], secs[1] / secs[0],
           n_tags_gen[0], n_tags_gen[1]);
    free(out);
    ot_bpe_close(bpe);
  }
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
  printf("model %s: dim 128, 4+2+2 blocks, 64x64 patch 8, title 16, %d tags, %zu params, "
         "batch %d\n", type, n_tags, ot_params_numel(p), B);
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
