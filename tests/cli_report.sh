#!/usr/bin/env bash
# unplug report on a results directory made here: two experts from the CLI on
# a tiny model (tune -> localize at two ratios -> eval), bench/scaling.sh at
# tiny shapes, hand-written sweep.tsv and curve.tsv. Checks the HTML (tags
# balanced, every plot present, the inputs' numbers in it, nothing fetched,
# names escaped), the plots of missing files, and the errors for bad inputs.
set -u
. "${UP_SOURCE_DIR:?}/tests/lib.sh"
M=$src/tests/data/models/bert-f32-gelu
python3 "$src/scripts/toy-task.py" "$tmp"
data=(--train "$tmp/train.tsv" --val "$tmp/val.tsv" --test "$tmp/test.tsv" --task toy)
R=$tmp/res
mkdir -p "$R/toy" "$R/half"

"$cli" tune --model "$M" "${data[@]}" --out "$R/toy/tuned.expert" --prompts 4 --max-len 32 --epochs 2 --batch 16 \
  --lr 1e-2 --head-lr 1e-2 >"$tmp/tune.out" 2>&1 || { bad "tune"; cat "$tmp/tune.out" >&2; }
for pair in toy:0.75 half:0.5; do
  d=${pair%%:*}
  "$cli" localize --model "$M" --expert "$R/toy/tuned.expert" "${data[@]}" --out "$R/$d/expert.expert" \
    --ratio "${pair#*:}" --json-out "$R/$d/localize.json" >"$R/$d/localize.out" 2>"$R/$d/localize.err" || { bad "localize $d"; cat "$R/$d/localize.err" >&2; }
done
cp "$R/toy/tuned.expert" "$R/half/tuned.expert"
"$cli" eval --model "$M" --expert "$R/toy/expert.expert" --full "$R/toy/tuned.expert" "${data[@]}" --iters 1 \
  --json-out "$R/toy/eval.json" >"$R/toy/eval.out" 2>&1 || { bad "eval"; cat "$R/toy/eval.out" >&2; }

printf 'ratio\tval_metric\twithin_tolerance\n# sweep: ratio\tval_metric\treport_metric\n# 0.3\t1\t2\n' >"$R/toy/curve.tsv"
printf '0.475000\t79.2661\t1\n0.712500\t71.1111\t0\n0.593750\t78.6543\t1\n' >>"$R/toy/curve.tsv"
printf 'ratio\tval_metric\twithin_tolerance\n0.5\t70\t1\n' >"$R/half/curve.tsv"
printf 'toy\tactxgrad\t0.3000\t80.0000\t87.1234\ntoy\tactxgrad\t0.5000\t70.0000\t84.5678\n' >"$R/sweep.tsv"
printf 'toy\trandom\t0.3000\t60.0000\t66.4321\ntoy\trandom\t0.5000\t50.0000\t55.8765\n' >>"$R/sweep.tsv"
printf '<script>x</script>\tweight\t0.3000\t1\t2\n' >>"$R/sweep.tsv"

# the scaling benchmark itself, at shapes the tiny model runs in a moment
BUILD=${UP_BINARY_DIR:?} MODEL=$M TASKS="toy half" BATCHES=1,2 BATCH_LEN=16 LENS=8,16 LEN_BATCH=2 ITERS=1 \
  bash "$src/bench/scaling.sh" "$R" >"$tmp/scaling.out" 2>&1 || { bad "bench/scaling.sh"; cat "$tmp/scaling.out" >&2; }
[ "$(grep -c $'^toy\t' "$R/scaling.tsv")" -eq 3 ] && [ "$(grep -c $'^half\t' "$R/scaling.tsv")" -eq 3 ] && ok ||
  bad "scaling.tsv rows: $(cat "$R/scaling.tsv" "$tmp/scaling.out")"

"$cli" report --results "$R" >"$tmp/rep.out" 2>&1 || { bad "report exit"; cat "$tmp/rep.out" >&2; }
H=$R/report.html
[ -s "$H" ] && ok || bad "no $H"
python3 - "$H" <<'PY' && ok || bad "HTML not well-formed"
import sys
from html.parser import HTMLParser
void = {"meta", "br", "img", "hr", "input", "link", "circle", "line", "rect", "polyline"}
class P(HTMLParser):
    def __init__(s):
        super().__init__(); s.stack = []
    def handle_starttag(s, tag, a):
        if tag not in void: s.stack.append(tag)
    def handle_startendtag(s, tag, a): pass
    def handle_endtag(s, tag):
        if tag in void: return
        assert s.stack and s.stack[-1] == tag, f"</{tag}> closes <{s.stack[-1] if s.stack else None}>"
        s.stack.pop()
p = P(); p.feed(open(sys.argv[1], encoding="utf-8").read()); p.close()
assert not p.stack, f"unclosed: {p.stack}"
PY
[ "$(grep -o '<svg' "$H" | wc -l)" -eq "$(grep -o '</svg>' "$H" | wc -l)" ] && [ "$(grep -o '<svg' "$H" | wc -l)" -ge 6 ] &&
  ok || bad "svg open/close counts"
for title in "Summary" "Validation metric vs FFN pruning ratio" "per attribution method" "Kept FFN neurons per layer" \
  "Overlap of kept neurons between tasks" "speed-up vs batch size (16 tokens)" "speed-up vs token count (batch 2)"; do
  grep -qF "$title" "$H" && ok || bad "title '$title' missing"
done
grep -q "no data" "$H" && bad "no-data message in a complete report: $(grep -o 'no data[^<]*' "$H")" || ok
! grep -qiE 'http|<script|src=|href=|@import|url\(' "$H" && ok || bad "external reference or script in the report"
grep -qF '&lt;script&gt;x&lt;/script&gt;' "$H" && ok || bad "task name not escaped"
# numbers from the inputs: curve and sweep rows, eval.out's metrics, the experts' kept counts
for n in "validation 79.27" "validation 71.11" "report 87.12" "report 55.88" "unpruned"; do
  grep -qF "$n" "$H" && ok || bad "'$n' not in the report"
done
read -r full exp < <(awk '$1 == "accuracy" { print $2, $3 }' "$R/toy/eval.out")
grep -qF "<td>$full</td><td>$exp</td>" "$H" && ok || bad "eval.out accuracy $full $exp not in the summary"
for row in batch latency; do
  v=$(awk -v r=$row '$1 == r { sub(/x$/, "", $NF); print $NF }' "$R/toy/eval.out")
  grep -qF "<td>$v&times; <span" "$H" && ok || bad "eval.out $row speed-up '$v' not in the summary"
done
"$cli" expert show "$R/half/expert.expert" >"$tmp/show.out"
k0=$(awk '/^kept\/layer:/ { print $2 }' "$tmp/show.out")
grep -qF "half, layer 0: $k0 of 64 neurons kept" "$H" && ok || bad "kept count $k0 of layer 0 not in the report"
[ "$(grep -oE 'class="cv[^"]*"[^>]*>1.00<' "$H" | wc -l)" -eq 2 ] && [ "$(grep -oE 'class="cv[^"]*"[^>]*>0.50<' "$H" | wc -l)" -eq 2 ] &&
  ok || bad "Jaccard cells: $(grep -oE 'class="cv[^"]*"[^>]*>[^<]*' "$H")"
s1=$(awk -F'\t' '$1 == "toy" && $2 == 1 { printf "%.2f", $6 }' "$R/scaling.tsv")
grep -qF "batch 1 x 16 tokens" "$H" && grep -qF "speed-up ${s1}x" "$H" && ok || bad "scaling point 1x16 ($s1) not in the report"
"$cli" report --results "$R" --out "$tmp/other.html" --model "$M" >/dev/null 2>&1 && grep -q "3 layers x 32, FFN 64" "$tmp/other.html" &&
  ok || bad "--out/--model"

# missing inputs: each plot says so, the report is still written
mkdir -p "$tmp/one/only"
cp "$R/toy/eval.json" "$tmp/one/only/"
"$cli" report --results "$tmp/one" >/dev/null 2>&1 && ok || bad "report of a sparse directory"
for f in "sweep.tsv missing" "scaling.tsv missing" "curve.tsv missing" "expert.expert under the results directory missing"; do
  grep -qF "$f" "$tmp/one/report.html" && ok || bad "no '$f' message"
done
mkdir "$tmp/empty"
"$cli" report --results "$tmp/empty" >/dev/null 2>&1 && grep -c "no data" "$tmp/empty/report.html" | grep -qx 6 && ok ||
  bad "empty directory: $(grep -o 'no data[^<]*' "$tmp/empty/report.html")"

# errors
expect_fail "no such directory" "no such directory" "$cli" report --results "$tmp/nope"
expect_fail "usage" "usage: unplug report" "$cli" report
expect_fail "unknown option" "unknown option '--bogus'" "$cli" report --results "$R" --bogus
mkdir -p "$tmp/b1" "$tmp/b2/t" "$tmp/b3" "$tmp/b4/t"
printf 'a\tm\t0.3\t1\t2\na\tm\t0.5\t1\n' >"$tmp/b1/sweep.tsv"
expect_fail "short sweep line" "b1/sweep.tsv:2: expected 5 tab-separated columns" "$cli" report --results "$tmp/b1"
[ ! -e "$tmp/b1/report.html" ] && [ ! -e "$tmp/b1/report.html.tmp" ] && ok || bad "a failed report left a file"
printf 'ratio\tval_metric\twithin_tolerance\n\n0.5\tabc\t1\n' >"$tmp/b2/t/curve.tsv"
expect_fail "bad number" "curve.tsv:3: column 'val_metric'" "$cli" report --results "$tmp/b2"
printf 'task\tbatch\ttokens\tfull_ms\texpert_ms\tspeedup\nt\t8\t128\t1\t1\tnan\n' >"$tmp/b3/scaling.tsv"
expect_fail "NaN speed-up" "scaling.tsv:2: column 'speedup'" "$cli" report --results "$tmp/b3"
printf 't\t8.5\t128\t1\t1\t1\n' >"$tmp/b3/scaling.tsv"
expect_fail "fractional batch" "scaling.tsv:1: column 'batch': expected an integer" "$cli" report --results "$tmp/b3"
head -c 400 "$R/toy/expert.expert" >"$tmp/b4/t/expert.expert"
expect_fail "truncated expert" "b4/t/expert.expert" "$cli" report --results "$tmp/b4"
mkdir -p "$tmp/b5/t"
printf '{"metric": "accuracy", "full": [1]' >"$tmp/b5/t/eval.json"
expect_fail "broken eval.json" "b5/t/eval.json:1: not a JSON object" "$cli" report --results "$tmp/b5"
printf '{"metric": "accuracy", "full": 3}' >"$tmp/b5/t/eval.json"
expect_fail "eval.json without its fields" "b5/t/eval.json: expected eval --json-out's fields" "$cli" report --results "$tmp/b5"
"$cli" report --help | grep -q "usage: unplug report --results DIR" && ok || bad "--help"

finish
