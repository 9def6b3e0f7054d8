#!/usr/bin/env python3
"""OpenVINO int8 for bench/peers.py: NNCF's post-training quantization
(static int8 of the matrix products, model_type TRANSFORMER) of the exported
ONNX model, calibrated on random token ids (64 rows of 128; for timing only,
not for accuracy), saved as OpenVINO IR. It runs in a virtual environment of
its own (bench/peers.sh makes .venv-nncf): NNCF imports torch when it finds
one, and Debian's torch 1.13 in the peers' environment is too old for it.

Usage: ov_int8.py MODEL.onnx OUT.xml VOCAB_SIZE"""
import sys

import nncf
import numpy as np
import openvino as ov

onnx, out, vocab = sys.argv[1], sys.argv[2], int(sys.argv[3])
model = ov.Core().read_model(onnx)
rng = np.random.default_rng(0)


def sample(_):
    ids = rng.integers(1000, vocab, size=(1, 128), dtype=np.int64)
    ids[:, 0], ids[:, -1] = 101, 102
    return {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}


q = nncf.quantize(model, nncf.Dataset(list(range(64)), sample), model_type=nncf.ModelType.TRANSFORMER, subset_size=64)
ov.save_model(q, out)
print(f"ov_int8: wrote {out} (nncf {nncf.__version__}, openvino {ov.__version__})")
