/*
 * cuda_image.c - reading CUDA module images (fatbin, cubin, PTX) from
 * hostile bytes: their size and their kernels' parameter layouts.  The
 * formats are described in cuda_image.h.
 *
 * Every read goes through rd16/rd32/rd64 after a range check done in
 * 64-bit arithmetic on values that cannot wrap (a range is off + n with
 * both at most the image's length, which fits in size_t); no pointer is
 * formed outside the image.  Nothing recurses; each loop walks forward
 * over bytes it has not walked before, so the work is linear.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_image.h"

/* --- little helpers ---------------------------------------------------- */

static uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (unsigned)p[1] << 8);
}

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static uint64_t rd64(const uint8_t *p)
{
    return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

/* [off, off + n) inside [0, len), with nothing wrapping. */
static int in_range(uint64_t off, uint64_t n, uint64_t len)
{
    return off <= len && n <= len - off;
}

/*
 * A parameter layout being collected from records in any order: slot i
 * is ordinal i.  finish() checks that the ordinals are 0..n-1 with
 * ascending, non-overlapping, non-empty ranges and sets the total.
 */
struct layout {
    struct cuda_kernel_info info;
    uint8_t seen[CUDA_IMAGE_MAX_PARAMS];
    uint32_t n; /* 1 + the highest ordinal seen */
};

static void layout_init(struct layout *l)
{
    memset(l, 0, sizeof(*l));
}

static int layout_set(struct layout *l, uint32_t ordinal, uint32_t offset,
                      uint32_t size)
{
    if (ordinal >= CUDA_IMAGE_MAX_PARAMS || l->seen[ordinal] || size == 0 ||
        offset > CUDA_IMAGE_MAX_PARAM_BYTES ||
        size > CUDA_IMAGE_MAX_PARAM_BYTES - offset) {
        return -1;
    }
    l->seen[ordinal] = 1;
    l->info.param[ordinal].offset = offset;
    l->info.param[ordinal].size = size;
    if (ordinal + 1 > l->n) {
        l->n = ordinal + 1;
    }
    return 0;
}

static int layout_finish(struct layout *l)
{
    uint32_t end = 0;

    for (uint32_t i = 0; i < l->n; i++) {
        if (!l->seen[i] || l->info.param[i].offset < end) {
            return -1;
        }
        end = l->info.param[i].offset + l->info.param[i].size;
    }
    l->info.count = l->n;
    l->info.total = end;
    return 0;
}

/* The walk's state shared by the three forms. */
struct walk {
    cuda_image_kernel_fn fn;
    void *arg;
    unsigned skipped;
    int reported;
    int stop;
};

static void report(struct walk *w, const char *name,
                   const struct cuda_kernel_info *info)
{
    w->reported++;
    if (w->fn(w->arg, name, info)) {
        w->stop = 1;
    }
}

/* --- ELF (cubin) ------------------------------------------------------- */

#define EM_CUDA_ 190
#define EHDR_SIZE 64
#define SHDR_SIZE 64
#define PHDR_SIZE 56
#define SYM_SIZE 24
#define SHT_SYMTAB_ 2
#define SHT_STRTAB_ 3
#define SHT_NOBITS_ 8
#define SHN_LORESERVE_ 0xff00
#define STT_FUNC_ 2
#define STO_CUDA_ENTRY 0x10

#define EIFMT_NVAL 0x01
#define EIFMT_BVAL 0x02
#define EIFMT_HVAL 0x03
#define EIFMT_SVAL 0x04
#define EIATTR_PARAM_CBANK 0x0a
#define EIATTR_KPARAM_INFO 0x17
#define EIATTR_CBANK_PARAM_SIZE 0x19
#define EIATTR_KPARAM_INFO_V2 0x45

struct elf {
    const uint8_t *p;
    uint64_t len; /* the ELF's size (cuda_image_size), all of it in p */
    uint64_t shoff;
    uint32_t shnum;
    uint32_t shstrndx;
};

static const uint8_t *shdr(const struct elf *e, uint32_t i)
{
    return e->p + e->shoff + (uint64_t)i * SHDR_SIZE;
}

/* Section i's file range (checked by elf_size already). */
static void sec_range(const struct elf *e, uint32_t i, uint64_t *off,
                      uint64_t *size)
{
    *off = rd64(shdr(e, i) + 24);
    *size = rd64(shdr(e, i) + 32);
}

/*
 * The NUL-terminated string at off of string section sec, or NULL (no
 * such section or string; *too_long set when it runs past
 * CUDA_IMAGE_MAX_NAME bytes, a bound that keeps the work per lookup
 * constant).
 */
static const char *elf_str(const struct elf *e, uint32_t sec, uint32_t off,
                           int *too_long)
{
    uint64_t so, ss, n;

    *too_long = 0;
    if (sec == 0 || sec >= e->shnum || rd32(shdr(e, sec) + 4) != SHT_STRTAB_) {
        return NULL;
    }
    sec_range(e, sec, &so, &ss);
    if (off >= ss) {
        return NULL;
    }
    n = ss - off < CUDA_IMAGE_MAX_NAME ? ss - off : CUDA_IMAGE_MAX_NAME;
    if (!memchr(e->p + so + off, 0, n)) {
        *too_long = n == CUDA_IMAGE_MAX_NAME;
        return NULL;
    }
    return (const char *)(e->p + so + off);
}

static const char *sec_name(const struct elf *e, uint32_t i)
{
    int too_long;

    return elf_str(e, e->shstrndx, rd32(shdr(e, i)), &too_long);
}

/* 0 and *end, or -1: the ELF header checks and the furthest byte. */
static int elf_size(const uint8_t *p, size_t max, uint64_t *end)
{
    uint64_t phoff, shoff, far = EHDR_SIZE;
    uint32_t phnum, shnum;

    if (max < EHDR_SIZE || memcmp(p, "\177ELF", 4) != 0 || p[4] != 2 ||
        p[5] != 1 || p[6] != 1 || rd16(p + 18) != EM_CUDA_ ||
        rd16(p + 52) != EHDR_SIZE) {
        return -1;
    }
    phoff = rd64(p + 32);
    shoff = rd64(p + 40);
    phnum = rd16(p + 56);
    shnum = rd16(p + 60);
    if (phnum) {
        if (rd16(p + 54) != PHDR_SIZE ||
            !in_range(phoff, (uint64_t)phnum * PHDR_SIZE, max)) {
            return -1;
        }
        if (phoff + (uint64_t)phnum * PHDR_SIZE > far) {
            far = phoff + (uint64_t)phnum * PHDR_SIZE;
        }
    }
    if (shnum == 0) {
        /* Extended numbering (e_shnum 0, count in section 0) is not
         * something nvcc writes; a table without a count is refused. */
        if (shoff != 0) {
            return -1;
        }
    } else {
        if (rd16(p + 58) != SHDR_SIZE || rd16(p + 62) >= shnum ||
            !in_range(shoff, (uint64_t)shnum * SHDR_SIZE, max)) {
            return -1;
        }
        if (shoff + (uint64_t)shnum * SHDR_SIZE > far) {
            far = shoff + (uint64_t)shnum * SHDR_SIZE;
        }
        for (uint32_t i = 0; i < shnum; i++) {
            const uint8_t *s = p + shoff + (uint64_t)i * SHDR_SIZE;
            uint64_t off = rd64(s + 24), size = rd64(s + 32);

            if (rd32(s + 4) == SHT_NOBITS_ || rd32(s + 4) == 0) {
                continue;
            }
            if (!in_range(off, size, max)) {
                return -1;
            }
            if (off + size > far) {
                far = off + size;
            }
        }
    }
    *end = far;
    return 0;
}

/*
 * Parse .nv.info.<name> section sec into *l: 0, or -1 when a record runs
 * past the section or the parameters do not make a layout.
 */
static int nv_info_layout(const struct elf *e, uint32_t sec, struct layout *l)
{
    uint64_t off, size, pos = 0;
    uint32_t cbank_total = 0;
    int have_total = 0;

    sec_range(e, sec, &off, &size);
    layout_init(l);
    if (rd32(shdr(e, sec) + 4) == SHT_NOBITS_ || rd32(shdr(e, sec) + 4) == 0) {
        return -1; /* no bytes in the file (elf_size did not check it) */
    }
    while (pos < size) {
        const uint8_t *r = e->p + off + pos;
        uint8_t fmt, attr;
        uint16_t val;

        if (size - pos < 4) {
            return -1;
        }
        fmt = r[0];
        attr = r[1];
        val = rd16(r + 2);
        pos += 4;
        if (fmt == EIFMT_SVAL) {
            const uint8_t *v = r + 4;

            if (size - pos < val) {
                return -1;
            }
            pos += val;
            if ((attr == EIATTR_KPARAM_INFO || attr == EIATTR_KPARAM_INFO_V2) &&
                val >= 12) {
                uint32_t psize = attr == EIATTR_KPARAM_INFO ? rd32(v + 8) >> 18
                                                            : rd32(v + 8);
                if (layout_set(l, rd16(v + 4), rd16(v + 6), psize) != 0) {
                    return -1;
                }
            } else if (attr == EIATTR_PARAM_CBANK && val >= 8) {
                cbank_total = rd16(v + 6);
                have_total = 1;
            } else if (attr == EIATTR_KPARAM_INFO ||
                       attr == EIATTR_KPARAM_INFO_V2) {
                return -1;
            }
        } else if (fmt == EIFMT_HVAL && attr == EIATTR_CBANK_PARAM_SIZE) {
            cbank_total = val;
            have_total = 1;
        } else if (fmt != EIFMT_NVAL && fmt != EIFMT_BVAL &&
                   fmt != EIFMT_HVAL) {
            return -1; /* an unknown format: its length is unknown */
        }
    }
    if (layout_finish(l) != 0 || (have_total && l->info.total > cbank_total)) {
        return -1;
    }
    return 0;
}

static int elf_walk(const uint8_t *p, size_t len, struct walk *w)
{
    struct elf e = {.p = p};
    uint64_t end;
    uint32_t *info_of = NULL; /* text section index -> its .nv.info. */
    uint8_t *done = NULL;     /* text sections already reported */
    int rc = -1;

    if (elf_size(p, len, &end) != 0) {
        return -1;
    }
    e.len = end;
    e.shoff = rd64(p + 40);
    e.shnum = rd16(p + 60);
    e.shstrndx = rd16(p + 62);
    if (e.shnum == 0) {
        return 0;
    }
    info_of = calloc(e.shnum, sizeof(*info_of));
    done = calloc(e.shnum, 1);
    if (!info_of || !done) {
        goto out;
    }
    for (uint32_t i = 1; i < e.shnum; i++) {
        const char *n = sec_name(&e, i);
        uint32_t text = rd32(shdr(&e, i) + 44); /* sh_info */
        const char *tn;

        if (!n || strncmp(n, ".nv.info.", 9) != 0 || text == 0 ||
            text >= e.shnum || info_of[text]) {
            continue;
        }
        tn = sec_name(&e, text);
        if (tn && strncmp(tn, ".text.", 6) == 0 && strcmp(tn + 6, n + 9) == 0) {
            info_of[text] = i;
        }
    }
    for (uint32_t i = 1; i < e.shnum && !w->stop; i++) {
        uint64_t so, ss;
        uint32_t strtab = rd32(shdr(&e, i) + 40); /* sh_link */

        if (rd32(shdr(&e, i) + 4) != SHT_SYMTAB_) {
            continue;
        }
        sec_range(&e, i, &so, &ss);
        for (uint64_t s = 0; s + SYM_SIZE <= ss && !w->stop; s += SYM_SIZE) {
            const uint8_t *sym = p + so + s;
            uint16_t shndx = rd16(sym + 6);
            const char *name, *tn;
            struct layout l;
            int too_long;

            if ((sym[4] & 0xf) != STT_FUNC_ || !(sym[5] & STO_CUDA_ENTRY) ||
                shndx == 0 || shndx >= SHN_LORESERVE_ || shndx >= e.shnum ||
                done[shndx]) {
                continue;
            }
            name = elf_str(&e, strtab, rd32(sym), &too_long);
            if (too_long) {
                goto out; /* a kernel whose name we cannot hold */
            }
            tn = sec_name(&e, shndx);
            if (!name || !tn || strncmp(tn, ".text.", 6) != 0 ||
                strcmp(tn + 6, name) != 0) {
                continue;
            }
            done[shndx] = 1;
            if (info_of[shndx]) {
                if (nv_info_layout(&e, info_of[shndx], &l) != 0) {
                    goto out;
                }
            } else {
                layout_init(&l); /* no .nv.info: no parameters recorded */
            }
            report(w, name, &l.info);
        }
    }
    rc = 0;
out:
    free(info_of);
    free(done);
    return rc;
}

/* --- PTX --------------------------------------------------------------- */

/*
 * A PTX token stream over [p, end): white space, // and block comments
 * skipped, "strings" one token.  A token is a directive (".name", the
 * dot and letters, digits, '_' only, so ".ptr.global" is two), an
 * identifier or number ([A-Za-z0-9_$%]+), or one other character.
 */
struct ptx {
    const char *p, *end;
    const char *tok;
    size_t n;
};

static int ident_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '_' || c == '$' || c == '%';
}

/* Next token into t->tok/t->n: 1, or 0 at the end. */
static int ptx_next(struct ptx *t)
{
    const char *p = t->p, *end = t->end;

    for (;;) {
        while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' ||
                           *p == '\r' || *p == '\f' || *p == '\v')) {
            p++;
        }
        if (end - p >= 2 && p[0] == '/' && p[1] == '/') {
            while (p < end && *p != '\n') {
                p++;
            }
        } else if (end - p >= 2 && p[0] == '/' && p[1] == '*') {
            p += 2;
            while (p < end && !(end - p >= 2 && p[0] == '*' && p[1] == '/')) {
                p++;
            }
            p = end - p >= 2 ? p + 2 : end;
        } else {
            break;
        }
    }
    if (p >= end) {
        t->p = end;
        t->n = 0;
        return 0;
    }
    t->tok = p;
    if (*p == '"') {
        p++;
        while (p < end && *p != '"' && *p != '\n') {
            p++;
        }
        if (p < end && *p == '"') {
            p++;
        }
    } else if (*p == '.') {
        p++;
        while (p < end && ident_char(*p) && *p != '$' && *p != '%') {
            p++;
        }
    } else if (ident_char(*p)) {
        while (p < end && ident_char(*p)) {
            p++;
        }
    } else {
        p++;
    }
    t->n = (size_t)(p - t->tok);
    t->p = p;
    return 1;
}

static int tok_is(const struct ptx *t, const char *s)
{
    return t->n == strlen(s) && memcmp(t->tok, s, t->n) == 0;
}

/* The token as an unsigned number (decimal or 0x hex) up to limit: 0, or
 * -1 when it is not one or is larger. */
static int tok_num(const struct ptx *t, uint32_t limit, uint32_t *out)
{
    uint64_t v = 0;
    size_t i = 0;
    int hex = t->n > 2 && t->tok[0] == '0' && (t->tok[1] | 0x20) == 'x';

    if (t->n == 0) {
        return -1;
    }
    for (i = hex ? 2 : 0; i < t->n; i++) {
        char c = t->tok[i];
        unsigned d;

        if (c >= '0' && c <= '9') {
            d = (unsigned)(c - '0');
        } else if (hex && (c | 0x20) >= 'a' && (c | 0x20) <= 'f') {
            d = (unsigned)((c | 0x20) - 'a' + 10);
        } else {
            return -1;
        }
        v = v * (hex ? 16 : 10) + d;
        if (v > limit) {
            return -1;
        }
    }
    *out = (uint32_t)v;
    return 0;
}

/* The size of a PTX fundamental type token, or 0. */
static uint32_t ptx_type_size(const struct ptx *t)
{
    static const struct {
        const char *name;
        uint32_t size;
    } types[] = {
        {".u8", 1},  {".s8", 1},  {".b8", 1},    {".u16", 2},    {".s16", 2},
        {".b16", 2}, {".f16", 2}, {".bf16", 2},  {".u32", 4},    {".s32", 4},
        {".b32", 4}, {".f32", 4}, {".f16x2", 4}, {".bf16x2", 4}, {".u64", 8},
        {".s64", 8}, {".b64", 8}, {".f64", 8},   {".b128", 16},
    };

    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        if (tok_is(t, types[i].name)) {
            return types[i].size;
        }
    }
    return 0;
}

/* ".align N" at t (the .align token read): N, a power of two, or -1. */
static int ptx_align(struct ptx *t, uint32_t *align)
{
    if (!ptx_next(t) || tok_num(t, CUDA_IMAGE_MAX_PARAM_BYTES, align) != 0 ||
        *align == 0 || (*align & (*align - 1)) != 0) {
        return -1;
    }
    return 0;
}

/*
 * One ".param ... NAME[N]" with t on ".param": its size and alignment,
 * t left on the token after it (',' or ')').
 */
static int ptx_param(struct ptx *t, uint32_t *size, uint32_t *align)
{
    uint32_t elem = 0, count = 1;

    *align = 0;
    if (!ptx_next(t)) {
        return -1;
    }
    if (tok_is(t, ".align")) {
        if (ptx_align(t, align) != 0 || !ptx_next(t)) {
            return -1;
        }
    }
    elem = ptx_type_size(t);
    if (elem == 0 || !ptx_next(t)) {
        return -1;
    }
    if (tok_is(t, ".ptr")) {
        /* .ptr [.space] [.align N]: what the pointer points to. */
        if (!ptx_next(t)) {
            return -1;
        }
        if (tok_is(t, ".global") || tok_is(t, ".const") ||
            tok_is(t, ".local") || tok_is(t, ".shared")) {
            if (!ptx_next(t)) {
                return -1;
            }
        }
        if (tok_is(t, ".align")) {
            uint32_t ignored;

            if (ptx_align(t, &ignored) != 0 || !ptx_next(t)) {
                return -1;
            }
        }
    }
    if (t->n == 0 || !ident_char(t->tok[0]) || !ptx_next(t)) {
        return -1; /* the name, then something must follow */
    }
    if (tok_is(t, "[")) {
        if (!ptx_next(t) ||
            tok_num(t, CUDA_IMAGE_MAX_PARAM_BYTES, &count) != 0 || count == 0 ||
            !ptx_next(t) || !tok_is(t, "]") || !ptx_next(t)) {
            return -1;
        }
    }
    if ((uint64_t)elem * count > CUDA_IMAGE_MAX_PARAM_BYTES) {
        return -1;
    }
    *size = elem * count;
    if (*align == 0) {
        *align = elem;
    }
    return 0;
}

/*
 * The kernel whose ".entry" t is on: 1 and *l, name with a body; 0 a
 * declaration (no body); -1 malformed.
 */
static int ptx_entry(struct ptx *t, char *name, struct layout *l)
{
    uint32_t off = 0, ord = 0;

    if (!ptx_next(t) || !ident_char(t->tok[0]) || t->n >= CUDA_IMAGE_MAX_NAME) {
        return -1;
    }
    memcpy(name, t->tok, t->n);
    name[t->n] = '\0';
    layout_init(l);
    if (!ptx_next(t)) {
        return -1;
    }
    if (tok_is(t, "(")) {
        if (!ptx_next(t)) {
            return -1;
        }
        while (!tok_is(t, ")")) {
            uint32_t size, align;

            if (!tok_is(t, ".param") || ptx_param(t, &size, &align) != 0) {
                return -1;
            }
            off = (off + align - 1) & ~(align - 1);
            if (layout_set(l, ord++, off, size) != 0) {
                return -1;
            }
            off += size;
            if (tok_is(t, ",")) {
                if (!ptx_next(t)) {
                    return -1;
                }
            } else if (!tok_is(t, ")")) {
                return -1;
            }
        }
        if (layout_finish(l) != 0) {
            return -1;
        }
        if (!ptx_next(t)) {
            return -1;
        }
    } else if (layout_finish(l) != 0) {
        return -1;
    }
    /* Performance directives (.maxntid 256, 1, 1 ...) until { or ;. */
    while (!tok_is(t, "{") && !tok_is(t, ";")) {
        if (!ptx_next(t)) {
            return -1;
        }
    }
    return tok_is(t, "{");
}

/* The PTX text [p, p + n) (stopping at a NUL). */
static int ptx_walk(const char *p, size_t n, struct walk *w)
{
    const char *nul = memchr(p, 0, n);
    struct ptx t = {.p = p, .end = nul ? nul : p + n};
    char *name = malloc(CUDA_IMAGE_MAX_NAME);
    struct layout *l = malloc(sizeof(*l));
    int rc = 0;

    if (!name || !l) {
        rc = -1;
    }
    while (rc == 0 && !w->stop && ptx_next(&t)) {
        int r;

        if (!tok_is(&t, ".entry")) {
            continue;
        }
        r = ptx_entry(&t, name, l);
        if (r < 0) {
            rc = -1;
        } else if (r > 0) {
            report(w, name, &l->info);
        }
    }
    free(name);
    free(l);
    return rc;
}

/* Whether [p, p + n) begins with .version after white space and comments. */
static int ptx_starts_with_version(const char *p, size_t n)
{
    struct ptx t = {.p = p, .end = p + n};

    return ptx_next(&t) && tok_is(&t, ".version");
}

/* --- fatbin ------------------------------------------------------------ */

#define FATBIN_HDR_SIZE 16
#define FATBIN_ENTRY_MIN 64
#define FATBIN_KIND_PTX 1
#define FATBIN_KIND_ELF 2
#define FATBIN_FLAG_LZ4 0x2000u
#define FATBIN_FLAG_ZSTD 0x8000u

static int fatbin_size(const uint8_t *p, size_t max, uint64_t *end)
{
    uint64_t hs, ps;

    if (max < FATBIN_HDR_SIZE || rd32(p) != CUDA_FATBIN_MAGIC ||
        rd16(p + 4) != 1) {
        return -1;
    }
    hs = rd16(p + 6);
    ps = rd64(p + 8);
    if (hs < FATBIN_HDR_SIZE || !in_range(hs, ps, max)) {
        return -1;
    }
    *end = hs + ps;
    return 0;
}

static int fatbin_walk(const uint8_t *p, size_t len, struct walk *w)
{
    uint64_t end, pos;

    if (fatbin_size(p, len, &end) != 0) {
        return -1;
    }
    pos = rd16(p + 6);
    while (pos < end && !w->stop) {
        const uint8_t *e = p + pos;
        uint16_t kind;
        uint64_t ehs, eps, flags;

        if (end - pos < FATBIN_ENTRY_MIN) {
            return -1;
        }
        kind = rd16(e);
        ehs = rd32(e + 4);
        eps = rd64(e + 8);
        if (ehs < FATBIN_ENTRY_MIN || !in_range(pos, ehs, end) ||
            !in_range(pos + ehs, eps, end)) {
            return -1;
        }
        flags = rd64(e + 40);
        if (kind == FATBIN_KIND_ELF || kind == FATBIN_KIND_PTX) {
            const uint8_t *pl = e + ehs;

            if ((flags & (FATBIN_FLAG_LZ4 | FATBIN_FLAG_ZSTD)) ||
                rd32(e + 16) != 0) {
                w->skipped++;
            } else if (kind == FATBIN_KIND_ELF) {
                if (elf_walk(pl, eps, w) != 0) {
                    return -1;
                }
            } else if (ptx_walk((const char *)pl, eps, w) != 0) {
                return -1;
            }
        }
        pos += ehs + eps;
    }
    return 0;
}

/* --- the API ----------------------------------------------------------- */

int cuda_image_size(const void *p, size_t max, enum cuda_image_kind *kind,
                    size_t *size)
{
    const uint8_t *b = p;
    enum cuda_image_kind k = CUDA_IMAGE_NONE;
    uint64_t end = 0;

    if (!p) {
        return -1;
    }
    if (max >= 4 && rd32(b) == CUDA_FATBIN_MAGIC) {
        if (fatbin_size(b, max, &end) != 0) {
            return -1;
        }
        k = CUDA_IMAGE_FATBIN;
    } else if (max >= 4 && memcmp(b, "\177ELF", 4) == 0) {
        if (elf_size(b, max, &end) != 0) {
            return -1;
        }
        k = CUDA_IMAGE_ELF;
    } else {
        const char *nul = memchr(p, 0, max);

        if (!nul || !ptx_starts_with_version(p, (size_t)(nul - (char *)p))) {
            return -1;
        }
        end = (uint64_t)(nul - (const char *)p) + 1;
        k = CUDA_IMAGE_PTX;
    }
    if (kind) {
        *kind = k;
    }
    if (size) {
        *size = (size_t)end;
    }
    return 0;
}

int cuda_image_kernels(const void *p, size_t len, cuda_image_kernel_fn fn,
                       void *arg, unsigned *skipped_compressed)
{
    struct walk w = {.fn = fn, .arg = arg};
    enum cuda_image_kind kind;
    size_t size;
    int rc = -1;

    if (skipped_compressed) {
        *skipped_compressed = 0;
    }
    if (!fn || cuda_image_size(p, len, &kind, &size) != 0) {
        return -1;
    }
    switch (kind) {
    case CUDA_IMAGE_FATBIN:
        rc = fatbin_walk(p, size, &w);
        break;
    case CUDA_IMAGE_ELF:
        rc = elf_walk(p, size, &w);
        break;
    case CUDA_IMAGE_PTX:
        rc = ptx_walk(p, size, &w);
        break;
    case CUDA_IMAGE_NONE:
        break;
    }
    if (skipped_compressed) {
        *skipped_compressed = w.skipped;
    }
    return rc == 0 ? w.reported : -1;
}

struct find {
    const char *name;
    struct cuda_kernel_info *info;
    int found;
};

static int find_fn(void *arg, const char *name,
                   const struct cuda_kernel_info *info)
{
    struct find *f = arg;

    if (strcmp(name, f->name) != 0) {
        return 0;
    }
    memcpy(f->info, info, sizeof(*info));
    f->found = 1;
    return 1;
}

int cuda_image_find_kernel(const void *p, size_t len, const char *name,
                           struct cuda_kernel_info *info)
{
    struct find f = {.name = name, .info = info};

    if (!name || !info || cuda_image_kernels(p, len, find_fn, &f, NULL) < 0) {
        return -1;
    }
    return f.found ? 0 : -1;
}
