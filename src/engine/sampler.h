/* sampler: turns one row of raw logits into a token, as vLLM's sampler does.
 *
 * Order (vLLM v1): temperature < 1e-5 means greedy (argmax, lowest id on ties);
 * otherwise logits / temperature, then min_p (drop tokens whose probability is
 * below min_p * max probability), then top_k, then top_p (keep the smallest set
 * of most likely tokens whose mass reaches top_p), then a draw from the
 * renormalised distribution. Logprobs are always of the raw logits.
 *
 * Pure: no I/O, no globals. The RNG lives in the request (samp_rng), so a
 * seed reproduces a result whatever else is in the batch. The caller provides
 * scratch space for vocab_size entries (samp_scratch). */
#ifndef VLLMC_ENGINE_SAMPLER_H
#define VLLMC_ENGINE_SAMPLER_H

#include <stdint.h>

#include "base/rng.h"

#define SAMP_EPS 1e-5f

typedef struct {
    float temperature;  /* <SAMP_EPS: greedy */
    float top_p;        /* (0, 1]; 1 disables */
    int top_k;          /* <= 0 disables (vLLM: 0 or -1) */
    float min_p;        /* [0, 1]; 0 disables */
} samp_params;

typedef vc_rng samp_rng;

typedef struct {
    float p;
    int32_t id;
} samp_cand;

typedef struct {
    samp_cand *cand;    /* [vocab] */
    int cap;
} samp_scratch;

/* Validate like vLLM's SamplingParams (messages name the field). */
int samp_params_check(const samp_params *p);
void samp_rng_seed(samp_rng *r, uint64_t seed);
/* Uniform in [0, 1), 24 bits. */
float samp_rng_uniform(samp_rng *r);

int samp_scratch_init(samp_scratch *s, int vocab);
void samp_scratch_free(samp_scratch *s);

int samp_argmax(const float *logits, int n);
/* Sample one token. */
int samp_sample(const float *logits, int n, const samp_params *p, samp_rng *rng, samp_scratch *s);
/* The token samp_sample would draw from a row of n logits (the same RNG state gives the same token), from
 * the row's k best alone: ids/vals sorted by logit descending, ties by lower id (backend.h's topk). -1,
 * with the RNG untouched, where those k do not determine it: sampling without top_k (every token can be
 * drawn), top_k >= k, or ties at the edge of the k. Greedy: ids[0]. */
int samp_sample_top(const int32_t *ids, const float *vals, int k, int n, const samp_params *p, samp_rng *rng,
                    samp_scratch *s);
/* Top-k log-probabilities of log_softmax(logits), best first (ties: lower id
 * first). Writes min(k, n) entries; returns that count. */
int samp_top_logprobs(const float *logits, int n, int k, int32_t *ids, float *logprobs);
/* log_softmax(logits)[id]. */
float samp_logprob_of(const float *logits, int n, int id);

#endif
