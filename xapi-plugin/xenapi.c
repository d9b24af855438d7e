/*
 * xenapi.c - XenAPI over XML-RPC with libcurl: transport, session, result
 * decoding and the VM calls vgpu uses.  See xenapi.h.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "xenapi.h"

/*
 * HTTP over xapi's unix socket needs CURLOPT_UNIX_SOCKET_PATH (curl 7.40).
 * An older curl (CentOS 7 has 7.29) cannot build this file; see
 * docs/xcp-ng.md.
 */
#if LIBCURL_VERSION_NUM < 0x072800
#error "libcurl >= 7.40 is needed (CURLOPT_UNIX_SOCKET_PATH)"
#endif

#define DEFAULT_TIMEOUT_S 30L

struct buf {
    char *data;
    size_t len;
    int overflow;
};

static void fail(struct xenapi *x, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail(struct xenapi *x, const char *code, const char *fmt, ...)
{
    va_list ap;

    snprintf(x->err_code, sizeof(x->err_code), "%s", code ? code : "");
    va_start(ap, fmt);
    vsnprintf(x->err, sizeof(x->err), fmt, ap);
    va_end(ap);
}

int xenapi_init(struct xenapi *x, const char *url)
{
    memset(x, 0, sizeof(*x));
    x->timeout_s = DEFAULT_TIMEOUT_S;
    if (!url)
        url = getenv(XENAPI_URL_ENV);
    if (!url || !url[0])
        url = XENAPI_URL_DEFAULT;
    if (!strncmp(url, "unix:", 5)) {
        if (url[5] != '/') {
            fail(x, NULL, "bad xapi URL '%s' (want unix:/path)", url);
            return -1;
        }
        x->sock_path = strdup(url + 5);
        x->url = strdup("http://localhost/");
    } else if (!strncmp(url, "http://", 7) || !strncmp(url, "https://", 8)) {
        x->url = strdup(url);
    } else {
        fail(x, NULL, "bad xapi URL '%s' (want unix:/path or http://)", url);
        return -1;
    }
    if (!x->url || (!strncmp(url, "unix:", 5) && !x->sock_path))
        goto oom;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        goto oom;
    x->curl = curl_easy_init();
    if (!x->curl)
        goto oom;
    return 0;
oom:
    fail(x, NULL, "out of memory");
    xenapi_cleanup(x);
    return -1;
}

void xenapi_cleanup(struct xenapi *x)
{
    if (x->own_session && x->curl)
        xenapi_logout(x);
    if (x->curl)
        curl_easy_cleanup(x->curl);
    free(x->session);
    free(x->url);
    free(x->sock_path);
    x->curl = NULL;
    x->session = x->url = x->sock_path = NULL;
}

/* ---------------------------------------------------------------------- */
/* transport                                                               */
/* ---------------------------------------------------------------------- */

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *arg)
{
    struct buf *b = arg;
    size_t n = size * nmemb;
    char *p;

    if (b->len + n > XR_MAX_RESPONSE) {
        b->overflow = 1;
        return 0;
    }
    p = realloc(b->data, b->len + n + 1);
    if (!p)
        return 0;
    memcpy(p + b->len, ptr, n);
    b->data = p;
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

static int post(struct xenapi *x, const char *body, size_t len, struct buf *out)
{
    CURL *c = x->curl;
    struct curl_slist *hdrs = NULL;
    long status = 0;
    CURLcode rc;

    curl_easy_reset(c);
    hdrs = curl_slist_append(hdrs, "Content-Type: text/xml");
    curl_easy_setopt(c, CURLOPT_URL, x->url);
    if (x->sock_path)
        curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, x->sock_path);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)len);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, x->timeout_s);
    rc = curl_easy_perform(c);
    curl_slist_free_all(hdrs);
    if (rc != CURLE_OK) {
        fail(x, NULL, "xapi unreachable at %s: %s",
             x->sock_path ? x->sock_path : x->url,
             out->overflow ? "answer too large" : curl_easy_strerror(rc));
        return XENAPI_ERR_TRANSPORT;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (status != 200) {
        fail(x, NULL, "xapi answered HTTP %ld", status);
        return XENAPI_ERR_TRANSPORT;
    }
    return 0;
}

/* Turns {Status: Failure, ErrorDescription: [code, args...]} into err. */
static int decode_failure(struct xenapi *x, const char *method,
                          const struct xr_value *r)
{
    const struct xr_value *d = xr_struct_get(r, "ErrorDescription");
    char args[384] = "";
    size_t used = 0;

    if (!d || d->type != XR_ARRAY || d->n == 0 ||
        d->items[0]->type != XR_STRING) {
        fail(x, "UNKNOWN", "%s failed without an error description", method);
        return XENAPI_ERR_FAILURE;
    }
    for (size_t i = 1; i < d->n && used < sizeof(args); i++) {
        const char *s = d->items[i]->str ? d->items[i]->str : "?";
        int n = snprintf(args + used, sizeof(args) - used, "%s%s",
                         i > 1 ? ", " : "", s);

        if (n < 0)
            break;
        used += (size_t)n;
    }
    fail(x, d->items[0]->str, "%s: %s%s%s%s", method, d->items[0]->str,
         args[0] ? " (" : "", args, args[0] ? ")" : "");
    return XENAPI_ERR_FAILURE;
}

/* Decodes a XenAPI result struct; takes ownership of resp's value. */
static int decode(struct xenapi *x, const char *method,
                  struct xr_response *resp, struct xr_value **value)
{
    struct xr_value *r = resp->value;
    const char *st;

    if (resp->is_fault) {
        fail(x, NULL, "%s: XML-RPC fault %d: %s", method, resp->fault_code,
             resp->fault_string);
        return XENAPI_ERR_TRANSPORT;
    }
    st = xr_struct_get_string(r, "Status");
    if (st && !strcmp(st, "Failure"))
        return decode_failure(x, method, r);
    if (!st || strcmp(st, "Success") || !xr_struct_get(r, "Value")) {
        fail(x, NULL, "%s: xapi's answer is not a XenAPI result", method);
        return XENAPI_ERR_TRANSPORT;
    }
    for (size_t i = 0; i < r->n; i++) {
        if (!strcmp(r->keys[i], "Value")) {
            *value = r->items[i];
            r->items[i] = xr_new_string("");
            break;
        }
    }
    return *value ? 0 : XENAPI_ERR_TRANSPORT;
}

static int call_array(struct xenapi *x, const char *method,
                      struct xr_value *params, struct xr_value **value)
{
    struct xr_response resp;
    struct buf out = {0};
    char err[256];
    size_t len = 0;
    char *body;
    int rc;

    *value = NULL;
    body = xr_build_call(method, params, &len);
    if (!body) {
        fail(x, NULL, "out of memory");
        return XENAPI_ERR_TRANSPORT;
    }
    rc = post(x, body, len, &out);
    free(body);
    if (rc)
        goto out;
    if (xr_parse_response(out.data ? out.data : "", out.len, &resp, err,
                          sizeof(err)) < 0) {
        fail(x, NULL, "%s: bad answer from xapi: %s", method, err);
        rc = XENAPI_ERR_TRANSPORT;
        goto out;
    }
    rc = decode(x, method, &resp, value);
    xr_response_free(&resp);
out:
    free(out.data);
    return rc;
}

static int call_v(struct xenapi *x, const char *method, int with_session,
                  struct xr_value **value, va_list ap)
{
    struct xr_value *params = xr_new_array();
    const char *s;
    int rc = XENAPI_ERR_TRANSPORT;

    if (!params)
        goto oom;
    if (with_session && xr_add(params, NULL, xr_new_string(x->session)) < 0)
        goto oom;
    while ((s = va_arg(ap, const char *)))
        if (xr_add(params, NULL, xr_new_string(s)) < 0)
            goto oom;
    rc = call_array(x, method, params, value);
    xr_value_free(params);
    return rc;
oom:
    xr_value_free(params);
    fail(x, NULL, "out of memory");
    return rc;
}

int xenapi_call(struct xenapi *x, const char *method, struct xr_value **value,
                ...)
{
    va_list ap;
    int rc;

    if (!x->session) {
        fail(x, NULL, "%s: no XenAPI session", method);
        return XENAPI_ERR_TRANSPORT;
    }
    va_start(ap, value);
    rc = call_v(x, method, 1, value, ap);
    va_end(ap);
    return rc;
}

static int call_nosession(struct xenapi *x, const char *method,
                          struct xr_value **value, ...)
{
    va_list ap;
    int rc;

    va_start(ap, value);
    rc = call_v(x, method, 0, value, ap);
    va_end(ap);
    return rc;
}

/* ---------------------------------------------------------------------- */
/* sessions and calls                                                      */
/* ---------------------------------------------------------------------- */

int xenapi_use_session(struct xenapi *x, const char *ref)
{
    char *s = strdup(ref);

    if (!s) {
        fail(x, NULL, "out of memory");
        return XENAPI_ERR_TRANSPORT;
    }
    free(x->session);
    x->session = s;
    x->own_session = 0;
    return 0;
}

/* Takes a string Value into *out. */
static int want_string(struct xenapi *x, const char *method, int rc,
                       struct xr_value *v, char **out)
{
    if (rc == 0 && v->type == XR_STRING) {
        *out = v->str;
        v->str = NULL;
    } else if (rc == 0) {
        fail(x, NULL, "%s: Value is not a string", method);
        rc = XENAPI_ERR_TRANSPORT;
    }
    xr_value_free(v);
    return rc;
}

int xenapi_login_local(struct xenapi *x, const char *originator)
{
    struct xr_value *v = NULL;
    char *ref = NULL;
    int rc;

    rc = call_nosession(x, "session.login_with_password", &v, "root", "", "1.0",
                        originator, NULL);
    rc = want_string(x, "session.login_with_password", rc, v, &ref);
    if (rc)
        return rc;
    free(x->session);
    x->session = ref;
    x->own_session = 1;
    return 0;
}

int xenapi_logout(struct xenapi *x)
{
    struct xr_value *v = NULL;
    int rc;

    if (!x->session)
        return 0;
    rc = xenapi_call(x, "session.logout", &v, NULL);
    xr_value_free(v);
    free(x->session);
    x->session = NULL;
    x->own_session = 0;
    return rc;
}

int xenapi_vm_get_by_uuid(struct xenapi *x, const char *uuid, char **ref)
{
    struct xr_value *v = NULL;
    int rc = xenapi_call(x, "VM.get_by_uuid", &v, uuid, NULL);

    return want_string(x, "VM.get_by_uuid", rc, v, ref);
}

int xenapi_vm_get_name_label(struct xenapi *x, const char *ref, char **name)
{
    struct xr_value *v = NULL;
    int rc = xenapi_call(x, "VM.get_name_label", &v, ref, NULL);

    return want_string(x, "VM.get_name_label", rc, v, name);
}

int xenapi_vm_get_other_config(struct xenapi *x, const char *ref,
                               struct xr_value **map)
{
    struct xr_value *v = NULL;
    int rc = xenapi_call(x, "VM.get_other_config", &v, ref, NULL);

    if (rc)
        return rc;
    if (v->type != XR_STRUCT)
        goto bad;
    for (size_t i = 0; i < v->n; i++)
        if (v->items[i]->type != XR_STRING)
            goto bad;
    *map = v;
    return 0;
bad:
    xr_value_free(v);
    fail(x, NULL, "VM.get_other_config: Value is not a string map");
    return XENAPI_ERR_TRANSPORT;
}

static int call_void(struct xenapi *x, const char *method, const char *a,
                     const char *b, const char *c)
{
    struct xr_value *v = NULL;
    int rc = xenapi_call(x, method, &v, a, b, c, NULL);

    xr_value_free(v);
    return rc;
}

int xenapi_vm_add_to_other_config(struct xenapi *x, const char *ref,
                                  const char *key, const char *val)
{
    return call_void(x, "VM.add_to_other_config", ref, key, val);
}

int xenapi_vm_remove_from_other_config(struct xenapi *x, const char *ref,
                                       const char *key)
{
    return call_void(x, "VM.remove_from_other_config", ref, key, NULL);
}

int xenapi_vm_get_domid(struct xenapi *x, const char *ref, long *domid)
{
    struct xr_value *v = NULL;
    char *end;
    int rc = xenapi_call(x, "VM.get_domid", &v, ref, NULL);

    if (rc)
        return rc;
    /* XenAPI sends its 64-bit ints as strings; accept <int> as well. */
    if (v->type == XR_INT) {
        *domid = (long)v->num;
    } else if (v->type == XR_STRING && v->str[0]) {
        errno = 0;
        *domid = strtol(v->str, &end, 10);
        if (*end || errno)
            rc = XENAPI_ERR_TRANSPORT;
    } else {
        rc = XENAPI_ERR_TRANSPORT;
    }
    if (rc)
        fail(x, NULL, "VM.get_domid: Value is not an integer");
    xr_value_free(v);
    return rc;
}
