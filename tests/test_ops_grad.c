/*
 * test_ops_grad.c: every op's backward against central finite differences
 * of an independent double-precision forward (written here, not the float
 * kernel), on random inputs. Loss = sum(w * out) with random w, so dout = w.
 * Tolerance: relative 1e-3 of the gradient's scale (float backward vs
 * double numerics; h = 1e-5 makes the truncation error ~1e-10).
 */
#include "test.h"
#include "kernels/ops.h"
#include "kernels/gemm.h"

static uint64_t rs = 0x9E3779B97F4A7C15ull;
static double urand(void) {
    rs ^= rs << 13; rs ^= rs >> 7; rs ^= rs << 17;
    return (double)(rs >> 11) / 9007199254740992.0 * 2.0 - 1.0;
}
static void fill(float *f, double *d, size_t n, double scale) {
    for (size_t i = 0; i < n; i++) { d[i] = urand() * scale; f[i] = (float)d[i]; d[i] = f[i]; }
}

static void compare(const char *what, const float *got, const double *want, size_t n) {
    double maxd = 0, scale = 1e-6;
    for (size_t i = 0; i < n; i++) {
        double d = fabs(got[i] - want[i]);
        maxd = d > maxd ? d : maxd;
        scale = fabs(want[i]) > scale ? fabs(want[i]) : scale;
    }
    CHECK_MSG(maxd <= 1e-3 * scale, "%s: max diff %.3g, gradient scale %.3g", what, maxd, scale);
    if (getenv("UP_VERBOSE")) printf("  %-28s rel %.3g\n", what, maxd / scale);
}

/* ---- double forwards ---- */
#define R 5
#define C 24
static double ln_loss(const double *x, const double *g, const double *b, const double *w) {
    double L = 0;
    for (int r = 0; r < R; r++) {
        double m = 0, v = 0;
        for (int i = 0; i < C; i++) m += x[r * C + i];
        m /= C;
        for (int i = 0; i < C; i++) v += (x[r * C + i] - m) * (x[r * C + i] - m);
        v /= C;
        double rstd = 1 / sqrt(v + 1e-5);
        for (int i = 0; i < C; i++) L += w[r * C + i] * ((x[r * C + i] - m) * rstd * g[i] + b[i]);
    }
    return L;
}

static void test_layernorm(void) {
    float x[R * C], g[C], b[C], w[R * C], out[R * C], mean[R], rstd[R];
    double xd[R * C], gd[C], bd[C], wd[R * C];
    fill(x, xd, R * C, 2); fill(g, gd, C, 1); fill(b, bd, C, 1); fill(w, wd, R * C, 1);
    up_layernorm_forward(out, NULL, mean, rstd, x, g, b, R, C, 1e-5f);
    float dx[R * C] = {0}, dg[C] = {0}, db[C] = {0};
    up_layernorm_backward(dx, dg, db, w, x, g, mean, rstd, R, C);
    double nx[R * C], ng[C], nb[C], h = 1e-5;
    for (int i = 0; i < R * C; i++) {
        double o = xd[i];
        xd[i] = o + h; double lp = ln_loss(xd, gd, bd, wd);
        xd[i] = o - h; double lm = ln_loss(xd, gd, bd, wd);
        xd[i] = o; nx[i] = (lp - lm) / (2 * h);
    }
    for (int i = 0; i < C; i++) {
        double o = gd[i];
        gd[i] = o + h; double lp = ln_loss(xd, gd, bd, wd);
        gd[i] = o - h; double lm = ln_loss(xd, gd, bd, wd);
        gd[i] = o; ng[i] = (lp - lm) / (2 * h);
        o = bd[i];
        bd[i] = o + h; lp = ln_loss(xd, gd, bd, wd);
        bd[i] = o - h; lm = ln_loss(xd, gd, bd, wd);
        bd[i] = o; nb[i] = (lp - lm) / (2 * h);
    }
    compare("layernorm dinp", dx, nx, R * C);
    compare("layernorm dgamma", dg, ng, C);
    compare("layernorm dbeta", db, nb, C);
    /* NULL parameter gradients are skipped, dinp accumulates (+=) */
    float dx2[R * C];
    for (int i = 0; i < R * C; i++) dx2[i] = 1.0f;
    up_layernorm_backward(dx2, NULL, NULL, w, x, g, mean, rstd, R, C);
    double acc[R * C];
    for (int i = 0; i < R * C; i++) acc[i] = 1.0 + nx[i];
    compare("layernorm accumulates", dx2, acc, R * C);
}

#define SB 2
#define SH 2
#define ST 7
static const int32_t s_lens[SB] = {7, 4};
static double sm_loss(const double *s, const double *w, double scale) {
    double L = 0;
    for (int b = 0; b < SB; b++)
        for (int h = 0; h < SH; h++)
            for (int i = 0; i < ST; i++) {
                const double *row = s + ((b * SH + h) * ST + i) * ST;
                double mx = -1e300, sum = 0;
                for (int j = 0; j < s_lens[b]; j++) mx = fmax(mx, scale * row[j]);
                for (int j = 0; j < s_lens[b]; j++) sum += exp(scale * row[j] - mx);
                for (int j = 0; j < s_lens[b]; j++)
                    L += w[((b * SH + h) * ST + i) * ST + j] * exp(scale * row[j] - mx) / sum;
            }
    return L;
}

static void test_softmax(void) {
    enum { N = SB * SH * ST * ST };
    float s[N], s2[N], w[N], p[N], ds[N];
    double sd[N], wd[N], ns[N], h = 1e-5, scale = 0.35;
    fill(s, sd, N, 3); fill(w, wd, N, 1);
    memcpy(s2, s, sizeof s);
    up_attn_softmax_forward(p, NULL, s2, s_lens, SB, SH, ST, (float)scale);
    up_attn_softmax_backward(ds, w, p, SB, SH, ST, (float)scale);
    for (int i = 0; i < N; i++) {
        double o = sd[i];
        sd[i] = o + h; double lp = sm_loss(sd, wd, scale);
        sd[i] = o - h; double lm = sm_loss(sd, wd, scale);
        sd[i] = o; ns[i] = (lp - lm) / (2 * h);
    }
    compare("attention softmax dscores", ds, ns, N);
    /* padded keys get exactly zero probability */
    int zero = 1;
    for (int h2 = 0; h2 < SH; h2++)
        for (int i = 0; i < ST; i++)
            for (int j = s_lens[1]; j < ST; j++) zero &= p[((SH + h2) * ST + i) * ST + j] == 0.0f;
    CHECK(zero);
}

static double act_d(double x, up_actfn a) {
    switch (a) {
    case UP_ACTFN_GELU: return 0.5 * x * (1 + erf(x / sqrt(2.0)));
    case UP_ACTFN_GELU_TANH: return 0.5 * x * (1 + tanh(sqrt(2 / 3.14159265358979323846) * (x + 0.044715 * x * x * x)));
    case UP_ACTFN_RELU: return x > 0 ? x : 0;
    case UP_ACTFN_TANH: return tanh(x);
    case UP_ACTFN_NONE: return x;
    }
    return x;
}

static void test_acts(void) {
    enum { N = 64 };
    static const char *names[] = {"gelu", "gelu_tanh", "relu", "tanh"};
    for (int a = 0; a < 4; a++) {
        float x[N], w[N], y[N], dx[N] = {0};
        double xd[N], wd[N], nx[N], h = 1e-5;
        fill(x, xd, N, 4); fill(w, wd, N, 1);
        for (int i = 0; i < N; i++) if (fabs(xd[i]) < 1e-3) xd[i] = x[i] = 0.5f; /* relu kink */
        up_act_forward(y, x, N, (up_actfn)a);
        up_act_backward(dx, w, x, N, (up_actfn)a);
        double maxf = 0;
        for (int i = 0; i < N; i++) {
            nx[i] = wd[i] * (act_d(xd[i] + h, a) - act_d(xd[i] - h, a)) / (2 * h);
            maxf = fmax(maxf, fabs(y[i] - act_d(xd[i], a)));
        }
        char what[64];
        snprintf(what, sizeof what, "%s backward", names[a]);
        compare(what, dx, nx, N);
        CHECK_MSG(maxf < 1e-5, "%s forward off by %g", names[a], maxf);
        if (a == UP_ACTFN_TANH) {
            float dx2[N] = {0};
            up_tanh_backward_from_out(dx2, w, y, N);
            compare("tanh from output", dx2, nx, N);
        }
    }
}

static void test_xent(void) {
    enum { N = 6, V = 9 };
    float x[N * V], d[N * V];
    double xd[N * V], nx[N * V], h = 1e-5;
    int32_t y[N] = {0, 3, -1, 8, 2, 2};
    double wd[1];
    (void)wd;
    fill(x, xd, N * V, 3);
    size_t cnt;
    double loss = up_xent_forward_backward(d, x, y, N, V, 1.0f, &cnt);
    CHECK(cnt == 5);
    double ref = 0;
    for (int r = 0; r < N; r++) {
        if (y[r] < 0) continue;
        double s = 0;
        for (int j = 0; j < V; j++) s += exp(xd[r * V + j]);
        ref += log(s) - xd[r * V + y[r]];
    }
    CHECK_MSG(fabs(loss - ref / 5) < 1e-6, "xent loss %g vs %g", loss, ref / 5);
    for (int i = 0; i < N * V; i++) {
        double o = xd[i], lp = 0, lm = 0;
        for (int pass = 0; pass < 2; pass++) {
            xd[i] = o + (pass ? -h : h);
            double L = 0;
            for (int r = 0; r < N; r++) {
                if (y[r] < 0) continue;
                double s = 0;
                for (int j = 0; j < V; j++) s += exp(xd[r * V + j]);
                L += log(s) - xd[r * V + y[r]];
            }
            if (pass) lm = L / 5; else lp = L / 5;
        }
        xd[i] = o;
        nx[i] = (lp - lm) / (2 * h);
    }
    compare("cross-entropy dlogits", d, nx, N * V);
}

static void test_embed_bias(void) {
    enum { B = 2, T = 3, E = 4, V = 5 };
    int32_t ids[B * T] = {1, 1, 4, 0, 1, 2}, types[B * T] = {0, 1, 1, 0, 0, 1};
    float word[V * E], pos[T * E], type[2 * E], dx[B * T * E], x[B * T * E];
    double tmp[64];
    fill(word, tmp, V * E, 1); fill(pos, tmp, T * E, 1); fill(type, tmp, 2 * E, 1); fill(dx, tmp, B * T * E, 1);
    up_embed_forward(x, ids, types, word, pos, type, B, T, E);
    CHECK(fabsf(x[(1 * T + 2) * E + 3] - (word[2 * E + 3] + pos[2 * E + 3] + type[1 * E + 3])) < 1e-7f);
    float dw[V * E] = {0}, dp[T * E] = {0}, dt[2 * E] = {0};
    up_embed_backward(dw, dp, dt, dx, ids, types, B, T, E);
    double ew[V * E] = {0}, ep[T * E] = {0}, et[2 * E] = {0};
    for (int bt = 0; bt < B * T; bt++)
        for (int i = 0; i < E; i++) {
            ew[ids[bt] * E + i] += dx[bt * E + i];
            ep[(bt % T) * E + i] += dx[bt * E + i];
            et[types[bt] * E + i] += dx[bt * E + i];
        }
    compare("embedding dword", dw, ew, V * E);
    compare("embedding dpos", dp, ep, T * E);
    compare("embedding dtype", dt, et, 2 * E);
    float db[E] = {0};
    up_bias_backward(db, dx, B * T, E);
    double eb[E] = {0};
    for (int m = 0; m < B * T; m++) for (int i = 0; i < E; i++) eb[i] += dx[m * E + i];
    compare("bias", db, eb, E);
}

/* The bf16-output kernels (AVX512-BF16 where the CPU has it, else the
 * cloned loops) against the fp32 path rounded once to bf16: row lengths
 * that are and are not multiples of 16, padded keys. */
static void test_bf16_outputs(void) {
    static const int Ts[] = {5, 16, 37, 128};
    for (int k = 0; k < 4; k++) {
        int B = 3, NH = 2, T = Ts[k];
        size_t n = (size_t)B * NH * T * T;
        int32_t lens[3] = {T, T > 3 ? T - 3 : 1, 1};
        float *s = malloc(n * 4), *s2 = malloc(n * 4), *p32 = malloc(n * 4);
        uint16_t *p16 = malloc(n * 2);
        for (size_t i = 0; i < n; i++) s[i] = 6.0f * (float)sin(0.37 * i + k);
        memcpy(s2, s, n * 4);
        up_attn_softmax_forward(p32, NULL, s, lens, B, NH, T, 0.3f);
        up_attn_softmax_forward(NULL, p16, s2, lens, B, NH, T, 0.3f);
        double maxd = 0;
        int zero = 1;
        for (size_t i = 0; i < n; i++) {
            double d = fabs(up_bf16_scalar(p16[i]) - p32[i]);
            maxd = d > maxd ? d : maxd;
            size_t b = i / ((size_t)NH * T * T), j = i % T;
            if ((int)j >= lens[b]) zero &= p16[i] == 0;
        }
        CHECK_MSG(maxd <= 4e-3, "bf16 softmax T=%d: max diff %g", T, maxd);
        CHECK_MSG(zero, "bf16 softmax T=%d: a padded key has non-zero probability", T);
        free(s); free(s2); free(p32); free(p16);
    }
    for (int W = 16; W <= 48; W += 32) { /* widths 16 and 48 */
        int rows = 37;
        float *x = malloc((size_t)rows * W * 4), *g = malloc(W * 4), *bb = malloc(W * 4);
        float *y1 = malloc((size_t)rows * W * 4), *y2 = malloc((size_t)rows * W * 4), m1[37], r1[37], m2[37], r2[37];
        uint16_t *yb = malloc((size_t)rows * W * 2);
        for (int i = 0; i < rows * W; i++) x[i] = 3.0f + 2.0f * (float)cos(0.71 * i);
        for (int i = 0; i < W; i++) { g[i] = 1.0f + 0.01f * i; bb[i] = 0.1f * (float)sin(i); }
        up_layernorm_forward(y1, NULL, m1, r1, x, g, bb, rows, W, 1e-12f);
        up_layernorm_forward(y2, yb, m2, r2, x, g, bb, rows, W, 1e-12f);
        double d32 = 0, d16 = 0;
        for (int i = 0; i < rows * W; i++) {
            d32 = fmax(d32, fabs(y2[i] - y1[i]));
            d16 = fmax(d16, fabs(up_bf16_scalar(yb[i]) - up_bf16_scalar(up_bf16_from(y2[i]))));
        }
        for (int i = 0; i < rows; i++) d32 = fmax(d32, fmax(fabs(m1[i] - m2[i]), fabs(r1[i] - r2[i]) / r1[i]));
        CHECK_MSG(d32 <= 1e-5, "layernorm W=%d with a bf16 copy: fp32 output differs by %g", W, d32);
        CHECK_MSG(d16 == 0, "layernorm W=%d: the bf16 copy is not the fp32 output rounded (%g)", W, d16);
        free(x); free(g); free(bb); free(y1); free(y2); free(yb);
    }
}

/* the int8 epilogue: act(s[m] ws[n] y + o[m] wsum[n] + bias[n]) (+ a
 * residual) in place against double precision, and each row's range (0
 * included) exactly that of its outputs; widths that are and are not
 * multiples of 16 (the AVX-512 kernel's masks) */
static void test_dequant_act(void) {
    static const int Ns[] = {5, 16, 37, 1536};
    for (int k = 0; k < 4; k++)
        for (int a = 0; a < 3; a++) { /* GELU with a residual, ReLU, none without a bias */
            int M = 7, N = Ns[k], ld = N + 3;
            float *y = malloc((size_t)M * ld * 4), *x = malloc((size_t)M * ld * 4), *ws = malloc(N * 4),
                  *wsum = malloc(N * 4), *bias = malloc(N * 4), *res = malloc((size_t)M * N * 4), lo[7], hi[7], sc[7],
                  off[7];
            for (int i = 0; i < M * ld; i++) x[i] = y[i] = (float)(int)(20000 * sin(0.7 * i + k));
            for (int n = 0; n < N; n++) ws[n] = 0.01f * (1 + n % 5), wsum[n] = (float)sin(n), bias[n] = 0.3f * (float)cos(n);
            for (int m = 0; m < M; m++) sc[m] = 0.002f * (m + 1), off[m] = -0.1f * m;
            for (int i = 0; i < M * N; i++) res[i] = 0.25f * (float)sin(i);
            up_int8_epi e = {sc, off, ws, wsum, a == 2 ? NULL : bias, a == 0 ? UP_ACTFN_GELU : a == 1 ? UP_ACTFN_RELU
                                                                                                : UP_ACTFN_NONE,
                             a == 0 ? res : NULL, N};
            if (a == 0) { /* as the encoder calls it: the output ranges over the input offsets */
                memcpy(lo, off, sizeof off);
                e.offset = lo;
            }
            up_dequant_act(y, ld, (size_t)M, N, &e, lo, hi);
            double worst = 0;
            int ranges = 1;
            for (int m = 0; m < M; m++) {
                float mn = 0, mx = 0;
                for (int n = 0; n < N; n++) {
                    double v = x[m * ld + n] * (double)sc[m] * ws[n] + off[m] * (double)wsum[n] + (a == 2 ? 0 : bias[n]);
                    v = a == 1 ? (v > 0 ? v : 0) : a == 0 ? 0.5 * v * (1 + erf(v / sqrt(2.0))) + res[m * N + n] : v;
                    double d = fabs(y[m * ld + n] - v) / (1 + fabs(v));
                    worst = d > worst ? d : worst;
                    mn = fminf(mn, y[m * ld + n]), mx = fmaxf(mx, y[m * ld + n]);
                }
                ranges &= lo[m] == mn && hi[m] == mx;
                ranges &= y[m * ld + N] == x[m * ld + N]; /* the stride's gap untouched */
            }
            CHECK_MSG(worst < 2e-6, "dequant act %d N=%d: max error %g", a, N, worst);
            CHECK_MSG(ranges, "dequant act %d N=%d: row ranges (or the gap past N) wrong", a, N);
            free(y); free(x); free(ws); free(wsum); free(bias); free(res);
        }
}

/* int8 attention's kernels against double precision: Q/K/V segments to
 * int8 with a scale each (head widths that are and are not multiples of
 * 16), and the softmax over integer scores with Q's and K's scales, V's
 * folded in, to uint8 with a factor per row (padded keys 0) */
static void test_int8_attention(void) {
    for (int k = 0; k < 2; k++) {
        const int B = 2, T = 7, P = 3, NH = 2, D = k ? 24 : 32, W = P * NH * D, M = B * T;
        float *acc = malloc((size_t)M * W * 4), *ws = malloc(W * 4), *wsum = malloc(W * 4), *bias = malloc(W * 4),
              *qs = malloc((size_t)P * M * NH * 4), sc[14], off[14];
        int8_t *q = malloc((size_t)P * M * NH * D);
        for (int i = 0; i < M * W; i++) acc[i] = (float)(int)(3000 * sin(0.3 * i + k));
        for (int n = 0; n < W; n++) ws[n] = 0.001f * (1 + n % 3), wsum[n] = (float)cos(n), bias[n] = 0.1f * (n % 5);
        for (int m = 0; m < M; m++) sc[m] = 0.01f * (1 + m % 4), off[m] = -0.2f * (m % 3);
        acc[3 * W + W / 2] = 0, ws[W / 2] = 0; /* nothing special, just a zero */
        up_int8_epi e = {sc, off, ws, wsum, bias, UP_ACTFN_NONE, NULL, 0};
        up_dequant_heads_s8(q, qs, acc, W, B, T, P, NH, D, &e);
        double worst = 0;
        int scales = 1;
        for (int m = 0; m < M; m++)
            for (int p = 0; p < P; p++)
                for (int h = 0; h < NH; h++) {
                    size_t i = (((size_t)p * B + m / T) * NH + h) * T + m % T;
                    double mx = 0;
                    for (int d = 0; d < D; d++) {
                        int n = (p * NH + h) * D + d;
                        double v = acc[m * W + n] * (double)sc[m] * ws[n] + off[m] * (double)wsum[n] + bias[n];
                        mx = fmax(mx, fabs(v));
                        double err = fabs(q[i * D + d] * (double)qs[i] - v) / (qs[i] > 0 ? qs[i] : 1);
                        worst = err > worst ? err : worst;
                    }
                    scales &= fabs(qs[i] - mx / 127) <= 1e-5 * mx / 127;
                }
        CHECK_MSG(worst <= 0.5001, "int8 head quantization D=%d: off by %g steps", D, worst);
        CHECK_MSG(scales, "int8 head quantization D=%d: a scale is not max |v| / 127", D);
        free(acc); free(ws); free(wsum); free(bias); free(qs); free(q);
    }
    static const int Ts[] = {5, 16, 37};
    for (int k = 0; k < 3; k++) {
        const int B = 3, NH = 2, T = Ts[k];
        const size_t n = (size_t)B * NH * T * T, bnt = (size_t)B * NH * T;
        int32_t lens[3] = {T, T > 3 ? T - 3 : 1, 1};
        float *s = malloc(n * 4), *s0 = malloc(n * 4), *sq = malloc(bnt * 4), *sk = malloc(bnt * 4),
              *sv = malloc(bnt * 4), *rowf = malloc(bnt * 4);
        uint8_t *p8 = malloc(n);
        for (size_t i = 0; i < n; i++) s0[i] = s[i] = (float)(int)(4000 * sin(0.37 * i + k));
        for (size_t i = 0; i < bnt; i++) sq[i] = 0.002f * (1 + i % 3), sk[i] = 0.003f * (1 + i % 5),
                                          sv[i] = 0.01f * (1 + i % 7);
        up_attn_softmax_u8(p8, rowf, s, lens, B, NH, T, 0.3f, sq, sk, sv);
        double worst = 0;
        int zero = 1;
        for (size_t r = 0; r < bnt; r++) {
            size_t hb = r / T;
            int len = lens[hb / NH];
            double mx = -1e30, sum = 0, wmax = 0, w[64];
            for (int j = 0; j < len; j++) mx = fmax(mx, 0.3 * sq[r] * sk[hb * T + j] * s0[r * T + j]);
            for (int j = 0; j < len; j++) sum += exp(0.3 * sq[r] * sk[hb * T + j] * s0[r * T + j] - mx);
            for (int j = 0; j < len; j++) {
                w[j] = exp(0.3 * sq[r] * sk[hb * T + j] * s0[r * T + j] - mx) / sum * sv[hb * T + j];
                wmax = fmax(wmax, w[j]);
            }
            for (int j = 0; j < len; j++) { /* within half a step of wmax / 255 */
                double err = fabs(rowf[r] * p8[r * T + j] - w[j]) / (wmax / 255);
                worst = err > worst ? err : worst;
            }
            for (int j = len; j < T; j++) zero &= p8[r * T + j] == 0;
        }
        CHECK_MSG(worst <= 0.51, "uint8 attention softmax T=%d: off by %g steps", T, worst);
        CHECK_MSG(zero, "uint8 attention softmax T=%d: a padded key has non-zero weight", T);
        free(s); free(s0); free(sq); free(sk); free(sv); free(rowf); free(p8);
    }
}

int main(void) {
    test_int8_attention();
    test_dequant_act();
    test_bf16_outputs();
    test_layernorm();
    test_softmax();
    test_acts();
    test_xent();
    test_embed_bias();
    return test_done();
}
