/* base.c: failure messages, logging, allocation, file reads and mappings. */
#define _GNU_SOURCE
#include "base.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define UP_MSG_CAP 1024
static _Thread_local char g_msg[UP_MSG_CAP];

const char *up_errmsg(void) { return g_msg; }
void up_clear_error(void) { g_msg[0] = 0; }

up_status up_fail(up_status code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_msg, sizeof g_msg, fmt, ap);
    va_end(ap);
    return code;
}

up_status up_fail_prefix(up_status code, const char *fmt, ...) {
    char prefix[512], old[UP_MSG_CAP];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, g_msg, sizeof old);
    size_t n = strlen(prefix);
    memcpy(g_msg, prefix, n);
    memcpy(g_msg + n, ": ", 2);
    size_t room = sizeof g_msg - n - 3, len = strlen(old);
    if (len > room) len = room;
    memcpy(g_msg + n + 2, old, len);
    g_msg[n + 2 + len] = 0;
    return code;
}

const char *up_status_name(up_status s) {
    switch (s) {
    case UP_OK: return "ok";
    case UP_ERR_IO: return "io error";
    case UP_ERR_FORMAT: return "format error";
    case UP_ERR_INVALID: return "invalid argument";
    case UP_ERR_NOMEM: return "out of memory";
    case UP_ERR_UNSUPPORTED: return "unsupported";
    case UP_ERR_INTERNAL: return "internal error";
    case UP_ERR_INTERRUPTED: return "interrupted";
    }
    return "unknown status";
}

static void default_log(int level, const char *msg, void *user) {
    (void)user;
    static const char *names[] = {"error", "warning", "info", "debug"};
    fprintf(stderr, "unplug: %s: %s\n", names[level < 0 ? 0 : level > 3 ? 3 : level], msg);
}
static up_log_fn g_log = default_log;
static void *g_log_user;
static int g_log_max = UP_LOG_WARN;

void up_set_log(up_log_fn fn, void *user, int max_level) {
    g_log = fn ? fn : default_log; /* NULL restores the default stderr logger */
    g_log_user = user;
    g_log_max = max_level;
}

void up_log(int level, const char *fmt, ...) {
    if (!g_log || level > g_log_max) return;
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    g_log(level, buf, g_log_user);
}

void *up_malloc(size_t n, const char *what) {
    void *p = malloc(n ? n : 1);
    if (!p) up_fail(UP_ERR_NOMEM, "out of memory allocating %zu bytes for %s", n, what);
    return p;
}

void *up_calloc(size_t n, size_t size, const char *what) {
    size_t total;
    if (!up_mul_ok(n, size, &total)) {
        up_fail(UP_ERR_NOMEM, "size overflow allocating %zu x %zu bytes for %s", n, size, what);
        return NULL;
    }
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) up_fail(UP_ERR_NOMEM, "out of memory allocating %zu bytes for %s", total, what);
    return p;
}

void *up_aligned_alloc(size_t n, const char *what) {
    void *p = NULL;
    if (posix_memalign(&p, 64, n ? n : 64) != 0) {
        up_fail(UP_ERR_NOMEM, "out of memory allocating %zu bytes for %s", n, what);
        return NULL;
    }
    return p;
}

up_status up_read_file(const char *path, size_t max_len, char **buf, size_t *len) {
    *buf = NULL;
    *len = 0;
    /* O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused below */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    FILE *f = fd >= 0 ? fdopen(fd, "rb") : NULL;
    if (!f) {
        if (fd >= 0) close(fd);
        return up_fail(UP_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return up_fail(UP_ERR_IO, "%s: not a regular file", path);
    }
    if ((uint64_t)st.st_size > max_len) {
        fclose(f);
        return up_fail(UP_ERR_FORMAT, "%s: file is %lld bytes, expected at most %zu", path,
                       (long long)st.st_size, max_len);
    }
    size_t n = (size_t)st.st_size;
    char *b = up_malloc(n + 1, path);
    if (!b) {
        fclose(f);
        return UP_ERR_NOMEM;
    }
    size_t got = fread(b, 1, n, f);
    int err = ferror(f);
    fclose(f);
    if (got != n || err) {
        free(b);
        return up_fail(UP_ERR_IO, "%s: short read: expected %zu bytes, got %zu", path, n, got);
    }
    b[n] = 0;
    *buf = b;
    *len = n;
    return UP_OK;
}

up_status up_map_file(const char *path, up_map *m) {
    m->data = NULL;
    m->size = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK); /* a FIFO: refused below, never waited on */
    if (fd < 0) return up_fail(UP_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return up_fail(UP_ERR_IO, "%s: not a regular file", path);
    }
    if (st.st_size == 0) {
        close(fd);
        return up_fail(UP_ERR_FORMAT, "%s: file is empty", path);
    }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (p == MAP_FAILED) return up_fail(UP_ERR_IO, "%s: cannot map: %s", path, strerror(errno));
    m->data = p;
    m->size = (size_t)st.st_size;
    return UP_OK;
}

void up_unmap(up_map *m) {
    if (m && m->data) munmap((void *)m->data, m->size);
    if (m) {
        m->data = NULL;
        m->size = 0;
    }
}

up_status up_path_join(char *out, size_t cap, const char *dir, const char *name) {
    int n = snprintf(out, cap, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= cap)
        return up_fail(UP_ERR_INVALID, "path too long: %s/%s", dir, name);
    return UP_OK;
}

void up_path_dirname(const char *path, char *dir, size_t cap) {
    snprintf(dir, cap, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash) *(slash == dir ? slash + 1 : slash) = 0;
    else snprintf(dir, cap, ".");
}

int up_path_writable(const char *path) {
    char dir[4096];
    up_path_dirname(path, dir, sizeof dir);
    return access(dir, W_OK | X_OK) == 0 && (access(path, F_OK) != 0 || access(path, W_OK) == 0);
}

int up_path_inside(const char *dir_real, const char *path, char *real) {
    size_t dl = strlen(dir_real);
    return realpath(path, real) && !strncmp(real, dir_real, dl) && real[dl] == '/' && !strchr(real + dl + 1, '/');
}

int up_file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

uint64_t up_rng_below(up_rng *r, uint64_t m) {
    uint64_t min = -m % m, x;
    do x = up_rng_next(r);
    while (x < min);
    return x % m;
}

float up_rng_normal(up_rng *r) {
    double u1 = ((up_rng_next(r) >> 11) + 1.0) / 9007199254740993.0, u2 = (up_rng_next(r) >> 11) / 9007199254740992.0;
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

uint64_t up_random_next(uint64_t *state) { return up_mix64((*state)++); }

double up_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
