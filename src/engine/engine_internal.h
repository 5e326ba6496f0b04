/* engine_internal: the request state shared by engine.c and scheduler.c. */
#ifndef VLLMC_ENGINE_INTERNAL_H
#define VLLMC_ENGINE_INTERNAL_H

#include <pthread.h>

#include "engine/engine.h"
#include "engine/kv_cache.h"
#include "engine/logits_proc.h"
#include "engine/mask_worker.h"
#include "engine/sampler.h"
#include "runner/runner.h"

typedef enum { RQ_WAITING, RQ_RUNNING, RQ_FINISHED } rq_status;

/* One sequence (one completion of a request). */
typedef struct eng_seq {
    char *id;                 /* the request id (shared by its n completions) */
    int index;                /* completion index */
    int n_prompt;
    int32_t *tokens;          /* prompt then output: [n_tokens], capacity cap */
    int n_tokens, cap;
    int n_computed;           /* tokens whose K/V are in the cache */
    int32_t *blocks;          /* [n_blocks] block ids, capacity max_blocks */
    uint64_t *hashes;         /* [n_hashed] chained hashes of the committed full blocks */
    int n_blocks, n_hashed;
    int n_cached;             /* prompt tokens found in the cache at first scheduling (-1: not yet) */
    eng_sampling_params sp;
    lp_state lp;
    samp_rng rng;
    int priority;
    uint64_t arrival;         /* order of arrival */
    rq_status status;
    eng_finish finish;        /* set when done */
    int32_t stop_token;
    int abort_pending;        /* eng_abort seen: finish at the start of the next step */
    eng_finish abort_why;
    /* prompt_logprobs (sp.prompt_logprobs >= 0): entries for prompt positions 1..n_prompt-1 */
    int plp_k;
    int32_t *plp_ids;         /* [n_prompt * plp_k] */
    float *plp_vals;          /* [n_prompt * plp_k] */
    float *plp_tok;           /* [n_prompt] */
    int *plp_rank;            /* [n_prompt] */
    int plp_sent;             /* handed out with the first token */
    eng_lora *lora;           /* the request's adapter (a reference), or NULL */
    /* scheduled this step */
    int sched_tokens;
    int lslot;                /* the runner's LoRA slot of this step's adapter, -1 none */
} eng_seq;

/* Logit rows one step may use for prompt_logprobs, beyond one per sequence. */
#define ENG_PLP_ROWS 128

struct eng_engine {
    mdl_model *m;
    eng_config cfg;
    int max_model_len, max_blocks_per_seq;
    rn_runner *runner;
    kv_manager *kv;
    /* live sequences */
    eng_seq **running;        /* in scheduling order */
    int n_running;
    eng_seq **waiting;        /* queue: [0] is the head */
    int n_waiting, cap_waiting;
    /* cross-thread inbox (guarded by mu) */
    pthread_mutex_t mu;
    eng_seq **inbox;
    int n_inbox, cap_inbox;
    char **aborts;
    eng_finish *abort_why;
    int *abort_index;
    int n_aborts, cap_aborts;
    int live;                 /* sequences not yet finished (incl. inbox), guarded by mu */
    uint64_t arrivals;
    uint64_t seed_state;
    /* step scratch (reserved at creation) */
    int32_t *b_tokens, *b_pos, *b_slots, *b_qstart, *b_seqlen, *b_bt, *b_lrows;
    int32_t *b_ropelen;       /* [max_num_seqs] max(prompt, seq_len): picks longrope's factors (rn_batch) */
    eng_seq **b_seqs;         /* [max_num_seqs] scheduled this step */
    int n_sched;
    float *logits;            /* [(max_num_seqs + ENG_PLP_ROWS) * vocab] */
    int max_rows_used;        /* logit rows of the current step */
    int32_t *row_seq, *row_pos; /* [max_num_seqs + ENG_PLP_ROWS]: batch index and prompt position (-1: sample) */
    float *raw;               /* [vocab] copy of raw logits for logprobs */
    int32_t *amax;            /* [max_num_seqs + ENG_PLP_ROWS] the device's greedy picks (rn_batch.argmax) */
    int amax_step;            /* this step's rows are all plain greedy: their tokens are in amax */
    int32_t *top_ids;         /* [(max_num_seqs + ENG_PLP_ROWS) * BE_TOPK_MAX] each row's best (rn_batch.topk) */
    float *top_vals;
    int topk_step;            /* > 0: this step's rows are plain greedy or top_k sampled (top_sampled): their
                                 topk_step best are in top_ids/top_vals, not their logits */
    int no_topk;              /* VLLMC_NO_TOPK_STEP=1: such steps read whole logit rows (A/B runs, tests) */
    uint64_t topk_rows, topk_full_rows; /* rows sampled in top-k steps; of them, read back whole */
    samp_scratch sc;
    eng_output *outs;
    int n_outs, cap_outs;
    int32_t *lp_ids;          /* logprob storage for this step's outputs */
    float *lp_vals;
    int lp_used, lp_cap;
    eng_seq **finished;       /* freed at the start of the next step */
    int n_finished, cap_finished;
    int carry;                /* the last step failed after taking aborts: its outputs (finish events
                                 of aborted sequences) and finished sequences go out with the next one */
    uint64_t preemptions, prompt_tokens, generation_tokens;
    eng_stats stats;          /* snapshot for other threads (guarded by mu) */
    /* LoRA (cfg.max_loras slots): the adapter each slot holds (a reference) and when a step last used it */
    eng_lora **lslot;
    uint64_t *lstamp, steps;
    int32_t *b_lora;          /* [max_num_seqs] slot of each scheduled sequence, in batch order */
    eng_mask_worker *mw;      /* computes a step's grammar masks during its forward pass (NULL: not
                                 started yet, or it could not start: then the engine thread does) */
};

void eng_seq_free(eng_seq *s);

/* scheduler.c: pick this step's work; fills e->b_seqs / n_sched and each seq's
 * sched_tokens, allocating (and, under pressure, preempting) KV blocks. */
void sched_step(eng_engine *e);
/* Release a sequence's blocks and reset it to recompute from scratch. */
void sched_preempt(eng_engine *e, eng_seq *s);
/* Release a finished sequence's blocks. */
void sched_release(eng_engine *e, eng_seq *s);
/* The forward pass of the scheduled work failed: forget what scheduling committed to the prefix
 * cache for it and send every scheduled sequence back to the waiting queue, in order. */
void sched_unwind(eng_engine *e);
/* The prefix-cache key of a sequence's blocks: its adapter's id (0: the base model). */
static inline uint64_t sched_cache_key(const eng_seq *s) { return s->lora ? (uint64_t)eng_lora_id(s->lora) : 0; }

#endif
