#!/usr/bin/env bash
# What FFN pruning alone can buy at a model's shape: forward time with every
# layer's FFN cut to F neurons (random weights, bf16), at batch 32 x 128 and
# 1 x 128. The widths are measured in ROUNDS rounds, in a new order each
# round, and each cell is the median of its rounds (a noisy machine moves all
# widths alike within a round).
# Usage: bench/width.sh CONFIG.json F1,F2,...      e.g. bench/configs/minilm-l6.json 1536,1152,768,538,384,154
# Env:   BUILD (build), ROUNDS (3), ITERS (7 forwards per cell and round)
set -euo pipefail
cd "$(dirname "$0")/.."
cfg=${1:?usage: bench/width.sh CONFIG.json F1,F2,...}
widths=${2:?usage: bench/width.sh CONFIG.json F1,F2,...}
cli=${BUILD:-build}/unplug
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
IFS=, read -r -a ws <<<"$widths"
for r in $(seq 1 "${ROUNDS:-3}"); do
  # rotate the order by the round number
  n=${#ws[@]}
  for i in $(seq 0 $((n - 1))); do
    f=${ws[$(((i + r) % n))]}
    python3 -c "import json,sys; c=json.load(open(sys.argv[1])); c['intermediate_size']=int(sys.argv[2]); json.dump(c,open(sys.argv[3],'w'))" \
      "$cfg" "$f" "$tmp/c.json"
    "$cli" bench --config "$tmp/c.json" --random --batch 1,32 --len 128 --iters "${ITERS:-7}" --warmup 2 --json 2>/dev/null |
      python3 -c "import json,sys; [print(sys.argv[1], r['batch'], r['latency_ms']) for r in json.load(sys.stdin)]" "$f" >>"$tmp/all"
  done
done
full=${ws[0]}
echo "# bench/width.sh $cfg: median of ${ROUNDS:-3} rounds x ${ITERS:-7} forwards, $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'), $(date -u +%F)"
python3 - "$tmp/all" "$full" "$widths" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
full, widths = int(sys.argv[2]), [int(w) for w in sys.argv[3].split(",")]
med = {(int(f), int(b)): statistics.median(float(x) for g, c, x in rows if int(g) == int(f) and int(c) == int(b))
       for f, b, _ in rows}
print("| F | FFN pruned | 32 x 128 ms | speed-up | 1 x 128 ms | speed-up |")
print("|---:|---:|---:|---:|---:|---:|")
for f in widths:
    print(f"| {f} | {100 * (1 - f / full):.0f}% | {med[(f, 32)]:.1f} | {med[(full, 32)] / med[(f, 32)]:.2f}x "
          f"| {med[(f, 1)]:.2f} | {med[(full, 1)] / med[(f, 1)]:.2f}x |")
PY
