/* ot-train: data-parallel training of the closed-set taggers (Bin, ASL).
 *
 * Every rank holds the model and computes gradients on a contiguous slice of
 * each global batch; the gradients are summed with MPI_Allreduce and every
 * rank applies the same clipped AdamW update. Checkpoints in train.dir let a
 * rerun of the same command continue exactly where the newest one left off.
 *
 * Signals: SIGUSR1 (Slurm's warning before the time limit) checkpoints at
 * the next step boundary and exits OT_EXIT_STOPPED (75) — the job is meant
 * to be requeued; SIGTERM/SIGINT do the same and exit 1. */
#include "train_stage.h"
#include "ot_common.h"
#include "ot_log.h"
#include "ot_mpi.h"
#include "trainer.h"

#include <cblas.h>
#include <signal.h>
#include <stdio.h>

int ot_train_stage_run(const ot_config *cfg, int *exit_code) {
  ot_trainer_catch_signals();
  openblas_set_num_threads(cfg->train.threads);
  ot_trainer t;
  int stopped_by = 0, st = ot_trainer_setup(&t, cfg);
  if (st == OT_OK) st = ot_trainer_run(&t, &stopped_by);
  ot_trainer_close(&t);
  /* stopped on a signal (checkpointed, or caught once the training had ended):
   * SIGTERM/SIGINT exit 1; SIGUSR1 OT_EXIT_STOPPED (requeue), so a caller running
   * several stages stops there instead of going on to its next one */
  if (st == OT_OK && stopped_by == SIGTERM) *exit_code = 1;
  else if (st == OT_OK && stopped_by == SIGUSR1) *exit_code = OT_EXIT_STOPPED;
  return st;
}

const ot_cli_info ot_train_stage_info = {
    "ot-train",
    "Train the model of model.type on the shards in data.dir/train: bin or asl (closed-set\n"
    "taggers), baseline, opg or rag (Open-Tag's generative rows; rag reads the candidates in\n"
    "retrieve.dir), judge (the image-tag dual encoder that scores Tag Gain). Validates on\n"
    "data.dir/val when it exists. Writes to train.dir: tokenizer.txt, tags.json,\n"
    "metrics.jsonl, ckpt-<step>.h5 every train.ckpt_every steps (and on SIGUSR1/SIGTERM), a\n"
    "`latest` pointer and final.h5. Rerunning the same command resumes from the newest checkpoint.\n"
    "SIGUSR1: checkpoint, exit 75 (not done: requeue, rerun to resume); SIGTERM/SIGINT:\n"
    "checkpoint, exit 1.",
    "data model train retrieve.dir",
    "train.init"};
