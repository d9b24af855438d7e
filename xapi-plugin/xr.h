/*
 * xr.h - XML-RPC values, parsing and building, on top of libxml2.
 *
 * This module owns the XML-RPC side of vgpu's XCP-ng glue: a small value
 * tree (struct xr_value), strict parsing of a <methodCall> (what xapi hands
 * a plugin) and of a <methodResponse> (what xapi answers a XenAPI call),
 * and building of both, faults included.  All XML is read and written by
 * libxml2; nothing here parses XML by hand.
 */
#ifndef VGPU_XR_H
#define VGPU_XR_H

#include <stddef.h>

/* Largest methodCall accepted (what a plugin is handed), in bytes. */
#define XR_MAX_INPUT ((size_t)64 * 1024)
/* Largest methodResponse accepted (what xapi answers), in bytes. */
#define XR_MAX_RESPONSE ((size_t)1024 * 1024)
/* Deepest nesting of values accepted (struct in array in struct ...). */
#define XR_MAX_DEPTH 16

/* Standard XML-RPC fault codes (specs for interoperability). */
#define XR_FAULT_PARSE (-32700)           /* not well-formed XML */
#define XR_FAULT_INVALID_REQUEST (-32600) /* not a valid methodCall */
#define XR_FAULT_NO_METHOD (-32601)       /* unknown method */
#define XR_FAULT_BAD_PARAMS (-32602)      /* wrong parameter shapes */

enum xr_type {
    XR_STRING,
    XR_INT, /* int, i4, i8 */
    XR_BOOL,
    XR_DOUBLE,
    XR_DATETIME,
    XR_BASE64,
    XR_NIL,
    XR_STRUCT,
    XR_ARRAY,
};

/*
 * A value.  Scalars keep their text in `str` (ints also in `num`);
 * structs keep `n` members in keys[i] -> items[i]; arrays keep `n`
 * items (keys is NULL).
 */
struct xr_value {
    enum xr_type type;
    char *str;
    long long num;
    size_t n;
    char **keys;
    struct xr_value **items;
};

/* A parsed plugin call: methodName and its params (an XR_ARRAY). */
struct xr_call {
    char *method;
    struct xr_value *params;
};

/* A parsed methodResponse: either a value or a fault. */
struct xr_response {
    int is_fault;
    int fault_code;
    char *fault_string;
    struct xr_value *value; /* NULL for a fault */
};

void xr_value_free(struct xr_value *v);
struct xr_value *xr_new_string(const char *s);
struct xr_value *xr_new_struct(void);
struct xr_value *xr_new_array(void);
/* Adds a member (struct: key required; array: key NULL).  Takes `item`
 * (freed on failure).  Returns 0 or -1. */
int xr_add(struct xr_value *container, const char *key, struct xr_value *item);
int xr_struct_set_string(struct xr_value *st, const char *key, const char *val);
/* Member of a struct by name, or NULL. */
const struct xr_value *xr_struct_get(const struct xr_value *st,
                                     const char *key);
/* Text of a string member, or NULL when absent or not a string. */
const char *xr_struct_get_string(const struct xr_value *st, const char *key);

/*
 * Parses a <methodCall>.  Returns 0, or an XR_FAULT_* code with a
 * human-readable reason in err.  The caller frees with xr_call_free().
 */
int xr_parse_call(const char *xml, size_t len, struct xr_call *call, char *err,
                  size_t errlen);
void xr_call_free(struct xr_call *call);

/* Parses a <methodResponse>.  Returns 0 or -1 with a reason in err. */
int xr_parse_response(const char *xml, size_t len, struct xr_response *resp,
                      char *err, size_t errlen);
void xr_response_free(struct xr_response *resp);

/*
 * Builders.  Each returns a malloc'd NUL-terminated XML document (the
 * length in *len when len is not NULL), or NULL when out of memory.
 */
char *xr_build_call(const char *method, const struct xr_value *params,
                    size_t *len);
char *xr_build_response(const struct xr_value *value, size_t *len);
char *xr_build_fault(int code, const char *message, size_t *len);

#endif /* VGPU_XR_H */
