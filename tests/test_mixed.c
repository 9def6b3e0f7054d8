/*
 * test_mixed.c: a batch that mixes tasks answers exactly what per-task
 * batches answer (issue 14). On models/unplug-mini, tasks made here (random
 * prompts and heads, sharpened so labels are far from ties) with different
 * kept FFN widths per layer (all, 60%, 25%, 5% and a layer with none), label
 * counts, pooling ([CLS] or mean), max_len; two deep-prompt tasks; one with
 * pruned heads. Each task's inputs alone in one batch (up_task_classify) are
 * the reference; up_task_classify_mixed runs them interleaved in groups.
 *
 * Tolerances: the reference backend (plain loops, each output element summed
 * in the same order whatever the batch) must be bit-exact. oneDNN picks its
 * blocking, and so its summation order, by the product's shape: the mixed
 * batch has more rows (M) and may be padded to a longer T, so fp32 differs in
 * the last bits (probabilities within 1e-5; 9.5e-7 measured) and bf16, whose
 * activations are rounded to 8 bits of mantissa after every product, within
 * 2e-3 (measured bit-exact on a Xeon with AMX, family 6 model 207; the test
 * prints the largest difference of each run). Labels must be equal wherever
 * the reference's top two probabilities are 1e-2 apart or more.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "model/task.h"
#include "base/base.h"
#include "test.h"

#define NT 7      /* tasks */
#define NX 16     /* inputs per task */

static unsigned rng = 11;
static unsigned next(void) { return rng = rng * 1103515245u + 12345u, (rng >> 16) & 0x7fff; }
static const char *words[] = {"the", "film", "was", "good", "bad", "a", "story", "of", "two", "people", "who",
                              "never", "met", "and", "it", "is", "not", "fine", "movie", "great", "plot"};

/* a text of 1..max_words words */
static char *make_text(int max_words) {
    char buf[1024] = "";
    int k = 1 + (int)(next() % (unsigned)max_words);
    for (int w = 0; w < k; w++) {
        strcat(buf, w ? " " : "");
        strcat(buf, words[next() % (sizeof words / sizeof *words)]);
    }
    return strdup(buf);
}

/* keeps a share (per mille) of layer l's F neurons at random, at least one unless share is 0 */
static up_status keep_random(up_task *t, int l, int F, int permille) {
    int32_t idx[4096];
    int n = 0;
    for (int j = 0; j < F; j++)
        if ((int)(next() % 1000) < permille) idx[n++] = j;
    if (!n && permille) idx[n++] = (int32_t)(next() % (unsigned)F);
    return up_task_set_kept(t, l, idx, n);
}

typedef struct {
    up_task *t;
    up_model *v;
    char *a[NX], *b[NX];
    float ref[NX * UP_MAX_LABELS], mix[NX * UP_MAX_LABELS];
} task_case;

/* the largest |mixed - alone| probability and the label mismatches over tasks ks */
static double compare(task_case *tc, const int *ks, int nk, int *label_diff) {
    double worst = 0;
    for (int j = 0; j < nk; j++) {
        task_case *c = &tc[ks[j]];
        int NL = c->t->n_labels;
        for (int i = 0; i < NX; i++) {
            const float *p = c->ref + (size_t)i * NL, *q = c->mix + (size_t)i * NL;
            int bp = 0, bq = 0;
            for (int k = 0; k < NL; k++) {
                worst = fmax(worst, fabs((double)p[k] - q[k]));
                if (p[k] > p[bp]) bp = k;
                if (q[k] > q[bq]) bq = k;
            }
            float second = -1;
            for (int k = 0; k < NL; k++)
                if (k != bp && p[k] > second) second = p[k];
            if (bp != bq && p[bp] - second >= 1e-2f) (*label_diff)++;
        }
    }
    return worst;
}

/* runs tasks ks mixed, NX inputs each, in batches of rows_per_task rows of each task */
static up_status run_mixed(const up_model *base, up_run *r, up_task_buf *s, task_case *tc, const int *ks, int nk,
                           int rows_per_task) {
    for (int i0 = 0; i0 < NX; i0 += rows_per_task) {
        up_task_inputs in[NT];
        for (int j = 0; j < nk; j++) {
            task_case *c = &tc[ks[j]];
            int n = NX - i0 < rows_per_task ? NX - i0 : rows_per_task;
            in[j] = (up_task_inputs){c->v, c->t, (const char *const *)c->a + i0,
                                     c->b[0] ? (const char *const *)c->b + i0 : NULL, n, c->mix + (size_t)i0 * c->t->n_labels};
        }
        up_status st = up_task_classify_mixed(base, r, s, in, nk);
        if (st) return st;
    }
    return UP_OK;
}

static void one_config(const char *dir, up_precision prec, up_backend be, double tol, const char *what) {
    up_model_opts o = up_model_opts_default();
    o.precision = prec;
    o.backend = be;
    up_model *m = NULL;
    CHECK_OK(up_model_load(dir, &o, &m));
    if (!m) return;
    const int L = (int)m->cfg.num_hidden_layers, F = (int)m->cfg.intermediate_size, NH = (int)m->cfg.num_attention_heads;
    task_case tc[NT];
    memset(tc, 0, sizeof tc);
    char *labels[UP_MAX_LABELS] = {"a", "b", "c", "d"};
    /* name, labels, max_len, pool mean, FFN kept per mille (-1 all), deep, pairs, pruned heads */
    const struct { const char *name; int nl, max_len, mean, keep, deep, pairs, heads; } spec[NT] = {
        {"all", 2, 64, 0, -1, 0, 0, 0},   {"wide", 3, 48, 1, 600, 0, 0, 0}, {"narrow", 2, 64, 0, 250, 0, 1, 0},
        {"thin", 4, 40, 1, 50, 0, 0, 0},  {"deep1", 2, 64, 0, 300, 1, 0, 0}, {"deep2", 3, 32, 1, 100, 1, 1, 0},
        {"heads", 2, 64, 0, 400, 0, 0, 1},
    };
    up_status st = UP_OK;
    for (int k = 0; k < NT && !st; k++) {
        task_case *c = &tc[k];
        st = up_task_new(m, spec[k].name, spec[k].nl, labels, 4, spec[k].max_len, 100 + (uint64_t)k, &c->t);
        if (st) break;
        c->t->pool_mean = spec[k].mean;
        /* a sharper head than up_task_new's (std 0.02): probabilities away from uniform */
        for (int i = 0; i < spec[k].nl * c->t->C; i++) c->t->cls_w[i] *= 60;
        if (spec[k].deep) st = up_task_make_deep(c->t, m);
        for (int l = 0; l < L && !st && spec[k].keep >= 0; l++)
            st = keep_random(c->t, l, F, k == 3 && l == 1 ? 0 : spec[k].keep); /* "thin" keeps no neuron in layer 1 */
        for (int l = 0; l < L && !st && spec[k].heads; l++) {
            int32_t h[2] = {0, (int32_t)(NH - 1)};
            st = up_task_set_kept_heads(c->t, l, h, 2);
        }
        if (!st) st = up_task_view(m, c->t, &c->v);
        for (int i = 0; i < NX; i++) {
            c->a[i] = make_text(k == 0 && i == 5 ? 40 : 12); /* one long text: the mixed batch pads to it */
            c->b[i] = spec[k].pairs ? make_text(6) : NULL;
        }
    }
    CHECK_OK(st);
    up_run *r = NULL;
    up_task_buf s;
    memset(&s, 0, sizeof s);
    if (!st) st = up_run_new(m, 64, 128, &r);
    if (!st) st = up_task_buf_init(&s, 64, 128);
    s.round_T = 8;
    CHECK_OK(st);
    /* the reference: each task's inputs alone, one batch */
    for (int k = 0; k < NT && !st; k++)
        CHECK_OK(up_task_classify(tc[k].v, tc[k].t, r, &s, (const char *const *)tc[k].a,
                                  tc[k].b[0] ? (const char *const *)tc[k].b : NULL, NX, tc[k].ref));
    if (!st) {
        int shallow[4] = {0, 1, 2, 3}, reordered[4] = {3, 0, 2, 1}, deep[2] = {4, 5}, diff = 0;
        double worst = 0;
        /* the four shallow tasks: 6 rows of each per batch (24 rows; the last batch 4 of each), in
         * another order 16 of each (64 rows, the run's batch), two of them 16 each */
        CHECK_OK(run_mixed(m, r, &s, tc, shallow, 4, 6));
        worst = fmax(worst, compare(tc, shallow, 4, &diff));
        CHECK_OK(run_mixed(m, r, &s, tc, reordered, 4, 16));
        worst = fmax(worst, compare(tc, reordered, 4, &diff));
        CHECK_OK(run_mixed(m, r, &s, tc, shallow + 1, 2, 16));
        worst = fmax(worst, compare(tc, shallow + 1, 2, &diff));
        /* deep prompts mix with each other */
        CHECK_OK(run_mixed(m, r, &s, tc, deep, 2, 5));
        worst = fmax(worst, compare(tc, deep, 2, &diff));
        printf("%s: largest |mixed - alone| probability %.3g (tolerance %g), %d labels differ\n", what, worst, tol, diff);
        CHECK_MSG(worst <= tol, "%s: mixed batches differ from per-task batches by %g", what, worst);
        CHECK_MSG(diff == 0, "%s: %d labels differ", what, diff);

        /* what cannot mix is refused, naming the task */
        int with_heads[2] = {0, 6}, shallow_deep[2] = {0, 4};
        CHECK_FAIL(run_mixed(m, r, &s, tc, with_heads, 2, 4), "task 'heads' cannot share a batch with 'all'");
        CHECK_FAIL(run_mixed(m, r, &s, tc, shallow_deep, 2, 4), "task 'deep1' cannot share a batch with 'all'");
        CHECK(!up_task_mixable(tc[6].t) && up_task_mixable(tc[0].t) && up_task_can_mix(tc[4].t, tc[5].t));
        /* the forward checks its groups: a view with its own attention, rows that do not tile the batch */
        const char *one[2] = {"a film", "a story"};
        up_task_inputs in[2] = {{tc[0].v, tc[0].t, one, NULL, 1, tc[0].mix}, {tc[6].v, tc[6].t, one + 1, NULL, 1, tc[6].mix}};
        int32_t ids[16] = {0}, lens[2] = {8, 8};
        up_batch b = up_task_batch(tc[0].t, 2, 8, ids, NULL, lens);
        up_row_group g[2] = {{tc[0].v, 0, 1, tc[0].t->prompt}, {tc[6].v, 1, 1, tc[6].t->prompt}};
        CHECK_OK(up_run_use(r, m));
        CHECK_FAIL(up_forward_groups(r, &b, g, 2), "group 1: layer 0 has attention of its own");
        g[1] = (up_row_group){tc[1].v, 2, 1, tc[1].t->prompt};
        CHECK_FAIL(up_forward_groups(r, &b, g, 2), "group 1: rows 2..+1, expected to start at row 1");
        g[1].row0 = 1;
        g[1].prompt = NULL;
        CHECK_FAIL(up_forward_groups(r, &b, g, 2), "group 1 has no prompt");
        CHECK_FAIL(up_task_classify_mixed(m, r, &s, in, 2), "cannot share a batch");
    }
    up_task_buf_free(&s);
    up_run_free(r);
    for (int k = 0; k < NT; k++) {
        for (int i = 0; i < NX; i++) { free(tc[k].a[i]); free(tc[k].b[i]); }
        up_model_free(tc[k].v);
        up_task_free(tc[k].t);
    }
    up_model_free(m);
}

int main(int argc, char **argv) {
    const char *src = argc > 1 ? argv[1] : ".";
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/models/unplug-mini", src);
    one_config(dir, UP_PREC_FP32, UP_BACKEND_REF, 0, "fp32, reference backend");
    one_config(dir, UP_PREC_FP32, UP_BACKEND_DNNL, 1e-5, "fp32, oneDNN");
    if (test_dnnl_bf16()) one_config(dir, UP_PREC_BF16, UP_BACKEND_DNNL, 2e-3, "bf16, oneDNN");
    /* int8 (attention too): a row's result does not depend on its batch */
    one_config(dir, UP_PREC_INT8, UP_BACKEND_REF, 0, "int8, reference backend");
    if (up_kernel_int8()) one_config(dir, UP_PREC_INT8, UP_BACKEND_DNNL, 1e-5, "int8, oneDNN");
    return test_done();
}
