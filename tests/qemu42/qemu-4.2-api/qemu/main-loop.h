/* Stand-in for QEMU 4.2's qemu/main-loop.h (tests/qemu42): not QEMU code. */
#ifndef QEMU_MAIN_LOOP_H
#define QEMU_MAIN_LOOP_H
typedef void IOHandler(void *opaque);
void qemu_set_fd_handler(int fd, IOHandler *fd_read, IOHandler *fd_write,
                         void *opaque);
void qemu_mutex_lock_iothread(void);
void qemu_mutex_unlock_iothread(void);
#endif
