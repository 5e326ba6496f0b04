/* vllmc bench serve: vLLM's serving benchmark (`vllm bench serve`, random dataset)
 * against any OpenAI-compatible /v1/completions endpoint.
 *
 * Every request is prepared before the clock starts (random token-id prompts,
 * seeded). Arrivals follow --request-rate (Poisson: exponential gaps; inf = all
 * at once); a team of min(--max-concurrency, P) threads takes requests in
 * order, each sleeping until its request's arrival time, so at most C are in
 * flight: the same schedule as vLLM's asyncio semaphore. Each thread makes one
 * blocking HTTP request (http_client.h) and times the SSE chunks as they
 * arrive. The report is vLLM's block, figures computed as vLLM does (numpy's
 * mean, median, std and linearly interpolated percentiles), next to this
 * machine's triad bandwidth and peak FMA rate measured just before the run. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/cpu/kernels.h"
#include "base/err.h"
#include "base/json.h"
#include "base/rng.h"
#include "base/threadpool.h"
#include "cli/cli.h"
#include "base/http_client.h"

static const char usage[] =
    "usage: vllmc bench serve [--base-url URL | --host H --port N] [--endpoint /v1/completions] [--model NAME]\n"
    "       [--num-prompts 1000] [--max-concurrency C] [--request-rate inf] [--random-input-len 1024]\n"
    "       [--random-output-len 128] [--random-range-ratio 0] [--random-vocab-size 256] [--seed 0]\n"
    "       [--api-key KEY] [--percentile-metrics ttft,tpot,itl,e2el] [--metric-percentiles 50,99] [--json]\n"
    "Streams P completions with random token-id prompts to an OpenAI-compatible server (vLLM's\n"
    "`vllm bench serve` with the random dataset) and reports TTFT, TPOT, ITL and end-to-end latency.\n"
    "Plain http:// only (https is not supported: the use case is benchmarking over loopback).\n"
    "The default URL is http://127.0.0.1:8000; --model defaults to the server's first /v1/models entry;\n"
    "--api-key defaults to $OPENAI_API_KEY. Prompt ids are drawn from [10, 10 + vocab size); requests\n"
    "always send ignore_eos, so every request generates its full length.\n";

enum { M_TTFT, M_TPOT, M_ITL, M_E2EL, N_METRICS, MAX_PCTS = 16 };
static const char *const metric_key[N_METRICS] = {"ttft", "tpot", "itl", "e2el"};
static const char *const metric_name[N_METRICS] = {"TTFT", "TPOT", "ITL", "E2EL"};
static const char *const metric_head[N_METRICS] = {"Time to First Token", "Time per Output Token (excl. 1st token)",
                                                   "Inter-token Latency", "End-to-end Latency"};

typedef struct {
    const char *base_url, *host, *endpoint, *model, *api_key;
    long long port, prompts, conc, in_len, out_len, vocab, seed; /* conc 0: unlimited */
    double rate, ratio;                                          /* rate: requests/s, INFINITY for all at once */
    int metrics[N_METRICS];
    double pcts[MAX_PCTS];
    int npcts, json;
} serve_args;

/* One request: its input, then what the thread that ran it measured (seconds). */
typedef struct {
    char *body; /* the JSON request */
    size_t body_len;
    int prompt_len, out_len;
    int ok, connected;
    double ttft, e2el;
    double *itl; /* gaps between chunks after the first */
    int n_itl, cap_itl;
    int n_text;       /* chunks with choices */
    int n_nonempty;   /* of those, chunks with text: the token count when the server sends no usage */
    int usage_tokens; /* usage.completion_tokens, -1 if not sent */
    char err[256];
} req_rec;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void sleep_until(double t) {
    if (t <= now_s()) return;
    struct timespec ts = {(time_t)t, (long)((t - floor(t)) * 1e9)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
    }
}

/* ---- arguments ---- */

static int parse_metrics(const char *s, serve_args *a) {
    memset(a->metrics, 0, sizeof a->metrics);
    for (const char *p = s; *p;) {
        size_t n = strcspn(p, ",");
        int k = 0;
        while (k < N_METRICS && (strlen(metric_key[k]) != n || strncmp(p, metric_key[k], n))) k++;
        if (k == N_METRICS) {
            cli_error("--percentile-metrics: unknown metric '%.*s' (choose from ttft, tpot, itl, e2el)", (int)n, p);
            return -1;
        }
        a->metrics[k] = 1;
        p += n + (p[n] == ',');
    }
    return 0;
}

static int parse_pcts(const char *s, serve_args *a) {
    a->npcts = 0;
    char tmp[64];
    for (const char *p = s; *p;) {
        size_t n = strcspn(p, ",");
        if (a->npcts == MAX_PCTS || n >= sizeof tmp) {
            cli_error("--metric-percentiles: at most %d values", MAX_PCTS);
            return -1;
        }
        memcpy(tmp, p, n), tmp[n] = 0;
        double v;
        if (cli_parse_float(tmp, "--metric-percentiles", &v)) return -1;
        if (v < 0 || v > 100) {
            cli_error("--metric-percentiles: %s is not in [0, 100]", tmp);
            return -1;
        }
        a->pcts[a->npcts++] = v;
        p += n + (p[n] == ',');
    }
    return 0;
}

/* 0 to run, 1 after --help, 2 on a usage error. */
static int parse(int argc, char **argv, serve_args *s) {
    cli_args a = {argc, 0, argv, NULL};
    while (a.i < argc) {
        const char *v;
        long long iv;
        CLI_INT_FLAG("--port", s->port, 1, 65535)
        CLI_INT_FLAG("--num-prompts", s->prompts, 1, 1 << 24)
        CLI_INT_FLAG("--max-concurrency", s->conc, 1, 1 << 20)
        CLI_INT_FLAG("--random-input-len", s->in_len, 0, 1 << 24)
        CLI_INT_FLAG("--random-output-len", s->out_len, 1, 1 << 24)
        CLI_INT_FLAG("--random-vocab-size", s->vocab, 1, 1 << 30)
        CLI_INT_FLAG("--seed", s->seed, 0, (1ll << 62))
        CLI_STR_FLAG("--base-url", s->base_url)
        CLI_STR_FLAG("--host", s->host)
        CLI_STR_FLAG("--endpoint", s->endpoint)
        CLI_STR_FLAG("--model", s->model)
        CLI_STR_FLAG("--api-key", s->api_key)
        if (cli_flag(&a, "--request-rate")) {
            if (!(v = cli_value(&a, "--request-rate"))) return 2;
            if (!strcmp(v, "inf")) {
                s->rate = INFINITY;
            } else if (cli_parse_float(v, "--request-rate", &s->rate) || s->rate <= 0) {
                if (s->rate <= 0) cli_error("--request-rate must be > 0 (or inf)");
                return 2;
            }
        } else if (cli_flag(&a, "--random-range-ratio")) {
            if (!(v = cli_value(&a, "--random-range-ratio")) || cli_parse_float(v, "--random-range-ratio", &s->ratio))
                return 2;
            if (s->ratio < 0 || s->ratio >= 1) {
                cli_error("--random-range-ratio must be in [0, 1), got %s", v);
                return 2;
            }
        } else if (cli_flag(&a, "--percentile-metrics")) {
            if (!(v = cli_value(&a, "--percentile-metrics")) || parse_metrics(v, s)) return 2;
        } else if (cli_flag(&a, "--metric-percentiles")) {
            if (!(v = cli_value(&a, "--metric-percentiles")) || parse_pcts(v, s)) return 2;
        } else if (cli_flag(&a, "--dataset-name")) { /* accepted so vLLM command lines run unchanged */
            if (!(v = cli_value(&a, "--dataset-name"))) return 2;
            if (strcmp(v, "random")) {
                cli_error("bench serve: only --dataset-name random is supported, got '%s'", v);
                return 2;
            }
        } else if (cli_flag(&a, "--backend")) {
            if (!(v = cli_value(&a, "--backend"))) return 2;
            if (strcmp(v, "vllm") && strcmp(v, "openai")) {
                cli_error("bench serve: only --backend vllm|openai (/v1/completions) is supported, got '%s'", v);
                return 2;
            }
        } else if (cli_flag(&a, "--ignore-eos")) { /* always on */
        } else if (cli_flag(&a, "--json")) {
            s->json = 1;
        } else if (cli_flag(&a, "--help") || cli_flag(&a, "-h")) {
            fputs(usage, stdout);
            return 1;
        } else {
            cli_error("bench serve: unknown option '%s'", argv[a.i]);
            fputs(usage, stderr);
            return 2;
        }
    }
    if (s->endpoint[0] != '/') {
        cli_error("--endpoint must start with '/', got '%s'", s->endpoint);
        return 2;
    }
    return 0;
}

/* ---- the SSE stream of one request ---- */

typedef struct {
    req_rec *r;
    const hc_response *resp;
    double t0, t_last_text;
    char *buf; /* the current line, or the whole body of an error response */
    size_t len, cap;
    int raw; /* collect the whole body (GET /v1/models) */
    int failed;
} sse_ctx;

enum { LINE_MAX_BYTES = 16 << 20 };

static void set_err(req_rec *r, const char *fmt, const char *arg) { snprintf(r->err, sizeof r->err, fmt, arg); }

/* An {"error": ...} object: its message, else the JSON. */
static void error_from_json(req_rec *r, const char *prefix, cJSON *err) {
    cJSON *msg = cJSON_IsObject(err) ? cJSON_GetObjectItemCaseSensitive(err, "message") : NULL;
    if (cJSON_IsString(msg)) {
        snprintf(r->err, sizeof r->err, "%s%s", prefix, msg->valuestring);
    } else {
        char *t = cJSON_PrintUnformatted(err);
        snprintf(r->err, sizeof r->err, "%s%s", prefix, t ? t : "error");
        free(t);
    }
}

/* One SSE line; 1 stops reading (an error event). */
static int sse_line(sse_ctx *c, char *line, size_t n) {
    while (n && (line[n - 1] == '\r' || line[n - 1] == ' ' || line[n - 1] == '\t')) n--;
    line[n] = 0;
    if (strncmp(line, "data:", 5)) return 0; /* blank separator, comment, event:, id: */
    line += 5 + (line[5] == ' ');
    if (!strcmp(line, "[DONE]")) return 0;
    req_rec *r = c->r;
    double t = now_s();
    cJSON *j = js_parse(line, strlen(line), NULL);
    if (!cJSON_IsObject(j)) {
        set_err(r, "bad JSON in the stream: %.200s", line);
        cJSON_Delete(j);
        c->failed = 1;
        return 1;
    }
    cJSON *err = cJSON_GetObjectItemCaseSensitive(j, "error");
    if (err && !cJSON_IsNull(err)) {
        error_from_json(r, "error event: ", err);
        cJSON_Delete(j);
        c->failed = 1;
        return 1;
    }
    cJSON *choices = cJSON_GetObjectItemCaseSensitive(j, "choices"), *usage;
    cJSON *c0 = cJSON_IsArray(choices) ? cJSON_GetArrayItem(choices, 0) : NULL;
    if (cJSON_IsObject(c0)) {
        r->e2el = t - c->t0; /* vLLM: the latency ends at the last chunk with choices */
        { /* as vLLM's client: every chunk with choices times a token (text may be empty: held back, or
             a model served without a tokenizer) */
            if (!r->n_text) {
                r->ttft = t - c->t0;
            } else {
                if (r->n_itl == r->cap_itl) {
                    int cap = r->cap_itl ? 2 * r->cap_itl : 64;
                    double *p = realloc(r->itl, sizeof *p * (size_t)cap);
                    if (!p) goto oom;
                    r->itl = p, r->cap_itl = cap;
                }
                r->itl[r->n_itl++] = t - c->t_last_text;
            }
            c->t_last_text = t;
            r->n_text++;
            cJSON *text = cJSON_GetObjectItemCaseSensitive(c0, "text");
            if (cJSON_IsString(text) && text->valuestring[0]) r->n_nonempty++;
        }
    } else if (cJSON_IsObject(usage = cJSON_GetObjectItemCaseSensitive(j, "usage"))) {
        cJSON *ct = cJSON_GetObjectItemCaseSensitive(usage, "completion_tokens");
        if (cJSON_IsNumber(ct) && ct->valuedouble >= 0 && ct->valuedouble < 1e9) r->usage_tokens = ct->valueint;
    }
    cJSON_Delete(j);
    return 0;
oom:
    cJSON_Delete(j);
    set_err(r, "%s", "out of memory");
    c->failed = 1;
    return 1;
}

static int buf_append(sse_ctx *c, const char *p, size_t n) {
    if (c->len + n + 1 > LINE_MAX_BYTES) return -1;
    if (c->len + n + 1 > c->cap) {
        size_t cap = c->cap ? c->cap : 4096;
        while (cap < c->len + n + 1) cap *= 2;
        char *b = realloc(c->buf, cap);
        if (!b) return -1;
        c->buf = b, c->cap = cap;
    }
    memcpy(c->buf + c->len, p, n);
    c->len += n;
    c->buf[c->len] = 0;
    return 0;
}

static int on_body(void *ctx, const char *p, size_t n) {
    sse_ctx *c = ctx;
    if (c->raw || c->resp->status != 200) { /* a JSON body, or an error body kept for the message */
        size_t lim = c->raw ? 1 << 20 : 4096, k = n < lim - c->len ? n : lim - c->len;
        if (k && buf_append(c, p, k)) return 1;
        return c->len >= lim; /* enough: stop reading */
    }
    while (n) {
        const char *nl = memchr(p, '\n', n);
        size_t k = nl ? (size_t)(nl - p) : n;
        if (buf_append(c, p, k)) {
            set_err(c->r, "%s", "stream line too long or out of memory");
            c->failed = 1;
            return 1;
        }
        if (!nl) break;
        int stop = sse_line(c, c->buf, c->len);
        c->len = 0;
        if (stop) return 1;
        p += k + 1, n -= k + 1;
    }
    return 0;
}

static void run_request(const hc_url *u, const char *endpoint, const char *headers, req_rec *r) {
    hc_response resp;
    sse_ctx c = {.r = r, .resp = &resp, .t0 = now_s()};
    r->usage_tokens = -1;
    int rc = hc_request(u, "POST", endpoint, headers, r->body, r->body_len, &resp, on_body, &c);
    r->connected = resp.connected;
    if (rc) {
        set_err(r, "%s", vc_errmsg());
    } else if (resp.status != 200) {
        cJSON *j = c.buf ? js_parse(c.buf, strlen(c.buf), NULL) : NULL;
        cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
        char prefix[96];
        snprintf(prefix, sizeof prefix, "HTTP %d %.60s: ", resp.status, resp.reason);
        if (e) error_from_json(r, prefix, e);
        else snprintf(r->err, sizeof r->err, "%s%.150s", prefix, c.buf ? c.buf : "");
        cJSON_Delete(j);
    } else if (!c.failed && c.len && sse_line(&c, c.buf, c.len)) { /* a last line without '\n' */
    } else if (!c.failed && !r->n_text) {
        set_err(r, "%s", "the stream carried no choices (no chunk to time the first token)");
    } else if (!c.failed) {
        r->ok = 1;
    }
    free(c.buf);
}

/* ---- the run ---- */

typedef struct {
    const serve_args *a;
    const hc_url *url;
    const char *headers;
    req_rec *reqs;
    double *arrival; /* seconds after t_start */
    double t_start;
    long long next;
    pthread_mutex_t mu;
} run_state;

static void *worker(void *arg) {
    run_state *s = arg;
    for (;;) {
        pthread_mutex_lock(&s->mu);
        long long i = s->next++;
        pthread_mutex_unlock(&s->mu);
        if (i >= s->a->prompts) return NULL;
        sleep_until(s->t_start + s->arrival[i]);
        run_request(s->url, s->a->endpoint, s->headers, &s->reqs[i]);
    }
}

/* The prompts (vLLM's random dataset, token ids instead of decoded text) and arrival times. */
static int prepare(const serve_args *a, const char *model, req_rec *reqs, double *arrival) {
    vc_rng rng;
    vc_rng_seed(&rng, (uint64_t)a->seed);
    long long ilo = (long long)((double)a->in_len * (1 - a->ratio)), ihi = (long long)((double)a->in_len * (1 + a->ratio));
    long long olo = (long long)((double)a->out_len * (1 - a->ratio)), ohi = (long long)((double)a->out_len * (1 + a->ratio));
    if (olo < 1) olo = 1;
    int32_t *ids = malloc(sizeof *ids * (size_t)(ihi + 1));
    if (!ids) return -1;
    double t = 0;
    for (long long i = 0; i < a->prompts; i++) {
        req_rec *r = &reqs[i];
        r->prompt_len = (int)(ilo + (long long)(vc_rng_next(&rng) % (uint64_t)(ihi - ilo + 1)));
        r->out_len = (int)(olo + (long long)(vc_rng_next(&rng) % (uint64_t)(ohi - olo + 1)));
        for (int k = 0; k < r->prompt_len; k++) ids[k] = (int32_t)(10 + vc_rng_next(&rng) % (uint64_t)a->vocab);
        cJSON *o = cJSON_CreateObject(), *so;
        cJSON_AddStringToObject(o, "model", model);
        cJSON_AddItemToObject(o, "prompt", cJSON_CreateIntArray(ids, r->prompt_len));
        cJSON_AddNumberToObject(o, "max_tokens", r->out_len);
        cJSON_AddTrueToObject(o, "ignore_eos");
        cJSON_AddTrueToObject(o, "stream");
        if ((so = cJSON_AddObjectToObject(o, "stream_options"))) cJSON_AddTrueToObject(so, "include_usage");
        cJSON_AddNumberToObject(o, "temperature", 0);
        r->body = cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
        if (!r->body) {
            free(ids);
            return -1;
        }
        r->body_len = strlen(r->body);
        /* vLLM: a request, then an exponential gap (Poisson process, burstiness 1) */
        arrival[i] = t;
        if (isfinite(a->rate)) t += -log(1.0 - (double)(vc_rng_next(&rng) >> 11) * 0x1p-53) / a->rate;
    }
    free(ids);
    return 0;
}

/* GET {base}/v1/models -> data[0].id (malloc'd). */
static int first_model(const hc_url *u, const char *base, const char *headers, char **out) {
    hc_response resp;
    sse_ctx c = {.resp = &resp, .raw = 1};
    int rc = hc_request(u, "GET", "/v1/models", headers, NULL, 0, &resp, on_body, &c), ok = 0;
    if (rc) {
        cli_error("cannot %s %s/v1/models: %s", resp.connected ? "read" : "connect to", base, vc_errmsg());
        free(c.buf);
        return -1;
    }
    cJSON *j = js_parse(c.buf, c.buf ? strlen(c.buf) : 0, NULL), *data = cJSON_GetObjectItemCaseSensitive(j, "data");
    cJSON *id = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(data, 0), "id");
    if (resp.status == 200 && cJSON_IsString(id) && (*out = strdup(id->valuestring)))
        ok = 1;
    else
        cli_error("%s/v1/models: HTTP %d, no model id in '%.200s' (give --model)", base, resp.status,
                  c.buf ? c.buf : "");
    cJSON_Delete(j);
    free(c.buf);
    return ok ? 0 : -1;
}

/* ---- statistics, as numpy computes them ---- */

typedef struct {
    double mean, median, std, pct[MAX_PCTS]; /* ms */
} stat_ms;

static int cmp_double(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return a < b ? -1 : a > b;
}

/* np.percentile's default (linear) interpolation over sorted v. */
static double percentile(const double *v, int n, double p) {
    double pos = p / 100.0 * (n - 1);
    int lo = (int)floor(pos), hi = lo + 1 < n ? lo + 1 : lo;
    return v[lo] + (v[hi] - v[lo]) * (pos - lo);
}

/* v in seconds (sorted in place); numpy of an empty list is taken as 0, as vLLM's `ttfts or 0`. */
static stat_ms stats(double *v, int n, const serve_args *a) {
    stat_ms s = {0};
    if (!n) return s;
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    double sum = 0, ss = 0;
    for (int i = 0; i < n; i++) sum += v[i];
    s.mean = sum / n;
    for (int i = 0; i < n; i++) ss += (v[i] - s.mean) * (v[i] - s.mean);
    s.std = sqrt(ss / n) * 1e3;
    s.mean *= 1e3;
    s.median = percentile(v, n, 50) * 1e3;
    for (int k = 0; k < a->npcts; k++) s.pct[k] = percentile(v, n, a->pcts[k]) * 1e3;
    return s;
}

/* Python's "{s:{c}^{n}}": s centred in n columns of c, the odd one on the right. */
static void print_centered(const char *s, char c, int n) {
    int len = (int)strlen(s), pad = n > len ? n - len : 0;
    for (int i = 0; i < pad / 2; i++) putchar(c);
    fputs(s, stdout);
    for (int i = 0; i < pad - pad / 2; i++) putchar(c);
    putchar('\n');
}

/* vLLM's label of a percentile: "99", "99.9". */
static void pct_word(double p, char *out, size_t n) {
    if (p == floor(p)) snprintf(out, n, "%d", (int)p);
    else snprintf(out, n, "%g", p);
}

static int report(const serve_args *a, const char *model, req_rec *reqs, double dur, double triad, double peak) {
    long long completed = 0, failed = 0, total_in = 0, total_out = 0, n_itl = 0;
    for (long long i = 0; i < a->prompts; i++) n_itl += reqs[i].ok ? reqs[i].n_itl : 0;
    double *v[N_METRICS];
    int nv[N_METRICS] = {0};
    for (int m = 0; m < N_METRICS; m++) v[m] = malloc(sizeof(double) * (size_t)((m == M_ITL ? n_itl : a->prompts) + 1));
    if (!v[0] || !v[1] || !v[2] || !v[3]) {
        for (int m = 0; m < N_METRICS; m++) free(v[m]);
        cli_error("out of memory");
        return 1;
    }
    const char *first_err = NULL;
    for (long long i = 0; i < a->prompts; i++) {
        req_rec *r = &reqs[i];
        if (!r->ok) {
            failed++;
            if (!first_err) first_err = r->err;
            continue;
        }
        int out = r->usage_tokens > 0 ? r->usage_tokens : r->n_nonempty;
        completed++;
        total_in += r->prompt_len;
        total_out += out;
        v[M_TTFT][nv[M_TTFT]++] = r->ttft;
        v[M_E2EL][nv[M_E2EL]++] = r->e2el;
        if (out > 1) v[M_TPOT][nv[M_TPOT]++] = (r->e2el - r->ttft) / (out - 1);
        for (int k = 0; k < r->n_itl; k++) v[M_ITL][nv[M_ITL]++] = r->itl[k];
    }
    if (failed)
        fprintf(stderr, "vllmc: bench serve: %lld of %lld requests failed; the first: %s\n", failed, a->prompts,
                first_err);
    print_centered(" Serving Benchmark Result ", '=', 50);
    printf("%-40s %-10lld\n", "Successful requests:", completed);
    printf("%-40s %-10lld\n", "Failed requests:", failed);
    if (a->conc) printf("%-40s %-10lld\n", "Maximum request concurrency:", a->conc);
    if (isfinite(a->rate)) printf("%-40s %-10.2f\n", "Request rate configured (RPS):", a->rate);
    printf("%-40s %-10.2f\n", "Benchmark duration (s):", dur);
    printf("%-40s %-10lld\n", "Total input tokens:", total_in);
    printf("%-40s %-10lld\n", "Total generated tokens:", total_out);
    printf("%-40s %-10.2f\n", "Request throughput (req/s):", completed / dur);
    printf("%-40s %-10.2f\n", "Output token throughput (tok/s):", total_out / dur);
    printf("%-40s %-10.2f\n", "Total Token throughput (tok/s):", (total_in + total_out) / dur);

    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "model_id", model);
    cJSON_AddNumberToObject(j, "num_prompts", (double)a->prompts);
    if (isfinite(a->rate)) cJSON_AddNumberToObject(j, "request_rate", a->rate);
    else cJSON_AddStringToObject(j, "request_rate", "inf");
    cJSON_AddNumberToObject(j, "burstiness", 1.0);
    if (a->conc) cJSON_AddNumberToObject(j, "max_concurrency", (double)a->conc);
    else cJSON_AddNullToObject(j, "max_concurrency");
    cJSON_AddNumberToObject(j, "duration", dur);
    cJSON_AddNumberToObject(j, "completed", (double)completed);
    cJSON_AddNumberToObject(j, "failed", (double)failed);
    cJSON_AddNumberToObject(j, "total_input_tokens", (double)total_in);
    cJSON_AddNumberToObject(j, "total_output_tokens", (double)total_out);
    cJSON_AddNumberToObject(j, "request_throughput", completed / dur);
    cJSON_AddNumberToObject(j, "output_throughput", total_out / dur);
    cJSON_AddNumberToObject(j, "total_token_throughput", (total_in + total_out) / dur);
    for (int m = 0; m < N_METRICS; m++) {
        if (!a->metrics[m]) continue;
        stat_ms s = stats(v[m], nv[m], a);
        char label[96], key[64], w[32];
        print_centered(metric_head[m], '-', 50);
        snprintf(label, sizeof label, "Mean %s (ms):", metric_name[m]);
        printf("%-40s %-10.2f\n", label, s.mean);
        snprintf(label, sizeof label, "Median %s (ms):", metric_name[m]);
        printf("%-40s %-10.2f\n", label, s.median);
        snprintf(key, sizeof key, "mean_%s_ms", metric_key[m]), cJSON_AddNumberToObject(j, key, s.mean);
        snprintf(key, sizeof key, "median_%s_ms", metric_key[m]), cJSON_AddNumberToObject(j, key, s.median);
        snprintf(key, sizeof key, "std_%s_ms", metric_key[m]), cJSON_AddNumberToObject(j, key, s.std);
        for (int k = 0; k < a->npcts; k++) {
            pct_word(a->pcts[k], w, sizeof w);
            snprintf(label, sizeof label, "P%s %s (ms):", w, metric_name[m]);
            printf("%-40s %-10.2f\n", label, s.pct[k]);
            snprintf(key, sizeof key, "p%s_%s_ms", w, metric_key[m]), cJSON_AddNumberToObject(j, key, s.pct[k]);
        }
    }
    for (int i = 0; i < 50; i++) putchar('=');
    putchar('\n');
    cJSON_AddNumberToObject(j, "machine_triad_gbs", triad);
    cJSON_AddNumberToObject(j, "machine_peak_gflops", peak);
    char *txt = a->json ? cJSON_PrintUnformatted(j) : NULL;
    if (txt) puts(txt);
    free(txt);
    cJSON_Delete(j);
    for (int m = 0; m < N_METRICS; m++) free(v[m]);
    fflush(stdout);
    return 0;
}

/* This machine's limits; the server's too when it runs here. */
static int measure_machine(double *triad, double *peak) {
    tp_pool *pool;
    if (tp_create(&pool, 0, getenv("VLLM_CPU_OMP_THREADS_BIND"))) {
        cli_error("%s", vc_errmsg());
        return -1;
    }
    *triad = cpu_measure_triad_gbs(pool, (size_t)256 << 20, 3);
    *peak = cpu_measure_peak_gflops(pool);
    tp_free(pool); /* also unpins this thread before the request threads start */
    return 0;
}

static void free_reqs(req_rec *reqs, long long n) {
    for (long long i = 0; reqs && i < n; i++) free(reqs[i].body), free(reqs[i].itl);
    free(reqs);
}

int cli_bench_serve(int argc, char **argv) {
    serve_args a = {.host = "127.0.0.1", .port = 8000, .endpoint = "/v1/completions", .prompts = 1000,
                    .in_len = 1024, .out_len = 128, .vocab = 256, .rate = INFINITY,
                    .metrics = {1, 1, 1, 1}, .pcts = {99}, .npcts = 1};
    int rc = parse(argc, argv, &a);
    if (rc) return rc == 1 ? 0 : rc;
    char base[1200], headers[1100] = "Content-Type: application/json\r\n", *model = NULL;
    if (a.base_url) snprintf(base, sizeof base, "%s", a.base_url);
    else snprintf(base, sizeof base, strchr(a.host, ':') ? "http://[%s]:%lld" : "http://%s:%lld", a.host, a.port);
    size_t bl = strlen(base);
    while (bl > 7 && base[bl - 1] == '/') base[--bl] = 0;
    hc_url url;
    if (hc_url_parse(base, &url)) {
        cli_error("--base-url: %s", vc_errmsg());
        return 2;
    }
    if (!a.api_key) a.api_key = getenv("OPENAI_API_KEY");
    if (a.api_key && *a.api_key) {
        if (strpbrk(a.api_key, "\r\n") || strlen(a.api_key) > 1000) {
            cli_error("--api-key: bad key");
            return 2;
        }
        snprintf(headers + strlen(headers), sizeof headers - strlen(headers), "Authorization: Bearer %s\r\n", a.api_key);
    }
    if (a.model) model = strdup(a.model);
    else if (first_model(&url, base, headers, &model)) return 1;
    if (!model) return 1;

    req_rec *reqs = calloc((size_t)a.prompts, sizeof *reqs);
    double *arrival = malloc(sizeof *arrival * (size_t)a.prompts), triad, peak;
    int status = 1;
    pthread_t *th = NULL;
    int nth = 0;
    if (!reqs || !arrival || prepare(&a, model, reqs, arrival)) {
        cli_error("out of memory");
        goto done;
    }
    /* vLLM's initial single-prompt test run: fail fast on a bad URL, model or endpoint
     * (before the machine measurement, which takes a second) */
    printf("Starting initial single prompt test run...\n");
    fflush(stdout);
    req_rec test = {.body = reqs[0].body, .body_len = reqs[0].body_len};
    run_request(&url, a.endpoint, headers, &test);
    free(test.itl);
    if (!test.ok) {
        if (!test.connected) cli_error("cannot connect to %s%s: %s", base, a.endpoint, test.err);
        else cli_error("initial test run failed (POST %s%s): %s", base, a.endpoint, test.err);
        goto done;
    }
    printf("Initial test run completed. Starting main benchmark run...\n");
    fflush(stdout);
    if (measure_machine(&triad, &peak)) goto done;
    printf("machine: triad %.1f GB/s, peak FMA %.1f GFLOP/s (measured here before the run; the server's machine "
           "when --base-url is loopback)\n", triad, peak);
    if (isfinite(a.rate)) printf("Traffic request rate: %g\n", a.rate);
    else printf("Traffic request rate: inf\n");
    printf("Burstiness factor: 1.0 (Poisson process)\n");
    if (a.conc) printf("Maximum request concurrency: %lld\n", a.conc);
    else printf("Maximum request concurrency: None\n");
    fflush(stdout);

    run_state s = {.a = &a, .url = &url, .headers = headers, .reqs = reqs, .arrival = arrival};
    pthread_mutex_init(&s.mu, NULL);
    long long want = a.conc && a.conc < a.prompts ? a.conc : a.prompts;
    th = malloc(sizeof *th * (size_t)want);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, (size_t)1 << 20);
    s.t_start = now_s();
    for (; th && nth < want; nth++)
        if (pthread_create(&th[nth], &attr, worker, &s)) break;
    pthread_attr_destroy(&attr);
    if (nth < want) fprintf(stderr, "vllmc: bench serve: started %d of %lld request threads\n", nth, want);
    if (!nth) worker(&s); /* no thread could start: one request at a time on this one */
    for (int i = 0; i < nth; i++) pthread_join(th[i], NULL);
    double dur = now_s() - s.t_start;
    pthread_mutex_destroy(&s.mu);
    status = report(&a, model, reqs, dur, triad, peak);
done:
    free(th);
    free(arrival);
    free_reqs(reqs, a.prompts);
    free(model);
    return status;
}
