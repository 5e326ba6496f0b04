/* lora/adapter: PEFT LoRA adapters read from a folder (adapter_config.json + adapter_model.safetensors)
 * into host f32 matrices, checked against the base model's shape. The forward adds, for each targeted
 * linear y = W x: y += scale * B (A x).
 *
 * What PEFT writes, and how it is read:
 *  - Tensors "base_model.model.model.layers.{i}.self_attn.{q,k,v,o}_proj.lora_{A,B}.weight" and
 *    "...layers.{i}.mlp.{gate,up,down}_proj.lora_{A,B}.weight" (also without "base_model.model.");
 *    lora_A is [r, in], lora_B is [out, r]; F32, F16 or BF16, converted to f32. Any other tensor
 *    (modules_to_save copies, lora_embedding_A/B, lm_head or embed_tokens LoRA, DoRA magnitudes,
 *    biases) is refused by name, as are .bin (pickle) adapters, DoRA, bias != "none", lora_bias.
 *  - The module name PEFT matches is "model.layers.{i}.self_attn.q_proj". target_modules as a string is
 *    a regex that must re.fullmatch it; as a list, an entry names a module by its last dotted component
 *    (vLLM's reading), so "layers.3.self_attn.k_proj" counts as k_proj. "all-linear" means all seven.
 *    rank_pattern / alpha_pattern key K applies when re.match(r"(.*\.)?(K)$", name) holds; the first
 *    key in file order wins (PEFT's get_pattern_key). Regexes run on PCRE2 with match limits.
 *  - Rank comes from the tensor shapes and must equal what r / rank_pattern say for the module; scale is
 *    alpha / rank (alpha / sqrt(rank) with use_rslora), alpha from alpha_pattern or lora_alpha.
 *  - layers_to_transform, layers_pattern and exclude_modules are not read: they only decide which
 *    modules PEFT gave LoRA weights, and the tensors present say that. layer_replication (which changes
 *    the model's layers) is refused.
 * Ownership: a lora_adapter owns its config and every a/b; lora_adapter_free() releases all of it.
 * Every error names the file and the field or tensor. */
#ifndef VLLMC_LORA_ADAPTER_H
#define VLLMC_LORA_ADAPTER_H

#include <stddef.h>
#include <stdint.h>

#define LORA_MAX_PATTERNS 4096  /* keys in rank_pattern, and in alpha_pattern */

typedef enum { LORA_Q, LORA_K, LORA_V, LORA_O, LORA_GATE, LORA_UP, LORA_DOWN, LORA_N_MODULES } lora_module;

/* The PEFT module name ("q_proj" ... "down_proj"); "?" outside the enum. */
const char *lora_module_name(lora_module m);

/* adapter_config.json, parsed. All strings and arrays are malloc'd and owned. */
typedef struct {
    int r;                  /* default rank (PEFT's default 8 when absent) */
    double lora_alpha;      /* default alpha (PEFT's default 8 when absent) */
    int use_rslora;         /* scale alpha / sqrt(rank) instead of alpha / rank */
    int fan_in_fan_out;     /* accepted; lora_A/B are nn.Linear either way, so the forward is the same */
    unsigned target_mask;   /* bit m: module m is targeted (list form), or the regex matches it in some
                               layer (string form: layers 0..LORA_MASK_LAYERS-1 here; load redoes it
                               for the model's layers) */
    char *target_regex;     /* target_modules when it is a string (NULL for the list form, all-linear) */
    char *base_model;       /* base_model_name_or_path, or NULL */
    int n_rank_pat;         /* rank_pattern: keys (regexes) and ranks, in file order */
    char **rank_key;
    int *rank_val;
    int n_alpha_pat;        /* alpha_pattern: keys and alphas, in file order */
    char **alpha_key;
    double *alpha_val;
} lora_config;

#define LORA_MASK_LAYERS 128

/* Parse adapter_config.json text (`len` bytes, no NUL needed). `what` names the file in errors.
 * On failure *out is zeroed (lora_config_free() on it is harmless). */
int lora_config_parse(const char *json, size_t len, const char *what, lora_config *out);
void lora_config_free(lora_config *c);

/* The base model's sizes, from its config: q_dim = n_heads * head_dim, kv_dim = n_kv_heads * head_dim. */
typedef struct {
    int n_layers, hidden, q_dim, kv_dim, intermediate;
} lora_shape;

typedef struct {
    int rank;     /* 0: no LoRA on this (layer, module) */
    float scale;  /* alpha / rank, or alpha / sqrt(rank) with rsLoRA */
    float *a;     /* [rank, in]  row-major f32 = PEFT lora_A.weight */
    float *b;     /* [out, rank] row-major f32 = PEFT lora_B.weight */
} lora_weight;

typedef struct {
    lora_config cfg;
    int n_layers;       /* the base model's */
    int max_rank;       /* the largest rank present (<= the max_rank asked for) */
    lora_weight *w;     /* [n_layers * LORA_N_MODULES], index layer * LORA_N_MODULES + module */
    uint64_t bytes;     /* host bytes of all a and b */
} lora_adapter;

/* Load DIR (adapter_config.json + adapter_model.safetensors) for a base model of this shape.
 * max_rank: --max-lora-rank; a larger rank anywhere is refused. On failure *out is NULL.
 * Codes: VC_EIO (files missing or unreadable), VC_EFORMAT (malformed), VC_EUNSUP (a PEFT feature
 * vllmc does not run), VC_EINVAL (bad arguments, rank above max_rank, shape not the model's). */
int lora_adapter_load(const char *dir, const lora_shape *shape, int max_rank, lora_adapter **out);
void lora_adapter_free(lora_adapter *a);

#endif
