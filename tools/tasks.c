/*
 * tasks.c: unplug tune, localize, eval and expert show: the pipeline's
 * commands, over the public API only (unplug.h: up_tune, up_localize,
 * up_evaluate, up_expert_*). Text goes to stdout as before; --json prints
 * one JSON object instead, which the report and scripts read.
 */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <jansson.h>
#include "unplug.h"
#include "cli.h"

volatile int g_interrupt;
static void on_sigint(int sig) {
    (void)sig;
    g_interrupt = 1;
}
void cli_catch_sigint(void) { signal(SIGINT, on_sigint); }

up_model_opts cli_model_opts(const args *a) {
    up_model_opts o = up_model_opts_default();
    o.precision = a->precision;
    o.backend = a->backend;
    o.threads = a->threads;
    return o;
}

/* the task's splits: --task NAME --data DIR, or --train/--val[/--test] files */
typedef struct {
    up_dataset *train, *val, *report;
    const char *task;
} splits;

static void splits_free(splits *s) {
    up_dataset_free(s->train);
    up_dataset_free(s->val);
    up_dataset_free(s->report);
    memset(s, 0, sizeof *s);
}

static int load_splits(const args *a, splits *s) {
    memset(s, 0, sizeof *s);
    uint64_t seed = a->seed >= 0 ? (uint64_t)a->seed : 1;
    if (a->data) {
        if (!a->task)
            return fputs("unplug: --data needs --task NAME (sst2, cola, mrpc, rte, wnli, qnli, qqp, mnli, trec)\n", stderr), 0;
        if (up_dataset_task(a->task, a->data, seed, &s->train, &s->val, &s->report) != UP_OK)
            return die("cannot load the task data"), 0;
        s->task = a->task;
        return 1;
    }
    if (!a->train || !a->val)
        return fputs("unplug: give --task NAME --data DIR, or --train FILE --val FILE [--test FILE]\n", stderr), 0;
    if (up_dataset_load(a->train, a->format, NULL, &s->train) != UP_OK ||
        up_dataset_load(a->val, a->format, s->train, &s->val) != UP_OK ||
        (a->test && up_dataset_load(a->test, a->format, s->train, &s->report) != UP_OK)) {
        die("cannot load the task data");
        splits_free(s);
        return 0;
    }
    s->task = a->task ? a->task : up_dataset_name(s->train);
    return 1;
}

/* progress and the points of a search on stderr, as lines (a carriage return
 * redraws the running counters on a terminal) */
static void progress(const up_progress *p, void *user) {
    (void)user;
    int tty = isatty(2);
    switch (p->stage) {
    case UP_STAGE_TUNE:
        fprintf(stderr, "%sepoch %d/%d  step %ld/%ld  loss %.4f  %.0f examples/s%s", tty ? "\r" : "", p->epoch,
                p->epochs, p->done, p->total, p->loss, p->rate, tty ? "   " : "\n");
        break;
    case UP_STAGE_ATTRIBUTION:
        fprintf(stderr, "%sattribution %ld/%ld examples  %.0f examples/s%s", tty ? "\r" : "", p->done, p->total,
                p->rate, tty ? "   " : "\n");
        if (tty && p->done == p->total) fputc('\n', stderr);
        break;
    case UP_STAGE_SWEEP:
        fprintf(stderr, "  sweep ratio %.2f: validation %.2f, report %.2f\n", p->ratio, p->metric, p->report);
        break;
    case UP_STAGE_SEARCH:
        fprintf(stderr, "  ratio %.4f: validation %.2f %s\n", p->ratio, p->metric, p->ok ? "(within tolerance)" : "(too low)");
        break;
    case UP_STAGE_RETUNE:
        fprintf(stderr, "re-tuned the prompt and head (%d epoch%s): validation ", p->epochs, p->epochs == 1 ? "" : "s");
        if (p->ok) fprintf(stderr, "%.2f -> %.2f (kept)\n", p->before, p->metric);
        else fprintf(stderr, "%.2f, not better than %.2f (discarded)\n", p->metric, p->before);
        break;
    case UP_STAGE_HEADS:
        fprintf(stderr, "pruned %.0f%% of the attention heads: validation %.2f -> %.2f\n", 100 * p->ratio, p->before,
                p->metric);
        break;
    }
}

/* a JSON number, or null for NaN */
static json_t *num(double x) { return isnan(x) ? json_null() : json_real(x); }

/* The result o (taken): to --json-out FILE, and on stdout with --json. 0 or
 * the exit code of a failure to write. */
static int emit_json(const args *a, json_t *o) {
    int rc = 0;
    const size_t flags = JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(8);
    if (a->json_out && json_dump_file(o, a->json_out, flags) != 0) {
        fprintf(stderr, "unplug: cannot write --json-out %s\n", a->json_out);
        rc = 1;
    }
    if (a->json) {
        char *s = json_dumps(o, flags);
        if (s) puts(s);
        free(s);
    }
    json_decref(o);
    return rc;
}

/* the expert's JSON (up_expert_info_json) as a jansson object */
static json_t *expert_json(const up_expert *e) {
    char *s = NULL;
    if (up_expert_info_json(e, &s) != UP_OK) return json_object();
    json_t *o = json_loads(s, 0, NULL);
    up_free(s);
    return o ? o : json_object();
}

/* "kept per layer:" figures out of the expert's JSON */
static void print_per_layer(json_t *info, const char *key) {
    json_t *a = json_object_get(info, key), *v;
    size_t i;
    json_array_foreach(a, i, v) json_is_integer(v) ? printf(" %lld", (long long)json_integer_value(v)) : printf(" all");
}

/* ---- tune --------------------------------------------------------------------- */

static const char *tune_help =
    "usage: unplug tune --model DIR (--task NAME --data DIR | --train FILE --val FILE [--test FILE] [--format F])\n"
    "                   --out FILE.expert [--prompts 20] [--max-len 128] [--batch 32] [--epochs 5] [--patience 2]\n"
    "                   [--deep] [--pool mean|cls] [--lr 3e-3] [--head-lr 3e-3] [--seed N] [--max-train N] [--json] [--json-out F]\n"
    "Prompt tuning on a frozen backbone: --prompts soft prompt vectors after [CLS]\n"
    "(--deep: deep prompts, learned vectors in the prompt rows of every layer's\n"
    "input) and a pooler + classifier head on the mean of the final hidden states\n"
    "(--pool cls: on the final [CLS] vector), AdamW with warmup and linear decay,\n"
    "early stopping on the validation split (val.tsv, or a seeded 10% carve-out\n"
    "of train). Writes the tuned task as an expert file with every FFN neuron kept.\n"
    "--data DIR holds the GLUE layout (glue/SST-2/train.tsv, ..., trec/TREC.train).\n"
    "--json prints the result as one JSON object instead of the text; --json-out F\n"
    "writes it to F as well.\n";

/* refuses an --out that cannot be written before hours of work: its folder
 * must let us create the file (an existing file, replace it) */
static int check_out(const char *path) {
    if (!up_path_writable(path)) {
        fprintf(stderr, "unplug: cannot write --out %s: %s\n", path, strerror(errno));
        return 0;
    }
    return 1;
}

int cmd_tune(const args *a) {
    if (a->help) return fputs(tune_help, stdout), 0;
    if (!a->model || !a->out) return fputs(tune_help, stderr), 2;
    up_model_opts mo = cli_model_opts(a);
    up_model *m;
    if (up_model_load(a->model, &mo, &m) != UP_OK) return die("cannot load the model");
    splits sp;
    if (!load_splits(a, &sp)) { up_model_free(m); return 1; }
    up_tune_opts o = up_tune_opts_default();
    o.task = sp.task;
    if (a->prompts >= 0) o.prompts = a->prompts;
    if (a->max_len) o.max_len = a->max_len;
    if (!strchr(a->batches, ',')) o.batch = a->batch;
    if (a->epochs) o.epochs = a->epochs;
    if (a->patience) o.patience = a->patience;
    if (a->lr >= 0) o.lr = (float)a->lr;
    if (a->head_lr >= 0) o.head_lr = (float)a->head_lr;
    if (a->seed >= 0) o.seed = (uint64_t)a->seed;
    if (a->max_train) o.max_train = (size_t)a->max_train;
    o.deep = a->deep;
    if (a->pool_mean >= 0) o.pool = a->pool_mean ? UP_POOL_MEAN : UP_POOL_CLS;
    o.progress = progress;
    o.interrupt = &g_interrupt;
    cli_catch_sigint();
    up_set_log(NULL, NULL, UP_LOG_INFO);
    int rc = check_out(a->out) ? 0 : 1;
    if (!rc)
        fprintf(stderr, "tuning %s: %zu train, %zu validation examples, %d %sprompts, %d labels\n", sp.task,
                up_dataset_size(sp.train), up_dataset_size(sp.val), o.prompts, o.deep ? "deep " : "",
                up_dataset_n_labels(sp.train));
    up_expert *e = NULL;
    up_tune_result r;
    if (!rc && up_tune(m, sp.train, sp.val, sp.report, &o, &e, &r) != UP_OK) rc = die("tuning failed");
    if (isatty(2)) fputc('\n', stderr);
    if (!rc && g_interrupt) fprintf(stderr, "unplug: tune interrupted: the best state so far (epoch %d) is written\n", r.best_epoch);
    if (!rc && up_expert_save(e, a->out) != UP_OK) rc = die("cannot write the expert");
    if (!rc)
        rc = emit_json(a, json_pack("{s:s, s:s, s:o, s:o, s:o, s:i, s:i, s:f, s:f, s:s}", "task", sp.task, "metric",
                                    r.metric_name, "val", num(r.val), "report", num(r.report), "majority_report",
                                    num(r.majority), "best_epoch", r.best_epoch, "epochs", r.epochs, "seconds",
                                    r.seconds, "examples_per_s", r.examples_per_s, "out", a->out));
    if (!rc && !a->json) {
        printf("task %s: validation %s %.2f (best epoch %d)", sp.task, r.metric_name, r.val, r.best_epoch);
        if (!isnan(r.report)) printf(", report split %.2f (majority class %.2f)", r.report, r.majority);
        printf(", %.0f s\nwrote %s\n", r.seconds, a->out);
    }
    up_expert_free(e);
    splits_free(&sp);
    up_model_free(m);
    return rc;
}

/* ---- localize ------------------------------------------------------------------ */

static const char *localize_help =
    "usage: unplug localize --model DIR --expert TUNED.expert (--task NAME --data DIR | --train F --val F [--test F])\n"
    "                       --out FILE.expert [--method actxgrad|activation|weight|random|ig] [--ig-steps 8]\n"
    "                       [--agg mean|max] [--signed]\n"
    "                       [--max-examples N] [--tolerance 1.0] [--max-ratio 0.95] [--ratio R] [--per-layer]\n"
    "                       [--scores FILE.tsv] [--curve FILE.tsv] [--sweep 0.3,0.5,0.7] [--retune-epochs N]\n"
    "                       [--search-steps 8]\n"
    "                       [--heads R [--keep-ffn]] [--json] [--json-out F]\n"
    "Scores every FFN neuron's relevance to the task on its training split\n"
    "(default: |activation x gradient of the gold label's log-probability|, mean\n"
    "over non-padding tokens, mean over examples; ig: integrated gradients of each\n"
    "layer's activations from zero, --ig-steps midpoints, about 2 x L x steps times\n"
    "the cost), then finds by binary search the\n"
    "largest pruning ratio whose validation metric stays within --tolerance points\n"
    "of the unpruned tuned model (or prunes --ratio R), and writes the expert.\n"
    "The search tries --max-ratio first, then halves the interval: --search-steps\n"
    "ratios in all (default 8; fewer when each is re-tuned at length).\n"
    "--scores writes layer, neuron, score; --curve every ratio tried; --sweep also\n"
    "evaluates fixed ratios (validation and report split) into --curve, for\n"
    "comparing methods. --retune-epochs N re-tunes prompt and head on the pruned\n"
    "model (warm start, N epochs, --lr/--head-lr default 1e-3, --max-train N\n"
    "examples): in the search, every ratio is judged after re-tuning; with\n"
    "--ratio, the re-tuned task is kept if validation improves.\n"
    "--heads R also scores every attention head (its output in place of a\n"
    "neuron's activation; not with ig) and prunes the lowest-scoring share R of\n"
    "all heads after the FFN step; --keep-ffn keeps the input expert's FFN as it\n"
    "is and prunes heads only (an expert whose heads are pruned cannot be re-tuned).\n"
    "--json prints the result as one JSON object (the sweep and search points\n"
    "included) instead of the text; --json-out F writes it to F as well.\n";

static int parse_sweep(const char *s, double *out, int cap) {
    int n = 0;
    const char *p = s;
    while (*p) {
        char *end;
        double x = strtod(p, &end);
        if (end == p || !(x >= 0 && x < 1) || n == cap || (*end && *end != ',')) {
            fprintf(stderr, "unplug: --sweep expects ratios in [0, 1) separated by commas (at most %d), got '%s'\n",
                    cap, s);
            return -1;
        }
        out[n++] = x;
        p = *end ? end + 1 : end;
    }
    return n;
}

/* the --curve file: the fixed ratios as comments, then every ratio of the search */
static int write_curve(const char *path, const up_localize_result *r) {
    FILE *f = fopen(path, "w");
    if (!f) return 0;
    fprintf(f, "ratio\tval_metric\twithin_tolerance\n");
    if (r->n_sweep) fprintf(f, "# sweep: ratio\tval_metric\treport_metric\n");
    for (int i = 0; i < r->n_sweep; i++)
        fprintf(f, "# %.6f\t%.4f\t%.4f\n", r->sweep_ratio[i], r->sweep_val[i], r->sweep_report[i]);
    for (int i = 0; i < r->n_points; i++) fprintf(f, "%.6f\t%.4f\t%d\n", r->point_ratio[i], r->point_metric[i], r->point_ok[i]);
    return fclose(f) == 0;
}

static int write_scores(const char *path, const double *s, int L, int F) {
    FILE *f = fopen(path, "w");
    if (!f) return 0;
    fprintf(f, "layer\tneuron\tscore\n");
    for (int l = 0; l < L; l++)
        for (int j = 0; j < F; j++) fprintf(f, "%d\t%d\t%.9g\n", l, j, s[(size_t)l * F + j]);
    return fclose(f) == 0;
}

static void print_localized(const char *task, const up_expert *e, const up_localize_result *r, int heads,
                            const char *out, const char *method) {
    long kf, tf, kh, th;
    up_expert_kept(e, &kf, &tf, &kh, &th);
    json_t *info = expert_json(e);
    for (int i = 0; i < r->n_sweep; i++)
        printf("sweep\t%s\t%.4f\t%.4f\t%.4f\n", method, r->sweep_ratio[i], r->sweep_val[i], r->sweep_report[i]);
    printf("task %s: pruned %.1f%% of FFN neurons (%ld of %ld kept); validation %.2f (full %.2f)", task, 100 * r->ratio,
           kf, tf, r->expert_val, r->full_val);
    if (!isnan(r->expert_report)) printf(", report split %.2f", r->expert_report);
    printf("\nkept per layer:");
    print_per_layer(info, "kept_ffn_per_layer");
    if (heads) {
        printf("\nattention heads: %ld of %ld kept, per layer:", kh, th);
        print_per_layer(info, "kept_heads_per_layer");
    }
    printf("\nwrote %s\n", out);
    json_decref(info);
}

static json_t *localized_json(const char *task, const up_expert *e, const up_localize_result *r, const char *out,
                              const up_localize_opts *lo) {
    json_t *o = expert_json(e), *pts = json_array(), *sw = json_array();
    for (int i = 0; i < r->n_points; i++)
        json_array_append_new(pts, json_pack("{s:f, s:o, s:b}", "ratio", r->point_ratio[i], "val", num(r->point_metric[i]),
                                             "ok", r->point_ok[i]));
    for (int i = 0; i < r->n_sweep; i++)
        json_array_append_new(sw, json_pack("{s:f, s:o, s:o}", "ratio", r->sweep_ratio[i], "val", num(r->sweep_val[i]),
                                            "report", num(r->sweep_report[i])));
    json_object_set_new(o, "task", json_string(task));
    json_object_set_new(o, "full_val", num(r->full_val));
    json_object_set_new(o, "tolerance", lo->ratio < 0 && !lo->keep_ffn ? json_real(lo->tolerance) : json_null());
    json_object_set_new(o, "ffn_val", num(r->ffn_val));
    json_object_set_new(o, "expert_val", num(r->expert_val));
    json_object_set_new(o, "expert_report", num(r->expert_report));
    json_object_set_new(o, "attribution_seconds", json_real(r->attribution_seconds));
    json_object_set_new(o, "search", pts);
    json_object_set_new(o, "sweep", sw);
    json_object_set_new(o, "out", json_string(out));
    return o;
}

int cmd_localize(const args *a) {
    if (a->help) return fputs(localize_help, stdout), 0;
    if (!a->model || !a->expert || !a->out) return fputs(localize_help, stderr), 2;
    if (a->keep_ffn && !(a->head_ratio > 0)) return fputs("unplug: --keep-ffn goes with --heads R\n", stderr), 2;
    up_localize_opts o = up_localize_opts_default();
    double sweep[UP_MAX_POINTS];
    if (a->sweep && (o.n_sweep = parse_sweep(a->sweep, sweep, UP_MAX_POINTS)) < 0) return 2;
    o.sweep = sweep;
    if (a->method) o.method = a->method;
    o.agg_max = a->agg_max;
    o.keep_sign = a->keep_sign;
    if (a->ig_steps) o.ig_steps = a->ig_steps;
    if (a->max_examples) o.max_examples = (size_t)a->max_examples;
    if (!strchr(a->batches, ',')) o.batch = a->batch;
    if (a->fixed_ratio >= 0) o.ratio = a->fixed_ratio;
    if (a->tolerance >= 0) o.tolerance = a->tolerance;
    if (a->max_ratio >= 0) o.max_ratio = a->max_ratio;
    if (a->search_steps) o.search_steps = a->search_steps;
    o.per_layer = a->per_layer;
    o.retune_epochs = a->retune_epochs;
    if (a->lr >= 0) o.retune_lr = (float)a->lr;
    if (a->head_lr >= 0) o.retune_head_lr = (float)a->head_lr;
    if (a->max_train) o.max_train = (size_t)a->max_train;
    if (a->patience) o.patience = a->patience;
    if (a->head_ratio > 0) o.heads = a->head_ratio;
    o.keep_ffn = a->keep_ffn;
    o.progress = progress;
    o.interrupt = &g_interrupt;
    if (!check_out(a->out)) return 1;
    up_model_opts mo = cli_model_opts(a);
    up_model *m;
    if (up_model_load(a->model, &mo, &m) != UP_OK) return die("cannot load the model");
    up_expert *tuned = NULL, *e = NULL;
    splits sp = {0};
    if (up_expert_load(m, a->expert, &tuned) != UP_OK) { up_model_free(m); return die("cannot load the expert"); }
    if (!load_splits(a, &sp)) { up_expert_free(tuned); up_model_free(m); return 1; }
    const up_config *c = up_model_config(m);
    int L = (int)c->num_hidden_layers, F = (int)c->intermediate_size, rc = 0;
    double *scores = a->scores_out && !a->keep_ffn ? malloc((size_t)L * F * sizeof *scores) : NULL;
    if (a->scores_out && !a->keep_ffn && !scores) rc = die("out of memory");
    o.scores = scores;
    up_set_log(NULL, NULL, UP_LOG_INFO);
    cli_catch_sigint();
    if (o.ratio < 0 && !o.keep_ffn)
        fprintf(stderr, "searching the pruning ratio (tolerance %.2f points)%s\n", o.tolerance,
                o.retune_epochs > 0 ? ", re-tuning prompt and head at each ratio" : "");
    up_localize_result r;
    up_status lst = rc ? UP_OK : up_localize(m, tuned, sp.train, sp.val, sp.report, &o, &e, &r);
    if (lst == UP_ERR_INTERRUPTED) rc = (fprintf(stderr, "\nunplug: localize %s: nothing written\n", up_errmsg()), 130);
    else if (lst) rc = die("localization failed");
    if (!rc && scores && !write_scores(a->scores_out, scores, L, F)) rc = die("cannot write --scores");
    if (!rc && a->curve_out && !write_curve(a->curve_out, &r)) rc = die("cannot write --curve");
    if (!rc && up_expert_save(e, a->out) != UP_OK) rc = die("cannot write the expert");
    if (!rc) rc = emit_json(a, localized_json(sp.task, e, &r, a->out, &o));
    if (!rc && !a->json) print_localized(sp.task, e, &r, o.heads > 0, a->out, o.method);
    free(scores);
    up_expert_free(e);
    up_expert_free(tuned);
    splits_free(&sp);
    up_model_free(m);
    return rc;
}

/* ---- eval ------------------------------------------------------------------------ */

static const char *eval_help =
    "usage: unplug eval --model DIR --expert FILE (--task NAME --data DIR | --train F --val F --test F)\n"
    "                   [--full TUNED.expert] [--split report|val] [--iters 5] [--json] [--json-out F]\n"
    "The expert's and the unpruned tuned model's metric on the same split (accuracy;\n"
    "F1 too for MRPC, Matthews correlation for CoLA), and the measured speed-up of\n"
    "the expert's forward at batch 32 x 128 and 1 x 128 tokens. The unpruned model\n"
    "is --full (the tuned expert the pruning started from; needed when the search\n"
    "re-tuned the prompt and head), else the expert with every neuron kept.\n"
    "--json prints the result as one JSON object instead of the text; --json-out F\n"
    "writes it to F as well.\n";

static json_t *eval_json(const char *task, const char *split, const up_expert *e, const up_eval_result *r) {
    long kf, tf, kh, th;
    up_expert_kept(e, &kf, &tf, &kh, &th);
    json_t *o = json_pack("{s:s, s:s, s:I, s:s, s:f, s:I, s:I, s:I, s:I, s:s}", "task", task, "split", split, "n",
                          (json_int_t)r->n, "method", "", "ratio", up_expert_ratio(e), "kept_ffn", (json_int_t)kf,
                          "total_ffn", (json_int_t)tf, "kept_heads", (json_int_t)kh, "total_heads", (json_int_t)th,
                          "metric", r->metric_name);
    json_t *info = expert_json(e);
    json_object_set(o, "method", json_object_get(info, "method"));
    json_decref(info);
    const char *who[2] = {"full", "expert"};
    for (int k = 0; k < 2; k++)
        json_object_set_new(o, who[k], json_pack("{s:f, s:f, s:f, s:f}", "metric", r->metric[k], "accuracy",
                                                 r->accuracy[k], "f1", r->f1[k], "matthews", r->matthews[k]));
    json_t *tm = json_array();
    for (int k = 0; k < r->n_shapes; k++)
        json_array_append_new(tm, json_pack("{s:i, s:i, s:f, s:f, s:f}", "batch", r->shape_B[k], "tokens", r->shape_T[k],
                                            "full_ms", r->ms[k][0], "expert_ms", r->ms[k][1], "speedup", r->speedup[k]));
    json_object_set_new(o, "timing", tm);
    return o;
}

int cmd_eval(const args *a) {
    if (a->help) return fputs(eval_help, stdout), 0;
    if (!a->model || !a->expert) return fputs(eval_help, stderr), 2;
    int on_val = a->split && !strcmp(a->split, "val");
    if (a->split && !on_val && strcmp(a->split, "report"))
        return fprintf(stderr, "unplug: --split expects report or val, got '%s'\n", a->split), 2;
    up_model_opts mo = cli_model_opts(a);
    up_model *m;
    if (up_model_load(a->model, &mo, &m) != UP_OK) return die("cannot load the model");
    up_expert *e = NULL, *full = NULL;
    splits sp = {0};
    int rc = 0;
    if (up_expert_load(m, a->expert, &e) != UP_OK) rc = die("cannot load the expert");
    else if (a->full && up_expert_load(m, a->full, &full) != UP_OK) rc = die("cannot load the --full expert");
    else if (!load_splits(a, &sp)) rc = 1;
    const up_dataset *d = on_val ? sp.val : sp.report;
    if (!rc && up_dataset_size(d) == 0) rc = (fputs("unplug: the chosen split is empty\n", stderr), 1);
    up_eval_opts eo = up_eval_opts_default();
    eo.iters = a->iters;
    up_eval_result r;
    if (!rc && up_evaluate(m, e, full, d, &eo, &r) != UP_OK) rc = die("evaluation failed");
    if (!rc) rc = emit_json(a, eval_json(sp.task, on_val ? "val" : "report", e, &r));
    if (!rc && !a->json) {
        long kf, tf, kh, th;
        up_expert_kept(e, &kf, &tf, &kh, &th);
        json_t *info = expert_json(e);
        printf("task %s, %s split (%zu examples), method %s, FFN pruning ratio %.1f%% (%ld of %ld neurons kept)", sp.task,
               on_val ? "validation" : "report", r.n, json_string_value(json_object_get(info, "method")),
               100 * up_expert_ratio(e), kf, tf);
        json_decref(info);
        if (kh < th) printf(", %ld of %ld attention heads kept", kh, th);
        printf("\n%-22s %10s %10s\n", "", "full", "expert");
        printf("%-22s %10.2f %10.2f\n", "accuracy", r.accuracy[0], r.accuracy[1]);
        if (!strcmp(sp.task, "mrpc")) printf("%-22s %10.2f %10.2f\n", "F1", r.f1[0], r.f1[1]);
        if (!strcmp(sp.task, "cola")) printf("%-22s %10.2f %10.2f\n", "matthews", r.matthews[0], r.matthews[1]);
        for (int k = 0; k < r.n_shapes; k++)
            printf("%-22s %8.2f ms %8.2f ms   speed-up %.2fx\n", k ? "latency 1 x 128" : "batch 32 x 128", r.ms[k][0],
                   r.ms[k][1], r.speedup[k]);
    }
    up_expert_free(e);
    up_expert_free(full);
    splits_free(&sp);
    up_model_free(m);
    return rc;
}

/* ---- expert show ------------------------------------------------------------------ */

int cmd_expert(const args *a) {
    if (a->help || !a->pos) {
        fputs("usage: unplug expert show FILE.expert [--json]\nPrints an expert file: task, labels, prompt, kept neurons per layer,\n"
              "attribution method, pruning ratio, measured metrics, base-model fingerprint (--json: as one JSON object).\n",
              a->help ? stdout : stderr);
        return a->help ? 0 : 2;
    }
    const char *file = a->pos;
    int json = a->json;
    up_expert *e;
    if (up_expert_load(NULL, file, &e) != UP_OK) return die("cannot read the expert");
    json_t *o = expert_json(e);
    char metrics[2048];
    snprintf(metrics, sizeof metrics, "%s", up_expert_metrics(e)); /* as stored */
    up_expert_free(e);
    if (json) {
        json_object_set_new(o, "file", json_string(file));
        args ja = {.json = 1};
        return emit_json(&ja, o);
    }
    json_t *v;
    size_t i;
    printf("file:         %s\nformat:       unplug-expert v%lld\ntask:         %s\nlabels:      ", file,
           (long long)json_integer_value(json_object_get(o, "version")), json_string_value(json_object_get(o, "task")));
    json_array_foreach(json_object_get(o, "labels"), i, v) printf(" %s", json_string_value(v));
    long long K = json_integer_value(json_object_get(o, "prompt_layers"));
    printf("\nprompt:       %lld vectors x %lld", (long long)json_integer_value(json_object_get(o, "prompts")),
           (long long)json_integer_value(json_object_get(o, "hidden")));
    if (K > 1) printf(" at each of %lld layers (deep)", K);
    printf("\npooling:      %s", !strcmp(json_string_value(json_object_get(o, "pooling")), "mean")
                                      ? "mean of the final hidden states" : "final [CLS]");
    printf("\nmax_len:      %lld tokens\nmethod:       %s\nratio:        %.2f%% of FFN neurons removed\n",
           (long long)json_integer_value(json_object_get(o, "max_len")), json_string_value(json_object_get(o, "method")),
           100 * json_number_value(json_object_get(o, "ratio")));
    printf("kept/layer:  ");
    print_per_layer(o, "kept_ffn_per_layer");
    printf("\nheads/layer: ");
    print_per_layer(o, "kept_heads_per_layer");
    printf("\nmetrics:      %s\nbase model:   sha256 %s\n", metrics,
           json_string_value(json_object_get(o, "base_fingerprint")));
    json_decref(o);
    return 0;
}
