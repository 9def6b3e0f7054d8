/* test_gemm.c: every backend of up_gemm against the plain-C definition, over
 * shapes, transposes, strides, batches, epilogues and operand types. */
#include "test.h"
#include "kernels/gemm.h"
#include "kernels/ops.h"

static uint64_t rng = 88172645463325252ull;
static float frand(void) {
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return (float)((rng >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}

static void *make(size_t n, up_type t) {
    if (t == UP_T_BF16) {
        uint16_t *p = malloc(n * 2);
        for (size_t i = 0; i < n; i++) p[i] = up_bf16_from(frand());
        return p;
    }
    float *p = malloc(n * 4);
    for (size_t i = 0; i < n; i++) p[i] = frand();
    return p;
}

static float get(const void *p, up_type t, size_t i) {
    return t == UP_T_BF16 ? up_bf16_scalar(((const uint16_t *)p)[i]) : ((const float *)p)[i];
}

/* runs g on backend and on the reference, compares C */
static void check_case(up_gemm_ctx *ctx, up_gemm_args g, const char *name, double tol) {
    size_t csize = (size_t)g.batch0 * g.batch1 * g.M * g.ldc + 64;
    if (g.batch0 * g.batch1 * g.batch2 > 1)
        csize = (size_t)(g.batch2 * g.sc2 + g.batch0 * g.sc0 + g.batch1 * g.sc1) + (size_t)g.M * g.ldc + 64;
    void *c1 = make(csize, g.tc), *c2 = malloc(csize * (g.tc == UP_T_BF16 ? 2 : 4));
    memcpy(c2, c1, csize * (g.tc == UP_T_BF16 ? 2 : 4));
    up_gemm_args r = g;
    g.C = c1;
    r.C = c2;
    if (up_gemm_ctx_backend(ctx) == UP_BACKEND_DNNL && !test_dnnl_bf16() &&
        (g.ta == UP_T_BF16 || g.tb == UP_T_BF16 || g.tc == UP_T_BF16)) { /* no bf16 product below AVX-512: an error */
        CHECK(up_gemm(ctx, &g) != UP_OK);
        free(c1);
        free(c2);
        return;
    }
    if (up_gemm_ctx_backend(ctx) == UP_BACKEND_DNNL && !up_kernel_int8() && g.tb == UP_T_S8) { /* no VNNI: refused */
        CHECK_FAIL(up_gemm(ctx, &g), "need VNNI or AMX");
        free(c1);
        free(c2);
        return;
    }
    CHECK_OK(up_gemm(ctx, &g));
    up_gemm_ref(&r);
    double maxd = 0, maxv = 0;
    for (size_t i = 0; i < csize; i++) {
        double a = get(c1, g.tc, i), b = get(c2, g.tc, i), d = a > b ? a - b : b - a;
        if (d > maxd) maxd = d;
        if (b > maxv || -b > maxv) maxv = b > 0 ? b : -b;
    }
    CHECK_MSG(maxd <= tol * (1 + maxv), "%s on %s: max diff %g (max |v| %g, tol %g)", name,
              up_backend_name(up_gemm_ctx_backend(ctx)), maxd, maxv, tol);
    free(c1);
    free(c2);
}

static void run_all(up_gemm_ctx *ctx) {
    static const int shapes[][3] = {{1, 1, 1}, {7, 5, 3}, {33, 17, 65}, {128, 96, 64}, {4, 300, 129}};
    for (int s = 0; s < 5; s++)
        for (int tA = 0; tA < 2; tA++)
            for (int tB = 0; tB < 2; tB++)
                for (int types = 0; types < 3; types++)
                    for (int epi = 0; epi < 5; epi++) {
                        int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
                        up_gemm_args g = up_gemm_plain(M, N, K);
                        up_type t = types == 0 ? UP_T_F32 : UP_T_BF16;
                        g.ta = g.tb = t;
                        g.tc = types == 2 ? UP_T_BF16 : UP_T_F32;
                        g.transA = tA;
                        g.transB = tB;
                        g.lda = (tA ? M : K) + 3; /* padded rows */
                        g.ldb = (tB ? K : N) + 1;
                        g.ldc = N + 2;
                        void *A = make((size_t)(tA ? K : M) * g.lda, t), *B = make((size_t)(tB ? N : K) * g.ldb, t);
                        float *bias = make(N, UP_T_F32), *add = make((size_t)M * (N + 5), UP_T_F32);
                        g.A = A; g.B = B;
                        g.act = (up_epi)epi;
                        if (epi >= 1) g.bias = bias;
                        if (epi == 2 || epi == 0) { g.add = add; g.ldadd = N + 5; }
                        if (epi == 3) g.beta = 1.0f;
                        if (epi == 4) g.bias = NULL, g.alpha = 0.125f;
                        char name[128];
                        snprintf(name, sizeof name, "M%d N%d K%d tA%d tB%d types%d epi%d", M, N, K, tA, tB, types, epi);
                        double tol = types ? 2e-2 : 1e-5;
                        if (types == 0 && up_gemm_ctx_backend(ctx) == UP_BACKEND_DNNL) tol = 1e-4; /* oneDNN may use reduced-precision fp32 paths? no: keep tight */
                        check_case(ctx, g, name, tol);
                        free(A); free(B); free(bias); free(add);
                    }
    /* attention-style batched products: (B, NH) batch dims over a (B,T,3C) buffer */
    for (int types = 0; types < 2; types++) {
        int B = 3, NH = 4, T = 9, D = 8, C = NH * D;
        up_type t = types ? UP_T_BF16 : UP_T_F32;
        void *qkv = make((size_t)B * T * 3 * C, t);
        up_gemm_args g = up_gemm_plain(T, T, D); /* S = Q K^T */
        g.batch0 = B; g.batch1 = NH;
        g.A = qkv; g.lda = 3 * C; g.sa0 = (int64_t)T * 3 * C; g.sa1 = D; g.ta = t;
        g.B = (const char *)qkv + (size_t)C * (types ? 2 : 4); g.ldb = 3 * C; g.transB = 1;
        g.sb0 = (int64_t)T * 3 * C; g.sb1 = D; g.tb = t;
        g.ldc = T; g.sc0 = (int64_t)NH * T * T; g.sc1 = (int64_t)T * T; g.tc = UP_T_F32;
        g.alpha = 0.35355339f;
        check_case(ctx, g, types ? "attention scores bf16" : "attention scores f32", types ? 2e-2 : 1e-5);
        free(qkv);
    }
    /* broadcast batches (zero strides) over three batch dims: the K and V
     * planes [p][b][h] (T,D) = x[b] (T,C) W[(1+p)A + hD ..]^T of the
     * inference attention, and a plain (B, NH) product with A broadcast */
    for (int types = 0; types < 4; types++) { /* types & 1: bf16; types & 2: an expert keeping 2 of 4 heads */
        int B = 3, NH = 4, T = 9, D = 8, C = NH * D, nh = types & 2 ? 2 : NH, A = nh * D;
        up_type t = types & 1 ? UP_T_BF16 : UP_T_F32;
        void *x = make((size_t)NH * T * C, t), *w = make((size_t)3 * A * C, t); /* x: (NH,T,C) for the second */
        up_gemm_args g = up_gemm_plain(T, D, C);
        g.batch2 = 2; g.batch0 = B; g.batch1 = nh;
        g.A = x; g.lda = C; g.sa0 = (int64_t)T * C; g.ta = t;
        g.B = (const char *)w + (size_t)A * C * (t == UP_T_BF16 ? 2 : 4); g.ldb = C; g.transB = 1; g.tb = t;
        g.sb2 = (int64_t)A * C; g.sb1 = (int64_t)D * C;
        g.ldc = D; g.sc2 = (int64_t)B * T * A; g.sc0 = (int64_t)nh * T * D; g.sc1 = (int64_t)T * D;
        g.tc = t;
        char name[64];
        snprintf(name, sizeof name, "K,V planes %s, %d of %d heads", t == UP_T_BF16 ? "bf16" : "f32", nh, NH);
        check_case(ctx, g, name, t == UP_T_BF16 ? 2e-2 : 1e-5);
        if (types & 2) { free(x); free(w); continue; }
        g = up_gemm_plain(T, D, C);
        g.batch0 = B; g.batch1 = NH;
        g.A = x; g.lda = C; g.sa1 = (int64_t)T * C; g.ta = t; /* A broadcast over batch0 */
        g.B = w; g.ldb = D; g.sb0 = (int64_t)C * D; g.sb1 = (int64_t)3 * C * D; g.tb = t;
        g.ldc = D + 1; g.sc0 = (int64_t)NH * T * (D + 1); g.sc1 = (int64_t)T * (D + 1); g.tc = UP_T_F32;
        g.bias = (const float *)make(D, UP_T_F32);
        check_case(ctx, g, types ? "broadcast A bf16" : "broadcast A f32", types ? 2e-2 : 1e-5);
        free((void *)g.bias);
        g.bias = NULL;
        g.sc0 = 0;
        CHECK_FAIL(up_gemm(ctx, &g), "cannot be broadcast"); /* a zero output stride */
        g.sc0 = (int64_t)NH * T * (D + 1);
        g.sb0 = 0; /* A and B both broadcast over batch0 */
        CHECK_FAIL(up_gemm(ctx, &g), "both operands");
        free(x); free(w);
    }
}

/* int8 products: uint8 or int8 A by int8 B, the plain integer sums (exact
 * in fp32 here: K 255 127 < 2^24), plain and batched, against the
 * reference; anything more is refused. */
static void run_int8(up_gemm_ctx *ctx) {
    static const int shapes[][3] = {{1, 1, 1}, {7, 5, 3}, {33, 17, 65}, {128, 96, 64}, {64, 1536, 384}};
    for (int s = 0; s < 5; s++)
        for (int v = 0; v < 2; v++) {
            int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2], u8 = v == 0;
            uint8_t *a = malloc((size_t)M * K);
            int8_t *b = malloc((size_t)N * K);
            for (size_t i = 0; i < (size_t)M * K; i++) /* uint8 up to 255, int8 -127..127: no lane may saturate */
                a[i] = u8 ? (uint8_t)(int)(127.5f * (frand() + 1)) : (uint8_t)(int8_t)(int)(frand() * 127);
            for (size_t i = 0; i < (size_t)N * K; i++) b[i] = (int8_t)(int)(frand() * 127);
            up_gemm_args g = up_gemm_plain(M, N, K);
            g.A = a; g.lda = K; g.ta = u8 ? UP_T_U8 : UP_T_S8;
            g.B = b; g.ldb = K; g.transB = 1; g.tb = UP_T_S8; g.b_const = 1;
            g.ldc = N + 3; g.tc = UP_T_F32; /* a row stride past N */
            check_case(ctx, g, "int8", 0);
            free(a); free(b);
        }
    /* batched, attention's two products on head-major planes (B,NH,T,D):
     * S = Q K^T (s8 by s8, K transposed) and ctx = P V (u8 by s8) into the
     * strided (B,T,NH D) context */
    for (int s = 0; s < 2; s++) {
        const int B = 3, NH = 2, T = s ? 37 : 16, D = s ? 32 : 8;
        const size_t plane = (size_t)B * NH * T * D, pp = (size_t)B * NH * T * T;
        int8_t *qk = malloc(2 * plane), *v = malloc(plane);
        uint8_t *p = malloc(pp);
        for (size_t i = 0; i < 2 * plane; i++) qk[i] = (int8_t)(int)(frand() * 127);
        for (size_t i = 0; i < plane; i++) v[i] = (int8_t)(int)(frand() * 127);
        for (size_t i = 0; i < pp; i++) p[i] = (uint8_t)(int)(127.5f * (frand() + 1));
        up_gemm_args g = up_gemm_plain(T, T, D);
        g.batch0 = B; g.batch1 = NH;
        g.A = qk; g.lda = D; g.sa0 = (int64_t)NH * T * D; g.sa1 = (int64_t)T * D; g.ta = UP_T_S8;
        g.B = qk + plane; g.ldb = D; g.transB = 1; g.sb0 = g.sa0; g.sb1 = g.sa1; g.tb = UP_T_S8;
        g.ldc = T; g.sc0 = (int64_t)NH * T * T; g.sc1 = (int64_t)T * T; g.tc = UP_T_F32;
        check_case(ctx, g, "int8 batched Q K^T", 0);
        g = up_gemm_plain(T, D, T);
        g.batch0 = B; g.batch1 = NH;
        g.A = p; g.lda = T; g.sa0 = (int64_t)NH * T * T; g.sa1 = (int64_t)T * T; g.ta = UP_T_U8;
        g.B = v; g.ldb = D; g.sb0 = (int64_t)NH * T * D; g.sb1 = (int64_t)T * D; g.tb = UP_T_S8;
        g.ldc = NH * D; g.sc0 = (int64_t)T * NH * D; g.sc1 = D; g.tc = UP_T_F32;
        check_case(ctx, g, "int8 batched P V", 0);
        free(qk); free(v); free(p);
    }
    /* mixed or extended int8 arguments are refused */
    int8_t q[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    float one[2] = {1, 1}, c[8];
    up_gemm_args g = up_gemm_plain(2, 2, 2);
    g.A = q; g.lda = 2; g.ta = UP_T_S8; g.B = q; g.ldb = 2; g.tb = UP_T_F32; g.C = c; g.ldc = 2;
    CHECK_FAIL(up_gemm(ctx, &g), "int8 takes"); /* s8 by f32 */
    g.tb = UP_T_S8; g.bias = one;
    CHECK_FAIL(up_gemm(ctx, &g), "int8 takes"); /* a bias */
    g.bias = NULL; g.act = UP_EPI_GELU;
    CHECK_FAIL(up_gemm(ctx, &g), "int8 takes"); /* an activation */
    g.act = UP_EPI_NONE; g.add = one; g.ldadd = 2;
    CHECK_FAIL(up_gemm(ctx, &g), "int8 takes"); /* a residual */
    g.add = NULL; g.beta = 1;
    CHECK_FAIL(up_gemm(ctx, &g), "int8 takes"); /* beta */
    g.beta = 0; g.alpha = 2;
    CHECK_FAIL(up_gemm(ctx, &g), "int8 takes"); /* alpha */
    g.alpha = 1; g.transA = 1;
    CHECK_FAIL(up_gemm(ctx, &g), "int8 takes"); /* A transposed */
}

/* quantization: every value within half a step of its original */
static void check_quant(void) {
    enum { M = 37, K = 301 };
    float *x = make((size_t)M * K, UP_T_F32), sc[M];
    int8_t *q = malloc((size_t)M * K);
    for (int k = 0; k < K; k++) x[5 * K + k] = 0; /* a row of zeros */
    up_quant_rows_s8(q, sc, x, M, K, K);
    double worst = 0;
    for (int m = 0; m < M; m++)
        for (int k = 0; k < K; k++) {
            double d = fabs(q[m * K + k] * (double)sc[m] - x[m * K + k]) / (sc[m] > 0 ? sc[m] : 1);
            if (d > worst) worst = d;
            CHECK(q[m * K + k] >= -127 && q[m * K + k] <= 127);
        }
    CHECK_MSG(worst <= 0.5001 && sc[5] == 0, "per-row quantization off by %g steps (row of zeros scale %g)", worst, sc[5]);
    /* uint8 with a range: within half a step inside it, clamped outside it */
    float lo[M], hi[M];
    uint8_t *u = malloc((size_t)M * K);
    up_row_ranges(lo, hi, x, M, K, K);
    CHECK(lo[5] == 0 && hi[5] == 0);
    /* rows 0..M-2 with their own ranges, row M-1 with -0.5 .. 0.5 of its -1 .. 1 data (clamped outside) */
    float st[M];
    for (int m = 0; m < M; m++) st[m] = (hi[m] - lo[m]) / 255;
    lo[M - 1] = -0.5f, st[M - 1] = 1.0f / 255;
    up_quant_u8(u, x, M, K, K, lo, st);
    worst = 0;
    int clamped = 0;
    for (int m = 0; m < M; m++)
        for (int k = 0; k < K; k++) {
            float v = x[m * K + k];
            if (m < M - 1) CHECK(lo[m] <= v && v <= hi[m]);
            if (st[m] == 0) {
                CHECK(u[m * K + k] == 0);
                continue;
            }
            if (v < lo[m] || v > lo[m] + 255 * st[m]) {
                CHECK(u[m * K + k] == (v < lo[m] ? 0 : 255));
                clamped++;
                continue;
            }
            double d = fabs(lo[m] + st[m] * u[m * K + k] - v) / st[m];
            if (d > worst) worst = d;
        }
    CHECK_MSG(worst <= 0.5001 && clamped > 0, "uint8 quantization off by %g steps (%d clamped)", worst, clamped);
    free(u);
    free(x);
    free(q);
}

int main(void) {
    up_gemm_ctx *ref = NULL, *dn = NULL;
    CHECK_OK(up_gemm_ctx_new(UP_BACKEND_REF, 0, &ref));
    run_all(ref);
    check_quant();
    if (up_gemm_ctx_new(UP_BACKEND_DNNL, 0, &dn) == UP_OK) {
        run_all(dn);
        run_int8(dn);
    }
    else printf("oneDNN backend not built: %s\n", up_errmsg());
    up_gemm_args bad = up_gemm_plain(0, 1, 1);
    CHECK_FAIL(up_gemm(ref, &bad), "sizes must be positive", "M=0");
    up_gemm_ctx_free(ref);
    up_gemm_ctx_free(dn);
    return test_done();
}
