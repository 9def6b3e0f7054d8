/* localize.c: attribution, pruning and the ratio search (see localize.h). */
#include "localize/localize.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/base.h"
#include "kernels/ops.h"
#include "tune/tune.h"

static const char *const attr_names[UP_ATTR_COUNT] = {"actxgrad", "activation", "weight", "random", "ig"};
const char *up_attr_name(up_attr_method m) { return m >= 0 && m < UP_ATTR_COUNT ? attr_names[m] : "?"; }
up_status up_attr_from_name(const char *s, up_attr_method *out) {
    for (int i = 0; i < UP_ATTR_COUNT; i++)
        if (!strcmp(s, attr_names[i])) { *out = (up_attr_method)i; return UP_OK; }
    return up_fail(UP_ERR_INVALID, "unknown attribution method '%s' (expected actxgrad, activation, weight, random or ig)", s);
}

up_attr_opts up_attr_defaults(void) {
    up_attr_opts o;
    memset(&o, 0, sizeof o);
    o.batch = 32;
    o.ig_steps = 8;
    o.seed = 1;
    return o;
}

up_search_opts up_search_defaults(void) {
    up_search_opts o;
    memset(&o, 0, sizeof o);
    o.tolerance = 1.0;
    o.max_ratio = 0.95;
    o.iters = 7;
    o.batch = 64;
    return o;
}

#define UP_MAX_HEADS 256

static void weight_row_norms(const up_model *m, const up_linear *l, int rows_are_neurons, double *out, int F) {
    /* W_in (F,C): row norms; W_out (C,F): column norms */
    int C = (int)m->cfg.hidden_size;
    for (int j = 0; j < F; j++) out[j] = 0;
    for (int r = 0; r < l->out; r++)
        for (int c = 0; c < l->in; c++) {
            size_t k = (size_t)r * l->in + c;
            float v = l->wt == UP_T_BF16 ? up_bf16_scalar(((const uint16_t *)l->w)[k])
                      : l->wt == UP_T_S8   ? ((const int8_t *)l->w)[k] * l->ws[r] /* (int8 models do not localize) */
                                           : ((const float *)l->w)[k];
            out[rows_are_neurons ? r : c] += (double)v * v;
        }
    (void)C;
    for (int j = 0; j < F; j++) out[j] = sqrt(out[j]);
}

/* sc (F) += per-example aggregate over tokens of h * g (or h alone, g NULL)
 * for one layer: f, g (bn,Tb,F); the score is h * d log p / dh = -h * g
 * with g the gradient of -log p. */
static void accumulate(double *sc, double *agg, const float *f, const float *g, const int32_t *lens, int bn, int Tb,
                       int F, const up_attr_opts *o) {
    for (int i = 0; i < bn; i++) {
        for (int j = 0; j < F; j++) agg[j] = o->agg_max ? -INFINITY : 0;
        for (int k = 0; k < lens[i]; k++) {
            const float *fr = f + ((size_t)i * Tb + k) * F, *gr = g ? g + ((size_t)i * Tb + k) * F : NULL;
            for (int j = 0; j < F; j++) {
                double v = gr ? -(double)fr[j] * gr[j] : fr[j];
                if (!o->keep_sign) v = fabs(v);
                if (o->agg_max) agg[j] = v > agg[j] ? v : agg[j];
                else agg[j] += v;
            }
        }
        for (int j = 0; j < F; j++) sc[j] += o->agg_max ? agg[j] : agg[j] / lens[i];
    }
}

/* hs (NH) += per-example aggregate over tokens of each head's score for one
 * layer: ctx (bn,Tb,C) of the run's operand type, dctx (bn,Tb,C) the gradient
 * of -log p (NULL: activation norms). */
static void head_accumulate(double *hs, const void *ctx, int bf16, const float *dctx, const int32_t *lens, int bn,
                            int Tb, int C, int NH, const up_attr_opts *o) {
    int D = C / NH;
    for (int i = 0; i < bn; i++) {
        double agg[UP_MAX_HEADS] = {0};
        for (int k = 0; k < lens[i]; k++) {
            size_t row = ((size_t)i * Tb + k) * C;
            for (int h = 0; h < NH; h++) {
                double v = 0;
                for (int d = 0; d < D; d++) {
                    size_t j = row + (size_t)h * D + d;
                    double c = bf16 ? up_bf16_scalar(((const uint16_t *)ctx)[j]) : ((const float *)ctx)[j];
                    v += dctx ? -c * dctx[j] : c * c;
                }
                if (!dctx) v = sqrt(v);
                else if (!o->keep_sign) v = fabs(v);
                if (o->agg_max) agg[h] = k == 0 || v > agg[h] ? v : agg[h];
                else agg[h] += v;
            }
        }
        for (int h = 0; h < NH; h++) hs[h] += o->agg_max ? agg[h] : agg[h] / lens[i];
    }
}

/* the data-free head scores: random, or weight norms (see localize.h) */
static up_status head_scores_static(const up_model *base, const up_attr_opts *o, double *hs) {
    const int L = (int)base->cfg.num_hidden_layers, C = (int)base->cfg.hidden_size, NH = (int)base->cfg.num_attention_heads,
              D = C / NH;
    if (o->method == UP_ATTR_RANDOM) {
        for (size_t i = 0; i < (size_t)L * NH; i++) hs[i] = (double)(up_mix64(o->seed * 104729 + 17 + i) >> 11) / 9007199254740992.0;
        return UP_OK;
    }
    double *q = malloc((size_t)3 * C * sizeof *q), *w = malloc((size_t)C * sizeof *w);
    if (!q || !w) { free(q); free(w); return up_fail(UP_ERR_NOMEM, "out of memory"); }
    for (int l = 0; l < L; l++) {
        weight_row_norms(base, &base->w.layers[l].qkv, 1, q, 3 * C);
        weight_row_norms(base, &base->w.layers[l].o, 0, w, C);
        for (int h = 0; h < NH; h++) {
            double a = 0, b = 0;
            for (int d = 0; d < D; d++) {
                for (int part = 0; part < 3; part++) a += q[part * C + h * D + d] * q[part * C + h * D + d];
                b += w[h * D + d] * w[h * D + d];
            }
            hs[(size_t)l * NH + h] = sqrt(a) * sqrt(b);
        }
    }
    free(q);
    free(w);
    return UP_OK;
}

up_status up_attribute(const up_model *base, const up_task *t, const up_dataset *d, const up_attr_opts *o,
                       double *scores) {
    const int L = (int)base->cfg.num_hidden_layers, F = (int)base->cfg.intermediate_size,
              NH = (int)base->cfg.num_attention_heads, C = (int)base->cfg.hidden_size;
    double *hs = o->head_scores;
    if (hs) {
        if (o->method == UP_ATTR_IG) return up_fail(UP_ERR_UNSUPPORTED, "attention heads are scored by actxgrad, activation, weight or random, not ig");
        if (NH > UP_MAX_HEADS) return up_fail(UP_ERR_UNSUPPORTED, "%d heads a layer (at most %d)", NH, UP_MAX_HEADS);
        memset(hs, 0, (size_t)L * NH * sizeof *hs);
        if (o->method == UP_ATTR_RANDOM || o->method == UP_ATTR_WEIGHT) {
            up_status st = head_scores_static(base, o, hs);
            if (st || o->heads_only) return st;
        }
    } else if (o->heads_only) {
        return up_fail(UP_ERR_INVALID, "heads_only without head_scores");
    }
    if (o->heads_only) scores = NULL;
    else memset(scores, 0, (size_t)L * F * sizeof *scores);
    if (o->method == UP_ATTR_RANDOM) {
        for (size_t i = 0; i < (size_t)L * F; i++) scores[i] = (double)(up_mix64(o->seed * 7919 + i) >> 11) / 9007199254740992.0;
        return UP_OK;
    }
    if (o->method == UP_ATTR_WEIGHT) {
        double *a = malloc((size_t)F * sizeof *a), *b = malloc((size_t)F * sizeof *b);
        if (!a || !b) { free(a); free(b); return up_fail(UP_ERR_NOMEM, "out of memory"); }
        for (int l = 0; l < L; l++) {
            weight_row_norms(base, &base->w.layers[l].ffn_in, 1, a, F);
            weight_row_norms(base, &base->w.layers[l].ffn_out, 0, b, F);
            for (int j = 0; j < F; j++) scores[(size_t)l * F + j] = a[j] * b[j];
        }
        free(a);
        free(b);
        return UP_OK;
    }
    if (!base->tok) return up_fail(UP_ERR_INVALID, "%s has no vocab.txt", base->dir);
    up_model *v = NULL;
    up_run *r = NULL;
    int B = o->batch, T = t->max_len, NL = t->n_labels;
    size_t n = o->max_examples && o->max_examples < d->n ? o->max_examples : d->n;
    int32_t *ids = malloc((size_t)B * T * 4), *types = malloc((size_t)B * T * 4), *lens = malloc((size_t)B * 4),
            *labels = malloc((size_t)B * 4);
    const char **ta = malloc((size_t)B * sizeof *ta), **tb = malloc((size_t)B * sizeof *tb);
    float *dl = malloc((size_t)B * NL * 4);
    double *agg = malloc((size_t)L * F * sizeof *agg);
    int ig = o->method == UP_ATTR_IG, k = o->ig_steps > 0 ? o->ig_steps : 8;
    float *hbuf = ig ? malloc((size_t)B * T * F * sizeof *hbuf) : NULL, *gbuf = ig ? malloc((size_t)B * T * F * sizeof *gbuf) : NULL,
          *scale = ig ? malloc((size_t)L * F * sizeof *scale) : NULL;
    for (size_t i = 0; scale && i < (size_t)L * F; i++) scale[i] = 1.0f;
    up_encoding e = {0};
    up_status st = ids && types && lens && labels && ta && tb && dl && agg && (!ig || (hbuf && gbuf && scale))
                       ? UP_OK : up_fail(UP_ERR_NOMEM, "out of memory");
    if (!st) st = up_task_view(base, t, &v);
    if (!st) st = up_run_new(v, B, T, &r);
    if (!st) st = up_run_set_train(r, 1, o->method == UP_ATTR_ACTGRAD || ig);
    for (size_t i0 = 0; i0 < n && !st; i0 += (size_t)B) {
        if (o->interrupt && *o->interrupt) {
            st = up_fail(UP_ERR_INTERRUPTED, "interrupted after %zu of %zu examples", i0, n);
            break;
        }
        int bn = (int)(n - i0 < (size_t)B ? n - i0 : (size_t)B);
        for (int i = 0; i < bn; i++) {
            const up_example *x = &d->ex[i0 + i];
            ta[i] = x->text;
            tb[i] = x->text_b;
            labels[i] = x->label;
        }
        int Tb = up_task_fill_batch(t, v->tok, ta, d->pair ? tb : NULL, bn, (int32_t)base->cfg.pad_token_id, &e, ids,
                                    types, lens);
        if (Tb < 0) { st = up_fail_prefix(UP_ERR_INVALID, "batch at example %zu", i0); break; }
        up_batch bt = up_task_batch(t, bn, Tb, ids, types, lens);
        if ((st = up_forward(r, &bt))) break;
        if (o->method == UP_ATTR_IG) {
            /* per layer l: h (unscaled) times the mean over alpha = (i + 0.5) / k of the gradient at alpha h,
             * layer l's activations scaled by alpha, every other layer as it is */
            size_t BTF = (size_t)bn * Tb * F;
            for (int l = 0; l < L && !st; l++) {
                if (l > 0 && (st = up_forward(r, &bt))) break; /* unscaled again: the last one scaled layer l-1 */
                memcpy(hbuf, r->acts[l].f32, BTF * sizeof *hbuf);
                memset(gbuf, 0, BTF * sizeof *gbuf);
                for (int q = 0; q < k && !st; q++) {
                    for (int j = 0; j < F; j++) scale[(size_t)l * F + j] = (float)((q + 0.5) / k);
                    up_run_set_ffn_scale(r, scale);
                    if (!(st = up_forward(r, &bt))) {
                        up_xent_forward_backward(dl, up_run_logits(r), labels, (size_t)bn, NL, (float)bn, NULL);
                        st = up_backward(r, dl, NULL, NULL, NULL);
                    }
                    const float *g = up_run_grad_ffn(r, l);
                    for (size_t x = 0; !st && x < BTF; x++) gbuf[x] += g[x] / (float)k;
                }
                for (int j = 0; j < F; j++) scale[(size_t)l * F + j] = 1.0f;
                up_run_set_ffn_scale(r, NULL);
                accumulate(scores + (size_t)l * F, agg, hbuf, gbuf, lens, bn, Tb, F, o);
            }
            if (st) break;
        } else {
            if (o->method == UP_ATTR_ACTGRAD) {
                /* per-row gradient of -log p(gold): grad_scale bn undoes the mean */
                up_xent_forward_backward(dl, up_run_logits(r), labels, (size_t)bn, NL, (float)bn, NULL);
                if ((st = up_backward(r, dl, NULL, NULL, NULL))) break;
            }
#pragma omp parallel for schedule(static)
            for (int l = 0; l < L; l++) {
                const float *df = o->method == UP_ATTR_ACTGRAD ? up_run_grad_ffn(r, l) : NULL;
                if (scores) accumulate(scores + (size_t)l * F, agg + (size_t)l * F, r->acts[l].f32, df, lens, bn, Tb, F, o);
                if (hs)
                    head_accumulate(hs + (size_t)l * NH, up_run_ctx(r, l), up_run_ctx_bf16(r),
                                    o->method == UP_ATTR_ACTGRAD ? up_run_grad_ctx(r, l) : NULL, lens, bn, Tb, C, NH, o);
            }
        }
        if (o->progress) o->progress(i0 + (size_t)bn, n, o->progress_user);
    }
    for (size_t i = 0; !st && scores && i < (size_t)L * F; i++) scores[i] /= (double)n;
    for (size_t i = 0; !st && hs && i < (size_t)L * NH; i++) hs[i] /= (double)n;
    up_encoding_free(&e);
    free(ids); free(types); free(lens); free(labels); free(ta); free(tb); free(dl);
    free(agg); free(hbuf); free(gbuf); free(scale);
    up_run_free(r);
    up_model_free(v);
    return st;
}

typedef struct {
    double s;
    int32_t l, j;
} ranked;

static int cmp_ranked(const void *a, const void *b) {
    const ranked *x = a, *y = b;
    if (x->s != y->s) return x->s < y->s ? -1 : 1;
    if (x->l != y->l) return x->l - y->l;
    return x->j - y->j; /* ties: deterministic */
}

/* keeps the highest-scoring (1 - ratio) of the L x F units (FFN neurons or
 * heads), through set(t, layer, kept indices, count) */
static up_status prune_units(up_task *t, const double *scores, int L, int F, double ratio, int per_layer,
                             up_status (*set)(up_task *, int, const int32_t *, int)) {
    if (ratio < 0 || ratio > 1) return up_fail(UP_ERR_INVALID, "pruning ratio %g outside 0..1", ratio);
    size_t N = (size_t)L * F;
    ranked *rk = malloc(N * sizeof *rk);
    char *drop = calloc(N, 1);
    int32_t *idx = malloc((size_t)F * sizeof *idx);
    if (!rk || !drop || !idx) { free(rk); free(drop); free(idx); return up_fail(UP_ERR_NOMEM, "out of memory"); }
    for (int l = 0; l < L; l++)
        for (int j = 0; j < F; j++) rk[(size_t)l * F + j] = (ranked){scores[(size_t)l * F + j], l, j};
    if (per_layer) {
        size_t k = (size_t)llround(ratio * F);
        for (int l = 0; l < L; l++) {
            qsort(rk + (size_t)l * F, (size_t)F, sizeof *rk, cmp_ranked);
            for (size_t i = 0; i < k; i++) drop[(size_t)l * F + rk[(size_t)l * F + i].j] = 1;
        }
    } else {
        qsort(rk, N, sizeof *rk, cmp_ranked);
        size_t k = (size_t)llround(ratio * (double)N);
        for (size_t i = 0; i < k; i++) drop[(size_t)rk[i].l * F + rk[i].j] = 1;
    }
    up_status st = UP_OK;
    for (int l = 0; l < L && !st; l++) {
        int n = 0;
        for (int j = 0; j < F; j++) if (!drop[(size_t)l * F + j]) idx[n++] = j;
        st = set(t, l, idx, n);
    }
    free(rk);
    free(drop);
    free(idx);
    return st;
}

up_status up_prune_to_ratio(up_task *t, const double *scores, int L, int F, double ratio, int per_layer) {
    return prune_units(t, scores, L, F, ratio, per_layer, up_task_set_kept);
}

up_status up_prune_heads(up_task *t, const double *head_scores, int L, int NH, double ratio) {
    return prune_units(t, head_scores, L, NH, ratio, 0, up_task_set_kept_heads);
}

/* t pruned to ratio r, then (with o->retune) re-tuned from there: *out is t
 * itself or a re-tuned copy to free; *m its validation metric */
static up_status search_point(const up_model *base, up_task *t, const double *scores, const up_dataset *val,
                              const up_search_opts *o, double r, up_task **out, double *m) {
    const int L = (int)base->cfg.num_hidden_layers, F = (int)base->cfg.intermediate_size;
    *out = t;
    up_status st = up_prune_to_ratio(t, scores, L, F, r, o->per_layer);
    if (st) return st;
    if (o->retune && r > 0) {
        up_tune_cfg to = *o->retune;
        up_tune_report rep;
        to.init = t;
        to.fixed_epochs = 1; /* the search judges on validation: re-tuning must not choose on it too */
        if ((st = up_task_tune(base, t->name, o->retune_train, val, &to, out, &rep))) return st;
    }
    st = up_task_evaluate(base, *out, val, o->batch, m, NULL);
    if (st && *out != t) {
        up_task_free(*out);
        *out = t;
    }
    return st;
}

/* copies src's parameters and kept neurons into t (same shape) */
static up_status task_assign(up_task *t, const up_task *src) {
    memcpy(t->buf, src->buf, up_task_param_count(src) * sizeof(float));
    up_task_clear_kept(t);
    up_status st = UP_OK;
    for (int l = 0; l < t->n_layers && !st; l++)
        if (src->kept[l]) st = up_task_set_kept(t, l, src->kept[l], src->n_kept[l]);
    return st;
}

up_status up_prune_search(const up_model *base, up_task *t, const double *scores, const up_dataset *val,
                          const up_search_opts *o, up_search_result *res) {
    memset(res, 0, sizeof *res);
    if (o->retune && !o->retune_train) return up_fail(UP_ERR_INVALID, "re-tuning in the search needs the training split");
    up_task_clear_kept(t);
    up_task *best = NULL; /* the candidate of the chosen ratio (t's prompt and head stay as tuned: re-tuning copies) */
    up_status st = up_task_evaluate(base, t, val, o->batch, &res->full_metric, NULL);
    double floor = res->full_metric - o->tolerance, lo = 0, hi = o->max_ratio, lo_metric = res->full_metric;
    /* try the top of the range first: many tasks allow it */
    for (int it = 0; it <= o->iters && !st; it++) {
        double r = it == 0 ? hi : 0.5 * (lo + hi), m;
        up_task *cand = NULL;
        if (o->interrupt && *o->interrupt) {
            st = up_fail(UP_ERR_INTERRUPTED, "interrupted after %d of %d ratios", it, o->iters + 1);
            break;
        }
        if ((st = search_point(base, t, scores, val, o, r, &cand, &m))) break;
        int ok = m >= floor;
        if (res->n_points < 64) {
            res->pts_ratio[res->n_points] = r;
            res->pts_metric[res->n_points++] = m;
        }
        if (o->point) o->point(r, m, ok, o->point_user);
        if (ok) { /* keep the candidate (the re-tuned task, or the pruned t) */
            lo = r;
            lo_metric = m;
            up_task_free(best);
            best = NULL;
            st = up_task_clone(cand, &best);
        } else hi = r;
        if (cand != t) up_task_free(cand);
        if (ok && it == 0) break;
    }
    if (!st) {
        res->ratio = lo;
        res->metric = lo_metric;
        if (best) st = task_assign(t, best);
        else up_task_clear_kept(t);
    }
    up_task_free(best);
    return st;
}
