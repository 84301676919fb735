"""ot-extract under mpirun: a slice of the emoji set (images and clips) plus
broken inputs, on 2 ranks and on 1; then SIGKILL of one rank mid-run and a
rerun. Checks: shards open in h5py, every manifest line is accounted for
exactly once (in a shard or in errors.jsonl with the expected reason), frames
are byte-identical between 1 and 2 ranks, and the resumed dataset equals the
uninterrupted one.

usage: test_extract_mpi.py OT_EXTRACT MPIEXEC CONFIG EMOJI_DIR WORKDIR
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import h5py
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from ot_testlib import check, mpi_command, summary  # noqa: E402

OT_EXTRACT, MPIEXEC, CONFIG, EMOJI, WORK = sys.argv[1:6]
MPI = mpi_command(MPIEXEC)


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(l) for l in f if l.strip()]


def make_inputs():
    """A manifest mixing real emoji images and clips with broken inputs;
    returns (manifest path, {line: expected reason substring})."""
    os.makedirs(WORK, exist_ok=True)
    media = os.path.join(WORK, "media")
    os.makedirs(media, exist_ok=True)
    imgs = read_jsonl(os.path.join(EMOJI, "emoji-zh.train.jsonl"))[:40]
    clips = read_jsonl(os.path.join(EMOJI, "emoji-zh-video.train.jsonl"))[:6]
    for it in imgs + clips:
        it["path"] = os.path.abspath(os.path.join(EMOJI, it["path"]))
    clip0 = clips[0]["path"]
    png0 = imgs[0]["path"]
    # broken inputs
    open(os.path.join(media, "empty.mp4"), "wb").close()
    with open(clip0, "rb") as f:
        data = f.read()
    with open(os.path.join(media, "truncated.mp4"), "wb") as f:
        f.write(data[: len(data) // 3])
    with open(os.path.join(media, "text.mp4"), "w") as f:
        f.write("this is not a video\n" * 50)
    with open(png0, "rb") as f:
        png = bytearray(f.read())
    png[40:] = b"\x00" * (len(png) - 40)  # keep the signature, destroy the chunks
    with open(os.path.join(media, "corrupt.png"), "wb") as f:
        f.write(png)
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "sine=d=1", "-c:a", "aac",
                    os.path.join(media, "audio.m4a")], check=True)
    lines, expect = [], {}

    def add(obj, reason=None):
        """reason: substring the recorded reason must contain ("" = any)."""
        lines.append(obj if isinstance(obj, str) else json.dumps(obj, ensure_ascii=False))
        if reason is not None:
            expect[len(lines)] = reason

    for i, it in enumerate(imgs):
        add(it)
        if i == 5:
            add({"id": "bad-empty", "path": os.path.join(media, "empty.mp4"), "tags": ["x"]}, "empty file")
        if i == 10:
            add({"id": "bad-trunc", "path": os.path.join(media, "truncated.mp4"), "tags": ["x"]}, "")
        if i == 15:
            add({"id": "bad-text", "path": os.path.join(media, "text.mp4"), "tags": ["x"]}, "cannot open")
        if i == 20:
            add({"id": "bad-png", "path": os.path.join(media, "corrupt.png"), "tags": ["x"]}, "")
        if i == 25:
            add({"id": "bad-missing", "path": os.path.join(media, "nope.mp4")}, "No such file")
        if i == 30:
            add('{"id": "bad-json", "path": ', "bad JSON")
        if i == 33:  # valid JSON, then a NUL byte: a C-string parser would take the item
            valid = json.dumps({"id": "bad-nul", "path": png0})
            add(valid + '\x00{"junk": 1}', "NUL byte at column %d" % (len(valid.encode()) + 1))
        if i == 35:
            add({"id": "bad-audio", "path": os.path.join(media, "audio.m4a")}, "no video stream")
        if i == 38:  # a good item, but line 3's id again (in another block)
            add(dict(imgs[2], title="again"), "id already on line 3")
    for it in clips:  # the emoji set's clips share their image's id: one manifest needs its own
        add(dict(it, id="clip-" + it["id"]))
    manifest = os.path.join(WORK, "manifest.jsonl")
    with open(manifest, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return manifest, len(lines), expect


def ledger_fingerprint(settings, manifest):
    h, prime = 0xCBF29CE484222325, 0x100000001B3

    def fnv(data, h):
        for b in data:
            h = ((h ^ b) * prime) & 0xFFFFFFFFFFFFFFFF
        return h
    for k, v in settings:
        h = fnv(("%s=%s\n" % (k, v)).encode(), h)
    with open(manifest, "rb") as f:
        body = f.read()
    return "%016x" % fnv(("%s|%d|%d" % (manifest, body.count(b"\n"), len(body))).encode(), h)


def run_extract(manifest, out, np_, check_rc=True, extra=()):
    cmd = [OT_EXTRACT, "--config", CONFIG, "--set", "data.train=" + manifest, "--set", "data.dir=" + out,
           *extra]
    if np_ > 1:
        cmd = MPI + ["-np", str(np_)] + cmd
    r = subprocess.run(cmd, capture_output=True, text=True)
    if check_rc and r.returncode != 0:
        print(r.stdout, r.stderr)
    return r


def load_dataset(out):
    """{line: (id, title, tags, frames bytes)} over all shards, plus errors."""
    split = os.path.join(out, "train")
    idx = json.load(open(os.path.join(split, "index.json")))
    items = {}
    for sh in idx["shards"]:
        with h5py.File(os.path.join(split, sh["file"] if "file" in sh else sh["shard"]), "r") as f:
            off = f["tags/offsets"][:]
            text = [t.decode() for t in f["tags/text"][:]]
            fr = f["frames"]
            for i, line in enumerate(f["line"][:]):
                check(int(line) not in items, "line %d in two shards" % line)
                items[int(line)] = (f["id"][i].decode(), f["title"][i].decode(),
                                    text[off[i]:off[i + 1]], fr[i].tobytes())
    errors = read_jsonl(os.path.join(split, "errors.jsonl"))
    return idx, items, errors


def check_dataset(out, n_lines, expect):
    idx, items, errors = load_dataset(out)
    err_lines = [e["line"] for e in errors]
    check(len(err_lines) == len(set(err_lines)), "an error line listed twice")
    check(set(items) | set(err_lines) == set(range(1, n_lines + 1)), "every line accounted for")
    check(not (set(items) & set(err_lines)), "no line both extracted and failed")
    check(set(err_lines) == set(expect), "errors are exactly the broken lines: %s vs %s"
          % (sorted(err_lines), sorted(expect)))
    for e in errors:
        want = expect.get(e["line"])
        check(want is not None and want in e["reason"] and e["reason"] != "",
              "reason for line %d: %r" % (e["line"], e))
    check(idx["items"] == len(items) and idx["errors"] == len(errors) and idx["lines"] == n_lines,
          "index.json counts")
    some = next(iter(items.values()))
    check(len(some[3]) == 4 * 32 * 32 * 3, "frame size T*H*W*3")
    return items


def same_dataset(a, b, what):
    check(a.keys() == b.keys(), what + ": same lines")
    diff = [k for k in a if k in b and a[k] != b[k]]
    check(not diff, what + ": identical items and frame bytes (differ at lines %s)" % diff[:5])


def main():
    manifest, n_lines, expect = make_inputs()
    out1, out2 = os.path.join(WORK, "np1"), os.path.join(WORK, "np2")
    for d in (out1, out2):
        shutil.rmtree(d, ignore_errors=True)
    r = run_extract(manifest, out2, 2)
    check(r.returncode == 0, "np2 exit code 0 (bad items are recorded, not fatal)")
    r = run_extract(manifest, out1, 1)
    check(r.returncode == 0, "np1 exit code 0")
    a = check_dataset(out1, n_lines, expect)
    b = check_dataset(out2, n_lines, expect)
    same_dataset(a, b, "np1 vs np2")

    # The ledger's fingerprint of these settings is the one earlier versions
    # wrote (FNV-1a of "key=value\n" and "manifest|lines|bytes", before
    # extract.store_frames existed), so their extractions resume after an
    # upgrade.
    want = ledger_fingerprint([("extract.frames", "4"), ("extract.height", "32"), ("extract.width", "32"),
                               ("extract.resize", "crop"), ("extract.shard_items", "8"),
                               ("extract.features", "")], manifest)
    got = json.load(open(os.path.join(out2, "train", "ledger", "run.json")))["fingerprint"]
    check(got == want, "ledger fingerprint %s = the pre-store_frames form %s" % (got, want))

    # A rerun of a complete job does nothing and changes nothing.
    r = run_extract(manifest, out2, 2)
    check(r.returncode == 0 and "resuming" in r.stderr, "rerun of a complete job resumes")
    same_dataset(a, load_dataset(out2)[1], "after rerun")

    # Bad config / manifest: exit 2, message names file/line/key, nothing written.
    bad = os.path.join(WORK, "bad")
    shutil.rmtree(bad, ignore_errors=True)
    r = run_extract(manifest, bad, 2, check_rc=False, extra=["--set", "extract.frames=lots"])
    check(r.returncode == 2 and "extract.frames" in r.stderr and not os.path.exists(bad),
          "bad --set: exit 2, no output (%d, %s)" % (r.returncode, r.stderr.strip()[-200:]))
    r = run_extract(os.path.join(WORK, "missing.jsonl"), bad, 2, check_rc=False)
    check(r.returncode == 2 and "missing.jsonl: cannot open manifest" in r.stderr and not os.path.exists(bad),
          "missing manifest: exit 2, no output")
    # The same output folder with other settings is refused (no mixing).
    r = run_extract(manifest, out2, 1, check_rc=False, extra=["--set", "extract.height=16"])
    check(r.returncode == 2 and "different settings" in r.stderr, "settings change refused")

    # Both ranks stopped mid-run, then SIGKILLed (killing one alone lets the
    # other go on extracting until Open MPI tears the job down: at 80 units
    # it once finished them all), then rerun: equals the uninterrupted run.
    copies = 12
    big = os.path.join(WORK, "big.jsonl")
    with open(manifest) as f:
        body = f.read()
    with open(big, "w") as f:
        f.write(body * copies)
    ref, killed = os.path.join(WORK, "ref"), os.path.join(WORK, "killed")
    for d in (ref, killed):
        shutil.rmtree(d, ignore_errors=True)
    run_extract(big, ref, 1, extra=["--set", "extract.shard_items=4"])
    cmd = MPI + ["-np", "2", OT_EXTRACT, "--config", CONFIG, "--set", "data.train=" + big,
                 "--set", "data.dir=" + killed, "--set", "extract.shard_items=4"]
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    ledger = os.path.join(killed, "train", "ledger")

    def units_done():
        # complete records only: a kill can leave a record's temp file
        return (len([x for x in os.listdir(ledger) if x.startswith("unit-") and x.endswith(".json")])
                if os.path.isdir(ledger) else 0)

    t0, pids = time.time(), []
    # the ranks first, so the stop lands right after the first units
    while time.time() - t0 < 60 and p.poll() is None and (len(pids) < 2 or units_done() < 6):
        if len(pids) < 2:
            pids = subprocess.run(["pgrep", "-f", "-P", str(p.pid), "ot-extract"], capture_output=True,
                                  text=True).stdout.split()
        else:
            time.sleep(0.001)
    check(len(pids) == 2, "found both rank processes to kill (%s)" % pids)
    for pid in pids:
        os.kill(int(pid), signal.SIGSTOP)
    for pid in reversed(pids):
        os.kill(int(pid), signal.SIGKILL)
    p.wait(timeout=120)
    done_before = units_done()
    n_units = -(-copies * n_lines // 4)
    print("killed with %d of %d units done" % (done_before, n_units))
    check(0 < done_before < n_units, "killed mid-run (%d of %d units done)" % (done_before, n_units))
    r = subprocess.run(cmd, capture_output=True, text=True)
    check(r.returncode == 0 and "resuming" in r.stderr, "rerun after kill succeeds and resumes")
    same_dataset(load_dataset(ref)[1], load_dataset(killed)[1], "killed+resumed vs uninterrupted")
    return summary("extract")


if __name__ == "__main__":
    sys.exit(main())
