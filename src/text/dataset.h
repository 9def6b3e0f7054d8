/*
 * dataset.h: readers for text-classification task data (GLUE TSVs, TREC,
 * generic TSV and JSONL), the train / validation / report splits of a task
 * directory, and the metrics the tasks report. Private to the library.
 *
 *     up_task_splits s;
 *     if (up_task_load("rte", "../shared/data", 0.1, 42, &s) != UP_OK) {
 *         fprintf(stderr, "%s\n", up_errmsg());
 *         return 1;
 *     }
 *     int maj = up_majority_label(&s.train);             // 0 = "entailment"
 *     printf("%zu train, %zu val, %zu dev, majority '%s'\n",
 *            s.train.n, s.val.n, s.report.n, s.train.labels[maj]);
 *     up_task_splits_free(&s);
 *
 * Input files are hostile: every row is checked (column count, non-empty
 * text, known label, strict UTF-8, no NUL bytes, at most UP_DATASET_MAX_LINE
 * bytes a line and UP_DATASET_MAX_ROWS rows), and a failure is UP_ERR_FORMAT
 * with a message "file:line: what, expected and found".
 *
 * Common to the TSV formats: a UTF-8 byte order mark at the start of the file
 * is skipped; a line ends at '\n' with one '\r' before it dropped (CRLF files);
 * blank lines are skipped; fields are split at every tab and never
 * CSV-unquoted: quote characters are text, as the GLUE loaders read these files
 * (csv.reader with quoting=QUOTE_NONE). Text is kept byte for byte (SST-2's
 * trailing spaces included); a text that is empty or only ASCII whitespace is
 * an error.
 *
 * Layouts (labels in id order; "file" is what the label column holds):
 *   sst2   header `sentence label`                       negative(0) positive(1), file 0/1
 *   cola   no header: `source label original_label sentence`
 *                                                        unacceptable(0) acceptable(1), file 0/1
 *   mrpc   header `Quality #1 ID #2 ID #1 String #2 String` (pair)
 *                                                        not_equivalent(0) equivalent(1), file 0/1
 *   rte    `index sentence1 sentence2 label` (pair)      entailment not_entailment
 *   wnli   `index sentence1 sentence2 label` (pair)      not_entailment(0) entailment(1), file 0/1
 *          rte/wnli: the header is optional (GLUE train/dev have it, the
 *          val.tsv split of /work/shared/data has not): the first line is a
 *          header iff its first field is "index"; without one the columns are
 *          the four above.
 *   qnli   header `index question sentence label` (pair) entailment not_entailment
 *   qqp    header `id qid1 qid2 question1 question2 is_duplicate` (pair)
 *                                                        not_duplicate(0) duplicate(1), file 0/1
 *   mnli   header `index promptID pairID genre sentence1_binary_parse ...
 *          sentence1 sentence2 [label1 ..] gold_label` (pair); every row has
 *          as many columns as the header (train 12, dev 16)
 *                                                        contradiction entailment neutral
 *   trec   `COARSE:fine question text` a line; the label is the coarse class
 *                                                        ABBR DESC ENTY HUM LOC NUM
 *          The text is what follows the first space, trailing ASCII whitespace
 *          dropped. TREC.train has one byte that is not UTF-8 (0xF0 in line 66,
 *          "sister\xF0city"): in this format every byte that is not part of a
 *          well-formed UTF-8 sequence becomes a space ("sister city"), which is
 *          what the Hugging Face `trec` loader does with that byte; the count
 *          is logged at UP_LOG_INFO. (It is not Latin-1 'eth'.)
 *   tsv    header naming the columns `text`, `label` and optionally `text_b`,
 *          in any order, other columns ignored; labels are strings.
 *   jsonl  one JSON object a line: "text" (string), "text_b" (string, null or
 *          absent), "label" (string, or an integer k meaning label id k: names
 *          "0".."k" when the label space is built); other keys ignored; one
 *          file uses string or integer labels, not both.
 * For tsv and jsonl the labels are taken in order of first appearance in the
 * file when no label space is given (at most UP_DATASET_MAX_LABELS), and
 * either every example has a text_b or none has (pair).
 *
 * UP_FMT_AUTO decides by the file name, then the first line, in this order:
 * ".jsonl"/".json" -> jsonl; a header with `text` and `label` columns -> tsv;
 * a folder or file name of the path that names a task (SST-2/sst2, CoLA, MRPC,
 * RTE, WNLI, QNLI, QQP, MNLI, trec, "TREC.*"; case-insensitive, nearest folder
 * first) -> that task; the GLUE headers (`sentence label` -> sst2, `Quality ..`
 * -> mrpc, `index question` -> qnli, `id qid1` -> qqp, `index promptID` ->
 * mnli); four columns starting with "index" or a number -> rte or wnli by the
 * first row's label; a `COARSE:fine text` line -> trec; four columns with a 0/1
 * second field -> cola. Anything else fails and asks for an explicit format.
 */
#ifndef UP_TEXT_DATASET_H
#define UP_TEXT_DATASET_H

#include <stddef.h>
#include <stdint.h>
#include "unplug.h"

#define UP_DATASET_MAX_LINE (1u << 20)      /* bytes a line, newline excluded */
#define UP_DATASET_MAX_ROWS 50000000u       /* examples a file */
#define UP_DATASET_MAX_LABELS UP_MAX_LABELS /* distinct labels (tsv, jsonl) */

typedef struct {
    char *text;   /* NUL-terminated UTF-8 */
    char *text_b; /* NULL for single-sentence tasks; lives in text's allocation */
    int label;    /* 0..n_labels-1 */
} up_example;

struct up_dataset { /* up_dataset in unplug.h */
    char name[32];               /* task name, e.g. "sst2"; "tsv"/"jsonl" for generic files */
    char **labels;               /* (n_labels) label names in id order */
    int n_labels;
    up_example *ex;              /* (n) in file order */
    size_t n;
    int pair;                    /* 1 if examples have text_b */
};

typedef enum {
    UP_FMT_AUTO, UP_FMT_SST2, UP_FMT_COLA, UP_FMT_MRPC, UP_FMT_RTE, UP_FMT_WNLI,
    UP_FMT_QNLI, UP_FMT_QQP, UP_FMT_MNLI, UP_FMT_TREC, UP_FMT_TSV, UP_FMT_JSONL
} up_data_format;

/* "auto", "sst2", ... "tsv", "jsonl"; and back (UP_ERR_INVALID listing the names). */
const char *up_data_format_name(up_data_format f);
up_status up_data_format_from_name(const char *name, up_data_format *out);

/* Reads a file. label_space NULL: the labels are built from this file (fixed
 * for the GLUE and TREC formats); otherwise the result has label_space's labels
 * and ids, and a label outside it fails, naming the label and the known ones.
 * For the fixed formats label_space, when given, must have the format's labels.
 * On failure *out is empty ({0}). */
up_status up_dataset_read(const char *path, up_data_format fmt, const up_dataset *label_space,
                          up_dataset *out);

/* Limits of one parse; 0 fields mean the defaults above (tests lower them). */
typedef struct {
    size_t max_line, max_rows;
} up_dataset_limits;

/* The same from a buffer (need not be NUL-terminated): name is the file name
 * that messages show and UP_FMT_AUTO looks at. lim may be NULL. */
up_status up_dataset_parse(const char *name, const char *buf, size_t len, up_data_format fmt,
                           const up_dataset *label_space, const up_dataset_limits *lim,
                           up_dataset *out);

/* n rows in memory (up_dataset_from_rows in unplug.h): labels are names,
 * looked up in label_space or, without it, taken in order of first
 * appearance; texts are checked as file rows are (non-empty, UTF-8). */
up_status up_dataset_rows(const char *name, size_t n, const char *const *text, const char *const *text_b,
                          const char *const *label, const up_dataset *label_space, up_dataset *out);
/* Frees everything and leaves {0}; NULL and {0} are fine. */
void up_dataset_clear(up_dataset *d);

/* Moves a seeded random k = round(frac * n) examples (at least 1, at most
 * n-1; needs n >= 2 and 0 < frac < 1) from d into val, which gets d's name and
 * a copy of its labels. Deterministic: selection sampling (Knuth's Algorithm
 * S: example i is taken with probability (k - taken) / (n - i), every k-subset
 * equally likely) driven by SplitMix64 from seed, the same split for the same
 * seed, n and frac on every platform; both parts keep file order. Not
 * stratified: a class may be over- or under-represented in val. */
up_status up_dataset_carve(up_dataset *d, double frac, uint64_t seed, up_dataset *val);

/* A task's splits in data_dir as /work/shared/data/README.md lays them out:
 *   sst2 glue/SST-2  mrpc glue/MRPC  cola glue/CoLA  rte glue/RTE  wnli glue/WNLI
 *   qnli glue/QNLI   qqp glue/QQP    mnli glue/MNLI  trec trec
 * train = train.tsv (TREC.train); val = val.tsv if present (read with train's
 * labels), else up_dataset_carve(train, val_frac, seed) (val_carved = 1; always
 * for trec); report = dev.tsv (MNLI dev_matched.tsv, TREC TREC.test), read with
 * train's labels. val_frac only matters when carving. On failure *out is {0}.
 * All three datasets are named after the task. */
typedef struct {
    up_dataset train, val, report;
    int val_carved;
} up_task_splits;
up_status up_task_load(const char *task, const char *data_dir, double val_frac, uint64_t seed,
                       up_task_splits *out);
void up_task_splits_free(up_task_splits *s);

/* ---- metrics (n == 0 gives 0) ------------------------------------------- */

double up_accuracy(const int *pred, const int *gold, size_t n);
/* F1 of the class `positive` (MRPC: 1); 0 when it is neither predicted nor present. */
double up_f1_binary(const int *pred, const int *gold, size_t n, int positive);
/* Matthews correlation of binary labels (1 positive, anything else negative),
 * as sklearn's matthews_corrcoef: 0 when any marginal is empty (constant
 * predictions or gold). */
double up_matthews(const int *pred, const int *gold, size_t n);
/* Most frequent label id (the smallest on ties); -1 for an empty dataset. */
int up_majority_label(const up_dataset *d);

#endif
