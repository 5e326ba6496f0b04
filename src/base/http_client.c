/* hc: blocking HTTP/1.1 client, one request per connection (see http_client.h). */
#include "base/http_client.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/err.h"
#include "vllmc.h"

/* this program's own name (bench serve is its only user) */
#define HC_USER_AGENT "vllmc/" VLLMC_VERSION " bench-serve"

enum { HDR_MAX = 64 << 10, RECV_MAX = 64 << 10 };

static const char *errstr(int e, char *buf, size_t n) { return strerror_r(e, buf, n); }

/* Printable ASCII without spaces: keeps a URL from smuggling bytes into the request line or Host header. */
static int url_char_ok(char c) { return c > ' ' && c < 0x7f; }

int hc_url_parse(const char *url, hc_url *u) {
    memset(u, 0, sizeof *u);
    if (!strncasecmp(url, "https://", 8))
        return vc_errf(VC_EINVAL, "%s: https is not supported (plain http:// only)", url);
    if (strncasecmp(url, "http://", 7)) return vc_errf(VC_EINVAL, "%s: expected an http:// URL", url);
    for (const char *c = url; *c; c++)
        if (!url_char_ok(*c)) return vc_errf(VC_EINVAL, "bad character in URL '%s'", url);
    const char *h = url + 7, *end = h + strcspn(h, "/"), *port = NULL, *hend;
    if (*h == '[') {
        const char *rb = memchr(h, ']', (size_t)(end - h));
        if (!rb) return vc_errf(VC_EINVAL, "%s: unterminated IPv6 address", url);
        h++, hend = rb;
        if (rb + 1 < end) {
            if (rb[1] != ':') return vc_errf(VC_EINVAL, "%s: bad host", url);
            port = rb + 2;
        }
    } else {
        const char *colon = memchr(h, ':', (size_t)(end - h));
        hend = colon ? colon : end;
        if (colon) port = colon + 1;
    }
    if (hend == h || (size_t)(hend - h) >= sizeof u->host) return vc_errf(VC_EINVAL, "%s: bad host", url);
    memcpy(u->host, h, (size_t)(hend - h));
    if (port) {
        long v = 0;
        if (port == end || end - port > 5) return vc_errf(VC_EINVAL, "%s: bad port", url);
        for (const char *c = port; c < end; c++) {
            if (*c < '0' || *c > '9') return vc_errf(VC_EINVAL, "%s: bad port", url);
            v = v * 10 + (*c - '0');
        }
        if (v < 1 || v > 65535) return vc_errf(VC_EINVAL, "%s: bad port", url);
        snprintf(u->port, sizeof u->port, "%ld", v);
    } else {
        strcpy(u->port, "80");
    }
    size_t plen = strlen(end);
    while (plen && end[plen - 1] == '/') plen--;
    if (plen >= sizeof u->prefix) return vc_errf(VC_EINVAL, "%s: path too long", url);
    memcpy(u->prefix, end, plen);
    return VC_OK;
}

int hc_dechunk_feed(hc_dechunk *d, const char *p, size_t n, size_t *used, hc_body_fn fn, void *ctx) {
    size_t i = 0;
    while (i < n && d->state != HC_CH_DONE) {
        char c = p[i];
        switch (d->state) {
        case HC_CH_SIZE: {
            int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
            if (v >= 0) {
                if (++d->ndigits > 15) goto bad; /* < 2^60 bytes: no overflow */
                d->left = d->left * 16 + (uint64_t)v;
                i++;
                break;
            }
            if (!d->ndigits) goto bad;
            d->state = HC_CH_EXT; /* ";ext", whitespace or the CR before LF */
        } /* fall through */
        case HC_CH_EXT:
            i++;
            if (c != '\n') break;
            d->ndigits = 0;
            d->line_len = 0;
            d->state = d->left ? HC_CH_DATA : HC_CH_TRAILER;
            break;
        case HC_CH_DATA: {
            size_t k = n - i < d->left ? n - i : (size_t)d->left;
            if (fn && fn(ctx, p + i, k)) {
                *used = i + k;
                d->left -= k;
                if (!d->left) d->state = HC_CH_DATA_END;
                return 1;
            }
            i += k;
            d->left -= k;
            if (!d->left) d->state = HC_CH_DATA_END;
            break;
        }
        case HC_CH_DATA_END: /* CRLF (or a bare LF) after the data */
            i++;
            if (c == '\n')
                d->state = HC_CH_SIZE;
            else if (c != '\r' || d->line_len++)
                goto bad;
            if (d->state == HC_CH_SIZE) d->line_len = 0;
            break;
        case HC_CH_TRAILER: /* trailer fields, ended by an empty line */
            i++;
            if (c == '\n') {
                if (!d->line_len) d->state = HC_CH_DONE;
                d->line_len = 0;
            } else if (c != '\r') {
                if (++d->line_len > HDR_MAX) goto bad;
            }
            break;
        }
    }
    *used = i;
    return VC_OK;
bad:
    *used = i;
    return vc_errf(VC_EFORMAT, "malformed chunked encoding");
}

/* ---- response head ---- */

typedef struct {
    int chunked;
    int64_t length; /* -1: until the connection closes */
} body_mode;

/* Index just past the blank line that ends the head in b[0..n), or 0. */
static size_t head_end(const char *b, size_t n, size_t from) {
    for (size_t i = from; i < n; i++) {
        if (b[i] != '\n') continue;
        if (i + 1 < n && b[i + 1] == '\n') return i + 2;
        if (i + 2 < n && b[i + 1] == '\r' && b[i + 2] == '\n') return i + 3;
    }
    return 0;
}

static int parse_head(char *b, size_t n, hc_response *r, body_mode *m) {
    b[n - 1] = 0; /* the head ends in '\n': a terminator for string functions */
    char *line = b, *nl = strchr(line, '\n');
    *nl = 0;
    if (nl > line && nl[-1] == '\r') nl[-1] = 0;
    if (strncmp(line, "HTTP/1.", 7) || !line[7] || line[8] != ' ' || line[9] < '1' || line[9] > '5' ||
        line[10] < '0' || line[10] > '9' || line[11] < '0' || line[11] > '9' || (line[12] && line[12] != ' '))
        return vc_errf(VC_EFORMAT, "bad HTTP status line '%.80s'", line);
    r->status = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
    snprintf(r->reason, sizeof r->reason, "%s", line[12] ? line + 13 : "");
    m->chunked = 0;
    m->length = -1;
    for (line = nl + 1; *line; line = nl + 1) {
        nl = strchr(line, '\n');
        if (!nl) break;
        *nl = 0;
        if (nl > line && nl[-1] == '\r') nl[-1] = 0;
        char *colon = strchr(line, ':');
        if (!colon) continue; /* the blank line, or junk a lenient client skips */
        *colon = 0;
        char *v = colon + 1;
        v += strspn(v, " \t");
        if (!strcasecmp(line, "transfer-encoding")) {
            if (strcasestr(v, "chunked")) m->chunked = 1;
        } else if (!strcasecmp(line, "content-length")) {
            int64_t len = 0;
            int nd = 0;
            for (; *v >= '0' && *v <= '9'; v++)
                if (++nd > 18) return vc_errf(VC_EFORMAT, "Content-Length too large");
                else len = len * 10 + (*v - '0');
            if (!nd || (*v && *v != ' ' && *v != '\t') || (m->length >= 0 && m->length != len))
                return vc_errf(VC_EFORMAT, "bad Content-Length");
            m->length = len;
        }
    }
    if (r->status == 204 || r->status == 304) m->length = 0, m->chunked = 0;
    return VC_OK;
}

/* ---- the request ---- */

static int connect_to(const hc_url *u, int *out) {
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai, *a;
    char eb[128];
    int rc = getaddrinfo(u->host, u->port, &hints, &ai), fd = -1, e = 0;
    if (rc) return vc_errf(VC_EIO, "cannot resolve '%s': %s", u->host, gai_strerror(rc));
    for (a = ai; a; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) {
            e = errno;
            continue;
        }
        if (!connect(fd, a->ai_addr, a->ai_addrlen)) break;
        e = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    if (fd < 0) return vc_errf(VC_EIO, "%s", errstr(e, eb, sizeof eb));
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    *out = fd;
    return VC_OK;
}

static int send_all(int fd, const char *p, size_t n) {
    char eb[128];
    while (n) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return vc_errf(VC_EIO, "send: %s", errstr(errno, eb, sizeof eb));
        p += k, n -= (size_t)k;
    }
    return VC_OK;
}

static ssize_t recv_some(int fd, char *b, size_t n) {
    for (;;) {
        ssize_t k = recv(fd, b, n, 0);
        if (k >= 0 || errno != EINTR) return k;
    }
}

/* Deliver body bytes per the mode; 1 when the body is complete or fn stopped reading. */
static int body_feed(body_mode *m, hc_dechunk *d, const char *p, size_t n, hc_body_fn fn, void *ctx) {
    size_t used;
    if (m->chunked) {
        int rc = hc_dechunk_feed(d, p, n, &used, fn, ctx);
        if (rc) return rc;
        return d->state == HC_CH_DONE;
    }
    if (m->length >= 0 && (uint64_t)m->length < n) n = (size_t)m->length;
    if (m->length >= 0) m->length -= (int64_t)n;
    if (n && fn && fn(ctx, p, n)) return 1;
    return m->length == 0;
}

int hc_request(const hc_url *u, const char *method, const char *path, const char *extra_headers, const char *body,
               size_t body_len, hc_response *resp, hc_body_fn fn, void *ctx) {
    memset(resp, 0, sizeof *resp);
    int fd = -1, rc;
    char eb[128], *req = NULL, *buf = NULL;
    if ((rc = connect_to(u, &fd))) return rc;
    resp->connected = 1;
    int ipv6 = strchr(u->host, ':') != NULL;
    const char *fmt = "%s %s%s HTTP/1.1\r\nHost: %s%s%s:%s\r\nUser-Agent: " HC_USER_AGENT "\r\nAccept: */*\r\n"
                      "Content-Length: %zu\r\nConnection: close\r\n%s\r\n";
    const char *xh = extra_headers ? extra_headers : "";
    int hl = snprintf(NULL, 0, fmt, method, u->prefix, path, ipv6 ? "[" : "", u->host, ipv6 ? "]" : "", u->port,
                      body_len, xh);
    buf = malloc(RECV_MAX > HDR_MAX ? RECV_MAX : HDR_MAX);
    req = hl < 0 ? NULL : malloc((size_t)hl + body_len + 1);
    if (!req || !buf) {
        rc = vc_errf(VC_ENOMEM, "out of memory");
        goto done;
    }
    snprintf(req, (size_t)hl + 1, fmt, method, u->prefix, path, ipv6 ? "[" : "", u->host, ipv6 ? "]" : "", u->port,
             body_len, xh);
    if (body_len) memcpy(req + hl, body, body_len);
    if ((rc = send_all(fd, req, (size_t)hl + body_len))) goto done;

    /* the head (skipping interim 1xx responses) */
    size_t have = 0, hend = 0;
    body_mode m = {0, -1};
    for (;;) {
        size_t from = have > 3 ? have - 3 : 0;
        if (have == HDR_MAX) {
            rc = vc_errf(VC_EFORMAT, "response head larger than %d bytes", HDR_MAX);
            goto done;
        }
        ssize_t k = recv_some(fd, buf + have, HDR_MAX - have);
        if (k <= 0) {
            rc = k ? vc_errf(VC_EIO, "recv: %s", errstr(errno, eb, sizeof eb))
                   : vc_errf(VC_EFORMAT, "connection closed before a response");
            goto done;
        }
        have += (size_t)k;
        while ((hend = head_end(buf, have, from))) {
            if ((rc = parse_head(buf, hend, resp, &m))) goto done;
            if (resp->status >= 200) break;
            memmove(buf, buf + hend, have - hend); /* 1xx: another head follows */
            have -= hend, from = 0;
        }
        if (hend) break;
    }

    /* the body */
    hc_dechunk d = {0};
    int fin = 0;
    if (!m.chunked && m.length == 0) fin = 1;
    else if (have > hend) fin = body_feed(&m, &d, buf + hend, have - hend, fn, ctx);
    while (fin == 0) {
        ssize_t k = recv_some(fd, buf, RECV_MAX);
        if (k < 0) {
            rc = vc_errf(VC_EIO, "recv: %s", errstr(errno, eb, sizeof eb));
            goto done;
        }
        if (k == 0) {
            if (m.chunked || m.length > 0) {
                rc = vc_errf(VC_EFORMAT, "connection closed before the end of the response body");
                goto done;
            }
            break;
        }
        fin = body_feed(&m, &d, buf, (size_t)k, fn, ctx);
    }
    rc = fin < 0 ? fin : VC_OK;
done:
    free(req);
    free(buf);
    close(fd);
    return rc;
}
