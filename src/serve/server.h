/*
 * server.h: the HTTP service over a hub of experts (libmicrohttpd).
 *
 *   POST   /v1/classify        {"task": "sst2", "inputs": ["text", ["premise", "hypothesis"]]}
 *   GET    /v1/experts         the plugged experts
 *   POST   /v1/experts         {"name": "sst2"}: plug EXPERTS_DIR/sst2.expert   (admin)
 *   DELETE /v1/experts/{task}  unplug                                           (admin)
 *   GET    /healthz            liveness and the number of experts
 *   GET    /metrics            Prometheus text format
 *
 * Requests are split into inputs and queued per task; worker threads take
 * batches (up to max_batch inputs of one task, waiting at most max_wait_ms for
 * a batch to fill), going round the tasks so none starves. Each worker owns
 * its run state (no allocation per batch) and points it at the expert of the
 * batch it takes. Errors are JSON: {"error": {"code": 400, "message": "..."}}.
 *
 *     up_server *s;  up_server_start(hub, &opts, &s);
 *     ... up_server_port(s) ...
 *     up_server_stop(s);   // drains: queued and running requests finish
 */
#ifndef UP_SERVER_H
#define UP_SERVER_H

#include "serve/hub.h"
#include "serve/request.h"
#include "serve/router.h"

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
} up_server_opts;
up_server_opts up_server_opts_default(void);

typedef struct up_server up_server;

up_status up_server_start(up_hub *hub, const up_server_opts *o, up_server **out);
int up_server_port(const up_server *s);
/* Stops accepting, lets every queued and running request finish, stops the
 * workers and frees the server (not the hub). */
void up_server_stop(up_server *s);

#endif
