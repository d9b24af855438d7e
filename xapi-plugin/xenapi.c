/*
 * xenapi.c - XenAPI over XML-RPC: the URL, a small HTTP/1.1 client (one
 * POST per call on a fresh connection, over xapi's unix socket or TCP),
 * the session, result decoding and the VM calls vgpu uses.  See xenapi.h.
 *
 * The HTTP side reads what xapi and Python's http.server send: a status
 * line and headers (at most HTTP_MAX_HEAD bytes in all), then a body
 * delimited by Content-Length, by chunked transfer coding, or by the end
 * of the connection (we send Connection: close), never more than
 * XR_MAX_RESPONSE bytes.  Every connect, write and read waits in poll()
 * against the call's deadline, so a stuck xapi costs at most timeout_s.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "xenapi.h"
#include "util.h"

/* Status line and headers together, and one line of them. */
#define HTTP_MAX_HEAD (16 * 1024)
#define HTTP_MAX_LINE (8 * 1024)
/* 1xx interim answers skipped before giving up. */
#define HTTP_MAX_INTERIM 4

#ifndef VGPU_VERSION
#define VGPU_VERSION "0"
#endif

static void fail(struct xenapi *x, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail(struct xenapi *x, const char *code, const char *fmt, ...)
{
    va_list ap;

    snprintf(x->err_code, sizeof(x->err_code), "%s", code ? code : "");
    va_start(ap, fmt);
    vsnprintf(x->err, sizeof(x->err), fmt, ap);
    va_end(ap);
}

/* ---------------------------------------------------------------------- */
/* configuration                                                           */
/* ---------------------------------------------------------------------- */

static int port_ok(const char *p, size_t n)
{
    unsigned long v = 0;

    if (n == 0 || n > 5)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return 0;
        v = v * 10 + (unsigned long)(p[i] - '0');
    }
    return v >= 1 && v <= 65535;
}

/* http://host[:port][/path], host a name, IPv4 or [IPv6]; no userinfo. */
static int parse_http_url(struct xenapi *x, const char *url)
{
    const char *a = url + 7, *end, *hs, *he, *ps = NULL;
    size_t hn;

    end = a + strcspn(a, "/");
    if (*a == '[') {
        hs = a + 1;
        he = memchr(hs, ']', (size_t)(end - hs));
        if (!he || he == hs)
            return -1;
        if (he + 1 < end) {
            if (he[1] != ':')
                return -1;
            ps = he + 2;
        }
    } else {
        hs = a;
        he = memchr(a, ':', (size_t)(end - a));
        if (he)
            ps = he + 1;
        else
            he = end;
    }
    hn = (size_t)(he - hs);
    if (hn == 0 || hn > 253)
        return -1;
    for (const char *c = hs; c < he; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
              (*c >= '0' && *c <= '9') || *c == '.' || *c == '-' ||
              (*a == '[' && *c == ':')))
            return -1;
    if (ps && !port_ok(ps, (size_t)(end - ps)))
        return -1;
    /* the request target goes on the request line as it is */
    for (const char *c = end; *c; c++)
        if ((unsigned char)*c <= ' ' || (unsigned char)*c >= 0x7f)
            return -1;
    x->host = strndup(hs, hn);
    x->port = ps ? strndup(ps, (size_t)(end - ps)) : strdup("80");
    x->path = strdup(*end ? end : "/");
    return 0;
}

int xenapi_init(struct xenapi *x, const char *url)
{
    memset(x, 0, sizeof(*x));
    x->timeout_s = XENAPI_CALL_TIMEOUT_S;
    x->connect_timeout_s = XENAPI_CONNECT_TIMEOUT_S;
    if (!url)
        url = getenv(XENAPI_URL_ENV);
    if (!url || !url[0])
        url = XENAPI_URL_DEFAULT;
    if (!strncmp(url, "unix:", 5)) {
        if (url[5] != '/') {
            fail(x, NULL, "bad xapi URL '%.200s' (want unix:/path)", url);
            return -1;
        }
        if (strlen(url + 5) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
            fail(x, NULL, "xapi socket path '%.200s' is too long", url + 5);
            return -1;
        }
        x->sock_path = strdup(url + 5);
        x->path = strdup("/");
        if (!x->sock_path)
            goto oom;
    } else if (!strncmp(url, "http://", 7)) {
        if (parse_http_url(x, url) < 0) {
            fail(x, NULL,
                 "bad xapi URL '%.200s' (want http://host[:port][/path])", url);
            return -1;
        }
        if (!x->host || !x->port)
            goto oom;
    } else if (!strncmp(url, "https://", 8)) {
        /* there is no TLS here; say so rather than talk plain HTTP */
        fail(x, NULL,
             "xapi URL '%.200s': https:// is not supported (no TLS); use "
             "unix:/path (xapi's local socket) or http://",
             url);
        return -1;
    } else {
        fail(x, NULL, "bad xapi URL '%.200s' (want unix:/path or http://)",
             url);
        return -1;
    }
    x->url = strdup(url);
    if (!x->url || !x->path)
        goto oom;
    x->ready = 1;
    return 0;
oom:
    fail(x, NULL, "out of memory");
    xenapi_cleanup(x);
    return -1;
}

void xenapi_cleanup(struct xenapi *x)
{
    if (x->own_session && x->ready)
        xenapi_logout(x);
    free(x->session);
    free(x->url);
    free(x->sock_path);
    free(x->host);
    free(x->port);
    free(x->path);
    x->session = x->url = x->sock_path = x->host = x->port = x->path = NULL;
    x->ready = 0;
}

/* ---------------------------------------------------------------------- */
/* HTTP/1.1 transport                                                      */
/* ---------------------------------------------------------------------- */

struct conn {
    struct xenapi *x;
    int fd;
    long long deadline; /* monotonic ms: the whole call */
    char buf[4096];
    size_t r, w; /* unread bytes are buf[r..w) */
    size_t head; /* bytes of status line + headers read so far */
};

static const char *where(const struct xenapi *x)
{
    return x->sock_path ? x->sock_path : x->url;
}

/* Waits for events on fd until deadline: 0, or -1 with errno (ETIMEDOUT). */
static int wait_fd(int fd, short events, long long deadline)
{
    for (;;) {
        struct pollfd p = {.fd = fd, .events = events};
        long long left = deadline - (long long)now_ms();
        int rc;

        if (left <= 0) {
            errno = ETIMEDOUT;
            return -1;
        }
        rc = poll(&p, 1, left > 60000 ? 60000 : (int)left);
        if (rc > 0)
            return 0;
        if (rc < 0 && errno != EINTR)
            return -1;
    }
}

/* A non-blocking connect finished within deadline: 0 or -1 with errno. */
static int connect_wait(int fd, const struct sockaddr *sa, socklen_t len,
                        long long deadline)
{
    int err = 0;
    socklen_t elen = sizeof(err);

    for (;;) {
        if (connect(fd, sa, len) == 0)
            return 0;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN) {
            /* a unix socket whose backlog is full: try again shortly */
            if ((long long)now_ms() >= deadline) {
                errno = ETIMEDOUT;
                return -1;
            }
            poll(NULL, 0, 20);
            continue;
        }
        if (errno != EINPROGRESS)
            return -1;
        break;
    }
    if (wait_fd(fd, POLLOUT, deadline) < 0)
        return -1;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0)
        return -1;
    if (err) {
        errno = err;
        return -1;
    }
    return 0;
}

static int open_socket(int family)
{
    return socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
}

static int dial(struct xenapi *x, long long deadline)
{
    long long cdl = (long long)now_ms() + x->connect_timeout_s * 1000;
    struct addrinfo hints, *res = NULL, *ai;
    int fd = -1, err = 0, rc;

    if (cdl > deadline)
        cdl = deadline;
    if (x->sock_path) {
        struct sockaddr_un sun = {.sun_family = AF_UNIX};

        snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", x->sock_path);
        fd = open_socket(AF_UNIX);
        if (fd >= 0 && connect_wait(fd, (struct sockaddr *)&sun,
                                    (socklen_t)sizeof(sun), cdl) == 0)
            return fd;
        err = errno;
        if (fd >= 0)
            close(fd);
        fail(x, NULL, "xapi unreachable at %s: %s", where(x), strerror(err));
        return -1;
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    rc = getaddrinfo(x->host, x->port, &hints, &res);
    if (rc) {
        fail(x, NULL, "xapi unreachable at %s: %s: %s", where(x), x->host,
             gai_strerror(rc));
        return -1;
    }
    for (ai = res; ai; ai = ai->ai_next) {
        fd = open_socket(ai->ai_family);
        if (fd >= 0 && connect_wait(fd, ai->ai_addr, ai->ai_addrlen, cdl) == 0)
            break;
        err = errno;
        if (fd >= 0)
            close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0)
        fail(x, NULL, "xapi unreachable at %s: %s", where(x),
             strerror(err ? err : ECONNREFUSED));
    return fd;
}

static int send_all(struct conn *c, const char *p, size_t n)
{
    while (n) {
        ssize_t k = send(c->fd, p, n, MSG_NOSIGNAL);

        if (k > 0) {
            p += k;
            n -= (size_t)k;
        } else if (k < 0 && errno == EINTR) {
            continue;
        } else if (k < 0 && errno == EAGAIN) {
            if (wait_fd(c->fd, POLLOUT, c->deadline) < 0)
                goto fail;
        } else {
            goto fail;
        }
    }
    return 0;
fail:
    if (errno == ETIMEDOUT)
        fail(c->x, NULL, "xapi at %s: sending the call timed out after %lds",
             where(c->x), c->x->timeout_s);
    else
        fail(c->x, NULL, "xapi at %s: cannot send the call: %s", where(c->x),
             strerror(errno));
    return -1;
}

/* More bytes into buf: 1, 0 at the end of the stream, or -1. */
static int fill(struct conn *c)
{
    ssize_t k;

    if (c->r == c->w)
        c->r = c->w = 0;
    for (;;) {
        k = recv(c->fd, c->buf + c->w, sizeof(c->buf) - c->w, 0);
        if (k > 0) {
            c->w += (size_t)k;
            return 1;
        }
        if (k == 0)
            return 0;
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN || wait_fd(c->fd, POLLIN, c->deadline) < 0)
            break;
    }
    if (errno == ETIMEDOUT)
        fail(c->x, NULL, "xapi at %s: no answer within %lds", where(c->x),
             c->x->timeout_s);
    else
        fail(c->x, NULL, "xapi at %s: cannot read the answer: %s", where(c->x),
             strerror(errno));
    return -1;
}

/*
 * One header-area line (CRLF or a bare LF ends it; the CR is dropped)
 * into line[HTTP_MAX_LINE].  Counts against HTTP_MAX_HEAD.  0 or -1.
 */
static int read_line(struct conn *c, char *line)
{
    size_t n = 0;

    for (;;) {
        int rc;

        while (c->r < c->w) {
            char ch = c->buf[c->r++];

            if (++c->head > HTTP_MAX_HEAD) {
                fail(c->x, NULL, "xapi at %s: HTTP headers over %d bytes",
                     where(c->x), HTTP_MAX_HEAD);
                return -1;
            }
            if (ch == '\n') {
                if (n && line[n - 1] == '\r')
                    n--;
                line[n] = '\0';
                return 0;
            }
            if (n + 1 >= HTTP_MAX_LINE) {
                fail(c->x, NULL,
                     "xapi at %s: an HTTP header line over %d "
                     "bytes",
                     where(c->x), HTTP_MAX_LINE);
                return -1;
            }
            line[n++] = ch;
        }
        rc = fill(c);
        if (rc < 0)
            return -1;
        if (rc == 0) {
            fail(c->x, NULL,
                 "xapi at %s: connection closed in the HTTP "
                 "headers",
                 where(c->x));
            return -1;
        }
    }
}

/* n body bytes into dst; with eof_ok, fewer at the end of the stream is
 * fine.  Returns the count, or -1. */
static long read_body(struct conn *c, char *dst, size_t n, int eof_ok)
{
    size_t got = 0;

    while (got < n) {
        size_t k = c->w - c->r;
        int rc;

        if (k) {
            if (k > n - got)
                k = n - got;
            memcpy(dst + got, c->buf + c->r, k);
            c->r += k;
            got += k;
            continue;
        }
        rc = fill(c);
        if (rc < 0)
            return -1;
        if (rc == 0) {
            if (eof_ok)
                break;
            fail(c->x, NULL,
                 "xapi at %s: connection closed after %zu of %zu "
                 "body bytes",
                 where(c->x), got, n);
            return -1;
        }
    }
    return (long)got;
}

static void trim(char **s)
{
    size_t n;

    while (**s == ' ' || **s == '\t')
        (*s)++;
    n = strlen(*s);
    while (n && ((*s)[n - 1] == ' ' || (*s)[n - 1] == '\t'))
        (*s)[--n] = '\0';
}

/* Content-Length: digits only, at most XR_MAX_RESPONSE. */
static int parse_length(struct xenapi *x, const char *v, long *len)
{
    long n = 0;

    if (!*v)
        goto bad;
    for (; *v; v++) {
        if (*v < '0' || *v > '9')
            goto bad;
        n = n * 10 + (*v - '0');
        if (n > (long)XR_MAX_RESPONSE) {
            fail(x, NULL, "xapi at %s: answer too large (over %zu bytes)",
                 where(x), XR_MAX_RESPONSE);
            return -1;
        }
    }
    *len = n;
    return 0;
bad:
    fail(x, NULL, "xapi at %s: bad Content-Length", where(x));
    return -1;
}

struct head {
    int status;
    long length; /* -1: none */
    int chunked;
};

static int read_head(struct conn *c, char *line, struct head *h)
{
    struct xenapi *x = c->x;

    for (int interim = 0;; interim++) {
        char *v;
        int st;

        h->length = -1;
        h->chunked = 0;
        if (read_line(c, line) < 0)
            return -1;
        if (strncmp(line, "HTTP/1.", 7) || (line[7] != '0' && line[7] != '1') ||
            line[8] != ' ' || line[9] < '1' || line[9] > '5' ||
            line[10] < '0' || line[10] > '9' || line[11] < '0' ||
            line[11] > '9' || (line[12] != ' ' && line[12] != '\0')) {
            fail(x, NULL, "xapi at %s: not an HTTP answer: '%.60s'", where(x),
                 line);
            return -1;
        }
        st = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
        h->status = st;
        for (;;) {
            if (read_line(c, line) < 0)
                return -1;
            if (!line[0])
                break;
            v = strchr(line, ':');
            if (!v || v == line) {
                fail(x, NULL, "xapi at %s: bad HTTP header '%.60s'", where(x),
                     line);
                return -1;
            }
            *v++ = '\0';
            trim(&v);
            if (!strcasecmp(line, "Content-Length")) {
                long n;

                if (parse_length(x, v, &n) < 0)
                    return -1;
                if (h->length >= 0 && h->length != n) {
                    fail(x, NULL,
                         "xapi at %s: two different Content-Length "
                         "headers",
                         where(x));
                    return -1;
                }
                h->length = n;
            } else if (!strcasecmp(line, "Transfer-Encoding")) {
                if (strcasecmp(v, "chunked")) {
                    fail(x, NULL,
                         "xapi at %s: unsupported Transfer-Encoding "
                         "'%.40s'",
                         where(x), v);
                    return -1;
                }
                h->chunked = 1;
            }
        }
        /* 1xx answers (100 Continue) come before the real one */
        if (st >= 200 || st == 101)
            return 0;
        if (interim >= HTTP_MAX_INTERIM) {
            fail(x, NULL, "xapi at %s: too many interim HTTP answers",
                 where(x));
            return -1;
        }
    }
}

/* A chunk-size line: hex digits, then optional ;extensions. */
static int chunk_size(struct xenapi *x, const char *line, size_t *n)
{
    size_t v = 0;
    int digits = 0;

    for (; *line; line++, digits++) {
        char ch = *line;
        size_t d;

        if (ch >= '0' && ch <= '9')
            d = (size_t)(ch - '0');
        else if ((ch | 0x20) >= 'a' && (ch | 0x20) <= 'f')
            d = (size_t)((ch | 0x20) - 'a' + 10);
        else
            break;
        v = v * 16 + d;
        if (v > XR_MAX_RESPONSE)
            goto big;
    }
    while (*line == ' ' || *line == '\t')
        line++;
    if (!digits || (*line && *line != ';')) {
        fail(x, NULL, "xapi at %s: bad chunk size '%.40s'", where(x), line);
        return -1;
    }
    *n = v;
    return 0;
big:
    fail(x, NULL, "xapi at %s: answer too large (over %zu bytes)", where(x),
         XR_MAX_RESPONSE);
    return -1;
}

static int read_chunked(struct conn *c, char *line, char *body, size_t *len)
{
    size_t total = 0, n;

    for (;;) {
        c->head = 0; /* each chunk line is bounded on its own */
        if (read_line(c, line) < 0 || chunk_size(c->x, line, &n) < 0)
            return -1;
        if (n == 0)
            break;
        if (n > XR_MAX_RESPONSE - total) {
            fail(c->x, NULL, "xapi at %s: answer too large (over %zu bytes)",
                 where(c->x), XR_MAX_RESPONSE);
            return -1;
        }
        if (read_body(c, body + total, n, 0) < 0)
            return -1;
        total += n;
        if (read_line(c, line) < 0)
            return -1;
        if (line[0]) {
            fail(c->x, NULL, "xapi at %s: chunk not followed by CRLF",
                 where(c->x));
            return -1;
        }
    }
    /* trailer fields, then the empty line */
    c->head = 0;
    do {
        if (read_line(c, line) < 0)
            return -1;
    } while (line[0]);
    *len = total;
    return 0;
}

/* POSTs body; *out (malloc'd, NUL-terminated) and *outlen: the answer. */
static int post(struct xenapi *x, const char *body, size_t len, char **out,
                size_t *outlen)
{
    struct conn *c = NULL;
    char *req = NULL, *line = NULL, *data = NULL;
    struct head h;
    int n, rc = XENAPI_ERR_TRANSPORT;
    int v6 = x->host && strchr(x->host, ':');

    *out = NULL;
    *outlen = 0;
    if (!x->ready) {
        fail(x, NULL, "XenAPI client not initialised");
        return rc;
    }
    c = calloc(1, sizeof(*c));
    line = malloc(HTTP_MAX_LINE);
    data = malloc(XR_MAX_RESPONSE + 1);
    if (!c || !line || !data) {
        fail(x, NULL, "out of memory");
        goto out;
    }
    c->x = x;
    c->deadline = (long long)now_ms() + x->timeout_s * 1000;
    n = asprintf(&req,
                 "POST %s HTTP/1.1\r\n"
                 "Host: %s%s%s%s%s\r\n"
                 "User-Agent: vgpu/" VGPU_VERSION "\r\n"
                 "Content-Type: text/xml\r\n"
                 "Content-Length: %zu\r\n"
                 "Connection: close\r\n"
                 "\r\n",
                 x->path, v6 ? "[" : "", x->host ? x->host : "localhost",
                 v6 ? "]" : "", x->port && strcmp(x->port, "80") ? ":" : "",
                 x->port && strcmp(x->port, "80") ? x->port : "", len);
    if (n < 0) {
        req = NULL;
        fail(x, NULL, "out of memory");
        goto out;
    }
    c->fd = dial(x, c->deadline);
    if (c->fd < 0)
        goto out;
    if (send_all(c, req, (size_t)n) < 0 || send_all(c, body, len) < 0 ||
        read_head(c, line, &h) < 0)
        goto close;
    if (h.status != 200) {
        fail(x, NULL, "xapi at %s answered HTTP %d", where(x), h.status);
        goto close;
    }
    if (h.chunked) {
        if (read_chunked(c, line, data, outlen) < 0)
            goto close;
    } else if (h.length >= 0) {
        if (read_body(c, data, (size_t)h.length, 0) < 0)
            goto close;
        *outlen = (size_t)h.length;
    } else {
        /* no length: the body ends with the connection (we asked for
         * close); one byte more than allowed says it is too large */
        long got = read_body(c, data, XR_MAX_RESPONSE + 1, 1);

        if (got < 0)
            goto close;
        if ((size_t)got > XR_MAX_RESPONSE) {
            fail(x, NULL, "xapi at %s: answer too large (over %zu bytes)",
                 where(x), XR_MAX_RESPONSE);
            goto close;
        }
        *outlen = (size_t)got;
    }
    if (*outlen <= XR_MAX_RESPONSE) {
        data[*outlen] = '\0';
        *out = data;
        data = NULL;
        rc = 0;
    }
close:
    close(c->fd);
out:
    free(data);
    free(line);
    free(req);
    free(c);
    return rc;
}

/* Turns {Status: Failure, ErrorDescription: [code, args...]} into err. */
static int decode_failure(struct xenapi *x, const char *method,
                          const struct xr_value *r)
{
    const struct xr_value *d = xr_struct_get(r, "ErrorDescription");
    char args[384] = "";
    size_t used = 0;

    if (!d || d->type != XR_ARRAY || d->n == 0 ||
        d->items[0]->type != XR_STRING) {
        fail(x, "UNKNOWN", "%s failed without an error description", method);
        return XENAPI_ERR_FAILURE;
    }
    for (size_t i = 1; i < d->n && used < sizeof(args); i++) {
        const char *s = d->items[i]->str ? d->items[i]->str : "?";
        int n = snprintf(args + used, sizeof(args) - used, "%s%s",
                         i > 1 ? ", " : "", s);

        if (n < 0)
            break;
        used += (size_t)n;
    }
    fail(x, d->items[0]->str, "%s: %s%s%s%s", method, d->items[0]->str,
         args[0] ? " (" : "", args, args[0] ? ")" : "");
    return XENAPI_ERR_FAILURE;
}

/* Decodes a XenAPI result struct; takes ownership of resp's value. */
static int decode(struct xenapi *x, const char *method,
                  struct xr_response *resp, struct xr_value **value)
{
    struct xr_value *r = resp->value;
    const char *st;

    if (resp->is_fault) {
        fail(x, NULL, "%s: XML-RPC fault %d: %s", method, resp->fault_code,
             resp->fault_string);
        return XENAPI_ERR_TRANSPORT;
    }
    st = xr_struct_get_string(r, "Status");
    if (st && !strcmp(st, "Failure"))
        return decode_failure(x, method, r);
    if (!st || strcmp(st, "Success") || !xr_struct_get(r, "Value")) {
        fail(x, NULL, "%s: xapi's answer is not a XenAPI result", method);
        return XENAPI_ERR_TRANSPORT;
    }
    for (size_t i = 0; i < r->n; i++) {
        if (!strcmp(r->keys[i], "Value")) {
            *value = r->items[i];
            r->items[i] = xr_new_string("");
            break;
        }
    }
    return *value ? 0 : XENAPI_ERR_TRANSPORT;
}

static int call_array(struct xenapi *x, const char *method,
                      struct xr_value *params, struct xr_value **value)
{
    struct xr_response resp;
    char err[256], *answer = NULL;
    size_t len = 0, alen = 0;
    char *body;
    int rc;

    *value = NULL;
    body = xr_build_call(method, params, &len);
    if (!body) {
        fail(x, NULL, "out of memory");
        return XENAPI_ERR_TRANSPORT;
    }
    rc = post(x, body, len, &answer, &alen);
    free(body);
    if (rc)
        goto out;
    if (xr_parse_response(answer, alen, &resp, err, sizeof(err)) < 0) {
        fail(x, NULL, "%s: bad answer from xapi: %s", method, err);
        rc = XENAPI_ERR_TRANSPORT;
        goto out;
    }
    rc = decode(x, method, &resp, value);
    xr_response_free(&resp);
out:
    free(answer);
    return rc;
}

static int call_v(struct xenapi *x, const char *method, int with_session,
                  struct xr_value **value, va_list ap)
{
    struct xr_value *params = xr_new_array();
    const char *s;
    int rc = XENAPI_ERR_TRANSPORT;

    if (!params)
        goto oom;
    if (with_session && xr_add(params, NULL, xr_new_string(x->session)) < 0)
        goto oom;
    while ((s = va_arg(ap, const char *)))
        if (xr_add(params, NULL, xr_new_string(s)) < 0)
            goto oom;
    rc = call_array(x, method, params, value);
    xr_value_free(params);
    return rc;
oom:
    xr_value_free(params);
    fail(x, NULL, "out of memory");
    return rc;
}

int xenapi_call(struct xenapi *x, const char *method, struct xr_value **value,
                ...)
{
    va_list ap;
    int rc;

    if (!x->session) {
        fail(x, NULL, "%s: no XenAPI session", method);
        return XENAPI_ERR_TRANSPORT;
    }
    va_start(ap, value);
    rc = call_v(x, method, 1, value, ap);
    va_end(ap);
    return rc;
}

static int call_nosession(struct xenapi *x, const char *method,
                          struct xr_value **value, ...)
{
    va_list ap;
    int rc;

    va_start(ap, value);
    rc = call_v(x, method, 0, value, ap);
    va_end(ap);
    return rc;
}

/* ---------------------------------------------------------------------- */
/* sessions and calls                                                      */
/* ---------------------------------------------------------------------- */

int xenapi_use_session(struct xenapi *x, const char *ref)
{
    char *s = strdup(ref);

    if (!s) {
        fail(x, NULL, "out of memory");
        return XENAPI_ERR_TRANSPORT;
    }
    free(x->session);
    x->session = s;
    x->own_session = 0;
    return 0;
}

/* Takes a string Value into *out. */
static int want_string(struct xenapi *x, const char *method, int rc,
                       struct xr_value *v, char **out)
{
    if (rc == 0 && v->type == XR_STRING) {
        *out = v->str;
        v->str = NULL;
    } else if (rc == 0) {
        fail(x, NULL, "%s: Value is not a string", method);
        rc = XENAPI_ERR_TRANSPORT;
    }
    xr_value_free(v);
    return rc;
}

int xenapi_login_local(struct xenapi *x, const char *originator)
{
    struct xr_value *v = NULL;
    char *ref = NULL;
    int rc;

    rc = call_nosession(x, "session.login_with_password", &v, "root", "", "1.0",
                        originator, NULL);
    rc = want_string(x, "session.login_with_password", rc, v, &ref);
    if (rc)
        return rc;
    free(x->session);
    x->session = ref;
    x->own_session = 1;
    return 0;
}

int xenapi_logout(struct xenapi *x)
{
    struct xr_value *v = NULL;
    int rc;

    if (!x->session)
        return 0;
    rc = xenapi_call(x, "session.logout", &v, NULL);
    xr_value_free(v);
    free(x->session);
    x->session = NULL;
    x->own_session = 0;
    return rc;
}

/* "<cls>.<name>" into buf, for the calls every class has. */
static const char *method_of(char *buf, size_t len, const char *cls,
                             const char *name)
{
    if ((size_t)snprintf(buf, len, "%s.%s", cls, name) >= len)
        buf[0] = '\0'; /* never reached: our names are short */
    return buf;
}

/*
 * Takes v into *out when it is a `type` (a struct or an array) of strings
 * only; else frees it and fails with "<method>: Value is not <what>".
 */
static int want_strings(struct xenapi *x, const char *method, int rc,
                        struct xr_value *v, enum xr_type type, const char *what,
                        struct xr_value **out)
{
    if (rc)
        return rc;
    if (v->type != type)
        goto bad;
    for (size_t i = 0; i < v->n; i++)
        if (v->items[i]->type != XR_STRING)
            goto bad;
    *out = v;
    return 0;
bad:
    xr_value_free(v);
    fail(x, NULL, "%s: Value is not %s", method, what);
    return XENAPI_ERR_TRANSPORT;
}

int xenapi_get_map(struct xenapi *x, const char *cls, const char *field,
                   const char *ref, struct xr_value **map)
{
    struct xr_value *v = NULL;
    char name[48], m[64];
    int rc;

    snprintf(name, sizeof(name), "get_%s", field);
    rc = xenapi_call(x, method_of(m, sizeof(m), cls, name), &v, ref, NULL);
    return want_strings(x, m, rc, v, XR_STRUCT, "a string map", map);
}

int xenapi_get_other_config(struct xenapi *x, const char *cls, const char *ref,
                            struct xr_value **map)
{
    return xenapi_get_map(x, cls, "other_config", ref, map);
}

static int call_void(struct xenapi *x, const char *method, const char *a,
                     const char *b, const char *c)
{
    struct xr_value *v = NULL;
    int rc = xenapi_call(x, method, &v, a, b, c, NULL);

    xr_value_free(v);
    return rc;
}

int xenapi_add_to_map(struct xenapi *x, const char *cls, const char *field,
                      const char *ref, const char *key, const char *val)
{
    char name[48], m[64];

    snprintf(name, sizeof(name), "add_to_%s", field);
    return call_void(x, method_of(m, sizeof(m), cls, name), ref, key, val);
}

int xenapi_remove_from_map(struct xenapi *x, const char *cls, const char *field,
                           const char *ref, const char *key)
{
    char name[48], m[64];

    snprintf(name, sizeof(name), "remove_from_%s", field);
    return call_void(x, method_of(m, sizeof(m), cls, name), ref, key, NULL);
}

int xenapi_add_to_other_config(struct xenapi *x, const char *cls,
                               const char *ref, const char *key,
                               const char *val)
{
    return xenapi_add_to_map(x, cls, "other_config", ref, key, val);
}

int xenapi_remove_from_other_config(struct xenapi *x, const char *cls,
                                    const char *ref, const char *key)
{
    return xenapi_remove_from_map(x, cls, "other_config", ref, key);
}

int xenapi_get_string(struct xenapi *x, const char *cls, const char *field,
                      const char *ref, char **out)
{
    struct xr_value *v = NULL;
    char name[48], m[64];
    int rc;

    snprintf(name, sizeof(name), "get_%s", field);
    rc = xenapi_call(x, method_of(m, sizeof(m), cls, name), &v, ref, NULL);
    return want_string(x, m, rc, v, out);
}

int xenapi_get_by_uuid(struct xenapi *x, const char *cls, const char *uuid,
                       char **ref)
{
    struct xr_value *v = NULL;
    char m[64];
    int rc = xenapi_call(x, method_of(m, sizeof(m), cls, "get_by_uuid"), &v,
                         uuid, NULL);

    return want_string(x, m, rc, v, ref);
}

int xenapi_get_all(struct xenapi *x, const char *cls, struct xr_value **refs)
{
    struct xr_value *v = NULL;
    char m[64];
    int rc = xenapi_call(x, method_of(m, sizeof(m), cls, "get_all"), &v, NULL);

    return want_strings(x, m, rc, v, XR_ARRAY, "a list of references", refs);
}

int xenapi_host_resident_vms(struct xenapi *x, const char *host,
                             struct xr_value **refs)
{
    struct xr_value *v = NULL;
    int rc = xenapi_call(x, "host.get_resident_VMs", &v, host, NULL);

    return want_strings(x, "host.get_resident_VMs", rc, v, XR_ARRAY,
                        "a list of references", refs);
}

/*
 * A call whose parameters after the session are not all strings: the n
 * items are taken into the parameter list (freed here, also on failure; a
 * NULL one is an allocation that failed).
 */
static int call_values(struct xenapi *x, const char *method,
                       struct xr_value **value, struct xr_value **items,
                       size_t n)
{
    struct xr_value *params = xr_new_array();
    int rc = XENAPI_ERR_TRANSPORT, bad = !params || !x->session;

    if (!bad)
        bad = xr_add(params, NULL, xr_new_string(x->session)) < 0;
    for (size_t i = 0; i < n; i++) {
        if (bad || !items[i]) {
            xr_value_free(items[i]);
            bad = 1;
        } else if (xr_add(params, NULL, items[i]) < 0) {
            bad = 1; /* xr_add freed it */
        }
    }
    if (bad)
        fail(x, NULL, "%s: %s", method,
             x->session ? "out of memory" : "no XenAPI session");
    else
        rc = call_array(x, method, params, value);
    xr_value_free(params);
    return rc;
}

int xenapi_call_plugin(struct xenapi *x, const char *host, const char *plugin,
                       const char *fn, char **out)
{
    struct xr_value *v = NULL;
    struct xr_value *items[] = {xr_new_string(host), xr_new_string(plugin),
                                xr_new_string(fn), xr_new_struct()};
    int rc = call_values(x, "host.call_plugin", &v, items, 4);

    return want_string(x, "host.call_plugin", rc, v, out);
}

int xenapi_vm_start_on(struct xenapi *x, const char *vm, const char *host)
{
    struct xr_value *v = NULL;
    struct xr_value *items[] = {xr_new_string(vm), xr_new_string(host),
                                xr_new_bool(0), xr_new_bool(0)};
    int rc = call_values(x, "VM.start_on", &v, items, 4);

    xr_value_free(v);
    return rc;
}

int xenapi_vm_pool_migrate(struct xenapi *x, const char *vm, const char *host)
{
    struct xr_value *v = NULL, *options = xr_new_struct();
    struct xr_value *items[3];
    int rc;

    if (options && xr_struct_set_string(options, "live", "true") < 0) {
        xr_value_free(options);
        options = NULL; /* call_values fails for it */
    }
    items[0] = xr_new_string(vm);
    items[1] = xr_new_string(host);
    items[2] = options;
    rc = call_values(x, "VM.pool_migrate", &v, items, 3);
    xr_value_free(v);
    return rc;
}

int xenapi_pool_ref(struct xenapi *x, char **ref)
{
    struct xr_value *all = NULL;
    int rc = xenapi_get_all(x, "pool", &all);

    if (rc)
        return rc;
    /* xapi keeps exactly one pool object, also on a standalone host. */
    if (all->n != 1) {
        fail(x, NULL, "pool.get_all: %zu pool objects, not one", all->n);
        xr_value_free(all);
        return XENAPI_ERR_TRANSPORT;
    }
    *ref = all->items[0]->str;
    all->items[0]->str = NULL;
    xr_value_free(all);
    if (!*ref) {
        fail(x, NULL, "out of memory");
        return XENAPI_ERR_TRANSPORT;
    }
    return 0;
}

int xenapi_vm_get_domid(struct xenapi *x, const char *ref, long *domid)
{
    struct xr_value *v = NULL;
    char *end;
    int rc = xenapi_call(x, "VM.get_domid", &v, ref, NULL);

    if (rc)
        return rc;
    /* XenAPI sends its 64-bit ints as strings; accept <int> as well. */
    if (v->type == XR_INT) {
        *domid = (long)v->num;
    } else if (v->type == XR_STRING && v->str[0]) {
        errno = 0;
        *domid = strtol(v->str, &end, 10);
        if (*end || errno)
            rc = XENAPI_ERR_TRANSPORT;
    } else {
        rc = XENAPI_ERR_TRANSPORT;
    }
    if (rc)
        fail(x, NULL, "VM.get_domid: Value is not an integer");
    xr_value_free(v);
    return rc;
}
