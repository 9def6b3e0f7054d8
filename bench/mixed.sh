#!/usr/bin/env bash
# Batches that mix tasks (docs/SERVING.md): per-task batching against
# `unplug serve --mix-tasks` under the same load, 20 experts, uniform random
# traffic over them.
#   1. makes N_TASKS (20) experts on MODEL: each tuned for one epoch on the
#      generated task of scripts/toy-task.py under its own name (t01..t20), then
#      pruned at its own ratio (0.05..0.95: kept FFN widths differ); accuracy
#      does not matter here, the shapes do
#   2. request bodies: one input each, a task drawn uniformly at random per
#      request, texts from the SST-2 dev set (DATA_DIR/glue/SST-2/dev.tsv; the
#      generated task's texts when there is no DATA_DIR)
#   3. RUNS (5) rounds, alternating which mode goes first; each run starts a
#      server, warms it up 3 s, then wrk (bench/serve.sh's client: -t2,
#      CONNS (64) connections, DURATION (10) s) measures it; /metrics gives
#      the batches
#   4. appends a block to OUT (bench/results/mixed-CPU.tsv): a comment line naming the CPU
#      and the setting, then every run and the medians, with the
#      server's CPU time per request and the share of the machine's CPU time
#      that other programs took during the run (busy time less the server's and
#      wrk's): on a shared machine a busy neighbour shows there
# Usage: bench/mixed.sh [DATA_DIR] [OUT]
# Env: BUILD (build), MODEL (models/unplug-mini), N_TASKS, RUNS, DURATION, CONNS, WORKERS, THREADS, PRECISION,
#      EXPERTS (a directory to keep the experts in and reuse: made only when it lacks them)
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:-}
build=${BUILD:-build}
cli=$build/unplug
model=${MODEL:-models/unplug-mini}
ntasks=${N_TASKS:-20}
runs=${RUNS:-5}
dur=${DURATION:-10}
conns=${CONNS:-64}
command -v wrk >/dev/null || { echo "bench/mixed.sh: wrk not installed (apt-get install wrk)" >&2; exit 1; }
[ -x "$cli" ] || { echo "bench/mixed.sh: build first ($cli)" >&2; exit 1; }
vendor=$(awk -F': *' '/^vendor_id/ {print tolower($2); exit}' /proc/cpuinfo)
family=$(awk -F': *' '/^cpu family/ {print $2; exit}' /proc/cpuinfo)
cpumodel=$(awk -F': *' '/^model\t/ {print $2; exit}' /proc/cpuinfo)
cpuname=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
out=${2:-bench/results/mixed-$vendor-f${family}m$cpumodel.tsv}
work=$(mktemp -d)
spid=
trap '[ -n "$spid" ] && kill $spid 2>/dev/null; rm -rf "$work"' EXIT
experts=${EXPERTS:-$work/experts}
mkdir -p "$work/toy" "$experts" "$(dirname "$out")"

# 1. the experts
python3 scripts/toy-task.py "$work/toy"
toy=(--train "$work/toy/train.tsv" --val "$work/toy/val.tsv" --test "$work/toy/test.tsv")
for i in $(seq 1 "$ntasks"); do
  t=$(printf "t%02d" "$i")
  [ -f "$experts/$t.expert" ] && continue
  ratio=$(awk -v i="$i" -v n="$ntasks" 'BEGIN { printf "%.3f", 0.05 + 0.9 * (i - 1) / (n > 1 ? n - 1 : 1) }')
  "$cli" tune --model "$model" "${toy[@]}" --task "$t" --out "$work/$t-full.expert" --prompts 8 --max-len 128 \
    --epochs 1 --batch 16 --lr 1e-2 --head-lr 1e-2 --max-train 300 --seed "$i" >/dev/null 2>"$work/tune.err" ||
    { cat "$work/tune.err" >&2; exit 1; }
  "$cli" localize --model "$model" --expert "$work/$t-full.expert" "${toy[@]}" --task "$t" --ratio "$ratio" \
    --max-examples 100 --out "$experts/$t.expert" >"$work/loc.out" 2>&1 || { cat "$work/loc.out" >&2; exit 1; }
  echo "$t: pruned at $ratio, kept per layer $(sed -n 's/^kept per layer: //p' "$work/loc.out")"
done

# 2. request bodies: task uniform at random per request
python3 - "$data" "$work/toy/test.tsv" "$work/bodies.lua" "$ntasks" <<'PY'
import json, os, sys
data, toy, out, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
sst = f"{data}/glue/SST-2/dev.tsv" if data else ""
if sst and os.path.exists(sst):
    texts = [l.rstrip("\n").split("\t")[0] for l in open(sst, encoding="utf-8-sig")][1:]
else:
    texts = [l.split("\t")[0] for l in open(toy, encoding="utf-8")][1:]
texts = texts[:200]
with open(out, "w") as f:
    f.write("texts = {\n" + ",\n".join("[=[" + json.dumps(t)[1:-1] + "]=]" for t in texts) + "\n}\n")
    f.write(f"ntasks = {n}\n")
    f.write('''
setup = function(thread) thread:set("seed", math.random(1, 1000000)) end
init = function(args) math.randomseed(seed or 1) end
request = function()
  local t = string.format("t%02d", math.random(1, ntasks))
  local body = '{"task":"' .. t .. '","inputs":["' .. texts[math.random(1, #texts)] .. '"]}'
  return wrk.format("POST", "/v1/classify", {["Content-Type"] = "application/json"}, body)
end
''')
print(f"{len(texts)} texts ({'SST-2 dev' if sst and os.path.exists(sst) else 'generated task'}), {n} tasks")
PY

. scripts/serve-port.sh
# the server's CPU time and the machine's busy time (ticks): the busy time less the server's and
# wrk's is what other programs ran meanwhile (a shared machine)
server_cpu() { awk '{print $14 + $15}' "/proc/$spid/stat"; }
busy_jiffies() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat; }
hz=$(getconf CLK_TCK)
run_one() { # MODE RUN
  local mode=$1 r=$2 flag=
  [ "$mode" = mixed ] && flag=--mix-tasks
  "$cli" serve --model "$model" --experts-dir "$experts" --port 0 --quiet $flag ${PRECISION:+--precision $PRECISION} ${WORKERS:+--workers $WORKERS} \
    ${THREADS:+--threads $THREADS} 2>"$work/serve.log" &
  spid=$!
  port=$(serve_port "$work/serve.log" "$spid") || exit 1
  wrk -t2 -c"$conns" -d3s -s "$work/bodies.lua" "http://127.0.0.1:$port" >/dev/null   # warm-up
  curl -s "http://127.0.0.1:$port/metrics" >"$work/metrics0.txt"
  local cpu0 stat0 cpu1 stat1
  cpu0=$(server_cpu); stat0=$(busy_jiffies)
  /usr/bin/time -f "%U %S" -o "$work/wrk.time" \
    wrk -t2 -c"$conns" -d"${dur}s" -s "$work/bodies.lua" --latency "http://127.0.0.1:$port" >"$work/wrk.txt"
  cpu1=$(server_cpu); stat1=$(busy_jiffies)
  curl -s "http://127.0.0.1:$port/metrics" >"$work/metrics1.txt"
  kill -TERM "$spid"; wait "$spid" || true
  spid=
  IFS=$'\t' read -r rps p50 p99 bad n < <(python3 bench/wrk_summary.py "$work/wrk.txt")
  # in the measured window: inputs per forward (a mixed batch is one), mixed batches
  local per
  per=$(python3 - "$work/metrics0.txt" "$work/metrics1.txt" <<'PY'
import re, sys
def read(p):
    s = open(p).read()
    tot = lambda pat: sum(float(x) for x in re.findall(pat, s, re.M))
    return (tot(r'^unplug_batches_total (\S+)'), tot(r'^unplug_batch_size_sum\{[^}]*\} (\S+)'),
            tot(r'^unplug_mixed_batches_total (\S+)'))
batches, inputs, mixed = (y - x for x, y in zip(read(sys.argv[1]), read(sys.argv[2])))
print(f"{inputs / max(1, batches):.1f}\t{mixed / max(1, batches):.2f}")
PY
)
  # server CPU ms per request; others' CPU share of the machine (%)
  local cpu_req others
  cpu_req=$(awk -v c=$((cpu1 - cpu0)) -v hz="$hz" -v n="$n" -v rps="$rps" -v d="$dur" 'BEGIN { printf "%.3f", c / hz * 1000 / (rps * d) }')
  others=$(awk -v u=$((stat1 - stat0 - cpu1 + cpu0)) -v hz="$hz" -v d="$dur" -v nc="$(nproc)" -v w="$(cat "$work/wrk.time")" \
    'BEGIN { split(w, t, " "); x = 100 * (u / hz - t[1] - t[2]) / (d * nc); printf "%.0f", (x > 0 ? x : 0) }')
  printf "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n" "$mode" "$r" "$rps" "$p50" "$p99" "$bad" "$n" "$per" "$cpu_req" "$others" | tee -a "$work/runs.tsv"
}

echo "# $cpuname (family $family, model $cpumodel), $(nproc) cores; $model, $ntasks experts; wrk -t2 -c$conns -d${dur}s after 3 s of warm-up; $runs alternated runs per mode"
: >"$work/runs.tsv"
for r in $(seq 1 "$runs"); do
  if [ $((r % 2)) -eq 1 ]; then run_one per-task "$r"; run_one mixed "$r"; else run_one mixed "$r"; run_one per-task "$r"; fi
done

# medians per mode and the ratio
python3 - "$work/runs.tsv" "$out" "$cpuname" "$family" "$cpumodel" "$model" "$ntasks" "$runs" "$dur" "$conns" "${PRECISION:-auto}" <<'PY'
import statistics, sys
runs, out, cpu, fam, mod, model, nt, nr, dur, conns, prec = sys.argv[1:]
rows = [l.rstrip("\n").split("\t") for l in open(runs) if l.strip()]
head = "mode\trun\trequests_s\tp50_ms\tp99_ms\tfailed\trequests\tinputs_per_batch\tmixed_share\tserver_cpu_ms_per_request\tothers_cpu_pct"
med = {}
for mode in ("per-task", "mixed"):
    rs = [r for r in rows if r[0] == mode]
    med[mode] = [statistics.median(float(r[k]) for r in rs) for k in (2, 3, 4, 5, 6, 7, 8, 9, 10)]
with open(out, "a") as f:
    f.write(f"# bench/mixed.sh on {cpu} (family {fam}, model {mod}): {model}, {nt} experts, uniform random traffic, "
            f"wrk -t2 -c{conns} -d{dur}s per run, {nr} alternated runs per mode, server precision {prec}\n")
    f.write(head + "\n")
    for r in rows:
        f.write("\t".join(r) + "\n")
    for mode, m in med.items():
        f.write(f"{mode}\tmedian\t{m[0]:.0f}\t{m[1]:.2f}\t{m[2]:.2f}\t{m[3]:.0f}\t{m[4]:.0f}\t{m[5]:.1f}\t{m[6]:.2f}\t{m[7]:.3f}\t{m[8]:.0f}\n")
    a, b = med["per-task"], med["mixed"]
    f.write(f"mixed/per-task\tratio\t{b[0] / a[0]:.2f}\t{b[1] / a[1]:.2f}\t{b[2] / a[2]:.2f}\t\t\t\t\t{b[7] / a[7]:.2f}\t\n")
print("# bench/mixed.sh" + open(out).read().split("# bench/mixed.sh")[-1])
PY
