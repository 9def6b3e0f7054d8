/* examples/embed.c: the README's library example, built and run by the test suite. */
#include <stdio.h>
#include "unplug.h"

int main(void) {
    up_model *m;
    if (up_model_load("tests/data/models/bert-f32-gelu", NULL, &m) != UP_OK)
        return fprintf(stderr, "%s\n", up_errmsg()), 1;
    up_encoding e = {0};
    up_tokenizer_encode(up_model_tokenizer(m), "a fine film", NULL, 64, &e);
    up_run *r;
    up_run_new(m, 1, 64, &r);                 /* all buffers allocated here */
    up_batch b = {.B = 1, .T = e.n, .ids = e.ids, .type_ids = e.type_ids, .lens = &e.n};
    up_forward(r, &b);
    printf("cls[0] = %f\n", up_run_cls(r)[0]); /* (B, hidden) */
    up_run_free(r); up_encoding_free(&e); up_model_free(m);
}
