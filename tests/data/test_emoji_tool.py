#!/usr/bin/python3
"""ot-emoji-data on a small hand-made copy of the npm packages: the exact
items, splits, groups, titles, missing counts, FE0F matching; and clear
errors (exit 2, file named) on bad input. Needs no network."""
import argparse
import json
import os
import shutil
import subprocess
import sys

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 16

# FNV-1a 32 of the base hexcodes, computed by hand (byte by byte, offset
# 0x811c9dc5, prime 0x01000193) and cross-checked against the reference
# vectors fnv1a("a") = 0xe40c292c, fnv1a("foobar") = 0xbf9cf968.
HAND_FNV = {"2764": 0x765995EC, "1F44B": 0xD1471284, "1F600": 0x1E21B508,
            "1F612": 0x2223F9EB, "1F604": 0x2221BB54}


def fnv1a32(s):
    h = 0x811C9DC5
    for b in s.encode():
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return h


def split_of(group):
    r = fnv1a32(group) % 100
    return "train" if r < 80 else "val" if r < 85 else "test"


def rec(unified, image, google=True, twitter=True, skins=None):
    r = {"unified": unified, "image": image, "has_img_google": google, "has_img_twitter": twitter}
    if skins is not None:
        r["skin_variations"] = skins
    return r


DATASOURCE = [
    # emojibase writes "2764" without FE0F: matched only after normalising.
    rec("2764-FE0F", "2764-fe0f.png"),
    rec("1F44B", "1f44b.png", skins={
        "1F3FB": rec("1F44B-1F3FB", "1f44b-1f3fb.png", twitter=False),
        "1F3FC": rec("1F44B-1F3FC", "1f44b-1f3fc.png")}),
    rec("1F600", "1f600.png"),      # the twitter file is not a PNG
    rec("1F612", "1f612.png"),
    rec("1F604", "1f604.png"),
]
NOT_PNG = {("twitter", "1f600.png")}


def base(lang):
    zh = lang == "zh"
    return [
        {"hexcode": "2764", "label": "红心" if zh else "red heart", "tags": ["心", "爱"] if zh else ["heart", "love"], "group": 0},
        {"hexcode": "1F44B", "label": "挥手" if zh else "waving hand", "tags": ["手"] if zh else ["wave", "hand"], "group": 1,
         "skins": [{"hexcode": "1F44B-1F3FB"},  # no label of its own: the base label
                   {"hexcode": "1F44B-1F3FC", "label": "挥手: 中等-浅肤色" if zh else "waving hand: medium-light skin tone"},
                   {"hexcode": "1F44B-1F3FF", "label": "挥手: 较深肤色" if zh else "waving hand: dark skin tone"}]},
        {"hexcode": "1F600", "label": "笑脸" if zh else "grinning face", "tags": ["脸"] if zh else ["face", "grin"], "group": 0},
        {"hexcode": "1F612", "label": "不高兴" if zh else "unamused face", "tags": ["脸", "不高兴"] if zh else ["face", "meh"], "group": 0},
        {"hexcode": "1F604", "label": "大笑" if zh else "grinning face with smiling eyes", "tags": ["笑"] if zh else ["smile", "face"], "group": 0},
        {"hexcode": "1F1E6", "label": "regional indicator A"},                      # no tags
        {"hexcode": "1F3FB", "label": "light skin tone", "tags": ["skin"], "group": 2},  # component
    ]


def make_npm(root):
    nm = os.path.join(root, "npm", "node_modules")
    for vendor in ("google", "twitter"):
        pkg = os.path.join(nm, "emoji-datasource-" + vendor)
        img = os.path.join(pkg, "img", vendor, "64")
        os.makedirs(img)
        with open(os.path.join(pkg, "emoji.json"), "w") as f:
            json.dump(DATASOURCE, f)
        with open(os.path.join(pkg, "package.json"), "w") as f:
            json.dump({"version": "16.0.0"}, f)
        names = []
        for r in DATASOURCE:
            names.append(r["image"])
            names += [s["image"] for s in r.get("skin_variations", {}).values()]
        for n in names:
            with open(os.path.join(img, n), "wb") as f:
                f.write(b"not a png" if (vendor, n) in NOT_PNG else PNG)
    for lang in ("en", "zh"):
        d = os.path.join(nm, "emojibase-data", lang)
        os.makedirs(d)
        with open(os.path.join(d, "data.json"), "w", encoding="utf-8") as f:
            json.dump(base(lang), f, ensure_ascii=False)
    return nm


def run(tool, *args):
    p = subprocess.run([tool, *args], capture_output=True, text=True)
    return p.returncode, p.stdout, p.stderr


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what, file=sys.stderr)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tool", required=True)
    ap.add_argument("--work", required=True)
    a = ap.parse_args()
    shutil.rmtree(a.work, ignore_errors=True)
    os.makedirs(a.work)

    for s, h in HAND_FNV.items():
        check(fnv1a32(s) == h, f"fnv1a32({s}) = {fnv1a32(s):#x}, by hand {h:#x}")
    check(fnv1a32("a") == 0xE40C292C and fnv1a32("foobar") == 0xBF9CF968, "FNV-1a reference vectors")
    # The fixture covers all three splits.
    check({split_of(g) for g in HAND_FNV} == {"train", "val", "test"}, "fixture spans train/val/test")

    out = os.path.join(a.work, "out")
    nm = make_npm(out)
    rc, stdout, err = run(a.tool, "--npm", nm, "--out", out, "--clips", "2")
    check(rc == 0, f"tool exit {rc}: {err}")
    if rc:
        return
    expected_ids = {
        "2764-google", "2764-twitter", "1F44B-google", "1F44B-twitter", "1F44B-1F3FB-google",
        "1F44B-1F3FC-google", "1F44B-1F3FC-twitter", "1F600-google", "1F612-google",
        "1F612-twitter", "1F604-google", "1F604-twitter"}
    items = {}
    for lang in ("en", "zh"):
        for sp in ("train", "val", "test"):
            lines = read_jsonl(os.path.join(out, f"emoji-{lang}.{sp}.jsonl"))
            ids = [x["id"] for x in lines]
            check(ids == sorted(ids), f"emoji-{lang}.{sp}: ids sorted")
            for x in lines:
                check(list(x) == ["id", "path", "title", "tags", "group"], f"{x['id']}: field order {list(x)}")
                check(split_of(x["group"]) == sp, f"{x['id']} in {sp}, rule says {split_of(x['group'])}")
                check(os.path.isfile(os.path.join(out, x["path"])), f"{x['id']}: {x['path']} exists")
                items[(lang, x["id"])] = x
        got = {i for (l, i) in items if l == lang}
        check(got == expected_ids, f"{lang} ids: extra {got - expected_ids}, missing {expected_ids - got}")
    en = {i: x for (l, i), x in items.items() if l == "en"}
    zh = {i: x for (l, i), x in items.items() if l == "zh"}
    check(en["2764-google"]["path"] == "npm/node_modules/emoji-datasource-google/img/google/64/2764-fe0f.png",
          "FE0F-qualified image matched to unqualified hexcode, path relative to OUTDIR")
    check(en["1F44B-1F3FB-google"]["title"] == "waving hand", "unlabelled skin takes the base label")
    check(en["1F44B-1F3FC-twitter"]["title"] == "waving hand: medium-light skin tone", "skin keeps its own label")
    check(zh["1F44B-1F3FC-twitter"]["title"] == "挥手: 中等-浅肤色", "zh skin label")
    for i in ("1F44B-1F3FB-google", "1F44B-1F3FC-google", "1F44B-1F3FC-twitter"):
        check(en[i]["group"] == "1F44B" and en[i]["tags"] == ["wave", "hand"], f"{i}: base group and tags")
        check(zh[i]["tags"] == ["手"], f"{i}: zh base tags")
    raw = open(os.path.join(out, "emoji-zh.train.jsonl"), "rb").read()
    check("红心".encode() in raw and b"\\u" not in raw, "zh manifest is unescaped UTF-8")

    summary = json.load(open(os.path.join(out, "summary.json"), encoding="utf-8"))
    b = summary["benchmarks"]["emoji-en"]
    check(b["missing_images"] == {"google": 1, "twitter": 3}, f"missing counts {b['missing_images']}")
    check(sorted(summary["missing_image_hexcodes"]["twitter"]) == ["1F44B-1F3FB", "1F44B-1F3FF", "1F600"],
          f"missing twitter hexcodes {summary['missing_image_hexcodes']['twitter']}")
    check(b["skipped_no_tags"] == 1 and b["skipped_components"] == 1, "skipped counts")
    want = {sp: sum(1 for x in en.values() if split_of(x["group"]) == sp) for sp in ("train", "val", "test")}
    check({sp: b["splits"][sp]["items"] for sp in want} == want, f"summary items per split {want}")
    test_tags = {t for x in en.values() if split_of(x["group"]) == "test" for t in x["tags"]}
    train_tags = {t for x in en.values() if split_of(x["group"]) == "train" for t in x["tags"]}
    check(b["test_tags_unseen_in_train"] == len(test_tags - train_tags), "unseen test tags")

    plan = [l.split("\t") for l in open(os.path.join(out, "clips", "plan.tsv")).read().splitlines()]
    check(len(plan) == 2, f"2 clips planned, got {len(plan)}")
    vids = [x for sp in ("train", "val", "test") for x in read_jsonl(os.path.join(out, f"emoji-zh-video.{sp}.jsonl"))]
    check(sorted(p[0] for p in plan) == sorted(x["path"] for x in vids), "video manifest lists the planned clips")
    for x in vids:
        check(x["title"] == zh[x["id"]]["title"] and x["tags"] == zh[x["id"]]["tags"], f"{x['id']}: zh clip text")
    for p in plan:
        w, h, fps, frames = map(int, p[2:6])
        check((w, h) in ((128, 128), (160, 120)) and fps in (15, 20, 24, 25, 30) and frames / fps in (2, 3, 4),
              f"clip parameters {p}")

    # Deterministic: a second run writes the same bytes.
    before = {n: open(os.path.join(out, n), "rb").read() for n in os.listdir(out) if n.endswith((".jsonl", ".json"))}
    rc, _, err = run(a.tool, "--npm", nm, "--out", out, "--clips", "2")
    after = {n: open(os.path.join(out, n), "rb").read() for n in before}
    check(rc == 0 and before == after, "second run writes identical files")
    # --clips 0 removes the video variant.
    rc, _, err = run(a.tool, "--npm", nm, "--out", out, "--clips", "0")
    check(rc == 0 and not os.path.exists(os.path.join(out, "emoji-en-video.train.jsonl")), "--clips 0 drops video manifests")
    # npm folder outside OUTDIR: absolute image paths.
    out2 = os.path.join(a.work, "out2")
    os.makedirs(out2)
    rc, _, err = run(a.tool, "--npm", nm, "--out", out2, "--clips", "0")
    x = read_jsonl(os.path.join(out2, "emoji-en.train.jsonl"))[0]
    check(rc == 0 and os.path.isabs(x["path"]) and os.path.isfile(x["path"]), "absolute path when npm is elsewhere")

    # ---- bad input: exit 2, message names the file ----
    def expect_bad(args, needles, what):
        rc, _, err = run(a.tool, *args)
        check(rc == 2 and all(n in err for n in needles), f"{what}: exit {rc}, stderr {err!r}")

    ej = os.path.join(nm, "emoji-datasource-google", "emoji.json")
    good = open(ej).read()
    with open(ej, "w") as f:
        f.write('[\n{"unified": "1F600",\n')
    expect_bad(["--npm", nm, "--out", out], [ej + ":"], "truncated emoji.json")
    with open(ej, "w") as f:
        json.dump([{"unified": "1F600"}], f)
    expect_bad(["--npm", nm, "--out", out], [ej, "image"], "record without image")
    with open(ej, "w") as f:
        f.write(good)
    bj = os.path.join(nm, "emojibase-data", "en", "data.json")
    with open(bj, "w") as f:
        json.dump([{"hexcode": "1F600", "tags": ["x"]}], f)
    expect_bad(["--npm", nm, "--out", out], [bj, "1F600", "label"], "entry without label")
    with open(bj, "w") as f:
        json.dump([{"hexcode": "1F600", "label": "x", "tags": ["ok", 3]}], f)
    expect_bad(["--npm", nm, "--out", out], [bj, "1F600", "tag 1"], "non-string tag")
    with open(bj, "w") as f:
        json.dump([{"hexcode": "1F6ZZ", "label": "x", "tags": ["ok"]}], f)
    expect_bad(["--npm", nm, "--out", out], [bj, "1F6ZZ"], "malformed hexcode")
    expect_bad(["--npm", nm, "--out", out, "--vendors", "apple"], ["emoji-datasource-apple/emoji.json"], "vendor not installed")
    expect_bad(["--npm", nm, "--out", out, "--vendors", "Goo gle"], ["--vendors"], "bad vendor name")
    expect_bad(["--npm", nm, "--out", out, "--clips", "-1"], ["--clips"], "negative clips")
    expect_bad(["--out", out], ["--npm"], "missing --npm")
    expect_bad(["--npm", nm, "--out", out, "--bogus", "1"], ["--bogus"], "unknown option")


if __name__ == "__main__":
    main()
    if failures:
        print(f"{len(failures)} check(s) failed", file=sys.stderr)
        sys.exit(1)
    print("ok")
