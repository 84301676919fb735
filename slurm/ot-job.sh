# ot-job.sh: what every slurm/*.sbatch of this project shares. Sourced, not
# run: `. "${OT_SRC_DIR:-${SLURM_SUBMIT_DIR:-.}}/slurm/ot-job.sh"` (sbatch
# runs a copy of the script from Slurm's spool, so the repository is found
# from the submit directory, or OT_SRC_DIR).
#
# Conventions:
# - Submit from the repository root (or set OT_SRC_DIR to it); `--help`
#   instead of CONFIG prints the script's header. Programs are found as
#   ${OT_BUILD_DIR:-build}/stages/<stage>/ot-<stage>, relative to
#   $SLURM_SUBMIT_DIR unless OT_BUILD_DIR is absolute; CONFIG and manifest
#   paths are relative to the job's working directory (the submit dir unless
#   you pass --chdir). Everything after CONFIG goes to the program(s).
# - Ranks and threads come from the allocation: -n N ranks, -c T threads per
#   rank (default 1). OPENBLAS_NUM_THREADS = OMP_NUM_THREADS = T so that
#   ranks x threads = CPUs allocated; the programs that set their threads
#   from the config (train.threads, extract.threads: the default 1 overrides
#   the environment) get T as --set before the user's, in each script.
# - Launch: `srun --mpi=pmix` when Slurm offers the pmix plugin, else
#   `mpirun` (Open MPI reads the allocation from Slurm). OT_LAUNCHER=srun or
#   OT_LAUNCHER=mpirun forces one.
# - Requeue-safe: every script asks for --requeue and --open-mode=append (one
#   log across attempts, each attempt starts with a header line). Every
#   program resumes from its ledger or checkpoint, so a requeued, preempted
#   or resubmitted job continues where it stopped.
# - Time limit: every script asks for USR1 to the batch shell 120 s before it
#   (--signal=B:USR1@120) and requeues the job then, so a job that runs out
#   of time continues in its next attempt instead of ending TIMEOUT (which
#   leaves every --dependency=afterok job waiting forever). train.sbatch
#   first has ot-train checkpoint; the other scripts requeue at once
#   (ot_job_run): their programs keep no state outside the ledger, only the
#   units in progress are redone. An attempt younger than OT_REQUEUE_MIN_RUN
#   seconds (default 300) is not requeued: a time limit too short for any
#   unit to finish would requeue forever; it ends TIMEOUT instead.
# - Exit code: the program's (0 ok, 2 bad usage/config/input, 1 runtime
#   failure), so `sacct`/`scontrol show job` report it as the job's, and
#   `--dependency=afterok:<job>` chains stages; 1 when the launcher exits 0
#   for a program that did not run to its end (ot_job_run).
# - HDF5_USE_FILE_LOCKING defaults to FALSE (NFS, Lustre and GPFS often
#   reject HDF5's locks); set it in the environment to override.

say() { echo "[$OT_JOB] $*" >&2; }

# ot_job_init NAME "$@": the script's name for messages, then its arguments
# (CONFIG [--set key=value ...]). Sets config, args (the rest), ranks,
# threads, the environment and launch (the launcher command, an array).
ot_job_init() {
  OT_JOB=$1
  shift
  if [ "${1:-}" = --help ] || [ "${1:-}" = -h ]; then
    # The script's header comment (the spool copy under sbatch has it too).
    echo "usage: sbatch [sbatch options] slurm/$OT_JOB CONFIG.yaml [--set key=value ...]"
    sed -n '2,/^[^#]/{/^#SBATCH/d;/^#/s/^# \{0,1\}//p}' "$0"
    echo "Shared conventions (launcher, threads, requeue, OT_BUILD_DIR): slurm/ot-job.sh"
    exit 0
  fi
  if [ $# -lt 1 ] || [ "${1#-}" != "$1" ]; then
    say "usage: sbatch [sbatch options] slurm/$OT_JOB CONFIG.yaml [--set key=value ...]"
    exit 2
  fi
  config=$1
  shift
  args=("$@")
  submit_dir=${SLURM_SUBMIT_DIR:-$PWD}
  build=${OT_BUILD_DIR:-build}
  case "$build" in /*) ;; *) build=$submit_dir/$build ;; esac
  threads=${SLURM_CPUS_PER_TASK:-1}
  ranks=${SLURM_NTASKS:-1}
  export OPENBLAS_NUM_THREADS=$threads OMP_NUM_THREADS=$threads
  export HDF5_USE_FILE_LOCKING=${HDF5_USE_FILE_LOCKING:-FALSE}
  local launcher=${OT_LAUNCHER:-auto}
  if [ "$launcher" = auto ]; then
    if srun --mpi=list 2>&1 | grep -qw pmix; then launcher=srun; else launcher=mpirun; fi
  fi
  case "$launcher" in
    srun)
      # srun (Slurm >= 22.05) no longer inherits -c from sbatch: pass it on.
      launch=(srun --mpi=pmix --kill-on-bad-exit=1 --ntasks="$ranks" --cpus-per-task="$threads") ;;
    mpirun)
      if [ "$(id -u)" -eq 0 ]; then
        export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
      fi
      launch=(mpirun -np "$ranks" -x OT_STATUS_FILE)
      # Open MPI binds each rank to one core by default; give threads room.
      [ "$threads" -gt 1 ] && launch+=(--bind-to none) ;;
    *)
      say "error: OT_LAUNCHER=$launcher (use srun, mpirun or auto)"
      exit 2 ;;
  esac
  # From here on (train.sbatch sets its own): USR1 before the time limit requeues.
  trap ot_job_on_usr1 USR1
  say "job ${SLURM_JOB_ID:-?} attempt $((${SLURM_RESTART_COUNT:-0} + 1)) on" \
      "${SLURM_JOB_NODELIST:-$(hostname)}: $ranks ranks x $threads threads, $(date -u +%FT%TZ)"
}

# ot_job_prog STAGE: the path of ot-STAGE in the build (exits 2 if missing).
ot_job_prog() {
  local prog=$build/stages/$1/ot-$1
  if [ ! -x "$prog" ]; then
    say "error: $prog not found or not executable (build the ot-$1 target, or set OT_BUILD_DIR)"
    exit 2
  fi
  echo "$prog"
}

# USR1 in a script that runs ot_job_run: the time limit is near; requeue the
# job now (Slurm then ends this attempt with SIGTERM). Not for train.sbatch,
# whose program must checkpoint first.
ot_job_requeue=0
ot_job_on_usr1() {
  [ "$ot_job_requeue" = 1 ] && return
  local min=${OT_REQUEUE_MIN_RUN:-300}
  if [ -z "${SLURM_JOB_ID:-}" ]; then
    say "USR1 received outside Slurm: ignored"
  elif [ "$SECONDS" -lt "$min" ]; then
    say "USR1 received (time limit near) after ${SECONDS}s of this attempt, under" \
        "OT_REQUEUE_MIN_RUN=${min}s: not requeueing (raise the time limit; rerun the same command to resume)"
  else
    say "USR1 received (time limit near): requeueing job $SLURM_JOB_ID; the next attempt resumes"
    if scontrol requeue "$SLURM_JOB_ID"; then
      ot_job_requeue=1
    else
      say "error: scontrol requeue failed; resubmit the same command to resume"
    fi
  fi
}

# ot_job_run STAGE [extra args before the user's]: launch ot-STAGE over the
# allocation with the config and the user's --set options; returns its exit
# code. The launcher runs in the background (its pid in ot_job_pid, for a
# script's own signal traps): bash runs a trap only between commands, and
# `wait` returns as soon as a trapped signal arrives.
#
# The launcher's exit code alone is not trusted: srun can exit 0 for a step
# that failed to launch (seen with a stale PMIx socket), and the job would end
# COMPLETED having run nothing. The program's rank 0 writes its exit code to
# OT_STATUS_FILE as it ends (on this node: Slurm runs the batch script and
# task 0 on the allocation's first node); a launcher exit 0 without that
# record returns 1.
ot_job_pid=
ot_job_run() {
  local stage=$1
  shift
  local prog
  prog=$(ot_job_prog "$stage") || exit 2
  local cmd=("${launch[@]}" "$prog" --config "$config" "$@" "${args[@]}")
  export OT_STATUS_FILE=${TMPDIR:-/tmp}/ot-job-${SLURM_JOB_ID:-$$}-$stage.status
  rm -f "$OT_STATUS_FILE"
  say "${cmd[*]}"
  "${cmd[@]}" &
  ot_job_pid=$!
  # wait returns early (>128) for a trapped signal: wait again until the
  # launcher is gone; bash keeps its exit status for the last wait.
  while kill -0 "$ot_job_pid" 2>/dev/null; do wait "$ot_job_pid"; done
  wait "$ot_job_pid"
  local rc=$? ran
  ran=$(cat "$OT_STATUS_FILE" 2>/dev/null)
  rm -f "$OT_STATUS_FILE"
  if [ "$rc" = 0 ] && [ -z "$ran" ]; then
    say "error: the launcher exited 0 but ot-$stage did not run to its end (the step failed" \
        "to launch? see the launcher's messages above); rerun the same command to resume"
    return 1
  fi
  [ "$rc" = 0 ] && rc=$ran
  return "$rc"
}
