/* Stand-in for QEMU 4.2's qemu/log.h (tests/qemu42): not QEMU code. */
#ifndef QEMU_LOG_H
#define QEMU_LOG_H
extern int qemu_loglevel;
#define LOG_GUEST_ERROR (1 << 11)
int qemu_log(const char *fmt, ...) GCC_FMT_ATTR(1, 2);
#define qemu_loglevel_mask(b) ((qemu_loglevel & (b)) != 0)
#define qemu_log_mask(MASK, FMT, ...)                   \
    do {                                                \
        if (unlikely(qemu_loglevel_mask(MASK))) {       \
            qemu_log(FMT, ## __VA_ARGS__);              \
        }                                               \
    } while (0)
#endif
