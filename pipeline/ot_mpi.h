/* MPI context and dynamic work distribution.
 *
 * Every program is an MPI program that also runs as a single process: started
 * without mpirun, MPI's singleton init makes it rank 0 of 1.
 *
 * Work is handed out in units (e.g. shards of a manifest) through a shared
 * counter on rank 0 accessed with one-sided atomics (MPI_Fetch_and_op), so
 * no rank sits idle as a coordinator and a slow unit never holds up others. */
#ifndef OT_MPI_H
#define OT_MPI_H

#include <stdint.h>

/* MPI_Init_thread (FUNNELED) and cache rank/size. Returns OT_OK or OT_EMPI. */
int ot_mpi_init(int *argc, char ***argv);
void ot_mpi_finalize(void);
int ot_mpi_rank(void);
int ot_mpi_size(void);
/* Collective: the worst status over all ranks (OT_EINVAL beats others, so a
 * usage error on any rank gives every rank exit code 2) and, when some rank
 * failed, on every rank the message (ot_errmsg) of the lowest rank that
 * failed: rank 0, which reports, says why another rank stopped. */
int ot_mpi_agree(int status);
/* Collective sum over ranks. */
int64_t ot_mpi_sum_i64(int64_t v);
/* Collective: rank 0's array *v of n int64s to every rank (n the same on
 * every rank); on the other ranks *v is malloc'd here, owned by the caller. */
void ot_mpi_bcast_i64s(int64_t **v, int64_t n);

typedef struct ot_workq ot_workq;
/* Collective. Creates a queue of units 0..n_units-1; *out is owned by the
 * caller and released with ot_workq_close (also collective). */
int ot_workq_open(ot_workq **out, int64_t n_units);
/* Next unit to process, or -1 when all have been handed out. Any rank. */
int64_t ot_workq_next(ot_workq *q);
/* Add `n` to a global "items done" counter (for rank-0 progress). */
void ot_workq_add_done(ot_workq *q, int64_t n);
/* The global "items done" counter (meaningful on every rank; cheap). */
int64_t ot_workq_done(ot_workq *q);
void ot_workq_close(ot_workq *q); /* accepts NULL (then not collective) */

#endif
