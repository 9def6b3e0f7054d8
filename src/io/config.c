/*
 * config.c: config.json (Hugging Face BertConfig) -> up_config, validated.
 *
 * Missing fields take the family's defaults (BertConfig's for "bert") and are
 * logged at info level; present fields must have the right JSON type and a
 * sane range, and the message of a failure names the file, the field, the
 * expected and the found value.
 */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"

#define CFG_MAX_BYTES ((size_t)16 << 20)

/* Encoder families we can run. Another family with the same layout is one
 * more row here (its weight names are the model loader's business). */
static const struct {
    const char *model_type;
    up_config defaults;
} g_families[] = {
    {"bert",
     {.model_type = "bert", .vocab_size = 30522, .hidden_size = 768, .num_hidden_layers = 12,
      .num_attention_heads = 12, .intermediate_size = 3072, .max_position_embeddings = 512,
      .type_vocab_size = 2, .layer_norm_eps = 1e-12f, .hidden_act = UP_ACT_GELU, .pad_token_id = 0}},
};
#define N_FAMILIES (sizeof g_families / sizeof *g_families)

/* hidden_act spellings of transformers' ACT2FN that we implement */
static const struct {
    const char *name;
    up_act act;
} g_acts[] = {
    {"gelu", UP_ACT_GELU},
    {"gelu_new", UP_ACT_GELU_NEW},
    {"relu", UP_ACT_RELU},
    {"gelu_python", UP_ACT_GELU},           /* the erf gelu written in Python */
    {"gelu_pytorch_tanh", UP_ACT_GELU_NEW}, /* the tanh approximation, fused */
};
#define N_ACTS (sizeof g_acts / sizeof *g_acts)

static const char *type_name(const json_t *v) {
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "object";
    case JSON_ARRAY: return "array";
    case JSON_STRING: return "string";
    case JSON_INTEGER: return "integer";
    case JSON_REAL: return "real";
    case JSON_TRUE:
    case JSON_FALSE: return "boolean";
    case JSON_NULL: return "null";
    }
    return "unknown";
}

/* "string \"768\"" etc. for messages */
static const char *describe(const json_t *v, char *buf, size_t cap) {
    switch (json_typeof(v)) {
    case JSON_STRING: snprintf(buf, cap, "string \"%.40s\"", json_string_value(v)); break;
    case JSON_INTEGER: snprintf(buf, cap, "integer %lld", (long long)json_integer_value(v)); break;
    case JSON_REAL: {
        /* shortest of %g and %.17g that reads back as the same double */
        double x = json_real_value(v);
        snprintf(buf, cap, "real %g", x);
        if (strtod(buf + 5, NULL) != x) snprintf(buf, cap, "real %.17g", x);
        break;
    }
    case JSON_TRUE: snprintf(buf, cap, "boolean true"); break;
    case JSON_FALSE: snprintf(buf, cap, "boolean false"); break;
    default: snprintf(buf, cap, "%s", type_name(v)); break;
    }
    return buf;
}

/* Names of the fields that took defaults, for one info line. */
typedef struct {
    char text[512];
    size_t n;
} defaults_used;

static void note_default(defaults_used *u, const char *field, const char *value) {
    if (u->n < sizeof u->text)
        u->n += (size_t)snprintf(u->text + u->n, sizeof u->text - u->n, "%s%s=%s", u->n ? ", " : "", field, value);
}

/* An integer field in [lo, hi]; integral reals (768.0) are accepted. */
static up_status get_int(const char *path, const json_t *root, const char *field, int64_t lo, int64_t hi,
                         int64_t *out, defaults_used *u) {
    char d[96];
    const json_t *v = json_object_get(root, field);
    if (!v) {
        char s[32];
        snprintf(s, sizeof s, "%lld", (long long)*out);
        note_default(u, field, s);
        return UP_OK;
    }
    long long x;
    if (json_is_integer(v)) {
        x = json_integer_value(v);
    } else if (json_is_real(v)) {
        double r = json_real_value(v);
        if (r != floor(r))
            return up_fail(UP_ERR_FORMAT, "%s: field '%s': expected an integer, found %s (it has a fractional part)",
                           path, field, describe(v, d, sizeof d));
        if (!(r >= (double)lo && r <= (double)hi))
            return up_fail(UP_ERR_INVALID, "%s: field '%s': expected an integer in %lld..%lld, found %s", path,
                           field, (long long)lo, (long long)hi, describe(v, d, sizeof d));
        x = (long long)r;
    } else {
        return up_fail(UP_ERR_FORMAT, "%s: field '%s': expected an integer, found %s", path, field,
                       describe(v, d, sizeof d));
    }
    if (x < lo || x > hi)
        return up_fail(UP_ERR_INVALID, "%s: field '%s': expected an integer in %lld..%lld, found %lld", path,
                       field, (long long)lo, (long long)hi, x);
    *out = x;
    return UP_OK;
}

/* A string field; *out untouched (and NULL-able) when absent. */
static up_status get_string(const char *path, const json_t *root, const char *field, const char **out) {
    const json_t *v = json_object_get(root, field);
    if (!v) return UP_OK;
    if (!json_is_string(v)) {
        char d[96];
        return up_fail(UP_ERR_FORMAT, "%s: field '%s': expected a string, found %s", path, field,
                       describe(v, d, sizeof d));
    }
    *out = json_string_value(v);
    return UP_OK;
}

static up_status parse_model_type(const char *path, const json_t *root, up_config *c) {
    const char *mt = NULL;
    up_status st = get_string(path, root, "model_type", &mt);
    if (st != UP_OK) return st;
    if (!mt) {
        mt = "bert";
        up_log(UP_LOG_INFO, "%s: no 'model_type', assuming \"bert\"", path);
    }
    for (size_t i = 0; i < N_FAMILIES; i++)
        if (strcmp(mt, g_families[i].model_type) == 0) {
            *c = g_families[i].defaults;
            return UP_OK;
        }
    char list[256] = "";
    for (size_t i = 0, n = 0; i < N_FAMILIES && n < sizeof list; i++)
        n += (size_t)snprintf(list + n, sizeof list - n, "%s\"%s\"", i ? ", " : "", g_families[i].model_type);
    return up_fail(UP_ERR_UNSUPPORTED, "%s: field 'model_type': \"%.60s\" is not supported, expected one of %s",
                   path, mt, list);
}

static up_status parse_act(const char *path, const json_t *root, up_config *c, defaults_used *u) {
    const char *a = NULL;
    up_status st = get_string(path, root, "hidden_act", &a);
    if (st != UP_OK) return st;
    if (!a) {
        for (size_t i = 0; i < N_ACTS; i++)
            if (g_acts[i].act == c->hidden_act) {
                note_default(u, "hidden_act", g_acts[i].name);
                break;
            }
        return UP_OK;
    }
    for (size_t i = 0; i < N_ACTS; i++)
        if (strcmp(a, g_acts[i].name) == 0) {
            c->hidden_act = g_acts[i].act;
            return UP_OK;
        }
    char list[256] = "";
    for (size_t i = 0, n = 0; i < N_ACTS && n < sizeof list; i++)
        n += (size_t)snprintf(list + n, sizeof list - n, "%s\"%s\"", i ? ", " : "", g_acts[i].name);
    return up_fail(UP_ERR_UNSUPPORTED, "%s: field 'hidden_act': \"%.60s\" is not supported, expected one of %s",
                   path, a, list);
}

static up_status parse_eps(const char *path, const json_t *root, up_config *c, defaults_used *u) {
    const json_t *v = json_object_get(root, "layer_norm_eps");
    char d[96];
    if (!v) {
        snprintf(d, sizeof d, "%g", (double)c->layer_norm_eps);
        note_default(u, "layer_norm_eps", d);
        return UP_OK;
    }
    if (!json_is_number(v))
        return up_fail(UP_ERR_FORMAT, "%s: field 'layer_norm_eps': expected a number, found %s", path,
                       describe(v, d, sizeof d));
    double x = json_number_value(v);
    float f = (float)x;
    if (!(isfinite(x) && x > 0 && x < 1 && f > 0))
        return up_fail(UP_ERR_INVALID,
                       "%s: field 'layer_norm_eps': expected a finite number with 0 < eps < 1 (and > 0 in "
                       "float32), found %s",
                       path, describe(v, d, sizeof d));
    c->layer_norm_eps = f;
    return UP_OK;
}

/* id -> label from the decimal keys of id2label ("0".."n-1"). */
static up_status parse_labels(const char *path, const json_t *root, up_config *c) {
    char d[96];
    const json_t *jl = json_object_get(root, "id2label");
    const json_t *jn = json_object_get(root, "num_labels");
    int64_t num = -1;
    if (jn) {
        defaults_used ignore = {0};
        up_status st = get_int(path, root, "num_labels", 1, UP_MAX_LABELS, &num, &ignore);
        if (st != UP_OK) return st;
    }
    if (!jl || json_is_null(jl)) {
        c->num_labels = num > 0 ? (int)num : 0;
        for (int i = 0; i < c->num_labels; i++) snprintf(c->labels[i], sizeof c->labels[i], "LABEL_%d", i);
        return UP_OK;
    }
    if (!json_is_object(jl))
        return up_fail(UP_ERR_FORMAT, "%s: field 'id2label': expected an object {\"0\": \"label\", ...}, found %s",
                       path, describe(jl, d, sizeof d));
    size_t n = json_object_size(jl);
    if (n > UP_MAX_LABELS)
        return up_fail(UP_ERR_UNSUPPORTED, "%s: field 'id2label': %zu labels, expected at most %d", path, n,
                       UP_MAX_LABELS);
    if (num >= 0 && (size_t)num != n)
        return up_fail(UP_ERR_INVALID, "%s: field 'num_labels' is %lld but 'id2label' has %zu labels", path,
                       (long long)num, n);
    int seen[UP_MAX_LABELS] = {0};
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)jl, key, v) {
        /* canonical decimal: "0", "17"; not "+1", "01", " 1" */
        char *end;
        long id = strtol(key, &end, 10);
        if (!key[0] || *end || key[0] < '0' || key[0] > '9' || (key[0] == '0' && key[1]) || id < 0 ||
            (size_t)id >= n)
            return up_fail(UP_ERR_FORMAT, "%s: field 'id2label': key \"%.40s\": expected a label id 0..%zu", path,
                           key, n - 1);
        if (seen[id]) /* unreachable with canonical keys and unique object keys; kept as a guard */
            return up_fail(UP_ERR_FORMAT, "%s: field 'id2label': id %ld appears twice", path, id);
        seen[id] = 1;
        if (!json_is_string(v))
            return up_fail(UP_ERR_FORMAT, "%s: field 'id2label[\"%ld\"]': expected a string, found %s", path, id,
                           describe(v, d, sizeof d));
        const char *s = json_string_value(v);
        if (strlen(s) >= sizeof c->labels[0])
            return up_fail(UP_ERR_UNSUPPORTED,
                           "%s: field 'id2label[\"%ld\"]': label \"%.60s%s\" is %zu bytes, expected at most %zu",
                           path, id, s, strlen(s) > 60 ? "..." : "", strlen(s), sizeof c->labels[0] - 1);
        memcpy(c->labels[id], s, strlen(s) + 1);
    }
    c->num_labels = (int)n;
    return UP_OK;
}

/* Fields that change the encoder's arithmetic in ways we do not implement. */
static up_status check_unsupported(const char *path, const json_t *root) {
    const char *pe = NULL;
    up_status st = get_string(path, root, "position_embedding_type", &pe);
    if (st != UP_OK) return st;
    if (pe && strcmp(pe, "absolute") != 0)
        return up_fail(UP_ERR_UNSUPPORTED,
                       "%s: field 'position_embedding_type': \"%.60s\" is not supported, expected \"absolute\"",
                       path, pe);
    const json_t *dec = json_object_get(root, "is_decoder");
    if (json_is_true(dec))
        return up_fail(UP_ERR_UNSUPPORTED,
                       "%s: field 'is_decoder' is true: causal (decoder) attention is not supported", path);
    return UP_OK;
}

static void log_architectures(const char *path, const json_t *root) {
    const json_t *a = json_object_get(root, "architectures");
    if (!json_is_array(a)) return;
    char buf[256] = "";
    size_t n = 0;
    for (size_t i = 0; i < json_array_size(a) && n < sizeof buf; i++)
        if (json_is_string(json_array_get(a, i)))
            n += (size_t)snprintf(buf + n, sizeof buf - n, "%s%.60s", n ? ", " : "",
                                  json_string_value(json_array_get(a, i)));
    if (n) up_log(UP_LOG_INFO, "%s: architectures: %s", path, buf);
}

static up_status parse_root(const char *path, const json_t *root, up_config *c) {
    up_status st = parse_model_type(path, root, c);
    if (st != UP_OK) return st;
    log_architectures(path, root);
    defaults_used u = {0};
    /* name, range, destination; ranges are generous but keep every product
     * of sizes the loader computes far from overflow */
    const struct {
        const char *field;
        int64_t lo, hi;
        int64_t *dst;
    } ints[] = {
        {"vocab_size", 1, 10000000, &c->vocab_size},
        {"hidden_size", 1, 65536, &c->hidden_size},
        {"num_hidden_layers", 1, 1024, &c->num_hidden_layers},
        {"num_attention_heads", 1, 1024, &c->num_attention_heads},
        {"intermediate_size", 1, 1048576, &c->intermediate_size},
        {"max_position_embeddings", 1, 1048576, &c->max_position_embeddings},
        {"type_vocab_size", 1, 1024, &c->type_vocab_size},
    };
    for (size_t i = 0; i < sizeof ints / sizeof *ints; i++) {
        st = get_int(path, root, ints[i].field, ints[i].lo, ints[i].hi, ints[i].dst, &u);
        if (st != UP_OK) return st;
    }
    if (c->hidden_size % c->num_attention_heads != 0)
        return up_fail(UP_ERR_INVALID,
                       "%s: hidden_size %lld is not a multiple of num_attention_heads %lld (head size would be "
                       "%.2f)",
                       path, (long long)c->hidden_size, (long long)c->num_attention_heads,
                       (double)c->hidden_size / (double)c->num_attention_heads);

    /* HF allows "pad_token_id": null; the pad id only matters for training */
    const json_t *jp = json_object_get(root, "pad_token_id");
    if (json_is_null(jp)) {
        note_default(&u, "pad_token_id", "0 (null in the file)");
    } else {
        st = get_int(path, root, "pad_token_id", 0, c->vocab_size - 1, &c->pad_token_id, &u);
        if (st != UP_OK) return st;
    }
    if ((st = parse_eps(path, root, c, &u)) != UP_OK) return st;
    if ((st = parse_act(path, root, c, &u)) != UP_OK) return st;
    if ((st = check_unsupported(path, root)) != UP_OK) return st;
    if ((st = parse_labels(path, root, c)) != UP_OK) return st;
    if (u.n) up_log(UP_LOG_INFO, "%s: missing fields, using %s defaults: %s", path, c->model_type, u.text);
    return UP_OK;
}

up_status up_config_parse(const char *path, const char *json, size_t len, up_config *out) {
    if (!path) path = "config.json";
    if (len > CFG_MAX_BYTES)
        return up_fail(UP_ERR_FORMAT, "%s: %zu bytes, expected at most %zu (16 MB) for a config.json", path, len,
                       CFG_MAX_BYTES);
    json_error_t jerr;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (!root)
        return up_fail(UP_ERR_FORMAT, "%s: invalid JSON at line %d, column %d: %s", path, jerr.line, jerr.column,
                       jerr.text);
    up_status st;
    up_config c;
    memset(&c, 0, sizeof c);
    if (!json_is_object(root))
        st = up_fail(UP_ERR_FORMAT, "%s: expected a JSON object at the top level, found %s", path,
                     type_name(root));
    else
        st = parse_root(path, root, &c);
    json_decref(root);
    if (st == UP_OK) *out = c;
    return st;
}

up_status up_config_load(const char *path, up_config *out) {
    char *buf;
    size_t len;
    up_status st = up_read_file(path, CFG_MAX_BYTES, &buf, &len);
    if (st != UP_OK) return st;
    st = up_config_parse(path, buf, len, out);
    free(buf);
    return st;
}
