/*
 * expert.h: the task expert file (TASK.expert).
 *
 * A safetensors file (so the same validated, mmapped, fuzzed reader opens it)
 * with a fixed schema:
 *   tensors  prompt (P,C) F32, or (K,P,C) for deep prompts over K layers; pooler.weight (C,C), pooler.bias (C);
 *            classifier.weight (NL,C), classifier.bias (NL); kept.L (n_L) I32
 *            for every layer L whose FFN was pruned (sorted neuron indices); heads.L (n_L) I32
 *            for every layer whose attention heads were pruned (sorted head indices, version 3)
 *   metadata format = "unplug-expert", version = "3", task, labels (JSON array),
 *            n_prompt, pooling ("cls" or "mean"; absent in version 1 = "cls"),
 *            max_len, lowercase, base_fingerprint (SHA-256 of the base
 *            checkpoint), base_shape ("L x C x F"), method, ratio, metrics
 *            (JSON object), created_by, checksum (SHA-256 over every other
 *            metadata key=value in key order and all tensor bytes)
 * Loading checks every field, the checksum, and that the base model is the one
 * the expert was made for.
 *
 *     up_expert_meta info = {.method = "actxgrad", .ratio = 0.5};
 *     up_expert_write("sst2.expert", base, task, &info);
 *     up_task *t; up_expert_read("sst2.expert", base, &t, &info);
 */
#ifndef UP_EXPERT_H
#define UP_EXPERT_H

#include "model/task.h"

typedef struct {
    char method[32];      /* attribution method, "none" for a tuned-only task */
    double ratio;         /* FFN pruning ratio (share of neurons removed) */
    char metrics[2048];   /* JSON object of measured metrics */
    char fingerprint[65]; /* filled by load: the base it was made for */
    char base_shape[64];  /* filled by load: "L x C x F" of that base */
    int version;
} up_expert_meta;

up_status up_expert_write(const char *path, up_model *base, const up_task *t, const up_expert_meta *info);
/* base may be NULL to read without the base check (expert show). */
up_status up_expert_read(const char *path, up_model *base, up_task **out, up_expert_meta *info);

#endif
