/*
 * vgpu-plugin.c - the xapi plugin `vgpu` (/etc/xapi.d/plugins/vgpu).
 *
 * xapi runs it with one argument, an XML-RPC <methodCall> whose methodName
 * is the function (xe host-call-plugin ... fn=F) and whose params are the
 * session reference and a struct of string arguments (args:k=v).  It
 * prints one <methodResponse> on stdout holding the XenAPI result struct,
 * as XenAPIPlugin.py's success_message / failure_message do, and exits 0
 * either way (xapi reads the answer from stdout; a non-zero exit would be
 * XENAPI_PLUGIN_FAILURE "non-zero exit" and lose our message):
 *
 *   {Status: "Success", Value: "<text>"}
 *       xapi (xapi_plugins.ml call_plugin, XMLRPC.From.methodResponse)
 *       returns the string to the caller; xe prints it.
 *   {Status: "Failure", ErrorDescription: [CODE, params...]}
 *       xapi raises Server_error (CODE, params): the caller gets exactly
 *       that XenAPI error; xe prints the code and the parameters.
 *
 * Never an XML-RPC <fault> (xapi turns one into XENAPI_PLUGIN_FAILURE
 * ["fault"; code; text]) nor a bare string value (XMLRPC.From.status
 * raises a type error, which the caller sees as INTERNAL_ERROR).
 *
 * Error codes (ErrorDescription[0]), each with one parameter, the reason:
 *   VGPU_BAD_ARGUMENT    an argument's value is wrong (pool, priority ...)
 *   VGPU_NOT_FOUND       no such VM or domain
 *   VGPU_XAPI_ERROR      xapi unreachable or failed
 *   VGPU_XENSTORE_ERROR  xenstore unreachable or failed
 *   VGPU_STATE_ERROR     host-local state (registry, pools.conf ...)
 *   VGPU_INTERNAL_ERROR  out of memory and the like
 *   VGPU_BAD_PARAMS      missing, unknown or non-string arguments
 *   VGPU_MALFORMED_CALL  the methodCall is not well-formed XML
 *   VGPU_INVALID_CALL    the methodCall is not a plugin call
 *   UNKNOWN_XENAPI_PLUGIN_FUNCTION  [fn, reason], XenAPIPlugin.py's code
 *
 * Functions:
 *   assign        domid=N                      assign VM-ID, write xenstore
 *   set-priority  priority=P, uuid=U | domid=N change a VM's priority
 *   status                                     the mediator's status
 *
 * This file owns the calling convention, argument checks and dispatch;
 * the work is in the library (core.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "core.h"

struct args {
    const struct xr_value *st; /* XR_STRUCT of strings */
    const char *session;
};

struct fn {
    const char *name;
    const char *const *allowed; /* argument names, NULL-terminated */
    int (*run)(struct vgpu_ctx *c, const struct args *a, char **out);
};

static int need_domid(struct vgpu_ctx *c, const struct args *a,
                      unsigned int *domid)
{
    const char *s = xr_struct_get_string(a->st, "domid");

    if (!s)
        return vgpu_fail(c, XR_FAULT_BAD_PARAMS,
                         "missing argument domid (args:domid=N)");
    if (vgpu_parse_domid(s, domid) < 0)
        return vgpu_fail(c, VGPU_FAULT_BAD_ARG,
                         "invalid domid '%.32s' (want 1..%u)", s,
                         VGPU_DOMID_MAX);
    return 0;
}

static int run_assign(struct vgpu_ctx *c, const struct args *a, char **out)
{
    struct vgpu_assignment as;
    unsigned int domid;
    int n;

    if (need_domid(c, a, &domid) < 0 || vgpu_assign(c, domid, &as) < 0)
        return -1;
    if (as.is_vgpu)
        n = asprintf(out,
                     "domain %u VM %s (%s): pool=%s priority=%s "
                     "vm-id=%u",
                     domid, as.uuid, as.name, as.pool, as.priority, as.vm_id);
    else
        n = asprintf(out,
                     "domain %u VM %s (%s): not a vgpu VM "
                     "(no other-config:" VGPU_OC_POOL ")",
                     domid, as.uuid, as.name);
    if (n < 0)
        return vgpu_fail(c, VGPU_FAULT_INTERNAL, "out of memory");
    syslog(LOG_INFO, "assign: %s", *out);
    return 0;
}

static int run_set_priority(struct vgpu_ctx *c, const struct args *a,
                            char **out)
{
    const char *prio = xr_struct_get_string(a->st, "priority");
    const char *uuid = xr_struct_get_string(a->st, "uuid");
    unsigned int domid = 0;
    char msg[256];

    if (!prio)
        return vgpu_fail(c, XR_FAULT_BAD_PARAMS,
                         "missing argument priority (" VGPU_PRIO_NAMES ")");
    if (!uuid == !xr_struct_get(a->st, "domid"))
        return vgpu_fail(c, XR_FAULT_BAD_PARAMS,
                         "name the VM with exactly one of uuid=U or "
                         "domid=N");
    if (!uuid && need_domid(c, a, &domid) < 0)
        return -1;
    if (vgpu_set_priority(c, uuid, domid, prio, msg, sizeof(msg)) < 0)
        return -1;
    syslog(LOG_INFO, "set-priority: %s", msg);
    *out = strdup(msg);
    return *out ? 0 : vgpu_fail(c, VGPU_FAULT_INTERNAL, "out of memory");
}

static int run_status(struct vgpu_ctx *c, const struct args *a, char **out)
{
    (void)a;
    return vgpu_status(c, out);
}

static const char *const assign_args[] = {"domid", NULL};
static const char *const prio_args[] = {"priority", "uuid", "domid", NULL};
static const char *const no_args[] = {NULL};

static const struct fn fns[] = {
    {"assign", assign_args, run_assign},
    {"set-priority", prio_args, run_set_priority},
    {"status", no_args, run_status},
};

/* params must be (session string, struct of strings) with known keys. */
static int check_params(struct vgpu_ctx *c, const struct fn *f,
                        const struct xr_value *params, struct args *a)
{
    const struct xr_value *st;

    if (params->n != 2 || params->items[0]->type != XR_STRING ||
        params->items[1]->type != XR_STRUCT)
        return vgpu_fail(c, XR_FAULT_BAD_PARAMS,
                         "params must be (session_ref string, struct of "
                         "string args), got %zu params",
                         params->n);
    st = params->items[1];
    for (size_t i = 0; i < st->n; i++) {
        int known = 0;

        if (st->items[i]->type != XR_STRING)
            return vgpu_fail(c, XR_FAULT_BAD_PARAMS,
                             "argument '%.40s' is not a string", st->keys[i]);
        for (size_t k = 0; f->allowed[k]; k++)
            known |= !strcmp(st->keys[i], f->allowed[k]);
        if (!known)
            return vgpu_fail(c, XR_FAULT_BAD_PARAMS,
                             "%s: unknown argument '%.40s'", f->name,
                             st->keys[i]);
    }
    a->session = params->items[0]->str;
    a->st = st;
    return 0;
}

static const struct fn *find_fn(struct vgpu_ctx *c, const char *name)
{
    for (size_t i = 0; i < sizeof(fns) / sizeof(fns[0]); i++)
        if (!strcmp(fns[i].name, name))
            return &fns[i];
    vgpu_fail(c, XR_FAULT_NO_METHOD,
              "unknown function '%.64s' (known: assign, set-priority, "
              "status)",
              name);
    return NULL;
}

/* The XenAPI error code of a failure (core.h and xr.h fault codes). */
static const char *error_code(int fault)
{
    static const struct {
        int fault;
        const char *code;
    } codes[] = {
        {VGPU_FAULT_BAD_ARG, "VGPU_BAD_ARGUMENT"},
        {VGPU_FAULT_NOT_FOUND, "VGPU_NOT_FOUND"},
        {VGPU_FAULT_XAPI, "VGPU_XAPI_ERROR"},
        {VGPU_FAULT_XENSTORE, "VGPU_XENSTORE_ERROR"},
        {VGPU_FAULT_STATE, "VGPU_STATE_ERROR"},
        {VGPU_FAULT_INTERNAL, "VGPU_INTERNAL_ERROR"},
        {XR_FAULT_BAD_PARAMS, "VGPU_BAD_PARAMS"},
        {XR_FAULT_PARSE, "VGPU_MALFORMED_CALL"},
        {XR_FAULT_INVALID_REQUEST, "VGPU_INVALID_CALL"},
        {XR_FAULT_NO_METHOD, "UNKNOWN_XENAPI_PLUGIN_FUNCTION"},
        {XR_FAULT_INTERNAL, "VGPU_INTERNAL_ERROR"},
    };

    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
        if (codes[i].fault == fault)
            return codes[i].code;
    return "VGPU_INTERNAL_ERROR";
}

/*
 * The Failure answer for c's error.  An unknown function gets
 * [UNKNOWN_XENAPI_PLUGIN_FUNCTION, fn, reason]: the code and first
 * parameter XenAPIPlugin.py's dispatch gives, which clients test for.
 */
static char *failure(const struct vgpu_ctx *c, const char *fn)
{
    const char *params[2] = {fn, c->err};

    if (c->err_code == XR_FAULT_NO_METHOD && fn)
        return xr_build_xenapi_failure(error_code(c->err_code), params, 2,
                                       NULL);
    return xr_build_xenapi_failure(error_code(c->err_code), &params[1], 1,
                                   NULL);
}

/* Runs one call; returns the response document. */
static char *handle(struct vgpu_ctx *c, struct xenapi *api, const char *xml)
{
    struct xr_call call;
    const struct fn *f;
    struct args a;
    char *text = NULL, *doc = NULL;
    int rc;

    rc = xr_parse_call(xml, strlen(xml), &call, c->err, sizeof(c->err));
    if (rc) {
        c->err_code = rc;
        syslog(LOG_WARNING, "bad call: %s", c->err);
        return failure(c, NULL);
    }
    f = find_fn(c, call.method);
    if (!f || check_params(c, f, call.params, &a) < 0)
        goto fault;
    if (xenapi_init(api, NULL) < 0) {
        vgpu_fail(c, VGPU_FAULT_XAPI, "%s", api->err);
        goto fault;
    }
    xenapi_use_session(api, a.session);
    if (f->run(c, &a, &text) < 0)
        goto fault;
    doc = xr_build_xenapi_success(text, NULL);
    goto out;
fault:
    syslog(LOG_WARNING, "%s: %s", call.method, c->err);
    doc = failure(c, call.method);
out:
    free(text);
    xr_call_free(&call);
    return doc;
}

int main(int argc, char **argv)
{
    const char *perr = getenv("VGPU_LOG_STDERR");
    struct xenapi api = {0};
    struct vgpu_ctx c;
    char *doc;

    openlog("vgpu-plugin", LOG_PID | (perr && *perr == '1' ? LOG_PERROR : 0),
            LOG_DAEMON);
    vgpu_ctx_init(&c, &api);
    if (argc != 2) {
        vgpu_fail(&c, XR_FAULT_INVALID_REQUEST,
                  "expected one argument, the XML-RPC methodCall (got %d)",
                  argc - 1);
        syslog(LOG_WARNING, "%s", c.err);
        doc = failure(&c, NULL);
    } else {
        doc = handle(&c, &api, argv[1]);
    }
    vgpu_ctx_cleanup(&c);
    xenapi_cleanup(&api);
    if (!doc) {
        fputs("vgpu-plugin: out of memory\n", stderr);
        return 1;
    }
    fputs(doc, stdout);
    free(doc);
    closelog();
    return fflush(stdout) == 0 ? 0 : 1;
}
