#!/usr/bin/env bash
# The five-task benchmark behind docs/RESULTS.md: for SST-2, MRPC, RTE, CoLA
# and TREC, on a GLUE data directory (e.g. ../shared/data):
#   tune      prompt tuning on the frozen default model  -> OUT/TASK/tuned.expert
#   localize  actxgrad scores, fixed-ratio sweep, binary search of the FFN
#             pruning ratio (within TOLERANCE validation points), each ratio
#             judged after re-tuning prompt and head on the pruned model
#             (RETUNE=0 turns that off)  -> expert.expert
#   compare   the same sweep with the random, weight and activation scores
#   eval      full vs expert on the report split, speed-up at 32x128 and 1x128
# and writes OUT/results.md (the tables) and OUT/sweep.tsv, OUT/TASK/*.
#
# Usage: bench/tasks.sh DATA_DIR [OUT_DIR]     (default OUT_DIR build/results)
# Env:   BUILD (build), MODEL (models/unplug-mini), TASKS ("sst2 mrpc rte cola trec"),
#        TUNE_ARGS (extra tune options), TOLERANCE (1.0), SWEEP (0.3,0.5,0.7),
#        METHODS ("random weight activation"), MAX_EXAMPLES (attribution examples, 0 = all),
#        TABLES_ONLY (1: only rebuild OUT/results.md from the files of an earlier run),
#        SKIP_TUNE (1: keep OUT/TASK/tuned.expert from an earlier run),
#        EVAL_ONLY (1: keep every expert of an earlier run, re-run only eval and the tables;
#                   for re-measuring after an engine change),
#        RETUNE (1: re-tune in the search; sst2 2 epochs on 16,000 examples, others 3 epochs),
#        RETUNE_ARGS (the re-tuning options for every task instead, e.g. "--retune-epochs 1 --max-train 4000"),
#        LOCALIZE_ARGS (more options of the actxgrad localize, e.g. "--search-steps 5")
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:?usage: bench/tasks.sh DATA_DIR [OUT_DIR]}
out=${2:-build/results}
cli=${BUILD:-build}/unplug
model=${MODEL:-models/unplug-mini}
tasks=${TASKS:-sst2 mrpc rte cola trec}
tol=${TOLERANCE:-1.0}
sweep=${SWEEP:-0.3,0.5,0.7}
methods=${METHODS-random weight activation}   # METHODS= (empty): no comparison sweeps
maxex=${MAX_EXAMPLES:-0}
[ -x "$cli" ] || { echo "bench/tasks.sh: $cli not built (make)" >&2; exit 1; }
mkdir -p "$out"
eval_only=${EVAL_ONLY:-0}
[ "${TABLES_ONLY:-0}" = 1 ] && tasks_to_run= || tasks_to_run=$tasks
[ -n "$tasks_to_run" ] && [ "$eval_only" != 1 ] && : >"$out/sweep.tsv"

epochs_of() { case $1 in sst2) echo 2 ;; *) echo 8 ;; esac; }
retune_of() {
  [ "${RETUNE:-1}" = 0 ] && return
  [ -n "${RETUNE_ARGS:-}" ] && { echo "$RETUNE_ARGS"; return; }
  case $1 in sst2) echo --retune-epochs 2 --max-train 16000 ;; *) echo --retune-epochs 3 ;; esac
}

for task in $tasks_to_run; do
  d=$out/$task
  mkdir -p "$d"
  common=(--model "$model" --task "$task" --data "$data")
  t0=$(date +%s)
  if [ "$eval_only" = 1 ]; then
    echo "== $task: eval (experts of the earlier run)"
    "$cli" eval "${common[@]}" --expert "$d/expert.expert" --full "$d/tuned.expert" --iters 9 --json-out "$d/eval.json" | tee "$d/eval.out"
    continue
  fi
  if [ "${SKIP_TUNE:-0}" = 1 ] && [ -f "$d/tuned.expert" ]; then
    echo "== $task: tuned earlier"
    t0=$((t0 - $(cat "$d/tune.seconds" 2>/dev/null || echo 0)))
  else
  echo "== $task: tune"
  # shellcheck disable=SC2086
  "$cli" tune "${common[@]}" --out "$d/tuned.expert" --epochs "$(epochs_of "$task")" --patience 3 ${TUNE_ARGS:-} \
    >"$d/tune.out" 2> >(tee "$d/tune.err" | grep -E "^tuning|epoch [0-9]+:|early stop" >&2)
  echo "$(($(date +%s) - t0))" >"$d/tune.seconds"
  fi
  cat "$d/tune.out"
  echo "== $task: localize (actxgrad)"
  mx=()
  [ "$maxex" != 0 ] && mx=(--max-examples "$maxex")
  "$cli" localize "${common[@]}" --expert "$d/tuned.expert" --out "$d/expert.expert" --tolerance "$tol" \
    --sweep "$sweep" --scores "$d/scores.tsv" --curve "$d/curve.tsv" "${mx[@]}" $(retune_of "$task") --lr 3e-3 --head-lr 3e-3 ${LOCALIZE_ARGS:-} \
    --json-out "$d/localize.json" >"$d/localize.out" 2> >(tee "$d/localize.err" | grep -vE "^attribution [0-9]+/" >&2)
  grep -v "^sweep" "$d/localize.out"
  grep "^sweep" "$d/localize.out" | sed "s/^sweep/$task/" >>"$out/sweep.tsv"
  for method in $methods; do
    echo "== $task: fixed-ratio sweep ($method)"
    "$cli" localize "${common[@]}" --expert "$d/tuned.expert" --out "$d/$method.expert" --method "$method" \
      --ratio 0 --sweep "$sweep" "${mx[@]}" >"$d/$method.out" 2>"$d/$method.err"
    grep "^sweep" "$d/$method.out" | sed "s/^sweep/$task/" | tee -a "$out/sweep.tsv"
  done
  echo "== $task: eval"
  "$cli" eval "${common[@]}" --expert "$d/expert.expert" --full "$d/tuned.expert" --iters 9 --json-out "$d/eval.json" | tee "$d/eval.out"
  echo "$(($(date +%s) - t0))" >"$d/seconds"
done

# ---- tables ----
cfg=$model/config.json
num() { grep -o "\"$1\": *[0-9]*" "$cfg" | grep -o "[0-9]*$"; }
C=$(num hidden_size) F=$(num intermediate_size) L=$(num num_hidden_layers)
{
  echo "| task | metric | majority | tuned full | expert | delta | FFN pruned | encoder params removed | speed-up 32x128 | speed-up 1x128 | time |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|"
  for task in $tasks; do
    d=$out/$task
    maj=$(grep -o "majority class [0-9.]*" "$d/tune.out" | grep -o "[0-9.]*$")
    metric=accuracy
    [ "$task" = cola ] && metric=matthews
    full=$(awk -v m="$metric" '$1 == m {print $2}' "$d/eval.out")
    exp=$(awk -v m="$metric" '$1 == m {print $3}' "$d/eval.out")
    kept=$(grep -o "([0-9]* of [0-9]* neurons kept)" "$d/eval.out" | grep -o "[0-9]*" | head -1)
    s32=$(grep "batch 32 x 128" "$d/eval.out" | grep -o "speed-up [0-9.]*x" | grep -o "[0-9.]*x")
    s1=$(grep "latency 1 x 128" "$d/eval.out" | grep -o "speed-up [0-9.]*x" | grep -o "[0-9.]*x")
    awk -v t="$task" -v m="$metric" -v maj="$maj" -v f="$full" -v e="$exp" -v k="$kept" -v C="$C" -v F="$F" -v L="$L" \
      -v s32="$s32" -v s1="$s1" -v sec="$(cat "$d/seconds")" 'BEGIN {
        removed = L * F - k; enc = L * (4 * C * C + 4 * C + 2 * C * F + F + C + 4 * C)
        printf "| %s | %s | %.2f | %.2f | %.2f | %+.2f | %.1f%% | %.1f%% | %s | %s | %d s |\n", t, m, maj, f, e, e - f,
               100 * removed / (L * F), 100 * removed * (2 * C + 1) / enc, s32, s1, sec }'
  done
  echo
  echo "Report-split metric at fixed FFN pruning ratios (global ranking), by attribution method:"
  echo
  echo "| task | method | $(echo "$sweep" | sed 's/,/ | /g') |"
  echo "|---|---|$(echo "$sweep" | sed 's/[^,]*/---/g; s/,/|/g')|"
  awk -F'\t' '{ key = $1 " | " $2; if (!(key in row)) order[n++] = key; row[key] = row[key] sprintf(" %.2f |", $5) }
    END { for (i = 0; i < n; i++) print "| " order[i] " |" row[order[i]] }' "$out/sweep.tsv"
} >"$out/results.md"
echo "== tables ($out/results.md)"
cat "$out/results.md"
