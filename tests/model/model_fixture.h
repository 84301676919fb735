/* Shared by the model tests: a small model from --set style overrides and a
 * random batch with title padding. */
#ifndef MODEL_FIXTURE_H
#define MODEL_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>

#include "ot_common.h"
#include "ot_config.h"
#include "ot_model.h"
#include "ot_rng.h"

typedef struct {
  ot_batch b;
  uint8_t *frames;
  float *features; /* [B,T,D] when d->D > 0 */
  int32_t *title;
  uint8_t *mask;
  float *targets;
  int32_t *item_tags, *tag_offsets, *tag_tokens; /* fixture_tags_set */
} fixture_batch;

/* Title lengths cycle through `lens` (0 allowed: an item without a title);
 * padding positions hold OT_BPE_PAD (0), tokens are in [1, vocab). At least
 * one positive tag per item. Caller frees with fixture_batch_free. */
static inline void fixture_batch_make(fixture_batch *fb, const ot_model_dims *d, int L, int B,
                                      const int *lens, int n_lens, uint64_t seed) {
  ot_rng r;
  ot_rng_seed(&r, seed);
  size_t nf = (size_t)B * d->T * d->H * d->W * 3;
  fb->frames = ot_xmalloc(nf);
  for (size_t i = 0; i < nf; i++) fb->frames[i] = (uint8_t)ot_rng_below(&r, 256);
  fb->features = NULL;
  if (d->D > 0) {
    const size_t n = (size_t)B * d->T * d->D;
    fb->features = ot_xmalloc(n * sizeof *fb->features);
    for (size_t i = 0; i < n; i++) fb->features[i] = 2.0f * ot_rng_uniform(&r) - 1.0f;
  }
  fb->title = ot_xcalloc((size_t)B * L, sizeof(int32_t));
  fb->mask = ot_xcalloc((size_t)B * L, 1);
  for (int b = 0; b < B; b++) {
    int len = lens[b % n_lens] < L ? lens[b % n_lens] : L;
    for (int t = 0; t < len; t++) {
      fb->title[b * L + t] = 1 + (int32_t)ot_rng_below(&r, (uint32_t)d->vocab - 1);
      fb->mask[b * L + t] = 1;
    }
  }
  fb->targets = ot_xcalloc((size_t)B * d->n_tags, sizeof(float));
  for (int b = 0; b < B; b++) {
    fb->targets[(size_t)b * d->n_tags + ot_rng_below(&r, (uint32_t)d->n_tags)] = 1.0f;
    for (int k = 0; k < d->n_tags; k++)
      if (ot_rng_uniform(&r) < 0.2f) fb->targets[(size_t)b * d->n_tags + k] = 1.0f;
  }
  fb->item_tags = fb->tag_offsets = fb->tag_tokens = NULL;
  fb->b = (ot_batch){.B = B, .frames = fb->frames, .features = fb->features, .title = fb->title, .title_mask = fb->mask,
                     .targets = fb->targets, .loss_scale = 1.0f / (float)B};
}

static inline void fixture_batch_free(fixture_batch *fb) {
  free(fb->frames);
  free(fb->features);
  free(fb->title);
  free(fb->mask);
  free(fb->targets);
  free(fb->item_tags);
  free(fb->tag_offsets);
  free(fb->tag_tokens);
  fb->item_tags = fb->tag_offsets = fb->tag_tokens = NULL;
}

/* Generative targets: item b gets the tags whose indices are listed in
 * tags[b*per .. b*per + counts[b]) of a table of token strings given as
 * 0-terminated arrays (ids >= OT_BPE_N_SPECIAL). Replaces any earlier
 * tags of the batch. */
static inline void fixture_tags_set(fixture_batch *fb, int B, const int *counts,
                                    const int32_t *const *tags) {
  free(fb->item_tags);
  free(fb->tag_offsets);
  free(fb->tag_tokens);
  int n = 0, total = 0;
  for (int b = 0; b < B; b++) n += counts[b];
  for (int j = 0; j < n; j++)
    for (const int32_t *t = tags[j]; *t; t++) total++;
  fb->item_tags = ot_xmalloc((size_t)(B + 1) * sizeof(int32_t));
  fb->tag_offsets = ot_xmalloc((size_t)(n + 1) * sizeof(int32_t));
  fb->tag_tokens = ot_xmalloc((size_t)(total + 1) * sizeof(int32_t));
  fb->item_tags[0] = 0;
  for (int b = 0; b < B; b++) fb->item_tags[b + 1] = fb->item_tags[b] + counts[b];
  fb->tag_offsets[0] = 0;
  int k = 0;
  for (int j = 0; j < n; j++) {
    for (const int32_t *t = tags[j]; *t; t++) fb->tag_tokens[k++] = *t;
    fb->tag_offsets[j + 1] = k;
  }
  fb->b.item_tags = fb->item_tags;
  fb->b.tag_offsets = fb->tag_offsets;
  fb->b.tag_tokens = fb->tag_tokens;
}

/* Load the defaults plus `sets`; exits on a config error (a test bug). */
static inline void fixture_config(ot_config *cfg, const char *const *sets, int n) {
  if (ot_config_load(cfg, NULL, sets, n)) {
    fprintf(stderr, "config: %s\n", ot_errmsg());
    exit(1);
  }
}

#endif
