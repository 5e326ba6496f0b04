/* runner_internal: the runner's state, shared by runner.c (the forward pass) and lora.c (LoRA slots
 * and the low-rank updates). */
#ifndef VLLMC_RUNNER_INTERNAL_H
#define VLLMC_RUNNER_INTERNAL_H

#include "runner/runner.h"

struct rn_runner {
    int host_argmax;             /* VLLMC_HOST_ARGMAX=1: greedy batches read the logits back and scan them
                                    on the host, as before the device argmax (A/B runs) */
    mdl_model *m;
    be_backend *be;
    rn_params p;
    be_buffer **bufs;
    int n_bufs, cap_bufs;
    /* activations (f32) */
    be_tensor x, h, q, k, v, att, g, u, sel, logits;
    /* batch metadata (i32) */
    be_tensor tokens, pos, slots, q_start, seq_len, block_table, logit_rows;
    be_tensor amax;              /* i32 [1, max_logits]: each logit row's argmax (rn_batch.argmax) */
    be_tensor top_ids, top_vals; /* [max_logits, BE_TOPK_MAX] i32 / f32: each logit row's best (rn_batch.topk) */
    /* KV cache per layer */
    be_tensor *kc, *vc;
    /* LoRA (lora.c): per layer and module the weights of every slot, a [slots * R, in] and
     * b [slots * out, R] (R = max_lora_rank; a smaller rank is padded with zeros), views into one
     * buffer; the ranks per (slot, layer, module); each batch row's slot (i32); the low-rank product's
     * activations lt[module] [T, R] (a buffer per module, so that the shrinks of q, k and v, or of gate
     * and up, have no hazard between them and run together) and ld [T, widest output] */
    be_tensor *la, *lb;
    int *lrank;
    be_lora_seg *lseg; /* [max_seqs] one forward's segments */
    int32_t *lrows;    /* [max_tokens] host copy of one forward's row slots */
    be_tensor row_slot, lt[RN_LORA_MODULES], ld;
    /* mixture of experts (moe.c; rows == 0 in a dense model), for `chunk` tokens per pass (max_tokens
     * below). A = max_tokens * k (token, expert) pairs,
     * sorted by expert: xs f32 [A, D] the gathered inputs, eg/eu f32 [A, I] gate and up, ys f32
     * [A + max_tokens, D] the experts' outputs then the shared expert's; rl f32 [max_tokens, E] router
     * logits, sgl f32 [max_tokens, 1] shared-expert gate logits; gid i32 [1, A] the token of each pair,
     * cidx i32 / cwt f32 [max_tokens, k + 1] each token's rows of ys and weights (moe_combine) */
    struct rn_moe {
        be_tensor xs, eg, eu, ys, rl, sgl, gid, cidx, cwt;
        /* gpt-oss: egu f32 [chunk * k, 2I] the interleaved gate/up, eb f32 [chunk * k, max(2I, D)] the
         * pairs' expert bias rows, eid i32 [1, chunk * k] each pair's expert */
        be_tensor egu, eb, eid;
        int32_t *h_eid;
        float *h_rl, *h_sg, *h_w, *h_wt; /* host copies: router logits, shared gate, top-k weights, combine */
        int32_t *h_sel, *h_gid, *h_idx;  /* top-k experts, pair tokens, combine rows */
        int *cnt, *off;                  /* [E] pairs per expert, first pair of each */
        be_moe_group *grp;               /* [E] */
        int chunk;                       /* tokens per pass (the buffers' max_tokens above) */
        /* device routing (issue 12): passes of at most dev_max tokens (0: never) route with moe_topk;
         * didx i32 [dev_max, k + 1] their constant combine rows (moe.c's header) */
        int dev_max;
        be_tensor didx;
    } moe;
    /* longrope: one forward's runs of consecutive rows that use the same factors */
    struct rn_rope_run { int row0, n, is_long; } *runs;
    int n_runs;
};

/* A buffer of rows x cols in dtype dt, owned by the runner. */
int rn_alloc(rn_runner *r, be_dtype dt, int64_t rows, int64_t cols, be_tensor *out);
/* moe.c: buffers for the MoE layers (nothing for a dense model), and the sparse MLP of layer l:
 * h = mlp_norm(x) on entry, the block's output in h on return. */
int rn_moe_create(rn_runner *r);
void rn_moe_free(rn_runner *r);
uint64_t rn_moe_bytes(const mdl_model *m, int max_tokens);
int rn_moe_forward(rn_runner *r, int n, const be_tensor *h, int l);
/* Steps of at most this many tokens route on the device (moe.c): decode batches, where a round trip per
 * layer costs as much as the layer's expert reads. The device kernel serves an expert's pairs 4 at a time
 * (re-reading its rows from cache for more): at 16 tokens gpt-oss's 32 experts get ~2 pairs each, Qwen3's
 * 128 fewer than 1; far above, the host path's sort feeds each expert's tokens to the GEMM kernels and
 * the one read-back per pass is amortised over the batch. VLLMC_MOE_DEVICE_MAX_TOKENS moves it. */
#define RN_MOE_DEVICE_TOKENS 16
/* lora.c: the slots, and out += the LoRA update of module mod in layer l for the batch's rows. */
int rn_lora_create(rn_runner *r);
void rn_lora_free(rn_runner *r);
int rn_lora_batch(rn_runner *r, const rn_batch *b);
/* 1 when some sequence of the batch has an adapter with module mod in layer l. */
int rn_lora_active(rn_runner *r, const rn_batch *b, int l, int mod);
void rn_lora_shrink(rn_runner *r, const rn_batch *b, int l, int mod, const be_tensor *x);
void rn_lora_expand(rn_runner *r, const rn_batch *b, int l, int mod, const be_tensor *x, const be_tensor *out);

#endif
