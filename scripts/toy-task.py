#!/usr/bin/env python3
"""Writes a small generated sentiment task, DIR/{train,val,test}.tsv (text, label),
for the demo and the CLI tests: filler words around one polar word that decides
the label. Standard library only; seeded, so the files are the same every run.
Usage: scripts/toy-task.py DIR"""
import random
import sys

r = random.Random(5)
pos, neg = ["good", "great", "fine"], ["bad", "not good", "unable"]
fill = ["the film", "this movie", "the story", "that play", "it", "the act", "was", "is", "very", "and"]


def example():
    y = r.randint(0, 1)
    w = [r.choice(fill) for _ in range(r.randint(3, 8))]
    w.insert(r.randint(0, len(w)), r.choice(pos if y else neg))
    return " ".join(w), ["negative", "positive"][y]


for name, n in [("train", 800), ("val", 200), ("test", 200)]:
    with open(f"{sys.argv[1]}/{name}.tsv", "w") as f:
        f.write("text\tlabel\n")
        for _ in range(n):
            t, y = example()
            f.write(f"{t}\t{y}\n")
