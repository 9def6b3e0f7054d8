/*
 * fuzz_tokenizer.c: libFuzzer target for up_tokenizer_encode and
 * up_tokenizer_wordpieces on arbitrary bytes.
 *
 * Input: byte 0 picks max_len (0..255, so too-small values are tried too),
 * the rest is the text; a 0x01 byte splits it into a pair (a, b). Texts end
 * at a NUL, as C strings do. Checks the encoding's invariants.
 *
 *     ./build-fuzz/fuzz_tokenizer -max_total_time=60 fuzz/corpus/tokenizer
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "unplug.h"

static const char vocab[] =
    "[PAD]\n[unused0]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n"
    "!\n\"\n#\n'\n(\n)\n,\n-\n.\n/\n:\n?\n[\n]\n"
    "a\nb\nc\nd\ne\nf\ni\nl\no\nr\ns\nt\nw\nh\nn\n"
    "##a\n##b\n##c\n##d\n##e\n##s\n##ing\n##ed\n##ly\n##é\n"
    "the\nhello\nworld\nun\n##aff\n##able\ncafe\ncafé\nHello\nWorld\n"
    "中\n文\n##文\nこ\n##ん\nα\nσ\n##ς\n\xE2\x80\x9C\n\xE2\x80\x9D\n";

static up_tokenizer *g_tok[2]; /* uncased, cased */

static void check(const up_tokenizer *t, const up_encoding *e, int max_len, int pair) {
    int64_t v = up_tokenizer_vocab_size(t);
    if (max_len >= 0 && e->n > max_len) abort();
    if (e->n > e->cap || e->truncated < 0) abort();
    for (int i = 0; i < e->n; i++) {
        if (e->ids[i] < 0 || e->ids[i] >= v) abort();
        if (e->type_ids[i] != 0 && (!pair || e->type_ids[i] != 1)) abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!g_tok[0]) {
        up_set_log(NULL, NULL, UP_LOG_ERROR);
        up_tokenizer_opts o = up_tokenizer_opts_default();
        o.lowercase = 1;
        if (up_tokenizer_from_buffer("fuzz-vocab", vocab, sizeof vocab - 1, &o, &g_tok[0]) != UP_OK) abort();
        o.lowercase = 0;
        o.strip_accents = 1;
        if (up_tokenizer_from_buffer("fuzz-vocab", vocab, sizeof vocab - 1, &o, &g_tok[1]) != UP_OK) abort();
    }
    if (size < 1) return 0;
    int max_len = data[0];
    char *text = malloc(size);
    memcpy(text, data + 1, size - 1);
    text[size - 1] = 0;
    char *b = memchr(text, 0x01, size - 1);
    if (b) *b++ = 0;
    for (int k = 0; k < 2; k++) {
        up_encoding e = {0};
        up_status st = up_tokenizer_encode(g_tok[k], text, b, max_len, &e);
        if (st == UP_OK) check(g_tok[k], &e, max_len, b != NULL);
        else if (st != UP_ERR_INVALID || max_len >= (b ? 3 : 2)) abort();
        if (up_tokenizer_wordpieces(g_tok[k], text, &e) != UP_OK) abort();
        check(g_tok[k], &e, -1, 0);
        up_encoding_free(&e);
    }
    free(text);
    return 0;
}
