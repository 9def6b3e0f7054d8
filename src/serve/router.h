/*
 * router.h: picks the task of a text that names none, from the base model's
 * final hidden states (no prompt, no expert): the [CLS] row and the mean over
 * the tokens, standardized, into a softmax regression trained on examples of
 * each expert's training data.
 *
 * File (TASKS.router): safetensors with tensors mean (F), std (F),
 * weight (N,F), bias (N) F32 (F = 2 x hidden) and metadata format = "unplug-router",
 * version = "1", tasks (JSON array of N names), max_len, base_fingerprint,
 * heldout_accuracy. Loading checks every shape and the base fingerprint.
 *
 *     up_router *r;  up_router_load("tasks.router", base, &r);
 *     int k = up_router_pick(r, features, &p);   // r->tasks[k], probability p
 */
#ifndef UP_ROUTER_H
#define UP_ROUTER_H

#include "model/model.h"

#include "unplug_serve.h"

struct up_router {
    int n_tasks, C, max_len;    /* C: feature size, 2 x hidden */
    char tasks[UP_ROUTER_MAX_TASKS][32];
    float *mean, *std, *w, *b;  /* (C) (C) (N,C) (N) in one allocation */
    double heldout_acc;         /* measured when it was built, in % */
};

/* Training examples: n texts (b may hold NULLs) of task label[i]. */
typedef struct {
    int n_tasks;
    char tasks[UP_ROUTER_MAX_TASKS][32];
    const char *const *a, *const *b;
    const int *label;
    size_t n;
    int max_len;          /* tokens per text (128) */
    int epochs;           /* passes of full-batch gradient descent (300) */
    double heldout_share; /* share of examples kept out to measure accuracy (0.2) */
    uint64_t seed;
} up_router_data;

/* Embeds every example with base, trains, measures held-out accuracy (in
 * r->heldout_acc, also per task into acc_per_task when non-NULL). */
up_status up_router_train(const up_model *base, const up_router_data *d, up_router **out, double *acc_per_task);

/* The router's features of n texts (c: (n,2C): final [CLS] row, then the
 * mean of the final hidden states), batched on run r (made
 * for base or a view of it; left pointing at base). */
up_status up_router_embed(const up_model *base, up_run *r, const char *const *a, const char *const *b, int n,
                          int max_len, up_encoding *scratch, int32_t *ids, int32_t *types, int32_t *lens, float *c);
/* The most likely task for one feature row (2C); its probability into p if non-NULL. */
int up_router_pick(const up_router *r, const float *cls, float *p);

#endif
