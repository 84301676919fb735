#!/usr/bin/python3
"""Frame sampling benchmark: ot_frames vs the ffmpeg CLI doing the same job.

Job: T=8 frames uniformly over each video (t_i = start + (i+0.5)·D/T, the
last frame shown at or before t_i), centre crop to square, 64x64, raw RGB24.
Two sets of 720p H.264 videos (30-60 s, made here with the CLI and cached):
a keyframe every 1 s (kf1) and every 10 s (kf10). One core everywhere
(-threads 1 / threads=1); time is CPU time (user+sys) per video, so the
figures hold on a busy machine. The CLI runs the best exact method of three,
chosen per set: one process `-ss S -i IN -frames:v 1` per sample (S just
before the wanted frame), one process opening the file once per sample with
its own -ss (8 inputs, 8 outputs), or one decoding pass with a select filter
on frame numbers. All must give the same bytes; ours is compared with them.

Usage: bench_frames.py --build BUILD_DIR [--media DIR] [--reps 3]
Prints a table, then `ratio_kf1=X ratio_kf10=Y` (ours / CLI, videos/s per core).

Ours runs as the ot-extract program (which sets the ratio: HDF5 writing
included) and as the C driver bench_frames (per-video timings).
First run makes the videos (~4 min on 2 cores); later runs take ~2 min.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

T, SIZE = 8, 64
SETS = {"kf1": 30, "kf10": 300}  # GOP length in frames at 30 fps
DURATIONS = (30, 40, 50, 60)
SWS = "bilinear+accurate_rnd+full_chroma_int"  # the sampler's libswscale flags


def run(cmd, stdout=subprocess.PIPE):
    """Runs cmd; returns (stdout bytes, cpu seconds, wall seconds, peak RSS kB)."""
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=stdout, stderr=subprocess.PIPE)
    out = p.stdout.read() if stdout == subprocess.PIPE else b""
    err = p.stderr.read()
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    for s in (p.stdout, p.stderr):
        if s:
            s.close()
    if p.returncode != 0:
        sys.exit("failed (%d): %s\n%s" % (p.returncode, " ".join(cmd), err.decode(errors="replace")))
    return out, ru.ru_utime + ru.ru_stime, time.monotonic() - t0, ru.ru_maxrss


def make_media(media):
    os.makedirs(media, exist_ok=True)
    videos = {}
    for name, gop in SETS.items():
        videos[name] = []
        for k, d in enumerate(DURATIONS):
            path = os.path.join(media, "%s_%02ds.mp4" % (name, d))
            if not os.path.exists(path):
                print("making %s" % path, flush=True)
                tmp = path + ".tmp.mp4"
                run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-f", "lavfi",
                     "-i", "testsrc2=s=1280x720:r=30:d=%d,hue=h=%d" % (d, 50 * k),
                     "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-g", str(gop),
                     "-keyint_min", str(gop), "-sc_threshold", "0", "-pix_fmt", "yuv420p", tmp])
                os.rename(tmp, path)
            videos[name].append(path)
    return videos


def probe(path):
    """Frame numbers the job wants (display order) and the crop, as frames.h defines them."""
    out, *_ = run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                   "stream=width,height,start_pts,duration_ts,time_base", "-of",
                   "default=nw=1", path])
    info = dict(l.split("=", 1) for l in out.decode().split())
    pk, *_ = run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                  "packet=pts", "-of", "csv=p=0", path])
    pts = sorted(int(x) for x in pk.split())
    start, dur = int(info["start_pts"]), int(info["duration_ts"])
    num, den = (int(x) for x in info["time_base"].split("/"))
    want, secs = [], []
    for i in range(T):
        t = start + (dur * (2 * i + 1)) // (2 * T)
        n = max([k for k, p in enumerate(pts) if p <= t] or [0])
        want.append(n)
        # -ss point halfway between the wanted frame and the one before it
        prev = pts[n - 1] if n > 0 else pts[n] - 1
        secs.append((pts[n] + prev) / 2 * num / den - start * num / den)
    w, h = int(info["width"]), int(info["height"])
    cw, ch = (h, h) if w > h else (w, w)
    crop = "crop=%d:%d:%d:%d" % (cw, ch, ((w - cw) // 2) & ~1, ((h - ch) // 2) & ~1)
    return {"want": want, "ss": secs, "vf": "%s,scale=%d:%d:flags=%s" % (crop, SIZE, SIZE, SWS)}


FF = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-threads", "1",
      "-filter_threads", "1"]
RAW = ["-an", "-sn", "-dn", "-pix_fmt", "rgb24", "-f", "rawvideo", "-"]


def cli_seek(path, p):
    """One process per sample: input seek to the keyframe, decode up to S."""
    out, cpu, wall, rss = b"", 0.0, 0.0, 0
    for s in p["ss"]:
        o, c, w, r = run(FF + ["-ss", "%.6f" % s, "-i", path, "-frames:v", "1", "-vf", p["vf"]] + RAW)
        out, cpu, wall, rss = out + o, cpu + c, wall + w, max(rss, r)
    return out, cpu, wall, rss


def cli_inputs(path, p):
    """One process, the file opened once per sample with its own input seek."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = list(FF)
        for s in p["ss"]:
            cmd += ["-threads", "1", "-ss", "%.6f" % s, "-i", path]
        for k in range(len(p["ss"])):
            cmd += ["-map", "%d:v:0" % k, "-frames:v", "1", "-vf", p["vf"]] + RAW[:-1] + [
                "-y", os.path.join(tmp, "%d.rgb" % k)]
        _, c, w, r = run(cmd)
        out = b""
        for k in range(len(p["ss"])):
            with open(os.path.join(tmp, "%d.rgb" % k), "rb") as f:
                out += f.read()
    return out, c, w, r


def cli_select(path, p):
    """One pass: decode up to the last sample, keep the wanted frame numbers."""
    expr = "+".join("eq(n,%d)" % n for n in sorted(set(p["want"])))
    o, c, w, r = run(FF + ["-i", path, "-vf", "select='%s',%s" % (expr, p["vf"]),
                           "-fps_mode", "passthrough", "-frames:v", str(len(set(p["want"])))] + RAW)
    fs = SIZE * SIZE * 3
    frames = {n: o[k * fs:(k + 1) * fs] for k, n in enumerate(sorted(set(p["want"])))}
    return b"".join(frames.get(n, b"") for n in p["want"]), c, w, r


def bench_frames_runner(no_flags=0):
    """Ours through the C driver bench_frames, threads=1; no_flags turns
    decoding shortcuts off (frames.h OT_FRAMES_NO_*) to show what each pays."""
    def run_bench_frames(build, paths):
        """One run over all videos in one process. Returns (output bytes per
        video or None, cpu s per video, wall s per video, peak RSS kB); the
        process's start-up and teardown CPU is shared out over the videos."""
        drv = os.path.join(build, "bench", "extract", "bench_frames")
        with tempfile.TemporaryDirectory() as tmp:
            o, total, _, rss = run([drv, "-T", str(T), "-H", str(SIZE), "-W", str(SIZE), "-j", "1",
                                    "-n", str(no_flags), "-o", tmp] + paths)
            lines = [l.split() for l in o.decode().splitlines() if not l.startswith(("#", "peak"))]
            if len(lines) != len(paths) or any(l[1] != "OK" for l in lines):
                sys.exit("bench_frames failed:\n" + o.decode())
            cpu = [float(l[3]) for l in lines]
            extra = max(0.0, total - sum(cpu)) / len(paths)
            outs = []
            for k in range(len(paths)):
                with open(os.path.join(tmp, "%d.rgb" % k), "rb") as f:
                    outs.append(f.read())
        return outs, [c + extra for c in cpu], [float(l[2]) for l in lines], rss
    return run_bench_frames


def run_ot_extract(build, paths):
    """The real program, one process (no mpirun), threads=1: a manifest of the
    videos, one shard; its CPU time (start-up, HDF5 writing and deflate
    included) is shared out evenly over the videos; frames read back with h5py
    for the byte comparison."""
    import h5py
    exe = os.path.join(build, "stages", "extract", "ot-extract")
    with tempfile.TemporaryDirectory() as tmp:
        man = os.path.join(tmp, "videos.jsonl")
        with open(man, "w") as f:
            for k, p in enumerate(paths):
                f.write('{"id": "v%d", "path": "%s"}\n' % (k, os.path.abspath(p)))
        _, total, wall, rss = run([exe, "--config", os.path.join(SRC, "configs", "tiny.yaml"),
                                   "--set", "data.train=" + man, "--set", "data.dir=" + tmp + "/out",
                                   "--set", "extract.frames=%d" % T, "--set", "extract.height=%d" % SIZE,
                                   "--set", "extract.width=%d" % SIZE, "--set", "extract.resize=crop",
                                   "--set", "extract.threads=1", "--set", "extract.shard_items=1000"],
                                  stdout=subprocess.DEVNULL)
        with h5py.File(os.path.join(tmp, "out", "train", "shard-000000.h5"), "r") as f:
            fr = f["frames"]
            outs = [fr[k].tobytes() for k in range(len(paths))]
    n = len(paths)
    return outs, [total / n] * n, [wall / n] * n, rss


SRC = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Runners of ours: (label, function(build, paths), runs or None for --reps).
# The first one sets the ratio: the ot-extract program itself.
OURS = [
    ("ot-extract (program)", run_ot_extract, None),
    ("ot_frames (bench_frames)", bench_frames_runner(0), None),
    ("  same, no nonref skip", bench_frames_runner(2), 1),
    ("  same, no drain", bench_frames_runner(4), 1),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", required=True)
    ap.add_argument("--media", help="video cache (default BUILD/bench/extract/media)")
    ap.add_argument("--reps", type=int, default=3, help="runs of ours and of the peer")
    a = ap.parse_args()
    media = a.media or os.path.join(a.build, "bench", "extract", "media")
    videos = make_media(media)
    fsz = T * SIZE * SIZE * 3
    rows, ratios = [], {}
    cli = (("cli -ss, 8 processes", cli_seek), ("cli -ss, 8 inputs", cli_inputs),
           ("cli select, 1 pass", cli_select))
    for name, paths in videos.items():
        probes = [probe(p) for p in paths]
        # every CLI method once (outputs must agree); the fastest is the peer
        res = {label: [fn(path, p) for path, p in zip(paths, probes)] for label, fn in cli}
        best = min(res, key=lambda l: statistics.median(r[1] for r in res[l]))
        ref = [r[0] for r in res[best]]
        cpu = {l: [[r[1]] for r in res[l]] for l in res}
        wall = {l: [[r[2]] for r in res[l]] for l in res}
        rss = {l: max(r[3] for r in res[l]) for l in res}
        ok = {l: all(len(r[0]) == fsz for r in res[l]) for l in res}
        note = {l: "%d/%d same bytes as %s" % (sum(r[0] == x for r, x in zip(res[l], ref)),
                                               len(paths), "itself" if l == best else "best")
                for l in res}
        # ours, interleaved with more runs of the peer so load drifts hit both
        for rep in range(a.reps):
            for label, fn, runs in OURS:
                if rep >= (runs or a.reps):
                    continue
                outs, c, w, r = fn(a.build, paths)
                cpu.setdefault(label, [[] for _ in paths])
                wall.setdefault(label, [[] for _ in paths])
                for k in range(len(paths)):
                    cpu[label][k].append(c[k])
                    wall[label][k].append(w[k])
                rss[label] = max(rss.get(label, 0), r)
                if outs is not None:
                    same = sum(o == x for o, x in zip(outs, ref))
                    diff = max(max(abs(x - y) for x, y in zip(o, q)) if len(o) == len(q) else 255
                               for o, q in zip(outs, ref))
                    ok[label] = ok.get(label, True) and all(len(o) == fsz for o in outs)
                    note[label] = "%d/%d byte-identical to CLI (max diff %d)" % (same, len(paths), diff)
                else:
                    ok.setdefault(label, True)
                    note.setdefault(label, "")
            if rep > 0:
                fn = dict(cli)[best]
                for k, (path, p) in enumerate(zip(paths, probes)):
                    _, c, w, _ = fn(path, p)
                    cpu[best][k].append(c)
                    wall[best][k].append(w)
        med = {l: statistics.median(statistics.median(v) for v in cpu[l]) for l in cpu}
        for l in list(res) + [o[0] for o in OURS]:
            wmed = statistics.median(statistics.median(v) for v in wall[l])
            rows.append((name, l + (" *" if l == best else ""), med[l], wmed, rss[l], ok[l], note[l]))
        ratios[name] = med[best] / med[OURS[0][0]]
    print("\n%-5s %-26s %10s %11s %10s %9s %6s  %s" % ("set", "runner", "cpu s/vid", "videos/s/c",
                                                        "wall s/vid", "peakRSS", "8x64²", "output"))
    for name, label, cpu, wall, rss, ok, note in rows:
        print("%-5s %-26s %10.3f %11.2f %10.3f %7.1fMB %6s  %s" % (name, label, cpu, 1 / cpu, wall,
                                                                   rss / 1024, "ok" if ok else "BAD", note))
    print("videos per set: %d (%s s); cpu = median over videos of the median over runs: "
          "%d runs of ours and of the peer (*), 1 of the others" % (
              len(DURATIONS), "/".join(map(str, DURATIONS)), a.reps))
    print("ratio_kf1=%.2f ratio_kf10=%.2f" % (ratios["kf1"], ratios["kf10"]))
    bad = [r for r in rows if not r[5]]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
