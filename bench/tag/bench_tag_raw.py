#!/usr/bin/python3
"""Raw-archive tagging throughput: ot-tag over a raw manifest (tag.manifest:
decode -> encode -> generate/classify -> JSON, no shards) against the same
model over pre-extracted shards (the peer), same checkpoint, same items, one
process with one thread, measured alternately in the same run.

Default input: the emoji-en test images (data/emoji/emoji-en.test.jsonl,
paths relative to data/emoji). Reads ot-tag's summary line: items/s per core
by wall time (from the first unit to the joined output; the machine may be
shared, so it also prints items per CPU second of the work phase). Checks
that both modes write identical tags.

Then a projection for a 3M-video archive at the paper's frame settings
(configs/create-tag.yaml: T = 8 frames, 224x224 centre crop): decode cost
measured with bench_frames (the ot-extract/ot-tag sampler alone) on the
H.264 clips in data/emoji/clips, per video and per decoded frame, plus the
model's measured CPU s per item; and the same with the README's 720p anchor
(30-60 s 720p H.264, 8 frames: 4.22 videos/s/core with a keyframe every 1 s,
0.74 with one every 10 s) standing in for real uploads.

usage: bench_tag_raw.py --build BUILD_DIR [--config configs/emoji-en.yaml]
         [--ckpt runs/emoji-en/bin/final.h5] [--set KEY=VALUE ...] [--runs 3]
  opg: --ckpt runs/emoji-en/opg-d1/final.h5 --set model.type=opg --set model.prompts=16
       --set model.dec_layers=2 --set model.tag_len=12 [--set model.title_slots=false]
"""
import argparse
import glob
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile

ARCHIVE = 3_000_000
PAPER_T, PAPER_HW = 8, 224
ANCHOR_720P = {"keyframe every 1 s": 4.22, "keyframe every 10 s": 0.74}  # videos/s/core, README
ENV = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1",
           OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
SUMMARY = re.compile(r"summary: (\d+) items tagged, (\d+) failed \(this run: (\d+) tagged, (\d+) failed\) "
                     r"in ([0-9.]+)s wall; ([0-9.]+) items/s per core .*; ([0-9.]+) items per CPU second "
                     r"\(([0-9.]+) CPU s\)")


def ot_tag(args, out, extra):
    cmd = [os.path.join(args.build, "stages", "tag", "ot-tag"), "--config", args.config]
    for s in ["tag.ckpt=" + args.ckpt, "tag.out=" + out, "tag.batch=%d" % args.batch,
              "train.threads=1"] + args.set + extra:
        cmd += ["--set", s]
    r = subprocess.run(cmd, env=ENV, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit("ot-tag failed (exit %d):\n%s" % (r.returncode, r.stderr[-2000:]))
    m = SUMMARY.search(r.stderr)
    if not m:
        sys.exit("no summary line in ot-tag's output:\n" + r.stderr[-2000:])
    with open(os.path.join(out, "tags.jsonl")) as f:
        lines = f.read().splitlines()
    return {"items": int(m.group(3)), "failed": int(m.group(4)), "wall": float(m.group(5)),
            "per_core": float(m.group(6)), "per_cpu_s": float(m.group(7)), "lines": lines}


def peer_split(args, work):
    """data.dir holding the manifest's extracted split 'test' (extracted here
    when the config's data.dir does not have it)."""
    cfg = subprocess.run([os.path.join(args.build, "stages", "tag", "ot-tag"), "--config", args.config,
                          "--print-config"], env=ENV, capture_output=True, text=True).stdout
    m = re.search(r"^data:\n(?:  .*\n)*?  dir: \"?([^\"\n]*)\"?$", cfg, re.M)
    data_dir = m.group(1) if m else ""
    if data_dir and os.path.exists(os.path.join(data_dir, "test", "index.json")):
        with open(os.path.join(data_dir, "test", "index.json")) as f:
            if os.path.abspath(json.load(f)["manifest"]) == os.path.abspath(args.manifest):
                return data_dir
    data_dir = os.path.join(work, "data")
    r = subprocess.run([os.path.join(args.build, "stages", "extract", "ot-extract"), "--config",
                        args.config, "--set", "data.test=" + args.manifest, "--set", "data.dir=" + data_dir,
                        "--set", "extract.splits=test"], env=ENV, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit("ot-extract failed:\n" + r.stderr[-2000:])
    return data_dir


def decode_cost(args, clips):
    """bench_frames over the clips at the paper's settings: (CPU s per video,
    CPU s per decoded frame, frames decoded per video)."""
    exe = os.path.join(args.build, "bench", "extract", "bench_frames")
    if not os.path.exists(exe):
        sys.exit("%s missing: cmake --build %s --target bench_frames" % (exe, args.build))
    r = subprocess.run([exe, "-T", str(PAPER_T), "-H", str(PAPER_HW), "-W", str(PAPER_HW)] + clips,
                       env=ENV, capture_output=True, text=True)
    cpu, dec, n = 0.0, 0, 0
    for line in r.stdout.splitlines():
        f = line.split()
        if len(f) == 8 and f[1] == "OK":
            cpu += float(f[3])
            dec += int(f[4])
            n += 1
    if not n:
        sys.exit("bench_frames decoded nothing:\n" + r.stdout[-1000:] + r.stderr[-1000:])
    return cpu / n, cpu / dec, dec / n


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", required=True)
    ap.add_argument("--config", default="configs/emoji-en.yaml")
    ap.add_argument("--ckpt", default="runs/emoji-en/bin/final.h5")
    ap.add_argument("--manifest", default="data/emoji/emoji-en.test.jsonl")
    ap.add_argument("--clips", default="data/emoji/clips")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--set", action="append", default=[])
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    rates = {"raw": [], "shards": []}
    with tempfile.TemporaryDirectory(prefix="bench_tag_raw.") as work:
        data_dir = peer_split(args, work)
        ref = None
        for k in range(args.runs):
            for mode in ("raw", "shards"):
                extra = (["tag.manifest=" + args.manifest, "tag.chunk=256"] if mode == "raw"
                         else ["data.dir=" + data_dir, "tag.split=test"])
                r = ot_tag(args, os.path.join(work, "%s-%d" % (mode, k)), extra)
                rates[mode].append(r)
                if ref is None:
                    ref = r["lines"]
                elif r["lines"] != ref:
                    sys.exit("FAIL: raw-manifest and shard tags differ")
                print("run %d %-6s %d items (%d failed)  %.1f items/s per core (wall)  %.1f items/CPU s"
                      % (k, mode, r["items"], r["failed"], r["per_core"], r["per_cpu_s"]), flush=True)
        clips = sorted(glob.glob(os.path.join(args.clips, "*.mp4")))[:60]
        dec_video, dec_frame, frames_per_video = decode_cost(args, clips)

    med = {m: (statistics.median(x["per_core"] for x in v), statistics.median(x["per_cpu_s"] for x in v))
           for m, v in rates.items()}
    raw_cpu, sh_cpu = med["raw"][1], med["shards"][1]
    model_s = 1.0 / sh_cpu                 # model + JSON per item (shards read from disk)
    decode_s = max(1.0 / raw_cpu - model_s, 0.0)  # what the raw path adds per item (decode)
    print()
    print("| input | items/s per core, wall (median of %d) | items per CPU s |" % args.runs)
    print("| --- | ---: | ---: |")
    print("| raw manifest: decode -> tags (%s) | %.1f | %.1f |" % (os.path.basename(args.manifest), *med["raw"]))
    print("| pre-extracted shards (peer) | %.1f | %.1f |" % med["shards"])
    print("raw_items_per_s_per_core=%.1f shards_items_per_s_per_core=%.1f ratio=%.2f goal_50=%s"
          % (med["raw"][0], med["shards"][0], med["raw"][0] / med["shards"][0],
             "met" if med["raw"][0] >= 50 else "NOT met"))
    print("per item (CPU): model+output %.2f ms, decode of the emoji image %.2f ms" % (1e3 * model_s, 1e3 * decode_s))
    print()
    print("Projection, %d videos, T=%d frames at %dx%d (configs/create-tag.yaml), 1 core = 1 rank x 1 thread:"
          % (ARCHIVE, PAPER_T, PAPER_HW, PAPER_HW))
    print("  decode measured on %d clips of %s (128x128 H.264, 2 s): %.1f ms/video, %.2f ms per decoded frame, "
          "%.1f frames decoded per video" % (len(clips), args.clips, 1e3 * dec_video, 1e3 * dec_frame,
                                            frames_per_video))
    print("  model term: this checkpoint's measured %.2f ms/item (its own T and size: a model reading %d "
          "frames of %dx%d costs more in its visual encoder; scale that term by its FLOPs)"
          % (1e3 * model_s, PAPER_T, PAPER_HW, PAPER_HW))
    rows = [("clips as measured", dec_video)] + [("720p, " + k, 1.0 / v) for k, v in ANCHOR_720P.items()]
    print("| decode cost per video | s/video decode | s/video total | core-hours for %dM |" % (ARCHIVE // 1_000_000))
    print("| --- | ---: | ---: | ---: |")
    for name, d in rows:
        tot = d + model_s
        print("| %s | %.4f | %.4f | %.0f |" % (name, d, tot, ARCHIVE * tot / 3600))


if __name__ == "__main__":
    main()
