"""Regenerate the README's benchmark table: sigprop and PyTorch on the same work, side by side
in one run on this machine, every row measured afresh (`just bench` runs it; not part of CI).

Each row runs sigprop's side and PyTorch's side in turn, ROUNDS times (interleaved, so that a
busy spell of a shared machine falls on both), and reports the median of the rounds' figures.
The machine's FMA peak comes from scripts/fma_peak.c (built here with `cc -march=native`).

    cargo build --release && python3 scripts/bench_table.py [--sigprop target/release/sigprop]
        [--rounds 3] [--readme README.md]

The table goes between the README's `<!-- bench-table:start -->` and `<!-- bench-table:end -->`
lines; everything else in the README is left as it is.
"""
import argparse
import datetime
import filecmp
import json
import os
import platform
import re
import statistics
import subprocess
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
START, END = "<!-- bench-table:start -->", "<!-- bench-table:end -->"

MLP = ["--depth", "50", "--width", "512", "--batch", "256"]
TRANSFORMER = ["--arch", "transformer", "--depth", "12", "--width", "256", "--heads", "4",
               "--seq-len", "128", "--batch", "16", "--activation", "gelu", "--init", "xavier-normal"]
JACOBIAN = ["--activation", "tanh", "--init", "xavier-normal", "--depth", "50", "--width", "1024",
            "--batch", "8"]
TRAIN = ["--inits", "he-normal", "--activations", "relu", "--depth", "30", "--width", "256",
         "--batch", "128", "--steps", "200", "--lr", "0.003", "--seeds", "1", "--json"]
RUN6 = ["--init", "he-normal", "--activation", "relu", "--depth", "50", "--width", "512",
        "--batch", "256", "--seeds", "6", "--quiet"]


def sh(cmd, env=None):
    """Run `cmd`; its stdout, or exit with its stderr."""
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if r.returncode != 0:
        sys.exit(f"bench_table: {' '.join(cmd)} failed ({r.returncode}):\n{r.stderr.strip()}")
    return r.stdout


def number(pattern, text):
    m = re.search(pattern, text)
    if not m:
        sys.exit(f"bench_table: no match for {pattern!r} in:\n{text}")
    return float(m.group(1))


def rounds(n, *sides):
    """Each side a function returning a figure; all sides run once per round; the medians."""
    figures = [[] for _ in sides]
    for _ in range(n):
        for f, side in zip(figures, sides):
            f.append(side())
    return [statistics.median(f) for f in figures]


def torch(case):
    return sh([sys.executable, os.path.join(HERE, "bench_torch.py"), case])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sigprop", default="target/release/sigprop")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--readme", default="README.md")
    a = ap.parse_args()
    out = tempfile.mkdtemp(prefix="bench_table")
    try:
        table(a, out)
    finally:
        shutil.rmtree(out, ignore_errors=True)


def table(a, out):
    """Measure every row (scratch files under `out`) and write the table into the README."""
    sig = a.sigprop

    def bench(args, repeats):
        sh([sig, "bench", *args, "--repeats", str(repeats), "--out", out])
        with open(os.path.join(out, "bench.json")) as f:
            return json.load(f)

    def phase(report, name):
        return next(p["median_ms"] for p in report["phases"] if p["phase"] == name) / 1e3

    # The machine's FMA peak.
    exe = os.path.join(out, "fma_peak")
    sh(["cc", "-O2", "-march=native", "-pthread", os.path.join(HERE, "fma_peak.c"), "-o", exe])
    # The peak at the start and again at the end, the higher of the two: on a shared virtual
    # machine a neighbour's load can halve one reading.
    peak_now = lambda: number(r" gflops=([0-9.]+)", sh([exe, "2"]))
    peak = peak_now()
    import torch as t
    torch_version = t.__version__
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo")
                if l.startswith("model name")), platform.processor())
    rows = []
    print(f"FMA peak, 2 threads: {peak:.0f} GFLOP/s", flush=True)

    def seconds_row(work, s, p):
        rows.append((work, f"{s:.2f} s", f"{p:.2f} s", s / p))
        print(rows[-1], flush=True)

    # The MLP's probed forward+backward.
    gflop = []

    def mlp_sig():
        r = bench(MLP, 7)
        gflop.append(r["pass_gflop"])
        return phase(r, "forward_backward")

    s, p = rounds(a.rounds, mlp_sig,
                  lambda: number(r"probe's reads: ([0-9.]+) s", torch("probe")))
    g = gflop[0]
    mlp = (s, p, g)
    rows.append(None)  # the MLP's row, once the peak is read again at the end
    print(f"MLP: sigprop {1e3 * s:.0f} ms, PyTorch {1e3 * p:.0f} ms", flush=True)

    # The transformer's forward+backward.
    s, p = rounds(a.rounds, lambda: phase(bench(TRANSFORMER, 5), "forward_backward"),
                  lambda: number(r"kept with their gradients: ([0-9.]+) s", torch("transformer")))
    seconds_row(
        "transformer forward+backward: pre-LN, 12 blocks, d-model 256, 4 heads, 128 tokens, "
        "batch 16, GELU MLP x4, biases, every site's values kept with their gradients", s, p)

    # The Jacobian spectrum: the product W^1 D^1 ... W^50 D^50 for 8 inputs and its singular
    # values (sigprop: `bench` with --jacobian less without, the same pass otherwise).
    def jac_sig():
        with_j = phase(bench(JACOBIAN + ["--jacobian", "--jacobian-samples", "8"], 3), "total")
        return with_j - phase(bench(JACOBIAN, 3), "total")

    def jac_torch():
        text = torch("jacobian")
        return (number(r"Jacobian product ([0-9.]+) s", text)
                + number(r"svdvals ([0-9.]+) s", text))

    s, p = rounds(a.rounds, jac_sig, jac_torch)
    seconds_row(
        "Jacobian spectrum: tanh MLP depth 50, width 1024, 8 inputs: the f32 product "
        "W^1 D^1 ... W^50 D^50 for the 8 inputs and 8 singular-value decompositions in f64", s, p)

    # 200 SGD steps with the training probe.
    def train_sig():
        text = sh([sig, "train", *TRAIN, "--out", os.path.join(out, "train")])
        return json.loads(text)[0]["train_s"][0]

    s, p = rounds(a.rounds, train_sig, lambda: number(
        r"median of 3: ([0-9.]+) s", sh([sys.executable, os.path.join(HERE, "bench_train_torch.py")])))
    seconds_row(
        "training probe: 200 plain-SGD steps on the teacher task, ReLU He-normal MLP depth 30, "
        "width 256, batch 128, biases and readout, loss and gradient norm every step, "
        "statistics and evaluation (1024 samples) at steps 0, 1, 10, 200", s, p)

    # A whole 6-seed run at 1 and at 2 threads, start to report.
    def run(threads):
        d = os.path.join(out, f"run{threads}")
        sh(["rm", "-rf", d])
        env = dict(os.environ, RAYON_NUM_THREADS=str(threads))
        t0 = time.perf_counter()
        sh([sig, "run", *RUN6, "--out", d], env=env)
        return time.perf_counter() - t0

    # Cheap, and the noisiest row on a shared machine: at least 5 rounds.
    scaling_rounds = max(a.rounds, 5)
    one, two = rounds(scaling_rounds, lambda: run(1), lambda: run(2))
    same = filecmp.cmp(os.path.join(out, "run1", "layers.csv"),
                       os.path.join(out, "run2", "layers.csv"), shallow=False)
    rows.append((
        "thread scaling: a whole 6-seed `sigprop run` of the MLP above (weights, pass, "
        f"statistics, charts, report) at 1 and at 2 threads, medians of {scaling_rounds} rounds",
        f"{one:.2f} s at 1 thread, {two:.2f} s at 2: {one / two:.2f}x; layers.csv "
        + ("byte-identical" if same else "DIFFERENT"),
        "-", None))
    print(rows[-1], flush=True)

    peak_end = peak_now()
    print(f"FMA peak, 2 threads, at the end: {peak_end:.0f} GFLOP/s", flush=True)
    peak = max(peak, peak_end)
    s, p, g = mlp
    rows[0] = (
        "MLP forward+backward: ReLU, He-normal, depth 50, width 512, batch 256, biases, every "
        f"layer's z and h kept with their gradients ({g:.1f} GFLOP of products)",
        f"{1e3 * s:.0f} ms ({g / s:.0f} GFLOP/s, {100 * g / s / peak:.0f}% of the FMA peak)",
        f"{1e3 * p:.0f} ms ({g / p:.0f} GFLOP/s)", s / p)

    date = datetime.date.today().isoformat()
    lines = [
        START,
        f"Measured {date} by `just bench` (`scripts/bench_table.py`) on {cpu}, 2 threads on each "
        f"side (`RAYON_NUM_THREADS`, `torch.set_num_threads(2)`), PyTorch {torch_version} on the "
        f"CPU, sigprop's `flex` backend; medians of {a.rounds} interleaved rounds (a `sigprop "
        f"bench` or `bench_torch.py` figure is itself a median of repeats). FMA peak of the machine (scripts/"
        f"fma_peak.c): {peak:.0f} GFLOP/s on 2 threads. sigprop's times are `sigprop bench`'s "
        "phases and `sigprop train --json`'s `train_s`; PyTorch's come from "
        "`scripts/bench_torch.py` and `scripts/bench_train_torch.py`, which do the same work.",
        "",
        "| work | sigprop | PyTorch, same work | sigprop / PyTorch |",
        "|---|---|---|---|",
    ]
    for work, s_text, p_text, ratio in rows:
        lines.append(f"| {work} | {s_text} | {p_text} | "
                     + ("-" if ratio is None else f"{ratio:.2f}x") + " |")
    lines.append(END)
    with open(a.readme) as f:
        text = f.read()
    if START not in text or END not in text:
        sys.exit(f"bench_table: {a.readme} has no {START} ... {END} section")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    with open(a.readme, "w") as f:
        f.write(head + "\n".join(lines) + tail)
    print(f"wrote the table into {a.readme}")


if __name__ == "__main__":
    main()
