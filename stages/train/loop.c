/* ot-train's loop: one optimizer step per global batch, identical on every
 * rank after the gradient allreduce; validation, checkpoints, signals. */
#include "ckpt.h"
#include "f1sweep.h"
#include "judge_val.h"
#include "ot_common.h"
#include "ot_log.h"
#include "ot_mpi.h"
#include "ot_optim.h"
#include "tagnorm.h"
#include "trainer.h"

#include <math.h>
#include <mpi.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

/* Set by the handler, read at step boundaries (bit 0 USR1, bit 1 TERM/INT). */
static volatile sig_atomic_t stop_request = 0;
enum { STOP_USR1 = 1, STOP_TERM = 2 };

static void on_signal(int sig) { stop_request |= sig == SIGUSR1 ? STOP_USR1 : STOP_TERM; }

void ot_trainer_catch_signals(void) {
  stop_request = 0; /* an earlier training in this process (ot-run) acted on its own */
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, NULL);
  sa.sa_flags = SA_RESETHAND; /* a second Ctrl-C kills at once */
  sigaction(SIGINT, &sa, NULL);
  /* last: once USR1 is caught, so are the others (the tests wait for it:
   * MPI may catch TERM itself before this runs) */
  sa.sa_flags = 0;
  sigaction(SIGUSR1, &sa, NULL);
}

/* Gradient buckets of 1M floats (4 MB): all in flight at once, so large
 * models pipeline their reductions. After the backward, not overlapped. */
#define BUCKET_FLOATS ((size_t)1 << 20)

static int allreduce_grads(float *g, size_t n) {
  if (ot_mpi_size() == 1) return OT_OK;
  size_t nb = (n + BUCKET_FLOATS - 1) / BUCKET_FLOATS;
  MPI_Request *req = ot_xmalloc(nb * sizeof *req);
  int bad = 0;
  for (size_t b = 0; b < nb; b++) {
    size_t off = b * BUCKET_FLOATS, c = n - off < BUCKET_FLOATS ? n - off : BUCKET_FLOATS;
    bad |= MPI_Iallreduce(MPI_IN_PLACE, g + off, (int)c, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &req[b]) !=
           MPI_SUCCESS;
  }
  bad |= MPI_Waitall((int)nb, req, MPI_STATUSES_IGNORE) != MPI_SUCCESS;
  free(req);
  return bad ? ot_fail(OT_EMPI, "gradient allreduce failed") : OT_OK;
}

/* Forward + backward over this rank's slice of the step's global batch;
 * *loss = this rank's share of the global mean loss. */
static int local_pass(ot_trainer *t, const int64_t *gbatch, int64_t B, double *loss) {
  int64_t lo, hi;
  ot_order_slice(B, t->size, t->rank, &lo, &hi);
  const uint64_t step_seed = ot_rng_mix(ot_rng_mix((uint64_t)t->cfg->train.seed, 0x64726f70ULL),
                                        (uint64_t)t->step);
  *loss = 0.0;
  ot_batcher_shift_aug(t->batcher, t->cfg->train.shift_aug, ot_rng_mix(step_seed, 0x7368696674ULL));
  if (ot_model_is_generative(t->model))
    ot_batcher_copy_aug(t->batcher, (float)t->cfg->model.copy_aug, ot_rng_mix(step_seed, 0x636f7079ULL));
  for (int64_t c = lo; c < hi; c += t->micro) {
    int n = (int)(hi - c < t->micro ? hi - c : t->micro);
    ot_batch batch;
    int st = ot_batcher_fill(t->batcher, gbatch + c, n, &batch);
    if (st) return st;
    batch.loss_scale = 1.0f / (float)B;
    batch.item0 = c; /* dropout masks follow the item, not the pass */
    float l = 0.0f;
    if ((st = ot_model_forward(t->model, &batch, 1, step_seed, &l))) return st;
    ot_model_backward(t->model);
    *loss += l;
  }
  return OT_OK;
}

typedef struct {
  double loss, lr, grad_norm;
} step_stats;

/* A loss or gradient that is not a finite number would turn every weight
 * into NaN through AdamW, and a rerun resumes from the last checkpoint to
 * replay the same steps bit for bit: the run stops for good (exit 2, which
 * slurm/train.sbatch does not requeue) before anything takes the value up,
 * so the weights and checkpoints written so far stay as they were. Every
 * rank holds the same allreduced value, so every rank stops here together. */
static int check_finite(const ot_trainer *t, int64_t step, const char *what, double v) {
  if (isfinite(v)) return OT_OK;
  const int from_init = t->cfg->train.init[0] && !t->resumed_from[0];
  return ot_fail(OT_EINVAL,
                 "step %lld: the %s is %s: training stopped there; what train.dir holds was written "
                 "before and is intact, and a rerun would meet the same step. Lower train.lr, or look for "
                 "extreme values in the inputs%s%s",
                 (long long)step, what, isnan(v) ? "NaN" : v > 0 ? "+inf" : "-inf",
                 from_init ? " and in the weights of train.init=" : "", from_init ? t->cfg->train.init : "");
}

static int train_step(ot_trainer *t, int64_t *gbatch, step_stats *s) {
  const ot_config *cfg = t->cfg;
  const int64_t B = cfg->train.batch;
  ot_params_zero_grads(t->params);
  ot_order_next(t->order, B, gbatch);
  double local = 0.0;
  int st = ot_mpi_agree(local_pass(t, gbatch, B, &local));
  if (st) return st;
  /* MPI errors abort the job (MPI_ERRORS_ARE_FATAL): nothing to agree on. */
  if ((st = allreduce_grads(ot_params_grads(t->params), ot_params_total(t->params)))) return st;
  MPI_Allreduce(&local, &s->loss, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
  s->grad_norm = ot_grad_clip(ot_params_grads(t->params), ot_params_total(t->params),
                              (float)cfg->train.grad_clip);
  if ((st = check_finite(t, t->step + 1, "training loss", s->loss)) ||
      (st = check_finite(t, t->step + 1, "gradient norm", s->grad_norm)))
    return st;
  s->lr = ot_lr_schedule((long)t->step, cfg->train.warmup, cfg->train.steps, (float)cfg->train.lr,
                         (float)cfg->train.min_lr);
  /* PyTorch's AdamW defaults for the betas and eps. */
  const ot_adamw_config adam = {0.9f, 0.999f, 1e-8f, (float)cfg->train.weight_decay};
  ot_adamw_step(t->params, (float)s->lr, &adam, (long)t->step + 1);
  if (ot_params_ema(t->params))
    ot_ema_update(ot_params_ema(t->params), ot_params_values(t->params), ot_params_total(t->params),
                  (float)cfg->train.ema, (long)t->step + 1);
  t->step++;
  return OT_OK;
}

typedef struct {
  double loss;
  ot_f1_result f1;
  int64_t items;   /* val items in the loss */
  int64_t f1_items; /* val items in the F1 (generative: the first GEN_VAL_ITEMS) */
  double ret_weight; /* rag: retrieval's weight in the fused answer at that F1 */
  double lex_weight; /* rag with a title lexicon: its weight there */
  double abs_weight; /* ... and the exponent of its absence ratio */
  double recall5;   /* judge (no F1): image→tag recall@5 over val */
  int64_t recall_tags; /* judge: the distinct val tags ranked */
} eval_result;

/* Generation on this many val items at most (the first ones): decoding is
 * far slower than a forward pass, but the tag threshold is tuned on them
 * (200 items gave thresholds that moved test F1 by points). */
#define GEN_VAL_ITEMS 1000

/* rag's fused answer (ot_gen_fuse) is tuned with the threshold: weights
 * 0, 0.1, .., 0.9 of retrieval against generation. Not 1: that answer is
 * retrieval alone (with a title lexicon, retrieval and lexicon alone),
 * which the model would not be part of — val chose it on emoji-en once the
 * lexicon joined (0.7115 against 0.7055 at 0.9), and it is its own row. */
#define RET_WEIGHTS 10
static double ret_weight_of(int j) { return (double)j / 10.0; }
/* ... and, with a title lexicon, jointly with its weight in
 * ot_gen_fuse_title: 0, 0.1, .., 2 (emoji-zh's val chose 1.3-1.8 for the
 * pieces that are words, README) ... */
#define LEX_WEIGHTS 21
static double lex_weight_of(int l) { return (double)l / 10.0; }
/* ... and the exponent of its absence ratio: 0, 0.1, .., 0.5 (histogram
 * (j * LEX_WEIGHTS + l) * ABS_WEIGHTS + a). Val chose 0.1 on emoji-en
 * (seeds 1-3; its val F1 falls from 0.2 on, README), 0 / 0.1 / 0.1 on
 * emoji-zh. */
#define ABS_WEIGHTS 6
static double abs_weight_of(int a) { return (double)a / 10.0; }

/* Histograms per retrieval weight: lexicon weights x absence exponents. */
static int lex_grid(const ot_trainer *t, int *n_abs) {
  *n_abs = t->lexicon.tag_groups ? ABS_WEIGHTS : 1;
  return t->lexicon.max_units ? LEX_WEIGHTS : 1;
}

/* An item's ground-truth tags as ot-eval scores against them
 * (ot_tagnorm_unique); *out owns the strings (truth_free). */
typedef struct {
  char **norm;
  int n;
} truth_set;

static void truth_normalise(char *const *truth, int nt, truth_set *out) {
  out->norm = ot_xcalloc((size_t)nt + 1, sizeof *out->norm);
  out->n = ot_tagnorm_unique((const char *const *)truth, nt, out->norm, NULL);
}

static void truth_free(truth_set *t) {
  for (int j = 0; j < t->n; j++) free(t->norm[j]);
  free(t->norm);
}

/* Count one item's generated (tag, score) pairs against its ground truth:
 * a generated tag is a positive pair when it is among them; ground-truth
 * tags never generated are `missed`. */
static void gen_hist_add(ot_f1_hist *h, const ot_gen_item *g, const truth_set *truth) {
  int hits = 0;
  for (int i = 0; i < g->n; i++) {
    int hit = 0;
    for (int j = 0; j < truth->n && !hit; j++) hit = !strcmp(truth->norm[j], g->tags[i].tag);
    int b = ot_f1_bin_prob(g->tags[i].score);
    if (hit) h->pos[b]++, hits++;
    else h->neg[b]++;
  }
  h->missed += truth->n - hits; /* generated tags are distinct, so hits <= truth->n */
}

/* One val item's answers at every weight triple into h[n_w] (rag). */
static int fused_hist_add(ot_f1_hist *h, const ot_trainer *t, const ot_gen_item *gen,
                          const ot_batch *batch, int i, const char *title, const truth_set *truth) {
  int n_abs;
  const int n_lex = lex_grid(t, &n_abs);
  ot_lexicon_hits hits = {0};
  int st = n_lex > 1 ? ot_lexicon_lookup(&t->lexicon, title, &hits) : OT_OK;
  for (int j = 0; j < RET_WEIGHTS && st == OT_OK; j++) {
    ot_gen_item fused;
    if ((st = ot_gen_fuse(gen, batch, i, (float)ret_weight_of(j), &fused)) == OT_OK) {
      float *absent = n_abs > 1 ? ot_xmalloc(((size_t)fused.n + 1) * sizeof *absent) : NULL;
      if (absent) ot_lexicon_absence(&t->lexicon, &hits, &fused, absent);
      for (int l = 0; l < n_lex; l++)
        for (int a = 0; a < n_abs; a++) {
          ot_gen_item joined;
          ot_gen_fuse_title(&fused, absent, (float)abs_weight_of(a),
                            (const char *const *)hits.text, hits.score, hits.n,
                            (float)lex_weight_of(l), &joined);
          gen_hist_add(&h[(j * n_lex + l) * n_abs + a], &joined, truth);
          ot_gen_items_free(&joined, 1);
        }
      free(absent);
    }
    ot_gen_items_free(&fused, 1);
  }
  ot_lexicon_hits_free(&hits);
  return st;
}

/* A closed-set item's ground-truth tags outside the head's vocabulary
 * (unseen in training, or rarer than model.min_tag_count): no threshold
 * predicts them, but ot-eval counts them, so the threshold is tuned on the
 * F1 it will be scored with — as the generative models' is. */
static void closed_missed_add(ot_f1_hist *h, const ot_tagset *tags, char *const *truth, int nt) {
  truth_set norm;
  truth_normalise(truth, nt, &norm);
  for (int j = 0; j < norm.n; j++) h->missed += ot_tagset_index(tags, norm.norm[j]) < 0;
  truth_free(&norm);
}

/* Mean validation loss over all items and the F1-maximising threshold,
 * over all ranks: closed-set models from the logits of every item,
 * generative ones from generation on the first GEN_VAL_ITEMS items. */
static int validate(ot_trainer *t, eval_result *r) {
  const int64_t n = ot_dataset_count(t->val);
  const int K = t->tags.n, mb = t->cfg->train.micro_batch;
  const int gen = ot_model_is_generative(t->model);
  const int judge = t->cfg->model.type == OT_MODEL_JUDGE; /* no logits: loss and recall@5 */
  const int64_t n_gen = n < GEN_VAL_ITEMS ? n : GEN_VAL_ITEMS;
  int n_abs;
  const int n_lex = lex_grid(t, &n_abs);
  /* one histogram each */
  const int n_w = t->cfg->model.type == OT_MODEL_RAG ? RET_WEIGHTS * n_lex * n_abs : 1;
  int64_t lo, hi, glo, ghi;
  ot_order_slice(n, t->size, t->rank, &lo, &hi);
  ot_order_slice(n_gen, t->size, t->rank, &glo, &ghi);
  ot_f1_hist *h = ot_xcalloc((size_t)n_w, sizeof *h), *sum = ot_xcalloc((size_t)n_w, sizeof *sum);
  int64_t *items = ot_xmalloc((size_t)mb * sizeof *items);
  double local = 0.0;
  int st = OT_OK;
  for (int64_t c = lo; c < hi && st == OT_OK; c += mb) {
    int k = (int)(hi - c < mb ? hi - c : mb);
    for (int i = 0; i < k; i++) items[i] = c + i;
    ot_batch batch;
    if ((st = ot_batcher_fill(t->val_batcher, items, k, &batch))) break;
    batch.loss_scale = 1.0f / (float)n;
    float l = 0.0f;
    if ((st = ot_model_forward(t->model, &batch, 0, 0, &l))) break;
    local += l;
    if (gen || judge) continue;
    ot_f1_hist_add(h, ot_model_logits(t->model), batch.targets, k, K);
    for (int i = 0; i < k; i++) {
      int64_t li;
      ot_shard *s = ot_dataset_locate(t->val, items[i], &li);
      char *const *truth;
      int nt = ot_shard_tags(s, li, &truth);
      closed_missed_add(h, &t->tags, truth, nt);
    }
  }
  ot_gen_item *out = gen ? ot_xcalloc((size_t)mb, sizeof *out) : NULL;
  const ot_gen_opts opts = {.bpe = t->bpe, .threshold = 0.0f, .no_cache = 0};
  for (int64_t c = glo; gen && c < ghi && st == OT_OK; c += mb) {
    int k = (int)(ghi - c < mb ? ghi - c : mb);
    for (int i = 0; i < k; i++) items[i] = c + i;
    ot_batch batch;
    if ((st = ot_batcher_fill(t->val_batcher, items, k, &batch))) break;
    st = ot_model_generate(t->model, &batch, &opts, out);
    for (int i = 0; i < k && st == OT_OK; i++) {
      int64_t li;
      ot_shard *s = ot_dataset_locate(t->val, items[i], &li);
      char *const *truth;
      const int nt = ot_shard_tags(s, li, &truth);
      truth_set norm;
      truth_normalise(truth, nt, &norm);
      if (n_w == 1) gen_hist_add(h, &out[i], &norm);
      else st = fused_hist_add(h, t, &out[i], &batch, i, ot_shard_title(s, li), &norm);
      truth_free(&norm);
    }
    ot_gen_items_free(out, k);
  }
  free(out);
  free(items);
  st = ot_mpi_agree(st);
  if (st == OT_OK && judge) st = ot_judge_val_recall(t, 5, &r->recall5, &r->recall_tags);
  if (st == OT_OK) {
    MPI_Allreduce(&local, &r->loss, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    st = check_finite(t, t->step, "validation loss", r->loss);
  }
  if (st == OT_OK) {
    MPI_Allreduce(h, sum, OT_F1_HIST_WORDS * n_w, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
    ot_f1_best(&sum[0], &r->f1);
    r->ret_weight = r->lex_weight = r->abs_weight = 0.0;
    for (int j = 1; j < n_w; j++) { /* strictly better: ties keep the lower weights */
      ot_f1_result f;
      ot_f1_best(&sum[j], &f);
      if (f.f1 > r->f1.f1)
        r->f1 = f, r->ret_weight = ret_weight_of(j / (n_lex * n_abs)),
        r->lex_weight = lex_weight_of(j / n_abs % n_lex), r->abs_weight = abs_weight_of(j % n_abs);
    }
    r->items = n;
    r->f1_items = gen ? n_gen : n;
  }
  free(h);
  free(sum);
  return st;
}

/* rag's weights for the log: ", retrieval weight W[, lexicon weight L[,
 * absence exponent A]]". */
static void fused_weights(const ot_trainer *t, double ret, double lex, double abs, char *buf,
                          size_t cap) {
  int n = snprintf(buf, cap, ", retrieval weight %.1f", ret);
  if (t->lexicon.max_units && n > 0 && (size_t)n < cap)
    n += snprintf(buf + n, cap - (size_t)n, ", lexicon weight %.1f", lex);
  if (t->lexicon.tag_groups && n > 0 && (size_t)n < cap)
    snprintf(buf + n, cap - (size_t)n, ", absence exponent %.1f", abs);
}

/* Rank 0: write `name` in train.dir, then (publish) point `latest` at it. */
static int save(ot_trainer *t, const char *name, int publish) {
  int st = OT_OK;
  if (t->rank == 0) {
    ot_ckpt_meta m;
    memset(&m, 0, sizeof m);
    m.step = t->step;
    ot_order_get_pos(t->order, &m.pos);
    m.threshold = t->threshold;
    m.val_f1 = t->val_f1;
    m.ret_weight = t->ret_weight;
    m.lex_weight = t->lex_weight;
    m.abs_weight = t->abs_weight;
    m.lexicon = t->lexicon; /* borrowed */
    m.T = t->T, m.H = t->H, m.W = t->W, m.D = t->D;
    m.train_items = ot_dataset_count(t->train);
    m.data_version = ot_dataset_version(t->train);
    m.cands_version = t->cands_version;
    m.config = t->config_yaml;
    m.tokenizer = t->bpe_text;
    m.tags = t->tags; /* borrowed: not freed here */
    char path[4400];
    snprintf(path, sizeof path, "%s/%s", t->cfg->train.dir, name);
    double t0 = ot_now();
    st = ot_ckpt_write(path, t->params, &m);
    if (st == OT_OK && publish) st = ot_ckpt_publish(t->cfg->train.dir, name, t->cfg->train.keep_ckpt);
    if (st == OT_OK) ot_log_info("step %lld: wrote %s (%.2fs)", (long long)t->step, path, ot_now() - t0);
  }
  return ot_mpi_agree(st);
}

static long peak_rss_mb(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  long mine = ru.ru_maxrss / 1024, worst = 0; /* KiB on Linux */
  MPI_Allreduce(&mine, &worst, 1, MPI_LONG, MPI_MAX, MPI_COMM_WORLD);
  return worst;
}

static void metrics_line(ot_trainer *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void metrics_line(ot_trainer *t, const char *fmt, ...) {
  if (!t->metrics) return;
  va_list ap;
  va_start(ap, fmt);
  vfprintf(t->metrics, fmt, ap);
  va_end(ap);
  fflush(t->metrics); /* lines up to a kill survive it */
}

/* Collective: the stop requests of every rank (a signal may reach one). */
static int stop_agreed(void) {
  int mine = stop_request, stop = 0;
  MPI_Allreduce(&mine, &stop, 1, MPI_INT, MPI_BOR, MPI_COMM_WORLD);
  return stop;
}

/* A signal caught after the loop's last look at it (while final.h5 was
 * written, or while an already complete training was set up) still stops:
 * the caller (ot-run) would otherwise go on to its next step. */
static void stopped_after_end(int64_t step, int *stopped_by) {
  const int stop = stop_agreed();
  if (!stop) return;
  *stopped_by = stop & STOP_TERM ? SIGTERM : SIGUSR1;
  ot_log_info0("stopped by %s after the training had ended (at step %lld, final.h5 complete); rerun the "
               "same command to go on", stop & STOP_TERM ? "SIGTERM" : "SIGUSR1", (long long)step);
}

int ot_trainer_run(ot_trainer *t, int *stopped_by) {
  const ot_config *cfg = t->cfg;
  const int64_t B = cfg->train.batch, steps = cfg->train.steps;
  *stopped_by = 0;
  int64_t *gbatch = ot_xmalloc((size_t)B * sizeof *gbatch);
  const double flops_step = ot_model_train_flops(t->model, (int)B);
  if (t->start_step > 0)
    ot_log_info0("resuming from %s at step %lld of %lld", t->resumed_from, (long long)t->start_step,
                 (long long)steps);
  int type_len;
  const char *type = ot_config_enum_name("model.type", cfg->model.type, &type_len);
  ot_log_info0("training %.*s: %lld steps of %lld items on %d rank%s (%d item%s per pass), %zu parameters",
               type_len, type, (long long)steps, (long long)B, t->size,
               t->size > 1 ? "s" : "", t->micro, t->micro > 1 ? "s" : "", ot_params_numel(t->params));
  int st = OT_OK;
  double t_run = ot_now(), t_mark = t_run, busy = 0.0;
  int64_t mark_step = t->step;
  step_stats s = {0, 0, 0};
  while (t->step < steps && st == OT_OK) {
    if ((st = train_step(t, gbatch, &s))) break;
    ot_order_pos pos;
    ot_order_get_pos(t->order, &pos);
    metrics_line(t, "{\"kind\": \"train\", \"step\": %lld, \"epoch\": %lld, \"loss\": %.17g, \"lr\": %.9g, "
                    "\"grad_norm\": %.9g}\n",
                 (long long)t->step, (long long)pos.epoch, s.loss, s.lr, s.grad_norm);
    if (t->step % cfg->train.log_every == 0 || t->step == steps) {
      double dt = ot_now() - t_mark, k = (double)(t->step - mark_step);
      long rss = peak_rss_mb();
      busy += dt;
      ot_log_info0("step %lld/%lld epoch %.2f loss %.6f lr %.3e |g| %.3f  %.1f samples/s  %.2f GFLOP/s  "
                   "peak RSS %ld MB",
                   (long long)t->step, (long long)steps,
                   pos.epoch + (double)pos.offset / (double)ot_dataset_count(t->train), s.loss, s.lr,
                   s.grad_norm, k * (double)B / dt, k * flops_step / dt * 1e-9, rss);
      t_mark = ot_now();
      mark_step = t->step;
    }
    double t_pause = ot_now();
    if (t->val && (t->step % cfg->train.eval_every == 0 || t->step == steps)) {
      eval_result r;
      const int averaged = ot_params_ema(t->params) != NULL; /* validate what inference will read */
      if (averaged) ot_params_swap_ema(t->params);
      st = validate(t, &r);
      if (averaged) ot_params_swap_ema(t->params);
      if (st) break;
      if (cfg->model.type == OT_MODEL_JUDGE) {
        ot_log_info0("step %lld: val loss %.6f (%lld items)  image→tag recall@5 %.4f (%lld tags)",
                     (long long)t->step, r.loss, (long long)r.items, r.recall5,
                     (long long)r.recall_tags);
        metrics_line(t, "{\"kind\": \"val\", \"step\": %lld, \"val_loss\": %.17g, "
                        "\"recall_at_5\": %.9g, \"items\": %lld, \"tags\": %lld}\n",
                     (long long)t->step, r.loss, r.recall5, (long long)r.items,
                     (long long)r.recall_tags);
      } else {
        t->threshold = r.f1.threshold;
        t->val_f1 = r.f1.f1;
        t->ret_weight = r.ret_weight;
        t->lex_weight = r.lex_weight;
        t->abs_weight = r.abs_weight;
        if (r.f1.f1 > t->best_f1) {
          t->best_f1 = r.f1.f1, t->best_step = t->step;
          if ((st = save(t, OT_CKPT_BEST, 0))) break;
        }
        const int rag = cfg->model.type == OT_MODEL_RAG;
        char fused[128] = "", fused_json[128] = "";
        if (rag) {
          fused_weights(t, r.ret_weight, r.lex_weight, r.abs_weight, fused, sizeof fused);
          snprintf(fused_json, sizeof fused_json, "\"retrieval_weight\": %.3g, ", r.ret_weight);
          if (t->lexicon.max_units)
            snprintf(fused_json + strlen(fused_json), sizeof fused_json - strlen(fused_json),
                     "\"lexicon_weight\": %.3g, ", r.lex_weight);
          if (t->lexicon.tag_groups)
            snprintf(fused_json + strlen(fused_json), sizeof fused_json - strlen(fused_json),
                     "\"absence_weight\": %.3g, ", r.abs_weight);
        }
        ot_log_info0("step %lld: val loss %.6f (%lld items)  P %.4f R %.4f F1 %.4f at threshold %.3f%s "
                     "(%s, %lld items)",
                     (long long)t->step, r.loss, (long long)r.items, r.f1.precision, r.f1.recall, r.f1.f1,
                     r.f1.threshold, fused,
                     ot_model_is_generative(t->model) ? "generated tags" : "logits",
                     (long long)r.f1_items);
        metrics_line(t, "{\"kind\": \"val\", \"step\": %lld, \"val_loss\": %.17g, \"precision\": %.9g, "
                        "\"recall\": %.9g, \"f1\": %.9g, \"threshold\": %.6g, %s\"items\": %lld, "
                        "\"f1_items\": %lld}\n",
                     (long long)t->step, r.loss, r.f1.precision, r.f1.recall, r.f1.f1, r.f1.threshold,
                     fused_json, (long long)r.items, (long long)r.f1_items);
      }
    }
    const int stop = stop_agreed();
    if (t->step % cfg->train.ckpt_every == 0 || (stop && t->step < steps)) {
      char name[64];
      snprintf(name, sizeof name, "ckpt-%lld.h5", (long long)t->step);
      if ((st = save(t, name, 1))) break;
    }
    t_mark += ot_now() - t_pause; /* validation and checkpoints are not throughput */
    if (stop && t->step < steps) {
      *stopped_by = stop & STOP_TERM ? SIGTERM : SIGUSR1;
      ot_log_info0("stopped by %s at step %lld after writing its checkpoint; rerun the same command "
                   "to resume", stop & STOP_TERM ? "SIGTERM" : "SIGUSR1", (long long)t->step);
      break;
    }
  }
  free(gbatch);
  if (st || *stopped_by) return st;
  int64_t done = t->step - t->start_step;
  const char *base = strrchr(t->resumed_from, '/');
  if (done == 0 && base && !strcmp(base, "/final.h5")) {
    ot_log_info0("training already complete: %s is at step %lld", t->resumed_from, (long long)t->step);
    stopped_after_end(t->step, stopped_by);
    return OT_OK;
  }
  if ((st = save(t, "final.h5", 1))) return st;
  double wall = ot_now() - t_run;
  char val[256] = "", fused[128] = ""; /* the judge has no F1: its recall is in the val lines */
  if (cfg->model.type == OT_MODEL_RAG)
    fused_weights(t, t->ret_weight, t->lex_weight, t->abs_weight, fused, sizeof fused);
  if (cfg->model.type != OT_MODEL_JUDGE && t->val_f1 >= 0)
    snprintf(val, sizeof val, "val F1 %.4f at threshold %.3f%s (best %.4f at step %lld: %s); ", t->val_f1,
             t->threshold, fused, t->best_f1, (long long)t->best_step, OT_CKPT_BEST);
  ot_log_info0("done: %lld steps (%lld this run) in %.1fs, %.1f samples/s while training; %s%s/final.h5",
               (long long)t->step, (long long)done, wall, busy > 0 ? (double)done * B / busy : 0.0, val,
               cfg->train.dir);
  stopped_after_end(t->step, stopped_by);
  return OT_OK;
}
