/*
 * test_backward.c: the whole model's gradients against PyTorch autograd in
 * float64 (scripts/ref_grads.py -> tests/data/models/<name>/grads.safetensors):
 * every weight, the input embeddings, each layer's FFN activations, for a
 * classification loss, a masked-LM loss (tied decoder) and a weighted sum of
 * hidden states and pooled output.
 *
 * Tolerance: max-abs error over the tensor's largest |reference|, 1e-4 on
 * fp32 paths and 0.15 with bf16 operands (8 mantissa bits in every product,
 * forward and backward, and ReLU pre-activations near 0 that flip sign
 * under bf16 rounding; the fp32 path shows the math is right to ~1e-6).
 * Gradients that are mathematically zero (the key bias: softmax ignores a
 * per-query constant) are checked against 1e-5 (fp32) or 1e-2 (bf16) of the
 * largest gradient of the model instead.
 */
#include "test.h"
#include "io/safetensors.h"
#include "model/model.h"
#include "train/params.h"
#include "kernels/ops.h"

static const char *src_dir;

static float *f32_of(const up_st_tensor *t, size_t *n) {
    size_t k = 1;
    for (int i = 0; i < t->ndim; i++) k *= (size_t)t->shape[i];
    float *p = malloc(k * 4);
    up_st_to_f32(t, 0, k, p);
    if (n) *n = k;
    return p;
}
static int32_t *i32_of(const up_st_tensor *t) {
    int32_t *p = malloc(t->nbytes);
    memcpy(p, t->data, t->nbytes);
    return p;
}

static double g_scale; /* largest |reference gradient| of the model */

static void compare(const char *what, const float *got, const float *ref, size_t n, int bf16) {
    double maxd = 0, maxv = 0;
    for (size_t i = 0; i < n; i++) {
        maxd = fmax(maxd, fabs((double)got[i] - ref[i]));
        maxv = fmax(maxv, fabs(ref[i]));
    }
    if (maxv < 1e-9) {
        double tol0 = (bf16 ? 1e-2 : 1e-5) * fmax(g_scale, 1.0);
        CHECK_MSG(maxd < tol0, "%s: reference is zero, got up to %.3g (tolerance %.3g)", what, maxd, tol0);
        return;
    }
    double tol = bf16 ? 0.15 : 1e-4;
    CHECK_MSG(maxd / maxv <= tol, "%s: relative error %.3g > %.3g", what, maxd / maxv, tol);
    if (getenv("UP_VERBOSE")) printf("  %-60s %.3g\n", what, maxd / maxv);
}

/* our parameter + element offset for a stored HF name */
static const float *grad_of(const up_params *P, const char *stored, size_t n, float *tmp) {
    const char *name = strncmp(stored, "bert.", 5) ? stored : stored + 5;
    const char *parts[] = {"attention.self.query.", "attention.self.key.", "attention.self.value."};
    for (int k = 0; k < 3; k++) {
        const char *q = strstr(name, parts[k]);
        if (!q) continue;
        char stacked[200];
        snprintf(stacked, sizeof stacked, "%.*sattention.self.qkv.%s", (int)(q - name), name, q + strlen(parts[k]));
        const up_param *t = up_params_find(P, stacked);
        if (!t) return NULL;
        memcpy(tmp, P->g + t->off + k * n, n * 4);
        return tmp;
    }
    const up_param *t = up_params_find(P, name);
    return t ? P->g + t->off : NULL;
}

static void run(const char *model, up_precision prec) {
    char dir[1024], path[1100], what[256];
    snprintf(dir, sizeof dir, "%s/tests/data/models/%s", src_dir, model);
    up_st_set *ex = NULL, *gr = NULL;
    snprintf(path, sizeof path, "%s/expected.safetensors", dir);
    CHECK_OK(up_st_open_file(path, &ex));
    snprintf(path, sizeof path, "%s/grads.safetensors", dir);
    CHECK_OK(up_st_open_file(path, &gr));
    up_model_opts o = up_model_opts_default();
    o.precision = prec;
    up_model *m = NULL;
    if (prec == UP_PREC_BF16 && !test_dnnl_bf16()) { /* oneDNN below AVX-512: bf16 refused, with the reason */
        CHECK_FAIL(up_model_load(dir, &o, &m), "bf16 products need AVX-512");
        up_st_close(ex);
        up_st_close(gr);
        return;
    }
    CHECK_OK(up_model_load(dir, &o, &m));
    if (!ex || !gr || !m) return;
    int bf = prec == UP_PREC_BF16;
    const up_config *c = up_model_config(m);
    const up_st_tensor *ti = up_st_find(ex, "input_ids");
    int B = (int)ti->shape[0], T = (int)ti->shape[1], C = (int)c->hidden_size, F = (int)c->intermediate_size;
    int32_t *ids = i32_of(ti), *types = i32_of(up_st_find(ex, "token_type_ids")), *lens = i32_of(up_st_find(ex, "lengths"));
    up_params *P = NULL;
    CHECK_OK(up_params_new(m, &P));
    up_run *r = NULL;
    CHECK_OK(up_run_new(m, B, T, &r));
    CHECK_OK(up_run_set_train(r, 1, 1));
    up_batch b = {.B = B, .T = T, .ids = ids, .type_ids = types, .lens = lens};
    CHECK_OK(up_forward(r, &b));
    float *dhidden = calloc((size_t)B * T * C, 4), *dlogits = NULL, *dpooled = NULL;
    double loss = 0;
    const up_st_tensor *t;
    if ((t = up_st_find(gr, "labels"))) { /* classification */
        int32_t *labels = i32_of(t);
        dlogits = malloc((size_t)B * c->num_labels * 4);
        loss = up_xent_forward_backward(dlogits, up_run_logits(r), labels, B, c->num_labels, 1.0f, NULL);
        free(labels);
    } else if ((t = up_st_find(gr, "mlm_labels"))) { /* masked LM on labelled positions */
        int32_t *lab = i32_of(t), rows[64], tg[64];
        int n = 0;
        for (int i = 0; i < B * T; i++) if (lab[i] != -100 && n < 64) { rows[n] = i; tg[n++] = lab[i]; }
        float *logits = malloc((size_t)n * c->vocab_size * 4);
        CHECK_OK(up_mlm_forward(r, rows, n, logits));
        loss = up_xent_forward_backward(logits, logits, tg, n, (int)c->vocab_size, 1.0f, NULL);
        CHECK_OK(up_mlm_backward(r, logits, &P->grads, dhidden));
        free(logits);
        free(lab);
    } else { /* sum of weighted hidden states and pooled output */
        size_t n;
        float *lw = f32_of(up_st_find(gr, "loss_weights"), &n), *pw = f32_of(up_st_find(gr, "pooled_weights"), NULL);
        memcpy(dhidden, lw, n * 4);
        const float *h = up_run_hidden(r, (int)c->num_hidden_layers), *p = up_run_pooled(r);
        for (size_t i = 0; i < n; i++) loss += (double)lw[i] * h[i];
        for (int i = 0; i < B * C; i++) loss += (double)pw[i] * p[i];
        dpooled = pw;
        free(lw);
    }
    float ref_loss;
    up_st_to_f32(up_st_find(gr, "loss"), 0, 1, &ref_loss);
    CHECK_MSG(fabs(loss - ref_loss) <= (bf ? 2e-2 : 1e-4) * fmax(1.0, fabs(ref_loss)), "%s loss %.6f vs %.6f", model, loss,
              (double)ref_loss);
    CHECK_OK(up_backward(r, dlogits, dpooled, dhidden, &P->grads));
    const char *tag = bf ? "bf16" : "fp32";
    g_scale = 0;
    for (size_t i = 0; i < up_st_count(gr); i++) {
        const up_st_tensor *g = up_st_get(gr, i);
        if (strncmp(g->name, "grad.", 5)) continue;
        size_t n;
        float *v = f32_of(g, &n);
        for (size_t k = 0; k < n; k++) g_scale = fmax(g_scale, fabs(v[k]));
        free(v);
    }
    /* every weight */
    float *tmp = malloc((size_t)c->vocab_size * C * 4 + (size_t)F * C * 4);
    int nweights = 0;
    for (size_t i = 0; i < up_st_count(gr); i++) {
        const up_st_tensor *g = up_st_get(gr, i);
        if (strncmp(g->name, "grad.", 5) || strstr(g->name, "inputs_embeds") || strstr(g->name, "embeddings_out") ||
            !strncmp(g->name, "grad.ffn.", 9) || !strncmp(g->name, "grad.hidden.", 12))
            continue;
        size_t n;
        float *ref = f32_of(g, &n);
        const float *got = grad_of(P, g->name + 5, n, tmp);
        snprintf(what, sizeof what, "%s %s %s", model, tag, g->name);
        CHECK_MSG(got != NULL, "%s: no such parameter", what);
        if (got) compare(what, got, ref, n, bf);
        nweights++;
        free(ref);
    }
    CHECK_MSG(nweights >= 55, "%s: only %d weight gradients compared", model, nweights);
    size_t n;
    float *ref = f32_of(up_st_find(gr, "grad.inputs_embeds"), &n);
    snprintf(what, sizeof what, "%s %s inputs_embeds", model, tag);
    compare(what, up_run_grad_embeds(r), ref, n, bf);
    free(ref);
    for (int l = 0; l < c->num_hidden_layers; l++) {
        char nm[32];
        snprintf(nm, sizeof nm, "grad.ffn.%d", l);
        ref = f32_of(up_st_find(gr, nm), &n);
        snprintf(what, sizeof what, "%s %s %s", model, tag, nm);
        compare(what, up_run_grad_ffn(r, l), ref, n, bf);
        free(ref);
    }
    /* the forward of the MLM head against the reference logits */
    if ((t = up_st_find(ex, "mlm_logits"))) {
        float *all = f32_of(t, &n), *lg = malloc((size_t)B * T * c->vocab_size * 4);
        int32_t *rows = malloc((size_t)B * T * 4);
        int k = 0;
        for (int bb = 0; bb < B; bb++) for (int tt = 0; tt < lens[bb]; tt++) rows[k++] = bb * T + tt;
        CHECK_OK(up_mlm_forward(r, rows, k, lg));
        float *refrows = malloc((size_t)k * c->vocab_size * 4);
        for (int i = 0; i < k; i++) memcpy(refrows + (size_t)i * c->vocab_size, all + (size_t)rows[i] * c->vocab_size, c->vocab_size * 4);
        snprintf(what, sizeof what, "%s %s mlm_logits", model, tag);
        compare(what, lg, refrows, (size_t)k * c->vocab_size, bf);
        free(all); free(lg); free(rows); free(refrows);
    }
    free(tmp); free(dhidden); free(dlogits); free(dpooled);
    free(ids); free(types); free(lens);
    up_run_free(r);
    up_params_free(P);
    up_model_free(m);
    up_st_close(ex);
    up_st_close(gr);
}

int main(int argc, char **argv) {
    src_dir = argc > 1 ? argv[1] : ".";
    up_set_log(NULL, NULL, 0);
    const char *models[] = {"bert-f32-gelu", "bert-f32-gelu_new-cls", "bert-f32-relu-mlm", "bert-bf16-cls"};
    for (int i = 0; i < 4; i++) {
        run(models[i], UP_PREC_FP32);
        run(models[i], UP_PREC_BF16);
    }
    return test_done();
}
