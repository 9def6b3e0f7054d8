/*
 * unplug.h: the public API of libunplug.
 *
 * libunplug loads a pretrained BERT-family encoder as Hugging Face stores it
 * (config.json, model.safetensors or sharded safetensors, vocab.txt), tokenizes
 * text exactly as BertTokenizer does, and runs the encoder on CPUs through one
 * GEMM interface (oneDNN bf16/fp32, or a plain-C reference).
 *
 * Every function returns an up_status; on failure up_errmsg() gives a message
 * naming the file, field or tensor, the expected and the found value. The
 * library never exits and never prints to stdout; it logs through a callback.
 *
 * Usage:
 *
 *     up_model *m = NULL;
 *     up_model_opts o = up_model_opts_default();
 *     if (up_model_load("models/unplug-mini", &o, &m) != UP_OK) {
 *         fprintf(stderr, "%s\n", up_errmsg());
 *         return 1;
 *     }
 *     up_encoding e = {0};
 *     up_tokenizer_encode(up_model_tokenizer(m), "a fine film", NULL, 128, &e);
 *     up_run *r = NULL;
 *     up_run_new(m, 1, 128, &r);
 *     up_batch b = { .B = 1, .T = e.n, .ids = e.ids, .type_ids = e.type_ids, .lens = &e.n };
 *     up_forward(r, &b);
 *     const float *cls = up_run_cls(r);          // (B, C)
 *     up_run_free(r); up_encoding_free(&e); up_model_free(m);
 */
#ifndef UNPLUG_H
#define UNPLUG_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define UP_VERSION "0.1.0"

/* ---- status ------------------------------------------------------------ */

typedef enum {
    UP_OK = 0,
    UP_ERR_IO,          /* a file could not be opened, read or mapped */
    UP_ERR_FORMAT,      /* a file's content is malformed */
    UP_ERR_INVALID,     /* an argument or a config value is out of range */
    UP_ERR_NOMEM,       /* an allocation failed or a size overflowed */
    UP_ERR_UNSUPPORTED, /* well-formed but not supported (dtype, activation) */
    UP_ERR_INTERNAL,    /* a backend failed */
} up_status;

/* Message of the last failure on this thread ("" if none). */
const char *up_errmsg(void);
const char *up_status_name(up_status s);

/* Log levels and the log callback; the default (fn NULL) writes messages up
 * to max_level (initially warnings) to stderr. */
enum { UP_LOG_ERROR = 0, UP_LOG_WARN = 1, UP_LOG_INFO = 2, UP_LOG_DEBUG = 3 };
typedef void (*up_log_fn)(int level, const char *msg, void *user);
void up_set_log(up_log_fn fn, void *user, int max_level);

/* ---- CPU and compute ---------------------------------------------------- */

typedef struct {
    int avx2, avx512f, avx512bw, avx512_bf16, amx_tile, amx_bf16;
} up_cpu_features;
up_cpu_features up_cpu_detect(void);

typedef enum { UP_PREC_AUTO = 0, UP_PREC_FP32, UP_PREC_BF16 } up_precision;
typedef enum { UP_BACKEND_AUTO = 0, UP_BACKEND_REF, UP_BACKEND_DNNL } up_backend;
const char *up_precision_name(up_precision p);
const char *up_backend_name(up_backend b);

/* ---- configuration (config.json) ----------------------------------------- */

typedef enum { UP_ACT_GELU = 0, UP_ACT_GELU_NEW, UP_ACT_RELU } up_act;

#define UP_MAX_LABELS 64
typedef struct {
    char model_type[32];          /* "bert" */
    int64_t vocab_size;
    int64_t hidden_size;          /* C */
    int64_t num_hidden_layers;    /* L */
    int64_t num_attention_heads;  /* NH */
    int64_t intermediate_size;    /* F */
    int64_t max_position_embeddings;
    int64_t type_vocab_size;
    float layer_norm_eps;
    up_act hidden_act;
    int64_t pad_token_id;
    int num_labels;               /* from id2label / num_labels, 0 if absent */
    char labels[UP_MAX_LABELS][32];
} up_config;

/* Parse config.json text (len bytes); path only names the file in messages. */
up_status up_config_parse(const char *path, const char *json, size_t len, up_config *out);
up_status up_config_load(const char *path, up_config *out);

/* ---- tokenizer (BertTokenizer) ------------------------------------------ */

typedef struct up_tokenizer up_tokenizer;

typedef struct {
    int lowercase;              /* -1: from tokenizer_config.json or the vocab, 0, 1 */
    int strip_accents;          /* -1: follows lowercase (as in HF), 0, 1 */
    int tokenize_chinese_chars; /* 1 (HF default) */
} up_tokenizer_opts;
up_tokenizer_opts up_tokenizer_opts_default(void);

/* Loads vocab.txt (one token per line, id = line number). */
up_status up_tokenizer_load(const char *vocab_path, const up_tokenizer_opts *opts,
                            up_tokenizer **out);
/* The same from a buffer; name only appears in messages. */
up_status up_tokenizer_from_buffer(const char *name, const char *buf, size_t len,
                                   const up_tokenizer_opts *opts, up_tokenizer **out);
void up_tokenizer_free(up_tokenizer *t);
int64_t up_tokenizer_vocab_size(const up_tokenizer *t);
int up_tokenizer_lowercase(const up_tokenizer *t);
/* id of a token, -1 if absent; token text of an id, NULL if out of range */
int32_t up_tokenizer_id(const up_tokenizer *t, const char *token);
const char *up_tokenizer_token(const up_tokenizer *t, int32_t id);

typedef struct {
    int32_t *ids;      /* (n) */
    int32_t *type_ids; /* (n) */
    int n, cap;
    int truncated;     /* number of word pieces dropped by truncation */
} up_encoding;

/* [CLS] a [SEP] (b [SEP]), longest-first truncation to max_len tokens.
 * Invalid UTF-8 bytes are dropped (as HF does with the U+FFFD it would get
 * from decoding with errors="replace"). b may be NULL. */
up_status up_tokenizer_encode(const up_tokenizer *t, const char *a, const char *b,
                              int max_len, up_encoding *enc);
/* Word pieces of one text, no special tokens, no truncation. */
up_status up_tokenizer_wordpieces(const up_tokenizer *t, const char *text, up_encoding *enc);
void up_encoding_free(up_encoding *enc);

/* ---- model -------------------------------------------------------------- */

typedef struct up_model up_model;

typedef struct {
    up_precision precision; /* AUTO: bf16 where the CPU has AVX512-BF16 or AMX */
    up_backend backend;     /* AUTO: oneDNN */
    int threads;            /* 0: all cores */
} up_model_opts;
up_model_opts up_model_opts_default(void);

/* dir holds config.json, model.safetensors (or an index + shards), vocab.txt. */
up_status up_model_load(const char *dir, const up_model_opts *opts, up_model **out);
void up_model_free(up_model *m);
const up_config *up_model_config(const up_model *m);
const up_tokenizer *up_model_tokenizer(const up_model *m);
up_precision up_model_precision(const up_model *m);
up_backend up_model_backend(const up_model *m);
int64_t up_model_param_count(const up_model *m);
int up_model_has_classifier(const up_model *m);
/* "F32", "F16" or "BF16" summary of the stored dtypes, e.g. "F32 (204 tensors)" */
const char *up_model_dtypes(const up_model *m);
int up_model_num_files(const up_model *m);

/* Builds a model with random weights (normal, std 0.02) from a config, for
 * benchmarks of any shape; no tokenizer. */
up_status up_model_random(const up_config *cfg, const up_model_opts *opts, uint64_t seed,
                          up_model **out);

/* ---- running ------------------------------------------------------------ */

typedef struct {
    int B, T;                 /* batch rows and the padded length */
    const int32_t *ids;       /* (B,T) */
    const int32_t *type_ids;  /* (B,T) or NULL for zeros */
    const int32_t *lens;      /* (B) real lengths; positions >= len are padding */
    /* Soft prompt (prompt tuning): n_prompt vectors (n_prompt, C) that take
     * the place of the word embeddings at positions 1..n_prompt of every row
     * (right after [CLS]); position and token-type embeddings are added as
     * for any token. The ids there are placeholders. NULL / 0: none.
     * Deep prompts: with prompt_layers K > 1 the prompt holds (K,n_prompt,C);
     * slice 0 enters at the embeddings as above, and slice l (1 <= l < K)
     * replaces the hidden states at positions 1..n_prompt of layer l's input
     * (K <= the number of layers). 0 or 1: the prompt enters only once. */
    const float *prompt;
    int n_prompt;
    int prompt_layers;
} up_batch;

/* Per-request state sized for at most max_B x max_T tokens; all buffers are
 * allocated here, none during up_forward. */
typedef struct up_run up_run;
up_status up_run_new(const up_model *m, int max_B, int max_T, up_run **out);
void up_run_free(up_run *r);
/* Keep every layer's hidden states and FFN activations (costs memory). */
void up_run_keep_all(up_run *r, int keep);

up_status up_forward(up_run *r, const up_batch *b);

/* Outputs of the last up_forward; B and T as in that batch. */
const float *up_run_cls(const up_run *r);      /* (B,C) final-layer [CLS] (a task view with mean
                                                  pooling: the mean over each row's tokens) */
const float *up_run_pooled(const up_run *r);   /* (B,C) tanh pooler */
const float *up_run_logits(const up_run *r);   /* (B,num_labels) or NULL */
/* Sentence embeddings of the last up_forward, out is (B,C): UP_POOL_CLS the
 * final [CLS] row, UP_POOL_MEAN the mean of each row's final hidden states over
 * its lens[b] tokens ([CLS] and [SEP] included: sentence-transformers' mean
 * pooling; soft prompt rows too, as a task's mean-pooled head reads them);
 * normalize != 0 scales each row to L2 norm 1. Valid after a forward that
 * returned UP_OK. */
typedef enum { UP_POOL_CLS = 0, UP_POOL_MEAN = 1 } up_pool;
up_status up_run_embed(const up_run *r, up_pool pool, int normalize, float *out);
/* layer 0 = embeddings output, layer l = output of encoder layer l (1..L);
 * needs keep_all for l < L. (B,T,C) */
const float *up_run_hidden(const up_run *r, int layer);
/* FFN intermediate activation after the activation function of encoder layer
 * l (0..L-1), (B,T,F); needs keep_all. */
const float *up_run_ffn_act(const up_run *r, int layer);

#ifdef __cplusplus
}
#endif
#endif
