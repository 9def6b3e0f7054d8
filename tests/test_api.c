/*
 * test_api.c: the pipeline through the public header only (unplug.h), as a
 * program that embeds libunplug calls it: rows in memory -> up_tune ->
 * up_localize -> classify, save/load, up_evaluate, the hub; and the errors
 * callers get for bad arguments.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "test.h"

/* the toy task of scripts/toy-task.py: a polar word decides the label */
static unsigned rng = 5;
static unsigned next(void) { return rng = rng * 1103515245u + 12345u, (rng >> 16) & 0x7fff; }
static const char *pos[] = {"good", "great", "fine"}, *neg[] = {"bad", "not good", "unable"};
static const char *fill[] = {"the film", "this movie", "the story", "that play", "it", "the act", "was", "is"};

typedef struct {
    char **text;
    const char **label;
    size_t n;
} rows;

static rows make_rows(size_t n) {
    rows r = {calloc(n, sizeof(char *)), calloc(n, sizeof(char *)), n};
    for (size_t i = 0; i < n; i++) {
        int y = next() % 2, k = 3 + next() % 4, at = next() % (k + 1);
        char buf[256] = "";
        for (int w = 0; w <= k; w++) {
            const char *word = w == at ? (y ? pos : neg)[next() % 3] : fill[next() % 8];
            strcat(buf, w ? " " : "");
            strcat(buf, word);
        }
        r.text[i] = strdup(buf);
        r.label[i] = y ? "positive" : "negative";
    }
    return r;
}

static void free_rows(rows *r) {
    for (size_t i = 0; i < r->n; i++) free(r->text[i]);
    free(r->text);
    free(r->label);
}

int main(int argc, char **argv) {
    const char *src = argc > 1 ? argv[1] : ".";
    char dir[1024], path[1100];
    snprintf(dir, sizeof dir, "%s/tests/data/models/bert-f32-gelu", src);
    CHECK(!strcmp(up_version(), UP_VERSION));

    up_model *m = NULL;
    up_model_opts mo = up_model_opts_default();
    mo.precision = UP_PREC_FP32;
    CHECK_OK(up_model_load(dir, &mo, &m));
    if (!m) return test_done();
    const int C = (int)up_model_config(m)->hidden_size;

    /* embed: one text alone equals the same text in a batch with a longer one */
    const char *texts[2] = {"a fine film", "the story was not good and the act was bad"};
    float *e1 = malloc(sizeof(float) * C), *e2 = malloc(sizeof(float) * 2 * C);
    up_embed_opts eo = up_embed_opts_default();
    eo.pool = UP_POOL_MEAN;
    eo.normalize = 1;
    CHECK_OK(up_model_embed(m, 1, texts, NULL, &eo, e1));
    CHECK_OK(up_model_embed(m, 2, texts, NULL, &eo, e2));
    double diff = 0, norm = 0;
    for (int k = 0; k < C; k++) {
        diff = fmax(diff, fabs(e1[k] - e2[k]));
        norm += (double)e2[C + k] * e2[C + k];
    }
    CHECK_MSG(diff < 1e-5, "padding changed the embedding by %g", diff);
    CHECK_MSG(fabs(norm - 1) < 1e-4, "normalized norm^2 %g", norm);
    eo.max_len = 100000;
    CHECK_FAIL(up_model_embed(m, 1, texts, NULL, &eo, e1), "max_len 100000");
    up_encoding enc[2];
    CHECK_OK(up_model_tokenize(m, 2, texts, NULL, 0, enc));
    CHECK(enc[0].n >= 4 && enc[1].n > enc[0].n);
    up_encoding_free(&enc[0]);
    up_encoding_free(&enc[1]);

    /* datasets from rows, with their label space */
    rows tr = make_rows(600), va = make_rows(200);
    up_dataset *train = NULL, *val = NULL, *bad = NULL;
    CHECK_OK(up_dataset_from_rows("toy", tr.n, (const char *const *)tr.text, NULL, tr.label, NULL, &train));
    CHECK_OK(up_dataset_from_rows("toy", va.n, (const char *const *)va.text, NULL, va.label, train, &val));
    CHECK(up_dataset_size(train) == 600 && up_dataset_n_labels(train) == 2 && !up_dataset_is_pair(train));
    const char *a0;
    int l0;
    CHECK_OK(up_dataset_example(train, 0, &a0, NULL, &l0));
    CHECK(!strcmp(a0, tr.text[0]) && !strcmp(up_dataset_label(train, l0), tr.label[0]));
    const char *odd_label[1] = {"neutral"}, *one[1] = {"fine"}, *empty[1] = {"  "}, *badutf[1] = {"caf\xC3"};
    CHECK_FAIL(up_dataset_from_rows("toy", 1, one, NULL, odd_label, train, &bad), "toy:1", "unknown label 'neutral'");
    CHECK_FAIL(up_dataset_from_rows("toy", 1, empty, NULL, tr.label, NULL, &bad), "toy:1", "empty text");
    CHECK_FAIL(up_dataset_from_rows("toy", 1, badutf, NULL, tr.label, NULL, &bad), "invalid UTF-8");
    CHECK_FAIL(up_dataset_from_rows("toy", 0, one, NULL, tr.label, NULL, &bad), "no rows");
    CHECK_FAIL(up_dataset_load("/nonexistent.tsv", "yaml", NULL, &bad), "yaml");
    CHECK(bad == NULL);

    /* tune, with progress */
    up_tune_opts to = up_tune_opts_default();
    to.prompts = 4;
    to.max_len = 32;
    to.epochs = 3;
    to.batch = 16;
    to.lr = to.head_lr = 1e-2f;
    up_expert *tuned = NULL, *pruned = NULL, *back = NULL;
    up_tune_result tres;
    CHECK_OK(up_tune(m, train, val, val, &to, &tuned, &tres));
    if (!tuned) return test_done();
    CHECK_MSG(tres.val > tres.majority + 10 && tres.report == tres.report && tres.majority < 60, "tuned %.2f, majority %.2f", tres.val,
              tres.majority);
    CHECK(!strcmp(up_expert_task(tuned), "toy") && up_expert_n_labels(tuned) == 2);
    CHECK(!strcmp(up_expert_label(tuned, 1), "positive") || !strcmp(up_expert_label(tuned, 1), "negative"));

    /* localize at a fixed ratio, with a sweep */
    up_localize_opts lo = up_localize_opts_default();
    double sweep[2] = {0.3, 0.6};
    lo.ratio = 0.5;
    lo.sweep = sweep;
    lo.n_sweep = 2;
    up_localize_result lr;
    CHECK_OK(up_localize(m, tuned, train, val, NULL, &lo, &pruned, &lr));
    if (!pruned) return test_done();
    long kf, tf, kh, th;
    up_expert_kept(pruned, &kf, &tf, &kh, &th);
    CHECK_MSG(kf == tf / 2 && kh == th, "kept %ld of %ld, heads %ld of %ld", kf, tf, kh, th);
    CHECK(lr.n_sweep == 2 && lr.n_points == 1 && lr.ratio == 0.5 && lr.expert_report != lr.expert_report);
    /* a set whose labels came in the other order is refused, not scored against permuted ids */
    const char *flipped_text[2] = {"a bad film", "a good film"}, *flipped_label[2] = {"negative", "positive"};
    if (!strcmp(up_dataset_label(train, 0), "negative")) flipped_label[0] = "positive", flipped_label[1] = "negative";
    up_dataset *flipped = NULL;
    CHECK_OK(up_dataset_from_rows("toy", 2, flipped_text, NULL, flipped_label, NULL, &flipped));
    up_expert *none = NULL;
    CHECK_FAIL(up_localize(m, tuned, flipped, flipped, NULL, &lo, &none, NULL), "labels are", "in this order");
    up_eval_result er0;
    CHECK_FAIL(up_evaluate(m, tuned, NULL, flipped, NULL, &er0), "labels are");
    up_dataset_free(flipped);
    lo.search_steps = 0;
    CHECK_FAIL(up_localize(m, tuned, train, val, NULL, &lo, &none, NULL), "search_steps");
    lo = up_localize_opts_default();
    lo.method = "magic";
    CHECK_FAIL(up_localize(m, tuned, train, val, NULL, &lo, &none, NULL), "magic");

    /* classify; save and load give the same predictions */
    int lab[200], lab2[200];
    float pr[400];
    CHECK_OK(up_expert_classify(pruned, va.n, (const char *const *)va.text, NULL, lab, pr));
    snprintf(path, sizeof path, "%s/test_api.expert", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    CHECK_OK(up_expert_save(pruned, path));
    CHECK_OK(up_expert_load(m, path, &back));
    if (back) {
        CHECK_OK(up_expert_classify(back, va.n, (const char *const *)va.text, NULL, lab2, NULL));
        CHECK(!memcmp(lab, lab2, sizeof lab));
        char *js = NULL;
        CHECK_OK(up_expert_info_json(back, &js));
        CHECK(js && strstr(js, "\"method\": \"actxgrad\"") && strstr(js, "\"kept_ffn_per_layer\""));
        up_free(js);
    }
    for (int i = 0; i < 200; i++) CHECK(fabsf(pr[2 * i] + pr[2 * i + 1] - 1) < 1e-4f);

    /* evaluate against the tuned model */
    up_eval_opts ev = up_eval_opts_default();
    ev.iters = 3;
    up_eval_result er;
    CHECK_OK(up_evaluate(m, pruned, tuned, val, &ev, &er));
    CHECK(er.n == 200 && er.n_shapes == 2 && er.speedup[0] > 0 && er.metric[0] == er.accuracy[0]);

    /* the hub */
    up_hub *h = NULL;
    CHECK_OK(up_hub_new(m, &h));
    char name[32], names[4][32];
    CHECK_OK(up_hub_plug(h, path, name));
    CHECK(!strcmp(name, "toy") && up_hub_tasks(h, names, 4) == 1 && !strcmp(names[0], "toy"));
    CHECK_OK(up_hub_classify(h, "toy", va.n, (const char *const *)va.text, NULL, lab2, NULL));
    CHECK(!memcmp(lab, lab2, sizeof lab));
    CHECK_FAIL(up_hub_classify(h, "sst2", 1, one, NULL, lab2, NULL), "no expert plugged for task 'sst2'");
    CHECK_OK(up_hub_unplug(h, "toy"));
    CHECK(up_hub_tasks(h, names, 4) == 0);
    up_hub_free(h);

    /* an expert read without its base: info, but no classify or save */
    up_expert *bare = NULL;
    CHECK_OK(up_expert_load(NULL, path, &bare));
    CHECK_FAIL(up_expert_classify(bare, 1, one, NULL, lab2, NULL), "without its base");
    CHECK_FAIL(up_expert_save(bare, path), "without its base");
    up_expert_free(bare);
    remove(path);

    up_expert_free(back);
    up_expert_free(pruned);
    up_expert_free(tuned);
    up_dataset_free(train);
    up_dataset_free(val);
    free_rows(&tr);
    free_rows(&va);
    free(e1);
    free(e2);
    up_model_free(m);
    return test_done();
}
