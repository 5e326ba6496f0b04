/* vllmc.h: the public C API of vllmc, in the spirit of vLLM's LLMEngine.
 *
 *   vllmc_engine_args a; vllmc_engine_args_default(&a); a.model = "path/to/hf-model";
 *   vllmc_engine *e; if (vllmc_engine_create(&a, &e)) puts(vllmc_last_error());
 *   vllmc_sampling_params p; vllmc_sampling_params_default(&p); p.max_tokens = 32;
 *   vllmc_add_request(e, "req-1", ids, n_ids, &p, 0);
 *   while (vllmc_has_unfinished(e)) { const vllmc_output *o; int n; vllmc_step(e, &o, &n); ... }
 *   vllmc_engine_free(e);
 *
 * Threads: vllmc_add_request, vllmc_abort and vllmc_has_unfinished may be
 * called from any thread while one thread calls vllmc_step.
 * Ownership: every input is copied (ids, params and their arrays, the request
 * id); outputs and everything they point to belong to the engine and stay
 * valid until the next vllmc_step on that engine. Functions return 0 or a
 * negative code; vllmc_last_error() describes the last failure on the calling
 * thread. */
#ifndef VLLMC_H
#define VLLMC_H

#include <stdint.h>

#define VLLMC_VERSION "0.1.0"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int32_t token;
    float bias;
} vllmc_logit_bias;

struct gram_grammar; /* a compiled grammar (src/grammar/grammar.h) */

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
    vllmc_logit_bias *logit_bias;   /* [n_logit_bias] */
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
    struct gram_grammar *grammar; /* generation is constrained to this grammar (src/grammar/grammar.h); the params
                                     hold a reference; NULL: unconstrained */
    int grammar_after_reasoning;  /* 1: the grammar applies only once the reasoning has ended (reasoning_end_id
                                     generated, or the prompt's last of reasoning_start_id / reasoning_end_id is
                                     the end): the thinking is free, as vLLM does with a reasoning parser. 0
                                     (default): the grammar applies from the first token */
    int32_t reasoning_end_id;     /* "</think>" (used only with grammar_after_reasoning) */
    int32_t reasoning_start_id;   /* "<think>", or -1 */
} vllmc_sampling_params;

/* vLLM's SamplingParams defaults (note: temperature 1.0, max_tokens 16). */
void vllmc_sampling_params_default(vllmc_sampling_params *p);

typedef enum { VLLMC_FINISH_NONE = 0, VLLMC_FINISH_STOP, VLLMC_FINISH_LENGTH, VLLMC_FINISH_ABORT } vllmc_finish;

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
    vllmc_finish finish;
    int32_t stop_token;          /* the stop_token_ids entry that stopped it, else -1 */
    int n_prompt;                /* prompt tokens */
    int n_cached;                /* of those, served by the prefix cache at first scheduling */
    int n_output;                /* output tokens so far */
    /* prompt_logprobs (with the first token, when the request asked): entry i
     * (1 <= i < n_prompt) describes prompt token i given tokens 0..i-1; entry 0
     * is vLLM's None. Top entries [i * prompt_lp_k ..], best first (-1 pads). */
    int prompt_lp_k;             /* 0: none */
    const int32_t *prompt_lp_ids;
    const float *prompt_lp_vals;
    const float *prompt_token_logprob; /* [n_prompt] */
    const int *prompt_token_rank;      /* [n_prompt] */
    const char *error;           /* why the engine ended the sequence (finish ABORT: e.g. its grammar allows no
                                    token), else NULL */
} vllmc_output;

typedef struct vllmc_engine vllmc_engine;

typedef struct {
    const char *model;            /* Hugging Face model folder, or a Hub repo id ORG/NAME (downloaded into the
                                     Hugging Face cache; HF_TOKEN, HF_ENDPOINT, HF_HUB_OFFLINE honoured) (required) */
    const char *dtype;            /* auto | half | float16 | bfloat16 | float | float32 (NULL: auto) */
    const char *device;           /* auto | cpu | gpu (NULL: auto) */
    int block_size;               /* 16 */
    int max_num_seqs;             /* 256 */
    int max_num_batched_tokens;   /* 4096 */
    int max_model_len;            /* 0: the model's */
    int enable_prefix_caching;    /* 1 */
    double kv_cache_gib;          /* 0: VLLM_CPU_KVCACHE_SPACE, else 50% of physical memory */
    int priority_scheduling;      /* 0: FCFS, 1: by priority (lower first), then arrival */
    uint64_t seed;                /* seeds requests that bring none */
    int max_logprobs;             /* largest logprobs / prompt_logprobs allowed (20; -1: vocabulary) */
    const char *kv_cache_dtype;   /* auto | bfloat16 | float16 | float32 (NULL: auto, the model's dtype) */
    double gpu_memory_utilization; /* discrete GPUs: share of device memory to use, in (0, 1] (0: 0.9) */
    const char *revision;         /* Hub revision of a repo id model (NULL: main) */
    const char *download_dir;     /* NULL: the Hugging Face cache */
    /* LoRA (vLLM's enable_lora, max_loras, max_lora_rank, max_cpu_loras) */
    int enable_lora;              /* 0 */
    int max_loras;                /* adapters in one step (1) */
    int max_lora_rank;            /* 16 */
    int max_cpu_loras;            /* adapters kept in host memory (0: max_loras) */
} vllmc_engine_args;

void vllmc_engine_args_default(vllmc_engine_args *a);
int vllmc_engine_create(const vllmc_engine_args *a, vllmc_engine **out);
/* Queue a request; `n_prompt` token ids. request_id must be unique among live
 * requests; NULL lets the engine name it "req-N" (N counts the unnamed requests
 * from 0); outputs carry the name either way. */
int vllmc_add_request(vllmc_engine *e, const char *request_id, const int32_t *prompt, int n_prompt,
                      const vllmc_sampling_params *p, int priority);
/* LoRA (needs enable_lora): load a PEFT adapter folder (or a Hub id) under `name`, which requests then
 * name; unload it (requests that use it finish with it). vLLM's LoRARequest(name, id, path). */
int vllmc_lora_load(vllmc_engine *e, const char *name, const char *path);
int vllmc_lora_unload(vllmc_engine *e, const char *name);
/* vllmc_add_request with the adapter loaded as `lora_name` (NULL: the base model). */
int vllmc_add_request_lora(vllmc_engine *e, const char *request_id, const int32_t *prompt, int n_prompt,
                           const vllmc_sampling_params *p, int priority, const char *lora_name);
/* Abort a request (all its completions); it reports VLLMC_FINISH_ABORT at the next step. */
int vllmc_abort(vllmc_engine *e, const char *request_id);
/* One step of every unfinished request. A failure (out of memory, a device error) leaves the
 * engine usable: the step's work is undone, and vllmc_step may be called again. */
int vllmc_step(vllmc_engine *e, const vllmc_output **outs, int *n_outs);
int vllmc_has_unfinished(vllmc_engine *e);
int vllmc_vocab_size(const vllmc_engine *e);
void vllmc_engine_free(vllmc_engine *e);
const char *vllmc_last_error(void);

#ifdef __cplusplus
}
#endif

#endif
