/* The command line every program shares:
 *   PROG --config FILE.yaml [--set dotted.key=value ...] [--print-config] [--help]
 * Every setting is a config key, so there are no program-specific flags. */
#ifndef OT_CLI_H
#define OT_CLI_H

#include "ot_config.h"

typedef struct {
  const char *prog;      /* "ot-extract" */
  const char *summary;   /* one paragraph: what the program does */
  const char *sections;  /* every config section it reads, space separated, or single keys
                          * of a section it reads one key of: "data model train retrieve.dir"
                          * (--help lists their keys; ot-run hashes only them) */
  const char *inputs;    /* config keys naming files it reads that a step of another job
                          * may write (eval.pred of a seed-1 run in the seeds job), space
                          * separated, NULL: none. ot-run hashes their contents into the
                          * step's key, so a rewritten input reruns the step. */
} ot_cli_info;

enum { OT_CLI_RUN = 0, OT_CLI_EXIT_OK = 1 };

/* Parse argv and load the config into *cfg (owned by the caller; free with
 * ot_config_free). Returns OT_CLI_RUN to go on, OT_CLI_EXIT_OK after --help or
 * --print-config (printed on rank 0), or OT_EINVAL with a message on bad usage. */
int ot_cli_parse(const ot_cli_info *info, int argc, char **argv, ot_config *cfg);

/* The config part of ot_cli_parse without argv and without MPI, for a caller
 * that already initialised MPI and builds several configs (ot-run, one per
 * job step): `config` (NULL: OT_EINVAL "PROG: --config FILE.yaml is
 * required") then the `sets` ("dotted.key=value") in order. *cfg is owned by
 * the caller; free with ot_config_free, also on error. */
int ot_cli_load_config(const char *prog, const char *config, const char *const *sets, int n_sets,
                       ot_config *cfg);

/* The life of every program: MPI init (one rank without mpirun), logging
 * with the rank, ot_cli_parse, run(cfg), the error message on rank 0, MPI
 * finalize. Returns the process exit code: run's status through
 * ot_exit_code, unless run set *exit_code itself (e.g. 1 when a signal
 * stopped an otherwise clean run). With OT_STATUS_FILE set in the
 * environment, rank 0 also writes that exit code and a newline to it
 * (atomically) as it ends: slurm/ot-job.sh tells a program that ran to its
 * end from a launch that never started it. */
int ot_cli_main(const ot_cli_info *info, int argc, char **argv,
                int (*run)(const ot_config *cfg, int *exit_code));

#endif
