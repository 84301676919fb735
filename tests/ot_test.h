/* Minimal test harness: CHECK records a failure and goes on; a test program
 * ends with `return ot_test_report();` which prints "N passed, N failed". */
#ifndef OT_TEST_H
#define OT_TEST_H

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

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

/* How many of this process's open files have `name_part` in their path
 * (Linux: /proc/self/fd). */
static inline int ot_test_open_files(const char *name_part) {
  DIR *d = opendir("/proc/self/fd");
  int n = 0;
  for (struct dirent *e; d && (e = readdir(d));) {
    char link[300], target[4200];
    snprintf(link, sizeof link, "/proc/self/fd/%s", e->d_name);
    ssize_t len = readlink(link, target, sizeof target - 1);
    if (len > 0) target[len] = '\0', n += strstr(target, name_part) != NULL;
  }
  if (d) closedir(d);
  return n;
}

static inline int ot_test_report(void) {
  printf("%d passed, %d failed\n", ot_test_pass, ot_test_fail);
  return ot_test_fail ? 1 : 0;
}

#endif
