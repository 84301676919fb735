#!/usr/bin/python3
"""PyTorch mirror of the taggers (model/ot_model.h): Bin, ASL, and the
generative baseline, opg and rag (opg reading retrieved candidate tags).

usage: mirror.py FILE.h5   (written by test_model_mirror)

Rebuilds the network from its description, in float64, loads the C
model's parameters by their checkpoint names, runs the stored batch and
compares logits (opg: has-tag logits), loss and every parameter's gradient
with the C model's. For opg the C side's matching is used (the assignment
is discrete, no gradient flows through it), after checking that it is a
one-to-one assignment of minimum cost -cos(prompt, tag) - match_has x
sigmoid(has-tag logit) - match_gen x log p(the tag's first token | the
prompt) per item (brute
force over all assignments).
A tensor passes when max|c - torch| <= RTOL * max|torch| + ATOL
(RTOL 1e-4, ATOL 1e-6): the C side is float32 with approximated exp/tanh,
so agreement to ~1e-5 relative is expected; a layout or masking mistake
gives errors of order 1. Exits 1 (FAIL) naming the worst tensor. The
model is written independently of the C code: plain torch ops and
autograd, no hand-written backward.
"""
import itertools
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


def attend(q, k, v, heads, key_mask=None, causal=False):
    """q [B,Tq,C], k, v [B,Tk,C]; key_mask [B,Tk] (True = valid); a query
    without any visible key gets a zero output."""
    B, Tq, C = q.shape
    Tk, hs = k.shape[1], C // heads
    q, k, v = (t.reshape(B, -1, heads, hs).transpose(1, 2) for t in (q, k, v))
    s = (q @ k.transpose(-1, -2)) / hs ** 0.5  # [B,H,Tq,Tk]
    valid = torch.ones(B, 1, Tq, Tk, dtype=torch.bool)
    if key_mask is not None:
        valid = valid & key_mask[:, None, None, :]
    if causal:
        valid = valid & torch.ones(Tq, Tk, dtype=torch.bool).tril()
    s = s.masked_fill(~valid, float("-inf"))
    any_valid = valid.any(dim=-1, keepdim=True)
    s = torch.where(any_valid, s, torch.zeros_like(s))
    w = torch.softmax(s, dim=-1) * any_valid
    return (w @ v).transpose(1, 2).reshape(B, Tq, C)


def linear(x, P, name):
    return x @ P[name + ".w"].T + P[name + ".b"]


def cross_block(x, P, pre, heads, mem, mem_mask, causal):
    """Pre-LN block: self-attention (causal or not, no key mask), then
    cross-attention to mem [B,Tm,C] with mem_mask, then the MLP."""
    C = x.shape[-1]
    h = layernorm(x, P[pre + "ln1.w"], P[pre + "ln1.b"])
    q, k, v = linear(h, P, pre + "attn.qkv").split(C, dim=-1)
    x = x + linear(attend(q, k, v, heads, None, causal), P, pre + "attn.proj")
    h = layernorm(x, P[pre + "lnx.w"], P[pre + "lnx.b"])
    k, v = linear(mem, P, pre + "xattn.kv").split(C, dim=-1)
    x = x + linear(attend(linear(h, P, pre + "xattn.q"), k, v, heads, mem_mask), P, pre + "xattn.proj")
    h = torch.nn.functional.gelu(linear(layernorm(x, P[pre + "ln2.w"], P[pre + "ln2.b"]), P, pre + "mlp.fc"),
                                 approximate="tanh")
    return x + linear(h, P, pre + "mlp.proj")


def l2norm(x):
    return x / torch.sqrt((x * x).sum(-1, keepdim=True) + 1e-12)


EOS, SEP, BOS = 2, 3, 1


def batch_tags(item_tags, offsets, tokens, tag_len):
    """Per item, its tags as token tuples cut to tag_len."""
    return [[tuple(int(t) for t in tokens[offsets[j]:offsets[j + 1]][:tag_len])
             for j in range(item_tags[b], item_tags[b + 1])] for b in range(len(item_tags) - 1)]


def decode_loss(P, a, x, z, zmask, targets):
    """Teacher-forced decoder over the inputs x [T,C] of one sequence of
    item memory z [S,C]: summed cross-entropy of the targets [T]."""
    x = x[None]
    for l in range(a["dec_layers"]):
        x = cross_block(x, P, f"dec.block{l}.", a["heads"], z[None], zmask[None], True)
    h = layernorm(x[0], P["dec.ln.w"], P["dec.ln.b"])
    logits = h @ P["txt.wte"].T + P["dec.out.b"]
    return torch.nn.functional.cross_entropy(logits, torch.tensor(targets), reduction="sum")


def tok_input(P, tokens, first):
    """Decoder inputs: `first` [C] at position 0, then the tokens' embeddings;
    plus the decoder's positions."""
    rows = [first] + [P["txt.wte"][t] for t in tokens]
    x = torch.stack(rows)
    return x + P["dec.wpe"][: x.shape[0]]


def baseline_loss(P, a, z, zmask, tags):
    total = 0.0
    for b, item in enumerate(tags):
        y = []
        for t in item:  # in order, while the tag and its end fit
            if len(y) + len(t) + 1 > a["seq_len"]:
                break
            y += list(t) + [SEP]
        y = y[:-1] + [EOS] if y else [EOS]
        x = tok_input(P, y[:-1], P["txt.wte"][BOS])  # input: BOS, then the targets shifted
        total = total + decode_loss(P, a, x, z[b], zmask[b], y)
    return total


def check_matching(cost, match_b, K):
    """match_b[j] = prompt of tag j or -1: one-to-one, min(K, n) tags
    matched, and of minimum total cost among all such assignments."""
    n = len(match_b)
    used = [k for k in match_b if k >= 0]
    if len(set(used)) != len(used) or len(used) != min(K, n):
        return "not a maximal one-to-one assignment"
    got = sum(cost[k][j] for j, k in enumerate(match_b) if k >= 0)
    best = None
    if n <= K:
        for perm in itertools.permutations(range(K), n):
            c = sum(cost[k][j] for j, k in enumerate(perm))
            best = c if best is None or c < best else best
    else:
        for perm in itertools.permutations(range(n), K):
            c = sum(cost[k][j] for k, j in enumerate(perm))
            best = c if best is None or c < best else best
    if got > best + 1e-5:
        return f"cost {got:.6f} above the optimum {best:.6f}"
    return None


def tag_vectors(P, a, cols, proj):
    """Distinct tags {tokens: column} through the title encoder: masked mean
    of txt blocks over wte + wpe, projection `proj`, L2 norm -> [U,C]
    (opg's tag embedding; the judge's text tower)."""
    U, Lt = len(cols), max([len(t) for t in cols] + [1])
    tok = torch.zeros(U, Lt, dtype=torch.int64)
    mask = torch.zeros(U, Lt, dtype=torch.bool)
    for t, u in cols.items():
        tok[u, : len(t)] = torch.tensor(t, dtype=torch.int64)
        mask[u, : len(t)] = True
    e = P["txt.wte"][tok] + P["txt.wpe"][None, :Lt]
    for l in range(a["txt_layers"]):
        e = block(e, P, f"txt.block{l}.", a["heads"], mask)
    m = mask[..., None].to(e.dtype)
    return l2norm(linear((e * m).sum(1) / m.sum(1).clamp(min=1), P, proj))


def first_token_logp(P, a, z, zmask, pr):
    """log p(first token | prompt) [K,V] of one item's prompts pr [K,C]: the
    decoder's first step from each prompt's start input."""
    K = pr.shape[0]
    x = (linear(pr, P, "dec.start") + P["dec.wpe"][0])[:, None]
    mem, mask = z[None].expand(K, -1, -1), zmask[None].expand(K, -1)
    for l in range(a["dec_layers"]):
        x = cross_block(x, P, f"dec.block{l}.", a["heads"], mem, mask, True)
    h = layernorm(x[:, 0], P["dec.ln.w"], P["dec.ln.b"])
    return torch.log_softmax(h @ P["txt.wte"].T + P["dec.out.b"], -1)


def opg_loss(P, a, z, zmask, tags, match):
    """-> loss (before loss_scale), has logits [B,K], problems found in the matching"""
    B, K, heads, C = z.shape[0], a["prompts"], a["heads"], z.shape[-1]
    x = P["prompt.query"][None].expand(B, K, C)
    for l in range(a["prompt_layers"]):
        x = cross_block(x, P, f"prompt.block{l}.", heads, z, zmask, False)
    pr = layernorm(x, P["prompt.ln.w"], P["prompt.ln.b"])
    has = linear(pr, P, "prompt.has")[..., 0]
    phat = l2norm(linear(pr, P, "prompt.proj"))

    # distinct tags through the title encoder: masked mean, projection, norm
    cols = {}
    for item in tags:
        for t in item:
            cols.setdefault(t, len(cols))
    that = tag_vectors(P, a, cols, "tag.proj")

    problems, rows, pos, y = [], [], [], torch.zeros(B, K)
    l_gen, j0 = 0.0, 0
    for b, item in enumerate(tags):
        mb = [int(k) for k in match[j0:j0 + len(item)]]
        j0 += len(item)
        if item:
            cost = (-(phat[b] @ that[[cols[t] for t in item]].T)
                    - a["match_has"] * torch.sigmoid(has[b])[:, None])
            if a["match_gen"]:
                first = [t[0] if t else EOS for t in item]
                cost = cost - a["match_gen"] * first_token_logp(P, a, z[b], zmask[b], pr[b])[:, first]
            cost = cost.tolist()
            bad = check_matching(cost, mb, K)
            if bad:
                problems.append(f"item {b}: {bad}")
        for j, k in enumerate(mb):
            if k < 0:
                continue
            rows.append(b * K + k)
            pos.append(cols[item[j]])
            y[b, k] = 1.0
            start = linear(pr[b, k], P, "dec.start")
            l_gen = l_gen + decode_loss(P, a, tok_input(P, item[j], start), z[b], zmask[b],
                                        list(item[j]) + [EOS])
    S = phat.reshape(B * K, C)[rows] @ that.T / a["tau"]
    l_match = (torch.logsumexp(S, 1) - S[torch.arange(len(rows)), pos]).sum()
    l_has = torch.nn.functional.binary_cross_entropy_with_logits(has, y, reduction="sum")
    loss = a["w_match"] * l_match + a["w_has"] * l_has + a["w_gen"] * l_gen
    return loss, has, problems


def memory(P, a, z, zmask, batch, M, with_title):
    """Fused tokens [B,S,C] + M candidate slots (rag) + one slot per title
    word token: candidate slot j = LN(mean token embedding + score *
    rag.score.w + rag.kind.b), masked when the item has fewer candidates;
    title slot i = LN(wte[word_i] + wpe[i] + rag.title.b), masked on
    padding (the title tokens when the batch has no title words)."""
    B, C = z.shape[0], z.shape[-1]
    words, wmask = batch["title"][:, :0], batch["mask"][:, :0]
    if with_title:
        words, wmask = batch["title"], batch["mask"]
    if with_title and "title_words" in batch:
        words, wmask = batch["title_words"], batch["title_words_mask"]
    slots, smask = [], torch.zeros(B, M, dtype=torch.bool)
    for b in range(B):
        for j in range(M):
            item, off, tok, score = (batch[k] for k in ("cand_item", "cand_offsets", "cand_tokens", "cand_score"))
            c = int(item[b]) + j
            x = P["rag.kind.b"]
            if c < int(item[b + 1]):
                t = [int(v) for v in tok[off[c]:off[c + 1]]][: a["tag_len"]]
                x = x + P["txt.wte"][t].mean(0) + float(score[c]) * P["rag.score.w"]
                smask[b, j] = True
            slots.append(x)
        for i, t in enumerate(words[b]):
            slots.append(P["txt.wte"][int(t)] + P["txt.wpe"][i] + P["rag.title.b"])
    L = words.shape[1]
    cand = layernorm(torch.stack(slots).reshape(B, M + L, C), P["rag.ln.w"], P["rag.ln.b"])
    tmask = torch.from_numpy(wmask.astype(bool))
    return torch.cat([z, cand], dim=1), torch.cat([zmask, smask, tmask], dim=1)


def visual_tower(P, a, batch):
    """-> the visual encoder's tokens [B,Nv,C]: patches of the frames, or
    (batch["features"] present: model.visual features) one token per frame
    from its precomputed features"""
    if "features" in batch:
        x = torch.from_numpy(batch["features"].astype(np.float64)).to(torch.get_default_dtype())
        vis = x @ P["vis.patch.w"].T + P["vis.patch.b"] + P["vis.pos_time"][None]
    else:
        frames, ps = batch["frames"], a["patch"]
        B, T, H, W, _ = frames.shape
        gh, gw = H // ps, W // ps
        # patches flattened in (row, column, channel) order, frame-major tokens
        x = torch.from_numpy(frames).to(torch.get_default_dtype()) / 127.5 - 1.0
        x = x.reshape(B, T, gh, ps, gw, ps, 3).permute(0, 1, 2, 4, 3, 5, 6)
        x = x.reshape(B, T, gh * gw, ps * ps * 3)
        vis = x @ P["vis.patch.w"].T + P["vis.patch.b"]
        vis = vis + P["vis.pos_space"][None, None] + P["vis.pos_time"][None, :, None]
        vis = vis.reshape(B, T * gh * gw, -1)
    all_valid = torch.ones(vis.shape[0], vis.shape[1], dtype=torch.bool)
    for l in range(a["vis_layers"]):
        vis = block(vis, P, f"vis.block{l}.", a["heads"], all_valid)
    return vis


def encode(P, a, batch):
    """-> pooled [B,C], fused tokens after fuse.ln [B,S,C], their key mask [B,S]"""
    heads, title, mask = a["heads"], batch["title"], batch["mask"]
    vis = visual_tower(P, a, batch)
    all_valid = torch.ones(vis.shape[0], vis.shape[1], dtype=torch.bool)

    tmask = torch.from_numpy(mask.astype(bool))
    tok = torch.from_numpy(title.astype(np.int64))
    txt = P["txt.wte"][tok] + P["txt.wpe"][None, : tok.shape[1]]
    if "title_ngram" in batch:  # model.title_ngram: the projected n-gram vector on every token
        txt = txt + (torch.from_numpy(batch["title_ngram"]).double() @ P["txt.ngram.w"].T)[:, None, :]
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
    return pooled, z, zmask


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


def load(path):
    """The file test_model_mirror wrote -> (attributes, parameters as float64
    leaf tensors, C gradients, batch, C outputs); sets torch to one thread
    and float64."""
    torch.set_num_threads(1)
    torch.set_default_dtype(torch.float64)
    with h5py.File(path, "r") as f:
        a = {k: (v.item() if hasattr(v, "item") else v) for k, v in f.attrs.items()}
        P = {k: torch.tensor(f["params"][k][()], dtype=torch.float64, requires_grad=True) for k in f["params"]}
        G = {k: f["grads"][k][()] for k in f["grads"]}
        batch = {k: f["batch"][k][()] for k in f["batch"]}
        out = {k: f["out"][k][()] for k in f["out"]}
    return a, P, G, batch, out


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    a, P, G, batch, out = load(sys.argv[1])
    kind = ["bin", "asl", "baseline", "opg", "rag"][a.get("type", a["asl"])]
    c_loss = float(out["loss"])

    pooled, z, zmask = encode(P, a, batch)
    problems = []
    if kind in ("bin", "asl"):
        logits = pooled @ P["head.w"].T + P["head.b"]
        y = torch.from_numpy(batch["targets"].astype(np.float64))
        loss = a["loss_scale"] * item_losses(logits, y, a).sum()
        rows = [("logits", out["logits"], logits)]
    else:
        tags = batch_tags(batch["item_tags"], batch["tag_offsets"], batch["tag_tokens"], a["tag_len"])
        M = a["rag_m"] if kind == "rag" else 0
        if M or a["title_slots"]:
            z, zmask = memory(P, a, z, zmask, batch, M, a["title_slots"])
        if kind in ("opg", "rag"):
            total, has, problems = opg_loss(P, a, z, zmask, tags, out["matching"])
            rows = [("has_logits", out["has_logits"], has)]
        else:
            total, rows = a["w_gen"] * baseline_loss(P, a, z, zmask, tags), []
        loss = a["loss_scale"] * total
    loss.backward()

    rows = [(n, c, t.detach().numpy()) for n, c, t in rows] + [("loss", np.array(c_loss), loss.detach().numpy())]
    return compare(kind, rows, P, G, c_loss, loss.item(), ["matching " + p for p in problems])


def compare(kind, rows, P, G, c_loss, t_loss, extra_failures=(), what=""):
    """Every (name, C value, torch value) row and every parameter's gradient
    within RTOL of the torch tensor's max + ATOL; a zero torch gradient fails
    (the comparison would be vacuous). Prints the worst row; returns the exit
    code (1 when anything failed)."""
    missing = set(P) ^ set(G)
    rows = rows + [("grad " + k, G[k], P[k].grad.numpy()) for k in sorted(P) if k in G]
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
    print(f"{kind}: {what}{len(rows)} tensors compared, loss C {c_loss:.7f} torch {t_loss:.7f}; "
          f"worst {worst_name} at {worst:.3f} of its tolerance (RTOL {RTOL}, ATOL {ATOL})")
    if missing:
        failed.append(f"parameters not in both files: {sorted(missing)}")
    failed += list(extra_failures)
    for line in failed:
        print("FAIL", line)
    return 1 if failed else 0

if __name__ == "__main__":
    sys.exit(main())
