"""unplug: task experts pruned from pretrained encoders, on CPUs.

The Python front door over libunplug (include/unplug.h), bound with ctypes:
the calls release the GIL while the C library computes, arrays come back as
numpy arrays the library wrote into, and every failure raises unplug.Error
with the library's message.

    import unplug
    m = unplug.Model("models/all-minilm-l6-v2")
    v = m.embed(["a fine film"], pooling="mean", normalize=True)     # (1, 384) float32
    ex = unplug.tune(m, train=rows, val=val_rows, epochs=3)
    pr = unplug.localize(m, ex, train=rows, val=val_rows, tolerance=1.0)
    pr.classify(["what a waste of time"])                             # ['negative']
    pr.save("sentiment.expert")
"""
import ctypes as C
import json
import math
import os
import warnings

import numpy as np

from . import _capi
from ._capi import lib

__all__ = ["Error", "Model", "Dataset", "Expert", "Hub", "tune", "localize", "evaluate", "load_task", "version"]

_PRECISIONS = {"auto": 0, "fp32": 1, "bf16": 2, "int8": 3}
_ERR_INTERRUPTED = 7  # UP_ERR_INTERRUPTED in unplug.h
_POOLS = {"cls": 0, "mean": 1}


class Error(Exception):
    """A failure of the C library; the message names the file, field or argument."""


def _check(status, what=None):
    if status != 0:
        msg = (lib.up_errmsg() or b"").decode("utf-8", "replace")
        raise Error(f"{what}: {msg}" if what else msg)


def version():
    return lib.up_version().decode()


def _enc(s):
    return os.fsencode(s) if isinstance(s, os.PathLike) else s.encode("utf-8")


def _texts(texts, name="texts"):
    """A list of str, or of (a, b) pairs -> (n, char** a, char** b or None, keepalive)."""
    if isinstance(texts, str):
        texts = [texts]
    texts = list(texts)
    if not texts:
        return 0, None, None, None
    pairs = isinstance(texts[0], (tuple, list))
    a = (C.c_char_p * len(texts))()
    b = (C.c_char_p * len(texts))() if pairs else None
    for i, t in enumerate(texts):
        if pairs:
            if not (isinstance(t, (tuple, list)) and len(t) == 2):
                raise TypeError(f"{name}[{i}]: expected a pair (text_a, text_b) like the first item, got {t!r}")
            a[i], b[i] = t[0].encode("utf-8"), t[1].encode("utf-8")
        else:
            if not isinstance(t, str):
                raise TypeError(f"{name}[{i}]: expected a str, got {type(t).__name__}")
            a[i] = t.encode("utf-8")
    return len(texts), a, b, texts


class Model:
    """A pretrained BERT-family encoder in the Hugging Face layout (config.json,
    model.safetensors, vocab.txt). precision: "auto" (bf16 where the CPU has
    AVX512-BF16 or AMX and bf16 products time faster than fp32), "fp32", "bf16",
    or "int8" (inference only: evaluate, classify, Hub; needs VNNI or AMX);
    threads: 0 for the OpenMP default."""

    def __init__(self, path, precision="auto", threads=0):
        if precision not in _PRECISIONS:
            raise ValueError(f"precision must be one of {sorted(_PRECISIONS)}, got {precision!r}")
        o = lib.up_model_opts_default()
        o.precision = _PRECISIONS[precision]
        o.threads = int(threads)
        h = C.c_void_p()
        _check(lib.up_model_load(_enc(path), C.byref(o), C.byref(h)), f"cannot load the model {path}")
        self._h = h
        self.path = str(path)
        c = lib.up_model_config(h).contents
        self.config = {"model_type": c.model_type.decode(), "vocab_size": c.vocab_size, "hidden_size": c.hidden_size,
                       "num_hidden_layers": c.num_hidden_layers, "num_attention_heads": c.num_attention_heads,
                       "intermediate_size": c.intermediate_size,
                       "max_position_embeddings": c.max_position_embeddings}
        self.precision = lib.up_precision_name(lib.up_model_precision(h)).decode()

    def __del__(self):
        h = getattr(self, "_h", None)
        if h:
            lib.up_model_free(h)
            self._h = None

    def __repr__(self):
        c = self.config
        return (f"unplug.Model({self.path!r}: {c['num_hidden_layers']} layers x {c['hidden_size']}, "
                f"FFN {c['intermediate_size']}, {self.precision})")

    def tokenize(self, texts, max_len=0):
        """Token ids as BertTokenizer gives them: [CLS] a [SEP] (b [SEP]); a list per text."""
        n, a, b, keep = _texts(texts)
        if n == 0:
            return []
        enc = (_capi.Encoding * n)()
        _check(lib.up_model_tokenize(self._h, n, a, b, int(max_len), enc), "tokenize")
        out = [enc[i].ids[:enc[i].n] for i in range(n)]
        for i in range(n):
            lib.up_encoding_free(C.byref(enc[i]))
        return out

    def embed(self, texts, pooling="cls", normalize=False, max_len=0, batch=32):
        """Sentence embeddings, numpy (N, hidden_size) float32: pooling "cls" (the final
        [CLS] vector) or "mean" (over the tokens, as sentence-transformers does)."""
        if pooling not in _POOLS:
            raise ValueError(f"pooling must be 'cls' or 'mean', got {pooling!r}")
        n, a, b, keep = _texts(texts)
        out = np.empty((n, self.config["hidden_size"]), dtype=np.float32)
        if n == 0:
            return out
        o = lib.up_embed_opts_default()
        o.pool, o.normalize, o.max_len, o.batch = _POOLS[pooling], int(bool(normalize)), int(max_len), int(batch)
        _check(lib.up_model_embed(self._h, n, a, b, C.byref(o), out.ctypes.data_as(C.POINTER(C.c_float))), "embed")
        return out


class Dataset:
    """Labelled examples: from a file (GLUE TSVs, TREC, tsv with text/text_b/label
    columns, jsonl), or from rows: (text, label) or (text_a, text_b, label) tuples,
    or a pandas DataFrame with text, label and optionally text_b columns.
    label_space: a Dataset whose labels (and ids) this one must use."""

    def __init__(self, handle):
        self._h = handle

    @classmethod
    def load(cls, path, format=None, label_space=None):
        h = C.c_void_p()
        _check(lib.up_dataset_load(_enc(path), format.encode() if format else None,
                                   label_space._h if label_space else None, C.byref(h)),
               f"cannot load {path}")
        return cls(h)

    @classmethod
    def from_rows(cls, rows, name=None, label_space=None):
        if hasattr(rows, "columns") and hasattr(rows, "itertuples"):  # a pandas DataFrame
            cols = list(rows.columns)
            if "text" not in cols or "label" not in cols:
                raise ValueError(f"a DataFrame needs 'text' and 'label' columns (and optionally 'text_b'), has {cols}")
            if "text_b" in cols:
                rows = list(zip(rows["text"], rows["text_b"], rows["label"]))
            else:
                rows = list(zip(rows["text"], rows["label"]))
        rows = list(rows)
        if not rows:
            raise ValueError("no rows")
        width = len(rows[0])
        if width not in (2, 3):
            raise ValueError(f"rows are (text, label) or (text_a, text_b, label); the first has {width} fields")
        n = len(rows)
        a, lab = (C.c_char_p * n)(), (C.c_char_p * n)()
        b = (C.c_char_p * n)() if width == 3 else None
        for i, r in enumerate(rows):
            if len(r) != width:
                raise ValueError(f"row {i} has {len(r)} fields, the first has {width}")
            a[i] = str(r[0]).encode("utf-8")
            if b is not None:
                b[i] = str(r[1]).encode("utf-8")
            lab[i] = str(r[-1]).encode("utf-8")
        h = C.c_void_p()
        _check(lib.up_dataset_from_rows(name.encode() if name else None, n, a, b, lab,
                                        label_space._h if label_space else None, C.byref(h)), "rows")
        return cls(h)

    def __len__(self):
        return lib.up_dataset_size(self._h)

    @property
    def name(self):
        return lib.up_dataset_name(self._h).decode()

    @property
    def labels(self):
        return [lib.up_dataset_label(self._h, i).decode() for i in range(lib.up_dataset_n_labels(self._h))]

    @property
    def pair(self):
        return bool(lib.up_dataset_is_pair(self._h))

    def __repr__(self):
        return f"unplug.Dataset({self.name!r}, {len(self)} examples, labels {self.labels})"

    def __del__(self):
        h = getattr(self, "_h", None)
        if h:
            lib.up_dataset_free(h)
            self._h = None


def _dataset(x, label_space=None, name=None):
    if x is None or isinstance(x, Dataset):
        return x
    if isinstance(x, (str, os.PathLike)):
        return Dataset.load(x, label_space=label_space)
    return Dataset.from_rows(x, name=name, label_space=label_space)


def _label_space(expert):
    """A dataset whose labels are the expert's, in its order (a label space for files and rows)."""
    return Dataset.from_rows([("x", name) for name in expert.labels], name=expert.task)


def load_task(task, data_dir, seed=1):
    """A task's (train, validation, report) splits in a GLUE-layout directory."""
    tr, va, rep = C.c_void_p(), C.c_void_p(), C.c_void_p()
    _check(lib.up_dataset_task(task.encode(), _enc(data_dir), seed, C.byref(tr), C.byref(va), C.byref(rep)),
           f"cannot load task {task}")
    return Dataset(tr), Dataset(va), Dataset(rep)


class _Progress:
    """Bridges the C progress callback to a Python callable (given a dict), or to
    tqdm bars when tqdm is installed and no callable is given. Ctrl-C during a
    long call sets the library's interrupt flag: tune stops after the current
    step and returns its best state (result["interrupted"]), localize stops at
    the next batch or ratio and raises KeyboardInterrupt."""

    def __init__(self, fn):
        self.fn = fn
        self.bar, self.key = None, None
        self.interrupt = C.c_int(0)
        if fn is None:
            try:
                import tqdm  # noqa: F401
                self.tqdm = tqdm.tqdm
            except ImportError:
                self.tqdm = None
        self.c = _capi.PROGRESS_FN(self._call)

    def _call(self, p, user):
        try:
            p = p.contents
            d = {"stage": _capi.STAGES[p.stage], "done": p.done, "total": p.total, "epoch": p.epoch,
                 "epochs": p.epochs, "loss": p.loss, "rate": p.rate, "ratio": p.ratio, "metric": p.metric,
                 "report": p.report, "before": p.before, "ok": bool(p.ok)}
            if self.fn is not None:
                self.fn(d)
            elif self.tqdm is not None and d["stage"] in ("tune", "attribution"):
                key = (d["stage"], d["epoch"])
                if self.key != key:  # one bar at a time: a new epoch or stage closes the last
                    self._close_bar()
                    desc = f"epoch {d['epoch']}/{d['epochs']}" if d["stage"] == "tune" else "attribution"
                    self.bar, self.key = self.tqdm(total=d["total"], desc=desc, leave=False), key
                self.bar.n = d["done"]
                if d["stage"] == "tune":
                    self.bar.set_postfix(loss=f"{d['loss']:.4f}", refresh=False)
                self.bar.refresh()
        except KeyboardInterrupt:
            self.interrupt.value = 1

    def _close_bar(self):
        if self.bar is not None:
            self.bar.close()
            self.bar, self.key = None, None

    def finish(self):
        """Closes the bars; True when Ctrl-C interrupted the call."""
        self._close_bar()
        return bool(self.interrupt.value)

    def set(self, opts):
        opts.progress = self.c
        opts.interrupt = C.pointer(self.interrupt)


class Expert:
    """A task on a base model: soft prompt, head, and for a pruned expert the FFN
    neurons and attention heads it keeps. classify / predict_proba run it;
    save writes a TASK.expert file; Expert.load reads one for a model."""

    def __init__(self, model, handle, result=None):
        self._h = handle
        self.model = model  # the base must outlive the expert
        self.result = result or {}

    @classmethod
    def load(cls, model, path):
        h = C.c_void_p()
        _check(lib.up_expert_load(model._h if model is not None else None, _enc(path), C.byref(h)),
               f"cannot load the expert {path}")
        return cls(model, h)

    def save(self, path):
        _check(lib.up_expert_save(self._h, _enc(path)), f"cannot write {path}")

    @property
    def task(self):
        return lib.up_expert_task(self._h).decode()

    @property
    def labels(self):
        return [lib.up_expert_label(self._h, i).decode() for i in range(lib.up_expert_n_labels(self._h))]

    @property
    def info(self):
        """ratio, kept neurons and heads per layer, metrics, base fingerprint, ..."""
        p = C.c_void_p()
        _check(lib.up_expert_info_json(self._h, C.byref(p)))
        try:
            return json.loads(C.string_at(p).decode("utf-8"))
        finally:
            lib.up_free(p)

    def predict_proba(self, texts):
        n, a, b, keep = _texts(texts)
        out = np.empty((n, lib.up_expert_n_labels(self._h)), dtype=np.float32)
        if n:
            _check(lib.up_expert_classify(self._h, n, a, b, None, out.ctypes.data_as(C.POINTER(C.c_float))),
                   "classify")
        return out

    def classify(self, texts):
        """The label name of each text (or (text_a, text_b) pair)."""
        n, a, b, keep = _texts(texts)
        if n == 0:
            return []
        ids = (C.c_int * n)()
        _check(lib.up_expert_classify(self._h, n, a, b, ids, None), "classify")
        labels = self.labels
        return [labels[i] for i in ids]

    def __repr__(self):
        i = self.info
        kept = f", {i['kept_ffn']} of {i['total_ffn']} FFN neurons kept" if "kept_ffn" in i else ""
        return f"unplug.Expert({i['task']!r}, labels {i['labels']}, ratio {i['ratio']:.3f}{kept})"

    def __del__(self):
        h = getattr(self, "_h", None)
        if h:
            lib.up_expert_free(h)
            self._h = None


def _nan(x):
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else x


def tune(model, train, val, report=None, *, task=None, epochs=5, prompts=20, deep=False, pooling="mean",
         max_len=128, batch=32, patience=2, lr=3e-3, head_lr=3e-3, seed=1, max_train=0, progress=None):
    """Prompt tuning on the frozen model: soft prompts after [CLS] and a head,
    early-stopped on val. train/val/report: rows, a DataFrame, a path or a Dataset
    (val and report read with train's labels). Returns an Expert whose .result
    holds the validation and report metrics."""
    tr = _dataset(train, name=task)
    va = _dataset(val, label_space=tr, name=task or tr.name)
    rp = _dataset(report, label_space=tr, name=task or tr.name)
    o = lib.up_tune_opts_default()
    o.task = task.encode() if task else None
    o.epochs, o.prompts, o.deep, o.pool = int(epochs), int(prompts), int(bool(deep)), _POOLS[pooling]
    o.max_len, o.batch, o.patience, o.lr, o.head_lr = int(max_len), int(batch), int(patience), lr, head_lr
    o.seed, o.max_train = int(seed), int(max_train)
    pg = _Progress(progress)
    pg.set(o)
    h, r = C.c_void_p(), _capi.TuneResult()
    st = lib.up_tune(model._h, tr._h, va._h, rp._h if rp else None, C.byref(o), C.byref(h), C.byref(r))
    interrupted = pg.finish()
    _check(st, "tuning failed")
    res = {"metric": r.metric_name.decode(), "val": r.val, "report": _nan(r.report), "majority": _nan(r.majority),
           "best_epoch": r.best_epoch, "epochs": r.epochs, "seconds": r.seconds, "interrupted": interrupted}
    if interrupted:
        warnings.warn(f"tuning interrupted: the expert holds the best state so far (epoch {r.best_epoch})")
    return Expert(model, h, res)


def localize(model, expert, train, val, report=None, *, tolerance=1.0, ratio=None, method="actxgrad",
             heads=0.0, keep_ffn=False, max_examples=0, search_steps=8, max_ratio=0.95, per_layer=False,
             sweep=(), retune_epochs=0, retune_lr=1e-3, max_train=0, batch=32, scores=False, progress=None):
    """Scores every FFN neuron on train (method "actxgrad", "activation", "weight",
    "random", "ig"), then prunes: the largest ratio whose validation metric stays
    within tolerance points of the tuned model (binary search), or ratio=R.
    heads=R also prunes that share of attention heads. Returns the pruned Expert;
    its .result holds the search points, the sweep, and (scores=True) the
    (layers, intermediate_size) scores."""
    space = _label_space(expert)  # the expert's labels in its order: ids must agree with its head
    tr = _dataset(train, label_space=space, name=expert.task)
    va = _dataset(val, label_space=space, name=expert.task)
    rp = _dataset(report, label_space=space, name=expert.task)
    if scores and keep_ffn:
        raise ValueError("scores=True goes without keep_ffn=True (keeping the FFN scores only the heads)")
    o = lib.up_localize_opts_default()
    o.method = method.encode()
    o.tolerance, o.max_ratio, o.search_steps, o.per_layer = tolerance, max_ratio, int(search_steps), int(per_layer)
    o.ratio = -1.0 if ratio is None else float(ratio)
    o.heads, o.keep_ffn, o.max_examples, o.batch = float(heads), int(bool(keep_ffn)), int(max_examples), int(batch)
    o.retune_epochs, o.retune_lr, o.retune_head_lr, o.max_train = int(retune_epochs), retune_lr, retune_lr, int(max_train)
    sw = (C.c_double * max(1, len(sweep)))(*sweep)
    o.sweep, o.n_sweep = sw, len(sweep)
    sc = None
    if scores:
        c = model.config
        sc = np.empty((c["num_hidden_layers"], c["intermediate_size"]), dtype=np.float64)
        o.scores = sc.ctypes.data_as(C.POINTER(C.c_double))
    pg = _Progress(progress)
    pg.set(o)
    h, r = C.c_void_p(), _capi.LocalizeResult()
    st = lib.up_localize(model._h, expert._h, tr._h, va._h, rp._h if rp else None, C.byref(o), C.byref(h), C.byref(r))
    interrupted = pg.finish()
    if st == _ERR_INTERRUPTED or (interrupted and st == 0):
        if st == 0:
            lib.up_expert_free(h)
        raise KeyboardInterrupt
    _check(st, "localization failed")
    res = {"ratio": r.ratio, "full_val": r.full_val, "ffn_val": r.ffn_val, "expert_val": r.expert_val,
           "expert_report": _nan(r.expert_report), "attribution_seconds": r.attribution_seconds,
           "search": [{"ratio": r.point_ratio[i], "val": r.point_metric[i], "ok": bool(r.point_ok[i])}
                      for i in range(r.n_points)],
           "sweep": [{"ratio": r.sweep_ratio[i], "val": r.sweep_val[i], "report": _nan(r.sweep_report[i])}
                     for i in range(r.n_sweep)]}
    if sc is not None:
        res["scores"] = sc
    return Expert(model, h, res)


def evaluate(model, expert, full=None, test=None, *, timing=True, iters=9):
    """The expert against its full model (full=None: the expert with every neuron
    kept) on test: metrics of both, and with timing the median forward times at
    32 x 128 and 1 x 128 and the speed-ups."""
    if test is None:
        raise ValueError("evaluate needs test= (rows, a DataFrame, a path or a Dataset)")
    d = _dataset(test, label_space=_label_space(expert), name=expert.task)  # labels in the expert's order
    o = lib.up_eval_opts_default()
    o.timing, o.iters = int(bool(timing)), int(iters)
    r = _capi.EvalResult()
    _check(lib.up_evaluate(model._h, expert._h, full._h if full else None, d._h, C.byref(o), C.byref(r)),
           "evaluation failed")
    out = {"n": r.n, "metric": r.metric_name.decode(),
           "full": {"metric": r.metric[0], "accuracy": r.accuracy[0], "f1": r.f1[0], "matthews": r.matthews[0]},
           "expert": {"metric": r.metric[1], "accuracy": r.accuracy[1], "f1": r.f1[1], "matthews": r.matthews[1]},
           "timing": [{"batch": r.shape_B[k], "tokens": r.shape_T[k], "full_ms": r.ms[k][0], "expert_ms": r.ms[k][1],
                       "speedup": r.speedup[k]} for k in range(r.n_shapes)]}
    return out


class Hub:
    """Many experts over one base model, plugged by task name; thread-safe."""

    def __init__(self, model):
        h = C.c_void_p()
        _check(lib.up_hub_new(model._h, C.byref(h)), "hub")
        self._h, self.model = h, model

    def plug(self, path):
        name = C.create_string_buffer(32)
        _check(lib.up_hub_plug(self._h, _enc(path), name), f"cannot plug {path}")
        return name.value.decode()

    def unplug(self, task):
        _check(lib.up_hub_unplug(self._h, task.encode()), f"cannot unplug {task}")

    @property
    def tasks(self):
        names = (C.c_char * 32 * 256)()
        n = lib.up_hub_tasks(self._h, names, 256)
        return [names[i].value.decode() for i in range(min(n, 256))]

    def labels(self, task):
        """The label names of task's expert, in id order."""
        names = (C.c_char * 32 * 64)()
        n = lib.up_hub_labels(self._h, task.encode(), names, 64)
        if n < 0:
            _check(1, f"labels of {task}")
        return [names[i].value.decode() for i in range(min(n, 64))]

    def classify(self, task, texts):
        """The label of each text (or (text_a, text_b) pair) by the expert plugged for task."""
        n, a, b, keep = _texts(texts)
        ids = (C.c_int * max(n, 1))()
        _check(lib.up_hub_classify(self._h, task.encode(), n, a, b, ids, None), f"classify {task}")
        labels = self.labels(task)
        return [labels[i] for i in ids[:n]]

    def __del__(self):
        h = getattr(self, "_h", None)
        if h:
            lib.up_hub_free(h)
            self._h = None
