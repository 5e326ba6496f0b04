#include "engine/params_json.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/json.h"

static int get_num(const cJSON *o, const char *k, double *v, int *present) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, k);
    *present = 0;
    if (!x || cJSON_IsNull(x)) return VC_OK;
    if (!cJSON_IsNumber(x)) return vc_errf(VC_EINVAL, "'%s' must be a number", k);
    *v = x->valuedouble;
    *present = 1;
    return VC_OK;
}

static int get_int(const cJSON *o, const char *k, long long lo, long long hi, long long *v, int *present) {
    double d;
    int rc = get_num(o, k, &d, present);
    if (rc || !*present) return rc;
    if (d != floor(d) || d < (double)lo || d > (double)hi)
        return vc_errf(VC_EINVAL, "'%s' must be an integer in [%lld, %lld]", k, lo, hi);
    *v = (long long)d;
    return VC_OK;
}

/* seed: any int64, read exactly (js_int64 keeps the literal; a double cannot hold 2^63 - 1). */
static int get_seed(const cJSON *o, long long *v, int *present) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, "seed");
    *present = 0;
    if (!x || cJSON_IsNull(x)) return VC_OK;
    if (js_int64(x, v)) return vc_errf(VC_EINVAL, "'seed' must be an integer in [%lld, %lld]", LLONG_MIN, LLONG_MAX);
    *present = 1;
    return VC_OK;
}

/* js_parse keeps U+0000 as C0 80; stop strings are C strings matched against the output text, where
 * a NUL could never be found: refused, rather than a stop string that silently never matches. */
static int has_nul(const char *z) { return strstr(z, "\xC0\x80") != NULL; }
static int nul_refused(const char *k) { return vc_errf(VC_EINVAL, "'%s': strings containing \\u0000 are not supported", k); }

static int get_bool(const cJSON *o, const char *k, int *v) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!x || cJSON_IsNull(x)) return VC_OK;
    if (!cJSON_IsBool(x)) return vc_errf(VC_EINVAL, "'%s' must be a boolean", k);
    *v = cJSON_IsTrue(x);
    return VC_OK;
}

static int get_ids(const cJSON *a, const char *k, int32_t **out, int *n) {
    if (!cJSON_IsArray(a)) return vc_errf(VC_EINVAL, "'%s' must be a list of token ids", k);
    int m = cJSON_GetArraySize(a);
    int32_t *v = malloc(sizeof *v * (size_t)(m ? m : 1));
    if (!v) return vc_errf(VC_ENOMEM, "out of memory");
    int i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, a) {
        if (!cJSON_IsNumber(e) || e->valuedouble != floor(e->valuedouble) || e->valuedouble < INT32_MIN ||
            e->valuedouble > INT32_MAX) {
            free(v);
            return vc_errf(VC_EINVAL, "'%s' must be a list of integer token ids", k);
        }
        v[i++] = (int32_t)e->valuedouble;
    }
    *out = v;
    *n = m;
    return VC_OK;
}

int eng_params_from_json(const cJSON *o, eng_sampling_params *p) {
    if (!cJSON_IsObject(o)) return vc_errf(VC_EINVAL, "sampling parameters must be a JSON object");
    double d;
    long long ll;
    int has, rc;
#define NUM(key, field)                                            \
    if ((rc = get_num(o, key, &d, &has))) return rc;               \
    if (has) p->field = (float)d;
#define INT(key, field, lo, hi)                                    \
    if ((rc = get_int(o, key, lo, hi, &ll, &has))) return rc;      \
    if (has) p->field = (int)ll;
    INT("n", n, INT_MIN, 1 << 20); /* n < 1: SamplingParams' own message */
    NUM("temperature", temperature);
    NUM("top_p", top_p);
    INT("top_k", top_k, INT_MIN, INT_MAX);
    NUM("min_p", min_p);
    NUM("presence_penalty", presence_penalty);
    NUM("frequency_penalty", frequency_penalty);
    NUM("repetition_penalty", repetition_penalty);
    INT("max_tokens", max_tokens, INT_MIN, INT_MAX);
    INT("min_tokens", min_tokens, INT_MIN, INT_MAX);
    INT("logprobs", logprobs, INT_MIN, INT_MAX);
    INT("prompt_logprobs", prompt_logprobs, INT_MIN, INT_MAX);
#undef NUM
#undef INT
    if ((rc = get_seed(o, &ll, &has))) return rc;
    if (has) {
        p->has_seed = 1;
        p->seed = ll;
    }
    if ((rc = get_bool(o, "ignore_eos", &p->ignore_eos)) ||
        (rc = get_bool(o, "include_stop_str_in_output", &p->include_stop_str_in_output)) ||
        (rc = get_bool(o, "skip_special_tokens", &p->skip_special_tokens)) ||
        (rc = get_bool(o, "spaces_between_special_tokens", &p->spaces_between_special_tokens)))
        return rc;
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, "stop_token_ids");
    if (x && !cJSON_IsNull(x) && (rc = get_ids(x, "stop_token_ids", &p->stop_token_ids, &p->n_stop_token_ids))) return rc;
    x = cJSON_GetObjectItemCaseSensitive(o, "allowed_token_ids");
    if (x && !cJSON_IsNull(x) && (rc = get_ids(x, "allowed_token_ids", &p->allowed_token_ids, &p->n_allowed))) return rc;
    x = cJSON_GetObjectItemCaseSensitive(o, "stop");
    if (x && !cJSON_IsNull(x)) {
        int m = cJSON_IsString(x) ? 1 : cJSON_IsArray(x) ? cJSON_GetArraySize(x) : -1;
        if (m < 0) return vc_errf(VC_EINVAL, "'stop' must be a string or a list of strings");
        p->stop = calloc((size_t)(m ? m : 1), sizeof *p->stop);
        if (!p->stop) return vc_errf(VC_ENOMEM, "out of memory");
        if (cJSON_IsString(x)) {
            if (has_nul(x->valuestring)) return nul_refused("stop");
            if (!(p->stop[0] = strdup(x->valuestring))) return vc_errf(VC_ENOMEM, "out of memory");
            p->n_stop = 1;
        } else {
            const cJSON *e;
            cJSON_ArrayForEach(e, x) {
                if (!cJSON_IsString(e)) return vc_errf(VC_EINVAL, "'stop' must be a string or a list of strings");
                if (has_nul(e->valuestring)) return nul_refused("stop");
                if (!(p->stop[p->n_stop] = strdup(e->valuestring))) return vc_errf(VC_ENOMEM, "out of memory");
                p->n_stop++;
            }
        }
    }
    x = cJSON_GetObjectItemCaseSensitive(o, "logit_bias");
    if (x && !cJSON_IsNull(x)) {
        if (!cJSON_IsObject(x)) return vc_errf(VC_EINVAL, "'logit_bias' must be an object of token id -> bias");
        int m = cJSON_GetArraySize(x);
        p->logit_bias = calloc((size_t)(m ? m : 1), sizeof *p->logit_bias);
        if (!p->logit_bias) return vc_errf(VC_ENOMEM, "out of memory");
        const cJSON *e;
        cJSON_ArrayForEach(e, x) {
            char *end;
            long id = strtol(e->string, &end, 10);
            if (end == e->string || *end || id < INT32_MIN || id > INT32_MAX || !cJSON_IsNumber(e))
                return vc_errf(VC_EINVAL, "'logit_bias' keys must be token ids and values numbers (got '%s')", e->string);
            p->logit_bias[p->n_logit_bias++] = (eng_logit_bias){(int32_t)id, (float)e->valuedouble};
        }
    }
    x = cJSON_GetObjectItemCaseSensitive(o, "bad_words_token_ids");
    if (x && !cJSON_IsNull(x)) {
        if (!cJSON_IsArray(x)) return vc_errf(VC_EINVAL, "'bad_words_token_ids' must be a list of token id lists");
        int m = cJSON_GetArraySize(x);
        p->bad_words = calloc((size_t)(m ? m : 1), sizeof *p->bad_words);
        p->bad_words_len = calloc((size_t)(m ? m : 1), sizeof *p->bad_words_len);
        if (!p->bad_words || !p->bad_words_len) return vc_errf(VC_ENOMEM, "out of memory");
        const cJSON *e;
        cJSON_ArrayForEach(e, x) {
            if ((rc = get_ids(e, "bad_words_token_ids", &p->bad_words[p->n_bad_words], &p->bad_words_len[p->n_bad_words])))
                return rc;
            p->n_bad_words++;
        }
    }
    return VC_OK;
}
