#include "ot_mpi.h"

#include "ot_common.h"

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int mpi_rank = 0, mpi_size = 1;

int ot_mpi_init(int *argc, char ***argv) {
  int provided = 0;
  if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
    return ot_fail(OT_EMPI, "MPI_Init_thread failed");
  MPI_Comm_rank(MPI_COMM_WORLD, &mpi_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &mpi_size);
  return OT_OK;
}

void ot_mpi_finalize(void) { MPI_Finalize(); }
int ot_mpi_rank(void) { return mpi_rank; }
int ot_mpi_size(void) { return mpi_size; }

/* Severity order for agreeing on one status: usage errors first; a status
 * outside the enum (a raw -1 passed up by mistake) still counts as a failure. */
static int severity(int st) {
  if (st == OT_OK) return 0;
  if (st == OT_EINVAL) return 1000;
  return st > 0 ? st : OT_EIO;
}

/* Collective: broadcast a NUL-terminated message from `root` into `buf`. */
static void bcast_str(char *buf, int cap, int root) {
  MPI_Bcast(buf, cap, MPI_CHAR, root, MPI_COMM_WORLD);
  buf[cap - 1] = '\0';
}

int ot_mpi_agree(int status) {
  int mine = severity(status), worst = 0;
  MPI_Allreduce(&mine, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  worst = worst == 1000 ? OT_EINVAL : worst;
  if (worst == OT_OK) return OT_OK; /* one allreduce when every rank is fine */
  mine = status ? mpi_rank : mpi_size;
  int first = mpi_size;
  MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  char msg[4096];
  snprintf(msg, sizeof msg, "%s", mpi_rank == first ? ot_errmsg() : "");
  bcast_str(msg, sizeof msg, first);
  if (!msg[0]) snprintf(msg, sizeof msg, "rank %d failed", first);
  return ot_fail(worst, "%s", msg);
}

int64_t ot_mpi_sum_i64(int64_t v) {
  int64_t s = 0;
  MPI_Allreduce(&v, &s, 1, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
  return s;
}

void ot_mpi_bcast_i64s(int64_t **v, int64_t n) {
  if (ot_mpi_rank() != 0) *v = n > 0 ? ot_xmalloc((size_t)n * sizeof **v) : NULL;
  for (int64_t at = 0; at < n; at += INT32_MAX) /* MPI counts are int */
    MPI_Bcast(*v + at, (int)(n - at < INT32_MAX ? n - at : INT32_MAX), MPI_INT64_T, 0, MPI_COMM_WORLD);
}

/* counters[0]: next unit to hand out; counters[1]: items done. Both live on
 * rank 0 and are only touched through atomic one-sided operations. */
struct ot_workq {
  MPI_Win win;
  int64_t *counters;
  int64_t n_units;
};

int ot_workq_open(ot_workq **out, int64_t n_units) {
  ot_workq *q = ot_xcalloc(1, sizeof *q);
  q->n_units = n_units;
  MPI_Aint bytes = mpi_rank == 0 ? 2 * (MPI_Aint)sizeof(int64_t) : 0;
  if (MPI_Win_allocate(bytes, sizeof(int64_t), MPI_INFO_NULL, MPI_COMM_WORLD, &q->counters,
                       &q->win) != MPI_SUCCESS) {
    free(q);
    return ot_fail(OT_EMPI, "MPI_Win_allocate failed");
  }
  if (mpi_rank == 0) {
    MPI_Win_lock(MPI_LOCK_EXCLUSIVE, 0, 0, q->win);
    q->counters[0] = q->counters[1] = 0;
    MPI_Win_unlock(0, q->win);
  }
  MPI_Barrier(MPI_COMM_WORLD);
  *out = q;
  return OT_OK;
}

static int64_t fetch_add(ot_workq *q, int slot, int64_t add) {
  int64_t old = 0;
  MPI_Win_lock(MPI_LOCK_SHARED, 0, 0, q->win);
  MPI_Fetch_and_op(&add, &old, MPI_INT64_T, 0, slot, MPI_SUM, q->win);
  MPI_Win_unlock(0, q->win);
  return old;
}

int64_t ot_workq_next(ot_workq *q) {
  int64_t u = fetch_add(q, 0, 1);
  return u < q->n_units ? u : -1;
}

void ot_workq_add_done(ot_workq *q, int64_t n) { fetch_add(q, 1, n); }

int64_t ot_workq_done(ot_workq *q) {
  int64_t v = 0, zero = 0;
  MPI_Win_lock(MPI_LOCK_SHARED, 0, 0, q->win);
  MPI_Fetch_and_op(&zero, &v, MPI_INT64_T, 0, 1, MPI_NO_OP, q->win);
  MPI_Win_unlock(0, q->win);
  return v;
}

void ot_workq_close(ot_workq *q) {
  if (!q) return;
  MPI_Win_free(&q->win);
  free(q);
}
