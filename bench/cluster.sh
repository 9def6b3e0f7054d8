#!/usr/bin/env bash
# The scale-out benchmark behind docs/SERVING.md ("Scale-out"), with wrk
# (Debian) against replicas of `unplug serve`, each in a network namespace of
# its own, behind nginx (scripts/cluster.sh up N --netns):
#   1. throughput through nginx with 1, 2 and 3 replicas (REPLICAS): DURATION s
#      after a WARMUP s warm-up, CONNS connections, one dev-set input per
#      request, POST /v1/tasks/TASK/classify spread evenly over the tasks;
#      requests/s, p50/p99, non-2xx, socket errors, and per replica (from the
#      replicas' /metrics request counters before and after) its requests/s
#      and share of the requests
#   2. routing overhead (when REPLICAS has 1): the same load against the one replica directly and
#      through nginx
#   3. fault: three replicas under the same load; KILL_AT s into DURATION the
#      replica holding the most tasks is killed -9. Failed requests as the
#      clients saw them (wrk's non-2xx and socket errors, plus a side client
#      that sends one request for the dead replica's task every 10 ms through
#      nginx), the time from the kill to the side client's first 200 for a
#      request sent after it, the slowest side request, nginx's retries
#      (upstream errors in its log)
# Tables in OUT_DIR: throughput.tsv, replicas.tsv, overhead.tsv, fault.tsv
# (each headed by a comment naming the CPU and the settings); wrk's outputs
# and the replicas' /metrics in OUT_DIR/raw.
# Usage: bench/cluster.sh (no arguments: the settings are in the environment)
# Env: MODEL (models/all-minilm-l6-v2), EXPERTS_DIR (build/experts-minilm: TASK.expert for each
#      task), TASKS (the experts in EXPERTS_DIR), DATA (../shared/data: GLUE and TREC dev sets),
#      DURATION (30), WARMUP (3), CONNS (64), REPLICAS ("1 2 3"), KILL_AT (DURATION/3),
#      HOT (every task: each task on two replicas; "" for the plain consistent-hash ring),
#      FAULT_HOT ("": the plain ring, so the dead replica's tasks move to another replica, which
#      plugs them on demand; with HOT's value the other replica of each hot pair has them already),
#      SERVE_OPTS (options for every replica, e.g. "--workers 1 --threads 1"), BUILD (build),
#      OUT_DIR (bench/results/cluster), PORT (8090, nginx), NET (89: scripts/cluster.sh --net),
#      WRK_TIMEOUT (10 s: wrk counts a request slower than this as a socket error, "timeout";
#      its default, 2 s, would count the slow answers of a loaded 2-core machine as failures)
#      MIXED (1: then 4. batches that mix tasks, bench/mixed.sh on MODEL with 20 experts, its
#      table appended to bench/results/mixed-CPU.tsv; MIXED_EXPERTS: where its experts are kept)
# Needs root (network namespaces), wrk and nginx.
set -euo pipefail
[ $# = 0 ] || { sed -n '2,/^set -euo/p' "$0" | sed '$d' >&2; exit 2; }
cd "$(dirname "$0")/.."
build=${BUILD:-build}
model=${MODEL:-models/all-minilm-l6-v2}
experts=${EXPERTS_DIR:-build/experts-minilm}
data=${DATA:-../shared/data}
dur=${DURATION:-30}
warm=${WARMUP:-3}
conns=${CONNS:-64}
reps=${REPLICAS:-1 2 3}
out=${OUT_DIR:-bench/results/cluster}
port=${PORT:-8090}
net=${NET:-89}
serve_opts=${SERVE_OPTS:-}
wrk_timeout=${WRK_TIMEOUT:-10}
die() { echo "bench/cluster.sh: $*" >&2; exit 1; }

command -v wrk >/dev/null || die "wrk is not installed (apt-get install wrk)"
command -v nginx >/dev/null || die "nginx is not installed (apt-get install nginx-core)"
command -v ip >/dev/null || die "ip is not installed (apt-get install iproute2)"
[ "$(id -u)" = 0 ] || die "needs root: the replicas run in network namespaces"
[ -x "$build/unplug" ] || die "$build/unplug is not built (cmake -S . -B build -DCMAKE_BUILD_TYPE=Release && cmake --build build)"
[ -f "$model/config.json" ] && [ -f "$model/vocab.txt" ] ||
  die "no model in $model (config.json, vocab.txt): set MODEL, or scripts/fetch-model.sh"
[ -d "$experts" ] || die "no experts directory $experts: set EXPERTS_DIR to a directory of TASK.expert files, e.g.
  mkdir -p $experts && cp build/results-minilm/trec/expert.expert $experts/trec.expert && cp build/results-minilm/sst2/expert.expert $experts/sst2.expert"
if [ -z "${TASKS:-}" ]; then
  TASKS=$(for f in "$experts"/*.expert; do [ -f "$f" ] && basename "$f" .expert; done | tr '\n' ' ')
fi
tasks=$TASKS
[ -n "${tasks// /}" ] || die "no TASK.expert files in $experts"
for t in $tasks; do [ -f "$experts/$t.expert" ] || die "no expert $experts/$t.expert"; done
hot=${HOT-$(echo $tasks | tr ' ' ',')}
fault_hot=${FAULT_HOT-}
[[ $dur =~ ^[0-9]+$ ]] && [ "$dur" -ge 2 ] || die "DURATION must be a whole number of seconds, at least 2"
kill_at=${KILL_AT:-$((dur >= 3 ? dur / 3 : 1))}
[ "$kill_at" -ge 1 ] && [ "$kill_at" -lt "$dur" ] || die "KILL_AT must be within 1..DURATION-1"
experts=$(cd "$experts" && pwd)
model=$(cd "$model" && pwd)

mkdir -p "$out/raw"
work=$(mktemp -d)
cdir=$work/cluster
pids=""
cleanup() {
  for p in $pids; do kill "$p" 2>/dev/null || true; done
  bash scripts/cluster.sh down --dir "$cdir" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cpu_name=$(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -1)
cpu_fm=$(awk -F': ' '/^cpu family/ {f=$2} /^model[[:space:]]*:/ {m=$2} END {print "family " f " model " m}' /proc/cpuinfo)
header() { echo "# $(nproc) cores of $cpu_name ($cpu_fm); $(date -u +%Y-%m-%dT%H:%MZ); model $(basename "$model"), tasks ${tasks% }, hot ${hot:-none}; wrk -t2 -c$conns -d${dur}s --timeout ${wrk_timeout}s after ${warm}s warm-up; replica options: ${serve_opts:-defaults}"; }

# request bodies: 50 dev examples per task, one input each, POST /v1/tasks/TASK/classify, the tasks
# in turn; every wrk thread starts at a random place
PYTHONPATH=bench python3 - "$data" "$work" $tasks <<'PY' || die "cannot read the dev sets under $data (set DATA)"
import json, sys
from wrkload import TASKS, dev_inputs, write_lua
d, work, tasks = sys.argv[1], sys.argv[2], sys.argv[3:]
ex = {}
for t in tasks:
    if t not in TASKS: sys.exit(f"bench/cluster.sh: no dev set known for task {t} ({', '.join(TASKS)})")
    try: ex[t] = dev_inputs(d, t)
    except OSError as e: sys.exit(f"bench/cluster.sh: {e}")
write_lua(f"{work}/load.lua", [(f"/v1/tasks/{t}/classify", json.dumps({"inputs": [ex[t][i]]})) for i in range(50) for t in tasks])
# the side client's body per task
for t in tasks:
    open(f"{work}/poll-{t}.json", "w").write(json.dumps({"inputs": [ex[t][0]]}))
PY

# wrk's output -> requests_s p50_ms p99_ms non2xx socket_errors requests max_ms (tab-separated)
wrk_row() {
  PYTHONPATH=bench python3 - "$1" <<'PY'
import sys
from wrkload import summary
w = summary(open(sys.argv[1]).read())
print(f"{w['requests_s']:.1f}\t{w['p50_ms']:.1f}\t{w['p99_ms']:.1f}\t{w['non2xx']}\t{w['socket_errors']}\t{w['requests']}\t{w['max_ms']:.0f}")
PY
}
replica_addrs() { cut -f2 "$cdir/replicas.tsv"; }
scrape() { # TAG: every replica's /metrics into raw/TAG-rI.txt (empty when it does not answer)
  local i=0
  for a in $(replica_addrs); do
    curl -s -m 2 "http://$a/metrics" >"$out/raw/$1-r$i.txt" 2>/dev/null || : >"$out/raw/$1-r$i.txt"
    i=$((i + 1))
  done
}
# per replica, from the request counters of two scrapes: replicas replica tasks requests requests_s share
per_replica() { # N BEFORE AFTER SECONDS [LABEL]
  python3 - "$out/raw" "$@" <<'PY'
import os, re, sys
raw, n, before, after, secs = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], float(sys.argv[5])
label = sys.argv[6] if len(sys.argv) > 6 else str(n)
def counts(path):
    c = {}
    for m in re.finditer(r'^unplug_requests_total\{task="([^"]*)",code="(\d+)"\} (\d+)', open(path).read(), re.M):
        c[m.group(1)] = c.get(m.group(1), 0) + int(m.group(3))
    return c
rows = []
for i in range(n):
    a, b = counts(f"{raw}/{before}-r{i}.txt"), counts(f"{raw}/{after}-r{i}.txt")
    if not os.path.getsize(f"{raw}/{after}-r{i}.txt"):  # no answer after: the killed replica, whose counters died with it
        rows.append((i, "killed", None)); continue
    d = {t: b.get(t, 0) - a.get(t, 0) for t in b}
    rows.append((i, ",".join(t for t in sorted(d) if d[t] > 0) or "-", sum(d.values())))
tot = sum(r[2] for r in rows if r[2] is not None) or 1
for i, t, k in rows:
    if k is None: print(f"{label}\t{i}\t{t}\t-\t-\t-")
    else: print(f"{label}\t{i}\t{t}\t{k}\t{k / secs:.1f}\t{100 * k / tot:.1f}")
PY
}
up() { # N
  BUILD=$build bash scripts/cluster.sh up "$1" --netns --net "$net" --model "$model" --experts-dir "$experts" \
    --port "$port" ${hot:+--hot "$hot"} --dir "$cdir" -- $serve_opts >"$work/up.out" 2>&1 ||
    { cat "$work/up.out" >&2; die "scripts/cluster.sh up $1 failed"; }
}
down() { bash scripts/cluster.sh down --dir "$cdir" >/dev/null 2>&1 || true; }
load() { # URL OUT [SECONDS]
  wrk -t2 -c"$conns" -d"${3:-$dur}s" --timeout "${wrk_timeout}s" -s "$work/load.lua" --latency "$1" >"$2"
}

header
printf "%s\nreplicas\trequests_s\trequests_s_per_replica\tp50_ms\tp99_ms\tnon2xx\tsocket_errors\trequests\tmax_ms\n" "$(header)" >"$out/throughput.tsv"
printf "%s\nreplicas\treplica\ttasks\trequests\trequests_s\tshare_pct\n" "$(header)" >"$out/replicas.tsv"
printf "%s\ntarget\tround\trequests_s\tp50_ms\tp99_ms\tnon2xx\tsocket_errors\trequests\tmax_ms\n" "$(header)" >"$out/overhead.tsv"
nginx_url=http://127.0.0.1:$port
for n in $reps; do
  up "$n"
  load "$nginx_url" /dev/null "$warm"                            # plugs the experts on demand, builds kernels
  scrape "before-$n"
  load "$nginx_url" "$out/raw/wrk-$n.txt"
  scrape "after-$n"
  row=$(wrk_row "$out/raw/wrk-$n.txt")
  rps=${row%%$'\t'*}
  printf "%d\t%s\t%s\t%s\n" "$n" "$rps" "$(awk -v r="$rps" -v n="$n" 'BEGIN {printf "%.1f", r / n}')" "${row#*$'\t'}" >>"$out/throughput.tsv"
  per_replica "$n" "before-$n" "after-$n" "$dur" >>"$out/replicas.tsv"
  if [ "$n" = 1 ]; then   # the one replica directly and through nginx, DURATION/2 each in the order ABBA (drift cancels)
    direct=http://$(replica_addrs | head -1)
    half=$(( (dur + 1) / 2 ))
    k=0
    for target in direct nginx nginx direct; do
      k=$((k + 1))
      if [ $target = direct ]; then url=$direct name="replica directly (${direct#http://})"
      else url=$nginx_url name="through nginx"; fi
      load "$url" "$out/raw/wrk-overhead-$k.txt" "$half"
      printf "%s\t%d\t%s\n" "$name" $(( (k + 1) / 2 )) "$(wrk_row "$out/raw/wrk-overhead-$k.txt")" >>"$out/overhead.tsv"
    done
  fi
  echo "== $n replica(s): $(tail -1 "$out/throughput.tsv")"
  down
done

# fault: three replicas, kill -9 the one holding the most tasks under load
hot=$fault_hot
up 3
load "$nginx_url" /dev/null "$warm"
victim=$(python3 - "$cdir/replicas.tsv" <<'PY'
import json, sys, urllib.request
best = None
for line in open(sys.argv[1]):
    i, addr, pid, ns = line.rstrip("\n").split("\t")
    held = sorted(e["task"] for e in json.load(urllib.request.urlopen(f"http://{addr}/v1/experts", timeout=5))["experts"])
    if best is None or len(held) > len(best[3]): best = (i, addr, pid, held)
print(best[0], best[1], best[2], ",".join(best[3]) or "-")
PY
)
read -r v_i v_addr v_pid v_tasks <<<"$victim"
[ "$v_tasks" != - ] || die "no replica holds a task after the warm-up"
poll_task=${v_tasks%%,*}
scrape before-fault
errs0=$(wc -l <"$cdir/nginx.err")
python3 - "$port" "$poll_task" "$work/poll-$poll_task.json" "$dur" "$work/poll.tsv" <<'PY' &
# the side client: one request for the task every 10 ms, a new connection each, through nginx
import http.client, sys, time
port, task, body, dur, outp = int(sys.argv[1]), sys.argv[2], open(sys.argv[3]).read(), float(sys.argv[4]), sys.argv[5]
stop, rows = time.time() + dur, []
while time.time() < stop:
    t0 = time.time()
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        c.request("POST", f"/v1/tasks/{task}/classify", body, {"Content-Type": "application/json"})
        r = c.getresponse(); r.read(); st = r.status; c.close()
    except Exception as e:
        st = 0
    t1 = time.time()
    rows.append(f"{t0:.6f}\t{t1:.6f}\t{st}\n")
    time.sleep(max(0, t0 + 0.01 - time.time()))
open(outp, "w").writelines(rows)
PY
poller=$!
pids="$pids $poller"
load "$nginx_url" "$out/raw/wrk-fault.txt" &
wrkp=$!
pids="$pids $wrkp"
sleep "$kill_at"
t_kill=$(date +%s.%N)
kill -KILL "$v_pid"
wait "$wrkp" || true
wait "$poller" || true
pids=""
scrape after-fault
tail -n +$((errs0 + 1)) "$cdir/nginx.err" >"$out/raw/nginx-fault.err"
retries=$(grep '\[error\]' "$out/raw/nginx-fault.err" | grep -c "upstream" || true)
row=$(wrk_row "$out/raw/wrk-fault.txt")
python3 - "$work/poll.tsv" "$t_kill" "$row" "$v_i" "$v_addr" "$v_tasks" "$poll_task" "$retries" "$(header)" "$kill_at" \
  >"$out/fault.tsv" <<'PY'
import sys
rows = [l.split("\t") for l in open(sys.argv[1])]
rows = [(float(a), float(b), int(c)) for a, b, c in rows]
t_kill, row, vi, vaddr, vtasks, task, retries, header, kill_at = float(sys.argv[2]), sys.argv[3].split("\t"), *sys.argv[4:]
rps, p50, p99, non2xx, sock, n, mx = row
failed = [r for r in rows if r[2] != 200]
after = [r for r in rows if r[0] >= t_kill]
first = min((r[1] for r in after if r[2] == 200), default=float("nan"))
lat = sorted(r[1] - r[0] for r in rows if r[1] < t_kill and r[2] == 200)
p50_before = lat[len(lat) // 2] if lat else float("nan")
around = [r[1] - r[0] for r in rows if t_kill - 0.5 <= r[0] <= t_kill + 1]
ms = lambda x: "-" if x != x else f"{x * 1e3:.0f}"  # no such request: -
print(header)
print("killed\tkilled_tasks\tkill_at_s\trequests\trequests_s\tp50_ms\tp99_ms\tmax_ms\tnon2xx\tsocket_errors\tside_task"
      "\tside_requests\tside_failed\tside_p50_before_kill_ms\tkill_to_first_200_ms\tside_slowest_around_kill_ms\tnginx_retries")
print(f"replica {vi} ({vaddr})\t{vtasks}\t{kill_at}\t{n}\t{rps}\t{p50}\t{p99}\t{mx}\t{non2xx}\t{sock}\t{task}\t{len(rows)}"
      f"\t{len(failed)}\t{ms(p50_before)}\t{ms(first - t_kill)}\t{ms(max(around, default=float('nan')))}\t{retries}")
PY
per_replica 3 before-fault after-fault "$dur" "3, one killed (hot: ${fault_hot:-none})" >>"$out/replicas.tsv"
down

for f in throughput replicas overhead fault; do
  echo "== $f ($out/$f.tsv)"
  grep -v '^# [0-9]* cores' "$out/$f.tsv" | column -t -s $'\t'
done
# 4. the mixed-task batching table of the same section (one process, 20 experts)
if [ "${MIXED:-0}" = 1 ]; then
  MODEL=$model BUILD=$build EXPERTS=${MIXED_EXPERTS:-build/mixed-experts} bash bench/mixed.sh "$data"
fi
