/* config: a Hugging Face model's config.json (+ generation_config.json) reduced to
 * the numbers the one model path needs.
 *
 * Architectures differ only by flags here (qkv bias, per-head q/k norm, tied
 * head, ...), never by separate forward functions. Both spellings of RoPE
 * settings are read: "rope_scaling" (older) and "rope_parameters" (newer, which
 * may also carry rope_theta). Unknown architectures, unsupported rope types and
 * inconsistent shapes are errors that name the file and the field. */
#ifndef VLLMC_MODEL_CONFIG_H
#define VLLMC_MODEL_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "backend/backend.h"

#define CFG_MAX_EOS 16
#define CFG_MAX_LAYERS 4096
#define CFG_MAX_ROPE_FACTORS 512 /* rot_dim / 2 <= 512 (the runner's limit) */
#define CFG_MAX_EXPERTS 1024     /* routed experts per layer */
#define CFG_MAX_TOPK 64          /* num_experts_per_tok */

typedef enum {
    CFG_ROPE_DEFAULT,   /* plain inv_freq = theta^(-2i/rot_dim) */
    CFG_ROPE_LINEAR,    /* positions divided by factor */
    CFG_ROPE_LLAMA3,    /* Llama 3.1 frequency-dependent scaling */
    CFG_ROPE_LONGROPE,  /* Phi-3 longrope ("su"): per-frequency short and long factors, cos/sin scaled */
    CFG_ROPE_YARN,      /* YaRN (gpt-oss): interpolation ramped in between beta_fast and beta_slow, cos/sin scaled */
} cfg_rope_type;

typedef enum {
    CFG_ACT_SILU,       /* SwiGLU: silu(gate) * up */
    CFG_ACT_GELU_TANH,  /* GeGLU: gelu_pytorch_tanh(gate) * up (Gemma 2/3) */
} cfg_act;

/* Expert tensor names: Mixtral's block_sparse_moe.{gate, experts.E.w1/w3/w2} or Qwen-MoE's
 * mlp.{gate, experts.E.gate_proj/up_proj/down_proj} (either may instead carry transformers 5's fused
 * experts.gate_up_proj [E, 2I, D] and experts.down_proj [E, D, I]). */
typedef enum { CFG_MOE_NAMES_QWEN = 0, CFG_MOE_NAMES_MIXTRAL = 1, CFG_MOE_NAMES_GPTOSS = 2 } cfg_moe_names;

typedef struct {
    char arch[64];              /* architectures[0], e.g. "LlamaForCausalLM" */
    char model_type[32];

    int hidden_size;            /* D */
    int intermediate_size;      /* F */
    int n_layers;
    int n_heads;
    int n_kv_heads;             /* defaults to n_heads */
    int head_dim;               /* explicit, else hidden_size / n_heads */
    int vocab_size;
    int max_position_embeddings;
    float rms_norm_eps;

    /* RoPE */
    double rope_theta;          /* default 10000 */
    cfg_rope_type rope_type;
    double rope_factor;         /* linear / llama3 */
    double rope_low_freq_factor, rope_high_freq_factor; /* llama3 */
    int rope_original_max_pos;  /* llama3, longrope: original_max_position_embeddings */
    double partial_rotary_factor; /* 1.0 unless given */
    /* longrope: one factor per rotary frequency (rot_dim / 2 of each); the long ones apply to a
     * sequence longer than rope_original_max_pos. rope_attn_factor multiplies cos and sin. */
    int rope_n_factors;
    float rope_short_factor[CFG_MAX_ROPE_FACTORS], rope_long_factor[CFG_MAX_ROPE_FACTORS];
    double rope_attn_factor;    /* 1 unless longrope or yarn */
    double rope_beta_fast, rope_beta_slow; /* yarn: the correction range, in rotations */
    int rope_truncate;          /* yarn: floor/ceil the correction range (transformers' default: 1) */
    /* Gemma 3: sliding layers use plain RoPE with this base (rope_local_base_freq, or
     * rope_parameters.sliding_attention.rope_theta); 0: every layer uses the rope above */
    double rope_local_theta;

    /* architecture flags */
    int qkv_bias;               /* q/k/v projections have biases (Qwen2, attention_bias) */
    int o_bias;                 /* o_proj has a bias (attention_bias on Llama) */
    int mlp_bias;
    int qk_norm;                /* per-head RMSNorm of q and k before RoPE (Qwen3) */
    int tie_word_embeddings;
    int sliding_window;         /* 0 = none (only when the architecture uses it) */
    uint64_t sliding_layers[CFG_MAX_LAYERS / 64]; /* bit l: layer l is a sliding_attention layer */

    /* Gemma 2/3 and Phi-3 */
    float norm_offset;          /* 1: every RMSNorm multiplies by (1 + w) (Gemma); else 0 */
    int post_norms;             /* post-attention and post-feedforward norms (Gemma 2/3) */
    cfg_act act;                /* the MLP's gate activation */
    int embed_scale;            /* embeddings multiplied by sqrt(hidden_size), rounded to the run dtype (Gemma) */
    double query_pre_attn_scalar; /* attention scale = this^-0.5 (Gemma); 0: head_dim^-0.5 */
    float attn_softcap;         /* attn_logit_softcapping; 0 = none */
    float final_softcap;        /* final_logit_softcapping; 0 = none */
    int fused_qkv;              /* one qkv_proj [q; k; v] and one gate_up_proj [gate; up] (Phi-3) */
    int multimodal;             /* the language model of a multimodal checkpoint (Gemma3ForConditionalGeneration):
                                   weights under language_model. prefixes; image inputs are not supported */

    /* Mixture of experts (Mixtral, Qwen2-MoE, Qwen3-MoE); n_experts == 0: a dense model */
    cfg_moe_names moe_names;    /* how the checkpoint names the experts */
    int n_experts;              /* num_local_experts (Mixtral) / num_experts (Qwen) */
    int n_experts_per_tok;      /* top-k */
    int moe_intermediate_size;  /* I of each routed expert (Mixtral: intermediate_size) */
    int shared_expert_intermediate_size; /* Qwen2-MoE's shared expert; 0 = none */
    int norm_topk_prob;         /* renormalize the top-k weights to sum 1 (always for Mixtral) */
    uint64_t moe_layers[CFG_MAX_LAYERS / 64]; /* bit l: layer l's MLP is a sparse MoE block */
    /* gpt-oss (GptOssForCausalLM): mlp.router with a bias, top-k of the logits then softmax of those
     * (topk_then_softmax), experts with biases and the clamped SwiGLU on interleaved gate/up columns,
     * attention sinks; experts in MXFP4 when quantization_config says so */
    int topk_then_softmax;
    int attn_sinks;
    float swiglu_alpha, swiglu_limit; /* 1.702 (fixed in GptOssExperts), swiglu_limit (7.0) */
    int experts_mxfp4;          /* quantization_config.quant_method == "mxfp4" */

    be_dtype torch_dtype;       /* "torch_dtype" or "dtype": BE_F32, BE_F16 or BE_BF16; BE_F32 if absent */

    /* token ids (-1 if absent). EOS from generation_config.json wins over config.json. */
    int bos_token_id;
    int eos_token_ids[CFG_MAX_EOS];
    int n_eos;

    /* generation_config.json sampling defaults (has_* = 0 when absent) */
    int has_temperature, has_top_p, has_top_k;
    float gen_temperature, gen_top_p;
    int gen_top_k;
} model_config;

/* The sliding window of layer l: c->sliding_window, or 0 where the layer attends globally. */
static inline int cfg_layer_sliding(const model_config *c, int l) {
    return l >= 0 && l < CFG_MAX_LAYERS && ((c->sliding_layers[l / 64] >> (l % 64)) & 1u);
}
static inline int cfg_layer_window(const model_config *c, int l) {
    return c->sliding_window > 0 && cfg_layer_sliding(c, l) ? c->sliding_window : 0;
}
/* 1 when layer l's MLP is a sparse mixture-of-experts block. */
static inline int cfg_layer_moe(const model_config *c, int l) {
    return c->n_experts > 0 && l >= 0 && l < CFG_MAX_LAYERS && ((c->moe_layers[l / 64] >> (l % 64)) & 1u);
}
/* 1 when layer l uses the local RoPE base (Gemma 3's sliding_attention layers). */
static inline int cfg_layer_local_rope(const model_config *c, int l) {
    return c->rope_local_theta > 0 && cfg_layer_sliding(c, l);
}

/* Parse config.json text. `what` names the file in errors. */
int cfg_parse(const char *json, size_t len, const char *what, model_config *out);
/* Merge generation_config.json text into an already parsed config. */
int cfg_parse_generation(const char *json, size_t len, const char *what, model_config *cfg);
/* Read DIR/config.json and, if present, DIR/generation_config.json. */
int cfg_load_dir(const char *dir, model_config *out);

/* --dtype "auto|half|float16|bfloat16|float|float32" (NULL: auto) -> -1 for auto, else the be_dtype it
 * names. Needs no model, so callers validate the flag before downloading or loading anything. */
int cfg_parse_dtype_flag(const char *flag, int *out);
/* The run dtype for a parsed --dtype, with vLLM's meaning of auto (-1): bf16 checkpoints stay bf16,
 * f32 and f16 ones run in f16. */
be_dtype cfg_run_dtype(int flag, be_dtype checkpoint);
/* Both at once: the run dtype for a --dtype string and the checkpoint's dtype. */
int cfg_resolve_dtype(const char *flag, be_dtype checkpoint, be_dtype *out);

#endif
