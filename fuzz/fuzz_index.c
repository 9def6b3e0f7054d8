/*
 * fuzz_index.c: libFuzzer target; the input is a model.safetensors.index.json.
 * Every shard name returned must be a plain file name.
 *
 *     scripts/fuzz.sh   (or build-fuzz/fuzz_index fuzz/corpus/index)
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "io/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    up_set_log(NULL, NULL, -1);
    char **names = NULL;
    size_t n = 0;
    if (up_st_parse_index("fuzz.index.json", (const char *)data, size, &names, &n) == UP_OK) {
        if (n == 0) __builtin_trap();
        for (size_t i = 0; i < n; i++) {
            if (!names[i][0] || strchr(names[i], '/') || strstr(names[i], "..")) __builtin_trap();
            for (size_t j = 0; j < i && j < 64; j++)
                if (strcmp(names[i], names[j]) == 0) __builtin_trap();
        }
    }
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
    return 0;
}
