/* Minimal test harness: CHECK records a failure and goes on; a test program
 * ends with `return ot_test_report();` which prints "N passed, N failed". */
#ifndef OT_TEST_H
#define OT_TEST_H

#include <stdio.h>
#include <string.h>

static int ot_test_pass, ot_test_fail;

#define CHECK(cond)                                                                \
  do {                                                                             \
    if (cond) ot_test_pass++;                                                      \
    else { ot_test_fail++; fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); } \
  } while (0)

/* CHECK with a printf-style explanation printed when it fails. */
#define CHECKF(cond, ...)                                                          \
  do {                                                                             \
    if (cond) ot_test_pass++;                                                      \
    else {                                                                         \
      ot_test_fail++;                                                              \
      fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond);     \
      fprintf(stderr, __VA_ARGS__);                                                \
      fputc('\n', stderr);                                                         \
    }                                                                              \
  } while (0)

/* The thread's last error message contains `needle`. */
#define CHECK_MSG(needle)                                                          \
  do {                                                                             \
    if (strstr(ot_errmsg(), needle)) ot_test_pass++;                               \
    else { ot_test_fail++; fprintf(stderr, "%s:%d: message '%s' lacks '%s'\n", __FILE__, __LINE__, ot_errmsg(), needle); } \
  } while (0)

static inline int ot_test_report(void) {
  printf("%d passed, %d failed\n", ot_test_pass, ot_test_fail);
  return ot_test_fail ? 1 : 0;
}

#endif
