/* st_write.c: the safetensors writer (see st_write.h). */
#include "io/st_write.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>
#include "base/base.h"
#include "kernels/gemm.h"

typedef struct {
    char *name;
    up_dtype dt;
    int ndim;
    int64_t shape[UP_ST_MAX_DIMS];
    const void *data;
    int from_f32;
    size_t nbytes;
} entry;

struct up_st_writer {
    entry *e;
    size_t n, cap;
    json_t *meta;
};

up_st_writer *up_st_writer_new(void) {
    up_st_writer *w = calloc(1, sizeof *w);
    if (w) w->meta = json_object();
    return w;
}

void up_st_writer_free(up_st_writer *w) {
    if (!w) return;
    for (size_t i = 0; i < w->n; i++) free(w->e[i].name);
    free(w->e);
    json_decref(w->meta);
    free(w);
}

static up_status add(up_st_writer *w, const char *name, up_dtype dt, int ndim, const int64_t *shape,
                     const void *data, int from_f32) {
    if (ndim < 0 || ndim > UP_ST_MAX_DIMS) return up_fail(UP_ERR_INVALID, "tensor '%s': %d dims", name, ndim);
    if (w->n == w->cap) {
        size_t cap = w->cap ? 2 * w->cap : 64;
        entry *e = realloc(w->e, cap * sizeof *e);
        if (!e) return up_fail(UP_ERR_NOMEM, "out of memory adding tensor '%s'", name);
        w->e = e;
        w->cap = cap;
    }
    entry *e = &w->e[w->n];
    memset(e, 0, sizeof *e);
    e->name = strdup(name);
    if (!e->name) return up_fail(UP_ERR_NOMEM, "out of memory adding tensor '%s'", name);
    e->dt = dt;
    e->ndim = ndim;
    size_t count = 1;
    for (int i = 0; i < ndim; i++) {
        e->shape[i] = shape[i];
        count *= (size_t)shape[i];
    }
    e->nbytes = count * up_dtype_size(dt);
    e->data = data;
    e->from_f32 = from_f32;
    w->n++;
    return UP_OK;
}

up_status up_st_writer_add(up_st_writer *w, const char *name, up_dtype dt, int ndim, const int64_t *shape,
                           const void *data) {
    return add(w, name, dt, ndim, shape, data, 0);
}

up_status up_st_writer_add_f32(up_st_writer *w, const char *name, up_dtype dt, int ndim, const int64_t *shape,
                               const float *data) {
    if (dt != UP_DT_F32 && dt != UP_DT_F16 && dt != UP_DT_BF16)
        return up_fail(UP_ERR_INVALID, "tensor '%s': cannot store fp32 as %s", name, up_dtype_name(dt));
    return add(w, name, dt, ndim, shape, data, 1);
}

up_status up_st_writer_meta(up_st_writer *w, const char *key, const char *value) {
    if (json_object_set_new(w->meta, key, json_string(value)) != 0)
        return up_fail(UP_ERR_INVALID, "metadata '%s' is not valid UTF-8", key);
    return UP_OK;
}

static uint16_t f32_to_f16(float f) {
    union { float f; uint32_t u; } v = {f};
    uint32_t x = v.u, sign = (x >> 16) & 0x8000;
    int32_t e = (int32_t)((x >> 23) & 0xff) - 127 + 15;
    uint32_t mant = x & 0x7fffff;
    if (((x >> 23) & 0xff) == 0xff) return (uint16_t)(sign | 0x7c00 | (mant ? 0x200 : 0));
    if (e >= 31) return (uint16_t)(sign | 0x7c00);
    if (e <= 0) {
        if (e < -10) return (uint16_t)sign;
        mant |= 0x800000;
        int shift = 14 - e;
        uint32_t half = 1u << (shift - 1), rest = mant & ((1u << shift) - 1);
        uint32_t r = mant >> shift;
        if (rest > half || (rest == half && (r & 1))) r++;
        return (uint16_t)(sign | r);
    }
    uint32_t r = ((uint32_t)e << 10) | (mant >> 13), rest = mant & 0x1fff;
    if (rest > 0x1000 || (rest == 0x1000 && (r & 1))) r++;
    return (uint16_t)(sign | r);
}

static int write_converted(FILE *f, const entry *e) {
    size_t n = e->nbytes / up_dtype_size(e->dt);
    const float *src = e->data;
    if (e->dt == UP_DT_F32) return fwrite(src, 4, n, f) == n;
    uint16_t buf[4096];
    for (size_t i = 0; i < n; i += 4096) {
        size_t k = n - i < 4096 ? n - i : 4096;
        for (size_t j = 0; j < k; j++) buf[j] = e->dt == UP_DT_BF16 ? up_bf16_from(src[i + j]) : f32_to_f16(src[i + j]);
        if (fwrite(buf, 2, k, f) != k) return 0;
    }
    return 1;
}

up_status up_st_writer_save(up_st_writer *w, const char *path) {
    json_t *h = json_object();
    if (json_object_size(w->meta)) json_object_set(h, "__metadata__", w->meta);
    size_t off = 0;
    for (size_t i = 0; i < w->n; i++) {
        const entry *e = &w->e[i];
        json_t *shape = json_array();
        for (int d = 0; d < e->ndim; d++) json_array_append_new(shape, json_integer(e->shape[d]));
        json_object_set_new(h, e->name, json_pack("{s:s, s:o, s:[I,I]}", "dtype", up_dtype_name(e->dt), "shape", shape,
                                                  "data_offsets", (json_int_t)off, (json_int_t)(off + e->nbytes)));
        off += e->nbytes;
    }
    char *hs = json_dumps(h, JSON_COMPACT);
    json_decref(h);
    if (!hs) return up_fail(UP_ERR_NOMEM, "%s: cannot build the header", path);
    size_t hl = strlen(hs), padded = (hl + 7) & ~(size_t)7;
    /* written beside the target under a name of its own, made durable, then renamed over it: a
     * reader sees the old file or the new one, never a part (a full disk leaves the old one) */
    static unsigned long seq;
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.%ld.%lu.tmp", path, (long)getpid(), __atomic_add_fetch(&seq, 1, __ATOMIC_RELAXED));
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        free(hs);
        return up_fail(UP_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
    }
    uint8_t le[8];
    for (int i = 0; i < 8; i++) le[i] = (uint8_t)((uint64_t)padded >> (8 * i));
    int ok = fwrite(le, 1, 8, f) == 8 && fwrite(hs, 1, hl, f) == hl;
    for (size_t i = hl; ok && i < padded; i++) ok = fputc(' ', f) != EOF;
    free(hs);
    for (size_t i = 0; ok && i < w->n; i++) {
        const entry *e = &w->e[i];
        ok = e->from_f32 ? write_converted(f, e) : fwrite(e->data, 1, e->nbytes, f) == e->nbytes;
    }
    ok = fflush(f) == 0 && ok;
    ok = fsync(fileno(f)) == 0 && ok;
    ok = fclose(f) == 0 && ok;
    if (!ok) {
        remove(tmp);
        return up_fail(UP_ERR_IO, "%s: write failed: %s", tmp, strerror(errno));
    }
    if (rename(tmp, path) != 0) {
        remove(tmp);
        return up_fail(UP_ERR_IO, "%s: cannot rename into place: %s", path, strerror(errno));
    }
    char dir[1100];
    up_path_dirname(path, dir, sizeof dir);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) { /* the rename itself made durable */
        fsync(dfd);
        close(dfd);
    }
    return UP_OK;
}
