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

#include "unplug_serve.h"
#include "serve/hub.h"
#include "serve/request.h"
#include "serve/router.h"

/* up_server_opts, up_server_start/port/stop: include/unplug_serve.h */
#endif
