/*
 * safetensors.c: validated, memory-mapped safetensors files (single or sharded).
 *
 * A file is hostile until proven otherwise: every length, offset, shape and
 * dtype in the header is checked against the file before a tensor points into
 * the mapping, and every failure names the file, the tensor, the field, what
 * was expected and what was found.
 */
#define _GNU_SOURCE
#include "io/safetensors.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"

#define ST_MAX_HEADER ((uint64_t)100 * 1000 * 1000) /* bytes of JSON header we accept */
#define ST_MAX_INDEX ((size_t)64 << 20)              /* bytes of index.json we accept */
#define ST_MAX_SHARDS 4096
#define ST_MAX_SHARD_NAME 255                         /* NAME_MAX */
#define ST_SINGLE "model.safetensors"
#define ST_INDEX "model.safetensors.index.json"

/* Tensor names, shard names and JSON strings come from the file and may be
 * huge; messages show at most this many bytes of them. */
#define NM "%.160s"

/* ---- dtypes ---------------------------------------------------------------- */

static const struct {
    const char *name;
    size_t size;
} g_dtypes[UP_DT_COUNT] = {
    [UP_DT_F32] = {"F32", 4},         [UP_DT_F16] = {"F16", 2},
    [UP_DT_BF16] = {"BF16", 2},       [UP_DT_F64] = {"F64", 8},
    [UP_DT_I64] = {"I64", 8},         [UP_DT_I32] = {"I32", 4},
    [UP_DT_I16] = {"I16", 2},         [UP_DT_I8] = {"I8", 1},
    [UP_DT_U8] = {"U8", 1},           [UP_DT_BOOL] = {"BOOL", 1},
    [UP_DT_F8_E4M3] = {"F8_E4M3", 1}, [UP_DT_F8_E5M2] = {"F8_E5M2", 1},
    [UP_DT_U16] = {"U16", 2},         [UP_DT_U32] = {"U32", 4},
    [UP_DT_U64] = {"U64", 8},
};

const char *up_dtype_name(up_dtype d) {
    return (unsigned)d < UP_DT_COUNT ? g_dtypes[d].name : "?";
}

size_t up_dtype_size(up_dtype d) {
    return (unsigned)d < UP_DT_COUNT ? g_dtypes[d].size : 0;
}

static int dtype_from_name(const char *s, up_dtype *out) {
    for (int d = 0; d < UP_DT_COUNT; d++)
        if (strcmp(s, g_dtypes[d].name) == 0) {
            *out = (up_dtype)d;
            return 1;
        }
    return 0;
}

/* "F32, F16, BF16, ..." for messages */
static const char *dtype_list(void) {
    static char buf[160];
    if (!buf[0]) {
        size_t n = 0;
        for (int d = 0; d < UP_DT_COUNT; d++)
            n += (size_t)snprintf(buf + n, sizeof buf - n, "%s%s", d ? ", " : "", g_dtypes[d].name);
    }
    return buf;
}

/* ---- string -> index hash table (open addressing, linear probing) ---------- */

typedef struct {
    const char *key; /* not owned; NULL marks an empty slot */
    size_t val;
} st_slot;

typedef struct {
    st_slot *slots;
    size_t mask;
} st_table;

static uint64_t hash_str(const char *s) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h ^ (h >> 29);
}

/* Room for n keys at load <= 1/2. */
static up_status table_init(st_table *t, size_t n, const char *what) {
    size_t cap = 16;
    while (cap / 2 < n) {
        if (!up_mul_ok(cap, 2, &cap)) return up_fail(UP_ERR_NOMEM, "too many entries for %s", what);
    }
    t->slots = up_calloc(cap, sizeof *t->slots, what);
    if (!t->slots) return UP_ERR_NOMEM;
    t->mask = cap - 1;
    return UP_OK;
}

/* The slot holding key, or the empty slot where it would go. */
static st_slot *table_slot(const st_table *t, const char *key) {
    size_t i = (size_t)hash_str(key) & t->mask;
    while (t->slots[i].key && strcmp(t->slots[i].key, key) != 0) i = (i + 1) & t->mask;
    return &t->slots[i];
}

static void table_free(st_table *t) {
    free(t->slots);
    t->slots = NULL;
}

/* ---- JSON helpers ------------------------------------------------------------ */

/* "string \"768\"", "integer 5", "array", ... for messages */
static const char *describe(const json_t *v, char *buf, size_t cap) {
    if (!v) return "nothing";
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: snprintf(buf, cap, "an array of %zu elements", json_array_size(v)); return buf;
    case JSON_STRING: snprintf(buf, cap, "string \"%.40s\"", json_string_value(v)); return buf;
    case JSON_INTEGER: snprintf(buf, cap, "integer %lld", (long long)json_integer_value(v)); return buf;
    case JSON_REAL: snprintf(buf, cap, "real %g", json_real_value(v)); return buf;
    case JSON_TRUE: return "true";
    case JSON_FALSE: return "false";
    case JSON_NULL: return "null";
    }
    return "an unknown JSON value";
}

static int is_nonneg_int(const json_t *v) {
    return json_is_integer(v) && json_integer_value(v) >= 0;
}

static void format_shape(const up_st_tensor *t, char *buf, size_t cap) {
    size_t n = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < t->ndim && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%lld", i ? ", " : "", (long long)t->shape[i]);
    if (n < cap) snprintf(buf + n, cap - n, "]");
}

/* ---- one file ---------------------------------------------------------------- */

typedef struct {
    uint64_t begin, end; /* relative to the data section */
    size_t i;            /* index into the parsed tensors */
} st_range;

static int range_cmp(const void *a, const void *b) {
    const st_range *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

/* Checks one header entry and fills *t (name not set). */
static up_status parse_entry(const char *path, const char *name, const json_t *v, uint64_t data_len,
                             up_st_tensor *t, st_range *r) {
    char d[96];
    if (!json_is_object(v))
        return up_fail(UP_ERR_FORMAT,
                       "%s: tensor '" NM "': expected an object with dtype, shape and data_offsets, found %s",
                       path, name, describe(v, d, sizeof d));

    const json_t *jd = json_object_get(v, "dtype");
    if (!jd)
        return up_fail(UP_ERR_FORMAT, "%s: tensor '" NM "': missing field 'dtype' (expected e.g. \"F32\")",
                       path, name);
    if (!json_is_string(jd))
        return up_fail(UP_ERR_FORMAT, "%s: tensor '" NM "': field 'dtype': expected a string, found %s", path,
                       name, describe(jd, d, sizeof d));
    if (!dtype_from_name(json_string_value(jd), &t->dtype))
        return up_fail(UP_ERR_UNSUPPORTED,
                       "%s: tensor '" NM "': field 'dtype': unknown dtype \"%.40s\", expected one of %s", path,
                       name, json_string_value(jd), dtype_list());

    const json_t *js = json_object_get(v, "shape");
    if (!js)
        return up_fail(UP_ERR_FORMAT, "%s: tensor '" NM "': missing field 'shape' (expected e.g. [768, 768])",
                       path, name);
    if (!json_is_array(js))
        return up_fail(UP_ERR_FORMAT,
                       "%s: tensor '" NM "': field 'shape': expected an array of non-negative integers, found %s",
                       path, name, describe(js, d, sizeof d));
    size_t ndim = json_array_size(js);
    if (ndim > UP_ST_MAX_DIMS)
        return up_fail(UP_ERR_UNSUPPORTED, "%s: tensor '" NM "': field 'shape': %zu dims, expected at most %d",
                       path, name, ndim, UP_ST_MAX_DIMS);
    t->ndim = (int)ndim;
    size_t nelem = 1;
    for (size_t i = 0; i < ndim; i++) {
        const json_t *e = json_array_get(js, i);
        if (!is_nonneg_int(e))
            return up_fail(UP_ERR_FORMAT,
                           "%s: tensor '" NM "': field 'shape[%zu]': expected a non-negative integer, found %s",
                           path, name, i, describe(e, d, sizeof d));
        t->shape[i] = (int64_t)json_integer_value(e);
        if (!up_mul_ok(nelem, (size_t)t->shape[i], &nelem)) {
            format_shape(t, d, sizeof d);
            return up_fail(UP_ERR_FORMAT, "%s: tensor '" NM "': field 'shape': element count of %s%s overflows",
                           path, name, d, i + 1 < ndim ? "..." : "");
        }
    }

    const json_t *jo = json_object_get(v, "data_offsets");
    if (!jo)
        return up_fail(UP_ERR_FORMAT, "%s: tensor '" NM "': missing field 'data_offsets' (expected [begin, end])",
                       path, name);
    if (!json_is_array(jo) || json_array_size(jo) != 2 || !is_nonneg_int(json_array_get(jo, 0)) ||
        !is_nonneg_int(json_array_get(jo, 1))) {
        const char *what = describe(jo, d, sizeof d);
        if (json_is_array(jo) && json_array_size(jo) == 2) {
            const json_t *b0 = json_array_get(jo, 0), *b1 = json_array_get(jo, 1);
            what = describe(is_nonneg_int(b0) ? b1 : b0, d, sizeof d);
        }
        return up_fail(UP_ERR_FORMAT,
                       "%s: tensor '" NM "': field 'data_offsets': expected two non-negative integers "
                       "[begin, end], found %s",
                       path, name, what);
    }
    r->begin = (uint64_t)json_integer_value(json_array_get(jo, 0));
    r->end = (uint64_t)json_integer_value(json_array_get(jo, 1));
    if (r->begin > r->end)
        return up_fail(UP_ERR_FORMAT,
                       "%s: tensor '" NM "': field 'data_offsets': expected begin <= end, found [%llu, %llu]", path,
                       name, (unsigned long long)r->begin, (unsigned long long)r->end);
    if (r->end > data_len)
        return up_fail(UP_ERR_FORMAT,
                       "%s: tensor '" NM "': field 'data_offsets': end %llu is past the end of the data section "
                       "(%llu bytes); the file is truncated or the header is corrupt",
                       path, name, (unsigned long long)r->end, (unsigned long long)data_len);
    size_t need;
    format_shape(t, d, sizeof d);
    if (!up_mul_ok(nelem, up_dtype_size(t->dtype), &need))
        return up_fail(UP_ERR_FORMAT, "%s: tensor '" NM "': byte count of %s x shape %s overflows", path, name,
                       up_dtype_name(t->dtype), d);
    if ((uint64_t)need != r->end - r->begin)
        return up_fail(UP_ERR_FORMAT,
                       "%s: tensor '" NM "': data_offsets [%llu, %llu] span %llu bytes, but dtype %s x shape %s "
                       "needs %zu bytes (%zu elements x %zu)",
                       path, name, (unsigned long long)r->begin, (unsigned long long)r->end,
                       (unsigned long long)(r->end - r->begin), up_dtype_name(t->dtype), d, need, nelem,
                       up_dtype_size(t->dtype));
    t->nbytes = need;
    return UP_OK;
}

/* Sorted by begin, every non-empty range must start at or after the end of
 * the previous non-empty one. Empty tensors occupy no bytes. */
static up_status check_overlaps(const char *path, const up_st_tensor *ts, st_range *rs, size_t n,
                                uint64_t data_len) {
    qsort(rs, n, sizeof *rs, range_cmp);
    const st_range *prev = NULL;
    uint64_t gaps = 0, covered = 0;
    for (size_t k = 0; k < n; k++) {
        const st_range *r = &rs[k];
        if (r->begin == r->end) continue;
        uint64_t prev_end = prev ? prev->end : 0;
        if (prev && r->begin < prev->end)
            return up_fail(UP_ERR_FORMAT,
                           "%s: tensors '" NM "' (bytes [%llu, %llu)) and '" NM "' (bytes [%llu, %llu)) overlap; "
                           "each tensor needs its own bytes",
                           path, ts[prev->i].name, (unsigned long long)prev->begin,
                           (unsigned long long)prev->end, ts[r->i].name, (unsigned long long)r->begin,
                           (unsigned long long)r->end);
        if (r->begin > prev_end) gaps++;
        covered += r->end - r->begin;
        prev = r;
    }
    if (prev && prev->end < data_len) gaps++;
    if (gaps)
        up_log(UP_LOG_DEBUG, "%s: %llu unused byte range(s) in the data section (%llu of %llu bytes used)", path,
               (unsigned long long)gaps, (unsigned long long)covered, (unsigned long long)data_len);
    return UP_OK;
}

static void free_names(up_st_tensor *ts, size_t n) {
    for (size_t i = 0; i < n; i++) free(ts[i].name);
}

void up_st_tensors_free(up_st_tensor *tensors, size_t count) {
    if (!tensors) return;
    free_names(tensors, count);
    free(tensors);
}

up_status up_st_parse(const char *path, const uint8_t *buf, size_t len, int file_index,
                      up_st_tensor **tensors, size_t *count) {
    if (len < 8)
        return up_fail(UP_ERR_FORMAT,
                       "%s: file is %zu bytes, expected at least 8 (the header length); the file is %s", path, len,
                       len ? "truncated" : "empty");
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | buf[i];
    if (hlen == 0)
        return up_fail(UP_ERR_FORMAT,
                       "%s: header length is 0, expected a JSON header of 2 to %llu bytes; not a safetensors file?",
                       path, (unsigned long long)ST_MAX_HEADER);
    if (hlen > ST_MAX_HEADER)
        return up_fail(UP_ERR_FORMAT,
                       "%s: header length is %llu bytes, expected at most %llu (100 MB); not a safetensors file, "
                       "or a corrupt one",
                       path, (unsigned long long)hlen, (unsigned long long)ST_MAX_HEADER);
    if (hlen > len - 8)
        return up_fail(UP_ERR_FORMAT,
                       "%s: header length %llu runs past the end of the file (%zu bytes after the 8-byte length); "
                       "the file is truncated (incomplete download?)",
                       path, (unsigned long long)hlen, len - 8);
    uint64_t data_len = len - 8 - hlen;
    const uint8_t *data = buf + 8 + hlen;

    /* Trailing spaces are allowed by the spec and skipped by jansson. */
    json_error_t jerr;
    size_t flags = JSON_REJECT_DUPLICATES | JSON_DECODE_ANY;
    json_t *root = json_loadb((const char *)buf + 8, (size_t)hlen, flags, &jerr);
    if (!root)
        return up_fail(UP_ERR_FORMAT, "%s: header is not valid JSON: line %d, column %d: %s%s", path, jerr.line,
                       jerr.column, jerr.text,
                       strstr(jerr.text, "duplicate") ? " (tensor names must be unique)" : "");
    if (!json_is_object(root)) {
        char d[96];
        up_status st = up_fail(UP_ERR_FORMAT, "%s: header: expected a JSON object of tensors, found %s", path,
                               describe(root, d, sizeof d));
        json_decref(root);
        return st;
    }

    size_t cap = json_object_size(root);
    up_st_tensor *ts = up_calloc(cap, sizeof *ts, "safetensors tensors");
    st_range *rs = up_calloc(cap, sizeof *rs, "safetensors offsets");
    up_status st = (ts && rs) ? UP_OK : UP_ERR_NOMEM;
    size_t n = 0;
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v) {
        if (st != UP_OK) break;
        if (strcmp(key, "__metadata__") == 0) {
            char d[96];
            if (!json_is_object(v)) {
                st = up_fail(UP_ERR_FORMAT,
                             "%s: field '__metadata__': expected an object of strings (e.g. {\"format\": \"pt\"}), "
                             "found %s",
                             path, describe(v, d, sizeof d));
                break;
            }
            const char *mk;
            json_t *mv;
            json_object_foreach(v, mk, mv) {
                if (!json_is_string(mv))
                    up_log(UP_LOG_DEBUG, "%s: __metadata__ '" NM "' is %s, expected a string; ignored", path, mk,
                           describe(mv, d, sizeof d));
            }
            continue;
        }
        st = parse_entry(path, key, v, data_len, &ts[n], &rs[n]);
        if (st != UP_OK) break;
        ts[n].name = strdup(key);
        if (!ts[n].name) {
            st = up_fail(UP_ERR_NOMEM, "%s: out of memory for tensor names", path);
            break;
        }
        ts[n].data = data + rs[n].begin;
        ts[n].file = file_index;
        rs[n].i = n;
        n++;
    }
    json_decref(root);
    if (st == UP_OK) st = check_overlaps(path, ts, rs, n, data_len);
    free(rs);

    if (st == UP_OK && n) {
        size_t total, bytes;
        up_st_tensor *all = NULL;
        if (!up_add_ok(*count, n, &total) || !up_mul_ok(total, sizeof *all, &bytes) ||
            !(all = realloc(*tensors, bytes)))
            st = up_fail(UP_ERR_NOMEM, "%s: out of memory for %zu tensors", path, n);
        else {
            memcpy(all + *count, ts, n * sizeof *ts);
            *tensors = all;
            *count = total;
            free(ts);
            return UP_OK;
        }
    }
    if (ts) free_names(ts, n);
    free(ts);
    return st;
}

/* ---- conversion -------------------------------------------------------------- */

static float bits_to_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* IEEE binary16 -> binary32, exact for every input: subnormals are
 * renormalized, inf stays inf, NaN keeps its sign and payload. */
static float f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;
    if (exp == 0x1f) return bits_to_f32(sign | 0x7f800000u | (mant << 13));
    if (exp != 0) return bits_to_f32(sign | ((exp + 127 - 15) << 23) | (mant << 13));
    if (mant == 0) return bits_to_f32(sign);
    /* subnormal: mant x 2^-24; shift the leading 1 up to the implicit bit */
    uint32_t e = 127 - 15 + 1;
    while (!(mant & 0x400u)) {
        mant <<= 1;
        e--;
    }
    return bits_to_f32(sign | (e << 23) | ((mant & 0x3ffu) << 13));
}

void up_st_to_f32(const up_st_tensor *t, size_t offset, size_t n, float *dst) {
    size_t es = up_dtype_size(t->dtype);
    size_t nelem = es ? t->nbytes / es : 0;
    int ok = t->dtype == UP_DT_F32 || t->dtype == UP_DT_F16 || t->dtype == UP_DT_BF16;
    size_t valid = !ok || offset >= nelem ? 0 : (nelem - offset < n ? nelem - offset : n);
    /* the data may sit at any byte address: assemble values byte by byte
     * (little-endian, as the format stores them) */
    const uint8_t *p = valid ? t->data + offset * es : t->data;
    switch (t->dtype) {
    case UP_DT_F32:
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        if (valid) memcpy(dst, p, valid * 4);
#else
        for (size_t i = 0; i < valid; i++, p += 4)
            dst[i] = bits_to_f32((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                                 (uint32_t)p[3] << 24);
#endif
        break;
    case UP_DT_F16:
        for (size_t i = 0; i < valid; i++, p += 2) dst[i] = f16_to_f32((uint16_t)(p[0] | p[1] << 8));
        break;
    case UP_DT_BF16:
        for (size_t i = 0; i < valid; i++, p += 2) dst[i] = bits_to_f32((uint32_t)(p[0] | p[1] << 8) << 16);
        break;
    default: break;
    }
    if (valid < n) {
        memset(dst + valid, 0, (n - valid) * sizeof *dst);
        up_log(UP_LOG_ERROR, "up_st_to_f32: tensor '" NM "' (%s, %zu elements): elements [%zu, %zu) %s; zeroed",
               t->name, up_dtype_name(t->dtype), nelem, offset, offset + n,
               ok ? "are out of range" : "are not convertible to fp32");
    }
}

/* ---- index.json ---------------------------------------------------------------- */

typedef struct {
    char **names;          /* (nnames) distinct shard file names, in order of first use */
    size_t nnames;
    const char **tensor;   /* (nmap) tensor names, pointing into root */
    size_t *shard;         /* (nmap) index into names */
    size_t nmap;
    json_t *root;
} st_index;

static void index_free(st_index *x) {
    for (size_t i = 0; i < x->nnames; i++) free(x->names[i]);
    free(x->names);
    free(x->tensor);
    free(x->shard);
    json_decref(x->root);
    memset(x, 0, sizeof *x);
}

/* A shard must be a plain file name inside the model directory. */
static int plain_file_name(const char *s) {
    size_t n = strlen(s);
    return n > 0 && n <= ST_MAX_SHARD_NAME && !strchr(s, '/') && !strchr(s, '\\') && !strstr(s, "..") &&
           strcmp(s, ".") != 0;
}

static up_status index_parse(const char *path, const char *json, size_t len, st_index *x) {
    memset(x, 0, sizeof *x);
    char d[96];
    if (len > ST_MAX_INDEX)
        return up_fail(UP_ERR_FORMAT, "%s: index is %zu bytes, expected at most %zu", path, len, ST_MAX_INDEX);
    json_error_t jerr;
    x->root = json_loadb(json, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (!x->root)
        return up_fail(UP_ERR_FORMAT, "%s: not valid JSON: line %d, column %d: %s", path, jerr.line, jerr.column,
                       jerr.text);
    up_status st = UP_OK;
    st_table names = {0};
    const json_t *wm = json_object_get(x->root, "weight_map");
    if (!json_is_object(x->root)) {
        st = up_fail(UP_ERR_FORMAT, "%s: expected a JSON object with a 'weight_map', found %s", path,
                     describe(x->root, d, sizeof d));
        goto done;
    }
    if (!wm) {
        st = up_fail(UP_ERR_FORMAT, "%s: missing field 'weight_map' (expected {\"tensor name\": \"shard file\"})",
                     path);
        goto done;
    }
    if (!json_is_object(wm)) {
        st = up_fail(UP_ERR_FORMAT, "%s: field 'weight_map': expected an object, found %s", path,
                     describe(wm, d, sizeof d));
        goto done;
    }
    size_t cap = json_object_size(wm);
    if (cap == 0) {
        st = up_fail(UP_ERR_FORMAT, "%s: field 'weight_map' is empty, expected at least one tensor", path);
        goto done;
    }
    x->tensor = up_calloc(cap, sizeof *x->tensor, "index tensor names");
    x->shard = up_calloc(cap, sizeof *x->shard, "index shards");
    x->names = up_calloc(cap, sizeof *x->names, "index shard names");
    if (!x->tensor || !x->shard || !x->names || table_init(&names, cap, "index shard names") != UP_OK) {
        st = UP_ERR_NOMEM;
        goto done;
    }
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)wm, key, v) {
        if (!json_is_string(v)) {
            st = up_fail(UP_ERR_FORMAT, "%s: weight_map['" NM "']: expected a shard file name string, found %s",
                         path, key, describe(v, d, sizeof d));
            goto done;
        }
        const char *f = json_string_value(v);
        if (!plain_file_name(f)) {
            st = up_fail(UP_ERR_FORMAT,
                         "%s: weight_map['" NM "']: shard \"" NM "\" is not a plain file name (expected a name "
                         "of 1 to %d bytes inside the model directory, without '/', '\\' or '..')",
                         path, key, f, ST_MAX_SHARD_NAME);
            goto done;
        }
        st_slot *s = table_slot(&names, f);
        if (!s->key) {
            if (x->nnames == ST_MAX_SHARDS) {
                st = up_fail(UP_ERR_FORMAT, "%s: weight_map names more than %d distinct shard files", path,
                             ST_MAX_SHARDS);
                goto done;
            }
            if (!(x->names[x->nnames] = strdup(f))) {
                st = up_fail(UP_ERR_NOMEM, "%s: out of memory for shard names", path);
                goto done;
            }
            s->key = x->names[x->nnames];
            s->val = x->nnames++;
        }
        x->tensor[x->nmap] = key;
        x->shard[x->nmap] = s->val;
        x->nmap++;
    }
done:
    table_free(&names);
    if (st != UP_OK) index_free(x);
    return st;
}

up_status up_st_parse_index(const char *path, const char *json, size_t len, char ***names, size_t *count) {
    *names = NULL;
    *count = 0;
    st_index x;
    up_status st = index_parse(path, json, len, &x);
    if (st != UP_OK) return st;
    *names = x.names;
    *count = x.nnames;
    x.names = NULL;
    x.nnames = 0;
    index_free(&x);
    return UP_OK;
}

/* ---- sets ------------------------------------------------------------------------ */

struct up_st_set {
    int nfiles;
    char **paths;          /* (nfiles) */
    up_map *maps;          /* (nfiles) */
    int copied;            /* the one file was read into memory (up_st_open_file_copy), not mapped */
    up_st_tensor *tensors; /* (count) */
    size_t count;
    st_table by_name;
    json_t *meta;          /* __metadata__ of the first file, parsed on first up_st_meta */
};

void up_st_close(up_st_set *s) {
    if (!s) return;
    for (int i = 0; i < s->nfiles; i++) {
        if (s->maps && s->copied) free((void *)s->maps[i].data);
        else if (s->maps) up_unmap(&s->maps[i]);
        if (s->paths) free(s->paths[i]);
    }
    free(s->paths);
    free(s->maps);
    up_st_tensors_free(s->tensors, s->count);
    table_free(&s->by_name);
    json_decref(s->meta);
    free(s);
}

static up_status set_new(int nfiles, up_st_set **out) {
    up_st_set *s = up_calloc(1, sizeof *s, "safetensors set");
    if (!s) return UP_ERR_NOMEM;
    s->paths = up_calloc((size_t)nfiles, sizeof *s->paths, "safetensors paths");
    s->maps = up_calloc((size_t)nfiles, sizeof *s->maps, "safetensors mappings");
    s->nfiles = nfiles;
    if (!s->paths || !s->maps) {
        up_st_close(s);
        return UP_ERR_NOMEM;
    }
    *out = s;
    return UP_OK;
}

/* Maps and parses s->paths[i] (already set). */
static up_status set_load_file(up_st_set *s, int i) {
    up_status st = up_map_file(s->paths[i], &s->maps[i]);
    if (st != UP_OK) return st;
    return up_st_parse(s->paths[i], s->maps[i].data, s->maps[i].size, i, &s->tensors, &s->count);
}

/* Hash of all names; a name in two files is an error. */
static up_status set_index(up_st_set *s) {
    up_status st = table_init(&s->by_name, s->count, "safetensors name table");
    if (st != UP_OK) return st;
    for (size_t i = 0; i < s->count; i++) {
        st_slot *slot = table_slot(&s->by_name, s->tensors[i].name);
        if (slot->key) {
            const up_st_tensor *a = &s->tensors[slot->val], *b = &s->tensors[i];
            return up_fail(UP_ERR_FORMAT, "tensor '" NM "' appears in two shards: %s and %s", b->name,
                           s->paths[a->file], s->paths[b->file]);
        }
        slot->key = s->tensors[i].name;
        slot->val = i;
    }
    return UP_OK;
}

up_status up_st_open_file(const char *path, up_st_set **out) {
    *out = NULL;
    up_st_set *s;
    up_status st = set_new(1, &s);
    if (st != UP_OK) return st;
    if (!(s->paths[0] = strdup(path))) st = up_fail(UP_ERR_NOMEM, "out of memory for %s", path);
    if (st == UP_OK) st = set_load_file(s, 0);
    if (st == UP_OK) st = set_index(s);
    if (st != UP_OK) {
        up_st_close(s);
        return st;
    }
    up_log(UP_LOG_DEBUG, "%s: %zu tensors", path, s->count);
    *out = s;
    return UP_OK;
}

up_status up_st_open_file_copy(const char *path, size_t max_bytes, up_st_set **out) {
    *out = NULL;
    up_st_set *s;
    up_status st = set_new(1, &s);
    if (st != UP_OK) return st;
    s->copied = 1;
    char *buf = NULL;
    size_t len = 0;
    if (!(s->paths[0] = strdup(path))) st = up_fail(UP_ERR_NOMEM, "out of memory for %s", path);
    if (st == UP_OK) st = up_read_file(path, max_bytes, &buf, &len);
    if (st == UP_OK) {
        s->maps[0].data = (const uint8_t *)buf;
        s->maps[0].size = len;
        st = up_st_parse(path, s->maps[0].data, len, 0, &s->tensors, &s->count);
    }
    if (st == UP_OK) st = set_index(s);
    if (st != UP_OK) {
        up_st_close(s);
        return st;
    }
    *out = s;
    return UP_OK;
}

static up_status open_sharded(const char *dir, const char *index_path, up_st_set **out) {
    char *json;
    size_t len;
    up_status st = up_read_file(index_path, ST_MAX_INDEX, &json, &len);
    if (st != UP_OK) return st;
    st_index x;
    st = index_parse(index_path, json, len, &x);
    free(json);
    if (st != UP_OK) return st;

    up_st_set *s = NULL;
    st = set_new((int)x.nnames, &s);
    for (size_t i = 0; st == UP_OK && i < x.nnames; i++) {
        char p[4096];
        st = up_path_join(p, sizeof p, dir, x.names[i]);
        if (st != UP_OK) break;
        if (!up_file_exists(p)) {
            size_t first = 0;
            while (x.shard[first] != i) first++;
            st = up_fail(UP_ERR_IO, "%s: shard \"" NM "\" (holding tensor '" NM "' among others) not found: %s",
                         index_path, x.names[i], x.tensor[first], p);
            break;
        }
        if (!(s->paths[i] = strdup(p))) {
            st = up_fail(UP_ERR_NOMEM, "out of memory for %s", p);
            break;
        }
        st = set_load_file(s, (int)i);
    }
    if (st == UP_OK) st = set_index(s);
    for (size_t k = 0; st == UP_OK && k < x.nmap; k++) {
        st_slot *slot = table_slot(&s->by_name, x.tensor[k]);
        if (!slot->key)
            st = up_fail(UP_ERR_FORMAT,
                         "%s: weight_map maps tensor '" NM "' to shard \"" NM "\", which does not contain it",
                         index_path, x.tensor[k], x.names[x.shard[k]]);
        else if ((size_t)s->tensors[slot->val].file != x.shard[k])
            st = up_fail(UP_ERR_FORMAT,
                         "%s: weight_map maps tensor '" NM "' to shard \"" NM "\", but it is in %s", index_path,
                         x.tensor[k], x.names[x.shard[k]], s->paths[s->tensors[slot->val].file]);
    }
    if (st == UP_OK && s->count > x.nmap)
        up_log(UP_LOG_DEBUG, "%s: %zu tensors in the shards are not in weight_map", index_path, s->count - x.nmap);
    index_free(&x);
    if (st != UP_OK) {
        up_st_close(s);
        return st;
    }
    up_log(UP_LOG_DEBUG, "%s: %zu tensors in %d shards", index_path, s->count, s->nfiles);
    *out = s;
    return UP_OK;
}

up_status up_st_open_dir(const char *dir, up_st_set **out) {
    *out = NULL;
    char p[4096];
    up_status st = up_path_join(p, sizeof p, dir, ST_SINGLE);
    if (st != UP_OK) return st;
    if (up_file_exists(p)) return up_st_open_file(p, out);
    st = up_path_join(p, sizeof p, dir, ST_INDEX);
    if (st != UP_OK) return st;
    if (up_file_exists(p)) return open_sharded(dir, p, out);

    char bin[4096];
    int has_bin = up_path_join(bin, sizeof bin, dir, "pytorch_model.bin") == UP_OK && up_file_exists(bin);
    return up_fail(has_bin ? UP_ERR_UNSUPPORTED : UP_ERR_IO,
                   "%s: no weights found: looked for %s and %s; %s (pytorch_model.bin is not supported: convert "
                   "it to safetensors, e.g. with safetensors.torch.save_file)",
                   dir, ST_SINGLE, ST_INDEX,
                   has_bin ? "found pytorch_model.bin" : "neither exists");
}

size_t up_st_count(const up_st_set *s) { return s ? s->count : 0; }

const up_st_tensor *up_st_get(const up_st_set *s, size_t i) {
    return s && i < s->count ? &s->tensors[i] : NULL;
}

const up_st_tensor *up_st_find(const up_st_set *s, const char *name) {
    if (!s || !name || !s->by_name.slots) return NULL;
    const st_slot *slot = table_slot(&s->by_name, name);
    return slot->key ? &s->tensors[slot->val] : NULL;
}

int up_st_num_files(const up_st_set *s) { return s ? s->nfiles : 0; }

const char *up_st_file_name(const up_st_set *s, int file) {
    return s && file >= 0 && file < s->nfiles ? s->paths[file] : NULL;
}

const char *up_st_meta(up_st_set *s, const char *key) {
    if (!s->meta) {
        /* the header was validated when the file was opened */
        const uint8_t *b = s->maps[0].data;
        uint64_t hlen = 0;
        for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | b[i];
        json_t *root = json_loadb((const char *)b + 8, (size_t)hlen, 0, NULL);
        json_t *m = root ? json_object_get(root, "__metadata__") : NULL;
        s->meta = json_is_object(m) ? json_incref(m) : json_object();
        json_decref(root);
    }
    const json_t *v = json_object_get(s->meta, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

up_status up_st_need(const up_st_set *s, const char *path, const char *name, up_dtype dt, int ndim,
                             const int64_t *shape, const up_st_tensor **out) {
    const up_st_tensor *t = up_st_find(s, name);
    if (!t) return up_fail(UP_ERR_FORMAT, "%s: lacks tensor '%s'", path, name);
    if (t->dtype != dt) return up_fail(UP_ERR_FORMAT, "%s: tensor '%s': expected dtype %s, found %s", path, name,
                                       up_dtype_name(dt), up_dtype_name(t->dtype));
    int same = t->ndim == ndim;
    for (int i = 0; same && i < ndim; i++) same = shape[i] < 0 || t->shape[i] == shape[i];
    if (!same) {
        char want[96] = "", got[96] = "";
        for (int i = 0; i < ndim; i++)
            snprintf(want + strlen(want), sizeof want - strlen(want), "%s%lld", i ? ", " : "", (long long)shape[i]);
        for (int i = 0; i < t->ndim && i < 8; i++)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", i ? ", " : "", (long long)t->shape[i]);
        return up_fail(UP_ERR_FORMAT, "%s: tensor '%s': expected shape [%s], found [%s]", path, name, want, got);
    }
    *out = t;
    return UP_OK;
}

up_status up_meta_int(const char *path, const char *key, const char *v, long lo, long hi, long *out) {
    char *end;
    long x = v ? strtol(v, &end, 10) : 0;
    if (!v || *end || end == v || x < lo || x > hi)
        return up_fail(UP_ERR_FORMAT, "%s: metadata '%s': expected an integer in %ld..%ld, found %s%s%s", path, key, lo, hi,
                       v ? "'" : "", v ? v : "nothing", v ? "'" : "");
    *out = x;
    return UP_OK;
}
