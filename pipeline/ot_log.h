/* Logging with the program name and rank in every line, and a rank-0
 * progress line for long work.
 *
 * Lines look like `[ot-extract 1/2] message`. Progress on a terminal is one
 * line rewritten in place; when stderr is not a terminal (batch jobs, CI) it
 * prints a summary line every OT_PROGRESS_PERIOD seconds instead, so Slurm
 * logs stay short. */
#ifndef OT_LOG_H
#define OT_LOG_H

#include <stdint.h>

/* Call once, after ot_mpi_init (rank/size known). `prog` is not copied. */
void ot_log_init(const char *prog, int rank, int size);
void ot_log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void ot_log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void ot_log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Messages on rank 0 only (for things every rank would say alike). */
void ot_log_info0(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define OT_PROGRESS_PERIOD 10.0

typedef struct {
  const char *what;  /* "items", "steps", ... (not copied) */
  int64_t total;     /* <= 0: unknown */
  double t_start, t_last;
  int64_t done_at_start; /* work already done before this run (resume) */
  int tty;
  int printed_inline;
} ot_progress;

void ot_progress_start(ot_progress *p, const char *what, int64_t total, int64_t already_done);
/* Report that `done` units (cumulative, all ranks) are complete; prints when due. */
void ot_progress_update(ot_progress *p, int64_t done);
/* Final summary line: units done, wall time, rate. */
void ot_progress_finish(ot_progress *p, int64_t done);

#endif
