/*
 * test-discovery.c - unit tests of chroot folder discovery: name parsing,
 * the initial scan, and inotify reports of folders created and removed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "discovery.h"

static void test_parse_name(void **state)
{
    const char *bad[] = {"root-",   "root-0",  "root-01",    "root--1",
                         "root-1a", "root- 1", "root-32752", "root-999999",
                         "Root-1",  "root1",   "xroot-1",    "root-1/"};
    uint32_t domid = 0;

    (void)state;
    assert_int_equal(discovery_parse_name("root-1", &domid), 0);
    assert_int_equal(domid, 1);
    assert_int_equal(discovery_parse_name("root-32751", &domid), 0);
    assert_int_equal(domid, VGPU_DOMID_MAX);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(discovery_parse_name(bad[i], &domid), -1);
    }
}

struct seen {
    int n;
    uint32_t domid[16];
    bool present[16];
};

static void record(void *arg, uint32_t domid, bool present)
{
    struct seen *s = arg;

    if (s->n < 16) {
        s->domid[s->n] = domid;
        s->present[s->n] = present;
        s->n++;
    }
}

static void path_in(char *out, size_t cap, const char *dir, const char *name)
{
    snprintf(out, cap, "%s/%s", dir, name);
}

/* dir + ".moved", in a static buffer (tests only). */
static const char *moved_name(const char *dir)
{
    static char buf[64];

    snprintf(buf, sizeof(buf), "%s.moved", dir);
    return buf;
}

static void test_scan_and_events(void **state)
{
    char dir[] = "/tmp/vgpu-disc-XXXXXX";
    char p[512];
    struct discovery d;
    struct seen s = {0};

    (void)state;
    assert_non_null(mkdtemp(dir));
    path_in(p, sizeof(p), dir, "root-3");
    assert_int_equal(mkdir(p, 0700), 0);
    path_in(p, sizeof(p), dir, "root-x"); /* not a domain */
    assert_int_equal(mkdir(p, 0700), 0);
    path_in(p, sizeof(p), dir, "root-4"); /* a file, not a folder */
    fclose(fopen(p, "w"));
    path_in(p, sizeof(p), dir, "root-5"); /* a symlink, not a folder */
    assert_int_equal(symlink("/tmp", p), 0);

    assert_int_equal(discovery_open(&d, dir, record, &s), 0);
    assert_int_equal(discovery_scan(&d), 0);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.domid[0], 3);
    assert_true(s.present[0]);

    s.n = 0;
    path_in(p, sizeof(p), dir, "root-7");
    assert_int_equal(mkdir(p, 0700), 0);
    path_in(p, sizeof(p), dir, "root-3");
    assert_int_equal(rmdir(p), 0);
    assert_int_equal(discovery_handle_events(&d), 0);
    assert_int_equal(s.n, 2);
    assert_int_equal(s.domid[0], 7);
    assert_true(s.present[0]);
    assert_int_equal(s.domid[1], 3);
    assert_false(s.present[1]);

    /* Nothing pending: returns without blocking. */
    s.n = 0;
    assert_int_equal(discovery_handle_events(&d), 0);
    assert_int_equal(s.n, 0);

    /* The root itself going away: its domains are reported gone, and
     * discovery waits for it again instead of failing. */
    s.n = 0;
    path_in(p, sizeof(p), dir, "root-x");
    rmdir(p);
    path_in(p, sizeof(p), dir, "root-4");
    unlink(p);
    path_in(p, sizeof(p), dir, "root-5");
    unlink(p);
    assert_int_equal(rename(dir, moved_name(dir)), 0);
    assert_int_equal(discovery_handle_events(&d), 0);
    assert_false(discovery_ready(&d));
    assert_int_equal(s.n, 1);
    assert_int_equal(s.domid[0], 7);
    assert_false(s.present[0]);

    /* Back again (with a domain already in it): reported once. */
    s.n = 0;
    assert_int_equal(mkdir(dir, 0700), 0);
    path_in(p, sizeof(p), dir, "root-9");
    assert_int_equal(mkdir(p, 0700), 0);
    assert_int_equal(discovery_handle_events(&d), 0);
    assert_true(discovery_ready(&d));
    assert_int_equal(s.n, 1);
    assert_int_equal(s.domid[0], 9);
    assert_true(s.present[0]);
    /* A rescan reports nothing new. */
    s.n = 0;
    assert_int_equal(discovery_scan(&d), 0);
    assert_int_equal(s.n, 0);

    /* Removed for good: reported gone, waiting again. */
    assert_int_equal(rmdir(p), 0);
    assert_int_equal(rmdir(dir), 0);
    assert_int_equal(discovery_handle_events(&d), 0);
    assert_int_equal(s.n, 1);
    assert_false(s.present[0]);
    assert_false(discovery_ready(&d));
    discovery_close(&d);
    path_in(p, sizeof(p), moved_name(dir), "root-7");
    rmdir(p);
    rmdir(moved_name(dir));
}

/*
 * XCP-ng creates /var/xen/qemu at the first HVM start: a root that does
 * not exist yet, two levels deep, is waited for, and found when made.
 */
static void test_missing_root(void **state)
{
    char top[] = "/tmp/vgpu-disc-XXXXXX";
    char root[256], p[512];
    struct discovery d;
    struct seen s = {0};

    (void)state;
    assert_non_null(mkdtemp(top));
    snprintf(root, sizeof(root), "%s/xen/qemu", top);
    assert_int_equal(discovery_open(&d, root, record, &s), 0);
    assert_false(discovery_ready(&d));
    assert_int_equal(discovery_scan(&d), 0);
    assert_int_equal(s.n, 0);

    /* One level made: still waiting, watching deeper. */
    path_in(p, sizeof(p), top, "xen");
    assert_int_equal(mkdir(p, 0755), 0);
    assert_int_equal(discovery_handle_events(&d), 0);
    assert_false(discovery_ready(&d));

    assert_int_equal(mkdir(root, 0755), 0);
    path_in(p, sizeof(p), root, "root-2");
    assert_int_equal(mkdir(p, 0755), 0);
    assert_int_equal(discovery_handle_events(&d), 0);
    assert_true(discovery_ready(&d));
    assert_int_equal(s.n, 1);
    assert_int_equal(s.domid[0], 2);
    assert_true(s.present[0]);

    /* Later events on the root are seen as usual. */
    path_in(p, sizeof(p), root, "root-2");
    assert_int_equal(rmdir(p), 0);
    assert_int_equal(discovery_handle_events(&d), 0);
    assert_int_equal(s.n, 2);
    assert_false(s.present[1]);
    discovery_close(&d);
    rmdir(root);
    path_in(p, sizeof(p), top, "xen");
    rmdir(p);
    rmdir(top);
}

/* What cannot be mended by waiting is still an error. */
static void test_bad_root(void **state)
{
    char f[] = "/tmp/vgpu-disc-file-XXXXXX";
    struct discovery d;
    struct seen s = {0};
    int fd;

    (void)state;
    fd = mkstemp(f);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(discovery_open(&d, f, record, &s), -1);
    assert_int_equal(discovery_open(&d, "relative/qemu", record, &s), -1);
    unlink(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_name),
        cmocka_unit_test(test_scan_and_events),
        cmocka_unit_test(test_missing_root),
        cmocka_unit_test(test_bad_root),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
