"""ref_transformers.py: unplug against Hugging Face transformers itself, on a
real pretrained checkpoint (models/all-minilm-l6-v2, fetched by
scripts/fetch-model.sh). Run by tests/cli_transformers.sh with the Python of
the reference environment (scripts/ref-venv.sh: Debian's torch, transformers
from PyPI), never by the build.

    python tests/ref_transformers.py CLI MODEL_DIR DATA_DIR [--report FILE]

Checks, each printed with its measured value:
  1. token ids: every text of the GLUE and TREC files under DATA_DIR through
     `unplug tokenize` against transformers' tokenizers (the fast one the model
     directory's tokenizer.json gives, and the slow BertTokenizer from
     vocab.txt), as single texts (up to 512 tokens) and, for the pair tasks,
     as pairs truncated to 128 tokens (longest first);
  2. the last hidden state of every real token against BertModel in float32:
     max abs difference <= 1e-4 in fp32, <= BF16_BOUND in bf16;
  3. the sentence-transformers embedding (mean over real tokens, then L2
     normalisation, inputs cut at its max_seq_length): `unplug embed --pool
     mean --normalize --max-len 256` within 1e-4 (fp32).
Exits 1 on any mismatch, prints "N passed, M failed".
"""
import csv
import json
import os
import subprocess
import sys
import time

import numpy as np
import torch
import transformers
from transformers import AutoModel, AutoTokenizer, BertTokenizer

FP32_BOUND = 1e-4
# bf16 operands (8-bit mantissa) in every matrix product, fp32 accumulation and
# fp32 LayerNorm/softmax: measured 0.029 max abs over the hidden states of the
# texts below (values up to 6.1) on a Xeon with AVX512-BF16 and no AMX; the
# bound leaves twice that.
BF16_BOUND = 0.06
EMB_BOUND = 1e-4

passed = failed = 0


def check(name, ok, detail):
    global passed, failed
    print(f"{'ok  ' if ok else 'FAIL'} {name}: {detail}", flush=True)
    if ok:
        passed += 1
    else:
        failed += 1


def read_tsv(path, header=True):
    with open(path, encoding="utf-8-sig", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    return (rows[0], rows[1:]) if header else (None, rows)


def texts_of(data):
    """(single texts, pairs) of every GLUE and TREC file under data (the
    columns as src/text/dataset.c reads them, plus the unlabelled test files)."""
    singles, pairs = [], []
    g = os.path.join(data, "glue")

    def cols(path, names, header=True, fixed=None):
        head, rows = read_tsv(path, header)
        idx = fixed if fixed is not None else [head.index(n) for n in names]
        out = [[r[i] for i in idx] for r in rows if len(r) > max(idx)]
        return out

    for f in ("train.tsv", "dev.tsv", "test-labeled.tsv", "test.tsv"):
        for (s,) in cols(os.path.join(g, "SST-2", f), ["sentence"]):
            singles.append(s)
    for f in ("train.tsv", "dev.tsv", "val.tsv"):
        for (s,) in cols(os.path.join(g, "CoLA", f), None, header=False, fixed=[3]):
            singles.append(s)
    for (s,) in cols(os.path.join(g, "CoLA", "test.tsv"), ["sentence"]):
        singles.append(s)
    for f in ("train.tsv", "dev.tsv", "test.tsv"):
        pairs += cols(os.path.join(g, "MRPC", f), ["#1 String", "#2 String"])
    for task in ("RTE", "WNLI"):
        for f in ("train.tsv", "dev.tsv", "test.tsv"):
            pairs += cols(os.path.join(g, task, f), ["sentence1", "sentence2"])
        pairs += cols(os.path.join(g, task, "val.tsv"), None, header=False, fixed=[1, 2])
    for f in ("train.tsv", "dev.tsv", "test.tsv"):
        # train and dev have no header line, test has one
        path = os.path.join(g, "STS-B", f)
        head, _ = read_tsv(path)
        pairs += cols(path, ["sentence1", "sentence2"]) if "sentence1" in head else cols(path, None, False, [7, 8])
    for f in ("TREC.train", "TREC.test"):
        with open(os.path.join(data, "trec", f), encoding="latin-1") as fh:
            for line in fh:
                line = line.rstrip("\n")
                if line:
                    singles.append(line.split(" ", 1)[1])
    for a, b in pairs:
        singles += [a, b]
    # the CLI reads one text per line (a tab separates a pair): none may hold either
    bad = [s for s in singles if "\n" in s or "\t" in s or "\r" in s]
    assert not bad, f"texts with line breaks or tabs: {bad[:3]}"
    return singles, pairs


def run_cli(args, lines):
    p = subprocess.run(args, input="".join(line + "\n" for line in lines), capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"{' '.join(args)} failed ({p.returncode}): {p.stderr[-2000:]}")
    return [json.loads(line) for line in p.stdout.splitlines()]


def compare_ids(name, ours, theirs, shown):
    bad = [i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b]
    ok = len(ours) == len(theirs) and not bad
    detail = f"{len(theirs)} encodings, {len(bad)} differ"
    if bad:
        i = bad[0]
        detail += f"; first: {shown[i]!r}: unplug {ours[i]} vs transformers {theirs[i]}"
    check(name, ok, detail)


def main():
    cli, model, data = sys.argv[1:4]
    report = sys.argv[sys.argv.index("--report") + 1] if "--report" in sys.argv else None
    torch.set_num_threads(2)
    transformers.logging.set_verbosity_error()
    print(f"transformers {transformers.__version__}, torch {torch.__version__}, model {model}", flush=True)
    t0 = time.time()
    singles, pairs = texts_of(data)
    uniq = sorted(set(singles))
    print(f"{len(singles)} texts ({len(uniq)} distinct), {len(pairs)} pairs, read in {time.time() - t0:.1f} s", flush=True)

    # 1. token ids
    fast = AutoTokenizer.from_pretrained(model)
    slow = BertTokenizer(os.path.join(model, "vocab.txt"), do_lower_case=True)
    assert fast.is_fast, "expected a fast tokenizer from tokenizer.json"
    t = time.time()
    ours = [r["ids"] for r in run_cli([cli, "tokenize", "--model", model, "--max-len", "512"], uniq)]
    t_ours = time.time() - t
    t = time.time()
    ref = fast(uniq, truncation=True, max_length=512)["input_ids"]
    t_fast = time.time() - t
    compare_ids("token ids, single texts, fast tokenizer (tokenizer.json)", ours, ref, uniq)
    t = time.time()
    ref_slow = slow(uniq, truncation=True, max_length=512)["input_ids"]
    t_slow = time.time() - t
    compare_ids("token ids, single texts, slow BertTokenizer (vocab.txt)", ours, ref_slow, uniq)
    print(f"  tokenizing {len(uniq)} texts: unplug {t_ours:.1f} s (process, incl. start), "
          f"transformers fast {t_fast:.1f} s, slow {t_slow:.1f} s", flush=True)
    lines = [a + "\t" + b for a, b in pairs]
    out = run_cli([cli, "tokenize", "--model", model, "--pairs", "--max-len", "128"], lines)
    enc = fast([a for a, _ in pairs], [b for _, b in pairs], truncation="longest_first", max_length=128)
    compare_ids("token ids, pairs truncated to 128 (longest first), fast", [r["ids"] for r in out],
                enc["input_ids"], lines)
    compare_ids("token type ids, pairs, fast", [r["type_ids"] for r in out], enc["token_type_ids"], lines)
    enc = slow([a for a, _ in pairs], [b for _, b in pairs], truncation="longest_first", max_length=128)
    compare_ids("token ids, pairs truncated to 128 (longest first), slow", [r["ids"] for r in out],
                enc["input_ids"], lines)

    # 2. and 3. hidden states and embeddings on a spread of texts: every length
    # class, pairs among them, in padded batches of 32 as the CLI runs them
    rng = np.random.default_rng(7)
    by_len = sorted(uniq, key=len)
    sample = [by_len[i] for i in rng.choice(len(by_len), 96, replace=False)] + by_len[-16:]
    sample += [a + "\t" + b for a, b in (pairs[i] for i in rng.choice(len(pairs), 48, replace=False))]
    hf = AutoModel.from_pretrained(model, torch_dtype=torch.float32).eval()

    def reference(batch, max_len=512):
        a = [s.split("\t")[0] for s in batch]
        b = [s.split("\t")[1] for s in batch] if "\t" in batch[0] else None
        x = fast(a, b, padding=True, truncation="longest_first", max_length=max_len, return_tensors="pt")
        with torch.no_grad():
            h = hf(**x).last_hidden_state
        m = x["attention_mask"].unsqueeze(-1).float()
        e = torch.nn.functional.normalize((h * m).sum(1) / m.sum(1), p=2, dim=1)
        return [h[i, : int(x["attention_mask"][i].sum())].numpy() for i in range(len(batch))], e.numpy()

    singles_s = [s for s in sample if "\t" not in s]
    pairs_s = [s for s in sample if "\t" in s]
    ref_h = []
    for group in (singles_s, pairs_s):
        for i in range(0, len(group), 32):
            ref_h += reference(group[i : i + 32])[0]
    results = {}
    for prec, bound in (("fp32", FP32_BOUND), ("bf16", BF16_BOUND)):
        got = []
        for group, extra in ((singles_s, []), (pairs_s, ["--pairs"])):
            got += run_cli([cli, "embed", "--model", model, "--precision", prec, "--hidden", "--max-len", "512"] + extra,
                           group)
        shapes_ok = len(got) == len(ref_h) and all(np.array(g["hidden"]).shape == r.shape for g, r in zip(got, ref_h))
        worst = max(float(np.abs(np.array(g["hidden"], dtype=np.float32) - r).max()) if shapes_ok else float("inf")
                    for g, r in zip(got, ref_h))
        scale = max(float(np.abs(r).max()) for r in ref_h)
        results[prec] = worst
        check(f"last hidden state, {prec}, {len(ref_h)} texts ({sum(len(r) for r in ref_h)} tokens)",
              shapes_ok and worst <= bound, f"max abs difference {worst:.3g} (bound {bound:g}; values up to {scale:.2f})")
    # sentence-transformers truncates at its own max_seq_length (256 for this
    # model, sentence_bert_config.json), not at the 512 positions: so do both
    seq = json.load(open(os.path.join(model, "sentence_bert_config.json")))["max_seq_length"]
    ref_e = []
    for group in (singles_s, pairs_s):
        for i in range(0, len(group), 32):
            ref_e += list(reference(group[i : i + 32], seq)[1])
    got = []
    for group, extra in ((singles_s, []), (pairs_s, ["--pairs"])):
        got += run_cli([cli, "embed", "--model", model, "--precision", "fp32", "--pool", "mean", "--normalize",
                        "--max-len", str(seq)] + extra, group)
    ok = len(got) == len(ref_e) and all(len(g["embedding"]) == len(r) for g, r in zip(got, ref_e))
    worst = max(float(np.abs(np.array(g["embedding"], dtype=np.float32) - r).max()) if ok else float("inf")
                for g, r in zip(got, ref_e))
    check(f"sentence-transformers embedding (mean pooling, L2 normalisation, --max-len {seq}), fp32, {len(ref_e)} texts",
          ok and worst <= EMB_BOUND, f"max abs difference {worst:.3g} (bound {EMB_BOUND:g})")
    results["embedding_fp32"] = worst
    if report:
        with open(report, "w") as f:
            json.dump({"transformers": transformers.__version__, "torch": torch.__version__,
                       "texts": len(uniq), "pairs": len(pairs), **results}, f, indent=1)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
