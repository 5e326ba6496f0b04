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
    const int32_t *seq_lora;     /* [n_seqs] LoRA slot of each sequence (-1: the base model), or NULL:
                                    none; consecutive sequences of one slot form one segment */
    const int32_t *seq_rope_len; /* [n_seqs] the length that picks longrope's factors (long ones above
                                    original_max_position_embeddings, as transformers does per forward pass):
                                    the engine passes max(prompt, seq_len), so a chunked prompt uses the
                                    factors of its whole length; NULL: seq_len */
    int32_t *argmax;             /* non-NULL: greedy rows only: argmax[i] receives the index of logit row
                                    i's largest logit (backend.h's argmax), computed on the device where
                                    the backend has the op, and the logits are not read back (else the
                                    host scans them: rn_forward's logits buffer is still required) */
    int topk;                    /* 1..BE_TOPK_MAX, argmax NULL: each logit row's topk best (backend.h's topk)
                                    go to top_ids/top_vals [n_logits x topk] (on the device where the
                                    backend has the op, and the logits are not read back; else the host
                                    selects from them); rn_read_logits gives a whole row afterwards */
    int32_t *top_ids;
    float *top_vals;
} rn_batch;

/* LoRA modules, in PEFT's names: q_proj k_proj v_proj o_proj gate_proj up_proj down_proj. */
enum { RN_LORA_Q, RN_LORA_K, RN_LORA_V, RN_LORA_O, RN_LORA_GATE, RN_LORA_UP, RN_LORA_DOWN, RN_LORA_MODULES };

/* One (layer, module) of an adapter on the host: out += scale * (x @ a^T) @ b^T. a and b hold f32 as an
 * adapter is read; rn_lora_prepare turns them into the model's weight dtype with the scale already in b
 * (scale 1), the form rn_lora_set takes, so that putting an adapter into a slot is a copy, not a
 * conversion of every value (an 8B adapter of rank 16 has 42 M). */
typedef struct {
    int rank;                    /* 0: no LoRA on this module */
    float scale;                 /* alpha / rank (or alpha / sqrt(rank), rsLoRA); 1 once folded into b */
    const void *a;               /* [rank, in] (PEFT lora_A.weight) */
    const void *b;               /* [out, rank] (PEFT lora_B.weight) */
    be_dtype dt;                 /* of a and b: BE_F32 (0), or the weights' dtype after rn_lora_prepare */
} rn_lora_weight;

typedef struct rn_runner rn_runner;

typedef struct {
    int max_tokens;      /* most tokens in one batch */
    int max_seqs;        /* most sequences in one batch */
    int max_blocks;      /* most blocks per sequence (block-table columns) */
    int num_blocks;      /* KV cache blocks */
    int block_size;      /* tokens per block */
    int max_logits;      /* most logit rows per batch (0: max_seqs) */
    int max_loras;       /* LoRA adapter slots (0: no LoRA) */
    int max_lora_rank;   /* the largest rank a slot holds */
    be_dtype kv_dtype;   /* KV cache dtype (the engine's default is the model's run dtype, as
                            vLLM's auto; f32 keeps bf16 models within 3e-5 of the fp32 reference,
                            where a bf16 cache alone moves logprobs by up to ~0.1) */
} rn_params;

int rn_create(mdl_model *m, const rn_params *p, rn_runner **out);
/* Run the batch; logits (host, f32 [n_logits, vocab]) receive the raw logits.
 * Bad batches (ids out of range, too many tokens, positions beyond the
 * table) are VC_EINVAL and touch nothing. */
int rn_forward(rn_runner *r, const rn_batch *b, float *logits);
/* Logit row i of the last rn_forward (its rows as computed, whether or not they were read back) into out
 * [vocab_size]: for a row whose topk did not decide its token (samp_sample_top). */
int rn_read_logits(rn_runner *r, int i, float *out);
void rn_free(rn_runner *r);
/* Put an adapter into LoRA slot `slot` (w: [n_layers * RN_LORA_MODULES], layer-major), in the
 * weights' dtype with the scale folded into b. Ordered with the forward passes as every buffer write
 * is: a pass recorded before runs with the old contents. Ranks above max_lora_rank are VC_EINVAL. */
int rn_lora_set(rn_runner *r, int slot, const rn_lora_weight *w); /* w prepared (rn_lora_prepare) */
/* w (f32, n_layers * RN_LORA_MODULES) in the weights' dtype wdt, b scaled (scale then 1), as rn_lora_set
 * copies it: *out (an array of as many) points into *data; free both. */
int rn_lora_prepare(const model_config *c, be_dtype wdt, const rn_lora_weight *w, rn_lora_weight **out, void **data);
/* The in and out widths of LoRA module mod (RN_LORA_*) for a model of this config. */
void rn_lora_dims(const model_config *c, int mod, int64_t *in, int64_t *out);
/* Bytes of the LoRA slots and their activations for these limits (0 without LoRA). */
uint64_t rn_lora_bytes(const mdl_model *m, int max_tokens, int max_loras, int max_lora_rank);
/* Bytes of activations and batch metadata rn_create allocates for these limits. */
uint64_t rn_activation_bytes(const mdl_model *m, int max_tokens, int max_logits);
/* MoE passes routed on the device (issue 12) since the process started, over every runner: tests read
 * it to see that the path ran. */
uint64_t rn_moe_device_passes(void);
/* Batches whose greedy tokens the backend's argmax picked (rn_batch.argmax), process-wide: tests check
 * that the path ran. */
uint64_t rn_device_argmax_passes(void);
/* KV cache bytes per block (all layers, K and V). */
uint64_t rn_kv_bytes_per_block(const mdl_model *m, int block_size, be_dtype kv_dtype);

#endif
