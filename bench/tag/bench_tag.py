#!/usr/bin/python3
"""Generative tagging throughput: ot-tag with the decoder's KV cache against
the same decoding recomputing every prefix (tag.kv_cache=false), same
checkpoint, same items, one process with one thread (items/s per core).

Runs the two alternately, `--runs` times each (the machine is noisy), and
reads items/s from ot-tag's final line (model forward + generation + JSON
output; shards read from disk). Checks that both write the same tags for
every item (scores within 1e-4 relative), then prints a table and
`kv_items_per_s=X nocache_items_per_s=Y ratio=R` (medians).

usage: bench_tag.py --build BUILD_DIR --config CFG [--set KEY=VALUE ...] [--runs 3]
  e.g. bench_tag.py --build build --config configs/emoji-en.yaml \\
         --set model.type=opg --set train.dir=runs/emoji-en/opg
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile


def run(args, work, cache, k):
    out = os.path.join(work, "%s-%d" % ("kv" if cache else "nocache", k))
    cmd = [os.path.join(args.build, "stages", "tag", "ot-tag"), "--config", args.config]
    for s in args.set + ["tag.out=" + out, "tag.kv_cache=" + ("true" if cache else "false")]:
        cmd += ["--set", s]
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1",
               OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit("ot-tag failed (exit %d):\n%s" % (r.returncode, r.stderr[-2000:]))
    m = re.search(r"done: (\d+) items in ([0-9.]+)s \(([0-9.]+) items/s\)", r.stderr)
    if not m:
        sys.exit("no throughput line in ot-tag's output:\n" + r.stderr[-2000:])
    tags = {}
    with open(os.path.join(out, "tags.jsonl")) as f:
        for line in f:
            o = json.loads(line)
            tags[o["id"]] = {t["tag"]: t["score"] for t in o["tags"]}
    return int(m.group(1)), float(m.group(3)), tags


def same(a, b):
    if a.keys() != b.keys():
        return False
    for i in a:
        if a[i].keys() != b[i].keys():
            return False
        if any(abs(a[i][t] - b[i][t]) > 1e-4 * max(abs(b[i][t]), 1e-6) for t in a[i]):
            return False
    return True


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", required=True)
    ap.add_argument("--config", required=True)
    ap.add_argument("--set", action="append", default=[])
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    rates = {True: [], False: []}
    with tempfile.TemporaryDirectory(prefix="bench_tag.") as work:
        ref = None
        for k in range(args.runs):
            for cache in (True, False):
                n, rate, tags = run(args, work, cache, k)
                rates[cache].append(rate)
                if ref is None:
                    ref = tags
                elif not same(ref, tags):
                    sys.exit("FAIL: tags with and without the KV cache differ")
                print("run %d %-8s %d items  %.1f items/s" % (k, "kv" if cache else "no cache", n, rate),
                      flush=True)
    kv, nc = statistics.median(rates[True]), statistics.median(rates[False])
    print("| decoding | items/s per core (median of %d) |" % args.runs)
    print("| --- | ---: |")
    print("| KV cache | %.1f |" % kv)
    print("| prefix recomputed | %.1f |" % nc)
    print("kv_items_per_s=%.1f nocache_items_per_s=%.1f ratio=%.2f" % (kv, nc, kv / nc))


if __name__ == "__main__":
    main()
