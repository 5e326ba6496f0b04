/* offline: run a fixed set of requests through the engine to completion and
 * collect every completion (vLLM's LLM.generate). Used by `vllmc generate`,
 * the benchmarks and the golden tests.
 *
 * Completion j of request i lands in out[first[i] + j], where first[] is the
 * running sum of the requests' n. Outputs own their arrays (off_free). */
#ifndef VLLMC_ENGINE_OFFLINE_H
#define VLLMC_ENGINE_OFFLINE_H

#include <stdint.h>

#include "engine/engine.h"

typedef struct {
    const int32_t *prompt;
    int n_prompt;
    const eng_sampling_params *sp;
    int priority;
    eng_lora *lora;           /* LoRA adapter (NULL: the base model); the engine takes its own references */
} off_request;

typedef struct {
    int32_t *tokens;          /* [n_tokens] */
    int n_tokens;
    int lp_k;                 /* entries per token in lp_ids/lp_vals (the request's logprobs, 0: none) */
    int32_t *lp_ids;          /* [n_tokens * lp_k] top ids, best first */
    float *lp_vals;           /* [n_tokens * lp_k] */
    float *tok_lp;            /* [n_tokens] logprob of the sampled token (NULL without logprobs) */
    int *tok_rank;            /* [n_tokens] */
    int plp_k;                /* prompt_logprobs: -1 none, else entries per prompt position */
    int32_t *plp_ids;         /* [n_prompt * plp_k], -1 pads; position 0 unused (vLLM's None) */
    float *plp_vals;          /* [n_prompt * plp_k] */
    float *plp_tok;           /* [n_prompt] logprob of the prompt token itself */
    eng_finish finish;
    int32_t stop_token;       /* stop_token_ids entry that stopped it, else -1 */
    int n_prompt, n_cached;
    double t_first, t_end;    /* seconds from the start of off_run to the first token / the end */
    char *error;              /* why the engine ended it (finish ABORT, e.g. by its grammar), else NULL */
} off_completion;

/* Called for every sampled token; return nonzero to stop that completion now
 * (it finishes with ENG_FINISH_STOP, e.g. on a stop string). May be NULL. */
typedef int (*off_token_fn)(void *ctx, int request, int index, const off_completion *c);

int off_run(eng_engine *e, const off_request *rq, int n, off_completion *out, off_token_fn fn, void *ctx,
            double *t_total);
/* Number of completions for n requests (sum of their sp->n). */
int off_count(const off_request *rq, int n);
void off_free(off_completion *c, int n);

#endif
