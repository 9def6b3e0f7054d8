#!/usr/bin/env bash
# FFN-only experts against FFN + attention-head experts (docs/RESULTS.md):
# on each task's FFN expert from bench/tasks.sh (OUT/TASK/expert.expert), prune
# a share of the model's attention heads (16 in unplug-mini, 72 in all-MiniLM-L6-v2) by head attribution (actxgrad, and random
# as the control), re-tune prompt and head with those heads masked, then
# `unplug eval` against the tuned model (report split, speed-up).
# Writes OUT/heads.tsv: task method heads_pruned val_before val_after report speedup_32x128 speedup_1x128
# Usage: bench/heads.sh DATA_DIR [OUT_DIR]      (default build/results)
# Env: BUILD (build), MODEL, TASKS ("sst2 trec"), SHARES ("0.125 0.25 0.5"), METHODS ("actxgrad random"),
#      EVAL_ONLY (1: keep the head experts of an earlier run, re-run only eval),
#      RETUNE_ARGS (re-tuning options for every task, as in bench/tasks.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:?usage: bench/heads.sh DATA_DIR [OUT_DIR]}
out=${2:-build/results}
cli=${CLI:-${BUILD:-build}/unplug}
model=${MODEL:-models/unplug-mini}
retune() { [ -n "${RETUNE_ARGS:-}" ] && { echo "$RETUNE_ARGS"; return; }; case $1 in sst2) echo --retune-epochs 2 --max-train 16000 ;; *) echo --retune-epochs 3 ;; esac; }
printf "task\tmethod\theads_pruned\tval_ffn_expert\tval_after\treport\tspeedup_32x128\tspeedup_1x128\n" >"$out/heads.tsv"
for task in ${TASKS:-sst2 trec}; do
  d=$out/$task
  for method in ${METHODS:-actxgrad random}; do
    for share in ${SHARES:-0.125 0.25 0.5}; do
      o=$d/heads-$method-$share
      # shellcheck disable=SC2046
      [ "${EVAL_ONLY:-0}" = 1 ] || "$cli" localize --model "$model" --task "$task" --data "$data" --expert "$d/expert.expert" --keep-ffn \
        --heads "$share" --method "$method" --max-examples 2000 $(retune "$task") --out "$o.expert" >"$o.out" 2>"$o.err"
      "$cli" eval --model "$model" --task "$task" --data "$data" --expert "$o.expert" --full "$d/tuned.expert" >"$o.eval"
      python3 - "$o.out" "$o.eval" "$task" "$method" "$share" >>"$out/heads.tsv" <<'PY'
import re, sys
out, ev = open(sys.argv[1]).read(), open(sys.argv[2]).read()
val = re.search(r"validation ([\d.-]+) \(full ([\d.-]+)\)", out)
acc = re.search(r"^(?:accuracy|matthews)\s+[\d.-]+\s+([\d.-]+)", ev, re.M)
sp = re.findall(r"speed-up ([\d.]+)x", ev)
print("\t".join([sys.argv[3], sys.argv[4], sys.argv[5], val.group(2), val.group(1), acc.group(1), sp[0], sp[1]]))
PY
      tail -1 "$out/heads.tsv"
    done
  done
done
column -t "$out/heads.tsv"
