/* Stand-in for QEMU 4.2's qemu/module.h (tests/qemu42): not QEMU code. */
#ifndef QEMU_MODULE_H
#define QEMU_MODULE_H
typedef enum {
    MODULE_INIT_MIGRATION,
    MODULE_INIT_BLOCK,
    MODULE_INIT_OPTS,
    MODULE_INIT_QOM,
    MODULE_INIT_TRACE,
    MODULE_INIT_XEN_BACKEND,
    MODULE_INIT_MAX
} module_init_type;
void register_module_init(void (*fn)(void), module_init_type type);
#define module_init(function, type)                                      \
    static void __attribute__((constructor)) do_qemu_init_ ## function(void) \
    {                                                                    \
        register_module_init(function, type);                            \
    }
#define type_init(function) module_init(function, MODULE_INIT_QOM)
#endif
