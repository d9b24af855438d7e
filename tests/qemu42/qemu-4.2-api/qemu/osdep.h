/* Stand-in for QEMU 4.2's qemu/osdep.h (tests/qemu42): not QEMU code. */
#ifndef QEMU_OSDEP_H
#define QEMU_OSDEP_H
#include "config-host.h"
#include "qemu/compiler.h"
#include <stdarg.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <inttypes.h>
#include <limits.h>
#include <unistd.h>
#include <time.h>
#include <errno.h>
#include <fcntl.h>
#include <assert.h>

/* glib (4.2 includes glib-compat.h): the few calls the device makes */
typedef char gchar;
void *g_malloc(size_t n_bytes);
void *g_malloc0(size_t n_bytes);
gchar *g_strdup(const gchar *str);
void g_free(void *mem);

/* 4.2's osdep.h */
#ifndef MIN
#define MIN(a, b) (((a) < (b)) ? (a) : (b))
#endif
#ifndef MAX
#define MAX(a, b) (((a) > (b)) ? (a) : (b))
#endif
#define ARRAY_SIZE(x) (sizeof(x) / sizeof((x)[0]))

typedef struct Error Error;
typedef struct DeviceState DeviceState;
typedef struct MemoryRegion MemoryRegion;
typedef struct PCIDevice PCIDevice;
typedef struct Property Property;
typedef struct QEMUTimer QEMUTimer;
typedef struct QEMUBH QEMUBH;
typedef struct VMStateDescription VMStateDescription;
typedef struct Object Object;
typedef struct ObjectClass ObjectClass;
#endif
