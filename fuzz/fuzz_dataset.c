/*
 * fuzz_dataset.c: libFuzzer target for up_dataset_parse: the input is read as
 * a file of every format (and auto-detected under a few file names); a dataset
 * that parses must be self-consistent, parse again with itself as the label
 * space to the same label ids, and survive a carve-out.
 *
 *     scripts/fuzz.sh fuzz_dataset   (or build-fuzz/fuzz_dataset fuzz/corpus/dataset)
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "text/dataset.h"
#include "text/unicode.h"

static int valid_utf8(const char *s) {
    size_t n = strlen(s);
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t bad = 0, len = up_utf8_step((const uint8_t *)s + i, n - i, &cp, &bad);
        if (!len) return 0;
        i += len;
    }
    return 1;
}

static int blank(const char *s) {
    for (; *s; s++)
        if (!strchr(" \t\r\n\v\f", *s)) return 0;
    return 1;
}

static void check(const up_dataset *d, up_data_format fmt) {
    if (d->n == 0 || !d->ex || d->n_labels <= 0 || !memchr(d->name, 0, sizeof d->name)) abort();
    if ((fmt == UP_FMT_TSV || fmt == UP_FMT_JSONL) && d->n_labels > UP_DATASET_MAX_LABELS) abort();
    for (int i = 0; i < d->n_labels; i++)
        if (!d->labels[i] || !d->labels[i][0] || !valid_utf8(d->labels[i])) abort();
    int text_fmt = fmt != UP_FMT_JSONL && strcmp(d->name, "jsonl") != 0;
    for (size_t i = 0; i < d->n; i++) {
        const up_example *e = &d->ex[i];
        if (e->label < 0 || e->label >= d->n_labels) abort();
        if (!e->text || blank(e->text) || !valid_utf8(e->text)) abort();
        if (!!e->text_b != !!d->pair) abort();
        if (e->text_b && (blank(e->text_b) || !valid_utf8(e->text_b))) abort();
        if (text_fmt && (strchr(e->text, '\n') || (e->text_b && strpbrk(e->text_b, "\t\n")))) abort();
        if (text_fmt && strcmp(d->name, "trec") != 0 && strchr(e->text, '\t')) abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int quiet;
    if (!quiet) {
        up_set_log(NULL, NULL, UP_LOG_ERROR);
        quiet = 1;
    }
    static const struct {
        up_data_format fmt;
        const char *name;
    } runs[] = {
        {UP_FMT_AUTO, "fuzz.tsv"}, {UP_FMT_AUTO, "fuzz.jsonl"}, {UP_FMT_AUTO, "glue/RTE/val.tsv"},
        {UP_FMT_AUTO, "trec/TREC.train"}, {UP_FMT_SST2, "f"}, {UP_FMT_COLA, "f"}, {UP_FMT_MRPC, "f"},
        {UP_FMT_RTE, "f"}, {UP_FMT_WNLI, "f"}, {UP_FMT_QNLI, "f"}, {UP_FMT_QQP, "f"}, {UP_FMT_MNLI, "f"},
        {UP_FMT_TREC, "f"}, {UP_FMT_TSV, "f"}, {UP_FMT_JSONL, "f"},
    };
    /* small limits on some runs, so that the limit paths get exercised too */
    up_dataset_limits lim = {size > 2 ? 64 + data[0] : 0, size > 2 ? 1 + data[1] % 8 : 0};
    for (size_t r = 0; r < sizeof runs / sizeof *runs; r++) {
        up_dataset d;
        up_status st = up_dataset_parse(runs[r].name, (const char *)data, size, runs[r].fmt, NULL,
                                        r % 2 ? &lim : NULL, &d);
        if (st != UP_OK) {
            if (d.n || d.ex || d.labels || !up_errmsg()[0]) abort();
            continue;
        }
        check(&d, runs[r].fmt);
        /* the same input with its own labels as the label space: same ids */
        up_dataset again;
        if (up_dataset_parse(runs[r].name, (const char *)data, size, runs[r].fmt, &d, r % 2 ? &lim : NULL, &again))
            abort();
        if (again.n != d.n || again.n_labels != d.n_labels || again.pair != d.pair) abort();
        for (size_t i = 0; i < d.n; i++)
            if (again.ex[i].label != d.ex[i].label || strcmp(again.ex[i].text, d.ex[i].text)) abort();
        up_dataset_clear(&again);
        /* carve-out: sizes add up, and both parts stay consistent */
        size_t n = d.n;
        up_dataset val;
        if (n >= 2) {
            if (up_dataset_carve(&d, 0.3, size, &val) != UP_OK) abort();
            if (val.n + d.n != n || val.n < 1 || d.n < 1) abort();
            check(&val, runs[r].fmt);
            check(&d, runs[r].fmt);
            up_dataset_clear(&val);
        } else if (up_dataset_carve(&d, 0.3, 1, &val) == UP_OK) {
            abort();
        }
        int maj = up_majority_label(&d);
        if (maj < 0 || maj >= d.n_labels) abort();
        up_dataset_clear(&d);
    }
    return 0;
}
