/*
 * server.c: HTTP front (libmicrohttpd, a thread per connection), per-task
 * input queues, batching workers and Prometheus metrics (see server.h).
 *
 * One mutex (s->mu) guards the queues, the requests' progress and the
 * metrics. A connection thread parses its request, acquires the expert(s),
 * queues one item per input and sleeps on its own condition variable until
 * the workers have answered every item. A worker takes the queue whose
 * oldest input has waited longest past its deadline (or that is full),
 * going round the tasks, classifies up to max_batch of its inputs in one
 * forward, and wakes the requests it completed. With mix_tasks it fills the
 * batch from the other queues whose experts can share it (kept every head,
 * same prompt length and depth: up_task_can_mix), each queue's inputs a
 * contiguous range of rows, and runs them in one up_task_classify_mixed.
 */
#define _GNU_SOURCE /* realpath, POLLRDHUP */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <poll.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <jansson.h>
#include <microhttpd.h>
#include <omp.h>
#include "serve/server.h"
#include "base/base.h"

#if MHD_VERSION < 0x00097002
typedef int MHD_Result_t;
#else
typedef enum MHD_Result MHD_Result_t;
#endif

#define MAX_QUEUES 256
#define MAX_STATS 256
static const double lat_buckets[] = {0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5};
#define N_LAT ((int)(sizeof lat_buckets / sizeof lat_buckets[0]))
static const double batch_buckets[] = {1, 2, 4, 8, 16, 32, 64, 128};
#define N_BATCH ((int)(sizeof batch_buckets / sizeof batch_buckets[0]))
static const int codes[] = {200, 201, 400, 401, 404, 405, 413, 422, 499, 500, 503}; /* 499: the client went away */
#define N_CODES ((int)(sizeof codes / sizeof codes[0]))

typedef struct pending pending;

typedef struct item {
    pending *req;
    int idx;             /* input index in the request */
    double t_enq;        /* ms, monotonic */
    int bytes;           /* of its text(s): how long it will be, for --mix-tasks */
    int key;             /* --mix-tasks: its distance in bytes from the batch's oldest input */
    struct item *next;
} item;

struct pending {
    pthread_cond_t cv;
    int n, remaining;
    up_req *in;
    up_hub_expert **ex;  /* (n) the expert of each input (acquired) */
    float *probs;        /* (n, UP_MAX_LABELS) */
    int failed;          /* an input failed: its HTTP status (400: it cannot be encoded, 500) */
    char err[256];
    item *items;         /* (n) */
    int cancelled;       /* the client went away: workers drop its inputs uncomputed */
};

typedef struct {
    up_hub_expert *e;    /* NULL: inputs waiting for the router */
    item *head, *tail;
    int n;
} queue;

typedef struct {
    char task[32];
    unsigned long req[N_CODES], inputs;
    unsigned long lat[N_LAT + 1], lat_n;
    double lat_sum;
    unsigned long batch[N_BATCH + 1], batch_n, batch_sum;
} task_stats;

typedef struct {
    up_server *s;
    pthread_t th;
    up_run *run;
    up_task_buf buf;
    float *probs;                   /* (max_batch, UP_MAX_LABELS) */
    float *cls;                     /* (max_batch, 2C) router features */
    const char **a, **b;            /* (max_batch) */
    up_status *st;                  /* (max_batch) each input's outcome */
    char (*msg)[200];               /* (max_batch) and its message */
    item **batch;                   /* (max_batch) */
    up_task_inputs *in;             /* (max_batch) the batch's tasks, each a range of its rows */
    item **cand;                    /* (max_batch x MAX_QUEUES) --mix-tasks: the inputs that may join a batch */
    float **pr;                     /* (max_batch) each row's probabilities in probs */
} worker;

struct up_server {
    up_hub *hub;
    up_server_opts o;
    char host[64];
    char dir[PATH_MAX];             /* realpath of the experts directory, "" if none */
    struct MHD_Daemon *d;
    int port;
    pthread_mutex_t mu;
    pthread_cond_t work;            /* workers wait here (monotonic clock) */
    queue q[MAX_QUEUES];
    int nq, rr, queued;
    int stop, draining, active;     /* active: classify requests queued or running */
    int open_requests;              /* requests begun and not yet sent (any endpoint) */
    pthread_cond_t idle;            /* active or open_requests fell */
    worker *w;
    int nw;
    task_stats st[MAX_STATS];
    int nst;
    unsigned long swaps, routed, cancelled;
    unsigned long batches;           /* forwards over task inputs (a batch of several tasks is one) */
    unsigned long mixed_batches, mixed_inputs; /* batches of more than one task (--mix-tasks), their inputs */
    pthread_mutex_t plug_mu;        /* serializes plugs on demand */
    unsigned long conns;
};

static double now_ms(void) { return up_now() * 1e3; }

up_server_opts up_server_opts_default(void) {
    return (up_server_opts){.host = "127.0.0.1", .max_batch = 32, .max_wait_ms = 2, .queue_cap = 4096, .round_len = 8,
                            .max_body = 1 << 20, .lim = {.max_inputs = 64, .max_text = 16384},
                            .max_connections = 1024, .per_ip = 0, .idle_timeout_s = 30};
}

/* ---- metrics (callers hold s->mu) ------------------------------------------ */

static task_stats *stats_of(up_server *s, const char *task) {
    if (!task || !task[0]) task = "none";
    for (int i = 0; i < s->nst; i++)
        if (!strcmp(s->st[i].task, task)) return &s->st[i];
    if (s->nst == MAX_STATS) return &s->st[MAX_STATS - 1]; /* the last slot collects the rest */
    task_stats *t = &s->st[s->nst++];
    memset(t, 0, sizeof *t);
    snprintf(t->task, sizeof t->task, "%s", task);
    return t;
}

static void count_request(up_server *s, const char *task, int code, double ms, int inputs) {
    task_stats *t = stats_of(s, task);
    for (int i = 0; i < N_CODES; i++)
        if (codes[i] == code) t->req[i]++;
    t->inputs += (unsigned long)inputs;
    if (ms >= 0) {
        int b = 0;
        while (b < N_LAT && ms / 1e3 > lat_buckets[b]) b++;
        t->lat[b]++;
        t->lat_n++;
        t->lat_sum += ms / 1e3;
    }
}

static void count_batch(up_server *s, const char *task, int n) {
    task_stats *t = stats_of(s, task);
    int b = 0;
    while (b < N_BATCH && n > batch_buckets[b]) b++;
    t->batch[b]++;
    t->batch_n++;
    t->batch_sum += (unsigned long)n;
}

/* ---- responses ------------------------------------------------------------------ */

static MHD_Result_t send_text(struct MHD_Connection *c, int code, const char *type, char *body,
                              const char *hdr, const char *hval) {
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
    if (!r) { free(body); return MHD_NO; }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    if (hdr) MHD_add_response_header(r, hdr, hval);
    MHD_Result_t ret = MHD_queue_response(c, (unsigned)code, r);
    MHD_destroy_response(r);
    return ret;
}

/* a JSON string of s; bytes of invalid UTF-8 (a file name, say) become '?' */
static json_t *jstr(const char *s) {
    json_t *j = json_string(s);
    if (j) return j;
    char *t = strdup(s ? s : "");
    for (char *p = t; p && *p; p++)
        if ((unsigned char)*p >= 0x80) *p = '?';
    j = json_string(t ? t : "");
    free(t);
    return j;
}

static const char *encode_failed = "{\"error\":{\"code\":500,\"message\":\"the answer could not be encoded\"}}\n";

static MHD_Result_t send_json(struct MHD_Connection *c, int code, json_t *j) {
    char *body = j ? json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(9)) : NULL;
    json_decref(j);
    if (!body) {
        body = strdup(encode_failed);
        code = 500;
        if (!body) return MHD_NO;
    }
    size_t n = strlen(body);
    char *nl = realloc(body, n + 2);
    if (nl) { body = nl; body[n] = '\n'; body[n + 1] = 0; }
    return send_text(c, code, "application/json", body, NULL, NULL);
}

static MHD_Result_t send_error_h(struct MHD_Connection *c, int code, const char *msg, const char *hdr,
                                 const char *hval) {
    json_t *j = json_pack("{s:{s:i,s:o}}", "error", "code", code, "message", jstr(msg));
    char *body = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!body && !(body = strdup(encode_failed))) return MHD_NO;
    return send_text(c, code, "application/json", body, hdr, hval);
}

static MHD_Result_t send_error(struct MHD_Connection *c, int code, const char *msg) {
    return send_error_h(c, code, msg, NULL, NULL);
}

/* ---- queues (callers hold s->mu) ----------------------------------------------------- */

static queue *queue_of(up_server *s, up_hub_expert *e) {
    for (int i = 0; i < s->nq; i++)
        if (s->q[i].e == e) return &s->q[i];
    if (s->nq == MAX_QUEUES) return NULL;
    queue *q = &s->q[s->nq++];
    *q = (queue){.e = e};
    return q;
}

static void queue_push(queue *q, item *it) {
    it->next = NULL;
    if (q->tail) q->tail->next = it; else q->head = it;
    q->tail = it;
    q->n++;
}

/* The queue a worker should serve now, or -1 and the ms until one is due. */
static int pick_queue(up_server *s, double now, double *wait) {
    int best = -1;
    double best_due = INFINITY;
    for (int k = 0; k < s->nq; k++) {
        int i = (s->rr + k) % s->nq;
        queue *q = &s->q[i];
        if (!q->n) continue;
        double due = q->head->t_enq + s->o.max_wait_ms;
        /* a full queue (or any, when stopping) is due now; among due queues the
         * one due longest goes first, so a full busy queue cannot starve an
         * overdue quiet one */
        /* with --mix-tasks a batch fills from several queues: enough inputs
         * waiting over all of them makes the oldest due now */
        int full = q->n >= s->o.max_batch || (s->o.mix_tasks && q->e && s->queued >= s->o.max_batch);
        if ((full || s->draining || s->stop) && due > now) due = now;
        if (due < best_due) { best_due = due; best = i; }
    }
    *wait = best < 0 ? INFINITY : best_due - now;
    return best >= 0 && best_due <= now ? best : -1;
}

/* moves up to max_batch - n inputs of q into batch[n..]; returns the new n */
static int take(up_server *s, queue *q, item **batch, int n) {
    while (q->head && n < s->o.max_batch) {
        batch[n++] = q->head;
        q->head = q->head->next;
        q->n--;
        s->queued--;
    }
    if (!q->head) q->tail = NULL;
    return n;
}

static int by_key(const void *a, const void *b) {
    int x = (*(item *const *)a)->key, y = (*(item *const *)b)->key;
    return x < y ? -1 : x > y;
}

/* --mix-tasks: the oldest input of queue qi and up to max_batch - 1 more from
 * the queues whose experts can share its batch (qi's included), those closest
 * in length (bytes of text) to it first: a batch is padded to its longest
 * input, and inputs of like lengths waste less. The candidates are the oldest
 * max_batch inputs of each such queue (w->cand holds max_batch x MAX_QUEUES).
 * Each queue's picked inputs stay together, in order (the batch's rows go by
 * task). Returns n. */
static int take_mixed(up_server *s, worker *w, int qi) {
    const up_task *t = s->q[qi].e->task;
    const item *lead = s->q[qi].head;
    const int mb = s->o.max_batch;
    int nc = 0;
    for (int k = 0; k < s->nq; k++) {
        queue *o = &s->q[k];
        if (!o->e || !up_task_can_mix(t, o->e->task)) continue;
        item *it = o->head;
        for (int i = 0; it && i < mb; i++, it = it->next) {
            it->key = it == lead ? -1 : abs(it->bytes - lead->bytes);
            w->cand[nc++] = it;
        }
    }
    qsort(w->cand, (size_t)nc, sizeof *w->cand, by_key);
    for (int i = 0; i < nc; i++) w->cand[i]->key = i < mb; /* 1: picked */
    int n = 0;
    for (int k = 0; k < s->nq; k++) { /* unlink the picked inputs, queue by queue (all among its first mb) */
        queue *o = &s->q[(qi + k) % s->nq];
        if (!o->e || !up_task_can_mix(t, o->e->task)) continue;
        item **link = &o->head, *prev = NULL;
        for (int i = 0; *link && i < mb; i++) {
            item *it = *link;
            if (it->key == 1) {
                *link = it->next;
                if (o->tail == it) o->tail = prev;
                w->batch[n++] = it;
                o->n--;
                s->queued--;
            } else {
                prev = it;
                link = &it->next;
            }
        }
    }
    return n;
}

/* drops the empty queues, keeping the order of the others and the round's place */
static void drop_empty(up_server *s) {
    int j = 0, rr = s->rr;
    for (int i = 0; i < s->nq; i++) {
        if (s->q[i].n) s->q[j++] = s->q[i];
        else if (i < s->rr) rr--;
    }
    s->nq = j;
    s->rr = j ? rr % j : 0;
}

/* ---- workers ---------------------------------------------------------------------------- */

static void finish_item(up_server *s, item *it) {
    (void)s;
    if (--it->req->remaining == 0) pthread_cond_signal(&it->req->cv);
}

/* the router's batch: each input gets the expert of the task it picks and
 * goes to that task's queue (s->mu held on entry and exit, released around
 * the forward) */
static void route_batch(worker *w, int n) {
    up_server *s = w->s;
    const up_model *base = up_hub_base(s->hub);
    for (int i = 0; i < n; i++) {
        pending *p = w->batch[i]->req;
        w->a[i] = p->in->a[w->batch[i]->idx];
        w->b[i] = p->in->b[w->batch[i]->idx];
    }
    pthread_mutex_unlock(&s->mu);
    int T = s->o.router->max_len < w->buf.T ? s->o.router->max_len : w->buf.T;
    up_status st = up_router_embed(base, w->run, w->a, w->b, n, T, &w->buf.enc, w->buf.ids, w->buf.types,
                                   w->buf.lens, w->cls);
    up_hub_expert *ex[n];
    for (int i = 0; i < n; i++) {
        ex[i] = NULL;
        if (!st) ex[i] = up_hub_acquire(s->hub, s->o.router->tasks[up_router_pick(s->o.router, w->cls + (size_t)i * 2 * base->cfg.hidden_size, NULL)]);
    }
    pthread_mutex_lock(&s->mu);
    s->routed += (unsigned long)n;
    for (int i = 0; i < n; i++) {
        item *it = w->batch[i];
        queue *q = ex[i] ? queue_of(s, ex[i]) : NULL;
        if (!q) {
            if (ex[i]) up_hub_release(s->hub, ex[i]);
            if (!it->req->failed)
                snprintf(it->req->err, sizeof it->req->err, "%s", st ? up_errmsg() : "the router picked a task whose expert is not plugged");
            it->req->failed = st == UP_ERR_INVALID ? 400 : st ? 500 : 503;
            finish_item(s, it);
            continue;
        }
        it->req->ex[it->idx] = ex[i];
        queue_push(q, it);
        s->queued++;
    }
    pthread_cond_broadcast(&s->work);
}

static void *worker_main(void *arg) {
    worker *w = arg;
    up_server *s = w->s;
    omp_set_num_threads(s->o.threads_per_worker);
    up_hub_expert *last = NULL;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->stop && s->queued == 0) pthread_cond_wait(&s->work, &s->mu);
        if (s->queued == 0 && s->stop) break;
        double wait;
        int qi = pick_queue(s, now_ms(), &wait);
        if (qi < 0) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            long ns = ts.tv_nsec + (long)(wait * 1e6) + 1000;
            ts.tv_sec += ns / 1000000000L;
            ts.tv_nsec = ns % 1000000000L;
            pthread_cond_timedwait(&s->work, &s->mu, &ts);
            continue;
        }
        queue *q = &s->q[qi];
        up_hub_expert *e = q->e;
        int n = s->o.mix_tasks && e && up_task_mixable(e->task) ? take_mixed(s, w, qi) : take(s, q, w->batch, 0);
        s->rr = qi + 1;
        drop_empty(s);
        int kept = 0; /* the inputs of requests whose client went away are dropped, not computed */
        for (int i = 0; i < n; i++) {
            if (w->batch[i]->req->cancelled) {
                s->cancelled++;
                finish_item(s, w->batch[i]);
            } else {
                w->batch[kept++] = w->batch[i];
            }
        }
        n = kept;
        if (!n) continue;
        if (!e) { route_batch(w, n); continue; }
        if (e != last) s->swaps += last != NULL;
        last = e;
        /* the tasks of the batch: runs of inputs of one expert, probabilities at
         * probs + row0 * UP_MAX_LABELS, rows NL apart */
        int ng = 0;
        for (int i = 0; i < n; i++) {
            item *it = w->batch[i];
            up_hub_expert *x = it->req->ex[it->idx];
            w->a[i] = it->req->in->a[it->idx];
            w->b[i] = it->req->in->b[it->idx];
            if (!ng || w->in[ng - 1].task != x->task)
                w->in[ng++] = (up_task_inputs){x->view, x->task, w->a + i, w->b + i, 0, w->probs + (size_t)i * UP_MAX_LABELS};
            up_task_inputs *g = &w->in[ng - 1];
            w->pr[i] = g->probs + (size_t)g->n++ * x->task->n_labels;
        }
        for (int k = 0; k < ng; k++) count_batch(s, w->in[k].task->name, w->in[k].n);
        s->batches++;
        if (ng > 1) {
            s->mixed_batches++;
            s->mixed_inputs += (unsigned long)n;
        }
        pthread_mutex_unlock(&s->mu);
        up_status st = up_task_classify_mixed(up_hub_base(s->hub), w->run, &w->buf, w->in, ng);
        for (int i = 0; i < n; i++) w->st[i] = st;
        if (st && n > 1) /* one bad input must not fail the others: each alone */
            for (int i = 0; i < n; i++) {
                up_hub_expert *x = w->batch[i]->req->ex[w->batch[i]->idx];
                w->st[i] = up_task_classify(x->view, x->task, w->run, &w->buf, w->a + i, w->b + i, 1, w->pr[i]);
                if (w->st[i]) snprintf(w->msg[i], sizeof w->msg[i], "%s", up_errmsg());
            }
        else if (st)
            snprintf(w->msg[0], sizeof w->msg[0], "%s", up_errmsg());
        pthread_mutex_lock(&s->mu);
        for (int i = 0; i < n; i++) {
            pending *p = w->batch[i]->req;
            if (w->st[i]) {
                if (!p->failed) snprintf(p->err, sizeof p->err, "inputs[%d]: %s", w->batch[i]->idx, w->msg[i]);
                p->failed = w->st[i] == UP_ERR_INVALID ? 400 : 500;
            } else {
                int NL = p->ex[w->batch[i]->idx]->task->n_labels;
                memcpy(p->probs + (size_t)w->batch[i]->idx * UP_MAX_LABELS, w->pr[i], NL * sizeof(float));
            }
            finish_item(s, w->batch[i]);
        }
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* ---- endpoints ------------------------------------------------------------------------------ */

typedef struct {
    char *buf;
    size_t len, cap;
    int too_big;
} body;

static json_t *expert_json(const up_hub_expert *e) {
    json_t *labels = json_array();
    for (int i = 0; i < e->task->n_labels; i++) json_array_append_new(labels, jstr(e->task->labels[i]));
    json_t *metrics = json_loads(e->info.metrics, 0, NULL);
    const char *slash = strrchr(e->file, '/');
    return json_pack("{s:o,s:o,s:o,s:o,s:f,s:f,s:I,s:i,s:f,s:o}", "task", jstr(e->name), "file",
                     jstr(slash ? slash + 1 : e->file), "labels", labels, "method", jstr(e->info.method), "ratio",
                     e->info.ratio, "ffn_kept",
                     e->kept_share_permille / 1000.0, "bytes", (json_int_t)e->bytes, "max_len", e->task->max_len,
                     "plug_ms", e->plug_ms, "metrics", metrics ? metrics : json_object());
}

/* DIR/name.expert, resolved inside the experts directory: 200 with its path, or the HTTP status and msg */
static int expert_path(const up_server *s, const char *name, char *real, char *msg, size_t msg_len) {
    if (!s->dir[0]) return snprintf(msg, msg_len, "the server has no experts directory (--experts-dir DIR)"), 404;
    char path[PATH_MAX + 96];
    snprintf(path, sizeof path, "%s/%s.expert", s->dir, name);
    if (!realpath(path, real))
        return snprintf(msg, msg_len, "no expert file '%s.expert' in the experts directory", name), 404;
    if (!up_path_inside(s->dir, path, real))
        return snprintf(msg, msg_len, "the expert file resolves outside the experts directory"), 400;
    return 200;
}

/* plugs path (which must hold task expect, when not NULL); with a memory budget, then unplugs the
 * least recently used others past it */
static up_status plug_within_budget(up_server *s, const char *path, const char *expect, char *task) {
    up_status st = up_hub_plug_expect(s->hub, path, expect, task);
    if (!st && s->o.experts_budget) {
        int n = up_hub_evict(s->hub, s->o.experts_budget, task);
        if (n && !s->o.quiet) fprintf(stderr, "unplug serve: unplugged %d least recently used expert(s): over the budget\n", n);
    }
    return st;
}

/* the expert of task, plugged first from the experts directory when --plug-on-demand allows (NULL if
 * neither: code and msg say why) */
static up_hub_expert *acquire_or_plug(up_server *s, const char *task, int *code, char *msg, size_t msg_len) {
    up_hub_expert *e = up_hub_acquire(s->hub, task);
    if (e || !s->o.plug_on_demand || !up_req_name_ok(task)) {
        if (!e) *code = 404, snprintf(msg, msg_len, "no expert is plugged for task '%s' (GET /v1/experts lists them)", task);
        return e;
    }
    /* one plug on demand at a time (any task): a second request for the same task then finds it plugged */
    pthread_mutex_lock(&s->plug_mu);
    if (!(e = up_hub_acquire(s->hub, task))) {
        char real[PATH_MAX], got[32];
        *code = expert_path(s, task, real, msg, msg_len);
        if (*code == 200) {
            /* the file must hold this task: checked before it is plugged, so a request cannot replace another
             * task's expert through a misnamed file */
            if (plug_within_budget(s, real, task, got) != UP_OK) {
                int full = strstr(up_errmsg(), "experts are plugged already") != NULL;
                *code = full ? 503 : 422, snprintf(msg, msg_len, "cannot plug %s.expert: %s", task, up_errmsg());
            } else if (!(e = up_hub_acquire(s->hub, task)))
                *code = 503, snprintf(msg, msg_len, "the expert was unplugged at once");
            if (*code == 200 && !s->o.quiet) fprintf(stderr, "unplug serve: plugged %s on demand\n", task);
        }
    }
    pthread_mutex_unlock(&s->plug_mu);
    return e;
}

/* 1 when the client of c has closed its end (or the socket failed): its answer has nobody to go to */
static int client_gone(struct MHD_Connection *c) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci) return 0;
    struct pollfd pf = {.fd = ci->connect_fd, .events = POLLIN | POLLRDHUP};
    if (poll(&pf, 1, 0) <= 0) return 0;
    if (pf.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) return 1;
    char ch;
    return (pf.revents & POLLIN) && recv(ci->connect_fd, &ch, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}

static MHD_Result_t do_classify(up_server *s, struct MHD_Connection *c, const body *bd, double t0, const char *task) {
    up_req in;
    char msg[256];
    int code = up_req_parse_classify(bd->buf ? bd->buf : "", bd->len, &s->o.lim, &in, msg, sizeof msg);
    if (code == 200 && task) { /* the task from the path or the X-Unplug-Task header: the body may repeat it */
        if (strlen(task) >= sizeof in.task || !up_req_name_ok(task))
            code = 400, snprintf(msg, sizeof msg, "the task in the path or header is not a task name");
        else if (in.task[0] && strcmp(in.task, task))
            code = 400, snprintf(msg, sizeof msg, "the body names task '%.31s', the path or header '%.31s'", in.task, task);
        else
            snprintf(in.task, sizeof in.task, "%s", task);
        if (code != 200) up_req_free(&in);
    }
    if (code != 200) {
        pthread_mutex_lock(&s->mu);
        count_request(s, NULL, code, -1, 0);
        pthread_mutex_unlock(&s->mu);
        return send_error(c, code, msg);
    }
    int n = in.n;
    pending p = {.n = n, .remaining = n, .in = &in};
    p.ex = calloc((size_t)n, sizeof *p.ex);
    p.items = calloc((size_t)n, sizeof *p.items);
    p.probs = calloc((size_t)n * UP_MAX_LABELS, sizeof(float));
    up_hub_expert *named = NULL;
    const char *err = NULL;
    if (!p.ex || !p.items || !p.probs) { code = 500; err = "out of memory"; snprintf(in.task, sizeof in.task, "unknown"); }
    else if (in.task[0]) {
        named = acquire_or_plug(s, in.task, &code, msg, sizeof msg);
        if (!named) {
            snprintf(in.task, sizeof in.task, "unknown"); /* metrics count unknown names together */
            err = msg;
        }
    } else if (!s->o.router) {
        code = 400; err = "the request names no task and the server has no router (--router FILE)";
    }
    pthread_condattr_t ca; /* the wait below times out on the monotonic clock */
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p.cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_lock(&s->mu);
    if (!err && s->draining) { code = 503; err = "the server is shutting down"; }
    if (!err && s->queued + n > s->o.queue_cap) { code = 503; err = "the queue is full; retry later"; }
    if (!err) {
        queue *q = queue_of(s, named); /* NULL expert: the router's queue */
        if (!q) { code = 503; err = "too many tasks queued; retry later"; }
        else {
            double t = now_ms();
            if (named && n > 1) up_hub_retain(s->hub, named, n - 1);
            for (int i = 0; i < n; i++) {
                p.items[i] = (item){.req = &p, .idx = i, .t_enq = t,
                                    .bytes = (int)(strlen(in.a[i]) + (in.b[i] ? strlen(in.b[i]) : 0))};
                p.ex[i] = named; /* one reference per input (NULL: the router's), released below */
                queue_push(q, &p.items[i]);
            }
            s->queued += n;
            s->active++;
            pthread_cond_broadcast(&s->work);
            while (p.remaining > 0) {
                /* every 50 ms, whether the client is still there: one that went away cancels its inputs */
                struct timespec ts;
                clock_gettime(CLOCK_MONOTONIC, &ts);
                ts.tv_nsec += 50000000L;
                if (ts.tv_nsec >= 1000000000L) { ts.tv_sec++; ts.tv_nsec -= 1000000000L; }
                if (pthread_cond_timedwait(&p.cv, &s->mu, &ts) == ETIMEDOUT && !p.cancelled && p.remaining > 0) {
                    pthread_mutex_unlock(&s->mu); /* the socket is looked at without the lock */
                    int gone = client_gone(c);
                    pthread_mutex_lock(&s->mu);
                    if (gone) p.cancelled = 1;
                }
            }
            if (--s->active == 0) pthread_cond_broadcast(&s->idle);
        }
    }
    pthread_mutex_unlock(&s->mu);
    MHD_Result_t ret;
    if (!err && p.cancelled) { /* nobody to answer: close the connection */
        pthread_mutex_lock(&s->mu);
        count_request(s, in.task[0] ? in.task : "none", 499, now_ms() - t0, 0);
        pthread_mutex_unlock(&s->mu);
        ret = MHD_NO;
    } else if (err) {
        if (named && !p.ex[0]) up_hub_release(s->hub, named);
        pthread_mutex_lock(&s->mu);
        count_request(s, in.task, code, -1, 0);
        pthread_mutex_unlock(&s->mu);
        ret = code == 503 ? send_error_h(c, code, err, MHD_HTTP_HEADER_RETRY_AFTER, "1") : send_error(c, code, err);
    } else if (p.failed) {
        pthread_mutex_lock(&s->mu);
        count_request(s, in.task[0] ? in.task : "none", p.failed, now_ms() - t0, n);
        pthread_mutex_unlock(&s->mu);
        ret = send_error(c, p.failed, p.err);
    } else {
        json_t *res = json_array();
        for (int i = 0; i < n; i++) {
            const up_task *t = p.ex[i]->task;
            const float *pr = p.probs + (size_t)i * UP_MAX_LABELS;
            json_t *probs = json_object();
            int best = 0;
            for (int k = 0; k < t->n_labels; k++) {
                json_object_set_new(probs, t->labels[k], json_real(pr[k]));
                if (pr[k] > pr[best]) best = k;
            }
            json_array_append_new(res, json_pack("{s:o,s:o,s:o}", "label", jstr(t->labels[best]), "probabilities",
                                                 probs, "expert", jstr(p.ex[i]->name)));
        }
        double ms = now_ms() - t0;
        pthread_mutex_lock(&s->mu);
        if (in.task[0]) count_request(s, in.task, 200, ms, n);
        else for (int i = 0; i < n; i++) count_request(s, p.ex[i]->name, 200, i ? -1 : ms, 1);
        pthread_mutex_unlock(&s->mu);
        ret = send_json(c, 200, json_pack("{s:o}", "results", res));
    }
    for (int i = 0; i < n && p.ex; i++) up_hub_release(s->hub, p.ex[i]);
    pthread_cond_destroy(&p.cv);
    free(p.ex); free(p.items); free(p.probs);
    up_req_free(&in);
    return ret;
}

static MHD_Result_t do_list(up_server *s, struct MHD_Connection *c) {
    up_hub_expert *e[256];
    int n = up_hub_list(s->hub, e, 256);
    json_t *arr = json_array();
    for (int i = 0; i < n; i++) {
        json_array_append_new(arr, expert_json(e[i]));
        up_hub_release(s->hub, e[i]);
    }
    return send_json(c, 200, json_pack("{s:o}", "experts", arr));
}

static MHD_Result_t do_plug(up_server *s, struct MHD_Connection *c, const body *bd) {
    char name[80], msg[256];
    int code = up_req_parse_plug(bd->buf ? bd->buf : "", bd->len, name, sizeof name, msg, sizeof msg);
    if (code != 200) return send_error(c, code, msg);
    char real[PATH_MAX];
    if ((code = expert_path(s, name, real, msg, sizeof msg)) != 200) return send_error(c, code, msg);
    char task[32];
    up_status st = plug_within_budget(s, real, NULL, task);
    if (st) {
        snprintf(msg, sizeof msg, "cannot plug %s.expert: %s", name, up_errmsg());
        int full = strstr(up_errmsg(), "experts are plugged already") != NULL;
        return send_error(c, st == UP_ERR_NOMEM ? 500 : full ? 503 : 422, msg);
    }
    up_hub_expert *e = up_hub_acquire(s->hub, task);
    if (!e) return send_error(c, 500, "the expert was unplugged at once");
    json_t *j = expert_json(e);
    up_hub_release(s->hub, e);
    if (!s->o.quiet) fprintf(stderr, "unplug serve: plugged %s (task %s)\n", name, task);
    return send_json(c, 201, j);
}

static MHD_Result_t do_unplug(up_server *s, struct MHD_Connection *c, const char *task) {
    if (strlen(task) >= 32 || !up_req_name_ok(task)) return send_error(c, 404, "no expert is plugged under that name");
    if (up_hub_unplug(s->hub, task) != UP_OK) {
        char msg[128];
        snprintf(msg, sizeof msg, "no expert is plugged for task '%s'", task);
        return send_error(c, 404, msg);
    }
    if (!s->o.quiet) fprintf(stderr, "unplug serve: unplugged %s\n", task);
    return send_json(c, 200, json_pack("{s:s}", "unplugged", task));
}

typedef struct { char *p; size_t n, cap; } sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...) {
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(b->p ? b->p + b->n : NULL, b->p ? b->cap - b->n : 0, fmt, ap);
        va_end(ap);
        if (k < 0) return;
        if (b->p && b->n + (size_t)k < b->cap) { b->n += (size_t)k; return; }
        size_t cap = (b->cap ? b->cap * 2 : 4096) + (size_t)k;
        char *np = realloc(b->p, cap);
        if (!np) return;
        b->p = np;
        b->cap = cap;
    }
}

/* a counter: its HELP and TYPE lines and its value */
static void counter(sbuf *b, const char *name, const char *help, unsigned long v) {
    sb_printf(b, "# HELP %s %s\n# TYPE %s counter\n%s %lu\n", name, help, name, name, v);
}

/* one task's histogram: cumulative buckets, +Inf, sum, count */
static void histogram(sbuf *b, const char *name, const task_stats *t, const double *le, int nb, const unsigned long *counts,
                      unsigned long n, double sum) {
    if (!n) return;
    unsigned long cum = 0;
    for (int k = 0; k < nb; k++) {
        cum += counts[k];
        sb_printf(b, "%s_bucket{task=\"%s\",le=\"%g\"} %lu\n", name, t->task, le[k], cum);
    }
    sb_printf(b, "%s_bucket{task=\"%s\",le=\"+Inf\"} %lu\n", name, t->task, n);
    sb_printf(b, "%s_sum{task=\"%s\"} %.6f\n%s_count{task=\"%s\"} %lu\n", name, t->task, sum, name, t->task, n);
}

static MHD_Result_t do_metrics(up_server *s, struct MHD_Connection *c) {
    sbuf b = {0};
    up_hub_stats hs = up_hub_get_stats(s->hub);
    int nexp = up_hub_count(s->hub);
    pthread_mutex_lock(&s->mu);
    sb_printf(&b, "# HELP unplug_requests_total Classify requests by task and HTTP status.\n"
                  "# TYPE unplug_requests_total counter\n");
    for (int i = 0; i < s->nst; i++)
        for (int k = 0; k < N_CODES; k++)
            if (s->st[i].req[k])
                sb_printf(&b, "unplug_requests_total{task=\"%s\",code=\"%d\"} %lu\n", s->st[i].task, codes[k], s->st[i].req[k]);
    sb_printf(&b, "# HELP unplug_errors_total Classify requests answered with an error status, by task.\n"
                  "# TYPE unplug_errors_total counter\n");
    for (int i = 0; i < s->nst; i++) {
        unsigned long e = 0;
        for (int k = 0; k < N_CODES; k++) e += codes[k] >= 400 ? s->st[i].req[k] : 0;
        sb_printf(&b, "unplug_errors_total{task=\"%s\"} %lu\n", s->st[i].task, e);
    }
    sb_printf(&b, "# HELP unplug_inputs_total Inputs classified, by task.\n# TYPE unplug_inputs_total counter\n");
    for (int i = 0; i < s->nst; i++) sb_printf(&b, "unplug_inputs_total{task=\"%s\"} %lu\n", s->st[i].task, s->st[i].inputs);
    sb_printf(&b, "# HELP unplug_request_duration_seconds Classify latency (arrival to answer), by task.\n"
                  "# TYPE unplug_request_duration_seconds histogram\n");
    for (int i = 0; i < s->nst; i++)
        histogram(&b, "unplug_request_duration_seconds", &s->st[i], lat_buckets, N_LAT, s->st[i].lat, s->st[i].lat_n,
                  s->st[i].lat_sum);
    sb_printf(&b, "# HELP unplug_batch_size Inputs per forward pass, by task (of a batch of several tasks, each task's).\n# TYPE unplug_batch_size histogram\n");
    for (int i = 0; i < s->nst; i++)
        histogram(&b, "unplug_batch_size", &s->st[i], batch_buckets, N_BATCH, s->st[i].batch, s->st[i].batch_n,
                  (double)s->st[i].batch_sum);
    sb_printf(&b, "# HELP unplug_queue_depth Inputs waiting for a worker.\n# TYPE unplug_queue_depth gauge\n"
                  "unplug_queue_depth %d\n", s->queued);
    sb_printf(&b, "# HELP unplug_requests_in_flight Classify requests queued or running.\n"
                  "# TYPE unplug_requests_in_flight gauge\nunplug_requests_in_flight %d\n", s->active);
    counter(&b, "unplug_expert_swaps_total", "Batches whose expert differed from the worker's previous one.", s->swaps);
    counter(&b, "unplug_cancelled_inputs_total", "Inputs dropped uncomputed: their client went away.", s->cancelled);
    counter(&b, "unplug_batches_total", "Forward passes over task inputs (a batch of several tasks is one).", s->batches);
    counter(&b, "unplug_mixed_batches_total", "Batches that held inputs of more than one task (--mix-tasks).", s->mixed_batches);
    counter(&b, "unplug_mixed_batch_inputs_total", "Inputs classified in batches of more than one task.", s->mixed_inputs);
    counter(&b, "unplug_routed_inputs_total", "Inputs whose task the router picked.", s->routed);
    pthread_mutex_unlock(&s->mu);
    sb_printf(&b, "# HELP unplug_experts Experts plugged.\n# TYPE unplug_experts gauge\nunplug_experts %d\n", nexp);
    counter(&b, "unplug_plugs_total", "Experts plugged (replacements included).", hs.plugs);
    counter(&b, "unplug_unplugs_total", "Experts unplugged.", hs.unplugs);
    counter(&b, "unplug_evictions_total", "Experts unplugged because the plugged ones passed the memory budget.", hs.evicted);
    sb_printf(&b, "# HELP unplug_experts_bytes Bytes the plugged experts own.\n# TYPE unplug_experts_bytes gauge\n"
                  "unplug_experts_bytes %zu\n", hs.bytes);
    counter(&b, "unplug_replacements_total", "Plugs that replaced an expert of the same task.", hs.replaced);
    if (!b.p) return send_error(c, 500, "out of memory");
    return send_text(c, 200, "text/plain; version=0.0.4", b.p, NULL, NULL);
}

/* the admin endpoints need the key when one is set (compared in constant time) */
static int authorized(up_server *s, struct MHD_Connection *c) {
    if (!s->o.api_key) return 1;
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!h || strncmp(h, "Bearer ", 7)) return 0;
    h += 7;
    size_t n = strlen(h), k = strlen(s->o.api_key);
    unsigned diff = n != k;
    for (size_t i = 0; i < n; i++) diff |= (unsigned)(h[i] ^ s->o.api_key[i % (k ? k : 1)]);
    return diff == 0;
}

static MHD_Result_t route(up_server *s, struct MHD_Connection *c, const char *url, const char *method,
                          const body *bd, double t0) {
    /* HEAD is GET without the body (libmicrohttpd leaves it out) */
    int get = !strcmp(method, "GET") || !strcmp(method, "HEAD"), post = !strcmp(method, "POST"),
        del = !strcmp(method, "DELETE");
    if (!strcmp(url, "/v1/classify")) {
        if (!post) return send_error_h(c, 405, "use POST", MHD_HTTP_HEADER_ALLOW, "POST");
        return do_classify(s, c, bd, t0, MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Unplug-Task"));
    }
    if (!strncmp(url, "/v1/tasks/", 10)) { /* /v1/tasks/TASK/classify: a proxy routes on the path, not the body */
        const char *t = url + 10, *slash = strchr(t, '/');
        if (!slash || strcmp(slash, "/classify") || slash == t || slash - t >= 32)
            return send_error(c, 404, "no such endpoint (POST /v1/tasks/TASK/classify)");
        if (!post) return send_error_h(c, 405, "use POST", MHD_HTTP_HEADER_ALLOW, "POST");
        char task[32];
        snprintf(task, sizeof task, "%.*s", (int)(slash - t), t);
        return do_classify(s, c, bd, t0, task);
    }
    if (!strcmp(url, "/v1/experts")) {
        if (get) return do_list(s, c);
        if (!post) return send_error_h(c, 405, "use GET or POST", MHD_HTTP_HEADER_ALLOW, "GET, HEAD, POST");
        if (!authorized(s, c))
            return send_error_h(c, 401, "this endpoint needs the API key", MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
        return do_plug(s, c, bd);
    }
    if (!strncmp(url, "/v1/experts/", 12)) {
        if (!del) return send_error_h(c, 405, "use DELETE", MHD_HTTP_HEADER_ALLOW, "DELETE");
        if (!authorized(s, c))
            return send_error_h(c, 401, "this endpoint needs the API key", MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
        return do_unplug(s, c, url + 12);
    }
    if (!strcmp(url, "/healthz")) {
        if (!get) return send_error_h(c, 405, "use GET", MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
        pthread_mutex_lock(&s->mu);
        int draining = s->draining;
        pthread_mutex_unlock(&s->mu);
        return send_json(c, draining ? 503 : 200, json_pack("{s:s,s:i}", "status", draining ? "draining" : "ok",
                                                          "experts", up_hub_count(s->hub)));
    }
    if (!strcmp(url, "/metrics")) {
        if (!get) return send_error_h(c, 405, "use GET", MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
        return do_metrics(s, c);
    }
    return send_error(c, 404, "no such endpoint (POST /v1/classify, POST /v1/tasks/TASK/classify, GET|POST /v1/experts, "
                              "DELETE /v1/experts/TASK, GET /healthz, GET /metrics)");
}

typedef struct {
    body bd;
    double t0;
} conn_state;

static MHD_Result_t too_big(up_server *s, struct MHD_Connection *c) {
    char msg[96];
    snprintf(msg, sizeof msg, "the request body is over the limit of %zu bytes", s->o.max_body);
    pthread_mutex_lock(&s->mu);
    count_request(s, NULL, 413, -1, 0);
    pthread_mutex_unlock(&s->mu);
    return send_error(c, 413, msg);
}

typedef struct {
    int content_length, transfer_encoding;
} framing;

static MHD_Result_t count_framing(void *cls, enum MHD_ValueKind kind, const char *key, const char *value) {
    (void)kind;
    (void)value;
    framing *f = cls;
    if (!strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH)) f->content_length++;
    if (!strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING)) f->transfer_encoding++;
    return MHD_YES;
}

static MHD_Result_t on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                               const char *version, const char *upload, size_t *upload_size, void **con_cls) {
    (void)version;
    up_server *s = cls;
    conn_state *cs = *con_cls;
    if (!cs) { /* first call: headers only */
        cs = calloc(1, sizeof *cs);
        if (!cs) return MHD_NO;
        cs->t0 = now_ms();
        *con_cls = cs;
        pthread_mutex_lock(&s->mu);
        s->open_requests++;
        pthread_mutex_unlock(&s->mu);
        /* request smuggling behind a proxy: two Content-Length headers, or one with Transfer-Encoding,
         * frame the body two ways; refuse and close the connection */
        framing fr = {0, 0};
        MHD_get_connection_values(c, MHD_HEADER_KIND, count_framing, &fr);
        if (fr.content_length > 1 || (fr.content_length && fr.transfer_encoding)) {
            cs->bd.too_big = 1; /* the body is not read */
            return send_error_h(c, 400, fr.content_length > 1 ? "more than one Content-Length header"
                                                              : "both Content-Length and Transfer-Encoding",
                                MHD_HTTP_HEADER_CONNECTION, "close");
        }
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > s->o.max_body) { /* refuse before reading any of it */
            cs->bd.too_big = 1;
            return too_big(s, c);
        }
        return MHD_YES;
    }
    if (*upload_size) { /* body bytes */
        body *b = &cs->bd;
        if (!b->too_big && b->len + *upload_size > s->o.max_body) b->too_big = 1;
        if (!b->too_big) {
            if (b->len + *upload_size > b->cap) {
                size_t cap = (b->len + *upload_size) * 2;
                if (cap > s->o.max_body) cap = s->o.max_body;
                char *nb = realloc(b->buf, cap);
                if (!nb) return MHD_NO;
                b->buf = nb;
                b->cap = cap;
            }
            memcpy(b->buf + b->len, upload, *upload_size);
            b->len += *upload_size;
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (cs->bd.too_big) return too_big(s, c);
    return route(s, c, url, method, &cs->bd, cs->t0);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe) {
    (void)c; (void)toe;
    up_server *s = cls;
    conn_state *cs = *con_cls;
    if (cs) {
        free(cs->bd.buf);
        free(cs);
        pthread_mutex_lock(&s->mu);
        if (--s->open_requests == 0) pthread_cond_broadcast(&s->idle);
        pthread_mutex_unlock(&s->mu);
    }
    *con_cls = NULL;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap) {
    up_server *s = cls;
    if (s->o.quiet) return;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    fprintf(stderr, "unplug serve: %s", msg);
}

/* ---- lifecycle ------------------------------------------------------------------------------------ */

up_status up_server_start(up_hub *hub, const up_server_opts *o, up_server **out) {
    *out = NULL;
    up_server *s = up_calloc(1, sizeof *s, "server");
    if (!s) return UP_ERR_NOMEM;
    s->hub = hub;
    s->o = *o;
    if (!s->o.host) s->o.host = "127.0.0.1";
    snprintf(s->host, sizeof s->host, "%s", s->o.host);
    int cores = omp_get_num_procs();
    if (s->o.workers <= 0) s->o.workers = cores;
    if (s->o.threads_per_worker <= 0) s->o.threads_per_worker = cores / s->o.workers > 0 ? cores / s->o.workers : 1;
    if (s->o.max_batch < 1 || s->o.max_batch > 256) { free(s); return up_fail(UP_ERR_INVALID, "max batch must be 1..256, got %d", o->max_batch); }
    if (s->o.queue_cap < s->o.lim.max_inputs) s->o.queue_cap = s->o.lim.max_inputs; /* a valid request always fits an empty queue */
    if (!(s->o.max_wait_ms >= 0)) s->o.max_wait_ms = 2;
    if (s->o.max_wait_ms > 10000) s->o.max_wait_ms = 10000;
    if (s->o.round_len < 1) s->o.round_len = 1;
    if (s->o.max_connections < 1) s->o.max_connections = 1024;
    if (s->o.per_ip < 0) s->o.per_ip = 0;
    if (s->o.idle_timeout_s < 1) s->o.idle_timeout_s = 30;
    if (s->o.experts_dir && !realpath(s->o.experts_dir, s->dir)) {
        free(s);
        return up_fail(UP_ERR_IO, "experts directory %s: %s", o->experts_dir, strerror(errno));
    }
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)s->o.port)};
    if (inet_pton(AF_INET, s->host, &addr.sin_addr) != 1) {
        free(s);
        return up_fail(UP_ERR_INVALID, "cannot bind '%s': give an IPv4 address such as 127.0.0.1", o->host);
    }
    pthread_mutex_init(&s->mu, NULL);
    pthread_mutex_init(&s->plug_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->work, &ca);
    pthread_cond_init(&s->idle, &ca);
    pthread_condattr_destroy(&ca);
    const up_model *base = up_hub_base(hub);
    int T = (int)base->cfg.max_position_embeddings, B = s->o.max_batch;
    if (s->o.max_len > 0 && s->o.max_len < T) T = s->o.max_len;
    s->w = up_calloc((size_t)s->o.workers, sizeof *s->w, "workers");
    up_status st = s->w ? UP_OK : UP_ERR_NOMEM;
    for (int i = 0; i < s->o.workers && !st; i++) {
        worker *w = &s->w[i];
        w->s = s;
        st = up_run_new(base, B, T, &w->run);
        if (!st) st = up_task_buf_init(&w->buf, B, T);
        w->buf.round_T = s->o.round_len;
        if (st) break;
        w->probs = up_malloc((size_t)B * UP_MAX_LABELS * sizeof(float), "worker");
        w->cls = up_malloc((size_t)B * 2 * base->cfg.hidden_size * sizeof(float), "worker");
        w->a = up_calloc((size_t)B, sizeof *w->a, "worker");
        w->b = up_calloc((size_t)B, sizeof *w->b, "worker");
        w->batch = up_calloc((size_t)B, sizeof *w->batch, "worker");
        w->st = up_calloc((size_t)B, sizeof *w->st, "worker");
        w->msg = up_calloc((size_t)B, sizeof *w->msg, "worker");
        w->in = up_calloc((size_t)B, sizeof *w->in, "worker");
        w->pr = up_calloc((size_t)B, sizeof *w->pr, "worker");
        w->cand = s->o.mix_tasks ? up_calloc((size_t)B * MAX_QUEUES, sizeof *w->cand, "worker") : NULL;
        if (!w->probs || !w->cls || !w->a || !w->b || !w->batch || !w->st || !w->msg || !w->in || !w->pr ||
            (s->o.mix_tasks && !w->cand)) { st = UP_ERR_NOMEM; break; }
        if (pthread_create(&w->th, NULL, worker_main, w)) { st = up_fail(UP_ERR_INTERNAL, "cannot start a worker thread"); break; }
        s->nw++;
    }
    if (!st) {
        s->d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC | MHD_USE_ERROR_LOG,
                                (uint16_t)s->o.port, NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log,
                                s, MHD_OPTION_SOCK_ADDR, &addr, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                                MHD_OPTION_CONNECTION_LIMIT, (unsigned)s->o.max_connections,
                                MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)s->o.per_ip,
                                MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)s->o.idle_timeout_s, MHD_OPTION_END);
        if (!s->d) st = up_fail(UP_ERR_IO, "cannot listen on %s:%d (in use, or not an address of this machine)", s->host, s->o.port);
    }
    if (st) {
        up_server_stop(s);
        return st;
    }
    if (s->o.experts_budget) { /* what was plugged before the start counts too */
        int n = up_hub_evict(hub, s->o.experts_budget, NULL);
        if (n && !s->o.quiet) fprintf(stderr, "unplug serve: unplugged %d expert(s) past the memory budget\n", n);
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : s->o.port;
    *out = s;
    return UP_OK;
}

int up_server_port(const up_server *s) { return s->port; }

void up_server_stop(up_server *s) {
    if (!s) return;
    if (s->d) MHD_quiesce_daemon(s->d);  /* no new connections */
    pthread_mutex_lock(&s->mu);
    s->draining = 1;
    pthread_cond_broadcast(&s->work);
    /* every request begun gets its answer sent (a stuck client gets 30 s) */
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += 30;
    while (s->active > 0 || s->open_requests > 0)
        if (pthread_cond_timedwait(&s->idle, &s->mu, &until) == ETIMEDOUT) break;
    s->stop = 1;
    pthread_cond_broadcast(&s->work);
    pthread_mutex_unlock(&s->mu);
    for (int i = 0; i < s->nw; i++) pthread_join(s->w[i].th, NULL);
    if (s->d) MHD_stop_daemon(s->d);
    for (int i = 0; s->w && i < s->o.workers; i++) {
        worker *w = &s->w[i];
        up_run_free(w->run);
        up_task_buf_free(&w->buf);
        free(w->probs); free(w->cls); free(w->a); free(w->b); free(w->batch); free(w->st); free(w->msg); free(w->in); free(w->pr); free(w->cand);
    }
    free(s->w);
    pthread_cond_destroy(&s->work);
    pthread_cond_destroy(&s->idle);
    pthread_mutex_destroy(&s->mu);
    pthread_mutex_destroy(&s->plug_mu);
    free(s);
}
