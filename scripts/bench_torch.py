"""PyTorch side of sigprop's benchmarks, run on the same machine in the same session.

`probe`: forward+backward of a ReLU MLP (depth 50, width 512, batch 256, He-normal
weights, zero biases that take gradients, projection loss) with every layer's z and h and
their gradients kept (sigprop's probed pass), and without biases or kept values. `probe-stats`: the same network's whole per-seed work as
`sigprop run` does it (weights drawn, biases, every layer's statistics, the activation
rank included), the reference for the per-seed marginal time. `transformer`: the pre-LN
transformer of sigprop's benchmark (depth 12, d-model 256, 4 heads, seq-len 128, batch 16,
GELU MLP of ratio 4, biases, LayerNorm without affine, Xavier-normal weights, projection loss), forward+backward
alone and with the statistics sigprop computes at every site (moments of z, h and their
gradients, per-unit batch variance, weight and weight-gradient variances, dead/saturated
fractions, non-finite counts, token cosine and effective rank per sequence, attention
entropy, gradient variance per weight role). 2 threads, median of 7 after a warm-up: the
reference for crates/nets/benches/probe.rs. `jacobian`: the input-output Jacobian of a tanh
MLP (depth 50, width 1024, Xavier-normal, 8 inputs) built as sigprop builds it (the f32
product W^1 D^1 ... W^L D^L for the 8 inputs at once) and its singular values in f64, by
torch.linalg.svdvals and by numpy.linalg.svd. Initializer timings:
scripts/bench_init_torch.py. Not part of CI.
"""
import math
import sys
import time

import torch

torch.set_num_threads(2)


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]


def timed(step):
    step()
    times = []
    for _ in range(7):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    return median(times)


def probe():
    depth, width, batch = 50, 512, 256
    ws = [torch.nn.init.kaiming_normal_(torch.empty(width, width)).requires_grad_() for _ in range(depth)]
    x = torch.randn(batch, width)
    g = torch.randn(batch, width)

    bs = [torch.zeros(width, requires_grad=True) for _ in range(depth)]

    def bare():
        h = x
        for w in ws:
            h = torch.relu(h @ w)
        (h * g).sum().backward()

    def step():
        # sigprop's probed pass: biases that take gradients, and every layer's z and h kept
        # with their gradients (the probe's reads).
        h, keep = x, []
        for w, b in zip(ws, bs):
            z = h @ w + b
            h = torch.relu(z)
            z.retain_grad()
            h.retain_grad()
            keep.append((z, h))
        (h * g).sum().backward()
        return keep

    print(f"  PyTorch {torch.__version__} forward+backward with biases and the probe's reads: "
          f"{timed(step):.3f} s; without either: {timed(bare):.3f} s (2 threads)")


def probe_stats():
    """The whole per-seed work of `sigprop run` on the probe network (ReLU MLP, depth 50,
    width 512, batch 256, He-normal weights, zero biases that take gradients, projection
    loss): draw the weights, forward+backward, and at every layer the statistics sigprop
    computes for an MLP site (moments of z, h and their gradients, per-unit batch variance,
    weight and weight-gradient variances, dead fraction, non-finite counts, the cosine of each
    input pair's z, and the effective rank of h from the f64 Gram matrix's eigenvalues)."""
    depth, width, batch = 50, 512, 256
    x = torch.randn(batch, width)
    g = torch.randn(batch, width)

    def init():
        ws = [torch.nn.init.kaiming_normal_(torch.empty(width, width)).requires_grad_()
              for _ in range(depth)]
        bs = [torch.zeros(width, requires_grad=True) for _ in range(depth)]
        return ws, bs

    def step(stats):
        ws, bs = init()
        h, keep = x, []
        for w, b in zip(ws, bs):
            z = h @ w + b
            h = torch.relu(z)
            if stats:
                z.retain_grad()
                h.retain_grad()
                keep.append((z, h, w))
        (h * g).sum().backward()
        if not stats:
            return
        for z, h, w in keep:
            site_stats(z, h, w)
            zd = z.detach()
            a, c = zd[0::2], zd[1::2]
            ((a * c).sum(1) / (a.norm(dim=1) * c.norm(dim=1))).double().mean().item()
            effective_rank(h).item()

    fb = timed(lambda: step(False))
    total = timed(lambda: step(True))
    print(f"  PyTorch {torch.__version__} init+forward+backward: {fb:.3f} s; "
          f"with the same statistics: {total:.3f} s (2 threads)")


def site_stats(z, h, weight=None):
    """What sigprop computes at one site: z, h viewed as [batch, units]."""
    out = {}
    for name, x in (("z", z), ("h", h)):
        x = x.detach().reshape(x.shape[0], -1)
        col_mean = x.mean(0)
        col_var = ((x - col_mean) ** 2).mean(0)
        out[name] = (col_mean.double().mean().item(),
                     (col_var.double().mean() + col_mean.double().var(unbiased=False)).item())
        out[name + "_batch"] = col_var.double().mean().item()
        out[name + "_nonfinite"] = (~torch.isfinite(x)).sum().item()
    for name, x in (("gz", z.grad), ("gh", h.grad)):
        out[name] = x.double().var(unbiased=False).item()
    hd = h.detach()
    out["dead"] = (hd == 0).double().mean().item()
    if weight is not None:
        out["w"] = weight.detach().double().var(unbiased=False).item()
        out["gw"] = weight.grad.double().var(unbiased=False).item()
    return out


def gelu_prime(z):
    return 0.5 * (1 + torch.erf(z / math.sqrt(2))) + z * torch.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)


def token_stats(x):
    """Mean pairwise cosine of the tokens of each sequence, and the effective rank of each
    [T, d] matrix from the f64 Gram's eigenvalues."""
    x = x.detach()
    b, t, _ = x.shape
    u = torch.nn.functional.normalize(x, dim=2)
    g = u @ u.transpose(1, 2)
    cos = ((g.sum((1, 2)) - g.diagonal(dim1=1, dim2=2).sum(1)) / (t * (t - 1))).mean().item()
    return cos, effective_rank(x).mean().item()


def effective_rank(x):
    """exp of the entropy of the normalized singular values of each [T, d] matrix of x
    (the last two dimensions), from the eigenvalues of its f64 Gram matrix."""
    xd = x.detach().double()
    lam = torch.linalg.eigvalsh(xd @ xd.transpose(-2, -1)).clamp_min(0)
    sv = lam.sqrt()
    p = sv / sv.sum(-1, keepdim=True)
    return torch.exp(-(p * torch.log(p.clamp_min(1e-300))).sum(-1))


def transformer():
    depth, d, heads, t, batch, ratio = 12, 256, 4, 128, 16, 4
    dh = d // heads
    torch.manual_seed(0)

    def lin(n_in, n_out):
        w = torch.nn.init.xavier_normal_(torch.empty(n_out, n_in)).requires_grad_()
        b = torch.zeros(n_out, requires_grad=True)
        return w, b

    blocks = [
        {k: lin(d, d) for k in "qkvo"} | {"up": lin(d, ratio * d), "down": lin(ratio * d, d)}
        for _ in range(depth)
    ]
    x0 = torch.randn(batch, t, d)
    g = torch.randn(batch, t, d)
    ln = lambda y: torch.nn.functional.layer_norm(y, (d,), eps=1e-5)

    def forward(keep):
        def site(name, z, h=None):
            h = z if h is None else h
            if keep is not None:
                z.retain_grad()
                if h is not z:
                    h.retain_grad()
                keep.append((name, z, h))
            return h

        x = x0
        probs = []
        for blk in blocks:
            u = ln(x)
            split = lambda y: y.reshape(batch, t, heads, dh).transpose(1, 2)
            q, k, v = (split(torch.nn.functional.linear(u, *blk[n])) for n in "qkv")
            a = torch.softmax(q @ k.transpose(2, 3) / math.sqrt(dh), dim=3)
            probs.append(a.detach())
            o = site("attn", (a @ v).transpose(1, 2).reshape(batch, t, d))
            br = site("attn.branch", torch.nn.functional.linear(o, *blk["o"]))
            x = site("attn.out", x + br)
            z = torch.nn.functional.linear(ln(x), *blk["up"])
            hid = site("mlp.hidden", z, torch.nn.functional.gelu(z))
            br = site("mlp.branch", torch.nn.functional.linear(hid, *blk["down"]))
            x = site("out", x + br)
        return x, probs

    def zero():
        for blk in blocks:
            for w, b in blk.values():
                w.grad = None
                b.grad = None

    def step():
        out, _ = forward(None)
        (out * g).sum().backward()
        zero()

    def probed():
        keep = []
        out, probs = forward(keep)
        (out * g).sum().backward()
        rows = []
        for i, (name, z, h) in enumerate(keep):
            blk = blocks[i // 6]
            weight = {"attn": blk["o"][0], "mlp.hidden": blk["down"][0]}.get(name)
            r = site_stats(z, h, weight)
            if name == "mlp.hidden":
                r["saturated"] = (gelu_prime(z.detach()).abs() < 0.01).double().mean().item()
            if name in ("attn", "attn.out", "out"):
                r["tokens"] = token_stats(h)
            if name == "attn":
                a = probs[i // 6]
                r["entropy"] = (-(a * torch.log(a.clamp_min(1e-30))).sum(3)).double().mean().item()
                r["roles"] = [blk[n][0].grad.double().var(unbiased=False).item() for n in "qkvo"]
            rows.append(r)
        zero()
        return rows

    def kept():
        # sigprop's probed pass: every site's values kept with their gradients.
        keep = []
        out, _ = forward(keep)
        (out * g).sum().backward()
        zero()
        return keep

    fb = timed(step)
    fb_kept = timed(kept)
    total = timed(probed)
    print(f"  PyTorch {torch.__version__} forward+backward: {fb:.3f} s; with every site's values "
          f"kept with their gradients: {fb_kept:.3f} s; with the same statistics: {total:.3f} s "
          "(2 threads)")


def jacobian():
    import numpy as np

    depth, width, samples = 50, 1024, 8
    ws = [torch.nn.init.xavier_normal_(torch.empty(width, width)) for _ in range(depth)]
    x = torch.randn(samples, width)

    def product():
        h, p = x, None
        for w in ws:
            z = h @ w
            d = 1.0 - torch.tanh(z) ** 2
            p = w.unsqueeze(0) * d.unsqueeze(1) if p is None else (p @ w) * d.unsqueeze(1)
            h = torch.tanh(z)
        return p

    with torch.no_grad():
        t_prod = timed(product)
        j = product().double()
        t_torch = timed(lambda: torch.linalg.svdvals(j))
        jn = j.numpy()
        t_np = timed(lambda: [np.linalg.svd(m, compute_uv=False) for m in jn])
    print(f"  PyTorch {torch.__version__}: forward + Jacobian product {t_prod:.2f} s; singular values "
          f"torch.linalg.svdvals {t_torch:.2f} s, numpy {np.__version__} {t_np:.2f} s (2 threads)")


if __name__ == "__main__":
    case = sys.argv[1] if len(sys.argv) > 1 else "probe"
    {"probe": probe, "probe-stats": probe_stats, "transformer": transformer, "jacobian": jacobian}[case]()
