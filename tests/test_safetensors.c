/*
 * test_safetensors.c: the safetensors reader on files this test writes byte by
 * byte into a temporary directory: a good file with F32/F16/BF16 tensors read
 * back exactly, every malformed case with its status and message, sharded
 * directories good and bad, and every truncation of a good file.
 *
 *     test_safetensors <source dir>
 */
#define _GNU_SOURCE
#include <ftw.h>
#include <sys/stat.h>
#include <stdint.h>
#include <unistd.h>

#include "test.h"
#include "base/base.h"
#include "io/safetensors.h"

static char g_dir[64];

/* expr fails with status code and a message holding every substring */
#define CHECK_ST(expr, code, ...) do { up_status s2_ = (expr); \
    CHECK_MSG(s2_ == (code), "status %s, expected %s (%s)", up_status_name(s2_), up_status_name(code), up_errmsg()); \
    CHECK_FAIL(s2_, __VA_ARGS__); } while (0)

/* ---- writing files ------------------------------------------------------------ */

typedef struct {
    uint8_t *p;
    size_t n;
} image;

/* 8-byte little-endian length, header + pad spaces, data */
static image make_image(const char *header, size_t pad, const void *data, size_t dlen) {
    size_t hlen = strlen(header) + pad;
    image im = {malloc(8 + hlen + dlen + 1), 8 + hlen + dlen};
    for (int i = 0; i < 8; i++) im.p[i] = (uint8_t)((uint64_t)hlen >> (8 * i));
    memcpy(im.p + 8, header, strlen(header));
    memset(im.p + 8 + strlen(header), ' ', pad);
    if (dlen) memcpy(im.p + 8 + hlen, data, dlen);
    return im;
}

static const char *tmp_path(const char *name) {
    static char p[4][256];
    static int k;
    k = (k + 1) % 4;
    snprintf(p[k], sizeof p[k], "%s/%s", g_dir, name);
    return p[k];
}

static void write_file(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        exit(1);
    }
    if (n && fwrite(p, 1, n, f) != n) exit(1);
    fclose(f);
}

static void write_text(const char *path, const char *s) { write_file(path, s, strlen(s)); }

static void write_image(const char *path, const char *header, const void *data, size_t dlen) {
    image im = make_image(header, 0, data, dlen);
    write_file(path, im.p, im.n);
    free(im.p);
}

/* Writes bytes to bad.safetensors and opens it. */
static up_status open_bytes(const void *p, size_t n) {
    const char *path = tmp_path("bad.safetensors");
    write_file(path, p, n);
    up_st_set *s = (up_st_set *)1;
    up_status st = up_st_open_file(path, &s);
    if (st != UP_OK) CHECK(s == NULL);
    up_st_close(st == UP_OK ? s : NULL);
    return st;
}

static up_status open_header(const char *header, size_t dlen) {
    uint8_t *data = calloc(dlen + 1, 1);
    image im = make_image(header, 0, data, dlen);
    up_status st = open_bytes(im.p, im.n);
    free(im.p);
    free(data);
    return st;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

/* ---- references ------------------------------------------------------------------ */

static uint32_t f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* binary16 by its definition, in double */
static double f16_ref(uint16_t h) {
    int sign = h >> 15, exp = (h >> 10) & 31, mant = h & 1023;
    double v = exp == 0 ? ldexp(mant, -24) : exp == 31 ? (mant ? NAN : INFINITY) : ldexp(1024 + mant, exp - 25);
    return sign ? -v : v;
}

/* same value, or both NaN with the same sign */
static int same_float(float got, double want) {
    if (isnan(want)) return isnan(got) && !signbit(got) == !signbit(want);
    return f32_bits(got) == f32_bits((float)want);
}

/* ---- the good file ------------------------------------------------------------------ */

static const uint16_t g_f16[12] = {0x0000, 0x8000, 0x0001, 0x03ff, 0x0400, 0x3c00,
                                   0xc000, 0x7bff, 0x7c00, 0xfc00, 0x7e00, 0xfc01};
static const uint16_t g_bf16[5] = {0x3f80, 0xc049, 0x7f80, 0x0001, 0xffc0};
static float g_f32[6];

/* c.bf16 [5] at 0, e.scalar F32 [] at 10, a.f32 [2,3] at 14, b.f16 [3,4] at 38,
 * d.empty F32 [0,4] at 62; the header has odd length so nothing is aligned. */
static image good_image(size_t pad) {
    g_f32[0] = 3.14159f, g_f32[1] = -0.0f, g_f32[2] = bits_f32(1), g_f32[3] = INFINITY;
    g_f32[4] = -2.5f, g_f32[5] = bits_f32(0x7fc00001);
    uint8_t data[62];
    size_t o = 0;
    for (int i = 0; i < 5; i++, o += 2) data[o] = (uint8_t)g_bf16[i], data[o + 1] = (uint8_t)(g_bf16[i] >> 8);
    float scalar = 42.0f;
    memcpy(data + o, &scalar, 4), o += 4;
    memcpy(data + o, g_f32, 24), o += 24;
    for (int i = 0; i < 12; i++, o += 2) data[o] = (uint8_t)g_f16[i], data[o + 1] = (uint8_t)(g_f16[i] >> 8);
    const char *h =
        "{\"__metadata__\":{\"format\":\"pt\"},"
        "\"a.f32\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[14,38]},"
        "\"b.f16\":{\"dtype\":\"F16\",\"shape\":[3,4],\"data_offsets\":[38,62]},"
        "\"c.bf16\":{\"dtype\":\"BF16\",\"shape\":[5],\"data_offsets\":[0,10]},"
        "\"d.empty\":{\"dtype\":\"F32\",\"shape\":[0,4],\"data_offsets\":[62,62]},"
        "\"e.scalar\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[10,14]}}";
    size_t hl = strlen(h) + pad;
    return make_image(h, pad + (hl % 2 == 0), data, sizeof data);
}

static void check_good_set(const up_st_set *s) {
    CHECK(up_st_count(s) == 5);
    CHECK(up_st_num_files(s) == 1);
    const up_st_tensor *a = up_st_find(s, "a.f32"), *b = up_st_find(s, "b.f16"), *c = up_st_find(s, "c.bf16");
    const up_st_tensor *d = up_st_find(s, "d.empty"), *e = up_st_find(s, "e.scalar");
    CHECK(up_st_find(s, "nope") == NULL);
    CHECK(up_st_find(s, "__metadata__") == NULL);
    if (!a || !b || !c || !d || !e) {
        CHECK(!"tensor missing");
        return;
    }
    CHECK(a->dtype == UP_DT_F32 && a->ndim == 2 && a->shape[0] == 2 && a->shape[1] == 3 && a->nbytes == 24);
    CHECK(b->dtype == UP_DT_F16 && b->ndim == 2 && b->shape[0] == 3 && b->shape[1] == 4 && b->nbytes == 24);
    CHECK(c->dtype == UP_DT_BF16 && c->ndim == 1 && c->shape[0] == 5 && c->nbytes == 10);
    CHECK(d->ndim == 2 && d->shape[0] == 0 && d->nbytes == 0);
    CHECK(e->ndim == 0 && e->nbytes == 4);
    CHECK(((uintptr_t)a->data & 3) != 0); /* the reader must cope with unaligned data */
    CHECK(b->data - c->data == 38 && a->file == 0);

    float out[12];
    up_st_to_f32(a, 0, 6, out);
    for (int i = 0; i < 6; i++) CHECK_MSG(f32_bits(out[i]) == f32_bits(g_f32[i]), "a.f32[%d]", i);
    up_st_to_f32(a, 4, 2, out);
    CHECK(out[0] == -2.5f && isnan(out[1]));
    up_st_to_f32(e, 0, 1, out);
    CHECK(out[0] == 42.0f);

    up_st_to_f32(b, 0, 12, out);
    for (int i = 0; i < 12; i++)
        CHECK_MSG(same_float(out[i], f16_ref(g_f16[i])), "f16 0x%04x -> %a (0x%08x), expected %a", g_f16[i],
                  out[i], f32_bits(out[i]), f16_ref(g_f16[i]));
    CHECK(out[2] == 0x1p-24f && out[3] == 1023 * 0x1p-24f && out[4] == 0x1p-14f && out[7] == 65504.0f);
    CHECK(isinf(out[8]) && out[8] > 0 && isinf(out[9]) && out[9] < 0);
    CHECK(f32_bits(out[10]) == 0x7fc00000u && isnan(out[11]) && signbit(out[11]));
    CHECK(signbit(out[1]) && out[1] == 0);

    up_st_to_f32(c, 0, 5, out);
    CHECK(out[0] == 1.0f && out[1] == -3.140625f && isinf(out[2]) && out[3] == 0x1p-133f);
    CHECK(isnan(out[4]) && signbit(out[4]));
}

static void test_good(void) {
    image im = good_image(0);
    const char *path = tmp_path("good.safetensors");
    write_file(path, im.p, im.n);
    up_st_set *s = NULL;
    CHECK_OK(up_st_open_file(path, &s));
    if (s) {
        check_good_set(s);
        CHECK(strcmp(up_st_file_name(s, 0), path) == 0);
        CHECK(up_st_file_name(s, 1) == NULL);
        CHECK(up_st_get(s, 5) == NULL && up_st_get(s, 0) != NULL);
    }
    up_st_close(s);
    free(im.p);

    /* header padded with spaces, as the spec allows */
    im = good_image(37);
    write_file(path, im.p, im.n);
    s = NULL;
    CHECK_OK(up_st_open_file(path, &s));
    if (s) check_good_set(s);
    up_st_close(s);

    /* up_st_parse appends to an existing list */
    up_st_tensor *ts = NULL;
    size_t n = 0;
    CHECK_OK(up_st_parse("mem", im.p, im.n, 0, &ts, &n));
    CHECK_OK(up_st_parse("mem2", im.p, im.n, 1, &ts, &n));
    CHECK(n == 10 && ts[0].file == 0 && ts[9].file == 1);
    up_st_tensors_free(ts, n);
    free(im.p);
    up_st_close(NULL);
    up_st_tensors_free(NULL, 0);
    CHECK(up_st_count(NULL) == 0 && up_st_find(NULL, "x") == NULL);
}

/* All 65536 half values against the definition, converted in uneven chunks. */
static void test_f16_exhaustive(void) {
    uint8_t *data = malloc(2 * 65536);
    for (uint32_t i = 0; i < 65536; i++) data[2 * i] = (uint8_t)i, data[2 * i + 1] = (uint8_t)(i >> 8);
    image im = make_image("{\"h\":{\"dtype\":\"F16\",\"shape\":[256,256],\"data_offsets\":[0,131072]}} ", 0, data,
                          2 * 65536);
    up_st_tensor *ts = NULL;
    size_t n = 0;
    CHECK_OK(up_st_parse("f16", im.p, im.n, 0, &ts, &n));
    if (n == 1) {
        float *out = malloc(65536 * sizeof *out);
        for (size_t off = 0; off < 65536; off += 1000)
            up_st_to_f32(&ts[0], off, off + 1000 > 65536 ? 65536 - off : 1000, out + off);
        int bad = 0;
        for (uint32_t i = 0; i < 65536; i++)
            if (!same_float(out[i], f16_ref((uint16_t)i)) && bad++ < 5)
                fprintf(stderr, "f16 0x%04x -> %a, expected %a\n", i, out[i], f16_ref((uint16_t)i));
        CHECK(bad == 0);
        /* out of range: zero-filled, no read past the tensor */
        out[0] = out[1] = 7;
        up_st_to_f32(&ts[0], 65535, 2, out);
        CHECK(isnan(out[0]) && out[1] == 0);
        /* empty or non-float tensors: zeros, nothing read */
        up_st_tensor empty = {.name = "e", .dtype = UP_DT_F32}, ints = ts[0];
        ints.dtype = UP_DT_I16;
        out[0] = out[1] = 7;
        up_st_to_f32(&empty, 0, 2, out);
        CHECK(out[0] == 0 && out[1] == 0);
        out[0] = 7;
        up_st_to_f32(&ints, 0, 1, out);
        CHECK(out[0] == 0);
        free(out);
    }
    up_st_tensors_free(ts, n);
    free(im.p);
    free(data);
}

/* ---- malformed files ------------------------------------------------------------------ */

static void test_bad_files(void) {
    uint8_t raw[16] = {0};
    CHECK_ST(open_bytes(raw, 5), UP_ERR_FORMAT, "bad.safetensors", "file is 5 bytes", "at least 8");
    CHECK_ST(open_bytes(raw, 0), UP_ERR_FORMAT, "bad.safetensors", "empty");
    CHECK_ST(up_st_parse("mem", raw, 0, 0, &(up_st_tensor *){NULL}, &(size_t){0}), UP_ERR_FORMAT, "0 bytes");
    CHECK_ST(open_bytes(raw, 16), UP_ERR_FORMAT, "bad.safetensors", "header length is 0");
    uint64_t big = 200000000;
    for (int i = 0; i < 8; i++) raw[i] = (uint8_t)(big >> (8 * i));
    CHECK_ST(open_bytes(raw, 16), UP_ERR_FORMAT, "header length is 200000000", "at most 100000000");
    raw[0] = 100, raw[1] = raw[2] = raw[3] = 0;
    CHECK_ST(open_bytes(raw, 16), UP_ERR_FORMAT, "header length 100", "past the end of the file", "8 bytes",
             "truncated");
    memset(raw, 0xff, 8);
    CHECK_ST(open_bytes(raw, 16), UP_ERR_FORMAT, "header length is 18446744073709551615");

    CHECK_ST(open_header("{\"a\": ", 0), UP_ERR_FORMAT, "bad.safetensors", "not valid JSON", "line 1", "column");
    CHECK_ST(open_header("{\n\"a\": {]}", 0), UP_ERR_FORMAT, "line 2, column");
    CHECK_ST(open_header("[1, 2]", 0), UP_ERR_FORMAT, "expected a JSON object", "array");
    CHECK_ST(open_header("{\"w\": 5}", 0), UP_ERR_FORMAT, "tensor 'w'", "expected an object", "integer 5");
    CHECK_ST(open_header("{\"w\": {\"shape\":[1],\"data_offsets\":[0,4]}}", 4), UP_ERR_FORMAT, "tensor 'w'",
             "missing field 'dtype'");
    CHECK_ST(open_header("{\"w\": {\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4), UP_ERR_FORMAT,
             "missing field 'shape'");
    CHECK_ST(open_header("{\"w\": {\"dtype\":\"F32\",\"shape\":[1]}}", 4), UP_ERR_FORMAT,
             "missing field 'data_offsets'");
    CHECK_ST(open_header("{\"w\": {\"dtype\":32,\"shape\":[1],\"data_offsets\":[0,4]}}", 4), UP_ERR_FORMAT,
             "field 'dtype'", "expected a string", "integer 32");
    CHECK_ST(open_header("{\"w\": {\"dtype\":\"F99\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4),
             UP_ERR_UNSUPPORTED, "tensor 'w'", "unknown dtype \"F99\"", "F32, F16, BF16");
    CHECK_ST(open_header("{\"w\": {\"dtype\":\"F32\",\"shape\":3,\"data_offsets\":[0,4]}}", 4), UP_ERR_FORMAT,
             "field 'shape'", "non-negative integers", "integer 3");
    CHECK_ST(open_header("{\"w\": {\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4), UP_ERR_FORMAT,
             "shape[0]", "non-negative integer", "integer -1");
    CHECK_ST(open_header("{\"w\": {\"dtype\":\"F32\",\"shape\":[1, 2.0],\"data_offsets\":[0,8]}}", 8),
             UP_ERR_FORMAT, "shape[1]", "real 2");
    CHECK_ST(open_header("{\"w\": {\"dtype\":\"F32\",\"shape\":[1,\"1\"],\"data_offsets\":[0,4]}}", 4),
             UP_ERR_FORMAT, "shape[1]", "string \"1\"");
    CHECK_ST(open_header("{\"w\": {\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4),
             UP_ERR_UNSUPPORTED, "9 dims", "at most 8");
    CHECK_OK(open_header("{\"w\": {\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4));
    CHECK_ST(open_header("{\"w\": {\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,4]}}", 4),
             UP_ERR_FORMAT, "tensor 'w'", "overflows");
    CHECK_ST(open_header("{\"w\": {\"dtype\":\"F64\",\"shape\":[4611686018427387904],\"data_offsets\":[0,4]}}", 4),
             UP_ERR_FORMAT, "byte count", "overflows");
    CHECK_ST(open_header("{\"w\": {\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4), UP_ERR_FORMAT,
             "data_offsets", "two non-negative integers", "an array of 1");
    CHECK_ST(open_header("{\"w\": {\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[\"0\",4]}}", 4),
             UP_ERR_FORMAT, "data_offsets", "string \"0\"");
    CHECK_ST(open_header("{\"w\": {\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", 4), UP_ERR_FORMAT,
             "data_offsets", "integer -4");
    CHECK_ST(open_header("{\"w\": {\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":{\"a\":1}}}", 4),
             UP_ERR_FORMAT, "data_offsets", "an object");
    CHECK_ST(open_header("{\"w\": {\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}", 8), UP_ERR_FORMAT,
             "tensor 'w'", "begin <= end", "[8, 4]");
    CHECK_ST(open_header("{\"w\": {\"dtype\":\"F32\",\"shape\":[100],\"data_offsets\":[0,400]}}", 16),
             UP_ERR_FORMAT, "tensor 'w'", "end 400", "past the end of the data section (16 bytes)");
    CHECK_ST(open_header("{\"w\": {\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,12]}}", 16),
             UP_ERR_FORMAT, "tensor 'w'", "span 12 bytes", "F32 x shape [2, 2]", "needs 16 bytes");
    CHECK_ST(open_header("{\"w\": {\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[0,12]}}", 16),
             UP_ERR_FORMAT, "BF16 x shape [3]", "needs 6 bytes");
    CHECK_ST(open_header("{\"x\": {\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                         " \"y\": {\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]}}", 24),
             UP_ERR_FORMAT, "'x'", "'y'", "overlap");
    /* listed out of order, overlapping only once sorted */
    CHECK_ST(open_header("{\"p\": {\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[16,24]},"
                         " \"q\": {\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                         " \"r\": {\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[4,20]}}", 24),
             UP_ERR_FORMAT, "'r'", "'p'", "overlap");
    CHECK_ST(open_header("{\"x\": {\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                         " \"x\": {\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8),
             UP_ERR_FORMAT, "duplicate", "unique");
    CHECK_ST(open_header("{\"__metadata__\": \"pt\","
                         " \"x\": {\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4),
             UP_ERR_FORMAT, "__metadata__", "expected an object", "string \"pt\"");
    /* metadata of any other content is ignored; so are gaps, unknown fields and
     * empty tensors sitting inside another's bytes */
    CHECK_OK(open_header("{\"__metadata__\": {\"format\": \"pt\", \"n\": 3, \"o\": {}},"
                         " \"x\": {\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"extra\":1},"
                         " \"y\": {\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[12,20]},"
                         " \"z\": {\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[2,2]}}", 24));
    CHECK_OK(open_header("{}", 0));
    CHECK_OK(open_header("{\"__metadata__\": {}}   ", 0));
    CHECK_ST(open_header("{\"a\\u0000b\": 1}", 0), UP_ERR_FORMAT, "not valid JSON");
}

/* Every cut of a good file fails cleanly; the buffer is exactly as long as the
 * cut so the sanitizer sees any read past it. */
static void test_truncated(void) {
    image im = good_image(0);
    size_t nfail = 0;
    for (size_t cut = 0; cut < im.n; cut++) {
        uint8_t *p = malloc(cut ? cut : 1);
        memcpy(p, im.p, cut);
        up_st_tensor *ts = NULL;
        size_t n = 0;
        up_status st = up_st_parse("cut", p, cut, 0, &ts, &n);
        nfail += st != UP_OK;
        CHECK_MSG(st != UP_OK || !"cut parsed", "cut at %zu of %zu", cut, im.n);
        CHECK(n == 0 && ts == NULL);
        CHECK(strstr(up_errmsg(), "cut:") == up_errmsg());
        free(p);
    }
    CHECK(nfail == im.n);
    /* a few through the file path as well */
    size_t cuts[] = {1, 7, 8, 9, 50, im.n - 62, im.n - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++) {
        up_status st = open_bytes(im.p, cuts[i]);
        CHECK_MSG(st == UP_ERR_FORMAT, "cut %zu: %s", cuts[i], up_errmsg());
    }
    CHECK_FAIL(open_bytes(im.p, im.n - 1), "past the end of the data section");
    CHECK_FAIL(open_bytes(im.p, 50), "runs past the end of the file");
    free(im.p);
}

/* Thousands of tensors, each found by name (through the hash table). */
static void test_many(void) {
    enum { N = 5000 };
    size_t cap = (size_t)N * 96 + 16, len = 0;
    char *h = malloc(cap);
    len += (size_t)snprintf(h + len, cap - len, "{");
    for (int i = 0; i < N; i++)
        len += (size_t)snprintf(h + len, cap - len,
                                "%s\"layer.%d.w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[%d,%d]}",
                                i ? "," : "", i, 4 * i, 4 * i + 4);
    snprintf(h + len, cap - len, "}");
    float *data = malloc(N * sizeof *data);
    for (int i = 0; i < N; i++) data[i] = (float)i;
    write_image(tmp_path("many.safetensors"), h, data, N * sizeof *data);
    up_st_set *s = NULL;
    CHECK_OK(up_st_open_file(tmp_path("many.safetensors"), &s));
    CHECK(up_st_count(s) == N);
    int bad = 0;
    for (int i = 0; i < N && s; i++) {
        char name[32];
        snprintf(name, sizeof name, "layer.%d.w", i);
        const up_st_tensor *t = up_st_find(s, name);
        float v = -1;
        if (t) up_st_to_f32(t, 0, 1, &v);
        bad += !t || v != (float)i;
    }
    CHECK(bad == 0);
    CHECK(up_st_find(s, "layer.5000.w") == NULL);
    up_st_close(s);
    free(h);
    free(data);
}

/* ---- directories ------------------------------------------------------------------------- */

static const char *make_dir(const char *name) {
    const char *d = tmp_path(name);
    mkdir(d, 0700);
    return d;
}

static void write_in(const char *dir, const char *name, const char *header, const void *data, size_t dlen) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    write_image(p, header, data, dlen);
}

static void write_text_in(const char *dir, const char *name, const char *text) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    write_text(p, text);
}

#define S1 "model-00001-of-00002.safetensors"
#define S2 "model-00002-of-00002.safetensors"
#define T(name, lo, hi) "\"" name "\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[" #lo "," #hi "]}"

static up_status open_dir_status(const char *dir) {
    up_st_set *s = NULL;
    up_status st = up_st_open_dir(dir, &s);
    up_st_close(s);
    return st;
}

static void test_dirs(void) {
    float v[2] = {1.5f, -7.0f};
    /* good sharded model */
    const char *d = make_dir("sharded");
    write_in(d, S1, "{" T("a", 0, 4) "," T("c", 4, 8) "}", v, 8);
    write_in(d, S2, "{\"__metadata__\":{\"format\":\"pt\"}," T("b", 0, 4) "}", v + 1, 4);
    write_text_in(d, "model.safetensors.index.json",
                  "{\"metadata\": {\"total_size\": 12}, \"weight_map\": {\"a\": \"" S1 "\", \"b\": \"" S2
                  "\", \"c\": \"" S1 "\"}}");
    up_st_set *s = NULL;
    CHECK_OK(up_st_open_dir(d, &s));
    if (s) {
        CHECK(up_st_num_files(s) == 2 && up_st_count(s) == 3);
        const up_st_tensor *a = up_st_find(s, "a"), *b = up_st_find(s, "b"), *c = up_st_find(s, "c");
        CHECK(a && b && c);
        if (a && b && c) {
            CHECK(strstr(up_st_file_name(s, a->file), S1) && strstr(up_st_file_name(s, b->file), S2));
            CHECK(c->file == a->file && b->file != a->file);
            float x = 0;
            up_st_to_f32(b, 0, 1, &x);
            CHECK(x == -7.0f);
            up_st_to_f32(c, 0, 1, &x);
            CHECK(x == -7.0f);
        }
    }
    up_st_close(s);

    /* model.safetensors wins over an index */
    write_in(d, "model.safetensors", "{" T("only", 0, 4) "}", v, 4);
    s = NULL;
    CHECK_OK(up_st_open_dir(d, &s));
    CHECK(up_st_count(s) == 1 && up_st_find(s, "only"));
    up_st_close(s);

    d = make_dir("missing_shard");
    write_in(d, S1, "{" T("a", 0, 4) "}", v, 4);
    write_text_in(d, "model.safetensors.index.json",
                  "{\"weight_map\": {\"a\": \"" S1 "\", \"b\": \"" S2 "\"}}");
    CHECK_ST(open_dir_status(d), UP_ERR_IO, "model.safetensors.index.json", "shard \"" S2 "\"", "'b'",
             "not found");

    d = make_dir("escape");
    write_in(g_dir, "outside.safetensors", "{" T("a", 0, 4) "}", v, 4);
    write_text_in(d, "model.safetensors.index.json", "{\"weight_map\": {\"a\": \"../outside.safetensors\"}}");
    CHECK_ST(open_dir_status(d), UP_ERR_FORMAT, "weight_map['a']", "\"../outside.safetensors\"",
             "not a plain file name");
    write_text_in(d, "model.safetensors.index.json", "{\"weight_map\": {\"a\": \"/etc/passwd\"}}");
    CHECK_ST(open_dir_status(d), UP_ERR_FORMAT, "not a plain file name");
    write_text_in(d, "model.safetensors.index.json", "{\"weight_map\": {\"a\": \"..\"}}");
    CHECK_ST(open_dir_status(d), UP_ERR_FORMAT, "not a plain file name");

    d = make_dir("not_in_shard");
    write_in(d, S1, "{" T("a", 0, 4) "}", v, 4);
    write_in(d, S2, "{" T("b", 0, 4) "}", v, 4);
    write_text_in(d, "model.safetensors.index.json",
                  "{\"weight_map\": {\"a\": \"" S1 "\", \"b\": \"" S2 "\", \"z\": \"" S2 "\"}}");
    CHECK_ST(open_dir_status(d), UP_ERR_FORMAT, "tensor 'z'", "\"" S2 "\"", "does not contain it");
    write_in(d, S1, "{" T("a", 0, 4) "," T("c", 4, 8) "}", v, 8);
    write_text_in(d, "model.safetensors.index.json",
                  "{\"weight_map\": {\"c\": \"" S1 "\", \"a\": \"" S2 "\", \"b\": \"" S2 "\"}}");
    CHECK_ST(open_dir_status(d), UP_ERR_FORMAT, "tensor 'a'", "but it is in", S1);

    d = make_dir("two_shards");
    write_in(d, S1, "{" T("a", 0, 4) "}", v, 4);
    write_in(d, S2, "{" T("a", 0, 4) "," T("b", 4, 8) "}", v, 8);
    write_text_in(d, "model.safetensors.index.json",
                  "{\"weight_map\": {\"a\": \"" S1 "\", \"b\": \"" S2 "\"}}");
    CHECK_ST(open_dir_status(d), UP_ERR_FORMAT, "tensor 'a'", "appears in two shards", S1, S2);

    d = make_dir("bad_shard");
    write_in(d, S1, "{" T("a", 0, 8) "}", v, 8);
    write_text_in(d, "model.safetensors.index.json", "{\"weight_map\": {\"a\": \"" S1 "\"}}");
    CHECK_ST(open_dir_status(d), UP_ERR_FORMAT, S1, "tensor 'a'", "needs 4 bytes");
    write_text_in(d, "model.safetensors.index.json", "{\"weight_map\": ");
    CHECK_ST(open_dir_status(d), UP_ERR_FORMAT, "model.safetensors.index.json", "not valid JSON", "line 1");

    d = make_dir("empty");
    CHECK_ST(open_dir_status(d), UP_ERR_IO, "model.safetensors", "model.safetensors.index.json",
             "pytorch_model.bin is not supported", "convert");
    write_text_in(d, "pytorch_model.bin", "PK");
    CHECK_ST(open_dir_status(d), UP_ERR_UNSUPPORTED, "found pytorch_model.bin", "convert it to safetensors");
    CHECK_ST(open_dir_status(tmp_path("no_such_dir")), UP_ERR_IO, "no_such_dir", "model.safetensors");

    d = make_dir("zero");
    write_text_in(d, "model.safetensors", "");
    CHECK_ST(open_dir_status(d), UP_ERR_FORMAT, "model.safetensors", "empty");
}

static up_status parse_index(const char *json, size_t *count) {
    char **names = NULL;
    *count = 0;
    up_status st = up_st_parse_index("index.json", json, strlen(json), &names, count);
    for (size_t i = 0; i < *count; i++) free(names[i]);
    free(names);
    return st;
}

static void test_index(void) {
    size_t n;
    CHECK_OK(parse_index("{\"weight_map\": {\"a\": \"x\", \"b\": \"y\", \"c\": \"x\"}}", &n));
    CHECK(n == 2);
    char **names = NULL;
    const char *j = "{\"weight_map\": {\"a\": \"x.st\", \"b\": \"y.st\"}}";
    CHECK_OK(up_st_parse_index("index.json", j, strlen(j), &names, &n));
    CHECK(n == 2 && names && strcmp(names[0], "x.st") == 0 && strcmp(names[1], "y.st") == 0);
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
    CHECK_ST(parse_index("{\"weight_map\": {}}", &n), UP_ERR_FORMAT, "index.json", "weight_map", "empty");
    CHECK_ST(parse_index("{\"metadata\": {}}", &n), UP_ERR_FORMAT, "missing field 'weight_map'");
    CHECK_ST(parse_index("{\"weight_map\": []}", &n), UP_ERR_FORMAT, "weight_map", "expected an object");
    CHECK_ST(parse_index("[]", &n), UP_ERR_FORMAT, "expected a JSON object");
    CHECK_ST(parse_index("{\"weight_map\": {\"a\": 3}}", &n), UP_ERR_FORMAT, "weight_map['a']", "integer 3");
    CHECK_ST(parse_index("{\"weight_map\": {\"a\": \"\"}}", &n), UP_ERR_FORMAT, "not a plain file name");
    CHECK_ST(parse_index("{\"weight_map\": {\"a\": \"x\\\\y\"}}", &n), UP_ERR_FORMAT, "not a plain file name");
    CHECK_ST(parse_index("{\"weight_map\": {\"a\": \"x\", \"a\": \"y\"}}", &n), UP_ERR_FORMAT, "duplicate");
    CHECK_ST(parse_index("{\"weight_map\": {\"a\": \"x\"}", &n), UP_ERR_FORMAT, "not valid JSON", "line 1",
             "column");
    CHECK(n == 0);
}

int main(int argc, char **argv) {
    (void)argc, (void)argv;
    up_set_log(NULL, NULL, -1);
    snprintf(g_dir, sizeof g_dir, "/tmp/up_test_st_XXXXXX");
    if (!mkdtemp(g_dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_good();
    test_f16_exhaustive();
    test_bad_files();
    test_truncated();
    test_many();
    test_dirs();
    test_index();
    nftw(g_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return test_done();
}
