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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../base/err.h"
#include "../base/file.h"
#include "../base/json.h"

#define CFG_MAX_FILE ((size_t)16 << 20)
#define CFG_DIM_MAX ((1 << 24) - 1)
#define CFG_POS_MAX ((1 << 30) - 1)

enum { CFG_LLAMA, CFG_MISTRAL, CFG_QWEN2, CFG_QWEN3 };

static const struct {
    const char *arch, *model_type;
    int kind;
} cfg_archs[] = {
    {"LlamaForCausalLM", "llama", CFG_LLAMA},
    {"MistralForCausalLM", "mistral", CFG_MISTRAL},
    {"Qwen2ForCausalLM", "qwen2", CFG_QWEN2},
    {"Qwen3ForCausalLM", "qwen3", CFG_QWEN3},
};
#define CFG_N_ARCHS (int)(sizeof cfg_archs / sizeof cfg_archs[0])
#define CFG_ARCH_LIST "LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM"

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
                           "mistral, qwen2, qwen3)",
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

static int cfg_read_rope(const cJSON *r, const char *what, model_config *c) {
    int rc;
    if ((rc = cfg_num(r, NULL, "rope_theta", what, 0, 10000.0, 0, 1, 1e300, &c->rope_theta)) ||
        (rc = cfg_num(r, NULL, "partial_rotary_factor", what, 0, 1.0, 0, 1, 1.0, &c->partial_rotary_factor)))
        return rc;
    c->rope_type = CFG_ROPE_DEFAULT;
    c->rope_factor = 1.0;
    const cJSON *rp = cfg_get(r, "rope_parameters"), *rs = cfg_get(r, "rope_scaling");
    if (rp && !cJSON_IsObject(rp))
        return vc_errf(VC_EFORMAT, "%s: rope_parameters must be an object or null (got %s)", what, cfg_kind(rp));
    if (rs && !cJSON_IsObject(rs))
        return vc_errf(VC_EFORMAT, "%s: rope_scaling must be an object or null (got %s)", what, cfg_kind(rs));
    const cJSON *rd = rp ? rp : rs;
    const char *lbl = rp ? "rope_parameters" : "rope_scaling";
    if (rd) {
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
            if ((rc = cfg_num(rd, lbl, "factor", what, 1, 0, 0, 1, 1e9, &c->rope_factor))) return rc;
        } else if (strcmp(type, "llama3") == 0) {
            c->rope_type = CFG_ROPE_LLAMA3;
            if ((rc = cfg_num(rd, lbl, "factor", what, 1, 0, 0, 1, 1e9, &c->rope_factor)) ||
                (rc = cfg_num(rd, lbl, "low_freq_factor", what, 1, 0, 0, 1, 1e9, &c->rope_low_freq_factor)) ||
                (rc = cfg_num(rd, lbl, "high_freq_factor", what, 1, 0, 0, 1, 1e9, &c->rope_high_freq_factor)) ||
                (rc = cfg_int(rd, lbl, "original_max_position_embeddings", what, 1, 0, 1, CFG_POS_MAX,
                              &c->rope_original_max_pos)))
                return rc;
            if (!(c->rope_high_freq_factor > c->rope_low_freq_factor))
                return vc_errf(VC_EFORMAT, "%s: %s.high_freq_factor (%g) must be greater than low_freq_factor (%g)",
                               what, lbl, c->rope_high_freq_factor, c->rope_low_freq_factor);
        } else {
            return vc_errf(VC_EUNSUP, "%s: %s type '%.60s' is not supported (supported: default, linear, llama3)",
                           what, lbl, type);
        }
    }
    int rot = (int)(c->head_dim * c->partial_rotary_factor);
    if (rot < 2 || rot % 2)
        return vc_errf(VC_EFORMAT,
                       "%s: partial_rotary_factor (%g) with head_dim %d gives a rotary dimension of %d; it must "
                       "be even and positive",
                       what, c->partial_rotary_factor, c->head_dim, rot);
    return VC_OK;
}

static int cfg_read_flags(const cJSON *r, const char *what, int kind, model_config *c) {
    int rc, attn_bias = 0, mlp_bias = 0, use_sw = 0;
    if ((rc = cfg_bool(r, "tie_word_embeddings", what, 0, &c->tie_word_embeddings))) return rc;
    if (kind != CFG_QWEN2 && (rc = cfg_bool(r, "attention_bias", what, 0, &attn_bias))) return rc;
    if (kind == CFG_LLAMA && (rc = cfg_bool(r, "mlp_bias", what, 0, &mlp_bias))) return rc;
    if ((kind == CFG_QWEN2 || kind == CFG_QWEN3) && (rc = cfg_bool(r, "use_sliding_window", what, 0, &use_sw)))
        return rc;
    c->qkv_bias = kind == CFG_QWEN2 ? 1 : attn_bias;
    c->o_bias = (kind == CFG_LLAMA || kind == CFG_QWEN3) ? attn_bias : 0;
    c->mlp_bias = kind == CFG_LLAMA ? mlp_bias : 0;
    c->qk_norm = kind == CFG_QWEN3;
    c->sliding_window = 0;
    if (kind == CFG_MISTRAL || use_sw)
        return cfg_int(r, NULL, "sliding_window", what, 0, 0, 0, CFG_POS_MAX, &c->sliding_window);
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

static int cfg_read_dtype(const cJSON *r, const char *what, model_config *c) {
    const char *key = "dtype";
    const cJSON *j = cfg_get(r, key);
    if (!j) j = cfg_get(r, key = "torch_dtype");
    c->torch_dtype = BE_F32;
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
    if ((rc = cfg_read_arch(root, what, &c, &kind)) || (rc = cfg_read_dims(root, what, &c)) ||
        (rc = cfg_read_rope(root, what, &c)) || (rc = cfg_read_flags(root, what, kind, &c)) ||
        (rc = cfg_read_dtype(root, what, &c)) || (rc = cfg_read_bos(root, what, &c.bos_token_id)) ||
        (rc = cfg_read_eos(root, what, c.eos_token_ids, &c.n_eos)))
        goto done;
    *out = c;
done:
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
