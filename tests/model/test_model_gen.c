/* The generative models beyond their gradients (test_model_grad) and the
 * PyTorch mirror:
 *
 *   - permutation invariance: reordering an item's tags leaves the opg loss
 *     and its has-tag logits unchanged (to float rounding, 1e-6 relative),
 *     and each tag keeps its prompt; the baseline's loss does change
 *     (its target order is the given order: the control)
 *   - the loss is w_match match + w_has has + w_gen gen of the reported parts
 *   - learning: a tiny model trained for a few hundred AdamW steps on 20
 *     synthetic items (image = a colour and a shape, title "<colour>
 *     <shape>", 2-4 tags that are functions of them, several BPE tokens
 *     each) generates exactly each item's tag set (opg, has-tag threshold
 *     0.5; baseline)
 *   - KV cache: decoding with the cache gives the same tags and scores
 *     (1e-4 relative) as recomputing the prefix, on the trained models and
 *     on random ones decoding every prompt
 *   - errors: generation on a closed-set model or with a tokenizer of the
 *     wrong size, a loss without tags, special tokens in tags, an invalid
 *     fixed matching, tag_len > title_len; a batch without any tag trains
 *     the has-tag head alone
 *   - rag's fused answer (ot_gen_fuse): w = 0 is generation unchanged, w = 1
 *     the candidates by retrieval score, between them the weighted sum;
 *     candidates merged with generated tags after normalisation, the best
 *     retrieval score kept; an invalid candidate is an error. */
#include <cblas.h>
#include <math.h>
#include <string.h>

#include "model_fixture.h"
#include "ot_optim.h"
#include "ot_test.h"

/* ---- permutation invariance ------------------------------------------------- */

static ot_model *small_model(const char *type, int vocab, int max_batch, const char *const *extra,
                             int n_extra, ot_model_dims *d) {
  char t[64];
  snprintf(t, sizeof t, "model.type=%s", type);
  const char *base[] = {t, "model.dim=16", "model.heads=2", "model.patch=4", "model.vis_layers=1",
                        "model.txt_layers=1", "model.fuse_layers=1", "model.title_len=5",
                        "model.mlp_ratio=2", "model.prompts=4", "model.prompt_layers=1",
                        "model.dec_layers=1", "model.tag_len=4", "model.seq_len=24",
                        "model.dropout=0"};
  const int nb = (int)(sizeof base / sizeof *base);
  const char *sets[40];
  for (int i = 0; i < nb; i++) sets[i] = base[i];
  for (int i = 0; i < n_extra; i++) sets[nb + i] = extra[i];
  ot_config cfg;
  fixture_config(&cfg, sets, nb + n_extra);
  *d = (ot_model_dims){.T = 1, .H = 8, .W = 8, .n_tags = 1, .vocab = vocab, .max_batch = max_batch};
  ot_model *m = NULL;
  if (ot_model_open(&m, &cfg, d, 1)) {
    fprintf(stderr, "open: %s\n", ot_errmsg());
    exit(1);
  }
  ot_config_free(&cfg);
  ot_model_init(m, 7);
  return m;
}

static const int32_t A[] = {5, 6, 0}, Bt[] = {7, 0}, Ct[] = {8, 9, 10, 0}, D[] = {11, 0},
                     E[] = {12, 13, 0}, F[] = {14, 0};
static const int COUNTS[] = {3, 3, 1};

static void check_permutation(void) {
  ot_model_dims d;
  ot_model *opg = small_model("opg", 16, 3, NULL, 0, &d);
  ot_model *base = small_model("baseline", 16, 3, NULL, 0, &d);
  const int lens[] = {5, 3, 0};
  fixture_batch fb;
  fixture_batch_make(&fb, &d, 5, 3, lens, 3, 5);
  const int32_t *order1[] = {A, Bt, Ct, D, E, F, Bt};
  const int32_t *order2[] = {Ct, A, Bt, F, D, E, Bt}; /* each item's tags rotated */
  float l1, l2, b1, b2;
  int n1, n2, K;
  fixture_tags_set(&fb, 3, COUNTS, order1);
  CHECK(ot_model_forward(opg, &fb.b, 1, 1, &l1) == OT_OK);
  int32_t m1[7];
  memcpy(m1, ot_model_matching(opg, &n1), sizeof m1);
  float has1[12];
  memcpy(has1, ot_model_prompt_logits(opg, &K), sizeof has1);
  ot_model_losses parts = ot_model_loss_parts(opg);
  CHECK(fabs(parts.match + parts.has + parts.gen - l1) <= 1e-5 * l1); /* the w_* are 1 */
  CHECK(parts.match > 0 && parts.has > 0 && parts.gen > 0);
  CHECK(ot_model_forward(base, &fb.b, 1, 1, &b1) == OT_OK);

  fixture_tags_set(&fb, 3, COUNTS, order2);
  CHECK(ot_model_forward(opg, &fb.b, 1, 1, &l2) == OT_OK);
  const int32_t *m2 = ot_model_matching(opg, &n2);
  CHECK(ot_model_forward(base, &fb.b, 1, 1, &b2) == OT_OK);
  printf("opg loss %.7f vs %.7f after reordering the tags; baseline %.5f vs %.5f\n", l1, l2, b1, b2);
  CHECK(fabsf(l1 - l2) <= 1e-6f * l1);
  CHECK(K == 4 && n1 == 7 && n2 == 7);
  /* the same tag gets the same prompt: order2[j] is order1[perm[j]] */
  const int perm[] = {2, 0, 1, 5, 3, 4, 6};
  for (int j = 0; j < 7; j++) CHECK(m2[j] == m1[perm[j]]);
  const float *has2 = ot_model_prompt_logits(opg, NULL);
  CHECK(memcmp(has1, has2, sizeof has1) == 0);
  CHECK(fabsf(b1 - b2) > 1e-3f * b1); /* the baseline learns an order */
  fixture_batch_free(&fb);
  ot_model_close(opg);
  ot_model_close(base);
}

/* ---- the synthetic tagging task ----------------------------------------------------- */

#define N_ITEMS 20
#define TITLE_LEN 16

static const char *COLORS[] = {"red", "green", "blue", "yellow", "purple"};
static const uint8_t RGB[][3] = {{220, 30, 30}, {30, 200, 40}, {40, 60, 230}, {240, 220, 20},
                                 {150, 40, 170}};
static const char *SHAPES[] = {"circle", "square", "star", "heart"};

typedef struct {
  ot_bpe *bpe;
  fixture_batch fb;
  char *tags[N_ITEMS][4];
  int n_tags[N_ITEMS];
} task;

static void task_tags(int i, char **out, int *n) {
  const int c = i % 5, s = i / 5;
  *n = 0;
  out[(*n)++] = ot_xstrdup(COLORS[c]);
  out[(*n)++] = ot_xstrdup(SHAPES[s]);
  if (s == 2) out[(*n)++] = ot_xstrdup("sparkle night");
  if (c == 0 || c == 3) out[(*n)++] = ot_xstrdup("warm");
}

static void task_make(task *t, int vocab_limit) {
  const char *texts[3 * N_ITEMS + 8];
  char titles[N_ITEMS][32];
  int n = 0;
  for (int i = 0; i < N_ITEMS; i++) {
    task_tags(i, t->tags[i], &t->n_tags[i]);
    snprintf(titles[i], sizeof titles[i], "%s %s", COLORS[i % 5], SHAPES[i / 5]);
    texts[n++] = titles[i];
  }
  texts[n++] = "sparkle night";
  texts[n++] = "warm";
  if (ot_bpe_train(&t->bpe, texts, (size_t)n, vocab_limit)) {
    fprintf(stderr, "bpe: %s\n", ot_errmsg());
    exit(1);
  }
  /* frames: the colour on a shape-specific pixel pattern, black elsewhere */
  fixture_batch *fb = &t->fb;
  memset(fb, 0, sizeof *fb);
  fb->frames = ot_xcalloc((size_t)N_ITEMS * 8 * 8 * 3, 1);
  fb->title = ot_xcalloc((size_t)N_ITEMS * TITLE_LEN, sizeof(int32_t));
  fb->mask = ot_xcalloc((size_t)N_ITEMS * TITLE_LEN, 1);
  for (int i = 0; i < N_ITEMS; i++) {
    const int c = i % 5, s = i / 5;
    for (int y = 0; y < 8; y++)
      for (int x = 0; x < 8; x++) {
        const int on = s == 0 ? (x - 3.5) * (x - 3.5) + (y - 3.5) * (y - 3.5) < 9
                     : s == 1 ? x > 1 && x < 6 && y > 1 && y < 6
                     : s == 2 ? x == y || x + y == 7 || x == 4 || y == 4
                              : y > 2 && abs(x - 3) + y < 9;
        for (int k = 0; k < 3; k++)
          fb->frames[(((size_t)i * 8 + y) * 8 + x) * 3 + k] = on ? RGB[c][k] : 0;
      }
    int n_ids = 0;
    if (ot_bpe_encode(t->bpe, titles[i], fb->title + i * TITLE_LEN, TITLE_LEN, &n_ids)) {
      fprintf(stderr, "title: %s\n", ot_errmsg());
      exit(1);
    }
    for (int k = 0; k < n_ids; k++) fb->mask[i * TITLE_LEN + k] = 1;
  }
  /* tags as token sequences */
  int total = 0, counts[N_ITEMS];
  int32_t *toks[N_ITEMS * 4];
  for (int i = 0; i < N_ITEMS; i++) {
    counts[i] = t->n_tags[i];
    for (int j = 0; j < t->n_tags[i]; j++) {
      int32_t ids[32];
      int n_ids = 0;
      if (ot_bpe_encode(t->bpe, t->tags[i][j], ids, 31, &n_ids)) {
        fprintf(stderr, "tag: %s\n", ot_errmsg());
        exit(1);
      }
      ids[n_ids] = 0;
      toks[total] = ot_xmalloc(sizeof ids);
      memcpy(toks[total++], ids, sizeof ids);
    }
  }
  fixture_tags_set(fb, N_ITEMS, counts, (const int32_t *const *)toks);
  for (int j = 0; j < total; j++) free(toks[j]);
  fb->b = (ot_batch){.B = N_ITEMS, .frames = fb->frames, .title = fb->title,
                     .title_mask = fb->mask, .loss_scale = 1.0f / N_ITEMS,
                     .item_tags = fb->item_tags, .tag_offsets = fb->tag_offsets,
                     .tag_tokens = fb->tag_tokens};
}

static void task_free(task *t) {
  for (int i = 0; i < N_ITEMS; i++)
    for (int j = 0; j < t->n_tags[i]; j++) free(t->tags[i][j]);
  fixture_batch_free(&t->fb);
  ot_bpe_close(t->bpe);
}

/* extra: one more --set, or NULL */
static ot_model *task_model(const char *type, const task *t, const char *extra) {
  char ty[32];
  snprintf(ty, sizeof ty, "model.type=%s", type);
  const char *sets[] = {ty, "model.dim=32", "model.heads=2", "model.mlp_ratio=2", "model.patch=4",
                        "model.vis_layers=1", "model.txt_layers=1", "model.fuse_layers=1",
                        "model.title_len=16", "model.prompts=6", "model.prompt_layers=1",
                        "model.dec_layers=1", "model.tag_len=16", "model.seq_len=48",
                        "model.dropout=0", extra};
  ot_config cfg;
  fixture_config(&cfg, sets, (int)(sizeof sets / sizeof *sets) - !extra);
  ot_model_dims d = {.T = 1, .H = 8, .W = 8, .n_tags = 1, .vocab = ot_bpe_vocab_size(t->bpe),
                     .max_batch = N_ITEMS};
  ot_model *m = NULL;
  if (ot_model_open(&m, &cfg, &d, 1)) {
    fprintf(stderr, "open: %s\n", ot_errmsg());
    exit(1);
  }
  ot_config_free(&cfg);
  ot_model_init(m, 3);
  return m;
}

static float train(ot_model *m, const task *t, int steps) {
  ot_params *p = ot_model_params(m);
  ot_adamw_config opt = {0.9f, 0.98f, 1e-8f, 0.0f};
  float loss = 0.0f;
  for (int s = 0; s < steps; s++) {
    ot_params_zero_grads(p);
    int rc = ot_model_forward(m, &t->fb.b, 1, (uint64_t)s, &loss);
    OT_ASSERT(rc == OT_OK);
    ot_model_backward(m);
    ot_grad_clip(ot_params_grads(p), ot_params_total(p), 1.0f);
    ot_adamw_step(p, ot_lr_schedule(s, 20, steps, 5e-3f, 3e-4f), &opt, s + 1);
  }
  return loss;
}

static int has_tag(const ot_gen_item *it, const char *tag) {
  for (int j = 0; j < it->n; j++)
    if (!strcmp(it->tags[j].tag, tag)) return 1;
  return 0;
}

/* Every item's generated tag set equals its ground truth; prints misses. */
static int exact_sets(const task *t, const ot_gen_item *out) {
  int ok = 1;
  for (int i = 0; i < N_ITEMS; i++) {
    int good = out[i].n == t->n_tags[i];
    for (int j = 0; j < t->n_tags[i]; j++) good &= has_tag(&out[i], t->tags[i][j]);
    if (!good) {
      ok = 0;
      fprintf(stderr, "item %d (%s %s): generated", i, COLORS[i % 5], SHAPES[i / 5]);
      for (int j = 0; j < out[i].n; j++)
        fprintf(stderr, " '%s' %.3f", out[i].tags[j].tag, out[i].tags[j].score);
      fprintf(stderr, "\n");
    }
  }
  return ok;
}

/* Cached and uncached decoding agree on every tag and score, greedy and
 * with a beam of 3 (whose beams move between cache rows). */
static void check_cache(ot_model *m, const ot_batch *b, const ot_bpe *bpe, float threshold,
                        int *n_tags) {
  for (int beam = 1; beam <= 3; beam += 2) {
    ot_gen_item a[N_ITEMS], c[N_ITEMS];
    ot_gen_opts o = {.bpe = bpe, .threshold = threshold, .beam = beam, .no_cache = 0};
    double t0 = ot_now();
    CHECK(ot_model_generate(m, b, &o, a) == OT_OK);
    double t1 = ot_now();
    o.no_cache = 1;
    CHECK(ot_model_generate(m, b, &o, c) == OT_OK);
    double t2 = ot_now();
    int same = 1, n = 0;
    for (int i = 0; i < b->B; i++) {
      same &= a[i].n == c[i].n;
      n += a[i].n;
      for (int j = 0; j < a[i].n && j < c[i].n; j++) {
        same &= !strcmp(a[i].tags[j].tag, c[i].tags[j].tag);
        same &= fabsf(a[i].tags[j].score - c[i].tags[j].score) <= 1e-4f * c[i].tags[j].score;
        same &= a[i].tags[j].score > 0.0f && a[i].tags[j].score <= 1.0f;
      }
    }
    if (beam == 1) *n_tags = n;
    printf("  beam %d, KV cache vs recomputed prefix: %d tags, %s (%.1f ms vs %.1f ms)\n", beam,
           n, same ? "identical" : "DIFFERENT", 1e3 * (t1 - t0), 1e3 * (t2 - t1));
    CHECK(same);
    ot_gen_items_free(a, b->B);
    ot_gen_items_free(c, b->B);
  }
}

static void check_learning(const char *type, int steps) {
  task t;
  task_make(&t, 275);
  ot_model *m = task_model(type, &t, NULL);
  /* untrained: the cache agrees with the reference on random weights too */
  int n = 0;
  printf("%s, untrained, every prompt decoded:\n", type);
  check_cache(m, &t.fb.b, t.bpe, 0.0f, &n);
  CHECK(n > 0);
  double t0 = ot_now();
  float loss = train(m, &t, steps);
  printf("%s: %d steps in %.2f s, final loss %.4f\n", type, steps, ot_now() - t0, loss);
  ot_gen_item out[N_ITEMS];
  ot_gen_opts o = {.bpe = t.bpe, .threshold = 0.5f};
  CHECK(ot_model_generate(m, &t.fb.b, &o, out) == OT_OK);
  int tokens = 0;
  for (int j = 0; j < t.n_tags[10]; j++) {
    int32_t ids[32];
    int k = 0;
    ot_bpe_encode(t.bpe, t.tags[10][j], ids, 32, &k);
    tokens += k;
  }
  printf("  item 10 (%d tags, %d BPE tokens):", t.n_tags[10], tokens);
  for (int j = 0; j < out[10].n; j++) printf(" '%s' %.3f", out[10].tags[j].tag, out[10].tags[j].score);
  printf("\n");
  CHECK(tokens > t.n_tags[10]); /* tags are written token by token */
  CHECK(exact_sets(&t, out));
  ot_gen_items_free(out, N_ITEMS);
  check_cache(m, &t.fb.b, t.bpe, 0.5f, &n);
  CHECK(n > 0);
  ot_model_close(m);
  task_free(&t);
}

/* ---- errors --------------------------------------------------------------------------- */

static void check_errors(void) {
  ot_model_dims d;
  ot_model *opg = small_model("opg", 16, 3, NULL, 0, &d);
  const int lens[] = {5, 3, 0};
  fixture_batch fb;
  fixture_batch_make(&fb, &d, 5, 3, lens, 3, 5);
  float loss;
  CHECK(ot_model_forward(opg, &fb.b, 1, 1, &loss) == OT_EINVAL); /* no tags */
  CHECK_MSG("tags");
  CHECK(ot_model_forward(opg, &fb.b, 0, 0, NULL) == OT_OK); /* inference needs none */
  CHECK(ot_model_prompt_logits(opg, NULL) != NULL);
  CHECK(ot_model_matching(opg, NULL) == NULL);
  const int32_t *bad[] = {A, Bt, Ct, D, E, F, Bt};
  fixture_tags_set(&fb, 3, COUNTS, bad);
  fb.tag_tokens[1] = OT_BPE_SEP;
  CHECK(ot_model_forward(opg, &fb.b, 1, 1, &loss) == OT_EINVAL);
  CHECK_MSG("special");
  fb.tag_tokens[1] = 6;
  const int32_t twice[7] = {0, 0, 1, 0, 1, 2, 3}; /* item 0: prompt 0 twice */
  CHECK(ot_model_set_matching(opg, twice, 7) == OT_OK);
  CHECK(ot_model_forward(opg, &fb.b, 1, 1, &loss) == OT_EINVAL);
  CHECK_MSG("two tags");
  const int32_t short_match[3] = {0, 1, 2};
  CHECK(ot_model_set_matching(opg, short_match, 3) == OT_OK);
  CHECK(ot_model_forward(opg, &fb.b, 1, 1, &loss) == OT_EINVAL);
  CHECK(ot_model_set_matching(opg, NULL, 0) == OT_OK);
  CHECK(ot_model_forward(opg, &fb.b, 1, 1, &loss) == OT_OK);

  /* a batch without any tag (and no token array): only "no tag" to learn */
  const int32_t none[4] = {0, 0, 0, 0}, off0[1] = {0};
  ot_batch empty = fb.b;
  empty.item_tags = none, empty.tag_offsets = off0, empty.tag_tokens = NULL;
  CHECK(ot_model_forward(opg, &empty, 1, 1, &loss) == OT_OK);
  ot_model_losses parts = ot_model_loss_parts(opg);
  CHECK(parts.match == 0.0 && parts.gen == 0.0 && parts.has > 0.0 && loss > 0.0f);
  ot_params_zero_grads(ot_model_params(opg));
  ot_model_backward(opg);
  CHECK(ot_grad_norm(ot_params_grads(ot_model_params(opg)), ot_params_total(ot_model_params(opg))) > 0);

  /* generation: a tokenizer of another size; a closed-set model */
  ot_bpe *bpe;
  const char *texts[] = {"a b", "a b"};
  CHECK(ot_bpe_train(&bpe, texts, 2, 300) == OT_OK);
  ot_gen_item out[3];
  ot_gen_opts o = {.bpe = bpe, .threshold = 0.5f};
  CHECK(ot_model_generate(opg, &fb.b, &o, out) == OT_EINVAL);
  CHECK_MSG("tokenizer");
  ot_gen_items_free(out, 3);
  ot_model_dims dc = {.T = 1, .H = 8, .W = 8, .n_tags = 3, .vocab = 16, .max_batch = 3};
  ot_config cfg;
  const char *sets[] = {"model.dim=16", "model.heads=2", "model.patch=4", "model.title_len=5"};
  fixture_config(&cfg, sets, 4);
  ot_model *bin;
  CHECK(ot_model_open(&bin, &cfg, &dc, 0) == OT_OK);
  CHECK(!ot_model_is_generative(bin));
  CHECK(ot_model_generate(bin, &fb.b, &o, out) == OT_EINVAL);
  CHECK_MSG("only baseline, opg and rag generate tags");
  ot_model_close(bin);
  ot_config_free(&cfg);
  ot_bpe_close(bpe);

  /* opg embeds tags with the title encoder: tag_len <= title_len */
  const char *long_tags[] = {"model.type=opg", "model.dim=16", "model.heads=2", "model.patch=4",
                             "model.title_len=5", "model.tag_len=6"};
  fixture_config(&cfg, long_tags, 6);
  ot_model *m = (ot_model *)1;
  CHECK(ot_model_open(&m, &cfg, &d, 0) == OT_EINVAL);
  CHECK_MSG("model.tag_len");
  CHECK(m == NULL);
  ot_config_free(&cfg);
  fixture_batch_free(&fb);
  ot_model_close(opg);
}

/* ---- no broken text ---------------------------------------------------------------- */

/* Untrained decoders over a byte-level vocabulary, where nearly every token
 * is a piece of a character: what they write is still whole characters
 * (no U+FFFD from a tag cut mid-character), greedy and with beams, cached
 * and not; and baseline's tags, within one long sequence, are no longer
 * than the tag_len (4) tokens of training (the tokenizer has 3 merges, so
 * a tag's own encoding is about as long as what was written). */
static void check_whole_characters(void) {
  const char *texts[] = {"猫 狗 蝙蝠 🦇", "蝙蝠 猫"};
  ot_bpe *bpe;
  CHECK(ot_bpe_train(&bpe, texts, 2, 264) == OT_OK);
  const int V = ot_bpe_vocab_size(bpe);
  const char *types[] = {"opg", "baseline"};
  for (int ti = 0; ti < 2; ti++) {
    ot_model_dims d;
    ot_model *m = small_model(types[ti], V, 6, NULL, 0, &d);
    const int lens[] = {5, 2, 0};
    fixture_batch fb;
    fixture_batch_make(&fb, &d, 5, 6, lens, 3, 11);
    int n_tags = 0, broken = 0, multibyte = 0, longest = 0;
    for (int beam = 1; beam <= 3; beam += 2) {
      ot_gen_item out[6];
      ot_gen_opts o = {.bpe = bpe, .threshold = 0.0f, .beam = beam};
      CHECK(ot_model_generate(m, &fb.b, &o, out) == OT_OK);
      for (int i = 0; i < 6; i++)
        for (int j = 0; j < out[i].n; j++) {
          n_tags++;
          broken += strstr(out[i].tags[j].tag, "\xef\xbf\xbd") != NULL;
          multibyte += (unsigned char)out[i].tags[j].tag[0] >= 0x80;
          int32_t ids[64];
          int n_ids = 0;
          CHECK(ot_bpe_encode(bpe, out[i].tags[j].tag, ids, 64, &n_ids) == OT_OK);
          longest = n_ids > longest ? n_ids : longest;
        }
      ot_gen_items_free(out, 6);
    }
    int n_cache = 0;
    check_cache(m, &fb.b, bpe, 0.0f, &n_cache);
    printf("  %s untrained, byte-level vocabulary: %d tags, %d with characters beyond ASCII, %d "
           "broken, the longest %d tokens\n", types[ti], n_tags, multibyte, broken, longest);
    CHECK(n_tags > 0 && multibyte > 0 && broken == 0);
    if (ti == 1) CHECK(longest <= 4 + 3); /* a character finished past tag_len: 3 bytes more */
    fixture_batch_free(&fb);
    ot_model_close(m);
  }
  ot_bpe_close(bpe);
}

/* ---- rag: a tag only the retrieved candidates tell ---------------------------------- */

static const char *CODES[] = {"alpha", "bravo", "delta", "kilo", "lima", "oscar", "romeo", "tango"};
#define N_CODES 8

typedef struct {
  int32_t item[N_ITEMS + 1], off[2 * N_ITEMS + 1], tok[2 * N_ITEMS * 16];
  float score[2 * N_ITEMS];
  int code[N_ITEMS];
} rag_draw;

static int encode_word(const ot_bpe *bpe, const char *w, int32_t *ids, int cap) {
  int n = 0;
  OT_ASSERT(ot_bpe_encode(bpe, w, ids, cap, &n) == OT_OK && n >= 1);
  return n;
}

/* Every item gets a fresh random code word as an extra ground-truth tag,
 * offered as its best candidate (score 0.9) before a wrong one (0.2): the
 * word is nowhere in the frames or the title, so only reading the
 * candidates can get it right. */
static void rag_redraw(task *t, ot_rng *r, rag_draw *d) {
  int counts[N_ITEMS], total = 0, nc = 0, nt = 0;
  int32_t *toks[N_ITEMS * 5];
  d->item[0] = 0, d->off[0] = 0;
  for (int i = 0; i < N_ITEMS; i++) {
    d->code[i] = (int)ot_rng_below(r, N_CODES);
    const int wrong = (d->code[i] + 1 + (int)ot_rng_below(r, N_CODES - 1)) % N_CODES;
    counts[i] = t->n_tags[i] + 1;
    for (int j = 0; j <= t->n_tags[i]; j++) {
      int32_t ids[32];
      int n = encode_word(t->bpe, j < t->n_tags[i] ? t->tags[i][j] : CODES[d->code[i]], ids, 31);
      ids[n] = 0;
      toks[total] = ot_xmalloc(sizeof ids);
      memcpy(toks[total++], ids, sizeof ids);
    }
    const int words[2] = {d->code[i], wrong};
    for (int k = 0; k < 2; k++) {
      nt += encode_word(t->bpe, CODES[words[k]], d->tok + nt, 16);
      d->off[nc + 1] = nt;
      d->score[nc++] = k == 0 ? 0.9f : 0.2f;
    }
    d->item[i + 1] = nc;
  }
  fixture_tags_set(&t->fb, N_ITEMS, counts, (const int32_t *const *)toks);
  for (int j = 0; j < total; j++) free(toks[j]);
  t->fb.b.cand_item = d->item, t->fb.b.cand_offsets = d->off, t->fb.b.cand_tokens = d->tok;
  t->fb.b.cand_score = d->score;
}

static void check_rag_copy(int steps) {
  task t;
  task_make(&t, 275);
  /* What this checks is the copy from the candidate slots, so the matching
   * is cosine alone (also the default): with the decoder's first-token term
   * (model.match_gen 1) the matching follows the untrained decoder's
   * guesses for the first steps, and copying takes ~600 steps to learn here
   * instead of 400. */
  ot_model *m = task_model("rag", &t, "model.match_gen=0");
  ot_rng r;
  ot_rng_seed(&r, 17);
  rag_draw d;
  rag_redraw(&t, &r, &d);
  int n = 0;
  printf("rag, untrained, every prompt decoded:\n");
  check_cache(m, &t.fb.b, t.bpe, 0.0f, &n);
  ot_params *p = ot_model_params(m);
  ot_adamw_config opt = {0.9f, 0.98f, 1e-8f, 0.0f};
  double t0 = ot_now();
  float loss = 0.0f;
  const int rag_steps = 2 * steps;
  for (int s = 0; s < rag_steps; s++) {
    rag_redraw(&t, &r, &d);
    ot_params_zero_grads(p);
    OT_ASSERT(ot_model_forward(m, &t.fb.b, 1, (uint64_t)s, &loss) == OT_OK);
    ot_model_backward(m);
    ot_grad_clip(ot_params_grads(p), ot_params_total(p), 1.0f);
    ot_adamw_step(p, ot_lr_schedule(s, 20, rag_steps, 5e-3f, 3e-4f), &opt, s + 1);
  }
  printf("rag: %d steps in %.2f s, final loss %.4f\n", rag_steps, ot_now() - t0, loss);
  /* a fresh draw: each item must write the code word it is offered now */
  rag_redraw(&t, &r, &d);
  ot_gen_item out[N_ITEMS];
  ot_gen_opts o = {.bpe = t.bpe, .threshold = 0.5f};
  CHECK(ot_model_generate(m, &t.fb.b, &o, out) == OT_OK);
  int copied = 0, wrong = 0;
  for (int i = 0; i < N_ITEMS; i++) {
    copied += has_tag(&out[i], CODES[d.code[i]]);
    for (int c = 0; c < N_CODES; c++) wrong += c != d.code[i] && has_tag(&out[i], CODES[c]);
  }
  printf("  offered code word written for %d of %d items, another code word %d times\n", copied,
         N_ITEMS, wrong);
  CHECK(copied >= N_ITEMS - 1 && wrong <= 1);
  ot_gen_items_free(out, N_ITEMS);
  check_cache(m, &t.fb.b, t.bpe, 0.5f, &n);
  ot_model_close(m);
  task_free(&t);
}

/* ---- rag's fused answer ------------------------------------------------------ */

static const ot_gen_tag *find_tag(const ot_gen_item *it, const char *tag) {
  for (int i = 0; i < it->n; i++)
    if (!strcmp(it->tags[i].tag, tag)) return &it->tags[i];
  return NULL;
}

static void check_fuse(void) {
  /* item 0: generated "cat" 0.6, "grey fur" 0.3; candidates "Cat " 0.5,
   * "cat" 0.8 (one tag after normalisation), "pet" 0.4, "  " (empty), "dog"
   * 0.1. Item 1: nothing generated, one candidate. */
  ot_gen_tag g0[] = {{.tag = "cat", .score = 0.6f, .prompt_prob = 0.8f, .token_prob = 0.75f},
                     {.tag = "grey fur", .score = 0.3f, .prompt_prob = 0.5f, .token_prob = 0.6f}};
  ot_gen_item gen[2] = {{2, g0}, {0, NULL}};
  const char *text[] = {"Cat ", "cat", "pet", "  ", "dog", "Tree"};
  const float score[] = {0.5f, 0.8f, 0.4f, 0.9f, 0.1f, 0.7f};
  const int32_t item[] = {0, 5, 6};
  ot_batch b = {.B = 2, .cand_item = item, .cand_text = text, .cand_score = score};
  ot_gen_item out;

  CHECK(ot_gen_fuse(&gen[0], &b, 0, 0.0f, &out) == OT_OK);
  CHECK(out.n == 2 && !strcmp(out.tags[0].tag, "cat") && !strcmp(out.tags[1].tag, "grey fur"));
  CHECK(out.n == 2 && out.tags[0].score == 0.6f && out.tags[1].score == 0.3f);
  CHECK(out.n == 2 && out.tags[0].ret_score == 0.8f && out.tags[1].ret_score == 0.0f);
  CHECK(out.n == 2 && !out.tags[0].ret_only && out.tags[0].prompt_prob == 0.8f);
  ot_gen_items_free(&out, 1);

  CHECK(ot_gen_fuse(&gen[0], &b, 0, 1.0f, &out) == OT_OK);
  const char *by_ret[] = {"cat", "pet", "dog"};
  CHECKF(out.n == 4, "%d tags", out.n); /* the three candidates, then "grey fur" at 0 */
  for (int i = 0; i < 3 && i < out.n; i++) CHECKF(!strcmp(out.tags[i].tag, by_ret[i]), "%s", out.tags[i].tag);
  CHECK(out.n == 4 && !strcmp(out.tags[3].tag, "grey fur") && out.tags[3].score == 0.0f);
  const ot_gen_tag *pet = find_tag(&out, "pet");
  CHECK(pet && pet->ret_only && pet->score == 0.4f && pet->prompt_prob == 0.0f);
  ot_gen_items_free(&out, 1);

  CHECK(ot_gen_fuse(&gen[0], &b, 0, 0.5f, &out) == OT_OK);
  const ot_gen_tag *cat = find_tag(&out, "cat"), *fur = find_tag(&out, "grey fur");
  CHECK(cat && fabsf(cat->score - 0.7f) < 1e-6f && !cat->ret_only);
  CHECK(fur && fabsf(fur->score - 0.15f) < 1e-6f);
  CHECK(out.n == 4 && out.tags[0].tag == cat->tag && !find_tag(&out, "tree"));
  for (int i = 1; i < out.n; i++) CHECK(out.tags[i - 1].score >= out.tags[i].score);
  ot_gen_items_free(&out, 1);

  CHECK(ot_gen_fuse(&gen[1], &b, 1, 0.0f, &out) == OT_OK && out.n == 0); /* score 0: dropped */
  ot_gen_items_free(&out, 1);
  CHECK(ot_gen_fuse(&gen[1], &b, 1, 0.25f, &out) == OT_OK && out.n == 1);
  CHECK(out.n == 1 && !strcmp(out.tags[0].tag, "tree") && out.tags[0].ret_only &&
        fabsf(out.tags[0].score - 0.175f) < 1e-6f);
  ot_gen_items_free(&out, 1);

  const char *bad_text[] = {"Cat ", "cat", "pet", "\xff\xfe", "dog", "Tree"};
  b.cand_text = bad_text;
  CHECK(ot_gen_fuse(&gen[0], &b, 0, 0.5f, &out) == OT_EINVAL && out.n == 0);
  CHECK_MSG("retrieved candidate 3 of item 0");
  b.cand_text = NULL;
  CHECK(ot_gen_fuse(&gen[0], &b, 0, 0.5f, &out) == OT_EINVAL);
  CHECK_MSG("candidates");
}

/* The title lexicon joined by the maximum: "cat" (0.6 in the answer) and
 * the title's pieces "cat" 0.9, "dog" 0.5, "the" 0.1. */
static void check_fuse_title(void) {
  ot_gen_tag g0[] = {{.tag = "cat", .score = 0.6f, .ret_only = 1}};
  const ot_gen_item in = {1, g0};
  const char *text[] = {"cat", "dog", "the"};
  const float score[] = {0.9f, 0.5f, 0.1f};
  ot_gen_item out;
  ot_gen_fuse_title(&in, NULL, 0.0f, text, score, 3, 0.0f, &out); /* w 0: the answer unchanged */
  CHECK(out.n == 1 && !strcmp(out.tags[0].tag, "cat") && out.tags[0].score == 0.6f &&
        out.tags[0].ret_only);
  ot_gen_items_free(&out, 1);
  ot_gen_fuse_title(&in, NULL, 0.0f, text, score, 3, 0.5f, &out); /* cat keeps 0.6 > 0.45 */
  CHECK(out.n == 3 && !strcmp(out.tags[0].tag, "cat") && out.tags[0].score == 0.6f &&
        !out.tags[0].title_only);
  const ot_gen_tag *dog = find_tag(&out, "dog");
  CHECK(dog && dog->title_only && fabsf(dog->score - 0.25f) < 1e-6f && out.tags[1].tag == dog->tag);
  ot_gen_items_free(&out, 1);
  ot_gen_fuse_title(&in, NULL, 0.0f, text, score, 3, 1.0f, &out); /* the lexicon's 0.9 beats 0.6 */
  CHECK(out.n == 3 && !strcmp(out.tags[0].tag, "cat") && out.tags[0].score == 0.9f &&
        out.tags[0].ret_only && !out.tags[0].title_only);
  for (int i = 1; i < out.n; i++) CHECK(out.tags[i - 1].score >= out.tags[i].score);
  ot_gen_items_free(&out, 1);
  /* w above 1: dog 0.5 * 1.6 = 0.8 passes cat's 0.6; cat 0.9 * 1.6 is capped at 1 */
  ot_gen_fuse_title(&in, NULL, 0.0f, text, score, 3, 1.6f, &out);
  CHECK(out.n == 3 && !strcmp(out.tags[0].tag, "cat") && out.tags[0].score == 1.0f &&
        !strcmp(out.tags[1].tag, "dog") && fabsf(out.tags[1].score - 0.8f) < 1e-6f &&
        fabsf(out.tags[2].score - 0.16f) < 1e-6f);
  ot_gen_items_free(&out, 1);
  const ot_gen_item none = {0, NULL};
  ot_gen_fuse_title(&none, NULL, 1.0f, text, score, 0, 1.0f, &out);
  CHECK(out.n == 0);
  ot_gen_items_free(&out, 1);
  /* absence ratios: "man" (0.8, ratio 0.25) and "hat" (0.7, ratio 1) */
  ot_gen_tag g1[] = {{.tag = "man", .score = 0.8f}, {.tag = "hat", .score = 0.7f}};
  const ot_gen_item two = {2, g1};
  const float absent[] = {0.25f, 1.0f};
  ot_gen_fuse_title(&two, absent, 0.0f, text, score, 0, 0.0f, &out); /* a 0: unchanged */
  CHECK(out.n == 2 && out.tags[0].score == 0.8f && out.tags[1].score == 0.7f);
  ot_gen_items_free(&out, 1);
  ot_gen_fuse_title(&two, absent, 0.5f, text, score, 0, 0.0f, &out); /* 0.8 * 0.25^0.5 = 0.4 */
  CHECK(out.n == 2 && !strcmp(out.tags[0].tag, "hat") && out.tags[0].score == 0.7f &&
        !strcmp(out.tags[1].tag, "man") && fabsf(out.tags[1].score - 0.4f) < 1e-6f);
  ot_gen_items_free(&out, 1);
  /* the maximum with the lexicon comes after: "cat" 0.6 at ratio 0.25, a 1
   * -> 0.15, then the title's 0.9 at w 0.5 -> 0.45 */
  const float quarter[] = {0.25f};
  ot_gen_fuse_title(&in, quarter, 1.0f, text, score, 3, 0.5f, &out);
  const ot_gen_tag *cat = find_tag(&out, "cat");
  CHECK(cat && fabsf(cat->score - 0.45f) < 1e-6f && !cat->title_only);
  ot_gen_items_free(&out, 1);
}

int main(int argc, char **argv) {
  int steps = argc > 1 ? atoi(argv[1]) : 200;
  openblas_set_num_threads(1);
  check_permutation();
  check_fuse();
  check_fuse_title();
  check_errors();
  check_whole_characters();
  check_learning("opg", steps);
  check_learning("baseline", steps);
  check_rag_copy(steps);
  return ot_test_report();
}
