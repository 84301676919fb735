"""slurm/train.sbatch on the test cluster (fixture `slurm`), submitted as a
user would from the source dir: `sbatch -n 2 slurm/train.sbatch
configs/tiny.yaml --set ...`, with OT_BUILD_DIR pointing at the build dir and
the tiny dataset of tiny_data.py (extracted here with ot-extract).

1. A 2-rank run to the end: COMPLETED 0:0, final.h5 at the last step, one
   loss per step in metrics.jsonl. It is the reference of 2 and 3.
2. `scontrol requeue` mid-run: ot-train gets SIGTERM, checkpoints, the job
   runs again (Restarts=1) and resumes from that checkpoint (not step 0);
   its losses are bit-identical to run 1's.
3. USR1 to the batch shell (what --signal=B:USR1@120 sends before the time
   limit): the script forwards it, ot-train checkpoints and exits 75, the
   script requeues the job, which resumes and completes — bit-identical.
4. USR1 to the job's steps only (scancel without -b): the same, though the
   script never saw the signal.
5. A bad --set: job FAILED with exit code 2 and the message in its log.

usage: test_train_sbatch.py SOURCE_DIR BUILD_DIR OT_TRAIN OT_EXTRACT CLUSTER_DIR WORKDIR
"""
import os
import re
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tiny_data  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from ot_testlib import check, summary  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "slurm"))
import ot_slurm  # noqa: E402
from ot_slurm import diagnose, job_info, job_log, run, wait_final  # noqa: E402

SRC, BUILD, OT_TRAIN, OT_EXTRACT, CLUSTER, WORK = sys.argv[1:7]
ot_slurm.setup(CLUSTER, BUILD, WORK)
SETS = tiny_data.TINY_SETS + ["train.steps=600", "train.ckpt_every=25", "train.eval_every=50",
                              "train.log_every=50"]


def submit(data, train_dir, *extra):
    cmd = ["sbatch", "--parsable", "-n", "2", "-o", os.path.join(WORK, "job-%j.out"), "slurm/train.sbatch",
           "configs/tiny.yaml", "--set", "data.dir=" + data, "--set", "train.dir=" + train_dir]
    cmd += tiny_data.set_args(SETS + list(extra))
    r = run(cmd, cwd=SRC)
    if r.returncode != 0:
        raise SystemExit("sbatch failed: " + r.stderr)
    return r.stdout.strip().split(";")[0]


def completed_ok(job, info, what):
    ok = check(info.get("JobState") == "COMPLETED" and info.get("ExitCode") == "0:0",
               "%s: job %s COMPLETED with 0:0 (got %s %s)" % (what, job, info.get("JobState"), info.get("ExitCode")))
    if not ok:
        diagnose(job)
    return ok


def latest_step(train_dir):
    try:
        m = re.match(r"ckpt-(\d+)\.h5", open(os.path.join(train_dir, "latest")).read())
        return int(m.group(1)) if m else -1
    except OSError:
        return -1


def same_losses(ref, d, what):
    rt, rv = tiny_data.read_metrics(ref)
    kt, kv = tiny_data.read_metrics(d)
    n_lines = sum(1 for _ in open(os.path.join(d, "metrics.jsonl")))
    check(n_lines == len(kt) + len(kv) and sorted(kt) == list(range(1, 601)), what + ": each step logged once")
    differ = [s for s in rt if s not in kt or kt[s]["_raw"] != rt[s]["_raw"]]
    check(not differ, what + ": losses bit-identical to the uninterrupted job (differ at %s)" % differ[:5])


def interrupted(data, name, interrupt):
    """Submit, call interrupt(job) once a checkpoint of step >= 50 exists,
    wait for the end; the job's fields, log and resume step."""
    d = os.path.join(WORK, name)
    job = submit(data, d)
    deadline = time.time() + 90
    while time.time() < deadline and latest_step(d) < 50 and job_info(job).get("JobState") in ("PENDING", "RUNNING"):
        time.sleep(0.01)
    before = latest_step(d)
    interrupt(job)
    info = wait_final(job, 150)
    log = job_log(job)
    m = re.search(r"resuming from \S*ckpt-(\d+)\.h5 at step (\d+)", log)
    at = int(m.group(2)) if m else -1
    check(50 <= before < 600, "%s: interrupted mid-run (latest checkpoint %d)" % (name, before))
    return d, job, info, log, at, before


def main():
    check(os.path.samefile(os.path.join(BUILD, "stages", "train", "ot-train"), OT_TRAIN),
          "ot-train is where train.sbatch looks for it")
    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(WORK)
    t0 = time.time()
    data = tiny_data.make(WORK, OT_EXTRACT, os.path.join(SRC, "configs", "tiny.yaml"))

    # 1. To the end.
    ref = os.path.join(WORK, "ref")
    job = submit(data, ref)
    info = wait_final(job, 120)
    if not completed_ok(job, info, "uninterrupted"):
        return 1
    log = job_log(job)
    check("attempt 1" in log and "2 ranks x 1 threads" in log and "train.threads=1" in log,
          "uninterrupted: script header, threads from -c")
    if not check("on 2 ranks" in log and "done: 600 steps" in log, "uninterrupted: 2 ranks, 600 steps"):
        diagnose(job)  # e.g. srun's step launch failed (srun then exits 0)
        return 1
    check(os.path.exists(os.path.join(ref, "final.h5")) and latest_step(ref) == -1 and
          open(os.path.join(ref, "latest")).read().strip() == "final.h5", "uninterrupted: final.h5 is the latest")

    # 2. scontrol requeue: SIGTERM, checkpoint, next attempt resumes.
    def requeue(job):
        r = run(["scontrol", "requeue", job])
        check(r.returncode == 0, "scontrol requeue accepted: " + r.stderr.strip())

    d, job, info, log, at, before = interrupted(data, "requeued", requeue)
    if completed_ok(job, info, "requeue"):
        check(info.get("Restarts") == "1" and "attempt 2" in log, "requeue: Restarts=1, two attempts in the log")
        check(at >= before, "requeue: attempt 2 resumed from its checkpoint at step %d (not 0; latest "
                            "before the requeue was %d)" % (at, before))
        check("stopped by SIGTERM" in log, "requeue: ot-train checkpointed on SIGTERM")
        same_losses(ref, d, "requeue")

    # 3. USR1 to the batch shell, as --signal=B:USR1@120 sends it.
    def usr1(job):
        r = run(["scancel", "-s", "USR1", "-b", job])
        check(r.returncode == 0, "scancel -s USR1 -b accepted: " + r.stderr.strip())

    d, job, info, log, at, before = interrupted(data, "usr1", usr1)
    if completed_ok(job, info, "USR1"):
        m = re.search(r"stopped by SIGUSR1 at step (\d+)", log)
        stopped = int(m.group(1)) if m else -1
        check("USR1 received" in log and "requeueing job" in log and info.get("Restarts") == "1",
              "USR1: forwarded, job requeued by the script")
        check(stopped >= before and at == stopped, "USR1: resumed at the stop step %d (got %d)" % (stopped, at))
        same_losses(ref, d, "USR1")

    # 4. USR1 to the job's steps only (`scancel -s USR1 <job>`, no -b): ot-train
    # gets it, the script does not. ot-train's exit 75 still has the script
    # requeue; it used to exit 0 and the job ended COMPLETED half-trained
    # (afterok jobs then ran on that model).
    def usr1_steps(job):
        r = run(["scancel", "-s", "USR1", job])
        check(r.returncode == 0, "scancel -s USR1 accepted: " + r.stderr.strip())

    d, job, info, log, at, before = interrupted(data, "usr1-steps", usr1_steps)
    if completed_ok(job, info, "USR1 to the steps"):
        m = re.search(r"stopped by SIGUSR1 at step (\d+)", log)
        stopped = int(m.group(1)) if m else -1
        check("USR1 received" not in log and "requeueing job" in log and info.get("Restarts") == "1",
              "USR1 to the steps: the script requeued the job (Restarts=%s)" % info.get("Restarts"))
        check(stopped >= before and at == stopped,
              "USR1 to the steps: resumed at the stop step %d (got %d)" % (stopped, at))
        same_losses(ref, d, "USR1 to the steps")

    # 5. A config error is the job's exit code.
    job = submit(data, os.path.join(WORK, "bad"), "train.batch=zero")
    info = wait_final(job, 60)
    check(info.get("JobState") == "FAILED" and info.get("ExitCode") == "2:0",
          "bad --set: job FAILED with exit 2 (got %s %s)" % (info.get("JobState"), info.get("ExitCode")))
    check("train.batch" in job_log(job), "bad --set: the message is in the job log")
    return summary("slurm train (%.0fs)" % (time.time() - t0))


if __name__ == "__main__":
    sys.exit(main())
