/* model: the weights of one Llama-family model, placed in backend buffers.
 *
 * One parameterised layout covers Llama, Mistral, Qwen2 and Qwen3: optional
 * tensors (biases, q/k norms) have rows == 0 when the architecture lacks them.
 * Matmul weights and the embedding are kept in the run dtype (`wdtype`): a
 * checkpoint tensor already in that dtype is used in place from the mmap, any
 * other is converted once at load. Norm weights and biases are always f32.
 *
 * Ownership: the model owns its buffers and (when loaded from a folder) the
 * safetensors mappings; mdl_free() releases both and is safe on NULL. */
#ifndef VLLMC_MODEL_MODEL_H
#define VLLMC_MODEL_MODEL_H

#include <stdint.h>

#include "backend/backend.h"
#include "model/config.h"
#include "model/safetensors.h"

typedef struct {
    be_tensor attn_norm;          /* f32 [1, D] */
    be_tensor wq, wk, wv, wo;     /* wdtype [H*hd, D], [Hkv*hd, D], [Hkv*hd, D], [D, H*hd]; with a fused
                                     qkv_proj (Phi-3) wq/wk/wv are row ranges of that one tensor */
    be_tensor bq, bk, bv, bo;     /* f32 [1, out] or rows == 0 */
    be_tensor q_norm, k_norm;     /* f32 [1, hd] (Qwen3) or rows == 0 */
    be_tensor post_attn_norm;     /* f32 [1, D] (Gemma: post_attention_layernorm) or rows == 0 */
    be_tensor mlp_norm;           /* f32 [1, D] (Gemma: pre_feedforward_layernorm) */
    be_tensor post_mlp_norm;      /* f32 [1, D] (Gemma: post_feedforward_layernorm) or rows == 0 */
    be_tensor w_gate, w_up;       /* wdtype [F, D]; row ranges of gate_up_proj [2F, D] when fused (Phi-3);
                                     in a MoE layer Qwen2-MoE's shared expert ([Fs, D]) or rows == 0 */
    be_tensor w_down;             /* wdtype [D, F] (shared expert: [D, Fs]) */
    be_tensor b_gate, b_up, b_down; /* f32 or rows == 0 (mlp_bias) */
    /* a sparse MoE layer (cfg_layer_moe); rows == 0 / NULL in a dense one */
    be_tensor router;             /* wdtype [E, D] (mlp.gate / block_sparse_moe.gate) */
    be_tensor shared_gate;        /* wdtype [1, D] (Qwen2-MoE's shared_expert_gate) or rows == 0 */
    be_tensor *exp_gate, *exp_up; /* [E] views, wdtype [I, D] each: separate tensors per expert, or row
                                     ranges of transformers 5's fused gate_up_proj [E * 2I, D] */
    be_tensor *exp_down;          /* [E] views, wdtype [D, I] each */
    /* gpt-oss: exp_gate[e] is expert e's gate_up [2I, D] with gate and up rows interleaved (gate 2i,
     * up 2i+1), MXFP4 as published or wdtype; exp_up is unused; exp_down[e] [D, I] likewise */
    be_tensor router_b;           /* f32 [1, E] (mlp.router.bias) or rows == 0 */
    be_tensor exp_b_gate_up;      /* f32 [E, 2I] (experts.gate_up_proj_bias) or rows == 0 */
    be_tensor exp_b_down;         /* f32 [E, D] (experts.down_proj_bias) */
    be_tensor sinks;              /* f32 [1, H] (self_attn.sinks) or rows == 0 */
} mdl_layer;

typedef struct {
    model_config cfg;
    be_dtype wdtype;              /* run dtype of matmul weights and the KV cache */
    be_backend *be;               /* not owned */
    st_set st;                    /* weight files (zeroed for random weights) */

    be_tensor embed;              /* wdtype [V, D] */
    be_tensor final_norm;         /* f32 [1, D] */
    be_tensor lm_head;            /* wdtype [V, D]; the embedding itself when tied */
    mdl_layer *layers;            /* [n_layers] */
    be_tensor inv_freq;           /* f32 [1, rot_dim/2], RoPE scaling applied (longrope: the short factors) */
    be_tensor inv_freq_long;      /* longrope's long factors, or rows == 0 */
    be_tensor inv_freq_local;     /* Gemma 3's sliding layers (rope_local_theta), or rows == 0 */
    float rope_mscale;            /* cos/sin multiplier (longrope's attention factor; else 1) */
    float embed_scale;            /* embedding multiplier: sqrt(hidden_size) rounded to wdtype (Gemma), else 1 */
    int rot_dim;                  /* rotated dims per head */

    be_buffer **bufs;             /* every buffer the model owns */
    int n_bufs, cap_bufs;
    be_buffer **file_bufs;        /* [st.n_files]: each checkpoint file wrapped whole (wrap_host), or NULL */
    signed char *file_state;      /* [st.n_files]: 0 not tried, 1 wrapped, -1 the backend declined (copies) */

    uint64_t n_params;            /* elements of every weight (MXFP4 ones count one each) */
    uint64_t weight_bytes;        /* all weights as held in memory: bytes_in_place + bytes_loaded */
    uint64_t bytes_in_place;      /* checkpoint bytes the backend uses where they lie in the mmap (wrap_host):
                                     not read at load, paged in from disk on first use */
    uint64_t bytes_loaded;        /* bytes written into backend buffers: converted or copied from the
                                     checkpoint, or generated (random weights) */
    uint64_t decode_bytes_per_token; /* weight bytes one decode step of one sequence reads (matmuls + norms +
                                        one embedding row; in MoE layers the router, the shared expert and
                                        num_experts_per_tok experts) */
    be_tensor *expert_views;      /* every layer's exp_gate/exp_up/exp_down arrays, one allocation */
} mdl_model;

/* Load DIR (config.json, generation_config.json, *.safetensors). dtype_flag is
 * --dtype (NULL = "auto"). Errors name the file and the tensor. */
int mdl_load(const char *dir, const char *dtype_flag, be_backend *be, mdl_model **out);
/* Random weights for a config (benchmarks): normal with std 0.02, never zero;
 * norm weights 1 + N(0, 0.02). */
int mdl_random(const model_config *cfg, be_dtype dt, uint64_t seed, be_backend *be, mdl_model **out);
void mdl_free(mdl_model *m);

#endif
