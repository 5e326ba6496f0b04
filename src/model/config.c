/* config: config.json / generation_config.json -> model_config.
 *
 * Reading rules, where Hugging Face leaves room:
 *  - JSON null counts as absent everywhere (transformers treats None as "use
 *    the default").
 *  - Keys are looked up case-sensitively (cJSON_GetObjectItem is not).
 *  - RoPE settings come from "rope_parameters" when it is an object, else from
 *    "rope_scaling"; rope_theta and partial_rotary_factor inside
 *    rope_parameters win over the top-level keys (transformers v5 semantics).
 *  - "dtype" (transformers v5) wins over "torch_dtype".
 * The result is written to *out only when everything parsed, so a failed
 * cfg_parse_generation leaves the config as it was. */
#include "config.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../base/err.h"
#include "../base/file.h"
#include "../base/json.h"

#define CFG_MAX_FILE ((size_t)16 << 20)
#define CFG_DIM_MAX ((1 << 24) - 1)
#define CFG_POS_MAX ((1 << 30) - 1)

enum {
    CFG_LLAMA, CFG_MISTRAL, CFG_QWEN2, CFG_QWEN3, CFG_GEMMA2, CFG_GEMMA3, CFG_GEMMA3_MM, CFG_PHI3,
    CFG_MIXTRAL, CFG_QWEN2MOE, CFG_QWEN3MOE, CFG_GPTOSS
};

static const struct {
    const char *arch, *model_type;
    int kind;
} cfg_archs[] = {
    {"LlamaForCausalLM", "llama", CFG_LLAMA},
    {"MistralForCausalLM", "mistral", CFG_MISTRAL},
    {"Qwen2ForCausalLM", "qwen2", CFG_QWEN2},
    {"Qwen3ForCausalLM", "qwen3", CFG_QWEN3},
    {"Gemma2ForCausalLM", "gemma2", CFG_GEMMA2},
    {"Gemma3ForCausalLM", "gemma3_text", CFG_GEMMA3},
    {"Gemma3ForConditionalGeneration", "gemma3", CFG_GEMMA3_MM},
    {"Phi3ForCausalLM", "phi3", CFG_PHI3},
    {"MixtralForCausalLM", "mixtral", CFG_MIXTRAL},
    {"Qwen2MoeForCausalLM", "qwen2_moe", CFG_QWEN2MOE},
    {"Qwen3MoeForCausalLM", "qwen3_moe", CFG_QWEN3MOE},
    {"GptOssForCausalLM", "gpt_oss", CFG_GPTOSS},
};
#define CFG_N_ARCHS (int)(sizeof cfg_archs / sizeof cfg_archs[0])
#define CFG_ARCH_LIST                                                                                     \
    "LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM, Gemma2ForCausalLM, "      \
    "Gemma3ForCausalLM, Gemma3ForConditionalGeneration (text only), Phi3ForCausalLM, MixtralForCausalLM, "  \
    "Qwen2MoeForCausalLM, Qwen3MoeForCausalLM, GptOssForCausalLM"

static void cfg_copy(char *dst, size_t cap, const char *src) {
    size_t n = strlen(src);
    if (n >= cap) n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = 0;
}

static const char *cfg_kind(const cJSON *j) {
    if (cJSON_IsString(j)) return "a string";
    if (cJSON_IsNumber(j)) return "a number";
    if (cJSON_IsBool(j)) return "a boolean";
    if (cJSON_IsNull(j)) return "null";
    if (cJSON_IsArray(j)) return "a list";
    if (cJSON_IsObject(j)) return "an object";
    return "invalid";
}

/* "key" or "parent.key", for messages. */
static const char *cfg_field(char *buf, size_t cap, const char *parent, const char *key) {
    if (parent) snprintf(buf, cap, "%s.%s", parent, key);
    else snprintf(buf, cap, "%s", key);
    return buf;
}

/* The member `key` of object `o`, or NULL when absent or null. */
static const cJSON *cfg_get(const cJSON *o, const char *key) {
    const cJSON *j = cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;
    return cJSON_IsNull(j) ? NULL : j;
}

/* Parse `len` bytes of JSON text (not necessarily NUL-terminated). */
static int cfg_json(const char *json, size_t len, const char *what, cJSON **out) {
    *out = NULL;
    js_error e;
    cJSON *root = js_parse(json, json ? len : 0, &e);
    if (!root && e.oom) return vc_errf(VC_ENOMEM, "%s: out of memory", what);
    if (!root) return vc_errf(VC_EFORMAT, "%s: invalid JSON at line %zu column %zu", what, e.line, e.column);
    if (!cJSON_IsObject(root)) {
        int rc = vc_errf(VC_EFORMAT, "%s: invalid JSON: top level is %s, not an object", what, cfg_kind(root));
        cJSON_Delete(root);
        return rc;
    }
    *out = root;
    return VC_OK;
}

/* An integer member in [lo, hi]; *out = def when absent (required: error). */
static int cfg_int(const cJSON *o, const char *parent, const char *key, const char *what, int required,
                   int def, long long lo, long long hi, int *out) {
    char name[96];
    const cJSON *j = cfg_get(o, key);
    if (!j) {
        if (required)
            return vc_errf(VC_EFORMAT, "%s: missing %s", what, cfg_field(name, sizeof name, parent, key));
        *out = def;
        return VC_OK;
    }
    cfg_field(name, sizeof name, parent, key);
    if (!cJSON_IsNumber(j))
        return vc_errf(VC_EFORMAT, "%s: %s must be an integer (got %s)", what, name, cfg_kind(j));
    double d = j->valuedouble;
    if (!(d >= (double)lo && d <= (double)hi)) /* also catches inf and huge values */
        return vc_errf(VC_EFORMAT, "%s: %s (%.15g) must be between %lld and %lld", what, name, d, lo, hi);
    if ((double)(long long)d != d)
        return vc_errf(VC_EFORMAT, "%s: %s (%.15g) must be an integer", what, name, d);
    *out = (int)(long long)d;
    return VC_OK;
}

/* A number member that is finite and > lo (or >= lo when !strict) and <= hi. */
static int cfg_num(const cJSON *o, const char *parent, const char *key, const char *what, int required,
                   double def, double lo, int strict, double hi, double *out) {
    char name[96];
    const cJSON *j = cfg_get(o, key);
    if (!j) {
        if (required)
            return vc_errf(VC_EFORMAT, "%s: missing %s", what, cfg_field(name, sizeof name, parent, key));
        *out = def;
        return VC_OK;
    }
    cfg_field(name, sizeof name, parent, key);
    if (!cJSON_IsNumber(j))
        return vc_errf(VC_EFORMAT, "%s: %s must be a number (got %s)", what, name, cfg_kind(j));
    double d = j->valuedouble;
    if (!(strict ? d > lo : d >= lo) || !(d <= hi))
        return vc_errf(VC_EFORMAT, "%s: %s (%.15g) must be %s %g and at most %g", what, name, d,
                       strict ? "greater than" : "at least", lo, hi);
    *out = d;
    return VC_OK;
}

static int cfg_bool(const cJSON *o, const char *key, const char *what, int def, int *out) {
    const cJSON *j = cfg_get(o, key);
    if (!j) {
        *out = def;
        return VC_OK;
    }
    if (!cJSON_IsBool(j))
        return vc_errf(VC_EFORMAT, "%s: %s must be true or false (got %s)", what, key, cfg_kind(j));
    *out = cJSON_IsTrue(j) ? 1 : 0;
    return VC_OK;
}

/* One token id: a non-negative integer. */
static int cfg_token(const cJSON *j, const char *key, const char *what, int *out) {
    double d = cJSON_IsNumber(j) ? j->valuedouble : -1;
    if (!cJSON_IsNumber(j) || !(d >= 0 && d <= 2147483647.0) || (double)(int)d != d)
        return vc_errf(VC_EFORMAT, "%s: %s must be a non-negative integer or a list of them", what, key);
    *out = (int)d;
    return VC_OK;
}

/* bos_token_id: int or list of ints (the first is used); absent: unchanged. */
static int cfg_read_bos(const cJSON *root, const char *what, int *bos) {
    const cJSON *j = cfg_get(root, "bos_token_id");
    if (!j) return VC_OK;
    if (cJSON_IsArray(j)) {
        if (!j->child) {
            *bos = -1;
            return VC_OK;
        }
        j = j->child;
    }
    return cfg_token(j, "bos_token_id", what, bos);
}

/* eos_token_id: int or list of ints; absent: unchanged. */
static int cfg_read_eos(const cJSON *root, const char *what, int *ids, int *n) {
    const cJSON *j = cfg_get(root, "eos_token_id");
    if (!j) return VC_OK;
    int tmp[CFG_MAX_EOS], k = 0, rc;
    if (cJSON_IsArray(j)) {
        int cnt = cJSON_GetArraySize(j);
        if (cnt > CFG_MAX_EOS)
            return vc_errf(VC_EFORMAT, "%s: eos_token_id has %d entries (at most %d)", what, cnt, CFG_MAX_EOS);
        for (const cJSON *e = j->child; e && k < CFG_MAX_EOS; e = e->next)
            if ((rc = cfg_token(e, "eos_token_id", what, &tmp[k++])) != 0) return rc;
    } else {
        if ((rc = cfg_token(j, "eos_token_id", what, &tmp[0])) != 0) return rc;
        k = 1;
    }
    memcpy(ids, tmp, (size_t)k * sizeof *ids);
    *n = k;
    return VC_OK;
}

static int cfg_read_arch(const cJSON *root, const char *what, model_config *c, int *kind) {
    const cJSON *ja = cfg_get(root, "architectures"), *jm = cfg_get(root, "model_type");
    const char *arch = NULL;
    if (jm && !cJSON_IsString(jm))
        return vc_errf(VC_EFORMAT, "%s: model_type must be a string (got %s)", what, cfg_kind(jm));
    if (ja) {
        if (!cJSON_IsArray(ja))
            return vc_errf(VC_EFORMAT, "%s: architectures must be a list of strings (got %s)", what,
                           cfg_kind(ja));
        if (ja->child) {
            if (!cJSON_IsString(ja->child))
                return vc_errf(VC_EFORMAT, "%s: architectures[0] must be a string (got %s)", what,
                               cfg_kind(ja->child));
            arch = ja->child->valuestring;
        }
    }
    int i = 0;
    if (arch) {
        while (i < CFG_N_ARCHS && strcmp(cfg_archs[i].arch, arch) != 0) i++;
        if (i == CFG_N_ARCHS)
            return vc_errf(VC_EUNSUP, "%s: unsupported architecture '%.100s' (supported: " CFG_ARCH_LIST ")",
                           what, arch);
    } else {
        if (!jm)
            return vc_errf(VC_EFORMAT, "%s: no architectures and no model_type: cannot tell the model", what);
        while (i < CFG_N_ARCHS && strcmp(cfg_archs[i].model_type, jm->valuestring) != 0) i++;
        if (i == CFG_N_ARCHS)
            return vc_errf(VC_EUNSUP,
                           "%s: no architectures, and model_type '%.100s' is not supported (supported: llama, "
                           "mistral, qwen2, qwen3, gemma2, gemma3_text, gemma3, phi3, mixtral, qwen2_moe, qwen3_moe, "
                           "gpt_oss)",
                           what, jm->valuestring);
    }
    cfg_copy(c->arch, sizeof c->arch, cfg_archs[i].arch);
    cfg_copy(c->model_type, sizeof c->model_type, jm ? jm->valuestring : cfg_archs[i].model_type);
    *kind = cfg_archs[i].kind;
    return VC_OK;
}

static int cfg_read_dims(const cJSON *r, const char *what, model_config *c) {
    int rc;
    double eps;
    if ((rc = cfg_int(r, NULL, "hidden_size", what, 1, 0, 1, CFG_DIM_MAX, &c->hidden_size)) ||
        (rc = cfg_int(r, NULL, "intermediate_size", what, 1, 0, 1, CFG_DIM_MAX, &c->intermediate_size)) ||
        (rc = cfg_int(r, NULL, "num_hidden_layers", what, 1, 0, 1, 4095, &c->n_layers)) ||
        (rc = cfg_int(r, NULL, "num_attention_heads", what, 1, 0, 1, CFG_DIM_MAX, &c->n_heads)) ||
        (rc = cfg_int(r, NULL, "num_key_value_heads", what, 0, c->n_heads, 1, CFG_DIM_MAX, &c->n_kv_heads)) ||
        (rc = cfg_int(r, NULL, "head_dim", what, 0, 0, 1, CFG_DIM_MAX, &c->head_dim)) ||
        (rc = cfg_int(r, NULL, "vocab_size", what, 1, 0, 1, CFG_DIM_MAX, &c->vocab_size)) ||
        (rc = cfg_int(r, NULL, "max_position_embeddings", what, 0, 2048, 1, CFG_POS_MAX,
                      &c->max_position_embeddings)) ||
        (rc = cfg_num(r, NULL, "rms_norm_eps", what, 0, 1e-6, 0, 1, 1, &eps)))
        return rc;
    c->rms_norm_eps = (float)eps;
    if (c->n_heads % c->n_kv_heads)
        return vc_errf(VC_EFORMAT, "%s: num_key_value_heads (%d) must divide num_attention_heads (%d)", what,
                       c->n_kv_heads, c->n_heads);
    if (c->head_dim == 0) {
        if (c->hidden_size % c->n_heads)
            return vc_errf(VC_EFORMAT,
                           "%s: hidden_size (%d) must be a multiple of num_attention_heads (%d) when head_dim "
                           "is not given",
                           what, c->hidden_size, c->n_heads);
        c->head_dim = c->hidden_size / c->n_heads;
    }
    if (c->head_dim % 2)
        return vc_errf(VC_EFORMAT, "%s: head_dim (%d) must be even", what, c->head_dim);
    long long qdim = (long long)c->n_heads * c->head_dim;
    if (qdim > CFG_DIM_MAX)
        return vc_errf(VC_EFORMAT, "%s: num_attention_heads * head_dim (%lld) is too large", what, qdim);
    return VC_OK;
}

/* A list of exactly n numbers, each finite and > 0 (longrope's factors), into out. */
static int cfg_factors(const cJSON *o, const char *parent, const char *key, const char *what, int n, float *out) {
    const cJSON *j = cfg_get(o, key);
    if (!j) return vc_errf(VC_EFORMAT, "%s: missing %s.%s", what, parent, key);
    if (!cJSON_IsArray(j) || cJSON_GetArraySize(j) != n)
        return vc_errf(VC_EFORMAT, "%s: %s.%s must be a list of %d numbers (rotary dimension / 2)", what, parent, key, n);
    int i = 0;
    for (const cJSON *e = j->child; e; e = e->next, i++) {
        if (!cJSON_IsNumber(e) || !(e->valuedouble > 0 && e->valuedouble < 1e30))
            return vc_errf(VC_EFORMAT, "%s: %s.%s[%d] must be a positive number", what, parent, key, i);
        out[i] = (float)e->valuedouble;
    }
    return VC_OK;
}

/* longrope ("su" in older Phi-3 configs): transformers' _compute_longrope_parameters. The original
 * context comes from the rope dict, else the top level (Phi-3's published configs), else
 * max_position_embeddings; factor, when absent, is max_position_embeddings / that. */
static int cfg_read_longrope(const cJSON *r, const cJSON *rd, const char *lbl, const char *what, model_config *c) {
    int rc, rot = (int)(c->head_dim * c->partial_rotary_factor);
    int n = rot / 2, orig = c->max_position_embeddings;
    if (n < 1 || n > CFG_MAX_ROPE_FACTORS)
        return vc_errf(VC_EUNSUP, "%s: %s: rotary dimension %d is out of range", what, lbl, rot);
    if ((rc = cfg_int(r, NULL, "original_max_position_embeddings", what, 0, orig, 1, CFG_POS_MAX, &orig)) ||
        (rc = cfg_int(rd, lbl, "original_max_position_embeddings", what, 0, orig, 1, CFG_POS_MAX, &orig)))
        return rc;
    double factor, af;
    if ((rc = cfg_num(rd, lbl, "factor", what, 0, (double)c->max_position_embeddings / orig, 0, 1, 1e9, &factor)))
        return rc;
    double def = factor <= 1.0 ? 1.0 : sqrt(1.0 + log(factor) / log((double)orig));
    if ((rc = cfg_num(rd, lbl, "attention_factor", what, 0, def, 0, 1, 1e9, &af)) ||
        (rc = cfg_factors(rd, lbl, "short_factor", what, n, c->rope_short_factor)) ||
        (rc = cfg_factors(rd, lbl, "long_factor", what, n, c->rope_long_factor)))
        return rc;
    c->rope_type = CFG_ROPE_LONGROPE;
    c->rope_original_max_pos = orig;
    c->rope_n_factors = n;
    c->rope_attn_factor = af;
    return VC_OK;
}

static int cfg_read_llama3(const cJSON *rd, const char *lbl, const char *what, model_config *c) {
    int rc;
    c->rope_type = CFG_ROPE_LLAMA3;
    if ((rc = cfg_num(rd, lbl, "factor", what, 1, 0, 0, 1, 1e9, &c->rope_factor)) ||
        (rc = cfg_num(rd, lbl, "low_freq_factor", what, 1, 0, 0, 1, 1e9, &c->rope_low_freq_factor)) ||
        (rc = cfg_num(rd, lbl, "high_freq_factor", what, 1, 0, 0, 1, 1e9, &c->rope_high_freq_factor)) ||
        (rc = cfg_int(rd, lbl, "original_max_position_embeddings", what, 1, 0, 1, CFG_POS_MAX,
                      &c->rope_original_max_pos)))
        return rc;
    if (!(c->rope_high_freq_factor > c->rope_low_freq_factor))
        return vc_errf(VC_EFORMAT, "%s: %s.high_freq_factor (%g) must be greater than low_freq_factor (%g)", what,
                       lbl, c->rope_high_freq_factor, c->rope_low_freq_factor);
    return VC_OK;
}

/* yarn: transformers' _compute_yarn_parameters. factor, when absent, is max_position_embeddings /
 * original_max_position_embeddings (which defaults to max_position_embeddings); attention_factor, when
 * absent, is get_mscale(factor, mscale) / get_mscale(factor, mscale_all_dim) where both are set, else
 * 0.1 ln(factor) + 1 (1 for factor <= 1). */
static double yarn_mscale(double scale, double m) { return scale <= 1 ? 1.0 : 0.1 * m * log(scale) + 1.0; }

static int cfg_read_yarn(const cJSON *rd, const char *lbl, const char *what, model_config *c) {
    int rc, orig = c->max_position_embeddings;
    double ms = 0, msa = 0, af;
    if ((rc = cfg_int(rd, lbl, "original_max_position_embeddings", what, 0, orig, 1, CFG_POS_MAX, &orig)) ||
        (rc = cfg_num(rd, lbl, "factor", what, 0, (double)c->max_position_embeddings / orig, 0, 1, 1e9,
                      &c->rope_factor)) ||
        (rc = cfg_num(rd, lbl, "mscale", what, 0, 0, 0, 0, 1e9, &ms)) ||
        (rc = cfg_num(rd, lbl, "mscale_all_dim", what, 0, 0, 0, 0, 1e9, &msa)) ||
        (rc = cfg_num(rd, lbl, "beta_fast", what, 0, 32, 0, 1, 1e9, &c->rope_beta_fast)) ||
        (rc = cfg_num(rd, lbl, "beta_slow", what, 0, 1, 0, 1, 1e9, &c->rope_beta_slow)) ||
        (rc = cfg_bool(rd, "truncate", what, 1, &c->rope_truncate)))
        return rc;
    double def = ms > 0 && msa > 0 ? yarn_mscale(c->rope_factor, ms) / yarn_mscale(c->rope_factor, msa)
                                   : yarn_mscale(c->rope_factor, 1.0);
    if ((rc = cfg_num(rd, lbl, "attention_factor", what, 0, def, 0, 1, 1e9, &af))) return rc;
    c->rope_type = CFG_ROPE_YARN;
    c->rope_original_max_pos = orig;
    c->rope_attn_factor = af;
    return VC_OK;
}

/* One rope dict (rope_parameters, rope_scaling, or rope_parameters.full_attention). */
static int cfg_rope_dict(const cJSON *r, const cJSON *rd, const char *lbl, const char *what, model_config *c) {
    int rc;
    if ((rc = cfg_num(rd, lbl, "rope_theta", what, 0, c->rope_theta, 0, 1, 1e300, &c->rope_theta)) ||
        (rc = cfg_num(rd, lbl, "partial_rotary_factor", what, 0, c->partial_rotary_factor, 0, 1, 1.0,
                      &c->partial_rotary_factor)))
        return rc;
    const char *tkey = cfg_get(rd, "rope_type") ? "rope_type" : "type";
    const cJSON *jt = cfg_get(rd, tkey);
    if (jt && !cJSON_IsString(jt))
        return vc_errf(VC_EFORMAT, "%s: %s.%s must be a string (got %s)", what, lbl, tkey, cfg_kind(jt));
    const char *type = jt ? jt->valuestring : "default";
    if (!jt && cfg_get(rd, "factor"))
        return vc_errf(VC_EFORMAT, "%s: %s has a factor but no rope_type", what, lbl);
    if (strcmp(type, "default") == 0) {
        c->rope_type = CFG_ROPE_DEFAULT;
    } else if (strcmp(type, "linear") == 0) {
        c->rope_type = CFG_ROPE_LINEAR;
        return cfg_num(rd, lbl, "factor", what, 1, 0, 0, 1, 1e9, &c->rope_factor);
    } else if (strcmp(type, "llama3") == 0) {
        return cfg_read_llama3(rd, lbl, what, c);
    } else if (strcmp(type, "longrope") == 0 || strcmp(type, "su") == 0) {
        return cfg_read_longrope(r, rd, lbl, what, c);
    } else if (strcmp(type, "yarn") == 0) {
        return cfg_read_yarn(rd, lbl, what, c);
    } else {
        return vc_errf(VC_EUNSUP,
                       "%s: %s type '%.60s' is not supported (supported: default, linear, llama3, longrope, yarn)", what,
                       lbl, type);
    }
    return VC_OK;
}

/* Gemma 3: the sliding layers' base (rope_local_base_freq), and transformers 5's rope_parameters per
 * layer type ({"full_attention": {...}, "sliding_attention": {...}}): *rd becomes the global one. */
static int cfg_read_local_rope(const cJSON *r, const char *what, int gemma3, const cJSON **rd, const char **lbl,
                               model_config *c) {
    int rc;
    c->rope_local_theta = 0;
    if (gemma3 && (rc = cfg_num(r, NULL, "rope_local_base_freq", what, 0, 10000.0, 0, 1, 1e300, &c->rope_local_theta)))
        return rc;
    const cJSON *rp = cfg_get(r, "rope_parameters");
    const cJSON *fa = cfg_get(rp, "full_attention"), *sa = cfg_get(rp, "sliding_attention");
    if (!fa && !sa) return VC_OK;
    if ((fa && !cJSON_IsObject(fa)) || (sa && !cJSON_IsObject(sa)))
        return vc_errf(VC_EFORMAT, "%s: rope_parameters.%s must be an object", what,
                       fa && !cJSON_IsObject(fa) ? "full_attention" : "sliding_attention");
    *rd = fa;
    *lbl = "rope_parameters.full_attention";
    if (sa) {
        const cJSON *jt = cfg_get(sa, "rope_type");
        if (jt && (!cJSON_IsString(jt) || strcmp(jt->valuestring, "default") != 0))
            return vc_errf(VC_EUNSUP, "%s: rope_parameters.sliding_attention.rope_type must be \"default\"", what);
        double def = c->rope_local_theta > 0 ? c->rope_local_theta : c->rope_theta;
        if ((rc = cfg_num(sa, "rope_parameters.sliding_attention", "rope_theta", what, 0, def, 0, 1, 1e300,
                          &c->rope_local_theta)))
            return rc;
    }
    return VC_OK;
}

static int cfg_read_rope(const cJSON *r, const char *what, int kind, model_config *c) {
    int rc;
    double theta0 = kind == CFG_GEMMA3 || kind == CFG_MIXTRAL ? 1e6 : 10000.0; /* the config classes' defaults */
    if ((rc = cfg_num(r, NULL, "rope_theta", what, 0, theta0, 0, 1, 1e300, &c->rope_theta)) ||
        (rc = cfg_num(r, NULL, "partial_rotary_factor", what, 0, 1.0, 0, 1, 1.0, &c->partial_rotary_factor)))
        return rc;
    c->rope_type = CFG_ROPE_DEFAULT;
    c->rope_factor = 1.0;
    c->rope_attn_factor = 1.0;
    const cJSON *rp = cfg_get(r, "rope_parameters"), *rs = cfg_get(r, "rope_scaling");
    if (rp && !cJSON_IsObject(rp))
        return vc_errf(VC_EFORMAT, "%s: rope_parameters must be an object or null (got %s)", what, cfg_kind(rp));
    if (rs && !cJSON_IsObject(rs))
        return vc_errf(VC_EFORMAT, "%s: rope_scaling must be an object or null (got %s)", what, cfg_kind(rs));
    const cJSON *rd = rp ? rp : rs;
    const char *lbl = rp ? "rope_parameters" : "rope_scaling";
    if ((rc = cfg_read_local_rope(r, what, kind == CFG_GEMMA3, &rd, &lbl, c))) return rc;
    if (rd && (rc = cfg_rope_dict(r, rd, lbl, what, c))) return rc;
    if (c->rope_local_theta > 0 && c->rope_local_theta == c->rope_theta && c->rope_type == CFG_ROPE_DEFAULT &&
        kind != CFG_GEMMA3)
        c->rope_local_theta = 0; /* one table serves both layer types */
    int rot = (int)(c->head_dim * c->partial_rotary_factor);
    if (rot < 2 || rot % 2)
        return vc_errf(VC_EFORMAT,
                       "%s: partial_rotary_factor (%g) with head_dim %d gives a rotary dimension of %d; it must "
                       "be even and positive",
                       what, c->partial_rotary_factor, c->head_dim, rot);
    return VC_OK;
}

static int is_gemma(int kind) { return kind == CFG_GEMMA2 || kind == CFG_GEMMA3; }

static int is_qwen(int kind) {
    return kind == CFG_QWEN2 || kind == CFG_QWEN3 || kind == CFG_QWEN2MOE || kind == CFG_QWEN3MOE;
}

static int cfg_read_flags(const cJSON *r, const char *what, int kind, model_config *c) {
    int rc, attn_bias = 0, mlp_bias = 0, use_sw = 0, qkv_bias = 1;
    int qwen2 = kind == CFG_QWEN2 || kind == CFG_QWEN2MOE, qwen3 = kind == CFG_QWEN3 || kind == CFG_QWEN3MOE;
    if ((rc = cfg_bool(r, "tie_word_embeddings", what, is_gemma(kind), &c->tie_word_embeddings))) return rc;
    if (!qwen2 && kind != CFG_PHI3 &&
        (rc = cfg_bool(r, "attention_bias", what, kind == CFG_GPTOSS, &attn_bias)))
        return rc;
    if (kind == CFG_LLAMA && (rc = cfg_bool(r, "mlp_bias", what, 0, &mlp_bias))) return rc;
    /* Qwen2-MoE: transformers 5's Qwen2MoeConfig.qkv_bias (absent from the published configs: true) */
    if (kind == CFG_QWEN2MOE && (rc = cfg_bool(r, "qkv_bias", what, 1, &qkv_bias))) return rc;
    if (is_qwen(kind) && (rc = cfg_bool(r, "use_sliding_window", what, 0, &use_sw))) return rc;
    c->qkv_bias = qwen2 ? qkv_bias : attn_bias;
    c->o_bias = (kind == CFG_LLAMA || qwen3 || is_gemma(kind) || kind == CFG_GPTOSS) ? attn_bias : 0;
    c->mlp_bias = kind == CFG_LLAMA ? mlp_bias : 0;
    c->qk_norm = qwen3 || kind == CFG_GEMMA3;
    c->fused_qkv = kind == CFG_PHI3;
    c->sliding_window = 0;
    if (kind == CFG_MISTRAL || kind == CFG_MIXTRAL || kind == CFG_PHI3 || use_sw || kind == CFG_GPTOSS)
        return cfg_int(r, NULL, "sliding_window", what, 0, kind == CFG_GPTOSS ? 128 : 0, 0, CFG_POS_MAX,
                       &c->sliding_window);
    return VC_OK;
}

/* A soft-capping value: absent takes the family's default, null (or 0) turns it off. */
static int cfg_softcap(const cJSON *r, const char *key, const char *what, double def, float *out) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(r, key);
    double v = def;
    if (cJSON_IsNull(j)) v = 0;
    else if (j) {
        int rc = cfg_num(r, NULL, key, what, 0, def, 0, 0, 1e9, &v);
        if (rc) return rc;
    }
    *out = (float)v;
    return VC_OK;
}

/* Which layers are sliding_attention ones: layer_types (transformers 5) when given, else what the
 * published configs imply (Gemma 2: even layers; Gemma 3: all but every sliding_window_pattern-th;
 * Mistral, Qwen2 with use_sliding_window, Phi-3: every layer). */
static int cfg_read_layer_types(const cJSON *r, const char *what, int kind, model_config *c) {
    memset(c->sliding_layers, 0, sizeof c->sliding_layers);
    const cJSON *lt = is_gemma(kind) || kind == CFG_GPTOSS ? cfg_get(r, "layer_types") : NULL;
    int pattern = 0, rc;
    if (lt) {
        if (!cJSON_IsArray(lt) || cJSON_GetArraySize(lt) != c->n_layers)
            return vc_errf(VC_EFORMAT, "%s: layer_types must be a list of num_hidden_layers (%d) strings", what,
                           c->n_layers);
        int l = 0;
        for (const cJSON *e = lt->child; e; e = e->next, l++) {
            int sw = cJSON_IsString(e) && strcmp(e->valuestring, "sliding_attention") == 0;
            if (!sw && !(cJSON_IsString(e) && strcmp(e->valuestring, "full_attention") == 0))
                return vc_errf(VC_EUNSUP, "%s: layer_types[%d] must be \"sliding_attention\" or \"full_attention\"",
                               what, l);
            if (sw) c->sliding_layers[l / 64] |= 1ull << (l % 64);
        }
        return VC_OK;
    }
    if (kind == CFG_GEMMA3) {
        const char *key = cfg_get(r, "sliding_window_pattern") ? "sliding_window_pattern" : "_sliding_window_pattern";
        if ((rc = cfg_int(r, NULL, key, what, 0, 6, 1, CFG_MAX_LAYERS, &pattern))) return rc;
    }
    for (int l = 0; l < c->n_layers; l++) {
        int sw = kind == CFG_GEMMA2 || kind == CFG_GPTOSS ? l % 2 == 0
                 : kind == CFG_GEMMA3                     ? (l + 1) % pattern != 0
                                                          : 1;
        if (sw) c->sliding_layers[l / 64] |= 1ull << (l % 64);
    }
    return VC_OK;
}

/* Gemma 2/3: (1 + w) norms, four norms per layer, GeGLU, the embedding normalizer,
 * query_pre_attn_scalar, soft-capping, sliding windows. Defaults are transformers' config classes'. */
static int cfg_read_gemma(const cJSON *r, const char *what, int kind, model_config *c) {
    int rc, g2 = kind == CFG_GEMMA2, bidi = 0;
    c->norm_offset = 1.0f;
    c->post_norms = 1;
    c->embed_scale = 1;
    const cJSON *ja = cfg_get(r, "hidden_activation");
    if (ja && !cJSON_IsString(ja))
        return vc_errf(VC_EFORMAT, "%s: hidden_activation must be a string (got %s)", what, cfg_kind(ja));
    const char *act = ja ? ja->valuestring : "gelu_pytorch_tanh";
    if (strcmp(act, "gelu_pytorch_tanh") != 0 && strcmp(act, "gelu_new") != 0)
        return vc_errf(VC_EUNSUP, "%s: hidden_activation '%.40s' is not supported (supported: gelu_pytorch_tanh)", what,
                       act);
    c->act = CFG_ACT_GELU_TANH;
    const cJSON *jw = cJSON_GetObjectItemCaseSensitive(r, "sliding_window");
    if ((rc = cfg_num(r, NULL, "query_pre_attn_scalar", what, 0, 256, 0, 1, 1e9, &c->query_pre_attn_scalar)) ||
        (rc = cfg_softcap(r, "attn_logit_softcapping", what, g2 ? 50.0 : 0.0, &c->attn_softcap)) ||
        (rc = cfg_softcap(r, "final_logit_softcapping", what, g2 ? 30.0 : 0.0, &c->final_softcap)) ||
        (rc = cfg_int(r, NULL, "sliding_window", what, 0, cJSON_IsNull(jw) ? 0 : 4096, 0, CFG_POS_MAX,
                      &c->sliding_window)) ||
        (rc = cfg_bool(r, "use_bidirectional_attention", what, 0, &bidi)))
        return rc;
    if (bidi)
        return vc_errf(VC_EUNSUP, "%s: use_bidirectional_attention (an encoder) is not supported", what);
    return VC_OK;
}

/* mlp_only_layers: a list of layer indices (others than 0..n_layers-1 are ignored, as transformers'
 * `layer_idx not in mlp_only_layers` ignores them); marks them in *dense. */
static int cfg_mlp_only(const cJSON *r, const char *what, uint64_t *dense) {
    const cJSON *j = cfg_get(r, "mlp_only_layers");
    if (!j) return VC_OK;
    if (!cJSON_IsArray(j))
        return vc_errf(VC_EFORMAT, "%s: mlp_only_layers must be a list of layer indices (got %s)", what, cfg_kind(j));
    int i = 0;
    for (const cJSON *e = j->child; e; e = e->next, i++) {
        double d = cJSON_IsNumber(e) ? e->valuedouble : -1;
        if (!(d >= 0 && d <= 1e9) || (double)(long long)d != d)
            return vc_errf(VC_EFORMAT, "%s: mlp_only_layers[%d] must be a non-negative integer", what, i);
        if (d < CFG_MAX_LAYERS) dense[(int)d / 64] |= 1ull << ((int)d % 64);
    }
    return VC_OK;
}

/* Mixtral, Qwen2-MoE, Qwen3-MoE: the experts, top-k routing and which layers are sparse. Defaults are
 * transformers' config classes'. A layer is MoE iff it is not in mlp_only_layers, num_experts > 0 and
 * (layer + 1) % decoder_sparse_step == 0 (Qwen2MoeDecoderLayer); every Mixtral layer is. */
static int cfg_read_moe(const cJSON *r, const char *what, int kind, model_config *c) {
    int rc, mix = kind == CFG_MIXTRAL, q2 = kind == CFG_QWEN2MOE, step = 1;
    /* Qwen's published configs say num_experts; transformers 5 saves Qwen3-MoE's as num_local_experts */
    const char *ne = mix || (!cJSON_GetObjectItemCaseSensitive(r, "num_experts") &&
                             cJSON_GetObjectItemCaseSensitive(r, "num_local_experts"))
                         ? "num_local_experts"
                         : "num_experts";
    uint64_t dense[CFG_MAX_LAYERS / 64] = {0};
    c->moe_names = mix ? CFG_MOE_NAMES_MIXTRAL : CFG_MOE_NAMES_QWEN;
    c->norm_topk_prob = 1; /* Mixtral always renormalizes */
    if ((rc = cfg_int(r, NULL, ne, what, 0, mix ? 8 : q2 ? 60 : 128, 0, CFG_MAX_EXPERTS, &c->n_experts)) ||
        (rc = cfg_int(r, NULL, "num_experts_per_tok", what, 0, mix ? 2 : q2 ? 4 : 8, 1, CFG_MAX_TOPK,
                      &c->n_experts_per_tok)))
        return rc;
    if (c->n_experts < 1)
        return vc_errf(VC_EFORMAT, "%s: %s is %d: a %s needs at least one expert", what, ne, c->n_experts, c->arch);
    if (c->n_experts_per_tok > c->n_experts)
        return vc_errf(VC_EFORMAT, "%s: num_experts_per_tok (%d) is greater than %s (%d)", what, c->n_experts_per_tok,
                       ne, c->n_experts);
    c->moe_intermediate_size = c->intermediate_size;
    if (!mix && ((rc = cfg_int(r, NULL, "moe_intermediate_size", what, 0, q2 ? 1408 : 768, 1, CFG_DIM_MAX,
                               &c->moe_intermediate_size)) ||
                 (rc = cfg_bool(r, "norm_topk_prob", what, 0, &c->norm_topk_prob)) ||
                 (rc = cfg_int(r, NULL, "decoder_sparse_step", what, 0, 1, 1, CFG_MAX_LAYERS, &step)) ||
                 (rc = cfg_mlp_only(r, what, dense))))
        return rc;
    if (q2 && (rc = cfg_int(r, NULL, "shared_expert_intermediate_size", what, 0, 5632, 0, CFG_DIM_MAX,
                            &c->shared_expert_intermediate_size)))
        return rc;
    for (int l = 0; l < c->n_layers; l++)
        if (!((dense[l / 64] >> (l % 64)) & 1u) && (l + 1) % step == 0) c->moe_layers[l / 64] |= 1ull << (l % 64);
    return VC_OK;
}

/* gpt-oss: every layer a MoE block of num_local_experts experts of intermediate_size, top-k of the router's
 * logits (num_experts_per_tok; the published configs also say experts_per_token), biases, attention
 * sinks, swiglu_limit. Defaults are GptOssConfig's. */
static int cfg_read_gptoss(const cJSON *r, const char *what, model_config *c) {
    int rc, k4 = 4;
    double lim;
    c->moe_names = CFG_MOE_NAMES_GPTOSS;
    c->topk_then_softmax = 1;
    c->attn_sinks = 1;
    c->swiglu_alpha = 1.702f;
    if ((rc = cfg_int(r, NULL, "num_local_experts", what, 0, 128, 1, CFG_MAX_EXPERTS, &c->n_experts)) ||
        (rc = cfg_int(r, NULL, "experts_per_token", what, 0, 4, 1, CFG_MAX_TOPK, &k4)) ||
        (rc = cfg_int(r, NULL, "num_experts_per_tok", what, 0, k4, 1, CFG_MAX_TOPK, &c->n_experts_per_tok)) ||
        (rc = cfg_num(r, NULL, "swiglu_limit", what, 0, 7.0, 0, 1, 1e9, &lim)))
        return rc;
    if (c->n_experts_per_tok > c->n_experts)
        return vc_errf(VC_EFORMAT, "%s: num_experts_per_tok (%d) is greater than num_local_experts (%d)", what,
                       c->n_experts_per_tok, c->n_experts);
    c->swiglu_limit = (float)lim;
    c->moe_intermediate_size = c->intermediate_size;
    c->norm_topk_prob = 1; /* the softmax of the k selected logits sums to 1 */
    for (int l = 0; l < c->n_layers; l++) c->moe_layers[l / 64] |= 1ull << (l % 64);
    return VC_OK;
}

/* quantization_config: only gpt-oss's published MXFP4 experts ({"quant_method": "mxfp4"}) are read;
 * any other method (or mxfp4 on another family) is refused, naming the field. */
static int cfg_read_quant(const cJSON *root, const char *what, int kind, model_config *c) {
    const cJSON *q = cfg_get(root, "quantization_config");
    if (!q) return VC_OK;
    if (!cJSON_IsObject(q))
        return vc_errf(VC_EFORMAT, "%s: quantization_config must be an object (got %s)", what, cfg_kind(q));
    const cJSON *m = cfg_get(q, "quant_method"), *nc = cfg_get(q, "modules_to_not_convert");
    if (!cJSON_IsString(m))
        return vc_errf(VC_EFORMAT, "%s: quantization_config.quant_method must be a string", what);
    if (strcmp(m->valuestring, "mxfp4") != 0 || kind != CFG_GPTOSS)
        return vc_errf(VC_EUNSUP,
                       "%s: quantization_config.quant_method '%.40s' is not supported for %s (supported: mxfp4 "
                       "for GptOssForCausalLM; other checkpoints must be unquantized f32/f16/bf16)",
                       what, m->valuestring, c->arch);
    if (nc && !cJSON_IsArray(nc))
        return vc_errf(VC_EFORMAT, "%s: quantization_config.modules_to_not_convert must be a list (got %s)", what,
                       cfg_kind(nc));
    for (const cJSON *e = nc ? nc->child : NULL; e; e = e->next)
        if (!cJSON_IsString(e))
            return vc_errf(VC_EFORMAT, "%s: quantization_config.modules_to_not_convert must hold strings", what);
    c->experts_mxfp4 = 1;
    return VC_OK;
}

/* Phi-3: silu, fused projections, and the hidden_act check the Gemma path does for its own. */
static int cfg_read_family(const cJSON *r, const char *what, int kind, model_config *c) {
    int rc;
    c->act = CFG_ACT_SILU;
    if (is_gemma(kind) && (rc = cfg_read_gemma(r, what, kind, c))) return rc;
    if ((kind == CFG_MIXTRAL || kind == CFG_QWEN2MOE || kind == CFG_QWEN3MOE) && (rc = cfg_read_moe(r, what, kind, c)))
        return rc;
    if (kind == CFG_GPTOSS && (rc = cfg_read_gptoss(r, what, c))) return rc;
    if (kind == CFG_PHI3 || c->n_experts > 0) { /* gpt-oss's published "silu" names its clamped SwiGLU */
        const cJSON *ja = cfg_get(r, "hidden_act");
        if (ja && (!cJSON_IsString(ja) || strcmp(ja->valuestring, "silu") != 0))
            return vc_errf(VC_EUNSUP, "%s: hidden_act must be \"silu\" for %s", what, c->arch);
    }
    return cfg_read_layer_types(r, what, kind, c);
}

/* Gemma3ForConditionalGeneration: the language model's settings are text_config, where the published
 * checkpoints leave most fields to Gemma3TextConfig's defaults; those are filled in here. */
static int cfg_text_config(const cJSON *root, const char *what, cJSON **out) {
    const cJSON *tc = cfg_get(root, "text_config");
    if (!tc) return vc_errf(VC_EFORMAT, "%s: missing text_config (Gemma3ForConditionalGeneration)", what);
    if (!cJSON_IsObject(tc)) return vc_errf(VC_EFORMAT, "%s: text_config must be an object (got %s)", what, cfg_kind(tc));
    static const struct {
        const char *key;
        double v;
    } defs[] = {{"vocab_size", 262208}, {"hidden_size", 2304}, {"intermediate_size", 9216},
                {"num_hidden_layers", 26}, {"num_attention_heads", 8}, {"num_key_value_heads", 4},
                {"head_dim", 256}, {"max_position_embeddings", 131072}};
    cJSON *t = cJSON_Duplicate(tc, 1);
    if (!t) return vc_errf(VC_ENOMEM, "%s: out of memory", what);
    for (size_t i = 0; i < sizeof defs / sizeof defs[0]; i++)
        if (!cfg_get(t, defs[i].key) && !cJSON_AddNumberToObject(t, defs[i].key, defs[i].v)) {
            cJSON_Delete(t);
            return vc_errf(VC_ENOMEM, "%s: out of memory", what);
        }
    *out = t;
    return VC_OK;
}

static int cfg_dtype_from(const char *s, be_dtype *out) {
    if (strncmp(s, "torch.", 6) == 0) s += 6;
    static const struct {
        const char *name;
        be_dtype dt;
    } names[] = {
        {"float32", BE_F32}, {"float", BE_F32}, {"fp32", BE_F32},     {"float16", BE_F16},
        {"half", BE_F16},    {"fp16", BE_F16},  {"bfloat16", BE_BF16}, {"bf16", BE_BF16},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (strcmp(s, names[i].name) == 0) {
            *out = names[i].dt;
            return 1;
        }
    }
    return 0;
}

/* gpt-oss's published config.json may name no dtype while its non-expert tensors are bf16: bf16 then. */
static int cfg_read_dtype(const cJSON *r, const char *what, int kind, model_config *c) {
    const char *key = "dtype";
    const cJSON *j = cfg_get(r, key);
    if (!j) j = cfg_get(r, key = "torch_dtype");
    c->torch_dtype = kind == CFG_GPTOSS ? BE_BF16 : BE_F32;
    if (!j) return VC_OK;
    if (!cJSON_IsString(j))
        return vc_errf(VC_EFORMAT, "%s: %s must be a string (got %s)", what, key, cfg_kind(j));
    if (!cfg_dtype_from(j->valuestring, &c->torch_dtype))
        return vc_errf(VC_EUNSUP, "%s: %s '%.40s' is not supported (expected float32, float16 or bfloat16)", what,
                       key, j->valuestring);
    return VC_OK;
}

int cfg_parse(const char *json, size_t len, const char *what, model_config *out) {
    model_config c;
    memset(&c, 0, sizeof c);
    memset(out, 0, sizeof *out);
    if (!what) what = "config.json";
    c.bos_token_id = -1;
    cJSON *root = NULL;
    int kind = 0, rc = cfg_json(json, len, what, &root);
    if (rc) return rc;
    cJSON *text = NULL;
    const cJSON *r = root;
    char twhat[1100];
    if ((rc = cfg_read_arch(root, what, &c, &kind))) goto done;
    if (kind == CFG_GEMMA3_MM) { /* the text model, under text_config */
        if ((rc = cfg_text_config(root, what, &text))) goto done;
        snprintf(twhat, sizeof twhat, "%s: text_config", what);
        r = text;
        kind = CFG_GEMMA3;
        c.multimodal = 1;
    }
    const char *rw = r == root ? what : twhat;
    if ((rc = cfg_read_dims(r, rw, &c)) || (rc = cfg_read_rope(r, rw, kind, &c)) ||
        (rc = cfg_read_flags(r, rw, kind, &c)) || (rc = cfg_read_family(r, rw, kind, &c)) ||
        (rc = cfg_read_dtype(root, what, kind, &c)) || (rc = cfg_read_quant(root, what, kind, &c)) ||
        (rc = cfg_read_bos(root, what, &c.bos_token_id)) ||
        (rc = cfg_read_eos(root, what, c.eos_token_ids, &c.n_eos)))
        goto done;
    *out = c;
done:
    cJSON_Delete(text);
    cJSON_Delete(root);
    return rc;
}

int cfg_parse_generation(const char *json, size_t len, const char *what, model_config *cfg) {
    if (!what) what = "generation_config.json";
    model_config c = *cfg;
    cJSON *root = NULL;
    int rc = cfg_json(json, len, what, &root);
    if (rc) return rc;
    double temp = 0, top_p = 0;
    if ((rc = cfg_read_bos(root, what, &c.bos_token_id)) ||
        (rc = cfg_read_eos(root, what, c.eos_token_ids, &c.n_eos)) ||
        (rc = cfg_num(root, NULL, "temperature", what, 0, -1, 0, 0, 1e6, &temp)) ||
        (rc = cfg_num(root, NULL, "top_p", what, 0, -1, 0, 1, 1.0, &top_p)) ||
        (rc = cfg_int(root, NULL, "top_k", what, 0, 0, -1, CFG_POS_MAX, &c.gen_top_k)))
        goto done;
    c.has_temperature = cfg_get(root, "temperature") != NULL;
    c.has_top_p = cfg_get(root, "top_p") != NULL;
    c.has_top_k = cfg_get(root, "top_k") != NULL;
    c.gen_temperature = c.has_temperature ? (float)temp : cfg->gen_temperature;
    c.gen_top_p = c.has_top_p ? (float)top_p : cfg->gen_top_p;
    if (!c.has_top_k) c.gen_top_k = cfg->gen_top_k;
    c.has_temperature |= cfg->has_temperature;
    c.has_top_p |= cfg->has_top_p;
    c.has_top_k |= cfg->has_top_k;
    *cfg = c;
done:
    cJSON_Delete(root);
    return rc;
}

int cfg_load_dir(const char *dir, model_config *out) {
    memset(out, 0, sizeof *out);
    if (!dir) return vc_errf(VC_EINVAL, "cfg_load_dir: no directory");
    char *cpath = vc_path_join(dir, "config.json"), *gpath = vc_path_join(dir, "generation_config.json");
    char *text = NULL;
    size_t len = 0;
    int rc;
    if (!cpath || !gpath) {
        rc = vc_errf(VC_ENOMEM, "%s: out of memory", dir);
        goto done;
    }
    if ((rc = vc_read_file(cpath, CFG_MAX_FILE, &text, &len))) goto done;
    if ((rc = cfg_parse(text, len, cpath, out))) goto done;
    free(text);
    text = NULL;
    if (vc_file_exists(gpath)) {
        if ((rc = vc_read_file(gpath, CFG_MAX_FILE, &text, &len)) ||
            (rc = cfg_parse_generation(text, len, gpath, out)))
            memset(out, 0, sizeof *out);
    }
done:
    free(text);
    free(cpath);
    free(gpath);
    return rc;
}

int cfg_parse_dtype_flag(const char *flag, int *out) {
    if (!flag || strcmp(flag, "auto") == 0) {
        *out = -1;
    } else if (strcmp(flag, "half") == 0 || strcmp(flag, "float16") == 0) {
        *out = BE_F16;
    } else if (strcmp(flag, "bfloat16") == 0) {
        *out = BE_BF16;
    } else if (strcmp(flag, "float") == 0 || strcmp(flag, "float32") == 0) {
        *out = BE_F32;
    } else {
        return vc_errf(VC_EINVAL, "unknown --dtype '%.60s' (expected auto, half, float16, bfloat16, float, float32)",
                       flag);
    }
    return VC_OK;
}

be_dtype cfg_run_dtype(int flag, be_dtype checkpoint) {
    if (flag >= 0) return (be_dtype)flag;
    return checkpoint == BE_BF16 ? BE_BF16 : BE_F16;
}

int cfg_resolve_dtype(const char *flag, be_dtype checkpoint, be_dtype *out) {
    int f;
    int rc = cfg_parse_dtype_flag(flag, &f);
    if (rc) return rc;
    *out = cfg_run_dtype(f, checkpoint);
    return VC_OK;
}
