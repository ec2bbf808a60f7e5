#!/usr/bin/env bash
# Benchmark (not a test): issue 11's GPU must-show, side by side with PyTorch on one GPU, in
# one command on a device machine (see the workplace's device README). It runs
#  - `sigprop bench --backend wgpu` (Vulkan) on the issue's three ReLU He MLPs, each phase's
#    median over REPEATS: init, forward+backward, statistics, and the bare product's rate;
#  - the per-seed wall time of `sigprop run --backend wgpu` over 17 seeds of the first
#    configuration with --seed-batch 1 and with the default (seeds side by side in one
#    pass), and whether the two layers.csv files are byte-identical;
#  - scripts/bench_gpu.py: PyTorch's same work on CUDA, fp32 with TF32 off.
#
# Prepare here (the device machine has no Rust toolchain and no internet):
#   cargo build --release --features wgpu
#   mkdir -p .gpu && strip -o .gpu/sigprop target/release/sigprop && gzip -9f .gpu/sigprop
#   echo /.gpu/ >> .git/info/exclude   # and the Vulkan loader in .gl (device README)
# then, on the device, with carry [".gpu", ".gl"]:
#   bash scripts/bench_gpu.sh
# CONFIGS="depth,width,batch ..." overrides the configurations; GPU figures go into the
# README with the date and the GPU.
set -uo pipefail
OUT="${OUT:-$(mktemp -d)}"
REPEATS="${REPEATS:-5}"
CONFIGS="${CONFIGS:-50,512,256 200,1024,1024 50,4096,4096}"
if [ -d .gl ]; then
    for f in .gl/*.deb; do dpkg -x "$f" /; done
    ldconfig
fi
if [ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ]; then
    export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
fi
SIGPROP="${SIGPROP:-}"
if [ -z "$SIGPROP" ]; then
    gunzip -c .gpu/sigprop.gz > /tmp/sigprop && chmod +x /tmp/sigprop || exit 1
    SIGPROP=/tmp/sigprop
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null
"$SIGPROP" list backends
for c in $CONFIGS; do
    IFS=, read -r d w b <<< "$c"
    "$SIGPROP" bench --backend wgpu --depth "$d" --width "$w" --batch "$b" \
        --repeats "$REPEATS" --out "/tmp/bench-$d-$w-$b" || echo "bench $c failed"
    cp "/tmp/bench-$d-$w-$b/bench.json" "$OUT/bench-$d-$w-$b.json" 2>/dev/null
done
IFS=, read -r d w b <<< "${CONFIGS%% *}"
for k in 1 default; do
    flag=()
    [ "$k" = 1 ] && flag=(--seed-batch 1)
    start=$(date +%s.%N)
    "$SIGPROP" run --backend wgpu --depth "$d" --width "$w" --batch "$b" --seeds 17 \
        "${flag[@]}" --quiet --out "/tmp/run-$k" > /dev/null || echo "run seed-batch $k failed"
    end=$(date +%s.%N)
    python3 -c "print(f'sigprop run, 17 seeds, seed-batch $k: {($end - $start):.2f} s wall, {($end - $start) / 17 * 1e3:.0f} ms a seed')"
done
cmp -s /tmp/run-1/layers.csv /tmp/run-default/layers.csv &&
    echo "layers.csv byte-identical with and without seed batching" ||
    echo "layers.csv DIFFERS with and without seed batching"
# shellcheck disable=SC2086
python3 scripts/bench_gpu.py $CONFIGS
