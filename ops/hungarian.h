/* Minimum-cost one-to-one assignment (Hungarian algorithm, shortest
 * augmenting paths with potentials, Jonker-Volgenant style), O(k^2 * K)
 * for k = min(n_rows, n_cols), K = max(n_rows, n_cols).
 *
 * Used by training to match order prompts to ground-truth tags (seed §1):
 * called once per sample per step on matrices like 32 x 20, so the
 * workspace variant avoids any allocation. */
#ifndef OT_HUNGARIAN_H
#define OT_HUNGARIAN_H

#include <stddef.h>

/* cost:       [n_rows, n_cols] row-major, finite values (OT_EINVAL names
 *             the first non-finite entry)
 * row_to_col: [n_rows] out: the column assigned to each row, -1 if none;
 *             exactly min(n_rows, n_cols) rows (or columns) are assigned
 * total:      out (may be NULL): sum of the chosen costs, summed in double in
 *             row order
 * Works in double internally. Ties are broken deterministically (the same
 * input always gives the same assignment). Allocates its workspace. */
int ot_hungarian(const float *cost, int n_rows, int n_cols, int *row_to_col, float *total);

/* Bytes of workspace ot_hungarian_ws needs for this shape. */
size_t ot_hungarian_work_bytes(int n_rows, int n_cols);

/* ot_hungarian without allocation: work points to at least
 * ot_hungarian_work_bytes(n_rows, n_cols) bytes aligned for double, owned by
 * the caller and reusable across calls (OT_EINVAL if work_bytes is smaller). */
int ot_hungarian_ws(const float *cost, int n_rows, int n_cols, int *row_to_col, float *total,
                    void *work, size_t work_bytes);

#endif
