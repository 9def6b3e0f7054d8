#!/usr/bin/env bash
# Speed-up of each task's pruned expert over its tuned model (every FFN neuron
# kept) as the batch grows at a fixed length and as the length grows at a
# fixed batch size, from the experts bench/tasks.sh left in
# OUT/TASK/{tuned,expert}.expert. Writes OUT/scaling.tsv
#   task  batch  tokens  full_ms  expert_ms  speedup
# which `unplug report` draws.
#
# `unplug eval` times only 32 x 128 and 1 x 128, so the timing is the small C
# program bench/scaling_timer.c (build/bench_scaling_timer): eval's method (views of
# the base with each task's head and compacted FFN, random token ids, rows of
# the full length, medians of forwards in blocks that alternate between the
# two models over three rounds: up_expert_time, what eval calls) at any
# batch x length, so both see the same machine state. A length must hold [CLS] + the prompt (20 vectors): 16 is
# below that, so the lengths start at 32; max_position_embeddings (512 for
# models/unplug-mini) bounds them, past the tasks' max_len of 128.
#
# Usage: bench/scaling.sh [OUT_DIR]     (default build/results)
# Env:   BUILD (build), MODEL (models/unplug-mini), TASKS (every OUT/TASK with both experts),
#        BATCHES (1,2,4,8,16,32,64) at BATCH_LEN (128) tokens, LENS (32,64,128,256,512) at LEN_BATCH (8),
#        ITERS (15)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-build/results}
build=${BUILD:-build}
model=${MODEL:-models/unplug-mini}
batches=${BATCHES:-1,2,4,8,16,32,64}
batch_len=${BATCH_LEN:-128}
lens=${LENS:-32,64,128,256,512}
len_batch=${LEN_BATCH:-8}
iters=${ITERS:-15}
[ -d "$out" ] || { echo "bench/scaling.sh: no results directory $out (run bench/tasks.sh first)" >&2; exit 1; }
if [ -z "${TASKS:-}" ]; then
  TASKS=
  for d in "$out"/*/; do
    t=$(basename "$d")
    [ -f "$d/tuned.expert" ] && [ -f "$d/expert.expert" ] && TASKS="$TASKS $t"
  done
fi
[ -n "${TASKS// /}" ] || { echo "bench/scaling.sh: no $out/TASK/ holds tuned.expert and expert.expert" >&2; exit 1; }

timer=$build/bench_scaling_timer   # bench/scaling_timer.c, built with the project
[ -x "$timer" ] || { echo "bench/scaling.sh: $timer not built (make)" >&2; exit 1; }

shapes=()
add_shape() { case " ${shapes[*]} " in *" $1 "*) ;; *) shapes+=("$1") ;; esac; } # 8x128 is in both sweeps: once
for b in ${batches//,/ }; do add_shape "${b}x$batch_len"; done
for t in ${lens//,/ }; do add_shape "${len_batch}x$t"; done
tsv=$out/scaling.tsv
trap 'rm -f "$tsv.tmp"' EXIT
load=$(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo 0) # a lagging average: the timer checks each shape itself
{
  echo "# bench/scaling.sh: $model, median of $iters forwards, $(nproc) cores, load $load at the start, $(date -u +%Y-%m-%d)"
  printf 'task\tbatch\ttokens\tfull_ms\texpert_ms\tspeedup\n'
} >"$tsv.tmp"
t0=$(date +%s)
for task in $TASKS; do
  echo "== $task" >&2
  "$timer" "$model" "$out/$task/tuned.expert" "$out/$task/expert.expert" "$task" "$iters" "${shapes[@]}" | tee -a "$tsv.tmp"
done
echo "# load $(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo 0) at the end, $(($(date +%s) - t0)) s" >>"$tsv.tmp"
mv "$tsv.tmp" "$tsv"
echo "== wrote $tsv ($(($(date +%s) - t0)) s)" >&2
