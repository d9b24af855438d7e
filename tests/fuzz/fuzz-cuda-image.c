/*
 * fuzz-cuda-image.c - libFuzzer target for common/cuda_image.c, the reader
 * of CUDA module images (fatbin, cubin, PTX) that a guest hands to
 * cuModuleLoadData: every byte is the guest's.
 *
 * The input is the image, in a buffer of exactly its size.  Checked: a
 * size found is within the input, a walk never reports a layout that is
 * not one (ascending, non-empty ranges, total the end of the last), and
 * finding each reported kernel by name succeeds.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct state {
    const uint8_t *img;
    size_t len;
    int finds;
};

static int check(void *arg, const char *name,
                 const struct cuda_kernel_info *info)
{
    struct state *s = arg;
    struct cuda_kernel_info again;
    uint32_t end = 0;

    if (strlen(name) >= CUDA_IMAGE_MAX_NAME ||
        info->count > CUDA_IMAGE_MAX_PARAMS) {
        abort();
    }
    for (uint32_t i = 0; i < info->count; i++) {
        if (info->param[i].size == 0 || info->param[i].offset < end) {
            abort();
        }
        end = info->param[i].offset + info->param[i].size;
    }
    if (info->total != end || end > CUDA_IMAGE_MAX_PARAM_BYTES) {
        abort();
    }
    /* A few lookups by name (each is a walk; bounded per input). */
    if (s->finds++ < 4 &&
        cuda_image_find_kernel(s->img, s->len, name, &again) != 0) {
        abort();
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *buf = malloc(size ? size : 1);
    struct state s = {.img = buf, .len = size};
    enum cuda_image_kind kind;
    size_t isize;
    unsigned skipped;

    if (!buf) {
        return 0;
    }
    memcpy(buf, data, size);
    if (cuda_image_size(buf, size, &kind, &isize) == 0 &&
        (isize > size || isize == 0 || kind == CUDA_IMAGE_NONE)) {
        abort();
    }
    (void)cuda_image_kernels(buf, size, check, &s, &skipped);
    free(buf);
    return 0;
}
