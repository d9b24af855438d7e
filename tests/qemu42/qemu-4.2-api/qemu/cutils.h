/* Stand-in for QEMU 4.2's qemu/cutils.h (tests/qemu42): not QEMU code. */
#ifndef QEMU_CUTILS_H
#define QEMU_CUTILS_H
void pstrcpy(char *buf, int buf_size, const char *str);
#endif
