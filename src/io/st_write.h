/*
 * st_write.h: writing safetensors files (model exports and checkpoints).
 *
 * Tensors are gathered first, then written in one pass: header with
 * sorted-by-offset data_offsets, padded with spaces to 8 bytes, then data.
 * The file is written to PATH.tmp and renamed, so a crash never leaves a
 * half-written file under the real name.
 *
 *     up_st_writer *w = up_st_writer_new();
 *     up_st_writer_add(w, "x", UP_DT_F32, 2, (int64_t[]){2, 3}, data);
 *     up_st_writer_meta(w, "step", "100");
 *     up_st_writer_save(w, "out.safetensors");
 *     up_st_writer_free(w);
 */
#ifndef UP_ST_WRITE_H
#define UP_ST_WRITE_H

#include "io/safetensors.h"

typedef struct up_st_writer up_st_writer;
up_st_writer *up_st_writer_new(void);
void up_st_writer_free(up_st_writer *w);
/* data is copied when save runs, so it must stay valid until then; for
 * F16/BF16 from fp32 use up_st_writer_add_f32 which converts at save. */
up_status up_st_writer_add(up_st_writer *w, const char *name, up_dtype dt, int ndim, const int64_t *shape,
                           const void *data);
/* fp32 source stored as dt (F32, F16 or BF16, round to nearest even) */
up_status up_st_writer_add_f32(up_st_writer *w, const char *name, up_dtype dt, int ndim, const int64_t *shape,
                               const float *data);
up_status up_st_writer_meta(up_st_writer *w, const char *key, const char *value);
up_status up_st_writer_save(up_st_writer *w, const char *path);

#endif
