/*
 * test-xr.c - cmocka unit tests of xapi-plugin/xr.c, our XML-RPC reader and
 * writer: what xapi and Python's xmlrpc write must read back exactly
 * (declaration, whitespace, comments, PIs, CDATA, entities, character
 * references, every value type); every malformed or hostile form must be
 * refused with its defined error kind (struct xr_err) and the fault code
 * the plugin answers with; the writer's output must read back to the same
 * tree, the XenAPI envelope included.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "xr.h"

#define HEAD "<methodCall><methodName>f</methodName><params><param>"
#define TAIL "</param></params></methodCall>"

static struct xr_value *call_param(const char *xml, struct xr_call *c)
{
    struct xr_err e;
    int rc = xr_parse_call_ex(xml, strlen(xml), c, &e);

    if (rc)
        print_message("unexpected refusal: %s %s\n", xr_errkind_name(e.kind),
                      e.msg);
    assert_int_equal(rc, 0);
    assert_int_equal(c->params->type, XR_ARRAY);
    return c->params->n ? c->params->items[0] : NULL;
}

/* ------------------------------------------------------------- accepted */

static void test_xapi_call(void **state)
{
    /* what xapi_plugins.ml hands a plugin: Xml.to_string of
     * XMLRPC.To.methodCall, untyped strings, <value/> for "" */
    const char *xml =
        "<methodCall><methodName>assign</methodName><params><param><value>"
        "OpaqueRef:s</value></param><param><value><struct><member><name>"
        "domid</name><value>5</value></member><member><name>empty</name>"
        "<value/></member><member><name>q</name><value>a&quot;b&lt;&amp;"
        "&gt;</value></member></struct></value></param></params>"
        "</methodCall>";
    struct xr_call c;
    const struct xr_value *st;

    (void)state;
    call_param(xml, &c);
    assert_string_equal(c.method, "assign");
    assert_int_equal(c.params->n, 2);
    assert_int_equal(c.params->items[0]->type, XR_STRING);
    assert_string_equal(c.params->items[0]->str, "OpaqueRef:s");
    st = c.params->items[1];
    assert_int_equal(st->type, XR_STRUCT);
    assert_string_equal(xr_struct_get_string(st, "domid"), "5");
    assert_string_equal(xr_struct_get_string(st, "empty"), "");
    assert_string_equal(xr_struct_get_string(st, "q"), "a\"b<&>");
    xr_call_free(&c);

    /* no args: <struct/> */
    call_param("<methodCall><methodName>status</methodName><params><param>"
               "<value>s</value></param><param><value><struct/></value>"
               "</param></params></methodCall>",
               &c);
    assert_int_equal(c.params->items[1]->type, XR_STRUCT);
    assert_int_equal(c.params->items[1]->n, 0);
    xr_call_free(&c);
}

static void test_python_call(void **state)
{
    /* xmlrpc.client.dumps(("OpaqueRef:s", {...}), "assign") verbatim */
    const char *xml =
        "<?xml version='1.0'?>\n<methodCall>\n<methodName>assign</methodName>"
        "\n<params>\n<param>\n<value><string>OpaqueRef:s</string></value>\n"
        "</param>\n<param>\n<value><struct>\n<member>\n<name>domid</name>\n"
        "<value><string>5</string></value>\n</member>\n<member>\n<name>e"
        "</name>\n<value><string></string></value>\n</member>\n<member>\n"
        "<name>u</name>\n<value><string>\xc3\xa9&lt;&amp;&gt;</string>"
        "</value>\n</member>\n</struct></value>\n</param>\n</params>\n"
        "</methodCall>\n";
    struct xr_call c;
    const struct xr_value *st;

    (void)state;
    call_param(xml, &c);
    st = c.params->items[1];
    assert_string_equal(xr_struct_get_string(st, "domid"), "5");
    assert_string_equal(xr_struct_get_string(st, "e"), "");
    assert_string_equal(xr_struct_get_string(st, "u"), "\xc3\xa9<&>");
    xr_call_free(&c);
}

static void test_all_types(void **state)
{
    /* Python's dumps of [1, True, 1.5, None, Binary, DateTime], then
     * xapi's forms: i4, i8, RFC 3339 dates, NaN */
    const char *xml =
        "<?xml version='1.0'?>\n<methodCall>\n<methodName>m</methodName>\n"
        "<params>\n<param>\n<value><array><data>\n"
        "<value><int>1</int></value>\n<value><boolean>1</boolean></value>\n"
        "<value><double>1.5</double></value>\n<value><nil/></value>"
        "<value><base64>\naGVsbG8gd29ybGQ=\n</base64></value>\n"
        "<value><dateTime.iso8601>20240102T03:04:05</dateTime.iso8601>"
        "</value>\n<value><i4>-2147483648</i4></value>"
        "<value><i8>-9223372036854775808</i8></value>"
        "<value><i8>9223372036854775807</i8></value>"
        "<value><dateTime.iso8601>2024-01-02T03:04:05Z</dateTime.iso8601>"
        "</value><value><dateTime.iso8601>2024-01-02T03:04:05.5+01:00"
        "</dateTime.iso8601></value><value><double>NaN</double></value>"
        "<value><double>-1e+100</double></value><value><boolean>0</boolean>"
        "</value><value><string/></value><value></value>"
        "<value><array><data/></array></value>"
        "</data></array></value>\n</param>\n</params>\n</methodCall>\n";
    struct xr_call c;
    const struct xr_value *a;

    (void)state;
    a = call_param(xml, &c);
    assert_int_equal(a->type, XR_ARRAY);
    assert_int_equal(a->n, 17);
    assert_int_equal(a->items[0]->type, XR_INT);
    assert_int_equal(a->items[0]->num, 1);
    assert_int_equal(a->items[1]->type, XR_BOOL);
    assert_int_equal(a->items[1]->num, 1);
    assert_int_equal(a->items[2]->type, XR_DOUBLE);
    assert_string_equal(a->items[2]->str, "1.5");
    assert_int_equal(a->items[3]->type, XR_NIL);
    assert_int_equal(a->items[4]->type, XR_BASE64);
    assert_string_equal(a->items[4]->str, "\naGVsbG8gd29ybGQ=\n");
    assert_int_equal(a->items[5]->type, XR_DATETIME);
    assert_int_equal(a->items[6]->num, INT32_MIN);
    assert_true(a->items[7]->num == INT64_MIN);
    assert_true(a->items[8]->num == INT64_MAX);
    assert_int_equal(a->items[9]->type, XR_DATETIME);
    assert_int_equal(a->items[10]->type, XR_DATETIME);
    assert_int_equal(a->items[11]->type, XR_DOUBLE);
    assert_int_equal(a->items[13]->num, 0);
    assert_int_equal(a->items[14]->type, XR_STRING);
    assert_string_equal(a->items[14]->str, "");
    assert_int_equal(a->items[15]->type, XR_STRING);
    assert_string_equal(a->items[15]->str, "");
    assert_int_equal(a->items[16]->type, XR_ARRAY);
    assert_int_equal(a->items[16]->n, 0);
    xr_call_free(&c);
}

static void test_lexical_forms(void **state)
{
    /* BOM, declaration with encoding and standalone, comments and PIs
     * everywhere they may be, CDATA, character references decoded to
     * UTF-8, CR LF read as LF, &#13; kept as CR */
    const char *xml =
        "\xEF\xBB\xBF<?xml version=\"1.0\" encoding=\"utf-8\" "
        "standalone='yes' ?>\n<!-- before --><?pi data?>\n"
        "<methodCall ><!-- c --><methodName>a<!--x-->b</methodName ><params>"
        "<?pi?><param><value><struct><member><name>k</name><value>"
        "<![CDATA[<not&markup>]]>&#65;&#x42;&#xe9;&#x20AC;&#x1F600;"
        "&apos;\r\nx\ry&#13;</value></member><member><name>ws</name>"
        "<value>  \t </value></member><member><name>cd</name><value>"
        "<string>a<![CDATA[]]>b</string></value></member></struct></value>"
        "</param></params></methodCall>\n<!-- after --><?end?>\n  ";
    struct xr_call c;
    const struct xr_value *st;

    (void)state;
    st = call_param(xml, &c);
    assert_string_equal(c.method, "ab");
    assert_string_equal(xr_struct_get_string(st, "k"),
                        "<not&markup>AB\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"
                        "'\nx\ny\r");
    /* <value>  </value> is the string "  " (XML-RPC, Python) */
    assert_string_equal(xr_struct_get_string(st, "ws"), "  \t ");
    assert_string_equal(xr_struct_get_string(st, "cd"), "ab");
    xr_call_free(&c);
}

/* value nested exactly XR_MAX_DEPTH deep, or one more */
static char *nested(int depth)
{
    size_t cap = 256 + (size_t)depth * 64;
    char *xml = malloc(cap);

    assert_non_null(xml);
    strcpy(xml, HEAD "<value>");
    for (int i = 1; i < depth; i++)
        strcat(xml, i % 2 ? "<array><data><value>"
                          : "<struct><member><name>k</name><value>");
    strcat(xml, "x");
    for (int i = depth - 1; i >= 1; i--)
        strcat(xml, i % 2 ? "</value></data></array>"
                          : "</value></member></struct>");
    strcat(xml, "</value>" TAIL);
    return xml;
}

static void test_depth_limit(void **state)
{
    struct xr_call c;
    struct xr_err e;
    char *xml = nested(XR_MAX_DEPTH);
    const struct xr_value *v;
    int d = 1;

    (void)state;
    v = call_param(xml, &c);
    while (v->type != XR_STRING) {
        v = v->items[0];
        d++;
    }
    assert_int_equal(d, XR_MAX_DEPTH);
    xr_call_free(&c);
    free(xml);

    xml = nested(XR_MAX_DEPTH + 1);
    assert_int_equal(xr_parse_call_ex(xml, strlen(xml), &c, &e), -1);
    assert_int_equal(e.kind, XR_E_DEPTH);
    assert_null(c.method);
    free(xml);
}

/* a struct of n members k0..k(n-1); dup: the last one named k0 again */
static char *big_struct(size_t n, int dup)
{
    char *xml = malloc(n * 64 + 256), *p;

    assert_non_null(xml);
    p = xml + sprintf(xml, "<methodResponse><params><param><value><struct>");
    for (size_t i = 0; i < n; i++)
        p += sprintf(p, "<member><name>k%zu</name><value/></member>",
                     dup && i == n - 1 ? (size_t)0 : i);
    strcpy(p, "</struct></value></param></params></methodResponse>");
    return xml;
}

static void test_big_containers(void **state)
{
    size_t n = 20000;
    char *xml = big_struct(n, 0);
    struct xr_response r;
    struct xr_err e;

    (void)state;
    /* growth and the duplicate check stay fast on big inputs */
    assert_int_equal(xr_parse_response_ex(xml, strlen(xml), &r, &e), 0);
    assert_int_equal(r.value->n, n);
    assert_non_null(xr_struct_get(r.value, "k19999"));
    xr_response_free(&r);
    free(xml);
    xml = big_struct(n, 1);
    assert_int_equal(xr_parse_response_ex(xml, strlen(xml), &r, &e), -1);
    assert_int_equal(e.kind, XR_E_DUPLICATE);
    assert_non_null(strstr(e.msg, "'k0' appears twice"));
    free(xml);
}

/* ------------------------------------------------------------- refused */

struct reject {
    const char *what;
    const char *xml;
    size_t len; /* 0: strlen */
    enum xr_errkind kind;
};

#define V(x) HEAD "<value>" x "</value>" TAIL

static const struct reject rejects[] = {
    /* size and characters */
    {"empty input", "", 0, XR_E_SIZE},
    {"NUL byte", "<methodCall>\0</methodCall>", 25, XR_E_CHAR},
    {"control character", V("a\x01z"), 0, XR_E_CHAR},
    {"DEL is allowed but ESC is not", V("\x1b"), 0, XR_E_CHAR},
    {"U+FFFE", V("\xef\xbf\xbe"), 0, XR_E_CHAR},
    {"overlong UTF-8", V("\xc0\xaf"), 0, XR_E_UTF8},
    {"overlong 3-byte UTF-8", V("\xe0\x80\xaf"), 0, XR_E_UTF8},
    {"UTF-16 surrogate in UTF-8", V("\xed\xa0\x80"), 0, XR_E_UTF8},
    {"above U+10FFFF", V("\xf4\x90\x80\x80"), 0, XR_E_UTF8},
    {"lone continuation byte", V("\x80"), 0, XR_E_UTF8},
    {"truncated sequence", V("\xe2\x82"), 0, XR_E_UTF8},
    {"Latin-1 byte", V("caf\xe9"), 0, XR_E_UTF8},
    /* declaration, prolog, epilog */
    {"non-UTF-8 encoding",
     "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><methodCall/>", 0,
     XR_E_ENCODING},
    {"XML version 2", "<?xml version=\"2.0\"?><methodCall/>", 0, XR_E_SYNTAX},
    {"declaration without version", "<?xml encoding=\"UTF-8\"?><methodCall/>",
     0, XR_E_SYNTAX},
    {"declaration not at the start", " <?xml version=\"1.0\"?><methodCall/>", 0,
     XR_E_SYNTAX},
    {"declaration in content", V("<?xml version=\"1.0\"?>"), 0, XR_E_SYNTAX},
    {"DOCTYPE", "<!DOCTYPE methodCall><methodCall/>", 0, XR_E_DOCTYPE},
    {"entity declaration (billion laughs)",
     "<?xml version=\"1.0\"?><!DOCTYPE m [<!ENTITY a \"aaaa\"><!ENTITY b "
     "\"&a;&a;&a;&a;\">]><methodCall><methodName>&b;</methodName>"
     "</methodCall>",
     0, XR_E_DOCTYPE},
    {"external entity",
     "<!DOCTYPE m [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>"
     "<methodCall><methodName>&x;</methodName></methodCall>",
     0, XR_E_DOCTYPE},
    {"ENTITY declaration in content", V("<!ENTITY x \"y\">"), 0, XR_E_DOCTYPE},
    {"DOCTYPE in content", V("<!DOCTYPE x>"), 0, XR_E_DOCTYPE},
    {"text before the root", "garbage", 0, XR_E_SYNTAX},
    {"end tag before the root", "</methodCall>", 0, XR_E_SYNTAX},
    {"CDATA before the root", "<![CDATA[x]]><methodCall/>", 0, XR_E_SYNTAX},
    {"whitespace only", " \n ", 0, XR_E_TRUNCATED},
    {"text after the root",
     "<methodCall><methodName>f</methodName></methodCall>x", 0, XR_E_TRAILING},
    {"second root",
     "<methodCall><methodName>f</methodName></methodCall><methodCall/>", 0,
     XR_E_TRAILING},
    {"reference after the root",
     "<methodCall><methodName>f</methodName></methodCall>&amp;", 0,
     XR_E_TRAILING},
    /* tags */
    {"mismatched end tag", "<methodCall><methodName>x</methodname>", 0,
     XR_E_MISMATCH},
    {"end tag closing the parent", V("<string>x</value>"), 0, XR_E_MISMATCH},
    {"truncated after params",
     "<methodCall><methodName>assign</methodName>"
     "<params>",
     0, XR_E_TRUNCATED},
    {"truncated in a tag", "<methodCall><method", 0, XR_E_TRUNCATED},
    {"truncated after <", "<methodCall><methodName>x</methodName><", 0,
     XR_E_TRUNCATED},
    {"truncated after </", "<methodCall><methodName>x</", 0, XR_E_TRUNCATED},
    {"input ends in a reference", HEAD "<value>&#x4", 0, XR_E_REF},
    {"truncated in a declaration", "<?xml version=\"1.0", 0, XR_E_TRUNCATED},
    {"input ends in a comment opener", "<methodCall><!-", 0, XR_E_SYNTAX},
    {"truncated in an end tag", "<methodCall><methodName>x</methodN", 0,
     XR_E_TRUNCATED},
    {"bad character in a tag", "<methodCall!>", 0, XR_E_SYNTAX},
    {"bad character in an end tag", V("<string>x</string x>"), 0, XR_E_SYNTAX},
    {"tag without a name", V("< string>x</string>"), 0, XR_E_SYNTAX},
    {"attribute",
     "<methodCall a=\"1\"><methodName>f</methodName>"
     "</methodCall>",
     0, XR_E_STRUCTURE},
    {"namespace declaration",
     "<methodCall xmlns=\"urn:x\"><methodName>f</methodName></methodCall>", 0,
     XR_E_STRUCTURE},
    /* comments, PIs, CDATA */
    {"-- in a comment", V("<!-- a -- b -->"), 0, XR_E_SYNTAX},
    {"comment ending --->", V("<!-- a --->"), 0, XR_E_SYNTAX},
    {"unterminated comment", V("<!-- a"), 0, XR_E_TRUNCATED},
    {"unterminated PI", V("<?pi "), 0, XR_E_TRUNCATED},
    {"PI without target", V("<? x?>"), 0, XR_E_SYNTAX},
    {"unterminated CDATA", V("<![CDATA[ a"), 0, XR_E_TRUNCATED},
    {"]]> in text", V("a]]>b"), 0, XR_E_SYNTAX},
    {"other <! markup", V("<!foo>"), 0, XR_E_SYNTAX},
    /* references */
    {"unknown entity", V("&nbsp;"), 0, XR_E_REF},
    {"entity without ;", V("&lt"), 0, XR_E_REF},
    {"bare &", V("a & b"), 0, XR_E_REF},
    {"&#0;", V("&#0;"), 0, XR_E_REF},
    {"reference to a control character", V("&#1;"), 0, XR_E_REF},
    {"reference to a surrogate", V("&#xD800;"), 0, XR_E_REF},
    {"reference to U+FFFF", V("&#xFFFF;"), 0, XR_E_REF},
    {"reference above U+10FFFF", V("&#x110000;"), 0, XR_E_REF},
    {"huge decimal reference", V("&#99999999999999999999;"), 0, XR_E_REF},
    {"empty reference", V("&#;"), 0, XR_E_REF},
    {"empty hex reference", V("&#x;"), 0, XR_E_REF},
    {"bad digit in a reference", V("&#12a;"), 0, XR_E_REF},
    {"upper-case X in a reference", V("&#X41;"), 0, XR_E_REF},
    /* XML-RPC shape */
    {"wrong root", "<methodResponse/>", 0, XR_E_STRUCTURE},
    {"no methodName", "<methodCall><params/></methodCall>", 0, XR_E_STRUCTURE},
    {"bad methodName", "<methodCall><methodName>a b</methodName></methodCall>",
     0, XR_E_STRUCTURE},
    {"empty methodName", "<methodCall><methodName/></methodCall>", 0,
     XR_E_STRUCTURE},
    {"element in methodName",
     "<methodCall><methodName><b>x</b></methodName></methodCall>", 0,
     XR_E_STRUCTURE},
    {"two methodNames",
     "<methodCall><methodName>a</methodName><methodName>b</methodName>"
     "</methodCall>",
     0, XR_E_STRUCTURE},
    {"stray text in params",
     "<methodCall><methodName>f</methodName><params>junk</params>"
     "</methodCall>",
     0, XR_E_STRUCTURE},
    {"param without value",
     "<methodCall><methodName>f</methodName><params><param/></params>"
     "</methodCall>",
     0, XR_E_STRUCTURE},
    {"param with two values", HEAD "<value>a</value><value>b</value>" TAIL, 0,
     XR_E_STRUCTURE},
    {"unknown element in params",
     "<methodCall><methodName>f</methodName><params><x/></params>"
     "</methodCall>",
     0, XR_E_STRUCTURE},
    {"unknown value type", V("<blob/>"), 0, XR_E_STRUCTURE},
    {"value with text and element", V("a<string>b</string>"), 0,
     XR_E_STRUCTURE},
    {"value with element and text", V("<string>b</string>a"), 0,
     XR_E_STRUCTURE},
    {"value with two elements", V("<string>a</string><string>b</string>"), 0,
     XR_E_STRUCTURE},
    {"element in string", V("<string>a<b/></string>"), 0, XR_E_STRUCTURE},
    {"struct with text", V("<struct>x</struct>"), 0, XR_E_STRUCTURE},
    {"struct with value", V("<struct><value/></struct>"), 0, XR_E_STRUCTURE},
    {"member without name", V("<struct><member><value/></member></struct>"), 0,
     XR_E_STRUCTURE},
    {"member without value",
     V("<struct><member><name>a</name></member></struct>"), 0, XR_E_STRUCTURE},
    {"member with two values",
     V("<struct><member><name>a</name><value/><value/></member></struct>"), 0,
     XR_E_STRUCTURE},
    {"duplicate member",
     V("<struct><member><name>a</name><value>1</value></member><member>"
       "<name>a</name><value>2</value></member></struct>"),
     0, XR_E_DUPLICATE},
    {"array without data", V("<array><value/></array>"), 0, XR_E_STRUCTURE},
    {"array with two data", V("<array><data/><data/></array>"), 0,
     XR_E_STRUCTURE},
    {"data with text", V("<array><data>x</data></array>"), 0, XR_E_STRUCTURE},
    /* scalar texts */
    {"bad int", V("<int>12x</int>"), 0, XR_E_VALUE},
    {"empty int", V("<int/>"), 0, XR_E_VALUE},
    {"int with spaces", V("<int> 1</int>"), 0, XR_E_VALUE},
    {"int above int32", V("<int>2147483648</int>"), 0, XR_E_VALUE},
    {"i4 below int32", V("<i4>-2147483649</i4>"), 0, XR_E_VALUE},
    {"i8 above int64", V("<i8>9223372036854775808</i8>"), 0, XR_E_VALUE},
    {"sign only", V("<int>-</int>"), 0, XR_E_VALUE},
    {"bad boolean", V("<boolean>true</boolean>"), 0, XR_E_VALUE},
    {"bad double", V("<double>1.5.2</double>"), 0, XR_E_VALUE},
    {"hex double", V("<double>0x1p3</double>"), 0, XR_E_VALUE},
    {"double without digits", V("<double>.</double>"), 0, XR_E_VALUE},
    {"bad exponent", V("<double>1e</double>"), 0, XR_E_VALUE},
    {"bad dateTime", V("<dateTime.iso8601>yesterday</dateTime.iso8601>"), 0,
     XR_E_VALUE},
    {"dateTime without time",
     V("<dateTime.iso8601>20240102</dateTime.iso8601>"), 0, XR_E_VALUE},
    {"bad base64", V("<base64>a$b=</base64>"), 0, XR_E_VALUE},
    {"base64 length", V("<base64>abc</base64>"), 0, XR_E_VALUE},
    {"base64 data after padding", V("<base64>ab==cd==</base64>"), 0,
     XR_E_VALUE},
    {"nil with content", V("<nil>x</nil>"), 0, XR_E_VALUE},
};

static void test_rejects(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(rejects) / sizeof(rejects[0]); i++) {
        const struct reject *r = &rejects[i];
        size_t len = r->len ? r->len : strlen(r->xml);
        struct xr_call c;
        struct xr_err e;
        char err[256] = "";
        /* an exact-size copy, no NUL after it: ASan sees any overread */
        char *xml = malloc(len ? len : 1);
        int rc;

        assert_non_null(xml);
        memcpy(xml, r->xml, len);
        rc = xr_parse_call_ex(xml, len, &c, &e);

        if (rc != -1 || e.kind != r->kind)
            print_message("%s: got rc %d %s (%s), want %s\n", r->what, rc,
                          xr_errkind_name(e.kind), e.msg,
                          xr_errkind_name(r->kind));
        assert_int_equal(rc, -1);
        assert_int_equal(e.kind, r->kind);
        assert_true(e.msg[0] != '\0');
        assert_null(c.method);
        assert_null(c.params);
        /* the compatibility entry point gives the fault code and text */
        rc = xr_parse_call(xml, len, &c, err, sizeof(err));
        assert_int_equal(rc, xr_errkind_fault(r->kind));
        assert_string_equal(err, e.msg);
        free(xml);
    }
}

static void test_fault_codes(void **state)
{
    (void)state;
    assert_int_equal(xr_errkind_fault(XR_E_SYNTAX), XR_FAULT_PARSE);
    assert_int_equal(xr_errkind_fault(XR_E_DOCTYPE), XR_FAULT_PARSE);
    assert_int_equal(xr_errkind_fault(XR_E_SIZE), XR_FAULT_PARSE);
    assert_int_equal(xr_errkind_fault(XR_E_TRAILING), XR_FAULT_PARSE);
    assert_int_equal(xr_errkind_fault(XR_E_STRUCTURE),
                     XR_FAULT_INVALID_REQUEST);
    assert_int_equal(xr_errkind_fault(XR_E_DEPTH), XR_FAULT_INVALID_REQUEST);
    assert_int_equal(xr_errkind_fault(XR_E_VALUE), XR_FAULT_INVALID_REQUEST);
    assert_int_equal(xr_errkind_fault(XR_E_DUPLICATE),
                     XR_FAULT_INVALID_REQUEST);
    assert_int_equal(xr_errkind_fault(XR_E_NOMEM), XR_FAULT_INTERNAL);
    assert_string_equal(xr_errkind_name(XR_E_REF), "XR_E_REF");
}

static void test_messages(void **state)
{
    struct xr_call c;
    struct xr_err e;
    char err[256];
    const char *doc = "<?xml version=\"1.0\"?>\n<!DOCTYPE a [<!ENTITY x "
                      "\"y\">]><methodCall/>";
    const char *two = "<methodCall>\n  <methodName>x</methodname>";

    (void)state;
    /* the texts the plugin's tests (test-xapi.sh) look for */
    assert_int_equal(xr_parse_call(doc, strlen(doc), &c, err, sizeof(err)),
                     XR_FAULT_PARSE);
    assert_true(!strncmp(err, "a DOCTYPE is not allowed", 24));
    assert_int_equal(xr_parse_call("garbage", 7, &c, err, sizeof(err)),
                     XR_FAULT_PARSE);
    assert_true(!strncmp(err, "malformed XML: ", 15));
    /* where: line and column of the offending end tag */
    assert_int_equal(xr_parse_call_ex(two, strlen(two), &c, &e), -1);
    assert_int_equal(e.kind, XR_E_MISMATCH);
    assert_int_equal(e.line, 2);
    assert_int_equal(e.column, 16);
    assert_int_equal(e.offset, 28);
    assert_non_null(strstr(e.msg, "</methodname> does not close <methodName>"));
    assert_non_null(strstr(e.msg, "(line 2, column 16)"));
}

static void test_size_limits(void **state)
{
    size_t n = XR_MAX_INPUT + 1;
    char *big = malloc(XR_MAX_RESPONSE + 2);
    struct xr_call c;
    struct xr_response r;
    struct xr_err e;
    char err[256];
    int len;

    (void)state;
    assert_non_null(big);
    /* a methodCall one byte over XR_MAX_INPUT */
    len = sprintf(big, "<methodCall><methodName>");
    memset(big + len, 'a', n);
    assert_int_equal(xr_parse_call_ex(big, n, &c, &e), -1);
    assert_int_equal(e.kind, XR_E_SIZE);
    assert_int_equal(xr_parse_call(big, n, &c, err, sizeof(err)),
                     XR_FAULT_PARSE);
    assert_string_equal(err, "document is 65537 bytes (must be 1..65536)");
    /* a response larger than a call may be, but within its own limit */
    len = sprintf(big, "<methodResponse><params><param><value>");
    memset(big + len, 'a', XR_MAX_INPUT * 2);
    strcpy(big + len + XR_MAX_INPUT * 2,
           "</value></param></params></methodResponse>");
    assert_int_equal(xr_parse_response_ex(big, strlen(big), &r, &e), 0);
    assert_int_equal(strlen(r.value->str), XR_MAX_INPUT * 2);
    xr_response_free(&r);
    memset(big, ' ', XR_MAX_RESPONSE + 1);
    assert_int_equal(xr_parse_response_ex(big, XR_MAX_RESPONSE + 1, &r, &e),
                     -1);
    assert_int_equal(e.kind, XR_E_SIZE);
    assert_null(r.value);
    assert_int_equal(xr_parse_response_ex(NULL, 5, &r, &e), -1);
    assert_int_equal(e.kind, XR_E_SIZE);
    free(big);
}

/* ------------------------------------------------------------ responses */

static void test_responses(void **state)
{
    const char *ok = "<methodResponse><params><param><value><struct>"
                     "<member><name>Status</name><value>Success</value>"
                     "</member><member><name>Value</name><value><struct>"
                     "<member><name>k</name><value>v</value></member>"
                     "</struct></value></member></struct></value></param>"
                     "</params></methodResponse>";
    const char *fault =
        "<?xml version='1.0'?>\n<methodResponse>\n<fault>\n<value><struct>\n"
        "<member>\n<name>faultCode</name>\n<value><int>-32601</int></value>\n"
        "</member>\n<member>\n<name>faultString</name>\n<value><string>nope"
        "</string></value>\n</member>\n</struct></value>\n</fault>\n"
        "</methodResponse>\n";
    static const struct reject bad[] = {
        {"two params",
         "<methodResponse><params><param><value/></param><param><value/>"
         "</param></params></methodResponse>",
         0, XR_E_STRUCTURE},
        {"no param", "<methodResponse><params/></methodResponse>", 0,
         XR_E_STRUCTURE},
        {"empty response", "<methodResponse/>", 0, XR_E_STRUCTURE},
        {"params and fault",
         "<methodResponse><params><param><value/></param></params><fault>"
         "<value/></fault></methodResponse>",
         0, XR_E_STRUCTURE},
        {"fault without code",
         "<methodResponse><fault><value><struct><member><name>faultString"
         "</name><value>x</value></member></struct></value></fault>"
         "</methodResponse>",
         0, XR_E_STRUCTURE},
        {"fault code a string",
         "<methodResponse><fault><value><struct><member><name>faultCode"
         "</name><value>1</value></member><member><name>faultString</name>"
         "<value>x</value></member></struct></value></fault>"
         "</methodResponse>",
         0, XR_E_STRUCTURE},
        {"fault code above int",
         "<methodResponse><fault><value><struct><member><name>faultCode"
         "</name><value><i8>4294967296</i8></value></member><member><name>"
         "faultString</name><value>x</value></member></struct></value>"
         "</fault></methodResponse>",
         0, XR_E_STRUCTURE},
        {"a methodCall", "<methodCall><methodName>f</methodName></methodCall>",
         0, XR_E_STRUCTURE},
        {"a bare string answer", "domain 5 VM x: pool=A", 0, XR_E_SYNTAX},
    };
    struct xr_response r;
    struct xr_err e;
    char err[256];

    (void)state;
    assert_int_equal(xr_parse_response(ok, strlen(ok), &r, err, sizeof(err)),
                     0);
    assert_false(r.is_fault);
    assert_string_equal(xr_struct_get_string(r.value, "Status"), "Success");
    assert_string_equal(
        xr_struct_get_string(xr_struct_get(r.value, "Value"), "k"), "v");
    xr_response_free(&r);
    assert_int_equal(
        xr_parse_response(fault, strlen(fault), &r, err, sizeof(err)), 0);
    assert_true(r.is_fault);
    assert_int_equal(r.fault_code, -32601);
    assert_string_equal(r.fault_string, "nope");
    assert_null(r.value);
    xr_response_free(&r);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = xr_parse_response_ex(bad[i].xml, strlen(bad[i].xml), &r, &e);

        if (rc != -1 || e.kind != bad[i].kind)
            print_message("%s: got %s (%s)\n", bad[i].what,
                          xr_errkind_name(e.kind), e.msg);
        assert_int_equal(rc, -1);
        assert_int_equal(e.kind, bad[i].kind);
        assert_null(r.value);
        assert_null(r.fault_string);
    }
}

/* ------------------------------------------------------------ the writer */

static void assert_same(const struct xr_value *a, const struct xr_value *b)
{
    assert_int_equal(a->type, b->type);
    assert_int_equal(a->n, b->n);
    switch (a->type) {
    case XR_STRUCT:
        for (size_t i = 0; i < a->n; i++) {
            assert_string_equal(a->keys[i], b->keys[i]);
            assert_same(a->items[i], b->items[i]);
        }
        break;
    case XR_ARRAY:
        for (size_t i = 0; i < a->n; i++)
            assert_same(a->items[i], b->items[i]);
        break;
    case XR_INT:
    case XR_BOOL:
        assert_true(a->num == b->num);
        break;
    case XR_NIL:
        break;
    default:
        assert_string_equal(a->str, b->str);
    }
}

static struct xr_value *scalar(enum xr_type t, const char *s, long long n)
{
    struct xr_value *v = xr_new_string(s);

    assert_non_null(v);
    v->type = t;
    v->num = n;
    return v;
}

static struct xr_value *sample_tree(void)
{
    struct xr_value *st = xr_new_struct(), *a = xr_new_array(),
                    *in = xr_new_struct();

    assert_non_null(st);
    assert_non_null(a);
    assert_non_null(in);
    assert_int_equal(xr_struct_set_string(st, "plain", "text"), 0);
    assert_int_equal(xr_struct_set_string(st, "markup", "<&>\"' ]]> --"), 0);
    assert_int_equal(xr_struct_set_string(st, "lines", "a\r\nb\rc\nd\te"), 0);
    assert_int_equal(xr_struct_set_string(
                         st, "utf8", "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"),
                     0);
    assert_int_equal(xr_struct_set_string(st, "", ""), 0);
    assert_int_equal(xr_struct_set_string(st, "  spaced <key> & ", "  "), 0);
    assert_int_equal(xr_add(a, NULL, xr_new_int(-5)), 0);
    assert_int_equal(xr_add(a, NULL, xr_new_int(INT64_MAX)), 0);
    assert_int_equal(xr_add(a, NULL, scalar(XR_BOOL, "1", 1)), 0);
    assert_int_equal(xr_add(a, NULL, scalar(XR_DOUBLE, "-1.25e-3", 0)), 0);
    assert_int_equal(
        xr_add(a, NULL, scalar(XR_DATETIME, "20240102T03:04:05", 0)), 0);
    assert_int_equal(xr_add(a, NULL, scalar(XR_BASE64, "aGk=", 0)), 0);
    assert_int_equal(xr_add(a, NULL, scalar(XR_NIL, NULL, 0)), 0);
    assert_int_equal(xr_add(a, NULL, xr_new_array()), 0);
    assert_int_equal(xr_add(a, NULL, in), 0);
    assert_int_equal(xr_add(st, "list", a), 0);
    return st;
}

static void test_round_trips(void **state)
{
    struct xr_value *st = sample_tree(), *params = xr_new_array();
    struct xr_response r;
    struct xr_call c;
    struct xr_err e;
    size_t len = 0;
    char *doc;

    (void)state;
    doc = xr_build_response(st, &len);
    assert_non_null(doc);
    assert_int_equal(len, strlen(doc));
    assert_non_null(strstr(doc, "&lt;&amp;&gt;\"' ]]&gt; --"));
    assert_non_null(strstr(doc, "a&#13;\nb&#13;c\nd\te"));
    assert_int_equal(xr_parse_response_ex(doc, len, &r, &e), 0);
    assert_same(st, r.value);
    xr_response_free(&r);
    free(doc);

    assert_non_null(params);
    assert_int_equal(xr_add(params, NULL, xr_new_string("OpaqueRef:s")), 0);
    assert_int_equal(xr_add(params, NULL, st), 0);
    doc = xr_build_call("VM.get_by_uuid", params, &len);
    assert_non_null(doc);
    assert_int_equal(xr_parse_call_ex(doc, len, &c, &e), 0);
    assert_string_equal(c.method, "VM.get_by_uuid");
    assert_same(params, c.params);
    xr_call_free(&c);
    free(doc);
    xr_value_free(params);

    doc = xr_build_fault(-32601, "no <such> method", &len);
    assert_non_null(doc);
    assert_int_equal(xr_parse_response_ex(doc, len, &r, &e), 0);
    assert_true(r.is_fault);
    assert_int_equal(r.fault_code, -32601);
    assert_string_equal(r.fault_string, "no <such> method");
    xr_response_free(&r);
    free(doc);
}

static void test_xenapi_envelope(void **state)
{
    const char *params[] = {"unknown pool 'C' (known: A, B)", ""};
    const struct xr_value *d;
    struct xr_response r;
    struct xr_err e;
    char *doc;

    (void)state;
    /* success: {Status: "Success", Value: string}, Status first */
    doc = xr_build_xenapi_success("domain 5 ...\nline 2", NULL);
    assert_non_null(doc);
    assert_non_null(strstr(doc, "<struct><member><name>Status</name><value>"
                                "<string>Success</string></value></member>"
                                "<member><name>Value</name><value><string>"));
    assert_int_equal(xr_parse_response_ex(doc, strlen(doc), &r, &e), 0);
    assert_int_equal(r.value->n, 2);
    assert_string_equal(xr_struct_get_string(r.value, "Status"), "Success");
    assert_string_equal(xr_struct_get_string(r.value, "Value"),
                        "domain 5 ...\nline 2");
    xr_response_free(&r);
    free(doc);
    doc = xr_build_xenapi_success(NULL, NULL);
    assert_non_null(doc);
    assert_int_equal(xr_parse_response_ex(doc, strlen(doc), &r, &e), 0);
    assert_string_equal(xr_struct_get_string(r.value, "Value"), "");
    xr_response_free(&r);
    free(doc);

    /* failure: {Status: "Failure", ErrorDescription: [code, params...]} */
    doc = xr_build_xenapi_failure("VGPU_BAD_ARGUMENT", params, 2, NULL);
    assert_non_null(doc);
    assert_int_equal(xr_parse_response_ex(doc, strlen(doc), &r, &e), 0);
    assert_string_equal(xr_struct_get_string(r.value, "Status"), "Failure");
    d = xr_struct_get(r.value, "ErrorDescription");
    assert_non_null(d);
    assert_int_equal(d->type, XR_ARRAY);
    assert_int_equal(d->n, 3);
    assert_string_equal(d->items[0]->str, "VGPU_BAD_ARGUMENT");
    assert_string_equal(d->items[1]->str, params[0]);
    assert_string_equal(d->items[2]->str, "");
    xr_response_free(&r);
    free(doc);
    assert_null(xr_build_xenapi_failure("", NULL, 0, NULL));
    assert_null(xr_build_xenapi_failure(NULL, NULL, 0, NULL));
}

static void test_writer_refuses_and_replaces(void **state)
{
    struct xr_value *v = xr_new_string("a\x01"
                                       "b\xff"
                                       "c\xc0\xaf"
                                       "d\xef\xbf\xbf"),
                    *deep, *cur, *bad;
    struct xr_response r;
    struct xr_err e;
    char *doc;

    (void)state;
    /* characters XML cannot carry become U+FFFD, never invalid output */
    doc = xr_build_response(v, NULL);
    assert_non_null(doc);
    assert_int_equal(xr_parse_response_ex(doc, strlen(doc), &r, &e), 0);
    assert_string_equal(r.value->str, "a\xef\xbf\xbd"
                                      "b\xef\xbf\xbd"
                                      "c\xef\xbf\xbd\xef\xbf\xbd"
                                      "d\xef\xbf\xbd");
    xr_response_free(&r);
    free(doc);
    xr_value_free(v);

    /* a tree deeper than the reader takes is not written */
    deep = cur = xr_new_array();
    for (int i = 1; i < XR_MAX_DEPTH; i++) {
        struct xr_value *n = xr_new_array();

        assert_int_equal(xr_add(cur, NULL, n), 0);
        cur = n;
    }
    doc = xr_build_response(deep, NULL);
    assert_non_null(doc); /* exactly XR_MAX_DEPTH */
    assert_int_equal(xr_parse_response_ex(doc, strlen(doc), &r, &e), 0);
    xr_response_free(&r);
    free(doc);
    assert_int_equal(xr_add(cur, NULL, xr_new_array()), 0);
    assert_null(xr_build_response(deep, NULL));
    xr_value_free(deep);

    /* scalar texts that would not read back */
    bad = scalar(XR_DOUBLE, "1,5", 0);
    assert_null(xr_build_response(bad, NULL));
    xr_value_free(bad);
    bad = scalar(XR_DATETIME, "now", 0);
    assert_null(xr_build_response(bad, NULL));
    xr_value_free(bad);
    bad = scalar(XR_BASE64, "***", 0);
    assert_null(xr_build_response(bad, NULL));
    xr_value_free(bad);
    /* method names the reader would refuse */
    assert_null(xr_build_call("a b", NULL, NULL));
    assert_null(xr_build_call("", NULL, NULL));
}

static void test_values_api(void **state)
{
    struct xr_value *st = xr_new_struct(), *a = xr_new_array();

    (void)state;
    /* xr_add takes the item even when it refuses it */
    assert_int_equal(xr_add(st, NULL, xr_new_string("x")), -1);
    assert_int_equal(xr_add(a, "k", xr_new_string("x")), -1);
    assert_int_equal(xr_add(NULL, NULL, xr_new_string("x")), -1);
    assert_int_equal(xr_add(a, NULL, NULL), -1);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(xr_add(a, NULL, xr_new_int(i)), 0);
    assert_int_equal(a->n, 1000);
    assert_int_equal(a->items[999]->num, 999);
    assert_int_equal(xr_struct_set_string(st, "k", "v"), 0);
    assert_null(xr_struct_get(st, "nope"));
    assert_null(xr_struct_get(a, "k"));
    assert_null(xr_struct_get_string(st, NULL));
    assert_int_equal(xr_add(st, "n", xr_new_int(1)), 0);
    assert_null(xr_struct_get_string(st, "n"));
    assert_string_equal(xr_struct_get_string(st, "k"), "v");
    xr_value_free(st);
    xr_value_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_xapi_call),
        cmocka_unit_test(test_python_call),
        cmocka_unit_test(test_all_types),
        cmocka_unit_test(test_lexical_forms),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_big_containers),
        cmocka_unit_test(test_rejects),
        cmocka_unit_test(test_fault_codes),
        cmocka_unit_test(test_messages),
        cmocka_unit_test(test_size_limits),
        cmocka_unit_test(test_responses),
        cmocka_unit_test(test_round_trips),
        cmocka_unit_test(test_xenapi_envelope),
        cmocka_unit_test(test_writer_refuses_and_replaces),
        cmocka_unit_test(test_values_api),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
