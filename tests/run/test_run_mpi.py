"""ot-run end to end under mpirun -np 2 on jobs/tiny.yaml (extract -> train ->
embed -> index -> retrieve -> eval of retrieval alone) over a tiny tagged
image set made here. Checks: a job killed with SIGKILL (launcher and ranks)
during training is completed by a rerun that skips the steps before and
resumes training from its checkpoint; the outputs are there and right
(every item extracted, embedded and answered, retrieval alone scored); a
rerun skips every step and rewrites nothing (mtimes); a changed set in the
last step reruns that step only; a changed set in an earlier step reruns it
and the steps after it (its `after` chain); a step whose input step ran again
in another job, or whose input file (eval.pred, embed.ckpt) was rewritten, reruns; a step stopped part-way starts over, not resumes, when
its input step runs again (embed after a retrained model) or its config changed
since (training), and resumes when neither did; `after: []` cuts the chain; --dry-run shows the plan; shell steps run once
on rank 0; a failing step stops the job with its exit code and no marker; a shell step can start an MPI program;
bad job files exit 2 naming file:line and the field.

usage: test_run_mpi.py OT_RUN MPIEXEC SOURCE_DIR WORKDIR
"""
import fcntl
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "train"))
import tiny_data  # noqa: E402

sys.path.insert(0, os.path.join(HERE, ".."))
from ot_testlib import check, mpi_command, summary  # noqa: E402

OT_RUN, MPIEXEC, SRC, WORK = sys.argv[1:5]
MPI = mpi_command(MPIEXEC) + ["-np", "2"]
STEPS = ["extract", "train", "embed", "index", "retrieve", "eval-retrieval"]
STATE = os.path.join(WORK, "runs", "tiny")
TRAIN_STEPS = 300  # long enough to be killed mid-way (tiny.yaml's 40 take < 1 s)


def write_manifests():
    """runs/tiny/src/{train,val,test}.jsonl as jobs/tiny.yaml expects (test = val's recipe, other seed)."""
    src = os.path.join(STATE, "src")
    man = tiny_data.write_manifests(src, 64, 16)
    test = tiny_data.write_manifests(os.path.join(WORK, "test-src"), 0, 16, seed=23)["val"]
    with open(os.path.join(src, "test.jsonl"), "w") as out:
        for line in open(test):
            item = json.loads(line)
            item["id"] = item["id"].replace("val-", "test-")
            name = "test-" + os.path.basename(item["path"])
            shutil.copy(os.path.join(WORK, "test-src", item["path"]), os.path.join(src, "img", name))
            item["path"] = "img/" + name
            out.write(json.dumps(item) + "\n")
    man["test"] = os.path.join(src, "test.jsonl")
    return {k: [json.loads(x)["id"] for x in open(v)] for k, v in man.items()}


def ot_run(args, np2=True, job="jobs/tiny.yaml", env=None):
    cmd = (MPI if np2 else []) + [OT_RUN] + args + ([job] if job else [])
    return subprocess.run(cmd, cwd=WORK, capture_output=True, text=True,
                          env=dict(os.environ, **env) if env else None)


def step_lines(out):
    """{step name: 'run' | 'skip' | 'rerun'} from the [step i/n] lines."""
    res = {}
    for m in re.finditer(r"^\[step \d+/\d+\] (\S+) \((\S+)\) (skipped|\.\.\.)(.*)$", out, re.M):
        rest = m.group(4)
        res[m.group(1)] = ("skip" if m.group(3) == "skipped" else "rerun" if "config or input changed" in rest
                           else "input" if "which runs" in rest else "redo" if "redone as asked" in rest
                           else "run")
    return res


def mtimes():
    res = {}
    for root, _, files in os.walk(STATE):
        if os.path.relpath(root, STATE).startswith("src"):
            continue
        for f in files:
            p = os.path.join(root, f)
            res[os.path.relpath(p, STATE)] = os.stat(p).st_mtime_ns
    return res


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def kill_during_train(args=()):
    """Start the job, SIGKILL the launcher and its ranks once training wrote
    a checkpoint (a new one: `latest` written after the start): the state a
    crashed node or a killed allocation leaves."""
    latest = os.path.join(STATE, "bin", "latest")
    since = os.stat(latest).st_mtime_ns if os.path.exists(latest) else -1
    p = subprocess.Popen(MPI + [OT_RUN] + list(args) + ["jobs/tiny.yaml"], cwd=WORK, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, start_new_session=True)
    deadline = time.time() + 90

    def fresh():
        try:
            return os.stat(latest).st_mtime_ns != since
        except OSError:
            return False
    while time.time() < deadline and p.poll() is None and not fresh():
        time.sleep(0.02)
    ranks = [int(x) for x in subprocess.run(["pgrep", "-P", str(p.pid)], capture_output=True,
                                            text=True).stdout.split()]
    in_train = p.poll() is None and fresh()
    os.kill(p.pid, signal.SIGKILL)
    for pid in ranks:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    out = p.communicate()[0]
    deadline = time.time() + 20
    while time.time() < deadline and any(alive(pid) for pid in ranks):
        time.sleep(0.05)
    check(in_train and len(ranks) == 2, "killed: 2 ranks, killed while training (checkpoint written)")
    return out


def check_outputs(ids):
    data = os.path.join(STATE, "data")
    for split in ("train", "val", "test"):
        idx = json.load(open(os.path.join(data, split, "index.json")))
        check(idx["items"] == len(ids[split]), "extract: %s has all %d items" % (split, len(ids[split])))
    check(os.path.exists(os.path.join(STATE, "bin", "final.h5")), "train: final.h5 written")
    steps = [m["step"] for m in map(json.loads, open(os.path.join(STATE, "bin", "metrics.jsonl"))) if m["kind"] == "train"]
    check(steps and max(steps) == TRAIN_STEPS, "train: ran to step %d" % TRAIN_STEPS)
    for split in ("train", "val", "test"):
        idx = json.load(open(os.path.join(STATE, "bin", "embed", split, "index.json")))
        check(sum(f["items"] for f in idx["files"]) == len(ids[split]), "embed: %s every item" % split)
    metas = [os.path.join(STATE, "bin", "index", s, "meta.json") for s in os.listdir(os.path.join(STATE, "bin", "index"))]
    check(metas and all(os.path.exists(m) for m in metas), "index: meta.json of every source")
    answer = [json.loads(x) for x in open(os.path.join(STATE, "bin", "retrieve", "test", "tags.jsonl"))]
    check(sorted(a["id"] for a in answer) == sorted(ids["test"]), "retrieve: one answer per test item")
    rep = json.load(open(os.path.join(STATE, "report.json")))
    rows = {r["name"]: r for r in rep["rows"]} if isinstance(rep, dict) and "rows" in rep else {}
    f1 = rows.get("Retrieval alone", {}).get("micro", {}).get("overall", {}).get("f1", -1)
    check(f1 > 0.6, "eval: retrieval alone scored, F1 %.3f > 0.6 (colour/pattern tags are easy)" % f1)
    for s in STEPS:
        marker = open(os.path.join(STATE, s + ".done")).read()
        check(re.match(r"# ot-run step %s \(\w+\), config hash [0-9a-f]{16}\n# run [0-9a-f]{16}\n"
                       r"# build [0-9a-f]\S*\+[\w.-]+\+openblas-\S+\n"
                       % re.escape(s), marker) and "\ndata:\n" in marker,
              "marker %s.done: key line, run id, build (commit, -march, OpenBLAS kernels) and the "
              "effective config" % s)
    check("  steps: %d\n" % TRAIN_STEPS in open(os.path.join(STATE, "train.done")).read(),
          "train.done holds the step's effective config (train.steps)")


def mode_pipeline(ids):
    r = ot_run(["--dry-run"])
    check(r.returncode == 0 and step_lines(r.stdout.replace(": run", " ...")) == dict({s: "input" for s in STEPS}, extract="run")
          and not os.path.exists(os.path.join(STATE, "data")), "dry run: every step would run, nothing written")

    out = kill_during_train()
    check("[step 1/6] extract (extract) done" in out and os.path.exists(os.path.join(STATE, "extract.done"))
          and not os.path.exists(os.path.join(STATE, "train.done")),
          "killed: extract done and marked, train not marked")
    t0 = time.time()
    r = ot_run([])
    print("rerun after kill: %.1f s" % (time.time() - t0))
    lines = step_lines(r.stdout)
    check(r.returncode == 0 and lines == dict({s: "input" for s in STEPS}, extract="skip", train="run"),
          "rerun after kill: exit 0, extract skipped, the rest run (%s)" % lines)
    check(re.search(r"resuming from \S*ckpt-\d+\.h5", r.stderr) is not None, "rerun: training resumed from its checkpoint")
    if r.returncode:
        print(r.stdout[-2000:], r.stderr[-3000:])
        return
    check_outputs(ids)

    before = mtimes()
    r = ot_run([])
    check(r.returncode == 0 and step_lines(r.stdout) == {s: "skip" for s in STEPS},
          "third run: every step skipped (%s)" % step_lines(r.stdout))
    check(mtimes() == before, "third run: no file rewritten (mtimes unchanged)")

    # one step's set changed: only that step runs again
    job = os.path.join(WORK, "jobs", "tiny.yaml")
    text = open(job).read()
    open(job, "w").write(text.replace("eval.name=Retrieval alone", "eval.name=Retrieval again"))
    r = ot_run(["--dry-run"])
    check("eval-retrieval (eval): run (config or input changed" in r.stdout and r.stdout.count(": skip (done") == 5,
          "dry run after the change: eval-retrieval reruns, 5 skipped")
    r = ot_run([])
    check(r.returncode == 0 and step_lines(r.stdout) == dict({s: "skip" for s in STEPS}, **{"eval-retrieval": "rerun"}),
          "changed set: only eval-retrieval reruns (%s)" % step_lines(r.stdout))
    after = mtimes()
    changed = sorted(k for k in after if after[k] != before.get(k))
    check(changed == ["eval-retrieval.done", "report.json", "report.md"],
          "changed set: only the report and that marker rewritten (%s)" % changed)
    rows = [x["name"] for x in json.load(open(os.path.join(STATE, "report.json")))["rows"]]
    check("Retrieval again" in rows, "changed set: the new report row is there (%s)" % rows)

    # eval's input rewritten from outside the job (as the seeds job's seed-1 eval steps, after: [],
    # read the full job's tags): only that step reruns, then nothing
    pred = os.path.join(STATE, "bin", "retrieve", "test", "tags.jsonl")
    lines_ = open(pred).read().splitlines(True)
    open(pred, "w").writelines(lines_[::-1])
    r = ot_run(["--dry-run"])
    check(len(lines_) > 1 and "eval-retrieval (eval): run (config or input changed" in r.stdout
          and r.stdout.count(": skip (done") == 5, "dry run after rewriting eval.pred: eval-retrieval reruns")
    only_eval = dict({s: "skip" for s in STEPS}, **{"eval-retrieval": "rerun"})
    r = ot_run([])
    check(r.returncode == 0 and step_lines(r.stdout) == only_eval,
          "rewritten eval.pred: only eval-retrieval reruns (%s)" % step_lines(r.stdout))
    r = ot_run([])
    check(r.returncode == 0 and step_lines(r.stdout) == {s: "skip" for s in STEPS},
          "then every step skipped (%s)" % step_lines(r.stdout))

    # an earlier step's set changed: it and the steps after it run, the ones before are skipped
    text = open(job).read()
    open(job, "w").write(text.replace("{name: index, stage: index}", "{name: index, stage: index, set: [index.nprobe=8]}"))
    r = ot_run(["--dry-run"])
    check("index (index): run (config or input changed" in r.stdout
          and "retrieve (retrieve): run (after 'index', which runs)" in r.stdout
          and "eval-retrieval (eval): run (after 'retrieve', which runs)" in r.stdout,
          "dry run after changing index: index reruns, retrieve and eval-retrieval after it")
    before = mtimes()
    r = ot_run([])
    want = {"extract": "skip", "train": "skip", "embed": "skip", "index": "rerun", "retrieve": "input",
            "eval-retrieval": "input"}
    check(r.returncode == 0 and step_lines(r.stdout) == want, "changed index: %s" % step_lines(r.stdout))
    check(r.stdout.count(", starting over") == 3, "changed index: the three steps start over")
    after = mtimes()
    redone = {k.split(os.sep)[1] for k in after if k.startswith("bin" + os.sep) and after[k] != before.get(k)}
    check(redone == {"index", "retrieve"}, "changed index: index and retrieve outputs rewritten, not train's "
          "or embed's (%s)" % sorted(redone))
    r = ot_run([])
    check(r.returncode == 0 and step_lines(r.stdout) == {s: "skip" for s in STEPS}, "then every step skipped")

    # embed stopped part-way (no marker, one shard of test missing), then the model it reads is
    # trained again with another config: embed starts over, every shard from the new model,
    # instead of resuming beside the old model's shards
    os.remove(os.path.join(STATE, "embed.done"))
    emb = os.path.join(STATE, "bin", "embed")
    units = sorted(f for f in os.listdir(os.path.join(emb, "test", "ledger")) if f.startswith("unit-"))
    os.remove(os.path.join(emb, "test", "ledger", units[-1]))
    os.remove(os.path.join(emb, "test", units[-1].replace("unit-", "emb-").replace(".json", ".h5")))
    text = open(job).read()
    open(job, "w").write(text.replace("{name: train, stage: train}", "{name: train, stage: train, set: [train.lr=2e-3]}"))
    before = mtimes()
    r = ot_run([])
    want = {"extract": "skip", "train": "rerun", "embed": "input", "index": "input", "retrieve": "input",
            "eval-retrieval": "input"}
    after = mtimes()
    kept = sorted(k for k in before if re.match(r"bin/embed/\w+/emb-\d+\.h5$", k) and after.get(k) == before[k])
    check(r.returncode == 0 and step_lines(r.stdout) == want and not kept,
          "embed stopped part-way, then train changed: embed starts over, no shard of the old model kept "
          "(%s, kept %s)" % (step_lines(r.stdout), kept))
    check(not [f for f in os.listdir(STATE) if f.endswith(".started")], "no .started file left once all are done")

    # training stopped part-way (--redo: it started over), then its config changed: the rerun starts
    # over again instead of resuming the other config's checkpoint
    kill_during_train(["--redo", "train"])
    check(not os.path.exists(os.path.join(STATE, "train.done")) and os.path.exists(os.path.join(STATE, "train.started")),
          "killed while training again: no train.done, train.started records its key")
    text = open(job).read()
    open(job, "w").write(text.replace("set: [train.lr=2e-3]", "set: [train.lr=2.5e-3]"))
    r = ot_run([])
    check(r.returncode == 0 and step_lines(r.stdout) == dict(want, train="rerun")
          and "train (train) ... (config or input changed since it was started and stopped), starting over" in r.stdout
          and "resuming from" not in r.stderr,
          "stopped training, config changed: starts over, no resuming (%s)" % step_lines(r.stdout))
    # the same stop with the same config resumes, as after the first kill
    kill_during_train(["--redo", "train"])
    r = ot_run([])
    check(r.returncode == 0 and step_lines(r.stdout) == dict(want, train="run")
          and re.search(r"resuming from \S*ckpt-\d+\.h5", r.stderr) is not None,
          "stopped training, same config: resumes from its checkpoint (%s)" % step_lines(r.stdout))
    # ... unless --redo names it (say, after a fix to the code that trained it): it starts over
    kill_during_train(["--redo", "train"])
    r = ot_run(["--redo", "train"])
    check(r.returncode == 0 and step_lines(r.stdout) == dict(want, train="redo")
          and "train (train) ... (not done, redone as asked), starting over" in r.stdout
          and "resuming from" not in r.stderr,
          "stopped training, --redo train: starts over, no resuming (%s)" % step_lines(r.stdout))
    # ... and so does --redo-other-builds when another build started it
    kill_during_train(["--redo", "train"])
    started = os.path.join(STATE, "train.started")
    if os.path.exists(started):
        body = open(started).read()
        open(started, "w").write(re.sub(r"\n# build \S+\n", "\n# build 0123456789ab\n", body, count=1))
    r = ot_run(["--redo-other-builds"])
    check(r.returncode == 0 and step_lines(r.stdout) == dict(want, train="redo") and "resuming from" not in r.stderr,
          "training stopped by another build, --redo-other-builds: starts over (%s)" % step_lines(r.stdout))

    # a start-over cut before the stage cleared the old config's outputs: ot-train exits at once, its
    # train.dir held by another run (as after a kill between .started and the start-over). The
    # rerun resumes the step; the checkpoints of the other config must not pass for this one's
    lock = open(os.path.join(STATE, "bin", ".lock"), "a")
    fcntl.flock(lock, fcntl.LOCK_EX)
    text = open(job).read()
    open(job, "w").write(text.replace("set: [train.lr=2.5e-3]", "set: [train.lr=2e-3]"))
    r = ot_run([])
    check(r.returncode == 2 and "is in use by another ot-train run" in r.stderr
          and os.path.exists(os.path.join(STATE, "bin", "final.h5")),
          "train.dir held: exit 2, the old config's checkpoints still there (%d: %s)" % (r.returncode, r.stderr[-300:]))
    lock.close()
    r = ot_run([])
    check(r.returncode == 0 and step_lines(r.stdout) == dict(want, train="run")
          and re.search(r"were trained with other settings \(train\.lr 0\.0025\d* -> 0\.002\): removing them", r.stderr)
          and "resuming from" not in r.stderr,
          "rerun: the other config's checkpoints removed, training from step 0 (%s: %s)"
          % (step_lines(r.stdout), r.stderr[-400:]))

    # a step done by another build (code, not config, changed): still skipped, and said so
    marker = os.path.join(STATE, "embed.done")
    body = open(marker).read()
    open(marker, "w").write(re.sub(r"\n# build \S+\n", "\n# build 0123456789ab\n", body, count=1))
    r = ot_run([])
    notes = re.findall(r"^\[step \d+/\d+\] (\S+) .* done by build 0123456789ab, this is \S+: --redo-other-builds",
                       r.stdout, re.M)
    check(r.returncode == 0 and step_lines(r.stdout) == {s: "skip" for s in STEPS} and notes == ["embed"],
          "a marker of another build: skipped with a note naming that build and the option (%s)" % notes)
    # --redo-other-builds: that step starts over, and what reads it; then all are done
    r = ot_run(["--redo-other-builds"])
    want = dict({s: "skip" for s in STEPS}, embed="redo", index="input", retrieve="input", **{"eval-retrieval": "input"})
    check(r.returncode == 0 and step_lines(r.stdout) == want and r.stdout.count(", starting over") == 4,
          "--redo-other-builds: embed and the steps after it start over (%s)" % step_lines(r.stdout))
    r = ot_run(["--redo-other-builds"])
    check(r.returncode == 0 and step_lines(r.stdout) == {s: "skip" for s in STEPS},
          "then every marker names this build: nothing to redo (%s)" % step_lines(r.stdout))
    # OpenBLAS's kernels for another CPU (they round sums differently) make another build
    r = ot_run([], env={"OPENBLAS_CORETYPE": "Nehalem"})
    notes = re.findall(r"^\[step \d+/\d+\] (\S+) .* done by build \S+\+openblas-(\S+), this is \S+\+openblas-(\S+): "
                       r"--redo-other-builds", r.stdout, re.M)
    check(r.returncode == 0 and step_lines(r.stdout) == {s: "skip" for s in STEPS} and
          [n[0] for n in notes] == STEPS and all(n[1] != "Nehalem" and n[2] == "Nehalem" for n in notes),
          "OPENBLAS_CORETYPE=Nehalem: every step skipped with a note naming both builds' kernels (%s)" % notes)
    # --redo names steps; an unknown name is refused before anything runs
    r = ot_run(["--redo", "retrieve"])
    check(r.returncode == 0 and step_lines(r.stdout) == dict({s: "skip" for s in STEPS}, retrieve="redo",
                                                               **{"eval-retrieval": "input"}),
          "--redo retrieve: retrieve and eval-retrieval again (%s)" % step_lines(r.stdout))
    before = mtimes()
    r = ot_run(["--redo", "retrieve,nosuch"])
    check(r.returncode == 2 and "--redo" in r.stderr and "'nosuch'" in r.stderr and mtimes() == before,
          "--redo with an unknown step: exit 2 naming it, nothing touched: " + r.stderr[-300:])

    # the input step ran again elsewhere (its marker has a new run id): the step after it is stale
    marker = os.path.join(STATE, "retrieve.done")
    body = open(marker).read()
    open(marker, "w").write(re.sub(r"\n# run [0-9a-f]{16}\n", "\n# run 00000000deadbeef\n", body, count=1))
    r = ot_run([])
    check(r.returncode == 0 and step_lines(r.stdout) == dict({s: "skip" for s in STEPS}, **{"eval-retrieval": "rerun"}),
          "input step re-run since: eval-retrieval reruns (%s)" % step_lines(r.stdout))

    # after: [] cuts the chain: its key no longer mixes retrieve's run (one rerun), then a
    # changed retrieve runs alone in that run
    text = open(job).read()
    open(job, "w").write(text.replace("{name: eval-retrieval, stage: eval,", "{name: eval-retrieval, stage: eval, after: [],"))
    r = ot_run([])
    check(r.returncode == 0 and step_lines(r.stdout) == dict({s: "skip" for s in STEPS}, **{"eval-retrieval": "rerun"}),
          "after: []: eval-retrieval's key changed, it reruns once (%s)" % step_lines(r.stdout))
    text = open(job).read()
    open(job, "w").write(text.replace("{name: retrieve, stage: retrieve}", "{name: retrieve, stage: retrieve, set: [retrieve.k=5]}"))
    r = ot_run([])
    check(r.returncode == 0 and step_lines(r.stdout) == dict({s: "skip" for s in STEPS}, retrieve="rerun"),
          "after: [] and retrieve changed: retrieve reruns alone (%s)" % step_lines(r.stdout))
    if r.returncode:
        print(r.stdout[-2000:], r.stderr[-2000:])
    # ... and the run after it: eval-retrieval's input file (eval.pred) was rewritten by retrieve,
    # so it reruns once although no `after` ties them
    r = ot_run([])
    check(r.returncode == 0 and step_lines(r.stdout) == dict({s: "skip" for s in STEPS}, **{"eval-retrieval": "rerun"}),
          "after: [], its eval.pred rewritten: eval-retrieval reruns next (%s)" % step_lines(r.stdout))
    # a key of the whole config that one stage reads: only that stage's steps rerun (tag.threshold:
    # none here; retrieve.temperature: retrieve alone), the others' keys hash their sections only
    r = ot_run(["--set", "tag.threshold=0.3"])
    check(r.returncode == 0 and step_lines(r.stdout) == {s: "skip" for s in STEPS},
          "tag.threshold for every step: no step reads it, all skipped (%s)" % step_lines(r.stdout))
    r = ot_run(["--set", "retrieve.temperature=0.07"])
    check(r.returncode == 0 and step_lines(r.stdout) == dict({s: "skip" for s in STEPS}, retrieve="rerun"),
          "retrieve.temperature for every step: retrieve reruns, extract/train/embed/index skipped (%s)"
          % step_lines(r.stdout))
    # embed.ckpt names a checkpoint that another job may write (as train.init, tag.ckpt and
    # tag.manifest name files): rewritten since the step was done, it reruns instead of being
    # skipped as "done with the same config and inputs"
    bin_dir = os.path.join(STATE, "bin")
    ckpt = os.path.join(STATE, "embed-ckpt.h5")
    shutil.copy(os.path.join(bin_dir, "final.h5"), ckpt)
    text = open(job).read()
    open(job, "w").write(text.replace("{name: embed, stage: embed}",
                                      "{name: embed, stage: embed, set: [embed.ckpt=runs/tiny/embed-ckpt.h5]}"))
    r = ot_run([])
    check(r.returncode == 0 and step_lines(r.stdout).get("embed") == "rerun",
          "embed.ckpt set: embed reruns (%s)" % step_lines(r.stdout))
    older = min((f for f in os.listdir(bin_dir) if re.match(r"ckpt-\d+\.h5$", f)), key=lambda f: int(f[5:-3]))
    shutil.copy(os.path.join(bin_dir, older), ckpt)
    r = ot_run(["--dry-run"])
    check(r.returncode == 0 and "embed (embed): run (config or input changed" in r.stdout,
          "embed.ckpt's file rewritten (%s): embed reruns: %s" % (older, r.stdout[-600:]))
    # The same for a manifest edited since extraction: extract and all after it rerun.
    manifest = os.path.join(WORK, "runs", "tiny", "src", "val.jsonl")
    kept = open(manifest).read()
    open(manifest, "w").write("\n".join(kept.splitlines()[:-1]) + "\n")
    r = ot_run(["--dry-run"])
    open(manifest, "w").write(kept)
    check(r.returncode == 0 and "extract (extract): run (config or input changed" in r.stdout,
          "a manifest edited since extraction: extract reruns: %s" % r.stdout[-600:])


def mode_shell_and_failure():
    """Shell steps run once on rank 0; a failing step stops the job, exit code kept."""
    job = os.path.join(WORK, "jobs", "shell.yaml")
    with open(job, "w") as f:
        f.write("config: configs/tiny.yaml\nstate: runs/shell\nsteps:\n"
                "  - {name: hello, run: \"echo ran >> shell-ran.txt\"}\n"
                "  - {name: score, stage: eval, set: [eval.pred=no/such/pred.jsonl, eval.out=runs/shell/report]}\n"
                "  - {name: after, run: \"echo after >> shell-ran.txt\"}\n")
    r = ot_run([], job="jobs/shell.yaml")
    ran = open(os.path.join(WORK, "shell-ran.txt")).read().split()
    check(r.returncode == 2 and ran == ["ran"], "shell step ran once; eval on a missing file exits 2 (%d, %s)"
          % (r.returncode, ran))
    check("ot-run: step 'score' (eval) failed:" in r.stderr and "no/such/pred.jsonl" in r.stderr
          and r.stderr.count("failed:") == 1, "the stage's error printed once, naming the step")
    check(os.path.exists(os.path.join(WORK, "runs/shell/hello.done"))
          and not os.path.exists(os.path.join(WORK, "runs/shell/score.done")), "markers: shell step yes, failed step no")
    r = ot_run([], job="jobs/shell.yaml")
    check(r.returncode == 2 and open(os.path.join(WORK, "shell-ran.txt")).read().split() == ["ran"]
          and step_lines(r.stdout).get("hello") == "skip", "rerun: the done shell step skipped")
    text = open(job).read().replace("  - {name: score, stage: eval, set: [eval.pred=no/such/pred.jsonl, eval.out=runs/shell/report]}\n",
                                    "  - {name: fail, run: \"exit 7\"}\n")
    open(job, "w").write(text)
    r = ot_run([], job="jobs/shell.yaml")
    check(r.returncode == 1 and "command exited with status 7" in r.stderr
          and open(os.path.join(WORK, "shell-ran.txt")).read().split() == ["ran"], "failing shell step: exit 1, job stops")
    # exit 75 (a training under the command stopped at a checkpoint) is passed on: Slurm scripts requeue on it
    open(job, "w").write(text.replace('run: "exit 7"', 'run: "exit 75"'))
    r = ot_run([], job="jobs/shell.yaml")
    check(r.returncode == 75 and "stopped with status 75" in r.stderr and re.search(r"\] fail \(shell\) stopped;", r.stdout)
          and not os.path.exists(os.path.join(WORK, "runs/shell/fail.done"))
          and open(os.path.join(WORK, "shell-ran.txt")).read().split() == ["ran"],
          "shell step exiting 75: ot-run exits 75, step not done (%d: %s)" % (r.returncode, r.stderr[-300:]))

    # a shell step may start an MPI program (ot-synth-emb, an ot-<stage>; here ot-run itself): it runs
    # as its own job, not as a second rank 0 of this one (MPI_Init aborted on the launcher's variables)
    with open(os.path.join(WORK, "jobs", "mpi-child.yaml"), "w") as f:
        f.write("state: runs/mpi-child\nsteps:\n  - {name: child, run: \"%s --help > mpi-child.txt\"}\n" % OT_RUN)
    r = ot_run([], job="jobs/mpi-child.yaml")
    out = open(os.path.join(WORK, "mpi-child.txt")).read() if os.path.exists(os.path.join(WORK, "mpi-child.txt")) else ""
    check(r.returncode == 0 and out.startswith("usage: ot-run"),
          "shell step running an MPI program: it runs, exit 0 (%d: %s)" % (r.returncode, r.stderr[-300:]))


def mode_bad_jobs():
    cases = [
        ("steps:\n  - {name: a, stage: extrac}\n", 2, "unknown stage 'extrac'"),
        ("steps:\n  - {stage: extract}\n", 2, "missing name"),
        ("steps:\n  - {name: a, stage: extract}\n  - {name: a, stage: train}\n", 3, "duplicate name (first used at line 3)"),
        ("steps:\n  - name: a\n    stage: extract\n    set: [model.dim]\n", 4, "bad set item 'model.dim'"),
        ("steps:\n  - {name: a, stage: extract, set: [model.dimm=3]}\n", 2, "unknown key 'model.dimm'"),
        ("stepz:\n  - {name: a, stage: extract}\n", 1, "unknown key 'stepz'"),
        ("steps:\n  - {name: a, stage: extract, colour: red}\n", 2, "unknown key 'colour'"),
        ("steps:\n  - {name: a, stage: extract}\n  - {name: b, stage: train, after: [c]}\n", 3,
         "after: 'c' is not the name of an earlier step"),
        ("steps:\n  - {name: a, stage: extract, after: [a]}\n", 2, "after: 'a' is not the name of an earlier step"),
        ("steps:\n  - {name: a, stage: extract}\n  - {name: b, stage: train, after: [{a: 1}]}\n", 3,
         "after: item 1 is not a step name (a mapping)"),
        # a second document (after `---`) was ignored: its steps never ran, the job "all done"
        ("steps:\n  - {name: a, run: \"true\"}\n---\nsteps:\n  - {name: b, run: \"true\"}\n", 3,
         "a second YAML document"),
        # a config that does not load: the line of the item at fault, not the step's
        ("set: [model.dimm=3]\nsteps:\n  - {name: a, run: \"true\"}\n  - {name: b, stage: extract}\n", 1,
         "set item 'model.dimm=3': unknown key 'model.dimm'"),
        ("steps:\n  - {name: a, stage: extract, set: [data.dir=x,\n      model.dim=abc]}\n", 3,
         "set item 'model.dim=abc': key 'model.dim' expects an integer"),
        ("steps:\n  - name: a\n    stage: extract\n    config: no/such.yaml\n", 4, "config: no/such.yaml: cannot open"),
        # model settings that contradict each other: refused before the first step (a shell step
        # that would write a file) runs, not when the training's turn comes
        ("steps:\n  - {name: a, run: \"touch bad-ran.txt\"}\n"
         "  - {name: b, stage: train, set: [model.type=judge, model.title_len=8, model.tag_len=12]}\n", 3,
         "step 'b' (train): model.tag_len (12) must not exceed model.title_len (8)"),
        # a name too long for its marker's file name: refused here, not by the first write (exit 1)
        ("steps:\n  - {name: %s, run: \"touch bad-ran.txt\"}\n" % ("a" * 240), 2, "at most 200 of them"),
    ]
    for i, (body, line, needle) in enumerate(cases):
        path = os.path.join(WORK, "jobs", "bad%d.yaml" % i)
        with open(path, "w") as f:
            f.write("config: configs/tiny.yaml\n" + body)
        r = ot_run([], np2=(i == 0), job="jobs/bad%d.yaml" % i)
        want = "jobs/bad%d.yaml:%d:" % (i, line + 1)
        check(r.returncode == 2 and want in r.stderr and needle in r.stderr and r.stderr.count("error:") == 1,
              "bad job %d: exit 2, '%s' and '%s' once (got %d: %s)" % (i, want, needle, r.returncode, r.stderr.strip()))
    check(not os.path.exists(os.path.join(WORK, "bad-ran.txt")), "no step of a refused job ran")
    r = ot_run(["--dry-run", "--set", "model.dim=x"], np2=False)
    check(r.returncode == 2 and "--set model.dim=x (command line), in step 'extract' (extract)" in r.stderr
          and not re.search(r"jobs/tiny\.yaml:\d", r.stderr), "bad --set: exit 2, named as the command line's: " + r.stderr.strip())
    # a job of shell steps alone loads no config: its --set items are still checked
    with open(os.path.join(WORK, "jobs", "shell-only.yaml"), "w") as f:
        f.write("state: runs/shell-only\nsteps:\n  - {name: a, run: \"touch bad-ran.txt\"}\n")
    r = ot_run(["--set", "model.dimm=3"], np2=False, job="jobs/shell-only.yaml")
    check(r.returncode == 2 and "unknown key 'model.dimm'" in r.stderr and "jobs/shell-only.yaml" in r.stderr
          and not os.path.exists(os.path.join(WORK, "bad-ran.txt")),
          "shell-only job, misspelt --set: exit 2 naming the key, nothing ran: " + r.stderr.strip())
    r = ot_run([], job="jobs/nonexistent.yaml")
    check(r.returncode == 2 and "jobs/nonexistent.yaml" in r.stderr, "missing job file: exit 2")
    r = ot_run(["--help"], np2=False, job=None)
    check(r.returncode == 0 and all(s in r.stdout for s in ("extract", "train", "embed", "index", "retrieve",
                                                            "tag", "eval", "--dry-run", ".done")),
          "--help: format, stage names, options")


def main():
    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(os.path.join(WORK, "jobs"))
    os.symlink(os.path.join(SRC, "configs"), os.path.join(WORK, "configs"))
    text = open(os.path.join(SRC, "jobs", "tiny.yaml")).read()
    check("train.steps=40" in text, "jobs/tiny.yaml sets train.steps=40")
    with open(os.path.join(WORK, "jobs", "tiny.yaml"), "w") as f:
        f.write(text.replace("train.steps=40", "train.steps=%d" % TRAIN_STEPS))
    ids = write_manifests()
    t0 = time.time()
    mode_bad_jobs()
    mode_pipeline(ids)
    mode_shell_and_failure()
    print("total %.1f s" % (time.time() - t0))
    return summary("run")


if __name__ == "__main__":
    sys.exit(main())
