/*
 * cli.h: subcommands that live in their own files (each parses its own
 * options: argc/argv after the command name). Return the exit code:
 * 0 success, 1 failure, 2 usage error.
 */
#ifndef UP_CLI_H
#define UP_CLI_H

#include "unplug.h"

/* The options of tools/unplug.c's commands (parse_args) */
/* The commands, as bits of the option table's command sets (tools/args.c) */
enum {
    C_INFO = 1 << 0, C_TOKENIZE = 1 << 1, C_EMBED = 1 << 2, C_BENCH = 1 << 3, C_PRETRAIN = 1 << 4, C_MLM = 1 << 5,
    C_TUNE = 1 << 6, C_LOCALIZE = 1 << 7, C_EVAL = 1 << 8, C_SERVE = 1 << 9, C_CLASSIFY = 1 << 10, C_ROUTER = 1 << 11,
    C_REPORT = 1 << 12, C_EXPERT = 1 << 13,
};
#define CLI_MAX_EXPERTS 64

/* Every option of every command; a field keeps its default (cli_args_default)
 * unless the command's options set it. */
typedef struct {
    const char *model, *vocab, *config, *full, *pos;
    int pairs, random, json, train_mode, max_len, batch, threads, iters, warmup;
    int precision;   /* up_precision */
    int backend;     /* up_backend */
    int lowercase;
    char batches[256], lens[256];
    int help;
    /* pretrain */
    const char *train, *heldout, *init, *out, *checkpoint, *dtype;
    int seq_len;
    long steps, eval_every, ckpt_every, stop_after, log_every;
    double lr, min_lr, wd, clip;
    int eval_batches, linear;
    long seed;
    /* tasks */
    const char *task, *data, *expert, *method, *val, *test, *format, *scores_out, *curve_out, *split, *sweep;
    int retune_epochs, ig_steps;
    int prompts, epochs, patience, per_layer, agg_max, keep_sign, deep, pool_mean;
    long max_train, max_examples;
    double head_lr, tolerance, max_ratio, fixed_ratio, head_ratio;
    int keep_ffn;
    int normalize, hidden; /* embed */
    int search_steps;      /* localize */
    const char *json_out;  /* tune, localize, eval: also write the JSON result here */
    /* serve */
    const char *experts[CLI_MAX_EXPERTS];
    int n_experts;
    const char *experts_dir, *router, *api_key_file, *host;
    int port, workers, max_batch, round_len, quiet, max_connections, per_ip, idle_timeout, plug_on_demand, mix_tasks;
    double experts_budget_mb;
    double max_wait_ms;
    long queue, max_body, max_inputs, max_text;
    /* router build */
    const char *tasks;
    double per_task, held;
    /* report */
    const char *results;
} args;

/* Parses argv (after the command's words) for cmd, one of C_*: options the
 * command does not take are refused. 0 on an error (printed). */
int cli_parse(unsigned cmd, const char *name, int argc, char **argv, args *a);
void cli_args_default(args *a);

/* "unplug: WHAT: the library's last message" on stderr; returns 1 */
int die(const char *what);

/* tools/tasks.c: the pipeline over the public API */
int cmd_tune(const args *a);
int cmd_localize(const args *a);
int cmd_eval(const args *a);
int cmd_expert(const args *a);
up_model_opts cli_model_opts(const args *a);
/* SIGINT sets g_interrupt: long commands stop at the next step */
extern volatile int g_interrupt;
void cli_catch_sigint(void);

int cmd_serve(const args *a);     /* tools/serve.c */
int cmd_classify(const args *a);  /* tools/serve.c */
int cmd_router(const args *a);    /* tools/serve.c: router build */
int cmd_report(const args *a);    /* tools/report.c */

#endif
