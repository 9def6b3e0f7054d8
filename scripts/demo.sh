#!/usr/bin/env bash
# The main job (make demo): what the engine does today, end to end, on files
# in this repository. Usage: scripts/demo.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
cli=${1:-build}/unplug
model=tests/data/models/bert-f32-gelu_new-cls
step() { printf '\n== %s\n$ %s\n' "$1" "$2"; }

step "1. a Hugging Face BERT checkpoint (tiny, random, BertForSequenceClassification layout)" "unplug info $model"
"$cli" info "$model"

step "2. BertTokenizer-identical tokenization (bert-base-uncased vocab)" \
  "printf 'Ångström café — naïve résumé!\tIt\x27s 中文.\n' | unplug tokenize --vocab tests/data/vocab/bert-base-uncased.txt --pairs"
printf 'Ångström café — naïve résumé!\tIt'"'"'s 中文.\n' |
  "$cli" tokenize --vocab tests/data/vocab/bert-base-uncased.txt --pairs

step "3. embeddings and logits as JSON Lines (first values shown)" \
  "printf 'a good film\nthe story was bad\n' | unplug embed --model $model"
printf 'a good film\nthe story was bad\n' | "$cli" embed --model "$model" |
  python3 -c 'import json,sys
for l in sys.stdin:
    r = json.loads(l)
    print({k: [round(x, 4) for x in v[:4]] + (["..."] if len(v) > 4 else []) for k, v in r.items()})'

step "4. a few seconds of masked-LM pretraining (tiny model, generated text)" \
  "unplug pretrain --train train.txt --heldout held.txt --vocab ... --config tiny.json --steps 1000"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 - "$tmp" <<'PY'
import random, sys
r = random.Random(1)
subj, verb = ["the film", "this movie", "the story", "that play"], ["is", "was"]
adj = ["good", "bad", "fine", "great", "very good", "not bad"]
line = lambda: " ".join(f"{r.choice(subj)} {r.choice(verb)} {r.choice(adj)} ." for _ in range(6))
open(sys.argv[1] + "/train.txt", "w").write("\n".join(line() for _ in range(3000)) + "\n")
open(sys.argv[1] + "/held.txt", "w").write("\n".join(line() for _ in range(200)) + "\n")
PY
cat >"$tmp/tiny.json" <<'J'
{"vocab_size": 128, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 64, "max_position_embeddings": 64}
J
"$cli" pretrain --train "$tmp/train.txt" --heldout "$tmp/held.txt" --vocab tests/data/models/bert-f32-gelu/vocab.txt \
  --config "$tmp/tiny.json" --out "$tmp/tiny" --seq-len 32 --batch 16 --steps 1000 --warmup 50 --lr 3e-3 \
  --eval-every 500 --log-every 250 --precision fp32 2>&1 | grep -v "^unplug: info: .*vocab\|missing fields"

step "5. a task expert: prompt tuning -> attribution -> pruning search -> eval (tiny model, generated task)" \
  "unplug tune ...; unplug localize ...; unplug eval ..."
python3 scripts/toy-task.py "$tmp"
data=(--train "$tmp/train.tsv" --val "$tmp/val.tsv" --test "$tmp/test.tsv" --task toy)
"$cli" tune --model tests/data/models/bert-f32-gelu "${data[@]}" --out "$tmp/toy.expert" --prompts 4 --max-len 32 \
  --epochs 4 --batch 16 --lr 1e-2 --head-lr 1e-2 2>/dev/null
"$cli" localize --model tests/data/models/bert-f32-gelu --expert "$tmp/toy.expert" "${data[@]}" --out "$tmp/toy-pruned.expert" 2>&1 |
  grep -v "^attribution\|^unplug: info"
"$cli" eval --model tests/data/models/bert-f32-gelu --expert "$tmp/toy-pruned.expert" "${data[@]}" --iters 3

step "6. forward-pass speed, BERT-base shape with random weights (bf16 on AMX where present)" \
  "unplug bench --config bench/configs/bert-base.json --random --batch 1,8 --len 128 --iters 3"
"$cli" bench --config bench/configs/bert-base.json --random --batch 1,8 --len 128 --iters 3
