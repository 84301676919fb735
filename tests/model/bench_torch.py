#!/usr/bin/python3
"""The PyTorch side of bench_model: the same network (mirror.py's forward,
float32, plain eager ops + autograd) and the same step (zero grads, forward,
BCE, backward, AdamW) on the emoji configuration, one thread.

usage: bench_torch.py [steps=10] [batch=64] [n_tags=3000]

Prints samples/s. For the fair side-by-side of machine-facts.md run it also
with MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=4294967296
MALLOC_TOP_PAD_=268435456 in the environment. Not a test.
"""
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mirror import encode, item_losses  # noqa: E402


def main():
    steps = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    B = int(sys.argv[2]) if len(sys.argv) > 2 else 64
    n_tags = int(sys.argv[3]) if len(sys.argv) > 3 else 3000
    torch.set_num_threads(1)
    torch.manual_seed(0)
    C, hidden, P, T, H, W, L, V = 128, 512, 8, 1, 64, 64, 16, 2048
    a = {"heads": 4, "patch": P, "vis_layers": 4, "txt_layers": 2, "fuse_layers": 2, "asl": 0}
    shapes = {"vis.patch.w": (C, P * P * 3), "vis.patch.b": (C,), "vis.pos_space": ((H // P) * (W // P), C),
              "vis.pos_time": (T, C), "txt.wte": (V, C), "txt.wpe": (L, C), "fuse.ln.w": (C,),
              "fuse.ln.b": (C,), "head.w": (n_tags, C), "head.b": (n_tags,)}
    for stack in ("vis", "txt", "fuse"):
        for l in range(a[stack + "_layers"]):
            pre = f"{stack}.block{l}."
            shapes.update({pre + "ln1.w": (C,), pre + "ln1.b": (C,), pre + "attn.qkv.w": (3 * C, C),
                           pre + "attn.qkv.b": (3 * C,), pre + "attn.proj.w": (C, C), pre + "attn.proj.b": (C,),
                           pre + "ln2.w": (C,), pre + "ln2.b": (C,), pre + "mlp.fc.w": (hidden, C),
                           pre + "mlp.fc.b": (hidden,), pre + "mlp.proj.w": (C, hidden), pre + "mlp.proj.b": (C,)})
    Pm = {k: (0.02 * torch.randn(s)).requires_grad_() for k, s in shapes.items()}
    for k in Pm:
        if k.endswith("ln1.w") or k.endswith("ln2.w") or k == "fuse.ln.w":
            Pm[k].data.fill_(1.0)
    opt = torch.optim.AdamW(Pm.values(), lr=1e-4, betas=(0.9, 0.95), weight_decay=0.05)

    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (B, T, H, W, 3), dtype=np.uint8)
    lens = np.array([16, 9, 5, 12, 3, 7])[np.arange(B) % 6]
    mask = (np.arange(L)[None] < lens[:, None]).astype(np.uint8)
    title = rng.integers(1, V, (B, L)).astype(np.int32) * mask
    y = torch.from_numpy((rng.random((B, n_tags)) < 0.002).astype(np.float32))

    t_all = 0.0
    for s in range(-2, steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=False)
        pooled = encode(Pm, a, {"frames": frames, "title": title, "mask": mask})[0]
        loss = item_losses(pooled @ Pm["head.w"].T + Pm["head.b"], y, a).mean()
        loss.backward()
        opt.step()
        if s >= 0:
            t_all += time.perf_counter() - t0
    print(f"torch {torch.__version__}: {steps * B / t_all:.1f} samples/s, step {1e3 * t_all / steps:.1f} ms, "
          f"batch {B}, {n_tags} tags, 1 thread, loss {loss.item():.3f}")


if __name__ == "__main__":
    main()
