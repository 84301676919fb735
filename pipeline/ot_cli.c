#include "ot_cli.h"

#include "ot_common.h"
#include "ot_fs.h"
#include "ot_log.h"
#include "ot_mpi.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void print_help(const ot_cli_info *info) {
  printf("usage: %s --config FILE.yaml [--set dotted.key=value ...]\n\n%s\n\n", info->prog,
         info->summary);
  printf("options:\n"
         "  --config FILE      YAML config (see configs/)\n"
         "  --set KEY=VALUE    override one config key; repeatable\n"
         "  --print-config     print the effective config as YAML and exit\n"
         "  -h, --help         this help\n\n"
         "Runs as one process, or on N MPI ranks under mpirun/srun.\n"
         "Exit codes: 0 success, 2 bad usage/config/input, 1 runtime failure.\n\n"
         "config keys read by %s:\n", info->prog);
  char secs[256];
  snprintf(secs, sizeof secs, "%s", info->sections);
  for (char *s = strtok(secs, " "); s; s = strtok(NULL, " ")) {
    char prefix[64]; /* a section's keys, or the one key named */
    snprintf(prefix, sizeof prefix, strchr(s, '.') ? "%s" : "%s.", s);
    ot_config_print_schema(prefix);
  }
}

int ot_cli_load_config(const char *prog, const char *config, const char *const *sets, int n_sets,
                       ot_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  if (!config) return ot_fail(OT_EINVAL, "%s: --config FILE.yaml is required (see --help)", prog);
  return ot_config_load(cfg, config, sets, n_sets);
}

int ot_cli_parse(const ot_cli_info *info, int argc, char **argv, ot_config *cfg) {
  const char *config = NULL;
  const char **sets = ot_xcalloc((size_t)argc, sizeof *sets);
  int n_sets = 0, print = 0, st = OT_OK;
  memset(cfg, 0, sizeof *cfg);
  for (int i = 1; i < argc && st == OT_OK; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      if (ot_mpi_rank() == 0) print_help(info);
      free(sets);
      return OT_CLI_EXIT_OK;
    } else if (!strcmp(a, "--config") || !strcmp(a, "--set")) {
      if (i + 1 >= argc) st = ot_fail(OT_EINVAL, "%s: option %s needs an argument", info->prog, a);
      else if (a[2] == 'c') config = argv[++i];
      else sets[n_sets++] = argv[++i];
    } else if (!strncmp(a, "--config=", 9)) {
      config = a + 9;
    } else if (!strncmp(a, "--set=", 6)) {
      sets[n_sets++] = a + 6;
    } else if (!strcmp(a, "--print-config")) {
      print = 1;
    } else {
      st = ot_fail(OT_EINVAL, "%s: unknown argument '%s' (see --help)", info->prog, a);
    }
  }
  if (st == OT_OK) st = ot_cli_load_config(info->prog, config, sets, n_sets, cfg);
  free(sets);
  if (st) return st;
  if (print) {
    if (ot_mpi_rank() == 0) {
      char *y = ot_config_dump(cfg);
      fputs(y, stdout);
      free(y);
    }
    return OT_CLI_EXIT_OK;
  }
  return OT_CLI_RUN;
}

/* OT_STATUS_FILE (set by slurm/ot-job.sh): rank 0 writes its exit code there
 * as it ends. srun can exit 0 for a step that never launched (seen when a
 * stale PMIx socket made the launch fail); without this record the job
 * would end COMPLETED having run nothing, and its afterok dependants start. */
static void write_status_file(const char *prog, int code) {
  const char *path = getenv("OT_STATUS_FILE");
  if (!path || !*path) return;
  char text[16];
  const int n = snprintf(text, sizeof text, "%d\n", code);
  if (ot_fs_write_atomic(path, text, (size_t)n) != OT_OK)
    fprintf(stderr, "%s: warning: OT_STATUS_FILE: %s\n", prog, ot_errmsg());
}

int ot_cli_main(const ot_cli_info *info, int argc, char **argv,
                int (*run)(const ot_config *cfg, int *exit_code)) {
  if (ot_mpi_init(&argc, &argv)) {
    fprintf(stderr, "%s: %s\n", info->prog, ot_errmsg());
    return 1;
  }
  ot_log_init(info->prog, ot_mpi_rank(), ot_mpi_size());
  ot_config cfg;
  int exit_code = -1, st = ot_cli_parse(info, argc, argv, &cfg);
  if (st == OT_CLI_EXIT_OK) st = OT_OK;
  else if (st == OT_CLI_RUN) st = run(&cfg, &exit_code);
  if (st && ot_mpi_rank() == 0) fprintf(stderr, "%s: error: %s\n", info->prog, ot_errmsg());
  ot_config_free(&cfg);
  const int code = exit_code >= 0 ? exit_code : ot_exit_code(st);
  if (ot_mpi_rank() == 0) write_status_file(info->prog, code);
  ot_mpi_finalize();
  return code;
}
