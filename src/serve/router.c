/*
 * router.c: task routing from the base model's final [CLS] vector (router.h).
 *
 * Features: the final [CLS] row and the mean of the final hidden states over
 * the text's tokens, (2C). Training: embed every example once, standardize each dimension, hold out
 * a seeded share, then full-batch gradient descent on a class-balanced
 * softmax cross-entropy (each task weighs the same whatever its size).
 */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "serve/router.h"
#include "io/st_write.h"
#include "base/base.h"

#define ROUTER_VERSION 1

static up_status router_alloc(int N, int C, up_router **out) {
    up_router *r = up_calloc(1, sizeof *r, "router");
    float *buf = up_calloc((size_t)(2 * C + N * C + N), sizeof(float), "router");
    if (!r || !buf) { free(r); free(buf); return UP_ERR_NOMEM; }
    r->n_tasks = N;
    r->C = C;
    r->mean = buf;
    r->std = buf + C;
    r->w = buf + 2 * C;
    r->b = buf + 2 * C + (size_t)N * C;
    *out = r;
    return UP_OK;
}

void up_router_free(up_router *r) {
    if (!r) return;
    free(r->mean);
    free(r);
}

up_status up_router_embed(const up_model *base, up_run *r, const char *const *a, const char *const *b, int n,
                          int max_len, up_encoding *e, int32_t *ids, int32_t *types, int32_t *lens, float *c) {
    if (!base->tok) return up_fail(UP_ERR_INVALID, "the base model has no tokenizer");
    int T = 2;
    for (int i = 0; i < n; i++) {
        up_status st = up_tokenizer_encode(base->tok, a[i], b ? b[i] : NULL, max_len, e);
        if (st) return up_fail_prefix(st, "input %d", i);
        memcpy(ids + (size_t)i * max_len, e->ids, (size_t)e->n * 4);
        memcpy(types + (size_t)i * max_len, e->type_ids, (size_t)e->n * 4);
        lens[i] = e->n;
        if (e->n > T) T = e->n;
    }
    up_batch_restride(ids, types, lens, n, max_len, T, (int32_t)base->cfg.pad_token_id);
    up_batch bt = {.B = n, .T = T, .ids = ids, .type_ids = types, .lens = lens};
    up_status st = up_run_use(r, base);
    if (!st) st = up_forward(r, &bt);
    if (st) return st;
    /* features: the final [CLS] row, then the mean of the row's final hidden states */
    size_t C = (size_t)base->cfg.hidden_size;
    const float *h = up_run_hidden(r, (int)base->cfg.num_hidden_layers);
    for (int i = 0; i < n; i++) {
        float *f = c + (size_t)i * 2 * C;
        const float *hi = h + (size_t)i * T * C;
        memcpy(f, hi, C * sizeof(float));
        for (size_t j = 0; j < C; j++) {
            double acc = 0;
            for (int t = 0; t < lens[i]; t++) acc += hi[(size_t)t * C + j];
            f[C + j] = (float)(acc / lens[i]);
        }
    }
    return UP_OK;
}

int up_router_pick(const up_router *r, const float *cls, float *p) {
    int best = 0;
    double bz = -INFINITY, sum = 0, z[UP_ROUTER_MAX_TASKS];
    for (int k = 0; k < r->n_tasks; k++) {
        double acc = r->b[k];
        for (int j = 0; j < r->C; j++) acc += r->w[(size_t)k * r->C + j] * (cls[j] - r->mean[j]) / r->std[j];
        z[k] = acc;
        if (acc > bz) { bz = acc; best = k; }
    }
    for (int k = 0; k < r->n_tasks; k++) sum += exp(z[k] - bz);
    if (p) *p = (float)(1 / sum);
    return best;
}

up_status up_router_train(const up_model *base, const up_router_data *d, up_router **out, double *acc_per_task) {
    *out = NULL;
    int N = d->n_tasks, C = 2 * (int)base->cfg.hidden_size, T = d->max_len > 0 ? d->max_len : 128, B = 32;
    if (T > base->cfg.max_position_embeddings) T = (int)base->cfg.max_position_embeddings;
    if (N < 2 || N > UP_ROUTER_MAX_TASKS)
        return up_fail(UP_ERR_INVALID, "a router needs 2..%d tasks, got %d", UP_ROUTER_MAX_TASKS, N);
    size_t n = d->n;
    float *x = up_malloc(n * C * sizeof(float), "router features");
    char *held = up_calloc(n, 1, "router split");
    int32_t *ids = up_malloc((size_t)B * T * 4, "batch"), *types = up_malloc((size_t)B * T * 4, "batch"),
            *lens = up_malloc((size_t)B * 4, "batch");
    up_router *r = NULL;
    up_run *run = NULL;
    up_encoding e = {0};
    double *g = NULL;
    up_status st = x && held && ids && types && lens ? router_alloc(N, C, &r) : UP_ERR_NOMEM;
    if (!st) st = up_run_new(base, B, T, &run);
    for (size_t i0 = 0; i0 < n && !st; i0 += B) {
        int nb = (int)(n - i0 < (size_t)B ? n - i0 : (size_t)B);
        st = up_router_embed(base, run, d->a + i0, d->b ? d->b + i0 : NULL, nb, T, &e, ids, types, lens, x + i0 * C);
        if (st) st = up_fail_prefix(st, "router example %zu", i0);
    }
    /* held-out split: a seeded share of each task */
    size_t count[UP_ROUTER_MAX_TASKS] = {0}, train_count[UP_ROUTER_MAX_TASKS] = {0};
    for (size_t i = 0; i < n && !st; i++) {
        if (d->label[i] < 0 || d->label[i] >= N) { st = up_fail(UP_ERR_INVALID, "router example %zu: task %d", i, d->label[i]); break; }
        held[i] = (double)(up_mix64(d->seed * 1000003 + i) >> 11) / 9007199254740992.0 < d->heldout_share;
        count[d->label[i]]++;
        if (!held[i]) train_count[d->label[i]]++;
    }
    for (int k = 0; k < N && !st; k++)
        if (!train_count[k] || train_count[k] == count[k])
            st = up_fail(UP_ERR_INVALID, "task '%s' has %zu examples: too few to train and hold out", d->tasks[k], count[k]);
    if (!st) {
        /* standardize on the training part */
        size_t m = 0;
        double *mu = up_calloc((size_t)C * 2, sizeof(double), "router");
        if (!mu) st = UP_ERR_NOMEM;
        for (size_t i = 0; i < n && !st; i++) {
            if (held[i]) continue;
            m++;
            for (int j = 0; j < C; j++) { mu[j] += x[i * C + j]; mu[C + j] += (double)x[i * C + j] * x[i * C + j]; }
        }
        for (int j = 0; j < C && !st; j++) {
            double mean = mu[j] / m, var = mu[C + j] / m - mean * mean;
            r->mean[j] = (float)mean;
            r->std[j] = (float)sqrt(var > 1e-12 ? var : 1e-12);
        }
        free(mu);
        for (size_t i = 0; i < n && !st; i++)
            for (int j = 0; j < C; j++) x[i * C + j] = (x[i * C + j] - r->mean[j]) / r->std[j];
    }
    g = st ? NULL : up_calloc((size_t)N * (C + 1), sizeof(double), "router gradient");
    if (!st && !g) st = UP_ERR_NOMEM;
    int epochs = d->epochs > 0 ? d->epochs : 300;
    double lr = 0.5, l2 = 1e-4;
    for (int ep = 0; ep < epochs && !st; ep++) {
        memset(g, 0, (size_t)N * (C + 1) * sizeof(double));
        for (size_t i = 0; i < n; i++) {
            if (held[i]) continue;
            const float *xi = x + i * C;
            double z[UP_ROUTER_MAX_TASKS], zmax = -INFINITY, sum = 0;
            for (int k = 0; k < N; k++) {
                double acc = r->b[k];
                for (int j = 0; j < C; j++) acc += r->w[(size_t)k * C + j] * xi[j];
                z[k] = acc;
                if (acc > zmax) zmax = acc;
            }
            for (int k = 0; k < N; k++) sum += (z[k] = exp(z[k] - zmax));
            double wt = 1.0 / ((double)train_count[d->label[i]] * N); /* balanced: every task weighs 1/N */
            for (int k = 0; k < N; k++) {
                double dz = wt * (z[k] / sum - (k == d->label[i]));
                for (int j = 0; j < C; j++) g[(size_t)k * (C + 1) + j] += dz * xi[j];
                g[(size_t)k * (C + 1) + C] += dz;
            }
        }
        for (int k = 0; k < N; k++) {
            for (int j = 0; j < C; j++) {
                float *w = &r->w[(size_t)k * C + j];
                *w -= (float)(lr * (g[(size_t)k * (C + 1) + j] + l2 * *w));
            }
            r->b[k] -= (float)(lr * g[(size_t)k * (C + 1) + C]);
        }
    }
    if (!st) {
        /* held-out accuracy with the raw (un-standardized) path the server uses */
        size_t right[UP_ROUTER_MAX_TASKS] = {0}, tot[UP_ROUTER_MAX_TASKS] = {0}, all = 0, all_right = 0;
        float *raw = up_malloc((size_t)C * sizeof(float), "router");
        if (!raw) st = UP_ERR_NOMEM;
        for (size_t i = 0; i < n && !st; i++) {
            if (!held[i]) continue;
            for (int j = 0; j < C; j++) raw[j] = x[i * C + j] * r->std[j] + r->mean[j];
            int k = up_router_pick(r, raw, NULL), y = d->label[i];
            tot[y]++; all++;
            if (k == y) { right[y]++; all_right++; }
        }
        free(raw);
        r->heldout_acc = all ? 100.0 * all_right / all : 0;
        for (int k = 0; k < N && acc_per_task; k++) acc_per_task[k] = tot[k] ? 100.0 * right[k] / tot[k] : 0;
        r->max_len = T;
        memcpy(r->tasks, d->tasks, sizeof r->tasks);
    }
    up_run_free(run);
    up_encoding_free(&e);
    free(x); free(held); free(ids); free(types); free(lens); free(g);
    if (st) { up_router_free(r); return st; }
    *out = r;
    return UP_OK;
}

up_status up_router_save(const char *path, const up_model *base, const up_router *r) {
    const char *fp = "";
    up_status st = base->st ? up_model_fingerprint((up_model *)base, &fp) : UP_OK;
    if (st) return st;
    up_st_writer *w = up_st_writer_new();
    if (!w) return UP_ERR_NOMEM;
    json_t *names = json_array();
    for (int k = 0; k < r->n_tasks; k++) json_array_append_new(names, json_string(r->tasks[k]));
    char *tasks = json_dumps(names, JSON_COMPACT);
    json_decref(names);
    char num[64], acc[64];
    snprintf(num, sizeof num, "%d", r->max_len);
    snprintf(acc, sizeof acc, "%.2f", r->heldout_acc);
    int64_t C = r->C, N = r->n_tasks;
    st = tasks ? UP_OK : UP_ERR_NOMEM;
    if (!st) st = up_st_writer_add(w, "mean", UP_DT_F32, 1, &C, r->mean);
    if (!st) st = up_st_writer_add(w, "std", UP_DT_F32, 1, &C, r->std);
    if (!st) st = up_st_writer_add(w, "weight", UP_DT_F32, 2, (int64_t[]){N, C}, r->w);
    if (!st) st = up_st_writer_add(w, "bias", UP_DT_F32, 1, &N, r->b);
    if (!st) st = up_st_writer_meta(w, "format", "unplug-router");
    if (!st) st = up_st_writer_meta(w, "version", "1");
    if (!st) st = up_st_writer_meta(w, "tasks", tasks);
    if (!st) st = up_st_writer_meta(w, "max_len", num);
    if (!st) st = up_st_writer_meta(w, "base_fingerprint", fp);
    if (!st) st = up_st_writer_meta(w, "heldout_accuracy", acc);
    if (!st) st = up_st_writer_save(w, path);
    up_st_writer_free(w);
    free(tasks);
    return st;
}

up_status up_router_load(const char *path, const up_model *base, up_router **out) {
    *out = NULL;
    up_st_set *s = NULL;
    up_status st = up_st_open_file(path, &s);
    if (st) return st;
    up_router *r = NULL;
    json_t *names = NULL;
    const char *fmt = up_st_meta(s, "format"), *tasks = up_st_meta(s, "tasks"), *fpm = up_st_meta(s, "base_fingerprint");
    long ver = 0, maxlen = 0;
    const up_st_tensor *tw = NULL, *tb = NULL, *tm = NULL, *ts = NULL;
    int64_t C = 2 * base->cfg.hidden_size;
    if (!fmt || strcmp(fmt, "unplug-router")) {
        st = up_fail(UP_ERR_FORMAT, "%s: not an unplug router file (metadata format %s)", path, fmt ? fmt : "missing");
        goto done;
    }
    if ((st = up_meta_int(path, "version", up_st_meta(s, "version"), 1, ROUTER_VERSION, &ver))) goto done;
    if ((st = up_meta_int(path, "max_len", up_st_meta(s, "max_len"), 2, base->cfg.max_position_embeddings, &maxlen))) goto done;
    json_error_t je;
    names = tasks ? json_loads(tasks, 0, &je) : NULL;
    size_t N = json_is_array(names) ? json_array_size(names) : 0;
    if (N < 2 || N > UP_ROUTER_MAX_TASKS) {
        st = up_fail(UP_ERR_FORMAT, "%s: metadata 'tasks' must be a JSON array of 2..%d names", path, UP_ROUTER_MAX_TASKS);
        goto done;
    }
    if ((st = up_st_need(s, path, "weight", UP_DT_F32, 2, (int64_t[]){(int64_t)N, C}, &tw))) goto done;
    if ((st = up_st_need(s, path, "bias", UP_DT_F32, 1, (int64_t[]){(int64_t)N}, &tb))) goto done;
    if ((st = up_st_need(s, path, "mean", UP_DT_F32, 1, &C, &tm))) goto done;
    if ((st = up_st_need(s, path, "std", UP_DT_F32, 1, &C, &ts))) goto done;
    const char *fp = "";
    if (base->st && (st = up_model_fingerprint((up_model *)base, &fp))) goto done;
    if (!fpm || strcmp(fpm, fp)) {
        st = up_fail(UP_ERR_INVALID, "%s: the router was built for another base model (sha256 %.12s..., this one is %.12s...)",
                     path, fpm ? fpm : "missing", fp);
        goto done;
    }
    if ((st = router_alloc((int)N, (int)C, &r))) goto done;
    for (size_t k = 0; k < N; k++) {
        json_t *v = json_array_get(names, k);
        if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) >= sizeof r->tasks[0]) {
            st = up_fail(UP_ERR_FORMAT, "%s: tasks[%zu] must be a name of 1..31 characters", path, k);
            goto done;
        }
        snprintf(r->tasks[k], sizeof r->tasks[k], "%s", json_string_value(v));
    }
    up_st_to_f32(tw, 0, N * C, r->w);
    up_st_to_f32(tb, 0, N, r->b);
    up_st_to_f32(tm, 0, C, r->mean);
    up_st_to_f32(ts, 0, C, r->std);
    for (int64_t j = 0; j < C; j++)
        if (!(r->std[j] > 0) || !isfinite(r->mean[j])) {
            st = up_fail(UP_ERR_FORMAT, "%s: std[%lld] must be positive and mean finite", path, (long long)j);
            goto done;
        }
    r->max_len = (int)maxlen;
    const char *acc = up_st_meta(s, "heldout_accuracy");
    r->heldout_acc = acc ? atof(acc) : 0;
done:
    json_decref(names);
    up_st_close(s);
    if (st) { up_router_free(r); return st; }
    *out = r;
    return UP_OK;
}

double up_router_heldout_acc(const up_router *r) { return r ? r->heldout_acc : 0; }

up_router_opts up_router_opts_default(void) {
    up_router_opts o = {.per_task = 2000, .heldout_share = 0.2, .epochs = 300, .max_len = 128, .seed = 1};
    return o;
}

up_status up_router_build(const up_model *base, int n_tasks, const char *const *names, const up_dataset *const *sets,
                          const up_router_opts *o, up_router **out, double *acc_per_task) {
    up_router_opts d = up_router_opts_default();
    if (!o) o = &d;
    if (!base || !names || !sets || !out) return up_fail(UP_ERR_INVALID, "up_router_build: NULL argument");
    *out = NULL;
    if (n_tasks < 2 || n_tasks > UP_ROUTER_MAX_TASKS)
        return up_fail(UP_ERR_INVALID, "a router needs 2..%d tasks, got %d", UP_ROUTER_MAX_TASKS, n_tasks);
    if (o->per_task < 1) return up_fail(UP_ERR_INVALID, "per_task %d: expected at least 1", o->per_task);
    up_router_data rd = {.n_tasks = n_tasks, .max_len = o->max_len, .epochs = o->epochs,
                         .heldout_share = o->heldout_share, .seed = o->seed};
    size_t total = 0;
    for (int k = 0; k < n_tasks; k++) {
        if (!names[k] || !names[k][0] || strlen(names[k]) >= sizeof rd.tasks[0] || !sets[k] || !up_dataset_size(sets[k]))
            return up_fail(UP_ERR_INVALID, "router task %d: a name of 1..%zu bytes and a non-empty dataset", k,
                           sizeof rd.tasks[0] - 1);
        snprintf(rd.tasks[k], sizeof rd.tasks[0], "%s", names[k]);
        size_t n = up_dataset_size(sets[k]);
        total += n < (size_t)o->per_task ? n : (size_t)o->per_task;
    }
    const char **a = up_malloc(total * sizeof *a, "router texts"), **b = up_malloc(total * sizeof *b, "router texts");
    int *label = up_malloc(total * sizeof *label, "router labels");
    up_status st = a && b && label ? UP_OK : UP_ERR_NOMEM;
    /* a seeded sample of each task's examples: the stream up_mix64(s++) */
    uint64_t s = o->seed * 7919 + 1;
    size_t n = 0;
    for (int k = 0; k < n_tasks && !st; k++) {
        size_t have = up_dataset_size(sets[k]), want = have < (size_t)o->per_task ? have : (size_t)o->per_task;
        for (size_t j = 0; j < want; j++) {
            size_t pick = want == have ? j : (size_t)(up_mix64(s++) % have);
            up_dataset_example(sets[k], pick, &a[n], &b[n], NULL);
            label[n++] = k;
        }
    }
    rd.a = a;
    rd.b = b;
    rd.label = label;
    rd.n = n;
    if (!st) st = up_router_train(base, &rd, out, acc_per_task);
    free(a);
    free(b);
    free(label);
    return st;
}
