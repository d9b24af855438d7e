/* Stand-in for QEMU 4.2's qemu/bswap.h (tests/qemu42): not QEMU code. */
#ifndef QEMU_BSWAP_H
#define QEMU_BSWAP_H
int lduw_le_p(const void *ptr);
int ldl_le_p(const void *ptr);
void stw_le_p(void *ptr, uint16_t v);
void stl_le_p(void *ptr, uint32_t v);
/* 4.2 defines these as static inline functions (CPU_CONVERT) */
uint32_t le32_to_cpu(uint32_t v);
uint32_t cpu_to_le32(uint32_t v);
#endif
