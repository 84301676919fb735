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
 *     - {name: score, stage: eval, after: [rag]}
 *
 * A step's config is its `config:` (else the job's) with the job's `set`,
 * the step's `set` and the command line's --set applied in that order.
 * Relative paths are relative to the working directory, as everywhere.
 *
 * A step reads the outputs of the steps named in its `after:` (earlier
 * steps; default: the step before it, so a job is a chain; `after: []`
 * for none). A step is complete when <state>/<name>.done exists and starts
 * with its key: the hash of the step's config (its keys not at their
 * defaults) or command, mixed with the run ids of its `after` steps' markers (each
 * marker gets a fresh run id when written). The marker is written
 * atomically after the step succeeded, so a rerun skips what is done and
 * redoes a step whose config changed, or whose input step ran again since
 * (ot-run runs a step anyway when one of its `after` steps runs). A step
 * that starts writes <state>/<name>.started with its key (removed after its
 * marker): one stopped part-way resumes inside the stage from its
 * ledgers/checkpoints while that key is still its key; one whose key changed
 * since it was done or started, or whose `after` step runs, starts over
 * (ot_ledger_set_start_over).
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
  int *set_lines; /* per sets[k]: its line in the job file; 0 for an extra (command line) set */
  int n_sets;
  int config_line; /* of its `config:` in the job file, or of the job's */
  int *after;     /* indices of the earlier steps whose outputs it reads */
  int n_after;
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
 * YAML of the config keys not at their defaults in the sections the stage
 * reads (stage step; cfg loaded from the step, `sections` its program's
 * ot_cli_info.sections: a new version's added keys, or a key only other
 * stages read, leave it unchanged) or of the command (shell step; cfg and
 * sections NULL). *text (malloc'd, caller frees) is what the
 * marker holds after its key lines: the whole effective config, or the
 * command. */
uint64_t ot_job_step_hash(const ot_job_step *s, const ot_config *cfg, const char *sections, char **text);

/* `h` mixed with the contents of the files that the config keys `inputs`
 * (ot_cli_info.inputs; NULL: none) name: FNV-1a 64 of each key and of its
 * file's bytes, or of "missing" when it cannot be read (the step then fails
 * when it runs, naming it); an empty value adds nothing. Reads each file
 * once, streaming. */
uint64_t ot_job_inputs_hash(uint64_t h, const ot_config *cfg, const char *inputs);

/* <state_dir>/<name>.done into buf. */
void ot_job_marker_path(const ot_job *job, const ot_job_step *s, char *buf, size_t cap);
/* <state_dir>/<name>.started into buf: written (ot_job_started_write) when
 * the step starts and removed once its .done is written, so a step that
 * stopped part-way records the key its partial outputs were made with. */
void ot_job_started_path(const ot_job *job, const ot_job_step *s, char *buf, size_t cap);
/* Write the .started file atomically (creating the state folder): the same
 * key line as a marker, a "# started" line, and the build line, so
 * ot_job_marker_matches and ot_job_marker_build read it too. */
int ot_job_started_write(const char *started, const ot_job_step *s, uint64_t key, const char *build);
/* The run id a marker records (its "# run" line); 0 when it has none
 * (absent, or written before run ids existed). */
uint64_t ot_job_marker_run_id(const char *marker);
/* A step's key: `hash` mixed with the run ids of its `after` steps'
 * markers (their paths in dep_markers[n]). Ids 0 do not mix, so markers
 * written before run ids existed keep matching. */
uint64_t ot_job_step_key(uint64_t hash, const char *const *dep_markers, int n);
/* 1 if the step's marker exists and records `key`; 0 if it is absent or
 * records another key (*stale = 1 then: its config or an input changed). */
int ot_job_marker_matches(const char *marker, const ot_job_step *s, uint64_t key, int *stale);
/* Write the marker atomically (creating the state folder): the key line, a
 * fresh run id line, the line "# build <build>" (the source commit of the
 * program that did the step), then `text`. */
int ot_job_marker_write(const char *marker, const ot_job_step *s, uint64_t key, const char *build,
                        const char *text);
/* The build a marker records into buf (cap bytes); 0 and "" when it has
 * none (absent, or written before builds were recorded). */
int ot_job_marker_build(const char *marker, char *buf, size_t cap);

#endif
