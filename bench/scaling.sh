#!/usr/bin/env bash
# Speed-up of each task's pruned expert over its tuned model (every FFN neuron
# kept) as the batch grows at a fixed length and as the length grows at a
# fixed batch size, from the experts bench/tasks.sh left in
# OUT/TASK/{tuned,expert}.expert. Writes OUT/scaling.tsv
#   task  batch  tokens  full_ms  expert_ms  speedup
# which `unplug report` draws.
#
# `unplug eval` times only 32 x 128 and 1 x 128, so the timing is the small C
# program below, built against BUILD's libunplug.a: eval's method (views of
# the base with each task's head and compacted FFN, random token ids, rows of
# the full length, the median of ITERS forwards after a warm-up) at any
# batch x length, the two models' runs interleaved so both see the same
# machine state. A length must hold [CLS] + the prompt (20 vectors): 16 is
# below that, so the lengths start at 32; max_position_embeddings (512 for
# models/unplug-mini) bounds them, past the tasks' max_len of 128.
#
# Usage: bench/scaling.sh [OUT_DIR]     (default build/results)
# Env:   BUILD (build), MODEL (models/unplug-mini), TASKS (every OUT/TASK with both experts),
#        BATCHES (1,2,4,8,16,32,64) at BATCH_LEN (128) tokens, LENS (32,64,128,256,512) at LEN_BATCH (8),
#        ITERS (15)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-build/results}
build=${BUILD:-build}
model=${MODEL:-models/unplug-mini}
batches=${BATCHES:-1,2,4,8,16,32,64}
batch_len=${BATCH_LEN:-128}
lens=${LENS:-32,64,128,256,512}
len_batch=${LEN_BATCH:-8}
iters=${ITERS:-15}
[ -f "$build/libunplug.a" ] || { echo "bench/scaling.sh: $build/libunplug.a not built (make)" >&2; exit 1; }
[ -d "$out" ] || { echo "bench/scaling.sh: no results directory $out (run bench/tasks.sh first)" >&2; exit 1; }
if [ -z "${TASKS:-}" ]; then
  TASKS=
  for d in "$out"/*/; do
    t=$(basename "$d")
    [ -f "$d/tuned.expert" ] && [ -f "$d/expert.expert" ] && TASKS="$TASKS $t"
  done
fi
[ -n "${TASKS// /}" ] || { echo "bench/scaling.sh: no $out/TASK/ holds tuned.expert and expert.expert" >&2; exit 1; }

# the timer, built like the unplug binary (oneDNN and sanitizers as BUILD was configured)
timer=$build/scaling-timer
flags=(-std=c11 -O2 -Wall -Wextra -D_POSIX_C_SOURCE=200809L -Iinclude -Isrc)
libs=(-fopenmp -ljansson -lcrypto -lutf8proc -lm)
grep -q '^UP_WITH_DNNL:BOOL=ON' "$build/CMakeCache.txt" && libs+=(-ldnnl)
grep -q '^UP_SANITIZE:BOOL=ON' "$build/CMakeCache.txt" && flags+=(-fsanitize=address,undefined)
cc "${flags[@]}" -x c - -x none -o "$timer" "$build/libunplug.a" "${libs[@]}" <<'C'
/* scaling-timer MODEL TUNED.expert EXPERT.expert TASK ITERS BxT...: one line
 * "TASK B T full_ms expert_ms speedup" per shape, tab-separated */
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
    if (argc < 7) return fputs("usage: scaling-timer MODEL TUNED.expert EXPERT.expert TASK ITERS BxT...\n", stderr), 2;
    int iters = atoi(argv[5]), rc = 0;
    up_model *m = NULL, *v[2] = {NULL, NULL};
    up_task *t[2] = {NULL, NULL};
    up_expert_info info;
    up_model_opts o = up_model_opts_default();
    if (iters < 1 || up_model_load(argv[1], &o, &m) != UP_OK || up_expert_load(argv[2], m, &t[0], &info) != UP_OK ||
        up_expert_load(argv[3], m, &t[1], &info) != UP_OK)
        rc = 1;
    if (!rc) up_task_clear_kept(t[0]); /* the tuned model: every neuron */
    if (!rc && (up_task_view(m, t[0], &v[0]) != UP_OK || up_task_view(m, t[1], &v[1]) != UP_OK)) rc = 1;
    for (int i = 6; i < argc && !rc; i++) {
        int B, T;
        double med[2];
        if (sscanf(argv[i], "%dx%d", &B, &T) != 2 || B < 1 || T < 1) {
            fprintf(stderr, "scaling-timer: bad shape '%s' (BxT)\n", argv[i]);
            rc = 2;
        } else if (T < 2 + t[0]->n_prompt)
            fprintf(stderr, "scaling-timer: %s: %d tokens do not hold [CLS] + %d prompt vectors + one token: skipped\n",
                    argv[i], T, t[0]->n_prompt);
        else {
            /* other work on the machine (a build, a test) slows both models unevenly: measure again, up to 5 times */
            double others = 0;
            for (int try = 0; try < 5 && !rc; try++) {
                if (!time_pair(v, t, B, T, iters, med, &others)) rc = 1;
                else if (others <= 0.1) break;
                else {
                    fprintf(stderr, "scaling-timer: %s %s: other processes kept %.2f cores busy: again in 2 s\n", argv[4],
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
    if (rc == 1) fprintf(stderr, "scaling-timer: %s\n", up_errmsg());
    up_model_free(v[0]);
    up_model_free(v[1]);
    up_task_free(t[0]);
    up_task_free(t[1]);
    up_model_free(m);
    return rc;
}
C

shapes=()
add_shape() { case " ${shapes[*]} " in *" $1 "*) ;; *) shapes+=("$1") ;; esac; } # 8x128 is in both sweeps: once
for b in ${batches//,/ }; do add_shape "${b}x$batch_len"; done
for t in ${lens//,/ }; do add_shape "${len_batch}x$t"; done
tsv=$out/scaling.tsv
trap 'rm -f "$tsv.tmp"' EXIT
load=$(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo 0) # a lagging average: the timer checks each shape itself
{
  echo "# bench/scaling.sh: $model, median of $iters forwards, $(nproc) cores, load $load at the start, $(date -u +%Y-%m-%d)"
  printf 'task\tbatch\ttokens\tfull_ms\texpert_ms\tspeedup\n'
} >"$tsv.tmp"
t0=$(date +%s)
for task in $TASKS; do
  echo "== $task" >&2
  "$timer" "$model" "$out/$task/tuned.expert" "$out/$task/expert.expert" "$task" "$iters" "${shapes[@]}" | tee -a "$tsv.tmp"
done
echo "# load $(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo 0) at the end, $(($(date +%s) - t0)) s" >>"$tsv.tmp"
mv "$tsv.tmp" "$tsv"
echo "== wrote $tsv ($(($(date +%s) - t0)) s)" >&2
