/* Stand-in for QEMU 4.2's qemu/compiler.h (tests/qemu42): not QEMU code. */
#ifndef QEMU_COMPILER_H
#define QEMU_COMPILER_H
#define GCC_FMT_ATTR(n, m) __attribute__((format(gnu_printf, n, m)))
#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
#define QEMU_BUILD_BUG_ON(x) _Static_assert(!(x), "not expecting: " #x)
#define stringify(s) tostring(s)
#define tostring(s) #s
#define typeof_field(type, field) typeof(((type *)0)->field)
/* 0, and a compile error unless t1 and t2 are compatible types */
#define type_check(t1, t2) (0 * sizeof((typeof(t1) *)0 - (typeof(t2) *)0))
#endif
