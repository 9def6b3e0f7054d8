/* adamw.c: AdamW, schedules, gradient clipping (see adamw.h). */
#include "train/adamw.h"

#include <math.h>

up_adamw_cfg up_adamw_default(void) {
    up_adamw_cfg o = {0.9f, 0.999f, 1e-8f, 0.01f};
    return o;
}

__attribute__((target_clones("avx512f", "avx2", "default")))
static void adamw_range(float *p, const float *g, float *m, float *v, size_t n, float b1, float b2, float c1, float c2,
                        float lr, float wd, float eps) {
    for (size_t i = 0; i < n; i++) {
        float gi = g[i];
        float mi = b1 * m[i] + (1.0f - b1) * gi;
        float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        p[i] -= lr * ((mi / c1) / (sqrtf(vi / c2) + eps) + wd * p[i]);
    }
}

void up_adamw_update(float *p, const float *g, float *m, float *v, size_t n, const up_adamw_cfg *o,
                     float lr, long t, int decay) {
    float b1 = o->beta1, b2 = o->beta2;
    float c1 = 1.0f - powf(b1, (float)t), c2 = 1.0f - powf(b2, (float)t);
    float wd = decay ? o->weight_decay : 0.0f;
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i += 16384)
        adamw_range(p + i, g + i, m + i, v + i, n - i < 16384 ? n - i : 16384, b1, b2, c1, c2, lr, wd, o->eps);
}

float up_lr_at(const up_sched *s, long step) {
    if (s->warmup > 0 && step < s->warmup) return s->lr * (float)(step + 1) / (float)s->warmup;
    if (s->kind == UP_SCHED_CONSTANT || s->total <= s->warmup) return s->lr;
    double frac = (double)(step - s->warmup) / (double)(s->total - s->warmup);
    if (frac > 1) frac = 1;
    double f = s->kind == UP_SCHED_LINEAR ? 1.0 - frac : 0.5 * (1.0 + cos(3.14159265358979323846 * frac));
    return (float)(s->min_lr + (s->lr - s->min_lr) * f);
}

float up_clip_grad_norm(float *g, size_t n, float max_norm) {
    double ss = 0;
#pragma omp parallel for simd schedule(static) reduction(+ : ss) if (n > 65536)
    for (size_t i = 0; i < n; i++) ss += (double)g[i] * g[i];
    float norm = (float)sqrt(ss);
    if (max_norm > 0 && norm > max_norm) {
        float s = max_norm / (norm + 1e-6f);
#pragma omp parallel for simd schedule(static) if (n > 65536)
        for (size_t i = 0; i < n; i++) g[i] *= s;
    }
    return norm;
}
