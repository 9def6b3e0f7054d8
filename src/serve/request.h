/*
 * request.h: the JSON bodies of the serving API, parsed and checked.
 *
 *   POST /v1/classify  {"task": "sst2", "inputs": ["a text", ["premise", "hypothesis"]]}
 *   POST /v1/experts   {"name": "sst2"}
 *
 * A parse returns an HTTP status: 200 (parsed), 400 (malformed JSON, wrong
 * types, empty or bad fields) or 413 (more inputs or longer texts than the
 * limits), with a one-line message for the JSON error body. The parser owns
 * copies of the strings; it never trusts a length or a type it has not checked
 * (fuzz/fuzz_request.c).
 */
#ifndef UP_REQUEST_H
#define UP_REQUEST_H

#include <stddef.h>

#include "unplug_serve.h" /* up_req_limits */

typedef struct {
    char task[32];         /* "" when the request names none (the router picks) */
    int n;
    char **a, **b;         /* (n); b[i] NULL for single texts */
} up_req;

/* Parses body (len bytes, not NUL-terminated). On 200 fills r (free with
 * up_req_free); otherwise r is empty and msg (msg_len bytes) says why. */
int up_req_parse_classify(const char *body, size_t len, const up_req_limits *lim, up_req *r, char *msg,
                          size_t msg_len);
void up_req_free(up_req *r);

/* {"name": "..."}: the expert file name to plug, checked with up_req_name_ok. */
int up_req_parse_plug(const char *body, size_t len, char *name, size_t name_len, char *msg, size_t msg_len);

/* A name that can only mean a file directly inside the experts directory:
 * 1..64 characters of [A-Za-z0-9_.-], not starting with '.', no "..". */
int up_req_name_ok(const char *name);

/* JSON string escaping into out (NUL-terminated, truncated to cap); returns
 * the length written. */
size_t up_json_escape(const char *s, char *out, size_t cap);

#endif
