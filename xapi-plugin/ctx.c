/*
 * ctx.c - the context every part of libvgpu-xapi works in: its set-up
 * (folders from the environment) and tear-down (the xenstore handle), and
 * the recording of the last failure (vgpu_fail, vgpu_fail_xapi).
 *
 * It sits at the bottom of the library: conf.c, poolids.c, required.c, xsio.c,
 * status.c and assign.c report their failures through it, and it calls
 * none of them, so calls between the library's files go one way.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xenstore.h>

#include "core.h"

static void dir_from_env(char *out, size_t len, const char *env,
                         const char *def)
{
    const char *v = getenv(env);

    snprintf(out, len, "%s", v && v[0] == '/' ? v : def);
}

void vgpu_ctx_init(struct vgpu_ctx *c, struct xenapi *api)
{
    memset(c, 0, sizeof(*c));
    c->api = api;
    dir_from_env(c->conf_dir, sizeof(c->conf_dir), VGPU_CONF_DIR_ENV,
                 VGPU_CONF_DIR_DEFAULT);
    dir_from_env(c->state_dir, sizeof(c->state_dir), VGPU_STATE_DIR_ENV,
                 VGPU_STATE_DIR_DEFAULT);
    dir_from_env(c->run_dir, sizeof(c->run_dir), VGPU_RUN_DIR_ENV,
                 VGPU_RUN_DIR_DEFAULT);
}

/* xsio.c opens the handle on first use; whoever made the context closes it
 * here, without having to know whether xenstore was ever needed. */
void vgpu_ctx_cleanup(struct vgpu_ctx *c)
{
    if (c->xs)
        xs_close(c->xs);
    c->xs = NULL;
}

int vgpu_fail(struct vgpu_ctx *c, int code, const char *fmt, ...)
{
    va_list ap;

    c->err_code = code;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof(c->err), fmt, ap);
    va_end(ap);
    return -1;
}

int vgpu_fail_xapi(struct vgpu_ctx *c, const char *what)
{
    const char *code = c->api->err_code;
    int fault = VGPU_FAULT_XAPI;

    if (!strcmp(code, "UUID_INVALID") || !strcmp(code, "HANDLE_INVALID"))
        fault = VGPU_FAULT_NOT_FOUND;
    return vgpu_fail(c, fault, "%s%s%s", what ? what : "", what ? ": " : "",
                     c->api->err);
}
