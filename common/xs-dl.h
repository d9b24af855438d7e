/*
 * xs-dl.h - what common/xs-dl.c adds to <xenstore.h>: the dom0 programs
 * (vgpu-mediator, the xapi plugin, vgpu-qemu-wrapper) call the xs_*
 * functions of <xenstore.h> as usual and link xs-dl.o instead of
 * -lxenstore; xs-dl.o finds libxenstore at run time (libxenstore.so.4 on
 * XCP-ng 8.3, libxenstore.so.3.0 on 8.2, else libxenstore.so), so one
 * binary runs on both.  These two tell which library it took, or why none.
 */
#ifndef VGPU_XS_DL_H
#define VGPU_XS_DL_H

/*
 * Load libxenstore now if not yet done (xs_open() does it too).  NULL when
 * it is loaded, else a message naming every library tried and why each
 * failed; the same string on every call.
 */
const char *xs_dl_error(void);

/* The file name of the library loaded ("libxenstore.so.4"), or NULL. */
const char *xs_dl_library(void);

#endif
