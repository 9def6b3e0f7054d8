/*
 * scaling_timer.c: the timer behind bench/scaling.sh (built as
 * build/bench_scaling_timer).
 *
 *     bench_scaling_timer MODEL TUNED.expert EXPERT.expert TASK ITERS BxT...
 *
 * One line "TASK B T full_ms expert_ms speedup" per shape, tab-separated:
 * unplug eval's timing method at any batch x length.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>
#include "unplug.h"
#include "base/base.h"
#include "io/expert.h"
#include "model/task.h"

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* CPU seconds spent so far by the whole machine (/proc/stat: all but idle and
 * iowait, steal included) and by this process */
static void cpu_seconds(double *machine, double *self) {
    unsigned long long v[8] = {0};
    FILE *f = fopen("/proc/stat", "r");
    if (f && fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6],
                    &v[7]) != 8)
        v[0] = v[1] = v[2] = v[5] = v[6] = v[7] = 0;
    if (f) fclose(f);
    *machine = (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / (double)sysconf(_SC_CLK_TCK);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    *self = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) + 1e-6 * (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

/* Median seconds of iters forwards of v[k] (task t[k]) at B x T, k = 0, 1
 * interleaved, and *others: the cores other processes kept busy meanwhile
 * (0.5 = half a core). 0 on failure. */
static int time_pair(up_model *const v[2], up_task *const t[2], int B, int T, int iters, double med[2], double *others) {
    up_run *r[2] = {NULL, NULL};
    int32_t *ids = malloc((size_t)B * T * 4), *lens = malloc((size_t)B * 4);
    double *ts = malloc(2 * (size_t)iters * sizeof *ts);
    int ok = ids && lens && ts && up_run_new(v[0], B, T, &r[0]) == UP_OK && up_run_new(v[1], B, T, &r[1]) == UP_OK;
    int V = (int)v[0]->cfg.vocab_size; /* the ids of unplug eval's timing */
    for (int i = 0; ok && i < B * T; i++) ids[i] = 5 + (int)((i * 2654435761u) % (unsigned)(V - 5));
    for (int i = 0; ok && i < B; i++) lens[i] = T;
    double m0, s0, m1, s1, w0 = 0;
    for (int it = -1; ok && it < iters; it++) { /* -1: the warm-up */
        if (it == 0) { cpu_seconds(&m0, &s0); w0 = up_now(); }
        for (int k = 0; k < 2 && ok; k++) {
            up_batch b = up_task_batch(t[k], B, T, ids, NULL, lens);
            double t0 = up_now();
            ok = up_forward(r[k], &b) == UP_OK;
            if (it >= 0) ts[k * iters + it] = up_now() - t0;
        }
    }
    if (ok) {
        cpu_seconds(&m1, &s1);
        double busy = (m1 - m0) - (s1 - s0); /* /proc/stat counts 10 ms ticks: below 30 ms it is noise */
        *others = busy > 0.03 ? busy / (up_now() - w0) : 0;
    }
    for (int k = 0; ok && k < 2; k++) {
        qsort(ts + k * iters, (size_t)iters, sizeof *ts, cmp_double);
        med[k] = ts[k * iters + iters / 2];
    }
    up_run_free(r[0]);
    up_run_free(r[1]);
    free(ids);
    free(lens);
    free(ts);
    return ok;
}

int main(int argc, char **argv) {
    if (argc < 7) return fputs("usage: bench_scaling_timer MODEL TUNED.expert EXPERT.expert TASK ITERS BxT...\n", stderr), 2;
    int iters = atoi(argv[5]), rc = 0;
    up_model *m = NULL, *v[2] = {NULL, NULL};
    up_task *t[2] = {NULL, NULL};
    up_expert_meta info;
    up_model_opts o = up_model_opts_default();
    if (iters < 1 || up_model_load(argv[1], &o, &m) != UP_OK || up_expert_read(argv[2], m, &t[0], &info) != UP_OK ||
        up_expert_read(argv[3], m, &t[1], &info) != UP_OK)
        rc = 1;
    if (!rc) up_task_clear_kept(t[0]); /* the tuned model: every neuron */
    if (!rc && (up_task_view(m, t[0], &v[0]) != UP_OK || up_task_view(m, t[1], &v[1]) != UP_OK)) rc = 1;
    for (int i = 6; i < argc && !rc; i++) {
        int B, T;
        double med[2];
        if (sscanf(argv[i], "%dx%d", &B, &T) != 2 || B < 1 || T < 1) {
            fprintf(stderr, "bench_scaling_timer: bad shape '%s' (BxT)\n", argv[i]);
            rc = 2;
        } else if (T < 2 + t[0]->n_prompt)
            fprintf(stderr, "bench_scaling_timer: %s: %d tokens do not hold [CLS] + %d prompt vectors + one token: skipped\n",
                    argv[i], T, t[0]->n_prompt);
        else {
            /* other work on the machine (a build, a test) slows both models unevenly: measure again, up to 5 times */
            double others = 0;
            for (int try = 0; try < 5 && !rc; try++) {
                if (!time_pair(v, t, B, T, iters, med, &others)) rc = 1;
                else if (others <= 0.1) break;
                else {
                    fprintf(stderr, "bench_scaling_timer: %s %s: other processes kept %.2f cores busy: again in 2 s\n", argv[4],
                            argv[i], others);
                    sleep(2);
                }
            }
            if (!rc && others > 0.1)
                printf("# %s %s: other processes kept %.2f cores busy while timing: unreliable\n", argv[4], argv[i], others);
            if (!rc) printf("%s\t%d\t%d\t%.3f\t%.3f\t%.3f\n", argv[4], B, T, 1e3 * med[0], 1e3 * med[1], med[0] / med[1]);
            fflush(stdout);
        }
    }
    if (rc == 1) fprintf(stderr, "bench_scaling_timer: %s\n", up_errmsg());
    up_model_free(v[0]);
    up_model_free(v[1]);
    up_task_free(t[0]);
    up_task_free(t[1]);
    up_model_free(m);
    return rc;
}
