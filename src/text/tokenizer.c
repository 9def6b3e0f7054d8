/*
 * tokenizer.c: BertTokenizer, token for token what Hugging Face's slow Python
 * one gives (transformers 4.29 and later 4.x: PreTrainedTokenizer.tokenize,
 * BasicTokenizer with NFC, WordpieceTokenizer, truncate_sequences).
 *
 *     up_tokenizer *t = NULL;
 *     if (up_tokenizer_load("models/bert/vocab.txt", NULL, &t) != UP_OK) { puts(up_errmsg()); return 1; }
 *     up_encoding e = {0};
 *     up_tokenizer_encode(t, "Hello, world!", NULL, 128, &e); // 101 7592 1010 2088 999 102
 *     up_encoding_free(&e);
 *     up_tokenizer_free(t);
 *
 * HF's pipeline for one text, which encode_text() below follows step by step:
 *  1. decode the bytes (errors="replace": an ill-formed subpart -> U+FFFD);
 *  2. if do_lower_case: str.lower() of every character one at a time, except
 *     inside the special tokens [PAD] [UNK] [CLS] [SEP] [MASK] (tokenize() does
 *     this with re.sub("(specials)|(.+?)"); one character at a time means the
 *     final-sigma rule never fires: "ΟΔΟΣ" -> "οδοσ", not "οδος");
 *  3. split out the special tokens wherever they occur ("a[SEP]b" too), each
 *     becoming its own id; the text between them goes to BasicTokenizer:
 *  4. _clean_text: drop U+0000, U+FFFD and category C* (except \t \n \r),
 *     whitespace (\t \n \r, Zs) -> ' ';
 *  5. _tokenize_chinese_chars: ' ' around each CJK ideograph;
 *  6. NFC;
 *  7. split on Python whitespace (str.split());
 *  8. per word, unless it is a special token's text: lower() again (a no-op
 *     after step 2: str.lower() is idempotent), and with strip_accents NFD
 *     then drop Mn; then each punctuation character becomes its own word;
 *  9. WordPiece per word: more than 100 code points -> [UNK]; else greedy
 *     longest match first, continuations prefixed "##"; a word that cannot be
 *     covered completely -> [UNK].
 *
 * The vocabulary is one hash table (open addressing, linear probing) over a
 * copy of vocab.txt; encoding allocates a few growable buffers per call and
 * nothing per character, and never writes to the tokenizer, so one tokenizer
 * can serve many threads.
 *
 * Known differences from HF (tests/data/tokenizer and scripts/ref_tokenizer.py
 * check the rest):
 *  - Unicode version: utf8proc 2.8 has Unicode 15.0, the tables of Python
 *    3.12. HF on Python 3.11 (Unicode 14) sees the 4,489 code points new in
 *    15.0 as unassigned (Cn), hence as controls, and drops them; we keep them
 *    (category, case and NFD agree with Python's unicodedata for every other
 *    code point). Likewise for characters added after 15.0 on newer Pythons.
 *  - Lowercasing: none left. str.lower()'s one multi-character mapping
 *    (U+0130) is reproduced, and final sigma never applies in HF (step 2).
 *  - max_len 2 with a non-empty single text: [CLS] [SEP] (HF logs an error and
 *    returns everything, longer than max_len).
 *  - A text ends at its first NUL byte (a C string); HF would drop U+0000 and
 *    go on.
 *  - vocab.txt: a NUL byte in a token is refused (HF would accept it); with
 *    duplicate lines up_tokenizer_vocab_size counts lines, HF's vocab_size
 *    distinct tokens, and up_tokenizer_token gives a shadowed line's text where
 *    HF's ids_to_tokens has no entry.
 *  - transformers before 4.29 did not apply NFC (step 6): there, decomposed
 *    text ("e" + U+0301) in a cased model gave other pieces.
 */
#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "text/unicode.h"

#define VOCAB_MAX_LINES 10000000u
#define VOCAB_MAX_LINE_BYTES 1000u
#define VOCAB_MAX_FILE_BYTES ((size_t)1 << 30)
#define MAX_WORD_CHARS 100 /* WordpieceTokenizer.max_input_chars_per_word */

enum { SP_PAD, SP_UNK, SP_CLS, SP_SEP, SP_MASK, N_SPECIAL };
static const char *const special_text[N_SPECIAL] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};

struct up_tokenizer {
    char *pool;       /* every line's bytes, each NUL-terminated, in line order */
    uint32_t *off;    /* (n) where token id starts in pool */
    uint32_t *len;    /* (n) its length in bytes */
    uint32_t *hash;   /* (n) its FNV-1a hash */
    int32_t *slots;   /* (nslots) a token id, -1 for an empty slot */
    size_t n, nslots; /* n lines; nslots a power of two >= 2n */
    size_t max_word;  /* longest token in bytes: longer substrings are never looked up */
    size_t max_cont;  /* longest "##" token, without the "##" */
    int32_t special[N_SPECIAL];
    int lowercase;     /* do_lower_case */
    int strip_accents; /* effective: lowercase ? strip_accents != False : strip_accents == True */
    int chinese;       /* tokenize_chinese_chars */
};

/* ---- the vocabulary --------------------------------------------------------- */

#define FNV_BASIS 2166136261u
#define FNV_PRIME 16777619u

static uint32_t fnv(uint32_t h, const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * FNV_PRIME;
    return h;
}

/* The id of prefix + s[0..n) (prefix "" or "##"), -1 if absent. With duplicate
 * lines the table holds the last one, as HF's dict does. */
static int32_t vocab_find(const up_tokenizer *t, int hashes, const char *s, size_t n) {
    size_t plen = hashes ? 2 : 0;
    uint32_t h = fnv(hashes ? fnv(FNV_BASIS, "##", 2) : FNV_BASIS, s, n);
    size_t mask = t->nslots - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        int32_t id = t->slots[i];
        if (id < 0) return -1;
        if (t->hash[id] != h || t->len[id] != n + plen) continue;
        const char *tok = t->pool + t->off[id];
        if ((!hashes || (tok[0] == '#' && tok[1] == '#')) && memcmp(tok + plen, s, n) == 0) return id;
    }
}

/* Length of the line terminator at s[0..n): "\n", "\r\n" or a lone "\r", as
 * Python's universal newlines (open(..., "r"), which load_vocab uses) read
 * them; 0 if none. */
static size_t newline_len(const char *s, size_t n) {
    if (s[0] == '\n') return 1;
    if (s[0] == '\r') return (n > 1 && s[1] == '\n') ? 2 : 1;
    return 0;
}

/* Fills t's vocabulary from vocab.txt's bytes: one token per line, id = line
 * index; lines as load_vocab reads them (readlines() + rstrip("\n")). */
static up_status parse_vocab(up_tokenizer *t, const char *name, const char *buf, size_t len) {
    if (len == 0)
        return up_fail(UP_ERR_FORMAT, "%s: the vocabulary file is empty; expected one token per line (vocab.txt)", name);
    if (len > VOCAB_MAX_FILE_BYTES)
        return up_fail(UP_ERR_FORMAT, "%s: vocabulary is %zu bytes, expected at most %zu", name, len,
                       VOCAB_MAX_FILE_BYTES);
    /* Count the lines: a terminator ends a line; text after the last one is a
     * last line; an empty line in the middle is an (empty) token, as in HF. */
    size_t lines = 0;
    for (size_t i = 0; i < len;) {
        size_t j = i;
        while (j < len && buf[j] != '\n' && buf[j] != '\r') j++;
        lines++;
        if (lines > VOCAB_MAX_LINES)
            return up_fail(UP_ERR_FORMAT, "%s: more than %u lines, expected at most %u tokens", name,
                           VOCAB_MAX_LINES, VOCAB_MAX_LINES);
        i = j < len ? j + newline_len(buf + j, len - j) : j;
    }
    t->pool = up_malloc(len + 1, "vocabulary text");
    t->off = up_calloc(lines, sizeof *t->off, "vocabulary offsets");
    t->len = up_calloc(lines, sizeof *t->len, "vocabulary lengths");
    t->hash = up_calloc(lines, sizeof *t->hash, "vocabulary hashes");
    if (!t->pool || !t->off || !t->len || !t->hash) return UP_ERR_NOMEM;
    size_t id = 0, out = 0, empty = 0, first_empty = 0;
    for (size_t i = 0; i < len; id++) {
        size_t j = i;
        while (j < len && buf[j] != '\n' && buf[j] != '\r') j++;
        size_t n = j - i, line = id + 1;
        if (n > VOCAB_MAX_LINE_BYTES)
            return up_fail(UP_ERR_FORMAT, "%s: line %zu is %zu bytes long, expected at most %u (is this a vocab.txt?)",
                           name, line, n, VOCAB_MAX_LINE_BYTES);
        for (size_t k = 0; k < n;) {
            const uint8_t *s = (const uint8_t *)buf + i + k;
            uint32_t cp;
            size_t bad = 0, step = up_utf8_step(s, n - k, &cp, &bad);
            if (!step)
                return up_fail(UP_ERR_FORMAT, "%s: line %zu, byte %zu: invalid UTF-8 (0x%02X); the vocabulary must be UTF-8 text",
                               name, line, k + 1, s[0]);
            if (cp == 0)
                return up_fail(UP_ERR_FORMAT, "%s: line %zu, byte %zu: NUL byte in a token", name, line, k + 1);
            k += step;
        }
        memcpy(t->pool + out, buf + i, n);
        t->pool[out + n] = 0;
        t->off[id] = (uint32_t)out;
        t->len[id] = (uint32_t)n;
        t->hash[id] = fnv(FNV_BASIS, buf + i, n);
        out += n + 1;
        if (n == 0 && empty++ == 0) first_empty = line;
        i = j < len ? j + newline_len(buf + j, len - j) : j;
    }
    t->n = lines;
    if (empty)
        up_log(UP_LOG_WARN, "%s: %zu empty line%s (the first is line %zu), kept as empty tokens, as HF does; no text produces them",
               name, empty, empty > 1 ? "s" : "", first_empty);

    t->nslots = 16;
    while (t->nslots < 2 * lines) t->nslots *= 2;
    t->slots = up_malloc(t->nslots * sizeof *t->slots, "vocabulary hash table");
    if (!t->slots) return UP_ERR_NOMEM;
    memset(t->slots, 0xFF, t->nslots * sizeof *t->slots); /* all -1 */
    size_t mask = t->nslots - 1;
    for (id = 0; id < lines; id++) {
        const char *tok = t->pool + t->off[id];
        size_t i = t->hash[id] & mask;
        for (;; i = (i + 1) & mask) {
            int32_t o = t->slots[i];
            if (o < 0) break;
            if (t->hash[o] == t->hash[id] && t->len[o] == t->len[id] && memcmp(t->pool + t->off[o], tok, t->len[id]) == 0)
                break; /* a duplicate: the later line takes the slot */
        }
        t->slots[i] = (int32_t)id;
        size_t n = t->len[id];
        if (n > t->max_word) t->max_word = n;
        if (n >= 2 && tok[0] == '#' && tok[1] == '#' && n - 2 > t->max_cont) t->max_cont = n - 2;
    }

    char missing[64] = "";
    int nmissing = 0;
    for (int s = 0; s < N_SPECIAL; s++) {
        t->special[s] = vocab_find(t, 0, special_text[s], strlen(special_text[s]));
        if (t->special[s] < 0) {
            strcat(missing, nmissing ? " " : "");
            strcat(missing, special_text[s]);
            nmissing++;
        }
    }
    if (nmissing) {
        int bom = len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0;
        return up_fail(UP_ERR_FORMAT, "%s: special token%s %s %s missing from the vocabulary (%zu lines); BertTokenizer needs [PAD] [UNK] [CLS] [SEP] [MASK]%s",
                       name, nmissing > 1 ? "s" : "", missing, nmissing > 1 ? "are" : "is", lines,
                       bom ? " (the file starts with a UTF-8 byte order mark, which becomes part of the first token)" : "");
    }
    return UP_OK;
}

/* Does the vocabulary look cased: a token with a character that lowercases to
 * something else? Bracketed ASCII names ([CLS], [unused0], ...) do not count. */
static int vocab_has_upper(const up_tokenizer *t, size_t *example) {
    for (size_t id = 0; id < t->n; id++) {
        const char *s = t->pool + t->off[id];
        size_t n = t->len[id];
        if (n >= 2 && s[0] == '[' && s[n - 1] == ']') {
            size_t k = 1;
            while (k < n - 1 && (isalnum((unsigned char)s[k]) || s[k] == '_')) k++;
            if (k == n - 1) continue;
        }
        for (size_t k = 0; k < n;) {
            uint32_t cp, low[2];
            size_t bad = 0, step = up_utf8_step((const uint8_t *)s + k, n - k, &cp, &bad);
            if (!step) break; /* cannot happen: checked by parse_vocab */
            if (up_uni_lower(cp, low) != 1 || low[0] != cp) {
                *example = id;
                return 1;
            }
            k += step;
        }
    }
    return 0;
}

/* ---- tokenizer_config.json ---------------------------------------------------- */

/* A special token's text in tokenizer_config.json: a string, or an AddedToken
 * object {"content": ...}. NULL if neither. */
static const char *config_token_text(json_t *v) {
    if (json_is_string(v)) return json_string_value(v);
    if (json_is_object(v)) return json_string_value(json_object_get(v, "content"));
    return NULL;
}

/* Reads the keys of tokenizer_config.json that change BertTokenizer's output;
 * each out value is -1 when the key is absent (or null for strip_accents).
 * Settings we do not implement are refused rather than silently ignored. */
static up_status read_tokenizer_config(const char *path, int *lower, int *strip, int *chinese) {
    *lower = *strip = *chinese = -1;
    json_error_t err;
    json_t *root = json_load_file(path, 0, &err);
    if (!root) return up_fail(UP_ERR_FORMAT, "%s:%d:%d: invalid JSON: %s", path, err.line, err.column, err.text);
    up_status st = UP_OK;
    if (!json_is_object(root)) {
        st = up_fail(UP_ERR_FORMAT, "%s: expected a JSON object at the top level", path);
        goto done;
    }
    struct {
        const char *key;
        int *out;
        int nullable;
    } flags[] = {{"do_lower_case", lower, 0}, {"strip_accents", strip, 1}, {"tokenize_chinese_chars", chinese, 0}};
    for (size_t i = 0; i < sizeof flags / sizeof *flags; i++) {
        json_t *v = json_object_get(root, flags[i].key);
        if (!v || (flags[i].nullable && json_is_null(v))) continue;
        if (!json_is_boolean(v)) {
            st = up_fail(UP_ERR_FORMAT, "%s: field '%s': expected true or false%s", path, flags[i].key,
                         flags[i].nullable ? " or null" : "");
            goto done;
        }
        *flags[i].out = json_is_true(v);
    }
    json_t *basic = json_object_get(root, "do_basic_tokenize");
    if (basic && json_is_false(basic)) {
        st = up_fail(UP_ERR_UNSUPPORTED, "%s: do_basic_tokenize is false; only BertTokenizer with basic tokenization is supported", path);
        goto done;
    }
    json_t *never = json_object_get(root, "never_split");
    if (never && !json_is_null(never) && !(json_is_array(never) && json_array_size(never) == 0)) {
        st = up_fail(UP_ERR_UNSUPPORTED, "%s: never_split is set; custom never_split words are not supported", path);
        goto done;
    }
    static const char *const keys[N_SPECIAL] = {"pad_token", "unk_token", "cls_token", "sep_token", "mask_token"};
    for (int s = 0; s < N_SPECIAL; s++) {
        json_t *v = json_object_get(root, keys[s]);
        if (!v) continue;
        const char *text = config_token_text(v);
        if (!text || strcmp(text, special_text[s]) != 0) {
            st = up_fail(UP_ERR_UNSUPPORTED, "%s: field '%s': expected \"%s\", found %s%s%s; other special tokens are not supported",
                         path, keys[s], special_text[s], text ? "\"" : "", text ? text : "a non-string", text ? "\"" : "");
            goto done;
        }
    }
done:
    json_decref(root);
    return st;
}

/* ---- loading ---------------------------------------------------------------- */

up_tokenizer_opts up_tokenizer_opts_default(void) {
    up_tokenizer_opts o = {.lowercase = -1, .strip_accents = -1, .tokenize_chinese_chars = 1};
    return o;
}

void up_tokenizer_free(up_tokenizer *t) {
    if (!t) return;
    free(t->pool);
    free(t->off);
    free(t->len);
    free(t->hash);
    free(t->slots);
    free(t);
}

/* Builds a tokenizer; config_path is tokenizer_config.json beside the vocab
 * file, or NULL (buffers have no directory). */
static up_status build(const char *name, const char *buf, size_t len, const up_tokenizer_opts *opts,
                       const char *config_path, up_tokenizer **out) {
    up_tokenizer_opts o = opts ? *opts : up_tokenizer_opts_default();
    if (o.lowercase < -1 || o.lowercase > 1 || o.strip_accents < -1 || o.strip_accents > 1 ||
        o.tokenize_chinese_chars < -1 || o.tokenize_chinese_chars > 1)
        return up_fail(UP_ERR_INVALID, "%s: tokenizer options: expected lowercase, strip_accents and tokenize_chinese_chars in {-1, 0, 1}, found %d, %d, %d",
                       name, o.lowercase, o.strip_accents, o.tokenize_chinese_chars);
    up_tokenizer *t = up_calloc(1, sizeof *t, "tokenizer");
    if (!t) return UP_ERR_NOMEM;
    up_status st = parse_vocab(t, name, buf, len);
    if (st != UP_OK) {
        up_tokenizer_free(t);
        return st;
    }
    int lower = o.lowercase, strip = o.strip_accents, chinese = o.tokenize_chinese_chars != 0;
    if (lower < 0) {
        if (config_path && up_file_exists(config_path)) {
            /* The model's own settings, as from_pretrained would apply them;
             * tokenize_chinese_chars = 0 in opts still wins (1 is the default
             * and cannot be told apart from "not set"). */
            int c_lower, c_strip, c_chinese;
            st = read_tokenizer_config(config_path, &c_lower, &c_strip, &c_chinese);
            if (st != UP_OK) {
                up_tokenizer_free(t);
                return st;
            }
            lower = c_lower < 0 ? 1 : c_lower; /* BertTokenizer's default is do_lower_case=True */
            if (strip < 0) strip = c_strip;
            if (chinese && c_chinese >= 0) chinese = c_chinese;
            up_log(UP_LOG_INFO, "%s: %s (do_lower_case %s in %s)", name, lower ? "uncased, lowercasing" : "cased",
                   c_lower < 0 ? "absent, HF default true," : c_lower ? "true" : "false", config_path);
        } else {
            size_t example = 0;
            lower = !vocab_has_upper(t, &example);
            if (lower)
                up_log(UP_LOG_INFO, "%s: uncased, lowercasing (no tokenizer_config.json; no token has an upper-case letter)", name);
            else
                up_log(UP_LOG_INFO, "%s: cased (no tokenizer_config.json; token %zu \"%s\" has an upper-case letter)", name,
                       example, t->pool + t->off[example]);
        }
    }
    t->lowercase = lower;
    t->strip_accents = lower ? strip != 0 : strip == 1;
    t->chinese = chinese;
    *out = t;
    return UP_OK;
}

up_status up_tokenizer_from_buffer(const char *name, const char *buf, size_t len, const up_tokenizer_opts *opts,
                                   up_tokenizer **out) {
    if (!out) return up_fail(UP_ERR_INVALID, "up_tokenizer_from_buffer: out is NULL");
    *out = NULL;
    if (!name) name = "vocabulary";
    if (!buf && len) return up_fail(UP_ERR_INVALID, "%s: buffer is NULL", name);
    return build(name, buf ? buf : "", len, opts, NULL, out);
}

up_status up_tokenizer_load(const char *vocab_path, const up_tokenizer_opts *opts, up_tokenizer **out) {
    if (!out) return up_fail(UP_ERR_INVALID, "up_tokenizer_load: out is NULL");
    *out = NULL;
    if (!vocab_path) return up_fail(UP_ERR_INVALID, "up_tokenizer_load: vocab_path is NULL");
    char *buf;
    size_t len;
    up_status st = up_read_file(vocab_path, VOCAB_MAX_FILE_BYTES, &buf, &len);
    if (st != UP_OK) return st;
    char config[4096];
    const char *slash = strrchr(vocab_path, '/');
    if (slash) {
        int dirlen = (int)(slash - vocab_path);
        int k = snprintf(config, sizeof config, "%.*s/tokenizer_config.json", dirlen, vocab_path);
        if (k < 0 || (size_t)k >= sizeof config) {
            free(buf);
            return up_fail(UP_ERR_INVALID, "%s: path too long", vocab_path);
        }
    } else {
        snprintf(config, sizeof config, "tokenizer_config.json");
    }
    st = build(vocab_path, buf, len, opts, config, out);
    free(buf);
    return st;
}

int64_t up_tokenizer_vocab_size(const up_tokenizer *t) { return t ? (int64_t)t->n : 0; }
int up_tokenizer_lowercase(const up_tokenizer *t) { return t ? t->lowercase : 0; }

int32_t up_tokenizer_id(const up_tokenizer *t, const char *token) {
    if (!t || !token) return -1;
    return vocab_find(t, 0, token, strlen(token));
}

const char *up_tokenizer_token(const up_tokenizer *t, int32_t id) {
    if (!t || id < 0 || (size_t)id >= t->n) return NULL;
    return t->pool + t->off[id];
}

/* ---- encoding --------------------------------------------------------------- */

/* Per-call scratch: the text's code points and one buffer per pipeline stage,
 * grown as needed and freed at the end of the call. */
typedef struct {
    up_u32buf cps;   /* decoded text */
    up_u32buf low;   /* one segment between special tokens, lowercased */
    up_u32buf clean; /* the same after _clean_text and _tokenize_chinese_chars */
    up_u32buf nfc;   /* the same after NFC */
    up_u32buf word;  /* one word after accent stripping */
    int32_t *ids;    /* (nids) ids so far */
    size_t nids, idcap;
} work;

static void work_free(work *w) {
    up_u32buf_free(&w->cps);
    up_u32buf_free(&w->low);
    up_u32buf_free(&w->clean);
    up_u32buf_free(&w->nfc);
    up_u32buf_free(&w->word);
    free(w->ids);
}

static up_status push_id(work *w, int32_t id) {
    if (w->nids == w->idcap) {
        size_t cap = w->idcap ? 2 * w->idcap : 256;
        if (cap > ((size_t)1 << 31)) return up_fail(UP_ERR_INVALID, "text gives more than 2^31 word pieces");
        int32_t *ids = realloc(w->ids, cap * sizeof *ids);
        if (!ids) return up_fail(UP_ERR_NOMEM, "out of memory allocating %zu token ids", cap);
        w->ids = ids;
        w->idcap = cap;
    }
    w->ids[w->nids++] = id;
    return UP_OK;
}

/* Is s[0..n) the text of a special token? Returns its index or -1. */
static int special_word(const uint32_t *s, size_t n) {
    for (int k = 0; k < N_SPECIAL; k++) {
        const char *p = special_text[k];
        size_t i = 0;
        while (i < n && p[i] && s[i] == (uint8_t)p[i]) i++;
        if (i == n && !p[i]) return k;
    }
    return -1;
}

/* Does a special token start at s[0..n)? Returns its index (its length in
 * *len) or -1. No special token is a prefix of another, so the first match is
 * the one HF's trie finds. */
static int special_at(const uint32_t *s, size_t n, size_t *len) {
    for (int k = 0; k < N_SPECIAL; k++) {
        const char *p = special_text[k];
        size_t i = 0;
        while (p[i] && i < n && s[i] == (uint8_t)p[i]) i++;
        if (!p[i]) {
            *len = i;
            return k;
        }
    }
    return -1;
}

/* WordpieceTokenizer on one word s[0..n) (no whitespace in it). */
static up_status wordpiece(const up_tokenizer *t, work *w, const uint32_t *s, size_t n) {
    if (n == 0) return UP_OK;
    if (n > MAX_WORD_CHARS) return push_id(w, t->special[SP_UNK]);
    char u8[4 * MAX_WORD_CHARS];
    uint32_t off[MAX_WORD_CHARS + 1]; /* byte offset of each character in u8 */
    off[0] = 0;
    for (size_t i = 0; i < n; i++) off[i + 1] = off[i] + (uint32_t)up_utf8_encode(s[i], u8 + off[i]);
    size_t mark = w->nids;
    for (size_t start = 0; start < n;) {
        /* Longest match first; substrings longer than the longest token are
         * skipped, which changes nothing but the time spent. */
        size_t cap = start ? t->max_cont : t->max_word, end = n;
        while (end > start && off[end] - off[start] > cap) end--;
        int32_t id = -1;
        for (; end > start; end--) {
            id = vocab_find(t, start > 0, u8 + off[start], off[end] - off[start]);
            if (id >= 0) break;
        }
        if (id < 0) { /* the whole word is unknown, not just its tail */
            w->nids = mark;
            return push_id(w, t->special[SP_UNK]);
        }
        up_status st = push_id(w, id);
        if (st != UP_OK) return st;
        start = end;
    }
    return UP_OK;
}

/* Step 8 for one whitespace-separated word: accents, punctuation, WordPiece. */
static up_status basic_word(const up_tokenizer *t, work *w, const uint32_t *s, size_t n) {
    if (special_word(s, n) >= 0) return wordpiece(t, w, s, n); /* never_split: kept whole */
    if (t->strip_accents) {
        int plain = 1; /* nothing below U+00C0 decomposes or is a mark */
        for (size_t i = 0; i < n && plain; i++) plain = s[i] < 0xC0;
        if (!plain) {
            w->word.n = 0;
            up_status st = up_uni_nfd(s, n, &w->word);
            if (st != UP_OK) return st;
            size_t k = 0;
            for (size_t i = 0; i < w->word.n; i++)
                if (!up_uni_is_mn(w->word.v[i])) w->word.v[k++] = w->word.v[i];
            w->word.n = k;
            s = w->word.v;
            n = k;
            /* _run_split_on_punc checks never_split again: "[CĹS]" is "[CLS]" now */
            if (special_word(s, n) >= 0) return wordpiece(t, w, s, n);
        }
    }
    /* _run_split_on_punc: each punctuation character is a word of its own. */
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        if (!up_uni_is_punctuation(s[i])) continue;
        up_status st = wordpiece(t, w, s + start, i - start);
        if (st == UP_OK) st = wordpiece(t, w, s + i, 1);
        if (st != UP_OK) return st;
        start = i + 1;
    }
    return wordpiece(t, w, s + start, n - start);
}

/* Steps 2 and 4-8 for the text between two special tokens. */
static up_status basic_segment(const up_tokenizer *t, work *w, const uint32_t *s, size_t n) {
    if (n == 0) return UP_OK;
    up_status st;
    if (t->lowercase) {
        w->low.n = 0;
        if ((st = up_u32buf_reserve(&w->low, 2 * n)) != UP_OK) return st; /* 2: U+0130 -> i + U+0307 */
        for (size_t i = 0; i < n; i++) w->low.n += (size_t)up_uni_lower(s[i], w->low.v + w->low.n);
        s = w->low.v;
        n = w->low.n;
    }
    /* _clean_text and _tokenize_chinese_chars in one pass */
    w->clean.n = 0;
    if ((st = up_u32buf_reserve(&w->clean, 3 * n)) != UP_OK) return st;
    uint32_t *c = w->clean.v;
    int composable = 0; /* any character at or above U+0300, where NFC can change something */
    for (size_t i = 0; i < n; i++) {
        uint32_t ch = s[i];
        if (ch == 0 || ch == UP_UNI_REPLACEMENT || up_uni_is_control(ch)) continue;
        if (up_uni_is_whitespace(ch)) {
            *c++ = ' ';
        } else if (t->chinese && up_uni_is_cjk(ch)) {
            *c++ = ' ';
            *c++ = ch;
            *c++ = ' ';
        } else {
            *c++ = ch;
            composable |= ch >= 0x300;
        }
    }
    w->clean.n = (size_t)(c - w->clean.v);
    s = w->clean.v;
    n = w->clean.n;
    if (composable) {
        w->nfc.n = 0;
        if ((st = up_uni_nfc(s, n, &w->nfc)) != UP_OK) return st;
        s = w->nfc.v;
        n = w->nfc.n;
    }
    /* whitespace_tokenize: str.split() */
    for (size_t i = 0; i < n;) {
        while (i < n && up_uni_is_pyspace(s[i])) i++;
        size_t j = i;
        while (j < n && !up_uni_is_pyspace(s[j])) j++;
        if (j > i && (st = basic_word(t, w, s + i, j - i)) != UP_OK) return st;
        i = j;
    }
    return UP_OK;
}

/* Steps 1-9 for text[0..len), which the caller cut at a whitespace byte. */
static up_status encode_chunk(const up_tokenizer *t, work *w, const char *text, size_t len) {
    w->cps.n = 0;
    up_status st = up_utf8_decode((const uint8_t *)text, len, &w->cps);
    if (st != UP_OK) return st;
    const uint32_t *s = w->cps.v;
    size_t n = w->cps.n, seg = 0;
    for (size_t i = 0; i < n;) {
        size_t len;
        int k = s[i] == '[' ? special_at(s + i, n - i, &len) : -1;
        if (k < 0) {
            i++;
            continue;
        }
        if ((st = basic_segment(t, w, s + seg, i - seg)) != UP_OK) return st;
        if ((st = push_id(w, t->special[k])) != UP_OK) return st;
        i += len;
        seg = i;
    }
    return basic_segment(t, w, s + seg, n - seg);
}

/* Appends the ids of one text to w->ids. A long text is cut into chunks of
 * about CHUNK_BYTES, each ending before an ASCII whitespace byte, so that the
 * buffers stay small: the result is the same, since such a byte is always a
 * whole character, never part of a special token, a maximal ill-formed
 * subpart or an NFC composition, and every step before the word split maps
 * it to ' '. */
#define CHUNK_BYTES 65536
static up_status encode_text(const up_tokenizer *t, work *w, const char *text) {
    size_t len = strlen(text);
    for (size_t pos = 0; pos < len;) {
        size_t end = len - pos > CHUNK_BYTES ? pos + CHUNK_BYTES : len;
        while (end < len && text[end] != ' ' && text[end] != '\t' && text[end] != '\n' && text[end] != '\r') end++;
        up_status st = encode_chunk(t, w, text + pos, end - pos);
        if (st != UP_OK) return st;
        pos = end;
    }
    return UP_OK;
}

static up_status enc_reserve(up_encoding *e, int n) {
    if (e->ids && e->type_ids && e->cap >= n) return UP_OK;
    int cap = n < 16 ? 16 : n;
    int32_t *ids = realloc(e->ids, (size_t)cap * sizeof *ids);
    if (!ids) return up_fail(UP_ERR_NOMEM, "out of memory allocating an encoding of %d tokens", cap);
    e->ids = ids;
    int32_t *types = realloc(e->type_ids, (size_t)cap * sizeof *types);
    if (!types) return up_fail(UP_ERR_NOMEM, "out of memory allocating an encoding of %d tokens", cap);
    e->type_ids = types;
    e->cap = cap;
    return UP_OK;
}

static void enc_put(up_encoding *e, int32_t id, int32_t type) {
    e->ids[e->n] = id;
    e->type_ids[e->n] = type;
    e->n++;
}

up_status up_tokenizer_encode(const up_tokenizer *t, const char *a, const char *b, int max_len, up_encoding *enc) {
    if (!t || !a || !enc) return up_fail(UP_ERR_INVALID, "up_tokenizer_encode: tokenizer, text and encoding must not be NULL");
    int specials = b ? 3 : 2;
    if (max_len < specials)
        return up_fail(UP_ERR_INVALID, "up_tokenizer_encode: max_len %d is too small: expected at least %d for %s ([CLS] %s[SEP])",
                       max_len, specials, b ? "a pair" : "one text", b ? "a [SEP] b " : "a ");
    work w = {0};
    up_status st = encode_text(t, &w, a);
    size_t na = w.nids;
    if (st == UP_OK && b) st = encode_text(t, &w, b);
    if (st != UP_OK) {
        work_free(&w);
        return st;
    }
    size_t nb = w.nids - na, keep_a = na, keep_b = nb;
    /* truncate_sequences(strategy="longest_first"), right side. */
    if (na + nb + (size_t)specials > (size_t)max_len) {
        size_t remove = na + nb + (size_t)specials - (size_t)max_len;
        if (!b) {
            /* HF only truncates if len(ids) > num_tokens_to_remove; when they
             * are equal (max_len 2 and a non-empty text) it logs an error and
             * returns all tokens, longer than max_len. We keep the promise of
             * max_len and return [CLS] [SEP]. */
            keep_a = na - remove;
        } else {
            /* One token at a time from the longer side, from b on a tie; in
             * closed form: first even out, then split the rest, b taking the
             * odd one. */
            size_t diff = na > nb ? na - nb : nb - na;
            size_t first = remove < diff ? remove : diff, rest = remove - first;
            size_t from_a = (na > nb ? first : 0) + rest / 2;
            keep_a = na - from_a;
            keep_b = nb - (remove - from_a);
        }
    }
    size_t total = keep_a + keep_b + (size_t)specials;
    st = enc_reserve(enc, (int)total);
    if (st == UP_OK) {
        enc->n = 0;
        enc->truncated = (int)(na + nb - keep_a - keep_b);
        enc_put(enc, t->special[SP_CLS], 0);
        for (size_t i = 0; i < keep_a; i++) enc_put(enc, w.ids[i], 0);
        enc_put(enc, t->special[SP_SEP], 0);
        if (b) {
            for (size_t i = 0; i < keep_b; i++) enc_put(enc, w.ids[na + i], 1);
            enc_put(enc, t->special[SP_SEP], 1);
        }
    }
    work_free(&w);
    return st;
}

up_status up_tokenizer_wordpieces(const up_tokenizer *t, const char *text, up_encoding *enc) {
    if (!t || !text || !enc) return up_fail(UP_ERR_INVALID, "up_tokenizer_wordpieces: tokenizer, text and encoding must not be NULL");
    work w = {0};
    up_status st = encode_text(t, &w, text);
    if (st == UP_OK && w.nids > (size_t)0x7FFFFFFF - 16)
        st = up_fail(UP_ERR_INVALID, "up_tokenizer_wordpieces: text gives %zu word pieces, more than an encoding holds", w.nids);
    if (st == UP_OK) st = enc_reserve(enc, (int)w.nids);
    if (st == UP_OK) {
        enc->n = 0;
        enc->truncated = 0;
        for (size_t i = 0; i < w.nids; i++) enc_put(enc, w.ids[i], 0);
    }
    work_free(&w);
    return st;
}

void up_encoding_free(up_encoding *enc) {
    if (!enc) return;
    free(enc->ids);
    free(enc->type_ids);
    enc->ids = enc->type_ids = NULL;
    enc->n = enc->cap = enc->truncated = 0;
}
