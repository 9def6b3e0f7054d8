"""ctypes declarations of include/unplug.h: the structs and functions the
Python package calls. Layouts mirror the header field by field; a test
(python/tests) checks the library's version and every call's behaviour."""
import ctypes as C
import os

c_int, c_long, c_double, c_float, c_size_t, c_char_p, c_void_p = (
    C.c_int, C.c_long, C.c_double, C.c_float, C.c_size_t, C.c_char_p, C.c_void_p)
c_uint64, c_int64, c_int32 = C.c_uint64, C.c_int64, C.c_int32
PP = C.POINTER(c_char_p)

UP_MAX_LABELS = 64
UP_MAX_POINTS = 64


class Config(C.Structure):
    _fields_ = [("model_type", C.c_char * 32), ("vocab_size", c_int64), ("hidden_size", c_int64),
                ("num_hidden_layers", c_int64), ("num_attention_heads", c_int64), ("intermediate_size", c_int64),
                ("max_position_embeddings", c_int64), ("type_vocab_size", c_int64), ("layer_norm_eps", c_float),
                ("hidden_act", c_int), ("pad_token_id", c_int64), ("num_labels", c_int),
                ("labels", (C.c_char * 32) * UP_MAX_LABELS)]


class ModelOpts(C.Structure):
    _fields_ = [("precision", c_int), ("backend", c_int), ("threads", c_int)]


class Encoding(C.Structure):
    _fields_ = [("ids", C.POINTER(c_int32)), ("type_ids", C.POINTER(c_int32)), ("n", c_int), ("cap", c_int),
                ("truncated", c_int)]


class EmbedOpts(C.Structure):
    _fields_ = [("pool", c_int), ("normalize", c_int), ("max_len", c_int), ("batch", c_int)]


class Progress(C.Structure):
    _fields_ = [("stage", c_int), ("done", c_long), ("total", c_long), ("epoch", c_int), ("epochs", c_int),
                ("loss", c_double), ("rate", c_double), ("ratio", c_double), ("metric", c_double),
                ("report", c_double), ("before", c_double), ("ok", c_int)]


PROGRESS_FN = C.CFUNCTYPE(None, C.POINTER(Progress), c_void_p)
STAGES = ["tune", "attribution", "sweep", "search", "retune", "heads"]


class TuneOpts(C.Structure):
    _fields_ = [("task", c_char_p), ("prompts", c_int), ("deep", c_int), ("pool", c_int), ("max_len", c_int),
                ("batch", c_int), ("epochs", c_int), ("patience", c_int), ("lr", c_float), ("head_lr", c_float),
                ("seed", c_uint64), ("max_train", c_size_t), ("progress", PROGRESS_FN), ("progress_user", c_void_p),
                ("interrupt", C.POINTER(c_int))]


class TuneResult(C.Structure):
    _fields_ = [("metric_name", C.c_char * 16), ("val", c_double), ("report", c_double), ("majority", c_double),
                ("best_epoch", c_int), ("epochs", c_int), ("seconds", c_double), ("examples_per_s", c_double)]


class LocalizeOpts(C.Structure):
    _fields_ = [("method", c_char_p), ("agg_max", c_int), ("keep_sign", c_int), ("ig_steps", c_int),
                ("max_examples", c_size_t), ("ratio", c_double), ("tolerance", c_double), ("max_ratio", c_double),
                ("search_steps", c_int), ("per_layer", c_int), ("sweep", C.POINTER(c_double)), ("n_sweep", c_int),
                ("retune_epochs", c_int), ("retune_lr", c_float), ("retune_head_lr", c_float),
                ("max_train", c_size_t), ("patience", c_int), ("heads", c_double), ("keep_ffn", c_int),
                ("batch", c_int), ("scores", C.POINTER(c_double)), ("progress", PROGRESS_FN),
                ("progress_user", c_void_p), ("interrupt", C.POINTER(c_int))]


class LocalizeResult(C.Structure):
    _fields_ = [("full_val", c_double), ("ffn_val", c_double), ("expert_val", c_double), ("expert_report", c_double),
                ("ratio", c_double), ("attribution_seconds", c_double), ("n_points", c_int),
                ("point_ratio", c_double * UP_MAX_POINTS), ("point_metric", c_double * UP_MAX_POINTS),
                ("point_ok", c_int * UP_MAX_POINTS), ("n_sweep", c_int), ("sweep_ratio", c_double * UP_MAX_POINTS),
                ("sweep_val", c_double * UP_MAX_POINTS), ("sweep_report", c_double * UP_MAX_POINTS)]


class EvalOpts(C.Structure):
    _fields_ = [("timing", c_int), ("iters", c_int), ("batch", c_int)]


class EvalResult(C.Structure):
    _fields_ = [("n", c_size_t), ("metric_name", C.c_char * 16), ("metric", c_double * 2), ("accuracy", c_double * 2),
                ("f1", c_double * 2), ("matthews", c_double * 2), ("n_shapes", c_int), ("shape_B", c_int * 2),
                ("shape_T", c_int * 2), ("ms", (c_double * 2) * 2), ("speedup", c_double * 2)]


def _find_library():
    """UNPLUG_LIBRARY, else the libunplug.so installed beside this file (pip install .)."""
    env = os.environ.get("UNPLUG_LIBRARY")
    if env:
        return env
    here = os.path.dirname(os.path.abspath(__file__))
    for name in ("libunplug.so", "libunplug.so.0"):
        p = os.path.join(here, name)
        if os.path.exists(p):
            return p
    raise ImportError("unplug: libunplug.so is not installed beside the package; install it with `pip install .` "
                      "at the repository root, or point UNPLUG_LIBRARY at a built libunplug.so")


lib = C.CDLL(_find_library())

_sigs = {
    "up_version": (c_char_p, []),
    "up_errmsg": (c_char_p, []),
    "up_free": (None, [c_void_p]),
    "up_set_log": (None, [c_void_p, c_void_p, c_int]),
    "up_model_opts_default": (ModelOpts, []),
    "up_model_load": (c_int, [c_char_p, C.POINTER(ModelOpts), C.POINTER(c_void_p)]),
    "up_model_free": (None, [c_void_p]),
    "up_model_config": (C.POINTER(Config), [c_void_p]),
    "up_model_precision": (c_int, [c_void_p]),
    "up_precision_name": (c_char_p, [c_int]),
    "up_model_tokenize": (c_int, [c_void_p, c_size_t, PP, PP, c_int, C.POINTER(Encoding)]),
    "up_encoding_free": (None, [C.POINTER(Encoding)]),
    "up_embed_opts_default": (EmbedOpts, []),
    "up_model_embed": (c_int, [c_void_p, c_size_t, PP, PP, C.POINTER(EmbedOpts), C.POINTER(c_float)]),
    "up_dataset_load": (c_int, [c_char_p, c_char_p, c_void_p, C.POINTER(c_void_p)]),
    "up_dataset_from_rows": (c_int, [c_char_p, c_size_t, PP, PP, PP, c_void_p, C.POINTER(c_void_p)]),
    "up_dataset_task": (c_int, [c_char_p, c_char_p, c_uint64, C.POINTER(c_void_p), C.POINTER(c_void_p),
                                C.POINTER(c_void_p)]),
    "up_dataset_size": (c_size_t, [c_void_p]),
    "up_dataset_name": (c_char_p, [c_void_p]),
    "up_dataset_is_pair": (c_int, [c_void_p]),
    "up_dataset_n_labels": (c_int, [c_void_p]),
    "up_dataset_label": (c_char_p, [c_void_p, c_int]),
    "up_dataset_free": (None, [c_void_p]),
    "up_expert_load": (c_int, [c_void_p, c_char_p, C.POINTER(c_void_p)]),
    "up_expert_save": (c_int, [c_void_p, c_char_p]),
    "up_expert_classify": (c_int, [c_void_p, c_size_t, PP, PP, C.POINTER(c_int), C.POINTER(c_float)]),
    "up_expert_n_labels": (c_int, [c_void_p]),
    "up_expert_label": (c_char_p, [c_void_p, c_int]),
    "up_expert_task": (c_char_p, [c_void_p]),
    "up_expert_info_json": (c_int, [c_void_p, C.POINTER(c_void_p)]),
    "up_expert_free": (None, [c_void_p]),
    "up_tune_opts_default": (TuneOpts, []),
    "up_tune": (c_int, [c_void_p, c_void_p, c_void_p, c_void_p, C.POINTER(TuneOpts), C.POINTER(c_void_p),
                        C.POINTER(TuneResult)]),
    "up_localize_opts_default": (LocalizeOpts, []),
    "up_localize": (c_int, [c_void_p, c_void_p, c_void_p, c_void_p, c_void_p, C.POINTER(LocalizeOpts),
                            C.POINTER(c_void_p), C.POINTER(LocalizeResult)]),
    "up_eval_opts_default": (EvalOpts, []),
    "up_evaluate": (c_int, [c_void_p, c_void_p, c_void_p, c_void_p, C.POINTER(EvalOpts), C.POINTER(EvalResult)]),
    "up_hub_new": (c_int, [c_void_p, C.POINTER(c_void_p)]),
    "up_hub_free": (None, [c_void_p]),
    "up_hub_plug": (c_int, [c_void_p, c_char_p, c_char_p]),
    "up_hub_unplug": (c_int, [c_void_p, c_char_p]),
    "up_hub_classify": (c_int, [c_void_p, c_char_p, c_size_t, PP, PP, C.POINTER(c_int), C.POINTER(c_float)]),
    "up_hub_tasks": (c_int, [c_void_p, c_void_p, c_int]),
    "up_hub_labels": (c_int, [c_void_p, c_char_p, c_void_p, c_int]),
}
for _name, (_res, _args) in _sigs.items():
    _f = getattr(lib, _name)
    _f.restype = _res
    _f.argtypes = _args
