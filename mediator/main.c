/*
 * main.c - vgpu-mediator's command line: options, logging set-up, and
 * the hand-over to the mediator core.
 */
#include <errno.h>
#include <getopt.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "log.h"
#include "backend.h"
#include "dispatch.h"
#include "mediator.h"
#include "poolconf.h"
#include "privdrop.h"
#include "vgpu_protocol.h"

#ifndef VGPU_VERSION
#define VGPU_VERSION "0.1.0"
#endif

/* The help text keeps its own layout: one output line per source line. */
/* clang-format off */
static void usage(FILE *out)
{
    fprintf(out,
        "Usage: vgpu-mediator [OPTION]...\n"
        "\n"
        "Serve the vgpu-stub devices of every VM on this XCP-ng host.\n"
        "\n"
        "The mediator watches the qemu-dm chroot folder (QEMU_ROOT/root-<domid>)\n"
        "of every domain, present at start or created later, and creates in each\n"
        "a unix socket named " VGPU_SOCKET_NAME ", owned by the folder's owner\n"
        "(the uid qemu-dm runs as) with mode 0600.  A QEMU_ROOT that does not\n"
        "exist yet (a host before its first HVM guest) is waited for, and one that\n"
        "goes away is waited for again.  qemu-dm reaches the socket inside its\n"
        "chroot as " VGPU_SOCKET_PATH_IN_CHROOT ".  A domain's pool, priority and\n"
        "VM-ID are read from xenstore (/local/domain/<domid>/vgpu-mediator/\n"
        "{pool,priority,vm-id}) and followed when they change; the device's own\n"
        "claims are ignored.\n"
        "Requests of all domains enter one queue: high before medium before low,\n"
        "first come first served within a level (or shares of GPU time, see\n"
        "--schedule).\n"
        "\n"
        "Options:\n"
        "  -r, --qemu-root DIR   folder holding the root-<domid> chroots\n"
        "                        (default " VGPU_QEMU_ROOT_DEFAULT ")\n"
        "  -l, --log TARGET      where to log: syslog (default; the journal under\n"
        "                        systemd) or stderr\n"
        "  -s, --status-file FILE\n"
        "                        publish the domains served and their state in\n"
        "                        FILE, replaced atomically on every change; \"none\"\n"
        "                        disables it (default " MEDIATOR_STATUS_FILE_DEFAULT ")\n"
        "  -u, --qemu-uid-base auto|folder|UID\n"
        "                        who qemu-dm runs as: UID+domid (its -runas);\n"
        "                        folder: the owner of root-<domid>; auto\n"
        "                        (default): the uid of user " MEDIATOR_QEMU_BASE_USER " + domid\n"
        "                        when that user exists, else folder.  The socket\n"
        "                        belongs to that uid and only it or root may\n"
        "                        connect (SO_PEERCRED)\n"
        "  -b, --backend auto|cpu|cuda\n"
        "                        what runs requests: cuda (NVIDIA GPUs through\n"
        "                        libcuda.so.1, loaded at run time), cpu (the\n"
        "                        reference backend), or auto (default): cuda when\n"
        "                        it can run here, else cpu, saying why in the log\n"
        "  -G, --cpu-gpus N      pretend GPUs of the CPU backend (default 1)\n"
        "  -p, --pools FILE      which GPUs each pool may use (default\n"
        "                        " VGPU_POOLS_CONF_PATH "; absent: pools A and B\n"
        "                        on every GPU).  Lines: NAME [= GPU[,GPU...]],\n"
        "                        a GPU being an index or a GPU-<uuid>\n"
        "  -q, --quota-mb N      device memory one VM's request may use, in MiB;\n"
        "                        larger ones fail with QUOTA_EXCEEDED, and its\n"
        "                        CUDA allocations together (default 0: no\n"
        "                        quota); a VM's own quota-mb in xenstore wins\n"
        "      --max-queued N    requests a VM's v1 connection may have waiting\n"
        "                        (1..1024, default " VGPU_NAMES_STR(MEDIATOR_MAX_QUEUED_PER_VM) "); more get QUEUE_FULL\n"
        "                        (v2 has its own bound, --shm-inflight)\n"
        "  -k, --starvation-bound K\n"
        "                        a waiting request runs after at most K requests\n"
        "                        of higher priority (default 0: strict priority)\n"
        "      --schedule MODE   how VMs with work share a GPU's time:\n"
        "                        priority (default): high before medium before\n"
        "                        low (with --starvation-bound); equal: each VM\n"
        "                        an equal share of the GPU time measured for its\n"
        "                        work, a VM's unused share going to the others;\n"
        "                        fixed:N: each VM at most 1/N of each GPU's time\n"
        "                        (1..64), even when the GPU would be idle\n"
        "  -a, --admin-socket PATH\n"
        "                        root-only socket vgpu-smi talks to (default\n"
        "                        " MEDIATOR_ADMIN_SOCKET_DEFAULT "; \"none\" disables it)\n"
        "  -m, --metrics-listen ADDR:PORT\n"
        "                        also serve Prometheus metrics at\n"
        "                        http://ADDR:PORT/metrics (default: off)\n"
        "  -X, --max-xfer-mb N   v2: bytes one request (and one response) of a VM\n"
        "                        may have, in MiB (default 64); the device\n"
        "                        answers it as MAX_XFER\n"
        "      --shm-chunk-kb N  v2: staging chunk size in KiB (default 256)\n"
        "      --shm-chunks N    v2: chunks of each staging pool (default 32)\n"
        "      --shm-inflight N  v2: requests a VM may have open (default 64)\n"
        "      --shm-spin-us N   v2: adaptive polling, how long the mediator\n"
        "                        spins on a busy channel before it sleeps on the\n"
        "                        eventfd (default 50; 0: never spins)\n"
        "      --keep-privileges do not drop capabilities at start (debugging).\n"
        "                        By default the daemon stays uid 0 but keeps only\n"
        "                        CAP_CHOWN and CAP_DAC_OVERRIDE (the sockets in the\n"
        "                        chroot folders; CAP_NET_BIND_SERVICE too for a\n"
        "                        metrics port below 1024), empties the bounding set\n"
        "                        and sets no_new_privs, before any thread starts\n"
        "  -v, --verbose         also log every request served (debug level)\n"
        "  -V, --version         print the version and exit\n"
        "  -h, --help            print this help and exit\n"
        "\n"
        "Environment:\n"
        "  XENSTORED_PATH        xenstored's unix socket (libxenstore's default\n"
        "                        otherwise)\n"
        "  VGPU_LIBCUDA          the CUDA driver library to load (default\n"
        "                        libcuda.so.1)\n"
        "\n"
        "The mediator runs in the foreground; systemd supervises it.  SIGTERM or\n"
        "SIGINT stops it cleanly, removing the sockets it created.\n"
        "\n"
        "Exit status: 0 after a clean stop, 1 on a start-up or run-time failure,\n"
        "2 on a usage error.\n");
}
/* clang-format on */

/* A decimal number in [min, max] for option opt; 0, or -1 after a message. */
static int parse_number(const char *opt, const char *arg, unsigned long min,
                        unsigned long max, unsigned long *out)
{
    char *end;
    unsigned long v;

    errno = 0;
    v = strtoul(arg, &end, 10);
    if (errno || end == arg || *end || arg[0] == '-' || v < min || v > max) {
        fprintf(stderr,
                "vgpu-mediator: %s wants a number from %lu to %lu, "
                "not '%s'\n",
                opt, min, max, arg);
        return -1;
    }
    *out = v;
    return 0;
}

/*
 * --qemu-uid-base: "auto" takes the qemu_base user's uid and gid when that
 * user exists (XCP-ng), else the chroot folder's owner; "folder" always
 * the folder's owner; a number N means uid N+domid, gid N+domid.
 */
static int parse_uid_base(const char *arg, struct mediator_config *cfg)
{
    struct passwd *pw;
    char *end;
    long v;

    cfg->qemu_uid_base = cfg->qemu_gid_base = -1;
    if (strcmp(arg, "folder") == 0) {
        return 0;
    }
    if (strcmp(arg, "auto") == 0) {
        pw = getpwnam(MEDIATOR_QEMU_BASE_USER);
        if (pw) {
            cfg->qemu_uid_base = (long)pw->pw_uid;
            cfg->qemu_gid_base = (long)pw->pw_gid;
        }
        return 0;
    }
    errno = 0;
    v = strtol(arg, &end, 10);
    if (errno || end == arg || *end || v < 1 || v > 0x7fff0000L) {
        fprintf(stderr,
                "vgpu-mediator: --qemu-uid-base wants auto, folder or a "
                "uid, not '%s'\n",
                arg);
        return -1;
    }
    cfg->qemu_uid_base = cfg->qemu_gid_base = v;
    return 0;
}

/* A --metrics-listen ADDR:PORT whose port needs CAP_NET_BIND_SERVICE. */
static bool low_port(const char *listen)
{
    const char *colon = listen ? strrchr(listen, ':') : NULL;

    return colon && strtol(colon + 1, NULL, 10) < 1024;
}

/* privdrop.c, before mediator_open starts any thread; said in the log. */
static int drop_privileges(const struct mediator_config *cfg)
{
    struct privdrop_config pc = {.bind_low_port =
                                     low_port(cfg->metrics_listen)};
    char why[160], kept[96];
    uint64_t mask;
    int r = privdrop_apply(&pc, &mask, why, sizeof(why));

    if (r < 0) {
        log_err("cannot drop privileges: %s", why);
        return -1;
    }
    if (r > 0) {
        log_info("privileges: %s", why);
        return 0;
    }
    privdrop_describe(mask, kept, sizeof(kept));
    log_info("privileges dropped: uid 0 with only %s, empty bounding set "
             "otherwise, no_new_privs",
             kept);
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"qemu-root", required_argument, NULL, 'r'},
        {"log", required_argument, NULL, 'l'},
        {"status-file", required_argument, NULL, 's'},
        {"qemu-uid-base", required_argument, NULL, 'u'},
        {"backend", required_argument, NULL, 'b'},
        {"cpu-gpus", required_argument, NULL, 'G'},
        {"pools", required_argument, NULL, 'p'},
        {"quota-mb", required_argument, NULL, 'q'},
        {"max-queued", required_argument, NULL, 1006},
        {"starvation-bound", required_argument, NULL, 'k'},
        {"schedule", required_argument, NULL, 1007},
        {"admin-socket", required_argument, NULL, 'a'},
        {"metrics-listen", required_argument, NULL, 'm'},
        {"max-xfer-mb", required_argument, NULL, 'X'},
        {"shm-chunk-kb", required_argument, NULL, 1001},
        {"shm-chunks", required_argument, NULL, 1002},
        {"shm-inflight", required_argument, NULL, 1003},
        {"shm-spin-us", required_argument, NULL, 1004},
        {"keep-privileges", no_argument, NULL, 1005},
        {"verbose", no_argument, NULL, 'v'},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct mediator_config cfg = {
        .qemu_root = VGPU_QEMU_ROOT_DEFAULT,
        .status_file = MEDIATOR_STATUS_FILE_DEFAULT,
        .backend = "auto",
        .cpu_gpus = 1,
        .pools_file = VGPU_POOLS_CONF_PATH,
        .admin_socket = MEDIATOR_ADMIN_SOCKET_DEFAULT,
    };
    const char *uid_base = "auto";
    bool keep_privileges = false;
    unsigned long quota_mb = 0;
    enum vgpu_log_sink sink = VGPU_LOG_SYSLOG;
    int level = LOG_INFO;
    struct mediator *m;
    unsigned long n;
    const char *why;
    int c, ret;

    ring_config_default(&cfg.ring);

    while ((c = getopt_long(argc, argv, "r:l:s:u:b:G:p:q:k:a:m:X:vVh", opts,
                            NULL)) != -1) {
        switch (c) {
        case 'r':
            cfg.qemu_root = optarg;
            break;
        case 'u':
            uid_base = optarg;
            break;
        case 'b':
            if (strcmp(optarg, "auto") && strcmp(optarg, "cpu") &&
                strcmp(optarg, "cuda")) {
                fprintf(stderr,
                        "vgpu-mediator: --backend wants auto, cpu "
                        "or cuda, not '%s'\n",
                        optarg);
                return 2;
            }
            cfg.backend = optarg;
            break;
        case 'G':
            if (parse_number("--cpu-gpus", optarg, 1, VGPU_BACKEND_MAX_GPUS,
                             &n)) {
                return 2;
            }
            cfg.cpu_gpus = (unsigned)n;
            break;
        case 'p':
            cfg.pools_file = optarg;
            break;
        case 'q':
            if (parse_number("--quota-mb", optarg, 0, 1UL << 30, &quota_mb)) {
                return 2;
            }
            cfg.quota_bytes = (uint64_t)quota_mb << 20;
            break;
        case 'k':
            if (parse_number("--starvation-bound", optarg, 0, 1000000, &n)) {
                return 2;
            }
            cfg.starvation_bound = (unsigned)n;
            break;
        case 1007: {
            enum dispatch_sched_mode mode;

            if (dispatch_parse_sched(optarg, &mode, &cfg.fixed_slots)) {
                fprintf(stderr,
                        "vgpu-mediator: --schedule: '%s' is not priority, "
                        "equal or fixed:N (N 1..64)\n",
                        optarg);
                return 2;
            }
            cfg.sched_mode = (int)mode;
            break;
        }
        case 'X':
            if (parse_number("--max-xfer-mb", optarg, 1, 4095, &n)) {
                return 2;
            }
            cfg.ring.max_xfer = (uint64_t)n << 20;
            if (cfg.ring.max_xfer > VGPU_XFER_LIMIT) {
                cfg.ring.max_xfer = VGPU_XFER_LIMIT;
            }
            break;
        case 1001:
            if (parse_number("--shm-chunk-kb", optarg, 4, 65536, &n)) {
                return 2;
            }
            cfg.ring.chunk_size = (uint32_t)n << 10;
            break;
        case 1002:
            if (parse_number("--shm-chunks", optarg, 1, 4096, &n)) {
                return 2;
            }
            cfg.ring.req_chunks = cfg.ring.resp_chunks = (uint32_t)n;
            break;
        case 1003:
            if (parse_number("--shm-inflight", optarg, 1, 4096, &n)) {
                return 2;
            }
            cfg.ring.max_inflight = (uint32_t)n;
            break;
        case 1004:
            if (parse_number("--shm-spin-us", optarg, 0, 10000, &n)) {
                return 2;
            }
            cfg.ring.spin_us = (uint32_t)n;
            break;
        case 1005:
            keep_privileges = true;
            break;
        case 1006:
            if (parse_number("--max-queued", optarg, 1, 1024, &n)) {
                return 2;
            }
            cfg.max_queued = (unsigned)n;
            break;
        case 'a':
            cfg.admin_socket = strcmp(optarg, "none") ? optarg : NULL;
            break;
        case 'm':
            cfg.metrics_listen = optarg;
            break;
        case 's':
            cfg.status_file = strcmp(optarg, "none") ? optarg : NULL;
            break;
        case 'l':
            if (strcmp(optarg, "syslog") == 0) {
                sink = VGPU_LOG_SYSLOG;
            } else if (strcmp(optarg, "stderr") == 0) {
                sink = VGPU_LOG_STDERR;
            } else {
                fprintf(stderr, "vgpu-mediator: unknown log target '%s'\n",
                        optarg);
                return 2;
            }
            break;
        case 'v':
            level = LOG_DEBUG;
            break;
        case 'V':
            printf("vgpu-mediator %s (protocol %u.%u)\n", VGPU_VERSION,
                   VGPU_PROTOCOL_MAJOR, VGPU_PROTOCOL_MINOR);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "vgpu-mediator: unexpected argument '%s'\n",
                argv[optind]);
        return 2;
    }
    if (parse_uid_base(uid_base, &cfg)) {
        return 2;
    }
    why = ring_config_fix(&cfg.ring);
    if (why) {
        fprintf(stderr, "vgpu-mediator: v2 channel: %s\n", why);
        return 2;
    }
    vgpu_log_open("vgpu-mediator", sink, level);
    if (cfg.qemu_uid_base >= 0) {
        log_info("qemu-dm of domain N runs as uid %ld+N, gid %ld+N",
                 cfg.qemu_uid_base, cfg.qemu_gid_base);
    } else {
        log_info("qemu-dm runs as the owner of its chroot folder");
    }
    log_info("vgpu-mediator %s starting", VGPU_VERSION);
    if (!keep_privileges && drop_privileges(&cfg)) {
        log_err("start-up failed");
        return 1;
    }
    if (mediator_open(&m, &cfg)) {
        log_err("start-up failed");
        return 1;
    }
    ret = mediator_run(m);
    mediator_close(m);
    log_info("stopped");
    return ret ? 1 : 0;
}
