#!/usr/bin/env python3
"""PyTorch reference timings for crates/init/benches/fill.rs.

Times, on 2 threads (torch.set_num_threads(2)), best of a few repetitions:
  - nn.init.normal_ on 50 existing 512x512 float32 tensors (with the He std),
  - nn.init.kaiming_normal_ on the same tensors (what "he-normal" does),
  - nn.init.orthogonal_ on one 4096x4096 float32 tensor.
Compare with `cargo bench -p sigprop-init`. Needs `pip install torch`.
"""
import math
import time

import torch
from torch import nn


def best_of(reps, f):
    best = math.inf
    for _ in range(reps):
        t = time.perf_counter()
        f()
        best = min(best, time.perf_counter() - t)
    return best


def main():
    torch.set_num_threads(2)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}")
    ws = [torch.empty(512, 512) for _ in range(50)]
    std = math.sqrt(2.0 / 512)

    def normal():
        for w in ws:
            nn.init.normal_(w, 0.0, std)

    def kaiming():
        for w in ws:
            nn.init.kaiming_normal_(w, nonlinearity="relu")

    t = best_of(5, normal)
    print(f"normal_, 50 x [512, 512]: {t:.4f} s ({t * 1e9 / (50 * 512 * 512):.2f} ns/entry)")
    t = best_of(5, kaiming)
    print(f"kaiming_normal_, 50 x [512, 512]: {t:.4f} s")
    q = torch.empty(4096, 4096)
    t = best_of(2, lambda: nn.init.orthogonal_(q))
    print(f"orthogonal_ [4096, 4096]: {t:.3f} s")


if __name__ == "__main__":
    main()
