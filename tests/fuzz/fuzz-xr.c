/*
 * fuzz-xr.c - libFuzzer target for the xapi plugin's XML-RPC reader
 * (xapi-plugin/xr.c): what xapi hands a plugin (<methodCall>, from any
 * caller of host-call-plugin) and what xapi answers our XenAPI calls
 * (<methodResponse>).
 *
 * The first byte picks the parser (even: call, odd: response), the rest
 * is the document.  A document that parses must survive a round trip:
 * written back by the builder, it parses again to the same method or
 * fault, so the writer never emits what the reader refuses.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "xr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void round_trip_call(const struct xr_call *call)
{
    struct xr_call again;
    size_t len;
    char *doc = xr_build_call(call->method, call->params, &len);

    if (!doc) {
        return; /* deeper than the writer allows, or out of memory */
    }
    if (xr_parse_call_ex(doc, len, &again, NULL) != 0 ||
        strcmp(again.method, call->method) != 0) {
        abort();
    }
    xr_call_free(&again);
    free(doc);
}

static void round_trip_response(const struct xr_response *r)
{
    struct xr_response again;
    size_t len;
    char *doc = r->is_fault
                    ? xr_build_fault(r->fault_code, r->fault_string, &len)
                    : xr_build_response(r->value, &len);

    if (!doc) {
        return;
    }
    if (xr_parse_response_ex(doc, len, &again, NULL) != 0 ||
        again.is_fault != r->is_fault ||
        (r->is_fault && again.fault_code != r->fault_code)) {
        abort();
    }
    xr_response_free(&again);
    free(doc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct xr_err e;
    /* An exact-size copy, so that a read past the end is caught. */
    char *doc;

    if (size < 1) {
        return 0;
    }
    doc = malloc(size - 1 ? size - 1 : 1);
    if (!doc) {
        return 0;
    }
    memcpy(doc, data + 1, size - 1);
    if (data[0] & 1) {
        struct xr_response r;

        if (xr_parse_response_ex(doc, size - 1, &r, &e) == 0) {
            round_trip_response(&r);
            xr_response_free(&r);
        } else if (e.kind == XR_E_NONE) {
            abort(); /* a refusal always says why */
        }
    } else {
        struct xr_call c;

        if (xr_parse_call_ex(doc, size - 1, &c, &e) == 0) {
            round_trip_call(&c);
            xr_call_free(&c);
        } else if (e.kind == XR_E_NONE) {
            abort();
        }
    }
    free(doc);
    return 0;
}
