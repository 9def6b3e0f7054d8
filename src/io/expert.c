/* expert.c: writing and validating task expert files (see expert.h). */
#include "io/expert.h"

#include <jansson.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/base.h"
#include "io/safetensors.h"
#include "io/st_write.h"

/* version 2 added deep prompts (a 3-D prompt) and the pooling key */
#define EXPERT_VERSION 3
static const char *const meta_keys[] = {"base_fingerprint", "base_shape", "created_by", "format", "labels", "lowercase",
                                        "max_len", "method", "metrics", "n_prompt", "pooling", "ratio", "task", "version"};
enum { K_FP, K_SHAPE, K_CREATED, K_FORMAT, K_LABELS, K_LOWER, K_MAXLEN, K_METHOD, K_METRICS, K_NPROMPT, K_POOLING,
       K_RATIO, K_TASK, K_VERSION, N_META };
/* the format version that introduced each key */
static const int meta_since[N_META] = {[K_POOLING] = 2};
static int key_in(int key, long version) { return (meta_since[key] ? meta_since[key] : 1) <= version; }

typedef struct {
    const char *name;
    const void *data;
    size_t nbytes;
} blob;

/* SHA-256 over "key=value\n" of the version's metadata keys (key order) and the tensors' bytes (name order) */
static int checksum(const char *const *values, long version, const blob *b, size_t nb, char hex[65]) {
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char md[32];
    unsigned int len;
    int ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    for (int i = 0; ok && i < N_META; i++)
        if (key_in(i, version))
            ok = EVP_DigestUpdate(ctx, meta_keys[i], strlen(meta_keys[i])) && EVP_DigestUpdate(ctx, "=", 1) &&
             EVP_DigestUpdate(ctx, values[i] ? values[i] : "", values[i] ? strlen(values[i]) : 0) &&
             EVP_DigestUpdate(ctx, "\n", 1);
    for (size_t i = 0; ok && i < nb; i++)
        ok = EVP_DigestUpdate(ctx, b[i].name, strlen(b[i].name) + 1) && EVP_DigestUpdate(ctx, b[i].data, b[i].nbytes);
    ok = ok && EVP_DigestFinal_ex(ctx, md, &len);
    EVP_MD_CTX_free(ctx);
    for (int i = 0; ok && i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", md[i]);
    return ok;
}

static int cmp_blob(const void *a, const void *b) { return strcmp(((const blob *)a)->name, ((const blob *)b)->name); }

up_status up_expert_write(const char *path, up_model *base, const up_task *t, const up_expert_meta *info) {
    const char *fp;
    up_status st = up_model_fingerprint(base, &fp);
    if (st) return st;
    size_t C = (size_t)t->C, NL = (size_t)t->n_labels, P = (size_t)t->n_prompt, K = (size_t)t->prompt_layers;
    blob b[8 + 1024];
    size_t nb = 0;
    b[nb++] = (blob){"prompt", t->prompt, K * P * C * 4};
    b[nb++] = (blob){"pooler.weight", t->pool_w, C * C * 4};
    b[nb++] = (blob){"pooler.bias", t->pool_b, C * 4};
    b[nb++] = (blob){"classifier.weight", t->cls_w, NL * C * 4};
    b[nb++] = (blob){"classifier.bias", t->cls_b, NL * 4};
    char (*kn)[24] = calloc(2 * (size_t)t->n_layers + 1, sizeof *kn);
    if (!kn) return up_fail(UP_ERR_NOMEM, "out of memory");
    for (int l = 0; l < t->n_layers && nb + 1 < sizeof b / sizeof *b; l++) {
        if (t->kept[l]) {
            snprintf(kn[2 * l], sizeof kn[0], "kept.%d", l);
            b[nb++] = (blob){kn[2 * l], t->kept[l], (size_t)t->n_kept[l] * 4};
        }
        if (t->kept_heads[l]) {
            snprintf(kn[2 * l + 1], sizeof kn[0], "heads.%d", l);
            b[nb++] = (blob){kn[2 * l + 1], t->kept_heads[l], (size_t)t->n_kept_heads[l] * 4};
        }
    }
    qsort(b, nb, sizeof *b, cmp_blob);
    /* metadata values, in meta_keys order */
    json_t *labels = json_array();
    for (int i = 0; i < t->n_labels; i++) json_array_append_new(labels, json_string(t->labels[i]));
    char *labels_s = json_dumps(labels, JSON_COMPACT);
    json_decref(labels);
    char shape[96], lower[8], maxlen[16], np[16], ratio[32], ver[8];
    snprintf(shape, sizeof shape, "%lld x %lld x %lld", (long long)base->cfg.num_hidden_layers,
             (long long)base->cfg.hidden_size, (long long)base->cfg.intermediate_size);
    snprintf(lower, sizeof lower, "%d", base->tok ? up_tokenizer_lowercase(base->tok) : 1);
    snprintf(maxlen, sizeof maxlen, "%d", t->max_len);
    snprintf(np, sizeof np, "%d", t->n_prompt);
    snprintf(ratio, sizeof ratio, "%.6f", info->ratio);
    snprintf(ver, sizeof ver, "%d", EXPERT_VERSION);
    json_error_t je;
    json_t *mj = json_loads(info->metrics[0] ? info->metrics : "{}", 0, &je);
    if (!json_is_object(mj)) {
        json_decref(mj);
        free(labels_s);
        free(kn);
        return up_fail(UP_ERR_INVALID, "expert metrics must be a JSON object");
    }
    json_decref(mj);
    const char *values[N_META] = {fp, shape, "unplug " UP_VERSION, "unplug-expert", labels_s, lower, maxlen,
                                  info->method[0] ? info->method : "none", info->metrics[0] ? info->metrics : "{}", np,
                                  t->pool_mean ? "mean" : "cls", ratio, t->name, ver};
    char sum[65];
    up_st_writer *w = up_st_writer_new();
    if (!w || !labels_s || !checksum(values, EXPERT_VERSION, b, nb, sum)) st = up_fail(UP_ERR_NOMEM, "out of memory writing %s", path);
    for (int i = 0; !st && i < N_META; i++) st = up_st_writer_meta(w, meta_keys[i], values[i]);
    if (!st) st = up_st_writer_meta(w, "checksum", sum);
    for (size_t i = 0; !st && i < nb; i++) {
        int64_t shape2[3];
        int nd = 1;
        up_dtype dt = UP_DT_F32;
        if (!strncmp(b[i].name, "kept.", 5) || !strncmp(b[i].name, "heads.", 6)) {
            dt = UP_DT_I32;
            shape2[0] = (int64_t)(b[i].nbytes / 4);
        }
        else if (!strcmp(b[i].name, "prompt") && K > 1) {
            nd = 3; shape2[0] = (int64_t)K; shape2[1] = (int64_t)P; shape2[2] = (int64_t)C;
        } else if (!strcmp(b[i].name, "prompt")) { nd = 2; shape2[0] = (int64_t)P; shape2[1] = (int64_t)C; }
        else if (!strcmp(b[i].name, "pooler.weight")) { nd = 2; shape2[0] = (int64_t)C; shape2[1] = (int64_t)C; }
        else if (!strcmp(b[i].name, "classifier.weight")) { nd = 2; shape2[0] = (int64_t)NL; shape2[1] = (int64_t)C; }
        else shape2[0] = (int64_t)(b[i].nbytes / 4);
        st = up_st_writer_add(w, b[i].name, dt, nd, shape2, b[i].data);
    }
    if (!st) st = up_st_writer_save(w, path);
    up_st_writer_free(w);
    free(labels_s);
    free(kn);
    return st;
}

up_status up_expert_read(const char *path, up_model *base, up_task **out, up_expert_meta *info) {
    *out = NULL;
    memset(info, 0, sizeof *info);
    up_st_set *s = NULL;
    up_status st = up_st_open_file_copy(path, (size_t)1 << 30, &s); /* read, not mapped: see safetensors.h */
    if (st) return st;
    const char *values[N_META];
    for (int i = 0; i < N_META; i++) values[i] = up_st_meta(s, meta_keys[i]);
    const char *fmt = up_st_meta(s, "format"), *sum = up_st_meta(s, "checksum");
    up_task *t = NULL;
    json_t *labels = NULL;
    if (!fmt || strcmp(fmt, "unplug-expert")) {
        st = up_fail(UP_ERR_FORMAT, "%s: not an unplug expert file (metadata format is %s%s%s, expected \"unplug-expert\")",
                     path, fmt ? "\"" : "", fmt ? fmt : "missing", fmt ? "\"" : "");
        goto done;
    }
    long ver = 0, P = 0, maxlen = 0;
    if ((st = up_meta_int(path, "version", values[K_VERSION], 1, 1000, &ver))) goto done;
    if (ver > EXPERT_VERSION) {
        st = up_fail(UP_ERR_UNSUPPORTED, "%s: expert format version %ld is newer than this unplug reads (%d): upgrade unplug",
                     path, ver, EXPERT_VERSION);
        goto done;
    }
    for (int i = 0; i < N_META; i++)
        if (!values[i] && key_in(i, ver)) {
            st = up_fail(UP_ERR_FORMAT, "%s: metadata '%s' is missing", path, meta_keys[i]);
            goto done;
        }
    const char *pooling = ver >= 2 ? values[K_POOLING] : "cls";
    if (strcmp(pooling, "cls") && strcmp(pooling, "mean")) {
        st = up_fail(UP_ERR_FORMAT, "%s: metadata 'pooling': expected \"cls\" or \"mean\", found '%s'", path, pooling);
        goto done;
    }
    if ((st = up_meta_int(path, "n_prompt", values[K_NPROMPT], 0, 4096, &P))) goto done;
    if ((st = up_meta_int(path, "max_len", values[K_MAXLEN], 3, 1 << 20, &maxlen))) goto done;
    json_error_t je;
    labels = json_loads(values[K_LABELS], 0, &je);
    if (!json_is_array(labels) || json_array_size(labels) < 2 || json_array_size(labels) > UP_MAX_LABELS) {
        st = up_fail(UP_ERR_FORMAT, "%s: metadata 'labels': expected a JSON array of 2..%d names", path, UP_MAX_LABELS);
        goto done;
    }
    int NL = (int)json_array_size(labels);
    if (strlen(values[K_TASK]) == 0 || strlen(values[K_TASK]) >= 32) {
        st = up_fail(UP_ERR_FORMAT, "%s: metadata 'task': expected 1..31 bytes", path);
        goto done;
    }
    snprintf(info->method, sizeof info->method, "%s", values[K_METHOD]);
    info->ratio = strtod(values[K_RATIO], NULL);
    snprintf(info->metrics, sizeof info->metrics, "%s", values[K_METRICS]);
    snprintf(info->fingerprint, sizeof info->fingerprint, "%s", values[K_FP]);
    info->version = (int)ver;
    snprintf(info->base_shape, sizeof info->base_shape, "%s", values[K_SHAPE]);
    if (base) {
        const char *fp;
        if ((st = up_model_fingerprint(base, &fp))) goto done;
        if (strcmp(fp, values[K_FP])) {
            st = up_fail(UP_ERR_INVALID, "%s: this expert was made for another base model (fingerprint %.16s..., shape %s); "
                         "%s is %.16s...: load the expert with the model it was tuned on", path, values[K_FP], values[K_SHAPE],
                         base->dir, fp);
            goto done;
        }
    }
    /* shapes: from the base when given, else from the prompt tensor */
    const up_st_tensor *tp = up_st_find(s, "prompt");
    if (!tp || tp->ndim < 2 || tp->ndim > 3) {
        st = up_fail(UP_ERR_FORMAT, "%s: expert lacks a tensor 'prompt' of shape (P,C), or (K,P,C) for deep prompts", path);
        goto done;
    }
    if (tp->ndim == 3 && ver < 2) {
        st = up_fail(UP_ERR_FORMAT, "%s: a deep (3-D) prompt in a version %ld expert (deep prompts are version 2)", path, ver);
        goto done;
    }
    int64_t C = base ? base->cfg.hidden_size : tp->shape[tp->ndim - 1], K = tp->ndim == 3 ? tp->shape[0] : 1;
    int L = 0;
    long F = 0;
    if (base) { L = (int)base->cfg.num_hidden_layers; F = (long)base->cfg.intermediate_size; }
    else if (sscanf(values[K_SHAPE], "%d x %*d x %ld", &L, &F) != 2 || L < 1 || L > 1024 || F < 1) {
        st = up_fail(UP_ERR_FORMAT, "%s: metadata 'base_shape': expected \"L x C x F\", found '%s'", path, values[K_SHAPE]);
        goto done;
    }
    if (C < 1 || C > 65536) { st = up_fail(UP_ERR_FORMAT, "%s: hidden size %lld out of range", path, (long long)C); goto done; }
    if (K < 1 || K > L || (K > 1 && P < 1)) {
        st = up_fail(UP_ERR_FORMAT, "%s: deep prompt over %lld layers of a %d-layer base", path, (long long)K, L);
        goto done;
    }
    const up_st_tensor *x[5];
    int64_t sp[3] = {P, C, 0}, sc[2] = {C, C}, s1[1] = {C}, sl[2] = {NL, C}, s2[1] = {NL};
    if (K > 1) { sp[0] = K; sp[1] = P; sp[2] = C; }
    if ((st = up_st_need(s, path, "prompt", UP_DT_F32, K > 1 ? 3 : 2, sp, &x[0])) ||
        (st = up_st_need(s, path, "pooler.weight", UP_DT_F32, 2, sc, &x[1])) ||
        (st = up_st_need(s, path, "pooler.bias", UP_DT_F32, 1, s1, &x[2])) ||
        (st = up_st_need(s, path, "classifier.weight", UP_DT_F32, 2, sl, &x[3])) ||
        (st = up_st_need(s, path, "classifier.bias", UP_DT_F32, 1, s2, &x[4])))
        goto done;
    /* every tensor is one we know, and the checksum covers them all */
    blob b[1100];
    size_t nb = 0;
    for (size_t i = 0; i < up_st_count(s); i++) {
        const up_st_tensor *tt = up_st_get(s, i);
        int known = !strcmp(tt->name, "prompt") || !strncmp(tt->name, "pooler.", 7) || !strncmp(tt->name, "classifier.", 11);
        int pre = !strncmp(tt->name, "kept.", 5) ? 5 : !strncmp(tt->name, "heads.", 6) && ver >= 3 ? 6 : 0;
        if (pre) {
            char *end;
            long l = strtol(tt->name + pre, &end, 10);
            known = !*end && end != tt->name + pre && l >= 0 && l < L;
        }
        if (!known || nb == sizeof b / sizeof *b) {
            st = up_fail(UP_ERR_FORMAT, "%s: unexpected tensor '%s' (an expert holds prompt, pooler.*, classifier.*, "
                         "kept.0..kept.%d and, from version 3, heads.0..heads.%d)", path, tt->name, L - 1, L - 1);
            goto done;
        }
        b[nb++] = (blob){tt->name, tt->data, tt->nbytes};
    }
    qsort(b, nb, sizeof *b, cmp_blob);
    char want[65];
    if (!checksum(values, ver, b, nb, want)) { st = up_fail(UP_ERR_INTERNAL, "SHA-256 failed"); goto done; }
    if (!sum || strcmp(sum, want)) {
        st = up_fail(UP_ERR_FORMAT, "%s: checksum mismatch (stored %.16s..., computed %.16s...): the file is corrupt or was edited",
                     path, sum ? sum : "none", want);
        goto done;
    }
    /* build the task */
    t = up_calloc(1, sizeof *t, "task");
    if (!t) { st = UP_ERR_NOMEM; goto done; }
    snprintf(t->name, sizeof t->name, "%s", values[K_TASK]);
    t->n_labels = NL;
    for (int i = 0; i < NL; i++) {
        const char *ln = json_string_value(json_array_get(labels, (size_t)i));
        if (!ln || !ln[0] || strlen(ln) >= 32) { st = up_fail(UP_ERR_FORMAT, "%s: label %d: expected a name of 1..31 bytes", path, i); goto done; }
        snprintf(t->labels[i], sizeof t->labels[i], "%s", ln);
        for (int k = 0; k < i; k++)
            if (!strcmp(t->labels[k], ln)) { st = up_fail(UP_ERR_FORMAT, "%s: label '%s' appears twice", path, ln); goto done; }
    }
    t->n_prompt = (int)P;
    t->prompt_layers = (int)K;
    t->pool_mean = !strcmp(pooling, "mean");
    t->max_len = (int)maxlen;
    t->C = (int)C;
    t->n_layers = L;
    {
        if ((st = up_task_alloc(t))) goto done;
        float *dst[5] = {t->prompt, t->pool_w, t->pool_b, t->cls_w, t->cls_b};
        for (int i = 0; i < 5; i++) {
            memcpy(dst[i], x[i]->data, x[i]->nbytes);
            for (size_t k = 0; k < x[i]->nbytes / 4; k++)
                if (!isfinite(dst[i][k])) { st = up_fail(UP_ERR_FORMAT, "%s: tensor '%s' holds a non-finite value", path, x[i]->name); goto done; }
        }
    }
    /* kept FFN neurons and attention heads: increasing indices within the base's */
    long NH = base ? (long)base->cfg.num_attention_heads : C;
    for (int l = 0; l < L; l++)
        for (int kind = 0; kind < 2; kind++) {
            char nm[24];
            snprintf(nm, sizeof nm, kind ? "heads.%d" : "kept.%d", l);
            const up_st_tensor *k = up_st_find(s, nm);
            long lim = kind ? NH : F;
            if (!k) continue;
            if (k->dtype != UP_DT_I32 || k->ndim != 1 || k->shape[0] > lim) {
                st = up_fail(UP_ERR_FORMAT, "%s: '%s': expected at most %ld I32 %s indices", path, nm, lim, kind ? "head" : "neuron");
                goto done;
            }
            int n = (int)k->shape[0];
            int32_t *idx = up_malloc((size_t)(n ? n : 1) * 4, "kept");
            if (!idx) { st = UP_ERR_NOMEM; goto done; }
            memcpy(idx, k->data, (size_t)n * 4);
            for (int i = 0; i < n; i++)
                if (idx[i] < 0 || idx[i] >= lim || (i && idx[i] <= idx[i - 1])) {
                    free(idx);
                    st = up_fail(UP_ERR_FORMAT, "%s: '%s': %s indices must be increasing within 0..%ld (entry %d)", path, nm,
                                 kind ? "head" : "neuron", lim - 1, i);
                    goto done;
                }
            if (kind) { t->kept_heads[l] = idx; t->n_kept_heads[l] = n; }
            else { t->kept[l] = idx; t->n_kept[l] = n; }
        }
done:
    json_decref(labels);
    up_st_close(s);
    if (st) {
        up_task_free(t);
        return st;
    }
    *out = t;
    return UP_OK;
}
