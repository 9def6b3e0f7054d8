/*
 * cli.h: subcommands that live in their own files (each parses its own
 * options: argc/argv after the command name). Return the exit code:
 * 0 success, 1 failure, 2 usage error.
 */
#ifndef UP_CLI_H
#define UP_CLI_H

#include "unplug.h"

/* The options of tools/unplug.c's commands (parse_args) */
typedef struct {
    const char *model, *vocab, *config, *full;
    int pairs, random, json, train_mode, max_len, batch, threads, iters, warmup;
    up_precision precision;
    up_backend backend;
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
} args;

/* "unplug: WHAT: the library's last message" on stderr; returns 1 */
int die(const char *what);

/* tools/tasks.c: the pipeline over the public API */
int cmd_tune(const args *a);
int cmd_localize(const args *a);
int cmd_eval(const args *a);
int cmd_expert(int argc, char **argv);
up_model_opts cli_model_opts(const args *a);
/* SIGINT sets g_interrupt: long commands stop at the next step */
extern volatile int g_interrupt;
void cli_catch_sigint(void);

int cmd_serve(int argc, char **argv);     /* tools/serve.c */
int cmd_classify(int argc, char **argv);  /* tools/serve.c */
int cmd_router(int argc, char **argv);    /* tools/serve.c */
int cmd_report(int argc, char **argv);    /* tools/report.c */

#endif
