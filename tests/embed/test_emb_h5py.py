"""An embedding file written by pipeline/ot_emb opens in h5py with the
documented layout (test_embed_units writes it).
usage: test_emb_h5py.py TEST_EMBED_UNITS WORKDIR"""
import os
import subprocess
import sys

import h5py
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from ot_testlib import check, summary  # noqa: E402

exe, work = sys.argv[1:3]
os.makedirs(work, exist_ok=True)
path = os.path.join(work, "emb.h5")
r = subprocess.run([exe, path], capture_output=True, text=True)
check(r.returncode == 0, "test_embed_units wrote the file: " + r.stdout + r.stderr)
with h5py.File(path, "r") as f:
    check(f.attrs["format"] in ("open-tag-emb", b"open-tag-emb") and int(f.attrs["n_items"]) == 3, "attributes")
    ids = [x.decode() if isinstance(x, bytes) else x for x in f["id"][:]]
    check(ids == ["a", "b", "c"], "ids %r" % ids)
    check(list(f["tags/offsets"][:]) == [0, 2, 2, 5], "tag offsets")
    text = [x.decode() if isinstance(x, bytes) else x for x in f["tags/text"][:]]
    check(text[1] == "紅色", "UTF-8 tag text %r" % text)
    check(f["vec/visual"].shape == (3, 2) and f["vec/visual"].dtype == np.float32, "visual [3,2] float32")
    check(f["vec/ngram"].shape == (3, 5) and float(f["vec/ngram"][2, 4]) == 14.0, "ngram [3,5] values")
sys.exit(summary("emb-h5py"))
