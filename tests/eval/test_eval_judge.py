"""The Tag Gain judge end to end: ot-train trains a tiny judge (model.type
judge) on 1 and 2 ranks, ot-eval scores predictions with it (eval.judge).

Data (made here, tiny_data's images): 32x32 tiles of four colours x four
patterns; tags = colour, one spelling variant of the colour ("reds", "#red"
or "red-es": near-duplicates of "red" by the calibration's rule), pattern,
warm/cool. Checks:
  - 1 and 2 ranks (same passes of 4 items) give the same loss curve within a
    relative 1e-5; the loss falls; val logs recall@5; final.h5 holds judge.*
  - on its training data the judge ranks an item's own tags above the other
    training tags for most items (mean cos over its tags > mean cos over the
    others for >= 80% of items)
  - ot-eval with eval.judge: the report holds the calibration; tau_rel equals
    numpy's (1 - p) quantile of the val pairs' cosines, tau_div the median
    cosine of the near-duplicate training-tag pairs, both recomputed here from
    the judge's own vectors (eval.judge_vectors); the Tag Gain numbers equal a
    Python re-implementation of the greedy filter on those vectors (item 0
    worked out in the log), and ot-eval with those vectors as
    eval.taggain_embeddings and the calibrated taus gives the same numbers
  - calibration.json is written, reused (same values), rewritten when deleted
    or when the judge at that path and step has other weights
  - eval.judge with eval.taggain_embeddings, or a non-judge checkpoint: exit 2

usage: test_eval_judge.py OT_TRAIN OT_EXTRACT OT_EVAL MPIEXEC CONFIG WORKDIR
"""
import glob
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
sys.path.insert(0, os.path.join(HERE, ".."))
import tiny_data  # noqa: E402
from ot_testlib import check, mpi_command, summary  # noqa: E402

OT_TRAIN, OT_EXTRACT, OT_EVAL, MPIEXEC, CONFIG, WORK = sys.argv[1:7]
MPI = mpi_command(MPIEXEC)
COLORS = sorted(tiny_data.COLORS)
VARIANTS = ["%ss", "#%s", "%s-es"]
P_PASS = 0.9

JUDGE_SETS = ["model.type=judge", "model.dim=32", "model.heads=2", "model.vis_layers=1",
              "model.txt_layers=1", "model.title_len=8", "model.tag_len=4", "model.vocab=300",
              "model.dropout=0.1", "model.judge_tau=0.1", "train.batch=8", "train.micro_batch=4",
              "train.steps=60", "train.warmup=5", "train.lr=3e-3", "train.ckpt_every=30",
              "train.eval_every=30", "train.log_every=10"]


def write_data(src):
    rnd = random.Random(11)
    os.makedirs(os.path.join(src, "img"), exist_ok=True)
    items = {}
    for split, n in (("train", 64), ("val", 24)):
        lines, items[split] = [], []
        for i in range(n):
            color, pattern = rnd.choice(COLORS), rnd.choice(tiny_data.PATTERNS)
            name = "%s-%03d.png" % (split, i)
            tiny_data.write_png(os.path.join(src, "img", name), tiny_data.SIZE, tiny_data.SIZE,
                                tiny_data.image(color, pattern))
            tags = [color, rnd.choice(VARIANTS) % color, pattern,
                    "warm" if color in ("red", "yellow") else "cool"]
            item = {"id": "%s-%d" % (split, i), "path": "img/" + name, "title": "a tile", "tags": tags}
            lines.append(json.dumps(item))
            items[split].append(item)
        with open(os.path.join(src, split + ".jsonl"), "w") as f:
            f.write("\n".join(lines) + "\n")
    return items


def run(args, expect=0):
    r = subprocess.run(args, capture_output=True, text=True)
    if expect is not None and r.returncode != expect:
        print("exit %d, expected %d: %s\n%s" % (r.returncode, expect, " ".join(args), r.stderr[-3000:]))
    return r


def sets(lst):
    out = []
    for s in lst:
        out += ["--set", s]
    return out


def train_losses(train_dir):
    out = {}
    with open(os.path.join(train_dir, "metrics.jsonl")) as f:
        for line in f:
            d = json.loads(line)
            if d["kind"] == "train":
                out[d["step"]] = d["loss"]
            else:
                out.setdefault("val", []).append(d)
    return out


def load_vectors(path):
    with h5py.File(path, "r") as f:
        ids = [x.decode() if isinstance(x, bytes) else x for x in f["image/id"][()]]
        tags = [x.decode() if isinstance(x, bytes) else x for x in f["text/tag"][()]]
        return dict(zip(ids, f["image/vec"][()].astype(np.float64))), dict(zip(tags, f["text/vec"][()].astype(np.float64)))


def dup_key(t):
    return "".join(c for c in t if ord(c) >= 0x80 or c.isascii() and c.isalnum())


def tag_gain(items, preds, img, txt, train_tags, tau_rel, tau_div, log_first=False):
    """The greedy filter of stages/eval/taggain.h, item by item."""
    known = novel = scored = with_gt = 0
    dk = dn = 0.0
    for it in items:
        if it["id"] not in img:
            continue
        scored += 1
        v = img[it["id"]]
        judged = sorted((t for t in set(preds[it["id"]]) if t in txt), key=lambda t: (-float(v @ txt[t]), t))
        kept = []
        for t in judged:
            if v @ txt[t] > tau_rel and all(txt[t] @ txt[k] < tau_div for k in kept):
                kept.append(t)
        gt = set(it["tags"])
        k = [t for t in kept if t not in gt and t in train_tags]
        n = [t for t in kept if t not in train_tags]
        if log_first:
            print("item %s: sim_rel %s -> kept %s, T_known %s, T_novel %s" % (
                it["id"], ", ".join("%s %.4f" % (t, v @ txt[t]) for t in judged), kept, k, n))
            log_first = False
        known += len(k)
        novel += len(n)
        if gt:
            with_gt += 1
            dk += len(k) / len(gt)
            dn += len(n) / len(gt)
    return {"items": scored, "T_known": known / scored, "T_novel": novel / scored,
            "delta_known": dk / with_gt, "delta_novel": dn / with_gt}


def main():
    shutil.rmtree(WORK, ignore_errors=True)
    src = os.path.join(WORK, "src")
    items = write_data(src)
    data = os.path.join(WORK, "data")
    run([OT_EXTRACT, "--config", CONFIG, "--set", "data.train=" + os.path.join(src, "train.jsonl"),
         "--set", "data.val=" + os.path.join(src, "val.jsonl"), "--set", "data.dir=" + data])
    env_sets = ["data.dir=" + data]

    # ---- training: 2 ranks and 1 rank ----
    d2, d1 = os.path.join(WORK, "judge"), os.path.join(WORK, "judge-np1")
    base = [OT_TRAIN, "--config", CONFIG]
    r = run(MPI + ["-np", "2"] + base + sets(JUDGE_SETS + env_sets + ["train.dir=" + d2]))
    print(r.stderr[-1500:])
    run(base + sets(JUDGE_SETS + env_sets + ["train.dir=" + d1]))
    l2, l1 = train_losses(d2), train_losses(d1)
    steps = [s for s in l2 if s != "val"]
    worst = max(abs(l2[s] - l1[s]) / abs(l1[s]) for s in steps)
    print("loss step 1 %.4f, step 60 %.4f; 1 vs 2 ranks: worst relative difference %.2e" %
          (l2[1], l2[60], worst))
    check(len(steps) == 60 and worst <= 1e-5, "1 and 2 ranks give the same losses")
    first, last = np.mean([l2[s] for s in range(1, 6)]), np.mean([l2[s] for s in range(56, 61)])
    check(last < 0.8 * first, "the loss falls (%.3f -> %.3f)" % (first, last))
    val = l2.get("val", [])
    check(len(val) == 2 and all("recall_at_5" in v and 0 <= v["recall_at_5"] <= 1 for v in val),
          "val lines carry recall@5")
    print("val:", [(v["step"], round(v["val_loss"], 4), round(v["recall_at_5"], 4)) for v in val])
    check(re.search(r"image→tag recall@5 [0-9.]+ \(\d+ tags\)", r.stderr) is not None, "recall@5 logged")
    judge = os.path.join(d2, "final.h5")
    with h5py.File(judge, "r") as f:
        names = set(f["params"].keys())
    check({"judge.vproj.w", "judge.vproj.b", "judge.tproj.w", "judge.tproj.b"} <= names and
          not any(n.startswith("fuse.") or n.startswith("head.") for n in names),
          "final.h5 holds the judge's projections and no fusion or head")

    # ---- ot-eval on val with the judge ----
    rnd = random.Random(3)
    preds = {}
    with open(os.path.join(WORK, "pred.jsonl"), "w") as f:
        for it in items["val"]:
            c = it["tags"][0]
            wrong = rnd.choice([x for x in COLORS if x != c])
            tags = [c, "#" + c, wrong, it["tags"][2], rnd.choice(tiny_data.PATTERNS), "shiny thing", "warm"]
            preds[it["id"]] = tags
            f.write(json.dumps({"id": it["id"], "tags": [{"tag": t, "score": 0.5} for t in tags]}) + "\n")
    vec_path = os.path.join(WORK, "vectors-val.h5")
    ev = [OT_EVAL, "--config", CONFIG] + sets(env_sets + [
        "eval.pred=" + os.path.join(WORK, "pred.jsonl"), "eval.split=val", "eval.out=" + os.path.join(WORK, "report"),
        "eval.judge=" + judge, "eval.judge_vectors=" + vec_path, "eval.judge_gt_pass=%g" % P_PASS])
    r = run(ev)
    calib_path = os.path.join(d2, "calibration.json")
    check(os.path.exists(calib_path) and "calibration written" in r.stderr, "calibration.json written")
    rep = json.load(open(os.path.join(WORK, "report.json")))
    tg = rep["rows"][0].get("tag_gain", {})
    jc = tg.get("judge_calibration", {})
    check(tg.get("judge") == judge and tg.get("embeddings") is None, "the report names the judge")
    md = open(os.path.join(WORK, "report.md")).read()
    check("Similarity: the judge" in md and "τ_rel %g" % jc.get("tau_rel", -9) in md, "Markdown states the calibration")
    print("report:", {k: tg.get(k) for k in ("tau_rel", "tau_div", "T_known", "delta_known", "T_novel", "delta_novel")})
    print("calibration:", {k: jc.get(k) for k in ("val_pairs", "val_pairs_passing", "near_duplicate_pairs",
                                                   "tau_div_source", "train_tags")})
    check(tg.get("tau_rel") == jc.get("tau_rel") and tg.get("tau_div") == jc.get("tau_div"),
          "Tag Gain ran with the calibrated taus")
    # tags longer than the judge's tag_len (4) are judged by their first 4
    # tokens and counted: "shiny thing" (11 bytes, unseen in training, so
    # split finer than words) is one; a tag of at most 4 bytes cannot be
    all_tags = {t for ts in preds.values() for t in ts} | {t for s in items for it in items[s] for t in it["tags"]}
    long_tags = sum(len(t.encode()) > 4 for t in all_tags)
    check(jc.get("judge_tag_len") == 4 and 1 <= jc.get("tags_cut", 0) <= long_tags and
          "%d of the" % jc.get("tags_cut", 0) in md and "longer than the judge's 4 tokens" in md,
          "%s tags cut to 4 tokens (at most %d are longer than 4 bytes)" % (jc.get("tags_cut"), long_tags))

    img, txt = load_vectors(vec_path)
    check(len(img) == 24, "every val item has an image vector")
    norms = [np.linalg.norm(v) for v in list(img.values()) + list(txt.values())]
    check(max(abs(n - 1) for n in norms) < 1e-5, "the vectors are unit length")
    # tau_rel: numpy's quantile over the distinct (val item, gt tag) pairs
    sims = np.array([img[it["id"]] @ txt[t] for it in items["val"] for t in set(it["tags"])])
    want = float(np.quantile(sims, 1 - P_PASS))
    check(jc.get("val_pairs") == len(sims) and abs(jc.get("tau_rel", 9) - want) < 1e-6,
          "tau_rel %.6f = numpy quantile %.6f over %d pairs" % (jc.get("tau_rel", 9), want, len(sims)))
    # identical tiles in other batch positions give cosines equal up to float rounding: a tie
    # at tau_rel may fall either way
    share = float(np.mean(sims > jc.get("tau_rel", 9)))
    ties = int(np.sum(np.abs(sims - jc.get("tau_rel", 9)) < 1e-6))
    check(abs(share - P_PASS) <= (1.0 + ties) / len(sims) + 1e-9 and
          abs(jc.get("val_pairs_passing", 0) - P_PASS * len(sims)) <= 1 + ties,
          "%.3f of the val pairs pass (%d reported; %d ties at tau_rel)" % (share, jc.get("val_pairs_passing", 0), ties))
    # selectivity: item i's tags against item i + n/2 (the tags it does not have)
    val, n = items["val"], len(items["val"])
    other = [img[val[(i + n // 2) % n]["id"]] @ txt[t] for i, it in enumerate(val) for t in set(it["tags"])
             if t not in val[(i + n // 2) % n]["tags"]]
    other_ties = int(np.sum(np.abs(np.array(other) - jc.get("tau_rel", 9)) < 1e-6))
    want_other = int(np.sum(np.array(other) > jc.get("tau_rel", 9)))
    check(jc.get("val_other_pairs") == len(other) and
          abs(jc.get("val_other_pairs_passing", -99) - want_other) <= other_ties,
          "other-item pairs: %s of %s pass, numpy %d of %d" % (jc.get("val_other_pairs_passing"),
                                                              jc.get("val_other_pairs"), want_other, len(other)))
    check("of an item with another item's tag" in md, "Markdown states the selectivity")
    # tau_div: median cos of the near-duplicate training tags
    train_tags = {t for it in items["train"] for t in it["tags"]}
    tt = sorted(train_tags)
    pairs = [(a, b) for i, a in enumerate(tt) for b in tt[i + 1:]
             if dup_key(a) in (dup_key(b), dup_key(b) + "s", dup_key(b) + "es")
             or dup_key(b) in (dup_key(a) + "s", dup_key(a) + "es")]
    want_div = float(np.median([txt[a] @ txt[b] for a, b in pairs]))
    print("near-duplicate pairs:", len(pairs), pairs[:6], "...")
    check(len(pairs) >= 10 and jc.get("near_duplicate_pairs") == len(pairs) and
          jc.get("tau_div_source") == "near_duplicates" and abs(jc.get("tau_div", 9) - want_div) < 1e-6,
          "tau_div %.6f = median %.6f of %d near-duplicate pairs" % (jc.get("tau_div", 9), want_div, len(pairs)))
    # Tag Gain by hand
    hand = tag_gain(items["val"], preds, img, txt, train_tags, tg["tau_rel"], tg["tau_div"], log_first=True)
    print("by hand:", hand)
    check(all(abs(hand[k] - tg[k]) < 1e-9 for k in ("T_known", "T_novel", "delta_known", "delta_novel"))
          and hand["items"] == tg["items"], "Tag Gain equals the hand computation")
    check(tg.get("kept_tags", 0) > 0, "some predicted tags are kept")
    # the same numbers from the vectors as external embeddings
    ev_emb = [OT_EVAL, "--config", CONFIG] + sets(env_sets + [
        "eval.pred=" + os.path.join(WORK, "pred.jsonl"), "eval.split=val", "eval.out=" + os.path.join(WORK, "report-emb"),
        "eval.taggain_embeddings=" + vec_path, "eval.tau_rel=%.17g" % tg["tau_rel"], "eval.tau_div=%.17g" % tg["tau_div"]])
    run(ev_emb)
    tg2 = json.load(open(os.path.join(WORK, "report-emb.json")))["rows"][0]["tag_gain"]
    check(all(tg2[k] == tg[k] for k in ("T_known", "T_novel", "delta_known", "delta_novel", "kept_tags")),
          "the judge's vectors as eval.taggain_embeddings give the same Tag Gain")

    # ---- the cache ----
    r = run(ev)
    check("calibration from" in r.stderr, "the second run reads calibration.json")
    tg3 = json.load(open(os.path.join(WORK, "report.json")))["rows"][0]["tag_gain"]
    check(tg3["tau_rel"] == tg["tau_rel"] and tg3["tau_div"] == tg["tau_div"], "cached taus are the same")
    os.remove(calib_path)
    r = run(ev)
    check(os.path.exists(calib_path) and "calibration written" in r.stderr, "a deleted cache is recomputed")
    check(abs(json.load(open(calib_path))["tau_rel"] - tg["tau_rel"]) < 1e-12, "to the same tau_rel")
    # a judge retrained in place (ot-run --redo: same path, same step, other
    # weights) is calibrated again, not read from the cache of the old one
    d3 = os.path.join(WORK, "judge-seed2")
    run(base + sets(JUDGE_SETS + env_sets + ["train.dir=" + d3, "train.seed=2"]))
    shutil.copy(judge, judge + ".seed1")
    shutil.copy(os.path.join(d3, "final.h5"), judge)
    r = run(ev)
    check("calibration written" in r.stderr and json.load(open(calib_path))["tau_rel"] != tg["tau_rel"],
          "a judge retrained in place is calibrated again")
    shutil.copy(judge + ".seed1", judge)
    r = run(ev)
    check("calibration written" in r.stderr, "the first judge back: calibrated again")
    # the val split extracted again in place (its shard rewritten: a new
    # version) is calibrated again, not read from the cache of the old split
    r = run(ev)
    check("calibration from" in r.stderr, "then cached")
    val_shards = sorted(glob.glob(os.path.join(data, "val", "*.h5")))
    st = os.stat(val_shards[0])
    os.utime(val_shards[0], ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    r = run(ev)
    check("calibration written" in r.stderr, "a val split extracted again is calibrated again")

    # ---- the judge on its training data ----
    tvec = os.path.join(WORK, "vectors-train.h5")
    with open(os.path.join(WORK, "pred-train.jsonl"), "w") as f:
        for it in items["train"]:
            f.write(json.dumps({"id": it["id"], "tags": [{"tag": it["tags"][0]}]}) + "\n")
    run([OT_EVAL, "--config", CONFIG] + sets(env_sets + [
        "eval.pred=" + os.path.join(WORK, "pred-train.jsonl"), "eval.split=train",
        "eval.out=" + os.path.join(WORK, "report-train"), "eval.judge=" + judge, "eval.judge_vectors=" + tvec]))
    img_t, txt_t = load_vectors(tvec)
    better = 0
    for it in items["train"]:
        v, own = img_t[it["id"]], set(it["tags"])
        s_own = np.mean([v @ txt_t[t] for t in own])
        s_other = np.mean([v @ txt_t[t] for t in tt if t not in own])
        better += s_own > s_other
    print("training items whose own tags score above the others: %d of %d" % (better, len(items["train"])))
    check(better >= 0.8 * len(items["train"]), "the judge prefers an item's own tags")

    # ---- errors ----
    r = run(ev + ["--set", "eval.taggain_embeddings=" + vec_path], expect=2)
    check(r.returncode == 2 and "eval.taggain_embeddings" in r.stderr and "eval.judge" in r.stderr,
          "eval.judge and eval.taggain_embeddings together: exit 2")
    bin_dir = os.path.join(WORK, "bin")
    run(base + sets(env_sets + ["train.dir=" + bin_dir, "train.steps=2", "model.dim=16", "model.vis_layers=1",
                                "model.txt_layers=1", "model.fuse_layers=1", "model.vocab=300",
                                "train.batch=4", "model.title_len=8"]))
    r = run(ev[:-6] + sets(["eval.judge=" + os.path.join(bin_dir, "final.h5")]), expect=2)
    check(r.returncode == 2 and "not a judge" in r.stderr, "a bin checkpoint as eval.judge: exit 2")
    return summary("eval.judge")


if __name__ == "__main__":
    sys.exit(main())
