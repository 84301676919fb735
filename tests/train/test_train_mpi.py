"""ot-train end to end on a tiny dataset made here (tiny_data.py), 1 and 2
MPI ranks. One mode per ctest:

  ranks   the same run on 1 and 2 ranks (batch 7: slices of 4 and 3 items)
          gives the same loss curve within a relative 1e-5 — with dropout
          and 3 items per pass for bin (masks keyed by the item's place in
          the global batch, so identical across passes and rank counts), and
          without dropout, 3 items per pass, for asl; the model
          learns (loss falls, val F1 > 0.6); final.h5 holds what it should, best.h5
          the validation of highest F1.
  resume  (with train.ema on) kill -9 of one rank after a checkpoint, SIGUSR1
          and SIGTERM to mpirun: each rerun of the same command resumes from the newest
          checkpoint and logs losses bit-identical to an uninterrupted run,
          ending in an identical final.h5; a rerun of a finished run does
          nothing, and stops on a SIGTERM caught after its end (exit 1); a
          changed model setting is refused (exit 2).
  errors  bad config, missing index, missing shard, patch not dividing the
          frames, empty train split, impossible tag vocabulary: exit 2 with
          the expected message, on 1 and 2 ranks, before writing anything.
  features  precomputed per-frame features (extract.features, an HDF5 file
          written here with h5py) stored in the shards by ot-extract on 2
          ranks, exactly as given; an item without a row and one with a NaN
          are error records; a bad features file stops ot-extract (exit 2)
          before any shard; model.visual features trains like the ranks
          mode (np1 == np2, learns) and is refused on shards without
          features; ot-tag tags the shards with it on 2 ranks and refuses
          raw media. extract.store_frames false: features-only shards
          written without opening any media, on which the same model trains
          and tags identically; pixel models and a features-less extract
          are refused.
  init    train.init: a baseline run starts from a bin run's hybrid
          encoder — with lr 0 its final.h5 holds exactly bin's vis./txt./fuse.
          tensors and, for every other parameter, what the same run without
          train.init holds; np1 and np2 then train the same loss curve (so
          every rank got the copy); another tokenizer, prefixes naming
          nothing, a missing file, a shape mismatch and a NaN in its tensors
          are refused (exit 2);
          weights that overflow stop the run at its first non-finite loss
          (exit 2), before any checkpoint or metrics line.
  valf1   the val F1 ot-train reports and stores with the threshold is the
          F1 of what ot-tag then writes for val, scored against every
          ground-truth tag — also tags never seen in training, which
          every other val item has here — for bin and opg.

usage: test_train_mpi.py MODE OT_TRAIN OT_EXTRACT MPIEXEC CONFIG WORKDIR [OT_TAG]
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import h5py
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tiny_data  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from ot_testlib import check, mpi_command, summary  # noqa: E402

MODE, OT_TRAIN, OT_EXTRACT, MPIEXEC, CONFIG, WORK = sys.argv[1:7]
OT_TAG = sys.argv[7] if len(sys.argv) > 7 else None
MPI = mpi_command(MPIEXEC)
DATA = None


def cmd(train_dir, np_, sets=(), data=None):
    c = [OT_TRAIN, "--config", CONFIG, "--set", "data.dir=" + (data or DATA), "--set", "train.dir=" + train_dir]
    c += tiny_data.set_args(tiny_data.TINY_SETS + list(sets))
    return MPI + ["-np", str(np_)] + c if np_ > 1 else c


def train(train_dir, np_, sets=(), data=None, expect=0):
    r = subprocess.run(cmd(train_dir, np_, sets, data), capture_output=True, text=True)
    if expect is not None and r.returncode != expect:
        print("exit %d, expected %d:\n%s" % (r.returncode, expect, r.stderr[-3000:]))
    return r


def tensors(path):
    """{group/name: array} of params, adam_m, adam_v, ema (when kept), and the attributes."""
    out = {}
    with h5py.File(path, "r") as f:
        for g in ("params", "adam_m", "adam_v", "ema"):
            for k in f.get(g, {}):
                out[g + "/" + k] = f[g][k][()]
        attrs = {k: f.attrs[k] for k in f.attrs}
        out["tags"] = [t.decode() for t in f["tags"][()]]
        out["tokenizer"] = f["tokenizer"][()].decode()
    return out, attrs


def rel_diff(a, b):
    return abs(a - b) / max(abs(a), abs(b), 1e-30)


# --- ranks ------------------------------------------------------------------

def same_curve(label, sets, tol=1e-5, f1_min=0.6, generative=False):
    d1, d2 = os.path.join(WORK, label + "-np1"), os.path.join(WORK, label + "-np2")
    r1, r2 = train(d1, 1, sets), train(d2, 2, sets)
    if not (check(r1.returncode == 0, label + ": np1 exit 0") and check(r2.returncode == 0, label + ": np2 exit 0")):
        return
    t1, v1 = tiny_data.read_metrics(d1)
    t2, v2 = tiny_data.read_metrics(d2)
    check(sorted(t1) == list(range(1, 41)) and sorted(t2) == sorted(t1), label + ": one loss per step 1..40")
    worst = max(rel_diff(t1[s]["loss"], t2[s]["loss"]) for s in t1)
    print("%s: max relative loss difference np1 vs np2 over 40 steps: %.2e" % (label, worst))
    check(worst < tol, label + ": np1 and np2 losses agree within %.0e (%.2e)" % (tol, worst))
    check(sorted(v1) == [10, 20, 30, 40] and sorted(v2) == sorted(v1), label + ": validation every 10 steps")
    worst_v = max(rel_diff(v1[s]["val_loss"], v2[s]["val_loss"]) for s in v1)
    check(worst_v < tol, label + ": val losses agree (%.2e)" % worst_v)
    first = np.mean([t1[s]["loss"] for s in (1, 2, 3)])
    last = np.mean([t1[s]["loss"] for s in (38, 39, 40)])
    check(last < 0.8 * first, label + ": the loss falls (%.3f -> %.3f)" % (first, last))
    check(v1[40]["f1"] >= f1_min, label + ": val F1 %.3f >= %.2f after 40 steps" % (v1[40]["f1"], f1_min))
    if generative and tol <= 1e-5:
        check(all(v1[s]["f1"] == v2[s]["f1"] and v1[s]["threshold"] == v2[s]["threshold"] for s in v1),
              label + ": val F1 and threshold from generation identical on 1 and 2 ranks")
    check("on 2 ranks" in r2.stderr and "[ot-train 1/2] step" not in r2.stderr,
          label + ": np2 reports 2 ranks, progress from rank 0 only")
    m = re.search(r"step 40/40 .* ([0-9.]+) samples/s +([0-9.]+) GFLOP/s +peak RSS (\d+) MB", r1.stderr)
    check(m is not None, label + ": progress line with samples/s, GFLOP/s, peak RSS")
    for np_, r in ((1, r1), (2, r2)):
        m = re.search(r"done: .* ([0-9.]+) samples/s while training", r.stderr)
        if m:
            print("%s np%d: %s samples/s" % (label, np_, m.group(1)))

    # final.h5: every tensor, the vocabulary, tokenizer and threshold.
    a, attrs = tensors(os.path.join(d1, "final.h5"))
    b, _ = tensors(os.path.join(d2, "final.h5"))
    diff = max(float(np.max(np.abs(a[k] - b[k]))) for k in a if k.startswith("params/"))
    check(diff < 1e-3, label + ": final parameters np1 vs np2 within 1e-3 (%.2e)" % diff)
    check(attrs["step"] == 40 and attrs["format"] == "open-tag-checkpoint", label + ": final.h5 step 40")
    check(abs(attrs["threshold"] - v1[40]["threshold"]) < 1e-9 and abs(attrs["val_f1"] - v1[40]["f1"]) < 1e-8,
          label + ": threshold and F1 of the last validation in final.h5")
    tags = __import__("json").load(open(os.path.join(d1, "tags.json")))["tags"]
    check(a["tags"] == tags == sorted(tags) and "warm" in tags and len(tags) == 10,
          label + ": tag list in final.h5 = tags.json, sorted")
    check(a["tokenizer"] == open(os.path.join(d1, "tokenizer.txt")).read(), label + ": tokenizer in final.h5")
    check("model:" in attrs["config"] and "train:" in attrs["config"], label + ": config YAML attribute")
    check(set(k.split("/", 1)[1] for k in a if k.startswith("adam_m/")) ==
          set(k.split("/", 1)[1] for k in a if k.startswith("params/")) and ("params/head.w" in a) != generative,
          label + ": Adam moments for every parameter")
    check(open(os.path.join(d1, "latest")).read().strip() == "final.h5", label + ": latest -> final.h5")
    # best.h5: the first validation of highest F1, with its threshold; never `latest`
    top = max(v1[s]["f1"] for s in v1)
    at = min(s for s in v1 if v1[s]["f1"] == top)
    best, battrs = tensors(os.path.join(d1, "best.h5"))
    check(battrs["step"] == at and abs(battrs["val_f1"] - top) < 1e-8 and
          abs(battrs["threshold"] - v1[at]["threshold"]) < 1e-9,
          label + ": best.h5 is step %d of val F1 %.3f (step %s, F1 %.3f)" % (at, top, battrs["step"], battrs["val_f1"]))
    if at == 40:
        check(all(np.array_equal(best[k], a[k]) for k in a if k.startswith("params/")),
              label + ": best.h5 at the last step = final.h5's parameters")


def mode_ranks():
    # dropout with 2 items per pass: passes {0-1},{2-3},{4-5},{6} on 1 rank
    # and {0-1},{2} | {3-4},{5-6} on 2 — masks follow the item, not the pass
    same_curve("bin-dropout", ["model.type=bin", "model.dropout=0.1", "train.micro_batch=2"])
    same_curve("asl-micro3", ["model.type=asl", "model.dropout=0", "train.micro_batch=3"])
    # Generative models: 40 steps are too few for good tags (the F1 is
    # checked after longer training in tests/tag); their val F1 comes from
    # generation. baseline: items are independent, so np1 == np2 like the
    # closed-set models. opg: InfoNCE takes its negatives within one forward
    # pass, so losses match across rank counts only when the passes hold the
    # same items: with batch 8 and 4 items per pass both runs make the
    # passes {0-3},{4-7} (and {0-3},...,{12-15} over the 16 val items; batch
    # 7 would be sliced 3|4 on 2 ranks). The Hungarian matching and
    # the has-tag targets amplify summation-order differences a little, hence
    # the looser tolerance. Other micro/rank splits change opg's loss itself.
    gen = ["model.dropout=0.1", "model.prompts=4", "model.tag_len=6"]
    # baseline also with copy augmentation: its draws are keyed by item, so
    # the 1- and 2-rank batches still hold the same words
    same_curve("baseline", ["model.type=baseline", "train.micro_batch=2", "model.copy_aug=0.5"] + gen,
               f1_min=0.0, generative=True)
    same_curve("opg", ["model.type=opg", "train.batch=8", "train.micro_batch=4"] + gen, tol=1e-4, f1_min=0.0,
               generative=True)


# --- resume -----------------------------------------------------------------

# With the weight average on: it is training state too, so resuming must
# restore it bit-exactly (the validation lines, computed on it, must match).
RESUME_SETS = ["model.type=asl", "train.steps=400", "train.ckpt_every=20", "train.eval_every=25",
               "train.log_every=50", "train.ema=0.9"]


def rank_pids(launcher_pid):
    out = subprocess.run(["pgrep", "-P", str(launcher_pid), "-f", "ot-train"], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


def wait_for_ckpt(d, p, least):
    """Wait until `latest` names a ckpt of step >= least; the step, or -1."""
    deadline = time.time() + 60
    while time.time() < deadline and p.poll() is None:
        try:
            m = re.match(r"ckpt-(\d+)\.h5", open(os.path.join(d, "latest")).read())
            if m and int(m.group(1)) >= least:
                return int(m.group(1))
        except OSError:
            pass
        time.sleep(0.01)
    return -1


def handler_installed(p, sig):
    """Wait until process p catches sig (ot-train routes the stop signals
    once set up for MPI, USR1 last: caught, TERM and INT are too); False if
    it ended first."""
    deadline = time.time() + 60
    while time.time() < deadline and p.poll() is None:
        try:
            with open("/proc/%d/status" % p.pid) as f:
                caught = next(int(l.split()[1], 16) for l in f if l.startswith("SigCgt:"))
            if caught >> (int(sig) - 1) & 1:
                return True
        except (OSError, StopIteration):
            pass
        time.sleep(0.0005)
    return False


def same_as_ref(ref, d, what):
    rt, rv = tiny_data.read_metrics(ref)
    kt, kv = tiny_data.read_metrics(d)
    n_lines = sum(1 for _ in open(os.path.join(d, "metrics.jsonl")))
    check(n_lines == len(kt) + len(kv), what + ": each step logged once after the resume")
    differ = [s for s in rt if s not in kt or kt[s]["_raw"] != rt[s]["_raw"]]
    check(not differ, what + ": train losses bit-identical to the uninterrupted run (differ at %s)" % differ[:5])
    check(all(kv.get(s, {}).get("_raw") == rv[s]["_raw"] for s in rv), what + ": validation lines identical")
    a, aa = tensors(os.path.join(ref, "final.h5"))
    b, ba = tensors(os.path.join(d, "final.h5"))
    bad = [k for k in a if not np.array_equal(a[k], b[k])]
    check(not bad and aa["threshold"] == ba["threshold"] and aa["rng_state"].tolist() == ba["rng_state"].tolist(),
          what + ": final.h5 tensors, threshold and RNG state identical (differ: %s)" % bad[:3])


def resumed_at(stderr):
    m = re.search(r"resuming from \S*(?:ckpt-\d+|final)\.h5 at step (\d+)", stderr)
    return int(m.group(1)) if m else -1


def mode_resume():
    ref = os.path.join(WORK, "ref")
    r = train(ref, 2, RESUME_SETS)
    if not check(r.returncode == 0, "reference run exit 0"):
        return
    a, _ = tensors(os.path.join(ref, "final.h5"))
    avg = [k for k in a if k.startswith("ema/")]
    check(len(avg) == sum(k.startswith("params/") for k in a) and
          any(not np.array_equal(a[k], a["params/" + k[4:]]) for k in avg),
          "train.ema: final.h5 keeps an average of every tensor, apart from the weights")
    # 1. SIGKILL of one rank after the checkpoint of step 40.
    d = os.path.join(WORK, "killed")
    p = subprocess.Popen(cmd(d, 2, RESUME_SETS), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    step = wait_for_ckpt(d, p, 40)
    pids = rank_pids(p.pid)
    check(step >= 40 and len(pids) == 2, "killed: checkpoint %d seen, 2 rank processes" % step)
    if pids:
        os.kill(pids[-1], signal.SIGKILL)
    p.communicate(timeout=60)
    check(p.returncode != 0 and not os.path.exists(os.path.join(d, "final.h5")), "killed: the run died unfinished")
    r = train(d, 2, RESUME_SETS)
    at = resumed_at(r.stderr)
    check(r.returncode == 0 and 40 <= at < 400, "killed: rerun resumes from a checkpoint >= 40 (%d)" % at)
    same_as_ref(ref, d, "after kill -9")
    # The same on one rank (its own reference).
    ref1, d1 = os.path.join(WORK, "ref-np1"), os.path.join(WORK, "killed-np1")
    train(ref1, 1, RESUME_SETS)
    p = subprocess.Popen(cmd(d1, 1, RESUME_SETS), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    step = wait_for_ckpt(d1, p, 60)
    p.kill()
    p.communicate(timeout=60)
    check(step >= 60 and not os.path.exists(os.path.join(d1, "final.h5")), "np1 killed after ckpt %d" % step)
    changed = d1 + "-lr"
    shutil.copytree(d1, changed)
    r = train(d1, 1, RESUME_SETS)
    check(r.returncode == 0 and resumed_at(r.stderr) >= 60, "np1: rerun resumes")
    check("other than it was trained with" not in r.stderr, "np1: same settings, no warning")
    same_as_ref(ref1, d1, "np1 after kill -9")
    # Resuming with another learning rate is allowed (extending a run is
    # too), but not unsaid.
    r = train(changed, 1, RESUME_SETS + ["train.lr=0.004", "train.threads=1"])
    m = re.search(r"with 1 setting\(s\) other than it was trained with: train\.lr (\S+) -> (\S+);", r.stderr)
    check(r.returncode == 0 and m is not None and float(m.group(2)) == 0.004 and float(m.group(1)) != 0.004,
          "resumed with another train.lr: a warning names it, and only it (%s)" % r.stderr[-400:])

    # 2. Signals to every rank (as Slurm's scancel --signal or a pre-kill
    # warning delivers them to the tasks): USR1 exits 75 (stopped, not done),
    # TERM 1. mpirun also forwards them, but only after its own latency, in
    # which an idle machine can finish the tiny run;
    # tests/train/test_train_sbatch.py covers the launcher path.
    for sig, rc in ((signal.SIGUSR1, 75), (signal.SIGTERM, 1)):
        name = signal.Signals(sig).name
        d = os.path.join(WORK, name.lower())
        p = subprocess.Popen(cmd(d, 2, RESUME_SETS), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        # Right after a checkpoint, 380 steps to go: the stop step is wherever
        # the signal lands.
        wait_for_ckpt(d, p, 20)
        for pid in rank_pids(p.pid):
            os.kill(pid, sig)
        _, err = p.communicate(timeout=60)
        # The stop step is the one of the checkpoint the run left: rank 0's
        # "stopped by" line can be lost when mpirun tears the job down after
        # a non-zero exit (TERM) before forwarding the last output.
        m = re.match(r"ckpt-(\d+)\.h5", open(os.path.join(d, "latest")).read().strip())
        stopped = int(m.group(1)) if m else -1
        check(p.returncode == rc and 20 <= stopped < 400,
              "%s: exit %d (got %d), stopped at step %d" % (name, rc, p.returncode, stopped))
        m = re.search(r"stopped by %s at step (\d+)" % name, err)
        check(m is None or int(m.group(1)) == stopped, "%s: the log names the checkpointed step" % name)
        r = train(d, 2, RESUME_SETS)
        check(r.returncode == 0 and resumed_at(r.stderr) == stopped, "%s: rerun resumes at %d" % (name, stopped))
        same_as_ref(ref, d, "after " + name)

    # 3. A finished run: rerunning does nothing; other model settings refused.
    final = os.path.join(ref, "final.h5")
    mtime = os.stat(final).st_mtime_ns
    r = train(ref, 2, RESUME_SETS)
    check(r.returncode == 0 and "already complete" in r.stderr and os.stat(final).st_mtime_ns == mtime,
          "rerun of a finished run: exit 0, final.h5 untouched")
    # A signal caught after the training's last look at the stop flag (here
    # while an already complete training is set up; in a run, while final.h5
    # is written) still stops it: exit 1 for TERM. It used to be lost, and
    # ot-run went on to its next step.
    for attempt in range(5):
        p = subprocess.Popen(cmd(ref, 1, RESUME_SETS), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if handler_installed(p, signal.SIGUSR1):
            os.kill(p.pid, signal.SIGTERM)
        _, err = p.communicate(timeout=60)
        if p.returncode != 0:
            break
        print("attempt %d: the signal came after the training's end (exit 0); again" % (attempt + 1))
    check(p.returncode == 1 and "stopped by SIGTERM after the training had ended" in err
          and os.stat(final).st_mtime_ns == mtime,
          "SIGTERM to a complete training being set up: exit 1, said, final.h5 untouched (got %d: %s)"
          % (p.returncode, err.strip()[-300:]))
    r = train(ref, 1, RESUME_SETS + ["model.dim=64"], expect=2)
    check(r.returncode == 2 and "model.dim=32" in r.stderr and "model.dim=64" not in r.stderr.split("says")[0],
          "changed model.dim on resume: exit 2 naming the setting (%s)" % r.stderr.strip()[-200:])

    # 4. The training split changed under a checkpoint. Fewer items: the data
    # order cannot go on, refused naming both counts. The same items in
    # rewritten files (a re-extraction, a copy): resumed, with a warning.
    src = os.path.join(WORK, "src")
    with open(os.path.join(src, "train.jsonl")) as f:
        lines = f.readlines()
    fewer_man = os.path.join(src, "train-fewer.jsonl")  # image paths are relative to it
    with open(fewer_man, "w") as f:
        f.writelines(lines[:-1])
    fewer = os.path.join(WORK, "data-fewer")
    x = subprocess.run([OT_EXTRACT, "--config", CONFIG, "--set", "data.train=" + fewer_man,
                        "--set", "data.val=" + os.path.join(src, "val.jsonl"), "--set", "data.dir=" + fewer],
                       capture_output=True, text=True)
    rewritten = os.path.join(WORK, "data-rewritten")
    shutil.rmtree(rewritten, ignore_errors=True)
    shutil.copytree(DATA, rewritten)
    for name in os.listdir(os.path.join(rewritten, "train")):
        os.utime(os.path.join(rewritten, "train", name), ns=(1, 1))
    d = os.path.join(WORK, "data-changed")
    short = RESUME_SETS + ["train.steps=20"]
    r = train(d, 2, short)
    check(x.returncode == 0 and r.returncode == 0, "data changed: a 20-step run, a split of %d items" % (len(lines) - 1))
    r = train(d, 2, RESUME_SETS + ["train.steps=40"], data=fewer, expect=2)
    check(r.returncode == 2 and "trained on %d items" % len(lines) in r.stderr and
          "which now has %d" % (len(lines) - 1) in r.stderr,
          "a training split of other size on resume: exit 2 naming both counts (%s)" % r.stderr.strip()[-300:])
    r = train(d, 2, RESUME_SETS + ["train.steps=40"], data=rewritten)
    check(r.returncode == 0 and resumed_at(r.stderr) == 20 and "shard files changed" in r.stderr,
          "the same items in rewritten files: resumed at step %d with a warning (%s)" %
          (resumed_at(r.stderr), r.stderr.strip()[:600]))


# --- errors -------------------------------------------------------------------

def mode_errors():
    def expect2(what, np_, sets=(), data=None, needles=()):
        d = os.path.join(WORK, "err-" + re.sub(r"\W+", "-", what))
        shutil.rmtree(d, ignore_errors=True)
        r = train(d, np_, sets, data, expect=None)
        msg = r.stderr.strip()
        ok = r.returncode == 2 and all(n in msg for n in needles) and msg.count("ot-train: error:") == 1
        check(ok, "%s (np%d): exit 2 (got %d) with %s in: %s" % (what, np_, r.returncode, needles, msg[-300:]))
        return d

    d = expect2("bad value", 2, ["train.batch=0"], needles=["train.batch"])
    check(not os.path.exists(d), "bad config: train.dir not created")
    expect2("bad enum", 1, ["model.type=softmax"], needles=["model.type"])
    expect2("unknown key", 1, ["train.bogus=1"], needles=["train.bogus"])
    empty = os.path.join(WORK, "nodata")
    os.makedirs(empty, exist_ok=True)
    d = expect2("missing index", 2, data=empty, needles=["train/index.json", "ot-extract"])
    check(not os.path.exists(d), "missing index: train.dir not created")
    expect2("patch", 2, ["model.patch=5"], needles=["model.patch=5", "32x32"])
    expect2("heads", 1, ["model.heads=3"], needles=["model.heads"])
    expect2("min count", 2, ["model.min_tag_count=1000"], needles=["model.min_tag_count=1000"])

    # A shard listed in the index but gone.
    broken = os.path.join(WORK, "broken")
    shutil.rmtree(broken, ignore_errors=True)
    shutil.copytree(DATA, broken)
    os.remove(os.path.join(broken, "train", "shard-000003.h5"))
    expect2("missing shard", 2, data=broken, needles=["shard-000003.h5"])

    # A second run in a train.dir that a run is using: refused, the first
    # goes on undisturbed.
    busy = os.path.join(WORK, "busy")
    shutil.rmtree(busy, ignore_errors=True)
    p = subprocess.Popen(cmd(busy, 1, RESUME_SETS), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wait_for_ckpt(busy, p, 20)
    r = train(busy, 1, RESUME_SETS, expect=None)
    _, err = p.communicate(timeout=120)
    check(r.returncode == 2 and "is in use by another ot-train run" in r.stderr and "busy/.lock: held by another process" in r.stderr,
          "a second run in a busy train.dir: exit 2 (got %d: %s)" % (r.returncode, r.stderr[-300:]))
    check(p.returncode == 0 and os.path.exists(os.path.join(busy, "final.h5")),
          "the first run finished undisturbed (exit %s: %s)" % (p.returncode, err[-300:]))

    # A val split holding the training items: it would pick the model that
    # memorises best.
    leaky = os.path.join(WORK, "leaky")
    shutil.rmtree(leaky, ignore_errors=True)
    shutil.copytree(DATA, leaky)
    shutil.rmtree(os.path.join(leaky, "val"))
    shutil.copytree(os.path.join(DATA, "train"), os.path.join(leaky, "val"))
    n_train = json.load(open(os.path.join(DATA, "train", "index.json")))["items"]
    d = expect2("val holds training items", 2, data=leaky,
                needles=["leaky/val: %d of its %d items are also in" % (n_train, n_train), "leaky/train ('"])
    check(not os.path.exists(os.path.join(d, "tags.json")), "val holds training items: nothing written")

    # Every training line failed: an empty split.
    src = os.path.join(WORK, "empty-src")
    os.makedirs(src, exist_ok=True)
    man = os.path.join(src, "train.jsonl")
    with open(man, "w") as f:
        f.write('{"id": "x", "path": "nope.png", "title": "t", "tags": ["a"]}\n')
    edata = os.path.join(WORK, "empty-data")
    subprocess.run([OT_EXTRACT, "--config", CONFIG, "--set", "data.train=" + man, "--set", "data.dir=" + edata],
                   capture_output=True)
    expect2("empty split", 2, data=edata, needles=["no items"])


# --- features -----------------------------------------------------------------

FEAT_T, FEAT_D = 4, 12  # configs/tiny.yaml extracts 4 frames


def write_features(path, manifests, skip=(), nan=(), frames=FEAT_T, repeat_id=False):
    """Features of every manifest item but `skip`: one-hot colour and pattern
    (from the tags) plus per-frame noise; a NaN in the items of `nan`; with
    repeat_id the last row names the first row's item again.
    Returns {id: array [T,D]}."""
    import json
    rnd = np.random.default_rng(5)
    colours, patterns = sorted(tiny_data.COLORS), tiny_data.PATTERNS
    rows = {}
    for man in manifests:
        for line in open(man):
            it = json.loads(line)
            x = 0.1 * rnd.standard_normal((frames, FEAT_D)).astype(np.float32)
            x[:, colours.index(it["tags"][0])] += 1.0
            x[:, 4 + patterns.index(it["tags"][1])] += 1.0
            if it["id"] in nan:
                x[1, 2] = np.nan
            if it["id"] not in skip:
                rows[it["id"]] = x
    ids = sorted(rows, reverse=True)  # not manifest order: looked up by id
    x = np.stack([rows[i] for i in ids])
    if repeat_id:
        ids, x = ids + ids[:1], np.concatenate([x, x[:1]])
    with h5py.File(path, "w") as f:
        f.create_dataset("id", data=ids, dtype=h5py.string_dtype())
        f.create_dataset("features", data=x)
    return rows


def extract(data, sets, np_=2):
    src = os.path.join(WORK, "src")
    c = [OT_EXTRACT, "--config", CONFIG, "--set", "data.train=" + os.path.join(src, "train.jsonl"),
         "--set", "data.val=" + os.path.join(src, "val.jsonl"), "--set", "data.dir=" + data]
    for s in sets:
        c += ["--set", s]
    return subprocess.run(MPI + ["-np", str(np_)] + c, capture_output=True, text=True)


def mode_features():
    global DATA
    import json
    src = os.path.join(WORK, "src")
    mans = [os.path.join(src, s + ".jsonl") for s in ("train", "val")]
    feat = os.path.join(WORK, "features.h5")
    rows = write_features(feat, mans, skip=("val-3",), nan=("train-5",))
    fdata = os.path.join(WORK, "fdata")
    r = extract(fdata, ["extract.features=" + feat])
    check(r.returncode == 0, "extract with features: exit 0 (%d): %s" % (r.returncode, r.stderr[-500:]))
    errs = {s: [json.loads(l) for l in open(os.path.join(fdata, s, "errors.jsonl"))] for s in ("train", "val")}
    check([(e["id"], "non-finite" in e["reason"] and feat in e["reason"]) for e in errs["train"]] == [("train-5", True)],
          "the NaN item is train's one error record, naming the file: %s" % errs["train"])
    check([(e["id"], "no features" in e["reason"]) for e in errs["val"]] == [("val-3", True)],
          "the item without a row is val's one error record: %s" % errs["val"])
    seen, exact = 0, True
    for split in ("train", "val"):
        for name in sorted(os.listdir(os.path.join(fdata, split))):
            if not name.endswith(".h5"):
                continue
            with h5py.File(os.path.join(fdata, split, name), "r") as f:
                ids = [x.decode() for x in f["id"][()]]
                check(int(f.attrs["D"]) == FEAT_D and f["features"].shape == (len(ids), FEAT_T, FEAT_D)
                      and f["frames"].shape[0] == len(ids), "%s/%s: D and /features [N,T,D]" % (split, name))
                for k, i in enumerate(ids):
                    exact &= np.array_equal(f["features"][k], rows[i])
                    seen += 1
    check(seen == 64 + 16 - 2 and exact, "every other item's features stored exactly (%d items)" % seen)

    # a bad features file: exit 2 naming it, before any shard is written
    bad, dup = os.path.join(WORK, "bad-features.h5"), os.path.join(WORK, "dup-features.h5")
    write_features(bad, mans, frames=3)
    write_features(dup, mans, repeat_id=True)
    for what, path, needles in (("missing file", os.path.join(WORK, "nope.h5"), ["nope.h5", "not an HDF5"]),
                                ("wrong T", bad, ["bad-features.h5", "3 frames", "extract.frames is 4"]),
                                ("repeated id", dup, ["dup-features.h5", "val-9", "appears twice"])):
        out = os.path.join(WORK, "bad-" + what.replace(" ", "-"))
        r = extract(out, ["extract.features=" + path])
        shards = [n for s in ("train", "val") for n in os.listdir(os.path.join(out, s))
                  if n.endswith(".h5")] if os.path.isdir(os.path.join(out, "train")) else []
        check(r.returncode == 2 and all(n in r.stderr for n in needles) and not shards,
              "%s: exit 2 (%d) naming %s, no shard written: %s" % (what, r.returncode, needles, r.stderr[-300:]))

    # a features model on shards without features
    d = os.path.join(WORK, "feat-on-plain")
    r = train(d, 2, ["model.visual=features"], expect=None)
    check(r.returncode == 2 and "extract.features" in r.stderr and "model.visual" in r.stderr,
          "model.visual features on shards without them: exit 2 naming both keys: " + r.stderr[-300:])

    DATA = fdata
    sets = ["model.type=bin", "model.visual=features", "train.micro_batch=2"]
    same_curve("features", sets)
    if OT_TAG:
        base = [OT_TAG, "--config", CONFIG, "--set", "data.dir=" + fdata,
                "--set", "train.dir=" + os.path.join(WORK, "features-np2")]
        base += tiny_data.set_args(tiny_data.TINY_SETS + sets)
        out = os.path.join(WORK, "tags-val")
        r = subprocess.run(MPI + ["-np", "2"] + base + ["--set", "tag.split=val", "--set", "tag.out=" + out],
                           capture_output=True, text=True)
        got = [json.loads(l)["id"] for l in open(os.path.join(out, "tags.jsonl"))] if r.returncode == 0 else []
        check(r.returncode == 0 and sorted(got) == sorted("val-%d" % i for i in range(16) if i != 3),
              "ot-tag on 2 ranks tags the 15 val items once each (%d): %s" % (r.returncode, r.stderr[-300:]))
        r = subprocess.run(base + ["--set", "tag.manifest=" + mans[1], "--set", "tag.out=" + out + "-raw"],
                           capture_output=True, text=True)
        check(r.returncode == 2 and "raw media" in r.stderr and "extract.features" in r.stderr,
              "ot-tag refuses raw media for a features model (exit %d): %s" % (r.returncode, r.stderr[-300:]))
    features_only(feat, fdata, sets, base if OT_TAG else None)


def features_only(feat, fdata, sets, tag_cmd):
    """extract.store_frames false: shards of features alone, written without
    opening any media (data.root is an empty folder here); a features model
    trains on them exactly as on the shards with frames, and tags them the
    same; a pixel model and a features-less extract are refused."""
    import json
    empty = os.path.join(WORK, "no-media")
    os.makedirs(empty, exist_ok=True)
    odata = os.path.join(WORK, "odata")
    r = extract(odata, ["extract.features=" + feat, "extract.store_frames=false", "data.root=" + empty])
    check(r.returncode == 0, "features-only extract without media: exit 0 (%d): %s" % (r.returncode, r.stderr[-500:]))
    if r.returncode:
        return
    for split in ("train", "val"):
        errs = [json.loads(l)["id"] for l in open(os.path.join(odata, split, "errors.jsonl"))]
        check(errs == {"train": ["train-5"], "val": ["val-3"]}[split],
              "features only, %s: the same error records as with frames (%s)" % (split, errs))
        idx = json.load(open(os.path.join(odata, split, "index.json")))
        check(idx["H"] == 0 and idx["W"] == 0, "features only, %s: index.json has H = W = 0" % split)
        for name in sorted(n for n in os.listdir(os.path.join(odata, split)) if n.endswith(".h5")):
            with h5py.File(os.path.join(odata, split, name), "r") as f, \
                    h5py.File(os.path.join(fdata, split, name), "r") as g:
                check("frames" not in f and f.attrs["H"] == 0 and f.attrs["W"] == 0
                      and np.array_equal(f["features"][()], g["features"][()])
                      and list(f["id"][()]) == list(g["id"][()]),
                      "features only, %s/%s: no /frames, H = W = 0, the same ids and features" % (split, name))
    d = os.path.join(WORK, "features-only-np2")
    r = train(d, 2, sets, data=odata)
    if check(r.returncode == 0, "features model on features-only shards: exit 0"):
        got, ref = tiny_data.read_metrics(d), tiny_data.read_metrics(os.path.join(WORK, "features-np2"))
        check([got[0][k]["_raw"] for k in sorted(got[0])] == [ref[0][k]["_raw"] for k in sorted(ref[0])]
              and [got[1][k]["_raw"] for k in sorted(got[1])] == [ref[1][k]["_raw"] for k in sorted(ref[1])],
              "features only: train and val lines identical to the run on shards with frames")
    r = train(os.path.join(WORK, "patches-on-featonly"), 2, [], data=odata, expect=None)
    check(r.returncode == 2 and "extract.store_frames" in r.stderr and "model.visual" in r.stderr,
          "a pixel model on features-only shards: exit 2 naming both keys: " + r.stderr[-300:])
    nothing = os.path.join(WORK, "nothing")
    r = extract(nothing, ["extract.store_frames=false"])
    check(r.returncode == 2 and "extract.store_frames" in r.stderr and "extract.features" in r.stderr
          and not os.path.exists(os.path.join(nothing, "train")),
          "store_frames false without features: exit 2 naming both keys, nothing written: " + r.stderr[-300:])
    if tag_cmd:
        out = os.path.join(WORK, "tags-val-featonly")
        r = subprocess.run(MPI + ["-np", "2"] + tag_cmd + ["--set", "data.dir=" + odata, "--set", "tag.split=val",
                                                        "--set", "tag.out=" + out], capture_output=True, text=True)
        same = r.returncode == 0 and open(os.path.join(out, "tags.jsonl")).read() == \
            open(os.path.join(WORK, "tags-val", "tags.jsonl")).read()
        check(same, "the model trained on shards with frames tags the features-only ones identically (exit %d): %s"
              % (r.returncode, r.stderr[-300:]))


def micro_f1(pred_path, manifest, skip=None):
    """Micro F1 of ot-tag's lines against a manifest's tags (case folded,
    as ot_tagnorm does for these ASCII tags); `skip` drops one truth tag."""
    import json
    truth = {}
    for line in open(manifest):
        r = json.loads(line)
        truth[r["id"]] = {t.lower() for t in r["tags"] if t != skip}
    tp = fp = n_true = 0
    for line in open(pred_path):
        r = json.loads(line)
        got = {t["tag"].lower() for t in r["tags"]}
        tp += len(got & truth[r["id"]])
        fp += len(got - truth[r["id"]])
    n_true = sum(len(v) for v in truth.values())
    return 2.0 * tp / (tp + fp + n_true) if tp else 0.0


def mode_valf1():
    data = tiny_data.make(os.path.join(WORK, "unseen"), OT_EXTRACT, CONFIG, unseen_val=True)
    val_manifest = os.path.join(WORK, "unseen", "src", "val.jsonl")
    for model, sets in (("bin", ["model.type=bin"]),
                        ("baseline", ["model.type=baseline", "model.dec_layers=1", "model.tag_len=4", "model.seq_len=16",
                                      "train.steps=120"])):
        d = os.path.join(WORK, model)
        train(d, 2, sets, data=data)
        with h5py.File(os.path.join(d, "final.h5"), "r") as f:
            threshold, val_f1 = float(f.attrs["threshold"]), float(f.attrs["val_f1"])
        out = os.path.join(WORK, model + "-tags-val")
        r = subprocess.run(MPI + ["-np", "2", OT_TAG, "--config", CONFIG, "--set", "data.dir=" + data,
                                  "--set", "train.dir=" + d, "--set", "tag.split=val", "--set", "tag.out=" + out]
                           + tiny_data.set_args(tiny_data.TINY_SETS + sets), capture_output=True, text=True)
        check(r.returncode == 0, "%s: ot-tag on val (exit %d): %s" % (model, r.returncode, r.stderr[-300:]))
        if r.returncode:
            continue
        pred = os.path.join(out, "tags.jsonl")
        f1_all, f1_seen = micro_f1(pred, val_manifest), micro_f1(pred, val_manifest, skip="Mystery")
        check(val_f1 > 0.3 and abs(val_f1 - f1_all) < 1e-6,
              "%s: stored val F1 %.6f (threshold %.3f) = F1 of ot-tag's val output over all tags %.6f"
              % (model, val_f1, threshold, f1_all))
        check(f1_seen - f1_all > 0.02, "%s: the unseen tags matter: F1 without them %.4f vs %.4f"
              % (model, f1_seen, f1_all))


# --- init -------------------------------------------------------------------

def mode_init():
    src = os.path.join(WORK, "bin")
    train(src, 2, ["model.type=bin"])
    init = os.path.join(src, "final.h5")
    gen = ["model.type=baseline", "model.dec_layers=1", "model.tag_len=4", "model.seq_len=16"]
    frozen = ["train.lr=0", "train.steps=2"]
    d_init, d_plain = os.path.join(WORK, "init-lr0"), os.path.join(WORK, "plain-lr0")
    r = train(d_init, 2, gen + frozen + ["train.init=" + init])
    check(r.returncode == 0 and "train.init: " in r.stderr and init in r.stderr,
          "init: exit 0, logs what it copied (%s)" % r.stderr.strip()[-200:])
    train(d_plain, 2, gen + frozen)
    binp, _ = tensors(init)
    a, _ = tensors(os.path.join(d_init, "final.h5"))
    b, _ = tensors(os.path.join(d_plain, "final.h5"))
    enc = [k for k in a if k.startswith("params/") and k.split("/")[1].split(".")[0] in ("vis", "txt", "fuse")]
    rest = [k for k in a if k.startswith("params/") and k not in enc]
    check(len(enc) > 10 and all(np.array_equal(a[k], binp[k]) for k in enc),
          "init: the %d encoder tensors are bin's" % len(enc))
    check(any(not np.array_equal(b[k], binp[k]) for k in enc), "init: without it they are not")
    check(len(rest) > 5 and all(np.array_equal(a[k], b[k]) for k in rest),
          "init: the %d other tensors are the run's own initialisation" % len(rest))
    # every rank starts from the copy: np1 and np2 train the same curve
    d1, d2 = os.path.join(WORK, "init-np1"), os.path.join(WORK, "init-np2")
    r1 = train(d1, 1, gen + ["train.micro_batch=2", "train.steps=10", "train.init=" + init])
    r2 = train(d2, 2, gen + ["train.micro_batch=2", "train.steps=10", "train.init=" + init])
    if check(r1.returncode == 0 and r2.returncode == 0, "init: np1 and np2 exit 0"):
        t1, _ = tiny_data.read_metrics(d1)
        t2, _ = tiny_data.read_metrics(d2)
        worst = max(rel_diff(t1[s]["loss"], t2[s]["loss"]) for s in t1)
        check(sorted(t1) == sorted(t2) == list(range(1, 11)) and worst < 1e-5,
              "init: np1 and np2 losses agree (%.2e)" % worst)
    for what, sets, needles in (
            ("another tokenizer", ["model.vocab=320"], ["train.init", "tokenizer"]),
            ("prefixes naming nothing", ["train.init_params=nope.,"], ["train.init_params", "nope."]),
            ("shape mismatch", ["model.dim=16"], ["final.h5", "another shape"])):
        d = os.path.join(WORK, "err-" + re.sub(r"\W+", "-", what))
        r = train(d, 2, gen + sets + ["train.init=" + init], expect=None)
        check(r.returncode == 2 and all(n in r.stderr for n in needles) and "step 1/" not in r.stderr,
              "init, %s: exit 2 naming %s before training (%s)" % (what, needles, r.stderr.strip()[-200:]))
    r = train(os.path.join(WORK, "err-missing"), 1, gen + ["train.init=" + init + ".gone"], expect=None)
    check(r.returncode == 2 and ".gone" in r.stderr, "init, missing file: exit 2 naming it")

    # Weights that overflow (bin's fusion weights times 1e19): the first loss is
    # not a finite number. ot-train stops there, exit 2 naming the step and
    # train.init, with no checkpoint and no metrics line (it used to train on
    # and publish NaN weights, with "nan" in metrics.jsonl).
    huge = os.path.join(WORK, "huge-init.h5")
    shutil.copy(init, huge)
    with h5py.File(huge, "r+") as f:
        for k in f["params"]:
            if k.startswith("fuse.") and k.endswith(".w"):
                f["params"][k][...] = f["params"][k][()] * np.float32(1e19)
    # A NaN in a checkpoint is refused where it is read, naming the tensor.
    nan = os.path.join(WORK, "nan-init.h5")
    shutil.copy(init, nan)
    with h5py.File(nan, "r+") as f:
        w = f["params"]["fuse.ln.w"]
        w[3] = np.nan
    r = train(os.path.join(WORK, "err-nan"), 2, gen + ["train.init=" + nan], expect=None)
    check(r.returncode == 2 and "nan-init.h5: tensor 'params/fuse.ln.w'" in r.stderr and "element 3" in r.stderr
          and "step 1/" not in r.stderr, "init, a NaN: exit 2 naming file, tensor and element (%s)"
          % r.stderr.strip()[-200:])

    d = os.path.join(WORK, "err-overflow")
    shutil.rmtree(d, ignore_errors=True)
    r = train(d, 2, ["model.type=bin", "train.init=" + huge], expect=None)
    msg = r.stderr.strip()
    check(r.returncode == 2 and msg.count("ot-train: error: step 1: the training loss is ") == 1
          and "train.init=" + huge in msg, "overflowing init: exit 2 at step 1 naming train.init (%s)" % msg[-300:])
    written = sorted(n for n in os.listdir(d) if n.endswith(".h5") or n == "latest") if os.path.isdir(d) else []
    metrics = os.path.join(d, "metrics.jsonl")
    check(not written and (not os.path.exists(metrics) or os.path.getsize(metrics) == 0),
          "overflowing init: no checkpoint and no metrics line written (%s)" % written)


def main():
    global DATA
    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(WORK)
    t0 = time.time()
    DATA = tiny_data.make(WORK, OT_EXTRACT, CONFIG)
    {"ranks": mode_ranks, "resume": mode_resume, "errors": mode_errors, "features": mode_features,
     "valf1": mode_valf1, "init": mode_init}[MODE]()
    return summary("train %s (%.0fs)" % (MODE, time.time() - t0))


if __name__ == "__main__":
    sys.exit(main())
