"""PyTorch reference for the transformer parts of sigprop (issue 34): the same networks
written independently in PyTorch, their per-block variances over many seeds, written to
crates/cli/tests/fixtures/torch_transformer_parts.json for the test
`transformer_parts_agree_with_pytorch` (which runs sigprop and compares; tests never need
PyTorch).

Three configurations, small enough for a test (width 32, 4 heads, 8 tokens, batch 4,
4 blocks, zero biases), each drawn from the same laws as sigprop's (not the same numbers):

- `llama`: a token table (vocabulary 64, N(0, 1): nn.Embedding's), RMSNorm pre-norm, RoPE
  (GPT-NeoX/LLaMA halves layout, base 10000) after QK-norm (RMS over each head's
  features), grouped-query causal attention (2 key-value heads, LLaMA's repeat_kv), a
  SwiGLU MLP (ratio 4), a final RMSNorm; Xavier-normal weights.
- `gpt2`: a token table and a learned position table (both N(0, 1)), pre-LN LayerNorm
  (no affine, eps 1e-5), causal attention, a GELU MLP, a final LayerNorm and the tied
  head x E^T; Xavier-normal weights.
- `mimetic`: Gaussian tokens, pre-LN, bidirectional attention with Trockman & Kolter's
  mimetic maps (per head W_q W_k^T the rank-d_head SVD truncation of 0.7 Z + 0.7 I, and
  W_v W_o = 0.4 Z - 0.4 I, Z ~ N(0, 1/d)), a GELU MLP; Xavier-normal elsewhere.

The loss is sigprop's projection, sum(out * g) with g ~ N(0, 1). Recorded per seed, as
sigprop defines them: the population variance of z at `embed`, each block's `attn` (the
attention output before W_o, heads concatenated) and `out` (the stream after the block),
`final` and `logits`, and of dL/dz at `out`. Written: the mean over 48 seeds and its
standard error.

    python3 scripts/torch_transformer_parts.py   # about a minute on 2 cores
"""
import json
import math
import pathlib

import torch

torch.set_num_threads(2)
torch.set_default_dtype(torch.float32)

D, HEADS, T, BATCH, DEPTH, VOCAB, RATIO = 32, 4, 8, 4, 4, 64, 4
SEEDS = 48
EPS = 1e-5
DH = D // HEADS
OUT = pathlib.Path(__file__).resolve().parent.parent / "crates/cli/tests/fixtures/torch_transformer_parts.json"


def xavier(n_in, n_out):
    return torch.randn(n_in, n_out) * math.sqrt(2.0 / (n_in + n_out))


def layer_norm(x):
    return torch.nn.functional.layer_norm(x, (x.shape[-1],), eps=EPS)


def rms_norm(x):
    return x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + EPS)


def rope(x):
    # x [b, h, t, dh]: pairs (i, i + dh/2) turned by t * 10000^(-2i/dh).
    half = DH // 2
    i = torch.arange(half, dtype=torch.float64)
    pos = torch.arange(T, dtype=torch.float64)[:, None]
    ang = pos * 10000.0 ** (-2.0 * i / DH)
    cos = torch.cat([ang.cos(), ang.cos()], 1).float()
    sin = torch.cat([ang.sin(), ang.sin()], 1).float()
    x1, x2 = x[..., :half], x[..., half:]
    rot = torch.cat([-x2, x1], -1)
    return x * cos + rot * sin


def mimetic_pair(a, b):
    z = torch.randn(D, D, dtype=torch.float64) / math.sqrt(D)
    m = a * z + b * torch.eye(D, dtype=torch.float64)
    u, s, vh = torch.linalg.svd(m)
    root = s.sqrt()
    return (u * root).float(), (vh.T * root).float()


def weights(kind):
    kv = 2 if kind == "llama" else HEADS
    blocks = []
    for _ in range(DEPTH):
        if kind == "mimetic":
            wq, wk = torch.empty(D, D), torch.empty(D, D)
            for h in range(HEADS):
                q, k = mimetic_pair(0.7, 0.7)
                wq[:, h * DH:(h + 1) * DH] = q[:, :DH]
                wk[:, h * DH:(h + 1) * DH] = k[:, :DH]
            v, o = mimetic_pair(0.4, -0.4)
            blk = {"q": wq, "k": wk, "v": v, "o": o.T.contiguous()}
        else:
            blk = {"q": xavier(D, D), "k": xavier(D, kv * DH), "v": xavier(D, kv * DH), "o": xavier(D, D)}
        blk["up"] = xavier(D, RATIO * D)
        if kind == "llama":
            blk["gate"] = xavier(D, RATIO * D)
        blk["down"] = xavier(RATIO * D, D)
        blocks.append(blk)
    tables = {}
    if kind in ("llama", "gpt2"):
        tables["tokens"] = torch.randn(VOCAB, D)
    if kind == "gpt2":
        tables["positions"] = torch.randn(T, D)
    return blocks, tables, kv


def run(kind):
    blocks, tables, kv = weights(kind)
    if "tokens" in tables:
        ids = torch.randint(0, VOCAB, (BATCH, T))
        x = tables["tokens"][ids]
    else:
        x = torch.randn(BATCH, T, D)
    if "positions" in tables:
        x = x + tables["positions"]
    # A leaf that takes gradients, so that the stream's can be kept.
    x = x.detach().requires_grad_()
    norm = rms_norm if kind == "llama" else layer_norm
    causal = kind in ("llama", "gpt2")
    mask = torch.triu(torch.full((T, T), float("-inf")), 1)
    rows = {}
    outs = []
    if tables:
        rows[("embed", 1)] = x.var(unbiased=False).item()
    for layer, blk in enumerate(blocks, 1):
        u = norm(x)
        split = lambda y: y.reshape(BATCH, T, -1, DH).transpose(1, 2)
        q, k, v = split(u @ blk["q"]), split(u @ blk["k"]), split(u @ blk["v"])
        if kind == "llama":
            q, k = rms_norm(q), rms_norm(k)
            q, k = rope(q), rope(k)
            k = k.repeat_interleave(HEADS // kv, dim=1)
            v = v.repeat_interleave(HEADS // kv, dim=1)
        s = q @ k.transpose(2, 3) / math.sqrt(DH)
        if causal:
            s = s + mask
        a = torch.softmax(s, dim=3)
        o = (a @ v).transpose(1, 2).reshape(BATCH, T, D)
        rows[("attn", layer)] = o.var(unbiased=False).item()
        x = x + o @ blk["o"]
        u = norm(x)
        if kind == "llama":
            hid = torch.nn.functional.silu(u @ blk["gate"]) * (u @ blk["up"])
        else:
            hid = torch.nn.functional.gelu(u @ blk["up"])
        x = x + hid @ blk["down"]
        x.retain_grad()
        outs.append((layer, x))
        rows[("out", layer)] = x.var(unbiased=False).item()
    y = x
    if kind in ("llama", "gpt2"):
        y = norm(y)
        rows[("final", DEPTH)] = y.var(unbiased=False).item()
    if kind == "gpt2":
        y = y @ tables["tokens"].T
        rows[("logits", DEPTH)] = y.var(unbiased=False).item()
    g = torch.randn_like(y)
    (y * g).sum().backward()
    grads = {("out", layer): z.grad.var(unbiased=False).item() for layer, z in outs}
    return rows, grads


def main():
    result = {"sizes": {"width": D, "heads": HEADS, "seq_len": T, "batch": BATCH, "depth": DEPTH,
                        "vocab": VOCAB, "seeds": SEEDS}, "configs": {}}
    for kind in ("llama", "gpt2", "mimetic"):
        per = {}
        for seed in range(SEEDS):
            torch.manual_seed(1000 + seed)
            rows, grads = run(kind)
            for (site, layer), v in rows.items():
                per.setdefault(f"{site}/{layer}/preact_var", []).append(v)
            for (site, layer), v in grads.items():
                per.setdefault(f"{site}/{layer}/grad_var", []).append(v)
        stats = {}
        for key, vs in per.items():
            t = torch.tensor(vs, dtype=torch.float64)
            stats[key] = [t.mean().item(), (t.std(unbiased=True) / math.sqrt(len(vs))).item()]
        result["configs"][kind] = stats
        print(kind, {k: round(v[0], 4) for k, v in stats.items()})
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    print("wrote", OUT)


if __name__ == "__main__":
    main()
