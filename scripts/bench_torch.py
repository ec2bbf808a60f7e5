"""PyTorch side of sigprop's benchmarks, run on the same machine in the same session.

Forward+backward of a ReLU MLP (depth 50, width 512, batch 256, He-normal weights,
projection loss) with 2 threads, median of 7 after a warm-up: the reference for
crates/nets/benches/probe.rs. Initializer timings: scripts/bench_init_torch.py.
Not part of CI.
"""
import time

import torch

torch.set_num_threads(2)


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]


def probe():
    depth, width, batch = 50, 512, 256
    ws = [torch.nn.init.kaiming_normal_(torch.empty(width, width)).requires_grad_() for _ in range(depth)]
    x = torch.randn(batch, width)
    g = torch.randn(batch, width)

    def step():
        h = x
        for w in ws:
            h = torch.relu(h @ w)
        (h * g).sum().backward()

    step()
    times = []
    for _ in range(7):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    print(f"  PyTorch {torch.__version__} forward+backward: {median(times):.3f} s (2 threads)")


if __name__ == "__main__":
    probe()
