/* The dynamic work queue hands every unit out exactly once across ranks,
 * and the done counter sums every rank's additions. Also runs without mpirun. */
#include "ot_common.h"
#include "ot_mpi.h"
#include "ot_test.h"

#include <mpi.h>
#include <stdlib.h>

int main(int argc, char **argv) {
  OT_ASSERT(ot_mpi_init(&argc, &argv) == OT_OK);
  int64_t n = argc > 1 ? atoll(argv[1]) : 100;
  int *mine = calloc((size_t)n, sizeof(int)), *all = calloc((size_t)n, sizeof(int));
  ot_workq *q;
  CHECK(ot_workq_open(&q, n) == OT_OK);
  int64_t u, got = 0;
  while ((u = ot_workq_next(q)) >= 0) {
    CHECK(u < n);
    mine[u]++;
    got++;
    ot_workq_add_done(q, 2);
  }
  CHECK(ot_workq_next(q) == -1);
  MPI_Allreduce(mine, all, (int)n, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  int once = 1;
  for (int64_t i = 0; i < n; i++) once &= all[i] == 1;
  CHECK(once);
  MPI_Barrier(MPI_COMM_WORLD);
  CHECK(ot_workq_done(q) == 2 * n);
  CHECK(ot_mpi_sum_i64(got) == n);
  ot_workq_close(q);
  free(mine);
  free(all);
  int bad = ot_test_fail;
  int rc = ot_mpi_rank() == 0 ? ot_test_report() : (bad ? 1 : 0);
  ot_mpi_finalize();
  return rc;
}
