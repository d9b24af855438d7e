/* Stand-in for QEMU 4.2's exec/hwaddr.h (tests/qemu42): not QEMU code. */
#ifndef HWADDR_H
#define HWADDR_H
typedef uint64_t hwaddr;
#define HWADDR_PRIx PRIx64
#endif
