#!/usr/bin/python3
"""Checks a built emoji benchmark folder (the output of emoji-data.sh)
against emojibase-data read independently, the split rule recomputed here,
the files on disk, and ffprobe. Usage: check_emoji_data.py OUTDIR
[--max-clips N]. Exit 1 with a list of failures."""
import argparse
import json
import os
import re
import subprocess
import sys

SPLITS = ("train", "val", "test")
TONES = {"1F3FB", "1F3FC", "1F3FD", "1F3FE", "1F3FF"}
CJK = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def fnv1a32(s):
    h = 0x811C9DC5
    for b in s.encode():
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return h


def split_of(group):
    r = fnv1a32(group) % 100
    return "train" if r < 80 else "val" if r < 85 else "test"


def norm(hexcode):
    return "-".join(p for p in hexcode.upper().split("-") if p != "FE0F")


class Checker:
    def __init__(self):
        self.failures = []

    def __call__(self, cond, what):
        if not cond:
            self.failures.append(what)
            if len(self.failures) <= 30:
                print("FAIL:", what, file=sys.stderr)
        return cond


def emojibase(npm, lang):
    """hexcode -> (label, base tags, base hexcode, is_skin), for entries that
    are benchmark material (tags, not components)."""
    data = json.load(open(os.path.join(npm, "emojibase-data", lang, "data.json"), encoding="utf-8"))
    out = {}
    for e in data:
        if e.get("group") == 2 or not e.get("tags"):
            continue
        out[e["hexcode"]] = (e["label"], e["tags"], e["hexcode"], False)
        for s in e.get("skins") or []:
            out[s["hexcode"]] = (s.get("label") or e["label"], e["tags"], e["hexcode"], True)
    return out


def read_bench(out, bench, check):
    items = {}
    for sp in SPLITS:
        path = os.path.join(out, f"{bench}.{sp}.jsonl")
        raw = open(path, "rb").read()
        check(b"\\u" not in raw, f"{path}: unescaped UTF-8 (no \\u escapes)")
        ids = []
        for n, line in enumerate(raw.decode("utf-8").splitlines(), 1):
            x = json.loads(line)
            check(set(x) == {"id", "path", "title", "tags", "group"}, f"{path}:{n}: fields {sorted(x)}")
            check(x["id"] not in items, f"{path}:{n}: id {x['id']} repeated")
            x["split"] = sp
            items[x["id"]] = x
            ids.append(x["id"])
        check(ids == sorted(ids), f"{path}: ids sorted")
    return items


def stats(items):
    """The summary figures, recomputed."""
    st = {"items": len(items), "splits": {}}
    tags = {}
    for sp in SPLITS:
        xs = [x for x in items.values() if x["split"] == sp]
        tags[sp] = {t for x in xs for t in x["tags"]}
        st["splits"][sp] = {"items": len(xs), "groups": len({x["group"] for x in xs}),
                            "unique_tags": len(tags[sp])}
    st["test_tags_unseen_in_train"] = len(tags["test"] - tags["train"])
    return st


def check_images(out, bench, items, base, vendors, check):
    for x in items.values():
        i = x["id"]
        hexcode, _, vendor = i.rpartition("-")
        if not check(vendor in vendors and hexcode in base, f"{bench}: {i}: unknown vendor or hexcode"):
            continue
        label, tags, parent, _ = base[hexcode]
        check(x["title"] == label, f"{bench}: {i}: title {x['title']!r} is not emojibase's {label!r}")
        check(x["tags"] == tags and len(tags) >= 1 and all(isinstance(t, str) and t for t in tags),
              f"{bench}: {i}: tags are not the base emoji's")
        group = "-".join(p for p in parent.split("-") if p not in TONES)
        check(x["group"] == group and group == group.upper() and not (set(group.split("-")) & TONES),
              f"{bench}: {i}: group {x['group']!r}, base hexcode {group!r}")
        check(x["split"] == split_of(x["group"]), f"{bench}: {i} is in {x['split']}, FNV rule says {split_of(x['group'])}")
        p = os.path.join(out, x["path"])
        check(f"/img/{vendor}/64/" in x["path"], f"{bench}: {i}: path {x['path']} is not a 64 px {vendor} image")
        # The FE0F-tolerant match: the image file names the same code points.
        fname = os.path.basename(x["path"])[:-len(".png")]
        check(norm(fname) == norm(hexcode), f"{bench}: {i}: image {fname} shows other code points")
        try:
            with open(p, "rb") as f:
                check(f.read(8) == PNG_MAGIC, f"{bench}: {i}: {p} is not a PNG")
        except OSError as e:
            check(False, f"{bench}: {i}: {e}")


def ffprobe(path):
    p = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries",
                        "stream=codec_name,width,height,pix_fmt,r_frame_rate,nb_read_frames:format=duration",
                        "-of", "json", path], capture_output=True, text=True)
    if p.returncode:
        return None
    j = json.loads(p.stdout)
    return j["streams"][0] if j.get("streams") else None, float(j["format"]["duration"])


def frame_difference(path, frames):
    """Mean absolute difference of the first and last frame, RGB at 64x48
    (RGB, not grey: a skin-coloured emoji on a light blue ground is nearly
    the same grey). Moving clips measure 3.5-40, a still one under 1."""
    n = 64 * 48 * 3
    p = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", path, "-vf",
                        f"select='eq(n\\,0)+eq(n\\,{frames - 1})',scale=64:48,format=rgb24",
                        "-fps_mode", "passthrough", "-f", "rawvideo", "-"], capture_output=True)
    raw = p.stdout
    if p.returncode or len(raw) != 2 * n:
        return None
    return sum(abs(x - y) for x, y in zip(raw[:n], raw[n:])) / n


def check_clips(out, clips_en, clips_zh, items_en, items_zh, max_probe, check):
    plan = {}
    for n, line in enumerate(open(os.path.join(out, "clips", "plan.tsv")).read().splitlines(), 1):
        f = line.split("\t")
        check(len(f) == 8, f"plan.tsv:{n}: 8 fields")
        plan[f[0]] = (f[1], *map(int, f[2:7]))
    check(set(clips_en) == set(clips_zh), "en and zh video benchmarks have the same clips")
    check({x["path"] for x in clips_en.values()} == set(plan), "video manifests list exactly the planned clips")
    for bench, clips, items in (("en", clips_en, items_en), ("zh", clips_zh, items_zh)):
        for i, x in clips.items():
            img = items.get(i)
            if not check(img is not None, f"{bench} video: {i} is not an image item"):
                continue
            check(x["path"] == f"clips/{i}.mp4", f"{bench} video: {i}: path {x['path']}")
            check((x["title"], x["tags"], x["group"], x["split"]) == (img["title"], img["tags"], img["group"], img["split"]),
                  f"{bench} video: {i}: title/tags/group/split differ from the image item")
            if x["path"] in plan:
                check(plan[x["path"]][0] == img["path"], f"{bench} video: {i} rendered from {plan[x['path']][0]}")
    fps_seen = set()
    n_probe = min(max_probe, len(plan))
    probe = {k * len(plan) // n_probe for k in range(n_probe)}  # evenly spaced sample
    for k, (clip, (_, w, h, fps, frames, motion)) in enumerate(sorted(plan.items())):
        check((w, h) in ((128, 128), (160, 120)) and 15 <= fps <= 30 and 2 <= frames / fps <= 4 and 0 <= motion <= 3,
              f"{clip}: plan {w}x{h} {fps} fps {frames} frames motion {motion}")
        fps_seen.add(fps)
        if k not in probe:
            continue
        path = os.path.join(out, clip)
        pr = ffprobe(path)
        if not check(pr is not None and pr[0] is not None, f"{clip}: ffprobe cannot open it"):
            continue
        s, dur = pr
        check(s["codec_name"] == "h264" and s["pix_fmt"] == "yuv420p", f"{clip}: {s['codec_name']} {s['pix_fmt']}")
        check((s["width"], s["height"]) == (w, h), f"{clip}: {s['width']}x{s['height']}, planned {w}x{h}")
        check(s["r_frame_rate"] == f"{fps}/1", f"{clip}: frame rate {s['r_frame_rate']}, planned {fps}")
        check(int(s["nb_read_frames"]) == frames, f"{clip}: {s['nb_read_frames']} frames, planned {frames}")
        check(abs(dur - frames / fps) < 0.05, f"{clip}: duration {dur}, planned {frames / fps}")
        diff = frame_difference(path, frames)
        check(diff is not None and diff > 1.5, f"{clip}: first and last frame differ by {diff} (no motion?)")
    if len(plan) >= 20:
        check(len(fps_seen) >= 3, f"frame rate varies across clips: {sorted(fps_seen)}")


def check_dir(out, max_probe=1 << 30):
    check = Checker()
    summary = json.load(open(os.path.join(out, "summary.json"), encoding="utf-8"))
    vendors = summary["vendors"]
    npm = os.path.join(out, "npm", "node_modules")
    benches = {}
    for lang in ("en", "zh"):
        base = emojibase(npm, lang)
        items = read_bench(out, f"emoji-{lang}", check)
        benches[lang] = items
        check_images(out, f"emoji-{lang}", items, base, vendors, check)
        s = summary["benchmarks"][f"emoji-{lang}"]
        # Nothing dropped silently: every emojibase entry is an item or a counted missing image.
        for v in vendors:
            n = sum(1 for i in items if i.endswith("-" + v))
            check(n + s["missing_images"][v] == len(base),
                  f"emoji-{lang} {v}: {n} items + {s['missing_images'][v]} missing != {len(base)} emojibase entries")
        re_st = stats(items)
        check(re_st["items"] == s["items"] and re_st["test_tags_unseen_in_train"] == s["test_tags_unseen_in_train"],
              f"emoji-{lang}: summary items/unseen {s['items']}/{s['test_tags_unseen_in_train']}, recomputed {re_st}")
        for sp in SPLITS:
            for k, v in re_st["splits"][sp].items():
                check(s["splits"][sp][k] == v, f"emoji-{lang} {sp} {k}: summary {s['splits'][sp][k]}, recomputed {v}")
        groups = {}
        for x in items.values():
            groups.setdefault(x["group"], set()).add(x["split"])
        check(all(len(v) == 1 for v in groups.values()), f"emoji-{lang}: a group is in two splits")
        check(all(any(x["split"] == sp for x in items.values()) for sp in SPLITS),
              f"emoji-{lang}: every split has items")
        skins = [x for x in items.values() if base[x["id"].rpartition("-")[0]][3]]
        check(len(skins) > len(items) // 4, f"emoji-{lang}: skin-tone variants included ({len(skins)})")
    en, zh = benches["en"], benches["zh"]
    check(set(en) == set(zh), "emoji-en and emoji-zh have the same items")
    check(all(en[i]["group"] == zh[i]["group"] and en[i]["path"] == zh[i]["path"] for i in set(en) & set(zh)),
          "en and zh share paths and groups")
    with_cjk = sum(1 for x in zh.values() if CJK.search(x["title"]))
    check(with_cjk >= 0.99 * len(zh), f"zh titles with CJK: {with_cjk} of {len(zh)}")
    check(sum(1 for x in zh.values() if any(CJK.search(t) for t in x["tags"])) >= 0.95 * len(zh), "zh tags are Chinese")
    if os.path.exists(os.path.join(out, "emoji-en-video.train.jsonl")):
        ven = read_bench(out, "emoji-en-video", check)
        vzh = read_bench(out, "emoji-zh-video", check)
        check(all(any(x["split"] == sp for x in ven.values()) for sp in SPLITS) or len(ven) < 20,
              "video: every split has clips")
        check_clips(out, ven, vzh, en, zh, max_probe, check)
        for lang, v in (("en", ven), ("zh", vzh)):
            re_st = stats(v)
            s = summary["benchmarks"][f"emoji-{lang}-video"]
            check(re_st["splits"] == {sp: {k: s["splits"][sp][k] for k in re_st["splits"][sp]} for sp in SPLITS},
                  f"emoji-{lang}-video: summary split figures")
    return check.failures


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("outdir")
    ap.add_argument("--max-clips", type=int, default=1 << 30, help="probe at most this many clips (evenly spaced)")
    a = ap.parse_args()
    f = check_dir(a.outdir, a.max_clips)
    if f:
        print(f"{len(f)} check(s) failed", file=sys.stderr)
        sys.exit(1)
    print("ok")


if __name__ == "__main__":
    main()
