/* hub_http: libcurl requests for Hub downloads (see hub_http.h). */
#include "hub/hub_http.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "base/err.h"
#include "vllmc.h"

/* this program's own name: the Hub's logs should not count vllmc as huggingface_hub */
#define HUB_USER_AGENT "vllmc/" VLLMC_VERSION
#define HUB_CONNECT_TIMEOUT_S 10L
#define HUB_ERR_BODY_MAX 4096
#define HUB_HEADER_MAX 4096

struct hub_http {
    CURL *curl;
    char *origin;      /* "scheme://host[:port]" of the endpoint, lower-cased scheme and host */
    char *auth;        /* "Authorization: Bearer TOKEN", or NULL */
    long etag_timeout, dl_timeout;
    char errbuf[CURL_ERROR_SIZE];
};

double hub_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* "scheme://authority" of a URL (the part a token is scoped to), or NULL. */
static char *url_origin(const char *url) {
    const char *p = strstr(url, "://");
    if (!p) return NULL;
    p += 3;
    size_t n = (size_t)(p - url) + strcspn(p, "/?#");
    char *o = strndup(url, n);
    if (!o) return NULL;
    for (char *c = o; *c; c++)
        if (*c >= 'A' && *c <= 'Z') *c = (char)(*c - 'A' + 'a');
    return o;
}

int hub_http_init(hub_http **out, const char *endpoint, const char *token, long etag_timeout_s,
                  long download_timeout_s) {
    *out = NULL;
    hub_http *h = calloc(1, sizeof *h);
    if (!h) return vc_errf(VC_ENOMEM, "out of memory");
    h->etag_timeout = etag_timeout_s > 0 ? etag_timeout_s : 10;
    h->dl_timeout = download_timeout_s > 0 ? download_timeout_s : 10;
    h->origin = url_origin(endpoint);
    if (!h->origin) {
        hub_http_free(h);
        return vc_errf(VC_EINVAL, "HF_ENDPOINT '%s' is not a URL (expected https://host)", endpoint);
    }
    if (token && *token) {
        size_t n = strlen(token) + 32;
        h->auth = malloc(n);
        if (h->auth) snprintf(h->auth, n, "Authorization: Bearer %s", token);
    }
    h->curl = curl_easy_init();
    if (!h->curl || (token && *token && !h->auth)) {
        hub_http_free(h);
        return vc_errf(VC_ENOMEM, "cannot start libcurl");
    }
    *out = h;
    return VC_OK;
}

void hub_http_free(hub_http *h) {
    if (!h) return;
    if (h->curl) curl_easy_cleanup(h->curl);
    free(h->origin);
    free(h->auth);
    free(h);
}

void hub_resp_free(hub_resp *r) {
    free(r->location);
    free(r->etag);
    free(r->linked_etag);
    free(r->repo_commit);
    free(r->error_code);
    free(r->error_message);
    free(r->body);
    memset(r, 0, sizeof *r);
    r->content_length = r->linked_size = -1;
}

/* ---- headers ---- */

typedef struct {
    hub_resp *r;
    long long range_start; /* Content-Range: bytes START-..., -1 when absent */
} hdr_ctx;

static void resp_reset_headers(hdr_ctx *c) {
    hub_resp *r = c->r;
    char *body = r->body;
    size_t body_len = r->body_len;
    r->body = NULL;
    hub_resp_free(r);
    r->body = body;
    r->body_len = body_len;
    c->range_start = -1;
}

static void set_str(char **dst, const char *v, size_t n) {
    free(*dst);
    *dst = strndup(v, n > HUB_HEADER_MAX ? HUB_HEADER_MAX : n);
}

static long long parse_size(const char *v, size_t n) {
    char tmp[32];
    if (n == 0 || n >= sizeof tmp) return -1;
    memcpy(tmp, v, n);
    tmp[n] = 0;
    char *end;
    errno = 0;
    long long x = strtoll(tmp, &end, 10);
    return (errno || *end || x < 0) ? -1 : x;
}

static size_t on_header(char *buf, size_t size, size_t nmemb, void *ud) {
    hdr_ctx *c = ud;
    hub_resp *r = c->r;
    size_t len = size * nmemb;
    if (len >= 5 && !strncmp(buf, "HTTP/", 5)) { /* a new response (redirects, 100 Continue) */
        resp_reset_headers(c);
        const char *sp = memchr(buf, ' ', len);
        if (sp) r->status = strtol(sp + 1, NULL, 10);
        return len;
    }
    const char *colon = memchr(buf, ':', len);
    if (!colon) return len;
    size_t nlen = (size_t)(colon - buf);
    const char *v = colon + 1, *e = buf + len;
    while (v < e && (*v == ' ' || *v == '\t')) v++;
    while (e > v && (e[-1] == '\r' || e[-1] == '\n' || e[-1] == ' ' || e[-1] == '\t')) e--;
    size_t vlen = (size_t)(e - v);
#define IS(name) (nlen == sizeof(name) - 1 && !strncasecmp(buf, name, nlen))
    if (IS("location")) set_str(&r->location, v, vlen);
    else if (IS("etag")) set_str(&r->etag, v, vlen);
    else if (IS("x-linked-etag")) set_str(&r->linked_etag, v, vlen);
    else if (IS("x-repo-commit")) set_str(&r->repo_commit, v, vlen);
    else if (IS("x-error-code")) set_str(&r->error_code, v, vlen);
    else if (IS("x-error-message")) set_str(&r->error_message, v, vlen);
    else if (IS("content-length")) r->content_length = parse_size(v, vlen);
    else if (IS("x-linked-size")) r->linked_size = parse_size(v, vlen);
    else if (IS("content-range") && vlen > 6 && !strncasecmp(v, "bytes ", 6)) {
        size_t k = strcspn(v + 6, "-");
        c->range_start = parse_size(v + 6, k < vlen - 6 ? k : vlen - 6);
    }
#undef IS
    return len;
}

/* ---- common request setup ---- */

static int starts_with_origin(const hub_http *h, const char *url) {
    char *o = url_origin(url);
    int same = o && !strcmp(o, h->origin);
    free(o);
    return same;
}

static struct curl_slist *setup(hub_http *h, const char *url, int follow, long timeout, hdr_ctx *hc,
                                const char *extra_header, int *oom) {
    CURL *c = h->curl;
    curl_easy_reset(c);
    h->errbuf[0] = 0;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_USERAGENT, HUB_USER_AGENT);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, h->errbuf);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, HUB_CONNECT_TIMEOUT_S);
    /* a dead connection is an error, not a hang: under 1 byte/s for `timeout` seconds */
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, timeout);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(c, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, follow ? 1L : 0L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, hc);
    struct curl_slist *hl = NULL, *t;
    *oom = 0;
    /* the token goes to the endpoint only; curl also drops it on redirects to another host */
    if (h->auth && starts_with_origin(h, url)) {
        if (!(t = curl_slist_append(hl, h->auth))) goto oom;
        hl = t;
    }
    if (extra_header) {
        if (!(t = curl_slist_append(hl, extra_header))) goto oom;
        hl = t;
    }
    if (hl) curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    return hl;
oom:
    curl_slist_free_all(hl);
    *oom = 1;
    return NULL;
}

static int transport_error(hub_http *h, CURLcode rc, const char *url) {
    const char *m = h->errbuf[0] ? h->errbuf : curl_easy_strerror(rc);
    return vc_errf(VC_EIO, "cannot reach %s: %s", url, m);
}

int hub_http_head(hub_http *h, const char *url, hub_resp *r) {
    hub_resp_free(r);
    hdr_ctx hc = {r, -1};
    int oom;
    struct curl_slist *hl = setup(h, url, 0, h->etag_timeout, &hc, "Accept-Encoding: identity", &oom);
    if (oom) return vc_errf(VC_ENOMEM, "out of memory");
    curl_easy_setopt(h->curl, CURLOPT_NOBODY, 1L);
    CURLcode rc = curl_easy_perform(h->curl);
    curl_slist_free_all(hl);
    if (rc != CURLE_OK) return transport_error(h, rc, url);
    curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &r->status);
    return VC_OK;
}

/* ---- GET into memory ---- */

typedef struct {
    hub_resp *r;
    size_t cap, max;
    int too_big;
} mem_ctx;

static size_t on_mem(char *buf, size_t size, size_t nmemb, void *ud) {
    mem_ctx *m = ud;
    size_t len = size * nmemb;
    hub_resp *r = m->r;
    if (r->body_len + len > m->max) {
        m->too_big = 1;
        return 0;
    }
    if (r->body_len + len + 1 > m->cap) {
        size_t nc = m->cap ? m->cap : 16384;
        while (nc < r->body_len + len + 1) nc *= 2;
        char *nb = realloc(r->body, nc);
        if (!nb) return 0;
        r->body = nb;
        m->cap = nc;
    }
    memcpy(r->body + r->body_len, buf, len);
    r->body_len += len;
    r->body[r->body_len] = 0;
    return len;
}

int hub_http_get_mem(hub_http *h, const char *url, size_t max_bytes, hub_resp *r) {
    hub_resp_free(r);
    hdr_ctx hc = {r, -1};
    mem_ctx m = {r, 0, max_bytes, 0};
    int oom;
    struct curl_slist *hl = setup(h, url, 1, h->etag_timeout, &hc, NULL, &oom);
    if (oom) return vc_errf(VC_ENOMEM, "out of memory");
    curl_easy_setopt(h->curl, CURLOPT_WRITEFUNCTION, on_mem);
    curl_easy_setopt(h->curl, CURLOPT_WRITEDATA, &m);
    CURLcode rc = curl_easy_perform(h->curl);
    curl_slist_free_all(hl);
    if (m.too_big) return vc_errf(VC_EFORMAT, "%s: answer larger than %zu bytes", url, max_bytes);
    if (rc == CURLE_WRITE_ERROR) return vc_errf(VC_ENOMEM, "out of memory reading %s", url);
    if (rc != CURLE_OK) return transport_error(h, rc, url);
    curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &r->status);
    if (!r->body && !(r->body = calloc(1, 1))) return vc_errf(VC_ENOMEM, "out of memory");
    return VC_OK;
}

/* ---- GET into a file ---- */

typedef struct {
    hub_http *h;
    hub_resp *r;
    hdr_ctx *hc;
    int fd;
    long long resume;
    hub_progress *p;
    int started, to_file;
    int werrno;      /* errno of a failed write or truncate */
    int bad_range;   /* a 206 that does not start where we asked */
    size_t err_cap;
} file_ctx;

static size_t on_file(char *buf, size_t size, size_t nmemb, void *ud) {
    file_ctx *f = ud;
    size_t len = size * nmemb;
    if (!f->started) {
        f->started = 1;
        long st = 0;
        curl_easy_getinfo(f->h->curl, CURLINFO_RESPONSE_CODE, &st);
        f->r->status = st;
        if (st == 206) {
            if (f->hc->range_start != f->resume) {
                f->bad_range = 1;
                return 0;
            }
            f->to_file = 1;
        } else if (st == 200) {
            if (f->resume > 0 && ftruncate(f->fd, 0)) { /* the server ignored the Range: start over */
                f->werrno = errno;
                return 0;
            }
            f->resume = 0;
            if (f->p) f->p->done = f->p->start = 0;
            f->to_file = 1;
        }
    }
    if (!f->to_file) { /* an error page: keep its start for the message */
        hub_resp *r = f->r;
        size_t take = r->body_len < HUB_ERR_BODY_MAX ? HUB_ERR_BODY_MAX - r->body_len : 0;
        if (take > len) take = len;
        if (take) {
            char *nb = realloc(r->body, r->body_len + take + 1);
            if (nb) {
                memcpy(nb + r->body_len, buf, take);
                r->body = nb;
                r->body_len += take;
                nb[r->body_len] = 0;
            }
        }
        return len;
    }
    for (size_t off = 0; off < len;) {
        ssize_t w = write(f->fd, buf + off, len - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            f->werrno = w < 0 ? errno : EIO;
            return 0;
        }
        off += (size_t)w;
    }
    if (f->p) {
        f->p->done += (long long)len;
        if (f->p->on && hub_now() - f->p->last >= 0.1) hub_progress_draw(f->p, 0);
    }
    return len;
}

int hub_http_get_file(hub_http *h, const char *url, int fd, const char *path, long long resume, hub_progress *p,
                      hub_resp *r, int *retry) {
    *retry = 0;
    hub_resp_free(r);
    hdr_ctx hc = {r, -1};
    file_ctx f = {.h = h, .r = r, .hc = &hc, .fd = fd, .resume = resume, .p = p};
    char range[64];
    snprintf(range, sizeof range, "Range: bytes=%lld-", resume);
    int oom;
    struct curl_slist *hl = setup(h, url, 1, h->dl_timeout, &hc, resume > 0 ? range : NULL, &oom);
    if (oom) return vc_errf(VC_ENOMEM, "out of memory");
    curl_easy_setopt(h->curl, CURLOPT_WRITEFUNCTION, on_file);
    curl_easy_setopt(h->curl, CURLOPT_WRITEDATA, &f);
    CURLcode rc = curl_easy_perform(h->curl);
    curl_slist_free_all(hl);
    if (f.werrno == ENOSPC) return vc_errf(VC_EIO, "no space left on device while writing %s", path);
    if (f.werrno) return vc_errf(VC_EIO, "cannot write %s: %s", path, strerror(f.werrno));
    if (f.bad_range)
        return vc_errf(VC_EFORMAT, "%s: asked for bytes %lld- but the server answered from byte %lld", url, resume,
                       hc.range_start);
    if (rc != CURLE_OK) {
        *retry = 1;
        return vc_errf(VC_EIO, "%s: %s", url, h->errbuf[0] ? h->errbuf : curl_easy_strerror(rc));
    }
    curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &r->status);
    if (!f.started && r->status == 200 && resume > 0 && ftruncate(fd, 0)) /* an empty 200 body */
        return vc_errf(VC_EIO, "cannot write %s: %s", path, strerror(errno));
    return VC_OK;
}

/* ---- progress ---- */

void hub_fmt_size(double n, char *buf, size_t len) {
    static const char *const units[] = {"", "k", "M", "G", "T", "P", "E", "Z"};
    for (int i = 0; i < 8; i++) {
        if (n < 999.5 && n > -999.5) {
            double a = n < 0 ? -n : n;
            if (a < 9.995) snprintf(buf, len, "%1.2f%s", n, units[i]);
            else if (a < 99.95) snprintf(buf, len, "%2.1f%s", n, units[i]);
            else snprintf(buf, len, "%3.0f%s", n, units[i]);
            return;
        }
        n /= 1024.0;
    }
    snprintf(buf, len, "%3.1fY", n);
}

void hub_fmt_time(double s, char *buf, size_t len) {
    long long t = s < 0 ? 0 : (long long)s;
    long long h = t / 3600, m = t / 60 % 60, sec = t % 60;
    if (h) snprintf(buf, len, "%lld:%02lld:%02lld", h, m, sec);
    else snprintf(buf, len, "%02lld:%02lld", m, sec);
}

void hub_progress_draw(hub_progress *p, int final) {
    if (!p || !p->on) return;
    double now = hub_now(), el = now - p->t0;
    p->last = now;
    double rate = el > 0 ? (double)(p->done - p->start) / el : 0;
    char n[16], tot[16], rs[16], e[16], rem[16], line[512];
    hub_fmt_size((double)p->done, n, sizeof n);
    hub_fmt_time(el, e, sizeof e);
    if (rate > 0) hub_fmt_size(rate, rs, sizeof rs);
    else snprintf(rs, sizeof rs, "?");
    const char *name = p->name;
    size_t nl = strlen(name);
    char shown[64];
    if (nl > 40) snprintf(shown, sizeof shown, "(…)%s", name + nl - 40);
    else snprintf(shown, sizeof shown, "%s", name);
    if (p->total > 0) {
        double frac = (double)p->done / (double)p->total;
        if (frac > 1) frac = 1;
        /* tqdm's bar: 10 cells of eighths */
        static const char *const part[] = {"", "▏", "▎", "▍", "▌", "▋", "▊", "▉"};
        char bar[64] = "";
        int eighths = (int)(frac * 80), full = eighths / 8, cells = 0;
        for (int i = 0; i < full; i++, cells++) strcat(bar, "█");
        if (full < 10 && eighths % 8) {
            strcat(bar, part[eighths % 8]);
            cells++;
        }
        for (; cells < 10; cells++) strcat(bar, " ");
        hub_fmt_size((double)p->total, tot, sizeof tot);
        if (rate > 0) hub_fmt_time((double)(p->total - p->done) / rate, rem, sizeof rem);
        else snprintf(rem, sizeof rem, "?");
        snprintf(line, sizeof line, "%s: %3.0f%%|%s| %s/%s [%s<%s, %sB/s]", shown, frac * 100, bar, n, tot, e, rem,
                 rs);
    } else {
        snprintf(line, sizeof line, "%s: %s [%s, %sB/s]", shown, n, e, rs);
    }
    fprintf(stderr, "\r%s\033[K%s", line, final ? "\n" : "");
    fflush(stderr);
}
