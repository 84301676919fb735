/* Whole-model gradient check of the Bin and ASL taggers, of the
 * generative models (opg and rag with their matching held fixed, baseline)
 * and of the judge (its multi-positive InfoNCE, also recomputed by hand) against
 * central finite differences, plus the model's contracts: batch
 * independence and loss weighting, padding invariance, deterministic init,
 * accumulation, dropout determinism and config errors.
 *
 * Finite differences (float32 forward, loss read as double):
 *   numeric = (loss(w + h) - loss(w - h)) / 2h,  h = 1e-2
 * on SAMPLES random elements of every tensor. A tensor passes when the
 * normwise relative error |g - numeric| / max(|g|, |numeric|) over its
 * sampled elements is <= REL_TOL (2e-2). float32 rounding of a loss of a
 * few units divided by 2h is ~1e-4 (~3e-4 for the generative models'
 * losses of 10-18), far below the sampled gradients' norm (>= 1e-2 with the
 * noise added to the weights below). A negative control checks the
 * criterion rejects a gradient that is 5% off. */
#include <math.h>
#include <string.h>

#include "model_fixture.h"
#include "ot_test.h"

#define SAMPLES 8
#define FD_H 1e-2f
#define REL_TOL 2e-2

static const int LENS[] = {5, 2, 0}; /* full, padded, no title at all */

/* visual: "patches", or "features" (per-frame features of width 6, and
 * the titles' n-gram vectors of width 4: model.title_ngram) */
static ot_model *tiny_model(const char *type, const char *dropout, const char *visual,
                            ot_model_dims *d) {
  char t[64], dr[64], vis[64];
  snprintf(t, sizeof t, "model.type=%s", type);
  snprintf(dr, sizeof dr, "model.dropout=%s", dropout);
  snprintf(vis, sizeof vis, "model.visual=%s", visual);
  const char *ngram = strcmp(visual, "features") ? "model.title_ngram=0" : "model.title_ngram=4";
  const char *sets[] = {t, dr, vis, ngram, "model.dim=16", "model.heads=2", "model.patch=4",
                        "model.vis_layers=1", "model.txt_layers=1", "model.fuse_layers=1",
                        "model.title_len=5", "model.mlp_ratio=4", "model.prompts=3",
                        "model.prompt_layers=1", "model.dec_layers=1", "model.tag_len=3",
                        "model.seq_len=6", "model.tau=0.5", "model.w_match=0.7",
                        "model.w_has=1.3", "model.w_gen=0.9", "model.rag_m=2"};
  ot_config cfg;
  fixture_config(&cfg, sets, (int)(sizeof sets / sizeof *sets));
  *d = (ot_model_dims){.T = 2, .H = 8, .W = 8, .D = strcmp(visual, "features") ? 0 : 6, .n_tags = 7,
                       .vocab = 11, .max_batch = 3};
  ot_model *m = NULL;
  int rc = ot_model_open(&m, &cfg, d, 1);
  ot_config_free(&cfg);
  if (rc) {
    fprintf(stderr, "open: %s\n", ot_errmsg());
    exit(1);
  }
  ot_model_init(m, 1234);
  /* move every tensor off its structured init (LN 1/0, zero biases) so that
   * every term of the gradient is exercised */
  ot_rng r;
  ot_rng_seed(&r, 99);
  ot_params *p = ot_model_params(m);
  /* the generative models' cross-attention queries see nearly uniform
   * attention at 0.1 (gradients ~3e-3, at the numeric derivative's noise):
   * larger weights sharpen it */
  const float noise = ot_model_is_generative(m) ? 0.25f : 0.1f;
  float *W = ot_params_values(p);
  for (int i = 0; i < ot_params_count(p); i++) {
    const ot_param_view *v = ot_params_view(p, i);
    for (size_t j = 0; j < v->numel; j++) W[v->offset + j] += noise * ot_rng_normal(&r);
  }
  return m;
}

static double loss_of(ot_model *m, const ot_batch *b, int training) {
  float loss = 0.0f;
  int rc = ot_model_forward(m, b, training, 77, &loss);
  OT_ASSERT(rc == OT_OK);
  return loss;
}

/* Returns the worst normwise relative error over all tensors; `bias`
 * multiplies the analytic gradient of tensor `biased` (negative control). */
static double grad_check(ot_model *m, const ot_batch *b, int training, int biased, double bias,
                         int verbose) {
  ot_params *p = ot_model_params(m);
  ot_params_zero_grads(p);
  double loss = loss_of(m, b, training);
  ot_model_backward(m);
  size_t total = ot_params_total(p);
  float *g = ot_xmalloc(total * sizeof(float));
  memcpy(g, ot_params_grads(p), total * sizeof(float));
  float *W = ot_params_values(p);
  ot_rng r;
  ot_rng_seed(&r, 5);
  double worst = 0.0;
  const char *worst_name = "";
  for (int i = 0; i < ot_params_count(p); i++) {
    const ot_param_view *v = ot_params_view(p, i);
    double dd = 0.0, aa = 0.0, nn = 0.0;
    for (int s = 0; s < SAMPLES; s++) {
      size_t j = v->offset + ot_rng_below(&r, (uint32_t)v->numel);
      const int judge = ot_model_needs_tags(m) && !ot_model_is_generative(m);
      if (judge && strcmp(v->name, "txt.wte") == 0) { /* the judge reads tags, not titles */
        const int n_tok = b->tag_offsets[b->item_tags[b->B]];
        j = v->offset + (size_t)b->tag_tokens[ot_rng_below(&r, (uint32_t)n_tok)] * v->shape[1] +
            ot_rng_below(&r, (uint32_t)v->shape[1]);
      } else if (strcmp(v->name, "txt.wte") == 0) { /* a row some valid title token uses */
        int k;
        do k = (int)ot_rng_below(&r, (uint32_t)(b->B * 5)); while (!b->title_mask[k]);
        j = v->offset + (size_t)b->title[k] * v->shape[1] + ot_rng_below(&r, (uint32_t)v->shape[1]);
      }
      float w0 = W[j];
      W[j] = w0 + FD_H;
      double lp = loss_of(m, b, training);
      W[j] = w0 - FD_H;
      double lm = loss_of(m, b, training);
      W[j] = w0;
      double num = (lp - lm) / (2.0 * FD_H);
      double ana = g[j] * (i == biased ? bias : 1.0);
      dd += (ana - num) * (ana - num);
      aa += ana * ana;
      nn += num * num;
    }
    double den = sqrt(aa > nn ? aa : nn);
    double rel = den > 0 ? sqrt(dd) / den : 0.0;
    if (verbose > 1) printf("  %-28s |g| %.3e rel err %.2e\n", v->name, sqrt(aa), rel);
    /* a tensor whose sampled gradient vanishes would check nothing */
    if (i != biased && den < 1e-6) {
      fprintf(stderr, "%s: sampled gradient is zero\n", v->name);
      rel = INFINITY;
    }
    if (rel > worst) worst = rel, worst_name = v->name;
  }
  if (verbose) printf("loss %.5f worst relative error %.3e (%s)\n", loss, worst, worst_name);
  free(g);
  return worst;
}

/* Tags of the generative checks (vocabulary 11: ids 5..10, tag_len 3).
 * Item 0: a 3-token tag and a 1-token tag (its baseline sequence fills
 * seq_len 6 exactly, so every decoder position is used); item 1: four tags
 * for three prompts (one is left unmatched), the first cut from 5 to 3
 * tokens (then equal to item 0's first tag: one InfoNCE column), the
 * second also on item 0; item 2: no tags (and no title). */
static const int32_t T0[] = {5, 6, 7, 0}, T1[] = {8, 0}, T2[] = {5, 6, 7, 9, 10, 0},
                     T3[] = {8, 0}, T4[] = {9, 10, 0}, T5[] = {6, 0};
static const int32_t *const GEN_TAGS[] = {T0, T1, T2, T3, T4, T5};
static const int GEN_COUNTS[] = {2, 4, 0};

/* rag's retrieved candidates: item 0 two (one cut from 4 to 3 tokens),
 * item 1 three of which the model reads the first rag_m = 2, item 2 none
 * (every candidate slot masked). */
static const int32_t CAND_ITEM[] = {0, 2, 5, 5}, CAND_OFF[] = {0, 4, 5, 7, 8, 9};
static const int32_t CAND_TOK[] = {5, 9, 6, 10, 8, 9, 7, 6, 5};
static const float CAND_SCORE[] = {0.9f, 0.4f, 0.7f, 0.6f, 0.1f};

static void check_type(const char *type, const char *dropout, const char *visual, int training,
                       int verbose) {
  ot_model_dims d;
  ot_model *m = tiny_model(type, dropout, visual, &d);
  const int generative = ot_model_is_generative(m), judge = !strcmp(type, "judge");
  fixture_batch fb;
  fixture_batch_make(&fb, &d, 5, 3, LENS, 3, 42);
  printf("%s (dropout %s, %s):\n", type, dropout, visual);
  /* n-gram vectors (model.title_ngram 4): unit rows, item 2 (no title) zero */
  static const float NGRAM[12] = {0.5f, -0.5f, 0.5f, 0.5f, 0.6f, 0.0f, 0.0f, -0.8f, 0.0f, 0.0f, 0.0f, 0.0f};
  if (ot_model_title_ngram(m)) fb.b.title_ngram = NGRAM;
  CHECK(ot_model_title_ngram(m) == (!strcmp(visual, "features") && !judge ? 4 : 0));
  if (generative || judge) {
    fixture_tags_set(&fb, 3, GEN_COUNTS, GEN_TAGS);
    fb.b.cand_item = CAND_ITEM, fb.b.cand_offsets = CAND_OFF, fb.b.cand_tokens = CAND_TOK;
    fb.b.cand_score = CAND_SCORE;
    if (!strcmp(type, "opg") || !strcmp(type, "rag")) { /* hold the discrete matching fixed */
      int n = 0;
      loss_of(m, &fb.b, training);
      const int32_t *match = ot_model_matching(m, &n);
      CHECK(match && n == 6);
      int unmatched = 0;
      for (int j = 0; j < n; j++) unmatched += match[j] < 0;
      CHECK(unmatched == 1); /* item 1: four tags, three prompts */
      CHECK(ot_model_set_matching(m, match, n) == OT_OK);
    }
  }
  CHECK(grad_check(m, &fb.b, training, -1, 1.0, verbose) <= REL_TOL);
  /* the criterion rejects a gradient that is 5% off in a single tensor */
  int qkv = ot_params_find(ot_model_params(m),
                           judge ? "vis.block0.attn.qkv.w" : "fuse.block0.attn.qkv.w");
  CHECK(qkv >= 0);
  CHECK(grad_check(m, &fb.b, training, qkv, 1.05, 0) > REL_TOL);

  if (generative || judge) { /* every token row has a gradient (tied output layer; judge: no title) */
    fixture_batch_free(&fb);
    ot_model_close(m);
    return;
  }
  /* the padding token's embedding row gets no gradient */
  ot_params *p = ot_model_params(m);
  const ot_param_view *wte = ot_params_view(p, ot_params_find(p, "txt.wte"));
  ot_params_zero_grads(p);
  loss_of(m, &fb.b, training);
  ot_model_backward(m);
  const float *G = ot_params_grads(p);
  double pad_row = 0.0, row1 = 0.0;
  for (int c = 0; c < 16; c++) pad_row += fabs(G[wte->offset + c]);
  for (size_t c = 16; c < wte->numel; c++) row1 += fabs(G[wte->offset + c]);
  CHECK(pad_row == 0.0);
  CHECK(row1 > 0.0);
  fixture_batch_free(&fb);
  ot_model_close(m);
}

/* The judge's loss recomputed in double from its own vectors: image vectors
 * of the forward, tag vectors from ot_model_judge_embed_text (the same
 * encoder without dropout), the formula of ot_model_judge.c. The fixture's
 * tags cut to tag_len 3: columns {5 6 7} (items 0 and 1), {8} (0 and 1),
 * {9 10} (1), {6} (1); item 2 has none. */
static void check_judge_loss(void) {
  ot_model_dims d;
  ot_model *m = tiny_model("judge", "0", "patches", &d);
  fixture_batch fb;
  fixture_batch_make(&fb, &d, 5, 3, LENS, 3, 42);
  fixture_tags_set(&fb, 3, GEN_COUNTS, GEN_TAGS);
  fb.b.loss_scale = 0.125f; /* as if the global batch had 8 items */
  const double loss = loss_of(m, &fb.b, 0);
  float v[3 * 16], t[4 * 16];
  CHECK(ot_model_judge_image(m, v) == OT_OK);
  const int32_t off[] = {0, 3, 4, 6, 7}, tok[] = {5, 6, 7, 8, 9, 10, 6};
  CHECK(ot_model_judge_embed_text(m, off, tok, 4, t) == OT_OK);
  const int pos[3][4] = {{1, 1, 0, 0}, {1, 1, 1, 1}, {0, 0, 0, 0}};
  const double tau = 0.07;
  double s[3][4], l_i2t = 0.0, l_t2i = 0.0, norm_err = 0.0;
  for (int i = 0; i < 3; i++) {
    double n2 = 0.0;
    for (int c = 0; c < 16; c++) n2 += (double)v[i * 16 + c] * v[i * 16 + c];
    norm_err = fmax(norm_err, fabs(n2 - 1.0));
    for (int u = 0; u < 4; u++) {
      double dot = 0.0;
      for (int c = 0; c < 16; c++) dot += (double)v[i * 16 + c] * t[u * 16 + c];
      s[i][u] = dot / tau;
    }
  }
  for (int i = 0; i < 2; i++) { /* items with tags */
    double z = 0.0, sum = 0.0;
    int np = 0;
    for (int u = 0; u < 4; u++) z += exp(s[i][u]);
    for (int u = 0; u < 4; u++)
      if (pos[i][u]) sum += log(z) - s[i][u], np++;
    l_i2t += sum / np / 2.0;
  }
  for (int u = 0; u < 4; u++) {
    double z = 0.0, sum = 0.0;
    int np = 0;
    for (int i = 0; i < 3; i++) z += exp(s[i][u]);
    for (int i = 0; i < 3; i++)
      if (pos[i][u]) sum += log(z) - s[i][u], np++;
    l_t2i += sum / np / 4.0;
  }
  const double want = 0.125 * 3 * (l_i2t + l_t2i) / 2.0;
  printf("judge: loss %.6f, by hand %.6f; |v| - 1 <= %.1e\n", loss, want, norm_err);
  CHECK(norm_err < 1e-5);
  CHECK(fabs(loss - want) <= 1e-4 * fabs(want));
  /* the pass's tags change the loss; an image that changes changes it too */
  fb.frames[0] ^= 0x55;
  CHECK(loss_of(m, &fb.b, 0) != loss);
  /* a judge reads no title: any title gives the same loss */
  fb.frames[0] ^= 0x55;
  for (int k = 0; k < 15; k++) fb.title[k] = 1 + k % 10;
  CHECK(loss_of(m, &fb.b, 0) == loss);
  /* errors: a text without tokens, a special token, another model type */
  const int32_t bad_off[] = {0, 0}, bad_tok[] = {2};
  CHECK(ot_model_judge_embed_text(m, bad_off, tok, 1, t) == OT_EINVAL);
  const int32_t one_off[] = {0, 1};
  CHECK(ot_model_judge_embed_text(m, one_off, bad_tok, 1, t) == OT_EINVAL);
  ot_model *o = tiny_model("bin", "0", "patches", &d);
  CHECK(ot_model_judge_embed_text(o, off, tok, 4, t) == OT_EINVAL);
  CHECK(ot_model_judge_image(o, v) == OT_EINVAL);
  ot_model_close(o);
  fixture_batch_free(&fb);
  ot_model_close(m);
}

/* loss = loss_scale * sum of item losses, and items do not interact. */
static void check_batch_independence(void) {
  ot_model_dims d;
  ot_model *m = tiny_model("asl", "0", "patches", &d);
  fixture_batch fb;
  fixture_batch_make(&fb, &d, 5, 3, LENS, 3, 7);
  double whole = loss_of(m, &fb.b, 0);
  float logits[3 * 7];
  memcpy(logits, ot_model_logits(m), sizeof logits);
  double sum = 0.0, max_diff = 0.0;
  for (int i = 0; i < 3; i++) {
    ot_batch one = {.B = 1, .frames = fb.frames + (size_t)i * 2 * 8 * 8 * 3,
                    .title = fb.title + i * 5, .title_mask = fb.mask + i * 5,
                    .targets = fb.targets + i * 7, .loss_scale = 1.0f};
    sum += loss_of(m, &one, 0);
    for (int k = 0; k < 7; k++) {
      double dk = fabs(ot_model_logits(m)[k] - logits[i * 7 + k]);
      if (dk > max_diff) max_diff = dk;
    }
  }
  printf("batch of 3: loss %.6f, items: %.6f / 3 = %.6f, logits max diff %.2e\n", whole, sum,
         sum / 3, max_diff);
  CHECK(fabs(whole - sum / 3.0) <= 1e-5 * fabs(whole));
  CHECK(max_diff <= 1e-5);
  fixture_batch_free(&fb);
  ot_model_close(m);
}

/* Token ids at padded positions do not change anything. */
static void check_padding_invariance(void) {
  ot_model_dims d;
  ot_model *m = tiny_model("bin", "0", "patches", &d);
  fixture_batch fb;
  fixture_batch_make(&fb, &d, 5, 3, LENS, 3, 8);
  double l0 = loss_of(m, &fb.b, 0);
  float logits[3 * 7];
  memcpy(logits, ot_model_logits(m), sizeof logits);
  for (int i = 0; i < 15; i++)
    if (!fb.mask[i]) fb.title[i] = 1 + i % 10;
  double l1 = loss_of(m, &fb.b, 0);
  CHECK(l0 == l1);
  /* pooled = mean of the visual fused tokens + mean of the valid title
   * ones (the visual tokens are T*Np = 2*4 = 8); an empty title adds 0 */
  int S = 0;
  const float *fused = ot_model_fused(m, &S), *pooled = ot_model_pooled(m);
  CHECK(S == 8 + 5);
  double pool_err = 0.0;
  for (int b = 0; b < 3; b++)
    for (int c = 0; c < 16; c++) {
      double vsum = 0.0, tsum = 0.0;
      int n = 0;
      for (int t = 0; t < S; t++) {
        if (t < 8) vsum += fused[((size_t)b * S + t) * 16 + c];
        else if (fb.mask[b * 5 + t - 8]) tsum += fused[((size_t)b * S + t) * 16 + c], n++;
      }
      double want = vsum / 8 + (n ? tsum / n : 0.0);
      pool_err = fmax(pool_err, fabs(want - pooled[b * 16 + c]));
    }
  CHECK(pool_err < 1e-5);
  CHECK(memcmp(logits, ot_model_logits(m), sizeof logits) == 0);
  /* while a valid token does matter */
  fb.title[0] = fb.title[0] % 10 + 1;
  CHECK(loss_of(m, &fb.b, 0) != l0);
  fixture_batch_free(&fb);
  ot_model_close(m);
}

/* Same seed, same weights; backward accumulates; dropout is seeded. */
static void check_init_accumulate_dropout(void) {
  ot_model_dims d;
  ot_model *a = tiny_model("bin", "0.3", "patches", &d), *b = tiny_model("bin", "0.3", "patches", &d);
  ot_params *pa = ot_model_params(a), *pb = ot_model_params(b);
  size_t n = ot_params_total(pa);
  CHECK(memcmp(ot_params_values(pa), ot_params_values(pb), n * sizeof(float)) == 0);
  ot_model_init(b, 1235);
  CHECK(memcmp(ot_params_values(pa), ot_params_values(pb), n * sizeof(float)) != 0);

  fixture_batch fb;
  fixture_batch_make(&fb, &d, 5, 3, LENS, 3, 9);
  float l_eval, l_tr1, l_tr2, l_tr3;
  CHECK(ot_model_forward(a, &fb.b, 0, 1, &l_eval) == OT_OK);
  CHECK(ot_model_forward(a, &fb.b, 1, 1, &l_tr1) == OT_OK);
  CHECK(ot_model_forward(a, &fb.b, 1, 2, &l_tr3) == OT_OK);
  CHECK(ot_model_forward(a, &fb.b, 1, 1, &l_tr2) == OT_OK);
  CHECK(l_tr1 == l_tr2);
  CHECK(l_tr1 != l_eval);
  CHECK(l_tr1 != l_tr3);

  ot_params_zero_grads(pa);
  ot_model_backward(a);
  float *once = ot_xmalloc(n * sizeof(float));
  memcpy(once, ot_params_grads(pa), n * sizeof(float));
  ot_model_backward(a);
  const float *twice = ot_params_grads(pa);
  /* not bit-exact: sums over rows (biases, positions) add onto the first
   * pass's values in a different rounding order */
  double diff = 0.0, norm = 0.0;
  for (size_t i = 0; i < n; i++) {
    diff += (twice[i] - 2.0 * once[i]) * (twice[i] - 2.0 * once[i]);
    norm += 4.0 * once[i] * once[i];
  }
  printf("backward twice: relative difference from 2x once %.2e\n", sqrt(diff / norm));
  CHECK(norm > 0 && sqrt(diff / norm) <= 1e-6);
  free(once);
  fixture_batch_free(&fb);
  ot_model_close(a);
  ot_model_close(b);
}

/* Init: LN weights 1, biases 0, matrices N(0, 0.02^2); weight decay on
 * matrices and the token embedding only. */
static void check_init_and_decay(ot_params *p) {
  const float *W = ot_params_values(p);
  const struct {
    const char *name;
    int decay;
    double mean, std; /* std < 0: every value equals mean */
  } want[] = {{"vis.patch.w", 1, 0, 0.02},   {"vis.patch.b", 0, 0, -1},
              {"vis.pos_space", 0, 0, 0.02}, {"vis.pos_time", 0, 0, 0.02},
              {"txt.wte", 1, 0, 0.02},       {"txt.wpe", 0, 0, 0.02},
              {"vis.block0.attn.qkv.w", 1, 0, 0.02}, {"vis.block0.ln1.w", 0, 1, -1},
              {"fuse.ln.w", 0, 1, -1},       {"fuse.ln.b", 0, 0, -1},
              {"head.w", 1, 0, 0.02},        {"head.b", 0, 0, -1}};
  for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
    int k = ot_params_find(p, want[i].name);
    CHECK(k >= 0);
    if (k < 0) continue;
    const ot_param_view *v = ot_params_view(p, k);
    CHECK(v->decay == want[i].decay);
    double s = 0, s2 = 0, maxdev = 0;
    for (size_t j = 0; j < v->numel; j++) {
      double x = W[v->offset + j];
      s += x, s2 += x * x;
      if (fabs(x - want[i].mean) > maxdev) maxdev = fabs(x - want[i].mean);
    }
    double mean = s / v->numel, std = sqrt(s2 / v->numel - mean * mean);
    if (want[i].std < 0) CHECK(maxdev == 0.0);
    else { /* five standard errors of the sample std and mean */
      double n = (double)v->numel;
      CHECK(fabs(std - want[i].std) < 5.0 * want[i].std / sqrt(2.0 * n));
      CHECK(fabs(mean) < 5.0 * want[i].std / sqrt(n));
    }
  }
}

static void check_config_errors(void) {
  ot_model_dims d = {.T = 1, .H = 8, .W = 8, .n_tags = 3, .vocab = 10, .max_batch = 2};
  ot_model *m = (ot_model *)1;
  ot_config cfg;
  const char *heads[] = {"model.dim=16", "model.heads=3"};
  fixture_config(&cfg, heads, 2);
  CHECK(ot_model_open(&m, &cfg, &d, 1) == OT_EINVAL);
  CHECK_MSG("model.heads");
  CHECK(m == NULL);
  ot_config_free(&cfg);
  const char *patch[] = {"model.dim=16", "model.heads=2", "model.patch=3"};
  fixture_config(&cfg, patch, 3);
  CHECK(ot_model_open(&m, &cfg, &d, 1) == OT_EINVAL);
  CHECK_MSG("model.patch");
  ot_config_free(&cfg);
  /* features asked for, none in the data; then a batch without them */
  const char *feat[] = {"model.dim=16", "model.heads=2", "model.visual=features"};
  fixture_config(&cfg, feat, 3);
  CHECK(ot_model_open(&m, &cfg, &d, 1) == OT_EINVAL);
  CHECK_MSG("model.visual");
  ot_model_dims df = d;
  df.D = 5;
  CHECK(ot_model_open(&m, &cfg, &df, 0) == OT_OK);
  CHECK(ot_model_reads_features(m));
  const int one[] = {2};
  fixture_batch nf;
  fixture_batch_make(&nf, &d, 16, 2, one, 1, 3); /* d: D = 0, so no features */
  CHECK(ot_model_forward(m, &nf.b, 0, 0, NULL) == OT_EINVAL);
  CHECK_MSG("features");
  fixture_batch_free(&nf);
  ot_model_close(m);
  ot_config_free(&cfg);
  /* title n-gram vectors asked for, a batch without them */
  const char *ng[] = {"model.dim=16", "model.heads=2", "model.patch=4", "model.title_ngram=8"};
  fixture_config(&cfg, ng, 4);
  CHECK(ot_model_open(&m, &cfg, &d, 0) == OT_OK && ot_model_title_ngram(m) == 8);
  fixture_batch_make(&nf, &d, 16, 2, one, 1, 3);
  CHECK(ot_model_forward(m, &nf.b, 0, 0, NULL) == OT_EINVAL);
  CHECK_MSG("model.title_ngram");
  fixture_batch_free(&nf);
  ot_model_close(m);
  ot_config_free(&cfg);

  /* a batch larger than max_batch, a token outside the vocabulary */
  const char *ok[] = {"model.dim=16", "model.heads=2", "model.patch=4", "model.title_len=4"};
  fixture_config(&cfg, ok, 4);
  CHECK(ot_model_open(&m, &cfg, &d, 0) == OT_OK);
  ot_model_init(m, 1);
  check_init_and_decay(ot_model_params(m));
  const int lens[] = {4};
  fixture_batch fb;
  fixture_batch_make(&fb, &d, 4, 2, lens, 1, 1);
  fb.b.B = 3;
  CHECK(ot_model_forward(m, &fb.b, 0, 0, NULL) == OT_EINVAL);
  CHECK_MSG("max_batch");
  fb.b.B = 2;
  CHECK(ot_model_forward(m, &fb.b, 0, 0, NULL) == OT_OK);
  fb.title[1] = 10;
  CHECK(ot_model_forward(m, &fb.b, 0, 0, NULL) == OT_EINVAL);
  CHECK_MSG("vocabulary");
  fixture_batch_free(&fb);
  ot_model_close(m);
  ot_config_free(&cfg);
  ot_model_close(NULL);
}

int main(int argc, char **argv) {
  int verbose = argc > 1 ? atoi(argv[1]) : 1;
  check_type("bin", "0", "patches", 0, verbose);
  check_type("asl", "0", "patches", 0, verbose);
  check_type("bin", "0.2", "patches", 1, verbose); /* dropout on: masks are a function of the seed */
  check_type("opg", "0", "patches", 0, verbose);
  check_type("baseline", "0", "patches", 0, verbose);
  check_type("opg", "0.2", "patches", 1, verbose);
  check_type("baseline", "0.2", "patches", 1, verbose);
  check_type("rag", "0", "patches", 0, verbose);
  check_type("rag", "0.2", "patches", 1, verbose);
  check_type("judge", "0", "patches", 0, verbose);
  check_type("judge", "0.2", "patches", 1, verbose);
  /* the visual tokens from precomputed per-frame features */
  check_type("bin", "0.2", "features", 1, verbose);
  check_type("rag", "0.2", "features", 1, verbose);
  check_type("judge", "0", "features", 0, verbose);
  check_judge_loss();
  check_batch_independence();
  check_padding_invariance();
  check_init_accumulate_dropout();
  check_config_errors();
  return ot_test_report();
}
