#!/usr/bin/python3
"""Training throughput: ot-train against PyTorch on the same network.

Network: the default model section (dim 128, 4 heads, MLP x4, 8x8 patches,
4+2+2 blocks, 16 title tokens, BPE vocabulary up to 2048), bin head over the
closed-set vocabulary of an emoji-shaped dataset made here and cached
(1024 items, one 64x64 frame each, 5 tags from 3000 -> ~2900 kept, titles
of 3-6 words), extracted with ot-extract. Batch 64, AdamW.

Runs, one thread per process:
  torch          tests/model/bench_torch.py: the same network and step in
                 PyTorch eager on one in-memory batch (no data loading),
                 with glibc's default malloc and with the tuned malloc
                 settings of machine-facts.md
  ot-train np1   the whole engine: frames read from the HDF5 shards,
                 titles tokenized, targets built, step, AdamW; dropout 0
                 (16 items per forward pass)
  ot-train np1 dropout 0.1   16 items per forward pass too (masks keyed by item)
  ot-train np2   2 ranks x 1 thread, gradient allreduce every step

samples/s of ot-train come from its final line (training time only, the
first step included); no validation or checkpoint inside the timed steps.
  sgemm peak     cblas_sgemm 1024^3, one thread, in the same run
Prints a table, then `ratio_torch=X ratio_torch_tuned=Y peak_fraction=P
scaling_np2=Z dropout_cost=W` (ours / theirs; np1 GFLOP/s / peak; np2 /
np1; dropout 0.1 / dropout 0).

usage: bench_train.py --build BUILD_DIR [--steps 30] [--work DIR]
"""
import argparse
import json
import os
import random
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(SRC, "tests", "train"))
import tiny_data  # noqa: E402

TUNED_MALLOC = {"MALLOC_MMAP_THRESHOLD_": "33554432", "MALLOC_TRIM_THRESHOLD_": "4294967296",
                "MALLOC_TOP_PAD_": "268435456"}
WORDS = ["red", "blue", "cat", "dog", "happy", "face", "hand", "star", "moon", "sun", "tree", "fire",
         "water", "heart", "music", "food", "car", "flag", "light", "smile"]


def make_data(work, build, n=1024, n_vocab=3000, seed=3):
    data = os.path.join(work, "data")
    if os.path.exists(os.path.join(data, "train", "index.json")):
        return data
    rnd = random.Random(seed)
    src = os.path.join(work, "src")
    os.makedirs(os.path.join(src, "img"), exist_ok=True)
    lines = []
    for i in range(n):
        base = [rnd.randrange(256) for _ in range(3)]
        px = []
        for y in range(64):
            for x in range(64):
                k = (x // 8 + y // 8 + i) % 3
                px += [(base[c] + 80 * (k == c)) % 256 for c in range(3)]
        name = "%04d.png" % i
        tiny_data.write_png(os.path.join(src, "img", name), 64, 64, px)
        tags = sorted({"tag%04d" % rnd.randrange(n_vocab) for _ in range(5)})
        title = " ".join(rnd.choice(WORDS) for _ in range(rnd.randint(3, 6)))
        lines.append(json.dumps({"id": str(i), "path": "img/" + name, "title": title, "tags": tags}))
    man = os.path.join(src, "train.jsonl")
    with open(man, "w") as f:
        f.write("\n".join(lines) + "\n")
    r = subprocess.run([os.path.join(build, "stages", "extract", "ot-extract"), "--config",
                        os.path.join(SRC, "configs", "tiny.yaml"), "--set", "data.train=" + man,
                        "--set", "data.dir=" + data, "--set", "extract.frames=1", "--set", "extract.height=64",
                        "--set", "extract.width=64", "--set", "extract.shard_items=256"],
                       capture_output=True, text=True)
    if r.returncode:
        raise SystemExit("ot-extract failed: " + r.stderr)
    return data


def ot_train(build, data, work, name, np_, steps, extra):
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", OMPI_ALLOW_RUN_AS_ROOT="1",
               OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    tdir = os.path.join(work, "run-" + name)
    subprocess.run(["rm", "-rf", tdir])
    cmd = [os.path.join(build, "stages", "train", "ot-train"), "--config", os.path.join(SRC, "configs", "tiny.yaml"),
           "--set", "data.dir=" + data, "--set", "train.dir=" + tdir, "--set", "train.batch=64",
           "--set", "train.steps=%d" % steps, "--set", "train.warmup=5", "--set", "train.eval_every=100000",
           "--set", "train.ckpt_every=100000", "--set", "train.log_every=%d" % steps]
    for s in extra:
        cmd += ["--set", s]
    if np_ > 1:
        cmd = ["mpirun", "--oversubscribe", "-np", str(np_)] + cmd
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    m = re.search(r"done: .* ([0-9.]+) samples/s while training", r.stderr)
    g = re.search(r"samples/s +([0-9.]+) GFLOP/s +peak RSS (\d+) MB", r.stderr)
    n_tags = json.load(open(os.path.join(tdir, "tags.json")))["tags"] if r.returncode == 0 else []
    if not m:
        raise SystemExit("ot-train failed:\n" + r.stderr[-2000:])
    return float(m.group(1)), (float(g.group(1)), int(g.group(2))) if g else (0.0, 0), len(n_tags)


def torch_rate(steps, n_tags, tuned):
    env = dict(os.environ, OMP_NUM_THREADS="1", **(TUNED_MALLOC if tuned else {}))
    r = subprocess.run(["/usr/bin/python3", os.path.join(SRC, "tests", "model", "bench_torch.py"), str(steps), "64",
                        str(n_tags)], capture_output=True, text=True, env=env)
    m = re.search(r"([0-9.]+) samples/s", r.stdout)
    if not m:
        raise SystemExit("bench_torch.py failed:\n" + r.stdout + r.stderr[-2000:])
    return float(m.group(1))


def sgemm_peak(build):
    """OpenBLAS SGEMM 1024^3 GFLOP/s on one thread, measured now by the model
    bench (tests/model/bench_model, which also reports its own step)."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    r = subprocess.run([os.path.join(build, "tests", "model", "bench_model"), "3"], capture_output=True,
                       text=True, env=env)
    m = re.search(r"sgemm 1024\^3 peak \(([0-9.]+) GFLOP/s", r.stdout)
    if not m:
        raise SystemExit("bench_model failed:\n" + r.stdout + r.stderr[-2000:])
    return float(m.group(1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--work")
    a = ap.parse_args()
    build = os.path.abspath(a.build)
    work = a.work or os.path.join(build, "bench", "train", "work")
    os.makedirs(work, exist_ok=True)
    data = make_data(work, build)
    np1, (gf1, rss1), n_tags = ot_train(build, data, work, "np1", 1, a.steps, ["model.dropout=0"])
    drop, (gfd, rssd), _ = ot_train(build, data, work, "np1-dropout", 1, a.steps, ["model.dropout=0.1"])
    np2, (gf2, rss2), _ = ot_train(build, data, work, "np2", 2, a.steps, ["model.dropout=0"])
    peak = sgemm_peak(build)
    th = torch_rate(max(5, a.steps // 3), n_tags, False)
    tt = torch_rate(max(5, a.steps // 3), n_tags, True)
    print("network: dim 128, 4+2+2 blocks, 64x64 frame, 16 title tokens, %d tags, batch 64, 1 thread/process" % n_tags)
    print("%-34s %10s %10s %10s" % ("run", "samples/s", "GFLOP/s", "RSS MB"))
    print("%-34s %10.1f %10s %10s" % ("torch (default malloc)", th, "", ""))
    print("%-34s %10.1f %10s %10s" % ("torch (tuned malloc)", tt, "", ""))
    print("%-34s %10.1f %10.1f %10d" % ("ot-train np1 dropout 0", np1, gf1, rss1))
    print("%-34s %10.1f %10.1f %10d" % ("ot-train np1 dropout 0.1", drop, gfd, rssd))
    print("%-34s %10.1f %10.1f %10d" % ("ot-train np2 dropout 0", np2, gf2, rss2))
    print("%-34s %10s %10.1f" % ("sgemm 1024^3 peak (1 thread)", "", peak))
    print("ratio_torch=%.2f ratio_torch_tuned=%.2f peak_fraction=%.2f scaling_np2=%.2f dropout_cost=%.2f"
          % (np1 / th, np1 / tt, gf1 / peak, np2 / np1, drop / np1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
