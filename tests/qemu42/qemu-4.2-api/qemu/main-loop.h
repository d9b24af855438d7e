/* Stand-in for QEMU 4.2's qemu/main-loop.h (tests/qemu42): not QEMU code. */
#ifndef QEMU_MAIN_LOOP_H
#define QEMU_MAIN_LOOP_H
typedef void IOHandler(void *opaque);
void qemu_set_fd_handler(int fd, IOHandler *fd_read, IOHandler *fd_write,
                         void *opaque);
/* QEMUBHFunc and qemu_bh_schedule/delete are block/aio.h's in 4.2,
 * which main-loop.h includes */
typedef void QEMUBHFunc(void *opaque);
QEMUBH *qemu_bh_new(QEMUBHFunc *cb, void *opaque);
void qemu_bh_schedule(QEMUBH *bh);
void qemu_bh_delete(QEMUBH *bh);
void qemu_mutex_lock_iothread(void);
void qemu_mutex_unlock_iothread(void);
#endif
