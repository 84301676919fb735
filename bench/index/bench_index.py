"""ot-index benchmarks (label bench), on synthetic corpora from ot-synth-emb.

overhead: ot-index build + ot-index-query search against the same work done
  by FAISS driven from python3-faiss (vectors read with h5py, the same
  factory string, train sample size, nprobe and thread count), medians of
  --runs runs each; prints ours/python (goal <= 1.10).
scale: a 3M-vector corpus (generated once), `mpirun -np 2 ot-index` with an
  IVF-PQ factory; build time, peak RSS (largest rank, and all ranks together,
  sampled), then queries/s and recall@10 against exact search on 10k queries
  for several nprobe.

usage: bench_index.py --build BUILD_DIR [--work DIR] [overhead|scale|both]
Threads: 1 per process (2 ranks x 1 thread on the 2-core machine)."""
import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import threading
import time

ENV = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1",
           OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")


def tools(build):
    d = os.path.join(build, "stages", "index")
    return {t: os.path.join(d, t) for t in ("ot-index", "ot-synth-emb", "ot-index-query")}


def sh(cmd, **kw):
    p = subprocess.run(cmd, env=ENV, capture_output=True, text=True, **kw)
    if p.returncode:
        sys.exit("%s failed (%d):\n%s%s" % (" ".join(cmd), p.returncode, p.stdout, p.stderr[-4000:]))
    return p


def corpus(t, path, n, nq, clusters, per_file):
    if not os.path.exists(os.path.join(path, "val", "index.json")):
        t0 = time.time()
        sh([t["ot-synth-emb"], path, "--train", str(n), "--query", str(nq), "--dim", "128",
            "--clusters", str(clusters), "--file-items", str(per_file), "--seed", "11"])
        print("corpus %s: %d vectors generated in %.0f s" % (path, n, time.time() - t0), flush=True)
    return path


def config(path, emb, out, factory, sample, nprobe, sharded=False):
    with open(path, "w") as f:
        f.write("train:\n  threads: 1\n  seed: 5\nembed:\n  dir: %s\nindex:\n  dir: %s\n"
                "  sources: video=visual:visual\n  factory: \"%s\"\n  train_sample: %d\n  nprobe: %d\n"
                "  sharded: %s\n" % (emb, out, factory, sample, nprobe, "true" if sharded else "false"))
    return path


def python_faiss(emb, factory, sample, nprobe, out):
    """The same build + search from python3-faiss, timed inside one process."""
    code = r"""
import faiss, h5py, json, numpy as np, sys, time
emb, factory, sample, nprobe, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
faiss.omp_set_num_threads(1)
t0 = time.time()
files = json.load(open(emb + "/train/index.json"))["files"]
xb = np.concatenate([h5py.File(emb + "/train/" + f["path"], "r")["vec/visual"][:] for f in files])
rng = np.random.default_rng(5)
ix = faiss.index_factory(xb.shape[1], factory, faiss.METRIC_INNER_PRODUCT)
ix.train(xb[np.sort(rng.choice(len(xb), min(sample, len(xb)), replace=False))])
ix.add(xb)
faiss.write_index(ix, out)
build = time.time() - t0
qf = json.load(open(emb + "/val/index.json"))["files"]
xq = np.concatenate([h5py.File(emb + "/val/" + f["path"], "r")["vec/visual"][:] for f in qf])
ix = faiss.read_index(out)
faiss.extract_index_ivf(ix).nprobe = nprobe
t0 = time.time()
ix.search(xq, 10)
print(json.dumps({"build": build, "search": time.time() - t0}))
"""
    p = sh(["/usr/bin/python3", "-c", code, emb, factory, str(sample), str(nprobe), out])
    return json.loads(p.stdout.strip().splitlines()[-1])


def ours(t, work, emb, factory, sample, nprobe):
    out = os.path.join(work, "ix-overhead")
    shutil.rmtree(out, ignore_errors=True)
    cfg = config(os.path.join(work, "overhead.yaml"), emb, out, factory, sample, nprobe)
    t0 = time.time()
    sh([t["ot-index"], "--config", cfg])
    build = time.time() - t0
    p = sh([t["ot-index-query"], out, "video", emb, "val", "--k", "10", "--nprobe", str(nprobe)])
    return {"build": build, "search": json.loads(p.stdout.strip().splitlines()[-1])["seconds"]}


def overhead(t, work, runs):
    emb = corpus(t, os.path.join(work, "emb-300k"), 300000, 10000, 2000, 100000)
    factory, sample, nprobe = "IVF1024,PQ64np", 60000, 32
    res = {"ours": [], "python": []}
    for r in range(runs):  # interleaved, so drifting machine load hits both alike
        res["ours"].append(ours(t, work, emb, factory, sample, nprobe))
        res["python"].append(python_faiss(emb, factory, sample, nprobe, os.path.join(work, "py.faiss")))
        print("run %d: ours %s, python %s" % (r, res["ours"][-1], res["python"][-1]), flush=True)
    med = {k: {p: statistics.median(x[p] for x in v) for p in ("build", "search")} for k, v in res.items()}
    total = {k: m["build"] + m["search"] for k, m in med.items()}
    print("overhead (300k x 128, %s, train %d, nprobe %d, 10k queries, 1 thread, median of %d):"
          % (factory, sample, nprobe, runs))
    for k in ("ours", "python"):
        print("  %-6s build %.2f s, search %.3f s, total %.2f s" % (k, med[k]["build"], med[k]["search"], total[k]))
    print("  ratio ours/python: build %.3f, search %.3f, total %.3f (goal <= 1.10)"
          % (med["ours"]["build"] / med["python"]["build"], med["ours"]["search"] / med["python"]["search"],
             total["ours"] / total["python"]), flush=True)


def rss_of_tree(pid):
    """Resident bytes of pid and all its descendants (from /proc)."""
    kids, total = {}, 0
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/stat" % d) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                kids.setdefault(int(fields[1]), []).append(int(d))
            except OSError:
                pass
    todo = [pid]
    while todo:
        p = todo.pop()
        todo += kids.get(p, [])
        try:
            with open("/proc/%d/statm" % p) as f:
                total += int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except OSError:
            pass
    return total


def scale(t, work, mpiexec):
    emb = corpus(t, os.path.join(work, "emb-3m"), 3000000, 10000, 20000, 100000)
    factory, sample = "IVF4096,PQ64np", 200000
    out = os.path.join(work, "ix-3m")
    shutil.rmtree(out, ignore_errors=True)
    cfg = config(os.path.join(work, "scale.yaml"), emb, out, factory, sample, 64)
    cmd = mpiexec + ["-np", "2", t["ot-index"], "--config", cfg]
    t0 = time.time()
    p = subprocess.Popen(cmd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peak = [0]

    def sample_rss():
        while p.poll() is None:
            peak[0] = max(peak[0], rss_of_tree(p.pid))
            time.sleep(0.5)

    th = threading.Thread(target=sample_rss)
    th.start()
    log = p.communicate()[0]
    th.join()
    build = time.time() - t0
    if p.returncode:
        sys.exit("ot-index failed:\n" + log[-4000:])
    print("\n".join(line for line in log.splitlines() if "WARNING" not in line))
    largest = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print("scale: mpirun -np 2 ot-index, 3M x 128, %s, train %d: %.1f s wall; peak RSS %.0f MB (largest "
          "process), %.0f MB (all ranks, sampled)" % (factory, sample, build, largest, peak[0] / 2**20), flush=True)
    q = sh([t["ot-index-query"], out, "video", emb, "val", "--k", "10", "--nprobe", "8,16,32,64,128,256",
            "--max-queries", "10000", "--truth", os.path.join(work, "truth-3m.bin")])
    sys.stderr.write(q.stderr)
    print(q.stdout, flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--work", default=None)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--mpiexec", default="mpirun --oversubscribe --allow-run-as-root")
    ap.add_argument("what", nargs="?", default="both", choices=["overhead", "scale", "both"])
    a = ap.parse_args()
    work = a.work or os.path.join(a.build, "bench-index")
    os.makedirs(work, exist_ok=True)
    t = tools(a.build)
    mpiexec = a.mpiexec.split(";") if ";" in a.mpiexec else a.mpiexec.split()
    if a.what in ("overhead", "both"):
        overhead(t, work, a.runs)
    if a.what in ("scale", "both"):
        scale(t, work, mpiexec)


if __name__ == "__main__":
    main()
