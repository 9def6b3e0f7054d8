#!/usr/bin/env bash
# Inference-engine benchmark: BERT-base shape (12 x 768, FFN 3072) with random
# weights, bf16 and fp32, batch 32 x 128 and 1 x 128, median of ITERS runs
# (default 7) after 2 warm-up runs. Prints the tables and writes the same
# rows as JSON to bench/results/. Usage: bench/engine.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
cli=${1:-build}/unplug
mkdir -p bench/results
for prec in bf16 fp32; do
  echo "== BERT-base, $prec"
  "$cli" bench --config bench/configs/bert-base.json --random --precision "$prec" \
    --batch 1,32 --len 128 --iters "${ITERS:-7}" --warmup 2 --json > "bench/results/engine-bert-base-$prec.json"
  python3 - "bench/results/engine-bert-base-$prec.json" <<'PY'
import json, sys
print(f"{'batch':>6} {'len':>5} {'latency_ms':>11} {'seq/s':>8} {'tokens/s':>9} {'TFLOP/s':>8}")
for r in json.load(open(sys.argv[1])):
    print(f"{r['batch']:>6} {r['len']:>5} {r['latency_ms']:>11.2f} {r['seq_per_s']:>8.2f} {r['tokens_per_s']:>9.0f} {r['tflops']:>8.3f}")
PY
done
