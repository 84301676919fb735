# h5py reads a shard written by test_shard: same ids, tags, frames and features.
import sys
import h5py
import numpy as np

with h5py.File(sys.argv[1], "r") as f:
    assert f.attrs["format"] in ("open-tag-shard", b"open-tag-shard"), f.attrs["format"]
    fr = f["frames"]
    assert fr.shape == (4, 2, 3, 5, 3) and fr.dtype == np.uint8, fr.shape
    assert fr.chunks == (1, 2, 3, 5, 3), fr.chunks
    ids = [x.decode() for x in f["id"][:]]
    assert ids == ["item-0", "item-1", "item-2", "item-3"], ids
    assert f["title"][1].decode() == "标题 ✓"
    off = f["tags/offsets"][:]
    text = [x.decode() for x in f["tags/text"][:]]
    assert list(off) == [0, 0, 1, 3, 6], off
    assert text[3:6] == ["猫", "cat", "animal"], text
    want = (3 * 31 + np.arange(2 * 3 * 5 * 3)) % 256
    assert np.array_equal(fr[3].reshape(-1), want.astype(np.uint8))
    ft = f["features"]
    assert ft.shape == (4, 2, 3) and ft.dtype == np.float32 and ft.chunks == (1, 2, 3), ft.chunks
    assert int(f.attrs["D"]) == 3
    assert np.array_equal(ft[1].reshape(-1), 100 + 0.5 * np.arange(6) - 1)
print("1 passed, 0 failed")
