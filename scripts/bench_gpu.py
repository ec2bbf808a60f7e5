"""PyTorch side of issue 11's GPU benchmark, for a CUDA machine (falls back to the CPU
where there is none, for checking the script): per seed, the ReLU MLP that
`sigprop bench` times (He-normal weights and zero biases that take gradients, drawn on the
device; projection loss), in fp32 with TF32 off, and

- `fwd+bwd`: the forward and backward pass alone;
- `total`: weights drawn, forward+backward, and the per-layer statistics sigprop computes
  at each site (column moments of z and h, the per-unit batch variance, moments of dL/dz
  and dL/dh, weight and weight-gradient variances, the dead fraction, non-finite counts,
  the cosine of each input pair's z, and the effective rank of h from the f64 Gram
  matrix's eigenvalues), reduced on the device and read back once per seed.

Median of REPEATS (default 5) after a warm-up, synchronised. Usage:

    python3 scripts/bench_gpu.py [depth,width,batch ...]

(default: 50,512,256 200,1024,1024 50,4096,4096, the issue's table). Not part of CI.
"""
import os
import sys
import time

import torch

torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
REPEATS = int(os.environ.get("REPEATS", "5"))


def sync():
    if dev.type == "cuda":
        torch.cuda.synchronize()


def timed(step):
    step()
    sync()
    times = []
    for _ in range(REPEATS):
        t = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - t)
    return sorted(times)[len(times) // 2]


def effective_rank(h):
    """exp of the entropy of the normalized singular values of each [batch, width] matrix,
    from the eigenvalues of its f64 Gram matrix (batched over the first dimension)."""
    hd = h.double()
    lam = torch.linalg.eigvalsh(hd @ hd.transpose(-2, -1)).clamp_min(0)
    sv = lam.sqrt()
    p = sv / sv.sum(-1, keepdim=True)
    return torch.exp(-(p * torch.log(p.clamp_min(1e-300))).sum(-1))


def column_moments(x):
    m = x.mean(0)
    v = ((x - m) ** 2).mean(0)
    return torch.stack([m.double().mean(), v.double().mean() + m.double().var(unbiased=False),
                        v.double().mean(), (~torch.isfinite(x)).sum().double()])


def case(depth, width, batch):
    x = torch.randn(batch, width, device=dev)
    g = torch.randn(batch, width, device=dev)

    def init():
        ws = [torch.nn.init.kaiming_normal_(torch.empty(width, width, device=dev)).requires_grad_()
              for _ in range(depth)]
        bs = [torch.zeros(width, device=dev, requires_grad=True) for _ in range(depth)]
        return ws, bs

    ws0, bs0 = init()

    def pass_(ws, bs, keep):
        h = x
        for w, b in zip(ws, bs):
            z = h @ w + b
            h = torch.relu(z)
            if keep is not None:
                z.retain_grad()
                h.retain_grad()
                keep.append((z, h, w))
        (h * g).sum().backward()

    def fwd_bwd():
        for p in ws0 + bs0:
            p.grad = None
        pass_(ws0, bs0, None)

    def total():
        ws, bs = init()
        keep = []
        pass_(ws, bs, keep)
        rows = []
        for z, h, w in keep:
            zd, hd = z.detach(), h.detach()
            a, c = zd[0::2], zd[1::2]
            cos = ((a * c).sum(1) / (a.norm(dim=1) * c.norm(dim=1))).double().mean()
            rows.append(torch.cat([
                column_moments(zd), column_moments(hd),
                torch.stack([z.grad.double().var(unbiased=False),
                             h.grad.double().var(unbiased=False),
                             w.detach().double().var(unbiased=False),
                             w.grad.double().var(unbiased=False),
                             (hd == 0).double().mean(), cos]),
            ]))
        ranks = effective_rank(torch.stack([h.detach() for _, h, _ in keep]))
        torch.cat([torch.stack(rows).flatten(), ranks]).cpu()

    fb = timed(fwd_bwd)
    tot = timed(total)
    name = torch.cuda.get_device_name() if dev.type == "cuda" else "CPU"
    print(f"PyTorch {torch.__version__} on {name}, depth {depth}, width {width}, batch {batch}, "
          f"fp32: fwd+bwd {fb * 1e3:.1f} ms, per-seed total with statistics {tot * 1e3:.1f} ms")


if __name__ == "__main__":
    cases = sys.argv[1:] or ["50,512,256", "200,1024,1024", "50,4096,4096"]
    for c in cases:
        case(*map(int, c.split(",")))
