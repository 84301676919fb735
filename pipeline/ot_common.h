/* Shared conventions of every Open-Tag module.
 *
 * Status codes: functions that can fail on input or the environment return
 * an int status (OT_OK or one of the OT_E* codes) and leave a message that
 * ot_errmsg() returns; it names the file/line/field where one is known.
 * Broken invariants (programming errors) are OT_ASSERT: they abort.
 *
 * Exit codes of every program: 0 success, 2 bad usage/config/input,
 * 1 runtime failure (ot_exit_code maps a status to one); ot-train (and
 * ot-run over it) also OT_EXIT_STOPPED. */
#ifndef OT_COMMON_H
#define OT_COMMON_H

#include <stddef.h>
#include <stdint.h>

enum {
  OT_OK = 0,
  OT_EINVAL = 2,   /* bad usage, config or input: the user must fix something */
  OT_EIO = 3,      /* reading or writing a file failed */
  OT_ENOMEM = 4,   /* allocation failed */
  OT_EMEDIA = 5,   /* a media file could not be decoded (per-item, recorded) */
  OT_EMPI = 6,     /* an MPI call failed */
};

/* Exit code of a training stopped at a checkpoint on request (SIGUSR1, the
 * scheduler's warning before a time limit): not done, the same command
 * resumes it (sysexits' EX_TEMPFAIL). Not 0: a job script that did not see
 * the signal itself (sent to the job's steps) must still requeue, and
 * --dependency=afterok jobs must not start on a half-trained model. */
#define OT_EXIT_STOPPED 75

/* Set the calling thread's error message and return `status`.
 * Usage: return ot_fail(OT_EINVAL, "%s:%d: unknown key '%s'", file, line, key); */
int ot_fail(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prefix the current message with more context ("while reading X: ...") and
 * return `status` unchanged. */
int ot_fail_ctx(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The calling thread's last error message ("" if none). Valid until the next
 * ot_fail on this thread. */
const char *ot_errmsg(void);
/* Process exit code for a status: 0, 2 for OT_EINVAL, 1 otherwise. */
int ot_exit_code(int status);

void ot_assert_fail(const char *expr, const char *file, int line) __attribute__((noreturn));
#define OT_ASSERT(c) ((c) ? (void)0 : ot_assert_fail(#c, __FILE__, __LINE__))

/* Allocation that aborts on failure: used for small bookkeeping where an
 * out-of-memory condition cannot be handled meaningfully. Large buffers
 * (frames, tensors) use malloc and return OT_ENOMEM. */
void *ot_xmalloc(size_t n);
void *ot_xcalloc(size_t n, size_t size);
void *ot_xrealloc(void *p, size_t n);
char *ot_xstrdup(const char *s);

/* Monotonic wall time in seconds. */
double ot_now(void);

#endif
