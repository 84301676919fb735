"""slurm/extract.sbatch on the test cluster (fixture `slurm`), with media made
here by the ffmpeg CLI (4 PNGs and a 2 s MP4), submitted as a user would:
from the source dir, `sbatch -n 2 slurm/extract.sbatch configs/tiny.yaml
--set ...`, with OT_BUILD_DIR pointing at the build dir.

1. srun launch (pmix when offered): job COMPLETED, exit 0, two ranks of one
   MPI world, index.json lists every manifest line as an item, the shards
   hold exactly the manifest ids with frames of shape [T,H,W,3].
2. mpirun launch (OT_LAUNCHER=mpirun), and 1 rank x 2 threads (-c 2):
   same result, byte-identical frames.
3. bad --set: job FAILED with the program's exit code 2 and its message.
4. requeue: `scontrol requeue` once the first shards are in the ledger; the
   job runs again (Restarts=1), resumes from the ledger and completes with
   every line extracted exactly once, each item's frames equal to those of
   its media file in run 1.
5. USR1 to the batch shell mid-run (what --signal=B:USR1@120 sends before the
   time limit): the script requeues the job (Restarts=1), which resumes from
   the ledger and completes, every line once. Without that, the shell died
   of the signal and the job ended FAILED with half a dataset. An attempt
   younger than OT_REQUEUE_MIN_RUN seconds is not requeued (a time limit too
   short for any unit would requeue forever): the job goes on, Restarts=0.
6. `bash slurm/extract.sbatch --help` from another directory: the script's
   header, exit 0. Submitted from another directory: FAILED with exit 2 and a
   message saying to submit from the repository root or set OT_SRC_DIR;
   with OT_SRC_DIR set: COMPLETED.
7. A launch that exits 0 without the program having run (what srun did for
   a step whose PMIx setup failed), played by an OT_BUILD_DIR whose
   ot-extract exits 0 at once: the job ends FAILED (1), saying so, instead
   of COMPLETED with nothing done. The real runs above left no status file.

usage: test_extract_sbatch.py SOURCE_DIR BUILD_DIR OT_EXTRACT CLUSTER_DIR WORKDIR
"""
import json
import os
import re
import shutil
import subprocess
import sys
import time

import h5py

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from ot_testlib import check, summary  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "slurm"))
import ot_slurm  # noqa: E402
from ot_slurm import ENV, diagnose, job_info, job_log, run, wait_final  # noqa: E402,F401

SRC, BUILD, OT_EXTRACT, CLUSTER, WORK = sys.argv[1:6]
ot_slurm.setup(CLUSTER, BUILD, WORK)
T, H, W = 4, 32, 32  # configs/tiny.yaml


def submit(manifest, out, *extra, launcher=None, alloc=("-n", "2"), env=None):
    if launcher:
        ENV["OT_LAUNCHER"] = launcher
    saved = dict(ENV)
    ENV.update(env or {})
    cmd = ["sbatch", "--parsable", *alloc, "-o", os.path.join(WORK, "job-%j.out"),
           "slurm/extract.sbatch", "configs/tiny.yaml", "--set", "data.train=" + manifest,
           "--set", "data.dir=" + out, "--set", "extract.shard_items=2", *extra]
    r = run(cmd, cwd=SRC)
    ENV.clear()
    ENV.update(saved)
    ENV.pop("OT_LAUNCHER", None)
    if r.returncode != 0:
        raise SystemExit("sbatch failed: " + r.stderr)
    return r.stdout.strip().split(";")[0]


def make_media():
    """4 PNGs of different sizes and a 2 s H.264 clip with one keyframe (so
    sampling decodes most of it: the requeue run needs work that lasts)."""
    media = os.path.join(WORK, "media")
    os.makedirs(media, exist_ok=True)
    ff = ["ffmpeg", "-v", "error", "-y", "-f", "lavfi"]
    files = []
    for i, (w, h) in enumerate([(64, 48), (100, 80), (37, 53), (160, 90)]):
        path = os.path.join(media, "img%d.png" % i)
        subprocess.run(ff + ["-i", "testsrc2=s=%dx%d:d=1" % (w, h), "-frames:v", "1", path], check=True)
        files.append(path)
    clip = os.path.join(media, "clip.mp4")
    subprocess.run(ff + ["-i", "testsrc2=s=640x360:r=30:d=2", "-c:v", "libx264", "-preset", "veryfast",
                         "-pix_fmt", "yuv420p", "-g", "60", clip], check=True)
    files.append(clip)
    return files


def write_manifest(name, paths):
    """One line per path (relative to the manifest); returns (path, ids)."""
    lines, ids = [], []
    for n, p in enumerate(paths):
        ids.append("%s-%d" % (os.path.basename(p), n))
        lines.append(json.dumps({"id": ids[-1], "path": os.path.join("media", os.path.basename(p)),
                                 "title": "item %d" % n, "tags": ["test", "slurm"]}))
    path = os.path.join(WORK, name)
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path, ids


def load_items(out):
    """index.json and {id: frames bytes} over the shards it lists."""
    split = os.path.join(out, "train")
    idx = json.load(open(os.path.join(split, "index.json")))
    items = {}
    for sh in idx["shards"]:
        with h5py.File(os.path.join(split, sh["shard"]), "r") as f:
            check(f["frames"].shape[1:] == (T, H, W, 3), "frames [T,H,W,3] in " + sh["shard"])
            for i, raw in enumerate(f["id"][:]):
                key = raw.decode()
                check(key not in items, "id %s in two shards" % key)
                items[key] = f["frames"][i].tobytes()
    return idx, items


def check_complete(out, ids, what):
    """index.json lists every manifest line as an item; the shards hold them."""
    idx, items = load_items(out)
    n = len(ids)
    check(idx["lines"] == n and idx["items"] == n and idx["errors"] == 0,
          "%s: index.json lines/items/errors = %d/%d/%d, want %d/%d/0"
          % (what, idx["lines"], idx["items"], idx["errors"], n, n))
    check(sum(s["items"] for s in idx["shards"]) == n, what + ": shard item counts add up")
    check(sorted(items) == sorted(ids), what + ": shards hold exactly the manifest ids")
    return items


def completed_ok(job, info, what):
    ok = check(info.get("JobState") == "COMPLETED" and info.get("ExitCode") == "0:0",
               "%s: job %s COMPLETED with 0:0 (got %s %s)"
               % (what, job, info.get("JobState"), info.get("ExitCode")))
    if not ok:
        diagnose(job)
    return ok


def main():
    check(os.access(os.path.join(BUILD, "stages", "extract", "ot-extract"), os.X_OK)
          and os.path.samefile(os.path.join(BUILD, "stages", "extract", "ot-extract"), OT_EXTRACT),
          "ot-extract is where extract.sbatch looks for it")
    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(WORK)
    files = make_media()
    small, small_ids = write_manifest("small.jsonl", files + files[:1])
    t0 = time.time()

    # 1. srun (or the mpirun fallback when the cluster has no pmix).
    out1 = os.path.join(WORK, "out-srun")
    job = submit(small, out1)
    info = wait_final(job, 60)
    if completed_ok(job, info, "srun"):
        log = job_log(job)
        check("attempt 1" in log and "2 ranks x 1 threads" in log, "srun: script header in the log")
        check("[ot-extract 0/2]" in log and "[ot-extract 1/2]" in log,
              "srun: ranks 0 and 1 of one 2-rank MPI world")
        items1 = check_complete(out1, small_ids, "srun")
    else:
        return 1
    frames_of = {}  # media file -> frames, from run 1
    for key, frames in items1.items():
        frames_of[key.rsplit("-", 1)[0]] = frames

    # 2. mpirun launch.
    out2 = os.path.join(WORK, "out-mpirun")
    job = submit(small, out2, launcher="mpirun")
    info = wait_final(job, 60)
    if completed_ok(job, info, "mpirun"):
        log = job_log(job)
        check("mpirun -np 2" in log and "[ot-extract 1/2]" in log, "mpirun: 2-rank launch")
        items2 = check_complete(out2, small_ids, "mpirun")
        check(items2 == items1, "mpirun and srun runs give identical frames")

    # 2b. One rank with 2 threads: -c reaches srun and the decoder threads.
    out2b = os.path.join(WORK, "out-threads")
    job = submit(small, out2b, alloc=("-n", "1", "-c", "2"))
    info = wait_final(job, 60)
    if completed_ok(job, info, "-n 1 -c 2"):
        log = job_log(job)
        check("1 ranks x 2 threads" in log and "extract.threads=2" in log, "-c 2: 2 threads per rank")
        check(check_complete(out2b, small_ids, "-n 1 -c 2") == items1, "-c 2: identical frames")

    # 3. A config error is the job's exit code.
    job = submit(small, os.path.join(WORK, "out-bad"), "--set", "extract.frames=lots")
    info = wait_final(job, 60)
    check(info.get("JobState") == "FAILED" and info.get("ExitCode") == "2:0",
          "bad --set: job FAILED with exit 2 (got %s %s)" % (info.get("JobState"), info.get("ExitCode")))
    check("extract.frames" in job_log(job), "bad --set: the program's message is in the job log")

    # 4. Requeue mid-run: 240 lines, 120 units of 2 lines.
    paths = [files[4] if k % 6 else files[(k // 6) % 4] for k in range(240)]
    big, big_ids = write_manifest("big.jsonl", paths)
    out4 = os.path.join(WORK, "out-requeue")
    ledger = os.path.join(out4, "train", "ledger")
    job = submit(big, out4)
    n_units = 120

    def units_done():
        return len([f for f in os.listdir(ledger) if f.startswith("unit-") and f.endswith(".json")]) if os.path.isdir(ledger) else 0

    deadline = time.time() + 60
    while time.time() < deadline and units_done() < 4 and job_info(job).get("JobState") in ("PENDING", "RUNNING"):
        time.sleep(0.05)
    before = units_done()
    r = run(["scontrol", "requeue", job])
    check(r.returncode == 0, "scontrol requeue accepted: " + r.stderr.strip())
    check(0 < before < n_units, "requeued mid-run (%d of %d units done)" % (before, n_units))

    info = wait_final(job, 120)  # releases the requeued job's BeginTime wait
    if completed_ok(job, info, "requeue"):
        log = job_log(job)
        check(info.get("Restarts") == "1", "requeue: Restarts=1 (got %s)" % info.get("Restarts"))
        check("attempt 1" in log and "attempt 2" in log, "requeue: both attempts in the appended log")
        m = re.search(r"resuming: (\d+) of (\d+) lines already extracted", log)
        check(m is not None and 0 < int(m.group(1)) < 240 and m.group(2) == "240",
              "requeue: second attempt resumed from the ledger (%s)" % (m.group(0) if m else "no message"))
        items4 = check_complete(out4, big_ids, "requeue")
        bad = [k for k, v in items4.items() if v != frames_of.get(k.rsplit("-", 1)[0])]
        check(not bad, "requeue: every item's frames equal its media file's (differ: %s)" % bad[:5])

    # 5. USR1 before the time limit: the script requeues, the next attempt resumes.
    def usr1_mid_run(name, env):
        out = os.path.join(WORK, name)
        led = os.path.join(out, "train", "ledger")
        job = submit(big, out, env=env)
        deadline = time.time() + 60
        while time.time() < deadline and job_info(job).get("JobState") in ("PENDING", "RUNNING") and (
                not os.path.isdir(led) or len([f for f in os.listdir(led) if f.startswith("unit-")]) < 4):
            time.sleep(0.05)
        r = run(["scancel", "-s", "USR1", "-b", job])
        check(r.returncode == 0, "%s: scancel -s USR1 -b accepted: %s" % (name, r.stderr.strip()))
        info = wait_final(job, 120)
        return out, job, info, job_log(job)

    out5, job, info, log = usr1_mid_run("out-usr1", {"OT_REQUEUE_MIN_RUN": "0"})
    if completed_ok(job, info, "USR1"):
        check("USR1 received (time limit near): requeueing job" in log and info.get("Restarts") == "1"
              and "attempt 2" in log, "USR1: the script requeued the job (Restarts=%s)" % info.get("Restarts"))
        m = re.search(r"resuming: (\d+) of (\d+) lines already extracted", log)
        check(m is not None and 0 < int(m.group(1)) < 240,
              "USR1: second attempt resumed from the ledger (%s)" % (m.group(0) if m else "no message"))
        items5 = check_complete(out5, big_ids, "USR1")
        bad = [k for k, v in items5.items() if v != frames_of.get(k.rsplit("-", 1)[0])]
        check(not bad, "USR1: every item's frames equal its media file's (differ: %s)" % bad[:5])

    out6, job, info, log = usr1_mid_run("out-usr1-young", {})
    if completed_ok(job, info, "USR1, young attempt"):
        check("not requeueing" in log and info.get("Restarts") == "0" and "attempt 2" not in log,
              "USR1 in an attempt under OT_REQUEUE_MIN_RUN: no requeue, the job went on")
        check_complete(out6, big_ids, "USR1, young attempt")

    # 6. --help, and a submission from outside the repository.
    script = os.path.join(SRC, "slurm", "extract.sbatch")
    r = subprocess.run(["bash", script, "--help"], cwd="/", capture_output=True, text=True)
    check(r.returncode == 0 and "usage: sbatch" in r.stdout and "requeues the job" in r.stdout,
          "--help: the script's header, exit 0 (got exit %d: %s)" % (r.returncode, (r.stdout + r.stderr)[-300:]))
    elsewhere = ["sbatch", "--parsable", "-n", "1", "-o", os.path.join(WORK, "job-%j.out"), script,
                 os.path.join(SRC, "configs", "tiny.yaml"), "--set", "data.train=" + small,
                 "--set", "data.dir=" + os.path.join(WORK, "out-elsewhere")]
    job = run(elsewhere, cwd=WORK).stdout.strip().split(";")[0]
    info = wait_final(job, 60)
    check(info.get("ExitCode") == "2:0" and "submit from the repository root, or set OT_SRC_DIR" in job_log(job),
          "submitted from elsewhere: exit 2 saying how to submit (got %s: %s)" % (info.get("ExitCode"), job_log(job)[-200:]))
    ENV["OT_SRC_DIR"] = SRC
    job = run(elsewhere, cwd=WORK).stdout.strip().split(";")[0]
    ENV.pop("OT_SRC_DIR")
    info = wait_final(job, 60)
    if completed_ok(job, info, "submitted from elsewhere with OT_SRC_DIR"):
        check_complete(os.path.join(WORK, "out-elsewhere"), small_ids, "OT_SRC_DIR")

    # 7. The launcher says 0, the program never ran to its end.
    fake = os.path.join(WORK, "fake-build", "stages", "extract")
    os.makedirs(fake)
    with open(os.path.join(fake, "ot-extract"), "w") as f:
        f.write("#!/bin/sh\nexit 0\n")
    os.chmod(os.path.join(fake, "ot-extract"), 0o755)
    job = submit(small, os.path.join(WORK, "out-fake"), env={"OT_BUILD_DIR": os.path.dirname(os.path.dirname(fake))})
    info = wait_final(job, 60)
    log = job_log(job)
    check(info.get("JobState") == "FAILED" and info.get("ExitCode") == "1:0"
          and "did not run to its end" in log,
          "launch exit 0 without the program's exit record: FAILED 1 (got %s %s: %s)"
          % (info.get("JobState"), info.get("ExitCode"), log[-300:]))
    left = [f for f in os.listdir(os.environ.get("TMPDIR", "/tmp")) if f.startswith("ot-job-") and f.endswith(".status")]
    check(not left, "no status file left behind (%s)" % left)
    return summary("slurm extract (%.0fs)" % (time.time() - t0))


if __name__ == "__main__":
    sys.exit(main())
