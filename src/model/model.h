/*
 * model.h: the private layout of a loaded encoder (weights, per-request run
 * state) and the interface an encoder family implements.
 *
 * A family (bert.c) maps a checkpoint's tensor names onto up_weights; the
 * forward pass (encoder.c) is shared. Adding an encoder family is one new file
 * with an up_family table entry (see family.c).
 *
 * Weights are views: each points into the read-only mapping when the stored
 * dtype is what compute needs, or into one owned conversion buffer otherwise.
 */
#ifndef UP_MODEL_H
#define UP_MODEL_H

#include "unplug.h"
#include "io/safetensors.h"
#include "kernels/gemm.h"

/* y (M,out) = x (M,in) @ w^T + b; w stored (out,in) as in PyTorch. */
typedef struct {
    const void *w;   /* (out,in) of type wt */
    up_type wt;
    const float *b;  /* (out) */
    int out, in;
    const float *ws; /* UP_T_S8: (out) scale of each output channel (row of w) */
    const float *wf; /* UP_T_S8: (out,in) the fp32 weights w was quantized from (experts re-quantize
                      * after compaction), or NULL */
    const float *wsum; /* UP_T_S8: (out) ws[n] * sum_k w[n,k], what an input's offset adds to output n */
} up_linear;

typedef struct {
    up_linear qkv;                 /* (3C,C): query, key and value rows stacked */
    up_linear o;                   /* (C,C) */
    const float *ln1_g, *ln1_b;    /* attention output LayerNorm (C) */
    up_linear ffn_in;              /* (F,C); F may be smaller in an expert */
    up_linear ffn_out;             /* (C,F) */
    const float *ln2_g, *ln2_b;    /* output LayerNorm (C) */
} up_layer;

typedef struct {
    const float *word, *pos, *type;    /* (V,C) (P,C) (TV,C) fp32 */
    const float *emb_ln_g, *emb_ln_b;  /* (C) */
    up_layer *layers;                  /* (L) */
    int has_pooler;
    int pool_mean;                     /* the pooler reads the mean of the final hidden states, not [CLS] */
    up_linear pooler;                  /* (C,C) */
    int has_classifier;
    up_linear classifier;              /* (num_labels,C) */
    int has_mlm;
    up_linear mlm_transform;           /* (C,C) */
    const float *mlm_ln_g, *mlm_ln_b;  /* (C) */
    const float *mlm_bias;             /* (V); decoder tied to word */
    const void *word_e;                /* (V,C) word table as a matrix-product operand (tied decoder) */
} up_weights;

struct up_model {
    up_config cfg;
    up_weights w;
    up_precision precision;
    up_backend backend;
    int threads;               /* > 0: OpenMP threads of each forward/backward (up_threads_enter); 0: the caller's */
    up_type act_type;          /* operand type of matrix products (fp32 for int8: see wtype) */
    up_type wtype;             /* type of the encoder layers' linear weights: act_type, or UP_T_S8 */
    up_st_set *st;             /* mapped checkpoint, NULL for random models */
    void **owned;              /* conversion buffers */
    int n_owned, cap_owned;
    up_tokenizer *tok;
    int is_view;               /* a task view: shares the base's weights, tokenizer and mapping */
    char fingerprint[65];      /* SHA-256 of the checkpoint (hex), computed on first use */
    int64_t n_params;
    size_t dtype_counts[UP_DT_COUNT];
    char dtypes[128];
    char dir[1024];
};

/* One family: fills m->w from the tensors (checking every shape against
 * m->cfg), converting through up_model_tensor(). */
typedef struct {
    const char *model_type;
    up_status (*bind)(up_model *m, const up_st_set *st);
} up_family;

const up_family *up_family_find(const char *model_type);

/* up_model_random, optionally with a masked-LM head (pretraining from scratch). */
up_status up_model_random_heads(const up_config *cfg, const up_model_opts *opts, uint64_t seed, int mlm,
                                up_model **out);

/* Looks a tensor up (trying each prefix in order), checks its shape, and
 * returns it converted to fp32 (to_type UP_T_F32) or to the matrix-product
 * operand type (to_type = m->act_type). required = 0 returns NULL quietly
 * when absent. Names the tensor, expected and found shape on error. */
up_status up_model_tensor(up_model *m, const up_st_set *st, const char *const *prefixes,
                          const char *name, int ndim, const int64_t *shape, up_type to_type,
                          int required, const void **out);

/* out = the rows of parts[0..n) stacked into one owned linear (same in). */
up_status up_model_stack_linears(up_model *m, const up_linear *parts, int n, up_linear *out);

/* *out = src (n fp32) as a matrix-product operand: src itself in fp32 mode,
 * an owned bf16 copy in bf16 mode. */
up_status up_model_operand_copy(up_model *m, const float *src, size_t n, const void **out);

/* SHA-256 (hex) over config dimensions and every stored tensor (name, dtype,
 * shape, bytes) in name order: the identity of the base weights, the same at
 * any precision. Views report their base's. */
up_status up_model_fingerprint(up_model *m, const char **hex);
/* Sets the calling thread's OpenMP thread count to m's (when it has one) and
 * returns the previous count for up_threads_leave. */
int up_threads_enter(const up_model *m);
void up_threads_leave(const up_model *m, int prev);

/* l (fp32 weights) -> symmetric int8 per output channel, buffers owned by
 * m; l->wf keeps the fp32 source. */
up_status up_model_quantize_linear(up_model *m, up_linear *l);

/* y (M,l->out) = x (M,l->in) W^T + b (then GELU if gelu) with the run's buffers (r sized for
 * M <= B*T rows of l's model): the product every layer runs, int8 included. */
up_status up_linear_forward(up_run *r, const up_linear *l, const float *x, int64_t ldx, int M, float *y, int64_t ldy,
                            int gelu);

/* Registers a buffer the model frees. */
up_status up_model_own(up_model *m, void *p);

/* What one layer's forward leaves behind. In inference all layers share one
 * set of buffers; in training mode each layer has its own, so the backward
 * (and attribution) reads what the forward produced. */
typedef struct {
    void *xe;              /* (B,T,C) operand copy of the layer input (bf16 mode) */
    void *qkv;             /* (B,T,3C) E (int8: the QKV product's integer sums, fp32) */
    float *probs32;        /* (B,NH,T,T) fp32 probabilities (training; fp32 mode aliases probs) */
    void *probs;           /* (B,NH,T,T) E (int8: uint8) */
    void *ctx;             /* (B,T,C) E */
    float *sum1;           /* (B,T,C) ctx Wo + bo + x, before LayerNorm */
    float *mean1, *rstd1;  /* (B,T) */
    float *h1;             /* (B,T,C) attention block output */
    void *h1e;             /* (B,T,C) operand copy (bf16 mode) */
    float *u;              /* (B,T,F) FFN pre-activation (training) */
    void *f;               /* (B,T,F) E FFN activation */
    float *f32;            /* (B,T,F) fp32 FFN activation (keep_all or training) */
    float *sum2;           /* (B,T,C) f W2 + b2 + h1, before LayerNorm */
    float *mean2, *rstd2;  /* (B,T) */
} up_acts;

/* Gradients of the loss, fp32, shaped like up_weights; NULL = not needed
 * (a frozen backbone leaves every weight gradient NULL and still gets
 * activation gradients). Linear gradients are (out,in) like the weights. */
typedef struct {
    float *w, *b;
} up_linear_grad;
typedef struct {
    up_linear_grad qkv, o, ffn_in, ffn_out;
    float *ln1_g, *ln1_b, *ln2_g, *ln2_b;
} up_layer_grad;
typedef struct {
    float *word, *pos, *type, *emb_ln_g, *emb_ln_b;
    up_layer_grad *layers;  /* (L) or NULL */
    up_linear_grad pooler, classifier, mlm_transform;
    float *mlm_ln_g, *mlm_ln_b, *mlm_bias;
    float *prompt;          /* (K,n_prompt,C) gradient of the soft prompt (K = the batch's prompt_layers) */
} up_grads;

/* Per-request state: every buffer a forward (and, in training mode, a
 * backward) needs, allocated in up_run_new / up_run_set_train. */
struct up_run {
    const up_model *m;
    up_config shape;     /* the configuration it was sized for (m may change, see up_run_use) */
    up_type shape_act, shape_wt;
    up_gemm_ctx *gemm;
    /* int8 weights (encoder.c, linear_int8), with Q = max(3C,F) */
    uint8_t *xq;         /* (B*T,Q) uint8 copy of a linear's input; int8 attention's Q, K, V planes */
    float *rlo, *rhi;    /* (B*T) each input row's range (after an int8 FFN's first product: its output's) */
    float *xs;           /* (B*T) each input row's quantization step */
    float *hs;           /* (4,B,NH,T) int8 attention: Q, K, V's scale per (row, head), and P's row factors */
    const float *ranged; /* the output whose row ranges rlo, rhi hold already (int8 FFN: the activations), or NULL */
    /* the static-range experiment (UP_INT8_RANGES, encoder.c): mode 1
     * calibrate, 2 static; per product in forward order k, the ranges of
     * the [CLS] rows and of the others: sr[4k .. 4k+3] = lo0, hi0, lo, hi */
    int sr_mode, sr_k;
    float sr[4 * 4 * 64];
    char sr_path[256];
    int max_B, max_T, B, T;
    int keep_all, train;
    int32_t lens[4096];
    const int32_t *ids, *type_ids; /* of the last forward (caller's arrays) */
    int n_prompt;        /* soft prompt vectors at positions 1..n_prompt in the last forward */
    int prompt_layers;   /* layers whose input rows 1..n_prompt the prompt set (1: embeddings only) */
    float **hidden;      /* (L+1) x (B,T,C); inference: two alternating buffers */
    up_acts *acts;       /* (L) */
    float *scores;       /* (B,NH,T,T) scratch */
    float *obias;        /* (C) the output bias with the value bias folded in (inference attention) */
    float *emb_sum;      /* (B,T,C) embeddings before LayerNorm */
    float *emb_mean, *emb_rstd; /* (B,T) */
    float *cls;          /* (B,C) final [CLS] rows, or their mean over each row's tokens (pool_mean) */
    void *clse;          /* (B,C) operand copy */
    float *pooled;       /* (B,C) */
    void *pooled_e;      /* (B,C) */
    float *logits;       /* (B,num_labels) */
    /* backward scratch (training mode) */
    float *dx, *dx2;     /* (B,T,C) gradient of the current layer output / input */
    float *dsum;         /* (B,T,C) */
    float *dh1;          /* (B,T,C) */
    float *dqkv;         /* (B,T,3C) */
    float *dprobs;       /* (B,NH,T,T) */
    float *df;           /* (B,T,F) gradient of the FFN activation */
    float *du;           /* (B,T,F) */
    void *ge;            /* (B,T,max(3C,F)) operand copy of a gradient (bf16 mode) */
    void *ge2;           /* (B,NH,T,T) operand copy of dscores (bf16 mode) */
    float *dembeds;      /* (B,T,C) gradient of the looked-up word-embedding rows */
    float **dffn;        /* (L) x (B,T,F) kept FFN-activation gradients, or NULL */
    int keep_dffn;
    void *mlm;           /* MLM head state (mlm.c), allocated on first use */
    const float *ffn_scale; /* (L,F) per-neuron factors on the FFN activations, or NULL (tests, masking) */
    const float *head_scale;/* (L,NH) per-head factors on the attention heads' outputs, or NULL */
    float **dctx;        /* (L) x (B,T,C) kept gradients of the heads' outputs (keep_dffn), or NULL */
    void *arena;
};

/* Points the run at another model of the same shape (a task view of the
 * base it was made for: FFN widths up to the base's, up to UP_MAX_LABELS
 * labels). Costs nothing; the next up_forward runs m. */
up_status up_run_use(up_run *r, const up_model *m);

/* Rows [row0, row0 + n) of a batch that mixes tasks: they run task view m's
 * FFN (its compacted matrices) and head (pooler, classifier), with its soft
 * prompt (K,P,C) (K and P are the batch's prompt_layers and n_prompt). */
typedef struct {
    const up_model *m;
    int row0, n;
    const float *prompt;
} up_row_group;

/* One forward over the rows of several task views (a batch that mixes
 * tasks): embeddings, attention and LayerNorms over the whole (B,T,C) batch
 * with r->m's weights, which every view must share (views that kept every
 * attention head: see up_task_mixable); each group's prompt rows, FFN
 * products over its row range and head on its own. The groups cover rows
 * 0..B-1 in order. Inference only. Logits of row i at up_run_logits(r) +
 * i * UP_MAX_LABELS (each group's first num_labels of them). */
up_status up_forward_groups(up_run *r, const up_batch *b, const up_row_group *g, int ng);

/* Training mode keeps every activation the backward needs and allocates the
 * backward's scratch. keep_dffn also keeps each layer's FFN-activation
 * gradient (attribution). */
up_status up_run_set_train(up_run *r, int train, int keep_dffn);

/* Multiplies every FFN activation of neuron j in layer l by scale[l*F + j]
 * in later forwards (NULL: off): masking neurons to zero, finite differences,
 * integrated gradients. up_backward follows it; the kept FFN-activation
 * gradient is then with respect to the scaled activation. */
void up_run_set_ffn_scale(up_run *r, const float *scale);

/* Multiplies attention head h's output (its D columns of the context, before
 * W_o) in layer l by scale[l*NH + h] in later forwards (NULL: off): head
 * masking and finite differences. up_backward follows it. */
void up_run_set_head_scale(up_run *r, const float *scale);

/* Backward from gradients of the outputs of the last forward: dlogits
 * (B,num_labels), dpooled (B,C), dhidden (B,T,C) of the final layer; each
 * may be NULL; they are summed. Accumulates (+=) into the non-NULL parts of
 * g (zero them with your own memset between steps); fills r->dembeds and,
 * with keep_dffn, r->dffn[l]. */
up_status up_backward(up_run *r, const float *dlogits, const float *dpooled, const float *dhidden,
                      const up_grads *g);
/* MLM head on n rows (indices into the last forward's B*T tokens) of the
 * final hidden state: logits (n,V). The backward adds the rows' gradient
 * into dhidden (B,T,C) and accumulates head (and tied word) gradients. */
up_status up_mlm_forward(up_run *r, const int32_t *rows, int n, float *logits);
up_status up_mlm_backward(up_run *r, const float *dlogits, const up_grads *g, float *dhidden);
void up_mlm_free(up_run *r);

/* (B,T,C) gradient of the word-embedding rows of the last backward. */
const float *up_run_grad_embeds(const up_run *r);
/* (B,T,F) gradient of layer l's FFN activations (keep_dffn), as they were
 * after the ffn_scale probe when one is set. */
const float *up_run_grad_ffn(const up_run *r, int layer);
/* (B,T,C) gradient of layer l's attention context (the heads' outputs side
 * by side, after the head_scale probe), keep_dffn; and the context itself
 * (B,T,C) of the run's operand type (bf16 or fp32: see up_run_ctx_bf16). */
const float *up_run_grad_ctx(const up_run *r, int layer);
const void *up_run_ctx(const up_run *r, int layer);
int up_run_ctx_bf16(const up_run *r);

#endif
