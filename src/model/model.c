/*
 * model.c: loading an encoder from a Hugging Face directory (config.json,
 * safetensors, vocab.txt) or building one with random weights; precision and
 * backend choice; tensor lookup, shape checks and dtype conversion.
 */
#include <math.h>
#include <omp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/base.h"
#include "kernels/ops.h"
#include "model/model.h"

#include <openssl/evp.h>

up_model_opts up_model_opts_default(void) {
    up_model_opts o = {UP_PREC_AUTO, UP_BACKEND_AUTO, 0};
    return o;
}

up_status up_model_own(up_model *m, void *p) {
    if (m->n_owned == m->cap_owned) {
        int cap = m->cap_owned ? 2 * m->cap_owned : 64;
        void **n = realloc(m->owned, (size_t)cap * sizeof *n);
        if (!n) {
            free(p);
            return up_fail(UP_ERR_NOMEM, "out of memory tracking model buffers");
        }
        m->owned = n;
        m->cap_owned = cap;
    }
    m->owned[m->n_owned++] = p;
    return UP_OK;
}

static void shape_str(char *buf, size_t cap, int ndim, const int64_t *shape) {
    size_t n = 0;
    n += (size_t)snprintf(buf + n, cap - n, "[");
    for (int i = 0; i < ndim && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, i ? ", %lld" : "%lld", (long long)shape[i]);
    if (n < cap) snprintf(buf + n, cap - n, "]");
}

up_status up_model_tensor(up_model *m, const up_st_set *st, const char *const *prefixes,
                          const char *name, int ndim, const int64_t *shape, up_type to_type,
                          int required, const void **out) {
    *out = NULL;
    const up_st_tensor *t = NULL;
    char full[320];
    for (int i = 0; prefixes[i] && !t; i++) {
        snprintf(full, sizeof full, "%s%s", prefixes[i], name);
        t = up_st_find(st, full);
    }
    if (!t) {
        if (!required) return UP_OK;
        return up_fail(UP_ERR_FORMAT, "%s: missing tensor '%s' (also tried with the 'bert.' prefix); "
                       "is this a BertModel / BertForMaskedLM / BertForSequenceClassification checkpoint?",
                       m->dir, name);
    }
    char want[128], got[128];
    shape_str(want, sizeof want, ndim, shape);
    shape_str(got, sizeof got, t->ndim, t->shape);
    int same = t->ndim == ndim;
    for (int i = 0; same && i < ndim; i++) same = t->shape[i] == shape[i];
    if (!same)
        return up_fail(UP_ERR_FORMAT, "%s: tensor '%s': expected shape %s from config.json, found %s",
                       up_st_file_name(st, t->file), t->name, want, got);
    if (t->dtype != UP_DT_F32 && t->dtype != UP_DT_F16 && t->dtype != UP_DT_BF16)
        return up_fail(UP_ERR_UNSUPPORTED, "%s: tensor '%s': dtype %s is not supported for weights "
                       "(expected F32, F16 or BF16)", up_st_file_name(st, t->file), t->name, up_dtype_name(t->dtype));
    size_t n = 1;
    for (int i = 0; i < ndim; i++) n *= (size_t)shape[i];
    m->dtype_counts[t->dtype]++;
    m->n_params += (int64_t)n;
    /* zero-copy when stored as needed and aligned */
    uintptr_t addr = (uintptr_t)t->data;
    if (to_type == UP_T_F32 && t->dtype == UP_DT_F32 && addr % 4 == 0) *out = t->data;
    else if (to_type == UP_T_BF16 && t->dtype == UP_DT_BF16 && addr % 2 == 0) *out = t->data;
    if (!*out) {
        size_t es = to_type == UP_T_BF16 ? 2 : 4;
        void *buf = up_aligned_alloc(n * es, t->name);
        if (!buf) return UP_ERR_NOMEM;
        up_status r = up_model_own(m, buf);
        if (r != UP_OK) return r;
        if (to_type == UP_T_F32) up_st_to_f32(t, 0, n, buf);
        else {
            float tmp[4096];
            for (size_t i = 0; i < n; i += 4096) {
                size_t k = n - i < 4096 ? n - i : 4096;
                up_st_to_f32(t, i, k, tmp);
                up_f32_to_bf16((uint16_t *)buf + i, tmp, k);
            }
        }
        *out = buf;
    }
    /* weights that are NaN or infinite would poison every output: refuse them */
    for (size_t i = 0; i < n; i++) {
        float v = to_type == UP_T_BF16 ? up_bf16_scalar(((const uint16_t *)*out)[i]) : ((const float *)*out)[i];
        if (!isfinite(v))
            return up_fail(UP_ERR_FORMAT, "%s: tensor '%s': element %zu is %s; weights must be finite",
                           up_st_file_name(st, t->file), t->name, i, isnan(v) ? "NaN" : "infinite");
    }
    return UP_OK;
}

/* *p = an aligned buffer of bytes the model owns */
static up_status owned_alloc(up_model *m, size_t bytes, const char *what, void **p) {
    *p = up_aligned_alloc(bytes ? bytes : 64, what);
    if (!*p) return UP_ERR_NOMEM;
    return up_model_own(m, *p); /* frees it on failure */
}

up_status up_model_stack_linears(up_model *m, const up_linear *parts, int n, up_linear *out) {
    int rows = 0, in = parts[0].in;
    for (int i = 0; i < n; i++) rows += parts[i].out;
    size_t es = m->act_type == UP_T_BF16 ? 2 : 4;
    char *w;
    float *b;
    up_status r;
    if ((r = owned_alloc(m, (size_t)rows * in * es, "stacked weights", (void **)&w)) ||
        (r = owned_alloc(m, (size_t)rows * sizeof(float), "stacked biases", (void **)&b)))
        return r;
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        memcpy(w + off * in * es, parts[i].w, (size_t)parts[i].out * in * es);
        memcpy(b + off, parts[i].b, (size_t)parts[i].out * sizeof(float));
        off += (size_t)parts[i].out;
    }
    *out = (up_linear){w, m->act_type, b, rows, in, NULL, NULL, NULL};
    return UP_OK;
}

up_status up_model_operand_copy(up_model *m, const float *src, size_t n, const void **out) {
    if (m->act_type == UP_T_F32) {
        *out = src;
        return UP_OK;
    }
    uint16_t *p = up_aligned_alloc(n * 2, "operand copy");
    if (!p) return UP_ERR_NOMEM;
    up_status r = up_model_own(m, p);
    if (r != UP_OK) return r;
    up_f32_to_bf16(p, src, n);
    *out = p;
    return UP_OK;
}

/* Whether bf16 products beat fp32 ones on this machine: a CPU with
 * AVX512-BF16 but no AMX (measured on an Intel Xeon family 6 model 207) runs
 * oneDNN's bf16 matmul 1.6x slower than fp32, an AMD Zen 4 1.85x faster, so
 * auto precision times both on an FFN-sized product once per process and
 * keeps the faster. One thread (the ratio is a property of a core, and a
 * single thread is not held up by another process on the other core), the
 * best of 10 alternated runs of each: about 40 ms. AMX skips the timing
 * (bf16 wins there by 3x and more). */
static int bf16_ratio_permille; /* fp32 time / bf16 time x 1000; 0: not measured */
static void time_bf16(void) {
    enum { M = 256, N = 1024, K = 384, REPS = 11 };
    up_gemm_ctx *ctx = NULL;
    float *a = up_aligned_alloc((size_t)M * K * 4 + (size_t)N * K * 4 + (size_t)M * N * 4, "precision probe");
    uint16_t *h = up_aligned_alloc(((size_t)M * K + (size_t)N * K) * 2, "precision probe");
    int prev = omp_get_max_threads();
    omp_set_num_threads(1);
    if (!a || !h || up_gemm_ctx_new(UP_BACKEND_DNNL, 1, &ctx) != UP_OK) goto done;
    float *b = a + (size_t)M * K, *c = b + (size_t)N * K;
    for (size_t i = 0; i < (size_t)M * K + (size_t)N * K; i++) a[i] = (float)((i * 2654435761u) % 1000) / 1000.0f - 0.5f;
    up_f32_to_bf16(h, a, (size_t)M * K + (size_t)N * K);
    double best[2] = {1e30, 1e30};
    for (int rep = 0; rep < REPS; rep++)
        for (int p = 0; p < 2; p++) {
            up_gemm_args g = up_gemm_plain(M, N, K);
            g.A = p ? (const void *)h : a; g.lda = K; g.ta = p ? UP_T_BF16 : UP_T_F32;
            g.B = p ? (const void *)(h + (size_t)M * K) : b; g.ldb = K; g.transB = 1; g.tb = g.ta;
            g.C = c; g.ldc = N;
            double t0 = up_now();
            if (up_gemm(ctx, &g) != UP_OK) goto done;
            double t = up_now() - t0;
            if (rep > 0 && t < best[p]) best[p] = t; /* rep 0 creates the primitives */
        }
    bf16_ratio_permille = (int)(1000.0 * best[0] / best[1]);
    up_log(UP_LOG_INFO, "precision auto: bf16 products run at %.2fx fp32's speed on this CPU: %s",
           bf16_ratio_permille / 1000.0, bf16_ratio_permille >= 1100 ? "bf16" : "fp32");
done:
    omp_set_num_threads(prev);
    up_gemm_ctx_free(ctx);
    free(a);
    free(h);
}

double up_bf16_speed(void) { return bf16_ratio_permille / 1000.0; }

/* 1 when auto precision should take bf16 here (measured once per process;
 * UP_AUTO_PRECISION=bf16 or fp32 in the environment skips the timing). */
static int bf16_pays(void) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    const char *env = getenv("UP_AUTO_PRECISION");
    if (env && !strcmp(env, "bf16")) return 1;
    if (env && !strcmp(env, "fp32")) return 0;
    if (!strcmp(up_kernel_isa(), "amx")) return 1;
    pthread_once(&once, time_bf16);
    return bf16_ratio_permille >= 1100;
}

static up_status choose_compute(up_model *m, const up_model_opts *o) {
    up_cpu_features f = up_cpu_detect();
    m->backend = o->backend;
#ifdef UP_WITH_DNNL
    if (m->backend == UP_BACKEND_AUTO) m->backend = UP_BACKEND_DNNL;
#else
    if (m->backend == UP_BACKEND_AUTO) m->backend = UP_BACKEND_REF;
    if (m->backend == UP_BACKEND_DNNL)
        return up_fail(UP_ERR_UNSUPPORTED, "this build has no oneDNN backend (built with UP_WITH_DNNL=OFF)");
#endif
    m->precision = o->precision;
    /* what oneDNN dispatches to here (ONEDNN_MAX_CPU_ISA may lower it): native bf16 products need
     * AVX512-BF16 or AMX; AVX-512 alone emulates them (slow); below AVX-512 oneDNN has no bf16 product */
    const char *isa = up_kernel_isa();
    int native = !strcmp(isa, "amx") || !strcmp(isa, "avx512_bf16");
    int any = native || !strcmp(isa, "avx512_vnni") || !strcmp(isa, "avx512");
    int fast_bf16 = (f.amx_bf16 || f.avx512_bf16) && (m->backend != UP_BACKEND_DNNL || native);
    if (m->precision == UP_PREC_AUTO)
        m->precision = (fast_bf16 && m->backend == UP_BACKEND_DNNL && bf16_pays()) ? UP_PREC_BF16 : UP_PREC_FP32;
    if (m->precision == UP_PREC_BF16 && m->backend == UP_BACKEND_DNNL && !any)
        return up_fail(UP_ERR_UNSUPPORTED, "bf16 products need AVX-512 in oneDNN, and this CPU dispatches to %s: use "
                       "precision fp32 (what auto picks here)", isa);
    if (m->precision == UP_PREC_INT8 && m->backend == UP_BACKEND_DNNL && !up_kernel_int8())
        return up_fail(UP_ERR_UNSUPPORTED, "int8 products need VNNI or AMX in oneDNN, and this CPU dispatches to %s: use "
                       "precision fp32 (what auto picks here)", isa);
    if (m->precision == UP_PREC_BF16 && !fast_bf16)
        up_log(UP_LOG_WARN, "bf16 requested but this CPU has neither AMX nor AVX512-BF16: it will be emulated and slow");
    /* the reference backend computes bf16 operands in fp32 math: still valid, just slow */
    m->act_type = m->precision == UP_PREC_BF16 ? UP_T_BF16 : UP_T_F32;
    m->wtype = m->precision == UP_PREC_INT8 ? UP_T_S8 : m->act_type;
    m->threads = o->threads > 0 ? o->threads : 0; /* 0: the caller's OpenMP setting */
    return UP_OK;
}

up_status up_model_quantize_linear(up_model *m, up_linear *l) {
    if (!l->w || l->wt == UP_T_S8) return UP_OK;
    if (l->wt != UP_T_F32) return up_fail(UP_ERR_INTERNAL, "int8 quantization takes fp32 weights");
    int8_t *q;
    float *sc; /* ws, then wsum */
    up_status r;
    if ((r = owned_alloc(m, (size_t)l->out * l->in, "int8 weights", (void **)&q)) ||
        (r = owned_alloc(m, (size_t)l->out * 8, "int8 weight scales", (void **)&sc)))
        return r;
    up_quant_rows_s8(q, sc, l->w, (size_t)l->out, l->in, l->in);
    float *sum = sc + l->out;
    for (int n = 0; n < l->out; n++) {
        int64_t t = 0;
        for (int k = 0; k < l->in; k++) t += q[(size_t)n * l->in + k];
        sum[n] = sc[n] * (float)t;
    }
    l->wf = l->w;
    l->w = q;
    l->ws = sc;
    l->wsum = sum;
    l->wt = UP_T_S8;
    return UP_OK;
}

/* int8 precision: the encoder layers' four linears of every layer */
static up_status quantize_layers(up_model *m) {
    up_status r = UP_OK;
    for (int l = 0; l < m->cfg.num_hidden_layers && m->wtype == UP_T_S8 && !r; l++) {
        up_layer *L = &m->w.layers[l];
        if (!(r = up_model_quantize_linear(m, &L->qkv)) && !(r = up_model_quantize_linear(m, &L->o)) &&
            !(r = up_model_quantize_linear(m, &L->ffn_in)))
            r = up_model_quantize_linear(m, &L->ffn_out);
    }
    return r;
}

static up_status model_alloc(up_model *m) {
    m->w.layers = up_calloc((size_t)m->cfg.num_hidden_layers, sizeof(up_layer), "layers");
    return m->w.layers ? UP_OK : UP_ERR_NOMEM;
}

static void dtype_summary(up_model *m) {
    size_t n = 0;
    m->dtypes[0] = 0;
    for (int d = 0; d < UP_DT_COUNT; d++)
        if (m->dtype_counts[d])
            n += (size_t)snprintf(m->dtypes + n, sizeof m->dtypes - n, "%s%s x%zu", n ? ", " : "",
                                  up_dtype_name((up_dtype)d), m->dtype_counts[d]);
}

up_status up_model_load(const char *dir, const up_model_opts *opts, up_model **out) {
    *out = NULL;
    up_model_opts o = opts ? *opts : up_model_opts_default();
    up_model *m = up_calloc(1, sizeof *m, "model");
    if (!m) return UP_ERR_NOMEM;
    snprintf(m->dir, sizeof m->dir, "%s", dir);
    char path[1200];
    up_status r;
    if ((r = up_path_join(path, sizeof path, dir, "config.json"))) goto fail;
    if (!up_file_exists(path)) {
        r = up_fail(UP_ERR_IO, "%s: no config.json: a model directory holds config.json, "
                    "model.safetensors (or an index and shards) and vocab.txt", dir);
        goto fail;
    }
    if ((r = up_config_load(path, &m->cfg))) goto fail;
    const up_family *fam = up_family_find(m->cfg.model_type);
    if (!fam) {
        r = up_fail(UP_ERR_UNSUPPORTED, "%s: model_type '%s' is not supported (supported: bert)", path, m->cfg.model_type);
        goto fail;
    }
    if ((r = choose_compute(m, &o))) goto fail;
    if ((r = up_st_open_dir(dir, &m->st))) goto fail;
    if ((r = model_alloc(m))) goto fail;
    if ((r = fam->bind(m, m->st)) || (r = quantize_layers(m))) goto fail;
    dtype_summary(m);
    if ((r = up_path_join(path, sizeof path, dir, "vocab.txt"))) goto fail;
    if (up_file_exists(path)) {
        up_tokenizer_opts to = up_tokenizer_opts_default();
        if ((r = up_tokenizer_load(path, &to, &m->tok))) goto fail;
        if (up_tokenizer_vocab_size(m->tok) != m->cfg.vocab_size)
            up_log(UP_LOG_WARN, "%s has %lld tokens but config.json says vocab_size %lld", path,
                   (long long)up_tokenizer_vocab_size(m->tok), (long long)m->cfg.vocab_size);
        if (up_tokenizer_vocab_size(m->tok) > m->cfg.vocab_size) {
            r = up_fail(UP_ERR_FORMAT, "%s: %lld tokens, more than config.json's vocab_size %lld: ids past the "
                        "embedding table would be produced", path, (long long)up_tokenizer_vocab_size(m->tok),
                        (long long)m->cfg.vocab_size);
            goto fail;
        }
    } else {
        up_log(UP_LOG_WARN, "%s: no vocab.txt: the model can run on ids but not on text", dir);
    }
    *out = m;
    return UP_OK;
fail:
    up_model_free(m);
    return r;
}

static const void *rand_tensor(up_model *m, size_t n, up_type t, float std, float mean, up_rng *s, up_status *r) {
    if (*r) return NULL;
    void *p = up_aligned_alloc(n * (t == UP_T_BF16 ? 2 : 4), "random weights");
    if (!p || (*r = up_model_own(m, p))) {
        if (!*r) *r = UP_ERR_NOMEM;
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        float v = mean + std * (std ? up_rng_normal(s) : 0);
        if (t == UP_T_BF16) ((uint16_t *)p)[i] = up_bf16_from(v);
        else ((float *)p)[i] = v;
    }
    m->n_params += (int64_t)n;
    return p;
}

static void rand_linear(up_model *m, up_linear *l, int out, int in, up_rng *s, up_status *r) {
    l->out = out; l->in = in; l->wt = m->act_type;
    l->w = rand_tensor(m, (size_t)out * in, m->act_type, 0.02f, 0, s, r);
    l->b = rand_tensor(m, (size_t)out, UP_T_F32, 0, 0, s, r); /* BERT's init: zero biases */
}

up_status up_model_random(const up_config *cfg, const up_model_opts *opts, uint64_t seed, up_model **out) {
    return up_model_random_heads(cfg, opts, seed, 0, out);
}

up_status up_model_random_heads(const up_config *cfg, const up_model_opts *opts, uint64_t seed, int mlm,
                                up_model **out) {
    *out = NULL;
    up_model_opts o = opts ? *opts : up_model_opts_default();
    up_model *m = up_calloc(1, sizeof *m, "model");
    if (!m) return UP_ERR_NOMEM;
    m->cfg = *cfg;
    snprintf(m->dir, sizeof m->dir, "(random)");
    up_status r;
    if ((r = choose_compute(m, &o)) || (r = model_alloc(m))) goto fail;
    up_rng s = up_rng_seed(seed * 2654435761u + 1);
    int C = (int)cfg->hidden_size, F = (int)cfg->intermediate_size;
    up_weights *w = &m->w;
    w->word = rand_tensor(m, (size_t)cfg->vocab_size * C, UP_T_F32, 0.02f, 0, &s, &r);
    w->pos = rand_tensor(m, (size_t)cfg->max_position_embeddings * C, UP_T_F32, 0.02f, 0, &s, &r);
    w->type = rand_tensor(m, (size_t)cfg->type_vocab_size * C, UP_T_F32, 0.02f, 0, &s, &r);
    w->emb_ln_g = rand_tensor(m, C, UP_T_F32, 0, 1, &s, &r);
    w->emb_ln_b = rand_tensor(m, C, UP_T_F32, 0, 0, &s, &r);
    for (int l = 0; l < cfg->num_hidden_layers; l++) {
        up_layer *L = &w->layers[l];
        rand_linear(m, &L->qkv, 3 * C, C, &s, &r);
        rand_linear(m, &L->o, C, C, &s, &r);
        rand_linear(m, &L->ffn_in, F, C, &s, &r);
        rand_linear(m, &L->ffn_out, C, F, &s, &r);
        L->ln1_g = rand_tensor(m, C, UP_T_F32, 0, 1, &s, &r);
        L->ln1_b = rand_tensor(m, C, UP_T_F32, 0, 0, &s, &r);
        L->ln2_g = rand_tensor(m, C, UP_T_F32, 0, 1, &s, &r);
        L->ln2_b = rand_tensor(m, C, UP_T_F32, 0, 0, &s, &r);
    }
    rand_linear(m, &w->pooler, C, C, &s, &r);
    w->has_pooler = 1;
    if (cfg->num_labels > 0) {
        rand_linear(m, &w->classifier, cfg->num_labels, C, &s, &r);
        w->has_classifier = 1;
    }
    if (mlm) { /* BertForMaskedLM: an MLM head, no pooler */
        w->has_pooler = 0;
        rand_linear(m, &w->mlm_transform, C, C, &s, &r);
        w->mlm_ln_g = rand_tensor(m, C, UP_T_F32, 0, 1, &s, &r);
        w->mlm_ln_b = rand_tensor(m, C, UP_T_F32, 0, 0, &s, &r);
        w->mlm_bias = rand_tensor(m, (size_t)cfg->vocab_size, UP_T_F32, 0, 0, &s, &r);
        if (!r) r = up_model_operand_copy(m, w->word, (size_t)cfg->vocab_size * C, &w->word_e);
        w->has_mlm = 1;
    }
    if (r || (r = quantize_layers(m))) goto fail;
    snprintf(m->dtypes, sizeof m->dtypes, "random %s", m->act_type == UP_T_BF16 ? "BF16" : "F32");
    *out = m;
    return UP_OK;
fail:
    up_model_free(m);
    return r;
}

void up_model_free(up_model *m) {
    if (!m) return;
    for (int i = 0; i < m->n_owned; i++) free(m->owned[i]);
    free(m->owned);
    free(m->w.layers);
    if (!m->is_view) { /* a view borrows the base's mapping and tokenizer */
        up_st_close(m->st);
        up_tokenizer_free(m->tok);
    }
    free(m);
}

const up_config *up_model_config(const up_model *m) { return &m->cfg; }
const up_tokenizer *up_model_tokenizer(const up_model *m) { return m->tok; }
up_precision up_model_precision(const up_model *m) { return m->precision; }
up_backend up_model_backend(const up_model *m) { return m->backend; }
int64_t up_model_param_count(const up_model *m) { return m->n_params; }
int up_model_has_classifier(const up_model *m) { return m->w.has_classifier; }
const char *up_model_dtypes(const up_model *m) { return m->dtypes; }
int up_model_num_files(const up_model *m) { return m->st ? up_st_num_files(m->st) : 0; }

static int cmp_tensor_name(const void *a, const void *b) {
    const up_st_tensor *x = *(const up_st_tensor *const *)a, *y = *(const up_st_tensor *const *)b;
    return strcmp(x->name, y->name);
}

static up_status fingerprint(up_model *m);

/* Computed on first use (hashing the weights takes a while); threads that
 * ask at once wait for one computation. */
up_status up_model_fingerprint(up_model *m, const char **hex) {
    static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&mu);
    up_status st = m->fingerprint[0] ? UP_OK : fingerprint(m);
    pthread_mutex_unlock(&mu);
    if (!st) *hex = m->fingerprint;
    return st;
}

static up_status fingerprint(up_model *m) {
    if (!m->st) return up_fail(UP_ERR_INVALID, "%s: a model with random weights has no fingerprint", m->dir);
    size_t n = up_st_count(m->st);
    const up_st_tensor **ts = up_malloc(n * sizeof *ts, "fingerprint");
    if (!ts) return UP_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) ts[i] = up_st_get(m->st, i);
    qsort(ts, n, sizeof *ts, cmp_tensor_name);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char md[32];
    unsigned int mdlen = 0;
    int ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    char head[512];
    const up_config *c = &m->cfg;
    int hl = snprintf(head, sizeof head, "unplug-base-v1 L=%lld C=%lld NH=%lld F=%lld V=%lld P=%lld TV=%lld act=%d eps=%.9g",
                      (long long)c->num_hidden_layers, (long long)c->hidden_size, (long long)c->num_attention_heads,
                      (long long)c->intermediate_size, (long long)c->vocab_size, (long long)c->max_position_embeddings,
                      (long long)c->type_vocab_size, (int)c->hidden_act, (double)c->layer_norm_eps);
    ok = ok && EVP_DigestUpdate(ctx, head, (size_t)hl + 1);
    for (size_t i = 0; ok && i < n; i++) {
        const up_st_tensor *t = ts[i];
        char meta[400];
        int ml = snprintf(meta, sizeof meta, "%s|%s|%d", t->name, up_dtype_name(t->dtype), t->ndim);
        ok = EVP_DigestUpdate(ctx, meta, (size_t)ml + 1) && EVP_DigestUpdate(ctx, t->shape, (size_t)t->ndim * 8) &&
             EVP_DigestUpdate(ctx, t->data, t->nbytes);
    }
    ok = ok && EVP_DigestFinal_ex(ctx, md, &mdlen);
    EVP_MD_CTX_free(ctx);
    free(ts);
    if (!ok) return up_fail(UP_ERR_INTERNAL, "SHA-256 of the model failed");
    char fp[65];
    for (int i = 0; i < 32; i++) snprintf(fp + 2 * i, 3, "%02x", md[i]);
    memcpy(m->fingerprint, fp, sizeof fp);
    return UP_OK;
}
