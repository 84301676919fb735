/* ot-run: the steps of a job file (ot_job.h) in one MPI job.
 *
 * Every rank reads the job file and builds every step's config before the
 * first step runs, so a typo in the last step stops the job at once. Rank 0
 * then decides from the completion markers which steps are done and
 * broadcasts it; every rank walks the steps in order, calling each stage's
 * run function (the same code as the stage's program) on all ranks, or, for
 * a shell step, rank 0 runs the command while the others wait. After a step
 * succeeded rank 0 writes its marker; the first failure stops the job with
 * the stage's exit code, and a rerun continues with the first step not done. */
#include "embed_stage.h"
#include "eval_stage.h"
#include "extract_stage.h"
#include "index_stage.h"
#include "ot_build_id.h"
#include "ot_cli.h"
#include "ot_common.h"
#include "ot_fs.h"
#include "ot_job.h"
#include "ot_ledger.h"
#include "ot_log.h"
#include "ot_model.h"
#include "ot_mpi.h"
#include "retrieve_stage.h"
#include "train_stage.h"
#include "tag_stage.h"

#include <cblas.h>
#include <errno.h>
#include <mpi.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

typedef struct {
  const char *name;
  const ot_cli_info *info;
  int (*run)(const ot_config *cfg, int *exit_code);
} stage_entry;

static const stage_entry STAGES[] = {
    {"extract", &ot_extract_stage_info, ot_extract_stage_run},
    {"train", &ot_train_stage_info, ot_train_stage_run},
    {"embed", &ot_embed_stage_info, ot_embed_stage_run},
    {"index", &ot_index_stage_info, ot_index_stage_run},
    {"retrieve", &ot_retrieve_stage_info, ot_retrieve_stage_run},
    {"tag", &ot_tag_stage_info, ot_tag_stage_run},
    {"eval", &ot_eval_stage_info, ot_eval_stage_run},
};
enum { N_STAGES = sizeof STAGES / sizeof STAGES[0] };

static const stage_entry *find_stage(const char *name) {
  for (int i = 0; i < N_STAGES; i++)
    if (!strcmp(STAGES[i].name, name)) return &STAGES[i];
  return NULL;
}

static void print_help(void) {
  printf("usage: ot-run [--dry-run] [--set dotted.key=value ...] [--redo STEP,...] "
         "[--redo-other-builds] JOB.yaml\n\n"
         "Run the steps of a job file in order in one MPI job (mpirun -np N ot-run JOB.yaml),\n"
         "skipping the steps already done with the same config: rerun the same command after a\n"
         "crash and the job continues with the first unfinished step (which itself resumes from\n"
         "its ledger or checkpoint).\n\n"
         "Job file (YAML; relative paths are relative to the working directory):\n"
         "  config: configs/emoji-en.yaml   # default config of every step\n"
         "  set: [train.threads=1]          # overrides for every step (optional)\n"
         "  state: runs/emoji-en            # completion markers (default: runs/<job file name>)\n"
         "  steps:\n"
         "    - {name: extract, stage: extract}\n"
         "    - {name: rag, stage: train, set: [model.type=rag, train.dir=runs/emoji-en/rag]}\n"
         "    - {name: data, run: \"bash jobs/emoji/emoji-data.sh data/emoji\"}\n"
         "    - {name: score, stage: eval, after: [rag]}\n"
         "  A step has a unique `name` and either `stage` (below) with an optional own `config`\n"
         "  and `set` list, or `run`: a shell command run by rank 0 alone (/bin/sh -c) while the\n"
         "  other ranks wait (without the MPI launcher's variables: an MPI program it starts is a\n"
         "  job of its own); `after` names its inputs (below). A step's config: its config\n"
         "  file, then the job's set, the step's set, and this command line's --set, in that order.\n\n"
         "stages (each is the program ot-<stage>; see its --help for the config keys):\n");
  for (int i = 0; i < N_STAGES; i++)
    printf("  %-9s%s%s\n", STAGES[i].name, STAGES[i].info ? "config sections: " : "",
           STAGES[i].info ? STAGES[i].info->sections : "(not in this build: a step with it fails)");
  printf("\nInputs: a step reads the outputs of the steps in its `after:` list (earlier steps;\n"
         "default: the step before it; `after: []` for none).\n\n"
         "Completion: after a step succeeds, rank 0 writes <state>/<name>.done atomically: a key\n"
         "(a hash of the step's config keys that are not at their defaults in the sections its\n"
         "stage reads, listed above, or of a shell step's command, mixed with the run ids of its\n"
         "`after` steps' markers and with the contents of the files its stage may read from\n"
         "another job: eval's eval.pred, eval.judge, eval.taggain_embeddings, train.init,\n"
         "embed.ckpt, tag.ckpt, tag.manifest, extract's data.train/val/test; an empty one adds\n"
         "nothing), a fresh run id,\n"
         "the build (source commit) that did it, then the effective config as --print-config\n"
         "shows it. A step whose marker holds the same key\n"
         "is skipped, also when another build did it (code is not in the key: a note names that\n"
         "build; --redo-other-builds redoes such steps).\n"
         "A step runs again when its config changed, when one of its `after` steps runs in this\n"
         "job, or when one ran again since it was done; its stage then starts over\n"
         "(ledgers discarded, training from step 0, indexes rebuilt) instead of resuming its old\n"
         "output. A step that starts writes <state>/<name>.started (its key; removed once .done\n"
         "is written): a step that stopped part-way resumes when its key is still the same (what\n"
         "another config left in its outputs, from a start-over cut short, is dropped), and\n"
         "starts over when its config or an input changed since (or one of its `after` steps runs).\n\n"
         "options:\n"
         "  --dry-run          print which steps would run or be skipped, run nothing\n"
         "  --set KEY=VALUE    override one config key in every stage step; repeatable\n"
         "  --redo STEP,...    run these steps again, starting over (and so every step that\n"
         "                     reads them): done ones, and stopped ones instead of resuming;\n"
         "                     repeatable\n"
         "  --redo-other-builds  the same for every step whose marker (or .started) names another\n"
         "                     build: after a change of code that alters outputs\n"
         "  -h, --help         this help\n\n"
         "Exit codes: 0 all steps done, 2 bad job file/config/usage (or a stage's 2), 1 a step\n"
         "failed or stopped on a signal, 75 a training stopped at a checkpoint on SIGUSR1 (as\n"
         "ot-train: requeue, rerun to continue) or a shell step that exited 75.\n");
}

/* 1 if `var` ("NAME=value") is what the MPI launcher gave this rank: its
 * place in this job (PMIx server, rank, job id). An MPI program a shell step
 * starts (ot-synth-emb, an ot-<stage>, mpirun) would read them and try to
 * join this job as its rank 0, which is taken: MPI_Init aborts. Kept: the
 * user's own settings (OMPI_MCA_btl=..., OMPI_ALLOW_RUN_AS_ROOT). */
static int launcher_var(const char *var) {
  static const char *const drop[] = {"PMIX_", "PMI_", "PRTE_", "OMPI_COMM_WORLD_", "OMPI_MCA_ess",
                                     "OMPI_MCA_orte_", "OMPI_MCA_pmix", "OMPI_MCA_initial_wdir=",
                                     "OMPI_UNIVERSE_SIZE=", "OMPI_FILE_LOCATION=", "OMPI_FIRST_RANKS=",
                                     "OMPI_NUM_APP_CTX=", "OMPI_APP_CTX_NUM_PROCS=", "OMPI_COMMAND=",
                                     "OMPI_ARGV="};
  for (size_t i = 0; i < sizeof drop / sizeof drop[0]; i++)
    if (!strncmp(var, drop[i], strlen(drop[i]))) return 1;
  return 0;
}

/* Shell step: rank 0 runs `cmd`, in the environment ot-run was started
 * with less the launcher's variables (launcher_var); the others wait
 * without spinning a core (a plain MPI_Barrier busy-polls in Open MPI).
 * Returns the exit code. */
static int run_shell(const char *cmd, char *msg, size_t cap) {
  int code = 0;
  if (ot_mpi_rank() == 0) {
    fflush(stdout);
    fflush(stderr);
    char *argv[] = {"sh", "-c", (char *)cmd, NULL};
    size_t n = 0;
    while (environ[n]) n++;
    char **env = ot_xcalloc(n + 1, sizeof *env);
    for (size_t i = 0, k = 0; i < n; i++)
      if (!launcher_var(environ[i])) env[k++] = environ[i];
    pid_t pid;
    int e = posix_spawn(&pid, "/bin/sh", NULL, NULL, argv, env), ws = 0;
    free(env);
    if (e) {
      snprintf(msg, cap, "cannot start /bin/sh: %s", strerror(e));
      code = 1;
    } else {
      while (waitpid(pid, &ws, 0) < 0 && errno == EINTR) {}
      if (WIFEXITED(ws) && WEXITSTATUS(ws) == 0) code = 0;
      else if (WIFEXITED(ws) && WEXITSTATUS(ws) == OT_EXIT_STOPPED) {
        /* a training (or a script over one) stopped at a checkpoint: passed
         * on, so the Slurm script requeues the job instead of failing it */
        snprintf(msg, cap, "command stopped with status %d (rerun the job to continue): %s", OT_EXIT_STOPPED,
                 cmd);
        code = OT_EXIT_STOPPED;
      } else if (WIFEXITED(ws)) {
        snprintf(msg, cap, "command exited with status %d: %s", WEXITSTATUS(ws), cmd);
        code = WEXITSTATUS(ws) == 2 ? 2 : 1;
      } else {
        snprintf(msg, cap, "command killed by signal %d: %s", WIFSIGNALED(ws) ? WTERMSIG(ws) : 0, cmd);
        code = 1;
      }
    }
  }
  MPI_Request req;
  MPI_Ibcast(&code, 1, MPI_INT, 0, MPI_COMM_WORLD, &req);
  for (int done = 0; MPI_Test(&req, &done, MPI_STATUS_IGNORE), !done;)
    nanosleep(&(struct timespec){0, 20 * 1000 * 1000}, NULL);
  return code;
}

static const int SIGNALS[] = {SIGINT, SIGTERM, SIGUSR1};
enum { N_SIGNALS = 3 };

/* A stage step on every rank. Returns the exit code (agreed by all ranks);
 * on failure msg holds what rank 0 prints. */
static int run_stage(const stage_entry *e, const ot_config *cfg, char *msg, size_t cap) {
  /* A stage may route signals for itself (ot-train checkpoints on them);
   * the steps after it get the dispositions ot-run started with. */
  struct sigaction saved[N_SIGNALS];
  for (int i = 0; i < N_SIGNALS; i++) sigaction(SIGNALS[i], NULL, &saved[i]);
  ot_log_init(e->info->prog, ot_mpi_rank(), ot_mpi_size());
  int exit_code = -1, st = e->run(cfg, &exit_code);
  int local_failed = st != OT_OK;
  if (local_failed) snprintf(msg, cap, "%s", ot_errmsg());
  ot_log_init("ot-run", ot_mpi_rank(), ot_mpi_size());
  for (int i = 0; i < N_SIGNALS; i++) sigaction(SIGNALS[i], &saved[i], NULL);
  st = ot_mpi_agree(st);
  MPI_Allreduce(MPI_IN_PLACE, &exit_code, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  if (st && !local_failed) snprintf(msg, cap, "failed on another rank (see its log above)");
  if (!st && exit_code >= 0)
    snprintf(msg, cap, "stopped early on a signal (exit %d as the stage's program); rerun the job to continue",
             exit_code);
  if (exit_code >= 0) return exit_code ? exit_code : -1; /* -1: exit 0, but not done */
  return ot_exit_code(st);
}

typedef struct {
  ot_job job;
  ot_config *cfgs;    /* per step (zeroed for shell steps) */
  uint64_t *hashes;
  char **texts;       /* marker bodies */
  int *state;         /* per step: a step_state */
  int *start_over;    /* per step, for ot_ledger_set_start_over: OT_START_OVER_ALL when it
                       * runs again with another key than its outputs were made with, so its
                       * stage starts over instead of resuming them; OT_START_OVER_IF_OTHER
                       * when it resumes a run started with its key */
  int *had_outputs;   /* per step: a .done or .started file says it left outputs */
  int *had_done;      /* per step: its .done file exists (for messages) */
} plan;

enum step_state {
  STEP_RUN,       /* never done */
  STEP_DONE,      /* marker matches its key: skip */
  STEP_STALE,     /* done, but its config or an input step's run changed since */
  STEP_STALE_PART, /* started and stopped, with another config or input step's run than now */
  STEP_INPUT_RUNS, /* one of its `after` steps runs in this job */
  STEP_REDO       /* named by --redo (done, or stopped part-way), or done by another build
                   * (--redo-other-builds) */
};

/* What --redo and --redo-other-builds ask for. */
typedef struct {
  const char **names; /* comma-separated step names, one --redo each */
  int n_names;
  int other_builds;
} redo_opts;

/* asked[i] = 1 for each step named in the --redo lists; OT_EINVAL naming a
 * name that is not a step of the job. */
static int redo_steps(const redo_opts *r, const ot_job *job, int *asked) {
  for (int k = 0; k < r->n_names; k++)
    for (const char *a = r->names[k]; *a;) {
      size_t len = strcspn(a, ",");
      int i = 0;
      while (i < job->n_steps && (strlen(job->steps[i].name) != len || strncmp(job->steps[i].name, a, len)))
        i++;
      if (i == job->n_steps)
        return ot_fail(OT_EINVAL, "--redo: %s has no step '%.*s'", job->path, (int)len, a);
      asked[i] = 1;
      a += len + (a[len] == ',');
    }
  return OT_OK;
}

/* This build, as step markers name it: "<commit>+<-march>+openblas-<core>"
 * (d696228+cascadelake+openblas-SkylakeX). The instruction set is part of
 * it because code built for another one, or OpenBLAS kernels chosen for
 * another CPU (OPENBLAS_CORETYPE), round sums differently: a model trained
 * by it comes out as with another seed. */
static const char *this_build(void) {
  static char id[256];
  if (!id[0]) {
    snprintf(id, sizeof id, "%s+%s+openblas-%s", OT_BUILD_ID, OT_BUILD_ARCH, openblas_get_corename());
    for (char *c = id; *c; c++)
      if (*c == ' ' || *c == '\t' || *c == '\n') *c = '_'; /* one word on the marker's line */
  }
  return id;
}

/* 1 and the build into `was` when the marker names a build that is not
 * this one (keys hash configs, not code: such a step is skipped unless
 * --redo-other-builds). */
static int other_build(const char *marker, char *was, size_t cap) {
  return ot_job_marker_build(marker, was, cap) && strcmp(was, this_build());
}

/* The key of step i from the markers its `after` steps have now and the
 * contents of its stage's input files now (rank 0): computed when the step
 * is checked and again as it starts, once its `after` steps ran (the key of
 * its .started and then of its .done marker). */
static uint64_t step_key(const plan *p, int i) {
  const ot_job_step *s = &p->job.steps[i];
  const ot_cli_info *info = s->stage ? find_stage(s->stage)->info : NULL;
  const uint64_t h = info ? ot_job_inputs_hash(p->hashes[i], &p->cfgs[i], info->inputs) : p->hashes[i];
  char (*paths)[4400] = ot_xcalloc((size_t)s->n_after + 1, sizeof *paths);
  const char **deps = ot_xcalloc((size_t)s->n_after + 1, sizeof *deps);
  for (int j = 0; j < s->n_after; j++) {
    ot_job_marker_path(&p->job, &p->job.steps[s->after[j]], paths[j], sizeof paths[j]);
    deps[j] = paths[j];
  }
  uint64_t key = ot_job_step_key(h, deps, s->n_after);
  free(deps);
  free(paths);
  return key;
}

/* The first `after` step of step i that runs in this job, or -1. */
static int input_that_runs(const plan *p, int i) {
  const ot_job_step *s = &p->job.steps[i];
  for (int j = 0; j < s->n_after; j++)
    if (p->state[s->after[j]] != STEP_DONE) return s->after[j];
  return -1;
}

/* Step s's config did not load (status st, its message in ot_errmsg): the
 * same message, led by the job file's line that caused it rather than the
 * step's. Loads its config file alone, then with one more set item at a
 * time (this error path only): the first load that fails ends with the
 * culprit -- the `config:` line, a `set:` item of the job or the step, or
 * the command line's --set. */
static int config_error(const ot_job *job, const ot_job_step *s, int st) {
  char msg[4096];
  snprintf(msg, sizeof msg, "%s", ot_errmsg());
  int k = 0;
  for (; k <= s->n_sets; k++) {
    ot_config c;
    int e = ot_cli_load_config("ot-run", s->config, s->sets, k, &c);
    ot_config_free(&c);
    if (e) break;
  }
  if (k == 0 || k > s->n_sets)
    return ot_fail(st, "%s:%d: step '%s' (%s): config: %s", job->path, k ? s->line : s->config_line,
                   s->name, s->stage, msg);
  const char *item = s->sets[k - 1];
  char lead[4200];
  snprintf(lead, sizeof lead, "--set %s: ", item); /* how ot_config_load names the item */
  const char *why = strncmp(msg, lead, strlen(lead)) ? msg : msg + strlen(lead);
  if (s->set_lines[k - 1])
    return ot_fail(st, "%s:%d: step '%s' (%s): set item '%s': %s", job->path, s->set_lines[k - 1], s->name,
                   s->stage, item, why);
  return ot_fail(st, "--set %s (command line), in step '%s' (%s) of %s: %s", item, s->name, s->stage,
                 job->path, why);
}

/* Every rank: load the job and every step's config. */
static int make_plan(plan *p, const char *path, const char *const *sets, int n_sets,
                     const redo_opts *redo) {
  const char *names[N_STAGES + 1];
  for (int i = 0; i < N_STAGES; i++) names[i] = STAGES[i].name;
  names[N_STAGES] = NULL;
  int st = ot_job_load(&p->job, path, names, sets, n_sets);
  if (st) return st;
  int n = p->job.n_steps, any_stage = 0;
  for (int i = 0; i < n; i++) any_stage |= p->job.steps[i].stage != NULL;
  if (!any_stage && n_sets) { /* no step loads a config to check them: a misspelt key must not pass */
    ot_config c;
    st = ot_config_load(&c, NULL, sets, n_sets);
    ot_config_free(&c);
    if (st) return ot_fail_ctx(st, "%s", path);
  }
  int *asked = ot_xcalloc((size_t)n, sizeof *asked);
  if ((st = redo_steps(redo, &p->job, asked))) {
    free(asked);
    return st;
  }
  p->cfgs = ot_xcalloc((size_t)n, sizeof *p->cfgs);
  p->hashes = ot_xcalloc((size_t)n, sizeof *p->hashes);
  p->texts = ot_xcalloc((size_t)n, sizeof *p->texts);
  p->state = ot_xcalloc((size_t)n, sizeof *p->state);
  p->start_over = ot_xcalloc((size_t)n, sizeof *p->start_over);
  p->had_outputs = ot_xcalloc((size_t)n, sizeof *p->had_outputs);
  p->had_done = ot_xcalloc((size_t)n, sizeof *p->had_done);
  for (int i = 0; i < n && st == OT_OK; i++) {
    const ot_job_step *s = &p->job.steps[i];
    if (s->stage) {
      st = ot_cli_load_config("ot-run", s->config, s->sets, s->n_sets, &p->cfgs[i]);
      if (st) {
        st = config_error(&p->job, s, st);
        break;
      }
      /* settings that contradict each other: before the first step, not
       * when this one comes after hours of others */
      if (!strcmp(s->stage, "train") && (st = ot_model_check_config(&p->cfgs[i]))) {
        st = ot_fail_ctx(st, "%s:%d: step '%s' (%s)", p->job.path, s->line, s->name, s->stage);
        break;
      }
    }
    const ot_cli_info *info = s->stage ? find_stage(s->stage)->info : NULL;
    p->hashes[i] = ot_job_step_hash(s, s->stage ? &p->cfgs[i] : NULL, info ? info->sections : NULL,
                                    &p->texts[i]);
  }
  /* rank 0 decides what is done; every rank follows */
  if (st == OT_OK && ot_mpi_rank() == 0) {
    for (int i = 0; i < n; i++) { /* in order: a step's inputs are decided before it */
      char marker[4400], started[4400];
      int stale = 0, stale_part = 0, resumed = 0;
      ot_job_marker_path(&p->job, &p->job.steps[i], marker, sizeof marker);
      ot_job_started_path(&p->job, &p->job.steps[i], started, sizeof started);
      p->had_done[i] = ot_fs_exists(marker);
      p->had_outputs[i] = p->had_done[i] || ot_fs_exists(started);
      /* hashed once: it reads the contents of the step's input files */
      const uint64_t key = input_that_runs(p, i) >= 0 ? 0 : step_key(p, i);
      if (input_that_runs(p, i) >= 0) p->state[i] = STEP_INPUT_RUNS;
      else if (ot_job_marker_matches(marker, &p->job.steps[i], key, &stale)) {
        char was[256];
        const int redo_it = asked[i] || (redo->other_builds && other_build(marker, was, sizeof was));
        p->state[i] = redo_it ? STEP_REDO : STEP_DONE;
      }
      else if (stale) p->state[i] = STEP_STALE;
      else if (ot_job_marker_matches(started, &p->job.steps[i], key, &stale_part))
        p->state[i] = STEP_RUN, resumed = 1; /* stopped part-way with the same key: resume that */
      else p->state[i] = stale_part ? STEP_STALE_PART : STEP_RUN;
      /* --redo of a step stopped part-way (or never run), or one another build
       * started and --redo-other-builds: it starts over too, not resumes the
       * outputs the code being redone left */
      char was[256];
      if (p->state[i] == STEP_RUN &&
          (asked[i] || (redo->other_builds && other_build(started, was, sizeof was))))
        p->state[i] = STEP_REDO;
      /* Resume only outputs made with the key it has now: never done, or a
       * run of it with this key stopped. A step after one that runs starts
       * over even without a marker: outputs it left part-way (stopped
       * before, then its input step changed) were made from the old input,
       * and resuming would keep them beside the new ones. A step resumed
       * with its key may hold another key's outputs still (a kill or an
       * early error cut its start-over before the stage cleared them): the
       * stage drops those instead of resuming them. */
      p->start_over[i] = p->state[i] == STEP_DONE ? 0
                         : p->state[i] != STEP_RUN ? OT_START_OVER_ALL
                         : resumed ? OT_START_OVER_IF_OTHER : 0;
    }
  }
  if ((st = ot_mpi_agree(st)) == OT_OK) {
    MPI_Bcast(p->state, n, MPI_INT, 0, MPI_COMM_WORLD);
    MPI_Bcast(p->start_over, n, MPI_INT, 0, MPI_COMM_WORLD);
    MPI_Bcast(p->had_outputs, n, MPI_INT, 0, MPI_COMM_WORLD);
    MPI_Bcast(p->had_done, n, MPI_INT, 0, MPI_COMM_WORLD);
  }
  free(asked);
  return st;
}

static void free_plan(plan *p) {
  for (int i = 0; i < p->job.n_steps; i++) {
    if (p->cfgs) ot_config_free(&p->cfgs[i]);
    if (p->texts) free(p->texts[i]);
  }
  free(p->cfgs);
  free(p->hashes);
  free(p->texts);
  free(p->state);
  free(p->start_over);
  free(p->had_outputs);
  free(p->had_done);
  ot_job_free(&p->job);
}

/* For a step skipped as done: a note when another build did it, and how to
 * redo it ("" when the builds agree or the marker names none). */
static void other_build_note(const char *marker, char *buf, size_t cap) {
  char was[256];
  buf[0] = '\0';
  if (other_build(marker, was, sizeof was))
    snprintf(buf, cap, "; done by build %s, this is %s: --redo-other-builds (or --redo with its name) "
             "redoes it with this build", was, this_build());
}

/* ", starting over" when step i's stage discards outputs it left, for the
 * plan and the step's first line ("" otherwise). */
static const char *starting_over_note(const plan *p, int i) {
  const int stage = p->job.steps[i].stage != NULL;
  return p->start_over[i] == OT_START_OVER_ALL && p->had_outputs[i] && stage ? ", starting over" : "";
}

/* Why step i runs, for the plan and the step's first line ("" if never done). */
static void why(const plan *p, int i, char *buf, size_t cap) {
  buf[0] = '\0';
  if (p->state[i] == STEP_STALE) snprintf(buf, cap, "config or input changed since it was done");
  else if (p->state[i] == STEP_STALE_PART)
    snprintf(buf, cap, "config or input changed since it was started and stopped");
  else if (p->state[i] == STEP_REDO)
    snprintf(buf, cap, "%s, redone as asked", p->had_done[i] ? "done" : "not done");
  else if (p->state[i] == STEP_INPUT_RUNS)
    snprintf(buf, cap, "after '%s', which runs", p->job.steps[input_that_runs(p, i)].name);
}

static void print_plan(const plan *p) {
  int n = p->job.n_steps, todo = 0;
  for (int i = 0; i < n; i++) todo += p->state[i] != STEP_DONE;
  printf("job %s: %d step(s), %d to run; markers in %s/\n", p->job.path, n, todo, p->job.state_dir);
  for (int i = 0; i < n; i++) {
    const ot_job_step *s = &p->job.steps[i];
    const stage_entry *e = s->stage ? find_stage(s->stage) : NULL;
    char reason[512], marker[4400], note[4800] = "";
    why(p, i, reason, sizeof reason);
    ot_job_marker_path(&p->job, s, marker, sizeof marker);
    if (p->state[i] == STEP_DONE) other_build_note(marker, note, sizeof note);
    printf("[step %d/%d] %s (%s): %s%s%s%s%s%s%s\n", i + 1, n, s->name, s->stage ? s->stage : "shell",
           p->state[i] == STEP_DONE ? "skip (done with the same config and inputs)" : "run",
           note, reason[0] ? " (" : "", reason, reason[0] ? ")" : "",
           starting_over_note(p, i),
           e && !e->run ? " -- fails: this build has no such stage" : "");
  }
}

/* Every rank: the steps in order. Returns the process exit code. */
static int run_plan(plan *p) {
  int n = p->job.n_steps, rank = ot_mpi_rank();
  for (int i = 0; i < n; i++) {
    const ot_job_step *s = &p->job.steps[i];
    const char *kind = s->stage ? s->stage : "shell";
    char marker[4400], msg[4096] = "";
    int st = OT_OK;
    ot_job_marker_path(&p->job, s, marker, sizeof marker);
    if (p->state[i] == STEP_DONE) {
      char note[4800];
      if (rank == 0) other_build_note(marker, note, sizeof note);
      if (rank == 0) printf("[step %d/%d] %s (%s) skipped: done with the same config and inputs (%s)%s\n",
                            i + 1, n, s->name, kind, marker, note);
      continue;
    }
    char started[4400];
    ot_job_started_path(&p->job, s, started, sizeof started);
    uint64_t key = 0; /* rank 0: the key its outputs are made with, for .started and .done */
    if (rank == 0) {
      char reason[512];
      why(p, i, reason, sizeof reason);
      printf("[step %d/%d] %s (%s) ...%s%s%s%s\n", i + 1, n, s->name, kind, reason[0] ? " (" : "", reason,
             reason[0] ? ")" : "", starting_over_note(p, i));
      fflush(stdout);
      /* The key its outputs are made with from now, then no .done: a crash
       * leaves no marker that says done, and the rerun resumes these outputs
       * only while the key is the same (else starts over). Written first, so
       * a crash between the two loses at worst a redo, never the key. */
      key = step_key(p, i);
      st = ot_job_started_write(started, s, key, this_build());
      if (st) snprintf(msg, sizeof msg, "%s", ot_errmsg());
      remove(marker);
    }
    if ((st = ot_mpi_agree(st))) {
      if (rank == 0) fprintf(stderr, "ot-run: step '%s' (%s): cannot write %s: %s\n", s->name, kind, started, msg);
      return ot_exit_code(st);
    }
    double t0 = ot_now();
    ot_ledger_set_start_over(p->start_over[i]);
    int code = s->stage ? run_stage(find_stage(s->stage), &p->cfgs[i], msg, sizeof msg)
                        : run_shell(s->command, msg, sizeof msg);
    ot_ledger_set_start_over(0);
    if (code) {
      const int failed = code > 0 && code != OT_EXIT_STOPPED;
      if (rank == 0) {
        fprintf(stderr, "ot-run: step '%s' (%s) %s: %s\n", s->name, kind, failed ? "failed" : "did not finish",
                msg);
        printf("[step %d/%d] %s (%s) %s; stopping the job (a rerun continues here)\n", i + 1, n, s->name,
               kind, failed ? "failed" : "stopped");
      }
      return code > 0 ? code : 0;
    }
    st = rank == 0 ? ot_job_marker_write(marker, s, key, this_build(), p->texts[i]) : OT_OK;
    if (st) snprintf(msg, sizeof msg, "%s", ot_errmsg());
    if (st == OT_OK && rank == 0) remove(started); /* after .done: a crash between leaves both, .done wins */
    if ((st = ot_mpi_agree(st))) {
      if (rank == 0) fprintf(stderr, "ot-run: step '%s' (%s): cannot write its marker: %s\n", s->name, kind, msg);
      return ot_exit_code(st);
    }
    if (rank == 0) {
      printf("[step %d/%d] %s (%s) done in %.1fs\n", i + 1, n, s->name, kind, ot_now() - t0);
      fflush(stdout);
    }
  }
  if (rank == 0) printf("job %s: all %d step(s) done\n", p->job.path, n);
  return 0;
}

int main(int argc, char **argv) {
  if (ot_mpi_init(&argc, &argv)) {
    fprintf(stderr, "ot-run: %s\n", ot_errmsg());
    return 1;
  }
  ot_log_init("ot-run", ot_mpi_rank(), ot_mpi_size());
  const char *job_path = NULL;
  const char **sets = ot_xcalloc((size_t)argc, sizeof *sets);
  redo_opts redo = {ot_xcalloc((size_t)argc, sizeof *redo.names), 0, 0};
  int n_sets = 0, dry = 0, help = 0, st = OT_OK;
  for (int i = 1; i < argc && st == OT_OK && !help; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) help = 1;
    else if (!strcmp(a, "--dry-run")) dry = 1;
    else if (!strcmp(a, "--set")) {
      if (i + 1 >= argc) st = ot_fail(OT_EINVAL, "option --set needs an argument");
      else sets[n_sets++] = argv[++i];
    } else if (!strncmp(a, "--set=", 6)) sets[n_sets++] = a + 6;
    else if (!strcmp(a, "--redo")) {
      if (i + 1 >= argc) st = ot_fail(OT_EINVAL, "option --redo needs step names");
      else redo.names[redo.n_names++] = argv[++i];
    } else if (!strncmp(a, "--redo=", 7)) redo.names[redo.n_names++] = a + 7;
    else if (!strcmp(a, "--redo-other-builds")) redo.other_builds = 1;
    else if (a[0] == '-') st = ot_fail(OT_EINVAL, "unknown argument '%s' (see --help)", a);
    else if (job_path) st = ot_fail(OT_EINVAL, "one job file, got '%s' and '%s'", job_path, a);
    else job_path = a;
  }
  if (st == OT_OK && !help && !job_path) st = ot_fail(OT_EINVAL, "JOB.yaml is required (see --help)");
  int code = 0;
  if (help) {
    if (ot_mpi_rank() == 0) print_help();
  } else if (st) {
    code = ot_exit_code(st);
  } else {
    plan p;
    memset(&p, 0, sizeof p);
    st = make_plan(&p, job_path, sets, n_sets, &redo);
    if (st) code = ot_exit_code(st);
    else if (dry) { if (ot_mpi_rank() == 0) print_plan(&p); }
    else code = run_plan(&p);
    free_plan(&p);
  }
  if (st && ot_mpi_rank() == 0) fprintf(stderr, "ot-run: error: %s\n", ot_errmsg());
  fflush(stdout);
  free(sets);
  free(redo.names);
  ot_mpi_finalize();
  return code;
}
