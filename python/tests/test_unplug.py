"""The Python package over libunplug: embed against the CLI (and against
transformers when the real model and transformers are present), tune ->
localize -> classify on a toy task, save/load, evaluate, the hub, errors as
exceptions, and two threads sharing one model."""
import json
import os
import random
import subprocess
import sys
import threading

import numpy as np
import pytest

import unplug

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TINY = os.path.join(ROOT, "tests", "data", "models", "bert-f32-gelu")
MINI = os.path.join(ROOT, "models", "unplug-mini")
REAL = os.path.join(ROOT, "models", "all-minilm-l6-v2")
CLI = os.environ.get("UP_CLI", os.path.join(ROOT, "build", "unplug"))

TEXTS = ["a fine film", "the story was not good and the act was bad", "Héllo, WORLD! 12.5%",
         "what a waste of time", "unaffable"]


def toy_rows(n, seed):
    """scripts/toy-task.py's task: filler words around one polar word that decides the label."""
    r = random.Random(seed)
    pos, neg = ["good", "great", "fine"], ["bad", "not good", "unable"]
    fill = ["the film", "this movie", "the story", "that play", "it", "the act", "was", "is", "very", "and"]
    rows = []
    for _ in range(n):
        y = r.randint(0, 1)
        w = [r.choice(fill) for _ in range(r.randint(3, 8))]
        w.insert(r.randint(0, len(w)), r.choice(pos if y else neg))
        rows.append((" ".join(w), ["negative", "positive"][y]))
    return rows


@pytest.fixture(scope="module")
def tiny():
    return unplug.Model(TINY, precision="fp32")


@pytest.fixture(scope="module")
def tuned(tiny):
    return unplug.tune(tiny, toy_rows(800, 1), toy_rows(200, 2), toy_rows(200, 3), prompts=4, max_len=32,
                       epochs=4, batch=16, lr=1e-2, head_lr=1e-2)


def test_version():
    assert unplug.version() == "0.1.0"


def test_embed_matches_cli(tiny):
    if not os.access(CLI, os.X_OK):
        pytest.skip(f"no CLI at {CLI} (build first, or set UP_CLI)")
    for pooling in ("cls", "mean"):
        out = subprocess.run([CLI, "embed", "--model", TINY, "--precision", "fp32", "--pool", pooling, "--normalize"],
                             input="\n".join(TEXTS) + "\n", capture_output=True, text=True, check=True).stdout
        cli = np.array([json.loads(line)["embedding"] for line in out.splitlines()], dtype=np.float32)
        py = tiny.embed(TEXTS, pooling=pooling, normalize=True)
        assert py.shape == cli.shape == (len(TEXTS), tiny.config["hidden_size"])
        assert np.abs(py - cli).max() < 1e-5


def test_embed_batching_and_pairs(tiny):
    alone = np.stack([tiny.embed([t], pooling="mean")[0] for t in TEXTS])
    batched = tiny.embed(TEXTS, pooling="mean", batch=2)
    assert np.abs(alone - batched).max() < 1e-5
    pairs = tiny.embed([("is it good", "yes it is")] * 3)
    assert pairs.shape == (3, tiny.config["hidden_size"]) and np.isfinite(pairs).all()
    assert tiny.embed([]).shape == (0, tiny.config["hidden_size"])


def test_tokenize(tiny):
    ids = tiny.tokenize(["a fine film", "unaffable"])
    assert ids[0][0] == ids[1][0] and ids[0][-1] == ids[1][-1]  # [CLS] ... [SEP]
    assert len(tiny.tokenize(["word " * 100], max_len=16)[0]) == 16


def test_tune_localize_classify(tiny, tuned):
    assert tuned.result["val"] > tuned.result["majority"] + 10
    assert tuned.task == "rows" and sorted(tuned.labels) == ["negative", "positive"]
    events = []
    pr = unplug.localize(tiny, tuned, toy_rows(800, 1), toy_rows(200, 2), toy_rows(200, 3), tolerance=1.0,
                         search_steps=4, sweep=(0.3, 0.6), scores=True, progress=events.append)
    info = pr.info
    assert info["method"] == "actxgrad" and 0 < info["ratio"] < 1
    assert info["kept_ffn"] < info["total_ffn"] and len(info["kept_ffn_per_layer"]) == tiny.config["num_hidden_layers"]
    res = pr.result
    assert len(res["search"]) == 4 and len(res["sweep"]) == 2
    assert res["expert_val"] >= res["full_val"] - 1.0
    assert res["scores"].shape == (tiny.config["num_hidden_layers"], tiny.config["intermediate_size"])
    stages = {e["stage"] for e in events}
    assert {"attribution", "sweep", "search"} <= stages
    texts = [t for t, _ in toy_rows(50, 4)]
    labels = pr.classify(texts)
    proba = pr.predict_proba(texts)
    assert proba.shape == (50, 2) and np.allclose(proba.sum(1), 1, atol=1e-5)
    assert labels == [pr.labels[i] for i in proba.argmax(1)]
    gold = [y for _, y in toy_rows(50, 4)]
    assert sum(a == b for a, b in zip(labels, gold)) >= 28  # the tiny random model tunes to about 65%


def test_save_load_same_predictions(tiny, tuned, tmp_path):
    pr = unplug.localize(tiny, tuned, toy_rows(400, 1), toy_rows(200, 2), ratio=0.5)
    path = tmp_path / "toy.expert"
    pr.save(path)
    back = unplug.Expert.load(tiny, path)
    texts = [t for t, _ in toy_rows(100, 5)]
    assert back.classify(texts) == pr.classify(texts)
    assert np.array_equal(back.predict_proba(texts), pr.predict_proba(texts))
    assert back.info["kept_ffn"] == pr.info["kept_ffn"] == pr.info["total_ffn"] // 2
    bare = unplug.Expert.load(None, path)  # info without the base model
    assert bare.info["ratio"] == pytest.approx(0.5)
    with pytest.raises(unplug.Error, match="without its base"):
        bare.classify(["a fine film"])


def test_evaluate(tiny, tuned):
    pr = unplug.localize(tiny, tuned, toy_rows(400, 1), toy_rows(200, 2), ratio=0.5)
    r = unplug.evaluate(tiny, pr, full=tuned, test=toy_rows(200, 3), iters=3)
    assert r["n"] == 200 and r["metric"] == "accuracy"
    assert r["full"]["accuracy"] == pytest.approx(tuned.result["report"], abs=1e-6)
    assert [t["batch"] for t in r["timing"]] == [32, 1] and all(t["speedup"] > 0 for t in r["timing"])


def test_int8_expert(tiny, tuned, tmp_path):
    """An expert saved from fp32 and loaded on the int8 model (quantized at load) labels as fp32 does,
    and int8 refuses to tune."""
    try:
        q8 = unplug.Model(TINY, precision="int8")
    except unplug.Error as e:
        assert "need VNNI or AMX" in str(e)
        pytest.skip(f"int8 here: {e}")
    assert q8.precision == "int8"
    pr = unplug.localize(tiny, tuned, toy_rows(400, 1), toy_rows(200, 2), ratio=0.5)
    path = tmp_path / "toy.expert"
    pr.save(path)
    back = unplug.Expert.load(q8, path)
    texts = [t for t, _ in toy_rows(100, 5)]
    same = sum(a == b for a, b in zip(back.classify(texts), pr.classify(texts)))
    assert same >= 95, same
    p8, p32 = back.predict_proba(texts), pr.predict_proba(texts)
    assert 0 < np.abs(p8 - p32).max() < 0.1
    with pytest.raises(unplug.Error, match="int8 is an inference precision"):
        unplug.tune(q8, toy_rows(50, 1), toy_rows(20, 2), epochs=1)


def test_hub(tiny, tuned, tmp_path):
    path = tmp_path / "toy.expert"
    tuned.save(path)
    hub = unplug.Hub(tiny)
    assert hub.plug(path) == "rows" and hub.tasks == ["rows"]
    texts = [t for t, _ in toy_rows(20, 6)]
    assert hub.classify("rows", texts) == tuned.classify(texts)
    assert hub.labels("rows") == tuned.labels
    with pytest.raises(unplug.Error, match="no expert plugged for task 'sst2'"):
        hub.classify("sst2", texts)
    hub.unplug("rows")
    assert hub.tasks == []


def test_rows_formats(tiny, tmp_path):
    train = tmp_path / "train.tsv"
    train.write_text("text\tlabel\n" + "".join(f"{t}\t{y}\n" for t, y in toy_rows(100, 7)))
    d = unplug.Dataset.load(train)
    assert len(d) == 100 and d.labels == sorted(set(y for _, y in toy_rows(100, 7)), key=[y for _, y in toy_rows(100, 7)].index)
    pairs = unplug.Dataset.from_rows([("is it", "yes", "same"), ("is it", "no", "different")])
    assert pairs.pair and pairs.labels == ["same", "different"]
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"text": ["good", "bad"], "label": ["positive", "negative"]})
    assert len(unplug.Dataset.from_rows(df)) == 2


def test_errors_are_exceptions(tiny, tuned):
    with pytest.raises(unplug.Error, match="no config.json"):
        unplug.Model("/nonexistent")
    with pytest.raises(ValueError):
        unplug.Model(TINY, precision="fp16")
    with pytest.raises(unplug.Error, match="unknown label 'neutral'"):
        unplug.tune(tiny, toy_rows(50, 1), [("a fine film", "neutral")])
    with pytest.raises(unplug.Error, match="empty text"):
        unplug.Dataset.from_rows([("   ", "positive")])
    with pytest.raises(unplug.Error, match="magic"):
        unplug.localize(tiny, tuned, toy_rows(50, 1), toy_rows(50, 2), method="magic")
    with pytest.raises(unplug.Error, match="max_len 100000"):
        tiny.embed(["a"], max_len=100000)
    with pytest.raises(unplug.Error, match="no such file|cannot open|No such"):
        unplug.Dataset.load("/nonexistent.tsv")
    with pytest.raises(TypeError):
        tiny.embed(["a", ("b", "c")])


def test_two_threads_share_a_model(tiny):
    texts = [t for t, _ in toy_rows(64, 8)]
    want = tiny.embed(texts, pooling="mean")
    got, errors = [None, None], []

    def run(k):
        try:
            for _ in range(3):
                got[k] = tiny.embed(texts, pooling="mean")
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    th = [threading.Thread(target=run, args=(k,)) for k in range(2)]
    for t in th:
        t.start()
    for t in th:
        t.join()
    assert not errors
    for g in got:
        assert np.abs(g - want).max() < 1e-5


def test_real_model_embed_equals_transformers():
    if not os.path.exists(os.path.join(REAL, "model.safetensors")):
        pytest.skip(f"{REAL} absent (make model)")
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    tok = transformers.AutoTokenizer.from_pretrained(REAL)
    ref = transformers.AutoModel.from_pretrained(REAL).eval()
    with torch.no_grad():
        b = tok(TEXTS, padding=True, truncation=True, max_length=256, return_tensors="pt")
        h = ref(**b).last_hidden_state
        mask = b["attention_mask"].unsqueeze(-1).float()
        want = torch.nn.functional.normalize((h * mask).sum(1) / mask.sum(1), dim=1).numpy()
    m = unplug.Model(REAL, precision="fp32")
    got = m.embed(TEXTS, pooling="mean", normalize=True, max_len=256)
    assert np.abs(got - want).max() < 1e-4
    assert m.tokenize(TEXTS) == [list(x) for x in tok(TEXTS)["input_ids"]]


def test_readme_quickstart(tmp_path):
    """examples/quickstart.py, the README's Python example, runs as the README says (from the repository root)."""
    os.symlink(os.path.join(ROOT, "models"), tmp_path / "models")
    out = subprocess.run([sys.executable, os.path.join(ROOT, "examples", "quickstart.py")], cwd=tmp_path,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "neurons kept" in out.stdout and "['negative', 'positive']" in out.stdout
    assert (tmp_path / "sentiment.expert").exists()
