/*
 * mixed_forward.c: what one forward over the rows of several experts costs
 * against the forwards per-task batching runs for the same rows
 * (docs/SERVING.md, "Batches that mix tasks").
 *
 *     build/bench_mixed_forward MODEL_DIR B T A.expert B.expert ...
 *
 * B rows of T tokens (every token real: no padding in either) spread evenly
 * over the N experts given: one up_forward_groups over all B rows, against
 * N forwards of each expert's rows alone (per-task batches of B/N rows), and
 * a forward of all B rows on the first expert alone. Medians of 15, ms.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/base.h"
#include "serve/hub.h"

#define REPS 15
#define MAX_EXPERTS 64

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: bench_mixed_forward MODEL_DIR B T A.expert [B.expert ...]\n");
        return 2;
    }
    int B = atoi(argv[2]), T = atoi(argv[3]), ne = argc - 4;
    if (ne > MAX_EXPERTS || B < ne || T < 16) {
        fprintf(stderr, "bench_mixed_forward: at most %d experts, B >= their number, T >= 16\n", MAX_EXPERTS);
        return 2;
    }
    up_model_opts mo = up_model_opts_default();
    up_model *m = NULL;
    up_hub *h = NULL;
    if (up_model_load(argv[1], &mo, &m) || up_hub_new(m, &h)) return fprintf(stderr, "%s\n", up_errmsg()), 1;
    up_hub_expert *e[MAX_EXPERTS];
    for (int i = 0; i < ne; i++) {
        char name[32];
        if (up_hub_plug(h, argv[4 + i], name) || !(e[i] = up_hub_acquire(h, name)))
            return fprintf(stderr, "%s: %s\n", argv[4 + i], up_errmsg()), 1;
        if (!up_task_can_mix(e[0]->task, e[i]->task))
            return fprintf(stderr, "%s cannot share a batch with %s\n", argv[4 + i], argv[4]), 1;
    }
    up_run *r = NULL;
    int32_t *ids = calloc((size_t)B * T, 4), *lens = calloc((size_t)B, 4);
    if (!ids || !lens || up_run_new(m, B, T, &r)) return fprintf(stderr, "%s\n", up_errmsg()), 1;
    for (size_t i = 0; i < (size_t)B * T; i++) ids[i] = 1000 + (int32_t)(i * 7919 % 20000);
    for (int i = 0; i < B; i++) lens[i] = T;
    up_batch b = up_task_batch(e[0]->task, B, T, ids, NULL, lens);
    up_row_group g[MAX_EXPERTS]; /* expert j: rows row0 .. row0 + n */
    for (int j = 0, row = 0; j < ne; j++) {
        int n = B / ne + (j < B % ne);
        g[j] = (up_row_group){e[j]->view, row, n, e[j]->task->prompt};
        row += n;
    }
    double t[3][REPS];
    for (int k = 0; k < REPS + 2; k++) { /* the first two warm the primitive caches up */
        double t0 = up_now();
        up_status st = up_run_use(r, m);
        if (!st) st = up_forward_groups(r, &b, g, ne);
        double t1 = up_now();
        for (int j = 0; j < ne && !st; j++) {
            up_batch bj = b;
            bj.B = g[j].n;
            bj.ids = ids + (size_t)g[j].row0 * T;
            if (!(st = up_run_use(r, e[j]->view))) st = up_forward(r, &bj);
        }
        double t2 = up_now();
        if (!st && !(st = up_run_use(r, e[0]->view))) st = up_forward(r, &b);
        double t3 = up_now();
        if (st) return fprintf(stderr, "%s\n", up_errmsg()), 1;
        if (k < 2) continue;
        t[0][k - 2] = (t1 - t0) * 1e3;
        t[1][k - 2] = (t2 - t1) * 1e3;
        t[2][k - 2] = (t3 - t2) * 1e3;
    }
    for (int i = 0; i < 3; i++) qsort(t[i], REPS, sizeof(double), cmp);
    printf("B %d x T %d over %d experts: one mixed forward %.2f ms, %d per-task forwards %.2f ms, "
           "one forward on the first expert alone %.2f ms\n", B, T, ne, t[0][REPS / 2], ne, t[1][REPS / 2], t[2][REPS / 2]);
    for (int i = 0; i < ne; i++) up_hub_release(h, e[i]);
    up_run_free(r);
    up_hub_free(h);
    up_model_free(m);
    free(ids);
    free(lens);
    return 0;
}
