"""PyTorch side of sigprop's benchmarks, run on the same machine in the same session.

probe: forward+backward of a ReLU MLP (depth 50, width 512, batch 256, He-normal weights,
       projection loss) with 2 threads, median of 7 after a warm-up.
init:  nn.init.normal_ on 50 tensors 512x512, and nn.init.orthogonal_ on 4096x4096.
Not part of CI.
"""
import sys
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


def init():
    ts = [torch.empty(512, 512) for _ in range(50)]
    times = []
    for _ in range(5):
        t = time.perf_counter()
        for x in ts:
            torch.nn.init.normal_(x)
        times.append(time.perf_counter() - t)
    print(f"  PyTorch normal_ 50 x 512x512: {median(times):.4f} s")
    big = torch.empty(4096, 4096)
    t = time.perf_counter()
    torch.nn.init.orthogonal_(big)
    print(f"  PyTorch orthogonal_ 4096x4096: {time.perf_counter() - t:.3f} s")


if __name__ == "__main__":
    {"probe": probe, "init": init}[sys.argv[1] if len(sys.argv) > 1 else "probe"]()
