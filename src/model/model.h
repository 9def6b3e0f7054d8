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
    up_linear pooler;                  /* (C,C) */
    int has_classifier;
    up_linear classifier;              /* (num_labels,C) */
    int has_mlm;
    up_linear mlm_transform;           /* (C,C) */
    const float *mlm_ln_g, *mlm_ln_b;  /* (C) */
    const float *mlm_bias;             /* (V); decoder tied to word */
} up_weights;

struct up_model {
    up_config cfg;
    up_weights w;
    up_precision precision;
    up_backend backend;
    int threads;
    up_type act_type;          /* operand type of matrix products */
    up_st_set *st;             /* mapped checkpoint, NULL for random models */
    void **owned;              /* conversion buffers */
    int n_owned, cap_owned;
    up_tokenizer *tok;
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

/* Looks a tensor up (trying each prefix in order), checks its shape, and
 * returns it converted to fp32 (to_type UP_T_F32) or to the matrix-product
 * operand type (to_type = m->act_type). required = 0 returns NULL quietly
 * when absent. Names the tensor, expected and found shape on error. */
up_status up_model_tensor(up_model *m, const up_st_set *st, const char *const *prefixes,
                          const char *name, int ndim, const int64_t *shape, up_type to_type,
                          int required, const void **out);

/* out = the rows of parts[0..n) stacked into one owned linear (same in). */
up_status up_model_stack_linears(up_model *m, const up_linear *parts, int n, up_linear *out);

/* Registers a buffer the model frees. */
up_status up_model_own(up_model *m, void *p);

/* Per-request state: every buffer a forward needs, allocated in up_run_new. */
struct up_run {
    const up_model *m;
    up_gemm_ctx *gemm;
    int max_B, max_T, B, T;
    int keep_all;
    int32_t lens[4096];
    float **hidden;      /* (L+1) x (B,T,C); without keep_all, two alternating buffers */
    float **ffn_f32;     /* (L) x (B,T,F) fp32 copies when keep_all */
    void *xe;            /* (B,T,C) operand copy of the current hidden state (bf16 mode) */
    void *qkv;           /* (B,T,3C) act type */
    float *scores;       /* (B,NH,T,T) */
    void *probs;         /* (B,NH,T,T) act type */
    void *ctxv;          /* (B,T,C) act type */
    float *tmp;          /* (B,T,C) pre-LayerNorm sums */
    float *h1;           /* (B,T,C) attention block output */
    void *h1e;           /* (B,T,C) operand copy */
    void *ffn;           /* (B,T,F) act type */
    float *cls;          /* (B,C) */
    void *clse;          /* (B,C) operand copy */
    float *pooled;       /* (B,C) */
    void *pooled_e;      /* (B,C) */
    float *logits;       /* (B,num_labels) */
    void *arena;
};

#endif
