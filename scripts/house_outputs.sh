#!/usr/bin/env bash
# Outputs of a build over 25 commands that cover every architecture, normalization, LSUV with
# the cross-entropy head, pruning, the Jacobian, critical and auto initialization, compare,
# recommend, train, the width and depth coordinate checks, a suite and the same suite in
# three shards merged. Run it with two builds and compare: every CSV and PNG must be
# byte-identical, reports and manifests equal up to the folder name and timings.
#
#   scripts/house_outputs.sh OLD_BINARY /tmp/out_old
#   scripts/house_outputs.sh target/release/sigprop /tmp/out_new
#   scripts/house_outputs.sh --compare /tmp/out_old /tmp/out_new
set -u
if [ "${1:-}" = "--compare" ]; then
    A=$2; B=$3; bad=0; n=0
    # Reports with the folder name replaced; JSON without its timing fields (`*_s`).
    norm() {
        case $1 in
            *.json) python3 -c '
import json, sys
def strip(v):
    if isinstance(v, dict):
        return {k: strip(x) for k, x in v.items() if not k.endswith("_s") and k not in ("seconds", "git_commit")}
    if isinstance(v, list):
        return [strip(x) for x in v]
    return v
print(json.dumps(strip(json.load(open(sys.argv[1]))), indent=1, sort_keys=True))
' "$1" | sed -e "s#$2#OUT#g" ;;
            *) sed -e "s#$2#OUT#g" "$1" ;;
        esac
    }
    cd "$A" || exit 2
    for f in $(find . -type f \( -name "*.csv" -o -name "*.png" -o -name "*.md" -o -name "*.json" -o -name "*.svg" \) -not -path "*/runs/*" | sort); do
        n=$((n + 1))
        if [ ! -f "$B/$f" ]; then echo "missing $f"; bad=1; continue; fi
        case $f in
            *.csv|*.png) cmp -s "$f" "$B/$f" || { echo "differs: $f"; bad=1; } ;;
            *) diff -q <(norm "$f" "$A") <(norm "$B/$f" "$B") >/dev/null || { echo "differs (normalized): $f"; bad=1; } ;;
        esac
    done
    # Exit codes of every command, and files only the second folder has.
    cmp -s "$A/rc.txt" "$B/rc.txt" || { echo "differs: rc.txt"; bad=1; }
    for f in $(cd "$B" && find . -type f \( -name "*.csv" -o -name "*.png" -o -name "*.md" -o -name "*.json" -o -name "*.svg" \) -not -path "*/runs/*"); do
        [ -f "$A/$f" ] || { echo "only in $B: $f"; bad=1; }
    done
    echo "$n files compared"
    exit $bad
fi
B=$1; O=$2
rm -rf "$O"; mkdir -p "$O"
cat > "$O/phase.toml" <<'TOML'
name = "phase"
description = "small phase grid"
[base]
arch = "mlp"
activation = "tanh"
depth = 8
width = 32
batch = 16
seeds = 2
[grid]
sigma-w2 = [0.5, 1.5, 3.0]
sigma-b2 = [0.0, 0.2]
TOML
r() { name=$1; shift; "$B" "$@" --quiet --out "$O/$name" > "$O/$name.stdout" 2> "$O/$name.stderr"; echo "$name rc=$?" >> "$O/rc.txt"; }
r mlp run --init he-normal --activation relu --depth 10 --width 64 --batch 32 --seeds 3
r mlp_tanh_bias run --init xavier-normal --activation tanh --depth 10 --width 64 --batch 32 --seeds 2 --sigma-b 0.1 --hist-layers 1,5
r mlp_ln run --init lecun-normal --activation tanh --depth 8 --width 32 --batch 16 --seeds 2 --norm layer
r mlp_bn run --init he-normal --activation relu --depth 8 --width 32 --batch 16 --seeds 2 --norm batch
r mlp_lsuv_ce run --init lsuv --activation relu --depth 8 --width 32 --batch 16 --seeds 2 --loss cross-entropy
r mlp_prune run --init he-normal --activation relu --depth 8 --width 32 --batch 16 --seeds 2 --prune snip:sparsity=0.5
r mlp_jac run --init orthogonal --activation tanh --depth 8 --width 32 --batch 16 --seeds 2 --jacobian
r mlp_critical run --init critical --activation tanh --depth 8 --width 32 --batch 16 --seeds 2
r resmlp run --arch resmlp --init he-normal --activation relu --depth 6 --width 32 --batch 16 --seeds 2
r resmlp_fixup run --arch resmlp --init fixup --activation relu --depth 6 --width 32 --batch 16 --seeds 2
r cnn run --arch cnn --init he-normal --activation relu --depth 4 --width 8 --batch 8 --seeds 2
r rescnn run --arch rescnn --init he-normal --activation relu --depth 3 --width 8 --batch 8 --seeds 2
r rnn run --arch rnn --init orthogonal --activation tanh --depth 6 --width 32 --batch 16 --seeds 2
r transformer run --arch transformer --init xavier-normal --activation gelu --depth 3 --width 32 --heads 4 --seq-len 8 --batch 4 --seeds 2
r compare compare --inits xavier-normal,he-normal --activations tanh,relu --depth 6 --width 32 --batch 16 --seeds 2
r auto run --init auto --activation selu --depth 6 --width 32 --batch 16 --seeds 2
r recommend recommend --activation tanh --depth 6 --width 32 --batch 16 --seeds 2
r train train --inits he-normal,xavier-normal --depth 6 --width 32 --batch 16 --task mixture --lr 0.01 --steps 20 --seeds 2
r coord coord-check --widths 32,64,128 --depth 3 --params standard,mup --seeds 2
r coord_depth coord-check --arch resmlp --depths 2,4,8 --width 32 --params standard --seeds 2
r suite suite "$O/phase.toml"
for k in 1 2 3; do
    "$B" suite "$O/phase.toml" --quiet --shard "$k/3" --out "$O/shard$k" > /dev/null 2>> "$O/shard.stderr"
    echo "shard$k rc=$?" >> "$O/rc.txt"
done
"$B" merge "$O/merged" "$O/shard1" "$O/shard2" "$O/shard3" --quiet > /dev/null 2>> "$O/shard.stderr"
echo "merge rc=$?" >> "$O/rc.txt"
