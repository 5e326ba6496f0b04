/* metrics: vLLM's Prometheus metrics (names, types, help texts and histogram
 * buckets of vLLM V1's PrometheusStatLogger), filled by the server's engine
 * thread and rendered for GET /metrics. Per-request figures are recorded per
 * completion (vLLM V1 runs each of n completions as its own engine request). */
#ifndef VLLMC_SERVER_METRICS_H
#define VLLMC_SERVER_METRICS_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/engine.h"

typedef struct {
    const double *le;
    int n;            /* finite bounds */
    uint64_t *counts; /* [n + 1], the last is +Inf; not cumulative */
    double sum;
    uint64_t count;
} mt_hist;

typedef struct {
    pthread_mutex_t mu;
    mt_hist ttft, itl, tpot, e2e, prompt_len, gen_len;
    double *len_bounds; /* 1-2-5 buckets up to max_model_len */
    uint64_t success[3]; /* stop, length, abort */
} mt_metrics;

int mt_init(mt_metrics *m, int max_model_len);
void mt_free(mt_metrics *m);
/* One token of a completion: TTFT for the first (seconds since arrival), else
 * the inter-token latency. */
void mt_token(mt_metrics *m, int first, double seconds);
/* A finished completion: reason, e2e latency, TPOT (decode time / (tokens - 1)), lengths. */
void mt_finished(mt_metrics *m, eng_finish why, double e2e, double ttft, int n_prompt, int n_output);
/* vllm:lora_requests_info's labels and value (LoRA on). */
typedef struct {
    int max_lora;                /* --max-loras */
    const char *running;         /* adapter names of the running requests, comma-separated ("" none) */
    const char *waiting;         /* ... of the waiting requests */
    double now;                  /* the value: seconds since the epoch (vLLM: set_to_current_time) */
} mt_lora_info;

/* The Prometheus text exposition (malloc'd). lora: NULL without --enable-lora (no LoRA gauge, as vLLM). */
char *mt_render(mt_metrics *m, const eng_stats *st, const char *model_name, const mt_lora_info *lora, size_t *len);

#endif
