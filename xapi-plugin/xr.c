/*
 * xr.c - XML-RPC values, our strict XML reader and writer, and the
 * methodCall / methodResponse / XenAPI-envelope documents of xr.h.
 *
 * The reader has two layers.  The lexer turns the bytes into tokens (start
 * tag, end tag, text) and alone decides well-formedness: the whole input
 * is checked for UTF-8 and XML characters first, then the prolog (XML
 * declaration, comments, PIs; never a DOCTYPE) is skipped, then content is
 * tokenised with comments, PIs and CDATA folded into the text around them,
 * references decoded and end tags checked against a fixed-size stack of
 * open elements.  The grammar on top is recursive descent over the
 * XML-RPC shapes; its only recursion is value -> struct/array -> value,
 * and every value checks its depth against XR_MAX_DEPTH first.
 *
 * Memory: decoded text goes into one arena of len + 1 bytes allocated up
 * front (decoding never lengthens text, and each text token is followed
 * by a tag that adds nothing to the arena, which pays for its NUL), and
 * the value tree has at most one node per <value> tag.  Nothing else is
 * allocated, so a parse costs a small multiple of the (bounded) input.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xr.h"

/* Deepest element nesting the lexer tracks: a value at depth d sits at
 * element level 3d + 1 (methodResponse/params/param/value, then
 * struct/member/value per level), so this leaves room to reach the
 * grammar's own depth check. */
#define LEX_MAX_OPEN (3 * XR_MAX_DEPTH + 8)
/* Longest element name kept (every XML-RPC name is far shorter). */
#define LEX_NAME_MAX 63

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

struct xr_value *xr_new_int(long long n)
{
    char num[24];
    struct xr_value *v;

    snprintf(num, sizeof(num), "%lld", n);
    v = value_new(XR_INT, num);
    if (v)
        v->num = n;
    return v;
}

struct xr_value *xr_new_bool(int b)
{
    struct xr_value *v = value_new(XR_BOOL, b ? "1" : "0");

    if (v)
        v->num = !!b;
    return v;
}

struct xr_value *xr_new_struct(void)
{
    return value_new(XR_STRUCT, NULL);
}

struct xr_value *xr_new_array(void)
{
    return value_new(XR_ARRAY, NULL);
}

/*
 * Makes room for element n of arr (elements of `elem` bytes) and returns
 * the array, moved or not, or NULL.  The capacity is implied by n (the
 * next power of two), so a container of n items costs O(n) copying in
 * all, without a capacity field in the public struct.
 */
static void *room_for(void *arr, size_t n, size_t elem)
{
    if (n && (n & (n - 1)))
        return arr; /* not a power of two: room is left */
    if (n > SIZE_MAX / 2 / elem)
        return NULL;
    return realloc(arr, (n ? 2 * n : 1) * elem);
}

int xr_add(struct xr_value *c, const char *key, struct xr_value *item)
{
    struct xr_value **items;
    char *k = NULL;

    if (!item)
        return -1;
    if (!c || (c->type != XR_STRUCT && c->type != XR_ARRAY) ||
        (c->type == XR_STRUCT) != (key != NULL))
        goto fail;
    if (key && !(k = strdup(key)))
        goto fail;
    items = room_for(c->items, c->n, sizeof(*c->items));
    if (!items)
        goto fail;
    c->items = items;
    if (key) {
        char **keys = room_for(c->keys, c->n, sizeof(*c->keys));

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
    if (!st || st->type != XR_STRUCT || !key)
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
/* characters                                                              */
/* ---------------------------------------------------------------------- */

/* XML 1.0 Char: #x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] |
 * [#x10000-#x10FFFF]. */
static int xml_char_ok(uint32_t c)
{
    return c == 0x9 || c == 0xA || c == 0xD || (c >= 0x20 && c <= 0xD7FF) ||
           (c >= 0xE000 && c <= 0xFFFD) || (c >= 0x10000 && c <= 0x10FFFF);
}

/*
 * Decodes one UTF-8 sequence at s (n bytes available).  Returns its
 * length, or 0 when it is not valid UTF-8 (overlong forms, surrogates and
 * code points above U+10FFFF included).
 */
static size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
    unsigned char c = s[0];
    size_t len;
    uint32_t v;

    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        v = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        v = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        v = c & 0x07;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        v = (v << 6) | (s[i] & 0x3F);
    }
    if ((len == 3 && v < 0x800) || (len == 4 && v < 0x10000) ||
        (v >= 0xD800 && v <= 0xDFFF) || v > 0x10FFFF)
        return 0;
    *cp = v;
    return len;
}

static size_t utf8_encode(uint32_t c, char out[4])
{
    if (c < 0x80) {
        out[0] = (char)c;
        return 1;
    }
    if (c < 0x800) {
        out[0] = (char)(0xC0 | (c >> 6));
        out[1] = (char)(0x80 | (c & 0x3F));
        return 2;
    }
    if (c < 0x10000) {
        out[0] = (char)(0xE0 | (c >> 12));
        out[1] = (char)(0x80 | ((c >> 6) & 0x3F));
        out[2] = (char)(0x80 | (c & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (c >> 18));
    out[1] = (char)(0x80 | ((c >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((c >> 6) & 0x3F));
    out[3] = (char)(0x80 | (c & 0x3F));
    return 4;
}

static int is_ws(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static int is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static int is_alpha(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Name characters; bytes >= 0x80 are (already validated) UTF-8, which XML
 * allows in names. */
static int name_start(unsigned char c)
{
    return is_alpha(c) || c == '_' || c == ':' || c >= 0x80;
}

static int name_char(unsigned char c)
{
    return name_start(c) || is_digit(c) || c == '.' || c == '-';
}

/* ---------------------------------------------------------------------- */
/* errors                                                                  */
/* ---------------------------------------------------------------------- */

static const char *const kind_names[] = {
    [XR_E_NONE] = "XR_E_NONE",
    [XR_E_SIZE] = "XR_E_SIZE",
    [XR_E_UTF8] = "XR_E_UTF8",
    [XR_E_CHAR] = "XR_E_CHAR",
    [XR_E_ENCODING] = "XR_E_ENCODING",
    [XR_E_DOCTYPE] = "XR_E_DOCTYPE",
    [XR_E_SYNTAX] = "XR_E_SYNTAX",
    [XR_E_MISMATCH] = "XR_E_MISMATCH",
    [XR_E_REF] = "XR_E_REF",
    [XR_E_TRUNCATED] = "XR_E_TRUNCATED",
    [XR_E_TRAILING] = "XR_E_TRAILING",
    [XR_E_DEPTH] = "XR_E_DEPTH",
    [XR_E_STRUCTURE] = "XR_E_STRUCTURE",
    [XR_E_VALUE] = "XR_E_VALUE",
    [XR_E_DUPLICATE] = "XR_E_DUPLICATE",
    [XR_E_NOMEM] = "XR_E_NOMEM",
};

const char *xr_errkind_name(enum xr_errkind kind)
{
    if ((unsigned)kind >= sizeof(kind_names) / sizeof(kind_names[0]))
        return "XR_E_?";
    return kind_names[kind];
}

int xr_errkind_fault(enum xr_errkind kind)
{
    switch (kind) {
    case XR_E_NONE:
        return 0;
    case XR_E_DEPTH:
    case XR_E_STRUCTURE:
    case XR_E_VALUE:
    case XR_E_DUPLICATE:
        return XR_FAULT_INVALID_REQUEST;
    case XR_E_NOMEM:
        return XR_FAULT_INTERNAL;
    default:
        return XR_FAULT_PARSE;
    }
}

/* Kinds that say the bytes are not XML we accept (message prefix). */
static int is_malformed(enum xr_errkind k)
{
    return k == XR_E_UTF8 || k == XR_E_CHAR || k == XR_E_ENCODING ||
           k == XR_E_SYNTAX || k == XR_E_MISMATCH || k == XR_E_REF ||
           k == XR_E_TRUNCATED || k == XR_E_TRAILING;
}

/* ---------------------------------------------------------------------- */
/* lexer                                                                   */
/* ---------------------------------------------------------------------- */

enum tok {
    T_NONE,
    T_START, /* L->name is the element, now on top of the open stack */
    T_END,   /* L->name is the element just closed */
    T_TEXT,  /* L->text, L->text_len; L->text_ws: whitespace only */
    T_EOF,   /* the root is closed and only comments/PIs followed */
};

struct lex {
    const unsigned char *s;
    size_t len, pos;
    struct xr_err *e;
    int failed;

    enum tok tok;
    size_t tok_off;
    const char *name;
    const char *text;
    size_t text_len;
    int text_ws;
    int pending_end; /* <x/>: the END comes as the next token */

    char open[LEX_MAX_OPEN][LEX_NAME_MAX + 1];
    int nopen;
    char closed[LEX_NAME_MAX + 1];

    char *arena;
    size_t arena_cap, arena_len;
};

static int lfail(struct lex *L, enum xr_errkind kind, size_t off,
                 const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Records the first error only (later ones are consequences); -1. */
static int lfail(struct lex *L, enum xr_errkind kind, size_t off,
                 const char *fmt, ...)
{
    struct xr_err *e = L->e;
    unsigned line = 1, col = 1;
    char what[200];
    va_list ap;

    if (L->failed)
        return -1;
    L->failed = 1;
    if (off > L->len)
        off = L->len;
    for (size_t i = 0; i < off; i++) {
        if (L->s[i] == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    e->kind = kind;
    e->offset = off;
    e->line = line;
    e->column = col;
    if (kind == XR_E_SIZE || kind == XR_E_NOMEM)
        snprintf(e->msg, sizeof(e->msg), "%s", what);
    else
        snprintf(e->msg, sizeof(e->msg), "%s%s (line %u, column %u)",
                 is_malformed(kind) ? "malformed XML: " : "", what, line, col);
    return -1;
}

static int nomem(struct lex *L)
{
    return lfail(L, XR_E_NOMEM, L->pos, "out of memory");
}

static const char *top(const struct lex *L)
{
    return L->nopen ? L->open[L->nopen - 1] : "";
}

static int at(const struct lex *L, const char *lit)
{
    size_t n = strlen(lit);

    return L->len - L->pos >= n && !memcmp(L->s + L->pos, lit, n);
}

static int at_end(const struct lex *L)
{
    return L->pos >= L->len;
}

static unsigned char cur(const struct lex *L)
{
    return L->pos < L->len ? L->s[L->pos] : 0;
}

static size_t skip_ws_bytes(struct lex *L)
{
    size_t start = L->pos;

    while (!at_end(L) && is_ws(L->s[L->pos]))
        L->pos++;
    return L->pos - start;
}

/* Every byte is UTF-8 of a character XML allows (checked once, first). */
static int check_chars(struct lex *L)
{
    for (size_t i = 0; i < L->len;) {
        uint32_t c;
        size_t n = utf8_decode(L->s + i, L->len - i, &c);

        if (!n)
            return lfail(L, XR_E_UTF8, i, "invalid UTF-8 (byte 0x%02x)",
                         L->s[i]);
        if (!xml_char_ok(c)) {
            if (c == 0)
                return lfail(L, XR_E_CHAR, i, "a NUL byte");
            return lfail(L, XR_E_CHAR, i, "character U+%04X is not allowed",
                         (unsigned)c);
        }
        i += n;
    }
    return 0;
}

/* A name at pos into out (NULL: skip it).  0 or -1. */
static int read_name(struct lex *L, char *out, const char *what)
{
    size_t start = L->pos, n;

    if (at_end(L))
        return lfail(L, XR_E_TRUNCATED, L->pos, "the document ends in a %s",
                     what);
    if (!name_start(cur(L)))
        return lfail(L, XR_E_SYNTAX, L->pos, "bad %s", what);
    while (!at_end(L) && name_char(L->s[L->pos]))
        L->pos++;
    n = L->pos - start;
    if (!out)
        return 0;
    if (n > LEX_NAME_MAX)
        return lfail(L, XR_E_STRUCTURE, start,
                     "element name '%.20s...' is "
                     "too long",
                     (const char *)L->s + start);
    memcpy(out, L->s + start, n);
    out[n] = '\0';
    return 0;
}

static int skip_comment(struct lex *L)
{
    size_t start = L->pos;
    const unsigned char *dd;

    L->pos += 4; /* <!-- */
    dd = memmem(L->s + L->pos, L->len - L->pos, "--", 2);
    if (!dd)
        return lfail(L, XR_E_TRUNCATED, start, "unterminated comment");
    L->pos = (size_t)(dd - L->s);
    if (L->pos + 2 >= L->len)
        return lfail(L, XR_E_TRUNCATED, start, "unterminated comment");
    if (L->s[L->pos + 2] != '>')
        return lfail(L, XR_E_SYNTAX, L->pos, "'--' inside a comment");
    L->pos += 3;
    return 0;
}

/* A processing instruction other than the XML declaration: skipped. */
static int skip_pi(struct lex *L)
{
    size_t start = L->pos, tstart;
    const unsigned char *end;

    L->pos += 2; /* <? */
    tstart = L->pos;
    if (read_name(L, NULL, "processing instruction target") < 0)
        return -1;
    if (L->pos - tstart == 3 && (L->s[tstart] | 0x20) == 'x' &&
        (L->s[tstart + 1] | 0x20) == 'm' && (L->s[tstart + 2] | 0x20) == 'l')
        return lfail(L, XR_E_SYNTAX, start,
                     "an XML declaration is allowed only at the very start");
    if (!at(L, "?>") && !skip_ws_bytes(L) && !at_end(L))
        return lfail(L, XR_E_SYNTAX, L->pos, "bad processing instruction");
    end = memmem(L->s + L->pos, L->len - L->pos, "?>", 2);
    if (!end)
        return lfail(L, XR_E_TRUNCATED, start,
                     "unterminated processing instruction");
    L->pos = (size_t)(end - L->s) + 2;
    return 0;
}

/* <!...> other than a comment or CDATA: never accepted. */
static int declaration(struct lex *L)
{
    static const char *const decls[] = {"<!ENTITY", "<!ELEMENT", "<!ATTLIST",
                                        "<!NOTATION"};

    if (at(L, "<!DOCTYPE"))
        return lfail(L, XR_E_DOCTYPE, L->pos, "a DOCTYPE is not allowed");
    for (size_t i = 0; i < sizeof(decls) / sizeof(decls[0]); i++)
        if (at(L, decls[i]))
            return lfail(L, XR_E_DOCTYPE, L->pos,
                         "markup declarations (%s) are not allowed", decls[i]);
    return lfail(L, XR_E_SYNTAX, L->pos, "bad markup '<!'");
}

/* pseudo-attribute of the XML declaration: name = 'value' or "value" */
static int decl_attr(struct lex *L, const char *name, const char **val,
                     size_t *vlen)
{
    unsigned char q;
    const unsigned char *end;

    if (!at(L, name))
        return lfail(L, XR_E_SYNTAX, L->pos, "bad XML declaration");
    L->pos += strlen(name);
    skip_ws_bytes(L);
    if (cur(L) != '=')
        return lfail(L, XR_E_SYNTAX, L->pos, "bad XML declaration");
    L->pos++;
    skip_ws_bytes(L);
    q = cur(L);
    if (q != '"' && q != '\'')
        return lfail(L, XR_E_SYNTAX, L->pos, "bad XML declaration");
    L->pos++;
    end = memchr(L->s + L->pos, q, L->len - L->pos);
    if (!end)
        return lfail(L, XR_E_TRUNCATED, L->pos, "unterminated XML declaration");
    *val = (const char *)L->s + L->pos;
    *vlen = (size_t)(end - (L->s + L->pos));
    L->pos = (size_t)(end - L->s) + 1;
    return 0;
}

static int ieq(const char *s, size_t n, const char *lit)
{
    if (strlen(lit) != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((s[i] | 0x20) != (lit[i] | 0x20))
            return 0;
    return 1;
}

/*
 * <?xml version="1.x" [encoding="..."] [standalone="yes|no"]?>  The bytes
 * are read as UTF-8 whatever it says, so any other encoding is refused
 * rather than misread (US-ASCII is a subset and fine).
 */
static int xml_decl(struct lex *L)
{
    size_t start = L->pos, vlen, ws;
    const char *v;

    L->pos += 5; /* <?xml */
    if (!skip_ws_bytes(L) || decl_attr(L, "version", &v, &vlen) < 0)
        return lfail(L, XR_E_SYNTAX, start, "bad XML declaration");
    if (vlen < 3 || v[0] != '1' || v[1] != '.')
        return lfail(L, XR_E_SYNTAX, start, "unsupported XML version");
    for (size_t i = 2; i < vlen; i++)
        if (!is_digit((unsigned char)v[i]))
            return lfail(L, XR_E_SYNTAX, start, "unsupported XML version");
    ws = skip_ws_bytes(L);
    if (ws && at(L, "encoding")) {
        if (decl_attr(L, "encoding", &v, &vlen) < 0)
            return -1;
        if (!ieq(v, vlen, "UTF-8") && !ieq(v, vlen, "US-ASCII"))
            return lfail(L, XR_E_ENCODING, start,
                         "encoding '%.*s' is not supported (only UTF-8)",
                         (int)(vlen > 40 ? 40 : vlen), v);
        ws = skip_ws_bytes(L);
    }
    if (ws && at(L, "standalone")) {
        if (decl_attr(L, "standalone", &v, &vlen) < 0)
            return -1;
        if (!ieq(v, vlen, "yes") && !ieq(v, vlen, "no"))
            return lfail(L, XR_E_SYNTAX, start, "bad XML declaration");
        skip_ws_bytes(L);
    }
    if (!at(L, "?>")) {
        if (at_end(L))
            return lfail(L, XR_E_TRUNCATED, start,
                         "unterminated XML declaration");
        return lfail(L, XR_E_SYNTAX, L->pos, "bad XML declaration");
    }
    L->pos += 2;
    return 0;
}

static int arena_put(struct lex *L, const char *p, size_t n)
{
    /* Cannot happen (see the file comment); checked all the same. */
    if (n >= L->arena_cap - L->arena_len)
        return lfail(L, XR_E_NOMEM, L->pos, "text arena exhausted");
    memcpy(L->arena + L->arena_len, p, n);
    L->arena_len += n;
    return 0;
}

/* &...; at pos: the five predefined entities or a character reference. */
static int reference(struct lex *L, char out[4], size_t *n)
{
    static const struct {
        const char *name;
        char c;
    } ents[] = {{"lt;", '<'},
                {"gt;", '>'},
                {"amp;", '&'},
                {"apos;", '\''},
                {"quot;", '"'}};
    size_t start = L->pos;
    uint32_t v = 0;
    int digits = 0;

    L->pos++; /* & */
    if (cur(L) != '#') {
        for (size_t i = 0; i < sizeof(ents) / sizeof(ents[0]); i++) {
            if (at(L, ents[i].name)) {
                L->pos += strlen(ents[i].name);
                out[0] = ents[i].c;
                *n = 1;
                return 0;
            }
        }
        if (!name_start(cur(L)))
            return lfail(L, XR_E_REF, start,
                         "'&' must start a reference (write &amp;)");
        read_name(L, NULL, "entity name");
        return lfail(L, XR_E_REF, start,
                     "unknown entity '%.*s' (only the five predefined ones)",
                     (int)(L->pos - start > 40 ? 40 : L->pos - start),
                     (const char *)L->s + start);
    }
    L->pos++; /* # */
    if (cur(L) == 'x') {
        L->pos++;
        for (; !at_end(L); L->pos++, digits++) {
            unsigned char c = cur(L);
            uint32_t d;

            if (is_digit(c))
                d = c - '0';
            else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
                d = (uint32_t)((c | 0x20) - 'a' + 10);
            else
                break;
            v = v * 16 + d;
            if (v > 0x10FFFF)
                return lfail(L, XR_E_REF, start, "bad character reference");
        }
    } else {
        for (; !at_end(L) && is_digit(cur(L)); L->pos++, digits++) {
            v = v * 10 + (uint32_t)(cur(L) - '0');
            if (v > 0x10FFFF)
                return lfail(L, XR_E_REF, start, "bad character reference");
        }
    }
    if (!digits || cur(L) != ';')
        return lfail(L, XR_E_REF, start, "bad character reference");
    L->pos++;
    if (!xml_char_ok(v))
        return lfail(L, XR_E_REF, start,
                     "character reference to U+%04X, which XML forbids",
                     (unsigned)v);
    *n = utf8_encode(v, out);
    return 0;
}

static int push(struct lex *L, const char *name, size_t off)
{
    if (L->nopen >= LEX_MAX_OPEN)
        return lfail(L, XR_E_DEPTH, off, "elements nested deeper than %d",
                     LEX_MAX_OPEN);
    snprintf(L->open[L->nopen++], LEX_NAME_MAX + 1, "%s", name);
    return 0;
}

static void pop(struct lex *L)
{
    snprintf(L->closed, sizeof(L->closed), "%s", top(L));
    L->nopen--;
    L->tok = T_END;
    L->name = L->closed;
}

static int start_tag(struct lex *L)
{
    char name[LEX_NAME_MAX + 1];
    size_t start = L->pos;

    L->pos++; /* < */
    if (read_name(L, name, "element name") < 0)
        return -1;
    skip_ws_bytes(L);
    if (at(L, "/>")) {
        L->pos += 2;
        L->pending_end = 1;
    } else if (cur(L) == '>') {
        L->pos++;
    } else if (at_end(L)) {
        return lfail(L, XR_E_TRUNCATED, start, "the document ends in <%s",
                     name);
    } else if (name_start(cur(L))) {
        return lfail(L, XR_E_STRUCTURE, start,
                     "attributes are not allowed (<%s ...>)", name);
    } else {
        return lfail(L, XR_E_SYNTAX, L->pos, "bad character in <%s>", name);
    }
    if (push(L, name, start) < 0)
        return -1;
    L->tok = T_START;
    L->name = top(L);
    return 0;
}

static int end_tag(struct lex *L)
{
    char name[LEX_NAME_MAX + 1];
    size_t start = L->pos;

    L->pos += 2; /* </ */
    if (read_name(L, name, "end tag") < 0)
        return -1;
    skip_ws_bytes(L);
    if (at_end(L))
        return lfail(L, XR_E_TRUNCATED, start, "the document ends in </%s",
                     name);
    if (cur(L) != '>')
        return lfail(L, XR_E_SYNTAX, L->pos, "bad character in </%s>", name);
    L->pos++;
    if (strcmp(name, top(L)))
        return lfail(L, XR_E_MISMATCH, start, "</%s> does not close <%s>", name,
                     top(L));
    pop(L);
    return 0;
}

/* After the root: only whitespace, comments and PIs, then the end. */
static int epilog(struct lex *L)
{
    for (;;) {
        skip_ws_bytes(L);
        if (at_end(L))
            break;
        if (at(L, "<!--")) {
            if (skip_comment(L) < 0)
                return -1;
        } else if (at(L, "<?")) {
            if (skip_pi(L) < 0)
                return -1;
        } else {
            return lfail(L, XR_E_TRAILING, L->pos, "content after </%s>",
                         L->closed);
        }
    }
    L->tok = T_EOF;
    L->name = "";
    return 0;
}

static int cdata(struct lex *L)
{
    size_t start = L->pos;
    const unsigned char *end, *p;

    L->pos += 9; /* <![CDATA[ */
    end = memmem(L->s + L->pos, L->len - L->pos, "]]>", 3);
    if (!end)
        return lfail(L, XR_E_TRUNCATED, start, "unterminated CDATA section");
    /* line ends are normalised in CDATA too (XML 1.0 section 2.11) */
    for (p = L->s + L->pos; p < end; p++) {
        if (*p == '\r') {
            if (arena_put(L, "\n", 1) < 0)
                return -1;
            if (p + 1 < end && p[1] == '\n')
                p++;
        } else if (arena_put(L, (const char *)p, 1) < 0) {
            return -1;
        }
    }
    L->pos = (size_t)(end - L->s) + 3;
    return 0;
}

/* The next token inside the root element. */
static int lex_next(struct lex *L)
{
    size_t tstart = L->arena_len;
    int have = 0;

    if (L->failed)
        return -1;
    L->tok_off = L->pos;
    if (L->pending_end) {
        L->pending_end = 0;
        pop(L);
        return 0;
    }
    if (!L->nopen)
        return epilog(L);
    for (;;) {
        unsigned char c;

        if (at_end(L))
            return lfail(L, XR_E_TRUNCATED, L->pos,
                         "the document ends inside <%s>", top(L));
        c = L->s[L->pos];
        if (c == '<') {
            int rc = 0;

            if (at(L, "<!--")) {
                rc = skip_comment(L);
            } else if (at(L, "<![CDATA[")) {
                rc = cdata(L);
                have = 1;
            } else if (at(L, "<?")) {
                rc = skip_pi(L);
            } else if (at(L, "<!")) {
                return declaration(L);
            } else if (have) {
                break;
            } else {
                return at(L, "</") ? end_tag(L) : start_tag(L);
            }
            if (rc < 0)
                return -1;
            continue;
        }
        have = 1;
        if (c == '&') {
            char buf[4];
            size_t n = 0;

            if (reference(L, buf, &n) < 0 || arena_put(L, buf, n) < 0)
                return -1;
        } else if (c == '\r') {
            /* CR LF and lone CR read as LF (XML 1.0 section 2.11) */
            if (arena_put(L, "\n", 1) < 0)
                return -1;
            L->pos++;
            if (cur(L) == '\n')
                L->pos++;
        } else if (c == ']' && at(L, "]]>")) {
            return lfail(L, XR_E_SYNTAX, L->pos, "']]>' outside CDATA");
        } else {
            if (arena_put(L, (const char *)&c, 1) < 0)
                return -1;
            L->pos++;
        }
    }
    if (arena_put(L, "", 1) < 0)
        return -1;
    L->tok = T_TEXT;
    L->text = L->arena + tstart;
    L->text_len = L->arena_len - tstart - 1;
    L->text_ws = 1;
    for (size_t i = 0; i < L->text_len; i++)
        if (!is_ws((unsigned char)L->text[i]))
            L->text_ws = 0;
    return 0;
}

/* Prolog: BOM, XML declaration, whitespace, comments, PIs; then the root
 * element's start tag as the first token. */
static int lex_start(struct lex *L)
{
    if (at(L, "\xEF\xBB\xBF"))
        L->pos += 3;
    if (at(L, "<?xml") && L->pos + 5 < L->len &&
        (is_ws(L->s[L->pos + 5]) || L->s[L->pos + 5] == '?') && xml_decl(L) < 0)
        return -1;
    for (;;) {
        skip_ws_bytes(L);
        L->tok_off = L->pos;
        if (at_end(L))
            return lfail(L, XR_E_TRUNCATED, L->pos, "no root element");
        if (at(L, "<!--")) {
            if (skip_comment(L) < 0)
                return -1;
        } else if (at(L, "<?")) {
            if (skip_pi(L) < 0)
                return -1;
        } else if (at(L, "<!")) {
            return declaration(L);
        } else if (cur(L) == '<') {
            if (L->pos + 1 < L->len && L->s[L->pos + 1] == '/')
                return lfail(L, XR_E_SYNTAX, L->pos,
                             "an end tag before the root element");
            return start_tag(L);
        } else {
            return lfail(L, XR_E_SYNTAX, L->pos,
                         "text before the root element");
        }
    }
}

static int lex_init(struct lex *L, const char *xml, size_t len, size_t max,
                    struct xr_err *e)
{
    memset(L, 0, sizeof(*L));
    memset(e, 0, sizeof(*e));
    L->s = (const unsigned char *)xml;
    L->len = xml ? len : 0;
    L->e = e;
    if (!xml || len == 0 || len > max)
        return lfail(L, XR_E_SIZE, 0, "document is %zu bytes (must be 1..%zu)",
                     xml ? len : 0, max);
    L->arena_cap = len + 1;
    L->arena = malloc(L->arena_cap);
    if (!L->arena)
        return nomem(L);
    if (check_chars(L) < 0)
        return -1;
    return lex_start(L);
}

/* ---------------------------------------------------------------------- */
/* scalar texts                                                            */
/* ---------------------------------------------------------------------- */

/* [+-]?[0-9]+ within [-2^(bits-1), 2^(bits-1) - 1]; no spaces. */
static int parse_int(const char *s, int bits, long long *out)
{
    unsigned long long lim = 1ULL << (bits - 1), acc = 0;
    int neg = 0;

    if (*s == '+' || *s == '-')
        neg = *s++ == '-';
    if (!*s)
        return -1;
    for (; *s; s++) {
        if (!is_digit((unsigned char)*s))
            return -1;
        if (acc > (lim - (unsigned)(*s - '0')) / 10)
            return -1;
        acc = acc * 10 + (unsigned)(*s - '0');
    }
    if (acc > lim - (neg ? 0 : 1))
        return -1;
    *out = neg ? (acc == lim ? (bits == 64 ? INT64_MIN : -(long long)lim)
                             : -(long long)acc)
               : (long long)acc;
    return 0;
}

static int digits(const char **s)
{
    int n = 0;

    while (is_digit((unsigned char)**s)) {
        (*s)++;
        n++;
    }
    return n;
}

/* decimal syntax, or nan / inf / infinity (what Python and xapi write) */
static int double_ok(const char *s)
{
    int n;

    if (*s == '+' || *s == '-')
        s++;
    if (ieq(s, strlen(s), "nan") || ieq(s, strlen(s), "inf") ||
        ieq(s, strlen(s), "infinity"))
        return 1;
    n = digits(&s);
    if (*s == '.') {
        s++;
        n += digits(&s);
    }
    if (!n)
        return 0;
    if (*s == 'e' || *s == 'E') {
        s++;
        if (*s == '+' || *s == '-')
            s++;
        if (!digits(&s))
            return 0;
    }
    return *s == '\0';
}

static int ndigits(const char **s, int n)
{
    for (int i = 0; i < n; i++)
        if (!is_digit((unsigned char)(*s)[i]))
            return 0;
    *s += n;
    return 1;
}

/*
 * Python writes 19980717T14:08:55, xapi RFC 3339 2024-01-02T03:04:05Z:
 * date (8 digits or YYYY-MM-DD) T time (HH:MM:SS or HHMMSS), then an
 * optional fraction and an optional Z or +-HH[:]MM.
 */
static int datetime_ok(const char *s)
{
    if (!ndigits(&s, 4))
        return 0;
    if (*s == '-') {
        s++;
        if (!ndigits(&s, 2) || *s++ != '-' || !ndigits(&s, 2))
            return 0;
    } else if (!ndigits(&s, 4)) {
        return 0;
    }
    if (*s++ != 'T' || !ndigits(&s, 2))
        return 0;
    if (*s == ':') {
        s++;
        if (!ndigits(&s, 2) || *s++ != ':' || !ndigits(&s, 2))
            return 0;
    } else if (!ndigits(&s, 4)) {
        return 0;
    }
    if (*s == '.') {
        s++;
        if (!digits(&s))
            return 0;
    }
    if (*s == 'Z') {
        s++;
    } else if (*s == '+' || *s == '-') {
        s++;
        if (!ndigits(&s, 2))
            return 0;
        if (*s == ':')
            s++;
        if (!ndigits(&s, 2))
            return 0;
    }
    return *s == '\0';
}

/* base64 with whitespace anywhere (Python wraps at 76 columns). */
static int base64_ok(const char *s)
{
    size_t n = 0, pad = 0;

    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;

        if (is_ws(c))
            continue;
        if (c == '=') {
            pad++;
        } else if (pad ||
                   !(is_alpha(c) || is_digit(c) || c == '+' || c == '/')) {
            return 0;
        }
        n++;
    }
    return n % 4 == 0 && pad <= 2;
}

static int method_name_ok(const char *s)
{
    if (!s[0] || strlen(s) > XR_MAX_METHOD)
        return 0;
    for (; *s; s++)
        if (!(is_alpha((unsigned char)*s) || is_digit((unsigned char)*s) ||
              strchr("_.:/-", *s)))
            return 0;
    return 1;
}

/* ---------------------------------------------------------------------- */
/* grammar                                                                 */
/* ---------------------------------------------------------------------- */

static const struct {
    const char *name;
    enum xr_type type;
    int bits; /* ints */
} scalar_types[] = {
    {"string", XR_STRING, 0},
    {"int", XR_INT, 32},
    {"i4", XR_INT, 32},
    {"i8", XR_INT, 64},
    {"boolean", XR_BOOL, 0},
    {"double", XR_DOUBLE, 0},
    {"dateTime.iso8601", XR_DATETIME, 0},
    {"base64", XR_BASE64, 0},
    {"nil", XR_NIL, 0},
};

static int is_start(const struct lex *L, const char *name)
{
    return L->tok == T_START && !strcmp(L->name, name);
}

/* What the current token is, for messages. */
static const char *tok_desc(const struct lex *L, char *buf, size_t len)
{
    switch (L->tok) {
    case T_START:
        snprintf(buf, len, "<%s>", L->name);
        break;
    case T_END:
        snprintf(buf, len, "</%s>", L->name);
        break;
    case T_TEXT:
        snprintf(buf, len, "text '%.20s'", L->text);
        break;
    default:
        snprintf(buf, len, "the end");
        break;
    }
    return buf;
}

static int unexpected(struct lex *L, const char *want)
{
    char d[96];

    return lfail(L, XR_E_STRUCTURE, L->tok_off, "%s (found %s)", want,
                 tok_desc(L, d, sizeof(d)));
}

/* A whitespace-only text token is skipped; other text is an error. */
static int skip_ws(struct lex *L)
{
    if (L->failed)
        return -1;
    if (L->tok != T_TEXT)
        return 0;
    if (!L->text_ws)
        return lfail(L, XR_E_STRUCTURE, L->tok_off,
                     "stray text '%.20s' in <%s>", L->text, top(L));
    return lex_next(L);
}

static int need_start(struct lex *L, const char *name, const char *want)
{
    if (skip_ws(L) < 0)
        return -1;
    return is_start(L, name) ? 0 : unexpected(L, want);
}

/* The current element ends here (after whitespace); steps past it. */
static int need_end(struct lex *L, const char *want)
{
    if (skip_ws(L) < 0)
        return -1;
    return L->tok == T_END ? lex_next(L) : unexpected(L, want);
}

/* cur: the START of an element holding text only.  *out: its text. */
static int text_elem(struct lex *L, char **out)
{
    char elem[LEX_NAME_MAX + 1];
    const char *t = "";

    snprintf(elem, sizeof(elem), "%s", L->name);
    if (lex_next(L) < 0)
        return -1;
    if (L->tok == T_TEXT) {
        t = L->text;
        if (lex_next(L) < 0)
            return -1;
    }
    if (L->tok != T_END) {
        char w[96];

        snprintf(w, sizeof(w), "<%s> must hold text only", elem);
        return unexpected(L, w);
    }
    *out = strdup(t);
    if (!*out)
        return nomem(L);
    return lex_next(L);
}

static int p_value(struct lex *L, int depth, struct xr_value **out);

static int p_scalar(struct lex *L, size_t ti, struct xr_value **out)
{
    size_t off = L->tok_off;
    struct xr_value *v = value_new(scalar_types[ti].type, NULL);
    const char *tag = scalar_types[ti].name;
    int ok = 1;

    if (!v)
        return nomem(L);
    if (text_elem(L, &v->str) < 0)
        goto fail;
    switch (v->type) {
    case XR_INT:
        ok = parse_int(v->str, scalar_types[ti].bits, &v->num) == 0;
        break;
    case XR_BOOL:
        ok = !strcmp(v->str, "0") || !strcmp(v->str, "1");
        v->num = v->str[0] == '1';
        break;
    case XR_DOUBLE:
        ok = double_ok(v->str);
        break;
    case XR_DATETIME:
        ok = datetime_ok(v->str);
        break;
    case XR_BASE64:
        ok = base64_ok(v->str);
        break;
    case XR_NIL:
        ok = v->str[0] == '\0';
        break;
    default:
        break;
    }
    if (!ok) {
        lfail(L, XR_E_VALUE, off, "bad <%s> '%.40s'", tag, v->str);
        goto fail;
    }
    *out = v;
    return 0;
fail:
    xr_value_free(v);
    return -1;
}

static int cmp_keys(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* One sort instead of a scan per member: O(n log n) on hostile input. */
static int check_duplicates(struct lex *L, const struct xr_value *st,
                            size_t off)
{
    char **keys;
    int rc = 0;

    if (st->n < 2)
        return 0;
    keys = malloc(st->n * sizeof(*keys));
    if (!keys)
        return nomem(L);
    memcpy(keys, st->keys, st->n * sizeof(*keys));
    qsort(keys, st->n, sizeof(*keys), cmp_keys);
    for (size_t i = 1; i < st->n && !rc; i++)
        if (!strcmp(keys[i - 1], keys[i]))
            rc = lfail(L, XR_E_DUPLICATE, off,
                       "struct member '%.40s' appears twice", keys[i]);
    free(keys);
    return rc;
}

static int p_member(struct lex *L, struct xr_value *st, int depth)
{
    static const char want[] = "<member> must hold <name> then <value>";
    struct xr_value *v = NULL;
    char *key = NULL;

    if (lex_next(L) < 0 || need_start(L, "name", want) < 0 ||
        text_elem(L, &key) < 0 || need_start(L, "value", want) < 0 ||
        p_value(L, depth + 1, &v) < 0 || need_end(L, want) < 0)
        goto fail;
    if (xr_add(st, key, v) < 0) {
        v = NULL; /* freed by xr_add */
        nomem(L);
        goto fail;
    }
    free(key);
    return 0;
fail:
    xr_value_free(v);
    free(key);
    return -1;
}

static int p_struct(struct lex *L, int depth, struct xr_value **out)
{
    size_t off = L->tok_off;
    struct xr_value *st = xr_new_struct();

    if (!st)
        return nomem(L);
    if (lex_next(L) < 0)
        goto fail;
    for (;;) {
        if (skip_ws(L) < 0)
            goto fail;
        if (L->tok == T_END)
            break;
        if (!is_start(L, "member")) {
            unexpected(L, "<struct> may hold <member> only");
            goto fail;
        }
        if (p_member(L, st, depth) < 0)
            goto fail;
    }
    if (check_duplicates(L, st, off) < 0 || lex_next(L) < 0)
        goto fail;
    *out = st;
    return 0;
fail:
    xr_value_free(st);
    return -1;
}

static int p_array(struct lex *L, int depth, struct xr_value **out)
{
    static const char want[] = "<array> must hold one <data>";
    struct xr_value *a = xr_new_array();

    if (!a)
        return nomem(L);
    if (lex_next(L) < 0 || need_start(L, "data", want) < 0 || lex_next(L) < 0)
        goto fail;
    for (;;) {
        struct xr_value *v;

        if (skip_ws(L) < 0)
            goto fail;
        if (L->tok == T_END)
            break;
        if (!is_start(L, "value")) {
            unexpected(L, "<data> may hold <value> only");
            goto fail;
        }
        if (p_value(L, depth + 1, &v) < 0)
            goto fail;
        if (xr_add(a, NULL, v) < 0) {
            nomem(L);
            goto fail;
        }
    }
    if (lex_next(L) < 0 || need_end(L, want) < 0)
        goto fail;
    *out = a;
    return 0;
fail:
    xr_value_free(a);
    return -1;
}

/* cur: the START of a typed element inside <value>. */
static int p_typed(struct lex *L, int depth, struct xr_value **out)
{
    if (is_start(L, "struct"))
        return p_struct(L, depth, out);
    if (is_start(L, "array"))
        return p_array(L, depth, out);
    for (size_t i = 0; i < sizeof(scalar_types) / sizeof(scalar_types[0]); i++)
        if (is_start(L, scalar_types[i].name))
            return p_scalar(L, i, out);
    return lfail(L, XR_E_STRUCTURE, L->tok_off, "unknown value type <%.40s>",
                 L->name);
}

/* cur: START value.  <value>text</value> is a string, as is <value/>. */
static int p_value(struct lex *L, int depth, struct xr_value **out)
{
    static const char want[] = "<value> must hold one typed element";
    struct xr_value *v = NULL;
    const char *text = NULL;
    int text_ws = 1;

    if (depth > XR_MAX_DEPTH)
        return lfail(L, XR_E_DEPTH, L->tok_off, "values nested deeper than %d",
                     XR_MAX_DEPTH);
    if (lex_next(L) < 0)
        return -1;
    if (L->tok == T_TEXT) {
        text = L->text;
        text_ws = L->text_ws;
        if (lex_next(L) < 0)
            return -1;
    }
    if (L->tok == T_END) {
        v = xr_new_string(text ? text : "");
        if (!v)
            return nomem(L);
        if (lex_next(L) < 0) {
            xr_value_free(v);
            return -1;
        }
        *out = v;
        return 0;
    }
    if (L->tok != T_START)
        return unexpected(L, want);
    if (!text_ws)
        return lfail(L, XR_E_STRUCTURE, L->tok_off,
                     "<value> holds both text and <%s>", L->name);
    if (p_typed(L, depth, &v) < 0)
        return -1;
    if (need_end(L, want) < 0) {
        xr_value_free(v);
        return -1;
    }
    *out = v;
    return 0;
}

/* cur: START params.  <params><param><value/></param>...</params> */
static int p_params(struct lex *L, struct xr_value **out)
{
    static const char want[] = "<param> must hold one <value>";
    struct xr_value *a = xr_new_array();

    if (!a)
        return nomem(L);
    if (lex_next(L) < 0)
        goto fail;
    for (;;) {
        struct xr_value *v;

        if (skip_ws(L) < 0)
            goto fail;
        if (L->tok == T_END)
            break;
        if (!is_start(L, "param")) {
            unexpected(L, "<params> may hold <param> only");
            goto fail;
        }
        if (lex_next(L) < 0 || need_start(L, "value", want) < 0 ||
            p_value(L, 1, &v) < 0)
            goto fail;
        if (xr_add(a, NULL, v) < 0) {
            nomem(L);
            goto fail;
        }
        if (need_end(L, want) < 0)
            goto fail;
    }
    if (lex_next(L) < 0)
        goto fail;
    *out = a;
    return 0;
fail:
    xr_value_free(a);
    return -1;
}

static int need_root(struct lex *L, const char *root)
{
    char w[64];

    if (is_start(L, root))
        return 0;
    snprintf(w, sizeof(w), "the root element must be <%s>", root);
    return unexpected(L, w);
}

int xr_parse_call_ex(const char *xml, size_t len, struct xr_call *call,
                     struct xr_err *e)
{
    static const char want[] =
        "<methodCall> must hold <methodName> then <params>";
    struct xr_err local;
    struct lex L;

    memset(call, 0, sizeof(*call));
    if (!e)
        e = &local;
    if (lex_init(&L, xml, len, XR_MAX_INPUT, e) < 0 ||
        need_root(&L, "methodCall") < 0 || lex_next(&L) < 0 ||
        need_start(&L, "methodName", want) < 0 ||
        text_elem(&L, &call->method) < 0)
        goto fail;
    if (!method_name_ok(call->method)) {
        lfail(&L, XR_E_STRUCTURE, L.tok_off, "bad methodName '%.40s'",
              call->method);
        goto fail;
    }
    if (skip_ws(&L) < 0)
        goto fail;
    if (is_start(&L, "params")) {
        if (p_params(&L, &call->params) < 0)
            goto fail;
    } else if (!(call->params = xr_new_array())) {
        nomem(&L);
        goto fail;
    }
    if (need_end(&L, want) < 0)
        goto fail;
    free(L.arena);
    return 0;
fail:
    free(L.arena);
    xr_call_free(call);
    return -1;
}

int xr_parse_call(const char *xml, size_t len, struct xr_call *call, char *err,
                  size_t errlen)
{
    struct xr_err e;

    if (xr_parse_call_ex(xml, len, call, &e) == 0)
        return 0;
    if (err && errlen)
        snprintf(err, errlen, "%s", e.msg);
    return xr_errkind_fault(e.kind);
}

void xr_call_free(struct xr_call *call)
{
    free(call->method);
    xr_value_free(call->params);
    memset(call, 0, sizeof(*call));
}

/* cur: START fault.  <fault><value>{faultCode, faultString}</value> */
static int p_fault(struct lex *L, struct xr_response *resp)
{
    static const char want[] = "<fault> must hold one <value>";
    const struct xr_value *code, *str;
    struct xr_value *v = NULL;
    size_t off = L->tok_off;
    int rc = -1;

    if (lex_next(L) < 0 || need_start(L, "value", want) < 0 ||
        p_value(L, 1, &v) < 0 || need_end(L, want) < 0)
        goto out;
    code = xr_struct_get(v, "faultCode");
    str = xr_struct_get(v, "faultString");
    if (!code || code->type != XR_INT || code->num < INT32_MIN ||
        code->num > INT32_MAX || !str || str->type != XR_STRING) {
        lfail(L, XR_E_STRUCTURE, off,
              "a fault must be {faultCode int, faultString string}");
        goto out;
    }
    resp->is_fault = 1;
    resp->fault_code = (int)code->num;
    resp->fault_string = strdup(str->str);
    rc = resp->fault_string ? 0 : nomem(L);
out:
    xr_value_free(v);
    return rc;
}

int xr_parse_response_ex(const char *xml, size_t len, struct xr_response *resp,
                         struct xr_err *e)
{
    static const char want[] = "<methodResponse> must hold <params> or <fault>";
    struct xr_err local;
    struct lex L;

    memset(resp, 0, sizeof(*resp));
    if (!e)
        e = &local;
    if (lex_init(&L, xml, len, XR_MAX_RESPONSE, e) < 0 ||
        need_root(&L, "methodResponse") < 0 || lex_next(&L) < 0 ||
        skip_ws(&L) < 0)
        goto fail;
    if (is_start(&L, "fault")) {
        if (p_fault(&L, resp) < 0)
            goto fail;
    } else if (is_start(&L, "params")) {
        struct xr_value *a = NULL;
        size_t off = L.tok_off;

        if (p_params(&L, &a) < 0)
            goto fail;
        if (a->n != 1) {
            lfail(&L, XR_E_STRUCTURE, off,
                  "a response holds exactly one <param> (found %zu)", a->n);
            xr_value_free(a);
            goto fail;
        }
        resp->value = a->items[0];
        a->n = 0;
        xr_value_free(a);
    } else {
        unexpected(&L, want);
        goto fail;
    }
    if (need_end(&L, want) < 0)
        goto fail;
    free(L.arena);
    return 0;
fail:
    free(L.arena);
    xr_response_free(resp);
    return -1;
}

int xr_parse_response(const char *xml, size_t len, struct xr_response *resp,
                      char *err, size_t errlen)
{
    struct xr_err e;

    if (xr_parse_response_ex(xml, len, resp, &e) == 0)
        return 0;
    if (err && errlen)
        snprintf(err, errlen, "%s", e.msg);
    return -1;
}

void xr_response_free(struct xr_response *resp)
{
    free(resp->fault_string);
    xr_value_free(resp->value);
    memset(resp, 0, sizeof(*resp));
}

/* ---------------------------------------------------------------------- */
/* writer                                                                  */
/* ---------------------------------------------------------------------- */

struct wbuf {
    char *p;
    size_t len, cap;
    int bad; /* out of memory, or a tree we refuse to write */
};

static void w_put(struct wbuf *b, const char *s, size_t n)
{
    if (b->bad)
        return;
    if (n >= b->cap - b->len) {
        size_t cap = b->cap ? b->cap : 256;
        char *p;

        while (n >= cap - b->len) {
            if (cap > SIZE_MAX / 2) {
                b->bad = 1;
                return;
            }
            cap *= 2;
        }
        p = realloc(b->p, cap);
        if (!p) {
            b->bad = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void w_str(struct wbuf *b, const char *s)
{
    w_put(b, s, strlen(s));
}

/* Character data: escaped, and only characters XML 1.0 can carry. */
static void w_text(struct wbuf *b, const char *text)
{
    const unsigned char *s = (const unsigned char *)(text ? text : "");
    size_t n = strlen((const char *)s);

    for (size_t i = 0; i < n;) {
        uint32_t c;
        size_t k = utf8_decode(s + i, n - i, &c);

        if (!k || !xml_char_ok(c)) {
            w_str(b, "\xEF\xBF\xBD"); /* U+FFFD */
            i += k ? k : 1;
            continue;
        }
        if (c == '<')
            w_str(b, "&lt;");
        else if (c == '>') /* keeps "]]>" out of the text */
            w_str(b, "&gt;");
        else if (c == '&')
            w_str(b, "&amp;");
        else if (c == '\r') /* a raw CR would be read back as LF */
            w_str(b, "&#13;");
        else
            w_put(b, (const char *)s + i, k);
        i += k;
    }
}

static void w_scalar(struct wbuf *b, const char *tag, const char *text)
{
    w_str(b, "<value><");
    w_str(b, tag);
    w_str(b, ">");
    w_text(b, text);
    w_str(b, "</");
    w_str(b, tag);
    w_str(b, "></value>");
}

static void w_value(struct wbuf *b, const struct xr_value *v, int depth)
{
    char num[24];

    if (b->bad)
        return;
    if (!v || depth > XR_MAX_DEPTH) {
        b->bad = 1;
        return;
    }
    switch (v->type) {
    case XR_STRING:
        w_scalar(b, "string", v->str);
        break;
    case XR_INT:
        snprintf(num, sizeof(num), "%lld", v->num);
        w_scalar(b, v->num < INT32_MIN || v->num > INT32_MAX ? "i8" : "int",
                 num);
        break;
    case XR_BOOL:
        w_scalar(b, "boolean", v->num ? "1" : "0");
        break;
    case XR_DOUBLE:
        if (!v->str || !double_ok(v->str))
            b->bad = 1;
        else
            w_scalar(b, "double", v->str);
        break;
    case XR_DATETIME:
        if (!v->str || !datetime_ok(v->str))
            b->bad = 1;
        else
            w_scalar(b, "dateTime.iso8601", v->str);
        break;
    case XR_BASE64:
        if (v->str && !base64_ok(v->str))
            b->bad = 1;
        else
            w_scalar(b, "base64", v->str);
        break;
    case XR_NIL:
        w_str(b, "<value><nil/></value>");
        break;
    case XR_STRUCT:
        w_str(b, "<value><struct>");
        for (size_t i = 0; i < v->n; i++) {
            w_str(b, "<member><name>");
            w_text(b, v->keys[i]);
            w_str(b, "</name>");
            w_value(b, v->items[i], depth + 1);
            w_str(b, "</member>");
        }
        w_str(b, "</struct></value>");
        break;
    case XR_ARRAY:
        w_str(b, "<value><array><data>");
        for (size_t i = 0; i < v->n; i++)
            w_value(b, v->items[i], depth + 1);
        w_str(b, "</data></array></value>");
        break;
    default:
        b->bad = 1;
    }
}

static char *w_finish(struct wbuf *b, size_t *len)
{
    if (b->bad) {
        free(b->p);
        return NULL;
    }
    if (len)
        *len = b->len;
    return b->p;
}

static void w_params(struct wbuf *b, const struct xr_value *const *vals,
                     size_t n)
{
    w_str(b, "<params>");
    for (size_t i = 0; i < n; i++) {
        w_str(b, "<param>");
        w_value(b, vals[i], 1);
        w_str(b, "</param>");
    }
    w_str(b, "</params>");
}

#define XML_DECL "<?xml version=\"1.0\"?>\n"

char *xr_build_call(const char *method, const struct xr_value *params,
                    size_t *len)
{
    struct wbuf b = {0};

    if (!method || !method_name_ok(method) ||
        (params && params->type != XR_ARRAY))
        return NULL;
    w_str(&b, XML_DECL "<methodCall><methodName>");
    w_text(&b, method);
    w_str(&b, "</methodName>");
    w_params(&b, params ? (const struct xr_value *const *)params->items : NULL,
             params ? params->n : 0);
    w_str(&b, "</methodCall>\n");
    return w_finish(&b, len);
}

char *xr_build_response(const struct xr_value *value, size_t *len)
{
    struct wbuf b = {0};

    w_str(&b, XML_DECL "<methodResponse>");
    w_params(&b, &value, 1);
    w_str(&b, "</methodResponse>\n");
    return w_finish(&b, len);
}

char *xr_build_fault(int code, const char *message, size_t *len)
{
    struct xr_value *st = xr_new_struct();
    struct wbuf b = {0};

    if (!st || xr_add(st, "faultCode", xr_new_int(code)) < 0 ||
        xr_struct_set_string(st, "faultString", message) < 0) {
        xr_value_free(st);
        return NULL;
    }
    w_str(&b, XML_DECL "<methodResponse><fault>");
    w_value(&b, st, 1);
    w_str(&b, "</fault></methodResponse>\n");
    xr_value_free(st);
    return w_finish(&b, len);
}

char *xr_build_xenapi_success(const char *value, size_t *len)
{
    struct xr_value *st = xr_new_struct();
    char *doc = NULL;

    if (st && xr_struct_set_string(st, "Status", "Success") == 0 &&
        xr_struct_set_string(st, "Value", value) == 0)
        doc = xr_build_response(st, len);
    xr_value_free(st);
    return doc;
}

char *xr_build_xenapi_failure(const char *code, const char *const *params,
                              size_t nparams, size_t *len)
{
    struct xr_value *st = xr_new_struct(), *desc = xr_new_array();
    char *doc = NULL;
    int ok;

    ok = st && desc && code && code[0] &&
         xr_struct_set_string(st, "Status", "Failure") == 0 &&
         xr_add(desc, NULL, xr_new_string(code)) == 0;
    for (size_t i = 0; ok && i < nparams; i++)
        ok = xr_add(desc, NULL, xr_new_string(params[i])) == 0;
    if (ok) {
        ok = xr_add(st, "ErrorDescription", desc) == 0;
        desc = NULL; /* owned by st now, or freed */
    }
    if (ok)
        doc = xr_build_response(st, len);
    xr_value_free(desc);
    xr_value_free(st);
    return doc;
}
