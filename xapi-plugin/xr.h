/*
 * xr.h - XML-RPC values, parsing and building, with our own strict reader
 * and writer (no libxml2: the XCP-ng dom0 build has none to link).
 *
 * This module owns the XML-RPC side of vgpu's XCP-ng glue: a small value
 * tree (struct xr_value), strict parsing of a <methodCall> (what xapi hands
 * a plugin) and of a <methodResponse> (what xapi answers a XenAPI call),
 * and building of both, faults and the XenAPI result envelope included.
 *
 * The reader is a parser of hostile outside bytes.  It is a pure function
 * from (bytes, length) to a value tree or a defined error (struct xr_err):
 * no globals, no recursion deeper than XR_MAX_DEPTH values, no allocation
 * beyond a small multiple of the input (itself at most XR_MAX_INPUT or
 * XR_MAX_RESPONSE bytes), so it can serve as a libFuzzer target as it is.
 * It reads the XML that xapi (xml-light2 on Xmlm) and Python's xmlrpc
 * write: an XML declaration (UTF-8), whitespace, comments, processing
 * instructions, CDATA, the five predefined entities and character
 * references (&#N; &#xN;, decoded to UTF-8).  It refuses everything else:
 * DOCTYPE and other declarations (no entities are ever defined or
 * expanded), attributes, mismatched or unclosed tags, bad references,
 * invalid UTF-8 or characters XML 1.0 forbids, nesting over XR_MAX_DEPTH,
 * content after the root element.
 */
#ifndef VGPU_XR_H
#define VGPU_XR_H

#include <stddef.h>

/* Largest methodCall accepted (what a plugin is handed), in bytes. */
#define XR_MAX_INPUT ((size_t)64 * 1024)
/* Largest methodResponse accepted (what xapi answers), in bytes. */
#define XR_MAX_RESPONSE ((size_t)1024 * 1024)
/* Deepest nesting of values accepted (struct in array in struct ...); a
 * param's own value is depth 1. */
#define XR_MAX_DEPTH 16
/* Longest methodName accepted. */
#define XR_MAX_METHOD 128

/* Standard XML-RPC fault codes (specs for interoperability). */
#define XR_FAULT_PARSE (-32700)           /* not well-formed XML */
#define XR_FAULT_INVALID_REQUEST (-32600) /* not a valid methodCall */
#define XR_FAULT_NO_METHOD (-32601)       /* unknown method */
#define XR_FAULT_BAD_PARAMS (-32602)      /* wrong parameter shapes */
#define XR_FAULT_INTERNAL (-32603)        /* out of memory and the like */

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
 * A value.  Scalars keep their text in `str` (ints and booleans also in
 * `num`); structs keep `n` members in keys[i] -> items[i]; arrays keep `n`
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

/*
 * Why a document was refused.  Everything up to XR_E_TRAILING means the
 * bytes are not (acceptable) well-formed XML (XR_FAULT_PARSE); the rest
 * means well-formed XML that is not the XML-RPC document wanted
 * (XR_FAULT_INVALID_REQUEST), except XR_E_NOMEM (XR_FAULT_INTERNAL).
 */
enum xr_errkind {
    XR_E_NONE = 0,
    XR_E_SIZE,      /* empty, or longer than the limit */
    XR_E_UTF8,      /* invalid UTF-8 (overlong, surrogate, truncated ...) */
    XR_E_CHAR,      /* a character XML 1.0 forbids (NUL, controls, FFFE) */
    XR_E_ENCODING,  /* the XML declaration names an encoding not UTF-8 */
    XR_E_DOCTYPE,   /* DOCTYPE, ENTITY or another markup declaration */
    XR_E_SYNTAX,    /* bad tag, comment, PI, CDATA or declaration */
    XR_E_MISMATCH,  /* an end tag that does not close the open element */
    XR_E_REF,       /* unknown entity or bad character reference */
    XR_E_TRUNCATED, /* the input ends inside the document */
    XR_E_TRAILING,  /* something other than comments/PIs after the root */
    XR_E_DEPTH,     /* values nested deeper than XR_MAX_DEPTH */
    XR_E_STRUCTURE, /* an element or text where XML-RPC has none */
    XR_E_VALUE,     /* a scalar's text is not valid for its type */
    XR_E_DUPLICATE, /* a struct names a member twice */
    XR_E_NOMEM,
};

struct xr_err {
    enum xr_errkind kind;
    size_t offset;         /* byte offset where the problem was found */
    unsigned line, column; /* the same, 1-based */
    char msg[256];         /* one readable line */
};

/* "XR_E_SYNTAX" etc., for logs and tests. */
const char *xr_errkind_name(enum xr_errkind kind);
/* The XML-RPC fault code for a refusal (XR_FAULT_PARSE ...). */
int xr_errkind_fault(enum xr_errkind kind);

void xr_value_free(struct xr_value *v);
struct xr_value *xr_new_string(const char *s);
struct xr_value *xr_new_int(long long n);
struct xr_value *xr_new_bool(int b);
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
 * Parses a <methodCall> of at most XR_MAX_INPUT bytes.  Returns 0, or -1
 * with the reason in *e (e may be NULL).  The caller frees with
 * xr_call_free(); on failure *call is empty.
 */
int xr_parse_call_ex(const char *xml, size_t len, struct xr_call *call,
                     struct xr_err *e);
/* The same, returning 0 or the XR_FAULT_* code, e->msg copied to err. */
int xr_parse_call(const char *xml, size_t len, struct xr_call *call, char *err,
                  size_t errlen);
void xr_call_free(struct xr_call *call);

/* Parses a <methodResponse> of at most XR_MAX_RESPONSE bytes: 0 or -1. */
int xr_parse_response_ex(const char *xml, size_t len, struct xr_response *resp,
                         struct xr_err *e);
int xr_parse_response(const char *xml, size_t len, struct xr_response *resp,
                      char *err, size_t errlen);
void xr_response_free(struct xr_response *resp);

/*
 * Builders.  Each returns a malloc'd NUL-terminated XML document (the
 * length in *len when len is not NULL), or NULL when out of memory or
 * when the tree cannot be written as one this module would read back:
 * nested deeper than XR_MAX_DEPTH, or a non-string scalar whose text is
 * invalid for its type.  In strings and member names, bytes that XML 1.0
 * cannot carry (invalid UTF-8, control characters other than tab, LF and
 * CR) are written as U+FFFD; CR is written as &#13; so it survives.
 */
char *xr_build_call(const char *method, const struct xr_value *params,
                    size_t *len);
char *xr_build_response(const struct xr_value *value, size_t *len);
char *xr_build_fault(int code, const char *message, size_t *len);

/*
 * The XenAPI result envelope in a methodResponse, what XenAPIPlugin.py's
 * success_message / failure_message print and what xapi's
 * XMLRPC.From.methodResponse reads from a plugin:
 *   {Status: "Success", Value: value}
 *   {Status: "Failure", ErrorDescription: [code, params[0], ...]}
 * all strings.
 */
char *xr_build_xenapi_success(const char *value, size_t *len);
char *xr_build_xenapi_failure(const char *code, const char *const *params,
                              size_t nparams, size_t *len);

#endif /* VGPU_XR_H */
