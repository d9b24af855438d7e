/*
 * qemudm.c - is our qemu-dm usable, and is it built from the qemu release
 * XCP-ng has installed? (qemudm.h)
 */
#include "qemudm.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define RUN_OUTPUT_MAX (512 * 1024)
#define HELP_TIMEOUT_MS 10000
#define RPM_TIMEOUT_MS 10000

const char *qemudm_vgpu_path(void)
{
    const char *env = getenv(QEMUDM_VGPU_ENV);

    return env && env[0] ? env : QEMUDM_VGPU_PATH;
}

/* ------------------------------------------------------------ versions */

int qemudm_vercmp(const char *a, const char *b)
{
    const unsigned char *one = (const unsigned char *)a;
    const unsigned char *two = (const unsigned char *)b;

    if (!strcmp(a, b))
        return 0;
    while (*one || *two) {
        const unsigned char *s1, *s2;
        size_t l1, l2;
        int isnum, rc;

        while (*one && !isalnum(*one) && *one != '~' && *one != '^')
            one++;
        while (*two && !isalnum(*two) && *two != '~' && *two != '^')
            two++;
        if (*one == '~' || *two == '~') {
            if (*one != '~')
                return 1;
            if (*two != '~')
                return -1;
            one++, two++;
            continue;
        }
        if (*one == '^' || *two == '^') {
            if (!*one)
                return -1;
            if (!*two)
                return 1;
            if (*one != '^')
                return 1;
            if (*two != '^')
                return -1;
            one++, two++;
            continue;
        }
        if (!(*one && *two))
            break;
        s1 = one, s2 = two;
        isnum = isdigit(*s1);
        if (isnum) {
            while (isdigit(*s1))
                s1++;
            while (isdigit(*s2))
                s2++;
        } else {
            while (isalpha(*s1))
                s1++;
            while (isalpha(*s2))
                s2++;
        }
        if (s2 == two) /* a number against letters: the number wins */
            return isnum ? 1 : -1;
        if (isnum) {
            while (*one == '0' && one < s1 - 1)
                one++;
            while (*two == '0' && two < s2 - 1)
                two++;
            if (s1 - one != s2 - two)
                return s1 - one > s2 - two ? 1 : -1;
        }
        l1 = (size_t)(s1 - one), l2 = (size_t)(s2 - two);
        rc = memcmp(one, two, l1 < l2 ? l1 : l2);
        if (rc)
            return rc < 0 ? -1 : 1;
        if (l1 != l2)
            return l1 < l2 ? -1 : 1;
        one = s1, two = s2;
    }
    if (!*one && !*two)
        return 0;
    return *one ? 1 : -1;
}

/* Splits "[E:]V[-R]" into epoch (0 without), version and release. */
static void evr_split(const char *evr, unsigned long *epoch, char *v,
                      size_t vlen, char *r, size_t rlen)
{
    const char *colon = strchr(evr, ':');
    const char *dash;

    *epoch = 0;
    if (colon) {
        *epoch = strtoul(evr, NULL, 10);
        evr = colon + 1;
    }
    dash = strrchr(evr, '-');
    snprintf(v, vlen, "%.*s", dash ? (int)(dash - evr) : (int)strlen(evr), evr);
    snprintf(r, rlen, "%s", dash ? dash + 1 : "");
}

int qemudm_evrcmp(const char *a, const char *b)
{
    char va[128], ra[128], vb[128], rb[128];
    unsigned long ea, eb;
    int rc;

    evr_split(a, &ea, va, sizeof(va), ra, sizeof(ra));
    evr_split(b, &eb, vb, sizeof(vb), rb, sizeof(rb));
    if (ea != eb)
        return ea < eb ? -1 : 1;
    rc = qemudm_vercmp(va, vb);
    return rc ? rc : qemudm_vercmp(ra, rb);
}

/* ------------------------------------------------------------ running */

/*
 * Runs argv (stdin /dev/null, stdout and stderr into *out, NUL-ended) for
 * at most timeout_ms.  Returns the exit status, 128 + signal, -2 on a
 * timeout (the child is killed), -1 when it could not be run.
 */
static int run(char *const argv[], char **out, int timeout_ms)
{
    size_t n = 0, cap = 4096;
    struct timespec t0, t;
    int pfd[2], status = 0;
    int timed_out = 0;
    char *buf;
    pid_t pid;

    *out = NULL;
    buf = malloc(cap);
    if (!buf)
        return -1;
    if (pipe2(pfd, O_CLOEXEC) < 0) {
        free(buf);
        return -1;
    }
    pid = fork();
    if (pid < 0) {
        close(pfd[0]);
        close(pfd[1]);
        free(buf);
        return -1;
    }
    if (pid == 0) {
        int null = open("/dev/null", O_RDONLY);

        if (null < 0 || dup2(null, 0) < 0 || dup2(pfd[1], 1) < 0 ||
            dup2(pfd[1], 2) < 0)
            _exit(126);
        execv(argv[0], argv);
        _exit(127);
    }
    close(pfd[1]);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        struct pollfd p = {.fd = pfd[0], .events = POLLIN};
        long left;
        ssize_t r;

        clock_gettime(CLOCK_MONOTONIC, &t);
        left = timeout_ms - ((t.tv_sec - t0.tv_sec) * 1000L +
                             (t.tv_nsec - t0.tv_nsec) / 1000000L);
        if (left <= 0) {
            timed_out = 1;
            break;
        }
        if (poll(&p, 1, (int)left) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (n + 1 >= cap && cap < RUN_OUTPUT_MAX) {
            char *nb = realloc(buf, cap * 2);

            if (!nb)
                break;
            buf = nb, cap *= 2;
        }
        r = read(pfd[0], buf + n, n + 1 < cap ? cap - n - 1 : 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    close(pfd[0]);
    if (timed_out)
        kill(pid, SIGKILL);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    buf[n] = '\0';
    *out = buf;
    if (timed_out)
        return -2;
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return WEXITSTATUS(status);
}

/* ------------------------------------------------------------ the cache */

static void cache_path(char *buf, size_t len, const char *dir)
{
    snprintf(buf, len, "%s/%s", dir, QEMUDM_CACHE_NAME);
}

/* The identity line of a binary (its path last: it may hold blanks). */
static void identity(char *buf, size_t len, const struct stat *st,
                     const char *path)
{
    snprintf(buf, len, "%llu %llu %lld %lld.%09ld %lld.%09ld %s",
             (unsigned long long)st->st_dev, (unsigned long long)st->st_ino,
             (long long)st->st_size, (long long)st->st_mtim.tv_sec,
             st->st_mtim.tv_nsec, (long long)st->st_ctim.tv_sec,
             st->st_ctim.tv_nsec, path);
}

/* 1 / 0: the cached answer for this identity; -1: none. */
static int cache_get(const char *dir, const char *id)
{
    char path[PATH_MAX + 32], line[PATH_MAX + 256];
    int answer = -1;
    FILE *f;

    if (!dir)
        return -1;
    cache_path(path, sizeof(path), dir);
    f = fopen(path, "re");
    if (!f)
        return -1;
    while (answer < 0 && fgets(line, sizeof(line), f)) {
        size_t l = strcspn(line, "\n");

        line[l] = '\0';
        if (!strncmp(line, "yes ", 4) && !strcmp(line + 4, id))
            answer = 1;
        else if (!strncmp(line, "no ", 3) && !strcmp(line + 3, id))
            answer = 0;
    }
    fclose(f);
    return answer;
}

/* Keeps one answer, for the latest binary: a write that fails is no
 * matter (the next probe asks the binary again). */
static void cache_put(const char *dir, const char *id, int yes)
{
    char path[PATH_MAX + 32], tmp[PATH_MAX + 64];
    FILE *f;

    if (!dir)
        return;
    cache_path(path, sizeof(path), dir);
    snprintf(tmp, sizeof(tmp), "%s.%ld", path, (long)getpid());
    f = fopen(tmp, "we");
    if (!f)
        return;
    fprintf(f, "%s %s\n", yes ? "yes" : "no", id);
    if (fclose(f) || rename(tmp, path))
        unlink(tmp);
}

/* ------------------------------------------------------------ releases */

static void read_built_from(struct qemudm_info *q)
{
    char path[PATH_MAX + 32], line[256];
    size_t klen = strlen(QEMUDM_RELEASE_KEY);
    FILE *f;

    snprintf(path, sizeof(path), "%s%s", q->path, QEMUDM_RELEASE_SUFFIX);
    f = fopen(path, "re");
    if (!f)
        return;
    while (fgets(line, sizeof(line), f)) {
        char *v = line + klen;

        if (strncmp(line, QEMUDM_RELEASE_KEY, klen) || *v != '=')
            continue;
        v++;
        v[strcspn(v, " \t\r\n")] = '\0';
        if (*v && strlen(v) < sizeof(q->built_from))
            snprintf(q->built_from, sizeof(q->built_from), "%s", v);
        break;
    }
    fclose(f);
}

/* The EVR of the installed qemu package (the highest, should there be
 * more than one), or "" when rpm does not know it. */
static void read_installed(struct qemudm_info *q)
{
    const char *rpm = getenv(QEMUDM_RPM_ENV);
    const char *db = getenv(QEMUDM_RPM_DBPATH_ENV);
    char *argv[10], *out = NULL, *line, *save = NULL;
    int n = 0;

    argv[n++] = (char *)(rpm && rpm[0] ? rpm : QEMUDM_RPM_DEFAULT);
    if (db && db[0]) {
        argv[n++] = "--dbpath";
        argv[n++] = (char *)db;
    }
    argv[n++] = "-q";
    argv[n++] = "--qf";
    argv[n++] = "%|EPOCH?{%{EPOCH}:}:{}|%{VERSION}-%{RELEASE}\\n";
    argv[n++] = QEMUDM_STOCK_PACKAGE;
    argv[n] = NULL;
    if (run(argv, &out, RPM_TIMEOUT_MS) != 0) {
        free(out);
        return;
    }
    for (line = strtok_r(out, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        if (!isdigit((unsigned char)line[0]) ||
            strlen(line) >= sizeof(q->installed) || strchr(line, ' '))
            continue;
        if (!q->installed[0] || qemudm_evrcmp(line, q->installed) > 0)
            snprintf(q->installed, sizeof(q->installed), "%s", line);
    }
    free(out);
}

static void compare_releases(struct qemudm_info *q)
{
    int c;

    read_built_from(q);
    if (!q->built_from[0])
        return;
    read_installed(q);
    if (!q->installed[0])
        return;
    c = qemudm_evrcmp(q->installed, q->built_from);
    if (c > 0) {
        q->skew = QEMUDM_SKEW_NEWER;
        snprintf(q->skew_msg, sizeof(q->skew_msg),
                 "XCP-ng's qemu %s is installed, newer than %s that the "
                 "vgpu qemu-dm %s was built from: VMs with a vgpu pool run "
                 "without XCP-ng's newer qemu fixes until it is rebuilt; "
                 "rebuild qemu-dm-vgpu in XCP-ng's build environment with "
                 "`" QEMUDM_REBUILD_CMD " --expect %s QEMU_CHECKOUT` "
                 "(docs/install.md)",
                 q->installed, q->built_from, q->path, q->installed);
    } else if (c < 0) {
        q->skew = QEMUDM_SKEW_OLDER;
        snprintf(q->skew_msg, sizeof(q->skew_msg),
                 "XCP-ng's qemu %s is installed, older than %s that the "
                 "vgpu qemu-dm %s was built from (update XCP-ng's qemu)",
                 q->installed, q->built_from, q->path);
    } else {
        q->skew = QEMUDM_SKEW_NONE;
    }
}

/* ------------------------------------------------------------ probe */

static int lists_vgpu_stub(const char *text)
{
    return strstr(text, "name \"vgpu-stub\"") != NULL;
}

int qemudm_probe(struct qemudm_info *q, const char *path, const char *cache_dir)
{
    char id[PATH_MAX + 128], *out = NULL;
    char *argv[] = {q->path, "-device", "help", NULL};
    struct stat st;
    int ans, rc;

    memset(q, 0, sizeof(*q));
    snprintf(q->path, sizeof(q->path), "%s", path ? path : qemudm_vgpu_path());
    if (stat(q->path, &st) < 0) {
        snprintf(q->why, sizeof(q->why),
                 "the vgpu qemu-dm %s is %s (install the qemu-dm-vgpu "
                 "package: docs/install.md)",
                 q->path, errno == ENOENT ? "missing" : "not readable");
        return 0;
    }
    if (!S_ISREG(st.st_mode) || access(q->path, X_OK) < 0) {
        snprintf(q->why, sizeof(q->why),
                 "the vgpu qemu-dm %s is not an executable file "
                 "(reinstall qemu-dm-vgpu)",
                 q->path);
        return 0;
    }
    identity(id, sizeof(id), &st, q->path);
    ans = cache_get(cache_dir, id);
    if (ans >= 0) {
        q->cached = 1;
    } else {
        rc = run(argv, &out, HELP_TIMEOUT_MS);
        if (rc != 0) {
            if (rc == -2)
                snprintf(q->why, sizeof(q->why),
                         "the vgpu qemu-dm %s does not run: `-device help` "
                         "did not finish in %d s (reinstall qemu-dm-vgpu)",
                         q->path, HELP_TIMEOUT_MS / 1000);
            else
                snprintf(q->why, sizeof(q->why),
                         "the vgpu qemu-dm %s does not run: `-device help` "
                         "exited %d (reinstall qemu-dm-vgpu)",
                         q->path, rc);
            free(out);
            return 0;
        }
        ans = lists_vgpu_stub(out);
        free(out);
        cache_put(cache_dir, id, ans);
    }
    if (!ans) {
        snprintf(q->why, sizeof(q->why),
                 "the vgpu qemu-dm %s lacks the vgpu-stub device (its "
                 "`-device help` does not list it; reinstall "
                 "qemu-dm-vgpu)",
                 q->path);
        return 0;
    }
    q->usable = 1;
    compare_releases(q);
    return 1;
}

void qemudm_summary(const struct qemudm_info *q, char *buf, size_t len)
{
    if (!q->usable) {
        snprintf(buf, len, "qemu-dm unusable: %s", q->why);
        return;
    }
    switch (q->skew) {
    case QEMUDM_SKEW_NEWER:
    case QEMUDM_SKEW_OLDER:
        snprintf(buf, len, "qemu-dm skew: %s", q->skew_msg);
        break;
    case QEMUDM_SKEW_NONE:
        snprintf(buf, len,
                 "qemu-dm %s: vgpu-stub, built from XCP-ng's qemu %s "
                 "(installed)",
                 q->path, q->built_from);
        break;
    default:
        snprintf(buf, len,
                 "qemu-dm %s: vgpu-stub, built from XCP-ng's qemu %s; "
                 "installed qemu: %s",
                 q->path, q->built_from[0] ? q->built_from : "unknown",
                 q->installed[0] ? q->installed : "unknown");
        break;
    }
}
