/*
 * unplug_serve.h: the public API of libunplug_serve, the HTTP server and the
 * task router over libunplug (include/unplug.h). A program that only embeds
 * the engine links libunplug alone; this library adds libmicrohttpd.
 *
 *     up_hub *hub;  up_hub_new(model, &hub);  up_hub_plug(hub, "sst2.expert", NULL);
 *     up_server_opts o = up_server_opts_default();  o.port = 8080;
 *     up_server *s;  up_server_start(hub, &o, &s);   // serving until
 *     up_server_stop(s);                              // drains what is in flight
 */
#ifndef UNPLUG_SERVE_H
#define UNPLUG_SERVE_H
#include "unplug.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- the task router: picks the task of a text that names none ------------- */

#define UP_ROUTER_MAX_TASKS 64
typedef struct up_router up_router;
typedef struct {
    int per_task;          /* training examples sampled per task, seeded (2000) */
    double heldout_share;  /* share kept out to measure routing accuracy (0.2) */
    int epochs;            /* passes of full-batch gradient descent (300) */
    int max_len;           /* tokens per text (128) */
    uint64_t seed;         /* 1 */
} up_router_opts;
UP_API up_router_opts up_router_opts_default(void);
/* A softmax regression over the base model's final [CLS] features of each
 * task's examples (sets[k]: task names[k], at most UP_ROUTER_MAX_TASKS);
 * acc_per_task (n_tasks, may be NULL) gets held-out routing accuracy in %. */
UP_API up_status up_router_build(const up_model *base, int n_tasks, const char *const *names,
                                 const up_dataset *const *sets, const up_router_opts *o, up_router **out,
                                 double *acc_per_task);
UP_API up_status up_router_save(const char *path, const up_model *base, const up_router *r);
UP_API up_status up_router_load(const char *path, const up_model *base, up_router **out);
UP_API double up_router_heldout_acc(const up_router *r);   /* %, measured when built */
UP_API void up_router_free(up_router *r);

/* ---- the server ---------------------------------------------------------------- */

typedef struct {
    int max_inputs;        /* inputs per request */
    size_t max_text;       /* bytes per text */
} up_req_limits;

typedef struct {
    const char *host;          /* address to bind, "127.0.0.1" by default */
    int port;                  /* 0: any free port (see up_server_port) */
    const char *experts_dir;   /* POST /v1/experts plugs DIR/NAME.expert; NULL: refuses */
    const char *api_key;       /* the admin endpoints need "Authorization: Bearer KEY"; NULL: open */
    int workers;               /* compute threads, 0: one per core */
    int threads_per_worker;    /* OpenMP threads of each, 0: cores / workers (at least 1) */
    int max_batch;             /* inputs per batch (32) */
    double max_wait_ms;        /* how long a batch may wait to fill (2 ms) */
    int queue_cap;             /* inputs waiting over all tasks before 503 (4096) */
    size_t max_body;           /* request body bytes before 413 (1 MiB) */
    up_req_limits lim;         /* inputs per request (64), bytes per text (16 KiB) */
    int max_len;               /* tokens per input, 0: each expert's own */
    int round_len;             /* a batch's length is padded to a multiple of this (8; 1: exact) */
    const up_router *router;   /* picks the task of requests that name none; NULL: they are refused */
    int quiet;                 /* no access log on stderr */
    int max_connections;       /* open connections at once (1024); more are refused at accept */
    int per_ip;                /* connections from one address at once (0: no limit; behind a proxy keep 0) */
    int idle_timeout_s;        /* a connection idle this long (reading a request too) is closed (30) */
    int plug_on_demand;        /* a request for a task not plugged plugs EXPERTS_DIR/TASK.expert first */
    size_t experts_budget;     /* bytes the plugged experts may own (0: no limit): past it, the least
                                * recently used are unplugged */
    int mix_tasks;             /* a batch may hold inputs of several tasks whose experts kept every
                                * attention head and share a prompt length and depth (0: per task) */
} up_server_opts;
UP_API up_server_opts up_server_opts_default(void);
typedef struct up_server up_server;
/* Serves hub's experts on host:port (docs/SERVING.md for the endpoints). */
UP_API up_status up_server_start(up_hub *hub, const up_server_opts *o, up_server **out);
UP_API int up_server_port(const up_server *s);
/* Stops accepting, lets every queued and running request finish, stops the
 * workers and frees s. */
UP_API void up_server_stop(up_server *s);

#ifdef __cplusplus
}
#endif
#endif
