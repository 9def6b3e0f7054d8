/* gemm_ref.c: the plain-C definition of up_gemm (see gemm.h), fp32 math. */
#include <math.h>
#include <stddef.h>
#include "kernels/gemm.h"

static inline float load(const void *p, up_type t, int64_t i) {
    return t == UP_T_BF16 ? up_bf16_scalar(((const uint16_t *)p)[i])
           : t == UP_T_S8 ? (float)((const int8_t *)p)[i]
           : t == UP_T_U8 ? (float)((const uint8_t *)p)[i] : ((const float *)p)[i];
}

static inline float epilogue(float x, up_epi act) {
    switch (act) {
    case UP_EPI_NONE: return x;
    case UP_EPI_GELU: return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
    case UP_EPI_GELU_TANH: {
        float u = 0.79788456080286536f * (x + 0.044715f * x * x * x);
        return 0.5f * x * (1.0f + tanhf(u));
    }
    case UP_EPI_RELU: return x > 0 ? x : 0;
    case UP_EPI_TANH: return tanhf(x);
    }
    return x;
}

void up_gemm_ref(const up_gemm_args *g) {
    const int int8 = g->tb == UP_T_S8;
    for (int b2 = 0; b2 < g->batch2; b2++)
    for (int b0 = 0; b0 < g->batch0; b0++)
        for (int b1 = 0; b1 < g->batch1; b1++) {
            int64_t oa = b2 * g->sa2 + b0 * g->sa0 + b1 * g->sa1;
            int64_t ob = b2 * g->sb2 + b0 * g->sb0 + b1 * g->sb1;
            int64_t oc = b2 * g->sc2 + b0 * g->sc0 + b1 * g->sc1;
#pragma omp parallel for schedule(static)
            for (int m = 0; m < g->M; m++) {
                for (int n = 0; n < g->N; n++) {
                    float acc = 0.0f;
                    int64_t iacc = 0; /* int8: the exact integer sum, as oneDNN's int32 */
                    for (int k = 0; k < g->K; k++) {
                        int64_t ia = oa + (g->transA ? (int64_t)k * g->lda + m : (int64_t)m * g->lda + k);
                        int64_t ib = ob + (g->transB ? (int64_t)n * g->ldb + k : (int64_t)k * g->ldb + n);
                        if (int8) iacc += (int64_t)load(g->A, g->ta, ia) * (int64_t)load(g->B, g->tb, ib);
                        else acc += load(g->A, g->ta, ia) * load(g->B, g->tb, ib);
                    }
                    if (int8) acc = (float)iacc;
                    float v = g->alpha * acc + (g->bias ? g->bias[n] : 0.0f);
                    v = epilogue(v, g->act);
                    if (g->add) v += g->add[(int64_t)m * g->ldadd + n];
                    int64_t ic = oc + (int64_t)m * g->ldc + n;
                    if (g->beta != 0.0f) v += load(g->C, g->tc, ic);
                    if (g->tc == UP_T_BF16) ((uint16_t *)g->C)[ic] = up_bf16_from(v);
                    else ((float *)g->C)[ic] = v;
                }
            }
        }
}

__attribute__((target_clones("avx512f", "avx2", "default")))
static void f32_to_bf16_range(uint16_t *dst, const float *src, size_t n) {
#pragma omp simd
    for (size_t i = 0; i < n; i++) dst[i] = up_bf16_from(src[i]);
}

#ifdef UP_X86
#include <immintrin.h>
#include <stdatomic.h>
#include <stdlib.h>
int up_cpu_avx512bf16(void) {
    static _Atomic int has = -1; /* server workers may ask first at the same time */
    int h = atomic_load(&has);
    if (h < 0) atomic_store(&has, h = __builtin_cpu_supports("avx512bf16") && !getenv("UP_NO_AVX512BF16"));
    return h;
}

/* the native conversion (round to nearest even, as up_bf16_from; it reads
 * fp32 denormals as zero, which no weight or activation here is) */
__attribute__((target("avx512f,avx512bf16,avx512vl,avx512bw")))
static void f32_to_bf16_native(uint16_t *dst, const float *src, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm256_storeu_si256((__m256i *)(dst + i), (__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(src + i)));
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        _mm256_mask_storeu_epi16(dst + i, m, (__m256i)_mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(m, src + i)));
    }
}
#else
int up_cpu_avx512bf16(void) { return 0; }
#endif

__attribute__((target_clones("avx512f", "avx2", "default")))
static void bf16_to_f32_range(float *dst, const uint16_t *src, size_t n) {
#pragma omp simd
    for (size_t i = 0; i < n; i++) dst[i] = up_bf16_scalar(src[i]);
}

/* chunks of 16K elements in parallel; each chunk runs the cloned kernel */
#define CONV_CHUNK 16384
void up_f32_to_bf16(uint16_t *dst, const float *src, size_t n) {
#ifdef UP_X86
    if (up_cpu_avx512bf16()) {
#pragma omp parallel for schedule(static) if (n > 4 * CONV_CHUNK)
        for (size_t i = 0; i < n; i += CONV_CHUNK)
            f32_to_bf16_native(dst + i, src + i, n - i < CONV_CHUNK ? n - i : CONV_CHUNK);
        return;
    }
#endif
#pragma omp parallel for schedule(static) if (n > 4 * CONV_CHUNK)
    for (size_t i = 0; i < n; i += CONV_CHUNK) f32_to_bf16_range(dst + i, src + i, n - i < CONV_CHUNK ? n - i : CONV_CHUNK);
}

void up_bf16_to_f32(float *dst, const uint16_t *src, size_t n) {
#pragma omp parallel for schedule(static) if (n > 4 * CONV_CHUNK)
    for (size_t i = 0; i < n; i += CONV_CHUNK) bf16_to_f32_range(dst + i, src + i, n - i < CONV_CHUNK ? n - i : CONV_CHUNK);
}
