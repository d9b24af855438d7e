/*
 * test-xr.c - unit tests of xapi-plugin/xr.c: strict methodCall parsing
 * (good shapes, every kind of malformed or hostile document), methodResponse
 * parsing (XenAPI results, faults) and the builders (escaping, round trip).
 * Prints one line per check and "N passed, N failed".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xr.h"

static int passed, failed;

static void check(int ok, const char *what)
{
    printf("%s: %s\n", ok ? "ok" : "FAIL", what);
    if (ok)
        passed++;
    else
        failed++;
}

#define CALL_HEAD "<?xml version=\"1.0\"?><methodCall>"
#define SESSION "<param><value>OpaqueRef:s</value></param>"

static int parse(const char *xml, struct xr_call *c, char *err)
{
    return xr_parse_call(xml, strlen(xml), c, err, 256);
}

static void test_good_call(void)
{
    const char *xml =
        CALL_HEAD "<methodName>assign</methodName>\n<params>\n" SESSION
                  "<param><value><struct>"
                  "<member><name>domid</name><value><string>5</string>"
                  "</value></member>"
                  "<member><name>x</name><value>a&amp;b</value></member>"
                  "</struct></value></param></params></methodCall>";
    struct xr_call c;
    char err[256] = "";
    int rc = parse(xml, &c, err);

    check(rc == 0, "well-formed call parses");
    if (rc) {
        printf("  %s\n", err);
        return;
    }
    check(!strcmp(c.method, "assign"), "methodName read");
    check(c.params->n == 2 && c.params->items[0]->type == XR_STRING &&
              !strcmp(c.params->items[0]->str, "OpaqueRef:s"),
          "untyped <value> is a string");
    check(c.params->items[1]->type == XR_STRUCT &&
              !strcmp(xr_struct_get_string(c.params->items[1], "domid"), "5") &&
              !strcmp(xr_struct_get_string(c.params->items[1], "x"), "a&b"),
          "struct members and entities read");
    xr_call_free(&c);
}

static void expect_reject(const char *xml, int code, const char *what)
{
    struct xr_call c;
    char err[256] = "";
    int rc = parse(xml, &c, err);

    check(rc == code && err[0], what);
    if (rc != code)
        printf("  got %d (%s)\n", rc, err);
}

static void test_rejects(void)
{
    char *big;

    expect_reject("<methodCall><methodName>x</methodName>", XR_FAULT_PARSE,
                  "truncated XML rejected");
    expect_reject("not xml at all", XR_FAULT_PARSE, "text rejected");
    expect_reject("", XR_FAULT_PARSE, "empty input rejected");
    expect_reject("<?xml version=\"1.0\"?><!DOCTYPE m [<!ENTITY e "
                  "\"boom\">]><methodCall><methodName>&e;</methodName>"
                  "</methodCall>",
                  XR_FAULT_PARSE, "DOCTYPE / entities rejected");
    expect_reject("<methodResponse/>", XR_FAULT_PARSE, "wrong root rejected");
    expect_reject("<methodCall><params/></methodCall>",
                  XR_FAULT_INVALID_REQUEST, "missing methodName rejected");
    expect_reject("<methodCall><methodName>a b</methodName></methodCall>",
                  XR_FAULT_INVALID_REQUEST, "bad methodName rejected");
    expect_reject("<methodCall><methodName>f</methodName><params><param>"
                  "<value><struct><member><name>a</name><value>1</value>"
                  "</member><member><name>a</name><value>2</value>"
                  "</member></struct></value></param></params>"
                  "</methodCall>",
                  XR_FAULT_INVALID_REQUEST, "duplicate member rejected");
    expect_reject("<methodCall><methodName>f</methodName><params>junk"
                  "</params></methodCall>",
                  XR_FAULT_INVALID_REQUEST, "stray text rejected");
    expect_reject("<methodCall><methodName>f</methodName><params><param>"
                  "<value><int>12x</int></value></param></params>"
                  "</methodCall>",
                  XR_FAULT_INVALID_REQUEST, "bad <int> rejected");
    expect_reject("<methodCall><methodName>f</methodName><params><param>"
                  "<value><blob/></value></param></params></methodCall>",
                  XR_FAULT_INVALID_REQUEST, "unknown type rejected");
    big = malloc(XR_MAX_INPUT + 64);
    if (big) {
        strcpy(big, "<methodCall><methodName>");
        memset(big + strlen(big), 'a', XR_MAX_INPUT);
        strcpy(big + 24 + XR_MAX_INPUT, "</methodName></methodCall>");
        expect_reject(big, XR_FAULT_PARSE, "input above 64 KB rejected");
        free(big);
    }
}

static void test_depth(void)
{
    char xml[4096] = "<methodCall><methodName>f</methodName><params><param>"
                     "<value>";
    struct xr_call c;
    char err[256] = "";

    for (int i = 0; i < XR_MAX_DEPTH + 2; i++)
        strcat(xml, "<array><data><value>");
    strcat(xml, "x");
    for (int i = 0; i < XR_MAX_DEPTH + 2; i++)
        strcat(xml, "</value></data></array>");
    strcat(xml, "</value></param></params></methodCall>");
    check(parse(xml, &c, err) == XR_FAULT_INVALID_REQUEST,
          "nesting deeper than XR_MAX_DEPTH rejected");
}

static void test_response(void)
{
    const char *ok =
        "<methodResponse><params><param><value><struct>"
        "<member><name>Status</name><value>Success</value></member>"
        "<member><name>Value</name><value><struct><member><name>k</name>"
        "<value>v</value></member></struct></value></member>"
        "</struct></value></param></params></methodResponse>";
    const char *fault =
        "<methodResponse><fault><value><struct><member><name>faultCode"
        "</name><value><int>-32601</int></value></member><member><name>"
        "faultString</name><value><string>nope</string></value></member>"
        "</struct></value></fault></methodResponse>";
    struct xr_response r;
    char err[256];

    check(xr_parse_response(ok, strlen(ok), &r, err, sizeof(err)) == 0 &&
              !r.is_fault &&
              !strcmp(xr_struct_get_string(r.value, "Status"), "Success"),
          "XenAPI result parses");
    xr_response_free(&r);
    check(xr_parse_response(fault, strlen(fault), &r, err, sizeof(err)) == 0 &&
              r.is_fault && r.fault_code == -32601 &&
              !strcmp(r.fault_string, "nope"),
          "fault parses");
    xr_response_free(&r);
}

static void test_build(void)
{
    struct xr_value *st = xr_new_struct();
    struct xr_response r;
    char err[256];
    char *doc;

    xr_struct_set_string(st, "a", "<&>\"'");
    doc = xr_build_response(st, NULL);
    check(doc && strstr(doc, "&lt;&amp;&gt;"), "builder escapes text");
    check(doc &&
              xr_parse_response(doc, strlen(doc), &r, err, sizeof(err)) == 0 &&
              !strcmp(xr_struct_get_string(r.value, "a"), "<&>\"'"),
          "struct response round trip");
    if (doc)
        xr_response_free(&r);
    free(doc);
    xr_value_free(st);

    doc = xr_build_fault(2, "VM not found", NULL);
    check(doc &&
              xr_parse_response(doc, strlen(doc), &r, err, sizeof(err)) == 0 &&
              r.is_fault && r.fault_code == 2 &&
              !strcmp(r.fault_string, "VM not found"),
          "fault round trip");
    if (doc)
        xr_response_free(&r);
    free(doc);
}

int main(void)
{
    test_good_call();
    test_rejects();
    test_depth();
    test_response();
    test_build();
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
