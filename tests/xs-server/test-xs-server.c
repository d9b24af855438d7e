/*
 * test-xs-server.c - tests of xs-server through the real libxenstore
 * (-lxenstore, reached via XENSTORED_PATH), a raw socket speaking
 * xs_wire.h directly, and Debian's xenstore-utils when installed.
 *
 * Usage: test-xs-server [PATH-TO-xs-server]
 * (default: xs-server next to this binary).  Prints one line per case and
 * ends with "N passed, N failed"; exits non-zero when a case failed.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <xenstore.h>
#include <xenstore_lib.h>
#include <xen/io/xs_wire.h>

/* The test's state; main() owns it. */
struct t {
    int passed, failed;
    char dir[64];
    char sock[128], dsock5[128], dsock7[128], pidfile[128];
    const char *server;
    pid_t pid;
};

static void check(struct t *t, bool ok, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void check(struct t *t, bool ok, const char *fmt, ...)
{
    va_list ap;

    printf("%s: ", ok ? "PASS" : "FAIL");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
    if (ok)
        t->passed++;
    else
        t->failed++;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

    nanosleep(&ts, NULL);
}

static bool start_server(struct t *t)
{
    struct stat st;
    char d5[160], d7[160];

    snprintf(d5, sizeof(d5), "5:%s", t->dsock5);
    snprintf(d7, sizeof(d7), "7:%s", t->dsock7);
    t->pid = fork();
    if (t->pid < 0)
        return false;
    if (t->pid == 0) {
        int null = open("/dev/null", O_WRONLY);

        dup2(null, 1);
        execl(t->server, t->server, "--socket", t->sock, "--domain-socket", d5,
              "--domain-socket", d7, "--pidfile", t->pidfile, "--foreground",
              (char *)NULL);
        perror("exec xs-server");
        _exit(127);
    }
    for (int i = 0; i < 500; i++) {
        if (stat(t->pidfile, &st) == 0)
            return true;
        if (waitpid(t->pid, NULL, WNOHANG) == t->pid) {
            t->pid = 0;
            return false;
        }
        sleep_ms(10);
    }
    return false;
}

static struct xs_handle *open_at(const char *path, unsigned long flags)
{
    setenv("XENSTORED_PATH", path, 1);
    return xs_open(flags);
}

static bool read_is(struct xs_handle *h, xs_transaction_t tx, const char *path,
                    const char *want)
{
    unsigned int len;
    char *v = xs_read(h, tx, path, &len);
    bool ok = v && len == strlen(want) && strcmp(v, want) == 0;

    free(v);
    return ok;
}

static int read_errno(struct xs_handle *h, xs_transaction_t tx,
                      const char *path)
{
    unsigned int len;
    char *v;

    errno = 0;
    v = xs_read(h, tx, path, &len);
    if (v) {
        free(v);
        return 0;
    }
    return errno;
}

static bool wr(struct xs_handle *h, const char *path, const char *val)
{
    return xs_write(h, XBT_NULL, path, val, (unsigned int)strlen(val));
}

/* Waits up to ms for a watch event; returns path and token in *p, *tok. */
static bool next_event(struct xs_handle *h, int ms, char *p, size_t plen,
                       char *tok, size_t toklen)
{
    struct pollfd pfd = {.fd = xs_fileno(h), .events = POLLIN};

    for (int waited = 0; waited <= ms; waited += 20) {
        char **ev = xs_check_watch(h);

        if (ev) {
            snprintf(p, plen, "%s", ev[XS_WATCH_PATH]);
            snprintf(tok, toklen, "%s", ev[XS_WATCH_TOKEN]);
            free(ev);
            return true;
        }
        poll(&pfd, 1, 20);
    }
    return false;
}

static bool event_is(struct xs_handle *h, const char *path, const char *token)
{
    char p[256], tok[64];

    if (!next_event(h, 2000, p, sizeof(p), tok, sizeof(tok)))
        return false;
    if (strcmp(p, path) != 0 || strcmp(tok, token) != 0) {
        printf("  (got event %s %s, wanted %s %s)\n", p, tok, path, token);
        return false;
    }
    return true;
}

static bool no_event(struct xs_handle *h)
{
    char p[256], tok[64];

    return !next_event(h, 200, p, sizeof(p), tok, sizeof(tok));
}

static bool dir_is(struct xs_handle *h, const char *path, const char *want)
{
    unsigned int n;
    char **d = xs_directory(h, XBT_NULL, path, &n);
    char got[1024] = "";

    if (!d)
        return false;
    for (unsigned int i = 0; i < n; i++) {
        if (i)
            strncat(got, " ", sizeof(got) - strlen(got) - 1);
        strncat(got, d[i], sizeof(got) - strlen(got) - 1);
    }
    free(d);
    if (strcmp(got, want) != 0)
        printf("  (directory %s: \"%s\")\n", path, got);
    return strcmp(got, want) == 0;
}

static bool set_perms_tx(struct xs_handle *h, xs_transaction_t tx,
                         const char *path, const char *spec)
{
    struct xs_permissions p[8];
    unsigned int n = 0;
    char buf[64], *save = NULL;

    snprintf(buf, sizeof(buf), "%s", spec);
    for (char *tok = strtok_r(buf, " ", &save); tok && n < 8;
         tok = strtok_r(NULL, " ", &save)) {
        if (!xs_strings_to_perms(&p[n], 1, tok))
            return false;
        n++;
    }
    return xs_set_permissions(h, tx, path, p, n);
}

static bool set_perms(struct xs_handle *h, const char *path, const char *spec)
{
    return set_perms_tx(h, XBT_NULL, path, spec);
}

static bool perms_are(struct xs_handle *h, const char *path, const char *want)
{
    unsigned int n;
    struct xs_permissions *p = xs_get_permissions(h, XBT_NULL, path, &n);
    char got[256] = "";

    if (!p)
        return false;
    for (unsigned int i = 0; i < n; i++) {
        static const char acc[] = "nrwb";
        char one[32];

        snprintf(one, sizeof(one), "%c%u",
                 acc[p[i].perms & (XS_PERM_READ | XS_PERM_WRITE)], p[i].id);
        if (i)
            strncat(got, " ", sizeof(got) - strlen(got) - 1);
        strncat(got, one, sizeof(got) - strlen(got) - 1);
    }
    free(p);
    if (strcmp(got, want) != 0)
        printf("  (perms of %s: \"%s\")\n", path, got);
    return strcmp(got, want) == 0;
}

/* ---- cases ------------------------------------------------------------ */

static void test_basic(struct t *t, struct xs_handle *h)
{
    unsigned int len;
    char *v;

    check(t, dir_is(h, "/", "local tool"), "initial tree has /local /tool");
    check(t, dir_is(h, "/local", "domain"), "initial tree has /local/domain");
    check(t, perms_are(h, "/", "n0"), "/ is owned by dom0, n for others");
    check(t,
          wr(h, "/test/a", "hello") && read_is(h, XBT_NULL, "/test/a", "hello"),
          "write creates parents, read returns the value");
    check(t, perms_are(h, "/test/a", "n0"), "new node inherits parent perms");
    v = xs_read(h, XBT_NULL, "/test", &len);
    check(t, v && len == 0, "created parent has an empty value");
    free(v);
    check(t, wr(h, "/test/b", "") && read_is(h, XBT_NULL, "/test/b", ""),
          "empty value round-trips");
    check(t,
          xs_write(h, XBT_NULL, "/test/bin", "a\0b", 3) &&
              (v = xs_read(h, XBT_NULL, "/test/bin", &len)) && len == 3 &&
              memcmp(v, "a\0b", 3) == 0,
          "binary value with a NUL round-trips");
    free(v);
    check(t, dir_is(h, "/test", "a b bin"),
          "directory lists children in creation order");
    check(t,
          xs_mkdir(h, XBT_NULL, "/test/dir") &&
              read_is(h, XBT_NULL, "/test/dir", "") &&
              xs_mkdir(h, XBT_NULL, "/test/dir"),
          "mkdir creates an empty node; again is OK");
    check(t,
          wr(h, "/test/dir/x/y", "1") && xs_rm(h, XBT_NULL, "/test/dir") &&
              read_errno(h, XBT_NULL, "/test/dir/x/y") == ENOENT &&
              read_errno(h, XBT_NULL, "/test/dir") == ENOENT,
          "rm is recursive; reads then give ENOENT");
    check(t, xs_rm(h, XBT_NULL, "/test/nothere"),
          "rm of a missing child of an existing node is OK");
    errno = 0;
    check(t, !xs_rm(h, XBT_NULL, "/nothere/x") && errno == ENOENT,
          "rm below a missing node gives ENOENT");
    errno = 0;
    check(t, !xs_write(h, XBT_NULL, "/bad//path", "x", 1) && errno == EINVAL,
          "malformed path gives EINVAL");
    errno = 0;
    check(t,
          !xs_write(h, XBT_NULL, "@releaseDomain", "x", 1) && errno == EINVAL,
          "write to a special @path gives EINVAL");
    check(t, dir_is(h, "/test", "a b bin"), "directory after rm");
    v = xs_get_domain_path(h, 5);
    check(t, v && strcmp(v, "/local/domain/5") == 0,
          "get_domain_path(5) = /local/domain/5");
    free(v);
}

static void test_directory_part(struct t *t, struct xs_handle *h)
{
    char path[64];
    unsigned int n = 0;
    char **d;
    bool ok = true;
    xs_transaction_t tx = xs_transaction_start(h);

    for (int i = 0; i < 400 && ok; i++) {
        snprintf(path, sizeof(path), "/big/child-number-%04d", i);
        ok = xs_write(h, tx, path, "x", 1);
    }
    ok = xs_transaction_end(h, tx, false) && ok;
    d = xs_directory(h, XBT_NULL, "/big", &n);
    ok = ok && d && n == 400 && strcmp(d[0], "child-number-0000") == 0 &&
         strcmp(d[399], "child-number-0399") == 0;
    free(d);
    check(t, ok, "directory larger than a payload (E2BIG, DIRECTORY_PART)");
    check(t, xs_rm(h, XBT_NULL, "/big"), "rm of a 400-child node");
}

static void test_perms(struct t *t, struct xs_handle *h, struct xs_handle *h5,
                       struct xs_handle *h7)
{
    int e;

    check(t,
          set_perms(h, "/test/a", "n0 r5") && perms_are(h, "/test/a", "n0 r5"),
          "set_perms/get_perms round-trip");
    check(t,
          wr(h, "/vm/r", "readable") && set_perms(h, "/vm/r", "n0 r5") &&
              wr(h, "/vm/n", "secret") && set_perms(h, "/vm/n", "n0") &&
              wr(h, "/vm/w", "old") && set_perms(h, "/vm/w", "n0 b5") &&
              xs_mkdir(h, XBT_NULL, "/vm/dir") &&
              set_perms(h, "/vm/dir", "n0 w5"),
          "dom0 sets up keys for dom5");
    check(t, read_is(h5, XBT_NULL, "/vm/r", "readable"),
          "dom5 reads a key it has r on");
    e = read_errno(h5, XBT_NULL, "/vm/n");
    check(t, e == EACCES, "dom5 cannot read an n0 key (EACCES, got %s)",
          strerror(e));
    e = read_errno(h7, XBT_NULL, "/vm/r");
    check(t, e == EACCES, "dom7 cannot read dom5's r5 key (EACCES, got %s)",
          strerror(e));
    errno = 0;
    check(t,
          !wr(h5, "/vm/r", "evil") && errno == EACCES &&
              read_is(h, XBT_NULL, "/vm/r", "readable"),
          "dom5 cannot write a dom0-owned key it may only read");
    errno = 0;
    check(t,
          !wr(h5, "/vm/new", "evil") && errno == EACCES &&
              read_errno(h, XBT_NULL, "/vm/new") == ENOENT,
          "dom5 cannot create a child of a dom0-owned node");
    errno = 0;
    check(t, !xs_rm(h5, XBT_NULL, "/vm/r") && errno == EACCES,
          "dom5 cannot rm a key it may only read");
    errno = 0;
    check(t, !set_perms(h5, "/vm/w", "n0 b5 b7") && errno == EACCES,
          "dom5 cannot set perms on a node it does not own");
    check(t, wr(h5, "/vm/w", "new") && read_is(h, XBT_NULL, "/vm/w", "new"),
          "dom5 writes a key where it has b");
    check(t,
          wr(h5, "/vm/dir/mine", "x") && perms_are(h, "/vm/dir/mine", "n5 w5"),
          "dom5 creates under a w5 node and owns the new node");
    check(t,
          set_perms(h5, "/vm/dir/mine", "n5 r7") &&
              read_is(h7, XBT_NULL, "/vm/dir/mine", "x"),
          "owner dom5 grants dom7 read");
    errno = 0;
    check(t, !set_perms(h5, "/vm/dir/mine", "n7") && errno == EPERM,
          "unprivileged owner cannot give a node away (EPERM)");
    check(t,
          xs_mkdir(h, XBT_NULL, "/local/domain/5") &&
              set_perms(h, "/local/domain/5", "n5") &&
              wr(h5, "data/rel", "v") &&
              read_is(h, XBT_NULL, "/local/domain/5/data/rel", "v") &&
              read_is(h5, XBT_NULL, "data/rel", "v"),
          "relative paths are below /local/domain/<domid>");
    errno = 0;
    check(t, !xs_introduce_domain(h5, 9, 0, 0) && errno == EACCES,
          "dom5 cannot introduce a domain");
    errno = 0;
    check(t, !xs_release_domain(h5, 7) && errno == EACCES,
          "dom5 cannot release a domain");
    errno = 0;
    check(t, !xs_is_domain_introduced(h5, 5) && errno == EACCES,
          "is_domain_introduced is dom0 only");
    check(t,
          xs_mkdir(h, XBT_NULL, "/vm/rw") && set_perms(h, "/vm/rw", "n0 r5") &&
              read_errno(h5, XBT_NULL, "/vm/rw/none") == ENOENT &&
              read_errno(h5, XBT_NULL, "/vm/n/none") == EACCES,
          "missing node: ENOENT under a readable node, else EACCES");
}

static void test_watches(struct t *t, struct xs_handle *h, struct xs_handle *h5)
{
    check(t, xs_watch(h, "/w", "tok") && event_is(h, "/w", "tok"),
          "watch fires once at once with the watched path");
    check(t, wr(h, "/w", "1") && event_is(h, "/w", "tok"),
          "watch fires on write of the node");
    check(t, wr(h, "/w/x/y", "2") && event_is(h, "/w/x/y", "tok"),
          "watch fires on write below the node");
    check(t, wr(h, "/other", "3") && no_event(h),
          "watch does not fire for unrelated paths");
    check(t, xs_watch(h, "/w/x/y", "deep") && event_is(h, "/w/x/y", "deep"),
          "second watch fires once");
    check(t,
          xs_rm(h, XBT_NULL, "/w/x") && event_is(h, "/w/x/y", "deep") &&
              event_is(h, "/w/x", "tok"),
          "rm of a parent fires the watch below and the one above");
    errno = 0;
    check(t, !xs_watch(h, "/w", "tok") && errno == EEXIST,
          "duplicate watch gives EEXIST");
    check(t,
          xs_unwatch(h, "/w", "tok") && xs_unwatch(h, "/w/x/y", "deep") &&
              wr(h, "/w/z", "4") && no_event(h),
          "unwatch stops events");
    errno = 0;
    check(t, !xs_unwatch(h, "/w", "tok") && errno == ENOENT,
          "unwatch of an unknown watch gives ENOENT");
    check(t,
          xs_watch(h5, "data", "rel") && event_is(h5, "data", "rel") &&
              wr(h, "/local/domain/5/data/e", "1") &&
              event_is(h5, "data/e", "rel"),
          "relative watch reports relative paths");
    check(t,
          wr(h, "/local/domain/5/data/hidden", "1") &&
              event_is(h5, "data/hidden", "rel") &&
              set_perms(h, "/local/domain/5/data/hidden", "n0") &&
              event_is(h5, "data/hidden", "rel") &&
              wr(h, "/local/domain/5/data/hidden", "2") && no_event(h5),
          "no event for a node the watcher cannot read (after set-perms "
          "took r away; that one still fires, as in xenstored)");
    check(t, xs_unwatch(h5, "data", "rel"), "relative unwatch");
}

static void test_domains(struct t *t, struct xs_handle *h, struct xs_handle *h7)
{
    check(t,
          xs_watch(h, "@releaseDomain", "rel") &&
              event_is(h, "@releaseDomain", "rel") &&
              xs_watch(h, "@introduceDomain", "intro") &&
              event_is(h, "@introduceDomain", "intro"),
          "special watches fire once at once");
    check(t,
          !xs_is_domain_introduced(h, 9) &&
              xs_introduce_domain(h, 9, 1234, 5) &&
              event_is(h, "@introduceDomain", "intro") &&
              xs_is_domain_introduced(h, 9),
          "introduce fires @introduceDomain");
    check(t,
          xs_is_domain_introduced(h, 7) &&
              read_is(h7, XBT_NULL, "/vm/dir/mine", "x") &&
              xs_release_domain(h, 7) && event_is(h, "@releaseDomain", "rel") &&
              !xs_is_domain_introduced(h, 7),
          "xs_release_domain fires @releaseDomain");
    check(t, read_errno(h7, XBT_NULL, "/vm/dir/mine") != 0,
          "released domain's connection is closed");
    errno = 0;
    check(t, !xs_release_domain(h, 7) && errno == ENOENT,
          "releasing it again gives ENOENT");
    check(t, xs_release_domain(h, 9) && event_is(h, "@releaseDomain", "rel"),
          "release of an introduced domain");
    check(t,
          xs_unwatch(h, "@releaseDomain", "rel") &&
              xs_unwatch(h, "@introduceDomain", "intro"),
          "unwatch special paths");
}

static void test_transactions(struct t *t, struct xs_handle *h,
                              struct xs_handle *h2)
{
    xs_transaction_t a, b;
    bool ok;

    a = xs_transaction_start(h);
    ok = a != XBT_NULL && xs_write(h, a, "/tx/a", "1", 1) &&
         read_is(h, a, "/tx/a", "1") &&
         read_errno(h, XBT_NULL, "/tx/a") == ENOENT;
    check(t, ok, "transaction writes are invisible outside it");
    check(t,
          xs_transaction_end(h, a, false) && read_is(h, XBT_NULL, "/tx/a", "1"),
          "transaction commits");
    a = xs_transaction_start(h);
    check(t,
          xs_write(h, a, "/tx/gone", "1", 1) &&
              xs_transaction_end(h, a, true) &&
              read_errno(h, XBT_NULL, "/tx/gone") == ENOENT,
          "aborted transaction leaves no trace");

    a = xs_transaction_start(h);
    ok = read_is(h, a, "/tx/a", "1") && wr(h2, "/tx/a", "other") &&
         xs_write(h, a, "/tx/b", "2", 1);
    errno = 0;
    ok = ok && !xs_transaction_end(h, a, false) && errno == EAGAIN;
    check(t, ok && read_errno(h, XBT_NULL, "/tx/b") == ENOENT,
          "conflicting transaction gets EAGAIN and is not applied");

    a = xs_transaction_start(h);
    b = xs_transaction_start(h2);
    ok = xs_write(h, a, "/tx/c", "3", 1) && xs_write(h2, b, "/tx/c", "4", 1);
    ok = ok && xs_transaction_end(h2, b, false);
    errno = 0;
    ok = ok && !xs_transaction_end(h, a, false) && errno == EAGAIN;
    check(t, ok && read_is(h, XBT_NULL, "/tx/c", "4"),
          "two transactions writing one key: second commit gets EAGAIN");

    a = xs_transaction_start(h);
    b = xs_transaction_start(h2);
    ok = read_is(h, a, "/tx/a", "other") && xs_write(h, a, "/tx/a", "5", 1) &&
         xs_write(h2, b, "/tx/c", "6", 1) &&
         xs_write(h2, b, "/tx/e/f", "7", 1) &&
         xs_transaction_end(h2, b, false) && xs_transaction_end(h, a, false);
    check(t,
          ok && read_is(h, XBT_NULL, "/tx/a", "5") &&
              read_is(h, XBT_NULL, "/tx/c", "6") &&
              read_is(h, XBT_NULL, "/tx/e/f", "7"),
          "transactions on disjoint keys both commit");
    a = xs_transaction_start(h);
    b = xs_transaction_start(h2);
    ok = xs_write(h, a, "/tx/new1", "1", 1) &&
         xs_write(h2, b, "/tx/new2", "2", 1) &&
         xs_transaction_end(h2, b, false);
    errno = 0;
    ok = ok && !xs_transaction_end(h, a, false) && errno == EAGAIN;
    check(t, ok,
          "two transactions adding children to one node conflict "
          "(as in xenstored)");

    check(t, xs_watch(h2, "/tx/w", "txw") && event_is(h2, "/tx/w", "txw"),
          "watch for the transaction test");
    a = xs_transaction_start(h);
    ok = xs_write(h, a, "/tx/w/k", "7", 1) && no_event(h2) &&
         xs_transaction_end(h, a, false) && event_is(h2, "/tx/w/k", "txw");
    check(t, ok, "watch fires at commit, not before");
    xs_unwatch(h2, "/tx/w", "txw");
    errno = 0;
    check(t, !xs_write(h, 987654, "/tx/z", "1", 1) && errno == ENOENT,
          "unknown transaction id gives ENOENT");
}

/* Resets /local/domain/5/vgpu to pool = "old" (perms n5 r7), other = "x". */
static bool vgpu_reset(struct xs_handle *h)
{
    return xs_rm(h, XBT_NULL, "/local/domain/5/vgpu") &&
           wr(h, "/local/domain/5/vgpu/pool", "old") &&
           wr(h, "/local/domain/5/vgpu/other", "x") &&
           set_perms(h, "/local/domain/5/vgpu/pool", "n5 r7");
}

/*
 * A transaction that removes a subtree and then recreates nodes below it
 * commits when nobody else touched the tree (as in xenstored); a write by
 * another connection to a node it read, or to a node of the subtree it
 * removed, still makes it fail with EAGAIN.
 */
static void test_tx_remove(struct t *t, struct xs_handle *h,
                           struct xs_handle *h2)
{
    const char *vgpu = "/local/domain/5/vgpu";
    const char *pool = "/local/domain/5/vgpu/pool";
    xs_transaction_t a;
    bool ok;

    a = vgpu_reset(h) ? xs_transaction_start(h) : XBT_NULL;
    ok = a != XBT_NULL && xs_rm(h, a, vgpu) && xs_write(h, a, pool, "A", 1) &&
         set_perms_tx(h, a, pool, "n5 b7") && read_is(h, a, pool, "A") &&
         wr(h2, "/tx/unrelated", "1");
    errno = 0;
    ok = ok && xs_transaction_end(h, a, false);
    if (!ok)
        printf("  (errno %d)\n", errno);
    check(t,
          ok && read_is(h, XBT_NULL, pool, "A") && dir_is(h, vgpu, "pool") &&
              perms_are(h, pool, "n5 b7") && perms_are(h, vgpu, "n5"),
          "transaction: rm then write below the removed node commits");

    a = vgpu_reset(h) ? xs_transaction_start(h) : XBT_NULL;
    ok = a != XBT_NULL && xs_rm(h, a, vgpu) && xs_mkdir(h, a, pool);
    errno = 0;
    ok = ok && xs_transaction_end(h, a, false);
    if (!ok)
        printf("  (errno %d)\n", errno);
    check(t,
          ok && read_is(h, XBT_NULL, pool, "") && dir_is(h, vgpu, "pool") &&
              perms_are(h, pool, "n5") && perms_are(h, vgpu, "n5"),
          "transaction: rm then mkdir below the removed node commits");

    a = vgpu_reset(h) ? xs_transaction_start(h) : XBT_NULL;
    ok = a != XBT_NULL &&
         xs_write(h, a, "/local/domain/5/vgpu/tmp/x", "1", 1) &&
         xs_rm(h, a, "/local/domain/5/vgpu/tmp") && xs_rm(h, a, vgpu) &&
         xs_write(h, a, pool, "B", 1) &&
         xs_write(h, a, "/local/domain/5/vgpu/other", "y", 1) &&
         xs_rm(h, a, "/local/domain/5/vgpu/other");
    errno = 0;
    ok = ok && xs_transaction_end(h, a, false);
    if (!ok)
        printf("  (errno %d)\n", errno);
    check(t,
          ok && read_is(h, XBT_NULL, pool, "B") && dir_is(h, vgpu, "pool") &&
              perms_are(h, pool, "n5") &&
              read_errno(h, XBT_NULL, "/local/domain/5/vgpu/tmp") == ENOENT,
          "transaction: rm of nodes created earlier in it commits");

    a = vgpu_reset(h) ? xs_transaction_start(h) : XBT_NULL;
    ok = a != XBT_NULL && read_is(h, a, pool, "old") && wr(h2, pool, "other") &&
         xs_rm(h, a, vgpu) && xs_write(h, a, pool, "A", 1);
    errno = 0;
    ok = ok && !xs_transaction_end(h, a, false) && errno == EAGAIN;
    check(t,
          ok && read_is(h, XBT_NULL, pool, "other") &&
              read_is(h, XBT_NULL, "/local/domain/5/vgpu/other", "x"),
          "transaction: rm+write after another connection wrote a node it "
          "read gets EAGAIN and is not applied");

    a = vgpu_reset(h) ? xs_transaction_start(h) : XBT_NULL;
    ok = a != XBT_NULL && xs_rm(h, a, vgpu) &&
         wr(h2, "/local/domain/5/vgpu/pool/deep", "d");
    errno = 0;
    ok = ok && !xs_transaction_end(h, a, false) && errno == EAGAIN;
    check(t, ok && read_is(h, XBT_NULL, "/local/domain/5/vgpu/pool/deep", "d"),
          "transaction: rm after another connection wrote below the removed "
          "node gets EAGAIN (as in xenstored)");
    xs_rm(h, XBT_NULL, vgpu);
}

/* ---- raw socket ------------------------------------------------------- */

static int raw_connect(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct timeval tv = {.tv_sec = 3};

    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return fd;
}

static bool raw_send(int fd, uint32_t type, uint32_t req_id, const void *data,
                     uint32_t len, uint32_t claimed_len)
{
    struct xsd_sockmsg m = {
        .type = type, .req_id = req_id, .tx_id = 0, .len = claimed_len};

    return write(fd, &m, sizeof(m)) == (ssize_t)sizeof(m) &&
           (len == 0 || write(fd, data, len) == (ssize_t)len);
}

static bool read_full(int fd, void *buf, size_t len)
{
    size_t got = 0;

    while (got < len) {
        ssize_t n = read(fd, (char *)buf + got, len - got);

        if (n <= 0)
            return false;
        got += (size_t)n;
    }
    return true;
}

/* Reads one reply; body gets up to blen-1 bytes, NUL-terminated. */
static bool raw_reply(int fd, struct xsd_sockmsg *m, char *body, size_t blen)
{
    char tmp[XENSTORE_PAYLOAD_MAX];

    if (!read_full(fd, m, sizeof(*m)) || m->len > sizeof(tmp) ||
        !read_full(fd, tmp, m->len))
        return false;
    snprintf(body, blen, "%.*s", (int)m->len, tmp);
    return true;
}

static void test_garbage(struct t *t, struct xs_handle *h)
{
    struct xsd_sockmsg m;
    char body[128];
    int fd = raw_connect(t->sock);
    int fd2;

    check(t,
          fd >= 0 && raw_send(fd, 9999, 42, NULL, 0, 0) &&
              raw_reply(fd, &m, body, sizeof(body)) && m.type == XS_ERROR &&
              m.req_id == 42 && strcmp(body, "ENOSYS") == 0,
          "bad message type gets XS_ERROR ENOSYS (as xenstored)");
    check(t,
          raw_send(fd, XS_READ, 43, "/test/a", 7, 7) &&
              raw_reply(fd, &m, body, sizeof(body)) && m.type == XS_ERROR &&
              strcmp(body, "EINVAL") == 0,
          "unterminated path gets EINVAL");
    check(t,
          raw_send(fd, XS_WATCH_EVENT, 44, "a\0b\0", 4, 4) &&
              raw_reply(fd, &m, body, sizeof(body)) && m.type == XS_ERROR,
          "client-sent XS_WATCH_EVENT gets XS_ERROR");
    {
        /* A request written one byte at a time (partial reads). */
        struct xsd_sockmsg q = {.type = XS_READ, .req_id = 45, .len = 8};
        char msg[sizeof(q) + 8];
        bool ok = true;

        memcpy(msg, &q, sizeof(q));
        memcpy(msg + sizeof(q), "/test/a", 8);
        for (size_t i = 0; i < sizeof(msg) && ok; i++) {
            ok = write(fd, msg + i, 1) == 1;
            sleep_ms(1);
        }
        check(t,
              ok && raw_reply(fd, &m, body, sizeof(body)) &&
                  m.type == XS_READ && m.req_id == 45 && m.len == 5 &&
                  strcmp(body, "hello") == 0,
              "request sent byte by byte gets the right reply");
    }
    check(t,
          raw_send(fd, XS_WRITE, 46, NULL, 0, XENSTORE_PAYLOAD_MAX + 1) &&
              read(fd, body, sizeof(body)) <= 0,
          "oversized length gets the client disconnected");
    close(fd);
    fd2 = raw_connect(t->sock);
    check(t,
          fd2 >= 0 && raw_send(fd2, XS_READ, 1, "/nope\0", 6, 6) &&
              raw_reply(fd2, &m, body, sizeof(body)) && m.type == XS_ERROR &&
              strcmp(body, "ENOENT") == 0,
          "raw client gets the ENOENT string");
    {
        /* A client that connects and vanishes mid-message. */
        int fd3 = raw_connect(t->sock);

        if (fd3 >= 0) {
            raw_send(fd3, XS_READ, 1, "/te", 3, 100);
            close(fd3);
        }
    }
    if (fd2 >= 0)
        close(fd2);
    check(t, read_is(h, XBT_NULL, "/test/a", "hello"),
          "libxenstore client still works after garbage");
}

/* 500 pipelined reads of a 4000-byte value: replies exceed socket buffers. */
static void test_pipeline(struct t *t, struct xs_handle *h)
{
    char *big = calloc(1, 4001);
    struct xsd_sockmsg m;
    char *body = malloc(XENSTORE_PAYLOAD_MAX + 1);
    int fd = raw_connect(t->sock);
    bool ok = fd >= 0 && body && big;

    if (big)
        memset(big, 'v', 4000);
    ok = ok && wr(h, "/big4k", big);
    for (uint32_t i = 0; ok && i < 500; i++)
        ok = raw_send(fd, XS_READ, i, "/big4k", 7, 7);
    sleep_ms(100);
    for (uint32_t i = 0; ok && i < 500; i++)
        ok = raw_reply(fd, &m, body, XENSTORE_PAYLOAD_MAX + 1) &&
             m.type == XS_READ && m.req_id == i && m.len == 4000 &&
             strcmp(body, big) == 0;
    check(t, ok, "500 pipelined requests, 2 MB of replies in order");
    if (fd >= 0)
        close(fd);
    free(body);
    free(big);
}

static void test_many_clients(struct t *t)
{
    struct xs_handle *hs[40];
    bool ok = true;
    char path[64], val[16];

    setenv("XENSTORED_PATH", t->sock, 1);
    for (int i = 0; i < 40; i++) {
        hs[i] = xs_open(0);
        ok = ok && hs[i];
    }
    for (int i = 0; ok && i < 40; i++) {
        snprintf(path, sizeof(path), "/many/%d", i);
        snprintf(val, sizeof(val), "%d", i * 7);
        ok = wr(hs[i], path, val);
    }
    for (int i = 0; ok && i < 40; i++) {
        snprintf(path, sizeof(path), "/many/%d", i);
        snprintf(val, sizeof(val), "%d", i * 7);
        ok = read_is(hs[(i + 1) % 40], XBT_NULL, path, val);
    }
    for (int i = 0; i < 40; i++)
        if (hs[i])
            xs_close(hs[i]);
    check(t, ok, "40 concurrent libxenstore clients");
}

/* ---- Debian's xenstore-utils ----------------------------------------- */

static bool run_out(const char *cmd, char *out, size_t len)
{
    FILE *f = popen(cmd, "r");
    size_t n;

    if (!f)
        return false;
    n = fread(out, 1, len - 1, f);
    out[n] = '\0';
    return pclose(f) == 0;
}

static void test_cli(struct t *t, struct xs_handle *h)
{
    char out[1024];
    FILE *w;

    if (access("/usr/bin/xenstore-write", X_OK) != 0) {
        printf("SKIP: xenstore-utils not installed\n");
        return;
    }
    setenv("XENSTORED_PATH", t->sock, 1);
    check(t,
          system("xenstore-write /cli/k value /cli/j two") == 0 &&
              read_is(h, XBT_NULL, "/cli/k", "value"),
          "xenstore-write");
    check(t,
          run_out("xenstore-read /cli/k", out, sizeof(out)) &&
              strcmp(out, "value\n") == 0,
          "xenstore-read");
    check(t,
          run_out("xenstore-ls /cli", out, sizeof(out)) &&
              strcmp(out, "k = \"value\"\nj = \"two\"\n") == 0,
          "xenstore-ls");
    check(t,
          system("xenstore-chmod /cli/k n0 r5") == 0 &&
              perms_are(h, "/cli/k", "n0 r5"),
          "xenstore-chmod");
    check(t,
          system("xenstore-rm /cli/j") == 0 &&
              read_errno(h, XBT_NULL, "/cli/j") == ENOENT,
          "xenstore-rm");
    setenv("XENSTORED_PATH", t->dsock5, 1);
    check(t,
          run_out("xenstore-read /cli/k", out, sizeof(out)) &&
              strcmp(out, "value\n") == 0 &&
              system("xenstore-write /cli/k x 2>/dev/null") != 0,
          "xenstore-read/-write as dom5 honour perms");
    setenv("XENSTORED_PATH", t->sock, 1);
    w = popen("timeout 5 xenstore-watch -n 2 /cli/k", "r");
    if (w) {
        size_t n;

        sleep_ms(300);
        wr(h, "/cli/k", "changed");
        n = fread(out, 1, sizeof(out) - 1, w);
        out[n] = '\0';
        check(t, pclose(w) == 0 && strcmp(out, "/cli/k\n/cli/k\n") == 0,
              "xenstore-watch sees the initial event and a change");
    }
}

static void test_env(struct t *t)
{
    struct xs_handle *ro;

    unsetenv("XENSTORED_RO_PATH");
    ro = open_at(t->sock, XS_OPEN_READONLY);
    check(t, ro && read_is(ro, XBT_NULL, "/test/a", "hello"),
          "xs_open(XS_OPEN_READONLY) uses XENSTORED_PATH too "
          "(no XENSTORED_RO_PATH needed)");
    if (ro)
        xs_close(ro);
    ro = open_at(t->sock, XS_OPEN_SOCKETONLY);
    check(t, ro && read_is(ro, XBT_NULL, "/test/a", "hello"),
          "xs_open(XS_OPEN_SOCKETONLY) uses XENSTORED_PATH");
    if (ro)
        xs_close(ro);
}

static void test_shutdown(struct t *t)
{
    int status = -1;
    struct stat st;

    kill(t->pid, SIGTERM);
    for (int i = 0; i < 300; i++) {
        if (waitpid(t->pid, &status, WNOHANG) == t->pid) {
            t->pid = 0;
            break;
        }
        sleep_ms(10);
    }
    check(t, t->pid == 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "SIGTERM: exits 0");
    check(t,
          stat(t->sock, &st) != 0 && stat(t->dsock5, &st) != 0 &&
              stat(t->pidfile, &st) != 0,
          "SIGTERM: sockets and pidfile removed");
}

int main(int argc, char **argv)
{
    struct t t = {0};
    char self[PATH_MAX], def[PATH_MAX + 16];
    struct xs_handle *h, *h2, *h5, *h7;
    ssize_t n;

    if (argc > 1) {
        t.server = argv[1];
    } else {
        n = readlink("/proc/self/exe", self, sizeof(self) - 1);
        if (n < 0)
            return 2;
        self[n] = '\0';
        *strrchr(self, '/') = '\0';
        snprintf(def, sizeof(def), "%s/xs-server", self);
        t.server = def;
    }
    signal(SIGPIPE, SIG_IGN);
    snprintf(t.dir, sizeof(t.dir), "/tmp/xs-server-test.XXXXXX");
    if (!mkdtemp(t.dir)) {
        perror("mkdtemp");
        return 2;
    }
    snprintf(t.sock, sizeof(t.sock), "%s/socket", t.dir);
    snprintf(t.dsock5, sizeof(t.dsock5), "%s/dom5", t.dir);
    snprintf(t.dsock7, sizeof(t.dsock7), "%s/dom7", t.dir);
    snprintf(t.pidfile, sizeof(t.pidfile), "%s/pid", t.dir);

    check(&t, start_server(&t), "server starts and writes its pidfile");
    if (t.pid <= 0)
        goto done;
    h = open_at(t.sock, 0);
    h2 = open_at(t.sock, 0);
    h5 = open_at(t.dsock5, 0);
    h7 = open_at(t.dsock7, 0);
    check(&t, h && h2 && h5 && h7, "xs_open(0) with XENSTORED_PATH");
    if (!h || !h2 || !h5 || !h7)
        goto stop;

    test_basic(&t, h);
    test_directory_part(&t, h);
    test_perms(&t, h, h5, h7);
    test_watches(&t, h, h5);
    test_transactions(&t, h, h2);
    test_tx_remove(&t, h, h2);
    test_domains(&t, h, h7);
    test_garbage(&t, h);
    test_pipeline(&t, h);
    test_many_clients(&t);
    test_cli(&t, h);
    test_env(&t);
    xs_close(h);
    xs_close(h2);
    xs_close(h5);
    xs_close(h7);
stop:
    if (t.pid > 0)
        test_shutdown(&t);
done:
    if (t.pid > 0) {
        kill(t.pid, SIGKILL);
        waitpid(t.pid, NULL, 0);
    }
    unlink(t.pidfile);
    unlink(t.sock);
    unlink(t.dsock5);
    unlink(t.dsock7);
    rmdir(t.dir);
    printf("%d passed, %d failed\n", t.passed, t.failed);
    return t.failed ? 1 : 0;
}
