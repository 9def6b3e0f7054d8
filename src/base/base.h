/*
 * base.h: private helpers every module uses: failure messages, logging,
 * overflow-checked sizes, whole-file reads and read-only mappings.
 *
 *     if (n > limit) return up_fail(UP_ERR_FORMAT, "%s: field 'x': expected at most %d, found %d", path, limit, n);
 */
#ifndef UP_BASE_H
#define UP_BASE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include "unplug.h"

/* Sets this thread's message (printf format) and returns code. */
up_status up_fail(up_status code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prepends "prefix: " to the current message, keeps code. */
up_status up_fail_prefix(up_status code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void up_clear_error(void);

void up_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* a*b into *out; returns 0 on overflow. */
static inline int up_mul_ok(size_t a, size_t b, size_t *out) {
    return !__builtin_mul_overflow(a, b, out);
}
static inline int up_add_ok(size_t a, size_t b, size_t *out) {
    return !__builtin_add_overflow(a, b, out);
}

/* malloc/calloc that set an UP_ERR_NOMEM message naming what on failure. */
void *up_malloc(size_t n, const char *what);
void *up_calloc(size_t n, size_t size, const char *what);
/* 64-byte aligned; free with free(). */
void *up_aligned_alloc(size_t n, const char *what);

/* Whole file into a NUL-terminated buffer (len excludes the NUL). max_len
 * bounds what we accept. */
up_status up_read_file(const char *path, size_t max_len, char **buf, size_t *len);

/* Read-only mapping of a whole file. */
typedef struct {
    const uint8_t *data;
    size_t size;
} up_map;
up_status up_map_file(const char *path, up_map *m);
void up_unmap(up_map *m);

/* path = dir + "/" + name into out (cap bytes); fails if it does not fit. */
up_status up_path_join(char *out, size_t cap, const char *dir, const char *name);
int up_file_exists(const char *path);
/* dir (cap bytes) = the directory part of path: "." when it has none, "/" for "/x" */
void up_path_dirname(const char *path, char *dir, size_t cap);

/* SplitMix64's output function of x + golden gamma: a stateless hash that
 * makes every seeded choice (data order, masks, initial weights) repeatable.
 * A stream is up_mix64(s++). */
static inline uint64_t up_mix64(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

/* The library's one random stream: up_mix64 of a state that advances by inc
 * (1: the counter stream up_mix64(s++) used everywhere; the golden gamma: the
 * classic SplitMix64 sequence of the validation carve-out). */
typedef struct {
    uint64_t s, inc;
} up_rng;
static inline up_rng up_rng_seed(uint64_t seed) { return (up_rng){seed, 1}; }
static inline uint64_t up_rng_next(up_rng *r) {
    uint64_t x = up_mix64(r->s);
    r->s += r->inc;
    return x;
}
/* uniform in [0, 1) with 53 random bits */
static inline double up_rng_unit(up_rng *r) { return (double)(up_rng_next(r) >> 11) / 9007199254740992.0; }
/* uniform in [0, m), m >= 1, by rejection (no modulo bias) */
uint64_t up_rng_below(up_rng *r, uint64_t m);
/* standard normal (Box-Muller, two draws) */
float up_rng_normal(up_rng *r);

/* Monotonic seconds. */
double up_now(void);

#endif
