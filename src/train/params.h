/*
 * params.h: a model's weights as one trainable set: fp32 master copies,
 * gradients and AdamW moments in four flat buffers with the same layout
 * (llm.c style), a table naming every tensor, and the model's weight views
 * re-pointed at them (bf16 operand copies refreshed by up_params_sync).
 *
 *     up_params *P;
 *     up_params_new(model, &P);           // model now reads P's buffers
 *     ... forward, up_backward(run, ..., &P->grads) ...
 *     up_params_step(P, &opt, lr);        // AdamW, then sync operands
 *     up_params_save_hf(P, "out_dir", UP_DT_BF16);
 */
#ifndef UP_PARAMS_H
#define UP_PARAMS_H

#include "model/model.h"
#include "train/adamw.h"

typedef struct {
    char name[160];     /* Hugging Face name without "bert."; stacked QKV: "...attention.self.qkv" */
    int ndim;
    int64_t shape[2];
    size_t off, n;      /* into the flat buffers */
    int decay;          /* matrices decay; biases, LayerNorm and tables? (embeddings decay as in HF) */
    int linear;         /* a matrix-product weight: its view has the operand type */
    const void **view;  /* the model's pointer to this tensor */
    float **grad;       /* the slot in grads */
} up_param;

typedef struct {
    up_model *m;
    up_param *t;
    int nt;
    size_t n;
    float *p, *g, *m1, *m2;  /* (n) each */
    uint16_t *pe;            /* (n) bf16 operand copies (bf16 mode) */
    up_grads grads;          /* views into g */
    long step;               /* optimizer steps taken */
} up_params;

up_status up_params_new(up_model *m, up_params **out);
void up_params_free(up_params *P);
void up_params_zero_grad(up_params *P);
/* refreshes the model's operand copies from the master weights */
void up_params_sync(up_params *P);
/* clips (max_norm > 0), one AdamW update at lr, sync; returns the grad norm */
float up_params_step(up_params *P, const up_adamw_cfg *o, float lr, float max_norm);
const up_param *up_params_find(const up_params *P, const char *name);

/* Writes config.json, model.safetensors (BertForMaskedLM names, "bert."
 * prefix, QKV split back, tied decoder omitted) and copies vocab_src to
 * dir/vocab.txt when given. dt: F32, F16 or BF16. */
up_status up_params_save_hf(const up_params *P, const char *dir, up_dtype dt, const char *vocab_src);

#endif
