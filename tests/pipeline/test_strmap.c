/* pipeline/ot_strmap.h. The map: 20000 keys found again after it grew
 * (linear probing: many share a home slot), absent keys, overwrites, the
 * empty key, and the empty map after free. The sorted (name, row) index:
 * a name's rows adjacent in row order, and the lower bound of present,
 * absent, first and past-the-end names. The pool: one copy per distinct
 * text, not the caller's, kept until freed. */
#include "ot_common.h"
#include "ot_strmap.h"
#include "ot_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { N = 20000 };

int main(void) {
  static char keys[N][16];
  ot_strmap m = {0};
  CHECK(ot_strmap_get(&m, "a") == -1); /* never grown */
  for (int i = 0; i < N; i++) {
    snprintf(keys[i], sizeof keys[i], "k%d", i);
    ot_strmap_put(&m, keys[i], 3 * (int64_t)i);
  }
  int found = 0;
  for (int i = 0; i < N; i++) found += ot_strmap_get(&m, keys[i]) == 3 * (int64_t)i;
  CHECK(found == N && m.n == N && m.cap >= 2 * (size_t)N);
  CHECK(ot_strmap_get(&m, "k20000") == -1 && ot_strmap_get(&m, "") == -1);
  ot_strmap_put(&m, keys[7], -5); /* overwrite: no new entry */
  CHECK(ot_strmap_get(&m, "k7") == -5 && m.n == N);
  /* "" is a key like any other */
  ot_strmap_put(&m, "", 1);
  CHECK(ot_strmap_get(&m, "") == 1 && m.n == N + 1);
  ot_strmap_free(&m);
  CHECK(m.cap == 0 && m.n == 0 && ot_strmap_get(&m, "k1") == -1);

  ot_named_row x[] = {{"pear", 4}, {"apple", 9}, {"pear", 1}, {"fig", 0}, {"apple", 2}, {"pear", 3}};
  const size_t n = sizeof x / sizeof *x;
  qsort(x, n, sizeof *x, ot_named_row_cmp);
  static const char *const names[] = {"apple", "apple", "fig", "pear", "pear", "pear"};
  static const int64_t rows[] = {2, 9, 0, 1, 3, 4};
  int sorted = 1;
  for (size_t i = 0; i < n; i++) sorted &= !strcmp(x[i].name, names[i]) && x[i].row == rows[i];
  CHECK(sorted);
  CHECK(ot_named_row_lower(x, n, "apple") == 0 && ot_named_row_lower(x, n, "fig") == 2 &&
        ot_named_row_lower(x, n, "pear") == 3);
  CHECK(ot_named_row_lower(x, n, "banana") == 2 && ot_named_row_lower(x, n, "") == 0 &&
        ot_named_row_lower(x, n, "zz") == n && ot_named_row_lower(x, 0, "pear") == 0);
  /* the pool */
  ot_strpool pool = {0};
  char buf[8];
  snprintf(buf, sizeof buf, "warm");
  const char *warm = ot_strpool_intern(&pool, buf);
  CHECK(warm != buf && !strcmp(warm, "warm"));
  snprintf(buf, sizeof buf, "cold");
  CHECK(!strcmp(warm, "warm")); /* a copy: the caller's buffer changed */
  int same = 1;
  for (int i = 0; i < 1000; i++) { /* grows past its first capacity */
    snprintf(keys[i], sizeof keys[i], "t%d", i % 300);
    same &= ot_strpool_intern(&pool, keys[i]) == ot_strpool_intern(&pool, keys[i % 300]);
  }
  CHECK(same && pool.n == 301 && ot_strpool_intern(&pool, "warm") == warm && pool.n == 301);
  ot_strpool_free(&pool);
  CHECK(pool.n == 0 && !pool.texts && !strcmp(ot_strpool_intern(&pool, "x"), "x") && pool.n == 1);
  ot_strpool_free(&pool);
  return ot_test_report();
}
