/* hc: a small blocking HTTP/1.1 client for `vllmc bench serve`.
 *
 * Plain http:// only (no TLS: the use case is benchmarking a server over
 * loopback), one request per connection (`Connection: close`). The response
 * body reaches a callback as it arrives, already de-chunked, so a streamed
 * (SSE) body can be timed piece by piece. Bytes from the network are hostile:
 * sizes are bounded and checked, a malformed response is an error, never a
 * crash. Safe to use from many threads at once (no shared state); errors are
 * reported through base/err.h's per-thread message. */
#ifndef VLLMC_BASE_HTTP_CLIENT_H
#define VLLMC_BASE_HTTP_CLIENT_H

#include <stddef.h>
#include <stdint.h>

/* http://HOST[:PORT][/PREFIX]; an IPv6 host is written [::1]. */
typedef struct {
    char host[256];    /* without the brackets of an IPv6 literal */
    char port[8];      /* "80" unless given */
    char prefix[1024]; /* path before the endpoint, without a trailing '/'; may be "" */
} hc_url;

/* VC_EINVAL (with a message) for anything but a well-formed http:// URL. */
int hc_url_parse(const char *url, hc_url *u);

/* Receives body bytes as they arrive; a nonzero return stops reading (the
 * request then returns VC_OK). */
typedef int (*hc_body_fn)(void *ctx, const char *data, size_t n);

typedef struct {
    int connected; /* 1 once the TCP connection was made (a failure after that is not "refused") */
    int status;    /* HTTP status code, 0 until the status line is read */
    char reason[64];
} hc_response;

/* Connect, send `METHOD prefix+path` with extra_headers (each ending in
 * "\r\n", or NULL) and the body (body_len bytes, may be 0), then read the
 * status line, the headers and the whole body into fn. VC_OK when a complete
 * response was read, whatever its status; VC_EIO for a connection or socket
 * error, VC_EFORMAT for a malformed response (or a body cut short). */
int hc_request(const hc_url *u, const char *method, const char *path, const char *extra_headers, const char *body,
               size_t body_len, hc_response *resp, hc_body_fn fn, void *ctx);

/* Resumable decoder of a chunked body (RFC 9112 section 7.1); zero-initialise. */
enum { HC_CH_SIZE, HC_CH_EXT, HC_CH_DATA, HC_CH_DATA_END, HC_CH_TRAILER, HC_CH_DONE };
typedef struct {
    int state;
    int ndigits;   /* hex digits of the current size line */
    int line_len;  /* bytes of the current trailer line */
    uint64_t left; /* bytes of the current chunk still to come */
} hc_dechunk;

/* Feed n bytes; every data span goes to fn. Sets *used to the bytes consumed
 * (less than n only once the body ended: state HC_CH_DONE). Returns VC_OK,
 * VC_EFORMAT (with a message) on a malformed encoding, or 1 when fn asked to
 * stop. */
int hc_dechunk_feed(hc_dechunk *d, const char *p, size_t n, size_t *used, hc_body_fn fn, void *ctx);

#endif
