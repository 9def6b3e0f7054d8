/*
 * encoder.c: the forward pass of a BERT-style encoder over a padded batch,
 * shared by every family. All matrix products go through up_gemm; all
 * buffers live in the run, allocated once in up_run_new.
 *
 * Per layer, with E the operand type (bf16 or fp32) and x the fp32 residual:
 *   qkv = x Wq|Wk|Wv + b             (B,T,3C) E
 *   S   = Q K^T                      (B,NH,T,T) fp32, batched over (b, h)
 *   P   = softmax(S / sqrt(D) + key mask)  (B,NH,T,T) E
 *   ctx = P V                        (B,T,C) E
 *   h1  = LN(ctx Wo + bo + x)        (B,T,C) fp32 (+ E copy)
 *   f   = act(h1 W1 + b1)            (B,T,F) E   <- the FFN activations
 *   x'  = LN(f W2 + b2 + h1)         (B,T,C) fp32 (+ E copy)
 *
 * Inference (not training, no head probe) lays Q, K, V out for the AMX
 * batched products instead (attn_infer): Q stays (B,T,A), K and V become
 * head-major planes (B,NH,T,D); oneDNN runs the strided (B,T,3C) layout on
 * its slow generic path (measured: QK^T 0.72 -> 0.34 ms, PV 0.31 -> 0.11 ms
 * per layer at 32 x 128). Two biases are exact to drop from the products:
 * the key bias adds a constant to each row of scores, which softmax removes,
 * and the value bias passes through P unchanged (rows of P sum to 1), so it
 * joins the output bias: bo' = bo + Wo bv.
 *
 * int8 weights run attention in int8 (attn_int8): Q, K, V as int8 planes
 * (B,NH,T,D) with a scale per (row, head), P as uint8 with a factor per row.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <omp.h>
#include "base/base.h"
#include "kernels/ops.h"
#include "model/model.h"

#define MAX_BATCH 4096

static up_epi act_epi(up_act a) {
    return a == UP_ACT_RELU ? UP_EPI_RELU : a == UP_ACT_GELU_NEW ? UP_EPI_GELU_TANH : UP_EPI_GELU;
}
static up_actfn act_fn(up_act a) {
    return a == UP_ACT_RELU ? UP_ACTFN_RELU : a == UP_ACT_GELU_NEW ? UP_ACTFN_GELU_TANH : UP_ACTFN_GELU;
}

static void static_ranges_init(up_run *r);

/* carve: bump allocation from the run's single arena (64-byte aligned slices) */
typedef struct { char *base; size_t off, cap; } carver;
static void *carve(carver *c, size_t bytes) {
    size_t a = (bytes + 63) & ~(size_t)63;
    if (!c->base) { c->off += a; return NULL; }
    void *p = c->base + c->off;
    c->off += a;
    return p;
}

/* Lays out (or, with cv->base == NULL, sizes) every buffer of the run. */
static void run_layout(up_run *r, carver *cv) {
    const up_config *c = &r->shape;
    size_t B = (size_t)r->max_B, T = (size_t)r->max_T, C = (size_t)c->hidden_size,
           F = (size_t)c->intermediate_size, NH = (size_t)c->num_attention_heads, L = (size_t)c->num_hidden_layers;
    size_t es = r->shape_act == UP_T_BF16 ? 2 : 4, BT = B * T, BTC = BT * C, BTF = BT * F, P = B * NH * T * T;
    int e_copy = r->shape_act == UP_T_BF16, tr = r->train, keep = r->keep_all || tr;
    void *p;
#define SET(lv, bytes) do { p = carve(cv, (bytes)); if (cv->base) (lv) = (void *)p; } while (0)
    size_t nh = keep ? L + 1 : 2;
    for (size_t i = 0; i < nh; i++) {
        SET(p, BTC * 4);
        if (cv->base)
            for (size_t l = i; l <= L; l += nh) r->hidden[l] = p;
    }
    /* per-layer activations: one set shared by all layers unless training */
    for (size_t l = 0; l < L; l++) {
        up_acts *a = &r->acts[l];
        if (l == 0 || tr) {
            SET(a->xe, e_copy ? BTC * es : 0);
            SET(a->qkv, 3 * BTC * es);
            SET(a->probs, P * es);
            SET(a->probs32, tr && e_copy ? P * 4 : 0);
            SET(a->ctx, BTC * es);
            SET(a->sum1, BTC * 4);
            SET(a->mean1, tr ? BT * 4 : 0);
            SET(a->rstd1, tr ? BT * 4 : 0);
            SET(a->h1, BTC * 4);
            SET(a->h1e, e_copy ? BTC * es : 0);
            SET(a->u, tr ? BTF * 4 : 0);
            SET(a->f, BTF * es);
            SET(a->sum2, BTC * 4);
            SET(a->mean2, tr ? BT * 4 : 0);
            SET(a->rstd2, tr ? BT * 4 : 0);
            if (cv->base) {
                if (!e_copy) { a->xe = NULL; a->h1e = NULL; a->probs32 = a->probs; }
                if (!tr) { a->mean1 = a->rstd1 = a->mean2 = a->rstd2 = NULL; a->u = NULL; }
            }
        } else if (cv->base) {
            r->acts[l] = r->acts[0];
        }
        /* fp32 FFN activations per layer when kept */
        if (keep) {
            if (e_copy || !tr) SET(a->f32, BTF * 4);
            else if (cv->base) a->f32 = a->f;           /* fp32 training: f is per layer already */
            if (!e_copy && !tr && cv->base) a->f = a->f32; /* fp32 keep_all: write f per layer */
        } else if (cv->base) a->f32 = NULL;
    }
    size_t Q = 3 * C > F ? 3 * C : F;
    const int q8 = r->shape_wt == UP_T_S8;
    SET(r->xq, q8 ? BT * Q : 0);
    SET(r->rlo, q8 ? BT * 4 : 0);
    SET(r->rhi, q8 ? BT * 4 : 0);
    SET(r->xs, q8 ? BT * 4 : 0);
    SET(r->hs, q8 ? 4 * B * NH * T * 4 : 0);
    SET(r->scores, P * 4);
    SET(r->obias, C * 4);
    SET(r->emb_sum, BTC * 4);
    SET(r->emb_mean, tr ? BT * 4 : 0);
    SET(r->emb_rstd, tr ? BT * 4 : 0);
    SET(r->cls, B * C * 4);
    SET(r->clse, B * C * es);
    SET(r->pooled, B * C * 4);
    SET(r->pooled_e, B * C * es);
    SET(r->logits, B * (size_t)(c->num_labels > UP_MAX_LABELS ? c->num_labels : UP_MAX_LABELS) * 4);
    if (tr) {
        size_t G = 3 * C > F ? 3 * C : F;
        SET(r->dx, BTC * 4);
        SET(r->dx2, BTC * 4);
        SET(r->dsum, BTC * 4);
        SET(r->dh1, BTC * 4);
        SET(r->dqkv, 3 * BTC * 4);
        SET(r->dprobs, P * 4);
        SET(r->df, BTF * 4);
        SET(r->du, BTF * 4);
        SET(r->ge, e_copy ? BT * G * es : 0);
        SET(r->ge2, e_copy ? P * es : 0);
        SET(r->dembeds, BTC * 4);
        for (size_t l = 0; l < L; l++) {
            if (r->keep_dffn) { SET(r->dffn[l], BTF * 4); SET(r->dctx[l], BTC * 4); }
            else if (cv->base) r->dffn[l] = r->dctx[l] = NULL;
        }
    }
#undef SET
}

/* (Re)builds the arena for the run's current modes (not in any hot path). */
static up_status run_alloc(up_run *r) {
    free(r->arena);
    r->arena = NULL;
    carver cv = {0};
    run_layout(r, &cv);
    r->arena = up_aligned_alloc(cv.off, "run buffers");
    if (!r->arena) return UP_ERR_NOMEM;
    cv = (carver){r->arena, 0, cv.off};
    run_layout(r, &cv);
    return UP_OK;
}

up_status up_run_new(const up_model *m, int max_B, int max_T, up_run **out) {
    *out = NULL;
    const up_config *c = &m->cfg;
    if (max_B < 1 || max_B > MAX_BATCH)
        return up_fail(UP_ERR_INVALID, "batch size must be 1..%d, got %d", MAX_BATCH, max_B);
    if (max_T < 1 || max_T > c->max_position_embeddings)
        return up_fail(UP_ERR_INVALID, "sequence length must be 1..%lld (max_position_embeddings), got %d",
                       (long long)c->max_position_embeddings, max_T);
    up_run *r = up_calloc(1, sizeof *r, "run");
    if (!r) return UP_ERR_NOMEM;
    r->m = m;
    r->shape = m->cfg;
    r->shape_act = m->act_type;
    r->shape_wt = m->wtype;
    r->max_B = max_B;
    r->max_T = max_T;
    size_t L = (size_t)c->num_hidden_layers;
    r->hidden = up_calloc(L + 1, sizeof(float *), "hidden pointers");
    r->acts = up_calloc(L, sizeof(up_acts), "layer activations");
    r->dffn = up_calloc(L, sizeof(float *), "ffn gradient pointers");
    r->dctx = up_calloc(L, sizeof(float *), "context gradient pointers");
    up_status st = r->hidden && r->acts && r->dffn && r->dctx ? up_gemm_ctx_new(m->backend, m->threads, &r->gemm) : UP_ERR_NOMEM;
    if (st == UP_OK) st = run_alloc(r);
    if (st != UP_OK) {
        up_run_free(r);
        return st;
    }
    static_ranges_init(r);
    *out = r;
    return UP_OK;
}

up_status up_run_use(up_run *r, const up_model *m) {
    const up_config *a = &r->shape, *b = &m->cfg;
    if (a->hidden_size != b->hidden_size || a->num_hidden_layers != b->num_hidden_layers ||
        a->num_attention_heads != b->num_attention_heads || a->intermediate_size < b->intermediate_size ||
        a->max_position_embeddings < b->max_position_embeddings || r->shape_act != m->act_type ||
        r->shape_wt != m->wtype || b->num_labels > UP_MAX_LABELS)
        return up_fail(UP_ERR_INVALID, "the run was sized for another model (%lld x %lld, F %lld, %s operands)",
                       (long long)a->num_hidden_layers, (long long)a->hidden_size, (long long)a->intermediate_size,
                       r->shape_wt == UP_T_S8 ? "int8" : r->shape_act == UP_T_BF16 ? "bf16" : "fp32");
    r->m = m;
    return UP_OK;
}

void up_run_keep_all(up_run *r, int keep) {
    if (!!keep == r->keep_all) return;
    r->keep_all = !!keep;
    if (run_alloc(r) != UP_OK) {
        up_log(UP_LOG_ERROR, "%s", up_errmsg());
        r->keep_all = 0;
        run_alloc(r);
    }
}

up_status up_run_set_train(up_run *r, int train, int keep_dffn) {
    if (train && r->shape_wt == UP_T_S8)
        return up_fail(UP_ERR_UNSUPPORTED, "int8 is an inference precision: training, tuning and attribution run in "
                       "fp32 or bf16 (--precision fp32|bf16|auto)");
    r->train = !!train;
    r->keep_dffn = train && keep_dffn;
    up_status st = run_alloc(r);
    if (st != UP_OK) {
        r->train = r->keep_dffn = 0;
        run_alloc(r);
    }
    return st;
}

void up_run_free(up_run *r) {
    if (!r) return;
    if (r->sr_mode == 1) { /* the static-range experiment's calibration */
        FILE *f = fopen(r->sr_path, "w");
        for (int i = 0; f && i < 4 * 4 * 64; i++) fprintf(f, "%g\n", r->sr[i]);
        if (f) fclose(f);
    }
    up_mlm_free(r);
    up_gemm_ctx_free(r->gemm);
    free(r->hidden);
    free(r->acts);
    free(r->dffn);
    free(r->dctx);
    free(r->arena);
    free(r);
}

/* int8 products. Each row of x (M,in) is quantized to uint8 with its own
 * range (offset rlo[m] = min(row, 0), step (max(row, 0) - rlo[m]) / 255),
 * oneDNN gives the plain integer sums, and up_dequant_act applies the
 * scales, offsets, bias, activation and residual: oneDNN 2.6 runs its fast
 * int8 kernels only with one scale for all rows, and its post-ops were
 * slower than that pass. Measured on all-MiniLM-L6-v2's TREC models,
 * emulated in fp32: one range for the whole input gave 93.80 (tuned) and
 * 92.60 (expert), a range per row 94.60 and 93.60 (fp32: 94.40, 93.40);
 * the [CLS] rows span 4-7x the other rows' range. A row's result depends
 * on that row alone, not on what else is in its batch (up to the fp32
 * rounding of the pooler and classifier, whose blocking follows the batch).
 * A product with an activation (the FFN's first) leaves its output's row
 * ranges for the next (the FFN's second). */
#define TRY(x) do { up_status s_ = (x); if (s_ != UP_OK) return s_; } while (0)
static up_actfn epi_fn(up_epi e) {
    return e == UP_EPI_NONE ? UP_ACTFN_NONE : e == UP_EPI_RELU ? UP_ACTFN_RELU : e == UP_EPI_GELU_TANH
         ? UP_ACTFN_GELU_TANH : e == UP_EPI_TANH ? UP_ACTFN_TANH : UP_ACTFN_GELU;
}

/* x quantized per row into xq, then g (l's product over M rows) gives the
 * plain integer sums into g.C; e gets what their epilogue needs but act and add */
/* Static ranges, an experiment (docs/RESULTS.md, int8) behind the
 * environment's UP_INT8_RANGES: "calibrate:FILE" widens each product's two
 * ranges (the [CLS] rows', position 0, and the other real rows') over every
 * forward and writes them to FILE when the run is freed; "static:FILE"
 * quantizes every row with its product's ranges from FILE instead of its
 * own. Products are numbered in forward order; one group, no training. */
static void static_ranges_init(up_run *r) {
    const char *v = getenv("UP_INT8_RANGES");
    r->sr_mode = 0;
    if (!v || r->shape_wt != UP_T_S8) return;
    int cal = !strncmp(v, "calibrate:", 10), st = !strncmp(v, "static:", 7);
    if (!cal && !st) return;
    snprintf(r->sr_path, sizeof r->sr_path, "%s", v + (cal ? 10 : 7));
    for (int i = 0; i < 4 * 4 * 64; i++) r->sr[i] = 0.0f;
    if (st) {
        FILE *f = fopen(r->sr_path, "r");
        int n = 0;
        while (f && n < 4 * 4 * 64 && fscanf(f, "%f", &r->sr[n]) == 1)
            if (!isfinite(r->sr[n++])) r->sr[n - 1] = 0.0f; /* a range end that is not a number: 0 */
        if (f) fclose(f);
        if (n == 0) return;
    }
    r->sr_mode = cal ? 1 : 2;
}

static void static_ranges(up_run *r, int M) {
    const int k = r->sr_k++, T = r->T;
    if (k >= 4 * 64 || M != r->B * T) return;
    float *sr = r->sr + 4 * k;
    for (int m = 0; m < M; m++) {
        float *p = sr + (m % T == 0 ? 0 : 2);
        if (r->sr_mode == 1) { /* padding rows take no part */
            if (m % T >= r->lens[m / T]) continue;
            p[0] = r->rlo[m] < p[0] ? r->rlo[m] : p[0];
            p[1] = r->rhi[m] > p[1] ? r->rhi[m] : p[1];
        } else {
            r->rlo[m] = p[0], r->rhi[m] = p[1];
        }
    }
}

static up_status int8_product(up_run *r, const up_linear *l, up_gemm_args g, const float *x, int64_t ldx, int M,
                              up_int8_epi *e) {
    const int stat = r->sr_mode == 2 && M == r->B * r->T && r->sr_k < 4 * 64; /* its ranges replace the rows' own */
    if ((x != r->ranged && !stat) || r->sr_mode == 1) up_row_ranges(r->rlo, r->rhi, x, (size_t)M, l->in, ldx);
    r->ranged = NULL;
    if (r->sr_mode) static_ranges(r, M);
    for (int m = 0; m < M; m++) r->xs[m] = (r->rhi[m] - r->rlo[m]) / 255.0f;
    up_quant_u8(r->xq, x, (size_t)M, l->in, ldx, r->rlo, r->xs);
    *e = (up_int8_epi){r->xs, r->rlo, l->ws, l->wsum, l->b, UP_ACTFN_NONE, NULL, 0};
    g.A = r->xq; g.lda = l->in; g.ta = UP_T_U8;
    g.bias = NULL; g.act = UP_EPI_NONE; g.add = NULL;
    return up_gemm(r->gemm, &g);
}

static up_status linear_int8(up_run *r, const up_linear *l, up_gemm_args g, const float *x, int64_t ldx, int M) {
    up_int8_epi e;
    TRY(int8_product(r, l, g, x, ldx, M, &e));
    e.act = epi_fn(g.act);
    e.add = g.add; /* read after the product wrote y: it may not overlap y */
    e.ldadd = g.ldadd;
    const int ranges = e.act != UP_ACTFN_NONE; /* (the FFN's first product: its output is the second's input) */
    /* the output ranges overwrite the input's: each row reads its own offset before its range is written */
    up_dequant_act((float *)g.C, g.ldc, (size_t)M, l->out, &e, ranges ? r->rlo : NULL, ranges ? r->rhi : NULL);
    if (ranges) r->ranged = (const float *)g.C;
    return UP_OK;
}

/* y (M,out) = act(x (M,in) W^T + b) + add; int8 weights quantize x first (linear_int8) */
static up_gemm_args linear_args(const up_run *r, const up_linear *l, const void *x, int64_t ldx, int M, void *y,
                                int64_t ldy, up_type ty, up_epi act, const float *add, int64_t ldadd) {
    up_gemm_args g = up_gemm_plain(M, l->out, l->in);
    g.A = x; g.lda = ldx; g.ta = r->m->act_type;
    g.B = l->w; g.ldb = l->in; g.transB = 1; g.tb = l->wt; g.b_const = 1;
    g.C = y; g.ldc = ldy; g.tc = ty;
    g.bias = l->b;
    g.act = act;
    g.add = add; g.ldadd = ldadd;
    return g;
}

static up_status linear_fwd(up_run *r, const up_linear *l, const void *x, int64_t ldx, int M, void *y,
                            int64_t ldy, up_type ty, up_epi act, const float *add, int64_t ldadd) {
    up_gemm_args g = linear_args(r, l, x, ldx, M, y, ldy, ty, act, add, ldadd);
    if (l->wt == UP_T_S8) return linear_int8(r, l, g, x, ldx, M);
    r->ranged = NULL;
    return up_gemm(r->gemm, &g);
}

up_status up_linear_forward(up_run *r, const up_linear *l, const float *x, int64_t ldx, int M, float *y, int64_t ldy,
                            int gelu) {
    int64_t C = r->shape.hidden_size, Q = 3 * C > r->shape.intermediate_size ? 3 * C : r->shape.intermediate_size;
    if (M < 1 || M > r->max_B * r->max_T || l->in > Q || l->out > Q || r->shape_act != UP_T_F32 ||
        (l->wt == UP_T_S8) != (r->shape_wt == UP_T_S8))
        return up_fail(UP_ERR_INVALID, "up_linear_forward: %d x %d -> %d does not fit the run (or its precision)", M,
                       l->in, l->out);
    r->ranged = NULL;
    return linear_fwd(r, l, x, ldx, M, y, ldy, UP_T_F32, gelu ? UP_EPI_GELU : UP_EPI_NONE, NULL, 0);
}

static up_status check_batch(const up_run *r, const up_batch *b) {
    const up_config *c = &r->m->cfg;
    if (b->prompt && (b->n_prompt < 1 || 1 + b->n_prompt > b->T))
        return up_fail(UP_ERR_INVALID, "%d prompt vectors do not fit rows of %d tokens after [CLS]", b->n_prompt, b->T);
    if (b->prompt && (b->prompt_layers < 0 || b->prompt_layers > c->num_hidden_layers))
        return up_fail(UP_ERR_INVALID, "deep prompt over %d layers, the model has %lld", b->prompt_layers,
                       (long long)c->num_hidden_layers);
    for (int i = 0; b->prompt && i < b->B; i++)
        if (b->lens[i] < 1 + b->n_prompt)
            return up_fail(UP_ERR_INVALID, "row %d: length %d is shorter than [CLS] + %d prompt vectors", i, b->lens[i],
                           b->n_prompt);
    if (b->B < 1 || b->B > r->max_B || b->T < 1 || b->T > r->max_T)
        return up_fail(UP_ERR_INVALID, "batch %dx%d does not fit the run's %dx%d", b->B, b->T, r->max_B, r->max_T);
    for (int i = 0; i < b->B; i++) {
        if (b->lens[i] < 1 || b->lens[i] > b->T)
            return up_fail(UP_ERR_INVALID, "row %d: length %d outside 1..%d", i, b->lens[i], b->T);
        for (int t = 0; t < b->T; t++) {
            int32_t id = b->ids[(size_t)i * b->T + t];
            if (id < 0 || id >= c->vocab_size)
                return up_fail(UP_ERR_INVALID, "row %d position %d: token id %d outside 0..%lld", i, t, id,
                               (long long)c->vocab_size - 1);
            if (b->type_ids) {
                int32_t ty = b->type_ids[(size_t)i * b->T + t];
                if (ty < 0 || ty >= c->type_vocab_size)
                    return up_fail(UP_ERR_INVALID, "row %d position %d: token type %d outside 0..%lld", i, t, ty,
                                   (long long)c->type_vocab_size - 1);
            }
        }
    }
    return UP_OK;
}


/* x (M,F) of type t: column j times s[j] (the ffn_scale probe) */
static void scale_cols(void *x, up_type t, const float *s, int M, int F) {
    for (size_t m = 0; m < (size_t)M; m++)
        for (int j = 0; j < F; j++) {
            size_t k = m * F + j;
            if (t == UP_T_BF16) ((uint16_t *)x)[k] = up_bf16_from(up_bf16_scalar(((uint16_t *)x)[k]) * s[j]);
            else ((float *)x)[k] *= s[j];
        }
}

void up_run_set_ffn_scale(up_run *r, const float *scale) { r->ffn_scale = scale; }
void up_run_set_head_scale(up_run *r, const float *scale) { r->head_scale = scale; }

/* x[off .. off+n) of type t times s */
static void scale_span(void *x, up_type t, size_t off, int n, float s) {
    for (size_t k = off; k < off + (size_t)n; k++)
        if (t == UP_T_BF16) ((uint16_t *)x)[k] = up_bf16_from(up_bf16_scalar(((uint16_t *)x)[k]) * s);
        else ((float *)x)[k] *= s;
}

/* the head probe: head h's output, columns [h D, (h+1) D) of ctx (M, nh D), times head_scale[l NH + h] */
static void head_probe(const up_run *r, int l, void *ctx, up_type t, int M, int nh, int D) {
    const float *f = r->head_scale + (size_t)l * r->m->cfg.num_attention_heads;
    for (int h = 0; h < nh; h++)
        for (size_t i = 0; i < (size_t)M; i++) scale_span(ctx, t, i * nh * D + (size_t)h * D, D, f[h]);
}

/* The attention core shared by both layouts: S = Q K^T per (b, h), masked
 * softmax into a->probs (and the fp32 copy training keeps), ctx = P V.
 * Q[b,h] starts at q + (b sq0 + h D) elements with rows ldq apart; K[b,h]
 * and V[b,h] at k, v + (b skv0 + h skv1) with rows ldkv apart. */
static up_status attn_core(up_run *r, up_acts *a, const up_batch *b, int nh, int D, const char *q, int64_t ldq,
                           int64_t sq0, const char *k, const char *v, int64_t ldkv, int64_t skv0, int64_t skv1) {
    const int B = b->B, T = b->T, A = nh * D;
    const up_type E = r->m->act_type;
    const int e_copy = E == UP_T_BF16;
    up_gemm_args g = up_gemm_plain(T, T, D);
    g.batch0 = B; g.batch1 = nh;
    g.A = q; g.lda = ldq; g.sa0 = sq0; g.sa1 = D; g.ta = E;
    g.B = k; g.ldb = ldkv; g.transB = 1; g.sb0 = skv0; g.sb1 = skv1; g.tb = E;
    g.C = r->scores; g.ldc = T; g.sc0 = (int64_t)nh * T * T; g.sc1 = (int64_t)T * T; g.tc = UP_T_F32;
    TRY(up_gemm(r->gemm, &g));
    float *p32 = r->train ? a->probs32 : (e_copy ? NULL : (float *)a->probs);
    up_attn_softmax_forward(p32, p32 ? NULL : a->probs, r->scores, b->lens, B, nh, T, 1.0f / sqrtf((float)D));
    if (p32 && e_copy) up_f32_to_bf16(a->probs, p32, (size_t)B * nh * T * T);
    /* ctx[b,:,h] (T,D) = P[b,h] (T,T) V[b,h] (T,D) */
    g = up_gemm_plain(T, D, T);
    g.batch0 = B; g.batch1 = nh;
    g.A = a->probs; g.lda = T; g.sa0 = (int64_t)nh * T * T; g.sa1 = (int64_t)T * T; g.ta = E;
    g.B = v; g.ldb = ldkv; g.sb0 = skv0; g.sb1 = skv1; g.tb = E;
    g.C = a->ctx; g.ldc = A; g.sc0 = (int64_t)T * A; g.sc1 = D; g.tc = E;
    return up_gemm(r->gemm, &g);
}

/* The training layout: Q, K, V side by side in one (B,T,3A) buffer, the one
 * the backward reads, and probabilities kept per layer. */
static up_status attn_train(up_run *r, int l, up_acts *a, const void *xe, const float *x, const up_batch *b, int nh) {
    const up_layer *ly = &r->m->w.layers[l];
    const up_config *c = &r->m->cfg;
    const int B = b->B, T = b->T, C = (int)c->hidden_size, D = C / (int)c->num_attention_heads, A = nh * D;
    const up_type E = r->m->act_type;
    const size_t es = E == UP_T_BF16 ? 2 : 4;
    char *qkv = a->qkv;
    TRY(linear_fwd(r, &ly->qkv, xe, C, B * T, qkv, 3 * A, E, UP_EPI_NONE, NULL, 0));
    const int64_t ld = 3 * A, s0 = (int64_t)T * 3 * A;
    TRY(attn_core(r, a, b, nh, D, qkv, ld, s0, qkv + (size_t)A * es, qkv + 2 * (size_t)A * es, ld, s0, D));
    if (r->head_scale) head_probe(r, l, a->ctx, E, B * T, nh, D);
    /* sum1 = ctx Wo + bo + x */
    return linear_fwd(r, &ly->o, a->ctx, A, B * T, a->sum1, C, UP_T_F32, UP_EPI_NONE, x, C);
}

UP_CLONES
static void fold_value_bias(float *out, const up_linear *o, const float *bv, int C, int A) {
    const void *wo = o->w;
    for (int i = 0; i < C; i++) {
        float s = 0;
        if (o->wt == UP_T_BF16) {
            const uint16_t *w = (const uint16_t *)wo + (size_t)i * A;
#pragma omp simd reduction(+ : s)
            for (int k = 0; k < A; k++) s += up_bf16_scalar(w[k]) * bv[k];
        } else {
            const float *w = (const float *)wo + (size_t)i * A;
#pragma omp simd reduction(+ : s)
            for (int k = 0; k < A; k++) s += w[k] * bv[k];
        }
        out[i] = o->b[i] + s;
    }
}

/* int8 attention (int8 weights). The QKV product's epilogue writes Q, K
 * and V straight to int8 head-major planes (B,nh,T,D), each (row, head)
 * with its own scale (up_dequant_heads_s8): no fp32 Q, K, V, and oneDNN
 * runs its VNNI kernels on such planes (its generic path on the strided
 * (B,T,3A) layout). S = Q K^T are integer sums whose scales the softmax
 * applies; it folds V's scales into P and writes P to uint8 with a factor
 * per row (up_attn_softmax_u8); ctx = factor (P8 V8). */
static up_status attn_int8(up_run *r, int l, up_acts *a, const float *x, const up_batch *b, int nh) {
    const up_layer *ly = &r->m->w.layers[l];
    const up_config *c = &r->m->cfg;
    const int B = b->B, T = b->T, C = (int)c->hidden_size, D = C / (int)c->num_attention_heads, A = nh * D;
    float *acc = (float *)a->qkv;
    up_int8_epi e;
    up_gemm_args g = linear_args(r, &ly->qkv, x, C, B * T, acc, 3 * A, UP_T_F32, UP_EPI_NONE, NULL, 0);
    TRY(int8_product(r, &ly->qkv, g, x, C, B * T, &e));

    /* the planes in xq (the product's input, consumed); the output product quantizes there only after P V */
    const size_t plane = (size_t)B * T * A, bnt = (size_t)B * nh * T;
    int8_t *qp = (int8_t *)r->xq, *kp = qp + plane, *vp = kp + plane;
    float *sq = r->hs, *sk = sq + bnt, *sv = sk + bnt, *rowf = sv + bnt;
    up_dequant_heads_s8(qp, sq, acc, 3 * A, B, T, 3, nh, D, &e);
    const int64_t sh = (int64_t)T * D, sb = (int64_t)nh * T * D; /* plane strides: head, batch row */
    /* S[b,h] (T,T) = Q[b,h] (T,D) K[b,h]^T */
    g = up_gemm_plain(T, T, D);
    g.batch0 = B; g.batch1 = nh;
    g.A = qp; g.lda = D; g.sa0 = sb; g.sa1 = sh; g.ta = UP_T_S8;
    g.B = kp; g.ldb = D; g.transB = 1; g.sb0 = sb; g.sb1 = sh; g.tb = UP_T_S8;
    g.C = r->scores; g.ldc = T; g.sc0 = (int64_t)nh * T * T; g.sc1 = (int64_t)T * T; g.tc = UP_T_F32;
    TRY(up_gemm(r->gemm, &g));
    uint8_t *p8 = (uint8_t *)a->probs;
    up_attn_softmax_u8(p8, rowf, r->scores, b->lens, B, nh, T, 1.0f / sqrtf((float)D), sq, sk, sv);
    /* ctx[b,:,h] (T,D) = rowf[b,h] * P8[b,h] (T,T) V8[b,h] (T,D) */
    g = up_gemm_plain(T, D, T);
    g.batch0 = B; g.batch1 = nh;
    g.A = p8; g.lda = T; g.sa0 = (int64_t)nh * T * T; g.sa1 = (int64_t)T * T; g.ta = UP_T_U8;
    g.B = vp; g.ldb = D; g.sb0 = sb; g.sb1 = sh; g.tb = UP_T_S8;
    g.C = a->ctx; g.ldc = A; g.sc0 = (int64_t)T * A; g.sc1 = D; g.tc = UP_T_F32;
    TRY(up_gemm(r->gemm, &g));
    float *ctx = (float *)a->ctx;
#pragma omp parallel for schedule(static) if ((size_t)B * T * A > 65536)
    for (int m = 0; m < B * T; m++)
        for (int h = 0; h < nh; h++) {
            float f = rowf[((size_t)(m / T) * nh + h) * T + m % T], *cr = ctx + (size_t)m * A + (size_t)h * D;
#pragma omp simd
            for (int d = 0; d < D; d++) cr[d] *= f;
        }
    if (r->head_scale) head_probe(r, l, ctx, UP_T_F32, B * T, nh, D);
    /* sum1 = ctx Wo + bo + x */
    return linear_fwd(r, &ly->o, ctx, A, B * T, a->sum1, C, UP_T_F32, UP_EPI_NONE, x, C);
}

/* The inference layout (see the top of the file): a->qkv holds Q (B,T,A),
 * then the K and V planes (B,nh,T,D). */
static up_status attn_infer(up_run *r, int l, up_acts *a, const void *xe, const float *x, const up_batch *b, int nh) {
    const up_layer *ly = &r->m->w.layers[l];
    const up_config *c = &r->m->cfg;
    const int B = b->B, T = b->T, C = (int)c->hidden_size, D = C / (int)c->num_attention_heads, A = nh * D;
    const up_type E = r->m->act_type;
    const size_t es = E == UP_T_BF16 ? 2 : 4, wes = ly->qkv.wt == UP_T_BF16 ? 2 : 4;
    char *q = a->qkv, *kp = q + (size_t)B * T * A * es, *vp = kp + (size_t)B * T * A * es;
    /* Q (B*T, A) = x Wq^T + bq */
    up_linear lq = {ly->qkv.w, ly->qkv.wt, ly->qkv.b, A, C, NULL, NULL, NULL};
    TRY(linear_fwd(r, &lq, xe, C, B * T, q, A, E, UP_EPI_NONE, NULL, 0));
    /* K, V planes [p][b][h] (T,D) = x[b] (T,C) W[(1+p)A + hD ..][:]^T, no bias */
    up_gemm_args g = up_gemm_plain(T, D, C);
    g.batch2 = 2; g.batch0 = B; g.batch1 = nh;
    g.A = xe; g.lda = C; g.sa0 = (int64_t)T * C; g.ta = E;
    g.B = (const char *)ly->qkv.w + (size_t)A * C * wes; g.ldb = C; g.transB = 1; g.tb = ly->qkv.wt;
    g.sb2 = (int64_t)A * C; g.sb1 = (int64_t)D * C; g.b_const = 1;
    g.C = kp; g.ldc = D; g.tc = E; g.sc2 = (int64_t)B * T * A; g.sc0 = (int64_t)nh * T * D; g.sc1 = (int64_t)T * D;
    TRY(up_gemm(r->gemm, &g));
    TRY(attn_core(r, a, b, nh, D, q, A, (int64_t)T * A, kp, vp, D, (int64_t)nh * T * D, (int64_t)T * D));
    /* sum1 = ctx Wo + (bo + Wo bv) + x */
    fold_value_bias(r->obias, &ly->o, ly->qkv.b + 2 * A, C, A);
    up_linear lo = ly->o;
    lo.b = r->obias;
    return linear_fwd(r, &lo, a->ctx, A, B * T, a->sum1, C, UP_T_F32, UP_EPI_NONE, x, C);
}

/* out (B,C) <- each row's final [CLS] vector (mean 0), or the mean of its
 * lens[b] real tokens' final hidden states (mean 1: sentence-transformers'
 * mean pooling, [CLS] and [SEP] included); last is (B,T,C) */
static void pool_rows(float *out, const float *last, int B, int T, int C, const int32_t *lens, int mean) {
    for (int i = 0; i < B; i++) {
        float *dst = out + (size_t)i * C;
        memcpy(dst, last + (size_t)i * T * C, (size_t)C * 4);
        if (!mean) continue;
        for (int t = 1; t < lens[i]; t++) {
            const float *h = last + ((size_t)i * T + t) * C;
            for (int k = 0; k < C; k++) dst[k] += h[k];
        }
        for (int k = 0; k < C; k++) dst[k] /= (float)lens[i];
    }
}

/* The groups of a batch that mixes tasks must tile its rows, and each view
 * must share the run's embeddings and attention (a view that pruned heads
 * has its own W_qkv, W_o) and fit the run's buffers. */
static up_status check_groups(const up_run *r, const up_batch *b, const up_row_group *g, int ng) {
    const up_model *m = r->m;
    if (r->train || r->keep_all || r->ffn_scale || r->head_scale)
        return up_fail(UP_ERR_INVALID, "a batch of several tasks runs in inference only (no training, keep_all or probes)");
    if (ng < 1) return up_fail(UP_ERR_INVALID, "a batch of several tasks needs at least one group, got %d", ng);
    int row = 0;
    for (int k = 0; k < ng; k++) {
        const up_model *v = g[k].m;
        if (!v || g[k].row0 != row || g[k].n < 1)
            return up_fail(UP_ERR_INVALID, "group %d: rows %d..+%d, expected to start at row %d", k, g[k].row0, g[k].n, row);
        row += g[k].n;
        if (b->prompt && !g[k].prompt) return up_fail(UP_ERR_INVALID, "group %d has no prompt, the batch has %d prompt vectors", k, b->n_prompt);
        if (v->act_type != m->act_type || v->w.word != m->w.word || v->cfg.num_labels > UP_MAX_LABELS)
            return up_fail(UP_ERR_INVALID, "group %d: not a task view of the run's model", k);
        for (int l = 0; l < m->cfg.num_hidden_layers; l++) {
            const up_layer *a = &v->w.layers[l], *bl = &m->w.layers[l];
            if (a->qkv.w != bl->qkv.w || a->o.w != bl->o.w || a->qkv.out != bl->qkv.out)
                return up_fail(UP_ERR_INVALID, "group %d: layer %d has attention of its own (pruned heads): run it alone", k, l);
            if (a->ffn_in.out > r->shape.intermediate_size)
                return up_fail(UP_ERR_INVALID, "group %d: layer %d has %d FFN neurons, the run room for %lld", k, l,
                               a->ffn_in.out, (long long)r->shape.intermediate_size);
        }
    }
    if (row != b->B) return up_fail(UP_ERR_INVALID, "the groups cover %d rows of a batch of %d", row, b->B);
    return UP_OK;
}

/* The forward of one model (g: one group of every row, logits ldl = its
 * num_labels apart) or of the row groups of a batch that mixes tasks (ldl =
 * UP_MAX_LABELS): everything but the FFN and the head runs over the whole
 * batch with r->m; the FFN and head of group k run over its rows with g[k].m. */
static up_status forward(up_run *r, const up_batch *b, const up_row_group *g, int ng, int ldl) {
    TRY(check_batch(r, b));
    const up_model *m = r->m;
    const up_config *c = &m->cfg;
    const up_weights *w = &m->w;
    const int B = b->B, T = b->T, C = (int)c->hidden_size, NH = (int)c->num_attention_heads, D = C / NH;
    const int M = B * T, L = (int)c->num_hidden_layers;
    const up_type E = m->act_type;
    const int e_copy = E == UP_T_BF16;
    r->B = B;
    r->T = T;
    r->ranged = NULL;
    r->sr_k = 0;
    memcpy(r->lens, b->lens, (size_t)B * sizeof *b->lens);

    r->ids = b->ids;
    r->type_ids = b->type_ids;
    const int tr = r->train;

    /* embeddings */
    up_embed_forward(r->emb_sum, b->ids, b->type_ids, w->word, w->pos, w->type, B, T, C);
    r->n_prompt = b->prompt ? b->n_prompt : 0;
    r->prompt_layers = b->prompt ? (b->prompt_layers > 1 ? b->prompt_layers : 1) : 0;
    for (int gi = 0; gi < ng; gi++) /* each row its group's prompt */
    for (int i = g[gi].row0; i < g[gi].row0 + g[gi].n; i++)
        for (int k = 0; k < r->n_prompt; k++) {
            int t = 1 + k;
            float *e = r->emb_sum + ((size_t)i * T + t) * C;
            const float *pv = g[gi].prompt + (size_t)k * C, *ps = w->pos + (size_t)t * C;
            const float *ty = w->type + (size_t)(b->type_ids ? b->type_ids[(size_t)i * T + t] : 0) * C;
            for (int c2 = 0; c2 < C; c2++) e[c2] = pv[c2] + ps[c2] + ty[c2];
        }
    up_layernorm_forward(r->hidden[0], e_copy ? r->acts[0].xe : NULL, r->emb_mean, r->emb_rstd, r->emb_sum,
                         w->emb_ln_g, w->emb_ln_b, (size_t)M, C, c->layer_norm_eps);

    for (int l = 0; l < L; l++) {
        const up_layer *ly = &w->layers[l];
        up_acts *a = &r->acts[l];
        float *xw = r->hidden[l];
        if (l > 0 && l < r->prompt_layers) /* deep prompt: slice l replaces the prompt rows of this layer's input */
            for (int gi = 0; gi < ng; gi++)
            for (int i = g[gi].row0; i < g[gi].row0 + g[gi].n; i++) {
                size_t row = (size_t)i * T + 1;
                const float *src = g[gi].prompt + (size_t)l * r->n_prompt * C;
                memcpy(xw + row * C, src, (size_t)r->n_prompt * C * sizeof(float));
                if (e_copy) up_f32_to_bf16((uint16_t *)a->xe + row * C, src, (size_t)r->n_prompt * C);
            }
        const float *x = xw;
        const void *xe = e_copy ? a->xe : (const void *)x;
        /* an expert may keep nh <= NH heads in this layer */
        const int nh = ly->qkv.out / (3 * D);
        if (nh > 0) {
            TRY(ly->qkv.wt == UP_T_S8   ? attn_int8(r, l, a, x, b, nh)
                : tr || r->head_scale ? attn_train(r, l, a, xe, x, b, nh)
                                      : attn_infer(r, l, a, xe, x, b, nh));
        } else { /* no head left: the attention block adds only its output bias */
            for (size_t i = 0; i < (size_t)M * C; i++) a->sum1[i] = x[i] + ly->o.b[i % C];
        }
        up_layernorm_forward(a->h1, e_copy ? a->h1e : NULL, a->mean1, a->rstd1, a->sum1, ly->ln1_g, ly->ln1_b,
                             (size_t)M, C, c->layer_norm_eps);
        /* FFN of each group over its rows [row0 T, (row0 + n) T) of the (B,T,C)
         * activations, with its view's (compacted) matrices; f (M,F) is scratch
         * each group reuses from the start. An expert's layer with no neurons
         * left skips it. */
        for (int gi = 0; gi < ng; gi++) {
            const up_layer *gl = &g[gi].m->w.layers[l];
            const size_t r0 = (size_t)g[gi].row0 * T * C; /* first element of the group's rows */
            const int Mg = g[gi].n * T, F = gl->ffn_in.out;
            const float *h1 = a->h1 + r0;
            const void *h1e = e_copy ? (const void *)((const uint16_t *)a->h1e + r0) : (const void *)h1;
            float *sum2 = a->sum2 + r0;
            if (F > 0 && gl->ffn_in.w) {
                const float *sc = r->ffn_scale ? r->ffn_scale + (size_t)l * c->intermediate_size : NULL;
                if (tr) { /* keep the pre-activation for the backward */
                    TRY(linear_fwd(r, &gl->ffn_in, h1e, C, Mg, a->u, F, UP_T_F32, UP_EPI_NONE, NULL, 0));
                    up_act_forward(a->f32, a->u, (size_t)Mg * F, act_fn(c->hidden_act));
                    if (sc) scale_cols(a->f32, UP_T_F32, sc, Mg, F);
                    if (e_copy) up_f32_to_bf16(a->f, a->f32, (size_t)Mg * F);
                } else {
                    TRY(linear_fwd(r, &gl->ffn_in, h1e, C, Mg, a->f, F, E, act_epi(c->hidden_act), NULL, 0));
                    if (sc) scale_cols(a->f, E, sc, Mg, F), r->ranged = NULL;
                    if (a->f32 && e_copy) up_bf16_to_f32(a->f32, a->f, (size_t)Mg * F);
                }
                TRY(linear_fwd(r, &gl->ffn_out, a->f, F, Mg, sum2, C, UP_T_F32, UP_EPI_NONE, h1, C));
            } else {
                for (size_t i = 0; i < (size_t)Mg * C; i++) sum2[i] = h1[i] + gl->ffn_out.b[i % C];
            }
        }
        void *next_e = l + 1 < L ? r->acts[l + 1].xe : NULL;
        up_layernorm_forward(r->hidden[l + 1], e_copy ? next_e : NULL, a->mean2, a->rstd2, a->sum2, ly->ln2_g,
                             ly->ln2_b, (size_t)M, C, c->layer_norm_eps);
    }

    /* each group's head on its rows: [CLS] rows (or each row's mean over its
     * tokens), pooler, classifier; cls, pooled (B,C), logits (B,ldl) */
    for (int gi = 0; gi < ng; gi++) {
        const up_weights *gw = &g[gi].m->w;
        const int i0 = g[gi].row0, n = g[gi].n;
        float *cls = r->cls + (size_t)i0 * C, *pooled = r->pooled + (size_t)i0 * C;
        pool_rows(cls, r->hidden[L] + (size_t)i0 * T * C, n, T, C, b->lens + i0, gw->pool_mean);
        const void *clse = cls;
        if (e_copy) {
            clse = (uint16_t *)r->clse + (size_t)i0 * C;
            up_f32_to_bf16((uint16_t *)clse, cls, (size_t)n * C);
        }
        if (!gw->has_pooler) continue;
        TRY(linear_fwd(r, &gw->pooler, clse, C, n, pooled, C, UP_T_F32, UP_EPI_TANH, NULL, 0));
        if (!gw->has_classifier) continue;
        const void *pe = pooled;
        if (e_copy) {
            pe = (uint16_t *)r->pooled_e + (size_t)i0 * C;
            up_f32_to_bf16((uint16_t *)pe, pooled, (size_t)n * C);
        }
        TRY(linear_fwd(r, &gw->classifier, pe, C, n, r->logits + (size_t)i0 * ldl, ldl, UP_T_F32, UP_EPI_NONE, NULL, 0));
    }
    return UP_OK;
}

const float *up_run_cls(const up_run *r) { return r->cls; }

up_status up_run_embed(const up_run *r, up_pool pool, int normalize, float *out) {
    if (!r || !out || !r->B) return up_fail(UP_ERR_INVALID, "up_run_embed: needs a run after up_forward and an output of (B, hidden)");
    if (pool != UP_POOL_CLS && pool != UP_POOL_MEAN) return up_fail(UP_ERR_INVALID, "up_run_embed: pool %d is neither UP_POOL_CLS nor UP_POOL_MEAN", (int)pool);
    int C = (int)r->m->cfg.hidden_size;
    pool_rows(out, r->hidden[r->m->cfg.num_hidden_layers], r->B, r->T, C, r->lens, pool == UP_POOL_MEAN);
    for (int i = 0; normalize && i < r->B; i++) {
        float *v = out + (size_t)i * C;
        double ss = 0;
        for (int k = 0; k < C; k++) ss += (double)v[k] * v[k];
        /* as torch.nn.functional.normalize: v / max(||v||, 1e-12) */
        double norm = sqrt(ss);
        float inv = (float)(1.0 / (norm > 1e-12 ? norm : 1e-12));
        for (int k = 0; k < C; k++) v[k] *= inv;
    }
    return UP_OK;
}
const float *up_run_pooled(const up_run *r) { return r->m->w.has_pooler ? r->pooled : NULL; }
const float *up_run_logits(const up_run *r) { return r->m->w.has_classifier ? r->logits : NULL; }
const float *up_run_hidden(const up_run *r, int layer) {
    int L = (int)r->m->cfg.num_hidden_layers;
    if (layer < 0 || layer > L || (!r->keep_all && !r->train && layer != L)) return NULL;
    return r->hidden[layer];
}
const float *up_run_ffn_act(const up_run *r, int layer) {
    if (layer < 0 || layer >= r->m->cfg.num_hidden_layers) return NULL;
    return r->acts[layer].f32;
}

/* The model's thread count (opts.threads) holds for this call only: the
 * calling thread's OpenMP setting is restored, nothing process-wide changes. */
int up_threads_enter(const up_model *m) {
    int prev = omp_get_max_threads();
    if (m->threads > 0 && m->threads != prev) omp_set_num_threads(m->threads);
    return prev;
}
void up_threads_leave(const up_model *m, int prev) {
    if (m->threads > 0 && m->threads != prev) omp_set_num_threads(prev);
}

up_status up_forward(up_run *r, const up_batch *b) {
    if (!r || !r->m) return up_fail(UP_ERR_INVALID, "up_forward: no run");
    int prev = up_threads_enter(r->m);
    up_row_group all = {r->m, 0, b->B, b->prompt};
    up_status st = forward(r, b, &all, 1, (int)r->m->cfg.num_labels);
    up_threads_leave(r->m, prev);
    return st;
}

up_status up_forward_groups(up_run *r, const up_batch *b, const up_row_group *g, int ng) {
    if (!r || !r->m || !b || !g) return up_fail(UP_ERR_INVALID, "up_forward_groups: no run, batch or groups");
    up_status st = check_groups(r, b, g, ng);
    if (st) return st;
    int prev = up_threads_enter(r->m);
    st = forward(r, b, g, ng, UP_MAX_LABELS);
    up_threads_leave(r->m, prev);
    return st;
}

void up_batch_restride(int32_t *ids, int32_t *types, const int32_t *lens, int n, int from, int to, int32_t pad) {
    /* shrinking: row i moves down (i*to <= i*from), first to last; growing: up, last to first */
    for (int k = 0; k < n; k++) {
        int i = to <= from ? k : n - 1 - k;
        size_t src = (size_t)i * from, dst = (size_t)i * to;
        memmove(ids + dst, ids + src, (size_t)lens[i] * sizeof *ids);
        if (types) memmove(types + dst, types + src, (size_t)lens[i] * sizeof *types);
        for (int j = lens[i]; j < to; j++) {
            ids[dst + j] = pad;
            if (types) types[dst + j] = 0;
        }
    }
}
