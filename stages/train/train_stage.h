/* The train stage (data-parallel training of the taggers) as a library: ot-train's main and the
 * job runner ot-run (stages/run) both call it through ot_cli's contract. */
#ifndef OT_TRAIN_STAGE_H
#define OT_TRAIN_STAGE_H

#include "ot_cli.h"

/* Program name, summary and config sections (--help of ot-train). */
extern const ot_cli_info ot_train_stage_info;
/* Collective over MPI_COMM_WORLD (MPI initialised by the caller). Runs the
 * stage on a loaded config; returns a status with ot_errmsg set on failure.
 * *exit_code is left alone unless the run stopped early on a signal (then
 * the process exit code the stage wants; its outputs are incomplete). */
int ot_train_stage_run(const ot_config *cfg, int *exit_code);

#endif
