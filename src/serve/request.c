/*
 * request.c: parse and check the serving API's JSON bodies (request.h) with
 * jansson: it validates UTF-8, rejects NUL in strings and bounds nesting.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "serve/request.h"

#define FAIL(code, ...) do { snprintf(msg, msg_len, __VA_ARGS__); rc = (code); goto done; } while (0)

static const char *kind(const json_t *v) {
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: case JSON_REAL: return "a number";
    case JSON_TRUE: case JSON_FALSE: return "a boolean";
    default: return "null";
    }
}

/* the first bytes of s that fit cap (NUL included) without splitting a
 * UTF-8 sequence (s is valid UTF-8: jansson checked it) */
static void cut_utf8(char *out, size_t cap, const char *s) {
    size_t n = strlen(s);
    if (n >= cap) {
        n = cap - 1;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80) n--; /* s[n] would start the cut-off part */
    }
    memcpy(out, s, n);
    out[n] = 0;
}

static json_t *load(const char *body, size_t len, char *msg, size_t msg_len) {
    json_error_t err;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &err);
    if (!root) snprintf(msg, msg_len, "malformed JSON at line %d column %d: %s", err.line, err.column, err.text);
    else if (!json_is_object(root)) {
        snprintf(msg, msg_len, "the body must be a JSON object, got %s", kind(root));
        json_decref(root);
        root = NULL;
    }
    return root;
}

/* a string field of an input: checked and copied */
static int take_text(const json_t *v, const up_req_limits *lim, int i, const char *what, char **out, char *msg,
                     size_t msg_len) {
    if (!json_is_string(v)) {
        snprintf(msg, msg_len, "inputs[%d]%s must be a string, got %s", i, what, kind(v));
        return 400;
    }
    size_t n = json_string_length(v);
    if (n > lim->max_text) {
        snprintf(msg, msg_len, "inputs[%d]%s has %zu bytes, the limit is %zu", i, what, n, lim->max_text);
        return 413;
    }
    if (!(*out = malloc(n + 1))) {
        snprintf(msg, msg_len, "out of memory");
        return 500;
    }
    memcpy(*out, json_string_value(v), n + 1);
    return 200;
}

int up_req_parse_classify(const char *body, size_t len, const up_req_limits *lim, up_req *r, char *msg,
                          size_t msg_len) {
    memset(r, 0, sizeof *r);
    int rc = 200;
    json_t *root = load(body, len, msg, msg_len);
    if (!root) return 400;
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v)
        if (strcmp(key, "task") && strcmp(key, "inputs")) {
            char k[68];
            cut_utf8(k, sizeof k, key);
            FAIL(400, "unknown field '%s' (expected task, inputs)", k);
        }
    json_t *task = json_object_get(root, "task"), *inputs = json_object_get(root, "inputs");
    if (task && !json_is_null(task)) {
        if (!json_is_string(task)) FAIL(400, "task must be a string, got %s", kind(task));
        size_t n = json_string_length(task);
        if (n == 0 || n >= sizeof r->task) FAIL(400, "task must be 1..%zu characters", sizeof r->task - 1);
        memcpy(r->task, json_string_value(task), n + 1);
    }
    if (!inputs) FAIL(400, "missing field 'inputs' (an array of texts or [text_a, text_b] pairs)");
    if (!json_is_array(inputs)) FAIL(400, "inputs must be an array, got %s", kind(inputs));
    size_t n = json_array_size(inputs);
    if (n == 0) FAIL(400, "inputs is empty");
    if (n > (size_t)lim->max_inputs) FAIL(413, "%zu inputs, the limit is %d per request", n, lim->max_inputs);
    r->a = calloc(n, sizeof *r->a);
    r->b = calloc(n, sizeof *r->b);
    if (!r->a || !r->b) FAIL(500, "out of memory");
    r->n = (int)n;
    for (int i = 0; i < r->n; i++) {
        json_t *x = json_array_get(inputs, (size_t)i);
        if (json_is_array(x)) {
            if (json_array_size(x) != 2)
                FAIL(400, "inputs[%d] must be a text or a [text_a, text_b] pair, got an array of %zu", i,
                     json_array_size(x));
            if ((rc = take_text(json_array_get(x, 0), lim, i, "[0]", &r->a[i], msg, msg_len)) != 200) goto done;
            if ((rc = take_text(json_array_get(x, 1), lim, i, "[1]", &r->b[i], msg, msg_len)) != 200) goto done;
        } else if ((rc = take_text(x, lim, i, "", &r->a[i], msg, msg_len)) != 200) {
            if (!json_is_string(x)) snprintf(msg, msg_len, "inputs[%d] must be a text or a [text_a, text_b] pair, got %s", i, kind(x));
            goto done;
        }
    }
done:
    json_decref(root);
    if (rc != 200) up_req_free(r);
    return rc;
}

void up_req_free(up_req *r) {
    for (int i = 0; i < r->n; i++) {
        if (r->a) free(r->a[i]);
        if (r->b) free(r->b[i]);
    }
    free(r->a);
    free(r->b);
    memset(r, 0, sizeof *r);
}

int up_req_name_ok(const char *name) {
    size_t n = strlen(name);
    if (n == 0 || n > 64 || name[0] == '.' || strstr(name, "..")) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
              c == '.'))
            return 0;
    }
    return 1;
}

int up_req_parse_plug(const char *body, size_t len, char *name, size_t name_len, char *msg, size_t msg_len) {
    int rc = 200;
    name[0] = 0;
    json_t *root = load(body, len, msg, msg_len);
    if (!root) return 400;
    if (!json_is_object(root)) FAIL(400, "the body must be a JSON object {\"name\": \"TASK\"}, got %s", kind(root));
    const char *key;
    json_t *any;
    json_object_foreach(root, key, any)
        if (strcmp(key, "name")) FAIL(400, "unknown field '%.64s': the body is {\"name\": \"TASK\"}", key);
    json_t *v = json_object_get(root, "name");
    if (!v) FAIL(400, "missing field 'name' (an expert file in the experts directory, without .expert)");
    if (!json_is_string(v)) FAIL(400, "name must be a string, got %s", kind(v));
    const char *s = json_string_value(v);
    if (json_string_length(v) >= name_len || strlen(s) != json_string_length(v) || !up_req_name_ok(s))
        FAIL(400, "name must be a plain file name (letters, digits, '_', '-', '.'; no leading '.', no '..')");
    snprintf(name, name_len, "%s", s);
done:
    json_decref(root);
    return rc;
}

size_t up_json_escape(const char *s, char *out, size_t cap) {
    size_t o = 0;
    if (cap == 0) return 0;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        char tmp[8];
        const char *rep = NULL;
        if (c == '"') rep = "\\\"";
        else if (c == '\\') rep = "\\\\";
        else if (c == '\n') rep = "\\n";
        else if (c == '\t') rep = "\\t";
        else if (c == '\r') rep = "\\r";
        else if (c < 0x20) { snprintf(tmp, sizeof tmp, "\\u%04x", c); rep = tmp; }
        size_t k = rep ? strlen(rep) : 1;
        if (o + k + 1 > cap) break;
        if (rep) memcpy(out + o, rep, k);
        else out[o] = (char)c;
        o += k;
    }
    out[o] = 0;
    return o;
}
