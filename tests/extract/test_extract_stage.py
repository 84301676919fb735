"""ot-extract's failures of the job (not of an item) on media made by the
ffmpeg CLI, no emoji data needed: the message that reaches the user names
what failed.

  index_write  1 rank: rank 0 cannot write the split's errors.jsonl again (a
               folder stands in its way): the error names that file, not "rank 0
               failed ...; see its log" (a log that never said it).
  rank_local   mpirun, 2 ranks (MPMD, each in its own working folder): the
               relative extract.features file exists only in rank 0's
               folder, so only rank 1 fails to open it: the error names the
               file, not an empty message.
  start_over   ot-run starts a finished extract step over and the start-over
               fails half-way: the earlier run's index.json is gone.

usage: test_extract_stage.py CASE OT_EXTRACT MPIEXEC WORKDIR [OT_RUN]
"""
import json
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from ot_testlib import check, mpi_command, summary  # noqa: E402

CASE, OT_EXTRACT, MPIEXEC, WORK = sys.argv[1:5]
OT_EXTRACT = os.path.abspath(OT_EXTRACT)
WORK = os.path.join(os.path.abspath(WORK), CASE)


def inputs():
    """Three small images and a manifest naming them; returns its path."""
    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(WORK)
    lines = []
    for i, colour in enumerate(["red", "green", "blue"]):
        path = os.path.join(WORK, "img%d.png" % i)
        subprocess.run([os.environ.get("FFMPEG", "ffmpeg"), "-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-f", "lavfi",
                        "-i", "color=%s:s=40x30" % colour, "-frames:v", "1", path], check=True)
        lines.append(json.dumps({"id": "item-%d" % i, "path": path, "tags": [colour]}))
    manifest = os.path.join(WORK, "train.jsonl")
    with open(manifest, "w") as f:
        f.write("\n".join(lines) + "\n")
    return manifest


def args(manifest, out, *extra):
    config = os.path.join(WORK, "config.yaml")
    with open(config, "w") as f:
        f.write("data:\n  train: %s\n  dir: %s\nextract:\n  frames: 2\n  height: 16\n  width: 16\n"
                "  shard_items: 2\n" % (manifest, out))
    return [OT_EXTRACT, "--config", config, *extra]


def case_index_write():
    manifest = inputs()
    out = os.path.join(WORK, "data")
    # every shard done, the outputs to write again: a folder where errors.jsonl goes
    p = subprocess.run(args(manifest, out), capture_output=True, text=True)
    check(p.returncode == 0, "first run (%d): %s" % (p.returncode, p.stderr[-300:]))
    for name in ("index.json", "errors.jsonl"):
        os.remove(os.path.join(out, "train", name))
    os.makedirs(os.path.join(out, "train", "errors.jsonl"))
    p = subprocess.run(args(manifest, out), capture_output=True, text=True)
    err = "\n".join(l for l in p.stderr.splitlines() if "ot-extract: error:" in l)
    check(p.returncode == 1, "exit 1 (%d)" % p.returncode)
    check("errors.jsonl" in err and "see its log" not in err,
          "the error names errors.jsonl: %r" % err)
    # the shards are done: once the way is clear, a rerun only writes the index
    os.rmdir(os.path.join(out, "train", "errors.jsonl"))
    p = subprocess.run(args(manifest, out), capture_output=True, text=True)
    check(p.returncode == 0 and "resuming: 3 of 3 lines" in p.stderr, "rerun resumes: %s" % p.stderr[-300:])
    index = os.path.join(out, "train", "index.json")
    check(os.path.exists(index) and json.load(open(index))["items"] == 3, "3 items after the rerun")


def case_rank_local():
    import h5py
    import numpy as np
    manifest = inputs()
    out = os.path.join(WORK, "data")
    here, there = os.path.join(WORK, "rank0"), os.path.join(WORK, "rank1")
    os.makedirs(here)
    os.makedirs(there)
    with h5py.File(os.path.join(here, "feat.h5"), "w") as f:
        f.create_dataset("id", data=["item-%d" % i for i in range(3)], dtype=h5py.string_dtype())
        f.create_dataset("features", data=np.ones((3, 2, 4), dtype=np.float32))
    a = args(manifest, out, "--set", "extract.features=feat.h5")
    mpi = mpi_command(MPIEXEC)
    cmd = mpi + ["-np", "1", "--wdir", here] + a + [":", "-np", "1", "--wdir", there] + a
    p = subprocess.run(cmd, capture_output=True, text=True)
    lines = [l for l in p.stderr.splitlines() if "ot-extract: error:" in l]
    check(p.returncode == 2, "exit 2 (%d): %s" % (p.returncode, p.stderr[-500:]))
    check(len(lines) == 1 and "feat.h5" in lines[0] and "extract.features" in lines[0],
          "the error names rank 1's unreadable extract.features file: %r" % lines)


def case_start_over(ot_run):
    """ot-run starts the step over (its config changed) and the start-over
    fails at the second shard: the earlier run's index.json used to stay,
    "complete", over shard 0 of the new run beside shard 1 of the old."""
    manifest = inputs()
    out = os.path.join(WORK, "data")
    config = args(manifest, out)[2]
    job = os.path.join(WORK, "job.yaml")
    with open(job, "w") as f:
        f.write("config: %s\nstate: %s\nsteps:\n  - {name: extract, stage: extract}\n"
                % (json.dumps(config), json.dumps(os.path.join(WORK, "state"))))
    p = subprocess.run([ot_run, job], capture_output=True, text=True)
    index = os.path.join(out, "train", "index.json")
    check(p.returncode == 0 and json.load(open(index))["items"] == 3, "ot-run extract (%d): %s"
          % (p.returncode, p.stderr[-300:]))
    shard1 = os.path.join(out, "train", "shard-000001.h5")
    os.remove(shard1)
    os.makedirs(os.path.join(shard1, "x"))  # the new shard 1 cannot be written
    p = subprocess.run([ot_run, "--set", "extract.frames=3", job], capture_output=True, text=True)
    check(p.returncode != 0 and "shard-000001.h5" in p.stderr, "the start-over fails at shard 1 (%d): %s"
          % (p.returncode, p.stderr[-300:]))
    check(not os.path.exists(index) and not os.path.exists(os.path.join(out, "train", "errors.jsonl")),
          "no index.json nor errors.jsonl of the earlier run left over the half-rewritten split")
    shutil.rmtree(shard1)
    p = subprocess.run([ot_run, "--set", "extract.frames=3", job], capture_output=True, text=True)
    check(p.returncode == 0 and json.load(open(index))["T"] == 3, "the rerun finishes the start-over (%d): %s"
          % (p.returncode, p.stderr[-300:]))


def main():
    cases = {"index_write": case_index_write, "rank_local": case_rank_local,
             "start_over": lambda: case_start_over(os.path.abspath(sys.argv[5]))}
    cases[CASE]()
    return summary("extract.stage." + CASE)


if __name__ == "__main__":
    sys.exit(main())
