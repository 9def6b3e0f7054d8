#!/usr/bin/env python3
"""Writes a small generated task, DIR/{train,val,test}.tsv (text, label), for the
demo and the CLI tests. KIND sentiment (default): filler words around one polar
word that decides the label; KIND digits: digit strings, "high" when one of them
is a 9. Standard library only; seeded, so the files are the same every run.
Usage: scripts/toy-task.py DIR [KIND]"""
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


def digits():
    y = r.randint(0, 1)
    w = [str(r.randint(0, 8)) for _ in range(r.randint(3, 8))]
    if y:
        w.insert(r.randint(0, len(w)), "9")
    return " ".join(w), ["low", "high"][y]


kind = sys.argv[2] if len(sys.argv) > 2 else "sentiment"
make = {"sentiment": example, "digits": digits}[kind]
for name, n in [("train", 800), ("val", 200), ("test", 200)]:
    with open(f"{sys.argv[1]}/{name}.tsv", "w") as f:
        f.write("text\tlabel\n")
        for _ in range(n):
            t, y = make()
            f.write(f"{t}\t{y}\n")
