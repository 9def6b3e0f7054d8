#!/usr/bin/python3
"""ref_model.py: small random BERT models in Hugging Face layout, with reference
outputs from an independent float64 PyTorch implementation of HF's BertModel.

The C engine's tests load each model directory exactly as a user would
(config.json, model.safetensors or an index + shards, vocab.txt) and compare
their outputs with the tensors in expected.safetensors.

    /usr/bin/python3 scripts/ref_model.py tests/data/models

Needs only torch and numpy (no transformers, no safetensors package): the
forward pass re-implements transformers' BertModel / BertForSequenceClassification
/ BertForMaskedLM in eval mode, and safetensors is written and read with
struct + json. The output is deterministic: same bytes on every run.
"""
import hashlib
import json
import math
import os
import struct
import sys

import numpy as np
import torch

SEED = 20240601          # model k (0-based, in MODELS order) uses SEED + k
INPUT_SEED = SEED - 1    # the shared input batch
TRANSFORMERS_VERSION = "4.40.2"  # what config.json claims to be written by

# ---- shapes -----------------------------------------------------------------

VOCAB, HIDDEN, LAYERS, HEADS, FFN, MAX_POS, TYPES = 128, 32, 3, 4, 64, 64, 2
B, T = 4, 32
LENGTHS = [17, 5, 32, 1]
PAIR_ROWS = {0: 9, 2: 20}  # row -> index of the first [SEP] (end of segment a)

PAD, UNK, CLS, SEP, MASK = 0, 1, 2, 3, 4

# ---- safetensors -------------------------------------------------------------

# name -> (numpy dtype of the raw little-endian data, element size)
DTYPES = {
    "F32": ("<f4", 4), "F16": ("<f2", 2), "BF16": ("<u2", 2),
    "I32": ("<i4", 4), "I64": ("<i8", 8),
}
# the safetensors library writes tensors sorted by dtype (largest first in its
# enum order), then by name; mimic it so our files look like real ones
DTYPE_RANK = {"I64": 0, "F32": 1, "I32": 2, "BF16": 3, "F16": 4}


def f32_to_bf16_bits(a):
    """fp32 array -> uint16 bf16 bit patterns, round to nearest even (torch)."""
    t = torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))
    return t.to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)


def bf16_bits_to_f32(u):
    return (u.astype(np.uint32) << 16).view(np.float32)


def encode(arr, dtype):
    """numpy array -> raw little-endian bytes in the storage dtype."""
    if dtype == "BF16":
        raw = f32_to_bf16_bits(arr)
    else:
        raw = np.ascontiguousarray(arr).astype(DTYPES[dtype][0])
    return raw.tobytes()


def st_bytes(tensors, metadata=None):
    """tensors: {name: (dtype, numpy array)} -> the bytes of a safetensors file."""
    order = sorted(tensors, key=lambda n: (DTYPE_RANK[tensors[n][0]], n))
    header = {"__metadata__": metadata or {"format": "pt"}}
    blobs, off = [], 0
    for name in order:
        dtype, arr = tensors[name]
        data = encode(arr, dtype)
        assert len(data) == int(np.prod(arr.shape, dtype=np.int64)) * DTYPES[dtype][1]
        header[name] = {"dtype": dtype, "shape": list(arr.shape),
                        "data_offsets": [off, off + len(data)]}
        blobs.append(data)
        off += len(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)


def st_read(buf):
    """bytes of a safetensors file -> ({name: (dtype, array)}, metadata).
    BF16 comes back as fp32 values; every offset is checked."""
    (n,) = struct.unpack_from("<Q", buf, 0)
    assert 8 + n <= len(buf) and n % 8 == 0
    header = json.loads(buf[8:8 + n].decode())
    meta = header.pop("__metadata__", None)
    data = buf[8 + n:]
    out, spans = {}, []
    for name, h in header.items():
        dtype, shape, (b, e) = h["dtype"], h["shape"], h["data_offsets"]
        npdt, size = DTYPES[dtype]
        count = int(np.prod(shape, dtype=np.int64))
        assert 0 <= b <= e <= len(data) and e - b == count * size, name
        arr = np.frombuffer(data[b:e], dtype=npdt).reshape(shape)
        if dtype == "BF16":
            arr = bf16_bits_to_f32(arr)
        out[name] = (dtype, arr)
        spans.append((b, e))
    spans.sort()
    pos = 0
    for b, e in spans:  # contiguous, no gaps, no overlaps
        assert b == pos
        pos = e
    assert pos == len(data)
    return out, meta


def stored_value(dtype, arr):
    """The value a reader gets back after storing arr as dtype, as float64."""
    if dtype == "F32":
        return arr.astype(np.float32).astype(np.float64)
    if dtype == "F16":
        return arr.astype(np.float16).astype(np.float64)
    if dtype == "BF16":
        return bf16_bits_to_f32(f32_to_bf16_bits(arr)).astype(np.float64)
    return arr


# ---- random weights ----------------------------------------------------------

def linear(rng, out_f, in_f):
    return (rng.normal(0.0, 0.2, (out_f, in_f)).astype(np.float32),
            rng.normal(0.0, 0.1, (out_f,)).astype(np.float32))


def layer_norm_params(rng, n):
    return ((1.0 + rng.normal(0.0, 0.1, (n,))).astype(np.float32),
            rng.normal(0.0, 0.1, (n,)).astype(np.float32))


def make_weights(seed, head, num_labels=0):
    """State dict in HF order and naming; head is "base", "cls" or "mlm"."""
    rng = np.random.default_rng(seed)
    w = {}
    p = "" if head == "base" else "bert."
    w[p + "embeddings.word_embeddings.weight"] = rng.normal(0, 0.2, (VOCAB, HIDDEN)).astype(np.float32)
    w[p + "embeddings.position_embeddings.weight"] = rng.normal(0, 0.2, (MAX_POS, HIDDEN)).astype(np.float32)
    w[p + "embeddings.token_type_embeddings.weight"] = rng.normal(0, 0.2, (TYPES, HIDDEN)).astype(np.float32)
    w[p + "embeddings.LayerNorm.weight"], w[p + "embeddings.LayerNorm.bias"] = layer_norm_params(rng, HIDDEN)
    for i in range(LAYERS):
        q = f"{p}encoder.layer.{i}."
        for n in ("query", "key", "value"):
            w[q + f"attention.self.{n}.weight"], w[q + f"attention.self.{n}.bias"] = linear(rng, HIDDEN, HIDDEN)
        w[q + "attention.output.dense.weight"], w[q + "attention.output.dense.bias"] = linear(rng, HIDDEN, HIDDEN)
        w[q + "attention.output.LayerNorm.weight"], w[q + "attention.output.LayerNorm.bias"] = layer_norm_params(rng, HIDDEN)
        w[q + "intermediate.dense.weight"], w[q + "intermediate.dense.bias"] = linear(rng, FFN, HIDDEN)
        w[q + "output.dense.weight"], w[q + "output.dense.bias"] = linear(rng, HIDDEN, FFN)
        w[q + "output.LayerNorm.weight"], w[q + "output.LayerNorm.bias"] = layer_norm_params(rng, HIDDEN)
    if head != "mlm":  # BertForMaskedLM is built with add_pooling_layer=False
        w[p + "pooler.dense.weight"], w[p + "pooler.dense.bias"] = linear(rng, HIDDEN, HIDDEN)
    if head == "cls":
        w["classifier.weight"], w["classifier.bias"] = linear(rng, num_labels, HIDDEN)
    if head == "mlm":
        w["cls.predictions.transform.dense.weight"], w["cls.predictions.transform.dense.bias"] = linear(rng, HIDDEN, HIDDEN)
        w["cls.predictions.transform.LayerNorm.weight"], w["cls.predictions.transform.LayerNorm.bias"] = layer_norm_params(rng, HIDDEN)
        # the decoder's weight is tied to the word embeddings and its bias is
        # this same parameter: HF saves neither cls.predictions.decoder.*
        w["cls.predictions.bias"] = rng.normal(0, 0.1, (VOCAB,)).astype(np.float32)
    return w


# ---- the reference forward pass (HF BertModel semantics, eval mode) -----------

def act_fn(name, x):
    if name == "gelu":       # transformers GELUActivation: exact erf form
        return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))
    if name == "gelu_new":   # transformers NewGELUActivation: tanh approximation
        return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))
    if name == "relu":
        return torch.clamp(x, min=0.0)
    raise ValueError(name)


def layer_norm(x, w, b, eps):
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) ** 2).mean(-1, keepdim=True)  # biased, as nn.LayerNorm
    return (x - mean) / torch.sqrt(var + eps) * w + b


def forward(W, cfg, head, ids, type_ids, lens, dtype=torch.float64, bf16_gemm=False):
    """W: {name: float64 array} as stored. ids, type_ids (B,T), lens (B).
    Returns {name: tensor} with every output expected.safetensors holds.
    bf16_gemm rounds both operands of every matrix product to bf16 (fp32
    accumulate), to estimate what a bf16 GEMM backend can reach."""
    p = "" if head == "base" else "bert."
    g = lambda n: torch.from_numpy(W[n]).to(dtype)
    eps, act = cfg["layer_norm_eps"], cfg["hidden_act"]
    nb, nt = ids.shape
    C, NH = cfg["hidden_size"], cfg["num_attention_heads"]
    D = C // NH

    def rb(x):
        return x.to(torch.bfloat16).to(dtype) if bf16_gemm else x

    def lin(x, name):  # nn.Linear: x @ W^T + b, W is (out, in)
        return rb(x) @ rb(g(name + ".weight")).T + g(name + ".bias")

    ids_t = torch.from_numpy(ids.astype(np.int64))
    tt_t = torch.from_numpy(type_ids.astype(np.int64))
    pos = torch.arange(nt)
    # BertEmbeddings: inputs_embeds + token_type_embeddings, then += position
    x = g(p + "embeddings.word_embeddings.weight")[ids_t] + g(p + "embeddings.token_type_embeddings.weight")[tt_t]
    x = x + g(p + "embeddings.position_embeddings.weight")[pos][None]
    x = layer_norm(x, g(p + "embeddings.LayerNorm.weight"), g(p + "embeddings.LayerNorm.bias"), eps)
    out = {"hidden.0": x}

    # get_extended_attention_mask: (1 - mask) * finfo(float32).min on the keys
    mask = (pos[None, :] < torch.from_numpy(lens.astype(np.int64))[:, None]).to(dtype)
    ext = (1.0 - mask)[:, None, None, :] * torch.finfo(torch.float32).min  # (B,1,1,T)

    def heads(y):  # (B,T,C) -> (B,NH,T,D)
        return y.view(nb, nt, NH, D).permute(0, 2, 1, 3)

    for i in range(cfg["num_hidden_layers"]):
        q = f"{p}encoder.layer.{i}."
        qh = heads(lin(x, q + "attention.self.query"))
        kh = heads(lin(x, q + "attention.self.key"))
        vh = heads(lin(x, q + "attention.self.value"))
        scores = rb(qh) @ rb(kh).transpose(-1, -2) / math.sqrt(D) + ext
        probs = torch.softmax(scores, dim=-1)
        ctx = (rb(probs) @ rb(vh)).permute(0, 2, 1, 3).reshape(nb, nt, C)
        a = layer_norm(lin(ctx, q + "attention.output.dense") + x,
                       g(q + "attention.output.LayerNorm.weight"), g(q + "attention.output.LayerNorm.bias"), eps)
        h = act_fn(act, lin(a, q + "intermediate.dense"))
        out[f"ffn.{i}"] = h
        x = layer_norm(lin(h, q + "output.dense") + a,
                       g(q + "output.LayerNorm.weight"), g(q + "output.LayerNorm.bias"), eps)
        out[f"hidden.{i + 1}"] = x

    if head != "mlm":
        out["pooled"] = torch.tanh(lin(x[:, 0], p + "pooler.dense"))
    if head == "cls":
        out["logits"] = lin(out["pooled"], "classifier")
    if head == "mlm":
        t = act_fn(act, lin(x, "cls.predictions.transform.dense"))
        t = layer_norm(t, g("cls.predictions.transform.LayerNorm.weight"),
                       g("cls.predictions.transform.LayerNorm.bias"), eps)
        dec = g(p + "embeddings.word_embeddings.weight")  # tied decoder (vocab, C)
        out["mlm_logits"] = rb(t) @ rb(dec).T + g("cls.predictions.bias")
    return out


# ---- inputs, vocab, config -----------------------------------------------------

def make_inputs():
    rng = np.random.default_rng(INPUT_SEED)
    ids = np.zeros((B, T), np.int32)       # pad id 0 everywhere past the length
    tt = np.zeros((B, T), np.int32)
    for r, n in enumerate(LENGTHS):
        ids[r, :n] = rng.integers(MASK + 1, VOCAB, n)
        ids[r, 0] = CLS
        if n > 1:
            ids[r, n - 1] = SEP
        if r in PAIR_ROWS:                 # [CLS] a [SEP] b [SEP]
            s = PAIR_ROWS[r]
            ids[r, s] = SEP
            tt[r, s + 1:n] = 1
    ids[0, 4] = MASK                       # one [MASK] for the MLM head
    return ids, tt, np.array(LENGTHS, np.int32)


def make_vocab():
    words = ("the a an is was not and of to in it this that film movie good bad "
             "fine great very story play act un ##s ##ed ##ing ##ly ##er ##est "
             "##ment ##able ##ness ##ful ##less ##ion ##al ##y ##re ##un ##ish").split()
    toks = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    toks += list(".,!?'-():;") + [str(d) for d in range(10)]
    toks += [chr(c) for c in range(ord("a"), ord("z") + 1)]
    toks += ["##" + chr(c) for c in range(ord("a"), ord("z") + 1)]
    toks += [w for w in words if w not in toks]
    toks += [f"[unused{i}]" for i in range(VOCAB - len(toks))]
    assert len(toks) == VOCAB and len(set(toks)) == VOCAB
    return "".join(t + "\n" for t in toks)


def make_config(arch, act, eps, torch_dtype, labels=None):
    c = {
        "architectures": [arch],
        "attention_probs_dropout_prob": 0.1,
        "classifier_dropout": None,
        "hidden_act": act,
        "hidden_dropout_prob": 0.1,
        "hidden_size": HIDDEN,
        "initializer_range": 0.02,
        "intermediate_size": FFN,
        "layer_norm_eps": eps,
        "max_position_embeddings": MAX_POS,
        "model_type": "bert",
        "num_attention_heads": HEADS,
        "num_hidden_layers": LAYERS,
        "pad_token_id": 0,
        "position_embedding_type": "absolute",
        "torch_dtype": torch_dtype,
        "transformers_version": TRANSFORMERS_VERSION,
        "type_vocab_size": TYPES,
        "use_cache": True,
        "vocab_size": VOCAB,
    }
    if labels:
        c["id2label"] = {str(i): l for i, l in enumerate(labels)}
        c["label2id"] = {l: i for i, l in enumerate(labels)}
    # PretrainedConfig.to_json_string: indent 2, sorted keys, trailing newline
    return json.dumps(c, indent=2, sort_keys=True) + "\n"


TOKENIZER_CONFIG = json.dumps({
    "clean_up_tokenization_spaces": True, "cls_token": "[CLS]", "do_basic_tokenize": True,
    "do_lower_case": True, "mask_token": "[MASK]", "model_max_length": MAX_POS,
    "never_split": None, "pad_token": "[PAD]", "sep_token": "[SEP]", "strip_accents": None,
    "tokenize_chinese_chars": True, "tokenizer_class": "BertTokenizer", "unk_token": "[UNK]",
}, indent=2, sort_keys=True) + "\n"

ARCH = {"base": "BertModel", "cls": "BertForSequenceClassification", "mlm": "BertForMaskedLM"}
TORCH_DTYPE = {"F32": "float32", "F16": "float16", "BF16": "bfloat16"}

# name, head, storage dtype, hidden_act, layer_norm_eps, labels, extras
MODELS = [
    ("bert-f32-gelu", "base", "F32", "gelu", 1e-12, None, {}),
    ("bert-f32-gelu_new-cls", "cls", "F32", "gelu_new", 1e-5, ["neg", "neu", "pos"], {"position_ids": True}),
    ("bert-f32-relu-mlm", "mlm", "F32", "relu", 1e-12, None, {}),
    ("bert-f16", "base", "F16", "gelu", 1e-12, None, {}),
    ("bert-bf16-cls", "cls", "BF16", "gelu", 1e-12, ["negative", "positive"], {}),
    ("bert-sharded", "base", "F32", "gelu", 1e-12, None, {"shards": 2}),
]


# ---- writing -----------------------------------------------------------------

def write(path, data):
    mode = "wb" if isinstance(data, bytes) else "w"
    with open(path, mode) as f:
        f.write(data)


def check_roundtrip(path, tensors):
    with open(path, "rb") as f:
        got, meta = st_read(f.read())
    assert meta == {"format": "pt"} or "format" in meta, path
    assert set(got) == set(tensors), path
    for n, (dtype, arr) in tensors.items():
        gd, ga = got[n]
        assert gd == dtype and list(ga.shape) == list(arr.shape), (path, n)
        want = stored_value(dtype, arr) if dtype in ("F32", "F16", "BF16") else arr
        assert np.array_equal(ga.astype(np.float64) if dtype in ("F16", "BF16", "F32") else ga,
                              want), (path, n)
    return got


def write_model(root, k, spec, inputs):
    name, head, dtype, act, eps, labels, extra = spec
    d = os.path.join(root, name)
    os.makedirs(d, exist_ok=True)
    w = make_weights(SEED + k, head, len(labels) if labels else 0)
    p = "" if head == "base" else "bert."

    tensors = {n: (dtype, a) for n, a in w.items()}
    if extra.get("position_ids"):  # a non-persistent buffer old checkpoints carry
        tensors[p + "embeddings.position_ids"] = ("I64", np.arange(MAX_POS, dtype=np.int64)[None])

    nshards = extra.get("shards", 1)
    if nshards == 1:
        write(os.path.join(d, "model.safetensors"), st_bytes(tensors))
        check_roundtrip(os.path.join(d, "model.safetensors"), tensors)
    else:
        # HF fills shards in state-dict order up to max_shard_size
        names = list(tensors)
        sizes = [len(encode(tensors[n][1], tensors[n][0])) for n in names]
        total = sum(sizes)
        cut, acc = 0, 0
        while acc + sizes[cut] <= total / nshards:
            acc += sizes[cut]
            cut += 1
        parts = [names[:cut], names[cut:]]
        assert nshards == 2 and all(parts)
        weight_map = {}
        for s, part in enumerate(parts):
            fn = f"model-{s + 1:05d}-of-{nshards:05d}.safetensors"
            sub = {n: tensors[n] for n in part}
            write(os.path.join(d, fn), st_bytes(sub))
            check_roundtrip(os.path.join(d, fn), sub)
            weight_map.update({n: fn for n in part})
        index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
        write(os.path.join(d, "model.safetensors.index.json"), json.dumps(index, indent=2, sort_keys=True) + "\n")

    write(os.path.join(d, "config.json"), make_config(ARCH[head], act, eps, TORCH_DTYPE[dtype], labels))
    write(os.path.join(d, "vocab.txt"), make_vocab())
    write(os.path.join(d, "tokenizer_config.json"), TOKENIZER_CONFIG)

    cfg = {"layer_norm_eps": eps, "hidden_act": act, "hidden_size": HIDDEN,
           "num_attention_heads": HEADS, "num_hidden_layers": LAYERS}
    W64 = {n: stored_value(dtype, a) for n, a in w.items()}
    ids, tt, lens = inputs
    ref = forward(W64, cfg, head, ids, tt, lens, torch.float64)

    exp = {"input_ids": ("I32", ids), "token_type_ids": ("I32", tt), "lengths": ("I32", lens)}
    for n, v in ref.items():
        exp[n] = ("F32", v.numpy().astype(np.float32))
    epath = os.path.join(d, "expected.safetensors")
    meta = {"format": "pt", "reference": "float64 PyTorch, scripts/ref_model.py",
            "seed": str(SEED + k), "input_seed": str(INPUT_SEED)}
    write(epath, st_bytes(exp, meta))
    check_roundtrip(epath, exp)

    # how far a float32 (and a bf16-GEMM) run of the same code lands from the
    # float64 reference, over real (non-padding) positions: a guide for the C
    # tests' tolerances
    valid = torch.from_numpy(np.arange(T)[None, :] < lens[:, None])
    report = []
    for label, kw in (("f32", {"dtype": torch.float32}),
                      ("bf16-gemm", {"dtype": torch.float32, "bf16_gemm": True})):
        o = forward(W64, cfg, head, ids, tt, lens, **kw)
        worst = 0.0
        for n, v in ref.items():
            diff = (o[n].double() - v).abs()
            if diff.dim() == 3:
                diff = diff[valid]
            worst = max(worst, diff.max().item())
        report.append(f"{label} max|diff| {worst:.2e}")
        if label == "f32":
            assert worst < 1e-4, (name, worst)
    nn_diff = cross_check_nn(W64, cfg, head, inputs, ref)
    assert nn_diff < 1e-9, (name, nn_diff)
    report.append(f"torch.nn encoder max|diff| {nn_diff:.2e}")
    print(f"{name}: {', '.join(report)}")
    return d


def cross_check_nn(W, cfg, head, inputs, ref):
    """The encoder again through torch.nn.TransformerEncoderLayer (post-norm,
    packed in-projection, key_padding_mask): an independent attention path.
    Returns max|diff| against ref over all positions, padding included."""
    p = "" if head == "base" else "bert."
    g = lambda n: torch.from_numpy(W[n])
    ids, tt, lens = inputs
    C, eps, act = cfg["hidden_size"], cfg["layer_norm_eps"], cfg["hidden_act"]
    x = ref["hidden.0"]
    pad = torch.from_numpy(np.arange(ids.shape[1])[None, :] >= lens[:, None])
    worst = 0.0
    for i in range(cfg["num_hidden_layers"]):
        q = f"{p}encoder.layer.{i}."
        m = torch.nn.TransformerEncoderLayer(C, cfg["num_attention_heads"], FFN, dropout=0.0,
                                             activation=lambda y: act_fn(act, y), layer_norm_eps=eps,
                                             batch_first=True, norm_first=False).double().eval()
        with torch.no_grad():
            m.self_attn.in_proj_weight.copy_(torch.cat([g(q + f"attention.self.{n}.weight") for n in ("query", "key", "value")]))
            m.self_attn.in_proj_bias.copy_(torch.cat([g(q + f"attention.self.{n}.bias") for n in ("query", "key", "value")]))
            m.self_attn.out_proj.weight.copy_(g(q + "attention.output.dense.weight"))
            m.self_attn.out_proj.bias.copy_(g(q + "attention.output.dense.bias"))
            m.norm1.weight.copy_(g(q + "attention.output.LayerNorm.weight"))
            m.norm1.bias.copy_(g(q + "attention.output.LayerNorm.bias"))
            m.linear1.weight.copy_(g(q + "intermediate.dense.weight"))
            m.linear1.bias.copy_(g(q + "intermediate.dense.bias"))
            m.linear2.weight.copy_(g(q + "output.dense.weight"))
            m.linear2.bias.copy_(g(q + "output.dense.bias"))
            m.norm2.weight.copy_(g(q + "output.LayerNorm.weight"))
            m.norm2.bias.copy_(g(q + "output.LayerNorm.bias"))
        # grad mode on and parameters requiring grad: keeps torch off its
        # nested-tensor fast path, which would zero the padding rows
        x = m(x, src_key_padding_mask=pad).detach()
        worst = max(worst, (x - ref[f"hidden.{i + 1}"]).abs().max().item())
    return worst


def self_check_primitives():
    """The hand-written formulas against torch's own ops."""
    x = torch.from_numpy(np.random.default_rng(7).normal(0, 2, (64, 32)))
    w, b = torch.rand(32, dtype=torch.float64) + 0.5, torch.rand(32, dtype=torch.float64)
    ln = torch.nn.functional.layer_norm(x, (32,), w, b, 1e-12)
    assert (layer_norm(x, w, b, 1e-12) - ln).abs().max() < 1e-12
    assert (act_fn("gelu", x) - torch.nn.functional.gelu(x)).abs().max() < 1e-12
    assert (act_fn("gelu_new", x) - torch.nn.functional.gelu(x, approximate="tanh")).abs().max() < 1e-12
    assert (act_fn("relu", x) - torch.relu(x)).abs().max() == 0
    bits = f32_to_bf16_bits(np.array([1.00390625, 1.01171875, -3.0e38, 1e-40], np.float32))
    assert list(bits) == [0x3F80, 0x3F82, 0xFF62, 0x0001]  # ties to even, denormal


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: /usr/bin/python3 scripts/ref_model.py OUT_DIR   (e.g. tests/data/models)")
    root = sys.argv[1]
    torch.set_num_threads(1)  # a fixed reduction order: identical bytes on re-runs
    self_check_primitives()
    inputs = make_inputs()
    total = 0
    for k, spec in enumerate(MODELS):
        d = write_model(root, k, spec, inputs)
        for fn in sorted(os.listdir(d)):
            path = os.path.join(d, fn)
            with open(path, "rb") as f:
                data = f.read()
            total += len(data)
            print(f"  {fn:40s} {len(data):8d}  {hashlib.sha256(data).hexdigest()[:16]}")
    print(f"total {total} bytes")


if __name__ == "__main__":
    main()
