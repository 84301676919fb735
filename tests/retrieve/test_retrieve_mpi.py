"""ot-embed -> ot-index -> ot-retrieve end to end under mpirun on a tiny
tagged image set with groups (renderings of one thing), a tiny model trained
here. Every item carries a tag naming itself ("item-<id>") and one naming its
group ("grp-<group>"), so the candidates show whose neighbours they came
from. Checks: embeddings and candidates cover every item once, in order;
1 and 2 ranks give identical embeddings and candidates; a training item's
candidates never come from itself or its group (also for a group larger than
the neighbours asked for), while other groups' tags do come through;
retrieval alone is written as tags.jsonl and scored by ot-eval; a lost output
is redone by a rerun; bad settings exit 2 (ot-embed's model settings checked
against the checkpoint's); a rerun whose inputs changed under the same names
(indexes rebuilt, a split embedded again, the checkpoint rewritten) exits 2.

usage: test_retrieve_mpi.py OT_TRAIN OT_EXTRACT OT_EMBED OT_INDEX OT_RETRIEVE OT_EVAL MPIEXEC CONFIG WORKDIR [OT_RUN]
"""
import json
import os
import random
import re
import shutil
import subprocess
import sys

import h5py
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "train"))
import tiny_data  # noqa: E402

sys.path.insert(0, os.path.join(HERE, ".."))
from ot_testlib import check, mpi_command, summary  # noqa: E402

OT_TRAIN, OT_EXTRACT, OT_EMBED, OT_INDEX, OT_RETRIEVE, OT_EVAL, MPIEXEC, CONFIG, WORK = sys.argv[1:10]
OT_RUN = sys.argv[10] if len(sys.argv) > 10 else None
MPI = mpi_command(MPIEXEC)
BIG = 24  # items of the one big training group: more than 2 * retrieve.k
LONERS = 6  # training items without a group, all alike: only the item itself is left out
K = 6


def s(x):
    return x.decode() if isinstance(x, bytes) else x


def write_manifests(src):
    """train: groups of 4 renderings + one big group; val/test: their own groups."""
    rnd = random.Random(11)
    os.makedirs(os.path.join(src, "img"), exist_ok=True)
    out = {}
    for split, n_groups, size in (("train", 34, 4), ("val", 6, 4), ("test", 6, 4)):
        lines = []
        groups = [(split + "-g%d" % g, size) for g in range(n_groups)]
        if split == "train":
            groups += [("train-big", BIG), ("", LONERS)]
        for g, n in groups:
            color, pattern = rnd.choice(sorted(tiny_data.COLORS)), rnd.choice(tiny_data.PATTERNS)
            title = "%s %s %s" % (rnd.choice(["a", "the", "my"]), color, rnd.choice(["picture", "image", "tile"]))
            name = "%s.png" % (g or "loner")
            tiny_data.write_png(os.path.join(src, "img", name), tiny_data.SIZE, tiny_data.SIZE,
                                tiny_data.image(color, pattern))
            for i in range(n):
                iid = "%s-%d" % (g or "loner", i)
                tags = [color, pattern, "warm" if color in ("red", "yellow") else "cool", "item-" + iid]
                item = {"id": iid, "path": "img/" + name, "title": title, "tags": tags}
                if g:
                    item["tags"].append("grp-" + g)
                    item["group"] = g
                lines.append(json.dumps(item))
        rnd.shuffle(lines)
        out[split] = os.path.join(src, split + ".jsonl")
        with open(out[split], "w") as f:
            f.write("\n".join(lines) + "\n")
    return out


def run(cmd, np_=1):
    if np_ > 1:
        cmd = MPI + ["-np", str(np_)] + cmd
    return subprocess.run(cmd, capture_output=True, text=True)


def dataset_ids(data, split):
    ids = []
    idx = json.load(open(os.path.join(data, split, "index.json")))
    for sh in idx["shards"]:
        with h5py.File(os.path.join(data, split, sh["shard"]), "r") as f:
            ids += [s(x) for x in f["id"][:]]
    return ids


def read_emb(d, split):
    idx = json.load(open(os.path.join(d, split, "index.json")))
    ids, vecs = [], {}
    for fe in idx["files"]:
        with h5py.File(os.path.join(d, split, fe["path"]), "r") as f:
            ids += [s(x) for x in f["id"][:]]
            for name in f["vec"]:
                vecs.setdefault(name, []).append(f["vec"][name][:])
    return idx, ids, {k: np.concatenate(v) for k, v in vecs.items()}


def read_cand(d, split):
    """[(id, [(tag, score, per-source...)])] in file order, and the sources."""
    idx = json.load(open(os.path.join(d, split, "index.json")))
    items, sources = [], None
    for fe in idx["files"]:
        with h5py.File(os.path.join(d, split, fe["path"]), "r") as f:
            off, tags = f["cand/offsets"][:], [s(x) for x in f["cand/tag"][:]]
            sc, ss = f["cand/score"][:], f["cand/source_score"][:]
            sources = [s(x) for x in f["cand/source_score"].attrs["sources"]]
            for i, iid in enumerate(f["id"][:]):
                items.append((s(iid), [(tags[j], float(sc[j])) + tuple(float(v) for v in ss[j])
                                       for j in range(off[i], off[i + 1])]))
    return items, sources


def main():
    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(WORK)
    man = write_manifests(os.path.join(WORK, "src"))
    data = os.path.join(WORK, "data")
    r = run([OT_EXTRACT, "--config", CONFIG, "--set", "data.dir=" + data] +
            tiny_data.set_args(["data.%s=%s" % (k, v) for k, v in man.items()]))
    if not check(r.returncode == 0, "ot-extract"):
        print(r.stderr[-3000:])
        return summary("retrieve")
    train_dir = os.path.join(WORK, "train")
    sets = tiny_data.TINY_SETS + ["train.steps=20", "embed.batch=5", "embed.ngram_dim=256",
                                  "retrieve.k=%d" % K, "retrieve.top_m=100"]
    base = ["--config", CONFIG, "--set", "data.dir=" + data, "--set", "train.dir=" + train_dir,
            "--set", "index.dir=" + os.path.join(WORK, "index")] + tiny_data.set_args(sets)
    r = run([OT_TRAIN] + base)
    if not check(r.returncode == 0, "training the tiny model"):
        print(r.stderr[-3000:])
        return summary("retrieve")

    # ---- embeddings, 1 and 2 ranks
    e1, e2 = os.path.join(WORK, "emb1"), os.path.join(WORK, "emb2")
    for d, np_ in ((e1, 1), (e2, 2)):
        r = run([OT_EMBED] + base + ["--set", "embed.dir=" + d], np_)
        if not check(r.returncode == 0, "ot-embed np%d" % np_):
            print(r.stderr[-3000:])
            return summary("retrieve")
    for split in ("train", "val", "test"):
        want = dataset_ids(data, split)
        idx1, ids1, v1 = read_emb(e1, split)
        idx2, ids2, v2 = read_emb(e2, split)
        check(ids2 == want, "%s: embeddings of every item once, in dataset order" % split)
        check(idx2["complete"] and sum(f["items"] for f in idx2["files"]) == len(want), split + " index.json")
        check(sorted(v2) == ["fused", "ngram", "title", "visual"] and idx2["dims"]["ngram"] == 256,
              split + ": the four vectors, ngram of embed.ngram_dim")
        check(all(np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-4) for v in v2.values()),
              split + ": rows L2-normalised")
        check(ids1 == ids2 and all(np.array_equal(v1[k], v2[k]) for k in v2), split + ": np1 == np2 embeddings")

    # a lost embedding file is redone by a rerun (the others are skipped)
    os.remove(os.path.join(e2, "train", "emb-000002.h5"))
    os.remove(os.path.join(e2, "train", "ledger", "unit-000002.json"))
    r = run([OT_EMBED] + base + ["--set", "embed.dir=" + e2], 2)
    _, ids_re, v_re = read_emb(e2, "train")
    _, ids1, v1 = read_emb(e1, "train")
    check(r.returncode == 0 and ids_re == ids1 and all(np.array_equal(v1[k], v_re[k]) for k in v1),
          "ot-embed rerun redoes the lost file")

    # ---- indexes (the other stage's program), then candidates on 1 and 2 ranks
    r = run([OT_INDEX] + base + ["--set", "embed.dir=" + e2], 2)
    if not check(r.returncode == 0, "ot-index np2"):
        print(r.stderr[-3000:])
        return summary("retrieve")
    r1, r2 = os.path.join(WORK, "ret1"), os.path.join(WORK, "ret2")
    for d, np_ in ((r1, 1), (r2, 2)):
        r = run([OT_RETRIEVE] + base + ["--set", "embed.dir=" + e2, "--set", "retrieve.dir=" + d], np_)
        if not check(r.returncode == 0, "ot-retrieve np%d" % np_):
            print(r.stderr[-3000:])
            return summary("retrieve")
    group = {}
    for split in ("train", "val", "test"):
        for line in open(man[split]):
            it = json.loads(line)
            group[it["id"]] = it.get("group", "")
    for split in ("train", "val", "test"):
        c1, src1 = read_cand(r1, split)
        c2, src2 = read_cand(r2, split)
        check([i for i, _ in c2] == dataset_ids(data, split), split + ": candidates for every item once, in order")
        check(c1 == c2 and src1 == src2, split + ": np1 == np2 candidates (tags, scores, per-source scores)")
        check(src2 == ["video", "title", "fused", "ngram"], split + ": source columns %r" % src2)
        check(all(len(c) > 0 for _, c in c2), split + ": every item has candidates")
        check(all(all(c[j][1] > c[j + 1][1] or (c[j][1] == c[j + 1][1] and c[j][0] < c[j + 1][0])
                      for j in range(len(c) - 1)) for _, c in c2), split + ": best first, ties by tag text")
        if split != "train":
            continue
        own = [iid for iid, c in c2 if any(t == "item-" + iid for t, *_ in c)]
        check(not own, "train: no item retrieves itself (%d do)" % len(own))
        grp = [iid for iid, c in c2 if group[iid] and any(t == "grp-" + group[iid] for t, *_ in c)]
        check(not grp, "train: no item retrieves its own group (%d do)" % len(grp))
        other = sum(any(t.startswith("grp-") for t, *_ in c) for _, c in c2)
        check(other >= 0.9 * len(c2), "train: other groups' tags do come through (%d of %d items)" % (other, len(c2)))
        loners = [c for iid, c in c2 if not group[iid]]
        check(len(loners) == LONERS and all(len([t for t, *_ in c if t.startswith("item-loner")]) == LONERS - 1
                                            for c in loners),
              "train: an item without a group gets the other %d alike items, not itself" % (LONERS - 1))
        big = [c for iid, c in c2 if group[iid] == "train-big"]
        check(len(big) == BIG and all(len([t for t, *_ in c if t.startswith("item-")]) >= K for c in big),
              "train: the big group (%d > 2k items) still gets k neighbours each" % BIG)

    # ---- retrieval alone: tags.jsonl per split, scored by ot-eval on val
    for split in ("train", "val", "test"):
        lines = [json.loads(l) for l in open(os.path.join(r2, split, "tags.jsonl"))]
        check([l["id"] for l in lines] == dataset_ids(data, split), split + ": tags.jsonl has every item once")
        check(all(t["source"] == "ret" for l in lines for t in l["tags"]), split + ": source ret")
    thr = json.load(open(os.path.join(r2, "threshold.json")))
    check(0.0 <= thr["threshold"] <= thr["max_score"] and thr["val"]["f1"] > 0, "threshold tuned on val: %r" % thr)
    rep = os.path.join(WORK, "report")
    r = run([OT_EVAL] + base + ["--set", "eval.pred=" + os.path.join(r2, "val", "tags.jsonl"),
                                "--set", "eval.split=val", "--set", "eval.out=" + rep])
    if check(r.returncode == 0, "ot-eval scores retrieval alone: " + r.stderr[-2000:]):
        m = json.load(open(rep + ".json"))["rows"][0]["micro"]["overall"]
        print("retrieval alone on val:", json.dumps(m))
        # colour, pattern and warm/cool are retrievable, the item and group
        # tags of val items are not: recall is at most 3/5
        check(m["f1"] > 0.5 and m["r"] <= 0.6 + 1e-9, "F1 %.3f > 0.5, recall <= 0.6" % m["f1"])

    # ---- a lost output is redone by a rerun, the rest skipped
    os.remove(os.path.join(r2, "train", "cand-000001.h5"))
    os.remove(os.path.join(r2, "train", "ledger", "unit-000001.json"))
    r = run([OT_RETRIEVE] + base + ["--set", "embed.dir=" + e2, "--set", "retrieve.dir=" + r2], 2)
    check(r.returncode == 0 and read_cand(r2, "train") == read_cand(r1, "train"), "rerun redoes the lost file")

    # ---- bad settings exit 2 with the key named
    for bad, key in (("retrieve.weights=nosuch=1", "retrieve.weights"), ("retrieve.weights=video=-1", "retrieve.weights"),
                     ("embed.dir=" + os.path.join(WORK, "none"), "run ot-embed first")):
        r = run([OT_RETRIEVE] + base + ["--set", "embed.dir=" + e2, "--set", "retrieve.dir=" + r2, "--set", bad])
        check(r.returncode == 2 and key in r.stderr, "%s: exit 2 naming %s (got %d: %s)" % (bad, key, r.returncode,
                                                                                           r.stderr[-300:]))
    # a source named twice (ot-index refuses it) was searched twice and given
    # the consensus bonus of a second source that agrees with it
    r = run([OT_RETRIEVE] + base + ["--set", "embed.dir=" + e2, "--set", "retrieve.dir=" + os.path.join(WORK, "rdup"),
                                    "--set", "index.sources=video=visual:visual,video=visual:visual"])
    check(r.returncode == 2 and "index.sources: source 'video' twice" in r.stderr,
          "a source named twice: exit 2 naming index.sources (got %d: %s)" % (r.returncode, r.stderr[-300:]))
    # the encoder opened with other model settings than it was trained with:
    # the key is named before any tensor is read
    r = run([OT_EMBED] + base + ["--set", "embed.dir=" + os.path.join(WORK, "e-bad"), "--set", "model.heads=1"])
    check(r.returncode == 2 and "model.heads" in r.stderr and "trained with" in r.stderr,
          "ot-embed with other model.heads: exit 2 naming it (got %d: %s)" % (r.returncode, r.stderr[-300:]))
    # a key the checkpoint's type does not read (bin has no prompts) may differ
    r = run([OT_EMBED] + base + ["--set", "embed.dir=" + os.path.join(WORK, "e-prompts"), "--set", "model.prompts=3",
                                 "--set", "embed.splits=val"])
    check(r.returncode == 0, "ot-embed of a bin checkpoint with another model.prompts runs (got %d: %s)"
          % (r.returncode, r.stderr[-300:]))

    # ---- inputs changed under a finished (or killed) run: refused, not kept.
    # The indexes rebuilt (here with an index.train_sample that the tiny set
    # does not reach: paths, sources, vectors and row counts unchanged):
    # ot-retrieve used to find every file done and keep the candidates of the
    # old indexes.
    r = run([OT_INDEX] + base + ["--set", "embed.dir=" + e2, "--set", "index.train_sample=50000"], 2)
    check(r.returncode == 0 and "source" in r.stderr, "ot-index rebuilt (%s)" % r.stderr[-300:])
    before = read_cand(r2, "train")
    r = run([OT_RETRIEVE] + base + ["--set", "embed.dir=" + e2, "--set", "retrieve.dir=" + r2], 2)
    check(r.returncode == 2 and "different settings" in r.stderr and read_cand(r2, "train") == before,
          "ot-retrieve after the indexes were rebuilt: exit 2, old candidates untouched (got %d: %s)"
          % (r.returncode, r.stderr[-300:]))
    # The indexes built from other embeddings of the training split than
    # embed.dir holds (here e1's equal copies; in practice the split embedded
    # again by another encoder, ot-index not run since): the queries would
    # search another space. It used to run, exit 0.
    r = run([OT_INDEX] + base + ["--set", "embed.dir=" + e1], 2)
    check(r.returncode == 0, "ot-index rebuilt from " + e1)
    r = run([OT_RETRIEVE] + base + ["--set", "embed.dir=" + e2, "--set", "retrieve.dir=" + os.path.join(WORK, "r-other")])
    check(r.returncode == 2 and "built from other embeddings of the training split" in r.stderr
          and e2 in r.stderr and not os.path.exists(os.path.join(WORK, "r-other")),
          "ot-retrieve over indexes of other embeddings: exit 2 naming embed.dir, nothing written (got %d: %s)"
          % (r.returncode, r.stderr[-300:]))
    metas = [json.load(open(os.path.join(WORK, "index", s, "meta.json"))) for s in os.listdir(os.path.join(WORK, "index"))]
    check(metas and all(re.fullmatch(r"[0-9a-f]{16}", m.get("embeddings") or "") for m in metas),
          "every meta.json records the embeddings' version: %s" % [m.get("embeddings") for m in metas])
    # the queries' split embedded again (same paths and counts)
    r3 = os.path.join(WORK, "ret3")
    r = run([OT_RETRIEVE] + base + ["--set", "embed.dir=" + e1, "--set", "retrieve.dir=" + r3,
                                    "--set", "retrieve.splits=val"])
    check(r.returncode == 0, "ot-retrieve of val into " + r3)
    shutil.rmtree(os.path.join(e1, "val"))
    r = run([OT_EMBED] + base + ["--set", "embed.dir=" + e1, "--set", "embed.splits=val"])
    check(r.returncode == 0, "ot-embed of val again")
    r = run([OT_RETRIEVE] + base + ["--set", "embed.dir=" + e1, "--set", "retrieve.dir=" + r3,
                                    "--set", "retrieve.splits=val"])
    check(r.returncode == 2 and "different settings" in r.stderr,
          "ot-retrieve after val was embedded again: exit 2 (got %d: %s)" % (r.returncode, r.stderr[-300:]))
    # a start-over (ot-run, the step's config changed) that fails half-way:
    # the split's index.json of the earlier run used to stay, "complete",
    # over a mix of files of both runs (here cand-000000 with k=5 beside
    # cand-000002 with k=6)
    if OT_RUN:
        ej, rj = os.path.join(WORK, "emb-job"), os.path.join(WORK, "ret-job")
        shutil.copytree(e1, ej)
        sets = [a for a in base if a != "--set" and a != "--config" and a != CONFIG]
        sets += ["embed.dir=" + ej, "retrieve.dir=" + rj, "retrieve.splits=val"]
        job = os.path.join(WORK, "job.yaml")

        def write_job(stage):
            with open(job, "w") as f:
                f.write("config: %s\nset: [%s]\nstate: %s\nsteps:\n  - {name: %s, stage: %s}\n"
                        % (json.dumps(CONFIG), ", ".join(json.dumps(x) for x in sets),
                           json.dumps(os.path.join(WORK, "job")), stage, stage))

        write_job("retrieve")
        r = run([OT_RUN, job])
        check(r.returncode == 0 and json.load(open(os.path.join(rj, "val", "index.json")))["complete"],
              "ot-run retrieve of val (got %d: %s)" % (r.returncode, r.stderr[-300:]))
        with open(os.path.join(ej, "val", "emb-000001.h5"), "w") as f:
            f.write("not HDF5")
        r = run([OT_RUN, "--set", "retrieve.k=5", job])
        check(r.returncode != 0 and "emb-000001.h5" in r.stderr, "the start-over fails at val's file 1 (got %d: %s)"
              % (r.returncode, r.stderr[-300:]))
        check(not os.path.exists(os.path.join(rj, "val", "index.json"))
              and not os.path.exists(os.path.join(rj, "val", "tags.jsonl")),
              "no index.json nor tags.jsonl of the earlier run left over the half-rewritten split")
        # the same for ot-embed, its file 1 made unwritable (a folder in its place)
        ee = os.path.join(WORK, "emb-job2")
        sets[-3:] = ["embed.dir=" + ee, "embed.splits=val"]
        write_job("embed")
        r = run([OT_RUN, job])
        check(r.returncode == 0 and json.load(open(os.path.join(ee, "val", "index.json")))["complete"],
              "ot-run embed of val (got %d: %s)" % (r.returncode, r.stderr[-300:]))
        os.remove(os.path.join(ee, "val", "emb-000001.h5"))
        os.makedirs(os.path.join(ee, "val", "emb-000001.h5", "x"))
        r = run([OT_RUN, "--set", "embed.batch=4", job])
        check(r.returncode != 0 and "emb-000001.h5" in r.stderr, "the start-over fails at val's file 1 (got %d: %s)"
              % (r.returncode, r.stderr[-300:]))
        check(not os.path.exists(os.path.join(ee, "val", "index.json")),
              "no embedding index.json of the earlier run left over the half-rewritten split")
    # the training continued: the newest checkpoint is final.h5 again, another
    # model under the same name. ot-embed used to report every file done by
    # an earlier run and keep the old encoder's vectors.
    r = run([OT_TRAIN] + base + ["--set", "train.steps=30"])
    check(r.returncode == 0, "training continued to step 30")
    r = run([OT_EMBED] + base + ["--set", "embed.dir=" + e2, "--set", "embed.splits=val"], 2)
    check(r.returncode == 2 and "different settings" in r.stderr,
          "ot-embed after the checkpoint was rewritten: exit 2 (got %d: %s)" % (r.returncode, r.stderr[-300:]))
    return summary("retrieve")


if __name__ == "__main__":
    sys.exit(main())
