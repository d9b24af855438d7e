/*
 * admin.h - the mediator's admin interface: a unix socket for root (what
 * vgpu-smi talks to) and, optionally, a Prometheus HTTP endpoint.
 *
 * Protocol on the unix socket: the client sends one command line, the
 * server answers and closes the connection.  Commands:
 *
 *   stats json    the snapshot as JSON (render_json)
 *   stats kv      the snapshot as key=value lines (render_kv)
 *   metrics       the snapshot in the Prometheus text format
 *   ping          "pong"
 *   help          the list of commands
 *
 * Anything else gets one line starting "error: ".  Only peers running as
 * root (or as the mediator's own uid, root in production) are answered;
 * others are closed without a word, and the socket file is mode 0600.
 *
 * Everything is non-blocking and bounded: at most ADMIN_MAX_CLIENTS open
 * connections per listener (more are closed at once), a request of at
 * most ADMIN_LINE_MAX bytes (ADMIN_HTTP_REQ_MAX for HTTP), and a client is
 * cut off ADMIN_CLIENT_TIMEOUT_MS after it connected, answered or not.  So
 * a stuck or hostile client never stalls the mediator's event loop.
 *
 * The whole interface is ONE pollable fd (an epoll fd holding the
 * listeners, the clients and a timerfd): add admin_fd() to the event loop
 * for reading and call admin_process() when it is readable.
 */
#ifndef VGPU_ADMIN_H
#define VGPU_ADMIN_H

#include "stats.h"

#define ADMIN_MAX_CLIENTS 16         /* per listener (unix, HTTP) */
#define ADMIN_LINE_MAX 256           /* a command line, its newline included */
#define ADMIN_HTTP_REQ_MAX 4096      /* an HTTP request head */
#define ADMIN_CLIENT_TIMEOUT_MS 5000 /* a connection's whole life */

/* Fills *out (zeroed by the caller) with what the mediator serves now. */
typedef void (*admin_snapshot_fn)(void *arg, struct vgpu_stats *out);

struct admin;

/*
 * Create the admin socket at socket_path: mode 0600, owned by the
 * mediator's user (root); a stale socket left there is replaced, the
 * parent folder is created when missing.  Refuses (-1) when a live server
 * answers on that path or the path is something other than a socket.
 * fn(arg, ...) is called once per request that needs a snapshot.
 * 0, or -1 with a log_err line.
 */
int admin_open(struct admin **ap, const char *socket_path, admin_snapshot_fn fn,
               void *arg);

/*
 * Also serve GET /metrics (Content-Type: text/plain; version=0.0.4) over
 * HTTP on addr_port: "127.0.0.1:9464", "[::1]:9464", or ":9464" (every
 * IPv4 address).  Other paths get 404, other methods 405.  Port 0 takes a
 * free port (see admin_metrics_port).  0, or -1 with a log_err line.
 */
int admin_listen_metrics(struct admin *a, const char *addr_port);

/* The TCP port of the metrics endpoint, or -1 when there is none. */
int admin_metrics_port(struct admin *a);

/* The one fd to watch for reading. */
int admin_fd(struct admin *a);

/* Handle whatever is ready; never blocks. */
void admin_process(struct admin *a);

/* Shorten ADMIN_CLIENT_TIMEOUT_MS (for tests); ms > 0. */
void admin_set_client_timeout(struct admin *a, unsigned ms);

/* Close every connection and listener and remove the socket file. */
void admin_close(struct admin *a);

#endif
