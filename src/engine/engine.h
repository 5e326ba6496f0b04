/* engine: vLLM's engine core in C. Requests arrive (from any thread), a
 * scheduler picks what runs at each step within a token budget (decodes first,
 * then chunked prefills of waiting requests), one batched forward pass runs
 * them all through the paged KV cache, and the sampled tokens come back as
 * per-request outputs.
 *
 * Threads: eng_add / eng_abort / eng_stats may be called from any thread;
 * eng_step from one thread only (the engine thread). Token-level stops (EOS,
 * stop_token_ids, max_tokens, max_model_len) happen here; stop strings are the
 * caller's (it detokenizes, then calls eng_abort with ENG_FINISH_STOP), as in
 * vLLM V1 where the output processor aborts the request in the engine core.
 *
 * Memory: every block a request holds is released when it finishes, is
 * aborted, or is preempted (recomputed later from its tokens). */
#ifndef VLLMC_ENGINE_ENGINE_H
#define VLLMC_ENGINE_ENGINE_H

#include <stdint.h>

#include "engine/params.h"
#include "model/model.h"

typedef struct eng_engine eng_engine;

typedef enum { ENG_FCFS = 0, ENG_PRIORITY = 1 } eng_policy;

typedef struct {
    int block_size;              /* tokens per KV block (16) */
    int max_num_seqs;            /* sequences per step (256, vLLM's CPU default for offline use) */
    int max_num_batched_tokens;  /* tokens per step (4096) */
    int max_model_len;           /* 0: the model's max_position_embeddings */
    int enable_prefix_caching;   /* 1 */
    double kv_cache_gib;         /* 0: VLLM_CPU_KVCACHE_SPACE, else 50% of physical memory */
    eng_policy policy;
    uint64_t seed;               /* seeds requests that bring none */
    int quiet;                   /* no start-up log line */
} eng_config;

void eng_config_default(eng_config *c);

typedef enum { ENG_FINISH_NONE = 0, ENG_FINISH_STOP, ENG_FINISH_LENGTH, ENG_FINISH_ABORT } eng_finish;

/* One event of one sequence in a step. Pointers stay valid until the next eng_step. */
typedef struct {
    const char *request_id;
    int index;                   /* completion index (0..n-1) */
    int has_token;
    int32_t token;               /* the token sampled this step */
    /* logprobs (when the request asked): top entries of log_softmax(raw logits) */
    int n_top;
    const int32_t *top_ids;
    const float *top_logprobs;
    float token_logprob;
    int token_rank;              /* 1 = most likely */
    eng_finish finish;
    int32_t stop_token;          /* the stop_token_ids entry that stopped it, else -1 */
    int n_prompt;                /* prompt tokens */
    int n_cached;                /* of those, served by the prefix cache at first scheduling */
    int n_output;                /* output tokens so far */
} eng_output;

typedef struct {
    int running, waiting;
    double kv_usage;             /* 0..1 */
    int num_blocks, block_size;
    uint64_t preemptions;
    uint64_t prefix_queries, prefix_hits; /* tokens */
    uint64_t prompt_tokens, generation_tokens;
} eng_stats;

int eng_create(mdl_model *m, const eng_config *c, eng_engine **out);
/* Queue a request (copies everything). ids must be unique among live requests. */
int eng_add(eng_engine *e, const char *id, const int32_t *prompt, int n_prompt, const eng_sampling_params *sp,
            int priority);
/* Abort a live request (all of its completions); it finishes with `why`
 * (ENG_FINISH_ABORT, or ENG_FINISH_STOP for a stop string) at the next step.
 * Returns 0, or VC_EINVAL if no such request is live. */
int eng_abort(eng_engine *e, const char *id, eng_finish why);
/* Run one step. *outs / *n_outs describe what happened (may be 0 events). */
int eng_step(eng_engine *e, const eng_output **outs, int *n_outs);
int eng_has_unfinished(eng_engine *e);
eng_stats eng_get_stats(eng_engine *e);
int eng_max_model_len(const eng_engine *e);
/* Test hook: the KV manager's consistency check with `referenced` expected blocks. */
int eng_check_kv(eng_engine *e, int referenced);
void eng_free(eng_engine *e);

#endif
