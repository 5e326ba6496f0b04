/* adapter_config: adapter_config.json -> lora_config, and the regex helpers adapter.c shares (see
 * adapter.h for the format).
 *
 * Reading rules, where PEFT leaves room:
 *  - JSON null counts as absent; keys are case-sensitive; unknown keys are ignored (PEFT writes many).
 *  - Python's re and PCRE2 agree on the patterns adapters use (names, dots, alternations, classes);
 *    every match runs under a match/depth/heap limit, so a pathological pattern is an error, not a hang.
 *  - The regexes are compiled again by the load (lora_config stays plain data, as the fuzz target and
 *    the tests see it). */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/json.h"
#include "lora/adapter.h"
#include "lora/adapter_internal.h"

#define LORA_MAX_REGEX 65536              /* bytes of one pattern */
#define LORA_MAX_R (1 << 20)              /* r and rank_pattern values */
#define LORA_MAX_ALPHA 1e30               /* keeps alpha / rank a finite float */

static const char *const lora_names[LORA_N_MODULES] = {"q_proj",    "k_proj",  "v_proj",   "o_proj",
                                                       "gate_proj", "up_proj", "down_proj"};
static const char *const lora_parents[LORA_N_MODULES] = {"self_attn", "self_attn", "self_attn", "self_attn",
                                                         "mlp",       "mlp",       "mlp"};
#define LORA_ALL_MODULES ((1u << LORA_N_MODULES) - 1)

const char *lora_module_name(lora_module m) {
    return (unsigned)m < LORA_N_MODULES ? lora_names[m] : "?";
}

static int lora_module_index(const char *s) {
    for (int m = 0; m < LORA_N_MODULES; m++)
        if (!strcmp(s, lora_names[m])) return m;
    return -1;
}

const char *lora_module_parent(int m) { return (unsigned)m < LORA_N_MODULES ? lora_parents[m] : "?"; }

void lora_module_path(char *buf, size_t cap, int layer, int m) {
    snprintf(buf, cap, "model.layers.%d.%s.%s", layer, lora_parents[m], lora_names[m]);
}

/* ---- regexes (PCRE2) ---- */

void lora_re_free(lora_re *r) {
    pcre2_match_data_free(r->md);
    pcre2_match_context_free(r->mc);
    pcre2_code_free(r->re);
    memset(r, 0, sizeof *r);
}

int lora_re_compile(lora_re *r, const char *pat, const char *what, const char *field) {
    memset(r, 0, sizeof *r);
    size_t n = strlen(pat);
    if (n > LORA_MAX_REGEX)
        return vc_errf(VC_EFORMAT, "%s: %s: regex of %zu bytes (at most %d)", what, field, n, LORA_MAX_REGEX);
    int err = 0;
    PCRE2_SIZE off = 0;
    r->re = pcre2_compile((PCRE2_SPTR)pat, n, PCRE2_UTF | PCRE2_UCP, &err, &off, NULL);
    if (!r->re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof msg);
        return vc_errf(VC_EFORMAT, "%s: %s: bad regex '%.200s': %s at offset %zu", what, field, pat,
                       (char *)msg, (size_t)off);
    }
    r->md = pcre2_match_data_create_from_pattern(r->re, NULL);
    r->mc = pcre2_match_context_create(NULL);
    if (!r->md || !r->mc) {
        lora_re_free(r);
        return vc_errf(VC_ENOMEM, "%s: out of memory", what);
    }
    pcre2_set_match_limit(r->mc, 100000); /* real patterns on module names need hundreds */
    pcre2_set_depth_limit(r->mc, 10000);
    pcre2_set_heap_limit(r->mc, 16384); /* KiB */
    return VC_OK;
}

int lora_re_match(const lora_re *r, const char *s, uint32_t opts, const char *what, const char *field) {
    int rc = pcre2_match(r->re, (PCRE2_SPTR)s, strlen(s), 0, PCRE2_ANCHORED | opts, r->md, r->mc);
    if (rc >= 0) return 1;
    if (rc == PCRE2_ERROR_NOMATCH) return 0;
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(rc, msg, sizeof msg);
    return vc_errf(VC_EUNSUP, "%s: %s: regex failed on '%s': %s", what, field, s, (char *)msg);
}

int lora_key_compile(lora_re *r, const char *key, const char *what, const char *field) {
    size_t n = strlen(key);
    if (n > LORA_MAX_REGEX)
        return vc_errf(VC_EFORMAT, "%s: %s key of %zu bytes (at most %d)", what, field, n, LORA_MAX_REGEX);
    char *pat = malloc(n + 16), name[80];
    if (!pat) return vc_errf(VC_ENOMEM, "%s: out of memory", what);
    snprintf(pat, n + 16, "(.*\\.)?(%s)$", key);
    snprintf(name, sizeof name, "%s key '%.40s'", field, key);
    int rc = lora_re_compile(r, pat, what, name);
    free(pat);
    return rc;
}

int lora_regex_mask(const lora_re *r, int n_layers, const char *what, unsigned *mask) {
    char name[LORA_MAX_NAME];
    *mask = 0;
    for (int m = 0; m < LORA_N_MODULES; m++) {
        for (int l = 0; l < n_layers; l++) {
            lora_module_path(name, sizeof name, l, m);
            int hit = lora_re_match(r, name, PCRE2_ENDANCHORED, what, "target_modules");
            if (hit < 0) return hit;
            if (hit) {
                *mask |= 1u << m;
                break;
            }
        }
    }
    return VC_OK;
}

/* ---- adapter_config.json ---- */

static const char *lora_kind(const cJSON *j) {
    if (cJSON_IsString(j)) return "a string";
    if (cJSON_IsNumber(j)) return "a number";
    if (cJSON_IsBool(j)) return "a boolean";
    if (cJSON_IsArray(j)) return "a list";
    if (cJSON_IsObject(j)) return "an object";
    return "null";
}

static char *lora_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p) memcpy(p, s, n);
    return p;
}

static int lora_get_bool(const cJSON *o, const char *key, const char *what, int *out) {
    const cJSON *j = js_field(o, key);
    *out = 0;
    if (!j) return VC_OK;
    if (!cJSON_IsBool(j))
        return vc_errf(VC_EFORMAT, "%s: %s must be true or false (got %s)", what, key, lora_kind(j));
    *out = cJSON_IsTrue(j);
    return VC_OK;
}

/* A string member, or NULL when absent. */
static int lora_get_str(const cJSON *o, const char *key, const char *what, const char **out) {
    const cJSON *j = js_field(o, key);
    *out = NULL;
    if (!j) return VC_OK;
    if (!cJSON_IsString(j))
        return vc_errf(VC_EFORMAT, "%s: %s must be a string (got %s)", what, key, lora_kind(j));
    *out = j->valuestring;
    return VC_OK;
}

/* A rank: an integer in [1, LORA_MAX_R]. */
static int lora_rank_value(const cJSON *j, const char *field, const char *what, int *out) {
    long long v;
    if (!cJSON_IsNumber(j) || js_int64(j, &v) || v < 1 || v > LORA_MAX_R)
        return vc_errf(VC_EFORMAT, "%s: %s must be a positive integer of at most %d (got %s)", what, field,
                       LORA_MAX_R, cJSON_IsNumber(j) ? (j->valuestring ? j->valuestring : "?") : lora_kind(j));
    *out = (int)v;
    return VC_OK;
}

/* An alpha: a number in (0, LORA_MAX_ALPHA]. */
static int lora_alpha_value(const cJSON *j, const char *field, const char *what, double *out) {
    if (!cJSON_IsNumber(j) || !(j->valuedouble > 0 && j->valuedouble <= LORA_MAX_ALPHA))
        return vc_errf(VC_EFORMAT, "%s: %s must be a positive number of at most %g (got %s)", what, field,
                       LORA_MAX_ALPHA, cJSON_IsNumber(j) ? (j->valuestring ? j->valuestring : "?") : lora_kind(j));
    *out = j->valuedouble;
    return VC_OK;
}

/* Fields that name a PEFT feature vllmc does not run. */
static int lora_read_unsupported(const cJSON *root, const char *what) {
    const char *s;
    int on, rc;
    if ((rc = lora_get_str(root, "peft_type", what, &s))) return rc;
    if (s && strcmp(s, "LORA"))
        return vc_errf(VC_EUNSUP, "%s: peft_type is '%.100s': only LORA adapters are supported", what, s);
    if ((rc = lora_get_bool(root, "use_dora", what, &on))) return rc;
    if (on) return vc_errf(VC_EUNSUP, "%s: use_dora is true: DoRA adapters are not supported", what);
    if ((rc = lora_get_bool(root, "lora_bias", what, &on))) return rc;
    if (on) return vc_errf(VC_EUNSUP, "%s: lora_bias is true: a bias on lora_B is not supported", what);
    if ((rc = lora_get_str(root, "bias", what, &s))) return rc;
    if (s && strcmp(s, "none"))
        return vc_errf(VC_EUNSUP, "%s: bias is '%.100s': only \"none\" is supported", what, s);
    if (js_field(root, "layer_replication"))
        return vc_errf(VC_EUNSUP, "%s: layer_replication is set: adapters that replicate layers are not supported",
                       what);
    const cJSON *j = js_field(root, "modules_to_save"); /* its weights, if any, are refused by tensor name */
    if (j && !cJSON_IsArray(j))
        return vc_errf(VC_EFORMAT, "%s: modules_to_save must be a list of strings or null (got %s)", what,
                       lora_kind(j));
    return VC_OK;
}

static int lora_read_scalars(const cJSON *root, const char *what, lora_config *c) {
    const cJSON *j;
    const char *s;
    int rc;
    c->r = 8;
    c->lora_alpha = 8;
    if ((j = js_field(root, "r")) && (rc = lora_rank_value(j, "r", what, &c->r))) return rc;
    if ((j = js_field(root, "lora_alpha")) && (rc = lora_alpha_value(j, "lora_alpha", what, &c->lora_alpha)))
        return rc;
    if ((rc = lora_get_bool(root, "use_rslora", what, &c->use_rslora))) return rc;
    if ((rc = lora_get_bool(root, "fan_in_fan_out", what, &c->fan_in_fan_out))) return rc;
    if ((rc = lora_get_str(root, "base_model_name_or_path", what, &s))) return rc;
    if (s && !(c->base_model = lora_strdup(s))) return vc_errf(VC_ENOMEM, "%s: out of memory", what);
    return VC_OK;
}

/* One entry of the list form: its last dotted component must be one of the seven. */
static int lora_target_entry(const char *s, const char *what, unsigned *mask) {
    const char *last = strrchr(s, '.');
    last = last ? last + 1 : s;
    int m = lora_module_index(last);
    if (m >= 0) {
        *mask |= 1u << m;
        return VC_OK;
    }
    if (!strcmp(last, "embed_tokens") || !strcmp(last, "lm_head"))
        return vc_errf(VC_EUNSUP, "%s: target_modules names %s: LoRA on the embedding or the LM head is not supported",
                       what, last);
    return vc_errf(VC_EUNSUP, "%s: target_modules names '%.200s', which is not one of " LORA_MODULE_LIST, what, s);
}

/* The string form: a regex that must re.fullmatch a module name. */
static int lora_target_regex(const char *pat, const char *what, lora_config *c) {
    if (!strcmp(pat, "all-linear")) {
        c->target_mask = LORA_ALL_MODULES;
        return VC_OK;
    }
    lora_re r;
    int rc = lora_re_compile(&r, pat, what, "target_modules");
    if (rc) return rc;
    static const char *const refused[] = {"model.embed_tokens", "lm_head"};
    for (int i = 0; i < 2 && !rc; i++) {
        int hit = lora_re_match(&r, refused[i], PCRE2_ENDANCHORED, what, "target_modules");
        if (hit < 0) rc = hit;
        else if (hit)
            rc = vc_errf(VC_EUNSUP, "%s: target_modules matches %s: LoRA on the embedding or the LM head is not supported",
                         what, refused[i]);
    }
    if (!rc) rc = lora_regex_mask(&r, LORA_MASK_LAYERS, what, &c->target_mask);
    lora_re_free(&r);
    if (!rc && !(c->target_regex = lora_strdup(pat))) rc = vc_errf(VC_ENOMEM, "%s: out of memory", what);
    return rc;
}

static int lora_read_targets(const cJSON *root, const char *what, lora_config *c) {
    const cJSON *j = js_field(root, "target_modules");
    if (!j) return vc_errf(VC_EFORMAT, "%s: missing target_modules", what);
    if (cJSON_IsString(j)) return lora_target_regex(j->valuestring, what, c);
    if (!cJSON_IsArray(j))
        return vc_errf(VC_EFORMAT, "%s: target_modules must be a string or a list of strings (got %s)", what,
                       lora_kind(j));
    for (const cJSON *e = j->child; e; e = e->next) {
        if (!cJSON_IsString(e))
            return vc_errf(VC_EFORMAT, "%s: target_modules entries must be strings (got %s)", what, lora_kind(e));
        int rc = lora_target_entry(e->valuestring, what, &c->target_mask);
        if (rc) return rc;
    }
    if (!c->target_mask) return vc_errf(VC_EFORMAT, "%s: target_modules is empty", what);
    return VC_OK;
}

/* rank_pattern (is_rank) or alpha_pattern: an object of regex keys -> values, kept in file order. */
static int lora_read_pattern(const cJSON *root, const char *key, int is_rank, const char *what, lora_config *c) {
    const cJSON *j = js_field(root, key);
    if (!j) return VC_OK;
    if (!cJSON_IsObject(j))
        return vc_errf(VC_EFORMAT, "%s: %s must be an object (got %s)", what, key, lora_kind(j));
    int n = cJSON_GetArraySize(j);
    if (n > LORA_MAX_PATTERNS)
        return vc_errf(VC_EFORMAT, "%s: %s has %d keys (at most %d)", what, key, n, LORA_MAX_PATTERNS);
    if (n == 0) return VC_OK;
    char **keys = calloc((size_t)n, sizeof *keys);
    void *vals = calloc((size_t)n, is_rank ? sizeof(int) : sizeof(double));
    if (is_rank) c->rank_key = keys, c->rank_val = vals;
    else c->alpha_key = keys, c->alpha_val = vals;
    if (!keys || !vals) return vc_errf(VC_ENOMEM, "%s: out of memory", what);
    int k = 0, rc = VC_OK;
    for (const cJSON *e = j->child; e && k < n && !rc; e = e->next, k++) {
        char field[96];
        snprintf(field, sizeof field, "%s['%.40s']", key, e->string);
        rc = is_rank ? lora_rank_value(e, field, what, &((int *)vals)[k])
                     : lora_alpha_value(e, field, what, &((double *)vals)[k]);
        lora_re r;
        if (!rc && !(rc = lora_key_compile(&r, e->string, what, key))) lora_re_free(&r);
        if (!rc && !(keys[k] = lora_strdup(e->string))) rc = vc_errf(VC_ENOMEM, "%s: out of memory", what);
        if (!rc) *(is_rank ? &c->n_rank_pat : &c->n_alpha_pat) = k + 1;
    }
    return rc;
}

static int lora_config_from(const cJSON *root, const char *what, lora_config *c) {
    int rc;
    if ((rc = lora_read_unsupported(root, what))) return rc;
    if ((rc = lora_read_scalars(root, what, c))) return rc;
    if ((rc = lora_read_targets(root, what, c))) return rc;
    if ((rc = lora_read_pattern(root, "rank_pattern", 1, what, c))) return rc;
    return lora_read_pattern(root, "alpha_pattern", 0, what, c);
}

int lora_config_parse(const char *json, size_t len, const char *what, lora_config *out) {
    memset(out, 0, sizeof *out);
    js_error e;
    cJSON *root = js_parse(json, json ? len : 0, &e);
    if (!root && e.oom) return vc_errf(VC_ENOMEM, "%s: out of memory", what);
    if (!root) return vc_errf(VC_EFORMAT, "%s: invalid JSON: %s", what, e.message);
    int rc;
    lora_config c = {0};
    if (!cJSON_IsObject(root))
        rc = vc_errf(VC_EFORMAT, "%s: invalid JSON: top level is %s, not an object", what, lora_kind(root));
    else rc = lora_config_from(root, what, &c);
    cJSON_Delete(root);
    if (rc) lora_config_free(&c);
    else *out = c;
    return rc;
}

static void lora_free_strs(char **s, int n) {
    for (int i = 0; s && i < n; i++) free(s[i]);
    free(s);
}

void lora_config_free(lora_config *c) {
    if (!c) return;
    free(c->target_regex);
    free(c->base_model);
    lora_free_strs(c->rank_key, c->n_rank_pat);
    lora_free_strs(c->alpha_key, c->n_alpha_pat);
    free(c->rank_val);
    free(c->alpha_val);
    memset(c, 0, sizeof *c);
}
