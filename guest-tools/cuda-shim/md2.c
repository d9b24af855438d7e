/*
 * cuda-shim/md2.c - owns MD2 and HMAC-MD2 (md2.h), written from RFC 1319
 * and RFC 2104; guest-tools/tests/test-md2.c checks RFC 1319's test
 * vectors.
 */
#include "md2.h"

#include <string.h>

/* RFC 1319's permutation of 0..255, from the digits of pi. */
static const uint8_t md2_s[256] = {
    41,  46,  67,  201, 162, 216, 124, 1,   61,  54,  84,  161, 236, 240, 6,
    19,  98,  167, 5,   243, 192, 199, 115, 140, 152, 147, 43,  217, 188, 76,
    130, 202, 30,  155, 87,  60,  253, 212, 224, 22,  103, 66,  111, 24,  138,
    23,  229, 18,  190, 78,  196, 214, 218, 158, 222, 73,  160, 251, 245, 142,
    187, 47,  238, 122, 169, 104, 121, 145, 21,  178, 7,   63,  148, 194, 16,
    137, 11,  34,  95,  33,  128, 127, 93,  154, 90,  144, 50,  39,  53,  62,
    204, 231, 191, 247, 151, 3,   255, 25,  48,  179, 72,  165, 181, 209, 215,
    94,  146, 42,  172, 86,  170, 198, 79,  184, 56,  210, 150, 164, 125, 182,
    118, 252, 107, 226, 156, 116, 4,   241, 69,  157, 112, 89,  100, 113, 135,
    32,  134, 91,  207, 101, 230, 45,  168, 2,   27,  96,  37,  173, 174, 176,
    185, 246, 28,  70,  97,  105, 52,  64,  126, 15,  85,  71,  163, 35,  221,
    81,  175, 58,  195, 92,  249, 206, 186, 197, 234, 38,  44,  83,  13,  110,
    133, 40,  132, 9,   211, 223, 205, 244, 65,  129, 77,  82,  106, 220, 55,
    200, 108, 193, 171, 250, 36,  225, 123, 8,   12,  189, 177, 74,  120, 136,
    149, 139, 227, 99,  232, 109, 233, 203, 213, 254, 59,  0,   29,  57,  242,
    239, 183, 14,  102, 88,  208, 228, 166, 119, 114, 248, 235, 117, 75,  10,
    49,  68,  80,  180, 143, 237, 31,  26,  219, 153, 141, 51,  159, 17,  131,
    20,
};

void md2_init(struct md2 *m)
{
    memset(m, 0, sizeof(*m));
}

static void md2_block(struct md2 *m, const uint8_t *block)
{
    unsigned t = 0;

    for (unsigned j = 0; j < 16; j++) {
        m->state[16 + j] = block[j];
        m->state[32 + j] = (uint8_t)(block[j] ^ m->state[j]);
        m->checksum[j] ^= md2_s[block[j] ^ m->last];
        m->last = m->checksum[j];
    }
    for (unsigned round = 0; round < 18; round++) {
        for (unsigned k = 0; k < 48; k++) {
            m->state[k] ^= md2_s[t];
            t = m->state[k];
        }
        t = (t + round) & 0xff;
    }
}

void md2_update(struct md2 *m, const void *data, size_t len)
{
    const uint8_t *p = data;

    while (len--) {
        m->buf[m->used++] = *p++;
        if (m->used == 16) {
            md2_block(m, m->buf);
            m->used = 0;
        }
    }
}

void md2_final(struct md2 *m, uint8_t out[16])
{
    uint8_t pad[16], sum[16];
    unsigned n = 16 - m->used;

    memset(pad, (int)n, sizeof(pad));
    md2_update(m, pad, n);
    memcpy(sum, m->checksum, sizeof(sum));
    md2_block(m, sum);
    memcpy(out, m->state, 16);
}

void hmac_md2(const uint8_t key[16], const void *msg, size_t len,
              uint8_t out[16])
{
    uint8_t k[16], inner[16];
    struct md2 m;

    for (unsigned i = 0; i < 16; i++) {
        k[i] = key[i] ^ 0x36;
    }
    md2_init(&m);
    md2_update(&m, k, sizeof(k));
    md2_update(&m, msg, len);
    md2_final(&m, inner);
    for (unsigned i = 0; i < 16; i++) {
        k[i] = key[i] ^ 0x5c;
    }
    md2_init(&m);
    md2_update(&m, k, sizeof(k));
    md2_update(&m, inner, sizeof(inner));
    md2_final(&m, out);
}
