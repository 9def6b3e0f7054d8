/*
 * fuzz_safetensors.c: libFuzzer target; the input is a whole safetensors file
 * image. Every tensor that parses is converted to fp32 in chunks so each
 * byte its offsets claim is read.
 *
 *     scripts/fuzz.sh   (or build-fuzz/fuzz_safetensors fuzz/corpus/safetensors)
 */
#include <stdint.h>
#include <stdlib.h>

#include "base/base.h"
#include "io/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    up_set_log(NULL, NULL, -1);
    up_st_tensor *ts = NULL;
    size_t n = 0;
    if (up_st_parse("fuzz.safetensors", data, size, 0, &ts, &n) == UP_OK) {
        float buf[257];
        volatile float sink = 0;
        for (size_t i = 0; i < n; i++) {
            const up_st_tensor *t = &ts[i];
            if (t->dtype != UP_DT_F32 && t->dtype != UP_DT_F16 && t->dtype != UP_DT_BF16) continue;
            size_t nelem = t->nbytes / up_dtype_size(t->dtype);
            for (size_t off = 0; off < nelem; off += 257) {
                size_t k = nelem - off < 257 ? nelem - off : 257;
                up_st_to_f32(t, off, k, buf);
                sink += buf[0] + buf[k - 1];
            }
        }
        (void)sink;
    }
    up_st_tensors_free(ts, n);
    return 0;
}
