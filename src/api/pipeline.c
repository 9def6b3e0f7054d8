/*
 * pipeline.c: the public API of the pipeline (unplug.h): datasets, experts,
 * tune, localize, evaluate, and the conveniences over models and the hub.
 * The CLI, the server and the Python package are front doors over these
 * calls; the work itself lives in text/, tune/, localize/, model/ and io/.
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "unplug.h"
#include "base/base.h"
#include "io/expert.h"
#include "localize/localize.h"
#include "model/model.h"
#include "model/task.h"
#include "serve/hub.h"
#include "text/dataset.h"
#include "tune/tune.h"

const char *up_version(void) { return UP_VERSION; }
void up_free(void *p) { free(p); }

/* ---- model conveniences ------------------------------------------------------ */

static up_status check_texts(size_t n, const char *const *a, const char *const *b) {
    if (n && !a) return up_fail(UP_ERR_INVALID, "no texts (a is NULL)");
    for (size_t i = 0; i < n; i++)
        if (!a[i] || (b && !b[i])) return up_fail(UP_ERR_INVALID, "text %zu is NULL", i);
    return UP_OK;
}

static up_status model_max_len(const up_model *m, int want, int *out) {
    int maxpos = (int)m->cfg.max_position_embeddings;
    if (want < 0 || want > maxpos)
        return up_fail(UP_ERR_INVALID, "max_len %d: expected 1..%d (the model's max_position_embeddings)", want, maxpos);
    *out = want ? want : maxpos;
    return UP_OK;
}

up_status up_model_tokenize(const up_model *m, size_t n, const char *const *a, const char *const *b, int max_len,
                            up_encoding *enc) {
    if (!m || !enc) return up_fail(UP_ERR_INVALID, "up_model_tokenize: NULL argument");
    if (!m->tok) return up_fail(UP_ERR_INVALID, "the model has no tokenizer (no vocab.txt in its directory)");
    up_status st = check_texts(n, a, b);
    if (!st) st = model_max_len(m, max_len, &max_len);
    for (size_t i = 0; i < n && !st; i++) {
        memset(&enc[i], 0, sizeof enc[i]);
        if ((st = up_tokenizer_encode(m->tok, a[i], b ? b[i] : NULL, max_len, &enc[i]))) {
            st = up_fail_prefix(st, "text %zu", i);
            for (size_t k = 0; k <= i; k++) up_encoding_free(&enc[k]); /* on failure nothing is left to free */
        }
    }
    return st;
}

up_embed_opts up_embed_opts_default(void) {
    up_embed_opts o = {.pool = UP_POOL_CLS, .normalize = 0, .max_len = 0, .batch = 32};
    return o;
}

up_status up_model_embed(const up_model *m, size_t n, const char *const *a, const char *const *b,
                         const up_embed_opts *o, float *out) {
    up_embed_opts d = up_embed_opts_default();
    if (!o) o = &d;
    if (!m || (n && !out)) return up_fail(UP_ERR_INVALID, "up_model_embed: NULL argument");
    if (!m->tok) return up_fail(UP_ERR_INVALID, "the model has no tokenizer (no vocab.txt in its directory)");
    if (o->pool != UP_POOL_CLS && o->pool != UP_POOL_MEAN) return up_fail(UP_ERR_INVALID, "unknown pooling %d", o->pool);
    if (o->batch < 1 || o->batch > 4096) return up_fail(UP_ERR_INVALID, "batch %d: expected 1..4096", o->batch);
    int T = 0;
    up_status st = check_texts(n, a, b);
    if (!st) st = model_max_len(m, o->max_len, &T);
    if (st || n == 0) return st;
    int B = n < (size_t)o->batch ? (int)n : o->batch;
    up_run *r = NULL;
    up_task_buf s;
    memset(&s, 0, sizeof s);
    if ((st = up_task_buf_init(&s, B, T)) || (st = up_run_new(m, B, T, &r))) goto done;
    size_t C = (size_t)m->cfg.hidden_size;
    for (size_t i0 = 0; i0 < n && !st; i0 += (size_t)B) {
        int nb = (int)(n - i0 < (size_t)B ? n - i0 : (size_t)B);
        int Tb = 1;
        for (int i = 0; i < nb && !st; i++) {
            if ((st = up_tokenizer_encode(m->tok, a[i0 + i], b ? b[i0 + i] : NULL, T, &s.enc))) {
                st = up_fail_prefix(st, "text %zu", i0 + (size_t)i);
                break;
            }
            s.lens[i] = s.enc.n;
            memcpy(s.ids + (size_t)i * T, s.enc.ids, (size_t)s.enc.n * 4);
            memcpy(s.types + (size_t)i * T, s.enc.type_ids, (size_t)s.enc.n * 4);
            if (s.enc.n > Tb) Tb = s.enc.n;
        }
        if (st) break;
        up_batch_restride(s.ids, s.types, s.lens, nb, T, Tb, (int32_t)m->cfg.pad_token_id);
        up_batch bt = {.B = nb, .T = Tb, .ids = s.ids, .type_ids = s.types, .lens = s.lens};
        if (!(st = up_forward(r, &bt))) st = up_run_embed(r, o->pool, o->normalize, out + i0 * C);
    }
done:
    up_run_free(r);
    up_task_buf_free(&s);
    return st;
}

/* ---- datasets ------------------------------------------------------------------ */

static up_status dataset_box(up_dataset *tmp, up_dataset **out) {
    *out = malloc(sizeof **out);
    if (!*out) {
        up_dataset_clear(tmp);
        return up_fail(UP_ERR_NOMEM, "out of memory for a dataset");
    }
    **out = *tmp;
    return UP_OK;
}

up_status up_dataset_load(const char *path, const char *format, const up_dataset *label_space, up_dataset **out) {
    if (!out) return up_fail(UP_ERR_INVALID, "up_dataset_load: NULL out");
    *out = NULL;
    if (!path) return up_fail(UP_ERR_INVALID, "up_dataset_load: NULL path");
    up_data_format f = UP_FMT_AUTO;
    up_status st = format ? up_data_format_from_name(format, &f) : UP_OK;
    up_dataset d;
    if (!st) st = up_dataset_read(path, f, label_space, &d);
    return st ? st : dataset_box(&d, out);
}

up_status up_dataset_from_rows(const char *name, size_t n, const char *const *text, const char *const *text_b,
                               const char *const *label, const up_dataset *label_space, up_dataset **out) {
    if (!out) return up_fail(UP_ERR_INVALID, "up_dataset_from_rows: NULL out");
    *out = NULL;
    up_dataset d;
    up_status st = up_dataset_rows(name, n, text, text_b, label, label_space, &d);
    return st ? st : dataset_box(&d, out);
}

up_status up_dataset_task(const char *task, const char *data_dir, uint64_t seed, up_dataset **train, up_dataset **val,
                          up_dataset **report) {
    if (!task || !data_dir || !train || !val) return up_fail(UP_ERR_INVALID, "up_dataset_task: NULL argument");
    *train = *val = NULL;
    if (report) *report = NULL;
    up_task_splits sp;
    up_status st = up_task_load(task, data_dir, 0.1, seed, &sp);
    if (st) return st;
    if (!report) up_dataset_clear(&sp.report);
    /* each split, once boxed, belongs to its box (dataset_box frees the source when it fails) */
    if (!(st = dataset_box(&sp.train, train))) memset(&sp.train, 0, sizeof sp.train);
    if (!st && !(st = dataset_box(&sp.val, val))) memset(&sp.val, 0, sizeof sp.val);
    if (!st && report && !(st = dataset_box(&sp.report, report))) memset(&sp.report, 0, sizeof sp.report);
    if (st) {
        up_dataset_free(*train);
        up_dataset_free(*val);
        *train = *val = NULL;
    }
    up_task_splits_free(&sp); /* what was not boxed */
    return st;
}

size_t up_dataset_size(const up_dataset *d) { return d ? d->n : 0; }
const char *up_dataset_name(const up_dataset *d) { return d ? d->name : ""; }
int up_dataset_is_pair(const up_dataset *d) { return d && d->pair; }
int up_dataset_n_labels(const up_dataset *d) { return d ? d->n_labels : 0; }
const char *up_dataset_label(const up_dataset *d, int id) {
    return d && id >= 0 && id < d->n_labels ? d->labels[id] : NULL;
}
up_status up_dataset_example(const up_dataset *d, size_t i, const char **a, const char **b, int *label) {
    if (!d || i >= d->n) return up_fail(UP_ERR_INVALID, "example %zu: the dataset has %zu", i, d ? d->n : 0);
    if (a) *a = d->ex[i].text;
    if (b) *b = d->ex[i].text_b;
    if (label) *label = d->ex[i].label;
    return UP_OK;
}
void up_dataset_free(up_dataset *d) {
    if (!d) return;
    up_dataset_clear(d);
    free(d);
}

/* ---- experts --------------------------------------------------------------------- */

struct up_expert {
    const up_model *base;   /* NULL: read without its base (info only) */
    up_task *t;
    up_expert_meta meta;
    pthread_mutex_t mu;     /* guards view */
    up_model *view;         /* built by the first classify */
};

static up_status expert_wrap(const up_model *base, up_task *t, const up_expert_meta *meta, up_expert **out) {
    up_expert *e = up_calloc(1, sizeof *e, "an expert");
    if (!e) {
        up_task_free(t);
        return UP_ERR_NOMEM;
    }
    e->base = base;
    e->t = t;
    e->meta = *meta;
    if (base && !e->meta.base_shape[0])
        snprintf(e->meta.base_shape, sizeof e->meta.base_shape, "%lld x %lld x %lld",
                 (long long)base->cfg.num_hidden_layers, (long long)base->cfg.hidden_size,
                 (long long)base->cfg.intermediate_size);
    const char *fp;
    if (base && base->st && !e->meta.fingerprint[0] && up_model_fingerprint((up_model *)base, &fp) == UP_OK)
        snprintf(e->meta.fingerprint, sizeof e->meta.fingerprint, "%s", fp);
    pthread_mutex_init(&e->mu, NULL);
    *out = e;
    return UP_OK;
}

up_status up_expert_load(const up_model *m, const char *path, up_expert **out) {
    if (!out || !path) return up_fail(UP_ERR_INVALID, "up_expert_load: NULL argument");
    *out = NULL;
    up_task *t;
    up_expert_meta meta;
    up_status st = up_expert_read(path, (up_model *)m, &t, &meta);
    return st ? st : expert_wrap(m, t, &meta, out);
}

up_status up_expert_save(const up_expert *e, const char *path) {
    if (!e || !path) return up_fail(UP_ERR_INVALID, "up_expert_save: NULL argument");
    if (!e->base) return up_fail(UP_ERR_INVALID, "%s: an expert read without its base model cannot be saved", path);
    return up_expert_write(path, (up_model *)e->base, e->t, &e->meta);
}

void up_expert_free(up_expert *e) {
    if (!e) return;
    up_model_free(e->view);
    up_task_free(e->t);
    pthread_mutex_destroy(&e->mu);
    free(e);
}

const char *up_expert_task(const up_expert *e) { return e ? e->t->name : ""; }
int up_expert_n_labels(const up_expert *e) { return e ? e->t->n_labels : 0; }
const char *up_expert_label(const up_expert *e, int id) {
    return e && id >= 0 && id < e->t->n_labels ? e->t->labels[id] : NULL;
}
double up_expert_ratio(const up_expert *e) { return e ? e->meta.ratio : 0; }
const char *up_expert_metrics(const up_expert *e) { return e ? e->meta.metrics : ""; }

/* F and NH of the base, or 0 when the expert was read without it */
static void base_dims(const up_expert *e, int *F, int *NH) {
    *F = e->base ? (int)e->base->cfg.intermediate_size : 0;
    *NH = e->base ? (int)e->base->cfg.num_attention_heads : 0;
}

void up_expert_kept(const up_expert *e, long *ffn, long *ffn_total, long *heads, long *heads_total) {
    int F, NH;
    base_dims(e, &F, &NH);
    up_task_kept_counts(e->t, F, NH, ffn, heads);
    if (ffn_total) *ffn_total = (long)e->t->n_layers * F;
    if (heads_total) *heads_total = (long)e->t->n_layers * NH;
}

static up_status classify_with(const up_model *view, const up_task *t, size_t n, const char *const *a,
                               const char *const *b, int *labels, float *probs) {
    up_status st = check_texts(n, a, b);
    if (st || n == 0) return st;
    float *p = probs;
    if (!p && !(p = up_malloc(n * (size_t)t->n_labels * sizeof *p, "probabilities"))) return UP_ERR_NOMEM;
    up_run *r = NULL;
    int B = n < 32 ? (int)n : 32;
    if (!(st = up_run_new(view, B, t->max_len, &r))) st = up_task_predict(view, t, r, a, b, n, p, labels);
    up_run_free(r);
    if (p != probs) free(p);
    return st;
}

up_status up_expert_classify(up_expert *e, size_t n, const char *const *a, const char *const *b, int *labels,
                             float *probs) {
    if (!e) return up_fail(UP_ERR_INVALID, "up_expert_classify: NULL expert");
    if (!e->base) return up_fail(UP_ERR_INVALID, "expert '%s' was read without its base model: load it with one to "
                                 "classify", e->t->name);
    if (!e->base->tok) return up_fail(UP_ERR_INVALID, "the base model has no tokenizer (no vocab.txt)");
    up_status st = UP_OK;
    pthread_mutex_lock(&e->mu);
    if (!e->view) st = up_task_view(e->base, e->t, &e->view);
    pthread_mutex_unlock(&e->mu);
    return st ? st : classify_with(e->view, e->t, n, a, b, labels, probs);
}

int up_expert_layers(const up_expert *e) { return e ? e->t->n_layers : 0; }

const int32_t *up_expert_kept_neurons(const up_expert *e, int layer, int *n) {
    *n = 0;
    if (!e || layer < 0 || layer >= e->t->n_layers || !e->t->kept || !e->t->kept[layer]) return NULL;
    *n = e->t->n_kept[layer];
    return e->t->kept[layer];
}

static json_t *kept_json(int32_t **kept, const int *n_kept, int L, int all) {
    json_t *a = json_array();
    for (int l = 0; l < L; l++)
        json_array_append_new(a, kept[l] ? json_integer(n_kept[l]) : all ? json_integer(all) : json_null());
    return a;
}

up_status up_expert_info_json(const up_expert *e, char **out) {
    if (!e || !out) return up_fail(UP_ERR_INVALID, "up_expert_info_json: NULL argument");
    const up_task *t = e->t;
    int F, NH;
    base_dims(e, &F, &NH);
    long kf, kh;
    up_task_kept_counts(t, F, NH, &kf, &kh);
    json_t *labels = json_array(), *metrics = json_loads(e->meta.metrics, 0, NULL);
    for (int i = 0; i < t->n_labels; i++) json_array_append_new(labels, json_string(t->labels[i]));
    json_t *o = json_pack("{s:s, s:i, s:o, s:i, s:i, s:i, s:s, s:i, s:s, s:f, s:o, s:o, s:o, s:s}", "task", t->name,
                          "version", e->meta.version, "labels", labels, "prompts", t->n_prompt, "hidden", t->C, "prompt_layers",
                          t->prompt_layers, "pooling", t->pool_mean ? "mean" : "cls", "max_len", t->max_len, "method",
                          e->meta.method, "ratio", e->meta.ratio, "kept_ffn_per_layer",
                          kept_json(t->kept, t->n_kept, t->n_layers, F), "kept_heads_per_layer",
                          kept_json(t->kept_heads, t->n_kept_heads, t->n_layers, NH), "metrics",
                          metrics ? metrics : json_object(), "base_fingerprint", e->meta.fingerprint);
    if (o) json_object_set_new(o, "base_shape", json_string(e->meta.base_shape));
    if (o && F) {
        json_object_set_new(o, "kept_ffn", json_integer(kf));
        json_object_set_new(o, "total_ffn", json_integer((json_int_t)t->n_layers * F));
        json_object_set_new(o, "kept_heads", json_integer(kh));
        json_object_set_new(o, "total_heads", json_integer((json_int_t)t->n_layers * NH));
    }
    *out = o ? json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(8)) : NULL;
    json_decref(o);
    return *out ? UP_OK : up_fail(UP_ERR_NOMEM, "out of memory for the expert's JSON");
}

/* ---- progress bridges ----------------------------------------------------------- */

typedef struct {
    up_progress_fn fn;
    void *user;
    up_stage stage;
} bridge;

static void emit(const bridge *br, up_progress p) {
    if (br->fn) br->fn(&p, br->user);
}

static void tune_bridge(const up_tune_report *r, int epochs, long spe, void *user) {
    const bridge *br = user;
    up_progress p = {.stage = br->stage, .epoch = r->epoch + 1, .epochs = epochs, .done = r->step - (long)r->epoch * spe,
                     .total = spe, .loss = r->train_loss, .rate = r->examples_per_s, .metric = NAN, .report = NAN,
                     .before = NAN};
    emit(br, p);
}

typedef struct {
    bridge br;
    double t0;
} attr_bridge;

static void attr_progress(size_t done, size_t total, void *user) {
    attr_bridge *ab = user;
    up_progress p = {.stage = UP_STAGE_ATTRIBUTION, .done = (long)done, .total = (long)total,
                     .rate = done / (up_now() - ab->t0 + 1e-9), .metric = NAN, .report = NAN, .before = NAN};
    emit(&ab->br, p);
}

typedef struct {
    bridge br;
    up_localize_result *res;
} point_bridge;

static void record_point(point_bridge *pb, double ratio, double metric, int ok) {
    up_localize_result *r = pb->res;
    if (r->n_points < UP_MAX_POINTS) {
        r->point_ratio[r->n_points] = ratio;
        r->point_metric[r->n_points] = metric;
        r->point_ok[r->n_points++] = ok;
    }
    emit(&pb->br, (up_progress){.stage = UP_STAGE_SEARCH, .ratio = ratio, .metric = metric, .ok = ok, .report = NAN,
                                .before = NAN});
}

static void search_point(double ratio, double metric, int ok, void *user) { record_point(user, ratio, metric, ok); }

/* ---- tune ------------------------------------------------------------------------- */

up_tune_opts up_tune_opts_default(void) {
    up_tune_cfg c = up_tune_cfg_default();
    up_tune_opts o = {.prompts = c.n_prompt, .deep = 0, .pool = c.pool_mean ? UP_POOL_MEAN : UP_POOL_CLS,
                      .max_len = c.max_len, .batch = c.batch, .epochs = c.epochs, .patience = c.patience,
                      .lr = c.lr, .head_lr = c.head_lr, .seed = c.seed};
    return o;
}

static double majority_metric(const char *task, const up_dataset *train, const up_dataset *d) {
    int maj = up_majority_label(train);
    int *p = malloc(d->n * sizeof *p), *g = malloc(d->n * sizeof *g);
    double m = NAN;
    if (p && g) {
        for (size_t i = 0; i < d->n; i++) {
            p[i] = maj;
            g[i] = d->ex[i].label;
        }
        m = up_task_metric(task, p, g, d->n);
    }
    free(p);
    free(g);
    return m;
}

static up_status same_labels(const up_dataset *train, const up_dataset *d, const char *what) {
    if (!d) return UP_OK;
    int same = d->n_labels == train->n_labels;
    for (int i = 0; same && i < d->n_labels; i++) same = !strcmp(d->labels[i], train->labels[i]);
    if (!same)
        return up_fail(UP_ERR_INVALID, "the %s set's labels (%d, first '%s') are not the training set's (%d, first '%s'): "
                       "load it with the training set as its label space", what, d->n_labels,
                       d->n_labels ? d->labels[0] : "", train->n_labels, train->n_labels ? train->labels[0] : "");
    return UP_OK;
}

/* tuning and attribution need gradients: fp32 or bf16 */
static up_status trainable(const up_model *m) {
    if (up_model_precision(m) != UP_PREC_INT8) return UP_OK;
    return up_fail(UP_ERR_UNSUPPORTED, "int8 is an inference precision: tuning and localizing run in fp32 or bf16 "
                   "(--precision fp32|bf16|auto); load the model in int8 for eval, classify and serve");
}

up_status up_tune(const up_model *m, const up_dataset *train, const up_dataset *val, const up_dataset *report,
                  const up_tune_opts *o, up_expert **out, up_tune_result *res) {
    up_tune_opts d = up_tune_opts_default();
    if (!o) o = &d;
    if (!m || !train || !val || !out) return up_fail(UP_ERR_INVALID, "up_tune: NULL argument");
    *out = NULL;
    up_status st;
    if ((st = trainable(m))) return st;
    if ((st = same_labels(train, val, "validation")) || (st = same_labels(train, report, "report"))) return st;
    const char *task = o->task && *o->task ? o->task : train->name;
    up_tune_cfg c = up_tune_cfg_default();
    c.n_prompt = o->prompts;
    c.deep = o->deep;
    c.pool_mean = o->pool == UP_POOL_MEAN;
    c.max_len = o->max_len;
    c.batch = o->batch;
    c.epochs = o->epochs;
    c.patience = o->patience;
    c.lr = o->lr;
    c.head_lr = o->head_lr;
    c.seed = o->seed;
    c.max_train = o->max_train;
    bridge br = {o->progress, o->progress_user, UP_STAGE_TUNE};
    if (o->progress) {
        c.progress = tune_bridge;
        c.progress_user = &br;
    }
    c.interrupt = o->interrupt;
    double t0 = up_now(), rm = NAN, maj = NAN;
    up_task *t = NULL;
    up_tune_report rep;
    if ((st = up_task_tune(m, task, train, val, &c, &t, &rep))) return st;
    if (report && report->n) {
        if ((st = up_task_evaluate(m, t, report, 64, &rm, NULL))) {
            up_task_free(t);
            return st;
        }
        maj = majority_metric(task, train, report);
    }
    double secs = up_now() - t0;
    up_expert_meta meta;
    memset(&meta, 0, sizeof meta);
    snprintf(meta.method, sizeof meta.method, "none");
    snprintf(meta.metrics, sizeof meta.metrics,
             "{\"metric\": \"%s\", \"tuned_val\": %.4f, \"tuned_report\": %.4f, \"majority_report\": %.4f, "
             "\"best_epoch\": %d, \"tune_seconds\": %.1f}",
             up_task_metric_name(task), rep.val_metric, isnan(rm) ? -1.0 : rm, isnan(maj) ? -1.0 : maj, rep.best_epoch,
             secs);
    if (res) {
        memset(res, 0, sizeof *res);
        snprintf(res->metric_name, sizeof res->metric_name, "%s", up_task_metric_name(task));
        res->val = rep.val_metric;
        res->report = rm;
        res->majority = maj;
        res->best_epoch = rep.best_epoch;
        res->epochs = rep.epoch;
        res->seconds = secs;
        res->examples_per_s = rep.examples_per_s;
    }
    return expert_wrap(m, t, &meta, out);
}

/* d's labels must be the expert's, in its order (ids are positions): a file or rows whose labels came
 * in another order are refused, not silently scored against permuted ids */
static up_status expert_labels(const up_expert *e, const up_dataset *d, const char *what) {
    const up_task *t = e->t;
    int same = d->n_labels == t->n_labels;
    for (int i = 0; same && i < t->n_labels; i++) same = !strcmp(d->labels[i], t->labels[i]);
    if (same) return UP_OK;
    char want[256] = "", got[256] = "";
    for (int i = 0; i < t->n_labels && strlen(want) < 200; i++)
        snprintf(want + strlen(want), sizeof want - strlen(want), "%s'%s'", i ? ", " : "", t->labels[i]);
    for (int i = 0; i < d->n_labels && strlen(got) < 200; i++)
        snprintf(got + strlen(got), sizeof got - strlen(got), "%s'%s'", i ? ", " : "", d->labels[i]);
    return up_fail(UP_ERR_INVALID, "the %s set's labels are %s, expert '%s' has %s in this order: load the set with the "
                   "expert's label space (its training set)", what, got, t->name, want);
}

/* ---- localize ---------------------------------------------------------------------- */

up_localize_opts up_localize_opts_default(void) {
    up_search_opts s = up_search_defaults();
    up_localize_opts o = {.method = "actxgrad", .ig_steps = up_attr_defaults().ig_steps, .ratio = -1,
                          .tolerance = s.tolerance, .max_ratio = s.max_ratio, .search_steps = s.iters + 1,
                          .retune_lr = 1e-3f, .retune_head_lr = 1e-3f, .patience = 2, .batch = 32};
    return o;
}

/* re-tunes *t's prompt and head (warm start) and keeps the result when its
 * validation metric beats *metric */
static up_status retune_if_better(const up_model *m, const char *task, const up_dataset *train, const up_dataset *val,
                                  up_tune_cfg *to, up_task **t, double *metric, const bridge *br) {
    to->init = *t;
    up_task *rt = NULL;
    up_tune_report rr;
    up_status st = up_task_tune(m, task, train, val, to, &rt, &rr);
    if (st) return st;
    int better = rr.val_metric > *metric;
    emit(br, (up_progress){.stage = UP_STAGE_RETUNE, .before = *metric, .metric = rr.val_metric, .ok = better,
                           .epochs = to->epochs, .report = NAN});
    if (better) {
        *metric = rr.val_metric;
        up_task_free(*t);
        *t = rt;
    } else {
        up_task_free(rt);
    }
    return UP_OK;
}

static up_status localize_run(const up_model *m, const up_expert *tuned, const up_dataset *train,
                              const up_dataset *val, const up_dataset *report, const up_localize_opts *o,
                              up_localize_result *res, up_task **tp, double *scores, double *hscores) {
    const char *task = tuned->t->name;
    const int L = (int)m->cfg.num_hidden_layers, F = (int)m->cfg.intermediate_size,
              NH = (int)m->cfg.num_attention_heads;
    up_status st;
    up_attr_opts ao = up_attr_defaults();
    if ((st = up_attr_from_name(o->method ? o->method : "actxgrad", &ao.method))) return st;
    ao.agg_max = o->agg_max;
    ao.keep_sign = o->keep_sign;
    if (o->ig_steps > 0) ao.ig_steps = o->ig_steps;
    ao.max_examples = o->max_examples;
    if (o->batch > 0) ao.batch = o->batch;
    attr_bridge ab = {{o->progress, o->progress_user, UP_STAGE_ATTRIBUTION}, up_now()};
    ao.progress = attr_progress;
    ao.progress_user = &ab;
    ao.head_scores = hscores;
    ao.heads_only = o->keep_ffn;
    ao.interrupt = o->interrupt;
    bridge br = {o->progress, o->progress_user, UP_STAGE_RETUNE};
    up_task *t = *tp;
    if ((st = up_attribute(m, t, train, &ao, scores))) return st;
    res->attribution_seconds = up_now() - ab.t0;
    for (int i = 0; i < o->n_sweep && !o->keep_ffn; i++) { /* fixed ratios, for comparing methods */
        double mv = NAN, mr = NAN;
        if (o->interrupt && *o->interrupt) return up_fail(UP_ERR_INTERRUPTED, "interrupted in the sweep");
        if ((st = up_prune_to_ratio(t, scores, L, F, o->sweep[i], o->per_layer)) ||
            (st = up_task_evaluate(m, t, val, 64, &mv, NULL)) ||
            (report && report->n && (st = up_task_evaluate(m, t, report, 64, &mr, NULL))))
            return st;
        if (res->n_sweep < UP_MAX_POINTS) {
            res->sweep_ratio[res->n_sweep] = o->sweep[i];
            res->sweep_val[res->n_sweep] = mv;
            res->sweep_report[res->n_sweep++] = mr;
        }
        emit(&br, (up_progress){.stage = UP_STAGE_SWEEP, .ratio = o->sweep[i], .metric = mv, .report = mr, .before = NAN});
    }
    if (o->n_sweep && !o->keep_ffn) up_task_clear_kept(t);
    up_tune_cfg to = up_tune_cfg_default();
    to.epochs = o->retune_epochs;
    to.patience = o->patience > 0 ? o->patience : 2;
    to.lr = o->retune_lr;
    to.head_lr = o->retune_head_lr;
    to.max_train = o->max_train;
    if (o->batch > 0) to.batch = o->batch;
    to.interrupt = o->interrupt;
    bridge tb = {o->progress, o->progress_user, UP_STAGE_TUNE};
    if (o->progress) {
        to.progress = tune_bridge;
        to.progress_user = &tb;
    }
    point_bridge pb = {{o->progress, o->progress_user, UP_STAGE_SEARCH}, res};
    if (o->keep_ffn) { /* the input expert's FFN as it is: its metric is the reference */
        res->ratio = tuned->meta.ratio;
        if ((st = up_task_evaluate(m, t, val, 64, &res->full_val, NULL))) return st;
        res->ffn_val = res->full_val;
    } else if (o->ratio >= 0) {
        up_task_clear_kept(t);
        if ((st = up_task_evaluate(m, t, val, 64, &res->full_val, NULL)) ||
            (st = up_prune_to_ratio(t, scores, L, F, o->ratio, o->per_layer)) ||
            (st = up_task_evaluate(m, t, val, 64, &res->ffn_val, NULL)))
            return st;
        res->ratio = o->ratio;
        record_point(&pb, res->ratio, res->ffn_val, res->ffn_val >= res->full_val - o->tolerance);
        if (o->retune_epochs > 0 && res->ratio > 0 &&
            (st = retune_if_better(m, task, train, val, &to, tp, &res->ffn_val, &br)))
            return st;
        t = *tp;
    } else {
        up_search_opts so = up_search_defaults();
        so.tolerance = o->tolerance;
        so.max_ratio = o->max_ratio;
        so.per_layer = o->per_layer;
        so.iters = o->search_steps - 1;
        so.point = search_point;
        so.point_user = &pb;
        so.interrupt = o->interrupt;
        if (o->retune_epochs > 0) {
            so.retune = &to;
            so.retune_train = train;
        }
        up_search_result sr;
        memset(&sr, 0, sizeof sr);
        if ((st = up_prune_search(m, t, scores, val, &so, &sr))) return st;
        res->full_val = sr.full_metric;
        res->ratio = sr.ratio;
        res->ffn_val = sr.metric;
    }
    res->expert_val = res->ffn_val;
    if (o->heads > 0) { /* attention heads after the FFN */
        if ((st = up_prune_heads(t, hscores, L, NH, o->heads)) ||
            (st = up_task_evaluate(m, t, val, 64, &res->expert_val, NULL)))
            return st;
        emit(&br, (up_progress){.stage = UP_STAGE_HEADS, .ratio = o->heads, .before = res->ffn_val,
                                .metric = res->expert_val, .report = NAN});
        if (o->retune_epochs > 0 && (st = retune_if_better(m, task, train, val, &to, tp, &res->expert_val, &br)))
            return st;
    }
    if (report && report->n && (st = up_task_evaluate(m, *tp, report, 64, &res->expert_report, NULL))) return st;
    return UP_OK;
}

up_status up_localize(const up_model *m, const up_expert *tuned, const up_dataset *train, const up_dataset *val,
                      const up_dataset *report, const up_localize_opts *o, up_expert **out, up_localize_result *res) {
    up_localize_opts d = up_localize_opts_default();
    up_localize_result r0;
    if (!o) o = &d;
    if (!res) res = &r0;
    memset(res, 0, sizeof *res);
    res->expert_report = NAN;
    if (!m || !tuned || !train || !val || !out) return up_fail(UP_ERR_INVALID, "up_localize: NULL argument");
    *out = NULL;
    if (tuned->base != m) return up_fail(UP_ERR_INVALID, "up_localize: the expert was loaded for another model");
    up_status st;
    if ((st = trainable(m))) return st;
    if ((st = same_labels(train, val, "validation")) || (st = same_labels(train, report, "report"))) return st;
    if ((st = expert_labels(tuned, train, "training"))) return st;
    if (o->keep_ffn && !(o->heads > 0)) return up_fail(UP_ERR_INVALID, "keep_ffn goes with heads > 0");
    if (o->ratio >= 1 || o->heads < 0 || o->heads >= 1 || o->n_sweep < 0 || (o->n_sweep && !o->sweep) ||
        o->search_steps < 1 || o->search_steps > UP_MAX_POINTS || o->tolerance < 0 || o->max_ratio <= 0 ||
        o->max_ratio >= 1)
        return up_fail(UP_ERR_INVALID, "localize options out of range (ratio < 1, 0 <= heads < 1, "
                       "1 <= search_steps <= %d, tolerance >= 0, 0 < max_ratio < 1)", UP_MAX_POINTS);
    for (int i = 0; i < o->n_sweep; i++)
        if (!(o->sweep[i] >= 0 && o->sweep[i] < 1)) return up_fail(UP_ERR_INVALID, "sweep ratio %g: expected 0 <= r < 1", o->sweep[i]);
    const int L = (int)m->cfg.num_hidden_layers, F = (int)m->cfg.intermediate_size,
              NH = (int)m->cfg.num_attention_heads;
    double *scores = o->scores ? o->scores : up_malloc((size_t)L * F * sizeof *scores, "neuron scores");
    double *hscores = o->heads > 0 ? up_calloc((size_t)L * NH, sizeof *hscores, "head scores") : NULL;
    up_task *t = NULL;
    if (!scores || (o->heads > 0 && !hscores)) st = UP_ERR_NOMEM;
    else if (!(st = up_task_clone(tuned->t, &t)))
        st = localize_run(m, tuned, train, val, report, o, res, &t, scores, hscores);
    if (scores != o->scores) free(scores);
    free(hscores);
    if (st) {
        up_task_free(t);
        return st;
    }
    const char *task = t->name;
    up_attr_method am = UP_ATTR_ACTGRAD;
    up_attr_from_name(o->method ? o->method : "actxgrad", &am);
    long kf, kh;
    up_task_kept_counts(t, F, NH, &kf, &kh);
    up_expert_meta meta;
    memset(&meta, 0, sizeof meta);
    snprintf(meta.method, sizeof meta.method, "%s", up_attr_name(am));
    meta.ratio = res->ratio;
    snprintf(meta.metrics, sizeof meta.metrics,
             "{\"metric\": \"%s\", \"full_val\": %.4f, \"expert_val\": %.4f, \"expert_report\": %.4f, "
             "\"kept_ffn\": %ld, \"total_ffn\": %ld, \"kept_heads\": %ld, \"total_heads\": %ld, "
             "\"attribution_seconds\": %.1f, \"aggregation\": \"%s\"}",
             up_task_metric_name(task), res->full_val, res->expert_val,
             isnan(res->expert_report) ? -1.0 : res->expert_report, kf, (long)L * F, kh, (long)L * NH,
             res->attribution_seconds, o->agg_max ? "max" : "mean");
    return expert_wrap(m, t, &meta, out);
}

/* ---- evaluate ----------------------------------------------------------------------- */

up_eval_opts up_eval_opts_default(void) {
    up_eval_opts o = {.timing = 1, .iters = 9, .batch = 64};
    return o;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median forward times of two task views (full, expert) at B x T. Each is
 * timed in blocks of consecutive forwards, the blocks alternating (full,
 * expert, full, ...) over three rounds, so that a change in the machine's
 * load falls on both alike; the first forward of every block is a warm-up
 * and not counted. Within a block a model runs as a single-task server runs
 * it: alternating the two models forward by forward makes both about 10%
 * slower here (each evicts the other's buffers from the shared cache;
 * docs/RESULTS.md). */
static up_status time_views(const up_model *const v[2], const up_task *const t[2], int B, int T, int iters,
                            double out[2]) {
    enum { ROUNDS = 3, PER = 11 };
    up_run *r[2] = {NULL, NULL};
    int32_t *ids = up_malloc((size_t)B * T * 4, "timing ids"), *lens = up_malloc((size_t)B * 4, "timing lengths");
    up_status st = ids && lens ? UP_OK : UP_ERR_NOMEM;
    if (!st) st = up_run_new(v[0], B, T, &r[0]);
    if (!st) st = up_run_new(v[1], B, T, &r[1]);
    if (st) goto done;
    int V = (int)v[0]->cfg.vocab_size;
    for (int i = 0; i < B * T; i++) ids[i] = 5 + (int)((i * 2654435761u) % (unsigned)(V - 5));
    for (int i = 0; i < B; i++) lens[i] = T;
    up_batch b[2] = {up_task_batch(t[0], B, T, ids, NULL, lens), up_task_batch(t[1], B, T, ids, NULL, lens)};
    int per = (iters + ROUNDS - 1) / ROUNDS, n = 0;
    double ts[2][ROUNDS * PER];
    if (per > PER) per = PER;
    for (int round = 0; round < ROUNDS && !st; round++) {
        for (int k = 0; k < 2 && !st; k++) {
            st = up_forward(r[k], &b[k]);
            for (int i = 0; i < per && !st; i++) {
                double t0 = up_now();
                st = up_forward(r[k], &b[k]);
                ts[k][n + i] = up_now() - t0;
            }
        }
        n += per;
    }
    for (int k = 0; k < 2 && !st; k++) {
        qsort(ts[k], (size_t)n, sizeof ts[k][0], cmp_double);
        out[k] = ts[k][n / 2];
    }
done:
    free(ids);
    free(lens);
    up_run_free(r[0]);
    up_run_free(r[1]);
    return st;
}

up_status up_expert_time(const up_model *m, const up_expert *e, const up_expert *full, int B, int T, int iters,
                         double ms[2]) {
    if (!m || !e || !ms) return up_fail(UP_ERR_INVALID, "up_expert_time: NULL argument");
    if (e->base != m || (full && full->base != m))
        return up_fail(UP_ERR_INVALID, "up_expert_time: the experts must be loaded for this model");
    const up_task *t = e->t;
    if (B < 1 || T < 2 + t->n_prompt || T > m->cfg.max_position_embeddings || iters < 1)
        return up_fail(UP_ERR_INVALID, "%d x %d tokens, %d iterations: a row holds [CLS], the %d prompt vectors and a "
                       "token, at most %lld in all", B, T, iters, t->n_prompt, (long long)m->cfg.max_position_embeddings);
    up_task *ft = NULL;
    up_model *vf = NULL, *ve = NULL;
    up_status st = up_task_clone(full ? full->t : t, &ft);
    if (!st) {
        up_task_clear_kept(ft);
        up_task_clear_kept_heads(ft);
        const up_task *tk[2] = {ft, t};
        if (!(st = up_task_view(m, ft, &vf)) && !(st = up_task_view(m, t, &ve))) {
            const up_model *vs[2] = {vf, ve};
            double tt[2];
            if (!(st = time_views(vs, tk, B, T, iters, tt))) {
                ms[0] = 1e3 * tt[0];
                ms[1] = 1e3 * tt[1];
            }
        }
    }
    up_model_free(vf);
    up_model_free(ve);
    up_task_free(ft);
    return st;
}

up_status up_evaluate(const up_model *m, const up_expert *e, const up_expert *full, const up_dataset *d,
                      const up_eval_opts *o, up_eval_result *res) {
    up_eval_opts od = up_eval_opts_default();
    if (!o) o = &od;
    if (!m || !e || !d || !res) return up_fail(UP_ERR_INVALID, "up_evaluate: NULL argument");
    memset(res, 0, sizeof *res);
    if (e->base != m || (full && full->base != m))
        return up_fail(UP_ERR_INVALID, "up_evaluate: the experts must be loaded for this model");
    if (!d->n) return up_fail(UP_ERR_INVALID, "up_evaluate: the dataset is empty");
    const up_task *t = e->t;
    if (full && (strcmp(full->t->name, t->name) || full->t->n_labels != t->n_labels))
        return up_fail(UP_ERR_INVALID, "the full model is task '%s', the expert '%s'", full->t->name, t->name);
    up_status lst = expert_labels(e, d, "evaluation");
    if (lst) return lst;
    up_task *ft = NULL;
    int *pred[2] = {NULL, NULL}, *gold = up_malloc(d->n * sizeof *gold, "labels");
    up_status st = gold ? up_task_clone(full ? full->t : t, &ft) : UP_ERR_NOMEM;
    if (st) goto done;
    up_task_clear_kept(ft);
    up_task_clear_kept_heads(ft);
    for (size_t i = 0; i < d->n; i++) gold[i] = d->ex[i].label;
    const up_task *tk[2] = {ft, t};
    snprintf(res->metric_name, sizeof res->metric_name, "%s", up_task_metric_name(t->name));
    res->n = d->n;
    for (int k = 0; k < 2 && !st; k++) {
        if (!(pred[k] = up_malloc(d->n * sizeof *pred[k], "predictions"))) {
            st = UP_ERR_NOMEM;
            break;
        }
        if ((st = up_task_evaluate(m, tk[k], d, o->batch > 0 ? o->batch : 64, &res->metric[k], pred[k]))) break;
        res->accuracy[k] = 100 * up_accuracy(pred[k], gold, d->n);
        res->f1[k] = 100 * up_f1_binary(pred[k], gold, d->n, 1);
        res->matthews[k] = 100 * up_matthews(pred[k], gold, d->n);
    }
    if (st || !o->timing) goto done;
    int iters = o->iters < 1 ? 1 : o->iters > 31 ? 31 : o->iters;
    const int shapes[2][2] = {{32, 128}, {1, 128}};
    for (int k = 0; k < 2 && !st; k++) {
        int B = shapes[k][0], T = shapes[k][1] < t->max_len ? shapes[k][1] : t->max_len;
        if ((st = up_expert_time(m, e, full, B, T, iters, res->ms[k]))) break;
        res->shape_B[k] = B;
        res->shape_T[k] = T;
        res->speedup[k] = res->ms[k][0] / res->ms[k][1];
        res->n_shapes = k + 1;
    }
done:
    up_task_free(ft);
    free(pred[0]);
    free(pred[1]);
    free(gold);
    return st;
}

/* ---- hub ------------------------------------------------------------------------------ */

up_status up_hub_classify(up_hub *h, const char *task, size_t n, const char *const *a, const char *const *b,
                          int *labels, float *probs) {
    if (!h || !task) return up_fail(UP_ERR_INVALID, "up_hub_classify: NULL argument");
    if (!up_hub_base(h)->tok) return up_fail(UP_ERR_INVALID, "the base model has no tokenizer (no vocab.txt)");
    up_hub_expert *e = up_hub_acquire(h, task);
    if (!e) return up_fail(UP_ERR_INVALID, "no expert plugged for task '%s'", task);
    up_status st = classify_with(e->view, e->task, n, a, b, labels, probs);
    up_hub_release(h, e);
    return st;
}

int up_hub_labels(up_hub *h, const char *task, char (*labels)[32], int cap) {
    up_hub_expert *e = h && task ? up_hub_acquire(h, task) : NULL;
    if (!e) return up_fail(UP_ERR_INVALID, "no expert plugged for task '%s'", task ? task : "(null)"), -1;
    int n = e->task->n_labels;
    for (int i = 0; i < n && i < cap; i++) snprintf(labels[i], 32, "%s", e->task->labels[i]);
    up_hub_release(h, e);
    return n;
}

int up_hub_tasks(up_hub *h, char (*names)[32], int cap) {
    up_hub_expert *es[256];
    int n = up_hub_list(h, es, 256);
    for (int i = 0; i < n; i++) {
        if (i < cap) snprintf(names[i], 32, "%s", es[i]->name);
        up_hub_release(h, es[i]);
    }
    return n;
}
