/*
 * test_localize.c: the expert machinery on a tiny model.
 *  - a compacted expert (kept FFN rows/columns copied into smaller dense
 *    matrices) gives the outputs of the full model with the other neurons
 *    masked to zero; a layer with no neurons left skips its FFN;
 *  - activation x gradient attribution equals a central finite-difference
 *    estimate: for neuron j, sum_t h_tj d log p / d h_tj is the derivative of
 *    log p when every h_tj is scaled by (1 + eps);
 *  - integrated gradients are complete (per layer, the scores sum to the
 *    change of log p when that layer's activations go to zero);
 *  - pruning to a ratio keeps the top-scoring share, globally or per layer;
 *  - expert files round-trip, and corrupted or mismatched ones are refused;
 *  - deep prompts: a fresh deep prompt reproduces the shallow model on
 *    "[CLS] prompt [SEP]", its gradient equals central finite differences in
 *    every layer's slice, and it survives an expert file.
 */
#include <unistd.h>
#include "test.h"
#include "base/base.h"
#include "io/expert.h"
#include "localize/localize.h"
#include "model/task.h"
#include "tune/tune.h"

static const char *src;

static up_model *load(const char *name, up_precision p, up_backend b) {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/tests/data/models/%s", src, name);
    up_model_opts o = up_model_opts_default();
    o.precision = p;
    o.backend = b;
    up_model *m = NULL;
    CHECK_OK(up_model_load(dir, &o, &m));
    return m;
}

static const float *head_probe; /* head_scale for logits_of (NULL: none) */
static float *cls_sink;          /* when set, logits_of copies the final [CLS] row there too */

static void logits_of(const up_model *v, const up_task *t, const char *text, const float *scale, float *out) {
    up_run *r = NULL;
    CHECK_OK(up_run_new(v, 1, t->max_len, &r));
    if (!r) return;
    up_run_set_ffn_scale(r, scale);
    up_run_set_head_scale(r, head_probe);
    int32_t ids[64], types[64];
    up_encoding e = {0};
    int len = up_task_encode(t, v->tok, text, NULL, &e, ids, types);
    up_batch b = up_task_batch(t, 1, len, ids, types, &len);
    CHECK_OK(up_forward(r, &b));
    memcpy(out, up_run_logits(r), (size_t)t->n_labels * 4);
    if (cls_sink) memcpy(cls_sink, up_run_cls(r), (size_t)t->C * 4);
    up_encoding_free(&e);
    up_run_free(r);
}

static double logp(const float *lg, int n, int y) {
    double mx = lg[0], s = 0;
    for (int i = 1; i < n; i++) mx = lg[i] > mx ? lg[i] : mx;
    for (int i = 0; i < n; i++) s += exp(lg[i] - mx);
    return lg[y] - mx - log(s);
}

static void test_compaction_equals_masking(up_model *m) {
    char *labels[] = {"a", "b", "c"};
    up_task *t = NULL;
    CHECK_OK(up_task_new(m, "toy", 3, labels, 3, 24, 7, &t));
    if (!t) return;
    int L = t->n_layers, F = (int)m->cfg.intermediate_size;
    float *scale = malloc((size_t)L * F * 4);
    int32_t idx[256];
    for (int l = 0; l < L; l++) {
        int n = 0;
        for (int j = 0; j < F; j++) {
            int keep = l == 1 ? 0 : ((j * 7 + l * 3) % 5) < 2; /* layer 1 loses every neuron */
            scale[(size_t)l * F + j] = (float)keep;
            if (keep) idx[n++] = j;
        }
        CHECK_OK(up_task_set_kept(t, l, idx, n));
    }
    up_task *full = NULL;
    CHECK_OK(up_task_clone(t, &full));
    up_task_clear_kept(full);
    up_model *ve = NULL, *vf = NULL;
    CHECK_OK(up_task_view(m, t, &ve));
    CHECK_OK(up_task_view(m, full, &vf));
    CHECK(ve && ve->w.layers[1].ffn_in.out == 0);
    CHECK(ve && ve->w.layers[0].ffn_in.out < F && ve->w.layers[0].ffn_out.in == ve->w.layers[0].ffn_in.out);
    float a[3], b[3];
    const char *texts[] = {"the film was good", "a bad story , not fine", "x"};
    for (int k = 0; k < 3 && ve && vf; k++) {
        logits_of(ve, t, texts[k], NULL, a);
        logits_of(vf, full, texts[k], scale, b);
        double d = 0;
        for (int i = 0; i < 3; i++) d = fmax(d, fabs(a[i] - b[i]));
        CHECK_MSG(d < 1e-5, "compacted vs masked logits differ by %g on '%s'", d, texts[k]);
    }
    /* and masking changes something: the test can fail */
    logits_of(vf, full, texts[0], NULL, b);
    logits_of(ve, t, texts[0], NULL, a);
    CHECK(fabs(a[0] - b[0]) + fabs(a[1] - b[1]) > 1e-4);
    up_model_free(ve);
    up_model_free(vf);
    up_task_free(full);
    up_task_free(t);
    free(scale);
}

static char *toy_labels[] = {"neg", "pos"};
/* a dataset of one positive example */
static up_dataset one_example(up_example *ex) {
    up_dataset d;
    memset(&d, 0, sizeof d);
    d.ex = ex;
    d.n = 1;
    d.n_labels = 2;
    d.labels = toy_labels;
    return d;
}

static void test_attribution_fd(up_model *m) {
    up_task *t = NULL;
    CHECK_OK(up_task_new(m, "toy", 2, toy_labels, 2, 24, 3, &t));
    if (!t) return;
    up_example ex = {(char *)"the story was good and fine", NULL, 1};
    up_dataset d = one_example(&ex);
    int L = t->n_layers, F = (int)m->cfg.intermediate_size;
    double *sc = malloc((size_t)L * F * sizeof *sc);
    up_attr_opts ao = up_attr_defaults();
    ao.keep_sign = 1;
    CHECK_OK(up_attribute(m, t, &d, &ao, sc));
    up_model *v = NULL;
    CHECK_OK(up_task_view(m, t, &v));
    float *scale = malloc((size_t)L * F * 4), lp[2], lm[2];
    up_encoding e = {0};
    int32_t ids[64], types[64];
    int len = up_task_encode(t, m->tok, ex.text, NULL, &e, ids, types);
    up_encoding_free(&e);
    double eps = 1e-2, worst = 0, scale_ref = 0; /* float logits: a larger step beats rounding */
    int checked = 0;
    for (int l = 0; l < L && v; l++)
        for (int j = 0; j < F; j += 7) {
            for (size_t i = 0; i < (size_t)L * F; i++) scale[i] = 1.0f;
            scale[(size_t)l * F + j] = (float)(1 + eps);
            logits_of(v, t, ex.text, scale, lp);
            scale[(size_t)l * F + j] = (float)(1 - eps);
            logits_of(v, t, ex.text, scale, lm);
            double fd = (logp(lp, 2, 1) - logp(lm, 2, 1)) / (2 * eps) / len; /* the score is a mean over tokens */
            double got = sc[(size_t)l * F + j];
            worst = fmax(worst, fabs(fd - got));
            scale_ref = fmax(scale_ref, fabs(fd));
            checked++;
        }
    CHECK(checked > 20);
    CHECK_MSG(worst <= 1e-2 * fmax(scale_ref, 1e-4), "attribution vs finite differences: max diff %.3g (scale %.3g)", worst,
              scale_ref);
    if (getenv("UP_VERBOSE")) printf("attribution FD: %d neurons, max diff %.3g, scale %.3g\n", checked, worst, scale_ref);
    /* the default takes absolute values per token: every score is >= 0 */
    ao.keep_sign = 0;
    CHECK_OK(up_attribute(m, t, &d, &ao, sc));
    int nonneg = 1;
    for (size_t i = 0; i < (size_t)L * F; i++) nonneg &= sc[i] >= 0;
    CHECK(nonneg);
    free(scale);
    free(sc);
    up_model_free(v);
    up_task_free(t);
}

/* integrated gradients are complete: over a layer, the signed scores add up
 * to log p(gold) minus log p(gold) with that layer's activations at zero */
static void test_integrated_gradients(up_model *m) {
    up_task *t = NULL;
    CHECK_OK(up_task_new(m, "toy", 2, toy_labels, 2, 24, 3, &t));
    if (!t) return;
    up_example ex = {(char *)"the story was good and fine", NULL, 1};
    up_dataset d = one_example(&ex);
    int L = t->n_layers, F = (int)m->cfg.intermediate_size;
    double *sc = malloc((size_t)L * F * sizeof *sc);
    up_attr_opts ao = up_attr_defaults();
    ao.method = UP_ATTR_IG;
    ao.keep_sign = 1;
    ao.ig_steps = 32;
    CHECK_OK(up_attribute(m, t, &d, &ao, sc));
    up_model *v = NULL;
    CHECK_OK(up_task_view(m, t, &v));
    up_encoding e = {0};
    int32_t ids[64], types[64];
    int len = up_task_encode(t, m->tok, ex.text, NULL, &e, ids, types);
    up_encoding_free(&e);
    float *scale = malloc((size_t)L * F * 4), full[2], zero[2];
    double worst = 0, ref = 0;
    for (int l = 0; l < L && v; l++) {
        for (size_t i = 0; i < (size_t)L * F; i++) scale[i] = (int)(i / F) == l ? 0.0f : 1.0f;
        logits_of(v, t, ex.text, NULL, full);
        logits_of(v, t, ex.text, scale, zero);
        double want = logp(full, 2, 1) - logp(zero, 2, 1), got = 0;
        for (int j = 0; j < F; j++) got += sc[(size_t)l * F + j] * len; /* the score is a mean over tokens */
        worst = fmax(worst, fabs(got - want));
        ref = fmax(ref, fabs(want));
        if (getenv("UP_VERBOSE")) printf("IG layer %d: sum %.6f, log p difference %.6f\n", l, got, want);
    }
    CHECK(ref > 1e-4);
    CHECK_MSG(worst <= 2e-2 * ref + 1e-5, "integrated gradients completeness: max diff %.3g (scale %.3g)", worst, ref);
    free(scale);
    free(sc);
    up_model_free(v);
    up_task_free(t);
}

static void test_prune_ratio(up_model *m) {
    char *labels[] = {"a", "b"};
    up_task *t = NULL;
    CHECK_OK(up_task_new(m, "toy", 2, labels, 0, 16, 1, &t));
    if (!t) return;
    int L = t->n_layers, F = (int)m->cfg.intermediate_size;
    double *sc = malloc((size_t)L * F * sizeof *sc);
    for (int l = 0; l < L; l++)
        for (int j = 0; j < F; j++) sc[(size_t)l * F + j] = l == 0 ? 100 + j : j; /* layer 0 scores highest */
    CHECK_OK(up_prune_to_ratio(t, sc, L, F, 0.5, 0));
    int total = 0;
    for (int l = 0; l < L; l++) total += t->n_kept[l];
    CHECK(total == L * F / 2);
    CHECK(t->n_kept[0] == F); /* global ranking keeps all of layer 0 */
    CHECK_OK(up_prune_to_ratio(t, sc, L, F, 0.25, 1));
    for (int l = 0; l < L; l++) CHECK(t->n_kept[l] == F - F / 4 && t->kept[l][0] == F / 4);
    CHECK_FAIL(up_prune_to_ratio(t, sc, L, F, 1.5, 0), "outside 0..1");
    free(sc);
    up_task_free(t);
}

static void test_expert_files(up_model *m, up_model *other) {
    char *labels[] = {"neg", "pos"};
    up_task *t = NULL;
    CHECK_OK(up_task_new(m, "toy", 2, labels, 4, 32, 9, &t));
    if (!t) return;
    int32_t idx[] = {1, 5, 9, 33};
    CHECK_OK(up_task_set_kept(t, 2, idx, 4));
    char dir[] = "/tmp/up_expert_XXXXXX", path[128], bad[160];
    if (!mkdtemp(dir)) return;
    snprintf(path, sizeof path, "%s/toy.expert", dir);
    up_expert_meta info;
    memset(&info, 0, sizeof info);
    snprintf(info.method, sizeof info.method, "actxgrad");
    info.ratio = 0.3;
    snprintf(info.metrics, sizeof info.metrics, "{\"expert_val\": 88.5}");
    CHECK_OK(up_expert_write(path, m, t, &info));
    up_task *u = NULL;
    up_expert_meta got;
    CHECK_OK(up_expert_read(path, m, &u, &got));
    if (u) {
        CHECK(!strcmp(u->name, "toy") && u->n_labels == 2 && !strcmp(u->labels[1], "pos"));
        CHECK(u->n_prompt == 4 && u->max_len == 32 && !memcmp(u->prompt, t->prompt, 4 * 32 * 4));
        CHECK(!memcmp(u->cls_w, t->cls_w, 2 * 32 * 4));
        CHECK(u->kept[2] && u->n_kept[2] == 4 && u->kept[2][3] == 33 && !u->kept[0]);
        CHECK(!strcmp(got.method, "actxgrad") && fabs(got.ratio - 0.3) < 1e-9 && strstr(got.metrics, "88.5"));
    }
    up_task_free(u);
    /* another base model */
    CHECK_FAIL(up_expert_read(path, other, &u, &got), "made for another base model");
    /* flipped byte in the data: checksum */
    char *buf;
    size_t len;
    CHECK_OK(up_read_file(path, 1 << 24, &buf, &len));
    snprintf(bad, sizeof bad, "%s/flip.expert", dir);
    buf[len - 3] ^= 0x40;
    FILE *f = fopen(bad, "wb");
    fwrite(buf, 1, len, f);
    fclose(f);
    CHECK_FAIL(up_expert_read(bad, m, &u, &got), "checksum mismatch");
    buf[len - 3] ^= 0x40;
    /* truncated */
    f = fopen(bad, "wb");
    fwrite(buf, 1, len / 2, f);
    fclose(f);
    CHECK_FAIL(up_expert_read(bad, m, &u, &got), "flip.expert");
    free(buf);
    /* a plain model file is not an expert */
    char mp[1100];
    snprintf(mp, sizeof mp, "%s/tests/data/models/bert-f32-gelu/model.safetensors", src);
    CHECK_FAIL(up_expert_read(mp, m, &u, &got), "not an unplug expert file");
    /* out-of-range kept index */
    int32_t badidx[] = {3, 64};
    CHECK_OK(up_task_set_kept(t, 0, badidx, 2));
    CHECK_FAIL(up_task_view(m, t, &(up_model *){NULL}), "kept neuron 64 outside 0..63");
    unlink(path);
    unlink(bad);
    rmdir(dir);
    up_task_free(t);
}

/* pool_mean: the head reads the mean of the final hidden states (its backward is in the gradient checked) */
static void test_deep_prompts(up_model *m, int pool_mean) {
    char *labels[] = {"neg", "pos"};
    up_task *t = NULL, *d = NULL;
    CHECK_OK(up_task_new(m, "toy", 2, labels, 3, 24, 5, &t));
    if (!t) return;
    t->pool_mean = pool_mean;
    CHECK_OK(up_task_clone(t, &d));
    CHECK_OK(up_task_make_deep(d, m));
    int L = t->n_layers, P = 3, C = t->C;
    CHECK(d->prompt_layers == L && !memcmp(d->prompt, t->prompt, (size_t)P * C * 4));
    CHECK(!memcmp(d->cls_w, t->cls_w, 2 * (size_t)C * 4));
    CHECK_FAIL(up_task_make_deep(d, m), "deep prompts need a shallow prompt");
    up_model *v = NULL;
    CHECK_OK(up_task_view(m, d, &v));
    if (!v) goto out;
    /* on "[CLS] prompt [SEP]" the slices are what the layers compute anyway */
    float a[2], b[2];
    logits_of(v, t, "", NULL, a);
    logits_of(v, d, "", NULL, b);
    CHECK_MSG(fabs(a[0] - b[0]) + fabs(a[1] - b[1]) < 1e-5, "deep vs shallow on the prompt alone: %g %g vs %g %g", a[0],
              a[1], b[0], b[1]);
    /* on real text they differ, and the gradient of log p(pos) matches finite differences */
    const char *text = "the story was good and fine";
    logits_of(v, t, text, NULL, a);
    logits_of(v, d, text, NULL, b);
    CHECK(fabs(a[0] - b[0]) + fabs(a[1] - b[1]) > 1e-5);
    up_run *r = NULL;
    CHECK_OK(up_run_new(v, 1, 24, &r));
    CHECK_OK(up_run_set_train(r, 1, 0));
    int32_t ids[64], types[64];
    up_encoding e = {0};
    int len = up_task_encode(d, m->tok, text, NULL, &e, ids, types);
    up_encoding_free(&e);
    up_batch bt = up_task_batch(d, 1, len, ids, types, &len);
    CHECK_OK(up_forward(r, &bt));
    float dl[2];
    const float *lg = up_run_logits(r);
    double pr = exp(logp(lg, 2, 1));
    dl[0] = (float)-(1 - pr); /* d log p(1) / d logits = onehot(1) - softmax */
    dl[1] = (float)(1 - pr);
    size_t np = (size_t)L * P * C;
    float *g = calloc(np, 4);
    up_grads gr;
    memset(&gr, 0, sizeof gr);
    gr.prompt = g;
    CHECK_OK(up_backward(r, dl, NULL, NULL, &gr));
    up_run_free(r);
    double eps = 1e-2, worst = 0, ref = 0;
    int checked = 0;
    for (int l = 0; l < L; l++)
        for (int k = 0; k < P; k++)
            for (int c = l; c < C; c += 11) {
                float *x = d->prompt + ((size_t)l * P + k) * C + c, x0 = *x, lp[2], lm[2];
                *x = x0 + (float)eps;
                logits_of(v, d, text, NULL, lp);
                *x = x0 - (float)eps;
                logits_of(v, d, text, NULL, lm);
                *x = x0;
                double fd = (logp(lp, 2, 1) - logp(lm, 2, 1)) / (2 * eps), got = g[((size_t)l * P + k) * C + c];
                worst = fmax(worst, fabs(fd - got));
                ref = fmax(ref, fabs(fd));
                checked++;
            }
    CHECK(checked > 20 && ref > 1e-4);
    CHECK_MSG(worst <= 1e-2 * ref, "deep prompt gradient vs finite differences: max diff %.3g (scale %.3g)", worst, ref);
    if (getenv("UP_VERBOSE"))
        printf("deep prompt FD (%s pooling): %d entries, max diff %.3g, scale %.3g\n", pool_mean ? "mean" : "cls", checked,
               worst, ref);
    free(g);
    /* expert file: version 2, (L,P,C) prompt */
    char dir[] = "/tmp/up_deep_XXXXXX", path[128];
    if (mkdtemp(dir)) {
        snprintf(path, sizeof path, "%s/deep.expert", dir);
        up_expert_meta info;
        memset(&info, 0, sizeof info);
        CHECK_OK(up_expert_write(path, m, d, &info));
        up_task *u = NULL;
        CHECK_OK(up_expert_read(path, m, &u, &info));
        CHECK(u && info.version == 3 && u->prompt_layers == L && u->pool_mean == pool_mean &&
              !memcmp(u->prompt, d->prompt, np * 4) &&
              !memcmp(u->cls_b, d->cls_b, 8));
        up_task_free(u);
        unlink(path);
        rmdir(dir);
    }
    /* a batch asking for more prompt layers than the model has */
    CHECK_OK(up_run_new(v, 1, 24, &r));
    bt.prompt_layers = L + 1;
    CHECK_FAIL(up_forward(r, &bt), "deep prompt over");
    up_run_free(r);
out:
    up_model_free(v);
    up_task_free(d);
    up_task_free(t);
}

/* attention heads: a view keeping some heads (none in one layer) gives the
 * logits of the full view with the other heads' outputs masked to zero; head
 * attribution equals the finite-difference derivative of log p with respect
 * to a gate on the head's output; kept heads survive an expert file; training
 * through pruned heads is refused */
static void test_heads(up_model *m) {
    up_task *t = NULL;
    CHECK_OK(up_task_new(m, "toy", 2, toy_labels, 2, 24, 5, &t));
    if (!t) return;
    int L = t->n_layers, NH = (int)m->cfg.num_attention_heads, F = (int)m->cfg.intermediate_size;
    float *mask = malloc((size_t)L * NH * 4), *fscale = malloc((size_t)L * F * 4);
    int32_t idx[64];
    for (int l = 0; l < L; l++) {
        int n = 0;
        for (int h = 0; h < NH; h++) {
            int keep = l == 1 ? 0 : l == 0 ? h % 2 == 1 : 1; /* layer 0: odd heads, layer 1: none, others: all */
            mask[(size_t)l * NH + h] = (float)keep;
            if (keep) idx[n++] = h;
        }
        CHECK_OK(up_task_set_kept_heads(t, l, idx, n));
    }
    for (int j = 0, n = 0; j < F; j++) { /* and half of layer 2's FFN */
        fscale[(size_t)2 * F + j] = (float)(j % 2);
        if (j % 2) idx[n++] = j;
        if (j == F - 1) CHECK_OK(up_task_set_kept(t, 2, idx, n));
    }
    for (int l = 0; l < L; l++)
        if (l != 2)
            for (int j = 0; j < F; j++) fscale[(size_t)l * F + j] = 1.0f;
    up_task *full = NULL;
    CHECK_OK(up_task_clone(t, &full));
    up_task_clear_kept(full);
    up_task_clear_kept_heads(full);
    up_model *ve = NULL, *vf = NULL;
    CHECK_OK(up_task_view(m, t, &ve));
    CHECK_OK(up_task_view(m, full, &vf));
    int D = (int)m->cfg.hidden_size / NH;
    CHECK(ve && ve->w.layers[0].qkv.out == 3 * (NH / 2) * D && ve->w.layers[0].o.in == (NH / 2) * D);
    CHECK(ve && ve->w.layers[1].qkv.out == 0 && !ve->w.layers[1].qkv.w);
    float a[2], b[2];
    const char *texts[] = {"the film was good", "a bad story , not fine"};
    for (int k = 0; k < 2 && ve && vf; k++) {
        head_probe = NULL;
        logits_of(ve, t, texts[k], NULL, a);
        head_probe = mask;
        logits_of(vf, full, texts[k], fscale, b);
        head_probe = NULL;
        double d = fmax(fabs(a[0] - b[0]), fabs(a[1] - b[1]));
        CHECK_MSG(d < 1e-5, "head-compacted vs masked logits differ by %g on '%s'", d, texts[k]);
    }
    logits_of(vf, full, texts[0], NULL, b);
    logits_of(ve, t, texts[0], NULL, a);
    CHECK(fabs(a[0] - b[0]) + fabs(a[1] - b[1]) > 1e-4);
    /* kept heads through a file */
    char path[256];
    snprintf(path, sizeof path, "%s/up_heads_%d.expert", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (int)getpid());
    up_expert_meta info = {.method = "actxgrad", .ratio = 0.5};
    snprintf(info.metrics, sizeof info.metrics, "{}");
    CHECK_OK(up_expert_write(path, m, t, &info));
    up_task *u = NULL;
    up_expert_meta got;
    CHECK_OK(up_expert_read(path, m, &u, &got));
    CHECK(u && u->kept_heads[0] && u->n_kept_heads[0] == NH / 2 && u->kept_heads[0][0] == 1 && u->kept_heads[1] &&
          u->n_kept_heads[1] == 0 && u->kept_heads[2] && u->n_kept_heads[2] == NH && u->n_kept[2] == F / 2);
    remove(path);
    up_task_free(u);
    /* training through pruned heads is refused, clearly */
    up_example ex = {(char *)"the story was good and fine", NULL, 1};
    up_dataset d1 = one_example(&ex);
    double *hs = malloc((size_t)L * NH * sizeof *hs);
    up_attr_opts ao = up_attr_defaults();
    ao.head_scores = hs;
    ao.heads_only = 1;
    CHECK(up_attribute(m, t, &d1, &ao, NULL) == UP_ERR_UNSUPPORTED && strstr(up_errmsg(), "attention heads"));
    /* head attribution vs finite differences of a gate on each head (the full task) */
    ao.keep_sign = 1;
    CHECK_OK(up_attribute(m, full, &d1, &ao, NULL));
    up_encoding e = {0};
    int32_t ids[64], types[64];
    int len = up_task_encode(full, m->tok, ex.text, NULL, &e, ids, types);
    up_encoding_free(&e);
    double eps = 1e-2, worst = 0, ref = 0;
    float lp[2], lm[2];
    for (int l = 0; l < L && vf; l++)
        for (int h = 0; h < NH; h++) {
            for (int i = 0; i < L * NH; i++) mask[i] = 1.0f;
            mask[l * NH + h] = (float)(1 + eps);
            head_probe = mask;
            logits_of(vf, full, ex.text, NULL, lp);
            mask[l * NH + h] = (float)(1 - eps);
            logits_of(vf, full, ex.text, NULL, lm);
            head_probe = NULL;
            double fd = (logp(lp, 2, 1) - logp(lm, 2, 1)) / (2 * eps) / len;
            worst = fmax(worst, fabs(fd - hs[l * NH + h]));
            ref = fmax(ref, fabs(fd));
        }
    CHECK(ref > 1e-4);
    CHECK_MSG(worst <= 1e-2 * ref, "head attribution vs finite differences: max diff %.3g (scale %.3g)", worst, ref);
    if (getenv("UP_VERBOSE")) printf("head attribution FD: %d heads, max diff %.3g, scale %.3g\n", L * NH, worst, ref);
    /* pruning the heads by score keeps the top share over all layers */
    up_task_clear_kept_heads(full);
    CHECK_OK(up_prune_heads(full, hs, L, NH, 0.5));
    int kept = 0;
    for (int l = 0; l < L; l++) kept += full->kept_heads[l] ? full->n_kept_heads[l] : NH;
    CHECK(kept == L * NH / 2);
    free(hs);
    up_model_free(ve);
    up_model_free(vf);
    up_task_free(full);
    up_task_free(t);
    free(mask);
    free(fscale);
}

/* int8: an expert's compacted matrices are quantized after compaction (each
 * W_out row's scale is the largest of its kept columns), its [CLS] rows
 * stay near fp32's, rows of very different ranges each keep their own
 * precision, and training is refused. */
static void test_int8(up_model *f32, up_model *q8) {
    up_task *t = NULL, *d = NULL;
    CHECK_OK(up_task_new(f32, "toy", 2, toy_labels, 2, 24, 5, &t));
    if (!t) return;
    int L = t->n_layers, F = (int)f32->cfg.intermediate_size, C = t->C;
    int32_t idx[256];
    for (int l = 0; l < L; l++) {
        int n = 0;
        for (int j = 0; j < F; j++)
            if ((j * 5 + l) % 3 == 0) idx[n++] = j;
        CHECK_OK(up_task_set_kept(t, l, idx, n));
    }
    up_model *vf = NULL, *vq = NULL;
    CHECK_OK(up_task_view(f32, t, &vf));
    CHECK_OK(up_task_view(q8, t, &vq));
    if (!vf || !vq) goto out;
    const up_linear *lo = &vq->w.layers[1].ffn_out, *li = &vq->w.layers[1].ffn_in;
    CHECK(lo->wt == UP_T_S8 && li->wt == UP_T_S8 && li->out == t->n_kept[1] && lo->in == t->n_kept[1] && !lo->wf);
    const float *w = f32->w.layers[1].ffn_out.w;
    for (int c = 0; c < C; c++) { /* W_out row c over the kept columns only */
        float mx = 0;
        for (int i = 0; i < t->n_kept[1]; i++) mx = fmaxf(mx, fabsf(w[(size_t)c * F + t->kept[1][i]]));
        CHECK_MSG(fabsf(lo->ws[c] - mx / 127) <= 1e-6f * mx, "row %d: scale %g, kept columns' %g", c, lo->ws[c], mx / 127);
    }
    const char *texts[] = {"the film was good", "a bad story , not fine", "x"};
    float a[2], b[2], *ca = malloc((size_t)C * 4), *cb = malloc((size_t)C * 4);
    for (int k = 0; k < 3; k++) { /* the final [CLS] rows (the logits of a random head are near 0) */
        cls_sink = ca;
        logits_of(vf, t, texts[k], NULL, a);
        cls_sink = cb;
        logits_of(vq, t, texts[k], NULL, b);
        cls_sink = NULL;
        double d2 = 0, n2 = 0;
        for (int i = 0; i < C; i++) d2 += (ca[i] - cb[i]) * (double)(ca[i] - cb[i]), n2 += ca[i] * (double)ca[i];
        CHECK_MSG(d2 > 0 && sqrt(d2 / n2) < 0.03, "int8 vs fp32 [CLS] rows: relative error %g on '%s'", sqrt(d2 / n2),
                  texts[k]);
    }
    free(ca);
    free(cb);
    /* a product over 16 rows, 2 of them 50x larger than the rest: every row
     * has its own range, so the others stay within a few steps of theirs
     * (one range for all would put a step at 100/255 of theirs) */
    up_run *rq = NULL;
    CHECK_OK(up_run_new(vq, 1, 24, &rq));
    enum { M = 16 };
    const up_linear *l0 = &q8->w.layers[0].ffn_in;
    int N = l0->out;
    float *x = malloc((size_t)M * C * 4), *y = malloc((size_t)M * N * 4);
    for (int i = 0; i < M * C; i++) x[i] = (float)sin(i * 0.37) * ((i / C == 3 || i / C == 11) ? 50.0f : 1.0f);
    for (int gelu = 0; gelu < 2 && rq && x && y; gelu++) { /* with GELU: the epilogue outside the product */
        CHECK_OK(up_linear_forward(rq, l0, x, C, M, y, N, gelu));
        double worst = 0;
        for (int m = 0; m < M; m++)
            for (int n = 0; n < N; n++) {
                double ref = l0->b[n], mag = fabs(l0->b[n]);
                for (int k = 0; k < C; k++) {
                    double wk = ((const int8_t *)l0->w)[(size_t)n * C + k] * (double)l0->ws[n];
                    ref += wk * x[m * C + k];
                    mag += fabs(wk * x[m * C + k]);
                }
                if (gelu) ref = 0.5 * ref * (1 + erf(ref / sqrt(2.0))); /* |gelu'| < 1.13 */
                double rel = fabs(y[m * N + n] - ref) / (mag + 1e-6);
                if (rel > worst) worst = rel;
            }
        CHECK_MSG(worst < 0.012, "int8 product (gelu %d) with 2 rows 50x larger: error %g of the row's magnitude",
                  gelu, worst);
    }
    up_run_free(rq);
    free(x);
    free(y);
    up_run *r = NULL;
    CHECK_OK(up_run_new(vq, 1, 24, &r));
    if (r) CHECK_FAIL(up_run_set_train(r, 1, 0), "int8 is an inference precision");
    up_run_free(r);
out:
    up_model_free(vf);
    up_model_free(vq);
    up_task_free(d);
    up_task_free(t);
}

int main(int argc, char **argv) {
    src = argc > 1 ? argv[1] : ".";
    up_set_log(NULL, NULL, 0);
    up_model *m = load("bert-f32-gelu", UP_PREC_FP32, UP_BACKEND_REF);
    up_model *other = load("bert-f16", UP_PREC_FP32, UP_BACKEND_REF);
    if (m) {
        test_compaction_equals_masking(m);
        test_attribution_fd(m);
        test_integrated_gradients(m);
        test_prune_ratio(m);
        if (other) test_expert_files(m, other);
        test_deep_prompts(m, 0);
        test_deep_prompts(m, 1);
        test_heads(m);
    }
    /* the compacted FFN and heads again on oneDNN (fp32), whose inference
     * attention takes the head-major layout with broadcast products */
    up_model *dn = NULL;
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/tests/data/models/bert-f32-gelu", src);
    up_model_opts o = up_model_opts_default();
    o.precision = UP_PREC_FP32;
    o.backend = UP_BACKEND_DNNL;
    if (up_model_load(dir, &o, &dn) != UP_OK) printf("oneDNN backend not built: %s\n", up_errmsg());
    if (dn) {
        test_compaction_equals_masking(dn);
        test_heads(dn);
    }
    /* int8 on the reference backend (any CPU) and on oneDNN where it has VNNI or AMX */
    up_model *q8 = load("bert-f32-gelu", UP_PREC_INT8, UP_BACKEND_REF);
    if (m && q8) test_int8(m, q8);
    up_model_free(q8);
    q8 = NULL;
    o.precision = UP_PREC_INT8;
    if (dn && up_kernel_int8()) {
        CHECK_OK(up_model_load(dir, &o, &q8));
        if (q8 && m) test_int8(m, q8);
    } else if (dn) {
        CHECK_FAIL(up_model_load(dir, &o, &q8), "int8 products need VNNI or AMX");
    }
    up_model_free(q8);
    up_model_free(dn);
    up_model_free(other);
    up_model_free(m);
    return test_done();
}
