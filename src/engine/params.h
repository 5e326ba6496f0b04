/* params: a request's sampling parameters, with vLLM's names, defaults and
 * meaning (vllm.SamplingParams). Owned by the request: arrays are malloc'd and
 * released with eng_params_free(). */
#ifndef VLLMC_ENGINE_PARAMS_H
#define VLLMC_ENGINE_PARAMS_H

#include <stdint.h>

#include "vllmc.h"

/* The struct itself is public (include/vllmc.h): vllmc_sampling_params. */
typedef vllmc_logit_bias eng_logit_bias;
typedef vllmc_sampling_params eng_sampling_params;

/* vLLM's defaults. */
void eng_params_default(eng_sampling_params *p);
/* Check ranges and combinations as vLLM's SamplingParams._verify_args does;
 * vocab_size bounds token ids (<= 0: token ids are not range-checked). The
 * message names the field, worded as vLLM's. */
int eng_params_validate(const eng_sampling_params *p, int vocab_size);
/* vLLM's _validate_logprobs: logprobs / prompt_logprobs at most max_logprobs
 * (the engine's --max-logprobs, vLLM default 20; -1: vocab_size). */
int eng_params_check_max_logprobs(const eng_sampling_params *p, int max_logprobs, int vocab_size);
/* What vLLM's SamplingParams.__post_init__ changes, to call once after
 * eng_params_validate succeeded: 0 < temperature < 0.01 becomes 0.01; seed -1
 * means no seed; stop_token_ids lose duplicates (first kept, order kept);
 * greedy (temperature < 1e-5) resets top_p = 1, top_k = 0, min_p = 0. */
void eng_params_normalize(eng_sampling_params *p);
/* Deep copy (dst owns its arrays; NULL stays NULL, non-NULL stays non-NULL; the grammar is
 * shared: dst takes a reference). On failure dst is left zeroed. */
int eng_params_copy(eng_sampling_params *dst, const eng_sampling_params *src);
/* Free every array, release the grammar reference and zero the struct; safe on a zeroed struct. */
void eng_params_free(eng_sampling_params *p);

#endif
