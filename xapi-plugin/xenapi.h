/*
 * xenapi.h - a minimal XenAPI client over XML-RPC (our own HTTP/1.1
 * client + xr; no libcurl: the XCP-ng dom0 build has none to link).
 *
 * Owns the connection to xapi (HTTP over xapi's unix socket by default, or
 * an http:// URL over TCP; https:// is refused at xenapi_init with a clear
 * error, there is no TLS here), the session reference, the {Status, Value} /
 * {Status, ErrorDescription} result convention, and the handful of calls
 * vgpu needs.  Each call returns 0, XENAPI_ERR_TRANSPORT (xapi unreachable
 * or answered nonsense) or XENAPI_ERR_FAILURE (xapi said Failure: the
 * XenAPI error code is in x->err_code, e.g. "UUID_INVALID").  x->err holds
 * a readable one-line reason for either error.
 */
#ifndef VGPU_XENAPI_H
#define VGPU_XENAPI_H

#include "xr.h"

/* xapi's local socket; local root logs in there without a password. */
#define XENAPI_URL_DEFAULT "unix:/var/lib/xcp/xapi"
/* Environment variable that overrides the URL (tests). */
#define XENAPI_URL_ENV "VGPU_XAPI_URL"

#define XENAPI_ERR_TRANSPORT (-1)
#define XENAPI_ERR_FAILURE (-2)

/* Seconds allowed to connect, and for a whole call (connect, send, answer). */
#define XENAPI_CONNECT_TIMEOUT_S 10L
#define XENAPI_CALL_TIMEOUT_S 30L

struct xenapi {
    char *url;       /* as configured, for messages */
    char *sock_path; /* unix socket, or NULL for http:// */
    char *host;      /* http://: host name or address */
    char *port;      /* http://: port, "80" when not given */
    char *path;      /* the request target, "/" when not given */
    int ready;       /* xenapi_init succeeded */
    char *session;   /* session reference, or NULL */
    int own_session; /* we logged in, so we log out */
    long connect_timeout_s;
    long timeout_s; /* per call */
    char err_code[64];
    char err[512];
};

/*
 * url: NULL means $VGPU_XAPI_URL, else XENAPI_URL_DEFAULT.  Accepted:
 * unix:/path (xapi's local socket) and http://host[:port][/path] (host a
 * name, an IPv4 address or [IPv6]).
 */
int xenapi_init(struct xenapi *x, const char *url);
/* Logs out when we logged in, then frees everything. */
void xenapi_cleanup(struct xenapi *x);

/* Use a session reference we were handed (the plugin's first param). */
int xenapi_use_session(struct xenapi *x, const char *ref);
/* session.login_with_password as local root with an empty password. */
int xenapi_login_local(struct xenapi *x, const char *originator);
int xenapi_logout(struct xenapi *x);

/*
 * Calls `method` with the session first and then the NULL-terminated
 * string arguments; on success *value is the result's Value (caller
 * frees).
 */
int xenapi_call(struct xenapi *x, const char *method, struct xr_value **value,
                ...) __attribute__((sentinel));

/*
 * The calls every class of the datamodel has, for cls "VM", "host" or
 * "pool".  other-config: *map is an XR_STRUCT of strings; add fails with
 * MAP_DUPLICATE_KEY when the key exists (atomically, in xapi's database:
 * the compare-and-set of poolids.c rests on it); remove of an absent key
 * succeeds.
 */
int xenapi_get_other_config(struct xenapi *x, const char *cls, const char *ref,
                            struct xr_value **map);
/*
 * The same for any string map field of cls (other_config, and the VM's
 * blocked_operations, whose keys are vm_operations names and whose values
 * are the reason xapi gives in OPERATION_BLOCKED [vm_ref; value]).
 */
int xenapi_get_map(struct xenapi *x, const char *cls, const char *field,
                   const char *ref, struct xr_value **map);
int xenapi_add_to_map(struct xenapi *x, const char *cls, const char *field,
                      const char *ref, const char *key, const char *val);
int xenapi_remove_from_map(struct xenapi *x, const char *cls, const char *field,
                           const char *ref, const char *key);
int xenapi_add_to_other_config(struct xenapi *x, const char *cls,
                               const char *ref, const char *key,
                               const char *val);
int xenapi_remove_from_other_config(struct xenapi *x, const char *cls,
                                    const char *ref, const char *key);
/* <cls>.get_<field>, a string field (name_label, uuid, address ...). */
int xenapi_get_string(struct xenapi *x, const char *cls, const char *field,
                      const char *ref, char **out);
/* UUID_INVALID when no object of cls has uuid. */
int xenapi_get_by_uuid(struct xenapi *x, const char *cls, const char *uuid,
                       char **ref);
/* *refs is an XR_ARRAY of strings. */
int xenapi_get_all(struct xenapi *x, const char *cls, struct xr_value **refs);
/* host.get_resident_VMs: an XR_ARRAY of VM references. */
int xenapi_host_resident_vms(struct xenapi *x, const char *host,
                             struct xr_value **refs);
/* host.call_plugin(host, plugin, fn, {}): *out is the plugin's string. */
int xenapi_call_plugin(struct xenapi *x, const char *host, const char *plugin,
                       const char *fn, char **out);
/* VM.start_on(vm, host, start_paused=false, force=false). */
int xenapi_vm_start_on(struct xenapi *x, const char *vm, const char *host);
/* VM.pool_migrate(vm, host, {live: true}). */
int xenapi_vm_pool_migrate(struct xenapi *x, const char *vm, const char *host);
/* The one pool object (pool.get_all). */
int xenapi_pool_ref(struct xenapi *x, char **ref);

/* -1 when the VM is not running. */
int xenapi_vm_get_domid(struct xenapi *x, const char *ref, long *domid);

#endif /* VGPU_XENAPI_H */
