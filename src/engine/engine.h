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
 * aborted, or is preempted (recomputed later from its tokens).
 *
 * Structured output: a request whose params carry a grammar is sampled only
 * from the tokens that keep its output within the grammar, EOS only where the
 * output is a sentence (engine/logits_proc.h, step 6); it needs the
 * configuration's grammar vocabulary. A request whose grammar leaves no token
 * to sample ends with ENG_FINISH_ABORT and the reason in the output's `error`;
 * the step and the other requests go on. */
#ifndef VLLMC_ENGINE_ENGINE_H
#define VLLMC_ENGINE_ENGINE_H

#include <stdint.h>

#include "engine/lora.h"
#include "engine/params.h"
#include "grammar/grammar.h"
#include "model/model.h"

typedef struct eng_engine eng_engine;

typedef enum { ENG_FCFS = 0, ENG_PRIORITY = 1 } eng_policy;

typedef struct {
    int block_size;              /* tokens per KV block (16) */
    int max_num_seqs;            /* sequences per step (256, vLLM's CPU default for offline use) */
    int max_num_batched_tokens;  /* tokens per step (4096) */
    int max_model_len;           /* 0: the model's max_position_embeddings */
    int enable_prefix_caching;   /* 1 */
    double kv_cache_gib;         /* 0: VLLM_CPU_KVCACHE_SPACE, else 50% of physical memory (CPU, unified
                                    GPU) or gpu_memory_utilization of a discrete GPU's memory */
    double gpu_memory_utilization; /* discrete GPUs: share of device memory for weights + activations +
                                      KV cache (0: vLLM's 0.9) */
    int kv_dtype;                /* KV cache dtype: a be_dtype (BE_F32/F16/BF16) or -1 (auto: the
                                    model's run dtype, as vLLM's --kv-cache-dtype auto) */
    eng_policy policy;
    uint64_t seed;               /* seeds requests that bring none */
    int max_logprobs;            /* largest logprobs / prompt_logprobs a request may ask (vLLM: 20) */
    int quiet;                   /* no start-up log line */
    const gram_vocab *grammar_vocab; /* token byte strings for grammar masks (the caller's, outlives the engine);
                                        NULL: grammar requests are refused */
    const unsigned char *const *grammar_tok; /* [vocab_size] the same byte strings by id, grammar_tok_len[i]
                                                bytes each (what a sampled token feeds a grammar); required
                                                with grammar_vocab, the caller's as well */
    const size_t *grammar_tok_len;
    int max_loras;               /* LoRA adapters in one step (vLLM's --max-loras; 0: LoRA off) */
    int max_lora_rank;           /* the largest adapter rank (vLLM's --max-lora-rank, 16) */
} eng_config;

void eng_config_default(eng_config *c);

/* Public (include/vllmc.h): the finish reasons and the per-step output. */
typedef vllmc_finish eng_finish;
#define ENG_FINISH_NONE VLLMC_FINISH_NONE
#define ENG_FINISH_STOP VLLMC_FINISH_STOP
#define ENG_FINISH_LENGTH VLLMC_FINISH_LENGTH
#define ENG_FINISH_ABORT VLLMC_FINISH_ABORT
typedef vllmc_output eng_output;

typedef struct {
    int running, waiting;
    double kv_usage;             /* 0..1 */
    int num_blocks, block_size;
    const char *cache_dtype;     /* --kv-cache-dtype as configured: "auto", "bfloat16", "float16", "float32" */
    double gpu_memory_utilization; /* as configured (0.9 unless set) */
    int enable_prefix_caching;
    uint64_t preemptions;
    uint64_t prefix_queries, prefix_hits; /* tokens */
    uint64_t prompt_tokens, generation_tokens;
    uint64_t topk_rows, topk_full_rows; /* tokens sampled from their row's best few (rn_batch.topk); of them,
                                           from the whole row read back after all (samp_sample_top declined) */
    /* LoRA adapters (ids) of the running and the waiting requests, for vLLM's vllm:lora_requests_info;
     * at most ENG_STATS_LORAS of each (more are left out) */
#define ENG_STATS_LORAS 32
    int lora_running[ENG_STATS_LORAS], n_lora_running;
    int lora_waiting[ENG_STATS_LORAS], n_lora_waiting;
    int max_loras;
} eng_stats;

int eng_create(mdl_model *m, const eng_config *c, eng_engine **out);
/* Queue a request (copies everything). ids must be unique among live requests. */
int eng_add(eng_engine *e, const char *id, const int32_t *prompt, int n_prompt, const eng_sampling_params *sp,
            int priority);
/* The same with a LoRA adapter (NULL: the base model); each sequence takes a reference. An adapter
 * needs max_loras > 0 and a rank within max_lora_rank (else VC_EINVAL). */
int eng_add_lora(eng_engine *e, const char *id, const int32_t *prompt, int n_prompt, const eng_sampling_params *sp,
                 int priority, eng_lora *lora);
/* Abort completion `index` of a request (-1: all of them); it finishes with
 * `why` (ENG_FINISH_ABORT, or ENG_FINISH_STOP for a stop string) at the next
 * step, with an output event. Unknown ids are ignored (the request may have
 * finished meanwhile). */
int eng_abort(eng_engine *e, const char *id, int index, eng_finish why);
/* Run one step. *outs / *n_outs describe what happened (may be 0 events).
 * A failed step leaves the engine usable: the engine's allocations are made (reserved) before
 * anything changes, and a failed forward pass (a device error, the CPU attention scratch) is undone
 * (what scheduling committed to the prefix cache is forgotten, the scheduled sequences recompute
 * later); finish events of aborts it applied come with the next step. So the caller may step again,
 * or abort requests and step to collect their ends. */
int eng_step(eng_engine *e, const eng_output **outs, int *n_outs);
int eng_has_unfinished(eng_engine *e);
eng_stats eng_get_stats(eng_engine *e);
int eng_max_model_len(const eng_engine *e);
/* Test hook: the KV manager's consistency check with `referenced` expected blocks. */
int eng_check_kv(eng_engine *e, int referenced);
void eng_free(eng_engine *e);

#endif
