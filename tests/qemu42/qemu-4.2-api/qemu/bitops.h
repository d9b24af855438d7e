/* Stand-in for QEMU 4.2's qemu/bitops.h (tests/qemu42): not QEMU code. */
#ifndef QEMU_BITOPS_H
#define QEMU_BITOPS_H
#define BITS_PER_LONG (sizeof(unsigned long) * 8)
#define BITS_TO_LONGS(nr) (((nr) + BITS_PER_LONG - 1) / BITS_PER_LONG)
#define DECLARE_BITMAP(name, bits) unsigned long name[BITS_TO_LONGS(bits)]
void set_bit(long nr, unsigned long *addr);
#endif
