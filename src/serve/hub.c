/*
 * hub.c: the plugged experts of one base model, by task name, with
 * reference counts (see hub.h). One mutex guards the table; loading and
 * building a view happen outside it, so serving goes on while plugging.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "serve/hub.h"
#include "base/base.h"

#define HUB_MAX 256

struct up_hub {
    const up_model *base;
    pthread_mutex_t mu;
    up_hub_expert *e[HUB_MAX];
    int n;
    unsigned long serial, clock;
    up_hub_stats stats;
};

static double now_ms(void) { return up_now() * 1e3; }

up_status up_hub_new(const up_model *base, up_hub **out) {
    *out = NULL;
    up_hub *h = up_calloc(1, sizeof *h, "hub");
    if (!h) return UP_ERR_NOMEM;
    h->base = base;
    /* the fingerprint is computed on first use: once here, not racing in plugs */
    const char *fp;
    if (base->st && up_model_fingerprint((up_model *)base, &fp) != UP_OK) {
        free(h);
        return UP_ERR_INTERNAL;
    }
    pthread_mutex_init(&h->mu, NULL);
    *out = h;
    return UP_OK;
}

static void expert_free(up_hub_expert *e) {
    if (!e) return;
    up_model_free(e->view);
    up_task_free(e->task);
    free(e);
}

void up_hub_free(up_hub *h) {
    if (!h) return;
    for (int i = 0; i < h->n; i++) expert_free(h->e[i]);
    pthread_mutex_destroy(&h->mu);
    free(h);
}

const up_model *up_hub_base(const up_hub *h) { return h->base; }

/* drops one reference; the caller holds h->mu. Returns the expert to free
 * (outside the lock) when that was the last one. */
static up_hub_expert *unref_locked(up_hub_expert *e) {
    return --e->refs == 0 ? e : NULL;
}

static int find_locked(const up_hub *h, const char *name) {
    for (int i = 0; i < h->n; i++)
        if (!strcmp(h->e[i]->name, name)) return i;
    return -1;
}

up_status up_hub_plug(up_hub *h, const char *path, char *name_out) { return up_hub_plug_expect(h, path, NULL, name_out); }

up_status up_hub_plug_expect(up_hub *h, const char *path, const char *expect, char *name_out) {
    double t0 = now_ms();
    up_hub_expert *e = up_calloc(1, sizeof *e, "expert");
    if (!e) return UP_ERR_NOMEM;
    up_status st = up_expert_read(path, (up_model *)h->base, &e->task, &e->info);
    if (!st) st = up_task_view(h->base, e->task, &e->view);
    if (st) {
        expert_free(e);
        return st;
    }
    const up_task *t = e->task;
    if (expect && strcmp(t->name, expect)) {
        up_status st2 = up_fail(UP_ERR_INVALID, "%s holds task '%s', not '%s'", path, t->name, expect);
        expert_free(e);
        return st2;
    }
    for (const char *c = t->name; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || strchr("_-.", *c))) {
            expert_free(e);
            return up_fail(UP_ERR_INVALID, "%s: task name '%s' has characters other than letters, digits, '_', '-', '.'",
                           path, t->name);
        }
    snprintf(e->name, sizeof e->name, "%s", t->name);
    snprintf(e->file, sizeof e->file, "%s", path);
    size_t es = up_type_size(e->view->wtype), F = (size_t)h->base->cfg.intermediate_size;
    long kept;
    up_task_kept_counts(t, (int)F, (int)h->base->cfg.num_attention_heads, &kept, NULL);
    e->bytes = up_task_param_count(t) * 4;
    /* int8 matrices carry a scale and a row sum (8 bytes) per output row */
    size_t rs = e->view->wtype == UP_T_S8 ? 8 : 0, C = (size_t)t->C;
    for (int l = 0; l < t->n_layers; l++) { /* the compacted FFN copies: W_in rows, W_out columns, b_in */
        if (t->kept[l]) e->bytes += (size_t)t->n_kept[l] * (C * es * 2 + 4 + rs) + C * rs;
        if (t->kept_heads[l]) { /* and attention: the kept heads' W_qkv rows and bias, W_o columns */
            size_t A = (size_t)t->n_kept_heads[l] * (C / (size_t)h->base->cfg.num_attention_heads);
            e->bytes += 4 * A * C * es + 12 * A + 3 * A * rs + C * rs;
        }
    }
    e->kept_share_permille = (int)(1000 * (size_t)kept / (F * (size_t)t->n_layers));
    e->plug_ms = now_ms() - t0;
    e->refs = 1;
    up_hub_expert *old = NULL;
    pthread_mutex_lock(&h->mu);
    int i = find_locked(h, e->name);
    if (i < 0 && h->n == HUB_MAX) {
        pthread_mutex_unlock(&h->mu);
        expert_free(e);
        return up_fail(UP_ERR_INVALID, "%d experts are plugged already (the most a hub holds)", HUB_MAX);
    }
    e->serial = ++h->serial;
    e->used = ++h->clock;
    if (i >= 0) {
        old = unref_locked(h->e[i]);
        h->e[i] = e;
        h->stats.replaced++;
    } else {
        h->e[h->n++] = e;
    }
    h->stats.plugs++;
    pthread_mutex_unlock(&h->mu);
    expert_free(old);
    if (name_out) snprintf(name_out, 32, "%s", e->name);
    return UP_OK;
}

up_status up_hub_unplug(up_hub *h, const char *name) {
    pthread_mutex_lock(&h->mu);
    int i = find_locked(h, name);
    if (i < 0) {
        pthread_mutex_unlock(&h->mu);
        return up_fail(UP_ERR_INVALID, "no expert named '%s' is plugged", name);
    }
    up_hub_expert *dead = unref_locked(h->e[i]);
    memmove(h->e + i, h->e + i + 1, (size_t)(h->n - i - 1) * sizeof h->e[0]);
    h->n--;
    h->stats.unplugs++;
    pthread_mutex_unlock(&h->mu);
    expert_free(dead);
    return UP_OK;
}

up_hub_expert *up_hub_acquire(up_hub *h, const char *name) {
    pthread_mutex_lock(&h->mu);
    int i = find_locked(h, name);
    up_hub_expert *e = i >= 0 ? h->e[i] : NULL;
    if (e) {
        e->refs++;
        e->used = ++h->clock;
    }
    pthread_mutex_unlock(&h->mu);
    return e;
}

void up_hub_retain(up_hub *h, up_hub_expert *e, int k) {
    pthread_mutex_lock(&h->mu);
    e->refs += k;
    pthread_mutex_unlock(&h->mu);
}

void up_hub_release(up_hub *h, up_hub_expert *e) {
    if (!e) return;
    pthread_mutex_lock(&h->mu);
    up_hub_expert *dead = unref_locked(e);
    pthread_mutex_unlock(&h->mu);
    expert_free(dead);
}

int up_hub_list(up_hub *h, up_hub_expert **out, int cap) {
    pthread_mutex_lock(&h->mu);
    int n = h->n < cap ? h->n : cap;
    for (int i = 0; i < n; i++) {
        out[i] = h->e[i];
        out[i]->refs++;
    }
    pthread_mutex_unlock(&h->mu);
    return n;
}

int up_hub_count(up_hub *h) {
    pthread_mutex_lock(&h->mu);
    int n = h->n;
    pthread_mutex_unlock(&h->mu);
    return n;
}

up_hub_stats up_hub_get_stats(up_hub *h) {
    pthread_mutex_lock(&h->mu);
    up_hub_stats s = h->stats;
    s.bytes = 0;
    for (int i = 0; i < h->n; i++) s.bytes += h->e[i]->bytes;
    pthread_mutex_unlock(&h->mu);
    return s;
}

int up_hub_evict(up_hub *h, size_t budget, const char *keep) {
    int n = 0;
    for (;;) {
        pthread_mutex_lock(&h->mu);
        size_t total = 0;
        int lru = -1;
        for (int i = 0; i < h->n; i++) {
            total += h->e[i]->bytes;
            if ((!keep || strcmp(h->e[i]->name, keep)) && (lru < 0 || h->e[i]->used < h->e[lru]->used)) lru = i;
        }
        if (total <= budget || lru < 0) {
            pthread_mutex_unlock(&h->mu);
            return n;
        }
        up_hub_expert *dead = unref_locked(h->e[lru]);
        memmove(h->e + lru, h->e + lru + 1, (size_t)(h->n - lru - 1) * sizeof h->e[0]);
        h->n--;
        h->stats.unplugs++;
        h->stats.evicted++;
        pthread_mutex_unlock(&h->mu);
        expert_free(dead);
        n++;
    }
}
