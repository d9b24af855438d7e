/*
 * admin.c - owns the mediator's admin interface: the root-only unix
 * socket that vgpu-smi talks to, the optional Prometheus HTTP endpoint,
 * their connections, and the timer that cuts slow ones off.  The protocol
 * is described in admin.h and docs/vgpu-smi.md.
 *
 * Everything lives in one inner epoll fd so that the mediator watches a
 * single fd.  Every socket is non-blocking; a connection reads its request
 * into a fixed buffer, gets its whole answer rendered into memory at once,
 * and is then written out as the peer reads, until its deadline.
 */
#include "admin.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "render.h"
#include "util.h"

#define ADMIN_ACCEPT_BATCH 16 /* accepts per listener per admin_process */
#define ADMIN_EVENTS 32

enum ep_kind {
    EP_UNIX_LISTEN,
    EP_HTTP_LISTEN,
    EP_TIMER,
    EP_CLIENT,
};

/* What an epoll event's data.ptr points at: the first member of each. */
struct endpoint {
    enum ep_kind kind;
};

enum client_type {
    CLIENT_UNIX = 0,
    CLIENT_HTTP = 1,
};

struct client {
    struct endpoint ep; /* first */
    struct client *next;
    int fd;
    enum client_type type;
    bool answering; /* the request is in, out holds the answer */
    uint64_t deadline_ns;
    size_t in_len;
    char in[ADMIN_HTTP_REQ_MAX + 1];
    struct rbuf out;
    size_t out_off;
};

struct admin {
    int epfd;
    int timer_fd;
    int unix_fd;
    int http_fd;
    int http_port;
    struct endpoint unix_ep, http_ep, timer_ep;
    char *path;
    dev_t sock_dev; /* the socket file we created, to remove only it */
    ino_t sock_ino;
    admin_snapshot_fn fn;
    void *arg;
    struct client *clients;
    unsigned nclients[2]; /* by enum client_type */
    bool paused;          /* listeners off after EMFILE, until the timer */
    bool timer_armed;
    uint64_t timeout_ns;
};

/* Adds fd to the inner epoll, saying so when it cannot. */
static int watch(struct admin *a, int fd, struct endpoint *ep, uint32_t events)
{
    if (ep_add(a->epfd, fd, ep, events)) {
        log_err("admin: epoll_ctl add: %s", strerror(errno));
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------------- */
/* the timer: runs while connections are open or listeners are paused     */
/* ---------------------------------------------------------------------- */

/* force: re-arm even if armed already (the tick changed). */
static void timer_update(struct admin *a, bool force)
{
    bool want = a->clients || a->paused;
    uint64_t tick = a->timeout_ns / 4;
    struct itimerspec its;

    if (want == a->timer_armed && !force) {
        return;
    }
    memset(&its, 0, sizeof(its));
    if (want) {
        if (tick < 10000000u) {
            tick = 10000000u;
        } else if (tick > 1000000000u) {
            tick = 1000000000u;
        }
        its.it_value.tv_sec = (time_t)(tick / 1000000000u);
        its.it_value.tv_nsec = (long)(tick % 1000000000u);
        its.it_interval = its.it_value;
    }
    if (timerfd_settime(a->timer_fd, 0, &its, NULL) == 0) {
        a->timer_armed = want;
    }
}

/* ---------------------------------------------------------------------- */
/* connections                                                             */
/* ---------------------------------------------------------------------- */

static void client_free(struct admin *a, struct client *c)
{
    struct client **pp;

    for (pp = &a->clients; *pp; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    }
    epoll_ctl(a->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    a->nclients[c->type]--;
    rbuf_free(&c->out);
    free(c);
}

static void client_add(struct admin *a, int fd, enum client_type type)
{
    struct client *c = calloc(1, sizeof(*c));

    if (!c) {
        close(fd);
        return;
    }
    c->ep.kind = EP_CLIENT;
    c->fd = fd;
    c->type = type;
    c->deadline_ns = now_ns() + a->timeout_ns;
    rbuf_init(&c->out, RENDER_OUTPUT_MAX + ADMIN_HTTP_REQ_MAX);
    if (watch(a, fd, &c->ep, EPOLLIN | EPOLLRDHUP)) {
        close(fd);
        free(c);
        return;
    }
    c->next = a->clients;
    a->clients = c;
    a->nclients[type]++;
}

/* Write what the peer takes now; the connection ends when all is out. */
static void client_write(struct admin *a, struct client *c)
{
    while (c->out_off < c->out.len) {
        ssize_t n = send(c->fd, c->out.data + c->out_off,
                         c->out.len - c->out_off, MSG_NOSIGNAL);

        if (n > 0) {
            c->out_off += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            ep_mod(a->epfd, c->fd, &c->ep, EPOLLOUT);
            return;
        } else {
            break;
        }
    }
    client_free(a, c);
}

/* The snapshot in one format; 0, or -1 when it could not be made. */
static int render_snapshot(struct admin *a,
                           int (*render)(const struct vgpu_stats *,
                                         struct rbuf *),
                           struct rbuf *out)
{
    struct vgpu_stats *s = calloc(1, sizeof(*s));
    int rc;

    if (!s) {
        return -1;
    }
    a->fn(a->arg, s);
    rc = render(s, out);
    free(s);
    return rc;
}

/* ---- the unix socket's commands ---- */

static const char admin_help[] =
    "commands (one line each; the answer ends with the connection):\n"
    "  stats json   the mediator, its GPUs and VMs as JSON\n"
    "  stats kv     the same as key=value lines (what vgpu-smi reads)\n"
    "  metrics      the same in the Prometheus text format 0.0.4\n"
    "  ping         answers \"pong\"\n"
    "  help         this list\n";

/* The command, its line end and surrounding blanks cut off, in place. */
static char *command_text(struct client *c)
{
    char *s = c->in, *end;

    end = memchr(s, '\n', c->in_len);
    if (!end) {
        end = s + c->in_len;
    }
    *end = '\0';
    while (*s == ' ' || *s == '\t') {
        s++;
    }
    while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r')) {
        *--end = '\0';
    }
    return s;
}

/* An error line naming the command, with only printable ASCII of it. */
static void unknown_command(struct rbuf *out, const char *cmd)
{
    char shown[40];
    size_t i;

    for (i = 0; cmd[i] && i < sizeof(shown) - 1; i++) {
        unsigned char ch = (unsigned char)cmd[i];

        shown[i] = ch >= 0x20 && ch < 0x7f && ch != '"' ? (char)ch : '?';
    }
    shown[i] = '\0';
    rbuf_printf(out, "error: unknown command \"%s%s\" (try \"help\")\n", shown,
                cmd[i] ? "..." : "");
}

static void unix_answer(struct admin *a, struct client *c)
{
    const char *cmd = command_text(c);
    int rc = 0;

    if (!strcmp(cmd, "stats json")) {
        rc = render_snapshot(a, render_json, &c->out);
    } else if (!strcmp(cmd, "stats kv")) {
        rc = render_snapshot(a, render_kv, &c->out);
    } else if (!strcmp(cmd, "metrics")) {
        rc = render_snapshot(a, render_prometheus, &c->out);
    } else if (!strcmp(cmd, "ping")) {
        rbuf_puts(&c->out, "pong\n");
    } else if (!strcmp(cmd, "help")) {
        rbuf_puts(&c->out, admin_help);
    } else {
        unknown_command(&c->out, cmd);
    }
    if (rc || c->out.failed) {
        rbuf_reset(&c->out);
        rbuf_puts(&c->out, "error: out of memory\n");
    }
}

/* ---- HTTP ---- */

static void http_reply(struct rbuf *out, const char *status,
                       const char *extra_headers, const struct rbuf *body,
                       bool head_only)
{
    rbuf_printf(out,
                "HTTP/1.1 %s\r\n"
                "Content-Type: %s\r\n"
                "Content-Length: %zu\r\n"
                "%s"
                "Connection: close\r\n\r\n",
                status,
                strncmp(status, "200", 3)
                    ? "text/plain; charset=utf-8"
                    : "text/plain; version=0.0.4; charset=utf-8",
                body->len, extra_headers);
    if (!head_only && body->len) {
        rbuf_add(out, body->data, body->len);
    }
}

/* Split "METHOD TARGET VERSION" off the head; false when malformed. */
static bool http_request_line(char *head, char **method, char **path)
{
    char *sp1, *sp2, *eol, *query;

    eol = strpbrk(head, "\r\n");
    if (eol) {
        *eol = '\0';
    }
    sp1 = strchr(head, ' ');
    if (!sp1) {
        return false;
    }
    *sp1 = '\0';
    sp2 = strchr(sp1 + 1, ' ');
    if (!sp2 || strncmp(sp2 + 1, "HTTP/", 5)) {
        return false;
    }
    *sp2 = '\0';
    query = strchr(sp1 + 1, '?');
    if (query) {
        *query = '\0';
    }
    *method = head;
    *path = sp1 + 1;
    return true;
}

static void http_answer(struct admin *a, struct client *c, bool too_long)
{
    struct rbuf body;
    char *method, *path;
    const char *status;
    bool head = false;

    rbuf_init(&body, RENDER_OUTPUT_MAX);
    c->in[c->in_len] = '\0';
    if (too_long) {
        status = "431 Request Header Fields Too Large";
        rbuf_puts(&body, "request head too large\n");
    } else if (memchr(c->in, '\0', c->in_len) ||
               !http_request_line(c->in, &method, &path)) {
        status = "400 Bad Request";
        rbuf_puts(&body, "bad request\n");
    } else if (strcmp(method, "GET") && strcmp(method, "HEAD")) {
        status = "405 Method Not Allowed";
        rbuf_puts(&body, "only GET and HEAD\n");
    } else if (strcmp(path, "/metrics")) {
        status = "404 Not Found";
        rbuf_puts(&body, "not found: the metrics are at /metrics\n");
    } else if (render_snapshot(a, render_prometheus, &body)) {
        status = "500 Internal Server Error";
        rbuf_reset(&body);
        rbuf_puts(&body, "out of memory\n");
    } else {
        status = "200 OK";
        head = !strcmp(method, "HEAD");
    }
    http_reply(&c->out, status,
               strncmp(status, "405", 3) ? "" : "Allow: GET, HEAD\r\n", &body,
               head);
    rbuf_free(&body);
}

static bool http_head_complete(const struct client *c)
{
    return memmem(c->in, c->in_len, "\r\n\r\n", 4) ||
           memmem(c->in, c->in_len, "\n\n", 2);
}

/* ---- reading requests ---- */

static void client_answer(struct admin *a, struct client *c, bool too_long)
{
    c->answering = true;
    if (c->type == CLIENT_HTTP) {
        http_answer(a, c, too_long);
    } else if (too_long) {
        rbuf_printf(&c->out,
                    "error: request line too long (at most %d bytes)\n",
                    ADMIN_LINE_MAX - 1);
    } else {
        unix_answer(a, c);
    }
    if (c->out.failed) {
        client_free(a, c);
        return;
    }
    client_write(a, c);
}

static bool request_complete(const struct client *c)
{
    if (c->type == CLIENT_HTTP) {
        return http_head_complete(c);
    }
    return memchr(c->in, '\n', c->in_len) != NULL;
}

static void client_read(struct admin *a, struct client *c)
{
    size_t cap = c->type == CLIENT_HTTP ? ADMIN_HTTP_REQ_MAX : ADMIN_LINE_MAX;

    for (;;) {
        ssize_t n = recv(c->fd, c->in + c->in_len, cap - c->in_len, 0);

        if (n > 0) {
            c->in_len += (size_t)n;
            if (request_complete(c)) {
                client_answer(a, c, false);
                return;
            }
            if (c->in_len == cap) {
                client_answer(a, c, true);
                return;
            }
        } else if (n == 0) {
            /* A command line may end with the client's end of sending. */
            if (c->type == CLIENT_UNIX && c->in_len) {
                client_answer(a, c, false);
            } else {
                client_free(a, c);
            }
            return;
        } else if (errno == EINTR) {
            continue;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            return;
        } else {
            client_free(a, c);
            return;
        }
    }
}

static void on_client(struct admin *a, struct client *c, uint32_t events)
{
    if (c->answering) {
        client_write(a, c);
    } else if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
        client_read(a, c);
    }
}

/* ---- accepting ---- */

/* Root, or the mediator's own user (root in production). */
static bool peer_allowed(int fd)
{
    uid_t uid;
    pid_t pid;

    if (peer_cred(fd, &uid, &pid)) {
        log_warn("admin: SO_PEERCRED: %s", strerror(errno));
        return false;
    }
    if (uid == 0 || uid == geteuid()) {
        return true;
    }
    log_warn("admin: refusing connection from uid %u (pid %d): root only",
             (unsigned)uid, (int)pid);
    return false;
}

static void pause_listeners(struct admin *a)
{
    log_warn("admin: out of file descriptors; not accepting for a while");
    a->paused = true;
    ep_mod(a->epfd, a->unix_fd, &a->unix_ep, 0);
    if (a->http_fd >= 0) {
        ep_mod(a->epfd, a->http_fd, &a->http_ep, 0);
    }
}

static void resume_listeners(struct admin *a)
{
    a->paused = false;
    ep_mod(a->epfd, a->unix_fd, &a->unix_ep, EPOLLIN);
    if (a->http_fd >= 0) {
        ep_mod(a->epfd, a->http_fd, &a->http_ep, EPOLLIN);
    }
}

static void on_listener(struct admin *a, enum client_type type)
{
    int lfd = type == CLIENT_HTTP ? a->http_fd : a->unix_fd;

    for (int i = 0; i < ADMIN_ACCEPT_BATCH; i++) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
                errno == ENOMEM) {
                pause_listeners(a);
            }
            return; /* EAGAIN, ECONNABORTED, EINTR: later */
        }
        if (type == CLIENT_UNIX && !peer_allowed(fd)) {
            close(fd);
        } else if (a->nclients[type] >= ADMIN_MAX_CLIENTS) {
            log_debug("admin: too many connections; closing a new one");
            close(fd);
        } else {
            client_add(a, fd, type);
        }
    }
}

/* Cut off every connection past its deadline. */
static void expire_clients(struct admin *a)
{
    uint64_t now = now_ns();
    struct client *c = a->clients, *next;

    for (; c; c = next) {
        next = c->next;
        if (now >= c->deadline_ns) {
            log_debug("admin: connection timed out");
            client_free(a, c);
        }
    }
}

static void on_timer(struct admin *a)
{
    uint64_t ticks;

    while (read(a->timer_fd, &ticks, sizeof(ticks)) > 0) {
    }
    if (a->paused) {
        resume_listeners(a);
    }
}

void admin_process(struct admin *a)
{
    struct epoll_event evs[ADMIN_EVENTS];
    int n = epoll_wait(a->epfd, evs, ADMIN_EVENTS, 0);

    /*
     * Each event names a distinct endpoint, and handling a client frees
     * at most that client, so later events of the batch stay valid.
     */
    for (int i = 0; i < n; i++) {
        struct endpoint *ep = evs[i].data.ptr;

        switch (ep->kind) {
        case EP_UNIX_LISTEN:
            on_listener(a, CLIENT_UNIX);
            break;
        case EP_HTTP_LISTEN:
            on_listener(a, CLIENT_HTTP);
            break;
        case EP_TIMER:
            on_timer(a);
            break;
        case EP_CLIENT:
            on_client(a, (struct client *)ep, evs[i].events);
            break;
        }
    }
    expire_clients(a);
    timer_update(a, false);
}

/* ---------------------------------------------------------------------- */
/* the unix socket                                                         */
/* ---------------------------------------------------------------------- */

static int unix_addr(const char *path, struct sockaddr_un *sun)
{
    memset(sun, 0, sizeof(*sun));
    sun->sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sun->sun_path)) {
        return -1;
    }
    memcpy(sun->sun_path, path, strlen(path));
    return 0;
}

/* True when something accepts connections on the socket at path. */
static bool socket_alive(const struct sockaddr_un *sun)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    bool alive;

    if (fd < 0) {
        return false;
    }
    alive = connect(fd, (const struct sockaddr *)sun, sizeof(*sun)) == 0 ||
            errno == EAGAIN;
    close(fd);
    return alive;
}

/* Remove a socket a dead mediator left at path; -1 if we must not. */
static int remove_stale(const char *path, const struct sockaddr_un *sun)
{
    struct stat st;

    if (lstat(path, &st)) {
        return errno == ENOENT ? 0 : -1;
    }
    if (!S_ISSOCK(st.st_mode)) {
        log_err("admin: %s exists and is not a socket; leaving it alone", path);
        return -1;
    }
    if (socket_alive(sun)) {
        log_err("admin: %s is in use (is another vgpu-mediator running?)",
                path);
        return -1;
    }
    if (unlink(path) && errno != ENOENT) {
        log_err("admin: cannot remove the stale %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

static int open_unix_listener(struct admin *a)
{
    struct sockaddr_un sun;
    struct stat st;
    int fd;

    if (unix_addr(a->path, &sun)) {
        log_err("admin: socket path too long: %s", a->path);
        return -1;
    }
    if (make_parent_dir(a->path)) {
        log_err("admin: cannot create the folder of %s: %s", a->path,
                strerror(errno));
        return -1;
    }
    if (remove_stale(a->path, &sun)) {
        return -1;
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        log_err("admin: socket: %s", strerror(errno));
        return -1;
    }
    if (bind(fd, (struct sockaddr *)&sun, sizeof(sun))) {
        log_err("admin: bind %s: %s", a->path, strerror(errno));
        goto err_close_sock;
    }
    /* Nobody can connect before listen(): fix the mode first. */
    if (chmod(a->path, 0600) || stat(a->path, &st)) {
        log_err("admin: chmod %s: %s", a->path, strerror(errno));
        goto err_unlink;
    }
    if (listen(fd, ADMIN_MAX_CLIENTS)) {
        log_err("admin: listen %s: %s", a->path, strerror(errno));
        goto err_unlink;
    }
    a->sock_dev = st.st_dev;
    a->sock_ino = st.st_ino;
    a->unix_fd = fd;
    return 0;

err_unlink:
    unlink(a->path);
err_close_sock:
    close(fd);
    return -1;
}

int admin_open(struct admin **ap, const char *socket_path, admin_snapshot_fn fn,
               void *arg)
{
    struct admin *a = calloc(1, sizeof(*a));

    if (!a) {
        log_err("admin: out of memory");
        return -1;
    }
    a->epfd = a->timer_fd = a->unix_fd = a->http_fd = a->http_port = -1;
    a->unix_ep.kind = EP_UNIX_LISTEN;
    a->http_ep.kind = EP_HTTP_LISTEN;
    a->timer_ep.kind = EP_TIMER;
    a->fn = fn;
    a->arg = arg;
    a->timeout_ns = (uint64_t)ADMIN_CLIENT_TIMEOUT_MS * 1000000u;
    a->path = strdup(socket_path);
    if (!a->path) {
        log_err("admin: out of memory");
        goto err_free;
    }
    a->epfd = epoll_create1(EPOLL_CLOEXEC);
    a->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (a->epfd < 0 || a->timer_fd < 0) {
        log_err("admin: epoll/timerfd: %s", strerror(errno));
        goto err_close;
    }
    if (watch(a, a->timer_fd, &a->timer_ep, EPOLLIN) || open_unix_listener(a)) {
        goto err_close;
    }
    if (watch(a, a->unix_fd, &a->unix_ep, EPOLLIN)) {
        goto err_close;
    }
    log_info("admin: listening on %s (root only)", a->path);
    *ap = a;
    return 0;

err_close:
    admin_close(a);
    return -1;
err_free:
    free(a);
    return -1;
}

/* ---------------------------------------------------------------------- */
/* the HTTP endpoint                                                       */
/* ---------------------------------------------------------------------- */

/* "host:port", ":port" or "[v6]:port" into host (may be "") and port. */
static int split_addr(const char *addr_port, char *host, size_t hostlen,
                      const char **port)
{
    const char *colon = strrchr(addr_port, ':');
    const char *h = addr_port;
    size_t n;

    if (!colon || !colon[1]) {
        return -1;
    }
    n = (size_t)(colon - addr_port);
    if (n && h[0] == '[') {
        if (n < 2 || h[n - 1] != ']') {
            return -1;
        }
        h++;
        n -= 2;
    } else if (memchr(h, ':', n)) {
        return -1; /* an IPv6 address needs its brackets */
    }
    if (n >= hostlen) {
        return -1;
    }
    memcpy(host, h, n);
    host[n] = '\0';
    *port = colon + 1;
    return 0;
}

static int bound_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);

    if (getsockname(fd, (struct sockaddr *)&ss, &len)) {
        return -1;
    }
    if (ss.ss_family == AF_INET6) {
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    }
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

static int tcp_listener(const struct addrinfo *ai)
{
    int one = 1;
    int fd = socket(ai->ai_family,
                    ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    if (fd < 0) {
        return -1;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) ||
        listen(fd, ADMIN_MAX_CLIENTS)) {
        goto err_close_sock;
    }
    return fd;

err_close_sock:
    close(fd);
    return -1;
}

int admin_listen_metrics(struct admin *a, const char *addr_port)
{
    struct addrinfo hints = {0}, *ai = NULL;
    char host[64];
    const char *port;
    int rc, fd;

    if (a->http_fd >= 0) {
        log_err("admin: the metrics endpoint is already open");
        return -1;
    }
    if (split_addr(addr_port, host, sizeof(host), &port) ||
        strspn(port, "0123456789") != strlen(port) || strlen(port) > 5 ||
        atoi(port) > 65535) {
        log_err("admin: bad metrics address \"%s\" (want ADDR:PORT or :PORT)",
                addr_port);
        return -1;
    }
    hints.ai_family = host[0] ? AF_UNSPEC : AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV;
    rc = getaddrinfo(host[0] ? host : NULL, port, &hints, &ai);
    if (rc) {
        log_err("admin: bad metrics address \"%s\": %s", addr_port,
                gai_strerror(rc));
        return -1;
    }
    fd = tcp_listener(ai);
    freeaddrinfo(ai);
    if (fd < 0) {
        log_err("admin: cannot listen on %s: %s", addr_port, strerror(errno));
        return -1;
    }
    if (watch(a, fd, &a->http_ep, a->paused ? 0 : EPOLLIN)) {
        close(fd);
        return -1;
    }
    a->http_fd = fd;
    a->http_port = bound_port(fd);
    log_info("admin: Prometheus metrics at http://%s%s%s:%d/metrics",
             strchr(host, ':') ? "[" : "", host[0] ? host : "0.0.0.0",
             strchr(host, ':') ? "]" : "", a->http_port);
    return 0;
}

int admin_metrics_port(struct admin *a)
{
    return a->http_port;
}

int admin_fd(struct admin *a)
{
    return a->epfd;
}

void admin_set_client_timeout(struct admin *a, unsigned ms)
{
    a->timeout_ns = (uint64_t)(ms ? ms : 1) * 1000000u;
    timer_update(a, true);
}

/* Remove the socket file only if it is still the one we created. */
static void unlink_own_socket(struct admin *a)
{
    struct stat st;

    if (a->unix_fd < 0 || lstat(a->path, &st)) {
        return;
    }
    if (st.st_dev == a->sock_dev && st.st_ino == a->sock_ino) {
        unlink(a->path);
    }
}

void admin_close(struct admin *a)
{
    if (!a) {
        return;
    }
    while (a->clients) {
        client_free(a, a->clients);
    }
    unlink_own_socket(a);
    if (a->unix_fd >= 0) {
        close(a->unix_fd);
    }
    if (a->http_fd >= 0) {
        close(a->http_fd);
    }
    if (a->timer_fd >= 0) {
        close(a->timer_fd);
    }
    if (a->epfd >= 0) {
        close(a->epfd);
    }
    free(a->path);
    free(a);
}
