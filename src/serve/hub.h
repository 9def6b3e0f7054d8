/*
 * hub.h: many task experts over one base model (the serving runtime).
 *
 * The base is loaded once (its weights stay in the read-only mapping). Each
 * plugged expert is a task view of it (model/task.h): it owns its prompt, its
 * head and compacted copies of the FFN rows and columns it keeps, and shares
 * everything else, so plugging and unplugging never touch the base. A request
 * acquires the expert of its task (a reference), runs on the expert's view and
 * releases it; unplugging or replacing an expert while requests hold it
 * defers the free to the last release, so no request loses its expert.
 *
 *     up_hub *h;  up_hub_new(base, &h);
 *     up_hub_plug(h, "experts/sst2.expert", NULL);
 *     up_hub_expert *e = up_hub_acquire(h, "sst2");   // NULL: no such task
 *     up_task_classify(e->view, e->task, run, &buf, texts, NULL, n, probs);
 *     up_hub_release(h, e);
 *     up_hub_free(h);   // after every release
 *
 * All functions are thread-safe.
 */
#ifndef UP_HUB_H
#define UP_HUB_H

#include <pthread.h>
#include "io/expert.h"

typedef struct up_hub_expert {
    char name[32];          /* the task name (the key) */
    char file[1024];        /* the file it was plugged from */
    up_task *task;
    up_model *view;
    up_expert_meta info;
    size_t bytes;           /* memory it owns: prompt, head, compacted FFN */
    int kept_share_permille;/* FFN neurons kept, per mille of the base's */
    double plug_ms;         /* load + view build time */
    /* private */
    int refs;               /* the hub's own reference while plugged + one per acquire */
    unsigned long serial;   /* plug order */
    unsigned long used;     /* the hub's clock at the last acquire (least recently used: smallest) */
} up_hub_expert;

typedef struct up_hub up_hub;

up_status up_hub_new(const up_model *base, up_hub **out);
/* Frees the hub and every plugged expert; no expert may still be acquired. */
void up_hub_free(up_hub *h);
const up_model *up_hub_base(const up_hub *h);

/* Loads path (checked against the base), builds its view and plugs it under
 * its task name (letters, digits, '_', '-', '.'); an expert already plugged under that name is replaced (its
 * in-flight requests finish on the old one). name_out (32 bytes) gets the
 * task name when non-NULL. */
up_status up_hub_plug(up_hub *h, const char *path, char *name_out);
/* The same, refused (before anything is replaced) unless the file holds task expect (NULL: any). */
up_status up_hub_plug_expect(up_hub *h, const char *path, const char *expect, char *name_out);
/* UP_ERR_INVALID (with a message) when no expert has that name. */
up_status up_hub_unplug(up_hub *h, const char *name);

/* The expert plugged under name, with a reference; NULL if none. */
up_hub_expert *up_hub_acquire(up_hub *h, const char *name);
void up_hub_release(up_hub *h, up_hub_expert *e);
/* k more references to an expert already held (one release each). */
void up_hub_retain(up_hub *h, up_hub_expert *e, int k);

/* A snapshot of the plugged experts (each acquired): fills up to cap
 * entries in plug order, returns how many. Release each one. */
int up_hub_list(up_hub *h, up_hub_expert **out, int cap);
int up_hub_count(up_hub *h);

/* Counters since the hub was made. */
typedef struct { unsigned long plugs, unplugs, replaced, evicted; size_t bytes; } up_hub_stats;
/* Unplugs the least recently used experts, other than keep (may be NULL),
 * until the plugged experts own at most budget bytes; returns how many. */
int up_hub_evict(up_hub *h, size_t budget, const char *keep);
up_hub_stats up_hub_get_stats(up_hub *h);

#endif
