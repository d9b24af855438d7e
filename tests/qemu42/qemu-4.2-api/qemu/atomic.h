/* Stand-in for QEMU 4.2's qemu/atomic.h (tests/qemu42): not QEMU code.
 * 4.2 has atomic_read/atomic_set (qatomic_* are 5.2+); the device uses
 * the barriers only. */
#ifndef QEMU_ATOMIC_H
#define QEMU_ATOMIC_H
#define barrier() ({ asm volatile("" ::: "memory"); (void)0; })
#define smp_mb() ({ barrier(); __atomic_thread_fence(__ATOMIC_SEQ_CST); })
#define smp_wmb() ({ barrier(); __atomic_thread_fence(__ATOMIC_RELEASE); })
#define smp_rmb() ({ barrier(); __atomic_thread_fence(__ATOMIC_ACQUIRE); })
#endif
