/*
 * serve.c: the serving subcommands.
 *
 *   unplug serve --model DIR [--experts-dir DIR] [--expert FILE]... [--port 8080]
 *   unplug classify --model DIR --expert FILE [--pairs] [--batch N]   (texts on stdin)
 *   unplug router build --model DIR --tasks sst2,trec,... --data DIR --out FILE
 */
#define _XOPEN_SOURCE 700 /* realpath */
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include "unplug.h"
#include "unplug_serve.h"
#include "cli.h"

static int load_model(const args *a, up_model **out) {
    up_model_opts mo = up_model_opts_default();
    mo.precision = a->precision;
    if (up_model_load(a->model ? a->model : "models/unplug-mini", &mo, out) != UP_OK) return die("cannot load the model");
    return 0;
}

/* ---- serve ---------------------------------------------------------------------- */

static const char *serve_help =
    "usage: unplug serve [--model DIR] [--experts-dir DIR] [--expert FILE]... [--router FILE]\n"
    "                    [--host 127.0.0.1] [--port 8080] [--workers N] [--threads N]\n"
    "                    [--max-batch 32] [--max-wait-ms 2] [--queue 4096] [--max-body BYTES]\n"
    "                    [--max-inputs 64] [--max-text BYTES] [--max-len TOKENS] [--round-len 8]\n"
    "                    [--api-key-file FILE] [--precision fp32|bf16|auto] [--quiet]\n"
    "                    [--max-connections 1024] [--per-ip 0] [--idle-timeout 30]\n"
    "                    [--plug-on-demand] [--experts-budget-mb MB] [--mix-tasks]\n"
    "Serves many task experts over one copy of the base model (default\n"
    "models/unplug-mini). Every DIR/*.expert is plugged at start, and\n"
    "POST /v1/experts {\"name\": \"X\"} plugs DIR/X.expert later (names only: no\n"
    "path leaves DIR); --expert plugs single files too.\n"
    "\n"
    "  POST   /v1/classify        {\"task\": \"sst2\", \"inputs\": [\"text\", [\"premise\", \"hypothesis\"]]}\n"
    "  POST   /v1/tasks/TASK/classify  {\"inputs\": [...]}   (the task in the path, for a proxy to route on;\n"
    "                             or the header X-Unplug-Task: TASK on /v1/classify)\n"
    "  GET    /v1/experts         the plugged experts\n"
    "  POST   /v1/experts         {\"name\": \"sst2\"}   (admin)\n"
    "  DELETE /v1/experts/TASK                         (admin)\n"
    "  GET    /healthz, GET /metrics (Prometheus)\n"
    "\n"
    "Inputs are batched per task (up to --max-batch, waiting at most --max-wait-ms),\n"
    "round the tasks; with --mix-tasks a batch takes the inputs of several tasks\n"
    "(experts that kept every attention head and share a prompt length and depth:\n"
    "attention over the whole batch, each task's FFN and head on its rows).\n"
    "--workers compute threads (default one per core) of --threads\n"
    "OpenMP threads each; a batch is padded to a multiple of --round-len tokens\n"
    "(fewer distinct matrix shapes for oneDNN to build kernels for). A request\n"
    "that names no task goes to the --router (see\n"
    "unplug router build). With --api-key-file the admin endpoints need\n"
    "\"Authorization: Bearer KEY\". Binds 127.0.0.1 unless --host says otherwise;\n"
    "--port 0 takes a free port (printed). SIGTERM or SIGINT drains the requests in\n"
    "flight and exits. At most --max-connections connections are open at once\n"
    "(--per-ip from one address; 0: no limit, as behind a proxy), and one idle for\n"
    "--idle-timeout seconds, or this slow to send its request, is closed. A request\n"
    "whose client goes away is cancelled: its queued inputs are not computed.\n"
    "--plug-on-demand: nothing is plugged at start; a request for a task not\n"
    "plugged plugs DIR/TASK.expert first (replicas behind a proxy that hashes on the task each end up holding\n"
    "their share); --experts-budget-mb: past that many MB owned by the plugged\n"
    "experts, the least recently used are unplugged.\n";

static int plug_dir(up_hub *h, const char *dir) {
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "unplug: cannot open the experts directory %s: %s\n", dir, strerror(errno));
        return 1;
    }
    char **names = NULL;
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t k = strlen(de->d_name);
        if (k > 7 && !strcmp(de->d_name + k - 7, ".expert") && de->d_name[0] != '.') {
            char **nn = realloc(names, (n + 1) * sizeof *names);
            if (!nn) break;
            names = nn;
            names[n++] = strdup(de->d_name);
        }
    }
    closedir(d);
    for (size_t i = 0; i + 1 < n; i++) /* plug in name order */
        for (size_t j = i + 1; j < n; j++)
            if (strcmp(names[i], names[j]) > 0) { char *t = names[i]; names[i] = names[j]; names[j] = t; }
    int rc = 0;
    char rdir[PATH_MAX] = "";
    if (!realpath(dir, rdir)) {
        fprintf(stderr, "unplug: %s: %s\n", dir, strerror(errno));
        for (size_t i = 0; i < n; i++) free(names[i]);
        free(names);
        return 1;
    }
    for (size_t i = 0; i < n; i++) {
        char path[4096], real[PATH_MAX], task[32];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        /* the rule of POST /v1/experts: the file must resolve inside the directory, not through a symlink out of it */
        if (!rc && !up_path_inside(rdir, path, real)) {
            fprintf(stderr, "unplug: %s: resolves outside the experts directory %s (or not at all): refused\n", path, dir);
            rc = 1;
        }
        if (!rc && up_hub_plug(h, real, task) != UP_OK) rc = die("cannot plug an expert");
        else if (!rc) fprintf(stderr, "unplug serve: plugged %s (task %s)\n", path, task);
        free(names[i]);
    }
    free(names);
    return rc;
}

static int read_key(const char *path, char *key, size_t cap) {
    FILE *f = fopen(path, "r");
    if (!f) { fprintf(stderr, "unplug: cannot read the API key file %s: %s\n", path, strerror(errno)); return 0; }
    size_t n = fread(key, 1, cap - 1, f);
    fclose(f);
    key[n] = 0;
    while (n && (key[n - 1] == '\n' || key[n - 1] == '\r' || key[n - 1] == ' ')) key[--n] = 0;
    if (n < 8) { fprintf(stderr, "unplug: the API key in %s is shorter than 8 characters\n", path); return 0; }
    return 1;
}

int cmd_serve(const args *a) {
    if (a->help) return fputs(serve_help, stdout), 0;
    up_server_opts o = up_server_opts_default();
    o.port = a->port;
    if (a->host) o.host = a->host;
    if (a->workers >= 0) o.workers = a->workers;
    o.threads_per_worker = a->threads;
    if (a->max_batch > 0) o.max_batch = a->max_batch;
    if (a->max_wait_ms >= 0) o.max_wait_ms = a->max_wait_ms;
    if (a->queue > 0) o.queue_cap = (int)a->queue;
    if (a->max_body > 0) o.max_body = (size_t)a->max_body;
    if (a->max_inputs > 0) o.lim.max_inputs = (int)a->max_inputs;
    if (a->max_text > 0) o.lim.max_text = (size_t)a->max_text;
    o.max_len = a->max_len;
    if (a->round_len > 0) o.round_len = a->round_len;
    o.quiet = a->quiet;
    if (a->max_connections > 0) o.max_connections = a->max_connections;
    o.per_ip = a->per_ip;
    if (a->idle_timeout > 0) o.idle_timeout_s = a->idle_timeout;
    o.plug_on_demand = a->plug_on_demand;
    o.mix_tasks = a->mix_tasks;
    o.experts_budget = (size_t)(a->experts_budget_mb * 1048576.0);
    if (o.plug_on_demand && !a->experts_dir) return fputs("unplug: --plug-on-demand needs --experts-dir DIR\n", stderr), 2;
    if (o.plug_on_demand && a->router)
        return fputs("unplug: --router goes without --plug-on-demand (the router's picks need their experts plugged)\n",
                     stderr), 2;
    const char *dir = a->experts_dir, *router_path = a->router, *keyfile = a->api_key_file;
    char key[512];
    if (keyfile && !read_key(keyfile, key, sizeof key)) return 1;
    if (keyfile) o.api_key = key;
    /* the signals are taken by sigwait below, not by any thread */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    /* experts come and go: their large buffers (compacted FFN copies) are
     * always mapped and unmapped whole, never left in the heap by glibc's
     * growing mmap threshold */
    mallopt(M_MMAP_THRESHOLD, 256 * 1024);
    up_model *base = NULL;
    up_hub *hub = NULL;
    up_router *router = NULL;
    up_server *srv = NULL;
    int rc = load_model(a, &base);
    if (!rc && !up_model_tokenizer(base))
        rc = (fprintf(stderr, "unplug: serve: the model directory %s has no vocab.txt: the server needs the tokenizer\n",
                      a->model ? a->model : "models/unplug-mini"), 1);
    if (!rc && up_hub_new(base, &hub) != UP_OK) rc = die("cannot set up the experts");
    if (!rc && dir && !a->plug_on_demand) rc = plug_dir(hub, dir); /* on demand: each when first asked for */
    for (int i = 0; i < a->n_experts && !rc; i++) {
        char task[32];
        if (up_hub_plug(hub, a->experts[i], task) != UP_OK) rc = die("cannot plug an expert");
        else fprintf(stderr, "unplug serve: plugged %s (task %s)\n", a->experts[i], task);
    }
    if (!rc && router_path && up_router_load(router_path, base, &router) != UP_OK) rc = die("cannot load the router");
    o.experts_dir = dir;
    o.router = router;
    if (!rc && up_server_start(hub, &o, &srv) != UP_OK) rc = die("cannot start the server");
    if (!rc) {
        fprintf(stderr, "unplug serve: listening on http://%s:%d (%d experts, %s%s)\n", o.host, up_server_port(srv),
                up_hub_count(hub), router ? "router " : "no router", router ? router_path : "");
        int sig = 0;
        sigwait(&sigs, &sig);
        fprintf(stderr, "unplug serve: %s: draining the requests in flight\n", sig == SIGTERM ? "SIGTERM" : "SIGINT");
        up_server_stop(srv);
        fprintf(stderr, "unplug serve: stopped\n");
    }
    up_router_free(router);
    up_hub_free(hub);
    up_model_free(base);
    return rc;
}

/* ---- classify ------------------------------------------------------------------- */

static const char *classify_help =
    "usage: unplug classify [--model DIR] --expert FILE [--pairs] [--batch 1] [--precision ...]\n"
    "Labels each line of stdin (with --pairs: text_a TAB text_b) with the expert\n"
    "and prints one JSON object a line, as the server answers an input:\n"
    "  {\"label\": \"positive\", \"probabilities\": {\"negative\": 0.1, \"positive\": 0.9}, \"expert\": \"sst2\"}\n"
    "--batch runs that many lines in one forward (1: each line alone).\n";

int cmd_classify(const args *opt) {
    if (opt->help) return fputs(classify_help, stdout), 0;
    const char *expert = opt->expert;
    int pairs = opt->pairs, B = strchr(opt->batches, ',') ? 1 : opt->batch;
    if (!expert) return fputs(classify_help, stderr), 2;
    up_model *base = NULL;
    up_expert *e = NULL;
    int rc = load_model(opt, &base);
    if (!rc && up_expert_load(base, expert, &e) != UP_OK) rc = die("cannot load the expert");
    int NL = e ? up_expert_n_labels(e) : 0;
    char **lines = calloc((size_t)B, sizeof *lines);
    const char **a = calloc((size_t)B, sizeof *a), **b = calloc((size_t)B, sizeof *b);
    float *probs = calloc((size_t)B * UP_MAX_LABELS, sizeof(float));
    int *best = calloc((size_t)B, sizeof *best);
    if (!lines || !a || !b || !probs || !best) rc = rc ? rc : die("out of memory");
    char *line = NULL;
    size_t cap = 0;
    long lineno = 0;
    int n = 0, eof = 0;
    while (!rc && !eof) {
        ssize_t k = getline(&line, &cap, stdin);
        if (k < 0) eof = 1;
        else {
            lineno++;
            while (k && (line[k - 1] == '\n' || line[k - 1] == '\r')) line[--k] = 0;
            char *tab = pairs ? strchr(line, '\t') : NULL;
            if (pairs && !tab) { fprintf(stderr, "unplug: stdin:%ld: --pairs expects text_a TAB text_b\n", lineno); rc = 1; break; }
            if (tab) *tab = 0;
            lines[n] = malloc((size_t)k + 1); /* a copy of the line, the tab turned into the end of text_a */
            if (!lines[n]) { rc = die("out of memory"); break; }
            memcpy(lines[n], line, (size_t)k + 1);
            a[n] = lines[n];
            b[n] = tab ? lines[n] + (tab - line) + 1 : NULL;
            n++;
        }
        if (n == B || (eof && n)) {
            if (up_expert_classify(e, (size_t)n, a, pairs ? b : NULL, best, probs) != UP_OK) { rc = die("classify"); break; }
            for (int i = 0; i < n; i++) {
                json_t *p = json_object();
                for (int k2 = 0; k2 < NL; k2++)
                    json_object_set_new(p, up_expert_label(e, k2), json_real(probs[i * NL + k2]));
                json_t *o = json_pack("{s:s,s:o,s:s}", "label", up_expert_label(e, best[i]), "probabilities", p,
                                      "expert", up_expert_task(e));
                char *s = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(9));
                puts(s);
                free(s);
                json_decref(o);
                free(lines[i]);
                lines[i] = NULL;
            }
            n = 0;
        }
    }
    for (int i = 0; i < n; i++) free(lines[i]);
    free(line); free(lines); free(a); free(b); free(probs); free(best);
    up_expert_free(e);
    up_model_free(base);
    return rc;
}

/* ---- router build ------------------------------------------------------------------ */

static const char *router_help =
    "usage: unplug router build [--model DIR] --tasks TASK[=FILE],... [--data DIR] --out FILE\n"
    "                           [--per-task 2000] [--heldout 0.2] [--epochs 300] [--max-len 128] [--seed 1]\n"
    "Trains a router that picks the task of a text from the base model's final\n"
    "[CLS] vector: a softmax regression over --per-task training examples of each\n"
    "task (TASK from the GLUE/TREC layout under --data, or TASK=FILE for a TSV/JSONL\n"
    "file), a seeded --heldout share kept out to measure routing accuracy. The task\n"
    "names must be the expert task names the server has plugged.\n";

int cmd_router(const args *a) {
    if (a->help) return fputs(router_help, stdout), 0;
    const char *tasks = a->tasks, *data = a->data, *out = a->out;
    double per = a->per_task, held = a->held, epochs = a->epochs ? a->epochs : 300, maxlen = a->max_len ? a->max_len : 128,
           seed = a->seed >= 0 ? (double)a->seed : 1;
    if (!tasks || !out) return fputs(router_help, stderr), 2;
    up_router_opts ro = up_router_opts_default();
    ro.per_task = (int)per;
    ro.heldout_share = held;
    ro.epochs = (int)epochs;
    ro.max_len = (int)maxlen;
    ro.seed = (uint64_t)seed;
    char names[UP_ROUTER_MAX_TASKS][32];
    const char *name_p[UP_ROUTER_MAX_TASKS];
    up_dataset *sets[UP_ROUTER_MAX_TASKS] = {0};
    char list[4096];
    snprintf(list, sizeof list, "%s", tasks);
    int rc = 0, nt = 0;
    for (char *tok = strtok(list, ","); tok && !rc; tok = strtok(NULL, ",")) {
        if (nt == UP_ROUTER_MAX_TASKS) { fprintf(stderr, "unplug: at most %d tasks\n", UP_ROUTER_MAX_TASKS); rc = 2; break; }
        char *eq = strchr(tok, '=');
        if (eq) *eq = 0;
        if (!tok[0] || strlen(tok) >= sizeof names[0]) { fprintf(stderr, "unplug: bad task name in --tasks\n"); rc = 2; break; }
        snprintf(names[nt], sizeof names[0], "%s", tok);
        name_p[nt] = names[nt];
        if (eq) {
            if (up_dataset_load(eq + 1, NULL, NULL, &sets[nt]) != UP_OK) rc = die(eq + 1);
        } else if (!data) {
            fprintf(stderr, "unplug: task '%s' needs --data DIR (or TASK=FILE)\n", tok);
            rc = 2;
        } else {
            up_dataset *val = NULL; /* the training split only */
            if (up_dataset_task(tok, data, 42, &sets[nt], &val, NULL) != UP_OK) rc = die(tok);
            up_dataset_free(val);
        }
        nt++;
    }
    for (int k = 0; k < nt && !rc; k++)
        fprintf(stderr, "router: %-12s %zu examples\n", names[k],
                up_dataset_size(sets[k]) < (size_t)per ? up_dataset_size(sets[k]) : (size_t)per);
    up_model *base = NULL;
    up_router *r = NULL;
    double acc[UP_ROUTER_MAX_TASKS];
    if (!rc) rc = load_model(a, &base);
    if (!rc && up_router_build(base, nt, name_p, (const up_dataset *const *)sets, &ro, &r, acc) != UP_OK)
        rc = die("router training failed");
    if (!rc && up_router_save(out, base, r) != UP_OK) rc = die(out);
    if (!rc) {
        printf("router: %d tasks, held-out routing accuracy %.2f%%\n", nt, up_router_heldout_acc(r));
        for (int k = 0; k < nt; k++) printf("  %-12s %.2f%%\n", names[k], acc[k]);
        printf("wrote %s\n", out);
    }
    up_router_free(r);
    up_model_free(base);
    for (int k = 0; k < nt; k++) up_dataset_free(sets[k]);
    return rc;
}
