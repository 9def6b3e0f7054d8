#!/usr/bin/env bash
# tune -> localize -> eval -> expert show on a tiny model and a generated task
# (seconds), as a user runs them; plus the errors for bad task files and
# mismatched experts.
set -u
. "${UP_SOURCE_DIR:?}/tests/lib.sh"
M=$src/tests/data/models/bert-f32-gelu
python3 "$src/scripts/toy-task.py" "$tmp"
data=(--train "$tmp/train.tsv" --val "$tmp/val.tsv" --test "$tmp/test.tsv" --task toy)

"$cli" tune --model "$M" "${data[@]}" --out "$tmp/toy.expert" --prompts 4 --max-len 32 --epochs 4 --batch 16 \
  --lr 1e-2 --head-lr 1e-2 >"$tmp/tune.out" 2>"$tmp/tune.err" || { bad "tune exit"; cat "$tmp/tune.err" >&2; }
python3 - "$tmp/tune.out" <<'PY' && ok || bad "tuned model does not beat the majority class: $(cat "$tmp/tune.out")"
import re, sys
s = open(sys.argv[1]).read()
m = re.search(r"report split ([\d.]+) \(majority class ([\d.]+)\)", s)
assert m and float(m.group(1)) > float(m.group(2)) + 10, s
PY
grep -q "epoch 1/4" "$tmp/tune.err" && ok || bad "no tuning progress"

"$cli" localize --model "$M" --expert "$tmp/toy.expert" "${data[@]}" --out "$tmp/toy-pruned.expert" \
  --scores "$tmp/scores.tsv" --curve "$tmp/curve.tsv" >"$tmp/loc.out" 2>"$tmp/loc.err" || { bad "localize exit"; cat "$tmp/loc.err" >&2; }
grep -q "pruned .* of FFN neurons" "$tmp/loc.out" && ok || bad "localize summary: $(cat "$tmp/loc.out")"
[ "$(wc -l <"$tmp/scores.tsv")" -eq $((3 * 64 + 1)) ] && ok || bad "scores file rows"
[ "$(wc -l <"$tmp/curve.tsv")" -ge 2 ] && ok || bad "curve file"
python3 - "$tmp/loc.out" <<'PY' && ok || bad "expert not within tolerance"
import re, sys
s = open(sys.argv[1]).read()
m = re.search(r"validation ([\d.]+) \(full ([\d.]+)\)", s)
assert m and float(m.group(1)) >= float(m.group(2)) - 1.0 - 1e-9, s
PY
# the search with re-tuning at every ratio tried
"$cli" localize --model "$M" --expert "$tmp/toy.expert" "${data[@]}" --out "$tmp/rt.expert" --retune-epochs 1 \
  --lr 1e-2 --head-lr 1e-2 >"$tmp/rt.out" 2>"$tmp/rt.err" || { bad "localize --retune-epochs exit"; cat "$tmp/rt.err" >&2; }
grep -q "re-tuning prompt and head at each ratio" "$tmp/rt.err" && [ "$(grep -c "^unplug: info: epoch 1:" "$tmp/rt.err")" -ge 2 ] &&
  ok || bad "search with re-tuning: $(cat "$tmp/rt.err")"
python3 - "$tmp/rt.out" <<'PY' && ok || bad "re-tuned expert not within tolerance"
import re, sys
s = open(sys.argv[1]).read()
m = re.search(r"validation ([\d.]+) \(full ([\d.]+)\)", s)
assert m and float(m.group(1)) >= float(m.group(2)) - 1.0 - 1e-9, s
PY
for method in activation weight random ig; do
  "$cli" localize --model "$M" --expert "$tmp/toy.expert" "${data[@]}" --out "$tmp/$method.expert" --method $method \
    --ratio 0.5 >"$tmp/m.out" 2>&1 && ok || { bad "localize --method $method"; cat "$tmp/m.out" >&2; }
done

"$cli" eval --model "$M" --expert "$tmp/toy-pruned.expert" "${data[@]}" --iters 3 >"$tmp/eval.out" 2>&1 || bad "eval exit"
grep -q "speed-up" "$tmp/eval.out" && grep -q "^accuracy" "$tmp/eval.out" && ok || { bad "eval output"; cat "$tmp/eval.out" >&2; }
"$cli" eval --model "$M" --expert "$tmp/rt.expert" --full "$tmp/toy.expert" "${data[@]}" --iters 3 >"$tmp/evalf.out" 2>&1 &&
  grep -q "^accuracy" "$tmp/evalf.out" && ok || { bad "eval --full"; cat "$tmp/evalf.out" >&2; }
# --json: one JSON object on stdout, the same figures as the text; --json-out writes it to a file too
"$cli" eval --model "$M" --expert "$tmp/toy-pruned.expert" "${data[@]}" --iters 3 --json --json-out "$tmp/eval.json" \
  >"$tmp/evalj.out" 2>"$tmp/evalj.err" || bad "eval --json exit"
python3 - "$tmp/evalj.out" "$tmp/eval.json" "$tmp/eval.out" <<'PY' && ok || bad "eval --json: $(cat "$tmp/evalj.out" "$tmp/evalj.err")"
import json, sys
o = json.load(open(sys.argv[1]))
assert o == json.load(open(sys.argv[2]))
acc = [l.split() for l in open(sys.argv[3]) if l.startswith("accuracy")][0]
assert abs(o["full"]["accuracy"] - float(acc[1])) < 0.01 and abs(o["expert"]["accuracy"] - float(acc[2])) < 0.01, (o, acc)
assert o["n"] == 200 and [t["batch"] for t in o["timing"]] == [32, 1] and o["kept_ffn"] < o["total_ffn"]
PY
"$cli" tune --model "$M" "${data[@]}" --out "$tmp/j.expert" --prompts 4 --max-len 32 --epochs 1 --batch 16 --json \
  >"$tmp/tunej.out" 2>/dev/null && python3 -c 'import json,sys; o=json.load(open(sys.argv[1])); assert o["val"] > 0 and o["report"] > 0 and o["best_epoch"] == 1' \
  "$tmp/tunej.out" && ok || bad "tune --json: $(cat "$tmp/tunej.out")"
"$cli" localize --model "$M" --expert "$tmp/j.expert" "${data[@]}" --out "$tmp/jl.expert" --search-steps 3 --sweep 0.3 --json \
  >"$tmp/locj.out" 2>/dev/null && python3 -c '
import json, sys
o = json.load(open(sys.argv[1]))
assert len(o["search"]) == 3 and len(o["sweep"]) == 1 and o["tolerance"] == 1.0 and o["method"] == "actxgrad", o
assert sum(o["kept_ffn_per_layer"]) == o["kept_ffn"]' "$tmp/locj.out" && ok || bad "localize --json: $(cat "$tmp/locj.out")"
expect_fail "tune --out unwritable, before training" "cannot write --out $tmp/nodir/x.expert" \
  "$cli" tune --model "$M" "${data[@]}" --out "$tmp/nodir/x.expert"
"$cli" expert show "$tmp/toy-pruned.expert" --json | python3 -c 'import json,sys; o=json.load(sys.stdin); assert o["method"] == "actxgrad" and len(o["base_fingerprint"]) == 64' &&
  ok || bad "expert show --json"
"$cli" expert show "$tmp/toy-pruned.expert" >"$tmp/show.out" 2>&1 || bad "expert show exit"
grep -q "method:       actxgrad" "$tmp/show.out" && grep -q "base model:   sha256 " "$tmp/show.out" && ok || bad "expert show output"

# deep prompts and mean pooling: tune -> localize -> show
"$cli" tune --model "$M" "${data[@]}" --out "$tmp/deep.expert" --prompts 4 --deep --pool mean --max-len 32 --epochs 4 --batch 16 \
  --lr 1e-2 --head-lr 1e-2 >"$tmp/deep.out" 2>"$tmp/deep.err" || { bad "tune --deep exit"; cat "$tmp/deep.err" >&2; }
grep -q "4 deep prompts" "$tmp/deep.err" && grep -q "report split" "$tmp/deep.out" && ok || bad "tune --deep output"
"$cli" localize --model "$M" --expert "$tmp/deep.expert" "${data[@]}" --out "$tmp/deep-pruned.expert" --ratio 0.5 \
  >"$tmp/dloc.out" 2>&1 && ok || { bad "localize a deep expert"; cat "$tmp/dloc.out" >&2; }
"$cli" expert show "$tmp/deep-pruned.expert" >"$tmp/dshow.out" 2>&1 || bad "expert show deep exit"
grep -q "at each of 3 layers (deep)" "$tmp/dshow.out" && grep -q "pooling:      mean" "$tmp/dshow.out" && grep -q "unplug-expert v3" "$tmp/dshow.out" && ok ||
  bad "expert show deep: $(cat "$tmp/dshow.out")"

# attention heads: FFN + heads in one run; heads only on an FFN expert, re-tuned with the heads masked
"$cli" localize --model "$M" --expert "$tmp/toy.expert" "${data[@]}" --out "$tmp/heads.expert" --ratio 0.5 --heads 0.25 \
  >"$tmp/h.out" 2>"$tmp/h.err" && grep -q "attention heads: 9 of 12 kept" "$tmp/h.out" && ok || { bad "localize --heads"; cat "$tmp/h.out" "$tmp/h.err" >&2; }
"$cli" expert show "$tmp/heads.expert" >"$tmp/hshow.out" 2>&1 && grep -q "heads/layer: " "$tmp/hshow.out" && ok || bad "expert show heads"
"$cli" localize --model "$M" --expert "$tmp/toy-pruned.expert" "${data[@]}" --out "$tmp/heads2.expert" --keep-ffn --heads 0.5 \
  --retune-epochs 1 --lr 1e-2 --head-lr 1e-2 >"$tmp/h2.out" 2>"$tmp/h2.err" &&
  grep -q "attention heads: 6 of 12 kept" "$tmp/h2.out" && grep -q "re-tuned the prompt and head (1 epoch): validation" "$tmp/h2.err" &&
  ok || { bad "localize --keep-ffn --heads --retune-epochs"; cat "$tmp/h2.out" "$tmp/h2.err" >&2; }
python3 - "$tmp/loc.out" "$tmp/h2.out" <<'PY' && ok || bad "--keep-ffn changed the FFN"
import re, sys
a, b = (re.search(r"kept per layer: (.*)", open(p).read()).group(1) for p in sys.argv[1:3])
assert a == b, (a, b)
PY
"$cli" eval --model "$M" --expert "$tmp/heads2.expert" --full "$tmp/toy.expert" "${data[@]}" --iters 3 >"$tmp/heval.out" 2>&1 &&
  grep -q "6 of 12 attention heads kept" "$tmp/heval.out" && ok || { bad "eval of a head-pruned expert"; cat "$tmp/heval.out" >&2; }
expect_fail "--keep-ffn alone" "--keep-ffn goes with --heads" "$cli" localize --model "$M" --expert "$tmp/toy.expert" "${data[@]}" --out "$tmp/x.expert" --keep-ffn
expect_fail "heads by ig" "not ig" "$cli" localize --model "$M" --expert "$tmp/toy.expert" "${data[@]}" --out "$tmp/x.expert" --method ig --heads 0.5

# errors
expect_fail "bad --pool" "--pool expects cls or mean" "$cli" tune --model "$M" "${data[@]}" --out "$tmp/x.expert" --pool max
expect_fail "expert on another base" "made for another base model" \
  "$cli" eval --model "$src/tests/data/models/bert-f16" --expert "$tmp/toy-pruned.expert" "${data[@]}"
head -c 300 "$tmp/toy-pruned.expert" >"$tmp/trunc.expert"
expect_fail "truncated expert" "trunc.expert" "$cli" expert show "$tmp/trunc.expert"
printf 'text\tlabel\nfine film\tpositive\nbad film\tneutral\n' >"$tmp/v2.tsv"
expect_fail "unknown label" "neutral" "$cli" tune --model "$M" --train "$tmp/train.tsv" --val "$tmp/v2.tsv" --out "$tmp/x.expert"
printf 'text\tlabel\nfine film\n' >"$tmp/v3.tsv"
expect_fail "malformed row" "v3.tsv" "$cli" tune --model "$M" --train "$tmp/train.tsv" --val "$tmp/v3.tsv" --out "$tmp/x.expert"
printf 'sentence\tscore\nfine\t1\n' >"$tmp/v4.tsv"
expect_fail "missing column" "v4.tsv" "$cli" tune --model "$M" --train "$tmp/v4.tsv" --val "$tmp/v4.tsv" --format tsv --out "$tmp/x.expert"
: >"$tmp/empty.tsv"
expect_fail "empty file" "empty.tsv" "$cli" tune --model "$M" --train "$tmp/empty.tsv" --val "$tmp/val.tsv" --out "$tmp/x.expert"
expect_fail "unknown method" "unknown attribution method" "$cli" localize --model "$M" --expert "$tmp/toy.expert" "${data[@]}" --out "$tmp/x.expert" --method magic

# a full disk while an expert is written: the write fails, the old file stays whole, no temporary is left
mnt=$tmp/small
mkdir -p "$mnt"
if mount -t tmpfs -o size=128k tmpfs "$mnt" 2>/dev/null; then
  cp "$tmp/toy-pruned.expert" "$mnt/e.expert"
  cat /dev/zero >"$mnt/fill" 2>/dev/null
  expect_fail "expert write on a full disk" "No space left on device" \
    "$cli" localize --model "$M" --expert "$tmp/toy.expert" "${data[@]}" --out "$mnt/e.expert" --ratio 0.3
  cmp -s "$tmp/toy-pruned.expert" "$mnt/e.expert" && [ -z "$(ls "$mnt" | grep -v '^e.expert$\|^fill$')" ] &&
    "$cli" expert show "$mnt/e.expert" >/dev/null && ok || bad "full disk: the old expert changed or a temporary was left: $(ls "$mnt")"
  umount "$mnt"
else
  echo "skipped the full-disk check: cannot mount a tmpfs here (needs root)"
fi

finish
