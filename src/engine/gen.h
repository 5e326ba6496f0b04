/* gen: run a fixed set of requests to completion (offline generation).
 *
 * Prompts are prefilled in chunks of at most max_batch_tokens tokens (a long
 * prompt may span several chunks: chunked prefill through the paged cache),
 * then every unfinished sequence decodes one token per step in one batch.
 * Blocks are given out once, enough for prompt + max_tokens. This is the
 * static-batch path used by `vllmc generate` and `vllmc bench latency`. */
#ifndef VLLMC_ENGINE_GEN_H
#define VLLMC_ENGINE_GEN_H

#include <stdint.h>

#include "engine/sampler.h"
#include "model/model.h"

typedef struct {
    const int32_t *prompt;
    int prompt_len;
    int max_tokens;
    int ignore_eos;
    samp_params sp;
    uint64_t seed;        /* the request's RNG seed */
    int logprobs;         /* top-K logprobs per generated token; 0: none */
} gen_request;

typedef struct {
    int32_t *tokens;      /* [n_tokens] generated ids (malloc'd) */
    int n_tokens;
    int32_t *lp_ids;      /* [n_tokens * lp_k] (malloc'd) or NULL */
    float *lp_vals;
    int lp_k;
    int finish_stop;      /* 1: EOS, 0: length */
} gen_output;

typedef struct {
    double prefill_s;     /* wall time of all prefill chunks (incl. the first token's sampling) */
    double decode_s;      /* wall time of the decode steps */
    int64_t prefill_tokens, decode_tokens;
} gen_timing;

typedef struct {
    int block_size;       /* default 16 */
    int max_batch_tokens; /* default 2048 */
} gen_options;

int gen_run(mdl_model *m, const gen_options *o, const gen_request *reqs, int n, gen_output *outs, gen_timing *t);
void gen_output_free(gen_output *o);

#endif
