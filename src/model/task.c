/* task.c: task state, task views of a base model, encoding and prediction (see task.h). */
#include "model/task.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/base.h"

/* points prompt, pooler and classifier into buf (task_alloc's layout) */
static void task_point(up_task *t, float *buf) {
    size_t C = (size_t)t->C, NL = (size_t)t->n_labels;
    t->buf = buf;
    t->prompt = buf;
    t->pool_w = t->prompt + (size_t)t->n_prompt * (size_t)t->prompt_layers * C;
    t->pool_b = t->pool_w + C * C;
    t->cls_w = t->pool_b + C;
    t->cls_b = t->cls_w + NL * C;
}

up_status up_task_alloc(up_task *t) {
    float *buf = up_calloc(up_task_param_count(t), sizeof(float), "task parameters");
    if (!buf) return UP_ERR_NOMEM;
    task_point(t, buf);
    t->kept = up_calloc((size_t)t->n_layers, sizeof *t->kept, "kept neurons");
    t->n_kept = up_calloc((size_t)t->n_layers, sizeof *t->n_kept, "kept counts");
    t->kept_heads = up_calloc((size_t)t->n_layers, sizeof *t->kept_heads, "kept heads");
    t->n_kept_heads = up_calloc((size_t)t->n_layers, sizeof *t->n_kept_heads, "kept head counts");
    return t->kept && t->n_kept && t->kept_heads && t->n_kept_heads ? UP_OK : UP_ERR_NOMEM;
}

size_t up_task_param_count(const up_task *t) {
    size_t C = (size_t)t->C;
    return (size_t)t->n_prompt * t->prompt_layers * C + C * C + C + (size_t)t->n_labels * C + (size_t)t->n_labels;
}

/* an operand-typed weight back to fp32 */
static void weight_f32(const up_model *m, const void *w, size_t n, float *dst) {
    if (m->act_type == UP_T_BF16) up_bf16_to_f32(dst, w, n);
    else memcpy(dst, w, n * sizeof *dst);
}

up_status up_task_new(const up_model *base, const char *name, int n_labels, char *const *labels, int n_prompt,
                      int max_len, uint64_t seed, up_task **out) {
    *out = NULL;
    if (n_labels < 2 || n_labels > UP_MAX_LABELS)
        return up_fail(UP_ERR_INVALID, "task '%s': %d labels, expected 2..%d", name, n_labels, UP_MAX_LABELS);
    if (n_prompt < 0 || 1 + n_prompt + 2 > max_len)
        return up_fail(UP_ERR_INVALID, "task '%s': %d prompt vectors leave no room in %d tokens", name, n_prompt, max_len);
    if (max_len > base->cfg.max_position_embeddings)
        return up_fail(UP_ERR_INVALID, "task '%s': max_len %d exceeds the model's %lld positions", name, max_len,
                       (long long)base->cfg.max_position_embeddings);
    up_task *t = up_calloc(1, sizeof *t, "task");
    if (!t) return UP_ERR_NOMEM;
    snprintf(t->name, sizeof t->name, "%s", name);
    t->n_labels = n_labels;
    for (int i = 0; i < n_labels; i++) snprintf(t->labels[i], sizeof t->labels[i], "%s", labels[i]);
    t->n_prompt = n_prompt;
    t->prompt_layers = 1;
    t->max_len = max_len;
    t->C = (int)base->cfg.hidden_size;
    t->n_layers = (int)base->cfg.num_hidden_layers;
    up_status st = up_task_alloc(t);
    if (st) { up_task_free(t); return st; }
    size_t C = (size_t)t->C;
    up_rng s = up_rng_seed(seed * 0x9E3779B97F4A7C15ull + 17);
    /* prompt: embeddings of random ordinary vocabulary rows (ids past the
     * first 1000 skip the special and [unused] tokens of BERT vocabularies) */
    int64_t V = base->cfg.vocab_size, lo = V > 2000 ? 1000 : 0;
    for (int k = 0; k < n_prompt; k++) {
        int64_t id = lo + (int64_t)(up_rng_next(&s) % (uint64_t)(V - lo));
        memcpy(t->prompt + (size_t)k * C, base->w.word + (size_t)id * C, C * sizeof(float));
    }
    if (base->w.has_pooler) {
        weight_f32(base, base->w.pooler.w, C * C, t->pool_w);
        memcpy(t->pool_b, base->w.pooler.b, C * sizeof(float));
    } else {
        for (size_t i = 0; i < C * C; i++) t->pool_w[i] = 0.02f * up_rng_normal(&s);
    }
    for (size_t i = 0; i < (size_t)n_labels * C; i++) t->cls_w[i] = 0.02f * up_rng_normal(&s);
    *out = t;
    return UP_OK;
}

up_status up_task_clone(const up_task *src, up_task **out) {
    *out = NULL;
    up_task *t = up_calloc(1, sizeof *t, "task");
    if (!t) return UP_ERR_NOMEM;
    *t = *src;
    t->buf = NULL;
    t->kept = t->kept_heads = NULL;
    t->n_kept = t->n_kept_heads = NULL;
    up_status st = up_task_alloc(t);
    if (st) { up_task_free(t); return st; }
    memcpy(t->buf, src->buf, up_task_param_count(src) * sizeof(float));
    for (int l = 0; l < t->n_layers && !st; l++)
        if (src->kept[l]) st = up_task_set_kept(t, l, src->kept[l], src->n_kept[l]);
    for (int l = 0; l < t->n_layers && !st; l++)
        if (src->kept_heads[l]) st = up_task_set_kept_heads(t, l, src->kept_heads[l], src->n_kept_heads[l]);
    if (st) { up_task_free(t); return st; }
    *out = t;
    return UP_OK;
}

up_batch up_task_batch(const up_task *t, int B, int T, const int32_t *ids, const int32_t *type_ids,
                       const int32_t *lens) {
    up_batch b = {.B = B, .T = T, .ids = ids, .type_ids = type_ids, .lens = lens};
    if (t->n_prompt) {
        b.prompt = t->prompt;
        b.n_prompt = t->n_prompt;
        b.prompt_layers = t->prompt_layers;
    }
    return b;
}

up_status up_task_make_deep(up_task *t, const up_model *base) {
    int L = (int)base->cfg.num_hidden_layers, P = t->n_prompt, C = t->C;
    if (t->prompt_layers != 1 || P < 1)
        return up_fail(UP_ERR_INVALID, "task '%s': deep prompts need a shallow prompt of at least one vector to start from",
                       t->name);
    if (L < 2) return UP_OK;
    /* [CLS] prompt [SEP] through the base, every layer's hidden states kept */
    int T = P + 2;
    int32_t *ids = up_calloc((size_t)T, 4, "deep prompt"), lens[1] = {T};
    up_run *r = NULL;
    up_status st = ids ? up_run_new(base, 1, T, &r) : UP_ERR_NOMEM;
    if (!st) {
        ids[0] = (int32_t)(base->tok ? up_tokenizer_id(base->tok, "[CLS]") : 0);
        ids[T - 1] = (int32_t)(base->tok ? up_tokenizer_id(base->tok, "[SEP]") : 0);
        if (ids[0] < 0) ids[0] = 0;
        if (ids[T - 1] < 0) ids[T - 1] = 0;
        up_run_keep_all(r, 1);
        up_batch b = {.B = 1, .T = T, .ids = ids, .lens = lens, .prompt = t->prompt, .n_prompt = P, .prompt_layers = 1};
        st = up_forward(r, &b);
    }
    float *buf = NULL;
    if (!st) {
        up_task d = *t;
        d.prompt_layers = L;
        buf = up_calloc(up_task_param_count(&d), sizeof(float), "task parameters");
        if (!buf) st = UP_ERR_NOMEM;
    }
    if (!st) {
        size_t PC = (size_t)P * C, head = up_task_param_count(t) - PC;
        memcpy(buf, t->prompt, PC * sizeof(float));
        for (int l = 1; l < L; l++) memcpy(buf + (size_t)l * PC, up_run_hidden(r, l) + C, PC * sizeof(float));
        memcpy(buf + (size_t)L * PC, t->buf + PC, head * sizeof(float));
        free(t->buf);
        t->prompt_layers = L;
        task_point(t, buf);
    }
    up_run_free(r);
    free(ids);
    return st;
}

static void clear_sets(int32_t **sets, int *counts, int L) {
    for (int l = 0; sets && l < L; l++) {
        free(sets[l]);
        sets[l] = NULL;
        counts[l] = 0;
    }
}

void up_task_clear_kept(up_task *t) { clear_sets(t->kept, t->n_kept, t->n_layers); }
void up_task_clear_kept_heads(up_task *t) { clear_sets(t->kept_heads, t->n_kept_heads, t->n_layers); }

void up_task_free(up_task *t) {
    if (!t) return;
    up_task_clear_kept(t);
    up_task_clear_kept_heads(t);
    free(t->kept);
    free(t->n_kept);
    free(t->kept_heads);
    free(t->n_kept_heads);
    free(t->buf);
    free(t);
}

static int cmp_i32(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return x < y ? -1 : x > y;
}

/* a sorted copy of idx (n entries, no duplicates) into sets[layer] */
static up_status set_sorted(up_task *t, int32_t **sets, int *counts, const char *what, int layer, const int32_t *idx,
                            int n) {
    if (layer < 0 || layer >= t->n_layers) return up_fail(UP_ERR_INVALID, "layer %d outside 0..%d", layer, t->n_layers - 1);
    int32_t *k = up_malloc((size_t)(n > 0 ? n : 1) * sizeof *k, what);
    if (!k) return UP_ERR_NOMEM;
    memcpy(k, idx, (size_t)n * sizeof *k);
    qsort(k, (size_t)n, sizeof *k, cmp_i32);
    for (int i = 1; i < n; i++)
        if (k[i] == k[i - 1]) {
            int32_t dup = k[i];
            free(k);
            return up_fail(UP_ERR_INVALID, "layer %d: %s %d kept twice", layer, what, dup);
        }
    free(sets[layer]);
    sets[layer] = k;
    counts[layer] = n;
    return UP_OK;
}

up_status up_task_set_kept(up_task *t, int layer, const int32_t *idx, int n) {
    return set_sorted(t, t->kept, t->n_kept, "neuron", layer, idx, n);
}

up_status up_task_set_kept_heads(up_task *t, int layer, const int32_t *idx, int n) {
    return set_sorted(t, t->kept_heads, t->n_kept_heads, "head", layer, idx, n);
}

/* ---- views ---- */

static up_status own_copy(up_model *v, const void *src, size_t bytes, const void **out) {
    void *p = up_aligned_alloc(bytes ? bytes : 64, "view buffer");
    if (!p) return UP_ERR_NOMEM;
    up_status st = up_model_own(v, p);
    if (st) return st;
    if (bytes) memcpy(p, src, bytes);
    *out = p;
    return UP_OK;
}

/* head linear of the view from fp32 task weights, as operands */
static up_status head_linear(up_model *v, up_linear *l, const float *w, const float *b, int out, int in) {
    l->out = out;
    l->in = in;
    l->wt = v->act_type;
    up_status st = up_model_operand_copy(v, w, (size_t)out * in, &l->w);
    if (st) return st;
    if (v->act_type == UP_T_F32) st = own_copy(v, w, (size_t)out * in * 4, &l->w); /* not the task's buffer */
    if (!st) st = own_copy(v, b, (size_t)out * 4, (const void **)&l->b);
    return st;
}

up_status up_task_view_sync_head(up_model *v, const up_task *t) {
    size_t C = (size_t)t->C, NL = (size_t)t->n_labels;
    size_t es = v->act_type == UP_T_BF16 ? 2 : 4;
    /* the view owns its head buffers: overwrite them in place */
    if (v->act_type == UP_T_BF16) {
        up_f32_to_bf16((uint16_t *)v->w.pooler.w, t->pool_w, C * C);
        up_f32_to_bf16((uint16_t *)v->w.classifier.w, t->cls_w, NL * C);
    } else {
        memcpy((void *)v->w.pooler.w, t->pool_w, C * C * es);
        memcpy((void *)v->w.classifier.w, t->cls_w, NL * C * es);
    }
    memcpy((void *)v->w.pooler.b, t->pool_b, C * 4);
    memcpy((void *)v->w.classifier.b, t->cls_b, NL * 4);
    return UP_OK;
}

/* kept indices (n of them) must lie in 0..lim-1 */
static up_status check_kept(const int32_t *k, int n, int lim, int layer, const char *what) {
    for (int i = 0; i < n; i++)
        if (k[i] < 0 || k[i] >= lim)
            return up_fail(UP_ERR_INVALID, "layer %d: kept %s %d outside 0..%d", layer, what, k[i], lim - 1);
    return UP_OK;
}

/* three aligned buffers the view owns (a size of 0 still gets one) */
static up_status own_buffers(up_model *v, size_t a, size_t b, size_t c, char **pa, char **pb, char **pc) {
    size_t sz[3] = {a, b, c};
    char **p[3] = {pa, pb, pc};
    for (int i = 0; i < 3; i++) {
        *p[i] = up_aligned_alloc(sz[i] ? sz[i] : 64, "expert weights");
        if (!*p[i]) return UP_ERR_NOMEM;
        up_status st = up_model_own(v, *p[i]); /* frees it on failure */
        if (st) return st;
    }
    return UP_OK;
}

/* dst row block i (unit rows of row_bytes) = src row block idx[i] */
static void gather_rows(char *dst, const void *src, const int32_t *idx, int n, int unit, size_t row_bytes) {
    for (int i = 0; i < n; i++)
        memcpy(dst + (size_t)i * unit * row_bytes, (const char *)src + (size_t)idx[i] * unit * row_bytes, unit * row_bytes);
}

/* dst (rows, n*unit) = the column blocks idx[i] (unit columns each) of src (rows, cols), es bytes an element */
static void gather_cols(char *dst, const void *src, const int32_t *idx, int n, int unit, int rows, int cols, size_t es) {
    for (int r = 0; r < rows; r++)
        for (int i = 0; i < n; i++)
            memcpy(dst + ((size_t)r * n + i) * unit * es, (const char *)src + ((size_t)r * cols + (size_t)idx[i] * unit) * es,
                   unit * es);
}

up_status up_task_view(const up_model *base, const up_task *t, up_model **out) {
    *out = NULL;
    if (t->C != base->cfg.hidden_size || t->n_layers != base->cfg.num_hidden_layers)
        return up_fail(UP_ERR_INVALID, "task '%s' was made for hidden %d x %d layers, the model has %lld x %lld", t->name,
                       t->C, t->n_layers, (long long)base->cfg.hidden_size, (long long)base->cfg.num_hidden_layers);
    up_model *v = up_calloc(1, sizeof *v, "task view");
    if (!v) return UP_ERR_NOMEM;
    const char *fp;
    if (base->st && up_model_fingerprint((up_model *)base, &fp) != UP_OK) { free(v); return UP_ERR_INTERNAL; }
    *v = *base;
    v->is_view = 1;
    v->owned = NULL;
    v->n_owned = v->cap_owned = 0;
    v->st = NULL;
    v->w.layers = up_calloc((size_t)t->n_layers, sizeof(up_layer), "view layers");
    up_status st = v->w.layers ? UP_OK : UP_ERR_NOMEM;
    if (!st) memcpy(v->w.layers, base->w.layers, (size_t)t->n_layers * sizeof(up_layer));
    v->cfg.num_labels = t->n_labels;
    for (int i = 0; i < t->n_labels; i++) memcpy(v->cfg.labels[i], t->labels[i], sizeof v->cfg.labels[i]);
    int C = t->C;
    if (!st) st = head_linear(v, &v->w.pooler, t->pool_w, t->pool_b, C, C);
    if (!st) st = head_linear(v, &v->w.classifier, t->cls_w, t->cls_b, t->n_labels, C);
    v->w.has_pooler = v->w.has_classifier = 1;
    v->w.pool_mean = t->pool_mean;
    /* compacted FFN: rows of W_in / b_in and columns of W_out that are kept.
     * An int8 base gathers its fp32 weights into scratch and quantizes the
     * compacted matrices (each W_out row gets the scale of its kept columns). */
    const int q8 = base->wtype == UP_T_S8;
    size_t es = q8 ? 4 : up_type_size(v->act_type), F0 = (size_t)base->cfg.intermediate_size;
    char *scratch = q8 ? up_aligned_alloc(4 * (size_t)C * (2 * F0 > 4 * (size_t)C ? 2 * F0 : 4 * (size_t)C), "int8 compaction")
                       : NULL;
    if (q8 && !scratch) st = UP_ERR_NOMEM;
    for (int l = 0; l < t->n_layers && q8 && !st; l++) /* the fp32 source each compaction reads */
        if ((t->kept[l] && (!base->w.layers[l].ffn_in.wf || !base->w.layers[l].ffn_out.wf)) ||
            (t->kept_heads[l] && base->w.layers[l].qkv.w && (!base->w.layers[l].qkv.wf || !base->w.layers[l].o.wf)))
            st = up_fail(UP_ERR_INVALID, "an int8 view is built from an int8 base loaded from fp32 weights");
#define WSRC(lin) (q8 ? (const void *)(lin).wf : (lin).w)
    for (int l = 0; l < t->n_layers && !st; l++) {
        if (!t->kept[l]) continue;
        const up_layer *bl = &base->w.layers[l];
        int n = t->n_kept[l], F = bl->ffn_in.out;
        const int32_t *k = t->kept[l];
        char *win, *bin, *wout;
        size_t wb = q8 ? 0 : (size_t)n * C * es;
        if ((st = check_kept(k, n, F, l, "neuron")) || (st = own_buffers(v, wb, (size_t)n * 4, wb, &win, &bin, &wout)))
            break;
        if (q8) win = scratch, wout = scratch + (size_t)n * C * 4;
        gather_rows(win, WSRC(bl->ffn_in), k, n, 1, (size_t)C * es);
        gather_rows(bin, (const char *)bl->ffn_in.b, k, n, 1, 4);
        gather_cols(wout, WSRC(bl->ffn_out), k, n, 1, C, F, es); /* W_out is (C,F) */
        up_layer *vl = &v->w.layers[l];
        vl->ffn_in = (up_linear){win, v->act_type, (const float *)bin, n, C, NULL, NULL, NULL};
        vl->ffn_out = (up_linear){wout, v->act_type, bl->ffn_out.b, C, n, NULL, NULL, NULL};
        if (q8 && (!(st = up_model_quantize_linear(v, &vl->ffn_in)) && !(st = up_model_quantize_linear(v, &vl->ffn_out))))
            vl->ffn_in.wf = vl->ffn_out.wf = NULL; /* scratch */
    }
    /* compacted attention: the kept heads' D rows of W_qkv in each of the Q, K,
     * V blocks (and of its bias) and their D columns of W_o */
    int NH = (int)base->cfg.num_attention_heads, D = C / NH;
    for (int l = 0; l < t->n_layers && !st; l++) {
        if (!t->kept_heads[l]) continue;
        const up_layer *bl = &base->w.layers[l];
        int n = t->n_kept_heads[l], A = n * D;
        const int32_t *k = t->kept_heads[l];
        char *wq, *bq, *wo;
        if ((st = check_kept(k, n, NH, l, "head")) ||
            (st = own_buffers(v, q8 ? 0 : (size_t)3 * A * C * es, (size_t)3 * A * 4, q8 ? 0 : (size_t)C * A * es, &wq,
                              &bq, &wo)))
            break;
        if (q8) wq = scratch, wo = scratch + (size_t)3 * A * C * 4;
        for (int part = 0; part < 3; part++) { /* Q, K, V */
            gather_rows(wq + (size_t)part * A * C * es, (const char *)WSRC(bl->qkv) + (size_t)part * C * C * es, k, n, D,
                        (size_t)C * es);
            gather_rows(bq + (size_t)part * A * 4, (const char *)(bl->qkv.b + (size_t)part * C), k, n, D, 4);
        }
        gather_cols(wo, WSRC(bl->o), k, n, D, C, C, es); /* W_o is (C,C) */
        up_layer *vl = &v->w.layers[l];
        vl->qkv = (up_linear){A ? wq : NULL, v->act_type, (const float *)bq, 3 * A, C, NULL, NULL, NULL};
        vl->o = (up_linear){A ? wo : NULL, v->act_type, bl->o.b, C, A, NULL, NULL, NULL};
        if (q8 && (!(st = up_model_quantize_linear(v, &vl->qkv)) && !(st = up_model_quantize_linear(v, &vl->o))))
            vl->qkv.wf = vl->o.wf = NULL; /* scratch */
    }
#undef WSRC
    free(scratch);
    if (st) {
        up_model_free(v);
        return st;
    }
    *out = v;
    return UP_OK;
}

/* ---- encoding and prediction ---- */

int up_task_encode(const up_task *t, const up_tokenizer *tok, const char *a, const char *b, up_encoding *e,
                   int32_t *ids, int32_t *type_ids) {
    int P = t->n_prompt;
    if (up_tokenizer_encode(tok, a, b, t->max_len - P, e) != UP_OK) return -1;
    int32_t unk = up_tokenizer_id(tok, "[UNK]");
    ids[0] = e->ids[0];
    type_ids[0] = 0;
    for (int k = 0; k < P; k++) {
        ids[1 + k] = unk; /* placeholder: the prompt vector replaces its embedding */
        type_ids[1 + k] = 0;
    }
    for (int i = 1; i < e->n; i++) {
        ids[P + i] = e->ids[i];
        type_ids[P + i] = e->type_ids[i];
    }
    return e->n + P;
}

static void softmax_row(float *p, const float *x, int n) {
    float mx = x[0];
    for (int i = 1; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    double s = 0;
    for (int i = 0; i < n; i++) s += exp((double)x[i] - mx);
    for (int i = 0; i < n; i++) p[i] = (float)(exp((double)x[i] - mx) / s);
}

int up_task_fill_batch(const up_task *t, const up_tokenizer *tok, const char *const *a, const char *const *b, int n,
                       int32_t pad, up_encoding *e, int32_t *ids, int32_t *types, int32_t *lens) {
    int T = t->max_len, Tb = 1;
    for (int i = 0; i < n; i++) {
        int len = up_task_encode(t, tok, a[i], b ? b[i] : NULL, e, ids + (size_t)i * T, types + (size_t)i * T);
        if (len < 0) {
            up_fail_prefix(UP_ERR_INVALID, "example %d of the batch", i);
            return -1;
        }
        lens[i] = len;
        Tb = len > Tb ? len : Tb;
    }
    up_batch_restride(ids, types, lens, n, T, Tb, pad);
    return Tb;
}

up_status up_task_buf_init(up_task_buf *s, int B, int T) {
    memset(s, 0, sizeof *s);
    s->ids = up_malloc((size_t)B * T * 4, "batch");
    s->types = up_malloc((size_t)B * T * 4, "batch");
    s->lens = up_malloc((size_t)B * 4, "batch");
    s->B = B;
    s->T = T;
    if (s->ids && s->types && s->lens) return UP_OK;
    up_task_buf_free(s);
    return UP_ERR_NOMEM;
}

void up_task_buf_free(up_task_buf *s) {
    free(s->ids); free(s->types); free(s->lens);
    up_encoding_free(&s->enc);
    memset(s, 0, sizeof *s);
}

/* Encodes the inputs of ng tasks into s, rows in order, and packs them to
 * the longest (padded up to a multiple of s->round_T, within max_T): the
 * batch length, or -1 with the failing example in the message. Row i's
 * group is the in[k] whose rows hold it; up_task_encode writes each at a
 * stride of s->T first. */
static int fill_rows(up_task_buf *s, const up_tokenizer *tok, int32_t pad, int max_T, const up_task_inputs *in, int ng) {
    int S = s->T, row = 0, Tb = 1, lim = 1;
    for (int k = 0; k < ng; k++) {
        up_task tt = *in[k].task; /* its max_len, within the run's and the buffer's rows */
        tt.max_len = tt.max_len < max_T ? tt.max_len : max_T;
        if (tt.max_len > S) tt.max_len = S;
        lim = tt.max_len > lim ? tt.max_len : lim;
        for (int i = 0; i < in[k].n; i++, row++) {
            int len = up_task_encode(&tt, tok, in[k].a[i], in[k].b ? in[k].b[i] : NULL, &s->enc, s->ids + (size_t)row * S,
                                     s->types + (size_t)row * S);
            if (len < 0) {
                if (ng > 1) up_fail_prefix(UP_ERR_INVALID, "task '%s'", in[k].task->name);
                up_fail_prefix(UP_ERR_INVALID, "example %d of the batch", i);
                return -1;
            }
            s->lens[row] = len;
            Tb = len > Tb ? len : Tb;
        }
    }
    if (s->round_T > 1) { /* pad the length up to a multiple of round_T: fewer distinct product shapes */
        int T2 = (Tb + s->round_T - 1) / s->round_T * s->round_T;
        if (T2 > lim) T2 = lim;
        if (T2 > Tb) Tb = T2;
    }
    up_batch_restride(s->ids, s->types, s->lens, row, S, Tb, pad);
    return Tb;
}

/* The forward of in[0..ng) as one batch: on v alone (ng 1: v is in[0]'s
 * view) or the groups over v = the base; then each row's probabilities. */
static up_status classify_rows(const up_model *v, up_run *r, up_task_buf *s, const up_task_inputs *in, int ng) {
    if (!v->tok) return up_fail(UP_ERR_INVALID, "the model has no tokenizer");
    int n = 0;
    for (int k = 0; k < ng; k++) n += in[k].n;
    if (n < 1 || n > r->max_B || n > s->B) return up_fail(UP_ERR_INVALID, "batch of %d examples, room for %d", n, r->max_B);
    int Tb = fill_rows(s, v->tok, (int32_t)v->cfg.pad_token_id, r->max_T, in, ng);
    if (Tb < 0) return UP_ERR_INVALID;
    up_batch bt = up_task_batch(in[0].task, n, Tb, s->ids, s->types, s->lens);
    up_status st = r->m == v ? UP_OK : up_run_use(r, v);
    up_row_group g[ng]; /* ng <= n <= the run's batch */
    for (int k = 0, row = 0; k < ng; row += in[k].n, k++) g[k] = (up_row_group){in[k].view, row, in[k].n, in[k].task->prompt};
    if (!st) st = ng == 1 ? up_forward(r, &bt) : up_forward_groups(r, &bt, g, ng);
    if (st) return st;
    const float *lg = r->logits; /* (n, ld): up_run_logits says NULL for the base, which has no classifier */
    for (int k = 0; k < ng; k++) {
        int NL = in[k].task->n_labels, ld = ng == 1 ? NL : UP_MAX_LABELS;
        for (int i = 0; i < in[k].n; i++) softmax_row(in[k].probs + (size_t)i * NL, lg + (size_t)(g[k].row0 + i) * ld, NL);
    }
    return UP_OK;
}

up_status up_task_classify(const up_model *v, const up_task *t, up_run *r, up_task_buf *s, const char *const *a,
                           const char *const *b, int n, float *probs) {
    if (n < 1 || n > r->max_B || n > s->B) return up_fail(UP_ERR_INVALID, "batch of %d examples, room for %d", n, r->max_B);
    up_task_inputs in = {v, t, a, b, n, probs};
    return classify_rows(v, r, s, &in, 1);
}

int up_task_mixable(const up_task *t) {
    for (int l = 0; l < t->n_layers; l++)
        if (t->kept_heads && t->kept_heads[l]) return 0;
    return 1;
}

int up_task_can_mix(const up_task *a, const up_task *b) {
    return up_task_mixable(a) && up_task_mixable(b) && a->n_prompt == b->n_prompt &&
           (a->n_prompt == 0 || a->prompt_layers == b->prompt_layers);
}

up_status up_task_classify_mixed(const up_model *base, up_run *r, up_task_buf *s, const up_task_inputs *in, int ng) {
    if (ng < 1) return up_fail(UP_ERR_INVALID, "a batch of %d tasks", ng);
    if (ng == 1) return classify_rows(in[0].view, r, s, in, 1);
    for (int k = 1; k < ng; k++)
        if (!up_task_can_mix(in[0].task, in[k].task))
            return up_fail(UP_ERR_INVALID, "task '%s' cannot share a batch with '%s' (pruned heads, or another prompt length "
                           "or depth)", in[k].task->name, in[0].task->name);
    return classify_rows(base, r, s, in, ng);
}

up_status up_task_predict(const up_model *v, const up_task *t, up_run *r, const char *const *a, const char *const *b,
                          size_t n, float *probs, int *pred) {
    int B = r->max_B, NL = t->n_labels;
    up_task_buf s;
    up_status st = up_task_buf_init(&s, B, t->max_len < r->max_T ? t->max_len : r->max_T);
    for (size_t i0 = 0; i0 < n && !st; i0 += (size_t)B) {
        int nb = (int)(n - i0 < (size_t)B ? n - i0 : (size_t)B);
        st = up_task_classify(v, t, r, &s, a + i0, b ? b + i0 : NULL, nb, probs + i0 * NL);
        if (st == UP_ERR_INVALID) st = up_fail_prefix(UP_ERR_INVALID, "batch at example %zu", i0);
        for (int i = 0; i < nb && pred && !st; i++) {
            const float *p = probs + (i0 + (size_t)i) * NL;
            int best = 0;
            for (int k = 1; k < NL; k++) if (p[k] > p[best]) best = k;
            pred[i0 + i] = best;
        }
    }
    up_task_buf_free(&s);
    return st;
}

void up_task_kept_counts(const up_task *t, int F, int NH, long *ffn, long *heads) {
    long kf = 0, kh = 0;
    for (int l = 0; l < t->n_layers; l++) {
        kf += t->kept && t->kept[l] ? t->n_kept[l] : F;
        kh += t->kept_heads && t->kept_heads[l] ? t->n_kept_heads[l] : NH;
    }
    if (ffn) *ffn = kf;
    if (heads) *heads = kh;
}
