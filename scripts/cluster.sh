#!/usr/bin/env bash
# cluster.sh: N replicas of `unplug serve` behind nginx (Debian's), routed by
# task without parsing a body: POST /v1/tasks/TASK/classify (or
# /v1/classify with the header X-Unplug-Task: TASK) goes to the replica that
# consistent hashing on the task picks, so each replica plugs (on demand) and
# keeps only its share of the experts. A hot task is spread over two
# replicas (replication factor 2). When a replica dies or answers 502/503,
# nginx retries the request on the next replica of the ring, which plugs the
# expert on demand: classify is idempotent.
#
#   scripts/cluster.sh up N [--netns] [--net 88] [--model DIR] [--experts-dir DIR] [--port 8080]
#                           [--hot TASK,TASK] [--dir WORKDIR] [--budget-mb MB] [-- SERVE_OPTIONS...]
#   scripts/cluster.sh down [--dir WORKDIR]
#
# --netns: every replica runs in a network namespace of its own (ip netns,
# from Debian's iproute2), joined to this one by a veth pair (10.88.I.1 here,
# 10.88.I.2 there): separate hosts as far as the network goes. Without it the
# replicas listen on 127.0.0.1, ports PORT+1..PORT+N. Needs root for --netns.
# --net K (1..254, default 88): the subnets 10.K.I.0/24 and, for K other than
# 88, the names upK-rI (namespace) and upK-hI (veth), so that two clusters
# (a benchmark and tests/cli_cluster.sh) can run at once.
# WORKDIR (default /tmp/unplug-cluster) gets nginx.conf, the logs, the pids
# and replicas.tsv (index, address, pid, namespace). nginx listens on
# 127.0.0.1:PORT. deploy/ holds the same setup as systemd units and
# Kubernetes manifests to adapt; bench/cluster.sh measures it with wrk.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cmd=${1:-}
shift || true
dir=/tmp/unplug-cluster

down() {
  [ -f "$dir/nginx.pid" ] && kill "$(cat "$dir/nginx.pid")" 2>/dev/null || true
  if [ -f "$dir/replicas.tsv" ]; then
    while IFS=$'\t' read -r i addr pid ns; do
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$pid" 2>/dev/null || true
      if [ "$ns" != - ]; then
        ip netns del "$ns" 2>/dev/null || true
        ip link del "${ns%-r*}-h$i" 2>/dev/null || true
      fi
    done <"$dir/replicas.tsv"
    rm -f "$dir/replicas.tsv"
  fi
}

case "$cmd" in
up) ;;
down)
  while [ $# -gt 0 ]; do case $1 in --dir) dir=$2; shift 2 ;; *) echo "cluster.sh: unknown option $1" >&2; exit 2 ;; esac; done
  down
  exit 0 ;;
*) sed -n '2,25p' "$0" >&2; exit 2 ;;
esac

n=${1:?usage: cluster.sh up N ...}
shift
netns=0 net=88 model=$root/models/unplug-mini experts=$root/build/experts port=8080 hot="" budget=0 build=${BUILD:-$root/build}
while [ $# -gt 0 ]; do
  case $1 in
  --netns) netns=1; shift ;;
  --net) net=$2; shift 2 ;;
  --model) model=$2; shift 2 ;;
  --experts-dir) experts=$2; shift 2 ;;
  --port) port=$2; shift 2 ;;
  --hot) hot=$2; shift 2 ;;
  --dir) dir=$2; shift 2 ;;
  --budget-mb) budget=$2; shift 2 ;;
  --) shift; break ;;
  *) echo "cluster.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
serve_opts=("$@")
[[ $n =~ ^[1-9][0-9]?$ ]] || { echo "cluster.sh: N must be 1..99" >&2; exit 2; }
[[ $net =~ ^[1-9][0-9]{0,2}$ ]] && [ "$net" -le 254 ] || { echo "cluster.sh: --net must be 1..254" >&2; exit 2; }
nsp=up$([ "$net" = 88 ] || echo "$net")
command -v nginx >/dev/null || { echo "cluster.sh: nginx is not installed (apt-get install nginx-core)" >&2; exit 1; }
[ -x "$build/unplug" ] || { echo "cluster.sh: $build/unplug is not built (make)" >&2; exit 1; }
[ -d "$experts" ] || { echo "cluster.sh: no experts directory $experts" >&2; exit 1; }
mkdir -p "$dir"
down
: >"$dir/replicas.tsv"
. "$root/scripts/serve-port.sh"
servers=""
for i in $(seq 0 $((n - 1))); do
  log=$dir/replica$i.log
  args=(serve --model "$model" --experts-dir "$experts" --plug-on-demand --experts-budget-mb "$budget" --quiet "${serve_opts[@]}")
  if [ "$netns" = 1 ]; then
    ns=$nsp-r$i
    ip netns add "$ns" || { echo "cluster.sh: cannot create the namespace $ns (another cluster on --net $net?)" >&2; down; exit 1; }
    ip link add "$nsp-h$i" type veth peer name eth0 netns "$ns"
    ip addr add "10.$net.$i.1/24" dev "$nsp-h$i"
    ip link set "$nsp-h$i" up
    ip -n "$ns" addr add "10.$net.$i.2/24" dev eth0
    ip -n "$ns" link set eth0 up
    ip -n "$ns" link set lo up
    addr=10.$net.$i.2:8080
    ip netns exec "$ns" "$build/unplug" "${args[@]}" --host "10.$net.$i.2" --port 8080 2>"$log" &
  else
    ns=-
    addr=127.0.0.1:$((port + 1 + i))
    "$build/unplug" "${args[@]}" --port $((port + 1 + i)) 2>"$log" &
  fi
  pid=$!
  printf "%d\t%s\t%d\t%s\n" "$i" "$addr" "$pid" "$ns" >>"$dir/replicas.tsv"
  servers="$servers    server $addr max_fails=1 fail_timeout=5s;"$'\n'
done
# every replica answers /healthz before nginx starts
while IFS=$'\t' read -r i addr pid ns; do
  ok=0
  for _ in $(seq 100); do
    if curl -sf -o /dev/null "http://$addr/healthz"; then ok=1; break; fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  [ $ok = 1 ] || { echo "cluster.sh: replica $i ($addr) did not start:" >&2; cat "$dir/replica$i.log" >&2; down; exit 1; }
done <"$dir/replicas.tsv"

# a hot task's two replicas: rendezvous hashing (the two highest sha256(task:replica) scores), an
# upstream of its own that round-robins over them, the others as backups for retries
hot_maps="" hot_pools=""
for t in ${hot//,/ }; do
  [[ $t =~ ^[A-Za-z0-9_.-]+$ ]] || { echo "cluster.sh: bad task name in --hot: $t" >&2; down; exit 2; }
  pick=$(for i in $(seq 0 $((n - 1))); do printf "%s %d\n" "$(printf "%s:%d" "$t" "$i" | sha256sum | cut -c1-16)" "$i"; done |
    sort -r | head -2 | awk '{print $2}')
  pool=""
  while IFS=$'\t' read -r i addr pid ns; do
    if grep -qx "$i" <<<"$pick"; then pool="$pool        server $addr max_fails=1 fail_timeout=5s;"$'\n'
    else pool="$pool        server $addr backup;"$'\n'; fi
  done <"$dir/replicas.tsv"
  hot_maps="$hot_maps        $t hot_$t;"$'\n'
  hot_pools="$hot_pools    upstream hot_$t {"$'\n'"$pool        keepalive 8;"$'\n'"    }"$'\n'
done
cat >"$dir/nginx.conf" <<EOF
# generated by scripts/cluster.sh: $n replicas of unplug serve
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/nginx.err warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $dir/body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;
    # the task: from the path, else from the X-Unplug-Task header
    map \$uri \$task_from_path { ~^/v1/tasks/(?<t>[^/]+)/classify\$ \$t; default ""; }
    map \$task_from_path \$task { "" \$http_x_unplug_task; default \$task_from_path; }
    # every task goes to its replica of the consistent-hash ring; a hot task to its pool of two
    map \$task \$pool {
        default unplug;
$hot_maps    }
    upstream unplug {
        hash \$task consistent;
$servers        keepalive 32;
    }
$hot_pools
    server {
        listen 127.0.0.1:$port;
        client_max_body_size 1m;
        location / {
            proxy_pass http://\$pool;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            # classify is idempotent: a request whose replica died or is draining is sent to the next one
            proxy_next_upstream error timeout http_502 http_503 non_idempotent;
            proxy_next_upstream_tries 3;
            proxy_connect_timeout 1s;
            proxy_read_timeout 120s;
        }
        # plugging and unplugging are per replica (replicas plug on demand): not through the proxy
        location /v1/experts/ { return 403 '{"error": {"code": 403, "message": "admin endpoints are per replica"}}\n'; }
        location = /v1/experts {
            limit_except GET { deny all; }
            proxy_pass http://unplug;
        }
    }
}
EOF
mkdir -p "$dir/body" "$dir/proxy"
nginx -t -q -c "$dir/nginx.conf" -p "$dir" 2>"$dir/nginx.err" || { cat "$dir/nginx.err" >&2; down; exit 1; }
nginx -c "$dir/nginx.conf" -p "$dir"
for _ in $(seq 50); do curl -sf -o /dev/null "http://127.0.0.1:$port/healthz" && break; sleep 0.1; done
echo "cluster.sh: nginx on http://127.0.0.1:$port, $n replicas ($([ $netns = 1 ] && echo "network namespaces" || echo loopback ports)):"
column -t "$dir/replicas.tsv"
