#define _XOPEN_SOURCE 700
/*
 * test_model_bad.c: checkpoints that parse as safetensors but do not make a
 * model: missing tensors, shapes that disagree with config.json, weight
 * dtypes we cannot load, NaN / infinite weights, a vocab larger than the
 * embedding table; and batches a run must refuse. Each gives a clear error.
 * The bad files are rewritten here from a good reference model.
 */
#include <ftw.h>
#include <jansson.h>
#include <unistd.h>
#include "test.h"
#include <sys/stat.h>
#include "io/safetensors.h"
#include "base/base.h"

static const char *src_dir;
static char tmp[64];

/* Writes tensors (from a good file) to path as safetensors, with edits:
 * skip = name to drop, retype = name to store as I32 instead, poison = name
 * whose element 3 becomes NaN. */
static void rewrite(const char *path, const up_st_set *s, const char *skip, const char *retype, const char *poison) {
    json_t *h = json_object();
    size_t off = 0, n = up_st_count(s);
    for (size_t i = 0; i < n; i++) {
        const up_st_tensor *t = up_st_get(s, i);
        if (skip && !strcmp(t->name, skip)) continue;
        json_t *shape = json_array();
        for (int d = 0; d < t->ndim; d++) json_array_append_new(shape, json_integer(t->shape[d]));
        const char *dt = retype && !strcmp(t->name, retype) ? "I32" : up_dtype_name(t->dtype);
        json_object_set_new(h, t->name, json_pack("{s:s, s:o, s:[I,I]}", "dtype", dt, "shape", shape,
                                                   "data_offsets", (json_int_t)off, (json_int_t)(off + t->nbytes)));
        off += t->nbytes;
    }
    char *hs = json_dumps(h, JSON_COMPACT);
    json_decref(h);
    size_t hl = strlen(hs), padded = (hl + 7) & ~(size_t)7;
    FILE *f = fopen(path, "wb");
    uint64_t le = padded;
    fwrite(&le, 8, 1, f);
    fwrite(hs, 1, hl, f);
    for (size_t i = hl; i < padded; i++) fputc(' ', f);
    for (size_t i = 0; i < n; i++) {
        const up_st_tensor *t = up_st_get(s, i);
        if (skip && !strcmp(t->name, skip)) continue;
        if (poison && !strcmp(t->name, poison)) {
            unsigned char *copy = malloc(t->nbytes);
            memcpy(copy, t->data, t->nbytes);
            float nan = NAN;
            memcpy(copy + 3 * 4, &nan, 4);
            fwrite(copy, 1, t->nbytes, f);
            free(copy);
        } else fwrite(t->data, 1, t->nbytes, f);
    }
    fclose(f);
    free(hs);
}

static void copy_file(const char *from, const char *to) {
    char *buf;
    size_t len;
    if (up_read_file(from, 1 << 24, &buf, &len) != UP_OK) { test_failures++; return; }
    FILE *f = fopen(to, "wb");
    fwrite(buf, 1, len, f);
    fclose(f);
    free(buf);
}

static char dir[256];
static void fresh_dir(const char *model) {
    static int k;
    snprintf(dir, sizeof dir, "%s/m%d", tmp, k++);
    mkdir(dir, 0700);
    char from[1024], to[512];
    const char *files[] = {"config.json", "vocab.txt", "tokenizer_config.json"};
    for (int i = 0; i < 3; i++) {
        snprintf(from, sizeof from, "%s/tests/data/models/%s/%s", src_dir, model, files[i]);
        snprintf(to, sizeof to, "%s/%s", dir, files[i]);
        copy_file(from, to);
    }
}

static up_status load(void) {
    up_model *m = NULL;
    up_model_opts o = up_model_opts_default();
    o.precision = UP_PREC_FP32;
    up_status st = up_model_load(dir, &o, &m);
    up_model_free(m);
    return st;
}

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb; (void)flag; (void)ftw;
    return remove(p);
}

int main(int argc, char **argv) {
    src_dir = argc > 1 ? argv[1] : ".";
    up_set_log(NULL, NULL, 0);
    snprintf(tmp, sizeof tmp, "/tmp/up_model_bad_XXXXXX");
    if (!mkdtemp(tmp)) return 1;
    char good[1024], out[512];
    snprintf(good, sizeof good, "%s/tests/data/models/bert-f32-gelu_new-cls/model.safetensors", src_dir);
    up_st_set *s = NULL;
    CHECK_OK(up_st_open_file(good, &s));
    if (!s) return test_done();

    /* the unmodified rewrite loads: the edits below are what fails */
    fresh_dir("bert-f32-gelu_new-cls");
    snprintf(out, sizeof out, "%s/model.safetensors", dir);
    rewrite(out, s, NULL, NULL, NULL);
    CHECK_OK(load());

    fresh_dir("bert-f32-gelu_new-cls");
    snprintf(out, sizeof out, "%s/model.safetensors", dir);
    rewrite(out, s, "bert.encoder.layer.1.output.dense.weight", NULL, NULL);
    CHECK_FAIL(load(), "missing tensor 'encoder.layer.1.output.dense.weight'");

    fresh_dir("bert-f32-gelu_new-cls");
    snprintf(out, sizeof out, "%s/model.safetensors", dir);
    rewrite(out, s, "bert.encoder.layer.0.attention.output.LayerNorm.bias", NULL, NULL);
    CHECK_FAIL(load(), "missing tensor", "attention.output.LayerNorm.bias");

    fresh_dir("bert-f32-gelu_new-cls");
    snprintf(out, sizeof out, "%s/model.safetensors", dir);
    rewrite(out, s, NULL, "bert.encoder.layer.2.intermediate.dense.bias", NULL);
    CHECK_FAIL(load(), "intermediate.dense.bias", "dtype I32 is not supported", "F32, F16 or BF16");

    fresh_dir("bert-f32-gelu_new-cls");
    snprintf(out, sizeof out, "%s/model.safetensors", dir);
    rewrite(out, s, NULL, NULL, "bert.encoder.layer.0.intermediate.dense.weight");
    CHECK_FAIL(load(), "layer.0.intermediate.dense.weight", "element 3 is NaN");

    /* a classifier head whose label count disagrees with id2label */
    fresh_dir("bert-f32-gelu_new-cls");
    snprintf(out, sizeof out, "%s/model.safetensors", dir);
    rewrite(out, s, NULL, NULL, NULL);
    snprintf(out, sizeof out, "%s/config.json", dir);
    FILE *f = fopen(out, "w");
    fputs("{\"model_type\": \"bert\", \"vocab_size\": 128, \"hidden_size\": 32, \"num_hidden_layers\": 3, "
          "\"num_attention_heads\": 4, \"intermediate_size\": 64, \"max_position_embeddings\": 64, "
          "\"hidden_act\": \"gelu_new\", \"layer_norm_eps\": 1e-5, \"id2label\": {\"0\": \"a\", \"1\": \"b\"}}", f);
    fclose(f);
    CHECK_FAIL(load(), "classifier.weight", "expected shape [2, 32]", "found [3, 32]");

    /* intermediate_size that disagrees with the stored FFN */
    fresh_dir("bert-f32-gelu_new-cls");
    snprintf(out, sizeof out, "%s/model.safetensors", dir);
    rewrite(out, s, NULL, NULL, NULL);
    snprintf(out, sizeof out, "%s/config.json", dir);
    f = fopen(out, "w");
    fputs("{\"model_type\": \"bert\", \"vocab_size\": 128, \"hidden_size\": 32, \"num_hidden_layers\": 3, "
          "\"num_attention_heads\": 4, \"intermediate_size\": 96, \"max_position_embeddings\": 64}", f);
    fclose(f);
    CHECK_FAIL(load(), "intermediate.dense.weight", "expected shape [96, 32]", "found [64, 32]");

    /* more layers in config than in the file */
    fresh_dir("bert-f32-gelu_new-cls");
    snprintf(out, sizeof out, "%s/model.safetensors", dir);
    rewrite(out, s, NULL, NULL, NULL);
    snprintf(out, sizeof out, "%s/config.json", dir);
    f = fopen(out, "w");
    fputs("{\"model_type\": \"bert\", \"vocab_size\": 128, \"hidden_size\": 32, \"num_hidden_layers\": 4, "
          "\"num_attention_heads\": 4, \"intermediate_size\": 64, \"max_position_embeddings\": 64}", f);
    fclose(f);
    CHECK_FAIL(load(), "missing tensor 'encoder.layer.3.");

    /* a vocab with more tokens than the embedding table */
    fresh_dir("bert-f32-gelu_new-cls");
    snprintf(out, sizeof out, "%s/model.safetensors", dir);
    rewrite(out, s, NULL, NULL, NULL);
    snprintf(out, sizeof out, "%s/vocab.txt", dir);
    f = fopen(out, "a");
    for (int i = 0; i < 10; i++) fprintf(f, "extra%d\n", i);
    fclose(f);
    CHECK_FAIL(load(), "vocab.txt", "138 tokens", "vocab_size 128");

    /* batches a run refuses */
    snprintf(good, sizeof good, "%s/tests/data/models/bert-f32-gelu", src_dir);
    up_model *m = NULL;
    CHECK_OK(up_model_load(good, NULL, &m));
    if (m) {
        up_run *r = NULL;
        CHECK_FAIL(up_run_new(m, 2, 65, &r), "sequence length must be 1..64");
        CHECK_FAIL(up_run_new(m, 0, 8, &r), "batch size must be");
        CHECK_OK(up_run_new(m, 2, 8, &r));
        int32_t ids[16] = {2, 5, 6, 3}, lens[2] = {4, 1}, types[16] = {0};
        up_batch b = {.B = 2, .T = 8, .ids = ids, .type_ids = types, .lens = lens};
        CHECK_OK(up_forward(r, &b));
        ids[5] = 128;
        CHECK_FAIL(up_forward(r, &b), "token id 128 outside 0..127");
        ids[5] = 0;
        types[2] = 2;
        CHECK_FAIL(up_forward(r, &b), "token type 2 outside 0..1");
        types[2] = 0;
        lens[1] = 0;
        CHECK_FAIL(up_forward(r, &b), "row 1: length 0 outside 1..8");
        lens[1] = 1;
        b.B = 3;
        CHECK_FAIL(up_forward(r, &b), "does not fit");
        up_run_free(r);
    }
    up_model_free(m);
    up_st_close(s);
    nftw(tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return test_done();
}
