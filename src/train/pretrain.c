/* pretrain.c: masked-LM pretraining (see pretrain.h). */
#include "train/pretrain.h"

#include <errno.h>
#include <stdarg.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "base/base.h"
#include "io/safetensors.h"
#include "io/st_write.h"
#include "kernels/ops.h"
#include "model/model.h"
#include "train/params.h"

up_pretrain_opts up_pretrain_defaults(void) {
    up_pretrain_opts o;
    memset(&o, 0, sizeof o);
    o.seq_len = 128;
    o.batch = 64;
    o.steps = 10000;
    o.warmup = 500;
    o.lr = 1e-3f;
    o.min_lr = 1e-5f;
    o.weight_decay = 0.01f;
    o.clip = 1.0f;
    o.beta2 = 0.98f;
    o.cosine = 1;
    o.mask_prob = 0.15;
    o.seed = 1;
    o.eval_every = 500;
    o.ckpt_every = 500;
    o.log_every = 10;
    o.eval_batches = 8;
    o.precision = UP_PREC_AUTO;
    o.out_dtype = "bf16";
    return o;
}

/* ---- deterministic randomness: splitmix64 of (seed, step, row, i) ---- */

/* ---- data: the token stream cut into sequences of T-2 pieces ---- */
typedef struct {
    int32_t *tok;
    size_t n;       /* tokens */
    size_t n_seq;   /* sequences of span pieces */
    int span;       /* T - 2 */
    uint32_t *perm; /* order of the current epoch */
    long epoch;
} corpus;

static up_status corpus_load(corpus *c, const char *path, const up_tokenizer *t, int T) {
    memset(c, 0, sizeof *c);
    c->epoch = -1;
    c->span = T - 2;
    FILE *f = fopen(path, "rb");
    if (!f) return up_fail(UP_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = 1 << 20;
    c->tok = malloc(cap * sizeof *c->tok);
    char *line = NULL;
    size_t lcap = 0;
    ssize_t len;
    up_encoding e = {0};
    long lineno = 0;
    up_status st = c->tok ? UP_OK : up_fail(UP_ERR_NOMEM, "out of memory reading %s", path);
    while (!st && (len = getline(&line, &lcap, f)) >= 0) {
        lineno++;
        if (len <= 1) continue;
        st = up_tokenizer_wordpieces(t, line, &e);
        if (st) { up_fail_prefix(st, "%s:%ld", path, lineno); break; }
        if (c->n + (size_t)e.n > cap) {
            while (c->n + (size_t)e.n > cap) cap *= 2;
            int32_t *p = realloc(c->tok, cap * sizeof *p);
            if (!p) { st = up_fail(UP_ERR_NOMEM, "out of memory reading %s (%zu tokens)", path, c->n); break; }
            c->tok = p;
        }
        memcpy(c->tok + c->n, e.ids, (size_t)e.n * sizeof *e.ids);
        c->n += (size_t)e.n;
    }
    free(line);
    up_encoding_free(&e);
    fclose(f);
    if (st) return st;
    c->n_seq = c->n / (size_t)c->span;
    if (c->n_seq == 0)
        return up_fail(UP_ERR_FORMAT, "%s: only %zu word pieces, fewer than one sequence of %d", path, c->n, c->span);
    if (c->n_seq > UINT32_MAX) return up_fail(UP_ERR_INVALID, "%s: too many sequences", path);
    c->perm = malloc(c->n_seq * sizeof *c->perm);
    return c->perm ? UP_OK : up_fail(UP_ERR_NOMEM, "out of memory for the data order");
}

static void corpus_free(corpus *c) {
    free(c->tok);
    free(c->perm);
}

/* sequence index of global example g (epoch-wise seeded shuffle) */
static size_t corpus_pick(corpus *c, uint64_t seed, uint64_t g) {
    long epoch = (long)(g / c->n_seq);
    if (epoch != c->epoch) {
        for (size_t i = 0; i < c->n_seq; i++) c->perm[i] = (uint32_t)i;
        up_rng r = up_rng_seed(up_mix64(seed * 0x100000001B3ull + (uint64_t)epoch));
        for (size_t i = c->n_seq - 1; i > 0; i--) {
            size_t j = (size_t)(up_rng_next(&r) % (i + 1));
            uint32_t t = c->perm[i]; c->perm[i] = c->perm[j]; c->perm[j] = t;
        }
        c->epoch = epoch;
    }
    return c->perm[g % c->n_seq];
}

/* ---- a masked batch ---- */
typedef struct {
    int B, T;
    int32_t *ids, *lens;
    int32_t *rows, *targets; /* masked positions (indices into B*T) and their original ids */
    int n, cap;
} mlm_batch;

static void make_batch(mlm_batch *mb, const corpus *c, const size_t *seqs, uint64_t seed, uint64_t step,
                       double p, int32_t cls, int32_t sep, int32_t mask, int32_t vocab, int32_t first_normal) {
    int B = mb->B, T = mb->T;
    mb->n = 0;
    for (int b = 0; b < B; b++) {
        int32_t *row = mb->ids + (size_t)b * T;
        const int32_t *src = c->tok + seqs[b] * (size_t)c->span;
        row[0] = cls;
        memcpy(row + 1, src, (size_t)c->span * sizeof *row);
        row[T - 1] = sep;
        mb->lens[b] = T;
        up_rng r = up_rng_seed(up_mix64(seed ^ up_mix64(step * 0x9E3779B97F4A7C15ull + (uint64_t)b)));
        int chosen = 0;
        for (int t = 1; t < T - 1 && mb->n < mb->cap; t++) {
            if (up_rng_unit(&r) >= p && !(t == T - 2 && !chosen)) continue; /* at least one per row */
            chosen++;
            mb->rows[mb->n] = b * T + t;
            mb->targets[mb->n++] = row[t];
            double a = up_rng_unit(&r);
            if (a < 0.8) row[t] = mask;
            else if (a < 0.9) row[t] = first_normal + (int32_t)(up_rng_next(&r) % (uint64_t)(vocab - first_normal));
        }
    }
}

static int batch_alloc(mlm_batch *mb, int B, int T, double p) {
    mb->B = B;
    mb->T = T;
    mb->cap = (int)(B * (T - 2) * (p + 0.1)) + 2 * B;
    mb->ids = malloc((size_t)B * T * 4);
    mb->lens = malloc((size_t)B * 4);
    mb->rows = malloc((size_t)mb->cap * 4);
    mb->targets = malloc((size_t)mb->cap * 4);
    return mb->ids && mb->lens && mb->rows && mb->targets;
}

static void batch_free(mlm_batch *mb) {
    free(mb->ids); free(mb->lens); free(mb->rows); free(mb->targets);
}

/* the first id that is not a special or [unused] token: random replacements start there */
static int32_t first_normal_id(const up_tokenizer *t) {
    int64_t V = up_tokenizer_vocab_size(t);
    for (int32_t i = 0; i < V; i++) {
        const char *s = up_tokenizer_token(t, i);
        if (s && s[0] != '[') return i;
    }
    return 0;
}

/* loss, correct count over the masked rows of one batch; logits (n,V) are overwritten by the gradient */
static double mlm_loss(up_run *r, const mlm_batch *mb, float *logits, int V, long *correct) {
    if (up_mlm_forward(r, mb->rows, mb->n, logits) != UP_OK) return NAN;
    if (correct) {
        long c = 0;
        for (int i = 0; i < mb->n; i++) {
            const float *x = logits + (size_t)i * V;
            int best = 0;
            for (int j = 1; j < V; j++) if (x[j] > x[best]) best = j;
            c += best == mb->targets[i];
        }
        *correct = c;
    }
    return up_xent_forward_backward(logits, logits, mb->targets, (size_t)mb->n, V, 1.0f, NULL);
}

/* ---- checkpoints: params, moments and the step, as safetensors ---- */
static up_status ckpt_save(const up_params *P, const char *path, const up_pretrain_opts *o, long tokens_seen,
                           size_t n_seq) {
    up_st_writer *w = up_st_writer_new();
    if (!w) return up_fail(UP_ERR_NOMEM, "out of memory");
    char buf[64], name[200];
    up_status st = UP_OK;
    for (int i = 0; i < P->nt && !st; i++) {
        const up_param *t = &P->t[i];
        int64_t shape[2] = {t->shape[0], t->shape[1]};
        snprintf(name, sizeof name, "param.%s", t->name);
        st = up_st_writer_add(w, name, UP_DT_F32, t->ndim, shape, P->p + t->off);
        snprintf(name, sizeof name, "adam_m.%s", t->name);
        if (!st) st = up_st_writer_add(w, name, UP_DT_F32, t->ndim, shape, P->m1 + t->off);
        snprintf(name, sizeof name, "adam_v.%s", t->name);
        if (!st) st = up_st_writer_add(w, name, UP_DT_F32, t->ndim, shape, P->m2 + t->off);
    }
    up_st_writer_meta(w, "unplug_checkpoint", "1");
    snprintf(buf, sizeof buf, "%ld", P->step);
    up_st_writer_meta(w, "step", buf);
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)o->seed);
    up_st_writer_meta(w, "seed", buf);
    snprintf(buf, sizeof buf, "%ld", tokens_seen);
    up_st_writer_meta(w, "tokens_seen", buf);
    snprintf(buf, sizeof buf, "%zu", n_seq);
    up_st_writer_meta(w, "sequences", buf);
    snprintf(buf, sizeof buf, "%dx%d", o->batch, o->seq_len);
    up_st_writer_meta(w, "batch", buf);
    if (!st) st = up_st_writer_save(w, path);
    up_st_writer_free(w);
    return st;
}

static up_status ckpt_load(up_params *P, const char *path, const up_pretrain_opts *o, long *tokens_seen,
                           size_t n_seq) {
    up_st_set *s;
    up_status st = up_st_open_file(path, &s);
    if (st) return st;
    char name[200];
    for (int i = 0; i < P->nt && !st; i++) {
        const up_param *t = &P->t[i];
        float *dst[3] = {P->p + t->off, P->m1 + t->off, P->m2 + t->off};
        const char *pre[3] = {"param.", "adam_m.", "adam_v."};
        for (int k = 0; k < 3 && !st; k++) {
            snprintf(name, sizeof name, "%s%s", pre[k], t->name);
            const up_st_tensor *x = up_st_find(s, name);
            if (!x) { st = up_fail(UP_ERR_FORMAT, "%s: checkpoint lacks '%s': was it made for another model shape?", path, name); break; }
            if (x->dtype != UP_DT_F32 || x->nbytes != t->n * 4) {
                st = up_fail(UP_ERR_FORMAT, "%s: '%s' holds %zu bytes of %s, expected %zu bytes of F32", path, name,
                             x->nbytes, up_dtype_name(x->dtype), t->n * 4);
                break;
            }
            memcpy(dst[k], x->data, x->nbytes);
        }
    }
    const char *step = up_st_meta(s, "step"), *toks = up_st_meta(s, "tokens_seen"), *seqs = up_st_meta(s, "sequences"),
               *seed = up_st_meta(s, "seed"), *batch = up_st_meta(s, "batch");
    if (!st && (!step || !toks || !seqs || !seed || !batch))
        st = up_fail(UP_ERR_FORMAT, "%s: not an unplug pretraining checkpoint (metadata step/tokens_seen/sequences missing)", path);
    if (!st) {
        char want[64];
        snprintf(want, sizeof want, "%dx%d", o->batch, o->seq_len);
        if (strcmp(batch, want))
            st = up_fail(UP_ERR_INVALID, "%s: checkpoint was trained with batch %s, this run asks for %s: resume with the same --batch and --seq-len", path, batch, want);
        else if (strtoull(seqs, NULL, 10) != n_seq)
            st = up_fail(UP_ERR_INVALID, "%s: checkpoint saw %s sequences of data, this corpus has %zu: resume on the same text", path, seqs, n_seq);
        else if (strtoull(seed, NULL, 10) != o->seed)
            st = up_fail(UP_ERR_INVALID, "%s: checkpoint seed %s differs from --seed %llu", path, seed, (unsigned long long)o->seed);
    }
    if (!st) {
        P->step = strtol(step, NULL, 10);
        *tokens_seen = strtol(toks, NULL, 10);
        up_params_sync(P);
    }
    up_st_close(s);
    return st;
}

/* ---- evaluation on held-out sequences (fixed order and masking) ---- */
static up_status evaluate(up_run *r, corpus *held, const up_pretrain_opts *o, mlm_batch *mb, float *logits,
                          const up_tokenizer *t, double *loss, double *acc, long *n_masked) {
    int V = (int)up_tokenizer_vocab_size(t);
    int32_t cls = up_tokenizer_id(t, "[CLS]"), sep = up_tokenizer_id(t, "[SEP]"), mask = up_tokenizer_id(t, "[MASK]");
    int32_t fn = first_normal_id(t);
    double lsum = 0;
    long correct = 0, n = 0;
    size_t seqs[4096];
    int nb = o->eval_batches;
    if ((size_t)nb * mb->B > held->n_seq) nb = (int)(held->n_seq / (size_t)mb->B);
    if (nb < 1) nb = 1;
    for (int k = 0; k < nb; k++) {
        int B = mb->B;
        for (int b = 0; b < B; b++) seqs[b] = ((size_t)k * B + b) % held->n_seq;
        make_batch(mb, held, seqs, o->seed ^ 0xE7A1, (uint64_t)k, o->mask_prob, cls, sep, mask, V, fn);
        up_batch bt = {.B = B, .T = mb->T, .ids = mb->ids, .type_ids = NULL, .lens = mb->lens};
        up_status st = up_forward(r, &bt);
        if (st) return st;
        long c = 0;
        double l = mlm_loss(r, mb, logits, V, &c);
        lsum += l * mb->n;
        correct += c;
        n += mb->n;
    }
    *loss = n ? lsum / n : NAN;
    *acc = n ? (double)correct / n : 0;
    if (n_masked) *n_masked = n;
    return UP_OK;
}

static void log_line(const char *dir, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void log_line(const char *dir, const char *fmt, ...) {
    char path[1100];
    snprintf(path, sizeof path, "%s/train_log.jsonl", dir);
    FILE *f = fopen(path, "a");
    if (!f) return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
    fputc('\n', f);
    fclose(f);
}

static up_status export_model(const up_params *P, const up_pretrain_opts *o) {
    up_dtype dt = UP_DT_BF16;
    const char *dn = o->out_dtype ? o->out_dtype : "bf16";
    if (!strcmp(dn, "f32")) dt = UP_DT_F32;
    else if (!strcmp(dn, "f16")) dt = UP_DT_F16;
    else if (strcmp(dn, "bf16")) return up_fail(UP_ERR_INVALID, "out_dtype '%s': expected bf16, f16 or f32", dn);
    up_status st = up_params_save_hf(P, o->out_dir, dt, o->vocab_path);
    if (st) return st;
    char path[1100];
    snprintf(path, sizeof path, "%s/tokenizer_config.json", o->out_dir);
    FILE *f = fopen(path, "w");
    if (!f) return up_fail(UP_ERR_IO, "%s: cannot create", path);
    fputs("{\"do_lower_case\": true, \"tokenizer_class\": \"BertTokenizer\", \"model_max_length\": 512}\n", f);
    fclose(f);
    return UP_OK;
}

up_status up_pretrain(const up_pretrain_opts *o, up_pretrain_report *rep) {
    up_pretrain_report dummy;
    if (!rep) rep = &dummy;
    memset(rep, 0, sizeof *rep);
    if (!o->train_path || !o->vocab_path || !o->out_dir)
        return up_fail(UP_ERR_INVALID, "pretraining needs a training text, a vocab and an output directory");
    if (o->out_dtype && strcmp(o->out_dtype, "bf16") && strcmp(o->out_dtype, "f16") && strcmp(o->out_dtype, "f32"))
        return up_fail(UP_ERR_INVALID, "out_dtype '%s': expected bf16, f16 or f32", o->out_dtype);
    if (o->seq_len < 8 || o->batch < 1 || o->batch > 4096 || o->steps < 1)
        return up_fail(UP_ERR_INVALID, "pretraining: seq_len >= 8, batch 1..4096 and steps >= 1 (got %d, %d, %ld)",
                       o->seq_len, o->batch, o->steps);
    if (mkdir(o->out_dir, 0755) != 0 && errno != EEXIST)
        return up_fail(UP_ERR_IO, "%s: cannot create: %s", o->out_dir, strerror(errno));
    up_tokenizer *tok = NULL;
    up_model *m = NULL;
    up_params *P = NULL;
    up_run *r = NULL;
    corpus train = {0}, held = {0};
    mlm_batch mb = {0};
    float *logits = NULL, *dhidden = NULL;
    up_tokenizer_opts to = up_tokenizer_opts_default();
    up_status st = up_tokenizer_load(o->vocab_path, &to, &tok);
    up_model_opts mo = up_model_opts_default();
    mo.precision = o->precision;
    mo.threads = o->threads;
    if (!st) {
        if (o->init_dir) {
            st = up_model_load(o->init_dir, &mo, &m);
            if (!st && !m->w.has_mlm)
                st = up_fail(UP_ERR_UNSUPPORTED, "%s has no masked-LM head to continue pretraining", o->init_dir);
        } else if (o->config_path) {
            up_config cfg;
            st = up_config_load(o->config_path, &cfg);
            if (!st) st = up_model_random_heads(&cfg, &mo, o->seed, 1, &m);
        } else st = up_fail(UP_ERR_INVALID, "pretraining needs --config (from scratch) or --init DIR");
    }
    int V = 0, T = o->seq_len, B = o->batch;
    if (!st) {
        V = (int)m->cfg.vocab_size;
        if (up_tokenizer_vocab_size(tok) != V)
            st = up_fail(UP_ERR_INVALID, "%s has %lld tokens but the model's vocab_size is %d", o->vocab_path,
                         (long long)up_tokenizer_vocab_size(tok), V);
        else if (T > m->cfg.max_position_embeddings)
            st = up_fail(UP_ERR_INVALID, "seq_len %d exceeds max_position_embeddings %lld", T,
                         (long long)m->cfg.max_position_embeddings);
    }
    if (!st) up_log(UP_LOG_INFO, "tokenizing %s", o->train_path);
    if (!st) st = corpus_load(&train, o->train_path, tok, T);
    if (!st && o->heldout_path) st = corpus_load(&held, o->heldout_path, tok, T);
    if (!st) st = up_params_new(m, &P);
    if (!st) st = up_run_new(m, B, T, &r);
    if (!st) st = up_run_set_train(r, 1, 0);
    if (!st && !batch_alloc(&mb, B, T, o->mask_prob)) st = up_fail(UP_ERR_NOMEM, "out of memory for batches");
    if (!st) {
        logits = up_aligned_alloc((size_t)mb.cap * V * 4, "MLM logits");
        dhidden = up_aligned_alloc((size_t)B * T * m->cfg.hidden_size * 4, "hidden gradient");
        if (!logits || !dhidden) st = UP_ERR_NOMEM;
    }
    long tokens_seen = 0;
    if (!st && o->ckpt_path && up_file_exists(o->ckpt_path)) {
        st = ckpt_load(P, o->ckpt_path, o, &tokens_seen, train.n_seq);
        if (!st) up_log(UP_LOG_INFO, "resumed from %s at step %ld", o->ckpt_path, P->step);
    }
    if (!st)
        up_log(UP_LOG_INFO, "%zu training tokens (%zu sequences of %d), %ld steps of %d x %d, %zu parameters",
               train.n, train.n_seq, T, o->steps, B, T, P->n);
    up_adamw_cfg opt = up_adamw_default();
    opt.beta2 = o->beta2;
    opt.weight_decay = o->weight_decay;
    up_sched sched = {o->cosine ? UP_SCHED_COSINE : UP_SCHED_LINEAR, o->lr, o->warmup, o->steps, o->min_lr};
    int32_t cls = tok ? up_tokenizer_id(tok, "[CLS]") : 0, sep = tok ? up_tokenizer_id(tok, "[SEP]") : 0,
            mask = tok ? up_tokenizer_id(tok, "[MASK]") : 0, fn = tok ? first_normal_id(tok) : 0;
    size_t seqs[4096];
    double lsum = 0, t_log = up_now();
    long nsum = 0, tok_log = 0, steps_this_run = 0;
    const size_t C = m ? (size_t)m->cfg.hidden_size : 0;
    while (!st && P->step < o->steps) {
        long step = P->step;
        for (int b = 0; b < B; b++) seqs[b] = corpus_pick(&train, o->seed, (uint64_t)step * B + b);
        make_batch(&mb, &train, seqs, o->seed, (uint64_t)step, o->mask_prob, cls, sep, mask, V, fn);
        up_batch bt = {.B = B, .T = T, .ids = mb.ids, .type_ids = NULL, .lens = mb.lens};
        up_params_zero_grad(P);
        if ((st = up_forward(r, &bt))) break;
        double loss = mlm_loss(r, &mb, logits, V, NULL);
        if (!isfinite(loss)) { st = up_fail(UP_ERR_INTERNAL, "step %ld: loss is %g; lower --lr", step, loss); break; }
        memset(dhidden, 0, (size_t)B * T * C * 4);
        if ((st = up_mlm_backward(r, logits, &P->grads, dhidden))) break;
        if ((st = up_backward(r, NULL, NULL, dhidden, &P->grads))) break;
        float lr = up_lr_at(&sched, step);
        float gnorm = up_params_step(P, &opt, lr, o->clip);
        tokens_seen += (long)B * T;
        tok_log += (long)B * T;
        steps_this_run++;
        lsum += loss;
        nsum++;
        if (P->step % o->log_every == 0 || P->step == o->steps) {
            double now = up_now();
            rep->step = P->step;
            rep->train_loss = lsum / nsum;
            rep->tokens_per_s = tok_log / (now - t_log);
            rep->tokens_seen = tokens_seen;
            log_line(o->out_dir, "{\"step\": %ld, \"loss\": %.6f, \"step_loss\": %.6f, \"lr\": %.3e, \"grad_norm\": %.4f, "
                     "\"tokens\": %ld, \"tokens_per_s\": %.1f}",
                     P->step, rep->train_loss, loss, (double)lr, (double)gnorm, tokens_seen, rep->tokens_per_s);
            if (o->progress) o->progress(rep, o->steps, o->progress_user);
            else up_log(UP_LOG_INFO, "step %ld/%ld loss %.4f lr %.2e %.0f tok/s", P->step, o->steps, rep->train_loss,
                        (double)lr, rep->tokens_per_s);
            lsum = 0;
            nsum = 0;
            tok_log = 0;
            t_log = now;
        }
        int stop = (o->interrupt && *o->interrupt) || (o->stop_after > 0 && steps_this_run >= o->stop_after);
        if (held.n_seq && (P->step % o->eval_every == 0 || P->step == o->steps)) {
            long nm;
            if ((st = evaluate(r, &held, o, &mb, logits, tok, &rep->heldout_loss, &rep->heldout_acc, &nm))) break;
            log_line(o->out_dir, "{\"step\": %ld, \"heldout_loss\": %.6f, \"heldout_acc\": %.5f, \"masked\": %ld}", P->step,
                     rep->heldout_loss, rep->heldout_acc, nm);
            up_log(UP_LOG_INFO, "step %ld held-out MLM loss %.4f, masked-token accuracy %.2f%% (%ld tokens)", P->step,
                   rep->heldout_loss, 100 * rep->heldout_acc, nm);
        }
        if (o->ckpt_path && (P->step % o->ckpt_every == 0 || stop || P->step == o->steps)) {
            if ((st = ckpt_save(P, o->ckpt_path, o, tokens_seen, train.n_seq))) break;
        }
        if (stop) {
            up_log(UP_LOG_INFO, "stopping at step %ld%s", P->step, o->ckpt_path ? "; checkpoint saved" : "");
            break;
        }
    }
    if (!st) st = export_model(P, o);
    up_run_free(r);
    up_params_free(P);
    up_model_free(m);
    up_tokenizer_free(tok);
    corpus_free(&train);
    corpus_free(&held);
    batch_free(&mb);
    free(logits);
    free(dhidden);
    return st;
}

up_status up_mlm_evaluate(const char *model_dir, const char *text_path, int seq_len, int batch, int max_batches,
                          uint64_t seed, up_precision prec, double *loss, double *acc, long *n_masked) {
    up_model_opts mo = up_model_opts_default();
    mo.precision = prec;
    up_model *m = NULL;
    up_run *r = NULL;
    corpus held = {0};
    mlm_batch mb = {0};
    float *logits = NULL;
    up_status st = up_model_load(model_dir, &mo, &m);
    if (!st && !m->w.has_mlm) st = up_fail(UP_ERR_UNSUPPORTED, "%s has no masked-LM head", model_dir);
    if (!st && !m->tok) st = up_fail(UP_ERR_INVALID, "%s has no vocab.txt", model_dir);
    if (!st) st = corpus_load(&held, text_path, m->tok, seq_len);
    if (!st) st = up_run_new(m, batch, seq_len, &r);
    if (!st && !batch_alloc(&mb, batch, seq_len, 0.15)) st = up_fail(UP_ERR_NOMEM, "out of memory");
    if (!st) {
        logits = malloc((size_t)mb.cap * m->cfg.vocab_size * 4);
        if (!logits) st = up_fail(UP_ERR_NOMEM, "out of memory");
    }
    if (!st) {
        up_pretrain_opts o = up_pretrain_defaults();
        o.seed = seed;
        o.eval_batches = max_batches;
        st = evaluate(r, &held, &o, &mb, logits, m->tok, loss, acc, n_masked);
    }
    free(logits);
    batch_free(&mb);
    corpus_free(&held);
    up_run_free(r);
    up_model_free(m);
    return st;
}

up_status up_pretrain_bench(const up_config *cfg, int B, int T, int warmup, int iters, up_precision prec, int threads,
                            double *sec_per_step, double *flops_per_step) {
    up_model_opts mo = up_model_opts_default();
    mo.precision = prec;
    mo.threads = threads;
    up_model *m = NULL;
    up_params *P = NULL;
    up_run *r = NULL;
    mlm_batch mb = {0};
    float *logits = NULL, *dhidden = NULL;
    corpus c = {0};
    up_status st = up_model_random_heads(cfg, &mo, 1, 1, &m);
    int V = (int)cfg->vocab_size;
    if (!st) st = up_params_new(m, &P);
    if (!st) st = up_run_new(m, B, T, &r);
    if (!st) st = up_run_set_train(r, 1, 0);
    if (!st && !batch_alloc(&mb, B, T, 0.15)) st = up_fail(UP_ERR_NOMEM, "out of memory");
    if (!st) {
        /* random token stream standing in for a corpus */
        c.span = T - 2;
        c.n_seq = (size_t)B;
        c.n = c.n_seq * (size_t)c.span;
        c.tok = malloc(c.n * sizeof *c.tok);
        logits = up_aligned_alloc((size_t)mb.cap * V * 4, "MLM logits");
        dhidden = up_aligned_alloc((size_t)B * T * cfg->hidden_size * 4, "hidden gradient");
        if (!c.tok || !logits || !dhidden) st = up_fail(UP_ERR_NOMEM, "out of memory");
        up_rng g = up_rng_seed(7);
        for (size_t i = 0; !st && i < c.n; i++) c.tok[i] = 5 + (int32_t)(up_rng_next(&g) % (uint64_t)(V - 5));
    }
    up_adamw_cfg opt = up_adamw_default();
    size_t seqs[4096];
    double total = 0, masked = 0;
    for (int it = 0; !st && it < warmup + iters; it++) {
        for (int b = 0; b < B; b++) seqs[b] = (size_t)b;
        make_batch(&mb, &c, seqs, 1, (uint64_t)it, 0.15, 2, 3, 4, V, 5);
        double t0 = up_now();
        up_batch bt = {.B = B, .T = T, .ids = mb.ids, .type_ids = NULL, .lens = mb.lens};
        up_params_zero_grad(P);
        st = up_forward(r, &bt);
        if (!st) mlm_loss(r, &mb, logits, V, NULL);
        if (!st) {
            memset(dhidden, 0, (size_t)B * T * cfg->hidden_size * 4);
            st = up_mlm_backward(r, logits, &P->grads, dhidden);
        }
        if (!st) st = up_backward(r, NULL, NULL, dhidden, &P->grads);
        if (!st) up_params_step(P, &opt, 1e-4f, 1.0f);
        if (it >= warmup) {
            total += up_now() - t0;
            masked += mb.n;
        }
    }
    if (!st) {
        double C = (double)cfg->hidden_size, F = (double)cfg->intermediate_size;
        double fwd = 2.0 * B * T * cfg->num_hidden_layers * (4 * C * C + 2 * C * F + 2.0 * T * C);
        double head = 2.0 * (masked / iters) * (C * C + C * V);
        *flops_per_step = 3.0 * (fwd + head);
        *sec_per_step = total / iters;
    }
    free(c.tok);
    free(logits);
    free(dhidden);
    batch_free(&mb);
    up_run_free(r);
    up_params_free(P);
    up_model_free(m);
    return st;
}
