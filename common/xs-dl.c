/*
 * xs-dl.c - owns the dom0 programs' binding to libxenstore: it defines the
 * xs_* functions of <xenstore.h> that vgpu-mediator, the xapi plugin and
 * vgpu-qemu-wrapper call, each forwarding to the function of that name in
 * libxenstore, loaded at run time with dlopen.
 *
 * Why at run time: XCP-ng 8.2 (Xen 4.13) has libxenstore.so.3.0 with
 * unversioned symbols, 8.3 (Xen 4.17) libxenstore.so.4 with VERS_4.0;
 * a binary linked with -lxenstore needs the one it was linked with.  The
 * calls used here exist in both with the same prototypes (the ones of the
 * <xenstore.h> included below, so the compiler checks every forwarder and
 * every function pointer against them).  Tried in order: libxenstore.so.4,
 * libxenstore.so.3.0, libxenstore.so; a library missing one of the entry
 * points is not used (the next one is tried).
 *
 * When none loads: xs_open() returns NULL with errno ELIBACC (the callers
 * handle a NULL xs_open already), every other forwarder fails the way its
 * function fails (false, NULL, -1, XBT_NULL) with that errno, the message
 * naming each library and dlerror()'s reason is written once to stderr,
 * and xs_dl_error() returns it for a caller's own log.
 *
 * The one global is `lib`, the process-wide libxenstore: its dlopen handle,
 * the entry points found in it and the load's outcome (with lib_once, the
 * pthread_once that fills it in).  A process loads the library once,
 * whatever the number of xenstore handles, and the xs_* calls have no
 * argument to carry it in, so it cannot be the caller's; it is written
 * once, under pthread_once, and only read after that, so any thread may
 * call in.
 */
#include "xs-dl.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <xenstore.h>

/* Every entry point used, each a field of the same name below. */
#define XS_DL_FUNCS(X)                                                         \
    X(xs_open)                                                                 \
    X(xs_close)                                                                \
    X(xs_fileno)                                                               \
    X(xs_read)                                                                 \
    X(xs_write)                                                                \
    X(xs_mkdir)                                                                \
    X(xs_rm)                                                                   \
    X(xs_directory)                                                            \
    X(xs_set_permissions)                                                      \
    X(xs_watch)                                                                \
    X(xs_unwatch)                                                              \
    X(xs_check_watch)                                                          \
    X(xs_transaction_start)                                                    \
    X(xs_transaction_end)                                                      \
    X(xs_is_domain_introduced)

/* Newest first: 8.3's, 8.2's, then whatever the development link names. */
static const char *const candidates[] = {
    "libxenstore.so.4", "libxenstore.so.3.0", "libxenstore.so"};

#define XS_DL_FIELD(name) __typeof__(&name) name;

static struct {
    void *handle;        /* NULL when no library loaded */
    const char *library; /* the candidate loaded */
    char error[1024];    /* why none loaded, "" when one did */
    XS_DL_FUNCS(XS_DL_FIELD)
} lib;

static pthread_once_t lib_once = PTHREAD_ONCE_INIT;

/* Append to lib.error, truncating quietly at its size. */
static void add_error(const char *what, const char *why)
{
    size_t n = strlen(lib.error);

    snprintf(lib.error + n, sizeof(lib.error) - n, "%s%s: %s", n ? "; " : "",
             what, why ? why : "unknown error");
}

/* Find every entry point in h; the name of the first missing one, or NULL. */
static const char *resolve(void *h)
{
    void *p;

#define XS_DL_RESOLVE(name)                                                    \
    p = dlsym(h, #name);                                                       \
    if (!p) {                                                                  \
        return #name;                                                          \
    }                                                                          \
    lib.name = (__typeof__(&name))p;

    XS_DL_FUNCS(XS_DL_RESOLVE)
#undef XS_DL_RESOLVE
    return NULL;
}

static void load(void)
{
    char why[256];

    for (size_t i = 0; i < sizeof(candidates) / sizeof(candidates[0]); i++) {
        void *h = dlopen(candidates[i], RTLD_NOW | RTLD_LOCAL);
        const char *missing;

        if (!h) {
            add_error(candidates[i], dlerror());
            continue;
        }
        missing = resolve(h);
        if (!missing) {
            lib.handle = h;
            lib.library = candidates[i];
            lib.error[0] = '\0';
            return;
        }
        snprintf(why, sizeof(why), "has no %s", missing);
        add_error(candidates[i], why);
        dlclose(h);
    }
    fprintf(stderr, "libxenstore not loaded (%s)\n", lib.error);
}

/* Load once; true when loaded, else false with errno ELIBACC. */
static bool loaded(void)
{
    pthread_once(&lib_once, load);
    if (!lib.handle) {
        errno = ELIBACC;
        return false;
    }
    return true;
}

const char *xs_dl_error(void)
{
    return loaded() ? NULL : lib.error;
}

const char *xs_dl_library(void)
{
    return loaded() ? lib.library : NULL;
}

/* ---------------------------------------------------------------------- */
/* the forwarders, in the order of XS_DL_FUNCS                             */
/* ---------------------------------------------------------------------- */

struct xs_handle *xs_open(unsigned long flags)
{
    return loaded() ? lib.xs_open(flags) : NULL;
}

void xs_close(struct xs_handle *xsh)
{
    /* A handle exists only when the library is loaded. */
    if (xsh && loaded()) {
        lib.xs_close(xsh);
    }
}

int xs_fileno(struct xs_handle *h)
{
    return loaded() ? lib.xs_fileno(h) : -1;
}

void *xs_read(struct xs_handle *h, xs_transaction_t t, const char *path,
              unsigned int *len)
{
    return loaded() ? lib.xs_read(h, t, path, len) : NULL;
}

bool xs_write(struct xs_handle *h, xs_transaction_t t, const char *path,
              const void *data, unsigned int len)
{
    return loaded() && lib.xs_write(h, t, path, data, len);
}

bool xs_mkdir(struct xs_handle *h, xs_transaction_t t, const char *path)
{
    return loaded() && lib.xs_mkdir(h, t, path);
}

bool xs_rm(struct xs_handle *h, xs_transaction_t t, const char *path)
{
    return loaded() && lib.xs_rm(h, t, path);
}

char **xs_directory(struct xs_handle *h, xs_transaction_t t, const char *path,
                    unsigned int *num)
{
    return loaded() ? lib.xs_directory(h, t, path, num) : NULL;
}

bool xs_set_permissions(struct xs_handle *h, xs_transaction_t t,
                        const char *path, struct xs_permissions *perms,
                        unsigned int num_perms)
{
    return loaded() && lib.xs_set_permissions(h, t, path, perms, num_perms);
}

bool xs_watch(struct xs_handle *h, const char *path, const char *token)
{
    return loaded() && lib.xs_watch(h, path, token);
}

bool xs_unwatch(struct xs_handle *h, const char *path, const char *token)
{
    return loaded() && lib.xs_unwatch(h, path, token);
}

char **xs_check_watch(struct xs_handle *h)
{
    return loaded() ? lib.xs_check_watch(h) : NULL;
}

xs_transaction_t xs_transaction_start(struct xs_handle *h)
{
    return loaded() ? lib.xs_transaction_start(h) : XBT_NULL;
}

bool xs_transaction_end(struct xs_handle *h, xs_transaction_t t, bool abort)
{
    return loaded() && lib.xs_transaction_end(h, t, abort);
}

bool xs_is_domain_introduced(struct xs_handle *h, unsigned int domid)
{
    return loaded() && lib.xs_is_domain_introduced(h, domid);
}
