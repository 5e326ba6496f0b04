/* http: the requests of `vllmc serve` on libmicrohttpd's event-loop threads
 * (conns.h says how the pieces fit). A request is a small state machine
 * (srv_conn.phase): its body is read, a worker parses it, then it waits for
 * the engine suspended, and libmicrohttpd resumes it whenever there is
 * something to send. Nothing here blocks.
 *
 * Routes and answers are vLLM's (FastAPI's for unknown paths and methods);
 * with API keys, every /v1 path needs `Authorization: Bearer KEY`, as vLLM's
 * middleware checks it (OPTIONS passes). */
#include <arpa/inet.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "base/err.h"
#include "base/fault.h"
#include "server/conns.h"
#include "server/http.h"
#include "server/models.h"

#define MAX_BODY ((size_t)32 << 20)

/* routes before R_COMP are answered at once; from R_COMP on they take a POST body and a worker */
enum { R_NONE, R_HEALTH, R_PING, R_VERSION, R_METRICS, R_MODELS, R_MODEL, R_COMP, R_CHAT, R_TOKZ, R_DETOK,
       R_LORA_LOAD, R_LORA_UNLOAD };

static const char *status_text(int code) {
    switch (code) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "";
    }
}

/* The path as the log shows it: percent-encoded where it is not plain
 * (urllib.parse.quote's safe set), so no control character reaches the log. */
static void quote_path(char *out, size_t cap, const char *p) {
    static const char hex[] = "0123456789ABCDEF";
    size_t n = 0;
    for (; *p && n + 4 < cap; p++) {
        unsigned char ch = (unsigned char)*p;
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || strchr("_.-~/%", ch)) {
            out[n++] = (char)ch;
        } else {
            out[n++] = '%';
            out[n++] = hex[ch >> 4];
            out[n++] = hex[ch & 15];
        }
    }
    if (*p && n + 4 <= cap) out[n++] = '.', out[n++] = '.', out[n++] = '.';
    out[n] = 0;
}

static void access_log(const srv_conn *c, int code) {
    if (!c->s->cfg.access_log) return;
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    char host[INET6_ADDRSTRLEN] = "-", path[1024], method[32];
    int port = 0;
    if (ci && ci->client_addr) {
        const struct sockaddr *sa = ci->client_addr;
        if (sa->sa_family == AF_INET) {
            inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, host, sizeof host);
            port = ntohs(((const struct sockaddr_in *)sa)->sin_port);
        } else if (sa->sa_family == AF_INET6) {
            inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, host, sizeof host);
            port = ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
        }
    }
    quote_path(path, sizeof path, c->url);
    quote_path(method, sizeof method, c->method);
    fprintf(stderr, "INFO vllmc: %s:%d - \"%s %s %s\" %d %s\n", host, port, method, path, c->version, code,
            status_text(code));
}

/* body: malloc'd (freed here) or NULL (empty); a static body goes through reply_static. */
static enum MHD_Result reply_mode(srv_conn *c, int code, const char *type, char *body, size_t len, int close,
                                  enum MHD_ResponseMemoryMode mode) {
    access_log(c, code);
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body ? body : (void *)"", body ? mode
                                                                                               : MHD_RESPMEM_PERSISTENT);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    if (type) MHD_add_response_header(r, "Content-Type", type);
    if (close) MHD_add_response_header(r, "Connection", "close");
    enum MHD_Result ok = MHD_queue_response(c->conn, (unsigned)code, r);
    MHD_destroy_response(r);
    return ok;
}

static enum MHD_Result reply(srv_conn *c, int code, const char *type, char *body, size_t len, int close) {
    return reply_mode(c, code, type, body, len, close, MHD_RESPMEM_MUST_FREE);
}

static enum MHD_Result reply_json(srv_conn *c, int code, char *body, size_t len) {
    return reply(c, code, "application/json", body, len, 0);
}

static enum MHD_Result reply_error(srv_conn *c, const srv_error *e) {
    size_t n;
    char *b = oa_error_json(e, &n);
    int code = e->status ? e->status : 500;
    if (!b) { /* not even the error fits in memory: a fixed one */
        static char oom[] = "{\"error\":{\"message\":\"out of memory\",\"type\":\"InternalServerError\","
                            "\"param\":null,\"code\":500}}";
        return reply_mode(c, 500, "application/json", oom, sizeof oom - 1, 0, MHD_RESPMEM_PERSISTENT);
    }
    return reply(c, code, "application/json", b, n, code == 503);
}

static enum MHD_Result reply_literal(srv_conn *c, int code, const char *json) {
    return reply_mode(c, code, "application/json", (char *)json, strlen(json), 0, MHD_RESPMEM_PERSISTENT);
}

/* vLLM's AuthenticationMiddleware: "Authorization: <scheme> <key>", the scheme
 * case-insensitive; the header's value as the client sent it (a NUL inside
 * never matches); every key compared in full, in constant time. */
static int authorized(srv_server *s, struct MHD_Connection *conn, const char *url, const char *method) {
    if (!s->cfg.n_api_keys || strncmp(url, "/v1", 3) != 0 || !strcmp(method, "OPTIONS")) return 1;
    const char *h = NULL;
    size_t hn = 0;
    if (MHD_lookup_connection_value_n(conn, MHD_HEADER_KIND, "Authorization", 13, &h, &hn) != MHD_YES || !h)
        return 0;
    while (hn && (*h == ' ' || *h == '\t')) h++, hn--;
    while (hn && (h[hn - 1] == ' ' || h[hn - 1] == '\t')) hn--;
    if (hn < 7 || strncasecmp(h, "bearer ", 7) || memchr(h, 0, hn)) return 0;
    const char *key = h + 7;
    size_t kn = hn - 7;
    int ok = 0;
    for (int i = 0; i < s->cfg.n_api_keys; i++) {
        const char *k = s->cfg.api_keys[i];
        size_t n = strlen(k);
        unsigned char diff = (unsigned char)(n != kn);
        for (size_t j = 0; j < kn; j++) diff |= (unsigned char)(key[j] ^ (j < n ? k[j] : 0));
        ok |= !diff;
    }
    return ok;
}

/* The LoRA routes exist only with VLLM_ALLOW_RUNTIME_LORA_UPDATING (elsewhere they are unknown paths). */
static int route_of(const srv_server *s, const char *url) {
    static const struct {
        const char *path;
        int route;
    } t[] = {{"/health", R_HEALTH},   {"/ping", R_PING},
             {"/version", R_VERSION}, {"/metrics", R_METRICS},
             {"/v1/models", R_MODELS}, {"/v1/completions", R_COMP},
             {"/v1/chat/completions", R_CHAT}, {"/tokenize", R_TOKZ},
             {"/detokenize", R_DETOK}};
    for (size_t i = 0; i < sizeof t / sizeof *t; i++)
        if (!strcmp(url, t[i].path)) return t[i].route;
    if (s->cfg.runtime_lora && !strcmp(url, "/v1/load_lora_adapter")) return R_LORA_LOAD;
    if (s->cfg.runtime_lora && !strcmp(url, "/v1/unload_lora_adapter")) return R_LORA_UNLOAD;
    return strncmp(url, "/v1/models/", 11) ? R_NONE : R_MODEL;
}

/* GET /v1/models and /v1/models/NAME: the list (or a 404) into c->out / c->err. */
static void models_answer(srv_conn *c) {
    srv_server *s = c->s;
    if (c->route == R_MODEL && !models_has(s, c->url + 11)) {
        srv_fail(&c->err, 404, "model", "The model `%s` does not exist.", c->url + 11);
    } else if ((c->out = models_list(s, &c->out_n))) {
        c->code = 200;
    } else {
        srv_fail(&c->err, 500, NULL, "out of memory");
    }
}

static void work_models(srv_conn *c) {
    models_answer(c);
    conns_done(c, PH_REPLY);
}

static enum MHD_Result advance(srv_conn *c);

/* With LoRA on the list asks the adapter registry, whose lock a load holds while it reads an adapter's
 * files (or downloads them): a worker waits for it, never an event-loop thread. */
static enum MHD_Result models(srv_conn *c) {
    if (!c->s->cfg.loras) { /* only the served names: answered here */
        models_answer(c);
        c->phase = PH_REPLY;
        return advance(c);
    }
    c->phase = PH_WORK;
    if (conns_work(c->s->http, work_models, c)) {
        c->phase = PH_REPLY;
        srv_fail(&c->err, 500, NULL, "out of memory");
    }
    return advance(c);
}

/* ---- the worker side: parse, template, tokenize, queue ---- */

static void work_completion(srv_conn *c) {
    srv_server *s = c->s;
    const char *body = c->body.b ? c->body.b : "";
    if (oa_start(s, body, c->body.n, c->route == R_CHAT, &c->job, &c->err)) {
        conns_done(c, PH_REPLY);
    } else {
        oa_attach(c->job, c);
        conns_done(c, oa_is_stream(c->job) ? PH_STREAM : PH_WAIT);
    }
}

/* POST /v1/load_lora_adapter, /v1/unload_lora_adapter: a worker's job (loading reads the adapter's files).
 * Success is vLLM's plain-text line (a FastAPI Response without a media type: no Content-Type). */
static void work_lora(srv_conn *c) {
    srv_server *s = c->s;
    const char *body = c->body.b ? c->body.b : "";
    int rc = c->route == R_LORA_LOAD ? models_load(s, body, c->body.n, &c->out, &c->out_n, &c->err)
                                     : models_unload(s, body, c->body.n, &c->out, &c->out_n, &c->err);
    c->code = rc ? 0 : 200;
    c->out_plain = 1;
    conns_done(c, PH_REPLY);
}

static void work_tokenize(srv_conn *c) {
    srv_ctx *x = &c->s->ctx;
    const char *body = c->body.b ? c->body.b : "";
    int rc = c->route == R_TOKZ ? srv_tokenize(x, body, c->body.n, &c->out, &c->out_n, &c->err)
                                : srv_detokenize(x, body, c->body.n, &c->out, &c->out_n, &c->err);
    c->code = rc ? 0 : 200;
    conns_done(c, PH_REPLY);
}

/* ---- streaming ---- */

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)pos;
    srv_conn *c = cls;
    for (;;) {
        if (c->sse_off < c->sse.n) {
            size_t n = c->sse.n - c->sse_off;
            if (n > max) n = max;
            memcpy(buf, c->sse.b + c->sse_off, n);
            c->sse_off += n;
            return (ssize_t)n;
        }
        if (c->sse_done) return MHD_CONTENT_READER_END_OF_STREAM;
        if (c->gone) return MHD_CONTENT_READER_END_WITH_ERROR; /* the client left: its requests are aborted */
        c->sse.n = c->sse_off = 0;
        oa_stream(c->job, &c->sse, &c->sse_done);
        if (c->sse.oom) return MHD_CONTENT_READER_END_WITH_ERROR;
        if (!c->sse.n && !c->sse_done && conns_suspend(c, 1)) return 0; /* resumed when events come */
    }
}

static enum MHD_Result start_stream(srv_conn *c) {
    struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, stream_read, c, NULL);
    if (!r) return MHD_NO;
    c->phase = PH_STREAMING;
    MHD_add_response_header(r, "Content-Type", "text/event-stream; charset=utf-8");
    access_log(c, 200);
    enum MHD_Result ok = MHD_queue_response(c->conn, 200, r);
    MHD_destroy_response(r);
    return ok;
}

/* ---- fault injection (a `make test-faults` build only: vc_fault_enabled() is 0 elsewhere) ----
 * `X-Vllmc-Fault-Alloc: N` arms allocation failure N, counted over every thread from the moment the
 * headers are in until the request completes (tests/js/server_faults.mjs sweeps N). One request at a
 * time: the counters are the process's. */
static void fault_arm(srv_conn *c) {
    const char *v = MHD_lookup_connection_value(c->conn, MHD_HEADER_KIND, "X-Vllmc-Fault-Alloc");
    if (!v || !*v) return;
    char *end;
    long n = strtol(v, &end, 10);
    if (*end || n < 1) return;
    const char *mode = MHD_lookup_connection_value(c->conn, MHD_HEADER_KIND, "X-Vllmc-Fault-Mode");
    c->fault = n;
    if (mode && !strcmp(mode, "persistent")) vc_fault_arm_persistent(n);
    else vc_fault_arm(n);
}

static void fault_report(srv_conn *c) {
    vc_fault_disarm();
    fprintf(stderr, "INFO vllmc: fault injection: allocation %ld %s (%ld counted)\n", c->fault,
            vc_fault_hit() ? "failed" : "was never reached", vc_fault_count());
}

/* ---- the request's state machine ---- */

/* Called each time libmicrohttpd hands the request back (after its body, and
 * after every resume) until it is answered. */
static enum MHD_Result advance(srv_conn *c) {
    for (;;) {
        switch (conns_phase(c)) {
        case PH_WORK:
            if (conns_suspend(c, 0)) return MHD_YES;
            break;
        case PH_WAIT: {
            char *body = NULL;
            size_t len = 0;
            int rc = oa_poll(c->job, &body, &len, &c->err);
            if (rc > 0) return reply_json(c, 200, body, len);
            if (rc < 0) return reply_error(c, &c->err);
            if (conns_suspend(c, 1)) return MHD_YES;
            if (c->gone) return MHD_NO; /* the client left: close; completion aborts the job */
            break;
        }
        case PH_STREAM:
            return start_stream(c);
        case PH_REPLY:
            if (c->code) {
                char *b = c->out;
                c->out = NULL;
                return c->out_plain ? reply(c, c->code, NULL, b, c->out_n, 0) : reply_json(c, c->code, b, c->out_n);
            }
            return reply_error(c, &c->err);
        default:
            return MHD_YES;
        }
    }
}

/* 0 serving, 1 draining (shutting down), 2 dead (the engine failed; why says so). */
static int server_state(srv_server *s, char *why, size_t cap) {
    pthread_mutex_lock(&s->mu);
    int st = s->dead ? 2 : s->draining ? 1 : 0;
    if (why) snprintf(why, cap, "%s", s->dead_msg);
    pthread_mutex_unlock(&s->mu);
    return st;
}

static enum MHD_Result not_allowed(srv_conn *c) { return reply_literal(c, 405, "{\"detail\":\"Method Not Allowed\"}"); }

static enum MHD_Result answer_now(srv_conn *c, int get, int post) {
    srv_server *s = c->s;
    switch (c->route) {
    case R_HEALTH:
    case R_PING:
        if (!get && !(post && c->route == R_PING)) return not_allowed(c);
        return reply(c, server_state(s, NULL, 0) == 2 ? 503 : 200, NULL, NULL, 0, 0);
    case R_VERSION:
        return get ? reply_literal(c, 200, "{\"version\":\"" VLLMC_VERSION "\"}") : not_allowed(c);
    case R_METRICS: {
        if (!get) return not_allowed(c);
        eng_stats st = eng_get_stats(s->e);
        size_t n;
        char *run = NULL, *wait = NULL, *b = NULL;
        mt_lora_info li = {st.max_loras ? st.max_loras : s->cfg.max_loras, NULL, NULL, 0};
        if (s->cfg.loras) { /* vllm:lora_requests_info, only with --enable-lora (as vLLM) */
            li.running = run = models_names(s, st.lora_running, st.n_lora_running);
            li.waiting = wait = models_names(s, st.lora_waiting, st.n_lora_waiting);
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            li.now = (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
        }
        if (!s->cfg.loras || (run && wait)) b = mt_render(&s->metrics, &st, s->name, s->cfg.loras ? &li : NULL, &n);
        free(run);
        free(wait);
        return b ? reply(c, 200, "text/plain; version=0.0.4; charset=utf-8", b, n, 0) : MHD_NO;
    }
    case R_MODELS:
    case R_MODEL:
        return get ? models(c) : not_allowed(c);
    default:
        return reply_literal(c, 404, "{\"detail\":\"Not Found\"}");
    }
}

/* The body is complete: answer, or hand the request to a worker. */
static enum MHD_Result start(srv_conn *c) {
    srv_server *s = c->s;
    int get = !strcmp(c->method, "GET"), post = !strcmp(c->method, "POST");
    srv_error err = {0};
    conns_read_done(s->http, c->rec);
    if (!authorized(s, c->conn, c->url, c->method)) return reply_literal(c, 401, "{\"error\":\"Unauthorized\"}");
    if (c->route != R_HEALTH && c->route != R_PING && conns_count(s->http) > s->http->soft_limit) {
        srv_fail(&err, 503, NULL, "The server has too many open connections (more than %d); try again later.",
                 s->http->soft_limit);
        return reply_error(c, &err);
    }
    if (c->route < R_COMP) return answer_now(c, get, post);
    if (!post) return not_allowed(c);
    if (c->too_large) {
        srv_fail_parse(&err, NULL, "The request body is larger than %zu MiB.", MAX_BODY >> 20);
        return reply_error(c, &err);
    }
    if (c->body.oom) {
        srv_fail(&err, 500, NULL, "out of memory while reading the request body");
        return reply_error(c, &err);
    }
    const char *ct = MHD_lookup_connection_value(c->conn, MHD_HEADER_KIND, "Content-Type");
    if (!ct || strncasecmp(ct, "application/json", 16) != 0 || (ct[16] && ct[16] != ';' && ct[16] != ' ')) {
        srv_fail_parse(&err, NULL, "Content-Type must be application/json (got %s).", ct ? ct : "none");
        return reply_error(c, &err);
    }
    char why[sizeof s->dead_msg];
    int state = server_state(s, why, sizeof why);
    if (state) {
        srv_fail(&err, 503, NULL, "%s", state == 2 ? why : "The server is shutting down.");
        return reply_error(c, &err);
    }
    c->phase = PH_WORK;
    srv_work_fn fn = c->route == R_COMP || c->route == R_CHAT ? work_completion
                     : c->route == R_LORA_LOAD || c->route == R_LORA_UNLOAD ? work_lora
                                                                             : work_tokenize;
    if (conns_work(s->http, fn, c)) {
        c->phase = PH_REPLY;
        srv_fail(&c->err, 500, NULL, "out of memory");
    }
    return advance(c);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **con_cls) {
    srv_server *s = cls;
    srv_conn *c = *con_cls;
    if (!c) { /* the headers are in */
        if (!(c = calloc(1, sizeof *c))) return MHD_NO;
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        c->s = s;
        c->conn = conn;
        c->rec = ci ? ci->socket_context : NULL;
        c->method = method, c->url = url, c->version = version;
        c->route = route_of(s, url);
        c->phase = PH_BODY;
        MHD_set_connection_option(conn, MHD_CONNECTION_OPTION_TIMEOUT, s->http->io_timeout);
        *con_cls = c;
        if (vc_fault_enabled()) fault_arm(c);
        return MHD_YES;
    }
    if (conns_phase(c) != PH_BODY) return advance(c);
    if (*upload_size) {
        if (c->body.n + *upload_size > MAX_BODY) c->too_large = 1;
        if (!c->too_large && !c->body.oom) sb_raw(&c->body, upload, *upload_size);
        *upload_size = 0; /* a body that did not fit in memory is answered with a 500 once it is read */
        return MHD_YES;
    }
    return start(c);
}

/* The request is over (answered, failed, or its client left): free it. The
 * connection may carry another request: its reading starts now. */
static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode t) {
    (void)t;
    srv_server *s = cls;
    srv_conn *c = *con_cls;
    if (!c) return;
    *con_cls = NULL;
    oa_free(c->job); /* detaches c from the engine's events; aborts what is unfinished */
    if (c->fault) fault_report(c);
    conns_read_again(s->http, c->rec);
    MHD_set_connection_option(conn, MHD_CONNECTION_OPTION_TIMEOUT, s->http->keep_alive);
#ifdef __GLIBC__
    /* a big body's parse trees and token lists were freed on a worker's malloc arena: give the pages
     * back, so that one large request does not keep the server's RSS up for good */
    int trim = c->body.cap >= ((size_t)1 << 20);
#endif
    sb_free(&c->body);
    sb_free(&c->sse);
    free(c->out);
    free(c);
#ifdef __GLIBC__
    if (trim) malloc_trim(0);
#endif
}

/* libmicrohttpd's URL unescaping, except that a path whose escapes decode to
 * control characters (%00, %0a) stays as sent: no route matches it (404), the
 * log never sees the raw bytes, and a NUL cannot cut the path short. */
static size_t unescape(void *cls, struct MHD_Connection *conn, char *uri) {
    (void)cls, (void)conn;
    size_t n = strlen(uri);
    for (size_t i = 0; i + 2 < n; i++)
        if (uri[i] == '%') {
            char hx[3] = {uri[i + 1], uri[i + 2], 0}, *end;
            long v = strtol(hx, &end, 16);
            if (end == hx + 2 && (v < 0x20 || v == 0x7f)) return n;
        }
    return MHD_http_unescape(uri);
}

/* New connections while shutting down are closed as soon as accepted. This
 * replaces MHD_quiesce_daemon, which in libmicrohttpd 0.9.75 (Debian 12)
 * races with a thread-pool epoll worker removing the same listen socket from
 * its epoll set: the loser's epoll_ctl fails and the library aborts ("Failed
 * to remove listen FD from epoll set"; 2 shutdowns in 2,000 in a standalone
 * repro, none of 3,000 with this callback). The listen socket closes with
 * MHD_stop_daemon. */
static enum MHD_Result on_accept(void *cls, const struct sockaddr *addr, socklen_t len) {
    srv_server *s = cls;
    (void)addr, (void)len;
    pthread_mutex_lock(&s->mu);
    int draining = s->draining;
    pthread_mutex_unlock(&s->mu);
    return draining ? MHD_NO : MHD_YES;
}

struct MHD_Daemon *http_start(srv_server *s, const struct sockaddr *addr, int v6, int n_threads) {
    struct srv_http *h = s->http;
    unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME;
    if (v6) flags |= MHD_USE_IPv6;
    return MHD_start_daemon(flags, 0, on_accept, s, on_request, s, MHD_OPTION_SOCK_ADDR, addr,
                            MHD_OPTION_THREAD_POOL_SIZE, (unsigned)n_threads, MHD_OPTION_NOTIFY_COMPLETED,
                            on_completed, s, MHD_OPTION_NOTIFY_CONNECTION, conns_notify, s,
                            MHD_OPTION_CONNECTION_TIMEOUT, h->keep_alive, MHD_OPTION_CONNECTION_LIMIT,
                            (unsigned)h->hard_limit, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)64 << 10,
                            MHD_OPTION_LISTEN_BACKLOG_SIZE, 4096u, MHD_OPTION_UNESCAPE_CALLBACK, unescape, NULL,
                            MHD_OPTION_END);
}
