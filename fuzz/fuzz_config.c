/*
 * fuzz_config.c: libFuzzer target; the input is a config.json text.
 *
 *     scripts/fuzz.sh   (or build-fuzz/fuzz_config fuzz/corpus/config)
 */
#include <stdint.h>
#include <string.h>

#include "base/base.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    up_set_log(NULL, NULL, -1);
    up_config c;
    if (up_config_parse("fuzz.json", (const char *)data, size, &c) == UP_OK) {
        /* the result must be self-consistent */
        if (c.hidden_size % c.num_attention_heads != 0 || c.num_labels < 0 || c.num_labels > UP_MAX_LABELS ||
            !(c.layer_norm_eps > 0) || memchr(c.model_type, 0, sizeof c.model_type) == NULL)
            __builtin_trap();
        for (int i = 0; i < c.num_labels; i++)
            if (!memchr(c.labels[i], 0, sizeof c.labels[i])) __builtin_trap();
    }
    return 0;
}
