#!/usr/bin/env bash
# unplug serve on a loopback port, talked to over HTTP as a client would
# (tiny model, generated tasks, seconds): concurrent mixed-task requests give
# the labels and probabilities of the CLI's one-at-a-time inference; plugging,
# replacing and unplugging experts while serving loses no request; every bad
# input gets its status and a JSON error; the router picks tasks; SIGTERM
# drains the requests in flight.
set -u
. "${UP_SOURCE_DIR:?}/tests/lib.sh"
M=$src/tests/data/models/bert-f32-gelu
mkdir -p "$tmp/sent" "$tmp/dig" "$tmp/ex" "$tmp/spare" "$tmp/outside"
python3 "$src/scripts/toy-task.py" "$tmp/sent"
python3 "$src/scripts/toy-task.py" "$tmp/dig" digits
tune() { # NAME DATA_DIR OUT [extra]
  local name=$1 d=$2 out=$3; shift 3
  "$cli" tune --model "$M" --train "$d/train.tsv" --val "$d/val.tsv" --test "$d/test.tsv" --task "$name" --out "$out" \
    --prompts 4 --max-len 32 --epochs 2 --batch 16 --lr 1e-2 --head-lr 1e-2 --precision fp32 "$@" >/dev/null 2>"$tmp/tune.err" ||
    { bad "tune $name"; cat "$tmp/tune.err" >&2; }
}
tune sent "$tmp/sent" "$tmp/sent-full.expert"
"$cli" localize --model "$M" --expert "$tmp/sent-full.expert" --train "$tmp/sent/train.tsv" --val "$tmp/sent/val.tsv" \
  --test "$tmp/sent/test.tsv" --task sent --ratio 0.5 --out "$tmp/ex/sent.expert" --precision fp32 >/dev/null 2>&1 ||
  bad "localize sent"
tune digits "$tmp/dig" "$tmp/ex/digits.expert"
tune spare "$tmp/sent" "$tmp/spare/spare.expert" --prompts 2
cp "$tmp/spare/spare.expert" "$tmp/ex/spare.expert"
cp "$tmp/spare/spare.expert" "$tmp/outside/secret.expert"
echo "test-key-0123456789" >"$tmp/key"

# the CLI's single-request inference: the reference
head -40 "$tmp/sent/test.tsv" | tail -39 | cut -f1 >"$tmp/sent.txt"
head -40 "$tmp/dig/test.tsv" | tail -39 | cut -f1 >"$tmp/dig.txt"
"$cli" classify --model "$M" --expert "$tmp/ex/sent.expert" --precision fp32 <"$tmp/sent.txt" >"$tmp/sent.ref" 2>"$tmp/cl.err" &&
  [ "$(wc -l <"$tmp/sent.ref")" -eq 39 ] && ok || { bad "classify sent"; cat "$tmp/cl.err" >&2; }
"$cli" classify --model "$M" --expert "$tmp/ex/digits.expert" --precision fp32 <"$tmp/dig.txt" >"$tmp/dig.ref" 2>"$tmp/cl.err" &&
  [ "$(wc -l <"$tmp/dig.ref")" -eq 39 ] && ok || { bad "classify digits"; cat "$tmp/cl.err" >&2; }
# the expert in int8 (quantized at plug time) labels nearly every line as fp32 does
if "$cli" classify --model "$M" --expert "$tmp/ex/sent.expert" --precision int8 <"$tmp/sent.txt" >"$tmp/sent.q8" 2>"$tmp/cl.err"; then
  python3 -c "
import json, sys
a = [json.loads(l)['label'] for l in open('$tmp/sent.ref')]
b = [json.loads(l)['label'] for l in open('$tmp/sent.q8')]
same = sum(x == y for x, y in zip(a, b))
sys.exit(0 if len(a) == len(b) == 39 and same >= 37 else print('int8 agrees on', same, 'of', len(a)) or 1)" && ok || bad "classify int8"
else
  grep -q "need VNNI or AMX" "$tmp/cl.err" && ok || bad "classify int8: $(cat "$tmp/cl.err")"
fi

# a router over the two tasks' training data
"$cli" router build --model "$M" --tasks "sent=$tmp/sent/train.tsv,digits=$tmp/dig/train.tsv" --per-task 300 \
  --out "$tmp/tasks.router" --precision fp32 >"$tmp/router.out" 2>"$tmp/router.err" || { bad "router build"; cat "$tmp/router.err" >&2; }
python3 - "$tmp/router.out" <<'PY' && ok || bad "router accuracy: $(cat "$tmp/router.out")"
import re, sys
m = re.search(r"held-out routing accuracy ([\d.]+)%", open(sys.argv[1]).read())
assert m and float(m.group(1)) >= 95, m
PY

# what two HTTP scripts below share: a client, and concurrent clients whose answers must equal the CLI's
cat >"$tmp/answers.py" <<'PY'
import http.client, json, random, threading
def call(port, method, path, body=None, headers=None, raw=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    data = raw if raw is not None else (json.dumps(body) if body is not None else None)
    c.request(method, path, body=data, headers=headers or {})
    r = c.getresponse()
    payload = r.read()
    out = (r.status, dict(r.getheaders()), payload)
    c.close()
    return out
def load(tmp):
    texts = {"sent": open(f"{tmp}/sent.txt").read().splitlines(), "digits": open(f"{tmp}/dig.txt").read().splitlines()}
    ref = {t: [json.loads(l) for l in open(f"{tmp}/{f}.ref")] for t, f in (("sent", "sent"), ("digits", "dig"))}
    return texts, ref
def check(results, task, idx, ref, errors):
    for i, got in zip(idx, results):
        want = ref[task][i]
        if got["expert"] != task or got["label"] != want["label"]:
            errors.append(f"{task} #{i}: {got} vs {want}")
        for k, v in want["probabilities"].items():
            if abs(got["probabilities"][k] - v) > 1e-5:
                errors.append(f"{task} #{i} {k}: {got['probabilities'][k]} vs {v}")
def clients(port, tmp, tasks, rounds, named_share=1.0):
    """8 clients at once, each rounds requests of 1-4 inputs of a task of tasks (without the task in the body
    for 1 - named_share of them: the router's); "spare" has no reference and must answer 200. The errors."""
    texts, ref = load(tmp)
    errors = []
    def client(seed):
        r = random.Random(seed)
        for _ in range(rounds):
            task = r.choice(tasks)
            if task == "spare":
                st, _, p = call(port, "POST", "/v1/classify", {"task": "spare", "inputs": ["a good film", "a bad film"]})
                if st != 200: errors.append(f"spare: {st} {p[:120]}")
                continue
            idx = [r.randrange(len(texts[task])) for _ in range(r.randint(1, 4))]
            body = {"inputs": [texts[task][i] for i in idx]}
            if r.random() < named_share: body["task"] = task
            st, _, p = call(port, "POST", "/v1/classify", body)
            if st != 200:
                errors.append(f"status {st}: {p[:200]}")
                continue
            check(json.loads(p)["results"], task, idx, ref, errors)
    th = [threading.Thread(target=client, args=(s,)) for s in range(8)]
    [t.start() for t in th]
    [t.join() for t in th]
    return errors
PY

. "$src/scripts/serve-port.sh"
start() { # LOG extra-args...: starts the server, sets $pid and $port
  local log=$1; shift
  "$cli" serve --model "$M" --experts-dir "$tmp/ex" --port 0 --precision fp32 --workers 2 --threads 1 "$@" 2>"$log" &
  pid=$!
  port=$(serve_port "$log" $pid) && ok || bad "server did not start"
}

start "$tmp/serve.log" --max-wait-ms 3 --max-inputs 8 --max-text 2000 --max-body 8192 --api-key-file "$tmp/key" \
  --router "$tmp/tasks.router"
python3 - "$port" "$tmp" <<'PY' && ok || bad "HTTP checks"
import http.client, json, sys, threading, random
port, tmp = int(sys.argv[1]), sys.argv[2]
fails = []
def check(cond, what):
    if not cond:
        fails.append(what)
        print("FAIL:", what, file=sys.stderr)

sys.path.insert(0, tmp)
import answers
def call(*a, **k): return answers.call(port, *a, **k)
texts, ref = answers.load(tmp)

# 1. concurrent mixed-task requests == the CLI's one-at-a-time answers
errors = answers.clients(port, tmp, ["sent", "digits"], 15, named_share=0.8)
check(not errors, f"concurrent answers differ from the CLI's: {errors[:5]}")

# 2. plug / replace / unplug while serving: no request is lost
stop = threading.Event()
lost = []
def steady(seed):
    r = random.Random(seed)
    while not stop.is_set():
        task = r.choice(["sent", "digits"])
        st, _, p = call("POST", "/v1/classify", {"task": task, "inputs": [texts[task][0]]})
        if st != 200: lost.append((task, st, p[:120]))
        st, _, p = call("POST", "/v1/classify", {"task": "spare", "inputs": ["a good film"]})
        if st not in (200, 404): lost.append(("spare", st, p[:120]))
auth = {"Authorization": "Bearer test-key-0123456789"}
th = [threading.Thread(target=steady, args=(s,)) for s in range(4)]
[t.start() for t in th]
for i in range(10):
    st, _, p = call("DELETE", "/v1/experts/spare", headers=auth)
    check(st == 200, f"unplug spare: {st} {p[:100]}")
    st, _, p = call("POST", "/v1/experts", {"name": "spare"}, headers=auth)
    check(st == 201 and json.loads(p)["task"] == "spare", f"plug spare: {st} {p[:100]}")
    st, _, p = call("POST", "/v1/experts", {"name": "digits"}, headers=auth)   # replaces the live expert
    check(st == 201, f"replace digits: {st} {p[:100]}")
stop.set()
[t.join() for t in th]
check(not lost, f"requests lost while plugging: {lost[:5]}")

# 3. bad input
def err(st, p, code, what):
    ok = st == code
    try:
        e = json.loads(p)["error"]
        ok = ok and e["code"] == code and isinstance(e["message"], str) and e["message"]
    except Exception:
        ok = False
    check(ok, f"{what}: expected {code} with a JSON error, got {st} {p[:150]}")
st, _, p = call("POST", "/v1/classify", raw="{not json"); err(st, p, 400, "malformed JSON")
st, _, p = call("POST", "/v1/classify", raw='["a"]'); err(st, p, 400, "not an object")
st, _, p = call("POST", "/v1/classify", {"task": 7, "inputs": ["a"]}); err(st, p, 400, "task not a string")
st, _, p = call("POST", "/v1/classify", {"task": "sent", "inputs": "a"}); err(st, p, 400, "inputs not an array")
st, _, p = call("POST", "/v1/classify", {"task": "sent", "inputs": [["a"]]}); err(st, p, 400, "pair of one")
st, _, p = call("POST", "/v1/classify", {"task": "sent", "inputs": [1]}); err(st, p, 400, "input not a string")
st, _, p = call("POST", "/v1/classify", {"task": "sent", "inputs": []}); err(st, p, 400, "no inputs")
st, _, p = call("POST", "/v1/classify", {"task": "sent", "inputs": ["a"], "extra": 1}); err(st, p, 400, "unknown field")
st, _, p = call("POST", "/v1/classify", raw='{"task": "sent", "inputs": ["\\u0000"]}'); err(st, p, 400, "NUL in text")
st, _, p = call("POST", "/v1/classify", raw=b'{"task": "sent", "inputs": ["\xff"]}'); err(st, p, 400, "invalid UTF-8")
st, _, p = call("POST", "/v1/classify", {"task": "nosuch", "inputs": ["a"]}); err(st, p, 404, "unknown task")
st, _, p = call("POST", "/v1/classify", {"task": "sent", "inputs": ["a"] * 9}); err(st, p, 413, "too many inputs")
st, _, p = call("POST", "/v1/classify", {"task": "sent", "inputs": ["a" * 2001]}); err(st, p, 413, "text too long")
st, _, p = call("POST", "/v1/classify", {"task": "sent", "inputs": ["a " * 5000]}); err(st, p, 413, "body too big")
st, _, p = call("GET", "/v1/classify"); err(st, p, 405, "wrong method")
st, _, p = call("GET", "/nope"); err(st, p, 404, "unknown endpoint")
st, _, p = call("POST", "/v1/experts", {"name": "spare"}); err(st, p, 401, "plug without the key")
st, _, p = call("DELETE", "/v1/experts/spare", headers={"Authorization": "Bearer wrong-key-000000"}); err(st, p, 401, "wrong key")
for name in ["../outside/secret", "/etc/passwd", ".hidden", "a/b", "..", ""]:
    st, _, p = call("POST", "/v1/experts", {"name": name}, headers=auth); err(st, p, 400, f"name {name!r}")
import os
os.symlink(f"{tmp}/outside/secret.expert", f"{tmp}/ex/escape.expert")
st, _, p = call("POST", "/v1/experts", {"name": "escape"}, headers=auth); err(st, p, 400, "a symlink out of the directory")
os.remove(f"{tmp}/ex/escape.expert")
st, _, p = call("POST", "/v1/experts", {"name": "nothere"}, headers=auth); err(st, p, 404, "missing expert file")
st, _, p = call("POST", "/v1/experts", {"name": "spare", "path": "/etc"}, headers=auth); err(st, p, 400, "plug with an unknown field")
check(b"unknown field 'path'" in p, f"unknown field message: {p[:200]}")
os.mkfifo(f"{tmp}/ex/fifo.expert")  # a FIFO must be refused at once, not waited on
st, _, p = call("POST", "/v1/experts", {"name": "fifo"}, headers=auth); err(st, p, 422, "plug a FIFO")
check(b"not a regular file" in p, f"FIFO message: {p[:200]}")
os.remove(f"{tmp}/ex/fifo.expert")
st, hd, p = call("HEAD", "/healthz"); check(st == 200 and p == b"", f"HEAD /healthz: {st} {p[:80]}")
# messages that quote the request stay valid UTF-8 (a cut inside a character once dropped the answer)
st, _, p = call("POST", "/v1/classify", raw=json.dumps({"task": "sent", "inputs": ["a"], "a" * 63 + "\u00e9": 1}))
err(st, p, 400, "unknown field cut inside a character")
st, _, p = call("DELETE", "/v1/experts/" + "a" * 39 + "%C3%A9", headers=auth); err(st, p, 404, "unplug a non-ASCII name")
# a body announced over the limit is refused before it is sent
import socket
sk = socket.create_connection(("127.0.0.1", port), timeout=10)
sk.sendall(b"POST /v1/classify HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000000\r\n\r\n")
head = sk.recv(4096).decode("latin-1")
sk.close()
check(head.startswith("HTTP/1.1 413"), f"huge Content-Length: {head[:80]!r}")
st, _, p = call("DELETE", "/v1/experts/nothere", headers=auth); err(st, p, 404, "unplug a task not plugged")
# request smuggling: a body framed two ways is refused with a JSON 400 and the connection closed
for framing in [b"Content-Length: 5\r\nContent-Length: 40\r\n", b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n"]:
    sk = socket.create_connection(("127.0.0.1", port), timeout=10)
    sk.sendall(b"POST /v1/classify HTTP/1.1\r\nHost: x\r\n" + framing + b"\r\n{}\r\n")
    ans = b""
    while True:
        part = sk.recv(4096)
        if not part: break
        ans += part
    sk.close()
    check(ans.startswith(b"HTTP/1.1 400") and b'"error"' in ans and ans.count(b"HTTP/1.1") == 1,
          f"{framing!r}: {ans[:300]!r}")

# 4. the router: requests without a task go to the right expert
st, _, p = call("POST", "/v1/classify", {"inputs": texts["sent"][:4] + texts["digits"][:4]})
check(st == 200, f"routed request: {st} {p[:200]}")
if st == 200:
    got = [x["expert"] for x in json.loads(p)["results"]]
    check(got == ["sent"] * 4 + ["digits"] * 4, f"router picked {got}")

# 5. listing, health, metrics
st, _, p = call("GET", "/v1/experts")
names = sorted(e["task"] for e in json.loads(p)["experts"]) if st == 200 else []
check(names == ["digits", "sent", "spare"], f"experts listed: {names}")
sent = [e for e in json.loads(p)["experts"] if e["task"] == "sent"][0]
check(abs(sent["ffn_kept"] - 0.5) < 0.01 and sent["bytes"] > 0, f"sent expert: {sent}")
st, _, p = call("GET", "/healthz"); check(st == 200 and json.loads(p)["status"] == "ok", "healthz")
st, _, p = call("GET", "/metrics")
m = p.decode()
for want in ['unplug_requests_total{task="sent",code="200"}', 'unplug_requests_total{task="none",code="400"}',
             'unplug_requests_total{task="unknown",code="404"}', 'unplug_request_duration_seconds_bucket{task="digits",le="+Inf"}',
             'unplug_batch_size_count{task="sent"}', "unplug_queue_depth 0", "unplug_plugs_total", "unplug_unplugs_total 10",
             "unplug_expert_swaps_total", "unplug_routed_inputs_total", "unplug_experts 3"]:
    check(want in m, f"metrics lack {want}")
sys.exit(1 if fails else 0)
PY
kill -TERM $pid; wait $pid; rc=$?
[ $rc -eq 0 ] && grep -q "stopped" "$tmp/serve.log" && ok || { bad "SIGTERM exit $rc"; tail -5 "$tmp/serve.log" >&2; }

# --mix-tasks: batches of several tasks (sent: pruned FFN, digits: every neuron; spare has 2 prompt vectors,
# not 4, so it is batched apart) answer what the CLI answers; /metrics counts the mixed batches
start "$tmp/serve-mix.log" --mix-tasks --max-wait-ms 20 --quiet
python3 - "$port" "$tmp" <<'PY' && ok || bad "--mix-tasks answers"
import sys
port, tmp = int(sys.argv[1]), sys.argv[2]
sys.path.insert(0, tmp)
import answers
errors = answers.clients(port, tmp, ["sent", "digits", "spare"], 12)
st, _, p = answers.call(port, "GET", "/metrics")
m = {l.split()[0]: float(l.split()[1]) for l in p.decode().splitlines() if l.startswith("unplug_mixed")}
if errors: print("FAIL:", errors[:5], file=sys.stderr)
if not m.get("unplug_mixed_batches_total", 0) > 0: print("FAIL: no mixed batch:", m, file=sys.stderr)
sys.exit(1 if errors or not m.get("unplug_mixed_batches_total", 0) > 0 else 0)
PY
kill -TERM $pid; wait $pid

# queue full: 503 with Retry-After (a queue of 4 inputs; a 4-input request waits 1.5 s for its batch to fill)
start "$tmp/serve2.log" --queue 4 --max-inputs 4 --max-wait-ms 1500 --max-batch 64 --quiet
python3 - "$port" <<'PY' && ok || bad "queue full"
import http.client, json, sys, threading, time
port = int(sys.argv[1])
def post(inputs, out):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request("POST", "/v1/classify", body=json.dumps({"task": "sent", "inputs": inputs}))
    r = c.getresponse(); out.append((r.status, r.getheader("Retry-After"), r.read()))
first = []
t = threading.Thread(target=post, args=(["a", "b", "c", "d"], first)); t.start()
time.sleep(0.5)
second = []
post(["e"], second)
t.join()
st, ra, p = second[0]
assert st == 503 and ra == "1" and json.loads(p)["error"]["code"] == 503, second
assert first[0][0] == 200, first
PY
kill -TERM $pid; wait $pid

# SIGTERM drains: requests waiting in a slow batch (max wait 1.5 s) all finish
start "$tmp/serve3.log" --max-wait-ms 1500 --max-batch 64 --quiet
python3 - "$port" "$pid" <<'PY' && ok || bad "drain on SIGTERM"
import http.client, json, os, signal, sys, threading, time
port, pid = int(sys.argv[1]), int(sys.argv[2])
res = []
def one(i):
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        c.request("POST", "/v1/classify", body=json.dumps({"task": "sent", "inputs": [f"a good film {i}"]}))
        r = c.getresponse(); res.append((r.status, r.read()))
    except Exception as e:
        res.append((0, str(e)))
th = [threading.Thread(target=one, args=(i,)) for i in range(6)]
[t.start() for t in th]
time.sleep(0.5)          # all six are queued, waiting for the batch to fill
os.kill(pid, signal.SIGTERM)
[t.join() for t in th]
assert len(res) == 6 and all(s == 200 for s, _ in res), res
PY
wait $pid; rc=$?
[ $rc -eq 0 ] && grep -q "SIGTERM: draining" "$tmp/serve3.log" && ok || { bad "drained server exit $rc"; cat "$tmp/serve3.log" >&2; }

# an input that cannot be encoded (4 prompt vectors do not fit --max-len 5) is a 400 naming it
start "$tmp/serve4.log" --max-len 5 --quiet
python3 - "$port" <<'PY' && ok || bad "unencodable input"
import http.client, json, sys
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=30)
c.request("POST", "/v1/classify", body=json.dumps({"task": "sent", "inputs": ["a good film"]}))
r = c.getresponse(); p = json.loads(r.read())
assert r.status == 400 and "inputs[0]" in p["error"]["message"], (r.status, p)
PY
kill -TERM $pid; wait $pid

# a client that goes away: its queued inputs are dropped uncomputed (counted), the server goes on
start "$tmp/serve5.log" --workers 1 --threads 1 --max-batch 1 --max-wait-ms 0 --max-inputs 20000 --max-body 4000000 \
  --queue 20000 --quiet
python3 - "$port" <<'PY' && ok || bad "cancellation"
import http.client, json, socket, sys, time
port = int(sys.argv[1])
body = json.dumps({"task": "sent", "inputs": [f"the story was good and the film was fine {i}" for i in range(20000)]}).encode()
sk = socket.create_connection(("127.0.0.1", port), timeout=10)
sk.sendall(b"POST /v1/classify HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
time.sleep(0.1)
sk.close()  # gone before the answer
for _ in range(100):  # the server notices within 50 ms and drops the rest
    time.sleep(0.1)
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", "/metrics"); m = c.getresponse().read().decode()
    if 'unplug_requests_total{task="sent",code="499"} 1' in m: break
cancelled = int([l for l in m.splitlines() if l.startswith("unplug_cancelled_inputs_total")][0].split()[1])
assert 'unplug_requests_total{task="sent",code="499"} 1' in m and cancelled > 100, (cancelled, [l for l in m.splitlines() if "499" in l])
assert "unplug_queue_depth 0" in m
c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
c.request("POST", "/v1/classify", body=json.dumps({"task": "sent", "inputs": ["a good film"]}))
assert c.getresponse().status == 200
PY
kill -TERM $pid; wait $pid

# the task in the path or a header (for a proxy), plugging on demand, and a memory budget (1 KB: one expert)
start "$tmp/serve7.log" --plug-on-demand --experts-budget-mb 0.001
python3 - "$port" "$tmp" <<'PY' && ok || bad "task path, plug on demand, budget"
import http.client, json, sys
port, tmp = int(sys.argv[1]), sys.argv[2]
def call(method, path, body=None, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    c.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers or {})
    r = c.getresponse(); return r.status, r.read()
def metric(name):
    m = call("GET", "/metrics")[1].decode()
    return float([l for l in m.splitlines() if l.startswith(name + " ")][0].split()[1])
st, p = call("GET", "/v1/experts"); assert st == 200 and json.loads(p)["experts"] == [], p
texts = open(f"{tmp}/sent.txt").read().splitlines()[:8]
ref = [json.loads(l)["label"] for l in open(f"{tmp}/sent.ref")][:8]
st, p = call("POST", "/v1/tasks/sent/classify", {"inputs": texts}); assert st == 200, p
assert [r["label"] for r in json.loads(p)["results"]] == ref, p
st, p = call("POST", "/v1/classify", {"inputs": ["1 2 9 3"]}, {"X-Unplug-Task": "digits"}); assert st == 200, p
st, p = call("GET", "/v1/experts"); assert [e["task"] for e in json.loads(p)["experts"]] == ["digits"], p
assert metric("unplug_evictions_total") == 1 and metric("unplug_plugs_total") == 2 and metric("unplug_experts_bytes") > 0
st, p = call("POST", "/v1/tasks/sent/classify", {"task": "digits", "inputs": ["a"]}); assert st == 400 and b"the body names task" in p, p
st, p = call("POST", "/v1/tasks/nothere/classify", {"inputs": ["a"]}); assert st == 404 and b"no expert file" in p, p
st, p = call("POST", "/v1/tasks/sent/other", {"inputs": ["a"]}); assert st == 404, p
st, p = call("GET", "/v1/tasks/sent/classify"); assert st == 405, p
st, p = call("POST", "/v1/tasks/..%2Fx/classify", {"inputs": ["a"]}); assert st in (400, 404), p
PY
kill -TERM $pid; wait $pid

# an expert file rewritten, truncated and corrupted in place while it is plugged over and over: every
# plug is a 201 or a 422, never a crash (experts are read into memory, not mapped)
start "$tmp/serve8.log" --quiet
python3 - "$port" "$tmp" <<'PY' && ok || bad "plugging an expert being corrupted"
import http.client, json, os, random, sys, threading, time
port, tmp = int(sys.argv[1]), sys.argv[2]
good = open(f"{tmp}/spare/spare.expert", "rb").read()
path = f"{tmp}/ex/spare.expert"
stop = time.time() + 3
def vandal():
    r = random.Random(1)
    while time.time() < stop:
        with open(path, "r+b") as f:  # in place: the same inode the server opens
            k = r.randrange(3)
            if k == 0: f.truncate(r.randrange(len(good)))
            elif k == 1: f.seek(r.randrange(len(good))); f.write(bytes(r.randrange(256) for _ in range(64)))
            else: f.seek(0); f.write(good); f.truncate(len(good))
th = threading.Thread(target=vandal); th.start()
codes = {}
while time.time() < stop:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request("POST", "/v1/experts", body=json.dumps({"name": "spare"}))
    st = c.getresponse().status
    codes[st] = codes.get(st, 0) + 1
th.join()
open(path, "wb").write(good)
assert set(codes) <= {201, 422} and codes.get(422, 0) > 0, codes
c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
c.request("GET", "/healthz"); assert c.getresponse().status == 200
print(f"plugs while the file was being corrupted: {codes}", file=sys.stderr)
PY
kill -0 $pid && ok || bad "the server died while an expert was corrupted under it"
kill -TERM $pid; wait $pid

# connection limits: --per-ip refuses the third idle connection, --idle-timeout closes idle ones
start "$tmp/serve6.log" --per-ip 2 --idle-timeout 1 --quiet
python3 - "$port" <<'PY' && ok || bad "connection limits"
import socket, sys, time
port = int(sys.argv[1])
def closed(sk, wait):
    sk.settimeout(wait)
    try:
        return sk.recv(1) == b""
    except socket.timeout:
        return False
    except ConnectionResetError:
        return True
s1, s2 = (socket.create_connection(("127.0.0.1", port)) for _ in range(2))
time.sleep(0.2)
s3 = socket.create_connection(("127.0.0.1", port))
assert closed(s3, 2), "a third connection from one address was kept"
assert closed(s1, 4) and closed(s2, 4), "idle connections were not closed"
# the limit counts open connections only: a new one is served once the server has let the closed ones go
# (libmicrohttpd frees them in its own thread, later under load: retried for up to 10 s)
deadline, reply = time.time() + 10, b""
while not reply.startswith(b"HTTP/1.1 200") and time.time() < deadline:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s4:
            s4.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            reply = s4.recv(100)
    except OSError:  # reset, refused, broken pipe, timeout
        reply = b""
    if not reply.startswith(b"HTTP/1.1 200"):
        time.sleep(0.2)
assert reply.startswith(b"HTTP/1.1 200"), reply
PY
kill -TERM $pid; wait $pid

# bad start-up: a router for another model, a port in use, a missing directory
expect_fail "missing experts dir" "cannot open the experts directory" "$cli" serve --model "$M" --experts-dir "$tmp/none" --port 0
expect_fail "bad host" "give an IPv4 address" "$cli" serve --model "$M" --host nowhere --port 0
# files that are not what they say: a symlink out of the experts directory and a FIFO are refused at
# start-up as POST /v1/experts refuses them (timeout: a FIFO once made the server wait forever)
mkdir -p "$tmp/ex2" "$tmp/ex3" "$tmp/novocab"
ln -s "$tmp/outside/secret.expert" "$tmp/ex2/escape.expert"
expect_fail "symlink out at start-up" "resolves outside the experts directory" \
  timeout 20 "$cli" serve --model "$M" --experts-dir "$tmp/ex2" --port 0
mkfifo "$tmp/ex3/fifo.expert"
expect_fail "FIFO at start-up" "not a regular file" timeout 20 "$cli" serve --model "$M" --experts-dir "$tmp/ex3" --port 0
expect_fail "classify a FIFO" "not a regular file" timeout 20 "$cli" classify --model "$M" --expert "$tmp/ex3/fifo.expert"
expect_fail "expert show a FIFO" "not a regular file" timeout 20 "$cli" expert show "$tmp/ex3/fifo.expert"
# a model without its vocab.txt cannot serve text: refused at start-up, not with a 400 per request
cp "$M/config.json" "$M/model.safetensors" "$tmp/novocab/"
expect_fail "serve without vocab.txt" "has no vocab.txt" "$cli" serve --model "$tmp/novocab" --port 0
finish
