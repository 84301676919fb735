/* Ledger: done records, refusal of a rerun with other settings, cleanup of
 * a killed run's temp files, starting over (records and settings dropped,
 * outputs kept), orphan records of an interrupted start-over, a run stopped
 * before its first record taken over by a corrected rerun; atomic writes
 * leave no temp file behind. */
#include "ot_common.h"
#include "ot_fs.h"
#include "ot_ledger.h"
#include "ot_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(void) {
  const char *dir = "test_ledger_dir";
  system("rm -rf test_ledger_dir");
  ot_ledger *l, *other;
  CHECK(ot_ledger_open(&other, dir, "extract", 42, 0) == OT_EIO); /* non-owner before owner */
  CHECK(ot_ledger_open(&l, dir, "extract", 42, 1) == OT_OK);
  CHECK(!ot_ledger_is_done(l, 3));
  CHECK(ot_ledger_mark_done(l, 3, "{\"items\": 5}") == OT_OK);
  CHECK(ot_ledger_is_done(l, 3) && ot_ledger_count_done(l, 10) == 1);
  char *txt = NULL;
  CHECK(ot_ledger_read(l, 3, &txt) == OT_OK && !strcmp(txt, "{\"items\": 5}"));
  free(txt);
  CHECK(ot_ledger_read(l, 4, &txt) == OT_EIO);
  ot_ledger_close(l);

  /* same settings: reopened as owner or not, the record is still there */
  CHECK(ot_ledger_open(&l, dir, "extract", 42, 0) == OT_OK && ot_ledger_is_done(l, 3));
  ot_ledger_close(l);
  /* other settings: refused with a message naming the folder */
  CHECK(ot_ledger_open(&l, dir, "extract", 43, 1) == OT_EINVAL);
  CHECK_MSG("test_ledger_dir holds the output of a extract run with different settings");

  /* a killed run's temp files are removed by the owner's open */
  CHECK(ot_fs_write_atomic("test_ledger_dir/shard-000001.h5.tmp.999", "x", 1) == OT_OK);
  CHECK(ot_fs_exists("test_ledger_dir/shard-000001.h5.tmp.999"));
  CHECK(ot_ledger_open(&l, dir, "extract", 42, 1) == OT_OK);
  CHECK(!ot_fs_exists("test_ledger_dir/shard-000001.h5.tmp.999"));
  ot_ledger_close(l);
  ot_ledger_close(NULL);

  /* starting over: the owner drops the records and the old settings; a
   * non-owner opening after it sees the new ledger; outputs stay */
  CHECK(ot_fs_write_atomic("test_ledger_dir/part-000003.jsonl", "x\n", 2) == OT_OK);
  ot_ledger_set_start_over(1);
  CHECK(ot_ledger_start_over());
  CHECK(ot_ledger_open(&l, dir, "extract", 43, 1) == OT_OK && !ot_ledger_is_done(l, 3));
  CHECK(ot_ledger_open(&other, dir, "extract", 43, 0) == OT_OK && !ot_ledger_is_done(other, 3));
  ot_ledger_close(other);
  CHECK(ot_ledger_mark_done(l, 3, "{}") == OT_OK);
  ot_ledger_close(l);
  CHECK(ot_fs_exists("test_ledger_dir/part-000003.jsonl"));
  ot_ledger_set_start_over(0);
  CHECK(ot_ledger_open(&l, dir, "extract", 43, 1) == OT_OK && ot_ledger_is_done(l, 3)); /* resumes again */
  ot_ledger_close(l);
  CHECK(ot_ledger_open(&l, dir, "extract", 42, 1) == OT_EINVAL);

  /* ot-run resuming a step it started with these settings: records of the
   * same settings are resumed, those of others (a start-over cut before
   * it cleared them) dropped instead of refused */
  ot_ledger_set_start_over(OT_START_OVER_IF_OTHER);
  CHECK(ot_ledger_open(&l, dir, "extract", 43, 1) == OT_OK && ot_ledger_is_done(l, 3));
  ot_ledger_close(l);
  CHECK(ot_ledger_open(&l, dir, "extract", 44, 1) == OT_OK && !ot_ledger_is_done(l, 3));
  CHECK(ot_ledger_mark_done(l, 3, "{}") == OT_OK);
  ot_ledger_close(l);
  ot_ledger_set_start_over(0);
  CHECK(ot_ledger_open(&l, dir, "extract", 43, 1) == OT_EINVAL);
  CHECK(ot_ledger_open(&l, dir, "extract", 44, 1) == OT_OK && ot_ledger_is_done(l, 3));
  ot_ledger_close(l);
  CHECK(ot_ledger_open(&l, dir, "extract", 42, 1) == OT_EINVAL);

  /* a start-over killed after run.json went but before every record did:
   * the next owner's open (not starting over) discards the orphans */
  CHECK(unlink("test_ledger_dir/ledger/run.json") == 0);
  CHECK(ot_ledger_open(&l, dir, "extract", 42, 1) == OT_OK && !ot_ledger_is_done(l, 3));
  ot_ledger_close(l);

  /* a run stopped before its first record (a bad input found after the
   * ledger was made): a rerun with other settings takes the folder over as
   * owner, not refused; a non-owner still needs the owner's settings */
  system("rm -rf test_ledger_dir");
  CHECK(ot_ledger_open(&l, dir, "extract", 42, 1) == OT_OK);
  ot_ledger_close(l);
  CHECK(ot_ledger_open(&l, dir, "extract", 43, 0) == OT_EINVAL);
  CHECK(ot_ledger_open(&l, dir, "extract", 43, 1) == OT_OK && !ot_ledger_is_done(l, 3));
  ot_ledger_close(l);
  CHECK(ot_ledger_open(&l, dir, "extract", 43, 0) == OT_OK);
  CHECK(ot_ledger_mark_done(l, 3, "{}") == OT_OK);
  ot_ledger_close(l);
  CHECK(ot_ledger_open(&l, dir, "extract", 42, 1) == OT_EINVAL); /* once a unit is done: refused */

  /* atomic write: content complete, no temp left */
  char tmp[512];
  ot_fs_tmpname(tmp, sizeof tmp, "test_ledger_dir/out.txt");
  CHECK(ot_fs_write_atomic("test_ledger_dir/out.txt", "hello", 5) == OT_OK);
  CHECK(!ot_fs_exists(tmp));
  CHECK(ot_fs_read_all("test_ledger_dir/out.txt", &txt, NULL) == OT_OK && !strcmp(txt, "hello"));
  free(txt);
  CHECK(ot_fs_write_atomic("no/such/dir/x.txt", "x", 1) == OT_EIO);
  CHECK_MSG("no/such/dir/x.txt.tmp");
  system("rm -rf test_ledger_dir");
  return ot_test_report();
}
