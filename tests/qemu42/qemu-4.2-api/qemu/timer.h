/* Stand-in for QEMU 4.2's qemu/timer.h (tests/qemu42): not QEMU code. */
#ifndef QEMU_TIMER_H
#define QEMU_TIMER_H
typedef enum {
    QEMU_CLOCK_REALTIME = 0,
    QEMU_CLOCK_VIRTUAL = 1,
    QEMU_CLOCK_HOST = 2,
    QEMU_CLOCK_VIRTUAL_RT = 3,
    QEMU_CLOCK_MAX
} QEMUClockType;
#define SCALE_MS 1000000
#define SCALE_US 1000
#define SCALE_NS 1
typedef void QEMUTimerCB(void *opaque);
QEMUTimer *timer_new_ns(QEMUClockType type, QEMUTimerCB *cb, void *opaque);
bool timer_pending(QEMUTimer *ts);
int64_t qemu_clock_get_ns(QEMUClockType type);
QEMUTimer *timer_new_ms(QEMUClockType type, QEMUTimerCB *cb, void *opaque);
void timer_mod(QEMUTimer *ts, int64_t expire_time);
void timer_del(QEMUTimer *ts);
void timer_free(QEMUTimer *ts);
int64_t qemu_clock_get_ms(QEMUClockType type);
#endif
