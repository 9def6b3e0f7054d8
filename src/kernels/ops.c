/* ops.c: layernorm, masked attention softmax and embeddings (see ops.h). */
#include "kernels/ops.h"

#include <math.h>
#include <string.h>
#include "kernels/gemm.h"

/* exp(x) for x <= 0 (softmax arguments), branch-free so loops vectorize:
 * 2^n * p(r), r = x - n ln2, Cephes' polynomial; below -87 it returns 0. */
static inline float exp_neg(float x) {
    x = x < -87.0f ? -87.0f : x;
    float n = __builtin_floorf(x * 1.44269504088896341f + 0.5f);
    float r = x - n * 0.693359375f + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    union { uint32_t u; float f; } e;
    e.u = (uint32_t)((int32_t)n + 127) << 23;
    return x <= -87.0f ? 0.0f : p * e.f;
}

UP_CLONES
void up_layernorm_forward(float *out, uint16_t *out_bf16, float *mean, float *rstd,
                          const float *inp, const float *gamma, const float *beta,
                          size_t rows, int C, float eps) {
#pragma omp parallel for schedule(static)
    for (size_t r = 0; r < rows; r++) {
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

UP_CLONES
void up_attn_softmax_forward(float *probs32, uint16_t *probs16, float *scores,
                             const int32_t *lens, int B, int NH, int T, float scale) {
    size_t rows = (size_t)B * NH * T;
#pragma omp parallel for schedule(static)
    for (size_t r = 0; r < rows; r++) {
        int b = (int)(r / ((size_t)NH * T));
        int len = lens[b] < T ? lens[b] : T;
        float *s = scores + r * T;
        float mx = -INFINITY;
#pragma omp simd reduction(max : mx)
        for (int j = 0; j < len; j++) mx = s[j] > mx ? s[j] : mx;
        float *e = s; /* exps overwrite the scores row */
        float sum = 0;
#pragma omp simd reduction(+ : sum)
        for (int j = 0; j < len; j++) {
            e[j] = exp_neg(scale * (s[j] - mx));
            sum += e[j];
        }
        float inv = len > 0 ? 1.0f / sum : 0.0f;
        if (probs32) {
            float *p = probs32 + r * T;
#pragma omp simd
            for (int j = 0; j < len; j++) p[j] = e[j] * inv;
            for (int j = len; j < T; j++) p[j] = 0.0f;
        } else {
            uint16_t *p = probs16 + r * T;
#pragma omp simd
            for (int j = 0; j < len; j++) p[j] = up_bf16_from(e[j] * inv);
            for (int j = len; j < T; j++) p[j] = 0;
        }
    }
}

UP_CLONES
void up_embed_forward(float *x, const int32_t *ids, const int32_t *type_ids,
                      const float *word, const float *pos, const float *type,
                      int B, int T, int C) {
#pragma omp parallel for schedule(static)
    for (int bt = 0; bt < B * T; bt++) {
        int t = bt % T;
        const float *w = word + (size_t)ids[bt] * C;
        const float *p = pos + (size_t)t * C;
        const float *ty = type + (size_t)(type_ids ? type_ids[bt] : 0) * C;
        float *o = x + (size_t)bt * C;
#pragma omp simd
        for (int i = 0; i < C; i++) o[i] = w[i] + p[i] + ty[i];
    }
}
