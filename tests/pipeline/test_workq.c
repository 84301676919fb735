/* The dynamic work queue hands every unit out exactly once across ranks,
 * and the done counter sums every rank's additions; ot_mpi_agree gives every
 * rank the failing rank's status and message. Also runs without mpirun. */
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

  /* the last rank fails alone: every rank (rank 0 reports) learns why */
  const int last = ot_mpi_size() - 1;
  ot_fail(OT_EIO, "rank 0's stale message");
  int st = ot_mpi_rank() == last ? ot_fail(OT_EIO, "shard 7 of rank %d: disk full", last) : OT_OK;
  CHECK(ot_mpi_agree(st) == OT_EIO);
  CHECK_MSG("disk full");
  CHECK(ot_mpi_agree(ot_mpi_rank() == 0 ? ot_fail(OT_EINVAL, "bad key") : OT_OK) == OT_EINVAL);
  CHECK_MSG("bad key");
  CHECK(ot_mpi_agree(ot_mpi_rank() == 0 ? -1 : OT_OK) == OT_EIO); /* a raw -1 is not lost */
  CHECK(ot_mpi_agree(OT_OK) == OT_OK);
  free(mine);
  free(all);
  int bad = ot_test_fail;
  int rc = ot_mpi_rank() == 0 ? ot_test_report() : (bad ? 1 : 0);
  ot_mpi_finalize();
  return rc;
}
