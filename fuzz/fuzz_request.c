/*
 * fuzz_request.c: libFuzzer target; the input is a request body of the
 * serving API, parsed as POST /v1/classify and as POST /v1/experts.
 *
 *     scripts/fuzz.sh fuzz_request   (seeds: fuzz/corpus/request)
 */
#include <stdint.h>
#include <string.h>

#include "serve/request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    up_req_limits lim = {.max_inputs = 16, .max_text = 256};
    up_req r;
    char msg[256];
    int code = up_req_parse_classify((const char *)data, size, &lim, &r, msg, sizeof msg);
    if (code == 200) {
        /* what the workers rely on */
        if (r.n < 1 || r.n > lim.max_inputs || !memchr(r.task, 0, sizeof r.task)) __builtin_trap();
        for (int i = 0; i < r.n; i++) {
            if (!r.a[i] || strlen(r.a[i]) > lim.max_text) __builtin_trap();
            if (r.b[i] && strlen(r.b[i]) > lim.max_text) __builtin_trap();
        }
        up_req_free(&r);
    } else if ((code != 400 && code != 413 && code != 500) || r.n || r.a || !memchr(msg, 0, sizeof msg)) {
        __builtin_trap();
    }
    char name[80];
    code = up_req_parse_plug((const char *)data, size, name, sizeof name, msg, sizeof msg);
    if (code == 200 && (!up_req_name_ok(name) || strchr(name, '/'))) __builtin_trap();
    return 0;
}
