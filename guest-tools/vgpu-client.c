/*
 * vgpu-client.c - the vgpu guest command-line client.
 *
 * This file owns the CLI: argument parsing (strict), the help text, the
 * exit-status contract, and the printing of results and errors.  All device
 * work goes through libvgpu; the diagnostic options (--request-len,
 * --opcode, --doorbell, --read-reg, --write-reg) let tests forge what a
 * guest writes and watch how the device answers.
 */
#include "libvgpu.h"

#include <errno.h>
#include <time.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Exit statuses (documented in the help text). */
enum {
    EXIT_OK = 0,
    EXIT_USAGE = 1,
    EXIT_DEVICE = 2,
    EXIT_NODEV = 3,
    EXIT_TIMEOUT = 4,
    EXIT_BADRESP = 5,
};

#define PROG "vgpu-client"
#define MAX_REG_OPS 32
#define MAX_DOORBELLS 8
#define TIMEOUT_MAX_MS 3600000u

struct reg_op {
    bool write;
    uint32_t offset;
    uint32_t value;
};

struct cli {
    struct vgpu_open_opts open;
    unsigned int timeout_ms;
    bool info;
    bool list_mode;
    bool verbose;
    bool forge_len;
    uint32_t request_len;
    bool forge_opcode;
    uint32_t opcode;
    uint32_t doorbells[MAX_DOORBELLS];
    size_t n_doorbells;
    struct reg_op regs[MAX_REG_OPS];
    size_t n_regs;
    int32_t a[VGPU_VECTOR_ADD_MAX_COUNT];
    int32_t b[VGPU_VECTOR_ADD_MAX_COUNT];
    size_t n;
    bool sgemm;
    uint32_t sgemm_n;
    uint32_t sgemm_seed;
    uint32_t bulk_n;      /* --bulk N: 0 when not asked */
    uint32_t stress_n;    /* --stress N[:DEPTH] */
    uint32_t stress_depth;
};

static void usage_short(FILE *f)
{
    fprintf(f, "Usage: " PROG " [OPTIONS] A B\n"
               "       " PROG " [OPTIONS] --add A1,A2,... B1,B2,...\n"
               "       " PROG " [OPTIONS] --info\n"
               "       " PROG " [OPTIONS] --sgemm N[:SEED]\n"
               "       " PROG " [OPTIONS] --bulk N | --stress N[:DEPTH]\n"
               "Try '" PROG " --help' for more information.\n");
}

static void usage_long(void)
{
    printf(
        "NAME\n"
        "    " PROG " - talk to a vgpu device from inside a guest\n"
        "\n"
        "SYNOPSIS\n"
        "    " PROG " [OPTIONS] A B\n"
        "    " PROG " [OPTIONS] --add A1,A2,... B1,B2,...\n"
        "    " PROG " [OPTIONS] --info\n"
        "    " PROG " [OPTIONS] --sgemm N[:SEED]\n"
        "    " PROG " [OPTIONS] --bulk N | --stress N[:DEPTH]\n"
        "    " PROG " [OPTIONS] --read-reg REG | --write-reg REG=VALUE |\n"
        "                --doorbell VALUE ...\n"
        "\n"
        "DESCRIPTION\n"
        "    Finds the vgpu-stub PCI device (%04x:%04x) in sysfs and sends\n"
        "    requests to the host GPU mediator.  When the vgpu kernel\n"
        "    driver is bound to the device, through its /dev/vgpuN (v2\n"
        "    rings and DMA when the device has them, else the driver's v1\n"
        "    register exchange); otherwise by mapping BAR0 through sysfs\n"
        "    resource0 (protocol v1: 1 KB request/response buffers,\n"
        "    doorbell, STATUS polling).  --info says which path is used.\n"
        "    Needs root.\n"
        "\n"
        "    With two integers A and B, prints A+B (32-bit, wrapping) as\n"
        "    computed by the host, on one line.  With --add, A and B are\n"
        "    comma-separated lists of the same length (1..%zu elements) and\n"
        "    the element-wise sums are printed comma-separated.\n"
        "\n"
        "    Register operations run first, in command-line order, then\n"
        "    --info, then the request.  --doorbell without operands rings\n"
        "    the doorbell alone and waits until STATUS is not BUSY.\n"
        "    Put -- before operands that are negative: " PROG " -- -5 3.\n"
        "\n"
        "OPTIONS\n"
        "    -d, --device BDF      use the device at PCI address BDF\n"
        "                          (DDDD:BB:DD.F or BB:DD.F)\n"
        "    -i, --index N         use the N-th vgpu device in PCI order\n"
        "                          (default 0)\n"
        "    -t, --timeout MS      give up polling after MS milliseconds\n"
        "                          (1..%u, default %u)\n"
        "        --info            print pool, priority, VM-ID, protocol\n"
        "                          version, capabilities and status\n"
        "        --add             operands are comma-separated vectors\n"
        "        --sgemm N[:SEED]  multiply the two N x N matrices the\n"
        "                          protocol generates from SEED (default 1)\n"
        "                          on the host GPU, print the checksum of\n"
        "                          the product and whether it matches the\n"
        "                          reference (exit 5 if not); N in 1..%u\n"
        "        --bulk N          vector add of N generated elements in one\n"
        "                          request (8N+8 bytes; more than 127 needs\n"
        "                          the driver's rings), every result checked\n"
        "        --stress N[:DEPTH]\n"
        "                          N one-element adds, DEPTH in flight at a\n"
        "                          time through the driver (default 8;\n"
        "                          one at a time on the sysfs path), each\n"
        "                          result checked; stops at the first error\n"
        "    -v, --verbose         trace what is written and read\n"
        "    -h, --help            show this help and exit\n"
        "    -V, --version         show the protocol version and exit\n"
        "\n"
        "DIAGNOSTIC OPTIONS (forge what a guest writes)\n"
        "        --request-len N   write N to REQUEST_LEN instead of the\n"
        "                          request's length\n"
        "        --opcode N        put opcode N in the request header\n"
        "        --doorbell VALUE  ring DOORBELL with VALUE instead of %u;\n"
        "                          repeat to ring several times back to\n"
        "                          back (at most %d)\n"
        "        --read-reg REG    print register REG (name or offset)\n"
        "        --write-reg REG=VALUE\n"
        "                          write VALUE to register REG\n"
        "    REG is a name (DOORBELL, STATUS, POOL_ID, PRIORITY, VM_ID,\n"
        "    ERROR_CODE, REQUEST_LEN, RESPONSE_LEN, PROTOCOL_VER,\n"
        "    CAPABILITIES, IRQ_CTRL, IRQ_STATUS, REQUEST_ID, POOL_NAME_1,\n"
        "    POOL_NAME_2, POOL_NAME_3) or a byte\n"
        "    offset (decimal or 0x...) that is a multiple of 4 below 0x%x.\n"
        "\n"
        "ENVIRONMENT\n"
        "    " VGPU_SYSFS_ROOT_ENV "   sysfs root to scan instead of /sys\n"
        "    " VGPU_DEV_ROOT_ENV "     where device nodes are instead of /dev\n"
        "    " VGPU_PATH_ENV "         auto (default: the driver when it is\n"
        "                    bound, else sysfs), driver, or sysfs\n"
        "\n"
        "EXIT STATUS\n"
        "    0  success\n"
        "    1  usage error (bad option or argument)\n"
        "    2  device error: the device set STATUS=ERROR; ERROR_CODE is\n"
        "       printed by name and number\n"
        "    3  no vgpu device found, resource0 cannot be opened/mapped,\n"
        "       or the operation is not possible on this path (register\n"
        "       access while the driver owns the device), or the device\n"
        "       went away\n"
        "    4  timeout: no DONE/ERROR within the polling bound\n"
        "    5  invalid response: the device broke the protocol (bad\n"
        "       RESPONSE_LEN, header, REQUEST_ID, STATUS or version)\n"
        "\n"
        "EXAMPLES\n"
        "    " PROG " 100 200                 prints 300\n"
        "    " PROG " --add 1,2,3 4,5,6       prints 5,7,9\n"
        "    " PROG " --info\n"
        "    " PROG " --sgemm 256:7           a 256 x 256 product on the GPU\n"
        "    " PROG " -d 00:04.0 -t 2000 7 8\n"
        "    " PROG " --request-len 2000 1 2  expect REQUEST_TOO_LARGE (1)\n"
        "    " PROG " --opcode 99 1 2         expect BAD_OPCODE (7)\n"
        "    " PROG " --doorbell 5            expect BAD_DOORBELL (3)\n"
        "    " PROG " --read-reg STATUS --read-reg 0x24\n",
        VGPU_PCI_VENDOR_ID, VGPU_PCI_DEVICE_ID,
        (size_t)VGPU_VECTOR_ADD_MAX_COUNT, VGPU_SGEMM_MAX_N, TIMEOUT_MAX_MS,
        VGPU_GUEST_POLL_TIMEOUT_MS_DEFAULT, VGPU_DOORBELL_SUBMIT, MAX_DOORBELLS,
        VGPU_BAR0_SIZE);
}

/* ------------------------------------------------------------------ */
/* Strict number parsing                                               */
/* ------------------------------------------------------------------ */

static bool parse_i32(const char *s, int32_t *out)
{
    char *end;
    long long v;

    if (!*s || (*s != '-' && *s != '+' && (*s < '0' || *s > '9')))
        return false;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno || *end || v < INT32_MIN || v > INT32_MAX)
        return false;
    *out = (int32_t)v;
    return true;
}

/* Unsigned 32-bit, decimal or 0x hex; no sign, no spaces. */
static bool parse_u32(const char *s, uint32_t *out)
{
    char *end;
    unsigned long long v;

    if (*s < '0' || *s > '9')
        return false;
    errno = 0;
    v = strtoull(s, &end, 0);
    if (errno || *end || v > UINT32_MAX)
        return false;
    *out = (uint32_t)v;
    return true;
}

static bool parse_reg(const char *s, uint32_t *offset)
{
    long named = vgpu_reg_offset(s);

    if (named >= 0) {
        *offset = (uint32_t)named;
        return true;
    }
    return parse_u32(s, offset) && *offset % VGPU_REG_WIDTH == 0 &&
           *offset < VGPU_BAR0_SIZE;
}

/* "1,2,3" into v[]; at most VGPU_VECTOR_ADD_MAX_COUNT elements. */
static bool parse_list(const char *s, int32_t *v, size_t *n)
{
    char buf[32];
    size_t len;

    *n = 0;
    for (;;) {
        len = strcspn(s, ",");
        if (len == 0 || len >= sizeof(buf) || *n >= VGPU_VECTOR_ADD_MAX_COUNT)
            return false;
        memcpy(buf, s, len);
        buf[len] = '\0';
        if (!parse_i32(buf, &v[(*n)++]))
            return false;
        if (!s[len])
            return true;
        s += len + 1;
    }
}

/* ------------------------------------------------------------------ */
/* Argument parsing                                                    */
/* ------------------------------------------------------------------ */

enum {
    OPT_INFO = 256,
    OPT_ADD,
    OPT_REQUEST_LEN,
    OPT_OPCODE,
    OPT_DOORBELL,
    OPT_READ_REG,
    OPT_WRITE_REG,
    OPT_SGEMM,
    OPT_BULK,
    OPT_STRESS,
};

static const struct option long_opts[] = {
    {"device", required_argument, NULL, 'd'},
    {"index", required_argument, NULL, 'i'},
    {"timeout", required_argument, NULL, 't'},
    {"info", no_argument, NULL, OPT_INFO},
    {"add", no_argument, NULL, OPT_ADD},
    {"request-len", required_argument, NULL, OPT_REQUEST_LEN},
    {"opcode", required_argument, NULL, OPT_OPCODE},
    {"doorbell", required_argument, NULL, OPT_DOORBELL},
    {"read-reg", required_argument, NULL, OPT_READ_REG},
    {"write-reg", required_argument, NULL, OPT_WRITE_REG},
    {"sgemm", required_argument, NULL, OPT_SGEMM},
    {"bulk", required_argument, NULL, OPT_BULK},
    {"stress", required_argument, NULL, OPT_STRESS},
    {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
};

static int bad_arg(const char *opt, const char *arg, const char *want)
{
    fprintf(stderr, PROG ": invalid %s '%s': %s\n", opt, arg, want);
    return EXIT_USAGE;
}

static int add_reg_op(struct cli *c, bool write, const char *arg)
{
    char name[64];
    const char *eq = strchr(arg, '=');
    struct reg_op *op;
    size_t len;

    if (c->n_regs >= MAX_REG_OPS)
        return bad_arg("register operation", arg, "too many");
    op = &c->regs[c->n_regs];
    op->write = write;
    len = write && eq ? (size_t)(eq - arg) : strlen(arg);
    if ((write && !eq) || len >= sizeof(name))
        return bad_arg(write ? "--write-reg" : "--read-reg", arg,
                       write ? "want REG=VALUE" : "too long");
    memcpy(name, arg, len);
    name[len] = '\0';
    if (!parse_reg(name, &op->offset))
        return bad_arg("register", name,
                       "want a register name or an aligned offset < 0x1000");
    if (write && !parse_u32(eq + 1, &op->value))
        return bad_arg("register value", eq + 1, "want 0..4294967295");
    c->n_regs++;
    return EXIT_OK;
}

/* "N" or "N:SEED" */
static int parse_sgemm(struct cli *c, const char *arg)
{
    char n[16];
    const char *colon = strchr(arg, ':');
    size_t len = colon ? (size_t)(colon - arg) : strlen(arg);

    c->sgemm_seed = 1;
    if (len == 0 || len >= sizeof(n))
        return bad_arg("--sgemm", arg, "want N or N:SEED");
    memcpy(n, arg, len);
    n[len] = '\0';
    if (!parse_u32(n, &c->sgemm_n) || c->sgemm_n < 1 ||
        c->sgemm_n > VGPU_SGEMM_MAX_N)
        return bad_arg("--sgemm", arg, "want N in 1..1024");
    if (colon && !parse_u32(colon + 1, &c->sgemm_seed))
        return bad_arg("--sgemm", arg, "want SEED in 0..4294967295");
    c->sgemm = true;
    return EXIT_OK;
}

static int parse_option(struct cli *c, int opt, const char *arg)
{
    uint32_t v;

    switch (opt) {
    case 'd':
        c->open.bdf = arg;
        return EXIT_OK;
    case 'i':
        if (!parse_u32(arg, &v))
            return bad_arg("--index", arg, "want a non-negative integer");
        c->open.index = v;
        return EXIT_OK;
    case 't':
        if (!parse_u32(arg, &v) || v < 1 || v > TIMEOUT_MAX_MS)
            return bad_arg("--timeout", arg, "want 1..3600000 ms");
        c->timeout_ms = v;
        return EXIT_OK;
    case OPT_INFO:
        c->info = true;
        return EXIT_OK;
    case OPT_ADD:
        c->list_mode = true;
        return EXIT_OK;
    case OPT_REQUEST_LEN:
        if (!parse_u32(arg, &c->request_len))
            return bad_arg("--request-len", arg, "want 0..4294967295");
        c->forge_len = true;
        return EXIT_OK;
    case OPT_OPCODE:
        if (!parse_u32(arg, &c->opcode))
            return bad_arg("--opcode", arg, "want 0..4294967295");
        c->forge_opcode = true;
        return EXIT_OK;
    case OPT_DOORBELL:
        if (c->n_doorbells >= MAX_DOORBELLS)
            return bad_arg("--doorbell", arg, "given too many times");
        if (!parse_u32(arg, &c->doorbells[c->n_doorbells]))
            return bad_arg("--doorbell", arg, "want 0..4294967295");
        c->n_doorbells++;
        return EXIT_OK;
    case OPT_READ_REG:
    case OPT_WRITE_REG:
        return add_reg_op(c, opt == OPT_WRITE_REG, arg);
    case OPT_SGEMM:
        return parse_sgemm(c, arg);
    case OPT_BULK:
        if (!parse_u32(arg, &c->bulk_n) || c->bulk_n < 1 ||
            c->bulk_n > (UINT32_MAX - 8) / 8)
            return bad_arg("--bulk", arg, "want N in 1..536870910");
        return EXIT_OK;
    case OPT_STRESS: {
        char n[16];
        const char *colon = strchr(arg, ':');
        size_t len = colon ? (size_t)(colon - arg) : strlen(arg);

        c->stress_depth = 8;
        if (len == 0 || len >= sizeof(n))
            return bad_arg("--stress", arg, "want N or N:DEPTH");
        memcpy(n, arg, len);
        n[len] = '\0';
        if (!parse_u32(n, &c->stress_n) || c->stress_n < 1)
            return bad_arg("--stress", arg, "want N >= 1");
        if (colon && (!parse_u32(colon + 1, &c->stress_depth) ||
                      c->stress_depth < 1 || c->stress_depth > 4096))
            return bad_arg("--stress", arg, "want DEPTH in 1..4096");
        return EXIT_OK;
    }
    case 'v':
        c->verbose = true;
        return EXIT_OK;
    default:
        usage_short(stderr);
        return EXIT_USAGE;
    }
}

static int parse_operands(struct cli *c, int argc, char **argv)
{
    size_t nb;

    if (argc == 0)
        return EXIT_OK;
    if (argc != 2) {
        fprintf(stderr, PROG ": expected two operands A B, got %d\n", argc);
        return EXIT_USAGE;
    }
    if (!c->list_mode) {
        if (!parse_i32(argv[0], &c->a[0]))
            return bad_arg("operand", argv[0], "want a 32-bit integer");
        if (!parse_i32(argv[1], &c->b[0]))
            return bad_arg("operand", argv[1], "want a 32-bit integer");
        c->n = 1;
        return EXIT_OK;
    }
    if (!parse_list(argv[0], c->a, &c->n))
        return bad_arg("vector", argv[0],
                       "want 1..127 comma-separated "
                       "32-bit integers");
    if (!parse_list(argv[1], c->b, &nb))
        return bad_arg("vector", argv[1],
                       "want 1..127 comma-separated "
                       "32-bit integers");
    if (nb != c->n) {
        fprintf(stderr, PROG ": vectors differ in length (%zu and %zu)\n", c->n,
                nb);
        return EXIT_USAGE;
    }
    return EXIT_OK;
}

/* Cross-option rules: something to do, forgeries only with operands. */
static int check_combination(const struct cli *c)
{
    if (c->list_mode && !c->n) {
        fprintf(stderr, PROG ": --add needs two vectors\n");
        return EXIT_USAGE;
    }
    if ((c->forge_len || c->forge_opcode) && !c->n) {
        fprintf(stderr, PROG ": --request-len and --opcode need operands\n");
        return EXIT_USAGE;
    }
    if (c->sgemm && c->n) {
        fprintf(stderr, PROG ": --sgemm takes no operands\n");
        return EXIT_USAGE;
    }
    if ((c->bulk_n || c->stress_n) && (c->n || c->sgemm)) {
        fprintf(stderr, PROG ": --bulk and --stress take no operands\n");
        return EXIT_USAGE;
    }
    if (!c->n && !c->info && !c->n_regs && !c->n_doorbells && !c->sgemm &&
        !c->bulk_n && !c->stress_n) {
        fprintf(stderr, PROG ": nothing to do\n");
        usage_short(stderr);
        return EXIT_USAGE;
    }
    return EXIT_OK;
}

/* Returns -1 to exit 0 at once (help/version), else an exit status. */
static int parse_args(struct cli *c, int argc, char **argv)
{
    int opt, rc;

    memset(c, 0, sizeof(*c));
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "d:i:t:vhV", long_opts, NULL)) !=
           -1) {
        if (opt == 'h') {
            usage_long();
            return -1;
        }
        if (opt == 'V') {
            printf(PROG " (vgpu guest tools), protocol %u.%u\n",
                   VGPU_PROTOCOL_MAJOR, VGPU_PROTOCOL_MINOR);
            return -1;
        }
        if (opt == '?') {
            fprintf(stderr, PROG ": unknown option or missing argument: %s\n",
                    argv[optind - 1]);
            usage_short(stderr);
            return EXIT_USAGE;
        }
        rc = parse_option(c, opt, optarg);
        if (rc)
            return rc;
    }
    rc = parse_operands(c, argc - optind, argv + optind);
    if (rc)
        return rc;
    return check_combination(c);
}

/* ------------------------------------------------------------------ */
/* Actions                                                             */
/* ------------------------------------------------------------------ */

static int exit_for(int rc)
{
    switch (rc) {
    case VGPU_OK:
        return EXIT_OK;
    case VGPU_E_DEVICE:
        return EXIT_DEVICE;
    case VGPU_E_NODEV:
    case VGPU_E_ACCESS:
    case VGPU_E_NOTOPEN:
    case VGPU_E_NOTSUP:
        return EXIT_NODEV;
    case VGPU_E_TIMEOUT:
        return EXIT_TIMEOUT;
    case VGPU_E_BADRESP:
    case VGPU_E_NOSPACE:
    case VGPU_E_VERSION:
        return EXIT_BADRESP;
    default:
        return EXIT_USAGE;
    }
}

static int fail(const struct vgpu_ctx *ctx, int rc)
{
    const char *msg = vgpu_errmsg(ctx);

    fprintf(stderr, PROG ": %s\n", *msg ? msg : vgpu_strerror(rc));
    return exit_for(rc);
}

static int run_reg_ops(struct vgpu_ctx *ctx, const struct cli *c)
{
    size_t i;
    int rc;

    for (i = 0; i < c->n_regs; i++) {
        const struct reg_op *op = &c->regs[i];
        const char *name = vgpu_reg_name(op->offset);
        uint32_t v = op->value;

        if (op->write)
            rc = vgpu_write_reg(ctx, op->offset, v);
        else
            rc = vgpu_read_reg(ctx, op->offset, &v);
        if (rc)
            return fail(ctx, rc);
        if (op->write && c->verbose)
            fprintf(stderr, PROG ": wrote %s (0x%03x) = 0x%08x\n",
                    name ? name : "reg", op->offset, v);
        if (!op->write)
            printf("%s (0x%03x) = 0x%08" PRIx32 " (%" PRIu32 ")\n",
                   name ? name : "reg", op->offset, v, v);
    }
    return EXIT_OK;
}

static void print_caps(uint32_t caps)
{
    static const struct {
        uint32_t bit;
        const char *name;
    } names[] = {
        {VGPU_CAP_VECTOR_ADD, "VECTOR_ADD"},
        {VGPU_CAP_REQUEST_ID, "REQUEST_ID"},
        {VGPU_CAP_IRQ, "IRQ"},
        {VGPU_CAP_DMA, "DMA"},
        {VGPU_CAP_SAXPY, "SAXPY"},
        {VGPU_CAP_SGEMM, "SGEMM"},
        {VGPU_CAP_POOL_NAME, "POOL_NAME"},
        {VGPU_CAP_DBBUF, "DBBUF"},
        {VGPU_CAP_IRQ_COALESCE, "IRQ_COALESCE"},
    };
    uint32_t rest = caps;
    const char *sep = "";
    size_t i;

    printf("capabilities: 0x%08" PRIx32 " (", caps);
    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (!(caps & names[i].bit))
            continue;
        printf("%s%s", sep, names[i].name);
        sep = " ";
        rest &= ~names[i].bit;
    }
    if (rest)
        printf("%sunknown 0x%" PRIx32, sep, rest);
    else if (!caps)
        printf("none");
    printf(")\n");
}

static void print_pool(const struct vgpu_info *in)
{
    if (in->pool_state > 0)
        printf("pool:         %s\n", in->pool);
    else if (in->pool_state == 0)
        printf("pool:         none (not assigned)\n");
    else
        printf("pool:         invalid (0x%08" PRIx32 " 0x%08" PRIx32
               " 0x%08" PRIx32 " 0x%08" PRIx32 ")\n",
               in->pool_regs[0], in->pool_regs[1], in->pool_regs[2],
               in->pool_regs[3]);
}

static int run_info(struct vgpu_ctx *ctx)
{
    struct vgpu_info in;
    char path[VGPU_NODE_MAX + 32];
    int rc = vgpu_info(ctx, &in);

    if (rc)
        return fail(ctx, rc);
    printf("device:       %s\n", in.bdf);
    printf("path:         %s\n", vgpu_path_describe(ctx, path, sizeof(path)));
    print_pool(&in);
    printf("priority:     %s (%" PRIu32 ")\n", vgpu_priority_name(in.priority),
           in.priority);
    printf("vm-id:        %" PRIu32 "\n", in.vm_id);
    printf("protocol:     %" PRIu32 ".%" PRIu32 "\n",
           VGPU_VERSION_MAJOR(in.version), VGPU_VERSION_MINOR(in.version));
    print_caps(in.caps);
    if (vgpu_path(ctx) != VGPU_PATH_SYSFS) {
        printf("max request:  %" PRIu64 " bytes\n", vgpu_max_request(ctx));
        return EXIT_OK;
    }
    printf("status:       %s (%" PRIu32 ")\n", vgpu_status_name(in.status),
           in.status);
    printf("error:        %s (%" PRIu32 ")\n", vgpu_error_name(in.error),
           in.error);
    return EXIT_OK;
}

/* --doorbell without operands: ring, then wait until not BUSY. */
static int run_doorbells(struct vgpu_ctx *ctx, const struct cli *c)
{
    uint32_t status = 0, err = 0;
    size_t i;
    int rc;

    for (i = 0; i < c->n_doorbells; i++) {
        rc = vgpu_write_reg(ctx, VGPU_REG_DOORBELL, c->doorbells[i]);
        if (rc)
            return fail(ctx, rc);
    }
    rc = vgpu_wait_idle(ctx, c->timeout_ms, &status);
    if (rc)
        return fail(ctx, rc);
    if (status == VGPU_STATUS_ERROR) {
        vgpu_read_reg(ctx, VGPU_REG_ERROR_CODE, &err);
        fprintf(stderr, PROG ": device error: %s (%" PRIu32 ")\n",
                vgpu_error_name(err), err);
        return EXIT_DEVICE;
    }
    printf("status: %s (%" PRIu32 ")\n", vgpu_status_name(status), status);
    return EXIT_OK;
}

static void print_vector(const int32_t *v, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        printf("%s%" PRId32, i ? "," : "", v[i]);
    printf("\n");
}

/* Build the VECTOR_ADD request, with the forged opcode if asked. */
static size_t build_request(const struct cli *c, uint32_t *req)
{
    struct vgpu_req_hdr hdr = {VGPU_OP_VECTOR_ADD, (uint32_t)c->n};
    size_t bytes = c->n * sizeof(int32_t);

    if (c->forge_opcode)
        hdr.opcode = c->opcode;
    memcpy(req, &hdr, sizeof(hdr));
    memcpy((char *)req + sizeof(hdr), c->a, bytes);
    memcpy((char *)req + sizeof(hdr) + bytes, c->b, bytes);
    return VGPU_VECTOR_ADD_REQ_LEN(c->n);
}

/* A forged submission through vgpu_submit_raw(); returns an exit status. */
static int run_forged(struct vgpu_ctx *ctx, const struct cli *c, int32_t *out)
{
    uint32_t req[VGPU_BUF_SIZE / 4], resp[VGPU_BUF_SIZE / 4];
    struct vgpu_raw_request raw = {0};
    struct vgpu_resp_hdr rh;
    size_t rlen = 0;
    int rc;

    raw.req = req;
    raw.len = build_request(c, req);
    raw.request_len = c->forge_len ? c->request_len : (uint32_t)raw.len;
    raw.doorbells = c->doorbells;
    raw.n_doorbells = c->n_doorbells;
    if (c->verbose)
        fprintf(stderr,
                PROG ": forged request: %zu bytes, REQUEST_LEN %" PRIu32
                     ", %zu doorbell(s)\n",
                raw.len, raw.request_len, c->n_doorbells ? c->n_doorbells : 1);
    rc = vgpu_submit_raw(ctx, &raw, resp, sizeof(resp), &rlen, c->timeout_ms);
    if (rc)
        return fail(ctx, rc);
    memcpy(&rh, resp, sizeof(rh));
    if (rlen != VGPU_VECTOR_ADD_RESP_LEN(c->n) || rh.count != c->n) {
        fprintf(stderr,
                PROG ": invalid response from device: %zu bytes, "
                     "count %" PRIu32 "\n",
                rlen, rh.count);
        return EXIT_BADRESP;
    }
    memcpy(out, (char *)resp + sizeof(rh), c->n * sizeof(int32_t));
    return EXIT_OK;
}

static int run_add(struct vgpu_ctx *ctx, const struct cli *c)
{
    int32_t out[VGPU_VECTOR_ADD_MAX_COUNT];
    int rc;

    if (c->forge_len || c->forge_opcode || c->n_doorbells) {
        rc = run_forged(ctx, c, out);
        if (rc)
            return rc;
    } else {
        rc = vgpu_vector_add(ctx, c->a, c->b, out, c->n, c->timeout_ms);
        if (rc)
            return fail(ctx, rc);
    }
    print_vector(out, c->n);
    return EXIT_OK;
}

static int run_sgemm(struct vgpu_ctx *ctx, const struct cli *c)
{
    int64_t got, want = vgpu_sgemm_checksum_ref(c->sgemm_seed, c->sgemm_n);
    int rc = vgpu_sgemm(ctx, c->sgemm_n, c->sgemm_seed, &got, c->timeout_ms);

    if (rc)
        return fail(ctx, rc);
    printf("sgemm n=%" PRIu32 " seed=%" PRIu32 " checksum=%" PRId64 " (%s)\n",
           c->sgemm_n, c->sgemm_seed, got,
           got == want ? "matches the reference" : "WRONG");
    if (got != want) {
        fprintf(stderr, PROG ": checksum %" PRId64 ", reference %" PRId64 "\n",
                got, want);
        return EXIT_BADRESP;
    }
    return EXIT_OK;
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The operands --bulk generates: a[i], b[i]. */
static uint32_t bulk_a(uint32_t i)
{
    return i * 2654435761u ^ 0x5bd1e995u;
}

static uint32_t bulk_b(uint32_t i)
{
    return ~i * 40503u + 0x9e3779b9u;
}

static int run_bulk(struct vgpu_ctx *ctx, const struct cli *c)
{
    size_t n = c->bulk_n, qlen = VGPU_VECTOR_ADD_REQ_LEN(n),
           plen = VGPU_VECTOR_ADD_RESP_LEN(n), rlen = 0, bad = 0, first = 0;
    struct vgpu_req_hdr hdr = {VGPU_OP_VECTOR_ADD, c->bulk_n};
    struct vgpu_resp_hdr rh;
    uint32_t *a, *b, *out;
    char *req, *resp;
    double t0, t1;
    int rc, ret = EXIT_OK;

    req = vgpu_buffer_alloc(qlen);
    resp = vgpu_buffer_alloc(plen);
    if (!req || !resp) {
        fprintf(stderr, PROG ": cannot allocate %zu + %zu bytes\n", qlen, plen);
        vgpu_buffer_free(req, qlen);
        vgpu_buffer_free(resp, plen);
        return EXIT_USAGE;
    }
    memcpy(req, &hdr, sizeof(hdr));
    a = (uint32_t *)(req + sizeof(hdr));
    b = a + n;
    for (size_t i = 0; i < n; i++) {
        a[i] = bulk_a((uint32_t)i);
        b[i] = bulk_b((uint32_t)i);
    }
    memset(resp, 0xa5, plen);
    t0 = now_s();
    rc = vgpu_submit(ctx, req, qlen, resp, plen, &rlen, c->timeout_ms);
    t1 = now_s();
    if (rc) {
        ret = fail(ctx, rc);
        goto out;
    }
    memcpy(&rh, resp, sizeof(rh));
    if (rh.opcode != VGPU_OP_VECTOR_ADD || rh.count != n || rlen != plen) {
        fprintf(stderr,
                PROG ": bulk: answered opcode %" PRIu32 " count %" PRIu32
                     " in %zu bytes, want %zu elements in %zu\n",
                rh.opcode, rh.count, rlen, n, plen);
        ret = EXIT_BADRESP;
        goto out;
    }
    out = (uint32_t *)(resp + sizeof(rh));
    for (size_t i = 0; i < n; i++) {
        if (out[i] != bulk_a((uint32_t)i) + bulk_b((uint32_t)i)) {
            if (!bad)
                first = i;
            bad++;
        }
    }
    printf("bulk: %zu elements, request %zu bytes, response %zu bytes, "
           "%.3f s, %s\n",
           n, qlen, plen, t1 - t0,
           bad ? "MISMATCH" : "every element matches");
    if (bad) {
        fprintf(stderr,
                PROG ": bulk: %zu of %zu elements wrong, first at %zu\n", bad,
                n, first);
        ret = EXIT_BADRESP;
    }
out:
    vgpu_buffer_free(req, qlen);
    vgpu_buffer_free(resp, plen);
    return ret;
}

/* --stress: many one-element adds, DEPTH in flight through the driver. */
static int run_stress(struct vgpu_ctx *ctx, const struct cli *c)
{
    uint32_t depth = c->stress_depth, sent = 0, done = 0, ok = 0, bad = 0;
    struct vgpu_completion comp[64];
    uint32_t(*req)[4], (*resp)[3], *seq;
    int first_rc = VGPU_OK, ret = EXIT_OK;
    char first_msg[VGPU_ERRMSG_MAX] = "";
    bool stop = false;

    if (vgpu_path(ctx) == VGPU_PATH_SYSFS) {
        for (uint32_t i = 0; i < c->stress_n; i++) {
            int32_t x = (int32_t)i, y = 1000000, z = 0;
            int rc = vgpu_vector_add(ctx, &x, &y, &z, 1, c->timeout_ms);

            if (rc)
                return fail(ctx, rc);
            if (z != x + y) {
                fprintf(stderr, PROG ": stress: %d + %d gave %d\n", x, y, z);
                return EXIT_BADRESP;
            }
        }
        printf("stress: %" PRIu32 " requests, %" PRIu32 " ok, 0 failed\n",
               c->stress_n, c->stress_n);
        return EXIT_OK;
    }
    if (depth > ctx->max_inflight)
        depth = ctx->max_inflight;
    req = calloc(depth, sizeof(*req));
    resp = calloc(depth, sizeof(*resp));
    seq = calloc(depth, sizeof(*seq));
    if (!req || !resp || !seq) {
        free(req);
        free(resp);
        free(seq);
        fprintf(stderr, PROG ": out of memory\n");
        return EXIT_USAGE;
    }
    /* Fill every slot, then refill each one that completes. */
    for (uint32_t s = 0; s < depth && sent < c->stress_n; s++) {
        req[s][0] = VGPU_OP_VECTOR_ADD;
        req[s][1] = 1;
        req[s][2] = seq[s] = sent;
        req[s][3] = 1000000;
        int rc = vgpu_submit_async(ctx, req[s], sizeof(req[s]), resp[s],
                                   sizeof(resp[s]), s);
        if (rc) {
            first_rc = rc;
            snprintf(first_msg, sizeof(first_msg), "%s", vgpu_errmsg(ctx));
            stop = true;
            break;
        }
        sent++;
    }
    while (done < sent) {
        struct pollfd pfd = {vgpu_event_fd(ctx), POLLIN, 0};
        unsigned int n = 0;
        int rc;

        /* Completions are announced on the file (poll/epoll). */
        if (poll(&pfd, 1, c->timeout_ms ? (int)c->timeout_ms : 10000) < 0 &&
            errno != EINTR)
            break;
        rc = vgpu_reap(ctx, comp, 64, 1, c->timeout_ms, &n);

        if (rc && !n) {
            if (!first_rc) {
                first_rc = rc;
                snprintf(first_msg, sizeof(first_msg), "%s", vgpu_errmsg(ctx));
            }
            break;
        }
        for (unsigned int k = 0; k < n; k++) {
            uint32_t s = comp[k].tag;

            done++;
            if (s >= depth) {
                bad++;
                continue;
            }
            if (comp[k].error || comp[k].status ||
                comp[k].resp_len != sizeof(resp[s]) ||
                resp[s][2] != seq[s] + 1000000u) {
                bad++;
                if (!first_rc) {
                    first_rc = comp[k].error == -ENODEV ? VGPU_E_NODEV
                               : comp[k].status         ? VGPU_E_DEVICE
                               : comp[k].error          ? VGPU_E_ACCESS
                                                        : VGPU_E_BADRESP;
                    snprintf(first_msg, sizeof(first_msg),
                             "request %" PRIu32 ": status %s (%" PRIu32
                             "), driver error %s",
                             seq[s], vgpu_error_name(comp[k].status),
                             comp[k].status,
                             comp[k].error ? strerror(-comp[k].error) : "none");
                }
                stop = true;
                continue;
            }
            ok++;
            if (stop || sent >= c->stress_n)
                continue;
            req[s][2] = seq[s] = sent;
            resp[s][2] = 0;
            rc = vgpu_submit_async(ctx, req[s], sizeof(req[s]), resp[s],
                                   sizeof(resp[s]), s);
            if (rc) {
                if (!first_rc) {
                    first_rc = rc;
                    snprintf(first_msg, sizeof(first_msg), "%s",
                             vgpu_errmsg(ctx));
                }
                stop = true;
                continue;
            }
            sent++;
        }
    }
    printf("stress: %" PRIu32 " requests, %" PRIu32 " ok, %" PRIu32
           " failed, %" PRIu32 " not sent\n",
           sent, ok, bad + (sent - done), c->stress_n - sent);
    if (first_rc) {
        fprintf(stderr, PROG ": stress: %s\n", first_msg);
        ret = exit_for(first_rc);
    }
    free(req);
    free(resp);
    free(seq);
    return ret;
}

static int run(struct vgpu_ctx *ctx, const struct cli *c)
{
    int rc = run_reg_ops(ctx, c);

    if (rc)
        return rc;
    if (c->info) {
        rc = run_info(ctx);
        if (rc)
            return rc;
    }
    if (c->n)
        return run_add(ctx, c);
    if (c->sgemm)
        return run_sgemm(ctx, c);
    if (c->bulk_n)
        return run_bulk(ctx, c);
    if (c->stress_n)
        return run_stress(ctx, c);
    if (c->n_doorbells)
        return run_doorbells(ctx, c);
    return EXIT_OK;
}

int main(int argc, char **argv)
{
    struct vgpu_ctx ctx;
    struct cli c;
    int rc;

    rc = parse_args(&c, argc, argv);
    if (rc)
        return rc < 0 ? EXIT_OK : rc;
    rc = vgpu_open(&ctx, &c.open);
    if (rc)
        return fail(&ctx, rc);
    if (c.verbose) {
        char path[VGPU_NODE_MAX + 32];

        fprintf(stderr, PROG ": using device %s, path %s\n", ctx.bdf,
                vgpu_path_describe(&ctx, path, sizeof(path)));
    }
    rc = run(&ctx, &c);
    vgpu_close(&ctx);
    if (fflush(stdout) && rc == EXIT_OK)
        rc = EXIT_USAGE;
    return rc;
}
