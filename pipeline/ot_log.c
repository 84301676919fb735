#include "ot_log.h"

#include "ot_common.h"

#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

static const char *log_prog = "ot";
static int log_rank = 0, log_size = 1;
static int progress_line_open = 0; /* a \r progress line is on screen */

void ot_log_init(const char *prog, int rank, int size) {
  log_prog = prog;
  log_rank = rank;
  log_size = size;
}

static void vlog(const char *level, const char *fmt, va_list ap) {
  char msg[4096];
  vsnprintf(msg, sizeof msg, fmt, ap);
  if (progress_line_open) { fputc('\n', stderr); progress_line_open = 0; }
  if (log_size > 1)
    fprintf(stderr, "[%s %d/%d] %s%s\n", log_prog, log_rank, log_size, level, msg);
  else
    fprintf(stderr, "[%s] %s%s\n", log_prog, level, msg);
  fflush(stderr);
}

#define OT_LOG_FN(name, level, cond)                                            \
  void name(const char *fmt, ...) {                                             \
    if (!(cond)) return;                                                        \
    va_list ap;                                                                 \
    va_start(ap, fmt);                                                          \
    vlog(level, fmt, ap);                                                       \
    va_end(ap);                                                                 \
  }
OT_LOG_FN(ot_log_info, "", 1)
OT_LOG_FN(ot_log_warn, "warning: ", 1)
OT_LOG_FN(ot_log_error, "error: ", 1)
OT_LOG_FN(ot_log_info0, "", log_rank == 0)

void ot_progress_start(ot_progress *p, const char *what, int64_t total, int64_t already_done) {
  p->what = what;
  p->total = total;
  p->t_start = p->t_last = ot_now();
  p->done_at_start = already_done;
  p->tty = isatty(STDERR_FILENO);
  p->printed_inline = 0;
}

static void format_eta(char *buf, size_t n, double secs) {
  if (secs < 0 || secs > 1e7) { snprintf(buf, n, "?"); return; }
  int s = (int)(secs + 0.5);
  if (s >= 3600) snprintf(buf, n, "%dh%02dm", s / 3600, (s / 60) % 60);
  else if (s >= 60) snprintf(buf, n, "%dm%02ds", s / 60, s % 60);
  else snprintf(buf, n, "%ds", s);
}

static void progress_print(ot_progress *p, int64_t done, int final) {
  double now = ot_now(), el = now - p->t_start;
  double rate = el > 0 ? (double)(done - p->done_at_start) / el : 0;
  char eta[32] = "-";
  if (p->total > 0 && rate > 0) format_eta(eta, sizeof eta, (double)(p->total - done) / rate);
  char line[256];
  if (p->total > 0)
    snprintf(line, sizeof line, "%lld/%lld %s (%.1f%%), %.1f %s/s, ETA %s",
             (long long)done, (long long)p->total, p->what,
             100.0 * (double)done / (double)p->total, rate, p->what, eta);
  else
    snprintf(line, sizeof line, "%lld %s, %.1f %s/s", (long long)done, p->what, rate, p->what);
  if (final) {
    if (progress_line_open) { fputc('\n', stderr); progress_line_open = 0; }
    const long long now_done = (long long)(done - p->done_at_start);
    if (!p->done_at_start)
      fprintf(stderr, "[%s] done: %lld %s in %.1fs (%.1f %s/s)\n", log_prog, (long long)done,
              p->what, el, rate, p->what);
    else if (now_done > 0) /* resumed: the rate is of this run's share */
      fprintf(stderr, "[%s] done: %lld %s, %lld of them this run in %.1fs (%.1f %s/s)\n", log_prog,
              (long long)done, p->what, now_done, el, rate, p->what);
    else
      fprintf(stderr, "[%s] done: %lld %s, all finished by an earlier run\n", log_prog,
              (long long)done, p->what);
  } else if (p->tty) {
    fprintf(stderr, "\r[%s] %s\033[K", log_prog, line);
    progress_line_open = 1;
  } else {
    fprintf(stderr, "[%s] progress: %s\n", log_prog, line);
  }
  fflush(stderr);
}

void ot_progress_update(ot_progress *p, int64_t done) {
  if (log_rank != 0) return;
  double now = ot_now();
  double period = p->tty ? 0.5 : OT_PROGRESS_PERIOD;
  if (now - p->t_last < period) return;
  p->t_last = now;
  progress_print(p, done, 0);
}

void ot_progress_finish(ot_progress *p, int64_t done) {
  if (log_rank != 0) return;
  progress_print(p, done, 1);
}
