/* The string map (pipeline/ot_strmap.h): 20000 keys found again after the
 * map grew (linear probing: many share a home slot), absent keys,
 * overwrites, the empty key, and the empty map after free. */
#include "ot_common.h"
#include "ot_strmap.h"
#include "ot_test.h"

#include <stdio.h>
#include <stdlib.h>

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
  return ot_test_report();
}
