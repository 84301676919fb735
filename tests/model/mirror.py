#!/usr/bin/python3
"""PyTorch mirror of the Bin/ASL tagger (model/ot_model.h).

usage: mirror.py FILE.h5   (written by test_model_mirror)

Rebuilds the network from its description, in float64, loads the C
model's parameters by their checkpoint names, runs the stored batch and
compares logits, loss and every parameter's gradient with the C model's.
A tensor passes when max|c - torch| <= RTOL * max|torch| + ATOL
(RTOL 1e-4, ATOL 1e-6): the C side is float32 with approximated exp/tanh,
so agreement to ~1e-5 relative is expected; a layout or masking mistake
gives errors of order 1. Exits 1 (FAIL) naming the worst tensor. The
model is written independently of the C code: plain torch ops and
autograd, no hand-written backward.
"""
import sys

import h5py
import numpy as np
import torch

RTOL, ATOL = 1e-4, 1e-6


def layernorm(x, w, b):
    return torch.nn.functional.layer_norm(x, x.shape[-1:], w, b, eps=1e-5)


def attention(x, P, pre, heads, key_mask):
    """Self-attention with a key padding mask [B,T] (True = valid); a
    query without any valid key gets a zero output."""
    B, T, C = x.shape
    hs = C // heads
    qkv = x @ P[pre + "attn.qkv.w"].T + P[pre + "attn.qkv.b"]
    q, k, v = qkv.split(C, dim=-1)
    q, k, v = (t.reshape(B, T, heads, hs).transpose(1, 2) for t in (q, k, v))
    s = (q @ k.transpose(-1, -2)) / hs ** 0.5  # [B,H,T,T]
    valid = key_mask[:, None, None, :]
    s = s.masked_fill(~valid, float("-inf"))
    any_valid = valid.any(dim=-1, keepdim=True)
    s = torch.where(any_valid, s, torch.zeros_like(s))
    w = torch.softmax(s, dim=-1) * any_valid
    y = (w @ v).transpose(1, 2).reshape(B, T, C)
    return y @ P[pre + "attn.proj.w"].T + P[pre + "attn.proj.b"]


def block(x, P, pre, heads, key_mask):
    x = x + attention(layernorm(x, P[pre + "ln1.w"], P[pre + "ln1.b"]), P, pre, heads, key_mask)
    h = layernorm(x, P[pre + "ln2.w"], P[pre + "ln2.b"]) @ P[pre + "mlp.fc.w"].T + P[pre + "mlp.fc.b"]
    h = torch.nn.functional.gelu(h, approximate="tanh")
    return x + h @ P[pre + "mlp.proj.w"].T + P[pre + "mlp.proj.b"]


def forward(P, a, frames, title, mask):
    heads, ps = a["heads"], a["patch"]
    B, T, H, W, _ = frames.shape
    gh, gw = H // ps, W // ps
    # patches flattened in (row, column, channel) order, frame-major tokens
    x = torch.from_numpy(frames).to(torch.get_default_dtype()) / 127.5 - 1.0
    x = x.reshape(B, T, gh, ps, gw, ps, 3).permute(0, 1, 2, 4, 3, 5, 6)
    x = x.reshape(B, T, gh * gw, ps * ps * 3)
    vis = x @ P["vis.patch.w"].T + P["vis.patch.b"]
    vis = vis + P["vis.pos_space"][None, None] + P["vis.pos_time"][None, :, None]
    vis = vis.reshape(B, T * gh * gw, -1)
    all_valid = torch.ones(B, vis.shape[1], dtype=torch.bool)
    for l in range(a["vis_layers"]):
        vis = block(vis, P, f"vis.block{l}.", heads, all_valid)

    tmask = torch.from_numpy(mask.astype(bool))
    tok = torch.from_numpy(title.astype(np.int64))
    txt = P["txt.wte"][tok] + P["txt.wpe"][None, : tok.shape[1]]
    for l in range(a["txt_layers"]):
        txt = block(txt, P, f"txt.block{l}.", heads, tmask)

    z = torch.cat([vis, txt], dim=1)
    zmask = torch.cat([all_valid, tmask], dim=1)
    for l in range(a["fuse_layers"]):
        z = block(z, P, f"fuse.block{l}.", heads, zmask)
    z = layernorm(z, P["fuse.ln.w"], P["fuse.ln.b"])
    nv = vis.shape[1]
    m = tmask[..., None].to(z.dtype)
    pooled = z[:, :nv].mean(1) + (z[:, nv:] * m).sum(1) / m.sum(1).clamp(min=1)
    return pooled @ P["head.w"].T + P["head.b"]


def item_losses(logits, y, a):
    """Per item, summed over the tags."""
    if not a["asl"]:
        return torch.nn.functional.binary_cross_entropy_with_logits(logits, y, reduction="none").sum(1)
    gp, gn, m = a["asl_gamma_pos"], a["asl_gamma_neg"], a["asl_clip"]
    p = torch.sigmoid(logits)
    pm = (p - m).clamp(min=0)
    lpos = (1 - p) ** gp * torch.nn.functional.logsigmoid(logits)
    lneg = pm ** gn * torch.log(1 - pm)
    return (-y * lpos - (1 - y) * lneg).sum(1)


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    torch.set_num_threads(1)
    torch.set_default_dtype(torch.float64)
    with h5py.File(sys.argv[1], "r") as f:
        a = {k: (v.item() if hasattr(v, "item") else v) for k, v in f.attrs.items()}
        P = {k: torch.tensor(f["params"][k][()], dtype=torch.float64, requires_grad=True) for k in f["params"]}
        G = {k: f["grads"][k][()] for k in f["grads"]}
        frames, title = f["batch/frames"][()], f["batch/title"][()]
        mask, targets = f["batch/mask"][()], f["batch/targets"][()]
        c_logits, c_loss = f["out/logits"][()], float(f["out/loss"][()])

    logits = forward(P, a, frames, title, mask)
    y = torch.from_numpy(targets.astype(np.float64))
    loss = a["loss_scale"] * item_losses(logits, y, a).sum()
    loss.backward()

    rows = [("logits", c_logits, logits.detach().numpy()), ("loss", np.array(c_loss), loss.detach().numpy())]
    missing = set(P) ^ set(G)
    rows += [("grad " + k, G[k], P[k].grad.numpy()) for k in sorted(P) if k in G]
    worst, worst_name, failed = 0.0, "", []
    for name, c, t in rows:
        scale = float(np.abs(t).max())
        err = float(np.abs(c.astype(np.float64) - t).max())
        ratio = err / (RTOL * scale + ATOL)
        if ratio > worst:
            worst, worst_name = ratio, name
        if ratio > 1.0:
            failed.append(f"{name}: max |c - torch| {err:.3e}, max |torch| {scale:.3e}")
        if scale == 0.0 and name.startswith("grad "):
            failed.append(f"{name}: zero gradient (the comparison would be vacuous)")
    print(f"{'asl' if a['asl'] else 'bin'}: {len(rows)} tensors compared, loss C {c_loss:.7f} torch {loss.item():.7f}; "
          f"worst {worst_name} at {worst:.3f} of its tolerance (RTOL {RTOL}, ATOL {ATOL})")
    if missing:
        failed.append(f"parameters not in both files: {sorted(missing)}")
    for line in failed:
        print("FAIL", line)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
