/* runner: one forward pass of the Llama family over a batch of tokens from
 * many sequences, written against the backend interface.
 *
 * The runner owns the activation buffers (sized for max_tokens at creation, so
 * the token loop never allocates) and the paged KV cache: per layer one K and
 * one V tensor of [num_blocks * block_size, n_kv_heads * head_dim] in the
 * cache dtype (rn_params.kv_dtype). Which blocks a sequence uses is the caller's business (the
 * block table); the runner only writes the new tokens' K/V into the slots the
 * batch names and attends over the blocks the table lists. */
#ifndef VLLMC_RUNNER_H
#define VLLMC_RUNNER_H

#include <stdint.h>

#include "model/model.h"

typedef struct {
    int n_tokens;
    const int32_t *tokens;       /* [n_tokens] token ids */
    const int32_t *positions;    /* [n_tokens] position of each token in its sequence */
    const int32_t *slots;        /* [n_tokens] KV cache slot (block * block_size + offset) */
    int n_seqs;
    const int32_t *q_start;      /* [n_seqs + 1] first batch row of each sequence; rows are grouped by sequence */
    const int32_t *seq_len;      /* [n_seqs] context length incl. this batch's tokens */
    const int32_t *block_table;  /* [n_seqs * max_blocks] row-major */
    int max_blocks;              /* columns of block_table (<= the runner's max_blocks) */
    int n_logits;
    const int32_t *logit_rows;   /* [n_logits] batch rows whose logits are wanted */
} rn_batch;

typedef struct rn_runner rn_runner;

typedef struct {
    int max_tokens;      /* most tokens in one batch */
    int max_seqs;        /* most sequences in one batch */
    int max_blocks;      /* most blocks per sequence (block-table columns) */
    int num_blocks;      /* KV cache blocks */
    int block_size;      /* tokens per block */
    int max_logits;      /* most logit rows per batch (0: max_seqs) */
    be_dtype kv_dtype;   /* KV cache dtype (the engine's default is the model's run dtype, as
                            vLLM's auto; f32 keeps bf16 models within 3e-5 of the fp32 reference,
                            where a bf16 cache alone moves logprobs by up to ~0.1) */
} rn_params;

int rn_create(mdl_model *m, const rn_params *p, rn_runner **out);
/* Run the batch; logits (host, f32 [n_logits, vocab]) receive the raw logits.
 * Bad batches (ids out of range, too many tokens, positions beyond the
 * table) are VC_EINVAL and touch nothing. */
int rn_forward(rn_runner *r, const rn_batch *b, float *logits);
void rn_free(rn_runner *r);
/* Bytes of activations and batch metadata rn_create allocates for these limits. */
uint64_t rn_activation_bytes(const mdl_model *m, int max_tokens, int max_logits);
/* KV cache bytes per block (all layers, K and V). */
uint64_t rn_kv_bytes_per_block(const mdl_model *m, int block_size, be_dtype kv_dtype);

#endif
