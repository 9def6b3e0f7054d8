/*
 * pretrain.h: masked-LM pretraining of an encoder on plain-text files.
 *
 * Text is tokenized once, packed into sequences [CLS] t1..t(T-2) [SEP] that
 * run across line boundaries, and visited in a seeded order per epoch. 15%
 * of the tokens of each sequence are chosen (80% -> [MASK], 10% -> a random
 * token, 10% unchanged); the loss is cross-entropy on the chosen positions
 * through the tied decoder. Everything random is a function of (seed, step,
 * row), so a run resumed from a checkpoint takes exactly the same steps as an
 * uninterrupted one.
 *
 *     up_pretrain_opts o = up_pretrain_defaults();
 *     o.train_path = "corpus/train.txt"; o.out_dir = "models/x"; o.config_path = "cfg.json";
 *     up_pretrain(&o);
 */
#ifndef UP_PRETRAIN_H
#define UP_PRETRAIN_H

#include <stdint.h>
#include "unplug.h"

struct up_pretrain_report;

typedef struct {
    const char *train_path;    /* plain text, one paragraph per line */
    const char *heldout_path;  /* NULL: no held-out evaluation */
    const char *vocab_path;    /* vocab.txt */
    const char *config_path;   /* config.json for a model from scratch, or NULL with init_dir */
    const char *init_dir;      /* start from this HF model directory instead */
    const char *out_dir;       /* HF layout written here at the end (and at each checkpoint) */
    const char *ckpt_path;     /* checkpoint file (resumed from when it exists) */
    int seq_len, batch;
    long steps;                /* total optimizer steps */
    long warmup;
    float lr, min_lr, weight_decay, clip, beta2;
    int cosine;                /* 1: cosine decay, 0: linear */
    double mask_prob;
    uint64_t seed;
    long eval_every, ckpt_every, log_every;
    int eval_batches;
    up_precision precision;
    int threads;
    int out_dtype;             /* up_dtype of the exported weights */
    long stop_after;           /* > 0: stop (with a checkpoint) after this many steps of this run */
    volatile int *interrupt;   /* set to 1 (e.g. by SIGINT) to checkpoint and stop */
    void (*progress)(const struct up_pretrain_report *rep, long total_steps, void *user);
    void *progress_user;
} up_pretrain_opts;

up_pretrain_opts up_pretrain_defaults(void);

typedef struct up_pretrain_report {
    long step;
    double train_loss;         /* mean over the last log interval */
    double heldout_loss, heldout_acc; /* last evaluation; acc in [0,1] */
    double tokens_per_s;
    long tokens_seen;
} up_pretrain_report;

up_status up_pretrain(const up_pretrain_opts *o, up_pretrain_report *rep);

/* Held-out masked-token accuracy and loss of a model directory on a text
 * file, with the same masking as pretraining (seeded). */
up_status up_mlm_evaluate(const char *model_dir, const char *text_path, int seq_len, int batch, int max_batches,
                          uint64_t seed, up_precision prec, double *loss, double *acc, long *n_masked);

/* Times full training steps (forward, MLM head on 15% of tokens, backward,
 * AdamW) of a random model of cfg's shape: mean seconds per step over iters
 * after warmup, and the step's effective FLOPs (3x the forward products). */
up_status up_pretrain_bench(const up_config *cfg, int B, int T, int warmup, int iters, up_precision prec, int threads,
                            double *sec_per_step, double *flops_per_step);

#endif
