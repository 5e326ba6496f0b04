#include "server/metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/sbuf.h"

static const double ttft_le[] = {0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75,
                                 1.0,   2.5,   5.0,  7.5,  10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0};
static const double itl_le[] = {0.01, 0.025, 0.05, 0.075, 0.1,  0.15, 0.2,  0.3,  0.4, 0.5,
                                0.75, 1.0,   2.5,  5.0,   7.5, 10.0, 20.0, 40.0, 80.0};
static const double e2e_le[] = {0.3,  0.5,  0.8,  1.0,  1.5,   2.0,   2.5,   5.0,   10.0,   15.0,  20.0,
                                30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0};

static int hist_init(mt_hist *h, const double *le, int n) {
    h->le = le;
    h->n = n;
    h->counts = calloc((size_t)n + 1, sizeof *h->counts);
    return h->counts ? 0 : -1;
}

static void hist_add(mt_hist *h, double v) {
    int i = 0;
    while (i < h->n && v > h->le[i]) i++;
    h->counts[i]++;
    h->sum += v;
    h->count++;
}

int mt_init(mt_metrics *m, int max_model_len) {
    memset(m, 0, sizeof *m);
    pthread_mutex_init(&m->mu, NULL);
    /* vLLM's build_1_2_5_buckets(max_model_len) */
    int nb = 0;
    m->len_bounds = malloc(sizeof(double) * 64);
    if (!m->len_bounds) return -1;
    for (double mag = 1; nb < 60; mag *= 10) {
        int stop = 0;
        for (int k = 0; k < 3; k++) {
            double v = mag * (k == 0 ? 1 : k == 1 ? 2 : 5);
            if (v > max_model_len) {
                stop = 1;
                break;
            }
            m->len_bounds[nb++] = v;
        }
        if (stop) break;
    }
    if (hist_init(&m->ttft, ttft_le, (int)(sizeof ttft_le / sizeof *ttft_le)) ||
        hist_init(&m->itl, itl_le, (int)(sizeof itl_le / sizeof *itl_le)) ||
        hist_init(&m->tpot, itl_le, (int)(sizeof itl_le / sizeof *itl_le)) ||
        hist_init(&m->e2e, e2e_le, (int)(sizeof e2e_le / sizeof *e2e_le)) ||
        hist_init(&m->prompt_len, m->len_bounds, nb) || hist_init(&m->gen_len, m->len_bounds, nb)) {
        mt_free(m);
        return -1;
    }
    return 0;
}

void mt_free(mt_metrics *m) {
    free(m->ttft.counts);
    free(m->itl.counts);
    free(m->tpot.counts);
    free(m->e2e.counts);
    free(m->prompt_len.counts);
    free(m->gen_len.counts);
    free(m->len_bounds);
    pthread_mutex_destroy(&m->mu);
    memset(m, 0, sizeof *m);
}

void mt_token(mt_metrics *m, int first, double s) {
    pthread_mutex_lock(&m->mu);
    hist_add(first ? &m->ttft : &m->itl, s);
    pthread_mutex_unlock(&m->mu);
}

void mt_finished(mt_metrics *m, eng_finish why, double e2e, double ttft, int n_prompt, int n_output) {
    pthread_mutex_lock(&m->mu);
    m->success[why == ENG_FINISH_STOP ? 0 : why == ENG_FINISH_LENGTH ? 1 : 2]++;
    hist_add(&m->e2e, e2e);
    if (n_output > 1) hist_add(&m->tpot, (e2e - ttft) / (n_output - 1));
    hist_add(&m->prompt_len, n_prompt);
    hist_add(&m->gen_len, n_output);
    pthread_mutex_unlock(&m->mu);
}

static void head(sbuf *s, const char *name, const char *type, const char *help) {
    sb_printf(s, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A value as Python's prometheus_client prints it (floatToGoString): repr(float), i.e. the shortest
 * digits that read back, positional for 1e-4 <= |v| < 1e16 and always with a dot or an exponent;
 * then, for positive values with more than 6 digits before the dot, Go's exponent form
 * (1789828498.80 -> "1.78982849880e+09", 1000000.0 -> "1e+06"). */
static void repr(char *tmp, size_t cap, double v) {
    double a = v < 0 ? -v : v;
    if (v == 0 || (a >= 1e-4 && a < 1e16)) {
        for (int d = 0; d <= 17; d++) {
            snprintf(tmp, cap, "%.*f", d, v);
            if (strtod(tmp, NULL) == v) break;
        }
        if (!strchr(tmp, '.')) strncat(tmp, ".0", cap - strlen(tmp) - 1);
        size_t dot = (size_t)(strchr(tmp, '.') - tmp);
        if (v > 0 && dot > 6) {
            char m[48];
            size_t k = 0;
            m[k++] = tmp[0];
            m[k++] = '.';
            for (size_t i = 1; tmp[i] && k + 1 < sizeof m; i++)
                if (i != dot) m[k++] = tmp[i];
            while (k > 0 && (m[k - 1] == '0' || m[k - 1] == '.')) k--; /* Python's rstrip('0.') */
            if (k + 8 < cap) {
                memcpy(tmp, m, k);
                snprintf(tmp + k, cap - k, "e+0%zu", dot - 1);
            }
        }
        return;
    }
    for (int p = 1; p <= 17; p++) {
        snprintf(tmp, cap, "%.*e", p - 1, v);
        if (strtod(tmp, NULL) == v) break;
    }
}

static void value(sbuf *s, double v) {
    char tmp[48];
    repr(tmp, sizeof tmp, v);
    sb_str(s, tmp);
}

static void sample(sbuf *s, const char *name, const char *labels, const char *extra, double v) {
    sb_printf(s, "%s{%s%s} ", name, labels, extra);
    value(s, v);
    sb_str(s, "\n");
}

static void hist(sbuf *s, const char *name, const char *help, const mt_hist *h, const char *labels) {
    head(s, name, "histogram", help);
    char name_bucket[128], name_count[128], name_sum[128];
    snprintf(name_bucket, sizeof name_bucket, "%s_bucket", name);
    snprintf(name_count, sizeof name_count, "%s_count", name);
    snprintf(name_sum, sizeof name_sum, "%s_sum", name);
    uint64_t cum = 0;
    for (int i = 0; i <= h->n; i++) {
        cum += h->counts[i];
        char le[48];
        char r[40];
        repr(r, sizeof r, i < h->n ? h->le[i] : 0);
        if (i < h->n) snprintf(le, sizeof le, ",le=\"%s\"", r);
        else snprintf(le, sizeof le, ",le=\"+Inf\"");
        sample(s, name_bucket, labels, le, (double)cum);
    }
    sample(s, name_count, labels, "", (double)h->count);
    sample(s, name_sum, labels, "", h->sum);
}

char *mt_render(mt_metrics *m, const eng_stats *st, const char *model_name, const mt_lora_info *lora, size_t *len) {
    sbuf s = {0}, lab = {0};
    sb_str(&lab, "model_name=");
    sb_jstrz(&lab, model_name); /* a JSON string is a valid Prometheus label value for printable names */
    sb_str(&lab, ",engine=\"0\"");
    const char *L = lab.b ? lab.b : "";
    /* vLLM's cache_config_info: value 1, the cache configuration in its labels (num_gpu_blocks is the
     * block count on whichever device holds the cache, as vLLM's CPU backend also reports it) */
    {
        char extra[256];
        snprintf(extra, sizeof extra,
                 ",block_size=\"%d\",cache_dtype=\"%s\",enable_prefix_caching=\"%s\",gpu_memory_utilization=\"%g\","
                 "num_cpu_blocks=\"None\",num_gpu_blocks=\"%d\"",
                 st->block_size, st->cache_dtype ? st->cache_dtype : "auto", st->enable_prefix_caching ? "True" : "False",
                 st->gpu_memory_utilization, st->num_blocks);
        head(&s, "vllm:cache_config_info", "gauge", "Information of the LLMEngine CacheConfig");
        sample(&s, "vllm:cache_config_info", L, extra, 1);
    }
    if (lora) { /* vLLM's labels carry no model_name or engine: one sample, the current state */
        sbuf ll = {0};
        sb_printf(&ll, "max_lora=\"%d\",running_lora_adapters=", lora->max_lora);
        sb_jstrz(&ll, lora->running ? lora->running : "");
        sb_str(&ll, ",waiting_lora_adapters=");
        sb_jstrz(&ll, lora->waiting ? lora->waiting : "");
        head(&s, "vllm:lora_requests_info", "gauge", "Running stats on lora requests.");
        sample(&s, "vllm:lora_requests_info", ll.b ? ll.b : "", "", lora->now);
        s.oom |= ll.oom;
        sb_free(&ll);
    }
    head(&s, "vllm:num_requests_running", "gauge", "Number of requests in model execution batches.");
    sample(&s, "vllm:num_requests_running", L, "", st->running);
    head(&s, "vllm:num_requests_waiting", "gauge", "Number of requests waiting to be processed.");
    sample(&s, "vllm:num_requests_waiting", L, "", st->waiting);
    head(&s, "vllm:kv_cache_usage_perc", "gauge", "KV-cache usage. 1 means 100 percent usage.");
    sample(&s, "vllm:kv_cache_usage_perc", L, "", st->kv_usage);
    head(&s, "vllm:prefix_cache_queries", "counter",
         "Prefix cache queries, in terms of number of queried tokens.");
    sample(&s, "vllm:prefix_cache_queries_total", L, "", (double)st->prefix_queries);
    head(&s, "vllm:prefix_cache_hits", "counter", "Prefix cache hits, in terms of number of cached tokens.");
    sample(&s, "vllm:prefix_cache_hits_total", L, "", (double)st->prefix_hits);
    head(&s, "vllm:num_preemptions", "counter", "Cumulative number of preemption from the engine.");
    sample(&s, "vllm:num_preemptions_total", L, "", (double)st->preemptions);
    head(&s, "vllm:prompt_tokens", "counter", "Number of prefill tokens processed.");
    sample(&s, "vllm:prompt_tokens_total", L, "", (double)st->prompt_tokens);
    head(&s, "vllm:generation_tokens", "counter", "Number of generation tokens processed.");
    sample(&s, "vllm:generation_tokens_total", L, "", (double)st->generation_tokens);
    pthread_mutex_lock(&m->mu);
    head(&s, "vllm:request_success", "counter", "Count of successfully processed requests.");
    static const char *why[3] = {"stop", "length", "abort"};
    for (int i = 0; i < 3; i++) {
        char extra[48];
        snprintf(extra, sizeof extra, ",finished_reason=\"%s\"", why[i]);
        sample(&s, "vllm:request_success_total", L, extra, (double)m->success[i]);
    }
    hist(&s, "vllm:time_to_first_token_seconds", "Histogram of time to first token in seconds.", &m->ttft, L);
    hist(&s, "vllm:inter_token_latency_seconds", "Histogram of inter-token latency in seconds.", &m->itl, L);
    hist(&s, "vllm:request_time_per_output_token_seconds",
         "Histogram of time_per_output_token_seconds per request.", &m->tpot, L);
    hist(&s, "vllm:e2e_request_latency_seconds", "Histogram of e2e request latency in seconds.", &m->e2e, L);
    hist(&s, "vllm:request_prompt_tokens", "Number of prefill tokens processed.", &m->prompt_len, L);
    hist(&s, "vllm:request_generation_tokens", "Number of generation tokens processed.", &m->gen_len, L);
    pthread_mutex_unlock(&m->mu);
    sb_free(&lab);
    return sb_take(&s, len);
}
