#!/usr/bin/env bash
# The same split on one many-core machine: SHARDS shards at once, each a process of its
# own, then the merge.
#
#   SIGPROP=$PWD/target/release/sigprop examples/slurm/parallel.sh experiments/x.toml reports/x 4
#
# With GNU parallel when it is installed, else xargs -P. Each shard's runs go in parallel
# too (rayon), so give each shard cores / SHARDS threads (RAYON_NUM_THREADS).
set -euo pipefail

SUITE="${1:?usage: parallel.sh SUITE OUT SHARDS}"
OUT="${2:?usage: parallel.sh SUITE OUT SHARDS}"
SHARDS="${3:?usage: parallel.sh SUITE OUT SHARDS}"
SIGPROP="${SIGPROP:-sigprop}"
cores=$(nproc 2>/dev/null || echo 1)
export RAYON_NUM_THREADS="${RAYON_NUM_THREADS:-$(( cores / SHARDS > 0 ? cores / SHARDS : 1 ))}"

shard() { "$SIGPROP" suite "$SUITE" --shard "$1/$SHARDS" --resume --quiet --out "$OUT/shards/$1"; }
export -f shard
export SUITE OUT SHARDS SIGPROP
if command -v parallel >/dev/null 2>&1; then
    seq 1 "$SHARDS" | parallel --halt now,fail=1 -j "$SHARDS" shard {}
else
    seq 1 "$SHARDS" | xargs -P "$SHARDS" -I{} bash -c 'shard {}'
fi
exec "$SIGPROP" merge "$OUT/merged" "$OUT"/shards/* --quiet
