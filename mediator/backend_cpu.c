/*
 * backend_cpu.c - the CPU reference backend: the op table's reference
 * computations (op_table.c) run by the worker mechanism (backend_worker.c).
 *
 * It serves hosts without a GPU and is what every other backend is checked
 * against.  It exposes cfg->cpu_gpus pretend GPUs, each a worker thread
 * that runs one job at a time, so pools, per-GPU scheduling and
 * asynchronous completion behave as they do with real GPUs.  Nothing
 * outlives a job here: it has no per-GPU state, nothing to release when a
 * VM goes, and the device memory a VM holds is that of its jobs in flight
 * (the mechanism's default).
 */
#include "backend.h"

#include <stdio.h>
#include <string.h>

#include "backend_worker.h"
#include "op_table.h"
#include "util.h"

uint32_t backend_cpu_execute(const struct vgpu_request *req, uint8_t *resp,
                             uint32_t *resp_len)
{
    uint32_t err;

    *resp_len = 0;
    if (!req->op) {
        return VGPU_ERR_BAD_OPCODE;
    }
    err = req->op->cpu_run(req, resp);
    if (err == VGPU_ERR_NONE) {
        *resp_len = payload_resp_size(req);
    }
    return err;
}

static int cpu_exec_open(void **exec, const struct vgpu_backend_config *cfg,
                         unsigned *ngpus, char *why, size_t why_len)
{
    *exec = NULL;
    *ngpus = cfg->cpu_gpus ? cfg->cpu_gpus : 1;
    if (*ngpus > VGPU_BACKEND_MAX_GPUS) {
        snprintf(why, why_len, "too many CPU pretend GPUs");
        return -1;
    }
    return 0;
}

static int cpu_open_gpu(void *exec, unsigned index, void **gpu,
                        struct vgpu_gpu_info *info, char *why, size_t why_len)
{
    (void)exec;
    (void)why;
    (void)why_len;
    *gpu = NULL;
    snprintf(info->name, sizeof(info->name), "CPU reference backend #%u",
             index);
    return 0;
}

static void cpu_run(void *gpu, struct vgpu_backend_job *job)
{
    uint64_t start = now_ns();

    (void)gpu;
    job->error =
        backend_cpu_execute(&job->req, job->resp.iov_base, &job->resp_len);
    job->exec_ns = now_ns() - start;
}

static const struct vgpu_exec_ops cpu_exec = {
    .open = cpu_exec_open,
    .open_gpu = cpu_open_gpu,
    .run = cpu_run,
};

static int cpu_open(void **state, struct vgpu_backend_config *cfg,
                    const char **why)
{
    return vgpu_worker_open(state, &cpu_exec, cfg, why);
}

const struct vgpu_backend_ops vgpu_backend_cpu =
    VGPU_WORKER_BACKEND("cpu", cpu_open);
