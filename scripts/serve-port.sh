# scripts/serve-port.sh (sourced): serve_port LOG PID waits until the
# `unplug serve` writing LOG says where it listens and prints the port;
# fails (showing the log) if it exits or takes over 30 s.
serve_port() {
  local log=$1 pid=$2 port=
  for _ in $(seq 300); do
    port=$(sed -n 's/.*listening on http:\/\/127.0.0.1:\([0-9]*\).*/\1/p' "$log")
    [ -n "$port" ] && { echo "$port"; return 0; }
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  cat "$log" >&2
  return 1
}
