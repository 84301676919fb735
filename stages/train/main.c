/* ot-train: data-parallel training of the closed-set taggers (Bin, ASL).
 *
 * Every rank holds the model and computes gradients on a contiguous slice of
 * each global batch; the gradients are summed with MPI_Allreduce and every
 * rank applies the same clipped AdamW update. Checkpoints in train.dir let a
 * rerun of the same command continue exactly where the newest one left off.
 *
 * Signals: SIGUSR1 (Slurm's warning before the time limit) checkpoints at
 * the next step boundary and exits 0 — the job is meant to be requeued;
 * SIGTERM/SIGINT do the same and exit 1 (the run did not finish). */
#include "ot_cli.h"
#include "ot_common.h"
#include "ot_log.h"
#include "ot_mpi.h"
#include "trainer.h"

#include <cblas.h>
#include <signal.h>
#include <stdio.h>

int main(int argc, char **argv) {
  if (ot_mpi_init(&argc, &argv)) {
    fprintf(stderr, "ot-train: %s\n", ot_errmsg());
    return 1;
  }
  ot_trainer_catch_signals();
  ot_log_init("ot-train", ot_mpi_rank(), ot_mpi_size());
  static const ot_cli_info info = {
      "ot-train",
      "Train the closed-set tagger (model.type bin or asl) on the shards in data.dir/train,\n"
      "validating on data.dir/val when it exists. Writes to train.dir: tokenizer.txt, tags.json,\n"
      "metrics.jsonl, ckpt-<step>.h5 every train.ckpt_every steps (and on SIGUSR1/SIGTERM), a\n"
      "`latest` pointer and final.h5. Rerunning the same command resumes from the newest checkpoint.\n"
      "SIGUSR1: checkpoint, exit 0 (requeue); SIGTERM/SIGINT: checkpoint, exit 1.",
      "data model train"};
  ot_config cfg;
  int st = ot_cli_parse(&info, argc, argv, &cfg), stopped_by = 0;
  if (st == OT_CLI_EXIT_OK) {
    st = OT_OK;
  } else if (st == OT_CLI_RUN) {
    openblas_set_num_threads(cfg.train.threads);
    ot_trainer t;
    st = ot_trainer_setup(&t, &cfg);
    if (st == OT_OK) st = ot_trainer_run(&t, &stopped_by);
    ot_trainer_close(&t);
  }
  if (st && ot_mpi_rank() == 0) fprintf(stderr, "ot-train: error: %s\n", ot_errmsg());
  ot_config_free(&cfg);
  ot_mpi_finalize();
  if (st == OT_OK && stopped_by == SIGTERM) return 1;
  return ot_exit_code(st);
}
