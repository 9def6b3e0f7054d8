/*
 * fuzz_vocab.c: libFuzzer target for up_tokenizer_from_buffer on arbitrary
 * bytes as a vocab.txt; a vocabulary that loads must then encode a few texts
 * and look up its own tokens.
 *
 *     ./build-fuzz/fuzz_vocab -max_total_time=60 fuzz/corpus/vocab
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "unplug.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int quiet;
    if (!quiet) {
        up_set_log(NULL, NULL, UP_LOG_ERROR);
        quiet = 1;
    }
    up_tokenizer *t = NULL;
    up_status st = up_tokenizer_from_buffer("fuzz-vocab", (const char *)data, size, NULL, &t);
    if (st != UP_OK) {
        if (t || !up_errmsg()[0]) abort();
        return 0;
    }
    int64_t n = up_tokenizer_vocab_size(t);
    if (n <= 0) abort();
    for (int32_t id = 0; id < n && id < 64; id++) {
        const char *tok = up_tokenizer_token(t, id);
        if (!tok) abort();
        int32_t back = up_tokenizer_id(t, tok);
        if (back < id) abort(); /* a later duplicate may win, never an earlier line */
    }
    static const char *texts[] = {"hello world", "[CLS] a [SEP] b", "caf\xC3\xA9 \xE4\xB8\xAD\xE6\x96\x87!", "", "unaffable ##x"};
    up_encoding e = {0};
    for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
        if (up_tokenizer_encode(t, texts[i], i % 2 ? texts[0] : NULL, 16, &e) != UP_OK) abort();
        if (e.n > 16) abort();
        for (int k = 0; k < e.n; k++)
            if (e.ids[k] < 0 || e.ids[k] >= n) abort();
    }
    up_encoding_free(&e);
    up_tokenizer_free(t);
    return 0;
}
