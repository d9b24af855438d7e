/*
 * xs-try.c - one xenstore operation through the real libxenstore, with the
 * errno of a failure printed by name, so a test can tell EACCES from any
 * other failure (xenstore-write only says "could not write").
 *
 *     xs-try read PATH | write PATH VALUE | rm PATH
 *
 * Prints the value read or "ok"; on failure "error: <strerror> (<errno
 * name>)" and exits 1.  Reaches xenstore at $XENSTORED_PATH.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xenstore.h>

static int usage(void)
{
    fputs("usage: xs-try read PATH | write PATH VALUE | rm PATH\n", stderr);
    return 2;
}

static int run(struct xs_handle *h, int argc, char **argv)
{
    unsigned int len;
    char *v;

    if (!strcmp(argv[1], "read") && argc == 3) {
        v = xs_read(h, XBT_NULL, argv[2], &len);
        if (!v)
            return -1;
        printf("%s\n", v);
        free(v);
        return 0;
    }
    if (!strcmp(argv[1], "write") && argc == 4)
        return xs_write(h, XBT_NULL, argv[2], argv[3],
                        (unsigned int)strlen(argv[3]))
                   ? 0
                   : -1;
    if (!strcmp(argv[1], "rm") && argc == 3)
        return xs_rm(h, XBT_NULL, argv[2]) ? 0 : -1;
    errno = EINVAL;
    return -2;
}

int main(int argc, char **argv)
{
    struct xs_handle *h;
    int rc, err;

    if (argc < 3)
        return usage();
    h = xs_open(0);
    if (!h) {
        printf("error: cannot open xenstore: %s\n", strerror(errno));
        return 1;
    }
    rc = run(h, argc, argv);
    err = errno;
    xs_close(h);
    if (rc == -2)
        return usage();
    if (rc < 0) {
        printf("error: %s (%s)\n", strerror(err),
               err == EACCES ? "EACCES" : "other");
        return 1;
    }
    if (strcmp(argv[1], "read"))
        printf("ok\n");
    return 0;
}
