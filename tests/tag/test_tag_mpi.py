"""ot-tag end to end: a tiny model trained here (tests/train/tiny_data.py),
then the training split (1000 items in shards of 8) tagged on 1 and 2 ranks
and once more with the ranks killed (SIGSTOP, then SIGKILL) mid-run and the
same command rerun. Checks: each id exactly once, identical outputs across rank counts
and after the kill, the model's tags are right (ot-eval F1), bad settings
exit 2.

Mode "opg" (8th argument; default "cls"): a generative opg model trained
for 150 steps, tagged on 1 and 2 ranks (identical output, "source": "gen",
at most tag.top_k tags, best first) and scored by ot-eval (F1 > 0.5).

With OT_RUN (9th argument), an ot-run start-over of a finished tag step
that fails half-way leaves no tags.jsonl of the earlier run.

usage: test_tag_mpi.py OT_TRAIN OT_EXTRACT OT_TAG OT_EVAL MPIEXEC CONFIG WORKDIR [cls|opg] [OT_RUN]
"""
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "train"))
import tiny_data  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from ot_testlib import check, mpi_command, summary  # noqa: E402

OT_TRAIN, OT_EXTRACT, OT_TAG, OT_EVAL, MPIEXEC, CONFIG, WORK = sys.argv[1:8]
MODE = sys.argv[8] if len(sys.argv) > 8 else "cls"
OT_RUN = sys.argv[9] if len(sys.argv) > 9 else None
MPI = mpi_command(MPIEXEC)
OPG_SETS = ["model.type=opg", "model.prompts=4", "model.tag_len=6", "train.steps=150",
            "train.eval_every=50", "train.ckpt_every=50", "train.log_every=50", "tag.top_k=3"]


def check_opg(base, out, lines_):
    items = [json.loads(l) for l in lines_]
    tags = [t for it in items for t in it["tags"]]
    check(tags and all(t["source"] == "gen" for t in tags), "generated tags, source gen (%d)" % len(tags))
    scores = [[t["score"] for t in it["tags"]] for it in items]
    check(all(s == sorted(s, reverse=True) and len(s) <= 3 for s in scores), "best first, at most tag.top_k=3")
    rep = os.path.join(WORK, "report")
    r = subprocess.run([OT_EVAL] + base + ["--set", "eval.pred=" + os.path.join(out, "tags.jsonl"),
                                           "--set", "eval.split=train", "--set", "eval.out=" + rep],
                       capture_output=True, text=True)
    if check(r.returncode == 0, "ot-eval on the generated tags"):
        m = json.load(open(rep + ".json"))["rows"][0]["micro"]["overall"]
        print("opg tiny model micro:", json.dumps(m))
        check(m["f1"] > 0.5, "opg F1 %.3f > 0.5 on the tiny set" % m["f1"])
    return summary("tag-opg")


def main():
    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(WORK)
    data = tiny_data.make(WORK, OT_EXTRACT, CONFIG, n_train=1000, n_val=32)
    train_dir = os.path.join(WORK, "train")
    extra = OPG_SETS if MODE == "opg" else ["train.steps=60"]
    sets = tiny_data.set_args(tiny_data.TINY_SETS + extra + ["tag.split=train", "tag.batch=4"])
    base = ["--config", CONFIG, "--set", "data.dir=" + data, "--set", "train.dir=" + train_dir] + sets
    r = subprocess.run([OT_TRAIN] + base, capture_output=True, text=True)
    if not check(r.returncode == 0, "training the tiny model"):
        print(r.stderr[-3000:])
        return 1

    def tag(out, np_, extra=(), wait=True):
        cmd = [OT_TAG] + base + ["--set", "tag.out=" + out] + list(extra)
        if np_ > 1:
            cmd = MPI + ["-np", str(np_)] + cmd
        if not wait:
            return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        return subprocess.run(cmd, capture_output=True, text=True)

    def lines(out):
        with open(os.path.join(out, "tags.jsonl"), encoding="utf-8") as f:
            return f.read().splitlines()

    a, b = os.path.join(WORK, "np1"), os.path.join(WORK, "np2")
    check(tag(a, 1).returncode == 0, "np1 tags")
    check(tag(b, 2).returncode == 0, "np2 tags")
    la, lb = lines(a), lines(b)
    ids = [json.loads(l)["id"] for l in la]
    check(len(ids) == 1000 and len(set(ids)) == 1000, "each of the 1000 ids exactly once")
    check(la == lb, "1 and 2 ranks write the same tags")
    if MODE == "opg":
        return check_opg(base, a, la)

    # SIGKILL of one rank mid-run, then the same command: the same output.
    # One item per forward pass keeps the run long enough to be caught; on a
    # machine fast enough to finish before the kill lands, try again. (Scores
    # depend on the pass size in their last bits, as BLAS sums in another
    # order: the reference uses the same tag.batch.)
    one = ["--set", "tag.batch=1"]
    ref1 = os.path.join(WORK, "np1-batch1")
    check(tag(ref1, 1, extra=one).returncode == 0, "np1 tags, one item per pass")
    k = os.path.join(WORK, "killed")
    ledger = os.path.join(k, "ledger")

    def units_done():
        # complete records only: a kill can leave a record's temp file (unit-N.json.tmp.PID)
        return (len([x for x in os.listdir(ledger) if x.startswith("unit-") and x.endswith(".json")])
                if os.path.isdir(ledger) else 0)

    for attempt in range(3):
        shutil.rmtree(k, ignore_errors=True)
        p = tag(k, 2, extra=one, wait=False)
        t0 = time.time()
        while time.time() - t0 < 60 and units_done() < 2 and p.poll() is None:
            time.sleep(0.002)
        pids = subprocess.run(["pgrep", "-P", str(p.pid), "-f", "ot-tag"], capture_output=True,
                              text=True).stdout.split()
        if pids:
            # stop every rank, then kill them: a rank left running can finish
            # the remaining shards before mpirun tears it down
            for pid in pids:
                os.kill(int(pid), signal.SIGSTOP)
            for pid in reversed(pids):
                os.kill(int(pid), signal.SIGKILL)
        p.wait(timeout=120)
        done = units_done()
        if 0 < done < 125:
            break
        print("attempt %d: the kill missed the run (%d of 125 shards done); again" % (attempt + 1, done))
    check(0 < done < 125, "killed mid-run (%d of 125 shards done)" % done)
    check(not os.path.exists(os.path.join(k, "tags.jsonl")), "no tags.jsonl from the killed run")
    r = tag(k, 2, extra=one)
    check(r.returncode == 0, "rerun after the kill")
    check(lines(k) == lines(ref1), "killed + rerun output equals the uninterrupted one")

    # A start-over (ot-run: the step's config changed) that fails at shard 1:
    # the earlier run's tags.jsonl used to stay beside the new run's parts.
    if OT_RUN:
        j = os.path.join(WORK, "job-tags")
        sets = [x for x in base if x not in ("--set", "--config", CONFIG)] + ["tag.out=" + j]
        job = os.path.join(WORK, "job.yaml")
        with open(job, "w") as f:
            f.write("config: %s\nset: [%s]\nstate: %s\nsteps:\n  - {name: tag, stage: tag}\n"
                    % (json.dumps(CONFIG), ", ".join(json.dumps(x) for x in sets),
                       json.dumps(os.path.join(WORK, "job"))))
        r = subprocess.run([OT_RUN, job], capture_output=True, text=True)
        check(r.returncode == 0 and lines(j) == la, "ot-run tag (%d: %s)" % (r.returncode, r.stderr[-300:]))
        part1 = os.path.join(j, "part-000001.jsonl")
        if os.path.exists(part1):
            os.remove(part1)
        os.makedirs(os.path.join(part1, "x"))  # the new part 1 cannot be written
        r = subprocess.run([OT_RUN, "--set", "tag.threshold=0.4", job], capture_output=True, text=True)
        check(r.returncode != 0 and "part-000001.jsonl" in r.stderr,
              "the start-over fails at part 1 (%d: %s)" % (r.returncode, r.stderr[-300:]))
        check(not os.path.exists(os.path.join(j, "tags.jsonl")),
              "no tags.jsonl of the earlier run left over the half-rewritten parts")

    # The tags are right: the tiny set's tags follow from colour and pattern.
    rep = os.path.join(WORK, "report")
    r = subprocess.run([OT_EVAL] + base + ["--set", "eval.pred=" + os.path.join(a, "tags.jsonl"),
                                           "--set", "eval.split=train", "--set", "eval.out=" + rep],
                       capture_output=True, text=True)
    check(r.returncode == 0, "ot-eval on the tags")
    if r.returncode == 0:
        f1 = json.load(open(rep + ".json"))["rows"][0]
        print("tiny model micro F1:", json.dumps(f1.get("micro", f1))[:300])
        check(f1["micro"]["overall"]["f1"] > 0.6, "F1 > 0.6 on the tiny set")

    # Bad input: exit 2 with a message, nothing written.
    bad = os.path.join(WORK, "bad")
    r = tag(bad, 1, extra=["--set", "tag.split=nope"])
    check(r.returncode == 2 and "nope/index.json" in r.stderr and not os.path.exists(bad),
          "missing split: exit 2 (%d: %s)" % (r.returncode, r.stderr.strip()[-200:]))
    r = tag(bad, 2, extra=["--set", "tag.ckpt=" + os.path.join(WORK, "none.h5")])
    check(r.returncode == 2 and "none.h5" in r.stderr and not os.path.exists(bad), "missing checkpoint: exit 2")
    r = tag(bad, 1, extra=["--set", "tag.lexicon_weight=0.5"])
    check(r.returncode == 2 and "tag.lexicon_weight" in r.stderr and "no title lexicon" in r.stderr and
          not os.path.exists(bad), "tag.lexicon_weight on a checkpoint without a lexicon: exit 2 (%d: %s)"
          % (r.returncode, r.stderr.strip()[-200:]))
    r = tag(bad, 1, extra=["--set", "tag.absence_weight=0.5"])
    check(r.returncode == 2 and "tag.absence_weight" in r.stderr and "no title lexicon" in r.stderr and
          not os.path.exists(bad), "tag.absence_weight on a checkpoint without a lexicon: exit 2 (%d: %s)"
          % (r.returncode, r.stderr.strip()[-200:]))
    r = tag(b, 1, extra=["--set", "tag.threshold=0.9"])
    check(r.returncode == 2 and "different settings" in r.stderr, "other threshold into the same folder refused")
    # The split extracted again (a shard rewritten: new modification time):
    # the same command resumes no more, it is refused rather than mixing
    # parts of two extractions.
    r = tag(b, 2)
    check(r.returncode == 0 and lines(b) == lb, "same settings into the same folder: resumes, same tags")
    shard = sorted(glob.glob(os.path.join(data, "train", "shard-*.h5")))[0]
    st = os.stat(shard)
    os.utime(shard, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    r = tag(b, 2)
    check(r.returncode == 2 and "different settings" in r.stderr,
          "after the split changed, the same folder is refused (%d: %s)" % (r.returncode, r.stderr.strip()[-200:]))
    os.utime(shard, ns=(st.st_atime_ns, st.st_mtime_ns))
    # The checkpoint rewritten under its name (a training continued writes
    # final.h5 again): refused the same way, not mixed with the old model's.
    ckpt = os.path.join(train_dir, "final.h5")
    st = os.stat(ckpt)
    os.utime(ckpt, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    r = tag(b, 2)
    check(r.returncode == 2 and "different settings" in r.stderr,
          "after final.h5 was rewritten, the same folder is refused (%d: %s)"
          % (r.returncode, r.stderr.strip()[-200:]))
    os.utime(ckpt, ns=(st.st_atime_ns, st.st_mtime_ns))
    # A model setting the checkpoint was not trained with: named, before any tensor is read.
    r = tag(bad, 2, extra=["--set", "model.fuse_layers=3"])
    check(r.returncode == 2 and "was trained with model.fuse_layers=" in r.stderr and
          "but the config says 3" in r.stderr and not os.path.exists(bad),
          "other model.fuse_layers refused naming the key (%d: %s)" % (r.returncode, r.stderr.strip()[-300:]))
    # ... and resuming the training with one is refused the same way.
    r = subprocess.run([OT_TRAIN] + base + ["--set", "model.heads=4", "--set", "train.steps=80"],
                       capture_output=True, text=True)
    check(r.returncode == 2 and "was trained with model.heads=" in r.stderr and
          "another train.dir" in r.stderr,
          "resume with other model.heads refused (%d: %s)" % (r.returncode, r.stderr.strip()[-300:]))
    return summary("tag")


if __name__ == "__main__":
    sys.exit(main())
