#!/usr/bin/env bash
# Every job file shipped in jobs/ loads: ot-run --dry-run (which checks each
# step's config against the schema and writes nothing) exits 0 and plans as
# many steps as the file lists. A misspelt key in a job nobody runs in CI
# (the full and seed jobs take hours) fails here instead of after hours.
# usage: job_files.sh OT_RUN REPO
set -u
OT_RUN=$1
cd "$2"
fail=0
for job in jobs/*.yaml; do
  want=$(grep -c '^ *- {name:' "$job")
  out=$("$OT_RUN" --dry-run "$job" 2>&1)
  rc=$?
  got=$(printf '%s\n' "$out" | sed -n 's/^job .*: \([0-9]*\) step(s),.*/\1/p')
  if [ "$rc" -ne 0 ] || [ "$got" != "$want" ]; then
    echo "FAIL $job: exit $rc, $got step(s) planned, $want in the file"
    printf '%s\n' "$out" | tail -5
    fail=1
  else
    echo "ok   $job: $got step(s)"
  fi
done
exit $fail
