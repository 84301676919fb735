#!/usr/bin/env bash
# Start a private single-node Slurm cluster for tests: munge + slurmctld +
# slurmd, all state, logs and pid files under DIR, on free ports so several
# clusters (several build dirs) can run side by side on one machine.
#
# usage: slurm-up.sh DIR
#   Writes DIR/slurm.conf and DIR/env.sh, waits (bounded) until the node is
#   idle and prints the export lines; then `. DIR/env.sh` and use sbatch,
#   squeue, scontrol, scancel as usual. Stop with slurm-down.sh DIR.
#   A harness still running in DIR is stopped first; job state starts empty.
#
# Needs root and no systemd (CI containers): the daemons run as root
# (SlurmUser=root) and munged as user munge. Installs slurm-wlm and munge
# with apt-get if they are missing. munged is shared by every cluster on the
# machine and is left running by slurm-down.sh.
#
# Environment: OT_SLURM_WAIT seconds to wait for the node (default 60).
#
# For test writers: there is no slurmdbd (no sacct); `scontrol show job -o ID`
# keeps a finished job's JobState/ExitCode/Restarts for 10 min and
# DIR/log/jobcomp.txt records every finished job. A requeued job waits ~2 min
# (Reason=BeginTime) before it may run again: `scontrol update jobid=ID
# StartTime=now` releases it.
set -euo pipefail

die() { echo "slurm-up: $*" >&2; exit 1; }
[ $# -eq 1 ] || die "usage: slurm-up.sh DIR"
[ "$(id -u)" -eq 0 ] || die "needs root (the test cluster runs its daemons as root)"
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$1"
DIR=$(cd "$1" && pwd)
CONF=$DIR/slurm.conf
WAIT=${OT_SLURM_WAIT:-60}

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null ||
   ! command -v sbatch >/dev/null || ! command -v munged >/dev/null; then
  echo "slurm-up: installing slurm-wlm munge" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
fi

# A previous cluster in DIR: stop it, then start from clean state.
"$here/slurm-down.sh" "$DIR"
rm -rf "$DIR/state" "$DIR/spool" "$DIR/log"
mkdir -p "$DIR/state" "$DIR/spool" "$DIR/log" "$DIR/tmp"

# --- munge: one daemon per machine, started only if none answers ----------
start_munge() {
  install -d -o munge -g munge -m 0700 /etc/munge /var/lib/munge /var/log/munge
  install -d -o munge -g munge -m 0755 /run/munge
  if [ ! -s /etc/munge/munge.key ]; then
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
  fi
  chown munge:munge /etc/munge/munge.key
  chmod 0400 /etc/munge/munge.key
  # A stale socket from a killed munged makes the new one refuse to start.
  rm -f /run/munge/munge.socket.2 /run/munge/munge.socket.2.lock
  runuser -u munge -- munged </dev/null >>"$DIR/log/munged.out" 2>&1 ||
    die "munged failed to start: $(tail -5 "$DIR/log/munged.out" /var/log/munge/munged.log 2>/dev/null)"
}
munge_ok() { munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; }
if ! munge_ok; then
  start_munge
  for _ in $(seq 50); do munge_ok && break; sleep 0.1; done
  munge_ok || die "munge does not answer after starting munged (see /var/log/munge/munged.log)"
fi

# --- slurm.conf ------------------------------------------------------------
free_port() {
  /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("", 0)); print(s.getsockname()[1])'
}
ctld_port=$(free_port)
slurmd_port=$(free_port)
while [ "$slurmd_port" = "$ctld_port" ]; do slurmd_port=$(free_port); done
# The node as slurmd sees it: its own name for this host (it looks itself up
# by that name in the config) and the hardware, so it registers without a
# mismatch (CPUs, sockets, cores, threads); memory is not scheduled.
node=$(slurmd -C | head -1)
host=$(printf '%s\n' "$node" | tr ' ' '\n' | sed -n 's/^NodeName=//p')
hw=$(printf '%s\n' "$node" | tr ' ' '\n' | grep -E '^(CPUs|Boards|SocketsPerBoard|CoresPerSocket|ThreadsPerCore)=' | tr '\n' ' ')
{ [ -n "$host" ] && [ -n "$hw" ]; } || die "slurmd -C printed no node description: $node"

cat >"$CONF" <<EOF
# Written by tests/slurm/slurm-up.sh: a private single-node test cluster.
ClusterName=ot$(printf '%s' "$DIR" | cksum | cut -c1-8)
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
# pmix keeps per-step folders under TmpFS; a private one keeps two test
# clusters (whose job ids both start at 1) from colliding in /tmp.
TmpFS=$DIR/tmp
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
JobRequeue=1
# No slurmdbd: a finished job stays visible to scontrol for MinJobAge
# seconds, and every finished job is also appended to the jobcomp file.
MinJobAge=600
JobCompType=jobcomp/filetxt
JobCompLoc=$DIR/log/jobcomp.txt
# Short grace between SIGTERM and SIGKILL, so requeue and cancel are quick.
KillWait=5
NodeName=$host NodeAddr=127.0.0.1 $hw State=UNKNOWN
PartitionName=test Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF

cat >"$DIR/env.sh" <<EOF
export SLURM_CONF=$CONF
export OT_SLURM_DIR=$DIR
EOF
export SLURM_CONF=$CONF

# --- daemons ---------------------------------------------------------------
# Started detached with stdio on files: ctest waits for its pipes to close.
log_tails() {
  for f in "$DIR/log/slurmctld.log" "$DIR/log/slurmd.log" "$DIR/log/slurmctld.out" "$DIR/log/slurmd.out"; do
    [ -s "$f" ] && { echo "--- $f (tail)"; tail -n 20 "$f"; }
  done >&2
  return 0
}
fail() { echo "slurm-up: $*" >&2; log_tails; "$here/slurm-down.sh" "$DIR" || true; exit 1; }

setsid slurmctld -f "$CONF" </dev/null >>"$DIR/log/slurmctld.out" 2>&1 || fail "slurmctld failed to start"
setsid slurmd -f "$CONF" </dev/null >>"$DIR/log/slurmd.out" 2>&1 || fail "slurmd failed to start"

state=""
deadline=$((SECONDS + WAIT))
while [ $SECONDS -lt $deadline ]; do
  state=$(sinfo -h -n "$host" -o %t 2>/dev/null | head -1 || true)
  case "$state" in
    idle) break ;;
    down*|drain*) scontrol update nodename="$host" state=resume >/dev/null 2>&1 || true ;;
  esac
  sleep 0.5
done
[ "$state" = idle ] || fail "node $host not idle after ${WAIT}s (state '${state:-none}')"

echo "slurm-up: cluster in $DIR is up (node $host, ports $ctld_port/$slurmd_port)" >&2
cat "$DIR/env.sh"
