#!/usr/bin/env bash
# Attribution throughput: the activation x gradient pass of `unplug localize`
# over SST-2's whole training split (forward + backward of every example,
# running sums of |h dlogp/dh| per FFN neuron) with the default model, and the
# whole localize command (attribution + ratio search) wall time.
# Usage: bench/attribution.sh DATA_DIR [BUILD_DIR]
# Uses build/results/sst2/tuned.expert when bench/tasks.sh made it, else tunes
# a quick one (2,000 examples, 1 epoch: the pass costs the same for any prompt).
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:?usage: bench/attribution.sh DATA_DIR [BUILD_DIR]}
cli=${2:-build}/unplug
model=${MODEL:-models/unplug-mini}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
expert=build/results/sst2/tuned.expert
if [ ! -f "$expert" ]; then
  expert=$tmp/sst2.expert
  "$cli" tune --model "$model" --task sst2 --data "$data" --out "$expert" --max-train 2000 --epochs 1 >/dev/null 2>&1
fi
mkdir -p bench/results
t0=$(date +%s.%N)
"$cli" localize --model "$model" --task sst2 --data "$data" --expert "$expert" --out "$tmp/x.expert" \
  >"$tmp/out" 2>"$tmp/err"
t1=$(date +%s.%N)
line=$(grep -o "attribution [0-9]*/[0-9]* examples *[0-9]* examples/s" "$tmp/err" | tail -n 1)
asec=$(grep -o '"attribution_seconds": [0-9.]*' <("$cli" expert show "$tmp/x.expert") | grep -o "[0-9.]*$")
{
  echo "# bench/attribution.sh: SST-2 train split, $model, $(nproc) cores, $(date -u +%F)"
  echo "attribution pass: $line, $asec s"
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "whole localize (attribution + ratio search + write): %.1f s\n", b - a }'
  grep "^task" "$tmp/out"
} | tee bench/results/attribution-sst2.txt
