/*
 * task.h: a task on top of a base encoder: soft prompt, classification head
 * and (for an expert) the FFN neurons it keeps. A task model is a *view* of
 * the base: it shares every base weight and owns only its head and its
 * compacted FFN matrices, so plugging an expert never touches the base and
 * unplugging it is freeing the view.
 *
 *     up_task *t;  up_task_new(base, "sst2", 2, labels, 20, 128, seed, &t);
 *     up_model *v; up_task_view(base, t, &v);      // head (and kept FFN) applied
 *     up_task_predict(v, t, run, texts, NULL, n, probs);
 */
#ifndef UP_TASK_H
#define UP_TASK_H

#include "model/model.h"

typedef struct {
    char name[32];
    int n_labels;
    char labels[UP_MAX_LABELS][32];
    int n_prompt;        /* P soft prompt vectors after [CLS] */
    int prompt_layers;   /* K: 1 = the prompt enters at the embeddings; > 1 = deep prompts, (K,P,C) */
    int pool_mean;       /* the head reads the mean of the final hidden states (1) or [CLS] (0) */
    int max_len;         /* tokens per example, prompt included */
    int C;
    float *prompt;       /* (K,P,C) */
    float *pool_w, *pool_b; /* (C,C) (C): tanh pooler on the final [CLS] */
    float *cls_w, *cls_b;   /* (NL,C) (NL) */
    /* expert: kept FFN neurons per layer (sorted), NULL = all */
    int n_layers;
    int32_t **kept;      /* (L) arrays */
    int *n_kept;         /* (L) */
    /* expert: kept attention heads per layer (sorted), NULL = all */
    int32_t **kept_heads;/* (L) arrays */
    int *n_kept_heads;   /* (L) */
    float *buf;          /* one allocation behind prompt and head */
} up_task;

/* A fresh task for base: the prompt from embeddings of random vocabulary rows,
 * the pooler from the base's (or random), the classifier random (std 0.02). */
up_status up_task_new(const up_model *base, const char *name, int n_labels, char *const *labels, int n_prompt,
                      int max_len, uint64_t seed, up_task **out);
up_status up_task_clone(const up_task *t, up_task **out);
/* Allocates buf (zeroed) and the kept arrays for t's shape fields (C,
 * n_prompt, prompt_layers, n_labels, n_layers) and points into buf. */
up_status up_task_alloc(up_task *t);
/* Deep prompts: extends t's prompt to every layer of base (K = L). Slice l
 * starts as the hidden states base computes at layer l for "[CLS] prompt
 * [SEP]", so each layer's prompt rows start in that layer's distribution. */
up_status up_task_make_deep(up_task *t, const up_model *base);
void up_task_free(up_task *t);
/* number of trainable floats and a flat view: prompt, pooler, classifier */
size_t up_task_param_count(const up_task *t);

/* Sets the kept FFN neurons of layer l (copied, sorted); n = F keeps all. */
up_status up_task_set_kept(up_task *t, int layer, const int32_t *idx, int n);
void up_task_clear_kept(up_task *t);
/* FFN neurons and attention heads t keeps over all layers, for a base of F
 * neurons and NH heads a layer (either count may be NULL). */
void up_task_kept_counts(const up_task *t, int F, int NH, long *ffn, long *heads);
/* The same for attention heads: the heads layer l keeps (n may be 0: the
 * layer's attention is skipped, its output bias stays). */
up_status up_task_set_kept_heads(up_task *t, int layer, const int32_t *idx, int n);
void up_task_clear_kept_heads(up_task *t);

/* A view of base with t's head and t's compacted FFN and attention (the
 * kept heads' rows of W_qkv and columns of W_o). */
up_status up_task_view(const up_model *base, const up_task *t, up_model **out);
/* Refreshes a view's head operands after t's head changed (training). */
up_status up_task_view_sync_head(up_model *view, const up_task *t);

/* Encodes text a (and b) for the task: [CLS] P placeholders a [SEP] (b [SEP]),
 * truncated to max_len. ids/type_ids hold max_len entries; returns the length. */
int up_task_encode(const up_task *t, const up_tokenizer *tok, const char *a, const char *b, up_encoding *scratch,
                   int32_t *ids, int32_t *type_ids);

/* Encodes n examples (a[i], b[i] or b NULL) into rows padded with pad to
 * the longest of them: ids/type_ids (n,Tb) with room for n x t->max_len,
 * lens (n). Returns Tb, or -1 with the failing example in the message. */
int up_task_fill_batch(const up_task *t, const up_tokenizer *tok, const char *const *a, const char *const *b, int n,
                       int32_t pad, up_encoding *scratch, int32_t *ids, int32_t *type_ids, int32_t *lens);

/* The batch of a task's examples: the prompt fields set from t. */
up_batch up_task_batch(const up_task *t, int B, int T, const int32_t *ids, const int32_t *type_ids,
                       const int32_t *lens);

/* Batch buffers for up_task_classify: room for B rows of T tokens. */
typedef struct {
    int32_t *ids, *types, *lens;
    up_encoding enc;
    int B, T;
    int round_T;   /* > 1: batches are padded to a multiple of round_T tokens (serving: fewer shapes) */
} up_task_buf;
up_status up_task_buf_init(up_task_buf *s, int B, int T);
void up_task_buf_free(up_task_buf *s);

/* One batch: n <= the run's batch examples through view v (the run is
 * pointed at v first, see up_run_use), class probabilities into probs (n,NL). No
 * allocation once s has grown to the longest text (the serving hot path). */
up_status up_task_classify(const up_model *v, const up_task *t, up_run *r, up_task_buf *s, const char *const *a,
                           const char *const *b, int n, float *probs);

/* Batches that mix tasks. A task can share a batch with others when its
 * view kept every attention head (its attention is the base's); tasks
 * share one when both can and their prompts have the same length and depth
 * (n_prompt, prompt_layers): the batch's prompt rows are at the same
 * positions in every row. */
int up_task_mixable(const up_task *t);
int up_task_can_mix(const up_task *a, const up_task *b);

/* One task's inputs of a batch: n texts a[i] (and b[i], b may be NULL)
 * through view (of task), probabilities into probs (n, task->n_labels). */
typedef struct {
    const up_model *view;
    const up_task *task;
    const char *const *a, *const *b;
    int n;
    float *probs;
} up_task_inputs;

/* One forward over the inputs of ng tasks (the run pointed at base, see
 * up_forward_groups): the rows of in[k] follow those of in[k-1], all tasks
 * must mix (up_task_can_mix with in[0].task). ng == 1 is up_task_classify.
 * At most the run's batch of inputs in all; no allocation once s has grown
 * to the longest text. */
up_status up_task_classify_mixed(const up_model *base, up_run *r, up_task_buf *s, const up_task_inputs *in, int ng);

/* Runs n examples in batches of the run's size, writes probs (n,NL). With
 * pred non-NULL also the argmax labels. */
up_status up_task_predict(const up_model *view, const up_task *t, up_run *r, const char *const *a,
                          const char *const *b, size_t n, float *probs, int *pred);

#endif
