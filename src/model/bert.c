/*
 * bert.c: the BERT family: Hugging Face tensor names of BertModel,
 * BertForMaskedLM and BertForSequenceClassification (with or without the
 * "bert." prefix) mapped onto up_weights, every shape checked against config.
 */
#include <stdio.h>
#include "base/base.h"
#include "model/model.h"

static const char *const prefixes[] = {"", "bert.", NULL};
static const char *const head_prefixes[] = {"", NULL};

#define T1(name, a, type, req, dst) do { int64_t s_[1] = {a}; \
    up_status st_ = up_model_tensor(m, st, prefixes, name, 1, s_, type, req, (const void **)(dst)); \
    if (st_ != UP_OK) return st_; } while (0)
#define T2(pfx, name, a, b, type, req, dst) do { int64_t s_[2] = {a, b}; \
    up_status st_ = up_model_tensor(m, st, pfx, name, 2, s_, type, req, (const void **)(dst)); \
    if (st_ != UP_OK) return st_; } while (0)

static up_status linear(up_model *m, const up_st_set *st, const char *const *pfx, const char *base,
                        int out, int in, int required, up_linear *l) {
    char wn[256], bn[256];
    snprintf(wn, sizeof wn, "%s.weight", base);
    snprintf(bn, sizeof bn, "%s.bias", base);
    l->out = out;
    l->in = in;
    l->wt = m->act_type;
    T2(pfx, wn, out, in, m->act_type, required, &l->w);
    if (!l->w) return UP_OK;
    T1(bn, out, UP_T_F32, 1, &l->b);
    return UP_OK;
}

static up_status layernorm(up_model *m, const up_st_set *st, const char *const *pfx, const char *base,
                           int C, int required, const float **g, const float **b) {
    char gn[256], bn[256];
    snprintf(gn, sizeof gn, "%s.weight", base);
    snprintf(bn, sizeof bn, "%s.bias", base);
    int64_t s[1] = {C};
    up_status r = up_model_tensor(m, st, pfx, gn, 1, s, UP_T_F32, required, (const void **)g);
    if (r != UP_OK || !*g) return r;
    return up_model_tensor(m, st, pfx, bn, 1, s, UP_T_F32, 1, (const void **)b);
}

up_status up_bert_bind(up_model *m, const up_st_set *st) {
    const up_config *c = &m->cfg;
    int C = (int)c->hidden_size, F = (int)c->intermediate_size;
    up_weights *w = &m->w;
    up_status r;
    T2(prefixes, "embeddings.word_embeddings.weight", c->vocab_size, C, UP_T_F32, 1, &w->word);
    T2(prefixes, "embeddings.position_embeddings.weight", c->max_position_embeddings, C, UP_T_F32, 1, &w->pos);
    T2(prefixes, "embeddings.token_type_embeddings.weight", c->type_vocab_size, C, UP_T_F32, 1, &w->type);
    if ((r = layernorm(m, st, prefixes, "embeddings.LayerNorm", C, 1, &w->emb_ln_g, &w->emb_ln_b))) return r;
    for (int l = 0; l < c->num_hidden_layers; l++) {
        up_layer *L = &w->layers[l];
        char b[128];
#define LIN(sub, o, i, dst) do { snprintf(b, sizeof b, "encoder.layer.%d.%s", l, sub); \
        if ((r = linear(m, st, prefixes, b, o, i, 1, dst))) return r; } while (0)
#define LN(sub, g, bb) do { snprintf(b, sizeof b, "encoder.layer.%d.%s", l, sub); \
        if ((r = layernorm(m, st, prefixes, b, C, 1, g, bb))) return r; } while (0)
        up_linear qkv[3];
        LIN("attention.self.query", C, C, &qkv[0]);
        LIN("attention.self.key", C, C, &qkv[1]);
        LIN("attention.self.value", C, C, &qkv[2]);
        if ((r = up_model_stack_linears(m, qkv, 3, &L->qkv))) return r;
        LIN("attention.output.dense", C, C, &L->o);
        LN("attention.output.LayerNorm", &L->ln1_g, &L->ln1_b);
        LIN("intermediate.dense", F, C, &L->ffn_in);
        LIN("output.dense", C, F, &L->ffn_out);
        LN("output.LayerNorm", &L->ln2_g, &L->ln2_b);
#undef LIN
#undef LN
    }
    if ((r = linear(m, st, prefixes, "pooler.dense", C, C, 0, &w->pooler))) return r;
    w->has_pooler = w->pooler.w != NULL;
    if (c->num_labels == 0) {
        /* HF omits id2label for the default two labels: take the count from the head */
        const up_st_tensor *t = up_st_find(st, "classifier.weight");
        if (t && t->ndim == 2 && t->shape[0] >= 1 && t->shape[0] <= UP_MAX_LABELS) {
            m->cfg.num_labels = (int)t->shape[0];
            for (int i = 0; i < m->cfg.num_labels; i++)
                snprintf(m->cfg.labels[i], sizeof m->cfg.labels[i], "LABEL_%d", i);
        }
    }
    if (c->num_labels > 0) {
        if ((r = linear(m, st, head_prefixes, "classifier", c->num_labels, C, 0, &w->classifier))) return r;
        w->has_classifier = w->classifier.w != NULL;
    }
    if ((r = linear(m, st, head_prefixes, "cls.predictions.transform.dense", C, C, 0, &w->mlm_transform))) return r;
    if (w->mlm_transform.w) {
        if ((r = layernorm(m, st, head_prefixes, "cls.predictions.transform.LayerNorm", C, 1, &w->mlm_ln_g, &w->mlm_ln_b))) return r;
        T1("cls.predictions.bias", c->vocab_size, UP_T_F32, 1, &w->mlm_bias);
        w->has_mlm = 1;
        /* the decoder is tied to the word table: keep it as an operand too */
        if ((r = up_model_operand_copy(m, w->word, (size_t)c->vocab_size * C, &w->word_e))) return r;
    }
    return UP_OK;
}
