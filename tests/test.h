/*
 * test.h: the few macros the C tests use. A failed CHECK prints where and
 * why and makes the test exit non-zero; asserts stay on.
 *
 *     CHECK(x == 1);  CHECK_OK(up_model_load(...));  CHECK_FAIL(st, "expected");
 *     return test_done();
 */
#ifndef UP_TEST_H
#define UP_TEST_H
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "unplug.h"

static int test_failures;
static int test_checks;

#define CHECK(cond) do { test_checks++; if (!(cond)) { test_failures++; \
    fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); } } while (0)
#define CHECK_MSG(cond, ...) do { test_checks++; if (!(cond)) { test_failures++; \
    fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond); \
    fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); } } while (0)
#define CHECK_OK(expr) do { up_status st_ = (expr); test_checks++; if (st_ != UP_OK) { \
    test_failures++; fprintf(stderr, "%s:%d: %s failed: %s\n", __FILE__, __LINE__, #expr, up_errmsg()); } } while (0)
/* expr must fail and its message must contain every given substring */
#define CHECK_FAIL(expr, ...) do { up_status st_ = (expr); test_checks++; \
    const char *subs_[] = {__VA_ARGS__}; \
    if (st_ == UP_OK) { test_failures++; fprintf(stderr, "%s:%d: %s succeeded, expected failure\n", __FILE__, __LINE__, #expr); } \
    else for (size_t i_ = 0; i_ < sizeof subs_ / sizeof *subs_; i_++) if (!strstr(up_errmsg(), subs_[i_])) { \
        test_failures++; fprintf(stderr, "%s:%d: message \"%s\" lacks \"%s\"\n", __FILE__, __LINE__, up_errmsg(), subs_[i_]); } } while (0)

static inline int test_done(void) {
    printf("%d checks, %d failed\n", test_checks, test_failures);
    return test_failures ? 1 : 0;
}

/* 1 when oneDNN has bf16 products on this CPU (AVX-512 or better; the
 * *_avx2 test variants lower it with ONEDNN_MAX_CPU_ISA=AVX2) */
static inline int test_dnnl_bf16(void) {
    const char *isa = up_kernel_isa();
    return strcmp(isa, "avx2") && strcmp(isa, "avx2_vnni") && strcmp(isa, "sse41");
}

/* Returns 1 and prints a skip line when a path is missing (CTest skip code 77). */
#define TEST_SKIP 77
#endif
