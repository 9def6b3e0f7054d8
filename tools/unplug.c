/*
 * unplug: the command-line tool, thin subcommands over libunplug.
 *
 *   unplug info DIR
 *   unplug tokenize (--model DIR | --vocab FILE) [--pairs] [--max-len N]
 *   unplug embed --model DIR [--pairs] [--max-len N] [--batch N]
 *   unplug bench (--model DIR | --config FILE --random) [--batch LIST] [--len LIST]
 *
 * Errors go to stderr with a non-zero exit; data goes to stdout.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <unistd.h>
#include "unplug.h"
#include "cli.h"


int die(const char *what) {
    fprintf(stderr, "unplug: %s%s%s\n", what, up_errmsg()[0] ? ": " : "", up_errmsg());
    return 1;
}

static const char *act_name(up_act a) {
    return a == UP_ACT_RELU ? "relu" : a == UP_ACT_GELU_NEW ? "gelu_new" : "gelu";
}

/* ---- info ---------------------------------------------------------------- */

static const char *info_help =
    "usage: unplug info DIR [--precision fp32|bf16|auto] [--backend onednn|reference] [--threads N]\n"
    "Loads the model in DIR (config.json, safetensors, vocab.txt) and prints its\n"
    "configuration, parameter count, stored dtypes, the compute backend and\n"
    "precision that would run it, and the CPU features they were chosen from.\n";

static int cmd_info(const args *a) {
    if (a->help) return fputs(info_help, stdout), 0;
    if (!a->model) return fputs(info_help, stderr), 2;
    up_model_opts o = cli_model_opts(a);
    up_model *m;
    if (up_model_load(a->model, &o, &m) != UP_OK) return die("cannot load the model");
    const up_config *c = up_model_config(m);
    up_cpu_features f = up_cpu_detect();
    printf("model:        %s\n", a->model);
    printf("model_type:   %s\n", c->model_type);
    printf("layers:       %lld\n", (long long)c->num_hidden_layers);
    printf("hidden:       %lld\n", (long long)c->hidden_size);
    printf("heads:        %lld\n", (long long)c->num_attention_heads);
    printf("ffn:          %lld (%s)\n", (long long)c->intermediate_size, act_name(c->hidden_act));
    printf("vocab:        %lld\n", (long long)c->vocab_size);
    printf("max_position: %lld\n", (long long)c->max_position_embeddings);
    printf("type_vocab:   %lld\n", (long long)c->type_vocab_size);
    printf("ln_eps:       %g\n", (double)c->layer_norm_eps);
    if (up_model_has_classifier(m)) {
        printf("classifier:   %d labels:", c->num_labels);
        for (int i = 0; i < c->num_labels; i++) printf(" %s", c->labels[i]);
        printf("\n");
    } else printf("classifier:   none\n");
    printf("parameters:   %lld (%.2f M)\n", (long long)up_model_param_count(m), up_model_param_count(m) / 1e6);
    printf("dtypes:       %s\n", up_model_dtypes(m));
    printf("files:        %d safetensors file(s)\n", up_model_num_files(m));
    printf("tokenizer:    %s\n", up_model_tokenizer(m) ? (up_tokenizer_lowercase(up_model_tokenizer(m)) ? "uncased" : "cased") : "none");
    printf("backend:      %s\n", up_backend_name(up_model_backend(m)));
    printf("precision:    %s", up_precision_name(up_model_precision(m)));
    if (a->precision == UP_PREC_AUTO && up_bf16_speed() > 0)
        printf(" (auto: bf16 products run at %.2fx fp32's speed here)", up_bf16_speed());
    printf("\n");
    printf("cpu:          avx2=%d avx512f=%d avx512bw=%d avx512_bf16=%d amx_tile=%d amx_bf16=%d\n", f.avx2, f.avx512f,
           f.avx512bw, f.avx512_bf16, f.amx_tile, f.amx_bf16);
    printf("kernels:      %s (%s)\n", up_kernel_isa(),
           up_model_backend(m) == UP_BACKEND_DNNL ? "oneDNN's choice for this CPU" : "the reference backend's plain C");
    up_model_free(m);
    return 0;
}

/* ---- line input ----------------------------------------------------------- */

typedef struct {
    char *line;
    size_t cap;
    long lineno;
} reader;

/* Next line without its newline; NULL at end of input. */
static char *next_line(reader *r) {
    ssize_t n = getline(&r->line, &r->cap, stdin);
    if (n < 0) return NULL;
    r->lineno++;
    while (n > 0 && (r->line[n - 1] == '\n' || r->line[n - 1] == '\r')) r->line[--n] = 0;
    return r->line;
}

/* Splits a line into text a and (with --pairs) text b at the first tab. */
static void split_pair(char *line, int pairs, const char **a, const char **b) {
    *a = line;
    *b = NULL;
    if (!pairs) return;
    char *tab = strchr(line, '\t');
    if (tab) {
        *tab = 0;
        *b = tab + 1;
    }
}

static int encode_line(const up_tokenizer *t, char *line, long lineno, int pairs, int max_len, up_encoding *e) {
    const char *ta, *tb;
    split_pair(line, pairs, &ta, &tb);
    if (pairs && !tb) fprintf(stderr, "unplug: line %ld: no tab, encoded as a single text\n", lineno);
    if (!ta[0] && (!tb || !tb[0])) fprintf(stderr, "unplug: line %ld: empty text, encoded as [CLS] [SEP]\n", lineno);
    if (up_tokenizer_encode(t, ta, tb, max_len, e) != UP_OK) {
        fprintf(stderr, "unplug: line %ld: %s\n", lineno, up_errmsg());
        return 0;
    }
    if (e->truncated)
        fprintf(stderr, "unplug: line %ld: truncated: %d word pieces dropped to fit %d tokens\n", lineno, e->truncated,
                max_len);
    return 1;
}

static void print_ints(const int32_t *v, int n) {
    putchar('[');
    for (int i = 0; i < n; i++) printf(i ? ",%d" : "%d", v[i]);
    putchar(']');
}

static void print_floats(const float *v, int n) {
    putchar('[');
    for (int i = 0; i < n; i++) printf(i ? ",%.8g" : "%.8g", (double)v[i]);
    putchar(']');
}

/* ---- tokenize -------------------------------------------------------------- */

static const char *tokenize_help =
    "usage: unplug tokenize (--model DIR | --vocab FILE) [--pairs] [--max-len N] [--lowercase 0|1]\n"
    "Reads lines from stdin (with --pairs a tab separates the two texts of a pair)\n"
    "and writes one JSON object per line: {\"ids\": [...], \"type_ids\": [...]}, as\n"
    "Hugging Face's BertTokenizer would encode them with special tokens and\n"
    "longest-first truncation to --max-len (default: the model's max positions, or 512).\n";

static int cmd_tokenize(const args *a) {
    if (a->help) return fputs(tokenize_help, stdout), 0;
    up_tokenizer *tok = NULL;
    up_model *m = NULL;
    int max_len = a->max_len;
    if (a->vocab) {
        up_tokenizer_opts to = up_tokenizer_opts_default();
        to.lowercase = a->lowercase;
        if (up_tokenizer_load(a->vocab, &to, &tok) != UP_OK) return die("cannot load the vocabulary");
        if (!max_len) max_len = 512;
    } else if (a->model) {
        up_model_opts o = cli_model_opts(a);
        if (up_model_load(a->model, &o, &m) != UP_OK) return die("cannot load the model");
        if (!up_model_tokenizer(m)) { up_model_free(m); return die("the model directory has no vocab.txt"); }
        if (!max_len) max_len = (int)up_model_config(m)->max_position_embeddings;
    } else return fputs(tokenize_help, stderr), 2;
    const up_tokenizer *t = tok ? tok : up_model_tokenizer(m);
    reader r = {0};
    up_encoding e = {0};
    char *line;
    int rc = 0;
    while ((line = next_line(&r))) {
        if (!encode_line(t, line, r.lineno, a->pairs, max_len, &e)) { rc = 1; break; }
        printf("{\"ids\": ");
        print_ints(e.ids, e.n);
        printf(", \"type_ids\": ");
        print_ints(e.type_ids, e.n);
        printf("}\n");
    }
    free(r.line);
    up_encoding_free(&e);
    up_tokenizer_free(tok);
    up_model_free(m);
    return rc;
}

/* ---- embed ----------------------------------------------------------------- */

static const char *embed_help =
    "usage: unplug embed --model DIR [--pairs] [--max-len N] [--batch N]\n"
    "                    [--pool cls|mean [--normalize]] [--hidden]\n"
    "                    [--precision fp32|bf16|auto] [--backend onednn|reference] [--threads N]\n"
    "Reads lines from stdin (with --pairs a tab separates a pair), runs the encoder\n"
    "in batches of --batch lines (default 32) and writes one JSON object per line:\n"
    "{\"cls\": [...], \"pooled\": [...]} (final-layer [CLS] vector and pooler output;\n"
    "\"logits\" too when the checkpoint has a classification head).\n"
    "--pool writes {\"embedding\": [...]} instead: the final [CLS] vector (cls) or\n"
    "the mean of the final hidden states over the line's tokens (mean, as\n"
    "sentence-transformers pools), --normalize scales it to L2 norm 1.\n"
    "sentence-transformers cuts inputs at its max_seq_length (sentence_bert_config.json,\n"
    "256 for all-MiniLM-L6-v2): --max-len 256 gives its embeddings of longer texts.\n"
    "--hidden adds \"hidden\": the final hidden state of every token, (tokens, hidden).\n";

static int embed_flush(up_model *m, up_run *run, const args *a, float *emb, up_encoding *enc, int n, int32_t *ids,
                       int32_t *types, int32_t *lens) {
    const up_config *c = up_model_config(m);
    int T = 1;
    for (int i = 0; i < n; i++) T = enc[i].n > T ? enc[i].n : T;
    for (int i = 0; i < n; i++) { /* rows at stride T, then padded */
        lens[i] = enc[i].n;
        memcpy(ids + (size_t)i * T, enc[i].ids, (size_t)enc[i].n * sizeof *ids);
        memcpy(types + (size_t)i * T, enc[i].type_ids, (size_t)enc[i].n * sizeof *types);
    }
    up_batch_restride(ids, types, lens, n, T, T, (int32_t)c->pad_token_id);
    up_batch b = {.B = n, .T = T, .ids = ids, .type_ids = types, .lens = lens};
    if (up_forward(run, &b) != UP_OK) return 0;
    const float *cls = up_run_cls(run), *pooled = up_run_pooled(run), *logits = up_run_logits(run);
    int C = (int)c->hidden_size;
    if (a->pool_mean >= 0 && up_run_embed(run, a->pool_mean ? UP_POOL_MEAN : UP_POOL_CLS, a->normalize, emb) != UP_OK)
        return 0;
    const float *hidden = up_run_hidden(run, (int)c->num_hidden_layers);
    for (int i = 0; i < n; i++) {
        if (a->pool_mean >= 0) {
            printf("{\"embedding\": ");
            print_floats(emb + (size_t)i * C, C);
        } else {
            printf("{\"cls\": ");
            print_floats(cls + (size_t)i * C, C);
        }
        if (a->hidden) {
            printf(", \"hidden\": [");
            for (int t = 0; t < enc[i].n; t++) {
                if (t) putchar(',');
                print_floats(hidden + ((size_t)i * T + t) * C, C);
            }
            putchar(']');
        }
        if (a->pool_mean >= 0) {
            printf("}\n");
            continue;
        }
        if (pooled) {
            printf(", \"pooled\": ");
            print_floats(pooled + (size_t)i * C, C);
        }
        if (logits) {
            printf(", \"logits\": ");
            print_floats(logits + (size_t)i * c->num_labels, c->num_labels);
        }
        printf("}\n");
    }
    return 1;
}

static int cmd_embed(const args *a) {
    if (a->help) return fputs(embed_help, stdout), 0;
    if (!a->model) return fputs(embed_help, stderr), 2;
    if (a->normalize && a->pool_mean < 0) return fputs("unplug: --normalize needs --pool cls|mean\n", stderr), 2;
    up_model_opts o = cli_model_opts(a);
    up_model *m;
    if (up_model_load(a->model, &o, &m) != UP_OK) return die("cannot load the model");
    const up_tokenizer *t = up_model_tokenizer(m);
    if (!t) { up_model_free(m); return die("the model directory has no vocab.txt"); }
    int maxpos = (int)up_model_config(m)->max_position_embeddings;
    int max_len = a->max_len ? a->max_len : maxpos;
    if (max_len > maxpos) {
        fprintf(stderr, "unplug: --max-len %d exceeds the model's max_position_embeddings %d\n", max_len, maxpos);
        up_model_free(m);
        return 2;
    }
    int B = a->batch;
    up_run *run = NULL;
    up_encoding *enc = calloc((size_t)B, sizeof *enc);
    int32_t *ids = malloc((size_t)B * max_len * 4), *types = malloc((size_t)B * max_len * 4), *lens = malloc((size_t)B * 4);
    float *emb = malloc((size_t)B * up_model_config(m)->hidden_size * sizeof *emb);
    int rc = 0, n = 0;
    if (!enc || !ids || !types || !lens || !emb) { rc = 1; fprintf(stderr, "unplug: out of memory\n"); goto done; }
    if (up_run_new(m, B, max_len, &run) != UP_OK) { rc = die("cannot set up the run"); goto done; }
    reader r = {0};
    char *line;
    while ((line = next_line(&r))) {
        if (!encode_line(t, line, r.lineno, a->pairs, max_len, &enc[n])) { rc = 1; break; }
        if (++n == B) {
            if (!embed_flush(m, run, a, emb, enc, n, ids, types, lens)) { rc = die("forward failed"); break; }
            n = 0;
        }
    }
    if (!rc && n && !embed_flush(m, run, a, emb, enc, n, ids, types, lens)) rc = die("forward failed");
    free(r.line);
done:
    for (int i = 0; enc && i < B; i++) up_encoding_free(&enc[i]);
    free(enc); free(ids); free(types); free(lens); free(emb);
    up_run_free(run);
    up_model_free(m);
    return rc;
}

/* ---- bench ------------------------------------------------------------------ */

static const char *bench_help =
    "usage: unplug bench (--model DIR | --config FILE --random) [--batch 1,8,32] [--len 128]\n"
    "                    [--iters N] [--warmup N] [--precision fp32|bf16|int8|auto]\n"
    "                    [--expert FILE] [--backend onednn|reference] [--threads N] [--json]\n"
    "Times the encoder forward on random token ids for every batch size x length,\n"
    "median of --iters runs after --warmup runs, and prints sequences/s, tokens/s,\n"
    "latency and effective TFLOP/s (2 x the multiply-adds of the matrix products).\n"
    "With --expert FILE (and --model DIR): the expert's forward against the same\n"
    "task with every neuron kept, alternated in three rounds as `unplug eval` times\n"
    "them: full_ms, expert_ms and the speed-up per shape.\n"
    "With --train-step (and --config FILE): full masked-LM training steps instead\n"
    "(forward, MLM head, backward, AdamW), tokens/s and effective TFLOP/s (3 x forward).\n";

static int parse_list(const char *s, int *out, int cap, int lo, int hi, const char *flag) {
    int n = 0;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s);
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        if (n == cap) { fprintf(stderr, "unplug: %s: at most %d values\n", flag, cap); return -1; }
        char *end;
        errno = 0;
        long v = strtol(tok, &end, 10);
        if (errno || *end || end == tok || v < lo || v > hi) {
            fprintf(stderr, "unplug: %s expects integers in %d..%d, got '%s'\n", flag, lo, hi, tok);
            return -1;
        }
        out[n] = (int)v;
        n++;
    }
    return n;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* multiply-adds of one forward: per token per layer 4C^2 (QKV, O) + 2CF
 * (FFN) + 2TC (scores, context); pooler ignored */
static double forward_flops(const up_config *c, int B, int T) {
    double C = (double)c->hidden_size, F = (double)c->intermediate_size;
    return 2.0 * B * T * c->num_hidden_layers * (4 * C * C + 2 * C * F + 2.0 * T * C);
}

/* bench --expert: the expert against its task with every neuron kept */
static int bench_expert(const args *a, up_model *m, const int *bs, int nb, const int *ls, int nl) {
    up_expert *e = NULL;
    if (up_expert_load(m, a->expert, &e) != UP_OK) return die("cannot load the expert");
    if (!a->json)
        printf("# %s on %s, precision %s, median of %d per round, 3 rounds\n%6s %6s %10s %10s %8s\n", a->expert, a->model,
               up_precision_name(up_model_precision(m)), a->iters, "batch", "len", "full_ms", "expert_ms", "speedup");
    else printf("[");
    int rc = 0;
    for (int ib = 0; ib < nb && !rc; ib++)
        for (int il = 0; il < nl && !rc; il++) {
            double ms[2];
            if (up_expert_time(m, e, NULL, bs[ib], ls[il], a->iters, ms) != UP_OK) {
                rc = die("timing failed");
                break;
            }
            if (a->json)
                printf("%s\n {\"batch\": %d, \"len\": %d, \"full_ms\": %.3f, \"expert_ms\": %.3f, \"speedup\": %.3f, "
                       "\"precision\": \"%s\"}",
                       ib + il ? "," : "", bs[ib], ls[il], ms[0], ms[1], ms[0] / ms[1],
                       up_precision_name(up_model_precision(m)));
            else printf("%6d %6d %10.3f %10.3f %7.2fx\n", bs[ib], ls[il], ms[0], ms[1], ms[0] / ms[1]);
            fflush(stdout);
        }
    if (a->json) printf("\n]\n");
    up_expert_free(e);
    return rc;
}

static int cmd_bench(const args *a) {
    if (a->help) return fputs(bench_help, stdout), 0;
    const int warmup = a->warmup < 0 ? 1 : a->warmup;
    up_model_opts o = cli_model_opts(a);
    up_model *m = NULL;
    if (a->train_mode) {
        if (!a->config) return fputs("unplug: --train-step needs --config FILE\n", stderr), 2;
        up_config cfg;
        if (up_config_load(a->config, &cfg) != UP_OK) return die("cannot read the config");
        int bs[32], ls[32];
        int nb = parse_list(a->batches, bs, 32, 1, 4096, "--batch"), nl = parse_list(a->lens, ls, 32, 8, 1 << 20, "--len");
        if (nb < 0 || nl < 0) return 2;
        if (!a->json) printf("%6s %6s %12s %12s %10s\n", "batch", "len", "step_ms", "tokens/s", "TFLOP/s");
        else printf("[");
        for (int ib = 0; ib < nb; ib++)
            for (int il = 0; il < nl; il++) {
                double sec, fl;
                if (up_pretrain_bench(&cfg, bs[ib], ls[il], warmup, a->iters, a->precision, a->threads, &sec, &fl) != UP_OK)
                    return die("training benchmark failed");
                double tps = bs[ib] * (double)ls[il] / sec;
                if (a->json)
                    printf("%s\n {\"batch\": %d, \"len\": %d, \"step_ms\": %.2f, \"tokens_per_s\": %.1f, \"tflops\": %.4f}",
                           ib + il ? "," : "", bs[ib], ls[il], sec * 1e3, tps, fl / sec / 1e12);
                else printf("%6d %6d %12.2f %12.1f %10.4f\n", bs[ib], ls[il], sec * 1e3, tps, fl / sec / 1e12);
                fflush(stdout);
            }
        if (a->json) printf("\n]\n");
        return 0;
    }
    if (a->random) {
        if (!a->config) return fputs("unplug: --random needs --config FILE\n", stderr), 2;
        up_config cfg;
        if (up_config_load(a->config, &cfg) != UP_OK) return die("cannot read the config");
        if (up_model_random(&cfg, &o, 1, &m) != UP_OK) return die("cannot build the random model");
    } else if (a->model) {
        if (up_model_load(a->model, &o, &m) != UP_OK) return die("cannot load the model");
    } else return fputs(bench_help, stderr), 2;
    const up_config *c = up_model_config(m);
    int bs[32], ls[32];
    int nb = parse_list(a->batches, bs, 32, 1, 4096, "--batch"), nl = parse_list(a->lens, ls, 32, 1, 1 << 20, "--len");
    if (nb < 0 || nl < 0) { up_model_free(m); return 2; }
    if (a->expert) {
        int rc2 = a->random ? (fputs("unplug: --expert needs --model DIR\n", stderr), 2) : bench_expert(a, m, bs, nb, ls, nl);
        up_model_free(m);
        return rc2;
    }
    int rc = 0;
    if (!a->json)
        printf("# %s, %lld layers, hidden %lld, ffn %lld, backend %s, precision %s, median of %d\n",
               a->random ? "random" : a->model, (long long)c->num_hidden_layers, (long long)c->hidden_size,
               (long long)c->intermediate_size, up_backend_name(up_model_backend(m)),
               up_precision_name(up_model_precision(m)), a->iters);
    if (!a->json) printf("%6s %6s %12s %12s %12s %10s\n", "batch", "len", "latency_ms", "seq/s", "tokens/s", "TFLOP/s");
    if (a->json) printf("[");
    uint64_t seed = 12345;
    for (int ib = 0; ib < nb && !rc; ib++)
        for (int il = 0; il < nl && !rc; il++) {
            int B = bs[ib], T = ls[il];
            if (T > c->max_position_embeddings) {
                fprintf(stderr, "unplug: --len %d exceeds max_position_embeddings %lld\n", T, (long long)c->max_position_embeddings);
                rc = 2;
                break;
            }
            up_run *run;
            if (up_run_new(m, B, T, &run) != UP_OK) { rc = die("cannot set up the run"); break; }
            int32_t *ids = malloc((size_t)B * T * 4), *lens = malloc((size_t)B * 4);
            for (int i = 0; i < B * T; i++) {
                ids[i] = (int32_t)(up_random_next(&seed) % (uint64_t)c->vocab_size);
            }
            for (int i = 0; i < B; i++) lens[i] = T;
            up_batch b = {.B = B, .T = T, .ids = ids, .type_ids = NULL, .lens = lens};
            double *times = malloc((size_t)a->iters * sizeof *times);
            for (int i = 0; i < warmup + a->iters && !rc; i++) {
                double t0 = up_now();
                if (up_forward(run, &b) != UP_OK) rc = die("forward failed");
                if (i >= warmup) times[i - warmup] = up_now() - t0;
            }
            if (!rc) {
                qsort(times, (size_t)a->iters, sizeof *times, cmp_double);
                double med = a->iters % 2 ? times[a->iters / 2] : 0.5 * (times[a->iters / 2 - 1] + times[a->iters / 2]);
                double tf = forward_flops(c, B, T) / med / 1e12;
                if (a->json)
                    printf("%s\n {\"batch\": %d, \"len\": %d, \"latency_ms\": %.3f, \"seq_per_s\": %.2f, \"tokens_per_s\": %.1f, "
                           "\"tflops\": %.4f, \"backend\": \"%s\", \"precision\": \"%s\", \"iters\": %d}",
                           ib + il ? "," : "", B, T, med * 1e3, B / med, B * T / med, tf,
                           up_backend_name(up_model_backend(m)), up_precision_name(up_model_precision(m)), a->iters);
                else
                    printf("%6d %6d %12.3f %12.2f %12.1f %10.4f\n", B, T, med * 1e3, B / med, B * T / med, tf);
                fflush(stdout);
            }
            free(times); free(ids); free(lens);
            up_run_free(run);
        }
    if (a->json) printf("\n]\n");
    up_model_free(m);
    return rc;
}

/* ---- pretrain ----------------------------------------------------------------- */

static const char *pretrain_help =
    "usage: unplug pretrain --train FILE --vocab FILE (--config FILE | --init DIR) --out DIR\n"
    "                       [--heldout FILE] [--checkpoint FILE] [--steps N] [--batch N] [--seq-len N]\n"
    "                       [--lr X] [--min-lr X] [--warmup N] [--linear] [--weight-decay X] [--clip X]\n"
    "                       [--seed N] [--eval-every N] [--eval-batches N] [--ckpt-every N] [--log-every N]\n"
    "                       [--stop-after N] [--dtype bf16|f16|f32] [--precision fp32|bf16] [--threads N]\n"
    "Masked-LM pretraining (15% masking, 80/10/10, tied decoder) on a text file,\n"
    "one paragraph per line, packed into sequences of --seq-len (default 128).\n"
    "From scratch with --config (a BertConfig config.json), or continuing --init DIR.\n"
    "AdamW (betas 0.9/0.98), warmup then cosine (or --linear) decay, gradient\n"
    "clipping; held-out MLM loss and masked-token accuracy every --eval-every\n"
    "steps. With --checkpoint the run resumes from that file when it exists and\n"
    "saves it every --ckpt-every steps, at the end, and on Ctrl-C (SIGINT), so a\n"
    "resumed run takes exactly the steps the uninterrupted one would.\n"
    "Writes DIR/config.json, model.safetensors (BertForMaskedLM names), vocab.txt,\n"
    "tokenizer_config.json and train_log.jsonl.\n";


static void pretrain_progress(const up_pretrain_report *r, long total, void *user) {
    double *t0 = user;
    double el = up_now() - *t0;
    long done = r->step;
    static long first = -1;
    if (first < 0) first = done;
    double eta = done > first ? el / (done - first) * (total - done) : 0;
    int w = 24, fill = (int)((double)done / total * w);
    char bar[32];
    for (int i = 0; i < w; i++) bar[i] = i < fill ? '#' : '.';
    bar[w] = 0;
    fprintf(stderr, "%s[%s] step %ld/%ld  loss %.4f  %.0f tok/s  ETA %dh%02dm%s", isatty(2) ? "\r" : "", bar, done,
            total, r->train_loss, r->tokens_per_s, (int)(eta / 3600), (int)(eta / 60) % 60, isatty(2) ? "   " : "\n");
    fflush(stderr);
}

static int cmd_pretrain(const args *a) {
    if (a->help) return fputs(pretrain_help, stdout), 0;
    if (!a->train || !a->vocab || !a->out || (!a->config && !a->init)) return fputs(pretrain_help, stderr), 2;
    up_pretrain_opts o = up_pretrain_defaults();
    o.train_path = a->train;
    o.heldout_path = a->heldout;
    o.vocab_path = a->vocab;
    o.config_path = a->config;
    o.init_dir = a->init;
    o.out_dir = a->out;
    o.ckpt_path = a->checkpoint;
    if (a->seq_len) o.seq_len = a->seq_len;
    if (strchr(a->batches, ',') == NULL && a->batch) o.batch = a->batch;
    if (a->steps) o.steps = a->steps;
    if (a->warmup >= 0) o.warmup = a->warmup;
    if (a->eval_every) o.eval_every = a->eval_every;
    if (a->ckpt_every) o.ckpt_every = a->ckpt_every;
    if (a->log_every) o.log_every = a->log_every;
    if (a->eval_batches) o.eval_batches = a->eval_batches;
    o.stop_after = a->stop_after;
    if (a->lr >= 0) o.lr = (float)a->lr;
    if (a->min_lr >= 0) o.min_lr = (float)a->min_lr;
    if (a->wd >= 0) o.weight_decay = (float)a->wd;
    if (a->clip >= 0) o.clip = (float)a->clip;
    if (a->seed >= 0) o.seed = (uint64_t)a->seed;
    o.cosine = !a->linear;
    o.precision = a->precision;
    o.threads = a->threads;
    if (a->dtype) {
        if (!strcmp(a->dtype, "bf16") || !strcmp(a->dtype, "f16") || !strcmp(a->dtype, "f32")) o.out_dtype = a->dtype;
        else return fprintf(stderr, "unplug: --dtype expects bf16, f16 or f32, got '%s'\n", a->dtype), 2;
    }
    double t0 = up_now();
    o.progress = pretrain_progress;
    o.progress_user = &t0;
    o.interrupt = &g_interrupt;
    cli_catch_sigint();
    up_set_log(NULL, NULL, UP_LOG_INFO);
    up_pretrain_report rep;
    up_status st = up_pretrain(&o, &rep);
    if (isatty(2)) fputc('\n', stderr);
    if (st != UP_OK) return die("pretraining failed");
    printf("step %ld, %ld tokens seen, last train loss %.4f", rep.step, rep.tokens_seen, rep.train_loss);
    if (a->heldout) printf(", held-out MLM loss %.4f, masked-token accuracy %.2f%%", rep.heldout_loss, 100 * rep.heldout_acc);
    printf(", %.0f s\nwrote %s\n", up_now() - t0, a->out);
    return g_interrupt ? 130 : 0;
}

static const char *mlm_eval_help =
    "usage: unplug mlm-eval --model DIR --text FILE [--seq-len N] [--batch N] [--eval-batches N]\n"
    "                       [--seed N] [--precision fp32|bf16]\n"
    "Held-out masked-LM loss and masked-token accuracy of a model with an MLM head\n"
    "on a text file (one paragraph per line), masking 15% of tokens (80/10/10) with\n"
    "a fixed seed, over --eval-batches batches (default 8) of --batch x --seq-len.\n";

static int cmd_mlm_eval(const args *a) {
    if (a->help) return fputs(mlm_eval_help, stdout), 0;
    if (!a->model || !a->heldout) return fputs(mlm_eval_help, stderr), 2;
    double loss, acc;
    long n;
    int B = strchr(a->batches, ',') ? 32 : a->batch;
    if (up_mlm_evaluate(a->model, a->heldout, a->seq_len ? a->seq_len : 128, B, a->eval_batches ? a->eval_batches : 8,
                        a->seed >= 0 ? (uint64_t)a->seed : 1, a->precision, &loss, &acc, &n) != UP_OK)
        return die("evaluation failed");
    printf("masked tokens: %ld\nMLM loss:      %.4f\naccuracy:      %.2f%%\n", n, loss, 100 * acc);
    return 0;
}

/* ---- main -------------------------------------------------------------------- */

static const char *main_help =
    "usage: unplug COMMAND [options]   (unplug COMMAND --help for each)\n"
    "\n"
    "  info DIR        describe a model directory and the compute that would run it\n"
    "  tokenize        text lines on stdin -> token ids (BertTokenizer-identical)\n"
    "  embed           text lines on stdin -> [CLS] and pooled vectors as JSON Lines\n"
    "  bench           forward-pass throughput per batch size and length\n"
    "  pretrain        masked-LM pretraining on text, resumable, HF output\n"
    "  mlm-eval        held-out masked-token accuracy of a model\n"
    "  tune            prompt-tune a task on a frozen backbone -> TASK.expert\n"
    "  localize        attribute FFN neurons, search the pruning ratio -> pruned expert\n"
    "  eval            full vs expert metric and measured speed-up\n"
    "  expert show     print an expert file\n"
    "  classify        label texts with an expert (one request, as the server would)\n"
    "  serve           HTTP server: many experts over one base model\n"
    "  router build    a task router over the base model's [CLS] embedding\n"
    "  report          one HTML file with SVG plots of the measured results\n"
    "  version         print the version\n";

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        fputs(main_help, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) return printf("unplug %s\n", up_version()), 0;
    static const struct {
        const char *name, *word; /* word: a second word the command needs (router build, expert show) */
        unsigned bit;
        int (*run)(const args *a);
        const char *usage;
    } cmds[] = {
        {"info", NULL, C_INFO, cmd_info, NULL},
        {"tokenize", NULL, C_TOKENIZE, cmd_tokenize, NULL},
        {"embed", NULL, C_EMBED, cmd_embed, NULL},
        {"bench", NULL, C_BENCH, cmd_bench, NULL},
        {"pretrain", NULL, C_PRETRAIN, cmd_pretrain, NULL},
        {"mlm-eval", NULL, C_MLM, cmd_mlm_eval, NULL},
        {"tune", NULL, C_TUNE, cmd_tune, NULL},
        {"localize", NULL, C_LOCALIZE, cmd_localize, NULL},
        {"eval", NULL, C_EVAL, cmd_eval, NULL},
        {"serve", NULL, C_SERVE, cmd_serve, NULL},
        {"classify", NULL, C_CLASSIFY, cmd_classify, NULL},
        {"report", NULL, C_REPORT, cmd_report, NULL},
        {"router", "build", C_ROUTER, cmd_router, "usage: unplug router build ... (see unplug router build --help)\n"},
        {"expert", "show", C_EXPERT, cmd_expert, "usage: unplug expert show FILE.expert [--json]\n"},
    };
    for (size_t i = 0; i < sizeof cmds / sizeof *cmds; i++) {
        if (strcmp(cmd, cmds[i].name)) continue;
        int skip = 2;
        if (cmds[i].word) {
            int help = argc > 2 && (!strcmp(argv[2], "--help") || !strcmp(argv[2], "-h"));
            if (argc < 3 || (strcmp(argv[2], cmds[i].word) && !help)) return fputs(cmds[i].usage, stderr), 2;
            skip = help ? 2 : 3;
        }
        args a;
        char name[64]; /* for messages: "router build" */
        snprintf(name, sizeof name, "%s%s%s", cmds[i].name, cmds[i].word ? " " : "", cmds[i].word ? cmds[i].word : "");
        if (!cli_parse(cmds[i].bit, name, argc - skip, argv + skip, &a)) return 2;
        return cmds[i].run(&a);
    }
    fprintf(stderr, "unplug: unknown command '%s'\n%s", cmd, main_help);
    return 2;
}
