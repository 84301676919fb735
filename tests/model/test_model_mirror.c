/* Writes what mirror.py needs to rebuild the tagger in PyTorch and compare:
 *
 *   usage: test_model_mirror bin|asl|opg|baseline|rag|judge OUT.h5 [features]
 *   (judge: compared by mirror_judge.py; /out/image holds its image vectors;
 *   features: model.visual features, the batch's /batch/features [B,T,D],
 *   and model.title_ngram 9, its /batch/title_ngram [B,9])
 *
 *   /            attributes: the model's sizes and loss settings
 *   /params/NAME every parameter (checkpoint naming), its shape
 *   /grads/NAME  the C model's gradient of the loss
 *   /batch/...   frames uint8 [B,T,H,W,3], title int32 [B,L], mask uint8
 *                [B,L], targets float [B,n_tags]; generative models:
 *                item_tags [B+1], tag_offsets [n+1], tag_tokens (ot_batch)
 *   /out/loss    scalar; bin/asl: /out/logits [B,n_tags]; opg:
 *                /out/has_logits [B,K] and /out/matching [n] (the prompt
 *                of each tag, -1: none), the matching the C model solved
 *
 * Sizes are small but not square (W != H, Np != T, hidden != 4C) so that
 * a layout mix-up shows; titles have full, partial and no tokens. The tags
 * cover: an item without tags, one with more tags than prompts, a tag cut
 * to tag_len, the same tag on two items and twice on one item, and a tag
 * list longer than the baseline's seq_len. */
#include <hdf5.h>
#include <math.h>
#include <string.h>

#include "model_fixture.h"
#include "bpe.h"

static void attr_int(hid_t loc, const char *name, int v) {
  hid_t sp = H5Screate(H5S_SCALAR);
  hid_t a = H5Acreate2(loc, name, H5T_NATIVE_INT, sp, H5P_DEFAULT, H5P_DEFAULT);
  H5Awrite(a, H5T_NATIVE_INT, &v);
  H5Aclose(a);
  H5Sclose(sp);
}

static void attr_double(hid_t loc, const char *name, double v) {
  hid_t sp = H5Screate(H5S_SCALAR);
  hid_t a = H5Acreate2(loc, name, H5T_NATIVE_DOUBLE, sp, H5P_DEFAULT, H5P_DEFAULT);
  H5Awrite(a, H5T_NATIVE_DOUBLE, &v);
  H5Aclose(a);
  H5Sclose(sp);
}

static int write(hid_t loc, const char *name, hid_t mem_type, hid_t file_type, int ndim,
                 const int *shape, const void *data) {
  hsize_t dims[8];
  for (int i = 0; i < ndim; i++) dims[i] = (hsize_t)shape[i];
  hid_t sp = ndim ? H5Screate_simple(ndim, dims, NULL) : H5Screate(H5S_SCALAR);
  hid_t d = H5Dcreate2(loc, name, file_type, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  herr_t e = d < 0 ? -1 : H5Dwrite(d, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
  if (d >= 0) H5Dclose(d);
  H5Sclose(sp);
  return e < 0 ? 1 : 0;
}

int main(int argc, char **argv) {
  const int features = argc == 4 && !strcmp(argv[3], "features");
  if ((argc != 3 && !features) || (strcmp(argv[1], "bin") && strcmp(argv[1], "asl") && strcmp(argv[1], "opg") &&
                    strcmp(argv[1], "baseline") && strcmp(argv[1], "rag") &&
                    strcmp(argv[1], "judge"))) {
    fprintf(stderr, "usage: %s bin|asl|opg|baseline|rag|judge OUT.h5 [features]\n", argv[0]);
    return 2;
  }
  char type[32];
  snprintf(type, sizeof type, "model.type=%s", argv[1]);
  /* a matching term large enough to decide the assignment on random weights:
   * opg checks the has-tag term, rag the decoder's first-token term */
  const char *match_term = strcmp(argv[1], "rag") ? "model.match_has=50" : "model.match_gen=50";
  const char *sets[] = {type, "model.dim=32", "model.heads=4", "model.mlp_ratio=2",
                        "model.patch=4", "model.vis_layers=2", "model.txt_layers=1",
                        "model.fuse_layers=2", "model.title_len=6", "model.dropout=0",
                        "model.prompts=5", "model.prompt_layers=2", "model.dec_layers=2",
                        "model.tag_len=4", "model.seq_len=12", "model.tau=0.2",
                        "model.w_match=0.8", "model.w_has=1.5", "model.w_gen=1.2", match_term,
                        "model.rag_m=3", features ? "model.visual=features" : "model.visual=patches",
                        features ? "model.title_ngram=9" : "model.title_ngram=0"};
  ot_config cfg;
  fixture_config(&cfg, sets, (int)(sizeof sets / sizeof *sets));
  ot_model_dims d = {.T = 2, .H = 8, .W = 12, .D = features ? 7 : 0, .n_tags = 13, .vocab = 40,
                     .max_batch = 4};
  const int B = 4, L = cfg.model.title_len;
  ot_model *m;
  if (ot_model_open(&m, &cfg, &d, 1)) {
    fprintf(stderr, "open: %s\n", ot_errmsg());
    return 1;
  }
  ot_model_init(m, 2024);
  ot_params *p = ot_model_params(m);
  float *W = ot_params_values(p);
  ot_rng r;
  ot_rng_seed(&r, 3);
  for (int i = 0; i < ot_params_count(p); i++) { /* off the structured init (LN 1, biases 0) */
    const ot_param_view *v = ot_params_view(p, i);
    for (size_t j = 0; j < v->numel; j++) W[v->offset + j] += 0.05f * ot_rng_normal(&r);
  }
  const int lens[] = {6, 3, 0, 1};
  fixture_batch fb;
  fixture_batch_make(&fb, &d, L, B, lens, 4, 11);
  const int generative = ot_model_is_generative(m);
  const int judge = cfg.model.type == OT_MODEL_JUDGE; /* reads tags too (mirror_judge.py) */
  /* item 0: three tags; item 1: six (> 5 prompts), one of them twice, and
   * a 6-token tag cut to 4; item 2: none; item 3: item 0's second tag and
   * a one-token tag. Ids 5..39. */
  static const int32_t t0[] = {5, 6, 0}, t1[] = {7, 0}, t2[] = {8, 9, 10, 11, 0},
                       t3[] = {12, 13, 0}, t4[] = {14, 15, 16, 17, 18, 19, 0}, t5[] = {20, 0},
                       t6[] = {21, 22, 0}, t7[] = {12, 13, 0}, t8[] = {23, 24, 25, 0},
                       t9[] = {7, 0}, t10[] = {39, 0};
  static const int32_t *const tags[] = {t0, t1, t2, t3, t4, t5, t6, t7, t8, t9, t10};
  static const int counts[] = {3, 6, 0, 2};
  if (generative || judge) fixture_tags_set(&fb, B, counts, tags);
  /* rag: item 0 four candidates (the model reads 3), one cut from 6 to 4
   * tokens; item 1 one; item 2 none; item 3 two */
  static const int32_t cand_item[] = {0, 4, 5, 5, 7};
  static const int32_t cand_off[] = {0, 1, 7, 9, 10, 12, 13, 16};
  static const int32_t cand_tok[] = {5, 30, 31, 32, 33, 34, 35, 7, 8, 39, 12, 13, 6, 26, 27, 28};
  static const float cand_score[] = {0.95f, 0.5f, 0.25f, 0.1f, 0.8f, 0.6f, 0.3f};
  /* title words (the title slots' tokens) unlike the title tokens, with
   * their own padding: items 0 and 3 give them, 1 and 2 none */
  int32_t words[4 * 6] = {0};
  uint8_t words_mask[4 * 6] = {0};
  OT_ASSERT(B * L <= 24);
  static const int32_t w0[] = {9, OT_BPE_SEP, 10, 11}, w3[] = {36};
  for (int i = 0; i < 4; i++) words[i] = w0[i], words_mask[i] = 1;
  words[3 * L] = w3[0], words_mask[3 * L] = 1;
  if (generative) fb.b.title_words = words, fb.b.title_words_mask = words_mask;
  /* n-gram vectors: unit rows, item 2 (no title) a zero row */
  float ngram[4 * 9];
  for (int i = 0; i < 4 * 9; i++) ngram[i] = (float)((i * 7) % 5) - 1.5f;
  for (int i = 0; i < 4; i++) {
    float *row = ngram + i * 9, s = 0.0f;
    for (int k = 0; k < 9; k++) s += row[k] * row[k];
    for (int k = 0; k < 9; k++) row[k] = i == 2 ? 0.0f : row[k] / sqrtf(s);
  }
  const int with_ngram = ot_model_title_ngram(m) > 0;
  OT_ASSERT(!with_ngram || ot_model_title_ngram(m) == 9);
  if (with_ngram) fb.b.title_ngram = ngram;
  const int rag = cfg.model.type == OT_MODEL_RAG;
  if (rag) {
    fb.b.cand_item = cand_item, fb.b.cand_offsets = cand_off, fb.b.cand_tokens = cand_tok;
    fb.b.cand_score = cand_score;
  }

  float loss;
  ot_params_zero_grads(p);
  if (ot_model_forward(m, &fb.b, 1, 0, &loss)) {
    fprintf(stderr, "forward: %s\n", ot_errmsg());
    return 1;
  }
  ot_model_backward(m);

  hid_t f = H5Fcreate(argv[2], H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  if (f < 0) {
    fprintf(stderr, "cannot create %s\n", argv[2]);
    return 1;
  }
  attr_int(f, "asl", cfg.model.type == OT_MODEL_ASL);
  attr_int(f, "type", cfg.model.type); /* 0 bin, 1 asl, 2 baseline, 3 opg, 4 rag, 5 judge */
  attr_int(f, "rag_m", cfg.model.rag_m);
  attr_int(f, "title_slots", cfg.model.title_slots);
  attr_int(f, "prompts", cfg.model.prompts);
  attr_int(f, "prompt_layers", cfg.model.prompt_layers);
  attr_int(f, "dec_layers", cfg.model.dec_layers);
  attr_int(f, "tag_len", cfg.model.tag_len);
  attr_int(f, "seq_len", cfg.model.seq_len);
  attr_double(f, "tau", cfg.model.tau);
  attr_double(f, "w_match", cfg.model.w_match);
  attr_double(f, "w_has", cfg.model.w_has);
  attr_double(f, "w_gen", cfg.model.w_gen);
  attr_double(f, "match_has", cfg.model.match_has);
  attr_double(f, "match_gen", cfg.model.match_gen);
  attr_int(f, "dim", cfg.model.dim);
  attr_int(f, "heads", cfg.model.heads);
  attr_int(f, "hidden", cfg.model.mlp_ratio * cfg.model.dim);
  attr_int(f, "patch", cfg.model.patch);
  attr_int(f, "vis_layers", cfg.model.vis_layers);
  attr_int(f, "txt_layers", cfg.model.txt_layers);
  attr_int(f, "fuse_layers", cfg.model.fuse_layers);
  attr_double(f, "asl_gamma_pos", cfg.model.asl_gamma_pos);
  attr_double(f, "asl_gamma_neg", cfg.model.asl_gamma_neg);
  attr_double(f, "asl_clip", cfg.model.asl_clip);
  attr_double(f, "loss_scale", fb.b.loss_scale);

  int rc = 0;
  hid_t gp = H5Gcreate2(f, "params", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  hid_t gg = H5Gcreate2(f, "grads", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  const float *G = ot_params_grads(p);
  for (int i = 0; i < ot_params_count(p); i++) {
    const ot_param_view *v = ot_params_view(p, i);
    rc |= write(gp, v->name, H5T_NATIVE_FLOAT, H5T_IEEE_F32LE, v->ndim, v->shape, W + v->offset);
    rc |= write(gg, v->name, H5T_NATIVE_FLOAT, H5T_IEEE_F32LE, v->ndim, v->shape, G + v->offset);
  }
  H5Gclose(gp);
  H5Gclose(gg);
  hid_t gb = H5Gcreate2(f, "batch", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  const int fshape[] = {B, d.T, d.H, d.W, 3}, tshape[] = {B, L}, yshape[] = {B, d.n_tags};
  rc |= write(gb, "frames", H5T_NATIVE_UINT8, H5T_STD_U8LE, 5, fshape, fb.frames);
  rc |= write(gb, "title", H5T_NATIVE_INT32, H5T_STD_I32LE, 2, tshape, fb.title);
  rc |= write(gb, "mask", H5T_NATIVE_UINT8, H5T_STD_U8LE, 2, tshape, fb.mask);
  rc |= write(gb, "targets", H5T_NATIVE_FLOAT, H5T_IEEE_F32LE, 2, yshape, fb.targets);
  if (features) {
    const int xshape[] = {B, d.T, d.D};
    rc |= write(gb, "features", H5T_NATIVE_FLOAT, H5T_IEEE_F32LE, 3, xshape, fb.features);
  }
  if (with_ngram) {
    const int gshape[] = {B, 9};
    rc |= write(gb, "title_ngram", H5T_NATIVE_FLOAT, H5T_IEEE_F32LE, 2, gshape, ngram);
  }
  if (generative || judge) {
    rc |= write(gb, "title_words", H5T_NATIVE_INT32, H5T_STD_I32LE, 2, tshape, words);
    rc |= write(gb, "title_words_mask", H5T_NATIVE_UINT8, H5T_STD_U8LE, 2, tshape, words_mask);
    const int n = fb.item_tags[B], ni[] = {B + 1}, no[] = {n + 1}, nt[] = {fb.tag_offsets[n]};
    rc |= write(gb, "item_tags", H5T_NATIVE_INT32, H5T_STD_I32LE, 1, ni, fb.item_tags);
    rc |= write(gb, "tag_offsets", H5T_NATIVE_INT32, H5T_STD_I32LE, 1, no, fb.tag_offsets);
    rc |= write(gb, "tag_tokens", H5T_NATIVE_INT32, H5T_STD_I32LE, 1, nt, fb.tag_tokens);
  }
  if (rag) {
    const int ni[] = {B + 1}, no[] = {8}, nt[] = {16}, ns[] = {7};
    rc |= write(gb, "cand_item", H5T_NATIVE_INT32, H5T_STD_I32LE, 1, ni, cand_item);
    rc |= write(gb, "cand_offsets", H5T_NATIVE_INT32, H5T_STD_I32LE, 1, no, cand_off);
    rc |= write(gb, "cand_tokens", H5T_NATIVE_INT32, H5T_STD_I32LE, 1, nt, cand_tok);
    rc |= write(gb, "cand_score", H5T_NATIVE_FLOAT, H5T_IEEE_F32LE, 1, ns, cand_score);
  }
  H5Gclose(gb);
  hid_t go = H5Gcreate2(f, "out", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  if (!generative && !judge)
    rc |= write(go, "logits", H5T_NATIVE_FLOAT, H5T_IEEE_F32LE, 2, yshape, ot_model_logits(m));
  if (cfg.model.type == OT_MODEL_OPG || rag) {
    int K = 0, n = 0;
    const float *has = ot_model_prompt_logits(m, &K);
    const int32_t *match = ot_model_matching(m, &n);
    const int hshape[] = {B, K}, mshape[] = {n};
    rc |= write(go, "has_logits", H5T_NATIVE_FLOAT, H5T_IEEE_F32LE, 2, hshape, has);
    rc |= write(go, "matching", H5T_NATIVE_INT32, H5T_STD_I32LE, 1, mshape, match);
  }
  if (judge) {
    float img[4 * 32];
    const int ishape[] = {B, cfg.model.dim};
    OT_ASSERT(B * cfg.model.dim <= 4 * 32);
    rc |= ot_model_judge_image(m, img) != OT_OK;
    rc |= write(go, "image", H5T_NATIVE_FLOAT, H5T_IEEE_F32LE, 2, ishape, img);
    attr_double(f, "judge_tau", cfg.model.judge_tau);
  }
  rc |= write(go, "loss", H5T_NATIVE_FLOAT, H5T_IEEE_F32LE, 0, NULL, &loss);
  H5Gclose(go);
  if (H5Fclose(f) < 0) rc = 1;
  if (rc) fprintf(stderr, "writing %s failed\n", argv[2]);
  else printf("wrote %s: %d parameters, loss %.6f\n", argv[2], ot_params_count(p), loss);

  fixture_batch_free(&fb);
  ot_model_close(m);
  ot_config_free(&cfg);
  return rc;
}
