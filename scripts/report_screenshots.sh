#!/usr/bin/env bash
# Screenshots of report.html for the README, taken with headless Chromium: a 6-configuration
# compare, and a 400-configuration sweep (8 activations x 5 initializers x 10 depths) shown
# filtered to tanh by its address (#filter=activation:tanh). Prints each page's size.
#
#   cargo build --release && scripts/report_screenshots.sh [BINARY]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(realpath "${1:-target/release/sigprop}")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$bin" compare --inits he-normal,xavier-normal,orthogonal --activations tanh,relu \
    --depth 30 --width 128 --seeds 3 --quiet --out "$tmp/compare"
cat > "$tmp/sweep.toml" <<'TOML'
name = "sweep400"
description = "8 activations x 5 initializers x 10 depths, width 16, 2 seeds."
[base]
width = 16
batch = 32
seeds = 2
[grid]
activation = ["relu", "tanh", "gelu", "swish", "elu", "selu", "sigmoid", "linear"]
init = ["he-normal", "xavier-normal", "lecun-normal", "orthogonal", "he-uniform"]
depth = [4, 8, 12, 16, 20, 24, 28, 32, 36, 40]
TOML
"$bin" suite "$tmp/sweep.toml" --quiet --out "$tmp/sweep"
shoot() {
    chromium --headless --no-sandbox --disable-gpu --hide-scrollbars \
        --virtual-time-budget=5000 --window-size=1280,1700 \
        --screenshot="reports/quickstart/$2" "file://$tmp/$1/report.html$3" 2>/dev/null
    echo "$1/report.html: $(stat -c %s "$tmp/$1/report.html") bytes -> reports/quickstart/$2"
}
shoot compare report_html_compare.png ""
shoot sweep report_html_sweep400.png "#filter=activation:tanh"
