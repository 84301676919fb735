"""A small tagged image set for ot-train tests, made without downloads:
32x32 PNGs (written with zlib) of four colours x four patterns, tags =
colour, pattern and warm/cool, titles naming the colour. Extracted into
shards with ot-extract, so tests see the same files a user would.

    make(workdir, ot_extract, config, n_train=64, n_val=16) -> data.dir
"""
import json
import os
import random
import struct
import subprocess
import zlib

COLORS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 50, 220), "yellow": (230, 220, 40)}
PATTERNS = ["plain", "hstripes", "vstripes", "dots"]
SIZE = 32


def write_png(path, w, h, rgb):
    raw = b"".join(b"\x00" + bytes(rgb[y * w * 3:(y + 1) * w * 3]) for y in range(h))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff)

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def image(color, pattern):
    c, inv = COLORS[color], [255 - v for v in COLORS[color]]
    px = []
    for y in range(SIZE):
        for x in range(SIZE):
            on = ((pattern == "hstripes" and y // 4 % 2 == 0) or (pattern == "vstripes" and x // 4 % 2 == 0)
                  or (pattern == "dots" and x % 8 < 3 and y % 8 < 3))
            px += inv if on else list(c)
    return px


def write_manifests(src, n_train, n_val, seed=7, unseen_val=False):
    rnd = random.Random(seed)
    os.makedirs(os.path.join(src, "img"), exist_ok=True)
    out = {}
    for split, n in (("train", n_train), ("val", n_val)):
        lines = []
        for i in range(n):
            color, pattern = rnd.choice(sorted(COLORS)), rnd.choice(PATTERNS)
            name = "%s-%03d.png" % (split, i)
            write_png(os.path.join(src, "img", name), SIZE, SIZE, image(color, pattern))
            tags = [color, pattern, "warm" if color in ("red", "yellow") else "cool"]
            if unseen_val and split == "val" and i % 2 == 0:
                tags.append("Mystery")  # never in train: no closed-set model can predict it
            title = "%s %s %s" % (rnd.choice(["a", "the", "my"]), color, rnd.choice(["picture", "image", "tile"]))
            lines.append(json.dumps({"id": "%s-%d" % (split, i), "path": "img/" + name, "title": title,
                                     "tags": tags}))
        out[split] = os.path.join(src, split + ".jsonl")
        with open(out[split], "w") as f:
            f.write("\n".join(lines) + "\n")
    return out


def make(work, ot_extract, config, n_train=64, n_val=16, unseen_val=False):
    """Manifests + images under work/src, shards under work/data; returns data.dir.
    unseen_val: every other val item also has the tag "Mystery", absent from train."""
    manifests = write_manifests(os.path.join(work, "src"), n_train, n_val, unseen_val=unseen_val)
    data = os.path.join(work, "data")
    r = subprocess.run([ot_extract, "--config", config, "--set", "data.train=" + manifests["train"],
                        "--set", "data.val=" + manifests["val"], "--set", "data.dir=" + data],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit("ot-extract failed: " + r.stderr)
    return data


# A model small enough for tests on 2 cores (configs/tiny.yaml has no model
# or train section: these --set options provide them).
TINY_SETS = ["model.dim=32", "model.heads=2", "model.vis_layers=1", "model.txt_layers=1",
             "model.fuse_layers=1", "model.title_len=8", "model.vocab=300", "model.dropout=0.1",
             "train.batch=7", "train.steps=40", "train.warmup=5", "train.lr=3e-3", "train.ckpt_every=10",
             "train.eval_every=10", "train.log_every=10", "train.micro_batch=4"]


def set_args(sets):
    args = []
    for s in sets:
        args += ["--set", s]
    return args


def read_metrics(train_dir):
    """(train lines by step, val lines by step) of train.dir/metrics.jsonl, as
    dicts; also the raw text of each line (for bit-exact comparisons)."""
    train, val = {}, {}
    with open(os.path.join(train_dir, "metrics.jsonl")) as f:
        for line in f:
            d = json.loads(line)
            d["_raw"] = line
            (train if d["kind"] == "train" else val)[d["step"]] = d
    return train, val
