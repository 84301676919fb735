/* The tag stage (a checkpoint over extracted shards, or straight over a raw
 * manifest of videos/images -> tags as JSON Lines) as a library: ot-tag's
 * main and the job runner ot-run (stages/run) both call it through ot_cli's
 * contract. */
#ifndef OT_TAG_STAGE_H
#define OT_TAG_STAGE_H

#include "ot_cli.h"

/* Program name, summary and config sections (--help of ot-tag). */
extern const ot_cli_info ot_tag_stage_info;
/* Collective over MPI_COMM_WORLD (MPI initialised by the caller). Runs the
 * stage on a loaded config; returns a status with ot_errmsg set on failure.
 * *exit_code is left alone (the stage has no early stop on signals: a
 * killed job is rerun and tags only what is missing). */
int ot_tag_stage_run(const ot_config *cfg, int *exit_code);

#endif
