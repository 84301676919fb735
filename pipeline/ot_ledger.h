/* The ledger of a resumable job: which units of work are complete.
 *
 * <dir>/ledger/run.json records a fingerprint of the settings that shape the
 * output; a rerun with other settings is refused instead of mixing outputs.
 * <dir>/ledger/unit-NNNNNN.json is written (atomically) after a unit's output
 * has been renamed into place, and holds the unit's summary (counts, errors):
 * a unit is done iff its record exists. A job killed at any point redoes at
 * most the units that were in flight. */
#ifndef OT_LEDGER_H
#define OT_LEDGER_H

#include <stdint.h>

typedef struct ot_ledger ot_ledger;
/* Open the ledger under `dir`. `what` describes the job for messages
 * ("extract"). OT_EINVAL if `dir` holds a ledger with another fingerprint.
 * The `owner` (one rank, before any rank starts work) creates the ledger when
 * absent (dropping unit records found without a fingerprint: orphans of an
 * interrupted start-over) and removes temp files left in `dir` by a killed
 * run; the other
 * ranks open it after the owner, with owner=0. Caller owns *out
 * (ot_ledger_close). */
int ot_ledger_open(ot_ledger **out, const char *dir, const char *what, uint64_t fingerprint,
                   int owner);
/* The owner's ot_ledger_open for a job that publishes the files `published`
 * (NULL-terminated names in `dir`, e.g. index.json) once its n_units units
 * are done: when units are left, an earlier run's published files are
 * removed first, before any rank writes, since they would vouch for files
 * this run rewrites (a start-over rewrites them all) and, were it killed,
 * for a mix of both runs' files. OT_EIO naming a file it cannot remove. */
int ot_ledger_open_unpublish(ot_ledger **out, const char *dir, const char *what, uint64_t fingerprint,
                             int64_t n_units, const char *const *published);
/* Collective: rank 0 opens with ot_ledger_open_unpublish, then the other
 * ranks open what it made; every rank gets rank 0's status and message. */
int ot_ledger_open_all(ot_ledger **out, const char *dir, const char *what, uint64_t fingerprint,
                       int64_t n_units, const char *const *published);
void ot_ledger_close(ot_ledger *l); /* accepts NULL */
int ot_ledger_is_done(const ot_ledger *l, int64_t unit);
/* Record unit as done with its JSON summary (a JSON object as text). */
int ot_ledger_mark_done(ot_ledger *l, int64_t unit, const char *json);
/* The unit's summary, malloc'd (caller frees). OT_EIO if not done. */
int ot_ledger_read(const ot_ledger *l, int64_t unit, char **json);
/* Count of done units among 0..n_units-1. */
int64_t ot_ledger_count_done(const ot_ledger *l, int64_t n_units);

/* Start over instead of resuming, process-wide; ot-run sets it around a
 * step:
 *  - OT_START_OVER_ALL: the step was done and must run again (its config or
 *    an input changed). The owner's ot_ledger_open discards the records and
 *    fingerprint it finds, so every unit is redone; training starts from
 *    step 0 instead of its newest checkpoint, and the index rebuilds a
 *    complete source.
 *  - OT_START_OVER_IF_OTHER: the step resumes a run started with these
 *    settings. What other settings made (a start-over that a kill or an
 *    early error cut before it cleared the outputs) is discarded as above,
 *    instead of refused or, for checkpoints, resumed; what these settings
 *    made is resumed.
 *  - 0: resume (the default). */
enum { OT_START_OVER_ALL = 1, OT_START_OVER_IF_OTHER = 2 };
void ot_ledger_set_start_over(int mode);
int ot_ledger_start_over(void);

#endif
