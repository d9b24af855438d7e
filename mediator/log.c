/*
 * log.c - owns where the mediator's log lines go.
 *
 * The daemon has exactly one log sink for its whole life, chosen by main()
 * before anything else runs, so it is kept here rather than threaded
 * through every call.  Lines sent to stderr carry the level name so that
 * tests can grep them; syslog gets the level as its priority.
 */
#include "log.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>

#include "util.h"

static enum vgpu_log_sink log_sink = VGPU_LOG_STDERR;
static int log_max_level = LOG_INFO;
static const char *log_ident = "vgpu";

void vgpu_log_open(const char *ident, enum vgpu_log_sink sink, int max_level)
{
    log_ident = ident;
    log_sink = sink;
    log_max_level = max_level;
    if (sink == VGPU_LOG_SYSLOG) {
        openlog(ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
        setlogmask(LOG_UPTO(max_level));
    }
}

bool vgpu_log_wants(int level)
{
    return level <= log_max_level;
}

static const char *level_name(int level)
{
    switch (level) {
    case LOG_ERR:
        return "error";
    case LOG_WARNING:
        return "warning";
    case LOG_INFO:
        return "info";
    default:
        return "debug";
    }
}

void vgpu_log(int level, const char *fmt, ...)
{
    va_list ap;

    if (level > log_max_level) {
        return;
    }
    va_start(ap, fmt);
    if (log_sink == VGPU_LOG_SYSLOG) {
        vsyslog(level, fmt, ap);
    } else {
        uint64_t ms = now_ms();

        /* Threads log too (xenstore, backends): one line stays whole. */
        flockfile(stderr);
        fprintf(stderr, "%s[%" PRIu64 ".%03u] %s: ", log_ident, ms / 1000,
                (unsigned)(ms % 1000), level_name(level));
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        fflush(stderr);
        funlockfile(stderr);
    }
    va_end(ap);
}
