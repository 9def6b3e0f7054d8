/*
 * tune.h: prompt tuning on a frozen backbone: P soft prompt vectors after
 * [CLS] and a pooler + classifier head, trained with AdamW on the task's
 * training split, early-stopped on its validation split.
 *
 *     up_tune_cfg o = up_tune_cfg_default();
 *     up_task *t;
 *     up_task_tune(base, "sst2", &splits.train, &splits.val, &o, &t, &rep);
 */
#ifndef UP_TUNE_H
#define UP_TUNE_H

#include "model/task.h"
#include "text/dataset.h"

typedef struct up_tune_report {
    int epoch;              /* epochs run */
    long step;
    double train_loss;      /* mean over the last epoch */
    double val_metric;      /* of the best state, in points (accuracy or MCC x 100) */
    int best_epoch;
    double examples_per_s;
} up_tune_report;

typedef struct {
    int n_prompt, max_len, batch, epochs, patience;
    int deep;               /* deep prompts: a prompt slice at every layer's input (up_task_make_deep) */
    int pool_mean;          /* the head reads the mean of the final hidden states (default) or [CLS] (0) */
    float lr, head_lr, weight_decay, clip;
    uint64_t seed;
    long max_steps;         /* > 0: stop after this many steps */
    size_t max_train;       /* > 0: use at most this many training examples (seeded subset) */
    void (*progress)(const up_tune_report *r, int total_epochs, long steps_per_epoch, void *user);
    void *progress_user;
    volatile int *interrupt;
    const up_task *init;    /* warm start: its prompt, head and kept neurons (re-tuning an expert) */
    int fixed_epochs;       /* run every epoch and return the last state: validation is not looked at
                             * (re-tuning inside the ratio search, which judges on validation itself) */
} up_tune_cfg;
up_tune_cfg up_tune_cfg_default(void);

/* The task's metric in points: Matthews x 100 for cola, accuracy x 100 otherwise. */
double up_task_metric(const char *task, const int *pred, const int *gold, size_t n);
const char *up_task_metric_name(const char *task);

/* Metric of a task (a view of base made here) on a dataset. */
up_status up_task_evaluate(const up_model *base, const up_task *t, const up_dataset *d, int batch, double *metric,
                           int *pred_out);

up_status up_task_tune(const up_model *base, const char *task_name, const up_dataset *train, const up_dataset *val,
                  const up_tune_cfg *o, up_task **out, up_tune_report *rep);

#endif
