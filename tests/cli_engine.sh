#!/usr/bin/env bash
# CLI of the inference engine as a user runs it: info, tokenize, embed, bench,
# and the errors users see for bad input (non-zero exit, a message that names
# the file and what is wrong, never a crash).
set -u
. "${UP_SOURCE_DIR:?}/tests/lib.sh"
models=$src/tests/data/models
json_check() { # file, python expression over rows (list of dicts)
  python3 -c "import json,sys; rows=[json.loads(l) for l in open('$1')]; sys.exit(0 if ($2) else 1)"
}

# info
"$cli" info "$models/bert-f32-gelu_new-cls" >"$tmp/info" 2>"$tmp/err" || bad "info exit"
grep -q "classifier:   3 labels: neg neu pos" "$tmp/info" && ok || bad "info labels: $(cat "$tmp/info")"
grep -q "^parameters:" "$tmp/info" && ok || bad "info parameters"
grep -q "^backend:      onednn" "$tmp/info" && ok || bad "info backend"
# auto precision says what it timed (or was not asked to: AMX, UP_AUTO_PRECISION)
grep -Eq "^precision:    (fp32|bf16)( \(auto: bf16 products run at [0-9.]+x fp32's speed here\))?$" "$tmp/info" && ok ||
  bad "info precision: $(grep precision "$tmp/info")"
"$cli" info "$models/bert-sharded" | grep -q "2 safetensors file" && ok || bad "info sharded files"

# tokenize and embed
printf 'hello world\nthe cat sat\tand the dog ran\n\n' >"$tmp/in.txt"
"$cli" tokenize --model "$models/bert-f32-gelu" --pairs <"$tmp/in.txt" >"$tmp/tok.jsonl" 2>"$tmp/err" || bad "tokenize exit"
json_check "$tmp/tok.jsonl" "len(rows)==3 and rows[0]['ids'][0]==2 and rows[0]['ids'][-1]==3 and 1 in rows[1]['type_ids'] and rows[2]['ids']==[2,3]" && ok || bad "tokenize output"
grep -q "line 3: empty text" "$tmp/err" && ok || bad "empty line warning"
for prec in fp32 bf16; do
  "$cli" embed --model "$models/bert-f32-gelu_new-cls" --pairs --precision $prec <"$tmp/in.txt" >"$tmp/emb-$prec.jsonl" 2>/dev/null || bad "embed $prec exit"
  json_check "$tmp/emb-$prec.jsonl" "len(rows)==3 and all(len(r['cls'])==32 and len(r['pooled'])==32 and len(r['logits'])==3 for r in rows)" && ok || bad "embed $prec output"
done
"$cli" embed --model "$models/bert-f32-gelu_new-cls" --pairs --backend reference --precision fp32 <"$tmp/in.txt" >"$tmp/emb-ref.jsonl" 2>/dev/null || bad "embed ref exit"
python3 - "$tmp/emb-ref.jsonl" "$tmp/emb-fp32.jsonl" "$tmp/emb-bf16.jsonl" <<'PY' && ok || bad "embed backends disagree"
import json, sys
load = lambda p: [json.loads(l) for l in open(p)]
ref, f32, b16 = map(load, sys.argv[1:4])
def err(a, b, k): return max(abs(x - y) for ra, rb in zip(a, b) for x, y in zip(ra[k], rb[k]))
assert err(ref, f32, "cls") < 1e-4 and err(ref, f32, "pooled") < 1e-4, "fp32"
scale = max(abs(x) for r in ref for x in r["cls"])
assert err(ref, b16, "cls") / scale < 2e-2, "bf16"
PY
# int8 (where oneDNN has VNNI or AMX; refused with the reason elsewhere)
if "$cli" embed --model "$models/bert-f32-gelu_new-cls" --pairs --precision int8 <"$tmp/in.txt" >"$tmp/emb-int8.jsonl" 2>"$tmp/err8"; then
  python3 - "$tmp/emb-ref.jsonl" "$tmp/emb-int8.jsonl" <<'PY' && ok || bad "embed int8 far from fp32"
import json, sys
ref, q8 = ([json.loads(l) for l in open(p)] for p in sys.argv[1:3])
scale = max(abs(x) for r in ref for x in r["cls"])
e = max(abs(x - y) for a, b in zip(ref, q8) for x, y in zip(a["cls"], b["cls"]))
assert 0 < e / scale < 0.1, e / scale  # hidden 32: 8-bit steps weigh more than on a real model
PY
  # a row's int8 result is its own: batch 1 and 3 agree (up to the fp32 head's rounding)
  "$cli" embed --model "$models/bert-f32-gelu_new-cls" --pairs --precision int8 --batch 3 <"$tmp/in.txt" \
    >"$tmp/emb-int8-b3.jsonl" 2>/dev/null
  python3 - "$tmp/emb-int8.jsonl" "$tmp/emb-int8-b3.jsonl" <<'PY' && ok || bad "int8: batch size changes embeddings"
import json, sys
a, b = ([json.loads(l) for l in open(p)] for p in sys.argv[1:3])
assert len(a) == len(b) == 3
assert max(abs(x - y) for ra, rb in zip(a, b) for x, y in zip(ra["cls"], rb["cls"])) < 1e-5
PY
  # the static-range experiment: calibrate writes each product's two ranges, static quantizes with them
  UP_INT8_RANGES=calibrate:"$tmp/ranges.txt" "$cli" embed --model "$models/bert-f32-gelu_new-cls" --pairs \
    --precision int8 <"$tmp/in.txt" >/dev/null 2>&1
  UP_INT8_RANGES=static:"$tmp/ranges.txt" "$cli" embed --model "$models/bert-f32-gelu_new-cls" --pairs \
    --precision int8 <"$tmp/in.txt" >"$tmp/emb-int8-static.jsonl" 2>/dev/null
  python3 - "$tmp/ranges.txt" "$tmp/emb-ref.jsonl" "$tmp/emb-int8.jsonl" "$tmp/emb-int8-static.jsonl" <<'PY' \
    && ok || bad "int8 static ranges"
import json, sys
r = [float(x) for x in open(sys.argv[1])]
assert len(r) == 1024 and any(x < 0 for x in r) and any(x > 0 for x in r), len(r)
ref, dyn, st = ([json.loads(l) for l in open(p)] for p in sys.argv[2:5])
scale = max(abs(x) for row in ref for x in row["cls"])
e = max(abs(x - y) for a, b in zip(ref, st) for x, y in zip(a["cls"], b["cls"]))
d = max(abs(x - y) for a, b in zip(dyn, st) for x, y in zip(a["cls"], b["cls"]))
assert e / scale < 0.1 and d > 0, (e / scale, d)  # near fp32, and not the dynamic ranges' result
PY
else
  grep -q "need VNNI or AMX" "$tmp/err8" && ok || bad "embed int8: $(cat "$tmp/err8")"
fi
# batching does not change results
"$cli" embed --model "$models/bert-f32-gelu" --batch 1 --precision fp32 <"$tmp/in.txt" >"$tmp/b1.jsonl" 2>/dev/null
"$cli" embed --model "$models/bert-f32-gelu" --batch 3 --precision fp32 <"$tmp/in.txt" >"$tmp/b3.jsonl" 2>/dev/null
python3 - "$tmp/b1.jsonl" "$tmp/b3.jsonl" <<'PY' && ok || bad "batch size changes embeddings"
import json, sys
a, b = ([json.loads(l) for l in open(p)] for p in sys.argv[1:3])
assert len(a) == len(b) == 3
assert max(abs(x - y) for ra, rb in zip(a, b) for x, y in zip(ra["cls"], rb["cls"])) < 1e-5
PY
# --pool mean|cls [--normalize] and --hidden: the embedding is the mean of the
# hidden rows (or row 0), normalised to norm 1, the same with batch 1 or 3
"$cli" embed --model "$models/bert-f32-gelu" --precision fp32 --hidden <"$tmp/in.txt" >"$tmp/hid.jsonl" 2>/dev/null || bad "embed --hidden exit"
"$cli" tokenize --model "$models/bert-f32-gelu" <"$tmp/in.txt" >"$tmp/tok1.jsonl" 2>/dev/null
for b in 1 3; do
  "$cli" embed --model "$models/bert-f32-gelu" --precision fp32 --pool mean --batch $b <"$tmp/in.txt" >"$tmp/mean$b.jsonl" 2>/dev/null || bad "embed --pool mean exit"
  "$cli" embed --model "$models/bert-f32-gelu" --precision fp32 --pool mean --normalize --batch $b <"$tmp/in.txt" >"$tmp/norm$b.jsonl" 2>/dev/null || bad "embed --normalize exit"
done
"$cli" embed --model "$models/bert-f32-gelu" --precision fp32 --pool cls <"$tmp/in.txt" >"$tmp/clsp.jsonl" 2>/dev/null || bad "embed --pool cls exit"
python3 - "$tmp" <<'PY' && ok || bad "embed --pool / --normalize / --hidden"
import json, math, sys
d = sys.argv[1]
load = lambda n: [json.loads(l) for l in open(f"{d}/{n}")]
hid, tok, clsp = load("hid.jsonl"), load("tok1.jsonl"), load("clsp.jsonl")
assert len(hid) == 3 and all(len(h["hidden"]) == len(t["ids"]) for h, t in zip(hid, tok)), "one hidden row per token"
for b in (1, 3):
    mean, norm = load(f"mean{b}.jsonl"), load(f"norm{b}.jsonl")
    assert len(mean) == len(norm) == len(clsp) == 3, "one embedding per line"
    for h, m, n, c in zip(hid, mean, norm, clsp):
        rows = h["hidden"]
        want = [sum(r[k] for r in rows) / len(rows) for k in range(len(rows[0]))]
        assert max(abs(x - y) for x, y in zip(want, m["embedding"])) < 1e-5, "mean pooling"
        s = math.sqrt(sum(x * x for x in want))
        assert max(abs(x / s - y) for x, y in zip(want, n["embedding"])) < 1e-5, "normalisation"
        assert max(abs(x - y) for x, y in zip(rows[0], c["embedding"])) < 1e-5, "cls pooling"
        assert max(abs(x - y) for x, y in zip(rows[0], h["cls"])) < 1e-6, "hidden row 0 is cls"
PY
expect_fail "normalize without pool" "--normalize needs --pool" "$cli" embed --model "$models/bert-f32-gelu" --normalize
expect_fail "bad pool" "--pool expects cls or mean" "$cli" embed --model "$models/bert-f32-gelu" --pool max
# one option table: an option of another command is refused, naming the command
expect_fail "option of another command" "unplug info: --tolerance is not an option of this command" \
  "$cli" info "$models/bert-f32-gelu" --tolerance 3
expect_fail "serve's option in tune" "unplug tune: --port is not an option of this command" "$cli" tune --port 1
expect_fail "unknown option" "unplug serve: unknown option '--bogus'" "$cli" serve --bogus
expect_fail "router build positional" "unplug router build: unexpected argument 'x'" "$cli" router build x
expect_fail "serve range" "--port expects an integer in 0..65535, got '70000'" "$cli" serve --port 70000
expect_fail "router needs build" "usage: unplug router build" "$cli" router
"$cli" expert --help 2>&1 | grep -q "usage: unplug expert show" && ok || bad "expert --help"
# long input is truncated and said so
python3 -c "print(' '.join(['word']*200))" | "$cli" embed --model "$models/bert-f32-gelu" >"$tmp/long.jsonl" 2>"$tmp/err" || bad "long exit"
grep -q "truncated" "$tmp/err" && ok || bad "truncation not reported"
json_check "$tmp/long.jsonl" "len(rows)==1" && ok || bad "long output"

# bench on a random shape, text and JSON
cat >"$tmp/cfg.json" <<'J'
{"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 128, "vocab_size": 100, "max_position_embeddings": 64}
J
"$cli" bench --config "$tmp/cfg.json" --random --batch 2 --len 16 --iters 2 --json >"$tmp/bench.json" 2>/dev/null || bad "bench exit"
python3 -c "import json; r=json.load(open('$tmp/bench.json')); assert r[0]['batch']==2 and r[0]['tokens_per_s']>0" && ok || bad "bench json"

# bad input
expect_fail "missing dir" "no config.json" "$cli" info "$tmp/nope"
mkdir -p "$tmp/m1"; cp "$models/bert-f32-gelu/"* "$tmp/m1/"
sed -i 's/"hidden_size": 32/"hidden_size": 48/' "$tmp/m1/config.json"
expect_fail "shape vs config" "expected shape [128, 48] from config.json, found [128, 32]" "$cli" info "$tmp/m1"
cp "$models/bert-f32-gelu/config.json" "$tmp/m1/"
sed -i 's/"num_attention_heads": 4/"num_attention_heads": 5/' "$tmp/m1/config.json"
expect_fail "heads divide hidden" "num_attention_heads" "$cli" info "$tmp/m1"
printf '{"hidden_size": 32,' >"$tmp/m1/config.json"
expect_fail "invalid json" "config.json" "$cli" info "$tmp/m1"
cp "$models/bert-f32-gelu/config.json" "$tmp/m1/"
head -c 1000 "$models/bert-f32-gelu/model.safetensors" >"$tmp/m1/model.safetensors"
expect_fail "truncated safetensors" "model.safetensors" "$cli" info "$tmp/m1"
rm "$tmp/m1/model.safetensors"
expect_fail "no weights" "model.safetensors" "$cli" info "$tmp/m1"
cp "$models/bert-f32-gelu/model.safetensors" "$tmp/m1/"
sed -i 's/^\[SEP\]$/[XEP]/' "$tmp/m1/vocab.txt"
expect_fail "vocab without [SEP]" "[SEP]" "$cli" embed --model "$tmp/m1"
expect_fail "bad option" "unknown option" "$cli" embed --modle x
expect_fail "bad precision" "--precision expects" "$cli" info "$models/bert-f32-gelu" --precision fp64
expect_fail "max-len over positions" "max_position_embeddings" "$cli" embed --model "$models/bert-f32-gelu" --max-len 100

finish
