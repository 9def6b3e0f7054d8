#!/usr/bin/python3
"""make_seeds.py: writes the seed corpora of the io fuzzers (each file < 20 KB).

    /usr/bin/python3 fuzz/make_seeds.py      # from the repository root

fuzz/corpus/safetensors/  small safetensors images: good ones of every loadable
                          dtype, padded headers, gaps, sharded-style names, and
                          a few broken ones next to the edge cases.
fuzz/corpus/config/       config.json texts (BertConfig, minimal, odd fields).
fuzz/corpus/index/        model.safetensors.index.json texts.
Only the standard library is used; output is deterministic.
"""
import json
import os
import struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
SIZES = {"F32": 4, "F16": 2, "BF16": 2, "F64": 8, "I64": 8, "I32": 4, "I8": 1, "U8": 1, "BOOL": 1}


def image(tensors, metadata=None, pad=0, gap=0, trailing=b""):
    """tensors: [(name, dtype, shape, data bytes)] laid out in order."""
    header, blob = {}, b""
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape, data in tensors:
        blob += b"\0" * gap
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(blob), len(blob) + len(data)]}
        blob += data
    h = json.dumps(header, separators=(",", ":")).encode() + b" " * pad
    return struct.pack("<Q", len(h)) + h + blob + trailing


def f16(values):
    return struct.pack("<%de" % len(values), *values)


def bf16(values):
    return b"".join(struct.pack("<I", struct.unpack("<I", struct.pack("<f", v))[0])[2:] for v in values)


def f32(values):
    return struct.pack("<%df" % len(values), *values)


def write(sub, name, data):
    d = os.path.join(ROOT, sub)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    assert len(data) < 20000, name
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def safetensors_seeds():
    inf, nan = float("inf"), float("nan")
    write("safetensors", "good_mixed.safetensors", image([
        ("embeddings.word_embeddings.weight", "F32", [4, 3], f32([0.5, -1, 2, 3, 1e-40, -0.0, inf, 7, 8, 9, 10, 11])),
        ("encoder.layer.0.attention.self.query.weight", "F16", [2, 4],
         f16([0, -0.0, 5.96e-08, 6.1e-05, 1, -2, 65504, inf])),
        ("encoder.layer.0.output.dense.bias", "BF16", [3], bf16([1.0, -3.140625, nan])),
        ("scalar", "F32", [], f32([42])),
        ("empty", "F32", [0, 4], b""),
    ], metadata={"format": "pt"}))
    write("safetensors", "padded.safetensors", image([("w", "F16", [3], f16([1, 2, 3]))], pad=13))
    write("safetensors", "gaps.safetensors", image([("a", "F32", [2], f32([1, 2])), ("b", "BF16", [2], bf16([3, 4]))],
                                                   gap=3, trailing=b"\0\0"))
    write("safetensors", "other_dtypes.safetensors", image([
        ("ids", "I64", [2], struct.pack("<2q", 1, 2)), ("mask", "BOOL", [3], b"\1\0\1"),
        ("d", "F64", [1], struct.pack("<d", 1.5)), ("q", "I8", [4], b"\1\2\3\4")]))
    write("safetensors", "empty_header.safetensors", image([]))
    write("safetensors", "metadata_odd.safetensors", image([("x", "F32", [1], f32([1]))],
                                                           metadata={"format": "pt", "n": 3, "nested": {"a": [1]}}))
    big = [i / 64.0 for i in range(1024)]
    write("safetensors", "chunks.safetensors", image([("big", "F16", [32, 32], f16(big)),
                                                      ("bigf", "F32", [300], f32(big[:300]))]))
    write("safetensors", "rank8.safetensors", image([("r", "F32", [1, 1, 1, 1, 1, 1, 2, 1], f32([1, 2]))]))
    # near misses: each is one field away from a good file
    good = image([("w", "F32", [2], f32([1, 2]))])
    write("safetensors", "truncated.safetensors", good[:-3])
    write("safetensors", "zero_header_len.safetensors", struct.pack("<Q", 0) + b"{}")
    h = b'{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}'
    write("safetensors", "overlap.safetensors", struct.pack("<Q", len(h)) + h + b"\0" * 8)
    h = b'{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}}'
    write("safetensors", "overflow.safetensors", struct.pack("<Q", len(h)) + h + b"\0" * 8)
    h = b'{"a":{"dtype":"X9","shape":[1],"data_offsets":[0,4]},"a":{}}'
    write("safetensors", "dup_unknown.safetensors", struct.pack("<Q", len(h)) + h + b"\0" * 4)


def config_seeds():
    bert = {
        "architectures": ["BertForSequenceClassification"], "attention_probs_dropout_prob": 0.1,
        "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "hidden_size": 768,
        "id2label": {"0": "NEGATIVE", "1": "POSITIVE"}, "label2id": {"NEGATIVE": 0, "POSITIVE": 1},
        "initializer_range": 0.02, "intermediate_size": 3072, "layer_norm_eps": 1e-12,
        "max_position_embeddings": 512, "model_type": "bert", "num_attention_heads": 12,
        "num_hidden_layers": 12, "pad_token_id": 0, "position_embedding_type": "absolute",
        "transformers_version": "4.40.0", "type_vocab_size": 2, "use_cache": True, "vocab_size": 30522,
    }
    write("config", "bert_base.json", json.dumps(bert, indent=2))
    write("config", "minimal.json", "{}")
    write("config", "mini.json", json.dumps({"model_type": "bert", "hidden_size": 128.0, "num_hidden_layers": 2,
                                             "num_attention_heads": 2, "intermediate_size": 512, "num_labels": 3,
                                             "hidden_act": "gelu_new", "layer_norm_eps": 1e-5, "pad_token_id": None}))
    write("config", "bad_types.json", '{"hidden_size": "768", "layer_norm_eps": 0, "hidden_act": "swish",'
                                      ' "id2label": {"00": "x"}, "model_type": "gpt2"}')
    write("config", "labels.json", json.dumps({"id2label": {str(i): "label_%d" % i for i in range(10)},
                                               "hidden_act": "relu", "architectures": ["BertModel"]}))


def index_seeds():
    wm = {"embeddings.word_embeddings.weight": "model-00001-of-00002.safetensors",
          "encoder.layer.0.output.dense.bias": "model-00002-of-00002.safetensors",
          "pooler.dense.weight": "model-00002-of-00002.safetensors"}
    write("index", "two_shards.json", json.dumps({"metadata": {"total_size": 1234}, "weight_map": wm}, indent=2))
    write("index", "one.json", '{"weight_map": {"a": "x.safetensors"}}')
    write("index", "escape.json", '{"weight_map": {"a": "../x.safetensors", "b": "/etc/passwd"}}')
    write("index", "bad.json", '{"weight_map": {"a": 3, "b": ""}, "weight_map2": []}')


if __name__ == "__main__":
    safetensors_seeds()
    config_seeds()
    index_seeds()
