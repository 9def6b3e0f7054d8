/*
 * dataset.c: task-data readers (GLUE TSVs, TREC, generic TSV / JSONL), task
 * splits, carve-outs and classification metrics. See dataset.h for the
 * layouts and the rules every file is checked against.
 *
 * One pass over the buffer: lines -> checks (length, NUL, UTF-8) -> fields by
 * the format's layout -> one allocation per example holding text and text_b.
 * Nothing is copied before a line has passed its checks, and every failure
 * frees what was built, so *out is either a whole dataset or {0}.
 */
#include "text/dataset.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/base.h"
#include "text/unicode.h"

/* ---- formats ------------------------------------------------------------- */

static const char *const g_fmt_names[] = {"auto", "sst2", "cola", "mrpc", "rte", "wnli",
                                          "qnli", "qqp",  "mnli", "trec", "tsv", "jsonl"};
#define N_FORMATS ((int)(sizeof g_fmt_names / sizeof *g_fmt_names))

const char *up_data_format_name(up_data_format f) {
    return (int)f >= 0 && (int)f < N_FORMATS ? g_fmt_names[f] : "?";
}

up_status up_data_format_from_name(const char *name, up_data_format *out) {
    for (int i = 0; i < N_FORMATS; i++)
        if (name && strcasecmp(name, g_fmt_names[i]) == 0) {
            *out = (up_data_format)i;
            return UP_OK;
        }
    return up_fail(UP_ERR_INVALID, "unknown data format '%s': expected one of auto, sst2, cola, mrpc, rte, "
                                   "wnli, qnli, qqp, mnli, trec, tsv, jsonl", name ? name : "(null)");
}

enum { HDR_NONE, HDR_REQUIRED, HDR_OPTIONAL };

/* The TSV layouts. Without a header, columns are at the i_* positions; with
 * one, they are found by name. n_labels 0: labels come from the data. */
typedef struct {
    int header, ncols;
    const char *text, *text_b, *label; /* column names; text_b NULL: single text */
    int i_text, i_text_b, i_label;
    int n_labels;
    const char *tokens[6]; /* what the label column holds, by id */
    const char *names[6];  /* display names, by id */
} layout;

static const layout g_layouts[N_FORMATS] = {
    [UP_FMT_SST2] = {HDR_REQUIRED, 2, "sentence", NULL, "label", 0, -1, 1, 2, {"0", "1"}, {"negative", "positive"}},
    [UP_FMT_COLA] = {HDR_NONE, 4, "sentence", NULL, "label", 3, -1, 1, 2, {"0", "1"}, {"unacceptable", "acceptable"}},
    [UP_FMT_MRPC] = {HDR_REQUIRED, 5, "#1 String", "#2 String", "Quality", 3, 4, 0, 2, {"0", "1"},
                     {"not_equivalent", "equivalent"}},
    [UP_FMT_RTE] = {HDR_OPTIONAL, 4, "sentence1", "sentence2", "label", 1, 2, 3, 2, {"entailment", "not_entailment"},
                    {"entailment", "not_entailment"}},
    [UP_FMT_WNLI] = {HDR_OPTIONAL, 4, "sentence1", "sentence2", "label", 1, 2, 3, 2, {"0", "1"},
                     {"not_entailment", "entailment"}},
    [UP_FMT_QNLI] = {HDR_REQUIRED, 4, "question", "sentence", "label", 1, 2, 3, 2, {"entailment", "not_entailment"},
                     {"entailment", "not_entailment"}},
    [UP_FMT_QQP] = {HDR_REQUIRED, 6, "question1", "question2", "is_duplicate", 3, 4, 5, 2, {"0", "1"},
                    {"not_duplicate", "duplicate"}},
    [UP_FMT_MNLI] = {HDR_REQUIRED, 12, "sentence1", "sentence2", "gold_label", 8, 9, 11, 3,
                     {"contradiction", "entailment", "neutral"}, {"contradiction", "entailment", "neutral"}},
    [UP_FMT_TREC] = {HDR_NONE, 0, "text", NULL, "label", 0, -1, 0, 6, {"ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"},
                     {"ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"}},
    [UP_FMT_TSV] = {HDR_REQUIRED, 0, "text", "text_b", "label", 0, -1, 0, 0, {0}, {0}},
    [UP_FMT_JSONL] = {HDR_NONE, 0, "text", "text_b", "label", 0, -1, 0, 0, {0}, {0}},
};

static int fixed_labels(up_data_format f) { return g_layouts[f].n_labels > 0; }

/* ---- lines --------------------------------------------------------------- */

typedef struct {
    const char *file;
    const char *p, *end;
    size_t lineno;       /* of the current line, 1-based */
    const char *s;       /* the current line, '\r' dropped */
    size_t n;
    size_t max_line, max_rows;
} lines;

static void lines_init(lines *r, const char *file, const char *buf, size_t len, const up_dataset_limits *lim) {
    memset(r, 0, sizeof *r);
    r->file = file;
    r->p = buf;
    r->end = buf + len;
    if (len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0) r->p += 3; /* BOM */
    r->max_line = lim && lim->max_line ? lim->max_line : UP_DATASET_MAX_LINE;
    r->max_rows = lim && lim->max_rows ? lim->max_rows : UP_DATASET_MAX_ROWS;
}

/* The next non-blank line into r->s/r->n; *got 0 at the end. */
static up_status next_line(lines *r, int *got) {
    for (;;) {
        if (r->p >= r->end) {
            *got = 0;
            return UP_OK;
        }
        const char *nl = memchr(r->p, '\n', (size_t)(r->end - r->p));
        const char *e = nl ? nl : r->end;
        const char *s = r->p;
        size_t n = (size_t)(e - s);
        r->p = nl ? nl + 1 : r->end;
        r->lineno++;
        if (n && s[n - 1] == '\r') n--;
        if (n > r->max_line)
            return up_fail(UP_ERR_FORMAT, "%s:%zu: line is %zu bytes long, expected at most %zu", r->file, r->lineno,
                           n, r->max_line);
        if (n == 0) continue;
        r->s = s;
        r->n = n;
        *got = 1;
        return UP_OK;
    }
}

/* Rejects NUL bytes and ill-formed UTF-8 in the current line; with repair
 * (TREC), s is writable and each byte of an ill-formed sequence becomes ' '. */
static up_status check_line(lines *r, char *repair, size_t *n_repaired) {
    const uint8_t *s = (const uint8_t *)r->s;
    for (size_t i = 0; i < r->n;) {
        if (s[i] >= 0x20 && s[i] < 0x80) {
            i++;
            continue;
        }
        if (s[i] == 0)
            return up_fail(UP_ERR_FORMAT, "%s:%zu: NUL byte at byte %zu of the line", r->file, r->lineno, i + 1);
        uint32_t cp;
        size_t bad = 0, len = up_utf8_step(s + i, r->n - i, &cp, &bad);
        if (len) {
            i += len;
            continue;
        }
        if (!repair)
            return up_fail(UP_ERR_FORMAT, "%s:%zu: invalid UTF-8 at byte %zu of the line (0x%02X); the file must be "
                           "UTF-8", r->file, r->lineno, i + 1, s[i]);
        for (size_t k = 0; k < bad; k++) repair[i + k] = ' ';
        *n_repaired += bad;
        i += bad;
    }
    return UP_OK;
}

static int is_blank(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!strchr(" \t\r\n\v\f", s[i]) || s[i] == 0) return 0;
    return 1;
}

/* Tab-separated fields of a line, one at a time. */
typedef struct {
    const char *p, *end;
    int done;
} fields;

static void fields_init(fields *f, const char *s, size_t n) {
    f->p = s;
    f->end = s + n;
    f->done = 0;
}

static int next_field(fields *f, const char **s, size_t *n) {
    if (f->done) return 0;
    const char *tab = memchr(f->p, '\t', (size_t)(f->end - f->p));
    *s = f->p;
    if (tab) {
        *n = (size_t)(tab - f->p);
        f->p = tab + 1;
    } else {
        *n = (size_t)(f->end - f->p);
        f->done = 1;
    }
    return 1;
}

static int field_is(const char *s, size_t n, const char *name) {
    return n == strlen(name) && memcmp(s, name, n) == 0;
}

/* A length <= max that does not cut a UTF-8 sequence, for quoting in messages. */
static int clip(const char *s, size_t n, size_t max) {
    if (n <= max) return (int)n;
    while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80) max--;
    return (int)max;
}

static int all_digits(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9') return 0;
    return n > 0;
}

/* "'a', 'b', 'c'" of a line's first fields, for messages; cap >= 64. */
static void describe_fields(const char *s, size_t n, char *out, size_t cap) {
    fields f;
    fields_init(&f, s, n);
    const char *fs;
    size_t fn, used = 0;
    out[0] = 0;
    for (int k = 0; next_field(&f, &fs, &fn); k++) {
        if (k == 16 || used + 56 > cap) { /* an entry takes at most 2 + 2 + 40 bytes */
            snprintf(out + used, cap - used, ", ...");
            break;
        }
        used += (size_t)snprintf(out + used, cap - used, "%s'%.*s'", k ? ", " : "", clip(fs, fn, 40), fs);
    }
}

/* ---- building a dataset --------------------------------------------------- */

typedef struct {
    up_dataset *d;
    size_t cap;
    up_data_format fmt;
    const up_dataset *space; /* labels must come from here (tsv, jsonl) */
    int int_labels;          /* jsonl: -1 not yet known, 0 strings, 1 integers */
    int pair_known;          /* jsonl: pair decided by the first example */
    size_t pair_line;
} builder;

void up_dataset_clear(up_dataset *d) {
    if (!d) return;
    for (size_t i = 0; i < d->n; i++) free(d->ex[i].text);
    free(d->ex);
    for (int i = 0; i < d->n_labels; i++) free(d->labels[i]);
    free(d->labels);
    memset(d, 0, sizeof *d);
}

static char *dup_n(const char *s, size_t n, const char *what) {
    char *p = up_malloc(n + 1, what);
    if (!p) return NULL;
    memcpy(p, s, n);
    p[n] = 0;
    return p;
}

static up_status add_label(up_dataset *d, const char *s, size_t n) {
    char **l = realloc(d->labels, (size_t)(d->n_labels + 1) * sizeof *l);
    if (!l) return up_fail(UP_ERR_NOMEM, "out of memory for the label list");
    d->labels = l;
    if (!(l[d->n_labels] = dup_n(s, n, "a label name"))) return UP_ERR_NOMEM;
    d->n_labels++;
    return UP_OK;
}

static up_status copy_labels(up_dataset *d, const up_dataset *from) {
    for (int i = 0; i < from->n_labels; i++) {
        up_status st = add_label(d, from->labels[i], strlen(from->labels[i]));
        if (st) return st;
    }
    return UP_OK;
}

/* "'a', 'b'" or "0 (negative), 1 (positive)"; cap >= 128. */
static void known_labels(const builder *b, char *out, size_t cap) {
    const layout *L = &g_layouts[b->fmt];
    int fixed = fixed_labels(b->fmt), n = fixed ? L->n_labels : b->d->n_labels;
    size_t used = 0;
    snprintf(out, cap, "none");
    for (int i = 0; i < n; i++) {
        if (used + 100 > cap) { /* an entry takes at most 2 + 2 + 40 + 3 + 40 bytes */
            snprintf(out + used, cap - used, ", ...");
            return;
        }
        const char *tok = fixed ? L->tokens[i] : b->d->labels[i];
        int t = clip(tok, strlen(tok), 40);
        if (fixed && strcmp(L->tokens[i], L->names[i]) != 0)
            used += (size_t)snprintf(out + used, cap - used, "%s%.*s (%s)", i ? ", " : "", t, tok, L->names[i]);
        else
            used += (size_t)snprintf(out + used, cap - used, "%s'%.*s'", i ? ", " : "", t, tok);
    }
}

/* The id of a label string of this line. */
static up_status label_id(builder *b, const lines *r, const char *s, size_t n, int *id) {
    char known[320];
    if (n == 0) return up_fail(UP_ERR_FORMAT, "%s:%zu: empty label", r->file, r->lineno);
    up_dataset *d = b->d;
    if (fixed_labels(b->fmt)) {
        const layout *L = &g_layouts[b->fmt];
        for (int i = 0; i < L->n_labels; i++)
            if (field_is(s, n, L->tokens[i])) {
                *id = i;
                return UP_OK;
            }
    } else {
        for (int i = 0; i < d->n_labels; i++)
            if (field_is(s, n, d->labels[i])) {
                *id = i;
                return UP_OK;
            }
        if (!b->space) {
            if (d->n_labels >= UP_DATASET_MAX_LABELS)
                return up_fail(UP_ERR_FORMAT, "%s:%zu: label '%.*s' would be label number %d, expected at most %d "
                               "distinct labels", r->file, r->lineno, clip(s, n, 64), s, d->n_labels + 1,
                               UP_DATASET_MAX_LABELS);
            up_status st = add_label(d, s, n);
            if (st) return st;
            *id = d->n_labels - 1;
            return UP_OK;
        }
    }
    known_labels(b, known, sizeof known);
    return up_fail(UP_ERR_FORMAT, "%s:%zu: unknown label '%.*s'; known labels: %s", r->file, r->lineno,
                   clip(s, n, 64), s, known);
}

static up_status add_example(builder *b, const lines *r, const char *t, size_t tn, const char *tb, size_t bn,
                             int label) {
    up_dataset *d = b->d;
    if (d->n >= r->max_rows)
        return up_fail(UP_ERR_FORMAT, "%s:%zu: more than %zu rows, the most a file may hold; split it", r->file,
                       r->lineno, r->max_rows);
    if (d->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 256, bytes;
        if (!up_mul_ok(cap, sizeof *d->ex, &bytes)) return up_fail(UP_ERR_NOMEM, "too many examples");
        up_example *ex = realloc(d->ex, bytes);
        if (!ex) return up_fail(UP_ERR_NOMEM, "out of memory for %zu examples", cap);
        d->ex = ex;
        b->cap = cap;
    }
    size_t total = tn + 1 + (tb ? bn + 1 : 0); /* cannot overflow: both lie in the input buffer */
    char *p = up_malloc(total, "an example");
    if (!p) return UP_ERR_NOMEM;
    memcpy(p, t, tn);
    p[tn] = 0;
    up_example *e = &d->ex[d->n++];
    e->text = p;
    e->text_b = NULL;
    e->label = label;
    if (tb) {
        e->text_b = p + tn + 1;
        memcpy(e->text_b, tb, bn);
        e->text_b[bn] = 0;
    }
    return UP_OK;
}

static up_status check_text(const lines *r, const char *s, size_t n, const char *column) {
    if (is_blank(s, n))
        return up_fail(UP_ERR_FORMAT, "%s:%zu: empty text in column '%s'", r->file, r->lineno, column);
    return UP_OK;
}

/* ---- TSV layouts ----------------------------------------------------------- */

typedef struct {
    int ncols, i_text, i_text_b, i_label;
} columns;

/* Finds the layout's columns in a header line. */
static up_status parse_header(const lines *r, const layout *L, int text_b_optional, columns *c) {
    c->ncols = 0;
    c->i_text = c->i_text_b = c->i_label = -1;
    fields f;
    fields_init(&f, r->s, r->n);
    const char *fs;
    size_t fn;
    struct { const char *name; int *at; } want[] = {{L->text, &c->i_text}, {L->text_b, &c->i_text_b},
                                                    {L->label, &c->i_label}};
    while (next_field(&f, &fs, &fn)) {
        for (int k = 0; k < 3; k++)
            if (want[k].name && field_is(fs, fn, want[k].name)) {
                if (*want[k].at >= 0)
                    return up_fail(UP_ERR_FORMAT, "%s:%zu: column '%s' appears twice in the header (columns %d and "
                                   "%d)", r->file, r->lineno, want[k].name, *want[k].at + 1, c->ncols + 1);
                *want[k].at = c->ncols;
            }
        if (c->ncols == INT32_MAX - 1)
            return up_fail(UP_ERR_FORMAT, "%s:%zu: too many columns in the header", r->file, r->lineno);
        c->ncols++;
    }
    for (int k = 0; k < 3; k++) {
        if (!want[k].name || *want[k].at >= 0 || (k == 1 && text_b_optional)) continue;
        char found[400];
        describe_fields(r->s, r->n, found, sizeof found);
        return up_fail(UP_ERR_FORMAT, "%s:%zu: missing column '%s' in the header (found %s)", r->file, r->lineno,
                       want[k].name, found);
    }
    return UP_OK;
}

static up_status parse_tsv(builder *b, lines *r) {
    const layout *L = &g_layouts[b->fmt];
    columns c = {L->ncols, L->i_text, L->text_b ? L->i_text_b : -1, L->i_label};
    int generic = b->fmt == UP_FMT_TSV, got, first = 1;
    const char *names[3] = {L->text, L->text_b, L->label};
    up_status st;
    while ((st = next_line(r, &got)) == UP_OK && got) {
        if ((st = check_line(r, NULL, NULL))) return st;
        if (first) {
            first = 0;
            int hdr = L->header == HDR_REQUIRED;
            if (L->header == HDR_OPTIONAL) { /* RTE/WNLI val.tsv has none */
                const char *fs;
                size_t fn;
                fields f;
                fields_init(&f, r->s, r->n);
                next_field(&f, &fs, &fn);
                hdr = field_is(fs, fn, "index");
            }
            if (hdr) {
                if ((st = parse_header(r, L, generic, &c))) return st;
                b->d->pair = c.i_text_b >= 0;
                continue;
            }
            b->d->pair = c.i_text_b >= 0;
        }
        fields f;
        fields_init(&f, r->s, r->n);
        const char *fs, *at[3] = {0};
        size_t fn, len[3] = {0};
        int k = 0;
        for (; next_field(&f, &fs, &fn); k++) {
            if (k == c.i_text) at[0] = fs, len[0] = fn;
            if (k == c.i_text_b) at[1] = fs, len[1] = fn;
            if (k == c.i_label) at[2] = fs, len[2] = fn;
            if (k > c.ncols) break; /* enough to know it is wrong; count the rest */
        }
        if (k != c.ncols) {
            size_t found = 1;
            for (size_t i = 0; i < r->n; i++) found += r->s[i] == '\t';
            return up_fail(UP_ERR_FORMAT, "%s:%zu: expected %d tab-separated columns, found %zu", r->file, r->lineno,
                           c.ncols, found);
        }
        for (int j = 0; j < 2; j++)
            if ((j == 0 || c.i_text_b >= 0) && (st = check_text(r, at[j], len[j], names[j]))) return st;
        int id;
        if ((st = label_id(b, r, at[2], len[2], &id))) return st;
        if ((st = add_example(b, r, at[0], len[0], at[1], len[1], id))) return st;
    }
    return st;
}

/* ---- TREC ------------------------------------------------------------------ */

static up_status parse_trec(builder *b, lines *r) {
    size_t cap = 4096, repaired = 0, first_repair = 0; /* line: a writable copy of the current line */
    char *line = up_malloc(cap, "a TREC line");
    if (!line) return UP_ERR_NOMEM;
    int got;
    up_status st;
    while ((st = next_line(r, &got)) == UP_OK && got) {
        if (r->n > cap) {
            char *p = realloc(line, r->n);
            if (!p) {
                st = up_fail(UP_ERR_NOMEM, "out of memory for a TREC line");
                break;
            }
            line = p;
            cap = r->n;
        }
        memcpy(line, r->s, r->n);
        size_t before = repaired;
        if ((st = check_line(r, line, &repaired))) break;
        if (repaired > before && !first_repair) first_repair = r->lineno;
        size_t n = r->n;
        while (n && strchr(" \t\r\v\f", line[n - 1])) n--;
        const char *sp = memchr(line, ' ', n);
        if (!sp) {
            st = up_fail(UP_ERR_FORMAT, "%s:%zu: expected 'COARSE:fine question text', found no space after the "
                         "label", r->file, r->lineno);
            break;
        }
        size_t ln = (size_t)(sp - line);
        const char *colon = memchr(line, ':', ln);
        if (!colon || colon == line + ln - 1) {
            st = up_fail(UP_ERR_FORMAT, "%s:%zu: label '%.*s' is not COARSE:fine (e.g. 'LOC:city')", r->file,
                         r->lineno, clip(line, ln, 64), line);
            break;
        }
        int id;
        if ((st = label_id(b, r, line, (size_t)(colon - line), &id))) break;
        const char *t = sp + 1;
        size_t tn = n - ln - 1;
        if ((st = check_text(r, t, tn, "text"))) break;
        if ((st = add_example(b, r, t, tn, NULL, 0, id))) break;
    }
    free(line);
    if (st == UP_OK && repaired)
        up_log(UP_LOG_INFO, "%s: %zu byte(s) not in UTF-8 replaced by spaces (first on line %zu)", r->file, repaired,
               first_repair);
    return st;
}

/* ---- JSONL ------------------------------------------------------------------ */

static up_status json_label(builder *b, const lines *r, json_t *v, int *id) {
    up_dataset *d = b->d;
    int is_int = json_is_integer(v);
    if (!is_int && !json_is_string(v))
        return up_fail(UP_ERR_FORMAT, "%s:%zu: field 'label' must be a string or an integer", r->file, r->lineno);
    if (b->int_labels >= 0 && b->int_labels != is_int)
        return up_fail(UP_ERR_FORMAT, "%s:%zu: label is %s but earlier labels are %s; use one kind in a file",
                       r->file, r->lineno, is_int ? "an integer" : "a string", is_int ? "strings" : "integers");
    b->int_labels = is_int;
    if (!is_int) return label_id(b, r, json_string_value(v), json_string_length(v), id);
    json_int_t k = json_integer_value(v);
    int limit = b->space ? b->space->n_labels : UP_DATASET_MAX_LABELS;
    if (k < 0 || k >= limit) {
        char known[320];
        if (b->space) {
            known_labels(b, known, sizeof known);
            return up_fail(UP_ERR_FORMAT, "%s:%zu: unknown label %lld: expected an id 0..%d; known labels: %s",
                           r->file, r->lineno, (long long)k, limit - 1, known);
        }
        return up_fail(UP_ERR_FORMAT, "%s:%zu: label %lld out of range: expected 0..%d", r->file, r->lineno,
                       (long long)k, limit - 1);
    }
    while (!b->space && d->n_labels <= k) {
        char name[16];
        snprintf(name, sizeof name, "%d", d->n_labels);
        up_status st = add_label(d, name, strlen(name));
        if (st) return st;
    }
    *id = (int)k;
    return UP_OK;
}

static up_status json_text(const lines *r, json_t *o, const char *key, int optional, const char **s, size_t *n) {
    json_t *v = json_object_get(o, key);
    *s = NULL;
    *n = 0;
    if (!v || (optional && json_is_null(v))) {
        if (optional) return UP_OK;
        return up_fail(UP_ERR_FORMAT, "%s:%zu: missing field '%s'", r->file, r->lineno, key);
    }
    if (!json_is_string(v)) return up_fail(UP_ERR_FORMAT, "%s:%zu: field '%s' must be a string", r->file, r->lineno, key);
    *s = json_string_value(v);
    *n = json_string_length(v);
    return check_text(r, *s, *n, key);
}

static up_status parse_jsonl(builder *b, lines *r) {
    int got;
    up_status st;
    while ((st = next_line(r, &got)) == UP_OK && got) {
        if ((st = check_line(r, NULL, NULL))) return st;
        json_error_t err;
        json_t *o = json_loadb(r->s, r->n, JSON_REJECT_DUPLICATES, &err);
        if (!o)
            return up_fail(UP_ERR_FORMAT, "%s:%zu: invalid JSON at column %d: %s", r->file, r->lineno, err.column,
                           err.text);
        const char *t, *tb;
        size_t tn, bn;
        int id = 0;
        if (!json_is_object(o))
            st = up_fail(UP_ERR_FORMAT, "%s:%zu: expected a JSON object {\"text\": ..., \"label\": ...}", r->file,
                         r->lineno);
        else if (!(st = json_text(r, o, "text", 0, &t, &tn)) && !(st = json_text(r, o, "text_b", 1, &tb, &bn))) {
            json_t *lv = json_object_get(o, "label");
            if (!lv)
                st = up_fail(UP_ERR_FORMAT, "%s:%zu: missing field 'label'", r->file, r->lineno);
            else if (!b->pair_known) {
                b->pair_known = 1;
                b->pair_line = r->lineno;
                b->d->pair = tb != NULL;
            } else if (b->d->pair != (tb != NULL))
                st = up_fail(UP_ERR_FORMAT, "%s:%zu: %s 'text_b' but the first example (line %zu) %s", r->file,
                             r->lineno, tb ? "has" : "has no", b->pair_line, tb ? "has none" : "has one");
            if (!st) st = json_label(b, r, lv, &id);
            if (!st) st = add_example(b, r, t, tn, tb, bn, id);
        }
        json_decref(o);
        if (st) return st;
    }
    return st;
}

/* ---- format detection ------------------------------------------------------ */

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcasecmp(s + n - k, suffix) == 0;
}

/* A task named by a folder or file name of the path, nearest first. */
static up_data_format format_from_path(const char *path) {
    static const struct { const char *dir; up_data_format f; } dirs[] = {
        {"SST-2", UP_FMT_SST2}, {"sst2", UP_FMT_SST2}, {"CoLA", UP_FMT_COLA}, {"MRPC", UP_FMT_MRPC},
        {"RTE", UP_FMT_RTE},    {"WNLI", UP_FMT_WNLI}, {"QNLI", UP_FMT_QNLI}, {"QQP", UP_FMT_QQP},
        {"MNLI", UP_FMT_MNLI},  {"trec", UP_FMT_TREC}};
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    if (strncasecmp(base, "TREC.", 5) == 0) return UP_FMT_TREC;
    const char *end = base; /* walk the folders from the innermost out */
    while (end > path) {
        const char *stop = end - 1, *start = stop;
        while (start > path && start[-1] != '/') start--;
        size_t n = (size_t)(stop - start);
        for (size_t i = 0; i < sizeof dirs / sizeof *dirs; i++)
            if (n == strlen(dirs[i].dir) && strncasecmp(start, dirs[i].dir, n) == 0) return dirs[i].f;
        end = start;
    }
    return UP_FMT_AUTO;
}

static int is_trec_line(const char *s, size_t n) {
    size_t i = 0;
    while (i < n && s[i] >= 'A' && s[i] <= 'Z') i++;
    if (i == 0 || i >= n || s[i] != ':') return 0;
    const char *sp = memchr(s, ' ', n);
    return sp && sp > s + i + 1;
}

static up_status detect(const char *name, const char *buf, size_t len, up_data_format *out) {
    if (ends_with(name, ".jsonl") || ends_with(name, ".json")) {
        *out = UP_FMT_JSONL;
        return UP_OK;
    }
    lines r;
    int got;
    lines_init(&r, name, buf, len, NULL);
    up_status st = next_line(&r, &got);
    if (st) return st;
    if (!got) return up_fail(UP_ERR_FORMAT, "%s: no examples: the file is empty or blank", name);
    const char *fs, *f0 = NULL, *f1 = NULL;
    size_t fn, n0 = 0, n1 = 0;
    int k = 0, has_text = 0, has_label = 0;
    fields f;
    fields_init(&f, r.s, r.n);
    for (; next_field(&f, &fs, &fn); k++) {
        if (k == 0) f0 = fs, n0 = fn;
        if (k == 1) f1 = fs, n1 = fn;
        has_text |= field_is(fs, fn, "text");
        has_label |= field_is(fs, fn, "label");
    }
    up_data_format p = format_from_path(name);
    if (has_text && has_label) *out = UP_FMT_TSV;
    else if (p != UP_FMT_AUTO) *out = p;
    else if (k == 2 && field_is(f0, n0, "sentence") && field_is(f1, n1, "label")) *out = UP_FMT_SST2;
    else if (field_is(f0, n0, "Quality")) *out = UP_FMT_MRPC;
    else if (field_is(f0, n0, "index") && k >= 2 && field_is(f1, n1, "question")) *out = UP_FMT_QNLI;
    else if (field_is(f0, n0, "id") && k >= 2 && field_is(f1, n1, "qid1")) *out = UP_FMT_QQP;
    else if (field_is(f0, n0, "index") && k >= 2 && field_is(f1, n1, "promptID")) *out = UP_FMT_MNLI;
    else if (k == 4 && (field_is(f0, n0, "index") || all_digits(f0, n0))) {
        /* RTE or WNLI: by the label of the first data row */
        if (field_is(f0, n0, "index") && ((st = next_line(&r, &got)) || !got)) {
            if (st) return st;
            return up_fail(UP_ERR_FORMAT, "%s: no examples (only a header)", name);
        }
        const char *last = r.s + r.n;
        while (last > r.s && last[-1] != '\t') last--;
        size_t ln = (size_t)(r.s + r.n - last);
        if (field_is(last, ln, "entailment") || field_is(last, ln, "not_entailment")) *out = UP_FMT_RTE;
        else if (field_is(last, ln, "0") || field_is(last, ln, "1")) *out = UP_FMT_WNLI;
        else return up_fail(UP_ERR_FORMAT, "%s:%zu: cannot tell RTE from WNLI by the label '%.*s'; give the format",
                            name, r.lineno, clip(last, ln, 64), last);
    } else if (k == 1 && is_trec_line(r.s, r.n)) *out = UP_FMT_TREC;
    else if (k == 4 && (field_is(f1, n1, "0") || field_is(f1, n1, "1"))) *out = UP_FMT_COLA;
    else {
        char found[400];
        describe_fields(r.s, r.n, found, sizeof found);
        return up_fail(UP_ERR_FORMAT, "%s: cannot tell the data format from the file name or the first line (%s); "
                       "give one of sst2, cola, mrpc, rte, wnli, qnli, qqp, mnli, trec, tsv, jsonl", name, found);
    }
    return UP_OK;
}

/* ---- entry points ------------------------------------------------------------ */

static up_status check_space(up_data_format fmt, const up_dataset *space) {
    const layout *L = &g_layouts[fmt];
    if (!space || !fixed_labels(fmt)) return UP_OK;
    int same = space->n_labels == L->n_labels;
    for (int i = 0; same && i < L->n_labels; i++) same = strcmp(space->labels[i], L->names[i]) == 0;
    if (same) return UP_OK;
    return up_fail(UP_ERR_INVALID, "the given label space (%d labels, first '%s') is not the %s labels (%d, first "
                   "'%s')", space->n_labels, space->n_labels ? space->labels[0] : "", g_fmt_names[fmt], L->n_labels,
                   L->names[0]);
}

up_status up_dataset_parse(const char *name, const char *buf, size_t len, up_data_format fmt,
                           const up_dataset *label_space, const up_dataset_limits *lim, up_dataset *out) {
    memset(out, 0, sizeof *out);
    if (!name) name = "(buffer)";
    if ((int)fmt < 0 || (int)fmt >= N_FORMATS) return up_fail(UP_ERR_INVALID, "%s: unknown data format %d", name, fmt);
    if (!buf && len) return up_fail(UP_ERR_INVALID, "%s: NULL buffer", name);
    if (len == 0) return up_fail(UP_ERR_FORMAT, "%s: no examples: the file is empty", name);
    up_status st;
    if (fmt == UP_FMT_AUTO && (st = detect(name, buf, len, &fmt))) return st;
    if ((st = check_space(fmt, label_space))) return st;

    builder b = {out, 0, fmt, label_space, -1, 0, 0};
    const layout *L = &g_layouts[fmt];
    snprintf(out->name, sizeof out->name, "%s", g_fmt_names[fmt]);
    for (int i = 0; i < L->n_labels && !st; i++) st = add_label(out, L->names[i], strlen(L->names[i]));
    if (!st && label_space && !fixed_labels(fmt)) st = copy_labels(out, label_space);
    if (!st) {
        lines r;
        lines_init(&r, name, buf, len, lim);
        st = fmt == UP_FMT_TREC ? parse_trec(&b, &r) : fmt == UP_FMT_JSONL ? parse_jsonl(&b, &r) : parse_tsv(&b, &r);
        if (!st && out->n == 0)
            st = up_fail(UP_ERR_FORMAT, "%s: no examples%s", name, r.lineno ? " (only a header or blank lines)"
                                                                          : ": the file is empty");
    }
    if (st) {
        up_dataset_clear(out);
        return st;
    }
    if (out->n < b.cap) { /* give back the slack of the doubling */
        up_example *ex = realloc(out->ex, out->n * sizeof *ex);
        if (ex) out->ex = ex;
    }
    return UP_OK;
}

up_status up_dataset_read(const char *path, up_data_format fmt, const up_dataset *label_space, up_dataset *out) {
    memset(out, 0, sizeof *out);
    up_map m;
    up_status st = up_map_file(path, &m);
    if (st) return st;
    st = up_dataset_parse(path, (const char *)m.data, m.size, fmt, label_space, NULL, out);
    up_unmap(&m);
    return st;
}

/* ---- rows in memory -------------------------------------------------------- */

/* one text of row i as a "line" for the file checks: messages say "name:row" */
static up_status row_text(lines *r, size_t i, const char *s, const char *column) {
    if (!s) return up_fail(UP_ERR_INVALID, "%s:%zu: %s is NULL", r->file, i + 1, column);
    r->lineno = i + 1;
    r->s = s;
    r->n = strlen(s);
    if (r->n > r->max_line)
        return up_fail(UP_ERR_FORMAT, "%s:%zu: %s is %zu bytes long, expected at most %zu", r->file, r->lineno,
                       column, r->n, r->max_line);
    up_status st = check_line(r, NULL, NULL);
    return st ? st : check_text(r, s, r->n, column);
}

up_status up_dataset_rows(const char *name, size_t n, const char *const *text, const char *const *text_b,
                          const char *const *label, const up_dataset *label_space, up_dataset *out) {
    memset(out, 0, sizeof *out);
    const char *file = name && *name ? name : "rows";
    if (n == 0) return up_fail(UP_ERR_INVALID, "%s: no rows", file);
    if (!text || !label) return up_fail(UP_ERR_INVALID, "%s: the texts and labels are required", file);
    builder b = {out, 0, UP_FMT_TSV, label_space, -1, 0, 0};
    lines r;
    lines_init(&r, file, "", 0, NULL);
    snprintf(out->name, sizeof out->name, "%s", file);
    out->pair = text_b != NULL;
    up_status st = label_space ? copy_labels(out, label_space) : UP_OK;
    for (size_t i = 0; i < n && !st; i++) {
        int id;
        if (!(st = row_text(&r, i, text[i], "text")) && !(st = text_b ? row_text(&r, i, text_b[i], "text_b") : UP_OK) &&
            !(st = row_text(&r, i, label[i], "label")) && !(st = label_id(&b, &r, label[i], strlen(label[i]), &id)))
            st = add_example(&b, &r, text[i], strlen(text[i]), text_b ? text_b[i] : NULL, text_b ? strlen(text_b[i]) : 0,
                             id);
    }
    if (st) up_dataset_clear(out);
    return st;
}

/* ---- carve-out ------------------------------------------------------------- */

up_status up_dataset_carve(up_dataset *d, double frac, uint64_t seed, up_dataset *val) {
    memset(val, 0, sizeof *val);
    if (!(frac > 0 && frac < 1))
        return up_fail(UP_ERR_INVALID, "validation fraction %g: expected 0 < frac < 1", frac);
    if (d->n < 2)
        return up_fail(UP_ERR_INVALID, "%s: %zu examples, expected at least 2 to carve a validation set", d->name,
                       d->n);
    double want = round(frac * (double)d->n);
    size_t k = want < 1 ? 1 : want > (double)(d->n - 1) ? d->n - 1 : (size_t)want;
    up_status st = copy_labels(val, d);
    if (!st && !(val->ex = up_calloc(k, sizeof *val->ex, "the validation examples"))) st = UP_ERR_NOMEM;
    if (st) {
        up_dataset_clear(val);
        return st;
    }
    memcpy(val->name, d->name, sizeof val->name);
    val->pair = d->pair;
    /* Selection sampling (Knuth's Algorithm S): every k-subset equally likely,
     * one pass, file order kept on both sides. */
    up_rng s = {seed, 0x9E3779B97F4A7C15ull}; /* the SplitMix64 sequence of seed */
    size_t kept = 0, need = k;
    for (size_t i = 0; i < d->n; i++) {
        if (need && up_rng_below(&s, d->n - i) < need) {
            val->ex[val->n++] = d->ex[i];
            need--;
        } else {
            d->ex[kept++] = d->ex[i];
        }
    }
    d->n = kept;
    return UP_OK;
}

/* ---- tasks ----------------------------------------------------------------- */

static const struct {
    const char *task, *dir, *train, *dev;
    up_data_format fmt;
} g_tasks[] = {
    {"sst2", "glue/SST-2", "train.tsv", "dev.tsv", UP_FMT_SST2},
    {"cola", "glue/CoLA", "train.tsv", "dev.tsv", UP_FMT_COLA},
    {"mrpc", "glue/MRPC", "train.tsv", "dev.tsv", UP_FMT_MRPC},
    {"rte", "glue/RTE", "train.tsv", "dev.tsv", UP_FMT_RTE},
    {"wnli", "glue/WNLI", "train.tsv", "dev.tsv", UP_FMT_WNLI},
    {"qnli", "glue/QNLI", "train.tsv", "dev.tsv", UP_FMT_QNLI},
    {"qqp", "glue/QQP", "train.tsv", "dev.tsv", UP_FMT_QQP},
    {"mnli", "glue/MNLI", "train.tsv", "dev_matched.tsv", UP_FMT_MNLI},
    {"trec", "trec", "TREC.train", "TREC.test", UP_FMT_TREC},
};

void up_task_splits_free(up_task_splits *s) {
    if (!s) return;
    up_dataset_clear(&s->train);
    up_dataset_clear(&s->val);
    up_dataset_clear(&s->report);
    s->val_carved = 0;
}

up_status up_task_load(const char *task, const char *data_dir, double val_frac, uint64_t seed,
                       up_task_splits *out) {
    memset(out, 0, sizeof *out);
    size_t t = 0, nt = sizeof g_tasks / sizeof *g_tasks;
    while (t < nt && !(task && strcmp(task, g_tasks[t].task) == 0)) t++;
    if (t == nt)
        return up_fail(UP_ERR_INVALID, "unknown task '%s': expected one of sst2, cola, mrpc, rte, wnli, qnli, qqp, "
                       "mnli, trec", task ? task : "(null)");
    if (!data_dir) return up_fail(UP_ERR_INVALID, "task %s: no data directory", task);
    char dir[4096], path[4096 + 64];
    up_status st = up_path_join(dir, sizeof dir, data_dir, g_tasks[t].dir);
    if (!st) st = up_path_join(path, sizeof path, dir, g_tasks[t].train);
    if (!st) st = up_dataset_read(path, g_tasks[t].fmt, NULL, &out->train);
    if (!st) st = up_path_join(path, sizeof path, dir, "val.tsv");
    if (!st) {
        if (g_tasks[t].fmt != UP_FMT_TREC && up_file_exists(path)) {
            st = up_dataset_read(path, g_tasks[t].fmt, &out->train, &out->val);
        } else {
            st = up_dataset_carve(&out->train, val_frac, seed, &out->val);
            if (st) st = up_fail_prefix(st, "task %s: carving the validation split from %s", task, g_tasks[t].train);
            out->val_carved = 1;
        }
    }
    if (!st) st = up_path_join(path, sizeof path, dir, g_tasks[t].dev);
    if (!st) st = up_dataset_read(path, g_tasks[t].fmt, &out->train, &out->report);
    if (st) {
        up_task_splits_free(out);
        return st;
    }
    return UP_OK;
}

/* ---- metrics --------------------------------------------------------------- */

double up_accuracy(const int *pred, const int *gold, size_t n) {
    if (n == 0) return 0;
    size_t ok = 0;
    for (size_t i = 0; i < n; i++) ok += pred[i] == gold[i];
    return (double)ok / (double)n;
}

double up_f1_binary(const int *pred, const int *gold, size_t n, int positive) {
    size_t tp = 0, fp = 0, fn = 0;
    for (size_t i = 0; i < n; i++) {
        int p = pred[i] == positive, g = gold[i] == positive;
        tp += p && g;
        fp += p && !g;
        fn += !p && g;
    }
    size_t den = 2 * tp + fp + fn;
    return den ? 2.0 * (double)tp / (double)den : 0.0;
}

double up_matthews(const int *pred, const int *gold, size_t n) {
    double tp = 0, tn = 0, fp = 0, fn = 0;
    for (size_t i = 0; i < n; i++) {
        int p = pred[i] == 1, g = gold[i] == 1;
        tp += p && g;
        tn += !p && !g;
        fp += p && !g;
        fn += !p && g;
    }
    double den = (tp + fp) * (tp + fn) * (tn + fp) * (tn + fn);
    return den > 0 ? (tp * tn - fp * fn) / sqrt(den) : 0.0;
}

int up_majority_label(const up_dataset *d) {
    if (!d || d->n == 0 || d->n_labels <= 0) return -1;
    size_t *count = calloc((size_t)d->n_labels, sizeof *count);
    if (!count) return -1;
    for (size_t i = 0; i < d->n; i++)
        if (d->ex[i].label >= 0 && d->ex[i].label < d->n_labels) count[d->ex[i].label]++;
    int best = 0;
    for (int i = 1; i < d->n_labels; i++)
        if (count[i] > count[best]) best = i;
    free(count);
    return best;
}
