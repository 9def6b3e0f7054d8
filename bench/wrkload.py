"""The wrk loads of bench/serve.sh and bench/cluster.sh: the dev-set inputs their requests carry,
and the figures of wrk's summary. Imported by their Python snippets (PYTHONPATH=bench)."""
import re


def _tsv(path, skip_header=True):
    rows = [l.rstrip("\n").split("\t") for l in open(path, encoding="utf-8-sig")]
    return rows[1:] if skip_header else rows


_DEV = {
    "sst2": lambda d: [[r[0]] for r in _tsv(f"{d}/glue/SST-2/dev.tsv")],
    "mrpc": lambda d: [[r[3], r[4]] for r in _tsv(f"{d}/glue/MRPC/dev.tsv")],
    "rte": lambda d: [[r[1], r[2]] for r in _tsv(f"{d}/glue/RTE/dev.tsv")],
    "cola": lambda d: [[r[3]] for r in _tsv(f"{d}/glue/CoLA/dev.tsv", False)],
    "trec": lambda d: [[l.split(" ", 1)[1].strip()] for l in open(f"{d}/trec/TREC.test", encoding="latin-1")],
}
TASKS = tuple(_DEV)


def dev_inputs(data, task):
    """task's dev-set examples under data (GLUE and TREC), each as a request input: a text or a pair"""
    return [x[0] if len(x) == 1 else x for x in _DEV[task](data)]


def _ms(value, unit):
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]


def summary(text):
    """wrk's output (with --latency) -> requests_s, p50_ms, p99_ms, max_ms, non2xx, socket_errors, requests"""
    def pct(tag):
        m = re.search(rf"^\s+{tag}%\s+([\d.]+)(us|ms|s)", text, re.M)
        return _ms(*m.groups()) if m else float("nan")
    m = re.search(r"^\s+Latency\s+\S+\s+\S+\s+([\d.]+)(us|ms|s)", text, re.M)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    sock = re.search(r"Socket errors: (.*)", text)
    return {
        "requests_s": float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1)),
        "p50_ms": pct(50),
        "p99_ms": pct(99),
        "max_ms": _ms(*m.groups()) if m else float("nan"),
        "non2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": sum(int(x) for x in re.findall(r"\d+", sock.group(1))) if sock else 0,
        "requests": int(re.search(r"(\d+) requests in", text).group(1)),
    }


def write_lua(out, requests):
    """a wrk script that POSTs requests ([(path, JSON body)]) in turn, each wrk thread from a random place"""
    with open(out, "w") as f:
        f.write("reqs = {\n" + ",\n".join('{"%s", [=[%s]=]}' % r for r in requests) + "\n}\n")
        f.write('''
local i = 0
setup = function(thread) thread:set("start", math.random(1, #reqs)) end
init = function(args) i = start or 0 end
request = function()
  i = i + 1
  local r = reqs[(i % #reqs) + 1]
  return wrk.format("POST", r[1], {["Content-Type"] = "application/json"}, r[2])
end
''')
