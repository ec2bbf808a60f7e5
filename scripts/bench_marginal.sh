#!/usr/bin/env bash
# Benchmark (not a test), issue 11's CPU must-shows, side by side in one run:
#  - sigprop's per-seed marginal time of `run` (init + forward + backward + statistics),
#    ReLU He MLP depth 50, width 512, batch 256: the wall time of SEEDS_HI seeds less that of
#    SEEDS_LO seeds, over the seeds between (start-up, charts and report cancel out), each
#    wall time the median of REPEATS (3) runs;
#  - the same with RAYON_NUM_THREADS=1, for the thread scaling, and whether the two
#    layers.csv files are byte-identical;
#  - PyTorch's same per-seed work (`scripts/bench_torch.py probe-stats`, 2 threads).
#
#   cargo build --release && scripts/bench_marginal.sh [target/release/sigprop]
#
# BACKEND=ndarray times another CPU backend built into the binary (default: flex).
set -euo pipefail
SIGPROP="${1:-target/release/sigprop}"
BACKEND="${BACKEND:-flex}"
LO="${SEEDS_LO:-6}"
HI="${SEEDS_HI:-18}"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
REPEATS="${REPEATS:-3}"
wall() { # threads seeds out: the median wall time of REPEATS runs
    local i start end times=()
    for ((i = 0; i < REPEATS; i++)); do
        rm -rf "$3"
        start=$(date +%s.%N)
        # A failed run aborts the benchmark (set -e does not reach into $(...)).
        RAYON_NUM_THREADS="$1" "$SIGPROP" run --backend "$BACKEND" --init he-normal --activation relu --depth 50 \
            --width 512 --batch 256 --seeds "$2" --out "$3" --quiet || exit 1
        end=$(date +%s.%N)
        times+=("$(python3 -c "print($end - $start)")")
    done
    python3 -c "import statistics, sys; print(f'{statistics.median(map(float, sys.argv[1:])):.3f}')" "${times[@]}"
}
for threads in 2 1; do
    lo=$(wall "$threads" "$LO" "$dir/lo$threads")
    hi=$(wall "$threads" "$HI" "$dir/hi$threads")
    marginal=$(python3 -c "print(f'{($hi - $lo) / ($HI - $LO):.3f}')")
    echo "sigprop ($BACKEND), $threads thread(s): $LO seeds ${lo} s, $HI seeds ${hi} s: ${marginal} s per seed"
    declare "m$threads=$marginal"
done
python3 -c "print(f'thread scaling (per-seed marginal, 1 thread / 2 threads): {$m1 / $m2:.2f}x')"
if cmp -s "$dir/hi1/layers.csv" "$dir/hi2/layers.csv"; then
    echo "layers.csv: byte-identical at 1 and 2 threads"
else
    echo "layers.csv: DIFFERS between 1 and 2 threads"
fi
python3 "$(dirname "$0")/bench_torch.py" probe-stats
