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

/* Every function of the API is UP_API: the shared library exports these and
 * nothing else. */
#if defined(__GNUC__) && !defined(UP_STATIC_ONLY)
#define UP_API __attribute__((visibility("default")))
#else
#define UP_API
#endif

/* The library's version, "0.1.0" (UP_VERSION of the build). */
UP_API const char *up_version(void);

/* ---- status ------------------------------------------------------------ */

typedef enum {
    UP_OK = 0,
    UP_ERR_IO,          /* a file could not be opened, read or mapped */
    UP_ERR_FORMAT,      /* a file's content is malformed */
    UP_ERR_INVALID,     /* an argument or a config value is out of range */
    UP_ERR_NOMEM,       /* an allocation failed or a size overflowed */
    UP_ERR_UNSUPPORTED, /* well-formed but not supported (dtype, activation) */
    UP_ERR_INTERNAL,    /* a backend failed */
    UP_ERR_INTERRUPTED, /* stopped by the caller's interrupt flag (up_localize; up_tune keeps its best state instead) */
} up_status;

/* Message of the last failure on this thread ("" if none). */
UP_API const char *up_errmsg(void);
UP_API const char *up_status_name(up_status s);

/* Log levels and the log callback; the default (fn NULL) writes messages up
 * to max_level (initially warnings) to stderr. */
enum { UP_LOG_ERROR = 0, UP_LOG_WARN = 1, UP_LOG_INFO = 2, UP_LOG_DEBUG = 3 };
typedef void (*up_log_fn)(int level, const char *msg, void *user);
UP_API void up_set_log(up_log_fn fn, void *user, int max_level);

/* ---- CPU and compute ---------------------------------------------------- */

typedef struct {
    int avx2, avx512f, avx512bw, avx512_bf16, amx_tile, amx_bf16;
} up_cpu_features;
UP_API up_cpu_features up_cpu_detect(void);
/* The instruction set the matrix products dispatch to on this CPU, chosen at
 * run time: "amx" (AMX tiles, bf16 and int8), "avx512_bf16", "avx512_vnni",
 * "avx512", "avx2_vnni", "avx2" (oneDNN's effective ISA, which
 * ONEDNN_MAX_CPU_ISA can lower), or "reference" in a build without oneDNN. */
UP_API const char *up_kernel_isa(void);

/* INT8 is inference only: the encoder's linear layers hold symmetric int8
 * weights per output channel, activations are quantized per token at run
 * time; tune, localize and pretrain refuse it. */
typedef enum { UP_PREC_AUTO = 0, UP_PREC_FP32, UP_PREC_BF16, UP_PREC_INT8 } up_precision;
typedef enum { UP_BACKEND_AUTO = 0, UP_BACKEND_REF, UP_BACKEND_DNNL } up_backend;
UP_API const char *up_precision_name(up_precision p);
UP_API const char *up_backend_name(up_backend b);

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
UP_API up_status up_config_parse(const char *path, const char *json, size_t len, up_config *out);
UP_API up_status up_config_load(const char *path, up_config *out);

/* ---- tokenizer (BertTokenizer) ------------------------------------------ */

typedef struct up_tokenizer up_tokenizer;

typedef struct {
    int lowercase;              /* -1: from tokenizer_config.json or the vocab, 0, 1 */
    int strip_accents;          /* -1: follows lowercase (as in HF), 0, 1 */
    int tokenize_chinese_chars; /* 1 (HF default) */
} up_tokenizer_opts;
UP_API up_tokenizer_opts up_tokenizer_opts_default(void);

/* Loads vocab.txt (one token per line, id = line number). */
UP_API up_status up_tokenizer_load(const char *vocab_path, const up_tokenizer_opts *opts,
                            up_tokenizer **out);
/* The same from a buffer; name only appears in messages. */
UP_API up_status up_tokenizer_from_buffer(const char *name, const char *buf, size_t len,
                                   const up_tokenizer_opts *opts, up_tokenizer **out);
UP_API void up_tokenizer_free(up_tokenizer *t);
UP_API int64_t up_tokenizer_vocab_size(const up_tokenizer *t);
UP_API int up_tokenizer_lowercase(const up_tokenizer *t);
/* id of a token, -1 if absent; token text of an id, NULL if out of range */
UP_API int32_t up_tokenizer_id(const up_tokenizer *t, const char *token);
UP_API const char *up_tokenizer_token(const up_tokenizer *t, int32_t id);

typedef struct {
    int32_t *ids;      /* (n) */
    int32_t *type_ids; /* (n) */
    int n, cap;
    int truncated;     /* number of word pieces dropped by truncation */
} up_encoding;

/* [CLS] a [SEP] (b [SEP]), longest-first truncation to max_len tokens.
 * Invalid UTF-8 bytes are dropped (as HF does with the U+FFFD it would get
 * from decoding with errors="replace"). b may be NULL. */
UP_API up_status up_tokenizer_encode(const up_tokenizer *t, const char *a, const char *b,
                              int max_len, up_encoding *enc);
/* Word pieces of one text, no special tokens, no truncation. */
UP_API up_status up_tokenizer_wordpieces(const up_tokenizer *t, const char *text, up_encoding *enc);
UP_API void up_encoding_free(up_encoding *enc);

/* ---- model -------------------------------------------------------------- */

typedef struct up_model up_model;

typedef struct {
    up_precision precision; /* AUTO: bf16 where the CPU has AVX512-BF16 or AMX and bf16 products time faster than fp32 */
    up_backend backend;     /* AUTO: oneDNN */
    int threads;            /* OpenMP threads of this model's forwards and backwards; 0: the caller's
                             * setting (OMP_NUM_THREADS, omp_set_num_threads; by default all cores) */
} up_model_opts;
UP_API up_model_opts up_model_opts_default(void);

/* dir holds config.json, model.safetensors (or an index + shards), vocab.txt. */
UP_API up_status up_model_load(const char *dir, const up_model_opts *opts, up_model **out);
UP_API void up_model_free(up_model *m);
UP_API const up_config *up_model_config(const up_model *m);
UP_API const up_tokenizer *up_model_tokenizer(const up_model *m);
UP_API up_precision up_model_precision(const up_model *m);
/* bf16 products' speed over fp32's as auto precision timed it in this
 * process (> 1: bf16 faster; 0: not timed: no auto load yet, AMX, or
 * UP_AUTO_PRECISION set). */
UP_API double up_bf16_speed(void);
UP_API up_backend up_model_backend(const up_model *m);
UP_API int64_t up_model_param_count(const up_model *m);
UP_API int up_model_has_classifier(const up_model *m);
/* "F32", "F16" or "BF16" summary of the stored dtypes, e.g. "F32 (204 tensors)" */
UP_API const char *up_model_dtypes(const up_model *m);
UP_API int up_model_num_files(const up_model *m);

/* Builds a model with random weights (normal, std 0.02) from a config, for
 * benchmarks of any shape; no tokenizer. */
UP_API up_status up_model_random(const up_config *cfg, const up_model_opts *opts, uint64_t seed,
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

/* Batch packing: rows 0..n-1 of lens[i] tokens stored at a stride of `from`
 * ids move, in place, to a stride of `to` (>= every lens[i]; types too, when
 * non-NULL), the tail of each row padded with pad (types 0). Encode each
 * text at row i * max_len, then up_batch_restride(ids, types, lens, n,
 * max_len, longest, pad) gives the (n, longest) batch up_forward takes. */
UP_API void up_batch_restride(int32_t *ids, int32_t *types, const int32_t *lens, int n, int from, int to, int32_t pad);

/* Per-request state sized for at most max_B x max_T tokens; all buffers are
 * allocated here, none during up_forward. */
typedef struct up_run up_run;
UP_API up_status up_run_new(const up_model *m, int max_B, int max_T, up_run **out);
UP_API void up_run_free(up_run *r);
/* Keep every layer's hidden states and FFN activations (costs memory). */
UP_API void up_run_keep_all(up_run *r, int keep);

UP_API up_status up_forward(up_run *r, const up_batch *b);

/* Outputs of the last up_forward; B and T as in that batch. */
UP_API const float *up_run_cls(const up_run *r);      /* (B,C) final-layer [CLS] (a task view with mean
                                                  pooling: the mean over each row's tokens) */
UP_API const float *up_run_pooled(const up_run *r);   /* (B,C) tanh pooler */
UP_API const float *up_run_logits(const up_run *r);   /* (B,num_labels) or NULL */
/* Sentence embeddings of the last up_forward, out is (B,C): UP_POOL_CLS the
 * final [CLS] row, UP_POOL_MEAN the mean of each row's final hidden states over
 * its lens[b] tokens ([CLS] and [SEP] included: sentence-transformers' mean
 * pooling; soft prompt rows too, as a task's mean-pooled head reads them);
 * normalize != 0 scales each row to L2 norm 1. Valid after a forward that
 * returned UP_OK. */
typedef enum { UP_POOL_CLS = 0, UP_POOL_MEAN = 1 } up_pool;
UP_API up_status up_run_embed(const up_run *r, up_pool pool, int normalize, float *out);
/* layer 0 = embeddings output, layer l = output of encoder layer l (1..L);
 * needs keep_all for l < L. (B,T,C) */
UP_API const float *up_run_hidden(const up_run *r, int layer);
/* FFN intermediate activation after the activation function of encoder layer
 * l (0..L-1), (B,T,F); needs keep_all. */
UP_API const float *up_run_ffn_act(const up_run *r, int layer);


/* ---- pretraining (unplug pretrain, mlm-eval) ------------------------------ */

/* Masked-LM pretraining of a BERT encoder on plain text, resumable from a
 * checkpoint, written in the Hugging Face layout (docs/PRETRAINING.md). */
struct up_pretrain_report;

typedef struct {
    const char *train_path;    /* plain text, one paragraph per line */
    const char *heldout_path;  /* NULL: no held-out evaluation */
    const char *vocab_path;    /* vocab.txt */
    const char *config_path;   /* config.json for a model from scratch, or NULL with init_dir */
    const char *init_dir;      /* start from this HF model directory instead */
    const char *out_dir;       /* HF layout written here at the end (and at each checkpoint) */
    const char *ckpt_path;     /* checkpoint file (resumed from when it exists) */
    int seq_len, batch;
    long steps;                /* total optimizer steps */
    long warmup;
    float lr, min_lr, weight_decay, clip, beta2;
    int cosine;                /* 1: cosine decay, 0: linear */
    double mask_prob;
    uint64_t seed;
    long eval_every, ckpt_every, log_every;
    int eval_batches;
    up_precision precision;
    int threads;
    const char *out_dtype;     /* "bf16" (default), "f16" or "f32": the exported weights */
    long stop_after;           /* > 0: stop (with a checkpoint) after this many steps of this run */
    volatile int *interrupt;   /* set to 1 (e.g. by SIGINT) to checkpoint and stop */
    void (*progress)(const struct up_pretrain_report *rep, long total_steps, void *user);
    void *progress_user;
} up_pretrain_opts;

UP_API up_pretrain_opts up_pretrain_defaults(void);

typedef struct up_pretrain_report {
    long step;
    double train_loss;         /* mean over the last log interval */
    double heldout_loss, heldout_acc; /* last evaluation; acc in [0,1] */
    double tokens_per_s;
    long tokens_seen;
} up_pretrain_report;

UP_API up_status up_pretrain(const up_pretrain_opts *o, up_pretrain_report *rep);

/* Held-out masked-token accuracy and loss of a model directory on a text
 * file, with the same masking as pretraining (seeded). */
UP_API up_status up_mlm_evaluate(const char *model_dir, const char *text_path, int seq_len, int batch, int max_batches,
                          uint64_t seed, up_precision prec, double *loss, double *acc, long *n_masked);

/* Times full training steps (forward, MLM head on 15% of tokens, backward,
 * AdamW) of a random model of cfg's shape: mean seconds per step over iters
 * after warmup, and the step's effective FLOPs (3x the forward products). */
UP_API up_status up_pretrain_bench(const up_config *cfg, int B, int T, int warmup, int iters, up_precision prec, int threads,
                            double *sec_per_step, double *flops_per_step);

/* Monotonic wall-clock seconds (for timing around the calls above). */
UP_API double up_now(void);
/* 1 when path can be written: its directory can, and the file can if it
 * exists (errno says why not). */
UP_API int up_path_writable(const char *path);
/* 1 when path resolves (symlinks followed) to an entry directly inside the
 * directory dir_real (a realpath), and real (PATH_MAX bytes) is where: the
 * rule for expert files named relative to an experts directory. */
UP_API int up_path_inside(const char *dir_real, const char *path, char *real);
/* The library's random stream (SplitMix64 of a counter): the next number of
 * the stream *state, which advances; one seed gives the same numbers on
 * every machine. */
UP_API uint64_t up_random_next(uint64_t *state);

/* ---- model: batch conveniences ------------------------------------------ */

/* Token ids of n texts (pairs when b is non-NULL), [CLS] a [SEP] (b [SEP]),
 * truncated to max_len (0: max_position_embeddings): enc is (n), each freed
 * with up_encoding_free. */
UP_API up_status up_model_tokenize(const up_model *m, size_t n, const char *const *a, const char *const *b,
                                   int max_len, up_encoding *enc);

typedef struct {
    up_pool pool;   /* UP_POOL_CLS (default) or UP_POOL_MEAN */
    int normalize;  /* L2-normalize each row */
    int max_len;    /* tokens per text, truncated; 0: max_position_embeddings */
    int batch;      /* texts per forward (32) */
} up_embed_opts;
UP_API up_embed_opts up_embed_opts_default(void);
/* Sentence embeddings of n texts (or pairs), out (n, hidden_size). Thread-safe:
 * several threads may embed with one model at once. */
UP_API up_status up_model_embed(const up_model *m, size_t n, const char *const *a, const char *const *b,
                                const up_embed_opts *o, float *out);

/* ---- datasets ------------------------------------------------------------ */

/* Labelled examples of a classification task: single texts or pairs, labels
 * as names in id order. Read from files (GLUE TSVs, TREC, tsv with text /
 * text_b / label columns, jsonl; docs/FORMATS.md) or built from rows in
 * memory. */
typedef struct up_dataset up_dataset;

/* format: NULL or "auto" (by name and first line), "sst2", "cola", "mrpc",
 * "rte", "wnli", "qnli", "qqp", "mnli", "trec", "tsv", "jsonl". label_space
 * NULL: labels from this file; else the file must use label_space's labels
 * (a validation or test file read with its training file's labels). */
UP_API up_status up_dataset_load(const char *path, const char *format, const up_dataset *label_space,
                                 up_dataset **out);
/* n rows in memory: text[i], text_b[i] (text_b NULL: single texts), label[i]
 * (a name). label_space as for up_dataset_load; without it labels are taken
 * in order of first appearance. name: the task name ("sst2" ... decides the
 * metric, "cola": Matthews correlation) or NULL ("rows"). Texts are copied;
 * they must be non-empty, valid UTF-8. */
UP_API up_status up_dataset_from_rows(const char *name, size_t n, const char *const *text,
                                      const char *const *text_b, const char *const *label,
                                      const up_dataset *label_space, up_dataset **out);
/* A task's three splits in a data directory laid out as GLUE ("sst2", "mrpc",
 * "rte", "cola", "wnli", "qnli", "qqp", "mnli", "trec"): train; validation =
 * val.tsv, or a seeded 10% carve-out of train; report = dev.tsv (TREC.test).
 * report may be NULL. */
UP_API up_status up_dataset_task(const char *task, const char *data_dir, uint64_t seed, up_dataset **train,
                                 up_dataset **val, up_dataset **report);
UP_API size_t up_dataset_size(const up_dataset *d);
UP_API const char *up_dataset_name(const up_dataset *d);
UP_API int up_dataset_is_pair(const up_dataset *d);
UP_API int up_dataset_n_labels(const up_dataset *d);
UP_API const char *up_dataset_label(const up_dataset *d, int id);
/* Example i: texts and label id (b NULL for single texts); UP_ERR_INVALID out of range. */
UP_API up_status up_dataset_example(const up_dataset *d, size_t i, const char **a, const char **b, int *label);
UP_API void up_dataset_free(up_dataset *d);

/* ---- progress of long calls ---------------------------------------------- */

typedef enum {
    UP_STAGE_TUNE = 0,    /* a tuning step: epoch, epochs, done/total steps of the epoch, loss, rate */
    UP_STAGE_ATTRIBUTION, /* done/total examples scored, rate */
    UP_STAGE_SWEEP,       /* a fixed ratio: ratio, metric (validation), report (NaN without a report split) */
    UP_STAGE_SEARCH,      /* a ratio of the search: ratio, metric, ok (within the tolerance) */
    UP_STAGE_RETUNE,      /* re-tuning ended (epochs): before -> metric, ok (kept) */
    UP_STAGE_HEADS,       /* heads pruned: ratio (of heads), before -> metric */
} up_stage;
typedef struct {
    up_stage stage;
    long done, total;
    int epoch, epochs;     /* 1-based */
    double loss, rate;     /* rate: examples/s */
    double ratio, metric, report, before;
    int ok;
} up_progress;
typedef void (*up_progress_fn)(const up_progress *p, void *user);

/* ---- experts ------------------------------------------------------------- */

/* A task on a base model: soft prompt, classification head, and for a pruned
 * expert the FFN neurons and attention heads it keeps, with its metadata (the
 * attribution method, the pruning ratio, measured metrics, the base model's
 * fingerprint). Saved as a TASK.expert file (docs/FORMATS.md). An expert
 * holds a pointer to its base model, which must outlive it. */
typedef struct up_expert up_expert;

/* m: the base the expert was made for (checked by fingerprint); NULL reads
 * the file alone (info only; classify then fails). */
UP_API up_status up_expert_load(const up_model *m, const char *path, up_expert **out);
/* Writes atomically (a temporary file renamed over path). */
UP_API up_status up_expert_save(const up_expert *e, const char *path);
/* Classifies n texts (or pairs): labels (n) label ids and/or probs (n,
 * n_labels); either may be NULL. Thread-safe. */
UP_API up_status up_expert_classify(up_expert *e, size_t n, const char *const *a, const char *const *b, int *labels,
                                    float *probs);
UP_API const char *up_expert_task(const up_expert *e);
UP_API int up_expert_n_labels(const up_expert *e);
UP_API const char *up_expert_label(const up_expert *e, int id);
UP_API double up_expert_ratio(const up_expert *e);
/* The metrics measured when the expert was made, as stored: a JSON object's text. */
UP_API const char *up_expert_metrics(const up_expert *e);
/* FFN neurons and attention heads kept, over all layers, and the totals */
UP_API void up_expert_kept(const up_expert *e, long *ffn, long *ffn_total, long *heads, long *heads_total);
/* Layers of the base, and the FFN neurons layer l keeps (sorted indices; *n
 * of them), or NULL when it keeps every neuron (*n is then 0). */
UP_API int up_expert_layers(const up_expert *e);
UP_API const int32_t *up_expert_kept_neurons(const up_expert *e, int layer, int *n);
/* Everything about the expert as a JSON object (task, labels, prompt shape,
 * pooling, max_len, method, ratio, kept per layer, metrics, the base's
 * fingerprint and shape "L x C x F");
 * *json is freed with up_free. */
UP_API up_status up_expert_info_json(const up_expert *e, char **json);
UP_API void up_expert_free(up_expert *e);
UP_API void up_free(void *p);

/* ---- tune: prompt tuning on the frozen base ------------------------------ */

typedef struct {
    const char *task;    /* the task name in the expert (NULL: the training set's name) */
    int prompts;         /* soft prompt vectors after [CLS] (20) */
    int deep;            /* deep prompts: prompt rows at every layer's input (0) */
    up_pool pool;        /* the head reads the mean of the final hidden states (UP_POOL_MEAN) or [CLS] */
    int max_len;         /* tokens per example, prompt included (128) */
    int batch;           /* 32 */
    int epochs;          /* 5 */
    int patience;        /* early stop after this many epochs without a better validation metric (2) */
    float lr, head_lr;   /* AdamW learning rates of the prompt and the head (3e-3) */
    uint64_t seed;       /* 1 */
    size_t max_train;    /* use at most this many training examples, a seeded subset (0: all) */
    up_progress_fn progress;
    void *progress_user;
    volatile int *interrupt; /* set non-zero to stop after the current step (the best state so far is kept) */
} up_tune_opts;
UP_API up_tune_opts up_tune_opts_default(void);
typedef struct {
    char metric_name[16];  /* "accuracy" or "matthews" (cola) */
    double val;            /* the best state on validation, points */
    double report;         /* on the report split; NaN without one */
    double majority;       /* the majority class of train on the report split; NaN without one */
    int best_epoch, epochs;
    double seconds, examples_per_s;
} up_tune_result;
/* Tunes a task on train, early-stopped on val; report (NULL: none) is measured
 * with the majority class. The expert keeps every FFN neuron; res (may be
 * NULL) gets the figures, which also go into the expert's metrics. */
UP_API up_status up_tune(const up_model *m, const up_dataset *train, const up_dataset *val,
                         const up_dataset *report, const up_tune_opts *o, up_expert **out, up_tune_result *res);

/* ---- localize: score neurons, prune, search the ratio --------------------- */

typedef struct {
    const char *method;  /* "actxgrad" (default), "activation", "weight", "random", "ig" */
    int agg_max;         /* token aggregation: 0 mean over tokens, 1 max */
    int keep_sign;       /* signed scores (0: absolute) */
    int ig_steps;        /* ig: midpoints per layer (8) */
    size_t max_examples; /* training examples scored (0: all) */
    double ratio;        /* < 0 (default): search the ratio; else prune this share of FFN neurons */
    double tolerance;    /* validation points below the tuned model the search accepts (1.0) */
    double max_ratio;    /* the search's upper end (0.95) */
    int search_steps;    /* ratios tried (8) */
    int per_layer;       /* rank within each layer (0: over all layers at once) */
    const double *sweep; /* n_sweep fixed ratios measured before the search (method comparison) */
    int n_sweep;
    int retune_epochs;   /* > 0: re-tune prompt and head on the pruned model at each ratio */
    float retune_lr, retune_head_lr; /* 1e-3 */
    size_t max_train;    /* re-tuning examples (0: all) */
    int patience;        /* 2 */
    double heads;        /* share of attention heads pruned after the FFN (0) */
    int keep_ffn;        /* with heads: keep the input expert's FFN as it is */
    int batch;           /* 32 */
    double *scores;      /* optional out: (layers, intermediate_size) the neuron scores */
    up_progress_fn progress;
    void *progress_user;
    volatile int *interrupt; /* set non-zero: the call stops at the next batch or ratio with UP_ERR_INTERRUPTED */
} up_localize_opts;
UP_API up_localize_opts up_localize_opts_default(void);
#define UP_MAX_POINTS 64
typedef struct {
    double full_val;       /* the tuned model on validation */
    double ffn_val;        /* after the FFN step (before heads) */
    double expert_val, expert_report; /* the expert; report NaN without a report split */
    double ratio;          /* FFN pruning ratio chosen */
    double attribution_seconds;
    int n_points;          /* the search: ratios tried, in order */
    double point_ratio[UP_MAX_POINTS], point_metric[UP_MAX_POINTS];
    int point_ok[UP_MAX_POINTS];
    int n_sweep;           /* the fixed ratios */
    double sweep_ratio[UP_MAX_POINTS], sweep_val[UP_MAX_POINTS], sweep_report[UP_MAX_POINTS];
} up_localize_result;
/* From a tuned expert: scores every FFN neuron on train, prunes (searching the
 * largest ratio within the tolerance on val, or at o->ratio), optionally
 * prunes heads, and returns the new expert; res (may be NULL) gets the
 * figures, which also go into the expert's metrics. */
UP_API up_status up_localize(const up_model *m, const up_expert *tuned, const up_dataset *train,
                             const up_dataset *val, const up_dataset *report, const up_localize_opts *o,
                             up_expert **out, up_localize_result *res);

/* ---- evaluate: metrics and speed of an expert against its full model ----- */

typedef struct {
    int timing;          /* measure forward times (1) */
    int iters;           /* timed forwards per model and shape (9; at most 31) */
    int batch;           /* evaluation batch (64) */
} up_eval_opts;
UP_API up_eval_opts up_eval_opts_default(void);
typedef struct {
    size_t n;               /* examples */
    char metric_name[16];   /* "accuracy" or "matthews" */
    double metric[2];       /* [full, expert], points */
    double accuracy[2], f1[2], matthews[2]; /* f1 of label 1 (binary tasks), Matthews (binary) */
    int n_shapes;           /* timing: 32 x 128 and 1 x 128 (T capped at the expert's max_len) */
    int shape_B[2], shape_T[2];
    double ms[2][2];        /* [shape][full, expert], median ms per forward */
    double speedup[2];
} up_eval_result;
/* The timing of up_evaluate at any shape: the median ms per forward of full
 * (NULL: e with every neuron and head kept; ms[0]) and of e (ms[1]) at B x T
 * tokens, timed in alternating blocks of forwards over three rounds (so a
 * change in the machine's load falls on both alike). */
UP_API up_status up_expert_time(const up_model *m, const up_expert *e, const up_expert *full, int B, int T, int iters,
                                double ms[2]);
/* e against full (NULL: e with every neuron and head kept) on d. The two are
 * timed as up_expert_time times them. */
UP_API up_status up_evaluate(const up_model *m, const up_expert *e, const up_expert *full, const up_dataset *d,
                             const up_eval_opts *o, up_eval_result *res);

/* ---- hub: many experts over one base -------------------------------------- */

/* Experts plugged by task name over one base: plugging builds the expert's
 * compacted view, classify runs it, unplugging frees it; the base is never
 * written. Thread-safe. */
typedef struct up_hub up_hub;
UP_API up_status up_hub_new(const up_model *base, up_hub **out);
UP_API void up_hub_free(up_hub *h);
UP_API int up_hub_count(up_hub *h);   /* experts plugged */
/* Loads path and plugs it under its task name (replacing an expert of the same
 * task); name_out (32 bytes, may be NULL) gets the name. */
UP_API up_status up_hub_plug(up_hub *h, const char *path, char *name_out);
UP_API up_status up_hub_unplug(up_hub *h, const char *name);
UP_API up_status up_hub_classify(up_hub *h, const char *task, size_t n, const char *const *a,
                                 const char *const *b, int *labels, float *probs);
/* The label names of task's expert, in id order, into labels (cap rows of 32
 * bytes); returns their count, or -1 (with a message) when no expert is
 * plugged for task. */
UP_API int up_hub_labels(up_hub *h, const char *task, char (*labels)[32], int cap);
/* Task names of the plugged experts into names (cap rows of 32 bytes); returns the count. */
UP_API int up_hub_tasks(up_hub *h, char (*names)[32], int cap);

#ifdef __cplusplus
}
#endif
#endif
