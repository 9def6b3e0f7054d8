/*
 * test_dataset.c: task-data readers: every format from handmade files, every
 * rejection with its message, format detection, label spaces, the seeded
 * carve-out, the metrics against hand-computed values, and (when
 * <source dir>/../shared/data exists) the real task files with their exact
 * row counts and majority-class baselines.
 *
 *     test_dataset <source dir>
 *
 * Exit: 0 all passed, 1 a check failed, 77 (CTest skip) the handmade checks
 * passed but the real data is absent.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/base.h"
#include "test.h"
#include "text/dataset.h"

#define CHECK_ST(expr, code, ...) do { up_status s2_ = (expr); \
    CHECK_MSG(s2_ == (code), "status %s, expected %s (%s)", up_status_name(s2_), up_status_name(code), up_errmsg()); \
    CHECK_FAIL(s2_, __VA_ARGS__); } while (0)

static char g_tmp[] = "/tmp/up_test_dataset_XXXXXX";
static char g_path[4096];

/* Writes len bytes to g_tmp/name; returns the path (static buffer). */
static const char *put_n(const char *name, const char *data, size_t len) {
    snprintf(g_path, sizeof g_path, "%s/%s", g_tmp, name);
    char *slash = strrchr(g_path, '/'); /* create sub-folders of the name */
    for (char *p = g_path + strlen(g_tmp) + 1; p <= slash; p++)
        if (*p == '/') {
            *p = 0;
            mkdir(g_path, 0700);
            *p = '/';
        }
    FILE *f = fopen(g_path, "wb");
    if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
        perror(g_path);
        exit(1);
    }
    return g_path;
}
static const char *put(const char *name, const char *text) { return put_n(name, text, strlen(text)); }

static up_dataset g_d;

/* Writes the file and loads it into g_d (freed first). */
static up_status load(const char *name, const char *text, up_data_format fmt, const up_dataset *space) {
    up_dataset_clear(&g_d);
    return up_dataset_read(put(name, text), fmt, space, &g_d);
}

static int ex_is(const up_dataset *d, size_t i, const char *text, const char *text_b, int label) {
    if (i >= d->n) return 0;
    const up_example *e = &d->ex[i];
    if (strcmp(e->text, text) != 0 || e->label != label) return 0;
    if (!text_b) return e->text_b == NULL;
    return e->text_b && strcmp(e->text_b, text_b) == 0;
}

static int labels_are(const up_dataset *d, int n, const char *const *names) {
    if (d->n_labels != n) return 0;
    for (int i = 0; i < n; i++)
        if (strcmp(d->labels[i], names[i]) != 0) return 0;
    return 1;
}

/* ---- the GLUE layouts --------------------------------------------------- */

static void test_sst2(void) {
    /* trailing spaces are kept; quotes are text; CRLF and blank lines */
    CHECK_OK(load("sst2.tsv", "sentence\tlabel\r\nit 's a charming journey . \t1\r\n\r\n\"bleak\" and 'desperate'\t0\r\n",
                  UP_FMT_SST2, NULL));
    CHECK(g_d.n == 2 && !g_d.pair && strcmp(g_d.name, "sst2") == 0);
    CHECK(labels_are(&g_d, 2, (const char *[]){"negative", "positive"}));
    CHECK(ex_is(&g_d, 0, "it 's a charming journey . ", NULL, 1));
    CHECK(ex_is(&g_d, 1, "\"bleak\" and 'desperate'", NULL, 0));
    /* no final newline */
    CHECK_OK(load("sst2b.tsv", "sentence\tlabel\nok\t0", UP_FMT_SST2, NULL));
    CHECK(g_d.n == 1 && ex_is(&g_d, 0, "ok", NULL, 0));
    /* labels are the file's 0/1, not names */
    CHECK_ST(load("sst2c.tsv", "sentence\tlabel\nfine\tpositive\n", UP_FMT_SST2, NULL), UP_ERR_FORMAT,
             "sst2c.tsv:2: unknown label 'positive'", "0 (negative), 1 (positive)");
}

static void test_cola(void) {
    CHECK_OK(load("cola.tsv", "gj04\t1\t\tThe sailors rode the breeze clear of the rocks.\n"
                              "gj04\t0\t*\tThe car honked down the road.\n", UP_FMT_COLA, NULL));
    CHECK(g_d.n == 2 && !g_d.pair && strcmp(g_d.name, "cola") == 0);
    CHECK(labels_are(&g_d, 2, (const char *[]){"unacceptable", "acceptable"}));
    CHECK(ex_is(&g_d, 0, "The sailors rode the breeze clear of the rocks.", NULL, 1));
    CHECK(ex_is(&g_d, 1, "The car honked down the road.", NULL, 0));
    CHECK_ST(load("cola2.tsv", "gj04\t1\tThe car.\n", UP_FMT_COLA, NULL), UP_ERR_FORMAT,
             "cola2.tsv:1: expected 4 tab-separated columns, found 3");
}

static void test_mrpc(void) {
    CHECK_OK(load("mrpc.tsv", "\xEF\xBB\xBFQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
                              "1\t702876\t702977\tAmrozi accused his brother, \"the witness\".\t\"The witness\", he said.\n"
                              "0\t2108705\t2108831\tYucaipa owned it.\tYucaipa bought it.\n", UP_FMT_MRPC, NULL));
    CHECK(g_d.n == 2 && g_d.pair && strcmp(g_d.name, "mrpc") == 0);
    CHECK(labels_are(&g_d, 2, (const char *[]){"not_equivalent", "equivalent"}));
    CHECK(ex_is(&g_d, 0, "Amrozi accused his brother, \"the witness\".", "\"The witness\", he said.", 1));
    CHECK(ex_is(&g_d, 1, "Yucaipa owned it.", "Yucaipa bought it.", 0));
    /* the header names the columns; without the BOM too */
    CHECK_OK(load("mrpc2.tsv", "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n1\t1\t2\ta\tb\n", UP_FMT_MRPC, NULL));
    CHECK(ex_is(&g_d, 0, "a", "b", 1));
    CHECK_ST(load("mrpc3.tsv", "\xEF\xBB\xBFQuality\t#1 ID\t#2 ID\t#1 String\n1\t1\t2\ta\n", UP_FMT_MRPC, NULL),
             UP_ERR_FORMAT, "mrpc3.tsv:1: missing column '#2 String'", "'Quality'");
}

static void test_rte_wnli(void) {
    const char *hdr = "index\tsentence1\tsentence2\tlabel\n";
    char buf[512];
    snprintf(buf, sizeof buf, "%s0\tNo weapons found.\tWeapons found.\tnot_entailment\n1\tA b.\tA.\tentailment\n", hdr);
    CHECK_OK(load("rte.tsv", buf, UP_FMT_RTE, NULL));
    CHECK(g_d.n == 2 && g_d.pair && strcmp(g_d.name, "rte") == 0);
    CHECK(labels_are(&g_d, 2, (const char *[]){"entailment", "not_entailment"}));
    CHECK(ex_is(&g_d, 0, "No weapons found.", "Weapons found.", 1));
    CHECK(ex_is(&g_d, 1, "A b.", "A.", 0));
    /* val.tsv: no header, detected by the first field not being "index" */
    CHECK_OK(load("rte_val.tsv", "2\tHerceptin was approved.\tIt was.\tentailment\n", UP_FMT_RTE, NULL));
    CHECK(g_d.n == 1 && ex_is(&g_d, 0, "Herceptin was approved.", "It was.", 0));
    CHECK_ST(load("rte3.tsv", "2\ta\tb\tneutral\n", UP_FMT_RTE, NULL), UP_ERR_FORMAT,
             "rte3.tsv:1: unknown label 'neutral'", "'entailment', 'not_entailment'");
    /* a header in another column order is read by name */
    CHECK_OK(load("rte4.tsv", "index\tlabel\tsentence2\tsentence1\n0\tentailment\tB.\tA.\n", UP_FMT_RTE, NULL));
    CHECK(ex_is(&g_d, 0, "A.", "B.", 0));

    snprintf(buf, sizeof buf, "%s1\tJohn is short.\tJohn is so short.\t1\n3\tSteve follows Fred.\tFred follows.\t0\n",
             hdr);
    CHECK_OK(load("wnli.tsv", buf, UP_FMT_WNLI, NULL));
    CHECK(g_d.n == 2 && g_d.pair && strcmp(g_d.name, "wnli") == 0);
    CHECK(labels_are(&g_d, 2, (const char *[]){"not_entailment", "entailment"}));
    CHECK(ex_is(&g_d, 0, "John is short.", "John is so short.", 1));
    CHECK_OK(load("wnli_val.tsv", "0\tI stuck a pin.\tIt had a hole.\t1\n", UP_FMT_WNLI, NULL));
    CHECK(ex_is(&g_d, 0, "I stuck a pin.", "It had a hole.", 1));
}

static void test_qnli_qqp_mnli(void) {
    CHECK_OK(load("qnli.tsv", "index\tquestion\tsentence\tlabel\n0\tWhen?\tIn 1990.\tentailment\n"
                              "1\tWho?\tNobody knows.\tnot_entailment\n", UP_FMT_QNLI, NULL));
    CHECK(g_d.n == 2 && g_d.pair && strcmp(g_d.name, "qnli") == 0);
    CHECK(ex_is(&g_d, 0, "When?", "In 1990.", 0) && ex_is(&g_d, 1, "Who?", "Nobody knows.", 1));

    CHECK_OK(load("qqp.tsv", "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n"
                             "133273\t213221\t213222\tHow is the life?\tHow is life?\t1\n"
                             "402555\t536040\t536041\tWhy?\tWhat?\t0\n", UP_FMT_QQP, NULL));
    CHECK(g_d.n == 2 && g_d.pair && labels_are(&g_d, 2, (const char *[]){"not_duplicate", "duplicate"}));
    CHECK(ex_is(&g_d, 0, "How is the life?", "How is life?", 1) && ex_is(&g_d, 1, "Why?", "What?", 0));

    const char *mh = "index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\t"
                     "sentence1_parse\tsentence2_parse\tsentence1\tsentence2";
    char buf[1024];
    snprintf(buf, sizeof buf, "%s\tlabel1\tgold_label\n0\t31193\t31193n\tgov\t( a )\t( b )\t(ROOT a)\t(ROOT b)\t"
             "Conceptually cream skimming.\tProduct and geography.\tneutral\tneutral\n"
             "1\t1\t1e\tfiction\tx\ty\tx\ty\tHe went.\tHe left.\tentailment\tentailment\n", mh);
    CHECK_OK(load("mnli_train.tsv", buf, UP_FMT_MNLI, NULL));
    CHECK(g_d.n == 2 && g_d.pair && labels_are(&g_d, 3, (const char *[]){"contradiction", "entailment", "neutral"}));
    CHECK(ex_is(&g_d, 0, "Conceptually cream skimming.", "Product and geography.", 2));
    CHECK(ex_is(&g_d, 1, "He went.", "He left.", 1));
    /* dev: five annotator labels, gold last */
    snprintf(buf, sizeof buf, "%s\tlabel1\tlabel2\tlabel3\tlabel4\tlabel5\tgold_label\n"
             "0\t1\t1c\tslate\tx\ty\tx\ty\tThe new rights.\tEveryone loves.\tneutral\tcontradiction\tcontradiction\t"
             "contradiction\tcontradiction\tcontradiction\n", mh);
    CHECK_OK(load("mnli_dev.tsv", buf, UP_FMT_MNLI, NULL));
    CHECK(g_d.n == 1 && ex_is(&g_d, 0, "The new rights.", "Everyone loves.", 0));
    snprintf(buf, sizeof buf, "%s\tlabel1\tgold_label\n0\t1\t1\tg\tx\ty\tx\ty\ta\tb\tneutral\n", mh);
    CHECK_ST(load("mnli_bad.tsv", buf, UP_FMT_MNLI, NULL), UP_ERR_FORMAT,
             "mnli_bad.tsv:2: expected 12 tab-separated columns, found 11");
}

static char g_log[4096];
static void capture(int level, const char *msg, void *user) {
    (void)level, (void)user;
    size_t n = strlen(g_log);
    snprintf(g_log + n, sizeof g_log - n, "%s\n", msg);
}

static void test_trec(void) {
    g_log[0] = 0;
    up_set_log(capture, NULL, UP_LOG_INFO);
    /* the one non-UTF-8 byte of TREC.train (0xF0) becomes a space; trailing space and CR dropped */
    CHECK_OK(load("TREC.train", "DESC:manner How did serfdom develop ?\n"
                                "LOC:city Which city has the oldest relationship as a sister\xF0" "city with LA ?  \r\n"
                                "NUM:dist How far is it from Denver to Aspen ?\n"
                                "ABBR:exp What is caf\xC3\xA9 short for ?\n", UP_FMT_TREC, NULL));
    up_set_log(NULL, NULL, UP_LOG_WARN);
    CHECK(g_d.n == 4 && !g_d.pair && strcmp(g_d.name, "trec") == 0);
    CHECK(labels_are(&g_d, 6, (const char *[]){"ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"}));
    CHECK(ex_is(&g_d, 0, "How did serfdom develop ?", NULL, 1));
    CHECK(ex_is(&g_d, 1, "Which city has the oldest relationship as a sister city with LA ?", NULL, 4));
    CHECK(ex_is(&g_d, 2, "How far is it from Denver to Aspen ?", NULL, 5));
    CHECK(ex_is(&g_d, 3, "What is caf\xC3\xA9 short for ?", NULL, 0));
    CHECK_MSG(strstr(g_log, "1 byte(s) not in UTF-8 replaced by spaces (first on line 2)"), "log: %s", g_log);
    CHECK_ST(load("t1.txt", "COLOR:x What ?\n", UP_FMT_TREC, NULL), UP_ERR_FORMAT, "t1.txt:1: unknown label 'COLOR'",
             "'ABBR', 'DESC', 'ENTY', 'HUM', 'LOC', 'NUM'");
    CHECK_ST(load("t2.txt", "DESC:def\n", UP_FMT_TREC, NULL), UP_ERR_FORMAT, "t2.txt:1:", "found no space");
    CHECK_ST(load("t3.txt", "DESC What is it ?\n", UP_FMT_TREC, NULL), UP_ERR_FORMAT, "t3.txt:1: label 'DESC' is not "
             "COARSE:fine");
    CHECK_ST(load("t4.txt", "DESC: What is it ?\n", UP_FMT_TREC, NULL), UP_ERR_FORMAT, "label 'DESC:' is not");
    CHECK_ST(load("t5.txt", "DESC:def    \n", UP_FMT_TREC, NULL), UP_ERR_FORMAT, "found no space");
    CHECK_ST(load("t6.txt", "DESC:def  \t \n", UP_FMT_TREC, NULL), UP_ERR_FORMAT, "t6.txt:1:");
    static const char nul[] = "DESC:def what\0is\n";
    up_dataset_clear(&g_d);
    CHECK_ST(up_dataset_read(put_n("t7.txt", nul, sizeof nul - 1), UP_FMT_TREC, NULL, &g_d), UP_ERR_FORMAT,
             "t7.txt:1: NUL byte at byte 14");
}

/* ---- generic TSV and JSONL ---------------------------------------------- */

static void test_generic_tsv(void) {
    CHECK_OK(load("g.tsv", "id\tlabel\ttext\n1\tpos\tgreat\n2\tneg\tawful\n3\tpos\tfine\n4\tmeh\tok\n", UP_FMT_TSV,
                  NULL));
    CHECK(g_d.n == 4 && !g_d.pair && strcmp(g_d.name, "tsv") == 0);
    CHECK(labels_are(&g_d, 3, (const char *[]){"pos", "neg", "meh"}));
    CHECK(ex_is(&g_d, 0, "great", NULL, 0) && ex_is(&g_d, 1, "awful", NULL, 1) && ex_is(&g_d, 3, "ok", NULL, 2));
    up_dataset space = g_d;
    g_d = (up_dataset){0};
    /* with the label space: its ids, whatever the order here */
    CHECK_OK(load("g_dev.tsv", "text\tlabel\nbad\tneg\nbest\tpos\n", UP_FMT_TSV, &space));
    CHECK(labels_are(&g_d, 3, (const char *[]){"pos", "neg", "meh"}));
    CHECK(ex_is(&g_d, 0, "bad", NULL, 1) && ex_is(&g_d, 1, "best", NULL, 0));
    CHECK_ST(load("g_dev2.tsv", "text\tlabel\nbad\tneg\nhuh\tneutral\n", UP_FMT_TSV, &space), UP_ERR_FORMAT,
             "g_dev2.tsv:3: unknown label 'neutral'", "'pos', 'neg', 'meh'");
    /* label space of a fixed format must match */
    CHECK_ST(load("sst_space.tsv", "sentence\tlabel\na\t1\n", UP_FMT_SST2, &space), UP_ERR_INVALID,
             "not the sst2 labels");
    up_dataset_clear(&space);
    /* pairs */
    CHECK_OK(load("gp.tsv", "text_b\ttext\tlabel\nsecond\tfirst\tyes\n", UP_FMT_TSV, NULL));
    CHECK(g_d.pair && ex_is(&g_d, 0, "first", "second", 0));
    CHECK_ST(load("gp2.tsv", "text\ttext_b\tlabel\na\t \tyes\n", UP_FMT_TSV, NULL), UP_ERR_FORMAT,
             "gp2.tsv:2: empty text in column 'text_b'");
    CHECK_ST(load("gm.tsv", "sentence\tlabel\na\tb\n", UP_FMT_TSV, NULL), UP_ERR_FORMAT,
             "gm.tsv:1: missing column 'text'", "found 'sentence', 'label'");
    CHECK_ST(load("gm2.tsv", "text\tfoo\na\tb\n", UP_FMT_TSV, NULL), UP_ERR_FORMAT, "missing column 'label'");
    CHECK_ST(load("gd.tsv", "text\tlabel\ttext\na\tb\tc\n", UP_FMT_TSV, NULL), UP_ERR_FORMAT,
             "gd.tsv:1: column 'text' appears twice", "columns 1 and 3");
    CHECK_ST(load("ge.tsv", "text\tlabel\na\t\n", UP_FMT_TSV, NULL), UP_ERR_FORMAT, "ge.tsv:2: empty label");
    /* more than UP_DATASET_MAX_LABELS distinct labels */
    char big[8192] = "text\tlabel\n";
    for (int i = 0; i <= UP_DATASET_MAX_LABELS; i++)
        snprintf(big + strlen(big), sizeof big - strlen(big), "t\tl%d\n", i);
    CHECK_ST(load("gl.tsv", big, UP_FMT_TSV, NULL), UP_ERR_FORMAT, "gl.tsv:66: label 'l64' would be label number 65",
             "at most 64 distinct labels");
}

static void test_jsonl(void) {
    CHECK_OK(load("j.jsonl", "{\"text\": \"good \\\"film\\\"\", \"label\": \"pos\", \"id\": 7}\n"
                             "\n"
                             "{\"label\": \"neg\", \"text\": \"caf\\u00e9 \\t tab\"}\n"
                             "{\"text\": \"x\", \"text_b\": null, \"label\": \"pos\"}\n", UP_FMT_JSONL, NULL));
    CHECK(g_d.n == 3 && !g_d.pair && strcmp(g_d.name, "jsonl") == 0);
    CHECK(labels_are(&g_d, 2, (const char *[]){"pos", "neg"}));
    CHECK(ex_is(&g_d, 0, "good \"film\"", NULL, 0) && ex_is(&g_d, 1, "caf\xC3\xA9 \t tab", NULL, 1));
    /* integer labels are ids */
    CHECK_OK(load("ji.jsonl", "{\"text\": \"a\", \"text_b\": \"b\", \"label\": 2}\n"
                              "{\"text\": \"c\", \"text_b\": \"d\", \"label\": 0}\n", UP_FMT_JSONL, NULL));
    CHECK(g_d.n == 2 && g_d.pair && labels_are(&g_d, 3, (const char *[]){"0", "1", "2"}));
    CHECK(ex_is(&g_d, 0, "a", "b", 2) && ex_is(&g_d, 1, "c", "d", 0));
    up_dataset space = g_d;
    g_d = (up_dataset){0};
    CHECK_OK(load("ji2.jsonl", "{\"text\": \"a\", \"text_b\": \"b\", \"label\": 1}\n", UP_FMT_JSONL, &space));
    CHECK(g_d.n_labels == 3 && ex_is(&g_d, 0, "a", "b", 1));
    CHECK_ST(load("ji3.jsonl", "{\"text\": \"a\", \"text_b\": \"b\", \"label\": 3}\n", UP_FMT_JSONL, &space),
             UP_ERR_FORMAT, "ji3.jsonl:1: unknown label 3", "0..2", "'0', '1', '2'");
    CHECK_ST(load("ji4.jsonl", "{\"text\": \"a\", \"text_b\": \"b\", \"label\": \"7\"}\n", UP_FMT_JSONL, &space),
             UP_ERR_FORMAT, "ji4.jsonl:1: unknown label '7'", "'0', '1', '2'");
    up_dataset_clear(&space);

    CHECK_ST(load("jb1.jsonl", "{\"text\": \"a\", \"label\": 1}\n{\"text\": \"b\", \"label\": \"x\"}\n", UP_FMT_JSONL,
                  NULL), UP_ERR_FORMAT, "jb1.jsonl:2: label is a string but earlier labels are integers");
    CHECK_ST(load("jb2.jsonl", "{\"text\": \"a\", \"label\": 1.5}\n", UP_FMT_JSONL, NULL), UP_ERR_FORMAT,
             "jb2.jsonl:1: field 'label' must be a string or an integer");
    CHECK_ST(load("jb3.jsonl", "{\"text\": \"a\", \"label\": -1}\n", UP_FMT_JSONL, NULL), UP_ERR_FORMAT,
             "label -1 out of range: expected 0..63");
    CHECK_ST(load("jb4.jsonl", "{\"text\": \"a\", \"label\": \"x\"}\n{\"text\": \"b\"\n", UP_FMT_JSONL, NULL),
             UP_ERR_FORMAT, "jb4.jsonl:2: invalid JSON");
    CHECK_ST(load("jb5.jsonl", "[\"a\", 1]\n", UP_FMT_JSONL, NULL), UP_ERR_FORMAT, "jb5.jsonl:1: expected a JSON object");
    CHECK_ST(load("jb6.jsonl", "{\"label\": \"x\"}\n", UP_FMT_JSONL, NULL), UP_ERR_FORMAT,
             "jb6.jsonl:1: missing field 'text'");
    CHECK_ST(load("jb7.jsonl", "{\"text\": \"a\"}\n", UP_FMT_JSONL, NULL), UP_ERR_FORMAT,
             "jb7.jsonl:1: missing field 'label'");
    CHECK_ST(load("jb8.jsonl", "{\"text\": 5, \"label\": \"x\"}\n", UP_FMT_JSONL, NULL), UP_ERR_FORMAT,
             "jb8.jsonl:1: field 'text' must be a string");
    CHECK_ST(load("jb9.jsonl", "{\"text\": \"  \", \"label\": \"x\"}\n", UP_FMT_JSONL, NULL), UP_ERR_FORMAT,
             "jb9.jsonl:1: empty text in column 'text'");
    CHECK_ST(load("jba.jsonl", "{\"text\": \"a\", \"text\": \"b\", \"label\": \"x\"}\n", UP_FMT_JSONL, NULL),
             UP_ERR_FORMAT, "jba.jsonl:1: invalid JSON", "duplicate");
    CHECK_ST(load("jbb.jsonl", "{\"text\": \"a\", \"label\": \"x\"}\n{\"text\": \"a\", \"text_b\": \"c\", \"label\": "
                  "\"x\"}\n", UP_FMT_JSONL, NULL), UP_ERR_FORMAT,
             "jbb.jsonl:2: has 'text_b' but the first example (line 1) has none");
    CHECK_ST(load("jbc.jsonl", "{\"text\": \"a\\u0000b\", \"label\": \"x\"}\n", UP_FMT_JSONL, NULL), UP_ERR_FORMAT,
             "jbc.jsonl:1: invalid JSON");
    CHECK_ST(load("jbd.jsonl", "{\"text\": \"a\", \"text_b\": 3, \"label\": \"x\"}\n", UP_FMT_JSONL, NULL),
             UP_ERR_FORMAT, "field 'text_b' must be a string");
}

/* ---- errors common to the formats ---------------------------------------- */

static void test_errors(void) {
    /* wrong column count: expected vs found */
    CHECK_ST(load("c.tsv", "sentence\tlabel\na\t1\nb\t0\textra\n", UP_FMT_SST2, NULL), UP_ERR_FORMAT,
             "c.tsv:3: expected 2 tab-separated columns, found 3");
    CHECK_ST(load("c2.tsv", "sentence\tlabel\nno tab here\n", UP_FMT_SST2, NULL), UP_ERR_FORMAT,
             "c2.tsv:2: expected 2 tab-separated columns, found 1");
    CHECK_ST(load("c3.tsv", "index\tsentence1\tsentence2\tlabel\n0\ta\tb\tentailment\t\t\t\t\t\n", UP_FMT_RTE, NULL),
             UP_ERR_FORMAT, "c3.tsv:2: expected 4 tab-separated columns, found 9");
    /* a missing column, named */
    CHECK_ST(load("m.tsv", "index\tsentence\n0\tgood\n", UP_FMT_SST2, NULL), UP_ERR_FORMAT,
             "m.tsv:1: missing column 'label'", "found 'index', 'sentence'");
    CHECK_ST(load("m2.tsv", "index\tsentence1\tlabel\n0\ta\tentailment\n", UP_FMT_RTE, NULL), UP_ERR_FORMAT,
             "missing column 'sentence2'");
    /* empty files and files with no examples */
    CHECK_ST(load("e.tsv", "", UP_FMT_SST2, NULL), UP_ERR_FORMAT, "e.tsv", "empty");
    CHECK_ST(load("e2.tsv", "sentence\tlabel\n", UP_FMT_SST2, NULL), UP_ERR_FORMAT, "e2.tsv: no examples",
             "only a header");
    CHECK_ST(load("e3.tsv", "\n\r\n\n", UP_FMT_COLA, NULL), UP_ERR_FORMAT, "e3.tsv: no examples");
    CHECK_ST(load("e4.tsv", "\xEF\xBB\xBF", UP_FMT_TSV, NULL), UP_ERR_FORMAT, "e4.tsv: no examples");
    CHECK_ST(load("e5.jsonl", "\n\n", UP_FMT_JSONL, NULL), UP_ERR_FORMAT, "e5.jsonl: no examples");
    CHECK_ST(load("e6.txt", "", UP_FMT_AUTO, NULL), UP_ERR_FORMAT, "e6.txt", "empty");
    up_dataset d;
    CHECK_ST(up_dataset_parse("e7.txt", "", 0, UP_FMT_AUTO, NULL, NULL, &d), UP_ERR_FORMAT, "e7.txt: no examples");
    CHECK_ST(up_dataset_read("/nonexistent/x.tsv", UP_FMT_SST2, NULL, &d), UP_ERR_IO, "/nonexistent/x.tsv",
             "cannot open");
    CHECK(d.n == 0 && d.ex == NULL && d.labels == NULL);
    /* unknown labels */
    CHECK_ST(load("l.tsv", "sentence\tlabel\na\t1\nb\t2\n", UP_FMT_SST2, NULL), UP_ERR_FORMAT,
             "l.tsv:3: unknown label '2'", "known labels: 0 (negative), 1 (positive)");
    CHECK_ST(load("l2.tsv", "sentence\tlabel\na\t1 \n", UP_FMT_SST2, NULL), UP_ERR_FORMAT, "unknown label '1 '");
    /* empty text */
    CHECK_ST(load("t.tsv", "sentence\tlabel\na\t1\n\t0\n", UP_FMT_SST2, NULL), UP_ERR_FORMAT,
             "t.tsv:3: empty text in column 'sentence'");
    CHECK_ST(load("t2.tsv", "0\ta\t \tentailment\n", UP_FMT_RTE, NULL), UP_ERR_FORMAT,
             "t2.tsv:1: empty text in column 'sentence2'");
    /* invalid UTF-8, with line and byte */
    CHECK_ST(load("u.tsv", "sentence\tlabel\nfine\t1\ncaf\xE9\t0\n", UP_FMT_SST2, NULL), UP_ERR_FORMAT,
             "u.tsv:3: invalid UTF-8 at byte 4 of the line (0xE9)");
    CHECK_ST(load("u2.tsv", "sentence\tlabel\n\xED\xA0\x80 surrogate\t1\n", UP_FMT_SST2, NULL), UP_ERR_FORMAT,
             "u2.tsv:2: invalid UTF-8 at byte 1");
    CHECK_ST(load("u3.tsv", "sentence\tlabel\n\xC0\xAF overlong\t1\n", UP_FMT_SST2, NULL), UP_ERR_FORMAT,
             "u3.tsv:2: invalid UTF-8");
    CHECK_ST(load("u4.jsonl", "{\"text\": \"\xFF\", \"label\": \"x\"}\n", UP_FMT_JSONL, NULL), UP_ERR_FORMAT,
             "u4.jsonl:1: invalid UTF-8 at byte 11");
    CHECK_ST(load("u5.tsv", "text\tlabel\nab\xF0\x9F\x98\t1\n", UP_FMT_TSV, NULL), UP_ERR_FORMAT,
             "u5.tsv:2: invalid UTF-8 at byte 3");
    /* NUL bytes */
    static const char nul[] = "sentence\tlabel\na\0b\t1\n";
    up_dataset_clear(&g_d);
    CHECK_ST(up_dataset_read(put_n("n.tsv", nul, sizeof nul - 1), UP_FMT_SST2, NULL, &g_d), UP_ERR_FORMAT,
             "n.tsv:2: NUL byte at byte 2");
    /* lines over 1 MB: exactly 1 MiB passes, one byte more fails */
    size_t big = UP_DATASET_MAX_LINE;
    char *buf = malloc(big + 64);
    memcpy(buf, "text\tlabel\n", 11);
    memset(buf + 11, 'a', big - 2);
    memcpy(buf + 11 + big - 2, "\tx\n", 4);
    up_dataset_clear(&g_d);
    CHECK_OK(up_dataset_read(put_n("big.tsv", buf, strlen(buf)), UP_FMT_TSV, NULL, &g_d));
    CHECK(g_d.n == 1 && strlen(g_d.ex[0].text) == big - 2);
    memset(buf + 11, 'a', big - 1);
    memcpy(buf + 11 + big - 1, "\tx\r\n", 5);
    up_dataset_clear(&g_d);
    CHECK_ST(up_dataset_read(put_n("big2.tsv", buf, strlen(buf)), UP_FMT_TSV, NULL, &g_d), UP_ERR_FORMAT,
             "big2.tsv:2: line is 1048577 bytes long, expected at most 1048576");
    free(buf);
    /* more than the row limit (50 million by default; lowered here) */
    const char *rows = "text\tlabel\na\tx\nb\ty\nc\tx\n";
    up_dataset_limits lim = {0, 3};
    CHECK_OK(up_dataset_parse("rows.tsv", rows, strlen(rows), UP_FMT_TSV, NULL, &lim, &d));
    CHECK(d.n == 3);
    up_dataset_clear(&d);
    lim.max_rows = 2;
    CHECK_ST(up_dataset_parse("rows.tsv", rows, strlen(rows), UP_FMT_TSV, NULL, &lim, &d), UP_ERR_FORMAT,
             "rows.tsv:4: more than 2 rows");
    CHECK(d.n == 0 && d.ex == NULL);
    lim = (up_dataset_limits){8, 0};
    CHECK_ST(up_dataset_parse("short.tsv", rows, strlen(rows), UP_FMT_TSV, NULL, &lim, &d), UP_ERR_FORMAT,
             "short.tsv:1: line is 10 bytes long, expected at most 8");
    CHECK(UP_DATASET_MAX_ROWS == 50000000u && UP_DATASET_MAX_LINE == 1048576u);
    /* bad arguments */
    CHECK_ST(up_dataset_parse("x", "a", 1, (up_data_format)99, NULL, NULL, &d), UP_ERR_INVALID, "unknown data format");
    up_data_format f;
    CHECK_ST(up_data_format_from_name("csv", &f), UP_ERR_INVALID, "unknown data format 'csv'", "jsonl");
    CHECK_OK(up_data_format_from_name("MRPC", &f));
    CHECK(f == UP_FMT_MRPC && strcmp(up_data_format_name(UP_FMT_JSONL), "jsonl") == 0);
    up_dataset_clear(NULL);
    up_dataset_clear(&d);
}

static void test_auto(void) {
    struct { const char *name, *text; up_data_format want; } cases[] = {
        {"a.jsonl", "{\"text\": \"a\", \"label\": 1}\n", UP_FMT_JSONL},
        {"x/SST-2/train.tsv", "sentence\tlabel\na\t1\n", UP_FMT_SST2},
        {"plain.tsv", "sentence\tlabel\na\t1\n", UP_FMT_SST2},
        {"CoLA/dev.tsv", "gj04\t1\t\tA b.\n", UP_FMT_COLA},
        {"cola_like.tsv", "gj04\t0\t*\tA b.\n", UP_FMT_COLA},
        {"m.tsv", "\xEF\xBB\xBFQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\n1\t1\t2\ta\tb\n", UP_FMT_MRPC},
        {"RTE/val.tsv", "2\ta\tb\tentailment\n", UP_FMT_RTE},
        {"WNLI/val.tsv", "2\ta\tb\t1\n", UP_FMT_WNLI},
        {"r.tsv", "index\tsentence1\tsentence2\tlabel\n0\ta\tb\tnot_entailment\n", UP_FMT_RTE},
        {"w.tsv", "index\tsentence1\tsentence2\tlabel\n0\ta\tb\t0\n", UP_FMT_WNLI},
        {"w2.tsv", "7\ta\tb\t1\n", UP_FMT_WNLI},
        {"q.tsv", "index\tquestion\tsentence\tlabel\n0\ta\tb\tentailment\n", UP_FMT_QNLI},
        {"qq.tsv", "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n0\t1\t2\ta\tb\t1\n", UP_FMT_QQP},
        {"mn.tsv", "index\tpromptID\tpairID\tgenre\ta\tb\tc\td\tsentence1\tsentence2\tlabel1\tgold_label\n"
                   "0\t1\t2\tg\ta\tb\tc\td\tx\ty\tneutral\tneutral\n", UP_FMT_MNLI},
        {"trec/TREC.test", "NUM:dist How far ?\n", UP_FMT_TREC},
        {"questions.txt", "HUM:desc Who was Galileo ?\n", UP_FMT_TREC},
        {"RTE/mine.tsv", "label\ttext\npos\tgood\n", UP_FMT_TSV}, /* a generic header wins over the folder */
        {"g.tsv", "x\ttext\tlabel\n1\ta\tb\n", UP_FMT_TSV},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        up_status st = load(cases[i].name, cases[i].text, UP_FMT_AUTO, NULL);
        CHECK_MSG(st == UP_OK && strcmp(g_d.name, up_data_format_name(cases[i].want)) == 0 && g_d.n == 1,
                  "%s: %s, format %s, expected %s", cases[i].name, up_errmsg(), g_d.name,
                  up_data_format_name(cases[i].want));
    }
    CHECK_ST(load("what.tsv", "a\tb\tc\n", UP_FMT_AUTO, NULL), UP_ERR_FORMAT,
             "what.tsv: cannot tell the data format", "'a', 'b', 'c'", "give one of");
    CHECK_ST(load("rw.tsv", "index\tsentence1\tsentence2\tlabel\n0\ta\tb\tmaybe\n", UP_FMT_AUTO, NULL), UP_ERR_FORMAT,
             "rw.tsv:2: cannot tell RTE from WNLI by the label 'maybe'");
    CHECK_ST(load("rw2.tsv", "index\tsentence1\tsentence2\tlabel\n", UP_FMT_AUTO, NULL), UP_ERR_FORMAT,
             "rw2.tsv: no examples");
}

/* ---- carve-out ------------------------------------------------------------ */

static void make_numbered(up_dataset *d, size_t n) {
    size_t cap = n * 16 + 32;
    char *buf = malloc(cap), *p = buf;
    p += sprintf(p, "text\tlabel\n");
    for (size_t i = 0; i < n; i++) p += sprintf(p, "%zu\t%s\n", i, i % 3 ? "a" : "b");
    CHECK_OK(up_dataset_parse("num.tsv", buf, (size_t)(p - buf), UP_FMT_TSV, NULL, NULL, d));
    free(buf);
}

static void test_carve(void) {
    const size_t n = 1000;
    up_dataset a, av, b, bv, c, cv;
    make_numbered(&a, n);
    make_numbered(&b, n);
    make_numbered(&c, n);
    CHECK_OK(up_dataset_carve(&a, 0.1, 42, &av));
    CHECK_OK(up_dataset_carve(&b, 0.1, 42, &bv));
    CHECK_OK(up_dataset_carve(&c, 0.1, 43, &cv));
    CHECK(av.n == 100 && a.n == 900 && cv.n == 100);
    CHECK(av.n_labels == 2 && strcmp(av.labels[0], "b") == 0 && strcmp(av.name, "tsv") == 0);
    /* same seed, same split; both parts in file order; disjoint and complete */
    int same = 1, ordered = 1, differ = 0;
    char seen[1000] = {0};
    for (size_t i = 0; i < av.n; i++) {
        same &= strcmp(av.ex[i].text, bv.ex[i].text) == 0;
        differ |= strcmp(av.ex[i].text, cv.ex[i].text) != 0;
        if (i) ordered &= atoi(av.ex[i].text) > atoi(av.ex[i - 1].text);
        seen[atoi(av.ex[i].text)]++;
        CHECK(av.ex[i].label == (atoi(av.ex[i].text) % 3 ? 1 : 0));
    }
    for (size_t i = 0; i < a.n; i++) {
        same &= strcmp(a.ex[i].text, b.ex[i].text) == 0;
        if (i) ordered &= atoi(a.ex[i].text) > atoi(a.ex[i - 1].text);
        seen[atoi(a.ex[i].text)]++;
    }
    int once = 1;
    for (size_t i = 0; i < n; i++) once &= seen[i] == 1;
    CHECK(same && ordered && once && differ);
    /* sizes: round(frac * n), at least 1, at most n - 1 */
    up_dataset s, sv;
    make_numbered(&s, 10);
    CHECK_OK(up_dataset_carve(&s, 0.001, 1, &sv));
    CHECK(sv.n == 1 && s.n == 9);
    up_dataset_clear(&sv);
    CHECK_OK(up_dataset_carve(&s, 0.999, 1, &sv));
    CHECK(sv.n == 8 && s.n == 1);
    up_dataset_clear(&sv);
    CHECK_ST(up_dataset_carve(&s, 0.5, 1, &sv), UP_ERR_INVALID, "1 examples, expected at least 2");
    CHECK_ST(up_dataset_carve(&a, 0, 1, &sv), UP_ERR_INVALID, "validation fraction 0: expected 0 < frac < 1");
    CHECK_ST(up_dataset_carve(&a, 1.0, 1, &sv), UP_ERR_INVALID, "expected 0 < frac < 1");
    CHECK_ST(up_dataset_carve(&a, NAN, 1, &sv), UP_ERR_INVALID, "expected 0 < frac < 1");
    CHECK(a.n == 900 && sv.n == 0 && sv.ex == NULL);
    up_dataset *all[] = {&a, &av, &b, &bv, &c, &cv, &s};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) up_dataset_clear(all[i]);
}

static void test_task_dirs(void) {
    /* a made-up data dir: SST-2 without val.tsv (carved), WNLI with one */
    char buf[8192] = "sentence\tlabel\n";
    for (int i = 0; i < 50; i++) snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "s%d\t%d\n", i, i % 2);
    put("d/glue/SST-2/train.tsv", buf);
    put("d/glue/SST-2/dev.tsv", "sentence\tlabel\nx\t1\ny\t1\nz\t0\n");
    put("d/glue/WNLI/train.tsv", "index\tsentence1\tsentence2\tlabel\n0\ta\tb\t1\n1\tc\td\t0\n2\te\tf\t1\n");
    put("d/glue/WNLI/val.tsv", "3\tg\th\t0\n");
    put("d/glue/WNLI/dev.tsv", "index\tsentence1\tsentence2\tlabel\n0\ti\tj\t1\n");
    put("d/glue/RTE/train.tsv", "index\tsentence1\tsentence2\tlabel\n0\ta\tb\tentailment\n");
    put("d/glue/RTE/val.tsv", "1\ta\tb\tentailment\n");
    put("d/glue/RTE/dev.tsv", "index\tsentence1\tsentence2\tlabel\n0\ta\tb\tcontradiction\n");
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/d", g_tmp);
    up_task_splits s, s2;
    CHECK_OK(up_task_load("sst2", dir, 0.2, 7, &s));
    CHECK(s.val_carved && s.train.n == 40 && s.val.n == 10 && s.report.n == 3);
    CHECK(strcmp(s.train.name, "sst2") == 0 && strcmp(s.val.name, "sst2") == 0);
    CHECK(up_majority_label(&s.report) == 1);
    CHECK_OK(up_task_load("sst2", dir, 0.2, 7, &s2));
    int same = s2.val.n == s.val.n;
    for (size_t i = 0; same && i < s.val.n; i++) same = strcmp(s.val.ex[i].text, s2.val.ex[i].text) == 0;
    CHECK(same);
    up_task_splits_free(&s);
    up_task_splits_free(&s2);
    CHECK_OK(up_task_load("wnli", dir, 0.2, 7, &s));
    CHECK(!s.val_carved && s.train.n == 3 && s.val.n == 1 && s.report.n == 1 && s.train.pair);
    CHECK(ex_is(&s.val, 0, "g", "h", 0) && ex_is(&s.report, 0, "i", "j", 1));
    up_task_splits_free(&s);
    CHECK_ST(up_task_load("rte", dir, 0.1, 1, &s), UP_ERR_FORMAT, "RTE/dev.tsv:2: unknown label 'contradiction'");
    CHECK(s.train.n == 0 && s.val.n == 0 && s.report.n == 0);
    CHECK_ST(up_task_load("cola", dir, 0.1, 1, &s), UP_ERR_IO, "CoLA/train.tsv", "cannot open");
    CHECK_ST(up_task_load("stsb", dir, 0.1, 1, &s), UP_ERR_INVALID, "unknown task 'stsb'", "sst2, cola");
    CHECK_ST(up_task_load("sst2", dir, 1.5, 1, &s), UP_ERR_INVALID, "task sst2: carving", "0 < frac < 1");
    up_task_splits_free(NULL);
}

/* ---- metrics ---------------------------------------------------------------- */

static void test_metrics(void) {
    /* tp 2, tn 2, fp 1, fn 1 */
    int p1[] = {1, 1, 0, 0, 1, 0}, g1[] = {1, 0, 0, 1, 1, 0};
    CHECK(fabs(up_accuracy(p1, g1, 6) - 4.0 / 6) < 1e-12);
    CHECK(fabs(up_f1_binary(p1, g1, 6, 1) - 2.0 * 2 / (2 * 2 + 1 + 1)) < 1e-12);
    CHECK(fabs(up_f1_binary(p1, g1, 6, 0) - 2.0 * 2 / (2 * 2 + 1 + 1)) < 1e-12);
    CHECK(fabs(up_matthews(p1, g1, 6) - 3.0 / 9.0) < 1e-12); /* (4 - 1) / sqrt(3*3*3*3) */
    /* tp 3, tn 2, fp 1, fn 2: (6 - 2) / sqrt(4*5*3*4) */
    int p2[] = {1, 0, 1, 1, 0, 0, 1, 0}, g2[] = {1, 0, 0, 1, 0, 1, 1, 1};
    CHECK(fabs(up_matthews(p2, g2, 8) - 4.0 / sqrt(240.0)) < 1e-12);
    CHECK(fabs(up_f1_binary(p2, g2, 8, 1) - 6.0 / 9.0) < 1e-12);
    CHECK(fabs(up_accuracy(p2, g2, 8) - 5.0 / 8) < 1e-12);
    /* perfect, inverted, degenerate */
    int z[] = {0, 0, 0, 0}, o[] = {1, 1, 1, 1}, g3[] = {0, 1, 1, 0}, inv[] = {1, 0, 0, 1};
    CHECK(up_matthews(g3, g3, 4) == 1.0 && up_matthews(inv, g3, 4) == -1.0);
    CHECK(up_matthews(z, g3, 4) == 0.0 && up_matthews(o, g3, 4) == 0.0); /* constant predictions */
    CHECK(up_matthews(g3, z, 4) == 0.0 && up_matthews(z, z, 4) == 0.0);  /* constant gold */
    CHECK(up_matthews(NULL, NULL, 0) == 0.0 && up_accuracy(NULL, NULL, 0) == 0.0);
    CHECK(up_f1_binary(z, z, 4, 1) == 0.0 && up_f1_binary(o, o, 4, 1) == 1.0 && up_f1_binary(z, o, 4, 1) == 0.0);
    CHECK(up_accuracy(z, o, 4) == 0.0 && up_accuracy(g3, g3, 4) == 1.0);
    /* majority: most frequent, smallest id on ties */
    CHECK_OK(load("maj.tsv", "text\tlabel\na\tx\nb\ty\nc\ty\nd\tz\ne\tz\n", UP_FMT_TSV, NULL));
    CHECK(up_majority_label(&g_d) == 1);
    up_dataset empty = {0};
    CHECK(up_majority_label(&empty) == -1 && up_majority_label(NULL) == -1);
}

/* ---- the real task files ------------------------------------------------------ */

static int test_real(const char *data) {
    struct stat st;
    if (stat(data, &st) != 0 || !S_ISDIR(st.st_mode)) {
        printf("skip: real task data: %s not found\n", data);
        return 0;
    }
    /* Counts of /work/shared/data/README.md, except RTE and WNLI val.tsv: the
     * files have 363 and 117 rows (no header; GLUE's 2,490 and 635 training
     * rows = train + val), where the README says 362 and 116. */
    struct {
        const char *task;
        size_t train, val, report; /* val 0: carved from train */
        double maj_acc;            /* majority-class accuracy on the report split */
    } tasks[] = {
        {"sst2", 67349, 0, 872, 444.0 / 872}, {"cola", 7250, 1301, 1043, 721.0 / 1043},
        {"mrpc", 3668, 0, 408, 279.0 / 408},  {"rte", 2127, 363, 277, 146.0 / 277},
        {"wnli", 518, 117, 71, 31.0 / 71},    {"trec", 5452, 0, 500, -1},
    };
    const double frac = 0.1;
    for (size_t t = 0; t < sizeof tasks / sizeof *tasks; t++) {
        up_task_splits s;
        double t0 = up_now();
        up_status rc = up_task_load(tasks[t].task, data, frac, 42, &s);
        CHECK_MSG(rc == UP_OK, "%s: %s", tasks[t].task, up_errmsg());
        if (rc != UP_OK) continue;
        double secs = up_now() - t0;
        if (tasks[t].val) {
            CHECK_MSG(!s.val_carved && s.train.n == tasks[t].train && s.val.n == tasks[t].val,
                      "%s: train %zu val %zu", tasks[t].task, s.train.n, s.val.n);
        } else {
            size_t k = (size_t)llround(frac * (double)tasks[t].train);
            CHECK_MSG(s.val_carved && s.val.n == k && s.train.n + s.val.n == tasks[t].train,
                      "%s: train %zu + carved val %zu, expected %zu + %zu", tasks[t].task, s.train.n, s.val.n,
                      tasks[t].train - k, k);
        }
        CHECK_MSG(s.report.n == tasks[t].report, "%s: report %zu", tasks[t].task, s.report.n);
        int maj = up_majority_label(&s.train);
        size_t n = s.report.n;
        int *pred = malloc(n * sizeof *pred), *gold = malloc(n * sizeof *gold);
        for (size_t i = 0; i < n; i++) pred[i] = maj, gold[i] = s.report.ex[i].label;
        double acc = up_accuracy(pred, gold, n);
        printf("%-4s train %6zu  val %5zu%s  report %4zu  (%.2f s)  majority '%s': accuracy %.4f", tasks[t].task,
               s.train.n, s.val.n, s.val_carved ? " (carved)" : "         ", n, secs, s.train.labels[maj], acc);
        if (!strcmp(tasks[t].task, "mrpc")) printf(", F1 %.4f", up_f1_binary(pred, gold, n, 1));
        if (!strcmp(tasks[t].task, "cola")) printf(", MCC %.4f", up_matthews(pred, gold, n));
        printf("\n");
        if (tasks[t].maj_acc >= 0) CHECK_MSG(fabs(acc - tasks[t].maj_acc) < 1e-9, "%s: %.6f", tasks[t].task, acc);
        free(pred);
        free(gold);
        /* a few known rows */
        if (!strcmp(tasks[t].task, "sst2")) {
            CHECK(s.report.ex[0].label == 1 && !strcmp(s.report.ex[0].text, "it 's a charming and often affecting "
                                                                             "journey . "));
        }
        if (!strcmp(tasks[t].task, "mrpc")) {
            CHECK(s.report.pair && s.report.ex[0].label == 1 && !strncmp(s.report.ex[0].text_b, "\"The foodservice", 16));
        }
        if (!strcmp(tasks[t].task, "rte")) CHECK(s.report.ex[0].label == 1 && s.val.ex[0].label == 0);
        if (!strcmp(tasks[t].task, "cola")) CHECK(ex_is(&s.val, 2, "The car honked down the road.", NULL, 0));
        if (!strcmp(tasks[t].task, "trec")) {
            CHECK(s.report.ex[0].label == 5 && !strcmp(s.report.ex[0].text, "How far is it from Denver to Aspen ?"));
            int found = 0;
            for (size_t i = 0; i < s.train.n; i++) found |= strstr(s.train.ex[i].text, "as a sister city with") != 0;
            for (size_t i = 0; i < s.val.n; i++) found |= strstr(s.val.ex[i].text, "as a sister city with") != 0;
            CHECK(found);
        }
        up_task_splits_free(&s);
    }
    /* format detection on every real file */
    struct { const char *file; const char *fmt; size_t n; } files[] = {
        {"glue/SST-2/train.tsv", "sst2", 67349},  {"glue/SST-2/dev.tsv", "sst2", 872},
        {"glue/SST-2/test-labeled.tsv", "sst2", 1821},
        {"glue/CoLA/train.tsv", "cola", 7250},    {"glue/CoLA/val.tsv", "cola", 1301},
        {"glue/CoLA/dev.tsv", "cola", 1043},      {"glue/MRPC/train.tsv", "mrpc", 3668},
        {"glue/MRPC/dev.tsv", "mrpc", 408},       {"glue/RTE/train.tsv", "rte", 2127},
        {"glue/RTE/val.tsv", "rte", 363},         {"glue/RTE/dev.tsv", "rte", 277},
        {"glue/WNLI/train.tsv", "wnli", 518},     {"glue/WNLI/val.tsv", "wnli", 117},
        {"glue/WNLI/dev.tsv", "wnli", 71},        {"trec/TREC.train", "trec", 5452},
        {"trec/TREC.test", "trec", 500},
    };
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", data, files[i].file);
        up_dataset d;
        up_status rc = up_dataset_read(path, UP_FMT_AUTO, NULL, &d);
        CHECK_MSG(rc == UP_OK && !strcmp(d.name, files[i].fmt) && d.n == files[i].n, "%s: %s %s %zu", files[i].file,
                  up_errmsg(), d.name, d.n);
        up_dataset_clear(&d);
    }
    /* unlabelled test files are refused, naming the missing column */
    char path[4200];
    up_dataset d;
    snprintf(path, sizeof path, "%s/glue/RTE/test.tsv", data);
    CHECK_ST(up_dataset_read(path, UP_FMT_RTE, NULL, &d), UP_ERR_FORMAT, "RTE/test.tsv:1: missing column 'label'");
    return 1;
}

int main(int argc, char **argv) {
    const char *src = argc > 1 ? argv[1] : getenv("UP_SOURCE_DIR");
    if (!src) src = ".";
    up_set_log(NULL, NULL, UP_LOG_WARN);
    if (!mkdtemp(g_tmp)) {
        perror("mkdtemp");
        return 1;
    }
    test_sst2();
    test_cola();
    test_mrpc();
    test_rte_wnli();
    test_qnli_qqp_mnli();
    test_trec();
    test_generic_tsv();
    test_jsonl();
    test_errors();
    test_auto();
    test_carve();
    test_task_dirs();
    test_metrics();
    up_dataset_clear(&g_d);
    char data[4096];
    snprintf(data, sizeof data, "%s/../shared/data", src);
    int had_data = test_real(data);
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_tmp);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_tmp);
    int rc = test_done();
    return rc == 0 && !had_data ? TEST_SKIP : rc;
}
