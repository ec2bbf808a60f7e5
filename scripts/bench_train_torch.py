"""PyTorch side of `sigprop train`'s benchmark: 200 steps of plain SGD (lr 0.003) on the
teacher task, the same work as

    sigprop train --init he-normal --activations relu --depth 30 --width 256 --batch 128 \
        --steps 200 --lr 0.003 --seeds 1 --json

Per step: a fresh batch of 128 N(0, 1) inputs, the teacher's targets (a tanh MLP 256-64-64-1
scaled to mean square 1), the ReLU MLP (30 layers of 256 units, He-normal weights, zero
biases, all trained) and a linear readout 256 -> 1 (LeCun normal), mean squared error,
backward, the loss and the whole gradient's norm read to the host, one SGD step. At steps 0,
1, 10 and 200: the loss on a fixed evaluation batch of 1024 samples, and a probed pass on
128 samples with the per-layer statistics (moments of z and h and of their gradients, dead
fraction, weight and weight-gradient variances, the pair correlation and the effective rank
of each layer's activations from the f64 Gram matrix's eigenvalues). 2 threads, the median
of 3 runs after a warm-up run. Not part of CI.
"""
import math
import time

import torch

torch.set_num_threads(2)
DEPTH, WIDTH, BATCH, STEPS, LR, EVAL = 30, 256, 128, 200, 0.003, 1024
LOGGED = {0, 1, 10, STEPS}


def teacher(gen):
    ws, fan = [], WIDTH
    for n in (64, 64, 1):
        ws.append(torch.randn(fan, n, generator=gen) / math.sqrt(fan))
        fan = n
    def f(x):
        h = x
        for i, w in enumerate(ws):
            h = h @ w
            if i < len(ws) - 1:
                h = torch.tanh(h)
        return h
    ref = f(torch.randn(4096, WIDTH, generator=gen))
    scale = 1.0 / ref.pow(2).mean().sqrt()
    return lambda x: f(x) * scale


def probe(ws, bs, gen):
    x = torch.randn(BATCH, WIDTH, generator=gen)
    g = torch.randn(BATCH, WIDTH, generator=gen)
    sites, h = [], x
    for w, b in zip(ws, bs):
        z = h @ w + b
        z.retain_grad()
        h = torch.relu(z)
        h.retain_grad()
        sites.append((z, h, w))
    (h * g).sum().backward()
    out = []
    for z, h, w in sites:
        row = {}
        for name, t in (("z", z), ("h", h)):
            t = t.detach()
            m = t.mean(0)
            row[name] = (m.double().mean().item(), ((t - m) ** 2).double().mean().item())
        row["gz"] = z.grad.double().var(unbiased=False).item()
        row["gh"] = h.grad.double().var(unbiased=False).item()
        row["dead"] = (h == 0).double().mean().item()
        row["w"] = w.detach().double().var(unbiased=False).item()
        row["gw"] = w.grad.double().var(unbiased=False).item()
        zz = z.detach()[: 2 * (BATCH // 2)].reshape(BATCH // 2, 2, WIDTH)
        row["corr"] = torch.nn.functional.cosine_similarity(zz[:, 0], zz[:, 1], dim=1).mean().item()
        hd = h.detach().double()
        lam = torch.linalg.eigvalsh(hd @ hd.T).clamp_min(0)
        p = lam / lam.sum()
        row["rank"] = torch.exp(-(p * torch.log(p.clamp_min(1e-300))).sum()).item()
        out.append(row)
    for w in ws + bs:
        w.grad = None
    return out


def run():
    gen = torch.Generator().manual_seed(0)
    f = teacher(gen)
    ws = [(torch.randn(WIDTH, WIDTH, generator=gen) * math.sqrt(2.0 / WIDTH)).requires_grad_() for _ in range(DEPTH)]
    bs = [torch.zeros(WIDTH, requires_grad=True) for _ in range(DEPTH)]
    r = (torch.randn(WIDTH, 1, generator=gen) / math.sqrt(WIDTH)).requires_grad_()
    params = ws + bs + [r]
    opt = torch.optim.SGD(params, lr=LR)
    xe = torch.randn(EVAL, WIDTH, generator=gen)
    ye = f(xe)

    def net(x):
        h = x
        for w, b in zip(ws, bs):
            h = torch.relu(h @ w + b)
        return h @ r

    t = time.perf_counter()
    for step in range(STEPS + 1):
        if step in LOGGED:
            probe(ws, bs, gen)
            with torch.no_grad():
                ((net(xe) - ye) ** 2).mean().item()
        x = torch.randn(BATCH, WIDTH, generator=gen)
        y = f(x)
        loss = ((net(x) - y) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        gn = torch.sqrt(sum((p.grad ** 2).sum() for p in params))
        loss.item(), gn.item()
        if step < STEPS:
            opt.step()
    return time.perf_counter() - t


run()
times = sorted(run() for _ in range(3))
print(f"PyTorch {torch.__version__}: 200 SGD steps (+ 4 logged probes and evaluations), "
      f"median of 3: {times[1]:.2f} s (min {times[0]:.2f}, max {times[2]:.2f}), 2 threads")
