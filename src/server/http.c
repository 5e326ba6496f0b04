/* http: the HTTP side of `vllmc serve` on libmicrohttpd, one thread per
 * connection (requests wait for the engine, streams block between events), and
 * srv_run: over an opened model stack (stack.h), load the chat template and
 * generation config, listen, serve, shut down on SIGINT/SIGTERM.
 *
 * Routes and answers are vLLM's (FastAPI's for unknown paths and methods);
 * with API keys, every /v1 path needs `Authorization: Bearer KEY`. */
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/err.h"
#include "base/file.h"
#include "server/openai.h"

#define MAX_BODY ((size_t)32 << 20)

typedef struct {
    sbuf body;
    int too_large;
} conn_state;

/* One request, as the replies and the access log need it. */
typedef struct {
    srv_server *s;
    struct MHD_Connection *conn;
    const char *method, *url;
    const char *version; /* the request line's protocol as libmicrohttpd read it ("HTTP/1.0", "HTTP/1.1") */
} http_req;

typedef struct {
    srv_server *s;
    struct MHD_Connection *conn;
    oa_job *job;
    sbuf out;
    size_t off;
    int done;
} stream_state;

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

static void access_log(const http_req *r, int code) {
    if (!r->s->cfg.access_log) return;
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    char host[INET6_ADDRSTRLEN] = "-";
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
    fprintf(stderr, "INFO vllmc: %s:%d - \"%s %s %s\" %d %s\n", host, port, r->method, r->url, r->version, code,
            status_text(code));
}

static enum MHD_Result reply(struct MHD_Connection *conn, int code, const char *type, char *body, size_t len) {
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body ? body : (void *)"", body ? MHD_RESPMEM_MUST_FREE
                                                                                               : MHD_RESPMEM_PERSISTENT);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    if (type) MHD_add_response_header(r, "Content-Type", type);
    enum MHD_Result ok = MHD_queue_response(conn, (unsigned)code, r);
    MHD_destroy_response(r);
    return ok;
}

static enum MHD_Result reply_json(const http_req *r, int code, char *body, size_t len) {
    access_log(r, code);
    return reply(r->conn, code, "application/json", body, len);
}

static enum MHD_Result reply_error(const http_req *r, const srv_error *e) {
    size_t n;
    char *b = oa_error_json(e, &n);
    return reply_json(r, e->status ? e->status : 500, b, n);
}

static enum MHD_Result reply_literal(const http_req *r, int code, const char *json) {
    char *b = strdup(json);
    return reply_json(r, code, b, b ? strlen(b) : 0);
}

/* Is the client still there? (a closed socket reads as EOF) */
static int client_alive(void *ctx) {
    struct MHD_Connection *conn = ctx;
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci) return 1;
    struct pollfd p = {.fd = ci->connect_fd, .events = POLLIN | POLLRDHUP};
    if (poll(&p, 1, 0) <= 0) return 1;
    if (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) return 0;
    char c;
    ssize_t r = recv(ci->connect_fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    return !(r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR));
}

static int stream_alive(void *ctx) {
    stream_state *st = ctx;
    return !st->s->stopping && client_alive(st->conn);
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)pos;
    stream_state *st = cls;
    while (st->off == st->out.n) {
        if (st->done) return MHD_CONTENT_READER_END_OF_STREAM;
        st->out.n = 0;
        st->off = 0;
        if (oa_stream(st->job, stream_alive, st, &st->out, &st->done) || st->out.oom)
            return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    size_t n = st->out.n - st->off;
    if (n > max) n = max;
    memcpy(buf, st->out.b + st->off, n);
    st->off += n;
    return (ssize_t)n;
}

static void stream_free(void *cls) {
    stream_state *st = cls;
    oa_free(st->job); /* aborts a request whose client went away */
    sb_free(&st->out);
    pthread_mutex_lock(&st->s->mu);
    st->s->n_calls--;
    pthread_mutex_unlock(&st->s->mu);
    free(st);
}

static int authorized(srv_server *s, struct MHD_Connection *conn, const char *url) {
    if (!s->cfg.n_api_keys || strncmp(url, "/v1", 3) != 0) return 1;
    const char *h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    if (!h || strncmp(h, "Bearer ", 7) != 0) return 0;
    for (int i = 0; i < s->cfg.n_api_keys; i++)
        if (!strcmp(h + 7, s->cfg.api_keys[i])) return 1;
    return 0;
}

static enum MHD_Result completions(const http_req *rq, conn_state *cs, int chat) {
    srv_server *s = rq->s;
    struct MHD_Connection *conn = rq->conn;
    srv_error err = {0};
    oa_job *job;
    if (oa_start(s, cs->body.b ? cs->body.b : "", cs->body.n, chat, &job, &err))
        return reply_error(rq, &err);
    if (oa_is_stream(job)) {
        stream_state *st = calloc(1, sizeof *st);
        struct MHD_Response *r = st ? MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, stream_read, st,
                                                                        stream_free)
                                    : NULL;
        if (!r) {
            free(st);
            oa_free(job);
            return MHD_NO;
        }
        st->s = s;
        st->conn = conn;
        st->job = job;
        pthread_mutex_lock(&s->mu);
        s->n_calls++;
        pthread_mutex_unlock(&s->mu);
        MHD_add_response_header(r, "Content-Type", "text/event-stream; charset=utf-8");
        access_log(rq, 200);
        enum MHD_Result ok = MHD_queue_response(conn, 200, r);
        MHD_destroy_response(r);
        return ok;
    }
    pthread_mutex_lock(&s->mu);
    s->n_calls++;
    pthread_mutex_unlock(&s->mu);
    char *body = NULL;
    size_t len = 0;
    int rc = oa_wait(job, client_alive, conn, &body, &len, &err);
    oa_free(job);
    pthread_mutex_lock(&s->mu);
    s->n_calls--;
    pthread_mutex_unlock(&s->mu);
    if (rc == 1) return MHD_NO; /* the client left: close the connection */
    if (rc) return reply_error(rq, &err);
    return reply_json(rq, 200, body, len);
}

static enum MHD_Result models(const http_req *r) {
    srv_server *s = r->s;
    sbuf o = {0};
    sb_str(&o, "{\"object\":\"list\",\"data\":[");
    for (int i = 0; i < s->ctx.n_names; i++) {
        sb_str(&o, i ? ",{\"id\":" : "{\"id\":");
        sb_jstrz(&o, s->ctx.names[i]);
        sb_printf(&o, ",\"object\":\"model\",\"created\":%ld,\"owned_by\":\"vllm\",\"root\":", s->created);
        sb_jstrz(&o, s->model_root);
        sb_printf(&o, ",\"parent\":null,\"max_model_len\":%d,\"permission\":[{\"id\":\"modelperm-%d\","
                      "\"object\":\"model_permission\",\"created\":%ld,\"allow_create_engine\":false,"
                      "\"allow_sampling\":true,\"allow_logprobs\":true,\"allow_search_indices\":false,"
                      "\"allow_view\":true,\"allow_fine_tuning\":false,\"organization\":\"*\",\"group\":null,"
                      "\"is_blocking\":false}]}",
                  s->ctx.max_model_len, i, s->created);
    }
    sb_str(&o, "]}");
    size_t n;
    char *b = sb_take(&o, &n);
    return reply_json(r, 200, b, n);
}

static enum MHD_Result route(const http_req *r, conn_state *cs) {
    srv_server *s = r->s;
    struct MHD_Connection *conn = r->conn;
    const char *url = r->url, *method = r->method;
    int get = !strcmp(method, "GET"), post = !strcmp(method, "POST");
    srv_error err = {0};
    if (!authorized(s, conn, url)) return reply_literal(r, 401, "{\"error\":\"Unauthorized\"}");
    if (!strcmp(url, "/health")) {
        if (!get) goto not_allowed;
        access_log(r, s->dead ? 503 : 200);
        return reply(conn, s->dead ? 503 : 200, NULL, NULL, 0);
    }
    if (!strcmp(url, "/ping")) {
        if (!get && !post) goto not_allowed;
        access_log(r, s->dead ? 503 : 200);
        return reply(conn, s->dead ? 503 : 200, NULL, NULL, 0);
    }
    if (!strcmp(url, "/version")) {
        if (!get) goto not_allowed;
        return reply_literal(r, 200, "{\"version\":\"" VLLMC_VERSION "\"}");
    }
    if (!strcmp(url, "/metrics")) {
        if (!get) goto not_allowed;
        eng_stats st = eng_get_stats(s->e);
        size_t n;
        char *b = mt_render(&s->metrics, &st, s->name, &n);
        access_log(r, 200);
        return reply(conn, 200, "text/plain; version=0.0.4; charset=utf-8", b, n);
    }
    if (!strcmp(url, "/v1/models")) {
        if (!get) goto not_allowed;
        return models(r);
    }
    if (!strncmp(url, "/v1/models/", 11)) {
        if (!get) goto not_allowed;
        for (int i = 0; i < s->ctx.n_names; i++)
            if (!strcmp(url + 11, s->ctx.names[i])) return models(r);
        srv_fail(&err, 404, "model", "The model `%s` does not exist.", url + 11);
        return reply_error(r, &err);
    }
    int comp = !strcmp(url, "/v1/completions"), chat = !strcmp(url, "/v1/chat/completions");
    int tokz = !strcmp(url, "/tokenize"), detok = !strcmp(url, "/detokenize");
    if (!comp && !chat && !tokz && !detok) return reply_literal(r, 404, "{\"detail\":\"Not Found\"}");
    if (!post) goto not_allowed;
    if (cs->too_large) {
        srv_fail_parse(&err, NULL, "The request body is larger than %zu MiB.", MAX_BODY >> 20);
        return reply_error(r, &err);
    }
    const char *ct = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type");
    if (!ct || strncasecmp(ct, "application/json", 16) != 0 || (ct[16] && ct[16] != ';' && ct[16] != ' ')) {
        srv_fail_parse(&err, NULL, "Content-Type must be application/json (got %s).", ct ? ct : "none");
        return reply_error(r, &err);
    }
    if (s->draining || s->dead) {
        srv_fail(&err, 503, NULL, "%s", s->dead ? s->dead_msg : "The server is shutting down.");
        return reply_error(r, &err);
    }
    if (comp || chat) return completions(r, cs, chat);
    char *b = NULL;
    size_t n = 0;
    int rc = tokz ? srv_tokenize(&s->ctx, cs->body.b ? cs->body.b : "", cs->body.n, &b, &n, &err)
                  : srv_detokenize(&s->ctx, cs->body.b ? cs->body.b : "", cs->body.n, &b, &n, &err);
    if (rc) return reply_error(r, &err);
    return reply_json(r, 200, b, n);
not_allowed:
    return reply_literal(r, 405, "{\"detail\":\"Method Not Allowed\"}");
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **con_cls) {
    srv_server *s = cls;
    conn_state *cs = *con_cls;
    if (!cs) {
        if (!(cs = calloc(1, sizeof *cs))) return MHD_NO;
        *con_cls = cs;
        return MHD_YES;
    }
    if (*upload_size) {
        if (cs->body.n + *upload_size > MAX_BODY) cs->too_large = 1;
        if (!cs->too_large) sb_raw(&cs->body, upload, *upload_size);
        *upload_size = 0;
        return cs->body.oom ? MHD_NO : MHD_YES;
    }
    http_req r = {s, conn, method, url, version};
    return route(&r, cs);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode t) {
    (void)cls, (void)conn, (void)t;
    conn_state *cs = *con_cls;
    if (cs) {
        sb_free(&cs->body);
        free(cs);
        *con_cls = NULL;
    }
}

/* ---- start-up ---- */

static int load_generation_config(srv_server *s) {
    const char *gc = s->cfg.generation_config ? s->cfg.generation_config : "auto";
    if (!strcmp(gc, "vllm")) return VC_OK;
    char *path = vc_path_join(!strcmp(gc, "auto") ? s->dir : gc, "generation_config.json");
    if (!path) return vc_errf(VC_ENOMEM, "out of memory");
    char *text = NULL;
    size_t len;
    if (!vc_file_exists(path)) {
        free(path);
        return strcmp(gc, "auto") ? vc_errf(VC_EIO, "--generation-config %s: no generation_config.json there", gc)
                                  : VC_OK;
    }
    int rc = vc_read_file(path, (size_t)16 << 20, &text, &len);
    cJSON *j = rc ? NULL : cJSON_ParseWithLength(text, len);
    if (!rc && !cJSON_IsObject(j)) rc = vc_errf(VC_EFORMAT, "%s: not a JSON object", path);
    sbuf log = {0};
    static const char *const keys[] = {"repetition_penalty", "temperature", "top_k", "top_p", "min_p",
                                       "max_new_tokens"};
    for (size_t k = 0; !rc && k < sizeof keys / sizeof *keys; k++) {
        const cJSON *x = cJSON_GetObjectItemCaseSensitive(j, keys[k]);
        if (!x || cJSON_IsNull(x)) continue;
        if (!cJSON_IsNumber(x)) {
            rc = vc_errf(VC_EFORMAT, "%s: '%s' must be a number", path, keys[k]);
            break;
        }
        double v = x->valuedouble;
        srv_ctx *c = &s->ctx;
        switch (k) {
        case 0: c->has_repetition_penalty = 1, c->repetition_penalty = (float)v; break;
        case 1: c->has_temperature = 1, c->temperature = (float)v; break;
        case 2: c->has_top_k = 1, c->top_k = (int)v; break;
        case 3: c->has_top_p = 1, c->top_p = (float)v; break;
        case 4: c->has_min_p = 1, c->min_p = (float)v; break;
        default: c->has_max_new_tokens = 1, c->max_new_tokens = v < 1 ? 1 : v > 1e9 ? 1000000000 : (int)v; break;
        }
        sb_printf(&log, "%s'%s': %g", log.n ? ", " : "", k == 5 ? "max_tokens" : keys[k], v);
    }
    if (!rc && log.n)
        fprintf(stderr, "INFO vllmc: Default sampling parameters have been overridden by the model's Hugging Face "
                        "generation config recommended from the model creator. If this is not intended, please "
                        "relaunch vLLM instance with `--generation-config vllm`.\nINFO vllmc: Using default chat "
                        "sampling params from model: {%s}\n", log.b);
    sb_free(&log);
    cJSON_Delete(j);
    free(text);
    free(path);
    return rc;
}

/* --chat-template: a file, else the template text itself (as vLLM). */
static int load_template(srv_server *s) {
    const char *src = NULL;
    size_t len = 0;
    char *file = NULL;
    tmpl_model tm = {0};
    int rc = tmpl_model_load(s->dir, NULL, 0, 0, &tm);
    if (rc) return rc;
    s->bos = tm.bos_token, s->eos = tm.eos_token, s->unk = tm.unk_token, s->pad = tm.pad_token;
    tm.bos_token = tm.eos_token = tm.unk_token = tm.pad_token = NULL;
    if (s->cfg.chat_template) {
        if (vc_file_exists(s->cfg.chat_template)) {
            if ((rc = vc_read_file(s->cfg.chat_template, (size_t)16 << 20, &file, &len))) goto out;
            src = file;
        } else {
            src = s->cfg.chat_template;
            len = strlen(src);
        }
    } else if (tm.source) {
        src = tm.source;
        len = tm.len;
    }
    if (src) {
        tmpl_error te = {0};
        if (tmpl_compile(src, len, &s->tmpl, &te))
            rc = vc_errf(VC_EFORMAT, "chat template (%s): line %d: %s",
                         s->cfg.chat_template ? s->cfg.chat_template : tm.origin ? tm.origin : "model", te.line,
                         te.message);
    }
out:
    free(file);
    tmpl_model_free(&tm);
    return rc;
}

static volatile sig_atomic_t got_signal;
static void on_signal(int sig) { got_signal = sig; }

static int bind_addr(const srv_config *c, struct sockaddr_storage *ss, socklen_t *sl) {
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *res;
    char port[16];
    snprintf(port, sizeof port, "%d", c->port);
    const char *host = c->host && c->host[0] ? c->host : NULL;
    if (!host) hints.ai_family = AF_INET;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc) return vc_errf(VC_EINVAL, "--host %s: %s", host ? host : "", gai_strerror(rc));
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *sl = res->ai_addrlen;
    freeaddrinfo(res);
    return VC_OK;
}

int srv_run(const srv_config *cfg) {
    srv_server *s = calloc(1, sizeof *s);
    if (!s) return 1;
    s->cfg = *cfg;
    s->dir = cfg->stk->model_dir;
    s->be = cfg->stk->be, s->m = cfg->stk->m, s->tok = cfg->stk->tok, s->e = cfg->stk->e;
    s->name = cfg->n_names ? cfg->names[0] : s->dir;
    s->created = (long)time(NULL);
    snprintf(s->model_root, sizeof s->model_root, "%s", s->dir);
    int status = 1, fe = 0;
    struct MHD_Daemon *d = NULL;
    if (load_template(s) || load_generation_config(s)) {
        fprintf(stderr, "ERROR vllmc: %s\n", vc_errmsg());
        goto out;
    }
    srv_ctx *c = &s->ctx;
    c->tok = s->tok;
    c->tmpl = s->tmpl;
    c->bos_token = s->bos, c->eos_token = s->eos, c->unk_token = s->unk, c->pad_token = s->pad;
    c->names = cfg->n_names ? cfg->names : &s->name;
    c->n_names = cfg->n_names ? cfg->n_names : 1;
    c->max_model_len = eng_max_model_len(s->e);
    c->vocab_size = s->m->cfg.vocab_size;
    c->max_logprobs = cfg->max_logprobs;
    if (mt_init(&s->metrics, c->max_model_len) || fe_start(s)) {
        fprintf(stderr, "ERROR vllmc: cannot start: %s\n", vc_errmsg());
        goto out;
    }
    fe = 1;
    struct sockaddr_storage ss;
    socklen_t sl;
    if (bind_addr(cfg, &ss, &sl)) {
        fprintf(stderr, "ERROR vllmc: %s\n", vc_errmsg());
        goto out;
    }
    /* SIGINT/SIGTERM set a flag that the loop below polls; MHD's threads start with them blocked */
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &block, &old); /* threads started now inherit the mask */
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ITC;
    if (ss.ss_family == AF_INET6) flags |= MHD_USE_IPv6;
    d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
                         MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30,
                         MHD_OPTION_THREAD_STACK_SIZE, (size_t)512 << 10, MHD_OPTION_CONNECTION_LIMIT, (unsigned)4000,
                         MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)256 << 10, MHD_OPTION_END);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (!d) {
        fprintf(stderr, "ERROR vllmc: cannot listen on %s:%d: %s\n", cfg->host ? cfg->host : "0.0.0.0", cfg->port,
                strerror(errno));
        goto out;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    int port = di ? di->port : cfg->port;
    const char *host = cfg->host && cfg->host[0] ? cfg->host : "0.0.0.0";
    fprintf(stderr, "INFO vllmc: Available routes are: /v1/completions, /v1/chat/completions, /v1/models, /tokenize, "
                    "/detokenize, /health, /ping, /version, /metrics\n");
    /* the line tests and scripts wait for: everything above is ready when it appears */
    int v6 = strchr(host, ':') != NULL; /* an IPv6 literal goes in brackets in a URL */
    fprintf(stderr, "INFO vllmc: listening on http://%s%s%s:%d (vllmc %s, pid %d)\n", v6 ? "[" : "", host, v6 ? "]" : "",
            port, VLLMC_VERSION, (int)getpid());
    while (!got_signal) usleep(50000); /* the handler may run on any thread: poll the flag */
    fprintf(stderr, "INFO vllmc: %s: shutting down, in-flight requests have %.0f s to finish\n",
            got_signal == SIGINT ? "SIGINT" : "SIGTERM", cfg->shutdown_grace_s);
    /* stop accepting; let what is in flight finish for a while, then abort it */
    MHD_socket lsock = MHD_quiesce_daemon(d);
    if (lsock != MHD_INVALID_SOCKET) close(lsock);
    pthread_mutex_lock(&s->mu);
    s->draining = 1;
    pthread_mutex_unlock(&s->mu);
    double t0 = fe_now();
    for (;;) {
        pthread_mutex_lock(&s->mu);
        int busy = s->n_calls;
        pthread_mutex_unlock(&s->mu);
        if (!busy || fe_now() - t0 > cfg->shutdown_grace_s) break;
        usleep(20000);
    }
    fe_stop(s); /* aborts the rest; waiting HTTP threads see their requests end */
    fe = 0;
    MHD_stop_daemon(d);
    d = NULL;
    fprintf(stderr, "INFO vllmc: shutdown complete\n");
    status = 0;
out:
    if (d) MHD_stop_daemon(d);
    if (fe) fe_stop(s);
    if (s->metrics.len_bounds) mt_free(&s->metrics);
    tmpl_free(s->tmpl);
    free(s->bos);
    free(s->eos);
    free(s->unk);
    free(s->pad);
    free(s);
    return status;
}
