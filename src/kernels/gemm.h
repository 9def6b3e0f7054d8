/*
 * gemm.h: the one matrix-product entry point of the project.
 *
 * Every matrix product in unplug goes through up_gemm(). Two backends sit
 * behind it: a plain-C reference (fp32, the readable definition that tests
 * compare against) and oneDNN (fp32, or bf16 operands with fp32 accumulation
 * on AVX512-BF16 / AMX), chosen at run time.
 *
 * Definition, for every batch index (b2, b0, b1) (b2 outermost):
 *     C[m,n] = act(alpha * sum_k A[m,k] * B[k,n] + bias[n]) + add[m,n]
 *                                   (beta == 1: C[m,n] += the same)
 * A is (M,K) with row stride lda (transA: stored as (K,M)), B is (K,N) with row
 * stride ldb (transB: stored as (N,K), the layout of a PyTorch Linear weight).
 * Operands may be F32 or BF16, accumulated in fp32; or int8 (below). A batch stride
 * of 0 in A or B broadcasts that operand over the batch dimension (C's
 * strides must not be 0).
 *
 *     up_gemm_args g = up_gemm_plain(M, N, K);
 *     g.A = x; g.lda = K;                    // x is (M,K)
 *     g.B = w; g.ldb = K; g.transB = 1;      // w is (N,K)
 *     g.C = y; g.ldc = N; g.bias = b;        // y is (M,N)
 *     up_gemm(ctx, &g);
 */
#ifndef UP_GEMM_H
#define UP_GEMM_H

#include <stdint.h>
#include "unplug.h"

typedef enum { UP_T_F32 = 0, UP_T_BF16 = 1, UP_T_S8 = 2, UP_T_U8 = 3 } up_type;
static inline size_t up_type_size(up_type t) { return t == UP_T_F32 ? 4 : t == UP_T_BF16 ? 2 : 1; }
typedef enum { UP_EPI_NONE = 0, UP_EPI_GELU, UP_EPI_GELU_TANH, UP_EPI_RELU, UP_EPI_TANH } up_epi;

typedef struct {
    int M, N, K;
    /* up to three batch dimensions (1 if unused; batch2 is the outermost)
     * and the element strides of each operand along them */
    int batch0, batch1, batch2;
    int64_t sa0, sa1, sb0, sb1, sc0, sc1, sa2, sb2, sc2;
    const void *A; int64_t lda; int transA; up_type ta;
    const void *B; int64_t ldb; int transB; up_type tb;
    void *C; int64_t ldc; up_type tc;
    float alpha;           /* default 1 */
    float beta;            /* 0 or 1 */
    const float *bias;     /* (N) or NULL */
    up_epi act;
    const float *add;      /* (M,N) fp32 with row stride ldadd, or NULL; not with batches */
    int64_t ldadd;
    /* int8 (A U8 or S8, B S8, C F32): C gets the plain integer sums (int32
     * accumulation; exact in fp32 below 2^24, e.g. uint8 x int8 over
     * K <= 518), batched or not (no bias, act, add or beta; alpha 1): the
     * caller applies scales and the rest (up_dequant_act), which oneDNN 2.6
     * runs slower as post-ops, and per input row not at all in its fast
     * kernels. */
    /* Set when B is a constant weight used many times: lets the backend cache a
     * prepared copy keyed by the pointer. */
    int b_const;
} up_gemm_args;

static inline up_gemm_args up_gemm_plain(int M, int N, int K) {
    up_gemm_args g = {0};
    g.M = M; g.N = N; g.K = K;
    g.batch0 = g.batch1 = g.batch2 = 1;
    g.alpha = 1.0f;
    return g;
}

typedef struct up_gemm_ctx up_gemm_ctx;

/* backend UP_BACKEND_AUTO picks oneDNN when built with it. */
up_status up_gemm_ctx_new(up_backend backend, int threads, up_gemm_ctx **out);
void up_gemm_ctx_free(up_gemm_ctx *c);
up_backend up_gemm_ctx_backend(const up_gemm_ctx *c);

up_status up_gemm(up_gemm_ctx *c, const up_gemm_args *g);

/* 1 when oneDNN's int8 products here use VNNI or AMX (what int8 needs: below
 * them oneDNN multiplies uint8 by int8 pairs into saturating 16-bit sums,
 * wrong for full-range weights). The reference backend has no such limit. */
int up_kernel_int8(void);

/* The plain-C definition (fp32 math on any operand type); used by the
 * reference backend and by tests. */
void up_gemm_ref(const up_gemm_args *g);

/* x86-64 with GCC-style intrinsics and target attributes: the kernels that
 * dispatch on AVX512-BF16 are compiled only there */
#if defined(__x86_64__) && defined(__GNUC__)
#define UP_X86 1
#endif

/* 1 when the CPU converts to bf16 natively (AVX512-BF16) and the
 * environment does not set UP_NO_AVX512BF16 (which forces the portable
 * kernels, for tests and comparisons). */
int up_cpu_avx512bf16(void);

/* bf16 <-> fp32 conversions (round to nearest even), vectorized where the CPU allows. */
void up_f32_to_bf16(uint16_t *dst, const float *src, size_t n);
void up_bf16_to_f32(float *dst, const uint16_t *src, size_t n);
static inline float up_bf16_scalar(uint16_t h) {
    union { uint32_t u; float f; } v;
    v.u = (uint32_t)h << 16;
    return v.f;
}
static inline uint16_t up_bf16_from(float f) {
    union { uint32_t u; float f; } v;
    v.f = f;
    if ((v.u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((v.u >> 16) | 0x40); /* quiet NaN */
    uint32_t r = v.u + 0x7fffu + ((v.u >> 16) & 1u);
    return (uint16_t)(r >> 16);
}

#endif
