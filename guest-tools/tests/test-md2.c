/*
 * test-md2.c - the guest libcuda's MD2 (cuda-shim/md2.c) against RFC
 * 1319's test vectors, and HMAC-MD2's structure (RFC 2104): the integrity
 * answer NVIDIA's runtime checks is only right if these are.
 */
#include <stdio.h>
#include <string.h>

#include "../cuda-shim/md2.h"

static int failures;

static void hex(const uint8_t *d, char out[33])
{
    for (int i = 0; i < 16; i++) {
        sprintf(out + 2 * i, "%02x", d[i]);
    }
}

static void vector(const char *msg, const char *want)
{
    struct md2 m;
    uint8_t d[16];
    char got[33];

    md2_init(&m);
    md2_update(&m, msg, strlen(msg));
    md2_final(&m, d);
    hex(d, got);
    if (strcmp(got, want)) {
        printf("FAILED: MD2(\"%s\") = %s, want %s\n", msg, got, want);
        failures++;
    } else {
        printf("ok: MD2(\"%s\")\n", msg);
    }
}

int main(void)
{
    static const uint8_t key[16] = {1, 2,  3,  4,  5,  6,  7,  8,
                                    9, 10, 11, 12, 13, 14, 15, 16};
    uint8_t a[16], b[16], pad[16];
    struct md2 m;

    /* RFC 1319, appendix A.5. */
    vector("", "8350e5a3e24c153df2275c9f80692773");
    vector("a", "32ec01ec4a6dac72c0ab96fb34c0b5d1");
    vector("abc", "da853b0d3f88d99b30283a69e6ded6bb");
    vector("message digest", "ab4f496bfb2a530b219ff33031fe06b0");
    vector("abcdefghijklmnopqrstuvwxyz", "4e8ddff3650292ab5a4108c3aa47940b");
    vector("12345678901234567890123456789012345678901234567890123456789012"
           "345678901234567890",
           "d5976f79d83d3a0dc9806c3c66f3efd8");
    /* HMAC: MD2((key^0x5c) || MD2((key^0x36) || msg)), done by hand. */
    hmac_md2(key, "vgpu", 4, a);
    for (int i = 0; i < 16; i++) {
        pad[i] = key[i] ^ 0x36;
    }
    md2_init(&m);
    md2_update(&m, pad, 16);
    md2_update(&m, "vgpu", 4);
    md2_final(&m, b);
    for (int i = 0; i < 16; i++) {
        pad[i] = key[i] ^ 0x5c;
    }
    md2_init(&m);
    md2_update(&m, pad, 16);
    md2_update(&m, b, 16);
    md2_final(&m, b);
    if (memcmp(a, b, 16)) {
        printf("FAILED: HMAC-MD2 is not MD2(k^5c || MD2(k^36 || m))\n");
        failures++;
    } else {
        printf("ok: HMAC-MD2 structure\n");
    }
    printf("%s\n", failures ? "FAIL" : "PASS");
    return failures ? 1 : 0;
}
