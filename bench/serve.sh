#!/usr/bin/env bash
# The serving benchmark behind docs/SERVING.md, with wrk (Debian) on loopback:
#   1. plug costs (bench_plug): load, gather, memory, forward, switch
#   2. load: DURATION s (30), CONNS connections (64), requests spread over the
#      task experts (TASKS; one input each, real dev-set texts), against the
#      pruned experts and against the unpruned tuned models; requests/s,
#      p50/p99 latency, non-2xx count, server RSS
#   3. soak: SOAK s (300) of the same load against the experts while another
#      client re-plugs (replaces) one expert and unplugs/plugs another every
#      second; RSS sampled every 10 s
# Usage: bench/serve.sh DATA_DIR [RESULTS_DIR] [OUT_DIR]
#   RESULTS_DIR: bench/tasks.sh output with TASK/expert.expert, TASK/tuned.expert (build/results)
#   OUT_DIR: where the tables go (bench/results/serve)
# Env: BUILD (build), MODEL (models/unplug-mini), DURATION, CONNS, SOAK (0 skips), WORKERS, THREADS,
#      TASKS (the experts served, "sst2 trec mrpc rte cola"; at least two: the soak replaces
#      the first and unplugs and plugs again the last)
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:?usage: bench/serve.sh DATA_DIR [RESULTS_DIR] [OUT_DIR]}
res=${2:-build/results}
out=${3:-bench/results/serve}
build=${BUILD:-build}
cli=$build/unplug
model=${MODEL:-models/unplug-mini}
dur=${DURATION:-30}
conns=${CONNS:-64}
soak=${SOAK:-300}
tasks=${TASKS:-sst2 trec mrpc rte cola}
set -- $tasks
[ $# -ge 2 ] || { echo "bench/serve.sh: TASKS needs at least two tasks" >&2; exit 1; }
first=$1
for last in $tasks; do :; done
command -v wrk >/dev/null || { echo "bench/serve.sh: wrk not installed (apt-get install wrk)" >&2; exit 1; }
[ -x "$cli" ] && [ -x "$build/bench_plug" ] || { echo "bench/serve.sh: build first (make)" >&2; exit 1; }
mkdir -p "$out"
work=$(mktemp -d)
trap 'kill $spid 2>/dev/null; rm -rf "$work"' EXIT
mkdir -p "$work/expert" "$work/full"
for t in $tasks; do
  cp "$res/$t/expert.expert" "$work/expert/$t.expert"
  cp "$res/$t/tuned.expert" "$work/full/$t.expert"
done

# request bodies: 50 dev examples per task, one input each, cycled by wrk
python3 - "$data" "$work/bodies.lua" $tasks <<'PY'
import json, sys
d, out, tasks = sys.argv[1], sys.argv[2], sys.argv[3:]
def tsv(path, skip_header=True):
    rows = [l.rstrip("\n").split("\t") for l in open(path, encoding="utf-8-sig")]
    return rows[1:] if skip_header else rows
ex = {
    "sst2": [[r[0]] for r in tsv(f"{d}/glue/SST-2/dev.tsv")],
    "mrpc": [[r[3], r[4]] for r in tsv(f"{d}/glue/MRPC/dev.tsv")],
    "rte": [[r[1], r[2]] for r in tsv(f"{d}/glue/RTE/dev.tsv")],
    "cola": [[r[3]] for r in tsv(f"{d}/glue/CoLA/dev.tsv", False)],
    "trec": [[l.split(" ", 1)[1].strip()] for l in open(f"{d}/trec/TREC.test", encoding="latin-1")],
}
bodies = []
for i in range(50):
    for t in tasks:
        x = ex[t][i]
        bodies.append(json.dumps({"task": t, "inputs": [x[0] if len(x) == 1 else x]}))
with open(out, "w") as f:
    f.write("bodies = {\n" + ",\n".join("[=[" + b + "]=]" for b in bodies) + "\n}\n")
    f.write('''
local i = 0
setup = function(thread) thread:set("start", math.random(1, #bodies)) end
init = function(args) i = start or 0 end
request = function()
  i = i + 1
  return wrk.format("POST", "/v1/classify", {["Content-Type"] = "application/json"}, bodies[(i % #bodies) + 1])
end
''')
PY

. scripts/serve-port.sh
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
start_server() { # DIR
  "$cli" serve --model "$model" --experts-dir "$1" --port 0 --quiet ${WORKERS:+--workers $WORKERS} \
    ${THREADS:+--threads $THREADS} 2>"$work/serve.log" &
  spid=$!
  port=$(serve_port "$work/serve.log" "$spid") || exit 1
}
stop_server() { kill -TERM "$spid"; wait "$spid" || true; }

{
echo "# plug costs: $build/bench_plug $model (experts of $res)"
"$build/bench_plug" "$model" "$work"/expert/*.expert
echo
} | tee "$out/plug.txt"

: >"$out/load.tsv"
printf "model\trequests_s\tp50_ms\tp99_ms\tnon2xx\trequests\trss_mb\n" >>"$out/load.tsv"
for kind in expert full; do
  start_server "$work/$kind"
  wrk -t2 -c"$conns" -d3s -s "$work/bodies.lua" "http://127.0.0.1:$port" >/dev/null   # warm-up
  wrk -t2 -c"$conns" -d"${dur}s" -s "$work/bodies.lua" --latency "http://127.0.0.1:$port" >"$work/wrk-$kind.txt"
  rss=$(rss_kb "$spid")
  curl -s "http://127.0.0.1:$port/metrics" >"$out/metrics-$kind.txt"
  stop_server
  echo "== $kind" && cat "$work/wrk-$kind.txt"
  name=$([ "$kind" = expert ] && echo "pruned experts" || echo "unpruned tuned")
  IFS=$'\t' read -r rps p50 p99 bad n < <(python3 bench/wrk_summary.py "$work/wrk-$kind.txt")
  printf "%s\t%s\t%s\t%s\t%s\t%s\t%s\n" "$name" "$rps" "$p50" "$p99" "$bad" "$n" "$(awk -v k="$rss" 'BEGIN { printf "%.1f", k / 1024 }')" >>"$out/load.tsv"
done
echo "== load (${dur} s, $conns connections)" && column -t -s $'\t' "$out/load.tsv"

if [ "$soak" -gt 0 ]; then
  start_server "$work/expert"
  wrk -t2 -c"$conns" -d"${soak}s" -s "$work/bodies.lua" --latency "http://127.0.0.1:$port" >"$work/wrk-soak.txt" &
  wpid=$!
  printf "second\trss_mb\n" >"$out/soak.tsv"
  t0=$(date +%s)
  n=0
  while kill -0 $wpid 2>/dev/null; do
    curl -s -o /dev/null -XPOST "http://127.0.0.1:$port/v1/experts" -d "{\"name\":\"$first\"}"   # replace
    curl -s -o /dev/null -XDELETE "http://127.0.0.1:$port/v1/experts/$last"                # unplug
    curl -s -o /dev/null -XPOST "http://127.0.0.1:$port/v1/experts" -d "{\"name\":\"$last\"}"    # plug again
    n=$((n + 1))
    el=$(($(date +%s) - t0))
    if [ $((n % 10)) -eq 1 ]; then printf "%d\t%s\n" "$el" "$(awk '/VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$spid/status")" >>"$out/soak.tsv"; fi
    sleep 1
  done
  wait $wpid || true
  curl -s "http://127.0.0.1:$port/metrics" >"$out/metrics-soak.txt"
  stop_server
  echo "== soak ($soak s, $n plug cycles)" && cat "$work/wrk-soak.txt" && column -t "$out/soak.tsv"
  grep -E "^unplug_(plugs|unplugs|replacements)_total|code=\"404\"" "$out/metrics-soak.txt" || true
fi
