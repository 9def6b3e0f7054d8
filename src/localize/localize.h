/*
 * localize.h: which FFN neurons a task needs. Attribution scores for every
 * intermediate neuron, ranking, structured pruning to a kept set, and the
 * binary search for the largest pruning ratio whose validation metric stays
 * within a tolerance of the unpruned tuned model.
 *
 *     up_attr_opts ao = up_attr_defaults();
 *     double *scores = malloc(L * F * sizeof *scores);
 *     up_attribute(base, task, &train, &ao, scores);           // (L,F)
 *     up_prune_search(base, task, scores, &val, &so, &result); // task->kept set
 */
#ifndef UP_LOCALIZE_H
#define UP_LOCALIZE_H

#include "model/task.h"
#include "text/dataset.h"
#include "tune/tune.h"

typedef enum {
    UP_ATTR_ACTGRAD = 0, /* |h * d log p(gold) / dh|, the default */
    UP_ATTR_ACT,         /* |h| */
    UP_ATTR_WEIGHT,      /* ||W_in row|| * ||W_out column|| (no data) */
    UP_ATTR_RANDOM,      /* seeded uniform: the control */
    UP_ATTR_IG,          /* |integrated gradients| of each layer's activations from 0, ig_steps midpoints */
    UP_ATTR_COUNT
} up_attr_method;
const char *up_attr_name(up_attr_method m);
up_status up_attr_from_name(const char *s, up_attr_method *out);

typedef struct {
    up_attr_method method;
    int agg_max;          /* token aggregation: 0 mean over non-padding tokens, 1 max */
    int keep_sign;        /* 1: signed h * grad (mean), 0: absolute value */
    int batch;
    size_t max_examples;  /* 0: all */
    int ig_steps;         /* integrated gradients: steps per layer (default 8) */
    uint64_t seed;
    void (*progress)(size_t done, size_t total, void *user);
    void *progress_user;
    /* Attention heads scored the same way (not for ig), when non-NULL: (L,NH),
     * the head's output (its D context columns) in place of a neuron's
     * activation: actxgrad |sum_d ctx * d log p / d ctx| per token, activation
     * its L2 norm per token, weight ||its W_qkv rows|| * ||its W_o columns||. */
    double *head_scores;
    int heads_only;       /* 1: score only the heads (scores may be NULL; t may have pruned FFNs) */
    volatile int *interrupt; /* non-zero: stop at the next batch (UP_ERR_INTERRUPTED) */
} up_attr_opts;
up_attr_opts up_attr_defaults(void);

/* scores (L,F): mean over examples of the per-example aggregate, accumulated
 * as running sums (memory independent of the dataset size). */
up_status up_attribute(const up_model *base, const up_task *t, const up_dataset *d, const up_attr_opts *o,
                       double *scores);

/* Sets t's kept neurons: the highest-scoring (1 - ratio) share, ranked over
 * all layers at once (per_layer = 0) or within each layer. */
up_status up_prune_to_ratio(up_task *t, const double *scores, int L, int F, double ratio, int per_layer);

/* Sets t's kept attention heads: the highest-scoring (1 - ratio) share of
 * all L x NH heads (a layer may lose all of its heads). */
up_status up_prune_heads(up_task *t, const double *head_scores, int L, int NH, double ratio);

typedef struct {
    double tolerance;      /* points of the validation metric (default 1.0) */
    double max_ratio;      /* upper end of the search (default 0.95) */
    int iters;             /* bisection steps (default 7: ~0.7% resolution) */
    int per_layer;
    int batch;
    void (*point)(double ratio, double metric, int ok, void *user); /* every point tried */
    void *point_user;
    /* Re-tuning (skill-localized prompt tuning): with retune set, each ratio
     * tried is measured after re-tuning prompt and head on the pruned model
     * (warm start from t, retune->epochs on retune_train), and t ends as the
     * re-tuned task of the chosen ratio. */
    const up_tune_cfg *retune;
    const up_dataset *retune_train;
    volatile int *interrupt; /* non-zero: stop before the next ratio (UP_ERR_INTERRUPTED) */
} up_search_opts;
up_search_opts up_search_defaults(void);

typedef struct {
    double full_metric;    /* unpruned tuned model on the validation split */
    double ratio, metric;  /* chosen ratio and its validation metric */
    int n_points;
    double pts_ratio[64], pts_metric[64];
} up_search_result;

/* Binary search over the ratio; leaves t pruned at the chosen ratio. */
up_status up_prune_search(const up_model *base, up_task *t, const double *scores, const up_dataset *val,
                          const up_search_opts *o, up_search_result *res);

#endif
