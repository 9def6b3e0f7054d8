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

/* The API is public: include/unplug.h (up_pretrain_opts, up_pretrain, up_mlm_evaluate). */
#endif
