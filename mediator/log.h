/*
 * log.h - the mediator's logging: syslog (the journal under systemd) or
 * stderr when run in the foreground by hand or by tests.
 */
#ifndef VGPU_LOG_H
#define VGPU_LOG_H

#include <stdbool.h>
#include <syslog.h>

enum vgpu_log_sink {
    VGPU_LOG_STDERR = 0,
    VGPU_LOG_SYSLOG = 1,
};

void vgpu_log_open(const char *ident, enum vgpu_log_sink sink, int max_level);
void vgpu_log(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Would a line of level be written?  For callers that pay for a line
 * (a rate-limit token) before writing it. */
bool vgpu_log_wants(int level);

#define log_err(...) vgpu_log(LOG_ERR, __VA_ARGS__)
#define log_warn(...) vgpu_log(LOG_WARNING, __VA_ARGS__)
#define log_info(...) vgpu_log(LOG_INFO, __VA_ARGS__)
#define log_debug(...) vgpu_log(LOG_DEBUG, __VA_ARGS__)

#endif
