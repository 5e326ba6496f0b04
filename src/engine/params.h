/* params: a request's sampling parameters, with vLLM's names, defaults and
 * meaning (vllm.SamplingParams). Owned by the request: arrays are malloc'd and
 * released with eng_params_free(). */
#ifndef VLLMC_ENGINE_PARAMS_H
#define VLLMC_ENGINE_PARAMS_H

#include <stdint.h>

typedef struct {
    int32_t token;
    float bias;
} eng_logit_bias;

typedef struct {
    int n;                        /* completions per prompt (1) */
    float temperature;            /* 1.0; < 1e-5 is greedy */
    float top_p;                  /* 1.0 */
    int top_k;                    /* 0 or -1: off */
    float min_p;                  /* 0.0 */
    int has_seed;
    int64_t seed;
    float presence_penalty;       /* 0.0, in [-2, 2] */
    float frequency_penalty;      /* 0.0, in [-2, 2] */
    float repetition_penalty;     /* 1.0, > 0 */
    int max_tokens;               /* 16 (vLLM's SamplingParams default); <= 0 never after validation */
    int min_tokens;               /* 0 */
    int ignore_eos;
    int32_t *stop_token_ids;      /* [n_stop_token_ids] */
    int n_stop_token_ids;
    char **stop;                  /* [n_stop] NUL-terminated strings */
    int n_stop;
    int include_stop_str_in_output;
    eng_logit_bias *logit_bias;   /* [n_logit_bias] */
    int n_logit_bias;
    int32_t *allowed_token_ids;   /* [n_allowed]; NULL: all; non-NULL with n_allowed == 0: an empty list (an error) */
    int n_allowed;
    int32_t **bad_words;          /* [n_bad_words] token sequences of lengths bad_words_len[i] */
    int *bad_words_len;
    int n_bad_words;
    int logprobs;                 /* -1: none; K >= 0: top-K plus the sampled token */
    int prompt_logprobs;          /* -1: none; K >= 0 */
    int skip_special_tokens;      /* 1 */
    int spaces_between_special_tokens; /* 1 */
} eng_sampling_params;

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
/* Deep copy (dst owns its arrays; NULL stays NULL, non-NULL stays non-NULL).
 * On failure dst is left zeroed. */
int eng_params_copy(eng_sampling_params *dst, const eng_sampling_params *src);
/* Free every array and zero the struct; safe on a zeroed struct. */
void eng_params_free(eng_sampling_params *p);

#endif
