"""ot-tag straight over a raw manifest (tag.manifest), end to end on real
media: the tiny set's PNGs (tests/train/tiny_data.py) plus H.264 clips made
here with the ffmpeg CLI (non-square, so the centre crop matters), one
corrupt file, one missing file, one line repeating an earlier line's id and
one manifest line that is not JSON, no tags in the manifest.

Checks:
  - 1 and 2 ranks write the same tags.jsonl; no shards are written;
  - every good id exactly once in tags.jsonl, exactly the corrupt and the
    missing item, the repeated id (naming its first line) and the bad line
    (by line number) in errors.jsonl with a reason; the summary line counts
    them;
  - a 2-rank run killed (both ranks stopped, then SIGKILLed) mid-run and
    rerun with the same command gives the uninterrupted output (also with other chunking: the
    joined output does not depend on it), each id exactly once;
  - the tags equal those of tagging the same items through shards
    (ot-extract of the same manifest, then ot-tag over that split): same
    model, same frames (the same sampler, same crop), one item per pass in
    both so even the scores' last bits match; extract's error list names the
    same failures;
  - bad input (missing manifest, other chunking into the same folder, a rag
    model without embed.ckpt) exits 2 without output.

Mode "opg" (8th argument; default "cls"): a generative opg model (60
steps, with model.title_ngram) instead, tagged raw and through shards:
identical lines.

Mode "rag": the shard path of a rag model end to end — a tiny bin (the
encoders), ot-embed of train/val and of the manifest extracted as the test
split, ot-index, ot-retrieve, a tiny rag trained on those candidates (both
with model.title_ngram; the rag with a title lexicon), ot-tag
of the test split (39 shards, each with its own candidates file, which
ot-tag loads per shard) on 1 and on 2 ranks — against ot-tag of the raw
manifest on 2 ranks, which embeds, searches and fuses per pass itself:
tags.jsonl byte-identical (ids, tags, scores, sources gen, ret and title), the failures recorded as in cls mode; a
raw rag run without embed.ckpt exits 2 naming the key, writing nothing; a
candidates index listing one file fewer than the split has shards: exit 2
on 2 ranks naming index.json and both counts, no tags.jsonl. A rerun of
the finished rag training warns once its train candidates were rewritten,
and only then.
Needs ot-embed, ot-index and ot-retrieve (9th to 11th arguments).

usage: test_tag_raw.py OT_TRAIN OT_EXTRACT OT_TAG OT_EVAL MPIEXEC CONFIG WORKDIR [cls|opg]
       test_tag_raw.py ... WORKDIR rag OT_EMBED OT_INDEX OT_RETRIEVE
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "train"))
import tiny_data  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from ot_testlib import check, mpi_command, summary  # noqa: E402

OT_TRAIN, OT_EXTRACT, OT_TAG, OT_EVAL, MPIEXEC, CONFIG, WORK = sys.argv[1:8]
MODE = sys.argv[8] if len(sys.argv) > 8 else "cls"
MPI = mpi_command(MPIEXEC)
# opg and rag (and rag's bin encoder) read the titles' n-gram vectors too
# (model.title_ngram), which the raw path computes from the manifest's titles
RAG_SETS = ["model.prompts=4", "model.tag_len=6", "retrieve.k=4", "embed.ngram_dim=256", "embed.batch=1",
            "tag.top_k=8", "model.title_ngram=64", "model.lexicon=2"]
OPG_SETS = ["model.type=opg", "model.prompts=4", "model.tag_len=6", "train.steps=60", "tag.top_k=3",
            "model.title_ngram=64"]
N_IMAGES = 300
BAD_JSON_LINE = 200  # a manifest line that is not JSON: an error record without id
REPEAT_LINE = 121  # an item whose id line 6 has already: an error record, tagged once


def make_clips(src):
    """Three short H.264 clips (48x36, 10 fps) of ffmpeg's test patterns."""
    os.makedirs(os.path.join(src, "clips"), exist_ok=True)
    out = []
    for i, (pattern, secs) in enumerate((("testsrc2", 1.5), ("smptebars", 1.0), ("rgbtestsrc", 2.0))):
        rel = "clips/clip-%d.mp4" % i
        r = subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
                            "%s=size=48x36:rate=10:duration=%s" % (pattern, secs), "-c:v", "libx264",
                            "-pix_fmt", "yuv420p", "-g", "5", os.path.join(src, rel)],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise SystemExit("ffmpeg failed: " + r.stderr)
        out.append(rel)
    return out


def write_raw_manifest(src):
    """The tiny images + clips + a corrupt and a missing file, without tags.
    Returns (manifest path, good ids, bad ids)."""
    with open(os.path.join(src, "train.jsonl")) as f:
        items = [json.loads(l) for l in f][:N_IMAGES]
    lines = [{"id": it["id"], "path": it["path"], "title": it["title"]} for it in items]
    for i, rel in enumerate(make_clips(src)):
        lines.insert(10 + 97 * i, {"id": "clip-%d" % i, "path": rel, "title": "a red clip"})
    with open(os.path.join(src, "clips", "corrupt.mp4"), "wb") as f:
        f.write(bytes((i * 131 + 7) % 256 for i in range(4096)))
    lines.insert(37, {"id": "corrupt", "path": "clips/corrupt.mp4", "title": "broken"})
    lines.insert(150, {"id": "missing", "path": "clips/not-there.mp4", "title": "gone"})
    repeat = dict(lines[5], title="the same id again")
    lines.insert(REPEAT_LINE - 1, repeat)
    lines.insert(BAD_JSON_LINE - 1, '{"id": "half-written", "path": ')
    path = os.path.join(src, "raw.jsonl")
    with open(path, "w") as f:
        f.write("".join((l if isinstance(l, str) else json.dumps(l)) + "\n" for l in lines))
    ids = [l["id"] for l in lines if not isinstance(l, str) and l is not repeat]
    bad = sorted(["corrupt", "missing", repeat["id"]])
    return path, [i for i in ids if i not in ("corrupt", "missing")], bad


def read_lines(path):
    with open(path, encoding="utf-8") as f:
        return f.read().splitlines()


def check_errors(out, bad):
    """errors.jsonl of a raw run: the corrupt and missing files, the repeated
    id, the bad line."""
    errs = [json.loads(l) for l in read_lines(os.path.join(out, "errors.jsonl"))]
    check(all(sorted(e) in (["id", "line", "path", "reason"], ["line", "reason"]) for e in errs),
          "error records: line, id, path, reason as ot-extract's (%s)" % errs[:2])
    check(sorted(e["id"] for e in errs if "id" in e) == bad,
          "errors.jsonl: exactly the corrupt and missing ids and the repeated one")
    rep = [e for e in errs if e["line"] == REPEAT_LINE]
    check(len(rep) == 1 and "already on line 6" in rep[0]["reason"],
          "the repeated id: an error record naming its first line (%s)" % rep)
    check(all(e["reason"] and e["path"] for e in errs if "id" in e), "each failed file has its path and a reason")
    helped = subprocess.run([OT_TAG, "--help"], capture_output=True, text=True).stdout
    check('errors.jsonl {"line", "id", "path", "reason"}' in " ".join(helped.split()),
          "ot-tag --help names the error record's fields as written")
    nojson = [e for e in errs if "id" not in e]
    check(len(nojson) == 1 and nojson[0]["line"] == BAD_JSON_LINE and nojson[0]["reason"],
          "the malformed manifest line: one error record with its line number and a reason")
    return errs


def check_cands_resume(run, rag):
    """A rerun of the finished rag training reads its final.h5 again: quiet
    over the same candidates, a warning once ot-retrieve's train candidates
    were written again (here: their mtimes moved)."""
    changed = "the retrieved candidates of train or val changed since"
    r = run(OT_TRAIN, rag)
    check(r.returncode == 0 and "training already complete" in r.stderr and changed not in r.stderr,
          "rag rerun over the same candidates: complete, no warning (%s)" % r.stderr.strip()[-200:])
    with open(os.path.join(WORK, "retrieve", "train", "index.json")) as f:
        files = [os.path.join(WORK, "retrieve", "train", e["path"]) for e in json.load(f)["files"]]
    for path in files:
        st = os.stat(path)
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 5 * 10**9))
    r = run(OT_TRAIN, rag)
    check(r.returncode == 0 and "training already complete" in r.stderr and changed in r.stderr,
          "rag rerun over rewritten candidates: complete, with the warning (%s)" % r.stderr.strip()[-300:])


def rag_main(data, manifest, good, bad):
    """Raw rag vs the shard path ot-embed + ot-index + ot-retrieve + ot-tag."""
    ot_embed, ot_index, ot_retrieve = sys.argv[9:12]
    t0 = time.time()

    def run(prog, sets, np_=1):
        cmd = [prog, "--config", CONFIG] + tiny_data.set_args(sets)
        if np_ > 1:
            cmd = MPI + ["-np", str(np_)] + cmd
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            print(r.stderr[-2000:])
        return r

    # the manifest extracted as the test split of the same data.dir (train
    # there: the indexes and the n-gram IDF)
    r = run(OT_EXTRACT, ["data.dir=" + data, "data.test=" + manifest, "extract.splits=test"])
    check(r.returncode == 0, "ot-extract of the raw manifest as the test split")
    bin_dir, rag_dir = os.path.join(WORK, "bin"), os.path.join(WORK, "rag")
    common = tiny_data.TINY_SETS + RAG_SETS + [
        "data.dir=" + data, "train.steps=30", "tag.batch=1", "embed.ckpt=" + os.path.join(bin_dir, "final.h5"),
        "embed.dir=" + os.path.join(WORK, "embed"), "index.dir=" + os.path.join(WORK, "index"),
        "retrieve.dir=" + os.path.join(WORK, "retrieve")]
    if not check(run(OT_TRAIN, common + ["train.dir=" + bin_dir]).returncode == 0, "training the tiny bin"):
        return summary("tag-raw-rag")
    ok = run(ot_embed, common + ["train.dir=" + bin_dir], 2).returncode == 0
    ok = ok and run(ot_index, common + ["train.dir=" + bin_dir], 2).returncode == 0
    ok = ok and run(ot_retrieve, common + ["train.dir=" + bin_dir], 2).returncode == 0
    if not check(ok, "ot-embed, ot-index, ot-retrieve of train, val and test"):
        return summary("tag-raw-rag")
    rag = common + ["model.type=rag", "train.dir=" + rag_dir]
    if not check(run(OT_TRAIN, rag).returncode == 0, "training the tiny rag on the candidates"):
        return summary("tag-raw-rag")
    print("bin, embed, index, retrieve, rag trained in %.1fs" % (time.time() - t0))
    check_cands_resume(run, rag)

    via_shards, raw = os.path.join(WORK, "via-shards"), os.path.join(WORK, "raw-rag")
    # both answers at one fusion weight and no threshold, so that generated
    # and retrieved tags are both compared whatever 30 steps taught the
    # tiny model (its tuned weight may be 1: retrieval alone)
    fused = ["tag.retrieval_weight=0.5", "tag.lexicon_weight=0.5", "tag.absence_weight=1", "tag.threshold=0"]
    r = run(OT_TAG, rag + fused + ["tag.split=test", "tag.out=" + via_shards])
    check(r.returncode == 0, "ot-tag rag over the extracted test split")
    n_shards = len([f for f in os.listdir(os.path.join(data, "test")) if f.endswith(".h5")])
    with open(os.path.join(WORK, "retrieve", "test", "index.json")) as f:
        index = json.load(f)
    check(n_shards >= 2 and len(index["files"]) == n_shards,
          "the test split has %d shards and as many candidates files (%d)" % (n_shards, len(index["files"])))
    via_shards2 = os.path.join(WORK, "via-shards-np2")
    r = run(OT_TAG, rag + fused + ["tag.split=test", "tag.out=" + via_shards2], 2)
    check(r.returncode == 0, "ot-tag rag over the extracted test split, 2 ranks")
    check(read_lines(os.path.join(via_shards2, "tags.jsonl")) == read_lines(os.path.join(via_shards, "tags.jsonl")),
          "ot-tag rag over the split: 1 and 2 ranks write the same tags")
    check_short_index(run, rag, index, n_shards)
    check_train_index(run, rag)
    t1 = time.time()
    r = run(OT_TAG, rag + fused + ["tag.manifest=" + manifest, "tag.chunk=8", "tag.out=" + raw], 2)
    check(r.returncode == 0, "ot-tag rag over the raw manifest, 2 ranks")
    m = re.search(r"summary: (\d+) items tagged, (\d+) failed .*", r.stderr)
    print("raw rag tagging: %.1fs wall; %s" % (time.time() - t1, m.group(0) if m else "-"))
    check(m and int(m.group(1)) == len(good) and int(m.group(2)) == 4, "summary counts tagged and failed")
    la = read_lines(os.path.join(raw, "tags.jsonl"))
    ls = read_lines(os.path.join(via_shards, "tags.jsonl"))
    check([json.loads(l)["id"] for l in la] == good, "every good id once, in manifest order")
    check(la == ls, "raw rag tags byte-identical to ot-embed + ot-retrieve + ot-tag over shards (%d vs %d lines%s)"
          % (len(la), len(ls), "" if la == ls else "; first difference: %s | %s"
             % next(((a, b) for a, b in zip(la, ls) if a != b), ("-", "-"))))
    sources = {t["source"] for l in la for t in json.loads(l)["tags"]}
    check(sources == {"gen", "ret", "title"},
          "the fused answer has generated, retrieved and title-lexicon tags (%s)" % sorted(sources))
    check(not any(f.endswith(".h5") for _, _, fs in os.walk(raw) for f in fs), "no files but the tags written")
    check_errors(raw, bad)
    check_absence(run, rag, fused, manifest)

    bad_out = os.path.join(WORK, "no-encoder")
    r = run(OT_TAG, rag + ["tag.manifest=" + manifest, "tag.out=" + bad_out, "embed.ckpt="])
    check(r.returncode == 2 and "embed.ckpt" in r.stderr and not os.path.exists(bad_out),
          "raw rag without embed.ckpt: exit 2 naming the key (%d: %s)" % (r.returncode, r.stderr.strip()[-200:]))
    return summary("tag-raw-rag")


def check_short_index(run, rag, index, n_shards):
    """Candidates of the test split whose index lists one file fewer than
    the split has shards (a retrieval of an older extraction): refused up
    front, naming index.json and both counts, nothing written."""
    short = os.path.join(WORK, "retrieve-short")
    shutil.copytree(os.path.join(WORK, "retrieve", "test"), os.path.join(short, "test"))
    index = dict(index, files=index["files"][:-1])
    with open(os.path.join(short, "test", "index.json"), "w") as f:
        json.dump(index, f)
    out = os.path.join(WORK, "short-index")
    r = run(OT_TAG, rag + ["tag.split=test", "tag.out=" + out, "retrieve.dir=" + short], 2)
    check(r.returncode == 2 and re.search(r"test/index\.json lists %d candidate files, the split \S+/test has %d "
                                          r"shards: run ot-retrieve again" % (n_shards - 1, n_shards), r.stderr)
          and not os.path.exists(os.path.join(out, "tags.jsonl")),
          "an index with one candidates file fewer than shards: exit 2 naming it, no tags.jsonl (%d: %s)"
          % (r.returncode, r.stderr.strip()[-300:]))


def check_train_index(run, rag):
    """Training reads each item's candidates from the file of its shard:
    an index with one train file fewer than shards is refused up front, and
    one whose first two files are swapped at the first batch that reads a
    row of another item, both naming the index or the file, no checkpoint."""
    with open(os.path.join(WORK, "retrieve", "train", "index.json")) as f:
        index = json.load(f)
    n = len(index["files"])
    if not check(n >= 2, "the train split's candidates are in %d files" % n):
        return
    for name, files, pattern in [
            ("short", index["files"][:-1], r"train/index\.json lists %d candidate files, the train split has %d "
                                           r"shards: run ot-retrieve again" % (n - 1, n)),
            ("swapped", [index["files"][1], index["files"][0]] + index["files"][2:],
             r"cand-00000[01]\.h5: (row \d+ is another item's, not '[^']+'|no row \d+ \(\d+ items\)): "
             r"the retrieval is of another extraction")]:
        ret = os.path.join(WORK, "retrieve-train-" + name)
        for split in ("train", "val"):
            shutil.copytree(os.path.join(WORK, "retrieve", split), os.path.join(ret, split))
        with open(os.path.join(ret, "train", "index.json"), "w") as f:
            json.dump(dict(index, files=files), f)
        out = os.path.join(WORK, "rag-" + name)
        r = run(OT_TRAIN, rag + ["retrieve.dir=" + ret, "train.dir=" + out, "train.steps=2"], 2)
        check(r.returncode == 2 and re.search(pattern, r.stderr) and not os.path.exists(os.path.join(out, "final.h5")),
              "rag training over a %s train index: exit 2 naming it, no checkpoint (%d: %s)"
              % (name, r.returncode, r.stderr.strip()[-300:]))


def check_absence(run, rag, fused, manifest):
    """The lexicon's absence ratio lowers exactly the colour tags (each one a
    word of the titles of the items that have it) whose item's title lacks
    them, and nothing else. The titles of 40 images name another colour than
    the image's, so that the answer holds colours its title lacks."""
    colors = sorted(tiny_data.COLORS)
    items = [json.loads(l) for l in read_lines(manifest) if l.startswith('{"id": "train-')][:40]
    for k, it in enumerate(items):
        words = it["title"].split()
        words[1] = colors[(colors.index(words[1]) + 1 + k % 3) % len(colors)]
        it["title"] = " ".join(words)
    swapped = os.path.join(WORK, "src", "swapped.jsonl")
    with open(swapped, "w") as f:
        f.write("".join(json.dumps(it) + "\n" for it in items))
    titles = {it["id"]: it["title"].split() for it in items}
    no_abs = [s for s in fused if not s.startswith("tag.absence_weight=")]
    outs = []
    for a in ("0", "1"):
        outs.append(os.path.join(WORK, "swapped-abs" + a))
        sets = no_abs + ["tag.absence_weight=" + a, "tag.top_k=100", "tag.manifest=" + swapped]
        if not check(run(OT_TAG, rag + sets + ["tag.out=" + outs[-1]]).returncode == 0,
                     "ot-tag rag over the swapped titles at absence exponent " + a):
            return
    score = lambda d: {(json.loads(l)["id"], t["tag"]): t["score"]
                       for l in read_lines(os.path.join(d, "tags.jsonl")) for t in json.loads(l)["tags"]}
    b, a = score(outs[0]), score(outs[1])
    lowered = {k for k in a if k in b and a[k] < b[k] - 1e-6}
    other = {k for k in set(a) | set(b) if abs(a.get(k, -1) - b.get(k, -1)) > 1e-6} - lowered
    check(lowered and not other and all(tag in colors and tag not in titles[i] for i, tag in lowered),
          "absence exponent 1 lowers %d colour tags, each absent from its item's title, and changes "
          "nothing else (other changes: %s)" % (len(lowered), sorted(other)[:3]))


def main():
    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(WORK)
    data = tiny_data.make(WORK, OT_EXTRACT, CONFIG, n_train=N_IMAGES, n_val=32)
    src = os.path.join(WORK, "src")
    manifest, good, bad = write_raw_manifest(src)
    if MODE == "rag":
        return rag_main(data, manifest, good, bad)
    train_dir = os.path.join(WORK, "train")
    extra = OPG_SETS if MODE == "opg" else ["train.steps=60"]
    sets = tiny_data.set_args(tiny_data.TINY_SETS + extra + ["tag.batch=1"])
    base = ["--config", CONFIG, "--set", "data.dir=" + data, "--set", "train.dir=" + train_dir] + sets
    r = subprocess.run([OT_TRAIN] + base, capture_output=True, text=True)
    if not check(r.returncode == 0, "training the tiny model"):
        print(r.stderr[-3000:])
        return 1
    raw = ["--set", "tag.manifest=" + manifest, "--set", "tag.chunk=8"]

    def tag(out, np_, extra=(), wait=True):
        cmd = [OT_TAG] + base + ["--set", "tag.out=" + out] + list(extra)
        if np_ > 1:
            cmd = MPI + ["-np", str(np_)] + cmd
        if not wait:
            return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        return subprocess.run(cmd, capture_output=True, text=True)

    # The reference through shards: ot-extract of the same manifest as the
    # test split, then ot-tag over it.
    sdata = os.path.join(WORK, "shards")
    r = subprocess.run([OT_EXTRACT, "--config", CONFIG, "--set", "data.test=" + manifest,
                        "--set", "data.dir=" + sdata, "--set", "extract.splits=test"],
                       capture_output=True, text=True)
    check(r.returncode == 0, "ot-extract of the raw manifest (%s)" % r.stderr.strip()[-300:])
    via_shards = os.path.join(WORK, "via-shards")
    r = tag(via_shards, 1, extra=["--set", "data.dir=" + sdata, "--set", "tag.split=test"])
    check(r.returncode == 0, "ot-tag over the extracted shards (%s)" % r.stderr.strip()[-300:])

    a, b = os.path.join(WORK, "raw-np1"), os.path.join(WORK, "raw-np2")
    ra = tag(a, 1, extra=raw)
    check(ra.returncode == 0, "raw np1 (%s)" % ra.stderr.strip()[-300:])
    check(tag(b, 2, extra=raw).returncode == 0, "raw np2")
    la = read_lines(os.path.join(a, "tags.jsonl"))
    ids = [json.loads(l)["id"] for l in la]
    check(ids == good, "every good id once, in manifest order (%d of %d)" % (len(ids), len(good)))
    check(la == read_lines(os.path.join(b, "tags.jsonl")), "1 and 2 ranks write the same tags")
    check(not any(f.endswith(".h5") for d in (a, b) for _, _, fs in os.walk(d) for f in fs),
          "no shards written in raw mode")
    ls = read_lines(os.path.join(via_shards, "tags.jsonl"))
    check(la == ls, "raw tags identical to the tags through extracted shards (%d vs %d lines)"
          % (len(la), len(ls)))
    if MODE == "opg":
        gen = [t for l in la for t in json.loads(l)["tags"]]
        check(gen and all(t["source"] == "gen" for t in gen), "opg: generated tags (%d)" % len(gen))
        return summary("tag-raw-opg")

    errs = check_errors(a, bad)
    reasons = {str(e.get("id")): e["reason"] for e in errs}
    print("error reasons:", json.dumps(reasons))
    check("cannot open" in reasons.get("missing", ""), "missing file: 'cannot open' reason")
    ext_errs = [json.loads(l) for l in read_lines(os.path.join(sdata, "test", "errors.jsonl"))]
    check(sorted(e.get("id", "") for e in ext_errs) == [""] + bad, "ot-extract lists the same four failures")
    m = re.search(r"summary: (\d+) items tagged, (\d+) failed .* ([0-9.]+) items/s per core \(1 rank",
                  ra.stderr)
    check(m and int(m.group(1)) == len(good) and int(m.group(2)) == 4 and float(m.group(3)) > 0,
          "summary line counts tagged and failed (%s)" % (m.group(0) if m else ra.stderr[-300:]))

    # SIGKILL of one rank mid-run, then the same command.
    k = os.path.join(WORK, "killed")
    ledger = os.path.join(k, "ledger")
    n_chunks = (len(good) + len(bad) + 1 + 3) // 4
    small = ["--set", "tag.manifest=" + manifest, "--set", "tag.chunk=4"]  # more units: easier to catch

    def units_done():
        # complete records only: a kill can leave a record's temp file (unit-N.json.tmp.PID)
        return (len([x for x in os.listdir(ledger) if x.startswith("unit-") and x.endswith(".json")])
                if os.path.isdir(ledger) else 0)

    for attempt in range(3):
        shutil.rmtree(k, ignore_errors=True)
        p = tag(k, 2, extra=small, wait=False)
        t0, pids = time.time(), []
        # find the ranks first, so the kill lands right after the first chunks
        while time.time() - t0 < 60 and p.poll() is None and (not pids or units_done() < 2):
            if len(pids) < 2:
                pids = subprocess.run(["pgrep", "-P", str(p.pid), "-f", "ot-tag"], capture_output=True,
                                      text=True).stdout.split()
            else:
                time.sleep(0.001)
        if pids:
            # stop both ranks at once, then kill them: killing one alone
            # lets the other finish every chunk before mpirun tears it down
            # (an idle machine tags the 77 chunks in well under a second)
            for pid in pids:
                os.kill(int(pid), signal.SIGSTOP)
            for pid in reversed(pids):
                os.kill(int(pid), signal.SIGKILL)
        p.wait(timeout=120)
        done = units_done()
        if 0 < done < n_chunks:
            break
        print("attempt %d: the kill missed the run (%d of %d chunks done); again" % (attempt + 1, done, n_chunks))
    print("killed with %d of %d chunks done" % (done, n_chunks))
    check(0 < done < n_chunks, "killed mid-run (%d of %d chunks done)" % (done, n_chunks))
    check(not os.path.exists(os.path.join(k, "tags.jsonl")), "no tags.jsonl from the killed run")
    r = tag(k, 2, extra=small)
    check(r.returncode == 0, "rerun after the kill (%s)" % r.stderr.strip()[-300:])
    lk = read_lines(os.path.join(k, "tags.jsonl"))
    kids = [json.loads(l)["id"] for l in lk]
    check(len(kids) == len(set(kids)) and sorted(kids) == sorted(good), "rerun: each good id exactly once")
    check(lk == la, "killed + rerun output equals the uninterrupted one")
    kerr = sorted(str(json.loads(l).get("id")) for l in read_lines(os.path.join(k, "errors.jsonl")))
    check(kerr == ["None"] + bad, "rerun: errors.jsonl holds exactly the four failures (%s)" % kerr)
    m = re.search(r"summary: (\d+) items tagged, (\d+) failed \(this run: (\d+) tagged", r.stderr)
    check(m and int(m.group(1)) == len(good) and int(m.group(2)) == 4 and int(m.group(3)) < len(good),
          "rerun summary: all tagged, 4 failed, fewer tagged this run (%s)" % (m.group(0) if m else "-"))
    # the progress line's rate is of this run's share, which it names
    m = re.search(r"done: (\d+) items, (\d+) of them this run in", r.stderr)
    check(m and int(m.group(2)) < int(m.group(1)), "rerun progress: its share of the items named (%s)"
          % (m.group(0) if m else r.stderr.strip()[-200:]))
    r = tag(k, 2, extra=small)
    check(r.returncode == 0 and "all finished by an earlier run" in r.stderr
          and "%d items tagged, 4 failed, all by an earlier run" % len(good) in r.stderr and "items/s" not in r.stderr,
          "third run: nothing left, said so, no rate of nothing (%s)" % r.stderr.strip()[-300:])
    check(read_lines(os.path.join(k, "tags.jsonl")) == la, "third run: output unchanged")

    # Bad input: exit 2 with a message, nothing written.
    bad_out = os.path.join(WORK, "bad")
    r = tag(bad_out, 2, extra=["--set", "tag.manifest=" + os.path.join(src, "nope.jsonl")])
    check(r.returncode == 2 and "nope.jsonl" in r.stderr and not os.path.exists(bad_out),
          "missing manifest: exit 2 (%d: %s)" % (r.returncode, r.stderr.strip()[-200:]))
    r = tag(a, 1, extra=raw[:2] + ["--set", "tag.chunk=16"])
    check(r.returncode == 2 and "different settings" in r.stderr, "other chunking into the same folder refused")
    ckpt = os.path.join(train_dir, "final.h5")  # rewritten under its name, as a continued training does
    st = os.stat(ckpt)
    os.utime(ckpt, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    r = tag(k, 2, extra=small)
    check(r.returncode == 2 and "different settings" in r.stderr,
          "after final.h5 was rewritten, the finished folder is refused (%d: %s)" % (r.returncode, r.stderr.strip()[-200:]))
    os.utime(ckpt, ns=(st.st_atime_ns, st.st_mtime_ns))
    r = tag(bad_out, 1, extra=raw + ["--set", "model.type=rag"])
    check(r.returncode == 2 and "embed.ckpt" in r.stderr and not os.path.exists(bad_out),
          "rag with a raw manifest and no embed.ckpt: exit 2 (%s)" % r.stderr.strip()[-200:])
    return summary("tag-raw")


if __name__ == "__main__":
    sys.exit(main())
