/*
 * test_config.c: config.json parsing: a full BertConfig, defaults, every
 * validation error with its status and message, id2label, size limits.
 *
 *     test_config <source dir>
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <unistd.h>

#include "test.h"

#define CHECK_ST(expr, code, ...) do { up_status s2_ = (expr); \
    CHECK_MSG(s2_ == (code), "status %s, expected %s (%s)", up_status_name(s2_), up_status_name(code), up_errmsg()); \
    CHECK_FAIL(s2_, __VA_ARGS__); } while (0)

static up_config g_cfg;

static up_status parse(const char *json) {
    memset(&g_cfg, 0x5a, sizeof g_cfg);
    return up_config_parse("config.json", json, strlen(json), &g_cfg);
}

/* {"model_type": "bert", <extra>} */
static up_status parse_with(const char *extra) {
    char buf[4096];
    snprintf(buf, sizeof buf, "{\"model_type\": \"bert\", %s}", extra);
    return parse(buf);
}

/* The log lines of the last parse, for checks on what defaults were reported. */
static char g_log[8192];
static void capture(int level, const char *msg, void *user) {
    (void)level, (void)user;
    size_t n = strlen(g_log);
    snprintf(g_log + n, sizeof g_log - n, "%s\n", msg);
}

static void test_full(void) {
    const char *full =
        "{\n"
        "  \"_name_or_path\": \"bert-base-uncased\",\n"
        "  \"architectures\": [\"BertForSequenceClassification\"],\n"
        "  \"attention_probs_dropout_prob\": 0.1,\n"
        "  \"classifier_dropout\": null,\n"
        "  \"gradient_checkpointing\": false,\n"
        "  \"hidden_act\": \"gelu\",\n"
        "  \"hidden_dropout_prob\": 0.1,\n"
        "  \"hidden_size\": 384,\n"
        "  \"id2label\": {\"0\": \"negative\", \"1\": \"neutral\", \"2\": \"positive\"},\n"
        "  \"label2id\": {\"negative\": 0, \"neutral\": 1, \"positive\": 2},\n"
        "  \"initializer_range\": 0.02,\n"
        "  \"intermediate_size\": 1536,\n"
        "  \"layer_norm_eps\": 1e-05,\n"
        "  \"max_position_embeddings\": 256,\n"
        "  \"model_type\": \"bert\",\n"
        "  \"num_attention_heads\": 6,\n"
        "  \"num_hidden_layers\": 4,\n"
        "  \"pad_token_id\": 3,\n"
        "  \"position_embedding_type\": \"absolute\",\n"
        "  \"problem_type\": \"single_label_classification\",\n"
        "  \"torch_dtype\": \"float32\",\n"
        "  \"transformers_version\": \"4.40.0\",\n"
        "  \"type_vocab_size\": 3,\n"
        "  \"use_cache\": true,\n"
        "  \"vocab_size\": 1000\n"
        "}\n";
    g_log[0] = 0;
    up_set_log(capture, NULL, UP_LOG_DEBUG);
    CHECK_OK(parse(full));
    up_set_log(NULL, NULL, -1);
    CHECK(strcmp(g_cfg.model_type, "bert") == 0);
    CHECK(g_cfg.vocab_size == 1000 && g_cfg.hidden_size == 384 && g_cfg.num_hidden_layers == 4);
    CHECK(g_cfg.num_attention_heads == 6 && g_cfg.intermediate_size == 1536);
    CHECK(g_cfg.max_position_embeddings == 256 && g_cfg.type_vocab_size == 3);
    CHECK(g_cfg.layer_norm_eps == 1e-5f && g_cfg.hidden_act == UP_ACT_GELU && g_cfg.pad_token_id == 3);
    CHECK(g_cfg.num_labels == 3);
    CHECK(strcmp(g_cfg.labels[0], "negative") == 0 && strcmp(g_cfg.labels[1], "neutral") == 0 &&
          strcmp(g_cfg.labels[2], "positive") == 0);
    CHECK(strstr(g_log, "BertForSequenceClassification") != NULL);
    CHECK(strstr(g_log, "defaults") == NULL);

    /* through a file */
    char dir[] = "/tmp/up_test_cfg_XXXXXX", path[64];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = fopen(path, "wb");
    fputs(full, f);
    fclose(f);
    up_config c;
    CHECK_OK(up_config_load(path, &c));
    CHECK(c.hidden_size == 384 && c.num_labels == 3);

    /* 17 MB: rejected before parsing */
    f = fopen(path, "wb");
    fputs("{\"pad\": \"", f);
    for (int i = 0; i < 17 * 1024; i++) {
        char k[1024];
        memset(k, 'x', sizeof k);
        fwrite(k, 1, sizeof k, f);
    }
    fputs("\"}", f);
    fclose(f);
    CHECK_ST(up_config_load(path, &c), UP_ERR_FORMAT, "config.json", "expected at most 16777216");
    char *big = malloc(17u << 20);
    memset(big, ' ', 17u << 20);
    big[0] = '{', big[1] = '}';
    CHECK_ST(up_config_parse("big.json", big, 17u << 20, &c), UP_ERR_FORMAT, "big.json", "16 MB");
    free(big);
    unlink(path);
    snprintf(path, sizeof path, "%s/missing.json", dir);
    CHECK_ST(up_config_load(path, &c), UP_ERR_IO, "missing.json", "cannot open");
    rmdir(dir);
}

static void test_defaults(void) {
    g_log[0] = 0;
    up_set_log(capture, NULL, UP_LOG_INFO);
    CHECK_OK(parse("{}"));
    up_set_log(NULL, NULL, -1);
    CHECK(strcmp(g_cfg.model_type, "bert") == 0);
    CHECK(g_cfg.vocab_size == 30522 && g_cfg.hidden_size == 768 && g_cfg.num_hidden_layers == 12);
    CHECK(g_cfg.num_attention_heads == 12 && g_cfg.intermediate_size == 3072);
    CHECK(g_cfg.max_position_embeddings == 512 && g_cfg.type_vocab_size == 2);
    CHECK(g_cfg.layer_norm_eps == 1e-12f && g_cfg.hidden_act == UP_ACT_GELU && g_cfg.pad_token_id == 0);
    CHECK(g_cfg.num_labels == 0);
    CHECK_MSG(strstr(g_log, "assuming \"bert\"") != NULL, "log: %s", g_log);
    CHECK_MSG(strstr(g_log, "vocab_size=30522") && strstr(g_log, "hidden_act=gelu") &&
              strstr(g_log, "layer_norm_eps=1e-12") && strstr(g_log, "pad_token_id=0"), "log: %s", g_log);

    g_log[0] = 0;
    up_set_log(capture, NULL, UP_LOG_INFO);
    CHECK_OK(parse_with("\"hidden_size\": 256, \"num_attention_heads\": 4"));
    up_set_log(NULL, NULL, -1);
    CHECK(g_cfg.hidden_size == 256 && g_cfg.num_attention_heads == 4 && g_cfg.num_hidden_layers == 12);
    CHECK(strstr(g_log, "hidden_size=") == NULL && strstr(g_log, "num_hidden_layers=12"));

    /* integral reals are integers, integers are reals */
    CHECK_OK(parse_with("\"hidden_size\": 768.0, \"vocab_size\": 1e3"));
    CHECK(g_cfg.hidden_size == 768 && g_cfg.vocab_size == 1000);
    CHECK_OK(parse_with("\"pad_token_id\": null"));
    CHECK(g_cfg.pad_token_id == 0);
    CHECK_OK(parse_with("\"architectures\": 5"));
}

static void test_errors(void) {
    CHECK_ST(parse_with("\"hidden_size\": \"768\""), UP_ERR_FORMAT, "config.json", "'hidden_size'",
             "expected an integer", "string \"768\"");
    CHECK_ST(parse_with("\"num_hidden_layers\": true"), UP_ERR_FORMAT, "'num_hidden_layers'", "boolean true");
    CHECK_ST(parse_with("\"vocab_size\": null"), UP_ERR_FORMAT, "'vocab_size'", "null");
    CHECK_ST(parse_with("\"intermediate_size\": [3072]"), UP_ERR_FORMAT, "'intermediate_size'", "array");
    CHECK_ST(parse_with("\"hidden_size\": 768.5"), UP_ERR_FORMAT, "'hidden_size'", "768.5", "fractional");
    CHECK_ST(parse_with("\"hidden_size\": 0"), UP_ERR_INVALID, "'hidden_size'", "1..65536", "found 0");
    CHECK_ST(parse_with("\"hidden_size\": 65537"), UP_ERR_INVALID, "'hidden_size'", "1..65536", "found 65537");
    CHECK_ST(parse_with("\"hidden_size\": -768"), UP_ERR_INVALID, "'hidden_size'", "found -768");
    CHECK_ST(parse_with("\"hidden_size\": 1e300"), UP_ERR_INVALID, "'hidden_size'", "1..65536", "1e+300");
    CHECK_ST(parse_with("\"num_hidden_layers\": 0"), UP_ERR_INVALID, "'num_hidden_layers'", "1..1024");
    CHECK_ST(parse_with("\"num_hidden_layers\": 1025"), UP_ERR_INVALID, "'num_hidden_layers'", "found 1025");
    CHECK_ST(parse_with("\"num_attention_heads\": 0"), UP_ERR_INVALID, "'num_attention_heads'", "1..1024");
    CHECK_ST(parse_with("\"num_attention_heads\": 2048"), UP_ERR_INVALID, "'num_attention_heads'", "1..1024");
    CHECK_ST(parse_with("\"intermediate_size\": 1048577"), UP_ERR_INVALID, "'intermediate_size'", "1..1048576");
    CHECK_ST(parse_with("\"vocab_size\": 0"), UP_ERR_INVALID, "'vocab_size'", "1..10000000");
    CHECK_ST(parse_with("\"vocab_size\": 10000001"), UP_ERR_INVALID, "'vocab_size'", "found 10000001");
    CHECK_ST(parse_with("\"max_position_embeddings\": 0"), UP_ERR_INVALID, "'max_position_embeddings'",
             "1..1048576");
    CHECK_ST(parse_with("\"max_position_embeddings\": 2000000"), UP_ERR_INVALID, "found 2000000");
    CHECK_ST(parse_with("\"type_vocab_size\": 0"), UP_ERR_INVALID, "'type_vocab_size'", "1..1024");
    CHECK_ST(parse_with("\"type_vocab_size\": 99999999999999999999"), UP_ERR_FORMAT, "invalid JSON");
    CHECK_ST(parse_with("\"hidden_size\": 768, \"num_attention_heads\": 10"), UP_ERR_INVALID, "hidden_size 768",
             "not a multiple of num_attention_heads 10");
    CHECK_ST(parse_with("\"pad_token_id\": 30522"), UP_ERR_INVALID, "'pad_token_id'", "0..30521");
    CHECK_ST(parse_with("\"vocab_size\": 100, \"pad_token_id\": -1"), UP_ERR_INVALID, "'pad_token_id'", "0..99");
    CHECK_ST(parse_with("\"pad_token_id\": \"0\""), UP_ERR_FORMAT, "'pad_token_id'", "string");

    CHECK_ST(parse_with("\"layer_norm_eps\": 0"), UP_ERR_INVALID, "'layer_norm_eps'", "0 < eps < 1", "integer 0");
    CHECK_ST(parse_with("\"layer_norm_eps\": -1e-12"), UP_ERR_INVALID, "'layer_norm_eps'", "-1e-12");
    CHECK_ST(parse_with("\"layer_norm_eps\": 1"), UP_ERR_INVALID, "'layer_norm_eps'");
    CHECK_ST(parse_with("\"layer_norm_eps\": 1e-60"), UP_ERR_INVALID, "'layer_norm_eps'", "float32");
    CHECK_ST(parse_with("\"layer_norm_eps\": \"1e-12\""), UP_ERR_FORMAT, "'layer_norm_eps'", "expected a number",
             "string");
    CHECK_ST(parse_with("\"layer_norm_eps\": 1e999"), UP_ERR_FORMAT, "invalid JSON");
    CHECK_ST(parse_with("\"layer_norm_eps\": NaN"), UP_ERR_FORMAT, "invalid JSON");

    CHECK_OK(parse_with("\"hidden_act\": \"gelu_new\""));
    CHECK(g_cfg.hidden_act == UP_ACT_GELU_NEW);
    CHECK_OK(parse_with("\"hidden_act\": \"relu\""));
    CHECK(g_cfg.hidden_act == UP_ACT_RELU);
    CHECK_OK(parse_with("\"hidden_act\": \"gelu_python\""));
    CHECK(g_cfg.hidden_act == UP_ACT_GELU);
    CHECK_OK(parse_with("\"hidden_act\": \"gelu_pytorch_tanh\""));
    CHECK(g_cfg.hidden_act == UP_ACT_GELU_NEW);
    CHECK_ST(parse_with("\"hidden_act\": \"swish\""), UP_ERR_UNSUPPORTED, "'hidden_act'", "\"swish\"",
             "not supported", "gelu", "gelu_new", "relu");
    CHECK_ST(parse_with("\"hidden_act\": 1"), UP_ERR_FORMAT, "'hidden_act'", "expected a string", "integer 1");

    CHECK_ST(parse("{\"model_type\": \"gpt2\"}"), UP_ERR_UNSUPPORTED, "'model_type'", "\"gpt2\"",
             "not supported", "\"bert\"");
    CHECK_ST(parse("{\"model_type\": 3}"), UP_ERR_FORMAT, "'model_type'", "expected a string");
    CHECK_ST(parse_with("\"position_embedding_type\": \"relative_key\""), UP_ERR_UNSUPPORTED, "relative_key",
             "absolute");
    CHECK_ST(parse_with("\"is_decoder\": true"), UP_ERR_UNSUPPORTED, "is_decoder");

    CHECK_ST(parse("{\"hidden_size\": 768,\n \"vocab_size\": }"), UP_ERR_FORMAT, "config.json", "invalid JSON",
             "line 2", "column");
    CHECK_ST(parse(""), UP_ERR_FORMAT, "invalid JSON", "line");
    CHECK_ST(parse("{\"a\": 1, \"a\": 2}"), UP_ERR_FORMAT, "invalid JSON", "duplicate");
    CHECK_ST(parse("[768]"), UP_ERR_FORMAT, "expected a JSON object", "array");
    CHECK_ST(parse("\"bert\""), UP_ERR_FORMAT, "expected a JSON object", "string");
    CHECK_ST(parse("{} {}"), UP_ERR_FORMAT, "invalid JSON");
    /* a failed parse leaves the output alone */
    up_config c;
    memset(&c, 0x11, sizeof c);
    CHECK(up_config_parse("x", "{\"hidden_size\": 0}", 18, &c) != UP_OK);
    CHECK(c.hidden_size == 0x1111111111111111);
}

static void test_labels(void) {
    CHECK_OK(parse_with("\"id2label\": {\"1\": \"pos\", \"0\": \"neg\"}"));
    CHECK(g_cfg.num_labels == 2 && strcmp(g_cfg.labels[0], "neg") == 0 && strcmp(g_cfg.labels[1], "pos") == 0);
    CHECK_OK(parse_with("\"num_labels\": 3"));
    CHECK(g_cfg.num_labels == 3 && strcmp(g_cfg.labels[2], "LABEL_2") == 0);
    CHECK_OK(parse_with("\"id2label\": {\"0\": \"a\", \"1\": \"b\"}, \"num_labels\": 2"));
    CHECK(g_cfg.num_labels == 2);
    CHECK_OK(parse_with("\"id2label\": {}"));
    CHECK(g_cfg.num_labels == 0);
    /* 31 bytes fit, 32 do not */
    CHECK_OK(parse_with("\"id2label\": {\"0\": \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}"));
    CHECK(strlen(g_cfg.labels[0]) == 31);
    CHECK_ST(parse_with("\"id2label\": {\"0\": \"a\", \"1\": \"a_label_name_longer_than_31_bytes\"}"),
             UP_ERR_UNSUPPORTED, "id2label[\"1\"]", "a_label_name_longer_than_31_bytes", "33 bytes",
             "at most 31");
    CHECK_ST(parse_with("\"id2label\": {\"0\": \"a\", \"2\": \"b\"}"), UP_ERR_FORMAT, "id2label", "\"2\"",
             "0..1");
    CHECK_ST(parse_with("\"id2label\": {\"0\": \"a\", \"01\": \"b\"}"), UP_ERR_FORMAT, "\"01\"");
    CHECK_ST(parse_with("\"id2label\": {\"0\": \"a\", \"x\": \"b\"}"), UP_ERR_FORMAT, "\"x\"");
    CHECK_ST(parse_with("\"id2label\": {\"-1\": \"a\"}"), UP_ERR_FORMAT, "\"-1\"");
    CHECK_ST(parse_with("\"id2label\": {\"0\": 5}"), UP_ERR_FORMAT, "id2label[\"0\"]", "expected a string");
    CHECK_ST(parse_with("\"id2label\": [\"a\"]"), UP_ERR_FORMAT, "'id2label'", "expected an object", "array");
    CHECK_ST(parse_with("\"id2label\": {\"0\": \"a\"}, \"num_labels\": 2"), UP_ERR_INVALID, "'num_labels' is 2",
             "1 labels");
    CHECK_ST(parse_with("\"num_labels\": 65"), UP_ERR_INVALID, "'num_labels'", "1..64");
    CHECK_ST(parse_with("\"num_labels\": \"2\""), UP_ERR_FORMAT, "'num_labels'");
    char buf[4096];
    for (int count = 64; count <= 65; count++) {
        size_t n = (size_t)snprintf(buf, sizeof buf, "\"id2label\": {");
        for (int i = 0; i < count; i++)
            n += (size_t)snprintf(buf + n, sizeof buf - n, "%s\"%d\": \"l%d\"", i ? "," : "", i, i);
        snprintf(buf + n, sizeof buf - n, "}");
        if (count == 65) CHECK_ST(parse_with(buf), UP_ERR_UNSUPPORTED, "id2label", "65 labels", "at most 64");
    }
    strcpy(strrchr(buf, ','), "}"); /* drop the 65th entry: 64 labels fit */
    CHECK_OK(parse_with(buf));
    CHECK(g_cfg.num_labels == 64 && strcmp(g_cfg.labels[63], "l63") == 0);
}

int main(int argc, char **argv) {
    (void)argc, (void)argv;
    up_set_log(NULL, NULL, -1);
    test_full();
    test_defaults();
    test_errors();
    test_labels();
    return test_done();
}
