/* hub_http: the HTTP side of Hub downloads, over libcurl's easy interface.
 *
 * One hub_http per hub_resolve() call: it owns the curl handle and the
 * Authorization header, which is sent only to the endpoint's own origin (a
 * CDN that a resolve URL redirects to never sees the token). A hub_resp owns
 * every string in it; hub_resp_free() is safe on a zeroed struct. Transport
 * failures (no connection, timeout, connection dropped) return VC_EIO with
 * the curl error and the URL; HTTP error statuses are not failures here: the
 * caller reads r->status and the Hub's X-Error-Code. */
#ifndef VLLMC_HUB_HTTP_H
#define VLLMC_HUB_HTTP_H

#include <stddef.h>

typedef struct hub_http hub_http;

typedef struct {
    long status;                 /* HTTP status of the last response (after redirects, for GETs) */
    char *location;              /* Location header, or NULL */
    char *etag;                  /* ETag, raw (quotes and W/ kept), or NULL */
    char *linked_etag;           /* X-Linked-Etag (LFS files: the sha256 of the content), or NULL */
    char *repo_commit;           /* X-Repo-Commit, or NULL */
    char *error_code;            /* X-Error-Code (RepoNotFound, GatedRepo, RevisionNotFound, ...), or NULL */
    char *error_message;         /* X-Error-Message, or NULL */
    long long content_length;    /* Content-Length in bytes, -1 when absent */
    long long linked_size;       /* X-Linked-Size in bytes, -1 when absent */
    char *body;                  /* hub_http_get_mem: the body, NUL-terminated; error bodies (<= 4 KiB) too */
    size_t body_len;
} hub_resp;

/* A tqdm-like progress line on stderr for one file, redrawn at most 10 times a second. */
typedef struct {
    int on;                      /* draw at all */
    const char *name;            /* the file name shown */
    long long total;             /* bytes, -1 when unknown */
    long long done;              /* bytes on disk so far (including a resumed part) */
    long long start;             /* bytes already there when this run began (not counted in the rate) */
    double t0, last;             /* monotonic seconds: start, last redraw */
} hub_progress;

/* endpoint: scheme://host[:port][/...]; token may be NULL. Timeouts in seconds. */
int hub_http_init(hub_http **out, const char *endpoint, const char *token, long etag_timeout_s,
                  long download_timeout_s);
void hub_http_free(hub_http *h);
void hub_resp_free(hub_resp *r);

/* HEAD without following redirects (the caller follows relative ones); Accept-Encoding: identity. */
int hub_http_head(hub_http *h, const char *url, hub_resp *r);
/* GET into memory, following redirects; a body over max_bytes is an error. */
int hub_http_get_mem(hub_http *h, const char *url, size_t max_bytes, hub_resp *r);
/* GET into the file `fd` (opened O_APPEND) from byte `resume` (Range: bytes=resume-), following redirects.
 * A 206 appends; a 200 truncates the file and starts over. `path` names the file in errors (ENOSPC:
 * "no space left on device while writing PATH"). On a transport error *retry is set to 1 (the bytes
 * received so far are kept, so the caller may resume). Other statuses are returned in r->status. */
int hub_http_get_file(hub_http *h, const char *url, int fd, const char *path, long long resume, hub_progress *p,
                      hub_resp *r, int *retry);

/* Progress drawing (hub_http_get_file calls it); final = 1 ends the line. */
void hub_progress_draw(hub_progress *p, int final);
/* tqdm's format_sizeof with divisor 1024: "1.23k", "12.3M", "123G" (3 significant digits). buf >= 16. */
void hub_fmt_size(double n, char *buf, size_t len);
/* tqdm's interval format: "00:02", "1:02:03". */
void hub_fmt_time(double s, char *buf, size_t len);
double hub_now(void);

#endif
