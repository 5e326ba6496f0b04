/* runner_internal: the runner's state, shared by runner.c (the forward pass) and lora.c (LoRA slots
 * and the low-rank updates). */
#ifndef VLLMC_RUNNER_INTERNAL_H
#define VLLMC_RUNNER_INTERNAL_H

#include "runner/runner.h"

struct rn_runner {
    mdl_model *m;
    be_backend *be;
    rn_params p;
    be_buffer **bufs;
    int n_bufs;
    /* activations (f32) */
    be_tensor x, h, q, k, v, att, g, u, sel, logits;
    /* batch metadata (i32) */
    be_tensor tokens, pos, slots, q_start, seq_len, block_table, logit_rows;
    /* KV cache per layer */
    be_tensor *kc, *vc;
    /* LoRA (lora.c): per layer and module the weights of every slot, a [slots * R, in] and
     * b [slots * out, R] (R = max_lora_rank; a smaller rank is padded with zeros), views into one
     * buffer; the ranks per (slot, layer, module); each batch row's slot (i32); the low-rank product's
     * activations lt [T, R] and ld [T, widest output] */
    be_tensor *la, *lb;
    int *lrank;
    be_lora_seg *lseg; /* [max_seqs] one forward's segments */
    int32_t *lrows;    /* [max_tokens] host copy of one forward's row slots */
    be_tensor row_slot, lt, ld;
    /* longrope: one forward's runs of consecutive rows that use the same factors */
    struct rn_rope_run { int row0, n, is_long; } *runs;
    int n_runs;
};

/* A buffer of rows x cols in dtype dt, owned by the runner. */
int rn_alloc(rn_runner *r, be_dtype dt, int64_t rows, int64_t cols, be_tensor *out);
/* lora.c: the slots, and out += the LoRA update of module mod in layer l for the batch's rows. */
int rn_lora_create(rn_runner *r);
void rn_lora_free(rn_runner *r);
int rn_lora_batch(rn_runner *r, const rn_batch *b);
void rn_lora_apply(rn_runner *r, const rn_batch *b, int l, int mod, const be_tensor *x, const be_tensor *out);

#endif
