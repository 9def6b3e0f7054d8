#!/usr/bin/python3
"""ref_grads.py: reference gradients for the C training engine's backward pass.

For four of the models scripts/ref_model.py wrote, computes with torch autograd
in float64, on the weights as stored in the model's safetensors (F32 or BF16,
widened to float64), the gradient of a fixed scalar loss with respect to every
stored parameter and to the main intermediate activations, and writes them to
<model dir>/grads.safetensors:

    /usr/bin/python3 scripts/ref_grads.py tests/data/models

The input batch is read from each model's expected.safetensors (input_ids,
token_type_ids, lengths). Losses (eval mode, no dropout):

  bert-f32-gelu_new-cls, bert-bf16-cls  (sequence classification)
      loss = 1/B sum_b [ logsumexp_k logits[b,k] - logits[b, labels[b]] ]
  bert-f32-relu-mlm  (masked LM, decoder tied to the word embeddings)
      loss = 1/N sum_{(b,t): mlm_labels[b,t] != -100}
                 [ logsumexp_v mlm_logits[b,t,v] - mlm_logits[b,t, mlm_labels[b,t]] ]
      N = number of labelled positions (HF CrossEntropyLoss, ignore_index=-100)
  bert-f32-gelu  (BertModel, no head)
      loss = sum_{b,t,c} loss_weights[b,t,c] * hidden.L[b,t,c]
           + sum_{b,c} pooled_weights[b,c] * pooled[b,c]
      loss_weights is zero at padding (t >= lengths[b]).

Labels and weights are stored in the file; the loss uses exactly the stored
(F32 / I32) values. Needs only torch and numpy; the safetensors writer/reader
and the weights layout come from ref_model.py. Output is deterministic (same
bytes on every run); the script checks itself (finite differences, forward
against expected.safetensors and ref_model.forward, determinism, and that no
other file in the model directories changes).
"""
import hashlib
import json
import math
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ref_model as rm  # noqa: E402  (its generation only runs under __main__)

GRAD_SEED = rm.SEED + 1000   # model directory k (MODELS order) uses GRAD_SEED + k
IGNORE = -100
N_MLM_LABELS = 6             # labelled positions, incl. the [MASK] at (0, 4)

# name -> loss kind; the directories must exist (written by ref_model.py)
GRAD_MODELS = [
    ("bert-f32-gelu", "base"),
    ("bert-f32-gelu_new-cls", "cls"),
    ("bert-f32-relu-mlm", "mlm"),
    ("bert-bf16-cls", "cls"),
]


# ---- loading -------------------------------------------------------------------

def read_st(path):
    with open(path, "rb") as f:
        return rm.st_read(f.read())[0]


def load_model(d):
    """-> (config dict, {param name: (stored dtype, float64 array)}, inputs)."""
    with open(os.path.join(d, "config.json")) as f:
        cfg = json.load(f)
    params = {}
    for n, (dt, a) in read_st(os.path.join(d, "model.safetensors")).items():
        if dt in ("F32", "F16", "BF16"):      # skips the I64 position_ids buffer
            params[n] = (dt, a.astype(np.float64))
    exp = read_st(os.path.join(d, "expected.safetensors"))
    inputs = tuple(exp[n][1].copy() for n in ("input_ids", "token_type_ids", "lengths"))
    return cfg, params, inputs, exp


def head_of(cfg):
    return {"BertModel": "base", "BertForSequenceClassification": "cls",
            "BertForMaskedLM": "mlm"}[cfg["architectures"][0]]


# ---- forward with autograd (same operations, in the same order, as rm.forward) --

def forward(P, cfg, head, ids, type_ids, lens, delta=None):
    """P: {name: leaf tensor}. delta: optional {intermediate name: tensor} added
    to that intermediate (for finite differences on activations). Returns
    {name: tensor}; the intermediates have retain_grad() set."""
    delta = delta or {}
    p = "" if head == "base" else "bert."
    g = P.__getitem__
    eps, act = cfg["layer_norm_eps"], cfg["hidden_act"]
    nb, nt = ids.shape
    C, NH = cfg["hidden_size"], cfg["num_attention_heads"]
    D = C // NH
    dtype = g(p + "embeddings.word_embeddings.weight").dtype

    def tap(name, x):
        if name in delta:
            x = x + delta[name]
        if x.requires_grad:
            x.retain_grad()
        out[name] = x
        return x

    def lin(x, name):
        return x @ g(name + ".weight").T + g(name + ".bias")

    out = {}
    ids_t = torch.from_numpy(ids.astype(np.int64))
    tt_t = torch.from_numpy(type_ids.astype(np.int64))
    pos = torch.arange(nt)
    e = tap("inputs_embeds", g(p + "embeddings.word_embeddings.weight")[ids_t])
    x = e + g(p + "embeddings.token_type_embeddings.weight")[tt_t]
    x = x + g(p + "embeddings.position_embeddings.weight")[pos][None]
    x = rm.layer_norm(x, g(p + "embeddings.LayerNorm.weight"), g(p + "embeddings.LayerNorm.bias"), eps)
    x = tap("hidden.0", x)

    mask = (pos[None, :] < torch.from_numpy(lens.astype(np.int64))[:, None]).to(dtype)
    ext = (1.0 - mask)[:, None, None, :] * torch.finfo(torch.float32).min

    def heads(y):
        return y.view(nb, nt, NH, D).permute(0, 2, 1, 3)

    for i in range(cfg["num_hidden_layers"]):
        q = f"{p}encoder.layer.{i}."
        qh = heads(lin(x, q + "attention.self.query"))
        kh = heads(lin(x, q + "attention.self.key"))
        vh = heads(lin(x, q + "attention.self.value"))
        scores = qh @ kh.transpose(-1, -2) / math.sqrt(D) + ext
        probs = torch.softmax(scores, dim=-1)
        ctx = (probs @ vh).permute(0, 2, 1, 3).reshape(nb, nt, C)
        a = rm.layer_norm(lin(ctx, q + "attention.output.dense") + x,
                          g(q + "attention.output.LayerNorm.weight"), g(q + "attention.output.LayerNorm.bias"), eps)
        h = tap(f"ffn.{i}", rm.act_fn(act, lin(a, q + "intermediate.dense")))
        x = rm.layer_norm(lin(h, q + "output.dense") + a,
                          g(q + "output.LayerNorm.weight"), g(q + "output.LayerNorm.bias"), eps)
        x = tap(f"hidden.{i + 1}", x)

    if head != "mlm":
        out["pooled"] = torch.tanh(lin(x[:, 0], p + "pooler.dense"))
    if head == "cls":
        out["logits"] = lin(out["pooled"], "classifier")
    if head == "mlm":
        t = rm.act_fn(act, lin(x, "cls.predictions.transform.dense"))
        t = rm.layer_norm(t, g("cls.predictions.transform.LayerNorm.weight"),
                          g("cls.predictions.transform.LayerNorm.bias"), eps)
        dec = g(p + "embeddings.word_embeddings.weight")  # tied decoder (vocab, C)
        out["mlm_logits"] = t @ dec.T + g("cls.predictions.bias")
    return out


def loss_fn(out, head, targets):
    """The scalar loss (see the module docstring). targets: {name: numpy array}."""
    F = torch.nn.functional
    if head == "cls":
        z = out["logits"]
        y = torch.from_numpy(targets["labels"].astype(np.int64))
        loss = (torch.logsumexp(z, -1) - z.gather(1, y[:, None])[:, 0]).mean()
        ref = F.cross_entropy(z, y)                       # reduction="mean"
    elif head == "mlm":
        z = out["mlm_logits"]
        y = torch.from_numpy(targets["mlm_labels"].astype(np.int64))
        sel = y != IGNORE
        zs, ys = z[sel], y[sel]                           # (N, vocab), (N)
        loss = (torch.logsumexp(zs, -1) - zs.gather(1, ys[:, None])[:, 0]).sum() / sel.sum()
        ref = F.cross_entropy(z.reshape(-1, z.shape[-1]), y.reshape(-1), ignore_index=IGNORE)
    else:
        L = max(int(n.split(".")[1]) for n in out if n.startswith("hidden."))
        dt = out["pooled"].dtype
        Wt = torch.from_numpy(targets["loss_weights"].astype(np.float64)).to(dt)
        Vt = torch.from_numpy(targets["pooled_weights"].astype(np.float64)).to(dt)
        loss = (Wt * out[f"hidden.{L}"]).sum() + (Vt * out["pooled"]).sum()
        ref = loss
    assert abs(loss.item() - ref.item()) <= 1e-12 * max(1.0, abs(ref.item())), (loss.item(), ref.item())
    return loss


# ---- targets -------------------------------------------------------------------

def make_targets(k, head, cfg, inputs):
    rng = np.random.default_rng(GRAD_SEED + k)
    ids, tt, lens = inputs
    nb, nt = ids.shape
    if head == "cls":
        nl = len(cfg["id2label"])
        labels = rng.integers(0, nl, nb).astype(np.int32)
        labels[:nl] = np.arange(nl, dtype=np.int32)[rng.permutation(nl)][:min(nl, nb)]  # every class used
        return {"labels": labels}
    if head == "mlm":
        assert ids[0, 4] == rm.MASK
        cand = [(b, t) for b in range(nb) for t in range(int(lens[b])) if (b, t) != (0, 4)]
        pick = rng.choice(len(cand), N_MLM_LABELS - 1, replace=False)
        where = sorted([(0, 4)] + [cand[i] for i in pick])
        y = np.full((nb, nt), IGNORE, np.int32)
        for b, t in where:
            y[b, t] = rng.integers(rm.MASK + 1, cfg["vocab_size"])
        return {"mlm_labels": y}
    C = cfg["hidden_size"]
    W = rng.normal(0.0, 1.0, (nb, nt, C)).astype(np.float32)
    W[np.arange(nt)[None, :] >= lens[:, None]] = 0.0
    V = rng.normal(0.0, 1.0, (nb, C)).astype(np.float32)
    return {"loss_weights": W, "pooled_weights": V}


# ---- gradients -----------------------------------------------------------------

def leaves(params, dtype):
    return {n: torch.from_numpy(a).to(dtype).requires_grad_(True) for n, (_, a) in params.items()}


def run(params, cfg, head, inputs, targets, dtype=torch.float64):
    """-> (loss tensor, {param: grad}, {intermediate: grad}, forward outputs)."""
    P = leaves(params, dtype)
    out = forward(P, cfg, head, *inputs)
    loss = loss_fn(out, head, targets)
    loss.backward()
    L = cfg["num_hidden_layers"]
    acts = {"inputs_embeds": out["inputs_embeds"].grad, "embeddings_out": out["hidden.0"].grad}
    for i in range(L):
        acts[f"ffn.{i}"] = out[f"ffn.{i}"].grad
    for i in range(1, L + 1):
        acts[f"hidden.{i}"] = out[f"hidden.{i}"].grad
    grads = {n: P[n].grad for n in params}
    for n, v in list(grads.items()) + list(acts.items()):
        assert v is not None and torch.isfinite(v).all(), n
    return loss, grads, acts, out


def loss_at(params, cfg, head, inputs, targets, pname=None, idx=None, h=0.0, act=None, shape=None):
    """float64 loss with params[pname][idx] += h, or intermediate act[idx] += h."""
    with torch.no_grad():
        P = {n: torch.from_numpy(a) for n, (_, a) in params.items()}
        delta = None
        if pname is not None:
            w = P[pname].clone()
            w[idx] += h
            P[pname] = w
        if act is not None:
            dl = torch.zeros(shape, dtype=torch.float64)
            dl[idx] = h
            delta = {"hidden.0" if act == "embeddings_out" else act: dl}
        return loss_fn(forward(P, cfg, head, *inputs, delta=delta), head, targets).item()


FD_H = 1e-6       # central-difference step (float64)
FD_FLOOR = 2e-3   # only elements with |grad| >= max(FD_FLOOR, max|grad of tensor| / 4)


def fd_check(name, params, cfg, head, inputs, targets, grads, acts, rng, n_param=12, n_act=2):
    """Central differences (h=1e-6, float64) on random elements of random
    parameters and intermediates; returns the worst relative error."""
    h = FD_H
    worst = 0.0
    checks = []
    pnames = sorted(params)
    # a few parameters at random, plus ones that every model path must get right
    must = [n for n in pnames if n.endswith(("embeddings.word_embeddings.weight",
                                              "embeddings.position_embeddings.weight",
                                              "embeddings.token_type_embeddings.weight",
                                              "layer.0.attention.self.query.weight",
                                              "layer.0.attention.self.key.weight",
                                              "pooler.dense.weight", "classifier.weight",
                                              "classifier.bias", "cls.predictions.bias",
                                              "cls.predictions.transform.dense.weight"))]
    chosen = must + [pnames[i] for i in rng.choice(len(pnames), n_param, replace=False)]
    for pn in chosen:
        g = grads[pn].numpy()
        # pick an element whose gradient is not small: relative error is
        # meaningless on values that are zero (unused vocab rows) or zero up to
        # rounding (the key bias: softmax ignores a per-query constant), and the
        # central difference itself carries ~4e-10 of absolute rounding noise
        flat = np.flatnonzero(np.abs(g) > max(0.25 * np.abs(g).max(), FD_FLOOR))
        if len(flat) == 0:
            continue
        idx = np.unravel_index(flat[rng.integers(len(flat))], g.shape)
        checks.append(("param", pn, idx, g[idx]))
    for an in sorted(acts):       # every intermediate, two elements each
        g = acts[an].numpy()
        flat = np.flatnonzero(np.abs(g) > max(0.25 * np.abs(g).max(), FD_FLOOR))
        for _ in range(n_act):
            idx = np.unravel_index(flat[rng.integers(len(flat))], g.shape)
            checks.append(("act", an, idx, g[idx]))
    for kind, n, idx, ag in checks:
        idx = tuple(int(i) for i in idx)
        if kind == "param":
            lp = loss_at(params, cfg, head, inputs, targets, n, idx, +h)
            lm = loss_at(params, cfg, head, inputs, targets, n, idx, -h)
        else:
            shp = tuple(acts[n].shape)
            lp = loss_at(params, cfg, head, inputs, targets, act=n, idx=idx, h=+h, shape=shp)
            lm = loss_at(params, cfg, head, inputs, targets, act=n, idx=idx, h=-h, shape=shp)
        fd = (lp - lm) / (2 * h)
        rel = abs(fd - ag) / max(abs(ag), abs(fd))
        assert rel < 1e-6, (name, n, idx, ag, fd, rel)
        worst = max(worst, rel)
    # a directional derivative over all parameters at once
    d = {n: rng.normal(0.0, 1.0, a.shape) for n, (_, a) in params.items()}
    dot = sum(float((grads[n].numpy() * d[n]).sum()) for n in params)

    def shifted(s):
        p2 = {n: (dt, a + s * d[n]) for n, (dt, a) in params.items()}
        return loss_at(p2, cfg, head, inputs, targets)
    fd = (shifted(h) - shifted(-h)) / (2 * h)
    rel = abs(fd - dot) / max(abs(dot), abs(fd))
    assert rel < 1e-6, (name, "direction", dot, fd, rel)
    return worst, len(checks), rel


def identities(params, cfg, head, inputs, grads, acts):
    """Structural identities between the gradients (checked to 1e-12)."""
    ids, tt, lens = inputs
    p = "" if head == "base" else "bert."
    gi = acts["inputs_embeds"]
    # position embeddings get the same gradient as inputs_embeds, summed over b
    gp = grads[p + "embeddings.position_embeddings.weight"]
    assert (gp[:ids.shape[1]] - gi.sum(0)).abs().max() < 1e-12
    assert gp[ids.shape[1]:].abs().max() == 0
    # token types: scatter-add over the token_type_ids
    gt = torch.zeros_like(grads[p + "embeddings.token_type_embeddings.weight"])
    gt.index_add_(0, torch.from_numpy(tt.reshape(-1).astype(np.int64)), gi.reshape(-1, gi.shape[-1]))
    assert (gt - grads[p + "embeddings.token_type_embeddings.weight"]).abs().max() < 1e-12
    # word embeddings: scatter-add of inputs_embeds (+ the tied decoder for MLM)
    gw = torch.zeros_like(grads[p + "embeddings.word_embeddings.weight"])
    gw.index_add_(0, torch.from_numpy(ids.reshape(-1).astype(np.int64)), gi.reshape(-1, gi.shape[-1]))
    diff = (gw - grads[p + "embeddings.word_embeddings.weight"]).abs().max().item()
    if head == "mlm":
        assert diff > 1e-3   # the decoder's share is really there
    else:
        assert diff < 1e-12, diff
    # the key bias adds a per-query constant to the scores, which softmax
    # ignores: its gradient is zero up to rounding
    for n, v in grads.items():
        if n.endswith("attention.self.key.bias"):
            assert v.abs().max() < 1e-13, (n, v.abs().max())
    # padding rows / keys carry exactly zero gradient (masked keys, unused queries)
    pad = torch.from_numpy(np.arange(ids.shape[1])[None, :] >= lens[:, None])
    for n, v in acts.items():
        assert v[pad].abs().max() == 0, n


# ---- writing -------------------------------------------------------------------

def grads_file(root, k, name, head):
    d = os.path.join(root, name)
    cfg, params, inputs, exp = load_model(d)
    assert head_of(cfg) == head, name
    targets = make_targets(k, head, cfg, inputs)

    loss, grads, acts, out = run(params, cfg, head, inputs, targets)

    # the forward must be the one expected.safetensors was made with
    W64 = {n: a for n, (_, a) in params.items()}
    ref = rm.forward(W64, cfg, head, *inputs, torch.float64)
    for n, v in ref.items():
        assert torch.equal(out[n].detach(), v), (name, n)
        assert np.array_equal(v.numpy().astype(np.float32), exp[n][1]), (name, n)

    tensors = {"loss": ("F32", np.array([loss.item()], np.float32))}
    for n, v in targets.items():
        tensors[n] = ("I32" if v.dtype == np.int32 else "F32", v)
    for n, v in grads.items():
        assert list(v.shape) == list(params[n][1].shape)
        tensors["grad." + n] = ("F32", v.numpy().astype(np.float32))
    for n, v in acts.items():
        tensors["grad." + n] = ("F32", v.numpy().astype(np.float32))
    meta = {"format": "pt", "reference": "float64 PyTorch autograd, scripts/ref_grads.py",
            "seed": str(GRAD_SEED + k), "loss": LOSS_TEXT[head], "loss_f64": repr(loss.item())}
    return d, cfg, params, inputs, targets, loss, grads, acts, tensors, meta


LOSS_TEXT = {
    "cls": "mean_b cross_entropy(logits[b], labels[b])",
    "mlm": "sum over mlm_labels!=-100 of cross_entropy(mlm_logits[b,t], mlm_labels[b,t]) / count",
    "base": "sum(loss_weights * hidden.L) + sum(pooled_weights * pooled)",
}


def f32_spread(params, cfg, head, inputs, targets, loss64, grads64, acts64):
    """How far a float32 autograd run of the same code lands from the float64
    reference: worst over tensors of max|diff| / max|ref| (the key biases, whose
    reference gradient is 0 up to rounding, apart: their max |f32 grad|)."""
    loss, grads, acts, _ = run(params, cfg, head, inputs, targets, torch.float32)
    worst = abs(loss.item() - loss64.item()) / max(abs(loss64.item()), 1e-30)
    key_bias = 0.0
    for n in list(grads) + list(acts):
        a, b = (grads[n], grads64[n]) if n in grads else (acts[n], acts64[n])
        if n.endswith("attention.self.key.bias"):
            key_bias = max(key_bias, a.abs().max().item())
            continue
        m = b.abs().max().item()
        if m > 0:
            worst = max(worst, (a.double() - b).abs().max().item() / m)
    return worst, key_bias


def snapshot(root):
    """sha256 of every file under root except the grads files."""
    h = {}
    for dp, _, fns in sorted(os.walk(root)):
        for fn in sorted(fns):
            if fn == "grads.safetensors":
                continue
            path = os.path.join(dp, fn)
            with open(path, "rb") as f:
                h[path] = hashlib.sha256(f.read()).hexdigest()
    return h


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: /usr/bin/python3 scripts/ref_grads.py MODELS_DIR   (e.g. tests/data/models)")
    root = sys.argv[1]
    torch.set_num_threads(1)  # a fixed reduction order: identical bytes on re-runs
    before = snapshot(root)
    for k, (name, head) in enumerate(GRAD_MODELS):
        d, cfg, params, inputs, targets, loss, grads, acts, tensors, meta = grads_file(root, k, name, head)
        data = rm.st_bytes(tensors, meta)
        # a second, independent computation must give the same bytes
        again = rm.st_bytes(*grads_file(root, k, name, head)[8:])
        assert again == data, name
        identities(params, cfg, head, inputs, grads, acts)
        rng = np.random.default_rng(GRAD_SEED + 500 + k)
        worst, nchk, drel = fd_check(name, params, cfg, head, inputs, targets, grads, acts, rng)
        spread, kb = f32_spread(params, cfg, head, inputs, targets, loss, grads, acts)
        path = os.path.join(d, "grads.safetensors")
        rm.write(path, data)
        rm.check_roundtrip(path, tensors)
        print(f"{name}: loss {loss.item():.17g}; FD {nchk} elements worst rel {worst:.1e}, "
              f"direction rel {drel:.1e}; f32 run: max rel {spread:.1e}, key-bias |grad| {kb:.1e}")
        print(f"  grads.safetensors {len(data):8d}  {hashlib.sha256(data).hexdigest()[:16]}")
    after = snapshot(root)
    assert before == after, "a file other than grads.safetensors changed"


if __name__ == "__main__":
    main()
