/* Looking things up by text: a string -> int64 hash map, and a sorted
 * (name, row) index.
 *
 * The map: open addressing over FNV-1a 64 (ot_hash.h), kept at most half
 * full. Keys are borrowed: each must stay valid and unchanged
 * while it is in the map. Zero-initialise an ot_strmap to start; it
 * allocates as it grows (aborts when out of memory) and ot_strmap_free
 * releases it. Used wherever texts are interned or looked up (ot-eval's
 * tag and item tables; ot_strpool below, the candidates' tag texts). */
#ifndef OT_STRMAP_H
#define OT_STRMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
  const char **keys;
  int64_t *vals;
  size_t cap, n; /* cap is a power of two (0 before the first put) */
} ot_strmap;

/* The value of key, or -1 when absent. */
int64_t ot_strmap_get(const ot_strmap *m, const char *key);
/* Set key's value (adding key when absent). */
void ot_strmap_put(ot_strmap *m, const char *key, int64_t val);
void ot_strmap_free(ot_strmap *m); /* leaves an empty map */

/* A pool keeping each distinct text once (a split's candidates repeat a
 * few thousand tag texts millions of times). Zero-initialise; aborts when
 * out of memory. */
typedef struct {
  ot_strmap ix; /* text -> index in texts */
  char **texts; /* owned copies */
  int64_t n, cap;
} ot_strpool;
/* The pool's copy of text, made on first sight; valid until ot_strpool_free. */
const char *ot_strpool_intern(ot_strpool *p, const char *text);
void ot_strpool_free(ot_strpool *p); /* leaves an empty pool */

/* The index: a name and the row it came from. Sorted with ot_named_row_cmp
 * (by name, strcmp order, then row), a name's rows are adjacent, first row
 * first, and ot_named_row_lower finds where they start. name is borrowed or
 * owned as its user decides. */
typedef struct {
  const char *name;
  int64_t row;
} ot_named_row;

int ot_named_row_cmp(const void *a, const void *b); /* for qsort */
/* The first of x[0..n) (sorted) whose name is not below `name`: name's
 * first row if it is there, else where it would go (n: past the end). */
size_t ot_named_row_lower(const ot_named_row *x, size_t n, const char *name);

#endif
