#!/usr/bin/env python3
"""Reads wrk --latency output (FILE) and prints one tab-separated line:
requests/s, p50 ms, p99 ms, failed (non-2xx + socket errors), requests.
Used by bench/serve.sh and bench/mixed.sh. Usage: bench/wrk_summary.py FILE"""
import re
import sys

s = open(sys.argv[1]).read()


def ms(tag):
    m = re.search(rf"^\s+{tag}%\s+([\d.]+)(us|ms|s)", s, re.M)
    v = float(m.group(1))
    return v / 1000 if m.group(2) == "us" else v * 1000 if m.group(2) == "s" else v


rps = float(re.search(r"Requests/sec:\s+([\d.]+)", s).group(1))
n = int(re.search(r"(\d+) requests in", s).group(1))
m = re.search(r"Non-2xx or 3xx responses: (\d+)", s)
bad = int(m.group(1)) if m else 0
m = re.search(r"Socket errors: (.*)", s)
if m:
    bad += sum(int(x) for x in re.findall(r"\d+", m.group(1)))
print(f"{rps:.0f}\t{ms(50):.2f}\t{ms(99):.2f}\t{bad}\t{n}")
