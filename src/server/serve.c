/* serve: `vllmc serve` over an opened model stack (stack.h): load the chat
 * template and generation config, start the engine thread, the connection
 * bookkeeping and libmicrohttpd, serve until SIGINT or SIGTERM, then shut down
 * in an order that never leaves a thread on freed state:
 *   close new connections -> let in-flight requests finish (the grace time) -> end the
 *   rest with an error event or a 503 -> stop the workers and the watcher ->
 *   stop libmicrohttpd (joins its threads, completes every request) -> stop
 *   the engine thread -> free. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/err.h"
#include "base/file.h"
#include "base/json.h"
#include "server/conns.h"
#include "server/http.h"
#include "server/messages.h"
#include "server/models.h"
#include "server/structured.h"

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
    cJSON *j = rc ? NULL : js_parse(text, len, NULL);
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
        fprintf(stderr, "INFO vllmc: default sampling parameters from the model's generation_config.json: {%s} "
                        "(--generation-config vllm ignores them)\n", log.b);
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
    if (s->m && !strcmp(s->m->cfg.model_type, "gpt_oss")) {
        /* vLLM renders gpt-oss chats with openai_harmony whatever template is given (template/harmony.h) */
        s->ctx.harmony = 1;
        fprintf(stderr, "INFO vllmc: gpt-oss: chat prompts are rendered in the harmony format%s\n",
                s->cfg.chat_template ? " (--chat-template is not used, as in vLLM)" : "");
        s->tmpl_format = SRV_CONTENT_STRING;
        goto out;
    }
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
    s->tmpl_format = src ? srv_content_format_of(src, len) : SRV_CONTENT_STRING;
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

static _Atomic int got_signal; /* lock-free, so safe to set from a handler on any thread */
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

static long env_long(const char *name, long def, long lo, long hi) {
    const char *v = getenv(name);
    char *end;
    if (!v || !*v) return def;
    long x = strtol(v, &end, 10);
    if (*end || x < lo || x > hi) {
        fprintf(stderr, "WARNING vllmc: %s=%s is not an integer in [%ld, %ld]; using %ld\n", name, v, lo, hi, def);
        return def;
    }
    return x;
}

/* Wait up to t seconds for the live calls (and the requests being parsed) to end. */
static void wait_calls(srv_server *s, double t) {
    double t0 = fe_now();
    for (;;) {
        pthread_mutex_lock(&s->mu);
        int busy = s->n_calls;
        pthread_mutex_unlock(&s->mu);
        pthread_mutex_lock(&s->http->work_mu);
        busy += s->http->busy + (s->http->head != NULL);
        pthread_mutex_unlock(&s->http->work_mu);
        if (!busy || fe_now() - t0 > t) return;
        usleep(10000);
    }
}

static void shut_down(srv_server *s, struct MHD_Daemon *d) {
    pthread_mutex_lock(&s->mu);
    s->draining = 1; /* new connections: closed (http.c on_accept); new requests on open ones: 503 */
    pthread_mutex_unlock(&s->mu);
    fprintf(stderr, "INFO vllmc: %s: shutting down, in-flight requests have %g s to finish\n",
            got_signal == SIGINT ? "SIGINT" : "SIGTERM", s->cfg.shutdown_grace_s);
    wait_calls(s, s->cfg.shutdown_grace_s);
    /* the rest end now: streams with an error event and [DONE], waiting requests with a 503 */
    fe_fail_calls(s, 503, "The server is shutting down.");
    wait_calls(s, 2.0);
    conns_stop(s, s->http); /* workers and watcher; wakes whatever is still suspended */
    MHD_stop_daemon(d);     /* joins libmicrohttpd's threads: every request is completed and freed */
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
    int status = 1, fe = 0, conns = 0;
    struct MHD_Daemon *d = NULL;
    struct srv_http http = {0};
    pthread_mutex_init(&s->wake_mu, NULL);
    models_init(s);
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
    c->priority_scheduling = cfg->priority_scheduling;
    c->trust_request_chat_template = cfg->trust_request_chat_template;
    c->loras = cfg->loras;
    c->tool_parser = toolp_parser_by_name(TOOLP_KIND_TOOL, cfg->tool_call_parser);
    c->reasoning_parser = toolp_parser_by_name(TOOLP_KIND_REASONING, cfg->reasoning_parser);
    c->content_format = cfg->content_format;
    c->tmpl_content_format = s->tmpl_format;
    if (c->tool_parser || c->reasoning_parser || c->tmpl_content_format == SRV_CONTENT_OPENAI)
        fprintf(stderr, "INFO vllmc: output parsers: tool calls %s, reasoning %s; chat template content format %s\n",
                c->tool_parser ? toolp_parser_name(c->tool_parser) : "off (\"auto\" tool choice is a 400)",
                c->reasoning_parser ? toolp_parser_name(c->reasoning_parser) : "off",
                (c->content_format ? c->content_format : c->tmpl_content_format) == SRV_CONTENT_OPENAI ? "openai"
                                                                                                        : "string");
    c->max_seqs_per_request = (int)env_long("VLLMC_MAX_SEQS_PER_REQUEST", 1024, 1, 1 << 20);
    c->max_prompt_tokens_per_request = env_long("VLLMC_MAX_PROMPT_TOKENS_PER_REQUEST", 1L << 20, 1, 1L << 30);
    int threads = (int)env_long("VLLMC_HTTP_THREADS", 2, 1, 64);
    if (so_cache_new(64, &c->so_cache)) {
        fprintf(stderr, "ERROR vllmc: cannot start: %s\n", vc_errmsg());
        goto out;
    }
    if (mt_init(&s->metrics, c->max_model_len) || fe_start(s)) {
        fprintf(stderr, "ERROR vllmc: cannot start: %s\n", vc_errmsg());
        goto out;
    }
    fe = 1;
    conns = 1;
    int workers = (int)env_long("VLLMC_HTTP_WORKERS", 2, 1, 16);
    if (conns_start(s, &http, workers)) {
        fprintf(stderr, "ERROR vllmc: cannot start: %s\n", vc_errmsg());
        goto out;
    }
    fprintf(stderr, "INFO vllmc: HTTP: %d event-loop threads, %d request workers; connections: 503 beyond %d, refused "
                    "beyond %d; keep-alive %u s, a request must arrive within %.0f s, I/O timeout %u s; per request: "
                    "%d sequences, %lld prompt tokens\n",
            threads, workers, http.soft_limit, http.hard_limit, http.keep_alive, http.read_timeout, http.io_timeout,
            c->max_seqs_per_request, c->max_prompt_tokens_per_request);
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
    d = http_start(s, (struct sockaddr *)&ss, ss.ss_family == AF_INET6, threads);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (!d) {
        fprintf(stderr, "ERROR vllmc: cannot listen on %s:%d: %s\n", cfg->host ? cfg->host : "0.0.0.0", cfg->port,
                strerror(errno));
        goto out;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    int port = di ? di->port : cfg->port;
    const char *host = cfg->host && cfg->host[0] ? cfg->host : "0.0.0.0";
    if (cfg->runtime_lora)
        fprintf(stderr, "WARNING vllmc: VLLM_ALLOW_RUNTIME_LORA_UPDATING is set: any client may load and unload LoRA "
                        "adapters (POST /v1/load_lora_adapter, /v1/unload_lora_adapter); meant for local development%s\n",
                cfg->loras ? "" : " (LoRA is off: loading answers 400 without --enable-lora)");
    fprintf(stderr, "INFO vllmc: Available routes are: /v1/completions, /v1/chat/completions, /v1/models, /tokenize, "
                    "/detokenize, /health, /ping, /version, /metrics%s\n",
            cfg->runtime_lora ? ", /v1/load_lora_adapter, /v1/unload_lora_adapter" : "");
    /* the line tests and scripts wait for: everything above is ready when it appears */
    int v6 = strchr(host, ':') != NULL; /* an IPv6 literal goes in brackets in a URL */
    fprintf(stderr, "INFO vllmc: listening on http://%s%s%s:%d (vllmc %s, pid %d)\n", v6 ? "[" : "", host, v6 ? "]" : "",
            port, VLLMC_VERSION, (int)getpid());
    while (!got_signal) usleep(50000); /* the handler may run on any thread: poll the flag */
    shut_down(s, d);
    d = NULL;
    conns = 0;
    fe_stop(s);
    fe = 0;
    fprintf(stderr, "INFO vllmc: shutdown complete\n");
    status = 0;
out:
    if (conns) conns_stop(s, &http);
    if (d) MHD_stop_daemon(d);
    if (fe) fe_stop(s);
    if (s->http) conns_free(&http);
    so_cache_free(s->ctx.so_cache);
    pthread_mutex_destroy(&s->wake_mu);
    models_free(s);
    if (s->metrics.len_bounds) mt_free(&s->metrics);
    tmpl_free(s->tmpl);
    free(s->bos);
    free(s->eos);
    free(s->unk);
    free(s->pad);
    free(s);
    return status;
}
