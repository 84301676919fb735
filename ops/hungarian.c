/* Shortest augmenting path assignment with row/column potentials (the
 * O(k^2 m) formulation of Kuhn-Munkres used by Jonker-Volgenant): rows of
 * the shorter side are inserted one at a time, each by a Dijkstra-like
 * search over reduced costs a[i][j] - u[i] - v[j] >= 0. */
#include "hungarian.h"

#include "ot_common.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

static size_t round8(size_t n) { return (n + 7) / 8 * 8; }

/* k = short side, m = long side; index 0 of the column arrays is the
 * virtual start of every augmenting path. */
static size_t work_bytes(size_t k, size_t m) {
  return round8((k + 1) * sizeof(double)) + 2 * round8((m + 1) * sizeof(double)) +
         2 * round8((m + 1) * sizeof(int)) + round8(m + 1);
}

size_t ot_hungarian_work_bytes(int n_rows, int n_cols) {
  if (n_rows < 0 || n_cols < 0) return 0;
  size_t k = (size_t)(n_rows < n_cols ? n_rows : n_cols);
  size_t m = (size_t)(n_rows < n_cols ? n_cols : n_rows);
  return work_bytes(k, m);
}

int ot_hungarian_ws(const float *cost, int n_rows, int n_cols, int *row_to_col, float *total,
                    void *work, size_t work_bytes_given) {
  if (n_rows < 0 || n_cols < 0)
    return ot_fail(OT_EINVAL, "hungarian: negative shape %d x %d", n_rows, n_cols);
  for (int r = 0; r < n_rows; r++) row_to_col[r] = -1;
  if (total) *total = 0.0f;
  for (size_t e = 0; e < (size_t)n_rows * (size_t)n_cols; e++)
    if (!isfinite(cost[e]))
      return ot_fail(OT_EINVAL, "hungarian: cost[%zu][%zu] = %g is not finite",
                     e / (size_t)n_cols, e % (size_t)n_cols, (double)cost[e]);
  if (n_rows == 0 || n_cols == 0) return OT_OK;
  size_t need = ot_hungarian_work_bytes(n_rows, n_cols);
  if (work_bytes_given < need)
    return ot_fail(OT_EINVAL, "hungarian: workspace of %zu bytes, %zu needed", work_bytes_given,
                   need);

  /* Assign the short side: when there are more rows than columns, the
   * "rows" of the algorithm are the columns of cost. */
  int transposed = n_rows > n_cols;
  int k = transposed ? n_cols : n_rows, m = transposed ? n_rows : n_cols;
  char *w = work;
  double *u = (double *)w;    w += round8((size_t)(k + 1) * sizeof(double));
  double *v = (double *)w;    w += round8((size_t)(m + 1) * sizeof(double));
  double *minv = (double *)w; w += round8((size_t)(m + 1) * sizeof(double));
  int *p = (int *)w;          w += round8((size_t)(m + 1) * sizeof(int));
  int *way = (int *)w;        w += round8((size_t)(m + 1) * sizeof(int));
  unsigned char *used = (unsigned char *)w;
#define A(i, j) (transposed ? (double)cost[(size_t)((j) - 1) * (size_t)n_cols + (size_t)((i) - 1)] \
                            : (double)cost[(size_t)((i) - 1) * (size_t)n_cols + (size_t)((j) - 1)])
  for (int i = 0; i <= k; i++) u[i] = 0.0;
  for (int j = 0; j <= m; j++) { v[j] = 0.0; p[j] = 0; way[j] = 0; }

  for (int i = 1; i <= k; i++) {
    p[0] = i;
    int j0 = 0;
    for (int j = 0; j <= m; j++) { minv[j] = INFINITY; used[j] = 0; }
    do {
      used[j0] = 1;
      int i0 = p[j0], j1 = 0;
      double delta = INFINITY;
      /* Strict < keeps the lowest column index on ties: deterministic. */
      for (int j = 1; j <= m; j++) {
        if (used[j]) continue;
        double cur = A(i0, j) - u[i0] - v[j];
        if (cur < minv[j]) { minv[j] = cur; way[j] = j0; }
        if (minv[j] < delta) { delta = minv[j]; j1 = j; }
      }
      OT_ASSERT(j1 > 0);
      for (int j = 0; j <= m; j++) {
        if (used[j]) { u[p[j]] += delta; v[j] -= delta; }
        else minv[j] -= delta;
      }
      j0 = j1;
    } while (p[j0] != 0);
    do {  /* flip the augmenting path back to its start */
      int j1 = way[j0];
      p[j0] = p[j1];
      j0 = j1;
    } while (j0 != 0);
  }

  for (int j = 1; j <= m; j++) {
    if (p[j] == 0) continue;
    if (transposed) row_to_col[j - 1] = p[j] - 1;
    else row_to_col[p[j] - 1] = j - 1;
  }
#undef A
  /* In row order, so callers summing the same way get the same float. */
  double sum = 0.0;
  for (int r = 0; r < n_rows; r++)
    if (row_to_col[r] >= 0) sum += cost[(size_t)r * (size_t)n_cols + (size_t)row_to_col[r]];
  if (total) *total = (float)sum;
  return OT_OK;
}

int ot_hungarian(const float *cost, int n_rows, int n_cols, int *row_to_col, float *total) {
  size_t need = ot_hungarian_work_bytes(n_rows, n_cols);
  void *work = malloc(need ? need : 1);
  if (!work) return ot_fail(OT_ENOMEM, "hungarian: out of memory for %zu bytes", need);
  int rc = ot_hungarian_ws(cost, n_rows, n_cols, row_to_col, total, work, need);
  free(work);
  return rc;
}
