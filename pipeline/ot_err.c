#include "ot_common.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static _Thread_local char errbuf[2048];

int ot_fail(int status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(errbuf, sizeof errbuf, fmt, ap);
  va_end(ap);
  return status;
}

int ot_fail_ctx(int status, const char *fmt, ...) {
  char prefix[1024], old[sizeof errbuf];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(prefix, sizeof prefix, fmt, ap);
  va_end(ap);
  memcpy(old, errbuf, sizeof old);
  /* both parts may be long; truncation of the tail is acceptable */
  size_t n = strlen(prefix);
  if (n > sizeof errbuf - 3) n = sizeof errbuf - 3;
  memcpy(errbuf, prefix, n);
  memcpy(errbuf + n, ": ", 2);
  size_t rest = sizeof errbuf - n - 3;
  size_t m = strlen(old);
  if (m > rest) m = rest;
  memcpy(errbuf + n + 2, old, m);
  errbuf[n + 2 + m] = '\0';
  return status;
}

const char *ot_errmsg(void) { return errbuf; }

int ot_exit_code(int status) {
  if (status == OT_OK) return 0;
  return status == OT_EINVAL ? 2 : 1;
}

void ot_assert_fail(const char *expr, const char *file, int line) {
  fprintf(stderr, "%s:%d: internal error: assertion '%s' failed\n", file, line, expr);
  fflush(stderr);
  abort();
}

void *ot_xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (!p) { fprintf(stderr, "out of memory (%zu bytes)\n", n); abort(); }
  return p;
}

void *ot_xcalloc(size_t n, size_t size) {
  void *p = calloc(n ? n : 1, size ? size : 1);
  if (!p) { fprintf(stderr, "out of memory (%zu x %zu bytes)\n", n, size); abort(); }
  return p;
}

void *ot_xrealloc(void *p, size_t n) {
  void *q = realloc(p, n ? n : 1);
  if (!q) { fprintf(stderr, "out of memory (%zu bytes)\n", n); abort(); }
  return q;
}

char *ot_xstrdup(const char *s) {
  size_t n = strlen(s) + 1;
  return memcpy(ot_xmalloc(n), s, n);
}

double ot_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
