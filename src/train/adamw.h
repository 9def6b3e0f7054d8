/*
 * adamw.h: AdamW with decoupled weight decay, learning-rate schedules and
 * global-norm gradient clipping, on flat fp32 buffers.
 *
 *     up_adamw_cfg o = up_adamw_default();
 *     float lr = up_lr_at(&sched, step);
 *     float norm = up_clip_grad_norm(g, n, 1.0f);
 *     up_adamw_update(p, g, m, v, n, &o, lr, step + 1, decay);
 */
#ifndef UP_ADAMW_H
#define UP_ADAMW_H

#include <stddef.h>

typedef struct {
    float beta1, beta2, eps, weight_decay;
} up_adamw_cfg;
up_adamw_cfg up_adamw_default(void); /* 0.9, 0.999, 1e-8, 0.01 */

/* One update of n parameters; t is the 1-based step (bias correction);
 * decay = 0 exempts the tensor (biases, LayerNorm) from weight decay:
 *   m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2
 *   p -= lr * (mhat / (sqrt(vhat) + eps) + wd * p)   (decoupled, as PyTorch's AdamW) */
void up_adamw_update(float *p, const float *g, float *m, float *v, size_t n, const up_adamw_cfg *o,
                     float lr, long t, int decay);

typedef enum { UP_SCHED_CONSTANT = 0, UP_SCHED_LINEAR, UP_SCHED_COSINE } up_sched_kind;
typedef struct {
    up_sched_kind kind;
    float lr;          /* peak */
    long warmup;       /* steps of linear warmup from 0 */
    long total;        /* decay reaches min_lr at total */
    float min_lr;
} up_sched;
float up_lr_at(const up_sched *s, long step);

/* Scales g so its global L2 norm is at most max_norm (<= 0: no clipping);
 * returns the norm before clipping. */
float up_clip_grad_norm(float *g, size_t n, float max_norm);

#endif
