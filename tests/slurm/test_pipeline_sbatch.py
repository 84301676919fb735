"""The whole tiny pipeline through slurm/*.sbatch on the test cluster
(fixture `slurm`), chained as a user would with --dependency=afterok,
submitted at once from the source dir:

  extract.sbatch -> train.sbatch (bin) -> index.sbatch (ot-embed, ot-index,
  ot-retrieve) -> train.sbatch (rag, on the retrieved candidates) ->
  tag.sbatch (rag, the val split)

Checks: every job COMPLETED with exit 0 and started only after the job it
depends on ended; index.sbatch (-n 1 -c 2) ran its three stages in order,
ot-embed and ot-index with train.threads = -c; the outputs
are complete (shards, final checkpoints, one FAISS index per source,
candidates for every split, tags.jsonl with each val id exactly once).
rag's answer fuses generation with retrieval at the weight tuned on val
(the checkpoint's retrieval_weight, the last val line's): each tag is
"gen" or "ret", a "ret" tag is one of the item's candidates scored weight x
its retrieval score; tagging again at weight 1 (tag.sbatch,
tag.retrieval_weight=1, tag.threshold=0.3) answers exactly the candidates
scoring >= 0.3, with their scores, and on 1 rank x 2 threads (-c 2) ot-tag
runs 2 threads; tag.sbatch with tag.manifest re-tags the val items from
their raw media, each id once. Then a chain whose first job fails (bad
--set, exit 2): the job depending on it never starts
(DependencyNeverSatisfied).

usage: test_pipeline_sbatch.py SOURCE_DIR BUILD_DIR CLUSTER_DIR WORKDIR
"""
import glob
import json
import os
import shutil
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(HERE, "..", "train"))
from ot_testlib import check, summary  # noqa: E402
import ot_slurm  # noqa: E402
import tiny_data  # noqa: E402
from ot_slurm import diagnose, job_info, job_log, run, wait_final  # noqa: E402

SRC, BUILD, CLUSTER, WORK = sys.argv[1:5]
shutil.rmtree(WORK, ignore_errors=True)
os.makedirs(WORK)
ot_slurm.setup(CLUSTER, BUILD, WORK)

man = tiny_data.write_manifests(os.path.join(WORK, "src"), 40, 12)
SETS = tiny_data.TINY_SETS + [
    "data.train=" + man["train"], "data.val=" + man["val"], "data.dir=" + os.path.join(WORK, "data"),
    "train.steps=20", "model.prompts=4", "model.tag_len=6", "extract.shard_items=8",
    "embed.dir=" + os.path.join(WORK, "embed"), "embed.batch=5", "embed.ngram_dim=256",
    "embed.splits=train,val", "index.dir=" + os.path.join(WORK, "index"),
    "retrieve.dir=" + os.path.join(WORK, "retrieve"), "retrieve.splits=train,val", "retrieve.k=4"]
BIN = ["train.dir=" + os.path.join(WORK, "bin")]
RAG = ["model.type=rag", "train.dir=" + os.path.join(WORK, "rag")]


def submit(script, sets, after=None, alloc=("-n", "2")):
    cmd = ["sbatch", "--parsable", *alloc, "-o", os.path.join(WORK, "job-%j.out")]
    if after:
        cmd.append("--dependency=afterok:" + after)
    cmd += ["slurm/" + script, "configs/tiny.yaml"] + tiny_data.set_args(sets)
    r = run(cmd, cwd=SRC)
    if r.returncode != 0:
        raise SystemExit("sbatch %s failed: %s" % (script, r.stderr))
    return r.stdout.strip().split(";")[0]


def epoch(t):
    return time.mktime(time.strptime(t, "%Y-%m-%dT%H:%M:%S"))


t0 = time.time()
chain = [("extract.sbatch", SETS)]
chain += [("train.sbatch", SETS + BIN), ("index.sbatch", SETS + BIN)]
chain += [("train.sbatch", SETS + RAG), ("tag.sbatch", SETS + RAG + ["tag.split=val"])]
jobs, prev = [], None
for script, sets in chain:
    # index.sbatch on 1 rank x 2 threads: its stages get -c as train.threads
    prev = submit(script, sets, prev, ("-n", "1", "-c", "2") if script == "index.sbatch" else ("-n", "2"))
    jobs.append((script, prev))
infos = [wait_final(job, 600) for _, job in jobs]
print("chain of %d jobs in %.0f s" % (len(jobs), time.time() - t0))
ok = True
for (script, job), info in zip(jobs, infos):
    good = info.get("JobState") == "COMPLETED" and info.get("ExitCode") == "0:0"
    ok &= check(good, "%s job %s COMPLETED, exit 0 (%s %s)" % (script, job, info.get("JobState"),
                                                                  info.get("ExitCode")))
    if not good:
        diagnose(job)
if ok:
    for (_, a), (script, b), ia, ib in zip(jobs, jobs[1:], infos, infos[1:]):
        check(epoch(ib["StartTime"]) >= epoch(ia["EndTime"]),
              "%s started after the job it depends on ended" % script)
    log = job_log(jobs[2][1])
    at = [log.find("/stages/%s/ot-%s " % (s, s)) for s in ("embed", "index", "retrieve")]
    check(all(a >= 0 for a in at) and at == sorted(at), "index.sbatch ran ot-embed, ot-index, ot-retrieve in order")
    launches = [l for l in log.splitlines() if l.startswith("[index.sbatch] ") and "/stages/" in l]
    check(len(launches) == 3 and all("--set train.threads=2 " in l for l in launches),
          "index.sbatch -c 2: every stage launched with train.threads=2 (OpenBLAS/FAISS threads)")
    for d in ("bin", "rag"):
        check(os.path.exists(os.path.join(WORK, d, "final.h5")), "%s/final.h5 written" % d)
    for src in ("video", "title", "fused", "ngram"):
        meta = os.path.join(WORK, "index", src, "meta.json")
        check(os.path.exists(meta) and json.load(open(meta)).get("complete") is True,
              "index of source %s complete" % src)
    for split in ("train", "val"):
        idx = os.path.join(WORK, "retrieve", split, "index.json")
        check(os.path.exists(idx) and json.load(open(idx)).get("complete") is True,
              "candidates of %s complete" % split)
    val_ids = [json.loads(l)["id"] for l in open(man["val"])]
    out = [json.loads(l) for l in open(os.path.join(WORK, "rag", "tags-val", "tags.jsonl"))]
    check(sorted(o["id"] for o in out) == sorted(val_ids), "tags.jsonl: every val id exactly once")
    import h5py
    cands = {}  # val id -> {normalised tag: retrieval score} of the first model.rag_m (20) candidates
    for path in sorted(glob.glob(os.path.join(WORK, "retrieve", "val", "cand-*.h5"))):
        with h5py.File(path, "r") as f:
            off, tags, score = f["cand/offsets"][:], f["cand/tag"].asstr()[:], f["cand/score"][:]
            for i, item in enumerate(f["id"].asstr()[:]):
                c = cands.setdefault(item, {})
                for j in range(off[i], min(off[i + 1], off[i] + 20)):
                    c.setdefault(tags[j].strip().lower(), float(score[j]))
    with h5py.File(os.path.join(WORK, "rag", "final.h5"), "r") as f:
        w = float(f.attrs["retrieval_weight"])
    val_lines = [json.loads(l) for l in open(os.path.join(WORK, "rag", "metrics.jsonl")) if '"val"' in l]
    check(0 <= w <= 1 and val_lines and val_lines[-1].get("retrieval_weight") == w,
          "rag checkpoint's retrieval weight %g = the last val line's" % w)
    check(all(t["source"] in ("gen", "ret") for o in out for t in o["tags"]), "rag tags: gen or ret")
    ret = [(o["id"], t) for o in out for t in o["tags"] if t["source"] == "ret"]
    check(all(abs(t["score"] - w * cands[i].get(t["tag"], -9)) < 1e-5 for i, t in ret),
          "every ret tag is a candidate scored weight x retrieval score (%d ret tags)" % len(ret))
    job = submit("tag.sbatch", SETS + RAG + ["tag.split=val", "tag.retrieval_weight=1", "tag.threshold=0.3",
                                              "tag.out=" + os.path.join(WORK, "rag", "tags-w1")],
                 alloc=("-n", "1", "-c", "2"))
    info = wait_final(job, 300)
    if check(info.get("ExitCode") == "0:0", "tag.sbatch at weight 1 exit 0 (%s)" % info.get("ExitCode")):
        w1 = {json.loads(l)["id"]: json.loads(l)["tags"]
              for l in open(os.path.join(WORK, "rag", "tags-w1", "tags.jsonl"))}
        want = {i: sorted((t, round(s, 5)) for t, s in c.items() if s >= 0.3) for i, c in cands.items()}
        got = {i: sorted((t["tag"], round(t["score"], 5)) for t in tags) for i, tags in w1.items()}
        check(got == want and sum(map(len, want.values())) > 0,
              "weight 1: exactly the candidates scoring >= 0.3 (%d tags)" % sum(map(len, want.values())))
        check("(1 rank(s) x 2 thread(s))" in job_log(job), "tag.sbatch -n 1 -c 2: ot-tag ran 2 threads per rank")
    else:
        diagnose(job)
    # An archive re-tagged from its raw media (the val manifest), as a user
    # would re-tag one: tag.sbatch with tag.manifest, the Bin checkpoint.
    archive = os.path.join(WORK, "archive")
    job = submit("tag.sbatch", SETS + BIN + ["tag.manifest=" + man["val"], "tag.out=" + archive])
    info = wait_final(job, 300)
    if check(info.get("ExitCode") == "0:0", "tag.sbatch over raw media exit 0 (%s)" % info.get("ExitCode")):
        raw = [json.loads(l) for l in open(os.path.join(archive, "tags.jsonl"))]
        check(sorted(o["id"] for o in raw) == sorted(val_ids), "raw media: every manifest id exactly once")
        check(all(t["source"] == "cls" for o in raw for t in o["tags"]) and any(o["tags"] for o in raw),
              "raw media: Bin's tags (cls), not all empty")
    else:
        diagnose(job)

# a failing first job: its dependant never runs
bad = submit("extract.sbatch", SETS + ["extract.frames=0"])
dep = submit("tag.sbatch", SETS + RAG + ["tag.split=val", "tag.out=" + os.path.join(WORK, "never")], bad)
ib = wait_final(bad, 120)
check(ib.get("JobState") == "FAILED" and ib.get("ExitCode") == "2:0",
      "bad --set: job FAILED with exit 2 (%s %s)" % (ib.get("JobState"), ib.get("ExitCode")))
reason = ""
deadline = time.time() + 30
while time.time() < deadline and reason != "DependencyNeverSatisfied":
    reason = job_info(dep).get("Reason", "")
    time.sleep(0.5)
check(reason == "DependencyNeverSatisfied" and job_info(dep).get("JobState") == "PENDING",
      "the dependant of a failed job never starts (%s)" % reason)
run(["scancel", dep])
check(not os.path.exists(os.path.join(WORK, "never")), "the dependant wrote nothing")
sys.exit(summary("pipeline sbatch"))
