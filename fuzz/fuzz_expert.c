/*
 * fuzz_expert.c: libFuzzer target; the input is a whole expert file image,
 * loaded through the same path a user's file takes (mapped from a memfd),
 * without a base model, so every schema and checksum check runs.
 *
 *     scripts/fuzz.sh fuzz_expert
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base/base.h"
#include "io/expert.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    up_set_log(NULL, NULL, -1);
    int fd = memfd_create("fuzz.expert", 0);
    if (fd < 0) return 0;
    if (write(fd, data, size) != (ssize_t)size) { close(fd); return 0; }
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    up_task *t = NULL;
    up_expert_meta info;
    if (up_expert_read(path, NULL, &t, &info) == UP_OK) {
        volatile float sink = t->prompt[0] + t->cls_b[t->n_labels - 1];
        for (int l = 0; l < t->n_layers; l++)
            if (t->kept[l] && t->n_kept[l]) sink += (float)t->kept[l][t->n_kept[l] - 1];
        (void)sink;
    }
    up_task_free(t);
    close(fd);
    return 0;
}
