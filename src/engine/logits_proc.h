/* logits_proc: the per-request logits processors that vLLM V1 applies to the
 * raw logits before temperature / min_p / top-k / top-p (engine/sampler.h),
 * and vLLM's logprobs record (top-K, sampled token's logprob and rank).
 *
 * Order (vllm/v1/sample/sampler.py apply_logits_processors), on the f32 row:
 *   1. allowed_token_ids: every other token -> -inf;
 *   2. bad_words: a word of one token is always banned; a longer word bans its
 *      last token when the last L-1 OUTPUT tokens equal its first L-1 (the
 *      prompt is not looked at, as vLLM's apply_bad_words);
 *   3. min_tokens: while fewer than min_tokens tokens were generated, every
 *      stop_token_id and every EOS id -> -inf. EOS ids are banned even with
 *      ignore_eos, as in vLLM (its all_stop_token_ids always holds EOS);
 *   4. logit_bias: logits[tok] += bias (duplicate tokens: the last wins, as
 *      a Python dict);
 *   5. penalties (vLLM apply_penalties): repetition over tokens in the prompt
 *      or the output: logit * (1/rp) if logit > 0 else logit * rp; then
 *      logit -= frequency * count; then logit -= presence * (count > 0), both
 *      over OUTPUT tokens only;
 *   6. grammar (structured output, params->grammar): every token whose bytes
 *      cannot continue the output within the grammar -> -inf; EOS ids are
 *      allowed exactly when the output is a whole sentence, and are all that
 *      is left once nothing may follow. Last, so nothing re-enables a token
 *      the grammar forbids. A row the grammar leaves no possible token in
 *      (its allowed tokens all -inf, or none at all) is VC_EINVAL: the
 *      request fails, the engine goes on.
 * vLLM computes the returned logprobs from the raw logits (logprobs_mode
 * raw_logprobs), so call lp_logprobs before lp_apply, or on a copy.
 *
 * Cost: lp_state_init copies what the request needs (the prompt's distinct
 * tokens only when repetition_penalty != 1). Each lp_apply is O(new output
 * tokens + distinct prompt and output tokens + bad-word lengths), plus one
 * pass over the row only for allowed_token_ids. Output token counts are kept
 * incrementally: output_ids must only grow between calls (a shorter list, or
 * a changed last-seen token, makes the state recount from scratch). A request
 * whose parameters need nothing has st->active == 0 and lp_apply returns at
 * once. Pure: no I/O, no globals; one state per sequence (n > 1: one each).
 *
 * Grammar cost: a matcher per sequence fed each output token's bytes once,
 * and a mask walk over the vocabulary trie per sampled token (lp_prepare, so
 * the engine does the part that can allocate before its step changes
 * anything), then one pass over the row. */
#ifndef VLLMC_ENGINE_LOGITS_PROC_H
#define VLLMC_ENGINE_LOGITS_PROC_H

#include <stdint.h>

#include "engine/params.h"
#include "grammar/grammar.h"

/* What a grammar needs of the vocabulary: the mask trie, and each id's bytes (to feed sampled
 * tokens); both [vocab] and the caller's (they outlive the state). */
typedef struct {
    const gram_vocab *vocab;
    const unsigned char *const *tok;
    const size_t *len;
} lp_grammar_vocab;

typedef struct {
    int vocab;
    int active;                /* 0: lp_apply has nothing to do, ever */
    /* 1. allowed_token_ids, sorted and unique; saved[] holds their logits while the row is filled */
    int32_t *allowed;
    float *saved;
    int n_allowed;             /* 0: no restriction */
    /* 2. bad words: word i is bw_tok[bw_off[i] .. bw_off[i + 1]) */
    int32_t *bw_tok;
    int *bw_off;
    int n_bw;
    /* 3. min_tokens: stop_token_ids and EOS ids, unique */
    int min_tokens;
    int32_t *min_ban;
    int n_min_ban;
    /* 4. logit_bias, one entry per token */
    int32_t *bias_tok;
    float *bias_val;
    int n_bias;
    /* 5. penalties */
    int penalties;             /* any of rep != 1, freq != 0, pres != 0 */
    float rep, freq, pres;
    int32_t *prompt_set;       /* sorted distinct prompt tokens (rep != 1 only) */
    int n_prompt_set;
    /* output counts: distinct tokens in first-seen order, with a hash index */
    int32_t *out_tok, *out_cnt;
    uint8_t *out_in_prompt;
    int n_out, out_cap;
    int32_t *ht;               /* [ht_cap] index into out_tok, -1 empty */
    int ht_cap;
    int n_seen;                /* output tokens counted so far */
    int32_t last_seen;         /* output_ids[n_seen - 1] when counted */
    /* 6. grammar */
    gram_grammar *grammar;     /* a reference; NULL: none */
    gram_matcher *gm;
    lp_grammar_vocab gv;
    int32_t *g_eos;            /* EOS ids (in range) */
    int n_g_eos;
    uint32_t *g_mask;          /* [(vocab + 31) / 32] allowed tokens after g_fed output tokens, EOS included */
    int g_fed;                 /* output tokens fed to gm */
    int32_t g_last;            /* output[g_fed - 1] when fed */
    int g_mask_at;             /* output length g_mask is for (-1: none) */
    /* reasoning first (grammar_after_reasoning): the grammar reads output[g_begin..] once the reasoning ended */
    int32_t g_end_id;          /* -1: the grammar applies from the first token (g_begin 0) */
    int g_begin;               /* -1: the reasoning goes on */
    int g_scan;                /* output tokens looked at for g_end_id */
    int g_prompt_ended;        /* the prompt ended the reasoning: g_begin is 0 for good */
    int g_err;                 /* a grammar violation seen by lp_prepare (VC_EINVAL), reported by lp_apply */
    char g_msg[200];
} lp_state;

/* Build the state for one sequence. params must have passed
 * eng_params_validate(p, vocab); the state keeps copies, not pointers.
 * eos_ids: the model's EOS ids (tokenizer eos_token_id and generation_config's
 * eos_token_id), used by min_tokens. prompt: the prompt token ids. */
int lp_state_init(lp_state *st, const eng_sampling_params *params, int vocab, const int32_t *eos_ids, int n_eos,
                  const int32_t *prompt, int n_prompt);
/* The same, with the vocabulary a grammar needs (gv may be NULL: then params->grammar is refused,
 * VC_EINVAL "structured output needs the model's tokenizer"). gv->vocab must have `vocab` tokens. */
int lp_state_init_gv(lp_state *st, const eng_sampling_params *params, int vocab, const int32_t *eos_ids, int n_eos,
                     const int32_t *prompt, int n_prompt, const lp_grammar_vocab *gv);
void lp_state_free(lp_state *st);
/* Make room for the counts of an output of up to n_output tokens, so that an lp_apply over it
 * allocates nothing (the engine reserves before a step, so a step cannot fail half-way). */
int lp_reserve(lp_state *st, int n_output);
/* Grammar: feed the output tokens not fed yet and compute the mask for the next token, the work of
 * step 6 that can allocate (the matcher's sets grow with the output). The engine calls it on its mask
 * worker during the step's forward pass; lp_apply then only applies the mask. Returns VC_ENOMEM only: a
 * grammar violation is kept and returned by the next lp_apply (the request fails, not the step). */
int lp_prepare(lp_state *st, const int32_t *output, int n_output);
/* Whether lp_prepare has work for an output of n_output tokens (a grammar whose mask is not ready). */
int lp_pending(const lp_state *st, int n_output);
/* Apply 1-6 in place to logits[vocab]. output: the tokens generated so far for
 * this sequence (append-only between calls). Errors: an output id outside
 * [0, vocab) (VC_EINVAL), a grammar violation or a row the grammar leaves no
 * token in (VC_EINVAL), out of memory. */
int lp_apply(lp_state *st, const int32_t *output, int n_output, float *logits);

/* vLLM's logprobs record for one position, from raw logits: the top-k of
 * log_softmax (best first, ties by lower id; min(k, vocab) entries written
 * and returned; k may be 0), the logprob of `token`, and its rank as vLLM
 * reports it: the number of tokens whose logit is >= token's (1 for the
 * unique best; tied tokens share the worse rank). Any of the out pointers for
 * the token may be NULL. For prompt_logprobs, token is the next prompt token. */
int lp_logprobs(const float *logits, int vocab, int token, int k, int32_t *top_ids, float *top_logprobs,
                float *token_logprob, int *token_rank);

#endif
