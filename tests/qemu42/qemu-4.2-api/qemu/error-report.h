/* Stand-in for QEMU 4.2's qemu/error-report.h (tests/qemu42): not QEMU code. */
#ifndef QEMU_ERROR_REPORT_H
#define QEMU_ERROR_REPORT_H
void error_report(const char *fmt, ...) GCC_FMT_ATTR(1, 2);
void info_report(const char *fmt, ...) GCC_FMT_ATTR(1, 2);
#endif
