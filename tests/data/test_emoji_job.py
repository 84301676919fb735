#!/usr/bin/python3
"""emoji-data.sh end to end: npm install (or the packages of an existing
data folder, $OT_EMOJI_DATA_DIR, when they are at the pinned versions),
manifests, a few clips; then check_emoji_data's checks, idempotence, resume
after a killed render, clear failures without npm or ffmpeg.

--existing: only check the full data folder $OT_EMOJI_DATA_DIR (read-only);
exit 77 (skipped) when it is not set."""
import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import check_emoji_data  # noqa: E402

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what, file=sys.stderr)
    return cond


def run(cmd, env=None):
    t = time.time()
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    print(f"$ {' '.join(cmd)}  ({time.time() - t:.1f} s, exit {p.returncode})", file=sys.stderr)
    return p


def pinned_present(npm, pins, names):
    for n in names:
        try:
            with open(os.path.join(npm, "node_modules", n, "package.json")) as f:
                if json.load(f)["version"] != pins[n]:
                    return False
        except (OSError, ValueError, KeyError):
            return False
    return True


def snapshot(out):
    files = {n: open(os.path.join(out, n), "rb").read() for n in sorted(os.listdir(out)) if n.endswith((".jsonl", ".json"))}
    clips = {p: os.stat(p).st_mtime_ns for p in glob.glob(os.path.join(out, "clips", "*.mp4"))}
    return files, clips


def fake_path(tmp, keep):
    """A PATH holding only the named commands (to test missing ones)."""
    d = os.path.join(tmp, "bin")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    for c in keep:
        w = shutil.which(c)
        if w:
            os.symlink(w, os.path.join(d, c))
    return d


def job(a):
    out = os.path.join(a.work, "out")
    os.makedirs(out, exist_ok=True)
    # Start clean, except for the npm packages (a cache between runs).
    for p in glob.glob(os.path.join(out, "*.json*")):
        os.remove(p)
    shutil.rmtree(os.path.join(out, "clips"), ignore_errors=True)
    pins = json.load(open(os.path.join(os.path.dirname(a.script), "package.json")))["dependencies"]
    names = ["emoji-datasource-google", "emoji-datasource-twitter", "emojibase-data"]
    shared = os.environ.get("OT_EMOJI_DATA_DIR")
    npm = os.path.join(out, "npm")
    if shared and not os.path.lexists(npm) and pinned_present(os.path.join(shared, "npm"), pins, names):
        os.symlink(os.path.abspath(os.path.join(shared, "npm")), npm)
        print(f"reusing the npm packages of {shared}", file=sys.stderr)

    cmd = [a.script, out, "--clips", str(a.clips), "--tool", a.tool]
    p = run(cmd)
    if not check(p.returncode == 0, f"emoji-data.sh failed: {p.stderr[-2000:]}"):
        return
    summary_text = open(os.path.join(out, "summary.json"), encoding="utf-8").read()
    check(p.stdout.endswith(summary_text), "the summary is printed at the end")
    for f in check_emoji_data.check_dir(out):
        check(False, f)

    # Idempotent: nothing installed or rendered again, same bytes.
    before = snapshot(out)
    p = run(cmd)
    check(p.returncode == 0 and "already at the pinned versions" in p.stderr, "second run skips npm install")
    check(f"rendering 0 of {a.clips} clips" in p.stderr, "second run renders no clip")
    check(snapshot(out) == before, "second run leaves manifests and clips unchanged")

    # A killed render: one clip missing, a temp file left behind.
    clips = sorted(before[1])
    os.remove(clips[0])
    stale = clips[1] + ".4242.tmp"
    open(stale, "wb").write(b"half a clip")
    p = run(cmd)
    check(p.returncode == 0 and f"rendering 1 of {a.clips} clips" in p.stderr, "resume renders only the missing clip")
    check(not os.path.exists(stale) and os.path.getsize(clips[0]) > 0, "stale temp removed, clip rendered")
    check(snapshot(out)[0] == before[0], "resumed run writes the same manifests")
    pr = check_emoji_data.ffprobe(clips[0])
    check(pr is not None and pr[0] is not None and pr[0]["codec_name"] == "h264", "re-rendered clip opens")

    # Missing tools: exit non-zero with a message naming them.
    base_tools = ["bash", "dirname", "awk", "date", "mkdir", "env"]
    env = dict(os.environ, PATH=fake_path(a.work, base_tools))
    p = run([a.script, out, "--tool", a.tool], env=env)
    check(p.returncode != 0 and "npm not found" in p.stderr, f"without npm: {p.returncode} {p.stderr!r}")
    env = dict(os.environ, PATH=fake_path(a.work, base_tools + ["npm", "node"]))
    p = run([a.script, out, "--tool", a.tool], env=env)
    check(p.returncode != 0 and "ffmpeg not found" in p.stderr, f"without ffmpeg: {p.returncode} {p.stderr!r}")
    p = run([a.script, out, "--clips", "many"])
    check(p.returncode == 2, "bad --clips is a usage error")


def existing():
    d = os.environ.get("OT_EMOJI_DATA_DIR")
    if not d:
        print("OT_EMOJI_DATA_DIR not set: nothing to check", file=sys.stderr)
        sys.exit(77)
    # Every manifest line and image; ffprobe and motion on 60 of the clips
    # (evenly spaced) to stay within a few minutes on 2 cores.
    for f in check_emoji_data.check_dir(d, max_probe=60):
        check(False, f)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--script")
    ap.add_argument("--tool")
    ap.add_argument("--work")
    ap.add_argument("--clips", type=int, default=6)
    ap.add_argument("--existing", action="store_true")
    a = ap.parse_args()
    if a.existing:
        existing()
    else:
        job(a)
    if failures:
        print(f"{len(failures)} check(s) failed", file=sys.stderr)
        sys.exit(1)
    print("ok")


if __name__ == "__main__":
    main()
