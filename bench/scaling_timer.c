/*
 * scaling_timer.c: the timer behind bench/scaling.sh (built as
 * build/bench_scaling_timer).
 *
 *     bench_scaling_timer MODEL TUNED.expert EXPERT.expert TASK ITERS BxT...
 *
 * One line "TASK B T full_ms expert_ms speedup" per shape, tab-separated:
 * unplug eval's timing (up_expert_time: alternating blocks of forwards) at
 * any batch x length, measured again when other processes kept the machine
 * busy meanwhile.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>
#include "unplug.h"

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

/* up_expert_time of (full, e) at B x T into ms, and *others: the cores other
 * processes kept busy meanwhile (0.5 = half a core). */
static up_status time_pair(const up_model *m, const up_expert *full, const up_expert *e, int B, int T, int iters,
                           double ms[2], double *others) {
    double m0, s0, m1, s1, w0 = up_now();
    cpu_seconds(&m0, &s0);
    up_status st = up_expert_time(m, e, full, B, T, iters, ms);
    cpu_seconds(&m1, &s1);
    double busy = (m1 - m0) - (s1 - s0); /* /proc/stat counts 10 ms ticks: below 30 ms it is noise */
    *others = busy > 0.03 ? busy / (up_now() - w0) : 0;
    return st;
}

int main(int argc, char **argv) {
    if (argc < 7) return fputs("usage: bench_scaling_timer MODEL TUNED.expert EXPERT.expert TASK ITERS BxT...\n", stderr), 2;
    int iters = atoi(argv[5]), rc = 0;
    up_model *m = NULL;
    up_expert *full = NULL, *e = NULL;
    up_model_opts o = up_model_opts_default();
    if (iters < 1 || up_model_load(argv[1], &o, &m) != UP_OK || up_expert_load(m, argv[2], &full) != UP_OK ||
        up_expert_load(m, argv[3], &e) != UP_OK)
        rc = 1;
    for (int i = 6; i < argc && !rc; i++) {
        int B, T;
        double ms[2];
        if (sscanf(argv[i], "%dx%d", &B, &T) != 2 || B < 1 || T < 1) {
            fprintf(stderr, "bench_scaling_timer: bad shape '%s' (BxT)\n", argv[i]);
            rc = 2;
            break;
        }
        /* other work on the machine (a build, a test) slows both models unevenly: measure again, up to 5 times */
        double others = 0;
        up_status st = UP_OK;
        for (int try = 0; try < 5; try++) {
            if ((st = time_pair(m, full, e, B, T, iters, ms, &others)) || others <= 0.1) break;
            fprintf(stderr, "bench_scaling_timer: %s %s: other processes kept %.2f cores busy: again in 2 s\n", argv[4],
                    argv[i], others);
            sleep(2);
        }
        if (st == UP_ERR_INVALID) { /* a shape the expert cannot take (too few tokens for its prompt) */
            fprintf(stderr, "bench_scaling_timer: %s: %s: skipped\n", argv[i], up_errmsg());
            continue;
        }
        if (st) { rc = 1; break; }
        if (others > 0.1)
            printf("# %s %s: other processes kept %.2f cores busy while timing: unreliable\n", argv[4], argv[i], others);
        printf("%s\t%d\t%d\t%.3f\t%.3f\t%.3f\n", argv[4], B, T, ms[0], ms[1], ms[0] / ms[1]);
        fflush(stdout);
    }
    if (rc == 1) fprintf(stderr, "bench_scaling_timer: %s\n", up_errmsg());
    up_expert_free(e);
    up_expert_free(full);
    up_model_free(m);
    return rc;
}
