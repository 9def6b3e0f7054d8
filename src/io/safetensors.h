/*
 * safetensors.h: read-only, validated access to safetensors files, single or
 * sharded (model.safetensors.index.json), memory-mapped.
 *
 * The format: 8-byte little-endian header length N, N bytes of JSON
 * {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
 * "__metadata__": {..}}, then the data; offsets are relative to the data start.
 * Every field is checked: header past end of file, offsets out of range,
 * overlapping or unordered, byte counts that disagree with dtype x shape,
 * unknown dtypes, duplicate names.
 *
 *     up_st_set *s;
 *     if (up_st_open_dir("model_dir", &s) != UP_OK) puts(up_errmsg());
 *     const up_st_tensor *t = up_st_find(s, "embeddings.word_embeddings.weight");
 *     up_st_close(s);
 */
#ifndef UP_SAFETENSORS_H
#define UP_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>
#include "unplug.h"

typedef enum {
    UP_DT_F32 = 0, UP_DT_F16, UP_DT_BF16,
    /* recognized, not loadable as weights */
    UP_DT_F64, UP_DT_I64, UP_DT_I32, UP_DT_I16, UP_DT_I8, UP_DT_U8, UP_DT_BOOL,
    UP_DT_F8_E4M3, UP_DT_F8_E5M2, UP_DT_U16, UP_DT_U32, UP_DT_U64,
    UP_DT_COUNT
} up_dtype;

const char *up_dtype_name(up_dtype d);
size_t up_dtype_size(up_dtype d);

#define UP_ST_MAX_DIMS 8
typedef struct {
    char *name;
    up_dtype dtype;
    int ndim;
    int64_t shape[UP_ST_MAX_DIMS];
    const uint8_t *data;  /* points into the mapping; may be unaligned */
    size_t nbytes;
    int file;             /* index of the shard it came from */
} up_st_tensor;

typedef struct up_st_set up_st_set;

/* Parses one safetensors image of len bytes (the whole file) and appends its
 * tensors to *tensors / *count (realloc'ed). path only appears in messages. */
up_status up_st_parse(const char *path, const uint8_t *buf, size_t len, int file_index,
                      up_st_tensor **tensors, size_t *count);
void up_st_tensors_free(up_st_tensor *tensors, size_t count);

/* Opens dir/model.safetensors, or dir/model.safetensors.index.json and its
 * shards (file names must stay inside dir). */
up_status up_st_open_dir(const char *dir, up_st_set **out);
/* Opens a single file. */
up_status up_st_open_file(const char *path, up_st_set **out);
/* The same, read into memory (at most max_bytes) instead of mapped: a file
 * that another process truncates or rewrites meanwhile cannot fault the
 * reader (experts, which are small and plugged while serving). */
up_status up_st_open_file_copy(const char *path, size_t max_bytes, up_st_set **out);
void up_st_close(up_st_set *s);

size_t up_st_count(const up_st_set *s);
const up_st_tensor *up_st_get(const up_st_set *s, size_t i);
/* NULL when absent. */
const up_st_tensor *up_st_find(const up_st_set *s, const char *name);
int up_st_num_files(const up_st_set *s);
const char *up_st_file_name(const up_st_set *s, int file);

/* A string of the first file's __metadata__, NULL when absent. */
const char *up_st_meta(up_st_set *s, const char *key);

/* Converts n elements of t (F32/F16/BF16) starting at element offset to fp32. */
void up_st_to_f32(const up_st_tensor *t, size_t offset, size_t n, float *dst);

/* Parses an index.json text into a list of distinct shard file names and a
 * weight_map; used by up_st_open_dir and the fuzzer. *names receives count
 * strings (free each and the array). */
up_status up_st_parse_index(const char *path, const char *json, size_t len, char ***names,
                            size_t *count);

/* The tensor name of s with dtype dt and shape (ndim dims; -1 = any), or a
 * message naming path, the tensor and what differs. */
up_status up_st_need(const up_st_set *s, const char *path, const char *name, up_dtype dt, int ndim,
                     const int64_t *shape, const up_st_tensor **out);
/* A metadata value v of key that must be an integer in lo..hi (v NULL: missing). */
up_status up_meta_int(const char *path, const char *key, const char *v, long lo, long hi, long *out);

#endif
