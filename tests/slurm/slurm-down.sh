#!/usr/bin/env bash
# Stop the test cluster started by slurm-up.sh DIR: cancel its jobs (so no
# slurmstepd or rank outlives it), then stop slurmd and slurmctld by their
# pid files. munged is shared and left running. Safe to call when nothing
# runs; keeps DIR (logs, jobcomp record) for inspection.
#
# usage: slurm-down.sh DIR
set -uo pipefail

[ $# -eq 1 ] || { echo "usage: slurm-down.sh DIR" >&2; exit 1; }
DIR=$1
CONF=$DIR/slurm.conf

# pid from DIR/NAME.pid if that process is alive and is a NAME daemon.
daemon_pid() {
  local f=$DIR/$1.pid pid comm
  [ -s "$f" ] || return 1
  pid=$(tr -dc 0-9 <"$f")
  [ -n "$pid" ] && [ -r "/proc/$pid/comm" ] || return 1
  comm=$(cat "/proc/$pid/comm" 2>/dev/null) || return 1
  case "$comm" in "$1"*) echo "$pid" ;; *) return 1 ;; esac
}

stop() {
  local pid
  pid=$(daemon_pid "$1") || { rm -f "$DIR/$1.pid"; return 0; }
  kill -TERM "$pid" 2>/dev/null
  for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "slurm-down: $1 ($pid) ignored SIGTERM for 10s, killing it" >&2
    kill -KILL "$pid" 2>/dev/null
  fi
  rm -f "$DIR/$1.pid"
}

if [ -f "$CONF" ] && daemon_pid slurmctld >/dev/null; then
  export SLURM_CONF=$CONF
  jobs=$(squeue -h -o %i 2>/dev/null || true)
  if [ -n "$jobs" ]; then
    # shellcheck disable=SC2086
    scancel $jobs 2>/dev/null || true
    for _ in $(seq 150); do
      [ -z "$(squeue -h -o %i 2>/dev/null)" ] && break
      sleep 0.2
    done
  fi
fi
stop slurmd
stop slurmctld
exit 0
