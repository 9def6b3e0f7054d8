#!/usr/bin/env python3
"""unplug against what a user would pick instead, on one model, in one run
(bench/peers.sh sets up the environment and calls this).

Runtimes, each with the same thread count, on the same random token ids:
  transformers  CPU PyTorch, fp32 (torch.inference_mode)
  onnxruntime   fp32 (the model exported with torch.onnx), and its dynamic int8 quantization
  openvino      fp32, and bf16 where the CPU has AVX512-BF16 or AMX (INFERENCE_PRECISION_HINT); with
                --ov-int8-python PY, int8 too (NNCF's static quantization by bench/ov_int8.py run by PY)
  unplug        bf16, fp32 and int8 (`unplug bench`, a process per measurement; int8 where the CPU
                has VNNI or AMX), and with --expert FILE each expert's forward (`unplug bench --expert`)
                as runtime "unplug-expert:TASK"
Every (batch, length) is measured in ROUNDS rounds; within a round every
runtime runs in turn (alternated), ITERS timed forwards after a warm-up, their
median kept; the row's figure is the median over rounds.

Usage: peers.py MODEL OUT.tsv --unplug BUILD/unplug [--threads 2] [--batches 1,8,32] [--lens 32,128]
                [--iters 10] [--rounds 3] [--cpu NAME] [--work DIR] [--expert FILE ...]
MODEL: a Hugging Face BERT directory, or "bert-base" (random weights of BERT-base's shape).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def median_ms(fn, iters):
    fn()  # warm-up
    ts = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(ts)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("out")
    ap.add_argument("--unplug", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batches", default="1,8,32")
    ap.add_argument("--lens", default="32,128")
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--cpu", default="cpu")
    ap.add_argument("--work", default=None)
    ap.add_argument("--expert", action="append", default=[], help="an expert file of MODEL (repeatable)")
    ap.add_argument("--ov-int8-python", default=None, help="a Python with nncf and openvino: adds OpenVINO int8")
    ap.add_argument("--runtimes", default="transformers,onnxruntime,openvino,unplug",
                    help="which to run (Debian's torch takes tens of seconds per BERT-base forward)")
    a = ap.parse_args()
    batches = [int(x) for x in a.batches.split(",")]
    lens = [int(x) for x in a.lens.split(",")]
    work = a.work or tempfile.mkdtemp(prefix="peers-")
    os.makedirs(work, exist_ok=True)

    import torch
    import transformers
    transformers.logging.set_verbosity_error()
    torch.set_num_threads(a.threads)
    if a.model == "bert-base":
        cfg = transformers.BertConfig()  # 12 x 768, FFN 3072, 30522 words
        torch.manual_seed(0)
        model = transformers.BertModel(cfg, add_pooling_layer=False).eval()
        name = "bert-base (random weights)"
        cfg_path = os.path.join(work, "config.json")
        with open(cfg_path, "w") as f:
            f.write(cfg.to_json_string())
        unplug_model = ["--config", cfg_path, "--random"]
    else:
        model = transformers.AutoModel.from_pretrained(a.model, add_pooling_layer=False).eval()
        cfg = model.config
        name = os.path.basename(os.path.normpath(a.model))
        unplug_model = ["--model", a.model]
    log(f"peers: {name}: {cfg.num_hidden_layers} layers x {cfg.hidden_size}, FFN {cfg.intermediate_size}, "
        f"{a.threads} threads, torch {torch.__version__}, transformers {transformers.__version__}")

    # ONNX export once (dynamic batch and length), then the int8 copy
    onnx_fp32 = os.path.join(work, "model.onnx")
    onnx_int8 = os.path.join(work, "model-int8.onnx")
    ids0 = torch.ones((1, 16), dtype=torch.long)
    torch.onnx.export(model, (ids0, torch.ones_like(ids0), torch.zeros_like(ids0)), onnx_fp32,
                      input_names=["input_ids", "attention_mask", "token_type_ids"], output_names=["last_hidden_state"],
                      dynamic_axes={k: {0: "b", 1: "t"} for k in ["input_ids", "attention_mask", "token_type_ids",
                                                                    "last_hidden_state"]},
                      opset_version=14, do_constant_folding=True)
    import onnxruntime as ort
    from onnxruntime.quantization import QuantType, quantize_dynamic
    quantize_dynamic(onnx_fp32, onnx_int8, weight_type=QuantType.QInt8)
    so = ort.SessionOptions()
    so.intra_op_num_threads = a.threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sessions = {p: ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
                for p, path in [("fp32", onnx_fp32), ("int8", onnx_int8)]}
    import openvino as ov
    core = ov.Core()
    ov_model = core.read_model(onnx_fp32)
    caps = core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    ov_precisions = ["fp32"] + (["bf16"] if "BF16" in caps else [])
    compiled = {p: core.compile_model(ov_model, "CPU", {"INFERENCE_NUM_THREADS": a.threads,
                                                        "INFERENCE_PRECISION_HINT": "f32" if p == "fp32" else "bf16",
                                                        "PERFORMANCE_HINT": "LATENCY"})
                for p in ov_precisions}
    if a.ov_int8_python:
        ov_int8 = os.path.join(work, "model-int8.xml")
        subprocess.run([a.ov_int8_python, os.path.join(os.path.dirname(os.path.abspath(__file__)), "ov_int8.py"),
                        onnx_fp32, ov_int8, str(cfg.vocab_size)], check=True, stdout=sys.stderr)
        compiled["int8"] = core.compile_model(core.read_model(ov_int8), "CPU", {"INFERENCE_NUM_THREADS": a.threads,
                                                                               "PERFORMANCE_HINT": "LATENCY"})
    log(f"peers: onnxruntime {ort.__version__}, openvino {ov.__version__} (CPU capabilities {caps})")

    # unplug runs in a process of its own while this one waits: its OpenMP threads may spin-wait, as
    # ONNX Runtime's and OpenVINO's thread pools do by default (this process's OpenMP, torch's, is passive)
    unplug_env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}

    def unplug_ms(prec, B, T):
        out = subprocess.run([a.unplug, "bench", *unplug_model, "--batch", str(B), "--len", str(T), "--iters",
                              str(a.iters), "--warmup", "1", "--threads", str(a.threads), "--precision", prec, "--json"],
                             capture_output=True, text=True, check=True, env=unplug_env).stdout
        return json.loads(out)[0]["latency_ms"]

    def unplug_expert_ms(path, prec, B, T):
        out = subprocess.run([a.unplug, "bench", *unplug_model, "--expert", path, "--batch", str(B), "--len", str(T),
                              "--iters", str(a.iters), "--threads", str(a.threads), "--precision", prec, "--json"],
                             capture_output=True, text=True, check=True, env=unplug_env).stdout
        return json.loads(out)[0]["expert_ms"]

    # int8 where unplug has it here (VNNI or AMX)
    int8_ok = subprocess.run([a.unplug, "bench", *unplug_model, "--batch", "1", "--len", "8", "--iters", "1",
                              "--precision", "int8"], capture_output=True, env=unplug_env).returncode == 0
    unplug_precisions = ["bf16", "fp32"] + (["int8"] if int8_ok else [])

    rng = np.random.default_rng(0)
    rows = []
    for T in lens:
        for B in batches:
            ids = rng.integers(1000, cfg.vocab_size, size=(B, T), dtype=np.int64)
            ids[:, 0], ids[:, -1] = 101, 102
            mask, types = np.ones_like(ids), np.zeros_like(ids)
            feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
            t_ids, t_mask, t_types = (torch.from_numpy(x) for x in (ids, mask, types))

            def torch_run():
                with torch.inference_mode():
                    model(input_ids=t_ids, attention_mask=t_mask, token_type_ids=t_types)

            runners = [("transformers", "fp32", lambda: median_ms(torch_run, a.iters))]
            for p, s in sessions.items():
                runners.append(("onnxruntime", p, lambda s=s: median_ms(lambda: s.run(None, feeds), a.iters)))
            for p, c in compiled.items():
                req = c.create_infer_request()
                runners.append(("openvino", p, lambda req=req: median_ms(lambda: req.infer(feeds), a.iters)))
            for p in unplug_precisions:
                runners.append(("unplug", p, lambda p=p: unplug_ms(p, B, T)))
            for path in a.expert:
                task = os.path.basename(os.path.dirname(os.path.abspath(path))) or os.path.basename(path)
                for p in [x for x in unplug_precisions if x != "bf16"]:
                    runners.append((f"unplug-expert:{task}", p, lambda p=p, path=path: unplug_expert_ms(path, p, B, T)))
            keep = set(a.runtimes.split(","))
            runners = [x for x in runners if x[0].split(":")[0] in keep]
            per = {(r, p): [] for r, p, _ in runners}
            for rnd in range(a.rounds):
                for r, p, fn in runners:
                    time.sleep(1)  # the previous runtime's thread pools stop spinning and sleep
                    per[(r, p)].append(fn())
            for (r, p), v in per.items():
                rows.append((a.cpu, name, r, p, B, T, statistics.median(v), min(v), a.rounds))
                log(f"  {B:>3} x {T:<4} {r:<13} {p:<5} {statistics.median(v):9.2f} ms  (rounds: "
                    + ", ".join(f"{x:.2f}" for x in v) + ")")
    with open(a.out, "a") as f:
        for row in rows:
            f.write("\t".join(str(round(x, 3)) if isinstance(x, float) else str(x) for x in row) + "\n")


if __name__ == "__main__":
    main()
