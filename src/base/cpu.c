/* cpu.c: CPU feature detection (cpuid + the OS's XSAVE support for AVX-512 and AMX state). */
#include "unplug.h"

#include <cpuid.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>

static uint64_t xgetbv0(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

up_cpu_features up_cpu_detect(void) {
    up_cpu_features f = {0};
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
    int osxsave = (c >> 27) & 1;
    if (!osxsave) return f;
    uint64_t xcr0 = xgetbv0();
    int ymm = (xcr0 & 0x6) == 0x6, zmm = (xcr0 & 0xe6) == 0xe6;
    int tiles = (xcr0 & 0x60000) == 0x60000;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return f;
    f.avx2 = ymm && ((b >> 5) & 1);
    f.avx512f = zmm && ((b >> 16) & 1);
    f.avx512bw = zmm && ((b >> 30) & 1);
    f.amx_bf16 = (d >> 22) & 1;
    f.amx_tile = (d >> 24) & 1;
    unsigned a1, b1, c1, d1;
    if (__get_cpuid_count(7, 1, &a1, &b1, &c1, &d1)) f.avx512_bf16 = zmm && ((a1 >> 5) & 1);
    /* Linux hands out AMX tile state only on request (arch_prctl); oneDNN asks itself. */
    if (!tiles) f.amx_tile = f.amx_bf16 = 0;
    return f;
}

const char *up_precision_name(up_precision p) {
    return p == UP_PREC_FP32 ? "fp32" : p == UP_PREC_BF16 ? "bf16" : p == UP_PREC_INT8 ? "int8" : "auto";
}
const char *up_backend_name(up_backend b) {
    return b == UP_BACKEND_REF ? "reference" : b == UP_BACKEND_DNNL ? "onednn" : "auto";
}
