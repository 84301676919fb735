/* Job files: a named sequence of steps, each a stage of the pipeline with its
 * config, or a shell command, run in order by ot-run in one MPI job.
 *
 *   config: configs/emoji-en.yaml   # default config of every step
 *   set: [train.threads=1]          # overrides applied to every step (optional)
 *   state: runs/emoji-en            # completion markers (default runs/<job name>)
 *   steps:
 *     - {name: extract, stage: extract}
 *     - {name: rag, stage: train, set: [model.type=rag, train.dir=runs/emoji-en/rag]}
 *     - {name: data, run: "bash jobs/emoji/emoji-data.sh data/emoji"}
 *
 * A step's config is its `config:` (else the job's) with the job's `set`,
 * the step's `set` and the command line's --set applied in that order.
 * Relative paths are relative to the working directory, as everywhere.
 *
 * A step is complete when <state>/<name>.done exists and starts with the hash
 * of the step's effective config (ot_config_dump) or command: the marker is
 * written atomically after the step succeeded, so a rerun skips what is done
 * and redoes a step whose config changed (only that step: later steps that
 * read its output are not rerun unless their own config changed). The
 * stages themselves resume inside a step from their ledgers/checkpoints.
 *
 * This module reads job files and knows markers; no MPI. */
#ifndef OT_JOB_H
#define OT_JOB_H

#include "ot_config.h"

#include <stdint.h>

typedef struct {
  char *name;     /* unique in the job; the marker file's name */
  char *stage;    /* "extract", "train", ... (one of the names given to ot_job_load); NULL for a shell step */
  char *command;  /* shell step: the `run:` command line (/bin/sh -c); NULL for a stage step */
  char *config;   /* the step's config file (its own `config:` or the job's); NULL for a shell step */
  const char **sets; /* job set, step set, extra sets (pointers into the job) */
  int n_sets;
  int line;       /* of the step in the job file (1-based), for messages */
} ot_job_step;

typedef struct {
  char *path;       /* the job file */
  char *state_dir;  /* completion markers */
  ot_job_step *steps;
  int n_steps;
  char **strings_;  /* internal: every string the steps point to */
  int n_strings_, cap_strings_;
} ot_job;

/* Read and check a job file: YAML shape, unknown keys, `name` present, unique
 * and usable as a file name, exactly one of `stage` (one of the NULL-terminated
 * `stage_names`) and `run`, `set` items of the form dotted.key=value, a
 * config for every stage step. `extra_sets` (the command line's --set) are
 * appended to every stage step's sets. Errors are OT_EINVAL naming
 * FILE:LINE and the field. *job is owned by the caller: ot_job_free (also on
 * error). */
int ot_job_load(ot_job *job, const char *path, const char *const *stage_names,
                const char *const *extra_sets, int n_extra_sets);
void ot_job_free(ot_job *job);

/* The step's identity for its marker: FNV-1a 64 of the stage name and the
 * effective config's YAML (stage step; cfg loaded from the step) or of the
 * command (shell step; cfg NULL). *text (malloc'd, caller frees) is what the
 * marker holds after its first line: the config YAML or the command. */
uint64_t ot_job_step_hash(const ot_job_step *s, const ot_config *cfg, char **text);

/* <state_dir>/<name>.done into buf. */
void ot_job_marker_path(const ot_job *job, const ot_job_step *s, char *buf, size_t cap);
/* 1 if the step's marker exists and records `hash`; 0 if it is absent or
 * records another hash (*stale = 1 then: the step's config changed). */
int ot_job_marker_matches(const char *marker, const ot_job_step *s, uint64_t hash, int *stale);
/* Write the marker atomically (creating the state folder): the hash line,
 * then `text`. */
int ot_job_marker_write(const char *marker, const ot_job_step *s, uint64_t hash, const char *text);

#endif
