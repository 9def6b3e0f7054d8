/*
 * report.c: `unplug report`, one self-contained HTML file (inline CSS and
 * SVG: no scripts, no network, no fonts to fetch) drawn from the files
 * bench/tasks.sh and bench/scaling.sh leave in a results directory:
 *
 *   DIR/sweep.tsv           task method ratio val_metric report_metric
 *   DIR/scaling.tsv         task batch tokens full_ms expert_ms speedup
 *   DIR/TASK/curve.tsv      ratio val_metric within_tolerance (the ratio search, in order)
 *   DIR/TASK/expert.expert  the pruned expert: kept FFN neurons per layer
 *   DIR/TASK/eval.json      `unplug eval --json-out`: the summary table
 *   DIR/TASK/localize.json  `unplug localize --json-out`: the unpruned
 *                           validation metric and the search tolerance
 *   DIR/TASK/tuned.expert   the tuned metric when eval.json is absent
 *
 *     unplug report --results build/results      # -> build/results/report.html
 *
 * Every plot is drawn from the data present: a missing file leaves its plot
 * saying "no data (FILE missing)". The inputs are hostile: whole-file reads
 * with a size bound, every field checked (a bad line is an error naming
 * file:line), counts bounded, every string escaped into the HTML.
 */
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "unplug.h"
#include "cli.h"

#define MAX_INPUT ((size_t)64 << 20) /* bytes accepted from one input file */
#define MAX_TASKS 256
#define MAX_METHODS 64
#define LABEL_BYTES 40 /* task and method names are cut to this in plot labels */

/* Okabe-Ito, colour-blind safe; series past 8 repeat the colours dashed */
static const char *const palette[] = {"#0072B2", "#D55E00", "#009E73", "#E69F00",
                                      "#CC79A7", "#56B4E9", "#000000", "#999933"};
#define NPAL 8
static const char *colour(int i) { return palette[i % NPAL]; }
static const char *dash(int i) { return (i / NPAL) % 2 ? "6 3" : "none"; }
#define OK_FILL "#009E73"
#define LOW_FILL "#D55E00"

/* ---- the measured data -------------------------------------------------- */

typedef struct { double ratio, metric; int ok; } curve_pt;

typedef struct {
    char *name;
    int has_dir;             /* DIR/name is a directory (only then are its files read) */
    curve_pt *curve;         /* curve.tsv rows in search order */
    size_t n_curve, cap_curve;
    int have_curve;
    double full_val, tol;    /* unpruned validation metric, search tolerance; NAN unknown */
    up_expert *expert;       /* expert.expert, NULL if absent */
    long F;                  /* its base's FFN width */
    double ex_ratio;
    /* summary: eval.json, else the experts' metadata; NAN / -1 unknown */
    char metric[32];
    double full, exp, ratio;
    long kept, total;
    double sp_batch, sp_one;
    char shape_batch[32], shape_one[32];
} task_rec;

typedef struct { int task, method; double ratio, val, rep; } sweep_row;
typedef struct { int task, batch, tokens; double full_ms, expert_ms, speedup; } scale_row;

typedef struct {
    const char *dir;
    char *sweep_path, *scaling_path;
    char *model_desc;        /* "4 layers x 256, FFN 1024" */
    long model_F;            /* from --model, else 0 */
    task_rec *t;
    size_t nt, cap_t;
    char *methods[MAX_METHODS];
    int nm;
    sweep_row *sw;
    size_t nsw, cap_sw;
    int have_sweep;
    scale_row *sc;
    size_t nsc, cap_sc;
    int have_scaling;
} report;

/* "a/b" or "a/b/c" (c non-NULL), malloc'd; NULL out of memory */
static char *join(const char *a, const char *b, const char *c) {
    size_t n = strlen(a) + strlen(b) + (c ? strlen(c) : 0) + 3;
    char *p = malloc(n);
    if (!p) return NULL;
    if (c) snprintf(p, n, "%s/%s/%s", a, b, c);
    else snprintf(p, n, "%s/%s", a, b);
    return p;
}

/* v with room for one more element of size sz (n used, *cap allocated), or NULL (v untouched) */
static void *grow(void *v, size_t *cap, size_t n, size_t sz) {
    if (n < *cap) return v;
    size_t c = *cap ? 2 * *cap : 16;
    if (c > SIZE_MAX / sz) return NULL;
    void *p = realloc(v, c * sz);
    if (p) *cap = c;
    return p;
}

static int oom(void) { return fputs("unplug: out of memory\n", stderr), -1; }

/* ---- hostile text files ------------------------------------------------- */

typedef struct {
    const char *path;
    char *buf, *p;
    long line;
} tsv;

/* The whole file (at most MAX_INPUT bytes) into *buf, NUL-terminated; -1 (printed) on failure. */
static int read_all(const char *path, char **buf, size_t *len) {
    FILE *f = fopen(path, "rb");
    *buf = NULL;
    if (!f) return fprintf(stderr, "unplug: %s: %s\n", path, strerror(errno)), -1;
    char *b = malloc(MAX_INPUT + 1);
    size_t n = b ? fread(b, 1, MAX_INPUT + 1, f) : 0;
    int err = ferror(f);
    fclose(f);
    if (!b) return oom();
    if (err || n > MAX_INPUT) {
        free(b);
        return fprintf(stderr, "unplug: %s: %s\n", path, err ? "read error" : "larger than the 64 MiB an input may be"), -1;
    }
    b[n] = 0;
    *buf = b;
    *len = n;
    return 0;
}

/* 1 read, 0 no such file, -1 error (printed). */
static int tsv_open(tsv *r, const char *path) {
    memset(r, 0, sizeof *r);
    r->path = path;
    struct stat st;
    if (stat(path, &st) != 0 && errno == ENOENT) return 0;
    size_t len;
    if (read_all(path, &r->buf, &len)) return -1;
    if (memchr(r->buf, 0, len)) {
        fprintf(stderr, "unplug: %s: holds a NUL byte: not a text file\n", path);
        free(r->buf);
        r->buf = NULL;
        return -1;
    }
    r->p = r->buf;
    return 1;
}

/* The next line that is neither blank nor a # comment, split at tabs into
 * f[0..max-1] (in place). Returns its number of fields (all of them, even past
 * max), 0 at the end. */
static int tsv_next(tsv *r, char **f, int max) {
    while (*r->p) {
        char *s = r->p, *e = strchr(s, '\n');
        if (e) { *e = 0; r->p = e + 1; }
        else r->p = s + strlen(s);
        r->line++;
        size_t n = strlen(s);
        if (n && s[n - 1] == '\r') s[--n] = 0;
        if (strspn(s, " \t") == n || s[0] == '#') continue;
        int k = 0;
        for (char *q = s;; k++) {
            char *tab = strchr(q, '\t');
            if (k < max) f[k] = q;
            if (!tab) break;
            *tab = 0;
            q = tab + 1;
        }
        return k + 1;
    }
    return 0;
}

static int tsv_fail(const tsv *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int tsv_fail(const tsv *r, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "unplug: %s:%ld: ", r->path, r->line);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return -1;
}

/* column col of the current line as a finite number in lo..hi (an integer if integer) */
static int tsv_num(const tsv *r, const char *col, const char *s, double lo, double hi, int integer, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end || errno || !isfinite(v) || v < lo || v > hi || (integer && v != floor(v)))
        return tsv_fail(r, "column '%s': expected %s in %g..%g, found '%.40s'", col, integer ? "an integer" : "a number",
                        lo, hi, s);
    *out = v;
    return 0;
}


/* ---- tasks and methods -------------------------------------------------- */

static int task_find(const report *R, const char *name) {
    for (size_t i = 0; i < R->nt; i++)
        if (!strcmp(R->t[i].name, name)) return (int)i;
    return -1;
}

/* the index of task name, added if new; -1 (printed, naming r's line if r) on error */
static int task_index(report *R, const char *name, const tsv *r) {
    int i = task_find(R, name);
    if (i >= 0) return i;
    if (!name[0]) return r ? tsv_fail(r, "empty task name") : -1;
    if (R->nt == MAX_TASKS)
        return r ? tsv_fail(r, "more than %d tasks", MAX_TASKS) : (fprintf(stderr, "unplug: more than %d tasks\n", MAX_TASKS), -1);
    task_rec *t = grow(R->t, &R->cap_t, R->nt, sizeof *t);
    if (!t) return oom();
    R->t = t;
    t += R->nt;
    memset(t, 0, sizeof *t);
    if (!(t->name = strdup(name))) return oom();
    t->full_val = t->tol = t->ex_ratio = t->full = t->exp = t->ratio = t->sp_batch = t->sp_one = NAN;
    t->kept = t->total = -1;
    return (int)R->nt++;
}

static int method_index(report *R, const char *name, const tsv *r) {
    for (int i = 0; i < R->nm; i++)
        if (!strcmp(R->methods[i], name)) return i;
    if (!name[0]) return tsv_fail(r, "empty method name");
    if (R->nm == MAX_METHODS) return tsv_fail(r, "more than %d attribution methods", MAX_METHODS);
    if (!(R->methods[R->nm] = strdup(name))) return oom();
    return R->nm++;
}

/* ---- reading the results directory -------------------------------------- */

/* A TSV column: a name (text), or a number in lo..hi (an integer if integer) */
typedef struct {
    const char *name;
    int text;
    double lo, hi;
    int integer;
} column;

/* add(user, r, f, v): one row, its fields f and, for numeric column i, v[i]; 0 or -1 (printed) */
typedef int (*row_fn)(void *user, const tsv *r, char *const *f, const double *v);

/* Reads the rows of the TSV at path (n <= 8 columns; a first line starting
 * with the first column's name is a header). 1 read, 0 no such file, -1 error. */
static int read_table(const char *path, const column *cols, int n, row_fn add, void *user) {
    tsv r;
    int o = tsv_open(&r, path), rc = 0, k, first = 1;
    if (o <= 0) return o;
    char *f[8], names[160] = "";
    double v[8] = {0};
    for (int i = 0; i < n; i++)
        snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", i ? ", " : "", cols[i].name);
    while (!rc && (k = tsv_next(&r, f, n)) > 0) {
        int header = first && !strcmp(f[0], cols[0].name);
        first = 0;
        if (header) continue;
        if (k != n) {
            rc = tsv_fail(&r, "expected %d tab-separated columns (%s), found %d", n, names, k);
            break;
        }
        for (int i = 0; i < n && !rc; i++)
            if (!cols[i].text) rc = tsv_num(&r, cols[i].name, f[i], cols[i].lo, cols[i].hi, cols[i].integer, &v[i]);
        if (!rc) rc = add(user, &r, f, v);
    }
    free(r.buf);
    return rc ? -1 : 1;
}

static const column sweep_cols[] = {{.name = "task", .text = 1}, {.name = "method", .text = 1},
                                    {.name = "ratio", .lo = 0, .hi = 1}, {.name = "val_metric", .lo = -1e6, .hi = 1e6},
                                    {.name = "report_metric", .lo = -1e6, .hi = 1e6}};

static int add_sweep(void *user, const tsv *r, char *const *f, const double *v) {
    report *R = user;
    sweep_row w = {.ratio = v[2], .val = v[3], .rep = v[4]};
    if ((w.task = task_index(R, f[0], r)) < 0 || (w.method = method_index(R, f[1], r)) < 0) return -1;
    sweep_row *s = grow(R->sw, &R->cap_sw, R->nsw, sizeof *s);
    if (!s) return oom();
    R->sw = s;
    R->sw[R->nsw++] = w;
    return 0;
}

static const column scaling_cols[] = {{.name = "task", .text = 1},
                                      {.name = "batch", .lo = 1, .hi = 1 << 20, .integer = 1},
                                      {.name = "tokens", .lo = 1, .hi = 1 << 20, .integer = 1},
                                      {.name = "full_ms", .lo = 0, .hi = 1e9},
                                      {.name = "expert_ms", .lo = 0, .hi = 1e9},
                                      {.name = "speedup", .lo = 1e-6, .hi = 1e6}};

static int add_scaling(void *user, const tsv *r, char *const *f, const double *v) {
    report *R = user;
    scale_row w = {.batch = (int)v[1], .tokens = (int)v[2], .full_ms = v[3], .expert_ms = v[4], .speedup = v[5]};
    if ((w.task = task_index(R, f[0], r)) < 0) return -1;
    scale_row *s = grow(R->sc, &R->cap_sc, R->nsc, sizeof *s);
    if (!s) return oom();
    R->sc = s;
    R->sc[R->nsc++] = w;
    return 0;
}

static const column curve_cols[] = {{.name = "ratio", .lo = 0, .hi = 1}, {.name = "val_metric", .lo = -1e6, .hi = 1e6},
                                    {.name = "within_tolerance", .lo = 0, .hi = 1, .integer = 1}};

static int add_curve(void *user, const tsv *r, char *const *f, const double *v) {
    task_rec *t = user;
    (void)r;
    (void)f;
    curve_pt *c = grow(t->curve, &t->cap_curve, t->n_curve, sizeof *c);
    if (!c) return oom();
    t->curve = c;
    t->curve[t->n_curve++] = (curve_pt){.ratio = v[0], .metric = v[1], .ok = v[2] > 0};
    return 0;
}

#define NCOLS(c) ((int)(sizeof c / sizeof *c))

/* a number of an expert's metrics, in -1e9..1e9; NAN if absent */

/* An expert file: 0 read (or absent: *e NULL), -1 error. With F non-NULL also
 * its base's FFN width, from its base shape "L x C x F". */
static int read_expert(const char *path, up_expert **e, json_t **info, long *F, char **shape) {
    *e = NULL;
    *info = NULL;
    struct stat st;
    if (stat(path, &st) != 0 && errno == ENOENT) return 0;
    char *js = NULL;
    if (up_expert_load(NULL, path, e) != UP_OK || up_expert_info_json(*e, &js) != UP_OK) {
        fprintf(stderr, "unplug: %s\n", up_errmsg());
        up_expert_free(*e);
        return *e = NULL, -1;
    }
    *info = json_loads(js, 0, NULL);
    up_free(js);
    if (!F) return 0;
    int L = 0, C = 0;
    const char *v = json_string_value(json_object_get(*info, "base_shape"));
    if (!v || sscanf(v, "%d x %d x %ld", &L, &C, F) != 3 || *F < 1) {
        fprintf(stderr, "unplug: %s: metadata 'base_shape': expected \"L x C x F\"\n", path);
        up_expert_free(*e);
        json_decref(*info);
        return *e = NULL, *info = NULL, -1;
    }
    if (shape && !*shape) {
        size_t n = 64;
        if ((*shape = malloc(n))) snprintf(*shape, n, "%d layers x %d, FFN %ld", L, C, *F);
    }
    return 0;
}

/* A JSON file written by --json-out: 1 read (*o), 0 absent, -1 error (printed). */
static int read_json(const char *path, json_t **o) {
    *o = NULL;
    struct stat st;
    if (stat(path, &st) != 0 && errno == ENOENT) return 0;
    char *buf;
    size_t len;
    if (read_all(path, &buf, &len)) return -1;
    json_error_t err;
    *o = json_loadb(buf, len, 0, &err);
    free(buf);
    if (!*o || !json_is_object(*o)) {
        fprintf(stderr, "unplug: %s:%d: not a JSON object: %s\n", path, err.line, *o ? "another JSON value" : err.text);
        json_decref(*o);
        return *o = NULL, -1;
    }
    return 1;
}

/* a number of a JSON object, NAN when absent, null or out of range */
static double jnum(json_t *o, const char *key) {
    json_t *v = json_object_get(o, key);
    double x = json_is_number(v) ? json_number_value(v) : NAN;
    return fabs(x) <= 1e9 ? x : NAN;
}

/* eval.json (`unplug eval --json-out`): the metric of both models and the speed-ups */
static int read_eval(task_rec *t, const char *path) {
    json_t *o;
    int r = read_json(path, &o);
    if (r <= 0) return r;
    const char *metric = json_string_value(json_object_get(o, "metric"));
    json_t *full = json_object_get(o, "full"), *exp = json_object_get(o, "expert"), *tm = json_object_get(o, "timing");
    if (!metric || !json_is_object(full) || !json_is_object(exp) || (tm && !json_is_array(tm))) {
        fprintf(stderr, "unplug: %s: expected eval --json-out's fields metric, full, expert, timing\n", path);
        json_decref(o);
        return -1;
    }
    snprintf(t->metric, sizeof t->metric, "%s", metric);
    t->full = jnum(full, "metric");
    t->exp = jnum(exp, "metric");
    size_t i;
    json_t *x;
    json_array_foreach(tm, i, x) {
        double B = jnum(x, "batch"), T = jnum(x, "tokens"), sp = jnum(x, "speedup");
        if (!(B >= 1 && T >= 1 && B <= 1e6 && T <= 1e6)) continue;
        int one = B == 1;
        snprintf(one ? t->shape_one : t->shape_batch, sizeof t->shape_one, "%d&times;%d", (int)B, (int)T);
        if (sp > 0) *(one ? &t->sp_one : &t->sp_batch) = sp;
    }
    json_decref(o);
    return 0;
}

/* FFN neurons expert e (of a base F wide) keeps in layer l */
static long kept_in(const up_expert *e, int l, long F) {
    int n;
    return up_expert_kept_neurons(e, l, &n) ? n : F;
}

/* every file of task t under R->dir */
static int read_task(report *R, task_rec *t) {
    static const char *const files[] = {"curve.tsv", "expert.expert", "tuned.expert", "eval.json", "localize.json"};
    enum { NF = sizeof files / sizeof *files };
    char *p[NF] = {0};
    json_t *info = NULL, *tinfo = NULL, *loc = NULL;
    up_expert *tuned = NULL;
    int rc = 0;
    for (int i = 0; i < NF && !rc; i++)
        if (!(p[i] = join(R->dir, t->name, files[i]))) rc = oom();
    int o = rc ? -1 : read_table(p[0], curve_cols, NCOLS(curve_cols), add_curve, t);
    t->have_curve = o == 1;
    if (o < 0 || read_expert(p[1], &t->expert, &info, &t->F, &R->model_desc) ||
        read_expert(p[2], &tuned, &tinfo, NULL, NULL) || read_json(p[4], &loc) < 0) {
        rc = -1;
        goto done;
    }
    /* the experts' metadata first, eval.json's numbers over them */
    json_t *m = json_object_get(info, "metrics"), *tm = json_object_get(tinfo, "metrics");
    const char *mn = json_string_value(json_object_get(m ? m : tm, "metric"));
    if (mn) snprintf(t->metric, sizeof t->metric, "%s", mn);
    if (tuned) t->full = jnum(tm, "tuned_report");
    if (t->expert) {
        t->ex_ratio = t->ratio = up_expert_ratio(t->expert);
        t->full_val = jnum(m, "full_val");
        t->exp = jnum(m, "expert_report");
        if (t->exp < 0) t->exp = NAN; /* -1: there was no report split */
        if (jnum(m, "kept_ffn") >= 0 && jnum(m, "total_ffn") >= jnum(m, "kept_ffn")) {
            t->kept = (long)jnum(m, "kept_ffn");
            t->total = (long)jnum(m, "total_ffn");
        }
        if (R->model_F && R->model_F != t->F) {
            fprintf(stderr, "unplug: %s: made for a base with FFN width %ld, --model has %ld\n", p[1], t->F, R->model_F);
            rc = -1;
            goto done;
        }
    }
    if (isnan(t->full_val)) t->full_val = jnum(loc, "full_val");
    t->tol = jnum(loc, "tolerance");
    if (read_eval(t, p[3])) rc = -1;
    if (!(t->tol >= 0)) t->tol = NAN;
done:
    up_expert_free(tuned);
    json_decref(info);
    json_decref(tinfo);
    json_decref(loc);
    for (int i = 0; i < NF; i++) free(p[i]);
    return rc;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* the subdirectories of R->dir holding any per-task file, sorted, added as tasks */
static int scan_dir(report *R) {
    DIR *d = opendir(R->dir);
    if (!d) return fprintf(stderr, "unplug: %s: cannot open the results directory: %s\n", R->dir, strerror(errno)), -1;
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    static const char *const files[] = {"curve.tsv", "expert.expert", "eval.json", "tuned.expert"};
    for (struct dirent *e; !rc && (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        int any = 0;
        for (size_t i = 0; i < sizeof files / sizeof *files && !any; i++) {
            char *p = join(R->dir, e->d_name, files[i]);
            struct stat st;
            if (!p) { rc = oom(); break; }
            any = stat(p, &st) == 0;
            free(p);
        }
        if (!any) continue;
        char **nn = grow(names, &cap, n, sizeof *nn);
        if (!nn) { rc = oom(); break; }
        names = nn;
        if (!(names[n] = strdup(e->d_name))) { rc = oom(); break; }
        n++;
    }
    closedir(d);
    if (n) qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 0; i < n; i++) {
        int k = rc ? -1 : task_index(R, names[i], NULL);
        if (k < 0) rc = -1;
        else R->t[k].has_dir = 1;
        free(names[i]);
    }
    free(names);
    return rc;
}

static void report_free(report *R) {
    for (size_t i = 0; i < R->nt; i++) {
        free(R->t[i].name);
        free(R->t[i].curve);
        up_expert_free(R->t[i].expert);
    }
    for (int i = 0; i < R->nm; i++) free(R->methods[i]);
    free(R->t);
    free(R->sw);
    free(R->sc);
    free(R->model_desc);
    free(R->sweep_path);
    free(R->scaling_path);
}

/* ---- HTML and SVG ------------------------------------------------------- */

/* s as HTML/SVG text (entities escaped, control bytes dropped), cut to max
 * bytes at a UTF-8 boundary with an ellipsis (max 0: whole) */
static void esc_n(FILE *f, const char *s, size_t max) {
    size_t n = strlen(s), cut = n;
    if (max && n > max) {
        cut = max;
        while (cut && ((unsigned char)s[cut] & 0xC0) == 0x80) cut--;
    }
    for (size_t i = 0; i < cut; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '&') fputs("&amp;", f);
        else if (c == '<') fputs("&lt;", f);
        else if (c == '>') fputs("&gt;", f);
        else if (c == '"') fputs("&quot;", f);
        else if (c == '\'') fputs("&#39;", f);
        else if (c >= 0x20 && c != 0x7F) fputc(c, f);
    }
    if (cut < n) fputs("&hellip;", f);
}
static void esc(FILE *f, const char *s) { esc_n(f, s, 0); }

/* printf into escaped text */
static void escf(FILE *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void escf(FILE *f, const char *fmt, ...) {
    va_list ap, aq;
    va_start(ap, fmt);
    va_copy(aq, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    char *s = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (s) {
        vsnprintf(s, (size_t)n + 1, fmt, aq);
        esc(f, s);
        free(s);
    }
    va_end(aq);
    va_end(ap);
}

static void nodata(FILE *f, const char *what, const char *path) {
    fputs("<p class=\"nodata\">no data (", f);
    esc(f, path);
    fprintf(f, " %s)</p>\n", what);
}

/* one axis: data range lo..hi on pixels p0..p1, linear with a 1-2-5 step or log2 */
typedef struct { double lo, hi, step, p0, p1; int lg; } scale;

static void scale_fit(scale *s, double lo, double hi, int lg, double p0, double p1) {
    s->lg = lg;
    s->p0 = p0;
    s->p1 = p1;
    if (!(lo <= hi)) { lo = lg ? 1 : 0; hi = lg ? 2 : 1; } /* no data */
    if (lg) {
        s->lo = exp2(floor(log2(lo)));
        s->hi = exp2(ceil(log2(hi)));
        if (s->hi <= s->lo) s->hi = 2 * s->lo;
        s->step = 2;
        return;
    }
    if (hi - lo <= 1e-9 * (fabs(lo) + fabs(hi)) || hi - lo < 1e-12) {
        double d = lo ? 0.05 * fabs(lo) : 1;
        lo -= d;
        hi += d;
    }
    double raw = (hi - lo) / 5, mag = pow(10, floor(log10(raw))), r = raw / mag;
    s->step = mag * (r < 1.5 ? 1 : r < 3.5 ? 2 : r < 7.5 ? 5 : 10);
    s->lo = floor(lo / s->step) * s->step;
    s->hi = ceil(hi / s->step) * s->step;
}

static double map(const scale *s, double v) {
    double a = s->lg ? log2(v) : v, lo = s->lg ? log2(s->lo) : s->lo, hi = s->lg ? log2(s->hi) : s->hi;
    return s->p0 + (a - lo) / (hi - lo) * (s->p1 - s->p0);
}

/* decimals that tell the ticks of s apart */
static int decimals(const scale *s) {
    if (s->lg || s->step >= 1) return 0;
    int d = (int)ceil(-log10(s->step) - 1e-9);
    return d > 6 ? 6 : d;
}

typedef struct {
    FILE *f;
    scale x, y;
    int W, H;
} plot;

enum { ML = 58, MR = 16, MT = 30, MB = 44 }; /* margins around the plot area */
typedef enum { X_LINEAR, X_LOG2, X_NONE } x_kind; /* X_NONE: categorical, the caller labels x */

/* An SVG of W x H: title, frame, grid, ticks and axis labels for x in
 * xlo..xhi and y in ylo..yhi (fitted to nice ticks). The title is escaped. */
static void plot_open(plot *p, FILE *f, int W, int H, const char *title, const char *xlabel, const char *ylabel,
                      double xlo, double xhi, x_kind xk, double ylo, double yhi) {
    p->f = f;
    p->W = W;
    p->H = H;
    scale_fit(&p->x, xlo, xhi, xk == X_LOG2, ML, W - MR);
    scale_fit(&p->y, ylo, yhi, 0, H - MB, MT);
    fprintf(f, "<svg width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\">\n", W, H, W, H);
    fprintf(f, "<text class=\"pt\" x=\"%d\" y=\"18\">", ML);
    esc_n(f, title, 80);
    fputs("</text>\n", f);
    fprintf(f, "<rect class=\"frame\" x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\"/>\n", ML, MT, W - ML - MR, H - MT - MB);
    int dx = decimals(&p->x), dy = decimals(&p->y), n = 0;
    /* log2: every power of two, labelled so that at most ~10 labels show */
    int every = p->x.lg ? 1 + (int)(log2(p->x.hi / p->x.lo) / 10) : 1;
    for (double v = p->x.lo; xk != X_NONE && v <= p->x.hi * (1 + 1e-9) + 1e-12 && n < 64; n++) {
        double px = map(&p->x, v);
        fprintf(f, "<line class=\"grid\" x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\"/>", px, MT, px, H - MB + 4);
        if (n % every == 0)
            fprintf(f, "<text class=\"tick\" x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%.*f</text>\n", px, H - MB + 16, dx, v);
        v = p->x.lg ? v * 2 : p->x.lo + (n + 1) * p->x.step;
    }
    n = 0;
    for (double v = p->y.lo; v <= p->y.hi + 1e-9 * fabs(p->y.hi) + 1e-12 && n < 64; n++) {
        double py = map(&p->y, v);
        fprintf(f, "<line class=\"grid\" x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\"/>", ML - 4, py, W - MR, py);
        fprintf(f, "<text class=\"tick\" x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%.*f</text>\n", ML - 7, py + 4, dy, v);
        v = p->y.lo + (n + 1) * p->y.step;
    }
    fprintf(f, "<text class=\"al\" x=\"%d\" y=\"%d\" text-anchor=\"middle\">", (ML + W - MR) / 2, H - 8);
    esc(f, xlabel);
    fprintf(f, "</text>\n<text class=\"al\" transform=\"translate(14 %d) rotate(-90)\" text-anchor=\"middle\">", (MT + H - MB) / 2);
    esc(f, ylabel);
    fputs("</text>\n", f);
}

static void plot_close(plot *p) { fputs("</svg>\n", p->f); }

static void polyline(const plot *p, const double *x, const double *y, size_t n, const char *stroke, const char *dasharray,
                     double width) {
    fprintf(p->f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"%.1f\" stroke-dasharray=\"%s\" points=\"", stroke,
            width, dasharray);
    for (size_t i = 0; i < n; i++) fprintf(p->f, "%s%.1f,%.1f", i ? " " : "", map(&p->x, x[i]), map(&p->y, y[i]));
    fputs("\"/>\n", p->f);
}

/* a dot at (x, y) with a tooltip (printf, escaped) */
static void dot(const plot *p, double x, double y, double r, const char *fill, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
static void dot(const plot *p, double x, double y, double r, const char *fill, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char tip[512];
    vsnprintf(tip, sizeof tip, fmt, ap);
    va_end(ap);
    fprintf(p->f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%.1f\" fill=\"%s\" stroke=\"#fff\" stroke-width=\"1\"><title>",
            map(&p->x, x), map(&p->y, y), r, fill);
    esc(p->f, tip);
    fputs("</title></circle>\n", p->f);
}

enum { LABEL_BELOW = 1, LABEL_LEFT = 2 };

/* a horizontal reference line at y across the plot, labelled at its right end
 * (or left: LABEL_LEFT), above the line (or below: LABEL_BELOW) */
static void hline(const plot *p, double y, const char *dasharray, const char *label, int where) {
    double py = map(&p->y, y);
    int below = where & LABEL_BELOW, left = where & LABEL_LEFT;
    fprintf(p->f, "<line class=\"ref\" x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke-dasharray=\"%s\"/>", ML, py,
            p->W - MR, py, dasharray);
    double ly = below ? py + 11 : py - 3; /* kept inside the frame */
    if (ly > p->H - MB - 3) ly = py - 3;
    if (ly < MT + 10) ly = py + 11;
    fprintf(p->f, "<text class=\"rl\" x=\"%d\" y=\"%.1f\" text-anchor=\"%s\">", left ? ML + 4 : p->W - MR - 3, ly,
            left ? "start" : "end");
    esc(p->f, label);
    fputs("</text>\n", p->f);
}

typedef enum { SWATCH_DOT, SWATCH_LINE_DOT, SWATCH_LINE } swatch;

/* a legend entry: its swatch, then the label */
static void legend_item(FILE *f, const char *stroke, const char *dasharray, swatch sw, const char *label) {
    fputs("<span class=\"li\"><svg width=\"26\" height=\"12\" viewBox=\"0 0 26 12\">", f);
    if (sw != SWATCH_DOT) fprintf(f, "<line x1=\"1\" y1=\"6\" x2=\"25\" y2=\"6\" stroke=\"%s\" stroke-width=\"2\" stroke-dasharray=\"%s\"/>", stroke, dasharray);
    if (sw != SWATCH_LINE) fprintf(f, "<circle cx=\"13\" cy=\"6\" r=\"4\" fill=\"%s\"/>", stroke);
    fputs("</svg>", f);
    esc_n(f, label, LABEL_BYTES);
    fputs("</span>\n", f);
}

/* Opens a figure's section. With why non-NULL there is nothing to draw: the
 * section says "no data (path why)" and is closed, and the return is 0. */
static int fig_open(FILE *f, const char *id, const char *title, const char *caption, const char *why, const char *path) {
    fprintf(f, "<section id=\"%s\"><h2>", id);
    esc(f, title);
    fputs("</h2>\n<p class=\"cap\">", f);
    esc(f, caption);
    fputs("</p>\n", f);
    if (!why) return 1;
    nodata(f, why, path);
    fputs("</section>\n", f);
    return 0;
}

/* why a file's plot is empty: NULL if it is not */
static const char *absent(int have, size_t rows) { return !have ? "missing" : !rows ? "has no rows" : NULL; }

static int n_experts(const report *R) {
    int n = 0;
    for (size_t i = 0; i < R->nt; i++) n += R->t[i].expert != NULL;
    return n;
}

#define EXPERTS_PATH "TASK/expert.expert under the results directory"

/* lo..hi widened by 4% each side, so no point sits on the frame */
static void pad(double *lo, double *hi) {
    double d = 0.04 * (*hi - *lo);
    *lo -= d;
    *hi += d;
}

/* the task's metric name, for axis labels */
static const char *metric_of(const task_rec *t) { return t->metric[0] ? t->metric : "metric"; }

/* ---- the sections ------------------------------------------------------- */

static void put_num(FILE *f, double v, const char *fmt) {
    if (isnan(v)) fputs("<td class=\"na\">&mdash;</td>", f);
    else {
        fputs("<td>", f);
        fprintf(f, fmt, v);
        fputs("</td>", f);
    }
}

static void section_summary(FILE *f, const report *R) {
    if (!fig_open(f, "summary", "Summary",
                  "Per task: the report-split metric of the tuned model (all FFN neurons) and of the pruned expert, "
                  "the share of FFN neurons pruned, and the measured speed-up of the expert's forward (from "
                  "TASK/eval.json; else from the expert files' metadata).",
                  R->nt ? NULL : "missing: no task directories, sweep.tsv or scaling.tsv", R->dir))
        return;
    fputs("<table><tr><th>task</th><th>metric</th><th>tuned full</th><th>expert</th><th>&Delta;</th><th>FFN pruned</th>"
          "<th>neurons kept</th><th>speed-up (batch)</th><th>speed-up (1 sequence)</th></tr>\n", f);
    for (size_t i = 0; i < R->nt; i++) {
        const task_rec *t = &R->t[i];
        fputs("<tr><td class=\"tn\">", f);
        esc_n(f, t->name, LABEL_BYTES);
        fputs("</td><td>", f);
        esc(f, t->metric[0] ? t->metric : "");
        fputs("</td>", f);
        put_num(f, t->full, "%.2f");
        put_num(f, t->exp, "%.2f");
        put_num(f, t->exp - t->full, "%+.2f");
        put_num(f, 100 * t->ratio, "%.1f%%");
        if (t->kept >= 0 && t->total > 0) fprintf(f, "<td>%ld of %ld</td>", t->kept, t->total);
        else fputs("<td class=\"na\">&mdash;</td>", f);
        const double sp[2] = {t->sp_batch, t->sp_one};
        const char *shape[2] = {t->shape_batch, t->shape_one};
        for (int k = 0; k < 2; k++)
            if (isnan(sp[k])) fputs("<td class=\"na\">&mdash;</td>", f);
            else fprintf(f, "<td>%.2f&times; <span class=\"dim\">(%s)</span></td>", sp[k], shape[k]);
        fputs("</tr>\n", f);
    }
    fputs("</table>\n</section>\n", f);
}

enum { PW = 360, PH = 250 }; /* one small-multiple panel */

static void section_curve(FILE *f, const report *R) {
    fig_open(f, "search", "Validation metric vs FFN pruning ratio (the ratio search)",
             "Per task (TASK/curve.tsv): every pruning ratio the binary search tried, in search order (numbered, "
             "joined by the grey path), green if its validation metric stayed within the tolerance of the unpruned "
             "tuned model, red if not. Dashed: the unpruned validation metric; dotted: the tolerance bound; "
             "the vertical line marks the expert's ratio.", NULL, NULL);
    fputs("<div class=\"legend\">", f);
    legend_item(f, OK_FILL, "none", SWATCH_DOT, "within tolerance");
    legend_item(f, LOW_FILL, "none", SWATCH_DOT, "too low");
    legend_item(f, "#555", "5 3", SWATCH_LINE, "unpruned (validation)");
    legend_item(f, "#555", "2 2", SWATCH_LINE, "tolerance bound");
    fputs("</div>\n<div class=\"panels\">\n", f);
    int any = 0;
    for (size_t i = 0; i < R->nt; i++) {
        const task_rec *t = &R->t[i];
        if (!t->has_dir) continue;
        any = 1;
        if (absent(t->have_curve, t->n_curve)) {
            char *p = join(R->dir, t->name, "curve.tsv");
            fputs("<div class=\"empty\">", f);
            esc_n(f, t->name, LABEL_BYTES);
            nodata(f, absent(t->have_curve, t->n_curve), p ? p : "curve.tsv");
            fputs("</div>\n", f);
            free(p);
            continue;
        }
        double ylo = INFINITY, yhi = -INFINITY;
        for (size_t k = 0; k < t->n_curve; k++) {
            ylo = fmin(ylo, t->curve[k].metric);
            yhi = fmax(yhi, t->curve[k].metric);
        }
        if (isfinite(t->full_val)) { ylo = fmin(ylo, t->full_val); yhi = fmax(yhi, t->full_val); }
        if (isfinite(t->full_val) && isfinite(t->tol)) ylo = fmin(ylo, t->full_val - t->tol);
        pad(&ylo, &yhi);
        char title[LABEL_BYTES + 48];
        snprintf(title, sizeof title, "%.*s", LABEL_BYTES, t->name);
        if (isfinite(t->ex_ratio))
            snprintf(title + strlen(title), sizeof title - strlen(title), " (expert: ratio %.3f)", t->ex_ratio);
        plot p; /* ratios are 0..1: the same x axis in every panel */
        plot_open(&p, f, PW, PH, title, "FFN pruning ratio", metric_of(t), 0, 1, X_LINEAR, ylo, yhi);
        if (isfinite(t->ex_ratio)) {
            double px = map(&p.x, t->ex_ratio);
            fprintf(f, "<line class=\"ref\" x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\"/>\n", px, MT, px, PH - MB);
        }
        char lab[64];
        if (isfinite(t->full_val)) {
            snprintf(lab, sizeof lab, "unpruned %.2f", t->full_val);
            hline(&p, t->full_val, "5 3", lab, LABEL_LEFT);
            if (isfinite(t->tol)) {
                snprintf(lab, sizeof lab, "tolerance −%.2f", t->tol);
                hline(&p, t->full_val - t->tol, "2 2", lab, LABEL_LEFT | LABEL_BELOW);
            }
        }
        double *x = malloc(t->n_curve * sizeof *x), *y = malloc(t->n_curve * sizeof *y);
        if (x && y) {
            for (size_t k = 0; k < t->n_curve; k++) { x[k] = t->curve[k].ratio; y[k] = t->curve[k].metric; }
            polyline(&p, x, y, t->n_curve, "#bbb", "none", 1);
        }
        free(x);
        free(y);
        for (size_t k = 0; k < t->n_curve; k++) {
            const curve_pt *c = &t->curve[k];
            dot(&p, c->ratio, c->metric, 4.5, c->ok ? OK_FILL : LOW_FILL, "step %zu: ratio %.4f, validation %.2f (%s)", k + 1,
                c->ratio, c->metric, c->ok ? "within tolerance" : "too low");
            fprintf(f, "<text class=\"step\" x=\"%.1f\" y=\"%.1f\">%zu</text>\n", map(&p.x, c->ratio) + 5,
                    map(&p.y, c->metric) + (k % 2 ? 13 : -6), k + 1);
        }
        plot_close(&p);
    }
    if (!any) nodata(f, "missing", "TASK/curve.tsv under the results directory");
    fputs("</div>\n</section>\n", f);
}

static int cmp_sweep(const void *a, const void *b) {
    const sweep_row *x = a, *y = b;
    if (x->task != y->task) return x->task - y->task;
    if (x->method != y->method) return x->method - y->method;
    return (x->ratio > y->ratio) - (x->ratio < y->ratio);
}

static void section_sweep(FILE *f, report *R, const char *path) {
    if (!fig_open(f, "methods", "Report-split metric vs FFN pruning ratio, per attribution method",
                  "Per task (sweep.tsv): the report-split metric after pruning a fixed share of FFN neurons, ranked by "
                  "each attribution method (no re-tuning). Dashed: the tuned model with every neuron kept.",
                  absent(R->have_sweep, R->nsw), path))
        return;
    fputs("<div class=\"legend\">", f);
    for (int m = 0; m < R->nm; m++) legend_item(f, colour(m), dash(m), SWATCH_LINE_DOT, R->methods[m]);
    legend_item(f, "#555", "5 3", SWATCH_LINE, "unpruned (report split)");
    fputs("</div>\n<div class=\"panels\">\n", f);
    qsort(R->sw, R->nsw, sizeof *R->sw, cmp_sweep);
    double *x = malloc(R->nsw * sizeof *x), *y = malloc(R->nsw * sizeof *y);
    for (size_t i = 0; i < R->nsw && x && y;) {
        size_t j = i;
        const task_rec *t = &R->t[R->sw[i].task];
        double ylo = INFINITY, yhi = -INFINITY, xlo = INFINITY, xhi = -INFINITY;
        for (; j < R->nsw && R->sw[j].task == R->sw[i].task; j++) {
            ylo = fmin(ylo, R->sw[j].rep);
            yhi = fmax(yhi, R->sw[j].rep);
            xlo = fmin(xlo, R->sw[j].ratio);
            xhi = fmax(xhi, R->sw[j].ratio);
        }
        if (isfinite(t->full)) { ylo = fmin(ylo, t->full); yhi = fmax(yhi, t->full); }
        pad(&ylo, &yhi);
        char ylab[64];
        snprintf(ylab, sizeof ylab, "report %s", metric_of(t));
        plot p;
        plot_open(&p, f, PW, PH, t->name, "FFN pruning ratio", ylab, fmax(0, xlo - 0.05), fmin(1, xhi + 0.05), X_LINEAR, ylo, yhi);
        if (isfinite(t->full)) {
            char lab[48];
            snprintf(lab, sizeof lab, "unpruned %.2f", t->full);
            hline(&p, t->full, "5 3", lab, 0);
        }
        for (size_t a = i; a < j;) { /* one series per method */
            size_t b = a, n = 0;
            for (; b < j && R->sw[b].method == R->sw[a].method; b++, n++) { x[n] = R->sw[b].ratio; y[n] = R->sw[b].rep; }
            int m = R->sw[a].method;
            polyline(&p, x, y, n, colour(m), dash(m), 2);
            for (size_t k = a; k < b; k++)
                dot(&p, R->sw[k].ratio, R->sw[k].rep, 3.5, colour(m), "%.40s, ratio %.2f: report %.2f, validation %.2f",
                    R->methods[m], R->sw[k].ratio, R->sw[k].rep, R->sw[k].val);
            a = b;
        }
        plot_close(&p);
        i = j;
    }
    if (!x || !y) oom();
    free(x);
    free(y);
    fputs("</div>\n</section>\n", f);
}

static void section_kept(FILE *f, const report *R) {
    if (!fig_open(f, "kept", "Kept FFN neurons per layer",
                  "Per layer, the FFN neurons each task's expert keeps (TASK/expert.expert); the dashed line is the "
                  "full FFN width.", n_experts(R) ? NULL : "missing", EXPERTS_PATH))
        return;
    int L = 0, n = 0;
    long F = 0, top = 0;
    for (size_t i = 0; i < R->nt; i++) {
        const up_expert *e = R->t[i].expert;
        if (!e) continue;
        n++;
        if (up_expert_layers(e) > L) L = up_expert_layers(e);
        if (R->t[i].F > F) F = R->t[i].F;
        for (int l = 0; l < up_expert_layers(e); l++)
            if (kept_in(e, l, R->t[i].F) > top) top = kept_in(e, l, R->t[i].F);
    }
    fputs("<div class=\"legend\">", f);
    for (size_t i = 0; i < R->nt; i++)
        if (R->t[i].expert) legend_item(f, colour((int)i), "none", SWATCH_DOT, R->t[i].name);
    fputs("</div>\n", f);
    int W = 1080, H = 320;
    plot p;
    plot_open(&p, f, W, H, "", "layer", "kept FFN neurons", 0, 1, X_NONE, 0, (double)(F > top ? F : top));
    /* categorical x: the plot's width in L groups of n bars */
    double gw = (double)(W - ML - MR) / L, bw = gw * 0.8 / n;
    for (int l = 0; l < L; l++) {
        double gx = ML + l * gw + gw * 0.1;
        fprintf(f, "<text class=\"tick\" x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%d</text>\n", ML + (l + 0.5) * gw,
                H - MB + 16, l);
        int k = 0;
        for (size_t i = 0; i < R->nt; i++) {
            const task_rec *t = &R->t[i];
            if (!t->expert) continue;
            if (l < up_expert_layers(t->expert)) {
                long v = kept_in(t->expert, l, t->F);
                double y0 = map(&p.y, 0), y1 = map(&p.y, (double)v);
                fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\"><title>", gx + k * bw, y1,
                        bw > 1.5 ? bw - 1 : bw, y0 - y1, colour((int)i));
                escf(f, "%.40s, layer %d: %ld of %ld neurons kept", t->name, l, v, t->F);
                fputs("</title></rect>\n", f);
                if (bw >= 24)
                    fprintf(f, "<text class=\"bv\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%ld</text>\n",
                            gx + (k + 0.5) * bw, y1 - 3, v);
            }
            k++;
        }
    }
    char lab[48];
    snprintf(lab, sizeof lab, "FFN width %ld", F);
    hline(&p, (double)F, "5 3", lab, LABEL_BELOW);
    plot_close(&p);
    fputs("</section>\n", f);
}

/* |A & B| of two sorted neuron lists; NULL = all F */
static long overlap(const int32_t *a, int na, const int32_t *b, int nb) {
    long n = 0;
    for (int i = 0, j = 0; i < na && j < nb;) {
        if (a[i] < b[j]) i++;
        else if (a[i] > b[j]) j++;
        else { n++; i++; j++; }
    }
    return n;
}

/* Jaccard index of the (layer, neuron) pairs two experts keep; NAN if their bases differ in shape */
static double jaccard(const task_rec *a, const task_rec *b) {
    const up_expert *x = a->expert, *y = b->expert;
    if (up_expert_layers(x) != up_expert_layers(y) || a->F != b->F) return NAN;
    long inter = 0, na = 0, nb = 0;
    for (int l = 0; l < up_expert_layers(x); l++) {
        int nx, ny;
        const int32_t *kx = up_expert_kept_neurons(x, l, &nx), *ky = up_expert_kept_neurons(y, l, &ny);
        long ka = kx ? nx : a->F, kb = ky ? ny : b->F;
        na += ka;
        nb += kb;
        if (!kx) inter += kb;
        else if (!ky) inter += ka;
        else inter += overlap(kx, nx, ky, ny);
    }
    return na + nb - inter > 0 ? (double)inter / (double)(na + nb - inter) : NAN;
}

static void section_overlap(FILE *f, const report *R) {
    if (!fig_open(f, "overlap", "Overlap of kept neurons between tasks (Jaccard)",
                  "For each pair of experts, |A ∩ B| / |A ∪ B| of the (layer, neuron) pairs they keep: 1 = the same "
                  "neurons, 0 = disjoint; — where the two were made for bases of different shapes.",
                  n_experts(R) ? NULL : "missing", EXPERTS_PATH))
        return;
    int idx[MAX_TASKS], n = 0;
    size_t longest = 0;
    for (size_t i = 0; i < R->nt; i++)
        if (R->t[i].expert) {
            idx[n++] = (int)i;
            size_t len = strlen(R->t[i].name);
            if (len > longest) longest = len;
        }
    int cell = 64, lw = 16 + 7 * (int)(longest < LABEL_BYTES / 2 ? longest : LABEL_BYTES / 2), top = 28;
    int W = lw + n * cell + 10, H = top + n * cell + 10;
    fprintf(f, "<svg width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\">\n", W, H, W, H);
    for (int c = 0; c < n; c++) {
        fprintf(f, "<text class=\"tick\" x=\"%d\" y=\"%d\" text-anchor=\"middle\">", lw + c * cell + cell / 2, top - 8);
        esc_n(f, R->t[idx[c]].name, cell / 7);
        fputs("</text>\n", f);
    }
    for (int r = 0; r < n; r++) {
        fprintf(f, "<text class=\"tick\" x=\"%d\" y=\"%d\" text-anchor=\"end\">", lw - 8, top + r * cell + cell / 2 + 4);
        esc_n(f, R->t[idx[r]].name, LABEL_BYTES / 2);
        fputs("</text>\n", f);
        for (int c = 0; c < n; c++) {
            double j = jaccard(&R->t[idx[r]], &R->t[idx[c]]);
            /* white -> dark blue */
            double s = isnan(j) ? 0 : j;
            int rr = (int)(247 - s * (247 - 8)), gg = (int)(251 - s * (251 - 48)), bb = (int)(255 - s * (255 - 107));
            int x = lw + c * cell, y = top + r * cell;
            fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"#%02x%02x%02x\" stroke=\"#fff\"><title>", x, y,
                    cell, cell, rr, gg, bb);
            escf(f, "%.40s vs %.40s: ", R->t[idx[r]].name, R->t[idx[c]].name);
            if (isnan(j)) fputs("bases of different shapes", f);
            else fprintf(f, "Jaccard %.3f", j);
            fprintf(f, "</title></rect>\n<text class=\"cv%s\" x=\"%d\" y=\"%d\" text-anchor=\"middle\">",
                    s > 0.55 ? " on-dark" : "", x + cell / 2, y + cell / 2 + 5);
            if (isnan(j)) fputs("&mdash;", f);
            else fprintf(f, "%.2f", j);
            fputs("</text>\n", f);
        }
    }
    fputs("</svg>\n</section>\n", f);
}

/* the most frequent value of v (n > 0, sorted) */
static int mode(const int *v, size_t n) {
    int best = v[0];
    size_t run = 0, best_run = 0;
    for (size_t i = 0; i < n; i++) {
        run = i && v[i] == v[i - 1] ? run + 1 : 1;
        if (run > best_run) { best_run = run; best = v[i]; }
    }
    return best;
}

static int cmp_int(const void *a, const void *b) { return (*(const int *)a > *(const int *)b) - (*(const int *)a < *(const int *)b); }

/* by task, then batch, then tokens */
static int cmp_scale(const void *a, const void *b) {
    const scale_row *x = a, *y = b;
    if (x->task != y->task) return x->task - y->task;
    if (x->batch != y->batch) return x->batch - y->batch;
    return x->tokens - y->tokens;
}

/* Speed-up vs the batch size (vary_batch) at the most common token count, or
 * vs the token count at the most common batch size; rows sorted by cmp_scale. */
static void scaling_plot(FILE *f, const report *R, const scale_row *rows, size_t n, int vary_batch) {
    int *keys = malloc(n * sizeof *keys);
    double *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
    const scale_row **sel = malloc(n * sizeof *sel);
    if (!keys || !x || !y || !sel) {
        oom();
        goto done;
    }
    for (size_t i = 0; i < n; i++) keys[i] = vary_batch ? rows[i].tokens : rows[i].batch;
    qsort(keys, n, sizeof *keys, cmp_int);
    int fixed = mode(keys, n);
    double xlo = INFINITY, xhi = -INFINITY, ylo = 1, yhi = 1;
    size_t m = 0;
    for (size_t i = 0; i < n; i++) /* the rows at the fixed value, by task, then the varied one */
        if ((vary_batch ? rows[i].tokens : rows[i].batch) == fixed) {
            double v = vary_batch ? rows[i].batch : rows[i].tokens;
            xlo = fmin(xlo, v);
            xhi = fmax(xhi, v);
            ylo = fmin(ylo, rows[i].speedup);
            yhi = fmax(yhi, rows[i].speedup);
            sel[m++] = &rows[i];
        }
    char title[64];
    snprintf(title, sizeof title, vary_batch ? "speed-up vs batch size (%d tokens)" : "speed-up vs token count (batch %d)", fixed);
    plot p;
    plot_open(&p, f, 530, 320, title, vary_batch ? "batch size (sequences)" : "tokens per sequence", "speed-up (full / expert)",
              xlo, xhi, X_LOG2, ylo - 0.04 * (yhi - ylo), yhi + 0.04 * (yhi - ylo));
    hline(&p, 1, "5 3", "1\u00d7 (no gain)", LABEL_BELOW);
    for (size_t i = 0; i < m;) {
        size_t j = i, k = 0;
        for (; j < m && sel[j]->task == sel[i]->task; j++, k++) {
            x[k] = vary_batch ? sel[j]->batch : sel[j]->tokens;
            y[k] = sel[j]->speedup;
        }
        int c = sel[i]->task;
        polyline(&p, x, y, k, colour(c), dash(c), 2);
        for (size_t q = i; q < j; q++)
            dot(&p, vary_batch ? sel[q]->batch : sel[q]->tokens, sel[q]->speedup, 3.5, colour(c),
                "%.40s, batch %d x %d tokens: full %.3f ms, expert %.3f ms, speed-up %.2fx", R->t[c].name, sel[q]->batch,
                sel[q]->tokens, sel[q]->full_ms, sel[q]->expert_ms, sel[q]->speedup);
        i = j;
    }
    plot_close(&p);
done:
    free(keys);
    free(x);
    free(y);
    free(sel);
}

static void section_scaling(FILE *f, report *R, const char *path) {
    if (!fig_open(f, "scaling", "Speed-up of the expert vs batch size and token count",
                  "Per task (scaling.tsv, bench/scaling.sh): median forward time of the tuned model with every FFN "
                  "neuron over that of its pruned expert, on random token ids, as the batch grows at a fixed length "
                  "and as the length grows at a fixed batch.",
                  absent(R->have_scaling, R->nsc), path))
        return;
    char seen[MAX_TASKS] = {0};
    for (size_t k = 0; k < R->nsc; k++) seen[R->sc[k].task] = 1;
    fputs("<div class=\"legend\">", f);
    for (size_t i = 0; i < R->nt; i++)
        if (seen[i]) legend_item(f, colour((int)i), dash((int)i), SWATCH_LINE_DOT, R->t[i].name);
    fputs("</div>\n<div class=\"panels\">\n", f);
    qsort(R->sc, R->nsc, sizeof *R->sc, cmp_scale);
    scaling_plot(f, R, R->sc, R->nsc, 1);
    scaling_plot(f, R, R->sc, R->nsc, 0);
    fputs("</div>\n</section>\n", f);
}

static const char *css =
    "body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;color:#222;max-width:1120px;"
    "margin:24px auto;padding:0 16px}\n"
    "h1{font-size:24px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 4px;border-bottom:1px solid #ddd;padding-bottom:3px}\n"
    ".sub,.cap{color:#555;margin:2px 0 8px}.cap{max-width:900px}\n"
    "table{border-collapse:collapse;font-variant-numeric:tabular-nums}\n"
    "th,td{padding:4px 10px;border-bottom:1px solid #e4e4e4;text-align:right}th{background:#f4f4f4}\n"
    "td.tn,th:first-child,td:nth-child(2){text-align:left}.na,.dim{color:#999}\n"
    ".panels{display:flex;flex-wrap:wrap;gap:6px 12px}\n"
    ".legend{margin:4px 0 8px}.li{display:inline-block;margin-right:16px;white-space:nowrap}"
    ".li svg{vertical-align:middle;margin-right:4px}\n"
    ".nodata{color:#a33;font-style:italic}\n"
    ".empty{width:340px;height:80px;padding:8px;border:1px dashed #ccc}\n"
    "svg text{font-family:system-ui,Helvetica,Arial,sans-serif;fill:#333}\n"
    ".pt{font-size:13px;font-weight:600}.tick{font-size:11px}.al{font-size:12px}\n"
    ".rl{font-size:10px;fill:#555}.step{font-size:9px;fill:#666}.bv{font-size:10px}.cv{font-size:13px}.on-dark{fill:#fff}\n"
    ".rl,.step{paint-order:stroke;stroke:#fff;stroke-width:3px;stroke-linejoin:round}\n"
    ".frame{fill:none;stroke:#888}.grid{stroke:#eee}.ref{stroke:#555;stroke-width:1}\n";

static int write_report(report *R, const char *out) {
    size_t n = strlen(out) + 5;
    char *tmp = malloc(n);
    FILE *f = NULL;
    int rc = 0;
    if (!tmp) rc = oom();
    else {
        snprintf(tmp, n, "%s.tmp", out);
        if (!(f = fopen(tmp, "w"))) rc = (fprintf(stderr, "unplug: %s: cannot write: %s\n", tmp, strerror(errno)), -1);
    }
    if (!rc) {
        fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>unplug report: ", f);
        esc(f, R->dir);
        fprintf(f, "</title>\n<style>\n%s</style>\n</head>\n<body>\n<h1>unplug report</h1>\n<p class=\"sub\">results: ", css);
        esc(f, R->dir);
        if (R->model_desc) {
            fputs(" &middot; base model: ", f);
            esc(f, R->model_desc);
        }
        fprintf(f, " &middot; %zu task%s &middot; unplug %s</p>\n", R->nt, R->nt == 1 ? "" : "s", UP_VERSION);
        section_summary(f, R);
        section_curve(f, R);
        section_sweep(f, R, R->sweep_path);
        section_kept(f, R);
        section_overlap(f, R);
        section_scaling(f, R, R->scaling_path);
        fputs("</body>\n</html>\n", f);
        if (ferror(f)) rc = -1;
        if (fclose(f) != 0) rc = -1;
        if (rc) fprintf(stderr, "unplug: %s: write failed\n", tmp);
        else if (rename(tmp, out) != 0) rc = (fprintf(stderr, "unplug: %s: cannot rename to %s: %s\n", tmp, out, strerror(errno)), -1);
        if (rc) remove(tmp);
    }
    free(tmp);
    return rc;
}

/* --model DIR: the base's shape for the header, its FFN width checked against the experts' */
static int read_model(report *R, const char *model) {
    up_config c;
    char *path = join(model, "config.json", NULL);
    int rc = 0;
    if (!path) return oom();
    if (up_config_load(path, &c) != UP_OK) rc = (fprintf(stderr, "unplug: --model: %s\n", up_errmsg()), -1);
    else if (!(R->model_desc = malloc(160))) rc = oom();
    else {
        snprintf(R->model_desc, 160, "%.80s, %lld layers x %lld, FFN %lld", model, (long long)c.num_hidden_layers,
                 (long long)c.hidden_size, (long long)c.intermediate_size);
        R->model_F = (long)c.intermediate_size;
    }
    free(path);
    return rc;
}

static const char *report_help =
    "usage: unplug report --results DIR [--out FILE.html] [--model DIR]\n"
    "Writes one self-contained HTML file (inline CSS and SVG: no scripts, nothing\n"
    "fetched) with a summary table and plots of the measured results in DIR, the\n"
    "layout bench/tasks.sh and bench/scaling.sh write:\n"
    "  DIR/TASK/eval.json       the summary: tuned and expert metric, speed-ups (unplug eval --json-out)\n"
    "  DIR/TASK/localize.json   unpruned validation metric, search tolerance (unplug localize --json-out)\n"
    "  DIR/TASK/curve.tsv       validation metric vs FFN pruning ratio in the search\n"
    "  DIR/sweep.tsv            metric vs pruning ratio per attribution method\n"
    "  DIR/TASK/expert.expert   kept neurons per layer; their overlap between tasks\n"
    "  DIR/scaling.tsv          expert speed-up vs batch size and token count\n"
    "A missing file leaves its plot saying so; a malformed line is an error naming\n"
    "file:line. --out defaults to DIR/report.html. --model DIR names the base model\n"
    "(its config.json gives the shape shown; else the experts' base_shape).\n";

int cmd_report(const args *a) {
    if (a->help) return fputs(report_help, stdout), 0;
    const char *dir = a->results, *out = a->out, *model = a->model;
    if (!dir) return fputs(report_help, stderr), 2;
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "unplug: %s: %s (give the directory bench/tasks.sh wrote, e.g. build/results)\n", dir,
                stat(dir, &st) != 0 ? "no such directory" : "not a directory");
        return 1;
    }
    report R;
    memset(&R, 0, sizeof R);
    R.dir = dir;
    char *outp = out ? NULL : join(dir, "report.html", NULL);
    R.sweep_path = join(dir, "sweep.tsv", NULL);
    R.scaling_path = join(dir, "scaling.tsv", NULL);
    int rc = !R.sweep_path || !R.scaling_path || !(out || outp) ? oom() : 0;
    if (!rc && model) rc = read_model(&R, model);
    int o = rc ? -1 : read_table(R.sweep_path, sweep_cols, NCOLS(sweep_cols), add_sweep, &R);
    R.have_sweep = o == 1;
    if (o >= 0) o = read_table(R.scaling_path, scaling_cols, NCOLS(scaling_cols), add_scaling, &R);
    R.have_scaling = o == 1;
    if (o < 0 || scan_dir(&R)) rc = -1;
    for (size_t i = 0; i < R.nt && !rc; i++)
        if (R.t[i].has_dir) rc = read_task(&R, &R.t[i]);
    if (!rc) rc = write_report(&R, out ? out : outp);
    if (!rc) fprintf(stderr, "wrote %s\n", out ? out : outp);
    free(outp);
    report_free(&R);
    return rc ? 1 : 0;
}
