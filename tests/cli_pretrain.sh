#!/usr/bin/env bash
# Pretraining as a user runs it, on a tiny model and generated text (seconds):
# the MLM loss falls; a run stopped and resumed from its checkpoint logs the
# same losses as an uninterrupted one; the exported directory loads and
# evaluates; bad arguments give clear errors.
set -u
. "${UP_SOURCE_DIR:?}/tests/lib.sh"

vocab=$src/tests/data/models/bert-f32-gelu/vocab.txt
cat >"$tmp/cfg.json" <<'J'
{"model_type": "bert", "vocab_size": 128, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
 "intermediate_size": 64, "max_position_embeddings": 64, "type_vocab_size": 2, "hidden_act": "gelu"}
J
# a small language with structure: subject verb object sentences
python3 - "$tmp" <<'PY'
import random, sys
r = random.Random(7)
subj = ["the film", "this movie", "the story", "that play", "the act"]
verb = ["is", "was"]
adj = ["good", "bad", "fine", "great", "very good", "not bad", "un ##able"]
def line():
    return " ".join(f"{r.choice(subj)} {r.choice(verb)} {r.choice(adj)} ." for _ in range(r.randint(3, 8)))
with open(sys.argv[1] + "/train.txt", "w") as f:
    for _ in range(3000): f.write(line().replace(" ##", "") + "\n")
with open(sys.argv[1] + "/held.txt", "w") as f:
    for _ in range(200): f.write(line().replace(" ##", "") + "\n")
PY
# under sanitizers (several times slower) a shorter schedule with a weaker
# learning bar; the resume and signal checks are the same
if [ "${UP_SANITIZED:-0}" = 1 ]; then steps=300 stop=120 every=150 min_acc=0.2 max_ratio=0.8
else steps=1000 stop=400 every=500 min_acc=0.35 max_ratio=0.6; fi
common=(--train "$tmp/train.txt" --heldout "$tmp/held.txt" --vocab "$vocab" --config "$tmp/cfg.json"
        --seq-len 32 --batch 16 --steps $steps --warmup 50 --lr 3e-3 --eval-every $every --log-every 50 --seed 3 --precision fp32)

# 1. loss falls
"$cli" pretrain "${common[@]}" --out "$tmp/a" >"$tmp/a.out" 2>"$tmp/a.err" || { bad "pretrain exit"; cat "$tmp/a.err" >&2; }
python3 - "$tmp/a/train_log.jsonl" $min_acc $max_ratio <<'PY' && ok || bad "MLM loss did not fall"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
losses = [r["loss"] for r in rows if "loss" in r]
accs = [r["heldout_acc"] for r in rows if "heldout_acc" in r]
print("losses", [round(x, 3) for x in losses], "held-out acc", accs)
assert losses[-1] < float(sys.argv[3]) * losses[0], "loss"
assert accs[-1] > float(sys.argv[2]), "accuracy"
PY
grep -q "step $steps/$steps" "$tmp/a.err" && ok || bad "no progress line"

# 2. stop part-way (checkpoint), resume to the end: the same loss curve
"$cli" pretrain "${common[@]}" --out "$tmp/b" --checkpoint "$tmp/b.ckpt" --ckpt-every 1000 --stop-after $stop >/dev/null 2>"$tmp/b1.err" || bad "first half exit"
[ -s "$tmp/b.ckpt" ] && ok || bad "no checkpoint written at stop"
"$cli" pretrain "${common[@]}" --out "$tmp/b" --checkpoint "$tmp/b.ckpt" --ckpt-every 1000 >/dev/null 2>"$tmp/b2.err" || bad "resume exit"
grep -q "resumed from" "$tmp/b2.err" && ok || bad "resume not reported"
python3 - "$tmp/a/train_log.jsonl" "$tmp/b/train_log.jsonl" $steps <<'PY' && ok || bad "resumed run differs"
import json, sys
a, b = ([json.loads(l) for l in open(p)] for p in sys.argv[1:3])
la = {r["step"]: r["step_loss"] for r in a if "step_loss" in r}
lb = {r["step"]: r["step_loss"] for r in b if "step_loss" in r}
steps = sorted(set(la) & set(lb))
assert steps and max(steps) == int(sys.argv[3]), steps
ha = [r["heldout_loss"] for r in a if "heldout_loss" in r]
hb = [r["heldout_loss"] for r in b if "heldout_loss" in r]
assert abs(ha[-1] - hb[-1]) < 1e-5, (ha, hb)
d = max(abs(la[s] - lb[s]) for s in steps)
print("steps compared", steps, "max diff", d)
assert d < 1e-5, d
PY
# a checkpoint from another batch size is refused
"$cli" pretrain "${common[@]}" --batch 8 --out "$tmp/c" --checkpoint "$tmp/b.ckpt" >/dev/null 2>"$tmp/c.err" && bad "batch mismatch accepted"
grep -q "trained with batch 16x32" "$tmp/c.err" && ok || { bad "batch mismatch message"; cat "$tmp/c.err" >&2; }

# 2b. Ctrl-C: the run saves its checkpoint and exits with 130
"$cli" pretrain "${common[@]}" --steps 1000000 --out "$tmp/s" --checkpoint "$tmp/s.ckpt" --ckpt-every 1000000 >/dev/null 2>"$tmp/s.err" &
pid=$!
# a background job of a script starts with SIGINT ignored until the program
# installs its handler, so wait for training to run before sending it (a
# slow machine may take a while to get there); never leave the run behind
for i in $(seq 1200); do grep -q "step 50/" "$tmp/s.err" 2>/dev/null && break; sleep 0.1; done
if grep -q "step 50/" "$tmp/s.err"; then kill -INT $pid; else bad "no progress within 120 s"; kill -KILL $pid; fi
for i in $(seq 600); do kill -0 $pid 2>/dev/null || break; sleep 0.1; done
kill -0 $pid 2>/dev/null && { bad "still running 60 s after SIGINT"; kill -KILL $pid; }
wait $pid; rc=$?
[ $rc -eq 130 ] && ok || bad "SIGINT exit code $rc"
grep -q "stopping at step .*checkpoint saved" "$tmp/s.err" && ok || { bad "SIGINT message"; tail -3 "$tmp/s.err" >&2; }
[ -s "$tmp/s.ckpt" ] && [ -s "$tmp/s/model.safetensors" ] && ok || bad "SIGINT left no checkpoint or model"

# 3. the export loads as a BertForMaskedLM directory and evaluates
"$cli" info "$tmp/a" >"$tmp/info" 2>&1 && ok || { bad "info on export"; cat "$tmp/info" >&2; }
grep -q '"BertForMaskedLM"' "$tmp/a/config.json" && ok || bad "architectures"
"$cli" mlm-eval --model "$tmp/a" --text "$tmp/held.txt" --seq-len 32 --batch 16 --eval-batches 4 >"$tmp/ev" 2>&1 && ok || bad "mlm-eval exit"
grep -q "accuracy:" "$tmp/ev" && ok || bad "mlm-eval output"

# 4. errors
"$cli" pretrain --train "$tmp/nope.txt" --vocab "$vocab" --config "$tmp/cfg.json" --seq-len 32 --out "$tmp/d" >/dev/null 2>"$tmp/d.err" && bad "missing text accepted"
grep -q "nope.txt: cannot open" "$tmp/d.err" && ok || { bad "missing text message"; cat "$tmp/d.err" >&2; }
"$cli" pretrain --train "$tmp/train.txt" --vocab "$src/tests/data/vocab/bert-base-uncased.txt" --config "$tmp/cfg.json" --out "$tmp/d" >/dev/null 2>"$tmp/d.err" && bad "vocab mismatch accepted"
grep -q "30522 tokens but the model's vocab_size is 128" "$tmp/d.err" && ok || { bad "vocab mismatch message"; cat "$tmp/d.err" >&2; }

finish
