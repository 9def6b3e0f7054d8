#!/usr/bin/python3
"""Checks a corpus made by make-corpus.sh and prints samples.

  /usr/bin/python3 scripts/corpus/check_corpus.py [OUTDIR] [--samples N] [--seed S]

Verifies: UTF-8, no blank lines, line lengths, no markup residue, no line
shared by train.txt and heldout.txt (after the dedup normalization), sha256
values match SOURCES.md, documents.tsv covers both files. Prints N random
lines per source (from documents.tsv). Exit status 1 on any failure.
"""
import collections
import hashlib
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from textclean import MAX_LINE, RESIDUE, line_key  # noqa: E402


def main():
    args = sys.argv[1:]
    n_samples, seed, out = 3, 1, None
    while args:
        a = args.pop(0)
        if a == "--samples":
            n_samples = int(args.pop(0))
        elif a == "--seed":
            seed = int(args.pop(0))
        else:
            out = a
    out = out or os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../build/corpus")
    fails = []
    lines = {}
    for k in ("train", "heldout"):
        data = open(os.path.join(out, k + ".txt"), "rb").read()
        sha = hashlib.sha256(data).hexdigest()
        src = open(os.path.join(out, "SOURCES.md"), encoding="utf-8").read()
        if sha not in src:
            fails.append("%s.txt sha256 %s not in SOURCES.md" % (k, sha))
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            fails.append("%s.txt is not UTF-8: %s" % (k, e))
            text = data.decode("utf-8", "replace")
        if not text.endswith("\n"):
            fails.append("%s.txt does not end with a newline" % k)
        ls = text[:-1].split("\n")
        lines[k] = ls
        lens = sorted(len(l) for l in ls)
        blank = sum(1 for l in ls if not l.strip())
        residue = [l for l in ls if RESIDUE.search(l)]
        longl = sum(1 for n in lens if n > MAX_LINE)
        short = sum(1 for n in lens if n < 100)
        print("%s.txt: %d bytes, %d lines, length min/median/p99/max %d/%d/%d/%d, <100 chars: %d (%.1f%%), "
              ">%d: %d, blank: %d, markup residue: %d" % (
                  k, len(data), len(ls), lens[0], lens[len(lens) // 2], lens[int(len(lens) * 0.99)], lens[-1],
                  short, 100.0 * short / len(ls), MAX_LINE, longl, blank, len(residue)))
        if blank:
            fails.append("%s.txt has %d blank lines" % (k, blank))
        if longl:
            fails.append("%s.txt has %d lines over %d chars" % (k, longl, MAX_LINE))
        if residue:
            fails.append("%s.txt has %d lines with markup, e.g. %r" % (k, len(residue), residue[0][:200]))
        if any("\r" in l or "\t" in l for l in ls):
            fails.append("%s.txt has tabs or carriage returns" % k)
    train_keys = {line_key(l) for l in lines["train"]}
    shared = sum(1 for l in lines["heldout"] if line_key(l) in train_keys)
    print("held-out lines also in train (normalized): %d" % shared)
    if shared:
        fails.append("%d held-out lines also occur in train" % shared)

    # per-source samples through documents.tsv
    by_src = collections.defaultdict(list)
    covered = collections.Counter()
    docs_of = collections.defaultdict(set)
    for row in open(os.path.join(out, "documents.tsv"), encoding="utf-8").read().splitlines()[1:]:
        split, src, doc, first, n, _ = row.split("\t")
        first, n = int(first), int(n)
        covered[split] += n
        docs_of[split].add((src, doc))
        for i in range(first - 1, first - 1 + n):
            by_src[src].append((split, i))
    for k in ("train", "heldout"):
        if covered[k] != len(lines[k]):
            fails.append("documents.tsv covers %d of %d %s lines" % (covered[k], len(lines[k]), k))
    both = docs_of["train"] & docs_of["heldout"]
    if both:
        fails.append("%d documents are in both splits" % len(both))
    rng = random.Random(seed)
    if n_samples:
        for src in sorted(by_src):
            print("\n== %s (%d lines)" % (src, len(by_src[src])))
            for split, i in rng.sample(by_src[src], min(n_samples, len(by_src[src]))):
                l = lines[split][i]
                print("  [%s] %s" % (split, l if len(l) <= 300 else l[:300] + " ..."))
    if fails:
        print("\nFAILED:\n  " + "\n  ".join(fails))
        sys.exit(1)
    print("\nall checks passed")


if __name__ == "__main__":
    main()
