/*
 * plug.c: what plugging experts costs (docs/SERVING.md).
 *
 *     [PRECISION=fp32|bf16|int8] build/bench_plug MODEL_DIR A.expert B.expert ...
 *
 * Per expert: load time, the time to gather its compacted FFN matrices from
 * the base (what a per-batch gather would add to every batch), the memory its
 * compacted copies take (what keeping them costs), and forward times at
 * batch 1 and 32 x 128 tokens. Then the switch cost: a batch-1 forward on
 * expert k after a forward on expert k-1, against one after a forward on the
 * same expert. Medians of 15 repetitions.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/base.h"
#include "serve/hub.h"

#define REPS 15

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}
static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp);
    return v[n / 2];
}

/* median ms of one forward of B rows x T tokens of the expert on run r */
static double forward_ms(up_hub_expert *e, up_run *r, int B, int T) {
    int32_t *ids = calloc((size_t)B * T, 4), *lens = malloc((size_t)B * 4);
    for (int i = 0; i < B; i++) {
        lens[i] = T;
        for (int j = 0; j < T; j++) ids[(size_t)i * T + j] = 1000 + (i * 31 + j * 7) % 20000;
    }
    up_batch b = up_task_batch(e->task, B, T, ids, NULL, lens);
    double t[REPS];
    up_run_use(r, e->view);
    up_forward(r, &b);
    for (int k = 0; k < REPS; k++) {
        double t0 = up_now();
        up_forward(r, &b);
        t[k] = (up_now() - t0) * 1e3;
    }
    free(ids);
    free(lens);
    return median(t, REPS);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: bench_plug MODEL_DIR A.expert [B.expert ...]\n");
        return 2;
    }
    up_model *base;
    up_model_opts mo = up_model_opts_default();
    const char *prec = getenv("PRECISION"); /* fp32, bf16 or int8 (default: auto) */
    if (prec) mo.precision = !strcmp(prec, "int8") ? UP_PREC_INT8 : !strcmp(prec, "bf16") ? UP_PREC_BF16 : UP_PREC_FP32;
    up_hub *h;
    if (up_model_load(argv[1], &mo, &base) || up_hub_new(base, &h)) {
        fprintf(stderr, "bench_plug: %s\n", up_errmsg());
        return 1;
    }
    int n = argc - 2;
    up_hub_expert **e = calloc((size_t)n, sizeof *e);
    up_run *r1, *r32;
    if (up_run_new(base, 1, 128, &r1) || up_run_new(base, 32, 128, &r32)) return 1;
    printf("%-8s %8s %9s %10s %12s %10s %10s\n", "expert", "kept", "load ms", "gather ms", "FFN copy MB", "1x128 ms",
           "32x128 ms");
    for (int i = 0; i < n; i++) {
        char name[32];
        if (up_hub_plug(h, argv[i + 2], name)) {
            fprintf(stderr, "bench_plug: %s\n", up_errmsg());
            return 1;
        }
        e[i] = up_hub_acquire(h, name);
        double tl[REPS], tg[REPS];
        for (int k = 0; k < REPS; k++) {
            up_task *t;
            up_expert_meta info;
            up_model *v;
            double t0 = up_now();
            up_expert_read(argv[i + 2], base, &t, &info);
            double t1 = up_now();
            up_task_view(base, t, &v);
            tg[k] = (up_now() - t1) * 1e3;
            tl[k] = (t1 - t0) * 1e3;
            up_model_free(v);
            up_task_free(t);
        }
        size_t own = e[i]->bytes - up_task_param_count(e[i]->task) * 4;
        printf("%-8s %7.1f%% %9.3f %10.3f %12.2f %10.3f %10.3f\n", name, e[i]->kept_share_permille / 10.0,
               median(tl, REPS), median(tg, REPS), own / 1e6, forward_ms(e[i], r1, 1, 128), forward_ms(e[i], r32, 32, 128));
    }
    if (n >= 2) {
        /* switch: a forward on e[k+1] right after one on e[k], vs right after one on e[k+1] */
        int T = 128;
        int32_t ids[128], len = T;
        for (int j = 0; j < T; j++) ids[j] = 1000 + j * 7;
        double same[REPS * 4], sw[REPS * 4];
        int ns = 0;
        for (int k = 0; k < REPS * 4; k++) {
            up_hub_expert *a = e[k % n], *b = e[(k + 1) % n];
            up_batch ba = up_task_batch(a->task, 1, T, ids, NULL, &len), bb = up_task_batch(b->task, 1, T, ids, NULL, &len);
            up_run_use(r1, a->view);
            up_forward(r1, &ba);
            double t0 = up_now();
            up_run_use(r1, b->view); /* b right after a */
            up_forward(r1, &bb);
            sw[ns] = (up_now() - t0) * 1e3;
            t0 = up_now();
            up_run_use(r1, b->view); /* b right after b */
            up_forward(r1, &bb);
            same[ns++] = (up_now() - t0) * 1e3;
        }
        double ms = median(same, ns), mw = median(sw, ns);
        printf("switch: batch-1 forward after another expert %.3f ms, after the same expert %.3f ms: switching costs %.3f ms\n",
               mw, ms, mw - ms);
    }
    for (int i = 0; i < n; i++) up_hub_release(h, e[i]);
    free(e);
    up_run_free(r1);
    up_run_free(r32);
    up_hub_free(h);
    up_model_free(base);
    return 0;
}
