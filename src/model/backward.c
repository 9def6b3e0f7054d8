/*
 * backward.c: the encoder's backward pass, layer by layer in reverse, from
 * what the training-mode forward kept in r->acts (see encoder.c for the
 * forward it mirrors). Weight gradients are optional per tensor (NULL =
 * skip); activation gradients always flow, so prompt tuning and attribution
 * on a frozen backbone cost only them. Every product goes through up_gemm.
 *
 * For a linear y (M,N) = x (M,K) W^T + b, W (N,K):
 *     dx (M,K) += dy (M,N) W (N,K)         dW (N,K) += dy^T (N,M) x (M,K)
 *     db (N)   += column sums of dy
 */
#include <math.h>
#include <string.h>
#include "base/base.h"
#include "kernels/ops.h"
#include "model/model.h"

#define TRY(x) do { up_status s_ = (x); if (s_ != UP_OK) return s_; } while (0)

/* fp32 gradient as a GEMM operand: itself, or its bf16 copy in buf */
static const void *operand(const up_run *r, const float *src, size_t n, void *buf) {
    if (r->m->act_type == UP_T_F32) return src;
    up_f32_to_bf16(buf, src, n);
    return buf;
}

/* dx (M,K) (+)= dy_e (M,N) W (N,K); beta 0 overwrites, 1 accumulates */
static up_status linear_dx(up_run *r, const up_linear *l, const void *dy_e, int M, float *dx, float beta) {
    up_gemm_args g = up_gemm_plain(M, l->in, l->out);
    g.A = dy_e; g.lda = l->out; g.ta = r->m->act_type;
    g.B = l->w; g.ldb = l->in; g.tb = l->wt;
    g.C = dx; g.ldc = l->in; g.tc = UP_T_F32;
    g.beta = beta;
    return up_gemm(r->gemm, &g);
}

/* gW (N,K) += dy_e^T (N,M) x_e (M,K); gb (N) += colsum(dy) */
static up_status linear_dw(up_run *r, const up_linear *l, const void *dy_e, const float *dy, const void *x_e, int M,
                           const up_linear_grad *gr) {
    if (gr->w) {
        up_gemm_args g = up_gemm_plain(l->out, l->in, M);
        g.A = dy_e; g.lda = l->out; g.transA = 1; g.ta = r->m->act_type;
        g.B = x_e; g.ldb = l->in; g.tb = r->m->act_type;
        g.C = gr->w; g.ldc = l->in; g.tc = UP_T_F32;
        g.beta = 1.0f;
        TRY(up_gemm(r->gemm, &g));
    }
    if (gr->b) up_bias_backward(gr->b, dy, (size_t)M, l->out);
    return UP_OK;
}

static const up_linear_grad no_grad = {NULL, NULL};

/* One attention block's backward: from dctx (M,C) fp32 to dqkv (M,3C). */
static up_status attention_backward(up_run *r, const up_acts *a, const float *dctx, int B, int T) {
    const up_config *c = &r->m->cfg;
    const int C = (int)c->hidden_size, NH = (int)c->num_attention_heads, D = C / NH, M = B * T;
    const up_type E = r->m->act_type;
    const size_t es = E == UP_T_BF16 ? 2 : 4;
    const char *qkv = a->qkv;
    const void *dctx_e = operand(r, dctx, (size_t)M * C, r->ge);
    /* dP[b,h] (T,T) = dctx[b,h] (T,D) V[b,h]^T */
    up_gemm_args g = up_gemm_plain(T, T, D);
    g.batch0 = B; g.batch1 = NH;
    g.A = dctx_e; g.lda = C; g.sa0 = (int64_t)T * C; g.sa1 = D; g.ta = E;
    g.B = qkv + 2 * (size_t)C * es; g.ldb = 3 * C; g.transB = 1; g.sb0 = (int64_t)T * 3 * C; g.sb1 = D; g.tb = E;
    g.C = r->dprobs; g.ldc = T; g.sc0 = (int64_t)NH * T * T; g.sc1 = (int64_t)T * T; g.tc = UP_T_F32;
    TRY(up_gemm(r->gemm, &g));
    /* dV[b,h] (T,D) = P[b,h]^T (T,T) dctx[b,h] (T,D) */
    g = up_gemm_plain(T, D, T);
    g.batch0 = B; g.batch1 = NH;
    g.A = a->probs; g.lda = T; g.transA = 1; g.sa0 = (int64_t)NH * T * T; g.sa1 = (int64_t)T * T; g.ta = E;
    g.B = dctx_e; g.ldb = C; g.sb0 = (int64_t)T * C; g.sb1 = D; g.tb = E;
    g.C = r->dqkv + 2 * C; g.ldc = 3 * C; g.sc0 = (int64_t)T * 3 * C; g.sc1 = D; g.tc = UP_T_F32;
    TRY(up_gemm(r->gemm, &g));
    /* dS = softmax backward, with the 1/sqrt(D) scale folded in */
    up_attn_softmax_backward(r->scores, r->dprobs, a->probs32, B, NH, T, 1.0f / sqrtf((float)D));
    const void *ds_e = operand(r, r->scores, (size_t)B * NH * T * T, r->ge2);
    /* dQ[b,h] (T,D) = dS (T,T) K (T,D);  dK[b,h] (T,D) = dS^T (T,T) Q (T,D) */
    for (int which = 0; which < 2; which++) {
        g = up_gemm_plain(T, D, T);
        g.batch0 = B; g.batch1 = NH;
        g.A = ds_e; g.lda = T; g.transA = which; g.sa0 = (int64_t)NH * T * T; g.sa1 = (int64_t)T * T; g.ta = E;
        g.B = qkv + (size_t)(which ? 0 : C) * es; g.ldb = 3 * C; g.sb0 = (int64_t)T * 3 * C; g.sb1 = D; g.tb = E;
        g.C = r->dqkv + (which ? C : 0); g.ldc = 3 * C; g.sc0 = (int64_t)T * 3 * C; g.sc1 = D; g.tc = UP_T_F32;
        TRY(up_gemm(r->gemm, &g));
    }
    return UP_OK;
}

static up_status backward(up_run *r, const float *dlogits, const float *dpooled, const float *dhidden,
                          const up_grads *gr) {
    if (!r->train) return up_fail(UP_ERR_INVALID, "up_backward needs a run in training mode (up_run_set_train)");
    const up_model *m = r->m;
    const up_config *c = &m->cfg;
    const up_weights *w = &m->w;
    const int B = r->B, T = r->T, C = (int)c->hidden_size, M = B * T, L = (int)c->num_hidden_layers;
    const int e_copy = m->act_type == UP_T_BF16;
    static const up_grads none;
    if (!gr) gr = &none;
    if (gr->word && r->n_prompt)
        return up_fail(UP_ERR_INVALID, "word-embedding gradients with a soft prompt: the prompt rows are not words");
    if (dlogits && !w->has_classifier) return up_fail(UP_ERR_INVALID, "dlogits given but the model has no classifier");
    if ((dlogits || dpooled) && !w->has_pooler) return up_fail(UP_ERR_INVALID, "pooler gradient given but the model has no pooler");
    for (int l = 0; l < L; l++)
        if (w->layers[l].qkv.out != 3 * C)
            return up_fail(UP_ERR_UNSUPPORTED, "layer %d keeps %d of %lld attention heads: training through pruned heads "
                           "is not supported (prune heads after any re-tuning)", l, w->layers[l].qkv.out / (3 * C / (int)c->num_attention_heads),
                           (long long)c->num_attention_heads);

    float *dx = r->dx, *dx2 = r->dx2;
    if (dhidden) memcpy(dx, dhidden, (size_t)M * C * sizeof *dx);
    else memset(dx, 0, (size_t)M * C * sizeof *dx);

    /* heads: classifier -> pooler (tanh) -> [CLS] row (or every token: mean pooling) of the last layer */
    if (dlogits || dpooled) {
        float *dp = r->dsum, *dpre = r->dh1, *dcls = r->dqkv; /* (B,C) slices of free scratch */
        if (dpooled) memcpy(dp, dpooled, (size_t)B * C * sizeof *dp);
        else memset(dp, 0, (size_t)B * C * sizeof *dp);
        if (dlogits) {
            int NL = c->num_labels;
            const void *dl_e = operand(r, dlogits, (size_t)B * NL, r->ge);
            TRY(linear_dx(r, &w->classifier, dl_e, B, dp, 1.0f));
            const void *pe = e_copy ? r->pooled_e : (const void *)r->pooled;
            TRY(linear_dw(r, &w->classifier, dl_e, dlogits, pe, B, &gr->classifier));
        }
        memset(dpre, 0, (size_t)B * C * sizeof *dpre);
        up_tanh_backward_from_out(dpre, dp, r->pooled, (size_t)B * C);
        const void *dpre_e = operand(r, dpre, (size_t)B * C, r->ge);
        TRY(linear_dx(r, &w->pooler, dpre_e, B, dcls, 0.0f));
        const void *ce = e_copy ? r->clse : (const void *)r->cls;
        TRY(linear_dw(r, &w->pooler, dpre_e, dpre, ce, B, &gr->pooler));
        for (int b = 0; b < B; b++) {
            int n = w->pool_mean ? r->lens[b] : 1;
            float f = 1.0f / (float)n;
            for (int t = 0; t < n; t++)
                for (int i = 0; i < C; i++) dx[((size_t)b * T + t) * C + i] += f * dcls[(size_t)b * C + i];
        }
    }

    for (int l = L - 1; l >= 0; l--) {
        const up_layer *ly = &w->layers[l];
        const up_acts *a = &r->acts[l];
        const up_layer_grad *lg = gr->layers ? &gr->layers[l] : NULL;
        const float *x = r->hidden[l];
        const void *xe = e_copy ? a->xe : (const void *)x;
        const void *h1e = e_copy ? a->h1e : (const void *)a->h1;
        int F = ly->ffn_in.out;
        /* output LayerNorm: dsum2 = LN2'(dx); the residual hands it to h1 */
        memset(r->dsum, 0, (size_t)M * C * sizeof(float));
        up_layernorm_backward(r->dsum, lg ? lg->ln2_g : NULL, lg ? lg->ln2_b : NULL, dx, a->sum2, ly->ln2_g, a->mean2,
                              a->rstd2, (size_t)M, C);
        memcpy(r->dh1, r->dsum, (size_t)M * C * sizeof(float));
        if (F > 0 && ly->ffn_in.w) {
            const void *ds_e = operand(r, r->dsum, (size_t)M * C, r->ge);
            /* df = dsum2 W2: the gradient of the FFN activations (attribution reads it) */
            TRY(linear_dx(r, &ly->ffn_out, ds_e, M, r->df, 0.0f));
            TRY(linear_dw(r, &ly->ffn_out, ds_e, r->dsum, a->f, M, lg ? &lg->ffn_out : &no_grad));
            if (r->keep_dffn) memcpy(r->dffn[l], r->df, (size_t)M * F * sizeof(float));
            if (r->ffn_scale) { /* the forward used s * act(u): the chain rule multiplies by s */
                const float *s = r->ffn_scale + (size_t)l * c->intermediate_size;
                for (size_t i = 0; i < (size_t)M; i++)
                    for (int j = 0; j < F; j++) r->df[i * F + j] *= s[j];
            }
            memset(r->du, 0, (size_t)M * F * sizeof(float));
            up_act_backward(r->du, r->df, a->u, (size_t)M * F,
                            c->hidden_act == UP_ACT_RELU ? UP_ACTFN_RELU
                            : c->hidden_act == UP_ACT_GELU_NEW ? UP_ACTFN_GELU_TANH : UP_ACTFN_GELU);
            const void *du_e = operand(r, r->du, (size_t)M * F, r->ge);
            TRY(linear_dx(r, &ly->ffn_in, du_e, M, r->dh1, 1.0f));
            TRY(linear_dw(r, &ly->ffn_in, du_e, r->du, h1e, M, lg ? &lg->ffn_in : &no_grad));
        } else if (lg && lg->ffn_out.b) {
            up_bias_backward(lg->ffn_out.b, r->dsum, (size_t)M, C);
        }
        /* attention LayerNorm: dsum1 = LN1'(dh1); the residual hands it to x */
        memset(r->dsum, 0, (size_t)M * C * sizeof(float));
        up_layernorm_backward(r->dsum, lg ? lg->ln1_g : NULL, lg ? lg->ln1_b : NULL, r->dh1, a->sum1, ly->ln1_g,
                              a->mean1, a->rstd1, (size_t)M, C);
        memcpy(dx2, r->dsum, (size_t)M * C * sizeof(float));
        /* dctx = dsum1 Wo (into dh1, free now) */
        const void *ds1_e = operand(r, r->dsum, (size_t)M * C, r->ge);
        TRY(linear_dx(r, &ly->o, ds1_e, M, r->dh1, 0.0f));
        TRY(linear_dw(r, &ly->o, ds1_e, r->dsum, a->ctx, M, lg ? &lg->o : &no_grad));
        if (r->keep_dffn) memcpy(r->dctx[l], r->dh1, (size_t)M * C * sizeof(float));
        if (r->head_scale) { /* the forward used s * head output: the chain rule multiplies by s */
            const int NH = (int)c->num_attention_heads, D = C / NH;
            for (size_t i = 0; i < (size_t)M; i++)
                for (int j = 0; j < C; j++) r->dh1[i * C + j] *= r->head_scale[(size_t)l * NH + j / D];
        }
        TRY(attention_backward(r, a, r->dh1, B, T));
        /* dx += dqkv Wqkv */
        const void *dq_e = operand(r, r->dqkv, (size_t)M * 3 * C, r->ge);
        TRY(linear_dx(r, &ly->qkv, dq_e, M, dx2, 1.0f));
        TRY(linear_dw(r, &ly->qkv, dq_e, r->dqkv, xe, M, lg ? &lg->qkv : &no_grad));
        float *t = dx; dx = dx2; dx2 = t;
        /* deep prompt: this layer's input rows 1..P were the prompt's slice l, not the layer below's output */
        if (l > 0 && l < r->prompt_layers) {
            const int P = r->n_prompt;
            for (int b = 0; b < B; b++) {
                float *src = dx + ((size_t)b * T + 1) * C;
                if (gr->prompt) {
                    float *dst = gr->prompt + (size_t)l * P * C;
                    for (size_t i = 0; i < (size_t)P * C; i++) dst[i] += src[i];
                }
                memset(src, 0, (size_t)P * C * sizeof *src);
            }
        }
    }

    /* embeddings: LayerNorm, then the three lookups */
    memset(r->dembeds, 0, (size_t)M * C * sizeof(float));
    up_layernorm_backward(r->dembeds, gr->emb_ln_g, gr->emb_ln_b, dx, r->emb_sum, w->emb_ln_g, r->emb_mean,
                          r->emb_rstd, (size_t)M, C);
    if (gr->word || gr->pos || gr->type)
        up_embed_backward(gr->word, gr->pos, gr->type, r->dembeds, r->ids, r->type_ids, B, T, C);
    /* the prompt's first slice: its rows of the embedding gradient, summed over the batch */
    for (int b = 0; gr->prompt && b < B; b++) {
        const float *src = r->dembeds + ((size_t)b * T + 1) * C;
        for (size_t i = 0; i < (size_t)r->n_prompt * C; i++) gr->prompt[i] += src[i];
    }
    return UP_OK;
}

const float *up_run_grad_embeds(const up_run *r) { return r->train ? r->dembeds : NULL; }
const float *up_run_grad_ctx(const up_run *r, int layer) {
    if (!r->keep_dffn || layer < 0 || layer >= r->m->cfg.num_hidden_layers) return NULL;
    return r->dctx[layer];
}

const void *up_run_ctx(const up_run *r, int layer) {
    if (!r->train || layer < 0 || layer >= r->m->cfg.num_hidden_layers) return NULL;
    return r->acts[layer].ctx;
}

int up_run_ctx_bf16(const up_run *r) { return r->m->act_type == UP_T_BF16; }

const float *up_run_grad_ffn(const up_run *r, int layer) {
    if (!r->keep_dffn || layer < 0 || layer >= r->m->cfg.num_hidden_layers) return NULL;
    return r->dffn[layer];
}

up_status up_backward(up_run *r, const float *dlogits, const float *dpooled, const float *dhidden,
                      const up_grads *gr) {
    if (!r || !r->m) return up_fail(UP_ERR_INVALID, "up_backward: no run");
    int prev = up_threads_enter(r->m);
    up_status st = backward(r, dlogits, dpooled, dhidden, gr);
    up_threads_leave(r->m, prev);
    return st;
}
