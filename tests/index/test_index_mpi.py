"""ot-index end to end on a synthetic embedding set (ot-synth-emb):

- Flat, 1 rank: FAISS's own read_index opens index.faiss and returns the same
  top-k as ot_index_search (ot-index-query --out) and as numpy brute force;
- mpirun -np 2, Flat sharded: shard-00/01.faiss (each readable by FAISS) give
  the same top-k as the merged Flat index;
- IVF-PQ: 1 rank and mpirun -np 2 (trained once, merged with merge_from)
  produce the same index (same search results through python3-faiss);
- rows.h5 lists ids, groups and tags in the embedding files' order;
- a rerun with complete outputs returns at once without touching them;
- the disk full at the last flush of index.faiss fails the build (no
  meta.json) instead of publishing a truncated index as complete;
- errors: a source naming a vector the files lack, a bad factory string, a
  malformed index.sources, a missing embedding set (exit 2, message naming
  the field).

usage: test_index_mpi.py OT_INDEX OT_SYNTH OT_QUERY MPIEXEC WORKDIR"""
import os
import resource
import shutil
import signal
import subprocess
import sys

import h5py
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from ot_testlib import check, mpi_command, summary  # noqa: E402

import faiss  # noqa: E402

ot_index, ot_synth, ot_query, mpiexec, work = sys.argv[1:6]
shutil.rmtree(work, ignore_errors=True)
os.makedirs(work)
emb = os.path.join(work, "emb")
K = 10


def run(cmd, expect=0):
    p = subprocess.run(cmd, capture_output=True, text=True)
    if not check(p.returncode == expect, "%s exited %d, expected %d\n%s%s"
                 % (" ".join(cmd), p.returncode, expect, p.stdout, p.stderr[-3000:])):
        pass
    return p


def config(name, **index):
    path = os.path.join(work, name + ".yaml")
    lines = ["train:", "  seed: 7", "embed:", "  dir: %s" % emb, "index:"]
    lines += ["  %s: %s" % (k, v) for k, v in index.items()]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def build(cfg, ranks=1, expect=0):
    cmd = ([*mpi_command(mpiexec), "-np", str(ranks)] if ranks > 1 else []) + [ot_index, "--config", cfg]
    return run(cmd, expect)


def vectors(split, name):
    with open(os.path.join(emb, split, "index.json")) as f:
        import json
        files = json.load(f)["files"]
    return np.concatenate([h5py.File(os.path.join(emb, split, x["path"]), "r")["vec/" + name][:] for x in files])


def ours(index_dir, source, nprobe=None):
    out = os.path.join(work, "out.bin")
    cmd = [ot_query, index_dir, source, emb, "val", "--k", str(K), "--out", out]
    if nprobe:
        cmd += ["--nprobe", str(nprobe)]
    run(cmd)
    raw = open(out, "rb").read()
    n = len(raw) // (12 * K)
    rows = np.frombuffer(raw[: 8 * n * K], dtype=np.int64).reshape(n, K)
    sims = np.frombuffer(raw[8 * n * K:], dtype=np.float32).reshape(n, K)
    return rows, sims


run([ot_synth, emb, "--train", "6000", "--query", "300", "--dim", "32", "--clusters", "60",
     "--file-items", "700", "--vectors", "visual,title", "--seed", "3"])
xb, qt, qv = vectors("train", "visual"), vectors("val", "title"), vectors("val", "visual")

# --- Flat, 1 rank: FAISS reads our file; same results as ours and as numpy
flat = os.path.join(work, "flat")
cfg = config("flat", dir=flat, sources="video=visual:visual,cross=title:visual", factory="Flat")
build(cfg)
fx = faiss.read_index(os.path.join(flat, "cross", "index.faiss"))
check(fx.ntotal == 6000 and fx.d == 32 and fx.metric_type == faiss.METRIC_INNER_PRODUCT,
      "python3-faiss sees ntotal/d/metric of the file")
D, I = fx.search(qt, K)
rows, sims = ours(flat, "cross")
check(np.array_equal(rows, I), "ot_index_search rows == faiss.read_index(...).search rows (Flat)")
check(np.allclose(sims, D, atol=1e-5), "same similarities")
brute = np.argsort(-(qt @ xb.T), axis=1, kind="stable")[:, :K]
check((rows == brute).mean() > 0.999, "Flat top-%d == numpy brute force" % K)

# rows.h5: ids, groups and tags of the embedding files, in order
with h5py.File(os.path.join(flat, "video", "rows.h5"), "r") as r:
    ids = [x.decode() for x in r["id"][:]]
    off = r["tags/offsets"][:]
    text = [x.decode() for x in r["tags/text"][:]]
    groups = [x.decode() for x in r["group"][:]]
check(ids[0] == "syn-train-000000000" and ids[5999] == "syn-train-000005999" and len(ids) == 6000,
      "rows.h5 ids in file order")
with h5py.File(os.path.join(emb, "train", "emb-000003.h5"), "r") as e:
    row = 3 * 700 + 17
    eo = e["tags/offsets"][:]
    etags = [x.decode() for x in e["tags/text"][eo[17]:eo[18]]]
check(text[off[row]:off[row + 1]] == etags and groups[row] == ids[row], "rows.h5 tags/groups of row %d" % row)

# --- rerun: nothing to do, files untouched
t0 = os.stat(os.path.join(flat, "video", "index.faiss")).st_mtime_ns
p = build(cfg)
check("nothing to do" in p.stderr and os.stat(os.path.join(flat, "video", "index.faiss")).st_mtime_ns == t0,
      "rerun with complete outputs does nothing")
# a folder missing a file (copied in part, a file removed) is built again,
# not called complete: ot-retrieve would fail on it with "run ot-index"
for gone in ("rows.h5", "index.faiss"):
    os.remove(os.path.join(flat, "video", gone))
    p = build(cfg)
    skipped = [x for x in p.stderr.splitlines() if "source video:" in x and "nothing to do" in x]
    check(not skipped and os.path.exists(os.path.join(flat, "video", gone)),
          "%s removed: the source is built again" % gone)

# --- the disk fills up at the last flush of index.faiss: the build fails and
# nothing reads as complete (a rerun would otherwise skip the truncated file
# for good). RLIMIT_FSIZE one byte short of the index's size stands in for
# the full disk: FAISS's buffered writes pass, the flush at its close fails.
# The index must be the largest file written (rows.h5 takes ~4 MB): dim 512.
emb_big = os.path.join(work, "emb-big")
run([ot_synth, emb_big, "--train", "3000", "--query", "10", "--dim", "512", "--clusters", "10",
     "--file-items", "1000", "--vectors", "visual", "--seed", "3"])


def big_config(name):
    path = os.path.join(work, name + ".yaml")
    with open(path, "w") as f:
        f.write("embed:\n  dir: %s\nindex:\n  dir: %s\n  sources: video=visual:visual\n  factory: Flat\n"
                % (emb_big, os.path.join(work, name)))
    return path


build(big_config("full-ok"))
size = os.path.getsize(os.path.join(work, "full-ok", "video", "index.faiss"))
check(size > os.path.getsize(os.path.join(work, "full-ok", "video", "rows.h5")) + 4096,
      "index.faiss (%d bytes) is the largest file written" % size)


def disk_full():
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a kill
    resource.setrlimit(resource.RLIMIT_FSIZE, (size - 1, resource.RLIM_INFINITY))


p = subprocess.run([ot_index, "--config", big_config("full")], capture_output=True, text=True,
                   preexec_fn=disk_full)
folder = os.path.join(work, "full", "video")
check(p.returncode == 1 and "index.faiss" in p.stderr,
      "full disk at the last flush: exit 1 naming index.faiss (exit %d: %s)" % (p.returncode, p.stderr[-400:]))
check(not os.path.exists(os.path.join(folder, "meta.json")) and not os.path.exists(os.path.join(folder, "index.faiss")),
      "full disk: no meta.json and no truncated index.faiss published (%s)" % sorted(os.listdir(folder)))

# --- Flat sharded over 2 ranks == merged Flat
sh = os.path.join(work, "sharded")
build(config("sharded", dir=sh, sources="cross=title:visual", factory="Flat", sharded="true"), ranks=2)
parts = [faiss.read_index(os.path.join(sh, "cross", "shard-%02d.faiss" % s)) for s in range(2)]
check(sum(x.ntotal for x in parts) == 6000 and all(x.ntotal > 2000 for x in parts),
      "two FAISS-readable shards splitting the 6000 rows")
check(not os.path.exists(os.path.join(sh, "cross", "index.faiss")), "no merged file when sharded")
srows, ssims = ours(sh, "cross")
check(np.array_equal(srows, rows) and np.allclose(ssims, sims, atol=1e-6), "sharded Flat search == unsharded")

# --- IVF-PQ: 1 rank and 2 ranks (merge_from) give the same index
ivf = {}
for ranks in (1, 2):
    d = os.path.join(work, "ivf%d" % ranks)
    build(config("ivf%d" % ranks, dir=d, sources="video=visual:visual", factory="IVF16,PQ8np",
                 train_sample=3000, nprobe=4), ranks=ranks)
    ix = faiss.read_index(os.path.join(d, "video", "index.faiss"))
    faiss.extract_index_ivf(ix).nprobe = 4
    ivf[ranks] = (ix.ntotal,) + ix.search(qv, K)
    r, s = ours(d, "video")
    check(np.array_equal(r, ivf[ranks][2]) and np.allclose(s, ivf[ranks][1], atol=1e-5),
          "IVF-PQ (%d rank(s)): ours == python3-faiss on our file at the recorded nprobe" % ranks)
check(ivf[1][0] == ivf[2][0] == 6000 and np.array_equal(ivf[1][2], ivf[2][2]),
      "IVF-PQ built on 1 and 2 ranks gives the same results")
recall = np.mean([len(set(a) & set(b)) / K for a, b in zip(ivf[2][2], np.argsort(-(qv @ xb.T), axis=1)[:, :K])])
check(recall > 0.5, "IVF16,PQ8np recall@10 %.3f is that of a working index" % recall)

# --- errors
bad = os.path.join(work, "bad")
p = build(config("e1", dir=bad, sources="video=visual:audio", factory="Flat"), expect=2)
check("'audio'" in p.stderr and "index.json" in p.stderr, "missing vector named: " + p.stderr[-300:])
p = build(config("e2", dir=bad, sources="video=visual:visual", factory="IVF16,Bogus"), ranks=2, expect=2)
check("index.factory" in p.stderr, "bad factory named: " + p.stderr[-300:])
p = build(config("e3", dir=bad, sources="video=visual", factory="Flat"), expect=2)
check("index.sources" in p.stderr, "malformed sources named: " + p.stderr[-300:])
p = run([ot_index, "--config", cfg, "--set", "embed.dir=" + os.path.join(work, "nowhere")], expect=2)
check("nowhere" in p.stderr, "missing embedding set named: " + p.stderr[-300:])
check(not os.path.exists(os.path.join(bad, "video", "meta.json")), "no meta.json after a failed build")

# --- embeddings that are not unit rows: the index is inner product over
# L2-normalised vectors, so a longer row outranks the true neighbours of every
# query and a NaN poisons training and search. Refused, naming file, vector,
# row and item; a zero row (ot-embed's n-grams of an empty title) is fine.
def corrupt(name, f, row, how):
    d = os.path.join(work, name)
    shutil.rmtree(d, ignore_errors=True)
    run([ot_synth, d, "--train", "400", "--query", "5", "--dim", "16", "--clusters", "4",
         "--file-items", "200", "--vectors", "visual", "--seed", "5"])
    with h5py.File(os.path.join(d, "train", "emb-%06d.h5" % f), "r+") as h:
        v = h["vec/visual"]
        x = v[:]
        x[row] = how(x[row])
        v[...] = x
    path = os.path.join(work, name + ".yaml")
    with open(path, "w") as y:
        y.write("embed:\n  dir: %s\nindex:\n  dir: %s\n  sources: video=visual:visual\n  factory: %s\n"
                "  train_sample: 400\n  sharded: true\n" % (d, os.path.join(work, name + "-ix"),
                                                          "IVF4,Flat" if name == "nan" else "Flat"))
    return path


p = build(corrupt("long", 1, 3, lambda r: 10 * r), ranks=2, expect=2)
check("emb-000001.h5: vector 'visual' of row 3 (item 'syn-train-000000203') has norm > 1" in p.stderr,
      "a row of norm 10 refused, named: " + p.stderr[-400:])
check(not os.path.exists(os.path.join(work, "long-ix", "video", "meta.json")), "no meta.json after it")
p = build(corrupt("nan", 0, 7, lambda r: r * np.nan), expect=2)
check("emb-000000.h5: vector 'visual' of row 7 (item 'syn-train-000000007') is not finite" in p.stderr,
      "a NaN row refused (IVF: while sampling for training), named: " + p.stderr[-400:])
build(corrupt("zero", 0, 7, lambda r: 0 * r))
check(os.path.exists(os.path.join(work, "zero-ix", "video", "meta.json")), "a zero row is indexed")

sys.exit(summary("index.mpi"))
