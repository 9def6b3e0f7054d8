/* family.c: the encoder families unplug can load, by config.json model_type. */
#include <string.h>
#include "model/model.h"

up_status up_bert_bind(up_model *m, const up_st_set *st);

static const up_family families[] = {
    {"bert", up_bert_bind},
};

const up_family *up_family_find(const char *model_type) {
    for (size_t i = 0; i < sizeof families / sizeof *families; i++)
        if (strcmp(families[i].model_type, model_type) == 0) return &families[i];
    return NULL;
}
