/* Stand-in for QEMU 4.2's qapi/error.h (tests/qemu42): not QEMU code. */
#ifndef QAPI_ERROR_H
#define QAPI_ERROR_H
void error_setg_internal(Error **errp, const char *src, int line,
                         const char *func, const char *fmt, ...)
    GCC_FMT_ATTR(5, 6);
#define error_setg(errp, fmt, ...) \
    error_setg_internal((errp), __FILE__, __LINE__, __func__, \
                        (fmt), ## __VA_ARGS__)
void error_propagate(Error **dst_errp, Error *local_err);
#endif
