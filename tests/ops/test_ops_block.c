/* Pre-LN transformer block: every parameter tensor, the input and the
 * cross-attention memory against finite differences, for the self-attention
 * variant (causal, key padding, dropout), the self+cross variant (memory
 * padding, dropout; one memory per sequence, and memories of items that
 * groups of sequences share, one item owning none: the tag decoder's) and
 * an odd width with one head. Also: the backward
 * returns its arena scratch, and the arena stops growing after one step. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"
#include "ot_arena.h"
#include "ot_block.h"
#include "ot_common.h"

typedef struct {
  ot_block_config cfg;
  ot_block_layout L;
  ot_params *params;
  ot_arena *arena;
  ot_block_acts acts;
  int B, T;
  float dropout;
  float *x, *mem, *R;
  const uint8_t *x_mask;
  ot_block_memory m; /* cross only */
} block_ctx;

static double block_f(void *p) {
  block_ctx *c = p;
  ot_arena_reset(c->arena);
  int rc = ot_block_forward(&c->acts, &c->cfg, &c->L, ot_params_values(c->params), c->x, c->x_mask,
                            c->B, c->T, c->cfg.cross ? &c->m : NULL, c->dropout, 31337, 3, 1,
                            c->arena);
  OT_ASSERT(rc == OT_OK);
  return gc_project(c->acts.out, c->R, (size_t)c->B * c->T * c->cfg.C);
}

/* items, seq_start: the memory's items and which sequences read them (NULL:
 * one item per sequence, items = B). */
static void test_block(const char *name, ot_block_config cfg, int B, int T, int Tm,
                       const uint8_t *x_mask, const uint8_t *mem_mask, int items,
                       const int32_t *seq_start, float dropout) {
  printf("%s: B=%d T=%d C=%d heads=%d hidden=%d causal=%d cross=%d (%d items, Tm=%d C_mem=%d) "
         "dropout=%.2f\n",
         name, B, T, cfg.C, cfg.n_head, cfg.hidden, cfg.causal, cfg.cross, items, Tm, cfg.C_mem,
         dropout);
  ot_rng rng;
  ot_rng_seed(&rng, 99);
  block_ctx c = {.cfg = cfg, .B = B, .T = T, .dropout = dropout, .x_mask = x_mask,
                 .m = {.mem_mask = mem_mask, .seq_start = seq_start, .B = items, .Tm = Tm}};
  OT_ASSERT(ot_params_open(&c.params) == OT_OK);
  OT_ASSERT(ot_block_declare(c.params, "blk", &cfg, &c.L) == OT_OK);
  OT_ASSERT(ot_params_alloc(c.params, 1) == OT_OK);
  float *values = ot_params_values(c.params), *grads = ot_params_grads(c.params);
  ot_block_init(values, &c.L, &cfg, &rng, 0.3f, 0.2f);
  /* move LayerNorm weights and biases off 1 and 0: test the general case */
  for (int i = 0; i < ot_params_count(c.params); i++) {
    const ot_param_view *v = ot_params_view(c.params, i);
    for (size_t k = 0; k < v->numel; k++) values[v->offset + k] += 0.2f * ot_rng_normal(&rng);
  }
  const size_t NC = (size_t)B * T * cfg.C;
  c.x = gc_randn(&rng, NC, 1.0f);
  const size_t NM = (size_t)items * Tm * cfg.C_mem;
  c.mem = cfg.cross ? gc_randn(&rng, NM, 1.0f) : NULL;
  c.m.mem = c.mem;
  c.R = gc_randn(&rng, NC, 1.0f);
  OT_ASSERT(ot_arena_open(&c.arena, 0) == OT_OK);

  block_f(&c);
  size_t used_after_forward = ot_arena_used(c.arena);
  float *dx = gc_alloc(NC), *dmem = cfg.cross ? gc_alloc(NM) : NULL;
  OT_ASSERT(ot_block_backward(dx, dmem, grads, c.R, &c.acts, &cfg, &c.L, values, c.arena) == OT_OK);
  GC_EXPECT(ot_arena_used(c.arena) == used_after_forward,
            "backward kept %zu arena bytes", ot_arena_used(c.arena) - used_after_forward);

  for (int i = 0; i < ot_params_count(c.params); i++) {
    const ot_param_view *v = ot_params_view(c.params, i);
    gc_check(v->name, values + v->offset, grads + v->offset, v->numel, block_f, &c, GC_H, 60);
  }
  gc_check("dx", c.x, dx, NC, block_f, &c, GC_H, 200);
  if (cfg.cross) gc_check("dmem", c.mem, dmem, NM, block_f, &c, GC_H, 200);

  /* steady state: after the first step's reset no block is added */
  size_t cap = ot_arena_capacity(c.arena);
  for (int step = 0; step < 3; step++) {
    block_f(&c);
    OT_ASSERT(ot_block_backward(dx, dmem, grads, c.R, &c.acts, &cfg, &c.L, values, c.arena) == OT_OK);
  }
  GC_EXPECT(ot_arena_capacity(c.arena) == cap, "arena grew from %zu to %zu bytes in steady state",
            cap, ot_arena_capacity(c.arena));
  printf("  arena: %zu bytes high water, %zu held\n", ot_arena_high_water(c.arena), cap);

  /* same seed, same output; another seed, different dropout masks */
  if (dropout > 0) {
    float *out1 = gc_alloc(NC);
    block_f(&c);
    memcpy(out1, c.acts.out, NC * sizeof(float));
    block_f(&c);
    GC_EXPECT(memcmp(out1, c.acts.out, NC * sizeof(float)) == 0, "forward is not deterministic");
    ot_arena_reset(c.arena); /* inference's forward (no gelu' kept): the same output */
    OT_ASSERT(ot_block_forward(&c.acts, &cfg, &c.L, values, c.x, x_mask, B, T,
                               cfg.cross ? &c.m : NULL, dropout, 31337, 3, 0, c.arena) == OT_OK);
    GC_EXPECT(memcmp(out1, c.acts.out, NC * sizeof(float)) == 0,
              "the forward without backward gives another output");
    ot_arena_reset(c.arena);
    OT_ASSERT(ot_block_forward(&c.acts, &cfg, &c.L, values, c.x, x_mask, B, T,
                               cfg.cross ? &c.m : NULL, dropout, 31338, 3, 1, c.arena) == OT_OK);
    GC_EXPECT(memcmp(out1, c.acts.out, NC * sizeof(float)) != 0, "dropout seed has no effect");
    free(out1);
  }
  ot_arena_close(c.arena);
  ot_params_close(c.params);
  free(c.x), free(c.mem), free(c.R), free(dx), free(dmem);
}

int main(void) {
  static const uint8_t x_mask[2 * 7] = {1, 1, 1, 1, 1, 0, 0, 1, 1, 0, 1, 1, 1, 1};
  ot_block_config self = {.C = 12, .n_head = 3, .hidden = 20, .causal = 1};
  test_block("self-attention block", self, 2, 7, 0, x_mask, NULL, 0, NULL, 0.2f);

  static const uint8_t x5[3 * 5] = {1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0};
  static const uint8_t m6[3 * 6] = {1, 1, 1, 1, 0, 0, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
  ot_block_config cross = {.C = 12, .n_head = 2, .hidden = 16, .cross = 1, .C_mem = 10};
  test_block("self+cross block", cross, 3, 5, 6, x5, m6, 3, NULL, 0.1f);
  /* 4 sequences over 3 items: item 0 owns two, item 1 none, item 2 two */
  static const int32_t groups[3 + 1] = {0, 2, 2, 4};
  ot_block_config dec = {.C = 12, .n_head = 3, .hidden = 16, .causal = 1, .cross = 1, .C_mem = 12};
  test_block("causal+cross block, shared memories", dec, 4, 5, 6, NULL, m6, 3, groups, 0.1f);

  ot_block_config odd = {.C = 13, .n_head = 1, .hidden = 9};
  test_block("odd-width block", odd, 2, 7, 0, NULL, NULL, 0, NULL, 0.0f);

  ot_params *p;
  ot_block_layout L;
  ot_params_open(&p);
  ot_block_config bad = {.C = 12, .n_head = 5, .hidden = 8};
  GC_EXPECT(ot_block_declare(p, "bad", &bad, &L) == OT_EINVAL, "heads not dividing C accepted");
  printf("invalid config rejected: %s\n", ot_errmsg());
  ot_params_close(p);
  return gc_finish("test_ops_block");
}
