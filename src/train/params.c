/* params.c: the trainable parameter set of a model (see params.h). */
#include "train/params.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "base/base.h"
#include "io/st_write.h"

/* Visits every weight tensor of the model in a fixed order. */
typedef void (*visit_fn)(void *ctx, const char *name, int ndim, int64_t d0, int64_t d1, const void **view,
                         float **grad, int linear);

static void visit_linear(visit_fn f, void *ctx, const char *base, up_linear *l, up_linear_grad *g) {
    char n[160];
    snprintf(n, sizeof n, "%s.weight", base);
    f(ctx, n, 2, l->out, l->in, &l->w, &g->w, 1);
    snprintf(n, sizeof n, "%s.bias", base);
    f(ctx, n, 1, l->out, 0, (const void **)&l->b, &g->b, 0);
}

static void visit_ln(visit_fn f, void *ctx, const char *base, int64_t C, const float **gm, const float **bt,
                     float **gg, float **gb) {
    char n[160];
    snprintf(n, sizeof n, "%s.weight", base);
    f(ctx, n, 1, C, 0, (const void **)gm, gg, 0);
    snprintf(n, sizeof n, "%s.bias", base);
    f(ctx, n, 1, C, 0, (const void **)bt, gb, 0);
}

static void visit_all(up_model *m, up_grads *g, visit_fn f, void *ctx) {
    up_weights *w = &m->w;
    const up_config *c = &m->cfg;
    int64_t C = c->hidden_size;
    /* the word table is a lookup and, for the tied MLM decoder, an operand: linear = 2 */
    f(ctx, "embeddings.word_embeddings.weight", 2, c->vocab_size, C, (const void **)&w->word, &g->word, 2);
    f(ctx, "embeddings.position_embeddings.weight", 2, c->max_position_embeddings, C, (const void **)&w->pos, &g->pos, 0);
    f(ctx, "embeddings.token_type_embeddings.weight", 2, c->type_vocab_size, C, (const void **)&w->type, &g->type, 0);
    visit_ln(f, ctx, "embeddings.LayerNorm", C, &w->emb_ln_g, &w->emb_ln_b, &g->emb_ln_g, &g->emb_ln_b);
    for (int l = 0; l < c->num_hidden_layers; l++) {
        up_layer *L = &w->layers[l];
        up_layer_grad *G = &g->layers[l];
        char b[96];
        snprintf(b, sizeof b, "encoder.layer.%d.attention.self.qkv", l);
        visit_linear(f, ctx, b, &L->qkv, &G->qkv);
        snprintf(b, sizeof b, "encoder.layer.%d.attention.output.dense", l);
        visit_linear(f, ctx, b, &L->o, &G->o);
        snprintf(b, sizeof b, "encoder.layer.%d.attention.output.LayerNorm", l);
        visit_ln(f, ctx, b, C, &L->ln1_g, &L->ln1_b, &G->ln1_g, &G->ln1_b);
        snprintf(b, sizeof b, "encoder.layer.%d.intermediate.dense", l);
        visit_linear(f, ctx, b, &L->ffn_in, &G->ffn_in);
        snprintf(b, sizeof b, "encoder.layer.%d.output.dense", l);
        visit_linear(f, ctx, b, &L->ffn_out, &G->ffn_out);
        snprintf(b, sizeof b, "encoder.layer.%d.output.LayerNorm", l);
        visit_ln(f, ctx, b, C, &L->ln2_g, &L->ln2_b, &G->ln2_g, &G->ln2_b);
    }
    if (w->has_pooler) visit_linear(f, ctx, "pooler.dense", &w->pooler, &g->pooler);
    if (w->has_classifier) visit_linear(f, ctx, "classifier", &w->classifier, &g->classifier);
    if (w->has_mlm) {
        visit_linear(f, ctx, "cls.predictions.transform.dense", &w->mlm_transform, &g->mlm_transform);
        visit_ln(f, ctx, "cls.predictions.transform.LayerNorm", C, &w->mlm_ln_g, &w->mlm_ln_b, &g->mlm_ln_g,
                 &g->mlm_ln_b);
        f(ctx, "cls.predictions.bias", 1, c->vocab_size, 0, (const void **)&w->mlm_bias, &g->mlm_bias, 0);
    }
}

typedef struct {
    up_params *P;
    int cap;
    up_status st;
} build_ctx;

static void add_param(void *vctx, const char *name, int ndim, int64_t d0, int64_t d1, const void **view,
                      float **grad, int linear) {
    build_ctx *b = vctx;
    up_params *P = b->P;
    if (b->st) return;
    if (P->nt == b->cap) {
        b->cap = b->cap ? 2 * b->cap : 64;
        up_param *t = realloc(P->t, (size_t)b->cap * sizeof *t);
        if (!t) { b->st = up_fail(UP_ERR_NOMEM, "out of memory listing parameters"); return; }
        P->t = t;
    }
    up_param *t = &P->t[P->nt++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->ndim = ndim;
    t->shape[0] = d0;
    t->shape[1] = ndim == 2 ? d1 : 0;
    t->n = (size_t)d0 * (ndim == 2 ? (size_t)d1 : 1);
    t->off = P->n;
    P->n += (t->n + 15) & ~(size_t)15; /* 64-byte aligned tensors */
    t->decay = ndim == 2;
    t->linear = linear;
    t->view = view;
    t->grad = grad;
}

static void to_f32(const void *src, up_type t, size_t n, float *dst) {
    if (t == UP_T_BF16) up_bf16_to_f32(dst, src, n);
    else memcpy(dst, src, n * sizeof *dst);
}

up_status up_params_new(up_model *m, up_params **out) {
    *out = NULL;
    up_params *P = up_calloc(1, sizeof *P, "parameters");
    if (!P) return UP_ERR_NOMEM;
    P->m = m;
    P->grads.layers = up_calloc((size_t)m->cfg.num_hidden_layers, sizeof(up_layer_grad), "layer gradients");
    if (!P->grads.layers) { free(P); return UP_ERR_NOMEM; }
    build_ctx b = {P, 0, UP_OK};
    visit_all(m, &P->grads, add_param, &b);
    up_status st = b.st;
    if (!st) {
        P->p = up_aligned_alloc(P->n * 4, "master weights");
        P->g = up_aligned_alloc(P->n * 4, "gradients");
        P->m1 = up_aligned_alloc(P->n * 4, "AdamW first moments");
        P->m2 = up_aligned_alloc(P->n * 4, "AdamW second moments");
        if (m->act_type == UP_T_BF16) P->pe = up_aligned_alloc(P->n * 2, "bf16 operand weights");
        if (!P->p || !P->g || !P->m1 || !P->m2 || (m->act_type == UP_T_BF16 && !P->pe)) st = UP_ERR_NOMEM;
    }
    if (st) { up_params_free(P); return st; }
    memset(P->g, 0, P->n * 4);
    memset(P->m1, 0, P->n * 4);
    memset(P->m2, 0, P->n * 4);
    for (int i = 0; i < P->nt; i++) {
        up_param *t = &P->t[i];
        /* the current weights become the master copy; the views move to it */
        to_f32(*t->view, t->linear == 1 ? m->act_type : UP_T_F32, t->n, P->p + t->off);
        *t->grad = P->g + t->off;
        *t->view = P->p + t->off;
    }
    up_params_sync(P);
    *out = P;
    return UP_OK;
}

void up_params_sync(up_params *P) {
    up_model *m = P->m;
    for (int i = 0; i < P->nt; i++) {
        up_param *t = &P->t[i];
        if (!t->linear) continue;
        if (m->act_type == UP_T_BF16) {
            up_f32_to_bf16(P->pe + t->off, P->p + t->off, t->n);
            if (t->linear == 1) *t->view = P->pe + t->off;
            else m->w.word_e = P->pe + t->off;
        } else if (t->linear == 2) {
            m->w.word_e = P->p + t->off;
        }
    }
}

void up_params_free(up_params *P) {
    if (!P) return;
    free(P->t);
    free(P->p);
    free(P->g);
    free(P->m1);
    free(P->m2);
    free(P->pe);
    free(P->grads.layers);
    free(P);
}

void up_params_zero_grad(up_params *P) { memset(P->g, 0, P->n * sizeof *P->g); }

float up_params_step(up_params *P, const up_adamw_cfg *o, float lr, float max_norm) {
    float norm = up_clip_grad_norm(P->g, P->n, max_norm);
    P->step++;
    for (int i = 0; i < P->nt; i++) {
        up_param *t = &P->t[i];
        up_adamw_update(P->p + t->off, P->g + t->off, P->m1 + t->off, P->m2 + t->off, t->n, o, lr, P->step, t->decay);
    }
    up_params_sync(P);
    return norm;
}

const up_param *up_params_find(const up_params *P, const char *name) {
    for (int i = 0; i < P->nt; i++)
        if (!strcmp(P->t[i].name, name)) return &P->t[i];
    return NULL;
}

static const char *act_str(up_act a) { return a == UP_ACT_RELU ? "relu" : a == UP_ACT_GELU_NEW ? "gelu_new" : "gelu"; }

static up_status write_config(const up_model *m, const char *path, up_dtype dt) {
    const up_config *c = &m->cfg;
    FILE *f = fopen(path, "w");
    if (!f) return up_fail(UP_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    fprintf(f,
            "{\n  \"architectures\": [\"%s\"],\n  \"model_type\": \"bert\",\n  \"vocab_size\": %lld,\n"
            "  \"hidden_size\": %lld,\n  \"num_hidden_layers\": %lld,\n  \"num_attention_heads\": %lld,\n"
            "  \"intermediate_size\": %lld,\n  \"hidden_act\": \"%s\",\n  \"max_position_embeddings\": %lld,\n"
            "  \"type_vocab_size\": %lld,\n  \"layer_norm_eps\": %g,\n  \"pad_token_id\": %lld,\n"
            "  \"hidden_dropout_prob\": 0.1,\n  \"attention_probs_dropout_prob\": 0.1,\n  \"initializer_range\": 0.02,\n"
            "  \"position_embedding_type\": \"absolute\",\n  \"torch_dtype\": \"%s\"\n}\n",
            m->w.has_mlm ? "BertForMaskedLM" : "BertModel", (long long)c->vocab_size, (long long)c->hidden_size,
            (long long)c->num_hidden_layers, (long long)c->num_attention_heads, (long long)c->intermediate_size,
            act_str(c->hidden_act), (long long)c->max_position_embeddings, (long long)c->type_vocab_size,
            (double)c->layer_norm_eps, (long long)c->pad_token_id,
            dt == UP_DT_BF16 ? "bfloat16" : dt == UP_DT_F16 ? "float16" : "float32");
    return fclose(f) == 0 ? UP_OK : up_fail(UP_ERR_IO, "%s: write failed", path);
}

up_status up_params_save_hf(const up_params *P, const char *dir, up_dtype dt, const char *vocab_src) {
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) return up_fail(UP_ERR_IO, "%s: cannot create: %s", dir, strerror(errno));
    char path[1200];
    up_status st = up_path_join(path, sizeof path, dir, "config.json");
    if (!st) st = write_config(P->m, path, dt);
    if (st) return st;
    up_st_writer *w = up_st_writer_new();
    if (!w) return up_fail(UP_ERR_NOMEM, "out of memory");
    up_st_writer_meta(w, "format", "pt");
    const char *pre = P->m->w.has_mlm ? "bert." : "";
    int64_t C = P->m->cfg.hidden_size;
    for (int i = 0; i < P->nt && !st; i++) {
        const up_param *t = &P->t[i];
        char name[200];
        const char *q = strstr(t->name, "attention.self.qkv.");
        int head = !strncmp(t->name, "cls.", 4) || !strncmp(t->name, "classifier", 10);
        if (q) { /* split the stacked rows back into query, key, value */
            static const char *parts[] = {"query", "key", "value"};
            const char *suffix = q + strlen("attention.self.qkv.");
            for (int k = 0; k < 3 && !st; k++) {
                snprintf(name, sizeof name, "%s%.*sattention.self.%s.%s", pre, (int)(q - t->name), t->name, parts[k],
                         suffix);
                int64_t shape[2] = {C, C};
                size_t per = t->ndim == 2 ? (size_t)(C * C) : (size_t)C;
                st = up_st_writer_add_f32(w, name, dt, t->ndim, shape, P->p + t->off + k * per);
            }
            continue;
        }
        snprintf(name, sizeof name, "%s%s", head ? "" : pre, t->name);
        st = up_st_writer_add_f32(w, name, dt, t->ndim, t->shape, P->p + t->off);
    }
    if (!st) st = up_path_join(path, sizeof path, dir, "model.safetensors");
    if (!st) st = up_st_writer_save(w, path);
    up_st_writer_free(w);
    if (!st && vocab_src) {
        char *buf;
        size_t len;
        st = up_read_file(vocab_src, (size_t)1 << 30, &buf, &len);
        if (!st) {
            up_path_join(path, sizeof path, dir, "vocab.txt");
            FILE *f = fopen(path, "wb");
            if (!f || fwrite(buf, 1, len, f) != len) st = up_fail(UP_ERR_IO, "%s: cannot write", path);
            if (f && fclose(f) != 0 && !st) st = up_fail(UP_ERR_IO, "%s: cannot write", path);
            free(buf);
        }
    }
    return st;
}
