#!/usr/bin/env bash
# Training-engine benchmark: full masked-LM steps (forward, MLM head on 15% of
# tokens, backward, AdamW) on random weights, bf16, for the default model's
# shape (4 x 256, FFN 1024, vocab 30522) and BERT-base's. Mean of ITERS steps
# (default 4) after one warm-up step. Usage: bench/train.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
cli=${1:-build}/unplug
mkdir -p bench/results
echo "== default shape (unplug-mini), bf16"
"$cli" bench --train-step --config bench/configs/unplug-mini.json --batch 64 --len 128 --iters "${ITERS:-4}" --warmup 1 --precision bf16 | tee bench/results/train-mini-bf16.txt
echo "== BERT-base shape, bf16"
"$cli" bench --train-step --config bench/configs/bert-base.json --batch 16 --len 128 --iters "${ITERS:-4}" --warmup 1 --precision bf16 | tee bench/results/train-bert-base-bf16.txt
