#include "ot_ledger.h"

#include "ot_common.h"
#include "ot_fs.h"
#include "ot_mpi.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct ot_ledger {
  char dir[4096];    /* the job's output folder */
  char ldir[4200];   /* its ledger folder */
};

static void unit_path(const ot_ledger *l, int64_t unit, char *buf, size_t cap) {
  snprintf(buf, cap, "%s/unit-%06lld.json", l->ldir, (long long)unit);
}

static int start_over; /* ot_ledger_set_start_over */

void ot_ledger_set_start_over(int mode) { start_over = mode; }
int ot_ledger_start_over(void) { return start_over; }

/* The owner starting over: the records and fingerprint go (unit outputs
 * are rewritten as their units are redone). run.json goes first: a kill in
 * the middle leaves records without it, which the next open discards as
 * orphans instead of resuming from them. */
static void discard_records(const char *ldir, const char *run) {
  unlink(run);
  DIR *d = opendir(ldir);
  if (!d) return;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (strncmp(e->d_name, "unit-", 5)) continue;
    char p[8192];
    snprintf(p, sizeof p, "%s/%s", ldir, e->d_name);
    unlink(p);
  }
  closedir(d);
}

/* Whether the ledger folder holds any unit record. */
static int has_records(const char *ldir) {
  DIR *d = opendir(ldir);
  if (!d) return 0;
  struct dirent *e;
  int found = 0;
  while (!found && (e = readdir(d))) found = !strncmp(e->d_name, "unit-", 5);
  closedir(d);
  return found;
}

int ot_ledger_open(ot_ledger **out, const char *dir, const char *what, uint64_t fingerprint,
                   int owner) {
  ot_ledger *l = ot_xcalloc(1, sizeof *l);
  snprintf(l->dir, sizeof l->dir, "%s", dir);
  snprintf(l->ldir, sizeof l->ldir, "%s/ledger", dir);
  int st = owner ? ot_fs_mkdirs(l->ldir) : OT_OK;
  if (st) { free(l); return st; }
  char run[4300], want[256];
  snprintf(run, sizeof run, "%s/run.json", l->ldir);
  snprintf(want, sizeof want, "{\"job\": \"%s\", \"fingerprint\": \"%016" PRIx64 "\"}\n", what, fingerprint);
  char *have = NULL; /* the fingerprint the folder's records were made with */
  if (ot_fs_exists(run) && (st = ot_fs_read_all(run, &have, NULL))) { free(l); return st; }
  int found = have != NULL, same = found && strcmp(have, want) == 0;
  free(have);
  /* records without a fingerprint are orphans of an interrupted start-over
   * (or of a ledger folder copied in part): never resume from them */
  if (owner && (start_over == OT_START_OVER_ALL || !found || (start_over == OT_START_OVER_IF_OTHER && !same))) {
    discard_records(l->ldir, run);
    found = 0;
  }
  if (found) {
    /* a run that stopped before its first unit was done (a bad input found
       after the ledger was made) left no output: the owner takes the folder
       over with the new settings instead of refusing a corrected rerun */
    if (!same && owner && !has_records(l->ldir)) {
      if ((st = ot_fs_write_atomic(run, want, strlen(want)))) { free(l); return st; }
      same = 1;
    }
    if (!same) {
      free(l);
      return ot_fail(OT_EINVAL,
                     "%s holds the output of a %s run with different settings (see %s); "
                     "remove the folder or choose another output folder",
                     dir, what, run);
    }
  } else if (!owner) {
    free(l);
    return ot_fail(OT_EIO, "%s: ledger missing (the owner rank did not create it)", run);
  } else if ((st = ot_fs_write_atomic(run, want, strlen(want)))) {
    free(l);
    return st;
  }
  if (owner) {
    ot_fs_remove_temp_files(l->dir);
    ot_fs_remove_temp_files(l->ldir);
  }
  *out = l;
  return OT_OK;
}

int ot_ledger_open_unpublish(ot_ledger **out, const char *dir, const char *what, uint64_t fingerprint,
                             int64_t n_units, const char *const *published) {
  int st = ot_ledger_open(out, dir, what, fingerprint, 1);
  if (st || ot_ledger_count_done(*out, n_units) == n_units) return st;
  for (int i = 0; published[i] && st == OT_OK; i++) {
    char path[4500];
    snprintf(path, sizeof path, "%s/%s", dir, published[i]);
    if (unlink(path) != 0 && errno != ENOENT) st = ot_fail(OT_EIO, "cannot remove %s: %s", path, strerror(errno));
  }
  return st;
}

int ot_ledger_open_all(ot_ledger **out, const char *dir, const char *what, uint64_t fingerprint,
                       int64_t n_units, const char *const *published) {
  const int owner = ot_mpi_rank() == 0;
  int st = ot_mpi_agree(owner ? ot_ledger_open_unpublish(out, dir, what, fingerprint, n_units, published)
                              : OT_OK);
  if (st == OT_OK) st = ot_mpi_agree(owner ? OT_OK : ot_ledger_open(out, dir, what, fingerprint, 0));
  return st;
}

void ot_ledger_close(ot_ledger *l) { free(l); }

int ot_ledger_is_done(const ot_ledger *l, int64_t unit) {
  char p[4400];
  unit_path(l, unit, p, sizeof p);
  return ot_fs_exists(p);
}

int ot_ledger_mark_done(ot_ledger *l, int64_t unit, const char *json) {
  char p[4400];
  unit_path(l, unit, p, sizeof p);
  return ot_fs_write_atomic(p, json, strlen(json));
}

int ot_ledger_read(const ot_ledger *l, int64_t unit, char **json) {
  char p[4400];
  unit_path(l, unit, p, sizeof p);
  return ot_fs_read_all(p, json, NULL);
}

int64_t ot_ledger_count_done(const ot_ledger *l, int64_t n_units) {
  int64_t n = 0;
  for (int64_t u = 0; u < n_units; u++) n += ot_ledger_is_done(l, u);
  return n;
}
