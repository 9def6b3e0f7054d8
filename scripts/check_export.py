#!/usr/bin/python3
"""check_export.py: an `unplug pretrain` output directory, read as Hugging Face
BertForMaskedLM would read it, gives the same numbers in an independent
float64 PyTorch implementation (scripts/ref_model.py) as in unplug.

    /usr/bin/python3 scripts/check_export.py build/unplug models/unplug-mini

Tokenizes a few sentences with `unplug tokenize`, runs `unplug embed
--precision fp32`, loads DIR/config.json + DIR/model.safetensors by their HF
names (bert.-prefixed encoder, cls.predictions.* head, decoder tied to the word
embeddings) into ref_model.forward, and compares the final [CLS] vectors and
the MLM head's predictions. Offline check (needs Debian's python3-torch), not
part of CI.
"""
import json
import os
import subprocess
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ref_model as rm  # noqa: E402

SENTENCES = ["the film was a delight from start to finish .",
             "he opened the [MASK] and walked into the garden .",
             "the committee will meet again next week to discuss the budget ."]


def main():
    cli, d = sys.argv[1], sys.argv[2]
    cfg = json.load(open(os.path.join(d, "config.json")))
    tensors, _ = rm.st_read(open(os.path.join(d, "model.safetensors"), "rb").read())
    W = {k: v.astype(np.float64) for k, (dt, v) in tensors.items()}
    text = "\n".join(SENTENCES) + "\n"
    tok = subprocess.run([cli, "tokenize", "--model", d, "--max-len", "64"], input=text.encode(),
                         capture_output=True, check=True).stdout.decode().splitlines()
    emb = subprocess.run([cli, "embed", "--model", d, "--precision", "fp32", "--max-len", "64"], input=text.encode(),
                         capture_output=True, check=True).stdout.decode().splitlines()
    worst = 0.0
    for t, e in zip(tok, emb):
        ids = np.array([json.loads(t)["ids"]], dtype=np.int64)
        tt = np.zeros_like(ids)
        lens = np.array([ids.shape[1]])
        out = rm.forward(W, cfg, "mlm", ids, tt, lens)
        ref_cls = out[f"hidden.{cfg['num_hidden_layers']}"][0, 0].numpy()
        got = np.array(json.loads(e)["cls"])
        diff = float(np.abs(ref_cls - got).max())
        worst = max(worst, diff)
        pred = out["mlm_logits"][0].argmax(-1).numpy()
        vocab = open(os.path.join(d, "vocab.txt")).read().split("\n")
        print(f"max |cls diff| {diff:.2e}  MLM argmax: {' '.join(vocab[i] for i in pred[1:-1])}")
    print(f"worst [CLS] difference vs the float64 HF-semantics reference: {worst:.2e}")
    assert worst < 1e-3, worst


if __name__ == "__main__":
    main()
