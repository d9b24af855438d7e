/* Stand-in for QEMU 4.2's qemu/bswap.h (tests/qemu42): not QEMU code. */
#ifndef QEMU_BSWAP_H
#define QEMU_BSWAP_H
int lduw_le_p(const void *ptr);
int ldl_le_p(const void *ptr);
void stw_le_p(void *ptr, uint16_t v);
void stl_le_p(void *ptr, uint32_t v);
#endif
