#!/usr/bin/env python3
"""Reads wrk --latency output (FILE) and prints one tab-separated line:
requests/s, p50 ms, p99 ms, failed (non-2xx + socket errors), requests.
The shell front of wrkload.summary, for bench/mixed.sh. Usage: bench/wrk_summary.py FILE"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wrkload import summary  # noqa: E402

w = summary(open(sys.argv[1]).read())
print(f"{w['requests_s']:.0f}\t{w['p50_ms']:.2f}\t{w['p99_ms']:.2f}\t{w['non2xx'] + w['socket_errors']}\t{w['requests']}")
