/*
 * args.c: the one option parser of every command. Each option is a row of
 * one table: its name, how its value is read and checked, the field it sets,
 * and the commands that take it. An option the command does not take is
 * refused, naming the command. Some names mean different things to different
 * commands (--heldout: pretraining's text file, the router's share); those
 * have a row each, with disjoint command sets.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"

typedef enum {
    K_FLAG,    /* sets an int to 1 */
    K_STR,     /* a string */
    K_INT,     /* an int in [lo, hi] */
    K_LONG,    /* a long in [lo, hi] */
    K_NUM,     /* a double in [lo, hi] */
    K_BATCH,   /* an int in [lo, hi], also kept as the text (batches) */
    K_LIST,    /* a string, kept as given (bench --batch 1,8,32 / --len) */
    K_MULTI,   /* a string, repeatable (serve --expert) */
    K_CHOICE,  /* one of the names of a choice list, its index */
} kind;

typedef struct {
    const char *name;
    kind k;
    size_t off;
    double lo, hi;
    unsigned cmds;
    const char *const *choices; /* K_CHOICE: NULL-terminated names; the field gets choice_vals[i] */
    const int *choice_vals;
} opt;

#define F(x) offsetof(args, x)
#define MODEL_CMDS (C_INFO | C_TOKENIZE | C_EMBED | C_BENCH | C_MLM | C_TUNE | C_LOCALIZE | C_EVAL | C_SERVE | C_CLASSIFY | C_ROUTER | C_REPORT)
#define COMPUTE (C_INFO | C_EMBED | C_BENCH | C_MLM | C_TUNE | C_LOCALIZE | C_EVAL | C_SERVE | C_CLASSIFY | C_ROUTER | C_PRETRAIN)
#define DATA_CMDS (C_TUNE | C_LOCALIZE | C_EVAL)
#define JSON_CMDS (C_TUNE | C_LOCALIZE | C_EVAL)
#define POSITIONAL_CMDS (C_INFO | C_TOKENIZE | C_EMBED | C_BENCH | C_PRETRAIN | C_MLM | C_TUNE | C_LOCALIZE | C_EVAL | C_EXPERT)

static const char *const prec_names[] = {"fp32", "bf16", "int8", "auto", NULL};
static const int prec_vals[] = {UP_PREC_FP32, UP_PREC_BF16, UP_PREC_INT8, UP_PREC_AUTO};
static const char *const backend_names[] = {"onednn", "reference", "auto", NULL};
static const int backend_vals[] = {UP_BACKEND_DNNL, UP_BACKEND_REF, UP_BACKEND_AUTO};
static const char *const pool_names[] = {"cls", "mean", NULL};
static const int pool_vals[] = {0, 1};
static const char *const agg_names[] = {"mean", "max", NULL};
static const int agg_vals[] = {0, 1};

static const opt table[] = {
    /* the model and the compute */
    {"--model", K_STR, F(model), 0, 0, MODEL_CMDS, NULL, NULL},
    {"--precision", K_CHOICE, F(precision), 0, 0, COMPUTE, prec_names, prec_vals},
    {"--backend", K_CHOICE, F(backend), 0, 0, C_INFO | C_EMBED | C_BENCH | C_TUNE | C_LOCALIZE | C_EVAL, backend_names, backend_vals},
    {"--threads", K_INT, F(threads), 0, 1024, C_INFO | C_EMBED | C_BENCH | C_TUNE | C_LOCALIZE | C_EVAL | C_SERVE | C_PRETRAIN, NULL, NULL},
    /* tokenize, embed, bench */
    {"--vocab", K_STR, F(vocab), 0, 0, C_TOKENIZE | C_PRETRAIN, NULL, NULL},
    {"--config", K_STR, F(config), 0, 0, C_BENCH | C_PRETRAIN, NULL, NULL},
    {"--pairs", K_FLAG, F(pairs), 0, 0, C_TOKENIZE | C_EMBED | C_CLASSIFY, NULL, NULL},
    {"--lowercase", K_INT, F(lowercase), 0, 1, C_TOKENIZE, NULL, NULL},
    {"--max-len", K_INT, F(max_len), 2, 1 << 20, C_TOKENIZE | C_EMBED | C_TUNE, NULL, NULL},
    {"--max-len", K_INT, F(max_len), 0, 1 << 20, C_SERVE, NULL, NULL},
    {"--max-len", K_INT, F(max_len), 8, 1 << 16, C_ROUTER, NULL, NULL},
    {"--pool", K_CHOICE, F(pool_mean), 0, 0, C_EMBED | C_TUNE, pool_names, pool_vals},
    {"--normalize", K_FLAG, F(normalize), 0, 0, C_EMBED, NULL, NULL},
    {"--hidden", K_FLAG, F(hidden), 0, 0, C_EMBED, NULL, NULL},
    {"--random", K_FLAG, F(random), 0, 0, C_BENCH, NULL, NULL},
    {"--train-step", K_FLAG, F(train_mode), 0, 0, C_BENCH, NULL, NULL},
    {"--batch", K_LIST, F(batches), 0, 0, C_BENCH, NULL, NULL},
    {"--batch", K_BATCH, F(batch), 1, 4096, C_EMBED | C_PRETRAIN | C_MLM | C_TUNE | C_LOCALIZE, NULL, NULL},
    {"--batch", K_BATCH, F(batch), 1, 256, C_CLASSIFY, NULL, NULL},
    {"--len", K_LIST, F(lens), 0, 0, C_BENCH, NULL, NULL},
    {"--iters", K_INT, F(iters), 1, 100000, C_BENCH | C_EVAL, NULL, NULL},
    {"--warmup", K_INT, F(warmup), 0, 1000000, C_BENCH | C_PRETRAIN, NULL, NULL},
    {"--json", K_FLAG, F(json), 0, 0, C_BENCH | JSON_CMDS | C_EXPERT, NULL, NULL},
    {"--json-out", K_STR, F(json_out), 0, 0, JSON_CMDS, NULL, NULL},
    /* pretrain, mlm-eval */
    {"--train", K_STR, F(train), 0, 0, C_PRETRAIN | DATA_CMDS, NULL, NULL},
    {"--heldout", K_STR, F(heldout), 0, 0, C_PRETRAIN | C_MLM, NULL, NULL},
    {"--text", K_STR, F(heldout), 0, 0, C_PRETRAIN | C_MLM, NULL, NULL},
    {"--init", K_STR, F(init), 0, 0, C_PRETRAIN, NULL, NULL},
    {"--out", K_STR, F(out), 0, 0, C_PRETRAIN | C_TUNE | C_LOCALIZE | C_ROUTER | C_REPORT, NULL, NULL},
    {"--checkpoint", K_STR, F(checkpoint), 0, 0, C_PRETRAIN, NULL, NULL},
    {"--dtype", K_STR, F(dtype), 0, 0, C_PRETRAIN, NULL, NULL},
    {"--seq-len", K_INT, F(seq_len), 8, 1 << 16, C_PRETRAIN | C_MLM, NULL, NULL},
    {"--eval-batches", K_INT, F(eval_batches), 1, 100000, C_PRETRAIN | C_MLM, NULL, NULL},
    {"--linear", K_FLAG, F(linear), 0, 0, C_PRETRAIN, NULL, NULL},
    {"--steps", K_LONG, F(steps), 0, 1e15, C_PRETRAIN, NULL, NULL},
    {"--eval-every", K_LONG, F(eval_every), 0, 1e15, C_PRETRAIN, NULL, NULL},
    {"--ckpt-every", K_LONG, F(ckpt_every), 0, 1e15, C_PRETRAIN, NULL, NULL},
    {"--stop-after", K_LONG, F(stop_after), 0, 1e15, C_PRETRAIN, NULL, NULL},
    {"--log-every", K_LONG, F(log_every), 0, 1e15, C_PRETRAIN, NULL, NULL},
    {"--seed", K_LONG, F(seed), 0, 1e15, C_PRETRAIN | C_MLM | DATA_CMDS | C_ROUTER, NULL, NULL},
    {"--lr", K_NUM, F(lr), 0, 10, C_PRETRAIN | C_TUNE | C_LOCALIZE, NULL, NULL},
    {"--min-lr", K_NUM, F(min_lr), 0, 10, C_PRETRAIN, NULL, NULL},
    {"--weight-decay", K_NUM, F(wd), 0, 10, C_PRETRAIN, NULL, NULL},
    {"--clip", K_NUM, F(clip), 0, 10, C_PRETRAIN, NULL, NULL},
    /* tasks: tune, localize, eval */
    {"--task", K_STR, F(task), 0, 0, DATA_CMDS, NULL, NULL},
    {"--data", K_STR, F(data), 0, 0, DATA_CMDS | C_ROUTER, NULL, NULL},
    {"--val", K_STR, F(val), 0, 0, DATA_CMDS, NULL, NULL},
    {"--test", K_STR, F(test), 0, 0, DATA_CMDS, NULL, NULL},
    {"--format", K_STR, F(format), 0, 0, DATA_CMDS, NULL, NULL},
    {"--expert", K_STR, F(expert), 0, 0, C_LOCALIZE | C_EVAL | C_CLASSIFY | C_BENCH, NULL, NULL},
    {"--expert", K_MULTI, F(experts), 0, 0, C_SERVE, NULL, NULL},
    {"--full", K_STR, F(full), 0, 0, C_EVAL, NULL, NULL},
    {"--split", K_STR, F(split), 0, 0, C_EVAL, NULL, NULL},
    {"--prompts", K_INT, F(prompts), 0, 512, C_TUNE, NULL, NULL},
    {"--epochs", K_INT, F(epochs), 1, 1000, C_TUNE, NULL, NULL},
    {"--epochs", K_INT, F(epochs), 1, 100000, C_ROUTER, NULL, NULL},
    {"--patience", K_INT, F(patience), 1, 1000, C_TUNE | C_LOCALIZE, NULL, NULL},
    {"--deep", K_FLAG, F(deep), 0, 0, C_TUNE, NULL, NULL},
    {"--head-lr", K_NUM, F(head_lr), 0, 100, C_TUNE | C_LOCALIZE, NULL, NULL},
    {"--max-train", K_LONG, F(max_train), 1, 1 << 30, C_TUNE | C_LOCALIZE, NULL, NULL},
    {"--method", K_STR, F(method), 0, 0, C_LOCALIZE, NULL, NULL},
    {"--ig-steps", K_INT, F(ig_steps), 1, 1000, C_LOCALIZE, NULL, NULL},
    {"--agg", K_CHOICE, F(agg_max), 0, 0, C_LOCALIZE, agg_names, agg_vals},
    {"--signed", K_FLAG, F(keep_sign), 0, 0, C_LOCALIZE, NULL, NULL},
    {"--max-examples", K_LONG, F(max_examples), 1, 1 << 30, C_LOCALIZE, NULL, NULL},
    {"--tolerance", K_NUM, F(tolerance), 0, 100, C_LOCALIZE, NULL, NULL},
    {"--max-ratio", K_NUM, F(max_ratio), 0, 100, C_LOCALIZE, NULL, NULL},
    {"--ratio", K_NUM, F(fixed_ratio), 0, 100, C_LOCALIZE, NULL, NULL},
    {"--per-layer", K_FLAG, F(per_layer), 0, 0, C_LOCALIZE, NULL, NULL},
    {"--scores", K_STR, F(scores_out), 0, 0, C_LOCALIZE, NULL, NULL},
    {"--curve", K_STR, F(curve_out), 0, 0, C_LOCALIZE, NULL, NULL},
    {"--sweep", K_STR, F(sweep), 0, 0, C_LOCALIZE, NULL, NULL},
    {"--retune-epochs", K_INT, F(retune_epochs), 0, 100, C_LOCALIZE, NULL, NULL},
    {"--search-steps", K_INT, F(search_steps), 1, 30, C_LOCALIZE, NULL, NULL},
    {"--heads", K_NUM, F(head_ratio), 0, 1, C_LOCALIZE, NULL, NULL},
    {"--keep-ffn", K_FLAG, F(keep_ffn), 0, 0, C_LOCALIZE, NULL, NULL},
    /* serve */
    {"--experts-dir", K_STR, F(experts_dir), 0, 0, C_SERVE, NULL, NULL},
    {"--router", K_STR, F(router), 0, 0, C_SERVE, NULL, NULL},
    {"--api-key-file", K_STR, F(api_key_file), 0, 0, C_SERVE, NULL, NULL},
    {"--host", K_STR, F(host), 0, 0, C_SERVE, NULL, NULL},
    {"--port", K_INT, F(port), 0, 65535, C_SERVE, NULL, NULL},
    {"--workers", K_INT, F(workers), 0, 256, C_SERVE, NULL, NULL},
    {"--max-batch", K_INT, F(max_batch), 1, 256, C_SERVE, NULL, NULL},
    {"--max-wait-ms", K_NUM, F(max_wait_ms), 0, 10000, C_SERVE, NULL, NULL},
    {"--queue", K_LONG, F(queue), 1, 1e7, C_SERVE, NULL, NULL},
    {"--max-body", K_LONG, F(max_body), 64, 1e9, C_SERVE, NULL, NULL},
    {"--max-inputs", K_LONG, F(max_inputs), 1, 1e6, C_SERVE, NULL, NULL},
    {"--max-text", K_LONG, F(max_text), 1, 1e9, C_SERVE, NULL, NULL},
    {"--round-len", K_INT, F(round_len), 1, 512, C_SERVE, NULL, NULL},
    {"--quiet", K_FLAG, F(quiet), 0, 0, C_SERVE, NULL, NULL},
    {"--max-connections", K_INT, F(max_connections), 1, 100000, C_SERVE, NULL, NULL},
    {"--per-ip", K_INT, F(per_ip), 0, 100000, C_SERVE, NULL, NULL},
    {"--idle-timeout", K_INT, F(idle_timeout), 1, 86400, C_SERVE, NULL, NULL},
    {"--plug-on-demand", K_FLAG, F(plug_on_demand), 0, 0, C_SERVE, NULL, NULL},
    {"--mix-tasks", K_FLAG, F(mix_tasks), 0, 0, C_SERVE, NULL, NULL},
    {"--experts-budget-mb", K_NUM, F(experts_budget_mb), 0, 1e7, C_SERVE, NULL, NULL},
    /* router build */
    {"--tasks", K_STR, F(tasks), 0, 0, C_ROUTER, NULL, NULL},
    {"--per-task", K_NUM, F(per_task), 10, 1e7, C_ROUTER, NULL, NULL},
    {"--heldout", K_NUM, F(held), 0.01, 0.9, C_ROUTER, NULL, NULL},
    /* report */
    {"--results", K_STR, F(results), 0, 0, C_REPORT, NULL, NULL},
};
#define N_OPTS (sizeof table / sizeof *table)

void cli_args_default(args *a) {
    memset(a, 0, sizeof *a);
    a->batch = 32;
    a->iters = 5;
    a->warmup = -1;
    a->lowercase = -1;
    a->lr = a->min_lr = a->wd = a->clip = -1;
    a->head_lr = a->tolerance = a->max_ratio = a->fixed_ratio = a->head_ratio = -1;
    a->prompts = -1;
    a->pool_mean = -1;
    a->seed = -1;
    a->port = 8080;
    a->workers = a->max_batch = a->round_len = -1;
    a->max_wait_ms = -1;
    a->queue = a->max_body = a->max_inputs = a->max_text = -1;
    a->per_task = 2000;
    a->held = 0.2;
    snprintf(a->batches, sizeof a->batches, "1,8,32");
    snprintf(a->lens, sizeof a->lens, "128");
}

/* the table row of name for cmd; *other: a row of that name for another command */
static const opt *find(const char *name, unsigned cmd, int *other) {
    *other = 0;
    for (size_t i = 0; i < N_OPTS; i++)
        if (!strcmp(table[i].name, name)) {
            if (table[i].cmds & cmd) return &table[i];
            *other = 1;
        }
    return NULL;
}

static int set_value(const opt *o, const char *v, args *a) {
    char *p = (char *)a + o->off, *end;
    errno = 0;
    switch (o->k) {
    case K_STR: *(const char **)p = v; return 1;
    case K_LIST: snprintf(p, 256, "%s", v); return 1;
    case K_MULTI:
        if (a->n_experts == CLI_MAX_EXPERTS) return fprintf(stderr, "unplug: at most %d %s\n", CLI_MAX_EXPERTS, o->name), 0;
        a->experts[a->n_experts++] = v;
        return 1;
    case K_CHOICE:
        for (int i = 0; o->choices[i]; i++)
            if (!strcmp(v, o->choices[i])) {
                *(int *)p = o->choice_vals[i];
                return 1;
            }
        fprintf(stderr, "unplug: %s expects ", o->name);
        for (int i = 0; o->choices[i]; i++) fprintf(stderr, "%s%s", i ? (o->choices[i + 1] ? ", " : " or ") : "", o->choices[i]);
        fprintf(stderr, ", got '%s'\n", v);
        return 0;
    case K_INT:
    case K_LONG:
    case K_BATCH: {
        long x = strtol(v, &end, 10);
        if (errno || *end || end == v || x < o->lo || x > o->hi) {
            fprintf(stderr, "unplug: %s expects an integer in %.0f..%.0f, got '%s'\n", o->name, o->lo, o->hi, v);
            return 0;
        }
        if (o->k == K_LONG) *(long *)p = x;
        else *(int *)p = (int)x;
        if (o->k == K_BATCH) snprintf(a->batches, sizeof a->batches, "%s", v);
        return 1;
    }
    case K_NUM: {
        double x = strtod(v, &end);
        if (errno || *end || end == v || !(x >= o->lo && x <= o->hi)) {
            fprintf(stderr, "unplug: %s expects a number in %g..%g, got '%s'\n", o->name, o->lo, o->hi, v);
            return 0;
        }
        *(double *)p = x;
        return 1;
    }
    case K_FLAG: break;
    }
    return 0;
}

int cli_parse(unsigned cmd, const char *name, int argc, char **argv, args *a) {
    cli_args_default(a);
    for (int i = 0; i < argc; i++) {
        const char *s = argv[i];
        if (!strcmp(s, "-h") || !strcmp(s, "--help")) {
            a->help = 1;
            continue;
        }
        if (s[0] != '-' || !s[1]) { /* positional: the model directory (info DIR), or the file (expert show FILE) */
            if (!(cmd & POSITIONAL_CMDS))
                return fprintf(stderr, "unplug %s: unexpected argument '%s' (see unplug %s --help)\n", name, s,
                               name), 0;
            if (a->pos) return fprintf(stderr, "unplug %s: unexpected argument '%s'\n", name, s), 0;
            a->pos = s;
            if (!a->model && cmd != C_EXPERT) a->model = s;
            continue;
        }
        int other;
        const opt *o = find(s, cmd, &other);
        if (!o) {
            if (other) fprintf(stderr, "unplug %s: %s is not an option of this command (see unplug %s --help)\n",
                               name, s, name);
            else fprintf(stderr, "unplug %s: unknown option '%s' (see unplug %s --help)\n", name, s,
                         name);
            return 0;
        }
        if (o->k == K_FLAG) {
            *(int *)((char *)a + o->off) = 1;
            continue;
        }
        if (i + 1 >= argc) return fprintf(stderr, "unplug: %s needs a value\n", s), 0;
        if (!set_value(o, argv[++i], a)) return 0;
    }
    return 1;
}
