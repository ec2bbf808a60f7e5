#!/usr/bin/env bash
# Submit a suite as a Slurm job array of SHARDS tasks and a merge job that waits for all
# of them:
#
#   SIGPROP=$PWD/target/release/sigprop examples/slurm/submit.sh experiments/x.toml reports/x 16
#
# Results: reports/x/merged (report.md, CSVs, charts); each task's runs in reports/x/shards.
set -euo pipefail

SUITE="${1:?usage: submit.sh SUITE OUT SHARDS}"
OUT="${2:?usage: submit.sh SUITE OUT SHARDS}"
SHARDS="${3:?usage: submit.sh SUITE OUT SHARDS}"
HERE="$(cd "$(dirname "$0")" && pwd)"
export SUITE OUT SHARDS SIGPROP="${SIGPROP:-sigprop}"

array=$(sbatch --parsable --array="1-$SHARDS" --export=ALL "$HERE/shard.sbatch")
# The merge waits for every task to succeed; if one fails, Slurm cancels the merge rather
# than leave it pending.
sbatch --parsable --dependency="afterok:${array%%;*}" --kill-on-invalid-dep=yes \
    --export=ALL "$HERE/merge.sbatch"
