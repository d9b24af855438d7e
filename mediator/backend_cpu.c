/*
 * backend_cpu.c - the CPU reference backend: runs every request on the
 * host CPU, synchronously.  It defines the expected results the GPU
 * backends are checked against, and serves hosts without a GPU.
 */
#include "backend.h"

#include <stdlib.h>

#include "wire.h"

struct cpu_backend {
    uint8_t resp[VGPU_BUF_SIZE];
};

static int cpu_open(void **state)
{
    *state = calloc(1, sizeof(struct cpu_backend));
    return *state ? 0 : -1;
}

static void cpu_close(void *state)
{
    free(state);
}

static int cpu_can_submit(void *state)
{
    (void)state;
    return 1;
}

/* int32 addition that wraps, as the GPU's does (no UB on overflow). */
static int32_t add_wrapping(int32_t a, int32_t b)
{
    return (int32_t)((uint32_t)a + (uint32_t)b);
}

static uint32_t cpu_vector_add(const struct vgpu_request *req, uint8_t *resp)
{
    const uint8_t *a = req->operands;
    const uint8_t *b = req->operands + req->count * sizeof(int32_t);
    uint32_t len = payload_put_resp_hdr(resp, req->opcode, req->count);

    for (uint32_t i = 0; i < req->count; i++) {
        int32_t c = add_wrapping((int32_t)wire_get_le32(a + 4 * i),
                                 (int32_t)wire_get_le32(b + 4 * i));

        wire_put_le32(resp + len, (uint32_t)c);
        len += sizeof(int32_t);
    }
    return len;
}

static void cpu_submit(void *state, const struct vgpu_request *req,
                       vgpu_backend_done_fn done, void *arg)
{
    struct cpu_backend *cpu = state;

    switch (req->opcode) {
    case VGPU_OP_VECTOR_ADD:
        done(arg, VGPU_ERR_NONE, cpu->resp, cpu_vector_add(req, cpu->resp));
        return;
    default:
        done(arg, VGPU_ERR_BAD_OPCODE, NULL, 0);
        return;
    }
}

const struct vgpu_backend_ops vgpu_backend_cpu = {
    .name = "cpu",
    .open = cpu_open,
    .close = cpu_close,
    .can_submit = cpu_can_submit,
    .submit = cpu_submit,
};
