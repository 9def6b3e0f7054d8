/*
 * test_tokenizer.c: the tokenizer against Hugging Face's BertTokenizer.
 *
 * tests/data/tokenizer/cases.tsv holds the texts, expected.tsv the ids, type
 * ids and truncation counts that scripts/ref_tokenizer.py (an independent
 * Python re-implementation of HF's slow tokenizer on Python's unicodedata)
 * wrote for them; every case must match exactly. Then unit checks of bad
 * vocabularies, tokenizer_config.json, options and truncation.
 *
 *     test_tokenizer /path/to/source   (or UP_SOURCE_DIR=/path/to/source)
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test.h"

static const char *g_src;

/* ---- helpers -------------------------------------------------------------- */

static char *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    for (;;) {
        if (n == cap) buf = realloc(buf, (cap *= 2) + 1);
        size_t k = fread(buf + n, 1, cap - n, f);
        if (k == 0) break;
        n += k;
    }
    fclose(f);
    buf[n] = 0;
    if (len) *len = n;
    return buf;
}

static void write_file(const char *path, const char *data, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        exit(1);
    }
    fwrite(data, 1, len, f);
    fclose(f);
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static size_t put_utf8(uint32_t cp, char *o) {
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    if (cp < 0x800) { o[0] = (char)(0xC0 | (cp >> 6)); o[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12)); o[1] = (char)(0x80 | ((cp >> 6) & 0x3F)); o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18)); o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* A cases.tsv field to bytes (NUL-terminated); the escapes of ref_tokenizer.py. */
static char *unescape(const char *s) {
    char *out = malloc(strlen(s) * 4 + 1), *o = out;
    while (*s) {
        if (*s != '\\') { *o++ = *s++; continue; }
        char e = s[1];
        int digits = e == 'x' ? 2 : e == 'u' ? 4 : e == 'U' ? 8 : 0;
        if (e == 't' || e == 'n' || e == 'r' || e == '\\') {
            *o++ = e == 't' ? '\t' : e == 'n' ? '\n' : e == 'r' ? '\r' : '\\';
            s += 2;
        } else if (digits) {
            uint32_t v = 0;
            for (int i = 0; i < digits; i++) {
                int h = hexval(s[2 + i]);
                if (h < 0) { fprintf(stderr, "bad escape in %s\n", s); exit(1); }
                v = v * 16 + (uint32_t)h;
            }
            if (e == 'x') *o++ = (char)v;
            else o += put_utf8(v, o);
            s += 2 + digits;
        } else {
            fprintf(stderr, "bad escape \\%c\n", e);
            exit(1);
        }
    }
    *o = 0;
    return out;
}

/* Splits line in place at tabs into at most max fields; returns the count. */
static int split_tabs(char *line, char **f, int max) {
    int n = 0;
    f[n++] = line;
    for (char *p = line; *p && n < max; p++)
        if (*p == '\t') { *p = 0; f[n++] = p + 1; }
    return n;
}

static int parse_ints(const char *s, int32_t *out, int max) {
    int n = 0;
    char *end;
    while (*s && n < max) {
        long v = strtol(s, &end, 10);
        if (end == s) break;
        out[n++] = (int32_t)v;
        s = end;
    }
    return n;
}

/* ---- the reference cases -------------------------------------------------------- */

typedef struct {
    char key[64];
    up_tokenizer *t;
} cached_tok;
static cached_tok g_cache[16];
static int g_ncache;

static up_tokenizer *tokenizer_for(const char *vocab, const char *opts) {
    char key[64];
    snprintf(key, sizeof key, "%s %s", vocab, opts);
    for (int i = 0; i < g_ncache; i++)
        if (!strcmp(g_cache[i].key, key)) return g_cache[i].t;
    up_tokenizer_opts o = up_tokenizer_opts_default();
    o.lowercase = !strcmp(vocab, "uncased");
    if (strcmp(opts, "-") != 0) {
        char buf[64];
        snprintf(buf, sizeof buf, "%s", opts);
        for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
            int v = tok[strlen(tok) - 1] - '0';
            if (!strncmp(tok, "lower=", 6)) o.lowercase = v;
            else if (!strncmp(tok, "strip=", 6)) o.strip_accents = v;
            else if (!strncmp(tok, "cjk=", 4)) o.tokenize_chinese_chars = v;
            else { fprintf(stderr, "bad option %s\n", tok); exit(1); }
        }
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/tests/data/vocab/%s", g_src,
             !strcmp(vocab, "uncased") ? "bert-base-uncased.txt" : "tiny-cased.txt");
    up_tokenizer *t = NULL;
    if (up_tokenizer_load(path, &o, &t) != UP_OK) {
        fprintf(stderr, "cannot load %s: %s\n", path, up_errmsg());
        exit(1);
    }
    snprintf(g_cache[g_ncache].key, sizeof g_cache[g_ncache].key, "%s", key);
    g_cache[g_ncache++].t = t;
    return t;
}

static void print_ids(const char *label, const up_tokenizer *t, const int32_t *ids, const int32_t *types, int n, int trunc) {
    fprintf(stderr, "    %s (%d, truncated %d):", label, n, trunc);
    for (int i = 0; i < n; i++) fprintf(stderr, " %d", ids[i]);
    fprintf(stderr, "\n      types:");
    for (int i = 0; i < n; i++) fprintf(stderr, " %d", types[i]);
    fprintf(stderr, "\n      tokens:");
    for (int i = 0; i < n; i++) {
        const char *tok = up_tokenizer_token(t, ids[i]);
        fprintf(stderr, " %s", tok ? tok : "?");
    }
    fputc('\n', stderr);
}

#define MAX_TEXTS 512
static char *g_texts[MAX_TEXTS]; /* the uncased case texts, for test_long_text */
static int g_ntexts;

static void test_reference_cases(void) {
    char path[4096];
    snprintf(path, sizeof path, "%s/tests/data/tokenizer/cases.tsv", g_src);
    char *cases = read_all(path, NULL);
    snprintf(path, sizeof path, "%s/tests/data/tokenizer/expected.tsv", g_src);
    char *expected = read_all(path, NULL);
    if (!cases || !expected) {
        fprintf(stderr, "cannot read the reference data under %s/tests/data/tokenizer\n", g_src);
        exit(1);
    }
    char *csave = NULL, *esave = NULL;
    char *cl = strtok_r(cases, "\n", &csave), *el = strtok_r(expected, "\n", &esave);
    int ncase = 0, nbad = 0;
    enum { MAXT = 1024 };
    static int32_t eids[MAXT], etypes[MAXT];
    up_encoding enc = {0};
    for (; cl; cl = strtok_r(NULL, "\n", &csave)) {
        if (cl[0] == '#') continue;
        while (el && el[0] == '#') el = strtok_r(NULL, "\n", &esave);
        ncase++;
        if (!el) {
            fprintf(stderr, "expected.tsv has no line for case %d: rerun scripts/ref_tokenizer.py\n", ncase);
            nbad++;
            break;
        }
        char *f[6], *g[5];
        int nf = split_tabs(cl, f, 6), ng = split_tabs(el, g, 5);
        if (nf < 5 || ng < 4 || atoi(g[0]) != ncase) {
            fprintf(stderr, "case %d: malformed cases.tsv / expected.tsv line\n", ncase);
            nbad++;
            el = strtok_r(NULL, "\n", &esave);
            continue;
        }
        int pair = !strcmp(f[0], "pair");
        up_tokenizer *t = tokenizer_for(f[1], f[2]);
        char *a = unescape(f[4]), *b = pair && nf == 6 ? unescape(f[5]) : NULL;
        int ne = parse_ints(g[1], eids, MAXT), nt = parse_ints(g[2], etypes, MAXT), etrunc = atoi(g[3]);
        up_status st = up_tokenizer_encode(t, a, b, atoi(f[3]), &enc);
        test_checks++;
        int same = st == UP_OK && ne == nt && enc.n == ne && enc.truncated == etrunc &&
                   !memcmp(enc.ids, eids, (size_t)ne * sizeof *eids) && !memcmp(enc.type_ids, etypes, (size_t)ne * sizeof *etypes);
        if (!same) {
            test_failures++;
            nbad++;
            fprintf(stderr, "case %d (cases.tsv: %s %s %s max_len %s): MISMATCH\n    text_a: %s\n", ncase, f[0], f[1], f[2], f[3], f[4]);
            if (b) fprintf(stderr, "    text_b: %s\n", f[5]);
            print_ids("expected", t, eids, etypes, ne, etrunc);
            if (st != UP_OK) fprintf(stderr, "    got: error %s\n", up_errmsg());
            else print_ids("got", t, enc.ids, enc.type_ids, enc.n, enc.truncated);
        }
        if (!strcmp(f[1], "uncased") && !strcmp(f[2], "-") && g_ntexts < MAX_TEXTS) g_texts[g_ntexts++] = strdup(a);
        free(a);
        free(b);
        el = strtok_r(NULL, "\n", &esave);
    }
    up_encoding_free(&enc);
    printf("reference cases: %d, identical: %d, mismatched: %d\n", ncase, ncase - nbad, nbad);
    CHECK(ncase >= 120);
    free(cases);
    free(expected);
}

/* A text of many cases joined by whitespace must give the cases' pieces one
 * after the other: checks that cutting long texts into chunks (at about 64 KB,
 * at a whitespace byte) changes nothing. */
static void test_long_text(void) {
    up_tokenizer *t = tokenizer_for("uncased", "-");
    size_t cap = 1 << 20, len = 0, nexp = 0, expcap = 1 << 16;
    char *text = malloc(cap);
    int32_t *exp = malloc(expcap * sizeof *exp);
    up_encoding e = {0};
    for (int rep = 0; len < 300000; rep++) {
        for (int i = 0; i < g_ntexts; i++) {
            size_t n = strlen(g_texts[i]);
            if (len + n + 3 >= cap) break;
            memcpy(text + len, g_texts[i], n);
            memcpy(text + len + n, (rep + i) % 2 ? " \n" : "\t ", 2);
            len += n + 2;
            up_status st = up_tokenizer_wordpieces(t, g_texts[i], &e);
            if (st != UP_OK) CHECK_OK(st);
            if (nexp + (size_t)e.n > expcap) exp = realloc(exp, (expcap = 2 * (nexp + (size_t)e.n)) * sizeof *exp);
            memcpy(exp + nexp, e.ids, (size_t)e.n * sizeof *exp);
            nexp += (size_t)e.n;
        }
    }
    text[len] = 0;
    CHECK_OK(up_tokenizer_wordpieces(t, text, &e));
    CHECK_MSG((size_t)e.n == nexp && !memcmp(e.ids, exp, nexp * sizeof *exp), "long text of %zu bytes: %d pieces, expected %zu", len, e.n, nexp);
    up_encoding_free(&e);
    free(exp);
    free(text);
    for (int i = 0; i < g_ntexts; i++) free(g_texts[i]);
}

/* ---- unit checks ------------------------------------------------------------------ */

static char g_tmp[256];

/* A vocabulary: the five special tokens plus the given lines. */
static const char *minimal_vocab = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nhello\nworld\n##s\n,\n";

static up_status load_text(const char *name, const char *text, size_t len, up_tokenizer **t) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", g_tmp, name);
    write_file(path, text, len);
    up_tokenizer_opts o = up_tokenizer_opts_default();
    o.lowercase = 1;
    return up_tokenizer_load(path, &o, t);
}

static void test_bad_vocabs(void) {
    up_tokenizer *t = NULL;
    CHECK_FAIL(load_text("empty.txt", "", 0, &t), "empty.txt", "empty");
    CHECK(t == NULL);
    const char *nosep = "[PAD]\n[UNK]\n[CLS]\n[MASK]\nhello\n";
    CHECK_FAIL(load_text("nosep.txt", nosep, strlen(nosep), &t), "nosep.txt", "[SEP]", "missing");
    const char *two = "[PAD]\n[UNK]\n[SEP]\nhello\n";
    CHECK_FAIL(load_text("two.txt", two, strlen(two), &t), "[CLS] [MASK]", "are missing");
    const char *bom = "\xEF\xBB\xBF[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n";
    CHECK_FAIL(load_text("bom.txt", bom, strlen(bom), &t), "[PAD]", "byte order mark");

    char *longline = malloc(2000);
    strcpy(longline, minimal_vocab);
    size_t n = strlen(longline);
    memset(longline + n, 'x', 1001);
    longline[n + 1001] = '\n';
    CHECK_FAIL(load_text("long.txt", longline, n + 1002, &t), "long.txt", "line 10", "1001 bytes", "at most 1000");
    memset(longline + n, 'x', 1000); /* exactly 1000 is fine */
    longline[n + 1000] = '\n';
    CHECK_OK(load_text("long1000.txt", longline, n + 1001, &t));
    up_tokenizer_free(t);
    t = NULL;
    free(longline);

    char bad[256];
    snprintf(bad, sizeof bad, "%shel\xC3\x28lo\n", minimal_vocab);
    CHECK_FAIL(load_text("utf8.txt", bad, strlen(bad), &t), "utf8.txt", "line 10", "byte 4", "invalid UTF-8");
    snprintf(bad, sizeof bad, "%s\xED\xA0\x80\n", minimal_vocab); /* an encoded surrogate */
    CHECK_FAIL(load_text("surrogate.txt", bad, strlen(bad), &t), "line 10", "byte 1", "invalid UTF-8");
    snprintf(bad, sizeof bad, "%sab\xF0\x9F\x98", minimal_vocab); /* truncated at the end */
    CHECK_FAIL(load_text("trunc.txt", bad, strlen(bad), &t), "line 10", "byte 3", "invalid UTF-8");
    memcpy(bad, minimal_vocab, strlen(minimal_vocab));
    memcpy(bad + strlen(minimal_vocab), "a\0b\n", 4);
    CHECK_FAIL(load_text("nul.txt", bad, strlen(minimal_vocab) + 4, &t), "line 10", "NUL");

    /* over 10 million lines, in memory */
    size_t lines = 10000001, len = 2 * lines;
    char *big = malloc(len);
    for (size_t i = 0; i < lines; i++) { big[2 * i] = 'a'; big[2 * i + 1] = '\n'; }
    CHECK_FAIL(up_tokenizer_from_buffer("big.txt", big, len, NULL, &t), "big.txt", "more than 10000000 lines");
    free(big);
    CHECK(t == NULL);

    CHECK_FAIL(up_tokenizer_load("/nonexistent/vocab.txt", NULL, &t), "/nonexistent/vocab.txt", "cannot open");
    up_tokenizer_opts o = up_tokenizer_opts_default();
    o.lowercase = 2;
    CHECK_FAIL(up_tokenizer_from_buffer("v", minimal_vocab, strlen(minimal_vocab), &o, &t), "lowercase", "found 2");
}

static char g_log[4096];
static void capture_log(int level, const char *msg, void *user) {
    (void)user;
    if (level <= UP_LOG_INFO) snprintf(g_log + strlen(g_log), sizeof g_log - strlen(g_log), "%s\n", msg);
}

static void test_vocab_lines(void) {
    up_tokenizer *t = NULL;
    /* an empty line in the middle is an (empty) token with its own id, as in
     * HF; the ids after it count it */
    const char *v = "[PAD]\n[UNK]\n[CLS]\n\n[SEP]\n[MASK]\nhello\n";
    g_log[0] = 0;
    up_set_log(capture_log, NULL, UP_LOG_WARN);
    CHECK_OK(up_tokenizer_from_buffer("empty-line", v, strlen(v), NULL, &t));
    up_set_log(NULL, NULL, UP_LOG_WARN);
    CHECK_MSG(strstr(g_log, "empty-line: 1 empty line (the first is line 4)") != NULL, "log: %s", g_log);
    CHECK(up_tokenizer_vocab_size(t) == 7);
    CHECK(up_tokenizer_id(t, "") == 3);
    CHECK(up_tokenizer_id(t, "[SEP]") == 4);
    CHECK(up_tokenizer_id(t, "hello") == 6);
    up_encoding e = {0};
    CHECK_OK(up_tokenizer_encode(t, "hello  \t unknown", NULL, 16, &e));
    CHECK(e.n == 4 && e.ids[0] == 2 && e.ids[1] == 6 && e.ids[2] == 1 && e.ids[3] == 4);
    up_tokenizer_free(t);

    /* CRLF, lone CR (a line end for Python's universal newlines), no final newline */
    const char *crlf = "[PAD]\r\n[UNK]\r\n[CLS]\r[SEP]\n[MASK]\r\nhello";
    CHECK_OK(up_tokenizer_from_buffer("crlf", crlf, strlen(crlf), NULL, &t));
    CHECK(up_tokenizer_vocab_size(t) == 6);
    CHECK(up_tokenizer_id(t, "[SEP]") == 3);
    CHECK(up_tokenizer_id(t, "hello") == 5);
    CHECK(up_tokenizer_token(t, 5) && !strcmp(up_tokenizer_token(t, 5), "hello"));
    up_tokenizer_free(t);

    /* duplicates: the later line's id wins, as in HF's dict */
    const char *dup = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nhello\nworld\nhello\n";
    CHECK_OK(up_tokenizer_from_buffer("dup", dup, strlen(dup), NULL, &t));
    CHECK(up_tokenizer_id(t, "hello") == 7);
    CHECK_OK(up_tokenizer_encode(t, "hello world", NULL, 16, &e));
    CHECK(e.n == 4 && e.ids[1] == 7 && e.ids[2] == 6);
    CHECK(up_tokenizer_token(t, 5) && !strcmp(up_tokenizer_token(t, 5), "hello"));
    CHECK(up_tokenizer_token(t, 8) == NULL && up_tokenizer_token(t, -1) == NULL);
    CHECK(up_tokenizer_id(t, "nothere") == -1);
    up_tokenizer_free(t);
    up_encoding_free(&e);
    up_tokenizer_free(NULL);
    up_encoding_free(NULL);
}

static void test_auto_lowercase(void) {
    up_set_log(capture_log, NULL, UP_LOG_INFO);
    char path[4096];
    up_tokenizer *t = NULL;
    g_log[0] = 0;
    snprintf(path, sizeof path, "%s/tests/data/vocab/bert-base-uncased.txt", g_src);
    CHECK_OK(up_tokenizer_load(path, NULL, &t));
    CHECK(up_tokenizer_lowercase(t) == 1);
    CHECK(up_tokenizer_vocab_size(t) == 30522);
    CHECK(up_tokenizer_id(t, "[CLS]") == 101 && up_tokenizer_id(t, "[SEP]") == 102);
    CHECK(up_tokenizer_id(t, "##ing") == 2075);
    CHECK(up_tokenizer_token(t, 7592) && !strcmp(up_tokenizer_token(t, 7592), "hello"));
    CHECK_MSG(strstr(g_log, "uncased") != NULL, "log: %s", g_log);
    up_tokenizer_free(t);

    g_log[0] = 0;
    snprintf(path, sizeof path, "%s/tests/data/vocab/tiny-cased.txt", g_src);
    CHECK_OK(up_tokenizer_load(path, NULL, &t));
    CHECK(up_tokenizer_lowercase(t) == 0);
    CHECK_MSG(strstr(g_log, "cased") != NULL && strstr(g_log, "upper-case") != NULL, "log: %s", g_log);
    up_tokenizer_free(t);

    /* tokenizer_config.json beside the vocabulary decides */
    char vocab[512], config[512];
    snprintf(vocab, sizeof vocab, "%s/vocab.txt", g_tmp);
    snprintf(config, sizeof config, "%s/tokenizer_config.json", g_tmp);
    size_t len;
    snprintf(path, sizeof path, "%s/tests/data/vocab/bert-base-uncased.txt", g_src);
    char *uncased = read_all(path, &len);
    write_file(vocab, uncased, len);
    free(uncased);
    const char *cfg = "{\"do_lower_case\": false, \"model_max_length\": 512}";
    write_file(config, cfg, strlen(cfg));
    g_log[0] = 0;
    CHECK_OK(up_tokenizer_load(vocab, NULL, &t));
    CHECK(up_tokenizer_lowercase(t) == 0);
    CHECK_MSG(strstr(g_log, "tokenizer_config.json") != NULL, "log: %s", g_log);
    up_encoding e = {0};
    CHECK_OK(up_tokenizer_encode(t, "Hello", NULL, 16, &e));
    CHECK(e.n == 3 && e.ids[1] == 100); /* "Hello" is not in an uncased vocabulary */
    up_tokenizer_free(t);
    /* an explicit lowercase ignores the file */
    up_tokenizer_opts o = up_tokenizer_opts_default();
    o.lowercase = 1;
    CHECK_OK(up_tokenizer_load(vocab, &o, &t));
    CHECK(up_tokenizer_lowercase(t) == 1);
    up_tokenizer_free(t);

    cfg = "{\"do_lower_case\": true, \"strip_accents\": false, \"tokenize_chinese_chars\": false}";
    write_file(config, cfg, strlen(cfg));
    CHECK_OK(up_tokenizer_load(vocab, NULL, &t));
    CHECK(up_tokenizer_lowercase(t) == 1);
    CHECK_OK(up_tokenizer_wordpieces(t, "caf\xC3\xA9", &e)); /* accents kept: not "cafe" */
    CHECK(e.n >= 1 && e.ids[0] != up_tokenizer_id(t, "cafe"));
    CHECK_OK(up_tokenizer_wordpieces(t, "\xE4\xB8\xAD\xE6\x96\x87", &e)); /* 中文 stays one word */
    CHECK(e.n == 2 && e.ids[0] == up_tokenizer_id(t, "\xE4\xB8\xAD") && e.ids[1] == up_tokenizer_id(t, "##\xE6\x96\x87"));
    up_tokenizer_free(t);

    cfg = "{}"; /* present but silent: HF's default do_lower_case=True */
    write_file(config, cfg, strlen(cfg));
    CHECK_OK(up_tokenizer_load(vocab, NULL, &t));
    CHECK(up_tokenizer_lowercase(t) == 1);
    up_tokenizer_free(t);

    cfg = "{\"do_lower_case\": \"yes\"}";
    write_file(config, cfg, strlen(cfg));
    CHECK_FAIL(up_tokenizer_load(vocab, NULL, &t), "tokenizer_config.json", "do_lower_case", "true or false");
    cfg = "{\"do_lower_case\": true,";
    write_file(config, cfg, strlen(cfg));
    CHECK_FAIL(up_tokenizer_load(vocab, NULL, &t), "tokenizer_config.json:1:", "invalid JSON");
    cfg = "{\"unk_token\": {\"content\": \"<unk>\"}}";
    write_file(config, cfg, strlen(cfg));
    CHECK_FAIL(up_tokenizer_load(vocab, NULL, &t), "unk_token", "<unk>", "not supported");
    cfg = "{\"do_basic_tokenize\": false}";
    write_file(config, cfg, strlen(cfg));
    CHECK_FAIL(up_tokenizer_load(vocab, NULL, &t), "do_basic_tokenize");
    cfg = "{\"unk_token\": \"[UNK]\", \"cls_token\": {\"content\": \"[CLS]\", \"lstrip\": false}, \"never_split\": null}";
    write_file(config, cfg, strlen(cfg));
    CHECK_OK(up_tokenizer_load(vocab, NULL, &t));
    up_tokenizer_free(t);
    unlink(config);
    unlink(vocab);

    /* a buffer has no directory: inferred from the tokens */
    const char *cased = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n[unused0]\nHello\n";
    CHECK_OK(up_tokenizer_from_buffer("buf", cased, strlen(cased), NULL, &t));
    CHECK(up_tokenizer_lowercase(t) == 0);
    up_tokenizer_free(t);
    CHECK_OK(up_tokenizer_from_buffer("buf", minimal_vocab, strlen(minimal_vocab), NULL, &t));
    CHECK(up_tokenizer_lowercase(t) == 1);
    up_tokenizer_free(t);
    up_encoding_free(&e);
    up_set_log(NULL, NULL, UP_LOG_WARN);
}

static void test_encode_edges(void) {
    char path[4096];
    snprintf(path, sizeof path, "%s/tests/data/vocab/bert-base-uncased.txt", g_src);
    up_tokenizer_opts o = up_tokenizer_opts_default();
    o.lowercase = 1;
    up_tokenizer *t = NULL;
    CHECK_OK(up_tokenizer_load(path, &o, &t));
    if (!t) return;
    up_encoding e = {0};

    CHECK_OK(up_tokenizer_encode(t, "", NULL, 8, &e));
    CHECK(e.n == 2 && e.ids[0] == 101 && e.ids[1] == 102 && e.truncated == 0);
    CHECK(e.type_ids[0] == 0 && e.type_ids[1] == 0);

    CHECK_FAIL(up_tokenizer_encode(t, "hello", NULL, 1, &e), "max_len 1", "at least 2");
    CHECK_FAIL(up_tokenizer_encode(t, "hello", "world", 2, &e), "max_len 2", "at least 3");
    CHECK_FAIL(up_tokenizer_encode(t, NULL, NULL, 8, &e), "NULL");
    CHECK_FAIL(up_tokenizer_encode(NULL, "x", NULL, 8, &e), "NULL");
    CHECK_FAIL(up_tokenizer_wordpieces(t, NULL, &e), "NULL");

    /* truncation: "hello world , hello" is 4 pieces */
    CHECK_OK(up_tokenizer_encode(t, "hello world, hello", NULL, 5, &e));
    CHECK(e.n == 5 && e.truncated == 1 && e.ids[4] == 102 && e.ids[3] == 1010);
    CHECK_OK(up_tokenizer_encode(t, "hello world, hello", NULL, 6, &e));
    CHECK(e.n == 6 && e.truncated == 0);
    /* max_len 2 with a text: [CLS] [SEP] (HF would log an error and not truncate) */
    CHECK_OK(up_tokenizer_encode(t, "hello world", NULL, 2, &e));
    CHECK(e.n == 2 && e.truncated == 2 && e.ids[0] == 101 && e.ids[1] == 102);
    /* pair: 3 + 1 pieces, max 6 -> one from a */
    CHECK_OK(up_tokenizer_encode(t, "hello world hello", "world", 6, &e));
    CHECK(e.n == 6 && e.truncated == 1);
    CHECK(e.ids[3] == 102 && e.ids[4] == 2088 && e.ids[5] == 102);
    CHECK(e.type_ids[3] == 0 && e.type_ids[4] == 1 && e.type_ids[5] == 1);
    CHECK_OK(up_tokenizer_encode(t, "a b", "c d", 3, &e));
    CHECK(e.n == 3 && e.truncated == 4);

    /* the same encoding grows for a long text, and shrinks back */
    char *longtext = malloc(60001);
    for (int i = 0; i < 10000; i++) memcpy(longtext + 6 * i, "hello ", 6);
    longtext[60000] = 0;
    CHECK_OK(up_tokenizer_wordpieces(t, longtext, &e));
    CHECK(e.n == 10000 && e.cap >= 10000 && e.ids[9999] == 7592);
    CHECK_OK(up_tokenizer_encode(t, longtext, NULL, 512, &e));
    CHECK(e.n == 512 && e.truncated == 10000 - 510);
    CHECK_OK(up_tokenizer_encode(t, longtext, longtext, 512, &e));
    CHECK(e.n == 512 && e.truncated == 20000 - 509 && e.type_ids[256] == 0 && e.type_ids[257] == 1);
    free(longtext);
    CHECK_OK(up_tokenizer_wordpieces(t, "hello", &e));
    CHECK(e.n == 1 && e.ids[0] == 7592);

    /* text ends at its NUL: "a\0b" is "a" */
    CHECK_OK(up_tokenizer_wordpieces(t, "a\0b", &e));
    CHECK(e.n == 1);
    up_encoding_free(&e);
    CHECK(e.ids == NULL && e.n == 0 && e.cap == 0);
    up_tokenizer_free(t);
}

int main(int argc, char **argv) {
    g_src = argc > 1 ? argv[1] : getenv("UP_SOURCE_DIR");
    if (!g_src) {
        fprintf(stderr, "usage: test_tokenizer SOURCE_DIR (or set UP_SOURCE_DIR)\n");
        return 2;
    }
    const char *tmpdir = getenv("TMPDIR");
    snprintf(g_tmp, sizeof g_tmp, "%s/up_tok_XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp");
    if (!mkdtemp(g_tmp)) {
        perror("mkdtemp");
        return 1;
    }
    test_reference_cases();
    test_long_text();
    test_bad_vocabs();
    test_vocab_lines();
    test_auto_lowercase();
    test_encode_edges();
    for (int i = 0; i < g_ncache; i++) up_tokenizer_free(g_cache[i].t);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_tmp);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_tmp);
    return test_done();
}
