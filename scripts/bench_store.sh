#!/usr/bin/env bash
# Benchmark (not a test): how much of a 400-configuration suite of tiny networks goes to
# writing files (records, CSVs, manifest, report), from the manifest's write_s and
# wall_time_s. Charts are drawn after and not counted in either.
#
#   cargo build --release && scripts/bench_store.sh [target/release/sigprop]
set -euo pipefail
SIGPROP="${1:-target/release/sigprop}"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
values=$(python3 -c 'print(", ".join(f"{0.25 + 0.25 * i:g}" for i in range(20)))')
cat > "$dir/tiny.toml" <<TOML
name = "tiny400"
[base]
arch = "mlp"
activation = "tanh"
depth = 5
width = 32
batch = 16
seeds = 2
[grid]
sigma-w2 = [$values]
sigma-b2 = [$values]
TOML
start=$(date +%s.%N)
"$SIGPROP" suite "$dir/tiny.toml" --quiet --out "$dir/out"
end=$(date +%s.%N)
python3 - "$dir/out/manifest.json" "$start" "$end" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
total = float(sys.argv[3]) - float(sys.argv[2])
runs = sum(len(c["seeds"]) for c in m["configurations"])
print(f"{len(m['configurations'])} configurations, {runs} runs: wall {m['wall_time_s']:.2f} s to the CSVs "
      f"({total:.2f} s with charts and report); writing {m['write_s']:.3f} s = "
      f"{100 * m['write_s'] / m['wall_time_s']:.1f}% of the wall time")
PY
