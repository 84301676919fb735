#!/usr/bin/python3
"""PyTorch mirror of the judge (model/ot_model_judge.c): a CLIP-style
image-tag dual encoder.

usage: mirror_judge.py FILE.h5   (written by `test_model_mirror judge`)

Rebuilds the visual tower and the tag tower in float64 from mirror.py's
blocks, loads the C model's parameters, and compares the image vectors, the
loss and every parameter's gradient (torch autograd) with the C model's:

  v_i = L2norm(judge.vproj(mean of the visual tokens))
  t_u = L2norm(judge.tproj(masked mean of the title encoder over tag u))
  s_iu = <v_i, t_u> / judge_tau over the batch's distinct tags u (cut to tag_len)
  L_i2t = mean over items with tags of mean over its tags of -log softmax_u(s_i.)[u]
  L_t2i = mean over tags of mean over their items of -log softmax_i(s_.u)[i]
  loss = loss_scale * B * (L_i2t + L_t2i) / 2

Same tolerance as mirror.py (RTOL 1e-4 of the tensor's max, ATOL 1e-6).
"""
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mirror import batch_tags, compare, l2norm, linear, load, tag_vectors, visual_tower  # noqa: E402


def image_vectors(P, a, batch):
    return l2norm(linear(visual_tower(P, a, batch).mean(1), P, "judge.vproj"))


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    a, P, G, batch, out = load(sys.argv[1])
    if a["type"] != 5:
        print("not a judge file", file=sys.stderr)
        return 2
    tags = batch_tags(batch["item_tags"], batch["tag_offsets"], batch["tag_tokens"], a["tag_len"])
    cols = {}
    for item in tags:
        for t in item:
            cols.setdefault(t, len(cols))
    B, U = len(tags), len(cols)
    v = image_vectors(P, a, batch)
    t = tag_vectors(P, a, cols, "judge.tproj")
    pos = torch.zeros(B, U, dtype=torch.bool)
    for b, item in enumerate(tags):
        for x in item:
            pos[b, cols[x]] = True
    s = v @ t.T / a["judge_tau"]
    lr = -torch.log_softmax(s, dim=1)
    lc = -torch.log_softmax(s, dim=0)
    rows_with = pos.any(1)
    l_i2t = ((lr * pos).sum(1)[rows_with] / pos.sum(1)[rows_with]).mean()
    l_t2i = ((lc * pos).sum(0) / pos.sum(0)).mean()
    loss = a["loss_scale"] * B * (l_i2t + l_t2i) / 2
    loss.backward()

    c_loss = float(out["loss"])
    rows = [("image", out["image"], v.detach().numpy()), ("loss", np.array(c_loss), loss.detach().numpy())]
    return compare("judge", rows, P, G, c_loss, loss.item(), what=f"{U} distinct tags, ")

if __name__ == "__main__":
    sys.exit(main())
