/*
 * xr.c - XML-RPC values, strict parsing and building with libxml2.
 *
 * Owns the value tree, the methodCall / methodResponse parsers and the
 * document builders declared in xr.h.  Parsing is strict: the document must
 * be well-formed, at most XR_MAX_INPUT bytes, without a DTD (no entity
 * tricks), and every element must be where the XML-RPC spec puts it; text
 * other than whitespace between structural elements is an error.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "xr.h"

#define PARSE_OPTS                                                             \
    (XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING |               \
     XML_PARSE_NOCDATA)

static void seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (!err || !errlen)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* ---------------------------------------------------------------------- */
/* values                                                                  */
/* ---------------------------------------------------------------------- */

void xr_value_free(struct xr_value *v)
{
    if (!v)
        return;
    for (size_t i = 0; i < v->n; i++) {
        if (v->keys)
            free(v->keys[i]);
        xr_value_free(v->items[i]);
    }
    free(v->keys);
    free(v->items);
    free(v->str);
    free(v);
}

static struct xr_value *value_new(enum xr_type type, const char *s)
{
    struct xr_value *v = calloc(1, sizeof(*v));

    if (!v)
        return NULL;
    v->type = type;
    if (s) {
        v->str = strdup(s);
        if (!v->str) {
            free(v);
            return NULL;
        }
    }
    return v;
}

struct xr_value *xr_new_string(const char *s)
{
    return value_new(XR_STRING, s ? s : "");
}

struct xr_value *xr_new_struct(void)
{
    return value_new(XR_STRUCT, NULL);
}

struct xr_value *xr_new_array(void)
{
    return value_new(XR_ARRAY, NULL);
}

int xr_add(struct xr_value *c, const char *key, struct xr_value *item)
{
    struct xr_value **items;
    char *k = NULL;

    if (!item)
        return -1;
    if ((c->type == XR_STRUCT) != (key != NULL))
        goto fail;
    if (key && !(k = strdup(key)))
        goto fail;
    items = realloc(c->items, (c->n + 1) * sizeof(*items));
    if (!items)
        goto fail;
    c->items = items;
    if (key) {
        char **keys = realloc(c->keys, (c->n + 1) * sizeof(*keys));

        if (!keys)
            goto fail;
        c->keys = keys;
        c->keys[c->n] = k;
    }
    c->items[c->n++] = item;
    return 0;
fail:
    free(k);
    xr_value_free(item);
    return -1;
}

int xr_struct_set_string(struct xr_value *st, const char *key, const char *val)
{
    return xr_add(st, key, xr_new_string(val));
}

const struct xr_value *xr_struct_get(const struct xr_value *st, const char *key)
{
    if (!st || st->type != XR_STRUCT)
        return NULL;
    for (size_t i = 0; i < st->n; i++)
        if (!strcmp(st->keys[i], key))
            return st->items[i];
    return NULL;
}

const char *xr_struct_get_string(const struct xr_value *st, const char *key)
{
    const struct xr_value *v = xr_struct_get(st, key);

    return v && v->type == XR_STRING ? v->str : NULL;
}

/* ---------------------------------------------------------------------- */
/* parsing                                                                 */
/* ---------------------------------------------------------------------- */

struct pctx {
    char *err;
    size_t errlen;
};

static int is_elem(const xmlNode *n, const char *name)
{
    return n && n->type == XML_ELEMENT_NODE && !n->ns &&
           !strcmp((const char *)n->name, name);
}

/*
 * The next element sibling starting at n (n included), skipping comments
 * and whitespace.  Other text is an error (*bad set).
 */
static xmlNode *next_elem(xmlNode *n, int *bad)
{
    for (; n; n = n->next) {
        if (n->type == XML_ELEMENT_NODE)
            return n;
        if (n->type == XML_COMMENT_NODE)
            continue;
        if (n->type == XML_TEXT_NODE && xmlIsBlankNode(n))
            continue;
        *bad = 1;
        return NULL;
    }
    return NULL;
}

/* Exactly one element child named `name` (whitespace around allowed). */
static xmlNode *only_child(struct pctx *p, xmlNode *parent, const char *name)
{
    int bad = 0;
    xmlNode *c = next_elem(parent->children, &bad);

    if (bad || !is_elem(c, name) || next_elem(c->next, &bad) || bad) {
        seterr(p->err, p->errlen, "<%s> must hold exactly one <%s>",
               (const char *)parent->name, name);
        return NULL;
    }
    return c;
}

/* The text of an element that must hold text only (or nothing). */
static char *text_of(struct pctx *p, xmlNode *e)
{
    xmlChar *t;
    char *s;

    for (xmlNode *c = e->children; c; c = c->next) {
        if (c->type != XML_TEXT_NODE && c->type != XML_COMMENT_NODE) {
            seterr(p->err, p->errlen, "<%s> must hold text only",
                   (const char *)e->name);
            return NULL;
        }
    }
    t = xmlNodeGetContent(e);
    s = strdup(t ? (const char *)t : "");
    xmlFree(t);
    if (!s)
        seterr(p->err, p->errlen, "out of memory");
    return s;
}

static struct xr_value *parse_value(struct pctx *p, xmlNode *ve, int depth);

static struct xr_value *scalar(struct pctx *p, xmlNode *e, enum xr_type t)
{
    struct xr_value *v = value_new(t, NULL);

    if (!v) {
        seterr(p->err, p->errlen, "out of memory");
        return NULL;
    }
    v->str = text_of(p, e);
    if (!v->str)
        goto fail;
    if (t == XR_INT) {
        char *end;

        errno = 0;
        v->num = strtoll(v->str, &end, 10);
        if (!v->str[0] || *end || errno) {
            seterr(p->err, p->errlen, "bad <%s> '%.40s'", (const char *)e->name,
                   v->str);
            goto fail;
        }
    } else if (t == XR_BOOL) {
        if (strcmp(v->str, "0") && strcmp(v->str, "1")) {
            seterr(p->err, p->errlen, "bad <boolean> '%.40s'", v->str);
            goto fail;
        }
        v->num = v->str[0] == '1';
    } else if (t == XR_NIL && v->str[0]) {
        seterr(p->err, p->errlen, "<nil> must be empty");
        goto fail;
    }
    return v;
fail:
    xr_value_free(v);
    return NULL;
}

static int parse_member(struct pctx *p, struct xr_value *st, xmlNode *m,
                        int depth)
{
    int bad = 0;
    xmlNode *name = next_elem(m->children, &bad);
    xmlNode *val = name ? next_elem(name->next, &bad) : NULL;
    struct xr_value *v;
    char *key;
    int rc = -1;

    if (bad || !is_elem(name, "name") || !is_elem(val, "value") ||
        next_elem(val->next, &bad) || bad) {
        seterr(p->err, p->errlen, "<member> must hold <name> then <value>");
        return -1;
    }
    key = text_of(p, name);
    if (!key)
        return -1;
    if (xr_struct_get(st, key)) {
        seterr(p->err, p->errlen, "duplicate struct member '%.40s'", key);
        goto out;
    }
    v = parse_value(p, val, depth + 1);
    if (!v)
        goto out;
    rc = xr_add(st, key, v);
    if (rc < 0)
        seterr(p->err, p->errlen, "out of memory");
out:
    free(key);
    return rc;
}

static struct xr_value *parse_struct(struct pctx *p, xmlNode *e, int depth)
{
    struct xr_value *st = xr_new_struct();
    int bad = 0;

    if (!st)
        return NULL;
    for (xmlNode *m = next_elem(e->children, &bad); m;
         m = next_elem(m->next, &bad)) {
        if (!is_elem(m, "member")) {
            seterr(p->err, p->errlen, "<struct> may hold <member> only");
            goto fail;
        }
        if (parse_member(p, st, m, depth) < 0)
            goto fail;
    }
    if (bad) {
        seterr(p->err, p->errlen, "stray text in <struct>");
        goto fail;
    }
    return st;
fail:
    xr_value_free(st);
    return NULL;
}

static struct xr_value *parse_array(struct pctx *p, xmlNode *e, int depth)
{
    xmlNode *data = only_child(p, e, "data");
    struct xr_value *a;
    int bad = 0;

    if (!data)
        return NULL;
    a = xr_new_array();
    if (!a)
        return NULL;
    for (xmlNode *c = next_elem(data->children, &bad); c;
         c = next_elem(c->next, &bad)) {
        struct xr_value *v;

        if (!is_elem(c, "value")) {
            seterr(p->err, p->errlen, "<data> may hold <value> only");
            goto fail;
        }
        v = parse_value(p, c, depth + 1);
        if (!v || xr_add(a, NULL, v) < 0)
            goto fail;
    }
    if (bad) {
        seterr(p->err, p->errlen, "stray text in <data>");
        goto fail;
    }
    return a;
fail:
    xr_value_free(a);
    return NULL;
}

static const struct {
    const char *name;
    enum xr_type type;
} scalar_types[] = {
    {"string", XR_STRING},
    {"int", XR_INT},
    {"i4", XR_INT},
    {"i8", XR_INT},
    {"boolean", XR_BOOL},
    {"double", XR_DOUBLE},
    {"dateTime.iso8601", XR_DATETIME},
    {"base64", XR_BASE64},
    {"nil", XR_NIL},
};

static struct xr_value *parse_typed(struct pctx *p, xmlNode *t, int depth)
{
    if (is_elem(t, "struct"))
        return parse_struct(p, t, depth);
    if (is_elem(t, "array"))
        return parse_array(p, t, depth);
    for (size_t i = 0; i < sizeof(scalar_types) / sizeof(scalar_types[0]); i++)
        if (is_elem(t, scalar_types[i].name))
            return scalar(p, t, scalar_types[i].type);
    seterr(p->err, p->errlen, "unknown value type <%.40s>",
           (const char *)t->name);
    return NULL;
}

static struct xr_value *parse_value(struct pctx *p, xmlNode *ve, int depth)
{
    int bad = 0;
    xmlNode *t;

    if (depth > XR_MAX_DEPTH) {
        seterr(p->err, p->errlen, "values nested too deep");
        return NULL;
    }
    t = next_elem(ve->children, &bad);
    if (!t) /* <value>text</value> is a string */
        return scalar(p, ve, XR_STRING);
    if (bad || next_elem(t->next, &bad) || bad) {
        seterr(p->err, p->errlen, "<value> must hold one typed element");
        return NULL;
    }
    return parse_typed(p, t, depth);
}

/* Reads a document; rejects size, malformedness and any DTD. */
static xmlDoc *read_doc(struct pctx *p, const char *xml, size_t len,
                        const char *root, size_t max)
{
    xmlDoc *doc;
    xmlNode *r;

    if (len == 0 || len > max) {
        seterr(p->err, p->errlen, "document is %zu bytes (must be 1..%zu)", len,
               max);
        return NULL;
    }
    if (memchr(xml, '\0', len)) {
        seterr(p->err, p->errlen, "document holds a NUL byte");
        return NULL;
    }
    doc = xmlReadMemory(xml, (int)len, "noname.xml", NULL, PARSE_OPTS);
    if (!doc) {
        const xmlError *e = xmlGetLastError();

        seterr(p->err, p->errlen, "malformed XML: %s",
               e && e->message ? e->message : "parse error");
        /* libxml2 ends its messages with a newline */
        if (p->err && p->err[0] && p->err[strlen(p->err) - 1] == '\n')
            p->err[strlen(p->err) - 1] = '\0';
        return NULL;
    }
    r = xmlDocGetRootElement(doc);
    if (doc->intSubset || doc->extSubset) {
        seterr(p->err, p->errlen, "a DOCTYPE is not allowed");
        goto fail;
    }
    if (!is_elem(r, root)) {
        seterr(p->err, p->errlen, "root element must be <%s>", root);
        goto fail;
    }
    return doc;
fail:
    xmlFreeDoc(doc);
    return NULL;
}

/* <params><param><value>..</value></param>...</params> -> XR_ARRAY */
static struct xr_value *parse_params(struct pctx *p, xmlNode *params)
{
    struct xr_value *a = xr_new_array();
    int bad = 0;

    if (!a)
        return NULL;
    for (xmlNode *c = next_elem(params->children, &bad); c;
         c = next_elem(c->next, &bad)) {
        xmlNode *ve;
        struct xr_value *v;

        if (!is_elem(c, "param")) {
            seterr(p->err, p->errlen, "<params> may hold <param> only");
            goto fail;
        }
        ve = only_child(p, c, "value");
        if (!ve)
            goto fail;
        v = parse_value(p, ve, 1);
        if (!v || xr_add(a, NULL, v) < 0)
            goto fail;
    }
    if (bad) {
        seterr(p->err, p->errlen, "stray text in <params>");
        goto fail;
    }
    return a;
fail:
    xr_value_free(a);
    return NULL;
}

static int method_name_ok(const char *s)
{
    if (!s[0] || strlen(s) > 128)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
              (*s >= '0' && *s <= '9') || strchr("_.:/-", *s)))
            return 0;
    return 1;
}

int xr_parse_call(const char *xml, size_t len, struct xr_call *call, char *err,
                  size_t errlen)
{
    struct pctx p = {err, errlen};
    xmlNode *name, *params = NULL;
    int bad = 0, rc = XR_FAULT_INVALID_REQUEST;
    xmlDoc *doc;

    memset(call, 0, sizeof(*call));
    doc = read_doc(&p, xml, len, "methodCall", XR_MAX_INPUT);
    if (!doc)
        return XR_FAULT_PARSE;
    name = next_elem(xmlDocGetRootElement(doc)->children, &bad);
    if (name)
        params = next_elem(name->next, &bad);
    if (bad || !is_elem(name, "methodName") ||
        (params && !is_elem(params, "params")) ||
        (params && (next_elem(params->next, &bad) || bad))) {
        seterr(err, errlen,
               "<methodCall> must hold <methodName> then <params>");
        goto out;
    }
    call->method = text_of(&p, name);
    if (!call->method)
        goto out;
    if (!method_name_ok(call->method)) {
        seterr(err, errlen, "bad methodName");
        goto out;
    }
    call->params = params ? parse_params(&p, params) : xr_new_array();
    if (!call->params)
        goto out;
    rc = 0;
out:
    xmlFreeDoc(doc);
    if (rc)
        xr_call_free(call);
    return rc;
}

void xr_call_free(struct xr_call *call)
{
    free(call->method);
    xr_value_free(call->params);
    memset(call, 0, sizeof(*call));
}

static int parse_fault(struct pctx *p, xmlNode *fault, struct xr_response *resp)
{
    xmlNode *ve = only_child(p, fault, "value");
    struct xr_value *v = ve ? parse_value(p, ve, 1) : NULL;
    const struct xr_value *code, *str;
    int rc = -1;

    if (!v)
        return -1;
    code = xr_struct_get(v, "faultCode");
    str = xr_struct_get(v, "faultString");
    if (!code || code->type != XR_INT || !str || str->type != XR_STRING) {
        seterr(p->err, p->errlen, "fault must be {faultCode, faultString}");
        goto out;
    }
    resp->is_fault = 1;
    resp->fault_code = (int)code->num;
    resp->fault_string = strdup(str->str);
    rc = resp->fault_string ? 0 : -1;
out:
    xr_value_free(v);
    return rc;
}

int xr_parse_response(const char *xml, size_t len, struct xr_response *resp,
                      char *err, size_t errlen)
{
    struct pctx p = {err, errlen};
    int bad = 0, rc = -1;
    xmlNode *body;
    xmlDoc *doc;

    memset(resp, 0, sizeof(*resp));
    doc = read_doc(&p, xml, len, "methodResponse", XR_MAX_RESPONSE);
    if (!doc)
        return -1;
    body = next_elem(xmlDocGetRootElement(doc)->children, &bad);
    if (bad || !body || next_elem(body->next, &bad) || bad) {
        seterr(err, errlen, "<methodResponse> must hold one element");
        goto out;
    }
    if (is_elem(body, "fault")) {
        rc = parse_fault(&p, body, resp);
    } else if (is_elem(body, "params")) {
        struct xr_value *a = parse_params(&p, body);

        if (a && a->n == 1) {
            resp->value = a->items[0];
            a->n = 0;
            rc = 0;
        } else if (a) {
            seterr(err, errlen, "a response holds exactly one <param>");
        }
        xr_value_free(a);
    } else {
        seterr(err, errlen, "<methodResponse> holds <params> or <fault>");
    }
out:
    xmlFreeDoc(doc);
    if (rc)
        xr_response_free(resp);
    return rc;
}

void xr_response_free(struct xr_response *resp)
{
    free(resp->fault_string);
    xr_value_free(resp->value);
    memset(resp, 0, sizeof(*resp));
}

/* ---------------------------------------------------------------------- */
/* building                                                                */
/* ---------------------------------------------------------------------- */

static const char *type_tag(enum xr_type t)
{
    for (size_t i = 0; i < sizeof(scalar_types) / sizeof(scalar_types[0]); i++)
        if (scalar_types[i].type == t)
            return scalar_types[i].name;
    return "string";
}

static int emit_value(xmlNode *parent, const struct xr_value *v);

static int emit_container(xmlNode *typed, const struct xr_value *v)
{
    xmlNode *holder = typed;

    if (v->type == XR_ARRAY) {
        holder = xmlNewChild(typed, NULL, BAD_CAST "data", NULL);
        if (!holder)
            return -1;
    }
    for (size_t i = 0; i < v->n; i++) {
        xmlNode *at = holder;

        if (v->type == XR_STRUCT) {
            at = xmlNewChild(holder, NULL, BAD_CAST "member", NULL);
            if (!at || !xmlNewTextChild(at, NULL, BAD_CAST "name",
                                        BAD_CAST v->keys[i]))
                return -1;
        }
        if (emit_value(at, v->items[i]) < 0)
            return -1;
    }
    return 0;
}

static int emit_value(xmlNode *parent, const struct xr_value *v)
{
    xmlNode *ve = xmlNewChild(parent, NULL, BAD_CAST "value", NULL);
    xmlNode *typed;

    if (!ve)
        return -1;
    if (v->type == XR_STRUCT || v->type == XR_ARRAY) {
        typed = xmlNewChild(ve, NULL,
                            BAD_CAST(v->type == XR_STRUCT ? "struct" : "array"),
                            NULL);
        return typed ? emit_container(typed, v) : -1;
    }
    typed = xmlNewTextChild(ve, NULL, BAD_CAST type_tag(v->type),
                            v->type == XR_NIL ? NULL
                                              : BAD_CAST(v->str ? v->str : ""));
    return typed ? 0 : -1;
}

/* Serializes doc into a malloc'd string and frees doc. */
static char *finish(xmlDoc *doc, size_t *len)
{
    xmlChar *buf = NULL;
    char *out = NULL;
    int size = 0;

    xmlDocDumpFormatMemoryEnc(doc, &buf, &size, "UTF-8", 0);
    xmlFreeDoc(doc);
    if (!buf || size < 0)
        goto out;
    out = malloc((size_t)size + 1);
    if (!out)
        goto out;
    memcpy(out, buf, (size_t)size);
    out[size] = '\0';
    if (len)
        *len = (size_t)size;
out:
    xmlFree(buf);
    return out;
}

static xmlDoc *new_doc(const char *root, xmlNode **r)
{
    xmlDoc *doc = xmlNewDoc(BAD_CAST "1.0");

    if (!doc)
        return NULL;
    *r = xmlNewNode(NULL, BAD_CAST root);
    if (!*r) {
        xmlFreeDoc(doc);
        return NULL;
    }
    xmlDocSetRootElement(doc, *r);
    return doc;
}

static int emit_params(xmlNode *r, const struct xr_value *const *vals, size_t n)
{
    xmlNode *params = xmlNewChild(r, NULL, BAD_CAST "params", NULL);

    if (!params)
        return -1;
    for (size_t i = 0; i < n; i++) {
        xmlNode *param = xmlNewChild(params, NULL, BAD_CAST "param", NULL);

        if (!param || emit_value(param, vals[i]) < 0)
            return -1;
    }
    return 0;
}

char *xr_build_call(const char *method, const struct xr_value *params,
                    size_t *len)
{
    xmlNode *r;
    xmlDoc *doc = new_doc("methodCall", &r);

    if (!doc)
        return NULL;
    if (!xmlNewTextChild(r, NULL, BAD_CAST "methodName", BAD_CAST method) ||
        emit_params(r, (const struct xr_value *const *)params->items,
                    params->n) < 0) {
        xmlFreeDoc(doc);
        return NULL;
    }
    return finish(doc, len);
}

char *xr_build_response(const struct xr_value *value, size_t *len)
{
    xmlNode *r;
    xmlDoc *doc = new_doc("methodResponse", &r);

    if (!doc)
        return NULL;
    if (emit_params(r, &value, 1) < 0) {
        xmlFreeDoc(doc);
        return NULL;
    }
    return finish(doc, len);
}

static struct xr_value *new_int(int n)
{
    struct xr_value *v = value_new(XR_INT, NULL);
    char num[24];

    if (!v)
        return NULL;
    snprintf(num, sizeof(num), "%d", n);
    v->num = n;
    v->str = strdup(num);
    if (!v->str) {
        free(v);
        return NULL;
    }
    return v;
}

char *xr_build_fault(int code, const char *message, size_t *len)
{
    struct xr_value *st = xr_new_struct();
    xmlNode *r, *fault;
    xmlDoc *doc = NULL;
    char *out = NULL;

    if (!st || xr_add(st, "faultCode", new_int(code)) < 0 ||
        xr_struct_set_string(st, "faultString", message) < 0)
        goto out;
    doc = new_doc("methodResponse", &r);
    if (!doc)
        goto out;
    fault = xmlNewChild(r, NULL, BAD_CAST "fault", NULL);
    if (!fault || emit_value(fault, st) < 0) {
        xmlFreeDoc(doc);
        goto out;
    }
    out = finish(doc, len);
out:
    xr_value_free(st);
    return out;
}
