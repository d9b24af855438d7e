/*
 * test-cuda-image.c - unit test of common/cuda_image.c, the reader of CUDA
 * module images.
 *
 * First hand-made images (a small cubin built here, PTX texts, fatbin
 * headers) that need no nvcc: the layouts they give and the hostile
 * variants they are refused in.  Then the images the Makefile built with
 * nvcc into CUDA_IMAGE_DIR (or $CUDA_IMAGE_DIR): names and layouts equal
 * to the expected ones in every form (cubin, PTX, fatbins with and
 * without compression), cuda_image_size equal to the file size, and every
 * truncation and flipped byte of them refused or read consistently, each
 * from a buffer of exactly its size so that ASan sees any overread.
 * Without those images (no nvcc) it prints "SKIP: no nvcc" and exits 77
 * once the hand-made cases passed.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_image.h"

#ifndef CUDA_IMAGE_DIR
#define CUDA_IMAGE_DIR "images"
#endif

static int failures;

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__,   \
                    #cond);                                                    \
            failures++;                                                        \
        }                                                                      \
    } while (0)

/* --- what the walks report, collected -------------------------------- */

#define MAX_SEEN 64

struct seen {
    int n;
    char name[MAX_SEEN][64];
    struct cuda_kernel_info info[MAX_SEEN];
};

static int collect(void *arg, const char *name,
                   const struct cuda_kernel_info *info)
{
    struct seen *s = arg;

    if (s->n < MAX_SEEN) {
        snprintf(s->name[s->n], sizeof(s->name[0]), "%s", name);
        s->info[s->n] = *info;
    }
    s->n++;
    return 0;
}

/* A layout a walk reported must be one: counted, ascending, totalled. */
static int consistent(void *arg, const char *name,
                      const struct cuda_kernel_info *info)
{
    uint32_t end = 0;

    (void)arg;
    CHECK(strlen(name) < CUDA_IMAGE_MAX_NAME);
    CHECK(info->count <= CUDA_IMAGE_MAX_PARAMS);
    for (uint32_t i = 0; i < info->count && i < CUDA_IMAGE_MAX_PARAMS; i++) {
        CHECK(info->param[i].size > 0);
        CHECK(info->param[i].offset >= end);
        end = info->param[i].offset + info->param[i].size;
    }
    CHECK(info->total == end);
    CHECK(info->total <= CUDA_IMAGE_MAX_PARAM_BYTES);
    return 0;
}

/* --- the expected kernels -------------------------------------------- */

struct expect {
    const char *name;
    uint32_t count, total;
    struct cuda_param param[5];
};

static const struct expect k_expect[] = {
    {"vecAdd", 4, 28, {{0, 8}, {8, 8}, {16, 8}, {24, 4}}},
    {"scale", 4, 20, {{0, 4}, {8, 8}, {16, 1}, {18, 2}}},
    {"structs", 5, 80, {{0, 1}, {4, 12}, {16, 16}, {32, 40}, {72, 8}}},
    {"noparams", 0, 0, {{0, 0}}},
    {"_Z7manglediPx", 2, 16, {{0, 4}, {8, 8}}},
};
static const struct expect big_expect[] = {
    {"kbig", 2, 20008, {{0, 20000}, {20000, 8}}},
    {"kalign", 4, 16032, {{0, 1}, {16, 16000}, {16016, 4}, {16024, 8}}},
};
static const struct expect rdc_expect[] = {
    {"k", 1, 8, {{0, 8}}},
};

static int same_layout(const struct cuda_kernel_info *info,
                       const struct expect *e)
{
    if (info->count != e->count || info->total != e->total) {
        return 0;
    }
    for (uint32_t i = 0; i < e->count; i++) {
        if (info->param[i].offset != e->param[i].offset ||
            info->param[i].size != e->param[i].size) {
            return 0;
        }
    }
    return 1;
}

/*
 * What a walk of img reported is copies copies of each of the n
 * expected kernels (any order), nothing else.
 */
static void check_kernels(const char *what, const void *img, size_t len,
                          const struct expect *e, size_t n, int copies,
                          unsigned skipped)
{
    struct seen s = {0};
    unsigned sk = 99;
    int rc = cuda_image_kernels(img, len, collect, &s, &sk);

    if (rc != (int)n * copies || sk != skipped) {
        fprintf(stderr, "%s: %d kernels, %u skipped; expected %d, %u\n", what,
                rc, sk, (int)n * copies, skipped);
    }
    CHECK(rc == (int)n * copies);
    CHECK(sk == skipped);
    for (size_t i = 0; i < n; i++) {
        int found = 0;
        struct cuda_kernel_info one;

        for (int j = 0; j < s.n && j < MAX_SEEN; j++) {
            if (strcmp(s.name[j], e[i].name) == 0) {
                found++;
                if (!same_layout(&s.info[j], &e[i])) {
                    fprintf(stderr, "%s: %s: layout differs\n", what,
                            e[i].name);
                    failures++;
                }
            }
        }
        if (found != copies) {
            fprintf(stderr, "%s: %s seen %d times\n", what, e[i].name, found);
            failures++;
        }
        if (copies > 0) {
            CHECK(cuda_image_find_kernel(img, len, e[i].name, &one) == 0);
            CHECK(same_layout(&one, &e[i]));
        }
    }
    {
        struct cuda_kernel_info one;

        CHECK(cuda_image_find_kernel(img, len, "no_such_kernel", &one) == -1);
    }
}

/* --- small helpers ------------------------------------------------------ */

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
    put16(p, (uint16_t)v);
    put16(p + 2, (uint16_t)(v >> 16));
}

static void put64(uint8_t *p, uint64_t v)
{
    put32(p, (uint32_t)v);
    put32(p + 4, (uint32_t)(v >> 32));
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;

    for (int i = 7; i >= 0; i--) {
        v = v << 8 | p[i];
    }
    return v;
}

/* A copy of [p, p + n) in a buffer of exactly n bytes (ASan's bounds). */
static uint8_t *dup_exact(const void *p, size_t n)
{
    uint8_t *b = malloc(n ? n : 1);

    if (!b) {
        abort();
    }
    if (n) {
        memcpy(b, p, n);
    }
    return b;
}

static int size_of(const void *p, size_t n, enum cuda_image_kind *kind,
                   size_t *size)
{
    uint8_t *b = dup_exact(p, n);
    int rc = cuda_image_size(b, n, kind, size);

    free(b);
    return rc;
}

static int kernels_of(const void *p, size_t n)
{
    uint8_t *b = dup_exact(p, n);
    int rc = cuda_image_kernels(b, n, consistent, NULL, NULL);

    free(b);
    return rc;
}

/* --- a hand-made cubin ---------------------------------------------------
 *
 * ELF header, then .shstrtab, .strtab, .symtab (null, kernel "foo" in
 * .text.foo with STO_CUDA_ENTRY, device function "bar"), .nv.info.foo,
 * .text.foo, .text.bar, then the section headers.  The .nv.info.foo
 * records are the caller's.
 */

struct cubin {
    uint8_t b[2048];
    size_t len;
    size_t info_off, shoff, strtab_off;
};

static void shdr_put(uint8_t *s, uint32_t name, uint32_t type, uint64_t off,
                     uint64_t size, uint32_t link, uint32_t info)
{
    put32(s, name);
    put32(s + 4, type);
    put64(s + 24, off);
    put64(s + 32, size);
    put32(s + 40, link);
    put32(s + 44, info);
}

static void make_cubin(struct cubin *c, const uint8_t *info, size_t info_len)
{
    static const char shstr[] =
        "\0.shstrtab\0.strtab\0.symtab\0.nv.info.foo\0.text.foo\0.text.bar";
    static const char str[] = "\0foo\0bar";
    uint8_t *b = c->b;
    size_t o = 64, shstr_off, str_off, sym_off, text_off;

    memset(c, 0, sizeof(*c));
    memcpy(b, "\177ELF\2\1\1", 7);
    put16(b + 16, 2);   /* ET_EXEC */
    put16(b + 18, 190); /* EM_CUDA */
    put32(b + 20, 1);
    put16(b + 52, 64);
    shstr_off = o;
    memcpy(b + o, shstr, sizeof(shstr));
    o += sizeof(shstr);
    str_off = o;
    memcpy(b + o, str, sizeof(str));
    o += sizeof(str);
    o = (o + 7) & ~(size_t)7;
    sym_off = o;
    /* sym 1: foo, FUNC GLOBAL, st_other 0x10, section 5 */
    put32(b + o + 24, 1);
    b[o + 24 + 4] = 0x12;
    b[o + 24 + 5] = 0x10;
    put16(b + o + 24 + 6, 5);
    /* sym 2: bar, FUNC GLOBAL, no entry flag, section 6 */
    put32(b + o + 48, 5);
    b[o + 48 + 4] = 0x12;
    put16(b + o + 48 + 6, 6);
    o += 3 * 24;
    c->info_off = o;
    memcpy(b + o, info, info_len);
    o += info_len;
    o = (o + 7) & ~(size_t)7;
    text_off = o;
    o += 16;
    c->shoff = o;
    put64(b + 40, o);
    put16(b + 58, 64);
    put16(b + 60, 7);
    put16(b + 62, 1);
    shdr_put(b + o + 64 * 1, 1, 3, shstr_off, sizeof(shstr), 0, 0);
    shdr_put(b + o + 64 * 2, 11, 3, str_off, sizeof(str), 0, 0);
    shdr_put(b + o + 64 * 3, 19, 2, sym_off, 3 * 24, 2, 1);
    shdr_put(b + o + 64 * 4, 27, 0x70000000, c->info_off, info_len, 3, 5);
    shdr_put(b + o + 64 * 5, 40, 1, text_off, 8, 3, 0);
    shdr_put(b + o + 64 * 6, 50, 1, text_off + 8, 8, 3, 0);
    c->strtab_off = o + 64 * 2;
    c->len = o + 64 * 7;
}

/* A KPARAM_INFO record (0x17): ordinal, offset, size (in flags 18..31). */
static size_t kparam(uint8_t *p, uint16_t ord, uint16_t off, uint32_t size)
{
    p[0] = 0x04;
    p[1] = 0x17;
    put16(p + 2, 12);
    put32(p + 4, 0);
    put16(p + 8, ord);
    put16(p + 10, off);
    put32(p + 12, size << 18 | 0x1f000);
    return 16;
}

static void test_handmade_cubin(void)
{
    uint8_t info[256];
    size_t n = 0;
    struct cubin c;
    struct seen s = {0};
    enum cuda_image_kind kind;
    size_t size;

    /* nvcc's order: last parameter first; an NVAL and a CBANK size too */
    info[n++] = 0x01, info[n++] = 0x35, info[n++] = 0, info[n++] = 0;
    n += kparam(info + n, 1, 8, 4);
    n += kparam(info + n, 0, 0, 8);
    info[n++] = 0x03, info[n++] = 0x19, info[n++] = 12, info[n++] = 0;
    make_cubin(&c, info, n);
    CHECK(size_of(c.b, c.len, &kind, &size) == 0);
    CHECK(kind == CUDA_IMAGE_ELF && size == c.len);
    CHECK(cuda_image_kernels(c.b, c.len, collect, &s, NULL) == 1);
    CHECK(strcmp(s.name[0], "foo") == 0);
    CHECK(s.info[0].count == 2 && s.info[0].total == 12);
    CHECK(s.info[0].param[0].offset == 0 && s.info[0].param[0].size == 8);
    CHECK(s.info[0].param[1].offset == 8 && s.info[0].param[1].size == 4);
    /* bigger than it is: trailing bytes are not the image's */
    {
        uint8_t big[2048 + 64];

        memcpy(big, c.b, c.len);
        CHECK(cuda_image_size(big, c.len + 64, &kind, &size) == 0);
        CHECK(size == c.len);
    }
    for (size_t t = 0; t < c.len; t++) {
        CHECK(size_of(c.b, t, &kind, &size) == -1);
        CHECK(kernels_of(c.b, t) == -1);
    }

    /* CBANK size smaller than the parameters: malformed */
    info[n - 2] = 4;
    make_cubin(&c, info, n);
    CHECK(kernels_of(c.b, c.len) == -1);
    info[n - 2] = 12;

    /* duplicate ordinal, a gap, overlapping ranges, zero size */
    {
        uint8_t bad[64];
        size_t m = 0;

        m += kparam(bad + m, 0, 0, 8);
        m += kparam(bad + m, 0, 8, 8);
        make_cubin(&c, bad, m);
        CHECK(kernels_of(c.b, c.len) == -1);
        m = kparam(bad, 0, 0, 8);
        m += kparam(bad + m, 2, 8, 8);
        make_cubin(&c, bad, m);
        CHECK(kernels_of(c.b, c.len) == -1);
        m = kparam(bad, 0, 0, 8);
        m += kparam(bad + m, 1, 4, 8);
        make_cubin(&c, bad, m);
        CHECK(kernels_of(c.b, c.len) == -1);
        m = kparam(bad, 0, 0, 0);
        make_cubin(&c, bad, m);
        CHECK(kernels_of(c.b, c.len) == -1);
        m = kparam(bad, 300, 0, 4); /* ordinal past the maximum */
        make_cubin(&c, bad, m);
        CHECK(kernels_of(c.b, c.len) == -1);
        /* an SVAL longer than its section, an unknown format */
        bad[0] = 0x04, bad[1] = 0x17, bad[2] = 0xff, bad[3] = 0x00;
        make_cubin(&c, bad, 16);
        CHECK(kernels_of(c.b, c.len) == -1);
        bad[0] = 0x07;
        make_cubin(&c, bad, 4);
        CHECK(kernels_of(c.b, c.len) == -1);
        /* a record cut in its header */
        bad[0] = 0x01;
        make_cubin(&c, bad, 2);
        CHECK(kernels_of(c.b, c.len) == -1);
    }

    /* no .nv.info at all: the kernel, without parameters */
    make_cubin(&c, info, 0);
    CHECK(cuda_image_kernels(c.b, c.len, collect, &s, NULL) == 1);

    /* section offset past the end, huge size, huge shoff, huge shnum */
    make_cubin(&c, info, n);
    put64(c.b + c.shoff + 64 * 5 + 24, c.len + 1);
    CHECK(size_of(c.b, c.len, &kind, &size) == -1);
    make_cubin(&c, info, n);
    put64(c.b + c.shoff + 64 * 5 + 32, UINT64_MAX);
    CHECK(size_of(c.b, c.len, &kind, &size) == -1);
    make_cubin(&c, info, n);
    put64(c.b + 40, UINT64_MAX - 10);
    CHECK(size_of(c.b, c.len, &kind, &size) == -1);
    make_cubin(&c, info, n);
    put16(c.b + 60, 0xffff);
    CHECK(size_of(c.b, c.len, &kind, &size) == -1);
    /* a NOBITS .nv.info pointing past the end is not read */
    make_cubin(&c, info, n);
    put32(c.b + c.shoff + 64 * 4 + 4, 8);
    put64(c.b + c.shoff + 64 * 4 + 24, 1u << 30);
    CHECK(size_of(c.b, c.len, &kind, &size) == 0);
    CHECK(kernels_of(c.b, c.len) == -1);
    /* the string table cut before "foo"'s NUL: no kernel named */
    make_cubin(&c, info, n);
    put64(c.b + c.strtab_off + 32, 3);
    CHECK(kernels_of(c.b, c.len) == 0);
    /* a 32-bit, big-endian or non-CUDA ELF is not an image */
    make_cubin(&c, info, n);
    c.b[4] = 1;
    CHECK(size_of(c.b, c.len, &kind, &size) == -1);
    make_cubin(&c, info, n);
    c.b[5] = 2;
    CHECK(size_of(c.b, c.len, &kind, &size) == -1);
    make_cubin(&c, info, n);
    c.b[18] = 62;
    CHECK(size_of(c.b, c.len, &kind, &size) == -1);
}

/* --- PTX and fatbin, by hand ------------------------------------------- */

static void test_handmade_ptx(void)
{
    static const char ok[] =
        "// comment .entry notme(\n"
        "/* block .entry notme2( */\n"
        "  .version 8.0\n.target sm_80\n.address_size 64\n"
        ".file 1 \"a .entry b( .cu\"\n"
        ".extern .entry decl(.param .u32 x);\n"
        ".visible .entry k1(\n"
        "\t.param .u8 k1_param_0, // one\n"
        "\t.param .u64 .ptr .global .align 16 k1_param_1,\n"
        "\t.param .align 16 .b8 k1_param_2[20],\n"
        "\t.param .f16 k1_param_3,\n"
        "\t.param .b32 k1_param_4[3]\n"
        ")\n.maxntid 256, 1, 1\n{\n ret;\n}\n"
        ".entry k2()\n{\n}\n"
        ".weak .entry k3\n{\n}\n";
    struct seen s = {0};
    enum cuda_image_kind kind;
    size_t size;

    CHECK(size_of(ok, sizeof(ok), &kind, &size) == 0);
    CHECK(kind == CUDA_IMAGE_PTX && size == sizeof(ok));
    CHECK(cuda_image_kernels(ok, sizeof(ok), collect, &s, NULL) == 3);
    CHECK(strcmp(s.name[0], "k1") == 0 && s.info[0].count == 5);
    CHECK(s.info[0].param[0].offset == 0 && s.info[0].param[0].size == 1);
    CHECK(s.info[0].param[1].offset == 8 && s.info[0].param[1].size == 8);
    CHECK(s.info[0].param[2].offset == 16 && s.info[0].param[2].size == 20);
    CHECK(s.info[0].param[3].offset == 36 && s.info[0].param[3].size == 2);
    CHECK(s.info[0].param[4].offset == 40 && s.info[0].param[4].size == 12);
    CHECK(s.info[0].total == 52);
    CHECK(strcmp(s.name[1], "k2") == 0 && s.info[1].count == 0);
    CHECK(strcmp(s.name[2], "k3") == 0 && s.info[2].count == 0);
    /* every cut lacks the NUL: not an image */
    for (size_t t = 0; t < sizeof(ok); t++) {
        CHECK(size_of(ok, t, &kind, &size) == -1);
    }
    /* not PTX: no .version first, empty, only a comment */
    CHECK(size_of(".target sm_80\n.version 8.0\n", 28, &kind, &size) == -1);
    CHECK(size_of("", 1, &kind, &size) == -1);
    CHECK(size_of("/* .version 8.0", 16, &kind, &size) == -1);
    /* malformed entries */
    {
        static const char *bad[] = {
            ".version 8.0\n.entry k(.param .u33 x)\n{}",
            ".version 8.0\n.entry k(.param .u32 x[0])\n{}",
            ".version 8.0\n.entry k(.param .u32 x[99999999999])\n{}",
            ".version 8.0\n.entry k(.param .align 3 .b8 x[4])\n{}",
            ".version 8.0\n.entry k(.param .b8 x[40000])\n{}",
            ".version 8.0\n.entry k(.param .u32 x .param .u32 y)\n{}",
            ".version 8.0\n.entry k(.param .u32 x",
            ".version 8.0\n.entry k(.param .u32 x)",
            ".version 8.0\n.entry",
            ".version 8.0\n.entry (",
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            CHECK(kernels_of(bad[i], strlen(bad[i]) + 1) == -1);
        }
    }
}

static void test_handmade_fatbin(void)
{
    uint8_t b[512] = {0};
    enum cuda_image_kind kind;
    size_t size;
    static const char ptx[] = ".version 8.0\n.entry k(.param .u32 a)\n{}\n";
    size_t pl = (sizeof(ptx) + 7) & ~(size_t)7;
    unsigned sk;

    put32(b, CUDA_FATBIN_MAGIC);
    put16(b + 4, 1);
    put16(b + 6, 16);
    put64(b + 8, 2 * 80 + 2 * pl);
    for (int i = 0; i < 2; i++) {
        uint8_t *e = b + 16 + i * (80 + pl);

        put16(e, 1);
        put16(e + 2, 0x0101);
        put32(e + 4, 80);
        put64(e + 8, pl);
        put64(e + 40, i ? 0x8011 : 0x11);
        memcpy(e + 80, ptx, sizeof(ptx));
    }
    CHECK(size_of(b, 16 + 160 + 2 * pl, &kind, &size) == 0);
    CHECK(kind == CUDA_IMAGE_FATBIN && size == 16 + 160 + 2 * pl);
    CHECK(cuda_image_kernels(b, size, consistent, NULL, &sk) == 1);
    CHECK(sk == 1);
    for (size_t t = 0; t < size; t++) {
        CHECK(size_of(b, t, &kind, &size) == -1);
        CHECK(kernels_of(b, t) == -1);
    }
    size = 16 + 160 + 2 * pl;
    /* payload size so large that header + payload wraps */
    put64(b + 8, UINT64_MAX - 8);
    CHECK(size_of(b, size, &kind, &size) == -1);
    put64(b + 8, 2 * 80 + 2 * pl);
    /* an entry's payload running past the container, a tiny header */
    put64(b + 16 + 8, UINT64_MAX);
    CHECK(kernels_of(b, size) == -1);
    put64(b + 16 + 8, pl);
    put32(b + 16 + 4, 8);
    CHECK(kernels_of(b, size) == -1);
    put32(b + 16 + 4, 80);
    /* header size below 16, another version */
    put16(b + 6, 8);
    CHECK(size_of(b, size, &kind, &size) == -1);
    put16(b + 6, 16);
    put16(b + 4, 2);
    CHECK(size_of(b, size, &kind, &size) == -1);
    put16(b + 4, 1);
    /* an ELF entry that is not an ELF */
    put16(b + 16, 2);
    CHECK(kernels_of(b, size) == -1);
    /* an unknown kind is skipped */
    put16(b + 16, 7);
    CHECK(kernels_of(b, size) == 0);
    CHECK(cuda_image_size(NULL, 0, &kind, &size) == -1);
}

/* --- the nvcc-built images --------------------------------------------- */

/* The file; PTX with the NUL that cuModuleLoadData needs (nvcc -ptx
 * writes a text file without one). */
static uint8_t *load(const char *dir, const char *name, size_t *len)
{
    size_t nul = strstr(name, ".ptx") ? 1 : 0;
    char path[4096];
    FILE *f;
    uint8_t *b = NULL;
    long n;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "rb");
    if (!f) {
        return NULL;
    }
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > 0 &&
        fseek(f, 0, SEEK_SET) == 0) {
        b = calloc(1, (size_t)n + nul);
        if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
            free(b);
            b = NULL;
        }
        *len = (size_t)n + nul;
    }
    fclose(f);
    return b;
}

/* Every prefix is refused; every byte flipped is refused or consistent. */
static void hostile_variants(const char *what, const uint8_t *img, size_t len)
{
    static const uint8_t flips[] = {0xff, 0x01, 0x80};
    uint8_t *b = dup_exact(img, len);
    int bad = 0;

    for (size_t t = 0; t < len; t++) {
        enum cuda_image_kind kind;
        size_t size;

        if (size_of(img, t, &kind, &size) != -1 || kernels_of(img, t) != -1) {
            bad++;
        }
    }
    if (bad) {
        fprintf(stderr, "%s: %d truncations not refused\n", what, bad);
        failures++;
    }
    for (size_t i = 0; i < len; i++) {
        for (size_t f = 0; f < sizeof(flips); f++) {
            enum cuda_image_kind kind;
            size_t size = 0;

            b[i] ^= flips[f];
            if (cuda_image_size(b, len, &kind, &size) == 0) {
                CHECK(size <= len);
            }
            (void)cuda_image_kernels(b, len, consistent, NULL, NULL);
            b[i] ^= flips[f];
        }
    }
    free(b);
}

static int test_images(const char *dir)
{
    static const struct {
        const char *file;
        enum cuda_image_kind kind;
        const struct expect *e;
        size_t n;
        int copies;
        unsigned skipped;
        int hostile;
    } imgs[] = {
        {"k.cubin", CUDA_IMAGE_ELF, k_expect, 5, 1, 0, 1},
        {"k.ptx", CUDA_IMAGE_PTX, k_expect, 5, 1, 0, 1},
        /* sm_75 and sm_80 cubins and the PTX */
        {"k-nocompress.fatbin", CUDA_IMAGE_FATBIN, k_expect, 5, 3, 0, 1},
        /* the PTX compressed by default */
        {"k-default.fatbin", CUDA_IMAGE_FATBIN, k_expect, 5, 2, 1, 0},
        {"k-compress-all.fatbin", CUDA_IMAGE_FATBIN, k_expect, 5, 0, 3, 1},
        {"big.cubin", CUDA_IMAGE_ELF, big_expect, 2, 1, 0, 0},
        {"big.ptx", CUDA_IMAGE_PTX, big_expect, 2, 1, 0, 0},
        {"rdc.cubin", CUDA_IMAGE_ELF, rdc_expect, 1, 1, 0, 0},
    };

    for (size_t i = 0; i < sizeof(imgs) / sizeof(imgs[0]); i++) {
        size_t len = 0, size = 0;
        enum cuda_image_kind kind = CUDA_IMAGE_NONE;
        uint8_t *img = load(dir, imgs[i].file, &len);
        int before = failures;

        if (!img) {
            printf("SKIP: no nvcc (no %s/%s)\n", dir, imgs[i].file);
            return 77;
        }
        CHECK(size_of(img, len, &kind, &size) == 0);
        CHECK(kind == imgs[i].kind);
        CHECK(size == len); /* the file's size (and the NUL for PTX) */
        check_kernels(imgs[i].file, img, len, imgs[i].e, imgs[i].n,
                      imgs[i].copies, imgs[i].skipped);
        if (imgs[i].hostile) {
            hostile_variants(imgs[i].file, img, len);
        }
        if (imgs[i].kind == CUDA_IMAGE_FATBIN) {
            /* the payload size field, at its largest */
            uint8_t *b = dup_exact(img, len);

            put64(b + 8, UINT64_MAX);
            CHECK(cuda_image_size(b, len, &kind, &size) == -1);
            put64(b + 8, get64(img + 8) + 1);
            CHECK(cuda_image_size(b, len, &kind, &size) == -1);
            free(b);
        }
        printf("%s: %s (%zu bytes)\n", failures == before ? "ok" : "FAIL",
               imgs[i].file, len);
        free(img);
    }
    return 0;
}

int main(void)
{
    const char *dir = getenv("CUDA_IMAGE_DIR");
    int rc;

    test_handmade_cubin();
    test_handmade_ptx();
    test_handmade_fatbin();
    printf("%s: hand-made images\n", failures ? "FAIL" : "ok");
    rc = test_images(dir && *dir ? dir : CUDA_IMAGE_DIR);
    if (failures) {
        printf("%d checks failed\n", failures);
        return 1;
    }
    if (rc == 0) {
        printf("all passed\n");
    }
    return rc;
}
