/*
 * assign.c - the operations on a VM, on top of the rest of the library:
 * assign (domid -> VM -> other-config -> VM-ID -> xenstore), the
 * vm-pre-start check, and set-priority (other-config, then the running
 * domain's xenstore key, which the mediator watches).  The context and
 * its failure reporting are ctx.c's.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "qemudm.h"

/* VM.get_by_uuid, with "VM not found" for an unknown uuid. */
static int vm_ref(struct vgpu_ctx *c, const char *uuid, char **ref)
{
    if (xenapi_get_by_uuid(c->api, "VM", uuid, ref) == 0)
        return 0;
    if (!strcmp(c->api->err_code, "UUID_INVALID"))
        return vgpu_fail(c, VGPU_FAULT_NOT_FOUND,
                         "VM not found: no VM with uuid %s in xapi", uuid);
    return vgpu_fail_xapi(c, NULL);
}

/* other-config[key] := val, as remove then add (add fails on a dup). */
static int oc_set(struct vgpu_ctx *c, const char *ref, const char *key,
                  const char *val)
{
    if (xenapi_remove_from_other_config(c->api, "VM", ref, key) ||
        xenapi_add_to_other_config(c->api, "VM", ref, key, val))
        return vgpu_fail_xapi(c, NULL);
    return 0;
}

static unsigned int parse_vm_id(const char *s)
{
    unsigned long v;
    char *end;

    if (!s || s[0] < '1' || s[0] > '9' || strlen(s) > 10)
        return 0;
    v = strtoul(s, &end, 10);
    return *end || v > VGPU_VM_ID_MAX ? 0 : (unsigned int)v;
}

/* The rule the mediator reads quota-mb by: plain decimal, 1..max. */
static int quota_ok(const char *s)
{
    unsigned long v;
    char *end;

    if (s[0] < '1' || s[0] > '9')
        return 0;
    errno = 0;
    v = strtoul(s, &end, 10);
    return !errno && *end == '\0' && v <= VGPU_QUOTA_MB_MAX;
}

/* Validates pool, priority and quota from other-config into a. */
static int read_settings(struct vgpu_ctx *c, const struct xr_value *oc,
                         struct vgpu_assignment *a)
{
    const char *pool = xr_struct_get_string(oc, VGPU_OC_POOL);
    const char *prio = xr_struct_get_string(oc, VGPU_OC_PRIORITY);
    const char *req = xr_struct_get_string(oc, VGPU_OC_REQUIRED);
    const char *quota = xr_struct_get_string(oc, VGPU_OC_QUOTA_MB);

    a->is_vgpu = pool != NULL;
    a->required = req && !strcmp(req, "true");
    if (!pool)
        return 0;
    if (vgpu_check_pool(c, pool) < 0)
        return -1;
    if (prio && !vgpu_priority_ok(prio))
        return vgpu_fail(c, VGPU_FAULT_BAD_ARG,
                         "bad priority '%.64s' (" VGPU_PRIO_NAMES ")", prio);
    if (quota && !quota_ok(quota))
        return vgpu_fail(c, VGPU_FAULT_BAD_ARG,
                         "bad " VGPU_OC_QUOTA_MB " '%.64s' (MiB, 1..%u)",
                         quota, VGPU_QUOTA_MB_MAX);
    snprintf(a->pool, sizeof(a->pool), "%s", pool);
    snprintf(a->priority, sizeof(a->priority), "%s",
             prio ? prio : VGPU_PRIO_NAME_DEFAULT);
    snprintf(a->quota_mb, sizeof(a->quota_mb), "%s", quota ? quota : "");
    return 0;
}

/*
 * Gives the VM its pool-wide VM-ID and keeps other-config:vgpu-vm-id in
 * step; remembers vgpu-required on this host for the wrapper.
 */
static int give_vm_id(struct vgpu_ctx *c, const char *ref,
                      const struct xr_value *oc, struct vgpu_assignment *a)
{
    const char *have = xr_struct_get_string(oc, VGPU_OC_VM_ID);
    char buf[16];

    if (vgpu_poolid_claim(c, a->uuid, parse_vm_id(have), &a->vm_id) < 0 ||
        vgpu_required_remember(c, a->uuid, a->required) < 0)
        return -1;
    snprintf(buf, sizeof(buf), "%u", a->vm_id);
    if (have && !strcmp(have, buf))
        return 0;
    return oc_set(c, ref, VGPU_OC_VM_ID, buf);
}

/* name_label for messages; a failure here is not worth failing for. */
static void vm_name(struct vgpu_ctx *c, const char *ref,
                    struct vgpu_assignment *a)
{
    char *name = NULL;

    if (xenapi_get_string(c->api, "VM", "name_label", ref, &name) == 0) {
        snprintf(a->name, sizeof(a->name), "%s", name);
        for (char *p = a->name; *p; p++)
            if ((unsigned char)*p < 0x20)
                *p = ' ';
    }
    free(name);
}

int vgpu_assign(struct vgpu_ctx *c, unsigned int domid,
                struct vgpu_assignment *a)
{
    struct xr_value *oc = NULL;
    char *ref = NULL;
    int rc = -1;

    memset(a, 0, sizeof(*a));
    a->domid = domid;
    if (vgpu_xs_domain_uuid(c, domid, a->uuid) < 0)
        return -1;
    if (vm_ref(c, a->uuid, &ref) < 0)
        return -1;
    vm_name(c, ref, a);
    if (xenapi_get_other_config(c->api, "VM", ref, &oc)) {
        vgpu_fail_xapi(c, NULL);
        goto out;
    }
    if (read_settings(c, oc, a) < 0)
        goto out;
    rc = 0;
    if (!a->is_vgpu)
        goto out;
    rc = give_vm_id(c, ref, oc, a);
    if (rc == 0)
        rc = vgpu_xs_write_assignment(c, a);
out:
    xr_value_free(oc);
    free(ref);
    return rc;
}

/* What rules out a device that xapi's record of the VM already shows. */
static int check_vm_kind(struct vgpu_ctx *c, const char *ref,
                         const struct xr_value *oc)
{
    const char *pci = xr_struct_get_string(oc, "pci");
    struct xr_value *v = NULL;
    int rc = 0;

    if (pci && pci[0])
        return vgpu_fail(c, VGPU_FAULT_BAD_ARG,
                         "the VM has PCI passthrough (other-config:pci=%.64s): "
                         "its qemu-dm runs without the chroot in which the "
                         "mediator's socket lives, and vgpu does not support "
                         "passthrough in the same VM",
                         pci);
    /* PV and PVH guests run no qemu-dm at all.  A xapi without the field
     * (or any failure to read it) leaves the decision to the wrapper. */
    if (xenapi_call(c->api, "VM.get_domain_type", &v, ref, NULL) == 0 && v &&
        v->type == XR_STRING && v->str &&
        (!strcmp(v->str, "pv") || !strcmp(v->str, "pvh") ||
         !strcmp(v->str, "pv_in_pvh")))
        rc = vgpu_fail(c, VGPU_FAULT_BAD_ARG,
                       "the VM is a %s guest: only HVM guests run the qemu-dm "
                       "that holds the vgpu device",
                       v->str);
    xr_value_free(v);
    return rc;
}

/* Our qemu-dm, which the wrapper will run for the VM (common/qemudm.h). */
static int check_qemu_dm(struct vgpu_ctx *c)
{
    struct qemudm_info q;

    if (!qemudm_probe(&q, NULL, c->run_dir))
        return vgpu_fail(c, VGPU_FAULT_STATE, "%s", q.why);
    return 0;
}

/*
 * After read_settings refused the VM's pool: when it is a valid name that
 * other hosts of the pool publish, say which, so that the VM is started
 * there rather than here without its device.
 */
static void check_elsewhere(struct vgpu_ctx *c, const struct xr_value *oc,
                            struct vgpu_assignment *a)
{
    const char *pool = xr_struct_get_string(oc, VGPU_OC_POOL);
    char why[sizeof(c->err)], hosts[256];
    int n;

    if (!pool || !vgpu_pool_name_valid(pool))
        return;
    snprintf(why, sizeof(why), "%s", c->err);
    n = vgpu_pool_servers(c, pool, hosts, sizeof(hosts));
    if (n <= 0) {
        vgpu_fail(c, VGPU_FAULT_BAD_ARG, "%s", why); /* as it was */
        return;
    }
    a->elsewhere = 1;
    vgpu_fail(c, VGPU_FAULT_BAD_ARG,
              "this host does not serve vgpu pool '%s' (%s); %s of the pool "
              "%s it: start the VM there, e.g. xe vm-start uuid=%s on=<host>",
              pool, why, hosts, n == 1 ? "serves" : "serve", a->uuid);
}

int vgpu_check_start(struct vgpu_ctx *c, const char *uuid,
                     struct vgpu_assignment *a)
{
    struct xr_value *oc = NULL;
    unsigned int slot;
    char *ref = NULL;
    int rc = -1;

    memset(a, 0, sizeof(*a));
    if (!vgpu_uuid_ok(uuid))
        return vgpu_fail(c, VGPU_FAULT_BAD_ARG, "bad VM uuid '%.64s'",
                         uuid ? uuid : "");
    snprintf(a->uuid, sizeof(a->uuid), "%s", uuid);
    if (vm_ref(c, a->uuid, &ref) < 0)
        return -1;
    vm_name(c, ref, a);
    if (xenapi_get_other_config(c->api, "VM", ref, &oc)) {
        vgpu_fail_xapi(c, NULL);
        goto out;
    }
    /* read_settings sets is_vgpu and required before it checks. */
    if (read_settings(c, oc, a) < 0) {
        if (a->is_vgpu && c->err_code == VGPU_FAULT_BAD_ARG)
            check_elsewhere(c, oc, a);
        goto out;
    }
    if (a->is_vgpu &&
        (check_vm_kind(c, ref, oc) < 0 || vgpu_conf_pci_slot(c, &slot) < 0 ||
         check_qemu_dm(c) < 0))
        goto out;
    rc = 0;
out:
    xr_value_free(oc);
    free(ref);
    return rc;
}

/* Finds the running domain of a VM named by uuid; 0 if not running. */
static int running_domid(struct vgpu_ctx *c, const char *ref, const char *uuid,
                         unsigned int *domid)
{
    char xs_uuid[VGPU_UUID_LEN + 1];
    long d = -1;

    *domid = 0;
    if (xenapi_vm_get_domid(c->api, ref, &d))
        return vgpu_fail_xapi(c, NULL);
    if (d <= 0 || d > (long)VGPU_DOMID_MAX)
        return 0;
    /* xapi's domid must really be this VM in xenstore */
    if (vgpu_xs_domain_uuid(c, (unsigned int)d, xs_uuid) < 0)
        return c->err_code == VGPU_FAULT_NOT_FOUND ? 0 : -1;
    if (!strcasecmp(xs_uuid, uuid))
        *domid = (unsigned int)d;
    return 0;
}

static int resolve_vm(struct vgpu_ctx *c, const char *uuid, unsigned int *domid,
                      char *uuid_out, char **ref)
{
    if (*domid) {
        if (vgpu_xs_domain_uuid(c, *domid, uuid_out) < 0)
            return -1;
        return vm_ref(c, uuid_out, ref);
    }
    if (!vgpu_uuid_ok(uuid))
        return vgpu_fail(c, VGPU_FAULT_BAD_ARG, "bad VM uuid '%.64s'",
                         uuid ? uuid : "");
    snprintf(uuid_out, VGPU_UUID_LEN + 1, "%s", uuid);
    if (vm_ref(c, uuid_out, ref) < 0)
        return -1;
    return running_domid(c, *ref, uuid_out, domid);
}

int vgpu_set_priority(struct vgpu_ctx *c, const char *uuid, unsigned int domid,
                      const char *priority, char *msg, size_t msglen)
{
    char vm_uuid[VGPU_UUID_LEN + 1];
    char *ref = NULL;
    int rc = -1, live = 0;

    if (!vgpu_priority_ok(priority))
        return vgpu_fail(c, VGPU_FAULT_BAD_ARG,
                         "bad priority '%.64s' (" VGPU_PRIO_NAMES ")",
                         priority ? priority : "");
    if (resolve_vm(c, uuid, &domid, vm_uuid, &ref) < 0)
        goto out;
    if (oc_set(c, ref, VGPU_OC_PRIORITY, priority) < 0)
        goto out;
    if (domid) {
        live = vgpu_xs_write_priority(c, domid, priority);
        if (live < 0)
            goto out;
    }
    if (live)
        snprintf(msg, msglen, "VM %s: priority %s; running domain %u updated",
                 vm_uuid, priority, domid);
    else
        snprintf(msg, msglen,
                 "VM %s: priority %s; takes effect at its next start", vm_uuid,
                 priority);
    rc = 0;
out:
    free(ref);
    return rc;
}
