/*
 * qemuargs.c - reading xenopsd's qemu argument list for the wrapper (see
 * qemuargs.h).  Only -device values with an addr= property are looked at:
 * a device without one takes the first free slot when QEMU starts, which
 * is exactly why ours always names its slot.
 */
#include "qemuargs.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

int qemuargs_has(int argc, char **argv, int first, const char *opt)
{
    for (int i = first; i < argc; i++) {
        if (!strcmp(argv[i], opt))
            return 1;
    }
    return 0;
}

static int hex_digits(const char *s, size_t n, unsigned long *v)
{
    if (n == 0 || n > 8)
        return -1;
    *v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isxdigit((unsigned char)s[i]))
            return -1;
        *v = *v * 16 +
             (unsigned long)(isdigit((unsigned char)s[i])
                                 ? s[i] - '0'
                                 : tolower((unsigned char)s[i]) - 'a' + 10);
    }
    return 0;
}

int qemuargs_parse_addr(const char *s)
{
    const char *dot;
    unsigned long slot, fn;
    size_t n;

    if (!strncmp(s, "0x", 2) || !strncmp(s, "0X", 2))
        s += 2;
    dot = strchr(s, '.');
    n = dot ? (size_t)(dot - s) : strlen(s);
    if (hex_digits(s, n, &slot) || slot > QEMUARGS_SLOT_MAX)
        return -1;
    if (dot && (hex_digits(dot + 1, strlen(dot + 1), &fn) || fn > 7))
        return -1;
    return (int)slot;
}

/* The addr= property of a -device value ("driver,k=v,..."), or NULL. */
static const char *addr_of(const char *dev, char *buf, size_t cap)
{
    const char *p = dev;

    while ((p = strchr(p, ','))) {
        const char *v = p + 1, *end;
        size_t n;

        p++;
        if (strncmp(v, "addr=", 5))
            continue;
        v += 5;
        end = strchr(v, ',');
        n = end ? (size_t)(end - v) : strlen(v);
        if (n >= cap)
            return NULL;
        memcpy(buf, v, n);
        buf[n] = '\0';
        return buf;
    }
    return NULL;
}

const char *qemuargs_slot_user(int argc, char **argv, int first,
                               unsigned int slot)
{
    char buf[32];

    for (int i = first; i + 1 < argc; i++) {
        const char *addr;

        if (strcmp(argv[i], "-device"))
            continue;
        addr = addr_of(argv[i + 1], buf, sizeof(buf));
        if (addr && qemuargs_parse_addr(addr) == (int)slot)
            return argv[i + 1];
        i++;
    }
    return NULL;
}
