/*
 * ops.c: layernorm, masked attention softmax and embeddings (see ops.h).
 *
 * Each op is a row kernel over a range of rows, compiled for AVX-512, AVX2
 * and baseline x86-64 (target_clones picks one at load time), called from a
 * plain OpenMP loop over chunks: GCC does not clone the bodies it outlines
 * for `omp parallel`, so the parallel loop must call the cloned kernel.
 */
#include "kernels/ops.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <stdatomic.h>
#include "kernels/gemm.h"
#ifdef UP_X86
#include <immintrin.h>
#endif

/* rows per parallel chunk: enough work to amortize the dispatch */
#define CHUNK 16

/* exp(x) for x <= 0 (softmax arguments), branch-free so loops vectorize:
 * 2^n * p(r) with n = round(x / ln2) by the 1.5 * 2^23 magic-number trick,
 * r = x - n ln2 (Cody-Waite split), Cephes' polynomial (~1 ulp). Arguments
 * below -87 give exp(-87) ~ 1.6e-38, i.e. zero next to the row maximum's 1. */
static inline float exp_neg(float x) {
    float xc = x > -87.0f ? x : -87.0f;
    float k = xc * 1.44269504088896341f + 12582912.0f;
    float n = k - 12582912.0f;
    float r = xc - n * 0.693359375f + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    int32_t ki;
    memcpy(&ki, &k, sizeof ki);
    int32_t bits = (ki - 0x4B400000 + 127) << 23; /* the exponent field of 2^n */
    float two_n;
    memcpy(&two_n, &bits, sizeof two_n);
    return p * two_n;
}

/* sum of n floats in 16 partial sums: vectorizes without -ffast-math */
static inline float sum_lanes(const float *x, int n) {
    float lanes[16] = {0};
    int j = 0;
    for (; j + 16 <= n; j += 16)
        for (int k = 0; k < 16; k++) lanes[k] += x[j + k];
    float s = 0;
    for (int k = 0; k < 16; k++) s += lanes[k];
    for (; j < n; j++) s += x[j];
    return s;
}

UP_CLONES
static void layernorm_rows(size_t lo, size_t hi, float *out, uint16_t *out_bf16, float *mean, float *rstd,
                           const float *inp, const float *gamma, const float *beta, int C, float eps) {
    for (size_t r = lo; r < hi; r++) {
        const float *x = inp + r * C;
        float *y = out + r * C;
        float s = 0;
#pragma omp simd reduction(+ : s)
        for (int i = 0; i < C; i++) s += x[i];
        float m = s / C;
        float v = 0;
#pragma omp simd reduction(+ : v)
        for (int i = 0; i < C; i++) {
            float d = x[i] - m;
            v += d * d;
        }
        float rs = 1.0f / sqrtf(v / C + eps);
#pragma omp simd
        for (int i = 0; i < C; i++) y[i] = (x[i] - m) * rs * gamma[i] + beta[i];
        if (out_bf16) {
            uint16_t *yb = out_bf16 + r * C;
#pragma omp simd
            for (int i = 0; i < C; i++) yb[i] = up_bf16_from(y[i]);
        }
        if (mean) mean[r] = m;
        if (rstd) rstd[r] = rs;
    }
}

#ifdef UP_X86

/* layernorm_rows on AVX512-BF16 for C a multiple of 16: the same two-pass
 * mean and variance, the fp32 and bf16 outputs written in one pass. */
__attribute__((target("avx512f,avx512bf16,avx512vl,avx512bw")))
static void layernorm_rows_bf16(size_t lo, size_t hi, float *out, uint16_t *out_bf16, float *mean, float *rstd,
                                const float *inp, const float *gamma, const float *beta, int C, float eps) {
    for (size_t r = lo; r < hi; r++) {
        const float *x = inp + r * C;
        float *y = out + r * C;
        uint16_t *yb = out_bf16 + r * C;
        __m512 vs = _mm512_setzero_ps();
        for (int i = 0; i < C; i += 16) vs = _mm512_add_ps(vs, _mm512_loadu_ps(x + i));
        float m = _mm512_reduce_add_ps(vs) / C;
        __m512 vm = _mm512_set1_ps(m), vv = _mm512_setzero_ps();
        for (int i = 0; i < C; i += 16) {
            __m512 d = _mm512_sub_ps(_mm512_loadu_ps(x + i), vm);
            vv = _mm512_fmadd_ps(d, d, vv);
        }
        float rs = 1.0f / sqrtf(_mm512_reduce_add_ps(vv) / C + eps);
        __m512 vr = _mm512_set1_ps(rs);
        for (int i = 0; i < C; i += 16) {
            __m512 d = _mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(x + i), vm), vr);
            __m512 o = _mm512_fmadd_ps(d, _mm512_loadu_ps(gamma + i), _mm512_loadu_ps(beta + i));
            _mm512_storeu_ps(y + i, o);
            _mm256_storeu_si256((__m256i *)(yb + i), (__m256i)_mm512_cvtneps_pbh(o));
        }
        if (mean) mean[r] = m;
        if (rstd) rstd[r] = rs;
    }
}
#endif

void up_layernorm_forward(float *out, uint16_t *out_bf16, float *mean, float *rstd,
                          const float *inp, const float *gamma, const float *beta,
                          size_t rows, int C, float eps) {
#ifdef UP_X86
    if (out_bf16 && C % 16 == 0 && up_cpu_avx512bf16()) {
#pragma omp parallel for schedule(static)
        for (size_t lo = 0; lo < rows; lo += CHUNK)
            layernorm_rows_bf16(lo, lo + CHUNK < rows ? lo + CHUNK : rows, out, out_bf16, mean, rstd, inp, gamma, beta,
                                C, eps);
        return;
    }
#endif
#pragma omp parallel for schedule(static)
    for (size_t lo = 0; lo < rows; lo += CHUNK)
        layernorm_rows(lo, lo + CHUNK < rows ? lo + CHUNK : rows, out, out_bf16, mean, rstd, inp, gamma, beta, C, eps);
}

UP_CLONES
static void ln_param_grad_cols(float *dgamma, float *dbeta, const float *dout, const float *inp, const float *mean,
                               const float *rstd, size_t rows, int C, int j0, int j1) {
    float g[64] = {0}, b[64] = {0};
    int w = j1 - j0;
    for (size_t r = 0; r < rows; r++) {
        const float *dy = dout + r * C + j0, *x = inp + r * C + j0;
        float m = mean[r], rs = rstd[r];
        for (int k = 0; k < w; k++) {
            g[k] += dy[k] * (x[k] - m) * rs;
            b[k] += dy[k];
        }
    }
    for (int k = 0; k < w; k++) {
        if (dgamma) dgamma[j0 + k] += g[k];
        if (dbeta) dbeta[j0 + k] += b[k];
    }
}

void up_layernorm_backward(float *dinp, float *dgamma, float *dbeta, const float *dout,
                           const float *inp, const float *gamma, const float *mean, const float *rstd,
                           size_t rows, int C) {
    if (dinp) {
#pragma omp parallel for schedule(static)
        for (size_t r = 0; r < rows; r++) {
            const float *x = inp + r * C, *dy = dout + r * C;
            float m = mean[r], rs = rstd[r], a = 0, b = 0;
            for (int i = 0; i < C; i++) {
                float dn = dy[i] * gamma[i];
                a += dn;
                b += dn * (x[i] - m) * rs;
            }
            a /= C;
            b /= C;
            float *dx = dinp + r * C;
            for (int i = 0; i < C; i++) {
                float n = (x[i] - m) * rs;
                dx[i] += (dy[i] * gamma[i] - a - n * b) * rs;
            }
        }
    }
    if (dgamma || dbeta) {
        /* column chunks in parallel, rows outer: contiguous reads, no two
         * threads writing the same parameter */
#pragma omp parallel for schedule(static)
        for (int j0 = 0; j0 < C; j0 += 64)
            ln_param_grad_cols(dgamma, dbeta, dout, inp, mean, rstd, rows, C, j0, j0 + 64 < C ? j0 + 64 : C);
    }
}

UP_CLONES
static void softmax_rows(size_t lo, size_t hi, float *probs32, uint16_t *probs16, float *scores,
                         const int32_t *lens, int NH, int T, float scale) {
    for (size_t r = lo; r < hi; r++) {
        int b = (int)(r / ((size_t)NH * T));
        int len = lens[b] < T ? lens[b] : T;
        float *s = scores + r * T;
        float mx = -INFINITY;
#pragma omp simd reduction(max : mx)
        for (int j = 0; j < len; j++) mx = s[j] > mx ? s[j] : mx;
        for (int j = 0; j < len; j++) s[j] = exp_neg(scale * (s[j] - mx)); /* exps overwrite the scores */
        float sum = sum_lanes(s, len);
        float inv = len > 0 ? 1.0f / sum : 0.0f;
        if (probs32) {
            float *p = probs32 + r * T;
#pragma omp simd
            for (int j = 0; j < len; j++) p[j] = s[j] * inv;
            for (int j = len; j < T; j++) p[j] = 0.0f;
        } else {
            uint16_t *p = probs16 + r * T;
#pragma omp simd
            for (int j = 0; j < len; j++) p[j] = up_bf16_from(s[j] * inv);
            for (int j = len; j < T; j++) p[j] = 0;
        }
    }
}

#ifdef UP_X86
/* 2^y for y >= -150 on 16 lanes: 2^n 2^f with n = round(y), f in
 * [-1/2, 1/2], 2^f by its degree-6 Taylor polynomial in f ln 2 (relative
 * error < 2e-7) and vscalefps for 2^n (underflow goes to 0) */
__attribute__((target("avx512f"))) static inline __m512 exp2_512(__m512 y) {
    __m512 n = _mm512_roundscale_ps(y, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 f = _mm512_sub_ps(y, n);
    __m512 q = _mm512_fmadd_ps(_mm512_set1_ps(0.00015403530f), f, _mm512_set1_ps(0.00133335581f));
    q = _mm512_fmadd_ps(q, f, _mm512_set1_ps(0.00961812911f));
    q = _mm512_fmadd_ps(q, f, _mm512_set1_ps(0.05550410866f));
    q = _mm512_fmadd_ps(q, f, _mm512_set1_ps(0.24022650695f));
    q = _mm512_fmadd_ps(q, f, _mm512_set1_ps(0.69314718056f));
    return _mm512_scalef_ps(_mm512_fmadd_ps(q, f, _mm512_set1_ps(1.0f)), n);
}

/* The softmax on AVX512-BF16, bf16 or fp32 output (measured 2.4x the cloned
 * loop above at 32 x 4 x 128 x 128; the fp32 output serves fp32 inference
 * and training): exp as 2^y = 2^n 2^f with n = round(y),
 * f in [-1/2, 1/2], 2^f by its degree-6 Taylor polynomial in f ln 2
 * (relative error < 2e-7) and vscalefps for 2^n (underflow goes to 0), one
 * native conversion to bf16 per 16 probabilities. */
__attribute__((target("avx512f,avx512bf16,avx512vl,avx512bw")))
static void softmax_rows_bf16(size_t lo, size_t hi, float *probs32, uint16_t *probs16, float *scores,
                              const int32_t *lens, int NH, int T, float scale) {
    const __m512 k = _mm512_set1_ps(scale * 1.44269504088896341f), lo_clamp = _mm512_set1_ps(-150.0f);
    /* the exps go to a row buffer on the stack (in L1), not back over the
     * scores: their write-back to memory was a third of the kernel's traffic */
    float row[1024] __attribute__((aligned(64)));
    for (size_t r = lo; r < hi; r++) {
        int b = (int)(r / ((size_t)NH * T));
        int len = lens[b] < T ? lens[b] : T;
        float *s = scores + r * T, *ex = T <= 1024 ? row : s;
        __m512 vmx = _mm512_set1_ps(-INFINITY);
        for (int j = 0; j < len; j += 16) {
            __mmask16 m = len - j >= 16 ? 0xffff : (__mmask16)((1u << (len - j)) - 1);
            vmx = _mm512_mask_max_ps(vmx, m, vmx, _mm512_maskz_loadu_ps(m, s + j));
        }
        __m512 mx = _mm512_set1_ps(_mm512_reduce_max_ps(vmx)), vsum = _mm512_setzero_ps();
        for (int j = 0; j < len; j += 16) {
            __mmask16 m = len - j >= 16 ? 0xffff : (__mmask16)((1u << (len - j)) - 1);
            __m512 y = _mm512_max_ps(_mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, s + j), mx), k), lo_clamp);
            __m512 e = _mm512_maskz_mov_ps(m, exp2_512(y));
            _mm512_mask_storeu_ps(ex + j, m, e);
            vsum = _mm512_add_ps(vsum, e);
        }
        float sum = _mm512_reduce_add_ps(vsum);
        __m512 inv = _mm512_set1_ps(len > 0 ? 1.0f / sum : 0.0f);
        for (int j = 0; j < T; j += 16) {
            __mmask16 m = T - j >= 16 ? 0xffff : (__mmask16)((1u << (T - j)) - 1);
            /* keys past len: zero */
            __m512 e = _mm512_maskz_loadu_ps(j >= len ? 0 : j + 16 > len ? (__mmask16)((1u << (len - j)) - 1) : m, ex + j);
            if (probs32) {
                _mm512_mask_storeu_ps(probs32 + r * T + j, m, _mm512_mul_ps(e, inv));
                continue;
            }
            __m256bh h = _mm512_cvtneps_pbh(_mm512_mul_ps(e, inv));
            _mm256_mask_storeu_epi16(probs16 + r * T + j, m, (__m256i)h);
        }
    }
}

#endif

void up_attn_softmax_forward(float *probs32, uint16_t *probs16, float *scores,
                             const int32_t *lens, int B, int NH, int T, float scale) {
    size_t rows = (size_t)B * NH * T;
#ifdef UP_X86
    if (up_cpu_avx512bf16()) {
#pragma omp parallel for schedule(static)
        for (size_t lo = 0; lo < rows; lo += CHUNK)
            softmax_rows_bf16(lo, lo + CHUNK < rows ? lo + CHUNK : rows, probs32, probs16, scores, lens, NH, T, scale);
        return;
    }
#endif
#pragma omp parallel for schedule(static)
    for (size_t lo = 0; lo < rows; lo += CHUNK)
        softmax_rows(lo, lo + CHUNK < rows ? lo + CHUNK : rows, probs32, probs16, scores, lens, NH, T, scale);
}

void up_attn_softmax_backward(float *dscores, const float *dprobs, const float *probs,
                              int B, int NH, int T, float scale) {
    size_t rows = (size_t)B * NH * T;
#pragma omp parallel for schedule(static)
    for (size_t r = 0; r < rows; r++) {
        const float *p = probs + r * T, *dp = dprobs + r * T;
        float dot = 0;
        for (int j = 0; j < T; j++) dot += p[j] * dp[j];
        float *ds = dscores + r * T;
        for (int j = 0; j < T; j++) ds[j] = scale * p[j] * (dp[j] - dot);
    }
}

/* erf(x) by Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7) on the
 * vectorizable exp: GELU forward and backward in training are elementwise
 * over (B,T,F) and libm's erff/expf do not vectorize. */
static inline float erf_fast(float x) {
    float ax = x < 0 ? -x : x;
    float t = 1.0f / (1.0f + 0.3275911f * ax);
    float y = t * (0.254829592f + t * (-0.284496736f + t * (1.421413741f + t * (-1.453152027f + t * 1.061405429f))));
    float r = 1.0f - y * exp_neg(-ax * ax);
    return x < 0 ? -r : r;
}

/* tanh(u) = 1 - 2 / (exp(2u) + 1), on exp(-2|u|) to stay in exp_neg's range */
static inline float tanh_fast(float u) {
    float au = u < 0 ? -u : u;
    float e = exp_neg(-2.0f * au);
    float r = (1.0f - e) / (1.0f + e);
    return u < 0 ? -r : r;
}

static inline float act1(float x, up_actfn a) {
    switch (a) {
    case UP_ACTFN_GELU: return 0.5f * x * (1.0f + erf_fast(x * 0.70710678118654752f));
    case UP_ACTFN_GELU_TANH: return 0.5f * x * (1.0f + tanh_fast(0.79788456080286536f * (x + 0.044715f * x * x * x)));
    case UP_ACTFN_RELU: return x > 0 ? x : 0;
    case UP_ACTFN_TANH: return tanh_fast(x);
    case UP_ACTFN_NONE: return x;
    }
    return x;
}

static inline float dact1(float x, up_actfn a) {
    switch (a) {
    case UP_ACTFN_GELU: /* Phi(x) + x phi(x) */
        return 0.5f * (1.0f + erf_fast(x * 0.70710678118654752f)) + x * 0.39894228040143268f * exp_neg(-0.5f * x * x);
    case UP_ACTFN_GELU_TANH: {
        float u = 0.79788456080286536f * (x + 0.044715f * x * x * x), t = tanh_fast(u);
        float du = 0.79788456080286536f * (1.0f + 3.0f * 0.044715f * x * x);
        return 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * du;
    }
    case UP_ACTFN_RELU: return x > 0 ? 1.0f : 0.0f;
    case UP_ACTFN_TANH: {
        float t = tanh_fast(x);
        return 1.0f - t * t;
    }
    case UP_ACTFN_NONE: return 1.0f;
    }
    return 1.0f;
}

/* one kernel per (function, direction) so each inner loop is branch-free */
UP_CLONES
static void act_fwd_range(float *out, const float *inp, size_t n, up_actfn a) {
    switch (a) {
    case UP_ACTFN_GELU: for (size_t i = 0; i < n; i++) out[i] = act1(inp[i], UP_ACTFN_GELU); break;
    case UP_ACTFN_GELU_TANH: for (size_t i = 0; i < n; i++) out[i] = act1(inp[i], UP_ACTFN_GELU_TANH); break;
    case UP_ACTFN_RELU: for (size_t i = 0; i < n; i++) out[i] = act1(inp[i], UP_ACTFN_RELU); break;
    case UP_ACTFN_TANH: for (size_t i = 0; i < n; i++) out[i] = act1(inp[i], UP_ACTFN_TANH); break;
    case UP_ACTFN_NONE: if (out != inp) memcpy(out, inp, n * sizeof *out); break;
    }
}

UP_CLONES
static void act_bwd_range(float *dinp, const float *dout, const float *inp, size_t n, up_actfn a) {
    switch (a) {
    case UP_ACTFN_GELU: for (size_t i = 0; i < n; i++) dinp[i] += dout[i] * dact1(inp[i], UP_ACTFN_GELU); break;
    case UP_ACTFN_GELU_TANH: for (size_t i = 0; i < n; i++) dinp[i] += dout[i] * dact1(inp[i], UP_ACTFN_GELU_TANH); break;
    case UP_ACTFN_RELU: for (size_t i = 0; i < n; i++) dinp[i] += dout[i] * dact1(inp[i], UP_ACTFN_RELU); break;
    case UP_ACTFN_TANH: for (size_t i = 0; i < n; i++) dinp[i] += dout[i] * dact1(inp[i], UP_ACTFN_TANH); break;
    case UP_ACTFN_NONE: for (size_t i = 0; i < n; i++) dinp[i] += dout[i]; break;
    }
}

#define ACT_CHUNK 8192
void up_act_forward(float *out, const float *inp, size_t n, up_actfn a) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i += ACT_CHUNK) act_fwd_range(out + i, inp + i, n - i < ACT_CHUNK ? n - i : ACT_CHUNK, a);
}

void up_act_backward(float *dinp, const float *dout, const float *inp, size_t n, up_actfn a) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i += ACT_CHUNK)
        act_bwd_range(dinp + i, dout + i, inp + i, n - i < ACT_CHUNK ? n - i : ACT_CHUNK, a);
}

void up_tanh_backward_from_out(float *dinp, const float *dout, const float *out, size_t n) {
    for (size_t i = 0; i < n; i++) dinp[i] += dout[i] * (1.0f - out[i] * out[i]);
}

/* one row of softmax cross-entropy: returns the loss, writes the gradient
 * scaled by inv; x and d may alias */
UP_CLONES
static float xent_row(float *d, const float *x, int V, int y, float inv) {
    float mx = x[0];
    for (int j = 1; j < V; j++) mx = x[j] > mx ? x[j] : mx;
    float xy = x[y];
    for (int j = 0; j < V; j++) d[j] = exp_neg(x[j] - mx);
    float sum = sum_lanes(d, V);
    float lse = mx + logf(sum), s = inv / sum;
    for (int j = 0; j < V; j++) d[j] *= s;
    d[y] -= inv;
    return lse - xy;
}

double up_xent_forward_backward(float *dlogits, const float *logits, const int32_t *targets,
                                size_t N, int V, float grad_scale, size_t *count) {
    size_t n = 0;
    for (size_t r = 0; r < N; r++) n += targets[r] >= 0;
    double loss = 0;
    float inv = n ? grad_scale / (float)n : 0.0f;
#pragma omp parallel for schedule(static) reduction(+ : loss)
    for (size_t r = 0; r < N; r++) {
        if (targets[r] < 0) {
            memset(dlogits + r * V, 0, (size_t)V * sizeof *dlogits);
            continue;
        }
        loss += xent_row(dlogits + r * V, logits + r * V, V, targets[r], inv);
    }
    if (count) *count = n;
    return n ? loss / (double)n : 0.0;
}

UP_CLONES
static void bias_grad_cols(float *db, const float *dy, size_t M, int N, int j0, int j1) {
    float acc[256] = {0};
    int w = j1 - j0;
    for (size_t m = 0; m < M; m++) {
        const float *row = dy + m * N + j0;
        for (int k = 0; k < w; k++) acc[k] += row[k];
    }
    for (int k = 0; k < w; k++) db[j0 + k] += acc[k];
}

void up_bias_backward(float *db, const float *dy, size_t M, int N) {
#pragma omp parallel for schedule(static)
    for (int j0 = 0; j0 < N; j0 += 256) bias_grad_cols(db, dy, M, N, j0, j0 + 256 < N ? j0 + 256 : N);
}

UP_CLONES
static void embed_rows(size_t lo, size_t hi, float *x, const int32_t *ids, const int32_t *type_ids,
                       const float *word, const float *pos, const float *type, int T, int C) {
    for (size_t bt = lo; bt < hi; bt++) {
        size_t t = bt % (size_t)T;
        const float *w = word + (size_t)ids[bt] * C;
        const float *p = pos + t * C;
        const float *ty = type + (size_t)(type_ids ? type_ids[bt] : 0) * C;
        float *o = x + bt * C;
#pragma omp simd
        for (int i = 0; i < C; i++) o[i] = w[i] + p[i] + ty[i];
    }
}

void up_embed_forward(float *x, const int32_t *ids, const int32_t *type_ids,
                      const float *word, const float *pos, const float *type,
                      int B, int T, int C) {
    size_t rows = (size_t)B * T;
#pragma omp parallel for schedule(static)
    for (size_t lo = 0; lo < rows; lo += CHUNK)
        embed_rows(lo, lo + CHUNK < rows ? lo + CHUNK : rows, x, ids, type_ids, word, pos, type, T, C);
}

UP_CLONES
static void embed_grad_cols(float *dword, float *dpos, float *dtype, const float *dx, const int32_t *ids,
                            const int32_t *type_ids, int B, int T, int C, int j0, int j1) {
    int w = j1 - j0;
    for (int bt = 0; bt < B * T; bt++) {
        const float *g = dx + (size_t)bt * C + j0;
        if (dword) {
            float *d = dword + (size_t)ids[bt] * C + j0;
            for (int k = 0; k < w; k++) d[k] += g[k];
        }
        if (dpos) {
            float *d = dpos + (size_t)(bt % T) * C + j0;
            for (int k = 0; k < w; k++) d[k] += g[k];
        }
        if (dtype) {
            float *d = dtype + (size_t)(type_ids ? type_ids[bt] : 0) * C + j0;
            for (int k = 0; k < w; k++) d[k] += g[k];
        }
    }
}

void up_embed_backward(float *dword, float *dpos, float *dtype, const float *dx,
                       const int32_t *ids, const int32_t *type_ids, int B, int T, int C) {
    /* column chunks in parallel, rows in order: repeated ids never race */
#pragma omp parallel for schedule(static)
    for (int j0 = 0; j0 < C; j0 += 64)
        embed_grad_cols(dword, dpos, dtype, dx, ids, type_ids, B, T, C, j0, j0 + 64 < C ? j0 + 64 : C);
}

UP_CLONES
static float absmax(const float *x, int K) {
    float mx = 0.0f;
#pragma omp simd reduction(max : mx)
    for (int k = 0; k < K; k++) {
        float v = fabsf(x[k]);
        mx = v > mx ? v : mx;
    }
    return mx;
}

UP_CLONES
static void quant_row(int8_t *q, const float *x, int K, float inv) {
#pragma omp simd
    for (int k = 0; k < K; k++) q[k] = (int8_t)(int)roundf(x[k] * inv);
}

void up_quant_rows_s8(int8_t *q, float *scale, const float *x, size_t M, int K, int64_t ldx) {
#pragma omp parallel for schedule(static) if (M * (size_t)K > 65536)
    for (size_t m = 0; m < M; m++) {
        float mx = absmax(x + m * ldx, K);
        scale[m] = mx / 127.0f;
        quant_row(q + m * K, x + m * ldx, K, mx >= FLT_MIN ? 127.0f / mx : 0.0f);
    }
}

UP_CLONES
static void minmax(const float *x, int K, float *lo, float *hi) {
    float a = *lo, b = *hi;
#pragma omp simd reduction(min : a) reduction(max : b)
    for (int k = 0; k < K; k++) { /* comparisons vectorize; fminf and fmaxf (NaN rules) may not */
        a = x[k] < a ? x[k] : a;
        b = x[k] > b ? x[k] : b;
    }
    *lo = a;
    *hi = b;
}

UP_CLONES
static void quant_row_u8(uint8_t *q, const float *x, int K, float lo, float inv) {
#pragma omp simd
    for (int k = 0; k < K; k++) {
        float v = (x[k] - lo) * inv + 0.5f; /* round half up: v >= 0.5 for x >= lo */
        v = v < 0.0f ? 0.0f : v > 255.0f ? 255.0f : v;
        q[k] = (uint8_t)(int)v;
    }
}

#ifdef UP_X86
/* the two above with AVX-512 (GCC's vectorization of them spills and blends:
 * measured 9% of an int8 forward for quant_row_u8 alone) */
__attribute__((target("avx512f")))
static void minmax_512(const float *x, int K, float *lo, float *hi) {
    __m512 a = _mm512_set1_ps(*lo), b = _mm512_set1_ps(*hi);
    int k = 0;
    for (; k + 16 <= K; k += 16) {
        __m512 v = _mm512_loadu_ps(x + k);
        a = _mm512_min_ps(a, v);
        b = _mm512_max_ps(b, v);
    }
    if (k < K) {
        __mmask16 m = (__mmask16)((1u << (K - k)) - 1);
        __m512 v = _mm512_maskz_loadu_ps(m, x + k); /* zeros in the lanes past K: lo <= 0 <= hi already */
        a = _mm512_min_ps(a, v);
        b = _mm512_max_ps(b, v);
    }
    *lo = _mm512_reduce_min_ps(a);
    *hi = _mm512_reduce_max_ps(b);
}

__attribute__((target("avx512f")))
static void quant_row_u8_512(uint8_t *q, const float *x, int K, float lo, float inv) {
    const __m512 vlo = _mm512_set1_ps(lo), vinv = _mm512_set1_ps(inv), half = _mm512_set1_ps(0.5f),
                 zero = _mm512_setzero_ps(), top = _mm512_set1_ps(255.0f);
    for (int k = 0; k < K; k += 16) {
        __mmask16 m = K - k >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (K - k)) - 1);
        __m512 v = _mm512_add_ps(_mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + k), vlo), vinv), half);
        v = _mm512_min_ps(_mm512_max_ps(v, zero), top);
        _mm512_mask_cvtusepi32_storeu_epi8(q + k, m, _mm512_cvttps_epi32(v));
    }
}
/* AVX-512F, unless UP_NO_AVX512BF16 forces the portable kernels (tests) */
static int has_avx512(void) {
    static _Atomic int h = -1;
    int v = atomic_load(&h);
    if (v < 0) atomic_store(&h, v = __builtin_cpu_supports("avx512f") && !getenv("UP_NO_AVX512BF16"));
    return v;
}
#endif

UP_CLONES
static void dequant_row(float *y, int N, float s, float o, const float *ws, const float *wsum, const float *bias) {
    if (bias) {
#pragma omp simd
        for (int n = 0; n < N; n++) y[n] = y[n] * (s * ws[n]) + (o * wsum[n] + bias[n]);
    } else {
#pragma omp simd
        for (int n = 0; n < N; n++) y[n] = y[n] * (s * ws[n]) + o * wsum[n];
    }
}

UP_CLONES
static void add_row(float *y, const float *add, int N) {
#pragma omp simd
    for (int n = 0; n < N; n++) y[n] += add[n];
}

#ifdef UP_X86
/* GELU (erf) on 16 lanes: erf by Abramowitz & Stegun 7.1.26 as erf_fast,
 * its exp(-u^2) by exp2_512 */
__attribute__((target("avx512f"))) static inline __m512 gelu_512(__m512 x) {
    const __m512 one = _mm512_set1_ps(1.0f), half = _mm512_set1_ps(0.5f);
    __m512 u = _mm512_mul_ps(_mm512_abs_ps(x), _mm512_set1_ps(0.70710678118654752f));
    __m512 d = _mm512_fmadd_ps(u, _mm512_set1_ps(0.3275911f), one), t = _mm512_rcp14_ps(d);
    t = _mm512_mul_ps(t, _mm512_fnmadd_ps(d, t, _mm512_set1_ps(2.0f))); /* 1/d: one Newton step on rcp14 */
    __m512 p = _mm512_fmadd_ps(t, _mm512_set1_ps(1.061405429f), _mm512_set1_ps(-1.453152027f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(1.421413741f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-0.284496736f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.254829592f));
    p = _mm512_mul_ps(p, t);
    __m512 y = _mm512_max_ps(_mm512_mul_ps(_mm512_mul_ps(u, u), _mm512_set1_ps(-1.44269504088896341f)),
                             _mm512_set1_ps(-150.0f));
    __m512 erf = _mm512_fnmadd_ps(p, exp2_512(y), one); /* erf(|x| / sqrt 2) */
    /* 0.5 x (1 + sign(x) erf) */
    __mmask16 neg = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ);
    erf = _mm512_mask_sub_ps(erf, neg, _mm512_setzero_ps(), erf);
    return _mm512_mul_ps(_mm512_mul_ps(half, x), _mm512_add_ps(one, erf));
}

__attribute__((target("avx512f")))
static void dequant_row_512(float *y, int N, float s, float o, const up_int8_epi *e, const float *add, float *lo,
                            float *hi) {
    const __m512 vs = _mm512_set1_ps(s), vo = _mm512_set1_ps(o);
    __m512 mn = _mm512_setzero_ps(), mx = _mm512_setzero_ps();
    for (int n = 0; n < N; n += 16) {
        __mmask16 m = N - n >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (N - n)) - 1);
        __m512 b = _mm512_fmadd_ps(vo, _mm512_maskz_loadu_ps(m, e->wsum + n),
                                   e->bias ? _mm512_maskz_loadu_ps(m, e->bias + n) : _mm512_setzero_ps());
        __m512 v = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, y + n), _mm512_mul_ps(vs, _mm512_maskz_loadu_ps(m, e->ws + n)), b);
        if (e->act == UP_ACTFN_GELU) v = gelu_512(v); /* masked-off lanes: gelu(0) = 0 */
        if (add) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, add + n));
        _mm512_mask_storeu_ps(y + n, m, v);
        mn = _mm512_min_ps(mn, v); /* masked-off lanes are 0: inside the range already */
        mx = _mm512_max_ps(mx, v);
    }
    if (lo) *lo = _mm512_reduce_min_ps(mn), *hi = _mm512_reduce_max_ps(mx);
}
#endif

void up_dequant_act(float *y, int64_t ldy, size_t M, int N, const up_int8_epi *e, float *lo, float *hi) {
#pragma omp parallel for schedule(static) if (M * (size_t)N > 65536)
    for (size_t m = 0; m < M; m++) {
        float *yr = y + m * ldy;
        const float *ar = e->add ? e->add + m * e->ldadd : NULL;
#ifdef UP_X86
        if ((e->act == UP_ACTFN_GELU || e->act == UP_ACTFN_NONE) && has_avx512()) {
            dequant_row_512(yr, N, e->scale[m], e->offset[m], e, ar, lo ? &lo[m] : NULL, hi ? &hi[m] : NULL);
            continue;
        }
#endif
        dequant_row(yr, N, e->scale[m], e->offset[m], e->ws, e->wsum, e->bias);
        if (e->act != UP_ACTFN_NONE) act_fwd_range(yr, yr, (size_t)N, e->act);
        if (ar) add_row(yr, ar, N);
        if (lo) {
            lo[m] = hi[m] = 0.0f;
            minmax(yr, N, &lo[m], &hi[m]);
        }
    }
}

UP_CLONES
static void dequant_head_s8(int8_t *q, float *qs, const float *acc, int D, float s, float o, const float *ws,
                            const float *wsum, const float *bias) {
    float mx = 0.0f;
#pragma omp simd reduction(max : mx)
    for (int d = 0; d < D; d++) {
        float v = acc[d] * (s * ws[d]) + o * wsum[d] + (bias ? bias[d] : 0.0f);
        v = v < 0 ? -v : v;
        mx = v > mx ? v : mx;
    }
    *qs = mx / 127.0f;
    float inv = mx >= FLT_MIN ? 127.0f / mx : 0.0f; /* a subnormal largest value: 0 (its inverse overflows) */
#pragma omp simd
    for (int d = 0; d < D; d++) {
        float v = (acc[d] * (s * ws[d]) + o * wsum[d] + (bias ? bias[d] : 0.0f)) * inv;
        q[d] = (int8_t)(int)(v + (v < 0.0f ? -0.5f : 0.5f)); /* |v| <= 127: half away from zero */
    }
}

#ifdef UP_X86
/* the above on AVX-512, D a multiple of 16 up to 128 (the values stay in registers) */
__attribute__((target("avx512f")))
static void dequant_head_s8_512(int8_t *q, float *qs, const float *acc, int D, float s, float o, const float *ws,
                                const float *wsum, const float *bias) {
    __m512 v[8], mx = _mm512_setzero_ps();
    const __m512 vs = _mm512_set1_ps(s), vo = _mm512_set1_ps(o);
    const int nv = D / 16;
    for (int i = 0; i < nv; i++) {
        __m512 b = _mm512_fmadd_ps(vo, _mm512_loadu_ps(wsum + 16 * i), bias ? _mm512_loadu_ps(bias + 16 * i)
                                                                           : _mm512_setzero_ps());
        v[i] = _mm512_fmadd_ps(_mm512_loadu_ps(acc + 16 * i), _mm512_mul_ps(vs, _mm512_loadu_ps(ws + 16 * i)), b);
        mx = _mm512_max_ps(mx, _mm512_abs_ps(v[i]));
    }
    float m = _mm512_reduce_max_ps(mx);
    *qs = m / 127.0f;
    const __m512 inv = _mm512_set1_ps(m >= FLT_MIN ? 127.0f / m : 0.0f);
    const __m512i half = _mm512_castps_si512(_mm512_set1_ps(0.5f)), sign = _mm512_set1_epi32((int)0x80000000);
    for (int i = 0; i < nv; i++) { /* |v| <= 127, rounded half away from zero as the loop above */
        __m512 t = _mm512_mul_ps(v[i], inv);
        t = _mm512_add_ps(t, _mm512_castsi512_ps(_mm512_or_si512(half, _mm512_and_si512(_mm512_castps_si512(t), sign))));
        _mm_storeu_si128((__m128i *)(q + 16 * i), _mm512_cvtsepi32_epi8(_mm512_cvttps_epi32(t)));
    }
}
#endif

void up_dequant_heads_s8(int8_t *q, float *qs, const float *acc, int64_t ld, int B, int T, int P, int NH, int D,
                         const up_int8_epi *e) {
    const size_t rows = (size_t)B * T, plane = rows * NH * D, splane = rows * NH;
#ifdef UP_X86
    const int v512 = D % 16 == 0 && D <= 128 && has_avx512();
#endif
#pragma omp parallel for schedule(static) if (rows * P * NH * D > 65536)
    for (size_t m = 0; m < rows; m++) {
        size_t b = m / T, t = m % T;
        for (int p = 0; p < P; p++)
            for (int h = 0; h < NH; h++) {
                size_t n = ((size_t)p * NH + h) * D, i = (b * NH + h) * T + t;
                int8_t *qr = q + p * plane + i * D;
                float *qsr = qs + p * splane + i;
                const float *bias = e->bias ? e->bias + n : NULL;
#ifdef UP_X86
                if (v512) {
                    dequant_head_s8_512(qr, qsr, acc + m * ld + n, D, e->scale[m], e->offset[m], e->ws + n,
                                        e->wsum + n, bias);
                    continue;
                }
#endif
                dequant_head_s8(qr, qsr, acc + m * ld + n, D, e->scale[m], e->offset[m], e->ws + n, e->wsum + n, bias);
            }
    }
}

UP_CLONES
static void softmax_u8_rows(size_t lo, size_t hi, uint8_t *p8, float *rowf, float *scores, const int32_t *lens,
                            int NH, int T, float scale, const float *sq, const float *sk, const float *sv) {
    for (size_t r = lo; r < hi; r++) {
        size_t hb = r / T; /* (b, h) */
        int b = (int)(hb / NH);
        int len = lens[b] < T ? lens[b] : T;
        float *s = scores + r * T;
        const float *k = sk + hb * T, *v = sv + hb * T;
        const float a = scale * sq[r];
        float mx = -INFINITY;
#pragma omp simd reduction(max : mx)
        for (int j = 0; j < len; j++) {
            s[j] *= a * k[j];
            mx = s[j] > mx ? s[j] : mx;
        }
        float sum = 0.0f, wmax = 0.0f;
#pragma omp simd reduction(+ : sum) reduction(max : wmax)
        for (int j = 0; j < len; j++) {
            float e = exp_neg(s[j] - mx);
            sum += e;
            s[j] = e * v[j]; /* W up to the 1 / sum */
            wmax = s[j] > wmax ? s[j] : wmax;
        }
        rowf[r] = len > 0 && sum > 0.0f ? wmax / sum / 255.0f : 0.0f;
        float inv = wmax >= FLT_MIN ? 255.0f / wmax : 0.0f;
        uint8_t *p = p8 + r * T;
#pragma omp simd
        for (int j = 0; j < len; j++) p[j] = (uint8_t)(int)(s[j] * inv + 0.5f);
        for (int j = len; j < T; j++) p[j] = 0;
    }
}

#ifdef UP_X86
/* the above on AVX-512 (measured 13% of an int8 forward as cloned C), the
 * exponentials by exp2_512 */
__attribute__((target("avx512f")))
static void softmax_u8_rows_512(size_t lo, size_t hi, uint8_t *p8, float *rowf, float *scores, const int32_t *lens,
                                int NH, int T, float scale, const float *sq, const float *sk, const float *sv) {
    float row[1024] __attribute__((aligned(64)));
    for (size_t r = lo; r < hi; r++) {
        size_t hb = r / T;
        int b = (int)(hb / NH);
        int len = lens[b] < T ? lens[b] : T;
        float *s = scores + r * T, *w = T <= 1024 ? row : s;
        const float *k = sk + hb * T, *v = sv + hb * T;
        /* scale sq[i] sk[j] >= 0: the largest logit is a (sq, scale) multiple of the largest S sk */
        __m512 vmx = _mm512_set1_ps(-INFINITY);
        for (int j = 0; j < len; j += 16) {
            __mmask16 m = len - j >= 16 ? 0xffff : (__mmask16)((1u << (len - j)) - 1);
            __m512 t = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, s + j), _mm512_maskz_loadu_ps(m, k + j));
            _mm512_mask_storeu_ps(w + j, m, t);
            vmx = _mm512_mask_max_ps(vmx, m, vmx, t);
        }
        const __m512 a = _mm512_set1_ps(scale * sq[r] * 1.44269504088896341f), lo_clamp = _mm512_set1_ps(-150.0f);
        __m512 mx = _mm512_set1_ps(_mm512_reduce_max_ps(vmx)), vsum = _mm512_setzero_ps(), wmx = _mm512_setzero_ps();
        for (int j = 0; j < len; j += 16) {
            __mmask16 m = len - j >= 16 ? 0xffff : (__mmask16)((1u << (len - j)) - 1);
            __m512 y = _mm512_max_ps(_mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, w + j), mx), a), lo_clamp);
            __m512 e = _mm512_maskz_mov_ps(m, exp2_512(y));
            vsum = _mm512_add_ps(vsum, e);
            __m512 wv = _mm512_mul_ps(e, _mm512_maskz_loadu_ps(m, v + j));
            _mm512_mask_storeu_ps(w + j, m, wv);
            wmx = _mm512_max_ps(wmx, wv);
        }
        float sum = _mm512_reduce_add_ps(vsum), wmax = _mm512_reduce_max_ps(wmx);
        rowf[r] = len > 0 && sum > 0.0f ? wmax / sum / 255.0f : 0.0f;
        const __m512 inv = _mm512_set1_ps(wmax >= FLT_MIN ? 255.0f / wmax : 0.0f), half = _mm512_set1_ps(0.5f);
        for (int j = 0; j < T; j += 16) {
            __mmask16 m = T - j >= 16 ? 0xffff : (__mmask16)((1u << (T - j)) - 1);
            __mmask16 in = j >= len ? 0 : j + 16 > len ? (__mmask16)((1u << (len - j)) - 1) : m; /* keys past len: 0 */
            __m512 u = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(in, w + j), inv, half);
            _mm512_mask_cvtusepi32_storeu_epi8(p8 + r * T + j, m, _mm512_cvttps_epi32(u));
        }
    }
}
#endif

void up_attn_softmax_u8(uint8_t *p8, float *rowf, float *scores, const int32_t *lens, int B, int NH, int T,
                        float scale, const float *sq, const float *sk, const float *sv) {
    size_t rows = (size_t)B * NH * T;
#ifdef UP_X86
    if (has_avx512()) {
#pragma omp parallel for schedule(static)
        for (size_t lo = 0; lo < rows; lo += CHUNK)
            softmax_u8_rows_512(lo, lo + CHUNK < rows ? lo + CHUNK : rows, p8, rowf, scores, lens, NH, T, scale, sq,
                                sk, sv);
        return;
    }
#endif
#pragma omp parallel for schedule(static)
    for (size_t lo = 0; lo < rows; lo += CHUNK)
        softmax_u8_rows(lo, lo + CHUNK < rows ? lo + CHUNK : rows, p8, rowf, scores, lens, NH, T, scale, sq, sk, sv);
}

void up_row_ranges(float *lo, float *hi, const float *x, size_t M, int K, int64_t ldx) {
#pragma omp parallel for schedule(static) if (M * (size_t)K > 65536)
    for (size_t m = 0; m < M; m++) {
        lo[m] = hi[m] = 0.0f;
#ifdef UP_X86
        if (has_avx512()) {
            minmax_512(x + m * ldx, K, &lo[m], &hi[m]);
            continue;
        }
#endif
        minmax(x + m * ldx, K, &lo[m], &hi[m]);
    }
}

void up_quant_u8(uint8_t *q, const float *x, size_t M, int K, int64_t ldx, const float *lo, const float *scale) {
#pragma omp parallel for schedule(static) if (M * (size_t)K > 65536)
    for (size_t m = 0; m < M; m++) {
        const float *xr = x + m * ldx;
        float inv = scale[m] >= FLT_MIN ? 1.0f / scale[m] : 0.0f;
#ifdef UP_X86
        if (has_avx512()) {
            quant_row_u8_512(q + m * K, xr, K, lo[m], inv);
            continue;
        }
#endif
        quant_row_u8(q + m * K, xr, K, lo[m], inv);
    }
}
