#!/usr/bin/env bash
# Inference-engine benchmark: BERT-base shape with random weights, bf16 and
# fp32, batch 32 x 128 and 1 x 128, median of several runs. Writes JSON to
# bench/results/ and prints the tables. Usage: bench/engine.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
cli=$build/unplug
out=bench/results
mkdir -p "$out"
for prec in bf16 fp32; do
  echo "== BERT-base, $prec"
  "$cli" bench --config bench/configs/bert-base.json --random --precision "$prec" \
    --batch 1,32 --len 128 --iters "${ITERS:-7}" --warmup 2
  "$cli" bench --config bench/configs/bert-base.json --random --precision "$prec" \
    --batch 1,32 --len 128 --iters "${ITERS:-7}" --warmup 2 --json > "$out/engine-bert-base-$prec.json"
done
