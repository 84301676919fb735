/* Throughput of a transformer block's forward+backward relative to the
 * machine's SGEMM peak measured in the same run, single-threaded.
 *
 *   ops_speed [B T C heads rounds]     (default 64 80 128 4 15)
 *
 * Peak: cblas_sgemm on 1024x1024x1024. Block: pre-LN, hidden 4C, batch B x
 * seq T, self-attention (encoder block); then the self(causal)+cross
 * variant with a memory of the same length (decoder block). Achieved
 * GFLOP/s counts the matrix products (forward flops x 3 for
 * forward+backward). Peak and block steps are measured in alternation,
 * `rounds` times, keeping the best of each, so that both see the same
 * machine conditions; both wall time and this thread's CPU time are
 * reported (CPU time is the robust figure on a shared machine).
 * Exit status 0 whatever the ratio: this is a measurement, not a test. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ot_arena.h"
#include "ot_block.h"
#include "ot_common.h"
#include "ot_params.h"
#include "ot_rng.h"

void openblas_set_num_threads(int); /* OpenBLAS extension */

static double cpu_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct {
  double wall, cpu;
} best_time;

static void keep_best(best_time *b, double wall, double cpu) {
  if (wall < b->wall) b->wall = wall;
  if (cpu < b->cpu) b->cpu = cpu;
}

/* ---- SGEMM reference -------------------------------------------------------- */

enum { PEAK_N = 1024 };
static float *pa, *pb, *pc;

static void peak_setup(void) {
  size_t n = (size_t)PEAK_N * PEAK_N;
  pa = malloc(n * sizeof(float)), pb = malloc(n * sizeof(float)), pc = malloc(n * sizeof(float));
  OT_ASSERT(pa && pb && pc);
  ot_rng r;
  ot_rng_seed(&r, 1);
  ot_rng_fill_uniform(&r, pa, n, -1, 1);
  ot_rng_fill_uniform(&r, pb, n, -1, 1);
  memset(pc, 0, n * sizeof(float));
}

static void peak_run(best_time *b) {
  double w0 = ot_now(), c0 = cpu_now();
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, PEAK_N, PEAK_N, PEAK_N, 1.0f, pa, PEAK_N,
              pb, PEAK_N, 0.0f, pc, PEAK_N);
  keep_best(b, ot_now() - w0, cpu_now() - c0);
}

/* ---- block -------------------------------------------------------------------- */

typedef struct {
  const char *name;
  ot_block_config cfg;
  int B, T, Tm;
  ot_params *p;
  ot_block_layout L;
  ot_arena *arena;
  ot_block_acts acts;
  float *x, *dx, *dout, *mem, *dmem;
  size_t NC, NM;
  best_time fwd, bwd, step;
} bench;

static void bench_setup(bench *b) {
  ot_rng r;
  ot_rng_seed(&r, 2);
  OT_ASSERT(ot_params_open(&b->p) == OT_OK);
  OT_ASSERT(ot_block_declare(b->p, "b", &b->cfg, &b->L) == OT_OK);
  OT_ASSERT(ot_params_alloc(b->p, 1) == OT_OK);
  ot_block_init(ot_params_values(b->p), &b->L, &b->cfg, &r, 0.02f, 0.02f);
  b->NC = (size_t)b->B * b->T * b->cfg.C;
  b->NM = b->cfg.cross ? (size_t)b->B * b->Tm * b->cfg.C_mem : 0;
  b->x = malloc(b->NC * sizeof(float)), b->dx = malloc(b->NC * sizeof(float));
  b->dout = malloc(b->NC * sizeof(float));
  b->mem = b->NM ? malloc(b->NM * sizeof(float)) : NULL;
  b->dmem = b->NM ? malloc(b->NM * sizeof(float)) : NULL;
  ot_rng_fill_normal(&r, b->x, b->NC, 0, 1);
  ot_rng_fill_normal(&r, b->dout, b->NC, 0, 1);
  if (b->mem) ot_rng_fill_normal(&r, b->mem, b->NM, 0, 1);
  OT_ASSERT(ot_arena_open(&b->arena, 0) == OT_OK);
  b->fwd = b->bwd = b->step = (best_time){1e30, 1e30};
}

/* One training step of the block: what a model does per layer. */
static void bench_step(bench *b, int record) {
  ot_arena_reset(b->arena);
  double w0 = ot_now(), c0 = cpu_now();
  const ot_block_memory mem = {.mem = b->mem, .B = b->B, .Tm = b->Tm};
  OT_ASSERT(ot_block_forward(&b->acts, &b->cfg, &b->L, ot_params_values(b->p), b->x, NULL, b->B,
                             b->T, b->mem ? &mem : NULL, 0.0f, 7, 0, 1, b->arena) == OT_OK);
  double w1 = ot_now(), c1 = cpu_now();
  memset(b->dx, 0, b->NC * sizeof(float));
  if (b->dmem) memset(b->dmem, 0, b->NM * sizeof(float));
  ot_params_zero_grads(b->p);
  OT_ASSERT(ot_block_backward(b->dx, b->dmem, ot_params_grads(b->p), b->dout, &b->acts, &b->cfg,
                              &b->L, ot_params_values(b->p), b->arena) == OT_OK);
  double w2 = ot_now(), c2 = cpu_now();
  if (!record) return;
  keep_best(&b->fwd, w1 - w0, c1 - c0);
  keep_best(&b->bwd, w2 - w1, c2 - c1);
  keep_best(&b->step, w2 - w0, c2 - c0);
}

static void bench_report(const bench *b, const best_time *peak) {
  const double flops = 3.0 * ot_block_forward_flops(&b->cfg, b->B, b->T, b->Tm);
  const double pf = 2.0 * PEAK_N * PEAK_N * PEAK_N;
  printf("%s: B=%d T=%d C=%d heads=%d hidden=%d%s, %.2f GFLOP per step\n", b->name, b->B, b->T,
         b->cfg.C, b->cfg.n_head, b->cfg.hidden, b->cfg.cross ? ", +cross (Tm=T)" : "", flops / 1e9);
  printf("  cpu time:  fwd %6.1f ms  bwd %6.1f ms  step %6.1f ms = %5.1f GFLOP/s = %3.0f%% of peak (%.1f)\n",
         b->fwd.cpu * 1e3, b->bwd.cpu * 1e3, b->step.cpu * 1e3, flops / b->step.cpu / 1e9,
         100.0 * (flops / b->step.cpu) / (pf / peak->cpu), pf / peak->cpu / 1e9);
  printf("  wall time: fwd %6.1f ms  bwd %6.1f ms  step %6.1f ms = %5.1f GFLOP/s = %3.0f%% of peak (%.1f)\n",
         b->fwd.wall * 1e3, b->bwd.wall * 1e3, b->step.wall * 1e3, flops / b->step.wall / 1e9,
         100.0 * (flops / b->step.wall) / (pf / peak->wall), pf / peak->wall / 1e9);
  printf("  arena high water %.1f MB\n", ot_arena_high_water(b->arena) / 1048576.0);
}

static void bench_free(bench *b) {
  ot_arena_close(b->arena);
  ot_params_close(b->p);
  free(b->x), free(b->dx), free(b->dout), free(b->mem), free(b->dmem);
}

int main(int argc, char **argv) {
  int B = 64, T = 80, C = 128, NH = 4, rounds = 15;
  if (argc == 6) {
    B = atoi(argv[1]), T = atoi(argv[2]), C = atoi(argv[3]), NH = atoi(argv[4]);
    rounds = atoi(argv[5]);
  } else if (argc != 1) {
    fprintf(stderr, "usage: %s [B T C heads rounds]\n", argv[0]);
    return 2;
  }
  if (B < 1 || T < 1 || C < 1 || NH < 1 || C % NH || rounds < 1) {
    fprintf(stderr, "%s: need positive sizes with heads dividing C\n", argv[0]);
    return 2;
  }
  openblas_set_num_threads(1);
  peak_setup();
  bench enc = {.name = "encoder block", .cfg = {.C = C, .n_head = NH, .hidden = 4 * C}, .B = B, .T = T};
  bench dec = {.name = "decoder block",
               .cfg = {.C = C, .n_head = NH, .hidden = 4 * C, .causal = 1, .cross = 1, .C_mem = C},
               .B = B, .T = T, .Tm = T};
  bench_setup(&enc);
  bench_setup(&dec);
  best_time peak = {1e30, 1e30};
  for (int i = 0; i < 2; i++) { /* warm-up: first-touch pages, arena settles */
    peak_run(&peak);
    bench_step(&enc, 0);
    bench_step(&dec, 0);
  }
  peak = (best_time){1e30, 1e30};
  for (int r = 0; r < rounds; r++) {
    peak_run(&peak);
    bench_step(&enc, 1);
    peak_run(&peak);
    bench_step(&dec, 1);
  }
  const double pf = 2.0 * PEAK_N * PEAK_N * PEAK_N;
  printf("SGEMM %d^3, 1 thread: %.1f GFLOP/s (cpu time), %.1f GFLOP/s (wall)\n", PEAK_N,
         pf / peak.cpu / 1e9, pf / peak.wall / 1e9);
  bench_report(&enc, &peak);
  bench_report(&dec, &peak);
  bench_free(&enc);
  bench_free(&dec);
  free(pa), free(pb), free(pc);
  return 0;
}
