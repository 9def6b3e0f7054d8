/*
 * mlm.c: the masked-LM head on selected token rows, forward and backward.
 *
 *   h = hidden_L[rows]            (n,C)
 *   u = h Wt^T + bt;  t = act(u)  (n,C)
 *   z = LN(t)                     (n,C)
 *   logits = z word^T + bias      (n,V)   decoder tied to the word table
 *
 * Only the rows that carry a label are computed: at 15% masking this is the
 * difference between a (B*T, V) and a (0.15 B*T, V) product.
 */
#include <stdlib.h>
#include <string.h>
#include "base/base.h"
#include "kernels/ops.h"
#include "model/model.h"

#define TRY(x) do { up_status s_ = (x); if (s_ != UP_OK) return s_; } while (0)

typedef struct {
    int cap, n;
    int32_t *rows;
    void *he, *ze, *ge;       /* (n,C) operands; ge (n,max(C,V)) gradient operand */
    float *u, *t, *z, *mean, *rstd, *dz, *dt, *du, *dh;
} mlm_state;

static void mlm_state_free(mlm_state *s) {
    if (!s) return;
    free(s->rows); free(s->he); free(s->ze); free(s->ge);
    free(s->u); free(s->t); free(s->z); free(s->mean); free(s->rstd);
    free(s->dz); free(s->dt); free(s->du); free(s->dh);
    free(s);
}

/* grows the head's buffers to n rows (training setup, not a hot path) */
static up_status mlm_reserve(up_run *r, int n) {
    mlm_state *s = r->mlm;
    if (s && s->cap >= n) return UP_OK;
    mlm_state_free(s);
    r->mlm = s = calloc(1, sizeof *s);
    if (!s) return up_fail(UP_ERR_NOMEM, "out of memory for the MLM head");
    size_t C = (size_t)r->m->cfg.hidden_size, V = (size_t)r->m->cfg.vocab_size, N = (size_t)n;
    size_t es = r->m->act_type == UP_T_BF16 ? 2 : 4;
    s->cap = n;
    s->rows = malloc(N * 4);
    s->he = up_aligned_alloc(N * C * es, "mlm");
    s->ze = up_aligned_alloc(N * C * es, "mlm");
    s->ge = up_aligned_alloc(N * (V > C ? V : C) * es, "mlm");
    float **f[] = {&s->u, &s->t, &s->z, &s->dz, &s->dt, &s->du, &s->dh};
    for (size_t i = 0; i < sizeof f / sizeof *f; i++) *f[i] = up_aligned_alloc(N * C * 4, "mlm");
    s->mean = malloc(N * 4);
    s->rstd = malloc(N * 4);
    int ok = s->rows && s->he && s->ze && s->ge && s->mean && s->rstd;
    for (size_t i = 0; i < sizeof f / sizeof *f; i++) ok = ok && *f[i];
    if (!ok) {
        mlm_state_free(s);
        r->mlm = NULL;
        return up_fail(UP_ERR_NOMEM, "out of memory for the MLM head (%d rows)", n);
    }
    return UP_OK;
}

void up_mlm_free(up_run *r) {
    mlm_state_free(r->mlm);
    r->mlm = NULL;
}

static up_actfn act_of(up_act a) {
    return a == UP_ACT_RELU ? UP_ACTFN_RELU : a == UP_ACT_GELU_NEW ? UP_ACTFN_GELU_TANH : UP_ACTFN_GELU;
}

up_status up_mlm_forward(up_run *r, const int32_t *rows, int n, float *logits) {
    const up_model *m = r->m;
    const up_weights *w = &m->w;
    if (!w->has_mlm) return up_fail(UP_ERR_INVALID, "%s has no masked-LM head (cls.predictions.*)", m->dir);
    if (n < 1) return up_fail(UP_ERR_INVALID, "MLM head: no rows");
    TRY(mlm_reserve(r, n));
    mlm_state *s = r->mlm;
    const int C = (int)m->cfg.hidden_size, V = (int)m->cfg.vocab_size, M = r->B * r->T;
    const up_type E = m->act_type;
    const float *hid = r->hidden[m->cfg.num_hidden_layers];
    float *h = s->dh; /* gather into scratch, then the operand copy */
    for (int i = 0; i < n; i++) {
        if (rows[i] < 0 || rows[i] >= M) return up_fail(UP_ERR_INVALID, "MLM row %d outside 0..%d", rows[i], M - 1);
        memcpy(h + (size_t)i * C, hid + (size_t)rows[i] * C, (size_t)C * 4);
    }
    memcpy(s->rows, rows, (size_t)n * 4);
    s->n = n;
    const void *he = h;
    if (E == UP_T_BF16) { up_f32_to_bf16(s->he, h, (size_t)n * C); he = s->he; }
    else { memcpy(s->he, h, (size_t)n * C * 4); he = s->he; }
    up_gemm_args g = up_gemm_plain(n, C, C);
    g.A = he; g.lda = C; g.ta = E;
    g.B = w->mlm_transform.w; g.ldb = C; g.transB = 1; g.tb = w->mlm_transform.wt;
    g.C = s->u; g.ldc = C; g.bias = w->mlm_transform.b;
    TRY(up_gemm(r->gemm, &g));
    up_act_forward(s->t, s->u, (size_t)n * C, act_of(m->cfg.hidden_act));
    up_layernorm_forward(s->z, E == UP_T_BF16 ? s->ze : NULL, s->mean, s->rstd, s->t, w->mlm_ln_g, w->mlm_ln_b,
                         (size_t)n, C, m->cfg.layer_norm_eps);
    const void *ze = s->z;
    if (E == UP_T_BF16) ze = s->ze;
    g = up_gemm_plain(n, V, C);
    g.A = ze; g.lda = C; g.ta = E;
    g.B = w->word_e; g.ldb = C; g.transB = 1; g.tb = E;
    g.C = logits; g.ldc = V; g.bias = w->mlm_bias;
    return up_gemm(r->gemm, &g);
}

up_status up_mlm_backward(up_run *r, const float *dlogits, const up_grads *gr, float *dhidden) {
    mlm_state *s = r->mlm;
    if (!s || !s->n) return up_fail(UP_ERR_INVALID, "up_mlm_backward before up_mlm_forward");
    const up_model *m = r->m;
    const up_weights *w = &m->w;
    const int C = (int)m->cfg.hidden_size, V = (int)m->cfg.vocab_size, n = s->n;
    const up_type E = m->act_type;
    const void *dl = dlogits;
    if (E == UP_T_BF16) { up_f32_to_bf16(s->ge, dlogits, (size_t)n * V); dl = s->ge; }
    /* dz (n,C) = dlogits (n,V) word (V,C) */
    up_gemm_args g = up_gemm_plain(n, C, V);
    g.A = dl; g.lda = V; g.ta = E;
    g.B = w->word_e; g.ldb = C; g.tb = E;
    g.C = s->dz; g.ldc = C;
    TRY(up_gemm(r->gemm, &g));
    /* tied decoder: dword (V,C) += dlogits^T (V,n) z (n,C); dbias += colsum */
    if (gr && gr->word) {
        g = up_gemm_plain(V, C, n);
        g.A = dl; g.lda = V; g.transA = 1; g.ta = E;
        g.B = E == UP_T_BF16 ? s->ze : (const void *)s->z; g.ldb = C; g.tb = E;
        g.C = gr->word; g.ldc = C; g.beta = 1.0f;
        TRY(up_gemm(r->gemm, &g));
    }
    if (gr && gr->mlm_bias) up_bias_backward(gr->mlm_bias, dlogits, (size_t)n, V);
    memset(s->dt, 0, (size_t)n * C * 4);
    up_layernorm_backward(s->dt, gr ? gr->mlm_ln_g : NULL, gr ? gr->mlm_ln_b : NULL, s->dz, s->t, w->mlm_ln_g,
                          s->mean, s->rstd, (size_t)n, C);
    memset(s->du, 0, (size_t)n * C * 4);
    up_act_backward(s->du, s->dt, s->u, (size_t)n * C, act_of(m->cfg.hidden_act));
    const void *due = s->du;
    if (E == UP_T_BF16) { up_f32_to_bf16(s->ge, s->du, (size_t)n * C); due = s->ge; }
    /* dh (n,C) = du Wt;  dWt += du^T h */
    g = up_gemm_plain(n, C, C);
    g.A = due; g.lda = C; g.ta = E;
    g.B = w->mlm_transform.w; g.ldb = C; g.tb = w->mlm_transform.wt;
    g.C = s->dh; g.ldc = C;
    TRY(up_gemm(r->gemm, &g));
    if (gr && gr->mlm_transform.w) {
        g = up_gemm_plain(C, C, n);
        g.A = due; g.lda = C; g.transA = 1; g.ta = E;
        g.B = s->he; g.ldb = C; g.tb = E;
        g.C = gr->mlm_transform.w; g.ldc = C; g.beta = 1.0f;
        TRY(up_gemm(r->gemm, &g));
    }
    if (gr && gr->mlm_transform.b) up_bias_backward(gr->mlm_transform.b, s->du, (size_t)n, C);
    for (int i = 0; i < n; i++) {
        float *d = dhidden + (size_t)s->rows[i] * C;
        const float *src = s->dh + (size_t)i * C;
        for (int k = 0; k < C; k++) d[k] += src[k];
    }
    return UP_OK;
}
