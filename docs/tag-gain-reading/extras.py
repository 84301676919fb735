#!/usr/bin/env python3
"""Blind reading of the tags two rows write beyond the ground truth.

  extras.py sample REPORT.json ROW_A ROW_B N SEED SHEET.tsv
      REPORT.json: an ot-eval report whose rows were scored with
      eval.examples at least the split's size (every item's tags with their
      Tag Gain fate). Draws N tags outside the item's ground truth from each
      row (uniformly over all such tags), shuffles the 2N together and writes
      a sheet: index, title, tag, and an empty `relevant` column. The rows and
      fates go to SHEET.tsv.key beside it, so the reader sees neither.
  extras.py score sheet.tsv
      After the reader filled `relevant` (1: the tag describes the item, 0:
      it does not): per row, the share of extras that are relevant, the share
      among those the judge kept (fate known or novel), and how often the
      judge keeps a relevant and an irrelevant extra, with Wilson 95 %
      intervals.
"""
import collections
import json
import math
import random
import sys


def wilson(k, n, z=1.96):
    if n == 0:
        return float("nan"), float("nan")
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return c - h, c + h


def share(k, n):
    lo, hi = wilson(k, n)
    return "%d/%d = %.0f%% [%.0f, %.0f]" % (k, n, 100 * k / n if n else float("nan"), 100 * lo, 100 * hi)


def sample(report, row_a, row_b, n, seed, sheet):
    rows = {r["name"]: r for r in json.load(open(report, encoding="utf-8"))["rows"]}
    rng = random.Random(seed)
    drawn = []
    for name in (row_a, row_b):
        pool = []
        for e in rows[name]["examples"]:
            gt = {t.casefold() for t in e["gt"]}
            pool += [(name, e["id"], e["title"], t["tag"], t["fate"]) for t in e["tags"]
                     if t["tag"].casefold() not in gt]
        drawn += rng.sample(pool, n)
    rng.shuffle(drawn)
    with open(sheet, "w", encoding="utf-8") as f:
        f.write("index\ttitle\ttag\trelevant\n")
        for i, (_, _, title, tag, _) in enumerate(drawn):
            f.write("%d\t%s\t%s\t\n" % (i, title, tag))
    with open(sheet + ".key", "w", encoding="utf-8") as f:
        f.write("index\trow\tid\tfate\n")
        for i, (name, id_, _, _, fate) in enumerate(drawn):
            f.write("%d\t%s\t%s\t%s\n" % (i, name, id_, fate))


def score(sheet):
    def read(path):
        with open(path, encoding="utf-8") as f:
            head = f.readline().rstrip("\n").split("\t")
            return {int(r[0]): dict(zip(head, r)) for r in (l.rstrip("\n").split("\t") for l in f)}
    labels, key = read(sheet), read(sheet + ".key")
    c = collections.defaultdict(collections.Counter)
    for i, k in key.items():
        rel = int(labels[i]["relevant"])
        kept = k["fate"] in ("known", "novel")
        s = c[k["row"]]
        s["n"] += 1
        s["rel"] += rel
        s["kept"] += kept
        s["kept_rel"] += kept and rel
    for row, s in c.items():
        print("%s: relevant %s; among the judge's kept %s; the judge keeps relevant %s, irrelevant %s" % (
            row, share(s["rel"], s["n"]), share(s["kept_rel"], s["kept"]), share(s["kept_rel"], s["rel"]),
            share(s["kept"] - s["kept_rel"], s["n"] - s["rel"])))


if __name__ == "__main__":
    if len(sys.argv) == 8 and sys.argv[1] == "sample":
        sample(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6]), sys.argv[7])
    elif len(sys.argv) == 3 and sys.argv[1] == "score":
        score(sys.argv[2])
    else:
        sys.exit(__doc__)
